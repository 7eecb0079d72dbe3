//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624). One place for
//! all checksum arithmetic: every rewrite in cgnat goes through these helpers.

/// One's-complement sum of `data` as big-endian 16-bit words, not yet folded.
/// An odd trailing byte is padded with zero.
#[inline]
pub fn sum(data: &[u8]) -> u32 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        acc += u64::from(u32::from_be_bytes([c[4], c[5], c[6], c[7]]));
    }
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [b] = pairs.remainder() {
        acc += u64::from(*b) << 8;
    }
    // Fold 64 -> 32 bits keeping the carries.
    let folded = (acc & 0xffff_ffff) + (acc >> 32);
    let folded = (folded & 0xffff_ffff) + (folded >> 32);
    u32::try_from(folded & 0xffff_ffff).unwrap_or(u32::MAX) // always fits after masking
}

/// Folds a 32-bit one's-complement accumulator to 16 bits: twice is always enough
/// (the first fold leaves at most 0x1fffe, the second at most 0xffff), so no loop.
#[inline]
pub fn fold(acc: u32) -> u16 {
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// The checksum field value for data whose (unfolded) sum is `acc`.
#[inline]
pub fn finish(acc: u32) -> u16 {
    !fold(acc)
}

/// Adds two partial sums.
#[inline]
pub fn add(a: u32, b: u32) -> u32 {
    let (s, carry) = a.overflowing_add(b);
    s + u32::from(carry)
}

/// The IPv4 pseudo-header sum for TCP/UDP checksums.
pub fn pseudo_header(src: [u8; 4], dst: [u8; 4], proto: u8, l4_len: u16) -> u32 {
    sum(&src) + sum(&dst) + u32::from(proto) + u32::from(l4_len)
}

/// RFC 1624 eqn. 3: the new checksum after a 16-bit word changed from `old` to `new`.
#[inline]
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    let acc = u32::from(!check) + u32::from(!old) + u32::from(new);
    !fold(acc)
}

/// RFC 1624 for a 32-bit field (an IPv4 address, a sequence number).
#[inline]
pub fn update32(check: u16, old: u32, new: u32) -> u16 {
    apply(check, delta32(old, new))
}

/// The one's-complement difference of a 32-bit field changing from `old` to `new`,
/// not yet folded (at most 4 x 0xffff: more differences can be added to it, and the
/// sum applied once with [`apply`]).
#[inline]
pub fn delta32(old: u32, new: u32) -> u32 {
    u32::from(!(old >> 16) as u16)
        + u32::from(!(old as u16))
        + u32::from((new >> 16) as u16)
        + u32::from(new as u16)
}

/// RFC 1624 eqn. 3 for any number of changed words at once: the new checksum field
/// after adding `diff`, their one's-complement difference not yet folded (under
/// 2^31, e.g. a few [`delta32`]s and 16-bit differences added together).
#[inline]
pub fn apply(check: u16, diff: u32) -> u16 {
    !fold(u32::from(!check) + diff)
}

/// A precomputed checksum delta: the one's-complement difference between an old and
/// a new set of fields, applied to any number of checksums with [`Delta::apply`].
/// Sessions keep one per direction so the fast path adds instead of recomputing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta(pub u32);

impl Delta {
    /// The delta of replacing `old` by `new` (both as 16-bit word sums).
    #[inline]
    pub fn between(old: &[u16], new: &[u16]) -> Delta {
        // Plain sums: 16-bit words cannot carry out of 32 bits in any slice shorter
        // than 65,537 words, so no end-around carry is needed before the fold.
        debug_assert!(old.len() + new.len() < 65_537);
        let acc: u32 = old.iter().map(|w| u32::from(!*w)).sum::<u32>()
            + new.iter().map(|&w| u32::from(w)).sum::<u32>();
        Delta(u32::from(fold(acc)))
    }

    /// Delta of an address and port change.
    #[inline]
    pub fn addr_port(old_addr: u32, old_port: u16, new_addr: u32, new_port: u16) -> Delta {
        Delta::between(
            &[(old_addr >> 16) as u16, old_addr as u16, old_port],
            &[(new_addr >> 16) as u16, new_addr as u16, new_port],
        )
    }

    /// Delta of an address change only.
    pub fn addr(old_addr: u32, new_addr: u32) -> Delta {
        Delta::between(
            &[(old_addr >> 16) as u16, old_addr as u16],
            &[(new_addr >> 16) as u16, new_addr as u16],
        )
    }

    /// Combines two deltas.
    pub fn plus(self, other: Delta) -> Delta {
        Delta(u32::from(fold(add(self.0, other.0))))
    }

    /// Applies the delta to a checksum field value.
    #[inline]
    pub fn apply(self, check: u16) -> u16 {
        !fold(u32::from(!check) + self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An IPv4 header from RFC 1071's usual example (a real packet: 172.16.10.99 ->
    // 172.16.10.12), checksum 0xb1e6.
    const IP_HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn full_checksum_of_a_real_header_verifies() {
        assert_eq!(fold(sum(&IP_HDR)), 0xffff);
        let mut h = IP_HDR;
        h[10] = 0;
        h[11] = 0;
        assert_eq!(finish(sum(&h)), 0xb861);
    }

    #[test]
    fn incremental_equals_recomputed() {
        let mut h = IP_HDR;
        let old_src = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
        let new_src = u32::from_be_bytes([198, 51, 100, 7]);
        let check = u16::from_be_bytes([h[10], h[11]]);
        let inc = update32(check, old_src, new_src);
        let delta = Delta::addr(old_src, new_src).apply(check);
        h[12..16].copy_from_slice(&new_src.to_be_bytes());
        h[10] = 0;
        h[11] = 0;
        let full = finish(sum(&h));
        assert_eq!(inc, full);
        assert_eq!(delta, full);
    }

    #[test]
    fn two_folds_are_the_whole_fold() {
        // Folding until nothing is left above 16 bits, as RFC 1071 says.
        let reference = |mut acc: u32| {
            while acc >> 16 != 0 {
                acc = (acc & 0xffff) + (acc >> 16);
            }
            acc as u16
        };
        let mut x = 0x2545_f491u32;
        for v in [
            0,
            1,
            0xffff,
            0x1_0000,
            0x1_fffe,
            0x1_ffff,
            0xffff_0000,
            0xffff_fffe,
        ]
        .into_iter()
        .chain([u32::MAX, u32::MAX - 0xffff])
        .chain((0..100_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        })) {
            assert_eq!(fold(v), reference(v), "{v:#x}");
        }
    }

    #[test]
    fn odd_length_and_long_inputs() {
        assert_eq!(sum(&[0x01]), 0x0100);
        let data: Vec<u8> = (0..1001u32).map(|i| (i * 7) as u8).collect();
        let naive: u32 = data
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        assert_eq!(fold(sum(&data)), fold(naive));
    }
}
