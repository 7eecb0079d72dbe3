//! The SIP ALG in the dataplane (RTSP runs on the ALG contract, `alg_contract.rs`). As
//! for FTP, the work is split by who owns what: the worker that owns the subscriber
//! and its ports reads each message of the control session for the endpoints it
//! announces, reserves their outside ports (expectations pinning mappings: an
//! RTP/RTCP pair with an even RTP port per SDP `m=` line, the registered contact for a
//! REGISTER), ends a call's pinholes on BYE, CANCEL or a final error, and tags the frame
//! with the translations; the control lcore, which sees every frame of the session in
//! order, rewrites the text with them (the one mangle helper, Content-Length fixed,
//! TCP sequence adjustment kept for both directions) and holds a TCP segment that ends
//! inside a message until the rest comes.

use crate::alg_tag::{Rewrite, Tag, MAX_REWRITES};
use crate::buf::PacketBuf;
use crate::counters::{AlgEvent, WorkerCounters};
use crate::nat::{class, ExpectReq, Nat, Session, ALG_SIP};
use crate::wire::ipv4;
use cgnat_alg::sip;
use cgnat_alg::text::{Edit, TextError};
use std::net::Ipv4Addr;

/// Incomplete messages at the end of a TCP segment, per session and direction, that
/// the worker keeps to read the message whole when the rest comes (the control lcore
/// holds the segment meanwhile).
pub struct Partials {
    slots: Vec<(u32, u8, u32, Vec<u8>)>,
    /// Media addresses of offers from outside, per (session, call): the answer's
    /// pinholes take only that address.
    offers: Vec<(u32, u32, u32)>,
}

/// Offers remembered at once.
const MAX_OFFERS: usize = 256;

/// Sessions with an incomplete message kept at once.
pub const MAX_PARTIALS: usize = 64;
/// Longest incomplete message kept.
pub const MAX_PARTIAL: usize = cgnat_alg::text::MAX_HEAD + cgnat_alg::text::MAX_BODY;

impl Default for Partials {
    fn default() -> Self {
        Partials {
            slots: Vec::with_capacity(MAX_PARTIALS),
            offers: Vec::with_capacity(MAX_OFFERS),
        }
    }
}

impl Partials {
    fn offer(&mut self, session: u32, call: u32, addr: u32) {
        if let Some(o) = self
            .offers
            .iter_mut()
            .find(|o| o.0 == session && o.1 == call)
        {
            o.2 = addr;
            return;
        }
        if self.offers.len() == MAX_OFFERS {
            self.offers.remove(0);
        }
        self.offers.push((session, call, addr));
    }

    fn offered(&self, session: u32, call: u32) -> u32 {
        self.offers
            .iter()
            .find(|o| o.0 == session && o.1 == call)
            .map_or(0, |o| o.2)
    }

    /// The unfinished text kept for this session and direction, if the segment at
    /// `seq` continues it (a retransmission of its start, or a gap, drops it: the
    /// control lcore starts over likewise). Returns it with its first byte's sequence
    /// number.
    fn take(&mut self, session: u32, dir: u8, seq: u32) -> Option<(u32, Vec<u8>)> {
        let k = self
            .slots
            .iter()
            .position(|s| s.0 == session && s.1 == dir)?;
        let (_, _, start, bytes) = self.slots.swap_remove(k);
        (start.wrapping_add(bytes.len() as u32) == seq).then_some((start, bytes))
    }

    fn keep(&mut self, session: u32, dir: u8, seq: u32, bytes: &[u8]) {
        if bytes.is_empty() || bytes.len() > MAX_PARTIAL {
            return;
        }
        if self.slots.len() == MAX_PARTIALS {
            self.slots.remove(0);
        }
        self.slots.push((session, dir, seq, bytes.to_vec()));
    }
}

fn count(c: &WorkerCounters, alg: u8, e: AlgEvent) {
    if let Some(ev) = c.text_alg_events(alg) {
        ev[e as usize].inc();
    }
}

/// The payload of the frame's UDP datagram or TCP segment, and whether it is a datagram.
pub fn payload(d: &[u8]) -> Option<(usize, usize, bool)> {
    let (l4, end, proto) = crate::mangle::l4_of(d, 14)?;
    match proto {
        ipv4::PROTO_UDP if end >= l4 + 8 => Some((l4 + 8, end, true)),
        ipv4::PROTO_TCP => {
            let (s, e) = crate::alg_tag::tcp_payload(d)?;
            Some((s, e, false))
        }
        _ => None,
    }
}

/// The messages in `text` (one for a datagram; as many as are complete for a stream)
/// and where the incomplete rest starts, if any. Stops at the first that does not
/// parse (counted in `counters` when given: the worker counts, the control lcore
/// reads the same messages again and does not); the rest then passes as it is.
fn messages<M>(
    text: &[u8],
    datagram: bool,
    parse: impl Fn(&[u8], bool) -> Result<Option<(M, usize)>, TextError>,
    counters: Option<&WorkerCounters>,
    alg: u8,
) -> (Vec<(usize, M)>, Option<usize>) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < text.len() && out.len() < 16 {
        match parse(&text[at..], datagram) {
            Ok(Some((m, len))) => {
                out.push((at, m));
                at += len.max(1);
                if datagram {
                    break;
                }
            }
            Ok(None) => return (out, Some(at)),
            Err(e) => {
                if let Some(c) = counters {
                    let what = if e == TextError::NotThisProtocol {
                        AlgEvent::NotMessage
                    } else {
                        AlgEvent::ParseErrors
                    };
                    count(c, alg, what);
                }
                break;
            }
        }
    }
    (out, None)
}

fn sip_parse(b: &[u8], datagram: bool) -> Result<Option<(sip::Sip, usize)>, TextError> {
    // Keep-alives (CRLF) between messages are not messages.
    if b.iter().all(|&c| c == b'\r' || c == b'\n') {
        return Err(TextError::NotThisProtocol);
    }
    Ok(sip::parse(b, datagram)?.map(|m| {
        let n = m.msg.len;
        (m, n)
    }))
}

/// Adds a rewrite to the tag unless it is there or the tag is full.
fn add(tag: &mut Tag, counters: &WorkerCounters, inside: (u32, u16), outside: (u32, u16)) {
    let n = usize::from(tag.n);
    if tag.rewrites[..n].iter().any(|r| r.inside == inside) {
        return;
    }
    if n == MAX_REWRITES {
        count(counters, tag.alg, AlgEvent::TooManyEndpoints);
        return;
    }
    tag.rewrites[n] = Rewrite { inside, outside };
    tag.n += 1;
}

/// The worker's part for a frame of a SIP control session: reads the messages,
/// reserves and releases pinholes, and returns the tag for the control lcore.
#[allow(clippy::too_many_arguments)]
pub fn worker<B: PacketBuf>(
    nat: &mut Nat,
    counters: &WorkerCounters,
    partials: &mut Partials,
    buf: &B,
    i: u32,
    s: &Session,
    dir: u8,
    now: u32,
) -> Tag {
    let mut tag = Tag {
        dir,
        alg: s.alg(),
        inside: (s.in_addr, s.in_port),
        remote: (s.rem_addr, s.rem_port),
        outside: (s.out_addr, s.out_port),
        nat64: crate::nat::hosts6::is_host(s.in_addr),
        ..Tag::default()
    };
    let Some((start, end, datagram)) = payload(buf.data()) else {
        return tag;
    };
    let seg = &buf.data()[start..end];
    if seg.is_empty() {
        return tag;
    }
    // The segment's sequence number (TCP): kept text must be continued exactly.
    let seq = if datagram {
        0
    } else {
        crate::wire::be32(buf.data(), crate::alg_tag::l4_at(buf.data()) + 4)
    };
    let held = if datagram {
        None
    } else {
        partials.take(i, dir, seq)
    };
    let joined;
    let (text, text_seq): (&[u8], u32) = match held {
        Some((hseq, mut h)) => {
            h.extend_from_slice(seg);
            joined = h;
            (&joined, hseq)
        }
        None => (seg, seq),
    };
    let mut ctx = Ctx {
        nat,
        offers: &mut *partials,
        counters,
        tag: &mut tag,
        i,
        s,
        now,
    };
    // A client's request the policy refuses: nothing planned for it (no pinhole).
    let refused = |nat: &Nat, mt: &[u8], len: usize| {
        let method = &mt[..mt.iter().position(|&b| b == b' ').unwrap_or(0)];
        let p = nat.params();
        dir == 0
            && !crate::nat::hosts6::is_host(s.in_addr)
            && !mt.starts_with(b"SIP/")
            && (p.sip_deny_methods.iter().any(|d| d.as_bytes() == method)
                || (p.sip_max_message_size > 0 && len > p.sip_max_message_size))
    };
    let (msgs, rest) = messages(text, datagram, sip_parse, Some(counters), s.alg());
    for (at, m) in &msgs {
        let mt = &text[*at..*at + m.msg.len];
        let len = if datagram { text.len() - at } else { m.msg.len };
        if !refused(ctx.nat, mt, len) {
            sip_message(&mut ctx, mt, m);
        }
    }
    if let Some(r) = rest {
        partials.keep(i, dir, text_seq.wrapping_add(r as u32), &text[r..]);
    }
    tag
}

/// What a message's handler works with.
struct Ctx<'a> {
    nat: &'a mut Nat,
    offers: &'a mut Partials,
    counters: &'a WorkerCounters,
    tag: &'a mut Tag,
    i: u32,
    s: &'a Session,
    now: u32,
}

fn sip_message(c: &mut Ctx, text: &[u8], m: &sip::Sip) {
    let (nat, counters, i, s, now) = (&mut *c.nat, c.counters, c.i, c.s, c.now);
    let tag = &mut *c.tag;
    count(counters, ALG_SIP, AlgEvent::Messages);
    let host = Ipv4Addr::from(s.in_addr);
    if tag.dir == 1 {
        // From outside: translations of our outside endpoints back, the remote's media
        // address narrows the call's pinholes, and the call may end.
        let out = Ipv4Addr::from(s.out_addr);
        for sp in sip::head_spots(text, m) {
            if let (Some((_, a)), Some((_, p))) = (&sp.addr, &sp.port) {
                if *a == out && *p != s.out_port {
                    if let Some((ia, ip)) = nat.inside_of(s.proto, s.out_addr, *p) {
                        add(tag, counters, (ia, ip), (s.out_addr, *p));
                    }
                }
            }
        }
        let p = sip::plan(text, m, out);
        if sip::is_sdp(text, m) {
            let d = sip::sdp(text, m.msg.body.clone());
            if let Some(remote) = d.media.first().map(|x| x.addr) {
                nat.alg_narrow(i, p.call, u32::from(remote));
                // An offer: the answer's pinholes will take only this address.
                c.offers.offer(i, p.call, u32::from(remote));
            }
        }
        if p.ends_call && nat.alg_forget(i, p.call, now) > 0 {
            count(counters, ALG_SIP, AlgEvent::Ended);
        }
        return;
    }
    let p = sip::plan(text, m, host);
    if p.sdp_problem.is_some() {
        count(counters, ALG_SIP, AlgEvent::NoPinhole);
    }
    let sig = |port: u16, class: u8, secs: u32| ExpectReq {
        proto: s.proto,
        in_addr: s.in_addr,
        in_port: port,
        remote: s.rem_addr,
        class,
        tag: p.call,
        secs,
        keep: true,
        alg: ALG_SIP,
    };
    if let Some((port, expires)) = p.register {
        if expires == 0 {
            if nat.alg_unregister(s.proto, s.in_addr, port, now) {
                count(counters, ALG_SIP, AlgEvent::Deregistrations);
            }
        } else {
            // Incoming requests to the registered contact get in while it lives.
            let secs = expires.saturating_add(30).min(86_400);
            match nat.alg_expect_with(i, &sig(port, class::SIP_REGISTER, secs), now) {
                Some(o) => {
                    count(counters, ALG_SIP, AlgEvent::Registrations);
                    if port != s.in_port {
                        add(tag, counters, (s.in_addr, port), o);
                    }
                }
                None => count(counters, ALG_SIP, AlgEvent::PinholeRefused),
            }
        }
    }
    for &port in &p.signal_ports {
        if port == s.in_port || p.register.is_some_and(|r| r.0 == port) {
            continue;
        }
        // A contact on another port than the session's (SIP over TCP from an
        // ephemeral port): requests in the dialog come to it until the call ends.
        let secs = class::TIMEOUT[class::SIP_DIALOG as usize];
        match nat.alg_expect_with(i, &sig(port, class::SIP_DIALOG, secs), now) {
            Some(o) => add(tag, counters, (s.in_addr, port), o),
            None => count(counters, ALG_SIP, AlgEvent::PinholeRefused),
        }
    }
    let min_media = nat.params().sip_min_media_port;
    for media in &p.media {
        if media.port < min_media || media.rtcp < min_media {
            // A pinhole to a privileged port of the subscriber (`m=audio 52`) from any
            // source until the answer: refused.
            count(counters, ALG_SIP, AlgEvent::LowPort);
            continue;
        }
        let req = ExpectReq {
            proto: ipv4::PROTO_UDP,
            in_addr: s.in_addr,
            in_port: media.port,
            // The offer's media address when this is the answer; any source until the
            // answer names one otherwise.
            remote: c.offers.offered(i, p.call),
            class: class::SIP_MEDIA,
            tag: p.call,
            secs: 0,
            keep: false,
            alg: 0,
        };
        match nat.alg_expect_pair(i, &req, media.rtcp, now) {
            Some((rtp, rtcp)) => {
                count(counters, ALG_SIP, AlgEvent::MediaPairs);
                add(tag, counters, (s.in_addr, media.port), rtp);
                add(tag, counters, (s.in_addr, media.rtcp), rtcp);
            }
            None => count(counters, ALG_SIP, AlgEvent::PinholeRefused),
        }
    }
    if p.ends_call && nat.alg_forget(i, p.call, now) > 0 {
        count(counters, ALG_SIP, AlgEvent::Ended);
    }
}

/// The control lcore's rewrite of the messages of a SIP payload at
/// `start..end` in `d`, with the tag's translations: the edits, with offsets from the
/// start of the payload. Also says where an incomplete message starts, if one does.
pub fn control_edits(
    d: &[u8],
    start: usize,
    end: usize,
    datagram: bool,
    tag: &Tag,
    counters: &WorkerCounters,
) -> (Vec<Edit>, Option<usize>) {
    let text = &d[start..end];
    let mut edits = Vec::new();
    let inside = Ipv4Addr::from(tag.inside.0);
    let outside = Ipv4Addr::from(tag.outside.0);
    let rw = &tag.rewrites[..usize::from(tag.n)];
    let (from, to) = if tag.dir == 0 {
        (inside, outside)
    } else {
        (outside, inside)
    };
    // A port of `from` the worker reserved, and what it becomes.
    let reserved = |p: u16| -> Option<u16> {
        rw.iter()
            .find(|r| {
                if tag.dir == 0 {
                    r.inside == (tag.inside.0, p)
                } else {
                    r.outside == (tag.outside.0, p)
                }
            })
            .map(|r| {
                if tag.dir == 0 {
                    r.outside.1
                } else {
                    r.inside.1
                }
            })
    };
    // Any port of `from`: the session's own, or a reserved one.
    let port_of = |p: u16| -> Option<u16> {
        match tag.dir {
            0 if p == tag.inside.1 => Some(tag.outside.1),
            1 if p == tag.outside.1 => Some(tag.inside.1),
            _ => reserved(p),
        }
    };
    let (msgs, rest) = messages(text, datagram, sip_parse, None, ALG_SIP);
    for (at, m) in &msgs {
        let mt = &text[*at..*at + m.msg.len];
        let ports = |role: sip::Role, p: u16| match role {
            // Media ports only from the reservations, never the session's own.
            sip::Role::Media(_) | sip::Role::Rtcp(_) => reserved(p),
            _ => port_of(p),
        };
        let t = sip::Translate {
            from,
            to,
            port: &ports,
            tokens: true,
        };
        let e = sip::rewrite(mt, m, &t);
        if !e.is_empty() {
            count(counters, ALG_SIP, AlgEvent::Rewritten);
        }
        edits.extend(e.into_iter().map(|x| Edit { at: x.at + at, ..x }));
    }
    (edits, rest)
}

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
}

/// The event that counts a policy refusal.
pub fn policy_event(drop: bool) -> AlgEvent {
    if drop {
        AlgEvent::PolicyDrop
    } else {
        AlgEvent::PolicyReply
    }
}

/// Counts an event of the SIP or RTSP ALG.
pub fn count_event(c: &WorkerCounters, alg: u8, e: AlgEvent) {
    count(c, alg, e);
}

/// Requests a policy refused: their ranges (offset, length) in the text, the
/// responses, and whether one is pipelined behind a message let through.
pub type RefusedRequests = (Vec<(usize, usize)>, Vec<u8>, bool);

/// The requests of a client's SIP text (`datagram`: one UDP datagram) that `p`
/// refuses: their ranges (offset, length), the responses for them (RFC 3261 8.2.6:
/// Via, From, To with a tag, Call-ID and CSeq copied; `Allow` with a 405; an ACK gets
/// none), and whether one follows a message let through in the same text
/// (pipelined). A datagram over `max_size` that does not parse is refused with no
/// response. None when nothing is refused. (RTSP's:
/// [`crate::alg_contract::refused_requests`].)
pub fn refused_requests(text: &[u8], datagram: bool, p: &TextPolicy) -> Option<RefusedRequests> {
    let too_big = |n: usize| p.max_size > 0 && n > p.max_size;
    let mut cut = Vec::new();
    let mut reply = Vec::new();
    let mut passed = false;
    let mut pipelined = false;
    let mut refuse = |at: usize, len: usize, r: Option<Vec<u8>>, passed: bool| {
        cut.push((at, len));
        reply.extend(r.unwrap_or_default());
        pipelined |= passed;
    };
    let (msgs, _) = messages(text, datagram, sip_parse, None, ALG_SIP);
    if msgs.is_empty() && datagram && too_big(text.len()) {
        return Some((vec![(0, text.len())], Vec::new(), false));
    }
    for (at, m) in &msgs {
        let mt = &text[*at..*at + m.msg.len];
        let len = if datagram { text.len() - at } else { m.msg.len };
        let method = &mt[..mt.iter().position(|&b| b == b' ').unwrap_or(0)];
        let denied = matches!(m.kind, sip::Kind::Request(_))
            && p.deny.iter().any(|d| d.as_bytes() == method);
        let big = matches!(m.kind, sip::Kind::Request(_)) && too_big(len);
        if denied || big {
            let (code, reason) = if big {
                (513, "Message Too Large")
            } else if p.status == 403 {
                (403, "Forbidden")
            } else {
                (405, "Method Not Allowed")
            };
            let r = (method != b"ACK").then(|| sip_response(mt, m, code, reason, &p.deny));
            refuse(*at, len, r, passed);
        } else {
            passed = true;
        }
    }
    (!cut.is_empty()).then_some((cut, reply, pipelined))
}

/// The methods of `all` not in `deny`, comma separated.
fn allowed(all: &[&str], deny: &[String]) -> String {
    all.iter()
        .filter(|m| !deny.iter().any(|d| d == *m))
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

/// A SIP response to request `mt` (RFC 3261 8.2.6): the Via, From, To, Call-ID and
/// CSeq headers copied, a To tag added when there is none, `Allow` with a 405.
fn sip_response(mt: &[u8], m: &sip::Sip, code: u16, reason: &str, deny: &[String]) -> Vec<u8> {
    let mut r = format!("SIP/2.0 {code} {reason}\r\n").into_bytes();
    for h in &m.msg.headers {
        let name = &mt[h.name.clone()];
        let is = |long: &str, short: &str| {
            name.eq_ignore_ascii_case(long.as_bytes())
                || name.eq_ignore_ascii_case(short.as_bytes())
        };
        if !(is("Via", "v")
            || is("From", "f")
            || is("To", "t")
            || is("Call-ID", "i")
            || is("CSeq", "CSeq"))
        {
            continue;
        }
        let value = &mt[h.value.clone()];
        r.extend_from_slice(name);
        r.extend_from_slice(b": ");
        r.extend_from_slice(value);
        if is("To", "t") && !value.windows(5).any(|w| w.eq_ignore_ascii_case(b";tag=")) {
            let call = m.call_id.clone().map_or(&[][..], |c| &mt[c]);
            r.extend_from_slice(format!(";tag=cgnat{:08x}", cgnat_alg::text::tag(call)).as_bytes());
        }
        r.extend_from_slice(b"\r\n");
    }
    if code == 405 {
        let allow = allowed(
            &[
                "INVITE",
                "ACK",
                "BYE",
                "CANCEL",
                "OPTIONS",
                "REGISTER",
                "PRACK",
                "SUBSCRIBE",
                "NOTIFY",
                "PUBLISH",
                "INFO",
                "REFER",
                "MESSAGE",
                "UPDATE",
            ],
            deny,
        );
        r.extend_from_slice(format!("Allow: {allow}\r\n").as_bytes());
    }
    r.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    r
}

/// Whether a TCP payload of a SIP session ends inside a message (hold it for the
/// rest: its body may need rewriting).
pub fn incomplete_tail(payload: &[u8]) -> bool {
    if payload.is_empty() || payload.len() > MAX_PARTIAL {
        return false;
    }
    messages(payload, false, sip_parse, None, ALG_SIP)
        .1
        .is_some()
}

/// An RTCP packet of a media session an ALG announced, from the inside host: a CNAME
/// naming the host's address names the outside address instead (the UDP payload is
/// rebuilt through the mangle helper; anything that does not parse goes as it is).
/// Returns the change in length.
pub fn rtcp_from_inside<B: PacketBuf>(
    buf: &mut B,
    in_addr: u32,
    out_addr: u32,
    counters: &WorkerCounters,
) -> isize {
    let Some((start, end, true)) = payload(buf.data()) else {
        return 0;
    };
    let from = Ipv4Addr::from(in_addr).to_string();
    let to = Ipv4Addr::from(out_addr).to_string();
    let Some(new) = cgnat_alg::rtcp::rewrite_cname(&buf.data()[start..end], &from, &to) else {
        return 0;
    };
    match crate::mangle::mangle(buf, 14, 0, end - start, &new) {
        Ok(d) => {
            count(counters, ALG_SIP, AlgEvent::RtcpRewritten);
            d
        }
        Err(_) => {
            count(counters, ALG_SIP, AlgEvent::NoRoom);
            0
        }
    }
}
