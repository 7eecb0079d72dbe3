//! A whole appliance without DPDK: one worker and the control handler wired together
//! over [`VecBuf`]s. Tests, replay and the pipeline's own checks drive it frame by
//! frame; it runs exactly the code the lcores run.

use crate::buf::{PacketBuf, VecBuf};
use crate::counters::WorkerCounters;
use crate::nat::{Nat, NatParams};
use crate::neighbors::Neighbors;
use crate::pipeline::{port_infos, Control, PipelineParams, Side, Verdict, Worker};
use crate::wire::ethernet::Mac;
use cgnat_config::Config;
use std::sync::Arc;

/// MAC used for the inside port when none is given.
pub const INSIDE_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x01, 0x01];
/// MAC used for the outside port when none is given.
pub const OUTSIDE_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x02, 0x01];

/// One worker plus control, in one thread.
pub struct Harness {
    /// The worker.
    pub worker: Worker<VecBuf>,
    /// The control handler.
    pub control: Control<VecBuf>,
    /// The neighbour table they share.
    pub neighbors: Arc<Neighbors>,
    /// Worker counters.
    pub counters: Arc<WorkerCounters>,
    /// Control counters.
    pub control_counters: Arc<WorkerCounters>,
}

impl Harness {
    /// Builds the appliance of `cfg` at time `now`, with ports at [`INSIDE_MAC`] and
    /// [`OUTSIDE_MAC`]. Static neighbours (`gateway_mac`) are learned.
    pub fn new(cfg: &Config, now: u32) -> Harness {
        let ports = port_infos(cfg, [INSIDE_MAC, OUTSIDE_MAC]);
        let neighbors = Arc::new(Neighbors::new(4096));
        for p in &cfg.ports {
            if let (Some(gw), Some(mac)) = (p.gateway, p.gateway_mac) {
                neighbors.pin(u32::from(gw), &mac);
            }
        }
        let counters = Arc::new(WorkerCounters::default());
        let control_counters = Arc::new(WorkerCounters::default());
        let mut params = NatParams::from_config(&cfg.nat, 1).expect("deterministic parameters fit");
        params.set_algs(&cfg.alg);
        let pool = params.pool.clone();
        let nat = Nat::new(params, 0, 1, now, 0x5eed, counters.clone());
        let worker = Worker::new(
            nat,
            ports.clone(),
            PipelineParams::from_config(cfg),
            neighbors.clone(),
            counters.clone(),
        );
        let mut control = Control::new(ports, pool, neighbors.clone(), control_counters.clone());
        control.set_alloc(Box::new(|| Some(VecBuf::new(&[]))));
        Harness {
            worker,
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

    /// Sends one frame in on `side` at `now`; returns what left which port.
    pub fn inject(&mut self, frame: &[u8], side: Side, now: u32) -> Vec<(Side, Vec<u8>)> {
        let mut buf = VecBuf::new(frame);
        let mut v = self.worker.process(&mut buf, side, now);
        for &(ip, mac) in self.worker.take_gleaned() {
            self.control.learn(ip, &mac);
        }
        if v == Verdict::Control {
            self.control.tick(now);
            v = self.control.handle(&mut buf, side);
        }
        let mut requests = self.requests(now);
        let mut out = match v {
            Verdict::Tx(out) => vec![(out, buf.data().to_vec())],
            Verdict::Hold => {
                self.worker.hold(buf);
                Vec::new()
            }
            Verdict::Handoff(..) => unreachable!("a single worker owns everything"),
            Verdict::Alg(side) => match self.control.alg(&mut buf, side, now) {
                Verdict::Tx(out) => {
                    // Sent by the worker once the control lcore gives it back.
                    self.counters.tx[out as usize].inc();
                    vec![(out, buf.data().to_vec())]
                }
                Verdict::Hold => {
                    self.control.hold_alg(buf);
                    Vec::new()
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        // Fragments of a datagram reassembled for an ALG, for the control lcore.
        while let Some((mut b, side)) = self.worker.take_alg() {
            match self.control.alg(&mut b, side, now) {
                Verdict::Tx(out_side) => {
                    self.counters.tx[out_side as usize].inc();
                    out.push((out_side, b.data().to_vec()));
                }
                Verdict::Hold => self.control.hold_alg(b),
                _ => {}
            }
        }
        out.append(&mut requests);
        self.worker.poll_neighbors(now);
        out.append(&mut self.requests(now));
        while let Some((b, side)) = self.worker.take_ready() {
            out.push((side, b.data().to_vec()));
        }
        while let Some((b, side)) = self.control.take_ready() {
            self.counters.tx[side as usize].inc();
            out.push((side, b.data().to_vec()));
        }
        out
    }

    /// The ARP requests the worker asked for, built and noted by the control handler
    /// (whose answers it then learns).
    fn requests(&mut self, now: u32) -> Vec<(Side, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some((hop, side)) = self.worker.next_request() {
            let mut buf = VecBuf::new(&[]);
            if let Verdict::Tx(side) = self.worker.build_arp_request(hop, side, &mut buf) {
                self.control.note_request(hop, side, now);
                out.push((side, buf.data().to_vec()));
            }
        }
        out
    }

    /// Runs expiry up to `now`.
    pub fn expire(&mut self, now: u32) -> usize {
        self.worker.expire(now, usize::MAX)
    }

    /// Frames the worker's timers send at `now` (ICMP for held SYNs).
    pub fn timer_frames(&mut self, now: u32) -> Vec<(Side, Vec<u8>)> {
        let mut out = Vec::new();
        self.control.tick(now);
        self.worker.poll_neighbors(now);
        out.append(&mut self.requests(now));
        while let Some((b, side)) = self.worker.take_ready() {
            out.push((side, b.data().to_vec()));
        }
        while let Some((b, side)) = self.control.take_ready() {
            out.push((side, b.data().to_vec()));
        }
        while let Some(h) = self.worker.pop_expired_syn(now) {
            let mut buf = VecBuf::new(&[]);
            if let Verdict::Tx(side) = self.worker.build_syn_unreachable(&h, &mut buf) {
                out.push((side, buf.data().to_vec()));
            }
        }
        out
    }
}
