//! IPv4-embedded IPv6 addresses (RFC 6052): an IPv4 address written into an IPv6
//! prefix of length 32, 40, 48, 56, 64 or 96, skipping bits 64 to 71 (the "u" octet,
//! which stays zero), the suffix after the IPv4 address zero.

use super::ipv6::Addr;

/// The prefix lengths RFC 6052 section 2.2 allows.
pub const LENGTHS: [u8; 6] = [32, 40, 48, 56, 64, 96];
/// The Well-Known Prefix 64:ff9b::/96 (section 2.1).
pub const WELL_KNOWN: Prefix = Prefix {
    bytes: [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    len: 96,
};
/// Index of the u octet (bits 64 to 71).
const U_OCTET: usize = 8;

/// Why a prefix cannot carry IPv4 addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefixError {
    /// The length is not one of [`LENGTHS`].
    Length,
    /// Bits after the prefix length are set.
    HostBits,
    /// Bits 64 to 71 are set (section 2.2: they MUST be zero).
    UOctet,
}

/// A NAT64 prefix, checked: its length is one RFC 6052 allows, bits past its length and
/// the u octet are zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    bytes: Addr,
    len: u8,
}

impl Prefix {
    /// Checks `bytes`/`len` as a prefix for IPv4-embedded addresses.
    pub fn new(bytes: Addr, len: u8) -> Result<Prefix, PrefixError> {
        if !LENGTHS.contains(&len) {
            return Err(PrefixError::Length);
        }
        let whole = usize::from(len / 8);
        if bytes[whole..].iter().any(|b| *b != 0) {
            return Err(PrefixError::HostBits);
        }
        if bytes[U_OCTET] != 0 {
            return Err(PrefixError::UOctet);
        }
        Ok(Prefix { bytes, len })
    }
    /// The prefix's address bytes (zero past its length).
    pub fn bytes(&self) -> Addr {
        self.bytes
    }
    /// The prefix length.
    pub fn length(&self) -> u8 {
        self.len
    }
    /// True for the Well-Known Prefix 64:ff9b::/96.
    pub fn is_well_known(&self) -> bool {
        *self == WELL_KNOWN
    }
    /// The IPv6 address that represents `v4` (host order) under this prefix.
    #[inline]
    pub fn embed(&self, v4: u32) -> Addr {
        let mut a = self.bytes;
        let mut at = usize::from(self.len / 8);
        for b in v4.to_be_bytes() {
            if at == U_OCTET {
                at += 1;
            }
            a[at] = b;
            at += 1;
        }
        a
    }
    /// The IPv4 address (host order) embedded in `a`, if `a` lies under this prefix.
    /// The u octet and the suffix are not checked: RFC 6052 gives them no meaning.
    #[inline]
    pub fn extract(&self, a: &Addr) -> Option<u32> {
        let whole = usize::from(self.len / 8);
        if a[..whole] != self.bytes[..whole] {
            return None;
        }
        let mut v = [0u8; 4];
        let mut at = whole;
        for b in &mut v {
            if at == U_OCTET {
                at += 1;
            }
            *b = a[at];
            at += 1;
        }
        Some(u32::from_be_bytes(v))
    }
    /// Whether `v4` may be represented under this prefix: RFC 6052 section 3.1 forbids
    /// the Well-Known Prefix for non-global IPv4 addresses (private, shared, loopback,
    /// link-local, documentation, benchmarking, multicast, reserved). A network-specific
    /// prefix may carry any.
    pub fn may_embed(&self, v4: u32) -> bool {
        !self.is_well_known() || is_global_v4(v4)
    }
}

/// True for an IPv4 address (host order) outside the special-purpose ranges that are
/// not globally reachable.
pub fn is_global_v4(a: u32) -> bool {
    const NON_GLOBAL: [(u32, u8); 14] = [
        (0x0000_0000, 8),  // "this network"
        (0x0a00_0000, 8),  // RFC 1918
        (0x6440_0000, 10), // shared address space, RFC 6598
        (0x7f00_0000, 8),  // loopback
        (0xa9fe_0000, 16), // link local
        (0xac10_0000, 12), // RFC 1918
        (0xc000_0000, 24), // IETF protocol assignments
        (0xc000_0200, 24), // TEST-NET-1
        (0xc0a8_0000, 16), // RFC 1918
        (0xc612_0000, 15), // benchmarking
        (0xc633_6400, 24), // TEST-NET-2
        (0xcb00_7100, 24), // TEST-NET-3
        (0xe000_0000, 4),  // multicast
        (0xf000_0000, 4),  // reserved and broadcast
    ];
    !NON_GLOBAL
        .iter()
        .any(|&(net, len)| a & (u32::MAX << (32 - u32::from(len))) == net)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn prefix(s: &str) -> Prefix {
        let (a, l) = s.split_once('/').unwrap();
        Prefix::new(a.parse::<Ipv6Addr>().unwrap().octets(), l.parse().unwrap()).unwrap()
    }

    // RFC 6052 section 2.4, the table of examples, every row.
    const EXAMPLES: [(&str, &str); 7] = [
        ("2001:db8::/32", "2001:db8:c000:221::"),
        ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
        ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
        ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
        ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
        ("2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"),
        ("64:ff9b::/96", "64:ff9b::192.0.2.33"),
    ];

    #[test]
    fn rfc6052_examples_embed_and_extract() {
        let v4 = u32::from(Ipv4Addr::new(192, 0, 2, 33));
        for (p, want) in EXAMPLES {
            let p = prefix(p);
            let want = want.parse::<Ipv6Addr>().unwrap();
            assert_eq!(Ipv6Addr::from(p.embed(v4)), want, "embed under {p:?}");
            assert_eq!(p.extract(&want.octets()), Some(v4), "extract under {p:?}");
        }
    }

    #[test]
    fn extract_refuses_an_address_outside_the_prefix() {
        let p = prefix("2001:db8:122::/48");
        let other = "2001:db8:123:c000:2:2100::".parse::<Ipv6Addr>().unwrap();
        assert_eq!(p.extract(&other.octets()), None);
        assert_eq!(WELL_KNOWN.extract(&other.octets()), None);
    }

    #[test]
    fn every_length_round_trips_every_byte_position() {
        for len in LENGTHS {
            let p = Prefix::new(
                [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                len,
            )
            .unwrap();
            for v4 in [0x0102_0304u32, 0xffff_ffff, 0xc000_0221, 1] {
                let a = p.embed(v4);
                assert_eq!(a[8], 0, "u octet of /{len}");
                assert_eq!(p.extract(&a), Some(v4), "/{len}");
            }
        }
    }

    #[test]
    fn bad_prefixes_are_refused() {
        let a = "2001:db8::".parse::<Ipv6Addr>().unwrap().octets();
        assert_eq!(Prefix::new(a, 33), Err(PrefixError::Length));
        assert_eq!(Prefix::new(a, 128), Err(PrefixError::Length));
        let h = "2001:db8:0:1::".parse::<Ipv6Addr>().unwrap().octets();
        assert_eq!(Prefix::new(h, 32), Err(PrefixError::HostBits));
        let u = "2001:db8:0:0:100::".parse::<Ipv6Addr>().unwrap().octets();
        assert_eq!(Prefix::new(u, 96), Err(PrefixError::UOctet));
        assert_eq!(
            Prefix::new("64:ff9b::".parse::<Ipv6Addr>().unwrap().octets(), 96),
            Ok(WELL_KNOWN)
        );
    }

    #[test]
    fn the_well_known_prefix_refuses_non_global_addresses() {
        let private = u32::from(Ipv4Addr::new(10, 1, 2, 3));
        let shared = u32::from(Ipv4Addr::new(100, 64, 0, 1));
        let global = u32::from(Ipv4Addr::new(8, 8, 8, 8));
        assert!(!WELL_KNOWN.may_embed(private));
        assert!(!WELL_KNOWN.may_embed(shared));
        assert!(WELL_KNOWN.may_embed(global));
        let nsp = prefix("2001:db8:122::/48");
        assert!(nsp.may_embed(private));
    }
}
