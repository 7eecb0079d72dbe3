//! IPv4 and IPv6 prefixes.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 address with a prefix length: a port's address and subnet, or a prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    /// The address as written.
    pub addr: Ipv4Addr,
    /// Prefix length, 0 to 32.
    pub prefix: u8,
}

impl Ipv4Net {
    /// The netmask as a u32.
    #[inline]
    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }
    /// True if `a` is inside the prefix.
    #[inline]
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.addr) & self.mask()
    }
    /// The network address.
    #[inline]
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }
    /// The last address of the prefix.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }
    /// True if the address is the network address (no host bits set).
    pub fn is_network(&self) -> bool {
        self.addr == self.network()
    }
    /// The first address of the prefix.
    pub fn first(&self) -> Ipv4Addr {
        self.network()
    }
    /// Number of addresses.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }
    /// The `i`-th address of the prefix.
    pub fn nth(&self, i: u64) -> Option<Ipv4Addr> {
        (i < self.len()).then(|| Ipv4Addr::from(u32::from(self.network()) + i as u32))
    }
    /// True if the two prefixes share an address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: Ipv4Addr = a
            .trim()
            .parse()
            .map_err(|_| format!("`{a}` is not an IPv4 address"))?;
        let prefix = match p {
            None => 32,
            Some(p) => {
                let d = p.trim();
                // Digits only: u8's parser would also take "+28".
                let digits = (1..=2).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit());
                match d.parse::<u8>() {
                    Ok(n) if digits && n <= 32 => n,
                    _ => return Err(format!("prefix length `{p}` is not 0 to 32")),
                }
            }
        };
        Ok(Ipv4Net { addr, prefix })
    }
}

/// An IPv6 address with a prefix length: a port's address and subnet, or a prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv6Net {
    /// The address as written.
    pub addr: Ipv6Addr,
    /// Prefix length, 0 to 128.
    pub prefix: u8,
}

impl Ipv6Net {
    /// The netmask as a u128.
    #[inline]
    pub fn mask(&self) -> u128 {
        if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix))
        }
    }
    /// True if `a` is inside the prefix.
    pub fn contains(&self, a: Ipv6Addr) -> bool {
        u128::from(a) & self.mask() == u128::from(self.addr) & self.mask()
    }
    /// The network address.
    pub fn network(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) & self.mask())
    }
    /// True if the address is the network address (no host bits set).
    pub fn is_network(&self) -> bool {
        self.addr == self.network()
    }
    /// True if the two prefixes share an address.
    pub fn overlaps(&self, other: &Ipv6Net) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }
}

impl fmt::Display for Ipv6Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv6Net {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let Some((a, p)) = s.split_once('/') else {
            return Err(format!("`{s}` has no prefix length"));
        };
        let addr: Ipv6Addr = a
            .trim()
            .parse()
            .map_err(|_| format!("`{a}` is not an IPv6 address"))?;
        let d = p.trim();
        let digits = (1..=3).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit());
        match d.parse::<u8>() {
            Ok(n) if digits && n <= 128 => Ok(Ipv6Net { addr, prefix: n }),
            _ => Err(format!("prefix length `{p}` is not 0 to 128")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_query() {
        let n: Ipv4Net = "198.51.100.0/28".parse().unwrap();
        assert_eq!(n.len(), 16);
        assert!(n.contains(Ipv4Addr::new(198, 51, 100, 15)));
        assert!(!n.contains(Ipv4Addr::new(198, 51, 100, 16)));
        assert_eq!(n.nth(3), Some(Ipv4Addr::new(198, 51, 100, 3)));
        assert_eq!(n.nth(16), None);
        assert_eq!(n.broadcast(), Ipv4Addr::new(198, 51, 100, 15));
        assert!("10.0.0.0/33".parse::<Ipv4Net>().is_err());
        assert!("10.0.0/8".parse::<Ipv4Net>().is_err());
        for bad in [
            "10.0.0.0/+8",
            "10.0.0.0/",
            "10.0.0.0/008",
            "10.0.0.0/-1",
            "/8",
        ] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad}");
        }
        assert_eq!("10.1.2.3".parse::<Ipv4Net>().unwrap().prefix, 32);
        let h: Ipv4Net = "100.64.0.1/10".parse().unwrap();
        assert!(!h.is_network());
        assert_eq!(h.to_string(), "100.64.0.1/10");
        assert!(h.overlaps(&"100.127.0.0/16".parse().unwrap()));
        assert_eq!("0.0.0.0/0".parse::<Ipv4Net>().unwrap().len(), 1 << 32);
    }

    #[test]
    fn ipv6_parse_and_query() {
        let n: Ipv6Net = "2001:db8:1::/48".parse().unwrap();
        assert!(n.is_network());
        assert!(n.contains("2001:db8:1:ffff::1".parse().unwrap()));
        assert!(!n.contains("2001:db8:2::".parse().unwrap()));
        let h: Ipv6Net = "2001:db8:1::1/64".parse().unwrap();
        assert!(!h.is_network());
        assert_eq!(h.to_string(), "2001:db8:1::1/64");
        assert!(h.overlaps(&n));
        for bad in [
            "2001:db8::",
            "2001:db8::/129",
            "2001:db8::/+8",
            "10.0.0.0/8",
            "/64",
        ] {
            assert!(bad.parse::<Ipv6Net>().is_err(), "{bad}");
        }
    }
}
