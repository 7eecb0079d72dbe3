//! A whole appliance without DPDK: one worker (or several) and the control handler
//! wired together over [`VecBuf`]s. Tests, replay and the pipeline's own checks drive
//! it frame by frame; it runs exactly the code the lcores run, verdicts dispatched by
//! [`crate::dispatch`] as on the lcores (handoff included).

use crate::buf::{PacketBuf, VecBuf};
use crate::counters::WorkerCounters;
use crate::dispatch::{self, VecOutputs};
use crate::nat::{Nat, NatParams};
use crate::neighbors::Neighbors;
use crate::pipeline::{port_infos, Control, PipelineParams, Side, Verdict, Worker};
use crate::vector;
use crate::wire::ethernet::Mac;
use cgnat_config::Config;
use std::sync::Arc;

/// MAC used for the inside port when none is given.
pub const INSIDE_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x01, 0x01];
/// MAC used for the outside port when none is given.
pub const OUTSIDE_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x02, 0x01];

/// The workers plus control, in one thread.
pub struct Harness {
    /// Worker 0 (the only one unless built with [`Harness::with_workers`]).
    pub worker: Worker<VecBuf>,
    /// Workers 1 and on.
    pub others: Vec<Worker<VecBuf>>,
    /// The control handler.
    pub control: Control<VecBuf>,
    /// The neighbour table they share.
    pub neighbors: Arc<Neighbors>,
    /// Worker 0's counters.
    pub counters: Arc<WorkerCounters>,
    /// Control counters.
    pub control_counters: Arc<WorkerCounters>,
}

impl Harness {
    /// Builds the appliance of `cfg` at time `now`, with ports at [`INSIDE_MAC`] and
    /// [`OUTSIDE_MAC`]. Static neighbours (`gateway_mac`) are learned.
    pub fn new(cfg: &Config, now: u32) -> Harness {
        Harness::with_workers(cfg, 1, now)
    }

    /// The appliance of `cfg` with `workers` workers (each with its own counters, as
    /// on lcores) sharing one control handler: a frame a worker hands off is processed
    /// by the other, as the runtime's handoff ring delivers it.
    pub fn with_workers(cfg: &Config, workers: u16, now: u32) -> Harness {
        let ports = port_infos(cfg, [INSIDE_MAC, OUTSIDE_MAC]);
        let neighbors = Arc::new(Neighbors::of_config(cfg));
        let control_counters = Arc::new(WorkerCounters::default());
        let params = nat_params(cfg, workers);
        let pool = params.pool.clone();
        let mut all: Vec<Worker<VecBuf>> = (0..workers.max(1))
            .map(|w| {
                let counters = Arc::new(WorkerCounters::default());
                let seed = 0x5eed + u64::from(w);
                let nat = Nat::new(params.clone(), w, workers, now, seed, counters.clone());
                Worker::new(
                    nat,
                    ports.clone(),
                    PipelineParams::from_config(cfg),
                    neighbors.clone(),
                    counters,
                )
            })
            .collect();
        let worker = all.remove(0);
        let counters = worker.counters().clone();
        let mut control = Control::new(ports, pool, neighbors.clone(), control_counters.clone());
        // PCP announcements.
        control.set_alloc(Box::new(|| Some(VecBuf::new(&[]))));
        control.set_pcp(crate::pcp::params(&cfg.pcp));
        let neighbors6 = control.nd().map(|nd| nd.neighbors().clone());
        let mut worker = worker;
        for w in std::iter::once(&mut worker).chain(all.iter_mut()) {
            w.set_neighbors6(neighbors6.clone());
            // NAT64 cuts IPv4 packets into IPv6 fragments (RFC 7915 4.1).
            w.set_alloc(Box::new(|| Some(VecBuf::new(&[]))));
            // A rewritten datagram may need more fragments than it came in; a policy
            // reply is built.
            w.set_alg_alloc(Box::new(|| Some(VecBuf::new(&[]))));
            w.set_alg_policy(crate::alg::AlgPolicy::of(&cfg.alg));
        }
        Harness {
            worker,
            others: all,
            control,
            neighbors,
            counters,
            control_counters,
        }
    }

    /// The appliance of `cfg` for replaying captures: frames carry whatever MACs they
    /// were captured with, and next hops nobody resolved get the broadcast MAC.
    pub fn new_replay(cfg: &Config, now: u32) -> Harness {
        let mut h = Harness::new(cfg, now);
        let mut params = PipelineParams::from_config(cfg);
        params.check_dst_mac = false;
        params.unresolved_mac = Some(crate::wire::ethernet::BROADCAST);
        // Captures come from labs whose servers sit on private addresses: the replay
        // asks whether the translation round trips, not whether the destination would
        // be routed upstream (nat.allow_destinations).
        params.allow.push(cgnat_config::Ipv4Net {
            addr: std::net::Ipv4Addr::UNSPECIFIED,
            prefix: 0,
        });
        h.worker.set_params(params);
        h
    }

    /// A reload of `cfg` at `now`: every worker takes its settings as between two
    /// bursts ([`Worker::reconfigure`]). `cfg` must change only what changes live
    /// (`cgnat_config::reload_plan`).
    pub fn reconfigure(&mut self, cfg: &Config, now: u32) {
        let workers = 1 + self.others.len() as u16;
        let mut sorted = Vec::new();
        for w in self.workers() {
            let mut nat = nat_params(cfg, workers);
            let pool = &w.nat().pool;
            nat.follow(pool.addresses(), pool.usage.len())
                .expect("the pool fits its room");
            sorted.clone_from(&nat.pool);
            w.reconfigure(PipelineParams::from_config(cfg), nat, now);
            w.set_alg_policy(crate::alg::AlgPolicy::of(&cfg.alg));
        }
        // The control lcore answers proxy ARP for every pool address, draining ones too.
        sorted.sort_unstable();
        self.control.set_pool(sorted);
    }

    /// Worker `w`.
    pub fn nth(&mut self, w: u16) -> &mut Worker<VecBuf> {
        match w {
            0 => &mut self.worker,
            _ => &mut self.others[usize::from(w) - 1],
        }
    }

    /// All the workers, in order.
    pub fn workers(&mut self) -> impl Iterator<Item = &mut Worker<VecBuf>> {
        std::iter::once(&mut self.worker).chain(self.others.iter_mut())
    }

    /// Sends one frame in on `side` at `now` (to worker 0); returns what left which port.
    pub fn inject(&mut self, frame: &[u8], side: Side, now: u32) -> Vec<(Side, Vec<u8>)> {
        self.inject_at(0, frame, side, now)
    }

    /// Sends one frame in on `side` at `now` to worker `w` (the queue the device
    /// delivered it to), through the runtime's burst path and dispatcher: a handoff is
    /// processed by its worker, frames for the control lcore by the control handler
    /// (an ALG session's by its worker's own ALG stream engine, in the dispatcher).
    /// Returns what left which port.
    pub fn inject_at(
        &mut self,
        w: u16,
        frame: &[u8],
        side: Side,
        now: u32,
    ) -> Vec<(Side, Vec<u8>)> {
        self.inject_burst_at(w, &[(frame, side)], now)
    }

    /// Sends `frames` (each with the side it comes in on) at `now` to worker 0 as one
    /// receive burst; returns what left which port.
    pub fn inject_burst(&mut self, frames: &[(&[u8], Side)], now: u32) -> Vec<(Side, Vec<u8>)> {
        self.inject_burst_at(0, frames, now)
    }

    /// Sends `frames` at `now` to worker `w` as one receive burst (in vectors of
    /// [`vector::VECTOR`]), as [`Harness::inject_at`] sends one; the frames handed
    /// to a worker go to it as one burst too, as its handoff ring delivers them.
    pub fn inject_burst_at(
        &mut self,
        w: u16,
        frames: &[(&[u8], Side)],
        now: u32,
    ) -> Vec<(Side, Vec<u8>)> {
        let mut out = Vec::new();
        let mut o = VecOutputs::default();
        let mut queue = std::collections::VecDeque::new();
        let mut first = Some(frames);
        loop {
            // The burst given, then each handed-over frame as its ring delivers it.
            let w = match first.take() {
                Some(frames) => {
                    let worker = self.nth(w);
                    let burst = frames.iter().map(|&(f, s)| (VecBuf::new(f), s));
                    vector::receive_burst(worker, burst, false, now, &mut o);
                    w
                }
                None => match queue.pop_front() {
                    Some((w, side, buf)) => {
                        vector::receive_handed(self.nth(w), buf, side, now, &mut o);
                        w
                    }
                    None => break,
                },
            };
            let worker = match w {
                0 => &mut self.worker,
                _ => &mut self.others[usize::from(w) - 1],
            };
            for &(ip, mac) in worker.take_gleaned() {
                self.control.learn(ip, &mac);
            }
            out.extend(o.tx.drain(..).map(|(s, b)| (s, b.data().to_vec())));
            // The control lcore: its answers come back to this worker to send.
            for (from, mut b) in o.control.drain(..) {
                self.control.tick(now);
                if let Verdict::Tx(s) = self.control.handle(&mut b, from) {
                    send(worker, s, b, &mut out);
                }
            }
            for (_, mut b) in o.alg.drain(..) {
                if let Verdict::Tx(s) = self.control.pcp(&mut b, now) {
                    // Sent by the worker once the control lcore gives it back.
                    worker.counters().tx[s as usize].inc();
                    send(worker, s, b, &mut out);
                }
            }
            // As the handoff ring delivers them: to their worker, once.
            queue.extend(o.handoff.drain(..));
            o.dropped.clear();
        }
        for w in 0..self.workers_len() {
            out.append(&mut self.requests(w, now));
        }
        for w in 0..self.workers_len() {
            self.nth(w).poll_neighbors(now);
            out.append(&mut self.requests(w, now));
        }
        for w in 0..self.workers_len() {
            dispatch::send_ready(self.nth(w), &mut o);
            out.extend(o.tx.drain(..).map(|(s, b)| (s, b.data().to_vec())));
        }
        self.send_ready(&mut out);
        out
    }

    /// What the control lcore has ready (its own frames, to the inside), sent by
    /// worker 0 (as the runtime gives them back through its ring).
    fn send_ready(&mut self, out: &mut Vec<(Side, Vec<u8>)>) {
        while let Some(b) = self.control.take_ready() {
            self.worker.counters().tx[Side::Inside as usize].inc();
            send(&self.worker, Side::Inside, b, out);
        }
    }

    fn workers_len(&self) -> u16 {
        1 + self.others.len() as u16
    }

    /// The ARP requests the worker asked for, built and noted by the control handler
    /// (whose answers it then learns).
    fn requests(&mut self, w: u16, now: u32) -> Vec<(Side, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(a) = self.nth(w).next_solicit6() {
            if let Some(buf) = self.control.solicit6(&a, now) {
                send(self.nth(w), Side::Inside, buf, &mut out);
            }
        }
        while let Some((hop, side)) = self.nth(w).next_request() {
            let mut buf = VecBuf::new(&[]);
            if let Verdict::Tx(side) = self.nth(w).build_arp_request(hop, side, &mut buf) {
                self.control.note_request(hop, side, now);
                send(self.nth(w), side, buf, &mut out);
            }
        }
        out
    }

    /// Runs expiry up to `now` on every worker.
    pub fn expire(&mut self, now: u32) -> usize {
        self.workers().map(|w| w.expire(now, usize::MAX)).sum()
    }

    /// Frames the workers' timers send at `now` (ICMP for held SYNs, the segments
    /// their ALG stream engines held too long).
    pub fn timer_frames(&mut self, now: u32) -> Vec<(Side, Vec<u8>)> {
        let mut out = Vec::new();
        self.control.tick(now);
        let mut o = VecOutputs::default();
        for w in 0..self.workers_len() {
            self.nth(w).alg_tick(now);
            self.nth(w).poll_neighbors(now);
            out.append(&mut self.requests(w, now));
            dispatch::send_ready(self.nth(w), &mut o);
            out.extend(o.tx.drain(..).map(|(s, b)| (s, b.data().to_vec())));
        }
        self.send_ready(&mut out);
        for w in 0..self.workers_len() {
            let worker = self.nth(w);
            while let Some(h) = worker.pop_expired_syn(now) {
                let mut buf = VecBuf::new(&[]);
                if let Verdict::Tx(side) = worker.build_syn_unreachable(&h, &mut buf) {
                    send(worker, side, buf, &mut out);
                }
            }
        }
        out
    }
}

/// The NAT settings of `cfg` for `workers` workers, ALGs included.
fn nat_params(cfg: &Config, workers: u16) -> NatParams {
    let mut params =
        NatParams::from_config(&cfg.nat, workers).expect("deterministic parameters fit");
    params.set_algs(&cfg.alg);
    params.set_nat64(cfg.nat64.as_ref());
    // What gets logged, as the runtime sets it (`[logging]`).
    params.log = crate::log::Policy::from_config(cfg);
    params
}

/// Sends `b` on `side` as the runtime does ([`dispatch::transmit`]: VLAN tags
/// pushed), into `out`.
fn send(worker: &Worker<VecBuf>, side: Side, b: VecBuf, out: &mut Vec<(Side, Vec<u8>)>) {
    let mut o = VecOutputs::default();
    dispatch::transmit(&mut o, side, b, worker);
    out.extend(o.tx.drain(..).map(|(s, b)| (s, b.data().to_vec())));
}
