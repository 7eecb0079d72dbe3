//! The appliance on DPDK: EAL, mempool, ports, rings, one worker per worker lcore and
//! the control loop on the main lcore. Used by `cgnat run` and `cgnat pcap`.

use crate::reload::Settings;
use anyhow::{Context, Result};
use cgnat_config::{Config, Role};
use cgnat_dataplane::backlog::Backlog;
use cgnat_dataplane::counters::{DropReason, WorkerCounters, PROTO_NAMES, STAGES};
use cgnat_dataplane::dispatch::{self, Outputs};
use cgnat_dataplane::inspect::{Answer, Query};
use cgnat_dataplane::nat::rss::{self, NoSteering, Steering};
use cgnat_dataplane::nat::{Nat, NatParams};
use cgnat_dataplane::neighbors::Neighbors;
use cgnat_dataplane::pipeline::{port_infos, Control, Side, Verdict, Worker};
use cgnat_dataplane::vector;
use cgnat_ffi::{
    Eal, Mbuf, MbufBurst, Mempool, MsgRing, Port, PortConf, PortStats, Ring, RssConf, MAX_BURST,
};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How the appliance runs.
pub struct RunOptions {
    /// Stop once every input is drained (pcap mode); accept frames for any MAC.
    pub until_drained: bool,
    /// Frames the inputs hold, when known (pcap mode): draining waits for them all to
    /// be received, or for 5 s without any.
    pub input_frames: Option<u64>,
    /// Set to stop (signals set it too).
    pub stop: Arc<AtomicBool>,
}

/// A neighbour note from a worker to the control lcore: a MAC gleaned (replay and
/// pcap mode, `kind` 0), an ARP request the worker sent (`kind` 1, on `side`), whose
/// answer the control lcore then learns, or an IPv6 neighbour for the control lcore
/// to solicit (`kind` 2).
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Glean {
    ip: u32,
    mac: [u8; 6],
    kind: u8,
    side: u8,
    /// Kind 2: an IPv6 neighbour of the inside port to solicit (NAT64 sends to it).
    ip6: [u8; 16],
}

/// PCP frames (a request the worker decided, for the control lcore's server to
/// answer) a worker holds when its ring to the control lcore is full ([`Backlog`]):
/// never dropped for want of room, as that ring's ALG frames were before each worker
/// ran its own ALG stream engine. The most one poll can add to them: four receive
/// bursts of
/// [`MAX_BURST`] (two per port), a handoff burst, and every fragment the worker holds
/// ([`cgnat_dataplane::frag::MAX_HELD`]) released at once as a reassembled datagram
/// cut again, twice over for a smaller MTU on the way out. Past `capacity - reserve`
/// the worker takes no new frames (back-pressure): the backlog never fills.
const WORKER_ALG_BACKLOG: usize = 2048;
/// Bursts a worker takes from its ring back from the control lcore per poll, at most:
/// as many as it receives from its ports (two per port).
const FROM_CONTROL_BURSTS: usize = 4;
const WORKER_ALG_RESERVE: usize = 5 * MAX_BURST + 2 * cgnat_dataplane::frag::MAX_HELD + 256;

/// What the control lcore holds for each worker when the ring back to it is full, and
/// the reserve kept free: a burst from the worker, and its own announcements (the
/// control lcore waits for the worker's ring instead of
/// dropping if they ever exceed it: the worker empties that ring on every poll).
const CONTROL_ALG_BACKLOG: usize = 4096;
const CONTROL_ALG_RESERVE: usize = 2048;

/// What each worker shares with the control lcore.
pub(crate) struct WorkerLink {
    /// PCP frames for the control lcore's server (ports 2/3).
    to_control: Ring,
    /// ARP and frames for the appliance itself (ports 0/1): a ring of their own, so
    /// an ARP flood never takes the PCP frames' room; the control lcore takes a
    /// bounded burst of it per poll.
    to_control_arp: Ring,
    from_control: Ring,
    /// What the control lcore answers to `to_control_arp` (ARP replies, echo replies).
    from_control_arp: Ring,
    glean: MsgRing<Glean>,
    pub(crate) counters: Arc<WorkerCounters>,
    /// TSC of the last received packet (pcap mode's drain detection).
    last_rx: AtomicU64,
    /// The worker loop is running.
    started: AtomicBool,
    /// Frames other workers hand to this one (multi-producer), tagged with the side
    /// they count as received on (mbuf port field: 0 inside, 1 outside).
    handoff: Ring,
    /// NAT events toward the exporter.
    events: Arc<MsgRing<cgnat_dataplane::log::LogEvent>>,
    /// Inspection queries from the control API, answered between bursts.
    pub(crate) queries: crossbeam::channel::Receiver<(Query, crossbeam::channel::Sender<Answer>)>,
    /// A reload's settings, taken between bursts.
    reload: crossbeam::channel::Receiver<Settings>,
    /// Where the settings a reload replaced go, to be dropped off the lcore.
    reloaded: crossbeam::channel::Sender<Settings>,
    /// HA state sync (`[ha]`): the worker's end toward the `cgnat-ha` thread.
    pub(crate) ha: Option<Arc<crate::hasync::WorkerHa>>,
}

struct Clock {
    t0: u64,
    hz: u64,
}

impl Clock {
    fn now(&self) -> u32 {
        ((cgnat_ffi::tsc() - self.t0) / self.hz) as u32 + 1
    }
}

fn device_name(device: &str) -> &str {
    device.split(',').next().unwrap_or(device)
}

fn eal_args(cfg: &Config, until_drained: bool) -> Vec<String> {
    let mut args = cfg.dataplane.eal_args.clone();
    let mut lcores = vec![cfg.dataplane.control_lcore];
    lcores.extend(&cfg.dataplane.worker_lcores);
    // Lcores beyond the machine's CPUs share them (tests and demos on small
    // machines); on a dedicated box every lcore gets its own CPU.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let list: Vec<String> = lcores.iter().map(|l| format!("{l}@{}", l % cpus)).collect();
    args.push(format!("--lcores={}", list.join(",")));
    args.push(format!("--main-lcore={}", cfg.dataplane.control_lcore));
    for p in &cfg.ports {
        if p.device.starts_with("net_") || p.device.starts_with("eth_") {
            args.push(format!("--vdev={}", p.device));
        } else {
            args.push("-a".into());
            args.push(p.device.clone());
        }
    }
    if until_drained && !args.iter().any(|a| a.starts_with("--file-prefix")) {
        args.push(format!("--file-prefix=cgnat-{}", std::process::id()));
    }
    if !args.iter().any(|a| a.starts_with("--no-shconf")) && until_drained {
        args.push("--no-shconf".into());
    }
    args
}

/// Runs the appliance until stopped (or drained); returns the final summary.
pub fn run(cfg: &Config, opts: &RunOptions) -> Result<Value> {
    // Everything that can fail for reasons outside DPDK is claimed before anything
    // runs: a listen address taken elsewhere stops the start with nothing running.
    let serving = !opts.until_drained;
    let metrics_listener = match cfg.metrics.listen.filter(|_| serving) {
        Some(l) => Some(crate::http::bind(l, "metrics.listen")?),
        None => None,
    };
    let api_listener = match cfg.api.listen.filter(|_| serving) {
        Some(l) => Some(crate::http::bind(l, "api.listen")?),
        None => None,
    };
    for (key, listen) in [
        ("metrics.listen", cfg.metrics.listen.filter(|_| serving)),
        ("api.listen", cfg.api.listen.filter(|_| serving)),
    ] {
        if let Some(l) = listen.filter(|&l| !crate::http::is_loopback(l)) {
            eprintln!(
                "cgnat: warning: {key} {l} can be reached from other hosts; requests need the \
                 bearer token (firewall it to the hosts that need it)"
            );
        }
    }
    let dp = &cfg.dataplane;
    let lcores = std::iter::once(("dataplane.control_lcore".to_string(), dp.control_lcore)).chain(
        dp.worker_lcores
            .iter()
            .enumerate()
            .map(|(i, &l)| (format!("dataplane.worker_lcores[{i}]"), l)),
    );
    for (key, l) in lcores {
        if l >= cgnat_ffi::MAX_LCORE {
            anyhow::bail!(
                "{}: key `{key}`: lcore {l} is beyond DPDK's lcore ids (0 to {}); an lcore \
                 beyond this host's CPUs shares one",
                cfg.file,
                cgnat_ffi::MAX_LCORE - 1
            );
        }
    }
    let eal = Eal::init(&eal_args(cfg, opts.until_drained)).with_context(|| {
        format!(
            "{}: EAL initialisation failed (DPDK's log above says why; see \
             dataplane.eal_args)",
            cfg.file
        )
    })?;
    let workers = cfg.dataplane.worker_lcores.len();
    let socket = Eal::socket_id();
    let pool = Arc::new(
        Mempool::new_pktmbuf(
            "cgnat_mbufs",
            cfg.dataplane.mbufs,
            256,
            cfg.dataplane.mbuf_size,
            socket,
        )
        .context("creating the mbuf pool (raise -m in eal_args or lower dataplane.mbufs)")?,
    );
    let mut ports = Vec::new();
    let mut steerings = Vec::new();
    let mut ownership = Vec::new();
    for role in [Role::Inside, Role::Outside] {
        let pc = cfg.port(role).context("port missing")?;
        let idx = cfg.ports.iter().position(|p| p.role == role).unwrap_or(0);
        let port = Port::by_name(device_name(&pc.device)).with_context(|| {
            format!(
                "{}: key `ports[{idx}].device`: port {} names device `{}`, which DPDK \
                 did not find (a PCI address must be bound to a DPDK driver; a vdev must \
                 load: e.g. a net_pcap input file that cannot be read)",
                cfg.file, pc.name, pc.device
            )
        })?;
        let outside = role == Role::Outside;
        let info = port
            .info()
            .with_context(|| format!("port {} (device {})", pc.name, pc.device))?;
        let deterministic = cfg.nat.allocation == cgnat_config::Allocation::Deterministic;
        let plan = if outside && cfg.nat.allocation != cgnat_config::Allocation::Dynamic {
            Err(NoSteering(
                "port-block and deterministic allocation keep contiguous port ranges".into(),
            ))
        } else if deterministic {
            Err(NoSteering(
                "deterministic allocation: a subscriber belongs to its range's worker".into(),
            ))
        } else {
            rss::can_steer(
                outside,
                info.flow_type_rss_offloads,
                info.reta_size,
                info.hash_key_size,
                workers as u16,
            )
        };
        let conf = PortConf {
            rss: workers > 1,
            steer: plan.as_ref().ok().map(|&hash| RssConf {
                hash,
                key: rss::STEERING_KEY,
            }),
            mtu: pc.mtu,
        };
        let q = workers as u16;
        port.configure(q, q, &conf)
            .with_context(|| format!("configuring port {}", pc.name))?;
        for i in 0..q {
            port.rx_queue_setup(i, cfg.dataplane.rx_desc, socket, &pool)
                .with_context(|| format!("rx queue {i} of port {}", pc.name))?;
            port.tx_queue_setup(i, cfg.dataplane.tx_desc, socket)
                .with_context(|| format!("tx queue {i} of port {}", pc.name))?;
        }
        port.start()
            .with_context(|| format!("starting port {}", pc.name))?;
        let _ = port.promiscuous(true);
        // Outside, an even port and the next share a worker (RTP and RTCP pairs).
        let table = if outside {
            Steering::paired_spread(&rss::STEERING_KEY, workers as u16, info.reta_size)
        } else {
            Steering::spread(workers as u16, info.reta_size)
        };
        let steering = plan.and_then(|_| steer(port, &table, workers as u16));
        let (mode, text) =
            rss::ownership(outside, steering.as_ref(), workers as u16, deterministic);
        eprintln!("cgnat: port {} ({}): {text}", pc.name, info.driver_name);
        ownership.push((pc.name.clone(), mode));
        steerings.push(steering.ok().map(Arc::new));
        ports.push(port);
    }
    let ports = [ports[0], ports[1]];
    let macs = [ports[0].mac_addr(), ports[1].mac_addr()];
    let infos = port_infos(cfg, macs);
    // The inside port's IPv6 neighbours: learned by the control lcore (neighbour
    // discovery), read by the workers (NAT64 sends to its hosts).
    let neighbors6 = infos[Side::Inside as usize]
        .ipv6
        .as_ref()
        .map(|_| Arc::new(cgnat_dataplane::neighbors::Neighbors6::new(4096)));
    let neighbors = Arc::new(Neighbors::of_config(cfg));
    let clock = Arc::new(Clock {
        t0: cgnat_ffi::tsc(),
        hz: cgnat_ffi::tsc_hz().max(1),
    });
    let builder = crate::reload::Builder {
        workers: workers as u16,
        steering: [steerings[0].clone(), steerings[1].clone()],
        until_drained: opts.until_drained,
    };
    let Settings {
        pipeline: pparams,
        nat: nat_params,
        ..
    } = builder.settings(cfg)?;
    let pool_addrs = nat_params.pool.clone();
    let mut pool_view = None;

    let ha_shared = cfg
        .ha
        .as_ref()
        .map(|h| Arc::new(crate::hasync::Shared::new(h)));
    let mut ha_thread_ends = Vec::new();
    let mut links = Vec::new();
    let mut query_tx = Vec::new();
    let mut reload_tx = Vec::new();
    let (replaced_tx, replaced_rx) = crossbeam::channel::bounded(workers);
    for w in 0..workers {
        let (qtx, qrx) = crossbeam::channel::bounded(4);
        query_tx.push(qtx);
        let (rtx, rrx) = crossbeam::channel::bounded(1);
        reload_tx.push(rtx);
        links.push(Arc::new(WorkerLink {
            to_control: Ring::new(&format!("cgnat_toctl{w}"), 1024, true, true, socket)?,
            to_control_arp: Ring::new(&format!("cgnat_toarp{w}"), 512, true, true, socket)?,
            from_control: Ring::new(&format!("cgnat_fromctl{w}"), 1024, true, true, socket)?,
            from_control_arp: Ring::new(&format!("cgnat_fromarp{w}"), 512, true, true, socket)?,
            glean: MsgRing::new(&format!("cgnat_glean{w}"), 1024, true, true, socket)?,
            counters: Arc::new(WorkerCounters::default()),
            last_rx: AtomicU64::new(cgnat_ffi::tsc()),
            started: AtomicBool::new(false),
            handoff: Ring::new(&format!("cgnat_handoff{w}"), 4096, false, true, socket)?,
            queries: qrx,
            reload: rrx,
            reloaded: replaced_tx.clone(),
            ha: ha_shared.as_ref().map(|sh| {
                let (w, t) = crate::hasync::ends(sh.clone());
                ha_thread_ends.push(t);
                Arc::new(w)
            }),
            events: Arc::new(MsgRing::new(
                &format!("cgnat_events{w}"),
                8192,
                true,
                true,
                socket,
            )?),
        }));
    }
    let exporter_stop = Arc::new(AtomicBool::new(false));
    let destinations = Arc::new(crate::exporter::Destinations::new(cfg.logging.clone()));
    let exporter = crate::exporter::spawn(
        destinations.clone(),
        links.iter().map(|l| l.events.clone()).collect(),
        cgnat_dataplane::pipeline::Nat64Params::from_config(cfg).map(|n| n.prefix),
        exporter_stop.clone(),
    )
    .context("starting the NAT event exporter")?;
    // From the first worker launched on, leaving this function by any path stops
    // the workers (the EAL's drop waits for them).
    let _stop_workers = StopOnDrop(opts.stop.clone());
    let mut pool_usage = Vec::new();
    let mut pool_usage_api = Vec::new();
    for (w, &lcore) in cfg.dataplane.worker_lcores.iter().enumerate() {
        let seed = cgnat_ffi::tsc() ^ (w as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let nat = Nat::new(
            nat_params.clone(),
            w as u16,
            workers as u16,
            clock.now(),
            seed,
            links[w].counters.clone(),
        );
        pool_usage.push(nat.pool.usage.clone());
        pool_usage_api.push(nat.pool.usage.clone());
        pool_view.get_or_insert_with(|| crate::reload::PoolView::new(&nat.pool));
        let mut worker = Worker::new(
            nat,
            infos.clone(),
            pparams.clone(),
            neighbors.clone(),
            links[w].counters.clone(),
        );
        if let Some(sh) = &ha_shared {
            // The configured role from the first packet on.
            let standby = sh.standby.load(Ordering::Relaxed);
            worker.take_role(standby, clock.now());
        }
        worker.set_neighbors6(neighbors6.clone());
        // NAT64 cuts IPv4 packets into IPv6 fragments (RFC 7915 4.1) into mbufs of
        // the pool.
        let split_pool = pool.clone();
        worker.set_alloc(Box::new(move || split_pool.alloc()));
        // The ALG stream engine: a rewritten datagram may need more fragments than it
        // came in; a policy reply is built.
        let alg_pool = pool.clone();
        worker.set_alg_alloc(Box::new(move || alg_pool.alloc()));
        drop(worker.set_alg_policy(cgnat_dataplane::alg::AlgPolicy::of(&cfg.alg)));
        let link = links[w].clone();
        let all_links = links.clone();
        let stop = opts.stop.clone();
        let clock = clock.clone();
        let busy = cfg.dataplane.busy_poll;
        let mpool = pool.clone();
        cgnat_ffi::launch(lcore, move || {
            worker_loop(
                worker, w as u16, ports, &link, &all_links, &mpool, &stop, &clock, busy,
            );
            0
        })
        .with_context(|| format!("launching worker on lcore {lcore}"))?;
    }

    let ha_thread = match &ha_shared {
        Some(sh) => {
            let workers = links.iter().filter_map(|l| l.ha.clone()).collect();
            let h = crate::hasync::spawn(sh.clone(), workers, ha_thread_ends, opts.stop.clone())
                .context("starting the HA sync thread")?;
            eprintln!(
                "cgnat: HA {} on {}, peer {}",
                sh.role(),
                sh.cfg.listen,
                sh.cfg.peer
            );
            Some(h)
        }
        None => None,
    };
    let control_counters = Arc::new(WorkerCounters::default());
    let gate = Arc::new(crate::http::Gate::default());
    let pool_v4: crate::reload::SharedPool = Arc::new(std::sync::RwLock::new(
        pool_view.context("no worker lcore")?,
    ));
    // A reload changing the pool sends the control lcore its new proxy-ARP list.
    let (control_pool_tx, control_pool_rx) = crossbeam::channel::bounded(4);
    let http_stats = [
        Arc::new(crate::http::Stats::default()),
        Arc::new(crate::http::Stats::default()),
    ];
    // The servers' tokens: a reload may change them.
    let tokens: [crate::http::Token; 2] = [
        Arc::new(std::sync::RwLock::new(cfg.api.token.clone())),
        Arc::new(std::sync::RwLock::new(cfg.metrics.token.clone())),
    ];
    let server = |name, listener, i: usize| crate::http::Server {
        name,
        listener,
        token: tokens[i].clone(),
        stats: http_stats[i].clone(),
        gate: gate.clone(),
    };
    let metrics = match (metrics_listener, cfg.metrics.listen) {
        (Some(listener), Some(listen)) => {
            let src = crate::metrics::Source {
                workers: links.iter().map(|l| l.counters.clone()).collect(),
                control: control_counters.clone(),
                ports: [Role::Inside, Role::Outside]
                    .iter()
                    .zip(ports)
                    .map(|(r, p)| (cfg.port(*r).map_or_else(String::new, |c| c.name.clone()), p))
                    .collect(),
                pool_usage,
                pool_addrs: pool_v4.clone(),
                ownership: ownership.clone(),
                http: vec![
                    ("api", http_stats[0].clone()),
                    ("metrics", http_stats[1].clone()),
                ],
                vlans: cgnat_dataplane::vlan::labels(cfg),
                ha: ha_shared.clone(),
            };
            let srv = server("cgnat-metrics", listener, 1);
            let h = crate::metrics::serve(srv, src, opts.stop.clone())
                .with_context(|| format!("metrics.listen {listen}"))?;
            eprintln!("cgnat: metrics on http://{listen}/metrics");
            Some(h)
        }
        _ => None,
    };
    // Reloads: on SIGHUP and on the control API's POST /reload.
    let running: crate::reload::Running = Arc::new(std::sync::Mutex::new(cfg.clone()));
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .context("installing the SIGHUP handler")?;
    let (reload_req_tx, reload_req_rx) = crossbeam::channel::bounded(4);
    let reloader = crate::reload::spawn(
        crate::reload::Reloader {
            builder,
            started: cfg.clone(),
            running: running.clone(),
            to_workers: reload_tx,
            replaced: replaced_rx,
            destinations,
            tokens: tokens.clone(),
            pool: pool_v4.clone(),
            to_control: control_pool_tx,
        },
        reload_req_rx,
        hup,
        opts.stop.clone(),
    )
    .context("starting the reload thread")?;
    let api = match (api_listener, cfg.api.listen) {
        (Some(listener), Some(listen)) => {
            let state = crate::api::State {
                links: links.clone(),
                queries: query_tx,
                control: control_counters.clone(),
                ports,
                pool_usage: pool_usage_api,
                pool_addrs: pool_v4.clone(),
                block_size: nat_params.block_size,
                ports_per_address: ports_per_address(&nat_params, workers as u16),
                ownership: [ownership[0].1, ownership[1].1],
                vlans: cgnat_dataplane::vlan::labels(cfg),
                http: http_stats.clone(),
                stop: opts.stop.clone(),
                running,
                reload: reload_req_tx,
                ha: ha_shared.clone(),
            };
            let srv = server("cgnat-api", listener, 0);
            let h = crate::api::serve(srv, state, opts.stop.clone())
                .with_context(|| format!("api.listen {listen}"))?;
            eprintln!("cgnat: control API on http://{listen}/");
            Some(h)
        }
        _ => None,
    };
    let mut control: Control<Mbuf> = Control::new(
        infos,
        pool_addrs,
        neighbors.clone(),
        control_counters.clone(),
    );
    // Frames of its own (PCP announcements, neighbour solicitations).
    let control_pool = pool.clone();
    control.set_alloc(Box::new(move || control_pool.alloc()));
    control.set_pcp(cgnat_dataplane::pcp::params(&cfg.pcp));
    if let (Some(nd), Some(n)) = (control.nd(), neighbors6) {
        nd.set_neighbors(n);
    }
    control_loop(
        &mut control,
        &links,
        opts,
        &clock,
        cfg.dataplane.busy_poll,
        &control_pool_rx,
    );
    opts.stop.store(true, Ordering::SeqCst);
    for &lcore in &cfg.dataplane.worker_lcores {
        cgnat_ffi::wait(lcore);
    }
    // The accept threads return within a poll; connection threads are not waited
    // for (a client cannot hold the stop), but none reads the ports once closed.
    for h in [metrics, api, Some(reloader), ha_thread]
        .into_iter()
        .flatten()
    {
        let _ = h.join();
    }
    gate.close();
    exporter_stop.store(true, Ordering::Release);
    let _ = exporter.join();
    let stats = [ports[0].stats(), ports[1].stats()];
    for p in ports {
        p.stop();
    }
    for p in ports {
        p.close();
    }
    let summary = summarize(
        &links,
        &control_counters,
        &stats,
        [ownership[0].1, ownership[1].1],
        &cgnat_dataplane::vlan::labels(cfg),
    );
    // DPDK objects go before the EAL that holds their memory: rings (which free any
    // queued mbufs into the pool), then the pool, then EAL itself. The control
    // handler holds mbufs (held segments and fragments) and a handle on the pool.
    drop(control);
    drop(links);
    drop(pool);
    drop(eal);
    Ok(summary)
}

/// Ports a pool address has for dynamic translation (whole blocks of the range),
/// the three protocols' port spaces together.
fn ports_per_address(p: &NatParams, workers: u16) -> u64 {
    let l = cgnat_dataplane::nat::pool::PortLayout::new(
        p.port_range.0,
        p.port_range.1,
        p.block_size,
        workers,
    );
    3 * u64::from(l.blocks) * u64::from(l.block_size)
}

/// Sets the stop flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Programs the redirection table of a port configured to steer (entry `i` to queue
/// `table[i]`) and reads back what the device holds: the steering that ownership
/// follows, if the device's table and key make sense.
fn steer(port: Port, table: &[u16], workers: u16) -> Result<Steering, NoSteering> {
    let st = port
        .rss_steer(table)
        .map_err(|e| NoSteering(e.to_string()))?;
    if let Some(q) = st.reta.iter().find(|&&q| q >= workers) {
        return Err(NoSteering(format!(
            "the device's redirection table sends to queue {q}, beyond the {workers} workers"
        )));
    }
    Steering::new(&st.key, &st.reta)
}

fn idle_sleep(idle: &mut u32, busy: bool) {
    *idle = idle.saturating_add(1);
    if busy || *idle < 64 {
        return;
    }
    // Back off like l3fwd-power: longer the longer we stay idle, capped at 100 us.
    let us = u64::from((*idle - 63).min(100));
    std::thread::sleep(Duration::from_micros(us));
}

fn flush(port: Port, q: u16, burst: &mut MbufBurst, counters: &WorkerCounters) {
    if burst.is_empty() {
        return;
    }
    port.tx_burst(q, burst);
    let left = burst.len();
    if left > 0 {
        counters.drops[DropReason::TxFull as usize].add(left as u64);
        burst.clear();
    }
}

/// Puts `events` on the worker's ring to the exporter; what it cannot take is
/// counted `log_events_dropped`.
fn send_events(
    link: &WorkerLink,
    counters: &WorkerCounters,
    events: &mut Vec<cgnat_dataplane::log::LogEvent>,
) {
    if !events.is_empty() {
        let sent = link.events.enqueue_burst(events);
        counters
            .log_events_dropped
            .add((events.len() - sent) as u64);
        events.clear();
    }
}

#[allow(clippy::too_many_arguments)]
fn worker_loop(
    mut worker: Worker<Mbuf>,
    q: u16,
    ports: [Port; 2],
    link: &WorkerLink,
    peers: &[Arc<WorkerLink>],
    pool: &Mempool,
    stop: &AtomicBool,
    clock: &Clock,
    busy: bool,
) {
    let counters = link.counters.clone();
    let mut rx = MbufBurst::new();
    let mut rx2 = MbufBurst::new();
    let mut lanes = Lanes {
        ports,
        q,
        tx: [MbufBurst::new(), MbufBurst::new()],
        to_ctl: MbufBurst::new(),
        alg_backlog: Backlog::new(WORKER_ALG_BACKLOG, WORKER_ALG_RESERVE),
        to_arp: MbufBurst::new(),
        to_peer: peers.iter().map(|_| MbufBurst::new()).collect(),
        peers,
        link,
        counters: &counters,
    };
    let mut handed = MbufBurst::new();
    let mut idle = 0u32;
    let mut last_now = 0;
    link.last_rx.store(cgnat_ffi::tsc(), Ordering::Relaxed);
    link.started.store(true, Ordering::Release);
    while !stop.load(Ordering::Relaxed) {
        let now = clock.now();
        let started = cgnat_ffi::tsc();
        let mut got = 0;
        // Back-pressure: while the PCP frames held for the control lcore are past
        // their mark, no new frame is taken (from the ports or other workers); the
        // ports' queues fill and count their own misses. Held frames go first below.
        let pressed = lanes.alg_backlog.over();
        if pressed {
            counters.alg_backpressured_polls.inc();
        }
        for side in [Side::Inside, Side::Outside] {
            if pressed {
                break;
            }
            let port = ports[side as usize];
            let mut n = port.rx_burst(q, &mut rx);
            if n == 0 {
                continue;
            }
            counters.bursts.inc();
            // A full burst: the next one too, if there is one, into the same vector
            // (its lookups' misses then overlap over twice as many frames).
            if n == MAX_BURST {
                let more = port.rx_burst(q, &mut rx2);
                if more > 0 {
                    counters.bursts.inc();
                    n += more;
                }
            }
            got += n;
            // The bursts as one vector, in stages (parse, lookup, translate, the
            // slow frames, dispatch): see cgnat_dataplane::vector.
            vector::receive_burst(
                &mut worker,
                rx.take_all().chain(rx2.take_all()).map(|m| (m, side)),
                false,
                now,
                &mut lanes,
            );
            let gleaned = worker.take_gleaned();
            if !gleaned.is_empty() {
                let mut msgs = [Glean::default(); 32];
                for (i, &(ip, mac)) in gleaned.iter().enumerate() {
                    msgs[i] = Glean {
                        ip,
                        mac,
                        ..Glean::default()
                    };
                }
                link.glean.enqueue_burst(&msgs[..gleaned.len()]);
            }
        }
        // NAT events and the ALG policy decisions to the exporter.
        send_events(link, &counters, worker.nat.events());
        send_events(link, &counters, worker.alg_control().events());
        if !pressed && link.handoff.dequeue_burst(&mut handed) > 0 {
            got += handed.len();
            let burst = handed.take_all().map(|m| {
                let side = if m.port() == 0 {
                    Side::Inside
                } else {
                    Side::Outside
                };
                (m, side)
            });
            vector::receive_burst(&mut worker, burst, true, now, &mut lanes);
        }
        // Frames whose next hop became known, and the ARP requests asked for (their
        // answers are learned by the control lcore, which is told of each).
        worker.poll_neighbors(now);
        dispatch::send_ready(&mut worker, &mut lanes);
        // Everything this poll gave the control lcore and the other workers (received
        // and handed frames, what they released) goes on their rings at once.
        lanes.flush_rings();
        let mut notes = [Glean::default(); 16];
        let mut n_notes = 0;
        while let Some((hop, side)) = worker.next_request() {
            let Some(mut m) = pool.alloc() else { break };
            if let Verdict::Tx(out) = worker.build_arp_request(hop, side, &mut m) {
                dispatch::transmit(&mut lanes, out, m, &worker);
                if n_notes < notes.len() {
                    notes[n_notes] = Glean {
                        ip: hop,
                        kind: 1,
                        side: side as u8,
                        ..Glean::default()
                    };
                    n_notes += 1;
                }
            }
        }
        while n_notes < notes.len() {
            let Some(a) = worker.next_solicit6() else {
                break;
            };
            notes[n_notes] = Glean {
                kind: 2,
                ip6: a,
                ..Glean::default()
            };
            n_notes += 1;
        }
        if n_notes > 0 {
            link.glean.enqueue_burst(&notes[..n_notes]);
        }
        if link.from_control_arp.dequeue_burst(&mut rx) > 0 {
            for m in rx.take_all() {
                let out = if m.port() & 1 == 0 {
                    Side::Inside
                } else {
                    Side::Outside
                };
                dispatch::transmit(&mut lanes, out, m, &worker);
            }
        }
        // What the control lcore sent back: up to as many bursts as this poll could
        // have received, so that the way back keeps up with the way there (it is
        // never back-pressured: the control lcore may be waiting for this ring).
        for _ in 0..FROM_CONTROL_BURSTS {
            if link.from_control.dequeue_burst(&mut rx) == 0 {
                break;
            }
            for m in rx.take_all() {
                let out = if m.port() & 1 == 0 {
                    Side::Inside
                } else {
                    Side::Outside
                };
                if m.port() >= 2 {
                    // A PCP answer back from the control lcore: sent now.
                    counters.tx[out as usize].inc();
                }
                dispatch::transmit(&mut lanes, out, m, &worker);
            }
        }
        for side in [Side::Inside, Side::Outside] {
            flush(
                ports[side as usize],
                q,
                &mut lanes.tx[side as usize],
                &counters,
            );
        }
        if got > 0 {
            idle = 0;
            let t = cgnat_ffi::tsc();
            counters.busy_polls.inc();
            counters.busy_cycles.add(t - started);
            link.last_rx.store(t, Ordering::Relaxed);
        } else {
            counters.idle_polls.inc();
        }
        // An inspection query (a slow-path scan of a bounded piece of this worker's
        // tables, between bursts): at most one per poll.
        if let Ok((query, reply)) = link.queries.try_recv() {
            let _ = reply.try_send(cgnat_dataplane::inspect::answer(
                &worker.nat,
                q,
                &query,
                now,
            ));
        }
        // A reload's settings, between bursts; the replaced ones go back to be
        // dropped off this lcore.
        if let Ok(new) = link.reload.try_recv() {
            let (pipeline, nat) = worker.reconfigure(new.pipeline, new.nat, now);
            let alg = worker.set_alg_policy(new.alg);
            let _ = link.reloaded.try_send(Settings { pipeline, nat, alg });
        }
        // HA sync, between bursts: session changes to the sync thread, one of its
        // requests answered, a role change applied (a new active announces its
        // addresses).
        if let Some(ha) = &link.ha {
            let standby_now = worker.standby();
            let (nat, alg) = worker.sync_parts();
            if let Some(standby) = ha.turn(nat, alg, standby_now, now) {
                worker.take_role(standby, now);
                // One worker announces the addresses.
                if !standby && q == 0 {
                    for side in [Side::Inside, Side::Outside] {
                        let mut i = 0;
                        while let Some(ip) = worker.announced(side, i).filter(|_| i <= 256) {
                            i += 1;
                            let Some(mut m) = pool.alloc() else { break };
                            if let Verdict::Tx(out) = worker.build_garp(side, ip, &mut m) {
                                dispatch::transmit(&mut lanes, out, m, &worker);
                                ha.shared.garp_sent.inc();
                            }
                        }
                        flush(
                            ports[side as usize],
                            q,
                            &mut lanes.tx[side as usize],
                            &counters,
                        );
                    }
                }
            }
        }
        // Once a second, busy or not: expiry (bounded), held SYNs, and the ALG
        // segments held too long.
        if now != last_now {
            last_now = now;
            worker.expire(now, 1 << 16);
            while let Some(h) = worker.pop_expired_syn(now) {
                let Some(mut m) = pool.alloc() else { break };
                if let Verdict::Tx(out) = worker.build_syn_unreachable(&h, &mut m) {
                    dispatch::transmit(&mut lanes, out, m, &worker);
                }
            }
            worker.alg_tick(now);
            dispatch::send_ready(&mut worker, &mut lanes);
            lanes.flush_rings();
            for side in [Side::Inside, Side::Outside] {
                flush(
                    ports[side as usize],
                    q,
                    &mut lanes.tx[side as usize],
                    &counters,
                );
            }
        }
        if got == 0 && lanes.alg_backlog.is_empty() {
            idle_sleep(&mut idle, busy);
        }
    }
    close_logs(&mut worker, link);
}

/// Longest a stop spends closing in the logs what is alive.
const CLOSE_LOG_SECS: u64 = 1;

/// At a stop, hands the exporter (which runs until the workers are done) a session
/// delete and a port block release for everything alive that the logs recorded,
/// within [`CLOSE_LOG_SECS`]; what does not fit in time is counted as dropped events.
fn close_logs(worker: &mut Worker<Mbuf>, link: &WorkerLink) {
    send_events(link, &link.counters, worker.alg_control().events());
    let deadline = cgnat_ffi::tsc() + CLOSE_LOG_SECS * cgnat_ffi::tsc_hz().max(1);
    let mut cursor = 0u64;
    loop {
        let done = worker.nat.close_log(&mut cursor, 4096);
        let events = worker.nat.events();
        let mut sent = 0;
        while sent < events.len() {
            sent += link.events.enqueue_burst(&events[sent..]);
            if sent < events.len() {
                if cgnat_ffi::tsc() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        link.counters
            .log_events_dropped
            .add((events.len() - sent) as u64);
        events.clear();
        if done || cgnat_ffi::tsc() > deadline {
            return;
        }
    }
}

/// Sends the PCP frames and the ARP and local frames gathered for the control lcore,
/// each on its ring: the PCP frames behind those held before ([`send_alg`]), the ARP
/// and local ones dropped when their ring is full (`arp_ring_full`).
fn flush_to_control(
    link: &WorkerLink,
    alg: &mut MbufBurst,
    held: &mut Backlog<Mbuf>,
    arp: &mut MbufBurst,
    counters: &WorkerCounters,
) {
    send_alg(&link.to_control, held, alg, counters, None);
    send_to_control(&link.to_control_arp, arp, counters, DropReason::ArpRingFull);
}

/// Puts PCP frames on `ring` in order, never dropping one for want of room: first
/// what `held` holds (the oldest), then `burst`; what the ring does not take waits in
/// `held` (counted `alg_frames_held`) for the next try. Should `held` be full too,
/// which the owner's back-pressure rules out: with `wait` (the control lcore, whose
/// ring back the worker empties on every poll, whatever else it does), waits for the
/// ring until the appliance stops; without (a worker), or when stopping, the frame is
/// counted `alg_backlog_full`. Allocates nothing.
fn send_alg(
    ring: &Ring,
    held: &mut Backlog<Mbuf>,
    burst: &mut MbufBurst,
    counters: &WorkerCounters,
    wait: Option<&AtomicBool>,
) {
    drain_backlog(ring, held);
    if held.is_empty() && !burst.is_empty() {
        ring.enqueue_burst(burst);
    }
    if !burst.is_empty() {
        counters.alg_frames_held.add(burst.len() as u64);
        for mut m in burst.take_all() {
            loop {
                match held.push(m) {
                    Ok(()) => break,
                    Err(again) => m = again,
                }
                match wait {
                    Some(stop) if !stop.load(Ordering::Relaxed) => {
                        cgnat_ffi::pause();
                        drain_backlog(ring, held);
                    }
                    _ => {
                        counters.count_drop(DropReason::AlgBacklogFull);
                        drop(m);
                        break;
                    }
                }
            }
        }
    }
    counters.alg_backlog.set(held.len() as u64);
}

/// Moves what `held` holds onto `ring`, oldest first, as far as the ring takes it;
/// the rest stays in `held`, in order.
fn drain_backlog(ring: &Ring, held: &mut Backlog<Mbuf>) {
    let mut chunk = MbufBurst::new();
    while !held.is_empty() {
        while !chunk.is_full() {
            let Some(m) = held.pop() else { break };
            // Not full (checked above): the push takes it.
            let _ = chunk.push(m);
        }
        ring.enqueue_burst(&mut chunk);
        if !chunk.is_empty() {
            // The ring is full: the rest back in front, in order (each slot was just
            // freed by its pop, so unpop finds room).
            while let Some(m) = chunk.pop() {
                let _ = held.unpop(m);
            }
            return;
        }
    }
}

fn send_to_control(
    ring: &Ring,
    burst: &mut MbufBurst,
    counters: &WorkerCounters,
    full: DropReason,
) {
    if burst.is_empty() {
        return;
    }
    ring.enqueue_burst(burst);
    if !burst.is_empty() {
        counters.drops[full as usize].add(burst.len() as u64);
        burst.clear();
    }
}

/// Queues the frames the control lcore has ready of its own (PCP announcements) on
/// the way back to the first worker ([`Control::take_ready`]), to the inside.
fn send_control_ready(
    control: &mut Control<Mbuf>,
    links: &[Arc<WorkerLink>],
    back: &mut [Back],
    stop: &AtomicBool,
) {
    while let Some(mut m) = control.take_ready() {
        m.set_port(Side::Inside as u16 + 2);
        back[0].queue(&links[0], m, control.counters(), stop);
    }
}

/// The control lcore's way back to one worker: a burst being gathered, and the
/// frames the full ring did not take, oldest first.
struct Back {
    burst: MbufBurst,
    held: Backlog<Mbuf>,
}

impl Back {
    /// Queues `m` behind everything waiting for this worker (sent when the burst is
    /// full).
    fn queue(&mut self, link: &WorkerLink, m: Mbuf, counters: &WorkerCounters, stop: &AtomicBool) {
        if let Err(m) = self.burst.push(m) {
            self.send(link, counters, stop);
            // Empty now: send moved all of it to the ring or the backlog.
            let _ = self.burst.push(m);
        }
    }

    /// Sends what waits, in order ([`send_alg`], waiting for the ring rather than
    /// dropping should the backlog ever be full).
    fn send(&mut self, link: &WorkerLink, counters: &WorkerCounters, stop: &AtomicBool) {
        send_alg(
            &link.from_control,
            &mut self.held,
            &mut self.burst,
            counters,
            Some(stop),
        );
    }
}

fn send_handoff(peer: &WorkerLink, burst: &mut MbufBurst, counters: &WorkerCounters) {
    if burst.is_empty() {
        return;
    }
    peer.handoff.enqueue_burst(burst);
    if !burst.is_empty() {
        counters.drops[DropReason::RingFull as usize].add(burst.len() as u64);
        burst.clear();
    }
}

/// A worker's outputs on DPDK: a tx burst per port (flushed when full), a burst per
/// peer worker's handoff ring (sent when full), and the bursts for the control lcore's
/// two rings (sent after each received burst).
struct Lanes<'a> {
    ports: [Port; 2],
    q: u16,
    tx: [MbufBurst; 2],
    /// PCP frames (ports 2/3: to send on that side once answered).
    to_ctl: MbufBurst,
    /// PCP frames the full ring to the control lcore did not take, oldest first.
    alg_backlog: Backlog<Mbuf>,
    /// ARP and frames for the appliance (ports 0/1: from that side).
    to_arp: MbufBurst,
    to_peer: Vec<MbufBurst>,
    peers: &'a [Arc<WorkerLink>],
    /// This worker's own link (its rings to the control lcore).
    link: &'a WorkerLink,
    counters: &'a WorkerCounters,
}

impl Lanes<'_> {
    /// Sends what is gathered for the control lcore ([`flush_to_control`]).
    #[inline]
    fn flush_control(&mut self) {
        flush_to_control(
            self.link,
            &mut self.to_ctl,
            &mut self.alg_backlog,
            &mut self.to_arp,
            self.counters,
        );
    }

    /// Puts what is queued for the control lcore and for the other workers on their
    /// rings (PCP frames a ring has no room for are held; other frames are counted
    /// dropped).
    fn flush_rings(&mut self) {
        self.flush_control();
        for (b, peer) in self.to_peer.iter_mut().zip(self.peers) {
            send_handoff(peer, b, self.counters);
        }
    }
}

impl Outputs<Mbuf> for Lanes<'_> {
    #[inline]
    fn tx(&mut self, side: Side, m: Mbuf) -> Result<(), Mbuf> {
        let b = &mut self.tx[side as usize];
        match b.push(m) {
            Ok(()) => Ok(()),
            Err(m) => {
                flush(self.ports[side as usize], self.q, b, self.counters);
                b.push(m)
            }
        }
    }
    #[inline]
    fn handoff(&mut self, w: u16, side: Side, mut m: Mbuf) -> Result<(), Mbuf> {
        // The mbuf's port field carries the side it counts as received on.
        m.set_port(side as u16);
        let b = &mut self.to_peer[usize::from(w)];
        match b.push(m) {
            Ok(()) => Ok(()),
            Err(m) => {
                send_handoff(&self.peers[usize::from(w)], b, self.counters);
                b.push(m)
            }
        }
    }
    #[inline]
    fn control(&mut self, side: Side, mut m: Mbuf) -> Result<(), Mbuf> {
        m.set_port(side as u16);
        match self.to_arp.push(m) {
            Ok(()) => Ok(()),
            Err(m) => {
                self.flush_control();
                self.to_arp.push(m)
            }
        }
    }
    #[inline]
    fn alg(&mut self, side: Side, mut m: Mbuf) -> Result<(), Mbuf> {
        // Ports 2 and 3 mark PCP frames for the control lcore's server.
        m.set_port(2 + side as u16);
        match self.to_ctl.push(m) {
            Ok(()) => Ok(()),
            Err(m) => {
                self.flush_control();
                self.to_ctl.push(m)
            }
        }
    }
}

fn control_loop(
    control: &mut Control<Mbuf>,
    links: &[Arc<WorkerLink>],
    opts: &RunOptions,
    clock: &Clock,
    busy: bool,
    pool: &crossbeam::channel::Receiver<cgnat_dataplane::pipeline::ControlSettings>,
) {
    let control_counters = control.counters().clone();
    let mut burst = MbufBurst::new();
    let mut arp_burst = MbufBurst::new();
    // Per worker: the frames on their way back to it, oldest first (held there while
    // its ring back is full).
    let mut back: Vec<Back> = links
        .iter()
        .map(|_| Back {
            burst: MbufBurst::new(),
            held: Backlog::new(CONTROL_ALG_BACKLOG, CONTROL_ALG_RESERVE),
        })
        .collect();
    let mut back_arp = MbufBurst::new();
    let mut gleans = [Glean::default(); 32];
    let mut idle = 0u32;
    let hz = cgnat_ffi::tsc_hz().max(1);
    let mut last_report = cgnat_ffi::tsc();
    while !opts.stop.load(Ordering::Relaxed) {
        if opts.until_drained && cgnat_ffi::tsc() - last_report > hz {
            // Progress on long inputs, on stderr (stdout is the JSON summary).
            last_report = cgnat_ffi::tsc();
            let rx: u64 = links
                .iter()
                .map(|l| l.counters.rx[0].get() + l.counters.rx[1].get())
                .sum();
            let tx: u64 = links
                .iter()
                .map(|l| l.counters.tx[0].get() + l.counters.tx[1].get())
                .sum();
            let s: u64 = links
                .iter()
                .map(|l| {
                    l.counters
                        .sessions_active
                        .iter()
                        .map(|c| c.get())
                        .sum::<u64>()
                })
                .sum();
            eprintln!("cgnat: {rx} packets in, {tx} out, {s} sessions");
        }
        let mut work = 0;
        if let Ok(settings) = pool.try_recv() {
            // A reload changed the pool (proxy ARP for the addresses added too).
            control.reconfigure(settings);
        }
        for (w, link) in links.iter().enumerate() {
            // The workers' clock: the neighbour table's ages are read by them.
            let now = clock.now();
            let n = link.glean.dequeue_burst(&mut gleans);
            for g in &gleans[..n] {
                if g.kind == 2 {
                    if let Some(mut m) = control.solicit6(&g.ip6, now) {
                        m.set_port(Side::Inside as u16);
                        if let Err(m) = back_arp.push(m) {
                            control_counters.count_drop(DropReason::ArpRingFull);
                            drop(m);
                        }
                    }
                } else if g.kind == 1 {
                    let side = if g.side == 0 {
                        Side::Inside
                    } else {
                        Side::Outside
                    };
                    control.note_request(g.ip, side, now);
                } else {
                    control.learn(g.ip, &g.mac);
                }
            }
            work += n;
            // PCP frames first, then one burst of ARP and local frames: each has its
            // own ring and its own share of the poll. While the frames waiting to go
            // back to this worker are past their mark, none is taken from it
            // (back-pressure: its ring fills, then its own backlog, then it stops
            // receiving); they go first.
            back[w].send(link, &control_counters, &opts.stop);
            if back[w].held.over() {
                control_counters.alg_backpressured_polls.inc();
                work += 1;
            } else {
                work += link.to_control.dequeue_burst(&mut burst);
            }
            let n = link.to_control_arp.dequeue_burst(&mut arp_burst);
            work += n;
            // ARP and local frames: answered on a ring of their own back, too.
            for mut m in arp_burst.take_all() {
                let side = if m.port() & 1 == 0 {
                    Side::Inside
                } else {
                    Side::Outside
                };
                match control.handle(&mut m, side) {
                    Verdict::Tx(out) => {
                        m.set_port(out as u16);
                        if let Err(m) = back_arp.push(m) {
                            control_counters.count_drop(DropReason::ArpRingFull);
                            drop(m);
                        }
                    }
                    _ => drop(m),
                }
            }
            send_to_control(
                &link.from_control_arp,
                &mut back_arp,
                &control_counters,
                DropReason::ArpRingFull,
            );
            for mut m in burst.take_all() {
                // Ports 0/1: ARP and local traffic from that side; 2/3: PCP frames
                // to send on that side once answered.
                let side = if m.port() & 1 == 0 {
                    Side::Inside
                } else {
                    Side::Outside
                };
                let v = if m.port() >= 2 {
                    control.pcp(&mut m, now)
                } else {
                    control.handle(&mut m, side)
                };
                let pcp = m.port() >= 2;
                match v {
                    Verdict::Tx(out) => {
                        // 0/1: the control lcore's own frames (counted as sent by it);
                        // 2/3: PCP answers, counted as sent by the worker that sends
                        // them.
                        m.set_port(out as u16 + if pcp { 2 } else { 0 });
                        back[w].queue(link, m, &control_counters, &opts.stop);
                    }
                    _ => drop(m),
                }
            }
            back[w].send(link, &control_counters, &opts.stop);
        }
        // Once per poll, outside the loop over the links: PCP announcements (through
        // the first worker).
        control.tick(clock.now());
        send_control_ready(control, links, &mut back, &opts.stop);
        let mut waiting = 0;
        for (link, b) in links.iter().zip(back.iter_mut()) {
            b.send(link, &control_counters, &opts.stop);
            waiting += b.held.len();
        }
        control_counters.alg_backlog.set(waiting as u64);
        if work > 0 {
            idle = 0;
            continue;
        }
        if opts.until_drained {
            let now = cgnat_ffi::tsc();
            let received: u64 = links
                .iter()
                .map(|l| l.counters.rx[0].get() + l.counters.rx[1].get())
                .sum();
            let all_in = opts.input_frames.is_none_or(|n| received >= n);
            let wait = if all_in { hz / 4 } else { 5 * hz };
            let quiet = links.iter().all(|l| {
                l.started.load(Ordering::Acquire)
                    && now.saturating_sub(l.last_rx.load(Ordering::Relaxed)) > wait
                    && l.counters.alg_backlog.get() == 0
                    && l.to_control.count() == 0
                    && l.to_control_arp.count() == 0
                    && l.from_control.count() == 0
                    && l.from_control_arp.count() == 0
                    && l.handoff.count() == 0
            });
            if quiet && waiting == 0 {
                break;
            }
        }
        idle_sleep(&mut idle, busy);
    }
}

/// The ALG frames for the summary: the frames for the control lcore (PCP) held when
/// a ring was full, held now, polls back-pressured, and the time the workers' ALG
/// stream engines took for each ALG frame (p50 and p99: the upper bound of the
/// histogram bucket reached, in microseconds).
fn alg_frames_json(all: &[&WorkerCounters]) -> Value {
    let sum = |f: &dyn Fn(&WorkerCounters) -> u64| -> u64 { all.iter().map(|c| f(c)).sum() };
    let mut counts = [0u64; cgnat_dataplane::counters::LATENCY_BOUNDS_NS.len() + 1];
    for c in all {
        for (t, n) in counts.iter_mut().zip(c.alg_latency.counts()) {
            *t += n;
        }
    }
    let q = |p: f64| {
        cgnat_dataplane::counters::quantile_ns(&counts, p)
            .map(|ns| {
                if ns == u64::MAX {
                    json!("inf")
                } else {
                    json!(ns as f64 / 1e3)
                }
            })
            .unwrap_or(Value::Null)
    };
    let n: u64 = counts.iter().sum();
    let total = sum(&|c| c.alg_latency.sum_ns.get());
    json!({
        "held": sum(&|c| c.alg_frames_held.get()),
        "backlog": sum(&|c| c.alg_backlog.get()),
        "backpressured_polls": sum(&|c| c.alg_backpressured_polls.get()),
        "latency_us": {
            "count": n,
            "mean": if n > 0 { json!(total as f64 / n as f64 / 1e3) } else { Value::Null },
            "p50": q(0.5),
            "p99": q(0.99),
        },
    })
}

/// The PCP server's counters for the summary: requests by outcome, mappings alive
/// and expired.
fn pcp_json(all: &[&WorkerCounters]) -> Value {
    let sum = |f: &dyn Fn(&WorkerCounters) -> u64| -> u64 { all.iter().map(|c| f(c)).sum() };
    let mut m = serde_json::Map::new();
    for &o in cgnat_dataplane::counters::PcpOutcome::ALL {
        m.insert(o.label().into(), json!(sum(&|c| c.pcp[o as usize].get())));
    }
    json!({
        "requests": Value::Object(m),
        "mappings_active": sum(&|c| c.pcp_mappings_active.get()),
        "mappings_expired": sum(&|c| c.pcp_mappings_expired.get()),
    })
}

pub(crate) fn summarize(
    links: &[Arc<WorkerLink>],
    control: &WorkerCounters,
    stats: &[PortStats; 2],
    ownership: [&'static str; 2],
    vlans: &[(String, String, usize)],
) -> Value {
    let all: Vec<&WorkerCounters> = links
        .iter()
        .map(|l| l.counters.as_ref())
        .chain([control])
        .collect();
    let sum = |f: &dyn Fn(&WorkerCounters) -> u64| -> u64 { all.iter().map(|c| f(c)).sum() };
    let mut dropped = serde_json::Map::new();
    for &r in DropReason::ALL {
        let n = sum(&|c| c.dropped(r));
        if n > 0 {
            dropped.insert(r.label().into(), json!(n));
        }
    }
    let per_proto = |f: &dyn Fn(&WorkerCounters, usize) -> u64| -> Value {
        let mut m = serde_json::Map::new();
        for (i, name) in PROTO_NAMES.iter().enumerate() {
            m.insert((*name).into(), json!(sum(&|c| f(c, i))));
        }
        Value::Object(m)
    };
    let mut stages = serde_json::Map::new();
    for (k, name) in STAGES.iter().enumerate() {
        stages.insert(
            (*name).into(),
            json!({ "cycles": sum(&|c| c.stage_cycles[k].get()),
                    "packets": sum(&|c| c.stage_packets[k].get()) }),
        );
    }
    let alg_events = |g: &dyn Fn(&WorkerCounters, usize) -> u64| {
        let mut m = serde_json::Map::new();
        for (e, name) in cgnat_dataplane::counters::ALG_EVENT_NAMES
            .iter()
            .enumerate()
        {
            m.insert((*name).to_string(), json!(sum(&|c| g(c, e))));
        }
        Value::Object(m)
    };
    let mut alg = serde_json::Map::new();
    for (_, key, counter) in cgnat_dataplane::counters::FTP_EVENTS {
        alg.insert(key.into(), json!(sum(&|c| counter(c).get())));
    }
    let others = json!({
        "expectations_created": sum(&|c| c.expectations_created.get()),
        "expectations_matched": sum(&|c| c.expectations_matched.get()),
        "expectations_expired": sum(&|c| c.expectations_expired.get()),
        "expectations_refused": sum(&|c| c.expectations_refused.get()),
        "expectations_evicted": sum(&|c| c.expectations_evicted.get()),
        "expectations_removed": sum(&|c| c.expectations_removed.get()),
        "pair_split": sum(&|c| c.alg_pair_split.get()),
        "policy": cgnat_alg::PLUGINS
            .iter()
            .map(|p| {
                let d = cgnat_dataplane::counters::POLICY_DECISIONS
                    .iter()
                    .enumerate()
                    .map(|(k, d)| ((*d).to_string(), json!(sum(&|c| c.alg_policy(p.id, k)))))
                    .collect::<serde_json::Map<_, _>>();
                (p.name.to_string(), Value::Object(d))
            })
            .collect::<serde_json::Map<_, _>>(),
    });
    if let Value::Object(o) = others {
        alg.extend(o);
    }
    for (id, of) in cgnat_dataplane::counters::TEXT_ALG_EVENTS {
        let name = cgnat_dataplane::counters::alg_name(id);
        alg.insert(name.into(), alg_events(&|c, e| of(c)[e].get()));
    }
    for p in cgnat_dataplane::counters::contract_algs() {
        let m: serde_json::Map<_, _> = cgnat_dataplane::counters::CONTRACT_EVENT_NAMES
            .iter()
            .enumerate()
            .filter(|(e, _)| cgnat_dataplane::counters::contract_event_exported(p.id, *e))
            .map(|(e, name)| {
                let v = sum(&|c| c.contract_event_at(p.id, e).get());
                ((*name).to_string(), json!(v))
            })
            .collect();
        // (Beside a text ALG's own events, when it has them.)
        match alg.get_mut(p.name) {
            Some(Value::Object(o)) => o.extend(m),
            _ => {
                alg.insert(p.name.into(), Value::Object(m));
            }
        }
    }
    // PPTP's calls and their GRE beside its contract events.
    if let Some(Value::Object(m)) =
        alg.get_mut(cgnat_dataplane::counters::alg_name(cgnat_alg::id::PPTP))
    {
        for (k, name) in cgnat_dataplane::nat::PPTP_EVENTS.iter().enumerate() {
            m.insert((*name).into(), json!(sum(&|c| c.pptp[k].get())));
        }
        m.insert(
            "gre_no_call".into(),
            json!(sum(
                &|c| c.dropped(cgnat_dataplane::counters::DropReason::GreNoCall)
            )),
        );
    }
    let per_vlan: Vec<Value> = vlans
        .iter()
        .zip(cgnat_dataplane::vlan::totals(vlans, all.iter().copied()))
        .map(|((port, v, _), [rx, tx, drops])| {
            json!({ "port": port, "vlan": v, "rx": rx, "tx": tx, "drops": drops })
        })
        .collect();
    json!({
        "vlans": per_vlan,
        "packets_in": { "inside": sum(&|c| c.rx[0].get()), "outside": sum(&|c| c.rx[1].get()) },
        "packets_out": { "inside": sum(&|c| c.tx[0].get()), "outside": sum(&|c| c.tx[1].get()) },
        "translated": { "in2out": sum(&|c| c.in2out.get()), "out2in": sum(&|c| c.out2in.get()),
                        "hairpin": sum(&|c| c.hairpin.get()), "excluded": sum(&|c| c.excluded.get()) },
        "icmp_sent": sum(&|c| c.icmp_sent.get()),
        "ip_options_stripped": sum(&|c| c.ip_options_stripped.get()),
        "inbound_sessions_recycled": sum(&|c| c.inbound_sessions_recycled.get()),
        "ha_journal_full": sum(&|c| c.ha_journal_full.get()),
        "log_events_nat64_unlogged": sum(&|c| c.log_events_nat64_unlogged.get()),
        "alg_nat64_skipped": sum(&|c| c.alg_nat64_skipped.get()),
        "alg_nat64_ftp_refused": sum(&|c| c.alg_nat64_ftp_refused.get()),
        "pcp": pcp_json(&all),
        "alg_frames": alg_frames_json(&all),
        "handoff": { "sent": sum(&|c| c.handoff_out.get()), "received": sum(&|c| c.handoff_in.get()) },
        "fragments": { "translated": sum(&|c| c.fragments_translated.get()), "held": sum(&|c| c.fragments_held.get()),
                       "reassembled": sum(&|c| c.fragments_reassembled.get()),
                       "refragmented": sum(&|c| c.fragments_refragmented.get()),
                       "split6": sum(&|c| c.fragments_split6.get()) },
        "alg": Value::Object(alg),
        "workers": links.len(),
        "ownership": { "inside": ownership[0], "outside": ownership[1] },
        "busy_cycles": sum(&|c| c.busy_cycles.get()),
        "stages": Value::Object(stages),
        "tsc_hz": cgnat_ffi::tsc_hz(),
        "dropped": Value::Object(dropped),
        "sessions_created": per_proto(&|c, i| c.sessions_created[i].get()),
        "sessions_expired": per_proto(&|c, i| c.sessions_expired[i].get()),
        "sessions_active": per_proto(&|c, i| c.sessions_active[i].get()),
        "subscribers_active": sum(&|c| c.subscribers_active.get()),
        "nat64_hosts_active": sum(&|c| c.nat64_hosts_active.get()),
        "nat64_subscribers_active": sum(&|c| c.nat64_subscribers_active.get()),
        "nat64_sessions_active": sum(&|c| c.nat64_sessions_active.get()),
        "port_stats": {
            "inside": port_json(&stats[0]),
            "outside": port_json(&stats[1]),
        },
    })
}

fn port_json(s: &PortStats) -> Value {
    json!({ "ipackets": s.ipackets, "opackets": s.opackets, "ibytes": s.ibytes, "obytes": s.obytes,
            "imissed": s.imissed, "ierrors": s.ierrors, "oerrors": s.oerrors, "rx_nombuf": s.rx_nombuf })
}
