//! IPv6 on the inside port (issue 17): neighbour discovery (RFC 4861) for the port's
//! own addresses and for its neighbours, and ICMPv6 echo to the appliance.
//!
//! The worker classifies an IPv6 frame ([`classify`]): neighbour discovery and echo
//! for the port go to the control lcore (rate-limited per source MAC like ARP), the
//! rest is dropped, each reason counted. The control lcore answers ([`Nd::handle`]):
//! a neighbour solicitation for one of the port's addresses (its configured ones and
//! its link-local address, made from its MAC) gets an advertisement, an echo request
//! to one of them a reply; an advertisement teaches a neighbour's MAC only when it
//! answers a solicitation of ours ([`Nd::solicit`]), like ARP (docs/security.md).
//! Learned neighbours go in [`Neighbors6`] (`crate::neighbors`), written by the
//! control lcore alone and read lock-free.
//!
//! This module imports the wire formats, the counters and the neighbour table; the
//! pipeline calls it.

use crate::buf::PacketBuf;
use crate::counters::DropReason;
use crate::neighbors::Neighbors6;
use crate::wire::checksum;
use crate::wire::ethernet::{self, Mac, ETHERTYPE_IPV6};
use crate::wire::icmpv6::{self, ND_LEN};
use crate::wire::ipv6::{self, Addr};
use crate::wire::{put16, WireError};
use cgnat_config::Ipv6Net;
use std::sync::Arc;

/// Hop limit of every neighbour discovery message (RFC 4861 6.1.2, 7.1).
pub const ND_HOP_LIMIT: u8 = 255;
/// Hop limit of the echo replies the appliance sends.
pub const HOP_LIMIT: u8 = 64;
/// The all-nodes multicast address ff02::1.
pub const ALL_NODES: Addr = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// Seconds a solicitation of ours waits for its advertisement.
pub const SOLICIT_SECS: u32 = 3;
/// Solicitations awaiting their answer at once.
pub const MAX_SOLICITED: usize = 256;
const L3: usize = ethernet::HEADER_LEN;
const L4: usize = L3 + ipv6::HEADER_LEN;

/// The link-local address of an interface with `mac` (modified EUI-64, RFC 4291
/// appendix A).
pub fn link_local(mac: &Mac) -> Addr {
    let mut a = [0u8; 16];
    a[0] = 0xfe;
    a[1] = 0x80;
    a[8] = mac[0] ^ 0x02;
    a[9] = mac[1];
    a[10] = mac[2];
    a[11] = 0xff;
    a[12] = 0xfe;
    a[13] = mac[3];
    a[14] = mac[4];
    a[15] = mac[5];
    a
}

/// The solicited-node multicast address of `a` (RFC 4291 2.7.1): ff02::1:ff00:0/104
/// and the low 24 bits of `a`.
pub fn solicited_node(a: &Addr) -> Addr {
    let mut s = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0];
    s[13..].copy_from_slice(&a[13..]);
    s
}

/// The Ethernet address of the IPv6 multicast address `a` (RFC 2464 7): 33:33 and its
/// low 32 bits.
pub fn multicast_mac(a: &Addr) -> Mac {
    [0x33, 0x33, a[12], a[13], a[14], a[15]]
}

fn is_multicast(a: &Addr) -> bool {
    a[0] == 0xff
}

fn is_unspecified(a: &Addr) -> bool {
    *a == [0; 16]
}

/// The inside port as IPv6 sees it.
#[derive(Clone, Debug)]
pub struct Ipv6If {
    /// The port's MAC.
    pub mac: Mac,
    /// Its link-local address (from the MAC).
    pub link_local: Addr,
    /// Its configured addresses and their on-link prefixes.
    pub nets: Vec<Ipv6Net>,
    /// The router toward hosts off its links (`ports[].gateway6`): routed or
    /// delegated subscriber prefixes. None: every host is taken as on-link.
    pub gateway: Option<Addr>,
}

impl Ipv6If {
    /// The port with `mac` and the configured `nets`; None without any (the port
    /// does not speak IPv6).
    pub fn new(mac: Mac, nets: &[Ipv6Net]) -> Option<Ipv6If> {
        (!nets.is_empty()).then(|| Ipv6If {
            mac,
            link_local: link_local(&mac),
            nets: nets.to_vec(),
            gateway: None,
        })
    }

    /// The same with `gateway` as the next hop toward hosts off its links.
    pub fn with_gateway(mut self, gateway: Option<std::net::Ipv6Addr>) -> Ipv6If {
        self.gateway = gateway.map(|g| g.octets());
        self
    }

    /// The next hop toward host `dst`: the host itself when it is on one of the
    /// port's links (or no gateway is set), else the gateway.
    pub fn next_hop(&self, dst: &Addr) -> Addr {
        match self.gateway {
            Some(g) if !self.on_link(dst) => g,
            _ => *dst,
        }
    }

    /// True for one of the port's own unicast addresses.
    pub fn owns(&self, a: &Addr) -> bool {
        *a == self.link_local || self.nets.iter().any(|n| n.addr.octets() == *a)
    }

    /// True for the solicited-node address of one of the port's addresses.
    fn solicited_for_us(&self, a: &Addr) -> bool {
        *a == solicited_node(&self.link_local)
            || self
                .nets
                .iter()
                .any(|n| *a == solicited_node(&n.addr.octets()))
    }

    /// True if `a` is on one of the port's links (its prefixes, or link-local).
    pub fn on_link(&self, a: &Addr) -> bool {
        (a[0] == 0xfe && a[1] & 0xc0 == 0x80) || self.nets.iter().any(|n| n.contains((*a).into()))
    }

    /// The address the port speaks to `dst` from: link-local to link-local, else the
    /// configured address whose prefix holds `dst`, else the first configured one.
    pub fn source_for(&self, dst: &Addr) -> Addr {
        if dst[0] == 0xfe && dst[1] & 0xc0 == 0x80 {
            return self.link_local;
        }
        self.nets
            .iter()
            .find(|n| n.contains((*dst).into()))
            .unwrap_or(&self.nets[0])
            .addr
            .octets()
    }
}

/// What the worker does with an IPv6 frame received on the inside port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Neighbour discovery or echo for the port: the control lcore answers.
    Control,
    /// A unicast packet for someone else (NAT64's, once it translates).
    Forward,
    /// Dropped, counted by this reason.
    Drop(DropReason),
}

fn wire_drop(e: WireError) -> DropReason {
    match e {
        WireError::Truncated => DropReason::Ipv6Truncated,
        WireError::Malformed => DropReason::Ipv6Malformed,
    }
}

/// Classifies the untagged IPv6 frame `d` (Ethernet header first) received on the
/// port `ifc`.
pub fn classify(d: &[u8], ifc: &Ipv6If) -> Class {
    if d.len() < L3 {
        return Class::Drop(DropReason::Ipv6Truncated);
    }
    let (src, dst, plen) = match ipv6::Packet::new_checked(&d[L3..]) {
        Ok(p) => (p.src(), p.dst(), p.payload_len()),
        Err(e) => return Class::Drop(wire_drop(e)),
    };
    if is_multicast(&src) {
        return Class::Drop(DropReason::Ipv6Malformed);
    }
    let chain = match ipv6::walk(&d[L3..], ipv6::HEADER_LEN + plen) {
        Ok(c) => c,
        Err(e) => return Class::Drop(wire_drop(e)),
    };
    let icmp_type = (chain.next_header == ipv6::NH_ICMPV6 && chain.fragment.is_none())
        .then(|| d.get(L3 + chain.offset).copied())
        .flatten();
    if is_multicast(&dst) {
        // Solicitations for the port's addresses come to their solicited-node group;
        // every other group (MLD, router solicitations, all-nodes) is not served.
        return match icmp_type {
            Some(icmpv6::NEIGHBOR_SOLICITATION) if ifc.solicited_for_us(&dst) => Class::Control,
            _ => Class::Drop(DropReason::Ipv6Multicast),
        };
    }
    if ifc.owns(&dst) {
        return match icmp_type {
            Some(icmpv6::NEIGHBOR_SOLICITATION)
            | Some(icmpv6::NEIGHBOR_ADVERTISEMENT)
            | Some(icmpv6::ECHO_REQUEST) => Class::Control,
            _ => Class::Drop(DropReason::LocalUnsupported),
        };
    }
    Class::Forward
}

/// What the control lcore does with a frame [`Nd::handle`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The frame was rewritten into the answer: send it back out of the port.
    Send,
    /// Dropped (learned from, or refused), counted by this reason.
    Drop(DropReason),
}

/// Neighbour discovery and echo on the control lcore.
pub struct Nd {
    ifc: Ipv6If,
    neighbors: Arc<Neighbors6>,
    /// Targets of our solicitations, until when their answer is taken.
    solicited: Vec<(Addr, u32)>,
}

impl Nd {
    /// The control lcore's side of `ifc`, learning into `neighbors`.
    pub fn new(ifc: Ipv6If, neighbors: Arc<Neighbors6>) -> Nd {
        Nd {
            ifc,
            neighbors,
            solicited: Vec::with_capacity(MAX_SOLICITED),
        }
    }

    /// Learns into `neighbors` from now on (a table the workers share, made before
    /// the control lcore's state).
    pub fn set_neighbors(&mut self, neighbors: Arc<Neighbors6>) {
        self.neighbors = neighbors;
    }

    /// The neighbour table it learns into.
    pub fn neighbors(&self) -> &Arc<Neighbors6> {
        &self.neighbors
    }

    /// Answers the IPv6 frame in `buf` (untagged, classified [`Class::Control`]).
    pub fn handle<F: PacketBuf>(&mut self, buf: &mut F, now: u32) -> Answer {
        match self.answer(buf, now) {
            Ok(a) => a,
            Err(r) => Answer::Drop(r),
        }
    }

    fn answer<F: PacketBuf>(&mut self, buf: &mut F, now: u32) -> Result<Answer, DropReason> {
        let d = buf.data();
        let p = ipv6::Packet::new_checked(d.get(L3..).ok_or(DropReason::Ipv6Truncated)?)
            .map_err(wire_drop)?;
        let (src, dst, hop) = (p.src(), p.dst(), p.hop_limit());
        if p.next_header() != ipv6::NH_ICMPV6 {
            return Err(DropReason::LocalUnsupported);
        }
        let msg = p.payload();
        if msg.len() < icmpv6::HEADER_LEN {
            return Err(DropReason::Ipv6Truncated);
        }
        let (ty, code) = (msg[0], msg[1]);
        let nd = matches!(
            ty,
            icmpv6::NEIGHBOR_SOLICITATION | icmpv6::NEIGHBOR_ADVERTISEMENT
        );
        // RFC 4861 7.1.1, 7.1.2: a hop limit of 255 (from this link), code 0, the
        // whole message, a valid checksum, a unicast target, well-formed options.
        if nd && (hop != ND_HOP_LIMIT || code != 0 || msg.len() < ND_LEN) {
            return Err(DropReason::NdMalformed);
        }
        if !icmpv6::checksum_ok(&src, &dst, msg) {
            return Err(if nd {
                DropReason::NdMalformed
            } else {
                DropReason::LocalUnsupported
            });
        }
        match ty {
            icmpv6::NEIGHBOR_SOLICITATION => self.solicitation(buf, src, dst),
            icmpv6::NEIGHBOR_ADVERTISEMENT => self.advertisement(buf, dst, now),
            icmpv6::ECHO_REQUEST if code == 0 && self.ifc.owns(&dst) => Ok(self.echo(buf)),
            _ => Err(DropReason::LocalUnsupported),
        }
    }

    fn solicitation<F: PacketBuf>(
        &mut self,
        buf: &mut F,
        src: Addr,
        dst: Addr,
    ) -> Result<Answer, DropReason> {
        let (target, sll, peer_mac) = {
            let d = buf.data();
            let msg = &d[L4..];
            let sll = icmpv6::nd_option(msg, icmpv6::OPT_SOURCE_LLA)
                .map_err(|_| DropReason::NdMalformed)?;
            (
                icmpv6::nd_target(msg),
                sll,
                ethernet::Frame::new_unchecked(d).src(),
            )
        };
        if is_multicast(&target) {
            return Err(DropReason::NdMalformed);
        }
        let dad = is_unspecified(&src);
        // Duplicate address detection: to the target's solicited-node group, without
        // a source link-layer address (RFC 4861 7.1.1).
        if dad && (dst != solicited_node(&target) || sll.is_some()) {
            return Err(DropReason::NdMalformed);
        }
        if !self.ifc.owns(&target) {
            return Err(DropReason::NdConsumed);
        }
        // RFC 4861 7.2.4: to the soliciting host (all nodes for a DAD probe), from
        // the target, router and override set, solicited unless to all nodes.
        let (to, to_mac, flags) = if dad {
            (
                ALL_NODES,
                multicast_mac(&ALL_NODES),
                icmpv6::NA_ROUTER | icmpv6::NA_OVERRIDE,
            )
        } else {
            (
                src,
                sll.unwrap_or(peer_mac),
                icmpv6::NA_ROUTER | icmpv6::NA_SOLICITED | icmpv6::NA_OVERRIDE,
            )
        };
        let mac = self.ifc.mac;
        let n = ND_LEN + 8;
        if !buf.set_len(L4 + n) {
            return Err(DropReason::NdMalformed);
        }
        let d = buf.data_mut();
        write_frame(d, &mac, &to_mac, &target, &to, n, ND_HOP_LIMIT);
        icmpv6::emit_nd(
            &mut d[L4..],
            icmpv6::NEIGHBOR_ADVERTISEMENT,
            flags,
            &target,
            icmpv6::OPT_TARGET_LLA,
            &mac,
        );
        icmpv6::fill_checksum(&target, &to, &mut d[L4..]);
        Ok(Answer::Send)
    }

    fn advertisement<F: PacketBuf>(
        &mut self,
        buf: &mut F,
        dst: Addr,
        now: u32,
    ) -> Result<Answer, DropReason> {
        let d = buf.data();
        let msg = &d[L4..];
        let flags = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
        let target = icmpv6::nd_target(msg);
        let tll =
            icmpv6::nd_option(msg, icmpv6::OPT_TARGET_LLA).map_err(|_| DropReason::NdMalformed)?;
        if is_multicast(&target) || (is_multicast(&dst) && flags & icmpv6::NA_SOLICITED != 0) {
            return Err(DropReason::NdMalformed);
        }
        // Learn only the answer to a solicitation of ours, with the MAC it names
        // (an unsolicited advertisement teaches nothing: anyone can claim anything).
        let asked = self
            .solicited
            .iter()
            .position(|(a, until)| *a == target && *until > now);
        match (asked, tll) {
            (Some(i), Some(mac))
                if flags & icmpv6::NA_SOLICITED != 0
                    && self.ifc.on_link(&target)
                    && !ethernet::is_multicast(&mac) =>
            {
                self.solicited.swap_remove(i);
                self.neighbors.learn_answer(&target, &mac, now);
                Err(DropReason::NdConsumed)
            }
            _ => Err(DropReason::NdUnsolicited),
        }
    }

    fn echo<F: PacketBuf>(&mut self, buf: &mut F) -> Answer {
        let d = buf.data_mut();
        let peer = ethernet::Frame::new_unchecked(&d[..]).src();
        ethernet::Frame::new_unchecked(&mut d[..]).set_addrs(&self.ifc.mac, &peer);
        let (src, dst) = {
            let p = ipv6::Packet::new_unchecked(&d[L3..]);
            (p.src(), p.dst())
        };
        {
            let mut p = ipv6::Packet::new_unchecked(&mut d[L3..]);
            p.set_src(&dst);
            p.set_dst(&src);
            p.set_hop_limit(HOP_LIMIT);
        }
        // The pseudo-header sums the same with the addresses swapped: only the type
        // changes.
        let c = u16::from_be_bytes([d[L4 + 2], d[L4 + 3]]);
        let c = checksum::update16(
            c,
            u16::from(icmpv6::ECHO_REQUEST) << 8,
            u16::from(icmpv6::ECHO_REPLY) << 8,
        );
        d[L4] = icmpv6::ECHO_REPLY;
        put16(d, L4 + 2, c);
        Answer::Send
    }

    /// Writes into `buf` (any contents) a neighbour solicitation for `target` from the
    /// port, to its solicited-node group, and notes it so that the answer is learned
    /// (until `now` + [`SOLICIT_SECS`]). False when `buf` has no room or too many are
    /// awaiting their answer.
    pub fn solicit<F: PacketBuf>(&mut self, target: &Addr, buf: &mut F, now: u32) -> bool {
        self.solicited.retain(|(_, until)| *until > now);
        let n = ND_LEN + 8;
        if self.solicited.len() >= MAX_SOLICITED || !buf.set_len(L4 + n) {
            return false;
        }
        let group = solicited_node(target);
        let from = self.ifc.source_for(target);
        let mac = self.ifc.mac;
        let d = buf.data_mut();
        write_frame(
            d,
            &mac,
            &multicast_mac(&group),
            &from,
            &group,
            n,
            ND_HOP_LIMIT,
        );
        icmpv6::emit_nd(
            &mut d[L4..],
            icmpv6::NEIGHBOR_SOLICITATION,
            0,
            target,
            icmpv6::OPT_SOURCE_LLA,
            &mac,
        );
        icmpv6::fill_checksum(&from, &group, &mut d[L4..]);
        if let Some(s) = self.solicited.iter_mut().find(|(a, _)| a == target) {
            s.1 = now + SOLICIT_SECS;
        } else {
            self.solicited.push((*target, now + SOLICIT_SECS));
        }
        true
    }
}

/// Writes the Ethernet and IPv6 headers of an ICMPv6 message of `len` bytes.
fn write_frame(d: &mut [u8], from: &Mac, to: &Mac, src: &Addr, dst: &Addr, len: usize, hop: u8) {
    let mut f = ethernet::Frame::new_unchecked(&mut d[..]);
    f.set_addrs(from, to);
    f.set_ethertype(ETHERTYPE_IPV6);
    ipv6::emit(
        &mut d[L3..],
        0,
        0,
        len as u16,
        ipv6::NH_ICMPV6,
        hop,
        src,
        dst,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn link_local_solicited_node_and_multicast_mac() {
        let mac = [0x02, 0x00, 0x00, 0x00, 0x01, 0x01];
        assert_eq!(
            Ipv6Addr::from(link_local(&mac)),
            "fe80::ff:fe00:101".parse::<Ipv6Addr>().unwrap()
        );
        let a = "2001:db8::1:2345:6789"
            .parse::<Ipv6Addr>()
            .unwrap()
            .octets();
        assert_eq!(
            Ipv6Addr::from(solicited_node(&a)),
            "ff02::1:ff45:6789".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            multicast_mac(&solicited_node(&a)),
            [0x33, 0x33, 0xff, 0x45, 0x67, 0x89]
        );
    }
}
