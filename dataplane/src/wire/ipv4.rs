//! IPv4 headers (RFC 791).

use super::checksum;
use super::{be16, be32, put16, put32, WireError};

/// Minimum header length.
pub const MIN_HEADER_LEN: usize = 20;
/// Protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// Protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// Protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// Don't-fragment flag in the flags/fragment-offset word.
pub const FLAG_DF: u16 = 0x4000;
/// More-fragments flag.
pub const FLAG_MF: u16 = 0x2000;

mod field {
    pub const VER_IHL: usize = 0;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_FRAG: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTO: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// A view over an IPv4 packet. After `new_checked`, the header (options included) and
/// the total length both lie within the buffer.
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Validates version, IHL and total length against the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let ihl = usize::from(b[field::VER_IHL] & 0x0f) * 4;
        if b[field::VER_IHL] >> 4 != 4 || ihl < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        let total = usize::from(be16(b, field::LENGTH));
        if total < ihl {
            return Err(WireError::Malformed);
        }
        if ihl > b.len() || total > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(Packet { buffer })
    }
    /// Wraps without checks: only for headers this code has just validated or built.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Header length in bytes (IHL * 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }
    /// Total length field.
    #[inline]
    pub fn total_len(&self) -> usize {
        usize::from(be16(self.buffer.as_ref(), field::LENGTH))
    }
    /// Identification.
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::IDENT)
    }
    /// Flags and fragment offset word.
    #[inline]
    pub fn flags_frag(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLAGS_FRAG)
    }
    /// Fragment offset in bytes.
    #[inline]
    pub fn frag_offset(&self) -> usize {
        usize::from(self.flags_frag() & 0x1fff) * 8
    }
    /// True if this is a fragment (MF set or non-zero offset).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | 0x1fff) != 0
    }
    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }
    /// Protocol.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTO]
    }
    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Source address as a host-order u32.
    #[inline]
    pub fn src(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SRC)
    }
    /// Destination address as a host-order u32.
    #[inline]
    pub fn dst(&self) -> u32 {
        be32(self.buffer.as_ref(), field::DST)
    }
    /// True when the header checksum verifies.
    #[inline]
    pub fn checksum_ok(&self) -> bool {
        checksum::fold(checksum::sum(&self.buffer.as_ref()[..self.header_len()])) == 0xffff
    }
    /// The payload (up to total length).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source address, updating the header checksum incrementally.
    #[inline]
    pub fn set_src(&mut self, a: u32) {
        self.set_addr(true, a, false);
    }
    /// Sets the destination address, updating the header checksum incrementally.
    #[inline]
    pub fn set_dst(&mut self, a: u32) {
        self.set_addr(false, a, false);
    }
    /// Sets the identification, updating the checksum incrementally.
    #[inline]
    pub fn set_ident(&mut self, id: u16) {
        let old = self.ident();
        let c = checksum::update16(self.checksum(), old, id);
        let b = self.buffer.as_mut();
        put16(b, field::IDENT, id);
        put16(b, field::CHECKSUM, c);
    }

    /// Sets the source address (`src`) or the destination address and, when
    /// `forward`, decrements the TTL (at least 2: checked by the caller), with one
    /// incremental update of the checksum for both: a translated frame's header.
    #[inline]
    pub fn set_addr(&mut self, src: bool, a: u32, forward: bool) {
        let at = if src { field::SRC } else { field::DST };
        let b = self.buffer.as_mut();
        let mut diff = checksum::delta32(be32(b, at), a);
        if forward {
            // The TTL is the high byte of its word, which drops by 0x100 without a
            // borrow: a one's-complement difference of 0xfeff, whatever the TTL.
            debug_assert!(b[field::TTL] >= 2);
            b[field::TTL] = b[field::TTL].wrapping_sub(1);
            diff += 0xfeff;
        }
        let c = checksum::apply(be16(b, field::CHECKSUM), diff);
        put32(b, at, a);
        put16(b, field::CHECKSUM, c);
    }
    /// Decrements the TTL, updating the checksum incrementally.
    #[inline]
    pub fn decrement_ttl(&mut self) {
        let b = self.buffer.as_mut();
        // The TTL is the high byte of its word: the new word is computed, not read
        // back (a 2-byte load over the 1-byte store just made waits for the store).
        let old = be16(b, field::TTL);
        let new = old.wrapping_sub(0x100);
        b[field::TTL] = (new >> 8) as u8;
        let c = checksum::update16(be16(b, field::CHECKSUM), old, new);
        put16(b, field::CHECKSUM, c);
    }
    /// Sets the total length, updating the checksum incrementally.
    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        let old = self.total_len() as u16;
        let c = checksum::update16(self.checksum(), old, len);
        let b = self.buffer.as_mut();
        put16(b, field::LENGTH, len);
        put16(b, field::CHECKSUM, c);
    }
    /// Recomputes the header checksum from scratch.
    #[inline]
    pub fn fill_checksum(&mut self) {
        let hl = self.header_len();
        let b = self.buffer.as_mut();
        put16(b, field::CHECKSUM, 0);
        let c = checksum::finish(checksum::sum(&b[..hl]));
        put16(b, field::CHECKSUM, c);
    }
    /// The payload, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len(), self.total_len());
        &mut self.buffer.as_mut()[hl..tl]
    }
}

/// Writes a 20-byte header without options into `b`, checksum filled.
#[allow(clippy::too_many_arguments)]
pub fn emit(
    b: &mut [u8],
    total_len: u16,
    ident: u16,
    df: bool,
    ttl: u8,
    proto: u8,
    src: u32,
    dst: u32,
) {
    b[0] = 0x45;
    b[1] = 0;
    put16(b, field::LENGTH, total_len);
    put16(b, field::IDENT, ident);
    put16(b, field::FLAGS_FRAG, if df { FLAG_DF } else { 0 });
    b[field::TTL] = ttl;
    b[field::PROTO] = proto;
    put32(b, field::SRC, src);
    put32(b, field::DST, dst);
    Packet::new_unchecked(&mut b[..MIN_HEADER_LEN]).fill_checksum();
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real TCP SYN's IPv4 header, 172.16.10.99 -> 172.16.10.12 (the widely used
    // checksum worked example), checksum 0xb1e6.
    const HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0xb1, 0xe6, 0xac, 0x10, 0x0a,
        0x63, 0xac, 0x10, 0x0a, 0x0c,
    ];

    #[test]
    fn parse_real_header() {
        let mut buf = [0u8; 60];
        buf[..20].copy_from_slice(&HDR);
        let p = Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 60);
        assert!(p.checksum_ok());
        assert_eq!(p.protocol(), PROTO_TCP);
        assert_eq!(p.src(), u32::from_be_bytes([172, 16, 10, 99]));
        assert_eq!(p.ttl(), 64);
    }

    #[test]
    fn truncated_and_malformed() {
        assert_eq!(
            Packet::new_checked(&HDR[..19]).err(),
            Some(WireError::Truncated)
        );
        let mut bad = HDR;
        bad[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&bad[..]).err(),
            Some(WireError::Malformed)
        );
        let mut bad = HDR;
        bad[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&bad[..]).err(),
            Some(WireError::Malformed)
        );
        let mut bad = HDR;
        bad[3] = 10; // total length below the header
        assert_eq!(
            Packet::new_checked(&bad[..]).err(),
            Some(WireError::Malformed)
        );
    }

    #[test]
    fn setters_keep_checksum_valid() {
        let mut buf = [0u8; 60];
        buf[..20].copy_from_slice(&HDR);
        let mut p = Packet::new_checked(&mut buf[..]).unwrap();
        p.set_src(0xc633_6401);
        p.set_dst(0x0a00_0001);
        p.decrement_ttl();
        assert!(p.checksum_ok());
        assert_eq!(p.ttl(), 63);
        assert_eq!(p.protocol(), HDR[9], "the TTL's word's other byte kept");
        let mut e = [0u8; 20];
        emit(&mut e, 40, 7, true, 64, PROTO_UDP, 1, 2);
        assert!(Packet::new_checked(&e[..]).is_err()); // total 40 > 20 bytes given
        let mut e2 = vec![0u8; 40];
        emit(&mut e2, 40, 7, true, 64, PROTO_UDP, 1, 2);
        assert!(Packet::new_checked(&e2[..]).unwrap().checksum_ok());
    }

    #[test]
    fn one_update_for_address_and_ttl_is_the_two_updates() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..100_000 {
            let mut h = HDR;
            let r = next();
            // Every TTL a forwarded frame may have, any checksum field (0x0000 and
            // 0xffff among them), any old and new address.
            h[8] = 2 + (r % 254) as u8;
            let check = match round % 4 {
                0 => 0,
                1 => 0xffff,
                _ => (r >> 8) as u16,
            };
            h[10..12].copy_from_slice(&check.to_be_bytes());
            h[12..20].copy_from_slice(&next().to_be_bytes());
            let (a, src) = (next() as u32, round % 2 == 0);
            for forward in [false, true] {
                let (mut one, mut two) = (h, h);
                Packet::new_unchecked(&mut one[..]).set_addr(src, a, forward);
                // The address by RFC 1624 for its 32 bits, then the TTL by its own
                // update.
                let at = if src { field::SRC } else { field::DST };
                let c = checksum::update32(be16(&two, field::CHECKSUM), be32(&two, at), a);
                put32(&mut two, at, a);
                put16(&mut two, field::CHECKSUM, c);
                if forward {
                    Packet::new_unchecked(&mut two[..]).decrement_ttl();
                }
                assert_eq!(one, two, "round {round}, forward {forward}");
            }
        }
    }
}
