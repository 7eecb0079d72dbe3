//! Live inspection: queries the control API sends to workers, answered from the
//! worker's own tables between bursts (never on the packet path itself), and the
//! answers' JSON shapes.

use crate::nat::{Nat, TcpState};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};

/// What to look up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// Sessions matching a filter, from session slot `from` on: at most `max` (itself at
    /// most [`ROWS_PER_ANSWER`]), examining at most [`SLOTS_PER_ANSWER`] slots, so that
    /// a worker's answer is a bounded piece of work between two bursts however large
    /// its table; the control API asks again from where the answer stopped.
    Sessions(Filter, u32, usize),
    /// A subscriber's state: a NAT44 inside address, or an IPv6 address under a
    /// NAT64 subscriber's prefix.
    Subscriber(IpAddr),
    /// ALG expectations (pinholes), at most `limit`.
    Expectations(usize),
    /// The subscribers with the most sessions among subscriber slots `from` on: at
    /// most `n` (itself at most [`BUSIEST_MAX`]), examining at most
    /// [`SUBSCRIBER_SLOTS_PER_ANSWER`] slots; the asker merges the pieces.
    Busiest(u32, usize),
}

/// A filter on sessions; empty fields match everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Inside address; an IPv6 address: every session of the NAT64 subscriber whose
    /// prefix holds it.
    pub subscriber: Option<IpAddr>,
    /// Outside address, and port if given.
    pub outside: Option<(Ipv4Addr, Option<u16>)>,
    /// Remote address, and port if given.
    pub remote: Option<(Ipv4Addr, Option<u16>)>,
}

/// Session slots a worker examines for one [`Query::Sessions`].
pub const SLOTS_PER_ANSWER: u32 = 8192;
/// Sessions a worker copies for one [`Query::Sessions`].
pub const ROWS_PER_ANSWER: usize = 256;

/// Subscriber slots a worker examines for one [`Query::Busiest`].
pub const SUBSCRIBER_SLOTS_PER_ANSWER: u32 = 8192;
/// Most subscribers one [`Query::Busiest`] answer holds.
pub const BUSIEST_MAX: usize = 100;

/// A subscriber's load, as a worker copies it for [`Query::Busiest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriberLoad {
    /// Worker that owns it.
    pub worker: u16,
    /// Inside address; a NAT64 subscriber: its IPv6 prefix's first address (the prefix
    /// is `nat64.subscriber_prefix_len` long).
    pub address: IpAddr,
    /// All its sessions: those counted against `nat.max_sessions_per_subscriber`
    /// and those remote hosts opened (`inbound_sessions`).
    pub sessions: u32,
    /// Of those, the ones remote hosts opened under the filtering alone.
    pub inbound_sessions: u32,
    /// Mappings.
    pub mappings: u32,
    /// Port blocks held.
    pub port_blocks: u32,
    /// Paired pool address, if any.
    pub pool_address: Option<Ipv4Addr>,
}

impl SubscriberLoad {
    /// Busiest first: most sessions, then most mappings, then the lower address.
    pub fn rank(&self) -> (std::cmp::Reverse<u32>, std::cmp::Reverse<u32>, IpAddr) {
        (
            std::cmp::Reverse(self.sessions),
            std::cmp::Reverse(self.mappings),
            self.address,
        )
    }
}

/// One session as a worker copies it (plain numbers: the text is made by the asker,
/// off the worker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionRow {
    /// Worker that owns it.
    pub worker: u16,
    /// IP protocol.
    pub proto: u8,
    /// Inside endpoint (a NAT64 session's: the IPv6 host).
    pub inside: (IpAddr, u16),
    /// Outside endpoint.
    pub outside: (Ipv4Addr, u16),
    /// Remote endpoint.
    pub remote: (Ipv4Addr, u16),
    /// TCP state, if TCP.
    pub state: Option<TcpState>,
    /// Seconds since the last outbound packet.
    pub idle_secs: u32,
    /// Seconds until it expires if nothing refreshes it.
    pub expires_in_secs: u32,
}

impl SessionRow {
    /// The session as an operator reads it.
    pub fn info(&self) -> SessionInfo {
        let ep = |(a, p): (Ipv4Addr, u16)| format!("{a}:{p}");
        SessionInfo {
            worker: self.worker,
            protocol: proto_name(self.proto),
            inside: std::net::SocketAddr::from(self.inside).to_string(),
            outside: ep(self.outside),
            remote: ep(self.remote),
            state: self.state.map_or_else(|| "-".into(), |s| format!("{s:?}")),
            idle_secs: self.idle_secs,
            expires_in_secs: self.expires_in_secs,
        }
    }
}

/// One session as an operator reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Worker that owns it.
    pub worker: u16,
    /// tcp, udp, icmp, or an address-only protocol's name or number (gre, esp, 99).
    pub protocol: String,
    /// Inside endpoint.
    pub inside: String,
    /// Outside endpoint.
    pub outside: String,
    /// Remote endpoint.
    pub remote: String,
    /// TCP state, or "-".
    pub state: String,
    /// Seconds since the last outbound packet.
    pub idle_secs: u32,
    /// Seconds until it expires if nothing refreshes it.
    pub expires_in_secs: u32,
}

/// A subscriber as an operator reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriberInfo {
    /// Worker that owns it.
    pub worker: u16,
    /// Inside address; a NAT64 subscriber: its prefix's first address.
    pub address: IpAddr,
    /// A NAT64 subscriber: its prefix's length (`nat64.subscriber_prefix_len`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_len: Option<u8>,
    /// Paired pool address, if any.
    pub pool_address: Option<Ipv4Addr>,
    /// Sessions counted against `nat.max_sessions_per_subscriber`.
    pub sessions: u32,
    /// Sessions remote hosts opened under the filtering alone, counted apart against
    /// `nat.max_inbound_sessions_per_subscriber`.
    pub inbound_sessions: u32,
    /// Of those, the ones the subscriber answered (kept when the budget is full; the
    /// oldest unanswered one is recycled first).
    pub inbound_answered: u32,
    /// Mappings.
    pub mappings: u32,
    /// Port blocks: (pool address, first port, last port).
    pub port_blocks: Vec<(Ipv4Addr, u16, u16)>,
    /// The mappings it asked for with PCP or NAT-PMP.
    #[serde(default)]
    pub port_mappings: Vec<PortMappingInfo>,
}

/// A mapping a subscriber asked for (PCP, NAT-PMP) as an operator reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMappingInfo {
    /// tcp or udp.
    pub protocol: String,
    /// Inside endpoint.
    pub inside: String,
    /// Outside endpoint.
    pub outside: String,
    /// Seconds left of its lifetime.
    pub expires_in_secs: u32,
    /// Made by PEER (else MAP or NAT-PMP).
    pub peer: bool,
    /// Remotes allowed in (`ADDR/PREFIX:PORT`, port 0: any); empty: any remote.
    pub filters: Vec<String>,
}

/// The PPTP calls of a worker as expectation rows (class `pptp_call`).
fn pptp_calls(
    nat: &crate::nat::Nat,
    worker: u16,
    now: u32,
) -> impl Iterator<Item = ExpectationInfo> + '_ {
    let timeout = cgnat_alg::CLASSES[usize::from(cgnat_alg::class::PPTP_CALL)].timeout_secs;
    nat.pptp_calls().map(move |c| ExpectationInfo {
        worker,
        protocol: "gre".to_string(),
        outside: format!("{}:{}", Ipv4Addr::from(c.outside), c.outside_id),
        inside: format!("{}:{}", Ipv4Addr::from(c.inside), c.inside_id),
        remote: Ipv4Addr::from(c.server).to_string(),
        // A closing call goes at the end of its linger, if not idle before.
        expires_in_secs: c
            .closing
            .map_or(c.seen + timeout, |t| {
                (t + crate::nat::CALL_LINGER).min(c.seen + timeout)
            })
            .saturating_sub(now),
        class: "pptp_call".to_string(),
        persistent: false,
    })
}

/// An ALG expectation as an operator reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectationInfo {
    /// Worker that holds it.
    pub worker: u16,
    /// tcp or udp; gre for a PPTP call (its endpoints' ports are call IDs).
    pub protocol: String,
    /// Outside endpoint the connection must arrive at (a PPTP call: the pool address
    /// and the translated call ID).
    pub outside: String,
    /// Inside endpoint it goes to (a PPTP call: the subscriber's own call ID).
    pub inside: String,
    /// Remote address allowed to connect (0.0.0.0: any, until known).
    pub remote: String,
    /// Seconds left.
    pub expires_in_secs: u32,
    /// What announced it (ftp_data, tftp, sip_media, sip_register, sip_dialog,
    /// rtsp_media, irc_dcc; pptp_call: a PPTP call of the GRE call table, which lasts
    /// while its GRE or control messages flow).
    #[serde(default)]
    pub class: String,
    /// Stays after a match (a registration).
    #[serde(default)]
    pub persistent: bool,
}

/// A worker's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Matching sessions, and the slot to ask from next (None: every slot was seen).
    Sessions(Vec<SessionRow>, Option<u32>),
    /// The subscriber, if this worker has it.
    Subscriber(Option<SubscriberInfo>),
    /// Expectations.
    Expectations(Vec<ExpectationInfo>),
    /// The busiest subscribers of the slots examined, busiest first, and the slot to
    /// ask from next (None: every slot was seen).
    Busiest(Vec<SubscriberLoad>, Option<u32>),
}

/// tcp, udp, icmp, an address-only protocol's name (gre, esp, ah, sctp, ...) or
/// its number (`cgnat_config::protocol_name`).
fn proto_name(p: u8) -> String {
    cgnat_config::protocol_name(p)
}

fn endpoint(a: u32, p: u16) -> String {
    format!("{}:{p}", Ipv4Addr::from(a))
}

fn matches(ep: Option<(Ipv4Addr, Option<u16>)>, a: u32, p: u16) -> bool {
    ep.is_none_or(|(ea, ep)| u32::from(ea) == a && ep.is_none_or(|ep| ep == p))
}

/// The load of the subscriber in slot `slot`, if it holds anything.
fn load(nat: &Nat, worker: u16, slot: u32) -> Option<SubscriberLoad> {
    let (s, inbound) = nat.subscriber_at(slot)?;
    Some(SubscriberLoad {
        worker,
        address: nat
            .subscriber_prefix6(s.addr)
            .map_or(IpAddr::V4(s.addr.into()), |p| IpAddr::V6(p.into())),
        sessions: s.sessions + inbound,
        inbound_sessions: inbound,
        mappings: s.mappings,
        port_blocks: s.block_count() as u32,
        pool_address: (s.pool != u16::MAX)
            .then(|| nat.pool.addresses().get(usize::from(s.pool)))
            .flatten()
            .map(|&p| Ipv4Addr::from(p)),
    })
}

/// Answers `q` from worker `worker`'s tables at time `now`.
pub fn answer(nat: &Nat, worker: u16, q: &Query, now: u32) -> Answer {
    match q {
        Query::Sessions(f, from, max) => {
            let max = (*max).min(ROWS_PER_ANSWER);
            let mut out = Vec::with_capacity(max);
            let end = from
                .saturating_add(SLOTS_PER_ANSWER)
                .min(nat.session_slots());
            let mut i = *from;
            // An IPv6 subscriber: the key of the prefix it is under (none: no session).
            let want6 = match f.subscriber {
                Some(IpAddr::V6(a)) => Some(nat.subscriber_key6(a.into())),
                _ => None,
            };
            while i < end && out.len() < max {
                let slot = i;
                i += 1;
                let Some(s) = nat.session_at(slot) else {
                    continue;
                };
                let other = match (f.subscriber, want6) {
                    (Some(IpAddr::V4(a)), _) => u32::from(a) != s.in_addr,
                    (_, Some(k)) => k.is_none() || nat.subscriber_key_of(s.in_addr) != k,
                    _ => false,
                };
                if other
                    || !matches(f.outside, s.out_addr, s.out_port)
                    || !matches(f.remote, s.rem_addr, s.rem_port)
                {
                    continue;
                }
                out.push(SessionRow {
                    worker,
                    proto: s.proto,
                    inside: (
                        nat.host6(s.in_addr)
                            .map_or(IpAddr::V4(s.in_addr.into()), |h| IpAddr::V6(h.into())),
                        s.in_port,
                    ),
                    outside: (Ipv4Addr::from(s.out_addr), s.out_port),
                    remote: (Ipv4Addr::from(s.rem_addr), s.rem_port),
                    state: (s.state() != TcpState::None).then(|| s.state()),
                    idle_secs: now.saturating_sub(s.last_seen),
                    expires_in_secs: nat.deadline(slot).saturating_sub(now),
                });
            }
            Answer::Sessions(out, (i < nat.session_slots()).then_some(i))
        }
        Query::Busiest(from, n) => {
            let n = (*n).min(BUSIEST_MAX);
            let end = from
                .saturating_add(SUBSCRIBER_SLOTS_PER_ANSWER)
                .min(nat.subscriber_slots());
            // The n busiest so far, the least busy on top (a max-heap on rank).
            let mut top = std::collections::BinaryHeap::with_capacity(n + 1);
            for slot in *from..end {
                let Some(l) = load(nat, worker, slot) else {
                    continue;
                };
                let entry = (l.rank(), slot);
                if top.len() < n {
                    top.push(entry);
                } else if top.peek().is_some_and(|least| entry < *least) {
                    // Busier than the least busy kept: takes its place (a slot
                    // no busier costs a comparison, not a push).
                    top.pop();
                    top.push(entry);
                }
            }
            let rows = top
                .into_sorted_vec()
                .into_iter()
                .filter_map(|(_, slot)| load(nat, worker, slot))
                .collect();
            Answer::Busiest(rows, (end < nat.subscriber_slots()).then_some(end))
        }
        Query::Expectations(limit) => Answer::Expectations(
            nat.expectations()
                .take((*limit).min(ROWS_PER_ANSWER * 4))
                .map(|(k, e)| {
                    let m = nat.mapping(e.mapping);
                    ExpectationInfo {
                        worker,
                        protocol: proto_name(k.proto),
                        outside: endpoint(k.a, k.pa),
                        inside: endpoint(m.key().a, m.key().pa),
                        remote: Ipv4Addr::from(e.remote).to_string(),
                        expires_in_secs: e.until.saturating_sub(now),
                        class: crate::nat::class::NAMES
                            .get(usize::from(e.class))
                            .copied()
                            .unwrap_or("?")
                            .to_string(),
                        persistent: e.keep,
                    }
                })
                .chain(pptp_calls(nat, worker, now))
                .take((*limit).min(ROWS_PER_ANSWER * 4))
                .collect(),
        ),
        Query::Subscriber(a) => {
            // NAT44: the inside address; NAT64: the key of the prefix `a` is under.
            let (key, address, prefix_len) = match a {
                IpAddr::V4(v4) => (Some(u32::from(*v4)), *a, None),
                IpAddr::V6(v6) => {
                    let k = nat.subscriber_key6(u128::from(*v6));
                    let p = k.and_then(|k| nat.subscriber_prefix6(k)).unwrap_or(0);
                    let len = nat.subscriber_prefix_len6();
                    (k, IpAddr::V6(p.into()), Some(len))
                }
            };
            Answer::Subscriber(
                key.and_then(|k| subscriber_info(nat, worker, k, address, prefix_len, now)),
            )
        }
    }
}

/// Subscriber `key` (a NAT44 inside address or a NAT64 subscriber key) as an
/// operator reads it, named `address` (and `prefix_len`).
fn subscriber_info(
    nat: &Nat,
    worker: u16,
    key: u32,
    address: IpAddr,
    prefix_len: Option<u8>,
    now: u32,
) -> Option<SubscriberInfo> {
    nat.subscriber(key).map(|s| {
        let layout = nat.pool.layout;
        let (inbound_sessions, inbound_answered) = nat.subscriber_inbound(key);
        SubscriberInfo {
            worker,
            address,
            prefix_len,
            pool_address: (s.pool != u16::MAX)
                .then(|| {
                    nat.pool
                        .addresses()
                        .get(usize::from(s.pool))
                        .map(|&p| Ipv4Addr::from(p))
                })
                .flatten(),
            sessions: s.sessions,
            inbound_sessions,
            inbound_answered,
            mappings: s.mappings,
            port_blocks: nat
                .subscriber_blocks(key)
                .iter()
                .filter_map(|&e| {
                    let p = *nat.pool.addresses().get((e >> 16) as usize)?;
                    let first = layout.block_start(e as u16);
                    Some((Ipv4Addr::from(p), first, first + (layout.block_size - 1)))
                })
                .collect(),
            port_mappings: nat
                .pcp_entries()
                .filter(|e| e.inside.0 == key)
                .map(|e| PortMappingInfo {
                    protocol: proto_name(e.proto),
                    inside: endpoint(e.inside.0, e.inside.1),
                    outside: endpoint(e.outside.0, e.outside.1),
                    expires_in_secs: e.expires.saturating_sub(now),
                    peer: e.peer,
                    filters: e.filters[..usize::from(e.n_filters)]
                        .iter()
                        .map(|f| format!("{}/{}:{}", Ipv4Addr::from(f.addr), f.prefix, f.port))
                        .collect(),
                })
                .collect(),
        }
    })
}
