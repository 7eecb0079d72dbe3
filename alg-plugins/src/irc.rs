//! IRC DCC (the CTCP `DCC` requests of RFC 1459/2812 clients), the first ALG built on
//! the [`Contract`] alone. An IRC line is at most [`MAX_LINE`] bytes with its CRLF
//! (IRCv3 message tags in front, `@...`, are not counted, up to [`MAX_TAGS`]); inside a
//! `PRIVMSG` or `NOTICE`, a CTCP request `\x01DCC ...\x01` may name an endpoint:
//!
//! - `DCC SEND file ip port [size] [token]` and `DCC CHAT chat ip port` (and the
//!   `SSEND`, `TSEND`, `SCHAT`, `TCHAT` variants): the sender listens on `ip port`. From
//!   the subscriber with its own address, an [`Ask::Announce`] of a TCP port (class
//!   `irc_dcc`, from any peer: the peer is not the IRC server): ip and port become the
//!   translation. Port 0 (passive or reverse DCC: the offerer asks the other side to
//!   listen, with a token) asks nothing; the subscriber's address in it still becomes
//!   its pool address.
//! - `DCC RESUME file port pos [token]` and `DCC ACCEPT file port pos [token]` name
//!   the port of the earlier offer: an [`Ask::Lookup`] of it (from the peer: the
//!   translation the subscriber's offer got, rewritten to the inside port; from the
//!   subscriber: its own port, rewritten to the translation if it has one, left as it
//!   is when it is a port the peer offered).
//!
//! The address is written as a decimal number (the usual form) or dotted (some
//! clients); it is written back in the same form. A filename may be quoted (`"a b"`).
//! A DCC naming another address than the subscriber's is announced as written and
//! refused by the dataplane (counted). A DCC that does not parse (address or port not
//! a number, fields missing) makes its line a [`Framing::Skip`]: left as it is, and
//! counted.

use crate::contract::{
    Ask, Contract, Ctx, Dir, EditError, Edits, Framing, Grant, Kind, Plan, MAX_ASKS,
};

/// Longest IRC line, CRLF included (RFC 2812 2.3), not counting message tags.
pub const MAX_LINE: usize = 512;
/// Longest message-tags part (`@...` and its space; IRCv3 message-tags).
pub const MAX_TAGS: usize = 8191;

/// The IRC DCC ALG (see the module's doc).
pub struct Irc;

/// What a DCC request is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verb {
    /// SEND, CHAT and their variants: `name ip port ...`.
    Offer,
    /// RESUME or ACCEPT: `name port pos ...`.
    Resume,
}

/// A number in a line: where it is, its value, and whether it was dotted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Field {
    at: usize,
    len: usize,
    value: u32,
    dotted: bool,
}

/// One DCC request of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Dcc {
    verb: Verb,
    addr: Option<Field>,
    port: Field,
}

/// A DCC request that does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Malformed;

/// Most DCC requests read in one line (more are left alone).
const MAX_DCC: usize = MAX_ASKS;

/// The DCC requests of one line (its line end left out), in order.
fn dccs(line: &[u8]) -> Result<([Option<Dcc>; MAX_DCC], usize), Malformed> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut out = [None; MAX_DCC];
    let mut n = 0;
    let Some(rest) = after_command(line) else {
        return Ok((out, 0));
    };
    let mut at = rest;
    // A trailing parameter that starts with `DCC ` without the CTCP's \x01 (some
    // clients and scripts): read as one too, up to the first \x01 if any.
    if let Some(t) = line[rest..].windows(2).position(|w| w == b" :") {
        let start = rest + t + 2;
        if line[start..].starts_with(b"DCC ") {
            let end = line[start..]
                .iter()
                .position(|&b| b == 1)
                .map_or(line.len(), |j| start + j);
            if let Some(d) = dcc(line, start, end)? {
                out[n] = Some(d);
                n += 1;
            }
            at = end;
        }
    }
    while let Some(i) = line[at..].iter().position(|&b| b == 1) {
        let start = at + i + 1;
        let end = line[start..]
            .iter()
            .position(|&b| b == 1)
            .map_or(line.len(), |j| start + j);
        if n < MAX_DCC {
            if let Some(d) = dcc(line, start, end)? {
                out[n] = Some(d);
                n += 1;
            }
        }
        at = (end + 1).min(line.len());
        if end >= line.len() {
            break;
        }
    }
    Ok((out, n))
}

/// Where the parameters of a PRIVMSG or NOTICE start (after tags, prefix and
/// command); None for any other line.
fn after_command(line: &[u8]) -> Option<usize> {
    let mut at = 0;
    let skip_word = |at: usize| {
        line[at..]
            .iter()
            .position(|&b| b == b' ')
            .map_or(line.len(), |i| at + i)
    };
    let skip_spaces = |at: usize| {
        line[at..]
            .iter()
            .position(|&b| b != b' ')
            .map_or(line.len(), |i| at + i)
    };
    if line.first() == Some(&b'@') {
        at = skip_spaces(skip_word(at));
    }
    if line.get(at) == Some(&b':') {
        at = skip_spaces(skip_word(at));
    }
    let end = skip_word(at);
    let cmd = &line[at..end];
    (cmd.eq_ignore_ascii_case(b"PRIVMSG") || cmd.eq_ignore_ascii_case(b"NOTICE")).then_some(end)
}

/// The DCC request of the CTCP body `line[start..end]`, if it is one this ALG reads.
fn dcc(line: &[u8], start: usize, end: usize) -> Result<Option<Dcc>, Malformed> {
    let mut words = Words {
        line,
        at: start,
        end,
    };
    match words.next() {
        Some((a, b)) if line[a..b].eq_ignore_ascii_case(b"DCC") => {}
        _ => return Ok(None),
    }
    let Some((a, b)) = words.next() else {
        return Err(Malformed);
    };
    let kind = &line[a..b];
    let verb = if [
        &b"SEND"[..],
        b"SSEND",
        b"TSEND",
        b"CHAT",
        b"SCHAT",
        b"TCHAT",
    ]
    .iter()
    .any(|v| kind.eq_ignore_ascii_case(v))
    {
        Verb::Offer
    } else if kind.eq_ignore_ascii_case(b"RESUME") || kind.eq_ignore_ascii_case(b"ACCEPT") {
        Verb::Resume
    } else {
        return Ok(None);
    };
    words.name().ok_or(Malformed)?;
    let addr = match verb {
        Verb::Offer => Some(address(line, words.next().ok_or(Malformed)?)?),
        Verb::Resume => None,
    };
    let (a, b) = words.next().ok_or(Malformed)?;
    let port = decimal(&line[a..b], 5)
        .filter(|&p| p <= 65535)
        .ok_or(Malformed)?;
    if verb == Verb::Resume {
        // The position must be there.
        let (a, b) = words.next().ok_or(Malformed)?;
        decimal(&line[a..b], 20).ok_or(Malformed)?;
    }
    Ok(Some(Dcc {
        verb,
        addr,
        port: Field {
            at: a,
            len: b - a,
            value: port,
            dotted: false,
        },
    }))
}

/// A decimal number of 1 to `digits` digits that fits a u32 (None otherwise; a
/// position of a RESUME may be longer: only its digits are checked then).
fn decimal(s: &[u8], digits: usize) -> Option<u32> {
    if s.is_empty() || s.len() > digits || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        v = v.saturating_mul(10).saturating_add(u64::from(c - b'0'));
    }
    Some(u32::try_from(v).unwrap_or(u32::MAX))
}

/// An address: a decimal u32 or a dotted IPv4 address.
fn address(line: &[u8], (a, b): (usize, usize)) -> Result<Field, Malformed> {
    let s = &line[a..b];
    let (value, dotted) = if s.contains(&b'.') {
        let mut v = 0u32;
        let mut parts = 0;
        for p in s.split(|&c| c == b'.') {
            let x = decimal(p, 3).filter(|&x| x <= 255).ok_or(Malformed)?;
            v = v << 8 | x;
            parts += 1;
        }
        if parts != 4 {
            return Err(Malformed);
        }
        (v, true)
    } else {
        if s.len() == 10 && s > &b"4294967295"[..] {
            return Err(Malformed);
        }
        (decimal(s, 10).ok_or(Malformed)?, false)
    };
    Ok(Field {
        at: a,
        len: b - a,
        value,
        dotted,
    })
}

/// The space-separated words of a CTCP body.
struct Words<'a> {
    line: &'a [u8],
    at: usize,
    end: usize,
}

impl Words<'_> {
    fn next(&mut self) -> Option<(usize, usize)> {
        while self.at < self.end && self.line[self.at] == b' ' {
            self.at += 1;
        }
        if self.at >= self.end {
            return None;
        }
        let a = self.at;
        while self.at < self.end && self.line[self.at] != b' ' {
            self.at += 1;
        }
        Some((a, self.at))
    }

    /// A name: a word, or a quoted string with spaces.
    fn name(&mut self) -> Option<(usize, usize)> {
        while self.at < self.end && self.line[self.at] == b' ' {
            self.at += 1;
        }
        if self.line.get(self.at) == Some(&b'"') {
            let a = self.at;
            let close = self.line[a + 1..self.end].iter().position(|&c| c == b'"')?;
            self.at = a + 1 + close + 1;
            return Some((a, self.at));
        }
        self.next()
    }
}

/// `v` in decimal, into `buf`: the digits written.
fn digits(mut v: u32, buf: &mut [u8; 16]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return &buf[i..];
        }
    }
}

/// Address `a` in the form of `f` (decimal or dotted), into `buf`.
fn write_addr(a: u32, dotted: bool, buf: &mut [u8; 16]) -> &[u8] {
    if !dotted {
        return digits(a, buf);
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    for (k, octet) in a.to_be_bytes().iter().enumerate() {
        if k > 0 {
            out[n] = b'.';
            n += 1;
        }
        let mut d = [0u8; 16];
        let s = digits(u32::from(*octet), &mut d);
        out[n..n + s.len()].copy_from_slice(s);
        n += s.len();
    }
    buf[..n].copy_from_slice(&out[..n]);
    &buf[..n]
}

/// The length of the tags part (`@...` and the spaces after it), None when longer
/// than [`MAX_TAGS`].
fn tags_len(buf: &[u8]) -> Option<usize> {
    if buf.first() != Some(&b'@') {
        return Some(0);
    }
    let space = buf.iter().take(MAX_TAGS).position(|&b| b == b' ');
    match space {
        Some(i) => Some(i + 1),
        None if buf.len() < MAX_TAGS => Some(buf.len()),
        None => None,
    }
}

impl Contract for Irc {
    fn framing(&self, buf: &[u8], ctx: &Ctx) -> Framing {
        if ctx.datagram {
            return Framing::Whole(buf.len());
        }
        let Some(tags) = tags_len(buf) else {
            let n = buf
                .iter()
                .position(|&b| b == b'\n')
                .map_or(buf.len(), |i| i + 1);
            return Framing::Skip(n);
        };
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) if i + 1 - tags.min(i + 1) > MAX_LINE => Framing::Skip(i + 1),
            Some(i) => match dccs(&buf[..i]) {
                Ok(_) => Framing::Whole(i + 1),
                Err(Malformed) => Framing::Skip(i + 1),
            },
            None if buf.len() - tags.min(buf.len()) >= MAX_LINE => Framing::Skip(buf.len()),
            None => Framing::More,
        }
    }

    fn plan(&self, msg: &[u8], ctx: &Ctx, plan: &mut Plan) {
        let Ok((list, n)) = dccs(msg) else { return };
        for d in list[..n].iter().flatten() {
            if d.port.value == 0 {
                continue;
            }
            let port = d.port.value as u16;
            match (d.verb, ctx.dir, d.addr) {
                (Verb::Offer, Dir::FromInside, Some(a)) => {
                    plan.push(Ask::Announce {
                        kind: Kind::Tcp,
                        inside: (a.value, port),
                        class: crate::class::IRC_DCC,
                        // The peer that connects is not the IRC server: any.
                        from: Some(0),
                    });
                }
                (Verb::Resume, _, _) => {
                    plan.push(Ask::Lookup {
                        kind: Kind::Tcp,
                        outside: (0, port),
                    });
                }
                _ => {}
            }
        }
    }

    fn edits(
        &self,
        msg: &[u8],
        ctx: &Ctx,
        plan: &Plan,
        grants: &[Grant],
        edits: &mut Edits,
    ) -> Result<(), EditError> {
        let Ok((list, n)) = dccs(msg) else {
            return Ok(());
        };
        let mut k = 0;
        let mut buf = [0u8; 16];
        for d in list[..n].iter().flatten() {
            if d.port.value == 0 {
                // Passive DCC from the subscriber: its address still does not leave.
                if let (Dir::FromInside, Some(a)) = (ctx.dir, d.addr) {
                    if a.value == ctx.inside.0 {
                        edits.push(a.at, a.len, write_addr(ctx.outside.0, a.dotted, &mut buf))?;
                    }
                }
                continue;
            }
            let asks = match (d.verb, ctx.dir) {
                (Verb::Offer, Dir::FromInside) | (Verb::Resume, _) => 1,
                _ => 0,
            };
            if asks == 0 {
                continue;
            }
            let grant = grants.get(k).copied().unwrap_or(Grant::Refused);
            let asked = plan.asks().nth(k).is_some();
            k += 1;
            let (Grant::To((addr, port)), true) = (grant, asked) else {
                continue;
            };
            if let (Verb::Offer, Some(a)) = (d.verb, d.addr) {
                edits.push(a.at, a.len, write_addr(addr, a.dotted, &mut buf))?;
            }
            edits.push(d.port.at, d.port.len, digits(u32::from(port), &mut buf))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: u32 = 0x6440_0102; // 100.64.1.2
    const POOL: u32 = 0xC633_6401; // 198.51.100.1

    fn ctx(dir: Dir) -> Ctx {
        Ctx {
            dir,
            inside: (SUB, 40000),
            outside: (POOL, 1024),
            remote: (0xC000_020A, 6667),
            datagram: false,
        }
    }

    /// The message rewritten with `grants` (index for index with its plan), and its plan.
    fn run(msg: &[u8], dir: Dir, grants: &[Grant]) -> (Vec<u8>, Plan) {
        let c = ctx(dir);
        assert_eq!(Irc.framing(msg, &c), Framing::Whole(msg.len()));
        let mut plan = Plan::default();
        Irc.plan(msg, &c, &mut plan);
        let mut e = Edits::default();
        Irc.edits(msg, &c, &plan, grants, &mut e).unwrap();
        let mut out = vec![0u8; msg.len() + 64];
        let n = e.apply_into(msg, &mut out).unwrap();
        out.truncate(n);
        (out, plan)
    }

    #[test]
    fn a_send_from_the_subscriber_announces_and_becomes_the_translation() {
        let msg = b"PRIVMSG bob :\x01DCC SEND file.txt 1681916162 5000 1024\x01\r\n";
        let (out, plan) = run(msg, Dir::FromInside, &[Grant::To((POOL, 2000))]);
        assert_eq!(
            plan.asks().copied().collect::<Vec<_>>(),
            vec![Ask::Announce {
                kind: Kind::Tcp,
                inside: (SUB, 5000),
                class: crate::class::IRC_DCC,
                from: Some(0),
            }]
        );
        assert_eq!(
            out,
            b"PRIVMSG bob :\x01DCC SEND file.txt 3325256705 2000 1024\x01\r\n"
        );
        // Dotted stays dotted; a quoted name with spaces; CHAT.
        let msg = b"PRIVMSG bob :\x01DCC SEND \"my file.txt\" 100.64.1.2 5000\x01\r\n";
        let (out, _) = run(msg, Dir::FromInside, &[Grant::To((POOL, 2000))]);
        assert_eq!(
            out,
            b"PRIVMSG bob :\x01DCC SEND \"my file.txt\" 198.51.100.1 2000\x01\r\n"
        );
        let msg = b"PRIVMSG bob :\x01DCC CHAT chat 1681916162 6000\x01\r\n";
        let (out, _) = run(msg, Dir::FromInside, &[Grant::To((POOL, 2001))]);
        assert_eq!(
            out,
            b"PRIVMSG bob :\x01DCC CHAT chat 3325256705 2001\x01\r\n"
        );
    }

    #[test]
    fn refused_or_elsewhere_is_left_as_written() {
        let msg = b"PRIVMSG bob :\x01DCC SEND f 1681916162 5000\x01\r\n";
        let (out, _) = run(msg, Dir::FromInside, &[Grant::Refused]);
        assert_eq!(out, msg);
        // Another host: announced as written (the dataplane refuses it).
        let msg = b"PRIVMSG bob :\x01DCC SEND f 3232235876 5000\x01\r\n";
        let (out, plan) = run(msg, Dir::FromInside, &[Grant::Refused]);
        assert_eq!(out, msg);
        assert!(matches!(
            plan.asks().next(),
            Some(Ask::Announce {
                inside: (0xC0A8_0164, 5000),
                ..
            })
        ));
    }

    #[test]
    fn resume_and_accept_are_looked_up_both_ways() {
        let msg = b":bob!b@h PRIVMSG alice :\x01DCC RESUME file.txt 2000 4096\x01\r\n";
        let (out, plan) = run(msg, Dir::FromOutside, &[Grant::To((SUB, 5000))]);
        assert_eq!(
            plan.asks().copied().collect::<Vec<_>>(),
            vec![Ask::Lookup {
                kind: Kind::Tcp,
                outside: (0, 2000)
            }]
        );
        assert_eq!(
            out,
            b":bob!b@h PRIVMSG alice :\x01DCC RESUME file.txt 5000 4096\x01\r\n"
        );
        let msg = b"PRIVMSG bob :\x01DCC ACCEPT file.txt 5000 4096\x01\r\n";
        let (out, _) = run(msg, Dir::FromInside, &[Grant::To((POOL, 2000))]);
        assert_eq!(
            out,
            b"PRIVMSG bob :\x01DCC ACCEPT file.txt 2000 4096\x01\r\n"
        );
        // A port the peer offered: no translation, left.
        let (out, _) = run(msg, Dir::FromInside, &[Grant::Refused]);
        assert_eq!(out, msg);
    }

    #[test]
    fn passive_dcc_asks_nothing_for_port_zero_and_the_answer_is_announced() {
        // The peer offers port 0 with a token: nothing to do.
        let msg = b":bob!b@h PRIVMSG alice :\x01DCC SEND f 3232235876 0 100 77\x01\r\n";
        let (out, plan) = run(msg, Dir::FromOutside, &[]);
        assert!(plan.is_empty());
        assert_eq!(out, msg);
        // The subscriber answers with its own address and port and the token.
        let msg = b"PRIVMSG bob :\x01DCC SEND f 1681916162 5001 100 77\x01\r\n";
        let (out, plan) = run(msg, Dir::FromInside, &[Grant::To((POOL, 3000))]);
        assert_eq!(plan.len(), 1);
        assert_eq!(
            out,
            b"PRIVMSG bob :\x01DCC SEND f 3325256705 3000 100 77\x01\r\n"
        );
        // The subscriber offers port 0: its address becomes the pool's, no ask.
        let msg = b"PRIVMSG bob :\x01DCC SEND f 1681916162 0 100 78\x01\r\n";
        let (out, plan) = run(msg, Dir::FromInside, &[]);
        assert!(plan.is_empty());
        assert_eq!(
            out,
            b"PRIVMSG bob :\x01DCC SEND f 3325256705 0 100 78\x01\r\n"
        );
    }

    #[test]
    fn framing_holds_skips_and_counts_malformed_as_skipped() {
        let c = ctx(Dir::FromInside);
        assert_eq!(Irc.framing(b"PRIVMSG bob :\x01DCC SE", &c), Framing::More);
        assert_eq!(Irc.framing(b"PING x\r\nPONG", &c), Framing::Whole(8));
        let long = [b'a'; MAX_LINE + 1];
        assert_eq!(Irc.framing(&long, &c), Framing::Skip(long.len()));
        let mut l = vec![b'a'; MAX_LINE];
        l.extend_from_slice(b"\r\n");
        assert_eq!(Irc.framing(&l, &c), Framing::Skip(l.len()));
        // Tags do not count in the limit.
        let mut t = b"@".to_vec();
        t.extend_from_slice(&[b't'; 600]);
        t.extend_from_slice(b" PING x\r\n");
        assert_eq!(Irc.framing(&t, &c), Framing::Whole(t.len()));
        // The captures' malformed lines (tests/captures/irc-dcc-malformed-*.pcap).
        for m in [
            &b"PRIVMSG victim :\x01DCC SEND file.txt ..... 5000 1024\x01\r\n"[..],
            b"PRIVMSG victim :\x01DCC SEND file.txt 3232235876 abc 1024\x01\r\n",
            b"PRIVMSG victim :\x01DCC SEND file.txt 3232235876 70000\x01\r\n",
            b"PRIVMSG victim :\x01DCC SEND file.txt 4294967296 5000\x01\r\n",
            b"PRIVMSG victim :\x01DCC SEND file.txt\x01\r\n",
            b"PRIVMSG victim :\x01DCC RESUME file.txt 5000\x01\r\n",
            // As the captures have them: no \x01 before DCC.
            b"PRIVMSG victim :DCC SEND file.txt \x01\x02\x03\x04\x05 5000 1024\r\n",
            b"PRIVMSG victim :DCC SEND file.txt 3232235876 abc 1024\r\n",
        ] {
            assert_eq!(Irc.framing(m, &c), Framing::Skip(m.len()), "{m:?}");
        }
        // Without the CTCP's \x01: read as well.
        let m = b"PRIVMSG bob :DCC SEND f 1681916162 5000\r\n";
        assert_eq!(Irc.framing(m, &c), Framing::Whole(m.len()));
        let mut p = Plan::default();
        Irc.plan(m, &c, &mut p);
        assert_eq!(p.len(), 1);
        // Not a DCC this ALG reads: a whole message asking nothing.
        let m = b"PRIVMSG bob :\x01VERSION\x01\r\n";
        assert_eq!(Irc.framing(m, &c), Framing::Whole(m.len()));
        let m = b"JOIN #x :\x01DCC SEND f 1681916162 5000\x01\r\n";
        let mut p = Plan::default();
        Irc.plan(m, &c, &mut p);
        assert!(p.is_empty());
    }

    #[test]
    fn addresses_are_written_back_in_their_form() {
        let mut b = [0u8; 16];
        assert_eq!(write_addr(0xC633_6401, true, &mut b), b"198.51.100.1");
        assert_eq!(write_addr(0, true, &mut b), b"0.0.0.0");
        assert_eq!(write_addr(u32::MAX, false, &mut b), b"4294967295");
        assert_eq!(digits(0, &mut b), b"0");
    }
}
