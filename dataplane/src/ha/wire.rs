//! The HA sync wire format, version 1: one UDP datagram is one message, a header, a
//! batch of records and an HMAC-SHA256 tag over everything before it.
//!
//! ```text
//!  0      4       5      6        8         12       16        24         26     28
//!  | "CGHA" | ver | kind | count  | node id | epoch  |  seq    | body len | 0 0  | records ... | MAC (32)
//! ```
//!
//! All numbers are big-endian; addresses are IPv4 addresses as numbers. Each record is
//! a type byte (low 7 bits: [`rtype`]; bit 7, [`END`]: the state it names ended), a
//! length byte and that many bytes of value. [`Message::new_checked`] validates the
//! header once; [`Message::records`] decodes the records into fixed-size [`Record`]s
//! (no allocation; never panics on any input). [`Builder`] writes a message into a
//! caller's buffer. Authentication and replay refusal are in [`super::auth`].
//!
//! Compatibility: record types are only ever added, within version 1 (a message's
//! layout and the existing records' values are unchanged). A peer running code from
//! before a type refuses every message holding one as malformed (counted), so it is
//! upgraded first: [`rtype::CALL`] (PPTP calls) is sent only by a node whose PPTP ALG
//! holds calls; the others' messages are the same as before.

use crate::wire::{be16, be32, put16, put32};

/// The first four bytes of every message.
pub const MAGIC: [u8; 4] = *b"CGHA";
/// The version this code speaks.
pub const VERSION: u8 = 1;
/// Header length.
pub const HEADER_LEN: usize = 28;
/// The MAC's length (HMAC-SHA256).
pub const MAC_LEN: usize = 32;
/// The longest message sent: one datagram that crosses a 1,500-byte management link
/// unfragmented (IPv4 and UDP headers take 28 bytes).
pub const MAX_MESSAGE: usize = 1472;
/// Room for records in a message of [`MAX_MESSAGE`] bytes.
pub const MAX_BODY: usize = MAX_MESSAGE - HEADER_LEN - MAC_LEN;
/// Type bit of a record whose state ended (a session closed, a block released).
pub const END: u8 = 0x80;

/// Message kinds.
pub mod kind {
    /// Incremental records (state that changed).
    pub const UPDATE: u8 = 1;
    /// A bulk sync starts: the receiver drops what it holds from this sender.
    pub const BULK_BEGIN: u8 = 2;
    /// Records of a bulk sync.
    pub const BULK: u8 = 3;
    /// A bulk sync ended: the receiver holds the sender's whole state.
    pub const BULK_END: u8 = 4;
    /// The receiver lost messages (or just joined): asks for a bulk sync.
    pub const RESYNC: u8 = 5;
    /// Nothing to send for a while: carries a sequence number, so that a loss of the
    /// last update is seen.
    pub const HEARTBEAT: u8 = 6;
    /// The highest kind of this version.
    pub const LAST: u8 = HEARTBEAT;
}

/// Record types.
pub mod rtype {
    /// A subscriber's paired pool address.
    pub const PAIR: u8 = 1;
    /// A port block held by a subscriber.
    pub const BLOCK: u8 = 2;
    /// A session, with its TCP state and idle time.
    pub const SESSION: u8 = 3;
    /// A static, PCP or NAT-PMP mapping.
    pub const MAPPING: u8 = 4;
    /// An ALG expectation.
    pub const EXPECT: u8 = 5;
    /// An ALG control connection's sequence adjustment.
    pub const SEQ_ADJ: u8 = 6;
    /// A PPTP call (its translated call ID, the server's, its control connection).
    pub const CALL: u8 = 7;
}

/// Why a message was refused. Each has its own counter ([`super::HaCounters`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Too short, wrong magic, lengths that do not add up, a record that does not
    /// decode.
    Malformed,
    /// A version this code does not speak.
    Version,
    /// The MAC does not verify under the shared key.
    BadMac,
    /// A sequence number already received, or older than the window (or an older
    /// epoch).
    Replay,
    /// Authentic, but from another address than the peer's.
    Source,
}

/// A subscriber's pairing with a pool address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pair {
    /// Inside address.
    pub inside: u32,
    /// Pool address.
    pub outside: u32,
}

/// A port block a subscriber holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Block {
    /// Inside address.
    pub inside: u32,
    /// Pool address.
    pub outside: u32,
    /// The block's first port.
    pub first_port: u16,
}

/// A session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SessionRec {
    /// IP protocol.
    pub proto: u8,
    /// TCP state (`nat::TcpState as u8`, 0..=7).
    pub state: u8,
    /// The ALG bound to it (0..=7).
    pub alg: u8,
    /// Created inbound under the filtering alone ([`FLAG_INBOUND`]), answered since
    /// ([`FLAG_ANSWERED`]).
    pub flags: u8,
    /// Inside endpoint.
    pub inside: (u32, u16),
    /// Outside endpoint.
    pub outside: (u32, u16),
    /// Remote endpoint.
    pub remote: (u32, u16),
    /// Seconds since its last packet when sent (its timer: the receiver's clock is its
    /// own).
    pub idle: u32,
    /// NAT64: the inside IPv6 host. `inside.0` is then the sender's handle for it
    /// (`nat::hosts6`), which means nothing to the receiver: it takes its own handle
    /// for this address. Sent as 16 more bytes of the value.
    pub host6: Option<u128>,
}

/// [`SessionRec::flags`]: created by an inbound packet admitted by the filtering.
pub const FLAG_INBOUND: u8 = 1;
/// [`SessionRec::flags`]: the inside host answered it.
pub const FLAG_ANSWERED: u8 = 2;

/// [`MappingRec::kind`] values.
pub mod mapping_kind {
    /// A static mapping (port forward).
    pub const STATIC: u8 = 0;
    /// A PCP MAP mapping.
    pub const PCP: u8 = 1;
    /// A NAT-PMP mapping.
    pub const NATPMP: u8 = 2;
    /// A PCP PEER mapping.
    pub const PEER: u8 = 3;
}

/// Filters a mapping record carries at most.
pub const MAX_FILTERS: usize = crate::wire::pcp::MAX_FILTERS;

/// A static, PCP or NAT-PMP mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MappingRec {
    /// See [`mapping_kind`].
    pub kind: u8,
    /// IP protocol.
    pub proto: u8,
    /// Inside endpoint.
    pub inside: (u32, u16),
    /// Outside endpoint.
    pub outside: (u32, u16),
    /// Seconds of lifetime left when sent (0 for a static mapping).
    pub remaining: u32,
    /// The PCP nonce (zero otherwise).
    pub nonce: [u8; 12],
    /// Remote filters (address, prefix length, port), the first `n_filters`.
    pub filters: [(u32, u8, u16); MAX_FILTERS],
    /// How many filters.
    pub n_filters: u8,
}

/// An ALG expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ExpectRec {
    /// IP protocol of the expected connection.
    pub proto: u8,
    /// Its class (`nat::class`, below 6).
    pub class: u8,
    /// The ALG of the sessions a match creates.
    pub alg: u8,
    /// Stays after a match.
    pub keep: bool,
    /// Inside endpoint.
    pub inside: (u32, u16),
    /// Outside endpoint (the pinned mapping's).
    pub outside: (u32, u16),
    /// Remote address allowed (0: any).
    pub remote: u32,
    /// Call or media session tag.
    pub tag: u32,
    /// Seconds left when sent.
    pub remaining: u32,
    /// The master (control) session: protocol, inside and remote endpoints.
    pub master: (u8, (u32, u16), (u32, u16)),
    /// NAT64: the IPv6 host the inside endpoint and the master session's are of (in
    /// both, the sender's handle for it, which the receiver replaces by its own).
    pub host6: Option<u128>,
}

/// Correction points per direction of a sequence adjustment.
pub const SEQ_POINTS: usize = 8;

/// One direction of a sequence adjustment: the offset before the oldest point, and
/// the points (sequence number, cumulative offset), the first `n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SeqDir {
    /// Offset before the oldest point.
    pub base: i32,
    /// Points.
    pub points: [(u32, i32); SEQ_POINTS],
    /// How many points.
    pub n: u8,
}

/// An ALG control connection's sequence adjustment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SeqAdjRec {
    /// The connection: inside endpoint.
    pub inside: (u32, u16),
    /// Remote endpoint.
    pub remote: (u32, u16),
    /// From the inside host (0) and towards it (1).
    pub dirs: [SeqDir; 2],
    /// NAT64: the IPv6 host of the inside endpoint (which names it by the sender's
    /// handle; the receiver puts its own).
    pub host6: Option<u128>,
}

/// [`CallRec::flags`]: the server's call ID is known.
pub const CALL_BOUND: u8 = 1;
/// [`CallRec::flags`]: the call is closing (cleared, or its control connection closed).
pub const CALL_CLOSING: u8 = 2;

/// A PPTP call (`nat::gre::Call`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CallRec {
    /// The subscriber's address and own call ID.
    pub inside: (u32, u16),
    /// The pool address and translated call ID.
    pub outside: (u32, u16),
    /// The server's address and call ID (0 until bound).
    pub server: (u32, u16),
    /// The control connection: the subscriber's port and the server's.
    pub control: (u16, u16),
    /// [`CALL_BOUND`], [`CALL_CLOSING`].
    pub flags: u8,
    /// Seconds since its last control message or GRE packet when sent.
    pub idle: u32,
    /// Seconds since it was marked closing when sent (0 unless closing).
    pub closing: u32,
}

/// A decoded record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// [`rtype::PAIR`].
    Pair(Pair),
    /// [`rtype::BLOCK`].
    Block(Block),
    /// [`rtype::SESSION`].
    Session(SessionRec),
    /// [`rtype::MAPPING`].
    Mapping(MappingRec),
    /// [`rtype::EXPECT`].
    Expect(ExpectRec),
    /// [`rtype::SEQ_ADJ`].
    SeqAdj(SeqAdjRec),
    /// [`rtype::CALL`].
    Call(CallRec),
}

/// One record of a message: the state, and whether it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    /// The state ended (the receiver removes it).
    pub end: bool,
    /// The state.
    pub record: Record,
}

const PAIR_LEN: usize = 8;
const BLOCK_LEN: usize = 10;
const SESSION_LEN: usize = 26;
const MAPPING_BASE_LEN: usize = 31;
const FILTER_LEN: usize = 7;
const EXPECT_LEN: usize = 44;
const SEQ_KEY_LEN: usize = 12;
const SEQ_DIR_BASE: usize = 5;
const SEQ_POINT_LEN: usize = 8;
const CALL_LEN: usize = 31;

fn get_ep(b: &[u8], at: usize) -> (u32, u16) {
    (be32(b, at), be16(b, at + 4))
}

fn put_ep(b: &mut [u8], at: usize, ep: (u32, u16)) {
    put32(b, at, ep.0);
    put16(b, at + 4, ep.1);
}

/// The bytes a record's NAT64 host address takes after its fixed part: 16, or none.
fn host6_len(host6: Option<u128>) -> usize {
    if host6.is_some() {
        16
    } else {
        0
    }
}

/// Writes a record's NAT64 host address, if it has one, at `at` (its fixed part's end).
fn put_host6(b: &mut [u8], at: usize, host6: Option<u128>) {
    if let Some(a) = host6 {
        b[at..at + 16].copy_from_slice(&a.to_be_bytes());
    }
}

/// The NAT64 host address after a record's fixed part ending at `at`, if the value
/// holds one (the caller checks the value's length is `at` or `at + 16`).
fn get_host6(b: &[u8], at: usize) -> Option<u128> {
    b.get(at..at + 16)
        .and_then(|a| a.try_into().ok())
        .map(u128::from_be_bytes)
}

impl Record {
    /// Its type byte (without [`END`]).
    pub fn rtype(&self) -> u8 {
        match self {
            Record::Pair(_) => rtype::PAIR,
            Record::Block(_) => rtype::BLOCK,
            Record::Session(_) => rtype::SESSION,
            Record::Mapping(_) => rtype::MAPPING,
            Record::Expect(_) => rtype::EXPECT,
            Record::SeqAdj(_) => rtype::SEQ_ADJ,
            Record::Call(_) => rtype::CALL,
        }
    }

    /// Length of its value.
    pub fn value_len(&self) -> usize {
        match self {
            Record::Pair(_) => PAIR_LEN,
            Record::Block(_) => BLOCK_LEN,
            Record::Session(x) => SESSION_LEN + host6_len(x.host6),
            Record::Mapping(m) => MAPPING_BASE_LEN + FILTER_LEN * usize::from(m.n_filters),
            Record::Expect(x) => EXPECT_LEN + host6_len(x.host6),
            Record::SeqAdj(s) => {
                SEQ_KEY_LEN
                    + s.dirs
                        .iter()
                        .map(|d| SEQ_DIR_BASE + SEQ_POINT_LEN * usize::from(d.n))
                        .sum::<usize>()
                    + host6_len(s.host6)
            }
            Record::Call(_) => CALL_LEN,
        }
    }

    /// Writes its value into `v` (exactly [`Record::value_len`] bytes).
    fn emit(&self, v: &mut [u8]) {
        match self {
            Record::Pair(p) => {
                put32(v, 0, p.inside);
                put32(v, 4, p.outside);
            }
            Record::Block(b) => {
                put32(v, 0, b.inside);
                put32(v, 4, b.outside);
                put16(v, 8, b.first_port);
            }
            Record::Session(s) => {
                v[0] = s.proto;
                v[1] = s.state;
                v[2] = s.alg;
                v[3] = s.flags;
                put_ep(v, 4, s.inside);
                put_ep(v, 10, s.outside);
                put_ep(v, 16, s.remote);
                put32(v, 22, s.idle);
                put_host6(v, SESSION_LEN, s.host6);
            }
            Record::Mapping(m) => {
                v[0] = m.kind;
                v[1] = m.proto;
                put_ep(v, 2, m.inside);
                put_ep(v, 8, m.outside);
                put32(v, 14, m.remaining);
                v[18..30].copy_from_slice(&m.nonce);
                v[30] = m.n_filters;
                let mut at = MAPPING_BASE_LEN;
                for f in &m.filters[..usize::from(m.n_filters)] {
                    put32(v, at, f.0);
                    v[at + 4] = f.1;
                    put16(v, at + 5, f.2);
                    at += FILTER_LEN;
                }
            }
            Record::Expect(e) => {
                v[0] = e.proto;
                v[1] = e.class;
                v[2] = e.alg;
                v[3] = u8::from(e.keep);
                put_ep(v, 4, e.inside);
                put_ep(v, 10, e.outside);
                put32(v, 16, e.remote);
                put32(v, 20, e.tag);
                put32(v, 24, e.remaining);
                v[28] = e.master.0;
                put_ep(v, 29, e.master.1);
                put_ep(v, 35, e.master.2);
                v[41..44].fill(0);
                put_host6(v, EXPECT_LEN, e.host6);
            }
            Record::SeqAdj(s) => {
                put_ep(v, 0, s.inside);
                put_ep(v, 6, s.remote);
                let mut at = SEQ_KEY_LEN;
                for d in &s.dirs {
                    put32(v, at, d.base as u32);
                    v[at + 4] = d.n;
                    at += SEQ_DIR_BASE;
                    for &(seq, cum) in &d.points[..usize::from(d.n)] {
                        put32(v, at, seq);
                        put32(v, at + 4, cum as u32);
                        at += SEQ_POINT_LEN;
                    }
                }
                put_host6(v, at, s.host6);
            }
            Record::Call(c) => {
                put_ep(v, 0, c.inside);
                put_ep(v, 6, c.outside);
                put_ep(v, 12, c.server);
                put16(v, 18, c.control.0);
                put16(v, 20, c.control.1);
                v[22] = c.flags;
                put32(v, 23, c.idle);
                put32(v, 27, c.closing);
            }
        }
    }

    /// Decodes the value `v` of a record of type `t` (without [`END`]).
    pub fn parse(t: u8, v: &[u8]) -> Result<Record, Refusal> {
        let exact = |n: usize| {
            if v.len() == n {
                Ok(())
            } else {
                Err(Refusal::Malformed)
            }
        };
        match t {
            rtype::PAIR => {
                exact(PAIR_LEN)?;
                Ok(Record::Pair(Pair {
                    inside: be32(v, 0),
                    outside: be32(v, 4),
                }))
            }
            rtype::BLOCK => {
                exact(BLOCK_LEN)?;
                Ok(Record::Block(Block {
                    inside: be32(v, 0),
                    outside: be32(v, 4),
                    first_port: be16(v, 8),
                }))
            }
            rtype::SESSION => {
                if v.len() != SESSION_LEN && v.len() != SESSION_LEN + 16 {
                    return Err(Refusal::Malformed);
                }
                if v[1] > 7 || v[2] > 7 || v[3] & !(FLAG_INBOUND | FLAG_ANSWERED) != 0 {
                    return Err(Refusal::Malformed);
                }
                Ok(Record::Session(SessionRec {
                    proto: v[0],
                    state: v[1],
                    alg: v[2],
                    flags: v[3],
                    inside: get_ep(v, 4),
                    outside: get_ep(v, 10),
                    remote: get_ep(v, 16),
                    idle: be32(v, 22),
                    host6: get_host6(v, SESSION_LEN),
                }))
            }
            rtype::MAPPING => {
                if v.len() < MAPPING_BASE_LEN {
                    return Err(Refusal::Malformed);
                }
                let n = v[30];
                if v[0] > mapping_kind::PEER || usize::from(n) > MAX_FILTERS {
                    return Err(Refusal::Malformed);
                }
                exact(MAPPING_BASE_LEN + FILTER_LEN * usize::from(n))?;
                let mut m = MappingRec {
                    kind: v[0],
                    proto: v[1],
                    inside: get_ep(v, 2),
                    outside: get_ep(v, 8),
                    remaining: be32(v, 14),
                    n_filters: n,
                    ..MappingRec::default()
                };
                m.nonce.copy_from_slice(&v[18..30]);
                let mut at = MAPPING_BASE_LEN;
                for f in m.filters[..usize::from(n)].iter_mut() {
                    *f = (be32(v, at), v[at + 4], be16(v, at + 5));
                    if f.1 > 32 {
                        return Err(Refusal::Malformed);
                    }
                    at += FILTER_LEN;
                }
                Ok(Record::Mapping(m))
            }
            rtype::EXPECT => {
                if v.len() != EXPECT_LEN && v.len() != EXPECT_LEN + 16 {
                    return Err(Refusal::Malformed);
                }
                if usize::from(v[1]) >= crate::nat::class::NAMES.len() || v[2] > 7 || v[3] > 1 {
                    return Err(Refusal::Malformed);
                }
                if v[41..44] != [0, 0, 0] {
                    return Err(Refusal::Malformed);
                }
                Ok(Record::Expect(ExpectRec {
                    proto: v[0],
                    class: v[1],
                    alg: v[2],
                    keep: v[3] == 1,
                    inside: get_ep(v, 4),
                    outside: get_ep(v, 10),
                    remote: be32(v, 16),
                    tag: be32(v, 20),
                    remaining: be32(v, 24),
                    master: (v[28], get_ep(v, 29), get_ep(v, 35)),
                    host6: get_host6(v, EXPECT_LEN),
                }))
            }
            rtype::SEQ_ADJ => {
                if v.len() < SEQ_KEY_LEN {
                    return Err(Refusal::Malformed);
                }
                let mut s = SeqAdjRec {
                    inside: get_ep(v, 0),
                    remote: get_ep(v, 6),
                    ..SeqAdjRec::default()
                };
                let mut at = SEQ_KEY_LEN;
                for d in s.dirs.iter_mut() {
                    if v.len() < at + SEQ_DIR_BASE {
                        return Err(Refusal::Malformed);
                    }
                    d.base = be32(v, at) as i32;
                    d.n = v[at + 4];
                    at += SEQ_DIR_BASE;
                    let n = usize::from(d.n);
                    if n > SEQ_POINTS || v.len() < at + n * SEQ_POINT_LEN {
                        return Err(Refusal::Malformed);
                    }
                    for p in d.points[..n].iter_mut() {
                        *p = (be32(v, at), be32(v, at + 4) as i32);
                        at += SEQ_POINT_LEN;
                    }
                }
                if v.len() != at && v.len() != at + 16 {
                    return Err(Refusal::Malformed);
                }
                s.host6 = get_host6(v, at);
                Ok(Record::SeqAdj(s))
            }
            rtype::CALL => {
                exact(CALL_LEN)?;
                if v[22] & !(CALL_BOUND | CALL_CLOSING) != 0 {
                    return Err(Refusal::Malformed);
                }
                Ok(Record::Call(CallRec {
                    inside: get_ep(v, 0),
                    outside: get_ep(v, 6),
                    server: get_ep(v, 12),
                    control: (be16(v, 18), be16(v, 20)),
                    flags: v[22],
                    idle: be32(v, 23),
                    closing: be32(v, 27),
                }))
            }
            _ => Err(Refusal::Malformed),
        }
    }
}

/// A view of a message whose header was checked ([`Message::new_checked`]).
#[derive(Clone, Copy, Debug)]
pub struct Message<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Message<T> {
    /// Checks the header: magic, version, kind, lengths (the body and the MAC fill the
    /// buffer exactly). The MAC is not checked here.
    pub fn new_checked(buf: T) -> Result<Message<T>, Refusal> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN + MAC_LEN || b.len() > MAX_MESSAGE || b[0..4] != MAGIC {
            return Err(Refusal::Malformed);
        }
        if b[4] != VERSION {
            return Err(Refusal::Version);
        }
        let kind = b[5];
        if kind == 0 || kind > kind::LAST || b[26..28] != [0, 0] {
            return Err(Refusal::Malformed);
        }
        if HEADER_LEN + usize::from(be16(b, 24)) + MAC_LEN != b.len() {
            return Err(Refusal::Malformed);
        }
        Ok(Message { buf })
    }

    /// Message kind ([`kind`]).
    pub fn kind(&self) -> u8 {
        self.buf.as_ref()[5]
    }
    /// Records it says it carries.
    pub fn count(&self) -> u16 {
        be16(self.buf.as_ref(), 6)
    }
    /// The sender's node id.
    pub fn node(&self) -> u32 {
        be32(self.buf.as_ref(), 8)
    }
    /// The sender's epoch (grows with each start of the sender).
    pub fn epoch(&self) -> u32 {
        be32(self.buf.as_ref(), 12)
    }
    /// Sequence number within the epoch.
    pub fn seq(&self) -> u64 {
        let b = self.buf.as_ref();
        u64::from(be32(b, 16)) << 32 | u64::from(be32(b, 20))
    }
    /// The records' bytes.
    pub fn body(&self) -> &[u8] {
        let b = self.buf.as_ref();
        &b[HEADER_LEN..b.len() - MAC_LEN]
    }
    /// What the MAC covers.
    pub fn signed(&self) -> &[u8] {
        let b = self.buf.as_ref();
        &b[..b.len() - MAC_LEN]
    }
    /// The MAC.
    pub fn mac(&self) -> &[u8] {
        let b = self.buf.as_ref();
        &b[b.len() - MAC_LEN..]
    }
    /// The records, decoded one by one.
    pub fn records(&self) -> Records<'_> {
        Records {
            body: self.body(),
            at: 0,
        }
    }
    /// Decodes every record once: the body holds exactly `count` well-formed records.
    /// A message is applied only after this (nothing of a malformed one is applied).
    pub fn validate(&self) -> Result<(), Refusal> {
        let mut n = 0u32;
        for r in self.records() {
            r?;
            n += 1;
        }
        if n == u32::from(self.count()) {
            Ok(())
        } else {
            Err(Refusal::Malformed)
        }
    }
}

/// Iterator over a message's records (stops after the first malformed one).
pub struct Records<'a> {
    body: &'a [u8],
    at: usize,
}

impl Iterator for Records<'_> {
    type Item = Result<Item, Refusal>;
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.body;
        if self.at >= b.len() {
            return None;
        }
        if self.at + 2 > b.len() {
            self.at = b.len();
            return Some(Err(Refusal::Malformed));
        }
        let (t, len) = (b[self.at], usize::from(b[self.at + 1]));
        let start = self.at + 2;
        if start + len > b.len() {
            self.at = b.len();
            return Some(Err(Refusal::Malformed));
        }
        self.at = start + len;
        match Record::parse(t & !END, &b[start..start + len]) {
            Ok(record) => Some(Ok(Item {
                end: t & END != 0,
                record,
            })),
            Err(e) => {
                self.at = b.len();
                Some(Err(e))
            }
        }
    }
}

/// Writes a message into a buffer of at least [`MAX_MESSAGE`] bytes.
pub struct Builder<'a> {
    buf: &'a mut [u8],
    len: usize,
    count: u16,
}

impl<'a> Builder<'a> {
    /// Starts a message of `kind` from `node` with `epoch` and `seq`.
    pub fn new(buf: &'a mut [u8], kind: u8, node: u32, epoch: u32, seq: u64) -> Builder<'a> {
        assert!(buf.len() >= MAX_MESSAGE, "sync buffer below MAX_MESSAGE");
        buf[0..4].copy_from_slice(&MAGIC);
        buf[4] = VERSION;
        buf[5] = kind;
        put16(buf, 6, 0);
        put32(buf, 8, node);
        put32(buf, 12, epoch);
        put32(buf, 16, (seq >> 32) as u32);
        put32(buf, 20, seq as u32);
        put16(buf, 24, 0);
        buf[26..28].fill(0);
        Builder {
            buf,
            len: HEADER_LEN,
            count: 0,
        }
    }

    /// Appends a record; false (and nothing written) when the message has no room.
    pub fn push(&mut self, end: bool, r: &Record) -> bool {
        let n = r.value_len();
        if self.len + 2 + n + MAC_LEN > MAX_MESSAGE {
            return false;
        }
        self.buf[self.len] = r.rtype() | if end { END } else { 0 };
        self.buf[self.len + 1] = n as u8;
        r.emit(&mut self.buf[self.len + 2..self.len + 2 + n]);
        self.len += 2 + n;
        self.count += 1;
        true
    }

    /// Records so far.
    pub fn count(&self) -> u16 {
        self.count
    }

    /// Ends the message, fills in the lengths and the MAC `mac` computes over the
    /// rest; returns its length.
    pub fn finish(self, mac: impl FnOnce(&[u8]) -> [u8; MAC_LEN]) -> usize {
        put16(self.buf, 6, self.count);
        put16(self.buf, 24, (self.len - HEADER_LEN) as u16);
        let tag = mac(&self.buf[..self.len]);
        self.buf[self.len..self.len + MAC_LEN].copy_from_slice(&tag);
        self.len + MAC_LEN
    }
}
