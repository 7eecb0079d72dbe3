//! IP/ICMP header translation between IPv4 and IPv6 (RFC 7915), in place in a packet
//! buffer. Stateless: the caller (NAT64) gives the addresses and, where the NAT
//! rewrites them, the ports or ICMP identifier of the packet and of the packet embedded
//! in an ICMP error; this module rewrites the headers, recomputes or updates every
//! checksum, maps ICMP types, codes, MTUs and pointers, and handles the fragment header
//! and the Don't Fragment bit both ways. It knows nothing of sessions.
//!
//! The L3 header starts at offset `l3` of the buffer; the bytes before it (Ethernet and
//! VLAN headers) are kept and moved with the front of the packet, and the two bytes
//! just before `l3` (the EtherType) are set to the new version's. The packet grows or
//! shrinks with `prepend`/`adj` at the front and `append`/`trim` at the tail: no
//! allocation. What cannot be translated comes back as a [`Refused`], each reason its
//! own counter for the caller; the ones the RFC answers with an ICMP error (hop
//! limit, too big, source route, segments left) carry what the caller needs to build
//! it and leave the packet as it came, for the error to quote.

use crate::buf::PacketBuf;
use crate::wire::checksum::{self, Delta};
use crate::wire::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use crate::wire::ipv6::{self, Addr};
use crate::wire::{be16, icmp, icmpv6, ipv4, put16, put32, WireError};

/// Default of the size above which an IPv4 packet without DF is fragmented when it
/// becomes IPv6 (RFC 7915 4.1 "lowest-ipv6-mtu").
pub const LOWEST_IPV6_MTU: u16 = 1280;
/// An IPv4 packet from IPv6 gets DF only above this size (RFC 7915 5: 1280 - 20).
pub const DF_ABOVE: usize = 1260;
/// Largest ICMPv6 error built from an ICMPv4 one (the whole IPv6 packet: RFC 4443 2.4).
pub const ICMPV6_ERROR_MAX: usize = ipv6::MIN_MTU;
/// Largest ICMPv4 error built from an ICMPv6 one (the whole IPv4 packet: RFC 1812
/// 4.3.2.3).
pub const ICMPV4_ERROR_MAX: usize = 576;
/// RFC 1191's MTU plateaus, for an ICMPv4 fragmentation-needed with no MTU in it.
const PLATEAUS: [u16; 10] = [32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

/// The MTUs translation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mtus {
    /// IPv4 packets without DF whose IPv6 translation is larger are fragmented to this
    /// size (RFC 7915 4.1, lowest-ipv6-mtu).
    pub lowest_ipv6: u16,
    /// MTU of the IPv6 side's next hop.
    pub ipv6: u16,
    /// MTU of the IPv4 side's next hop.
    pub ipv4: u16,
}

impl Default for Mtus {
    fn default() -> Mtus {
        Mtus {
            lowest_ipv6: LOWEST_IPV6_MTU,
            ipv6: 1500,
            ipv4: 1500,
        }
    }
}

/// The IPv6 side of a packet after translation to IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Side6 {
    /// Source address.
    pub src: Addr,
    /// Destination address.
    pub dst: Addr,
    /// New (source, destination) ports of TCP and UDP, or (identifier, unused) of an
    /// ICMP echo; `None` keeps them.
    pub ports: Option<(u16, u16)>,
}

/// The IPv4 side of a packet after translation to IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Side4 {
    /// Source address (host order).
    pub src: u32,
    /// Destination address (host order).
    pub dst: u32,
    /// As [`Side6::ports`].
    pub ports: Option<(u16, u16)>,
}

/// How to translate a packet to IPv6: its own addresses and those of the packet an
/// ICMP error embeds (unused for other packets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct To6 {
    /// The packet.
    pub outer: Side6,
    /// The packet inside an ICMP error.
    pub inner: Side6,
}

/// How to translate a packet to IPv4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct To4 {
    /// The packet.
    pub outer: Side4,
    /// The packet inside an ICMP error.
    pub inner: Side4,
    /// IPv4 identification of a packet that had no fragment header (the caller's
    /// counter: a packet of 1260 bytes or fewer leaves without DF, RFC 6864).
    pub ident: u16,
}

/// What [`to_ipv6`] left in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Out6 {
    /// One IPv6 packet, ready.
    Whole,
    /// An IPv6 packet with a fragment header, larger than `lowest_ipv6`: the caller cuts
    /// it with [`split_ipv6`] into fragments of that size (RFC 7915 4.1).
    Split,
}

/// Why a packet was not translated. Each is a counter of its own; the comments say
/// which ICMP error the RFC has the caller send back, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Shorter than its headers say.
    Truncated,
    /// A malformed header.
    Malformed,
    /// The IPv4 header checksum, or an ICMP error's checksum, does not verify.
    Checksum,
    /// The TTL or hop limit would reach zero: the caller sends time exceeded.
    HopLimit,
    /// DF set (IPv4) or an IPv6 packet, larger than the next hop's MTU: the caller sends
    /// fragmentation-needed (ICMPv4 3/4) or packet-too-big (ICMPv6 2/0) with `mtu`.
    TooBig {
        /// The MTU to report to the sender.
        mtu: u16,
    },
    /// An ICMP message the RFC translates by dropping it (informational types, unknown
    /// types and codes, pointers with no counterpart).
    IcmpUntranslatable,
    /// A fragmented ICMP message (RFC 7915 1.2: not translated).
    FragmentedIcmp,
    /// An IPv4 UDP fragment with a zero checksum (RFC 7915 4.5: dropped; it cannot be
    /// computed before all fragments are in).
    UdpZeroChecksumFragment,
    /// An unexpired IPv4 source route option (RFC 7915 4.1): the caller sends ICMPv4
    /// 3/5 (source route failed).
    SourceRoute,
    /// An IPv6 routing header with segments left (RFC 7915 5.1): the caller sends
    /// ICMPv6 parameter problem 4/0 with this pointer.
    SegmentsLeft {
        /// Offset of the segments-left byte in the IPv6 packet.
        pointer: u32,
    },
    /// An extension header after the fragment header (RFC 7915 5.1).
    ExtensionAfterFragment,
    /// An ICMP error embedded in an ICMP error (RFC 7915 4.3, 5.3).
    NestedError,
    /// No head or tail room left in the buffer to grow the packet.
    NoRoom,
}

impl From<WireError> for Refused {
    fn from(e: WireError) -> Refused {
        match e {
            WireError::Truncated => Refused::Truncated,
            WireError::Malformed => Refused::Malformed,
        }
    }
}

/// One's-complement sum of an IPv4 address's two words.
#[inline]
fn sum4(a: u32) -> u32 {
    (a >> 16) + (a & 0xffff)
}

/// The delta that turns a checksum over words summing to `old` into one over words
/// summing to `new` (both unfolded one's-complement sums).
#[inline]
fn delta(old: u32, new: u32) -> Delta {
    Delta(u32::from(checksum::fold(checksum::add(
        u32::from(!checksum::fold(old)),
        new,
    ))))
}

/// Grows (`by` > 0) or shrinks the packet at the front, keeping the first `keep` bytes
/// (the L2 header) at the new front.
fn resize_front<B: PacketBuf>(buf: &mut B, keep: usize, by: isize) -> Result<(), Refused> {
    let n = by.unsigned_abs();
    if by > 0 {
        if !buf.prepend(n) {
            return Err(Refused::NoRoom);
        }
        buf.data_mut().copy_within(n..n + keep, 0);
    } else if by < 0 {
        buf.data_mut().copy_within(0..keep, n);
        if !buf.adj(n) {
            return Err(Refused::NoRoom);
        }
    }
    Ok(())
}

/// Replaces `old_len` bytes at `at` by `new_len` bytes (contents left to the caller),
/// moving what follows them.
fn resize_at<B: PacketBuf>(
    buf: &mut B,
    at: usize,
    old_len: usize,
    new_len: usize,
) -> Result<(), Refused> {
    let len = buf.len();
    if new_len > old_len {
        if !buf.append(new_len - old_len) {
            return Err(Refused::NoRoom);
        }
        buf.data_mut().copy_within(at + old_len..len, at + new_len);
    } else if new_len < old_len {
        buf.data_mut().copy_within(at + old_len..len, at + new_len);
        buf.trim(old_len - new_len);
    }
    Ok(())
}

/// Sets the EtherType in front of `l3`, if there is an L2 header.
fn set_ethertype<B: PacketBuf>(buf: &mut B, l3: usize, t: u16) {
    if l3 >= 2 {
        put16(buf.data_mut(), l3 - 2, t);
    }
}

/// Rewrites the ports and updates the checksum of a TCP or UDP header `seg` (possibly
/// truncated, inside an ICMP error) for pseudo-header addresses summing `old_addrs`
/// before and `new_addrs` after. A zero UDP checksum stays zero.
fn rewrite_tcp_udp(
    seg: &mut [u8],
    proto: u8,
    old_addrs: u32,
    new_addrs: u32,
    ports: Option<(u16, u16)>,
) {
    if seg.len() < 4 {
        return;
    }
    let (os, od) = (be16(seg, 0), be16(seg, 2));
    let (ns, nd) = ports.unwrap_or((os, od));
    put16(seg, 0, ns);
    put16(seg, 2, nd);
    let at = if proto == ipv4::PROTO_TCP { 16 } else { 6 };
    if seg.len() < at + 2 {
        return;
    }
    let check = be16(seg, at);
    if proto == ipv4::PROTO_UDP && check == 0 {
        return;
    }
    let d = delta(
        old_addrs + u32::from(os) + u32::from(od),
        new_addrs + u32::from(ns) + u32::from(nd),
    );
    let mut c = d.apply(check);
    if proto == ipv4::PROTO_UDP && c == 0 {
        c = 0xffff;
    }
    put16(seg, at, c);
}

/// Rewrites an echo message's type and identifier and updates its checksum by the
/// words `old_extra` removed and `new_extra` added (the ICMPv6 pseudo-header).
fn rewrite_echo(msg: &mut [u8], new_type: u8, ident: Option<u16>, old_extra: u32, new_extra: u32) {
    if msg.len() < 4 {
        return;
    }
    let tc_old = be16(msg, 0);
    msg[0] = new_type;
    let tc_new = be16(msg, 0);
    let (mut oid, mut nid) = (0, 0);
    if msg.len() >= 6 {
        oid = be16(msg, 4);
        nid = ident.unwrap_or(oid);
        put16(msg, 4, nid);
    }
    let d = delta(
        u32::from(tc_old) + u32::from(oid) + old_extra,
        u32::from(tc_new) + u32::from(nid) + new_extra,
    );
    let c = d.apply(be16(msg, 2));
    put16(msg, 2, c);
}

/// The version a packet is translated to, for what differs between the two ways.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// IPv4 to IPv6.
    To6,
    /// IPv6 to IPv4.
    To4,
}

impl Dir {
    /// The ICMP protocol number of the version translated from.
    fn icmp_from(self) -> u8 {
        match self {
            Dir::To6 => ipv4::PROTO_ICMP,
            Dir::To4 => ipv6::NH_ICMPV6,
        }
    }
    /// True for an error type of the version translated from.
    fn is_error(self, ty: u8) -> bool {
        match self {
            Dir::To6 => icmp::is_error(ty),
            Dir::To4 => icmpv6::is_error(ty),
        }
    }
    /// The echo request or reply type of the other version, if `ty` is one.
    fn echo(self, ty: u8) -> Option<u8> {
        match (self, ty) {
            (Dir::To6, icmp::ECHO_REQUEST) => Some(icmpv6::ECHO_REQUEST),
            (Dir::To6, icmp::ECHO_REPLY) => Some(icmpv6::ECHO_REPLY),
            (Dir::To4, icmpv6::ECHO_REQUEST) => Some(icmp::ECHO_REQUEST),
            (Dir::To4, icmpv6::ECHO_REPLY) => Some(icmp::ECHO_REPLY),
            _ => None,
        }
    }
    /// The (removed, added) ICMPv6 pseudo-header sums of an ICMP message: added going to
    /// IPv6, removed going to IPv4.
    fn icmp_pseudo(self, pseudo6: u32) -> (u32, u32) {
        match self {
            Dir::To6 => (0, pseudo6),
            Dir::To4 => (pseudo6, 0),
        }
    }
}

/// Rewrites the transport header of the packet inside an ICMP error, `seg` (possibly
/// truncated): TCP and UDP ports and checksum, or an ICMP query's type, identifier and
/// checksum. `addrs` are the (old, new) pseudo-header address sums, `pseudo6` the
/// ICMPv6 pseudo-header sum of the IPv6 side.
fn embedded_l4(
    seg: &mut [u8],
    nh: u8,
    dir: Dir,
    addrs: (u32, u32),
    pseudo6: u32,
    ports: Option<(u16, u16)>,
) -> Result<(), Refused> {
    if nh == ipv4::PROTO_TCP || nh == ipv4::PROTO_UDP {
        rewrite_tcp_udp(seg, nh, addrs.0, addrs.1, ports);
    } else if nh == dir.icmp_from() {
        let ty = *seg.first().ok_or(Refused::Truncated)?;
        if dir.is_error(ty) {
            return Err(Refused::NestedError);
        }
        let (old, new) = dir.icmp_pseudo(pseudo6);
        let nt = dir.echo(ty).unwrap_or(ty);
        rewrite_echo(seg, nt, ports.map(|p| p.0), old, new);
    }
    Ok(())
}

/// Translates an echo request or reply at `l4` (type, identifier, checksum by the
/// pseudo-header sum `pseudo6` of the IPv6 side); false if `ty` is not one.
fn echo<B: PacketBuf>(
    buf: &mut B,
    l4: usize,
    ty: u8,
    dir: Dir,
    pseudo6: u32,
    ports: Option<(u16, u16)>,
) -> bool {
    let Some(nt) = dir.echo(ty) else {
        return false;
    };
    let (old, new) = dir.icmp_pseudo(pseudo6);
    rewrite_echo(&mut buf.data_mut()[l4..], nt, ports.map(|p| p.0), old, new);
    true
}

/// Identification and flags/offset word of an IPv4 header made from IPv6: from the
/// fragment header if there is one (RFC 7915 5.1.1: the low 16 bits of the
/// identification, MF copied, DF clear), else `ident` and DF above 1260 bytes.
fn v4_ident_flags(frag: Option<(usize, bool, u32)>, total: usize, ident: u16) -> (u16, u16) {
    match frag {
        Some((offset, more, id)) => (
            id as u16,
            (offset / 8) as u16 | if more { ipv4::FLAG_MF } else { 0 },
        ),
        None => (ident, if total > DF_ABOVE { ipv4::FLAG_DF } else { 0 }),
    }
}

/// Scans IPv4 options for an unexpired loose or strict source route.
fn source_route(opts: &[u8]) -> Result<bool, Refused> {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            t => {
                let len = usize::from(*opts.get(i + 1).ok_or(Refused::Malformed)?);
                if len < 2 || i + len > opts.len() {
                    return Err(Refused::Malformed);
                }
                if (t == 131 || t == 137) && len >= 3 && usize::from(opts[i + 2]) <= len {
                    return Ok(true);
                }
                i += len;
            }
        }
    }
    Ok(false)
}

/// Writes a 20-byte IPv4 header, checksum filled.
#[allow(clippy::too_many_arguments)]
fn write_v4(
    b: &mut [u8],
    tos: u8,
    total: u16,
    ident: u16,
    flags_frag: u16,
    ttl: u8,
    proto: u8,
    src: u32,
    dst: u32,
) {
    ipv4::emit(b, total, ident, false, ttl, proto, src, dst);
    b[1] = tos;
    put16(b, 6, flags_frag);
    ipv4::Packet::new_unchecked(&mut b[..ipv4::MIN_HEADER_LEN]).fill_checksum();
}

/// The fields of an IPv4 header read before it is overwritten.
#[derive(Clone, Copy)]
struct V4 {
    hl: usize,
    total: usize,
    tos: u8,
    ident: u16,
    df: bool,
    mf: bool,
    offset: usize,
    ttl: u8,
    proto: u8,
    src: u32,
    dst: u32,
}

impl V4 {
    fn read(b: &[u8]) -> V4 {
        let p = ipv4::Packet::new_unchecked(b);
        let ff = p.flags_frag();
        V4 {
            hl: p.header_len(),
            total: p.total_len(),
            tos: b[1],
            ident: p.ident(),
            df: ff & ipv4::FLAG_DF != 0,
            mf: ff & ipv4::FLAG_MF != 0,
            offset: p.frag_offset(),
            ttl: p.ttl(),
            proto: p.protocol(),
            src: p.src(),
            dst: p.dst(),
        }
    }
    fn fragment(&self) -> bool {
        self.mf || self.offset != 0
    }
    /// Writes the IPv6 header that replaces this one into `b`: traffic class = TOS,
    /// flow label 0, then a fragment header carrying this header's offset, MF and
    /// identification if `fh`; `nh` is the upper layer, `plen` the payload length
    /// (the fragment header included).
    fn emit_v6(&self, b: &mut [u8], fh: bool, nh: u8, plen: usize, hop: u8, s: &Side6) {
        let first = if fh { ipv6::NH_FRAGMENT } else { nh };
        ipv6::emit(b, self.tos, 0, plen as u16, first, hop, &s.src, &s.dst);
        if fh {
            let ident = u32::from(self.ident);
            ipv6::emit_fragment(&mut b[ipv6::HEADER_LEN..], nh, self.offset, self.mf, ident);
        }
    }
}

/// The fields of an IPv6 header and its extension chain read before it is overwritten.
#[derive(Clone, Copy)]
struct V6 {
    tc: u8,
    plen: usize,
    hop: u8,
    src: Addr,
    dst: Addr,
    /// Header bytes before the upper layer (fixed, extensions, fragment header).
    hlen: usize,
    nh: u8,
    /// (offset in bytes, more fragments, identification) of a fragment header.
    frag: Option<(usize, bool, u32)>,
}

impl V6 {
    /// Reads the header and walks its chain up to `end` bytes of `b`.
    fn read(b: &[u8], end: usize) -> Result<V6, Refused> {
        let p = ipv6::Packet::new_unchecked(b);
        let chain = ipv6::walk(b, end)?;
        if let Some(at) = chain.segments_left {
            return Err(Refused::SegmentsLeft { pointer: at as u32 });
        }
        let frag = match chain.fragment {
            Some(at) => {
                if ipv6::is_skippable_extension(chain.next_header) {
                    return Err(Refused::ExtensionAfterFragment);
                }
                let f = ipv6::FragmentHeader::new_checked(&b[at..])?;
                Some((f.frag_offset(), f.more_fragments(), f.ident()))
            }
            None => None,
        };
        Ok(V6 {
            tc: p.traffic_class(),
            plen: p.payload_len(),
            hop: p.hop_limit(),
            src: p.src(),
            dst: p.dst(),
            hlen: chain.offset,
            nh: chain.next_header,
            frag,
        })
    }
    /// True for a real fragment (not an atomic one, offset 0 without more).
    fn fragment(&self) -> bool {
        matches!(self.frag, Some((o, m, _)) if o != 0 || m)
    }
    /// True when the upper-layer header is in this packet.
    fn first(&self) -> bool {
        !matches!(self.frag, Some((o, _, _)) if o != 0)
    }
}

/// Translates the IPv4 packet at `l3` of `buf` to IPv6 (RFC 7915 section 4).
pub fn to_ipv6<B: PacketBuf>(
    buf: &mut B,
    l3: usize,
    t: &To6,
    mtus: &Mtus,
) -> Result<Out6, Refused> {
    let h = {
        let d = buf.data();
        if d.len() < l3 {
            return Err(Refused::Truncated);
        }
        let p = ipv4::Packet::new_checked(&d[l3..])?;
        if !p.checksum_ok() {
            return Err(Refused::Checksum);
        }
        let h = V4::read(&d[l3..]);
        if source_route(&d[l3 + ipv4::MIN_HEADER_LEN..l3 + h.hl])? {
            return Err(Refused::SourceRoute);
        }
        h
    };
    if h.ttl <= 1 {
        return Err(Refused::HopLimit);
    }
    let l4 = l3 + h.hl;
    // Refusals for size come first, the packet untouched: the caller's ICMP error
    // quotes it as it was sent. (An ICMP error is cut to 1280 bytes: never too big.)
    let icmp_error = h.proto == ipv4::PROTO_ICMP
        && h.total > h.hl
        && buf.data().get(l4).is_some_and(|t| icmp::is_error(*t));
    if !icmp_error {
        if let Some(mtu) = too_big6(&h, h.total - h.hl, mtus) {
            return Err(Refused::TooBig { mtu });
        }
    }
    buf.set_len(l3 + h.total);
    let old_addrs = sum4(h.src) + sum4(h.dst);
    let new_addrs = checksum::add(checksum::sum(&t.outer.src), checksum::sum(&t.outer.dst));
    let mut nh = h.proto;
    if h.proto == ipv4::PROTO_ICMP {
        if h.fragment() {
            return Err(Refused::FragmentedIcmp);
        }
        icmp4_to_6(buf, l4, t, mtus)?;
        nh = ipv6::NH_ICMPV6;
    } else if h.offset == 0 {
        let seg = &mut buf.data_mut()[l4..];
        match h.proto {
            ipv4::PROTO_TCP if seg.len() < 20 => return Err(Refused::Truncated),
            ipv4::PROTO_UDP if seg.len() < 8 => return Err(Refused::Truncated),
            ipv4::PROTO_UDP if be16(seg, 6) == 0 => {
                if h.fragment() {
                    return Err(Refused::UdpZeroChecksumFragment);
                }
                // RFC 7915 4.5: compute the checksum IPv6 requires.
                if let Some((s, d)) = t.outer.ports {
                    put16(seg, 0, s);
                    put16(seg, 2, d);
                }
                let pseudo =
                    ipv6::pseudo_header(&t.outer.src, &t.outer.dst, ipv6::NH_UDP, seg.len() as u32);
                let c = checksum::finish(checksum::add(pseudo, checksum::sum(seg)));
                put16(seg, 6, if c == 0 { 0xffff } else { c });
            }
            ipv4::PROTO_TCP | ipv4::PROTO_UDP => {
                rewrite_tcp_udp(seg, h.proto, old_addrs, new_addrs, t.outer.ports)
            }
            _ => {}
        }
    }
    let plen = buf.len() - l4;
    // RFC 7915 4: a fragment header only for a packet that is a fragment already, or
    // one without DF that must be fragmented to fit lowest-ipv6-mtu (a fragment's own
    // fragment header counted in its size).
    let fh_len = if h.fragment() {
        ipv6::FRAG_HEADER_LEN
    } else {
        0
    };
    let split = !h.df && ipv6::HEADER_LEN + fh_len + plen > usize::from(mtus.lowest_ipv6);
    let fh = h.fragment() || split;
    let hlen6 = ipv6::HEADER_LEN + if fh { ipv6::FRAG_HEADER_LEN } else { 0 };
    resize_front(buf, l3, hlen6 as isize - h.hl as isize)?;
    let plen6 = hlen6 - ipv6::HEADER_LEN + plen;
    h.emit_v6(
        &mut buf.data_mut()[l3..],
        fh,
        nh,
        plen6,
        h.ttl - 1,
        &t.outer,
    );
    set_ethertype(buf, l3, ETHERTYPE_IPV6);
    Ok(if split { Out6::Split } else { Out6::Whole })
}

/// The MTU to report when the IPv4 packet `h` with DF, `plen` bytes after its header,
/// is too big for the IPv6 next hop (RFC 7915 4.1: its total length + 20, or + 28 for
/// a fragment, above the hop's MTU); None when it fits or may be fragmented.
fn too_big6(h: &V4, plen: usize, mtus: &Mtus) -> Option<u16> {
    let hlen6 = ipv6::HEADER_LEN
        + if h.fragment() {
            ipv6::FRAG_HEADER_LEN
        } else {
            0
        };
    (h.df && hlen6 + plen > usize::from(mtus.ipv6))
        .then(|| (usize::from(mtus.ipv6) - (hlen6 - ipv4::MIN_HEADER_LEN)) as u16)
}

/// Cuts the IPv6 packet at `l3` of `buf`, as [`to_ipv6`] leaves it when it answers
/// [`Out6::Split`] (a fragment header right after the fixed header), to `mtu` bytes,
/// and writes the rest, with the same L2 header and a fragment header of its own, into
/// `rest` (whose contents are replaced). Returns false, `rest` untouched, when the
/// packet fits already; call it again on `rest` until it does.
pub fn split_ipv6<B: PacketBuf>(
    buf: &mut B,
    l3: usize,
    mtu: u16,
    rest: &mut B,
) -> Result<bool, Refused> {
    let hl = ipv6::HEADER_LEN + ipv6::FRAG_HEADER_LEN;
    let piece = usize::from(mtu).saturating_sub(hl) & !7;
    if piece == 0 {
        return Err(Refused::TooBig { mtu });
    }
    let len = buf.len();
    let data = len - l3 - hl;
    if data <= piece {
        return Ok(false);
    }
    let (offset, more, ident, nh) = {
        let f = ipv6::FragmentHeader::new_checked(&buf.data()[l3 + ipv6::HEADER_LEN..])?;
        (
            f.frag_offset(),
            f.more_fragments(),
            f.ident(),
            f.next_header(),
        )
    };
    let rest_data = data - piece;
    if !rest.set_len(l3 + hl + rest_data) {
        return Err(Refused::NoRoom);
    }
    {
        let (src, dst) = (buf.data(), rest.data_mut());
        dst[..l3 + ipv6::HEADER_LEN].copy_from_slice(&src[..l3 + ipv6::HEADER_LEN]);
        dst[l3 + hl..].copy_from_slice(&src[l3 + hl + piece..]);
        ipv6::Packet::new_unchecked(&mut dst[l3..]).set_payload_len((8 + rest_data) as u16);
        ipv6::emit_fragment(
            &mut dst[l3 + ipv6::HEADER_LEN..],
            nh,
            offset + piece,
            more,
            ident,
        );
    }
    buf.trim(len - (l3 + hl + piece));
    let b = &mut buf.data_mut()[l3..];
    ipv6::Packet::new_unchecked(&mut *b).set_payload_len((8 + piece) as u16);
    ipv6::emit_fragment(&mut b[ipv6::HEADER_LEN..], nh, offset, true, ident);
    Ok(true)
}

/// RFC 7915 figure 3: where an ICMPv4 parameter problem's pointer points in IPv6.
fn pointer_4to6(p: u8) -> Option<u32> {
    Some(match p {
        0 => 0,
        1 => 1,
        2 | 3 => 4,
        8 => 7,
        9 => 6,
        12..=15 => 8,
        16..=19 => 24,
        _ => return None,
    })
}

/// RFC 7915 figure 6: where an ICMPv6 parameter problem's pointer points in IPv4.
fn pointer_6to4(p: u32) -> Option<u8> {
    Some(match p {
        0 => 0,
        1 => 1,
        4 | 5 => 2,
        6 => 9,
        7 => 8,
        8..=23 => 12,
        24..=39 => 16,
        _ => return None,
    })
}

/// The ICMPv6 type, code and 32-bit word of an ICMPv4 error (RFC 7915 4.2), the MTU
/// of a fragmentation-needed still to be adjusted (marked by `PACKET_TOO_BIG`).
fn map_error_4to6(ty: u8, code: u8, word: u32) -> Result<(u8, u8, u32), Refused> {
    use icmpv6::*;
    let r = match (ty, code) {
        (icmp::DEST_UNREACHABLE, 0 | 1 | 5..=8 | 11 | 12) => (DEST_UNREACHABLE, CODE_NO_ROUTE, 0),
        (icmp::DEST_UNREACHABLE, 2) => (PARAMETER_PROBLEM, CODE_UNRECOGNIZED_NEXT_HEADER, 6),
        (icmp::DEST_UNREACHABLE, 3) => (DEST_UNREACHABLE, CODE_PORT_UNREACHABLE, 0),
        (icmp::DEST_UNREACHABLE, 4) => (PACKET_TOO_BIG, 0, word & 0xffff),
        (icmp::DEST_UNREACHABLE, 9 | 10 | 13 | 15) => (DEST_UNREACHABLE, CODE_ADMIN_PROHIBITED, 0),
        (icmp::TIME_EXCEEDED, c) => (TIME_EXCEEDED, c, 0),
        (icmp::PARAMETER_PROBLEM, 0 | 2) => {
            let p = pointer_4to6((word >> 24) as u8).ok_or(Refused::IcmpUntranslatable)?;
            (PARAMETER_PROBLEM, CODE_ERRONEOUS_FIELD, p)
        }
        _ => return Err(Refused::IcmpUntranslatable),
    };
    Ok(r)
}

/// The ICMPv4 type, code and word of an ICMPv6 error (RFC 7915 5.2), the MTU of a
/// packet-too-big still to be adjusted.
fn map_error_6to4(ty: u8, code: u8, word: u32) -> Result<(u8, u8, u32), Refused> {
    use icmp::*;
    let r = match (ty, code) {
        (icmpv6::DEST_UNREACHABLE, 0 | 2 | 3) => (DEST_UNREACHABLE, 1, 0),
        (icmpv6::DEST_UNREACHABLE, 1) => (DEST_UNREACHABLE, 10, 0),
        (icmpv6::DEST_UNREACHABLE, 4) => (DEST_UNREACHABLE, CODE_PORT_UNREACHABLE, 0),
        (icmpv6::PACKET_TOO_BIG, _) => (DEST_UNREACHABLE, CODE_FRAG_NEEDED, word),
        (icmpv6::TIME_EXCEEDED, c) => (TIME_EXCEEDED, c, 0),
        (icmpv6::PARAMETER_PROBLEM, 0) => {
            let p = pointer_6to4(word).ok_or(Refused::IcmpUntranslatable)?;
            (PARAMETER_PROBLEM, 0, u32::from(p) << 24)
        }
        (icmpv6::PARAMETER_PROBLEM, 1) => (DEST_UNREACHABLE, 2, 0),
        _ => return Err(Refused::IcmpUntranslatable),
    };
    Ok(r)
}

/// Translates the ICMPv4 message at `l4` (the rest of the buffer) to ICMPv6.
fn icmp4_to_6<B: PacketBuf>(buf: &mut B, l4: usize, t: &To6, mtus: &Mtus) -> Result<(), Refused> {
    let (ty, code, word) = {
        let m = icmp::Message::new_checked(&buf.data()[l4..])?;
        (m.msg_type(), m.code(), m.word())
    };
    let len = buf.len() - l4;
    let pseudo6 = ipv6::pseudo_header(&t.outer.src, &t.outer.dst, ipv6::NH_ICMPV6, len as u32);
    if echo(buf, l4, ty, Dir::To6, pseudo6, t.outer.ports) {
        return Ok(());
    }
    if !icmp::is_error(ty) {
        return Err(Refused::IcmpUntranslatable);
    }
    if checksum::fold(checksum::sum(&buf.data()[l4..])) != 0xffff {
        return Err(Refused::Checksum);
    }
    let (nt, ncode, mut nword) = map_error_4to6(ty, code, word)?;
    // RFC 4884: the original datagram's length (32-bit words) in byte 5, an extension
    // after it. Only ICMPv6 destination unreachable and time exceeded carry one on.
    let ext = take_extension(buf, l4, usize::from((word >> 16) as u8) * 4);
    let inner = inner_4to6(buf, l4 + icmp::HEADER_LEN, &t.inner)?;
    if nt == icmpv6::PACKET_TOO_BIG {
        let mut mtu4 = nword;
        if mtu4 == 0 {
            // RFC 1191: the largest plateau below the packet's length.
            mtu4 = u32::from(
                PLATEAUS
                    .iter()
                    .copied()
                    .find(|p| usize::from(*p) < inner.total)
                    .unwrap_or(68),
            );
        }
        let grow = if inner.fragment { 28 } else { 20 };
        nword = (mtu4 + grow)
            .min(u32::from(mtus.ipv6))
            .min(u32::from(mtus.ipv4) + grow)
            .max(ipv6::MIN_MTU as u32);
    }
    let max = ICMPV6_ERROR_MAX - ipv6::HEADER_LEN;
    if matches!(nt, icmpv6::DEST_UNREACHABLE | icmpv6::TIME_EXCEEDED) {
        nword |= u32::from(put_extension(buf, l4, &ext, 8, max)?) << 24;
    }
    let msg = error_header(buf, l4, max, nt, ncode, nword);
    icmpv6::fill_checksum(&t.outer.src, &t.outer.dst, msg);
    Ok(())
}

/// Largest ICMP extension (RFC 4884) carried over: what follows the original datagram
/// in a message that fits a 1500-byte packet.
const EXT_MAX: usize = 1500;
/// The original datagram field of an error with an extension is at least this long.
const EXT_ORIGINAL_MIN: usize = 128;

/// An ICMP extension (RFC 4884) taken off an error while its original datagram is
/// translated, kept on the stack (no allocation).
struct Extension {
    bytes: [u8; EXT_MAX],
    len: usize,
}

/// Takes the extension off the ICMP error at `l4` whose original datagram field is
/// `orig` bytes (0: none), leaving the message to the end of that field. A length
/// that does not fit the message means no extension (RFC 4884 5.5: the message is
/// then taken as one without).
fn take_extension<B: PacketBuf>(buf: &mut B, l4: usize, orig: usize) -> Extension {
    let mut e = Extension {
        bytes: [0; EXT_MAX],
        len: 0,
    };
    let at = l4 + icmp::HEADER_LEN + orig;
    if orig == 0 || at >= buf.len() || buf.len() - at > EXT_MAX {
        return e;
    }
    e.len = buf.len() - at;
    e.bytes[..e.len].copy_from_slice(&buf.data()[at..]);
    buf.trim(e.len);
    e
}

/// Puts `ext` back after the translated original datagram of the error at `l4`: the
/// datagram zero-padded to a multiple of `unit` bytes and at least 128 (RFC 4884),
/// the extension after it, the message cut to `max` bytes (RFC 7915 4.2: an extension
/// that does not fit is cut). Returns the length attribute (the padded datagram in
/// `unit`s), 0 when there is no extension or no room for any of it.
fn put_extension<B: PacketBuf>(
    buf: &mut B,
    l4: usize,
    ext: &Extension,
    unit: usize,
    max: usize,
) -> Result<u8, Refused> {
    if ext.len == 0 {
        return Ok(0);
    }
    let orig = buf.len() - l4 - icmp::HEADER_LEN;
    let padded = orig.max(EXT_ORIGINAL_MIN).div_ceil(unit) * unit;
    if icmp::HEADER_LEN + padded >= max || padded / unit > usize::from(u8::MAX) {
        return Ok(0);
    }
    let room = (max - icmp::HEADER_LEN - padded).min(ext.len);
    let end = buf.len();
    if !buf.append(padded - orig + room) {
        return Err(Refused::NoRoom);
    }
    let d = buf.data_mut();
    d[end..end + padded - orig].fill(0);
    d[end + padded - orig..].copy_from_slice(&ext.bytes[..room]);
    Ok((padded / unit) as u8)
}

/// Cuts the translated ICMP error at `l4` to `max` bytes and writes its type, code and
/// word; returns the message for its checksum.
fn error_header<B: PacketBuf>(
    buf: &mut B,
    l4: usize,
    max: usize,
    ty: u8,
    code: u8,
    word: u32,
) -> &mut [u8] {
    if buf.len() - l4 > max {
        buf.trim(buf.len() - l4 - max);
    }
    let msg = &mut buf.data_mut()[l4..];
    msg[0] = ty;
    msg[1] = code;
    put32(msg, 4, word);
    msg
}

/// What the embedded packet of an ICMP error was.
struct Inner {
    /// Its total length (IPv4) or 40 + payload length (IPv6) as its header said.
    total: usize,
    /// It was a fragment.
    fragment: bool,
}

/// Translates the IPv4 packet embedded at `at` (to the end of the buffer, possibly
/// truncated) to IPv6: like a packet, without decrementing its TTL (RFC 7915 4.3).
fn inner_4to6<B: PacketBuf>(buf: &mut B, at: usize, s: &Side6) -> Result<Inner, Refused> {
    let h = {
        let b = &buf.data()[at..];
        if b.len() < ipv4::MIN_HEADER_LEN {
            return Err(Refused::Truncated);
        }
        let hl = usize::from(b[0] & 0x0f) * 4;
        if b[0] >> 4 != 4 || hl < ipv4::MIN_HEADER_LEN {
            return Err(Refused::Malformed);
        }
        if hl > b.len() {
            return Err(Refused::Truncated);
        }
        V4::read(b)
    };
    let nh = if h.proto == ipv4::PROTO_ICMP {
        ipv6::NH_ICMPV6
    } else {
        h.proto
    };
    if h.offset == 0 {
        let old_addrs = sum4(h.src) + sum4(h.dst);
        let new_addrs = checksum::add(checksum::sum(&s.src), checksum::sum(&s.dst));
        let len = h.total.saturating_sub(h.hl) as u32;
        let pseudo6 = ipv6::pseudo_header(&s.src, &s.dst, ipv6::NH_ICMPV6, len);
        let seg = &mut buf.data_mut()[at + h.hl..];
        embedded_l4(
            seg,
            h.proto,
            Dir::To6,
            (old_addrs, new_addrs),
            pseudo6,
            s.ports,
        )?;
    }
    let fh = h.fragment();
    let hlen6 = ipv6::HEADER_LEN + if fh { ipv6::FRAG_HEADER_LEN } else { 0 };
    resize_at(buf, at, h.hl, hlen6)?;
    let plen = h.total.saturating_sub(h.hl) + hlen6 - ipv6::HEADER_LEN;
    h.emit_v6(&mut buf.data_mut()[at..], fh, nh, plen, h.ttl, s);
    Ok(Inner {
        total: h.total,
        fragment: fh,
    })
}

/// Translates the IPv6 packet at `l3` of `buf` to IPv4 (RFC 7915 section 5).
pub fn to_ipv4<B: PacketBuf>(buf: &mut B, l3: usize, t: &To4, mtus: &Mtus) -> Result<(), Refused> {
    let h = {
        let d = buf.data();
        if d.len() < l3 {
            return Err(Refused::Truncated);
        }
        let p = ipv6::Packet::new_checked(&d[l3..])?;
        let end = ipv6::HEADER_LEN + p.payload_len();
        V6::read(&d[l3..], end)?
    };
    if h.hop <= 1 {
        return Err(Refused::HopLimit);
    }
    let end = l3 + ipv6::HEADER_LEN + h.plen;
    let l4 = l3 + h.hlen;
    // Refusals for size first, the packet untouched (see to_ipv6); an ICMPv6 error is
    // cut to 576 bytes.
    let icmp_error = h.nh == ipv6::NH_ICMPV6
        && end > l4
        && buf.data().get(l4).is_some_and(|t| icmpv6::is_error(*t));
    if !icmp_error && ipv4::MIN_HEADER_LEN + end - l4 > usize::from(mtus.ipv4) {
        let grow = if h.frag.is_some() { 28 } else { 20 };
        return Err(Refused::TooBig {
            mtu: mtus.ipv4 + grow,
        });
    }
    buf.set_len(end);
    let old_addrs = checksum::add(checksum::sum(&h.src), checksum::sum(&h.dst));
    let new_addrs = sum4(t.outer.src) + sum4(t.outer.dst);
    let mut proto = h.nh;
    if h.nh == ipv6::NH_ICMPV6 {
        if h.fragment() {
            return Err(Refused::FragmentedIcmp);
        }
        icmp6_to_4(buf, l4, t, mtus, &h)?;
        proto = ipv4::PROTO_ICMP;
    } else if h.first() {
        let seg = &mut buf.data_mut()[l4..];
        match h.nh {
            ipv6::NH_TCP if seg.len() < 20 => return Err(Refused::Truncated),
            ipv6::NH_UDP if seg.len() < 8 => return Err(Refused::Truncated),
            ipv6::NH_TCP | ipv6::NH_UDP => {
                rewrite_tcp_udp(seg, h.nh, old_addrs, new_addrs, t.outer.ports)
            }
            _ => {}
        }
    }
    let total = ipv4::MIN_HEADER_LEN + buf.len() - l4;
    let (ident, flags_frag) = v4_ident_flags(h.frag, total, t.ident);
    resize_front(buf, l3, ipv4::MIN_HEADER_LEN as isize - h.hlen as isize)?;
    write_v4(
        &mut buf.data_mut()[l3..],
        h.tc,
        total as u16,
        ident,
        flags_frag,
        h.hop - 1,
        proto,
        t.outer.src,
        t.outer.dst,
    );
    set_ethertype(buf, l3, ETHERTYPE_IPV4);
    Ok(())
}

/// Translates the ICMPv6 message at `l4` (the rest of the buffer) to ICMPv4.
fn icmp6_to_4<B: PacketBuf>(
    buf: &mut B,
    l4: usize,
    t: &To4,
    mtus: &Mtus,
    h: &V6,
) -> Result<(), Refused> {
    let (ty, code, word) = {
        let m = icmp::Message::new_checked(&buf.data()[l4..])?;
        (m.msg_type(), m.code(), m.word())
    };
    let len = buf.len() - l4;
    let pseudo6 = ipv6::pseudo_header(&h.src, &h.dst, ipv6::NH_ICMPV6, len as u32);
    if echo(buf, l4, ty, Dir::To4, pseudo6, t.outer.ports) {
        return Ok(());
    }
    if !icmpv6::is_error(ty) {
        return Err(Refused::IcmpUntranslatable);
    }
    if !icmpv6::checksum_ok(&h.src, &h.dst, &buf.data()[l4..]) {
        return Err(Refused::Checksum);
    }
    let (nt, ncode, mut nword) = map_error_6to4(ty, code, word)?;
    // RFC 4884: ICMPv6 destination unreachable and time exceeded give the original
    // datagram's length (64-bit words) in byte 4, an extension after it.
    let words = if matches!(ty, icmpv6::DEST_UNREACHABLE | icmpv6::TIME_EXCEEDED) {
        usize::from((word >> 24) as u8) * 8
    } else {
        0
    };
    let ext = take_extension(buf, l4, words);
    let inner = inner_6to4(buf, l4 + icmp::HEADER_LEN, &t.inner)?;
    if ty == icmpv6::PACKET_TOO_BIG {
        let shrink = if inner.fragment { 28 } else { 20 };
        let mtu = nword
            .saturating_sub(shrink)
            .min(u32::from(mtus.ipv4))
            .min(u32::from(mtus.ipv6).saturating_sub(shrink))
            .max(68);
        nword = mtu & 0xffff;
    }
    let max = ICMPV4_ERROR_MAX - ipv4::MIN_HEADER_LEN;
    if matches!(
        nt,
        icmp::DEST_UNREACHABLE | icmp::TIME_EXCEEDED | icmp::PARAMETER_PROBLEM
    ) {
        nword |= u32::from(put_extension(buf, l4, &ext, 4, max)?) << 16;
    }
    let msg = error_header(buf, l4, max, nt, ncode, nword);
    icmp::Message::new_unchecked(msg).fill_checksum();
    Ok(())
}

/// Translates the IPv6 packet embedded at `at` (to the end of the buffer, possibly
/// truncated) to IPv4, without decrementing its hop limit (RFC 7915 5.3).
fn inner_6to4<B: PacketBuf>(buf: &mut B, at: usize, s: &Side4) -> Result<Inner, Refused> {
    let h = {
        let b = &buf.data()[at..];
        if b.len() < ipv6::HEADER_LEN {
            return Err(Refused::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(Refused::Malformed);
        }
        V6::read(b, b.len())?
    };
    let proto = if h.nh == ipv6::NH_ICMPV6 {
        ipv4::PROTO_ICMP
    } else {
        h.nh
    };
    let l4_len = (ipv6::HEADER_LEN + h.plen).saturating_sub(h.hlen);
    if h.first() {
        let old_addrs = checksum::add(checksum::sum(&h.src), checksum::sum(&h.dst));
        let new_addrs = sum4(s.src) + sum4(s.dst);
        let pseudo6 = ipv6::pseudo_header(&h.src, &h.dst, ipv6::NH_ICMPV6, l4_len as u32);
        let seg = &mut buf.data_mut()[at + h.hlen..];
        embedded_l4(
            seg,
            h.nh,
            Dir::To4,
            (old_addrs, new_addrs),
            pseudo6,
            s.ports,
        )?;
    }
    let total = ipv4::MIN_HEADER_LEN + l4_len;
    let (ident, flags_frag) = v4_ident_flags(h.frag, total, 0);
    resize_at(buf, at, h.hlen, ipv4::MIN_HEADER_LEN)?;
    write_v4(
        &mut buf.data_mut()[at..],
        h.tc,
        total as u16,
        ident,
        flags_frag,
        h.hop,
        proto,
        s.src,
        s.dst,
    );
    Ok(Inner {
        total: ipv6::HEADER_LEN + h.plen,
        fragment: h.frag.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_maps_follow_the_rfc_figures() {
        assert_eq!(pointer_4to6(0), Some(0));
        assert_eq!(pointer_4to6(3), Some(4));
        assert_eq!(pointer_4to6(8), Some(7));
        assert_eq!(pointer_4to6(9), Some(6));
        assert_eq!(pointer_4to6(14), Some(8));
        assert_eq!(pointer_4to6(19), Some(24));
        assert_eq!(pointer_4to6(4), None);
        assert_eq!(pointer_4to6(10), None);
        assert_eq!(pointer_6to4(5), Some(2));
        assert_eq!(pointer_6to4(6), Some(9));
        assert_eq!(pointer_6to4(7), Some(8));
        assert_eq!(pointer_6to4(23), Some(12));
        assert_eq!(pointer_6to4(39), Some(16));
        assert_eq!(pointer_6to4(2), None);
        assert_eq!(pointer_6to4(40), None);
    }

    #[test]
    fn source_route_options_only_when_unexpired() {
        // LSRR with pointer past the length (expired), then NOP, EOL.
        assert_eq!(
            source_route(&[131, 11, 12, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            Ok(false)
        );
        // SSRR with pointer 4: addresses left.
        assert_eq!(source_route(&[137, 7, 4, 1, 2, 3, 4, 0]), Ok(true));
        assert_eq!(source_route(&[7, 1]), Err(Refused::Malformed));
    }
}
