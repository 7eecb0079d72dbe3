//! NAT event logging: the events workers record (RFC 8158 natEvent values) and their
//! IPFIX (RFC 7011) encoding. Workers only append fixed-size events to a bounded
//! buffer; the exporter, off the workers, encodes and sends them.

use std::net::Ipv4Addr;

/// natEvent values (IANA "natEvent Values", RFC 8158).
pub mod event {
    /// NAT44 session create.
    pub const SESSION_CREATE: u8 = 1;
    /// NAT44 session delete.
    pub const SESSION_DELETE: u8 = 2;
    /// NAT addresses exhausted.
    pub const ADDRESSES_EXHAUSTED: u8 = 3;
    /// Quota exceeded.
    pub const QUOTA_EXCEEDED: u8 = 11;
    /// Port block allocation.
    pub const PORT_BLOCK_ALLOC: u8 = 14;
    /// Port block de-allocation.
    pub const PORT_BLOCK_FREE: u8 = 15;
    /// Threshold reached.
    pub const THRESHOLD_REACHED: u8 = 16;
}

/// natQuotaExceededEvent values (RFC 8158).
pub mod quota {
    /// Maximum session entries.
    pub const MAX_SESSION_ENTRIES: u32 = 1;
    /// Maximum entries per user.
    pub const MAX_ENTRIES_PER_USER: u32 = 3;
}

/// One event, as a worker records it. 28 bytes, `Copy`, fits a DPDK ring element.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct LogEvent {
    /// natEvent.
    pub kind: u8,
    /// IP protocol (session events).
    pub proto: u8,
    /// Padding.
    pub _pad: u16,
    /// Inside address.
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
}

/// What gets logged (RFC 6888 REQ-12: no destinations by default; REQ-14: one
/// record per port block, not per session, when blocks are allocated).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Per-session create and delete events.
    pub sessions: bool,
    /// Remote address and port in session events.
    pub destinations: bool,
    /// Port block events.
    pub blocks: bool,
    /// Exhaustion and quota events.
    pub limits: bool,
    /// Pool utilisation (percent) that raises a threshold event; 0: none.
    pub threshold_percent: u32,
}

impl Policy {
    /// What the exporters of `cfg.logging` want logged under `cfg.nat.allocation`:
    /// nothing without a collector; syslog takes block events only.
    pub fn from_config(cfg: &cgnat_config::Config) -> Policy {
        use cgnat_config::{Allocation, SessionLogging};
        let blocks = cfg.nat.allocation == Allocation::PortBlock;
        match (&cfg.logging.ipfix, &cfg.logging.syslog) {
            (Some(i), _) => Policy {
                sessions: match i.sessions {
                    SessionLogging::On => true,
                    SessionLogging::Off => false,
                    SessionLogging::Auto => cfg.nat.allocation == Allocation::Dynamic,
                },
                destinations: i.destinations,
                blocks,
                limits: true,
                threshold_percent: i.threshold_percent,
            },
            (None, Some(_)) => Policy {
                blocks,
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

// Information elements (IANA IPFIX registry; RFC 8158 for the NAT ones).
const IE_PROTOCOL: u16 = 4;
const IE_SRC_PORT: u16 = 7;
const IE_SRC_ADDR: u16 = 8;
const IE_DST_PORT: u16 = 11;
const IE_DST_ADDR: u16 = 12;
const IE_POST_NAT_SRC_ADDR: u16 = 225;
const IE_POST_NAPT_SRC_PORT: u16 = 227;
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
    let session = [
        (IE_SRC_ADDR, 4),
        (IE_POST_NAT_SRC_ADDR, 4),
        (IE_PROTOCOL, 1),
        (IE_SRC_PORT, 2),
        (IE_POST_NAPT_SRC_PORT, 2),
    ];
    let with = |rest: &[(u16, u16)]| {
        let mut v = head.clone();
        v.extend_from_slice(rest);
        v
    };
    let mut session_dst = session.to_vec();
    session_dst.extend_from_slice(&[(IE_DST_ADDR, 4), (IE_DST_PORT, 2)]);
    vec![
        (T_SESSION, with(&session)),
        (T_SESSION_DST, with(&session_dst)),
        (
            T_BLOCK,
            with(&[
                (IE_SRC_ADDR, 4),
                (IE_POST_NAT_SRC_ADDR, 4),
                (IE_PORT_RANGE_START, 2),
                (IE_PORT_RANGE_END, 2),
                (IE_PORT_RANGE_STEP, 2),
                (IE_PORT_RANGE_NUM, 2),
            ]),
        ),
        (T_EXHAUSTED, with(&[(IE_NAT_POOL_ID, 4)])),
        (
            T_QUOTA,
            with(&[
                (IE_QUOTA_EVENT, 4),
                (IE_SRC_ADDR, 4),
                (IE_MAX_SESSION_ENTRIES, 4),
                (IE_MAX_ENTRIES_PER_USER, 4),
            ]),
        ),
        // natThresholdEvent 1: address pool high threshold, and which address.
        (
            T_THRESHOLD,
            with(&[
                (IE_THRESHOLD_EVENT, 4),
                (IE_POST_NAT_SRC_ADDR, 4),
                (IE_NAT_POOL_ID, 4),
            ]),
        ),
    ]
}

/// Builds IPFIX messages (RFC 7011) from events.
pub struct Encoder {
    domain: u32,
    sequence: u32,
    destinations: bool,
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
        }
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
        match e.kind {
            event::SESSION_CREATE | event::SESSION_DELETE => Some(if self.destinations {
                T_SESSION_DST
            } else {
                T_SESSION
            }),
            event::PORT_BLOCK_ALLOC | event::PORT_BLOCK_FREE => Some(T_BLOCK),
            event::ADDRESSES_EXHAUSTED => Some(T_EXHAUSTED),
            event::QUOTA_EXCEEDED => Some(T_QUOTA),
            event::THRESHOLD_REACHED => Some(T_THRESHOLD),
            _ => None,
        }
    }

    fn record(&self, e: &LogEvent, ms: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&ms.to_be_bytes());
        out.push(e.kind);
        match e.kind {
            event::SESSION_CREATE | event::SESSION_DELETE => {
                put32(out, e.inside);
                put32(out, e.outside);
                out.push(e.proto);
                put16(out, e.in_port);
                put16(out, e.out_port);
                if self.destinations {
                    put32(out, e.dst);
                    put16(out, e.dst_port);
                }
            }
            event::PORT_BLOCK_ALLOC | event::PORT_BLOCK_FREE => {
                put32(out, e.inside);
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
                put32(out, e.inside);
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

/// Formats an event as an RFC 5424 syslog line (for block events on syslog).
pub fn syslog_line(e: &LogEvent, hostname: &str, timestamp: &str) -> String {
    let what = match e.kind {
        event::PORT_BLOCK_ALLOC => "port-block-alloc",
        event::PORT_BLOCK_FREE => "port-block-free",
        event::SESSION_CREATE => "session-create",
        event::SESSION_DELETE => "session-delete",
        event::ADDRESSES_EXHAUSTED => "addresses-exhausted",
        _ => "quota-exceeded",
    };
    // <134> = facility local0 (16) * 8 + severity informational (6).
    format!(
        "<134>1 {timestamp} {hostname} cgnat - {what} [nat@32473 inside=\"{}\" outside=\"{}\" first=\"{}\" last=\"{}\"]",
        Ipv4Addr::from(e.inside),
        Ipv4Addr::from(e.outside),
        e.out_port,
        e.dst_port
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
