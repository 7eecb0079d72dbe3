//! cgnat configuration: the TOML schema (described in section 7 of docs/design.md; every
//! key with a comment in config/examples/full.toml), its defaults, and validation.
//!
//! A file is parsed, every value resolved to a typed setting, and every rule checked
//! before anything starts. An error names the file, the line, the dotted key and what
//! would be valid ([`ConfigError`]).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod locate;
mod net;
mod raw;
pub mod reload;

pub use net::{Ipv4Net, Ipv6Net};
pub use reload::{plan as reload_plan, plan_since as reload_plan_since, Change};

use raw::{FileConfig, Seg};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::path::Path;

/// A configuration error: where it is and what would be valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// 1-based line, 0 when not known.
    pub line: usize,
    /// Dotted key, e.g. `nat.port_range` or `ports[1].ipv4`.
    pub key: String,
    /// What was wrong and what would be valid.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: key `{}`: {}",
            self.file, self.line, self.key, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// Settings of the DPDK runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataplane {
    /// Passed to `rte_eal_init` (cgnat adds `--lcores`, `--main-lcore` and the devices;
    /// in pcap mode also `--file-prefix` and `--no-shconf`).
    pub eal_args: Vec<String>,
    /// The control lcore (also DPDK's main lcore).
    pub control_lcore: u32,
    /// One worker per lcore, each with its own RX queue.
    pub worker_lcores: Vec<u32>,
    /// Never sleep when idle.
    pub busy_poll: bool,
    /// Mbufs in the pool.
    pub mbufs: u32,
    /// Bytes per mbuf, headroom (128) included: at least the MTU plus 146.
    pub mbuf_size: u16,
    /// RX descriptors per queue.
    pub rx_desc: u16,
    /// TX descriptors per queue.
    pub tx_desc: u16,
    /// ARP frames one source MAC may send to the control lcore per second, per worker.
    pub arp_per_source: u32,
    /// Frames that wait for one next hop's MAC (per worker; 0: none waits).
    pub unresolved_queue: usize,
    /// Frames that wait for any next hop's MAC, per worker.
    pub unresolved_queue_total: usize,
    /// Seconds a frame waits for its next hop's MAC.
    pub unresolved_secs: u32,
}

/// Which side of the NAT a port is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Subscribers.
    Inside,
    /// The internet.
    Outside,
}

/// A port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// Name used in logs and metrics.
    pub name: String,
    /// Inside or outside.
    pub role: Role,
    /// Any DPDK device or vdev (`net_pcap0,rx_pcap=...`, a PCI address, ...).
    pub device: String,
    /// The port's own address and subnet.
    pub ipv4: Ipv4Net,
    /// Next hop for destinations off the subnet.
    pub gateway: Option<Ipv4Addr>,
    /// The gateway's MAC, skipping ARP for it.
    pub gateway_mac: Option<[u8; 6]>,
    /// IP MTU.
    pub mtu: u16,
    /// Untagged frames are the port's own (`ipv4` given); false when the port has
    /// only VLAN sub-interfaces (`ipv4` is then the first VLAN's, for reference).
    pub untagged: bool,
    /// VLAN sub-interfaces (802.1Q or QinQ), each with its own address.
    pub vlans: Vec<VlanConfig>,
    /// The port's own IPv6 addresses and their on-link prefixes (inside port only: the
    /// IPv6 subscribers of NAT64 reach the appliance there).
    pub ipv6: Vec<Ipv6Net>,
    /// The next hop toward IPv6 hosts off the port's links (inside port: routed or
    /// delegated subscriber prefixes); None: every host is taken as on-link.
    pub gateway6: Option<Ipv6Addr>,
}

/// Most VLAN sub-interfaces one port may have.
pub const MAX_VLANS: usize = 64;

/// A VLAN sub-interface of a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VlanConfig {
    /// Its tags, outermost first: one (802.1Q, TPID 0x8100) or two (QinQ: an 802.1ad
    /// outer tag, TPID 0x88a8, then an 802.1Q inner one).
    pub tags: Vec<u16>,
    /// Its own address and subnet.
    pub ipv4: Ipv4Net,
    /// Next hop on it for what it routes off its subnet.
    pub gateway: Option<Ipv4Addr>,
    /// Inside ports: the subscriber prefixes reached through it (within nat.inside).
    pub inside: Vec<Ipv4Net>,
}

impl VlanConfig {
    /// Its name in metrics: the id, or `outer.inner` for QinQ.
    pub fn label(&self) -> String {
        self.tags
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// Mapping or filtering behaviour (RFC 4787).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Behavior {
    /// Endpoint-independent.
    EndpointIndependent,
    /// Address-dependent.
    AddressDependent,
    /// Address-and-port-dependent.
    AddressAndPortDependent,
}

/// Pooling behaviour (RFC 4787 REQ-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pooling {
    /// One public address per subscriber.
    Paired,
    /// Any address per mapping.
    Arbitrary,
}

/// Port allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Allocation {
    /// Blocks of ports per subscriber (RFC 6888 REQ-14).
    PortBlock,
    /// A random port per mapping (RFC 6056).
    Dynamic,
    /// RFC 7422 algorithmic ranges.
    Deterministic,
}

/// What to do with an unsolicited inbound SYN (RFC 5382 REQ-4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InboundSyn {
    /// Hold it for `tcp_syn_inbound` seconds in case of a simultaneous open.
    Hold,
    /// Drop it at once.
    Drop,
}

/// What to do with IPv4 options (record route, timestamp, source route ...), which can
/// carry inside addresses out or steer a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpOptions {
    /// Overwrite them with no-operation options (the header keeps its length).
    Strip,
    /// Drop the packet.
    Drop,
}

/// Timeouts in seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// UDP mappings (RFC 4787 REQ-5: at least 120).
    pub udp: u32,
    /// Established TCP (RFC 5382 REQ-5: at least 7440).
    pub tcp_established: u32,
    /// Transitory TCP (RFC 5382 REQ-5: at least 240).
    pub tcp_transitory: u32,
    /// ICMP queries (RFC 5508 REQ-1: at least 60).
    pub icmp: u32,
    /// How long an unsolicited inbound SYN is held (RFC 5382 REQ-4: 6).
    pub tcp_syn_inbound: u32,
    /// Address-only sessions of the other IP protocols (GRE, ESP, AH, ...): 300 by
    /// default, UDP's (their traffic is datagrams, their keepalives spaced like UDP's).
    pub other: u32,
}

/// The IP protocols other than TCP, UDP and ICMP translated (address only) unless
/// `nat.protocols` says otherwise: GRE (47), ESP (50), AH (51).
pub const OTHER_DEFAULT_ALLOW: [u8; 3] = [47, 50, 51];

/// The names `nat.protocols` knows besides numbers.
pub const OTHER_PROTOCOL_NAMES: [(&str, u8); 7] = [
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("sctp", 132),
    ("ipip", 4),
    ("ipv6", 41),
    ("l2tp", 115),
];

/// The protocol number of a `nat.protocols` key: a name of
/// [`OTHER_PROTOCOL_NAMES`], `tcp`, `udp`, `icmp`, or a number from 0 to 255.
pub fn protocol_number(name: &str) -> Option<u8> {
    match name {
        "tcp" => Some(6),
        "udp" => Some(17),
        "icmp" => Some(1),
        _ => OTHER_PROTOCOL_NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, p)| p)
            .or_else(|| name.parse().ok()),
    }
}

/// The name of protocol `p` as `nat.protocols`, logs and `cgnat show` write it (its
/// number when it has no name).
pub fn protocol_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        _ => OTHER_PROTOCOL_NAMES
            .iter()
            .find(|&&(_, q)| q == p)
            .map_or_else(|| p.to_string(), |(n, _)| (*n).to_string()),
    }
}

/// L4 protocol of a static mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L4Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// A static mapping (port forwarding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticMapping {
    /// Protocol.
    pub protocol: L4Proto,
    /// Inside endpoint.
    pub inside: SocketAddrV4,
    /// Outside endpoint (address in the pool).
    pub outside: SocketAddrV4,
}

/// The most sessions one worker lcore holds: its tables number records in 24 bits
/// (`nat.max_sessions` is shared among the worker lcores).
pub const MAX_SESSIONS_PER_WORKER: u32 = 16_000_000;

/// `nat.max_alg_connections` by default.
pub const DEFAULT_ALG_CONNECTIONS: u32 = 65_536;
/// The least `nat.max_alg_connections` per worker lcore.
pub const MIN_ALG_CONNECTIONS_PER_WORKER: u32 = 64;
/// The most `nat.max_alg_connections` (in all).
pub const MAX_ALG_CONNECTIONS: u32 = 4_194_304;

/// Session and mapping records one worker lcore numbers together (24 bits: a
/// mapping index entry names either).
pub const MAX_RECORDS_PER_WORKER: u32 = 16_777_215;

/// NAT behaviour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nat {
    /// Inside prefixes (sources that are translated).
    pub inside: Vec<Ipv4Net>,
    /// Public pool prefixes.
    pub pool: Vec<Ipv4Net>,
    /// Mapping behaviour.
    pub mapping: Behavior,
    /// Filtering behaviour.
    pub filtering: Behavior,
    /// Pooling.
    pub pooling: Pooling,
    /// Port allocation.
    pub allocation: Allocation,
    /// Ports used for translation.
    pub port_range: (u16, u16),
    /// Ports per block.
    pub block_size: u16,
    /// Blocks per subscriber.
    pub max_blocks_per_subscriber: u16,
    /// Sessions per subscriber.
    pub max_sessions_per_subscriber: u32,
    /// Sessions created by inbound packets (endpoint-independent or address-dependent
    /// filtering) a subscriber may hold, apart from `max_sessions_per_subscriber`.
    pub max_inbound_sessions_per_subscriber: u32,
    /// Sessions in the whole appliance (tables are sized from it).
    pub max_sessions: u32,
    /// Mapping records in the whole appliance: a mapping that serves one session
    /// lives in the session's record; a record of its own is needed only when a
    /// second session or an ALG pinhole shares it, or for a static mapping. None: the
    /// default, [`Nat::mapping_records`].
    pub max_mappings: Option<u32>,
    /// Subscribers (inside addresses with state) in the whole appliance: the
    /// subscriber table is sized from it. None: the default, [`Nat::subscriber_limit`].
    pub max_subscribers: Option<u32>,
    /// ALG control connections (FTP, SIP over TCP, RTSP, IRC, PPTP, ...) whose
    /// streams the workers' ALG stream engines follow at once, in the whole
    /// appliance (each worker lcore follows an equal share, rounded up); a new one
    /// past it is not followed (counted `no_room`). Sized at start.
    pub max_alg_connections: u32,
    /// Keep port parity.
    pub port_parity: bool,
    /// Try the inside port first when it is free (RFC 4787 REQ-3 allows it; off by
    /// default: random ports are harder to guess, RFC 6056).
    pub port_preservation: bool,
    /// Seconds before a released port is reused.
    pub quarantine_secs: u32,
    /// Hairpinning.
    pub hairpinning: bool,
    /// Destinations forwarded untranslated.
    pub exclude_destinations: Vec<Ipv4Net>,
    /// Private, shared, link-local and directed-broadcast destinations subscribers may
    /// reach anyway (they are dropped otherwise).
    pub allow_destinations: Vec<Ipv4Net>,
    /// IPv4 options.
    pub ip_options: IpOptions,
    /// Identity mappings: inside hosts with addresses of their own, forwarded
    /// untranslated both ways.
    pub identity: Vec<Ipv4Net>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// ICMP admin-prohibited to a subscriber refused by a limit.
    pub icmp_on_limit: bool,
    /// Unsolicited inbound SYN handling.
    pub inbound_syn: InboundSyn,
    /// Static mappings (`[[nat.static]]`).
    pub statics: Vec<StaticMapping>,
    /// The IP protocols other than TCP, UDP and ICMP translated address-only
    /// (`[nat.protocols]`, sorted); the rest are dropped (`protocol_denied`).
    pub other_protocols: Vec<u8>,
}

impl Nat {
    /// Mapping records of the whole appliance with `workers` worker lcores:
    /// `max_mappings`, or by default an eighth of `max_sessions`, at least 1,024 plus
    /// the static mappings per worker, within what the 24-bit record numbers leave a
    /// worker beside its sessions ([`MAX_RECORDS_PER_WORKER`]).
    pub fn mapping_records(&self, workers: u32) -> u32 {
        let workers = u64::from(workers.max(1));
        let room = u64::from(MAX_RECORDS_PER_WORKER) - u64::from(self.max_sessions) / workers;
        let statics = self.statics.len() as u64;
        self.max_mappings.unwrap_or_else(|| {
            (u64::from(self.max_sessions / 8)
                .max(workers * (1024 + statics))
                .min(room * workers)) as u32
        })
    }

    /// Subscribers of the whole appliance with `workers` worker lcores:
    /// `max_subscribers`, or by default what the pool and the allocation can serve at
    /// once, plus the static mappings: under port-block allocation every subscriber
    /// with state holds a block (a worker owns every workers-th block of each
    /// address, the first ones one more: the busiest worker's blocks times the
    /// workers); otherwise it has a session (`max_sessions`, and under deterministic
    /// allocation at most the inside addresses). At least one and at most
    /// [`MAX_SESSIONS_PER_WORKER`] per worker.
    pub fn subscriber_limit(&self, workers: u32) -> u32 {
        let workers = u64::from(workers.max(1));
        if let Some(s) = self.max_subscribers {
            return s;
        }
        let sessions = u64::from(self.max_sessions);
        let bound = match self.allocation {
            Allocation::PortBlock => {
                let addrs: u64 = self.pool.iter().map(|p| p.len()).sum();
                let span = u64::from(self.port_range.1) - u64::from(self.port_range.0) + 1;
                let blocks = span / u64::from(self.block_size.max(1));
                addrs * blocks.div_ceil(workers) * workers
            }
            Allocation::Deterministic => {
                let inside: u64 = self.inside.iter().map(|p| p.len()).sum();
                inside.min(sessions)
            }
            Allocation::Dynamic => sessions,
        };
        let most = (workers * u64::from(MAX_SESSIONS_PER_WORKER)).min(u64::from(u32::MAX));
        (bound + self.statics.len() as u64).clamp(workers, most) as u32
    }
}

/// One ALG's switch and ports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlgProto {
    /// On or off.
    pub enabled: bool,
    /// Server ports it binds to.
    pub ports: Vec<u16>,
    /// FTP: lowest data port a PORT/EPRT may name (lower ones open nothing).
    pub min_data_port: u16,
    /// FTP: data connections may come from any address, not only the control
    /// connection's server (FXP). Off by default.
    pub loose: bool,
    /// SIP and RTSP: lowest media (RTP) port an SDP `m=` line or an RTSP
    /// `client_port` may name; lower ones open no pinhole (1024 by default).
    pub min_media_port: u16,
    /// FTP: commands refused (upper case verbs, e.g. `SITE`).
    pub deny: Vec<String>,
    /// FTP: when not empty, the only commands let through (upper case verbs).
    pub allow: Vec<String>,
    /// FTP: a PORT or EPRT naming a host other than the client itself (FTP bounce,
    /// FXP) is refused (true, the default) or passes unchanged, opening nothing.
    pub refuse_bounce: bool,
    /// FTP: a PORT or EPRT naming a data port of the client below `min_data_port` is
    /// refused (true, the default) or passes, opening nothing.
    pub refuse_low_port: bool,
    /// FTP: what a refused command gets.
    pub on_deny: OnDeny,
    /// SIP and RTSP: request methods refused (as written on the request line).
    pub deny_methods: Vec<String>,
    /// SIP: largest message accepted from a client (bytes; 0: no limit); a larger
    /// request gets `513 Message Too Large`.
    pub max_message_size: usize,
    /// SIP: the status a refused method gets: 405 (Method Not Allowed) or 403.
    pub deny_status: u16,
    /// When not empty, the ALG serves only subscribers in these prefixes.
    pub only: Vec<Ipv4Net>,
    /// Subscribers in these prefixes are not served by the ALG (their sessions to its
    /// ports are plain sessions).
    pub except: Vec<Ipv4Net>,
}

/// What a command an ALG's policy refuses gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDeny {
    /// It does not reach the server; the client gets the protocol's error reply from
    /// the server's address (FTP `504`), and its session goes on.
    Reply,
    /// The segment carrying it is dropped (and so are its retransmissions).
    Drop,
}

/// The ALGs' sections: one [`AlgProto`] per ALG of the registry
/// ([`cgnat_alg::PLUGINS`]), in its order, each defaulted from its registry entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alg {
    /// `protos[i]` is the section of `PLUGINS[i]`.
    protos: Vec<AlgProto>,
}

impl Alg {
    /// The sections in the registry's order (`protos.len() == PLUGINS.len()`).
    pub(crate) fn from_registry_order(protos: Vec<AlgProto>) -> Alg {
        assert_eq!(protos.len(), cgnat_alg::PLUGINS.len());
        Alg { protos }
    }

    /// The `[alg.<name>]` section of ALG `name` (the ALG registry's name), if there is
    /// such an ALG.
    pub fn get(&self, name: &str) -> Option<&AlgProto> {
        let i = cgnat_alg::PLUGINS.iter().position(|p| p.name == name)?;
        self.protos.get(i)
    }

    /// The section of the ALG whose session id is `id` ([`cgnat_alg::id`]).
    pub fn by_id(&self, id: u8) -> Option<&AlgProto> {
        let i = cgnat_alg::PLUGINS.iter().position(|p| p.id == id)?;
        self.protos.get(i)
    }

    /// Every ALG of the registry with its section, in the registry's order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static cgnat_alg::Plugin, &AlgProto)> {
        cgnat_alg::PLUGINS.iter().zip(&self.protos)
    }
}

/// `alg["ftp"]`: the section of a registry ALG (a name not in the registry is a bug of
/// the caller and panics; [`Alg::get`] is the checked form).
impl std::ops::Index<&str> for Alg {
    type Output = AlgProto;
    fn index(&self, name: &str) -> &AlgProto {
        self.get(name)
            .unwrap_or_else(|| panic!("no ALG `{name}` in the registry"))
    }
}

/// Prometheus endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metrics {
    /// Listen address; None disables it.
    pub listen: Option<SocketAddr>,
    /// Bearer token every scrape must send; required beyond loopback.
    pub token: Option<String>,
}

/// The control API (HTTP and JSON) that `cgnat show` talks to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Api {
    /// Listen address; None disables it. Loopback by default.
    pub listen: Option<SocketAddr>,
    /// Bearer token every request must send; required beyond loopback.
    pub token: Option<String>,
}

/// Which per-session events are logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionLogging {
    /// Per-session events under dynamic allocation only; port-block allocation logs
    /// blocks, deterministic NAT logs nothing (RFC 6888 REQ-12, REQ-14).
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

/// IPFIX export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipfix {
    /// Collector address.
    pub collector: SocketAddr,
    /// Per-session events.
    pub sessions: SessionLogging,
    /// Log remote addresses and ports in session events (off: RFC 6888 REQ-12).
    pub destinations: bool,
    /// BIB (mapping) create and delete events (RFC 8158 natEvent 6/7, NAT64's 8/9).
    pub mappings: bool,
    /// Seconds between template retransmissions (RFC 7011 over UDP).
    pub template_refresh_secs: u32,
    /// Observation domain ID.
    pub domain_id: u32,
    /// Pool address utilisation (percent) that raises a threshold event; 0: none.
    pub threshold_percent: u32,
}

/// Syslog (RFC 5424 over UDP) for port block events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Syslog {
    /// Server address.
    pub server: SocketAddr,
}

/// NAT event logging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logging {
    /// IPFIX export, if configured.
    pub ipfix: Option<Ipfix>,
    /// Syslog export of block events, if configured.
    pub syslog: Option<Syslog>,
}

/// The whole configuration, resolved and validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The file it came from.
    pub file: String,
    /// DPDK runtime.
    pub dataplane: Dataplane,
    /// Ports (one inside, one outside).
    pub ports: Vec<PortConfig>,
    /// NAT behaviour.
    pub nat: Nat,
    /// ALGs.
    pub alg: Alg,
    /// Metrics.
    pub metrics: Metrics,
    /// Control API.
    pub api: Api,
    /// Logging.
    pub logging: Logging,
    /// PCP and NAT-PMP server.
    pub pcp: Pcp,
    /// Stateful NAT64 from IPv6 subscribers to the pool (the `[nat64]` table present).
    pub nat64: Option<Nat64>,
    /// HA state sync with a peer appliance (`[ha]`), if configured.
    pub ha: Option<Ha>,
}

/// The prefix lengths RFC 6052 allows for IPv4-embedded IPv6 addresses.
pub const NAT64_PREFIX_LENGTHS: [u8; 6] = [32, 40, 48, 56, 64, 96];
/// The subscriber prefix lengths NAT64 takes: a subscriber is one such IPv6 prefix.
pub const NAT64_SUBSCRIBER_LENGTHS: [u8; 3] = [56, 64, 128];

/// Stateful NAT64 (RFC 6146) settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nat64 {
    /// The prefix IPv4 addresses are represented under (RFC 6052): 64:ff9b::/96 by
    /// default, or a network-specific prefix of a length in [`NAT64_PREFIX_LENGTHS`].
    pub prefix: Ipv6Net,
    /// A subscriber is an IPv6 prefix of this length (56 by default; 64 or 128): its
    /// addresses share its port blocks and limits.
    pub subscriber_prefix_len: u8,
    /// IPv4 packets without DF that become IPv6 packets larger than this are
    /// fragmented to it (RFC 7915 4.1's lowest-ipv6-mtu; 1280 by default).
    pub lowest_ipv6_mtu: u16,
}

impl Default for Nat64 {
    fn default() -> Self {
        Nat64 {
            prefix: Ipv6Net {
                addr: std::net::Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0),
                prefix: 96,
            },
            subscriber_prefix_len: 56,
            lowest_ipv6_mtu: 1280,
        }
    }
}

/// The role an appliance of an HA pair starts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HaRole {
    /// Forwards and sends its state to the peer.
    Active,
    /// Forwards nothing; installs the state the active sends.
    Standby,
}

/// HA state sync (`[ha]`): a UDP socket on a management network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ha {
    /// Role at start (keepalived changes it through the control API).
    pub role: HaRole,
    /// This appliance's sync address.
    pub listen: SocketAddrV4,
    /// The peer's sync address.
    pub peer: SocketAddrV4,
    /// File holding the shared key (both appliances the same).
    pub key_file: String,
    /// Sync messages per second at most.
    pub rate: u32,
}

/// Default `ha.rate`.
pub const HA_DEFAULT_RATE: u32 = 2000;
/// Shortest HA key (bytes).
pub const HA_MIN_KEY: usize = 16;

/// The PCP (RFC 6887) and NAT-PMP (RFC 6886) server on the inside port's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pcp {
    /// Answer requests (the `[pcp]` table present, unless `enabled = false`).
    pub enabled: bool,
    /// UDP port on the inside port's address (5351).
    pub listen: u16,
    /// Shortest lifetime granted (seconds): shorter requests get it.
    pub min_lifetime: u32,
    /// Longest lifetime granted (seconds): longer requests get it.
    pub max_lifetime: u32,
    /// PCP and NAT-PMP mappings one subscriber may hold at once.
    pub max_mappings_per_subscriber: u32,
    /// Honour the THIRD_PARTY option (else NOT_AUTHORIZED).
    pub allow_third_party: bool,
    /// Answer NAT-PMP (version 0) requests too.
    pub nat_pmp: bool,
}

impl Default for Pcp {
    fn default() -> Self {
        Pcp {
            enabled: false,
            listen: 5351,
            min_lifetime: 120,
            max_lifetime: 86400,
            max_mappings_per_subscriber: 32,
            allow_third_party: false,
            nat_pmp: true,
        }
    }
}

/// Reads, parses and validates a file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: 0,
        key: String::new(),
        message: format!("cannot read the file: {e}"),
    })?;
    Config::parse(&text, &file)
}

impl Config {
    /// Parses and validates `text`, naming `file` in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let raw = raw::parse(text, file)?;
        raw::resolve(&raw, text, file)
    }

    /// The port with `role`.
    pub fn port(&self, role: Role) -> Option<&PortConfig> {
        self.ports.iter().find(|p| p.role == role)
    }

    /// Every setting, defaults included, as TOML (what `cgnat check` prints). Parses
    /// back to an equal Config.
    pub fn resolved_toml(&self) -> String {
        let f = FileConfig::from_config(self);
        let body = toml::to_string(&f).unwrap_or_else(|e| format!("# cannot render: {e}\n"));
        format!(
            "# {} resolved: every setting, defaults included\n{body}",
            self.file
        )
    }
}

/// Builds a key path string like `ports[1].ipv4`.
fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Idx(i) => s.push_str(&format!("[{i}]")),
            Seg::Name(k) => {
                s.push('.');
                s.push_str(k);
            }
        }
    }
    s
}
