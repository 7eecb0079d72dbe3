//! Counters: every drop reason has its own, and every worker has its own set, written
//! by that worker alone and read by the metrics thread and the final summary.
//!
//! A single writer means an update is a relaxed load and store (no locked instruction);
//! readers see a value that is at most a few packets old.

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter with exactly one writing thread.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        let v = self.0.load(Ordering::Relaxed);
        self.0.store(v.wrapping_add(n), Ordering::Relaxed);
    }
    /// Sets an absolute value (gauges).
    #[inline]
    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
    /// Reads the value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// An enum of named counters: each variant has a snake_case label (its name in
/// summaries and metrics) and `ALL` lists them in a stable order.
macro_rules! labelled {
    ($(#[$m:meta])* $e:ident { $( $(#[$doc:meta])* $name:ident = $label:literal, )* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $e { $( $(#[$doc])* $name, )* }

        impl $e {
            /// Every value, in a stable order.
            pub const ALL: &'static [$e] = &[ $( $e::$name, )* ];
            /// The snake_case name used in summaries and metrics.
            pub fn label(self) -> &'static str {
                match self { $( $e::$name => $label, )* }
            }
        }
    };
}

labelled! {
    /// Why a packet was dropped. Each reason is a counter of its own, named by
    /// [`DropReason::label`] in summaries and metrics.
    DropReason {
    /// Frame shorter than an Ethernet header.
    EthTruncated = "eth_truncated",
    /// EtherType neither IPv4 nor ARP, nor IPv6 on an inside port with IPv6 addresses
    /// (LLDP, ...).
    EthUnsupported = "eth_unsupported_ethertype",
    /// Unicast frame for another MAC address.
    EthOtherHost = "eth_other_host",
    /// Tagged frame whose VLAN (or QinQ pair) the port has no sub-interface for.
    VlanUnknown = "vlan_unknown",
    /// Untagged frame on a port that has only VLAN sub-interfaces.
    VlanUntagged = "vlan_untagged",
    /// Frame whose source another VLAN of the port routes (inside subscribers, ARP
    /// senders): its replies would leave on another VLAN.
    VlanSourceMismatch = "vlan_source_mismatch",
    /// No headroom in the buffer to push the outgoing VLAN tags.
    VlanNoHeadroom = "vlan_no_headroom",
    /// ARP packet malformed or truncated.
    ArpMalformed = "arp_malformed",
    /// ARP packet handled (replied to or learned from) and consumed.
    ArpConsumed = "arp_consumed",
    /// ARP reply that answers no request of ours (unsolicited, gratuitous, or late):
    /// nothing learned from it.
    ArpUnsolicited = "arp_unsolicited",
    /// ARP reply to a refresh of a known neighbour naming another MAC than the one
    /// known: taken only if the known MAC does not answer the same request.
    ArpOtherMac = "arp_other_mac",
    /// ARP frame over its source MAC's budget (per worker and second): dropped before
    /// the control lcore.
    ArpRateLimited = "arp_rate_limited",
    /// ARP (or a frame for the appliance itself) dropped because its ring to the
    /// control lcore was full; PCP frames have a ring of their own.
    ArpRingFull = "arp_ring_full",
    /// IPv6 header shorter than 40 bytes or than its payload length, or an extension
    /// header running past the packet (inside port with IPv6 addresses).
    Ipv6Truncated = "ipv6_truncated",
    /// IPv6 header with a bad version, a jumbogram, or a multicast source.
    Ipv6Malformed = "ipv6_malformed",
    /// IPv6 multicast the appliance does not serve (MLD, router solicitations, groups
    /// other than its solicited-node ones).
    Ipv6Multicast = "ipv6_multicast",
    /// Unicast IPv6 for another host without `[nat64]` (nothing translates it).
    Ipv6NotTranslated = "ipv6_not_translated",
    /// Neighbour discovery message that fails RFC 4861's checks (hop limit 255, code
    /// 0, length, checksum, options, unicast target).
    NdMalformed = "nd_malformed",
    /// Neighbour discovery message handled (answered, learned from, or for another
    /// target) and consumed.
    NdConsumed = "nd_consumed",
    /// Neighbour advertisement that answers no solicitation of ours: nothing learned.
    NdUnsolicited = "nd_unsolicited",
    /// Neighbour discovery or echo over its source MAC's budget (shared with ARP,
    /// `dataplane.arp_per_source`): dropped before the control lcore.
    NdRateLimited = "nd_rate_limited",
    /// IPv4 header shorter than 20 bytes or than its IHL / total length.
    Ipv4Truncated = "ipv4_truncated",
    /// IPv4 header with bad version, IHL below 5 or total length below the header.
    Ipv4Malformed = "ipv4_malformed",
    /// IPv4 header checksum does not verify.
    Ipv4BadChecksum = "ipv4_bad_checksum",
    /// Source or destination is a martian (0/8, 127/8, multicast, broadcast).
    Ipv4Martian = "ipv4_martian",
    /// TTL expired; an ICMP time-exceeded was sent instead where allowed.
    TtlExpired = "ttl_expired",
    /// NAT64: an IPv6 upper layer other than TCP, UDP and ICMPv6 (address-only
    /// translation is NAT44's only).
    UnsupportedProtocol = "unsupported_protocol",
    /// An IP protocol other than TCP, UDP and ICMP that `nat.protocols` does not
    /// allow (by default all but GRE, ESP and AH), or one of those to a pool address
    /// (address-only sessions are not hairpinned).
    ProtocolDenied = "protocol_denied",
    /// A new address-only session (GRE, ESP, ...) refused: every pool address is
    /// another subscriber's for that remote and protocol.
    OtherProtocolAddressConflict = "other_protocol_address_conflict",
    /// Enhanced GRE (version 1) with the PPTP ALG on that belongs to no PPTP call of
    /// the worker (no call, its call ended, no key).
    GreNoCall = "gre_no_call",
    /// Fragment that cannot be translated (hairpinned, or handed to hold by mistake).
    Fragment = "fragment",
    /// Fragment held for its first fragment, which never came in time.
    FragmentTimeout = "fragment_timeout",
    /// Too many fragmented datagrams or held fragments at once.
    FragmentTableFull = "fragment_table_full",
    /// L4 header truncated or with bad length field.
    L4Truncated = "l4_truncated",
    /// ICMP type NAT does not translate (router advertisements, ...).
    IcmpUnsupported = "icmp_unsupported_type",
    /// ICMP error whose embedded packet matches no session.
    IcmpErrorNoSession = "icmp_error_no_session",
    /// ICMP error whose embedded packet is malformed.
    IcmpErrorMalformed = "icmp_error_malformed",
    /// Inside packet from a source outside the configured inside prefixes.
    SourceNotInside = "source_not_inside",
    /// Outside packet for an address that is neither ours nor in the pool.
    NotOurAddress = "not_our_address",
    /// Outbound TCP without SYN and without a session.
    TcpNoSessionNotSyn = "tcp_no_session_not_syn",
    /// Inbound packet for which no mapping exists.
    NoMapping = "no_mapping",
    /// Inbound packet refused by the filtering behaviour.
    Filtered = "filtered",
    /// Unsolicited inbound SYN held (RFC 5382 REQ-4), not forwarded.
    SynHeld = "tcp_syn_held",
    /// Session table full: new session refused, live ones untouched (RFC 6888 REQ-11).
    SessionTableFull = "session_table_full",
    /// No free outside port or block left in the pool.
    PoolExhausted = "pool_exhausted",
    /// Subscriber reached max_sessions_per_subscriber.
    SubscriberSessionLimit = "subscriber_session_limit",
    /// Subscriber reached max_blocks_per_subscriber (port quota).
    SubscriberPortLimit = "subscriber_port_limit",
    /// Next hop not resolved: the frame waited for its MAC in vain (no answer to
    /// the ARP requests within the wait), or could not wait (an ALG frame).
    NeighborUnresolved = "neighbor_unresolved",
    /// Next hop not resolved yet and its wait queue (per next hop or per worker) full.
    NeighborQueueFull = "neighbor_queue_full",
    /// Packet for the appliance itself that it does not serve.
    LocalUnsupported = "local_unsupported",
    /// TX queue full: freed after a failed send.
    TxFull = "tx_full",
    /// The handoff ring to another worker was full. (PCP frames are never counted
    /// here: a full ring to or from the control lcore holds them in a backlog.)
    RingFull = "ring_full",
    /// A PCP frame found its lcore's backlog full (held frames past the reserve that
    /// back-pressure keeps free): never seen in a correct run.
    AlgBacklogFull = "alg_backlog_full",
    /// An ALG frame its worker's stream engine had no room for: its frames ready, its
    /// held runs or its gathered fragment sets full (sized at start): never seen in a
    /// correct run.
    AlgEngineFull = "alg_engine_full",
    /// Packet too big for the outgoing MTU (and DF set: ICMP frag-needed sent).
    TooBig = "too_big",
    /// ICMP error from a subscriber quoting a packet that was not sent to it (forged
    /// about another subscriber's session).
    IcmpErrorNotOwn = "icmp_error_not_own_session",
    /// ICMP redirect from outside: never passed to a subscriber.
    IcmpRedirect = "icmp_redirect",
    /// Subscriber packet to a private, shared, link-local or directed-broadcast
    /// destination not in nat.allow_destinations.
    DestinationReserved = "destination_reserved",
    /// Packet with IPv4 options, under nat.ip_options = "drop".
    IpOptions = "ip_options",
    /// Fragment of an ALG session's datagram (SIP or TFTP over UDP, FTP in a fragmented
    /// segment) that could not be reassembled for the ALG (the datagram was refused:
    /// too big, over the bounds, overlapping): dropped, never sent untranslated.
    AlgFragment = "alg_fragment",
    /// Held fragments of an ALG session's datagram whose other fragments did not all
    /// come in time.
    ReassemblyTimeout = "alg_reassembly_timeout",
    /// Fragment of an ALG session's datagram larger than the reassembly allows
    /// (`MAX_REASSEMBLED`), or that cannot be sent again in fragments.
    ReassemblyTooBig = "alg_reassembly_too_big",
    /// Fragment of an ALG session's datagram over the bytes held for reassembly, per
    /// source or per worker.
    ReassemblyLimit = "alg_reassembly_limit",
    /// Inbound-created session refused: the subscriber's
    /// max_inbound_sessions_per_subscriber are all answered sessions.
    SubscriberInboundLimit = "subscriber_inbound_limit",
    /// Fragment refused: its source holds its share of the fragment tables.
    FragmentSourceLimit = "fragment_source_limit",
    /// New subscriber refused: the subscriber table holds `nat.max_subscribers`
    /// (this worker's share); live sessions untouched.
    SubscriberTableFull = "subscriber_table_full",
    /// Session refused because its mapping, shared by a second session, needed a
    /// mapping record and all `nat.max_mappings` (this worker's share) are in use.
    MappingTableFull = "mapping_table_full",
    /// New NAT64 session refused: this worker's table of IPv6 hosts with sessions
    /// (a handle each, as many as its sessions) is full.
    Nat64HostTableFull = "nat64_host_table_full",
    /// IPv6 from the inside to an address outside the `[nat64]` prefix.
    Nat64NotPrefix = "nat64_not_prefix",
    /// NAT64: an IPv6 packet to a pool address (hairpinning is not done for NAT64).
    Nat64Hairpin = "nat64_hairpin",
    /// NAT64: a later fragment that starts before its first fragment ends (it would
    /// overwrite the translated transport header at the receiver: RFC 1858, 5722).
    Nat64FragmentOverlap = "nat64_fragment_overlap",
    /// NAT64: an IPv4 packet without DF to be cut into IPv6 fragments (RFC 7915 4.1)
    /// found no buffer for one of them (the mbuf pool empty) or would need more than
    /// `SPLIT_MAX`: dropped whole.
    Nat64SplitNoBuffer = "nat64_split_no_buffer",
    /// NAT64: an ICMP or ICMPv6 message that is not an echo request or reply (errors
    /// are not translated yet).
    Nat64IcmpUnsupported = "nat64_icmp_unsupported",
    /// NAT64: the IPv6 host's MAC is not known (its neighbour entry missing).
    Nat64NeighborUnresolved = "nat64_neighbor_unresolved",
    /// RFC 7915 refused: shorter than its headers say.
    XlatTruncated = "xlat_truncated",
    /// RFC 7915 refused: a malformed header.
    XlatMalformed = "xlat_malformed",
    /// RFC 7915 refused: an IPv4 header or ICMP error checksum does not verify.
    XlatChecksum = "xlat_checksum",
    /// RFC 7915 refused: the TTL or hop limit would reach zero.
    XlatHopLimit = "xlat_hop_limit",
    /// RFC 7915 refused: too big for the next hop (DF, or IPv6).
    XlatTooBig = "xlat_too_big",
    /// RFC 7915 refused: an ICMP message the RFC drops.
    XlatIcmpUntranslatable = "xlat_icmp_untranslatable",
    /// RFC 7915 refused: a fragmented ICMP message.
    XlatFragmentedIcmp = "xlat_fragmented_icmp",
    /// RFC 7915 refused: an IPv4 UDP fragment with a zero checksum.
    XlatUdpZeroChecksumFragment = "xlat_udp_zero_checksum_fragment",
    /// RFC 7915 refused: an unexpired IPv4 source route.
    XlatSourceRoute = "xlat_source_route",
    /// RFC 7915 refused: an IPv6 routing header with segments left.
    XlatSegmentsLeft = "xlat_segments_left",
    /// RFC 7915 refused: an extension header after the fragment header.
    XlatExtensionAfterFragment = "xlat_extension_after_fragment",
    /// RFC 7915 refused: an ICMP error inside an ICMP error.
    XlatNestedError = "xlat_nested_error",
    /// RFC 7915 refused: no room in the buffer to grow the packet.
    XlatNoRoom = "xlat_no_room",
    /// A PCP or NAT-PMP request dropped without an answer (see the PCP outcome
    /// counters for why).
    PcpDropped = "pcp_dropped",
    /// Frame received by an HA standby: it forwards nothing until promoted.
    HaStandby = "ha_standby",
    /// Frame carrying a command or request an ALG's policy refuses, not forwarded:
    /// under `on_deny = "drop"`, refused while pipelined behind other commands (where
    /// a reply cannot be put in order), or a SIP/RTSP datagram answered in the
    /// server's name.
    AlgPolicy = "alg_policy",
    /// The reply to a command the ALG's policy refused could not be sent (no buffer,
    /// the client's MAC unknown); the command did not reach the server.
    AlgPolicyReplyUnsent = "alg_policy_reply_unsent",
    }
}

/// Number of drop reasons.
pub const N_REASONS: usize = DropReason::ALL.len();

/// One counter per drop reason, indexed by `DropReason as usize`.
#[derive(Debug)]
pub struct DropCounters(pub [Counter; N_REASONS]);

impl Default for DropCounters {
    fn default() -> Self {
        DropCounters(std::array::from_fn(|_| Counter::default()))
    }
}

impl std::ops::Index<usize> for DropCounters {
    type Output = Counter;
    fn index(&self, i: usize) -> &Counter {
        &self.0[i]
    }
}

/// The counters of one worker (or of the control lcore).
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Packets received, per port role (0 inside, 1 outside).
    pub rx: [Counter; 2],
    /// Packets transmitted, per port role.
    pub tx: [Counter; 2],
    /// Packets translated inside to outside.
    pub in2out: Counter,
    /// Packets translated outside to inside.
    pub out2in: Counter,
    /// Packets hairpinned (inside to inside through a pool address).
    pub hairpin: Counter,
    /// Packets forwarded untranslated (excluded destinations).
    pub excluded: Counter,
    /// ICMP errors sent by the appliance.
    pub icmp_sent: Counter,
    /// Fragments translated (first and later ones).
    pub fragments_translated: Counter,
    /// Fragments held until their first fragment came.
    pub fragments_held: Counter,
    /// Datagrams of ALG sessions reassembled from their fragments for the ALG.
    pub fragments_reassembled: Counter,
    /// Reassembled datagrams sent again as fragments (too big for one packet).
    pub fragments_refragmented: Counter,
    /// NAT64: IPv4 packets without DF cut into IPv6 fragments to fit lowest-ipv6-mtu
    /// (RFC 7915 4.1).
    pub fragments_split6: Counter,
    /// Frames handed to another worker (it owns the subscriber or the port).
    pub handoff_out: Counter,
    /// Frames received from another worker.
    pub handoff_in: Counter,
    /// Receive bursts that returned at least one packet.
    pub bursts: Counter,
    /// Polls that returned nothing.
    pub idle_polls: Counter,
    /// Polls that found work.
    pub busy_polls: Counter,
    /// TSC cycles spent in polls that found work.
    pub busy_cycles: Counter,
    /// TSC cycles each stage of the burst path took ([`STAGES`]), summed over bursts.
    pub stage_cycles: [Counter; N_STAGES],
    /// Packets each stage of the burst path handled ([`STAGES`]).
    pub stage_packets: [Counter; N_STAGES],
    /// Sessions created, per protocol ([`PROTO_NAMES`]).
    pub sessions_created: [Counter; PROTO_NAMES.len()],
    /// Sessions expired, per protocol.
    pub sessions_expired: [Counter; PROTO_NAMES.len()],
    /// Sessions alive now, per protocol.
    pub sessions_active: [Counter; PROTO_NAMES.len()],
    /// Mappings alive now.
    pub mappings_active: Counter,
    /// Subscribers with state now.
    pub subscribers_active: Counter,
    /// NAT64: IPv6 hosts with sessions (a handle each) now.
    pub nat64_hosts_active: Counter,
    /// NAT64: subscriber prefixes with state now (counted in `subscribers_active` too).
    pub nat64_subscribers_active: Counter,
    /// NAT64: sessions of IPv6 hosts now (counted in `sessions_active` too).
    pub nat64_sessions_active: Counter,
    /// Port blocks allocated now.
    pub blocks_active: Counter,
    /// ALG expectations created.
    pub expectations_created: Counter,
    /// ALG expectations whose connection came.
    pub expectations_matched: Counter,
    /// ALG expectations that timed out.
    pub expectations_expired: Counter,
    /// ALG expectations refused (table full, no port).
    pub expectations_refused: Counter,
    /// ALG expectations evicted as the oldest of a full class.
    pub expectations_evicted: Counter,
    /// ALG expectations removed by the protocol (BYE, CANCEL, TEARDOWN, de-registration).
    pub expectations_removed: Counter,
    /// RTP/RTCP pairs that could not get consecutive outside ports.
    pub alg_pair_split: Counter,
    /// SIP ALG events (see [`AlgEvent`]).
    pub alg_sip: [Counter; N_ALG_EVENTS],
    /// RTSP ALG events (see [`AlgEvent`]).
    pub alg_rtsp: [Counter; N_ALG_EVENTS],
    /// Events of the ALGs the dataplane runs through their contract (IRC), by session
    /// id (see [`ContractEvent`]).
    pub alg_contract: [[Counter; N_CONTRACT_EVENTS]; 8],
    /// PPTP calls and their GRE (see `cgnat_dataplane::nat::PPTP_EVENTS`).
    pub pptp: [Counter; crate::nat::PPTP_EVENTS.len()],
    /// FTP commands and replies the ALG parsed.
    pub alg_ftp_messages: Counter,
    /// FTP addresses rewritten.
    pub alg_ftp_rewrites: Counter,
    /// FTP PORT/EPRT naming another host than the client (bounce), left alone.
    pub alg_ftp_bounce: Counter,
    /// FTP PORT/EPRT naming a data port below alg.ftp.min_data_port, left alone.
    pub alg_ftp_low_port: Counter,
    /// FTP PORT/EPRT/227 naming the client's own address that got no mapping (the
    /// segment's tag full, a port below min_data_port, no port free): the address
    /// leaves as the outside one, with the port as written, and nothing is opened.
    pub alg_ftp_masked: Counter,
    /// FTP lines the ALG could not parse, left alone.
    pub alg_ftp_parse_errors: Counter,
    /// Segments holding the start of a command, held for the rest.
    pub alg_ftp_held: Counter,
    /// Held segments joined with their continuation and rewritten.
    pub alg_ftp_joined: Counter,
    /// Held segments sent as they were (no continuation in time).
    pub alg_ftp_released: Counter,
    /// FTP sessions the ALG stood aside from (AUTH TLS accepted).
    pub alg_ftp_stand_aside: Counter,
    /// FTP commands the policy refused and answered (`504` to the client, the command
    /// kept from the server).
    pub alg_ftp_policy_reply: Counter,
    /// FTP commands the policy refused by dropping their segment.
    pub alg_ftp_policy_drop: Counter,
    /// New sessions to an ALG's port that the ALG does not serve because of their
    /// subscriber (`alg.<name>.only`, `except`), by ALG id.
    pub alg_subscriber_off: [Counter; 8],
    /// Packets whose IPv4 options were overwritten with no-operation options.
    pub ip_options_stripped: Counter,
    /// Inbound-created sessions nobody answered, recycled for a newer one (the
    /// subscriber's inbound budget was full).
    pub inbound_sessions_recycled: Counter,
    /// NAT events lost because a buffer or ring toward the exporter was full.
    pub log_events_dropped: Counter,
    /// HA sync: sessions created or ended that found the journal toward the sync
    /// thread full (the standby then gets a bulk sync).
    pub ha_journal_full: Counter,
    /// NAT events about NAT64 subscribers not logged: the handle or key they were
    /// made from named no live host or prefix when the event was made (never seen
    /// in a correct run; no wrong address is sent).
    pub log_events_nat64_unlogged: Counter,
    /// NAT64 sessions made to an ALG's server port without the ALG: SIP, whose
    /// messages name the IPv6 host (FTP, TFTP and RTSP follow a NAT64 session).
    pub alg_nat64_skipped: Counter,
    /// NAT64 FTP control lines the ALG could not translate for the IPv4 server or
    /// the IPv6 client (RFC 6384), passed unchanged: PORT, PASV, LPRT, LPSV, EPRT
    /// |1| or an EPRT |2| naming another address (or no mapping free), EPSV ALL or
    /// 1, a 227 naming an address other than the server's.
    pub alg_nat64_ftp_refused: Counter,
    /// PCP and NAT-PMP mappings alive now.
    pub pcp_mappings_active: Counter,
    /// PCP and NAT-PMP mappings whose lifetime ended.
    pub pcp_mappings_expired: Counter,
    /// PCP and NAT-PMP requests, by outcome (see [`PcpOutcome`]).
    pub pcp: [Counter; PcpOutcome::ALL.len()],
    /// PCP frames a full ring to the control lcore (on the control lcore: back to a
    /// worker) could not take, held in the lcore's backlog to be sent in order.
    pub alg_frames_held: Counter,
    /// PCP frames in that backlog now (a gauge).
    pub alg_backlog: Counter,
    /// Polls that took no new frames (a worker: from its ports and handoff ring; the
    /// control lcore: from a worker's PCP ring) while the backlog was past its mark.
    pub alg_backpressured_polls: Counter,
    /// A worker: the time its ALG stream engine took for an ALG frame, from taking it
    /// to queueing it (and what it released) for transmission.
    pub alg_latency: Latency,
    /// Drops, by reason.
    pub drops: DropCounters,
    /// Per VLAN sub-interface: received, sent, dropped ([`crate::vlan::slot`]).
    pub vlan: VlanCounters,
}

/// Upper bounds of [`Latency`]'s buckets, in nanoseconds (1 us to 1 s; one more
/// bucket holds the rest).
pub const LATENCY_BOUNDS_NS: [u64; 16] = [
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    100_000_000,
    500_000_000,
    1_000_000_000,
];

/// A latency histogram with one writer: a counter per bucket of
/// [`LATENCY_BOUNDS_NS`] (the last one above all of them) and the sum.
#[derive(Debug, Default)]
pub struct Latency {
    /// Values per bucket (not cumulative): `buckets[i]` counts those at most
    /// `LATENCY_BOUNDS_NS[i]` and above the bound before it.
    pub buckets: [Counter; LATENCY_BOUNDS_NS.len() + 1],
    /// Sum of the values, in nanoseconds.
    pub sum_ns: Counter,
}

impl Latency {
    /// Counts one value.
    #[inline]
    pub fn record(&self, ns: u64) {
        let i = LATENCY_BOUNDS_NS.partition_point(|&b| b < ns);
        self.buckets[i].inc();
        self.sum_ns.add(ns);
    }

    /// The bucket counts.
    pub fn counts(&self) -> [u64; LATENCY_BOUNDS_NS.len() + 1] {
        std::array::from_fn(|i| self.buckets[i].get())
    }
}

/// The upper bound (ns) of the bucket holding quantile `q` (0 to 1) of `counts`
/// (buckets of [`Latency`], summed over lcores); `None` without values, `u64::MAX`
/// in the last bucket.
pub fn quantile_ns(counts: &[u64], q: f64) -> Option<u64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (i, n) in counts.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(LATENCY_BOUNDS_NS.get(i).copied().unwrap_or(u64::MAX));
        }
    }
    Some(u64::MAX)
}

/// Counters per VLAN sub-interface of each port: [`crate::vlan::RX`], `TX` and
/// `DROPS` of sub-interface `i` of side `s` at `s * MAX_VLANS + i`.
#[derive(Debug)]
pub struct VlanCounters(pub [[Counter; 3]; 2 * cgnat_config::MAX_VLANS]);

impl Default for VlanCounters {
    fn default() -> Self {
        VlanCounters(std::array::from_fn(|_| Default::default()))
    }
}

impl std::ops::Index<usize> for VlanCounters {
    type Output = [Counter; 3];
    fn index(&self, i: usize) -> &[Counter; 3] {
        &self.0[i]
    }
}

/// The stages of a worker's burst path ([`crate::vector`]), in order: parse and
/// classify every frame; hash, prefetch and look up the sessions of the plain ones;
/// translate those with a session; create the sessions of the plain new outbound
/// flows (in stages over all of them); the full per-packet path for the rest (new
/// flows it cannot create as the full path would, ALG, ICMP errors, fragments,
/// hairpin, foreign frames); dispatch of every frame.
pub const STAGES: [&str; N_STAGES] = ["parse", "lookup", "translate", "create", "slow", "dispatch"];

/// Number of [`STAGES`].
pub const N_STAGES: usize = 6;

/// Picks one counter of a worker's set.
pub type CounterOf = fn(&WorkerCounters) -> &Counter;

/// The FTP ALG's counters: the event label in `/metrics`
/// (`cgnat_alg_events_total{alg="ftp",event=...}`), the key in the summary's `alg`
/// table, and the counter. One list, so that neither output can miss one.
pub const FTP_EVENTS: [(&str, &str, CounterOf); 12] = [
    ("messages", "ftp_messages", |c| &c.alg_ftp_messages),
    ("rewritten", "ftp_rewrites", |c| &c.alg_ftp_rewrites),
    ("bounce", "ftp_bounce", |c| &c.alg_ftp_bounce),
    ("low_port", "ftp_low_port", |c| &c.alg_ftp_low_port),
    ("masked", "ftp_masked", |c| &c.alg_ftp_masked),
    ("parse_errors", "ftp_parse_errors", |c| {
        &c.alg_ftp_parse_errors
    }),
    ("held", "ftp_held", |c| &c.alg_ftp_held),
    ("joined", "ftp_joined", |c| &c.alg_ftp_joined),
    ("released", "ftp_released", |c| &c.alg_ftp_released),
    ("stand_aside", "ftp_stand_aside", |c| &c.alg_ftp_stand_aside),
    ("policy_reply", "ftp_policy_reply", |c| {
        &c.alg_ftp_policy_reply
    }),
    ("policy_drop", "ftp_policy_drop", |c| &c.alg_ftp_policy_drop),
];

/// The decisions of the ALGs' policies, as `cgnat_alg_policy_total{alg,decision}` and
/// the summary's `alg.policy` name them: a command or request refused and answered in
/// the server's name, refused by dropping it, and a new session left without its ALG
/// because of its subscriber (`alg.<name>.only`, `except`).
pub const POLICY_DECISIONS: [&str; 3] = ["reply", "drop", "subscriber_off"];

/// Picks the [`AlgEvent`] counters of a text ALG.
pub type EventsOf = fn(&WorkerCounters) -> &[Counter; N_ALG_EVENTS];

/// The text ALGs (SIP, RTSP: their messages are framed and rewritten the same way) by
/// session id (`cgnat_alg::id`), with their [`AlgEvent`] counters: the `alg` label of
/// `cgnat_alg_events_total` and the key in the summary's `alg` table are the
/// registry's name of the ALG. One list, so that no output can miss one.
pub const TEXT_ALG_EVENTS: [(u8, EventsOf); 2] = [
    (cgnat_alg::id::SIP, |c| &c.alg_sip),
    (cgnat_alg::id::RTSP, |c| &c.alg_rtsp),
];

/// The registry's name of ALG `id` (`cgnat_alg::id`).
pub fn alg_name(id: u8) -> &'static str {
    cgnat_alg::plugin(id).map_or("", |p| p.name)
}

impl WorkerCounters {
    /// How many times ALG `alg` (its id) took policy decision `d` (an index of
    /// [`POLICY_DECISIONS`]).
    pub fn alg_policy(&self, alg: u8, d: usize) -> u64 {
        let event = |e: AlgEvent| match alg {
            a if a == cgnat_alg::PLUGINS[2].id => self.alg_sip[e as usize].get(),
            a if a == cgnat_alg::PLUGINS[3].id => self.alg_rtsp[e as usize].get(),
            _ => 0,
        };
        let ftp = alg == cgnat_alg::PLUGINS[0].id;
        match d {
            0 if ftp => self.alg_ftp_policy_reply.get(),
            1 if ftp => self.alg_ftp_policy_drop.get(),
            0 => event(AlgEvent::PolicyReply),
            1 => event(AlgEvent::PolicyDrop),
            _ => self
                .alg_subscriber_off
                .get(usize::from(alg))
                .map_or(0, Counter::get),
        }
    }

    /// The counter of contract ALG `alg`'s own event `name` (its
    /// `cgnat_alg::contract::Contract::events`, and the stream engine's
    /// `policy_reply`, `policy_drop`, `held`, `joined`, `released` for an ALG that has
    /// them): FTP's are its `cgnat_alg_ftp_*` counters, by their labels in
    /// [`FTP_EVENTS`], and `alg_nat64_ftp_refused`; a text ALG's ([`TEXT_ALG_EVENTS`]:
    /// SIP's `not_a_message`, `registrations`...) its [`AlgEvent`] counters of the
    /// same name; None for the others.
    pub fn own_event(&self, alg: u8, name: &str) -> Option<&Counter> {
        if !has_own_event(alg, name) {
            return None;
        }
        if let Some(ev) = self.text_alg_events(counted_as(alg)) {
            return ALG_EVENT_NAMES
                .iter()
                .position(|n| *n == name)
                .map(|k| &ev[k]);
        }
        if name == "nat64_refused" {
            return Some(&self.alg_nat64_ftp_refused);
        }
        FTP_EVENTS.iter().find(|e| e.0 == name).map(|e| (e.2)(self))
    }

    /// The [`AlgEvent`] counters of text ALG `alg` (see [`TEXT_ALG_EVENTS`]); None
    /// for the others.
    #[inline]
    pub fn text_alg_events(&self, alg: u8) -> Option<&[Counter; N_ALG_EVENTS]> {
        TEXT_ALG_EVENTS
            .iter()
            .find(|(id, _)| *id == alg)
            .map(|(_, of)| of(self))
    }

    /// The [`ContractEvent`] counter `e` of contract ALG `alg` (its session id): for a
    /// text ALG, its [`AlgEvent`] counter of the same meaning when there is one.
    #[inline]
    pub fn contract_event(&self, alg: u8, e: ContractEvent) -> &Counter {
        self.contract_event_at(alg, e as usize)
    }

    /// [`WorkerCounters::contract_event`] by the event's index (in
    /// [`CONTRACT_EVENT_NAMES`]).
    #[inline]
    pub fn contract_event_at(&self, alg: u8, e: usize) -> &Counter {
        if let (Some(Some(a)), Some(ev)) = (TEXT_EVENT_OF.get(e), self.text_alg_events(alg)) {
            return &ev[*a as usize];
        }
        if alg == cgnat_alg::id::RTCP && e == ContractEvent::NoRoom as usize {
            // An RTCP rewrite without room: SIP's `no_room`, as always.
            return &self.alg_sip[AlgEvent::NoRoom as usize];
        }
        &self.alg_contract[usize::from(alg) & 7][e % N_CONTRACT_EVENTS]
    }

    /// Counts a drop.
    #[inline]
    pub fn count_drop(&self, r: DropReason) {
        self.drops[r as usize].inc();
    }
    /// Reads a drop counter.
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.drops[r as usize].get()
    }
}

/// What happened to a SIP or RTSP message in the ALG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlgEvent {
    /// Messages parsed.
    Messages = 0,
    /// Messages rewritten.
    Rewritten,
    /// Datagrams or segments that were not a message of the protocol (keep-alives,
    /// TLS), passed untouched.
    NotMessage,
    /// Messages refused by the parser (no colon, bad Content-Length, too long, ...),
    /// passed untouched with no pinhole.
    ParseErrors,
    /// SDP or Transport with a problem (missing, duplicated or malformed fields, IPv6,
    /// ports out of range): no pinhole for it.
    NoPinhole,
    /// Pinholes asked for but refused (no port, table full).
    PinholeRefused,
    /// Media pinhole pairs opened.
    MediaPairs,
    /// Calls or sessions ended (BYE, CANCEL, final error, TEARDOWN).
    Ended,
    /// Registrations pinned / removed.
    Registrations,
    /// De-registrations.
    Deregistrations,
    /// Endpoints naming another host (RTSP destination elsewhere), opened for nobody.
    Elsewhere,
    /// Segments holding an incomplete message, held for the rest.
    Held,
    /// Held segments joined with their continuation.
    Joined,
    /// Held segments sent as they were (no continuation in time).
    Released,
    /// More endpoints in one message than the ALG carries (the rest left alone).
    TooManyEndpoints,
    /// Rewrites that did not fit in the buffer (the message went as it was).
    NoRoom,
    /// RTCP CNAMEs of announced media that named the inside host, rewritten.
    RtcpRewritten,
    /// Media ports (SDP `m=`, RTSP `client_port`) below the configured
    /// `min_media_port`: no pinhole opened for them.
    LowPort,
    /// Client texts with requests the ALG's policy refused and answered (a response
    /// in the server's name; the requests never reach the server).
    PolicyReply,
    /// Client texts with requests the policy refused by dropping their frames.
    PolicyDrop,
}

/// What happened to the messages of an ALG the dataplane runs through its contract
/// (`cgnat_alg::contract`): one set per ALG of the registry with a contract, in
/// `cgnat_alg_events_total{alg,event}` and the summary's `alg` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContractEvent {
    /// Whole messages read.
    Messages = 0,
    /// Messages rewritten (inline on the contract path, or by the ALG stream engine).
    Rewritten,
    /// Of those, rewritten inline by the worker (the edits kept the length).
    RewrittenInline,
    /// Announced endpoints given a translation and an expectation.
    Pinholes,
    /// Endpoints of the subscriber's the peer named, found (lookups).
    Lookups,
    /// Asks refused: no port, table full, a lookup of no translation of the
    /// subscriber's.
    Refused,
    /// Announced endpoints naming another address than the subscriber's: left as
    /// written, nothing opened.
    Elsewhere,
    /// Bytes the ALG would not read (too long, malformed), passed untouched.
    Skipped,
    /// Segments holding an incomplete message, held for the rest.
    Held,
    /// Held segments joined with their continuation.
    Joined,
    /// Held segments sent as they were.
    Released,
    /// Rewrites that did not fit in the buffer or the edit list.
    NoRoom,
    /// More asks in one message than a plan carries (the rest left alone).
    TooManyAsks,
    /// Asks for a 16-bit identifier (`Kind::Id`): refused until the NAT maps them.
    IdUnsupported,
    /// Messages of a NAT64 session whose edits were not made (they would write IPv4
    /// endpoints for or to an IPv6 host): passed as written, the asks still granted.
    Nat64Untouched,
    /// Announced RTP/RTCP pairs (`Kind::UdpPair`) given their translations.
    MediaPairs,
    /// Groups ended ([`cgnat_alg::contract::Ask::EndGroup`]) that had expectations.
    Ended,
    /// Announced pairs below the ALG's `min_media_port`: refused.
    LowPort,
}

/// Number of [`ContractEvent`]s.
pub const N_CONTRACT_EVENTS: usize = 18;

/// The [`AlgEvent`] a text ALG (one of [`TEXT_ALG_EVENTS`]) run through its contract
/// counts each [`ContractEvent`] (by index) as, so that its counters keep their names:
/// the events of the same meaning.
const TEXT_EVENT_OF: [Option<AlgEvent>; N_CONTRACT_EVENTS] = {
    let mut t = [None; N_CONTRACT_EVENTS];
    t[ContractEvent::Messages as usize] = Some(AlgEvent::Messages);
    t[ContractEvent::Rewritten as usize] = Some(AlgEvent::Rewritten);
    t[ContractEvent::Elsewhere as usize] = Some(AlgEvent::Elsewhere);
    t[ContractEvent::Held as usize] = Some(AlgEvent::Held);
    t[ContractEvent::Joined as usize] = Some(AlgEvent::Joined);
    t[ContractEvent::Released as usize] = Some(AlgEvent::Released);
    t[ContractEvent::NoRoom as usize] = Some(AlgEvent::NoRoom);
    t[ContractEvent::TooManyAsks as usize] = Some(AlgEvent::TooManyEndpoints);
    t[ContractEvent::MediaPairs as usize] = Some(AlgEvent::MediaPairs);
    t[ContractEvent::Ended as usize] = Some(AlgEvent::Ended);
    t[ContractEvent::LowPort as usize] = Some(AlgEvent::LowPort);
    t
};

/// Label values of [`ContractEvent`]s, in order.
pub const CONTRACT_EVENT_NAMES: [&str; N_CONTRACT_EVENTS] = [
    "messages",
    "rewritten",
    "rewritten_inline",
    "pinholes",
    "lookups",
    "refused",
    "elsewhere",
    "skipped",
    "held",
    "joined",
    "released",
    "no_room",
    "too_many_asks",
    "id_unsupported",
    "nat64_untouched",
    "media_pairs",
    "ended",
    "low_media_port",
];

/// Whether contract event `e` of ALG `alg` is exported under its own name: not when
/// the ALG is a text ALG as well whose [`AlgEvent`] of that name already is (the same
/// counter, [`WorkerCounters::contract_event`]).
pub fn contract_event_exported(alg: u8, e: usize) -> bool {
    let text = TEXT_ALG_EVENTS.iter().any(|(id, _)| *id == alg);
    !(text && ALG_EVENT_NAMES.contains(&CONTRACT_EVENT_NAMES[e]))
}

/// The ALGs of the registry the dataplane runs through their contract: each has its
/// [`ContractEvent`] counters ([`WorkerCounters::contract_event`]).
pub fn contract_algs() -> impl Iterator<Item = &'static cgnat_alg::Plugin> {
    cgnat_alg::PLUGINS.iter().filter(|p| p.contract.is_some())
}

/// The [`ContractEvent`]s of contract ALG `alg` exported under their own label
/// (`cgnat_alg_events_total{alg,event}`), as (index, label): those whose label the
/// ALG's own counters already have ([`WorkerCounters::own_event`], FTP's `messages`,
/// `rewritten`, `held`...) are left to them, so no series is written twice.
pub fn contract_series(alg: u8) -> impl Iterator<Item = (usize, &'static str)> {
    CONTRACT_EVENT_NAMES
        .iter()
        .copied()
        .enumerate()
        .filter(move |&(_, name)| !has_own_event(alg, name))
}

/// Whether contract ALG `alg` counts event `name` in a counter of its own
/// ([`WorkerCounters::own_event`]).
pub fn has_own_event(alg: u8, name: &str) -> bool {
    if TEXT_ALG_EVENTS.iter().any(|(id, _)| *id == counted_as(alg)) {
        // A text ALG's events its contract names, as its counters of those names.
        let named = cgnat_alg::contract_of(alg).is_some_and(|c| c.events().contains(&name));
        return named && ALG_EVENT_NAMES.contains(&name);
    }
    alg == cgnat_alg::id::FTP && (name == "nat64_refused" || FTP_EVENTS.iter().any(|e| e.0 == name))
}

/// The ALG among whose counters session id `alg`'s own events are counted: the RTCP
/// of announced media (`cgnat_alg::id::RTCP`, SIP's and RTSP's alike) among SIP's
/// (`rtcp_cname_rewritten`), as always; any other ALG among its own.
fn counted_as(alg: u8) -> u8 {
    if alg == cgnat_alg::id::RTCP {
        cgnat_alg::id::SIP
    } else {
        alg
    }
}

/// Number of [`AlgEvent`]s.
pub const N_ALG_EVENTS: usize = 20;

/// Label values of [`AlgEvent`]s, in order.
pub const ALG_EVENT_NAMES: [&str; N_ALG_EVENTS] = [
    "messages",
    "rewritten",
    "not_a_message",
    "parse_errors",
    "no_pinhole",
    "pinhole_refused",
    "media_pairs",
    "ended",
    "registrations",
    "deregistrations",
    "destination_elsewhere",
    "held",
    "joined",
    "released",
    "too_many_endpoints",
    "no_room",
    "rtcp_cname_rewritten",
    "low_media_port",
    "policy_reply",
    "policy_drop",
];

/// Index of a protocol in per-protocol counters.
pub fn proto_index(proto: u8) -> usize {
    match proto {
        6 => 0,
        17 => 1,
        1 => 2,
        _ => 3,
    }
}

/// Protocol names in per-protocol counter order ("other": the address-only
/// protocols, GRE, ESP, AH, ...).
pub const PROTO_NAMES: [&str; 4] = ["tcp", "udp", "icmp", "other"];

labelled! {
    /// What became of a PCP or NAT-PMP request: granted, or why it was refused or
    /// dropped. Each is a counter of its own.
    PcpOutcome {
    /// A mapping created or refreshed.
    Mapped = "mapped",
    /// A mapping deleted (lifetime 0).
    Deleted = "deleted",
    /// ANNOUNCE or NAT-PMP public address answered.
    Answered = "answered",
    /// Too short, or a response: dropped without an answer.
    Dropped = "dropped",
    /// Not from the inside port: dropped.
    NotInside = "not_inside",
    /// More requests from one subscriber in a second than allowed: dropped.
    RateLimited = "rate_limited",
    /// Version neither 2 (PCP) nor 0 (NAT-PMP, when on).
    UnsuppVersion = "unsupp_version",
    /// Unknown opcode.
    UnsuppOpcode = "unsupp_opcode",
    /// Malformed header or opcode data.
    MalformedRequest = "malformed_request",
    /// Unknown mandatory option.
    UnsuppOption = "unsupp_option",
    /// Malformed option (or one its opcode does not take).
    MalformedOption = "malformed_option",
    /// Protocol neither TCP nor UDP, or an IPv6 address.
    UnsuppProtocol = "unsupp_protocol",
    /// Client address field is not the source address.
    AddressMismatch = "address_mismatch",
    /// THIRD_PARTY without allow_third_party.
    ThirdParty = "third_party",
    /// The mapping exists under another nonce, or "all ports" asked for.
    NotAuthorized = "not_authorized",
    /// The subscriber holds max_mappings_per_subscriber, or its port quota is used.
    Quota = "quota",
    /// No port or record left.
    NoResources = "no_resources",
    /// PREFER_FAILURE and the suggested endpoint cannot be had.
    CannotProvide = "cannot_provide_external",
    /// More FILTER options than a mapping keeps.
    ExcessivePeers = "excessive_remote_peers",
    }
}

#[cfg(test)]
mod policy_tests {
    use super::*;

    /// RTSP, a text ALG run through its contract, counts its contract events under its
    /// own names where they mean the same; the others on their own, exported beside.
    #[test]
    fn a_text_alg_on_the_contract_counts_under_its_own_names() {
        let c = WorkerCounters::default();
        let rtsp = cgnat_alg::id::RTSP;
        c.contract_event(rtsp, ContractEvent::MediaPairs).inc();
        c.contract_event(rtsp, ContractEvent::Lookups).inc();
        assert_eq!(c.alg_rtsp[AlgEvent::MediaPairs as usize].get(), 1);
        assert_eq!(
            c.alg_contract[usize::from(rtsp)][ContractEvent::Lookups as usize].get(),
            1
        );
        assert!(!contract_event_exported(
            rtsp,
            ContractEvent::Messages as usize
        ));
        assert!(contract_event_exported(
            rtsp,
            ContractEvent::Lookups as usize
        ));
        let irc = cgnat_alg::id::IRC;
        assert!(contract_event_exported(
            irc,
            ContractEvent::Messages as usize
        ));
        // A name both lists have is the same counter: the event of that name.
        for (e, name) in CONTRACT_EVENT_NAMES.iter().enumerate() {
            if let Some(a) = ALG_EVENT_NAMES.iter().position(|n| n == name) {
                assert_eq!(TEXT_EVENT_OF[e].map(|x| x as usize), Some(a), "{name}");
            }
        }
    }

    #[test]
    fn every_policy_decision_reads_its_own_counter() {
        let c = WorkerCounters::default();
        let [ftp, tftp, sip, rtsp] = [0, 1, 2, 3].map(|k| cgnat_alg::PLUGINS[k].id);
        c.alg_ftp_policy_reply.add(1);
        c.alg_ftp_policy_drop.add(2);
        c.alg_sip[AlgEvent::PolicyReply as usize].add(3);
        c.alg_sip[AlgEvent::PolicyDrop as usize].add(4);
        c.alg_rtsp[AlgEvent::PolicyReply as usize].add(5);
        c.alg_rtsp[AlgEvent::PolicyDrop as usize].add(6);
        for (k, a) in [ftp, tftp, sip, rtsp].into_iter().enumerate() {
            c.alg_subscriber_off[usize::from(a)].add(10 + k as u64);
        }
        let got: Vec<[u64; 3]> = [ftp, tftp, sip, rtsp]
            .iter()
            .map(|&a| [0, 1, 2].map(|d| c.alg_policy(a, d)))
            .collect();
        assert_eq!(got, [[1, 2, 10], [0, 0, 11], [3, 4, 12], [5, 6, 13]]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FTP, on the contract, keeps its own `messages`, `rewritten`, `held`, `joined`,
    /// `released` series; the contract's same labels are not written again for it (a
    /// series twice in `/metrics`), while an ALG without counters of its own (IRC) has
    /// every contract event.
    #[test]
    fn a_contract_algs_events_never_repeat_its_own_labels() {
        let ftp: Vec<&str> = contract_series(cgnat_alg::id::FTP).map(|e| e.1).collect();
        for (own, _, _) in FTP_EVENTS {
            assert!(!ftp.contains(&own), "{own} twice for ftp");
        }
        assert!(ftp.contains(&"pinholes") && ftp.contains(&"nat64_untouched"));
        assert_eq!(
            contract_series(cgnat_alg::id::IRC).count(),
            N_CONTRACT_EVENTS
        );
    }

    #[test]
    fn latency_buckets_hold_values_up_to_their_bound() {
        let l = Latency::default();
        for ns in [
            0,
            1_000,
            1_001,
            2_000,
            999_999_999,
            1_000_000_000,
            1_000_000_001,
        ] {
            l.record(ns);
        }
        let c = l.counts();
        assert_eq!(c[0], 2, "0 and 1 us: the first bucket");
        assert_eq!(c[1], 2, "1.001 and 2 us");
        assert_eq!(c[LATENCY_BOUNDS_NS.len() - 1], 2, "up to 1 s");
        assert_eq!(c[LATENCY_BOUNDS_NS.len()], 1, "above every bound");
        assert_eq!(
            l.sum_ns.get(),
            1_000 + 1_001 + 2_000 + 999_999_999 + 2_000_000_001
        );
    }

    #[test]
    fn quantiles_are_the_bound_of_the_bucket_reached() {
        let mut c = [0u64; LATENCY_BOUNDS_NS.len() + 1];
        assert_eq!(quantile_ns(&c, 0.5), None);
        c[2] = 98; // up to 5 us
        c[9] = 1; // up to 1 ms
        c[LATENCY_BOUNDS_NS.len()] = 1;
        assert_eq!(quantile_ns(&c, 0.5), Some(5_000));
        assert_eq!(quantile_ns(&c, 0.98), Some(5_000));
        assert_eq!(quantile_ns(&c, 0.99), Some(1_000_000));
        assert_eq!(quantile_ns(&c, 1.0), Some(u64::MAX));
        assert_eq!(quantile_ns(&c, 0.0), Some(5_000));
    }
}
