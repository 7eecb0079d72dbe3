//! IPv6 headers (RFC 8200) and the fragment extension header (RFC 8200 section 4.5).

use super::checksum;
use super::{be16, be32, put16, put32, WireError};

/// Fixed header length.
pub const HEADER_LEN: usize = 40;
/// Length of the fragment extension header.
pub const FRAG_HEADER_LEN: usize = 8;
/// The minimum link MTU every IPv6 link carries (RFC 8200 section 5).
pub const MIN_MTU: usize = 1280;
/// Next header: hop-by-hop options.
pub const NH_HOP_BY_HOP: u8 = 0;
/// Next header: TCP.
pub const NH_TCP: u8 = 6;
/// Next header: UDP.
pub const NH_UDP: u8 = 17;
/// Next header: routing header.
pub const NH_ROUTING: u8 = 43;
/// Next header: fragment header.
pub const NH_FRAGMENT: u8 = 44;
/// Next header: ICMPv6.
pub const NH_ICMPV6: u8 = 58;
/// Next header: no next header.
pub const NH_NONE: u8 = 59;
/// Next header: destination options.
pub const NH_DEST_OPTS: u8 = 60;

/// An IPv6 address as its 16 bytes in network order.
pub type Addr = [u8; 16];

mod field {
    pub const VER_TC_FLOW: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
}

/// True for the extension headers whose length is in 8-octet units after the first
/// 8 (hop-by-hop, routing, destination options): the ones a translator skips over.
pub fn is_skippable_extension(nh: u8) -> bool {
    matches!(nh, NH_HOP_BY_HOP | NH_ROUTING | NH_DEST_OPTS)
}

/// A view over an IPv6 packet. After `new_checked`, the fixed header and the payload
/// (as long as the payload length says) lie within the buffer.
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validates the version and the payload length against the buffer. A payload
    /// length of 0 (a jumbogram, RFC 2675) is refused as malformed: no link of the
    /// appliance carries one.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[field::VER_TC_FLOW] >> 4 != 6 {
            return Err(WireError::Malformed);
        }
        let plen = usize::from(be16(b, field::PAYLOAD_LEN));
        if plen == 0 && b[field::NEXT_HEADER] == NH_HOP_BY_HOP {
            return Err(WireError::Malformed);
        }
        if HEADER_LEN + plen > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(Packet { buffer })
    }
    /// Wraps without checks: only for headers this code has just validated or built.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Traffic class.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (be16(self.buffer.as_ref(), 0) >> 4) as u8
    }
    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        be32(self.buffer.as_ref(), 0) & 0x000f_ffff
    }
    /// Payload length (extension headers included).
    #[inline]
    pub fn payload_len(&self) -> usize {
        usize::from(be16(self.buffer.as_ref(), field::PAYLOAD_LEN))
    }
    /// Next header of the fixed header.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }
    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }
    /// Source address.
    #[inline]
    pub fn src(&self) -> Addr {
        addr_at(self.buffer.as_ref(), field::SRC)
    }
    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Addr {
        addr_at(self.buffer.as_ref(), field::DST)
    }
    /// The payload (up to the payload length), extension headers included.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + self.payload_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source address (no header checksum in IPv6; the L4 one is the caller's).
    #[inline]
    pub fn set_src(&mut self, a: &Addr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 16].copy_from_slice(a);
    }
    /// Sets the destination address.
    #[inline]
    pub fn set_dst(&mut self, a: &Addr) {
        self.buffer.as_mut()[field::DST..field::DST + 16].copy_from_slice(a);
    }
    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, h: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = h;
    }
    /// Sets the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, len: u16) {
        put16(self.buffer.as_mut(), field::PAYLOAD_LEN, len);
    }
    /// Sets the next header of the fixed header.
    #[inline]
    pub fn set_next_header(&mut self, nh: u8) {
        self.buffer.as_mut()[field::NEXT_HEADER] = nh;
    }
    /// The payload, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let plen = self.payload_len();
        &mut self.buffer.as_mut()[HEADER_LEN..HEADER_LEN + plen]
    }
}

#[inline]
fn addr_at(b: &[u8], at: usize) -> Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    a
}

/// Writes a 40-byte fixed header into `b[..40]`.
#[allow(clippy::too_many_arguments)]
pub fn emit(
    b: &mut [u8],
    traffic_class: u8,
    flow_label: u32,
    payload_len: u16,
    next_header: u8,
    hop_limit: u8,
    src: &Addr,
    dst: &Addr,
) {
    put32(
        b,
        field::VER_TC_FLOW,
        6 << 28 | u32::from(traffic_class) << 20 | (flow_label & 0x000f_ffff),
    );
    put16(b, field::PAYLOAD_LEN, payload_len);
    b[field::NEXT_HEADER] = next_header;
    b[field::HOP_LIMIT] = hop_limit;
    b[field::SRC..field::SRC + 16].copy_from_slice(src);
    b[field::DST..field::DST + 16].copy_from_slice(dst);
}

/// The IPv6 pseudo-header sum (RFC 8200 section 8.1) for TCP, UDP and ICMPv6
/// checksums: both addresses, the upper-layer length as 32 bits and the next header.
pub fn pseudo_header(src: &Addr, dst: &Addr, next_header: u8, l4_len: u32) -> u32 {
    let mut acc = checksum::add(checksum::sum(src), checksum::sum(dst));
    acc = checksum::add(acc, (l4_len >> 16) + (l4_len & 0xffff));
    checksum::add(acc, u32::from(next_header))
}

/// A view over a fragment extension header (8 bytes).
pub struct FragmentHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> FragmentHeader<T> {
    /// Checks that the 8 bytes fit.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < FRAG_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(FragmentHeader { buffer })
    }
    /// Next header (of the fragmentable part).
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[0]
    }
    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> usize {
        usize::from(be16(self.buffer.as_ref(), 2) & 0xfff8)
    }
    /// More-fragments flag.
    #[inline]
    pub fn more_fragments(&self) -> bool {
        be16(self.buffer.as_ref(), 2) & 1 == 1
    }
    /// Identification.
    #[inline]
    pub fn ident(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }
    /// True for an atomic fragment (offset 0, no more fragments: RFC 6946).
    #[inline]
    pub fn is_atomic(&self) -> bool {
        self.frag_offset() == 0 && !self.more_fragments()
    }
}

/// Writes a fragment header into `b[..8]`; `offset` is in bytes (a multiple of 8).
pub fn emit_fragment(b: &mut [u8], next_header: u8, offset: usize, more: bool, ident: u32) {
    b[0] = next_header;
    b[1] = 0;
    put16(b, 2, (offset as u16 & 0xfff8) | u16::from(more));
    put32(b, 4, ident);
}

/// Where the upper layer starts: walks the hop-by-hop, routing and destination options
/// headers after the fixed header and stops at the first other one, or right after a
/// fragment header (what follows a fragment header is its fragmentable part).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    /// Offset (from the start of the IPv6 header) of the first header that is not a
    /// skippable extension, or of the bytes after the fragment header.
    pub offset: usize,
    /// Its type (the next header value that names it).
    pub next_header: u8,
    /// Offset of the fragment header if the chain holds one.
    pub fragment: Option<usize>,
    /// Offset of the segments-left byte of the first routing header whose segments
    /// left is not zero (RFC 7915 5.1: such a packet is not translated).
    pub segments_left: Option<usize>,
}

/// Walks the extension headers of `p` (bytes from the IPv6 header on) up to `end`
/// (40 + the payload length, or fewer bytes for the truncated packet inside an ICMPv6
/// error). Fails when a header runs past `end`.
pub fn walk(p: &[u8], end: usize) -> Result<Chain, WireError> {
    let end = end.min(p.len());
    if end < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let mut nh = p[field::NEXT_HEADER];
    let mut at = HEADER_LEN;
    let mut segments_left = None;
    loop {
        if is_skippable_extension(nh) {
            if at + 8 > end {
                return Err(WireError::Truncated);
            }
            let len = (usize::from(p[at + 1]) + 1) * 8;
            if at + len > end {
                return Err(WireError::Truncated);
            }
            if nh == NH_ROUTING && p[at + 3] != 0 && segments_left.is_none() {
                segments_left = Some(at + 3);
            }
            nh = p[at];
            at += len;
        } else if nh == NH_FRAGMENT {
            if at + FRAG_HEADER_LEN > end {
                return Err(WireError::Truncated);
            }
            return Ok(Chain {
                offset: at + FRAG_HEADER_LEN,
                next_header: p[at],
                fragment: Some(at),
                segments_left,
            });
        } else {
            return Ok(Chain {
                offset: at,
                next_header: nh,
                fragment: None,
                segments_left,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    // A UDP datagram 2001:db8::1 -> 2001:db8::2 with traffic class 0xb8 (EF), flow
    // label 0x12345, hop limit 64, and 4 bytes of payload after an 8-byte UDP header.
    fn sample() -> Vec<u8> {
        let mut v = vec![
            0x6b, 0x81, 0x23, 0x45, 0x00, 0x0c, 17, 64, //
        ];
        v.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets());
        v.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets());
        v.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0x00, 0x0c, 0, 0, 1, 2, 3, 4]);
        v
    }

    #[test]
    fn parse_fields() {
        let v = sample();
        let p = Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 12);
        assert_eq!(p.next_header(), NH_UDP);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(
            Ipv6Addr::from(p.src()),
            "2001:db8::1".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(p.payload().len(), 12);
    }

    #[test]
    fn emit_writes_what_parse_reads() {
        let v = sample();
        let mut e = vec![0u8; v.len()];
        e[40..].copy_from_slice(&v[40..]);
        let (s, d) = {
            let p = Packet::new_checked(&v[..]).unwrap();
            (p.src(), p.dst())
        };
        emit(&mut e, 0xb8, 0x12345, 12, NH_UDP, 64, &s, &d);
        assert_eq!(e, v);
    }

    #[test]
    fn truncated_and_malformed() {
        let v = sample();
        assert_eq!(
            Packet::new_checked(&v[..39]).err(),
            Some(WireError::Truncated)
        );
        assert_eq!(
            Packet::new_checked(&v[..51]).err(),
            Some(WireError::Truncated)
        );
        let mut bad = v.clone();
        bad[0] = 0x45;
        assert_eq!(
            Packet::new_checked(&bad[..]).err(),
            Some(WireError::Malformed)
        );
        let mut jumbo = v;
        jumbo[4] = 0;
        jumbo[5] = 0;
        jumbo[6] = NH_HOP_BY_HOP;
        assert_eq!(
            Packet::new_checked(&jumbo[..]).err(),
            Some(WireError::Malformed)
        );
    }

    #[test]
    fn pseudo_header_gives_a_checksum_that_verifies() {
        let mut v = sample();
        let (s, d) = (addr_at(&v, 8), addr_at(&v, 24));
        let acc = checksum::add(pseudo_header(&s, &d, NH_UDP, 12), checksum::sum(&v[40..]));
        let c = checksum::finish(acc);
        put16(&mut v, 46, c);
        let again = checksum::add(pseudo_header(&s, &d, NH_UDP, 12), checksum::sum(&v[40..]));
        assert_eq!(checksum::fold(again), 0xffff);
    }

    #[test]
    fn fragment_header_round_trip() {
        let mut b = [0u8; 8];
        emit_fragment(&mut b, NH_UDP, 1448, true, 0xdead_beef);
        assert_eq!(b, [17, 0, 0x05, 0xa9, 0xde, 0xad, 0xbe, 0xef]);
        let f = FragmentHeader::new_checked(&b[..]).unwrap();
        assert_eq!(f.next_header(), NH_UDP);
        assert_eq!(f.frag_offset(), 1448);
        assert!(f.more_fragments());
        assert!(!f.is_atomic());
        assert_eq!(f.ident(), 0xdead_beef);
        assert!(FragmentHeader::new_checked(&b[..7]).is_err());
    }

    #[test]
    fn walk_skips_options_and_finds_the_fragment_header() {
        let mut v = sample();
        // Insert a destination options header (8 bytes, PadN) then a fragment header.
        let mut ext = vec![NH_FRAGMENT, 0, 1, 4, 0, 0, 0, 0];
        let mut frag = [0u8; 8];
        emit_fragment(&mut frag, NH_UDP, 0, true, 7);
        ext.extend_from_slice(&frag);
        v.splice(40..40, ext);
        v[6] = NH_DEST_OPTS;
        v[5] = 12 + 16;
        let c = walk(&v, v.len()).unwrap();
        assert_eq!(
            c,
            Chain {
                offset: 56,
                next_header: NH_UDP,
                fragment: Some(48),
                segments_left: None,
            }
        );
        // A routing header (type 4, 2 segments left) in place of the options.
        v[40..44].copy_from_slice(&[NH_FRAGMENT, 0, 4, 2]);
        v[6] = NH_ROUTING;
        assert_eq!(walk(&v, v.len()).unwrap().segments_left, Some(43));
        // A header whose length runs past the end given.
        assert_eq!(walk(&v, 47), Err(WireError::Truncated));
        v[41] = 9;
        assert_eq!(walk(&v, v.len()), Err(WireError::Truncated));
    }
}
