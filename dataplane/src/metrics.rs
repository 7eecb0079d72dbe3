//! `/metrics` for Prometheus, served by a plain thread (never an lcore). Workers never
//! contend for it: each writes its own counters, and a scrape reads them all and the
//! ports' DPDK statistics, and renders the text format with the `prometheus` crate.

use crate::http::Response;
use cgnat_dataplane::counters::{
    Counter, DropReason, Latency, WorkerCounters, LATENCY_BOUNDS_NS, PROTO_NAMES, STAGES,
};
use cgnat_ffi::Port;
use prometheus::proto::{
    Bucket, Counter as PCounter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// What a scrape reads.
pub struct Source {
    /// Per worker counters.
    pub workers: Vec<Arc<WorkerCounters>>,
    /// The control lcore's counters.
    pub control: Arc<WorkerCounters>,
    /// The ports, by name.
    pub ports: Vec<(String, Port)>,
    /// Per worker, ports in use per pool address.
    pub pool_usage: Vec<Arc<Vec<Counter>>>,
    /// The pool addresses, in the order of `pool_usage`, with their draining marks.
    pub pool_addrs: crate::reload::SharedPool,
    /// How each port (by name) decides which worker owns a frame
    /// ([`cgnat_dataplane::nat::rss::ownership`]: `rss`, `hash`, `range`, `blocks` or `single`).
    pub ownership: Vec<(String, &'static str)>,
    /// The HTTP servers' refusals, by server (`api`, `metrics`).
    pub http: Vec<(&'static str, Arc<crate::http::Stats>)>,
    /// The ports' VLAN sub-interfaces ([`cgnat_dataplane::vlan::labels`]).
    pub vlans: Vec<(String, String, usize)>,
    /// HA state sync, when configured.
    pub ha: Option<Arc<crate::hasync::Shared>>,
}

/// Reads one counter of a worker.
type Read<'a> = &'a dyn Fn(&WorkerCounters) -> u64;

/// Ports in use on pool address `i`, summed over the workers' counters.
pub fn ports_used(usage: &[Arc<Vec<Counter>>], i: usize) -> u64 {
    usage.iter().map(|u| u.get(i).map_or(0, Counter::get)).sum()
}

struct Families(Vec<MetricFamily>);

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name((*k).to_string());
            l.set_value((*v).to_string());
            l
        })
        .collect()
}

impl Families {
    fn family(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        samples: Vec<(Vec<(&str, String)>, f64)>,
    ) {
        // The text encoder refuses a family without samples (e.g. the per-VLAN ones
        // on ports without VLANs): leave it out.
        if samples.is_empty() {
            return;
        }
        let mut f = MetricFamily::default();
        f.set_name(name.to_string());
        f.set_help(help.to_string());
        f.set_field_type(kind);
        let metrics = samples
            .into_iter()
            .map(|(ls, v)| {
                let mut m = Metric::default();
                let pairs: Vec<(&str, &str)> = ls.iter().map(|(k, v)| (*k, v.as_str())).collect();
                m.set_label(labels(&pairs));
                match kind {
                    MetricType::COUNTER => {
                        let mut c = PCounter::default();
                        c.set_value(v);
                        m.set_counter(c);
                    }
                    _ => {
                        let mut g = Gauge::default();
                        g.set_value(v);
                        m.set_gauge(g);
                    }
                }
                m
            })
            .collect();
        f.set_metric(metrics);
        self.0.push(f);
    }

    fn counter(&mut self, name: &str, help: &str, samples: Vec<(Vec<(&str, String)>, f64)>) {
        self.family(name, help, MetricType::COUNTER, samples);
    }

    fn gauge(&mut self, name: &str, help: &str, samples: Vec<(Vec<(&str, String)>, f64)>) {
        self.family(name, help, MetricType::GAUGE, samples);
    }

    /// A histogram in seconds from [`Latency`] counters (its buckets made cumulative).
    fn histogram(&mut self, name: &str, help: &str, samples: Vec<(Vec<(&str, String)>, &Latency)>) {
        if samples.is_empty() {
            return;
        }
        let mut f = MetricFamily::default();
        f.set_name(name.to_string());
        f.set_help(help.to_string());
        f.set_field_type(MetricType::HISTOGRAM);
        let metrics = samples
            .into_iter()
            .map(|(ls, l)| {
                let mut m = Metric::default();
                let pairs: Vec<(&str, &str)> = ls.iter().map(|(k, v)| (*k, v.as_str())).collect();
                m.set_label(labels(&pairs));
                let counts = l.counts();
                let mut h = Histogram::default();
                let mut seen = 0;
                let buckets = LATENCY_BOUNDS_NS
                    .iter()
                    .zip(counts)
                    .map(|(&bound, n)| {
                        seen += n;
                        let mut b = Bucket::default();
                        b.set_upper_bound(bound as f64 / 1e9);
                        b.set_cumulative_count(seen);
                        b
                    })
                    .collect();
                h.set_bucket(buckets);
                h.set_sample_count(counts.iter().sum());
                h.set_sample_sum(l.sum_ns.get() as f64 / 1e9);
                m.set_histogram(h);
                m
            })
            .collect();
        f.set_metric(metrics);
        self.0.push(f);
    }
}

/// The HA sync's metrics: role, peer, sync lag, messages by outcome, last bulk sync.
fn ha_metrics(f: &mut Families, ha: &crate::hasync::Shared) {
    use std::sync::atomic::Ordering::Relaxed;
    let role = ha.role();
    f.gauge(
        "cgnat_ha_role",
        "HA role: 1 for the role this appliance has (active forwards; standby installs the active's state).",
        ["active", "standby"]
            .iter()
            .map(|r| (vec![("role", r.to_string())], f64::from(u8::from(*r == role))))
            .collect(),
    );
    f.gauge(
        "cgnat_ha_peer_info",
        "The HA peer's sync address (value 1).",
        vec![(
            vec![
                ("peer", ha.cfg.peer.to_string()),
                ("listen", ha.cfg.listen.to_string()),
            ],
            1.0,
        )],
    );
    f.gauge(
        "cgnat_ha_in_sync",
        "1 while a standby holds a complete bulk sync and saw no loss since.",
        vec![(vec![], f64::from(u8::from(ha.in_sync.load(Relaxed))))],
    );
    f.gauge(
        "cgnat_ha_sync_lag_records",
        "Sync records waiting to be sent to the peer.",
        vec![(vec![], ha.queued.load(Relaxed) as f64)],
    );
    let c = &ha.counters;
    f.counter(
        "cgnat_ha_messages_total",
        "Sync messages: sent, received (accepted), lost (sequence gaps seen).",
        vec![
            (vec![("outcome", "sent".into())], c.sent.get() as f64),
            (
                vec![("outcome", "received".into())],
                c.received.get() as f64,
            ),
            (vec![("outcome", "lost".into())], c.lost.get() as f64),
        ],
    );
    f.counter(
        "cgnat_ha_refused_total",
        "Sync messages refused, by reason.",
        vec![
            (
                vec![("reason", "malformed".into())],
                c.malformed.get() as f64,
            ),
            (
                vec![("reason", "version".into())],
                c.bad_version.get() as f64,
            ),
            (vec![("reason", "bad_mac".into())], c.bad_mac.get() as f64),
            (vec![("reason", "replay".into())], c.replay.get() as f64),
            (vec![("reason", "source".into())], c.foreign.get() as f64),
        ],
    );
    f.counter(
        "cgnat_ha_records_total",
        "Sync records sent and received.",
        vec![
            (
                vec![("direction", "sent".into())],
                c.records_sent.get() as f64,
            ),
            (
                vec![("direction", "received".into())],
                c.records_received.get() as f64,
            ),
        ],
    );
    f.counter(
        "cgnat_ha_install_failed_total",
        "Records a standby could not install as given.",
        vec![(vec![], c.install_failed.get() as f64)],
    );
    f.counter(
        "cgnat_ha_resync_requests_total",
        "Resync requests sent (on joining, after a loss).",
        vec![(vec![], c.resync_requests.get() as f64)],
    );
    f.counter(
        "cgnat_ha_bulk_syncs_total",
        "Bulk syncs completed (sent as active, received as standby).",
        vec![(vec![], c.bulk_syncs.get() as f64)],
    );
    f.counter(
        "cgnat_ha_refresh_sweeps_total",
        "Refresh sweeps the active sent (its whole state again, as updates).",
        vec![(vec![], c.refreshes.get() as f64)],
    );
    let last = ha.last_bulk_ms.load(Relaxed);
    if last != 0 {
        f.gauge(
            "cgnat_ha_last_bulk_sync_timestamp_seconds",
            "When the last bulk sync completed (Unix time).",
            vec![(vec![], last as f64 / 1000.0)],
        );
    }
    f.counter(
        "cgnat_ha_role_changes_total",
        "Role changes made through the control API.",
        vec![
            (vec![("to", "active".into())], ha.promotions.get() as f64),
            (vec![("to", "standby".into())], ha.demotions.get() as f64),
        ],
    );
}

impl Source {
    /// Every metric, in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut f = Families(Vec::new());
        let stats: Vec<(String, cgnat_ffi::PortStats)> = self
            .ports
            .iter()
            .map(|(n, p)| (n.clone(), p.stats()))
            .collect();
        let per_port =
            |g: &dyn Fn(&cgnat_ffi::PortStats) -> u64| -> Vec<(Vec<(&str, String)>, f64)> {
                stats
                    .iter()
                    .map(|(n, s)| (vec![("port", n.clone())], g(s) as f64))
                    .collect()
            };
        f.counter(
            "cgnat_port_rx_packets_total",
            "Packets received by the port (DPDK).",
            per_port(&|s| s.ipackets),
        );
        f.counter(
            "cgnat_port_tx_packets_total",
            "Packets sent by the port (DPDK).",
            per_port(&|s| s.opackets),
        );
        f.counter(
            "cgnat_port_rx_bytes_total",
            "Bytes received by the port (DPDK).",
            per_port(&|s| s.ibytes),
        );
        f.counter(
            "cgnat_port_tx_bytes_total",
            "Bytes sent by the port (DPDK).",
            per_port(&|s| s.obytes),
        );
        f.counter(
            "cgnat_port_rx_missed_total",
            "Packets the port dropped for lack of descriptors.",
            per_port(&|s| s.imissed),
        );
        f.counter(
            "cgnat_port_rx_errors_total",
            "Receive errors of the port.",
            per_port(&|s| s.ierrors),
        );
        f.counter(
            "cgnat_port_tx_errors_total",
            "Transmit errors of the port.",
            per_port(&|s| s.oerrors),
        );
        f.counter(
            "cgnat_port_rx_nombuf_total",
            "Receive failures for lack of mbufs.",
            per_port(&|s| s.rx_nombuf),
        );

        let all: Vec<(String, &WorkerCounters)> = self
            .workers
            .iter()
            .enumerate()
            .map(|(i, c)| (i.to_string(), c.as_ref()))
            .chain([("control".to_string(), self.control.as_ref())])
            .collect();
        let per_worker = |g: &dyn Fn(&WorkerCounters) -> u64| -> Vec<(Vec<(&str, String)>, f64)> {
            all.iter()
                .map(|(w, c)| (vec![("worker", w.clone())], g(c) as f64))
                .collect()
        };
        let sides = |g: &dyn Fn(&WorkerCounters, usize) -> u64| -> Vec<(Vec<(&str, String)>, f64)> {
            let mut v = Vec::new();
            for (w, c) in &all {
                for (i, side) in ["inside", "outside"].iter().enumerate() {
                    v.push((
                        vec![("worker", w.clone()), ("side", (*side).to_string())],
                        g(c, i) as f64,
                    ));
                }
            }
            v
        };
        f.counter(
            "cgnat_worker_rx_packets_total",
            "Packets a worker took from a port.",
            sides(&|c, i| c.rx[i].get()),
        );
        f.counter(
            "cgnat_worker_tx_packets_total",
            "Packets a worker sent to a port.",
            sides(&|c, i| c.tx[i].get()),
        );
        f.counter(
            "cgnat_worker_bursts_total",
            "Receive bursts that returned packets.",
            per_worker(&|c| c.bursts.get()),
        );
        f.counter(
            "cgnat_worker_idle_polls_total",
            "Polls that found nothing.",
            per_worker(&|c| c.idle_polls.get()),
        );
        f.counter(
            "cgnat_worker_busy_polls_total",
            "Polls that found work.",
            per_worker(&|c| c.busy_polls.get()),
        );
        f.counter(
            "cgnat_worker_busy_cycles_total",
            "TSC cycles spent in polls that found work.",
            per_worker(&|c| c.busy_cycles.get()),
        );
        let stages =
            |g: &dyn Fn(&WorkerCounters, usize) -> u64| -> Vec<(Vec<(&str, String)>, f64)> {
                let mut v = Vec::new();
                for (w, c) in all.iter().filter(|(w, _)| w != "control") {
                    for (k, stage) in STAGES.iter().enumerate() {
                        v.push((
                            vec![("worker", w.clone()), ("stage", (*stage).to_string())],
                            g(c, k) as f64,
                        ));
                    }
                }
                v
            };
        f.counter(
            "cgnat_worker_stage_cycles_total",
            "TSC cycles a worker's burst path spent in each stage: parse (and classify), \
             lookup, translate, create (new plain outbound flows' sessions), slow (the full \
             per-packet path), dispatch.",
            stages(&|c, k| c.stage_cycles[k].get()),
        );
        f.counter(
            "cgnat_worker_stage_packets_total",
            "Packets each stage of a worker's burst path handled (parse and dispatch: \
             all; lookup: the plain ones; translate: those it translated; slow: the rest).",
            stages(&|c, k| c.stage_packets[k].get()),
        );
        f.gauge(
            "cgnat_worker_cycles_per_packet",
            "Busy cycles divided by packets received, since start.",
            per_worker(&|c| {
                c.busy_cycles
                    .get()
                    .checked_div(c.rx[0].get() + c.rx[1].get() + c.handoff_in.get())
                    .unwrap_or(0)
            }),
        );
        f.counter(
            "cgnat_worker_handoff_sent_total",
            "Packets handed to the worker that owns them.",
            per_worker(&|c| c.handoff_out.get()),
        );
        f.counter(
            "cgnat_worker_handoff_received_total",
            "Packets received from other workers.",
            per_worker(&|c| c.handoff_in.get()),
        );
        f.gauge(
            "cgnat_port_ownership",
            "1 for the way each port's frames find their worker: rss (the device steers \
             them to their owner's queue), hash, range or blocks (handoff), single.",
            self.ownership
                .iter()
                .map(|(port, mode)| {
                    (
                        vec![("port", port.clone()), ("mode", (*mode).to_string())],
                        1.0,
                    )
                })
                .collect(),
        );
        f.counter(
            "cgnat_worker_ring_drops_total",
            "Packets dropped because the handoff ring to another worker was full (PCP \
             answers are held instead: cgnat_alg_frames_held_total).",
            per_worker(&|c| c.dropped(DropReason::RingFull)),
        );
        f.counter(
            "cgnat_alg_frames_held_total",
            "PCP frames a full ring to the control lcore (worker=\"control\": back to a \
             worker) could not take, held in the lcore's backlog and sent in order (ALG \
             frames never go there: each worker's ALG stream engine rewrites its own).",
            per_worker(&|c| c.alg_frames_held.get()),
        );
        f.gauge(
            "cgnat_alg_backlog_frames",
            "PCP frames held in the lcore's backlog now.",
            per_worker(&|c| c.alg_backlog.get()),
        );
        f.counter(
            "cgnat_alg_backpressured_polls_total",
            "Polls that took no new frames (a worker: from its ports and handoff ring; \
             the control lcore: from a worker's PCP ring) while the backlog was past its \
             mark.",
            per_worker(&|c| c.alg_backpressured_polls.get()),
        );
        f.histogram(
            "cgnat_alg_frame_latency_seconds",
            "Time the worker's ALG stream engine took for an ALG frame (rewrite, \
             sequence adjustment, policy), from taking it to queueing it and what it \
             released for transmission.",
            all.iter()
                .filter(|(w, _)| w != "control")
                .map(|(w, c)| (vec![("worker", w.clone())], &c.alg_latency))
                .collect(),
        );

        let mut drops = Vec::new();
        for (w, c) in &all {
            for &r in DropReason::ALL {
                drops.push((
                    vec![("worker", w.clone()), ("reason", r.label().to_string())],
                    c.dropped(r) as f64,
                ));
            }
        }
        f.counter("cgnat_drops_total", "Packets dropped, by reason.", drops);
        let vlan = cgnat_dataplane::vlan::totals(&self.vlans, all.iter().map(|(_, c)| *c));
        for (k, name, help) in [
            (
                0,
                "cgnat_vlan_rx_packets_total",
                "Packets received on the VLAN sub-interface.",
            ),
            (
                1,
                "cgnat_vlan_tx_packets_total",
                "Packets sent on the VLAN sub-interface.",
            ),
            (
                2,
                "cgnat_vlan_drops_total",
                "Packets received on the VLAN sub-interface and dropped.",
            ),
        ] {
            let samples = self
                .vlans
                .iter()
                .zip(&vlan)
                .map(|((port, v, _), n)| {
                    (
                        vec![("port", port.clone()), ("vlan", v.clone())],
                        n[k] as f64,
                    )
                })
                .collect();
            f.counter(name, help, samples);
        }
        let sum = |g: &dyn Fn(&WorkerCounters) -> u64| -> f64 {
            all.iter().map(|(_, c)| g(c)).sum::<u64>() as f64
        };
        f.counter(
            "cgnat_translated_packets_total",
            "Packets translated, by direction.",
            vec![
                (
                    vec![("direction", "in2out".to_string())],
                    sum(&|c| c.in2out.get()),
                ),
                (
                    vec![("direction", "out2in".to_string())],
                    sum(&|c| c.out2in.get()),
                ),
                (
                    vec![("direction", "hairpin".to_string())],
                    sum(&|c| c.hairpin.get()),
                ),
                (
                    vec![("direction", "untranslated".to_string())],
                    sum(&|c| c.excluded.get()),
                ),
            ],
        );
        f.counter(
            "cgnat_icmp_sent_total",
            "ICMP errors the appliance sent.",
            vec![(vec![], sum(&|c| c.icmp_sent.get()))],
        );
        f.counter(
            "cgnat_ip_options_stripped_total",
            "Packets whose IPv4 options were overwritten with no-operation options.",
            vec![(vec![], sum(&|c| c.ip_options_stripped.get()))],
        );
        f.counter(
            "cgnat_pcp_requests_total",
            "PCP and NAT-PMP requests, by outcome (mapped, deleted, answered, or why refused or dropped).",
            cgnat_dataplane::counters::PcpOutcome::ALL
                .iter()
                .map(|&o| {
                    (
                        vec![("outcome", o.label().to_string())],
                        sum(&|c| c.pcp[o as usize].get()),
                    )
                })
                .collect(),
        );
        f.gauge(
            "cgnat_pcp_mappings",
            "PCP and NAT-PMP mappings alive now.",
            vec![(vec![], sum(&|c| c.pcp_mappings_active.get()))],
        );
        f.counter(
            "cgnat_pcp_mappings_expired_total",
            "PCP and NAT-PMP mappings whose lifetime ended.",
            vec![(vec![], sum(&|c| c.pcp_mappings_expired.get()))],
        );
        if let Some(ha) = &self.ha {
            ha_metrics(&mut f, ha);
        }
        f.counter(
            "cgnat_ha_journal_full_total",
            "Sessions created or ended that found the HA sync journal full (a bulk sync follows).",
            vec![(vec![], sum(&|c| c.ha_journal_full.get()))],
        );
        f.counter(
            "cgnat_inbound_sessions_recycled_total",
            "Unanswered inbound-created sessions recycled for newer ones (inbound budget full).",
            vec![(vec![], sum(&|c| c.inbound_sessions_recycled.get()))],
        );
        f.counter(
            "cgnat_log_events_nat64_unlogged_total",
            "NAT events about NAT64 subscribers not logged (their handle or key named no live IPv6 host or prefix).",
            vec![(vec![], sum(&|c| c.log_events_nat64_unlogged.get()))],
        );
        f.counter(
            "cgnat_alg_nat64_skipped_total",
            "NAT64 sessions to an ALG's server port made without the ALG (SIP).",
            vec![(vec![], sum(&|c| c.alg_nat64_skipped.get()))],
        );
        f.counter(
            "cgnat_alg_nat64_ftp_refused_total",
            "NAT64 FTP control lines the ALG could not translate (RFC 6384), passed unchanged.",
            vec![(vec![], sum(&|c| c.alg_nat64_ftp_refused.get()))],
        );
        f.counter(
            "cgnat_fragments_translated_total",
            "Fragments translated.",
            vec![(vec![], sum(&|c| c.fragments_translated.get()))],
        );
        f.counter(
            "cgnat_fragments_reassembled_total",
            "Datagrams of ALG sessions reassembled from their fragments for the ALG.",
            vec![(vec![], sum(&|c| c.fragments_reassembled.get()))],
        );
        f.counter(
            "cgnat_fragments_refragmented_total",
            "Reassembled ALG datagrams sent again as fragments.",
            vec![(vec![], sum(&|c| c.fragments_refragmented.get()))],
        );
        f.counter(
            "cgnat_fragments_split6_total",
            "NAT64: IPv4 packets without DF cut into IPv6 fragments (lowest-ipv6-mtu).",
            vec![(vec![], sum(&|c| c.fragments_split6.get()))],
        );
        let mut alg_events = vec![];
        for (name, _, counter) in cgnat_dataplane::counters::FTP_EVENTS {
            alg_events.push((
                vec![("alg", "ftp".to_string()), ("event", name.to_string())],
                sum(&|c| counter(c).get()),
            ));
        }
        for (id, of) in cgnat_dataplane::counters::TEXT_ALG_EVENTS {
            let alg = cgnat_dataplane::counters::alg_name(id);
            for (e, name) in cgnat_dataplane::counters::ALG_EVENT_NAMES
                .iter()
                .enumerate()
            {
                alg_events.push((
                    vec![("alg", alg.to_string()), ("event", (*name).to_string())],
                    sum(&|c| of(c)[e].get()),
                ));
            }
        }
        for p in cgnat_dataplane::counters::contract_algs() {
            for (e, name) in cgnat_dataplane::counters::contract_series(p.id) {
                alg_events.push((
                    vec![("alg", p.name.to_string()), ("event", (*name).to_string())],
                    sum(&|c| c.contract_event_at(p.id, e).get()),
                ));
            }
        }
        let pptp = cgnat_dataplane::counters::alg_name(cgnat_alg::id::PPTP);
        for (k, name) in cgnat_dataplane::nat::PPTP_EVENTS.iter().enumerate() {
            alg_events.push((
                vec![("alg", pptp.to_string()), ("event", (*name).to_string())],
                sum(&|c| c.pptp[k].get()),
            ));
        }
        alg_events.push((
            vec![
                ("alg", pptp.to_string()),
                ("event", "gre_no_call".to_string()),
            ],
            sum(&|c| c.dropped(cgnat_dataplane::counters::DropReason::GreNoCall)),
        ));
        let mut policy = vec![];
        for p in cgnat_alg::PLUGINS.iter() {
            for (d, decision) in cgnat_dataplane::counters::POLICY_DECISIONS
                .iter()
                .enumerate()
            {
                policy.push((
                    vec![
                        ("alg", p.name.to_string()),
                        ("decision", (*decision).to_string()),
                    ],
                    sum(&|c| c.alg_policy(p.id, d)),
                ));
            }
        }
        f.counter(
            "cgnat_alg_policy_total",
            "What the ALGs' policies decided, by ALG: commands or requests refused and answered in the server's name (reply) or dropped (drop), new sessions left without the ALG because of their subscriber (subscriber_off).",
            policy,
        );
        f.counter(
            "cgnat_alg_events_total",
            "What the ALGs did with control messages, by ALG and event.",
            alg_events,
        );
        let exp: [(&str, Read); 7] = [
            ("created", &|c| c.expectations_created.get()),
            ("matched", &|c| c.expectations_matched.get()),
            ("expired", &|c| c.expectations_expired.get()),
            ("refused", &|c| c.expectations_refused.get()),
            ("evicted", &|c| c.expectations_evicted.get()),
            ("removed", &|c| c.expectations_removed.get()),
            ("pair_split", &|c| c.alg_pair_split.get()),
        ];
        f.counter(
            "cgnat_alg_expectations_total",
            "ALG expectations (pinholes), by what happened to them.",
            exp.iter()
                .map(|(n, g)| (vec![("event", (*n).to_string())], sum(*g)))
                .collect(),
        );
        let per_proto =
            |g: &dyn Fn(&WorkerCounters, usize) -> u64| -> Vec<(Vec<(&str, String)>, f64)> {
                PROTO_NAMES
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        (
                            vec![("protocol", (*p).to_string())],
                            all.iter().map(|(_, c)| g(c, i)).sum::<u64>() as f64,
                        )
                    })
                    .collect()
            };
        f.gauge(
            "cgnat_nat_sessions",
            "Sessions alive now.",
            per_proto(&|c, i| c.sessions_active[i].get()),
        );
        f.counter(
            "cgnat_nat_sessions_created_total",
            "Sessions created.",
            per_proto(&|c, i| c.sessions_created[i].get()),
        );
        f.counter(
            "cgnat_nat_sessions_expired_total",
            "Sessions expired.",
            per_proto(&|c, i| c.sessions_expired[i].get()),
        );
        f.gauge(
            "cgnat_nat_mappings",
            "Mappings alive now.",
            vec![(vec![], sum(&|c| c.mappings_active.get()))],
        );
        f.gauge(
            "cgnat_nat_subscribers",
            "Subscribers with state now.",
            vec![(vec![], sum(&|c| c.subscribers_active.get()))],
        );
        f.gauge(
            "cgnat_nat64_hosts",
            "NAT64: IPv6 hosts with sessions now.",
            vec![(vec![], sum(&|c| c.nat64_hosts_active.get()))],
        );
        f.gauge(
            "cgnat_nat64_subscribers",
            "NAT64: subscriber prefixes with state now (among cgnat_nat_subscribers).",
            vec![(vec![], sum(&|c| c.nat64_subscribers_active.get()))],
        );
        f.gauge(
            "cgnat_nat64_sessions",
            "NAT64: sessions of IPv6 hosts now (among cgnat_nat_sessions).",
            vec![(vec![], sum(&|c| c.nat64_sessions_active.get()))],
        );
        f.gauge(
            "cgnat_nat_port_blocks",
            "Port blocks allocated now.",
            vec![(vec![], sum(&|c| c.blocks_active.get()))],
        );
        let limit = |r: DropReason| sum(&|c| c.dropped(r));
        f.counter(
            "cgnat_nat_limit_hits_total",
            "New sessions refused by a limit, by limit.",
            vec![
                (
                    vec![("limit", "subscriber_sessions".to_string())],
                    limit(DropReason::SubscriberSessionLimit),
                ),
                (
                    vec![("limit", "subscriber_ports".to_string())],
                    limit(DropReason::SubscriberPortLimit),
                ),
                (
                    vec![("limit", "session_table".to_string())],
                    limit(DropReason::SessionTableFull),
                ),
                (
                    vec![("limit", "pool".to_string())],
                    limit(DropReason::PoolExhausted),
                ),
                (
                    vec![("limit", "subscriber_table".to_string())],
                    limit(DropReason::SubscriberTableFull),
                ),
                (
                    vec![("limit", "mapping_table".to_string())],
                    limit(DropReason::MappingTableFull),
                ),
            ],
        );
        let view = self.pool_addrs.read().unwrap_or_else(|e| e.into_inner());
        let usage = view
            .entries()
            .map(|(i, a, _)| {
                let used = ports_used(&self.pool_usage, i);
                (vec![("address", a.to_string())], used as f64)
            })
            .collect();
        let draining = view
            .entries()
            .map(|(_, a, d)| (vec![("address", a.to_string())], f64::from(u8::from(d))))
            .collect();
        drop(view);
        f.gauge(
            "cgnat_pool_ports_used",
            "Outside ports in use (all protocols, quarantine included) per pool address.",
            usage,
        );
        f.gauge(
            "cgnat_pool_address_draining",
            "1 for a pool address a reload removed: no new mappings, its live ones kept.",
            draining,
        );

        let mut refused = Vec::new();
        for (server, st) in &self.http {
            for (why, n) in st.refusals() {
                refused.push((
                    vec![
                        ("server", (*server).to_string()),
                        ("reason", why.to_string()),
                    ],
                    n as f64,
                ));
            }
        }
        f.counter(
            "cgnat_http_refused_total",
            "Connections or requests the control surfaces refused or cut short, by server \
             and reason (busy: too many connections; per_source: too many from one remote address; \
             too_large: request head over the \
             limit; timed_out: request or answer slower than the deadline; unauthorized: \
             no or wrong token).",
            refused,
        );
        f.gauge(
            "cgnat_http_connections",
            "Connections the control surfaces serve now, by server.",
            self.http
                .iter()
                .map(|(server, st)| {
                    (
                        vec![("server", (*server).to_string())],
                        st.open.load(std::sync::atomic::Ordering::Relaxed) as f64,
                    )
                })
                .collect(),
        );

        let mut out = Vec::new();
        // The text encoder only fails on invalid metric names, which are fixed here.
        let _ = TextEncoder::new().encode(&f.0, &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Serves `/metrics` from `server` on a plain thread until `stop` is set.
pub fn serve(
    server: crate::http::Server,
    src: Source,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    crate::http::serve(server, stop, move |method, path, _| {
        if path == "/metrics" && method == "GET" {
            Response {
                code: 200,
                content_type: "text/plain; version=0.0.4",
                body: src.render(),
            }
        } else {
            Response {
                code: 404,
                content_type: "text/plain",
                body: "cgnat serves /metrics\n".into(),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latency_histogram_renders_cumulative_buckets_in_seconds() {
        let l = Latency::default();
        for ns in [800, 1_500, 1_500, 3_000_000, 2_000_000_000] {
            l.record(ns);
        }
        let mut f = Families(Vec::new());
        f.histogram(
            "cgnat_alg_frame_latency_seconds",
            "help",
            vec![(vec![("worker", "0".to_string())], &l)],
        );
        let mut out = Vec::new();
        TextEncoder::new().encode(&f.0, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for line in [
            "# TYPE cgnat_alg_frame_latency_seconds histogram",
            r#"cgnat_alg_frame_latency_seconds_bucket{worker="0",le="0.000001"} 1"#,
            r#"cgnat_alg_frame_latency_seconds_bucket{worker="0",le="0.000002"} 3"#,
            r#"cgnat_alg_frame_latency_seconds_bucket{worker="0",le="0.005"} 4"#,
            r#"cgnat_alg_frame_latency_seconds_bucket{worker="0",le="1"} 4"#,
            r#"cgnat_alg_frame_latency_seconds_bucket{worker="0",le="+Inf"} 5"#,
            r#"cgnat_alg_frame_latency_seconds_count{worker="0"} 5"#,
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(text.contains("cgnat_alg_frame_latency_seconds_sum{worker=\"0\"} 2.0030038"));
    }
}
