//! The ALG stream engine, one per worker: it runs the ALGs on the frames its worker
//! tags ([`crate::alg::Tag`]), holds the TCP segments that end inside a contract
//! ALG's message (an FTP command, a SIP message, an RTSP head, an IRC line...) until
//! the rest arrives and rewrites the run as one text, keeps each connection's
//! sequence adjustment, gathers the fragments of datagrams the worker reassembled, and
//! carries out what the ALG policies decide (a reply to the client, or the frames
//! dropped). Each [`crate::pipeline`] `Worker` owns one and hands it the tagged frames
//! of its own sessions, inline (`Worker::alg_frame`): the worker owns the session and
//! sees every frame of it, both ways, in order, which is all the engine needs.
//!
//! It sits below the pipeline: it names none of its types (what it needs of the
//! ports, it is given).

use crate::alg_contract::EngineGrants;
use crate::buf::PacketBuf;
use crate::counters::{DropReason, WorkerCounters};
use crate::frag;
use crate::side::Side;
use crate::wire::ethernet::{self, Mac};
use std::collections::VecDeque;
use std::sync::Arc;

/// What [`AlgStream::alg`] decided for a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The frame goes on the side it was to go (rewritten).
    Send,
    /// Give the frame to [`AlgStream::hold_alg`].
    Hold,
    /// Free the frame; the reason has been counted.
    Drop(DropReason),
}

/// The ALG stream engine (see the module's doc). Every list and buffer it has is
/// sized in [`AlgStream::new`] and never grows (held runs, gathered fragments, the
/// frames ready, the texts joined and rewritten): a frame allocates nothing. Past a
/// bound, what does not fit goes as the code would have it with no room (a run or
/// fragment not held is dropped, counted `alg_engine_full`; a text not rewritten is
/// counted `no_room`).
pub struct AlgStream<B> {
    counters: Arc<WorkerCounters>,
    alg: crate::alg::AlgControl,
    /// Runs of segments that end inside a command or message, per connection and
    /// direction, waiting for the rest.
    held: Vec<Held<B>>,
    /// The segment lists of the runs not held ([`MAX_RUN`] room each).
    held_spare: Vec<Vec<B>>,
    /// What to do with the segment [`AlgStream::alg`] answered [`Outcome::Hold`] for.
    pending: Option<Pending>,
    /// Frames ready to send, with the side each leaves on and the frame whose run
    /// made them ready ([`AlgStream::frame`]).
    ready: VecDeque<(B, Side, u32)>,
    /// The number of the frame [`AlgStream::alg`] runs on (the frames ready it makes
    /// carry it: [`AlgStream::take_ready_of`]).
    frame: u32,
    /// Where the frames the current one makes ready start in `ready` (a held run
    /// completed goes there, before the others it makes ready).
    mark: usize,
    /// Fragments of datagrams a worker reassembled, gathered until all have come.
    frag_sets: Vec<FragSet<B>>,
    /// The fragment lists of the sets not gathered ([`MAX_FRAGS`] room each).
    frag_spare: Vec<Vec<B>>,
    /// Where a gathered datagram is put together whole.
    whole: crate::buf::VecBuf,
    /// A held run's text with the segment that may complete it.
    joined: Vec<u8>,
    /// Gives a buffer when a rewritten datagram needs more fragments than it came in,
    /// or a policy reply is built.
    alloc: Option<Box<dyn FnMut() -> Option<B> + Send>>,
    /// The inside port's MAC (a policy reply's source).
    own_mac: Mac,
    /// The MAC of the next hop to an inside address, if known (a policy reply's
    /// destination).
    client_mac: Box<dyn Fn(u32) -> Option<Mac> + Send>,
    /// The MAC a policy reply goes to when the next hop's is not known (replay and
    /// pcap mode's broadcast, as the worker sends its own frames), if any.
    unresolved_mac: Option<Mac>,
    /// The smaller of the two ports' MTUs (a rewritten datagram is fragmented to it).
    mtu: u16,
}

/// The fragments of one reassembled datagram, as the engine gathers them.
struct FragSet<B> {
    /// Inside endpoint, remote endpoint, direction, IP identifier.
    key: ((u32, u16), (u32, u16), u8, u16),
    tag: crate::alg::Tag,
    side: Side,
    bufs: Vec<B>,
    until: u32,
}

/// Reassembled datagrams gathered at once.
const MAX_FRAG_SETS: usize = 64;

/// Fragments of a datagram gathered, or cut again, at most.
const MAX_FRAGS: usize = frag::MAX_PARTS;

/// Frames ready at once: every held run released and every gathered set cut again,
/// and room for policy replies. Past it a frame is
/// dropped (counted `alg_engine_full`).
const READY_ROOM: usize = MAX_HELD_LINES * MAX_RUN + MAX_FRAG_SETS * MAX_FRAGS + 256;

/// A run of held segments: its connection, where it goes, until when, and its
/// sequence range.
struct Held<B> {
    key: (u32, u16, u32, u16),
    tag: crate::alg::Tag,
    bufs: Vec<B>,
    side: Side,
    until: u32,
    seq: u32,
    len: usize,
}

/// Where a held segment goes.
enum Pending {
    /// It starts a new run.
    New {
        key: (u32, u16, u32, u16),
        tag: crate::alg::Tag,
        side: Side,
        until: u32,
        seq: u32,
        len: usize,
    },
    /// It continues the run at this index (with this many payload bytes).
    Append(usize, usize),
    /// It is a fragment of a datagram a worker reassembled.
    Fragment(crate::alg::Tag, Side),
}

/// Segments a run holds at most (with the one that completes it, a text of
/// [`crate::alg::MAX_RUN_SEGS`]).
const MAX_RUN: usize = crate::alg::MAX_RUN_SEGS - 1;

/// Writes the payloads of a run's segments and of `next`, in order, into `out`
/// (cleared first); false when they do not fit its room.
fn run_payload<B: PacketBuf>(bufs: &[B], next: &B, out: &mut Vec<u8>) -> bool {
    out.clear();
    for b in bufs.iter().chain(std::iter::once(next)) {
        if let Some((s, e)) = crate::alg::tcp_payload(b.data()) {
            if out.len() + (e - s) > out.capacity() {
                return false;
            }
            out.extend_from_slice(&b.data()[s..e]);
        }
    }
    true
}

/// What happened to a held segment, for the counters.
#[derive(Clone, Copy)]
enum AlgHold {
    Held,
    Joined,
    Released,
}

/// Segments held at once, and for how long (seconds) before they go as they are.
const MAX_HELD_LINES: usize = 256;
// Whole seconds on the control clock: 2 means one to two seconds.
const HOLD_SECS: u32 = 2;

impl<B: PacketBuf> AlgStream<B> {
    /// The engine: the inside port's MAC, how to find the MAC of the next hop to an
    /// inside address, the smaller of the two ports' MTUs, and how many control
    /// connections it follows at most (its share of `nat.max_alg_connections`).
    pub fn new(
        own_mac: Mac,
        client_mac: Box<dyn Fn(u32) -> Option<Mac> + Send>,
        mtu: u16,
        counters: Arc<WorkerCounters>,
        conns: usize,
    ) -> AlgStream<B> {
        AlgStream {
            alg: crate::alg::AlgControl::new(counters.clone(), conns),
            counters,
            held: Vec::with_capacity(MAX_HELD_LINES),
            held_spare: (0..MAX_HELD_LINES)
                .map(|_| Vec::with_capacity(MAX_RUN))
                .collect(),
            pending: None,
            ready: VecDeque::with_capacity(READY_ROOM),
            frame: 0,
            mark: 0,
            frag_sets: Vec::with_capacity(MAX_FRAG_SETS),
            frag_spare: (0..MAX_FRAG_SETS)
                .map(|_| Vec::with_capacity(MAX_FRAGS))
                .collect(),
            whole: crate::buf::VecBuf::with_room(&[], ethernet::HEADER_LEN + 60 + 65535),
            joined: Vec::with_capacity(crate::alg::TEXT_ROOM),
            alloc: None,
            own_mac,
            client_mac,
            unresolved_mac: None,
            mtu,
        }
    }

    /// Sets the MAC a policy reply goes to when the next hop's is not known (the
    /// worker's `unresolved_mac`).
    pub fn set_unresolved_mac(&mut self, mac: Option<Mac>) {
        self.unresolved_mac = mac;
    }

    /// The ALG connections' state (HA sync of their sequence adjustments).
    pub fn alg_control(&mut self) -> &mut crate::alg::AlgControl {
        &mut self.alg
    }

    /// The bytes of memory its lists and buffers take (what [`AlgStream::new`]
    /// sized), the connections' tables included.
    pub fn footprint(&self) -> usize {
        use std::mem::size_of;
        self.alg.footprint()
            + size_of::<Self>()
            + MAX_HELD_LINES * (size_of::<Held<B>>() + MAX_RUN * size_of::<B>())
            + MAX_FRAG_SETS * (size_of::<FragSet<B>>() + MAX_FRAGS * size_of::<B>())
            + self.ready.capacity() * size_of::<(B, Side, u32)>()
            + self.whole.len().max(ethernet::HEADER_LEN + 60 + 65535)
            + self.joined.capacity()
    }

    /// Queues a frame ready to send (at the front: before those the current frame
    /// made ready so far); past [`READY_ROOM`] it is dropped (counted
    /// `alg_engine_full`).
    fn queue(&mut self, buf: B, side: Side, front: bool) {
        if self.ready.len() >= READY_ROOM {
            self.counters.count_drop(DropReason::AlgEngineFull);
        } else if front {
            let at = self.mark.min(self.ready.len());
            self.ready.insert(at, (buf, side, self.frame));
        } else {
            self.ready.push_back((buf, side, self.frame));
        }
    }

    /// Gives a held run's segment list back (its segments freed).
    fn recycle_held(&mut self, mut bufs: Vec<B>) {
        bufs.clear();
        self.held_spare.push(bufs);
    }

    /// Sets where buffers come from when a rewritten datagram needs more fragments
    /// than it came in, or a policy reply is built (the mbuf pool; tests give Vec
    /// buffers).
    pub fn set_alloc(&mut self, alloc: Box<dyn FnMut() -> Option<B> + Send>) {
        self.alloc = Some(alloc);
    }

    /// A buffer from [`AlgStream::set_alloc`]'s allocator, if there is one and it
    /// gives one.
    fn alloc(&mut self) -> Option<B> {
        self.alloc.as_mut().and_then(|a| a())
    }

    /// Gathers a fragment of a datagram a worker reassembled; once all have come, the
    /// ALG rewrites the whole and it leaves as one packet or fragmented again
    /// ([`AlgStream::take_ready`]).
    fn gather(
        &mut self,
        buf: B,
        (tag, side): (crate::alg::Tag, Side),
        now: u32,
        engine: Option<&mut EngineGrants<'_>>,
    ) {
        let id = crate::wire::be16(buf.data(), ethernet::HEADER_LEN + 4);
        let key = (tag.inside, tag.remote, tag.dir, id);
        let at = match self.frag_sets.iter().position(|f| f.key == key) {
            Some(at) => at,
            // (More than can be put together: as it would be, dropped.)
            None if usize::from(tag.frags) > MAX_FRAGS => {
                self.counters.count_drop(DropReason::AlgFragment);
                return;
            }
            None if self.frag_sets.len() < MAX_FRAG_SETS => {
                let Some(bufs) = self.frag_spare.pop() else {
                    self.counters.count_drop(DropReason::AlgEngineFull);
                    return;
                };
                self.frag_sets.push(FragSet {
                    key,
                    tag,
                    side,
                    bufs,
                    until: now + HOLD_SECS,
                });
                self.frag_sets.len() - 1
            }
            None => {
                self.counters.count_drop(DropReason::AlgEngineFull);
                return;
            }
        };
        self.frag_sets[at].bufs.push(buf);
        if self.frag_sets[at].bufs.len() < usize::from(tag.frags) {
            return;
        }
        let mut set = self.frag_sets.swap_remove(at);
        self.rewrite_reassembled(&mut set, now, engine);
        set.bufs.clear();
        self.frag_spare.push(set.bufs);
    }

    /// Puts a gathered set's datagram together, has the ALG rewrite it, and queues it
    /// cut again to the MTU (in the set's buffers, and more from the allocator if it
    /// needs more).
    fn rewrite_reassembled(
        &mut self,
        set: &mut FragSet<B>,
        now: u32,
        engine: Option<&mut EngineGrants<'_>>,
    ) {
        let n = set.bufs.len() as u64;
        let mut frames: [&[u8]; MAX_FRAGS] = [&[]; MAX_FRAGS];
        for (f, b) in frames.iter_mut().zip(&set.bufs) {
            *f = b.data();
        }
        let frames = &frames[..set.bufs.len().min(MAX_FRAGS)];
        if !matches!(
            frag::assemble(frames, &mut self.whole, 65535),
            frag::Assembly::Whole(_)
        ) {
            self.counters.drops[DropReason::AlgFragment as usize].add(n);
            return;
        }
        let refusal = self.alg.process(&mut self.whole, &set.tag, now, engine);
        let refused = self.refused(refusal, &set.tag, set.bufs.len());
        if refused.is_some() {
            return;
        }
        let mtu = usize::from(self.mtu);
        let id = crate::wire::be16(self.whole.data(), ethernet::HEADER_LEN + 4);
        let bufs = &mut set.bufs;
        let k = loop {
            match frag::refragment(self.whole.data(), bufs, mtu, id) {
                Ok(k) => break k,
                Err(need) if need != usize::MAX && need > bufs.len() && bufs.len() < MAX_FRAGS => {
                    match self.alloc() {
                        Some(b) => bufs.push(b),
                        None => {
                            self.counters.drops[DropReason::ReassemblyTooBig as usize].add(n);
                            return;
                        }
                    }
                }
                Err(_) => {
                    self.counters.drops[DropReason::ReassemblyTooBig as usize].add(n);
                    return;
                }
            }
        };
        bufs.truncate(k);
        if k > 1 {
            self.counters.fragments_refragmented.inc();
        }
        for b in set.bufs.drain(..) {
            self.queue(b, set.side, false);
        }
    }

    /// Runs the ALG on a frame a worker tagged, and says where it goes. A TCP segment
    /// that ends inside a contract ALG's message is held (answer [`Outcome::Hold`]: give it to [`AlgStream::hold_alg`]) until the
    /// rest arrives; then the run is rewritten as one text, each segment keeping its
    /// own bytes and its share of the edits, and they go in order. Linux's helpers
    /// drop such a segment (a command split at the start of a segment) or pass it
    /// untranslated (a command after another in the same segment).
    /// `engine`: the grants of what the engine plans itself (what the worker did not
    /// read, [`Tag::worker_read`]: [`crate::alg_contract::EngineGrants`]).
    ///
    /// [`Tag::worker_read`]: crate::alg::Tag::worker_read
    pub fn alg(
        &mut self,
        buf: &mut B,
        side: Side,
        now: u32,
        mut engine: Option<&mut EngineGrants<'_>>,
    ) -> Outcome {
        self.frame = self.frame.wrapping_add(1);
        self.mark = self.ready.len();
        let Some(tag) = crate::alg::Tag::pop(buf) else {
            self.counters.count_drop(DropReason::LocalUnsupported);
            return Outcome::Drop(DropReason::LocalUnsupported);
        };
        if tag.frags > 0 {
            self.pending = Some(Pending::Fragment(tag, side));
            return Outcome::Hold;
        }
        let key = (tag.inside.0, tag.inside.1, tag.remote.0, tag.remote.1);
        // (Held both ways: the contract ALGs, whose framing says what.)
        let text = crate::alg_contract::contract_of(tag.alg).is_some();
        // (Its length as its sender sent it: the worker's rewrite of what it read
        // may have changed it.)
        let seg = crate::alg::tcp_payload(buf.data()).map(|(s, e)| {
            let l4 = crate::alg::l4_at(buf.data());
            let sent = (e - s).saturating_add_signed(-isize::from(tag.grew));
            (crate::wire::be32(buf.data(), l4 + 4), sent)
        });
        let repeat = seg.is_some_and(|(seq, _)| self.alg.in_run(&key, tag.dir, seq));
        if let (true, Some((seq, len)), false) = (tag.dir == 0 || text, seg, repeat) {
            if let Some(at) = self
                .held
                .iter()
                .position(|h| h.key == key && h.tag.dir == tag.dir)
            {
                let (hseq, hlen, n) = {
                    let h = &self.held[at];
                    (h.seq, h.len, h.bufs.len())
                };
                if seq == hseq {
                    // The sender sent the run's start again (nothing of it was acked):
                    // start over from this copy.
                    let h = self.held.swap_remove(at);
                    self.recycle_held(h.bufs);
                } else if seq != hseq.wrapping_add(hlen as u32) {
                    let h = self.held.swap_remove(at);
                    self.release(h, now, engine.as_deref_mut());
                } else {
                    // (A text longer than the room is not held further.)
                    let fits = run_payload(&self.held[at].bufs, buf, &mut self.joined);
                    let tags = (&tag, &self.held[at].tag);
                    if n < MAX_RUN
                        && fits
                        && Self::incomplete(&mut self.alg, &self.joined, (key, hseq), tags)
                    {
                        self.pending = Some(Pending::Append(at, len));
                        self.count_hold(&tag, AlgHold::Held);
                        return Outcome::Hold;
                    }
                    let h = self.held.swap_remove(at);
                    self.count_hold(&tag, AlgHold::Joined);
                    return self.send_run(h.bufs, buf, (&tag, &h.tag), side, now, engine);
                }
            }
            let payload =
                crate::alg::tcp_payload(buf.data()).map_or(&[][..], |(s, e)| &buf.data()[s..e]);
            if Self::incomplete(&mut self.alg, payload, (key, seq), (&tag, &tag)) {
                self.pending = Some(Pending::New {
                    key,
                    tag,
                    side,
                    until: now + HOLD_SECS,
                    seq,
                    len,
                });
                self.count_hold(&tag, AlgHold::Held);
                return Outcome::Hold;
            }
        }
        let refusal = self.alg.process(buf, &tag, now, engine);
        self.refused(refusal, &tag, 1)
            .map_or(Outcome::Send, Outcome::Drop)
    }

    /// Sets the ALGs' command and request policy (at start and on a reload); returns
    /// the one it replaces (to be dropped off the lcore).
    pub fn set_policy(&mut self, p: crate::alg::AlgPolicy) -> crate::alg::AlgPolicy {
        self.alg.set_policy(p)
    }

    /// Carries out what the FTP policy decided for a text of `frames` segments: a
    /// reply to the client (in the server's name, among the frames ready), or the
    /// segments dropped (the reason, counted).
    fn refused(
        &mut self,
        r: crate::alg::Refusal,
        tag: &crate::alg::Tag,
        frames: usize,
    ) -> Option<DropReason> {
        match r {
            crate::alg::Refusal::None => None,
            crate::alg::Refusal::Drop => {
                self.counters.drops[DropReason::AlgPolicy as usize].add(frames as u64);
                Some(DropReason::AlgPolicy)
            }
            crate::alg::Refusal::Reply(reply) => {
                self.send_refusal(tag, |b, macs| crate::alg::write_reply(b, macs, tag, &reply));
                None
            }
            crate::alg::Refusal::Datagram(text) => {
                self.send_refusal(tag, |b, macs| {
                    crate::alg::write_datagram(b, macs, tag, text.bytes())
                });
                self.counters.drops[DropReason::AlgPolicy as usize].add(frames as u64);
                Some(DropReason::AlgPolicy)
            }
        }
    }

    /// Builds a policy reply to the tag's client in a buffer from the pool (`write`
    /// fills it, given the MACs) and queues it among the frames ready.
    fn send_refusal(
        &mut self,
        tag: &crate::alg::Tag,
        write: impl FnOnce(&mut B, (Mac, Mac)) -> bool,
    ) {
        let mac = (self.client_mac)(tag.inside.0).or(self.unresolved_mac);
        let own = self.own_mac;
        let buf = self.alloc();
        let built = match (mac, buf) {
            (Some(mac), Some(mut b)) => write(&mut b, (own, mac)).then_some(b),
            _ => None,
        };
        match built {
            Some(b) => self.queue(b, Side::Inside, false),
            None => self.counters.count_drop(DropReason::AlgPolicyReplyUnsent),
        }
    }

    /// Rewrites a held run completed by `last` (the caller's frame) and puts them in
    /// order: the run's first segment takes `last`'s place as the caller's frame, the
    /// others and then `last` follow right behind it. `tags`: `last`'s and the run's
    /// first segment's.
    fn send_run(
        &mut self,
        mut bufs: Vec<B>,
        last: &mut B,
        tags: (&crate::alg::Tag, &crate::alg::Tag),
        side: Side,
        now: u32,
        engine: Option<&mut EngineGrants<'_>>,
    ) -> Outcome {
        let refusal = self
            .alg
            .process_run(&mut bufs, Some(&mut *last), tags, now, engine);
        if let Some(r) = self.refused(refusal, tags.0, bufs.len() + 1) {
            // The run's segments go nowhere, the caller's frame neither.
            self.recycle_held(bufs);
            return Outcome::Drop(r);
        }
        std::mem::swap(last, &mut bufs[0]);
        // The completing segment (now first) goes last.
        bufs.rotate_left(1);
        // (A policy reply to the client, if any, is already behind: the run goes first.)
        while let Some(b) = bufs.pop() {
            self.queue(b, side, true);
        }
        self.recycle_held(bufs);
        Outcome::Send
    }

    /// Whether a payload (or a run's whole text, `first`: its first segment's tag)
    /// starting at `seq` ends inside a contract ALG's message (its framing kept for
    /// reading it: [`crate::alg::AlgControl::incomplete`]).
    fn incomplete(
        alg: &mut crate::alg::AlgControl,
        payload: &[u8],
        (key, seq): ((u32, u16, u32, u16), u32),
        tags: (&crate::alg::Tag, &crate::alg::Tag),
    ) -> bool {
        if payload.is_empty() || !alg.reading(&key) {
            return false;
        }
        match crate::alg_contract::contract_of(tags.0.alg) {
            Some(c) => alg.incomplete(c, payload, tags, seq),
            None => false,
        }
    }

    fn count_hold(&self, tag: &crate::alg::Tag, what: AlgHold) {
        use crate::counters::AlgEvent;
        let (own, e) = match what {
            AlgHold::Held => ("held", AlgEvent::Held),
            AlgHold::Joined => ("joined", AlgEvent::Joined),
            AlgHold::Released => ("released", AlgEvent::Released),
        };
        use crate::counters::ContractEvent as C;
        let contract = match what {
            AlgHold::Held => C::Held,
            AlgHold::Joined => C::Joined,
            AlgHold::Released => C::Released,
        };
        match self.counters.text_alg_events(tag.alg) {
            Some(ev) => ev[e as usize].inc(),
            None => {
                self.counters.contract_event(tag.alg, contract).inc();
                // (Under the ALG's own name too, if it has one: FTP's `held`.)
                if let Some(c) = self.counters.own_event(tag.alg, own) {
                    c.inc();
                }
            }
        }
    }

    /// Takes the segment [`AlgStream::alg`] answered [`Outcome::Hold`] for.
    pub fn hold_alg(&mut self, buf: B, now: u32, engine: Option<&mut EngineGrants<'_>>) {
        match self.pending.take() {
            Some(Pending::New {
                key,
                tag,
                side,
                until,
                seq,
                len,
            }) if self.held.len() < MAX_HELD_LINES && !self.held_spare.is_empty() => {
                let mut bufs = self.held_spare.pop().unwrap_or_default();
                bufs.push(buf);
                self.held.push(Held {
                    key,
                    tag,
                    bufs,
                    side,
                    until,
                    seq,
                    len,
                });
            }
            Some(Pending::Append(at, len))
                if at < self.held.len() && self.held[at].bufs.len() < MAX_RUN =>
            {
                self.held[at].bufs.push(buf);
                self.held[at].len += len;
            }
            Some(Pending::Fragment(tag, side)) => self.gather(buf, (tag, side), now, engine),
            _ => self.counters.count_drop(DropReason::AlgEngineFull),
        }
    }

    /// Held runs whose time ran out go as they are (after the connection's sequence
    /// adjustment; [`AlgStream::take_ready`] hands them out); fragments gathered too
    /// long are dropped.
    pub fn tick(&mut self, now: u32, mut engine: Option<&mut EngineGrants<'_>>) {
        let mut i = 0;
        while i < self.frag_sets.len() {
            if self.frag_sets[i].until <= now {
                let mut f = self.frag_sets.swap_remove(i);
                self.counters.drops[DropReason::ReassemblyTimeout as usize]
                    .add(f.bufs.len() as u64);
                f.bufs.clear();
                self.frag_spare.push(f.bufs);
            } else {
                i += 1;
            }
        }
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].until <= now {
                let h = self.held.swap_remove(i);
                self.release(h, now, engine.as_deref_mut());
            } else {
                i += 1;
            }
        }
    }

    /// A frame the engine has ready to send (released or joined segments, a policy
    /// reply, fragments cut again), in the order they must go, with the side it
    /// leaves on.
    pub fn take_ready(&mut self) -> Option<(B, Side)> {
        self.ready.pop_front().map(|(b, side, _)| (b, side))
    }

    /// The number of the frame [`AlgStream::alg`] ran on last.
    pub fn frame(&self) -> u32 {
        self.frame
    }

    /// [`AlgStream::take_ready`], of the frames made ready up to frame `frame`'s run
    /// ([`AlgStream::frame`]) and on the tick before it: when the engine ran on
    /// several frames before they are sent, each one's go right behind it.
    pub fn take_ready_of(&mut self, frame: u32) -> Option<(B, Side)> {
        match self.ready.front() {
            Some(&(_, _, f)) if (f.wrapping_sub(frame) as i32) <= 0 => self.take_ready(),
            _ => None,
        }
    }

    fn release(&mut self, mut h: Held<B>, now: u32, engine: Option<&mut EngineGrants<'_>>) {
        let refusal = self
            .alg
            .process_run(&mut h.bufs, None, (&h.tag, &h.tag), now, engine);
        self.count_hold(&h.tag, AlgHold::Released);
        if self.refused(refusal, &h.tag, h.bufs.len()).is_none() {
            for b in h.bufs.drain(..) {
                self.queue(b, h.side, false);
            }
        }
        self.recycle_held(h.bufs);
    }
}

#[cfg(test)]
mod tests {
    // (The engine itself, named as the layering test wants: not `super`.)
    use crate::alg_stream::*;
    use crate::buf::VecBuf;

    fn engine() -> (AlgStream<VecBuf>, Arc<WorkerCounters>) {
        let counters = Arc::new(WorkerCounters::default());
        let s = AlgStream::new([2; 6], Box::new(|_| None), 1500, counters.clone(), 16);
        (s, counters)
    }

    /// More frames ready than [`READY_ROOM`]: the one past it is dropped (counted
    /// `alg_engine_full`), the others go in order.
    #[test]
    fn frames_past_the_ready_room_are_dropped() {
        let (mut s, counters) = engine();
        for k in 0..=READY_ROOM {
            s.queue(VecBuf::new(&(k as u32).to_be_bytes()), Side::Inside, false);
        }
        assert_eq!(counters.drops[DropReason::AlgEngineFull as usize].get(), 1);
        let mut n = 0;
        while let Some((b, _)) = s.take_ready() {
            assert_eq!(b.data(), (n as u32).to_be_bytes());
            n += 1;
        }
        assert_eq!(n, READY_ROOM);
    }

    /// A fragment of a datagram of more fragments than can be put together is dropped
    /// (counted `alg_fragment`); one of a datagram within the room is gathered.
    #[test]
    fn a_datagram_of_more_fragments_than_the_room_is_dropped() {
        let (mut s, counters) = engine();
        let mut frame = vec![0u8; 60];
        frame[12] = 0x08;
        frame[14] = 0x45;
        for (frags, dropped) in [(MAX_FRAGS + 1, 1), (MAX_FRAGS, 1)] {
            let tag = crate::alg::Tag {
                frags: frags as u8,
                alg: crate::nat::ALG_SIP,
                ..Default::default()
            };
            let mut b = VecBuf::new(&frame);
            assert!(tag.push(&mut b));
            assert_eq!(s.alg(&mut b, Side::Outside, 1, None), Outcome::Hold);
            s.hold_alg(b, 1, None);
            let d = &counters.drops[DropReason::AlgFragment as usize];
            assert_eq!(d.get(), dropped, "{frags} fragments");
        }
        assert_eq!(s.frag_sets.len(), 1);
        // Gathered too long: dropped (counted), its list back for another.
        s.tick(1 + HOLD_SECS, None);
        assert_eq!(s.frag_sets.len(), 0);
        assert_eq!(s.frag_spare.len(), MAX_FRAG_SETS);
        let t = counters.drops[DropReason::ReassemblyTimeout as usize].get();
        assert_eq!(t, 1);
    }
}
