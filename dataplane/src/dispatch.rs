//! The one dispatcher of a worker's verdicts: what [`Worker::process`] answered for a
//! frame decides where the frame goes next (a port, another worker, the control lcore,
//! the worker's own hold, the worker's own ALG stream engine, or nowhere). The runtime's worker loop (DPDK bursts and rings
//! as [`Outputs`]), the harness and replay (vectors as [`Outputs`]) all send their
//! frames through [`crate::vector`]'s stages, whose last one is [`route`] for every
//! frame of a burst and [`send_ready`] once, so the tests run the appliance's own
//! code for every verdict, handoff included.
//!
//! The dispatcher does not allocate, lock or log. A frame an output has no room for
//! (after the output flushed what it could) is counted dropped with that output's own
//! reason: [`DropReason::TxFull`], [`DropReason::RingFull`] (handoff; a PCP answer,
//! for an output that can refuse one: the runtime's never does, it holds what its
//! ring cannot take and back-pressures) or [`DropReason::ArpRingFull`] (control). A
//! [`Verdict::Drop`] was counted by the worker already; its frame is only given to
//! [`Outputs::discard`].
//!
//! Its functions are `#[inline(always)]`: the worker loop calls them once per packet,
//! and an out-of-line call there (which the release build chose) costs the loop what
//! the match written in place did not.

use crate::alg_stream::Outcome;
use crate::buf::PacketBuf;
use crate::counters::DropReason;
use crate::pipeline::{Side, Verdict, Worker};

/// Where a worker's frames go. Each method queues the frame (in a burst, a ring's
/// burst, a vector) and gives it back when there is no room for it even after flushing
/// what was queued.
pub trait Outputs<B> {
    /// To be sent on `side`'s port.
    fn tx(&mut self, side: Side, buf: B) -> Result<(), B>;
    /// To worker `worker`, which processes it as received on `side`
    /// ([`Worker::process_handed`]).
    fn handoff(&mut self, worker: u16, side: Side, buf: B) -> Result<(), B>;
    /// To the control lcore (ARP, frames for the appliance), as received on `side`.
    fn control(&mut self, side: Side, buf: B) -> Result<(), B>;
    /// To the control lcore's PCP server (the frame carries the worker's decision),
    /// then to be sent on `side`.
    fn alg(&mut self, side: Side, buf: B) -> Result<(), B>;
    /// A frame dropped for `reason` (already counted): freed.
    fn discard(&mut self, reason: DropReason, buf: B) {
        let _ = reason;
        drop(buf);
    }
}

/// An HA standby's received frames: dropped, each counted `ha_standby`.
pub fn standby_drop<B: PacketBuf, O: Outputs<B>>(
    worker: &Worker<B>,
    bufs: &mut [Option<B>],
    out: &mut O,
) {
    for b in bufs.iter_mut().filter_map(Option::take) {
        worker.counters().count_drop(DropReason::HaStandby);
        out.discard(DropReason::HaStandby, b);
    }
}

/// Sends `buf` where verdict `v` (of `worker`, for a frame received on `from`) says,
/// then the fragments its processing released.
#[inline(always)]
pub fn dispatch<B: PacketBuf, O: Outputs<B>>(
    worker: &mut Worker<B>,
    buf: B,
    v: Verdict,
    from: Side,
    out: &mut O,
) {
    route(worker, buf, v, from, out);
    send_ready(worker, out);
}

/// Sends `buf` where verdict `v` (of `worker`, for a frame received on `from`) says:
/// [`dispatch`] without the released frames ([`send_ready`]), which a burst sends once
/// after all of its frames.
#[inline(always)]
pub fn route<B: PacketBuf, O: Outputs<B>>(
    worker: &mut Worker<B>,
    mut buf: B,
    v: Verdict,
    from: Side,
    out: &mut O,
) {
    let refused = match v {
        Verdict::Tx(side) => match worker.vlan_out(&mut buf, side) {
            Ok(()) => out.tx(side, buf).err().map(|b| (b, DropReason::TxFull)),
            Err(r) => Some((buf, r)),
        },
        Verdict::Drop(r) => {
            out.discard(r, buf);
            None
        }
        Verdict::Hold => {
            worker.hold(buf);
            None
        }
        Verdict::Alg(side) => alg(worker, buf, side, out),
        Verdict::Handoff(w, side) => out
            .handoff(w, side, buf)
            .err()
            .map(|b| (b, DropReason::RingFull)),
        Verdict::Control => out
            .control(from, buf)
            .err()
            .map(|b| (b, DropReason::ArpRingFull)),
    };
    if let Some((b, r)) = refused {
        worker.counters().count_drop(r);
        out.discard(r, b);
    }
}

/// A frame the worker tagged ([`Verdict::Alg`]): a PCP answer goes to the control
/// lcore's server; any other is an ALG session's, run through the worker's own ALG
/// stream engine ([`Worker::alg_frame`]) and sent, held, or dropped as it says, with
/// what the engine then has ready right behind it (a held run's segments go before
/// the one that completed them, and nothing of this burst comes between). Returns a
/// frame the control lcore's ring refused.
#[inline(never)]
fn alg<B: PacketBuf, O: Outputs<B>>(
    worker: &mut Worker<B>,
    mut buf: B,
    side: Side,
    out: &mut O,
) -> Option<(B, DropReason)> {
    if crate::pcp::Decision::tagged(&buf) {
        return out.alg(side, buf).err().map(|b| (b, DropReason::RingFull));
    }
    match engine(worker, &mut buf, side) {
        Outcome::Send => {
            worker.counters().tx[side as usize].inc();
            transmit(out, side, buf, worker);
        }
        Outcome::Hold => worker.hold_alg(buf),
        Outcome::Drop(r) => out.discard(r, buf),
    }
    send_alg_ready(worker, out);
    None
}

/// Runs a frame the worker tagged for an ALG session through the worker's ALG stream
/// engine ([`Worker::alg_frame`]), timed (`cgnat_alg_frame_latency_seconds`): the
/// engine's answer. The burst path runs it as each frame is processed
/// ([`crate::vector`]) and sends the frame later with [`engine_done`].
#[inline]
pub fn engine<B: PacketBuf>(worker: &mut Worker<B>, buf: &mut B, side: Side) -> Outcome {
    let t0 = cgnat_ffi::tsc();
    let o = worker.alg_frame(buf, side);
    // (Without the EAL, the harness's, the TSC's rate is unknown: not recorded.)
    let hz = cgnat_ffi::tsc_hz();
    if hz > 0 {
        let cycles = u128::from(cgnat_ffi::tsc().saturating_sub(t0));
        let ns = cycles * 1_000_000_000 / u128::from(hz);
        worker
            .counters()
            .alg_latency
            .record(ns.min(u128::from(u64::MAX)) as u64);
    }
    o
}

/// Sends (or, `drop`, frees) a frame the worker's ALG stream engine already ran on
/// ([`engine`]; `frame`: its number, [`Worker::alg_frame_number`]) with what the
/// engine made ready up to it right behind it.
#[inline(never)]
pub fn engine_done<B: PacketBuf, O: Outputs<B>>(
    worker: &mut Worker<B>,
    buf: Option<B>,
    (side, frame, drop): (Side, u32, Option<DropReason>),
    out: &mut O,
) {
    if let Some(buf) = buf {
        match drop {
            Some(r) => out.discard(r, buf),
            None => {
                worker.counters().tx[side as usize].inc();
                transmit(out, side, buf, worker);
            }
        }
    }
    while let Some((b, side)) = worker.take_alg_ready_of(frame) {
        worker.counters().tx[side as usize].inc();
        transmit(out, side, b, worker);
    }
}

/// Sends what the worker's ALG stream engine has ready, in order.
fn send_alg_ready<B: PacketBuf, O: Outputs<B>>(worker: &mut Worker<B>, out: &mut O) {
    while let Some((b, side)) = worker.take_alg_ready() {
        worker.counters().tx[side as usize].inc();
        transmit(out, side, b, worker);
    }
}

/// Sends the frames the worker has ready: fragments a first fragment released and
/// frames whose next hop became known (to a port), outside fragments their director
/// hands on to the datagram's owner (to that worker), the fragments of a datagram
/// reassembled for an ALG (through the worker's ALG stream engine), and what the
/// engine released on its own (segments that waited too long).
#[inline(always)]
pub fn send_ready<B: PacketBuf, O: Outputs<B>>(worker: &mut Worker<B>, out: &mut O) {
    while let Some((b, side)) = worker.take_ready() {
        transmit(out, side, b, worker);
    }
    while let Some((b, w, side)) = worker.take_handoff() {
        if let Err(b) = out.handoff(w, side, b) {
            worker.counters().count_drop(DropReason::RingFull);
            out.discard(DropReason::RingFull, b);
        }
    }
    while let Some((b, side)) = worker.take_alg() {
        if let Some((b, r)) = alg(worker, b, side, out) {
            worker.counters().count_drop(r);
            out.discard(r, b);
        }
    }
    send_alg_ready(worker, out);
}

/// Sends `buf` on `side` with the VLAN tags it leaves with
/// ([`Worker::vlan_out`]), counted dropped ([`DropReason::TxFull`]) in `worker`'s
/// counters when there is no room: the frames a worker builds, gets back from the
/// control lcore, or had waiting.
#[inline(always)]
pub fn transmit<B: PacketBuf, O: Outputs<B>>(
    out: &mut O,
    side: Side,
    mut buf: B,
    worker: &Worker<B>,
) {
    let r = match worker.vlan_out(&mut buf, side) {
        Ok(()) => match out.tx(side, buf) {
            Ok(()) => return,
            Err(b) => (b, DropReason::TxFull),
        },
        Err(r) => (buf, r),
    };
    worker.counters().count_drop(r.1);
    out.discard(r.1, r.0);
}

/// [`Outputs`] over vectors, without limits unless given: the harness's and replay's,
/// and what tests read.
#[derive(Debug)]
pub struct VecOutputs<B> {
    /// Frames to send, in order, with their side.
    pub tx: Vec<(Side, B)>,
    /// Frames for other workers: (worker, side received as, frame).
    pub handoff: Vec<(u16, Side, B)>,
    /// Frames for the control lcore, with the side they came from.
    pub control: Vec<(Side, B)>,
    /// Frames for the control lcore's PCP server, with the side they leave on.
    pub alg: Vec<(Side, B)>,
    /// Frames dropped, with their reason.
    pub dropped: Vec<(DropReason, B)>,
    /// Room of each queue (tx, handoff, control, alg), as a burst's or ring's.
    pub room: [usize; 4],
}

impl<B> Default for VecOutputs<B> {
    fn default() -> Self {
        VecOutputs {
            tx: Vec::new(),
            handoff: Vec::new(),
            control: Vec::new(),
            alg: Vec::new(),
            dropped: Vec::new(),
            room: [usize::MAX; 4],
        }
    }
}

fn queue<T>(v: &mut Vec<T>, room: usize, item: T) -> Result<(), T> {
    if v.len() >= room {
        return Err(item);
    }
    v.push(item);
    Ok(())
}

impl<B> Outputs<B> for VecOutputs<B> {
    fn tx(&mut self, side: Side, buf: B) -> Result<(), B> {
        queue(&mut self.tx, self.room[0], (side, buf)).map_err(|e| e.1)
    }
    fn handoff(&mut self, worker: u16, side: Side, buf: B) -> Result<(), B> {
        queue(&mut self.handoff, self.room[1], (worker, side, buf)).map_err(|e| e.2)
    }
    fn control(&mut self, side: Side, buf: B) -> Result<(), B> {
        queue(&mut self.control, self.room[2], (side, buf)).map_err(|e| e.1)
    }
    fn alg(&mut self, side: Side, buf: B) -> Result<(), B> {
        queue(&mut self.alg, self.room[3], (side, buf)).map_err(|e| e.1)
    }
    fn discard(&mut self, reason: DropReason, buf: B) {
        self.dropped.push((reason, buf));
    }
}
