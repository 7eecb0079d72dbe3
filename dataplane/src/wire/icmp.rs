//! ICMPv4 (RFC 792): echo queries and the error messages NAT must translate.

use super::{be16, be32, put16, put32, WireError};

/// Header length of echo and error messages.
pub const HEADER_LEN: usize = 8;
/// Echo reply.
pub const ECHO_REPLY: u8 = 0;
/// Destination unreachable.
pub const DEST_UNREACHABLE: u8 = 3;
/// Source quench (deprecated, still translated).
pub const SOURCE_QUENCH: u8 = 4;
/// Redirect.
pub const REDIRECT: u8 = 5;
/// Echo request.
pub const ECHO_REQUEST: u8 = 8;
/// Time exceeded.
pub const TIME_EXCEEDED: u8 = 11;
/// Parameter problem.
pub const PARAMETER_PROBLEM: u8 = 12;
/// Timestamp request and reply, information request and reply are queries too.
pub const TIMESTAMP: u8 = 13;
/// Timestamp reply.
pub const TIMESTAMP_REPLY: u8 = 14;
/// Code of destination unreachable: fragmentation needed and DF set.
pub const CODE_FRAG_NEEDED: u8 = 4;
/// Code of destination unreachable: communication administratively prohibited.
pub const CODE_ADMIN_PROHIBITED: u8 = 13;
/// Code of destination unreachable: port unreachable.
pub const CODE_PORT_UNREACHABLE: u8 = 3;

/// True for error messages that embed the offending packet.
pub fn is_error(t: u8) -> bool {
    matches!(
        t,
        DEST_UNREACHABLE | SOURCE_QUENCH | REDIRECT | TIME_EXCEEDED | PARAMETER_PROBLEM
    )
}

/// True for query messages that carry an identifier NAT translates like a port.
pub fn is_query(t: u8) -> bool {
    matches!(t, ECHO_REQUEST | ECHO_REPLY | TIMESTAMP | TIMESTAMP_REPLY)
}

/// True for the request half of a query (the half that may create a mapping).
pub fn is_request(t: u8) -> bool {
    matches!(t, ECHO_REQUEST | TIMESTAMP)
}

/// A view over an ICMP message.
pub struct Message<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Message<T> {
    /// Checks that the 8-byte header fits.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Message { buffer })
    }
    /// A view over a message whose header was checked already (when the packet was
    /// parsed); the accessors panic on a buffer shorter than the 8-byte header.
    #[inline(always)]
    pub fn new_unchecked(buffer: T) -> Self {
        Message { buffer }
    }
    /// Type.
    #[inline(always)]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }
    /// Code.
    #[inline(always)]
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
    /// Checksum field.
    #[inline(always)]
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), 2)
    }
    /// Identifier of a query message.
    #[inline(always)]
    pub fn ident(&self) -> u16 {
        be16(self.buffer.as_ref(), 4)
    }
    /// The 4 bytes after the checksum as one word: identifier and sequence of a
    /// query, the MTU of a fragmentation-needed (ICMPv6 packet-too-big), the pointer
    /// of a parameter problem.
    #[inline(always)]
    pub fn word(&self) -> u32 {
        be32(self.buffer.as_ref(), 4)
    }
    /// The bytes after the 8-byte header (the embedded packet of an error).
    #[inline(always)]
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Message<T> {
    /// Sets the identifier (checksum is the caller's).
    #[inline(always)]
    pub fn set_ident(&mut self, id: u16) {
        put16(self.buffer.as_mut(), 4, id);
    }
    /// Sets the checksum field.
    #[inline(always)]
    pub fn set_checksum(&mut self, c: u16) {
        put16(self.buffer.as_mut(), 2, c);
    }
    /// Sets type and code (checksum is the caller's).
    #[inline(always)]
    pub fn set_type_code(&mut self, t: u8, code: u8) {
        let b = self.buffer.as_mut();
        b[0] = t;
        b[1] = code;
    }
    /// Sets the 4 bytes after the checksum (see [`Message::word`]).
    #[inline(always)]
    pub fn set_word(&mut self, w: u32) {
        put32(self.buffer.as_mut(), 4, w);
    }
    /// Recomputes the checksum over the whole message.
    #[inline]
    pub fn fill_checksum(&mut self) {
        let b = self.buffer.as_mut();
        put16(b, 2, 0);
        let c = super::checksum::finish(super::checksum::sum(b));
        put16(b, 2, c);
    }
    /// The body, mutable.
    #[inline(always)]
    pub fn body_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}
