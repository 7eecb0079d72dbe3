//! The text framing SIP (RFC 3261 section 7) and RTSP (RFC 2326 section 4) share: a
//! start line, header lines `name: value` (folded continuation lines allowed), an empty
//! line, and a body whose length Content-Length gives. Bounded: a head longer than
//! [`MAX_HEAD`] or with more than [`MAX_HEADERS`] lines is refused, as is a body longer
//! than [`MAX_BODY`].

use std::net::Ipv4Addr;
use std::ops::Range;

/// Longest head (start line and headers) accepted.
pub const MAX_HEAD: usize = 8192;
/// Most header lines accepted.
pub const MAX_HEADERS: usize = 64;
/// Longest body accepted.
pub const MAX_BODY: usize = 16384;

/// Why a message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextError {
    /// The start line is not one of the protocol's.
    NotThisProtocol,
    /// A header line has no colon.
    HeaderNoColon,
    /// A header name is empty or has characters a token may not.
    BadHeaderName,
    /// Content-Length is not a number, too big, or given twice with different values.
    BadContentLength,
    /// The head has no end within the datagram, or the body is shorter than announced.
    Truncated,
    /// The head is longer than MAX_HEAD or has more than MAX_HEADERS lines.
    TooLong,
    /// A byte that no header may carry (NUL, or a bare CR).
    BadByte,
}

impl TextError {
    /// A short name for counters and logs.
    pub fn name(self) -> &'static str {
        match self {
            TextError::NotThisProtocol => "not_this_protocol",
            TextError::HeaderNoColon => "header_without_colon",
            TextError::BadHeaderName => "bad_header_name",
            TextError::BadContentLength => "bad_content_length",
            TextError::Truncated => "truncated",
            TextError::TooLong => "too_long",
            TextError::BadByte => "bad_byte",
        }
    }
}

/// A list of at most `N` items kept in place (no allocation): what the parsers of the
/// ALGs that run on the worker collect. An item past `N` is not kept and is counted in
/// [`List::over`]; each user says what that means for its message.
#[derive(Clone)]
pub struct List<T, const N: usize> {
    items: [T; N],
    n: usize,
    /// Items that did not fit.
    pub over: usize,
}

impl<T: Default, const N: usize> Default for List<T, N> {
    fn default() -> Self {
        List {
            items: std::array::from_fn(|_| T::default()),
            n: 0,
            over: 0,
        }
    }
}

impl<T, const N: usize> List<T, N> {
    /// Adds `t` at the end; false (and counted in `over`) when the list is full.
    pub fn push(&mut self, t: T) -> bool {
        match self.items.get_mut(self.n) {
            Some(slot) => {
                *slot = t;
                self.n += 1;
                true
            }
            None => {
                self.over += 1;
                false
            }
        }
    }

    /// Keeps the first `n` items (no more than there are).
    pub fn truncate(&mut self, n: usize) {
        self.n = self.n.min(n);
    }

    /// Forgets every item and what did not fit.
    pub fn clear(&mut self) {
        self.n = 0;
        self.over = 0;
    }
}

impl<T, const N: usize> std::ops::Deref for List<T, N> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.items[..self.n]
    }
}

impl<T, const N: usize> std::ops::DerefMut for List<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.items[..self.n]
    }
}

impl<T: std::fmt::Debug, const N: usize> std::fmt::Debug for List<T, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()?;
        if self.over > 0 {
            write!(f, " (+{} over)", self.over)?;
        }
        Ok(())
    }
}

impl<T: PartialEq, const N: usize> PartialEq for List<T, N> {
    fn eq(&self, other: &Self) -> bool {
        self[..] == other[..] && self.over == other.over
    }
}

impl<T: Eq, const N: usize> Eq for List<T, N> {}

impl<'a, T, const N: usize> IntoIterator for &'a List<T, N> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Text of at most `N` bytes kept in place: numbers and addresses written with
/// `write!` (`core::fmt::Write`) without allocating. Writing past `N` fails and
/// writes nothing more.
#[derive(Clone, Copy)]
pub struct Text<const N: usize> {
    b: [u8; N],
    n: usize,
}

impl<const N: usize> Default for Text<N> {
    fn default() -> Self {
        Text { b: [0; N], n: 0 }
    }
}

impl<const N: usize> Text<N> {
    /// The text written.
    pub fn bytes(&self) -> &[u8] {
        &self.b[..self.n]
    }
}

impl<const N: usize> std::fmt::Write for Text<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let to = self
            .b
            .get_mut(self.n..self.n + s.len())
            .ok_or(std::fmt::Error)?;
        to.copy_from_slice(s.as_bytes());
        self.n += s.len();
        Ok(())
    }
}

/// `args` written into a [`Text`] of `N` bytes (None when longer).
pub fn text<const N: usize>(args: std::fmt::Arguments<'_>) -> Option<Text<N>> {
    let mut t = Text::default();
    std::fmt::Write::write_fmt(&mut t, args).ok()?;
    Some(t)
}

/// One header: where its name and its (unfolded, trimmed) value are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// The name, without the colon.
    pub name: Range<usize>,
    /// The value, from its first to its last non-blank byte (continuation lines included).
    pub value: Range<usize>,
}

/// A parsed message: offsets into the buffer it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The start line, without its line end.
    pub start_line: Range<usize>,
    /// Headers in order (at most [`MAX_HEADERS`]: a head with more is refused).
    pub headers: List<Header, MAX_HEADERS>,
    /// The body (empty when there is none).
    pub body: Range<usize>,
    /// Where the Content-Length value is, if there is one.
    pub content_length: Option<Range<usize>>,
    /// Bytes of the whole message (head and body).
    pub len: usize,
}

impl Message {
    /// The values of the headers called `name` or its compact form (case-insensitive).
    pub fn values<'m>(
        &'m self,
        buf: &'m [u8],
        name: &'m str,
        compact: Option<&'m str>,
    ) -> impl Iterator<Item = Range<usize>> + 'm {
        self.headers.iter().filter_map(move |h| {
            let n = &buf[h.name.clone()];
            let hit = n.eq_ignore_ascii_case(name.as_bytes())
                || compact.is_some_and(|c| n.eq_ignore_ascii_case(c.as_bytes()));
            hit.then(|| h.value.clone())
        })
    }

    /// The first value of header `name`.
    pub fn value(&self, buf: &[u8], name: &str, compact: Option<&str>) -> Option<Range<usize>> {
        self.values(buf, name, compact).next()
    }
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// The end of the line starting at `from` (offset of its CR or LF) and of its line end.
fn line_end(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let i = buf[from..].iter().position(|&b| b == b'\n')? + from;
    let end = if i > from && buf[i - 1] == b'\r' {
        i - 1
    } else {
        i
    };
    Some((end, i + 1))
}

/// Parses the message at the start of `buf`. With `datagram` the buffer is the whole
/// message (UDP): a missing Content-Length means "the rest". Without it (a TCP stream)
/// `Ok(None)` means the message is not complete yet, and Content-Length is required
/// for a body (none means an empty one).
pub fn parse(
    buf: &[u8],
    datagram: bool,
    start_ok: impl Fn(&[u8]) -> bool,
) -> Result<Option<Message>, TextError> {
    let limit = buf.len().min(MAX_HEAD);
    let Some((sl_end, mut at)) = line_end(&buf[..limit], 0) else {
        return if buf.len() >= MAX_HEAD {
            Err(TextError::TooLong)
        } else if datagram {
            Err(TextError::Truncated)
        } else if !buf.is_empty() && !start_ok(buf) && buf.len() > 16 {
            Err(TextError::NotThisProtocol)
        } else {
            Ok(None)
        };
    };
    if !start_ok(&buf[..sl_end]) {
        return Err(TextError::NotThisProtocol);
    }
    let mut headers: List<Header, MAX_HEADERS> = List::default();
    let mut cl: Option<(usize, Range<usize>)> = None;
    loop {
        let Some((end, next)) = line_end(&buf[..limit], at) else {
            return if buf.len() >= MAX_HEAD {
                Err(TextError::TooLong)
            } else if datagram {
                Err(TextError::Truncated)
            } else {
                Ok(None)
            };
        };
        let line = &buf[at..end];
        if line.iter().any(|&b| b == 0 || b == b'\r') {
            return Err(TextError::BadByte);
        }
        if line.is_empty() {
            at = next;
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // A continuation of the previous header's value.
            let h = headers.last_mut().ok_or(TextError::HeaderNoColon)?;
            let lead = line.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let trail = line
                .iter()
                .rev()
                .take_while(|b| b.is_ascii_whitespace())
                .count();
            // A blank continuation adds nothing.
            if lead + trail < line.len() {
                if h.value.is_empty() {
                    h.value = at + lead..end - trail;
                } else {
                    h.value.end = end - trail;
                }
            }
            at = next;
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(TextError::HeaderNoColon)?;
        let name_end = colon
            - line[..colon]
                .iter()
                .rev()
                .take_while(|&&b| b == b' ' || b == b'\t')
                .count();
        if name_end == 0 || !line[..name_end].iter().all(|&b| is_token(b)) {
            return Err(TextError::BadHeaderName);
        }
        let v = &line[colon + 1..];
        let lead = v.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        let trail = v[lead..]
            .iter()
            .rev()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        let value = at + colon + 1 + lead..end - trail;
        if headers.len() == MAX_HEADERS {
            return Err(TextError::TooLong);
        }
        let name = &line[..name_end];
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let n = number(&buf[value.clone()]).ok_or(TextError::BadContentLength)?;
            if cl.as_ref().is_some_and(|(old, _)| *old != n) {
                return Err(TextError::BadContentLength);
            }
            cl = Some((n, value.clone()));
        }
        headers.push(Header {
            name: at..at + name_end,
            value,
        });
        debug_assert!(headers.over == 0);
        at = next;
    }
    let (body_len, content_length) = match cl {
        Some((n, r)) => (n, Some(r)),
        None if datagram => (buf.len() - at, None),
        None => (0, None),
    };
    if body_len > MAX_BODY {
        return Err(TextError::BadContentLength);
    }
    if buf.len() - at < body_len {
        return if datagram {
            Err(TextError::Truncated)
        } else {
            Ok(None)
        };
    }
    Ok(Some(Message {
        start_line: 0..sl_end,
        headers,
        body: at..at + body_len,
        content_length,
        len: at + body_len,
    }))
}

/// A decimal number of 1 to 5 digits, at most [`MAX_BODY`] x 4.
fn number(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 6 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// A port number: 1 to 5 digits, 0 to 65535.
pub fn port(s: &[u8]) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// A dotted-quad IPv4 literal, strictly (four decimal parts of 1 to 3 digits, no
/// leading zeros beyond one digit).
pub fn ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    if s.len() < 7 || s.len() > 15 {
        return None;
    }
    let mut parts = [0u8; 4];
    let mut n = 0;
    for p in s.split(|&b| b == b'.') {
        if n == 4 || p.is_empty() || p.len() > 3 || !p.iter().all(u8::is_ascii_digit) {
            return None;
        }
        if p.len() > 1 && p[0] == b'0' {
            return None;
        }
        let v: u32 = std::str::from_utf8(p).ok()?.parse().ok()?;
        parts[n] = u8::try_from(v).ok()?;
        n += 1;
    }
    (n == 4).then(|| Ipv4Addr::from(parts))
}

/// Splits `r` at commas that are outside quotes and angle brackets: each part, trimmed.
pub fn split_commas(buf: &[u8], r: Range<usize>) -> Commas<'_> {
    Commas {
        buf,
        at: r.start,
        end: r.end,
        done: false,
    }
}

/// The parts of [`split_commas`], in order.
pub struct Commas<'b> {
    buf: &'b [u8],
    at: usize,
    end: usize,
    done: bool,
}

impl Iterator for Commas<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        if self.done {
            return None;
        }
        let (buf, start) = (self.buf, self.at);
        let (mut quoted, mut angle) = (false, false);
        let mut i = start;
        while i < self.end {
            match buf[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b'<' if !quoted => angle = true,
                b'>' if !quoted => angle = false,
                b',' if !quoted && !angle => {
                    self.at = i + 1;
                    return Some(trim(buf, start..i));
                }
                _ => {}
            }
            i += 1;
        }
        self.done = true;
        Some(trim(buf, start..self.end))
    }
}

/// `r` without leading and trailing blanks.
pub fn trim(buf: &[u8], r: Range<usize>) -> Range<usize> {
    let mut s = r.start;
    let mut e = r.end;
    while s < e && buf[s].is_ascii_whitespace() {
        s += 1;
    }
    while e > s && buf[e - 1].is_ascii_whitespace() {
        e -= 1;
    }
    s..e
}

/// Parameters `;name[=value]` in `r`: (name, value) ranges, value empty when absent.
pub fn params(buf: &[u8], r: Range<usize>) -> Params<'_> {
    Params {
        buf,
        at: r.start,
        end: r.end,
    }
}

/// The parameters of [`params`], in order.
pub struct Params<'b> {
    buf: &'b [u8],
    at: usize,
    end: usize,
}

impl Iterator for Params<'_> {
    type Item = (Range<usize>, Range<usize>);

    fn next(&mut self) -> Option<Self::Item> {
        let buf = self.buf;
        while self.at < self.end && buf[self.at] != b';' {
            self.at += 1;
        }
        if self.at >= self.end {
            return None;
        }
        let s = self.at + 1;
        let mut e = s;
        while e < self.end && buf[e] != b';' {
            e += 1;
        }
        self.at = e;
        let p = trim(buf, s..e);
        Some(match buf[p.clone()].iter().position(|&b| b == b'=') {
            Some(eq) => (
                trim(buf, p.start..p.start + eq),
                trim(buf, p.start + eq + 1..p.end),
            ),
            None => (p.clone(), p.end..p.end),
        })
    }
}

/// A FNV-1a hash of the bytes, for tagging expectations with a call or session.
pub fn tag(b: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &x in b {
        h ^= u32::from(x);
        h = h.wrapping_mul(0x0100_0193);
    }
    h | 1
}

/// Writes `buf` with `edits` made into `out`: each edit is (offset, bytes replaced,
/// replacement), in increasing, non-overlapping offsets of `buf`. Returns the length
/// written, or None when `out` is too short or an edit precedes the end of the one
/// before it or lies outside `buf` (what `out` then holds is not to be used). What the
/// stream engine makes of a joined run's edits (`dataplane/src/alg.rs`), and of one
/// message's ([`crate::contract::Edits::apply_into`]): no allocation, the caller's
/// buffer.
pub fn apply_into<'e>(
    buf: &[u8],
    edits: impl IntoIterator<Item = (usize, usize, &'e [u8])>,
    out: &mut [u8],
) -> Option<usize> {
    let (mut from, mut to) = (0usize, 0usize);
    for (at, len, with) in edits {
        let keep = buf.get(from..at)?;
        out.get_mut(to..to + keep.len())?.copy_from_slice(keep);
        to += keep.len();
        out.get_mut(to..to + with.len())?.copy_from_slice(with);
        to += with.len();
        from = at.checked_add(len)?;
    }
    let rest = buf.get(from..)?;
    out.get_mut(to..to + rest.len())?.copy_from_slice(rest);
    Some(to + rest.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip_start(l: &[u8]) -> bool {
        l.starts_with(b"SIP/2.0 ") || l.ends_with(b" SIP/2.0")
    }

    #[test]
    fn apply_into_writes_the_edits_into_the_given_buffer_or_says_it_cannot() {
        let buf = b"PORT 10,0,0,1,4,1\r\n";
        let edits = [
            (5usize, 12usize, &b"198,51,100,7,156,64"[..]),
            (19, 0, &b"!"[..]),
        ];
        let mut out = [0u8; 64];
        let n = apply_into(buf, edits, &mut out).unwrap();
        assert_eq!(&out[..n], b"PORT 198,51,100,7,156,64\r\n!");
        // One byte short of the result: refused, not cut.
        assert_eq!(apply_into(buf, edits, &mut out[..n - 1]), None);
        // An edit before the end of the one before it, or past the text: refused.
        let back = [(5usize, 4usize, &b"x"[..]), (6, 1, &b"y"[..])];
        assert_eq!(apply_into(buf, back, &mut out), None);
        assert_eq!(
            apply_into(buf, [(30usize, 0usize, &b"x"[..])], &mut out),
            None
        );
        // No edits: a copy.
        assert_eq!(apply_into(buf, [], &mut out), Some(buf.len()));
    }

    #[test]
    fn a_list_is_bounded_and_counts_what_did_not_fit() {
        let mut l: List<u16, 3> = List::default();
        for k in 0..5 {
            assert_eq!(l.push(k), k < 3);
        }
        assert_eq!((&l[..], l.over), (&[0, 1, 2][..], 2));
        l.truncate(1);
        assert_eq!(l.len(), 1);
        l.clear();
        assert!(l.is_empty() && l.over == 0);
    }

    #[test]
    fn text_is_bounded() {
        let t = text::<15>(format_args!("{}", Ipv4Addr::new(255, 255, 255, 255))).unwrap();
        assert_eq!(t.bytes(), b"255.255.255.255");
        assert!(text::<14>(format_args!("{}", Ipv4Addr::new(255, 255, 255, 255))).is_none());
        assert_eq!(
            text::<5>(format_args!("{}", 65535u16)).unwrap().bytes(),
            b"65535"
        );
    }

    #[test]
    fn headers_values_and_body() {
        let m = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\nSubject: one\r\n  two\r\nl: 3\r\n\r\nabcEXTRA";
        let p = parse(m, true, sip_start).unwrap().unwrap();
        assert_eq!(p.headers.len(), 3);
        assert_eq!(&m[p.headers[1].value.clone()], b"one\r\n  two");
        assert_eq!(&m[p.body.clone()], b"abc");
        assert_eq!(p.len, m.len() - 5);
    }

    #[test]
    fn blank_continuation_lines_add_nothing() {
        // Found by the rtsp fuzz target: an empty value continued by a blank line gave
        // an inverted range.
        let m = b"SIP/2.0 200 OK\r\nTransport:\n\t\r\n\r\n";
        let p = parse(m, true, sip_start).unwrap().unwrap();
        assert!(p.headers[0].value.is_empty());
        assert!(p.headers[0].value.start <= p.headers[0].value.end);
    }

    #[test]
    fn refusals() {
        let ok = |m: &[u8], d| parse(m, d, sip_start);
        assert_eq!(
            ok(b"SIP/2.0 200 OK\r\nNoColon\r\n\r\n", true),
            Err(TextError::HeaderNoColon)
        );
        assert_eq!(
            ok(b"SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n", true),
            Err(TextError::BadContentLength)
        );
        assert_eq!(
            ok(b"SIP/2.0 200 OK\r\nContent-Length: 99999999\r\n\r\n", true),
            Err(TextError::BadContentLength)
        );
        assert_eq!(
            ok(
                b"SIP/2.0 200 OK\r\nContent-Length: 1\r\nl: 2\r\n\r\nab",
                true
            ),
            Err(TextError::BadContentLength)
        );
        assert_eq!(
            ok(b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nab", true),
            Err(TextError::Truncated)
        );
        assert_eq!(
            ok(b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nab", false),
            Ok(None)
        );
        assert_eq!(ok(b"SIP/2.0 200 OK\r\nVia: x", false), Ok(None));
        assert_eq!(
            ok(b"HTTP/1.1 200 OK\r\n\r\n", true),
            Err(TextError::NotThisProtocol)
        );
        assert_eq!(
            ok(b"SIP/2.0 200 OK\r\nA\0: b\r\n\r\n", true),
            Err(TextError::BadByte)
        );
        assert_eq!(
            ok(b"SIP/2.0 200 OK\r\n: b\r\n\r\n", true),
            Err(TextError::BadHeaderName)
        );
        let many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
        let m = format!("SIP/2.0 200 OK\r\n{many}\r\n");
        assert_eq!(ok(m.as_bytes(), true), Err(TextError::TooLong));
    }

    #[test]
    fn literals_and_lists() {
        assert_eq!(ipv4(b"192.168.1.2"), Some(Ipv4Addr::new(192, 168, 1, 2)));
        for bad in [
            &b"192.168.1"[..],
            b"1.2.3.256",
            b"01.2.3.4",
            b"1.2.3.4.5",
            b"a.b.c.d",
            b"1..2.3",
        ] {
            assert_eq!(ipv4(bad), None, "{:?}", std::str::from_utf8(bad));
        }
        assert_eq!(port(b"65535"), Some(65535));
        assert_eq!(port(b"65536"), None);
        assert_eq!(port(b""), None);
        let b = b"\"a, b\" <sip:x@1.2.3.4;p=1,2>, <sip:y@5.6.7.8>;q=1";
        let parts: Vec<_> = split_commas(b, 0..b.len()).collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(&b[parts[1].clone()], b"<sip:y@5.6.7.8>;q=1");
        let v = b"SIP/2.0/UDP h;branch=z9;rport;received=1.2.3.4";
        let p: Vec<_> = params(v, 0..v.len()).collect();
        assert_eq!(p.len(), 3);
        assert_eq!(&v[p[1].0.clone()], b"rport");
        assert!(p[1].1.is_empty());
        assert_eq!(&v[p[2].1.clone()], b"1.2.3.4");
    }
}
