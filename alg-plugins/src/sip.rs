//! SIP (RFC 3261) with SDP bodies (RFC 4566, RFC 3605 `a=rtcp`): a strict, bounded
//! parser, the places where an endpoint may stand, and the rewrite of one address (and
//! its ports) into another in exactly those places:
//!
//! - Request-URI, every Via (sent-by, `received`, the address text a branch may
//!   embed; `rport` of the top one), every Contact, From, To, Route and Record-Route URI, the host
//!   part of Call-ID;
//! - SDP `o=`, `c=` (session and media level), the port of `m=` lines of audio, video,
//!   image and text media over RTP or UDPTL, and `a=rtcp`;
//! - Content-Length when the body changed.
//!
//! Nothing else changes by a byte. Which ports map where is the caller's: the worker
//! reserves them (what [`SipAlg`], the ALG's [`Contract`], asks), and the edits are made
//! with them (inline on the worker for a datagram, by its stream engine for a stream).

use crate::contract::{
    self, Ask, Conn, Contract, Ctx, Dir, EditError, Edits, Framing, Grant, Notes, Reply,
};
use crate::text::{self, List, Message, TextError};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::ops::Range;

/// SIP's port when a URI or Via names none (RFC 3261 section 19.1.2).
pub const DEFAULT_PORT: u16 = 5060;
/// SIPS's (TLS) port: the ALG stands aside for it.
pub const TLS_PORT: u16 = 5061;
/// Registration lifetime when a REGISTER names none (RFC 3261 section 10.2.1.1).
pub const DEFAULT_EXPIRES: u32 = 3600;

/// SIP methods the ALG acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// INVITE (and re-INVITE).
    Invite,
    /// ACK.
    Ack,
    /// BYE.
    Bye,
    /// CANCEL.
    Cancel,
    /// REGISTER.
    Register,
    /// UPDATE, PRACK, OPTIONS, INFO, ...
    Other,
}

impl Method {
    fn from(b: &[u8]) -> Method {
        match b {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"REGISTER" => Method::Register,
            _ => Method::Other,
        }
    }
}

/// A request or a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A request, and where its Request-URI is.
    Request(Method),
    /// A response with its status code.
    Response(u16),
}

/// A parsed SIP message.
#[derive(Clone, Debug)]
pub struct Sip {
    /// The framing.
    pub msg: Message,
    /// Request or response.
    pub kind: Kind,
    /// The Request-URI of a request.
    pub uri: Option<Range<usize>>,
    /// CSeq's method (what a response answers).
    pub cseq: Method,
    /// The Call-ID value.
    pub call_id: Option<Range<usize>>,
}

fn start_ok(l: &[u8]) -> bool {
    if let Some(rest) = l.strip_prefix(b"SIP/2.0 ") {
        return rest.len() >= 3 && rest[..3].iter().all(u8::is_ascii_digit);
    }
    let mut it = l.splitn(3, |&b| b == b' ');
    let (Some(m), Some(u), Some(v)) = (it.next(), it.next(), it.next()) else {
        return false;
    };
    !m.is_empty() && m.iter().all(u8::is_ascii_uppercase) && !u.is_empty() && v == b"SIP/2.0"
}

/// Parses the SIP message at the start of `buf` (see [`text::parse`] for `datagram`).
pub fn parse(buf: &[u8], datagram: bool) -> Result<Option<Sip>, TextError> {
    let Some(msg) = text::parse(buf, datagram, start_ok)? else {
        return Ok(None);
    };
    let sl = &buf[msg.start_line.clone()];
    let (kind, uri) = if let Some(rest) = sl.strip_prefix(b"SIP/2.0 ") {
        let code = std::str::from_utf8(&rest[..3])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|c| (100..700).contains(c))
            .ok_or(TextError::NotThisProtocol)?;
        (Kind::Response(code), None)
    } else {
        let sp1 = sl.iter().position(|&b| b == b' ').unwrap_or(0);
        let sp2 = sl.len() - b" SIP/2.0".len();
        (Kind::Request(Method::from(&sl[..sp1])), Some(sp1 + 1..sp2))
    };
    let cseq = msg
        .value(buf, "CSeq", None)
        .and_then(|r| {
            let v = &buf[r];
            let sp = v.iter().position(|&b| b == b' ')?;
            Some(Method::from(&v[text::trim(v, sp..v.len())]))
        })
        .unwrap_or(Method::Other);
    let call_id = msg.value(buf, "Call-ID", Some("i"));
    Ok(Some(Sip {
        msg,
        kind,
        uri,
        cseq,
        call_id,
    }))
}

/// What an address or port found in a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A signalling endpoint: a URI's host and port, Via's sent-by.
    Signal,
    /// Via's `received` (an address only).
    Received,
    /// Via's `rport` value (a port only, of the `received` address or of sent-by).
    Rport,
    /// SDP `o=` or `c=` (an address only).
    SdpAddress,
    /// The port of SDP media line `n`.
    Media(u8),
    /// The RTCP port of SDP media line `n` (`a=rtcp`).
    Rtcp(u8),
}

impl Default for Spot {
    fn default() -> Spot {
        Spot {
            role: Role::Signal,
            addr: None,
            port: None,
            port_at: None,
        }
    }
}

impl Default for Media {
    fn default() -> Media {
        Media {
            index: 0,
            addr: Ipv4Addr::UNSPECIFIED,
            port: 0,
            rtcp: 0,
        }
    }
}

/// One place an endpoint stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spot {
    /// What it is.
    pub role: Role,
    /// The address text and its value (for media: the address in effect, no range).
    pub addr: Option<(Option<Range<usize>>, Ipv4Addr)>,
    /// The port text and its value.
    pub port: Option<(Range<usize>, u16)>,
    /// Where a port would go if the URI names none (after the host); for a media line
    /// without `a=rtcp`, where that line would go (after the `m=` line).
    pub port_at: Option<usize>,
}

/// One media stream of an SDP body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Media {
    /// Index of its `m=` line.
    pub index: u8,
    /// Address in effect (media `c=`, else session `c=`).
    pub addr: Ipv4Addr,
    /// RTP (or UDPTL) port.
    pub port: u16,
    /// RTCP port (`a=rtcp`, else port + 1).
    pub rtcp: u16,
}

/// Why an SDP body gets no pinholes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SdpProblem {
    /// A line without `x=` shape, or a field that does not parse.
    Malformed,
    /// A field that may appear once appears twice.
    Duplicated,
    /// A stream without any `c=`.
    MissingConnection,
    /// IPv6 (or another address family): left alone.
    NotIpv4,
    /// More addresses and ports than [`MAX_SDP_SPOTS`]: the body is left as it is.
    TooMany,
}

/// Media streams and spots of an SDP body (offsets relative to `buf`).
#[derive(Clone, Debug, Default)]
pub struct Sdp {
    /// Address and port spots to rewrite.
    pub spots: List<Spot, MAX_SDP_SPOTS>,
    /// Streams that want a pinhole pair.
    pub media: List<Media, MAX_MEDIA>,
    /// Why some or all streams get none.
    pub problem: Option<SdpProblem>,
}

/// Most `m=` lines read.
pub const MAX_MEDIA: usize = 8;

/// Most places an SDP body may name an address or port ([`Sdp::spots`]): `o=`, a
/// session `c=`, and for each of [`MAX_MEDIA`] streams its `c=`, port and `a=rtcp`
/// (port and address) fit with room; a body with more is left as it is
/// ([`SdpProblem::TooMany`], counted `no_pinhole` by the SIP ALG).
pub const MAX_SDP_SPOTS: usize = 48;

/// Most words of an SDP line read (the rest are not).
const MAX_WORDS: usize = 32;

/// Reads an SDP body at `r` in `buf`.
pub fn sdp(buf: &[u8], r: Range<usize>) -> Sdp {
    let mut out = Sdp::default();
    let mut session_c: Option<Ipv4Addr> = None;
    // Per media: (index, port spot index in out.spots, media c, rtcp port, eligible)
    #[derive(Clone, Default)]
    struct M {
        port: u16,
        port_r: Range<usize>,
        c: Option<Ipv4Addr>,
        c_seen: bool,
        rtcp: Option<u16>,
        eligible: bool,
        v6: bool,
        /// Offset after the `m=` line's end.
        next: usize,
    }
    // The first MAX_MEDIA media lines; those after them get no pinhole (counted by
    // the problem), and are read into `spare`.
    let mut media: List<M, MAX_MEDIA> = List::default();
    let mut spare = M::default();
    let mut seen = 0usize;
    let mut session_v6 = false;
    let mut at = r.start;
    while at < r.end {
        let nl = buf[at..r.end]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(r.end, |i| at + i);
        let end = if nl > at && buf[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        let line = at..end;
        at = nl + 1;
        if line.is_empty() {
            continue;
        }
        let l = &buf[line.clone()];
        if l.len() < 2 || l[1] != b'=' || !l[0].is_ascii_lowercase() {
            out.problem = Some(SdpProblem::Malformed);
            out.spots.clear();
            out.media.clear();
            return out;
        }
        if out.spots.over > 0 {
            break;
        }
        let v = line.start + 2..line.end;
        let words = split_words(buf, v.clone());
        match l[0] {
            b'o' => {
                if words.len() != 6 {
                    out.problem = Some(SdpProblem::Malformed);
                    continue;
                }
                if &buf[words[4].clone()] == b"IP4" {
                    if let Some(a) = text::ipv4(&buf[words[5].clone()]) {
                        out.spots.push(Spot {
                            role: Role::SdpAddress,
                            addr: Some((Some(words[5].clone()), a)),
                            port: None,
                            port_at: None,
                        });
                    }
                }
            }
            b'c' => {
                if words.len() != 3 || &buf[words[0].clone()] != b"IN" {
                    out.problem = Some(SdpProblem::Malformed);
                    continue;
                }
                if &buf[words[1].clone()] != b"IP4" {
                    if let Some(m) = current(&mut media, &mut spare, seen) {
                        m.v6 = true;
                        m.c_seen = true;
                    } else {
                        session_v6 = true;
                    }
                    out.problem = Some(SdpProblem::NotIpv4);
                    continue;
                }
                // Address, then an optional /ttl/count for multicast.
                let w = words[2].clone();
                let slash = buf[w.clone()].iter().position(|&b| b == b'/');
                let ar = w.start..slash.map_or(w.end, |s| w.start + s);
                let Some(a) = text::ipv4(&buf[ar.clone()]) else {
                    out.problem = Some(SdpProblem::Malformed);
                    continue;
                };
                if let Some(m) = current(&mut media, &mut spare, seen) {
                    if m.c_seen {
                        out.problem = Some(SdpProblem::Duplicated);
                        m.eligible = false;
                    }
                    m.c_seen = true;
                    m.c = Some(a);
                } else {
                    if session_c.is_some() {
                        out.problem = Some(SdpProblem::Duplicated);
                        out.spots.clear();
                        out.media.clear();
                        return out;
                    }
                    session_c = Some(a);
                }
                out.spots.push(Spot {
                    role: Role::SdpAddress,
                    addr: Some((Some(ar), a)),
                    port: None,
                    port_at: None,
                });
            }
            b'm' => {
                seen += 1;
                if seen > MAX_MEDIA || words.len() < 4 {
                    out.problem = Some(SdpProblem::Malformed);
                    if !media.push(M::default()) {
                        spare = M::default();
                    }
                    continue;
                }
                let kind = &buf[words[0].clone()];
                let proto = &buf[words[2].clone()];
                let pr = words[1].clone();
                let port_text = &buf[pr.clone()];
                let (port, count_ok) = match port_text.iter().position(|&b| b == b'/') {
                    Some(s) => (text::port(&port_text[..s]), false),
                    None => (text::port(port_text), true),
                };
                let Some(port) = port else {
                    out.problem = Some(SdpProblem::Malformed);
                    media.push(M::default());
                    continue;
                };
                let udp = proto.starts_with(b"RTP/") || proto.eq_ignore_ascii_case(b"udptl");
                let wanted = matches!(kind, b"audio" | b"video" | b"image" | b"text");
                media.push(M {
                    port,
                    port_r: pr.start
                        ..pr.start + port_text.iter().take_while(|b| b.is_ascii_digit()).count(),
                    c: None,
                    c_seen: false,
                    rtcp: None,
                    eligible: udp && wanted && count_ok && port != 0,
                    v6: false,
                    next: at.min(r.end),
                });
            }
            b'a' if seen > 0 && buf[v.clone()].starts_with(b"rtcp:") => {
                let rest = v.start + 5..v.end;
                let ws = split_words(buf, rest);
                let m_i = seen - 1;
                match ws.first().and_then(|w| text::port(&buf[w.clone()])) {
                    Some(p) => {
                        if let Some(m) = current(&mut media, &mut spare, seen) {
                            m.rtcp = Some(p);
                        }
                        out.spots.push(Spot {
                            role: Role::Rtcp(m_i as u8),
                            addr: None,
                            port: Some((ws[0].clone(), p)),
                            port_at: None,
                        });
                        if ws.len() == 4 && &buf[ws[2].clone()] == b"IP4" {
                            if let Some(a) = text::ipv4(&buf[ws[3].clone()]) {
                                out.spots.push(Spot {
                                    role: Role::SdpAddress,
                                    addr: Some((Some(ws[3].clone()), a)),
                                    port: None,
                                    port_at: None,
                                });
                            }
                        }
                    }
                    None => out.problem = Some(SdpProblem::Malformed),
                }
            }
            _ => {}
        }
    }
    if out.spots.over > 0 {
        out.problem = Some(SdpProblem::TooMany);
        out.spots.clear();
        out.media.clear();
        return out;
    }
    for (i, m) in media.iter().enumerate() {
        if !m.eligible {
            continue;
        }
        if m.v6 || (m.c.is_none() && session_v6) {
            continue;
        }
        let Some(addr) = m.c.or(session_c) else {
            out.problem = Some(SdpProblem::MissingConnection);
            continue;
        };
        let rtcp = m.rtcp.unwrap_or(m.port.wrapping_add(1));
        out.media.push(Media {
            index: i as u8,
            addr,
            port: m.port,
            rtcp,
        });
        let _ = out.spots.push(Spot {
            role: Role::Media(i as u8),
            addr: Some((None, addr)),
            port: Some((m.port_r.clone(), m.port)),
            // Where an `a=rtcp` line would go if RTCP cannot be on the next port.
            port_at: m.rtcp.is_none().then_some(m.next),
        });
    }
    if out.spots.over > 0 {
        out.problem = Some(SdpProblem::TooMany);
        out.spots.clear();
        out.media.clear();
    }
    out
}

/// The media line being read (the `seen`th): one of `media`, or `spare` past them.
fn current<'m, T: Default, const N: usize>(
    media: &'m mut List<T, N>,
    spare: &'m mut T,
    seen: usize,
) -> Option<&'m mut T> {
    match seen {
        0 => None,
        n if n <= media.len() => media.get_mut(n - 1),
        _ => Some(spare),
    }
}

/// Words separated by single or repeated spaces (the first [`MAX_WORDS`]).
fn split_words(buf: &[u8], r: Range<usize>) -> List<Range<usize>, MAX_WORDS> {
    let mut out = List::default();
    let mut i = r.start;
    while i < r.end && out.len() < MAX_WORDS {
        while i < r.end && buf[i] == b' ' {
            i += 1;
        }
        let s = i;
        while i < r.end && buf[i] != b' ' {
            i += 1;
        }
        if i > s {
            out.push(s..i);
        }
    }
    out
}

/// The host and port of a SIP URI at `r` (`sip:user@host:port;params` or without user),
/// as a spot; None for other schemes, IPv6 or non-literal hosts.
fn uri_spot(buf: &[u8], r: Range<usize>) -> Option<Spot> {
    let u = &buf[r.clone()];
    let skip = if u.len() >= 4 && u[..4].eq_ignore_ascii_case(b"sip:") {
        4
    } else {
        return None;
    };
    let rest = r.start + skip..r.end;
    let end = buf[rest.clone()]
        .iter()
        .position(|&b| matches!(b, b';' | b'?' | b'>'))
        .map_or(rest.end, |i| rest.start + i);
    let at = buf[rest.start..end]
        .iter()
        .rposition(|&b| b == b'@')
        .map_or(rest.start, |i| rest.start + i + 1);
    let hp = at..end;
    let colon = buf[hp.clone()].iter().position(|&b| b == b':');
    let host = hp.start..colon.map_or(hp.end, |c| hp.start + c);
    let addr = text::ipv4(&buf[host.clone()])?;
    let port = match colon {
        Some(c) => {
            let pr = hp.start + c + 1..hp.end;
            Some((pr.clone(), text::port(&buf[pr])?))
        }
        None => None,
    };
    Some(Spot {
        role: Role::Signal,
        addr: Some((Some(host.clone()), addr)),
        port,
        port_at: Some(host.end),
    })
}

/// The URI of a name-addr or addr-spec header value (`"x" <uri>;p` or `uri;p`).
fn value_uri(buf: &[u8], r: Range<usize>) -> Range<usize> {
    let v = &buf[r.clone()];
    if let Some(lt) = v.iter().position(|&b| b == b'<') {
        let gt = v[lt..]
            .iter()
            .position(|&b| b == b'>')
            .map_or(v.len(), |g| lt + g);
        return r.start + lt + 1..r.start + gt;
    }
    let end = v.iter().position(|&b| b == b';').unwrap_or(v.len());
    r.start..r.start + end
}

/// Every place in the head of `s` an endpoint may stand (the body's are in [`sdp`]),
/// each given to `f` in order.
pub fn head_spots(buf: &[u8], s: &Sip, f: &mut dyn FnMut(Spot)) {
    if let Some(u) = &s.uri {
        if let Some(sp) = uri_spot(buf, u.clone()) {
            f(sp);
        }
    }
    for name in ["Contact", "From", "To", "Route", "Record-Route"] {
        let compact = match name {
            "Contact" => Some("m"),
            "From" => Some("f"),
            "To" => Some("t"),
            _ => None,
        };
        for v in s.msg.values(buf, name, compact) {
            for part in text::split_commas(buf, v) {
                if let Some(sp) = uri_spot(buf, value_uri(buf, part)) {
                    f(sp);
                }
            }
        }
    }
    for (k, via) in vias(buf, s).enumerate() {
        // Every Via naming the host is its own (a host that forwards to itself, or
        // a second Via added on another port): each one's sent-by and `received`
        // translate; `rport` only of the top one, the hop the NAT is on.
        via_spots(buf, via, &mut |sp| {
            if k == 0 || sp.role != Role::Rport {
                f(sp)
            }
        });
    }
}

/// Every Via value of the message, top first: each header line, each comma-separated
/// value of a line.
fn vias<'b>(buf: &'b [u8], s: &'b Sip) -> impl Iterator<Item = Range<usize>> + 'b {
    s.msg
        .values(buf, "Via", Some("v"))
        .flat_map(move |v| text::split_commas(buf, v))
}

/// Sent-by, `received` and `rport` of one Via value, each given to `f`.
fn via_spots(buf: &[u8], r: Range<usize>, f: &mut dyn FnMut(Spot)) {
    let v = &buf[r.clone()];
    // "SIP/2.0/UDP host[:port]" then parameters.
    let Some(sp) = v.iter().position(|&b| b == b' ' || b == b'\t') else {
        return;
    };
    let hs = r.start
        + sp
        + v[sp..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    let he = buf[hs..r.end]
        .iter()
        .position(|&b| b == b';' || b.is_ascii_whitespace())
        .map_or(r.end, |i| hs + i);
    let colon = buf[hs..he].iter().position(|&b| b == b':');
    let host = hs..colon.map_or(he, |c| hs + c);
    if let Some(a) = text::ipv4(&buf[host.clone()]) {
        let port = colon.and_then(|c| {
            let pr = hs + c + 1..he;
            text::port(&buf[pr.clone()]).map(|p| (pr, p))
        });
        f(Spot {
            role: Role::Signal,
            addr: Some((Some(host.clone()), a)),
            port,
            port_at: Some(host.end),
        });
    }
    for (n, val) in text::params(buf, he..r.end) {
        let name = &buf[n];
        if name.eq_ignore_ascii_case(b"received") {
            if let Some(a) = text::ipv4(&buf[val.clone()]) {
                f(Spot {
                    role: Role::Received,
                    addr: Some((Some(val), a)),
                    port: None,
                    port_at: None,
                });
            }
        } else if name.eq_ignore_ascii_case(b"rport") && !val.is_empty() {
            if let Some(p) = text::port(&buf[val.clone()]) {
                f(Spot {
                    role: Role::Rport,
                    addr: None,
                    port: Some((val, p)),
                    port_at: None,
                });
            }
        }
    }
}

/// Ranges of text `needle` within the Call-ID host part and every Via's branch:
/// opaque tokens that often embed the host's address (RFC 3261 sections 8.1.1.4,
/// 8.1.1.7), each given to `f`.
fn token_hits(buf: &[u8], s: &Sip, n: &[u8], f: &mut dyn FnMut(Range<usize>)) {
    // Call-ID's host part must be the address; a branch may glue it to other
    // characters (as some phones do), and is echoed back as it was sent, so any
    // occurrence is rewritten and reversed alike.
    let mut scan = |r: Range<usize>, whole: bool| {
        let mut i = r.start;
        while i + n.len() <= r.end {
            if &buf[i..i + n.len()] == n && (!whole || r.len() == n.len()) {
                f(i..i + n.len());
                i += n.len();
            } else {
                i += 1;
            }
        }
    };
    if let Some(c) = &s.call_id {
        if let Some(at) = buf[c.clone()].iter().rposition(|&b| b == b'@') {
            scan(c.start + at + 1..c.end, true);
        }
    }
    for via in vias(buf, s) {
        for (n, val) in text::params(buf, via) {
            if buf[n].eq_ignore_ascii_case(b"branch") {
                scan(val, false);
            }
        }
    }
}

/// How one address and its ports translate in one direction.
pub struct Translate<'a> {
    /// The address to replace where it stands.
    pub from: Ipv4Addr,
    /// What replaces it.
    pub to: Ipv4Addr,
    /// A port of `from` in a spot of this role: its translation (None: leave it).
    pub port: &'a dyn Fn(Role, u16) -> Option<u16>,
    /// Whether Call-ID and branch tokens are rewritten too.
    pub tokens: bool,
}

/// Most edits [`rewrite`] gathers before ordering them: twice [`contract::MAX_EDITS`]
/// (a place may be found twice, as a spot and as a token, and is edited once). More:
/// [`EditError::TooMany`], and the message goes as it was written (counted `no_room`
/// by the dataplane), as it does with more than [`contract::MAX_EDITS`] edits.
pub const MAX_PENDING: usize = 2 * contract::MAX_EDITS;

/// Edits gathered in the order they were found (that order breaks ties at an offset).
type Pending = List<(usize, contract::Edit), MAX_PENDING>;

/// Adds the edit of `len` bytes at `at` by `with` (one too long counts as one that
/// did not fit).
fn pend(p: &mut Pending, at: usize, len: usize, with: &[u8]) {
    match contract::Edit::new(at, len, with) {
        Some(e) => {
            let _ = p.push((p.len(), e));
        }
        None => p.over += 1,
    }
}

/// `args` as text of at most 32 bytes (a port, an address, an `a=rtcp` line).
fn short(args: std::fmt::Arguments<'_>) -> text::Text<32> {
    text::text(args).unwrap_or_default()
}

/// The edits that translate `s` (in `buf`) by `t`, with Content-Length fixed when the
/// body changes, written into `out` in order (none when it returns an error). The SDP
/// of a body that does not parse is left as it is.
pub fn rewrite(buf: &[u8], s: &Sip, t: &Translate, out: &mut Edits) -> Result<(), EditError> {
    let from_text = short(format_args!("{}", t.from));
    let to_text = short(format_args!("{}", t.to));
    let body = s.msg.body.clone();
    let sdp_body = is_sdp(buf, s);
    let d = if sdp_body {
        sdp(buf, body.clone())
    } else {
        Sdp::default()
    };
    // Via: `received` tells whether `rport` is about the translated address.
    let mut received_matches = false;
    let mut check = |x: &Spot| {
        received_matches |=
            x.role == Role::Received && x.addr.as_ref().is_some_and(|a| a.1 == t.from);
    };
    head_spots(buf, s, &mut |x| check(&x));
    d.spots.iter().for_each(check);
    let mut p = Pending::default();
    let to = to_text.bytes();
    head_spots(buf, s, &mut |sp| {
        spot_edits(buf, &sp, t, to, received_matches, &mut p)
    });
    for sp in d.spots.iter() {
        spot_edits(buf, sp, t, to, received_matches, &mut p);
    }
    if t.tokens {
        token_hits(buf, s, from_text.bytes(), &mut |r| {
            pend(&mut p, r.start, r.len(), to)
        });
    }
    // In offset order, the first found of each offset kept.
    p.sort_unstable_by_key(|(k, e)| (e.at, *k));
    let mut kept = 0;
    for i in 0..p.len() {
        if kept > 0 && p[kept - 1].1.at == p[i].1.at {
            continue;
        }
        p[kept] = p[i];
        kept += 1;
    }
    p.truncate(kept);
    // The body is the end of the message: whatever is at or after its start is in it.
    let grew: isize = p
        .iter()
        .filter(|(_, e)| sdp_body && e.at >= body.start)
        .map(|(_, e)| e.delta())
        .sum();
    if grew != 0 {
        if let Some(cl) = &s.msg.content_length {
            let n = (body.len() as isize + grew) as usize;
            pend(
                &mut p,
                cl.start,
                cl.len(),
                short(format_args!("{n}")).bytes(),
            );
            p.sort_unstable_by_key(|(k, e)| (e.at, *k));
        }
    }
    if p.over > 0 {
        return Err(EditError::TooMany);
    }
    for (_, e) in p.iter() {
        out.push(e.at, e.len, e.bytes())?;
    }
    Ok(())
}

/// The edits of one spot `sp` by `t` (`to`: the new address's text).
fn spot_edits(
    buf: &[u8],
    sp: &Spot,
    t: &Translate,
    to: &[u8],
    received_matches: bool,
    p: &mut Pending,
) {
    let addr_hit = sp.addr.as_ref().is_some_and(|a| a.1 == t.from);
    match sp.role {
        Role::Rport => {
            if let Some((r, old)) = &sp.port {
                if received_matches {
                    if let Some(np) = (t.port)(Role::Rport, *old) {
                        push_port(p, r.clone(), *old, np);
                    }
                }
            }
            return;
        }
        _ if !addr_hit => return,
        _ => {}
    }
    if let Some((Some(r), _)) = &sp.addr {
        pend(p, r.start, r.len(), to);
    }
    match (&sp.port, sp.port_at) {
        (Some((r, old)), at) => {
            let np = (t.port)(sp.role, *old);
            if let Some(np) = np {
                push_port(p, r.clone(), *old, np);
            }
            if let (Role::Media(i), Some(at)) = (sp.role, at) {
                // RTCP is on the next port unless said otherwise (RFC 3605): when
                // its translation is not next to RTP's, say where it is.
                let rtcp = (t.port)(Role::Rtcp(i), old.wrapping_add(1));
                if let Some(rtcp) = rtcp.filter(|&x| x != np.unwrap_or(*old).wrapping_add(1)) {
                    let eol = if at >= 2 && &buf[at - 2..at] == b"\r\n" {
                        "\r\n"
                    } else {
                        "\n"
                    };
                    pend(p, at, 0, short(format_args!("a=rtcp:{rtcp}{eol}")).bytes());
                }
            }
        }
        (None, Some(at)) if sp.role == Role::Signal => {
            if let Some(np) = (t.port)(Role::Signal, DEFAULT_PORT) {
                if np != DEFAULT_PORT {
                    pend(p, at, 0, short(format_args!(":{np}")).bytes());
                }
            }
        }
        _ => {}
    }
}

fn push_port(p: &mut Pending, r: Range<usize>, old: u16, new: u16) {
    if old != new {
        pend(p, r.start, r.len(), short(format_args!("{new}")).bytes());
    }
}

/// Whether the body is SDP (Content-Type application/sdp, or no type and `v=0`).
pub fn is_sdp(buf: &[u8], s: &Sip) -> bool {
    if s.msg.body.is_empty() {
        return false;
    }
    match s.msg.value(buf, "Content-Type", Some("c")) {
        Some(ct) => {
            let v = &buf[ct];
            v.len() >= 15 && v[..15].eq_ignore_ascii_case(b"application/sdp")
        }
        None => buf[s.msg.body.clone()].starts_with(b"v=0"),
    }
}

/// What the worker needs to know of a message from the inside host `host`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Ports of `host` named in Contact or Via other than the session's own (the
    /// first [`MAX_SIGNAL_PORTS`]; more are counted in its `over`, and the SIP ALG
    /// counts them as asks that did not fit, `too_many_asks`).
    pub signal_ports: List<u16, MAX_SIGNAL_PORTS>,
    /// Media streams of `host` wanting a pinhole pair.
    pub media: List<Media, MAX_MEDIA>,
    /// A REGISTER: the contact port and how long the registration lives (0: removed).
    pub register: Option<(u16, u32)>,
    /// The call (or registration) this message belongs to: a hash of its Call-ID.
    pub call: u32,
    /// The message ends its call: BYE, CANCEL, or a final error answer to INVITE.
    pub ends_call: bool,
    /// The SDP body had a problem (no pinholes for what it concerns).
    pub sdp_problem: Option<SdpProblem>,
}

/// Most distinct signalling ports of a plan ([`Plan::signal_ports`]): as many as a
/// contract plan has asks.
pub const MAX_SIGNAL_PORTS: usize = contract::MAX_ASKS;

/// The plan for message `s` concerning endpoints of `host`.
pub fn plan(buf: &[u8], s: &Sip, host: Ipv4Addr) -> Plan {
    let mut p = Plan {
        call: call_tag(buf, s, host),
        ..Plan::default()
    };
    head_spots(buf, s, &mut |sp| {
        if sp.role == Role::Signal && sp.addr.as_ref().is_some_and(|a| a.1 == host) {
            let port = sp.port.as_ref().map_or(DEFAULT_PORT, |x| x.1);
            if !p.signal_ports.contains(&port) {
                let _ = p.signal_ports.push(port);
            }
        }
    });
    if is_sdp(buf, s) {
        let d = sdp(buf, s.msg.body.clone());
        p.sdp_problem = d.problem;
        for m in d.media.iter().filter(|m| m.addr == host) {
            let _ = p.media.push(*m);
        }
    }
    p.ends_call = match s.kind {
        Kind::Request(Method::Bye | Method::Cancel) => true,
        Kind::Response(code) => s.cseq == Method::Invite && code >= 300,
        _ => false,
    };
    if s.kind == Kind::Request(Method::Register) {
        p.register = register(buf, s, host);
    }
    p
}

/// A call's tag: a hash of its Call-ID, without the host part when that is `host`
/// (each side of the NAT sees its own address there).
pub fn call_tag(buf: &[u8], s: &Sip, host: Ipv4Addr) -> u32 {
    let Some(c) = s.call_id.clone() else {
        return 0;
    };
    let v = &buf[c];
    match v.iter().rposition(|&b| b == b'@') {
        Some(at) if text::ipv4(&v[at + 1..]) == Some(host) => text::tag(&v[..at]),
        _ => text::tag(v),
    }
}

/// A REGISTER's binding for `host`: its contact port and lifetime (contact `expires`,
/// else the Expires header, else an hour; `Contact: *` or 0 removes it).
fn register(buf: &[u8], s: &Sip, host: Ipv4Addr) -> Option<(u16, u32)> {
    let header_expires = s
        .msg
        .value(buf, "Expires", None)
        .and_then(|r| std::str::from_utf8(&buf[r]).ok()?.parse::<u32>().ok());
    for v in s.msg.values(buf, "Contact", Some("m")) {
        if &buf[v.clone()] == b"*" {
            return Some((DEFAULT_PORT, 0));
        }
        for part in text::split_commas(buf, v) {
            let uri = value_uri(buf, part.clone());
            let Some(sp) = uri_spot(buf, uri.clone()) else {
                continue;
            };
            if sp.addr.as_ref().is_none_or(|a| a.1 != host) {
                continue;
            }
            let after = uri.end.min(part.end)..part.end;
            let expires = text::params(buf, after)
                .find(|(n, _)| buf[n.clone()].eq_ignore_ascii_case(b"expires"))
                .and_then(|(_, v)| std::str::from_utf8(&buf[v]).ok()?.parse::<u32>().ok())
                .or(header_expires)
                .unwrap_or(DEFAULT_EXPIRES);
            return Some((sp.port.map_or(DEFAULT_PORT, |x| x.1), expires));
        }
    }
    None
}

/// The SIP ALG on the ALG [`Contract`]. A datagram is one message; a stream is framed
/// by [`parse`] (keep-alives and bytes that do not parse: the rest of the text goes as
/// it is, counted `not_a_message` or `parse_errors`).
///
/// From the subscriber, a message's plan ([`plan`]) asks, in the group of its call (a
/// hash of its Call-ID, [`call_tag`]): a REGISTER's contact an [`Ask::Contact`] of
/// class `sip_register` living as long as the registration (expires + 30 s, a day at
/// most), or its end ([`Ask::End`]) when it is removed; every other contact or Via
/// port of the subscriber's but the session's own an [`Ask::Contact`] of class
/// `sip_dialog`; each SDP media stream of the subscriber's an [`Ask::Pair`] (RTP and
/// RTCP, class `sip_media`, from any source until the offer's address is known) and
/// a [`Ask::Lookup`] of its RTCP port's translation; BYE, CANCEL or a final error to
/// an INVITE end the call ([`Ask::EndGroup`]). From the peer: a lookup of each port
/// of the pool address the head names, the media address of its SDP narrows the
/// call's media ([`Ask::Narrow`]), and the call may end. The edits are
/// [`rewrite`]'s with the grants (media ports only from announces, never the
/// session's own). The request policy ([`Contract::refuse`]) answers a denied
/// method 405 (or 403) and a request over `max_message_size` 513 (RFC 3261 8.2.6).
///
/// It reads with the parsers above, which keep what they find in bounded lists in
/// place ([`text::List`]) and write numbers and addresses into buffers on the stack:
/// it allocates nothing per message (`alg-plugins/tests/no_alloc.rs`).
pub struct SipAlg;

/// [`SipAlg`]'s own events ([`Contract::events`]), by index.
mod ev {
    pub const NOT_A_MESSAGE: usize = 0;
    pub const PARSE_ERRORS: usize = 1;
    pub const NO_PINHOLE: usize = 2;
    pub const PINHOLE_REFUSED: usize = 3;
    pub const REGISTRATIONS: usize = 4;
    pub const DEREGISTRATIONS: usize = 5;
    pub const LOW_MEDIA_PORT: usize = 6;
}

/// The names of [`SipAlg`]'s own events (the dataplane's SIP counters of those names).
const EVENTS: [&str; 7] = [
    "not_a_message",
    "parse_errors",
    "no_pinhole",
    "pinhole_refused",
    "registrations",
    "deregistrations",
    "low_media_port",
];

/// The methods a refusal's `Allow` names (those not denied).
const METHODS: [&str; 14] = [
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
];

/// The message at the start of `b`; keep-alives (CR and LF only) are none.
fn message(b: &[u8], datagram: bool) -> Result<Option<Sip>, TextError> {
    if b.iter().all(|&c| c == b'\r' || c == b'\n') {
        return Err(TextError::NotThisProtocol);
    }
    parse(b, datagram)
}

/// The transport of the session (its kind of port).
fn kind_of(ctx: &Ctx) -> contract::Kind {
    if ctx.datagram {
        contract::Kind::Udp
    } else {
        contract::Kind::Tcp
    }
}

impl Contract for SipAlg {
    fn framing(&self, buf: &[u8], ctx: &Ctx) -> Framing {
        match message(buf, ctx.datagram) {
            // A datagram is one message, whatever follows its body.
            Ok(Some(_)) if ctx.datagram => Framing::Whole(buf.len()),
            Ok(Some(m)) => Framing::Whole(m.msg.len.max(1)),
            Ok(None) if !ctx.datagram => Framing::More,
            // Not SIP, or not readable: the rest goes as it is.
            _ => Framing::Skip(buf.len()),
        }
    }

    fn skipped(&self, bytes: &[u8], ctx: &Ctx) -> Option<usize> {
        match message(bytes, ctx.datagram) {
            Err(TextError::NotThisProtocol) => Some(ev::NOT_A_MESSAGE),
            Err(_) => Some(ev::PARSE_ERRORS),
            _ => None,
        }
    }

    fn hold(&self) -> usize {
        contract::MAX_HOLD
    }

    fn events(&self) -> &'static [&'static str] {
        &EVENTS
    }

    fn plan(&self, msg: &[u8], ctx: &Ctx, out: &mut contract::Plan) {
        plan_with(msg, ctx, 0, out)
    }

    fn plan_in(&self, msg: &[u8], conn: &Conn<'_>, out: &mut contract::Plan) {
        plan_with(msg, &conn.ctx, conn.policy.min_media_port, out)
    }

    fn granted(
        &self,
        plan: &contract::Plan,
        grants: &[Grant],
        _conn: &Conn<'_>,
        notes: &mut Notes,
    ) {
        for (a, g) in plan.asks().zip(grants) {
            match (a, g) {
                (Ask::Contact { class, .. }, Grant::To(_))
                    if *class == crate::class::SIP_REGISTER =>
                {
                    notes.note(ev::REGISTRATIONS)
                }
                (Ask::Contact { .. } | Ask::Pair { .. }, Grant::Refused) => {
                    notes.note(ev::PINHOLE_REFUSED)
                }
                (Ask::End { .. }, Grant::To(_)) => notes.note(ev::DEREGISTRATIONS),
                _ => {}
            }
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
        let Ok(Some(m)) = message(msg, ctx.datagram) else {
            return Ok(());
        };
        // A port the asks reserved (from the subscriber) or found back (from the
        // peer), and what it becomes. An RTCP lookup counts only after its pair.
        let reserved = |p: u16| -> Option<u16> {
            let mut after_pair = false;
            for (a, g) in plan.asks().zip(grants) {
                let hit = match (g, ctx.dir, a) {
                    (Grant::Refused, _, _) => None,
                    (
                        Grant::To(to),
                        Dir::FromInside,
                        Ask::Contact { inside, .. } | Ask::Pair { inside, .. },
                    ) if inside.1 == p => Some(to.1),
                    (Grant::To(to), Dir::FromInside, Ask::Lookup { outside, .. })
                        if outside.1 == p && after_pair =>
                    {
                        Some(to.1)
                    }
                    (Grant::To(to), Dir::FromOutside, Ask::Lookup { outside, .. })
                        if outside.1 == p =>
                    {
                        Some(to.1)
                    }
                    _ => None,
                };
                if hit.is_some() {
                    return hit;
                }
                after_pair = matches!((a, g), (Ask::Pair { .. }, Grant::To(_)));
            }
            None
        };
        let (from, to, own, own_to) = match ctx.dir {
            Dir::FromInside => (ctx.inside.0, ctx.outside.0, ctx.inside.1, ctx.outside.1),
            Dir::FromOutside => (ctx.outside.0, ctx.inside.0, ctx.outside.1, ctx.inside.1),
        };
        let ports = |role: Role, p: u16| match role {
            // Media ports only from the reservations, never the session's own.
            Role::Media(_) | Role::Rtcp(_) => reserved(p),
            _ if p == own => Some(own_to),
            _ => reserved(p),
        };
        let t = Translate {
            from: Ipv4Addr::from(from),
            to: Ipv4Addr::from(to),
            port: &ports,
            tokens: true,
        };
        rewrite(msg, &m, &t, edits)
    }

    fn refuse(
        &self,
        msg: &[u8],
        conn: &Conn<'_>,
        denied: &dyn Fn(&[u8]) -> bool,
        reply: &mut Reply,
    ) -> bool {
        let datagram = conn.ctx.datagram;
        let max = conn.policy.max_message_size;
        let too_big = |n: usize| max > 0 && n > max;
        let m = match message(msg, datagram) {
            Ok(Some(m)) => m,
            // A datagram too large that does not parse: refused, with no response.
            _ => return datagram && too_big(msg.len()),
        };
        if !matches!(m.kind, Kind::Request(_)) {
            return false;
        }
        let len = if datagram { msg.len() } else { m.msg.len };
        let method = &msg[..msg.iter().position(|&b| b == b' ').unwrap_or(0)];
        let big = too_big(len);
        if !big && !denied(method) {
            return false;
        }
        let (code, reason) = if big {
            (513, "Message Too Large")
        } else if conn.policy.deny_status == 403 {
            (403, "Forbidden")
        } else {
            (405, "Method Not Allowed")
        };
        // An ACK gets no response.
        if method != b"ACK" && !response(msg, &m, code, reason, denied, reply) {
            // (Too long for the reply buffer: the status line alone.)
            *reply = Reply::default();
            let _ = write!(
                reply,
                "SIP/2.0 {code} {reason}\r\nContent-Length: 0\r\n\r\n"
            );
        }
        true
    }
}

/// [`SipAlg`]'s plan of `msg` (see its docs); media below `min_media` (0: none) is not
/// asked for, noted `low_media_port`.
fn plan_with(msg: &[u8], ctx: &Ctx, min_media: u16, out: &mut contract::Plan) {
    let Ok(Some(m)) = message(msg, ctx.datagram) else {
        return;
    };
    let kind = kind_of(ctx);
    if ctx.dir == Dir::FromOutside {
        let pool = ctx.outside.0;
        let p = plan(msg, &m, Ipv4Addr::from(pool));
        out.group = p.call;
        // Ports of the pool address the peer names: the subscriber's, found back.
        head_spots(msg, &m, &mut |sp| {
            if let (Some((_, a)), Some((_, port))) = (&sp.addr, &sp.port) {
                if u32::from(*a) == pool && *port != ctx.outside.1 {
                    let ask = Ask::Lookup {
                        kind,
                        outside: (pool, *port),
                    };
                    if !out.asks().any(|x| *x == ask) {
                        out.push(ask);
                    }
                }
            }
        });
        if is_sdp(msg, &m) {
            let d = sdp(msg, m.msg.body.clone());
            if let Some(remote) = d.media.first().map(|x| x.addr) {
                out.push(Ask::Narrow {
                    group: p.call,
                    source: u32::from(remote),
                });
            }
        }
        if p.ends_call {
            out.push(Ask::EndGroup { group: p.call });
        }
        return;
    }
    let host = ctx.inside.0;
    let p = plan(msg, &m, Ipv4Addr::from(host));
    out.group = p.call;
    // Contacts past the plan's signalling ports: asks that did not fit.
    out.over += p.signal_ports.over;
    if p.sdp_problem.is_some() {
        out.notes.note(ev::NO_PINHOLE);
    }
    match p.register {
        Some((port, 0)) => {
            out.push(Ask::End {
                kind,
                endpoint: (host, port),
                translated: false,
            });
        }
        Some((port, expires)) => {
            // Incoming requests to the registered contact get in while it lives.
            out.push(Ask::Contact {
                kind,
                inside: (host, port),
                class: crate::class::SIP_REGISTER,
                secs: expires.saturating_add(30).min(86_400),
            });
        }
        None => {}
    }
    for &port in &p.signal_ports {
        if port == ctx.inside.1 || p.register.is_some_and(|r| r.0 == port) {
            continue;
        }
        // A contact on another port than the session's (SIP over TCP from an
        // ephemeral port): requests in the dialog come to it until the call ends.
        out.push(Ask::Contact {
            kind,
            inside: (host, port),
            class: crate::class::SIP_DIALOG,
            secs: 0,
        });
    }
    for media in &p.media {
        if media.port < min_media || media.rtcp < min_media {
            // A pinhole to a privileged port of the subscriber (`m=audio 52`) from
            // any source until the answer: not asked.
            out.notes.note(ev::LOW_MEDIA_PORT);
            continue;
        }
        out.push(Ask::Pair {
            inside: (host, media.port),
            rtcp: media.rtcp,
            class: crate::class::SIP_MEDIA,
            from: Some(0),
        });
        out.push(Ask::Lookup {
            kind: contract::Kind::Udp,
            outside: (0, media.rtcp),
        });
    }
    if p.ends_call {
        out.push(Ask::EndGroup { group: p.call });
    }
}

/// A SIP response to request `m` (in `msg`) written into `r` (RFC 3261 8.2.6): the
/// Via, From, To, Call-ID and CSeq headers copied, a To tag added when there is none,
/// `Allow` (the methods not `denied`) with a 405. False when it does not fit.
fn response(
    msg: &[u8],
    m: &Sip,
    code: u16,
    reason: &str,
    denied: &dyn Fn(&[u8]) -> bool,
    r: &mut Reply,
) -> bool {
    let mut ok = write!(r, "SIP/2.0 {code} {reason}\r\n").is_ok();
    for h in &m.msg.headers {
        let name = &msg[h.name.clone()];
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
        let value = &msg[h.value.clone()];
        ok &= r.push(name) && r.push(b": ") && r.push(value);
        if is("To", "t") && !value.windows(5).any(|w| w.eq_ignore_ascii_case(b";tag=")) {
            let call = m.call_id.clone().map_or(&[][..], |c| &msg[c]);
            ok &= write!(r, ";tag=cgnat{:08x}", text::tag(call)).is_ok();
        }
        ok &= r.push(b"\r\n");
    }
    if code == 405 {
        ok &= r.push(b"Allow: ");
        for (k, x) in METHODS.iter().filter(|x| !denied(x.as_bytes())).enumerate() {
            ok &= (k == 0 || r.push(b", ")) && r.push(x.as_bytes());
        }
        ok &= r.push(b"\r\n");
    }
    ok && r.push(b"Content-Length: 0\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:0097239287044@sip.cybercity.dk SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.168.1.2;branch=z9hG4bKnp83260863-46304c10192.168.1.2;rport\r\n\
From: \"arik\" <sip:voi18062@sip.cybercity.dk>;tag=51449dc\r\n\
To: <sip:0097239287044@sip.cybercity.dk>\r\n\
Call-ID: 85216695-42dcdb1d@192.168.1.2\r\n\
CSeq: 2 INVITE\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 131\r\n\
Contact: <sip:voi18062@192.168.1.2>\r\n\
\r\n\
v=0\r\n\
o=SIPPS 85214742 85214739 IN IP4 192.168.1.2\r\n\
s=SIP call\r\n\
c=IN IP4 192.168.1.2\r\n\
t=0 0\r\n\
m=audio 30000 RTP/AVP 0 8\r\n\
a=sendrecv\r\n";

    /// `buf` with [`rewrite`]'s edits made.
    fn rewritten(buf: &[u8], s: &Sip, t: &Translate) -> Vec<u8> {
        let mut e = Edits::default();
        rewrite(buf, s, t, &mut e).unwrap();
        let mut out = vec![0u8; buf.len() + 64 * e.len()];
        let n = e.apply_into(buf, &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn inside() -> Ipv4Addr {
        Ipv4Addr::new(192, 168, 1, 2)
    }
    fn outside() -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, 7)
    }

    #[test]
    fn invite_is_planned_and_rewritten_everywhere_and_only_there() {
        let s = parse(INVITE, true).unwrap().unwrap();
        assert_eq!(s.kind, Kind::Request(Method::Invite));
        assert_eq!(&INVITE[s.msg.body.clone()].len(), &131);
        let p = plan(INVITE, &s, inside());
        assert_eq!(p.signal_ports[..], [5060]);
        assert_eq!(
            p.media[..],
            [Media {
                index: 0,
                addr: inside(),
                port: 30000,
                rtcp: 30001
            }]
        );
        assert!(!p.ends_call);
        let ports = |role: Role, port: u16| match (role, port) {
            (Role::Signal, 5060) => Some(40000),
            (Role::Media(0), 30000) => Some(61000),
            _ => None,
        };
        let t = Translate {
            from: inside(),
            to: outside(),
            port: &ports,
            tokens: true,
        };
        let out = rewritten(INVITE, &s, &t);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(!text.contains("192.168.1.2"), "{text}");
        assert!(text.contains("Via: SIP/2.0/UDP 198.51.100.7:40000;branch=z9hG4bKnp83260863-46304c10198.51.100.7;rport\r\n"));
        assert!(text.contains("Contact: <sip:voi18062@198.51.100.7:40000>\r\n"));
        assert!(text.contains("Call-ID: 85216695-42dcdb1d@198.51.100.7\r\n"));
        assert!(text.contains("c=IN IP4 198.51.100.7\r\n"));
        assert!(text.contains("o=SIPPS 85214742 85214739 IN IP4 198.51.100.7\r\n"));
        assert!(text.contains("m=audio 61000 RTP/AVP 0 8\r\n"));
        // Untouched headers stay byte for byte.
        assert!(text.contains("From: \"arik\" <sip:voi18062@sip.cybercity.dk>;tag=51449dc\r\n"));
        // Content-Length follows the body.
        let s2 = parse(&out, true).unwrap().unwrap();
        assert_eq!(s2.msg.body.len(), out.len() - s2.msg.body.start);
        assert_eq!(s2.msg.body.len(), 131 + 2);
    }

    #[test]
    fn rtcp_away_from_rtp_is_announced() {
        let s = parse(INVITE, true).unwrap().unwrap();
        let ports = |role: Role, port: u16| match (role, port) {
            (Role::Media(0), 30000) => Some(61000),
            (Role::Rtcp(0), 30001) => Some(1201),
            _ => None,
        };
        let t = Translate {
            from: inside(),
            to: outside(),
            port: &ports,
            tokens: false,
        };
        let out = rewritten(INVITE, &s, &t);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(
            text.contains("m=audio 61000 RTP/AVP 0 8\r\na=rtcp:1201\r\na=sendrecv"),
            "{text}"
        );
        let s2 = parse(&out, true).unwrap().unwrap();
        assert_eq!(s2.msg.body.len(), out.len() - s2.msg.body.start);
        // Next to each other: nothing added.
        let ports = |role: Role, port: u16| match (role, port) {
            (Role::Media(0), 30000) => Some(61000),
            (Role::Rtcp(0), 30001) => Some(61001),
            _ => None,
        };
        let t = Translate {
            from: inside(),
            to: outside(),
            port: &ports,
            tokens: false,
        };
        let text = String::from_utf8(rewritten(INVITE, &s, &t)).unwrap();
        assert!(!text.contains("a=rtcp"));
    }

    #[test]
    fn response_reverses_via_received_and_rport() {
        let m = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 198.51.100.7:40000;branch=z9hG4bK198.51.100.7;rport=40000;received=198.51.100.7\r\nCall-ID: x@198.51.100.7\r\nCSeq: 1 REGISTER\r\nContact: <sip:a@198.51.100.7:40000>;expires=60\r\nContent-Length: 0\r\n\r\n";
        let s = parse(m, true).unwrap().unwrap();
        let ports = |_: Role, p: u16| (p == 40000).then_some(5060);
        let t = Translate {
            from: outside(),
            to: inside(),
            port: &ports,
            tokens: true,
        };
        let out = String::from_utf8(rewritten(m, &s, &t)).unwrap();
        assert_eq!(out, "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bK192.168.1.2;rport=5060;received=192.168.1.2\r\nCall-ID: x@192.168.1.2\r\nCSeq: 1 REGISTER\r\nContact: <sip:a@192.168.1.2:5060>;expires=60\r\nContent-Length: 0\r\n\r\n");
    }

    #[test]
    fn register_binding_and_call_end() {
        let m = b"REGISTER sip:reg SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.2\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\nContact:  <sip:voi@192.168.1.2:5062;line=9c>;expires=1200;q=0.5\r\nExpires: 99\r\nContent-Length: 0\r\n\r\n";
        let s = parse(m, true).unwrap().unwrap();
        let p = plan(m, &s, inside());
        assert_eq!(p.register, Some((5062, 1200)));
        assert_eq!(p.signal_ports[..], [5062, 5060]);
        let un = b"REGISTER sip:reg SIP/2.0\r\nCall-ID: r1\r\nCSeq: 2 REGISTER\r\nContact: *\r\nExpires: 0\r\n\r\n";
        let s = parse(un, true).unwrap().unwrap();
        assert_eq!(plan(un, &s, inside()).register, Some((5060, 0)));
        let bye = b"BYE sip:b@1.2.3.4 SIP/2.0\r\nCall-ID: c9\r\nCSeq: 3 BYE\r\n\r\n";
        let s = parse(bye, true).unwrap().unwrap();
        let p = plan(bye, &s, inside());
        assert!(p.ends_call);
        assert_eq!(p.call, crate::text::tag(b"c9"));
        let a = parse(b"BYE sip:x SIP/2.0\r\nCall-ID: k@192.168.1.2\r\n\r\n", true)
            .unwrap()
            .unwrap();
        let b = parse(
            b"BYE sip:x SIP/2.0\r\nCall-ID: k@198.51.100.7\r\n\r\n",
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            call_tag(
                b"BYE sip:x SIP/2.0\r\nCall-ID: k@192.168.1.2\r\n\r\n",
                &a,
                inside()
            ),
            call_tag(
                b"BYE sip:x SIP/2.0\r\nCall-ID: k@198.51.100.7\r\n\r\n",
                &b,
                outside()
            )
        );
        let busy = b"SIP/2.0 486 Busy Here\r\nCall-ID: c9\r\nCSeq: 1 INVITE\r\n\r\n";
        let s = parse(busy, true).unwrap().unwrap();
        assert!(plan(busy, &s, inside()).ends_call);
        let ok_bye = b"SIP/2.0 200 OK\r\nCall-ID: c9\r\nCSeq: 3 BYE\r\n\r\n";
        let s = parse(ok_bye, true).unwrap().unwrap();
        assert!(!plan(ok_bye, &s, inside()).ends_call);
    }

    #[test]
    fn sdp_problems_give_no_pinholes() {
        let body = |b: &str| {
            let v = b.as_bytes().to_vec();
            let d = sdp(&v, 0..v.len());
            (d.media.len(), d.problem)
        };
        assert_eq!(
            body("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\n"),
            (1, None)
        );
        assert_eq!(
            body("v=0\r\nc=IN IP4 1.2.3.4\r\nc=IN IP4 1.2.3.5\r\nm=audio 4000 RTP/AVP 0\r\n"),
            (0, Some(SdpProblem::Duplicated))
        );
        assert_eq!(
            body("v=0\r\nm=audio 4000 RTP/AVP 0\r\n"),
            (0, Some(SdpProblem::MissingConnection))
        );
        assert_eq!(
            body("v=0\r\nc=IN IP6 ::1\r\nm=audio 4000 RTP/AVP 0\r\n"),
            (0, Some(SdpProblem::NotIpv4))
        );
        assert_eq!(
            body("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n"),
            (0, Some(SdpProblem::Malformed))
        );
        assert_eq!(
            body("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\n"),
            (0, None)
        );
        assert_eq!(
            body("v=0\r\nc=IN IP4 1.2.3.4\r\nm=message 9 TCP/MSRP *\r\n"),
            (0, None)
        );
        assert_eq!(body("garbage\r\n"), (0, Some(SdpProblem::Malformed)));
        // Two streams, RTCP named by a=rtcp.
        let v = b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4005 IN IP4 1.2.3.4\r\nm=video 5000 RTP/AVP 96\r\n";
        let d = sdp(v, 0..v.len());
        assert_eq!(
            d.media.iter().map(|m| (m.port, m.rtcp)).collect::<Vec<_>>(),
            vec![(4000, 4005), (5000, 5001)]
        );
    }

    #[test]
    fn at_most_max_media_streams_are_read() {
        // Found by the sdp fuzz target: the ninth and later m= lines were read again.
        let mut b = String::from("v=0\r\nc=IN IP4 1.2.3.4\r\n");
        for i in 0..20 {
            b.push_str(&format!("m=audio {} RTP/AVP 0\r\n", 4000 + 2 * i));
        }
        let d = sdp(b.as_bytes(), 0..b.len());
        assert_eq!(d.media.len(), MAX_MEDIA);
        assert_eq!(d.problem, Some(SdpProblem::Malformed));
    }

    /// An INVITE from the inside host with `head` added to its head and `body` as
    /// its SDP.
    fn invite_with(head: &str, body: &str) -> Vec<u8> {
        format!(
            "INVITE sip:bob@192.0.2.20 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bKa\r\n\
             Call-ID: c1@192.168.1.2\r\nCSeq: 1 INVITE\r\n{head}\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[test]
    fn an_sdp_with_more_places_than_its_bound_is_left_as_it_is() {
        // Each `a=rtcp` with an address is two places: 30 of them are past the bound.
        let mut body = String::from("v=0\r\nc=IN IP4 192.168.1.2\r\nm=audio 30000 RTP/AVP 0\r\n");
        for _ in 0..30 {
            body.push_str("a=rtcp:30001 IN IP4 192.168.1.2\r\n");
        }
        let d = sdp(body.as_bytes(), 0..body.len());
        assert_eq!(d.problem, Some(SdpProblem::TooMany));
        assert!(d.spots.is_empty() && d.media.is_empty());
        // Under the bound the same body is read.
        let few = body.replacen("a=rtcp:30001 IN IP4 192.168.1.2\r\n", "", 25);
        let d = sdp(few.as_bytes(), 0..few.len());
        assert_eq!((d.problem, d.media.len()), (None, 1));
        // The SIP ALG asks no pinhole for it (noted `no_pinhole`) and leaves the body as
        // written, the head translated.
        let m = invite_with("", &body);
        let c = ctx(Dir::FromInside, true);
        let mut plan = contract::Plan::default();
        SipAlg.plan(&m, &c, &mut plan);
        assert!(!plan.asks().any(|a| matches!(a, Ask::Pair { .. })));
        assert_eq!(plan.notes.get(ev::NO_PINHOLE), 1);
        let out = edited(
            &m,
            &c,
            &plan,
            &[Grant::Refused; contract::MAX_ASKS][..plan.len()],
        );
        assert!(
            out.contains("Via: SIP/2.0/UDP 198.51.100.7:40000;"),
            "{out}"
        );
        assert!(out.ends_with(&body), "{out}");
    }

    #[test]
    fn contacts_past_the_signal_port_bound_are_asks_that_did_not_fit() {
        let contacts: Vec<String> = (0..MAX_SIGNAL_PORTS + 8)
            .map(|k| format!("<sip:a@192.168.1.2:{}>", 6000 + k))
            .collect();
        let m = invite_with(&format!("Contact: {}\r\n", contacts.join(", ")), "");
        let s = parse(&m, true).unwrap().unwrap();
        let p = plan(&m, &s, inside());
        assert_eq!(p.signal_ports.len(), MAX_SIGNAL_PORTS);
        // The contacts come first: the last 8 did not fit, nor did the Via's 5060.
        assert_eq!(p.signal_ports.over, 9);
        assert!(!p.signal_ports.contains(&5060));
        let mut plan = contract::Plan::default();
        SipAlg.plan(&m, &ctx(Dir::FromInside, true), &mut plan);
        assert_eq!(plan.len(), MAX_SIGNAL_PORTS);
        assert_eq!(plan.over, 9);
    }

    #[test]
    fn more_edits_than_gathered_leave_the_message_as_written() {
        // Every contact is an address and a port to translate: past MAX_PENDING.
        let contacts: Vec<String> = (0..MAX_PENDING / 2 + 1)
            .map(|_| "<sip:a@192.168.1.2:5060>".to_string())
            .collect();
        let m = invite_with(&format!("Contact: {}\r\n", contacts.join(",")), "");
        let s = parse(&m, true).unwrap().unwrap();
        let ports = |_: Role, _: u16| Some(40000);
        let t = Translate {
            from: inside(),
            to: outside(),
            port: &ports,
            tokens: true,
        };
        let mut e = Edits::default();
        assert_eq!(rewrite(&m, &s, &t, &mut e), Err(EditError::TooMany));
        assert!(e.is_empty());
    }

    #[test]
    fn not_sip_and_bad_input_are_refused_without_panic() {
        assert!(parse(b"\r\n\r\n", true).is_err());
        assert!(parse(b"hello", true).is_err());
        assert!(parse(b"INVITE sip:x SIP/2.0\r\nVia SIP/2.0/UDP x\r\n\r\n", true).is_err());
        assert!(parse(b"INVITE sip:x SIP/2.0\r\nContent-Length: 5\r\n\r\nab", true).is_err());
        assert!(parse(b"SIP/2.0 99 x\r\n\r\n", true).is_err());
        // Non-UTF-8 bytes in a header value are carried, not interpreted.
        let m = b"OPTIONS sip:x@1.2.3.4 SIP/2.0\r\nX: \xff\xfe\r\n\r\n";
        assert!(parse(m, true).unwrap().is_some());
    }

    /// The session of the contract tests: the phone 192.168.1.2:5060 to a proxy, its
    /// translation 198.51.100.7:40000.
    fn ctx(dir: contract::Dir, datagram: bool) -> Ctx {
        Ctx {
            dir,
            inside: (u32::from(inside()), 5060),
            outside: (u32::from(outside()), 40000),
            remote: (0xC000_0214, 5060),
            datagram,
        }
    }

    /// The edits of `msg` with `grants`, applied.
    fn edited(msg: &[u8], c: &Ctx, plan: &contract::Plan, grants: &[Grant]) -> String {
        let mut e = Edits::default();
        SipAlg.edits(msg, c, plan, grants, &mut e).unwrap();
        let mut out = vec![0u8; msg.len() + 256];
        let n = e.apply_into(msg, &mut out).unwrap();
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    #[test]
    fn contract_invite_asks_its_media_pair_and_is_rewritten_with_the_grants() {
        let c = ctx(Dir::FromInside, true);
        assert_eq!(SipAlg.framing(INVITE, &c), Framing::Whole(INVITE.len()));
        let mut plan = contract::Plan::default();
        SipAlg.plan(INVITE, &c, &mut plan);
        let asks: Vec<Ask> = plan.asks().copied().collect();
        assert_eq!(
            asks,
            [
                Ask::Pair {
                    inside: (u32::from(inside()), 30000),
                    rtcp: 30001,
                    class: crate::class::SIP_MEDIA,
                    from: Some(0),
                },
                Ask::Lookup {
                    kind: contract::Kind::Udp,
                    outside: (0, 30001),
                },
            ]
        );
        assert_eq!(plan.group, text::tag(b"85216695-42dcdb1d"));
        let out = u32::from(outside());
        // RTCP next to RTP: the media port only.
        let t = edited(
            INVITE,
            &c,
            &plan,
            &[Grant::To((out, 61000)), Grant::To((out, 61001))],
        );
        assert!(t.contains("m=audio 61000 RTP/AVP 0 8\r\na=sendrecv"), "{t}");
        assert!(
            t.contains("Contact: <sip:voi18062@198.51.100.7:40000>"),
            "{t}"
        );
        assert!(!t.contains("192.168.1.2"), "{t}");
        let s = parse(t.as_bytes(), true).unwrap().unwrap();
        assert_eq!(s.msg.body.len(), t.len() - s.msg.body.start);
        // RTCP elsewhere: said where.
        let t = edited(
            INVITE,
            &c,
            &plan,
            &[Grant::To((out, 61000)), Grant::To((out, 1201))],
        );
        assert!(
            t.contains("m=audio 61000 RTP/AVP 0 8\r\na=rtcp:1201\r\n"),
            "{t}"
        );
        // The pair refused: its ports stay, and its RTCP's translation is not used.
        let t = edited(INVITE, &c, &plan, &[Grant::Refused, Grant::To((out, 1201))]);
        assert!(t.contains("m=audio 30000 RTP/AVP 0 8\r\na=sendrecv"), "{t}");
        let mut notes = Notes::default();
        SipAlg.granted(
            &plan,
            &[Grant::Refused, Grant::Refused],
            &Conn::of(c),
            &mut notes,
        );
        assert_eq!(notes.get(ev::PINHOLE_REFUSED), 1);
        // Below the media port floor: not asked, noted.
        let conn = Conn {
            policy: contract::Policy {
                min_media_port: 30001,
                ..contract::Policy::default()
            },
            ..Conn::of(c)
        };
        let mut low = contract::Plan::default();
        SipAlg.plan_in(INVITE, &conn, &mut low);
        assert!(low.is_empty());
        assert_eq!(low.notes.get(ev::LOW_MEDIA_PORT), 1);
    }

    #[test]
    fn contract_register_is_a_contact_that_lives_as_long_and_unregister_ends_it() {
        let c = ctx(Dir::FromInside, true);
        let m = b"REGISTER sip:reg SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.2:5060\r\nCall-ID: r1\r\nCSeq: 1 REGISTER\r\nContact: <sip:voi@192.168.1.2:5062>;expires=1200\r\nContent-Length: 0\r\n\r\n";
        let mut plan = contract::Plan::default();
        SipAlg.plan(m, &c, &mut plan);
        let host = u32::from(inside());
        assert_eq!(
            plan.asks().copied().collect::<Vec<_>>(),
            [Ask::Contact {
                kind: contract::Kind::Udp,
                inside: (host, 5062),
                class: crate::class::SIP_REGISTER,
                secs: 1230,
            }]
        );
        let g = [Grant::To((u32::from(outside()), 40002))];
        let mut notes = Notes::default();
        SipAlg.granted(&plan, &g, &Conn::of(c), &mut notes);
        assert_eq!(notes.get(ev::REGISTRATIONS), 1);
        let t = edited(m, &c, &plan, &g);
        assert!(
            t.contains("Contact: <sip:voi@198.51.100.7:40002>;expires=1200"),
            "{t}"
        );
        assert!(t.contains("Via: SIP/2.0/UDP 198.51.100.7:40000\r\n"), "{t}");
        let un = b"REGISTER sip:reg SIP/2.0\r\nCall-ID: r1\r\nCSeq: 2 REGISTER\r\nContact: <sip:voi@192.168.1.2:5062>;expires=0\r\n\r\n";
        let mut plan = contract::Plan::default();
        SipAlg.plan(un, &c, &mut plan);
        assert_eq!(
            plan.asks().copied().collect::<Vec<_>>(),
            [Ask::End {
                kind: contract::Kind::Udp,
                endpoint: (host, 5062),
                translated: false,
            }]
        );
        let mut notes = Notes::default();
        SipAlg.granted(&plan, &g, &Conn::of(c), &mut notes);
        assert_eq!(notes.get(ev::DEREGISTRATIONS), 1);
    }

    #[test]
    fn contract_from_the_peer_finds_ports_back_narrows_the_media_and_ends_the_call() {
        let c = ctx(Dir::FromOutside, true);
        let body = "v=0\r\nc=IN IP4 192.0.2.30\r\nm=audio 7000 RTP/AVP 0\r\n";
        let ok = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 198.51.100.7:40000;rport=40000\r\nCall-ID: c1@198.51.100.7\r\nCSeq: 1 INVITE\r\nContact: <sip:a@198.51.100.7:40002>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut plan = contract::Plan::default();
        SipAlg.plan(ok.as_bytes(), &c, &mut plan);
        let call = text::tag(b"c1");
        assert_eq!(plan.group, call);
        assert_eq!(
            plan.asks().copied().collect::<Vec<_>>(),
            [
                Ask::Lookup {
                    kind: contract::Kind::Udp,
                    outside: (u32::from(outside()), 40002),
                },
                Ask::Narrow {
                    group: call,
                    source: 0xC000_021E,
                },
            ]
        );
        let host = u32::from(inside());
        let t = edited(
            ok.as_bytes(),
            &c,
            &plan,
            &[Grant::To((host, 5062)), Grant::To((0, 0))],
        );
        assert!(t.contains("Contact: <sip:a@192.168.1.2:5062>\r\n"), "{t}");
        // (rport only with a `received` naming the pool address.)
        assert!(
            t.contains("Via: SIP/2.0/UDP 192.168.1.2:5060;rport=40000\r\n"),
            "{t}"
        );
        assert!(t.contains("Call-ID: c1@192.168.1.2\r\n"), "{t}");
        assert!(
            t.contains("m=audio 7000 RTP/AVP 0"),
            "the peer's media as it is: {t}"
        );
        let bye = b"BYE sip:a@198.51.100.7:40000 SIP/2.0\r\nCall-ID: c1@198.51.100.7\r\nCSeq: 2 BYE\r\n\r\n";
        let mut plan = contract::Plan::default();
        SipAlg.plan(bye, &c, &mut plan);
        assert_eq!(
            plan.asks().copied().collect::<Vec<_>>(),
            [Ask::EndGroup { group: call }]
        );
    }

    #[test]
    fn contract_framing_holds_a_start_and_skips_what_is_no_sip() {
        let c = ctx(Dir::FromInside, false);
        let bye = b"BYE sip:x SIP/2.0\r\nCall-ID: k\r\nContent-Length: 0\r\n\r\n";
        let mut two = bye.to_vec();
        two.extend_from_slice(b"OPTIONS sip:x SIP/2.0\r\nCall-ID: k\r\n");
        assert_eq!(SipAlg.framing(&two, &c), Framing::Whole(bye.len()));
        assert_eq!(SipAlg.framing(&two[bye.len()..], &c), Framing::More);
        assert_eq!(SipAlg.framing(b"\r\n\r\n", &c), Framing::Skip(4));
        assert_eq!(SipAlg.skipped(b"\r\n\r\n", &c), Some(ev::NOT_A_MESSAGE));
        let bad = b"INVITE sip:x SIP/2.0\r\nVia SIP/2.0/UDP x\r\n\r\n";
        assert_eq!(SipAlg.framing(bad, &c), Framing::Skip(bad.len()));
        assert_eq!(SipAlg.skipped(bad, &c), Some(ev::PARSE_ERRORS));
        assert_eq!(SipAlg.hold(), contract::MAX_HOLD);
        assert_eq!(EVENTS.len(), 7);
    }

    #[test]
    fn contract_policy_answers_a_denied_method_or_a_large_request() {
        let c = ctx(Dir::FromInside, true);
        let m = b"MESSAGE sip:b@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=f\r\nTo: <sip:b@x>\r\nCall-ID: m1\r\nCSeq: 7 MESSAGE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        let deny = |x: &[u8]| x == b"MESSAGE" || x == b"ACK";
        let mut conn = Conn::of(c);
        let mut r = Reply::default();
        assert!(SipAlg.refuse(m, &conn, &deny, &mut r));
        let t = String::from_utf8(r.bytes().to_vec()).unwrap();
        assert!(t.starts_with("SIP/2.0 405 Method Not Allowed\r\n"), "{t}");
        assert!(
            t.contains("Via: SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bK1\r\n"),
            "{t}"
        );
        assert!(
            t.contains(&format!(
                "To: <sip:b@x>;tag=cgnat{:08x}\r\n",
                text::tag(b"m1")
            )),
            "{t}"
        );
        assert!(
            t.contains("CSeq: 7 MESSAGE\r\n") && !t.contains("Max-Forwards"),
            "{t}"
        );
        assert!(
            t.contains("Allow: INVITE, BYE,") && !t.contains("MESSAGE,"),
            "{t}"
        );
        conn.policy.deny_status = 403;
        let mut r = Reply::default();
        assert!(SipAlg.refuse(m, &conn, &deny, &mut r));
        assert!(r.bytes().starts_with(b"SIP/2.0 403 Forbidden\r\n"));
        // Too large: 513, whatever its method; a response is never refused.
        conn.policy.max_message_size = 100;
        let none = |_: &[u8]| false;
        let mut r = Reply::default();
        assert!(SipAlg.refuse(INVITE, &conn, &none, &mut r));
        assert!(r.bytes().starts_with(b"SIP/2.0 513 Message Too Large\r\n"));
        let resp = b"SIP/2.0 200 OK\r\nCall-ID: m1\r\nCSeq: 7 MESSAGE\r\nContent-Length: 0\r\n\r\n";
        assert!(!SipAlg.refuse(resp, &conn, &deny, &mut Reply::default()));
        // An ACK gets no response; a large datagram that does not parse is refused.
        let ack = b"ACK sip:b@x SIP/2.0\r\nCall-ID: m1\r\nCSeq: 7 ACK\r\n\r\n";
        let mut r = Reply::default();
        assert!(SipAlg.refuse(ack, &conn, &deny, &mut r) && r.bytes().is_empty());
        assert!(SipAlg.refuse(&[b'x'; 200], &conn, &none, &mut Reply::default()));
        assert!(!SipAlg.refuse(&[b'x'; 50], &conn, &none, &mut Reply::default()));
    }
}
