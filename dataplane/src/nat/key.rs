//! The lookup key of the session, mapping and expectation tables.

/// A lookup key: protocol and two endpoints (addresses host order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Key {
    /// IP protocol.
    pub proto: u8,
    /// First endpoint's address (inside or outside side of the NAT).
    pub a: u32,
    /// The remote endpoint's address.
    pub b: u32,
    /// First endpoint's port (or ICMP identifier).
    pub pa: u16,
    /// Remote port (0 for ICMP).
    pub pb: u16,
}
