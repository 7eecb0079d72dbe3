//! A worker's burst path: each burst is processed as a vector, in stages over all of
//! its frames (as VPP does), with one metadata record per frame carried from the
//! first stage to the last:
//!
//! 1. parse and classify every frame ([`Worker::classify`]): the plain ones (IPv4
//!    TCP, UDP or ICMP query, no options, no fragment, nothing special about their
//!    addresses, this worker's) keep their offsets, tuple and TCP flags; every other
//!    frame is marked slow, and one the slow pass may still translate through a
//!    session (a first fragment, IP options, a group MAC: [`Worker::touching`]) keeps
//!    its tuple too;
//! 2. hash the plain frames' session keys and prefetch their index slots;
//! 3. probe the slots ([`crate::nat::index::Index::probe`]) and prefetch the session
//!    records they name, then look the sessions up from there (those of the marked
//!    slow frames too); a miss is slow, and an outbound one (a new
//!    flow) gets the hashes creating its session needs, its subscriber and mapping
//!    index slots and its source's neighbour slot prefetched (creation stage a:
//!    [`crate::nat::Nat::create_slots`]);
//! 4. translate the plain frames whose session needs nothing but its translation
//!    ([`Worker::translate`]: state and timer as [`crate::nat::Nat::in2out`] and
//!    `out2in` leave them, rewrite, TTL, MAC addresses); an ALG session, an unanswered
//!    inbound one, an unknown next hop, or a marked slow frame of the same session
//!    ahead of it in the burst makes the frame slow, with nothing changed;
//! 5. creation stages b and c over all the new flows (their subscriber and mapping
//!    records, then their subscribers' port bitmap words and the free session
//!    record: prefetches only), then the slow frames in their order: a plain new
//!    outbound flow's session is created without a re-parse or a second lookup
//!    ([`Worker::create`], creation stage d: the "create" stage counters; the new
//!    sessions' outside keys are indexed after the next creations, before any other
//!    frame's processing: [`crate::nat::Nat::defer_out_keys`]), the others go
//!    through the full per-packet path ([`Worker::process`], the reference
//!    behaviour). A new flow goes the full way too when its session may
//!    exist by then (an earlier frame of its tuple created it, or a frame the full
//!    path processed ahead of it may have) or would get an ALG. A frame held (a
//!    fragment, a frame waiting for its next hop) is given to [`Worker::hold`] at
//!    once. A frame of an ALG session runs through the worker's ALG stream engine
//!    right after it is processed ([`dispatch::engine`]), so that what the engine
//!    reads and grants, it does in the burst's order, as one frame at a time would;
//!    a segment it holds is given to it at once;
//! 6. one dispatch of every frame's verdict in the burst's order
//!    ([`dispatch::route`]; an ALG frame with what the engine made ready up to it
//!    right behind it: [`dispatch::engine_done`]), then of what the burst released
//!    ([`dispatch::send_ready`]).
//!
//! A packet of a plain session is therefore translated before the slow frames that
//! came ahead of it in its burst are processed; no slow frame ahead of it changes its
//! session (creation leaves existing sessions alone, a recycled inbound session is
//! never plain, and a slow frame of the same session sends it the slow way too), so
//! the outputs are those of processing the frames one by one. Frames released during
//! a burst (fragments held for a first one) go out after all of the burst's frames.
//! The cycles of each stage (a TSC read between stages, six per burst, and, in a
//! burst with new flows, one where a run of created frames of the create-or-slow
//! pass starts or ends) and the packets each handled are counted per worker
//! ([`crate::counters::WorkerCounters::stage_cycles`]).
//!
//! No allocation, lock or log: the metadata and the frames of a burst live in fixed
//! arrays on the stack.

use crate::alg_stream::Outcome;
use crate::buf::PacketBuf;
use crate::counters::DropReason;
use crate::dispatch::{self, Outputs};
use crate::nat::index::Probe;
use crate::nat::CreateHashes;
use crate::pipeline::{Plain, Side, TranslateStage, Verdict, Worker};

/// The most frames one vector holds (two receive bursts of 32).
pub const VECTOR: usize = 64;

/// A set of frames of a vector, one bit each.
type Mask = u64;

const _: () = assert!(
    VECTOR <= Mask::BITS as usize,
    "a Mask marks the frames of a vector"
);

/// The set of frame `i` alone.
#[inline(always)]
const fn bit(i: usize) -> Mask {
    1 << i
}

/// The set of the frames before frame `i`.
#[inline(always)]
const fn before(i: usize) -> Mask {
    bit(i) - 1
}

/// What happens next to a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    /// A plain frame: looked up, and translated if its session allows.
    Fast,
    /// Through the full per-packet path.
    Slow,
    /// Processed: dispatch this verdict.
    Done(Verdict),
    /// Processed, and run through the worker's ALG stream engine
    /// ([`dispatch::engine`]): sent on this side (dropped for the reason, or held if
    /// the frame is gone), with what the engine made ready up to this frame number.
    Engine(Side, u32, Option<DropReason>),
    /// Taken by the worker (held).
    Gone,
}

/// One frame's metadata, carried through the stages.
#[derive(Clone, Copy, Debug)]
struct Meta {
    side: Side,
    next: Next,
    plain: Plain,
    hash: u32,
    /// Where the lookup's first step stopped (stage 3).
    probe: Probe,
    session: u32,
    /// The VLAN sub-interface it came in on (0: untagged; [`crate::vlan::ingress`]).
    vlan: u8,
    /// A new flow's subscriber and mapping key hashes (creation stage a).
    create: CreateHashes,
}

impl Meta {
    const EMPTY: Meta = Meta {
        side: Side::Inside,
        next: Next::Slow,
        plain: Plain::EMPTY,
        hash: 0,
        probe: Probe::ABSENT,
        session: 0,
        vlan: 0,
        create: CreateHashes { sub: 0, map: 0 },
    };
}

/// The frames of a vector that created a session (`frames`), and their session
/// hashes as a 1,024-bit filter, so that [`Created::earlier`] compares a new flow's
/// tuple with theirs only when its hash's bit is set.
#[derive(Default)]
struct Created {
    frames: Mask,
    hashes: [u64; 16],
}

impl Created {
    #[inline]
    fn bit(hash: u32) -> (usize, u64) {
        let b = hash >> 22;
        ((b >> 6) as usize, 1 << (b & 63))
    }

    /// Frame `i`, whose session hash is `hash`, created a session.
    #[inline]
    fn add(&mut self, i: usize, hash: u32) {
        self.frames |= bit(i);
        let (w, m) = Self::bit(hash);
        self.hashes[w] |= m;
    }

    /// True when one of the frames before frame `i` that created a session has its
    /// tuple: the session the lookup of `i` missed may exist now.
    #[inline]
    fn earlier(&self, meta: &[Meta], i: usize) -> bool {
        let (w, m) = Self::bit(meta[i].hash);
        if self.hashes[w] & m == 0 {
            return false;
        }
        let t = &meta[i].plain.tuple;
        let mut bits = self.frames & before(i);
        while bits != 0 {
            if meta[bits.trailing_zeros() as usize].plain.tuple == *t {
                return true;
            }
            bits &= bits - 1;
        }
        false
    }
}

/// Processes `frames` (each with the side it was received on; `handed`: handed over
/// by another worker, as [`Worker::process_handed`]) at `now`, in vectors of up to
/// [`VECTOR`], and dispatches every one to `out`.
#[inline]
pub fn receive_burst<B, O, I>(
    worker: &mut Worker<B>,
    frames: I,
    handed: bool,
    now: u32,
    out: &mut O,
) where
    B: PacketBuf,
    O: Outputs<B>,
    I: IntoIterator<Item = (B, Side)>,
{
    let mut it = frames.into_iter();
    let mut bufs: [Option<B>; VECTOR] = std::array::from_fn(|_| None);
    let mut meta = [Meta::EMPTY; VECTOR];
    loop {
        let mut n = 0;
        while n < VECTOR {
            let Some((b, side)) = it.next() else { break };
            bufs[n] = Some(b);
            meta[n] = Meta {
                side,
                ..Meta::EMPTY
            };
            n += 1;
        }
        if n == 0 {
            return;
        }
        if worker.standby() {
            crate::dispatch::standby_drop(worker, &mut bufs[..n], out);
        } else {
            vector(worker, &mut bufs[..n], &mut meta[..n], handed, now, out);
        }
        if n < VECTOR {
            return;
        }
    }
}

/// Processes one frame received on `from` and dispatches it: a burst of one.
#[inline]
pub fn receive<B: PacketBuf, O: Outputs<B>>(
    worker: &mut Worker<B>,
    buf: B,
    from: Side,
    now: u32,
    out: &mut O,
) {
    receive_burst(worker, [(buf, from)], false, now, out);
}

/// Processes one frame another worker handed over (as received on `from`) and
/// dispatches it: a burst of one.
#[inline]
pub fn receive_handed<B: PacketBuf, O: Outputs<B>>(
    worker: &mut Worker<B>,
    buf: B,
    from: Side,
    now: u32,
    out: &mut O,
) {
    receive_burst(worker, [(buf, from)], true, now, out);
}

/// The stages over one vector (`bufs` all Some on entry, empty on return).
#[inline]
fn vector<B: PacketBuf, O: Outputs<B>>(
    worker: &mut Worker<B>,
    bufs: &mut [Option<B>],
    meta: &mut [Meta],
    handed: bool,
    now: u32,
    out: &mut O,
) {
    let n = bufs.len();
    let t0 = cgnat_ffi::tsc();

    // 1. Parse and classify (VLAN tags stripped first: a handed frame's were). A
    //    frame left out that the slow pass may still translate through a session
    //    (a first fragment, IP options, a group MAC) is marked: a plain frame of the
    //    same session after it goes the slow way too, so that the session sees its
    //    packets in their order.
    let mut fast = 0u64;
    let mut touching: Mask = 0;
    for (i, (b, m)) in bufs.iter_mut().zip(meta.iter_mut()).enumerate() {
        let Some(b) = b.as_mut() else { continue };
        if !handed {
            match worker.vlan_in(b, m.side) {
                Ok(v) => m.vlan = v,
                Err(r) => {
                    m.next = Next::Done(Verdict::Drop(r));
                    continue;
                }
            }
        }
        if let Some(p) = worker.classify(b, m.side, handed) {
            m.plain = p;
            m.next = Next::Fast;
            fast += 1;
        } else if let Some(t) = worker.touching(b, m.side, handed) {
            m.plain.tuple = t;
            touching |= bit(i);
        }
    }
    let t1 = cgnat_ffi::tsc();

    // 2. Hashes, index slots.
    let looked = |i: usize, m: &Meta| m.next == Next::Fast || touching & bit(i) != 0;
    for (_, m) in meta.iter_mut().enumerate().filter(|(i, m)| looked(*i, m)) {
        let outbound = m.side == Side::Inside;
        m.hash = worker.nat.session_hash(&m.plain.tuple, outbound);
        worker.nat.prefetch_slot(m.hash, outbound);
    }
    // 3. Session records, lookups. A miss goes the slow way; an outbound one is
    //    likely a new flow (marked for the creation prefetch).
    for (_, m) in meta.iter_mut().enumerate().filter(|(i, m)| looked(*i, m)) {
        m.probe = worker.nat.probe_session(m.hash, m.side == Side::Inside);
    }
    let mut new_flows: Mask = 0;
    for (i, m) in meta.iter_mut().enumerate() {
        if touching & bit(i) != 0 {
            let outbound = m.side == Side::Inside;
            match worker
                .nat
                .find_probed(&m.plain.tuple, outbound, m.hash, m.probe)
            {
                Some(s) => m.session = s,
                None => touching &= !bit(i),
            }
            continue;
        }
        if m.next != Next::Fast {
            continue;
        }
        let outbound = m.side == Side::Inside;
        match worker
            .nat
            .find_probed(&m.plain.tuple, outbound, m.hash, m.probe)
        {
            Some(s) => m.session = s,
            None => {
                m.next = Next::Slow;
                if outbound {
                    // Creation stage a: the subscriber and mapping index slots.
                    m.create = worker.nat.create_slots(&m.plain.tuple);
                    worker.prefetch_source(m.plain.tuple.src);
                    new_flows |= bit(i);
                }
            }
        }
    }
    let t2 = cgnat_ffi::tsc();

    // 4. Translate.
    let mut translated = 0u64;
    let mut stage = TranslateStage::new(now, handed);
    for i in 0..n {
        if meta[i].next != Next::Fast {
            continue;
        }
        let mut ahead = touching & before(i);
        let mut shared = false;
        while ahead != 0 {
            let j = ahead.trailing_zeros() as usize;
            shared |= meta[j].session == meta[i].session;
            ahead &= ahead - 1;
        }
        let (Some(b), m) = (bufs[i].as_mut(), &mut meta[i]) else {
            continue;
        };
        if shared {
            m.next = Next::Slow;
            continue;
        }
        m.next = match worker.translate(b, &m.plain, m.side, m.session, &mut stage) {
            Some(v) => {
                translated += 1;
                Next::Done(v)
            }
            None => Next::Slow,
        };
    }
    let t3 = cgnat_ffi::tsc();

    // 5. The new flows' sessions are created in stages over all of them (b: the
    //    subscriber and existing mapping records; c: the port bitmap words, the free
    //    session record; d, in order: commit), the slow frames go the full way; both
    //    in the burst's order, so that each decides what one at a time decides.
    let mut bits = new_flows;
    while bits != 0 {
        let m = &meta[bits.trailing_zeros() as usize];
        worker.nat.create_records(m.create);
        bits &= bits - 1;
    }
    let mut bits = new_flows;
    while bits != 0 {
        let m = &meta[bits.trailing_zeros() as usize];
        worker
            .nat
            .create_ports(&m.plain.tuple, m.create, bits == new_flows);
        bits &= bits - 1;
    }
    // The create stage's cycles: stages b and c, and the runs of frames of the pass
    // that were created (a TSC read where a run of created frames starts or ends,
    // only in a burst with new flows).
    let mut last = if new_flows != 0 { cgnat_ffi::tsc() } else { t3 };
    let mut create_cycles = last.wrapping_sub(t3);
    let mut creating = false;
    let mut slow = 0u64;
    // A frame the full path processed may have created any session (its own, or the
    // inbound one of a new flow's tuple): the new flows after it look again.
    let mut full = false;
    let mut created = Created::default();
    for i in 0..n {
        if meta[i].next != Next::Slow {
            continue;
        }
        let creates = !handed
            && new_flows & bit(i) != 0
            && !created.earlier(meta, i)
            && (!full
                || worker
                    .nat
                    .find_hashed(&meta[i].plain.tuple, true, meta[i].hash)
                    .is_none())
            && worker.nat.creates_plain(&meta[i].plain.tuple);
        if creates != creating {
            let t = cgnat_ffi::tsc();
            if creating {
                create_cycles = create_cycles.wrapping_add(t.wrapping_sub(last));
            }
            (last, creating) = (t, creates);
        }
        let (Some(buf), m) = (bufs[i].as_mut(), &mut meta[i]) else {
            continue;
        };
        let v = if creates {
            created.add(i, m.hash);
            // The new sessions' outside keys are indexed after the next creations
            // (their slots' misses overlap those), before anything else reads them.
            worker.nat.defer_out_keys();
            worker.create(buf, &m.plain, m.create, now)
        } else {
            worker.nat.index_deferred();
            slow += 1;
            full = true;
            if handed {
                worker.process_handed(buf, m.side, now)
            } else {
                worker.process(buf, m.side, now)
            }
        };
        m.next = match v {
            Verdict::Hold => {
                // What the worker noted for this frame is for this frame only.
                worker.nat.index_deferred();
                if let Some(buf) = bufs[i].take() {
                    worker.hold(buf);
                }
                Next::Gone
            }
            // An ALG session's frame runs through the ALG stream engine now, in the
            // burst's order: what the engine reads and grants, it reads and grants as
            // it would one frame at a time. (A PCP answer goes to the control lcore.)
            Verdict::Alg(side) if !crate::pcp::Decision::tagged(buf) => {
                let o = dispatch::engine(worker, buf, side);
                let frame = worker.alg_frame_number();
                match o {
                    Outcome::Send => Next::Engine(side, frame, None),
                    Outcome::Drop(r) => Next::Engine(side, frame, Some(r)),
                    Outcome::Hold => {
                        if let Some(buf) = bufs[i].take() {
                            worker.hold_alg(buf);
                        }
                        Next::Engine(side, frame, None)
                    }
                }
            }
            v => Next::Done(v),
        };
    }
    if created.frames != 0 {
        if !creating {
            (last, creating) = (cgnat_ffi::tsc(), true);
        }
        worker.nat.index_deferred();
    }
    let t4 = cgnat_ffi::tsc();
    if creating {
        create_cycles = create_cycles.wrapping_add(t4.wrapping_sub(last));
    }

    // 6. Dispatch, in the burst's order, then what the burst released.
    for (b, m) in bufs.iter_mut().zip(meta.iter()) {
        match (b.take(), m.next) {
            (Some(buf), Next::Done(v)) => {
                if matches!(v, Verdict::Drop(_)) {
                    crate::vlan::count_drop(worker.counters(), m.side, m.vlan);
                }
                dispatch::route(worker, buf, v, m.side, out);
            }
            (buf, Next::Engine(side, frame, drop)) => {
                dispatch::engine_done(worker, buf, (side, frame, drop), out);
            }
            _ => {}
        }
    }
    dispatch::send_ready(worker, out);
    let t5 = cgnat_ffi::tsc();

    let c = worker.counters();
    let n = n as u64;
    for (k, (cycles, packets)) in [
        (t1.wrapping_sub(t0), n),
        (t2.wrapping_sub(t1), fast),
        (t3.wrapping_sub(t2), translated),
        (create_cycles, u64::from(created.frames.count_ones())),
        (t4.wrapping_sub(t3).wrapping_sub(create_cycles), slow),
        (t5.wrapping_sub(t4), n),
    ]
    .into_iter()
    .enumerate()
    {
        c.stage_cycles[k].add(cycles);
        c.stage_packets[k].add(packets);
    }
}
