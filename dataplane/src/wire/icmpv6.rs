//! ICMPv6 (RFC 4443): echo, the error messages a translator maps to ICMPv4, and the
//! checksum over the IPv6 pseudo-header. The header layout is ICMPv4's (type, code,
//! checksum, then 4 bytes: identifier and sequence, MTU, or pointer), so the view
//! is [`super::icmp::Message`]; only the constants and the checksum differ.

use super::checksum;
use super::ipv6::{pseudo_header, Addr, NH_ICMPV6};
use super::{put16, WireError};

/// Header length of echo and error messages.
pub const HEADER_LEN: usize = 8;
/// Destination unreachable.
pub const DEST_UNREACHABLE: u8 = 1;
/// Packet too big.
pub const PACKET_TOO_BIG: u8 = 2;
/// Time exceeded.
pub const TIME_EXCEEDED: u8 = 3;
/// Parameter problem.
pub const PARAMETER_PROBLEM: u8 = 4;
/// Echo request.
pub const ECHO_REQUEST: u8 = 128;
/// Echo reply.
pub const ECHO_REPLY: u8 = 129;
/// Multicast listener query (MLD, RFC 2710), and report and done after it.
pub const MLD_QUERY: u8 = 130;
/// Router solicitation (RFC 4861).
pub const ROUTER_SOLICITATION: u8 = 133;
/// Router advertisement.
pub const ROUTER_ADVERTISEMENT: u8 = 134;
/// Neighbour solicitation.
pub const NEIGHBOR_SOLICITATION: u8 = 135;
/// Neighbour advertisement.
pub const NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// Redirect.
pub const REDIRECT: u8 = 137;

/// Destination unreachable: no route to destination.
pub const CODE_NO_ROUTE: u8 = 0;
/// Destination unreachable: communication administratively prohibited.
pub const CODE_ADMIN_PROHIBITED: u8 = 1;
/// Destination unreachable: beyond scope of source address.
pub const CODE_BEYOND_SCOPE: u8 = 2;
/// Destination unreachable: address unreachable.
pub const CODE_ADDRESS_UNREACHABLE: u8 = 3;
/// Destination unreachable: port unreachable.
pub const CODE_PORT_UNREACHABLE: u8 = 4;
/// Parameter problem: erroneous header field encountered.
pub const CODE_ERRONEOUS_FIELD: u8 = 0;
/// Parameter problem: unrecognized next header type encountered.
pub const CODE_UNRECOGNIZED_NEXT_HEADER: u8 = 1;
/// Parameter problem: unrecognized IPv6 option encountered.
pub const CODE_UNRECOGNIZED_OPTION: u8 = 2;

/// Length of a neighbour solicitation or advertisement before its options (RFC 4861
/// 4.3, 4.4): type, code, checksum, flags or reserved, target address.
pub const ND_LEN: usize = 24;
/// Neighbour discovery option: source link-layer address.
pub const OPT_SOURCE_LLA: u8 = 1;
/// Neighbour discovery option: target link-layer address.
pub const OPT_TARGET_LLA: u8 = 2;
/// Neighbour advertisement flag: the sender is a router.
pub const NA_ROUTER: u32 = 0x8000_0000;
/// Neighbour advertisement flag: an answer to a solicitation.
pub const NA_SOLICITED: u32 = 0x4000_0000;
/// Neighbour advertisement flag: override a cached link-layer address.
pub const NA_OVERRIDE: u32 = 0x2000_0000;

/// The target address of a neighbour solicitation or advertisement at least
/// [`ND_LEN`] long.
pub fn nd_target(msg: &[u8]) -> Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&msg[8..24]);
    a
}

/// The Ethernet address in the first link-layer address option of `kind` among the
/// options after [`ND_LEN`], if any. An option of length zero, or one running past the
/// message, is malformed (RFC 4861 4.6: the message is discarded).
pub fn nd_option(msg: &[u8], kind: u8) -> Result<Option<[u8; 6]>, WireError> {
    let mut at = ND_LEN;
    let mut found = None;
    while at < msg.len() {
        if at + 2 > msg.len() {
            return Err(WireError::Truncated);
        }
        let len = usize::from(msg[at + 1]) * 8;
        if len == 0 {
            return Err(WireError::Malformed);
        }
        if at + len > msg.len() {
            return Err(WireError::Truncated);
        }
        if msg[at] == kind && found.is_none() && len >= 8 {
            let mut m = [0u8; 6];
            m.copy_from_slice(&msg[at + 2..at + 8]);
            found = Some(m);
        }
        at += len;
    }
    Ok(found)
}

/// Writes a neighbour solicitation or advertisement (`ty`) with `flags` (the word after
/// the checksum), `target`, and one link-layer address option of `kind` holding `mac`
/// into `msg[..32]`; the checksum is the caller's.
pub fn emit_nd(msg: &mut [u8], ty: u8, flags: u32, target: &Addr, kind: u8, mac: &[u8; 6]) {
    msg[0] = ty;
    msg[1] = 0;
    put16(msg, 2, 0);
    super::put32(msg, 4, flags);
    msg[8..24].copy_from_slice(target);
    msg[24] = kind;
    msg[25] = 1;
    msg[26..32].copy_from_slice(mac);
}

/// True for the error messages (types below 128) that embed the offending packet.
pub fn is_error(t: u8) -> bool {
    t < 128
}

/// The checksum of an ICMPv6 message `msg` (checksum field zero or not: it is
/// skipped) from `src` to `dst`.
pub fn compute_checksum(src: &Addr, dst: &Addr, msg: &[u8]) -> u16 {
    let mut acc = pseudo_header(src, dst, NH_ICMPV6, msg.len() as u32);
    acc = checksum::add(acc, checksum::sum(&msg[..2]));
    acc = checksum::add(acc, checksum::sum(&msg[4..]));
    checksum::finish(acc)
}

/// Fills the checksum of the ICMPv6 message `msg` from `src` to `dst`.
pub fn fill_checksum(src: &Addr, dst: &Addr, msg: &mut [u8]) {
    let c = compute_checksum(src, dst, msg);
    put16(msg, 2, c);
}

/// True when the checksum of `msg` from `src` to `dst` verifies.
pub fn checksum_ok(src: &Addr, dst: &Addr, msg: &[u8]) -> bool {
    let acc = checksum::add(
        pseudo_header(src, dst, NH_ICMPV6, msg.len() as u32),
        checksum::sum(msg),
    );
    checksum::fold(acc) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::super::icmp::Message;
    use super::*;
    use std::net::Ipv6Addr;

    // An echo request fe80::1 -> ff02::1, id 0x1234 seq 1, payload "abcd": the checksum
    // worked out by hand below from the RFC 8200 pseudo-header.
    #[test]
    fn echo_checksum_matches_a_hand_computed_sum() {
        let src = "fe80::1".parse::<Ipv6Addr>().unwrap().octets();
        let dst = "ff02::1".parse::<Ipv6Addr>().unwrap().octets();
        let mut msg = [128, 0, 0, 0, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd'];
        fill_checksum(&src, &dst, &mut msg);
        // By hand: fe80 + 0001 + ff02 + 0001 + 000c (length) + 003a (next header)
        // + 8000 + 1234 + 0001 + 6162 + 6364 = 0x3_54c5 -> 0x54c8, complement 0xab37.
        assert_eq!(u16::from_be_bytes([msg[2], msg[3]]), 0xab37);
        assert!(checksum_ok(&src, &dst, &msg));
        msg[9] ^= 1;
        assert!(!checksum_ok(&src, &dst, &msg));
        let m = Message::new_checked(&msg[..]).unwrap();
        assert_eq!(m.msg_type(), ECHO_REQUEST);
        assert_eq!(m.ident(), 0x1234);
        assert_eq!(m.word(), 0x1234_0001);
    }

    #[test]
    fn nd_options_are_found_and_bad_ones_refused() {
        let mut m = [0u8; 40];
        emit_nd(
            &mut m,
            NEIGHBOR_SOLICITATION,
            0,
            &[0xfe; 16],
            OPT_SOURCE_LLA,
            &[2, 0, 0, 0, 0, 9],
        );
        assert_eq!(nd_target(&m), [0xfe; 16]);
        assert_eq!(
            nd_option(&m[..32], OPT_SOURCE_LLA),
            Ok(Some([2, 0, 0, 0, 0, 9]))
        );
        assert_eq!(nd_option(&m[..32], OPT_TARGET_LLA), Ok(None));
        // A second option of length 0 after the first.
        assert_eq!(
            nd_option(&m[..34], OPT_SOURCE_LLA),
            Err(WireError::Malformed)
        );
        m[33] = 2; // 16 bytes, past the end
        assert_eq!(
            nd_option(&m[..40], OPT_SOURCE_LLA),
            Err(WireError::Truncated)
        );
    }

    #[test]
    fn errors_are_below_128() {
        for t in [
            DEST_UNREACHABLE,
            PACKET_TOO_BIG,
            TIME_EXCEEDED,
            PARAMETER_PROBLEM,
        ] {
            assert!(is_error(t));
        }
        for t in [ECHO_REQUEST, ECHO_REPLY, NEIGHBOR_SOLICITATION, MLD_QUERY] {
            assert!(!is_error(t));
        }
    }
}
