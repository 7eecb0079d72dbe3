//! Ethernet + IPv4 (and IPv6) frames for tests: builders (on etherparse) and checkers (our own
//! parsing and one's complement checksums, so that a checksum bug shared with etherparse
//! cannot hide one in the NAT).
//!
//! ```
//! use cgnat_testkit::packet::{self, Frame, TcpFlags};
//! let f = packet::udp("100.64.0.2:5000".parse().unwrap(), "192.0.2.10:53".parse().unwrap(), b"q");
//! assert!(packet::checksums_ok(&f));
//! let p = packet::parse(&f).unwrap();
//! assert_eq!((p.protocol, p.sport(), p.dport()), (17, Some(5000), Some(53)));
//! let syn = Frame::new().ttl(1).df(true).tcp(
//!     "100.64.0.2:40000".parse().unwrap(),
//!     "192.0.2.10:80".parse().unwrap(),
//!     1, 0, TcpFlags::SYN, &[],
//! );
//! assert_eq!(packet::parse(&syn).unwrap().ttl, 1);
//! ```

use etherparse::{IpHeaders, IpNumber, Ipv4Header, Ipv6Header, PacketBuilder, TcpHeader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// A MAC address.
pub type Mac = [u8; 6];

/// Source MAC of frames built with the defaults.
pub const DEFAULT_SRC_MAC: Mac = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
/// Destination MAC of frames built with the defaults: the address DPDK's net_pcap gives
/// its first port (02:70:63:61:70:00, "pcap"), i.e. the NAT in pcap mode.
pub const DEFAULT_DST_MAC: Mac = [0x02, 0x70, 0x63, 0x61, 0x70, 0x00];
/// Time to live of frames built with the defaults.
pub const DEFAULT_TTL: u8 = 64;
/// TCP window of the segments built here.
pub const TCP_WINDOW: u16 = 64240;

/// IP protocol number of ICMP.
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_VLAN: u16 = 0x8100;

/// TCP flags of a segment to build, or of one parsed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags {
    /// SYN.
    pub syn: bool,
    /// ACK.
    pub ack: bool,
    /// FIN.
    pub fin: bool,
    /// RST.
    pub rst: bool,
    /// PSH.
    pub psh: bool,
}

impl TcpFlags {
    /// SYN alone (a connection's first segment).
    pub const SYN: TcpFlags = TcpFlags {
        syn: true,
        ack: false,
        fin: false,
        rst: false,
        psh: false,
    };
    /// SYN and ACK.
    pub const SYN_ACK: TcpFlags = TcpFlags {
        syn: true,
        ack: true,
        ..TcpFlags::NONE
    };
    /// ACK alone.
    pub const ACK: TcpFlags = TcpFlags {
        ack: true,
        ..TcpFlags::NONE
    };
    /// PSH and ACK (a segment with data).
    pub const PSH_ACK: TcpFlags = TcpFlags {
        psh: true,
        ack: true,
        ..TcpFlags::NONE
    };
    /// FIN and ACK.
    pub const FIN_ACK: TcpFlags = TcpFlags {
        fin: true,
        ack: true,
        ..TcpFlags::NONE
    };
    /// RST alone.
    pub const RST: TcpFlags = TcpFlags {
        rst: true,
        ..TcpFlags::NONE
    };
    /// No flag at all.
    pub const NONE: TcpFlags = TcpFlags {
        syn: false,
        ack: false,
        fin: false,
        rst: false,
        psh: false,
    };

    /// The flags of a TCP header's flag byte (byte 13); URG, ECE and CWR are ignored.
    pub fn from_byte(b: u8) -> TcpFlags {
        TcpFlags {
            fin: b & 0x01 != 0,
            syn: b & 0x02 != 0,
            rst: b & 0x04 != 0,
            psh: b & 0x08 != 0,
            ack: b & 0x10 != 0,
        }
    }

    /// The flag byte (byte 13 of a TCP header) with these flags.
    pub fn to_byte(self) -> u8 {
        u8::from(self.fin)
            | u8::from(self.syn) << 1
            | u8::from(self.rst) << 2
            | u8::from(self.psh) << 3
            | u8::from(self.ack) << 4
    }
}

/// The frame a `PacketBuilderStep` (of any header: etherparse has no trait for them)
/// writes with `payload`.
macro_rules! built {
    ($step:expr, $payload:expr) => {{
        let b = $step;
        let mut out = Vec::with_capacity(b.size($payload.len()));
        b.write(&mut out, $payload)
            .expect("payload fits an IP packet");
        out
    }};
}

/// Builds Ethernet + IPv4 (or IPv6: `udp6`, `tcp6`, `icmp6_echo`) frames with settable
/// link and IP header fields. Every setter
/// returns the builder, so `Frame::new().ttl(1).df(true).udp(..)` reads as it builds.
///
/// The builders panic if the payload does not fit in one IPv4 packet (65,535 bytes in
/// all): that is a bug in the test that asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Source MAC (default [`DEFAULT_SRC_MAC`]).
    pub src_mac: Mac,
    /// Destination MAC (default [`DEFAULT_DST_MAC`]).
    pub dst_mac: Mac,
    /// IPv4 time to live (default 64).
    pub ttl: u8,
    /// IPv4 identification (default 0).
    pub ident: u16,
    /// IPv4 don't-fragment flag (default off).
    pub df: bool,
}

impl Default for Frame {
    fn default() -> Self {
        Frame {
            src_mac: DEFAULT_SRC_MAC,
            dst_mac: DEFAULT_DST_MAC,
            ttl: DEFAULT_TTL,
            ident: 0,
            df: false,
        }
    }
}

impl Frame {
    /// A builder with the defaults.
    pub fn new() -> Self {
        Frame::default()
    }

    /// Sets the source MAC.
    pub fn src_mac(mut self, mac: Mac) -> Self {
        self.src_mac = mac;
        self
    }

    /// Sets the destination MAC.
    pub fn dst_mac(mut self, mac: Mac) -> Self {
        self.dst_mac = mac;
        self
    }

    /// Sets the time to live.
    pub fn ttl(mut self, ttl: u8) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the IPv4 identification.
    pub fn ident(mut self, ident: u16) -> Self {
        self.ident = ident;
        self
    }

    /// Sets or clears the don't-fragment flag.
    pub fn df(mut self, df: bool) -> Self {
        self.df = df;
        self
    }

    fn ip(&self, src: IpAddr, dst: IpAddr) -> etherparse::PacketBuilderStep<IpHeaders> {
        // Length, protocol and checksum are filled in when the frame is written.
        let ip = match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let mut ip =
                    Ipv4Header::new(0, self.ttl, IpNumber::UDP, src.octets(), dst.octets())
                        .expect("an empty payload fits");
                ip.identification = self.ident;
                ip.dont_fragment = self.df;
                IpHeaders::Ipv4(ip, Default::default())
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                // The time to live is the hop limit; identification and DF are IPv4's.
                let ip = Ipv6Header {
                    hop_limit: self.ttl,
                    source: src.octets(),
                    destination: dst.octets(),
                    ..Default::default()
                };
                IpHeaders::Ipv6(ip, Default::default())
            }
            _ => panic!("{src} to {dst}: one address family, please"),
        };
        PacketBuilder::ethernet2(self.src_mac, self.dst_mac).ip(ip)
    }

    /// A UDP datagram (with its checksum).
    pub fn udp(&self, src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
        self.udp_any(src.into(), dst.into(), payload)
    }

    /// A UDP datagram over IPv6 (with its checksum; the hop limit is [`Frame::ttl`]).
    pub fn udp6(&self, src: SocketAddrV6, dst: SocketAddrV6, payload: &[u8]) -> Vec<u8> {
        self.udp_any(src.into(), dst.into(), payload)
    }

    fn udp_any(&self, src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
        built!(
            self.ip(src.ip(), dst.ip()).udp(src.port(), dst.port()),
            payload
        )
    }

    /// A TCP segment without options, window [`TCP_WINDOW`]. `ack` is written as given,
    /// whether or not `flags.ack` is set.
    pub fn tcp(
        &self,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        payload: &[u8],
    ) -> Vec<u8> {
        self.tcp_any(src.into(), dst.into(), (seq, ack), flags, payload)
    }

    /// A TCP segment over IPv6, as [`Frame::tcp`] builds one over IPv4.
    pub fn tcp6(
        &self,
        src: SocketAddrV6,
        dst: SocketAddrV6,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        payload: &[u8],
    ) -> Vec<u8> {
        self.tcp_any(src.into(), dst.into(), (seq, ack), flags, payload)
    }

    fn tcp_any(
        &self,
        src: SocketAddr,
        dst: SocketAddr,
        (seq, ack): (u32, u32),
        flags: TcpFlags,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut h = TcpHeader::new(src.port(), dst.port(), seq, TCP_WINDOW);
        h.acknowledgment_number = ack;
        h.syn = flags.syn;
        h.ack = flags.ack;
        h.fin = flags.fin;
        h.rst = flags.rst;
        h.psh = flags.psh;
        built!(self.ip(src.ip(), dst.ip()).tcp_header(h), payload)
    }

    /// An ICMP echo request (or reply, if `reply`).
    pub fn icmp_echo(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        id: u16,
        seq: u16,
        reply: bool,
        payload: &[u8],
    ) -> Vec<u8> {
        self.echo(src.into(), dst.into(), (id, seq), reply, payload)
    }

    /// An ICMPv6 echo request (type 128; or reply, 129, if `reply`).
    pub fn icmp6_echo(
        &self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        id: u16,
        seq: u16,
        reply: bool,
        payload: &[u8],
    ) -> Vec<u8> {
        self.echo(src.into(), dst.into(), (id, seq), reply, payload)
    }

    fn echo(
        &self,
        src: IpAddr,
        dst: IpAddr,
        (id, seq): (u16, u16),
        reply: bool,
        p: &[u8],
    ) -> Vec<u8> {
        let ip = self.ip(src, dst);
        match (src.is_ipv6(), reply) {
            (false, false) => built!(ip.icmpv4_echo_request(id, seq), p),
            (false, true) => built!(ip.icmpv4_echo_reply(id, seq), p),
            (true, false) => built!(ip.icmpv6_echo_request(id, seq), p),
            (true, true) => built!(ip.icmpv6_echo_reply(id, seq), p),
        }
    }

    /// An ICMP error (type 3 destination unreachable, 11 time exceeded, 12 parameter
    /// problem, ...) carrying `embedded`, the IPv4 packet that caused it (its header and
    /// at least 8 bytes of what follows; see [`ip_packet`]). `rest` is the second word of
    /// the ICMP header (e.g. the next-hop MTU of a "fragmentation needed").
    pub fn icmp_error(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        icmp_type: u8,
        code: u8,
        rest: [u8; 4],
        embedded: &[u8],
    ) -> Vec<u8> {
        built!(
            self.ip(src.into(), dst.into())
                .icmpv4_raw(icmp_type, code, rest),
            embedded
        )
    }
}

/// A UDP datagram with the [`Frame`] defaults.
pub fn udp(src: SocketAddrV4, dst: SocketAddrV4, payload: &[u8]) -> Vec<u8> {
    Frame::default().udp(src, dst, payload)
}

/// A TCP segment with the [`Frame`] defaults (see [`Frame::tcp`]).
pub fn tcp(
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    payload: &[u8],
) -> Vec<u8> {
    Frame::default().tcp(src, dst, seq, ack, flags, payload)
}

/// An ICMP echo request or reply with the [`Frame`] defaults.
pub fn icmp_echo(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    id: u16,
    seq: u16,
    reply: bool,
    payload: &[u8],
) -> Vec<u8> {
    Frame::default().icmp_echo(src, dst, id, seq, reply, payload)
}

/// The transport layer of a parsed packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum L4 {
    /// UDP.
    Udp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
    },
    /// TCP.
    Tcp {
        /// Source port.
        sport: u16,
        /// Destination port.
        dport: u16,
        /// Sequence number.
        seq: u32,
        /// Acknowledgment number.
        ack: u32,
        /// Flags.
        flags: TcpFlags,
        /// Window.
        window: u16,
    },
    /// ICMP. `id` and `seq` are the second word of the header: identifier and sequence
    /// number for echo messages, other things for other types.
    Icmp {
        /// Type.
        icmp_type: u8,
        /// Code.
        code: u8,
        /// Identifier (bytes 4-5).
        id: u16,
        /// Sequence number (bytes 6-7).
        seq: u16,
    },
    /// Another protocol, or a fragment other than the first.
    Other,
}

/// What [`parse`] found in a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Source MAC (zero when parsed by [`parse_ipv4`]).
    pub src_mac: Mac,
    /// Destination MAC (zero when parsed by [`parse_ipv4`]).
    pub dst_mac: Mac,
    /// The 802.1Q VLAN id, if the frame had one tag.
    pub vlan: Option<u16>,
    /// IPv4 source.
    pub src: Ipv4Addr,
    /// IPv4 destination.
    pub dst: Ipv4Addr,
    /// IP protocol number.
    pub protocol: u8,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// Don't-fragment flag.
    pub df: bool,
    /// More-fragments flag.
    pub more_fragments: bool,
    /// Fragment offset, in bytes.
    pub fragment_offset: u16,
    /// IPv4 total length (bytes past it, Ethernet padding, are not part of the packet).
    pub total_len: u16,
    /// Transport header.
    pub l4: L4,
    /// What follows the transport header (the TCP or UDP payload, the ICMP body, e.g.
    /// the echo data or an error's embedded packet), or the IP payload for `L4::Other`.
    pub payload: Vec<u8>,
}

impl Parsed {
    /// Source port of TCP or UDP.
    pub fn sport(&self) -> Option<u16> {
        match self.l4 {
            L4::Udp { sport, .. } | L4::Tcp { sport, .. } => Some(sport),
            _ => None,
        }
    }

    /// Destination port of TCP or UDP.
    pub fn dport(&self) -> Option<u16> {
        match self.l4 {
            L4::Udp { dport, .. } | L4::Tcp { dport, .. } => Some(dport),
            _ => None,
        }
    }

    /// Source address and port of TCP or UDP.
    pub fn src_socket(&self) -> Option<SocketAddrV4> {
        Some(SocketAddrV4::new(self.src, self.sport()?))
    }

    /// Destination address and port of TCP or UDP.
    pub fn dst_socket(&self) -> Option<SocketAddrV4> {
        Some(SocketAddrV4::new(self.dst, self.dport()?))
    }

    /// TCP flags.
    pub fn tcp_flags(&self) -> Option<TcpFlags> {
        match self.l4 {
            L4::Tcp { flags, .. } => Some(flags),
            _ => None,
        }
    }

    /// ICMP type and code.
    pub fn icmp_type_code(&self) -> Option<(u8, u8)> {
        match self.l4 {
            L4::Icmp {
                icmp_type, code, ..
            } => Some((icmp_type, code)),
            _ => None,
        }
    }

    /// The identifier of an ICMP echo request or reply.
    pub fn icmp_echo_id(&self) -> Option<u16> {
        match self.l4 {
            L4::Icmp {
                icmp_type: 0 | 8,
                id,
                ..
            } => Some(id),
            _ => None,
        }
    }

    /// Whether this is an ICMP error message (types 3, 4, 5, 11, 12), which carries the
    /// packet that caused it.
    pub fn is_icmp_error(&self) -> bool {
        matches!(self.icmp_type_code(), Some((t, _)) if is_icmp_error_type(t))
    }

    /// The packet an ICMP error carries.
    pub fn embedded(&self) -> Option<Embedded> {
        if self.is_icmp_error() {
            parse_embedded(&self.payload)
        } else {
            None
        }
    }
}

fn is_icmp_error_type(t: u8) -> bool {
    matches!(t, 3 | 4 | 5 | 11 | 12)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn addr(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// The IPv4 packet in an Ethernet frame (untagged or with one 802.1Q tag), without the
/// link header and without Ethernet padding; `None` if it is not a well-formed IPv4
/// packet. Its `vlan` is the tag, if any.
fn ipv4_in_frame(frame: &[u8]) -> Option<(&[u8], Option<u16>)> {
    if frame.len() < 14 {
        return None;
    }
    let (ethertype, at, vlan) = match be16(frame, 12) {
        ETHERTYPE_VLAN if frame.len() >= 18 => (be16(frame, 16), 18, Some(be16(frame, 14) & 0xfff)),
        t => (t, 14, None),
    };
    if ethertype != ETHERTYPE_IPV4 {
        return None;
    }
    Some((ip_bounds(&frame[at..])?, vlan))
}

/// The IPv4 packet at the start of `b`, cut to its total length; `None` if the header
/// is malformed or the packet is longer than `b`.
fn ip_bounds(b: &[u8]) -> Option<&[u8]> {
    if b.len() < 20 || b[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(b[0] & 0x0f) * 4;
    let total = usize::from(be16(b, 2));
    if ihl < 20 || total < ihl || total > b.len() {
        return None;
    }
    Some(&b[..total])
}

/// The IPv4 packet of an Ethernet frame, without link header or padding: what an ICMP
/// error about this frame embeds (see [`Frame::icmp_error`]).
pub fn ip_packet(frame: &[u8]) -> Option<&[u8]> {
    ipv4_in_frame(frame).map(|(ip, _)| ip)
}

/// Parses an Ethernet frame carrying IPv4 (untagged, or with one 802.1Q tag). `None` if
/// it is not IPv4 or is malformed: truncated, a header length or total length that does
/// not fit, a TCP data offset or UDP length that does not fit. Checksums are not looked
/// at (see [`checksums_ok`]).
pub fn parse(frame: &[u8]) -> Option<Parsed> {
    let (ip, vlan) = ipv4_in_frame(frame)?;
    let mut p = parse_ipv4(ip)?;
    p.dst_mac.copy_from_slice(&frame[0..6]);
    p.src_mac.copy_from_slice(&frame[6..12]);
    p.vlan = vlan;
    Some(p)
}

/// Parses an IPv4 packet (no link header) as [`parse`] does; MACs are left zero.
/// Bytes past the IPv4 total length are ignored.
pub fn parse_ipv4(packet: &[u8]) -> Option<Parsed> {
    let ip = ip_bounds(packet)?;
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let frag = be16(ip, 6);
    let more_fragments = frag & 0x2000 != 0;
    let fragment_offset = (frag & 0x1fff) * 8;
    let protocol = ip[9];
    let body = &ip[ihl..];
    let (l4, payload) = if fragment_offset != 0 {
        (L4::Other, body)
    } else {
        match protocol {
            PROTO_UDP => {
                if body.len() < 8 {
                    return None;
                }
                let len = usize::from(be16(body, 4));
                // A first fragment holds only part of the datagram.
                let end = if more_fragments { body.len() } else { len };
                if len < 8 || end > body.len() {
                    return None;
                }
                let l4 = L4::Udp {
                    sport: be16(body, 0),
                    dport: be16(body, 2),
                };
                (l4, &body[8..end.max(8)])
            }
            PROTO_TCP => {
                if body.len() < 20 {
                    return None;
                }
                let off = usize::from(body[12] >> 4) * 4;
                if off < 20 || off > body.len() {
                    return None;
                }
                let l4 = L4::Tcp {
                    sport: be16(body, 0),
                    dport: be16(body, 2),
                    seq: be32(body, 4),
                    ack: be32(body, 8),
                    flags: TcpFlags::from_byte(body[13]),
                    window: be16(body, 14),
                };
                (l4, &body[off..])
            }
            PROTO_ICMP => {
                if body.len() < 8 {
                    return None;
                }
                let l4 = L4::Icmp {
                    icmp_type: body[0],
                    code: body[1],
                    id: be16(body, 4),
                    seq: be16(body, 6),
                };
                (l4, &body[8..])
            }
            _ => (L4::Other, body),
        }
    };
    Some(Parsed {
        src_mac: [0; 6],
        dst_mac: [0; 6],
        vlan: None,
        src: addr(ip, 12),
        dst: addr(ip, 16),
        protocol,
        ttl: ip[8],
        ident: be16(ip, 4),
        df: frag & 0x4000 != 0,
        more_fragments,
        fragment_offset,
        total_len: be16(ip, 2),
        l4,
        payload: payload.to_vec(),
    })
}

/// The packet embedded in an ICMP error: its IPv4 header and the start of its transport
/// header (usually only 8 bytes of it are there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Embedded {
    /// Source of the packet that caused the error (the host that sent it).
    pub src: Ipv4Addr,
    /// Its destination.
    pub dst: Ipv4Addr,
    /// Its protocol.
    pub protocol: u8,
    /// Its time to live.
    pub ttl: u8,
    /// Its total length as its header says (more than what is embedded, usually).
    pub total_len: u16,
    /// Whether its header checksum is valid.
    pub header_checksum_ok: bool,
    /// TCP or UDP source port, if at least 4 bytes of the transport header are there.
    pub sport: Option<u16>,
    /// TCP or UDP destination port.
    pub dport: Option<u16>,
    /// ICMP type, code and identifier (bytes 4-5), if the packet was ICMP and 6 bytes of
    /// its header are there.
    pub icmp: Option<(u8, u8, u16)>,
}

/// Parses the packet embedded in an ICMP error's body (what follows the 8-byte ICMP
/// header). `None` if not even its IPv4 header is there.
pub fn parse_embedded(body: &[u8]) -> Option<Embedded> {
    if body.len() < 20 || body[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(body[0] & 0x0f) * 4;
    if ihl < 20 || ihl > body.len() {
        return None;
    }
    let header = &body[..ihl];
    let l4 = &body[ihl..];
    let protocol = header[9];
    let ports = matches!(protocol, PROTO_TCP | PROTO_UDP) && l4.len() >= 4;
    Some(Embedded {
        src: addr(header, 12),
        dst: addr(header, 16),
        protocol,
        ttl: header[8],
        total_len: be16(header, 2),
        header_checksum_ok: fold(sum(header, 0)) == 0xffff,
        sport: ports.then(|| be16(l4, 0)),
        dport: ports.then(|| be16(l4, 2)),
        icmp: (protocol == PROTO_ICMP && l4.len() >= 6).then(|| (l4[0], l4[1], be16(l4, 4))),
    })
}

/// Adds `data` as big-endian 16-bit words (an odd last byte padded with zero) to `acc`.
fn sum(data: &[u8], mut acc: u64) -> u64 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds the carries of a sum back into 16 bits (one's complement addition).
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The Internet checksum (RFC 1071) of `data`: the one's complement of the one's
/// complement sum of its 16-bit words. Over a header whose checksum field is zero it
/// gives the value to put there; over a whole valid header it gives 0.
pub fn internet_checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// The sum of the IPv4 pseudo-header of a TCP or UDP checksum.
fn pseudo(ip: &[u8], protocol: u8, len: usize) -> u64 {
    let acc = sum(&ip[12..20], 0);
    acc + u64::from(protocol) + len as u64
}

/// Checks a checksummed region: `Ok` if its sum (with `extra`, e.g. the pseudo-header)
/// is all ones, else an error naming `what`, the value found at `field` and the value
/// that would have been right.
fn verify(what: &str, data: &[u8], field: usize, extra: u64) -> Result<(), String> {
    if fold(sum(data, extra)) == 0xffff {
        return Ok(());
    }
    let mut zeroed = data.to_vec();
    zeroed[field] = 0;
    zeroed[field + 1] = 0;
    Err(format!(
        "{what} checksum {:#06x}, should be {:#06x}",
        be16(data, field),
        !fold(sum(&zeroed, extra))
    ))
}

/// Verifies the checksums of an Ethernet + IPv4 frame, saying which one is wrong: the
/// IPv4 header checksum; the TCP or UDP checksum over the pseudo-header (a UDP checksum
/// of 0, "none", is accepted); the ICMP checksum over the whole message, and for an ICMP
/// error, the header checksum of the embedded packet (which must be there in full).
/// A fragment has only its IP header checked, and another protocol only the IP header.
pub fn check_checksums(frame: &[u8]) -> Result<(), String> {
    let (ip, _) = ipv4_in_frame(frame).ok_or("not a well-formed IPv4 frame")?;
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    verify("IPv4 header", &ip[..ihl], 10, 0)?;
    if be16(ip, 6) & 0x3fff != 0 {
        return Ok(()); // a fragment: its transport checksum covers the whole datagram
    }
    let body = &ip[ihl..];
    match ip[9] {
        PROTO_TCP => {
            if body.len() < 20 {
                return Err(format!("TCP segment of {} bytes", body.len()));
            }
            verify("TCP", body, 16, pseudo(ip, PROTO_TCP, body.len()))
        }
        PROTO_UDP => {
            if body.len() < 8 {
                return Err(format!("UDP datagram of {} bytes", body.len()));
            }
            let len = usize::from(be16(body, 4));
            if len < 8 || len > body.len() {
                return Err(format!(
                    "UDP length {len}, IP payload of {} bytes",
                    body.len()
                ));
            }
            if be16(body, 6) == 0 {
                return Ok(());
            }
            verify("UDP", &body[..len], 6, pseudo(ip, PROTO_UDP, len))
        }
        PROTO_ICMP => {
            if body.len() < 8 {
                return Err(format!("ICMP message of {} bytes", body.len()));
            }
            verify("ICMP", body, 2, 0)?;
            if is_icmp_error_type(body[0]) {
                let inner = &body[8..];
                let inner_ihl = inner.first().map_or(0, |b| usize::from(b & 0x0f) * 4);
                if inner.len() < 20 || inner_ihl < 20 || inner_ihl > inner.len() {
                    return Err(format!(
                        "ICMP error embeds {} bytes, not a whole IPv4 header",
                        inner.len()
                    ));
                }
                verify("embedded IPv4 header", &inner[..inner_ihl], 10, 0)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether every checksum of an Ethernet + IPv4 frame is valid (see
/// [`check_checksums`]); false for a frame that is not well-formed IPv4.
pub fn checksums_ok(frame: &[u8]) -> bool {
    check_checksums(frame).is_ok()
}

/// IP protocol number (next header) of ICMPv6.
pub const PROTO_ICMPV6: u8 = 58;
const ETHERTYPE_IPV6: u16 = 0x86dd;

/// The IPv6 packet of an untagged Ethernet frame, cut to its payload length (Ethernet
/// padding left out); `None` if it is not a well-formed IPv6 packet.
pub fn ipv6_packet(frame: &[u8]) -> Option<&[u8]> {
    if frame.len() < 14 + 40 || be16(frame, 12) != ETHERTYPE_IPV6 || frame[14] >> 4 != 6 {
        return None;
    }
    let ip = &frame[14..];
    let end = 40 + usize::from(be16(ip, 4));
    (end <= ip.len()).then(|| &ip[..end])
}

/// Verifies the transport checksum of an Ethernet + IPv6 frame whose upper layer
/// follows the fixed header: TCP, UDP (where 0, "none", is refused, RFC 8200 8.1) or
/// ICMPv6, each over the IPv6 pseudo-header (RFC 8200 8.1); another next header is
/// not looked at. Our own sums, as [`check_checksums`] does for IPv4.
pub fn check_checksums6(frame: &[u8]) -> Result<(), String> {
    let ip = ipv6_packet(frame).ok_or("not a well-formed IPv6 frame")?;
    let body = &ip[40..];
    let (what, field, min) = match ip[6] {
        PROTO_TCP => ("TCP", 16, 20),
        PROTO_UDP => ("UDP", 6, 8),
        PROTO_ICMPV6 => ("ICMPv6", 2, 8),
        _ => return Ok(()),
    };
    if body.len() < min {
        return Err(format!("{what} message of {} bytes", body.len()));
    }
    if ip[6] == PROTO_UDP {
        if usize::from(be16(body, 4)) != body.len() {
            return Err(format!(
                "UDP length {}, IPv6 payload of {} bytes",
                be16(body, 4),
                body.len()
            ));
        }
        if be16(body, 6) == 0 {
            return Err("UDP checksum 0, which IPv6 does not allow".into());
        }
    }
    let pseudo = sum(&ip[8..40], 0) + body.len() as u64 + u64::from(ip[6]);
    verify(what, body, field, pseudo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddrV4 {
        s.parse().unwrap()
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The first frame of tests/captures/tftp-rrq.pcap (tcpdump's tests/tftp.pcap):
    /// a TFTP read request for "file1" in octet mode, 192.168.1.2:44935 to
    /// 192.168.1.1:69, with 4 bytes of Ethernet padding.
    ///
    /// IPv4 header checksum by hand: 4500 + 002a + ddb1 + 4000 + 4011 + c0a8 + 0102 +
    /// c0a8 + 0101 = 0x3263f, folded 0x2642, complemented 0xd9bd.
    /// UDP checksum: pseudo-header c0a8 + 0102 + c0a8 + 0101 + 0011 + 0016 = 0x1837a;
    /// datagram af87 + 0045 + 0016 + 0001 + 6669 + 6c65 + 3100 + 6f63 + 7465 + 7400 =
    /// 0x30b79; total 0x48ef3, folded 0x8ef7, complemented 0x7108.
    const TFTP_RRQ: &str = "000c29782553 000c29f38f18 0800
        4500 002a ddb1 4000 4011 d9bd c0a80102 c0a80101
        af87 0045 0016 7108
        0001 66696c6531 00 6f63746574 00
        00000000";

    #[test]
    fn real_tftp_frame_checksums_by_hand() {
        let f = hex(TFTP_RRQ);
        assert_eq!(f.len(), 60);
        // The same bytes as in the real capture.
        let packets = crate::pcap::read_packets(crate::capture("tftp-rrq.pcap")).unwrap();
        assert_eq!(packets[0].data, f);
        for p in &packets {
            check_checksums(&p.data).unwrap();
        }
        let mut header = f[14..34].to_vec();
        assert_eq!(internet_checksum(&header), 0);
        header[10] = 0;
        header[11] = 0;
        assert_eq!(internet_checksum(&header), 0xd9bd);
        let mut pseudo_and_udp = hex("c0a80102 c0a80101 0011 0016");
        pseudo_and_udp.extend_from_slice(&f[34..56]);
        assert_eq!(internet_checksum(&pseudo_and_udp), 0);
        pseudo_and_udp[18] = 0;
        pseudo_and_udp[19] = 0;
        assert_eq!(internet_checksum(&pseudo_and_udp), 0x7108);

        assert!(checksums_ok(&f));
        // The padding is not part of the datagram.
        let mut g = f.clone();
        g[59] = 0xaa;
        assert!(checksums_ok(&g));
        // One flipped bit anywhere in the IP header or the datagram is caught.
        for i in 14..56 {
            let mut g = f.clone();
            g[i] ^= 0x04;
            assert!(!checksums_ok(&g), "byte {i}");
        }
        let mut g = f.clone();
        g[50] ^= 1; // "octet" to "nctet": the word 0x6f63 drops by 0x100, the sum too
        assert_eq!(
            check_checksums(&g).unwrap_err(),
            "UDP checksum 0x7108, should be 0x7208"
        );
        let mut g = f.clone();
        g[22] = 63; // TTL 64 to 63: the word 0x4011 drops by 0x100
        assert_eq!(
            check_checksums(&g).unwrap_err(),
            "IPv4 header checksum 0xd9bd, should be 0xdabd"
        );
        // Checksum "none" is valid for UDP.
        let mut g = f.clone();
        g[40] = 0;
        g[41] = 0;
        assert!(checksums_ok(&g));
    }

    #[test]
    fn real_tftp_frame_parses() {
        let p = parse(&hex(TFTP_RRQ)).unwrap();
        assert_eq!(p.dst_mac, [0x00, 0x0c, 0x29, 0x78, 0x25, 0x53]);
        assert_eq!(p.src_mac, [0x00, 0x0c, 0x29, 0xf3, 0x8f, 0x18]);
        assert_eq!(p.src_socket(), Some(sa("192.168.1.2:44935")));
        assert_eq!(p.dst_socket(), Some(sa("192.168.1.1:69")));
        assert_eq!((p.protocol, p.ttl, p.ident, p.df), (17, 64, 0xddb1, true));
        assert_eq!(
            (p.more_fragments, p.fragment_offset, p.total_len),
            (false, 0, 42)
        );
        assert_eq!(p.payload, b"\x00\x01file1\x00octet\x00");
        assert_eq!(p.vlan, None);
    }

    #[test]
    fn built_frames_parse_back_with_valid_checksums() {
        let c = sa("100.64.1.2:40000");
        let s = sa("192.0.2.10:443");
        let f = udp(c, s, b"hello");
        check_checksums(&f).unwrap();
        let p = parse(&f).unwrap();
        assert_eq!(
            p.l4,
            L4::Udp {
                sport: 40000,
                dport: 443
            }
        );
        assert_eq!(p.payload, b"hello");
        assert_eq!(p.src_mac, DEFAULT_SRC_MAC);
        assert_eq!(p.dst_mac, DEFAULT_DST_MAC);
        assert_eq!((p.ttl, p.ident, p.df), (DEFAULT_TTL, 0, false));

        let f = tcp(c, s, 1000, 0, TcpFlags::SYN, &[]);
        check_checksums(&f).unwrap();
        let p = parse(&f).unwrap();
        assert_eq!(
            p.l4,
            L4::Tcp {
                sport: 40000,
                dport: 443,
                seq: 1000,
                ack: 0,
                flags: TcpFlags::SYN,
                window: TCP_WINDOW
            }
        );
        assert!(p.payload.is_empty());
        let f = tcp(c, s, 1001, 77, TcpFlags::PSH_ACK, b"GET / HTTP/1.1\r\n\r\n");
        check_checksums(&f).unwrap();
        let p = parse(&f).unwrap();
        assert_eq!(p.tcp_flags(), Some(TcpFlags::PSH_ACK));
        assert_eq!(p.payload, b"GET / HTTP/1.1\r\n\r\n");
        // Odd lengths exercise the padded last word.
        let f = tcp(c, s, 1, 2, TcpFlags::FIN_ACK, b"odd");
        check_checksums(&f).unwrap();

        for reply in [false, true] {
            let f = icmp_echo(*c.ip(), *s.ip(), 0x1234, 7, reply, b"ping!");
            check_checksums(&f).unwrap();
            let p = parse(&f).unwrap();
            let t = if reply { 0 } else { 8 };
            assert_eq!(
                p.l4,
                L4::Icmp {
                    icmp_type: t,
                    code: 0,
                    id: 0x1234,
                    seq: 7
                }
            );
            assert_eq!(p.icmp_echo_id(), Some(0x1234));
            assert_eq!(p.payload, b"ping!");
            assert!(!p.is_icmp_error());
            assert_eq!(p.sport(), None);
        }

        let b = Frame::new()
            .src_mac([2, 1, 1, 1, 1, 1])
            .dst_mac([2, 2, 2, 2, 2, 2])
            .ttl(3)
            .ident(0xbeef)
            .df(true);
        let f = b.udp(c, s, &[0u8; 1400]);
        check_checksums(&f).unwrap();
        let p = parse(&f).unwrap();
        assert_eq!(p.src_mac, [2, 1, 1, 1, 1, 1]);
        assert_eq!(p.dst_mac, [2, 2, 2, 2, 2, 2]);
        assert_eq!((p.ttl, p.ident, p.df), (3, 0xbeef, true));
        assert_eq!(p.total_len, 1428);
    }

    #[test]
    fn icmp_errors_carry_a_checked_embedded_header() {
        let c = sa("100.64.1.2:40000");
        let s = sa("192.0.2.10:53");
        let original = udp(c, s, b"query");
        let inner = ip_packet(&original).unwrap();
        assert_eq!(inner.len(), 20 + 8 + 5);
        let router = Ipv4Addr::new(192, 0, 2, 1);
        let e = Frame::new().icmp_error(router, *c.ip(), 11, 0, [0; 4], &inner[..28]);
        check_checksums(&e).unwrap();
        let p = parse(&e).unwrap();
        assert!(p.is_icmp_error());
        assert_eq!(p.icmp_type_code(), Some((11, 0)));
        let emb = p.embedded().unwrap();
        assert_eq!((emb.src, emb.dst, emb.protocol), (*c.ip(), *s.ip(), 17));
        assert_eq!(
            (emb.sport, emb.dport, emb.icmp),
            (Some(40000), Some(53), None)
        );
        assert_eq!(emb.total_len, 33);
        assert!(emb.header_checksum_ok);

        // An embedded header with a bad checksum, under a valid ICMP checksum.
        let mut bad = inner.to_vec();
        bad[8] -= 1; // TTL, as a router would have, without fixing the checksum
        let e = Frame::new().icmp_error(router, *c.ip(), 3, 3, [0; 4], &bad);
        assert_eq!(
            check_checksums(&e).unwrap_err(),
            format!(
                "embedded IPv4 header checksum {:#06x}, should be {:#06x}",
                be16(&bad, 10),
                be16(&bad, 10) + 0x100
            )
        );
        assert!(!parse(&e).unwrap().embedded().unwrap().header_checksum_ok);
        // Too little embedded to hold a header.
        let e = Frame::new().icmp_error(router, *c.ip(), 3, 1, [0; 4], &inner[..12]);
        assert!(check_checksums(&e).is_err());
        assert!(parse(&e).unwrap().embedded().is_none());
        // An echo embedded in an error names its identifier.
        let ping = icmp_echo(*c.ip(), *s.ip(), 99, 1, false, b"x");
        let e = Frame::new().icmp_error(router, *c.ip(), 3, 1, [0; 4], ip_packet(&ping).unwrap());
        check_checksums(&e).unwrap();
        assert_eq!(
            parse(&e).unwrap().embedded().unwrap().icmp,
            Some((8, 0, 99))
        );
    }

    #[test]
    fn fragments_and_vlan_tags() {
        let f = udp(sa("100.64.1.2:1"), sa("192.0.2.10:2"), &[5u8; 100]);
        // Mark it as a first fragment and fix the header checksum only.
        let mut g = f.clone();
        g[20] |= 0x20;
        g[24] = 0;
        g[25] = 0;
        let c = internet_checksum(&g[14..34]);
        g[24..26].copy_from_slice(&c.to_be_bytes());
        g[60] ^= 0xff; // the payload: the UDP checksum is not checked on a fragment
        assert!(checksums_ok(&g));
        let p = parse(&g).unwrap();
        assert!(p.more_fragments);
        assert_eq!(p.sport(), Some(1));
        // A later fragment has no transport header.
        g[21] = 0x10;
        g[24] = 0;
        g[25] = 0;
        let c = internet_checksum(&g[14..34]);
        g[24..26].copy_from_slice(&c.to_be_bytes());
        let p = parse(&g).unwrap();
        assert_eq!(
            (p.l4, p.fragment_offset, p.payload.len()),
            (L4::Other, 128, 108)
        );
        assert!(checksums_ok(&g));

        let mut v = f[..12].to_vec();
        v.extend_from_slice(&[0x81, 0x00, 0x00, 0x2a]);
        v.extend_from_slice(&f[12..]);
        assert!(checksums_ok(&v));
        assert_eq!(parse(&v).unwrap().vlan, Some(42));
    }

    #[test]
    fn malformed_frames_are_refused_without_panicking() {
        let f = tcp(
            sa("100.64.1.2:1"),
            sa("192.0.2.10:2"),
            1,
            2,
            TcpFlags::ACK,
            b"data",
        );
        for n in 0..f.len() {
            // A cut before the end of the IPv4 total length.
            assert!(parse(&f[..n]).is_none(), "prefix {n}");
            assert!(!checksums_ok(&f[..n]), "prefix {n}");
        }
        let mut g = f.clone();
        g[12] = 0x86; // IPv6 ethertype
        g[13] = 0xdd;
        assert!(parse(&g).is_none());
        assert_eq!(
            check_checksums(&g).unwrap_err(),
            "not a well-formed IPv4 frame"
        );
        let mut g = f.clone();
        g[46] = 0xf0; // TCP data offset 60 > segment
        assert!(parse(&g).is_none());
        // Random bytes never panic.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut g = f.clone();
            let i = (x % g.len() as u64) as usize;
            g[i] = (x >> 40) as u8;
            let j = ((x >> 8) % g.len() as u64) as usize;
            g[j] = (x >> 48) as u8;
            let _ = parse(&g);
            let _ = check_checksums(&g);
            if let Some(p) = parse(&g) {
                let _ = parse_embedded(&p.payload);
            }
        }
    }

    #[test]
    fn tcp_flag_bytes() {
        for b in 0..=0x1fu8 {
            assert_eq!(TcpFlags::from_byte(b).to_byte(), b);
        }
        assert_eq!(TcpFlags::SYN.to_byte(), 0x02);
        assert_eq!(TcpFlags::SYN_ACK.to_byte(), 0x12);
        assert_eq!(TcpFlags::RST.to_byte(), 0x04);
        assert_eq!(TcpFlags::default(), TcpFlags::NONE);
    }

    /// Our checksum verdicts on every IPv4 frame of the real captures agree with
    /// Wireshark's (`tshark -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o
    /// udp.check_checksum:TRUE`): all valid, but for six TCP segments of the H.323 call
    /// (frames 48, 50, 54, 56, 58 and 65, counted from 1 as Wireshark does).
    #[test]
    fn checksum_verdicts_on_the_real_captures_match_wireshark() {
        let mut checked = 0;
        for path in crate::listed_captures() {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let bad_expected: &[usize] = if name == "h323-call.pcap" {
                &[48, 50, 54, 56, 58, 65]
            } else {
                &[]
            };
            let mut bad = vec![];
            for (i, p) in crate::pcap::read_packets(&path).unwrap().iter().enumerate() {
                let Some(f) = p.to_ethernet() else { continue };
                if parse(&f).is_none() {
                    continue;
                }
                checked += 1;
                if let Err(e) = check_checksums(&f) {
                    assert!(e.starts_with("TCP checksum"), "{name} frame {}: {e}", i + 1);
                    bad.push(i + 1);
                }
            }
            assert_eq!(bad, bad_expected, "{name}");
        }
        assert!(checked > 2000, "{checked} IPv4 frames checked");
    }

    /// IPv6 frames: what the builders write passes `check_checksums6`; a changed byte
    /// under any transport checksum, a zero UDP checksum, a wrong UDP length and a
    /// frame that is not IPv6 do not.
    #[test]
    fn ipv6_checksums_are_checked() {
        let (a, b): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8:100::1".parse().unwrap(),
            "64:ff9b::808:808".parse().unwrap(),
        );
        let f = Frame::new();
        let frames = [
            f.udp6(
                SocketAddrV6::new(a, 5000, 0, 0),
                SocketAddrV6::new(b, 53, 0, 0),
                b"12345678",
            ),
            f.tcp6(
                SocketAddrV6::new(a, 5000, 0, 0),
                SocketAddrV6::new(b, 80, 0, 0),
                7,
                0,
                TcpFlags::SYN,
                &[],
            ),
            f.icmp6_echo(a, b, 9, 1, false, b"ping"),
        ];
        for good in &frames {
            assert_eq!(check_checksums6(good), Ok(()));
            assert_eq!(ipv6_packet(good).unwrap().len(), good.len() - 14);
            // Every byte from the source address on is under the checksum.
            for at in 22..good.len() {
                let mut bad = good.clone();
                bad[at] ^= 0x10;
                assert!(check_checksums6(&bad).is_err(), "byte {at} of {good:02x?}");
            }
        }
        let mut zero = frames[0].clone();
        zero[14 + 40 + 6..14 + 40 + 8].copy_from_slice(&[0, 0]);
        assert!(check_checksums6(&zero)
            .unwrap_err()
            .contains("UDP checksum 0"));
        let mut long = frames[0].clone();
        long[14 + 40 + 5] += 1;
        assert!(check_checksums6(&long).unwrap_err().contains("UDP length"));
        let v4 = udp(sa("100.64.0.2:5000"), sa("192.0.2.10:53"), b"q");
        assert!(check_checksums6(&v4).is_err());
        assert!(ipv6_packet(&v4).is_none());
    }
}
