//! UDP headers (RFC 768).

use super::{be16, put16, WireError};

/// Header length.
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum field.
pub const CHECKSUM: usize = 6;

/// A view over a UDP datagram.
pub struct Datagram<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Datagram<T> {
    /// Checks that the header fits and the length field is consistent with the buffer.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = usize::from(be16(b, 4));
        if len < HEADER_LEN || len > b.len() {
            return Err(WireError::Malformed);
        }
        Ok(Datagram { buffer })
    }
    /// Wraps without checks, for the 8 bytes of a header embedded in an ICMP error.
    pub fn new_unchecked(buffer: T) -> Self {
        Datagram { buffer }
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
    /// Length field.
    #[inline(always)]
    pub fn len(&self) -> usize {
        usize::from(be16(self.buffer.as_ref(), 4))
    }
    /// True if the length field says no payload.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len() == HEADER_LEN
    }
    /// Checksum field (0: none).
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Datagram<T> {
    /// Sets the source port (checksum is the caller's).
    #[inline(always)]
    pub fn set_src_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), 0, p);
    }
    /// Sets the destination port (checksum is the caller's).
    #[inline(always)]
    pub fn set_dst_port(&mut self, p: u16) {
        put16(self.buffer.as_mut(), 2, p);
    }
    /// Sets the checksum field; a computed 0 is sent as 0xffff (RFC 768).
    #[inline(always)]
    pub fn set_checksum(&mut self, c: u16) {
        put16(
            self.buffer.as_mut(),
            CHECKSUM,
            if c == 0 { 0xffff } else { c },
        );
    }
}
