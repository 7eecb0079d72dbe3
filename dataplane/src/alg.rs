//! The ALG stream engine's connections (driven by `alg_stream.rs`, on the worker that
//! owns the session). The worker, which owns the subscriber and its ports, reserves
//! the outside port an FTP PORT/EPRT announces (an expectation pinning a mapping) and
//! tags the packet with what it decided; its stream engine, which sees every packet
//! of the control session in order, rewrites the payload (the one mangle helper),
//! keeps the TCP sequence adjustment of the connection for both directions, applies
//! the command policies, and stands aside once AUTH TLS is accepted.
//!
//! The tag (what the worker decided, in front of the frame) is `alg_tag.rs`, which
//! both this module and the contract ALGs (`alg_contract.rs`) use.

use crate::alg_contract::EngineGrants;
use crate::buf::PacketBuf;
use crate::counters::WorkerCounters;
use crate::fixed_map::FixedMap;
use crate::mangle::{mangle, SeqAdj};
use crate::wire::{be16, be32, ipv4, put16, put32, tcp};

pub use crate::alg_tag::{l4_at, tcp_payload, Rewrite, Tag, MAX_REWRITES};

/// The SIP or RTSP request policy (`alg.<name>.deny_methods`, SIP's
/// `max_message_size` and `deny_status`, `on_deny`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextPolicy {
    /// Methods refused.
    pub deny: Vec<String>,
    /// Largest message accepted from the client (0: any).
    pub max_size: usize,
    /// The status a refused method gets (SIP: 405 or 403; RTSP: 405).
    pub status: u16,
    /// Refused requests' frames are dropped instead of answered.
    pub drop: bool,
}

impl TextPolicy {
    /// Whether it refuses anything.
    pub fn active(&self) -> bool {
        !self.deny.is_empty() || self.max_size > 0
    }

    /// The policy as the ALG's contract reads it.
    pub fn contract(&self) -> cgnat_alg::contract::Policy<'_> {
        cgnat_alg::contract::Policy {
            deny: &self.deny,
            max_message_size: self.max_size,
            deny_status: self.status,
            ..Default::default()
        }
    }
}

/// The payload of the frame's UDP datagram or TCP segment, and whether it is a datagram.
fn payload(d: &[u8]) -> Option<(usize, usize, bool)> {
    crate::alg_contract::payload(d).map(|(s, e, datagram, _)| (s, e, datagram))
}

/// Counts a SIP or RTSP policy refusal (`policy_drop` or `policy_reply`).
fn count_policy(c: &WorkerCounters, alg: u8, drop: bool) {
    let e = if drop {
        crate::counters::AlgEvent::PolicyDrop
    } else {
        crate::counters::AlgEvent::PolicyReply
    };
    if let Some(ev) = c.text_alg_events(alg) {
        ev[e as usize].inc();
    }
}

/// The FTP command policy the stream engine applies to the client's commands
/// (`alg.ftp.deny`, `allow`, `bounce`, `low_port`, `on_deny`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FtpPolicy {
    /// Verbs refused (upper case).
    pub deny: Vec<String>,
    /// When not empty, the only verbs let through.
    pub allow: Vec<String>,
    /// PORT/EPRT naming another host than the client refused.
    pub refuse_bounce: bool,
    /// PORT/EPRT naming a data port of the client below `min_data_port` refused.
    pub refuse_low_port: bool,
    /// The lowest data port.
    pub min_data_port: u16,
    /// Refused commands' segments are dropped instead of answered.
    pub drop: bool,
}

impl FtpPolicy {
    /// The policy of `alg.ftp`.
    pub fn of(a: &cgnat_config::AlgProto) -> FtpPolicy {
        FtpPolicy {
            deny: a.deny.clone(),
            allow: a.allow.clone(),
            refuse_bounce: a.refuse_bounce,
            refuse_low_port: a.refuse_low_port,
            min_data_port: a.min_data_port,
            drop: a.on_deny == cgnat_config::OnDeny::Drop,
        }
    }

    /// The policy as the FTP ALG reads it.
    pub fn contract(&self) -> cgnat_alg::contract::Policy<'_> {
        cgnat_alg::contract::Policy {
            deny: &self.deny,
            allow: &self.allow,
            refuse_bounce: self.refuse_bounce,
            refuse_low_port: self.refuse_low_port,
            min_data_port: self.min_data_port,
            loose: false,
            ..Default::default()
        }
    }
}

/// Every ALG's policy, as the stream engine applies it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlgPolicy {
    /// FTP commands.
    pub ftp: FtpPolicy,
    /// SIP requests.
    pub sip: TextPolicy,
    /// RTSP requests.
    pub rtsp: TextPolicy,
}

impl AlgPolicy {
    /// The request policy of ALG `alg` (its id), for the ALGs with one (SIP, RTSP).
    pub fn text(&self, alg: u8) -> Option<&TextPolicy> {
        match alg {
            crate::nat::ALG_SIP => Some(&self.sip),
            crate::nat::ALG_RTSP => Some(&self.rtsp),
            _ => None,
        }
    }

    /// The policy contract ALG `alg` reads its stream under (FTP's commands; the
    /// others' requests are policed apart: [`AlgPolicy::text`]).
    pub fn contract_of(&self, alg: u8) -> cgnat_alg::contract::Policy<'_> {
        if alg == crate::nat::ALG_FTP {
            self.ftp.contract()
        } else {
            cgnat_alg::contract::Policy::default()
        }
    }

    /// The policy of `[alg]`.
    pub fn of(a: &cgnat_config::Alg) -> AlgPolicy {
        let text = |p: &cgnat_config::AlgProto, status: u16| TextPolicy {
            deny: p.deny_methods.clone(),
            max_size: p.max_message_size,
            status,
            drop: p.on_deny == cgnat_config::OnDeny::Drop,
        };
        AlgPolicy {
            ftp: FtpPolicy::of(&a["ftp"]),
            sip: text(&a["sip"], a["sip"].deny_status),
            rtsp: text(&a["rtsp"], 405),
        }
    }
}

/// What the FTP policy decided for a text of the client's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Refusal {
    /// Nothing refused.
    #[default]
    None,
    /// Refused commands were taken out; this reply goes to the client.
    Reply(Reply),
    /// The text's segments are dropped.
    Drop,
    /// A datagram's request refused: it is dropped and this response goes to the
    /// client in a datagram of its own.
    Datagram(ReplyText),
}

/// The text of a reply to the client: fixed room ([`cgnat_alg::contract::MAX_REPLY`]
/// bytes), no allocation.
pub type ReplyText = cgnat_alg::contract::Reply;

/// A reply to the client in the server's name: a TCP segment from the server's
/// endpoint to the client's, in the client's view of the server's sequence space.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// The reply lines.
    pub text: ReplyText,
    /// Its sequence number and the ack (all the client sent).
    pub seq: u32,
    /// The acknowledgement.
    pub ack: u32,
    /// The server's last advertised window.
    pub window: u16,
    /// Timestamps (TSval, TSecr) when the connection uses them.
    pub ts: Option<(u32, u32)>,
}

/// Sizes `buf` for an IPv4 packet of `proto` with `l4_len` bytes of L4 header and
/// payload, from the tag's remote endpoint to its inside one, in an Ethernet frame
/// from `macs.0` to `macs.1`; writes the Ethernet and IP headers and the ports, and
/// returns the L4 bytes (the caller fills the rest, then [`l4_checksum`]). None
/// without room.
fn reply_frame<'b, B: PacketBuf>(
    buf: &'b mut B,
    macs: (crate::wire::ethernet::Mac, crate::wire::ethernet::Mac),
    tag: &Tag,
    proto: u8,
    l4_len: usize,
) -> Option<&'b mut [u8]> {
    let len = 14 + 20 + l4_len;
    let have = buf.len();
    let sized = if have < len {
        buf.append(len - have)
    } else {
        buf.set_len(len)
    };
    if l4_len > 65535 - 20 || !sized {
        return None;
    }
    let d = buf.data_mut();
    d[..6].copy_from_slice(&macs.1);
    d[6..12].copy_from_slice(&macs.0);
    put16(d, 12, 0x0800);
    let df = proto == ipv4::PROTO_TCP;
    let total = (20 + l4_len) as u16;
    ipv4::emit(
        &mut d[14..34],
        total,
        0,
        df,
        64,
        proto,
        tag.remote.0,
        tag.inside.0,
    );
    let l4 = &mut d[34..len];
    put16(l4, 0, tag.remote.1);
    put16(l4, 2, tag.inside.1);
    Some(l4)
}

/// The checksum of the L4 bytes `l4` (their checksum field zero) of `proto`, from the
/// tag's remote address to its inside one.
fn l4_checksum(tag: &Tag, proto: u8, l4: &[u8]) -> u16 {
    use crate::wire::checksum;
    let ph = checksum::pseudo_header(
        tag.remote.0.to_be_bytes(),
        tag.inside.0.to_be_bytes(),
        proto,
        l4.len() as u16,
    );
    checksum::finish(checksum::add(checksum::sum(l4), ph))
}

/// Writes `r` into `buf` as an Ethernet frame from `macs.0` to `macs.1`, from the
/// tag's remote endpoint to its inside one. False without room.
pub fn write_reply<B: PacketBuf>(
    buf: &mut B,
    macs: (crate::wire::ethernet::Mac, crate::wire::ethernet::Mac),
    tag: &Tag,
    r: &Reply,
) -> bool {
    let opts = if r.ts.is_some() { 12 } else { 0 };
    let text = r.text.bytes();
    let tcp_len = 20 + opts + text.len();
    let Some(t) = reply_frame(buf, macs, tag, ipv4::PROTO_TCP, tcp_len) else {
        return false;
    };
    put32(t, 4, r.seq);
    put32(t, 8, r.ack);
    t[12] = (((20 + opts) / 4) << 4) as u8;
    t[13] = tcp::ACK | tcp::PSH;
    put16(t, 14, r.window);
    put16(t, 16, 0);
    put16(t, 18, 0);
    if let Some((val, ecr)) = r.ts {
        t[20..24].copy_from_slice(&[1, 1, 8, 10]);
        put32(t, 24, val);
        put32(t, 28, ecr);
    }
    t[20 + opts..].copy_from_slice(text);
    let c = l4_checksum(tag, ipv4::PROTO_TCP, t);
    put16(t, 16, c);
    true
}

/// Writes `text` into `buf` as a UDP datagram in an Ethernet frame from `macs.0` to
/// `macs.1`, from the tag's remote endpoint to its inside one. False without room.
pub fn write_datagram<B: PacketBuf>(
    buf: &mut B,
    macs: (crate::wire::ethernet::Mac, crate::wire::ethernet::Mac),
    tag: &Tag,
    text: &[u8],
) -> bool {
    let udp_len = 8 + text.len();
    let Some(u) = reply_frame(buf, macs, tag, ipv4::PROTO_UDP, udp_len) else {
        return false;
    };
    put16(u, 4, udp_len as u16);
    put16(u, 6, 0);
    u[8..].copy_from_slice(text);
    let c = l4_checksum(tag, ipv4::PROTO_UDP, u);
    put16(u, 6, if c == 0 { 0xffff } else { c });
    true
}

/// The TCP timestamps (TSval, TSecr) of the segment whose header is at `l4`.
fn timestamps(d: &[u8], l4: usize) -> Option<(u32, u32)> {
    let seg = tcp::Segment::new_checked(d.get(l4..)?).ok()?;
    let mut i = 20;
    while i < seg.header_len() {
        match d[l4 + i] {
            0 => break,
            1 => i += 1,
            kind => {
                let olen = usize::from(*d.get(l4 + i + 1)?);
                if olen < 2 || i + olen > seg.header_len() {
                    break;
                }
                if kind == 8 && olen == 10 {
                    return Some((be32(d, l4 + i + 2), be32(d, l4 + i + 6)));
                }
                i += olen;
            }
        }
    }
    None
}

#[derive(Clone, Copy, Debug, Default)]
struct Conn {
    seq: SeqAdj,
    /// The ALG reads no more of it (FTP: AUTH TLS accepted).
    stand_aside: bool,
    /// A stateful contract ALG's state of the connection.
    alg_state: cgnat_alg::contract::State,
    last_seen: u32,
    /// The server's next sequence number as seen (its numbering), and its last
    /// advertised window: where and how a policy reply goes.
    srv_next: Option<u32>,
    srv_window: Option<u16>,
    /// The last policy reply: the client's segment it answered (its sequence number)
    /// and the reply's own, so that a retransmission gets the same reply again.
    replied: Option<(u32, u32)>,
}

/// The stream engine's ALG state (every ALG's): per control connection, the sequence
/// adjustment, the last rewritten run, and whether the ALG still reads it. Every
/// table and buffer is sized in [`AlgControl::new`] and never grows: processing a
/// frame allocates nothing.
pub struct AlgControl {
    conns: FixedMap<ConnKey, Conn>,
    /// HA sync: connections whose sequence adjustment changed since the last
    /// [`AlgControl::sync_take`], while `sync_on`.
    changed: Vec<ConnKey>,
    sync_on: bool,
    /// The last run of segments rewritten as one text, per connection and direction:
    /// a retransmission of any of its bytes must carry the rewritten ones.
    runs: FixedMap<(ConnKey, u8), Run>,
    /// The runs' rewritten bytes: [`RUN_TEXT`] bytes per run, at its slot.
    run_text: Vec<u8>,
    /// The slots of `run_text` no run holds.
    run_free: Vec<u32>,
    /// The texts being rewritten (taken while a text is).
    scratch: Option<Box<Scratch>>,
    counters: std::sync::Arc<WorkerCounters>,
    policy: AlgPolicy,
    /// Policy decisions for the event exporter (syslog).
    events: Vec<crate::log::LogEvent>,
}

/// Where a text is rewritten: its bytes joined, the edits and refusals the ALG made of
/// them, and the rewritten text.
struct Scratch {
    text: Vec<u8>,
    new_text: Vec<u8>,
    ctl: crate::alg_contract::ControlText,
    cuts: crate::alg_contract::Cuts,
    /// The last text framed to decide whether to hold it (read without framing it
    /// again).
    framed: crate::alg_contract::Framed,
}

/// Segments processed as one text at most ([`AlgControl::process_run`]): a held
/// run and the segment that completes it.
pub const MAX_RUN_SEGS: usize = 9;

/// Bytes of a text at most: the segments of a run, each a jumbo frame's payload
/// (a reassembled datagram is smaller). A longer text is not rewritten (counted
/// `no_room`).
pub const TEXT_ROOM: usize = MAX_RUN_SEGS * 9216;

/// Bytes of a rewritten run remembered at most (for its retransmissions); a longer
/// one is not (counted `no_room`), and a retransmission of it is read anew.
pub const RUN_TEXT: usize = 4096;

/// The segments of a run and the one that completes it, one after the other.
struct Segs<'a, B> {
    run: &'a mut [B],
    last: Option<&'a mut B>,
}

impl<B> Segs<'_, B> {
    fn len(&self) -> usize {
        self.run.len() + usize::from(self.last.is_some())
    }

    fn get(&self, k: usize) -> &B {
        match self.run.get(k) {
            Some(b) => b,
            None => self.last.as_deref().expect("a segment"),
        }
    }

    fn get_mut(&mut self, k: usize) -> &mut B {
        match self.run.get_mut(k) {
            Some(b) => b,
            None => self.last.as_deref_mut().expect("a segment"),
        }
    }
}

/// The command or method at the start of `line` (up to 16 bytes, zero-padded).
fn verb_of(line: &[u8]) -> [u8; 16] {
    let mut w = [0u8; 16];
    let v = &line[..line.iter().position(|&b| b == b' ').unwrap_or(line.len())];
    let n = v.len().min(16);
    w[..n].copy_from_slice(&v[..n]);
    w
}

/// ALG policy events kept for the exporter at most (the oldest are kept).
const MAX_EVENTS: usize = 1024;

/// A control connection: inside address and port, remote address and port.
type ConnKey = (u32, u16, u32, u16);

/// A rewritten run: where it was in the sender's sequence space, where its last
/// segment began (every segment before kept its length), and where its rewritten
/// bytes are (`slot` of [`AlgControl`]'s `run_text`, `n` bytes).
#[derive(Clone, Copy)]
struct Run {
    start: u32,
    len: u32,
    last: u32,
    slot: u32,
    n: u32,
    /// How much the worker's rewrite grew the first segment before the engine read
    /// the run, and where the second segment starts (the sender's numbering): the
    /// rewritten bytes of what follows the first segment are that much further on.
    pre: i32,
    first_end: u32,
}

impl Run {
    /// Where a place `x` of the run as its sender sent it (an offset from `start`
    /// where a segment starts) is in the rewritten text; None inside the first
    /// segment, which the worker's rewrite grew.
    fn rewritten_at(&self, x: u32) -> Option<usize> {
        if self.pre == 0 || x == 0 {
            Some(x as usize)
        } else if x >= self.first_end {
            usize::try_from(i64::from(x) + i64::from(self.pre)).ok()
        } else {
            None
        }
    }
}

/// Runs remembered at once by one engine (one for sixteen connections up to
/// 65,536, `nat.max_alg_connections`' default; fewer for fewer).
const MAX_RUNS: usize = 4096;

/// Connections whose adjustment changed, noted for the HA sync between two takes.
const SYNC_ROOM: usize = 4096;

impl AlgControl {
    /// HA sync (the active): notes the connections whose sequence adjustment changes.
    pub fn sync_journal(&mut self, on: bool) {
        self.sync_on = on;
        if on && self.changed.capacity() < SYNC_ROOM {
            self.changed.reserve_exact(SYNC_ROOM);
        }
        self.changed.clear();
    }

    /// The adjustments that changed since the last call, handed to `push` until it
    /// returns false (the rest wait).
    pub fn sync_take(&mut self, push: &mut dyn FnMut(crate::ha::wire::SeqAdjRec) -> bool) {
        let mut n = 0;
        while n < self.changed.len() {
            let key = self.changed[n];
            if let Some(rec) = self.sync_rec(&key) {
                if !push(rec) {
                    break;
                }
            }
            n += 1;
        }
        self.changed.drain(..n);
    }

    /// Every connection's adjustment (a bulk sync or refresh), from `*at` on, handed to
    /// `push` until it returns false; true once all were.
    pub fn sync_walk(
        &self,
        at: &mut usize,
        push: &mut dyn FnMut(crate::ha::wire::SeqAdjRec) -> bool,
    ) -> bool {
        for key in self.conns.keys().skip(*at) {
            if let Some(rec) = self.sync_rec(key) {
                if !push(rec) {
                    return false;
                }
            }
            *at += 1;
        }
        true
    }

    /// A connection's adjustment as a record; a NAT64 connection's names its host by
    /// this node's handle, which the NAT replaces by the host's address before it is
    /// sent (`Nat::seq_item_out`).
    fn sync_rec(&self, key: &ConnKey) -> Option<crate::ha::wire::SeqAdjRec> {
        let c = self.conns.get(key)?;
        if !c.seq.active() {
            return None;
        }
        let mut rec = crate::ha::wire::SeqAdjRec {
            inside: (key.0, key.1),
            remote: (key.2, key.3),
            ..Default::default()
        };
        for (d, (base, points)) in rec.dirs.iter_mut().zip(c.seq.parts()) {
            d.base = base;
            d.n = points.len() as u8;
            d.points[..points.len()].copy_from_slice(points);
        }
        Some(rec)
    }

    /// Installs (a standby) the adjustment of a control connection the active
    /// rewrote, at `now`; `end`: forgets the connection.
    pub fn sync_install(&mut self, rec: &crate::ha::wire::SeqAdjRec, end: bool, now: u32) {
        let key = (rec.inside.0, rec.inside.1, rec.remote.0, rec.remote.1);
        if end {
            self.conns.remove(&key);
            return;
        }
        let mut c = self.conns.get(&key).copied().unwrap_or_default();
        c.seq = crate::mangle::SeqAdj::from_parts([0, 1].map(|d| {
            let x = &rec.dirs[d];
            (x.base, &x.points[..usize::from(x.n)])
        }));
        c.last_seen = now;
        // (A new connection when the table is full is not followed.)
        let _ = self.conns.insert(key, c);
    }

    /// Empty, sized for `conns` control connections (its worker's share of
    /// `nat.max_alg_connections`) and a run remembered for one in sixteen (at most
    /// [`MAX_RUNS`]); every buffer a text
    /// needs is made here, none when one is processed.
    pub fn new(counters: std::sync::Arc<WorkerCounters>, conns: usize) -> AlgControl {
        let runs = (conns / 16).clamp(1, MAX_RUNS);
        AlgControl {
            conns: FixedMap::new(conns),
            changed: Vec::with_capacity(SYNC_ROOM),
            sync_on: false,
            runs: FixedMap::new(runs),
            run_text: vec![0; runs * RUN_TEXT],
            run_free: (0..runs as u32).rev().collect(),
            scratch: Some(Box::new(Scratch {
                text: Vec::with_capacity(TEXT_ROOM),
                new_text: vec![0; TEXT_ROOM + crate::alg_contract::TEXT_EDIT_BYTES],
                ctl: Default::default(),
                cuts: Default::default(),
                framed: Default::default(),
            })),
            counters,
            policy: AlgPolicy::default(),
            events: Vec::with_capacity(MAX_EVENTS),
        }
    }

    /// The bytes of memory its tables and buffers take (what [`AlgControl::new`]
    /// sized).
    pub fn footprint(&self) -> usize {
        use std::mem::size_of;
        let conns = self.conns.capacity();
        let runs = self.runs.capacity();
        // (An index slot is 4 bytes, at most 3/4 of them used.)
        let index = |n: usize| 4 * (n + n.div_ceil(3));
        conns * (size_of::<Option<(ConnKey, Conn)>>() + 4)
            + index(conns)
            + runs * (size_of::<Option<((ConnKey, u8), Run)>>() + 4 + RUN_TEXT)
            + index(runs)
            + self.changed.capacity() * size_of::<ConnKey>()
            + self.events.capacity() * size_of::<crate::log::LogEvent>()
            + size_of::<Scratch>()
            + TEXT_ROOM
            + TEXT_ROOM
            + crate::alg_contract::TEXT_EDIT_BYTES
    }

    /// Remembers the rewritten bytes `text` of a run (its place `start`, `len` in the
    /// sender's sequence space, its last segment at `last`) for `k`; a run too long
    /// is not (and one remembered before is forgotten).
    fn remember_run(
        &mut self,
        alg: u8,
        k: (ConnKey, u8),
        (start, len, last): (u32, u32, u32),
        (pre, first_end): (i32, u32),
        text: &[u8],
    ) {
        if text.len() > RUN_TEXT {
            if let Some(r) = self.runs.remove(&k) {
                self.run_free.push(r.slot);
            }
            self.count_no_room(alg);
            return;
        }
        let slot = match self.runs.get(&k) {
            Some(r) => r.slot,
            None => {
                if self.runs.is_full() {
                    // Forget them all (as many at once as there is room for).
                    self.runs.clear();
                    self.run_free.clear();
                    self.run_free.extend((0..self.runs.capacity() as u32).rev());
                }
                match self.run_free.pop() {
                    Some(s) => s,
                    None => return,
                }
            }
        };
        let at = slot as usize * RUN_TEXT;
        self.run_text[at..at + text.len()].copy_from_slice(text);
        let run = Run {
            start,
            len,
            last,
            slot,
            n: text.len() as u32,
            pre,
            first_end,
        };
        if self.runs.insert(k, run).is_err() {
            self.run_free.push(slot);
        }
    }

    /// The policy decisions recorded since the events were last taken (the caller
    /// clears what it sent on).
    pub fn events(&mut self) -> &mut Vec<crate::log::LogEvent> {
        &mut self.events
    }

    /// Records a policy decision for the exporter (syslog), if there is room.
    fn log_refusal(&mut self, tag: &Tag, drop: bool, what: &[u8; 16]) {
        if self.events.len() < MAX_EVENTS {
            self.events.push(crate::log::LogEvent::alg_policy(
                tag.alg,
                drop,
                tag.inside,
                tag.outside,
                tag.remote,
                what,
            ));
        }
    }

    /// The `[alg.<name>]` policy keys contract ALG `alg` reads in the stream engine.
    pub fn policy_of(&self, alg: u8) -> cgnat_alg::contract::Policy<'_> {
        self.policy.contract_of(alg)
    }

    /// Sets the ALGs' command and request policy (at start and on a reload); returns
    /// the one it replaces.
    pub fn set_policy(&mut self, p: AlgPolicy) -> AlgPolicy {
        std::mem::replace(&mut self.policy, p)
    }

    /// Whether a segment at `seq` repeats bytes of a run already rewritten (it is
    /// rewritten the same way again, never held).
    pub fn in_run(&self, key: &(u32, u16, u32, u16), dir: u8, seq: u32) -> bool {
        self.runs
            .get(&(*key, dir))
            .is_some_and(|r| seq.wrapping_sub(r.start) < r.len)
    }

    /// True while the ALG still reads the connection (not stood aside).
    pub fn reading(&self, key: &(u32, u16, u32, u16)) -> bool {
        !self.conns.get(key).is_some_and(|c| c.stand_aside)
    }

    /// Whether the TCP text `text` of contract ALG `c` (a segment's payload, or a
    /// held run's with the segment that may complete it), starting at sequence
    /// number `seq`, ends inside a message the engine holds until the rest comes
    /// ([`crate::alg_contract::incomplete`], read after what the worker read, from
    /// the first segment's tag `first`). How it was framed is kept for reading the
    /// same text next ([`AlgControl::process_run`]): each text is framed once.
    pub fn incomplete(
        &mut self,
        c: &dyn cgnat_alg::contract::Contract,
        text: &[u8],
        (tag, first): (&Tag, &Tag),
        seq: u32,
    ) -> bool {
        let key = (tag.inside.0, tag.inside.1, tag.remote.0, tag.remote.1);
        let id = (key, tag.dir, seq, text.len());
        let from = crate::alg_contract::worker_read(first);
        let policy = self.policy.contract_of(tag.alg);
        match self.scratch.as_deref_mut() {
            Some(s) => {
                crate::alg_contract::incomplete(c, (text, from), tag, policy, (&mut s.framed, id))
            }
            None => false,
        }
    }

    /// Processes one tagged packet of an ALG control connection, at `now` (`engine`:
    /// the grants of what is planned here, [`Tag::worker_read`]).
    pub fn process<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        tag: &Tag,
        now: u32,
        engine: Option<&mut EngineGrants<'_>>,
    ) -> Refusal {
        self.process_run(std::slice::from_mut(buf), None, (tag, tag), now, engine)
    }

    /// Processes a run of held segments (and the segment that completed it, if any)
    /// as one text: the edits are computed over all their payloads together, and each
    /// segment gets those that fall in it (an edit across a boundary goes to the
    /// segment it starts in; the old bytes after the boundary leave the next), so
    /// no segment grows by more than its own rewrites. A client's FTP command the
    /// policy refuses is taken out of the text; the answer says what the client gets.
    ///
    /// Nothing is allocated. Past the room made in [`AlgControl::new`], the segments
    /// go as the ALG would leave them with no room (counted `no_room`): a new
    /// connection when the table is full (after forgetting the idle ones) is not
    /// followed; a text of more than [`MAX_RUN_SEGS`] segments or [`TEXT_ROOM`]
    /// bytes, or a message whose edits do not fit, is not rewritten (the segments
    /// still get their adjustment); a rewritten run longer than [`RUN_TEXT`] is not
    /// remembered. More refused messages than their room drop the text.
    ///
    /// `tags`: the tag of the segment that completed the run (or of its last) and of
    /// its first (what the worker read of the text: [`Tag::worker_read`]).
    pub fn process_run<B: PacketBuf>(
        &mut self,
        run: &mut [B],
        last: Option<&mut B>,
        tags: (&Tag, &Tag),
        now: u32,
        engine: Option<&mut EngineGrants<'_>>,
    ) -> Refusal {
        let Some(mut scratch) = self.scratch.take() else {
            return Refusal::None;
        };
        let mut segs = Segs { run, last };
        let r = self.process_segs(&mut segs, tags, now, &mut scratch, engine);
        self.scratch = Some(scratch);
        r
    }

    /// [`AlgControl::process_run`] with the room a text needs.
    fn process_segs<B: PacketBuf>(
        &mut self,
        segs: &mut Segs<'_, B>,
        (tag, first): (&Tag, &Tag),
        now: u32,
        scratch: &mut Scratch,
        engine: Option<&mut EngineGrants<'_>>,
    ) -> Refusal {
        let n = segs.len();
        if n == 0 {
            return Refusal::None;
        }
        let key = (tag.inside.0, tag.inside.1, tag.remote.0, tag.remote.1);
        let contract = crate::alg_contract::contract_of(tag.alg);
        let Some((_, _, datagram)) = payload(segs.get(0).data()) else {
            return Refusal::None;
        };
        if datagram && contract.is_none() {
            return Refusal::None;
        }
        if !datagram && !self.conns.contains_key(&key) && self.conns.is_full() {
            // Forget connections idle for more than a TCP established timeout.
            self.conns
                .retain(|_, c| now.saturating_sub(c.last_seen) < 7440);
            if self.conns.is_full() {
                // No room to follow it: its segments go as they came.
                self.count_no_room(tag.alg);
                return Refusal::None;
            }
        }
        if n > MAX_RUN_SEGS {
            // (The engine never holds that many.) Each segment gets its adjustment.
            self.count_no_room(tag.alg);
            let mut conn = self.conns.get(&key).copied().unwrap_or_default();
            for k in 0..n {
                let buf = segs.get_mut(k);
                if let (false, Some((l4, _, _))) = (datagram, crate::mangle::l4_of(buf.data(), 14))
                {
                    conn.seq.adjust(buf, l4, usize::from(tag.dir & 1));
                }
            }
            conn.last_seen = now;
            let _ = self.conns.insert(key, conn);
            return Refusal::None;
        }
        let mut conn = self.conns.get(&key).copied().unwrap_or_default();
        conn.last_seen = now;
        let dir = usize::from(tag.dir & 1);
        let Scratch {
            text,
            new_text,
            ctl,
            cuts,
            framed,
        } = scratch;
        // The whole text and where each segment starts in it; a text longer than
        // there is room for is not read (`fits` false).
        let mut starts = [0usize; MAX_RUN_SEGS];
        let mut total = 0;
        for (k, start) in starts.iter_mut().enumerate().take(n) {
            *start = total;
            total += payload(segs.get(k).data()).map_or(0, |(s, e, _)| e - s);
        }
        let fits = total <= text.capacity();
        text.clear();
        if fits {
            for k in 0..n {
                let d = segs.get(k).data();
                if let Some((s, e, _)) = payload(d) {
                    text.extend_from_slice(&d[s..e]);
                }
            }
        } else {
            self.count_no_room(tag.alg);
        }
        let text = &text[..];
        // How much the worker's rewrite of what it read grew the first segment (its
        // sequence correction is recorded here: the worker keeps none).
        let pre = if datagram { 0 } else { i32::from(first.grew) };
        let seq_of = |b: &B| {
            let d = b.data();
            crate::wire::be32(d, l4_at(d) + 4)
        };
        if !datagram && n == 1 {
            if let Some(r) = self.runs.get(&(key, tag.dir)) {
                // A retransmission of bytes of a run already rewritten: the same
                // rewritten bytes again, or nothing if they cannot be told apart.
                let a = seq_of(segs.get(0));
                let b = a.wrapping_add(total as u32);
                let (off_a, off_b) = (a.wrapping_sub(r.start), b.wrapping_sub(r.start));
                if off_a < r.len && off_b <= r.len && off_a < off_b {
                    let last = r.last.wrapping_sub(r.start);
                    let at = r.slot as usize * RUN_TEXT;
                    let rt = &self.run_text[at..at + r.n as usize];
                    let piece = match (r.rewritten_at(off_a), r.rewritten_at(off_b)) {
                        (Some(a), _) if off_b == r.len => rt.get(a..),
                        (Some(a), Some(b)) if off_b <= last => rt.get(a..b),
                        _ => None,
                    };
                    let buf = segs.get_mut(0);
                    let l4 = l4_at(buf.data());
                    conn.seq.adjust(buf, l4, dir);
                    // Bytes that cannot be matched to the rewritten ones leave out: the
                    // segment goes as a bare ack, never with the untranslated text.
                    let piece = piece.unwrap_or_default();
                    if mangle(buf, 14, 0, total, piece).is_err() {
                        self.count_no_room(tag.alg);
                    }
                    let _ = self.conns.insert(key, conn);
                    return Refusal::None;
                }
            }
        }
        if !datagram && dir == 1 {
            // Where the server's stream is (its numbering): a policy reply goes after.
            let b = segs.get(n - 1);
            let d = b.data();
            let l4 = l4_at(d);
            let mut end = seq_of(b).wrapping_add((total - starts[n - 1]) as u32);
            if n == 1 {
                // (In the sender's numbering.)
                end = end.wrapping_sub(pre as u32);
            }
            if conn
                .srv_next
                .is_none_or(|n| (end.wrapping_sub(n) as i32) > 0)
            {
                conn.srv_next = Some(end);
            }
            conn.srv_window = Some(be16(d, l4 + 14));
        }
        // The messages refused: whether one follows one let through (or did not fit:
        // the text is dropped), the first's command, and whose replies they are.
        let mut refused: Option<(bool, [u8; 16], bool)> = None;
        ctl.clear();
        if let (false, true, Some(c)) = (conn.stand_aside, fits, contract) {
            // How the text was framed when the engine decided not to hold it, if
            // it was (the same text, read from the same place): not framed again.
            let from = crate::alg_contract::worker_read(first);
            let id = (key, tag.dir, seq_of(segs.get(0)), text.len());
            let framed = if datagram { None } else { framed.of(id, from) };
            // The requests a request policy refuses are found first: nothing is
            // planned or opened for them (a datagram's, the worker read already).
            let text_policy = self
                .policy
                .text(tag.alg)
                .filter(|p| dir == 0 && !tag.nat64 && p.active());
            let text_refused = match text_policy {
                Some(p) => crate::alg_contract::refused_requests(
                    c,
                    text,
                    datagram,
                    tag,
                    p.contract(),
                    (cuts, framed.filter(|_| from == 0)),
                ),
                None => {
                    cuts.clear();
                    false
                }
            };
            // The first refused request's command or method (for the log).
            let what = verb_of(cuts.ranges.first().map_or(&[][..], |&(a, _)| &text[a..]));
            if let (Some(policy), true, true) = (text_policy, text_refused, datagram) {
                // A refused datagram is answered or dropped whole: not read further.
                let drop = policy.drop || cuts.replies.bytes().is_empty() || cuts.over;
                count_policy(&self.counters, tag.alg, drop);
                self.log_refusal(tag, drop, &what);
                return if drop {
                    Refusal::Drop
                } else {
                    Refusal::Datagram(cuts.replies)
                };
            }
            let skip = &cuts.ranges[..];
            let mut state = conn.alg_state;
            let policy = self.policy_of(tag.alg);
            crate::alg_contract::control_edits(
                c,
                text,
                datagram,
                (tag, from),
                &self.counters,
                &mut state,
                policy,
                ctl,
                engine,
                (skip, framed),
            );
            if !datagram {
                conn.alg_state = state;
                if state & cgnat_alg::contract::STAND_ASIDE != 0 {
                    conn.stand_aside = true;
                }
            }
            if !ctl.refused.is_empty() {
                // The refused messages leave the stream whole; their replies go back.
                let mut over = ctl.refused.over;
                for k in 0..ctl.refused.ranges.len() {
                    let (at, len) = ctl.refused.ranges[k];
                    over |= !ctl.push(at, len, &[]);
                }
                let first = ctl.refused.ranges.first().map_or(0, |r| r.0);
                refused = Some((
                    ctl.refused.pipelined || over,
                    verb_of(&text[first..]),
                    false,
                ));
            }
            if text_refused {
                // The refused messages leave the stream whole: no rewrite in them.
                ctl.retain_outside(&cuts.ranges);
                let mut over = cuts.over;
                for &(a, len) in cuts.ranges.iter() {
                    over |= !ctl.push(a, len, &[]);
                }
                refused = Some((cuts.pipelined || over, what, true));
            }
            ctl.sort();
        }
        if let Some((pipelined, what, _)) = &refused {
            let text_policy = self.policy.text(tag.alg);
            let drop = text_policy.map_or(self.policy.ftp.drop, |p| p.drop) || *pipelined;
            if text_policy.is_some() {
                count_policy(&self.counters, tag.alg, drop);
            } else if contract.is_some() {
                let name = if drop { "policy_drop" } else { "policy_reply" };
                if let Some(c) = self.counters.own_event(tag.alg, name) {
                    c.inc();
                }
            } else if drop {
                self.counters.alg_ftp_policy_drop.inc();
            } else {
                self.counters.alg_ftp_policy_reply.inc();
            }
            self.log_refusal(tag, drop, what);
            if drop {
                let _ = self.conns.insert(key, conn);
                return Refusal::Drop;
            }
        }
        let lines: &ReplyText = match refused {
            Some((_, _, true)) => &cuts.replies,
            _ => &ctl.refused.replies,
        };
        let mut reply = None;
        // The rewritten text, cut again where the segments were cut: every segment but
        // the last keeps its length (so none grows past what its sender sent), the last
        // takes the difference. Each segment gets its sequence adjustment; the run's
        // correction is recorded at the last one.
        let new_text = if ctl.edits.is_empty() {
            None
        } else {
            match cgnat_alg::text::apply_into(text, ctl.edits(), new_text) {
                Some(len) => Some(&new_text[..len]),
                None => {
                    self.count_no_room(tag.alg);
                    if refused.is_some() {
                        // (Never: the refused messages cannot be taken out.)
                        let _ = self.conns.insert(key, conn);
                        return Refusal::Drop;
                    }
                    None
                }
            }
        };
        if let (Some(nt), false, true) = (new_text, datagram, n > 1) {
            // (The run's length as its sender sent it.)
            let sent = (total as i64 - i64::from(pre)) as u32;
            let place = (seq_of(segs.get(0)), sent, seq_of(segs.get(n - 1)));
            let first_end = (starts[1] as i64 - i64::from(pre)) as u32;
            self.remember_run(tag.alg, (key, tag.dir), place, (pre, first_end), nt);
        }
        for (k, &start) in starts.iter().enumerate().take(n) {
            let buf = segs.get_mut(k);
            let Some((l4, _, _)) = crate::mangle::l4_of(buf.data(), 14) else {
                continue;
            };
            let orig_seq = if datagram {
                None
            } else {
                conn.seq.adjust(buf, l4, dir)
            };
            if let (Some(_), Some(seq), true) = (&refused, orig_seq, k + 1 == n) {
                // The reply acks all the client sent, and goes where the server's
                // stream is (what the client acked, or more if the server sent more).
                let d = buf.data();
                let acked = be32(d, l4 + 8);
                let at = match conn.srv_next {
                    Some(s) if (s.wrapping_sub(acked) as i32) > 0 => s,
                    _ => acked,
                };
                let end = seq.wrapping_add((total - start) as u32);
                let rseq = match conn.replied {
                    Some((c, r)) if c == seq => r,
                    _ => {
                        let r = at.wrapping_add(conn.seq.offset(1, at) as u32);
                        conn.seq
                            .insert(1, at.wrapping_sub(1), lines.bytes().len() as i32);
                        conn.replied = Some((seq, r));
                        if self.sync_on && self.changed.len() < SYNC_ROOM {
                            self.changed.push(key);
                        }
                        r
                    }
                };
                reply = Some(Reply {
                    text: *lines,
                    seq: rseq,
                    ack: end,
                    // (None seen, as after a restart: not a zero window, which
                    // would stop the client.)
                    window: conn.srv_window.unwrap_or(u16::MAX),
                    ts: timestamps(d, l4).map(|(val, ecr)| (ecr, val)),
                });
            }
            let made: i32 = 'made: {
                let Some(nt) = new_text else { break 'made 0 };
                let old_len = starts[..n].get(k + 1).copied().unwrap_or(total) - start;
                let from = start.min(nt.len());
                let to = if k + 1 == n {
                    nt.len()
                } else {
                    (start + old_len).min(nt.len())
                };
                let piece = &nt[from..to];
                if piece == &text[start..start + old_len] {
                    break 'made 0;
                }
                match mangle(buf, 14, 0, old_len, piece) {
                    Ok(d) => {
                        self.count_rewrite(tag.alg);
                        d as i32
                    }
                    Err(_) => {
                        self.count_no_room(tag.alg);
                        0
                    }
                }
            };
            // Usually only the last segment changes length; one before it does when
            // the text shrinks past the last's share (a refused command taken out),
            // and its correction is recorded at it. The first segment's includes what
            // the worker's rewrite of what it read made.
            let d = made + if k == 0 { pre } else { 0 };
            if let (Some(seq), true) = (orig_seq, d != 0) {
                conn.seq.record(dir, seq, d);
                if self.sync_on && self.changed.len() < SYNC_ROOM {
                    self.changed.push(key);
                }
            }
        }
        if !datagram {
            let _ = self.conns.insert(key, conn);
        }
        reply.map_or(Refusal::None, Refusal::Reply)
    }

    /// An ALG with a `rewritten` event of its own (FTP) counts rewritten segments here
    /// (SIP and RTSP count messages as they are rewritten).
    fn count_rewrite(&self, alg: u8) {
        if let Some(c) = self.counters.own_event(alg, "rewritten") {
            c.inc();
        }
    }

    fn count_no_room(&self, alg: u8) {
        use crate::counters::AlgEvent;
        if let Some(ev) = self.counters.text_alg_events(alg) {
            ev[AlgEvent::NoRoom as usize].inc();
        } else if crate::alg_contract::contract_of(alg).is_some() {
            self.counters
                .contract_event(alg, crate::counters::ContractEvent::NoRoom)
                .inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use etherparse::PacketBuilder;
    use std::net::Ipv4Addr;

    /// A connection whose server the stream engine never saw (as after a restart): a
    /// refused command's reply advertises an open window, not a zero one, which
    /// would stop the client.
    #[test]
    fn a_reply_with_no_server_segment_seen_has_an_open_window() {
        let mut c = AlgControl::new(std::sync::Arc::new(WorkerCounters::default()), 16);
        c.set_policy(AlgPolicy {
            ftp: FtpPolicy {
                deny: vec!["SITE".into()],
                ..FtpPolicy::default()
            },
            ..AlgPolicy::default()
        });
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([198, 51, 100, 1], [192, 0, 2, 10], 64)
            .tcp(1024, 21, 7000, 1000)
            .ack(9000)
            .write(&mut v, b"SITE X\r\n")
            .unwrap();
        let tag = Tag {
            inside: (u32::from(Ipv4Addr::new(100, 64, 1, 2)), 40000),
            remote: (u32::from(Ipv4Addr::new(192, 0, 2, 10)), 21),
            outside: (u32::from(Ipv4Addr::new(198, 51, 100, 1)), 1024),
            alg: crate::nat::ALG_FTP,
            ..Tag::default()
        };
        let Refusal::Reply(r) = c.process(&mut VecBuf::new(&v), &tag, 1, None) else {
            panic!("refused with a reply")
        };
        assert_eq!((r.seq, r.ack, r.window), (9000, 7008, u16::MAX));
    }
}

#[cfg(test)]
mod bounds {
    //! The bounds of the engine's room ([`AlgControl::new`]): past each, what the
    //! frame becomes, and the count.
    use super::*;
    use crate::buf::VecBuf;
    use crate::counters::ContractEvent;
    use etherparse::PacketBuilder;
    use std::sync::Arc;

    const CLIENT: u32 = 0x6440_0102; // 100.64.1.2
    const POOL: u32 = 0xc633_6401; // 198.51.100.1
    const SERVER: u32 = 0xc000_020a; // 192.0.2.10

    /// The client's PORT for its data port 40000, and its translation.
    const PORT: &[u8] = b"PORT 100,64,1,2,156,64\r\n";
    const PORT_OUT: &[u8] = b"PORT 198,51,100,1,4,0\r\n";

    /// The tag of a client's segment of control connection `cport`, granting the
    /// data port 40000 the pool's 1024.
    fn tag(cport: u16) -> Tag {
        let mut t = Tag {
            inside: (CLIENT, cport),
            remote: (SERVER, 21),
            outside: (POOL, cport),
            alg: crate::nat::ALG_FTP,
            n: 1,
            ..Tag::default()
        };
        t.rewrites[0] = Rewrite {
            inside: (CLIENT, 40000),
            outside: (POOL, 1024),
        };
        t
    }

    /// The client's segment at `seq` carrying `text` (already translated).
    fn seg(cport: u16, seq: u32, text: &[u8]) -> VecBuf {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([198, 51, 100, 1], [192, 0, 2, 10], 64)
            .tcp(cport, 21, seq, 1000)
            .ack(9000)
            .write(&mut v, text)
            .unwrap();
        VecBuf::with_room(&v, v.len() + 64)
    }

    fn text(b: &VecBuf) -> &[u8] {
        let (s, e) = tcp_payload(b.data()).unwrap();
        &b.data()[s..e]
    }

    fn seq(b: &VecBuf) -> u32 {
        be32(b.data(), l4_at(b.data()) + 4)
    }

    fn no_room(c: &WorkerCounters) -> u64 {
        c.contract_event(crate::nat::ALG_FTP, ContractEvent::NoRoom)
            .get()
    }

    fn control(conns: usize) -> (AlgControl, Arc<WorkerCounters>) {
        let counters = Arc::new(WorkerCounters::default());
        (AlgControl::new(counters.clone(), conns), counters)
    }

    /// A table of one connection: a second connection's PORT goes as it came
    /// (counted `no_room`), the first's is still rewritten and adjusted.
    #[test]
    fn a_connection_past_the_tables_room_goes_unrewritten() {
        let (mut c, counters) = control(1);
        let mut a = seg(5000, 100, PORT);
        c.process(&mut a, &tag(5000), 1, None);
        assert_eq!(text(&a), PORT_OUT);
        let mut b = seg(5001, 100, PORT);
        c.process(&mut b, &tag(5001), 1, None);
        assert_eq!((text(&b), no_room(&counters)), (PORT, 1));
        let mut a2 = seg(5000, 100 + PORT.len() as u32, b"NOOP\r\n");
        c.process(&mut a2, &tag(5000), 2, None);
        assert_eq!(seq(&a2), 100 + PORT_OUT.len() as u32);
        assert_eq!(no_room(&counters), 1);
    }

    /// More refused commands in a text than their room: the text is dropped (its
    /// refused commands cannot be taken out of it); within the room, answered.
    #[test]
    fn more_refused_commands_than_their_room_drop_the_text() {
        let (mut c, _) = control(16);
        c.set_policy(AlgPolicy {
            ftp: FtpPolicy {
                deny: vec!["SITE".into()],
                ..FtpPolicy::default()
            },
            ..AlgPolicy::default()
        });
        let within = b"SITE X\r\n".repeat(crate::alg_contract::MAX_CUTS);
        let r = c.process(&mut seg(5000, 100, &within), &tag(5000), 1, None);
        assert!(matches!(r, Refusal::Reply(_)), "{r:?}");
        let past = b"SITE X\r\n".repeat(crate::alg_contract::MAX_CUTS + 1);
        let r = c.process(&mut seg(5001, 100, &past), &tag(5001), 1, None);
        assert_eq!(r, Refusal::Drop);
    }

    /// A run of more segments than a text has room for, or a text longer than
    /// [`TEXT_ROOM`]: nothing rewritten (counted `no_room`), each segment adjusted.
    #[test]
    fn a_text_past_its_room_goes_unrewritten_and_adjusted() {
        let (mut c, counters) = control(16);
        let mut a = seg(5000, 100, PORT);
        c.process(&mut a, &tag(5000), 1, None);
        let delta = (PORT_OUT.len() as u32).wrapping_sub(PORT.len() as u32);
        let at = 100 + PORT.len() as u32;
        // Ten segments, the first a PORT.
        let mut run: Vec<VecBuf> = (0..MAX_RUN_SEGS as u32 + 1)
            .map(|k| seg(5000, at + k * PORT.len() as u32, PORT))
            .collect();
        c.process_run(&mut run, None, (&tag(5000), &tag(5000)), 2, None);
        assert_eq!(no_room(&counters), 1);
        for (k, b) in run.iter().enumerate() {
            assert_eq!(text(b), PORT);
            assert_eq!(seq(b), (at + (k * PORT.len()) as u32).wrapping_add(delta));
        }
        // Nine segments of 9300 bytes each: longer than the room.
        let big = [PORT, &b"NOOP\r\n".repeat(1546)].concat();
        let at = at + run.len() as u32 * PORT.len() as u32;
        let mut run: Vec<VecBuf> = (0..MAX_RUN_SEGS as u32)
            .map(|k| seg(5000, at + k * big.len() as u32, &big))
            .collect();
        assert!(big.len() * run.len() > TEXT_ROOM);
        c.process_run(&mut run, None, (&tag(5000), &tag(5000)), 3, None);
        assert_eq!(no_room(&counters), 2);
        assert!(run.iter().all(|b| text(b) == &big[..]));
        assert_eq!(seq(&run[0]), at.wrapping_add(delta));
    }

    /// A rewritten run longer than [`RUN_TEXT`] is not remembered (counted
    /// `no_room`): a retransmission of it is read anew; a shorter one is.
    #[test]
    fn a_run_past_its_room_is_not_remembered() {
        let (mut c, counters) = control(16);
        let key = |p| (CLIENT, p, SERVER, 21);
        for (cport, before) in [(5000, 1), (5001, 700)] {
            let first = b"NOOP\r\n".repeat(before);
            let mut run = [seg(cport, 100, &first)];
            let mut last = seg(cport, 100 + first.len() as u32, PORT);
            c.process_run(
                &mut run,
                Some(&mut last),
                (&tag(cport), &tag(cport)),
                1,
                None,
            );
            assert_eq!(text(&last), PORT_OUT);
            let long = first.len() + PORT_OUT.len() > RUN_TEXT;
            assert_eq!(c.in_run(&key(cport), 0, 100), !long, "{before} before");
            assert_eq!(no_room(&counters), u64::from(long));
        }
    }
}
