//! Subscriber traffic as the NAT's inside port receives it: flows from hosts of
//! 100.64.0.0/10 to servers on the internet. UDP datagrams, TCP connections (a SYN,
//! then ACK segments with data, from the client side only: the outside is a sink) and
//! ICMP echo requests, interleaved in a deterministic pseudo-random order that keeps
//! each flow's own frames in order.
//!
//! Or, with [`Spec::ipv6`], the same from IPv6-only subscribers to a NAT64: hosts in
//! /56 (or other) subscriber prefixes of an IPv6 network, servers' IPv4 addresses
//! embedded in a NAT64 prefix (RFC 6052), ICMPv6 echo requests in place of ICMP's.

use crate::packet::{
    Frame, Mac, TcpFlags, DEFAULT_DST_MAC, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP,
};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::path::Path;
use std::str::FromStr;

/// A flow's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Proto {
    /// UDP datagrams.
    Udp,
    /// A TCP connection: SYN, then ACK segments with data.
    Tcp,
    /// ICMP echo requests.
    Icmp,
}

impl Proto {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Udp => PROTO_UDP,
            Proto::Tcp => PROTO_TCP,
            Proto::Icmp => PROTO_ICMP,
        }
    }

    /// The IPv6 next header: ICMPv6 for `Icmp`, else as [`Proto::number`].
    pub fn number6(self) -> u8 {
        match self {
            Proto::Icmp => PROTO_ICMPV6,
            p => p.number(),
        }
    }
}

/// An IPv6 prefix, e.g. `64:ff9b::/96`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Net6 {
    /// Its first address.
    pub addr: Ipv6Addr,
    /// Its length in bits (0 to 128).
    pub len: u8,
}

impl Net6 {
    fn mask(len: u8) -> u128 {
        u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
    }

    /// Whether `a` is in the prefix.
    pub fn contains(&self, a: Ipv6Addr) -> bool {
        let m = Net6::mask(self.len);
        u128::from(a) & m == u128::from(self.addr) & m
    }

    fn host_bits_zero(&self) -> bool {
        u128::from(self.addr) & !Net6::mask(self.len) == 0
    }

    fn overlaps(&self, o: &Net6) -> bool {
        self.contains(o.addr) || o.contains(self.addr)
    }
}

impl FromStr for Net6 {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let (a, l) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| anyhow!("{s:?}: an IPv6 prefix is ADDRESS/LENGTH"))?;
        let net = Net6 {
            addr: a.parse().with_context(|| format!("{s:?}: address"))?,
            len: l.parse().with_context(|| format!("{s:?}: length"))?,
        };
        if net.len > 128 {
            bail!("{s:?}: length over 128");
        }
        if !net.host_bits_zero() {
            bail!("{s:?}: bits set past the length");
        }
        Ok(net)
    }
}

impl fmt::Display for Net6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// The NAT64 Well-Known Prefix, 64:ff9b::/96 (RFC 6052 2.1).
pub const WELL_KNOWN_PREFIX: Net6 = Net6 {
    addr: Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0),
    len: 96,
};

/// The prefix lengths RFC 6052 2.2 allows a NAT64 prefix.
pub const NAT64_PREFIX_LENS: [u8; 6] = [32, 40, 48, 56, 64, 96];

/// `v4` written into `prefix` (one of [`NAT64_PREFIX_LENS`]) as RFC 6052 2.2 does:
/// its four bytes right after the prefix, skipping bits 64 to 71 (the "u" octet, left
/// zero), and zeros after.
pub fn embed(prefix: Net6, v4: Ipv4Addr) -> Ipv6Addr {
    let mut b = prefix.addr.octets();
    let at = (usize::from(prefix.len) / 8..16).filter(|&i| i != 8);
    for (i, v) in at.zip(v4.octets()) {
        b[i] = v;
    }
    Ipv6Addr::from(b)
}

/// IPv6 subscribers behind a NAT64: where they are and where the servers are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv6Spec {
    /// The prefix the servers' IPv4 addresses are embedded in (default
    /// [`WELL_KNOWN_PREFIX`]; a network-specific one of [`NAT64_PREFIX_LENS`]).
    pub nat64_prefix: Net6,
    /// The network the subscribers' prefixes are carved from (default
    /// 2001:db8:100::/40: 65,536 /56 subscribers).
    pub subscriber_net: Net6,
    /// Length of one subscriber's prefix (default 56); its host is the prefix's
    /// `::1` (for 128, the subscriber is the host).
    pub subscriber_prefix_len: u8,
}

impl Default for Ipv6Spec {
    fn default() -> Self {
        Ipv6Spec {
            nat64_prefix: WELL_KNOWN_PREFIX,
            subscriber_net: Net6 {
                addr: Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0),
                len: 40,
            },
            subscriber_prefix_len: 56,
        }
    }
}

impl Ipv6Spec {
    /// How many subscriber prefixes the network holds (at most `u32::MAX`; one fewer at
    /// /128, where the network's first address is left out).
    pub fn capacity(&self) -> u32 {
        let bits = u32::from(
            self.subscriber_prefix_len
                .saturating_sub(self.subscriber_net.len),
        );
        let n = 1u64
            .checked_shl(bits)
            .filter(|&n| n <= 1 << 32)
            .unwrap_or(1 << 32);
        let n = if self.subscriber_prefix_len == 128 {
            n - 1
        } else {
            n
        };
        n.min(u64::from(u32::MAX)) as u32
    }

    /// The host of subscriber `i` of `n` (`n` at most [`Ipv6Spec::capacity`]): the
    /// subscribers' prefixes spread evenly over the network, the host `::1` of its
    /// prefix (at /128 the prefix itself, never the network's first address).
    pub fn host(&self, i: u32, n: u32) -> Ipv6Addr {
        let n = n.clamp(1, self.capacity().max(1));
        let stride = u128::from(self.capacity() / n);
        let mut slot = u128::from(i % n) * stride;
        let shift = 128 - u32::from(self.subscriber_prefix_len);
        let host = if shift == 0 {
            slot += 1;
            0
        } else {
            1
        };
        Ipv6Addr::from(u128::from(self.subscriber_net.addr) | slot << shift | host)
    }

    fn validate(&self, subscribers: u32) -> Result<()> {
        let (p, net, len) = (
            self.nat64_prefix,
            self.subscriber_net,
            self.subscriber_prefix_len,
        );
        if !NAT64_PREFIX_LENS.contains(&p.len) {
            bail!("NAT64 prefix {p}: RFC 6052 allows lengths 32, 40, 48, 56, 64 and 96");
        }
        if !p.host_bits_zero() || p.addr.octets()[8] != 0 {
            bail!("NAT64 prefix {p}: bits past the length, or bits 64 to 71, set");
        }
        if !net.host_bits_zero() {
            bail!("subscriber prefix {net}: bits set past the length");
        }
        if len <= net.len || len > 128 {
            bail!(
                "subscriber prefix length {len}: not within {}..=128",
                net.len + 1
            );
        }
        if p.overlaps(&net) {
            bail!("NAT64 prefix {p} overlaps the subscribers' {net}");
        }
        if subscribers > self.capacity() {
            bail!(
                "{subscribers} subscribers: {net} holds {} prefixes of /{len}",
                self.capacity()
            );
        }
        Ok(())
    }
}

/// Whether `a` is outside the ranges RFC 6052 3.1 forbids under the Well-Known Prefix
/// (private, shared, loopback, link-local, documentation, benchmarking, multicast,
/// reserved, "this network", IETF protocol assignments).
pub fn is_global(a: Ipv4Addr) -> bool {
    !(a.is_private()
        || a.is_loopback()
        || a.is_link_local()
        || a.is_documentation()
        || a.is_multicast()
        || a.octets()[0] == 0
        || a.octets()[0] >= 240
        || in_net(a, [100, 64, 0, 0], 10)
        || in_net(a, [192, 0, 0, 0], 24)
        || in_net(a, [198, 18, 0, 0], 15))
}

impl FromStr for Proto {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "udp" => Ok(Proto::Udp),
            "tcp" => Ok(Proto::Tcp),
            "icmp" => Ok(Proto::Icmp),
            _ => bail!("unknown protocol {s:?}: udp, tcp or icmp"),
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
            Proto::Icmp => "icmp",
        })
    }
}

/// The servers flows go to unless told otherwise: 192.0.2.10 to 192.0.2.20 and
/// 198.18.0.1 to 198.18.0.10. None is in 198.51.100.0/24 or 203.0.113.0/24, the NAT
/// pool and the outside link of the sample configurations.
pub fn default_servers() -> Vec<Ipv4Addr> {
    (10..=20)
        .map(|i| Ipv4Addr::new(192, 0, 2, i))
        .chain((1..=10).map(|i| Ipv4Addr::new(198, 18, 0, i)))
        .collect()
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Number of flows (default 10,000).
    pub flows: usize,
    /// Number of subscribers (hosts) the flows come from (default 1,000); each gets
    /// `flows / subscribers` flows or one more.
    pub subscribers: u32,
    /// Destination MAC of every frame: the NAT's inside port (default
    /// 02:70:63:61:70:00, net_pcap's).
    pub dst_mac: Mac,
    /// Seed of every pseudo-random choice (default 1).
    pub seed: u64,
    /// Servers the flows go to (default [`default_servers`]).
    pub servers: Vec<Ipv4Addr>,
    /// Protocols, used in turn (default UDP, TCP, ICMP: a third of the flows each).
    pub mix: Vec<Proto>,
    /// Frames of each flow (default 3): UDP datagrams; a TCP SYN and then data segments;
    /// ICMP echo requests.
    pub packets_per_flow: usize,
    /// Pad every frame with zeros to 60 bytes, the Ethernet minimum, as frames that came
    /// off a real wire are (default off: the IPv4 total length ends each frame). IPv6
    /// frames are never shorter (62 bytes at least).
    pub pad: bool,
    /// IPv6 subscribers to a NAT64 in place of IPv4 ones (default none): each subscriber
    /// a host in its own prefix, the servers embedded in the NAT64 prefix, ICMPv6 echo
    /// for `Icmp`, and UDP datagrams and echo requests with an 8-byte payload (the
    /// flow's and the frame's numbers), so that a padded UDP frame is 70 bytes.
    pub ipv6: Option<Ipv6Spec>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            flows: 10_000,
            subscribers: 1000,
            dst_mac: DEFAULT_DST_MAC,
            seed: 1,
            servers: default_servers(),
            mix: vec![Proto::Udp, Proto::Tcp, Proto::Icmp],
            packets_per_flow: 3,
            pad: false,
            ipv6: None,
        }
    }
}

/// Largest number of flows one subscriber may have (ports and identifiers are drawn at
/// random, distinct per subscriber and protocol).
pub const MAX_FLOWS_PER_SUBSCRIBER: usize = 30_000;
/// Largest number of frames per flow.
pub const MAX_PACKETS_PER_FLOW: usize = 10_000;

fn in_net(a: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(a) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

impl Spec {
    /// Checks that the spec can be generated.
    pub fn validate(&self) -> Result<()> {
        if let Some(v6) = &self.ipv6 {
            v6.validate(self.subscribers)?;
        }
        let capacity = self
            .ipv6
            .as_ref()
            .map_or(SUBSCRIBER_CAPACITY, Ipv6Spec::capacity);
        if self.subscribers == 0 || self.subscribers > capacity {
            bail!(
                "subscribers: {} is not within 1..={capacity}",
                self.subscribers
            );
        }
        if self.mix.is_empty() {
            bail!("mix: at least one of udp, tcp, icmp");
        }
        if self.servers.is_empty() {
            bail!("servers: at least one");
        }
        if let Some(s) = self
            .servers
            .iter()
            .find(|s| in_net(**s, [100, 64, 0, 0], 10))
        {
            bail!("server {s} is in 100.64.0.0/10, where the subscribers are");
        }
        if self.packets_per_flow == 0 || self.packets_per_flow > MAX_PACKETS_PER_FLOW {
            bail!(
                "packets per flow: {} is not within 1..={MAX_PACKETS_PER_FLOW}",
                self.packets_per_flow
            );
        }
        let per_sub = self.flows.div_ceil(self.subscribers as usize);
        if per_sub > MAX_FLOWS_PER_SUBSCRIBER {
            bail!(
                "{} flows from {} subscribers is {per_sub} each, more than {MAX_FLOWS_PER_SUBSCRIBER}",
                self.flows,
                self.subscribers
            );
        }
        Ok(())
    }

    /// Remarks on servers that would make poor samples: in the NAT pool or on the outside
    /// link of the sample configurations, or in private space.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let wkp = self.ipv6.as_ref().map(|v6| v6.nat64_prefix) == Some(WELL_KNOWN_PREFIX);
        for &s in &self.servers {
            if wkp && !is_global(s) {
                out.push(format!(
                    "server {s} is not global: RFC 6052 3.1 keeps it out of 64:ff9b::/96, a NAT64 refuses it there"
                ));
            } else if in_net(s, [198, 51, 100, 0], 24) {
                out.push(format!(
                    "server {s} is in 198.51.100.0/24, the NAT pool of the sample configs"
                ));
            } else if in_net(s, [203, 0, 113, 0], 24) {
                out.push(format!(
                    "server {s} is in 203.0.113.0/24, the outside link of the sample configs"
                ));
            } else if s.is_private() || s.is_loopback() || s.is_unspecified() {
                out.push(format!(
                    "server {s} is not a public address, a NAT may not translate it"
                ));
            }
        }
        out
    }
}

/// One generated flow.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Protocol.
    pub proto: Proto,
    /// Subscriber's address (its host's, IPv6).
    pub src: IpAddr,
    /// Subscriber's port, or the ICMP echo identifier.
    pub sport: u16,
    /// Server's address: IPv4, or embedded in the NAT64 prefix.
    pub dst: IpAddr,
    /// Server's IPv4 address.
    pub server: Ipv4Addr,
    /// Server's port (0 for ICMP).
    pub dport: u16,
    /// Number of frames.
    pub frames: usize,
}

/// One generated frame and the flow it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrafficFrame {
    /// Index of the flow in [`Traffic::flows`].
    pub flow: usize,
    /// The Ethernet frame.
    pub data: Vec<u8>,
}

/// What [`generate`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Traffic {
    /// The flows, in the order they were drawn.
    pub flows: Vec<Flow>,
    /// Every frame of every flow, interleaved.
    pub frames: Vec<TrafficFrame>,
}

impl Traffic {
    /// Writes the frames as a classic pcap, the first at
    /// [`crate::pcap::DEFAULT_START_NANOS`], then one every 100 microseconds.
    pub fn write_pcap(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut w = crate::pcap::PcapWriter::create(path)?;
        for (i, f) in self.frames.iter().enumerate() {
            let ts =
                crate::pcap::DEFAULT_START_NANOS + i as u64 * crate::pcap::DEFAULT_INTERVAL_NANOS;
            w.write(ts, &f.data)?;
        }
        w.finish()
    }

    /// Number of flows of a protocol.
    pub fn count(&self, proto: Proto) -> usize {
        self.flows.iter().filter(|f| f.proto == proto).count()
    }
}

/// A tiny xorshift64* generator: deterministic, good enough to spread choices.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        // One splitmix64 step, so that nearby seeds start far apart and the state is
        // never zero.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 0x2545_f491_4f6c_dd1d } else { z })
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0; the slight bias of a modulo does not matter here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// How many distinct subscribers [`subscriber`] can place in 100.64.0.0/10: hosts .1 to
/// .254 of every /24 but 100.64.0.0/24 (which holds the NAT's own inside address).
pub const SUBSCRIBER_CAPACITY: u32 = ((1 << 14) - 1) * 254;

/// Address of subscriber `i` of `n` (`i` < `n` ≤ [`SUBSCRIBER_CAPACITY`]): spread
/// evenly over 100.64.0.0/10, never a .0 or .255, never in 100.64.0.0/24.
pub fn subscriber(i: u32, n: u32) -> Ipv4Addr {
    let n = n.clamp(1, SUBSCRIBER_CAPACITY);
    let stride = SUBSCRIBER_CAPACITY / n;
    let j = (i % n) * stride;
    let block = j / 254 + 1;
    let host = j % 254 + 1;
    Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + block * 256 + host)
}

/// The MAC a subscriber's frames come from: 02:00 and its IPv4 address.
pub fn subscriber_mac(a: Ipv4Addr) -> Mac {
    let o = a.octets();
    [0x02, 0x00, o[0], o[1], o[2], o[3]]
}

/// The MAC an IPv6 host's frames come from: 02:06 and the exclusive or of its
/// address's four 32-bit words.
pub fn host6_mac(a: Ipv6Addr) -> Mac {
    let v = u128::from(a);
    let w = (v ^ v >> 32 ^ v >> 64 ^ v >> 96) as u32;
    let o = w.to_be_bytes();
    [0x02, 0x06, o[0], o[1], o[2], o[3]]
}

/// What IPv6 UDP datagrams and echo requests carry: flow `i`'s and frame `n`'s
/// numbers, 8 bytes.
fn payload6(i: usize, n: usize) -> [u8; 8] {
    let mut p = [0; 8];
    p[..4].copy_from_slice(&(i as u32).to_be_bytes());
    p[4..].copy_from_slice(&(n as u32).to_be_bytes());
    p
}

/// Smallest Ethernet frame without its frame check sequence.
pub const MIN_FRAME: usize = 60;

/// Payload of datagram `n` of flow `i` to port `dport`: a DNS query for the A record of
/// `f<i>.example` to port 53 (so that tcpdump shows it as one), short text otherwise.
fn udp_payload(dport: u16, i: usize, n: usize) -> Vec<u8> {
    if dport != 53 {
        return format!("flow {i} datagram {n}").into_bytes();
    }
    let id = (i as u16).wrapping_mul(31).wrapping_add(n as u16);
    let label = format!("f{i}");
    let mut q = Vec::with_capacity(29 + label.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; one question
    q.push(label.len() as u8);
    q.extend_from_slice(label.as_bytes());
    q.push(7);
    q.extend_from_slice(b"example");
    q.push(0);
    q.extend_from_slice(&[0, 1, 0, 1]); // A, IN
    q
}

fn v4(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(a) => a,
        IpAddr::V6(a) => unreachable!("{a}: the flow's two addresses are of one family"),
    }
}

fn sock4(a: IpAddr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(v4(a), port)
}

fn sock6(a: Ipv6Addr, port: u16) -> SocketAddrV6 {
    SocketAddrV6::new(a, port, 0, 0)
}

/// Generates the traffic of `spec` (after [`Spec::validate`]). The same spec always gives
/// the same frames.
pub fn generate(spec: &Spec) -> Result<Traffic> {
    spec.validate()?;
    let mut rng = Rng::new(spec.seed);
    let k = spec.packets_per_flow;

    // Which subscriber each flow comes from: each in turn, in a shuffled order.
    let mut owner: Vec<u32> = (0..spec.flows)
        .map(|i| (i % spec.subscribers as usize) as u32)
        .collect();
    for i in (1..owner.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        owner.swap(i, j);
    }

    let mut used = HashSet::with_capacity(spec.flows);
    let mut flows = Vec::with_capacity(spec.flows);
    let mut per_flow: Vec<Vec<Vec<u8>>> = Vec::with_capacity(spec.flows);
    for (i, &sub) in owner.iter().enumerate() {
        let proto = spec.mix[i % spec.mix.len()];
        let src = match &spec.ipv6 {
            Some(v6) => IpAddr::V6(v6.host(sub, spec.subscribers)),
            None => IpAddr::V4(subscriber(sub, spec.subscribers)),
        };
        let server = *rng.pick(&spec.servers);
        // Ports from the ephemeral-ish range, identifiers from all 16 bits; distinct per
        // subscriber and protocol, so every flow is its own session.
        let sport = loop {
            let p = match proto {
                Proto::Icmp => rng.below(1 << 16) as u16,
                _ => 1024 + rng.below(65536 - 1024) as u16,
            };
            if used.insert((proto, src, p)) {
                break p;
            }
        };
        let dport = match proto {
            Proto::Udp => match rng.below(3) {
                0 => 53,
                1 => 443,
                _ => 1024 + rng.below(65536 - 1024) as u16,
            },
            Proto::Tcp => *rng.pick(&[80u16, 443, 443, 8080, 22]),
            Proto::Icmp => 0,
        };
        let dst = match &spec.ipv6 {
            Some(v6) => IpAddr::V6(embed(v6.nat64_prefix, server)),
            None => IpAddr::V4(server),
        };
        let src_mac = match src {
            IpAddr::V4(a) => subscriber_mac(a),
            IpAddr::V6(a) => host6_mac(a),
        };
        let frame = Frame::new()
            .src_mac(src_mac)
            .dst_mac(spec.dst_mac)
            .df(proto == Proto::Tcp);
        let ident0 = rng.next_u64() as u16;
        let b = |n: usize| frame.clone().ident(ident0.wrapping_add(n as u16));
        let mut frames = Vec::with_capacity(k);
        match proto {
            Proto::Udp => {
                for n in 0..k {
                    frames.push(match (src, dst) {
                        (IpAddr::V6(s), IpAddr::V6(d)) => {
                            let (s, d) = (sock6(s, sport), sock6(d, dport));
                            b(n).udp6(s, d, &payload6(i, n))
                        }
                        (s, d) => {
                            let (s, d) = (sock4(s, sport), sock4(d, dport));
                            b(n).udp(s, d, &udp_payload(dport, i, n))
                        }
                    });
                }
            }
            Proto::Tcp => {
                let isn = rng.next_u64() as u32;
                let server_isn = rng.next_u64() as u32;
                let segment = |n: usize, seq, ack, flags, payload: &[u8]| match (src, dst) {
                    (IpAddr::V6(s), IpAddr::V6(d)) => {
                        let (s, d) = (sock6(s, sport), sock6(d, dport));
                        b(n).tcp6(s, d, seq, ack, flags, payload)
                    }
                    (s, d) => {
                        let (s, d) = (sock4(s, sport), sock4(d, dport));
                        b(n).tcp(s, d, seq, ack, flags, payload)
                    }
                };
                frames.push(segment(0, isn, 0, TcpFlags::SYN, &[]));
                let mut seq = isn.wrapping_add(1);
                for n in 1..k {
                    let payload = format!("flow {i} segment {n}\r\n");
                    let ack = server_isn.wrapping_add(1);
                    frames.push(segment(n, seq, ack, TcpFlags::PSH_ACK, payload.as_bytes()));
                    seq = seq.wrapping_add(payload.len() as u32);
                }
            }
            Proto::Icmp => {
                for n in 0..k {
                    let seq = (n + 1) as u16;
                    frames.push(match (src, dst) {
                        (IpAddr::V6(s), IpAddr::V6(d)) => {
                            b(n).icmp6_echo(s, d, sport, seq, false, &payload6(i, n))
                        }
                        (s, d) => {
                            let (s, d) = (v4(s), v4(d));
                            b(n).icmp_echo(s, d, sport, seq, false, b"cgnat sample ping")
                        }
                    });
                }
            }
        }
        if spec.pad {
            for f in &mut frames {
                if f.len() < MIN_FRAME {
                    f.resize(MIN_FRAME, 0);
                }
            }
        }
        flows.push(Flow {
            proto,
            src,
            sport,
            dst,
            server,
            dport,
            frames: frames.len(),
        });
        per_flow.push(frames);
    }

    // Interleave: again and again, the next frame of a random flow that has some left.
    let mut next = vec![0usize; per_flow.len()];
    let mut live: Vec<usize> = (0..per_flow.len()).collect();
    let mut out = Vec::with_capacity(spec.flows * k);
    while !live.is_empty() {
        let at = rng.below(live.len() as u64) as usize;
        let f = live[at];
        let data = std::mem::take(&mut per_flow[f][next[f]]);
        out.push(TrafficFrame { flow: f, data });
        next[f] += 1;
        if next[f] == per_flow[f].len() {
            live.swap_remove(at);
        }
    }
    Ok(Traffic { flows, frames: out })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{checksums_ok, parse, L4};

    fn small() -> Spec {
        Spec {
            flows: 3000,
            subscribers: 50,
            ..Spec::default()
        }
    }

    #[test]
    fn subscribers_are_spread_over_the_shared_space() {
        for n in [1, 2, 100, 1000, 65_536, SUBSCRIBER_CAPACITY] {
            let mut seen = HashSet::new();
            let step = (n / 1000).max(1);
            let mut idx: Vec<u32> = (0..n).step_by(step as usize).collect();
            if idx.last() != Some(&(n - 1)) {
                idx.push(n - 1);
            }
            for i in idx {
                let a = subscriber(i, n);
                assert!(in_net(a, [100, 64, 0, 0], 10), "{a}");
                assert!(!in_net(a, [100, 64, 0, 0], 24), "{a}");
                let last = a.octets()[3];
                assert!(last != 0 && last != 255, "{a}");
                assert!(seen.insert(a), "{a} twice for n={n}");
            }
        }
        // A hundred subscribers reach far into the /10.
        assert!(subscriber(99, 100).octets()[1] >= 120);
        assert_eq!(subscriber(0, 100), Ipv4Addr::new(100, 64, 1, 1));
    }

    #[test]
    fn flows_are_distinct_checksummed_and_deterministic() {
        let spec = small();
        let t = generate(&spec).unwrap();
        assert_eq!(t.flows.len(), 3000);
        assert_eq!(t.frames.len(), 3000 * 3);
        assert_eq!(t.count(Proto::Udp), 1000);
        assert_eq!(t.count(Proto::Tcp), 1000);
        assert_eq!(t.count(Proto::Icmp), 1000);
        let subs: HashSet<_> = t.flows.iter().map(|f| f.src).collect();
        assert_eq!(subs.len(), 50, "every subscriber has flows");
        let keys: HashSet<_> = t
            .flows
            .iter()
            .map(|f| (f.proto, f.src, f.sport, f.dst, f.dport))
            .collect();
        assert_eq!(keys.len(), 3000);
        // Each frame parses back to its flow, in order within the flow.
        let mut seen = vec![0usize; t.flows.len()];
        for fr in &t.frames {
            let f = &t.flows[fr.flow];
            assert!(checksums_ok(&fr.data));
            let p = parse(&fr.data).unwrap();
            let (src, dst) = (IpAddr::V4(p.src), IpAddr::V4(p.dst));
            assert_eq!((src, dst, p.protocol), (f.src, f.dst, f.proto.number()));
            assert_eq!(p.dst, f.server);
            assert_eq!(p.src_mac, subscriber_mac(v4(f.src)));
            assert_eq!(p.dst_mac, DEFAULT_DST_MAC);
            let n = seen[fr.flow];
            match p.l4 {
                L4::Udp { sport, dport } => assert_eq!((sport, dport), (f.sport, f.dport)),
                L4::Tcp {
                    sport,
                    dport,
                    flags,
                    ..
                } => {
                    assert_eq!((sport, dport), (f.sport, f.dport));
                    let want = if n == 0 {
                        TcpFlags::SYN
                    } else {
                        TcpFlags::PSH_ACK
                    };
                    assert_eq!(flags, want);
                }
                L4::Icmp {
                    icmp_type, id, seq, ..
                } => {
                    assert_eq!((icmp_type, id, seq), (8, f.sport, n as u16 + 1));
                }
                L4::Other => panic!("unexpected frame"),
            }
            seen[fr.flow] += 1;
        }
        assert!(seen.iter().all(|&n| n == 3));
        // Deterministic, and the seed matters.
        assert_eq!(generate(&spec).unwrap(), t);
        let other = generate(&Spec { seed: 2, ..spec }).unwrap();
        assert_ne!(other.frames, t.frames);
    }

    fn v6_spec(flows: usize, subscribers: u32) -> Spec {
        Spec {
            flows,
            subscribers,
            servers: vec![Ipv4Addr::new(8, 8, 4, 4), Ipv4Addr::new(192, 0, 2, 33)],
            ipv6: Some(Ipv6Spec::default()),
            ..Spec::default()
        }
    }

    #[test]
    fn ipv4_addresses_are_embedded_as_rfc_6052_shows() {
        // RFC 6052 2.4's table: 192.0.2.33 under 2001:db8::/32 to /96, and the
        // Well-Known Prefix.
        let v4 = Ipv4Addr::new(192, 0, 2, 33);
        for (prefix, want) in [
            ("2001:db8::/32", "2001:db8:c000:221::"),
            ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
            ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
            ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
            ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
            ("2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"),
            ("64:ff9b::/96", "64:ff9b::192.0.2.33"),
        ] {
            let p: Net6 = prefix.parse().unwrap();
            assert_eq!(embed(p, v4), want.parse::<Ipv6Addr>().unwrap(), "{prefix}");
        }
        assert!("64:ff9b::1/96".parse::<Net6>().is_err());
        assert!("64:ff9b::/129".parse::<Net6>().is_err());
        assert_eq!(WELL_KNOWN_PREFIX.to_string(), "64:ff9b::/96");
    }

    #[test]
    fn ipv6_frames_parse_with_their_addresses_ports_and_checksums() {
        use etherparse::{Icmpv6Type, LinkSlice, NetSlice, SlicedPacket, TransportSlice};
        let spec = v6_spec(3000, 50);
        let t = generate(&spec).unwrap();
        let v6 = spec.ipv6.as_ref().unwrap();
        assert_eq!(t.frames.len(), 3000 * 3);
        let hosts: HashSet<_> = t.flows.iter().map(|f| f.src).collect();
        assert_eq!(hosts.len(), 50);
        // One host in each of 50 /56s of 2001:db8:100::/40, spread over it.
        let subs: HashSet<_> = hosts
            .iter()
            .map(|h| match h {
                IpAddr::V6(a) => u128::from(*a) >> 72,
                _ => panic!("{h}"),
            })
            .collect();
        assert_eq!(subs.len(), 50);
        assert_eq!(
            v6.host(0, 50),
            "2001:db8:100::1".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            v6.host(49, 50),
            "2001:db8:1fa:be00::1".parse::<Ipv6Addr>().unwrap()
        );
        let mut seen = vec![0usize; t.flows.len()];
        for fr in &t.frames {
            let f = &t.flows[fr.flow];
            let n = seen[fr.flow];
            seen[fr.flow] += 1;
            crate::packet::check_checksums6(&fr.data).unwrap();
            let p = SlicedPacket::from_ethernet(&fr.data).unwrap();
            let Some(LinkSlice::Ethernet2(eth)) = &p.link else {
                panic!("not Ethernet II")
            };
            let Some(NetSlice::Ipv6(ip)) = &p.net else {
                panic!("not IPv6")
            };
            let h = ip.header();
            let (src, dst) = (h.source_addr(), h.destination_addr());
            assert_eq!((IpAddr::V6(src), IpAddr::V6(dst)), (f.src, f.dst));
            assert!(v6.subscriber_net.contains(src), "{src}");
            assert_eq!(dst, embed(WELL_KNOWN_PREFIX, f.server));
            assert_eq!(h.next_header().0, f.proto.number6());
            assert_eq!(h.hop_limit(), 64);
            assert_eq!(eth.source(), host6_mac(src));
            assert_eq!(eth.destination(), DEFAULT_DST_MAC);
            match p.transport.as_ref().unwrap() {
                TransportSlice::Udp(u) => {
                    assert_eq!((u.source_port(), u.destination_port()), (f.sport, f.dport));
                    assert_eq!(u.payload(), payload6(fr.flow, n));
                    let want = u
                        .to_header()
                        .calc_checksum_ipv6(&h.to_header(), u.payload())
                        .unwrap();
                    assert_eq!(u.checksum(), want);
                    assert_eq!(fr.data.len(), 70);
                }
                TransportSlice::Tcp(tcp) => {
                    assert_eq!(
                        (tcp.source_port(), tcp.destination_port()),
                        (f.sport, f.dport)
                    );
                    assert_eq!(tcp.syn(), n == 0);
                    let want = tcp.calc_checksum_ipv6(h.source(), h.destination()).unwrap();
                    assert_eq!(tcp.checksum(), want);
                    if n == 0 {
                        assert_eq!(fr.data.len(), 74);
                    }
                }
                TransportSlice::Icmpv6(icmp) => {
                    let Icmpv6Type::EchoRequest(e) = icmp.icmp_type() else {
                        panic!("{:?}", icmp.icmp_type())
                    };
                    assert_eq!((e.id, e.seq), (f.sport, n as u16 + 1));
                    let want =
                        icmp.icmp_type()
                            .calc_checksum(h.source(), h.destination(), icmp.payload());
                    assert_eq!(icmp.checksum(), want.unwrap());
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(seen.iter().all(|&n| n == 3));
        // A network-specific prefix, every subscriber a /128 host.
        let nsp: Net6 = "2001:db8:64::/96".parse().unwrap();
        let spec = Spec {
            mix: vec![Proto::Udp],
            packets_per_flow: 1,
            pad: true,
            ipv6: Some(Ipv6Spec {
                nat64_prefix: nsp,
                subscriber_prefix_len: 128,
                ..Ipv6Spec::default()
            }),
            ..v6_spec(100, 100)
        };
        for fr in generate(&spec).unwrap().frames {
            assert!(crate::packet::check_checksums6(&fr.data).is_ok());
            let ip = crate::packet::ipv6_packet(&fr.data).unwrap();
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap());
            assert!(nsp.contains(dst), "{dst}");
            assert_eq!(fr.data.len(), 70);
        }
    }

    #[test]
    fn bad_ipv6_specs_are_refused() {
        let ok = v6_spec(100, 10);
        assert!(generate(&ok).is_ok());
        let with = |f: fn(&mut Ipv6Spec)| {
            let mut s = ok.clone();
            f(s.ipv6.as_mut().unwrap());
            s
        };
        for bad in [
            with(|v| v.nat64_prefix = "2001:db8:64::/80".parse().unwrap()),
            with(|v| v.nat64_prefix.addr = "64:ff9b::1".parse().unwrap()),
            with(|v| v.nat64_prefix = "2001:db8:1:0:ff00::/96".parse().unwrap()),
            with(|v| v.subscriber_prefix_len = 40),
            with(|v| v.nat64_prefix = "2001:db8:100::/96".parse().unwrap()),
            Spec {
                subscribers: 65_537,
                ..ok.clone()
            },
        ] {
            assert!(generate(&bad).is_err(), "{:?}", bad.ipv6);
        }
        // 65,536 /56s in a /40, and all of them distinct.
        let v6 = Ipv6Spec::default();
        assert_eq!(v6.capacity(), 65_536);
        let all: HashSet<_> = (0..65_536).map(|i| v6.host(i, 65_536)).collect();
        assert_eq!(all.len(), 65_536);
        // The default servers are documentation and benchmarking addresses: under the
        // Well-Known Prefix a NAT64 refuses them, and the generator says so.
        let wkp = Spec {
            ipv6: Some(Ipv6Spec::default()),
            ..Spec::default()
        };
        assert_eq!(wkp.warnings().len(), default_servers().len());
        assert_eq!(ok.warnings().len(), 1, "192.0.2.33 but not 8.8.4.4");
    }

    #[test]
    fn flows_are_interleaved() {
        let t = generate(&small()).unwrap();
        // The first 100 frames belong to many different flows.
        let first: HashSet<_> = t.frames[..100].iter().map(|f| f.flow).collect();
        assert!(first.len() > 80, "{}", first.len());
    }

    #[test]
    fn options_are_honoured() {
        let spec = Spec {
            flows: 20,
            subscribers: 3,
            mix: vec![Proto::Tcp],
            packets_per_flow: 1,
            servers: vec![Ipv4Addr::new(192, 0, 2, 99)],
            dst_mac: [2, 9, 9, 9, 9, 9],
            ..Spec::default()
        };
        let t = generate(&spec).unwrap();
        assert_eq!(t.frames.len(), 20);
        for fr in &t.frames {
            let p = parse(&fr.data).unwrap();
            assert_eq!(p.tcp_flags(), Some(TcpFlags::SYN));
            assert_eq!(p.dst, Ipv4Addr::new(192, 0, 2, 99));
            assert_eq!(p.dst_mac, [2, 9, 9, 9, 9, 9]);
        }
        let t = generate(&Spec {
            flows: 0,
            ..spec.clone()
        })
        .unwrap();
        assert!(t.frames.is_empty());
    }

    #[test]
    fn padding_keeps_packets_intact() {
        let spec = Spec {
            flows: 300,
            subscribers: 10,
            pad: true,
            ..Spec::default()
        };
        let padded = generate(&spec).unwrap();
        let plain = generate(&Spec { pad: false, ..spec }).unwrap();
        let mut grew = 0;
        for (a, b) in padded.frames.iter().zip(&plain.frames) {
            assert!(a.data.len() >= MIN_FRAME);
            assert!(checksums_ok(&a.data));
            assert_eq!(parse(&a.data), parse(&b.data));
            grew += usize::from(a.data.len() > b.data.len());
        }
        assert!(grew > 100, "{grew}");
    }

    #[test]
    fn udp_payloads_look_like_their_protocols() {
        let dns = udp_payload(53, 12, 0);
        assert_eq!(&dns[2..6], &[0x01, 0x00, 0, 1]);
        assert_eq!(&dns[12..], b"\x03f12\x07example\x00\x00\x01\x00\x01");
        assert_eq!(udp_payload(443, 1, 2), b"flow 1 datagram 2");
    }

    #[test]
    fn bad_specs_are_refused() {
        let ok = Spec::default();
        assert!(ok.validate().is_ok());
        assert!(ok.warnings().is_empty());
        for bad in [
            Spec {
                subscribers: 0,
                ..ok.clone()
            },
            Spec {
                mix: vec![],
                ..ok.clone()
            },
            Spec {
                servers: vec![],
                ..ok.clone()
            },
            Spec {
                servers: vec![Ipv4Addr::new(100, 100, 0, 1)],
                ..ok.clone()
            },
            Spec {
                packets_per_flow: 0,
                ..ok.clone()
            },
            Spec {
                flows: 100_000,
                subscribers: 1,
                ..ok.clone()
            },
        ] {
            assert!(generate(&bad).is_err(), "{bad:?}");
        }
        let w = Spec {
            servers: vec![
                Ipv4Addr::new(198, 51, 100, 1),
                Ipv4Addr::new(203, 0, 113, 9),
            ],
            ..ok
        };
        assert_eq!(w.warnings().len(), 2);
        assert!(default_servers()
            .iter()
            .all(|s| !in_net(*s, [198, 51, 100, 0], 24) && !in_net(*s, [203, 0, 113, 0], 24)));
    }

    #[test]
    fn protocols_parse() {
        assert_eq!("UDP".parse::<Proto>().unwrap(), Proto::Udp);
        assert_eq!(" tcp".parse::<Proto>().unwrap(), Proto::Tcp);
        assert_eq!("icmp".parse::<Proto>().unwrap().to_string(), "icmp");
        assert!("sctp".parse::<Proto>().is_err());
    }

    #[test]
    fn rng_is_deterministic() {
        let a: Vec<u64> = (0..5)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..5)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(Rng::new(0).next_u64(), Rng::new(1).next_u64());
        let mut r = Rng::new(3);
        assert!((0..1000).all(|_| r.below(10) < 10));
    }
}
