//! NAT44 state of one worker: sessions, mappings, subscribers, the pool and the
//! expiry wheel. Owns no packets: the pipeline asks it for a session and applies the
//! rewrite itself.
//!
//! A *mapping* binds an inside endpoint (and, under address- or port-dependent mapping,
//! the remote address or port too) to an outside address and port. A *session* is one
//! conversation (inside endpoint, remote endpoint) through a mapping. Under
//! endpoint-independent mapping several sessions share one mapping, which keeps the
//! same outside port for every remote (RFC 4787 REQ-1).
//!
//! A mapping that serves one session lives in that session's record (it is *folded*,
//! [`FOLDED`]): the mapping indexes name the session record, and no mapping record is
//! taken. A mapping record (`nat.max_mappings` of them) is taken when a second session
//! comes to share the mapping (endpoint-independent mapping, or an inbound session
//! under endpoint-independent or address-dependent filtering), when an ALG pins it,
//! for a static mapping, or when a subscriber asks for it (PCP, NAT-PMP: see [`pcp`]);
//! it stays until the mapping ends, even once one session is left. The subscriber table is sized by `nat.max_subscribers`, not by the sessions.
//!
//! Everything is sized at start-up: slabs with free lists, and fixed-size hash indexes
//! ([`index::Index`]) with room for every record of their slab, which never grow.
//! When a slab is empty, new sessions are refused and counted; live ones are never
//! evicted (RFC 6888 REQ-11).

mod calls;
pub use calls::{gre_call_id, CALL_LINGER, PPTP_EVENTS, PROTO_GRE};
mod create;
pub mod deterministic;
pub mod expect;
#[cfg(test)]
mod fold_tests;
pub mod gre;
pub mod hosts6;
pub mod index;
mod key;
mod kin;
#[cfg(test)]
mod nat64_tests;
pub mod pcp;
pub mod pool;
#[cfg(test)]
mod portless_tests;
pub mod rss;
pub mod sync;
pub mod wheel;

use crate::counters::{proto_index, DropReason, WorkerCounters};
use crate::log::{event, quota, LogEvent};
use crate::wire::{ipv4, tcp};
use cgnat_config::{Allocation, Behavior, Pooling};
pub use create::CreateHashes;
pub use expect::{class, Expect, ExpectReq, Expectations, MAX_EXPECT};
use hashbrown::HashMap;
use hosts6::Hosts6;
use index::{Hasher, Index, Probe};
pub use key::Key;
use pool::{Pool, PortError, PortLayout};
use std::sync::Arc;
use wheel::{Wheel, NIL};

/// A session's inside, outside and remote endpoints.
type Ends = ((u32, u16), (u32, u16), (u32, u16));

/// TCP state of a session (RFC 7857 section 3, after RFC 6146).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TcpState {
    /// UDP and ICMP sessions.
    None,
    /// Outbound SYN seen.
    SynOut,
    /// Inbound SYN seen first (created inbound under endpoint-independent filtering).
    SynIn,
    /// SYN seen in both directions.
    Established,
    /// FIN seen from the inside only.
    FinOut,
    /// FIN seen from the outside only.
    FinIn,
    /// FIN seen both ways.
    Closing,
    /// RST seen: held for the transitory timeout.
    Reset,
}

/// One conversation through the NAT. 32 bytes.
#[derive(Clone, Copy, Debug)]
pub struct Session {
    /// Inside address (host order).
    pub in_addr: u32,
    /// Outside (pool) address.
    pub out_addr: u32,
    /// Remote address.
    pub rem_addr: u32,
    /// Inside port or ICMP identifier.
    pub in_port: u16,
    /// Outside port or ICMP identifier.
    pub out_port: u16,
    /// Remote port (0 for ICMP).
    pub rem_port: u16,
    /// IP protocol.
    pub proto: u8,
    /// TCP state (low 3 bits), [`INBOUND`] (bit 3), the ALG bound to the session
    /// (bits 4 to 6) and [`ANSWERED`] (bit 7): see [`Session::state`] and
    /// [`Session::alg`].
    flags: u8,
    /// Last outbound packet, in seconds of the worker's clock.
    pub last_seen: u32,
    /// The mapping record this session uses; or, when the mapping serves this
    /// session alone and lives in this record (folded), [`FOLDED`] with the owning
    /// subscriber slot in the low 24 bits; `NIL` when the record is free.
    pub mapping: u32,
    /// Wheel link when alive, free-list link when not.
    next: u32,
}

const _: () = assert!(std::mem::size_of::<Session>() == 32);

/// [`Session::mapping`] of a session whose mapping lives in the session's own record
/// (the only session of its mapping): this bit, and the subscriber slot below it.
pub const FOLDED: u32 = 0x8000_0000;

/// [`Session`] flag: created by an inbound packet admitted by the filtering alone (no
/// ALG expectation, no static mapping); counted in the subscriber's inbound budget
/// (`max_inbound_sessions_per_subscriber`), not in its own session quota.
const INBOUND: u8 = 0x08;

/// [`Session`] flag of an [`INBOUND`] session: the inside host has sent on it.
const ANSWERED: u8 = 0x80;

/// The FTP ALG's id in [`Session::alg`] (the ids are the ALG registry's,
/// `cgnat_alg::id`, checked there to fit the 3 bits a session keeps them in).
pub const ALG_FTP: u8 = cgnat_alg::id::FTP;
/// The TFTP ALG's id in [`Session::alg`].
pub const ALG_TFTP: u8 = cgnat_alg::id::TFTP;
/// The SIP ALG's id in [`Session::alg`].
pub const ALG_SIP: u8 = cgnat_alg::id::SIP;
/// The RTSP ALG's id in [`Session::alg`].
pub const ALG_RTSP: u8 = cgnat_alg::id::RTSP;
/// An RTCP session an ALG announced (its CNAME may carry the inside address).
pub const ALG_RTCP: u8 = cgnat_alg::id::RTCP;
/// PPTP control sessions (`nat/calls.rs`).
pub const ALG_PPTP: u8 = cgnat_alg::id::PPTP;

// A session keeps its ALG in 3 bits.
const _: () = assert!(cgnat_alg::id::MAX < 8);

impl Session {
    const EMPTY: Session = Session {
        in_addr: 0,
        out_addr: 0,
        rem_addr: 0,
        in_port: 0,
        out_port: 0,
        rem_port: 0,
        proto: 0,
        flags: 0,
        last_seen: 0,
        mapping: NIL,
        next: NIL,
    };

    /// The packed state and ALG byte.
    const fn flags(state: TcpState, alg: u8) -> u8 {
        state as u8 | alg << 4
    }

    /// TCP state.
    #[inline]
    pub fn state(&self) -> TcpState {
        use TcpState::*;
        match self.flags & 0x07 {
            1 => SynOut,
            2 => SynIn,
            3 => Established,
            4 => FinOut,
            5 => FinIn,
            6 => Closing,
            7 => Reset,
            _ => None,
        }
    }

    fn set_state(&mut self, state: TcpState) {
        self.flags = self.flags & 0xf8 | state as u8;
    }

    /// Counted in the subscriber's inbound budget and not answered by the inside
    /// host yet.
    #[inline]
    fn unanswered(&self) -> bool {
        self.flags & (INBOUND | ANSWERED) == INBOUND
    }

    /// Counted in the subscriber's inbound budget (see [`INBOUND`]).
    #[inline]
    fn inbound(&self) -> bool {
        self.flags & INBOUND != 0
    }

    /// ALG bound to this session (0: none, [`ALG_FTP`], ...).
    #[inline]
    pub fn alg(&self) -> u8 {
        (self.flags >> 4) & 0x07
    }

    /// True when its mapping lives in this record (see [`FOLDED`]).
    #[inline]
    pub fn folded(&self) -> bool {
        self.mapping != NIL && self.mapping & FOLDED != 0
    }

    fn in_key(&self) -> Key {
        Key {
            proto: self.proto,
            a: self.in_addr,
            pa: self.in_port,
            b: self.rem_addr,
            pb: self.rem_port,
        }
    }
    fn out_key(&self) -> Key {
        Key {
            proto: self.proto,
            a: self.out_addr,
            pa: self.out_port,
            b: self.rem_addr,
            pb: self.rem_port,
        }
    }
}

/// A binding of an inside endpoint to an outside address and port. 24 bytes: the
/// outside address is the pool's (by [`Mapping::pool`]), the owning subscriber slot
/// shares a word with the protocol.
#[derive(Clone, Copy, Debug)]
pub struct Mapping {
    in_addr: u32,
    rem_addr: u32,
    in_port: u16,
    rem_port: u16,
    /// Outside port.
    pub out_port: u16,
    /// Pool address index.
    pub pool: u16,
    /// Sessions using it; free-list link when unused.
    pub sessions: u32,
    /// Owning subscriber slot (low 24 bits) and IP protocol (high 8 bits).
    sub_proto: u32,
}

const _: () = assert!(std::mem::size_of::<Mapping>() == 24);

impl Mapping {
    const EMPTY: Mapping = Mapping {
        in_addr: 0,
        rem_addr: 0,
        in_port: 0,
        rem_port: 0,
        out_port: 0,
        pool: 0,
        sessions: 0,
        sub_proto: SUB_NONE,
    };

    fn new(key: Key, pool: usize, out_port: u16, sessions: u32, sub: u32) -> Mapping {
        debug_assert!(sub <= index::MAX_RECORD);
        Mapping {
            in_addr: key.a,
            rem_addr: key.b,
            in_port: key.pa,
            rem_port: key.pb,
            out_port,
            pool: pool as u16,
            sessions,
            sub_proto: u32::from(key.proto) << 24 | sub,
        }
    }

    /// The masked inside key (remote parts zero under endpoint-independent mapping).
    #[inline]
    pub fn key(&self) -> Key {
        Key {
            proto: self.proto(),
            a: self.in_addr,
            pa: self.in_port,
            b: self.rem_addr,
            pb: self.rem_port,
        }
    }

    /// IP protocol.
    #[inline]
    pub fn proto(&self) -> u8 {
        (self.sub_proto >> 24) as u8
    }

    /// The owning subscriber slot.
    #[inline]
    fn sub(&self) -> u32 {
        self.sub_proto & SUB_NONE
    }

    /// Its outside address (its pool address's).
    #[inline]
    fn out_addr(&self, pool: &Pool) -> u32 {
        pool.addr(usize::from(self.pool))
    }

    /// Its key in the outside mapping index.
    #[inline]
    fn out_key(&self, pool: &Pool) -> Key {
        Key {
            proto: self.proto(),
            a: self.out_addr(pool),
            pa: self.out_port,
            b: 0,
            pb: 0,
        }
    }
}

/// A mapping's subscriber field when it has none (a free mapping record).
const SUB_NONE: u32 = 0x00ff_ffff;

/// Per-subscriber state: paired address, counts, number of port blocks (20 bytes; the
/// blocks themselves are in [`Nat`]'s flat block table, see
/// [`Nat::subscriber_blocks`]).
#[derive(Clone, Copy, Debug)]
pub struct Subscriber {
    /// Inside address.
    pub addr: u32,
    /// Sessions counted against max_sessions_per_subscriber (those remote hosts
    /// opened under the filtering alone are counted apart, in their own budget).
    pub sessions: u32,
    /// Mappings.
    pub mappings: u32,
    next_free: u32,
    /// Paired pool address index (u16::MAX: none yet).
    pub pool: u16,
    /// Port blocks held (at most `max_blocks_per_subscriber`).
    blocks: u16,
}

impl Subscriber {
    /// Port blocks held.
    pub fn block_count(&self) -> usize {
        usize::from(self.blocks)
    }
}

/// Timeouts in seconds.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// UDP (RFC 4787 REQ-5).
    pub udp: u32,
    /// TCP established (RFC 5382 REQ-5).
    pub tcp_established: u32,
    /// TCP transitory (RFC 5382 REQ-5).
    pub tcp_transitory: u32,
    /// ICMP query (RFC 5508 REQ-1).
    pub icmp: u32,
    /// Address-only sessions of the other IP protocols ([`portless`]).
    pub other: u32,
}

/// True for an IP protocol the NAT translates by address alone (GRE, ESP, AH, SCTP,
/// ...: every protocol but TCP, UDP and ICMP). Its session has ports 0 and keys
/// (inside, remote, protocol) and (pool address, remote, protocol); it has no
/// mapping (no port, no mapping index entry, no port-block accounting), counts in its
/// subscriber's session quota, and is created by the inside host only.
#[inline]
pub fn portless(proto: u8) -> bool {
    !matches!(proto, ipv4::PROTO_TCP | ipv4::PROTO_UDP | ipv4::PROTO_ICMP)
}

/// The NAT behaviour of one worker, resolved from the config.
#[derive(Clone, Debug)]
pub struct NatParams {
    /// Mapping behaviour.
    pub mapping: Behavior,
    /// Filtering behaviour.
    pub filtering: Behavior,
    /// Pooling behaviour.
    pub pooling: Pooling,
    /// Port allocation.
    pub allocation: Allocation,
    /// Pool addresses by pool index: sorted at start, a reload appends
    /// ([`pool::merged`]).
    pub pool: Vec<u32>,
    /// By pool index, true for the addresses a reload removed (they drain); empty at
    /// start.
    pub pool_draining: Vec<bool>,
    /// Port range.
    pub port_range: (u16, u16),
    /// Ports per block.
    pub block_size: u16,
    /// Blocks per subscriber.
    pub max_blocks_per_subscriber: u16,
    /// Sessions per subscriber.
    pub max_sessions_per_subscriber: u32,
    /// Sessions per subscriber created by inbound packets the filtering admitted.
    pub max_inbound_sessions_per_subscriber: u32,
    /// Sessions this worker may hold.
    pub max_sessions: u32,
    /// Mapping records this worker has (mappings shared by several sessions or
    /// pinned by an ALG, static mappings; a mapping of one session lives in the
    /// session's record).
    pub max_mappings: u32,
    /// Subscribers this worker may hold state for.
    pub max_subscribers: u32,
    /// Keep port parity.
    pub port_parity: bool,
    /// Try the inside port first.
    pub port_preservation: bool,
    /// Quarantine of released ports.
    pub quarantine_secs: u32,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// RFC 7422 parameters, under deterministic allocation.
    pub deterministic: Option<deterministic::Deterministic>,
    /// Static mappings: (protocol, inside address, inside port, outside address, port).
    pub statics: Vec<(u8, u32, u16, u32, u16)>,
    /// What to log (nothing unless the driver asks for it).
    pub log: crate::log::Policy,
    /// Most PPTP calls per worker (`nat/gre.rs`; the registry's `pptp_call` class).
    pub pptp_calls: usize,
    /// The `[alg.<name>]` keys the worker reads, per ALG of the registry (in its
    /// order): its server ports, and the keys its entry names
    /// ([`cgnat_alg::Plugin::keys`]): see [`NatParams::alg_ports`],
    /// [`NatParams::contract_policy`], [`NatParams::deny_methods`],
    /// [`NatParams::max_message_size`].
    pub alg_keys: [AlgKeys; cgnat_alg::PLUGINS.len()],
    /// Per ALG (its id), the subscriber prefixes it serves only (`alg.<name>.only`, if
    /// any) and those it does not (`except`); ALGs with neither are not listed.
    pub alg_subscribers: Vec<(u8, Vec<cgnat_config::Ipv4Net>, Vec<cgnat_config::Ipv4Net>)>,
    /// The outside port's RSS steering, set by the driver when the device steers
    /// replies by destination address and port; under dynamic allocation the pool
    /// then hands each worker the ports whose replies reach its queue. Ignored under
    /// port-block and deterministic allocation (they need contiguous ranges).
    pub steering: Option<Arc<rss::Steering>>,
    /// NAT64 (`[nat64]`): the subscriber prefix length (56, 64 or 128); None: NAT64
    /// off (no IPv6 host table).
    pub nat64_prefix_len: Option<u8>,
    /// The [`portless`] protocols translated (`nat.protocols`), one bit each; the
    /// others are dropped (`protocol_denied`).
    pub other_protocols: [u64; 4],
}

/// The `[alg.<name>]` keys of one ALG the worker reads (each neutral for an ALG whose
/// registry entry does not name it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlgKeys {
    /// `ports` of an ALG that is on (`enabled`); empty: off.
    pub ports: Vec<u16>,
    /// `min_data_port`: the lowest data port the subscriber may announce.
    pub min_data_port: u16,
    /// `loose`: an expected connection may come from any address.
    pub loose: bool,
    /// `min_media_port`: the lowest media port a message may open a pinhole pair to
    /// (0: any).
    pub min_media_port: u16,
    /// `deny_methods`: the request methods the policy refuses: the worker plans
    /// nothing for such a request (its ALG stream engine refuses it).
    pub deny_methods: Vec<String>,
    /// `max_message_size`: the largest request the subscriber may send (0: any).
    pub max_message_size: usize,
}

impl AlgKeys {
    /// The keys of `plugin` before its section is read ([`NatParams::set_algs`]):
    /// off, and a data and media port floor of 1024 (the config's defaults) where it
    /// takes one.
    fn unset(plugin: &cgnat_alg::Plugin) -> AlgKeys {
        let floor = |k: &str| if plugin.keys.contains(&k) { 1024 } else { 0 };
        AlgKeys {
            min_data_port: floor("min_data_port"),
            min_media_port: floor("min_media_port"),
            ..AlgKeys::default()
        }
    }

    /// The keys of `a`, the section of `plugin`.
    fn of(plugin: &cgnat_alg::Plugin, a: &cgnat_config::AlgProto) -> AlgKeys {
        let takes = |k: &str| plugin.keys.contains(&k);
        AlgKeys {
            ports: if a.enabled {
                a.ports.clone()
            } else {
                Vec::new()
            },
            min_data_port: if takes("min_data_port") {
                a.min_data_port
            } else {
                0
            },
            loose: takes("loose") && a.loose,
            min_media_port: if takes("min_media_port") {
                a.min_media_port
            } else {
                0
            },
            deny_methods: if takes("deny_methods") {
                a.deny_methods.clone()
            } else {
                Vec::new()
            },
            max_message_size: if takes("max_message_size") {
                a.max_message_size
            } else {
                0
            },
        }
    }
}

/// The bit set of protocols `list`.
pub fn protocol_set(list: &[u8]) -> [u64; 4] {
    let mut set = [0u64; 4];
    for &p in list {
        set[usize::from(p >> 6)] |= 1 << (p & 63);
    }
    set
}

impl NatParams {
    /// The lowest media port ALG `alg` (its id) may open a pinhole pair to
    /// (`alg.<name>.min_media_port`; 0 for an ALG without one).
    #[inline]
    pub fn min_media_port(&self, alg: u8) -> u16 {
        self.keys_of(alg).map_or(0, |k| k.min_media_port)
    }

    /// The `[alg.<name>]` keys its contract is told ([`cgnat_alg::contract::Conn`]'s
    /// policy) for ALG `alg` (its id), on the worker: its data and media port floors
    /// and `loose` (none for an ALG without them).
    pub fn contract_policy(&self, alg: u8) -> cgnat_alg::contract::Policy<'static> {
        let k = self.keys_of(alg);
        cgnat_alg::contract::Policy {
            min_data_port: k.map_or(0, |k| k.min_data_port),
            loose: k.is_some_and(|k| k.loose),
            min_media_port: k.map_or(0, |k| k.min_media_port),
            ..Default::default()
        }
    }

    /// The `[alg.<name>]` keys of ALG `alg` (its id).
    #[inline]
    fn keys_of(&self, alg: u8) -> Option<&AlgKeys> {
        let i = cgnat_alg::PLUGINS.iter().position(|p| p.id == alg)?;
        Some(&self.alg_keys[i])
    }

    /// The request methods ALG `alg` (its id) refuses (`alg.<name>.deny_methods`;
    /// none for an ALG without the key).
    #[inline]
    pub fn deny_methods(&self, alg: u8) -> &[String] {
        self.keys_of(alg).map_or(&[], |k| &k.deny_methods)
    }

    /// The largest request ALG `alg` (its id) lets the subscriber send
    /// (`alg.<name>.max_message_size`; 0: any, and for an ALG without the key).
    #[inline]
    pub fn max_message_size(&self, alg: u8) -> usize {
        self.keys_of(alg).map_or(0, |k| k.max_message_size)
    }

    /// Whether [`portless`] protocol `proto` is translated (`nat.protocols`).
    #[inline]
    pub fn allows_protocol(&self, proto: u8) -> bool {
        self.other_protocols[usize::from(proto >> 6)] >> (proto & 63) & 1 != 0
    }

    /// Orders this (newly read) pool as a reload applies it to `running` (by pool
    /// index): running addresses keep their indexes, new ones are appended, the ones
    /// no longer configured drain ([`pool::merged`]). Refused when the pool would
    /// exceed `room` addresses (the usage counters allocated at start) or the 16-bit
    /// pool indexes.
    pub fn follow(&mut self, running: &[u32], room: usize) -> Result<(), String> {
        let (list, draining) = pool::merged(running, &self.pool);
        let most = room.min(pool::MAX_POOL_INDEXES);
        if list.len() > most {
            return Err(format!(
                "the pool would hold {} addresses (those draining included), more than the \
                 {most} it has room for since start",
                list.len()
            ));
        }
        self.pool = list;
        self.pool_draining = draining;
        Ok(())
    }

    /// The server ports ALG `id` (`cgnat_alg::id`) is configured on (empty: off).
    pub fn alg_ports(&self, id: u8) -> &[u16] {
        self.keys_of(id).map_or(&[], |k| &k.ports)
    }

    /// The server ports of the ALGs that are on, and the keys of `[alg.<name>]` the
    /// worker reads.
    pub fn set_algs(&mut self, alg: &cgnat_config::Alg) {
        for (keys, (p, a)) in self.alg_keys.iter_mut().zip(alg.iter()) {
            *keys = AlgKeys::of(p, a);
        }
        self.alg_subscribers = alg
            .iter()
            .filter(|(_, a)| !a.only.is_empty() || !a.except.is_empty())
            .map(|(p, a)| (p.id, a.only.clone(), a.except.clone()))
            .collect();
    }

    /// Resolves the NAT settings for `workers` workers from the config. Fails only when
    /// deterministic allocation cannot give every inside address a port.
    pub fn from_config(
        nat: &cgnat_config::Nat,
        workers: u16,
    ) -> Result<NatParams, deterministic::DeterministicError> {
        let mut pool: Vec<u32> = Vec::new();
        for net in &nat.pool {
            for i in 0..net.len() {
                if let Some(a) = net.nth(i) {
                    pool.push(u32::from(a));
                }
            }
        }
        pool.sort_unstable();
        pool.dedup();
        let deterministic = match nat.allocation {
            Allocation::Deterministic => Some(deterministic::Deterministic::new(
                &nat.inside,
                &pool,
                nat.port_range.0,
                nat.port_range.1,
            )?),
            _ => None,
        };
        // Under deterministic allocation a subscriber's range is the unit of ownership.
        let block_size = deterministic
            .as_ref()
            .map_or(nat.block_size, |d| d.ports_per_subscriber);
        Ok(NatParams {
            mapping: nat.mapping,
            filtering: nat.filtering,
            pooling: nat.pooling,
            allocation: nat.allocation,
            pool,
            pool_draining: Vec::new(),
            port_range: nat.port_range,
            block_size,
            max_blocks_per_subscriber: nat.max_blocks_per_subscriber,
            max_sessions_per_subscriber: nat.max_sessions_per_subscriber,
            max_inbound_sessions_per_subscriber: nat.max_inbound_sessions_per_subscriber,
            max_sessions: (nat.max_sessions / u32::from(workers.max(1))).max(1),
            max_mappings: (nat.mapping_records(workers.into()) / u32::from(workers.max(1))).max(1),
            max_subscribers: nat
                .subscriber_limit(workers.into())
                .div_ceil(u32::from(workers.max(1)))
                .max(1),
            port_parity: nat.port_parity,
            port_preservation: nat.port_preservation,
            quarantine_secs: nat.quarantine_secs,
            timeouts: Timeouts {
                udp: nat.timeouts.udp,
                tcp_established: nat.timeouts.tcp_established,
                tcp_transitory: nat.timeouts.tcp_transitory,
                icmp: nat.timeouts.icmp,
                other: nat.timeouts.other,
            },
            deterministic,
            statics: nat
                .statics
                .iter()
                .map(|m| {
                    let proto = match m.protocol {
                        cgnat_config::L4Proto::Tcp => ipv4::PROTO_TCP,
                        cgnat_config::L4Proto::Udp => ipv4::PROTO_UDP,
                    };
                    (
                        proto,
                        u32::from(*m.inside.ip()),
                        m.inside.port(),
                        u32::from(*m.outside.ip()),
                        m.outside.port(),
                    )
                })
                .collect(),
            log: crate::log::Policy::default(),
            alg_subscribers: Vec::new(),
            alg_keys: std::array::from_fn(|i| AlgKeys::unset(&cgnat_alg::PLUGINS[i])),
            pptp_calls: cgnat_alg::CLASSES[usize::from(cgnat_alg::class::PPTP_CALL)].max,
            steering: None,
            nat64_prefix_len: None,
            other_protocols: protocol_set(&nat.other_protocols),
        })
    }

    /// Sets NAT64's subscriber prefix length from `[nat64]` (absent: NAT64 off).
    pub fn set_nat64(&mut self, nat64: Option<&cgnat_config::Nat64>) {
        self.nat64_prefix_len = nat64.map(|n| n.subscriber_prefix_len);
    }
}

/// A packet's 5-tuple as the NAT sees it (ICMP queries: identifier as the port of the
/// querying side, 0 for the other).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuple {
    /// IP protocol.
    pub proto: u8,
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

impl Tuple {
    /// Its key in the in2out index (an outbound packet: source inside).
    #[inline]
    pub fn in2out_key(&self) -> Key {
        Key {
            proto: self.proto,
            a: self.src,
            pa: self.sport,
            b: self.dst,
            pb: self.dport,
        }
    }

    /// Its key in the out2in index (an inbound packet: destination the mapping).
    #[inline]
    pub fn out2in_key(&self) -> Key {
        Key {
            proto: self.proto,
            a: self.dst,
            pa: self.dport,
            b: self.src,
            pb: self.sport,
        }
    }

    /// The tuple of a packet going the other way.
    pub fn reversed(&self) -> Tuple {
        Tuple {
            proto: self.proto,
            src: self.dst,
            sport: self.dport,
            dst: self.src,
            dport: self.sport,
        }
    }
}

/// Words of [`Nat::alg_ports`] per protocol (a bit for each of 65,536 ports).
const ALG_PORT_WORDS: usize = 1024;

/// Each ALG with the ports it is configured on.
fn alg_lists(p: &NatParams) -> impl Iterator<Item = (&'static cgnat_alg::Plugin, &Vec<u16>)> {
    cgnat_alg::PLUGINS
        .iter()
        .zip(p.alg_keys.iter().map(|k| &k.ports))
}

/// Fills [`Nat::alg_ports`] (TCP's words, then UDP's) for `p`, in place.
fn set_alg_port_bits(p: &NatParams, bits: &mut Vec<u64>) {
    bits.clear();
    bits.resize(2 * ALG_PORT_WORDS, 0);
    for (a, ports) in alg_lists(p) {
        for (i, proto) in [ipv4::PROTO_TCP, ipv4::PROTO_UDP].into_iter().enumerate() {
            if a.protocols.contains(&proto) {
                for &port in ports {
                    bits[i * ALG_PORT_WORDS + usize::from(port >> 6)] |= 1 << (port & 63);
                }
            }
        }
    }
}

/// The NAT tables of one worker.
pub struct Nat {
    params: NatParams,
    sessions: Vec<Session>,
    free_session: u32,
    live_sessions: u32,
    /// The sessions the burst path's creation stage made whose outside keys (the
    /// session's, and a folded mapping's) are not indexed yet ([`Nat::defer_out_keys`]).
    deferred: Deferred,
    /// Mapping records (mappings a second session or a pin shares, static ones).
    mappings: Vec<Mapping>,
    free_mapping: u32,
    /// Record numbers of the mapping indexes: below it a session record (whose
    /// mapping lives in it, see [`FOLDED`]), from it on `map_base` plus a mapping
    /// record. The number of session records.
    map_base: u32,
    /// Subscriber slots in use or freed; grows (within its capacity, reserved at
    /// start-up, never reallocated) up to `sub_cap` when the free list is empty, so
    /// slots never used are never touched.
    subs: Vec<Subscriber>,
    /// Per subscriber slot (parallel to `subs`): its inbound-created sessions, as two
    /// lists through `inb_link`, oldest first (those the inside host has not answered,
    /// and those it has), and their number.
    sub_inbound: Vec<InboundList>,
    /// Per session `i`: previous (`2 i`) and next (`2 i + 1`) in its subscriber's
    /// inbound list; set when it joins one, read only while in it. Zeroed memory the
    /// kernel maps as it is first written: only inbound-created sessions touch it.
    inb_link: Vec<u32>,
    sub_cap: u32,
    free_sub: u32,
    /// Port blocks of every subscriber slot, `block_room` entries per slot (the
    /// first `Subscriber::blocks` of them held), as `pool << 16 | block`. Zeroed
    /// memory allocated once at start-up: no allocation per slot.
    sub_blocks: Vec<u32>,
    /// Entries per slot in `sub_blocks`: `max_blocks_per_subscriber` under port-block
    /// allocation, 0 otherwise.
    block_room: usize,
    /// Sessions by inside key ([`Session::in_key`]).
    in_idx: Index,
    /// Sessions by outside key ([`Session::out_key`]).
    out_idx: Index,
    /// Seeded hash of the index keys.
    hasher: Hasher,
    /// Mappings by inside key ([`Mapping::key`]; record numbers as `map_base` says).
    map_in: Index,
    /// Mappings by outside key (protocol, outside address and port).
    map_out: Index,
    /// Subscribers by inside address (NAT44) or NAT64 subscriber key.
    sub_idx: Index,
    /// NAT64's IPv6 hosts (handles standing in as inside addresses) and subscriber
    /// prefixes (keys of their subscribers).
    hosts6: Hosts6,
    /// Address-dependent filtering: sessions per (mapping, remote address).
    adf: HashMap<(u32, u32), u32>,
    /// The worker's outside ports.
    pub pool: Pool,
    wheel: Wheel,
    counters: Arc<WorkerCounters>,
    events: Vec<LogEvent>,
    limit_second: u32,
    limit_left: u32,
    /// The second of the last `subscriber_off` event, and how many more it may log.
    off_second: u32,
    off_left: u32,
    /// Pool addresses above the high threshold (an event was sent; re-armed below
    /// threshold - 10 %).
    above_threshold: Vec<bool>,
    /// ALG expectations, keyed by the pinned mapping's outside key.
    expects: Expectations,
    /// Data sessions opened through expectations, with the control sessions they
    /// keep alive (`nat/kin.rs`; reserved once).
    kin: Vec<kin::Kin>,
    /// PPTP calls and their GRE (`nat/calls.rs`, `nat/gre.rs`).
    calls: gre::Calls,
    /// The second the calls were last checked for idleness.
    calls_checked: u32,
    /// Mappings configured as static (port forwards), by mapping index record:
    /// inbound connections need no filtering pass.
    statics: hashbrown::HashSet<u32>,
    /// The TCP and UDP ports some ALG is on, a bit each ([`set_alg_port_bits`]): a new
    /// flow to any other port is known to get no ALG without a look at the lists.
    alg_ports: Vec<u64>,
    /// Mappings subscribers asked for (PCP, NAT-PMP), by mapping record.
    pcp: HashMap<u32, pcp::PcpEntry>,
    /// Room for the records of the entries a delete or the expiry ends (reserved
    /// once: no allocation on the worker).
    pcp_ending: Vec<u32>,
    /// HA sync: sessions created and ended since the last drain (`nat/sync.rs`), when
    /// `journal_on`; `journal_lost` when one found no room.
    journal: Vec<(bool, Session, Option<u128>)>,
    /// HA sync: PCP/NAT-PMP mappings and expectations made, changed or ended since the
    /// last drain, when `journal_on` (`journal_lost` when one found no room).
    pins: Vec<sync::Pin>,
    journal_on: bool,
    journal_lost: bool,
    /// HA standby: live sessions are not expired (the active's traffic refreshes
    /// them, unseen here); their end comes from the active.
    hold: bool,
    /// HA standby: the TCP connections (inside and remote endpoints) whose sequence
    /// adjustment the active synced (`Nat::sync_adjusted`); room
    /// reserved when the standby role is taken.
    adjusted_in: Vec<(u32, u16, u32, u16)>,
}

const NO_POOL: u16 = u16::MAX;

/// A subscriber's inbound-created sessions: (oldest, newest) of those not answered
/// (`ends[0]`) and of those answered (`ends[1]`), and how many in all.
#[derive(Clone, Copy, Debug)]
struct InboundList {
    ends: [(u32, u32); 2],
    count: u32,
}

impl InboundList {
    const EMPTY: InboundList = InboundList {
        ends: [(NIL, NIL); 2],
        count: 0,
    };
}

/// Mixes a 32-bit value (subscriber addresses to pool addresses and to workers).
pub fn hash32(x: u32) -> u32 {
    // A 32-bit mixer (lowbias32): spreads subscribers over the pool evenly.
    let mut x = x;
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// The mapping key of a session's inside key `key`: its remote parts masked as
/// mapping behaviour `b` says.
#[inline]
fn mask(b: Behavior, key: &Key) -> Key {
    match b {
        Behavior::EndpointIndependent => Key {
            b: 0,
            pb: 0,
            ..*key
        },
        Behavior::AddressDependent => Key { pb: 0, ..*key },
        Behavior::AddressAndPortDependent => *key,
    }
}

/// The keys of the mapping indexes' records: record `r` below `base` is session
/// record `r` whose mapping is folded in it, from `base` on mapping record `r - base`.
#[derive(Clone, Copy)]
struct MapKeys<'a> {
    sessions: &'a [Session],
    mappings: &'a [Mapping],
    pool: &'a Pool,
    base: u32,
    behavior: Behavior,
}

impl MapKeys<'_> {
    /// The (masked) inside key of record `r`.
    #[inline]
    fn in_key(&self, r: u32) -> Key {
        if r < self.base {
            mask(self.behavior, &self.sessions[r as usize].in_key())
        } else {
            self.mappings[(r - self.base) as usize].key()
        }
    }

    /// The outside key (protocol, outside address and port) of record `r`.
    #[inline]
    fn out_key(&self, r: u32) -> Key {
        if r < self.base {
            let s = &self.sessions[r as usize];
            Key {
                proto: s.proto,
                a: s.out_addr,
                pa: s.out_port,
                b: 0,
                pb: 0,
            }
        } else {
            self.mappings[(r - self.base) as usize].out_key(self.pool)
        }
    }
}

/// [`MapKeys`] of a [`Nat`], borrowing only the fields it reads (the indexes stay
/// free to change).
/// Sessions whose outside keys wait to be indexed ([`Nat::defer_out_keys`]):
/// at most a burst's creations (once full, they are entered before the next).
#[derive(Debug)]
struct Deferred {
    on: bool,
    n: usize,
    list: [u32; crate::vector::VECTOR],
}

impl Default for Deferred {
    fn default() -> Self {
        Deferred {
            on: false,
            n: 0,
            list: [0; crate::vector::VECTOR],
        }
    }
}

macro_rules! map_keys {
    ($nat:expr) => {
        MapKeys {
            sessions: &$nat.sessions,
            mappings: &$nat.mappings,
            pool: &$nat.pool,
            base: $nat.map_base,
            behavior: $nat.params.mapping,
        }
    };
}

/// Slots of the expiry wheel under `params`: one per second up to the longest timeout.
fn wheel_slots(params: &NatParams) -> usize {
    let t = &params.timeouts;
    (t.tcp_established.max(t.udp).max(t.icmp).max(t.other) as usize + 1).min(1 << 14)
}

/// The inside key of static mapping `st` (no remote: endpoint-independent).
fn static_key(st: (u8, u32, u16, u32, u16)) -> Key {
    Key {
        proto: st.0,
        a: st.1,
        pa: st.2,
        b: 0,
        pb: 0,
    }
}

impl Nat {
    /// The tables of worker `worker` of `workers`, sized from `params`, at time `now`.
    pub fn new(
        params: NatParams,
        worker: u16,
        workers: u16,
        now: u32,
        seed: u64,
        counters: Arc<WorkerCounters>,
    ) -> Nat {
        // Records are numbered in 24 bits (the config keeps within it).
        let cap = (params.max_sessions as usize).min(index::MAX_RECORD as usize);
        let pptp_calls = params.pptp_calls;
        let layout = PortLayout::new(
            params.port_range.0,
            params.port_range.1,
            params.block_size,
            workers,
        );
        // Mapping records are numbered after the session records in the mapping
        // indexes, all in 24 bits (the config keeps within it).
        let map_cap = (params.max_mappings as usize).min(index::MAX_RECORD as usize + 1 - cap);
        // Live mappings: each live session's (folded or shared), plus those only
        // pins hold (an expectation, a static mapping, a PCP or NAT-PMP mapping; two
        // while a pair is tried), with room for 1,024 static mappings a reload adds.
        // Past that a new mapping is refused (`mapping_table_full`), never a live one
        // dropped.
        let pinned = MAX_EXPECT + pcp::MAX_PCP_ENTRIES + params.statics.len() + 2 + 1024;
        let map_idx = (cap + map_cap.min(pinned)).min(index::MAX_RECORD as usize);
        let sub_cap = (params.max_subscribers as usize).min(index::MAX_RECORD as usize);
        // The tables every packet reads on huge pages where the kernel has them: fewer
        // TLB misses. (Subscriber slots, read only when sessions come and go, stay on
        // 4 KB pages, resident only as used.)
        let mut sessions = cgnat_ffi::huge_vec(cap, Session::EMPTY);
        for (i, s) in sessions.iter_mut().enumerate() {
            s.next = if i + 1 < cap { i as u32 + 1 } else { NIL };
        }
        let mut mappings = cgnat_ffi::huge_vec(map_cap, Mapping::EMPTY);
        for (i, m) in mappings.iter_mut().enumerate() {
            m.sessions = if i + 1 < map_cap { i as u32 + 1 } else { NIL };
        }
        let max_blocks = usize::from(params.max_blocks_per_subscriber);
        let block_room = if params.allocation == Allocation::PortBlock {
            max_blocks
        } else {
            0
        };
        let subs = Vec::with_capacity(sub_cap);
        let sub_inbound = Vec::with_capacity(sub_cap);
        let inb_link = vec![0u32; 2 * cap];
        let sub_blocks = vec![0u32; sub_cap * block_room];
        let adf_cap = if params.filtering == Behavior::AddressDependent {
            2 * cap
        } else {
            0
        };
        let mut pool = Pool::new(
            &params.pool,
            layout,
            worker,
            params.quarantine_secs,
            cap,
            seed,
        );
        if let (Allocation::Dynamic, Some(s)) = (params.allocation, &params.steering) {
            pool = pool.with_steering(s.clone());
        }
        // NAT64: a host handle per IPv6 host with a session (at most one each), a key
        // per subscriber prefix.
        let hosts6 = match params.nat64_prefix_len {
            Some(len) => Hosts6::new(len, cap as u32, sub_cap as u32, seed),
            None => Hosts6::off(),
        };
        let mut nat = Nat {
            pool,
            wheel: Wheel::new(wheel_slots(&params), now),
            params,
            sessions,
            free_session: if cap > 0 { 0 } else { NIL },
            live_sessions: 0,
            deferred: Deferred::default(),
            mappings,
            free_mapping: if map_cap > 0 { 0 } else { NIL },
            map_base: cap as u32,
            subs,
            sub_inbound,
            inb_link,
            sub_cap: sub_cap as u32,
            free_sub: NIL,
            sub_blocks,
            block_room,
            in_idx: Index::new_huge(cap as u32),
            out_idx: Index::new_huge(cap as u32),
            hasher: Hasher::new(seed ^ 0x1d3a_7c5e_b0f2_4689),
            map_in: Index::new_huge(map_idx as u32),
            map_out: Index::new_huge(map_idx as u32),
            sub_idx: Index::new(sub_cap as u32),
            hosts6,
            adf: HashMap::with_capacity(adf_cap),
            counters,
            events: Vec::with_capacity(4096),
            limit_second: 0,
            limit_left: 0,
            off_second: 0,
            off_left: 0,
            above_threshold: Vec::new(),
            expects: Expectations::new(),
            kin: Vec::with_capacity(kin::MAX_KIN),
            calls: gre::Calls::new(pptp_calls),
            calls_checked: 0,
            statics: hashbrown::HashSet::new(),
            alg_ports: Vec::new(),
            pcp: HashMap::with_capacity(pcp::MAX_PCP_ENTRIES),
            pcp_ending: Vec::with_capacity(pcp::MAX_PCP_ENTRIES),
            journal: Vec::new(),
            pins: Vec::new(),
            journal_on: false,
            journal_lost: false,
            hold: false,
            adjusted_in: Vec::new(),
        };
        nat.above_threshold = vec![false; nat.pool.addrs.len()];
        set_alg_port_bits(&nat.params, &mut nat.alg_ports);
        nat.install_statics(worker);
        nat
    }

    /// Installs the static mappings whose outside port this worker owns (unsteered,
    /// ports outside the dynamic range belong to worker 0). A static mapping holds one reference on
    /// itself so it never expires, and its port is never handed out dynamically.
    fn install_statics(&mut self, worker: u16) {
        for i in 0..self.params.statics.len() {
            self.install_static(worker, self.params.statics[i]);
        }
        self.counters.mappings_active.set(self.map_out.len() as u64);
    }

    /// Installs one static mapping if this worker owns its outside port.
    fn install_static(&mut self, worker: u16, st: (u8, u32, u16, u32, u16)) {
        let (proto, in_addr, _, out_addr, out_port) = st;
        if self.pool.owner(out_addr, out_port).unwrap_or(0) != worker {
            return;
        }
        let Some(a) = self.pool.index_of(out_addr) else {
            return;
        };
        // A port in quarantine (a static mapping removed and put back) is its own.
        if self.mapping_full()
            || !(self.pool.take(a, proto, out_port) || self.pool.reclaim(a, proto, out_port))
        {
            return;
        }
        let Ok(sub) = self.find_or_add_subscriber(in_addr) else {
            return;
        };
        let key = static_key(st);
        let m = self.free_mapping;
        self.free_mapping = self.mappings[m as usize].sessions;
        self.mappings[m as usize] = Mapping::new(key, a, out_port, 1, sub);
        let r = self.map_base + m;
        self.index_mapping(r);
        self.statics.insert(r);
        self.bib_event(
            event::BIB_CREATE,
            proto,
            (in_addr, key.pa),
            (out_addr, out_port),
        );
        let s = &mut self.subs[sub as usize];
        s.mappings += 1;
        if s.pool == NO_POOL {
            s.pool = a as u16;
            self.pool.addrs[a].subscribers += 1;
        }
    }

    /// Takes the settings a reload changes live (timeouts, ALG ports, limits, what is
    /// logged, static mappings) at `now`, and returns the ones they replace (for the
    /// caller to drop off the worker). Live sessions keep their mappings and ALG; new
    /// timeouts count from each session's last packet. A static mapping added is
    /// installed; one removed takes no new inbound sessions and lives on until the
    /// sessions using it end. Pool addresses added are appended, those removed drain
    /// ([`Pool::update`]; `params.pool` as [`pool::merged`] orders it). What sizes the
    /// tables (port layout, session limits of the whole worker, behaviours) must be
    /// unchanged: the steering is kept.
    pub fn reconfigure(&mut self, mut params: NatParams, now: u32) -> NatParams {
        params.steering = self.params.steering.clone();
        if let Err(e) = self.pool.update(&params.pool, &params.pool_draining) {
            // The reload thread checked the same (`NatParams::follow`): keep the pool.
            debug_assert!(false, "pool update refused: {e}");
            params.pool = self.pool.addresses().to_vec();
        }
        self.above_threshold.resize(self.pool.addrs.len(), false);
        let old = std::mem::replace(&mut self.params, params);
        set_alg_port_bits(&self.params, &mut self.alg_ports);
        for st in &old.statics {
            if !self.params.statics.contains(st) {
                self.remove_static(*st, now);
            }
        }
        let worker = self.pool.worker();
        for i in 0..self.params.statics.len() {
            let st = self.params.statics[i];
            if !old.statics.contains(&st) {
                self.install_static(worker, st);
            }
        }
        self.counters.mappings_active.set(self.map_out.len() as u64);
        old
    }

    /// Drops a static mapping's hold on itself: it ends now if no session uses it,
    /// else with the last one.
    fn remove_static(&mut self, st: (u8, u32, u16, u32, u16), now: u32) {
        let (_, _, _, out_addr, out_port) = st;
        let key = static_key(st);
        let found = self.statics.iter().copied().find(|&r| {
            let map = &self.mappings[(r - self.map_base) as usize];
            map.key() == key
                && map.out_port == out_port
                && self.pool.addr(usize::from(map.pool)) == out_addr
        });
        if let Some(r) = found {
            self.statics.remove(&r);
            self.unpin_mapping(r - self.map_base, now, false);
        }
    }

    /// The resolved parameters.
    pub fn params(&self) -> &NatParams {
        &self.params
    }

    /// Under deterministic allocation, the worker owning inside address `inside`: the
    /// owner of its port range (a range is one block), where its mappings must live
    /// for replies to find them. None otherwise, or for an address outside the
    /// deterministic prefixes.
    pub fn range_owner(&self, inside: u32) -> Option<u16> {
        let (a, start) = self.params.deterministic.as_ref()?.forward_index(inside)?;
        self.pool.owner(*self.pool.addresses().get(a)?, start)
    }

    /// A session by index.
    pub fn session(&self, i: u32) -> &Session {
        &self.sessions[i as usize]
    }

    /// Sessions alive.
    pub fn live_sessions(&self) -> u32 {
        self.live_sessions
    }

    /// Mappings alive.
    pub fn live_mappings(&self) -> usize {
        self.map_out.len()
    }

    /// Subscribers with state.
    pub fn live_subscribers(&self) -> usize {
        self.sub_idx.len()
    }

    /// A subscriber's state.
    pub fn subscriber(&self, addr: u32) -> Option<&Subscriber> {
        self.subscriber_by_addr(addr)
            .map(|i| &self.subs[i as usize])
    }

    /// How many of a subscriber's sessions remote hosts opened under the filtering
    /// alone (its inbound budget, `max_inbound_sessions_per_subscriber`), and how
    /// many of those it answered.
    pub fn subscriber_inbound(&self, addr: u32) -> (u32, u32) {
        let Some(i) = self.subscriber_by_addr(addr) else {
            return (0, 0);
        };
        let list = &self.sub_inbound[i as usize];
        let mut answered = 0;
        let mut at = list.ends[1].0;
        while at != NIL && answered < list.count {
            answered += 1;
            at = self.inb_link[2 * at as usize + 1];
        }
        (list.count, answered)
    }

    /// The port blocks a subscriber holds, as `pool << 16 | block`, in the order
    /// they were taken (empty for an unknown subscriber).
    pub fn subscriber_blocks(&self, addr: u32) -> &[u32] {
        match self.subscriber_by_addr(addr) {
            Some(i) => self.blocks_of(i),
            None => &[],
        }
    }

    /// Subscriber slots (in use or freed): the range [`Nat::subscriber_at`] takes.
    pub fn subscriber_slots(&self) -> u32 {
        self.subs.len() as u32
    }

    /// The subscriber in slot `i` and its inbound-created sessions, if it holds a
    /// session, a mapping or a port block (a freed slot holds none of them; slow path:
    /// inspection a bounded range of slots at a time).
    pub fn subscriber_at(&self, i: u32) -> Option<(&Subscriber, u32)> {
        let s = self.subs.get(i as usize)?;
        let inbound = self.sub_inbound[i as usize].count;
        (s.sessions > 0 || inbound > 0 || s.mappings > 0 || s.blocks > 0).then_some((s, inbound))
    }

    /// NAT64: outbound tuple `t` of IPv6 host `src6` (`t.src` is not read: the host's
    /// handle stands in for it, see [`hosts6`]), as [`Nat::in2out`]: the session,
    /// found or made. A host's handle is taken with its first session and given back
    /// at once when that session is refused.
    pub fn in2out6(
        &mut self,
        src6: u128,
        t: &Tuple,
        tcp_flags: u8,
        may_create: bool,
        now: u32,
    ) -> Result<u32, DropReason> {
        let known = self.hosts6.find(src6);
        let h = match known {
            Some(h) => h,
            None => self.hosts6.handle(src6)?,
        };
        let t = Tuple { src: h, ..*t };
        let key = t.in2out_key();
        // Looked up once: a known host's existing session is refreshed as in2out
        // would.
        let found = known.and_then(|_| self.session_by_in_key(&key));
        let r = if let Some(i) = found {
            self.outbound_on(i, t.proto, tcp_flags, now);
            Ok(i)
        } else {
            // FTP (RFC 6384), TFTP and RTSP (client ports, no addresses) follow a
            // NAT64 session; SIP does not (its messages carry the host's IPv6
            // address in Via, Contact and SDP): the session goes without (counted).
            let hashes = CreateHashes {
                sub: 0, // a handle's subscriber is found by its key's hash
                map: self.hasher.key(&self.mapping_key(&key)),
            };
            let alg = match self.alg_for(t.proto, t.dport) {
                a @ (ALG_FTP | ALG_TFTP | ALG_RTSP) => a,
                _ => 0,
            };
            let r = self.create_commit(&t, tcp_flags, may_create, hashes, Some(alg), now);
            if r.is_ok() && alg == 0 && self.alg_for(t.proto, t.dport) != 0 {
                self.counters.alg_nat64_skipped.inc();
            }
            r
        };
        if r.is_err() && known.is_none() {
            self.hosts6.forget_unused(h);
        }
        if known.is_none() {
            self.count_hosts6();
        }
        r
    }

    /// Sets the NAT64 gauges (hosts with a handle, subscriber prefixes with state).
    fn count_hosts6(&self) {
        self.counters
            .nat64_hosts_active
            .set(self.hosts6.hosts() as u64);
        self.counters
            .nat64_subscribers_active
            .set(self.hosts6.subscribers() as u64);
    }

    /// NAT64: the IPv6 address of inside address `a` if it is a host handle (a
    /// session's `in_addr`), None for a NAT44 inside address.
    #[inline]
    pub fn host6(&self, a: u32) -> Option<u128> {
        self.hosts6.key_if_live(a).map(|_| self.hosts6.addr(a))
    }

    /// NAT64: the handle of IPv6 host `addr`, if it has sessions.
    pub fn handle6(&self, addr: u128) -> Option<u32> {
        self.hosts6.find(addr)
    }

    /// NAT64: the subscriber prefix (`[nat64] subscriber_prefix_len` bits) IPv6
    /// address `addr` is under, its host bits cleared.
    #[inline]
    pub fn prefix_of6(&self, addr: u128) -> u128 {
        self.hosts6.prefix_of(addr)
    }

    /// NAT64: true when IPv6 addresses `a` and `b` are under the same subscriber
    /// prefix.
    pub fn same_subscriber6(&self, a: u128, b: u128) -> bool {
        self.prefix_of6(a) == self.prefix_of6(b)
    }

    /// NAT64 with several workers: the worker that owns the subscriber (the prefix of
    /// `[nat64] subscriber_prefix_len` bits) IPv6 address `addr` is under. The same on
    /// every worker for every host of a prefix, whatever queue its frames arrive on,
    /// so that a subscriber's port blocks and sessions are all on one worker (as a
    /// NAT44 subscriber's are on the owner of its address).
    pub fn owner6(&self, addr: u128) -> u16 {
        let workers = u32::from(self.pool.layout.workers.max(1));
        let prefix = self.prefix_of6(addr);
        let h = (0..4).fold(0x6e61_7436u32, |h, k| {
            hash32(h ^ (prefix >> (32 * k)) as u32)
        });
        (h % workers) as u16
    }

    /// NAT64: the subscriber (prefix of `[nat64] subscriber_prefix_len` bits) IPv6
    /// address `addr` is under, and that prefix.
    pub fn subscriber6(&self, addr: u128) -> Option<(&Subscriber, u128)> {
        let k = self.hosts6.key_for(addr)?;
        let i = self.subscriber_by_addr(k)?;
        Some((&self.subs[i as usize], self.hosts6.prefix(k)))
    }

    /// NAT64: the port blocks of the subscriber IPv6 address `addr` is under.
    pub fn subscriber6_blocks(&self, addr: u128) -> &[u32] {
        match self
            .hosts6
            .key_for(addr)
            .and_then(|k| self.subscriber_by_addr(k))
        {
            Some(i) => self.blocks_of(i),
            None => &[],
        }
    }

    /// NAT64: the IPv6 prefix of a subscriber whose `addr` is a NAT64 subscriber
    /// key (a [`Subscriber::addr`]), None for a NAT44 subscriber.
    pub fn subscriber_prefix6(&self, key: u32) -> Option<u128> {
        hosts6::is_key(key).then(|| self.hosts6.prefix(key))
    }

    /// NAT64: the subscriber key of the prefix IPv6 address `addr` is under, if that
    /// prefix has state.
    pub fn subscriber_key6(&self, addr: u128) -> Option<u32> {
        self.hosts6.key_for(addr)
    }

    /// NAT64: the subscriber prefix length (`[nat64] subscriber_prefix_len`).
    pub fn subscriber_prefix_len6(&self) -> u8 {
        self.hosts6.prefix_len()
    }

    /// The subscriber address or key inside address `addr` counts against (a NAT64
    /// host handle: its prefix's key; else `addr`), None for a dead handle.
    pub fn subscriber_key_of(&self, addr: u32) -> Option<u32> {
        self.sub_key(addr)
    }

    /// NAT64: IPv6 hosts with sessions, and subscriber prefixes with state.
    pub fn nat64_counts(&self) -> (usize, usize) {
        (self.hosts6.hosts(), self.hosts6.subscribers())
    }

    /// The blocks held by subscriber slot `i`.
    #[inline]
    fn blocks_of(&self, i: u32) -> &[u32] {
        let start = i as usize * self.block_room;
        &self.sub_blocks[start..start + self.subs[i as usize].block_count()]
    }

    /// Iterates live sessions (slow path: inspection, tests).
    pub fn iter_sessions(&self) -> impl Iterator<Item = &Session> + '_ {
        self.in_idx.records().map(|i| &self.sessions[i as usize])
    }

    /// Iterates live sessions with their indexes (slow path: inspection).
    pub fn iter_sessions_indexed(&self) -> impl Iterator<Item = (u32, &Session)> + '_ {
        self.in_idx
            .records()
            .map(|i| (i, &self.sessions[i as usize]))
    }

    /// Session slots (live or free): the range [`Nat::session_at`] takes.
    pub fn session_slots(&self) -> u32 {
        self.sessions.len() as u32
    }

    /// The session in slot `i` if it is alive (slow path: inspection a bounded range
    /// of slots at a time, the closing records of a stop).
    pub fn session_at(&self, i: u32) -> Option<&Session> {
        self.sessions.get(i as usize).filter(|s| s.mapping != NIL)
    }

    /// Records, for the exporter, the end of what is alive at a stop (RFC 8158: what
    /// a log opened, it closes): a session delete for every session under session
    /// logging, a port block release for every block held under block logging, a BIB
    /// delete for every mapping under mapping logging. Examines at most `budget` slots
    /// from `*cursor` (session slots, then subscriber slots, then mapping slots) and
    /// moves it on; true once every slot was seen. Nothing is freed: the tables go
    /// with the process.
    pub fn close_log(&mut self, cursor: &mut u64, budget: u32) -> bool {
        let slots = u64::from(self.session_slots());
        let subs = self.subs.len() as u64;
        let total = slots + subs + self.mappings.len() as u64;
        let end = (*cursor + u64::from(budget)).min(total);
        let log = self.params.log;
        if *cursor == 0 && (log.sessions || log.other_sessions) && !self.calls.is_empty() {
            // The PPTP calls alive (their journal first, so a call made just now is
            // opened before it is closed); a stop is not the hot path.
            self.log_calls();
            let live: Vec<gre::Call> = self.calls.iter().copied().collect();
            for c in &live {
                self.emit(calls::call_event(false, c));
            }
        }
        while *cursor < end {
            // Room for what one slot may record (a subscriber's blocks; a session
            // and its folded mapping).
            if self.events.len() + self.block_room.max(2) > self.events.capacity() {
                break;
            }
            let c = *cursor;
            *cursor += 1;
            if c < slots {
                if !log.sessions && !log.mappings && !log.other_sessions {
                    *cursor = slots;
                    continue;
                }
                if let Some(s) = self.session_at(c as u32).copied() {
                    if self.logs_session(&s) {
                        self.emit(self.session_event(event::SESSION_DELETE, &s));
                    }
                    // An address-only session has no mapping to close.
                    if s.folded() && !portless(s.proto) {
                        self.bib_delete(c as u32);
                    }
                }
            } else if c < slots + subs {
                if !log.blocks {
                    *cursor = slots + subs;
                    continue;
                }
                let i = (c - slots) as u32;
                let inside = self.subs[i as usize].addr;
                let size = self.pool.layout.block_size;
                for k in 0..self.blocks_of(i).len() {
                    let e = self.blocks_of(i)[k];
                    let start = self.pool.layout.block_start(e as u16);
                    self.emit(LogEvent {
                        kind: event::PORT_BLOCK_FREE,
                        inside,
                        outside: self.pool.addr((e >> 16) as usize),
                        out_port: start,
                        dst_port: start + (size - 1),
                        step: 1,
                        ..LogEvent::default()
                    });
                }
            } else if log.mappings {
                let r = self.map_base + (c - slots - subs) as u32;
                if self.mapping_live(r) {
                    self.bib_delete(r);
                }
            } else {
                *cursor = total;
            }
        }
        *cursor >= total
    }

    /// True if mapping index record `r` is in the mapping indexes (a live mapping).
    fn mapping_live(&self, r: u32) -> bool {
        let ko = map_keys!(self).out_key(r);
        self.map_out
            .find(self.hasher.key(&ko), |j| j == r)
            .is_some()
    }

    /// True if `addr` is one of the pool's addresses.
    #[inline]
    pub fn is_pool_addr(&self, addr: u32) -> bool {
        self.pool.index_of(addr).is_some()
    }

    /// Looks up the session of an outbound packet without creating one.
    pub fn find_in2out(&self, t: &Tuple) -> Option<u32> {
        self.session_by_in_key(&t.in2out_key())
    }

    /// Looks up the session of an inbound packet without creating one.
    pub fn find_out2in(&self, t: &Tuple) -> Option<u32> {
        self.session_by_out_key(&t.out2in_key())
    }

    /// The burst stages' lookup ([`crate::vector`]), in passes over a whole burst:
    /// the hash of the tuple's session key (inside key when `outbound`), computed
    /// once and carried in the packet's metadata.
    #[inline]
    pub fn session_hash(&self, t: &Tuple, outbound: bool) -> u32 {
        let key = if outbound {
            t.in2out_key()
        } else {
            t.out2in_key()
        };
        self.hasher.key(&key)
    }

    /// Prefetches the session index slot of hash `h` ([`Nat::session_hash`]).
    #[inline]
    pub fn prefetch_slot(&self, h: u32, outbound: bool) {
        let idx = if outbound {
            &self.in_idx
        } else {
            &self.out_idx
        };
        idx.prefetch(h);
    }

    /// The first step of the lookup of the session of hash `h` (the slot is likely
    /// in the cache by now: [`Nat::prefetch_slot`]), with the session record it
    /// names prefetched, so that [`Nat::find_probed`] compares keys in the cache.
    #[inline]
    pub fn probe_session(&self, h: u32, outbound: bool) -> Probe {
        let idx = if outbound {
            &self.in_idx
        } else {
            &self.out_idx
        };
        let (p, guess) = idx.probe(h);
        if let Some(s) = guess.and_then(|r| self.sessions.get(r as usize)) {
            cgnat_ffi::prefetch(s);
        }
        p
    }

    /// [`Nat::find_hashed`] from where [`Nat::probe_session`] of the same hash
    /// stopped, no session indexed or removed since.
    #[inline]
    pub fn find_probed(&self, t: &Tuple, outbound: bool, h: u32, p: Probe) -> Option<u32> {
        let sessions = &self.sessions;
        if outbound {
            let k = t.in2out_key();
            self.in_idx
                .find_from(h, p, |i| sessions[i as usize].in_key() == k)
        } else {
            let k = t.out2in_key();
            self.out_idx
                .find_from(h, p, |i| sessions[i as usize].out_key() == k)
        }
    }

    /// The session of tuple `t`, whose key hashes to `h`, without creating one (the
    /// burst path then creates a new flow's in stages: [`Nat::create_slots`]).
    #[inline]
    pub fn find_hashed(&self, t: &Tuple, outbound: bool, h: u32) -> Option<u32> {
        let sessions = &self.sessions;
        if outbound {
            let k = t.in2out_key();
            self.in_idx.find(h, |i| sessions[i as usize].in_key() == k)
        } else {
            let k = t.out2in_key();
            self.out_idx
                .find(h, |i| sessions[i as usize].out_key() == k)
        }
    }

    /// Session `i` if a packet of it needs nothing but its translation: no ALG,
    /// and not an inbound-created session the inside host has not answered yet
    /// (whose first answer moves it between the subscriber's lists, and which a
    /// newer inbound session may recycle).
    #[inline]
    pub fn plain(&self, i: u32) -> Option<Session> {
        let s = self.sessions[i as usize];
        (s.alg() == 0 && !s.unanswered()).then_some(s)
    }

    /// What [`Nat::in2out`] and [`Nat::out2in`] do to the existing session `i` of
    /// a packet, for a [`Nat::plain`] one: an outbound packet refreshes it, and a
    /// TCP one moves its state.
    #[inline]
    pub fn touch(&mut self, i: u32, tcp_flags: u8, outbound: bool, now: u32) {
        let s = &mut self.sessions[i as usize];
        if outbound {
            s.last_seen = now;
        }
        if s.proto == ipv4::PROTO_TCP {
            Self::track_tcp(s, tcp_flags, outbound);
        }
    }

    /// The mapping key of a session's inside key: its remote parts masked as the
    /// mapping behaviour says.
    #[inline]
    fn mapping_key(&self, key: &Key) -> Key {
        mask(self.params.mapping, key)
    }

    /// The session whose inside key is `k`.
    #[inline]
    fn session_by_in_key(&self, k: &Key) -> Option<u32> {
        let sessions = &self.sessions;
        self.in_idx
            .find(self.hasher.key(k), |i| sessions[i as usize].in_key() == *k)
    }

    /// The session whose outside key is `k`.
    #[inline]
    fn session_by_out_key(&self, k: &Key) -> Option<u32> {
        let sessions = &self.sessions;
        self.out_idx
            .find(self.hasher.key(k), |i| sessions[i as usize].out_key() == *k)
    }

    /// Enters session `i` (already written) in both session indexes; an entry of the
    /// same key is replaced, as a map's insert would.
    fn index_session(&mut self, i: u32) {
        let s = self.sessions[i as usize];
        let sessions = &self.sessions;
        let ki = s.in_key();
        // Never full: the indexes have room for every session record.
        let r = self.in_idx.insert(self.hasher.key(&ki), i, |j| {
            sessions[j as usize].in_key() == ki
        });
        debug_assert!(r.is_ok());
        if self.deferred.on {
            if self.deferred.n == self.deferred.list.len() {
                self.flush_deferred();
            }
            self.deferred.list[self.deferred.n] = i;
            self.deferred.n += 1;
        } else {
            self.index_out_keys(i, false);
        }
    }

    /// Enters the outside key of session `i` (already written, its inside key
    /// indexed) in the session index, and, with `mapping`, the outside key of the
    /// mapping folded in it.
    fn index_out_keys(&mut self, i: u32, mapping: bool) {
        let s = self.sessions[i as usize];
        let sessions = &self.sessions;
        let ko = s.out_key();
        let r = self.out_idx.insert(self.hasher.key(&ko), i, |j| {
            sessions[j as usize].out_key() == ko
        });
        debug_assert!(r.is_ok());
        if mapping {
            self.index_mapping_out(i);
        }
    }

    /// From now on, until [`Nat::index_deferred`], the outside keys of the sessions
    /// [`Nat::create_commit`] creates (their own, and their folded mappings') are
    /// entered in the outside indexes later, by [`Nat::index_deferred`]: their
    /// slots, prefetched once the port is chosen, have the next creations' time to
    /// arrive. Nothing reads the outside indexes meanwhile: the burst path calls
    /// [`Nat::index_deferred`] before any other processing, and a creation that
    /// shares a mapping (which re-indexes it) enters the deferred keys first.
    #[inline]
    pub fn defer_out_keys(&mut self) {
        self.deferred.on = true;
    }

    /// Enters the deferred outside keys ([`Nat::defer_out_keys`]), in the order
    /// their sessions were created (what entering each at once would have left),
    /// and stops deferring.
    #[inline]
    pub fn index_deferred(&mut self) {
        if !self.deferred.on {
            return;
        }
        self.flush_deferred();
        self.deferred.on = false;
    }

    fn flush_deferred(&mut self) {
        if self.deferred.n == 0 {
            return;
        }
        for k in 0..self.deferred.n {
            let i = self.deferred.list[k];
            // A deferred session's folded mapping is its own, made with it.
            self.index_out_keys(i, self.sessions[i as usize].folded());
        }
        self.deferred.n = 0;
        self.counters.mappings_active.set(self.map_out.len() as u64);
    }

    /// Takes the entries of the keys of session record `s` out of the session indexes
    /// (whichever sessions they point to).
    fn unindex_session(&mut self, s: &Session) {
        let (sessions, h) = (&self.sessions, &self.hasher);
        let (ki, ko) = (s.in_key(), s.out_key());
        self.in_idx.remove(
            h.key(&ki),
            |j| sessions[j as usize].in_key() == ki,
            |j| h.key(&sessions[j as usize].in_key()),
        );
        self.out_idx.remove(
            h.key(&ko),
            |j| sessions[j as usize].out_key() == ko,
            |j| h.key(&sessions[j as usize].out_key()),
        );
    }

    /// The mapping index record of (masked) inside key `k` (see `map_base`).
    #[inline]
    fn mapping_by_in_key(&self, k: &Key) -> Option<u32> {
        let mk = map_keys!(self);
        self.map_in.find(self.hasher.key(k), |r| mk.in_key(r) == *k)
    }

    /// The mapping index record of outside key ([`Mapping::out_key`]) `k`.
    #[inline]
    fn mapping_by_out_key(&self, k: &Key) -> Option<u32> {
        let mk = map_keys!(self);
        self.map_out
            .find(self.hasher.key(k), |r| mk.out_key(r) == *k)
    }

    /// The outside key of mapping index record `r` (folded or not).
    #[inline]
    fn mapping_out_key(&self, r: u32) -> Key {
        map_keys!(self).out_key(r)
    }

    /// Enters mapping index record `r` (already written) in both mapping indexes,
    /// replacing the entries of the same keys (those of a folded mapping given a
    /// record). Never full: room for every live mapping (see `Nat::new`).
    fn index_mapping(&mut self, r: u32) {
        self.index_mapping_in(r);
        self.index_mapping_out(r);
    }

    /// Enters the inside key of mapping index record `r` (already written).
    fn index_mapping_in(&mut self, r: u32) {
        let mk = map_keys!(self);
        let ki = mk.in_key(r);
        let x = self
            .map_in
            .insert(self.hasher.key(&ki), r, |j| mk.in_key(j) == ki);
        debug_assert!(x.is_ok());
    }

    /// Enters the outside key of mapping index record `r` (already written).
    fn index_mapping_out(&mut self, r: u32) {
        let mk = map_keys!(self);
        let ko = mk.out_key(r);
        let x = self
            .map_out
            .insert(self.hasher.key(&ko), r, |j| mk.out_key(j) == ko);
        debug_assert!(x.is_ok());
    }

    /// Takes the entries of the keys of mapping index record `r` (still written) out
    /// of both mapping indexes.
    fn unindex_mapping(&mut self, r: u32) {
        let (mk, h) = (map_keys!(self), &self.hasher);
        let (ki, ko) = (mk.in_key(r), mk.out_key(r));
        self.map_in
            .remove(h.key(&ki), |j| mk.in_key(j) == ki, |j| h.key(&mk.in_key(j)));
        self.map_out.remove(
            h.key(&ko),
            |j| mk.out_key(j) == ko,
            |j| h.key(&mk.out_key(j)),
        );
    }

    /// The mapping index record of session `i` (`s`, alive).
    #[inline]
    fn mapping_ref(&self, i: u32, s: &Session) -> u32 {
        if s.folded() {
            i
        } else {
            self.map_base + s.mapping
        }
    }

    /// The subscriber slot owning mapping index record `r`.
    #[inline]
    fn mapping_sub(&self, r: u32) -> u32 {
        if r < self.map_base {
            self.sessions[r as usize].mapping & SUB_NONE
        } else {
            self.mappings[(r - self.map_base) as usize].sub()
        }
    }

    /// The subscriber slot of session `s` (alive).
    #[inline]
    fn session_sub(&self, s: &Session) -> u32 {
        if s.folded() {
            s.mapping & SUB_NONE
        } else {
            self.mappings[s.mapping as usize].sub()
        }
    }

    /// True when no new mapping record can be taken: none free, or the mapping
    /// indexes full (see `Nat::new`: only past static mappings a reload added).
    #[inline]
    fn mapping_full(&self) -> bool {
        self.free_mapping == NIL || self.map_in.is_full()
    }

    /// The mapping record of mapping index record `r`. A folded mapping (session
    /// record `r`) is given one first, counting its session: a second session or a
    /// pin comes to share it. Refused when every mapping record is in use. A record
    /// once given stays until the mapping ends, whatever shares it meanwhile.
    fn mapping_record(&mut self, r: u32) -> Result<u32, DropReason> {
        if r >= self.map_base {
            return Ok(r - self.map_base);
        }
        let m = self.free_mapping;
        if m == NIL {
            return Err(DropReason::MappingTableFull);
        }
        let s = self.sessions[r as usize];
        let a = self.pool.index_of(s.out_addr).unwrap_or_default();
        self.free_mapping = self.mappings[m as usize].sessions;
        self.mappings[m as usize] = Mapping::new(
            mask(self.params.mapping, &s.in_key()),
            a,
            s.out_port,
            1,
            s.mapping & SUB_NONE,
        );
        self.sessions[r as usize].mapping = m;
        let rec = self.map_base + m;
        self.index_mapping(rec);
        if self.params.filtering == Behavior::AddressDependent {
            if let Some(c) = self.adf.remove(&(r, s.rem_addr)) {
                self.adf.insert((rec, s.rem_addr), c);
            }
        }
        Ok(m)
    }

    /// Ends mapping index record `r` (still written): its index entries, its
    /// subscriber's count, its port.
    fn drop_mapping(&mut self, r: u32, now: u32, clean: bool) {
        self.bib_delete(r);
        let (sub, a, proto, port) = if r < self.map_base {
            let s = &self.sessions[r as usize];
            let a = self.pool.index_of(s.out_addr).unwrap_or_default();
            (s.mapping & SUB_NONE, a, s.proto, s.out_port)
        } else {
            let m = &self.mappings[(r - self.map_base) as usize];
            (m.sub(), usize::from(m.pool), m.proto(), m.out_port)
        };
        self.unindex_mapping(r);
        self.subs[sub as usize].mappings -= 1;
        if let Some((a, b, owner)) = self.pool.release(a, proto, port, now, clean) {
            self.drop_block(a, b, owner);
        }
        self.counters.mappings_active.set(self.map_out.len() as u64);
        self.maybe_remove_subscriber(sub);
    }

    fn timeout(&self, s: &Session) -> u32 {
        let t = &self.params.timeouts;
        match s.proto {
            ipv4::PROTO_TCP => match s.state() {
                TcpState::Established | TcpState::FinOut | TcpState::FinIn => t.tcp_established,
                _ => t.tcp_transitory,
            },
            ipv4::PROTO_UDP => t.udp,
            ipv4::PROTO_ICMP => t.icmp,
            _ => t.other,
        }
    }

    /// The time at which session `i` expires if nothing refreshes it.
    pub fn deadline(&self, i: u32) -> u32 {
        let s = &self.sessions[i as usize];
        s.last_seen.saturating_add(self.timeout(s))
    }

    fn track_tcp(s: &mut Session, flags: u8, outbound: bool) {
        use TcpState::*;
        if flags & tcp::RST != 0 {
            s.set_state(Reset);
            return;
        }
        let syn = flags & tcp::SYN != 0;
        let fin = flags & tcp::FIN != 0;
        let next = match (s.state(), outbound) {
            (SynOut, false) if syn => Established,
            (SynIn, true) if syn => Established,
            (Closing | Reset, true) if syn && flags & tcp::ACK == 0 => SynOut,
            (Established, true) if fin => FinOut,
            (Established, false) if fin => FinIn,
            (FinOut, false) if fin => Closing,
            (FinIn, true) if fin => Closing,
            (st, _) => st,
        };
        s.set_state(next);
    }

    /// The session of an outbound packet, created (with a mapping if needed) when it
    /// has none. `may_create` is false for packets that must not create state (TCP
    /// without SYN is refused here, ICMP non-requests by the caller).
    pub fn in2out(
        &mut self,
        t: &Tuple,
        tcp_flags: u8,
        may_create: bool,
        now: u32,
    ) -> Result<u32, DropReason> {
        let key = t.in2out_key();
        if let Some(i) = self.session_by_in_key(&key) {
            self.outbound_on(i, t.proto, tcp_flags, now);
            return Ok(i);
        }
        let h = CreateHashes {
            sub: self.hasher.addr(t.src),
            map: self.hasher.key(&self.mapping_key(&key)),
        };
        self.create_commit(t, tcp_flags, may_create, h, None, now)
    }

    /// An outbound packet on existing session `i`: refreshes it, moves its TCP
    /// state, and marks a session a remote opened as answered.
    #[inline]
    fn outbound_on(&mut self, i: u32, proto: u8, tcp_flags: u8, now: u32) {
        let s = &mut self.sessions[i as usize];
        s.last_seen = now;
        if proto == ipv4::PROTO_TCP {
            Self::track_tcp(s, tcp_flags, true);
        }
        if s.unanswered() {
            // The first packet of the inside host on a session a remote opened.
            s.flags |= ANSWERED;
            let s = *s;
            let sub = self.session_sub(&s);
            self.unlink_inbound(sub, i, 0);
            self.link_inbound(sub, i, 1);
        }
    }

    /// [`Nat::in2out`] once the lookup of `t`'s session missed: creates it (with a
    /// mapping if needed), or refuses. `h`: the hashes of its subscriber and mapping
    /// keys ([`Nat::create_slots`]). The burst path's creation stage d
    /// (`nat/create.rs`) calls it directly: its caller makes sure no session of `t`
    /// was created since its lookup, and passes the ALG of the new session (`alg`:
    /// 0, [`Nat::creates_plain`]) it found already; None looks it up here.
    pub fn create_commit(
        &mut self,
        t: &Tuple,
        tcp_flags: u8,
        may_create: bool,
        h: CreateHashes,
        alg: Option<u8>,
        now: u32,
    ) -> Result<u32, DropReason> {
        let key = t.in2out_key();
        if t.proto == ipv4::PROTO_TCP && (tcp_flags & (tcp::SYN | tcp::ACK | tcp::RST) != tcp::SYN)
        {
            return Err(DropReason::TcpNoSessionNotSyn);
        }
        if !may_create {
            return Err(DropReason::NoMapping);
        }
        if self.free_session == NIL {
            return Err(DropReason::SessionTableFull);
        }
        let sub = self.find_or_add_subscriber_hashed(t.src, h.sub)?;
        let result = if portless(key.proto) {
            self.portless_new(sub, key, now)
        } else {
            self.in2out_new(sub, key, h.map, alg, now)
        };
        if let Err(r) = result {
            self.limit_event(r, key.a, now);
            self.maybe_remove_subscriber(sub);
        }
        result
    }

    fn in2out_new(
        &mut self,
        sub: u32,
        key: Key,
        mh: u32,
        alg: Option<u8>,
        now: u32,
    ) -> Result<u32, DropReason> {
        if self.subs[sub as usize].sessions >= self.params.max_sessions_per_subscriber {
            return Err(DropReason::SubscriberSessionLimit);
        }
        let mkey = self.mapping_key(&key);
        let mk = map_keys!(self);
        let found = self.map_in.find(mh, |r| mk.in_key(r) == mkey);
        let (m, out_addr, out_port) = match found {
            Some(r) => {
                // A second session shares the mapping: it needs a record of its own
                // (a folded mapping is indexed again: the deferred outside keys go
                // first, so that every index ends as entering them at once leaves it).
                self.flush_deferred();
                let m = self.mapping_record(r)?;
                let map = &self.mappings[m as usize];
                (m, map.out_addr(&self.pool), map.out_port)
            }
            None => {
                // A new mapping lives in its session's record until another session
                // or a pin shares it.
                if self.map_in.is_full() {
                    return Err(DropReason::MappingTableFull);
                }
                let (a, port) =
                    self.alloc_port(sub, mkey, self.parity(&mkey), self.params.port_preservation)?;
                self.subs[sub as usize].mappings += 1;
                self.check_threshold(a);
                let out_addr = self.pool.addr(a);
                self.bib_event(
                    event::BIB_CREATE,
                    key.proto,
                    (key.a, key.pa),
                    (out_addr, port),
                );
                (FOLDED | sub, out_addr, port)
            }
        };
        // The outside keys' index slots are known only now that the port is: their
        // misses overlap writing the session (new_session_in inserts it last), or,
        // in the burst path's creation stage, the next creations (their insert is
        // deferred: `Nat::defer_out_keys`).
        let out = |b, pb| Key {
            proto: key.proto,
            a: out_addr,
            pa: out_port,
            b,
            pb,
        };
        self.out_idx.prefetch(self.hasher.key(&out(key.b, key.pb)));
        if m & FOLDED != 0 {
            self.map_out.prefetch(self.hasher.key(&out(0, 0)));
        }
        let state = if key.proto == ipv4::PROTO_TCP {
            TcpState::SynOut
        } else {
            TcpState::None
        };
        // A session on a mapping an expectation pins (media the inside host sends
        // first) is one of its master's data sessions. (Not a registration's: it
        // outlives its master, whose record may be another session's by now.)
        let bound = match alg {
            Some(a) => a,
            None => {
                let ends = ((key.a, key.pa), (out_addr, out_port), (key.b, key.pb));
                self.alg_for_subscriber(key.proto, key.pb, ends, now)
            }
        };
        let (alg, master) = match bound {
            0 if !self.expects.is_empty() => self
                .expectation_of(key.proto, out_addr, out_port)
                .map_or((0, NIL), |e| (e.alg, if e.keep { NIL } else { e.master })),
            a => (a, NIL),
        };
        let i = self.new_session(Session {
            in_addr: key.a,
            in_port: key.pa,
            out_addr,
            out_port,
            rem_addr: key.b,
            rem_port: key.pb,
            proto: key.proto,
            flags: Session::flags(state, alg),
            last_seen: now,
            mapping: m,
            next: NIL,
        });
        if master != NIL {
            self.add_kin(master, i);
        }
        if m & FOLDED != 0 {
            if self.deferred.on {
                // The outside key with the session's ([`Nat::index_deferred`]).
                self.index_mapping_in(i);
            } else {
                self.index_mapping(i);
                self.counters.mappings_active.set(self.map_out.len() as u64);
            }
        }
        Ok(i)
    }

    /// A new address-only session ([`portless`]) of subscriber `sub` for inside key
    /// `key` (ports 0): on the subscriber's own pool address (its paired one, or the
    /// one its address hashes to) when no other subscriber has (that address, the
    /// remote, the protocol), else on the next pool address that is free for them;
    /// refused (`other_protocol_address_conflict`) when none is: two subscribers are
    /// never behind one (pool address, remote, protocol). Every session of a remote
    /// lives on one worker ([`Nat::portless_owner`]), so this worker sees them all.
    fn portless_new(&mut self, sub: u32, key: Key, now: u32) -> Result<u32, DropReason> {
        if self.subs[sub as usize].sessions >= self.params.max_sessions_per_subscriber {
            return Err(DropReason::SubscriberSessionLimit);
        }
        // The outside keys of sessions created in this burst are looked up below.
        self.flush_deferred();
        let n = self.pool.addrs.len();
        if n == 0 {
            return Err(DropReason::PoolExhausted);
        }
        let home = self.subs[sub as usize].pool;
        let start = if home != NO_POOL {
            usize::from(home)
        } else {
            hash32(key.a) as usize % n
        };
        let a = (0..n)
            .map(|k| (start + k) % n)
            .find(|&a| {
                let out = Key {
                    a: self.pool.addr(a),
                    ..key
                };
                (a == start || !self.pool.addrs[a].draining)
                    && self.session_by_out_key(&out).is_none()
            })
            .ok_or(DropReason::OtherProtocolAddressConflict)?;
        Ok(self.new_session(Session {
            in_addr: key.a,
            in_port: 0,
            out_addr: self.pool.addr(a),
            out_port: 0,
            rem_addr: key.b,
            rem_port: 0,
            proto: key.proto,
            flags: Session::flags(TcpState::None, 0),
            last_seen: now,
            mapping: FOLDED | sub,
            next: NIL,
        }))
    }

    /// The worker that owns the address-only sessions ([`portless`]) with remote
    /// `remote`, both ways: a hash of the remote address (which both directions
    /// carry; no port steers them), so that one worker sees every subscriber's
    /// session with that remote and keeps them apart.
    #[inline]
    pub fn portless_owner(&self, remote: u32) -> u16 {
        (hash32(remote) % u32::from(self.pool.layout.workers.max(1))) as u16
    }

    /// The expectation pinning the mapping of outside endpoint (`proto`, `out_addr`,
    /// `out_port`), if any: the ALG it gives its sessions (RTCP) and its master.
    fn expectation_of(&self, proto: u8, out_addr: u32, out_port: u16) -> Option<&Expect> {
        self.expects.get(&Key {
            proto,
            a: out_addr,
            pa: out_port,
            b: 0,
            pb: 0,
        })
    }

    /// The ALG of a new session to server port `port`, 0 if none: the first ALG of
    /// the registry that is on, speaks `proto`, and has that port configured.
    #[inline]
    fn alg_for(&self, proto: u8, port: u16) -> u8 {
        let base = match proto {
            ipv4::PROTO_TCP => 0,
            ipv4::PROTO_UDP => ALG_PORT_WORDS,
            _ => return self.alg_in_lists(proto, port),
        };
        let w = self.alg_ports.get(base + usize::from(port >> 6)).copied();
        if w.is_some_and(|w| w >> (port & 63) & 1 == 0) {
            return 0;
        }
        self.alg_in_lists(proto, port)
    }

    /// [`Nat::alg_for`] for a session of its subscriber (`ends`: the session's
    /// inside, outside and remote endpoints): 0 when the ALG is off for the
    /// subscriber (`alg.<name>.only`, `except`), counted per ALG and, with syslog on,
    /// logged (`alg-policy`, decision `subscriber_off`; 100 a second at most).
    fn alg_for_subscriber(&mut self, proto: u8, port: u16, ends: Ends, now: u32) -> u8 {
        let sub = ends.0 .0;
        let a = self.alg_for(proto, port);
        if a == 0 || self.params.alg_subscribers.is_empty() {
            return a;
        }
        let ip = std::net::Ipv4Addr::from(sub);
        let served = self
            .params
            .alg_subscribers
            .iter()
            .find(|(id, ..)| *id == a)
            .is_none_or(|(_, only, except)| {
                (only.is_empty() || only.iter().any(|n| n.contains(ip)))
                    && !except.iter().any(|n| n.contains(ip))
            });
        if served {
            return a;
        }
        if let Some(c) = self.counters.alg_subscriber_off.get(usize::from(a)) {
            c.inc();
        }
        // (A NAT64 host's handle is no address to log: its decision is counted only.)
        if self.params.log.alg_policy && !hosts6::is_host(sub) {
            if self.off_second != now {
                (self.off_second, self.off_left) = (now, 100);
            }
            if self.off_left > 0 {
                self.off_left -= 1;
                let (inside, outside, remote) = ends;
                self.emit(LogEvent::alg_subscriber_off(a, inside, outside, remote));
            }
        }
        0
    }

    /// The ALG of a new session of `proto` to `port`, from the configured port lists.
    fn alg_in_lists(&self, proto: u8, port: u16) -> u8 {
        alg_lists(&self.params)
            .find(|(a, ports)| a.protocols.contains(&proto) && ports.contains(&port))
            .map_or(0, |(a, _)| a.id)
    }

    fn new_session(&mut self, s: Session) -> u32 {
        self.new_session_in(s, None)
    }

    /// Creates session `s` in a free record, or in record `reuse`: one
    /// [`Nat::release_session`] emptied that is still on the timer wheel (where it
    /// stays: the wheel finds its new deadline when it comes due).
    fn new_session_in(&mut self, s: Session, reuse: Option<u32>) -> u32 {
        let i = match reuse {
            Some(j) => j,
            None => {
                let i = self.free_session;
                self.free_session = self.sessions[i as usize].next;
                i
            }
        };
        let link = self.sessions[i as usize].next;
        self.sessions[i as usize] = s;
        let sub = if s.folded() {
            s.mapping & SUB_NONE
        } else {
            let m = &mut self.mappings[s.mapping as usize];
            m.sessions += 1;
            m.sub()
        };
        if !s.inbound() {
            self.subs[sub as usize].sessions += 1;
        }
        if hosts6::is_host(s.in_addr) {
            self.hosts6.hold(s.in_addr);
            self.counters.nat64_sessions_active.add(1);
        }
        if self.params.filtering == Behavior::AddressDependent {
            let r = self.mapping_ref(i, &s);
            *self.adf.entry((r, s.rem_addr)).or_insert(0) += 1;
        }
        if reuse.is_some() {
            self.sessions[i as usize].next = link;
        } else {
            let deadline = self.deadline(i);
            let mut next = NIL;
            self.wheel.insert(i, deadline, &mut next);
            self.sessions[i as usize].next = next;
        }
        // Last: the outside key's slot was likely prefetched by the caller.
        self.index_session(i);
        self.live_sessions += 1;
        self.note(false, &s);
        if self.logs_session(&s) {
            self.emit(self.session_event(event::SESSION_CREATE, &s));
        }
        let p = proto_index(s.proto);
        self.counters.sessions_created[p].inc();
        self.counters.sessions_active[p].add(1);
        i
    }

    /// The subscriber key of inside address `addr`: itself, or for a NAT64 host
    /// handle the key of its subscriber prefix (None: not a live handle).
    #[inline]
    fn sub_key(&self, addr: u32) -> Option<u32> {
        if hosts6::is_host(addr) {
            self.hosts6.key_if_live(addr)
        } else {
            Some(addr)
        }
    }

    /// The subscriber slot of inside address `addr` (a NAT64 host handle: its
    /// subscriber prefix's; a subscriber key: its own).
    #[inline]
    fn subscriber_by_addr(&self, addr: u32) -> Option<u32> {
        let key = self.sub_key(addr)?;
        let subs = &self.subs;
        self.sub_idx
            .find(self.hasher.addr(key), |j| subs[j as usize].addr == key)
    }

    /// The subscriber of a NAT44 inside address (static mappings, PCP), made if new.
    /// An address of 0/8 (a NAT64 handle or key, or one a PCP THIRD_PARTY option
    /// names) is refused: no pin is ever made on a NAT64 mapping.
    fn find_or_add_subscriber(&mut self, addr: u32) -> Result<u32, DropReason> {
        if addr >> 24 == 0 {
            return Err(DropReason::Ipv4Martian);
        }
        self.find_or_add_subscriber_hashed(addr, self.hasher.addr(addr))
    }

    /// [`Nat::find_or_add_subscriber`] with the hash of `addr` (`h`) known. A NAT64
    /// host handle's subscriber is its prefix's: found by the key (the hash of the
    /// handle is not used).
    fn find_or_add_subscriber_hashed(&mut self, addr: u32, h: u32) -> Result<u32, DropReason> {
        let (addr, h) = if hosts6::is_host(addr) {
            let key = self.sub_key(addr).ok_or(DropReason::Ipv4Martian)?;
            (key, self.hasher.addr(key))
        } else {
            (addr, h)
        };
        let subs = &self.subs;
        if let Some(i) = self.sub_idx.find(h, |j| subs[j as usize].addr == addr) {
            return Ok(i);
        }
        let fresh = Subscriber {
            addr,
            sessions: 0,
            mappings: 0,
            next_free: NIL,
            pool: NO_POOL,
            blocks: 0,
        };
        let i = self.free_sub;
        if i != NIL {
            self.free_sub = self.subs[i as usize].next_free;
            self.subs[i as usize] = fresh;
            self.sub_inbound[i as usize] = InboundList::EMPTY;
        } else if (self.subs.len() as u32) < self.sub_cap {
            // Within the capacity reserved at start-up: never reallocates.
            self.subs.push(fresh);
            self.sub_inbound.push(InboundList::EMPTY);
        } else {
            return Err(DropReason::SubscriberTableFull);
        }
        let i = if i != NIL {
            i
        } else {
            self.subs.len() as u32 - 1
        };
        let subs = &self.subs;
        // Never full: room for every subscriber slot.
        let r = self.sub_idx.insert(h, i, |j| subs[j as usize].addr == addr);
        debug_assert!(r.is_ok());
        if hosts6::is_key(addr) {
            self.hosts6.hold_key(addr);
        }
        self.counters
            .subscribers_active
            .set(self.sub_idx.len() as u64);
        Ok(i)
    }

    fn maybe_remove_subscriber(&mut self, i: u32) {
        // Already gone (several paths may ask): nothing to do.
        let addr = self.subs[i as usize].addr;
        if self.subscriber_by_addr(addr) != Some(i) {
            return;
        }
        let s = &mut self.subs[i as usize];
        if s.sessions == 0 && s.mappings == 0 && s.blocks == 0 {
            if s.pool != NO_POOL {
                self.pool.addrs[usize::from(s.pool)].subscribers -= 1;
            }
            s.next_free = self.free_sub;
            let (subs, h) = (&self.subs, &self.hasher);
            self.sub_idx.remove(
                h.addr(addr),
                |j| subs[j as usize].addr == addr,
                |j| h.addr(subs[j as usize].addr),
            );
            self.free_sub = i;
            if hosts6::is_key(addr) {
                self.hosts6.release_key(addr);
                self.count_hosts6();
            }
            self.counters
                .subscribers_active
                .set(self.sub_idx.len() as u64);
        }
    }

    /// Chooses the pool address of a subscriber that has none (paired pooling): a hash
    /// of its address, moving on to the next address that still has room.
    fn pair_address(&mut self, sub: u32) -> Result<usize, DropReason> {
        let s = &self.subs[sub as usize];
        if s.pool != NO_POOL {
            return Ok(usize::from(s.pool));
        }
        let n = self.pool.addrs.len();
        if n == 0 {
            return Err(DropReason::PoolExhausted);
        }
        let start = hash32(s.addr) as usize % n;
        let port_block = self.params.allocation == Allocation::PortBlock;
        let chosen = (0..n).map(|k| (start + k) % n).find(|&a| {
            // A draining address takes no new subscriber (one paired with it keeps it).
            let pa = &self.pool.addrs[a];
            !pa.draining && (!port_block || pa.free_block_count() > 0)
        });
        let a = chosen.ok_or(DropReason::PoolExhausted)?;
        self.subs[sub as usize].pool = a as u16;
        self.pool.addrs[a].subscribers += 1;
        Ok(a)
    }

    /// The parity a new mapping of `mkey` keeps (if the config asks for it).
    fn parity(&self, mkey: &Key) -> Option<u16> {
        (self.params.port_parity && mkey.proto != ipv4::PROTO_ICMP).then_some(mkey.pa)
    }

    /// A new mapping record (no session yet: a pin comes).
    fn new_mapping(&mut self, sub: u32, mkey: Key, _now: u32) -> Result<u32, DropReason> {
        self.new_mapping_with(sub, mkey, self.parity(&mkey), self.params.port_preservation)
    }

    /// A new mapping record of `mkey` whose outside port has the parity of `parity`
    /// (if given), the inside port itself when `preserve` and it is free.
    fn new_mapping_with(
        &mut self,
        sub: u32,
        mkey: Key,
        parity: Option<u16>,
        preserve: bool,
    ) -> Result<u32, DropReason> {
        if self.mapping_full() {
            return Err(DropReason::MappingTableFull);
        }
        let (a, port) = self.alloc_port(sub, mkey, parity, preserve)?;
        Ok(self.install_mapping(sub, mkey, a, port))
    }

    /// Takes the outside address and port of a new mapping of `mkey`: with the
    /// parity of `parity` (if given), the inside port itself when `preserve` and it
    /// is free.
    fn alloc_port(
        &mut self,
        sub: u32,
        mkey: Key,
        parity: Option<u16>,
        preserve: bool,
    ) -> Result<(usize, u16), DropReason> {
        let preserved = if preserve {
            self.try_preserve(sub, mkey)
        } else {
            None
        };
        let (a, port) = match (self.params.allocation, self.params.pooling) {
            _ if preserved.is_some() => preserved.unwrap_or_default(),
            (Allocation::PortBlock, pooling) => {
                let a = match pooling {
                    Pooling::Paired => self.pair_address(sub)?,
                    Pooling::Arbitrary => {
                        let n = self.pool.addrs.len().max(1);
                        let start = (self.pool.random() % n as u64) as usize;
                        (0..n)
                            .map(|k| (start + k) % n)
                            .find(|&a| {
                                self.pool
                                    .addrs
                                    .get(a)
                                    .is_some_and(|p| !p.draining && p.free_block_count() > 0)
                            })
                            .unwrap_or(start)
                    }
                };
                let start = sub as usize * self.block_room;
                let room = &mut self.sub_blocks[start..start + self.block_room];
                let held = &mut self.subs[sub as usize].blocks;
                let r = self
                    .pool
                    .alloc_in_blocks(room, held, sub, a, mkey.proto, parity);
                let grew = matches!(r, Ok((_, _, true)));
                if grew {
                    self.counters.blocks_active.add(1);
                    if self.params.log.blocks {
                        if let Some(&e) = self.blocks_of(sub).last() {
                            let (ba, bb) = ((e >> 16) as usize, e as u16);
                            let start = self.pool.layout.block_start(bb);
                            let ev = LogEvent {
                                kind: event::PORT_BLOCK_ALLOC,
                                inside: mkey.a,
                                outside: self.pool.addr(ba),
                                out_port: start,
                                dst_port: start + (self.pool.layout.block_size - 1),
                                step: 1,
                                ..LogEvent::default()
                            };
                            self.emit(ev);
                        }
                    }
                }
                let (a, port, _) = r.map_err(|e| match e {
                    PortError::Exhausted => DropReason::PoolExhausted,
                    PortError::SubscriberLimit => DropReason::SubscriberPortLimit,
                })?;
                (a, port)
            }
            (Allocation::Deterministic, _) => {
                let d = self
                    .params
                    .deterministic
                    .as_ref()
                    .ok_or(DropReason::PoolExhausted)?;
                let (a, start) = d.forward_index(mkey.a).ok_or(DropReason::SourceNotInside)?;
                let len = d.ports_per_subscriber;
                if a >= self.pool.addrs.len() {
                    return Err(DropReason::PoolExhausted);
                }
                let port = self
                    .pool
                    .alloc_range(a, mkey.proto, start, len, parity)
                    .ok_or(DropReason::SubscriberPortLimit)?;
                (a, port)
            }
            (_, Pooling::Paired) => {
                let a = self.pair_address(sub)?;
                let port = self
                    .pool
                    .alloc_dynamic(a, mkey.proto, parity)
                    .map_err(|_| DropReason::PoolExhausted)?;
                (a, port)
            }
            (_, Pooling::Arbitrary) => {
                let n = self.pool.addrs.len();
                let start = (self.pool.random() % n.max(1) as u64) as usize;
                let mut got = None;
                for k in 0..n {
                    let a = (start + k) % n;
                    if self.pool.is_draining(a) {
                        continue;
                    }
                    if let Ok(p) = self.pool.alloc_dynamic(a, mkey.proto, parity) {
                        got = Some((a, p));
                        break;
                    }
                }
                got.ok_or(DropReason::PoolExhausted)?
            }
        };
        Ok((a, port))
    }

    /// Records a mapping of `mkey` to pool address `a`, `port` (already taken).
    fn install_mapping(&mut self, sub: u32, mkey: Key, a: usize, port: u16) -> u32 {
        let m = self.free_mapping;
        self.free_mapping = self.mappings[m as usize].sessions;
        self.mappings[m as usize] = Mapping::new(mkey, a, port, 0, sub);
        self.index_mapping(self.map_base + m);
        self.subs[sub as usize].mappings += 1;
        let out = (self.pool.addr(a), port);
        self.bib_event(event::BIB_CREATE, mkey.proto, (mkey.a, mkey.pa), out);
        self.counters.mappings_active.set(self.map_out.len() as u64);
        self.check_threshold(a);
        m
    }

    /// Port preservation: the inside port itself, on the subscriber's address, when it
    /// is free and this subscriber may have it (dynamic: a block this worker owns;
    /// port-block: a block the subscriber holds; deterministic: inside its range).
    fn try_preserve(&mut self, sub: u32, mkey: Key) -> Option<(usize, u16)> {
        let port = mkey.pa;
        // Arbitrary pooling tries the first address that does not drain.
        let a = self.try_port_on(sub, mkey, port, self.pool.first_active())?;
        self.pool.take(a, mkey.proto, port).then_some((a, port))
    }

    /// The pool address on which the subscriber may have outside `port` (its address,
    /// its block, its range), `prefer` where any would do; None if it may not.
    fn try_port(&mut self, sub: u32, mkey: Key, port: u16, prefer: usize) -> Option<usize> {
        self.try_port_on(sub, mkey, port, prefer)
    }

    fn try_port_on(&mut self, sub: u32, mkey: Key, port: u16, prefer: usize) -> Option<usize> {
        let a = match self.params.allocation {
            Allocation::Deterministic => {
                let d = self.params.deterministic.as_ref()?;
                let (a, start) = d.forward_index(mkey.a)?;
                let inside = port >= start
                    && u32::from(port) < u32::from(start) + u32::from(d.ports_per_subscriber);
                inside.then_some(a)?
            }
            Allocation::PortBlock => {
                let b = self.pool.layout.block_of(port)?;
                let entry = self.blocks_of(sub).iter().find(|&&e| e as u16 == b)?;
                (entry >> 16) as usize
            }
            Allocation::Dynamic => {
                let a = match self.params.pooling {
                    Pooling::Paired => self.pair_address(sub).ok()?,
                    Pooling::Arbitrary if self.pool.is_draining(prefer) => return None,
                    Pooling::Arbitrary => prefer,
                };
                let addr = *self.pool.addresses().get(a)?;
                if self.pool.owner(addr, port)? != self.pool_worker() {
                    return None;
                }
                a
            }
        };
        Some(a)
    }

    fn pool_worker(&self) -> u16 {
        self.pool.worker()
    }

    /// The session of an inbound packet. Without one, a mapping to the destination and
    /// the filtering behaviour decide whether a session is created; inbound packets
    /// never refresh a mapping (RFC 4787 REQ-6 as RFC 7857 recommends).
    pub fn out2in(
        &mut self,
        t: &Tuple,
        tcp_flags: u8,
        may_create: bool,
        now: u32,
    ) -> Result<u32, DropReason> {
        let key = t.out2in_key();
        if let Some(i) = self.session_by_out_key(&key) {
            if t.proto == ipv4::PROTO_TCP {
                Self::track_tcp(&mut self.sessions[i as usize], tcp_flags, false);
            }
            return Ok(i);
        }
        let okey = Key {
            proto: t.proto,
            a: t.dst,
            pa: t.dport,
            b: 0,
            pb: 0,
        };
        let r = self
            .mapping_by_out_key(&okey)
            .ok_or(DropReason::NoMapping)?;
        // Remote 0: any address (a loose FTP expectation, media before the answer).
        let exp = self
            .expects
            .get(&okey)
            .filter(|e| e.remote == t.src || e.remote == 0)
            .copied();
        let expected = exp.is_some();
        // A static mapping is a port forward: connections to it are wanted; so is one
        // a subscriber asked for (PCP), from the remotes its filters name.
        let asked = self.pcp_admits(r, t.src, t.sport);
        if asked == Some(false) && !expected {
            return Err(DropReason::Filtered);
        }
        let forward = (!self.statics.is_empty() && self.statics.contains(&r)) || asked.is_some();
        let allowed = expected
            || forward
            || match self.params.filtering {
                Behavior::EndpointIndependent => true,
                Behavior::AddressDependent => self.adf.contains_key(&(r, t.src)),
                Behavior::AddressAndPortDependent => false,
            };
        if !allowed {
            return Err(DropReason::Filtered);
        }
        if !may_create
            || (t.proto == ipv4::PROTO_TCP
                && tcp_flags & (tcp::SYN | tcp::ACK | tcp::RST) != tcp::SYN)
        {
            return Err(DropReason::Filtered);
        }
        if self.free_session == NIL {
            return Err(DropReason::SessionTableFull);
        }
        // Under address- or port-dependent mapping, the mapping belongs to one remote:
        // a session to another remote must not share it.
        if self.params.mapping != Behavior::EndpointIndependent && !expected && !forward {
            return Err(DropReason::Filtered);
        }
        // What the subscriber asked for (an ALG's expectation, a port forward) counts
        // against its own quota; what the filtering alone let in has a budget of its
        // own, so that remote hosts (spoofed ones included) cannot use up the
        // subscriber's quota for its own outbound flows.
        let inbound = !expected && !forward;
        let sub = self.mapping_sub(r);
        if !inbound && self.subs[sub as usize].sessions >= self.params.max_sessions_per_subscriber {
            return Err(DropReason::SubscriberSessionLimit);
        }
        if inbound && !self.inbound_possible(sub) {
            return Err(DropReason::SubscriberInboundLimit);
        }
        // The session shares the mapping: a folded one is given its record (before
        // anything changes, so that a refusal leaves all as it was).
        let m = self.mapping_record(r)?;
        let map = self.mappings[m as usize];
        // Pinned while a recycled session may have been its last.
        let mut reuse = None;
        if inbound {
            self.mappings[m as usize].sessions += 1;
            let room = self.inbound_room(map.sub(), now);
            self.mappings[m as usize].sessions -= 1;
            reuse = room.map_err(|()| DropReason::SubscriberInboundLimit)?;
        }
        let state = if t.proto == ipv4::PROTO_TCP {
            TcpState::SynIn
        } else {
            TcpState::None
        };
        // A server behind a port forward speaks its protocol on its own port.
        let inside = (map.key().a, map.key().pa);
        let alg = match exp {
            Some(e) => e.alg,
            None if forward => {
                let ends = (
                    inside,
                    (map.out_addr(&self.pool), map.out_port),
                    (t.src, t.sport),
                );
                self.alg_for_subscriber(t.proto, map.key().pa, ends, now)
            }
            None => 0,
        };
        let si = self.new_session_in(
            Session {
                in_addr: map.key().a,
                in_port: map.key().pa,
                out_addr: map.out_addr(&self.pool),
                out_port: map.out_port,
                rem_addr: t.src,
                rem_port: t.sport,
                proto: t.proto,
                flags: Session::flags(state, alg) | if inbound { INBOUND } else { 0 },
                last_seen: now,
                mapping: m,
                next: NIL,
            },
            reuse,
        );
        if inbound {
            self.link_inbound(map.sub(), si, 0);
        }
        if let Some(e) = exp {
            if !e.keep {
                self.add_kin(e.master, si);
            }
            self.counters.expectations_matched.inc();
            if !e.keep {
                self.remove_expectation(&okey, now);
            }
        }
        Ok(si)
    }

    /// Whether [`Nat::inbound_room`] would make room for an inbound-created session
    /// of subscriber `sub` (under its budget, or an unanswered one to recycle).
    fn inbound_possible(&self, sub: u32) -> bool {
        let list = &self.sub_inbound[sub as usize];
        list.count < self.params.max_inbound_sessions_per_subscriber || list.ends[0].0 != NIL
    }

    /// Whether subscriber `sub` may have one more inbound-created session: Ok(None)
    /// under its budget; Ok(Some(record)) once its oldest unanswered one was ended to
    /// make room, its record to reuse; Err when they are all answered. The caller
    /// pins the mapping the new session will use (the recycled one may have been its
    /// last).
    fn inbound_room(&mut self, sub: u32, now: u32) -> Result<Option<u32>, ()> {
        let list = self.sub_inbound[sub as usize];
        if list.count < self.params.max_inbound_sessions_per_subscriber {
            return Ok(None);
        }
        let oldest = list.ends[0].0;
        if oldest == NIL {
            return Err(());
        }
        self.release_session(oldest, now);
        self.counters.inbound_sessions_recycled.inc();
        Ok(Some(oldest))
    }

    /// Appends session `i` to subscriber `sub`'s inbound list `k` (0 unanswered, 1
    /// answered).
    fn link_inbound(&mut self, sub: u32, i: u32, k: usize) {
        let l = &mut self.sub_inbound[sub as usize];
        let (head, tail) = &mut l.ends[k];
        self.inb_link[2 * i as usize] = *tail;
        self.inb_link[2 * i as usize + 1] = NIL;
        if *tail != NIL {
            self.inb_link[2 * *tail as usize + 1] = i;
        } else {
            *head = i;
        }
        *tail = i;
        l.count += 1;
    }

    /// Removes session `i` from subscriber `sub`'s inbound list `k`.
    fn unlink_inbound(&mut self, sub: u32, i: u32, k: usize) {
        let (prev, next) = (
            self.inb_link[2 * i as usize],
            self.inb_link[2 * i as usize + 1],
        );
        let l = &mut self.sub_inbound[sub as usize];
        let (head, tail) = &mut l.ends[k];
        if prev != NIL {
            self.inb_link[2 * prev as usize + 1] = next;
        } else {
            *head = next;
        }
        if next != NIL {
            self.inb_link[2 * next as usize] = prev;
        } else {
            *tail = prev;
        }
        l.count -= 1;
    }

    /// Runs expiry up to `now`, examining at most `budget` sessions. Returns how many
    /// sessions expired.
    pub fn expire(&mut self, now: u32, budget: usize) -> usize {
        self.expire_expectations(now);
        self.expire_calls(now);
        self.pcp_expire(now);
        let mut expired = 0;
        for _ in 0..budget {
            let sessions = &self.sessions;
            let Some(i) = self.wheel.pop_due(now, |i| sessions[i as usize].next) else {
                break;
            };
            if self.sessions[i as usize].mapping == NIL {
                // Released while on the wheel (an HA standby told so): free now.
                self.sessions[i as usize].next = self.free_session;
                self.free_session = i;
                continue;
            }
            let mut deadline = self.deadline(i);
            if deadline <= now && self.sessions[i as usize].alg() != 0 && !self.kin.is_empty() {
                // A control session is as idle as its data sessions (`nat/kin.rs`).
                self.keep_alive_by_kin(i);
                deadline = self.deadline(i);
            }
            if deadline <= now && self.hold && self.sessions[i as usize].mapping != NIL {
                // A standby's live session: due again one timeout from now.
                deadline = now.saturating_add(self.timeout(&self.sessions[i as usize]).max(1));
            }
            if deadline > now {
                let mut next = NIL;
                self.wheel.insert(i, deadline, &mut next);
                self.sessions[i as usize].next = next;
            } else {
                self.free_session_at(i, now);
                expired += 1;
            }
        }
        for _ in 0..budget {
            match self.pool.pop_expired(now) {
                None => break,
                Some(None) => {}
                Some(Some((a, b, owner))) => {
                    self.drop_block(a, b, owner);
                    self.maybe_remove_subscriber(owner);
                }
            }
        }
        expired
    }

    fn drop_block(&mut self, a: usize, b: u16, owner: u32) {
        let entry = (a as u32) << 16 | u32::from(b);
        let mut inside = 0;
        if let Some(s) = self.subs.get_mut(owner as usize) {
            // Remove the entry keeping the others in order (as `Vec::retain` did).
            let start = owner as usize * self.block_room;
            let held = &mut self.sub_blocks[start..start + usize::from(s.blocks)];
            if let Some(k) = held.iter().position(|&e| e == entry) {
                held.copy_within(k + 1.., k);
                s.blocks -= 1;
            }
            inside = s.addr;
        }
        let v = self.counters.blocks_active.get();
        self.counters.blocks_active.set(v.saturating_sub(1));
        if self.params.log.blocks {
            let start = self.pool.layout.block_start(b);
            self.emit(LogEvent {
                kind: event::PORT_BLOCK_FREE,
                inside,
                outside: self.pool.addr(a),
                out_port: start,
                dst_port: start + (self.pool.layout.block_size - 1),
                step: 1,
                ..LogEvent::default()
            });
        }
    }

    /// A threshold event when address `a` crosses the configured utilisation.
    fn check_threshold(&mut self, a: usize) {
        let pct = self.params.log.threshold_percent;
        if pct == 0 {
            return;
        }
        let u = self
            .pool
            .utilisation(a, self.params.allocation == Allocation::PortBlock);
        if !self.above_threshold[a] && u >= pct {
            self.above_threshold[a] = true;
            let outside = self.pool.addr(a);
            self.emit(LogEvent {
                kind: event::THRESHOLD_REACHED,
                outside,
                limit: u,
                ..LogEvent::default()
            });
        } else if self.above_threshold[a] && u + 10 < pct {
            self.above_threshold[a] = false;
        }
    }

    /// Records an event for the exporter; a full buffer drops it (counted).
    fn emit(&mut self, mut e: LogEvent) {
        if e.inside >> 24 == 0 && e.inside != 0 {
            // A NAT64 host handle or subscriber key (0/8, never a NAT44 inside
            // address): the event carries the IPv6 host (a session's) or subscriber
            // prefix (a block's, a quota's), resolved now, while the handle or key
            // is alive. One that names nothing live is not sent: a wrong address is
            // worse than none.
            let session = matches!(
                e.kind,
                event::SESSION_CREATE
                    | event::SESSION_DELETE
                    | event::BIB_CREATE
                    | event::BIB_DELETE
            );
            let Some((addr, len)) = self.hosts6.resolve(e.inside, !session) else {
                self.counters.log_events_nat64_unlogged.inc();
                return;
            };
            e.inside6 = addr.to_be_bytes();
            e.v6_len = len;
            e.kind = match e.kind {
                event::SESSION_CREATE => event::NAT64_SESSION_CREATE,
                event::SESSION_DELETE => event::NAT64_SESSION_DELETE,
                event::BIB_CREATE => event::NAT64_BIB_CREATE,
                event::BIB_DELETE => event::NAT64_BIB_DELETE,
                k => k,
            };
        }
        if self.events.len() < self.events.capacity() {
            self.events.push(e);
        } else {
            self.counters.log_events_dropped.inc();
        }
    }

    /// A BIB (mapping) event under `logging.ipfix.mappings`: the mapping of inside
    /// endpoint `inside` (a NAT64 host's handle: resolved by [`Nat::emit`]) to pool
    /// endpoint `outside`.
    fn bib_event(&mut self, kind: u8, proto: u8, inside: (u32, u16), outside: (u32, u16)) {
        if self.params.log.mappings {
            self.emit(LogEvent {
                kind,
                proto,
                inside: inside.0,
                in_port: inside.1,
                outside: outside.0,
                out_port: outside.1,
                ..LogEvent::default()
            });
        }
    }

    /// The BIB delete event of mapping index record `r` (a session's folded mapping,
    /// or a mapping record), still written.
    fn bib_delete(&mut self, r: u32) {
        if !self.params.log.mappings {
            return;
        }
        let (proto, inside, outside) = if r < self.map_base {
            let s = &self.sessions[r as usize];
            (s.proto, (s.in_addr, s.in_port), (s.out_addr, s.out_port))
        } else {
            let m = &self.mappings[(r - self.map_base) as usize];
            let out = (m.out_addr(&self.pool), m.out_port);
            (m.proto(), (m.in_addr, m.in_port), out)
        };
        self.bib_event(event::BIB_DELETE, proto, inside, outside);
    }

    /// Events recorded since the last call, for the driver to pass to the exporter
    /// (the PPTP calls made and ended meanwhile added now: [`Nat::log_calls`]).
    pub fn events(&mut self) -> &mut Vec<LogEvent> {
        self.log_calls();
        &mut self.events
    }

    /// An exhaustion or quota event for a refused session, at most 100 a second.
    fn limit_event(&mut self, r: DropReason, src: u32, now: u32) {
        if !self.params.log.limits {
            return;
        }
        if self.limit_second != now {
            self.limit_second = now;
            self.limit_left = 100;
        }
        if self.limit_left == 0 {
            return;
        }
        let (kind, q, limit) = match r {
            DropReason::PoolExhausted => (event::ADDRESSES_EXHAUSTED, 0, 0),
            DropReason::SessionTableFull => (
                event::QUOTA_EXCEEDED,
                quota::MAX_SESSION_ENTRIES,
                self.params.max_sessions,
            ),
            DropReason::SubscriberSessionLimit => (
                event::QUOTA_EXCEEDED,
                quota::MAX_ENTRIES_PER_USER,
                self.params.max_sessions_per_subscriber,
            ),
            DropReason::SubscriberPortLimit => (
                event::QUOTA_EXCEEDED,
                quota::MAX_ENTRIES_PER_USER,
                u32::from(self.params.max_blocks_per_subscriber)
                    * u32::from(self.params.block_size),
            ),
            _ => return,
        };
        self.limit_left -= 1;
        self.emit(LogEvent {
            kind,
            inside: src,
            dst: q,
            limit,
            ..LogEvent::default()
        });
    }

    /// Whether session `s`'s create and delete are logged: every session's under
    /// `log.sessions`, an address-only one's under `log.other_sessions` too.
    #[inline]
    fn logs_session(&self, s: &Session) -> bool {
        let log = &self.params.log;
        log.sessions || (log.other_sessions && portless(s.proto))
    }

    fn session_event(&self, kind: u8, s: &Session) -> LogEvent {
        // An address-only session's remote is what tells it from another subscriber's
        // on the same address: always carried.
        let dst = self.params.log.destinations || portless(s.proto);
        LogEvent {
            kind,
            proto: s.proto,
            inside: s.in_addr,
            outside: s.out_addr,
            in_port: s.in_port,
            out_port: s.out_port,
            dst: if dst { s.rem_addr } else { 0 },
            dst_port: if dst { s.rem_port } else { 0 },
            ..LogEvent::default()
        }
    }

    /// Drops one reference on mapping `mi` (a session, or an expectation's pin); the
    /// last one frees it and releases its port.
    fn unpin_mapping(&mut self, mi: u32, now: u32, clean: bool) {
        let m = &mut self.mappings[mi as usize];
        m.sessions -= 1;
        if m.sessions > 0 {
            return;
        }
        self.drop_mapping(self.map_base + mi, now, clean);
        self.mappings[mi as usize].sessions = self.free_mapping;
        self.free_mapping = mi;
    }

    /// An ALG announced a connection to inside endpoint (`in_addr`, `in_port`) from
    /// `remote`, during master session `master` (FTP data over TCP): a mapping for
    /// that endpoint (the existing one, or a new one from the subscriber's ports) is
    /// pinned until the connection comes or its class's timeout passes
    /// (`class::TIMEOUT`: FTP data 120 s). Returns its outside endpoint.
    pub fn alg_expect(
        &mut self,
        master: u32,
        in_addr: u32,
        in_port: u16,
        remote: u32,
        now: u32,
    ) -> Option<(u32, u16)> {
        let req = ExpectReq {
            proto: ipv4::PROTO_TCP,
            in_addr,
            in_port,
            remote,
            class: class::FTP_DATA,
            tag: 0,
            secs: 0,
            keep: false,
            alg: 0,
        };
        self.alg_expect_with(master, &req, now)
    }

    /// The subscriber of master session `master` if `in_addr` is its address (for a
    /// NAT64 session: the master's own host handle; the expectation dies with the
    /// master, which holds the handle, so the handle outlives the pin).
    fn master_sub(&self, master: u32, in_addr: u32) -> Option<u32> {
        let s = self.sessions.get(master as usize)?;
        let sub = match s.mapping {
            NIL => return None,
            _ if s.folded() => s.mapping & SUB_NONE,
            m => self.mappings.get(m as usize)?.sub(),
        };
        let own = if hosts6::is_host(in_addr) {
            s.in_addr == in_addr
        } else {
            self.subs.get(sub as usize)?.addr == in_addr
        };
        (sub != SUB_NONE && own).then_some(sub)
    }

    /// Installs the expectation `req` announced during master session `master`: the
    /// mapping of its inside endpoint (existing or new) is pinned by it. Past the
    /// class's maximum the oldest expectation of the class goes. Returns the outside
    /// endpoint.
    pub fn alg_expect_with(
        &mut self,
        master: u32,
        req: &ExpectReq,
        now: u32,
    ) -> Option<(u32, u16)> {
        let sub = self.master_sub(master, req.in_addr)?;
        let mkey = Key {
            proto: req.proto,
            a: req.in_addr,
            pa: req.in_port,
            b: 0,
            pb: 0,
        };
        let m = match self
            .mapping_by_in_key(&mkey)
            .map(|r| self.mapping_record(r))
        {
            Some(Ok(m)) => m,
            Some(Err(_)) => {
                self.counters.expectations_refused.inc();
                return None;
            }
            None => match self.new_mapping(sub, mkey, now) {
                Ok(m) => m,
                Err(_) => {
                    self.counters.expectations_refused.inc();
                    return None;
                }
            },
        };
        self.pin_expectation(m, master, req, now)
    }

    /// Pins mapping `m` (which may have no session yet) with an expectation.
    fn pin_expectation(
        &mut self,
        m: u32,
        master: u32,
        req: &ExpectReq,
        now: u32,
    ) -> Option<(u32, u16)> {
        let map = self.mappings[m as usize];
        let okey = Key {
            proto: req.proto,
            a: map.out_addr(&self.pool),
            pa: map.out_port,
            b: 0,
            pb: 0,
        };
        let c = Expectations::class_index(req.class);
        let secs = if req.secs == 0 {
            class::TIMEOUT[c]
        } else {
            req.secs
        };
        let until = now.saturating_add(secs);
        if self.expects.refresh(&okey, req, master, until) {
            self.note_expect(&okey);
            return Some((map.out_addr(&self.pool), map.out_port));
        }
        let sub = map.sub();
        if self.expects.make_room(sub, c) == expect::Room::EvictOwn {
            self.evict_oldest(sub, c as u8, now);
        }
        if self.expects.full(c) {
            if self.mappings[m as usize].sessions == 0 {
                self.mappings[m as usize].sessions = 1;
                self.unpin_mapping(m, now, true);
            }
            self.counters.expectations_refused.inc();
            return None;
        }
        self.mappings[m as usize].sessions += 1;
        self.expects.insert(
            okey,
            Expect {
                mapping: m,
                remote: req.remote,
                master,
                until,
                class: c as u8,
                tag: req.tag,
                keep: req.keep,
                alg: req.alg,
                order: 0,
            },
            sub,
        );
        self.note_expect(&okey);
        self.counters.expectations_created.inc();
        Some((map.out_addr(&self.pool), map.out_port))
    }

    /// Evicts subscriber slot `sub`'s oldest expectation of class `c`.
    fn evict_oldest(&mut self, sub: u32, c: u8, now: u32) {
        let mappings = &self.mappings;
        if let Some(k) = self.expects.oldest(sub, c, |m| mappings[m as usize].sub()) {
            self.remove_expectation(&k, now);
            self.counters.expectations_evicted.inc();
        }
    }

    /// Ends the expectation on outside key `k` and unpins its mapping.
    fn remove_expectation(&mut self, k: &Key, now: u32) -> Option<Expect> {
        let mappings = &self.mappings;
        let e = self.expects.remove(k, |m| mappings[m as usize].sub())?;
        self.note_expect_end(k, &e);
        self.unpin_mapping(e.mapping, now, true);
        Some(e)
    }

    /// RTP and RTCP expectations for inside ports `rtp` and `rtcp` (SIP media, RTSP
    /// streams): when both are new, the outside RTP port is even and RTCP's the next
    /// (RFC 3550 section 11, RFC 4787 REQ-6), tried a few times before any pair is
    /// taken. Returns the two outside endpoints.
    pub fn alg_expect_pair(
        &mut self,
        master: u32,
        rtp: &ExpectReq,
        rtcp_port: u16,
        now: u32,
    ) -> Option<((u32, u16), (u32, u16))> {
        let sub = self.master_sub(master, rtp.in_addr)?;
        let key = |port: u16| Key {
            proto: rtp.proto,
            a: rtp.in_addr,
            pa: port,
            b: 0,
            pb: 0,
        };
        let rtcp = ExpectReq {
            in_port: rtcp_port,
            alg: ALG_RTCP,
            ..*rtp
        };
        let have_rtp = self.mapping_by_in_key(&key(rtp.in_port));
        let have_rtcp = self.mapping_by_in_key(&key(rtcp_port));
        if have_rtp.is_some() || have_rtcp.is_some() || rtcp_port != rtp.in_port.wrapping_add(1) {
            // Already mapped (a re-INVITE, media flowing): keep what exists.
            let a = self.alg_expect_with(master, rtp, now)?;
            let b = self.alg_expect_with(master, &rtcp, now)?;
            return Some((a, b));
        }
        for _ in 0..16 {
            let m = match self.new_mapping_parity(sub, key(rtp.in_port), now) {
                Ok(m) => m,
                Err(_) => break,
            };
            let map = self.mappings[m as usize];
            if let Some(m2) =
                self.new_mapping_at(sub, key(rtcp_port), map.pool, map.out_port.wrapping_add(1))
            {
                let a = self.pin_expectation(m, master, rtp, now)?;
                let b = self.pin_expectation(m2, master, &rtcp, now)?;
                return Some((a, b));
            }
            // Give the even port back at once and try another.
            self.mappings[m as usize].sessions = 1;
            self.unpin_mapping(m, now, true);
        }
        self.counters.alg_pair_split.inc();
        let a = self.alg_expect_with(master, rtp, now)?;
        let b = self.alg_expect_with(master, &rtcp, now)?;
        Some((a, b))
    }

    /// A new mapping whose outside port is even.
    fn new_mapping_parity(&mut self, sub: u32, mkey: Key, now: u32) -> Result<u32, DropReason> {
        let m = self.new_mapping_with(sub, mkey, Some(0), false)?;
        if self.mappings[m as usize].out_port & 1 == 1 {
            self.mappings[m as usize].sessions = 1;
            self.unpin_mapping(m, now, true);
            return Err(DropReason::PoolExhausted);
        }
        Ok(m)
    }

    /// A new mapping of `mkey` on pool address `a`, port `port`, if the subscriber may
    /// have that port and it is free.
    fn new_mapping_at(&mut self, sub: u32, mkey: Key, a: u16, port: u16) -> Option<u32> {
        if port == 0 || self.mapping_full() {
            return None;
        }
        let allowed = self.try_port(sub, mkey, port, usize::from(a))? == usize::from(a);
        if !allowed || !self.pool.take(usize::from(a), mkey.proto, port) {
            return None;
        }
        Some(self.install_mapping(sub, mkey, usize::from(a), port))
    }

    /// Ends the expectations of call or session `tag` announced during `master`.
    /// (No allocation: the worker calls it for a BYE or a TEARDOWN; the keys are
    /// gathered a few at a time on the stack.)
    pub fn alg_forget(&mut self, master: u32, tag: u32, now: u32) -> usize {
        let removed = self.remove_expectations::<8>(now, |x, out| x.of_call(master, tag, out));
        self.counters.expectations_removed.add(removed as u64);
        removed
    }

    /// Removes the expectations `pick` names, `N` at a time (it writes up to `N` of
    /// their outside keys and says how many) until it names fewer: the worker gathers
    /// them on the stack, never in an allocation. How many went.
    fn remove_expectations<const N: usize>(
        &mut self,
        now: u32,
        pick: impl Fn(&Expectations, &mut [Key]) -> usize,
    ) -> usize {
        let mut keys = [Key::default(); N];
        let mut removed = 0;
        loop {
            let n = pick(&self.expects, &mut keys);
            for k in &keys[..n] {
                self.remove_expectation(k, now);
            }
            removed += n;
            if n < N {
                return removed;
            }
        }
    }

    /// Ends the registration pinhole of inside endpoint (`proto`, `in_addr`, `in_port`).
    pub fn alg_unregister(&mut self, proto: u8, in_addr: u32, in_port: u16, now: u32) -> bool {
        let Some(r) = self.mapping_by_in_key(&Key {
            proto,
            a: in_addr,
            pa: in_port,
            b: 0,
            pb: 0,
        }) else {
            return false;
        };
        let okey = map_keys!(self).out_key(r);
        if self
            .expects
            .get(&okey)
            .is_some_and(|e| e.class == class::SIP_REGISTER)
        {
            self.remove_expectation(&okey, now);
            self.counters.expectations_removed.inc();
            return true;
        }
        false
    }

    /// The inside endpoint of outside endpoint (`proto`, `out_addr`, `out_port`), if
    /// mapped.
    pub fn inside_of(&self, proto: u8, out_addr: u32, out_port: u16) -> Option<(u32, u16)> {
        let r = self.mapping_by_out_key(&Key {
            proto,
            a: out_addr,
            pa: out_port,
            b: 0,
            pb: 0,
        })?;
        let k = map_keys!(self).in_key(r);
        Some((k.a, k.pa))
    }

    /// The outside endpoint of inside endpoint (`proto`, `in_addr`, `in_port`), if
    /// mapped (none is made).
    pub fn outside_of(&self, proto: u8, in_addr: u32, in_port: u16) -> Option<(u32, u16)> {
        let r = self.mapping_by_in_key(&Key {
            proto,
            a: in_addr,
            pa: in_port,
            b: 0,
            pb: 0,
        })?;
        let k = map_keys!(self).out_key(r);
        Some((k.a, k.pa))
    }

    /// Ends the expectation pinning the mapping of inside endpoint (`proto`,
    /// `in_addr`, `in_port`) (an ALG's message ended what an earlier one announced),
    /// if it has one: its outside endpoint.
    pub fn alg_end(
        &mut self,
        proto: u8,
        in_addr: u32,
        in_port: u16,
        now: u32,
    ) -> Option<(u32, u16)> {
        let out = self.outside_of(proto, in_addr, in_port)?;
        let okey = Key {
            proto,
            a: out.0,
            pa: out.1,
            b: 0,
            pb: 0,
        };
        self.expects.get(&okey)?;
        self.remove_expectation(&okey, now);
        self.counters.expectations_removed.inc();
        Some(out)
    }

    /// The remote party's media address is known (its SDP): the call's media pinholes
    /// that allowed any source now allow only it.
    pub fn alg_narrow(&mut self, master: u32, tag: u32, remote: u32) {
        self.expects.narrow(master, tag, remote);
        self.note_expects_of(master, tag);
    }

    /// The RTSP media of `master`'s session `tag` comes from `remote` (a reply's
    /// `source`).
    pub fn alg_retarget(&mut self, master: u32, tag: u32, remote: u32) {
        self.expects.retarget(master, tag, remote);
        self.note_expects_of(master, tag);
    }

    /// Gives the expectations of `master` tagged `from` the tag `to` (an RTSP reply
    /// naming the session its SETUP created).
    pub fn alg_retag(&mut self, master: u32, from: u32, to: u32) {
        self.expects.retag(master, from, to);
        self.note_expects_of(master, to);
    }

    /// A mapping record by index ([`Expect::mapping`], a shared session's
    /// [`Session::mapping`]; a folded session's mapping is the session itself).
    pub fn mapping(&self, i: u32) -> &Mapping {
        &self.mappings[i as usize]
    }

    /// Expectations alive.
    pub fn expectations(&self) -> impl Iterator<Item = (&Key, &Expect)> + '_ {
        self.expects.iter()
    }

    fn expire_expectations(&mut self, now: u32) {
        if self.expects.is_empty() {
            return;
        }
        let expired = self.remove_expectations::<32>(now, |x, out| x.due(now, out));
        self.counters.expectations_expired.add(expired as u64);
    }

    fn free_session_at(&mut self, i: u32, now: u32) {
        self.release_session(i, now);
        self.sessions[i as usize].next = self.free_session;
        self.free_session = i;
    }

    /// Ends session `i` (indexes, counts, mapping, expectations, log); its record
    /// keeps its timer wheel link for the caller.
    fn release_session(&mut self, i: u32, now: u32) {
        let s = self.sessions[i as usize];
        self.note(true, &s);
        if self.logs_session(&s) {
            self.emit(self.session_event(event::SESSION_DELETE, &s));
        }
        self.unindex_session(&s);
        let r = self.mapping_ref(i, &s);
        if self.params.filtering == Behavior::AddressDependent {
            if let Some(c) = self.adf.get_mut(&(r, s.rem_addr)) {
                *c -= 1;
                if *c == 0 {
                    self.adf.remove(&(r, s.rem_addr));
                }
            }
        }
        let sub = self.session_sub(&s);
        if s.inbound() {
            self.unlink_inbound(sub, i, usize::from(!s.unanswered()));
        } else {
            self.subs[sub as usize].sessions -= 1;
        }
        // A TCP port after a clean close may be reused at once (RFC 6888 REQ-8).
        let clean = s.proto == ipv4::PROTO_TCP && s.state() == TcpState::Closing;
        if portless(s.proto) {
            // No mapping, no port: the subscriber's count alone (above).
        } else if s.folded() {
            self.drop_mapping(r, now, clean);
        } else {
            self.unpin_mapping(s.mapping, now, clean);
        }
        if s.alg() != 0 && !self.kin.is_empty() {
            self.forget_kin(i);
        }
        if s.alg() == ALG_PPTP {
            self.end_calls_of(i);
        }
        if s.alg() != 0 && !self.expects.is_empty() {
            // Expectations die with their master; a registration lives its own
            // lifetime (the signalling session comes and goes meanwhile).
            self.remove_expectations::<32>(now, |x, out| x.of_master(i, out));
        }
        self.maybe_remove_subscriber(sub);
        if hosts6::is_host(s.in_addr) {
            // After the subscriber: its key outlives the host's last session while
            // the subscriber holds it (port blocks).
            self.hosts6.release(s.in_addr);
            self.count_hosts6();
            let v = self.counters.nat64_sessions_active.get();
            self.counters.nat64_sessions_active.set(v.saturating_sub(1));
        }
        self.sessions[i as usize].mapping = NIL;
        self.live_sessions -= 1;
        let p = proto_index(s.proto);
        self.counters.sessions_expired[p].inc();
        let v = self.counters.sessions_active[p].get();
        self.counters.sessions_active[p].set(v.saturating_sub(1));
    }
}

#[cfg(test)]
mod subscriber_tests {
    use super::Subscriber;

    #[test]
    fn subscriber_slots_are_compact() {
        // Blocks live in the flat table; a slot is five 32-bit words' worth.
        assert_eq!(std::mem::size_of::<Subscriber>(), 20);
    }
}

#[cfg(test)]
mod steering_tests {
    use super::*;
    use rss::{Steering, STEERING_KEY};

    const CONFIG: &str = "[dataplane]\ncontrol_lcore = 0\nworker_lcores = [1]\n\
        [[ports]]\nname = \"inside\"\nrole = \"inside\"\ndevice = \"net_null0\"\nipv4 = \"100.64.0.1/10\"\n\
        [[ports]]\nname = \"outside\"\nrole = \"outside\"\ndevice = \"net_null1\"\nipv4 = \"203.0.113.1/24\"\n\
        [nat]\npool = [\"198.51.100.0/30\"]\nallocation = \"dynamic\"\n";

    /// Worker `w` of `workers` on a pool steered by `reta`; (pair splits, pairs made).
    fn pairs(workers: u16, w: u16, reta: &[u16]) -> (u64, usize) {
        let cfg = cgnat_config::Config::parse(CONFIG, "t.toml").unwrap();
        let mut params = NatParams::from_config(&cfg.nat, workers).unwrap();
        let steering = Arc::new(Steering::new(&STEERING_KEY, reta).unwrap());
        params.steering = Some(steering.clone());
        let counters = Arc::new(WorkerCounters::default());
        let mut nat = Nat::new(params, w, workers, 1000, 9, counters.clone());
        let sub = 0x6440_0102;
        let call = Tuple {
            proto: ipv4::PROTO_UDP,
            src: sub,
            dst: 0xc000_0214,
            sport: 5060,
            dport: 5060,
        };
        let master = nat.in2out(&call, 0, true, 1000).unwrap();
        let mut made = 0;
        for k in 0..100u16 {
            let req = ExpectReq {
                proto: ipv4::PROTO_UDP,
                in_addr: sub,
                in_port: 10_000 + 2 * k,
                remote: 0,
                class: class::SIP_MEDIA,
                tag: u32::from(k),
                secs: 0,
                keep: false,
                alg: 0,
            };
            let ((a, rtp), (b, rtcp)) = nat
                .alg_expect_pair(master, &req, req.in_port + 1, 1000)
                .unwrap();
            // Whatever ports, their replies reach this worker.
            assert_eq!(steering.queue_of(a, rtp), w);
            assert_eq!(steering.queue_of(b, rtcp), w);
            if (a, rtp & 1, rtp + 1) == (b, 0, rtcp) {
                made += 1;
            }
        }
        (counters.alg_pair_split.get(), made)
    }

    #[test]
    fn rtp_and_rtcp_stay_a_pair_on_a_steered_pool_with_a_paired_table() {
        for workers in [2u16, 4, 8] {
            let paired = Steering::paired_spread(&STEERING_KEY, workers, 512);
            assert_eq!(
                pairs(workers, workers - 1, &paired),
                (0, 100),
                "{workers} workers"
            );
        }
        // Why the table is paired: with a plain one, the port after an even port of
        // one worker is another worker's 7 times in 8, and 16 tries do not always find
        // a pair.
        let (split, made) = pairs(8, 3, &Steering::spread(8, 512));
        assert!(split > 0 && made + split as usize == 100, "{split} {made}");
    }
}

#[cfg(test)]
mod registry_tests {
    use super::fold_tests::{CONFIG, T0};
    use super::*;

    #[test]
    fn every_alg_of_the_registry_has_its_config_section_with_the_registry_defaults() {
        let cfg = cgnat_config::Config::parse(CONFIG, "t.toml").unwrap();
        for p in &cgnat_alg::PLUGINS {
            let a = cfg
                .alg
                .get(p.name)
                .unwrap_or_else(|| panic!("no [alg.{}] section", p.name));
            assert_eq!(
                (a.enabled, a.ports.as_slice()),
                (p.on_by_default, p.default_ports),
                "alg.{}",
                p.name
            );
        }
    }

    #[test]
    fn a_new_flow_gets_the_alg_the_registry_names_for_its_port() {
        let on: String = cgnat_alg::PLUGINS
            .iter()
            .map(|p| format!("[alg.{}]\nenabled = true\n", p.name))
            .collect();
        let cfg = cgnat_config::Config::parse(&format!("{CONFIG}{on}"), "t.toml").unwrap();
        let mut params = NatParams::from_config(&cfg.nat, 1).unwrap();
        params.set_algs(&cfg.alg);
        let nat = Nat::new(params, 0, 1, T0, 7, Arc::new(WorkerCounters::default()));
        for p in &cgnat_alg::PLUGINS {
            assert_eq!(nat.params().alg_ports(p.id), p.default_ports, "{}", p.name);
            for &port in p.default_ports {
                for proto in [ipv4::PROTO_TCP, ipv4::PROTO_UDP] {
                    let want = if p.protocols.contains(&proto) {
                        p.id
                    } else {
                        0
                    };
                    assert_eq!(nat.alg_for(proto, port), want, "{} {proto} {port}", p.name);
                }
            }
        }
        assert_eq!(nat.alg_for(ipv4::PROTO_TCP, 80), 0);
    }
}
