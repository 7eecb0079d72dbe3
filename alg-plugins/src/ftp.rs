//! FTP (RFC 959, RFC 2428): strict, bounded parsers for the commands and replies that
//! carry addresses: PORT, EPRT, 227 and 229, and the line framing that finds them.
//! A line longer than [`MAX_LINE`] is refused; a line not yet ended asks for more.

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
    let parts: Vec<&[u8]> = s.split(|&b| b == b',').collect();
    if parts.len() != 6 {
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
    let fields: Vec<&[u8]> = s[1..s.len() - 1].split(|&b| b == d).collect();
    if fields.len() != 3 {
        return Err(FtpError::BadSyntax);
    }
    match fields[0] {
        b"1" => {
            let text = std::str::from_utf8(fields[1]).map_err(|_| FtpError::BadSyntax)?;
            let octets: Vec<&str> = text.split('.').collect();
            if octets.len() != 4 {
                return Err(FtpError::BadSyntax);
            }
            let mut o = [0u8; 4];
            for (i, x) in octets.iter().enumerate() {
                o[i] = number(x.as_bytes(), 3, 255)? as u8;
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
        }
    }
}
