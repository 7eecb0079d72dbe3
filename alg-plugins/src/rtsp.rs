//! RTSP (RFC 2326): a strict, bounded parser for requests and replies and for the
//! Transport header (section 12.39), the endpoints it carries, and their rewrite:
//! `client_port` (one port or a range) and `destination` in a SETUP, the same in its
//! reply; `server_port` and `source` name the server and stay as they are. Interleaved
//! transport (RTP over the RTSP connection, `RTP/AVP/TCP;interleaved=`) opens nothing.

use crate::text::{self, Edit, Message, TextError};
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
pub struct Rtsp {
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
#[derive(Clone, Debug)]
pub enum Frame {
    /// A message.
    Message(Rtsp),
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
    Ok(Some(Frame::Message(Rtsp { msg, kind, session })))
}

/// One transport specification of a Transport header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spec {
    /// UDP (RTP/AVP or RTP/AVP/UDP), not TCP interleaved.
    pub udp: bool,
    /// Multicast asked for.
    pub multicast: bool,
    /// `client_port`: the text of each port and its value (one or two).
    pub client: Vec<(Range<usize>, u16)>,
    /// `destination`: its text and address (None if it is not an IPv4 literal).
    pub destination: Option<(Range<usize>, Option<Ipv4Addr>)>,
    /// `source` (a reply's media source).
    pub source: Option<Ipv4Addr>,
    /// `server_port` values.
    pub server: Vec<u16>,
}

/// Why a Transport header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// A port is not a number, out of range, or the range is reversed or too wide.
    BadPort,
}

/// The specifications of every Transport header of `m`.
pub fn transports(buf: &[u8], m: &Rtsp) -> Result<Vec<Spec>, TransportError> {
    let mut out = Vec::new();
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
                    s.server = port_range(buf, val)?.into_iter().map(|x| x.1).collect();
                } else if name.eq_ignore_ascii_case(b"destination") {
                    s.destination = Some((val.clone(), text::ipv4(&buf[val])));
                } else if name.eq_ignore_ascii_case(b"source") {
                    s.source = text::ipv4(&buf[val]);
                }
            }
            out.push(s);
        }
    }
    Ok(out)
}

/// `a` or `a-b`, with b = a + 1 or a itself, or b > a within 16 ports.
fn port_range(buf: &[u8], r: Range<usize>) -> Result<Vec<(Range<usize>, u16)>, TransportError> {
    let v = &buf[r.clone()];
    match v.iter().position(|&b| b == b'-') {
        None => {
            let p = text::port(v).ok_or(TransportError::BadPort)?;
            Ok(vec![(r, p)])
        }
        Some(d) => {
            let a = text::port(&v[..d]).ok_or(TransportError::BadPort)?;
            let b = text::port(&v[d + 1..]).ok_or(TransportError::BadPort)?;
            if b < a || b - a > 16 {
                return Err(TransportError::BadPort);
            }
            Ok(vec![(r.start..r.start + d, a), (r.start + d + 1..r.end, b)])
        }
    }
}

/// A stream a SETUP asks for: the client's RTP and RTCP ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    /// RTP port.
    pub rtp: u16,
    /// RTCP port (the range's end, else RTP + 1).
    pub rtcp: u16,
}

/// What a SETUP from `host` asks the NAT for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Streams to the client over UDP.
    pub streams: Vec<Stream>,
    /// Specifications that name another host as destination (opened for nobody).
    pub elsewhere: usize,
}

/// The plan of a SETUP from `host` (nothing for other messages and for interleaved
/// or multicast transport).
pub fn plan(buf: &[u8], m: &Rtsp, host: Ipv4Addr) -> Result<Plan, TransportError> {
    let mut p = Plan::default();
    if m.kind != Kind::Request(Method::Setup) {
        return Ok(p);
    }
    for s in transports(buf, m)? {
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
        p.streams.push(Stream { rtp, rtcp });
    }
    Ok(p)
}

/// The edits that replace address `from` by `to` in `destination`, and the client ports
/// by `port` (None: leave it), in every Transport header of `m`.
pub fn rewrite(
    buf: &[u8],
    m: &Rtsp,
    from: Ipv4Addr,
    to: Ipv4Addr,
    port: &dyn Fn(u16) -> Option<u16>,
) -> Result<Vec<Edit>, TransportError> {
    let mut edits = Vec::new();
    for s in transports(buf, m)? {
        if let Some((r, Some(a))) = &s.destination {
            if *a == from {
                edits.push(Edit {
                    at: r.start,
                    len: r.len(),
                    with: to.to_string(),
                });
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
        for (r, p) in &s.client {
            if let Some(np) = port(*p) {
                if np != *p {
                    edits.push(Edit {
                        at: r.start,
                        len: r.len(),
                        with: np.to_string(),
                    });
                }
            }
        }
    }
    edits.sort_by_key(|e| e.at);
    Ok(edits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(b: &[u8]) -> Rtsp {
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
            p.streams,
            vec![Stream {
                rtp: 55664,
                rtcp: 55665
            }]
        );
        let e = rewrite(b, &m, host, Ipv4Addr::new(198, 51, 100, 1), &|p| {
            Some(p - 55664 + 2000)
        })
        .unwrap();
        let out = String::from_utf8(text::apply(b, &e)).unwrap();
        assert!(out.contains("client_port=2000-2001\r\n"), "{out}");
        // The reply: the client's ports back, the server's left alone.
        let r = b"RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: 8c30e1;timeout=60\r\nTransport: RTP/AVP/UDP;unicast;client_port=2000-2001;server_port=58547-58548;source=10.2.2.2\r\n\r\n";
        let m = msg(r);
        assert_eq!(&r[m.session.clone().unwrap()], b"8c30e1");
        let e = rewrite(r, &m, Ipv4Addr::new(198, 51, 100, 1), host, &|p| {
            Some(p + 55664 - 2000)
        })
        .unwrap();
        let out = String::from_utf8(text::apply(r, &e)).unwrap();
        assert!(out.contains("client_port=55664-55665;server_port=58547-58548;source=10.2.2.2"));
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
            plan(b, &msg(b), host).unwrap().streams,
            vec![Stream {
                rtp: 4000,
                rtcp: 4001
            }]
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
