//! ARP for IPv4 over Ethernet (RFC 826).

use super::{be16, put16, WireError};
use std::net::Ipv4Addr;

/// Length of an Ethernet/IPv4 ARP packet.
pub const LEN: usize = 28;
/// ARP request.
pub const OP_REQUEST: u16 = 1;
/// ARP reply.
pub const OP_REPLY: u16 = 2;

/// A view over an Ethernet/IPv4 ARP packet (after the Ethernet header).
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks length, hardware type 1, protocol 0x0800 and address lengths 6 and 4.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < LEN {
            return Err(WireError::Truncated);
        }
        if be16(b, 0) != 1 || be16(b, 2) != 0x0800 || b[4] != 6 || b[5] != 4 {
            return Err(WireError::Malformed);
        }
        Ok(Packet { buffer })
    }
    /// Operation.
    pub fn op(&self) -> u16 {
        be16(self.buffer.as_ref(), 6)
    }
    /// Sender hardware address.
    pub fn sha(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[8..14]);
        m
    }
    /// Sender protocol address.
    pub fn spa(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[14], b[15], b[16], b[17])
    }
    /// Target protocol address.
    pub fn tpa(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[24], b[25], b[26], b[27])
    }
}

/// Writes a complete ARP packet into `b` (at least [`LEN`] bytes).
pub fn emit(b: &mut [u8], op: u16, sha: &[u8; 6], spa: Ipv4Addr, tha: &[u8; 6], tpa: Ipv4Addr) {
    put16(b, 0, 1);
    put16(b, 2, 0x0800);
    b[4] = 6;
    b[5] = 4;
    put16(b, 6, op);
    b[8..14].copy_from_slice(sha);
    b[14..18].copy_from_slice(&spa.octets());
    b[18..24].copy_from_slice(tha);
    b[24..28].copy_from_slice(&tpa.octets());
}
