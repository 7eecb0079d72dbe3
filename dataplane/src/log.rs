//! NAT event logging: the events workers record (RFC 8158 natEvent values) and their
//! IPFIX (RFC 7011) encoding. Workers only append fixed-size events to a bounded
//! buffer; the exporter, off the workers, encodes and sends them.

use crate::wire::rfc6052::Prefix;
use std::net::{Ipv4Addr, Ipv6Addr};

/// natEvent values (IANA "natEvent Values", RFC 8158).
pub mod event {
    /// NAT44 session create.
    pub const SESSION_CREATE: u8 = 1;
    /// NAT44 session delete.
    pub const SESSION_DELETE: u8 = 2;
    /// NAT addresses exhausted.
    pub const ADDRESSES_EXHAUSTED: u8 = 3;
    /// NAT64 session create.
    pub const NAT64_SESSION_CREATE: u8 = 4;
    /// NAT64 session delete.
    pub const NAT64_SESSION_DELETE: u8 = 5;
    /// NAT44 BIB (mapping) create.
    pub const BIB_CREATE: u8 = 6;
    /// NAT44 BIB (mapping) delete.
    pub const BIB_DELETE: u8 = 7;
    /// NAT64 BIB (mapping) create.
    pub const NAT64_BIB_CREATE: u8 = 8;
    /// NAT64 BIB (mapping) delete.
    pub const NAT64_BIB_DELETE: u8 = 9;
    /// Quota exceeded.
    pub const QUOTA_EXCEEDED: u8 = 11;
    /// Port block allocation.
    pub const PORT_BLOCK_ALLOC: u8 = 14;
    /// Port block de-allocation.
    pub const PORT_BLOCK_FREE: u8 = 15;
    /// Threshold reached.
    pub const THRESHOLD_REACHED: u8 = 16;
    /// Not an RFC 8158 natEvent: a command or request an ALG's policy refused (the
    /// control lcore's). Sent to syslog only: no IPFIX information element names it,
    /// so the encoder has no template for it.
    pub const ALG_POLICY: u8 = 128;
}

/// natQuotaExceededEvent values (RFC 8158).
pub mod quota {
    /// Maximum session entries.
    pub const MAX_SESSION_ENTRIES: u32 = 1;
    /// Maximum entries per user.
    pub const MAX_ENTRIES_PER_USER: u32 = 3;
}

/// One event, as a worker records it. 44 bytes, `Copy`, fits a DPDK ring element.
/// A NAT64 subscriber's event carries its IPv6 address or prefix in `inside6`, which
/// the worker resolves from the handle or key when it makes the event (the handle
/// may be gone by the time the exporter reads it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct LogEvent {
    /// natEvent.
    pub kind: u8,
    /// IP protocol (session events).
    pub proto: u8,
    /// 0: the inside address is `inside` (IPv4). Else the inside is IPv6: `inside6`,
    /// a prefix of this many bits (128 for a host).
    pub v6_len: u8,
    /// Padding.
    pub _pad: u8,
    /// Inside address (IPv4; a NAT64 event: the handle or key it was made from).
    pub inside: u32,
    /// Outside (pool) address.
    pub outside: u32,
    /// Remote address (session events, when destinations are logged), or the
    /// natQuotaExceededEvent value for quota events.
    pub dst: u32,
    /// Inside port.
    pub in_port: u16,
    /// Outside port, or first port of a block.
    pub out_port: u16,
    /// Remote port, or last port of a block.
    pub dst_port: u16,
    /// Step of a block (1).
    pub step: u16,
    /// The limit that was hit (quota events).
    pub limit: u32,
    /// The IPv6 inside host or subscriber prefix (`v6_len` != 0). For an
    /// [`event::ALG_POLICY`] event: the refused command or method (ASCII, zero-padded).
    pub inside6: [u8; 16],
}

impl LogEvent {
    /// An ALG policy decision: ALG `alg` (its id) refused command or method `what`
    /// of the client `inside`:`in_port` (outside `outside`:`out_port`) to server
    /// `remote`, answering it (`drop` false) or dropping it.
    pub fn alg_policy(
        alg: u8,
        drop: bool,
        inside: (u32, u16),
        outside: (u32, u16),
        remote: (u32, u16),
        what: &[u8],
    ) -> LogEvent {
        let mut w = [0u8; 16];
        let n = what.len().min(16);
        w[..n].copy_from_slice(&what[..n]);
        LogEvent {
            kind: event::ALG_POLICY,
            proto: alg,
            _pad: u8::from(drop),
            inside: inside.0,
            in_port: inside.1,
            outside: outside.0,
            out_port: outside.1,
            dst: remote.0,
            dst_port: remote.1,
            inside6: w,
            ..LogEvent::default()
        }
    }

    /// An ALG policy decision: ALG `alg` (its id) left off for a new session of its
    /// subscriber (`alg.<name>.only`, `except`), `inside` (outside `outside`) with
    /// `remote`.
    pub fn alg_subscriber_off(
        alg: u8,
        inside: (u32, u16),
        outside: (u32, u16),
        remote: (u32, u16),
    ) -> LogEvent {
        LogEvent {
            _pad: SUBSCRIBER_OFF,
            ..LogEvent::alg_policy(alg, false, inside, outside, remote, b"")
        }
    }

    /// True for a NAT64 subscriber's event (its inside is IPv6).
    pub fn is_v6(&self) -> bool {
        self.v6_len != 0
    }

    /// The inside as text: an IPv4 address, an IPv6 host, or an IPv6 prefix.
    pub fn inside_text(&self) -> String {
        match self.v6_len {
            0 => Ipv4Addr::from(self.inside).to_string(),
            128 => Ipv6Addr::from(self.inside6).to_string(),
            n => format!("{}/{n}", Ipv6Addr::from(self.inside6)),
        }
    }
}

/// An [`event::ALG_POLICY`] event's decision (in `_pad`): the request answered (0),
/// dropped (1), or the ALG left off for the subscriber.
const SUBSCRIBER_OFF: u8 = 2;

/// What gets logged (RFC 6888 REQ-12: no destinations by default; REQ-14: one
/// record per port block, not per session, when blocks are allocated).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Per-session create and delete events.
    pub sessions: bool,
    /// Remote address and port in session events.
    pub destinations: bool,
    /// BIB (mapping) create and delete events.
    pub mappings: bool,
    /// Port block events.
    pub blocks: bool,
    /// Exhaustion and quota events.
    pub limits: bool,
    /// Pool utilisation (percent) that raises a threshold event; 0: none.
    pub threshold_percent: u32,
    /// Session create and delete events of the address-only protocols (GRE, ESP,
    /// ...: `crate::nat::portless`) even when `sessions` is off: they hold no port
    /// block and no port, so nothing else records who had the address. On with any
    /// collector, unless `logging.ipfix.sessions = "off"`.
    pub other_sessions: bool,
    /// ALG policy decisions the NAT makes (an ALG left off for a subscriber): with
    /// syslog, which takes them (IPFIX has no record for them).
    pub alg_policy: bool,
}

impl Policy {
    /// What the exporters of `cfg.logging` want logged under `cfg.nat.allocation`:
    /// nothing without a collector; syslog takes block events only.
    pub fn from_config(cfg: &cgnat_config::Config) -> Policy {
        use cgnat_config::{Allocation, SessionLogging};
        let blocks = cfg.nat.allocation == Allocation::PortBlock;
        let alg_policy = cfg.logging.syslog.is_some();
        match (&cfg.logging.ipfix, &cfg.logging.syslog) {
            (Some(i), _) => Policy {
                sessions: match i.sessions {
                    SessionLogging::On => true,
                    SessionLogging::Off => false,
                    SessionLogging::Auto => cfg.nat.allocation == Allocation::Dynamic,
                },
                destinations: i.destinations,
                mappings: i.mappings,
                blocks,
                limits: true,
                threshold_percent: i.threshold_percent,
                other_sessions: i.sessions != SessionLogging::Off,
                alg_policy,
            },
            (None, Some(_)) => Policy {
                blocks,
                other_sessions: true,
                alg_policy,
                ..Policy::default()
            },
            (None, None) => Policy::default(),
        }
    }
}

/// Template IDs.
pub const T_SESSION: u16 = 256;
/// Sessions with destination.
pub const T_SESSION_DST: u16 = 257;
/// Port blocks.
pub const T_BLOCK: u16 = 258;
/// Addresses exhausted.
pub const T_EXHAUSTED: u16 = 259;
/// Quota exceeded.
pub const T_QUOTA: u16 = 260;
/// Threshold reached.
pub const T_THRESHOLD: u16 = 261;
/// NAT64 sessions (RFC 8158 NAT64 session create/delete: sourceIPv6Address).
pub const T_SESSION6: u16 = 262;
/// NAT64 sessions with destination (destinationIPv6Address and its IPv4 address).
pub const T_SESSION6_DST: u16 = 263;
/// Port blocks of NAT64 subscribers (their IPv6 prefix).
pub const T_BLOCK6: u16 = 264;
/// Quota exceeded by a NAT64 subscriber.
pub const T_QUOTA6: u16 = 265;
/// NAT44 BIB (mapping) create/delete.
pub const T_BIB: u16 = 266;
/// NAT64 BIB (mapping) create/delete.
pub const T_BIB6: u16 = 267;

// Information elements (IANA IPFIX registry; RFC 8158 for the NAT ones).
const IE_PROTOCOL: u16 = 4;
const IE_SRC_PORT: u16 = 7;
const IE_SRC_ADDR: u16 = 8;
const IE_DST_PORT: u16 = 11;
const IE_DST_ADDR: u16 = 12;
const IE_SRC_ADDR6: u16 = 27;
const IE_DST_ADDR6: u16 = 28;
const IE_SRC_PREFIX_LEN6: u16 = 29;
const IE_POST_NAT_SRC_ADDR: u16 = 225;
const IE_POST_NAT_DST_ADDR: u16 = 226;
const IE_POST_NAPT_SRC_PORT: u16 = 227;
const IE_POST_NAPT_DST_PORT: u16 = 228;
const IE_NAT_EVENT: u16 = 230;
const IE_NAT_POOL_ID: u16 = 283;
const IE_OBS_TIME_MS: u16 = 323;
const IE_PORT_RANGE_START: u16 = 361;
const IE_PORT_RANGE_END: u16 = 362;
const IE_PORT_RANGE_STEP: u16 = 363;
const IE_PORT_RANGE_NUM: u16 = 364;
const IE_QUOTA_EVENT: u16 = 466;
const IE_THRESHOLD_EVENT: u16 = 467;
const IE_MAX_SESSION_ENTRIES: u16 = 471;
const IE_MAX_ENTRIES_PER_USER: u16 = 473;

fn templates() -> Vec<(u16, Vec<(u16, u16)>)> {
    let head = vec![(IE_OBS_TIME_MS, 8), (IE_NAT_EVENT, 1)];
    let with = |parts: &[&[(u16, u16)]]| {
        let mut v = head.clone();
        for p in parts {
            v.extend_from_slice(p);
        }
        v
    };
    let ports: &[(u16, u16)] = &[
        (IE_PROTOCOL, 1),
        (IE_SRC_PORT, 2),
        (IE_POST_NAPT_SRC_PORT, 2),
    ];
    let post: &[(u16, u16)] = &[(IE_POST_NAT_SRC_ADDR, 4)];
    let src4: &[(u16, u16)] = &[(IE_SRC_ADDR, 4)];
    // A NAT64 host (RFC 8158's NAT64 session template), or a NAT64 subscriber: its
    // prefix and length (port blocks and quotas are a subscriber's).
    let src6: &[(u16, u16)] = &[(IE_SRC_ADDR6, 16)];
    let prefix6: &[(u16, u16)] = &[(IE_SRC_ADDR6, 16), (IE_SRC_PREFIX_LEN6, 1)];
    let dst4: &[(u16, u16)] = &[(IE_DST_ADDR, 4), (IE_DST_PORT, 2)];
    // The destination as the host named it (under the NAT64 prefix) and as it left.
    let dst6: &[(u16, u16)] = &[
        (IE_DST_ADDR6, 16),
        (IE_POST_NAT_DST_ADDR, 4),
        (IE_DST_PORT, 2),
        (IE_POST_NAPT_DST_PORT, 2),
    ];
    let range: &[(u16, u16)] = &[
        (IE_PORT_RANGE_START, 2),
        (IE_PORT_RANGE_END, 2),
        (IE_PORT_RANGE_STEP, 2),
        (IE_PORT_RANGE_NUM, 2),
    ];
    let quota: &[(u16, u16)] = &[(IE_QUOTA_EVENT, 4)];
    let limits: &[(u16, u16)] = &[(IE_MAX_SESSION_ENTRIES, 4), (IE_MAX_ENTRIES_PER_USER, 4)];
    vec![
        (T_SESSION, with(&[src4, post, ports])),
        (T_SESSION_DST, with(&[src4, post, ports, dst4])),
        (T_BLOCK, with(&[src4, post, range])),
        (T_EXHAUSTED, with(&[&[(IE_NAT_POOL_ID, 4)]])),
        (T_QUOTA, with(&[quota, src4, limits])),
        // natThresholdEvent 1: address pool high threshold, and which address.
        (
            T_THRESHOLD,
            with(&[&[
                (IE_THRESHOLD_EVENT, 4),
                (IE_POST_NAT_SRC_ADDR, 4),
                (IE_NAT_POOL_ID, 4),
            ]]),
        ),
        (T_SESSION6, with(&[src6, post, ports])),
        (T_SESSION6_DST, with(&[src6, post, ports, dst6])),
        (T_BLOCK6, with(&[prefix6, post, range])),
        (T_QUOTA6, with(&[quota, prefix6, limits])),
        // RFC 8158's BIB templates: the session ones without the remote.
        (T_BIB, with(&[src4, post, ports])),
        (T_BIB6, with(&[src6, post, ports])),
    ]
}

/// Builds IPFIX messages (RFC 7011) from events.
pub struct Encoder {
    domain: u32,
    sequence: u32,
    destinations: bool,
    nat64: Option<Prefix>,
}

fn put16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_be_bytes());
}
fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_be_bytes());
}

impl Encoder {
    /// An encoder for observation domain `domain`.
    pub fn new(domain: u32, destinations: bool) -> Encoder {
        Encoder {
            domain,
            sequence: 0,
            destinations,
            nat64: None,
        }
    }

    /// The NAT64 prefix, under which NAT64 session records name their destination
    /// (destinationIPv6Address: the IPv4 destination embedded as the host addressed it).
    pub fn with_nat64(mut self, prefix: Option<Prefix>) -> Encoder {
        self.nat64 = prefix;
        self
    }

    fn header(&self, len: usize, export_secs: u32) -> Vec<u8> {
        let mut h = Vec::with_capacity(16);
        put16(&mut h, 10);
        put16(&mut h, len as u16);
        put32(&mut h, export_secs);
        put32(&mut h, self.sequence);
        put32(&mut h, self.domain);
        h
    }

    /// A message with every template (sent at start and periodically over UDP).
    pub fn templates(&self, export_secs: u32) -> Vec<u8> {
        let mut set = Vec::new();
        for (id, fields) in templates() {
            put16(&mut set, id);
            put16(&mut set, fields.len() as u16);
            for (ie, len) in fields {
                put16(&mut set, ie);
                put16(&mut set, len);
            }
        }
        let mut body = Vec::new();
        put16(&mut body, 2);
        put16(&mut body, (set.len() + 4) as u16);
        body.extend_from_slice(&set);
        let mut msg = self.header(16 + body.len(), export_secs);
        msg.extend_from_slice(&body);
        msg
    }

    fn template_of(&self, e: &LogEvent) -> Option<u16> {
        let v6 = e.is_v6();
        match e.kind {
            event::SESSION_CREATE | event::SESSION_DELETE if !v6 => Some(if self.destinations {
                T_SESSION_DST
            } else {
                T_SESSION
            }),
            event::NAT64_SESSION_CREATE | event::NAT64_SESSION_DELETE if v6 => {
                Some(if self.destinations {
                    T_SESSION6_DST
                } else {
                    T_SESSION6
                })
            }
            event::BIB_CREATE | event::BIB_DELETE if !v6 => Some(T_BIB),
            event::NAT64_BIB_CREATE | event::NAT64_BIB_DELETE if v6 => Some(T_BIB6),
            event::PORT_BLOCK_ALLOC | event::PORT_BLOCK_FREE => {
                Some(if v6 { T_BLOCK6 } else { T_BLOCK })
            }
            event::ADDRESSES_EXHAUSTED => Some(T_EXHAUSTED),
            event::QUOTA_EXCEEDED => Some(if v6 { T_QUOTA6 } else { T_QUOTA }),
            event::THRESHOLD_REACHED => Some(T_THRESHOLD),
            _ => None,
        }
    }

    /// The inside as the record's template has it: sourceIPv4Address, or
    /// sourceIPv6Address (with sourceIPv6PrefixLength for a subscriber's record).
    fn inside(e: &LogEvent, out: &mut Vec<u8>, with_len: bool) {
        if e.is_v6() {
            out.extend_from_slice(&e.inside6);
            if with_len {
                out.push(e.v6_len);
            }
        } else {
            put32(out, e.inside);
        }
    }

    fn record(&self, e: &LogEvent, ms: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&ms.to_be_bytes());
        out.push(e.kind);
        match e.kind {
            // Sessions and BIB entries: the same fields, the remote for sessions
            // only (RFC 8158's BIB templates have none).
            event::SESSION_CREATE
            | event::SESSION_DELETE
            | event::NAT64_SESSION_CREATE
            | event::NAT64_SESSION_DELETE
            | event::BIB_CREATE
            | event::BIB_DELETE
            | event::NAT64_BIB_CREATE
            | event::NAT64_BIB_DELETE => {
                Self::inside(e, out, false);
                put32(out, e.outside);
                out.push(e.proto);
                put16(out, e.in_port);
                put16(out, e.out_port);
                let session = e.kind <= event::NAT64_SESSION_DELETE;
                if !session || !self.destinations {
                    return;
                }
                if e.is_v6() {
                    // Without a prefix (no [nat64]: no NAT64 event either) `::`.
                    let d6 = self.nat64.map_or([0; 16], |p| p.embed(e.dst));
                    out.extend_from_slice(&d6);
                    put32(out, e.dst);
                    put16(out, e.dst_port);
                    put16(out, e.dst_port);
                } else {
                    put32(out, e.dst);
                    put16(out, e.dst_port);
                }
            }
            event::PORT_BLOCK_ALLOC | event::PORT_BLOCK_FREE => {
                Self::inside(e, out, true);
                put32(out, e.outside);
                put16(out, e.out_port);
                put16(out, e.dst_port);
                put16(out, e.step.max(1));
                put16(out, e.dst_port.wrapping_sub(e.out_port).wrapping_add(1));
            }
            event::ADDRESSES_EXHAUSTED => put32(out, 0),
            event::THRESHOLD_REACHED => {
                put32(out, 1);
                put32(out, e.outside);
                put32(out, 0);
            }
            _ => {
                put32(out, e.dst);
                Self::inside(e, out, true);
                let (sessions, per_user) = if e.dst == quota::MAX_SESSION_ENTRIES {
                    (e.limit, 0)
                } else {
                    (0, e.limit)
                };
                put32(out, sessions);
                put32(out, per_user);
            }
        }
    }

    /// Messages carrying `events` (each at most ~1400 bytes, one data set per run of
    /// events with the same template), stamped `ms` (milliseconds since the epoch).
    pub fn data(&mut self, events: &[LogEvent], ms: u64) -> Vec<Vec<u8>> {
        let mut msgs = Vec::new();
        let mut sets: Vec<u8> = Vec::new();
        let mut set: Vec<u8> = Vec::new();
        let mut cur: Option<u16> = None;
        let mut in_msg = 0u32;
        let close_set = |sets: &mut Vec<u8>, set: &mut Vec<u8>, cur: Option<u16>| {
            if let Some(id) = cur {
                if !set.is_empty() {
                    put16(sets, id);
                    put16(sets, (set.len() + 4) as u16);
                    sets.append(set);
                }
            }
        };
        for e in events {
            let Some(t) = self.template_of(e) else {
                continue;
            };
            if cur != Some(t) {
                close_set(&mut sets, &mut set, cur);
                cur = Some(t);
            }
            self.record(e, ms, &mut set);
            in_msg += 1;
            if sets.len() + set.len() > 1300 {
                close_set(&mut sets, &mut set, cur);
                let mut m = self.header(16 + sets.len(), (ms / 1000) as u32);
                m.append(&mut sets);
                msgs.push(m);
                self.sequence = self.sequence.wrapping_add(in_msg);
                in_msg = 0;
            }
        }
        close_set(&mut sets, &mut set, cur);
        if !sets.is_empty() {
            let mut m = self.header(16 + sets.len(), (ms / 1000) as u32);
            m.append(&mut sets);
            msgs.push(m);
            self.sequence = self.sequence.wrapping_add(in_msg);
        }
        msgs
    }
}

/// Formats an event as an RFC 5424 syslog line (for block events on syslog). A
/// NAT64 subscriber's inside is its IPv6 prefix (`2001:db8:1::/56`).
pub fn syslog_line(e: &LogEvent, hostname: &str, timestamp: &str) -> String {
    if e.kind == event::ALG_POLICY {
        // <132> = local0, warning: a subscriber's command refused.
        let what: String = e
            .inside6
            .iter()
            .take_while(|&&b| b != 0)
            .map(|&b| {
                if b.is_ascii_graphic() && b != b'"' && b != b'\\' && b != b']' {
                    b as char
                } else {
                    '?'
                }
            })
            .collect();
        // (An ALG left off for a subscriber refused no command.)
        let refused = if e._pad == SUBSCRIBER_OFF {
            String::new()
        } else {
            format!(" refused=\"{what}\"")
        };
        return format!(
            "<132>1 {timestamp} {hostname} cgnat - alg-policy [nat@32473 alg=\"{}\" decision=\"{}\" inside=\"{}:{}\" outside=\"{}:{}\" remote=\"{}:{}\"{refused}]",
            cgnat_alg::plugin(e.proto).map_or("?", |p| p.name),
            match e._pad {
                1 => "drop",
                SUBSCRIBER_OFF => "subscriber_off",
                _ => "reply",
            },
            Ipv4Addr::from(e.inside),
            e.in_port,
            Ipv4Addr::from(e.outside),
            e.out_port,
            Ipv4Addr::from(e.dst),
            e.dst_port,
        );
    }
    let what = match e.kind {
        event::PORT_BLOCK_ALLOC => "port-block-alloc",
        event::PORT_BLOCK_FREE => "port-block-free",
        event::SESSION_CREATE => "session-create",
        event::SESSION_DELETE => "session-delete",
        event::NAT64_SESSION_CREATE => "nat64-session-create",
        event::NAT64_SESSION_DELETE => "nat64-session-delete",
        event::BIB_CREATE | event::NAT64_BIB_CREATE => "mapping-create",
        event::BIB_DELETE | event::NAT64_BIB_DELETE => "mapping-delete",
        event::ADDRESSES_EXHAUSTED => "addresses-exhausted",
        _ => "quota-exceeded",
    };
    // An address-only session (GRE, ESP, ...) names its protocol and remote; the
    // other lines are as they were.
    let other = crate::nat::portless(e.proto)
        && matches!(e.kind, event::SESSION_CREATE | event::SESSION_DELETE);
    // A PPTP call (`Nat::log_calls`): a GRE session whose ports are call IDs (its
    // translated one never 0; a GRE session by address alone has no ports). Its pool
    // "range" is its translated call ID; the three call IDs are named.
    let call = other && e.proto == crate::nat::PROTO_GRE && e.out_port != 0;
    // <134> = facility local0 (16) * 8 + severity informational (6).
    let mut line = format!(
        "<134>1 {timestamp} {hostname} cgnat - {what} [nat@32473 inside=\"{}\" outside=\"{}\" first=\"{}\" last=\"{}\"",
        e.inside_text(),
        Ipv4Addr::from(e.outside),
        e.out_port,
        if call { e.out_port } else { e.dst_port }
    );
    if other {
        line.push_str(&format!(
            " protocol=\"{}\" remote=\"{}\"",
            cgnat_config::protocol_name(e.proto),
            Ipv4Addr::from(e.dst)
        ));
    }
    if call {
        line.push_str(&format!(
            " call=\"{}\" outside-call=\"{}\" remote-call=\"{}\"",
            e.in_port, e.out_port, e.dst_port
        ));
    }
    line.push(']');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alg_policy_event_goes_to_syslog_and_not_to_ipfix() {
        let e = LogEvent::alg_policy(
            cgnat_alg::PLUGINS[0].id,
            false,
            (u32::from(Ipv4Addr::new(100, 64, 1, 2)), 40000),
            (u32::from(Ipv4Addr::new(198, 51, 100, 1)), 1024),
            (u32::from(Ipv4Addr::new(192, 0, 2, 10)), 21),
            b"SITE",
        );
        assert_eq!(
            syslog_line(&e, "h", "T"),
            "<132>1 T h cgnat - alg-policy [nat@32473 alg=\"ftp\" decision=\"reply\" \
             inside=\"100.64.1.2:40000\" outside=\"198.51.100.1:1024\" \
             remote=\"192.0.2.10:21\" refused=\"SITE\"]"
        );
        assert!(Encoder::new(7, false).data(&[e], 0).is_empty());
    }

    #[test]
    fn a_pptp_call_is_a_gre_session_with_its_call_ids_on_syslog_and_ipfix() {
        // Subscriber 100.64.1.2's call 7, translated to 1025 on 198.51.100.1, to
        // server 192.0.2.10's call 256 (`Nat::log_calls`).
        let call = LogEvent {
            kind: event::SESSION_DELETE,
            proto: 47,
            inside: 0x6440_0102,
            in_port: 7,
            outside: 0xc633_6401,
            out_port: 1025,
            dst: 0xc000_020a,
            dst_port: 256,
            ..Default::default()
        };
        assert_eq!(
            syslog_line(&call, "h", "T"),
            "<134>1 T h cgnat - session-delete [nat@32473 inside=\"100.64.1.2\" \
             outside=\"198.51.100.1\" first=\"1025\" last=\"1025\" protocol=\"gre\" \
             remote=\"192.0.2.10\" call=\"7\" outside-call=\"1025\" remote-call=\"256\"]"
        );
        // A GRE session by address alone (no ports) names no call.
        let plain = LogEvent {
            in_port: 0,
            out_port: 0,
            dst_port: 0,
            ..call
        };
        assert!(syslog_line(&plain, "h", "T").ends_with("remote=\"192.0.2.10\"]"));
        // IPFIX: the session template, the call IDs in the port fields.
        let (t, rec) = one_set(&mut Encoder::new(7, true), &[call]);
        assert_eq!(t, T_SESSION_DST);
        let mut want = vec![
            0, 0, 1, 2, 3, 4, 5, 6, 2, 100, 64, 1, 2, 198, 51, 100, 1, 47,
        ];
        want.extend_from_slice(&[0, 7, 4, 1, 192, 0, 2, 10, 1, 0]);
        assert_eq!(rec, want);
    }

    #[test]
    fn template_and_data_messages_are_well_formed() {
        let mut enc = Encoder::new(7, false);
        let t = enc.templates(100);
        assert_eq!(u16::from_be_bytes([t[0], t[1]]), 10);
        assert_eq!(usize::from(u16::from_be_bytes([t[2], t[3]])), t.len());
        assert_eq!(u16::from_be_bytes([t[16], t[17]]), 2, "template set");
        let ev = LogEvent {
            kind: event::SESSION_CREATE,
            proto: 17,
            inside: 1,
            outside: 2,
            in_port: 3,
            out_port: 4,
            ..Default::default()
        };
        let blk = LogEvent {
            kind: event::PORT_BLOCK_ALLOC,
            inside: 1,
            outside: 2,
            out_port: 1024,
            dst_port: 1535,
            step: 1,
            ..Default::default()
        };
        let msgs = enc.data(&[ev, ev, blk], 1_700_000_000_123);
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        assert_eq!(usize::from(u16::from_be_bytes([m[2], m[3]])), m.len());
        assert_eq!(u16::from_be_bytes([m[16], m[17]]), T_SESSION);
        // Two session records of 8+1+4+4+1+2+2 = 22 bytes.
        assert_eq!(u16::from_be_bytes([m[18], m[19]]), 4 + 44);
        assert_eq!(u16::from_be_bytes([m[16 + 48], m[16 + 49]]), T_BLOCK);
        let more = enc.data(&vec![ev; 200], 0);
        assert!(more.len() > 1 && more.iter().all(|m| m.len() <= 1400));
        assert_eq!(
            u32::from_be_bytes([more[1][8], more[1][9], more[1][10], more[1][11]]),
            3 + 60,
            "sequence counts records (60 per message)"
        );
    }

    /// The data set of the one message `enc` makes of `ev`: (template id, records).
    fn one_set(enc: &mut Encoder, ev: &[LogEvent]) -> (u16, Vec<u8>) {
        let msgs = enc.data(ev, 0x0102_0304_0506);
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        let len = usize::from(u16::from_be_bytes([m[18], m[19]]));
        assert_eq!(16 + len, m.len(), "one set");
        (u16::from_be_bytes([m[16], m[17]]), m[20..].to_vec())
    }

    fn v6(s: &str) -> [u8; 16] {
        s.parse::<Ipv6Addr>().unwrap().octets()
    }

    /// An event of host 2001:db8:1:100::1 (handle 1) mapped to 198.51.100.2, about
    /// remote 192.0.2.10.
    fn host_event(kind: u8, proto: u8, ports: (u16, u16, u16)) -> LogEvent {
        LogEvent {
            kind,
            proto,
            v6_len: 128,
            inside: 1,
            inside6: v6("2001:db8:1:100::1"),
            outside: 0xc633_6402,
            dst: 0xc000_020a,
            in_port: ports.0,
            out_port: ports.1,
            dst_port: ports.2,
            ..Default::default()
        }
    }

    /// Asserts that `ev` alone makes one `template` record: the stamp, its kind, the
    /// host of [`host_event`], then `tail`.
    fn host_record(enc: &mut Encoder, ev: LogEvent, template: u16, tail: &[&[u8]]) {
        let (t, rec) = one_set(enc, &[ev]);
        assert_eq!(t, template);
        let mut want = vec![0, 0, 1, 2, 3, 4, 5, 6, ev.kind];
        want.extend_from_slice(&v6("2001:db8:1:100::1"));
        want.extend_from_slice(&tail.concat());
        assert_eq!(rec, want);
    }

    #[test]
    fn nat64_session_records_carry_the_ipv6_host_and_destination() {
        let ev = host_event(event::NAT64_SESSION_CREATE, 17, (5000, 1024, 53));
        // Pool address, protocol, ports.
        let src: &[u8] = &[198, 51, 100, 2, 17, 0x13, 0x88, 0x04, 0x00];
        host_record(&mut Encoder::new(7, false), ev, T_SESSION6, &[src]);
        // With destinations: under a network-specific /40 (the u octet skipped).
        let prefix = Prefix::new(v6("2001:db8:100::"), 40).unwrap();
        let mut dst = Encoder::new(7, true).with_nat64(Some(prefix));
        let delete = LogEvent {
            kind: event::NAT64_SESSION_DELETE,
            ..ev
        };
        let to: &[u8] = &[192, 0, 2, 10, 0, 53, 0, 53];
        host_record(
            &mut dst,
            delete,
            T_SESSION6_DST,
            &[src, &v6("2001:db8:1c0:2:a::"), to],
        );
        // A NAT44 session's record beside it keeps its own template.
        let (t, _) = one_set(
            &mut dst,
            &[LogEvent {
                kind: event::SESSION_CREATE,
                v6_len: 0,
                ..ev
            }],
        );
        assert_eq!(t, T_SESSION_DST);
    }

    #[test]
    fn bib_records_nat44_and_nat64() {
        let bib = host_event(event::NAT64_BIB_CREATE, 6, (40000, 1025, 80));
        // Destinations on: a BIB record has none all the same.
        let mut enc = Encoder::new(7, true);
        let src: &[u8] = &[198, 51, 100, 2, 6, 0x9c, 0x40, 0x04, 0x01];
        host_record(&mut enc, bib, T_BIB6, &[src]);
        let (t, rec) = one_set(
            &mut enc,
            &[LogEvent {
                kind: event::BIB_DELETE,
                v6_len: 0,
                inside: 0x6440_0102,
                ..bib
            }],
        );
        assert_eq!(t, T_BIB);
        assert_eq!(
            rec,
            vec![
                0, 0, 1, 2, 3, 4, 5, 6, 7, 100, 64, 1, 2, 198, 51, 100, 2, 6, 0x9c, 0x40, 0x04,
                0x01
            ]
        );
    }

    #[test]
    fn nat64_block_and_quota_records_carry_the_subscriber_prefix() {
        let blk = LogEvent {
            kind: event::PORT_BLOCK_ALLOC,
            v6_len: 56,
            inside: 0x0080_0000,
            inside6: v6("2001:db8:1:100::"),
            outside: 0xc633_6402,
            out_port: 1024,
            dst_port: 1087,
            step: 1,
            ..Default::default()
        };
        let mut enc = Encoder::new(7, false);
        let (t, rec) = one_set(&mut enc, &[blk]);
        assert_eq!(t, T_BLOCK6);
        let mut want = vec![0, 0, 1, 2, 3, 4, 5, 6, 14];
        want.extend_from_slice(&v6("2001:db8:1:100::"));
        want.extend_from_slice(&[56, 198, 51, 100, 2, 4, 0, 4, 63, 0, 1, 0, 64]);
        assert_eq!(rec, want);
        let q = LogEvent {
            kind: event::QUOTA_EXCEEDED,
            dst: quota::MAX_ENTRIES_PER_USER,
            limit: 2,
            outside: 0,
            ..blk
        };
        let (t, rec) = one_set(&mut enc, &[q]);
        assert_eq!(t, T_QUOTA6);
        let mut want = vec![0, 0, 1, 2, 3, 4, 5, 6, 11, 0, 0, 0, 3];
        want.extend_from_slice(&v6("2001:db8:1:100::"));
        want.extend_from_slice(&[56, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(rec, want);
        let line = syslog_line(&blk, "h", "t");
        assert!(
            line.contains("port-block-alloc [nat@32473 inside=\"2001:db8:1:100::/56\" outside=\"198.51.100.2\" first=\"1024\" last=\"1087\"]"),
            "{line}"
        );
    }

    #[test]
    fn the_nat64_templates_are_sent_beside_the_ipv4_ones() {
        let t = Encoder::new(7, false).templates(100);
        // Template records after the set header: id, count, (ie, len)*.
        let mut at = 20;
        let mut found = Vec::new();
        while at < t.len() {
            let id = u16::from_be_bytes([t[at], t[at + 1]]);
            let n = usize::from(u16::from_be_bytes([t[at + 2], t[at + 3]]));
            let fields: Vec<(u16, u16)> = (0..n)
                .map(|k| {
                    let f = at + 4 + 4 * k;
                    (
                        u16::from_be_bytes([t[f], t[f + 1]]),
                        u16::from_be_bytes([t[f + 2], t[f + 3]]),
                    )
                })
                .collect();
            found.push((id, fields));
            at += 4 + 4 * n;
        }
        let ids: Vec<u16> = found.iter().map(|f| f.0).collect();
        assert_eq!(
            ids,
            vec![256, 257, 258, 259, 260, 261, 262, 263, 264, 265, 266, 267]
        );
        // RFC 8158's NAT64 BIB template; its session template adds the remote.
        let bib6 = [
            (323, 8),
            (230, 1),
            (27, 16),
            (225, 4),
            (4, 1),
            (7, 2),
            (227, 2),
        ];
        assert_eq!(found[11].1, bib6);
        let remote6 = [(28, 16), (226, 4), (11, 2), (228, 2)];
        assert_eq!(found[7].1, [&bib6[..], &remote6[..]].concat());
        assert_eq!(
            found[8].1,
            vec![
                (323, 8),
                (230, 1),
                (27, 16),
                (29, 1),
                (225, 4),
                (361, 2),
                (362, 2),
                (363, 2),
                (364, 2)
            ]
        );
    }
}
