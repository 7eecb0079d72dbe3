//! The burst path's shortcut past the address checks of an outbound frame
//! ([`crate::pipeline::Worker::classify`]): per /16 of the IPv4 space, whether every
//! address in it is an ordinary subscriber source (inside a configured inside
//! prefix, not an identity host, not martian) and whether every address in it is an
//! ordinary destination (not the appliance's own, not a pool address, not excluded,
//! not private, shared or link-local space or an inside prefix outside it, not a
//! subnet broadcast, not martian). A frame from an ordinary source to an ordinary
//! destination passes those checks for certain, so they are not made: about a
//! hundred instructions per packet. Any other frame is checked in full, as before;
//! the table only ever says "ordinary" where the checks would.
//!
//! 64 KB per worker, rebuilt in place (no allocation) whenever what it is made of
//! changes: the per-packet settings ([`crate::pipeline::Worker::set_params`]) and
//! the pool (a reload, [`crate::pipeline::Worker::reconfigure`]).

use cgnat_config::Ipv4Net;

/// Every address of the /16 is an ordinary subscriber source.
const SOURCE: u8 = 1;
/// Every address of the /16 is an ordinary outbound destination.
const DESTINATION: u8 = 2;

/// The first and last address of a prefix, as [`OrdinaryOut::rebuild`] takes ranges.
#[inline]
pub fn range(n: &Ipv4Net) -> (u32, u32) {
    (u32::from(n.network()), u32::from(n.broadcast()))
}

/// The flags of the 65,536 /16s. See the module documentation.
pub struct OrdinaryOut {
    flags: Box<[u8]>,
}

impl Default for OrdinaryOut {
    fn default() -> Self {
        OrdinaryOut::new()
    }
}

impl OrdinaryOut {
    /// A table where nothing is ordinary (every frame checked in full).
    pub fn new() -> OrdinaryOut {
        OrdinaryOut {
            flags: vec![0; 1 << 16].into_boxed_slice(),
        }
    }

    /// Rebuilds the table in place: sources are the /16s wholly inside one of
    /// `sources` and touching none of `not_sources` (address ranges, first and last),
    /// destinations the /16s touching none of `not_destinations`.
    pub fn rebuild(
        &mut self,
        sources: &[Ipv4Net],
        not_sources: impl IntoIterator<Item = (u32, u32)>,
        not_destinations: impl IntoIterator<Item = (u32, u32)>,
    ) {
        self.flags.fill(DESTINATION);
        for n in sources.iter().filter(|n| n.prefix <= 16) {
            self.mark(range(n), SOURCE, true);
        }
        for r in not_sources {
            self.mark(r, SOURCE, false);
        }
        for r in not_destinations {
            self.mark(r, DESTINATION, false);
        }
    }

    /// Sets (`on`) or clears `flag` on every /16 that range `r` touches.
    fn mark(&mut self, (first, last): (u32, u32), flag: u8, on: bool) {
        let (a, b) = ((first >> 16) as usize, (last.max(first) >> 16) as usize);
        for f in &mut self.flags[a..=b] {
            if on {
                *f |= flag;
            } else {
                *f &= !flag;
            }
        }
    }

    /// True when `src` is an ordinary subscriber source and `dst` an ordinary
    /// destination: an outbound frame between them passes the address checks.
    #[inline]
    pub fn outbound(&self, src: u32, dst: u32) -> bool {
        self.flags[(src >> 16) as usize] & SOURCE != 0
            && self.flags[(dst >> 16) as usize] & DESTINATION != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    #[test]
    fn only_whole_sixteens_are_ordinary() {
        let mut t = OrdinaryOut::new();
        assert!(
            !t.outbound(ip("100.64.0.1"), ip("192.0.2.1")),
            "empty: none"
        );
        t.rebuild(
            &[net("100.64.0.0/10"), net("198.18.0.0/24")],
            [range(&net("100.65.7.0/24"))],
            [
                range(&net("10.0.0.0/8")),
                (ip("203.0.113.1"), ip("203.0.113.1")),
                (ip("8.8.0.0"), ip("8.9.255.255")),
            ]
            .into_iter()
            .chain([(0x7f00_0000, 0x7fff_ffff), (0xe000_0000, 0xffff_ffff)]),
        );
        let d = ip("192.0.2.1");
        assert!(t.outbound(ip("100.64.0.1"), d));
        assert!(t.outbound(ip("100.127.255.255"), d));
        assert!(!t.outbound(ip("100.63.255.255"), d), "not inside");
        assert!(!t.outbound(ip("100.128.0.0"), d), "not inside");
        assert!(
            !t.outbound(ip("100.65.0.1"), d),
            "its /16 holds identity hosts"
        );
        assert!(!t.outbound(ip("198.18.0.1"), d), "a prefix longer than /16");
        let s = ip("100.64.0.1");
        for bad in [
            "10.1.2.3",
            "203.0.113.200",
            "8.8.8.8",
            "8.9.0.0",
            "127.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!t.outbound(s, ip(bad)), "{bad}");
        }
        for good in [
            "8.7.255.255",
            "8.10.0.0",
            "11.0.0.0",
            "223.255.255.255",
            "1.0.0.0",
        ] {
            assert!(t.outbound(s, ip(good)), "{good}");
        }
        // A rebuild starts over.
        t.rebuild(&[net("100.64.0.0/16")], [], []);
        assert!(t.outbound(s, ip("10.1.2.3")));
        assert!(!t.outbound(ip("100.65.0.1"), d));
    }
}
