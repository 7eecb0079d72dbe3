//! Wire formats: zero-copy views over Ethernet, ARP, IPv4, IPv6, TCP, UDP, ICMP and
//! ICMPv6, the checksum helpers, and RFC 6052's IPv4-embedded IPv6 addresses.
//! Stateless: parsing and emitting only, no NAT knowledge.
//!
//! Each view is `View<T: AsRef<[u8]>>`: `new_checked` validates lengths once, after
//! which no getter can panic; setters need `T: AsMut<[u8]>`.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod pcp;
pub mod rfc6052;
pub mod tcp;
pub mod udp;
pub mod vlan;

/// Why a frame could not be parsed. Each maps to its own drop counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than the header it claims to hold.
    Truncated,
    /// A header field is malformed (IHL < 5, total length below the header, ...).
    Malformed,
}

// One bounds check per field (a slice of its size), not one per byte.
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    let mut w = [0; 2];
    w.copy_from_slice(&b[at..at + 2]);
    u16::from_be_bytes(w)
}
#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(w)
}
#[inline]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
#[inline]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
