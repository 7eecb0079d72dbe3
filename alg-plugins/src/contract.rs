//! The ALG contract: what a protocol implements once, so that the dataplane runs it
//! without knowing its name. An ALG here sees bytes only: the framing of its control
//! stream, what a whole message asks of the NAT (its *plan*), and the edits of the
//! message once the NAT has granted those asks. It owns no packets and no tables, so it
//! is tested and fuzzed on bytes alone; every buffer here is of fixed size (the
//! dataplane's hot path does not allocate).
//!
//! The dataplane's side of the contract, for every ALG whose registry entry
//! ([`crate::Plugin::contract`]) names an implementation:
//! 1. on the worker that owns the session, each whole message of a frame is framed
//!    ([`Contract::framing`]) and planned ([`Contract::plan`]);
//! 2. the worker grants each [`Ask`] from its own tables (a translation reserved with an
//!    expectation of the ALG's class, an identifier mapped, a mapping looked up) or
//!    refuses it (counted), and records what the message ends ([`Ask::End`]);
//! 3. the edits of the message ([`Contract::edits`]) are made with those grants: by the
//!    worker itself, inline, when they keep the message's length or the message is a
//!    datagram (no sequence adjustment); otherwise by the stream engine, which adjusts
//!    sequence and acknowledgement numbers for the rest of the connection.
//!
//! Adding an ALG is its module, implementing [`Contract`], and one line in
//! [`crate::PLUGINS`] (with its expectation classes in [`crate::CLASSES`]).

/// Which way a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// From the inside subscriber to the outside peer.
    FromInside,
    /// From the outside peer to the subscriber.
    FromOutside,
}

/// An address (IPv4, host order) and a port or 16-bit identifier.
pub type Endpoint = (u32, u16);

/// The session a message travels on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctx {
    /// Its direction.
    pub dir: Dir,
    /// The subscriber's own endpoint.
    pub inside: Endpoint,
    /// Its translation (the pool address and port).
    pub outside: Endpoint,
    /// The peer's endpoint.
    pub remote: Endpoint,
    /// Whether the control session is a datagram one (UDP): a message is one datagram.
    pub datagram: bool,
}

/// What the front of a control stream holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// A whole message of this many bytes.
    Whole(usize),
    /// The start of a message not yet whole: hold it until more comes.
    More,
    /// This many bytes that are no message of the ALG's (or one it will never read:
    /// too long, malformed): passed on untouched, and counted by the dataplane.
    Skip(usize),
}

/// What kind of thing an [`Ask`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A TCP port.
    Tcp,
    /// A UDP port.
    Udp,
    /// A pair of UDP ports, even and odd (RTP and RTCP).
    UdpPair,
    /// A 16-bit identifier the ALG's own tunnels are keyed by (PPTP's call ID, which
    /// enhanced GRE packets carry in their key field).
    Id,
}

/// One thing a message asks of the NAT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// The subscriber announces `inside` (its own address and a port or identifier)
    /// for the peer to reach: reserve its translation (the same for the same endpoint)
    /// and, for a port, expect the peer's connection to it (`class`, from `from` when
    /// known, else from the session's remote address).
    Announce {
        /// What `inside.1` is.
        kind: Kind,
        /// The announced endpoint.
        inside: Endpoint,
        /// The expectation class (an id of [`crate::class`]).
        class: u8,
        /// The peer expected, when the message names another than the session's.
        from: Option<u32>,
    },
    /// An IPv6 host of a NAT64 session announces `addr` and `port` for the peer to
    /// reach (RFC 6384: an EPRT `|2|`): granted as an [`Ask::Announce`] of the
    /// session's own inside endpoint (the host's handle) and `port` when `addr` is the
    /// host's own IPv6 address; refused otherwise (counted `refused`), nothing opened.
    Announce6 {
        /// What `port` is.
        kind: Kind,
        /// The IPv6 address announced.
        addr: u128,
        /// The port announced.
        port: u16,
        /// The expectation class.
        class: u8,
        /// The peer expected (0: any), when not the session's remote address.
        from: Option<u32>,
    },
    /// The peer names one of the subscriber's translations (`outside`: a pool address,
    /// or 0 for the session's own, and a port or identifier): what it stands for inside.
    /// In a message from the subscriber, `outside` is one of its own endpoints (0: its
    /// address) and the grant is the translation it already has (none is made).
    Lookup {
        /// What `outside.1` is.
        kind: Kind,
        /// The translated endpoint the peer wrote.
        outside: Endpoint,
    },
    /// The peer's own identifier for a tunnel the subscriber announced (`inside`, as
    /// written by the subscriber): binds the two, so the tunnel's packets are mapped
    /// both ways (PPTP's Outgoing-Call-Reply: the server's call ID).
    Bind {
        /// What the identifiers are.
        kind: Kind,
        /// The subscriber's endpoint, as it announced it.
        inside: Endpoint,
        /// The peer's identifier.
        peer: u16,
    },
    /// The end of what an earlier announce opened (`inside` as the subscriber wrote it,
    /// or the translation when `translated`): its mapping and expectation go.
    End {
        /// What `endpoint.1` is.
        kind: Kind,
        /// The endpoint.
        endpoint: Endpoint,
        /// `endpoint` is the translation (the peer named it), not the inside one.
        translated: bool,
    },
    /// The end of a group (see [`Plan::group`]): every expectation of the session's
    /// announces of that group goes (RTSP's TEARDOWN of a session). Granted
    /// `To((0, n))` with n the expectations removed (at most 65535), refused when none.
    EndGroup {
        /// The group.
        group: u32,
    },
    /// The subscriber names `inside` as where the peer's own control sessions of the
    /// ALG reach it (a SIP Contact: a registered one, or a dialog's on another port):
    /// its translation is reserved with an expectation of `class` from the session's
    /// peer that keeps its mapping for `secs` (0: the class's timeout), in the
    /// message's group, and a session it lets in is one of the ALG's own (its messages
    /// are read). Granted as an [`Ask::Announce`] is.
    Contact {
        /// What `inside.1` is (the session's own transport).
        kind: Kind,
        /// The contact endpoint.
        inside: Endpoint,
        /// The expectation class.
        class: u8,
        /// Seconds the expectation lives (0: the class's timeout).
        secs: u32,
    },
    /// An RTP/RTCP pair whose RTCP port need not be the one after RTP's (SDP's
    /// `a=rtcp`): announced as [`Kind::UdpPair`] is (both below the ALG's
    /// `min_media_port`: refused); granted the RTP port's translation, the RTCP port's
    /// being a [`Ask::Lookup`] of it in a message from the subscriber.
    Pair {
        /// The RTP endpoint.
        inside: Endpoint,
        /// The RTCP port.
        rtcp: u16,
        /// The expectation class.
        class: u8,
        /// The peer expected (`Some(0)`: any, until [`Ask::Narrow`] names it), when
        /// not the session's remote address.
        from: Option<u32>,
    },
    /// The peer names where the media of a group comes from (SIP's SDP from outside):
    /// the group's expectations that take any source take only `source`, and so do
    /// the group's announces of any source to come (the answer to that offer).
    Narrow {
        /// The group.
        group: u32,
        /// The peer's media address (IPv4, host order).
        source: u32,
    },
    /// The peer names the group of what the session announced without one (an RTSP
    /// reply's Session answers the SETUP that opened its media): the session's
    /// ungrouped expectations join `group`, and the media of the group comes only from
    /// `source` when the peer names one.
    Regroup {
        /// The group.
        group: u32,
        /// The peer's media source (IPv4, host order), when it names one.
        source: Option<u32>,
    },
}

/// Most asks one message may make; more are refused and counted by the dataplane (a
/// SIP offer of eight media streams asks two for each).
pub const MAX_ASKS: usize = 32;

/// What one message asks: a bounded list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    asks: [Option<Ask>; MAX_ASKS],
    n: usize,
    /// Asks that did not fit.
    pub over: usize,
    /// The group the message's announces join (0: none): a hash of the protocol's own
    /// session or call identifier ([`crate::text::tag`]), which [`Ask::EndGroup`]
    /// ends as a whole.
    pub group: u32,
    /// The ALG's own events of the message ([`Contract::events`]), counted by the
    /// worker (which plans each message first; the stream engine's plan of the same
    /// message is not counted again).
    pub notes: Notes,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            asks: [None; MAX_ASKS],
            n: 0,
            over: 0,
            group: 0,
            notes: Notes::default(),
        }
    }
}

/// Most events of its own an ALG names ([`Contract::events`]).
pub const MAX_NOTES: usize = 8;

/// How many times each of an ALG's own events ([`Contract::events`], by index)
/// happened while a message was read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Notes([u16; MAX_NOTES]);

impl Notes {
    /// Notes event `k` once (an index past [`MAX_NOTES`] is ignored).
    pub fn note(&mut self, k: usize) {
        if let Some(n) = self.0.get_mut(k) {
            *n = n.saturating_add(1);
        }
    }

    /// How many times event `k` was noted.
    pub fn get(&self, k: usize) -> u16 {
        self.0.get(k).copied().unwrap_or(0)
    }

    /// Nothing noted.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&n| n == 0)
    }

    /// Each event noted, with its count.
    pub fn iter(&self) -> impl Iterator<Item = (usize, u16)> + '_ {
        self.0.iter().copied().enumerate().filter(|&(_, n)| n > 0)
    }
}

impl Plan {
    /// Adds an ask; false (and counted in `over`) when the plan is full.
    pub fn push(&mut self, a: Ask) -> bool {
        if self.n == MAX_ASKS {
            self.over += 1;
            return false;
        }
        self.asks[self.n] = Some(a);
        self.n += 1;
        true
    }

    /// The asks, in order.
    pub fn asks(&self) -> impl Iterator<Item = &Ask> {
        self.asks[..self.n].iter().flatten()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.n
    }

    /// No asks.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Forgets every ask.
    pub fn clear(&mut self) {
        *self = Plan::default();
    }
}

/// The NAT's answer to the ask of the same index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Refused (no port, table full, policy): the message is left as written where it
    /// named this endpoint, and the dataplane counts it.
    Refused,
    /// The endpoint as the other side must see it: for an announce or a bind, the
    /// translation; for a lookup, the inside endpoint; for an end, the endpoint that
    /// ended, seen from the other side.
    To(Endpoint),
}

/// Longest replacement one edit carries (a dotted address and port fit well).
pub const MAX_EDIT: usize = 48;

/// One replacement in a message: `len` bytes at `at` (offsets within the message)
/// become `bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edit {
    /// Offset in the message.
    pub at: usize,
    /// Bytes replaced.
    pub len: usize,
    bytes: [u8; MAX_EDIT],
    n: u8,
    /// The edit writes no address (a port or an identifier only): it is as valid for
    /// a NAT64 session, whose inside host is IPv6, as for a NAT44 one.
    pub address_free: bool,
}

impl Default for Edit {
    /// An empty insertion at the start.
    fn default() -> Edit {
        Edit {
            at: 0,
            len: 0,
            bytes: [0; MAX_EDIT],
            n: 0,
            address_free: false,
        }
    }
}

impl Edit {
    /// An edit; None when `with` is longer than [`MAX_EDIT`]. It may write an address
    /// (see [`Edit::address_free`]).
    pub fn new(at: usize, len: usize, with: &[u8]) -> Option<Edit> {
        if with.len() > MAX_EDIT {
            return None;
        }
        let mut bytes = [0u8; MAX_EDIT];
        bytes[..with.len()].copy_from_slice(with);
        Some(Edit {
            at,
            len,
            bytes,
            n: with.len() as u8,
            address_free: false,
        })
    }

    /// The replacement.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.n)]
    }

    /// How the edit changes the message's length.
    pub fn delta(&self) -> isize {
        usize::from(self.n) as isize - self.len as isize
    }
}

/// Most edits one message may need (a SIP INVITE with its SDP, several Vias and
/// routes needs a few dozen).
pub const MAX_EDITS: usize = 48;

/// The edits of one message, in increasing, non-overlapping offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edits {
    edits: [Option<Edit>; MAX_EDITS],
    n: usize,
    /// The ALG's own events of the message ([`Contract::events`]) found while its
    /// edits were computed, counted where the edits are made (by the stream engine for
    /// a [`Contract::stateful`] ALG's sessions).
    pub notes: Notes,
}

impl Default for Edits {
    fn default() -> Self {
        Edits {
            edits: [None; MAX_EDITS],
            n: 0,
            notes: Notes::default(),
        }
    }
}

/// Why a message's edits could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditError {
    /// More edits than [`MAX_EDITS`], or a replacement longer than [`MAX_EDIT`].
    TooMany,
    /// An edit overlaps or precedes the one before it, or lies outside the message.
    Misplaced,
}

impl Edits {
    /// Adds an edit after the others: one that may write an address (the dataplane
    /// does not make it on a NAT64 session).
    pub fn push(&mut self, at: usize, len: usize, with: &[u8]) -> Result<(), EditError> {
        self.push_edit(at, len, with, false)
    }

    /// Adds an edit after the others that writes no address (a port, an identifier):
    /// made on a NAT64 session too.
    pub fn push_address_free(
        &mut self,
        at: usize,
        len: usize,
        with: &[u8],
    ) -> Result<(), EditError> {
        self.push_edit(at, len, with, true)
    }

    /// Adds a copy of `e` (its [`Edit::address_free`] kept) after the others.
    pub fn add(&mut self, e: &Edit) -> Result<(), EditError> {
        self.push_edit(e.at, e.len, e.bytes(), e.address_free)
    }

    fn push_edit(
        &mut self,
        at: usize,
        len: usize,
        with: &[u8],
        address_free: bool,
    ) -> Result<(), EditError> {
        if self.n == MAX_EDITS {
            return Err(EditError::TooMany);
        }
        if let Some(last) = self.iter().last() {
            if at < last.at + last.len {
                return Err(EditError::Misplaced);
            }
        }
        let mut e = Edit::new(at, len, with).ok_or(EditError::TooMany)?;
        e.address_free = address_free;
        self.edits[self.n] = Some(e);
        self.n += 1;
        Ok(())
    }

    /// Adds the edits that make `old` (a message, from its start) into `new`: the bytes
    /// between their common start and common end, replaced in pieces of at most
    /// [`MAX_EDIT`] (an ALG that rebuilds a message whole, as RTCP's CNAME rewrite
    /// does). Each piece may write an address.
    pub fn push_diff(&mut self, old: &[u8], new: &[u8]) -> Result<(), EditError> {
        let pre = old.iter().zip(new).take_while(|(a, b)| a == b).count();
        let room = old.len().min(new.len()) - pre;
        let suf = old
            .iter()
            .rev()
            .zip(new.iter().rev())
            .take(room)
            .take_while(|(a, b)| a == b)
            .count();
        let (o, n) = (&old[pre..old.len() - suf], &new[pre..new.len() - suf]);
        if o.is_empty() && n.is_empty() {
            return Ok(());
        }
        let pieces = n.len().div_ceil(MAX_EDIT).max(1);
        for k in 0..pieces {
            let with = &n[k * MAX_EDIT..((k + 1) * MAX_EDIT).min(n.len())];
            let from = (k * MAX_EDIT).min(o.len());
            let to = if k + 1 == pieces {
                o.len()
            } else {
                ((k + 1) * MAX_EDIT).min(o.len())
            };
            self.push(pre + from, to - from, with)?;
        }
        Ok(())
    }

    /// Keeps only the edits that write no address (what a NAT64 session may have);
    /// how many went.
    pub fn retain_address_free(&mut self) -> usize {
        let mut kept = Edits::default();
        for e in self.iter().filter(|e| e.address_free) {
            kept.edits[kept.n] = Some(*e);
            kept.n += 1;
        }
        let gone = self.n - kept.n;
        *self = kept;
        gone
    }

    /// The edits, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Edit> {
        self.edits[..self.n].iter().flatten()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.n
    }

    /// No edits.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// How the edits change the message's length.
    pub fn delta(&self) -> isize {
        self.iter().map(Edit::delta).sum()
    }

    /// The edits keep every byte in its place (the worker may make them inline).
    pub fn keep_length(&self) -> bool {
        self.iter().all(|e| e.delta() == 0)
    }

    /// Applies the edits to `msg` in place when they keep its length.
    pub fn apply_in_place(&self, msg: &mut [u8]) -> Result<(), EditError> {
        if !self.keep_length() || self.iter().any(|e| e.at + e.len > msg.len()) {
            return Err(EditError::Misplaced);
        }
        for e in self.iter() {
            msg[e.at..e.at + e.len].copy_from_slice(e.bytes());
        }
        Ok(())
    }

    /// Writes `msg` with the edits made into `out`; the length written, or None when
    /// `out` is too short or an edit lies outside the message.
    pub fn apply_into(&self, msg: &[u8], out: &mut [u8]) -> Option<usize> {
        crate::text::apply_into(msg, self.iter().map(|e| (e.at, e.len, e.bytes())), out)
    }
}

/// Longest reply an ALG writes in the server's name ([`Contract::refuse`]): a SIP
/// response copies the request's Via, From, To, Call-ID and CSeq.
pub const MAX_REPLY: usize = 4096;

/// A reply in the server's name to a request the ALG's policy refuses: bytes of a
/// fixed buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    bytes: [u8; MAX_REPLY],
    n: usize,
}

impl Default for Reply {
    fn default() -> Self {
        Reply {
            bytes: [0; MAX_REPLY],
            n: 0,
        }
    }
}

/// The `[alg.<name>]` keys an ALG may read beyond its ports (each ALG's own; the
/// defaults are those of an ALG with no such keys): what it refuses, and how far the
/// connections it expects may stray.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy<'a> {
    /// Commands or methods refused (as configured, any case).
    pub deny: &'a [String],
    /// When not empty, the only ones let through.
    pub allow: &'a [String],
    /// An announce naming another host than the subscriber is refused.
    pub refuse_bounce: bool,
    /// An announce of a port below `min_data_port` is refused.
    pub refuse_low_port: bool,
    /// The lowest port the subscriber may announce (lower: nothing opened).
    pub min_data_port: u16,
    /// An expected connection may come from any address, not only the peer's.
    pub loose: bool,
    /// The largest request the subscriber may send (0: any); a larger one is refused
    /// ([`Contract::refuse`]).
    pub max_message_size: usize,
    /// The status a refused method gets, when the protocol has a choice (SIP: 403 or
    /// 405; 0: the ALG's own).
    pub deny_status: u16,
    /// The lowest media port the subscriber may announce (`min_media_port`; 0: any):
    /// an ALG may leave a lower one unasked, noting it among its own events (the
    /// dataplane refuses a lower [`Kind::UdpPair`] or [`Ask::Pair`] anyway).
    pub min_media_port: u16,
}

/// A connection's state as an ALG keeps it ([`Contract::stateful`]): a byte of the
/// ALG's own meaning, but for [`STAND_ASIDE`].
pub type State = u8;

/// In a [`State`]: the ALG reads no more of the connection (it is encrypted from
/// now on, as FTP's after AUTH TLS): the stream engine passes the rest untouched.
pub const STAND_ASIDE: State = 0x80;

/// Everything the dataplane tells an ALG about a message's connection: the [`Ctx`]
/// and what later ALGs needed (the `*_in` methods of [`Contract`] take it; their
/// defaults call the plain ones with `ctx`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conn<'a> {
    /// The session.
    pub ctx: Ctx,
    /// The subscriber is an IPv6 host (NAT64): `ctx.inside` is its handle, and the
    /// peer is IPv4. An ALG whose [`Contract::nat64_edits`] is true decides its edits
    /// for it; for the others, the dataplane makes none.
    pub nat64: bool,
    /// The subscriber is the ALG's server (its port is one of the ALG's ports: a
    /// port forward).
    pub inside_server: bool,
    /// The connection's state before the message ([`Contract::stateful`]; 0 else).
    pub state: State,
    /// The ALG's keys of `[alg.<name>]`.
    pub policy: Policy<'a>,
}

impl Conn<'_> {
    /// A connection with nothing more than `ctx` (NAT44, no state, no policy).
    pub fn of(ctx: Ctx) -> Conn<'static> {
        Conn {
            ctx,
            nat64: false,
            inside_server: false,
            state: 0,
            policy: Policy::default(),
        }
    }
}

impl Reply {
    /// Empties it (its room stays, as it is: nothing is written).
    pub fn clear(&mut self) {
        self.n = 0;
    }

    /// Appends `b`; false (and nothing appended) when it does not fit.
    pub fn push(&mut self, b: &[u8]) -> bool {
        let Some(to) = self.bytes.get_mut(self.n..self.n + b.len()) else {
            return false;
        };
        to.copy_from_slice(b);
        self.n += b.len();
        true
    }

    /// The reply.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.n]
    }
}

/// Text written with `write!` is appended as [`Reply::push`] does; past the reply's
/// room, an error (and nothing of that piece appended).
impl std::fmt::Write for Reply {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.push(s.as_bytes()) {
            Ok(())
        } else {
            Err(std::fmt::Error)
        }
    }
}

/// The start of a message held for its end, by default ([`Contract::hold`]): an IRC
/// line is 512 bytes, tags may make it longer.
pub const HOLD: usize = 1024;

/// The longest start of a message any ALG may have held ([`Contract::hold`]): a SIP
/// message's head and body.
pub const MAX_HOLD: usize = crate::text::MAX_HEAD + crate::text::MAX_BODY;

/// The contract an ALG implements. Every method is bounded in time by the message's
/// length and does not allocate.
///
/// The provided methods are what later ALGs needed, each with a default that leaves
/// an ALG without it as it was:
/// - every connection-aware ALG: [`Contract::framing_in`], [`Contract::plan_in`] and
///   [`Contract::edits_in`] knowing the connection ([`Conn`]: its policy, NAT64, a
///   state);
/// - a policy that refuses a message with a reply in the server's name, one hook for
///   all ([`Contract::refuse`]): FTP's commands (`deny`/`allow`, a bounce, a low data
///   port), RTSP's methods (405), SIP's methods and size (405/403/513);
/// - FTP's: a connection state read in order ([`Contract::stateful`],
///   [`Contract::advance`]), edits on NAT64 sessions ([`Contract::nat64_edits`],
///   [`Conn::nat64`], [`Ask::Announce6`]), events of the ALG's own
///   ([`Contract::events`], [`Notes`]);
/// - SIP's and RTSP's: events of how the asks were granted ([`Contract::granted`]);
/// - SIP's: events of skipped bytes ([`Contract::skipped`]), and a longer start held
///   ([`Contract::hold`]).
pub trait Contract: Sync {
    /// The front of the stream `buf` (for a datagram session, one whole datagram).
    fn framing(&self, buf: &[u8], ctx: &Ctx) -> Framing;

    /// What a whole message asks of the NAT, pushed into `plan`. A message the ALG
    /// reads but finds malformed asks nothing (and is left as it is).
    fn plan(&self, msg: &[u8], ctx: &Ctx, plan: &mut Plan);

    /// The edits of the message given the grants of its plan (index for index). The
    /// message's framing and plan are the same as when it was planned.
    fn edits(
        &self,
        msg: &[u8],
        ctx: &Ctx,
        plan: &Plan,
        grants: &[Grant],
        edits: &mut Edits,
    ) -> Result<(), EditError>;

    /// Policy: whether the connection's policy refuses the whole message `msg` (a
    /// request or command of the subscriber's), its reply in the server's name written
    /// into `reply` (whole, its line ends included; none: refused with no reply). What
    /// a policy refuses is the ALG's: `denied` says which of the protocol's methods
    /// (its verb, as written) are refused (`alg.<name>.deny_methods`), `conn.policy`
    /// the rest (FTP's `deny`/`allow` commands in any case, a bounce or a low data
    /// port; SIP's [`Policy::max_message_size`] and [`Policy::deny_status`]; a datagram
    /// is one whole message here, parsed or not). A refused message is neither planned
    /// nor edited: the dataplane cuts it from the stream and sends the reply back, or
    /// drops the frame (`on_deny = "drop"`). The one refusal hook, asked when the
    /// message is planned (nothing planned for a refused message) and by the stream
    /// engine (the message
    /// cut, the reply sent; a stateful ALG's state not advanced by it). By default an
    /// ALG refuses nothing.
    fn refuse(
        &self,
        msg: &[u8],
        conn: &Conn<'_>,
        denied: &dyn Fn(&[u8]) -> bool,
        reply: &mut Reply,
    ) -> bool {
        let _ = (msg, conn, denied, reply);
        false
    }

    /// The ALG's own events ([`Contract::events`]) of how the worker answered a
    /// message's asks (`grants`, index for index with `plan`) on connection `conn`
    /// (which tells the asks the dataplane refuses on its own account: another host's,
    /// a media port below [`Policy::min_media_port`]), noted in `notes` and counted by
    /// the worker. By default none.
    fn granted(&self, plan: &Plan, grants: &[Grant], conn: &Conn<'_>, notes: &mut Notes) {
        let _ = (plan, grants, conn, notes);
    }

    /// The ALG's own event ([`Contract::events`], by index) that bytes its framing
    /// skips ([`Framing::Skip`]) count as, instead of the dataplane's `skipped`; by
    /// default none.
    fn skipped(&self, bytes: &[u8], ctx: &Ctx) -> Option<usize> {
        let _ = (bytes, ctx);
        None
    }

    /// The longest start of a message the dataplane holds for its end (a longer one
    /// goes as it is); at most [`MAX_HOLD`].
    fn hold(&self) -> usize {
        HOLD
    }

    /// Names of the ALG's own events (at most [`MAX_NOTES`]), which its plans and
    /// edits note by index ([`Plan::notes`], [`Edits::notes`]) and the dataplane
    /// counts under the ALG's name.
    fn events(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether the ALG keeps a state per connection ([`State`]): every frame of its
    /// TCP sessions then goes to the stream engine, which reads each message in order,
    /// both ways, and keeps the state ([`Contract::advance`]); the worker only plans
    /// and grants.
    fn stateful(&self) -> bool {
        false
    }

    /// Whether the ALG decides its edits on NAT64 sessions ([`Conn::nat64`]); when
    /// not, the dataplane makes none there (the asks are still granted).
    fn nat64_edits(&self) -> bool {
        false
    }

    /// [`Contract::framing`] knowing the connection (its policy: the start of a
    /// message the policy may refuse is held for the rest too).
    fn framing_in(&self, buf: &[u8], conn: &Conn<'_>) -> Framing {
        self.framing(buf, &conn.ctx)
    }

    /// [`Contract::plan`] knowing the connection.
    fn plan_in(&self, msg: &[u8], conn: &Conn<'_>, plan: &mut Plan) {
        self.plan(msg, &conn.ctx, plan)
    }

    /// [`Contract::edits`] knowing the connection.
    fn edits_in(
        &self,
        msg: &[u8],
        conn: &Conn<'_>,
        plan: &Plan,
        grants: &[Grant],
        edits: &mut Edits,
    ) -> Result<(), EditError> {
        self.edits(msg, &conn.ctx, plan, grants, edits)
    }

    /// The connection's state after the message (in the stream engine, in order),
    /// its events noted in `notes`.
    fn advance(&self, _msg: &[u8], conn: &Conn<'_>, _notes: &mut Notes) -> State {
        conn.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_apply_in_order_and_keep_or_change_the_length() {
        let mut e = Edits::default();
        e.push(0, 3, b"xyz").unwrap();
        e.push(4, 1, b"12").unwrap();
        assert_eq!(e.push(4, 1, b"no"), Err(EditError::Misplaced));
        assert_eq!(e.delta(), 1);
        assert!(!e.keep_length());
        let mut out = [0u8; 16];
        let n = e.apply_into(b"abc d e", &mut out).unwrap();
        assert_eq!(&out[..n], b"xyz 12 e");
        assert_eq!(e.apply_into(b"abc d e", &mut out[..4]), None);
        let mut msg = *b"abc d e";
        assert_eq!(e.apply_in_place(&mut msg), Err(EditError::Misplaced));

        let mut same = Edits::default();
        same.push(2, 2, b"ZZ").unwrap();
        let mut msg = *b"abcdef";
        same.apply_in_place(&mut msg).unwrap();
        assert_eq!(&msg, b"abZZef");
        assert_eq!(
            same.push(6, 1, &[0u8; MAX_EDIT + 1]),
            Err(EditError::TooMany)
        );
    }

    /// An ALG with none of the provided methods: the `*_in` ones are its plain ones,
    /// it keeps no state, refuses nothing and makes no NAT64 edits.
    struct Plain;

    impl Contract for Plain {
        fn framing(&self, buf: &[u8], _: &Ctx) -> Framing {
            Framing::Whole(buf.len())
        }
        fn plan(&self, msg: &[u8], ctx: &Ctx, plan: &mut Plan) {
            plan.push(Ask::Lookup {
                kind: Kind::Tcp,
                outside: (0, msg.len() as u16 + ctx.remote.1),
            });
            plan.notes.note(1);
        }
        fn edits(
            &self,
            msg: &[u8],
            _: &Ctx,
            _: &Plan,
            grants: &[Grant],
            edits: &mut Edits,
        ) -> Result<(), EditError> {
            if let Some(Grant::To(_)) = grants.first() {
                edits.push(0, msg.len(), b"x")?;
            }
            Ok(())
        }
    }

    #[test]
    fn the_provided_methods_leave_an_alg_without_them_as_it_was() {
        let ctx = Ctx {
            dir: Dir::FromInside,
            inside: (1, 2),
            outside: (3, 4),
            remote: (5, 6),
            datagram: false,
        };
        let deny = ["PORT".to_string()];
        let conn = Conn {
            nat64: true,
            state: 3,
            policy: Policy {
                deny: &deny,
                ..Policy::default()
            },
            ..Conn::of(ctx)
        };
        let c: &dyn Contract = &Plain;
        assert_eq!(c.framing_in(b"abc", &conn), Framing::Whole(3));
        let mut plan = Plan::default();
        c.plan_in(b"abc", &conn, &mut plan);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan.notes.iter().collect::<Vec<_>>(), [(1, 1)]);
        let mut e = Edits::default();
        c.edits_in(b"abc", &conn, &plan, &[Grant::To((1, 1))], &mut e)
            .unwrap();
        assert_eq!(e.len(), 1);
        assert!(e.notes.is_empty());
        let mut reply = Reply::default();
        assert!(!c.refuse(b"PORT 1,2,3,4,5,6", &conn, &|_| true, &mut reply));
        assert!(reply.bytes().is_empty());
        let mut notes = Notes::default();
        assert_eq!(c.advance(b"abc", &conn, &mut notes), 3);
        assert!(notes.is_empty());
        assert!(!c.stateful() && !c.nat64_edits() && c.events().is_empty());
    }

    #[test]
    fn notes_count_each_event_and_ignore_the_unknown() {
        let mut n = Notes::default();
        n.note(0);
        n.note(0);
        n.note(MAX_NOTES - 1);
        n.note(MAX_NOTES);
        assert_eq!((n.get(0), n.get(1), n.get(MAX_NOTES - 1)), (2, 0, 1));
        assert_eq!(n.get(MAX_NOTES), 0);
        assert_eq!(n.iter().count(), 2);
    }

    #[test]
    fn only_address_free_edits_are_kept_for_nat64() {
        let mut e = Edits::default();
        e.push(0, 3, b"1.2.3.4").unwrap();
        e.push_address_free(4, 4, b"2000").unwrap();
        e.push(9, 1, b"x").unwrap();
        assert_eq!(e.retain_address_free(), 2);
        assert_eq!(e.len(), 1);
        let only = e.iter().next().unwrap();
        assert_eq!(
            (only.at, only.bytes(), only.address_free),
            (4, &b"2000"[..], true)
        );
        assert_eq!(e.retain_address_free(), 0);
    }

    #[test]
    fn a_diff_is_made_in_pieces_that_apply_to_the_new_bytes() {
        let old = b"head:192.168.1.2:tail".to_vec();
        for new in [
            b"head:198.51.100.7:tail".to_vec(),
            b"head:1.2.3.4:tail".to_vec(),
            [&b"head:"[..], &[b'x'; 3 * MAX_EDIT + 5], b":tail"].concat(),
            b"head::tail".to_vec(),
            old.clone(),
        ] {
            let mut e = Edits::default();
            e.push_diff(&old, &new).unwrap();
            let mut out = vec![0u8; new.len()];
            assert_eq!(e.apply_into(&old, &mut out), Some(new.len()));
            assert_eq!(out, new);
            assert_eq!(e.is_empty(), new == old);
        }
        let mut e = Edits::default();
        e.push_diff(b"ab", b"aXXb").unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!((e.iter().next().unwrap().at, e.delta()), (1, 2));
    }

    #[test]
    fn a_reply_is_bounded() {
        let mut r = Reply::default();
        assert!(r.push(b"RTSP/1.0 405"));
        assert!(!r.push(&[b'x'; MAX_REPLY]));
        assert_eq!(r.bytes(), b"RTSP/1.0 405");
    }

    #[test]
    fn a_plan_is_bounded_and_counts_what_did_not_fit() {
        let mut p = Plan::default();
        let a = Ask::Lookup {
            kind: Kind::Tcp,
            outside: (0, 1),
        };
        for _ in 0..MAX_ASKS {
            assert!(p.push(a));
        }
        assert!(!p.push(a));
        assert_eq!((p.len(), p.over), (MAX_ASKS, 1));
        p.clear();
        assert!(p.is_empty());
    }
}
