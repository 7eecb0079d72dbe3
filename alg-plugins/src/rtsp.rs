//! RTSP (RFC 2326): a strict, bounded parser for requests and replies and for the
//! Transport header (section 12.39), the endpoints it carries, and their rewrite:
//! `client_port` (one port or a range) and `destination` in a SETUP, the same in its
//! reply; `server_port` and `source` name the server and stay as they are. Interleaved
//! transport (RTP over the RTSP connection, `RTP/AVP/TCP;interleaved=`) opens nothing.

use crate::contract::{
    self, Ask, Conn, Contract, Ctx, Dir, EditError, Edits, Framing, Grant, Notes, Reply,
};
use crate::contract::{Edit, MAX_EDITS};
use crate::text::{self, List, Message, TextError};
use std::net::Ipv4Addr;
use std::ops::Range;

/// A request's method, as far as the ALG cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// SETUP: carries the client's ports.
    Setup,
    /// TEARDOWN: ends the session.
    Teardown,
    /// Anything else.
    Other,
}

/// A request or a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A request.
    Request(Method),
    /// A reply with its status code.
    Reply(u16),
}

/// A parsed RTSP message.
#[derive(Clone, Debug)]
pub struct Msg {
    /// The framing.
    pub msg: Message,
    /// Request or reply.
    pub kind: Kind,
    /// The session identifier (Session header, without its parameters).
    pub session: Option<Range<usize>>,
}

fn start_ok(l: &[u8]) -> bool {
    if let Some(rest) = l.strip_prefix(b"RTSP/1.0 ") {
        return rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit);
    }
    let mut it = l.splitn(3, |&b| b == b' ');
    let (Some(m), Some(u), Some(v)) = (it.next(), it.next(), it.next()) else {
        return false;
    };
    !m.is_empty()
        && m.iter().all(|b| b.is_ascii_uppercase() || *b == b'_')
        && !u.is_empty()
        && v == b"RTSP/1.0"
}

/// What is at the start of an RTSP stream.
// A message keeps its headers in place (no allocation per message), so it is large;
// boxing it would allocate, and a frame lives on the stack only while it is read.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Frame {
    /// A message.
    Message(Msg),
    /// Interleaved binary data (`$`, channel, 16-bit length): this many bytes.
    Interleaved(usize),
}

/// Parses what starts `buf` on an RTSP connection: `Ok(None)` when it is not complete.
pub fn parse(buf: &[u8]) -> Result<Option<Frame>, TextError> {
    if buf.first() == Some(&b'$') {
        if buf.len() < 4 {
            return Ok(None);
        }
        let n = 4 + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        return Ok((buf.len() >= n).then_some(Frame::Interleaved(n)));
    }
    let Some(msg) = text::parse(buf, false, start_ok)? else {
        return Ok(None);
    };
    let sl = &buf[msg.start_line.clone()];
    let kind = if let Some(rest) = sl.strip_prefix(b"RTSP/1.0 ") {
        let code = std::str::from_utf8(&rest[..3])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|c| (100..700).contains(c))
            .ok_or(TextError::NotThisProtocol)?;
        Kind::Reply(code)
    } else {
        let sp = sl.iter().position(|&b| b == b' ').unwrap_or(0);
        Kind::Request(match &sl[..sp] {
            b"SETUP" => Method::Setup,
            b"TEARDOWN" => Method::Teardown,
            _ => Method::Other,
        })
    };
    let session = msg.value(buf, "Session", None).map(|r| {
        let end = buf[r.clone()]
            .iter()
            .position(|&b| b == b';')
            .map_or(r.end, |i| r.start + i);
        text::trim(buf, r.start..end)
    });
    Ok(Some(Frame::Message(Msg { msg, kind, session })))
}

/// One transport specification of a Transport header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spec {
    /// UDP (RTP/AVP or RTP/AVP/UDP), not TCP interleaved.
    pub udp: bool,
    /// Multicast asked for.
    pub multicast: bool,
    /// `client_port`: the text of each port and its value (one or two).
    pub client: List<(Range<usize>, u16), 2>,
    /// `destination`: its text and address (None if it is not an IPv4 literal).
    pub destination: Option<(Range<usize>, Option<Ipv4Addr>)>,
    /// `source` (a reply's media source).
    pub source: Option<Ipv4Addr>,
    /// `server_port` values.
    pub server: List<u16, 2>,
}

/// Most transport specifications read of a message (all its Transport headers
/// together); more are not kept ([`List::over`]): a SETUP's are counted as asks that
/// did not fit (`too_many_asks`), and every one left as written.
pub const MAX_TRANSPORTS: usize = 16;

/// Why a Transport header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// A port is not a number, out of range, or the range is reversed or too wide.
    BadPort,
}

/// The specifications of every Transport header of `m` (the first
/// [`MAX_TRANSPORTS`]; every one is read for its ports' errors).
pub fn transports(buf: &[u8], m: &Msg) -> Result<List<Spec, MAX_TRANSPORTS>, TransportError> {
    let mut out = List::default();
    for v in m.msg.values(buf, "Transport", None) {
        for part in text::split_commas(buf, v) {
            let semi = buf[part.clone()]
                .iter()
                .position(|&b| b == b';')
                .map_or(part.end, |i| part.start + i);
            let proto = &buf[part.start..semi];
            let mut s = Spec {
                udp: !proto.ends_with(b"/TCP"),
                ..Spec::default()
            };
            for (n, val) in text::params(buf, semi..part.end) {
                let name = &buf[n];
                if name.eq_ignore_ascii_case(b"multicast") {
                    s.multicast = true;
                } else if name.eq_ignore_ascii_case(b"interleaved") {
                    s.udp = false;
                } else if name.eq_ignore_ascii_case(b"client_port") {
                    s.client = port_range(buf, val)?;
                } else if name.eq_ignore_ascii_case(b"server_port") {
                    for (_, p) in port_range(buf, val)?.iter() {
                        let _ = s.server.push(*p);
                    }
                } else if name.eq_ignore_ascii_case(b"destination") {
                    s.destination = Some((val.clone(), text::ipv4(&buf[val])));
                } else if name.eq_ignore_ascii_case(b"source") {
                    s.source = text::ipv4(&buf[val]);
                }
            }
            let _ = out.push(s);
        }
    }
    Ok(out)
}

/// `a` or `a-b`, with b = a + 1 or a itself, or b > a within 16 ports.
fn port_range(buf: &[u8], r: Range<usize>) -> Result<List<(Range<usize>, u16), 2>, TransportError> {
    let mut out = List::default();
    let v = &buf[r.clone()];
    match v.iter().position(|&b| b == b'-') {
        None => {
            let p = text::port(v).ok_or(TransportError::BadPort)?;
            out.push((r, p));
            Ok(out)
        }
        Some(d) => {
            let a = text::port(&v[..d]).ok_or(TransportError::BadPort)?;
            let b = text::port(&v[d + 1..]).ok_or(TransportError::BadPort)?;
            if b < a || b - a > 16 {
                return Err(TransportError::BadPort);
            }
            out.push((r.start..r.start + d, a));
            out.push((r.start + d + 1..r.end, b));
            Ok(out)
        }
    }
}

/// A stream a SETUP asks for: the client's RTP and RTCP ports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    /// RTP port.
    pub rtp: u16,
    /// RTCP port (the range's end, else RTP + 1).
    pub rtcp: u16,
}

/// What a SETUP from `host` asks the NAT for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Streams to the client over UDP (its `over`: specifications past
    /// [`MAX_TRANSPORTS`], not read).
    pub streams: List<Stream, MAX_TRANSPORTS>,
    /// Specifications that name another host as destination (opened for nobody).
    pub elsewhere: usize,
}

/// The plan of a SETUP from `host` (nothing for other messages and for interleaved
/// or multicast transport).
pub fn plan(buf: &[u8], m: &Msg, host: Ipv4Addr) -> Result<Plan, TransportError> {
    let mut p = Plan::default();
    if m.kind != Kind::Request(Method::Setup) {
        return Ok(p);
    }
    let specs = transports(buf, m)?;
    p.streams.over = specs.over;
    for s in specs.iter() {
        if !s.udp || s.multicast || s.client.is_empty() {
            continue;
        }
        if let Some((_, d)) = &s.destination {
            if *d != Some(host) {
                p.elsewhere += 1;
                continue;
            }
        }
        let rtp = s.client[0].1;
        let rtcp = s.client.get(1).map_or(rtp.wrapping_add(1), |x| x.1);
        if rtp == 0 {
            continue;
        }
        let _ = p.streams.push(Stream { rtp, rtcp });
    }
    Ok(p)
}

/// The edits that replace address `from` by `to` in `destination`, and the client ports
/// by `port` (None: leave it), in every Transport header of `m`, in order (the port
/// edits address-free). More than [`MAX_EDITS`]: counted in the list's `over`.
pub fn rewrite(
    buf: &[u8],
    m: &Msg,
    from: Ipv4Addr,
    to: Ipv4Addr,
    port: &dyn Fn(u16) -> Option<u16>,
) -> Result<List<Edit, MAX_EDITS>, TransportError> {
    let mut edits = List::default();
    for s in transports(buf, m)?.iter() {
        if let Some((r, Some(a))) = &s.destination {
            if *a == from {
                push(&mut edits, r.start, r.len(), format_args!("{to}"), false);
            }
        }
        if let Some((_, Some(a))) = &s.destination {
            if *a != from {
                continue;
            }
        }
        if !s.udp {
            continue;
        }
        for (r, p) in s.client.iter() {
            if let Some(np) = port(*p) {
                if np != *p {
                    push(&mut edits, r.start, r.len(), format_args!("{np}"), true);
                }
            }
        }
    }
    edits.sort_unstable_by_key(|e| e.at);
    Ok(edits)
}

/// Adds the edit of `len` bytes at `at` by the text `with` (an address or a port).
fn push(
    edits: &mut List<Edit, MAX_EDITS>,
    at: usize,
    len: usize,
    with: std::fmt::Arguments<'_>,
    address_free: bool,
) {
    match text::text::<16>(with).and_then(|t| Edit::new(at, len, t.bytes())) {
        Some(mut e) => {
            e.address_free = address_free;
            let _ = edits.push(e);
        }
        None => edits.over += 1,
    }
}

/// The RTSP ALG on the ALG [`Contract`]: a SETUP's UDP client ports are announced as an
/// RTP/RTCP pair (class `rtsp_media`, in the group of the SETUP's Session when it has
/// one) and rewritten with their translation, a `destination` naming the subscriber
/// with its pool address; the server's reply gets the ports (and `destination`) back,
/// and its Session groups the media the SETUP opened (its `source`, when named, is the
/// only peer the media comes from); TEARDOWN ends the group. Interleaved binary frames
/// (`$`) are passed untouched, and so is a message whose head is whole (only heads are
/// rewritten, and a sender waiting for its body must not be stalled). Port edits are
/// address-free: an IPv6 host over NAT64 gets them as a NAT44 one does.
///
/// It reads with the parsers above ([`parse`], [`transports`]), which keep their
/// header and transport lists in place ([`text::List`], [`MAX_TRANSPORTS`]): it
/// allocates nothing per message (`alg-plugins/tests/no_alloc.rs`).
pub struct Rtsp;

/// The methods of RFC 2326 a server may allow (the `Allow` of a refusal).
const METHODS: [&str; 10] = [
    "OPTIONS",
    "DESCRIBE",
    "ANNOUNCE",
    "SETUP",
    "PLAY",
    "PAUSE",
    "TEARDOWN",
    "GET_PARAMETER",
    "SET_PARAMETER",
    "RECORD",
];

/// The message that is all of `msg`, if it parses.
fn whole(msg: &[u8]) -> Option<Msg> {
    match parse(msg) {
        Ok(Some(Frame::Message(m))) => Some(m),
        _ => None,
    }
}

/// The group of a message: the hash of its Session identifier (0: none).
fn group(msg: &[u8], m: &Msg) -> u32 {
    m.session.clone().map_or(0, |r| text::tag(&msg[r]))
}

/// [`Rtsp`]'s own events ([`Contract::events`]), by index.
mod ev {
    pub const NO_PINHOLE: usize = 0;
    pub const PINHOLE_REFUSED: usize = 1;
}

/// The names of [`Rtsp`]'s own events (the dataplane's RTSP counters of those names):
/// a SETUP whose Transport names no client port the ALG can read (`no_pinhole`), and
/// a stream's announce the NAT refused (`pinhole_refused`: no port, table full).
const EVENTS: [&str; 2] = ["no_pinhole", "pinhole_refused"];

impl Contract for Rtsp {
    fn events(&self) -> &'static [&'static str] {
        &EVENTS
    }

    fn granted(&self, plan: &contract::Plan, grants: &[Grant], conn: &Conn<'_>, notes: &mut Notes) {
        for (a, g) in plan.asks().zip(grants) {
            if let (Ask::Announce { kind, inside, .. }, Grant::Refused) = (a, g) {
                // Another host's stream (counted `elsewhere`) and a media pair below
                // `min_media_port` (counted `low_media_port`) are refused by the
                // dataplane on its own account, not by the NAT.
                let low = *kind == contract::Kind::UdpPair && inside.1 < conn.policy.min_media_port;
                if inside.0 == conn.ctx.inside.0 && !low {
                    notes.note(ev::PINHOLE_REFUSED);
                }
            }
        }
    }

    fn framing(&self, buf: &[u8], _ctx: &Ctx) -> Framing {
        match parse(buf) {
            Ok(Some(Frame::Interleaved(n))) => Framing::Skip(n),
            Ok(Some(Frame::Message(m))) => Framing::Whole(m.msg.len),
            // Held only while its head is unfinished; never interleaved data.
            Ok(None) if buf.first() != Some(&b'$') && !buf.windows(4).any(|w| w == b"\r\n\r\n") => {
                Framing::More
            }
            // Interleaved data or a body cut short, or bytes that are no RTSP: the rest
            // goes as it is.
            _ => Framing::Skip(buf.len()),
        }
    }

    fn plan(&self, msg: &[u8], ctx: &Ctx, plan: &mut contract::Plan) {
        let Some(m) = whole(msg) else { return };
        let session = group(msg, &m);
        plan.group = session;
        match (ctx.dir, m.kind) {
            (Dir::FromInside, Kind::Request(Method::Teardown)) => {
                plan.push(Ask::EndGroup { group: session });
            }
            (Dir::FromInside, Kind::Request(Method::Setup)) => {
                let Ok(specs) = transports(msg, &m) else {
                    // A client port that is no port: nothing to open.
                    plan.notes.note(ev::NO_PINHOLE);
                    return;
                };
                // Specifications not read: asks that did not fit.
                plan.over += specs.over;
                for s in specs.iter() {
                    if !s.udp || s.multicast || s.client.is_empty() || s.client[0].1 == 0 {
                        continue;
                    }
                    // Another host's destination: announced for it, opened for nobody.
                    let addr = match &s.destination {
                        None => ctx.inside.0,
                        Some((_, d)) => d.map_or(0, u32::from),
                    };
                    let (rtp, rtcp) = (s.client[0].1, s.client.get(1).map(|x| x.1));
                    match rtcp {
                        // `a-b` with b not a's neighbour: each port is announced on its
                        // own, so both are translated and opened.
                        Some(b) if b != rtp && b != rtp.wrapping_add(1) => {
                            for port in [rtp, b] {
                                plan.push(Ask::Announce {
                                    kind: contract::Kind::Udp,
                                    inside: (addr, port),
                                    class: crate::class::RTSP_MEDIA,
                                    from: None,
                                });
                            }
                        }
                        _ => {
                            plan.push(Ask::Announce {
                                kind: contract::Kind::UdpPair,
                                inside: (addr, rtp),
                                class: crate::class::RTSP_MEDIA,
                                from: None,
                            });
                        }
                    }
                }
            }
            (Dir::FromOutside, _) => {
                let specs = transports(msg, &m).unwrap_or_default();
                plan.over += specs.over;
                for s in specs.iter() {
                    for (_, p) in s.client.iter() {
                        plan.push(Ask::Lookup {
                            kind: contract::Kind::Udp,
                            outside: (0, *p),
                        });
                    }
                }
                let source = specs.iter().find_map(|x| x.source).map(u32::from);
                if session != 0 || source.is_some() {
                    plan.push(Ask::Regroup {
                        group: session,
                        source,
                    });
                }
            }
            _ => {}
        }
    }

    fn edits(
        &self,
        msg: &[u8],
        ctx: &Ctx,
        plan: &contract::Plan,
        grants: &[Grant],
        edits: &mut Edits,
    ) -> Result<(), EditError> {
        let Some(m) = whole(msg) else { return Ok(()) };
        let Ok(specs) = transports(msg, &m) else {
            return Ok(());
        };
        let (from, to) = match ctx.dir {
            Dir::FromInside => (ctx.inside.0, ctx.outside.0),
            Dir::FromOutside => (ctx.outside.0, ctx.inside.0),
        };
        // What a client port the asks named becomes (an announced pair's RTCP port is
        // the one after its RTP port, on both sides).
        let port = |p: u16| {
            plan.asks().zip(grants).find_map(|(a, g)| match (*a, *g) {
                (Ask::Announce { inside, kind, .. }, Grant::To(o)) => {
                    if inside.1 == p {
                        Some(o.1)
                    } else if kind == contract::Kind::UdpPair && inside.1.wrapping_add(1) == p {
                        Some(o.1.wrapping_add(1))
                    } else {
                        None
                    }
                }
                (Ask::Lookup { outside, .. }, Grant::To(i)) if outside.1 == p => Some(i.1),
                _ => None,
            })
        };
        let mut out = List::<Edit, MAX_EDITS>::default();
        for s in specs.iter() {
            match &s.destination {
                Some((r, Some(a))) if u32::from(*a) == from => {
                    let to = Ipv4Addr::from(to);
                    push(&mut out, r.start, r.len(), format_args!("{to}"), false);
                }
                Some(_) => continue,
                None => {}
            }
            if !s.udp {
                continue;
            }
            for (r, p) in s.client.iter() {
                match port(*p) {
                    Some(np) if np != *p => {
                        push(&mut out, r.start, r.len(), format_args!("{np}"), true)
                    }
                    _ => {}
                }
            }
        }
        if out.over > 0 {
            return Err(EditError::TooMany);
        }
        out.sort_unstable_by_key(|e| e.at);
        for e in out.iter() {
            edits.add(e)?;
        }
        Ok(())
    }

    fn refuse(
        &self,
        msg: &[u8],
        conn: &Conn<'_>,
        denied: &dyn Fn(&[u8]) -> bool,
        reply: &mut Reply,
    ) -> bool {
        if conn.ctx.dir != Dir::FromInside {
            return false;
        }
        let Some(m) = whole(msg) else { return false };
        let method = &msg[..msg.iter().position(|&b| b == b' ').unwrap_or(0)];
        if !matches!(m.kind, Kind::Request(_)) || !denied(method) {
            return false;
        }
        reply.push(b"RTSP/1.0 405 Method Not Allowed\r\n");
        if let Some(v) = m.msg.value(msg, "CSeq", None) {
            reply.push(b"CSeq: ");
            reply.push(&msg[v]);
            reply.push(b"\r\n");
        }
        reply.push(b"Allow: ");
        let mut first = true;
        for a in METHODS.iter().filter(|a| !denied(a.as_bytes())) {
            if !first {
                reply.push(b", ");
            }
            first = false;
            reply.push(a.as_bytes());
        }
        reply.push(b"\r\n\r\n");
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `b` with the edits `e` made.
    fn applied(b: &[u8], e: &[Edit]) -> Vec<u8> {
        let mut all = Edits::default();
        for x in e {
            all.add(x).unwrap();
        }
        let mut out = vec![0u8; b.len() + 64 * all.len()];
        let n = all.apply_into(b, &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn msg(b: &[u8]) -> Msg {
        match parse(b).unwrap().unwrap() {
            Frame::Message(m) => m,
            Frame::Interleaved(_) => panic!("not a message"),
        }
    }

    #[test]
    fn setup_plan_and_rewrite() {
        let b = b"SETUP rtsp://10.2.2.2:8554/t RTSP/1.0\r\nCSeq: 4\r\nTransport: RTP/AVP;unicast;client_port=55664-55665\r\n\r\n";
        let m = msg(b);
        assert_eq!(m.kind, Kind::Request(Method::Setup));
        let host = Ipv4Addr::new(10, 1, 1, 10);
        let p = plan(b, &m, host).unwrap();
        assert_eq!(
            p.streams[..],
            [Stream {
                rtp: 55664,
                rtcp: 55665
            }]
        );
        let e = rewrite(b, &m, host, Ipv4Addr::new(198, 51, 100, 1), &|p| {
            Some(p - 55664 + 2000)
        })
        .unwrap();
        let out = String::from_utf8(applied(b, &e)).unwrap();
        assert!(out.contains("client_port=2000-2001\r\n"), "{out}");
        // The reply: the client's ports back, the server's left alone.
        let r = b"RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: 8c30e1;timeout=60\r\nTransport: RTP/AVP/UDP;unicast;client_port=2000-2001;server_port=58547-58548;source=10.2.2.2\r\n\r\n";
        let m = msg(r);
        assert_eq!(&r[m.session.clone().unwrap()], b"8c30e1");
        let e = rewrite(r, &m, Ipv4Addr::new(198, 51, 100, 1), host, &|p| {
            Some(p + 55664 - 2000)
        })
        .unwrap();
        let out = String::from_utf8(applied(r, &e)).unwrap();
        assert!(out.contains("client_port=55664-55665;server_port=58547-58548;source=10.2.2.2"));
    }

    fn ctx(dir: Dir) -> Ctx {
        Ctx {
            dir,
            inside: (u32::from(Ipv4Addr::new(10, 1, 1, 10)), 41000),
            outside: (u32::from(Ipv4Addr::new(198, 51, 100, 1)), 1024),
            remote: (u32::from(Ipv4Addr::new(10, 2, 2, 2)), 554),
            datagram: false,
        }
    }

    /// Plans `b`, grants with `grant`, applies the edits.
    fn run(b: &[u8], c: &Ctx, grant: impl Fn(&Ask) -> Grant) -> (contract::Plan, String) {
        let mut p = contract::Plan::default();
        Rtsp.plan(b, c, &mut p);
        let g: Vec<Grant> = p.asks().map(grant).collect();
        let mut e = Edits::default();
        Rtsp.edits(b, c, &p, &g, &mut e).unwrap();
        let mut out = vec![0u8; b.len() + 64];
        let n = e.apply_into(b, &mut out).unwrap();
        (p, String::from_utf8(out[..n].to_vec()).unwrap())
    }

    /// A client port that is no port notes `no_pinhole`; a refused announce of the
    /// subscriber's own pair notes `pinhole_refused`, but not another host's or a pair
    /// below `min_media_port` (the dataplane's refusals, counted on their own).
    #[test]
    fn unreadable_ports_and_the_nats_refusals_are_noted() {
        let c = ctx(Dir::FromInside);
        let bad = b"SETUP rtsp://s/t RTSP/1.0\r\nTransport: RTP/AVP;client_port=5x-6\r\n\r\n";
        let mut p = contract::Plan::default();
        Rtsp.plan(bad, &c, &mut p);
        assert!(p.is_empty());
        assert_eq!(p.notes.iter().collect::<Vec<_>>(), [(ev::NO_PINHOLE, 1)]);
        assert_eq!(EVENTS[ev::NO_PINHOLE], "no_pinhole");

        let b = b"SETUP rtsp://s/t RTSP/1.0\r\nTransport: RTP/AVP;client_port=4000-4001,RTP/AVP;destination=10.9.9.9;client_port=4002-4003,RTP/AVP;client_port=22-23\r\n\r\n";
        let mut p = contract::Plan::default();
        Rtsp.plan(b, &c, &mut p);
        assert_eq!(p.len(), 3);
        assert!(p.notes.is_empty());
        let mut conn = Conn::of(c);
        conn.policy.min_media_port = 1024;
        let refused = [Grant::Refused; 3];
        let mut notes = Notes::default();
        Rtsp.granted(&p, &refused, &conn, &mut notes);
        assert_eq!(notes.iter().collect::<Vec<_>>(), [(ev::PINHOLE_REFUSED, 1)]);
        assert_eq!(EVENTS[ev::PINHOLE_REFUSED], "pinhole_refused");
        let mut notes = Notes::default();
        let granted = [Grant::To((1, 2)); 3];
        Rtsp.granted(&p, &granted, &conn, &mut notes);
        assert!(notes.is_empty());
    }

    #[test]
    fn contract_framing_holds_only_an_unfinished_head() {
        let c = ctx(Dir::FromInside);
        let setup = b"SETUP rtsp://s/t RTSP/1.0\r\nCSeq: 1\r\n\r\n";
        let mut two = setup.to_vec();
        two.extend_from_slice(b"$\x00\x00\x02ab");
        assert_eq!(Rtsp.framing(&two, &c), Framing::Whole(setup.len()));
        assert_eq!(Rtsp.framing(&two[setup.len()..], &c), Framing::Skip(6));
        assert_eq!(Rtsp.framing(&setup[..30], &c), Framing::More);
        // Interleaved data cut short, a body not all there, no RTSP: not held.
        assert_eq!(Rtsp.framing(b"$\x00\x01\x00ab", &c), Framing::Skip(6));
        let body = b"ANNOUNCE rtsp://s/t RTSP/1.0\r\nContent-Length: 10\r\n\r\nv=0";
        assert_eq!(Rtsp.framing(body, &c), Framing::Skip(body.len()));
        assert_eq!(
            Rtsp.framing(b"GET / HTTP/1.1\r\n\r\n", &c),
            Framing::Skip(18)
        );
    }

    #[test]
    fn contract_setup_announces_a_pair_and_the_reply_gets_it_back() {
        let c = ctx(Dir::FromInside);
        let b = b"SETUP rtsp://s/t RTSP/1.0\r\nCSeq: 4\r\nSession: 8c30e1\r\nTransport: RTP/AVP;unicast;destination=10.1.1.10;client_port=55664-55665\r\n\r\n";
        let (p, out) = run(b, &c, |_| Grant::To((c.outside.0, 2000)));
        assert_eq!(
            p.asks().copied().collect::<Vec<_>>(),
            vec![Ask::Announce {
                kind: contract::Kind::UdpPair,
                inside: (c.inside.0, 55664),
                class: crate::class::RTSP_MEDIA,
                from: None,
            }]
        );
        assert_eq!(p.group, text::tag(b"8c30e1"));
        assert!(
            out.contains("destination=198.51.100.1;client_port=2000-2001\r\n"),
            "{out}"
        );
        // Refused: the ports left as written, the subscriber's address still not sent.
        let out = run(b, &c, |_| Grant::Refused).1;
        assert!(
            out.contains("destination=198.51.100.1;client_port=55664-55665\r\n"),
            "{out}"
        );
        // The reply: each client port looked up, the session groups the media, whose
        // source is the server's.
        let r = b"RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: 8c30e1;timeout=60\r\nTransport: RTP/AVP/UDP;unicast;client_port=2000-2001;server_port=58547-58548;source=10.2.2.3\r\n\r\n";
        let o = ctx(Dir::FromOutside);
        let (p, out) = run(r, &o, |a| match a {
            Ask::Lookup { outside, .. } => Grant::To((o.inside.0, outside.1 - 2000 + 55664)),
            _ => Grant::To((0, 0)),
        });
        assert_eq!(
            p.asks().copied().collect::<Vec<_>>(),
            vec![
                Ask::Lookup {
                    kind: contract::Kind::Udp,
                    outside: (0, 2000)
                },
                Ask::Lookup {
                    kind: contract::Kind::Udp,
                    outside: (0, 2001)
                },
                Ask::Regroup {
                    group: text::tag(b"8c30e1"),
                    source: Some(u32::from(Ipv4Addr::new(10, 2, 2, 3))),
                },
            ]
        );
        assert!(
            out.contains("client_port=55664-55665;server_port=58547-58548;source=10.2.2.3"),
            "{out}"
        );
    }

    #[test]
    fn contract_setup_with_ports_apart_announces_each_and_rewrites_both() {
        let c = ctx(Dir::FromInside);
        let b = b"SETUP rtsp://s/t RTSP/1.0\r\nCSeq: 4\r\nTransport: RTP/AVP;unicast;client_port=6970-6974\r\n\r\n";
        let (p, out) = run(b, &c, |a| match a {
            Ask::Announce { inside, .. } => Grant::To((c.outside.0, inside.1 - 6970 + 3000)),
            _ => Grant::Refused,
        });
        let announced: Vec<_> = p
            .asks()
            .map(|a| match a {
                Ask::Announce { kind, inside, .. } => (*kind, inside.1),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            announced,
            vec![(contract::Kind::Udp, 6970), (contract::Kind::Udp, 6974)]
        );
        assert!(out.contains("client_port=3000-3004\r\n"), "{out}");
    }

    #[test]
    fn contract_port_edits_are_address_free_and_destination_is_not() {
        let c = ctx(Dir::FromInside);
        let b = b"SETUP rtsp://s/t RTSP/1.0\r\nTransport: RTP/AVP;destination=10.1.1.10;client_port=4000-4001\r\n\r\n";
        let mut p = contract::Plan::default();
        Rtsp.plan(b, &c, &mut p);
        let mut e = Edits::default();
        Rtsp.edits(b, &c, &p, &[Grant::To((c.outside.0, 2000))], &mut e)
            .unwrap();
        assert_eq!(
            e.iter().map(|x| x.address_free).collect::<Vec<_>>(),
            [false, true, true]
        );
    }

    #[test]
    fn contract_teardown_ends_the_group_and_elsewhere_is_announced_for_another_host() {
        let c = ctx(Dir::FromInside);
        let b = b"TEARDOWN rtsp://s/t RTSP/1.0\r\nCSeq: 9\r\nSession: abc\r\n\r\n";
        let (p, _) = run(b, &c, |_| Grant::Refused);
        assert_eq!(
            p.asks().copied().collect::<Vec<_>>(),
            vec![Ask::EndGroup {
                group: text::tag(b"abc")
            }]
        );
        for (t, addr) in [
            ("destination=10.9.9.9;client_port=4000-4001", 0x0a09_0909),
            ("destination=somewhere;client_port=4000-4001", 0),
        ] {
            let b = format!("SETUP rtsp://s/t RTSP/1.0\r\nTransport: RTP/AVP;{t}\r\n\r\n");
            let (p, out) = run(b.as_bytes(), &c, |_| Grant::Refused);
            assert!(
                matches!(p.asks().next(), Some(Ask::Announce { inside, .. }) if inside.0 == addr),
                "{t}"
            );
            assert_eq!(out, b);
        }
        for t in [
            "RTP/AVP/TCP;interleaved=0-1",
            "RTP/AVP;multicast;client_port=4000-4001",
            "RTP/AVP;client_port=a",
        ] {
            let b = format!("SETUP rtsp://s/t RTSP/1.0\r\nTransport: {t}\r\n\r\n");
            let (p, _) = run(b.as_bytes(), &c, |_| Grant::Refused);
            assert!(p.is_empty(), "{t}");
        }
    }

    #[test]
    fn contract_refuses_a_denied_method_with_405_and_its_cseq() {
        let c = Conn::of(ctx(Dir::FromInside));
        let deny = |m: &[u8]| m == b"RECORD" || m == b"ANNOUNCE";
        let b = b"RECORD rtsp://s/t RTSP/1.0\r\nCSeq: 7\r\n\r\n";
        let mut r = Reply::default();
        assert!(Rtsp.refuse(b, &c, &deny, &mut r));
        assert_eq!(
            r.bytes(),
            b"RTSP/1.0 405 Method Not Allowed\r\nCSeq: 7\r\nAllow: OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER, SET_PARAMETER\r\n\r\n"
        );
        let mut r = Reply::default();
        assert!(!Rtsp.refuse(b"PLAY rtsp://s/t RTSP/1.0\r\n\r\n", &c, &deny, &mut r));
        assert!(!Rtsp.refuse(b, &Conn::of(ctx(Dir::FromOutside)), &deny, &mut r));
        assert!(!Rtsp.refuse(b"RTSP/1.0 200 OK\r\n\r\n", &c, &|_| true, &mut r));
        assert!(r.bytes().is_empty());
    }

    #[test]
    fn interleaved_multicast_and_elsewhere_open_nothing() {
        let host = Ipv4Addr::new(10, 1, 1, 10);
        for t in [
            "RTP/AVP/TCP;unicast;interleaved=0-1",
            "RTP/AVP;multicast;client_port=4000-4001",
            "RTP/AVP;unicast;destination=10.9.9.9;client_port=4000-4001",
        ] {
            let b = format!("SETUP rtsp://s/t RTSP/1.0\r\nCSeq: 1\r\nTransport: {t}\r\n\r\n");
            let m = msg(b.as_bytes());
            assert!(
                plan(b.as_bytes(), &m, host).unwrap().streams.is_empty(),
                "{t}"
            );
        }
        let b = b"SETUP rtsp://s/t RTSP/1.0\r\nTransport: RTP/AVP;unicast;destination=10.1.1.10;client_port=4000\r\n\r\n";
        assert_eq!(
            plan(b, &msg(b), host).unwrap().streams[..],
            [Stream {
                rtp: 4000,
                rtcp: 4001
            }]
        );
    }

    #[test]
    fn transports_past_the_bound_are_asks_that_did_not_fit_and_left_as_written() {
        let specs: Vec<String> = (0..MAX_TRANSPORTS + 4)
            .map(|k| {
                format!(
                    "RTP/AVP;unicast;client_port={}-{}",
                    5000 + 2 * k,
                    5001 + 2 * k
                )
            })
            .collect();
        let b = format!(
            "SETUP rtsp://s/t RTSP/1.0\r\nCSeq: 1\r\nTransport: {}\r\n\r\n",
            specs.join(",")
        );
        let m = msg(b.as_bytes());
        let p = plan(b.as_bytes(), &m, Ipv4Addr::new(10, 1, 1, 10)).unwrap();
        assert_eq!((p.streams.len(), p.streams.over), (MAX_TRANSPORTS, 4));
        let c = ctx(Dir::FromInside);
        let (plan, out) = run(b.as_bytes(), &c, |a| match a {
            Ask::Announce { inside, .. } => Grant::To((0, inside.1 + 30000)),
            _ => Grant::Refused,
        });
        assert_eq!((plan.len(), plan.over), (MAX_TRANSPORTS, 4));
        let last = MAX_TRANSPORTS - 1;
        assert!(
            out.contains(&format!("client_port={}-", 35000 + 2 * last)),
            "{out}"
        );
        assert!(
            out.contains(&format!("client_port={}-", 5000 + 2 * (last + 1))),
            "{out}"
        );
    }

    #[test]
    fn bad_input() {
        let host = Ipv4Addr::new(10, 1, 1, 10);
        for t in [
            "client_port=70000-70001",
            "client_port=5-4",
            "client_port=a",
            "client_port=1000-2000",
        ] {
            let b = format!("SETUP rtsp://s/t RTSP/1.0\r\nTransport: RTP/AVP;{t}\r\n\r\n");
            assert!(plan(b.as_bytes(), &msg(b.as_bytes()), host).is_err(), "{t}");
        }
        assert!(parse(b"GET / HTTP/1.1\r\n\r\n").is_err());
        assert!(matches!(
            parse(b"SETUP rtsp://s/t RTSP/1.0\r\nCSeq: 1\r\n"),
            Ok(None)
        ));
        assert!(matches!(
            parse(b"$\x00\x00\x02ab"),
            Ok(Some(Frame::Interleaved(6)))
        ));
        assert!(matches!(parse(b"$\x00\x00\x09ab"), Ok(None)));
    }
}
