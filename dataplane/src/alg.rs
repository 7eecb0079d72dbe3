//! ALG glue between the worker and the control lcore. The worker, which owns the
//! subscriber and its ports, reserves the outside port an FTP PORT/EPRT announces (an
//! expectation pinning a mapping) and tags the packet with what it decided; the control
//! lcore, which sees every packet of the control session in order, rewrites the
//! payload (the one mangle helper), keeps the TCP sequence adjustment of the
//! connection for both directions, and stands aside once AUTH TLS is accepted.
//!
//! The tag travels in front of the frame, in the mbuf headroom:
//! `[0xA7, direction, n, alg, in_addr, in_port, rem_addr, rem_port, out_addr, out_port, 0, 0,
//! n x (in_addr, in_port, out_addr, out_port)]`.

use crate::buf::PacketBuf;
use crate::counters::WorkerCounters;
use crate::mangle::{mangle, SeqAdj};
use crate::wire::{be16, be32, ipv4, put16, put32, tcp};
use cgnat_alg::ftp::{
    classify, format_eprt, format_host_port, next_line, parse_eprt, parse_host_port, Eprt, Message,
};
use hashbrown::HashMap;
use std::net::Ipv4Addr;

const MAGIC: u8 = 0xA7;
/// Rewrites one packet may carry.
pub const MAX_REWRITES: usize = 8;
const HEAD: usize = 24;
const EACH: usize = 12;

/// An announced endpoint and its translation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rewrite {
    /// Inside address and port as the client wrote them.
    pub inside: (u32, u16),
    /// Their translation.
    pub outside: (u32, u16),
}

/// What the worker tells the control lcore about a packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tag {
    /// 0: from the inside host, 1: from the outside peer.
    pub dir: u8,
    /// The session's inside endpoint.
    pub inside: (u32, u16),
    /// The session's remote endpoint.
    pub remote: (u32, u16),
    /// The session's outside endpoint (the inside one's translation).
    pub outside: (u32, u16),
    /// The ALG (see [`crate::nat::ALG_FTP`] and the others).
    pub alg: u8,
    /// Rewrites decided by the worker.
    pub rewrites: [Rewrite; MAX_REWRITES],
    /// How many.
    pub n: u8,
}

impl Tag {
    /// Prepends the tag to the frame; false without headroom.
    pub fn push<B: PacketBuf>(&self, buf: &mut B) -> bool {
        let len = HEAD + EACH * usize::from(self.n);
        if !buf.prepend(len) {
            return false;
        }
        let d = buf.data_mut();
        d[0] = MAGIC;
        d[1] = self.dir;
        d[2] = self.n;
        d[3] = self.alg;
        put32(d, 4, self.inside.0);
        put16(d, 8, self.inside.1);
        put32(d, 10, self.remote.0);
        put16(d, 14, self.remote.1);
        put32(d, 16, self.outside.0);
        put16(d, 20, self.outside.1);
        put16(d, 22, 0);
        for (k, r) in self.rewrites[..usize::from(self.n)].iter().enumerate() {
            let at = HEAD + EACH * k;
            put32(d, at, r.inside.0);
            put16(d, at + 4, r.inside.1);
            put32(d, at + 6, r.outside.0);
            put16(d, at + 10, r.outside.1);
        }
        true
    }

    /// Takes the tag off the front of the frame.
    pub fn pop<B: PacketBuf>(buf: &mut B) -> Option<Tag> {
        let d = buf.data();
        if d.len() < HEAD || d[0] != MAGIC || usize::from(d[2]) > MAX_REWRITES {
            return None;
        }
        let n = d[2];
        let len = HEAD + EACH * usize::from(n);
        if d.len() < len {
            return None;
        }
        let mut t = Tag {
            dir: d[1],
            inside: (be32(d, 4), be16(d, 8)),
            remote: (be32(d, 10), be16(d, 14)),
            outside: (be32(d, 16), be16(d, 20)),
            alg: d[3],
            n,
            ..Tag::default()
        };
        for k in 0..usize::from(n) {
            let at = HEAD + EACH * k;
            t.rewrites[k] = Rewrite {
                inside: (be32(d, at), be16(d, at + 4)),
                outside: (be32(d, at + 6), be16(d, at + 10)),
            };
        }
        buf.adj(len).then_some(t)
    }
}

/// The TCP payload range of the IPv4 frame, if any.
pub fn tcp_payload(d: &[u8]) -> Option<(usize, usize)> {
    let ip = ipv4::Packet::new_checked(d.get(14..)?).ok()?;
    if ip.protocol() != ipv4::PROTO_TCP {
        return None;
    }
    let l4 = 14 + ip.header_len();
    let end = 14 + ip.total_len();
    let seg = tcp::Segment::new_checked(&d[l4..end]).ok()?;
    Some((l4 + seg.header_len(), end))
}

/// The FTP commands of a client's payload that announce an endpoint, as (address,
/// port): PORT and EPRT |1|. Only complete lines count.
pub fn announced(payload: &[u8], counters: &WorkerCounters) -> Vec<(Ipv4Addr, u16)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Ok(Some(l)) = next_line(payload, at) {
        let line = &payload[l.start..l.end];
        let parsed = match classify(line) {
            Message::Port(arg) => Some(parse_host_port(arg).map(Some)),
            Message::Eprt(arg) => Some(parse_eprt(arg).map(|e| match e {
                Eprt::V4(a, p) => Some((a, p)),
                Eprt::V6 => None,
            })),
            _ => None,
        };
        match parsed {
            Some(Ok(Some(ep))) => out.push(ep),
            Some(Err(_)) => counters.alg_ftp_parse_errors.inc(),
            _ => {}
        }
        at = l.next;
    }
    out
}

#[derive(Clone, Copy, Debug, Default)]
struct Conn {
    seq: SeqAdj,
    auth_pending: bool,
    stand_aside: bool,
    last_seen: u32,
}

/// The control lcore's FTP state: per control connection, the sequence adjustment and
/// whether the ALG still reads it.
pub struct FtpControl {
    conns: HashMap<(u32, u16, u32, u16), Conn>,
    counters: std::sync::Arc<WorkerCounters>,
}

/// Control connections followed at once.
pub const MAX_CONNS: usize = 65536;

impl FtpControl {
    /// Empty, sized for [`MAX_CONNS`].
    pub fn new(counters: std::sync::Arc<WorkerCounters>) -> FtpControl {
        FtpControl {
            conns: HashMap::with_capacity(MAX_CONNS),
            counters,
        }
    }

    /// True while the ALG still reads the connection (not stood aside).
    pub fn reading(&self, key: &(u32, u16, u32, u16)) -> bool {
        !self.conns.get(key).is_some_and(|c| c.stand_aside)
    }

    /// Processes one tagged packet of an FTP control connection, at `now`.
    pub fn process<B: PacketBuf>(&mut self, buf: &mut B, tag: &Tag, now: u32) {
        let key = (tag.inside.0, tag.inside.1, tag.remote.0, tag.remote.1);
        if !self.conns.contains_key(&key) && self.conns.len() >= MAX_CONNS {
            // Forget connections idle for more than a TCP established timeout.
            self.conns
                .retain(|_, c| now.saturating_sub(c.last_seen) < 7440);
        }
        let mut conn = self.conns.get(&key).copied().unwrap_or_default();
        conn.last_seen = now;
        let Some(ip_len) = ipv4::Packet::new_checked(&buf.data()[14..])
            .ok()
            .map(|p| p.header_len())
        else {
            return;
        };
        let l4 = 14 + ip_len;
        let dir = usize::from(tag.dir & 1);
        if tag.alg == crate::nat::ALG_SIP || tag.alg == crate::nat::ALG_RTSP {
            self.process_text(buf, tag, conn, key, l4, dir);
            return;
        }
        let orig_seq = conn.seq.adjust(buf, l4, dir);
        if let (Some((start, end)), false) = (tcp_payload(buf.data()), conn.stand_aside) {
            let payload = buf.data()[start..end].to_vec();
            let mut edits: Vec<(usize, usize, String)> = Vec::new();
            let mut at = 0;
            while let Ok(Some(l)) = next_line(&payload, at) {
                let line = &payload[l.start..l.end];
                let msg = classify(line);
                if msg != Message::Other {
                    self.counters.alg_ftp_messages.inc();
                }
                match (msg, dir) {
                    (Message::Port(arg), 0) => {
                        if let Ok((a, p)) = parse_host_port(arg) {
                            if let Some(r) = tag.rewrites[..usize::from(tag.n)]
                                .iter()
                                .find(|r| r.inside == (u32::from(a), p))
                            {
                                edits.push((
                                    l.start + 5,
                                    arg.len(),
                                    format_host_port(Ipv4Addr::from(r.outside.0), r.outside.1),
                                ));
                            }
                        }
                    }
                    (Message::Eprt(arg), 0) => {
                        if let Ok(Eprt::V4(a, p)) = parse_eprt(arg) {
                            if let Some(r) = tag.rewrites[..usize::from(tag.n)]
                                .iter()
                                .find(|r| r.inside == (u32::from(a), p))
                            {
                                edits.push((
                                    l.start + 5,
                                    arg.len(),
                                    format_eprt(Ipv4Addr::from(r.outside.0), r.outside.1),
                                ));
                            }
                        }
                    }
                    (Message::Auth, 0) => conn.auth_pending = true,
                    (Message::Reply234, 1) if conn.auth_pending => {
                        // The next bytes are TLS: nothing more to read or rewrite.
                        conn.stand_aside = true;
                        self.counters.alg_ftp_stand_aside.inc();
                    }
                    _ => {}
                }
                at = l.next;
            }
            // Last edit first, so earlier offsets stay right.
            let mut delta = 0isize;
            for (off, len, with) in edits.iter().rev() {
                if let Ok(d) = mangle(buf, 14, *off, *len, with.as_bytes()) {
                    delta += d;
                    self.counters.alg_ftp_rewrites.inc();
                }
            }
            if let Some(seq) = orig_seq {
                conn.seq.record(dir, seq, delta as i32);
            }
        }
        self.conns.insert(key, conn);
    }

    /// A SIP or RTSP frame: the messages rewritten with the tag's translations; over
    /// TCP, the connection's sequence adjustment applied and extended.
    fn process_text<B: PacketBuf>(
        &mut self,
        buf: &mut B,
        tag: &Tag,
        mut conn: Conn,
        key: (u32, u16, u32, u16),
        l4: usize,
        dir: usize,
    ) {
        let Some((_, _, datagram)) = crate::alg_text::payload(buf.data()) else {
            return;
        };
        let orig_seq = if datagram {
            None
        } else {
            conn.seq.adjust(buf, l4, dir)
        };
        let Some((start, end, _)) = crate::alg_text::payload(buf.data()) else {
            return;
        };
        let (edits, _) =
            crate::alg_text::control_edits(buf.data(), start, end, datagram, tag, &self.counters);
        let mut delta = 0isize;
        for e in edits.iter().rev() {
            match mangle(buf, 14, e.at, e.len, e.with.as_bytes()) {
                Ok(d) => delta += d,
                Err(_) => {
                    let c = if tag.alg == crate::nat::ALG_SIP {
                        &self.counters.alg_sip
                    } else {
                        &self.counters.alg_rtsp
                    };
                    c[crate::counters::AlgEvent::NoRoom as usize].inc();
                }
            }
        }
        if !datagram {
            if let Some(seq) = orig_seq {
                conn.seq.record(dir, seq, delta as i32);
            }
            self.conns.insert(key, conn);
        }
    }
}
