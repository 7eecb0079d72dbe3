//! The per-packet pipeline, generic over [`PacketBuf`]: what a worker does with each
//! frame (parse, translate, route, resolve the next hop) and what the control lcore
//! does with the frames handed to it (ARP, ICMP addressed to the appliance).
//!
//! Nothing here knows about DPDK; the same code runs on mbufs in the appliance and on
//! [`crate::buf::VecBuf`] in tests and replay.

use crate::alg_stream::{AlgStream, Outcome};
use crate::buf::PacketBuf;
use crate::counters::{DropReason, WorkerCounters};
use crate::frag::{self, Fragments, Key as FragKey};
use crate::nat::{Nat, Tuple};
use crate::neighbors::Neighbors;
use crate::wire::checksum::{self, Delta};
use crate::wire::ethernet::{self, Mac, ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use crate::wire::{arp, be16, icmp, ipv4, tcp, udp, WireError};
use cgnat_config::{Config, Ipv4Net, Role};
use std::sync::Arc;

pub use crate::side::Side;

/// What to do with a frame after processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit on this side's port; the frame is complete (L2 included).
    Tx(Side),
    /// Free the frame; the reason has been counted.
    Drop(DropReason),
    /// Hand to the control lcore (ARP, packets addressed to the appliance).
    Control,
    /// Give the frame to [`Worker::hold`]: a fragment waiting for its first fragment.
    Hold,
    /// Hand the frame (tagged, see [`crate::alg`]) to this worker's ALG stream engine
    /// ([`Worker::alg_frame`]; a PCP answer: to the control lcore's server), then
    /// transmit it on this side.
    Alg(Side),
    /// Hand the frame to worker `.0`, which processes it as received on side `.1`
    /// ([`Worker::process_handed`]): it owns the subscriber (inside) or the outside port.
    Handoff(u16, Side),
}

/// What the pipeline knows of a port.
#[derive(Clone, Debug)]
pub struct PortInfo {
    /// MAC address.
    pub mac: Mac,
    /// The port's own address and prefix.
    pub net: Ipv4Net,
    /// Next hop for destinations off the port's subnet.
    pub gateway: Option<u32>,
    /// MTU (IP packet size).
    pub mtu: u16,
    /// Untagged frames are the port's own (else only its VLANs').
    pub untagged: bool,
    /// VLAN sub-interfaces ([`crate::vlan`]).
    pub vlans: Vec<crate::vlan::VlanIf>,
    /// The port's IPv6 side (inside port with IPv6 addresses: [`crate::nd`]).
    pub ipv6: Option<crate::nd::Ipv6If>,
}

impl PortInfo {
    /// The port's own address.
    #[inline]
    pub fn addr(&self) -> u32 {
        u32::from(self.net.addr)
    }

    /// The port's own addresses (any sub-interface's).
    pub fn addrs(&self) -> impl Iterator<Item = u32> + '_ {
        std::iter::once(self.addr()).chain(self.vlans.iter().map(|v| u32::from(v.net.addr)))
    }

    /// True if `ip` is on the port's subnet (or a VLAN's).
    #[inline]
    pub fn on_link(&self, ip: u32) -> bool {
        self.net.contains(ip.into()) || self.vlans.iter().any(|v| v.net.contains(ip.into()))
    }

    /// The next hop for `dst`.
    #[inline]
    pub fn next_hop(&self, dst: u32) -> u32 {
        if !self.vlans.is_empty() {
            return self.vlan_next_hop(dst);
        }
        match self.gateway {
            Some(g) if !self.on_link(dst) => g,
            _ => dst,
        }
    }
}

/// Builds the two PortInfos from the config and the ports' MAC addresses.
pub fn port_infos(cfg: &Config, macs: [Mac; 2]) -> [PortInfo; 2] {
    let info = |side: Side| {
        let role = if side == Side::Inside {
            Role::Inside
        } else {
            Role::Outside
        };
        let p = cfg
            .port(role)
            .expect("config validation requires both ports");
        PortInfo {
            mac: macs[side as usize],
            net: p.ipv4,
            gateway: p.gateway.map(u32::from),
            mtu: p.mtu,
            untagged: p.untagged,
            vlans: crate::vlan::vlans_of(p),
            ipv6: crate::nd::Ipv6If::new(macs[side as usize], &p.ipv6)
                .map(|i| i.with_gateway(p.gateway6)),
        }
    };
    [info(Side::Inside), info(Side::Outside)]
}

/// Settings the pipeline reads for every packet.
#[derive(Clone, Debug)]
pub struct PipelineParams {
    /// Inside prefixes.
    pub inside: Vec<Ipv4Net>,
    /// Destinations forwarded untranslated.
    pub exclude: Vec<Ipv4Net>,
    /// Private, shared, link-local and directed-broadcast destinations subscribers may
    /// reach anyway.
    pub allow: Vec<Ipv4Net>,
    /// Drop packets with IPv4 options (else their options are overwritten with NOPs).
    pub ip_options_drop: bool,
    /// Identity-mapped inside hosts: untranslated both ways.
    pub identity: Vec<Ipv4Net>,
    /// Hairpinning on.
    pub hairpinning: bool,
    /// Send ICMP admin-prohibited when a limit refuses a session.
    pub icmp_on_limit: bool,
    /// Drop unicast frames for other MACs (off in pcap mode, whose inputs carry any MAC).
    pub check_dst_mac: bool,
    /// ICMP errors the appliance may send per second per worker.
    pub icmp_rate: u32,
    /// Destination MAC for next hops nobody resolved (pcap mode, where no neighbour
    /// can answer ARP); None: the packet waits while an ARP request asks.
    pub unresolved_mac: Option<Mac>,
    /// ARP frames one source MAC may send to the control lcore per second.
    pub arp_per_source: u32,
    /// Frames that wait for one next hop (0: none waits).
    pub wait_per_hop: usize,
    /// Frames that wait for any next hop, per worker.
    pub wait_max: usize,
    /// Seconds a frame waits for its next hop.
    pub wait_secs: u32,
    /// Hold unsolicited inbound SYNs (RFC 5382 REQ-4) for this many seconds; 0 drops.
    pub syn_hold_secs: u32,
    /// The inside port's RSS steering, set by the driver when the device steers by
    /// source address: a subscriber then belongs to the worker whose queue its packets
    /// reach, instead of to a hash of its address.
    pub steering: Option<Arc<crate::nat::rss::Steering>>,
    /// The PCP and NAT-PMP server, when on.
    pub pcp: Option<crate::pcp::PcpParams>,
    /// NAT64 (`[nat64]`), when on.
    pub nat64: Option<Nat64Params>,
    /// ALG control connections the workers' stream engines follow, in all
    /// (`nat.max_alg_connections`): each worker's engine is sized for its share.
    pub alg_connections: u32,
}

/// What NAT64 translation needs of the config.
#[derive(Clone, Copy, Debug)]
pub struct Nat64Params {
    /// The prefix IPv4 addresses are represented under (RFC 6052).
    pub prefix: crate::wire::rfc6052::Prefix,
    /// lowest-ipv6-mtu and the two ports' MTUs (inside: IPv6, outside: IPv4).
    pub mtus: crate::xlat::Mtus,
}

impl Nat64Params {
    /// From the config: None without `[nat64]`.
    pub fn from_config(cfg: &Config) -> Option<Nat64Params> {
        let n = cfg.nat64?;
        let mtu = |r| cfg.port(r).map_or(1500, |p| p.mtu);
        Some(Nat64Params {
            // Validated with the config (RFC 6052 lengths, host bits, u octet).
            prefix: crate::wire::rfc6052::Prefix::new(n.prefix.addr.octets(), n.prefix.prefix)
                .ok()?,
            mtus: crate::xlat::Mtus {
                lowest_ipv6: n.lowest_ipv6_mtu,
                ipv6: mtu(Role::Inside),
                ipv4: mtu(Role::Outside),
            },
        })
    }
}

/// True for the refusals of a new session by a limit or a full table (answered with
/// an administratively prohibited error when `nat.icmp_on_limit`).
fn is_limit(r: DropReason) -> bool {
    matches!(
        r,
        DropReason::PoolExhausted
            | DropReason::SubscriberPortLimit
            | DropReason::SubscriberSessionLimit
            | DropReason::SessionTableFull
            | DropReason::SubscriberTableFull
            | DropReason::MappingTableFull
            | DropReason::Nat64HostTableFull
    )
}

/// The drop reason of each RFC 7915 refusal.
fn xlat_reason(r: crate::xlat::Refused) -> DropReason {
    use crate::xlat::Refused as R;
    match r {
        R::Truncated => DropReason::XlatTruncated,
        R::Malformed => DropReason::XlatMalformed,
        R::Checksum => DropReason::XlatChecksum,
        R::HopLimit => DropReason::XlatHopLimit,
        R::TooBig { .. } => DropReason::XlatTooBig,
        R::IcmpUntranslatable => DropReason::XlatIcmpUntranslatable,
        R::FragmentedIcmp => DropReason::XlatFragmentedIcmp,
        R::UdpZeroChecksumFragment => DropReason::XlatUdpZeroChecksumFragment,
        R::SourceRoute => DropReason::XlatSourceRoute,
        R::SegmentsLeft { .. } => DropReason::XlatSegmentsLeft,
        R::ExtensionAfterFragment => DropReason::XlatExtensionAfterFragment,
        R::NestedError => DropReason::XlatNestedError,
        R::NoRoom => DropReason::XlatNoRoom,
    }
}

impl PipelineParams {
    /// From the config.
    pub fn from_config(cfg: &Config) -> PipelineParams {
        PipelineParams {
            inside: cfg.nat.inside.clone(),
            exclude: cfg.nat.exclude_destinations.clone(),
            allow: cfg.nat.allow_destinations.clone(),
            ip_options_drop: cfg.nat.ip_options == cgnat_config::IpOptions::Drop,
            identity: cfg.nat.identity.clone(),
            hairpinning: cfg.nat.hairpinning,
            icmp_on_limit: cfg.nat.icmp_on_limit,
            check_dst_mac: true,
            icmp_rate: 1000,
            unresolved_mac: None,
            arp_per_source: cfg.dataplane.arp_per_source,
            wait_per_hop: cfg.dataplane.unresolved_queue,
            wait_max: cfg.dataplane.unresolved_queue_total,
            wait_secs: cfg.dataplane.unresolved_secs,
            syn_hold_secs: match cfg.nat.inbound_syn {
                cgnat_config::InboundSyn::Hold => cfg.nat.timeouts.tcp_syn_inbound,
                cgnat_config::InboundSyn::Drop => 0,
            },
            steering: None,
            pcp: crate::pcp::params(&cfg.pcp),
            nat64: Nat64Params::from_config(cfg),
            alg_connections: cfg.nat.max_alg_connections,
        }
    }
}

#[inline]
fn in_any(nets: &[Ipv4Net], ip: u32) -> bool {
    nets.iter().any(|n| n.contains(ip.into()))
}

/// The blocks [`reserved`] refuses, as network and prefix length.
const RESERVED: [(u32, u8); 5] = [
    (0x0a00_0000, 8),
    (0xac10_0000, 12),
    (0xc0a8_0000, 16),
    (0x6440_0000, 10),
    (0xa9fe_0000, 16),
];

/// Destinations a subscriber has no business sending upstream: private (RFC 1918),
/// shared (RFC 6598) and link-local (RFC 3927) space. Directed broadcasts and the
/// inside prefixes are checked by the caller against the configuration.
#[inline]
fn reserved(ip: u32) -> bool {
    RESERVED
        .iter()
        .any(|&(net, len)| ip & (u32::MAX << (32 - len)) == net)
}

/// The prefixes of `nets` not within the space [`reserved`] covers (those it does are
/// refused as destinations by it already): usually none.
fn unreserved(nets: &[Ipv4Net]) -> Vec<Ipv4Net> {
    let within = |n: &Ipv4Net| {
        RESERVED.iter().any(|&(net, len)| {
            n.prefix >= len && u32::from(n.network()) & (u32::MAX << (32 - len)) == net
        })
    };
    nets.iter().filter(|n| !within(n)).copied().collect()
}

/// Martian addresses (this network, loopback, multicast and above), as first and
/// last address: [`martian`], and never ordinary in [`crate::ordinary`]. Each range
/// is whole /8s (checked below), so that [`martian`] reads one flag by first octet.
const MARTIAN: [(u32, u32); 3] = [
    (0x0000_0000, 0x00ff_ffff),
    (0x7f00_0000, 0x7fff_ffff),
    (0xe000_0000, 0xffff_ffff),
];

/// [`MARTIAN`] by first octet.
const MARTIAN_OCTET: [bool; 256] = {
    let mut t = [false; 256];
    let mut r = 0;
    while r < MARTIAN.len() {
        let (first, last) = MARTIAN[r];
        assert!(first & 0x00ff_ffff == 0 && last & 0x00ff_ffff == 0x00ff_ffff);
        let mut o = first >> 24;
        while o <= last >> 24 {
            t[o as usize] = true;
            o += 1;
        }
        r += 1;
    }
    t
};

/// Whether `ip` is in [`MARTIAN`]: one flag by first octet (the per-frame checks
/// read it up to twice a frame; a scan of the ranges cost translate and dispatch
/// 3-20 cycles a frame in (b), measured).
#[inline]
fn martian(ip: u32) -> bool {
    MARTIAN_OCTET[(ip >> 24) as usize]
}

/// Parsed L3/L4 facts about a frame, offsets from the start of the frame.
struct Parsed {
    l3: usize,
    l4: usize,
    end: usize,
    proto: u8,
    src: u32,
    dst: u32,
    /// First fragment of a datagram: the L4 length fields speak of the whole datagram.
    first_fragment: bool,
}

/// What the burst stages ([`crate::vector`]) carry of a plain frame
/// ([`Worker::classify`]): where its L4 header and its datagram end, its NAT tuple and
/// TCP flags. The Ethernet header is 14 bytes and the IPv4 one 20 (no options).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plain {
    pub(crate) l4: u16,
    pub(crate) end: u16,
    pub(crate) tuple: Tuple,
    pub(crate) flags: u8,
}

/// What the translate stage of one vector keeps between its frames
/// ([`Worker::translate`]): the vector's time and whether it was handed over, and the
/// next hop and neighbour entry it last looked up. A vector's frames mostly leave
/// through one hop (the gateway), whose entry is then read once, not once a frame;
/// what the control lcore learns meanwhile is seen from the next vector on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TranslateStage {
    now: u32,
    handed: bool,
    hop: Option<(u32, Side)>,
    known: Option<(Mac, bool)>,
}

impl TranslateStage {
    /// The stage of a vector received (or `handed` over by another worker) at `now`.
    pub(crate) fn new(now: u32, handed: bool) -> TranslateStage {
        TranslateStage {
            now,
            handed,
            hop: None,
            known: None,
        }
    }
}

impl Plain {
    /// The parse facts of the frame (Ethernet and IPv4 headers without options).
    #[inline(always)]
    fn parsed(&self) -> Parsed {
        Parsed {
            l3: ethernet::HEADER_LEN,
            l4: usize::from(self.l4),
            end: usize::from(self.end),
            proto: self.tuple.proto,
            src: self.tuple.src,
            dst: self.tuple.dst,
            first_fragment: false,
        }
    }

    pub(crate) const EMPTY: Plain = Plain {
        l4: 0,
        end: 0,
        tuple: Tuple {
            proto: 0,
            src: 0,
            dst: 0,
            sport: 0,
            dport: 0,
        },
        flags: 0,
    };
}

/// An unsolicited inbound SYN, remembered (not forwarded) for RFC 5382 REQ-4: if no
/// outbound SYN of the same connection follows within the hold time, the remote gets
/// ICMP port unreachable about it; if one does, it is silently forgotten.
#[derive(Clone, Copy, Debug)]
pub struct HeldSyn {
    src: u32,
    sport: u16,
    dst: u32,
    dport: u16,
    until: u32,
    quote: [u8; 68],
    quote_len: u8,
    peer_mac: Mac,
    used: bool,
}

impl HeldSyn {
    const EMPTY: HeldSyn = HeldSyn {
        src: 0,
        sport: 0,
        dst: 0,
        dport: 0,
        until: 0,
        quote: [0; 68],
        quote_len: 0,
        peer_mac: [0; 6],
        used: false,
    };
}

/// The IPv4 no-operation option.
const OPT_NOP: u8 = 1;

/// Unsolicited SYNs held at once, per worker.
pub const HELD_SYNS: usize = 64;
/// Fragments one IPv4 packet may be cut into on its way to IPv6 (RFC 7915 4.1): the
/// largest, 65,535 bytes, in fragments of 1280 bytes makes 52.
pub const SPLIT_MAX: usize = 64;

/// One worker's pipeline: its NAT tables and what it needs to route.
pub struct Worker<B> {
    /// The NAT tables.
    pub nat: Nat,
    /// The inside port's IPv6 neighbours (the control lcore's table, read only).
    neighbors6: Option<Arc<crate::neighbors::Neighbors6>>,
    /// The outside endpoint (pool address, port) of the NAT64 session the slow path's
    /// `out2in` last found: `nat64_in` puts it back in a packet it cannot translate, for
    /// the ICMP error to quote the packet as it was sent.
    nat64_undo: (u32, u16),
    /// IPv6 neighbours to solicit (through the control lcore), and their number.
    solicits6: [crate::wire::ipv6::Addr; 8],
    solicits6_len: usize,
    /// (address fold, second) of the last solicitation asked per bucket: one a
    /// second per neighbour.
    nd_sent: [(u32, u32); 64],
    ports: [PortInfo; 2],
    /// The ports' subnet broadcast addresses.
    bcast: [u32; 2],
    /// The inside prefixes outside private, shared and link-local space (refused as
    /// destinations from subscribers like those): usually none.
    inside_unreserved: Vec<Ipv4Net>,
    /// The /16s whose addresses pass an outbound frame's address checks for certain.
    ordinary: crate::ordinary::OrdinaryOut,
    params: PipelineParams,
    neighbors: Arc<Neighbors>,
    counters: Arc<WorkerCounters>,
    /// Last second an ARP request was sent, per small hash bucket of next hops.
    arp_sent: [(u32, u32); 64],
    /// Frames waiting for their next hop's MAC (like Linux's unres_qlen): at most
    /// `wait_per_hop` per next hop and `wait_max` in all (parameters), sent once the
    /// neighbour is known, dropped after `wait_secs`.
    waiting: Vec<Waiting<B>>,
    /// Where the frame `process` answered [`Verdict::Hold`] for waits (next hop, side).
    pending_neigh: Option<(u32, Side, u32)>,
    /// ARP requests to send (next hop, side), for the driver to build
    /// ([`Worker::next_request`], [`Worker::build_arp_request`]).
    requests: [(u32, Side); 16],
    requests_len: usize,
    /// ARP frames seen per source MAC this second (a small hashed table: a source
    /// shares its slot with others that hash alike).
    arp_rate: [(u64, u32, u32); ARP_RATE_SLOTS],
    icmp_second: u32,
    icmp_left: u32,
    ident: u16,
    /// Inside hosts seen creating sessions whose MAC the neighbour table lacks; the
    /// driver hands them to the control lcore, the table's only writer.
    glean: [(u32, Mac); 32],
    glean_len: usize,
    held: [HeldSyn; HELD_SYNS],
    /// HA standby: every received frame is dropped (`ha_standby`) until promoted.
    standby: bool,
    held_len: usize,
    frags: Fragments<B>,
    /// Where the fragment `process` answered [`Verdict::Hold`] for is held (its
    /// datagram, side, time, and whether for reassembly).
    pending_hold: Option<(FragKey, Side, u32, bool)>,
    /// NAT64: the inside hosts' IPv6 datagrams whose fragments follow their first's
    /// session (RFC 6146 3.5, RFC 7915 5.1), and fragments held until it comes.
    frags6: Fragments<B, frag::Key6>,
    /// Where the IPv6 fragment `process` answered [`Verdict::Hold`] for is held (its
    /// datagram, time).
    pending_hold6: Option<(frag::Key6, u32)>,
    /// Gives a buffer for each further IPv6 fragment an IPv4 packet is cut into (RFC
    /// 7915 4.1, [`crate::xlat::split_ipv6`]): the mbuf pool; tests give Vec buffers.
    alloc: Option<Box<dyn FnMut() -> Option<B> + Send>>,
    releasing: Vec<B>,
    /// Where an ALG session's datagram is reassembled (sized once for the largest).
    scratch: Option<crate::buf::VecBuf>,
    /// Fragments of a reassembled datagram, translated and tagged, for the control
    /// lcore's ALG ([`Worker::take_alg`]).
    to_alg: Vec<(B, Side)>,
    ready: Vec<(B, Side)>,
    /// Held fragments released to the worker that owns their datagram (worker, side
    /// received on).
    handing: Vec<(B, u16, Side)>,
    /// The frame being processed was handed over by another worker.
    handed: bool,
    /// Set by a hairpin whose second half belongs to another worker.
    hairpin_owner: Option<u16>,
    /// Set when the packet belongs to an ALG control session.
    alg_tag: Option<crate::alg::Tag>,
    /// Set while a datagram reassembled from fragments is translated.
    reassembled: bool,
    /// The contract ALGs' TCP streams: messages not complete yet (the ALG stream
    /// engine holds the segment; the contract path keeps the bytes to parse the joined
    /// message), the sessions whose sequence numbers the engine adjusts, and the media
    /// sources peers named.
    contract_streams: crate::alg_contract::Streams,
    /// PCP and NAT-PMP requests per subscriber this second.
    pcp_rate: crate::pcp::RateLimit,
    /// The ALG stream engine of this worker's sessions ([`Worker::alg_frame`]): it
    /// rewrites the frames [`Worker::process`] tagged with the sequence adjustment of
    /// their connection, holds and joins the segments of a message cut across
    /// segments, answers what the ALG policies refuse, and cuts a reassembled datagram
    /// into fragments again.
    alg_stream: AlgStream<B>,
    /// The time of the frame last tagged for the ALG stream engine.
    alg_now: u32,
}

/// A frame waiting for its next hop's MAC.
struct Waiting<B> {
    hop: u32,
    side: Side,
    until: u32,
    buf: B,
}

/// Default of `dataplane.unresolved_queue`: frames that wait for one next hop (as
/// Linux's unres_qlen, 3).
pub const WAIT_PER_HOP: usize = 3;
/// Default of `dataplane.unresolved_queue_total`: frames waiting for any next hop,
/// per worker.
pub const WAIT_MAX: usize = 64;
/// Default of `dataplane.unresolved_secs`: seconds a frame waits for its next hop (an
/// ARP request each second meanwhile).
pub const WAIT_SECS: u32 = 3;
/// Default of `dataplane.arp_per_source`: ARP frames one source MAC may have handled
/// per second (per worker); the rest are dropped before they reach the control lcore.
pub const ARP_PER_SOURCE: u32 = 16;
const ARP_RATE_SLOTS: usize = 256;

impl<B: PacketBuf> Worker<B> {
    /// A worker over `nat`.
    pub fn new(
        nat: Nat,
        ports: [PortInfo; 2],
        params: PipelineParams,
        neighbors: Arc<Neighbors>,
        counters: Arc<WorkerCounters>,
    ) -> Worker<B> {
        let wait_max = params.wait_max;
        let inside = ports[Side::Inside as usize].clone();
        let client_neighbors = neighbors.clone();
        // The ALG connections of this worker's sessions: its share of the appliance's
        // (`nat.max_alg_connections`, rounded up).
        let workers = usize::from(nat.pool.layout.workers.max(1));
        let share = (params.alg_connections as usize).div_ceil(workers).max(1);
        let alg_stream = AlgStream::new(
            inside.mac,
            Box::new(move |ip| client_neighbors.lookup(inside.next_hop(ip))),
            ports[0].mtu.min(ports[1].mtu),
            counters.clone(),
            share,
        );
        let mut w = Worker {
            neighbors6: None,
            nat64_undo: (0, 0),
            solicits6: [[0; 16]; 8],
            solicits6_len: 0,
            nd_sent: [(0, 0); 64],
            nat,
            bcast: [
                u32::from(ports[0].net.broadcast()),
                u32::from(ports[1].net.broadcast()),
            ],
            inside_unreserved: unreserved(&params.inside),
            ports,
            params,
            neighbors,
            counters,
            arp_sent: [(0, 0); 64],
            waiting: Vec::with_capacity(wait_max),
            pending_neigh: None,
            requests: [(0, Side::Inside); 16],
            requests_len: 0,
            arp_rate: [(0, 0, 0); ARP_RATE_SLOTS],
            icmp_second: 0,
            icmp_left: 0,
            ident: 1,
            glean: [(0, [0; 6]); 32],
            glean_len: 0,
            held: [HeldSyn::EMPTY; HELD_SYNS],
            standby: false,
            held_len: 0,
            frags: Fragments::new(0x4000),
            pending_hold: None,
            frags6: Fragments::new(0),
            pending_hold6: None,
            alloc: None,
            releasing: Vec::with_capacity(frag::MAX_HELD),
            scratch: Some(crate::buf::VecBuf::with_room(
                &[],
                ethernet::HEADER_LEN + 60 + frag::MAX_REASSEMBLED + 1024,
            )),
            to_alg: Vec::with_capacity(frag::MAX_HELD),
            ready: Vec::with_capacity(frag::MAX_HELD + wait_max + SPLIT_MAX),
            handing: Vec::with_capacity(frag::MAX_HELD),
            handed: false,
            hairpin_owner: None,
            alg_tag: None,
            reassembled: false,
            contract_streams: crate::alg_contract::Streams::default(),
            pcp_rate: crate::pcp::RateLimit::default(),
            alg_stream,
            alg_now: 0,
            ordinary: crate::ordinary::OrdinaryOut::new(),
        };
        w.rebuild_ordinary();
        w
    }

    /// Rebuilds [`crate::ordinary::OrdinaryOut`] from what the address checks of an
    /// outbound frame read: the inside, identity and excluded prefixes, the private,
    /// shared and link-local space and the inside prefixes outside it, the ports'
    /// subnet broadcasts and own addresses, the pool (draining addresses included).
    fn rebuild_ordinary(&mut self) {
        let prm = &self.params;
        let point = |a: u32| (a, a);
        let not_sources = prm
            .identity
            .iter()
            .map(crate::ordinary::range)
            .chain(MARTIAN);
        let not_destinations = RESERVED
            .iter()
            .map(|&(net, len)| (net, net | (u32::MAX >> len)))
            .chain(self.inside_unreserved.iter().map(crate::ordinary::range))
            .chain(prm.exclude.iter().map(crate::ordinary::range))
            .chain(self.bcast.iter().copied().map(point))
            .chain(self.ports.iter().flat_map(PortInfo::addrs).map(point))
            .chain(self.nat.pool.addresses().iter().copied().map(point))
            .chain(MARTIAN);
        self.ordinary
            .rebuild(&prm.inside, not_sources, not_destinations);
    }

    /// Runs this worker's ALG stream engine on a frame [`Worker::process`] tagged
    /// ([`Verdict::Alg`], or [`Worker::take_alg`]'s fragments): the engine rewrites it
    /// and says where it goes. A segment held (answer [`Outcome::Hold`]) goes to
    /// [`Worker::hold_alg`]; what the engine then has ready (a run joined or released,
    /// a policy reply, fragments cut again) comes from [`Worker::take_alg_ready`].
    pub fn alg_frame(&mut self, buf: &mut B, side: Side) -> Outcome {
        // (A policy reply goes where the worker's own frames go.)
        self.alg_stream
            .set_unresolved_mac(self.params.unresolved_mac);
        let now = self.alg_now;
        let (engine, mut grants) = self.engine_at(now);
        engine.alg(buf, side, now, Some(&mut grants))
    }

    /// The ALG stream engine with its way to this worker's tables at `now`: what the
    /// engine plans itself, it grants from them ([`crate::alg_contract::EngineGrants`]).
    fn engine_at(
        &mut self,
        now: u32,
    ) -> (&mut AlgStream<B>, crate::alg_contract::EngineGrants<'_>) {
        let grants = self
            .contract_streams
            .engine_grants(&mut self.nat, &self.counters, now);
        (&mut self.alg_stream, grants)
    }

    /// Takes the segment [`Worker::alg_frame`] answered [`Outcome::Hold`] for.
    pub fn hold_alg(&mut self, buf: B) {
        let now = self.alg_now;
        let (engine, mut grants) = self.engine_at(now);
        engine.hold_alg(buf, now, Some(&mut grants));
    }

    /// A frame the ALG stream engine has ready to send, in the order they must go,
    /// with the side it leaves on.
    pub fn take_alg_ready(&mut self) -> Option<(B, Side)> {
        self.alg_stream.take_ready()
    }

    /// The number of the frame [`Worker::alg_frame`] ran on last.
    pub fn alg_frame_number(&self) -> u32 {
        self.alg_stream.frame()
    }

    /// [`Worker::take_alg_ready`], of what the engine made ready up to frame number
    /// `frame`'s run ([`Worker::alg_frame_number`]): a burst's frames run through the
    /// engine as they are processed, and each one's go out right behind it.
    pub fn take_alg_ready_of(&mut self, frame: u32) -> Option<(B, Side)> {
        self.alg_stream.take_ready_of(frame)
    }

    /// Lets the ALG stream engine release the segments and fragments that waited too
    /// long at `now` ([`Worker::take_alg_ready`] hands them out).
    pub fn alg_tick(&mut self, now: u32) {
        self.alg_now = self.alg_now.max(now);
        let (engine, mut grants) = self.engine_at(now);
        engine.tick(now, Some(&mut grants));
    }

    /// The ALG connections' state: their sequence adjustments (HA sync) and the
    /// policy decisions to log.
    pub fn alg_control(&mut self) -> &mut crate::alg::AlgControl {
        self.alg_stream.alg_control()
    }

    /// The NAT tables and the ALG connections' state together (the HA sync's turn).
    pub fn sync_parts(&mut self) -> (&mut Nat, &mut crate::alg::AlgControl) {
        (&mut self.nat, self.alg_stream.alg_control())
    }

    /// Sets the ALGs' command and request policy (at start and on a reload); returns
    /// the one it replaces (to be dropped off the lcore).
    pub fn set_alg_policy(&mut self, p: crate::alg::AlgPolicy) -> crate::alg::AlgPolicy {
        self.alg_stream.set_policy(p)
    }

    /// Sets where the ALG stream engine's buffers come from (a policy reply, the
    /// further fragments of a rewritten datagram): the mbuf pool; tests give Vec
    /// buffers.
    pub fn set_alg_alloc(&mut self, alloc: Box<dyn FnMut() -> Option<B> + Send>) {
        self.alg_stream.set_alloc(alloc);
    }

    /// Stage 1 of a burst ([`crate::vector`]): the frame's facts if it is a plain
    /// case that the vector translates on its own, None for anything else (left whole
    /// to [`Worker::process`]). Plain: for this port's MAC (unless handed over, or
    /// unchecked), IPv4 without options with a good header checksum, not a fragment,
    /// TCP, UDP or an ICMP query, TTL above 1, within both MTUs, passing
    /// [`Worker::screen`]'s checks, not for the appliance's own addresses, not of an
    /// identity host or an excluded destination, not hairpinned, and this worker's
    /// to translate. It changes nothing the full path would see differently (it only
    /// trims Ethernet padding, as that path's parse does).
    #[inline]
    pub(crate) fn classify(&mut self, buf: &mut B, from: Side, handed: bool) -> Option<Plain> {
        let d = buf.data();
        if d.len() < ethernet::HEADER_LEN + ipv4::MIN_HEADER_LEN
            || be16(d, 12) != ETHERTYPE_IPV4
            || d[ethernet::HEADER_LEN] != 0x45
            || (self.params.check_dst_mac && !handed && d[..6] != self.ports[from as usize].mac)
        {
            return None;
        }
        let p = parse_l3(buf).ok()?;
        let d = buf.data();
        let mtu = self.ports[0].mtu.min(self.ports[1].mtu);
        if be16(d, p.l3 + 6) & (ipv4::FLAG_MF | 0x1fff) != 0
            || d[p.l3 + 8] <= 1
            || p.end - p.l3 > usize::from(mtu)
        {
            return None;
        }
        // The address checks, unless the two addresses are ordinary for certain
        // (crate::ordinary: most outbound frames).
        if from != Side::Inside || !self.ordinary.outbound(p.src, p.dst) {
            if self.ports[0].owns(p.dst)
                || self.ports[1].owns(p.dst)
                || martian(p.src)
                || martian(p.dst)
                || p.dst == u32::MAX
            {
                return None;
            }
            self.screen_addrs(&p, from).ok()?;
            let prm = &self.params;
            let special = match from {
                Side::Inside => {
                    in_any(&prm.identity, p.src)
                        || in_any(&prm.exclude, p.dst)
                        || self.nat.is_pool_addr(p.dst)
                }
                Side::Outside => in_any(&prm.identity, p.dst),
            };
            if special {
                return None;
            }
        }
        // Without options, screen changes nothing.
        self.screen_rest(buf, &p).ok()?;
        if Self::is_icmp_error(buf, &p) {
            return None;
        }
        let (tuple, flags, _) = Self::tuple(buf, &p, from == Side::Inside).ok()?;
        if crate::nat::portless(tuple.proto) {
            // Address only: the full path (its protocol policy, its owner).
            return None;
        }
        if self.nat.pool.layout.workers > 1 && !handed {
            if let Some(w) = self.owner(buf, &p, from) {
                if w != self.nat.pool.worker() {
                    return None;
                }
            }
        }
        Some(Plain {
            l4: p.l4 as u16,
            end: p.end as u16,
            tuple,
            flags,
        })
    }

    /// For a frame [`Worker::classify`] left out: the tuple of the session the full
    /// path may still translate it through (and so move that session's state): an
    /// IPv4 TCP or UDP packet or ICMP query that is not a later fragment (a first
    /// fragment, one with IP options, one to a group MAC). None for the rest. A
    /// superset is harmless: it only sends a plain frame of the same session after
    /// it in the burst the slow way too.
    #[inline]
    pub(crate) fn touching(&self, buf: &B, from: Side, handed: bool) -> Option<Tuple> {
        let d = buf.data();
        let l3 = ethernet::HEADER_LEN;
        if d.len() < l3 + ipv4::MIN_HEADER_LEN
            || be16(d, 12) != ETHERTYPE_IPV4
            || be16(d, l3 + 6) & 0x1fff != 0
            || d[l3 + 8] <= 1
            || (self.params.check_dst_mac
                && !handed
                && !ethernet::is_multicast(&ethernet::Frame::new_unchecked(d).dst())
                && d[..6] != self.ports[from as usize].mac)
            || !ipv4::Packet::new_checked(&d[l3..]).is_ok_and(|ip| ip.checksum_ok())
        {
            // Dropped or answered before any translation.
            return None;
        }
        let l4 = l3 + usize::from(d[l3] & 0x0f) * 4;
        let (proto, src, dst) = (
            d[l3 + 9],
            crate::wire::be32(d, l3 + 12),
            crate::wire::be32(d, l3 + 16),
        );
        let t = |sport, dport| Tuple {
            proto,
            src,
            dst,
            sport,
            dport,
        };
        match proto {
            ipv4::PROTO_TCP | ipv4::PROTO_UDP if d.len() >= l4 + 4 => {
                Some(t(be16(d, l4), be16(d, l4 + 2)))
            }
            ipv4::PROTO_ICMP if d.len() >= l4 + 8 && icmp::is_query(d[l4]) => {
                let id = be16(d, l4 + 4);
                Some(if from == Side::Inside {
                    t(id, 0)
                } else {
                    t(0, id)
                })
            }
            _ => None,
        }
    }

    /// Stage 4 of a burst: translates a plain frame ([`Worker::classify`]) whose
    /// session `i` the lookup found, exactly as [`Worker::process`] does with it
    /// (counters included), and answers where it goes. None, with nothing changed:
    /// the session needs more than its translation ([`Nat::plain`]) or the next hop
    /// is unknown; the frame then goes the full way.
    #[inline]
    pub(crate) fn translate(
        &mut self,
        buf: &mut B,
        pl: &Plain,
        from: Side,
        i: u32,
        stage: &mut TranslateStage,
    ) -> Option<Verdict> {
        let (now, handed) = (stage.now, stage.handed);
        let s = self.nat.plain(i)?;
        if crate::nat::hosts6::is_host(s.in_addr) {
            // A NAT64 session: translated to IPv6 by the full path.
            return None;
        }
        let outbound = from == Side::Inside;
        let out = from.other();
        let t = &pl.tuple;
        let dst = if outbound { t.dst } else { s.in_addr };
        let port = &self.ports[out as usize];
        let hop = port.next_hop(dst);
        let known = if stage.hop == Some((hop, out)) {
            stage.known
        } else {
            let known = self.neighbors.lookup_due(hop, now);
            (stage.hop, stage.known) = (Some((hop, out)), known);
            known
        };
        let mac = known.map(|(m, _)| m).or(self.params.unresolved_mac)?;
        let src_mac = port.mac;
        self.nat.touch(i, pl.flags, outbound, now);
        let p = pl.parsed();
        if outbound {
            let (new, old) = ((s.out_addr, s.out_port), (s.in_addr, s.in_port));
            rewrite_forward(buf, &p, true, new, old);
            self.counters.in2out.inc();
        } else {
            let (new, old) = ((s.in_addr, s.in_port), (s.out_addr, s.out_port));
            rewrite_forward(buf, &p, false, new, old);
            self.counters.out2in.inc();
        }
        ethernet::Frame::new_unchecked(buf.data_mut()).set_addrs(&src_mac, &mac);
        if known.is_some_and(|(_, due)| due) {
            self.request(hop, out, now);
        }
        if handed {
            self.counters.handoff_in.inc();
        } else {
            self.counters.rx[from as usize].inc();
        }
        self.counters.tx[out as usize].inc();
        Some(Verdict::Tx(out))
    }

    /// Gives the worker the inside port's IPv6 neighbour table (the control lcore's,
    /// [`crate::nd::Nd::neighbors`]), where NAT64 finds its hosts' MACs.
    pub fn set_neighbors6(&mut self, n: Option<Arc<crate::neighbors::Neighbors6>>) {
        self.neighbors6 = n;
    }

    /// Creation stage a's share of the worker ([`crate::vector`]): the neighbour slot
    /// of a new flow's inside source, which its creation checks (the gleaning of
    /// subscribers' MACs): a miss in a table as large as the subscribers' otherwise.
    #[inline]
    pub(crate) fn prefetch_source(&self, src: u32) {
        self.neighbors.prefetch(src);
    }

    /// A received frame's VLAN ([`crate::vlan::ingress`]: its tags stripped), or the
    /// drop (counted, with the frame as received).
    #[inline]
    pub(crate) fn vlan_in(&mut self, buf: &mut B, from: Side) -> Result<u8, DropReason> {
        let r = crate::vlan::ingress(&self.ports[from as usize], from, buf, &self.counters);
        if let Err(reason) = r {
            self.counters.rx[from as usize].inc();
            self.counters.count_drop(reason);
        }
        r
    }

    /// Pushes the VLAN tags a frame leaving on `side` needs ([`crate::vlan::egress`]).
    #[inline]
    pub fn vlan_out<F: PacketBuf>(&self, buf: &mut F, side: Side) -> Result<(), DropReason> {
        crate::vlan::egress(&self.ports[side as usize], side, buf, &self.counters)
    }

    /// HA role: a standby forwards nothing (its received frames are dropped and
    /// counted, `ha_standby`) and creates nothing; its tables are what the active
    /// syncs. Promoting gives every synced session a fresh timer.
    pub fn set_standby(&mut self, standby: bool, now: u32) {
        if self.standby && !standby {
            self.nat.sync_promote(now);
            self.contract_streams.promote(&mut self.nat, &self.counters);
        }
        self.nat.sync_hold(standby);
        self.standby = standby;
    }

    /// Takes an HA role at `now` ([`Worker::set_standby`]) with its sync journals:
    /// an active journals its session changes and its ALG connections' sequence
    /// adjustments for the standby; a standby journals none.
    pub fn take_role(&mut self, standby: bool, now: u32) {
        self.set_standby(standby, now);
        self.nat.sync_journal(!standby);
        self.alg_control().sync_journal(!standby);
    }

    /// Writes into `buf` a gratuitous ARP (a broadcast request for `ip` from `ip`)
    /// out of `side`: a new HA active takes the addresses it answers for.
    pub fn build_garp(&mut self, side: Side, ip: u32, buf: &mut B) -> Verdict {
        self.build_arp(side, ip, ip, buf)
    }

    /// The `i`-th address a new HA active announces on `side` (gratuitous ARP): the
    /// port's own first and, outside, then the pool's (proxy ARP answers for them).
    pub fn announced(&self, side: Side, i: usize) -> Option<u32> {
        match (i, side) {
            (0, _) => Some(self.ports[side as usize].addr()),
            (_, Side::Outside) => self.nat.pool.addresses().get(i - 1).copied(),
            _ => None,
        }
    }

    /// Whether this worker is an HA standby.
    #[inline]
    pub fn standby(&self) -> bool {
        self.standby
    }

    /// The worker's NAT tables (for inspection).
    pub fn nat(&self) -> &Nat {
        &self.nat
    }

    /// The worker's counters.
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    /// Neighbours learned from inside hosts' packets since the last call (address, MAC),
    /// for the control lcore to record.
    pub fn take_gleaned(&mut self) -> &[(u32, Mac)] {
        let n = std::mem::take(&mut self.glean_len);
        &self.glean[..n]
    }

    fn glean_source<F: PacketBuf>(&mut self, buf: &F, src: u32, now: u32) {
        let port = &self.ports[Side::Inside as usize];
        if !port.on_link(src) || self.neighbors.lookup(src).is_some() {
            return;
        }
        if self.params.unresolved_mac.is_none() {
            // A packet's source MAC proves nothing (any subscriber can send with
            // another's address): ask, and learn only the answer.
            self.request(src, Side::Inside, now);
            return;
        }
        // Replay and pcap mode (nobody answers ARP): the frame's source MAC.
        if self.glean_len < self.glean.len() {
            if let Ok(f) = ethernet::Frame::new_checked(buf.data()) {
                let mac = f.src();
                if !ethernet::is_multicast(&mac)
                    && !self.glean[..self.glean_len].iter().any(|g| g.0 == src)
                {
                    self.glean[self.glean_len] = (src, mac);
                    self.glean_len += 1;
                }
            }
        }
    }

    /// Processes one frame received on `from` at time `now` (seconds).
    pub fn process(&mut self, buf: &mut B, from: Side, now: u32) -> Verdict {
        // (The clock of the frames this one tags for the ALG stream engine.)
        self.alg_now = now;
        let mut v = self.process_inner(buf, from, now);
        if v == Verdict::Hold && self.alg_tag.is_some() && self.pending_neigh.take().is_some() {
            // A frame the ALG stream engine must rewrite gets its MACs before it goes
            // there: it does not wait (its sender retransmits; the request is out).
            self.alg_tag = None;
            v = Verdict::Drop(DropReason::NeighborUnresolved);
        }
        if let Some(tag) = self.alg_tag.take() {
            if let Verdict::Tx(side) = v {
                v = if tag.push(buf) {
                    Verdict::Alg(side)
                } else {
                    Verdict::Drop(DropReason::TooBig)
                };
            }
        }
        self.count_verdict(v);
        v
    }

    /// Counts where a processed frame goes.
    #[inline]
    fn count_verdict(&self, v: Verdict) {
        match v {
            Verdict::Drop(r) => self.counters.count_drop(r),
            Verdict::Tx(side) => self.counters.tx[side as usize].inc(),
            Verdict::Handoff(..) => self.counters.handoff_out.inc(),
            // Counted as sent when the ALG stream engine sends it.
            Verdict::Alg(_) | Verdict::Control | Verdict::Hold => {}
        }
    }

    /// The burst path's creation stage, commit ([`crate::vector`]): processes a plain
    /// outbound frame ([`Worker::classify`], received, not handed over) whose session
    /// lookup missed, with its session created by [`Nat::create_commit`] (`h`: its
    /// carried hashes), exactly as [`Worker::process`] does with it: no re-parse and
    /// no second lookup. The caller makes sure that no session of its tuple was
    /// created since the lookup and that the new session gets no ALG
    /// ([`Nat::creates_plain`]).
    #[inline]
    pub(crate) fn create(
        &mut self,
        buf: &mut B,
        pl: &Plain,
        h: crate::nat::CreateHashes,
        now: u32,
    ) -> Verdict {
        self.counters.rx[Side::Inside as usize].inc();
        let t = &pl.tuple;
        let p = pl.parsed();
        // As `tuple` says: an ICMP query creates a session only if it is a request.
        let may_create = t.proto != ipv4::PROTO_ICMP || icmp::is_request(buf.data()[p.l4]);
        let v = match self
            .nat
            .create_commit(t, pl.flags, may_create, h, Some(0), now)
        {
            Ok(i) => {
                self.glean_source(buf, p.src, now);
                let s = *self.nat.session(i);
                if self.held_len > 0 && t.proto == ipv4::PROTO_TCP {
                    self.forget_held(s.rem_addr, s.rem_port, s.out_addr, s.out_port);
                }
                let (new, old) = ((s.out_addr, s.out_port), (s.in_addr, s.in_port));
                rewrite_forward(buf, &p, true, new, old);
                self.counters.in2out.inc();
                self.l2_out(buf, Side::Outside, t.dst, now)
            }
            Err(r) => self.refuse(buf, &p, r, now),
        };
        self.count_verdict(v);
        v
    }

    /// Replaces the per-packet settings (replay and tests).
    pub fn set_params(&mut self, params: PipelineParams) {
        self.inside_unreserved = unreserved(&params.inside);
        self.params = params;
        self.rebuild_ordinary();
    }

    /// Takes the settings of a reload, between bursts: the per-packet ones and the
    /// NAT's ([`Nat::reconfigure`]). Returns the ones replaced, for the caller to drop
    /// off the worker. The inside prefixes do not change live.
    pub fn reconfigure(
        &mut self,
        params: PipelineParams,
        nat: crate::nat::NatParams,
        now: u32,
    ) -> (PipelineParams, crate::nat::NatParams) {
        let old = std::mem::replace(&mut self.params, params);
        let nat = self.nat.reconfigure(nat, now);
        self.rebuild_ordinary();
        (old, nat)
    }

    /// Processes a frame another worker handed over, as received on `from`: its L2
    /// header was checked there, and it is never handed on again.
    pub fn process_handed(&mut self, buf: &mut B, from: Side, now: u32) -> Verdict {
        self.handed = true;
        self.counters.handoff_in.inc();
        let v = self.process(buf, from, now);
        self.handed = false;
        v
    }

    /// The worker that must process this frame: inside, the one that owns the
    /// subscriber (all its state lives on one worker: under deterministic allocation
    /// the owner of its port range, else the queue its packets reach on a steered
    /// port, else a hash of its address); outside, the one that owns the
    /// destination port ([`crate::nat::pool::Pool::owner`]: the queue its replies
    /// reach on a steered port, else the port's block). None: any worker. On steered
    /// ports a frame the device delivered as configured is always its owner's.
    fn owner(&self, buf: &B, p: &Parsed, from: Side) -> Option<u16> {
        let workers = self.nat.pool.layout.workers;
        match from {
            Side::Inside => {
                if in_any(&self.params.identity, p.src) || in_any(&self.params.exclude, p.dst) {
                    return None;
                }
                // Address only (and ICMP errors about it): the remote's worker. (Not
                // asked of TCP and UDP, the fast path's.) A PPTP call's GRE: the
                // subscriber's worker, which holds the call.
                if !matches!(p.proto, ipv4::PROTO_TCP | ipv4::PROTO_UDP)
                    && self.gre_call(buf, p).is_none()
                {
                    if let Some(remote) = self.portless_remote(buf, p, from) {
                        return Some(self.nat.portless_owner(remote));
                    }
                }
                if let Some(w) = self.nat.range_owner(p.src) {
                    return Some(w);
                }
                Some(match &self.params.steering {
                    Some(s) => s.queue_of_addr(p.src),
                    None => (crate::nat::hash32(p.src) % u32::from(workers)) as u16,
                })
            }
            Side::Outside => {
                let d = &buf.data()[p.l4..p.end];
                let ff = ipv4::Packet::new_unchecked(&buf.data()[p.l3..p.end]).flags_frag();
                if ff & 0x1fff != 0 || !self.nat.is_pool_addr(p.dst) {
                    return None;
                }
                // Address only (and ICMP errors about it): no port; the remote's worker.
                let portless = || {
                    self.portless_remote(buf, p, from)
                        .map(|r| self.nat.portless_owner(r))
                };
                let port = match p.proto {
                    ipv4::PROTO_TCP | ipv4::PROTO_UDP if d.len() >= 4 => crate::wire::be16(d, 2),
                    // A PPTP call's GRE: its key is a call ID of the owner's share.
                    crate::nat::PROTO_GRE => match self.gre_call(buf, p) {
                        Some(Ok(call)) => call,
                        Some(Err(_)) => return None,
                        None => return portless(),
                    },
                    ipv4::PROTO_ICMP if d.len() >= 8 && icmp::is_query(d[0]) => {
                        crate::wire::be16(d, 4)
                    }
                    ipv4::PROTO_ICMP if d.len() >= 8 + 20 + 8 && icmp::is_error(d[0]) => {
                        let e = &d[8..];
                        let ihl = usize::from(e[0] & 0x0f) * 4;
                        if e.len() < ihl + 8 {
                            return None;
                        }
                        match e[9] {
                            ipv4::PROTO_TCP | ipv4::PROTO_UDP => crate::wire::be16(e, ihl),
                            ipv4::PROTO_ICMP => crate::wire::be16(e, ihl + 4),
                            _ => return portless(),
                        }
                    }
                    ipv4::PROTO_TCP | ipv4::PROTO_UDP | ipv4::PROTO_ICMP => return None,
                    _ => return portless(),
                };
                Some(self.nat.pool.owner(p.dst, port).unwrap_or(0))
            }
        }
    }

    /// For a GRE version 1 frame while the PPTP ALG is on: the call ID its key names,
    /// or [`DropReason::GreNoCall`] when it names none; None for every other frame
    /// (plain GRE is translated by address alone). A later fragment names none.
    #[inline]
    fn gre_call<F: PacketBuf>(&self, buf: &F, p: &Parsed) -> Option<Result<u16, DropReason>> {
        if p.proto != crate::nat::PROTO_GRE || !self.nat.pptp_on() {
            return None;
        }
        if ipv4::Packet::new_unchecked(&buf.data()[p.l3..p.end]).flags_frag() & 0x1fff != 0 {
            // A later fragment: no GRE header (it follows its first fragment).
            return None;
        }
        crate::nat::gre_call_id(buf.data().get(p.l4..p.end)?)
            .map(|c| c.ok_or(DropReason::GreNoCall))
    }

    /// The remote address of a frame of an address-only session
    /// ([`crate::nat::portless`]), or of an ICMP error about one (the quoted
    /// packet's remote), that came in `from`; None for every other frame.
    fn portless_remote(&self, buf: &B, p: &Parsed, from: Side) -> Option<u32> {
        let (proto, src, dst, quoted) = if Self::is_icmp_error(buf, p) {
            let e = embedded(buf, p).ok()?;
            (e.proto, e.src, e.dst, true)
        } else {
            (p.proto, p.src, p.dst, false)
        };
        if !crate::nat::portless(proto) {
            return None;
        }
        // The remote is the destination of what the inside sends, the source of what
        // comes in; a quoted packet went the other way.
        Some(if (from == Side::Inside) != quoted {
            dst
        } else {
            src
        })
    }

    /// Takes a frame `process` answered [`Verdict::Hold`] for.
    pub fn hold(&mut self, buf: B) {
        if let Some((hop, side, now)) = self.pending_neigh.take() {
            self.wait(hop, side, now, buf);
            return;
        }
        if let Some((key, now)) = self.pending_hold6.take() {
            let bytes = buf.len();
            match self.frags6.hold(key, buf, 0, now, bytes, false) {
                Ok(()) => self.counters.fragments_held.inc(),
                Err((b, r)) => {
                    self.counters.count_drop(frag_reason(r));
                    drop(b);
                }
            }
            return;
        }
        let Some((key, from, now, reasm)) = self.pending_hold.take() else {
            self.counters.count_drop(DropReason::Fragment);
            return;
        };
        let bytes = buf.len();
        if reasm {
            let end = frag_end(&buf);
            let refused = if end > frag::MAX_REASSEMBLED {
                Some(DropReason::ReassemblyTooBig)
            } else {
                self.frags.reasm_room(&key, bytes).err().map(frag_reason)
            };
            if let Some(r) = refused {
                self.counters.count_drop(r);
                drop(buf);
                self.drop_datagram(key, now);
                return;
            }
        }
        match self.frags.hold(key, buf, from as u8, now, bytes, reasm) {
            Ok(()) => {
                self.counters.fragments_held.inc();
                if reasm {
                    self.try_reassemble(key, now);
                }
            }
            Err((b, r)) => {
                self.counters.count_drop(frag_reason(r));
                drop(b);
                if reasm {
                    self.drop_datagram(key, now);
                }
            }
        }
    }

    /// Fragments of a datagram reassembled for an ALG, translated and tagged: give
    /// each to the ALG stream engine ([`Worker::alg_frame`]) to go out on its side.
    pub fn take_alg(&mut self) -> Option<(B, Side)> {
        self.to_alg.pop()
    }

    /// The first fragment of an ALG session's datagram: the ALG reads whole messages,
    /// so its fragments (those held already, and the later ones) are held until the
    /// datagram is whole.
    fn start_reassembly(&mut self, key: FragKey, from: Side, now: u32) -> Verdict {
        let t = frag::Translation::mark(frag::REASSEMBLE, 0, now);
        if let Err(r) = self.frags.record(key, t) {
            return Verdict::Drop(frag_reason(r));
        }
        self.frags.mark_reasm(&key);
        self.pending_hold = Some((key, from, now, true));
        Verdict::Hold
    }

    /// Reassembles datagram `key` if all its fragments are held: the whole is
    /// translated as one packet (the ALG's worker part reads it: pinholes, the tag),
    /// then fragmented again into the held buffers, and goes to the ALG stream engine
    /// (tagged) or out (no text to rewrite: TFTP).
    fn try_reassemble(&mut self, key: FragKey, now: u32) {
        let Some(mut whole) = self.scratch.take() else {
            return;
        };
        let mut frames: [&[u8]; frag::MAX_HELD_PER_SOURCE] = [&[]; frag::MAX_HELD_PER_SOURCE];
        let (mut n, mut from) = (0, 0);
        for (b, f) in self.frags.held_of(&key).take(frames.len()) {
            frames[n] = b.data();
            n += 1;
            from = f;
        }
        let got = frag::assemble(&frames[..n], &mut whole, frag::MAX_REASSEMBLED);
        match got {
            frag::Assembly::Incomplete => {}
            frag::Assembly::Whole(_) => {
                self.counters.fragments_reassembled.inc();
                let side = if from == 0 {
                    Side::Inside
                } else {
                    Side::Outside
                };
                self.send_reassembled(&mut whole, key, side, now);
            }
            frag::Assembly::TooBig => {
                self.counters.count_drop(DropReason::ReassemblyTooBig);
                self.drop_datagram(key, now);
            }
            frag::Assembly::Bad => self.drop_datagram(key, now),
        }
        self.scratch = Some(whole);
    }

    /// Translates a reassembled datagram received on `from` and sends it on, in the
    /// buffers of its fragments.
    fn send_reassembled(
        &mut self,
        whole: &mut crate::buf::VecBuf,
        key: FragKey,
        from: Side,
        now: u32,
    ) {
        let p = match parse_l3(whole) {
            Ok(p) => p,
            Err(_) => return self.drop_datagram(key, now),
        };
        if whole.data()[p.l3 + 8] <= 1 {
            return self.drop_datagram(key, now);
        }
        // (Its ALG's edits are the ALG stream engine's, which cuts it again.)
        self.reassembled = true;
        let done = match from {
            Side::Inside => self.in2out(whole, &p, now),
            Side::Outside => self.out2in(whole, &p, now).map(|()| Side::Inside),
        };
        self.reassembled = false;
        let hairpin = self.hairpin_owner.take().is_some();
        let out = match done {
            Ok(side) if !hairpin => side,
            refused => {
                // Refused (counted once, its fragments `alg_fragment`), or hairpinned
                // to another worker (not for reassembled datagrams).
                self.counters
                    .count_drop(refused.err().unwrap_or(DropReason::Fragment));
                self.alg_tag = None;
                return self.drop_datagram(key, now);
            }
        };
        let tag = self.alg_tag.take();
        // (An ALG's inline rewrite of the datagram may have changed its length.)
        let p = Parsed {
            end: ip_end(whole.data(), p.l3),
            ..p
        };
        let dst = {
            let mut ip = ipv4::Packet::new_unchecked(&mut whole.data_mut()[p.l3..p.end]);
            ip.decrement_ttl();
            ip.dst()
        };
        let mtu = self.ports[0].mtu.min(self.ports[1].mtu);
        let id = self.frags.new_id();
        let mut list = std::mem::take(&mut self.releasing);
        self.frags.take_held(&key, |b| list.push(b));
        let k = match frag::refragment(&whole.data()[..p.end], &mut list, usize::from(mtu), id) {
            Ok(k) => k,
            Err(_) => {
                // More fragments than it came in (a smaller MTU on the way out).
                self.counters.drops[DropReason::ReassemblyTooBig as usize].add(list.len() as u64);
                list.clear();
                self.releasing = list;
                return;
            }
        };
        list.truncate(k);
        if k > 1 && tag.is_none() {
            self.counters.fragments_refragmented.inc();
        }
        for (i, mut b) in list.drain(..).enumerate() {
            match (self.l2_out(&mut b, out, dst, now), tag) {
                (Verdict::Tx(side), Some(mut t)) => {
                    t.frag = i as u8;
                    t.frags = k as u8;
                    if t.push(&mut b) {
                        self.to_alg.push((b, side));
                    } else {
                        self.counters.count_drop(DropReason::TooBig);
                    }
                }
                (Verdict::Tx(side), None) => {
                    self.counters.tx[side as usize].inc();
                    self.ready.push((b, side));
                }
                (Verdict::Hold, None) => self.hold(b),
                (Verdict::Hold, Some(_)) => {
                    // As for any frame the ALG stream engine rewrites: no waiting.
                    self.pending_neigh = None;
                    self.counters.count_drop(DropReason::NeighborUnresolved);
                }
                (Verdict::Drop(r), _) => self.counters.count_drop(r),
                _ => {}
            }
        }
        self.releasing = list;
    }

    /// Held fragments released and translated by the last `process`, ready to send.
    pub fn take_ready(&mut self) -> Option<(B, Side)> {
        if self.ready.is_empty() {
            None
        } else {
            Some(self.ready.remove(0))
        }
    }

    /// Held fragments released by the last `process` to the worker that owns their
    /// datagram: hand each to worker `.1` as received on `.2`.
    pub fn take_handoff(&mut self) -> Option<(B, u16, Side)> {
        self.handing.pop()
    }

    /// With several workers, the worker this frame goes to, if not this one. Inside,
    /// the subscriber's owner. Outside, a fragment goes first to its datagram's
    /// director ([`FragKey::director`]), which hands it on to the owner of the
    /// destination port once the first fragment has named it (holding later
    /// fragments that come before); anything else to the owner of its port.
    fn steer(
        &mut self,
        buf: &B,
        p: &Parsed,
        key: FragKey,
        from: Side,
        now: u32,
    ) -> Option<Verdict> {
        let me = self.nat.pool.worker();
        let ff = ipv4::Packet::new_unchecked(&buf.data()[p.l3..p.end]).flags_frag();
        // Fragments from outside, and GRE fragments from inside while the PPTP ALG is
        // on (a first fragment of a call's GRE goes to the subscriber's worker, plain
        // GRE's to the remote's; a later one cannot tell), meet at their director.
        let directed =
            from == Side::Outside || (p.proto == crate::nat::PROTO_GRE && self.nat.pptp_on());
        if directed && ff & (ipv4::FLAG_MF | 0x1fff) != 0 {
            let d = key.director(self.nat.pool.layout.workers);
            if d != me {
                // Handed by the director: this worker owns the datagram.
                return (!self.handed).then_some(Verdict::Handoff(d, from));
            }
            if ff & 0x1fff != 0 {
                // A later fragment: its record says where it goes (or it is held).
                return None;
            }
            let o = self.owner(buf, p, from).unwrap_or(me);
            if o == me {
                return None;
            }
            let t = frag::Translation::handed(o, from as u8, now);
            if let Err(r) = self.frags.record(key, t) {
                return Some(Verdict::Drop(frag_reason(r)));
            }
            self.release_held(key, t, now);
            return Some(Verdict::Handoff(o, from));
        }
        if self.handed {
            return None;
        }
        let w = self.owner(buf, p, from)?;
        (w != me).then_some(Verdict::Handoff(w, from))
    }

    /// A fragment other than the first: translated like its datagram's first fragment,
    /// or held until that one comes.
    fn later_fragment(
        &mut self,
        buf: &mut B,
        p: &Parsed,
        key: FragKey,
        from: Side,
        now: u32,
    ) -> Verdict {
        if let Some(t) = self.frags.lookup(&key, now) {
            if t.out == frag::REASSEMBLE {
                self.pending_hold = Some((key, from, now, true));
                return Verdict::Hold;
            }
            return self.apply_fragment(buf, p, &t, now);
        }
        if let Err(r) = self.frags.can_hold(&key) {
            return Verdict::Drop(frag_reason(r));
        }
        self.pending_hold = Some((key, from, now, false));
        Verdict::Hold
    }

    fn apply_fragment(
        &mut self,
        buf: &mut B,
        p: &Parsed,
        t: &frag::Translation,
        now: u32,
    ) -> Verdict {
        if t.out == frag::DROPPED {
            return Verdict::Drop(DropReason::AlgFragment);
        }
        if t.out == frag::HANDED {
            let from = if t.first_end == 0 {
                Side::Inside
            } else {
                Side::Outside
            };
            return Verdict::Handoff(t.id, from);
        }
        if t.out == frag::NAT64 {
            let ip = ipv4::Packet::new_unchecked(&buf.data()[p.l3..p.end]);
            if ip.frag_offset() < usize::from(t.first_end) {
                return Verdict::Drop(DropReason::Nat64FragmentOverlap);
            }
            self.counters.fragments_translated.inc();
            return self.nat64_in(buf, p, t.dst, now);
        }
        if buf.data()[p.l3 + 8] <= 1 {
            return Verdict::Drop(DropReason::TtlExpired);
        }
        let mut ip = ipv4::Packet::new_unchecked(&mut buf.data_mut()[p.l3..p.end]);
        ip.set_src(t.src);
        ip.set_dst(t.dst);
        ip.set_ident(t.id);
        ip.decrement_ttl();
        let out = if t.out == 0 {
            Side::Inside
        } else {
            Side::Outside
        };
        self.counters.fragments_translated.inc();
        self.l2_out(buf, out, t.dst, now)
    }

    /// After the first fragment of `key` was translated: record the translation for the
    /// rest, give the datagram a new identifier, and release what was held for it.
    /// Without room for the record the first fragment is refused too (the reason
    /// returned): the datagram could not be reassembled anyway.
    fn first_fragment_done(
        &mut self,
        buf: &mut B,
        p: &Parsed,
        key: FragKey,
        out: Side,
        now: u32,
    ) -> Result<(), DropReason> {
        let id = self.frags.new_id();
        let ip = ipv4::Packet::new_unchecked(&buf.data()[p.l3..p.end]);
        let t = frag::Translation {
            src: ip.src(),
            dst: ip.dst(),
            id,
            out: out as u8,
            until: now + frag::TIMEOUT,
            first_end: 0,
        };
        self.frags.record(key, t).map_err(frag_reason)?;
        ipv4::Packet::new_unchecked(&mut buf.data_mut()[p.l3..p.end]).set_ident(id);
        self.release_held(key, t, now);
        Ok(())
    }

    /// The fragments of an ALG's datagram (`key`) are all dropped: its first
    /// fragment was, and the later ones (held or to come) follow.
    fn drop_datagram(&mut self, key: FragKey, now: u32) {
        let t = frag::Translation::mark(frag::DROPPED, 0, now);
        if self.frags.record(key, t).is_ok() {
            self.release_held(key, t, now);
        }
    }

    /// Applies translation `t` to the fragments held for `key`.
    fn release_held(&mut self, key: FragKey, t: frag::Translation, now: u32) {
        if t.out <= 1 || t.out == frag::NAT64 {
            self.counters.fragments_translated.inc();
        }
        let mut list = std::mem::take(&mut self.releasing);
        self.frags.take_held(&key, |b| list.push(b));
        for mut b in list.drain(..) {
            let v = match parse_l3(&mut b) {
                Ok(q) => self.apply_fragment(&mut b, &q, &t, now),
                Err(r) => Verdict::Drop(r),
            };
            self.settle(b, v);
        }
        self.releasing = list;
    }

    /// Sends on (through [`Worker::take_ready`], [`Worker::take_handoff`]) or counts a
    /// frame the worker produced outside `process`'s own: a released fragment, a
    /// further fragment of a split packet.
    fn settle(&mut self, b: B, v: Verdict) {
        match v {
            Verdict::Tx(side) => {
                self.counters.tx[side as usize].inc();
                self.ready.push((b, side));
            }
            Verdict::Drop(r) => self.counters.count_drop(r),
            Verdict::Hold => self.hold(b),
            Verdict::Handoff(w, side) => {
                self.counters.handoff_out.inc();
                self.handing.push((b, w, side));
            }
            _ => {}
        }
    }

    /// A PCP or NAT-PMP request to the inside address's server port: served here by
    /// the worker that owns the subscriber (handed to it if another received it), and
    /// passed to the control lcore with the decision to be answered. None: not one.
    fn pcp_request(&mut self, buf: &mut B, p: &Parsed, from: Side, now: u32) -> Option<Verdict> {
        use crate::counters::PcpOutcome;
        let params = self.params.pcp?;
        let d = buf.data();
        // The server is the address of the subscriber's own interface (untagged or
        // its VLAN: ingress checked that the source belongs there).
        if p.proto != ipv4::PROTO_UDP
            || p.dst != self.ports[Side::Inside as usize].addr_for(p.src)
            || p.end < p.l4 + 8
            || crate::wire::be16(d, p.l4 + 2) != params.listen
        {
            return None;
        }
        let ff = ipv4::Packet::new_unchecked(&d[p.l3..p.end]).flags_frag();
        let refuse = |c: &WorkerCounters, o| {
            crate::pcp::count(c, o);
            Some(Verdict::Drop(DropReason::PcpDropped))
        };
        if from != Side::Inside || !in_any(&self.params.inside, p.src) {
            return refuse(&self.counters, PcpOutcome::NotInside);
        }
        if ff & (ipv4::FLAG_MF | 0x1fff) != 0 {
            return refuse(&self.counters, PcpOutcome::Dropped);
        }
        let Ok(req) = crate::wire::pcp::parse(&d[p.l4 + 8..p.end]) else {
            return refuse(&self.counters, PcpOutcome::Dropped);
        };
        let internal = crate::pcp::internal_addr(&req, p.src);
        if self.nat.pool.layout.workers > 1 && !self.handed {
            let q = Parsed {
                src: internal,
                ..*p
            };
            if let Some(w) = self.owner(buf, &q, Side::Inside) {
                if w != self.nat.pool.worker() {
                    return Some(Verdict::Handoff(w, from));
                }
            }
        }
        if !self.pcp_rate.allow(p.src, now) {
            return refuse(&self.counters, PcpOutcome::RateLimited);
        }
        let (decision, outcome) = crate::pcp::serve(&mut self.nat, &params, &req, p.src, now);
        crate::pcp::count(&self.counters, outcome);
        Some(if decision.push(buf) {
            Verdict::Alg(Side::Inside)
        } else {
            Verdict::Drop(DropReason::TooBig)
        })
    }

    fn process_inner(&mut self, buf: &mut B, from: Side, now: u32) -> Verdict {
        // A frame handed over by another worker was counted received by that one.
        if !self.handed {
            self.counters.rx[from as usize].inc();
        }
        let frame = match ethernet::Frame::new_checked(buf.data()) {
            Ok(f) => f,
            Err(_) => return Verdict::Drop(DropReason::EthTruncated),
        };
        let dst_mac = frame.dst();
        if self.params.check_dst_mac
            && !self.handed
            && !ethernet::is_multicast(&dst_mac)
            && dst_mac != self.ports[from as usize].mac
        {
            return Verdict::Drop(DropReason::EthOtherHost);
        }
        match frame.ethertype() {
            ETHERTYPE_IPV4 => {}
            ETHERTYPE_ARP => {
                let src = frame.src();
                return if self.arp_allowed(&src, now) {
                    Verdict::Control
                } else {
                    Verdict::Drop(DropReason::ArpRateLimited)
                };
            }
            ETHERTYPE_IPV6 if from == Side::Inside => return self.ipv6_in(buf, now),
            _ => return Verdict::Drop(DropReason::EthUnsupported),
        }
        let p = match parse_l3(buf) {
            Ok(p) => p,
            Err(r) => return Verdict::Drop(r),
        };
        if self.ports[0].owns(p.dst) || self.ports[1].owns(p.dst) {
            if let Some(v) = self.pcp_request(buf, &p, from, now) {
                return v;
            }
            return Verdict::Control;
        }
        if martian(p.src) || martian(p.dst) || p.dst == u32::MAX {
            return Verdict::Drop(DropReason::Ipv4Martian);
        }
        if let Err(r) = self.screen(buf, &p, from) {
            return Verdict::Drop(r);
        }
        let (flags_frag, ident) = {
            let ip = ipv4::Packet::new_unchecked(&buf.data()[p.l3..]);
            (ip.flags_frag(), ip.ident())
        };
        let fragment = flags_frag & (ipv4::FLAG_MF | 0x1fff) != 0;
        let key = FragKey {
            src: p.src,
            dst: p.dst,
            id: ident,
            proto: p.proto,
        };
        if self.nat.pool.layout.workers > 1 {
            if let Some(v) = self.steer(buf, &p, key, from, now) {
                return v;
            }
        }
        if flags_frag & 0x1fff != 0 {
            return self.later_fragment(buf, &p, key, from, now);
        }
        let p = Parsed {
            first_fragment: fragment,
            ..p
        };
        let ttl = buf.data()[p.l3 + 8];
        if ttl <= 1 {
            return self.icmp_error(
                buf,
                &p,
                from,
                icmp::TIME_EXCEEDED,
                0,
                0,
                now,
                DropReason::TtlExpired,
            );
        }
        // Too big for the way out (both ports' MTUs bound every path): with DF, tell the
        // sender the MTU (RFC 1191); without, drop (cgnat does not fragment).
        let mtu = self.ports[from.other() as usize]
            .mtu
            .min(self.ports[from as usize].mtu);
        if p.end - p.l3 > usize::from(mtu) {
            if flags_frag & ipv4::FLAG_DF != 0 {
                return self.icmp_error(
                    buf,
                    &p,
                    from,
                    icmp::DEST_UNREACHABLE,
                    icmp::CODE_FRAG_NEEDED,
                    mtu,
                    now,
                    DropReason::TooBig,
                );
            }
            return Verdict::Drop(DropReason::TooBig);
        }
        let out = match from {
            Side::Inside if in_any(&self.params.identity, p.src) => {
                self.counters.excluded.inc();
                Side::Outside
            }
            Side::Outside if in_any(&self.params.identity, p.dst) => {
                self.counters.excluded.inc();
                Side::Inside
            }
            Side::Inside => {
                if in_any(&self.params.exclude, p.dst) {
                    self.counters.excluded.inc();
                    Side::Outside
                } else {
                    match self.in2out(buf, &p, now) {
                        Ok(_) if self.hairpin_owner.is_some() => {
                            let w = self.hairpin_owner.take().unwrap_or(0);
                            return Verdict::Handoff(w, Side::Outside);
                        }
                        Ok(side) => side,
                        Err(DropReason::AlgFragment) => {
                            return self.start_reassembly(key, from, now);
                        }
                        Err(r) => return self.refuse(buf, &p, r, now),
                    }
                }
            }
            Side::Outside => match self.out2in(buf, &p, now) {
                Ok(()) => Side::Inside,
                Err(DropReason::AlgFragment) => return self.start_reassembly(key, from, now),
                Err(r @ (DropReason::NoMapping | DropReason::Filtered)) => {
                    return self.maybe_hold_syn(buf, &p, r, now)
                }
                Err(r) => return Verdict::Drop(r),
            },
        };
        let to = ipv4::Packet::new_unchecked(&buf.data()[p.l3..]).dst();
        if out == Side::Inside && crate::nat::hosts6::is_host(to) {
            // A NAT64 session's host (a handle), also hairpinned from a NAT44
            // subscriber (RFC 6146 3.8): IPv6 from its mapping under the prefix.
            if from == Side::Inside && fragment {
                // Its later fragments would need the hairpin's second record.
                return Verdict::Drop(DropReason::Nat64Hairpin);
            }
            let first_end = {
                let ip = ipv4::Packet::new_unchecked(&buf.data()[p.l3..p.end]);
                ip.total_len().saturating_sub(ip.header_len())
            };
            let v = self.nat64_in(buf, &p, to, now);
            if fragment && matches!(v, Verdict::Tx(_)) {
                // Its later fragments follow to the host (RFC 6146 3.5), with the
                // datagram's own identification (RFC 7915 4.1).
                let t = frag::Translation {
                    src: p.src,
                    dst: to,
                    id: ident,
                    out: frag::NAT64,
                    until: now + frag::TIMEOUT,
                    first_end: first_end as u16,
                };
                if let Err(r) = self.frags.record(key, t) {
                    return Verdict::Drop(frag_reason(r));
                }
                self.release_held(key, t, now);
            }
            return v;
        }
        if fragment {
            if let Err(r) = self.first_fragment_done(buf, &p, key, out, now) {
                return Verdict::Drop(r);
            }
        }
        // (An ALG's inline rewrite of a datagram may have changed its length.)
        let end = ip_end(buf.data(), p.l3);
        let mut ip = ipv4::Packet::new_unchecked(&mut buf.data_mut()[p.l3..end]);
        ip.decrement_ttl();
        let dst = ip.dst();
        self.l2_out(buf, out, dst, now)
    }

    /// Drops, before anything is held, translated or answered with ICMP, what cgnat
    /// would not forward: from the inside, sources outside nat.inside and nat.identity
    /// and destinations subscribers have no business sending upstream (private,
    /// shared, link-local, the inside prefixes, the ports' subnet broadcasts) unless
    /// allowed, excluded or a pool address (hairpinning); from the outside,
    /// destinations that are neither pool addresses nor identity hosts; ICMP redirects
    /// either way. IPv4 options are blanked (NOPs) or the packet dropped: record route,
    /// timestamp and source route would carry inside addresses out or steer packets.
    /// A few compares for a packet without options to the internet.
    #[inline(always)]
    /// An IPv6 frame from the inside ([`crate::nd::classify`]): neighbour discovery and
    /// echo for the port go to the control lcore, within the source MAC's ARP budget.
    fn ipv6_in(&mut self, buf: &mut B, now: u32) -> Verdict {
        let Some(ifc) = &self.ports[Side::Inside as usize].ipv6 else {
            return Verdict::Drop(DropReason::EthUnsupported);
        };
        match crate::nd::classify(buf.data(), ifc) {
            crate::nd::Class::Control => {
                let src = ethernet::Frame::new_unchecked(buf.data()).src();
                if self.arp_allowed(&src, now) {
                    Verdict::Control
                } else {
                    Verdict::Drop(DropReason::NdRateLimited)
                }
            }
            crate::nd::Class::Forward => match self.params.nat64 {
                Some(x) => {
                    // With several workers, the subscriber's owner translates (the
                    // source's prefix: a host's packet, or an error it sends).
                    // An ICMPv6 error (right after the header) goes by the host its
                    // quoted packet went to: its sender may be a router's address.
                    let d = buf.data();
                    let l4 = ethernet::HEADER_LEN + crate::wire::ipv6::HEADER_LEN;
                    let error = d.get(ethernet::HEADER_LEN + 6)
                        == Some(&crate::wire::ipv6::NH_ICMPV6)
                        && d.get(l4).is_some_and(|t| crate::wire::icmpv6::is_error(*t));
                    let at = if error && d.len() >= l4 + 8 + 40 {
                        l4 + 8 + 24
                    } else {
                        ethernet::HEADER_LEN + 8
                    };
                    let src = d.get(at..at + 16).and_then(|a| a.try_into().ok());
                    if let Some(src) = src.filter(|_| self.nat.pool.layout.workers > 1) {
                        let owner = self.nat.owner6(u128::from_be_bytes(src));
                        if owner != self.nat.pool.worker() && !self.handed {
                            return Verdict::Handoff(owner, Side::Inside);
                        }
                    }
                    self.nat64_out(buf, &x, now)
                }
                None => Verdict::Drop(DropReason::Ipv6NotTranslated),
            },
            crate::nd::Class::Drop(r) => Verdict::Drop(r),
        }
    }

    /// NAT64, IPv6 to IPv4 (RFC 6146 3.5): a TCP, UDP or ICMPv6 echo packet of an
    /// inside host to an address under the `[nat64]` prefix finds or makes its session
    /// (the host stands in as a handle, [`crate::nat::hosts6`]) and leaves translated
    /// (RFC 7915) from the session's pool address and port on the outside port.
    fn nat64_out(&mut self, buf: &mut B, x: &Nat64Params, now: u32) -> Verdict {
        let l3 = ethernet::HEADER_LEN;
        let d = buf.data();
        let Ok(ip) = crate::wire::ipv6::Packet::new_checked(&d[l3..]) else {
            return Verdict::Drop(DropReason::Ipv6Truncated);
        };
        let end = crate::wire::ipv6::HEADER_LEN + ip.payload_len();
        let (src, dst, hop) = (ip.src(), ip.dst(), ip.hop_limit());
        let Some(rem) = x.prefix.extract(&dst) else {
            return Verdict::Drop(DropReason::Nat64NotPrefix);
        };
        if martian(rem) || rem == u32::MAX {
            return Verdict::Drop(DropReason::Ipv4Martian);
        }
        // A pool address: another subscriber's mapping, reached by hairpinning (RFC
        // 6146 3.8) once the packet has its own session's (below).
        let hairpin = self.nat.is_pool_addr(rem);
        if self.ports[0].owns(rem) || self.ports[1].owns(rem) {
            // The appliance's own IPv4 addresses are not reached through NAT64.
            return Verdict::Drop(DropReason::LocalUnsupported);
        }
        let prm = &self.params;
        if hairpin && !prm.hairpinning {
            return Verdict::Drop(DropReason::Nat64Hairpin);
        }
        if !hairpin
            && (!x.prefix.may_embed(rem)
                || reserved(rem)
                || self.bcast.contains(&rem)
                || in_any(&self.inside_unreserved, rem))
            && !in_any(&prm.allow, rem)
        {
            return Verdict::Drop(DropReason::DestinationReserved);
        }
        let Ok(chain) = crate::wire::ipv6::walk(&d[l3..], end) else {
            return Verdict::Drop(DropReason::Ipv6Truncated);
        };
        // A fragment (RFC 7915 5.1.1, RFC 6146 3.5): the first makes or finds the
        // session; the later ones follow it, or wait for it.
        let frag = chain.fragment.and_then(|at| {
            let f = crate::wire::ipv6::FragmentHeader::new_checked(&d[l3 + at..]).ok()?;
            Some((f.frag_offset(), f.more_fragments(), f.ident()))
        });
        let key = frag.map(|(_, _, id)| frag::Key6 {
            src: u128::from_be_bytes(src),
            dst: u128::from_be_bytes(dst),
            id,
            subscriber: self.nat.prefix_of6(u128::from_be_bytes(src)),
        });
        let first_of = match (frag, key) {
            (Some((off, _, _)), Some(k)) if off != 0 => return self.nat64_later6(buf, k, now),
            // An atomic fragment (offset 0, no more) is a whole datagram.
            (Some((_, true, _)), Some(k)) => Some(k),
            _ => None,
        };
        if hairpin && frag.is_some() {
            // A hairpinned datagram in fragments: not followed (its later fragments
            // would need the second translation's record too).
            return Verdict::Drop(DropReason::Nat64Hairpin);
        }
        if first_of.is_some() && chain.next_header == crate::wire::ipv6::NH_ICMPV6 {
            // RFC 7915 1.2 (as to_ipv4 says), before any session is made.
            return Verdict::Drop(DropReason::XlatFragmentedIcmp);
        }
        if hop <= 1 {
            // Before any state is made (RFC 7915 5.1: time exceeded to the host).
            let nh = chain.next_header;
            let (kind, reason) = (crate::wire::icmpv6::TIME_EXCEEDED, DropReason::XlatHopLimit);
            return self.icmp6_error(buf, nh, kind, 0, 0, now, reason);
        }
        let l4 = &d[l3 + chain.offset..(l3 + end).min(d.len())];
        let (proto, sport, dport, flags) = match chain.next_header {
            crate::wire::ipv6::NH_TCP if l4.len() >= tcp::MIN_HEADER_LEN => {
                (ipv4::PROTO_TCP, be16(l4, 0), be16(l4, 2), l4[13])
            }
            crate::wire::ipv6::NH_UDP if l4.len() >= udp::HEADER_LEN => {
                (ipv4::PROTO_UDP, be16(l4, 0), be16(l4, 2), 0)
            }
            crate::wire::ipv6::NH_ICMPV6 if l4.len() >= crate::wire::icmpv6::HEADER_LEN => {
                if crate::wire::icmpv6::is_error(l4[0]) {
                    let at = l3 + chain.offset + crate::wire::icmpv6::HEADER_LEN;
                    return self.nat64_error_out(buf, x, at, src, rem, now);
                }
                if l4[0] != crate::wire::icmpv6::ECHO_REQUEST {
                    return Verdict::Drop(DropReason::Nat64IcmpUnsupported);
                }
                // The identifier plays the port of the inside host.
                (ipv4::PROTO_ICMP, be16(l4, 4), 0, 0)
            }
            crate::wire::ipv6::NH_TCP
            | crate::wire::ipv6::NH_UDP
            | crate::wire::ipv6::NH_ICMPV6 => return Verdict::Drop(DropReason::L4Truncated),
            _ => return Verdict::Drop(DropReason::UnsupportedProtocol),
        };
        let t = Tuple {
            proto,
            src: 0,
            dst: rem,
            sport,
            dport,
        };
        let i = match self
            .nat
            .in2out6(u128::from_be_bytes(src), &t, flags, true, now)
        {
            Ok(i) => i,
            Err(r) if is_limit(r) && self.params.icmp_on_limit => {
                let (kind, code) = (
                    crate::wire::icmpv6::DEST_UNREACHABLE,
                    crate::wire::icmpv6::CODE_ADMIN_PROHIBITED,
                );
                return self.icmp6_error(buf, chain.next_header, kind, code, 0, now, r);
            }
            Err(r) => return Verdict::Drop(r),
        };
        let s = *self.nat.session(i);
        self.ident = self.ident.wrapping_add(1);
        let side = crate::xlat::Side4 {
            src: s.out_addr,
            dst: rem,
            ports: Some((s.out_port, dport)),
        };
        let to4 = crate::xlat::To4 {
            outer: side,
            inner: side,
            ident: self.ident,
        };
        match crate::xlat::to_ipv4(buf, l3, &to4, &x.mtus) {
            Ok(()) => {}
            Err(crate::xlat::Refused::TooBig { mtu }) => {
                // Too big for the outside (RFC 7915 5.1): packet too big to the host.
                let (kind, nh) = (crate::wire::icmpv6::PACKET_TOO_BIG, chain.next_header);
                let r = DropReason::XlatTooBig;
                return self.icmp6_error(buf, nh, kind, 0, u32::from(mtu), now, r);
            }
            Err(r) => return Verdict::Drop(xlat_reason(r)),
        }
        if let Some(c) = crate::alg_contract::contract_of(s.alg()) {
            // On the IPv4 frame, as for NAT44: the session's inside endpoint is the
            // host's handle (TFTP: the server's answer from a new port reaches the
            // host as any NAT64 session's). Its edits there write no address and
            // keep the length (a datagram's that would not are not made: NAT64).
            self.contract_alg(c, buf, i, &s, cgnat_alg::contract::Dir::FromInside, now);
        }
        self.counters.in2out.inc();
        if let Some(key) = first_of {
            let ip = ipv4::Packet::new_unchecked(&buf.data()[l3..]);
            let t = frag::Translation {
                src: s.out_addr,
                dst: rem,
                id: 0,
                out: Side::Outside as u8,
                until: now + frag::TIMEOUT,
                first_end: ip.total_len().saturating_sub(ip.header_len()) as u16,
            };
            if let Err(r) = self.frags6.record(key, t) {
                return Verdict::Drop(frag_reason(r));
            }
            self.counters.fragments_translated.inc();
            self.release_held6(key, t, now);
        }
        if hairpin {
            return self.hairpin4(buf, now);
        }
        self.l2_out(buf, Side::Outside, rem, now)
    }

    /// Hairpinning of a packet translated outbound whose destination is a pool
    /// address (RFC 6146 3.8, RFC 4787 REQ-9): translated once more as if it came
    /// from outside, by the worker that owns the destination's port (handed over
    /// otherwise), to the other subscriber: a NAT64 host gets IPv6 from the source's
    /// pool address under the prefix, a NAT44 subscriber IPv4 from that address.
    fn hairpin4(&mut self, buf: &mut B, now: u32) -> Verdict {
        let p = match parse_l3(buf) {
            Ok(p) => p,
            Err(r) => return Verdict::Drop(r),
        };
        let dport = match Self::tuple(buf, &p, false) {
            Ok((t, _, _)) => t.dport,
            Err(r) => return Verdict::Drop(r),
        };
        self.counters.hairpin.inc();
        let owner = self.nat.pool.owner(p.dst, dport).unwrap_or(0);
        if self.nat.pool.layout.workers > 1 && owner != self.nat.pool.worker() {
            return Verdict::Handoff(owner, Side::Outside);
        }
        if let Err(r) = self.out2in(buf, &p, now) {
            return Verdict::Drop(r);
        }
        let to = ipv4::Packet::new_unchecked(&buf.data()[p.l3..]).dst();
        if crate::nat::hosts6::is_host(to) {
            return self.nat64_in(buf, &p, to, now);
        }
        self.l2_out(buf, Side::Inside, to, now)
    }

    /// NAT64, a host's IPv6 fragment other than the first: translated to IPv4 as its
    /// datagram's first fragment was (its session's pool address; the identification
    /// the low 16 bits of its own, RFC 7915 5.1.1), or held until that one comes.
    fn nat64_later6(&mut self, buf: &mut B, key: frag::Key6, now: u32) -> Verdict {
        if let Some(t) = self.frags6.lookup(&key, now) {
            return self.apply_fragment6(buf, &t, now);
        }
        if let Err(r) = self.frags6.can_hold(&key) {
            return Verdict::Drop(frag_reason(r));
        }
        self.pending_hold6 = Some((key, now));
        Verdict::Hold
    }

    /// Translates a host's later IPv6 fragment by its datagram's record `t`.
    fn apply_fragment6(&mut self, buf: &mut B, t: &frag::Translation, now: u32) -> Verdict {
        let (Some(x), l3) = (self.params.nat64, ethernet::HEADER_LEN) else {
            return Verdict::Drop(DropReason::Ipv6NotTranslated);
        };
        let d = buf.data();
        let end = d
            .len()
            .min(l3 + crate::wire::ipv6::HEADER_LEN + be16(d, l3 + 4) as usize);
        let Some((off, nh)) = crate::wire::ipv6::walk(&d[l3..], end - l3)
            .ok()
            .and_then(|c| {
                let f = crate::wire::ipv6::FragmentHeader::new_checked(&d[l3 + c.fragment?..]);
                Some((f.ok()?.frag_offset(), c.next_header))
            })
        else {
            return Verdict::Drop(DropReason::Ipv6Truncated);
        };
        if off < usize::from(t.first_end) {
            return Verdict::Drop(DropReason::Nat64FragmentOverlap);
        }
        let side = crate::xlat::Side4 {
            src: t.src,
            dst: t.dst,
            ports: None,
        };
        let to4 = crate::xlat::To4 {
            outer: side,
            inner: side,
            ident: 0,
        };
        match crate::xlat::to_ipv4(buf, l3, &to4, &x.mtus) {
            Ok(()) => {}
            Err(crate::xlat::Refused::TooBig { mtu }) => {
                let (kind, r) = (crate::wire::icmpv6::PACKET_TOO_BIG, DropReason::XlatTooBig);
                return self.icmp6_error(buf, nh, kind, 0, u32::from(mtu), now, r);
            }
            Err(r) => return Verdict::Drop(xlat_reason(r)),
        }
        self.counters.fragments_translated.inc();
        self.l2_out(buf, Side::Outside, t.dst, now)
    }

    /// Applies the record `t` of a host's IPv6 datagram to its fragments held.
    fn release_held6(&mut self, key: frag::Key6, t: frag::Translation, now: u32) {
        let mut list = std::mem::take(&mut self.releasing);
        self.frags6.take_held(&key, |b| list.push(b));
        for mut b in list.drain(..) {
            let v = self.apply_fragment6(&mut b, &t, now);
            self.settle(b, v);
        }
        self.releasing = list;
    }

    /// NAT64, an ICMPv6 error from an inside host (`host`) to `rem` about a packet it
    /// received (quoted at `at`: from an IPv4 host under the prefix, to it): its
    /// session, found by the quoted packet, gives the pool address and port the error
    /// and the packet it quotes carry as IPv4 (RFC 7915 5.2, 5.3).
    fn nat64_error_out(
        &mut self,
        buf: &mut B,
        x: &Nat64Params,
        at: usize,
        host: crate::wire::ipv6::Addr,
        rem: u32,
        now: u32,
    ) -> Verdict {
        let d = buf.data();
        // The quoted packet is as long as fits in the error (RFC 4443 2.4(c): a
        // packet too big quotes at most 1232 bytes of a larger one): only its header
        // need be whole.
        let q = &d[at.min(d.len())..];
        if q.len() < crate::wire::ipv6::HEADER_LEN || q[0] >> 4 != 6 {
            return Verdict::Drop(DropReason::XlatTruncated);
        }
        let q = crate::wire::ipv6::Packet::new_unchecked(q);
        let (qsrc, qdst) = (q.src(), q.dst());
        // The error's sender is the host the packet went to, another address of its
        // subscriber (a CLAT's, a CPE's), or the router toward it (`gateway6`); an
        // error about another subscriber's session is not taken.
        let gateway = self.ports[Side::Inside as usize]
            .ipv6
            .as_ref()
            .and_then(|i| i.gateway);
        let (h6, q6) = (u128::from_be_bytes(host), u128::from_be_bytes(qdst));
        let (Some(server), Some(handle)) = (x.prefix.extract(&qsrc), self.nat.handle6(q6)) else {
            return Verdict::Drop(DropReason::NoMapping);
        };
        if !self.nat.same_subscriber6(h6, q6) && gateway != Some(host) {
            return Verdict::Drop(DropReason::NoMapping);
        }
        let Ok(chain) = crate::wire::ipv6::walk(&d[at..], d.len() - at) else {
            return Verdict::Drop(DropReason::XlatTruncated);
        };
        let l4 = at + chain.offset;
        let proto = match chain.next_header {
            crate::wire::ipv6::NH_TCP => ipv4::PROTO_TCP,
            crate::wire::ipv6::NH_UDP => ipv4::PROTO_UDP,
            _ => return Verdict::Drop(DropReason::Nat64IcmpUnsupported),
        };
        if d.len() < l4 + 4 {
            return Verdict::Drop(DropReason::XlatTruncated);
        }
        let (rport, hport) = (be16(d, l4), be16(d, l4 + 2));
        let t = Tuple {
            proto,
            src: handle,
            dst: server,
            sport: hport,
            dport: rport,
        };
        let Some(i) = self.nat.find_in2out(&t) else {
            return Verdict::Drop(DropReason::NoMapping);
        };
        let s = *self.nat.session(i);
        self.ident = self.ident.wrapping_add(1);
        let to4 = crate::xlat::To4 {
            outer: crate::xlat::Side4 {
                src: s.out_addr,
                dst: rem,
                ports: None,
            },
            inner: crate::xlat::Side4 {
                src: server,
                dst: s.out_addr,
                ports: Some((rport, s.out_port)),
            },
            ident: self.ident,
        };
        if let Err(r) = crate::xlat::to_ipv4(buf, ethernet::HEADER_LEN, &to4, &x.mtus) {
            return Verdict::Drop(xlat_reason(r));
        }
        self.counters.in2out.inc();
        self.l2_out(buf, Side::Outside, rem, now)
    }

    /// NAT64, IPv4 to IPv6: a packet NAT44's inbound path has rewritten to a NAT64
    /// session's inside endpoint (a host handle, [`crate::nat::hosts6`]) leaves
    /// translated (RFC 7915) to the host's IPv6 address from its source embedded in
    /// the `[nat64]` prefix, to the host's MAC from the IPv6 neighbour table.
    fn nat64_in(&mut self, buf: &mut B, p: &Parsed, handle: u32, now: u32) -> Verdict {
        let (Some(x), Some(host)) = (self.params.nat64, self.nat.host6(handle)) else {
            return Verdict::Drop(DropReason::Ipv6NotTranslated);
        };
        let (rem, later) = {
            let ip = ipv4::Packet::new_unchecked(&buf.data()[p.l3..]);
            (ip.src(), ip.frag_offset() != 0)
        };
        let dst = host.to_be_bytes();
        let side = crate::xlat::Side6 {
            src: x.prefix.embed(rem),
            dst,
            ports: None,
        };
        // An ICMP error about the host's packet (NAT44's inbound path put the host's
        // handle and port back in it): the packet it quotes goes from the host to the
        // IPv4 destination it was sent to, under the prefix.
        let inner = if Self::is_icmp_error(buf, p) {
            let at = p.l4 + icmp::HEADER_LEN;
            let d = buf.data();
            if d.len() < at + ipv4::MIN_HEADER_LEN {
                return Verdict::Drop(DropReason::XlatTruncated);
            }
            crate::xlat::Side6 {
                src: dst,
                dst: x.prefix.embed(ipv4::Packet::new_unchecked(&d[at..]).dst()),
                ports: None,
            }
        } else {
            side
        };
        let to6 = crate::xlat::To6 { outer: side, inner };
        let split = match crate::xlat::to_ipv6(buf, p.l3, &to6, &x.mtus) {
            Ok(o) => o == crate::xlat::Out6::Split,
            Err(crate::xlat::Refused::TooBig { .. }) if later => {
                // A later fragment with DF: no transport header to quote as the
                // sender's (its first fragment was answered already, if too big).
                return Verdict::Drop(DropReason::XlatTooBig);
            }
            Err(crate::xlat::Refused::TooBig { mtu }) if !Self::is_icmp_error(buf, p) => {
                // DF and too big for the inside (RFC 7915 4.1): fragmentation needed
                // to the sender, quoting the packet as it came (NAT44's rewrite to
                // the host's handle and port undone).
                let (addr, port) = self.nat64_undo;
                let at = if p.proto == ipv4::PROTO_ICMP { 4 } else { 2 };
                let in_port = be16(buf.data(), p.l4 + at);
                rewrite(buf, p, false, addr, port, handle, in_port);
                return self.icmp_error(
                    buf,
                    p,
                    Side::Outside,
                    icmp::DEST_UNREACHABLE,
                    icmp::CODE_FRAG_NEEDED,
                    mtu,
                    now,
                    DropReason::XlatTooBig,
                );
            }
            Err(r) => return Verdict::Drop(xlat_reason(r)),
        };
        // The host itself on the port's links, else the gateway toward it.
        let hop = match &self.ports[Side::Inside as usize].ipv6 {
            Some(ifc) => ifc.next_hop(&dst),
            None => dst,
        };
        let known = (self.neighbors6.as_ref()).and_then(|n| n.lookup_due(&hop, now));
        if known.is_none_or(|(_, due)| due) && self.params.unresolved_mac.is_none() {
            // Unknown (the answer is dropped: the host asks again) or old enough to
            // ask again (the answer goes to the MAC known now).
            self.solicit6(&hop, now);
        }
        let Some(mac) = known.map(|(m, _)| m).or(self.params.unresolved_mac) else {
            return Verdict::Drop(DropReason::Nat64NeighborUnresolved);
        };
        let src_mac = self.ports[Side::Inside as usize].mac;
        ethernet::Frame::new_unchecked(buf.data_mut()).set_addrs(&src_mac, &mac);
        if split {
            return self.split6(buf, p.l3, x.mtus.lowest_ipv6);
        }
        Verdict::Tx(Side::Inside)
    }

    /// An IPv4 packet without DF, translated, larger than lowest-ipv6-mtu (RFC 7915
    /// 4.1): cut to that size, `buf` the first fragment (its verdict returned), each
    /// further one in a buffer from [`Worker::set_alloc`] sent after it
    /// ([`Worker::take_ready`]). Without a buffer for every piece the packet is
    /// dropped whole (`nat64_split_no_buffer`): a datagram missing a fragment is lost
    /// anyway.
    fn split6(&mut self, buf: &mut B, l3: usize, mtu: u16) -> Verdict {
        use crate::wire::ipv6::{FRAG_HEADER_LEN, HEADER_LEN};
        let per = usize::from(mtu).saturating_sub(HEADER_LEN + FRAG_HEADER_LEN) & !7;
        let data = buf.len().saturating_sub(l3 + HEADER_LEN + FRAG_HEADER_LEN);
        let pieces = data.div_ceil(per.max(1));
        if per == 0 || pieces > SPLIT_MAX || self.ready.len() + pieces > self.ready.capacity() {
            return Verdict::Drop(DropReason::Nat64SplitNoBuffer);
        }
        let Some(mut alloc) = self.alloc.take() else {
            return Verdict::Drop(DropReason::Nat64SplitNoBuffer);
        };
        let mark = self.ready.len();
        let mut failed = None;
        for _ in 1..pieces {
            let Some(mut piece) = alloc() else {
                failed = Some(DropReason::Nat64SplitNoBuffer);
                break;
            };
            let first = self.ready.len() == mark;
            let cut = match self.ready.last_mut().filter(|_| !first) {
                Some((last, _)) => crate::xlat::split_ipv6(last, l3, mtu, &mut piece),
                None => crate::xlat::split_ipv6(buf, l3, mtu, &mut piece),
            };
            match cut {
                Ok(true) => self.ready.push((piece, Side::Inside)),
                Ok(false) => break,
                Err(r) => {
                    failed = Some(xlat_reason(r));
                    break;
                }
            }
        }
        self.alloc = Some(alloc);
        if let Some(r) = failed {
            self.ready.truncate(mark);
            return Verdict::Drop(r);
        }
        let n = (self.ready.len() - mark) as u64;
        self.counters.tx[Side::Inside as usize].add(n);
        self.counters.fragments_split6.inc();
        Verdict::Tx(Side::Inside)
    }

    /// Sets where buffers come from for the further IPv6 fragments of an IPv4 packet
    /// cut to lowest-ipv6-mtu (the mbuf pool; tests give Vec buffers). Without it such
    /// a packet is dropped (`nat64_split_no_buffer`).
    pub fn set_alloc(&mut self, alloc: Box<dyn FnMut() -> Option<B> + Send>) {
        self.alloc = Some(alloc);
    }

    fn screen(&mut self, buf: &mut B, p: &Parsed, from: Side) -> Result<(), DropReason> {
        self.screen_addrs(p, from)?;
        self.screen_rest(buf, p)
    }

    /// [`Worker::screen`]'s checks of the addresses.
    fn screen_addrs(&self, p: &Parsed, from: Side) -> Result<(), DropReason> {
        let prm = &self.params;
        match from {
            Side::Inside => {
                if !in_any(&prm.inside, p.src) && !in_any(&prm.identity, p.src) {
                    return Err(DropReason::SourceNotInside);
                }
                if (reserved(p.dst)
                    || self.bcast.contains(&p.dst)
                    || in_any(&self.inside_unreserved, p.dst))
                    && !in_any(&prm.allow, p.dst)
                    && !in_any(&prm.exclude, p.dst)
                    && !self.nat.is_pool_addr(p.dst)
                {
                    return Err(DropReason::DestinationReserved);
                }
            }
            Side::Outside => {
                if !self.nat.is_pool_addr(p.dst) && !in_any(&prm.identity, p.dst) {
                    return Err(DropReason::NotOurAddress);
                }
            }
        }
        Ok(())
    }

    /// [`Worker::screen`]'s checks of the rest: ICMP redirects, IP options.
    fn screen_rest(&mut self, buf: &mut B, p: &Parsed) -> Result<(), DropReason> {
        // The ICMP type is at the start of the payload of the first fragment only.
        if p.proto == ipv4::PROTO_ICMP
            && p.end > p.l4
            && buf.data()[p.l4] == icmp::REDIRECT
            && crate::wire::be16(buf.data(), p.l3 + 6) & 0x1fff == 0
        {
            return Err(DropReason::IcmpRedirect);
        }
        if p.l4 - p.l3 > ipv4::MIN_HEADER_LEN {
            let opts = p.l3 + ipv4::MIN_HEADER_LEN..p.l4;
            if buf.data()[opts.clone()].iter().any(|&b| b != OPT_NOP) {
                if self.params.ip_options_drop {
                    return Err(DropReason::IpOptions);
                }
                let d = buf.data_mut();
                d[opts].fill(OPT_NOP);
                let mut ip = ipv4::Packet::new_unchecked(&mut d[p.l3..p.end]);
                ip.fill_checksum();
                self.counters.ip_options_stripped.inc();
            }
        }
        Ok(())
    }

    /// Reads the NAT tuple of the frame's L4 header.
    #[inline(always)]
    fn tuple<F: PacketBuf>(
        buf: &F,
        p: &Parsed,
        outbound: bool,
    ) -> Result<(Tuple, u8, bool), DropReason> {
        let l4 = &buf.data()[p.l4..p.end];
        let t = |sport, dport| Tuple {
            proto: p.proto,
            src: p.src,
            dst: p.dst,
            sport,
            dport,
        };
        match p.proto {
            ipv4::PROTO_TCP => {
                let s = tcp::Segment::new_checked(l4).map_err(|_| DropReason::L4Truncated)?;
                Ok((t(s.src_port(), s.dst_port()), s.flags(), true))
            }
            ipv4::PROTO_UDP => {
                let d = if p.first_fragment && l4.len() >= udp::HEADER_LEN {
                    udp::Datagram::new_unchecked(l4)
                } else {
                    udp::Datagram::new_checked(l4).map_err(|_| DropReason::L4Truncated)?
                };
                Ok((t(d.src_port(), d.dst_port()), 0, true))
            }
            ipv4::PROTO_ICMP => {
                let m = icmp::Message::new_checked(l4).map_err(|_| DropReason::L4Truncated)?;
                if !icmp::is_query(m.msg_type()) {
                    return Err(DropReason::IcmpUnsupported);
                }
                let create = outbound && icmp::is_request(m.msg_type());
                // The identifier plays the port of the inside host.
                let tup = if outbound {
                    t(m.ident(), 0)
                } else {
                    t(0, m.ident())
                };
                Ok((tup, 0, create))
            }
            // Address only (GRE, ESP, AH, ...): ports 0; the inside host creates.
            _ => Ok((t(0, 0), 0, outbound)),
        }
    }

    #[inline(always)]
    fn is_icmp_error<F: PacketBuf>(buf: &F, p: &Parsed) -> bool {
        p.proto == ipv4::PROTO_ICMP
            && p.end - p.l4 >= icmp::HEADER_LEN
            && icmp::is_error(buf.data()[p.l4])
    }

    fn in2out<F: PacketBuf>(
        &mut self,
        buf: &mut F,
        p: &Parsed,
        now: u32,
    ) -> Result<Side, DropReason> {
        if Self::is_icmp_error(buf, p) {
            self.icmp_error_in2out(buf, p)?;
            self.counters.in2out.inc();
            if self.nat.is_pool_addr(p.dst) {
                // An error about a hairpinned packet goes back to the other subscriber
                // (RFC 5508 REQ-7).
                if !self.params.hairpinning {
                    return Err(DropReason::NoMapping);
                }
                let src = ipv4::Packet::new_unchecked(&buf.data()[p.l3..p.end]).src();
                self.icmp_error_out2in(buf, &Parsed { src, ..*p })?;
                self.counters.hairpin.inc();
                return Ok(Side::Inside);
            }
            return Ok(Side::Outside);
        }
        let (t, flags, create) = Self::tuple(buf, p, true)?;
        if crate::nat::portless(t.proto)
            && (!self.nat.params().allows_protocol(t.proto) || self.nat.is_pool_addr(p.dst))
        {
            return Err(DropReason::ProtocolDenied);
        }
        if let Some(call) = self.gre_call(buf, p) {
            // Enhanced GRE of a PPTP call (`nat/calls.rs`): the key stays the server's.
            let pool = self.nat.gre_in2out(p.src, p.dst, call?, now)?;
            rewrite(buf, p, true, pool, 0, p.src, 0);
            self.counters.in2out.inc();
            return Ok(Side::Outside);
        }
        let before = self.nat.live_sessions();
        let i = self.nat.in2out(&t, flags, create, now)?;
        if self.nat.live_sessions() != before {
            self.glean_source(buf, p.src, now);
            if self.held_len > 0 && t.proto == ipv4::PROTO_TCP {
                let s = self.nat.session(i);
                let (ra, rp, oa, op) = (s.rem_addr, s.rem_port, s.out_addr, s.out_port);
                self.forget_held(ra, rp, oa, op);
            }
        }
        let s = *self.nat.session(i);
        if p.first_fragment && s.alg() != 0 {
            // The ALG reads whole messages: the datagram is reassembled first.
            return Err(DropReason::AlgFragment);
        }
        let mut grew = 0isize;
        if let Some(c) = crate::alg_contract::contract_of(s.alg()) {
            grew = self.contract_alg(c, buf, i, &s, cgnat_alg::contract::Dir::FromInside, now);
        }
        // An inline payload rewrite (a datagram's: SIP's, RTCP's) changed the packet's
        // length.
        let p = &Parsed {
            end: p.end.wrapping_add_signed(grew),
            ..*p
        };
        rewrite(buf, p, true, s.out_addr, s.out_port, s.in_addr, s.in_port);
        self.counters.in2out.inc();
        if self.nat.is_pool_addr(p.dst) {
            // Hairpinning: the destination is another subscriber's mapping; translate
            // the packet once more as if it had come from outside (RFC 4787 REQ-9).
            if !self.params.hairpinning {
                return Err(DropReason::NoMapping);
            }
            let owner = self.nat.pool.owner(p.dst, t.dport).unwrap_or(0);
            if self.nat.pool.layout.workers > 1 && owner != self.nat.pool.worker() {
                // The other subscriber's mapping lives on another worker: it finishes
                // the hairpin as if the packet had come from outside.
                self.hairpin_owner = Some(owner);
                self.counters.hairpin.inc();
                return Ok(Side::Inside);
            }
            let p2 = Parsed {
                src: s.out_addr,
                ..*p
            };
            self.out2in(buf, &p2, now)?;
            self.counters.hairpin.inc();
            return Ok(Side::Inside);
        }
        Ok(Side::Outside)
    }

    fn out2in<F: PacketBuf>(
        &mut self,
        buf: &mut F,
        p: &Parsed,
        now: u32,
    ) -> Result<(), DropReason> {
        if Self::is_icmp_error(buf, p) {
            self.icmp_error_out2in(buf, p)?;
            self.counters.out2in.inc();
            return Ok(());
        }
        let (t, flags, _) = Self::tuple(buf, p, false)?;
        if crate::nat::portless(t.proto) && !self.nat.params().allows_protocol(t.proto) {
            return Err(DropReason::ProtocolDenied);
        }
        if let Some(call) = self.gre_call(buf, p) {
            // Enhanced GRE of a PPTP call: to the subscriber, keyed by its own call ID
            // (GRE version 1 has no checksum; the IP header's is updated).
            let (inside, id) = self.nat.gre_out2in(p.dst, p.src, call?, now)?;
            rewrite(buf, p, false, inside, 0, p.dst, 0);
            buf.data_mut()[p.l4 + 6..p.l4 + 8].copy_from_slice(&id.to_be_bytes());
            self.counters.out2in.inc();
            return Ok(());
        }
        let i = self.nat.out2in(&t, flags, true, now)?;
        let s = *self.nat.session(i);
        if crate::nat::hosts6::is_host(s.in_addr) {
            self.nat64_undo = (s.out_addr, s.out_port);
        }
        if p.first_fragment && s.alg() != 0 {
            return Err(DropReason::AlgFragment);
        }
        let mut grew = 0isize;
        if let Some(c) = crate::alg_contract::contract_of(s.alg()) {
            grew = self.contract_alg(c, buf, i, &s, cgnat_alg::contract::Dir::FromOutside, now);
        }
        // An inline rewrite of a datagram changed the packet's length.
        let p = &Parsed {
            end: p.end.wrapping_add_signed(grew),
            ..*p
        };
        rewrite(buf, p, false, s.in_addr, s.in_port, s.out_addr, s.out_port);
        self.counters.out2in.inc();
        Ok(())
    }

    /// A frame of a session of an ALG the dataplane runs through its contract
    /// ([`crate::alg_contract::worker`]): tagged for the ALG stream engine if it must
    /// go there. How much an inline rewrite (a datagram's) changed its length.
    fn contract_alg<F: PacketBuf>(
        &mut self,
        c: &'static dyn cgnat_alg::contract::Contract,
        buf: &mut F,
        i: u32,
        s: &crate::nat::Session,
        dir: cgnat_alg::contract::Dir,
        now: u32,
    ) -> isize {
        let (tag, grew) = crate::alg_contract::worker(
            c,
            &mut self.nat,
            &self.counters,
            &mut self.contract_streams,
            buf,
            (i, s),
            dir,
            now,
            self.reassembled,
        );
        self.alg_tag = tag;
        grew
    }

    /// An ICMP error from outside about a packet the NAT sent out: the embedded packet
    /// goes from the outside mapping to the remote (RFC 5508 REQ-3, RFC 5382 REQ-10).
    fn icmp_error_out2in<F: PacketBuf>(
        &mut self,
        buf: &mut F,
        p: &Parsed,
    ) -> Result<(), DropReason> {
        let e = embedded(buf, p)?;
        let t = e.tuple().reversed();
        let i = self
            .nat
            .find_out2in(&t)
            .ok_or(DropReason::IcmpErrorNoSession)?;
        let s = *self.nat.session(i);
        if s.out_addr != p.dst {
            return Err(DropReason::IcmpErrorNoSession);
        }
        ipv4::Packet::new_unchecked(&mut buf.data_mut()[p.l3..p.end]).set_dst(s.in_addr);
        rewrite_embedded(buf, p, &e, true, s.in_addr, s.in_port);
        Ok(())
    }

    /// An ICMP error from a subscriber about a packet that came in through the NAT.
    /// The packet it quotes must have been sent to the subscriber itself: an error
    /// about another subscriber's session (a forged port unreachable) is dropped.
    fn icmp_error_in2out<F: PacketBuf>(
        &mut self,
        buf: &mut F,
        p: &Parsed,
    ) -> Result<(), DropReason> {
        let e = embedded(buf, p)?;
        if e.dst != p.src {
            return Err(DropReason::IcmpErrorNotOwn);
        }
        let t = e.tuple().reversed();
        let i = self
            .nat
            .find_in2out(&t)
            .ok_or(DropReason::IcmpErrorNoSession)?;
        let s = *self.nat.session(i);
        ipv4::Packet::new_unchecked(&mut buf.data_mut()[p.l3..p.end]).set_src(s.out_addr);
        rewrite_embedded(buf, p, &e, false, s.out_addr, s.out_port);
        Ok(())
    }

    fn refuse(&mut self, buf: &mut B, p: &Parsed, r: DropReason, now: u32) -> Verdict {
        if is_limit(r) && self.params.icmp_on_limit {
            return self.icmp_error(
                buf,
                p,
                Side::Inside,
                icmp::DEST_UNREACHABLE,
                icmp::CODE_ADMIN_PROHIBITED,
                0,
                now,
                r,
            );
        }
        Verdict::Drop(r)
    }

    /// True when one more ICMP or ICMPv6 error may be sent this second (`icmp_rate`
    /// per worker), taking it.
    fn icmp_allowed(&mut self, now: u32) -> bool {
        if self.params.icmp_rate == 0 {
            return false;
        }
        if self.icmp_second != now {
            self.icmp_second = now;
            self.icmp_left = self.params.icmp_rate;
        }
        if self.icmp_left == 0 {
            return false;
        }
        self.icmp_left -= 1;
        true
    }

    /// NAT64: turns the inside host's IPv6 packet (untagged, at 14, its upper layer of
    /// type `nh`) into an ICMPv6 error about itself (`kind`, `code`, the 32-bit field
    /// `word`: MTU or pointer), from the inside port's address to the host, quoting as
    /// much of it as 1280 bytes hold (RFC 4443 2.4). Counts `reason` as its drop. Never
    /// about an ICMPv6 error or from an unspecified or multicast source.
    #[allow(clippy::too_many_arguments)]
    fn icmp6_error(
        &mut self,
        buf: &mut B,
        nh: u8,
        kind: u8,
        code: u8,
        word: u32,
        now: u32,
        reason: DropReason,
    ) -> Verdict {
        use crate::wire::{icmpv6, ipv6};
        let l3 = ethernet::HEADER_LEN;
        let d = buf.data();
        let ip = ipv6::Packet::new_unchecked(&d[l3..]);
        let (host, len) = (ip.src(), ipv6::HEADER_LEN + ip.payload_len());
        let at = l3 + ipv6::HEADER_LEN;
        let about_error = nh == ipv6::NH_ICMPV6 && d.len() > at && icmpv6::is_error(d[at]);
        let Some((me, my_mac)) = (self.ports[Side::Inside as usize].ipv6.as_ref())
            .map(|ifc| (ifc.source_for(&host), ifc.mac))
        else {
            return Verdict::Drop(reason);
        };
        if about_error || host == [0; 16] || host[0] == 0xff || !self.icmp_allowed(now) {
            return Verdict::Drop(reason);
        }
        let peer_mac = ethernet::Frame::new_unchecked(d).src();
        let quote = len
            .min(d.len() - l3)
            .min(ipv6::MIN_MTU - ipv6::HEADER_LEN - icmpv6::HEADER_LEN);
        let extra = ipv6::HEADER_LEN + icmpv6::HEADER_LEN;
        if !buf.set_len(l3 + quote) || !buf.prepend(extra) {
            return Verdict::Drop(reason);
        }
        self.counters.count_drop(reason);
        let d = buf.data_mut();
        let mut f = ethernet::Frame::new_unchecked(&mut d[..]);
        f.set_addrs(&my_mac, &peer_mac);
        f.set_ethertype(ETHERTYPE_IPV6);
        let plen = (icmpv6::HEADER_LEN + quote) as u16;
        ipv6::emit(&mut d[l3..], 0, 0, plen, ipv6::NH_ICMPV6, 64, &me, &host);
        let m = &mut d[l3 + ipv6::HEADER_LEN..];
        m[0] = kind;
        m[1] = code;
        m[2..4].copy_from_slice(&[0, 0]);
        m[4..8].copy_from_slice(&word.to_be_bytes());
        icmpv6::fill_checksum(&me, &host, m);
        self.counters.icmp_sent.inc();
        Verdict::Tx(Side::Inside)
    }

    /// Turns the frame into an ICMP error about itself, sent back where it came from,
    /// from the appliance's address on that port. Counts `reason` as the packet's drop.
    #[allow(clippy::too_many_arguments)]
    fn icmp_error(
        &mut self,
        buf: &mut B,
        p: &Parsed,
        side: Side,
        kind: u8,
        code: u8,
        mtu: u16,
        now: u32,
        reason: DropReason,
    ) -> Verdict {
        // Never an error about an error, a fragment or a group address (RFC 1812 4.3.2.7).
        if Self::is_icmp_error(buf, p) || martian(p.src) || !self.icmp_allowed(now) {
            return Verdict::Drop(reason);
        }
        self.counters.count_drop(reason);
        let ihl = p.l4 - p.l3;
        let quote = (ihl + 8).min(p.end - p.l3);
        let peer_mac = ethernet::Frame::new_checked(buf.data())
            .map(|f| f.src())
            .unwrap_or(ethernet::BROADCAST);
        if !buf.set_len(p.l3 + quote) || !buf.prepend(28) {
            return Verdict::Drop(reason);
        }
        let me = &self.ports[side as usize];
        let total = (20 + 8 + quote) as u16;
        self.ident = self.ident.wrapping_add(1);
        let d = buf.data_mut();
        let mut f = ethernet::Frame::new_unchecked(&mut d[..]);
        f.set_addrs(&me.mac, &peer_mac);
        f.set_ethertype(ETHERTYPE_IPV4);
        ipv4::emit(
            &mut d[14..34],
            total,
            self.ident,
            false,
            64,
            ipv4::PROTO_ICMP,
            me.addr_for(p.src),
            p.src,
        );
        let m = &mut d[34..];
        m[0] = kind;
        m[1] = code;
        m[2..8].copy_from_slice(&[0, 0, 0, 0, 0, 0]);
        m[6..8].copy_from_slice(&mtu.to_be_bytes());
        icmp::Message::new_unchecked(&mut m[..]).fill_checksum();
        self.counters.icmp_sent.inc();
        Verdict::Tx(side)
    }

    /// Sets the frame's MAC addresses for `dst` out of `side`; when the next hop is
    /// unknown, the frame waits for it ([`Verdict::Hold`]: give it to
    /// [`Worker::hold`]) and an ARP request goes out.
    fn l2_out(&mut self, buf: &mut B, side: Side, dst: u32, now: u32) -> Verdict {
        let port = &self.ports[side as usize];
        let hop = port.next_hop(dst);
        let known = self.neighbors.lookup_due(hop, now);
        if let Some(mac) = known.map(|(mac, _)| mac).or(self.params.unresolved_mac) {
            ethernet::Frame::new_unchecked(buf.data_mut()).set_addrs(&port.mac, &mac);
            if known.is_some_and(|(_, due)| due) {
                // Old enough to ask again; the answer (a new MAC, if the host
                // changed) replaces it, and the frame goes to the one known now.
                self.request(hop, side, now);
            }
            return Verdict::Tx(side);
        }
        self.request(hop, side, now);
        self.pending_neigh = Some((hop, side, now));
        Verdict::Hold
    }

    /// Asks for `hop`'s MAC on `side`: at most one request per next hop per second.
    fn request(&mut self, hop: u32, side: Side, now: u32) {
        let bucket = (hop as usize ^ (hop >> 16) as usize) & 63;
        if self.arp_sent[bucket] == (hop, now) || self.requests_len == self.requests.len() {
            return;
        }
        if self.requests[..self.requests_len].contains(&(hop, side)) {
            return;
        }
        self.arp_sent[bucket] = (hop, now);
        self.requests[self.requests_len] = (hop, side);
        self.requests_len += 1;
    }

    /// Queues a frame for its next hop, or drops it (counted `neighbor_queue_full`)
    /// when the hop's or the worker's queue is full: the newcomer goes, the frames
    /// already waiting stay.
    fn wait(&mut self, hop: u32, side: Side, now: u32, buf: B) {
        let for_hop = self
            .waiting
            .iter()
            .filter(|w| w.hop == hop && w.side == side)
            .count();
        // (Never past the room made at start: waiting never allocates.)
        let max = self.params.wait_max.min(self.waiting.capacity());
        if for_hop >= self.params.wait_per_hop || self.waiting.len() >= max {
            self.counters.count_drop(if self.params.wait_per_hop == 0 {
                DropReason::NeighborUnresolved // configured not to wait
            } else {
                DropReason::NeighborQueueFull
            });
            drop(buf);
            return;
        }
        self.waiting.push(Waiting {
            hop,
            side,
            until: now + self.params.wait_secs,
            buf,
        });
    }

    /// Frames waiting for a next hop's MAC, now.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Sends the frames whose next hop became known (they come out of
    /// [`Worker::take_ready`], in the order they came), drops those that waited
    /// `wait_secs` (counted `neighbor_unresolved`), and asks again once a second for
    /// the hops still unknown.
    pub fn poll_neighbors(&mut self, now: u32) {
        let mut i = 0;
        while i < self.waiting.len() {
            let (hop, side) = (self.waiting[i].hop, self.waiting[i].side);
            if let Some(mac) = self.neighbors.lookup(hop) {
                let mut w = self.waiting.remove(i);
                let port = &self.ports[side as usize];
                if let Ok(mut f) = ethernet::Frame::new_checked(w.buf.data_mut()) {
                    f.set_addrs(&port.mac, &mac);
                }
                self.counters.tx[side as usize].inc();
                self.ready.push((w.buf, side));
            } else if self.waiting[i].until <= now {
                drop(self.waiting.remove(i));
                self.counters.count_drop(DropReason::NeighborUnresolved);
            } else {
                self.request(hop, side, now);
                i += 1;
            }
        }
    }

    /// The IPv6 neighbours a NAT64 answer found unresolved (or due for a refresh):
    /// the driver has the control lcore solicit each ([`Control::solicit6`]).
    pub fn next_solicit6(&mut self) -> Option<crate::wire::ipv6::Addr> {
        if self.solicits6_len == 0 {
            return None;
        }
        self.solicits6_len -= 1;
        Some(self.solicits6[self.solicits6_len])
    }

    /// Asks for IPv6 neighbour `a`'s MAC on the inside port: at most once a second per
    /// neighbour, eight at a time.
    fn solicit6(&mut self, a: &crate::wire::ipv6::Addr, now: u32) {
        let w = |i: usize| u32::from_be_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
        let fold = w(0) ^ w(4) ^ w(8) ^ w(12);
        let bucket = (fold ^ fold >> 16) as usize & 63;
        let len = self.solicits6_len;
        if self.nd_sent[bucket] == (fold, now)
            || len == self.solicits6.len()
            || self.solicits6[..len].contains(a)
        {
            return;
        }
        self.nd_sent[bucket] = (fold, now);
        self.solicits6[len] = *a;
        self.solicits6_len += 1;
    }

    /// The next ARP request to send (next hop, side).
    pub fn next_request(&mut self) -> Option<(u32, Side)> {
        if self.requests_len == 0 {
            return None;
        }
        self.requests_len -= 1;
        Some(self.requests[self.requests_len])
    }

    /// Writes into `buf` (any contents) the broadcast ARP request for `hop` out of
    /// `side`.
    pub fn build_arp_request(&mut self, hop: u32, side: Side, buf: &mut B) -> Verdict {
        let from = self.ports[side as usize].addr_for(hop);
        self.build_arp(side, from, hop, buf)
    }

    /// Writes into `buf` a broadcast ARP request for `tpa` from `spa` out of `side`.
    fn build_arp(&mut self, side: Side, spa: u32, tpa: u32, buf: &mut B) -> Verdict {
        if !buf.set_len(ethernet::HEADER_LEN + arp::LEN) {
            return Verdict::Drop(DropReason::TooBig);
        }
        let port = &self.ports[side as usize];
        let d = buf.data_mut();
        let mut f = ethernet::Frame::new_unchecked(&mut d[..]);
        f.set_addrs(&port.mac, &ethernet::BROADCAST);
        f.set_ethertype(ETHERTYPE_ARP);
        arp::emit(
            &mut d[14..],
            arp::OP_REQUEST,
            &port.mac,
            spa.into(),
            &[0; 6],
            tpa.into(),
        );
        self.counters.tx[side as usize].inc();
        Verdict::Tx(side)
    }

    /// Whether an ARP frame from `mac` may go to the control lcore: at most
    /// `arp_per_source` per source per second.
    fn arp_allowed(&mut self, mac: &Mac, now: u32) -> bool {
        let mut k = [0u8; 8];
        k[2..].copy_from_slice(mac);
        let key = u64::from_be_bytes(k);
        let slot = &mut self.arp_rate
            [(key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize % ARP_RATE_SLOTS];
        if slot.0 != key || slot.1 != now {
            *slot = (key, now, 0);
        }
        slot.2 = slot.2.saturating_add(1);
        slot.2 <= self.params.arp_per_source
    }

    fn maybe_hold_syn(&mut self, buf: &B, p: &Parsed, r: DropReason, now: u32) -> Verdict {
        if self.params.syn_hold_secs == 0 || p.proto != ipv4::PROTO_TCP {
            return Verdict::Drop(r);
        }
        let d = buf.data();
        let Ok(seg) = tcp::Segment::new_checked(&d[p.l4..p.end]) else {
            return Verdict::Drop(r);
        };
        if seg.flags() & (tcp::SYN | tcp::ACK | tcp::RST) != tcp::SYN {
            return Verdict::Drop(r);
        }
        let (sport, dport) = (seg.src_port(), seg.dst_port());
        // A free slot, or the one that expires first.
        let slot = self.held.iter().position(|h| !h.used).unwrap_or_else(|| {
            (0..HELD_SYNS)
                .min_by_key(|&i| self.held[i].until)
                .unwrap_or(0)
        });
        if !self.held[slot].used {
            self.held_len += 1;
        }
        let quote_len = (p.l4 - p.l3 + 8).min(p.end - p.l3).min(68);
        let mut h = HeldSyn {
            src: p.src,
            sport,
            dst: p.dst,
            dport,
            until: now + self.params.syn_hold_secs,
            quote: [0; 68],
            quote_len: quote_len as u8,
            peer_mac: ethernet::Frame::new_checked(d)
                .map(|f| f.src())
                .unwrap_or(ethernet::BROADCAST),
            used: true,
        };
        h.quote[..quote_len].copy_from_slice(&d[p.l3..p.l3 + quote_len]);
        self.held[slot] = h;
        Verdict::Drop(DropReason::SynHeld)
    }

    fn forget_held(&mut self, rem: u32, rport: u16, out: u32, oport: u16) {
        for h in self.held.iter_mut().filter(|h| h.used) {
            if (h.src, h.sport, h.dst, h.dport) == (rem, rport, out, oport) {
                h.used = false;
                self.held_len -= 1;
            }
        }
    }

    /// The next held SYN whose time ran out by `now`, removed from the table.
    pub fn pop_expired_syn(&mut self, now: u32) -> Option<HeldSyn> {
        if self.held_len == 0 {
            return None;
        }
        let i = self.held.iter().position(|h| h.used && h.until <= now)?;
        self.held[i].used = false;
        self.held_len -= 1;
        Some(self.held[i])
    }

    /// Writes into `buf` (any contents) the ICMP port unreachable that answers a held
    /// SYN, from the address it was sent to, back out the outside port.
    pub fn build_syn_unreachable(&mut self, h: &HeldSyn, buf: &mut B) -> Verdict {
        let q = usize::from(h.quote_len);
        let len = 14 + 20 + 8 + q;
        if !buf.set_len(len) {
            return Verdict::Drop(DropReason::TooBig);
        }
        let me = &self.ports[Side::Outside as usize];
        self.ident = self.ident.wrapping_add(1);
        let d = buf.data_mut();
        let mut f = ethernet::Frame::new_unchecked(&mut d[..]);
        f.set_addrs(&me.mac, &h.peer_mac);
        f.set_ethertype(ETHERTYPE_IPV4);
        ipv4::emit(
            &mut d[14..34],
            (20 + 8 + q) as u16,
            self.ident,
            false,
            64,
            ipv4::PROTO_ICMP,
            h.dst,
            h.src,
        );
        let m = &mut d[34..];
        m[..8].copy_from_slice(&[
            icmp::DEST_UNREACHABLE,
            icmp::CODE_PORT_UNREACHABLE,
            0,
            0,
            0,
            0,
            0,
            0,
        ]);
        m[8..8 + q].copy_from_slice(&h.quote[..q]);
        icmp::Message::new_unchecked(&mut m[..]).fill_checksum();
        self.counters.icmp_sent.inc();
        self.counters.tx[Side::Outside as usize].inc();
        Verdict::Tx(Side::Outside)
    }

    /// Runs expiry, bounded.
    pub fn expire(&mut self, now: u32, budget: usize) -> usize {
        let (mut dropped, reasm) = self.frags.expire(now);
        dropped += self.frags6.expire(now).0;
        if reasm > 0 {
            self.counters.drops[DropReason::ReassemblyTimeout as usize].add(reasm as u64);
        }
        if dropped > 0 {
            self.counters.drops[DropReason::FragmentTimeout as usize].add(dropped as u64);
        }
        self.nat.expire(now, budget)
    }
}

fn frag_reason(r: frag::Refused) -> DropReason {
    match r {
        frag::Refused::Full => DropReason::FragmentTableFull,
        frag::Refused::Source => DropReason::FragmentSourceLimit,
        frag::Refused::Bytes => DropReason::ReassemblyLimit,
    }
}

/// Where a fragment's payload ends in its datagram (offset plus length).
fn frag_end<B: PacketBuf>(buf: &B) -> usize {
    let d = buf.data();
    let ip = ipv4::Packet::new_unchecked(&d[ethernet::HEADER_LEN..]);
    ip.frag_offset() + ip.total_len().saturating_sub(ip.header_len())
}

#[inline(always)]
fn parse_l3<B: PacketBuf>(buf: &mut B) -> Result<Parsed, DropReason> {
    let l3 = ethernet::HEADER_LEN;
    let ip = ipv4::Packet::new_checked(&buf.data()[l3..]).map_err(|e| match e {
        WireError::Truncated => DropReason::Ipv4Truncated,
        WireError::Malformed => DropReason::Ipv4Malformed,
    })?;
    if !ip.checksum_ok() {
        return Err(DropReason::Ipv4BadChecksum);
    }
    let (hl, tl, proto, src, dst) = (
        ip.header_len(),
        ip.total_len(),
        ip.protocol(),
        ip.src(),
        ip.dst(),
    );
    // Ethernet pads short frames: drop the padding so lengths and checksums see the
    // datagram only.
    if buf.len() > l3 + tl {
        buf.set_len(l3 + tl);
    }
    Ok(Parsed {
        l3,
        l4: l3 + hl,
        end: l3 + tl,
        proto,
        src,
        dst,
        first_fragment: false,
    })
}

/// Rewrites the source (outbound) or destination (inbound) address and port of a TCP,
/// UDP or ICMP query packet from `old` to `new`, with incremental checksums.
#[inline(always)]
fn rewrite<B: PacketBuf>(
    buf: &mut B,
    p: &Parsed,
    outbound: bool,
    new_addr: u32,
    new_port: u16,
    old_addr: u32,
    old_port: u16,
) {
    rewrite_as(
        buf,
        p,
        outbound,
        (new_addr, new_port),
        (old_addr, old_port),
        false,
    );
}

/// [`rewrite`] of a frame the worker forwards: the TTL (at least 2, as
/// [`Worker::classify`] and the full path check) decremented too, in the same update
/// of the header checksum.
#[inline(always)]
fn rewrite_forward<B: PacketBuf>(
    buf: &mut B,
    p: &Parsed,
    outbound: bool,
    new: (u32, u16),
    old: (u32, u16),
) {
    rewrite_as(buf, p, outbound, new, old, true);
}

#[inline(always)]
fn rewrite_as<B: PacketBuf>(
    buf: &mut B,
    p: &Parsed,
    outbound: bool,
    (new_addr, new_port): (u32, u16),
    (old_addr, old_port): (u32, u16),
    forward: bool,
) {
    let d = buf.data_mut();
    ipv4::Packet::new_unchecked(&mut d[p.l3..p.end]).set_addr(outbound, new_addr, forward);
    let l4 = &mut d[p.l4..p.end];
    // The pseudo-header's address and the port, for TCP and UDP.
    let diff =
        || checksum::delta32(old_addr, new_addr) + u32::from(!old_port) + u32::from(new_port);
    match p.proto {
        ipv4::PROTO_TCP => {
            // Checked when parsed (`Worker::tuple`).
            let mut s = tcp::Segment::new_unchecked(&mut l4[..]);
            if outbound {
                s.set_src_port(new_port);
            } else {
                s.set_dst_port(new_port);
            }
            let c = checksum::apply(s.checksum(), diff());
            s.set_checksum(c);
        }
        ipv4::PROTO_UDP => {
            // Checked when parsed (length, or at least the header for a first fragment).
            let mut u = udp::Datagram::new_unchecked(&mut l4[..]);
            if outbound {
                u.set_src_port(new_port);
            } else {
                u.set_dst_port(new_port);
            }
            if u.checksum() != 0 {
                let c = checksum::apply(u.checksum(), diff());
                u.set_checksum(c);
            }
        }
        ipv4::PROTO_ICMP => {
            // ICMP query: the identifier only; the ICMP checksum has no pseudo-header.
            // Checked when parsed (`Worker::tuple`).
            let mut m = icmp::Message::new_unchecked(&mut l4[..]);
            let c = checksum::update16(m.checksum(), old_port, new_port);
            m.set_ident(new_port);
            m.set_checksum(c);
        }
        // Address only (GRE, ESP, AH, SCTP, ...): no pseudo-header in their checks.
        _ => {}
    }
}

/// The packet embedded in an ICMP error.
struct Embedded {
    /// Offset of the embedded IPv4 header in the frame.
    l3: usize,
    /// Offset of its L4 header.
    l4: usize,
    proto: u8,
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
}

/// The end of the IPv4 packet at `l3` in `d`, by its total length (within `d`, past
/// its header): after an ALG's inline rewrite of a datagram changed its length.
fn ip_end(d: &[u8], l3: usize) -> usize {
    let total = usize::from(crate::wire::be16(d, l3 + 2));
    (l3 + total).clamp((l3 + 20).min(d.len()), d.len())
}

impl Embedded {
    /// The embedded packet's own tuple.
    fn tuple(&self) -> Tuple {
        Tuple {
            proto: self.proto,
            src: self.src,
            sport: self.sport,
            dst: self.dst,
            dport: self.dport,
        }
    }
}

fn embedded<B: PacketBuf>(buf: &B, p: &Parsed) -> Result<Embedded, DropReason> {
    let d = buf.data();
    let l3 = p.l4 + icmp::HEADER_LEN;
    let body = &d[l3..p.end];
    if body.len() < ipv4::MIN_HEADER_LEN {
        return Err(DropReason::IcmpErrorMalformed);
    }
    let ihl = usize::from(body[0] & 0x0f) * 4;
    if body[0] >> 4 != 4 || ihl < ipv4::MIN_HEADER_LEN || body.len() < ihl + 8 {
        return Err(DropReason::IcmpErrorMalformed);
    }
    // The embedded header's total length may exceed what was quoted: don't check it.
    let ip = ipv4::Packet::new_unchecked(body);
    let (proto, src, dst) = (ip.protocol(), ip.src(), ip.dst());
    let l4 = &body[ihl..];
    let (sport, dport) = match proto {
        ipv4::PROTO_TCP | ipv4::PROTO_UDP => (crate::wire::be16(l4, 0), crate::wire::be16(l4, 2)),
        ipv4::PROTO_ICMP => {
            // An embedded query sent by the inside host (request out) or answered by it.
            let id = crate::wire::be16(l4, 4);
            if !icmp::is_query(l4[0]) {
                return Err(DropReason::IcmpErrorMalformed);
            }
            (id, 0)
        }
        // An address-only session's packet (GRE, ESP, ...): no ports.
        _ => (0, 0),
    };
    Ok(Embedded {
        l3,
        l4: l3 + ihl,
        proto,
        src,
        dst,
        sport,
        dport,
    })
}

/// Rewrites the embedded packet of an ICMP error: its source (the NAT's outside
/// mapping, for errors coming in) or its destination (for errors going out), then the
/// embedded checksums incrementally and the ICMP checksum in full.
fn rewrite_embedded<B: PacketBuf>(
    buf: &mut B,
    p: &Parsed,
    e: &Embedded,
    inbound: bool,
    addr: u32,
    port: u16,
) {
    let end = p.end;
    let d = buf.data_mut();
    let (old_addr, old_port) = if inbound {
        (e.src, e.sport)
    } else {
        (e.dst, e.dport)
    };
    {
        let hl = e.l4 - e.l3;
        let mut ip = ipv4::Packet::new_unchecked(&mut d[e.l3..e.l3 + hl]);
        if inbound {
            ip.set_src(addr);
        } else {
            ip.set_dst(addr);
        }
    }
    let l4 = &mut d[e.l4..end];
    let delta = Delta::addr_port(old_addr, old_port, addr, port);
    match e.proto {
        ipv4::PROTO_TCP | ipv4::PROTO_UDP => {
            let at = if inbound { 0 } else { 2 };
            l4[at..at + 2].copy_from_slice(&port.to_be_bytes());
            let ck = if e.proto == ipv4::PROTO_TCP {
                tcp::CHECKSUM
            } else {
                udp::CHECKSUM
            };
            if l4.len() >= ck + 2 {
                let old = crate::wire::be16(l4, ck);
                if !(e.proto == ipv4::PROTO_UDP && old == 0) {
                    let new = delta.apply(old);
                    l4[ck..ck + 2].copy_from_slice(&new.to_be_bytes());
                }
            }
        }
        ipv4::PROTO_ICMP => {
            let old = crate::wire::be16(l4, 2);
            let new = checksum::update16(old, old_port, port);
            l4[4..6].copy_from_slice(&port.to_be_bytes());
            l4[2..4].copy_from_slice(&new.to_be_bytes());
        }
        // Address only: no L4 field covers the addresses (no pseudo-header).
        _ => {}
    }
    // `embedded` checked that the error holds its header and a quote.
    icmp::Message::new_unchecked(&mut d[p.l4..end]).fill_checksum();
}

/// What a reload gives the control lcore.
#[derive(Debug)]
pub enum ControlSettings {
    /// The pool (every address, draining ones too, sorted): proxy ARP.
    Pool(Vec<u32>),
}

/// The control lcore's share of the pipeline: ARP (replies for the ports' addresses
/// and, on the outside, proxy ARP for the pool; learning), ND, the PCP server's
/// answers and announcements, and ICMP echo to the appliance's own addresses. (The
/// ALGs' frames never come here: each worker runs the ALG stream engine of its own
/// sessions, [`Worker::alg_frame`].)
pub struct Control<B> {
    ports: [PortInfo; 2],
    pool: Vec<u32>,
    neighbors: Arc<Neighbors>,
    counters: Arc<WorkerCounters>,
    /// Gives a buffer for a frame of the control lcore's own (the mbuf pool; tests
    /// give Vec buffers).
    alloc: Option<Box<dyn FnMut() -> Option<B> + Send>>,
    /// Frames of its own ready to send (PCP announcements), on the inside.
    ready: std::collections::VecDeque<B>,
    /// ARP requests the workers sent and no one answered yet. Only an answer to one of
    /// them teaches a neighbour.
    solicited: Vec<Solicited>,
    /// The second [`Control::tick`] last ended requests at (they end in whole
    /// seconds: once a second is enough).
    requests_ended: u32,
    /// The control clock (seconds), as last told.
    now: u32,
    /// The PCP server (when on), the second it started (its epoch's zero) and the
    /// ANNOUNCE copies sent.
    pcp: Option<(crate::pcp::PcpParams, u32, usize)>,
    /// Neighbour discovery and echo on the inside port's IPv6 addresses.
    nd: Option<crate::nd::Nd>,
}

/// An ARP request a worker sent: for `ip` on `side`, answered until `until`. When
/// the address is known already (a refresh), an answer naming another MAC is kept in
/// `other` and taken only if the request ends with no answer from the MAC known (a
/// replaced host answers with its new MAC alone; a host claiming a live neighbour's
/// address is outvoted by it). Two different other MACs take nothing.
struct Solicited {
    ip: u32,
    side: Side,
    until: u32,
    other: Option<Mac>,
    conflict: bool,
}

/// Requests waiting for their answer at once; the oldest goes when full.
const MAX_SOLICITED: usize = 1024;
/// Seconds an answer to a request is accepted.
const SOLICITED_SECS: u32 = 3;

impl<B: PacketBuf> Control<B> {
    /// Takes the pool a reload made (sorted, draining addresses included: their
    /// replies still come); returns the list it replaces.
    pub fn set_pool(&mut self, pool: Vec<u32>) -> Vec<u32> {
        std::mem::replace(&mut self.pool, pool)
    }

    /// The control handler; `pool` sorted.
    pub fn new(
        ports: [PortInfo; 2],
        pool: Vec<u32>,
        neighbors: Arc<Neighbors>,
        counters: Arc<WorkerCounters>,
    ) -> Control<B> {
        let ports_ipv6 = ports[Side::Inside as usize].ipv6.clone();
        Control {
            ports,
            pool,
            neighbors,
            counters,
            alloc: None,
            ready: std::collections::VecDeque::with_capacity(crate::pcp::ANNOUNCE_AT.len()),
            solicited: Vec::with_capacity(MAX_SOLICITED),
            requests_ended: 0,
            now: 0,
            pcp: None,
            nd: ports_ipv6
                .map(|i| crate::nd::Nd::new(i, Arc::new(crate::neighbors::Neighbors6::new(4096)))),
        }
    }

    /// Neighbour discovery on the inside port, if it speaks IPv6.
    pub fn nd(&mut self) -> Option<&mut crate::nd::Nd> {
        self.nd.as_mut()
    }

    /// Turns the PCP server on (announced at the next [`Control::tick`]).
    pub fn set_pcp(&mut self, params: Option<crate::pcp::PcpParams>) {
        self.pcp = params.map(|p| (p, 0, 0));
    }

    /// The inside port's MAC, its address where `client` reaches it (the untagged
    /// interface's or that of the client's VLAN), and the PCP server's port.
    fn pcp_server(&self, client: u32) -> Option<(Mac, u32, u16)> {
        let (p, ..) = self.pcp?;
        let port = &self.ports[Side::Inside as usize];
        Some((port.mac, port.addr_for(client), p.listen))
    }

    /// The PCP epoch: seconds since the server started.
    fn pcp_epoch(&self) -> u32 {
        self.pcp.map_or(0, |(_, t0, _)| self.now.saturating_sub(t0))
    }

    /// Answers a PCP or NAT-PMP request a worker served (its decision in front).
    fn pcp_answer(&mut self, buf: &mut B) -> Verdict {
        let epoch = self.pcp_epoch();
        let server = |client| self.pcp_server(client);
        match crate::pcp::answer(buf, server, epoch) {
            true => Verdict::Tx(Side::Inside),
            _ => {
                self.counters.count_drop(DropReason::PcpDropped);
                Verdict::Drop(DropReason::PcpDropped)
            }
        }
    }

    /// Sends the ANNOUNCE copies that are due (RFC 6887 14.1.3: the server started,
    /// with a new epoch; clients renew their mappings).
    fn pcp_announce(&mut self) {
        let Some((p, t0, sent)) = self.pcp else {
            return;
        };
        let t0 = if t0 == 0 { self.now } else { t0 };
        self.pcp = Some((p, t0, sent));
        let due = crate::pcp::ANNOUNCE_AT
            .get(sent)
            .is_some_and(|&at| self.now >= t0 + at);
        if !due {
            return;
        }
        self.pcp = Some((p, t0, sent + 1));
        // (On the untagged interface, or the first VLAN when there is none.)
        let Some(server) = self.pcp_server(self.ports[Side::Inside as usize].addr()) else {
            return;
        };
        let epoch = self.pcp_epoch();
        if let Some(mut b) = self.alloc() {
            if crate::pcp::announce(&mut b, server, epoch) {
                self.ready.push_back(b);
            }
        }
    }

    /// Sets where the buffers of the control lcore's own frames come from (the mbuf
    /// pool; tests give Vec buffers).
    pub fn set_alloc(&mut self, alloc: Box<dyn FnMut() -> Option<B> + Send>) {
        self.alloc = Some(alloc);
    }

    /// A buffer from [`Control::set_alloc`]'s allocator, if it gives one.
    fn alloc(&mut self) -> Option<B> {
        self.alloc.as_mut().and_then(|a| a())
    }

    /// A neighbour solicitation for `target` on the inside port, which a worker asked
    /// for (NAT64 sends to that host: [`Worker::next_solicit6`]); its answer is then
    /// learned. None without IPv6 on the inside, a buffer, or room for another.
    pub fn solicit6(&mut self, target: &crate::wire::ipv6::Addr, now: u32) -> Option<B> {
        self.nd.as_ref()?;
        let mut buf = self.alloc()?;
        let nd = self.nd.as_mut()?;
        nd.solicit(target, &mut buf, now).then_some(buf)
    }

    /// Records that a worker asked for `ip`'s MAC on `side` at `now`: its answer will
    /// be learned.
    pub fn note_request(&mut self, ip: u32, side: Side, now: u32) {
        self.now = self.now.max(now);
        let until = now + SOLICITED_SECS;
        if let Some(r) = self
            .solicited
            .iter_mut()
            .find(|r| r.ip == ip && r.side == side)
        {
            r.until = until;
            return;
        }
        if self.solicited.len() == MAX_SOLICITED {
            self.end_requests(self.now);
            if self.solicited.len() == MAX_SOLICITED {
                self.solicited.remove(0);
            }
        }
        self.solicited.push(Solicited {
            ip,
            side,
            until,
            other: None,
            conflict: false,
        });
    }

    /// Ends the requests no longer answered at `now`; a refresh that only another MAC
    /// answered (once, and the known MAC never) teaches that MAC.
    fn end_requests(&mut self, now: u32) {
        let neighbors = &self.neighbors;
        self.solicited.retain(|r| {
            if r.until > now {
                return true;
            }
            if let (Some(mac), false) = (r.other, r.conflict) {
                neighbors.learn_answer(r.ip, &mac, now);
            }
            false
        });
    }

    /// Answers a PCP or NAT-PMP request a worker served (its decision in front), and
    /// says where it goes.
    pub fn pcp(&mut self, buf: &mut B, now: u32) -> Verdict {
        self.now = self.now.max(now);
        self.pcp_answer(buf)
    }

    /// Takes what a reload changed.
    pub fn reconfigure(&mut self, s: ControlSettings) {
        match s {
            ControlSettings::Pool(list) => drop(self.set_pool(list)),
        }
    }

    /// Sends the PCP announces due and ends the ARP requests no longer answered;
    /// [`Control::take_ready`] hands out what it built.
    pub fn tick(&mut self, now: u32) {
        self.now = self.now.max(now);
        self.pcp_announce();
        if self.requests_ended != self.now {
            self.requests_ended = self.now;
            self.end_requests(self.now);
        }
    }

    /// A frame of the control lcore's own ready to send on the inside (a PCP
    /// announcement).
    pub fn take_ready(&mut self) -> Option<B> {
        self.ready.pop_front()
    }

    /// The control lcore's counters.
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    /// Records a neighbour a worker gleaned.
    pub fn learn(&self, ip: u32, mac: &Mac) {
        self.neighbors.learn(ip, mac);
    }

    /// Handles a frame a worker passed up; returns what to do with it.
    pub fn handle<F: PacketBuf>(&mut self, buf: &mut F, side: Side) -> Verdict {
        let v = self.handle_inner(buf, side);
        match v {
            Verdict::Drop(r) => self.counters.count_drop(r),
            Verdict::Tx(s) => self.counters.tx[s as usize].inc(),
            Verdict::Control | Verdict::Hold | Verdict::Handoff(..) | Verdict::Alg(_) => {}
        }
        v
    }

    fn handle_inner<F: PacketBuf>(&mut self, buf: &mut F, side: Side) -> Verdict {
        let Ok(frame) = ethernet::Frame::new_checked(buf.data()) else {
            return Verdict::Drop(DropReason::EthTruncated);
        };
        match frame.ethertype() {
            ETHERTYPE_ARP => self.arp(buf, side),
            ETHERTYPE_IPV4 => self.local_ipv4(buf, side),
            ETHERTYPE_IPV6 if side == Side::Inside => {
                let now = self.now;
                match self.nd.as_mut().map(|nd| nd.handle(buf, now)) {
                    Some(crate::nd::Answer::Send) => Verdict::Tx(side),
                    Some(crate::nd::Answer::Drop(r)) => Verdict::Drop(r),
                    None => Verdict::Drop(DropReason::EthUnsupported),
                }
            }
            _ => Verdict::Drop(DropReason::EthUnsupported),
        }
    }

    fn arp<F: PacketBuf>(&mut self, buf: &mut F, side: Side) -> Verdict {
        let port = &self.ports[side as usize];
        let Ok(a) = arp::Packet::new_checked(&buf.data()[ethernet::HEADER_LEN..]) else {
            return Verdict::Drop(DropReason::ArpMalformed);
        };
        let (op, sha, spa, tpa) = (a.op(), a.sha(), u32::from(a.spa()), u32::from(a.tpa()));
        if op == arp::OP_REPLY {
            // Learn only the answer to a request of ours, on the port it went out of,
            // from a host on the port's subnet: an unsolicited or gratuitous reply
            // (anyone can claim any address) changes nothing.
            let now = self.now;
            let asked = self
                .solicited
                .iter()
                .position(|r| r.ip == spa && r.side == side && r.until > now);
            return match asked {
                Some(i)
                    if tpa == port.addr_for(spa)
                        && port.on_link(spa)
                        && !port.owns(spa)
                        && !ethernet::is_multicast(&sha) =>
                {
                    match self.neighbors.lookup(spa) {
                        Some(known) if known != sha => {
                            let r = &mut self.solicited[i];
                            r.conflict |= r.other.is_some_and(|o| o != sha);
                            r.other = Some(sha);
                            Verdict::Drop(DropReason::ArpOtherMac)
                        }
                        _ => {
                            self.solicited.swap_remove(i);
                            self.neighbors.learn_answer(spa, &sha, now);
                            Verdict::Drop(DropReason::ArpConsumed)
                        }
                    }
                }
                _ => Verdict::Drop(DropReason::ArpUnsolicited),
            };
        }
        let ours = tpa == port.addr_for(spa)
            || (side == Side::Outside && self.pool.binary_search(&tpa).is_ok());
        if op != arp::OP_REQUEST || !ours {
            return Verdict::Drop(DropReason::ArpConsumed);
        }
        if !buf.set_len(ethernet::HEADER_LEN + arp::LEN) {
            return Verdict::Drop(DropReason::ArpMalformed);
        }
        let d = buf.data_mut();
        let mut f = ethernet::Frame::new_unchecked(&mut d[..]);
        f.set_addrs(&port.mac, &sha);
        arp::emit(
            &mut d[14..],
            arp::OP_REPLY,
            &port.mac,
            tpa.into(),
            &sha,
            spa.into(),
        );
        Verdict::Tx(side)
    }

    fn local_ipv4<F: PacketBuf>(&mut self, buf: &mut F, side: Side) -> Verdict {
        let p = match parse_l3(buf) {
            Ok(p) => p,
            Err(r) => return Verdict::Drop(r),
        };
        let port = &self.ports[side as usize];
        let d = buf.data_mut();
        if p.proto != ipv4::PROTO_ICMP
            || p.end - p.l4 < icmp::HEADER_LEN
            || d[p.l4] != icmp::ECHO_REQUEST
            || !port.owns(p.dst)
        {
            return Verdict::Drop(DropReason::LocalUnsupported);
        }
        // Echo reply in place: swap addresses, type 8 -> 0.
        // parse_l3 found an IPv4 header after the Ethernet one, and the ICMP header
        // was checked above.
        let peer_mac = ethernet::Frame::new_unchecked(&d[..]).src();
        ethernet::Frame::new_unchecked(&mut d[..]).set_addrs(&port.mac, &peer_mac);
        {
            let mut ip = ipv4::Packet::new_unchecked(&mut d[p.l3..p.end]);
            ip.set_src(p.dst);
            ip.set_dst(p.src);
        }
        let mut m = icmp::Message::new_unchecked(&mut d[p.l4..p.end]);
        let c = checksum::update16(
            m.checksum(),
            u16::from(icmp::ECHO_REQUEST) << 8,
            u16::from(icmp::ECHO_REPLY) << 8,
        );
        m.set_checksum(c);
        d[p.l4] = icmp::ECHO_REPLY;
        Verdict::Tx(side)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn martian_is_the_ranges_by_first_octet() {
        for ip in [
            0,
            0x00ff_ffff,
            0x7f00_0001,
            0x7fff_ffff,
            0xe000_0000,
            0xefff_ffff,
            u32::MAX,
        ] {
            assert!(martian(ip), "{ip:#x}");
        }
        for ip in [
            0x0100_0000,
            0x7eff_ffff,
            0x8000_0000,
            0x6440_0001,
            0xdfff_ffff,
        ] {
            assert!(!martian(ip), "{ip:#x}");
        }
        // Every address agrees with the ranges, at every first octet's ends.
        for o in 0..=255u32 {
            for ip in [o << 24, o << 24 | 0x00ff_ffff] {
                let inside = MARTIAN.iter().any(|&(f, l)| f <= ip && ip <= l);
                assert_eq!(martian(ip), inside, "{ip:#x}");
            }
        }
    }
}
