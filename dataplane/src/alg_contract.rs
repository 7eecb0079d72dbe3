//! The dataplane's side of the ALG contract (`cgnat_alg::contract`): it runs every ALG
//! of the registry whose entry has a contract (FTP, TFTP, SIP, RTSP, IRC, PPTP: all of
//! them) without naming it.
//!
//! On the worker that owns the session ([`worker`]): the frame's payload is framed into
//! messages (a TCP message cut across segments is kept here, bounded per session, and
//! parsed with its continuation), each whole message is planned, and each ask granted
//! from the NAT's tables: an announce reserves the translation of the subscriber's
//! endpoint with an expectation of the ask's class ([`Nat::alg_expect_with`]); a lookup
//! finds which endpoint of the subscriber's a port stands for on the other side; an end
//! removes what an announce opened; an identifier ([`Kind::Id`]) goes to [`grant_id`];
//! a contact reserves a translation whose expectation keeps its mapping and lets in
//! the ALG's own sessions; a pair reserves RTP and RTCP; a narrow tells the media
//! source of a group, remembered for its announces to come.
//! When every edit keeps its message's length, or the message is a datagram (no
//! sequence numbers to adjust), the worker makes them itself, inline (the lengths and
//! L4 checksum recomputed), and the frame goes out with no trip to the stream engine.
//! Otherwise (an edit changes the length, or a message is cut across segments) the
//! frame goes to the worker's ALG stream engine (`alg_stream.rs`) tagged with the
//! grants as rewrites ([`crate::alg_tag::Tag`]); the engine holds and joins the
//! segments, and [`control_edits`] computes the same edits there (reading the message
//! a second time), which the engine makes with the sequence adjustment of the
//! connection.
//!
//! A NAT64 session is followed on its IPv4 side (the frame translated from IPv6, or
//! not yet translated back), its inside endpoint the host's handle: its messages are
//! planned and granted as a NAT44 session's, but only their address-free edits (ports,
//! identifiers) are made ([`nat64_untouched`]), unless the ALG decides its edits there
//! ([`Contract::nat64_edits`], told [`Conn::nat64`]; an IPv6 host's own address
//! announced is an [`Ask::Announce6`]).
//!
//! A [`Contract::stateful`] ALG's TCP frames all go to the stream engine, which reads
//! every message in order and keeps the ALG's state of the connection
//! ([`control_edits`]); there its [`Contract::refuse`] may refuse a message, which the
//! stream engine takes out of the stream and answers. The ALG's own events
//! ([`Contract::events`]) are counted under their names
//! ([`WorkerCounters::own_event`]).
//!
//! Below the stream engine (`alg.rs`) and the pipeline: it imports neither.

use crate::alg_tag::{Rewrite, Tag, MAX_REWRITES};
use crate::buf::PacketBuf;
use crate::counters::{ContractEvent, WorkerCounters};
use crate::fixed_map::FixedMap;
use crate::nat::expect::ExpectReq;
use crate::nat::{Nat, Session};
use crate::wire::{ipv4, udp};
use cgnat_alg::contract::{
    Ask, Conn, Contract, Ctx, Dir, Edit, Edits, Framing, Grant, Kind, Notes, Plan, Policy, Reply,
    State, MAX_ASKS, MAX_EDITS, STAND_ASIDE,
};

/// The contract of ALG `alg` (a session id), if its registry entry has one.
#[inline]
pub fn contract_of(alg: u8) -> Option<&'static dyn Contract> {
    if alg == 0 {
        return None;
    }
    cgnat_alg::contract_of(alg)
}

/// Edits one frame may have made inline (more: the stream engine makes them).
const MAX_INLINE: usize = 2 * MAX_EDITS;
/// Media sources the peers named ([`Ask::Narrow`]) remembered at once, per worker.
pub const SOURCES: usize = 256;

/// Sessions whose TCP stream the stream engine reads (it carries a length-changing
/// rewrite, or a message cut across segments), at most, per worker.
pub const ADJUSTED: usize = 4096;

/// What the worker keeps of the contract ALGs' TCP streams, sized at start and never
/// grown: the sessions whose streams the stream engine reads (it adjusts their
/// sequence numbers, or holds a message start of theirs): every later frame of
/// theirs goes there unread, both ways; and the media sources peers named.
pub struct Streams {
    adjusted: FixedMap<u32, ()>,
    sources: Sources,
}

impl Default for Streams {
    fn default() -> Self {
        Streams {
            adjusted: FixedMap::new(ADJUSTED),
            sources: Sources(Vec::with_capacity(SOURCES)),
        }
    }
}

/// The media source a peer named for a group of a session ([`Ask::Narrow`]: the
/// offer's address), as (session, group, source), for the announces of that group to
/// come (the answer's): sized at start, the oldest going when full.
#[derive(Default)]
struct Sources(Vec<(u32, u32, u32)>);

impl Sources {
    fn set(&mut self, session: u32, group: u32, source: u32) {
        if let Some(o) = self.0.iter_mut().find(|o| o.0 == session && o.1 == group) {
            o.2 = source;
            return;
        }
        if self.0.len() == SOURCES {
            self.0.remove(0);
        }
        self.0.push((session, group, source));
    }

    fn get(&self, session: u32, group: u32) -> Option<u32> {
        self.0
            .iter()
            .find(|o| o.0 == session && o.1 == group)
            .map(|o| o.2)
    }
}

impl Streams {
    /// Whether session `i`'s stream is read by the stream engine (one lookup).
    fn adjusted(&self, i: u32) -> bool {
        self.adjusted.contains_key(&i)
    }

    /// Notes that session `i`'s stream is read by the stream engine from now on.
    /// When full, the records of sessions that are no longer a contract ALG's TCP
    /// session go first (a record reused by another such session only sends its
    /// frames to the stream engine, which reads them as it would anyway); false if
    /// none could.
    fn adjust(&mut self, i: u32, nat: &Nat) -> bool {
        if self.adjusted(i) {
            return true;
        }
        if self.adjusted.is_full() {
            self.adjusted.retain(|&k, _| {
                let s = nat.session(k);
                s.proto == ipv4::PROTO_TCP && contract_of(s.alg()).is_some()
            });
        }
        self.adjusted.insert(i, ()).is_ok()
    }

    /// An HA standby promoted: the contract ALG TCP sessions whose sequence
    /// adjustment the active synced ([`Nat::sync_adjusted`]) are
    /// adjusted here from now on (their frames go to the stream engine, which was
    /// given the adjustment). One that finds no room is counted `no_room`.
    pub fn promote(&mut self, nat: &mut Nat, counters: &WorkerCounters) {
        nat.sync_adjusted(&mut |nat, i| {
            let s = nat.session(i);
            let alg = s.alg();
            if s.proto == ipv4::PROTO_TCP && contract_of(alg).is_some() && !self.adjust(i, nat) {
                counters.contract_event(alg, ContractEvent::NoRoom).inc();
            }
        });
    }
}

/// The stream engine's way to its worker's NAT: the grants of the messages it plans
/// itself (those past what the worker read, [`Tag::worker_read`]: a frame of a
/// stateful ALG's stream, or of a stream the engine adjusts or polices, is handed
/// over unread), granted as the worker grants its own ([`Frame::grants`]): each
/// message is read once, by the engine. What one text (a segment, or a run joined)
/// opens is bounded as what the worker records in a tag: [`MAX_REWRITES`]
/// translations (past them, counted `no_room`, an announce opens nothing).
pub struct EngineGrants<'a> {
    nat: &'a mut Nat,
    counters: &'a WorkerCounters,
    sources: &'a mut Sources,
    now: u32,
    /// The translations granted in the text read now.
    text: Tag,
}

impl Streams {
    /// The grants the stream engine asks of `nat` at `now` ([`EngineGrants`]).
    pub fn engine_grants<'a>(
        &'a mut self,
        nat: &'a mut Nat,
        counters: &'a WorkerCounters,
        now: u32,
    ) -> EngineGrants<'a> {
        EngineGrants {
            nat,
            counters,
            sources: &mut self.sources,
            now,
            text: Tag::default(),
        }
    }
}

impl EngineGrants<'_> {
    /// A new text is read: its translations are counted from none.
    pub fn start_text(&mut self) {
        self.text.n = 0;
    }

    /// The policy the ALG `alg` reads under: the stream engine's `policy` with the
    /// `[alg.<name>]` keys the NAT grants by (`loose`, `min_data_port`,
    /// `min_media_port`: [`crate::nat::NatParams::contract_policy`]).
    pub fn policy<'p>(&self, alg: u8, policy: Policy<'p>) -> Policy<'p> {
        let keys = self.nat.params().contract_policy(alg);
        Policy {
            loose: keys.loose,
            min_data_port: policy.min_data_port.max(keys.min_data_port),
            min_media_port: policy.min_media_port.max(keys.min_media_port),
            ..policy
        }
    }

    /// The grants of `plan`, the stream engine's plan of a message of the session
    /// `tag` names (TCP, or UDP for a datagram), on `conn`; all refused once the
    /// session is gone.
    pub fn grants(
        &mut self,
        c: &dyn Contract,
        conn: &Conn<'_>,
        plan: &Plan,
        tag: &Tag,
    ) -> [Grant; MAX_ASKS] {
        let proto = if conn.ctx.datagram {
            ipv4::PROTO_UDP
        } else {
            ipv4::PROTO_TCP
        };
        let Some(master) = self.nat.session_of(proto, tag.inside, tag.remote) else {
            return [Grant::Refused; MAX_ASKS];
        };
        let s = *self.nat.session(master);
        let mut f = Frame {
            nat: &mut *self.nat,
            counters: self.counters,
            alg: tag.alg,
            master,
            s: &s,
            ctx: conn.ctx,
            now: self.now,
            tag: Tag {
                rewrites: self.text.rewrites,
                n: self.text.n,
                ..*tag
            },
            refused: false,
            conn: *conn,
            sources: &mut *self.sources,
        };
        let g = f.grants(c, plan);
        (self.text.rewrites, self.text.n) = (f.tag.rewrites, f.tag.n);
        g
    }
}

/// The payload of a TCP or UDP frame (Ethernet at 0; IPv4, or IPv6 as a NAT64 frame
/// reaches the stream engine): its range, whether it is a datagram, and the TCP
/// sequence number.
pub(crate) fn payload(d: &[u8]) -> Option<(usize, usize, bool, u32)> {
    let (l4, end, proto) = crate::mangle::l4_of(d, 14)?;
    if end > d.len() || l4 > end {
        return None;
    }
    match proto {
        ipv4::PROTO_TCP => {
            let (s, e) = crate::alg_tag::tcp_payload(d)?;
            Some((s, e, false, crate::wire::be32(d, l4 + 4)))
        }
        ipv4::PROTO_UDP if end >= l4 + udp::HEADER_LEN => {
            Some((l4 + udp::HEADER_LEN, end, true, 0))
        }
        _ => None,
    }
}

/// The endpoint a message names, with address 0 (the session's own) made the
/// session's address on the side its sender sees: the pool address from the peer, the
/// subscriber's from the subscriber.
fn named(ctx: &Ctx, e: (u32, u16)) -> (u32, u16) {
    match (e.0, ctx.dir) {
        (0, Dir::FromOutside) => (ctx.outside.0, e.1),
        (0, Dir::FromInside) => (ctx.inside.0, e.1),
        _ => e,
    }
}

fn dir_of(tag_dir: u8) -> Dir {
    if tag_dir == 0 {
        Dir::FromInside
    } else {
        Dir::FromOutside
    }
}

fn proto_of(kind: Kind) -> u8 {
    match kind {
        Kind::Tcp => ipv4::PROTO_TCP,
        _ => ipv4::PROTO_UDP,
    }
}

/// Whether contract ALG `c`'s policy (`conn.policy`) refuses the whole message `msg`,
/// its reply in the server's name written into `reply`: the dataplane's one question
/// to [`Contract::refuse`] (on the contract path, and in the stream engine for a stream's
/// commands and for a subscriber's requests), the methods `conn.policy.deny` names
/// (as written) the denied ones.
fn refused(c: &dyn Contract, msg: &[u8], conn: &Conn<'_>, reply: &mut Reply) -> bool {
    let deny = conn.policy.deny;
    let denied = |m: &[u8]| deny.iter().any(|d| d.as_bytes() == m);
    c.refuse(msg, conn, &denied, reply)
}

/// Counts bytes of a text that are no message of ALG `alg`'s (`c`): as its
/// [`Contract::skipped`] says, or `skipped`.
fn count_skipped(counters: &WorkerCounters, alg: u8, c: &dyn Contract, bytes: &[u8], ctx: &Ctx) {
    let mut notes = Notes::default();
    match c.skipped(bytes, ctx) {
        Some(k) => {
            notes.note(k);
            count_notes(counters, alg, c, &notes);
        }
        None => counters.contract_event(alg, ContractEvent::Skipped).inc(),
    }
}

/// Counts the ALG's own events noted ([`Contract::events`]) under their counters.
fn count_notes(counters: &WorkerCounters, alg: u8, c: &dyn Contract, notes: &Notes) {
    for (k, n) in notes.iter() {
        let counter = c
            .events()
            .get(k)
            .and_then(|name| counters.own_event(alg, name));
        if let Some(counter) = counter {
            counter.add(u64::from(n));
        }
    }
}

/// What the worker decided for a frame.
struct Frame<'a> {
    nat: &'a mut Nat,
    counters: &'a WorkerCounters,
    alg: u8,
    master: u32,
    s: &'a Session,
    ctx: Ctx,
    now: u32,
    tag: Tag,
    /// A message the policy refuses: the stream engine answers or drops it.
    refused: bool,
    /// The connection as the ALG is told it (the worker keeps no state: 0).
    conn: Conn<'a>,
    /// The media sources peers named.
    sources: &'a mut Sources,
}

impl Frame<'_> {
    fn count(&self, e: ContractEvent) {
        self.counters.contract_event(self.alg, e).inc();
    }

    /// Bytes the framing skips: counted as the ALG's own event for them
    /// ([`Contract::skipped`]), else `skipped`.
    fn skipped(&self, c: &dyn Contract, bytes: &[u8]) {
        count_skipped(self.counters, self.alg, c, bytes, &self.ctx);
    }

    /// The tag's rewrite for a grant (the stream engine finds the grant again there).
    fn note(&mut self, inside: (u32, u16), outside: (u32, u16)) {
        let r = Rewrite { inside, outside };
        let n = usize::from(self.tag.n);
        if self.tag.rewrites[..n].contains(&r) {
            return;
        }
        if n == MAX_REWRITES {
            // (A datagram's edits are the worker's: its tag carries none.)
            if !self.ctx.datagram {
                self.count(ContractEvent::NoRoom);
            }
            return;
        }
        self.tag.rewrites[n] = r;
        self.tag.n += 1;
    }

    /// The tag's rewrite for an identifier [`grant_id`] granted, as for a port: the
    /// stream engine finds it again the same way ([`grants_from_tag`]).
    fn note_id(&mut self, ask: &Ask, e: (u32, u16)) {
        match *ask {
            Ask::Announce { inside, .. }
            | Ask::Bind { inside, .. }
            | Ask::Contact { inside, .. }
            | Ask::Pair { inside, .. } => self.note(inside, e),
            Ask::Announce6 { port, .. } => self.note((self.ctx.inside.0, port), e),
            Ask::Lookup { outside, .. } => match self.ctx.dir {
                Dir::FromOutside => {
                    let at = named(&self.ctx, outside);
                    self.note(e, at)
                }
                Dir::FromInside => {
                    let at = named(&self.ctx, outside);
                    self.note(at, e)
                }
            },
            Ask::End {
                endpoint,
                translated,
                ..
            } => {
                if translated {
                    self.note(e, endpoint)
                } else {
                    self.note(endpoint, e)
                }
            }
            Ask::EndGroup { .. } | Ask::Regroup { .. } | Ask::Narrow { .. } => {}
        }
    }

    /// Whether an announce of `inside` whose grant takes `slots` rewrites of the tag
    /// (a pair: two) may open anything: not for another host's address (as an FTP
    /// bounce; counted `elsewhere`), nor without room in the tag.
    fn may_open(&self, inside: (u32, u16), slots: usize) -> bool {
        if inside.0 != self.s.in_addr {
            self.count(ContractEvent::Elsewhere);
            return false;
        }
        self.room_for(inside, slots)
    }

    /// Whether the tag has room to record the announce of `inside` in `slots`
    /// rewrites (counted `no_room` when not: nothing is opened that no one is told). A
    /// datagram's edits are made by the worker, with the grants themselves: room is
    /// not needed.
    fn room_for(&self, inside: (u32, u16), slots: usize) -> bool {
        let n = usize::from(self.tag.n);
        if self.ctx.datagram
            || n + slots <= MAX_REWRITES
            || self.tag.rewrites[..n].iter().any(|r| r.inside == inside)
        {
            return true;
        }
        self.count(ContractEvent::NoRoom);
        false
    }

    /// The NAT's answer to one ask of a message whose announces join `group`.
    fn grant(&mut self, ask: &Ask, group: u32) -> Grant {
        let (s, now) = (self.s, self.now);
        if let Ask::Announce6 {
            kind,
            addr,
            port,
            class,
            from,
        } = *ask
        {
            // An IPv6 host's own address: an announce of its handle's endpoint.
            if kind != Kind::Id && self.nat.host6(s.in_addr) == Some(addr) {
                let inside = (s.in_addr, port);
                return self.grant(
                    &Ask::Announce {
                        kind,
                        inside,
                        class,
                        from,
                    },
                    group,
                );
            }
            self.count(ContractEvent::Refused);
            return Grant::Refused;
        }
        let g = match *ask {
            Ask::EndGroup { group } => {
                let n = self.nat.alg_forget(self.master, group, now);
                if n == 0 {
                    // Nothing opened in the group: nothing to end (not a refusal).
                    return Grant::Refused;
                }
                self.count(ContractEvent::Ended);
                Grant::To((0, n.min(usize::from(u16::MAX)) as u16))
            }
            Ask::Regroup { group, source } => {
                if group != 0 {
                    self.nat.alg_retag(self.master, 0, group);
                }
                if let Some(src) = source {
                    self.nat.alg_retarget(self.master, group, src);
                }
                return Grant::To((0, 0));
            }
            Ask::Narrow { group, source } => {
                self.nat.alg_narrow(self.master, group, source);
                self.sources.set(self.master, group, source);
                return Grant::To((0, 0));
            }
            Ask::Contact {
                kind,
                inside,
                class,
                secs,
            } => {
                if kind == Kind::Id || !self.may_open(inside, 1) {
                    return Grant::Refused;
                }
                let req = ExpectReq {
                    proto: proto_of(kind),
                    in_addr: inside.0,
                    in_port: inside.1,
                    remote: s.rem_addr,
                    class,
                    tag: group,
                    secs,
                    keep: true,
                    alg: self.alg,
                };
                match self.nat.alg_expect_with(self.master, &req, now) {
                    Some(out) => {
                        self.count(ContractEvent::Pinholes);
                        self.note(inside, out);
                        Grant::To(out)
                    }
                    None => Grant::Refused,
                }
            }
            Ask::Pair {
                inside,
                rtcp,
                class,
                from,
            } => {
                if !self.may_open(inside, 2) {
                    return Grant::Refused;
                }
                let min = self.nat.params().min_media_port(self.alg);
                if inside.1 < min || rtcp < min {
                    self.count(ContractEvent::LowPort);
                    return Grant::Refused;
                }
                // Any source (0) until the peer names the group's: then only it.
                let remote = match from {
                    Some(0) => self.sources.get(self.master, group).unwrap_or(0),
                    Some(a) => a,
                    None => s.rem_addr,
                };
                let req = ExpectReq {
                    proto: ipv4::PROTO_UDP,
                    in_addr: inside.0,
                    in_port: inside.1,
                    remote,
                    class,
                    tag: group,
                    secs: 0,
                    keep: false,
                    alg: 0,
                };
                match self.nat.alg_expect_pair(self.master, &req, rtcp, now) {
                    Some((rtp, rtcp_out)) => {
                        self.count(ContractEvent::Pinholes);
                        self.count(ContractEvent::MediaPairs);
                        self.note(inside, rtp);
                        self.note((inside.0, rtcp), rtcp_out);
                        Grant::To(rtp)
                    }
                    None => Grant::Refused,
                }
            }
            Ask::Announce6 { .. } => Grant::Refused,
            Ask::Announce { kind: Kind::Id, .. }
            | Ask::Bind { .. }
            | Ask::Lookup { kind: Kind::Id, .. }
            | Ask::End { kind: Kind::Id, .. } => {
                let g = grant_id(
                    self.nat,
                    self.counters,
                    self.alg,
                    self.master,
                    &self.ctx,
                    ask,
                    now,
                );
                if let Grant::To(e) = g {
                    self.note_id(ask, e);
                }
                g
            }
            Ask::Announce {
                kind,
                inside,
                class,
                from,
            } => {
                if !self.may_open(inside, 1) {
                    return Grant::Refused;
                }
                let n = usize::from(self.tag.n);
                if let Some(r) = self.tag.rewrites[..n].iter().find(|r| r.inside == inside) {
                    // Announced again in the same frame: the one reservation.
                    return Grant::To(r.outside);
                }
                let min = self.nat.params().min_media_port(self.alg);
                if kind == Kind::UdpPair && inside.1 < min {
                    // Media to a privileged port of the subscriber's: refused.
                    self.count(ContractEvent::LowPort);
                    return Grant::Refused;
                }
                let req = ExpectReq {
                    proto: proto_of(kind),
                    in_addr: inside.0,
                    in_port: inside.1,
                    remote: from.unwrap_or(s.rem_addr),
                    class,
                    tag: group,
                    secs: 0,
                    keep: false,
                    alg: 0,
                };
                let out = if kind == Kind::UdpPair {
                    self.nat
                        .alg_expect_pair(self.master, &req, inside.1.wrapping_add(1), now)
                        .map(|(rtp, _)| rtp)
                } else {
                    self.nat.alg_expect_with(self.master, &req, now)
                };
                match out {
                    Some(out) => {
                        self.count(ContractEvent::Pinholes);
                        if kind == Kind::UdpPair {
                            self.count(ContractEvent::MediaPairs);
                        }
                        self.note(inside, out);
                        Grant::To(out)
                    }
                    None => Grant::Refused,
                }
            }
            Ask::Lookup { kind, outside } => {
                let proto = proto_of(kind);
                match self.ctx.dir {
                    Dir::FromOutside => {
                        let at = named(&self.ctx, outside);
                        match self.nat.inside_of(proto, at.0, at.1) {
                            Some(inside) if inside.0 == s.in_addr => {
                                self.note(inside, at);
                                Grant::To(inside)
                            }
                            _ => Grant::Refused,
                        }
                    }
                    Dir::FromInside => {
                        let at = named(&self.ctx, outside);
                        match self.nat.outside_of(proto, at.0, at.1) {
                            Some(out) if at.0 == s.in_addr => {
                                self.note(at, out);
                                Grant::To(out)
                            }
                            _ => Grant::Refused,
                        }
                    }
                }
            }
            Ask::End {
                kind,
                endpoint,
                translated,
            } => {
                let proto = proto_of(kind);
                let inside = if translated {
                    self.nat.inside_of(proto, endpoint.0, endpoint.1)
                } else {
                    Some(endpoint)
                };
                match inside.filter(|i| i.0 == s.in_addr) {
                    Some(i) => match self.nat.alg_end(proto, i.0, i.1, now) {
                        Some(out) => {
                            self.note(i, out);
                            Grant::To(if translated { i } else { out })
                        }
                        None => Grant::Refused,
                    },
                    None => Grant::Refused,
                }
            }
        };
        if g == Grant::Refused {
            self.count(ContractEvent::Refused);
        } else if matches!(ask, Ask::Lookup { .. }) {
            self.count(ContractEvent::Lookups);
        }
        g
    }

    /// Plans and grants one whole message; its edits (in message offsets): none on a
    /// NAT64 session ([`nat64_untouched`]) unless the ALG makes NAT64 edits, none for
    /// a stateful ALG (the stream engine makes them, in order).
    fn message(&mut self, msg: &[u8], c: &dyn Contract, edits: &mut Edits) -> bool {
        let ok = self.plan_and_edit(msg, c, edits);
        if !c.nat64_edits() && nat64_untouched(self.conn.nat64, edits) {
            self.count(ContractEvent::Nat64Untouched);
        }
        ok
    }

    /// The grants of a message's `plan` (counted: the message, the plan's own events
    /// and asks that did not fit, each grant, the ALG's events at [`Contract::granted`]).
    fn grants(&mut self, c: &dyn Contract, plan: &Plan) -> [Grant; MAX_ASKS] {
        self.count(ContractEvent::Messages);
        count_notes(self.counters, self.alg, c, &plan.notes);
        if plan.over > 0 {
            self.counters
                .contract_event(self.alg, ContractEvent::TooManyAsks)
                .add(plan.over as u64);
        }
        let mut grants = [Grant::Refused; MAX_ASKS];
        for (k, a) in plan.asks().enumerate() {
            grants[k] = self.grant(a, plan.group);
        }
        let mut notes = Notes::default();
        c.granted(plan, &grants[..plan.len()], &self.conn, &mut notes);
        count_notes(self.counters, self.alg, c, &notes);
        grants
    }

    fn plan_and_edit(&mut self, msg: &[u8], c: &dyn Contract, edits: &mut Edits) -> bool {
        if self.ctx.dir == Dir::FromInside && !crate::nat::hosts6::is_host(self.s.in_addr) {
            let p = self.nat.params();
            let conn = Conn {
                policy: Policy {
                    deny: p.deny_methods(self.alg),
                    max_message_size: p.max_message_size(self.alg),
                    ..self.conn.policy
                },
                ..self.conn
            };
            let on = !conn.policy.deny.is_empty() || conn.policy.max_message_size > 0;
            if on && refused(c, msg, &conn, &mut Reply::default()) {
                // A request the policy refuses (the stream engine answers or drops
                // it): nothing planned, nothing opened.
                self.refused = true;
                return true;
            }
        }
        let mut plan = Plan::default();
        c.plan_in(msg, &self.conn, &mut plan);
        let grants = self.grants(c, &plan);
        if c.stateful() {
            return true;
        }
        if plan.is_empty() {
            // (Edits without asks: an address written over with the session's own.)
            return c.edits_in(msg, &self.conn, &plan, &[], edits).is_ok();
        }
        let ok = c
            .edits_in(msg, &self.conn, &plan, &grants[..plan.len()], edits)
            .is_ok();
        if !ok {
            self.count(ContractEvent::NoRoom);
        }
        ok
    }
}

/// A message of a NAT64 session (`nat64`) is read and its asks granted (as TFTP's),
/// but only its address-free edits are made (a port, an identifier: RTSP's client
/// ports): an edit that writes an IPv4 address is not, as the IPv6 host neither writes
/// one (its own address is IPv6) nor can use one (the peer's would need the NAT64
/// prefix). Removes those from `edits`; whether there were any (counted
/// `nat64_untouched` on the worker).
fn nat64_untouched(nat64: bool, edits: &mut Edits) -> bool {
    nat64 && edits.retain_address_free() > 0
}

/// The one place an ask for a 16-bit identifier ([`Kind::Id`]: PPTP's call IDs, and
/// any [`Ask::Bind`]) is answered, on the worker: PPTP's from the worker's call table
/// ([`Nat::pptp_grant`], `nat/calls.rs`; `master` is the control session); any other
/// ALG's refused, counted `id_unsupported` (the message is left as written). A grant
/// it gives is recorded in the tag as a port's is (inside, outside), and found again
/// by the stream engine the same way: this function is the whole seam.
pub fn grant_id(
    nat: &mut Nat,
    counters: &WorkerCounters,
    alg: u8,
    master: u32,
    ctx: &Ctx,
    ask: &Ask,
    now: u32,
) -> Grant {
    if alg == crate::nat::ALG_PPTP {
        return nat.pptp_grant(ask, ctx, master, now);
    }
    counters
        .contract_event(alg, ContractEvent::IdUnsupported)
        .inc();
    Grant::Refused
}

/// A frame of a session of contract ALG `c` (the session `s`, record `master`), from
/// the subscriber or to it (`dir`), on the worker that owns it. Grants what its whole
/// messages ask; makes their edits inline when they keep the length. Returns the tag
/// when the frame must go to the stream engine (an edit changes the length, or a
/// message is cut across segments, or the ALG is [`Contract::stateful`]), None when
/// it goes out as it is now, with how much its edits made inline changed its length (a
/// datagram's edits are all made inline: it has no sequence numbers to adjust, and
/// goes to the stream engine only when its policy refuses it, or when it is `whole`: a
/// datagram reassembled from fragments, which the stream engine cuts again into as
/// many buffers as its edits need). The ALG is told its keys of `[alg.<name>]` as
/// the NAT's parameters have them ([`crate::nat::NatParams::contract_policy`]).
#[allow(clippy::too_many_arguments)]
pub fn worker<B: PacketBuf>(
    c: &dyn Contract,
    nat: &mut Nat,
    counters: &WorkerCounters,
    streams: &mut Streams,
    buf: &mut B,
    (master, s): (u32, &Session),
    dir: Dir,
    now: u32,
    whole: bool,
) -> (Option<Tag>, isize) {
    let mut sources = std::mem::take(&mut streams.sources);
    let r = worker_frame(
        c,
        (nat, counters, streams, &mut sources),
        buf,
        master,
        s,
        dir,
        now,
        whole,
    );
    streams.sources = sources;
    r
}

/// [`worker`], with the media sources apart from the rest of `streams`.
#[allow(clippy::too_many_arguments)]
fn worker_frame<B: PacketBuf>(
    c: &dyn Contract,
    (nat, counters, streams, sources): (&mut Nat, &WorkerCounters, &mut Streams, &mut Sources),
    buf: &mut B,
    master: u32,
    s: &Session,
    dir: Dir,
    now: u32,
    whole: bool,
) -> (Option<Tag>, isize) {
    let Some((start, end, datagram, _)) = payload(buf.data()) else {
        return (None, 0);
    };
    let ctx = Ctx {
        dir,
        inside: (s.in_addr, s.in_port),
        outside: (s.out_addr, s.out_port),
        remote: (s.rem_addr, s.rem_port),
        datagram,
    };
    let nat64 = crate::nat::hosts6::is_host(s.in_addr);
    let inside_server = nat.params().alg_ports(s.alg()).contains(&s.in_port);
    let conn = Conn {
        ctx,
        nat64,
        inside_server,
        state: 0,
        policy: nat.params().contract_policy(s.alg()),
    };
    let mut f = Frame {
        nat,
        counters,
        alg: s.alg(),
        master,
        s,
        ctx,
        now,
        tag: Tag {
            dir: u8::from(dir == Dir::FromOutside),
            inside: ctx.inside,
            remote: ctx.remote,
            outside: ctx.outside,
            alg: s.alg(),
            nat64,
            inside_server,
            ..Tag::default()
        },
        refused: false,
        conn,
        sources,
    };
    let payload = &buf.data()[start..end];
    let len = payload.len();
    if !datagram || whole {
        // A stream the stream engine reads: a stateful ALG's (in order, with its
        // state), one under a request policy (it answers in the server's name after
        // what the server has sent), one whose sequence numbers it adjusts or whose
        // message start it holds; or a datagram reassembled from
        // fragments (the engine gathers them and reads the whole). Handed over
        // unread: the engine plans and grants each message itself (`EngineGrants`),
        // so each is read once, there.
        let params = f.nat.params();
        let policed = !f.tag.nat64
            && (!params.deny_methods(f.alg).is_empty() || params.max_message_size(f.alg) > 0);
        if whole || policed || c.stateful() || streams.adjusted(master) {
            f.tag.worker_read = 0;
            return (Some(f.tag), 0);
        }
    }
    // Where the worker stopped reading, if it did before the end: the stream engine
    // reads on from there (a TCP stream's first length-changing rewrite, a message
    // cut across segments, more edits than the worker makes at once).
    let mut stop = None;
    // Edits to make inline: (offset in the payload, edit).
    let mut inline = [None::<(usize, Edit)>; MAX_INLINE];
    let mut n_inline = 0;
    // Messages those edits are of.
    let mut inline_msgs = 0u64;
    let mut at = 0;
    while at < len {
        if n_inline + MAX_EDITS > MAX_INLINE {
            // (No room for another message's edits: read on by the engine.)
            stop = Some(at);
            break;
        }
        let rest = &payload[at..];
        match c.framing_in(rest, &conn) {
            Framing::Whole(n) if n > 0 && n <= rest.len() => {
                let mut e = Edits::default();
                let ok = f.message(&rest[..n], c, &mut e);
                if ok && !e.is_empty() {
                    count_notes(counters, f.alg, c, &e.notes);
                    for x in e.iter() {
                        inline[n_inline] = Some((at, *x));
                        n_inline += 1;
                    }
                    inline_msgs += 1;
                }
                at += n;
                if !datagram && !e.keep_length() {
                    // A length-changing rewrite: made here, and the stream engine
                    // adjusts the stream's sequence numbers from it on (and reads
                    // the rest of it).
                    stop = Some(at);
                    break;
                }
            }
            Framing::Skip(n) => {
                f.skipped(c, &rest[..n.min(rest.len())]);
                at += n.max(1);
            }
            Framing::More if !datagram && rest.len() <= c.hold() => {
                // A message cut across segments: the stream engine holds its start,
                // and reads it whole with the rest (and the stream from here on).
                stop = Some(at);
                break;
            }
            Framing::More | Framing::Whole(_) => {
                // Longer than what is held for its end: passed as it is.
                f.count(ContractEvent::Skipped);
                break;
            }
        }
    }
    if datagram && f.refused {
        // Refused: answered or dropped by the stream engine (which reads it if its
        // policy lets it through after all).
        f.tag.worker_read = 0;
        return (Some(f.tag), 0);
    }
    let mut made = 0;
    // How the edits made so far moved the bytes after them.
    let mut grew = 0isize;
    for (off, e) in inline[..n_inline].iter().flatten() {
        let at = (off + e.at).wrapping_add_signed(grew);
        match crate::mangle::mangle(buf, 14, at, e.len, e.bytes()) {
            Ok(d) => {
                made += 1;
                grew += d;
            }
            Err(_) => f.count(ContractEvent::NoRoom),
        }
    }
    if made > 0 {
        f.counters
            .contract_event(f.alg, ContractEvent::Rewritten)
            .add(inline_msgs);
        if stop.is_none() {
            f.counters
                .contract_event(f.alg, ContractEvent::RewrittenInline)
                .add(inline_msgs);
        }
    }
    let Some(stop) = stop else {
        return (None, grew);
    };
    if !streams.adjust(master, f.nat) {
        f.count(ContractEvent::NoRoom);
    }
    // (What the worker read, as the engine sees the payload: rewritten.)
    f.tag.worker_read = u16::try_from(stop.wrapping_add_signed(grew)).unwrap_or(Tag::READ_ALL);
    f.tag.grew = i16::try_from(grew).unwrap_or(0);
    (Some(f.tag), grew)
}

/// The grants of `plan` as the worker recorded them in the tag's rewrites (a grant
/// the worker refused has none: refused here too).
fn grants_from_tag(plan: &Plan, ctx: &Ctx, tag: &Tag) -> [Grant; MAX_ASKS] {
    let rw = &tag.rewrites[..usize::from(tag.n)];
    let by_inside = |e: (u32, u16)| rw.iter().find(|r| r.inside == e);
    let by_outside = |e: (u32, u16)| rw.iter().find(|r| r.outside == e);
    let mut g = [Grant::Refused; MAX_ASKS];
    for (k, a) in plan.asks().enumerate() {
        g[k] = match *a {
            Ask::Announce { inside, .. }
            | Ask::Bind { inside, .. }
            | Ask::Contact { inside, .. }
            | Ask::Pair { inside, .. } => {
                by_inside(inside).map_or(Grant::Refused, |r| Grant::To(r.outside))
            }
            Ask::Announce6 { port, .. } => {
                by_inside((ctx.inside.0, port)).map_or(Grant::Refused, |r| Grant::To(r.outside))
            }
            Ask::Lookup { outside, .. } => match ctx.dir {
                Dir::FromOutside => {
                    let at = named(ctx, outside);
                    by_outside(at).map_or(Grant::Refused, |r| Grant::To(r.inside))
                }
                Dir::FromInside => {
                    let at = named(ctx, outside);
                    by_inside(at).map_or(Grant::Refused, |r| Grant::To(r.outside))
                }
            },
            Ask::End {
                endpoint,
                translated,
                ..
            } => {
                if translated {
                    by_outside(endpoint).map_or(Grant::Refused, |r| Grant::To(r.inside))
                } else {
                    by_inside(endpoint).map_or(Grant::Refused, |r| Grant::To(r.outside))
                }
            }
            // (Nothing an edit is made with.)
            Ask::EndGroup { .. } | Ask::Regroup { .. } | Ask::Narrow { .. } => Grant::To((0, 0)),
        };
    }
    g
}

/// The session as the tag describes it, for a text that is a datagram or not.
fn ctx_of(tag: &Tag, datagram: bool) -> Ctx {
    Ctx {
        dir: dir_of(tag.dir),
        inside: tag.inside,
        outside: tag.outside,
        remote: tag.remote,
        datagram,
    }
}

/// Edits of a text the stream engine keeps at most ([`ControlText`]): two messages'
/// worth of the contract's, and room for the refused messages taken out.
pub const MAX_TEXT_EDITS: usize = 2 * MAX_EDITS + MAX_CUTS;

/// Messages of a text refused at most ([`Cuts`]); past them the text is dropped.
pub const MAX_CUTS: usize = 32;

/// Bytes of the replacements of a text's edits ([`ControlText`]).
pub const TEXT_EDIT_BYTES: usize = 2 * MAX_EDITS * cgnat_alg::contract::MAX_EDIT;

/// The messages of a text a policy refuses: their ranges (offset, length), the
/// replies written for them in the server's name, one after the other, and whether
/// one follows a message let through in the same text (pipelined: no reply can be
/// put in order). Fixed room: `over` says some refused message or its reply did not
/// fit (the text must then not pass: its refused messages would go with it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cuts {
    /// The refused messages (offset, length), in order.
    pub ranges: cgnat_alg::text::List<(usize, usize), MAX_CUTS>,
    /// Their replies.
    pub replies: Reply,
    /// A refused message follows one let through (pipelined).
    pub pipelined: bool,
    /// A refused message or its reply did not fit.
    pub over: bool,
    /// Where a message's reply is written while the policy is asked ([`Cuts::ask`]):
    /// made once, as a reply's room is 4 KiB, not to be cleared for each message.
    reply: Reply,
}

impl Cuts {
    /// Forgets everything (the room stays).
    pub fn clear(&mut self) {
        self.ranges.clear();
        self.replies.clear();
        self.pipelined = false;
        self.over = false;
    }

    /// Asks `c`'s policy about message `msg` at `at` of the text (`passed`: one
    /// before it was let through) and, when it refuses it, notes it with its reply
    /// (`with_reply`: the reply is sent; else nothing is); whether it did.
    fn ask(
        &mut self,
        c: &dyn Contract,
        conn: &Conn<'_>,
        (at, msg): (usize, &[u8]),
        passed: bool,
        with_reply: bool,
    ) -> bool {
        self.reply.clear();
        if !refused(c, msg, conn, &mut self.reply) {
            return false;
        }
        let reply = if with_reply { self.reply.bytes() } else { &[] };
        if !self.ranges.push((at, msg.len())) || !self.replies.push(reply) {
            self.over = true;
        }
        self.pipelined |= passed;
        true
    }

    /// True when nothing was refused.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty() && !self.over
    }
}

/// One edit of a text: its offset and the bytes it replaces; its replacement is in
/// the [`ControlText`]'s room ([`ControlText::with`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TextEdit {
    /// Offset of the first byte replaced.
    pub at: usize,
    /// Bytes replaced (0: an insertion).
    pub len: usize,
    from: u32,
    to: u32,
}

/// What the stream engine makes of a frame's or a held run's text for a contract ALG,
/// in room sized once (the stream engine keeps one and hands it to
/// [`control_edits`] for each text: nothing is allocated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlText {
    /// The edits of its messages, in increasing offsets (and any the caller adds).
    pub edits: cgnat_alg::text::List<TextEdit, MAX_TEXT_EDITS>,
    bytes: [u8; TEXT_EDIT_BYTES],
    n: usize,
    /// The messages the ALG's policy refused ([`Contract::refuse`]): taken out of the
    /// stream, their replies sent back.
    pub refused: Cuts,
}

impl Default for ControlText {
    fn default() -> Self {
        ControlText {
            edits: Default::default(),
            bytes: [0; TEXT_EDIT_BYTES],
            n: 0,
            refused: Cuts::default(),
        }
    }
}

impl ControlText {
    /// Forgets every edit and refusal (the room stays).
    pub fn clear(&mut self) {
        self.edits.clear();
        self.n = 0;
        self.refused.clear();
    }

    /// The replacement of edit `e`.
    pub fn with(&self, e: &TextEdit) -> &[u8] {
        &self.bytes[e.from as usize..e.to as usize]
    }

    /// Adds an edit replacing `len` bytes at `at` with `with`; false (nothing added)
    /// without room.
    pub fn push(&mut self, at: usize, len: usize, with: &[u8]) -> bool {
        let from = self.n;
        let Some(to) = self.bytes.get_mut(from..from + with.len()) else {
            return false;
        };
        if self.edits.len() == MAX_TEXT_EDITS {
            return false;
        }
        to.copy_from_slice(with);
        self.edits.push(TextEdit {
            at,
            len,
            from: from as u32,
            to: (from + with.len()) as u32,
        });
        self.n += with.len();
        true
    }

    /// Adds the edits of a message at `at` of the text, all or none (false: no room;
    /// [`MAX_CUTS`] are kept for the refused messages).
    fn push_message(&mut self, at: usize, e: &Edits) -> bool {
        let (edits, n) = (self.edits.len(), self.n);
        if edits + e.len() > MAX_TEXT_EDITS - MAX_CUTS {
            return false;
        }
        if e.iter().all(|x| self.push(at + x.at, x.len, x.bytes())) {
            return true;
        }
        self.edits.truncate(edits);
        self.n = n;
        false
    }

    /// Drops the edits that start inside one of `cuts` (offset, length).
    pub fn retain_outside(&mut self, cuts: &[(usize, usize)]) {
        let mut kept = 0;
        for k in 0..self.edits.len() {
            let e = self.edits[k];
            if !cuts.iter().any(|&(a, n)| (a..a + n).contains(&e.at)) {
                self.edits[kept] = e;
                kept += 1;
            }
        }
        self.edits.truncate(kept);
    }

    /// Puts the edits in increasing offsets, those at the same offset in the order
    /// they came (an insertion sort: a text has few).
    pub fn sort(&mut self) {
        let e = &mut self.edits[..];
        for i in 1..e.len() {
            let mut j = i;
            while j > 0 && e[j - 1].at > e[j].at {
                e.swap(j - 1, j);
                j -= 1;
            }
        }
    }

    /// The edits as [`cgnat_alg::text::apply_into`] takes them.
    pub fn edits(&self) -> impl Iterator<Item = (usize, usize, &[u8])> + '_ {
        self.edits.iter().map(|e| (e.at, e.len, self.with(e)))
    }
}

/// A message without its line end is not empty.
fn has_text(msg: &[u8]) -> bool {
    msg.iter().any(|&b| b != b'\r' && b != b'\n')
}

/// Where the stream engine starts reading a text whose first segment is tagged
/// `first`: after what the worker read and rewrote ([`Tag::worker_read`]).
pub fn worker_read(first: &Tag) -> usize {
    match first.worker_read {
        Tag::READ_ALL => usize::MAX,
        n => usize::from(n),
    }
}

/// In the stream engine: what a frame's or a held run's text for contract ALG `c`
/// becomes, written into `out` (cleared first): its edits, and the messages the
/// ALG's `policy` refuses (TCP, a stateful ALG's only; `refused`: the ranges of the
/// messages a request policy refused already, read no further). The text is read
/// from `from` on (what the worker read before it, it rewrote: [`worker_read`]); its
/// messages are planned here and granted by `engine` (the worker's NAT:
/// [`EngineGrants`]), so that each message is read once (without an engine, as in
/// tests of the engine alone, the grants are looked for in `tag`'s rewrites). The
/// connection's `state` (a [`Contract::stateful`] ALG's) is advanced message by
/// message; once it says [`STAND_ASIDE`], the rest is not read. Counts the messages
/// rewritten and the ALG's own events; a message whose edits do not fit `out`'s
/// room is left as it is (counted `no_room`).
#[allow(clippy::too_many_arguments)]
pub fn control_edits(
    c: &dyn Contract,
    text: &[u8],
    datagram: bool,
    (tag, from): (&Tag, usize),
    counters: &WorkerCounters,
    state: &mut State,
    policy: Policy<'_>,
    out: &mut ControlText,
    mut engine: Option<&mut EngineGrants<'_>>,
    (refused, framed): (&[(usize, usize)], Option<&Framed>),
) {
    out.clear();
    let ctx = ctx_of(tag, datagram);
    let policy = match engine.as_deref() {
        Some(g) => g.policy(tag.alg, policy),
        None => policy,
    };
    if let Some(g) = engine.as_deref_mut() {
        g.start_text();
    }
    let mut passed = false;
    let mut at = from.min(text.len());
    // (Counted here: the worker did not read these messages.)
    let here = engine.is_some();
    let mut k = 0;
    while at < text.len() && *state & STAND_ASIDE == 0 {
        let conn = Conn {
            ctx,
            nat64: tag.nat64,
            inside_server: tag.inside_server,
            state: *state,
            policy,
        };
        let rest = &text[at..];
        match next_piece(c, rest, &conn, framed, &mut k) {
            Framing::Whole(n) if n > 0 && n <= rest.len() => {
                let msg = &rest[..n];
                if refused.iter().any(|&(a, len)| at >= a && at < a + len) {
                    at += n;
                    continue;
                }
                // A stateful ALG's requests are policed here, in order with its
                // state (FTP: a refused AUTH must not advance it).
                if !datagram && c.stateful() && out.refused.ask(c, &conn, (at, msg), passed, true) {
                    at += n;
                    continue;
                }
                passed |= has_text(msg);
                let mut plan = Plan::default();
                c.plan_in(msg, &conn, &mut plan);
                let grants = match engine.as_deref_mut() {
                    Some(g) => g.grants(c, &conn, &plan, tag),
                    None => grants_from_tag(&plan, &ctx, tag),
                };
                let mut e = Edits::default();
                let made = c.edits_in(msg, &conn, &plan, &grants[..plan.len()], &mut e);
                if !c.nat64_edits() && nat64_untouched(tag.nat64, &mut e) && here {
                    counters
                        .contract_event(tag.alg, ContractEvent::Nat64Untouched)
                        .inc();
                }
                count_notes(counters, tag.alg, c, &e.notes);
                if made.is_err() || !out.push_message(at, &e) {
                    counters
                        .contract_event(tag.alg, ContractEvent::NoRoom)
                        .inc();
                } else if !e.is_empty() {
                    counters
                        .contract_event(tag.alg, ContractEvent::Rewritten)
                        .inc();
                }
                let mut notes = Notes::default();
                *state = c.advance(msg, &conn, &mut notes);
                count_notes(counters, tag.alg, c, &notes);
                at += n;
            }
            Framing::Skip(n) => {
                if here {
                    count_skipped(counters, tag.alg, c, &rest[..n.min(rest.len())], &ctx);
                }
                at += n.max(1);
            }
            Framing::More | Framing::Whole(_) => break,
        }
    }
}

/// In the stream engine: the requests of a subscriber's text (a frame's payload or a
/// held run's) that contract ALG `c` refuses under `policy` (its `deny` methods, its
/// `max_message_size`, [`Contract::refuse`]), written into `out` (cleared first);
/// false when none is. Bytes the framing skips may be refused too (a datagram too
/// large to read).
pub fn refused_requests(
    c: &dyn Contract,
    text: &[u8],
    datagram: bool,
    tag: &Tag,
    policy: Policy<'_>,
    (out, framed): (&mut Cuts, Option<&Framed>),
) -> bool {
    out.clear();
    let ctx = ctx_of(tag, datagram);
    let conn = Conn {
        nat64: tag.nat64,
        inside_server: tag.inside_server,
        policy,
        ..Conn::of(ctx)
    };
    let mut passed = false;
    let mut k = 0;
    let mut at = 0;
    while at < text.len() {
        let rest = &text[at..];
        match next_piece(c, rest, &conn, framed, &mut k) {
            Framing::Whole(n) if n > 0 && n <= rest.len() => {
                passed |= !out.ask(c, &conn, (at, &rest[..n]), passed, true);
                at += n;
            }
            Framing::Skip(n) => {
                // (Bytes that are no message: refused with no reply.)
                let n = n.clamp(1, rest.len());
                passed |= !out.ask(c, &conn, (at, &rest[..n]), passed, false);
                at += n;
            }
            Framing::More | Framing::Whole(_) => break,
        }
    }
    !out.is_empty()
}

/// A text the stream engine frames ([`incomplete`]): its connection, direction, the
/// sequence number it starts at and its length.
pub type TextId = ((u32, u16, u32, u16), u8, u32, usize);

/// Messages (and skipped pieces) of a text remembered from its framing at most.
pub const MAX_FRAMED: usize = 64;

/// How the stream engine framed a text to decide whether to hold it
/// ([`incomplete`]): the pieces, in order from where it started reading, so that
/// reading it ([`control_edits`], [`refused_requests`]) frames it no more: each text
/// is framed once.
#[derive(Clone, Copy, Debug)]
pub struct Framed {
    of: Option<TextId>,
    from: usize,
    n: usize,
    pieces: [Framing; MAX_FRAMED],
}

impl Default for Framed {
    fn default() -> Self {
        Framed {
            of: None,
            from: 0,
            n: 0,
            pieces: [Framing::More; MAX_FRAMED],
        }
    }
}

impl Framed {
    /// The framing of text `id` read from `from`, if it is the one remembered.
    pub fn of(&self, id: TextId, from: usize) -> Option<&Framed> {
        (self.of == Some(id) && self.from == from).then_some(self)
    }

    /// The `k`th piece (past the last: the text ends inside a message, or what is
    /// left is not read).
    fn piece(&self, k: usize) -> Framing {
        if k < self.n {
            self.pieces[k]
        } else {
            Framing::More
        }
    }
}

/// The next piece of `rest`: the `k`th of a text framed before (`framed`), else
/// framed now.
fn next_piece(
    c: &dyn Contract,
    rest: &[u8],
    conn: &Conn<'_>,
    framed: Option<&Framed>,
    k: &mut usize,
) -> Framing {
    match framed {
        Some(f) => {
            *k += 1;
            f.piece(*k - 1)
        }
        None => c.framing_in(rest, conn),
    }
}

/// In the stream engine: whether a segment's payload (or a held run's text), read
/// from `from` (after what the worker read), ends in the start of a message the
/// stream engine holds until the rest comes ([`Contract::hold`] bytes at most). Its
/// pieces are remembered in `framed` as text `id` (when they all fit and the reading
/// would see the same ones).
pub fn incomplete(
    c: &dyn Contract,
    (text, from): (&[u8], usize),
    tag: &Tag,
    policy: Policy<'_>,
    (framed, id): (&mut Framed, TextId),
) -> bool {
    let conn = Conn {
        nat64: tag.nat64,
        inside_server: tag.inside_server,
        policy,
        ..Conn::of(ctx_of(tag, false))
    };
    framed.from = from;
    framed.n = 0;
    let mut keep = true;
    let mut at = from;
    // Whether the text ends inside a message to hold; None when the reading would
    // not see the same pieces (framing that gives nothing).
    let held = loop {
        let Some(rest) = text.get(at..).filter(|r| !r.is_empty()) else {
            break Some(false);
        };
        let (piece, n) = match c.framing_in(rest, &conn) {
            f @ Framing::Whole(n) if n > 0 && n <= rest.len() => (f, n),
            f @ Framing::Skip(n) if n > 0 => (f, n),
            Framing::More => break Some(rest.len() <= c.hold()),
            // (A message longer than what is left: the reading stops there too.)
            Framing::Whole(n) if n > 0 => break Some(false),
            _ => break None,
        };
        if framed.n < MAX_FRAMED {
            framed.pieces[framed.n] = piece;
            framed.n += 1;
        } else {
            keep = false;
        }
        at = at.saturating_add(n);
    };
    framed.of = (keep && held.is_some()).then_some(id);
    held.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use crate::nat::NatParams;
    use cgnat_alg::irc::Irc;
    use std::sync::Arc;

    /// A NAT with NAT64 on and a TCP session of IPv6 host [`HOST6`] to 192.0.2.10
    /// port `dport`: the counters, the NAT, the session's record and the session.
    fn nat64_session(dport: u16) -> (Arc<WorkerCounters>, Nat, u32, Session) {
        let text = "[dataplane]\ncontrol_lcore = 0\nworker_lcores = [1]\n\
            [[ports]]\nname = \"inside\"\nrole = \"inside\"\ndevice = \"net_null0\"\n\
            ipv4 = \"100.64.0.1/10\"\nipv6 = [\"2001:db8:ffff::1/64\"]\n\
            [[ports]]\nname = \"outside\"\nrole = \"outside\"\ndevice = \"net_null1\"\n\
            ipv4 = \"203.0.113.1/24\"\n[nat]\npool = [\"198.51.100.0/30\"]\n[nat64]\n";
        let cfg = cgnat_config::Config::parse(text, "t.toml").unwrap();
        let mut params = NatParams::from_config(&cfg.nat, 1).unwrap();
        params.set_nat64(cfg.nat64.as_ref());
        let counters = Arc::new(WorkerCounters::default());
        let mut nat = Nat::new(params, 0, 1, 1000, 7, counters.clone());
        let t = crate::nat::Tuple {
            proto: ipv4::PROTO_TCP,
            src: 0,
            dst: u32::from_be_bytes([192, 0, 2, 10]),
            sport: 40000,
            dport,
        };
        let i = nat
            .in2out6(HOST6, &t, crate::wire::tcp::SYN, true, 1000)
            .unwrap();
        let s = *nat.session(i);
        (counters, nat, i, s)
    }

    /// The IPv6 host of [`nat64_session`].
    const HOST6: u128 = 0x2001_0db8_ffff_0000_0000_0000_0000_0010;

    /// A contract ALG with edits on a NAT64 session (IRC's DCC RESUME from the peer,
    /// naming the session's own translated port, which a lookup grants): the message
    /// is read and granted, but left as written, counted `nat64_untouched`; on the
    /// stream engine too.
    #[test]
    fn a_nat64_sessions_messages_are_granted_but_not_rewritten() {
        let server = [192, 0, 2, 10];
        let (counters, mut nat, i, s) = nat64_session(6667);
        assert!(crate::nat::hosts6::is_host(s.in_addr));
        let msg = format!(
            ":bob!b@h PRIVMSG alice :\x01DCC RESUME f {} 4096\x01\r\n",
            s.out_port
        );
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(server, s.out_addr.to_be_bytes(), 64)
            .tcp(6667, s.out_port, 1, 64000)
            .ack(1)
            .write(&mut frame, msg.as_bytes())
            .unwrap();
        let mut buf = VecBuf::new(&frame);
        let mut streams = Streams::default();
        let c: &dyn Contract = &Irc;
        let tag = worker(
            c,
            &mut nat,
            &counters,
            &mut streams,
            &mut buf,
            (i, &s),
            Dir::FromOutside,
            1000,
            false,
        );
        assert_eq!((tag, buf.data()), ((None, 0), &frame[..]));
        let ev = |e| counters.contract_event(s.alg(), e).get();
        assert_eq!(
            [
                ContractEvent::Lookups,
                ContractEvent::Nat64Untouched,
                ContractEvent::Rewritten
            ]
            .map(ev),
            [1, 1, 0]
        );
        // The stream engine makes none either, whatever the tag's rewrites.
        let mut tag = Tag {
            dir: 1,
            inside: (s.in_addr, s.in_port),
            outside: (s.out_addr, s.out_port),
            remote: (s.rem_addr, s.rem_port),
            n: 1,
            nat64: true,
            ..Tag::default()
        };
        tag.rewrites[0] = Rewrite {
            inside: (s.in_addr, s.in_port),
            outside: (s.out_addr, s.out_port),
        };
        let control = WorkerCounters::default();
        let edits = |tag: &Tag| {
            let mut out = ControlText::default();
            control_edits(
                c,
                msg.as_bytes(),
                false,
                (tag, worker_read(tag)),
                &control,
                &mut 0,
                Policy::default(),
                &mut out,
                None,
                (&[], None),
            );
            out.edits
        };
        assert!(edits(&tag).is_empty());
        tag.nat64 = false;
        assert_eq!(edits(&tag).len(), 1);
    }

    const SERVER: [u8; 4] = [192, 0, 2, 10];

    /// The RTSP text `msg` as it leaves after the worker (and the stream engine, if
    /// the worker sends it there) on session `s` going `dir`.
    fn through_rtsp(
        nat: &mut Nat,
        counters: &WorkerCounters,
        i: u32,
        s: &Session,
        dir: Dir,
        msg: &str,
    ) -> String {
        let (src, dst, sport, dport) = match dir {
            Dir::FromInside => (s.out_addr.to_be_bytes(), SERVER, s.out_port, 554),
            Dir::FromOutside => (SERVER, s.out_addr.to_be_bytes(), 554, s.out_port),
        };
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(src, dst, 64)
            .tcp(sport, dport, 1, 64000)
            .ack(1)
            .write(&mut frame, msg.as_bytes())
            .unwrap();
        let mut buf = VecBuf::new(&frame);
        let mut streams = Streams::default();
        let c: &dyn Contract = &cgnat_alg::rtsp::Rtsp;
        let policy = Policy::default();
        match worker(
            c,
            nat,
            counters,
            &mut streams,
            &mut buf,
            (i, s),
            dir,
            1000,
            false,
        )
        .0
        {
            Some(tag) => {
                // (The frame as the worker left it: what it read, it rewrote.)
                let (a, b) = crate::alg_tag::tcp_payload(buf.data()).unwrap();
                let m = &buf.data()[a..b];
                let mut e = ControlText::default();
                let read = worker_read(&tag);
                control_edits(
                    c,
                    m,
                    false,
                    (&tag, read),
                    counters,
                    &mut 0,
                    policy,
                    &mut e,
                    None,
                    (&[], None),
                );
                let mut out = vec![0; m.len() + 1024];
                let n = cgnat_alg::text::apply_into(m, e.edits(), &mut out).unwrap();
                String::from_utf8(out[..n].to_vec()).unwrap()
            }
            None => {
                let (a, b) = crate::alg_tag::tcp_payload(buf.data()).unwrap();
                String::from_utf8(buf.data()[a..b].to_vec()).unwrap()
            }
        }
    }

    /// RTSP on a NAT64 session: its port edits write no address and are made (the
    /// host's client ports become the pair's and come back), but a `destination`
    /// naming the pool address is left as written (counted `nat64_untouched`).
    #[test]
    fn a_nat64_sessions_address_free_edits_are_made_and_its_address_edits_are_not() {
        let (counters, mut nat, i, s) = nat64_session(554);
        let setup = "SETUP rtsp://s/t RTSP/1.0\r\nCSeq: 4\r\n\
            Transport: RTP/AVP;unicast;client_port=50220-50221\r\n\r\n";
        let out = through_rtsp(&mut nat, &counters, i, &s, Dir::FromInside, setup);
        let ports = out
            .split("client_port=")
            .nth(1)
            .and_then(|t| t.split("\r\n").next())
            .unwrap()
            .to_string();
        assert_ne!(ports, "50220-50221", "{out}");
        let ev = |e| counters.contract_event(s.alg(), e).get();
        assert_eq!(ev(ContractEvent::Nat64Untouched), 0);
        let pool = std::net::Ipv4Addr::from(s.out_addr);
        let reply = format!(
            "RTSP/1.0 200 OK\r\nCSeq: 4\r\n\
             Transport: RTP/AVP;unicast;destination={pool};client_port={ports}\r\n\r\n"
        );
        let back = through_rtsp(&mut nat, &counters, i, &s, Dir::FromOutside, &reply);
        assert_eq!(
            back,
            reply.replace(&ports, "50220-50221"),
            "the ports back, the pool address left"
        );
        assert_eq!(ev(ContractEvent::Nat64Untouched), 1);
    }

    /// The worker's frame of session `s` (record `i`) from the subscriber, at 1000.
    fn frame<'a>(
        nat: &'a mut Nat,
        counters: &'a WorkerCounters,
        i: u32,
        s: &'a Session,
    ) -> Frame<'a> {
        let ctx = Ctx {
            dir: Dir::FromInside,
            inside: (s.in_addr, s.in_port),
            outside: (s.out_addr, s.out_port),
            remote: (s.rem_addr, s.rem_port),
            datagram: false,
        };
        Frame {
            nat,
            counters,
            alg: s.alg(),
            master: i,
            s,
            ctx,
            now: 1000,
            tag: Tag::default(),
            refused: false,
            conn: Conn::of(ctx),
            sources: Box::leak(Box::default()),
        }
    }

    /// A NAT64 host announcing an IPv6 endpoint (an EPRT |2|): granted as an announce
    /// of its handle's endpoint when the address is the host's own, refused when it is
    /// another's; the stream engine finds the grant again by the handle and port.
    #[test]
    fn an_ipv6_announce_is_granted_for_the_hosts_own_address_only() {
        let (counters, mut nat, i, s) = nat64_session(21);
        let host = HOST6;
        let mut f = frame(&mut nat, &counters, i, &s);
        let ctx = f.ctx;
        let ask = |addr| Ask::Announce6 {
            kind: Kind::Tcp,
            addr,
            port: 50000,
            class: cgnat_alg::class::FTP_DATA,
            from: None,
        };
        assert_eq!(f.grant(&ask(host + 1), 0), Grant::Refused);
        let Grant::To(out) = f.grant(&ask(host), 0) else {
            panic!("the host's own address is granted");
        };
        assert_eq!(out.0, s.out_addr);
        let ev = |e| counters.contract_event(s.alg(), e).get();
        assert_eq!(
            [ContractEvent::Pinholes, ContractEvent::Refused].map(ev),
            [1, 1]
        );
        let mut plan = Plan::default();
        plan.push(ask(host));
        let g = grants_from_tag(&plan, &ctx, &f.tag);
        assert_eq!(g[0], Grant::To(out));
    }

    /// An announce is reserved once per frame, and not at all when the tag has no
    /// room left to tell the stream engine its translation (nothing is opened that
    /// the message would not name).
    #[test]
    fn an_announce_the_tag_cannot_record_opens_nothing() {
        let (counters, mut nat, i, s) = nat64_session(21);
        let mut f = frame(&mut nat, &counters, i, &s);
        let ask = |port| Ask::Announce {
            kind: Kind::Tcp,
            inside: (s.in_addr, port),
            class: cgnat_alg::class::FTP_DATA,
            from: None,
        };
        let first = f.grant(&ask(5000), 0);
        assert!(matches!(first, Grant::To(_)));
        assert_eq!(f.grant(&ask(5000), 0), first, "the same reservation again");
        for k in 1..MAX_REWRITES as u16 {
            assert!(matches!(f.grant(&ask(5000 + k), 0), Grant::To(_)));
        }
        assert_eq!(f.grant(&ask(6000), 0), Grant::Refused);
        assert_eq!(
            counters.expectations_created.get(),
            MAX_REWRITES as u64,
            "none for what the tag cannot carry"
        );
        assert_eq!(
            counters
                .contract_event(s.alg(), ContractEvent::NoRoom)
                .get(),
            1
        );
    }

    /// A pair (SIP's media) takes two of the tag's rewrites: with one left it opens
    /// nothing; a datagram's grants need no room (its edits are the worker's); a
    /// narrow's source is the one a later pair of its group of any source takes.
    #[test]
    fn a_pair_needs_two_rewrites_a_datagram_none_and_takes_its_groups_source() {
        let (counters, mut nat, i, s) = nat64_session(5060);
        let mut f = frame(&mut nat, &counters, i, &s);
        let pair = |port| Ask::Pair {
            inside: (s.in_addr, port),
            rtcp: port + 1,
            class: cgnat_alg::class::SIP_MEDIA,
            from: Some(0),
        };
        let contact = Ask::Contact {
            kind: Kind::Tcp,
            inside: (s.in_addr, 5062),
            class: cgnat_alg::class::SIP_DIALOG,
            secs: 0,
        };
        assert!(matches!(f.grant(&contact, 7), Grant::To(_)));
        for k in 0..(MAX_REWRITES as u16 - 1) / 2 {
            assert!(matches!(f.grant(&pair(30000 + 2 * k), 7), Grant::To(_)));
        }
        assert_eq!(usize::from(f.tag.n), MAX_REWRITES - 1);
        assert_eq!(f.grant(&pair(31000), 7), Grant::Refused);
        assert_eq!(
            counters
                .contract_event(s.alg(), ContractEvent::NoRoom)
                .get(),
            1
        );
        f.ctx.datagram = true;
        let source = 0xC000_021E;
        let narrow = Ask::Narrow { group: 7, source };
        assert_eq!(f.grant(&narrow, 7), Grant::To((0, 0)));
        assert!(matches!(f.grant(&pair(31000), 7), Grant::To(_)));
        let media: Vec<u32> = f
            .nat
            .expectations()
            .filter(|(_, e)| e.class == cgnat_alg::class::SIP_MEDIA)
            .map(|(_, e)| e.remote)
            .collect();
        assert_eq!(media.len(), 2 * 4);
        assert_eq!(
            media.iter().filter(|&&r| r == source).count(),
            8,
            "the group's any-source media narrowed, and the new pair from it"
        );
    }

    #[test]
    fn grants_are_found_again_in_the_tag() {
        let ctx = Ctx {
            dir: Dir::FromOutside,
            inside: (1, 40000),
            outside: (9, 1024),
            remote: (5, 6667),
            datagram: false,
        };
        let mut tag = Tag {
            n: 1,
            ..Tag::default()
        };
        tag.rewrites[0] = Rewrite {
            inside: (1, 5000),
            outside: (9, 2000),
        };
        let mut plan = Plan::default();
        plan.push(Ask::Lookup {
            kind: Kind::Tcp,
            outside: (0, 2000),
        });
        plan.push(Ask::Lookup {
            kind: Kind::Tcp,
            outside: (0, 2001),
        });
        let g = grants_from_tag(&plan, &ctx, &tag);
        assert_eq!(g[..2], [Grant::To((1, 5000)), Grant::Refused]);
        let inside = Ctx {
            dir: Dir::FromInside,
            ..ctx
        };
        let mut plan = Plan::default();
        plan.push(Ask::Announce {
            kind: Kind::Tcp,
            inside: (1, 5000),
            class: 0,
            from: None,
        });
        plan.push(Ask::Lookup {
            kind: Kind::Tcp,
            outside: (0, 5000),
        });
        let g = grants_from_tag(&plan, &inside, &tag);
        assert_eq!(g[..2], [Grant::To((9, 2000)), Grant::To((9, 2000))]);
        // An identifier granted (as grant_id records it) is found the same way.
        let mut plan = Plan::default();
        plan.push(Ask::Bind {
            kind: Kind::Id,
            inside: (1, 5000),
            peer: 77,
        });
        plan.push(Ask::Announce {
            kind: Kind::Id,
            inside: (1, 5001),
            class: 0,
            from: None,
        });
        let g = grants_from_tag(&plan, &inside, &tag);
        assert_eq!(g[..2], [Grant::To((9, 2000)), Grant::Refused]);
    }

    /// A text with more edits than a [`ControlText`] has room for: the messages past
    /// the room are left as they are (counted `no_room`), the room for the refused
    /// messages kept; [`cgnat_alg::text::apply_into`] makes what fits.
    #[test]
    fn edits_past_the_texts_room_leave_their_messages_as_they_are() {
        let c = contract_of(crate::nat::ALG_FTP).unwrap();
        let tag = ftp_tag(5000, 5000);
        let room = MAX_TEXT_EDITS - MAX_CUTS;
        let text = b"PORT 100,64,1,2,156,64\r\n".repeat(room + 4);
        let counters = WorkerCounters::default();
        let mut out = ControlText::default();
        let edits = |text: &[u8], out: &mut ControlText| {
            let read = (&tag, worker_read(&tag));
            control_edits(
                c,
                text,
                false,
                read,
                &counters,
                &mut 0,
                Policy::default(),
                out,
                None,
                (&[], None),
            );
        };
        edits(&text, &mut out);
        assert_eq!(out.edits.len(), room);
        let no_room = counters.contract_event(tag.alg, ContractEvent::NoRoom);
        assert_eq!(no_room.get(), 4);
        // The refused messages' room is there.
        assert!((0..MAX_CUTS).all(|k| out.push(k, 0, b"")));
        assert!(!out.push(0, 0, b""));
        out.edits.truncate(room);
        let mut made = vec![0; text.len()];
        let n = cgnat_alg::text::apply_into(&text, out.edits(), &mut made).unwrap();
        let made = String::from_utf8(made[..n].to_vec()).unwrap();
        assert_eq!(made.matches("PORT 198,51,100,1,4,0").count(), room);
        assert_eq!(made.matches("PORT 100,64,1,2,156,64").count(), 4);
        // Cleared, it has the room again.
        edits(&text[..24], &mut out);
        assert_eq!(out.edits.len(), 1);
    }

    /// An FTP session's tag (the client's port `cport`, its translation's `oport`)
    /// with the grant of the client's data port 40000 (to the pool's 1024).
    fn ftp_tag(cport: u16, oport: u16) -> Tag {
        let mut tag = Tag {
            inside: (0x6440_0102, cport),
            remote: (0xc000_020a, 21),
            outside: (0xc633_6401, oport),
            alg: crate::nat::ALG_FTP,
            n: 1,
            ..Tag::default()
        };
        tag.rewrites[0] = Rewrite {
            inside: (0x6440_0102, 40000),
            outside: (0xc633_6401, 1024),
        };
        tag
    }

    /// A text framed once to decide whether to hold it is read with that framing:
    /// the same edits as framing it again (FTP commands, IRC lines with a malformed
    /// one and a line cut at the end), and only for the same text read from the same
    /// place.
    #[test]
    fn a_text_is_read_with_the_framing_its_hold_decision_made() {
        let tag = ftp_tag(40000, 1024);
        let ftp: &dyn Contract = &cgnat_alg::ftp::Ftp;
        let irc: &dyn Contract = &Irc;
        let texts: [(&dyn Contract, &[u8]); 3] = [
            (ftp, b"NOOP\r\nPORT 100,64,1,2,156,64\r\nTYPE I\r\nPORT 100,64,1,2,156,64\r\n"),
            (
                irc,
                b"PING x\r\nPRIVMSG bob :\x01DCC SEND f 100.64.1.2 40000 1\x01\r\nPRIVMSG bob :\x01DCC nonsense\x01\r\nPRIVMSG b",
            ),
            (ftp, b"PORT 100,64,1,2,156,64\r\nPOR"),
        ];
        let key = (tag.inside.0, tag.inside.1, tag.remote.0, tag.remote.1);
        for (c, text) in texts {
            let id = (key, 0, 7, text.len());
            let mut framed = Framed::default();
            let held = incomplete(c, (text, 0), &tag, Policy::default(), (&mut framed, id));
            assert_eq!(held, !text.ends_with(b"\n"));
            assert!(framed.of(id, 0).is_some());
            assert!(
                framed.of((key, 0, 8, text.len()), 0).is_none(),
                "another text"
            );
            assert!(framed.of(id, 6).is_none(), "read from elsewhere");
            let read = |f: Option<&Framed>| {
                let counters = WorkerCounters::default();
                let mut out = ControlText::default();
                let t = (&tag, 0);
                let p = Policy::default();
                control_edits(
                    c,
                    text,
                    false,
                    t,
                    &counters,
                    &mut 0,
                    p,
                    &mut out,
                    None,
                    (&[], f),
                );
                let edits: Vec<(usize, usize, Vec<u8>)> =
                    out.edits().map(|(a, l, w)| (a, l, w.to_vec())).collect();
                (edits, format!("{counters:?}"))
            };
            let (once, again) = (read(framed.of(id, 0)), read(None));
            assert!(!once.0.is_empty());
            assert_eq!(once, again);
        }
    }

    /// The sessions whose streams the engine reads are found in one lookup; when
    /// their room is full, the records no longer a contract ALG's TCP session make
    /// room (a live one stays).
    #[test]
    fn the_streams_the_engine_reads_make_room_from_dead_records() {
        let text = "[dataplane]\ncontrol_lcore = 0\nworker_lcores = [1]\n\
            [[ports]]\nname = \"inside\"\nrole = \"inside\"\ndevice = \"net_null0\"\n\
            ipv4 = \"100.64.0.1/10\"\n\
            [[ports]]\nname = \"outside\"\nrole = \"outside\"\ndevice = \"net_null1\"\n\
            ipv4 = \"203.0.113.1/24\"\n[nat]\npool = [\"198.51.100.0/30\"]\n";
        let cfg = cgnat_config::Config::parse(text, "t.toml").unwrap();
        let mut params = NatParams::from_config(&cfg.nat, 1).unwrap();
        params.set_algs(&cfg.alg);
        let mut nat = Nat::new(params, 0, 1, 1000, 7, Arc::new(WorkerCounters::default()));
        let ftp = crate::nat::Tuple {
            proto: ipv4::PROTO_TCP,
            src: 0x6440_0002,
            dst: 0xc000_020a,
            sport: 40000,
            dport: 21,
        };
        let i = nat.in2out(&ftp, crate::wire::tcp::SYN, true, 1000).unwrap();
        let s = nat.session(i);
        assert!(s.proto == ipv4::PROTO_TCP && contract_of(s.alg()).is_some());
        let mut streams = Streams::default();
        assert!(streams.adjust(i, &nat));
        let others = (0..).filter(|&k| k != i).take(ADJUSTED - 1);
        for k in others {
            assert!(streams.adjust(k, &nat), "{k}");
        }
        assert!(streams.adjusted.is_full());
        let next = ADJUSTED as u32 + 7;
        assert!(streams.adjust(next, &nat));
        assert!(streams.adjusted(i) && streams.adjusted(next));
        assert_eq!(streams.adjusted.len(), 2);
    }
}
