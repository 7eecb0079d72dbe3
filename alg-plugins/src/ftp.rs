//! FTP (RFC 959, RFC 2428): strict, bounded parsers for the commands and replies that
//! carry addresses: PORT, EPRT, 227 and 229, and the line framing that finds them.
//! A line longer than [`MAX_LINE`] is refused; a line not yet ended asks for more.

use crate::contract::{
    Ask, Conn, Contract, Ctx, Dir, EditError, Edits, Framing, Grant, Kind, Notes, Plan, Policy,
    Reply, State, MAX_EDIT, STAND_ASIDE,
};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest control line accepted (RFC 959 has no limit; real ones are far shorter).
pub const MAX_LINE: usize = 512;

/// Why a line was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FtpError {
    /// No CRLF within MAX_LINE bytes.
    LineTooLong,
    /// A number is missing, has too many digits, or is out of range.
    BadNumber,
    /// The argument does not have the expected shape.
    BadSyntax,
    /// Port 0.
    PortZero,
}

/// Where a complete line is in a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line {
    /// Offset of its first byte.
    pub start: usize,
    /// Offset after its last byte, before the line end.
    pub end: usize,
    /// Offset after the line end (the next line's start).
    pub next: usize,
}

/// The next complete line from `from`: Ok(None) when the rest is an incomplete line
/// (hold and wait), Err when it is too long to ever be one.
pub fn next_line(buf: &[u8], from: usize) -> Result<Option<Line>, FtpError> {
    let rest = buf.get(from..).unwrap_or(&[]);
    match rest.iter().take(MAX_LINE + 2).position(|&b| b == b'\n') {
        Some(i) => {
            let end = if i > 0 && rest[i - 1] == b'\r' {
                i - 1
            } else {
                i
            };
            Ok(Some(Line {
                start: from,
                end: from + end,
                next: from + i + 1,
            }))
        }
        None if rest.len() > MAX_LINE => Err(FtpError::LineTooLong),
        None => Ok(None),
    }
}

/// A decimal number of 1 to `digits` digits, at most `max`.
fn number(s: &[u8], digits: usize, max: u32) -> Result<u32, FtpError> {
    if s.is_empty() || s.len() > digits || !s.iter().all(u8::is_ascii_digit) {
        return Err(FtpError::BadNumber);
    }
    let v = s.iter().fold(0u32, |a, &d| a * 10 + u32::from(d - b'0'));
    if v > max {
        return Err(FtpError::BadNumber);
    }
    Ok(v)
}

/// "h1,h2,h3,h4,p1,p2" (PORT and 227): the address and port.
pub fn parse_host_port(s: &[u8]) -> Result<(Ipv4Addr, u16), FtpError> {
    let mut parts = [&s[..0]; 6];
    if split_exact(s, b',', &mut parts) != Some(6) {
        return Err(FtpError::BadSyntax);
    }
    let mut n = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        n[i] = number(p, 3, 255)? as u8;
    }
    let port = u16::from(n[4]) << 8 | u16::from(n[5]);
    if port == 0 {
        return Err(FtpError::PortZero);
    }
    Ok((Ipv4Addr::new(n[0], n[1], n[2], n[3]), port))
}

/// `s` split at `d` into `out`: how many parts, None when more than `out` holds.
fn split_exact<'s>(s: &'s [u8], d: u8, out: &mut [&'s [u8]]) -> Option<usize> {
    let mut n = 0;
    for part in s.split(|&b| b == d) {
        *out.get_mut(n)? = part;
        n += 1;
    }
    Some(n)
}

/// Formats an address and port as PORT/227 write them.
pub fn format_host_port(a: Ipv4Addr, port: u16) -> String {
    let o = a.octets();
    format!(
        "{},{},{},{},{},{}",
        o[0],
        o[1],
        o[2],
        o[3],
        port >> 8,
        port & 0xff
    )
}

/// What an EPRT argument names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eprt {
    /// `|1|a.b.c.d|port|`.
    V4(Ipv4Addr, u16),
    /// `|2|ipv6-address|port|`: not NAT44's business; NAT64 translates it (RFC 6384).
    V6(Ipv6Addr, u16),
}

/// "|1|132.235.1.2|6275|" (RFC 2428): any delimiter in 33..=126, the same throughout.
pub fn parse_eprt(s: &[u8]) -> Result<Eprt, FtpError> {
    let d = *s.first().ok_or(FtpError::BadSyntax)?;
    if s.len() < 2 || !(33..=126).contains(&d) || d.is_ascii_digit() || s.last() != Some(&d) {
        return Err(FtpError::BadSyntax);
    }
    let mut fields = [&s[..0]; 3];
    if split_exact(&s[1..s.len() - 1], d, &mut fields) != Some(3) {
        return Err(FtpError::BadSyntax);
    }
    match fields[0] {
        b"1" => {
            let mut octets = [&s[..0]; 4];
            if split_exact(fields[1], b'.', &mut octets) != Some(4) {
                return Err(FtpError::BadSyntax);
            }
            let mut o = [0u8; 4];
            for (i, x) in octets.iter().enumerate() {
                o[i] = number(x, 3, 255)? as u8;
            }
            let port = number(fields[2], 5, 65535)? as u16;
            if port == 0 {
                return Err(FtpError::PortZero);
            }
            Ok(Eprt::V4(Ipv4Addr::from(o), port))
        }
        b"2" => {
            let text = std::str::from_utf8(fields[1]).map_err(|_| FtpError::BadSyntax)?;
            let a: Ipv6Addr = text.parse().map_err(|_| FtpError::BadSyntax)?;
            let port = number(fields[2], 5, 65535)? as u16;
            if port == 0 {
                return Err(FtpError::PortZero);
            }
            Ok(Eprt::V6(a, port))
        }
        _ => Err(FtpError::BadSyntax),
    }
}

/// Formats an EPRT argument with delimiter `|`.
pub fn format_eprt(a: Ipv4Addr, port: u16) -> String {
    format!("|1|{a}|{port}|")
}

/// The six numbers of a 227 reply, with or without parentheses, and where they are in
/// the line (so only they are rewritten).
pub fn parse_227(line: &[u8]) -> Result<(Ipv4Addr, u16, usize, usize), FtpError> {
    if !line.starts_with(b"227") {
        return Err(FtpError::BadSyntax);
    }
    // The first run of digits and commas after the code that holds five commas.
    let mut i = 3;
    while i < line.len() {
        if line[i].is_ascii_digit() {
            let start = i;
            while i < line.len() && (line[i].is_ascii_digit() || line[i] == b',') {
                i += 1;
            }
            let run = &line[start..i];
            if run.iter().filter(|&&b| b == b',').count() == 5 {
                let (a, p) = parse_host_port(run)?;
                return Ok((a, p, start, i));
            }
        }
        i += 1;
    }
    Err(FtpError::BadSyntax)
}

/// The port of a 229 reply, "(|||port|)", and where the number is.
pub fn parse_229(line: &[u8]) -> Result<(u16, usize, usize), FtpError> {
    if !line.starts_with(b"229") {
        return Err(FtpError::BadSyntax);
    }
    let open = line
        .iter()
        .position(|&b| b == b'(')
        .ok_or(FtpError::BadSyntax)?;
    let close = open
        + line[open..]
            .iter()
            .position(|&b| b == b')')
            .ok_or(FtpError::BadSyntax)?;
    let inner = &line[open + 1..close];
    let d = *inner.first().ok_or(FtpError::BadSyntax)?;
    if inner.len() < 5 || inner[1] != d || inner[2] != d || inner.last() != Some(&d) {
        return Err(FtpError::BadSyntax);
    }
    let digits = &inner[3..inner.len() - 1];
    let port = number(digits, 5, 65535)? as u16;
    if port == 0 {
        return Err(FtpError::PortZero);
    }
    let start = open + 1 + 3;
    Ok((port, start, start + digits.len()))
}

/// A control line, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// PORT with its argument.
    Port(&'a [u8]),
    /// EPRT with its argument.
    Eprt(&'a [u8]),
    /// EPSV with its argument (empty, a protocol number, or `ALL`; RFC 2428 3).
    Epsv(&'a [u8]),
    /// PASV (RFC 959).
    Pasv,
    /// LPRT or LPSV (RFC 1639).
    Long,
    /// AUTH TLS / AUTH SSL (the channel is about to be encrypted).
    Auth,
    /// A 227 reply.
    Reply227,
    /// A 229 reply.
    Reply229,
    /// A 234 reply (AUTH accepted: encryption starts after it).
    Reply234,
    /// Anything else.
    Other,
}

/// Classifies a line (commands are case-insensitive, RFC 959 5.3).
pub fn classify(line: &[u8]) -> Message<'_> {
    let cmd = |c: &[u8]| {
        line.len() > c.len() && line[..c.len()].eq_ignore_ascii_case(c) && line[c.len()] == b' '
    };
    if cmd(b"PORT") {
        Message::Port(&line[5..])
    } else if cmd(b"EPRT") {
        Message::Eprt(&line[5..])
    } else if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"EPSV") {
        let rest = &line[4..];
        match rest.split_first() {
            None => Message::Epsv(rest),
            Some((b' ', arg)) => Message::Epsv(arg),
            _ => Message::Other,
        }
    } else if line.eq_ignore_ascii_case(b"PASV") {
        Message::Pasv
    } else if line.len() >= 4
        && (line[..4].eq_ignore_ascii_case(b"LPRT") || line[..4].eq_ignore_ascii_case(b"LPSV"))
        && line.get(4).is_none_or(|&b| b == b' ')
    {
        Message::Long
    } else if line.len() >= 8
        && (line[..8].eq_ignore_ascii_case(b"AUTH TLS")
            || line[..8].eq_ignore_ascii_case(b"AUTH SSL"))
    {
        Message::Auth
    } else if line.starts_with(b"227") {
        Message::Reply227
    } else if line.starts_with(b"229") {
        Message::Reply229
    } else if line.starts_with(b"234") {
        Message::Reply234
    } else {
        Message::Other
    }
}

/// Whether `line` (unfinished) is the start of a line that announces an endpoint: a
/// client's PORT or EPRT, or a server's 227 or 229 reply (a server behind the NAT).
pub fn starts_address_line(line: &[u8]) -> bool {
    [&b"PORT "[..], b"EPRT ", b"227 ", b"229 "].iter().any(|c| {
        let n = line.len().min(c.len());
        n > 0 && line[..n].eq_ignore_ascii_case(&c[..n])
    })
}

/// The FTP ALG on the contract ([`crate::contract::Contract`]).
///
/// - The client's PORT and EPRT `|1|` naming its own address announce its data port
///   (class `ftp_data`, from the server, or any with `loose`; nothing below
///   `min_data_port`, counted `low_port`; another host's address opens nothing,
///   counted `bounce`); the command is rewritten with the translation (or, when none
///   was granted, the pool address and the port as written, counted `masked`: the
///   inside address never leaves). A server behind the NAT (a port forward) announces
///   in its 227 and 229 replies the same way.
/// - NAT64 (RFC 6384): the IPv6 client's EPRT `|2|` naming its own address becomes
///   PORT with the translation; EPSV (or EPSV 2) becomes PASV and the server's 227
///   answer a 229 with the port alone. The IPv4-only commands, EPSV ALL or 1, and what
///   cannot be translated pass unchanged, counted `nat64_refused`.
/// - The command policy (`deny`, `allow`, `bounce`, `low_port`): a refused command is
///   answered `504`.
/// - After AUTH TLS (or SSL) and the server's 234, the connection is encrypted: the ALG
///   stands aside ([`crate::contract::STAND_ASIDE`]), counted `stand_aside`.
pub struct Ftp;

/// Indexes of [`Ftp`]'s own events ([`crate::contract::Contract::events`]).
pub mod event {
    /// Commands and replies read (the lines that are not `Other`).
    pub const MESSAGES: usize = 0;
    /// PORT/EPRT/227 naming another host (bounce): nothing opened.
    pub const BOUNCE: usize = 1;
    /// PORT/EPRT naming a port below `min_data_port`: nothing opened.
    pub const LOW_PORT: usize = 2;
    /// The client's own address with no translation granted: the pool address written.
    pub const MASKED: usize = 3;
    /// Address-carrying lines that could not be parsed, left alone.
    pub const PARSE_ERRORS: usize = 4;
    /// Connections stood aside from (AUTH TLS accepted).
    pub const STAND_ASIDE: usize = 5;
    /// NAT64 control lines that could not be translated (RFC 6384), left alone.
    pub const NAT64_REFUSED: usize = 6;
    /// The names, by index.
    pub const NAMES: [&str; 7] = [
        "messages",
        "bounce",
        "low_port",
        "masked",
        "parse_errors",
        "stand_aside",
        "nat64_refused",
    ];
}

/// [`Ftp`]'s connection state bits (beside [`crate::contract::STAND_ASIDE`]).
pub mod state {
    /// The client sent AUTH TLS: a 234 from the server starts the encryption.
    pub const AUTH_PENDING: u8 = 1;
    /// NAT64: the client's EPSV went to the server as PASV; its 227 answer goes back
    /// as a 229, until the client's next command or another final reply.
    pub const EPSV_AS_PASV: u8 = 2;
}

/// The line of a whole message (its line end cut).
fn line_of(msg: &[u8]) -> &[u8] {
    let mut l = msg.strip_suffix(b"\n").unwrap_or(msg);
    l = l.strip_suffix(b"\r").unwrap_or(l);
    l
}

/// The endpoint a client's PORT or EPRT `|1|` names; None when the line is no such
/// command, Some(Err) when it is one that does not parse.
fn client_endpoint(msg: Message<'_>) -> Option<Result<(u32, u16), FtpError>> {
    match msg {
        Message::Port(arg) => Some(parse_host_port(arg).map(|(a, p)| (u32::from(a), p))),
        Message::Eprt(arg) => match parse_eprt(arg) {
            Ok(Eprt::V4(a, p)) => Some(Ok((u32::from(a), p))),
            Ok(Eprt::V6(..)) => None,
            Err(e) => Some(Err(e)),
        },
        _ => None,
    }
}

/// What a client's command `line` is refused with by `policy`, if it is; `client`:
/// the client's own address.
pub fn refused_by(policy: &Policy<'_>, line: &[u8], client: u32) -> Option<&'static str> {
    let verb = &line[..line.iter().position(|&b| b == b' ').unwrap_or(line.len())];
    if !(3..=4).contains(&verb.len()) || !verb.iter().all(u8::is_ascii_alphabetic) {
        return None; // not a command (a reply of a server behind the NAT)
    }
    let named = |list: &[String]| list.iter().any(|c| c.as_bytes().eq_ignore_ascii_case(verb));
    if named(policy.deny) || (!policy.allow.is_empty() && !named(policy.allow)) {
        return Some("504 Command not allowed by policy.");
    }
    match client_endpoint(classify(line)) {
        Some(Ok((a, _))) if a != client && policy.refuse_bounce => {
            Some("504 Data connection to another host not allowed by policy.")
        }
        Some(Ok((a, p))) if a == client && p < policy.min_data_port && policy.refuse_low_port => {
            Some("504 Data port not allowed by policy.")
        }
        _ => None,
    }
}

/// Whether the unfinished start of a client's line `tail` may be a command `policy`
/// refuses (held for the rest: a command cut in two must not slip through).
pub fn policy_holds(policy: &Policy<'_>, tail: &[u8]) -> bool {
    let word = tail.iter().position(|&b| b == b' ');
    let verb = &tail[..word.unwrap_or(tail.len())];
    if verb.len() > 4 || !verb.iter().all(u8::is_ascii_alphabetic) {
        return false;
    }
    let named = |list: &[String]| {
        list.iter().any(|c| {
            let c = c.as_bytes();
            match word {
                Some(_) => c.eq_ignore_ascii_case(verb),
                None => verb.len() <= c.len() && c[..verb.len()].eq_ignore_ascii_case(verb),
            }
        })
    };
    let allowed_whole = word.is_some()
        && policy
            .allow
            .iter()
            .any(|c| c.as_bytes().eq_ignore_ascii_case(verb));
    named(policy.deny) || (!policy.allow.is_empty() && !allowed_whole)
}

/// Writes `a`, `port` as PORT and 227 do, into `out`; the length.
fn write_host_port(a: u32, port: u16, out: &mut [u8; MAX_EDIT]) -> usize {
    let o = a.to_be_bytes();
    let mut w = Writer { out, n: 0 };
    for (k, x) in [o[0], o[1], o[2], o[3], (port >> 8) as u8, port as u8]
        .into_iter()
        .enumerate()
    {
        if k > 0 {
            w.put(b",");
        }
        w.num(u32::from(x));
    }
    w.n
}

/// A bounded writer (an edit's replacement is at most [`MAX_EDIT`] bytes).
struct Writer<'a> {
    out: &'a mut [u8; MAX_EDIT],
    n: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) {
        let m = b.len().min(MAX_EDIT - self.n);
        self.out[self.n..self.n + m].copy_from_slice(&b[..m]);
        self.n += m;
    }

    fn num(&mut self, v: u32) {
        let mut d = [0u8; 10];
        let mut i = d.len();
        let mut v = v;
        loop {
            i -= 1;
            d[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.put(&d[i..]);
    }
}

impl Ftp {
    /// The asks of a NAT44 line from the subscriber.
    fn plan44(&self, line: &[u8], conn: &Conn<'_>, plan: &mut Plan) {
        let ctx = &conn.ctx;
        let from = conn.policy.loose.then_some(0);
        let msg = classify(line);
        match client_endpoint(msg) {
            Some(Ok((a, _))) if a != ctx.inside.0 => plan.notes.note(event::BOUNCE),
            Some(Ok((_, p))) if p < conn.policy.min_data_port => plan.notes.note(event::LOW_PORT),
            Some(Ok(inside)) => {
                plan.push(Ask::Announce {
                    kind: Kind::Tcp,
                    inside,
                    class: crate::class::FTP_DATA,
                    from,
                });
            }
            Some(Err(_)) => plan.notes.note(event::PARSE_ERRORS),
            None if conn.inside_server => {
                // The server behind the NAT: where the client connects.
                let announced = match msg {
                    Message::Reply227 => parse_227(line).map(|(a, p, _, _)| (u32::from(a), p)),
                    Message::Reply229 => parse_229(line).map(|(p, _, _)| (ctx.inside.0, p)),
                    _ => return,
                };
                match announced {
                    Ok((a, _)) if a != ctx.inside.0 => plan.notes.note(event::BOUNCE),
                    Ok(inside) => {
                        plan.push(Ask::Announce {
                            kind: Kind::Tcp,
                            inside,
                            class: crate::class::FTP_DATA,
                            from,
                        });
                    }
                    Err(_) => plan.notes.note(event::PARSE_ERRORS),
                }
            }
            None => {}
        }
    }

    /// The edits of a NAT44 line from the subscriber.
    fn edits44(
        &self,
        line: &[u8],
        conn: &Conn<'_>,
        grants: &[Grant],
        edits: &mut Edits,
    ) -> Result<(), EditError> {
        let ctx = &conn.ctx;
        let mut w = [0u8; 48];
        // The announced endpoint's translation; or, for the subscriber's own address
        // with none, the pool address with the port as written.
        let to = |a: u32, p: u16, notes: &mut Notes| match grants.first() {
            Some(Grant::To(e)) => Some(*e),
            _ if a == ctx.inside.0 => {
                notes.note(event::MASKED);
                Some((ctx.outside.0, p))
            }
            _ => None,
        };
        match classify(line) {
            Message::Port(arg) => {
                if let Ok((a, p)) = parse_host_port(arg) {
                    if let Some((a, p)) = to(u32::from(a), p, &mut edits.notes) {
                        let n = write_host_port(a, p, &mut w);
                        edits.push(5, arg.len(), &w[..n])?;
                    }
                }
            }
            Message::Eprt(arg) => {
                if let Ok(Eprt::V4(a, p)) = parse_eprt(arg) {
                    if let Some((a, p)) = to(u32::from(a), p, &mut edits.notes) {
                        let mut x = Writer { out: &mut w, n: 0 };
                        x.put(b"|1|");
                        let o = a.to_be_bytes();
                        for (k, b) in o.iter().enumerate() {
                            if k > 0 {
                                x.put(b".");
                            }
                            x.num(u32::from(*b));
                        }
                        x.put(b"|");
                        x.num(u32::from(p));
                        x.put(b"|");
                        let n = x.n;
                        edits.push(5, arg.len(), &w[..n])?;
                    }
                }
            }
            Message::Reply227 if conn.inside_server => {
                if let Ok((a, p, st, en)) = parse_227(line) {
                    if let Some((a, p)) = to(u32::from(a), p, &mut edits.notes) {
                        let n = write_host_port(a, p, &mut w);
                        edits.push(st, en - st, &w[..n])?;
                    }
                }
            }
            Message::Reply229 if conn.inside_server => {
                if let (Ok((_, st, en)), Some(Grant::To(e))) = (parse_229(line), grants.first()) {
                    let mut x = Writer { out: &mut w, n: 0 };
                    x.num(u32::from(e.1));
                    let n = x.n;
                    edits.push(st, en - st, &w[..n])?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// NAT64 (RFC 6384): the replacement of a line between the IPv6 client and the
    /// IPv4 server, if any.
    fn edits64(
        &self,
        line: &[u8],
        conn: &Conn<'_>,
        grants: &[Grant],
        edits: &mut Edits,
    ) -> Result<(), EditError> {
        let ctx = &conn.ctx;
        let mut w = [0u8; 48];
        let refused = |edits: &mut Edits| {
            edits.notes.note(event::NAT64_REFUSED);
            Ok(())
        };
        match (classify(line), ctx.dir) {
            (Message::Eprt(arg), Dir::FromInside) => match (parse_eprt(arg), grants.first()) {
                (Ok(Eprt::V6(..)), Some(Grant::To(e))) => {
                    let mut hp = [0u8; 48];
                    let m = write_host_port(e.0, e.1, &mut hp);
                    let mut x = Writer { out: &mut w, n: 0 };
                    x.put(b"PORT ");
                    x.put(&hp[..m]);
                    let n = x.n;
                    edits.push(0, line.len(), &w[..n])
                }
                _ => refused(edits),
            },
            (Message::Epsv(arg), Dir::FromInside) => {
                if arg.is_empty() || arg == b"2" {
                    edits.push(0, line.len(), b"PASV")
                } else {
                    refused(edits)
                }
            }
            (Message::Port(_) | Message::Pasv | Message::Long, Dir::FromInside) => refused(edits),
            (Message::Reply227, Dir::FromOutside) if conn.state & state::EPSV_AS_PASV != 0 => {
                match parse_227(line) {
                    Ok((a, p, _, _)) if u32::from(a) == ctx.remote.0 => {
                        let mut x = Writer { out: &mut w, n: 0 };
                        x.put(b"229 Entering Extended Passive Mode (|||");
                        x.num(u32::from(p));
                        x.put(b"|)");
                        let n = x.n;
                        edits.push(0, line.len(), &w[..n])
                    }
                    _ => refused(edits),
                }
            }
            _ => Ok(()),
        }
    }
}

impl Contract for Ftp {
    fn framing(&self, buf: &[u8], ctx: &Ctx) -> Framing {
        self.framing_in(buf, &Conn::of(*ctx))
    }

    fn plan(&self, msg: &[u8], ctx: &Ctx, plan: &mut Plan) {
        self.plan_in(msg, &Conn::of(*ctx), plan)
    }

    fn edits(
        &self,
        msg: &[u8],
        ctx: &Ctx,
        plan: &Plan,
        grants: &[Grant],
        edits: &mut Edits,
    ) -> Result<(), EditError> {
        self.edits_in(msg, &Conn::of(*ctx), plan, grants, edits)
    }

    fn events(&self) -> &'static [&'static str] {
        &event::NAMES
    }

    fn stateful(&self) -> bool {
        true
    }

    fn nat64_edits(&self) -> bool {
        true
    }

    /// A line; the start of one is held only when it may announce an endpoint or be
    /// a command the policy refuses (the subscriber's: the server's 227 over NAT64
    /// comes whole in practice); any other start passes as it is, as does a line
    /// longer than [`MAX_LINE`].
    fn framing_in(&self, buf: &[u8], conn: &Conn<'_>) -> Framing {
        match next_line(buf, 0) {
            Ok(Some(l)) => Framing::Whole(l.next),
            Ok(None) if buf.is_empty() => Framing::Skip(0),
            Ok(None)
                if conn.ctx.dir == Dir::FromInside
                    && (starts_address_line(buf)
                        || (!conn.nat64 && policy_holds(&conn.policy, buf))) =>
            {
                Framing::More
            }
            Ok(None) | Err(_) => Framing::Skip(buf.len()),
        }
    }

    fn plan_in(&self, msg: &[u8], conn: &Conn<'_>, plan: &mut Plan) {
        if conn.state & STAND_ASIDE != 0 || conn.ctx.dir != Dir::FromInside {
            return;
        }
        let line = line_of(msg);
        if !conn.nat64 {
            return self.plan44(line, conn, plan);
        }
        // An IPv6 client's EPRT |2|: the worker grants it when the address is the
        // host's own.
        if let Message::Eprt(arg) = classify(line) {
            match parse_eprt(arg) {
                Ok(Eprt::V6(_, p)) if p < conn.policy.min_data_port => {
                    plan.notes.note(event::LOW_PORT)
                }
                Ok(Eprt::V6(a, p)) => {
                    plan.push(Ask::Announce6 {
                        kind: Kind::Tcp,
                        addr: u128::from(a),
                        port: p,
                        class: crate::class::FTP_DATA,
                        from: conn.policy.loose.then_some(0),
                    });
                }
                Ok(Eprt::V4(..)) => {}
                Err(_) => plan.notes.note(event::PARSE_ERRORS),
            }
        }
    }

    fn edits_in(
        &self,
        msg: &[u8],
        conn: &Conn<'_>,
        _plan: &Plan,
        grants: &[Grant],
        edits: &mut Edits,
    ) -> Result<(), EditError> {
        if conn.state & STAND_ASIDE != 0 {
            return Ok(());
        }
        let line = line_of(msg);
        if classify(line) != Message::Other {
            edits.notes.note(event::MESSAGES);
        }
        if conn.nat64 {
            self.edits64(line, conn, grants, edits)
        } else if conn.ctx.dir == Dir::FromInside {
            self.edits44(line, conn, grants, edits)
        } else {
            Ok(())
        }
    }

    /// The client's commands on a NAT44 session (over NAT64 none is refused).
    /// FTP's command policy is all in `conn.policy` (commands matched in any case), so
    /// `denied` is not asked; the reply is one line.
    fn refuse(
        &self,
        msg: &[u8],
        conn: &Conn<'_>,
        _denied: &dyn Fn(&[u8]) -> bool,
        reply: &mut Reply,
    ) -> bool {
        if conn.nat64 || conn.ctx.dir != Dir::FromInside || conn.state & STAND_ASIDE != 0 {
            return false;
        }
        let Some(line) = refused_by(&conn.policy, line_of(msg), conn.ctx.inside.0) else {
            return false;
        };
        reply.push(line.as_bytes());
        reply.push(b"\r\n");
        true
    }

    fn advance(&self, msg: &[u8], conn: &Conn<'_>, notes: &mut Notes) -> State {
        let mut s = conn.state;
        if s & STAND_ASIDE != 0 {
            return s;
        }
        let line = line_of(msg);
        let m = classify(line);
        match conn.ctx.dir {
            Dir::FromInside => {
                if conn.nat64 && !matches!(m, Message::Epsv(_)) {
                    // The client's next command: the EPSV was answered.
                    s &= !state::EPSV_AS_PASV;
                }
                match m {
                    Message::Auth => s |= state::AUTH_PENDING,
                    Message::Epsv(arg) if conn.nat64 && (arg.is_empty() || arg == b"2") => {
                        s |= state::EPSV_AS_PASV
                    }
                    _ => {}
                }
            }
            Dir::FromOutside => match m {
                Message::Reply234 if s & state::AUTH_PENDING != 0 => {
                    // The next bytes are TLS: nothing more to read or rewrite.
                    s |= STAND_ASIDE;
                    notes.note(event::STAND_ASIDE);
                }
                // (A 227 keeps it: a retransmission is translated again.)
                Message::Reply227 => {}
                _ if s & state::EPSV_AS_PASV != 0
                    && matches!(line.first(), Some(b'2'..=b'5'))
                    && line.get(3) != Some(&b'-') =>
                {
                    // The server refused the PASV (or answered something else).
                    s &= !state::EPSV_AS_PASV;
                }
                _ => {}
            },
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_holds_incomplete_lines_and_refuses_overlong_ones() {
        let buf = b"USER ftp\r\nPORT 10,0,0,1,4,1\r\nPAS";
        let l1 = next_line(buf, 0).unwrap().unwrap();
        assert_eq!(&buf[l1.start..l1.end], b"USER ftp");
        let l2 = next_line(buf, l1.next).unwrap().unwrap();
        assert_eq!(&buf[l2.start..l2.end], b"PORT 10,0,0,1,4,1");
        assert_eq!(
            next_line(buf, l2.next),
            Ok(None),
            "PAS... waits for its end"
        );
        assert_eq!(next_line(&[b'A'; 600], 0), Err(FtpError::LineTooLong));
        assert_eq!(
            next_line(b"NOOP\n", 0).unwrap().unwrap().end,
            4,
            "bare LF accepted"
        );
    }

    #[test]
    fn port_arguments() {
        assert_eq!(
            parse_host_port(b"192,168,1,2,7,138"),
            Ok((Ipv4Addr::new(192, 168, 1, 2), 1930))
        );
        assert_eq!(parse_host_port(b"192,168,1,2,0,0"), Err(FtpError::PortZero));
        assert_eq!(
            parse_host_port(b"256,168,1,2,7,138"),
            Err(FtpError::BadNumber)
        );
        assert_eq!(parse_host_port(b"1,2,3,4,5"), Err(FtpError::BadSyntax));
        assert_eq!(parse_host_port(b"1,2,3,4,5,0006"), Err(FtpError::BadNumber));
        assert_eq!(parse_host_port(b"1,2,3,4,5,-6"), Err(FtpError::BadNumber));
        assert_eq!(parse_host_port(b"1,2, 3,4,5,6"), Err(FtpError::BadNumber));
        assert_eq!(
            format_host_port(Ipv4Addr::new(198, 51, 100, 7), 1930),
            "198,51,100,7,7,138"
        );
    }

    #[test]
    fn eprt_arguments() {
        assert_eq!(
            parse_eprt(b"|1|132.235.1.2|6275|"),
            Ok(Eprt::V4(Ipv4Addr::new(132, 235, 1, 2), 6275))
        );
        assert_eq!(
            parse_eprt(b"!1!132.235.1.2!6275!"),
            Ok(Eprt::V4(Ipv4Addr::new(132, 235, 1, 2), 6275))
        );
        assert_eq!(
            parse_eprt(b"|2|1080::8:800:200C:417A|5282|"),
            Ok(Eprt::V6("1080::8:800:200c:417a".parse().unwrap(), 5282))
        );
        assert_eq!(parse_eprt(b"|1|132.235.1.2|0|"), Err(FtpError::PortZero));
        assert_eq!(parse_eprt(b"|1|132.235.1|6275|"), Err(FtpError::BadSyntax));
        assert_eq!(
            parse_eprt(b"|1|132.235.1.2|65536|"),
            Err(FtpError::BadNumber)
        );
        assert_eq!(parse_eprt(b"|3|x|1|"), Err(FtpError::BadSyntax));
        assert_eq!(parse_eprt(b""), Err(FtpError::BadSyntax));
        assert_eq!(
            parse_eprt(b"|"),
            Err(FtpError::BadSyntax),
            "one delimiter alone (found by the pipeline fuzz)"
        );
        assert_eq!(
            format_eprt(Ipv4Addr::new(198, 51, 100, 7), 4000),
            "|1|198.51.100.7|4000|"
        );
    }

    #[test]
    fn passive_replies_with_and_without_parentheses() {
        let l = b"227 Entering Passive Mode (192,168,1,2,195,80).";
        let (a, p, s, e) = parse_227(l).unwrap();
        assert_eq!((a, p), (Ipv4Addr::new(192, 168, 1, 2), 50000));
        assert_eq!(&l[s..e], b"192,168,1,2,195,80");
        let (a, p, _, _) = parse_227(b"227 =10,0,0,5,4,1").unwrap();
        assert_eq!((a, p), (Ipv4Addr::new(10, 0, 0, 5), 1025));
        assert!(parse_227(b"227 Entering Passive Mode").is_err());
        let l = b"229 Entering Extended Passive Mode (|||6446|)";
        let (p, s, e) = parse_229(l).unwrap();
        assert_eq!(p, 6446);
        assert_eq!(&l[s..e], b"6446");
        assert!(parse_229(b"229 (|||0|)").is_err());
        assert!(parse_229(b"229 (||6446|)").is_err());
    }

    #[test]
    fn classification() {
        assert_eq!(classify(b"port 1,2,3,4,5,6"), Message::Port(b"1,2,3,4,5,6"));
        assert_eq!(
            classify(b"EPRT |1|1.2.3.4|5|"),
            Message::Eprt(b"|1|1.2.3.4|5|")
        );
        assert_eq!(classify(b"AUTH TLS"), Message::Auth);
        assert_eq!(classify(b"auth ssl"), Message::Auth);
        assert_eq!(classify(b"PORTX 1"), Message::Other);
        assert_eq!(classify(b"234 AUTH TLS OK."), Message::Reply234);
    }

    #[test]
    fn eprt_2_and_the_passive_commands_are_read_for_nat64() {
        assert_eq!(
            parse_eprt(b"|2|2001:db8::10|50000|"),
            Ok(Eprt::V6("2001:db8::10".parse().unwrap(), 50000))
        );
        assert_eq!(parse_eprt(b"|2|2001:db8::10|0|"), Err(FtpError::PortZero));
        assert_eq!(parse_eprt(b"|2|10.0.0.1|50000|"), Err(FtpError::BadSyntax));
        assert_eq!(classify(b"EPSV"), Message::Epsv(b""));
        assert_eq!(classify(b"epsv 2"), Message::Epsv(b"2"));
        assert_eq!(classify(b"EPSV ALL"), Message::Epsv(b"ALL"));
        assert_eq!(classify(b"EPSVX"), Message::Other);
        assert_eq!(classify(b"PASV"), Message::Pasv);
        assert_eq!(classify(b"LPSV"), Message::Long);
        assert_eq!(classify(b"LPRT 6,16,1,2,3"), Message::Long);
        assert_eq!(classify(b"LPRTX"), Message::Other);
    }

    const CLIENT: u32 = 0x6440_0002; // 100.64.0.2
    const POOL: u32 = 0xc633_6407; // 198.51.100.7
    const SERVER: u32 = 0xcb00_710a; // 203.0.113.10

    fn ctx(dir: Dir) -> Ctx {
        Ctx {
            dir,
            inside: (CLIENT, 40000),
            outside: (POOL, 1024),
            remote: (SERVER, 21),
            datagram: false,
        }
    }

    fn conn(dir: Dir) -> Conn<'static> {
        Conn {
            policy: Policy {
                min_data_port: 1024,
                ..Policy::default()
            },
            ..Conn::of(ctx(dir))
        }
    }

    /// The reply with which the policy of `conn` refuses `msg` (None: let through).
    fn police(c: &dyn Contract, msg: &[u8], conn: &Conn<'_>) -> Option<String> {
        let mut reply = Reply::default();
        c.refuse(msg, conn, &|_| false, &mut reply)
            .then(|| String::from_utf8(reply.bytes().to_vec()).unwrap())
    }

    /// The message's plan, and its text once edited with `grants` (None: none made).
    fn run(msg: &[u8], conn: &Conn<'_>, grants: &[Grant]) -> (Plan, Option<Vec<u8>>, Edits) {
        let c: &dyn Contract = &Ftp;
        assert_eq!(c.framing_in(msg, conn), Framing::Whole(msg.len()));
        let mut plan = Plan::default();
        c.plan_in(msg, conn, &mut plan);
        let mut e = Edits::default();
        c.edits_in(msg, conn, &plan, grants, &mut e).unwrap();
        let mut out = [0u8; 256];
        let text = (!e.is_empty()).then(|| {
            let n = e.apply_into(msg, &mut out).unwrap();
            out[..n].to_vec()
        });
        (plan, text, e)
    }

    fn announce(inside: (u32, u16), from: Option<u32>) -> Ask {
        Ask::Announce {
            kind: Kind::Tcp,
            inside,
            class: crate::class::FTP_DATA,
            from,
        }
    }

    #[test]
    fn the_contract_frames_lines_and_holds_only_what_may_announce_or_be_refused() {
        let c: &dyn Contract = &Ftp;
        let inside = conn(Dir::FromInside);
        assert_eq!(c.framing_in(b"USER a\r\nPASS", &inside), Framing::Whole(8));
        assert_eq!(c.framing_in(b"POR", &inside), Framing::More);
        assert_eq!(c.framing_in(b"EPRT |1|", &inside), Framing::More);
        assert_eq!(c.framing_in(b"USER ano", &inside), Framing::Skip(8));
        assert_eq!(c.framing_in(&[b'A'; 600], &inside), Framing::Skip(600));
        assert_eq!(
            c.framing_in(b"PORT 1", &conn(Dir::FromOutside)),
            Framing::Skip(6),
            "the server's starts are not held"
        );
        let deny = ["DELE".to_string()];
        let policed = Conn {
            policy: Policy {
                deny: &deny,
                ..Policy::default()
            },
            ..inside
        };
        assert_eq!(c.framing_in(b"DE", &policed), Framing::More);
        assert_eq!(c.framing_in(b"DE", &inside), Framing::Skip(2));
    }

    #[test]
    fn port_and_eprt_announce_the_clients_data_port_and_are_rewritten() {
        let inside = conn(Dir::FromInside);
        let msg = b"PORT 100,64,0,2,195,80\r\n";
        let (plan, text, e) = run(msg, &inside, &[Grant::To((POOL, 2000))]);
        assert_eq!(
            plan.asks().collect::<Vec<_>>(),
            [&announce((CLIENT, 50000), None)]
        );
        assert_eq!(text.unwrap(), b"PORT 198,51,100,7,7,208\r\n");
        assert_eq!(e.notes.get(event::MESSAGES), 1);
        let msg = b"EPRT |1|100.64.0.2|50000|\r\n";
        let (plan, text, _) = run(msg, &inside, &[Grant::To((POOL, 2000))]);
        assert_eq!(plan.len(), 1);
        assert_eq!(text.unwrap(), b"EPRT |1|198.51.100.7|2000|\r\n");
        // No translation granted: the pool address, the port as written (masked).
        let (_, text, e) = run(msg, &inside, &[Grant::Refused]);
        assert_eq!(text.unwrap(), b"EPRT |1|198.51.100.7|50000|\r\n");
        assert_eq!(e.notes.get(event::MASKED), 1);
        // loose: from any address.
        let loose = Conn {
            policy: Policy {
                loose: true,
                ..inside.policy
            },
            ..inside
        };
        let (plan, _, _) = run(msg, &loose, &[Grant::Refused]);
        assert_eq!(
            plan.asks().collect::<Vec<_>>(),
            [&announce((CLIENT, 50000), Some(0))]
        );
    }

    #[test]
    fn bounces_low_ports_and_bad_arguments_open_nothing() {
        let inside = conn(Dir::FromInside);
        let (plan, text, _) = run(b"PORT 10,9,9,9,195,80\r\n", &inside, &[]);
        assert!(plan.is_empty() && text.is_none());
        assert_eq!(plan.notes.get(event::BOUNCE), 1);
        let (plan, text, e) = run(b"PORT 100,64,0,2,0,25\r\n", &inside, &[]);
        assert_eq!((plan.len(), plan.notes.get(event::LOW_PORT)), (0, 1));
        assert_eq!(text.unwrap(), b"PORT 198,51,100,7,0,25\r\n");
        assert_eq!(e.notes.get(event::MASKED), 1);
        let (plan, text, _) = run(b"PORT 100,64,0,2,0,0\r\n", &inside, &[]);
        assert_eq!((plan.len(), plan.notes.get(event::PARSE_ERRORS)), (0, 1));
        assert!(text.is_none());
        // The server's lines from outside ask nothing over NAT44.
        let (plan, text, _) = run(
            b"227 Entering Passive Mode (203,0,113,10,195,80).\r\n",
            &conn(Dir::FromOutside),
            &[],
        );
        assert!(plan.is_empty() && text.is_none());
    }

    #[test]
    fn a_server_behind_the_nat_announces_in_its_passive_replies() {
        let server = Conn {
            inside_server: true,
            ..conn(Dir::FromInside)
        };
        let msg = b"227 Entering Passive Mode (100,64,0,2,195,80).\r\n";
        let (plan, text, _) = run(msg, &server, &[Grant::To((POOL, 2000))]);
        assert_eq!(
            plan.asks().collect::<Vec<_>>(),
            [&announce((CLIENT, 50000), None)]
        );
        assert_eq!(
            text.unwrap(),
            b"227 Entering Passive Mode (198,51,100,7,7,208).\r\n"
        );
        let msg = b"229 Entering Extended Passive Mode (|||50000|)\r\n";
        let (plan, text, _) = run(msg, &server, &[Grant::To((POOL, 2000))]);
        assert_eq!(plan.len(), 1);
        assert_eq!(
            text.unwrap(),
            b"229 Entering Extended Passive Mode (|||2000|)\r\n"
        );
        // Not a server: its replies are not read.
        let (plan, text, _) = run(msg, &conn(Dir::FromInside), &[]);
        assert!(plan.is_empty() && text.is_none());
    }

    #[test]
    fn the_policy_refuses_commands_with_a_504() {
        let deny = ["DELE".to_string()];
        let p = Conn {
            policy: Policy {
                deny: &deny,
                refuse_bounce: true,
                refuse_low_port: true,
                min_data_port: 1024,
                ..Policy::default()
            },
            ..conn(Dir::FromInside)
        };
        let c: &dyn Contract = &Ftp;
        let reply = |m: &[u8]| police(c, m, &p);
        assert_eq!(
            reply(b"dele x\r\n"),
            Some("504 Command not allowed by policy.\r\n".into())
        );
        assert_eq!(
            reply(b"PORT 10,9,9,9,195,80\r\n"),
            Some("504 Data connection to another host not allowed by policy.\r\n".into())
        );
        assert_eq!(
            reply(b"PORT 100,64,0,2,0,25\r\n"),
            Some("504 Data port not allowed by policy.\r\n".into())
        );
        assert_eq!(reply(b"PORT 100,64,0,2,195,80\r\n"), None);
        assert_eq!(reply(b"226 done\r\n"), None, "a reply is no command");
        let allow = ["USER".to_string(), "PASS".to_string()];
        let only = Conn {
            policy: Policy {
                allow: &allow,
                ..Policy::default()
            },
            ..p
        };
        assert_eq!(police(c, b"USER a\r\n", &only), None);
        assert!(police(c, b"RETR a\r\n", &only).is_some());
        let six = Conn { nat64: true, ..p };
        assert_eq!(police(c, b"DELE x\r\n", &six), None, "not over NAT64");
    }

    #[test]
    fn auth_tls_accepted_makes_the_alg_stand_aside() {
        let c: &dyn Contract = &Ftp;
        let mut notes = Notes::default();
        let s = c.advance(b"AUTH TLS\r\n", &conn(Dir::FromInside), &mut notes);
        assert_eq!(s, state::AUTH_PENDING);
        let out = Conn {
            state: s,
            ..conn(Dir::FromOutside)
        };
        let s = c.advance(b"234 AUTH TLS OK.\r\n", &out, &mut notes);
        assert_ne!(s & STAND_ASIDE, 0);
        assert_eq!(notes.get(event::STAND_ASIDE), 1);
        // A 234 with no AUTH before: nothing.
        let s0 = c.advance(b"234 x\r\n", &conn(Dir::FromOutside), &mut notes);
        assert_eq!(s0, 0);
        let aside = Conn {
            state: s,
            ..conn(Dir::FromInside)
        };
        let (plan, text, e) = run(b"PORT 100,64,0,2,195,80\r\n", &aside, &[]);
        assert!(plan.is_empty() && text.is_none() && e.notes.is_empty());
        assert_eq!(police(c, b"PORT 1,2,3,4,5,6\r\n", &aside), None);
    }

    #[test]
    fn nat64_eprt_becomes_port_and_epsv_becomes_pasv_with_its_227_a_229() {
        let c: &dyn Contract = &Ftp;
        let host: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_0010;
        let six = |dir, state| Conn {
            nat64: true,
            state,
            ..conn(dir)
        };
        let msg = b"EPRT |2|2001:db8::10|50000|\r\n";
        let (plan, text, _) = run(msg, &six(Dir::FromInside, 0), &[Grant::To((POOL, 2000))]);
        let want = Ask::Announce6 {
            kind: Kind::Tcp,
            addr: host,
            port: 50000,
            class: crate::class::FTP_DATA,
            from: None,
        };
        assert_eq!(plan.asks().collect::<Vec<_>>(), [&want]);
        assert_eq!(text.unwrap(), b"PORT 198,51,100,7,7,208\r\n");
        let (_, text, e) = run(msg, &six(Dir::FromInside, 0), &[Grant::Refused]);
        assert!(text.is_none());
        assert_eq!(e.notes.get(event::NAT64_REFUSED), 1);
        for m in [
            &b"PORT 1,2,3,4,5,6\r\n"[..],
            b"PASV\r\n",
            b"EPSV ALL\r\n",
            b"LPSV\r\n",
        ] {
            let (_, text, e) = run(m, &six(Dir::FromInside, 0), &[]);
            assert!(text.is_none());
            assert_eq!(e.notes.get(event::NAT64_REFUSED), 1, "{m:?}");
        }
        let mut notes = Notes::default();
        let (_, text, _) = run(b"EPSV\r\n", &six(Dir::FromInside, 0), &[]);
        assert_eq!(text.unwrap(), b"PASV\r\n");
        let s = c.advance(b"EPSV\r\n", &six(Dir::FromInside, 0), &mut notes);
        assert_eq!(s, state::EPSV_AS_PASV);
        let reply = b"227 Entering Passive Mode (203,0,113,10,195,80).\r\n";
        let (_, text, _) = run(reply, &six(Dir::FromOutside, s), &[]);
        assert_eq!(
            text.unwrap(),
            b"229 Entering Extended Passive Mode (|||50000|)\r\n"
        );
        // Kept for a retransmission; another final reply or the next command ends it.
        assert_eq!(c.advance(reply, &six(Dir::FromOutside, s), &mut notes), s);
        assert_eq!(
            c.advance(b"425 no\r\n", &six(Dir::FromOutside, s), &mut notes),
            0
        );
        assert_eq!(
            c.advance(b"150-wait\r\n", &six(Dir::FromOutside, s), &mut notes),
            s
        );
        assert_eq!(
            c.advance(b"LIST\r\n", &six(Dir::FromInside, s), &mut notes),
            0
        );
        // A 227 naming another address than the server's, or with no EPSV before.
        let other = b"227 Entering Passive Mode (10,0,0,1,195,80).\r\n";
        let (_, text, e) = run(other, &six(Dir::FromOutside, s), &[]);
        assert!(text.is_none());
        assert_eq!(e.notes.get(event::NAT64_REFUSED), 1);
        let (_, text, _) = run(reply, &six(Dir::FromOutside, 0), &[]);
        assert!(text.is_none());
        assert!(c.stateful() && c.nat64_edits());
        assert_eq!(c.events().len(), event::NAMES.len());
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 12345;
        for _ in 0..20_000 {
            let mut b = vec![0u8; (x % 80) as usize];
            for c in &mut b {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let alphabet = b"0123456789,|().PORT227 \r\n\xff";
                *c = alphabet[(x as usize) % alphabet.len()];
            }
            let _ = next_line(&b, 0);
            let _ = parse_host_port(&b);
            let _ = parse_eprt(&b);
            let _ = parse_227(&b);
            let _ = parse_229(&b);
            let _ = classify(&b);
            for dir in [Dir::FromInside, Dir::FromOutside] {
                for nat64 in [false, true] {
                    let cx = Conn {
                        nat64,
                        inside_server: true,
                        state: state::EPSV_AS_PASV,
                        ..conn(dir)
                    };
                    if let Framing::Whole(n) = Ftp.framing_in(&b, &cx) {
                        let (mut plan, mut e) = (Plan::default(), Edits::default());
                        Ftp.plan_in(&b[..n], &cx, &mut plan);
                        let g = [Grant::To((POOL, 65535)); 8];
                        let _ = Ftp.edits_in(&b[..n], &cx, &plan, &g[..plan.len()], &mut e);
                        let _ = police(&Ftp, &b[..n], &cx);
                        Ftp.advance(&b[..n], &cx, &mut Notes::default());
                    }
                }
            }
        }
    }
}
