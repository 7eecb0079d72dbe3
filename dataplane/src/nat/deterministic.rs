//! Deterministic NAT (RFC 7422): every inside address owns a fixed public address and
//! port range computed from its position in the inside prefixes, so "who used this
//! public address and port" is answered by arithmetic, with no per-session logs.

use cgnat_config::Ipv4Net;
use std::net::Ipv4Addr;

/// The algorithm's parameters, fixed by the config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deterministic {
    inside: Vec<Ipv4Net>,
    pool: Vec<u32>,
    lo: u16,
    /// Ports each subscriber owns.
    pub ports_per_subscriber: u16,
    /// Subscribers sharing one public address.
    pub subscribers_per_address: u32,
}

/// Why the parameters do not work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeterministicError(pub String);

impl Deterministic {
    /// Parameters for `inside` prefixes over `pool` addresses (sorted) and the port
    /// range `[lo, hi]`.
    pub fn new(
        inside: &[Ipv4Net],
        pool: &[u32],
        lo: u16,
        hi: u16,
    ) -> Result<Deterministic, DeterministicError> {
        let n: u64 = inside.iter().map(Ipv4Net::len).sum();
        let m = pool.len() as u64;
        if n == 0 || m == 0 {
            return Err(DeterministicError(
                "deterministic allocation needs nat.inside and nat.pool".into(),
            ));
        }
        let per_addr = n.div_ceil(m);
        let ports = u64::from(hi - lo) + 1;
        let per_sub = ports / per_addr;
        if per_sub == 0 {
            return Err(DeterministicError(format!(
                "deterministic allocation: {n} inside addresses over {m} pool addresses is {per_addr} subscribers per \
                 address, more than the {ports} ports of nat.port_range; narrow nat.inside or widen nat.pool"
            )));
        }
        Ok(Deterministic {
            inside: inside.to_vec(),
            pool: pool.to_vec(),
            lo,
            ports_per_subscriber: per_sub.min(u64::from(u16::MAX)) as u16,
            subscribers_per_address: per_addr as u32,
        })
    }

    fn index_of(&self, ip: u32) -> Option<u64> {
        let mut base = 0u64;
        for net in &self.inside {
            if net.contains(ip.into()) {
                return Some(base + u64::from(ip - u32::from(net.addr)));
            }
            base += net.len();
        }
        None
    }

    fn nth_inside(&self, mut i: u64) -> Option<u32> {
        for net in &self.inside {
            if i < net.len() {
                return Some(u32::from(net.addr) + i as u32);
            }
            i -= net.len();
        }
        None
    }

    /// The pool address index and first port of `inside`'s range.
    pub fn forward_index(&self, inside: u32) -> Option<(usize, u16)> {
        let i = self.index_of(inside)?;
        let per = u64::from(self.subscribers_per_address);
        let a = (i / per) as usize;
        let slot = (i % per) as u32;
        let start = u32::from(self.lo) + slot * u32::from(self.ports_per_subscriber);
        Some((a, start as u16))
    }

    /// The public address and port range `[first, last]` of an inside address.
    pub fn forward(&self, inside: Ipv4Addr) -> Option<(Ipv4Addr, u16, u16)> {
        let (a, start) = self.forward_index(u32::from(inside))?;
        let last = u32::from(start) + u32::from(self.ports_per_subscriber) - 1;
        Some((Ipv4Addr::from(*self.pool.get(a)?), start, last as u16))
    }

    /// The inside address that owns `port` on public address `public`.
    pub fn reverse(&self, public: Ipv4Addr, port: u16) -> Option<Ipv4Addr> {
        let a = self.pool.binary_search(&u32::from(public)).ok()? as u64;
        let off = u32::from(port.checked_sub(self.lo)?);
        let slot = off / u32::from(self.ports_per_subscriber);
        if slot >= self.subscribers_per_address {
            return None;
        }
        let i = a * u64::from(self.subscribers_per_address) + u64::from(slot);
        self.nth_inside(i).map(Ipv4Addr::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn forward_and_reverse_agree_for_every_subscriber() {
        let pool: Vec<u32> = (0..4)
            .map(|i| u32::from(Ipv4Addr::new(198, 51, 100, i)))
            .collect();
        let d = Deterministic::new(
            &[net("100.64.0.0/24"), net("10.1.0.0/25")],
            &pool,
            1024,
            65535,
        )
        .unwrap();
        // 384 subscribers over 4 addresses: 96 each, 672 ports each.
        assert_eq!(d.subscribers_per_address, 96);
        assert_eq!(d.ports_per_subscriber, 672);
        let mut seen = std::collections::HashSet::new();
        for ip in (0..256)
            .map(|i| Ipv4Addr::new(100, 64, 0, i as u8))
            .chain((0..128).map(|i| Ipv4Addr::new(10, 1, 0, i)))
        {
            let (public, first, last) = d.forward(ip).unwrap();
            assert!(
                seen.insert((public, first)),
                "two subscribers share a range"
            );
            assert_eq!(last - first + 1, 672);
            assert_eq!(d.reverse(public, first), Some(ip));
            assert_eq!(d.reverse(public, last), Some(ip));
        }
        assert_eq!(d.forward(Ipv4Addr::new(192, 168, 0, 1)), None);
        assert_eq!(d.reverse(Ipv4Addr::new(198, 51, 100, 9), 2000), None);
        assert_eq!(d.reverse(Ipv4Addr::new(198, 51, 100, 0), 80), None);
    }

    #[test]
    fn too_many_subscribers_is_refused_with_advice() {
        let e = Deterministic::new(&[net("10.0.0.0/8")], &[1], 1024, 65535).unwrap_err();
        assert!(e.0.contains("narrow nat.inside"));
    }
}
