//! TCP headers (RFC 9293): the fields NAT reads and rewrites.

use super::{be16, be32, put16, WireError};

/// Minimum header length.
pub const MIN_HEADER_LEN: usize = 20;
/// FIN flag.
pub const FIN: u8 = 0x01;
/// SYN flag.
pub const SYN: u8 = 0x02;
/// RST flag.
pub const RST: u8 = 0x04;
/// PSH flag.
pub const PSH: u8 = 0x08;
/// ACK flag.
pub const ACK: u8 = 0x10;

/// Offset of the checksum field.
pub const CHECKSUM: usize = 16;

/// A view over a TCP segment.
pub struct Segment<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Segment<T> {
    /// Checks that the header, options included, fits.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let off = usize::from(b[12] >> 4) * 4;
        if off < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if off > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(Segment { buffer })
    }
    /// A view over a segment whose header was checked already (by
    /// [`Segment::new_checked`] when the packet was parsed): the accessors index
    /// within the minimum header and panic on a shorter buffer.
    #[inline(always)]
    pub fn new_unchecked(buffer: T) -> Self {
        Segment { buffer }
    }
    /// Source port.
    #[inline(always)]
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 0)
    }
    /// Destination port.
    #[inline(always)]
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }
    /// Sequence number.
    #[inline(always)]
    pub fn seq(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }
    /// Acknowledgement number.
    #[inline(always)]
    pub fn ack(&self) -> u32 {
        be32(self.buffer.as_ref(), 8)
    }
    /// Header length (data offset * 4).
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[12] >> 4) * 4
    }
    /// Flags byte (FIN, SYN, RST, PSH, ACK, URG, ECE, CWR).
    #[inline(always)]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[13]
    }
    /// Checksum field.
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Segment<T> {
    /// Sets the source port (checksum is the caller's: NAT applies one delta).
    #[inline(always)]
    pub fn set_src_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), 0, p);
    }
    /// Sets the destination port (checksum is the caller's).
    #[inline(always)]
    pub fn set_dst_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), 2, p);
    }
    /// Sets the checksum field.
    #[inline(always)]
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), CHECKSUM, c);
    }
}
