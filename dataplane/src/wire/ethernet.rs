//! Ethernet II frames.

use super::{be16, put16, WireError};

/// Ethernet header length.
pub const HEADER_LEN: usize = 14;
/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// The broadcast address.
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// A MAC address.
pub type Mac = [u8; 6];

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub fn mac_to_string(m: &Mac) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// A view over an Ethernet II frame.
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Checks that the header fits.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Frame { buffer })
    }
    /// A view over a frame whose header was checked already (when it was parsed);
    /// the accessors panic on a buffer shorter than the header.
    #[inline]
    pub fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }
    /// Destination MAC.
    #[inline]
    pub fn dst(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[0..6]);
        m
    }
    /// Source MAC.
    #[inline]
    pub fn src(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buffer.as_ref()[6..12]);
        m
    }
    /// EtherType.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), 12)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets both addresses.
    #[inline]
    pub fn set_addrs(&mut self, src: &Mac, dst: &Mac) {
        let b = self.buffer.as_mut();
        b[0..6].copy_from_slice(dst);
        b[6..12].copy_from_slice(src);
    }
    /// Sets the EtherType.
    #[inline]
    pub fn set_ethertype(&mut self, t: u16) {
        put16(self.buffer.as_mut(), 12, t);
    }
}

/// True for a group (multicast or broadcast) address.
pub fn is_multicast(m: &Mac) -> bool {
    m[0] & 1 == 1
}
