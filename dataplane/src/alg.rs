//! ALG glue between the worker and the control lcore. The worker, which owns the
//! subscriber and its ports, reserves the outside port an FTP PORT/EPRT announces (an
//! expectation pinning a mapping) and tags the packet with what it decided; the control
//! lcore, which sees every packet of the control session in order, rewrites the
//! payload (the one mangle helper), keeps the TCP sequence adjustment of the
//! connection for both directions, and stands aside once AUTH TLS is accepted.
//!
//! The tag (what the worker decided, in front of the frame) is `alg_tag.rs`, which
//! both this module and the SIP and RTSP ALGs (`alg_text.rs`) use.

use crate::buf::PacketBuf;
use crate::counters::WorkerCounters;
use crate::mangle::{mangle, SeqAdj};
use cgnat_alg::ftp::{
    classify, format_eprt, format_host_port, next_line, parse_eprt, parse_host_port, Eprt, Message,
};
use hashbrown::HashMap;
use std::net::Ipv4Addr;

pub use crate::alg_tag::{l4_at, tcp_payload, Rewrite, Tag, MAX_REWRITES};

/// Whether `line` (unfinished) is the start of a line that announces an endpoint: a
/// client's PORT or EPRT, or a server's 227 or 229 reply (a server behind the NAT).
pub fn starts_address_command(line: &[u8]) -> bool {
    [&b"PORT "[..], b"EPRT ", b"227 ", b"229 "].iter().any(|c| {
        let n = line.len().min(c.len());
        n > 0 && line[..n].eq_ignore_ascii_case(&c[..n])
    })
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
                Eprt::V6(..) => None,
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

/// The IPv6 endpoints a client's EPRT |2| commands announce (a NAT64 session). Only
/// complete lines count.
pub fn announced6(payload: &[u8], counters: &WorkerCounters) -> Vec<(std::net::Ipv6Addr, u16)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Ok(Some(l)) = next_line(payload, at) {
        if let Message::Eprt(arg) = classify(&payload[l.start..l.end]) {
            match parse_eprt(arg) {
                Ok(Eprt::V6(a, p)) => out.push((a, p)),
                Ok(Eprt::V4(..)) => {}
                Err(_) => counters.alg_ftp_parse_errors.inc(),
            }
        }
        at = l.next;
    }
    out
}

/// The endpoints a server's replies announce (227 with its address, 229 with a port
/// only), for a server behind the NAT. Only complete lines count.
pub fn announced_replies(
    payload: &[u8],
    counters: &WorkerCounters,
) -> Vec<(Option<Ipv4Addr>, u16)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Ok(Some(l)) = next_line(payload, at) {
        let line = &payload[l.start..l.end];
        match classify(line) {
            Message::Reply227 => match cgnat_alg::ftp::parse_227(line) {
                Ok((a, p, _, _)) => out.push((Some(a), p)),
                Err(_) => counters.alg_ftp_parse_errors.inc(),
            },
            Message::Reply229 => match cgnat_alg::ftp::parse_229(line) {
                Ok((p, _, _)) => out.push((None, p)),
                Err(_) => counters.alg_ftp_parse_errors.inc(),
            },
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
    /// NAT64: the client's EPSV went to the server as PASV; its 227 answer goes back
    /// to the client as a 229 (RFC 6384), until the client's next command or another
    /// final reply.
    epsv_as_pasv: bool,
    last_seen: u32,
}

/// The control lcore's ALG state (FTP, SIP, RTSP): per control connection, the sequence
/// adjustment, the last rewritten run, and whether the ALG still reads it.
pub struct AlgControl {
    conns: HashMap<(u32, u16, u32, u16), Conn>,
    /// HA sync: connections whose sequence adjustment changed since the last
    /// [`AlgControl::sync_take`], while `sync_on`.
    changed: Vec<ConnKey>,
    sync_on: bool,
    /// The last run of segments rewritten as one text, per connection and direction:
    /// a retransmission of any of its bytes must carry the rewritten ones.
    runs: HashMap<(ConnKey, u8), Run>,
    counters: std::sync::Arc<WorkerCounters>,
}

/// A control connection: inside address and port, remote address and port.
type ConnKey = (u32, u16, u32, u16);

/// A rewritten run: where it was in the sender's sequence space, where its last
/// segment began (every segment before kept its length), and its rewritten bytes.
struct Run {
    start: u32,
    len: u32,
    last: u32,
    text: Vec<u8>,
}

/// Runs remembered at once.
const MAX_RUNS: usize = 4096;

/// Control connections followed at once.
pub const MAX_CONNS: usize = 65536;

/// Connections whose adjustment changed, noted for the HA sync between two takes.
const SYNC_ROOM: usize = 4096;

impl AlgControl {
    /// HA sync (the active): notes the connections whose sequence adjustment changes.
    pub fn sync_journal(&mut self, on: bool) {
        self.sync_on = on;
        if on && self.changed.capacity() < SYNC_ROOM {
            self.changed.reserve_exact(SYNC_ROOM);
        }
        self.changed.clear();
    }

    /// The adjustments that changed since the last call, handed to `push` until it
    /// returns false (the rest wait).
    pub fn sync_take(&mut self, push: &mut dyn FnMut(crate::ha::wire::SeqAdjRec) -> bool) {
        let mut n = 0;
        while n < self.changed.len() {
            let key = self.changed[n];
            if let Some(rec) = self.sync_rec(&key) {
                if !push(rec) {
                    break;
                }
            }
            n += 1;
        }
        self.changed.drain(..n);
    }

    /// Every connection's adjustment (a bulk sync or refresh), from `*at` on, handed to
    /// `push` until it returns false; true once all were.
    pub fn sync_walk(
        &self,
        at: &mut usize,
        push: &mut dyn FnMut(crate::ha::wire::SeqAdjRec) -> bool,
    ) -> bool {
        for key in self.conns.keys().skip(*at) {
            if let Some(rec) = self.sync_rec(key) {
                if !push(rec) {
                    return false;
                }
            }
            *at += 1;
        }
        true
    }

    fn sync_rec(&self, key: &ConnKey) -> Option<crate::ha::wire::SeqAdjRec> {
        // A NAT64 connection's inside endpoint is this node's handle for its host,
        // which would name another host (or none) on the peer: not synced.
        if crate::nat::hosts6::is_host(key.0) {
            return None;
        }
        let c = self.conns.get(key)?;
        if !c.seq.active() {
            return None;
        }
        let mut rec = crate::ha::wire::SeqAdjRec {
            inside: (key.0, key.1),
            remote: (key.2, key.3),
            ..Default::default()
        };
        for (d, (base, points)) in rec.dirs.iter_mut().zip(c.seq.parts()) {
            d.base = base;
            d.n = points.len() as u8;
            d.points[..points.len()].copy_from_slice(points);
        }
        Some(rec)
    }

    /// Installs (a standby) the adjustment of a control connection the active
    /// rewrote, at `now`; `end`: forgets the connection.
    pub fn sync_install(&mut self, rec: &crate::ha::wire::SeqAdjRec, end: bool, now: u32) {
        let key = (rec.inside.0, rec.inside.1, rec.remote.0, rec.remote.1);
        if end {
            self.conns.remove(&key);
            return;
        }
        if !self.conns.contains_key(&key) && self.conns.len() >= MAX_CONNS {
            return;
        }
        let c = self.conns.entry(key).or_default();
        c.seq = crate::mangle::SeqAdj::from_parts([0, 1].map(|d| {
            let x = &rec.dirs[d];
            (x.base, &x.points[..usize::from(x.n)])
        }));
        c.last_seen = now;
    }

    /// Empty, sized for [`MAX_CONNS`].
    pub fn new(counters: std::sync::Arc<WorkerCounters>) -> AlgControl {
        AlgControl {
            conns: HashMap::with_capacity(MAX_CONNS),
            changed: Vec::new(),
            sync_on: false,
            runs: HashMap::new(),
            counters,
        }
    }

    /// Whether a segment at `seq` repeats bytes of a run already rewritten (it is
    /// rewritten the same way again, never held).
    pub fn in_run(&self, key: &(u32, u16, u32, u16), dir: u8, seq: u32) -> bool {
        self.runs
            .get(&(*key, dir))
            .is_some_and(|r| seq.wrapping_sub(r.start) < r.len)
    }

    /// True while the ALG still reads the connection (not stood aside).
    pub fn reading(&self, key: &(u32, u16, u32, u16)) -> bool {
        !self.conns.get(key).is_some_and(|c| c.stand_aside)
    }

    /// Processes one tagged packet of an ALG control connection, at `now`.
    pub fn process<B: PacketBuf>(&mut self, buf: &mut B, tag: &Tag, now: u32) {
        self.process_run(std::slice::from_mut(buf), None, tag, now);
    }

    /// Processes a run of held segments (and the segment that completed it, if any)
    /// as one text: the edits are computed over all their payloads together, and each
    /// segment gets those that fall in it (an edit across a boundary goes to the
    /// segment it starts in; the old bytes after the boundary leave the next), so
    /// no segment grows by more than its own rewrites.
    pub fn process_run<B: PacketBuf>(
        &mut self,
        run: &mut [B],
        last: Option<&mut B>,
        tag: &Tag,
        now: u32,
    ) {
        let mut segs: Vec<&mut B> = run.iter_mut().collect();
        if let Some(l) = last {
            segs.push(l);
        }
        let Some(first) = segs.first() else {
            return;
        };
        let key = (tag.inside.0, tag.inside.1, tag.remote.0, tag.remote.1);
        let text_alg = tag.alg == crate::nat::ALG_SIP || tag.alg == crate::nat::ALG_RTSP;
        let Some((_, _, datagram)) = crate::alg_text::payload(first.data()) else {
            return;
        };
        if datagram && !text_alg {
            return;
        }
        if !datagram && !self.conns.contains_key(&key) && self.conns.len() >= MAX_CONNS {
            // Forget connections idle for more than a TCP established timeout.
            self.conns
                .retain(|_, c| now.saturating_sub(c.last_seen) < 7440);
        }
        let mut conn = self.conns.get(&key).copied().unwrap_or_default();
        conn.last_seen = now;
        let dir = usize::from(tag.dir & 1);
        // The whole text and where each segment starts in it.
        let mut text = Vec::new();
        let mut starts = Vec::with_capacity(segs.len());
        for b in &segs {
            starts.push(text.len());
            if let Some((s, e, _)) = crate::alg_text::payload(b.data()) {
                text.extend_from_slice(&b.data()[s..e]);
            }
        }
        let seq_of = |b: &B| {
            let d = b.data();
            crate::wire::be32(d, l4_at(d) + 4)
        };
        if !datagram && segs.len() == 1 {
            if let Some(r) = self.runs.get(&(key, tag.dir)) {
                // A retransmission of bytes of a run already rewritten: the same
                // rewritten bytes again, or nothing if they cannot be told apart.
                let (a, b) = (
                    seq_of(&*segs[0]),
                    seq_of(&*segs[0]).wrapping_add(text.len() as u32),
                );
                let (off_a, off_b) = (a.wrapping_sub(r.start), b.wrapping_sub(r.start));
                if off_a < r.len && off_b <= r.len && off_a < off_b {
                    let last = r.last.wrapping_sub(r.start);
                    let piece = if off_b == r.len {
                        r.text.get(off_a as usize..).map(<[u8]>::to_vec)
                    } else if off_b <= last {
                        r.text
                            .get(off_a as usize..off_b as usize)
                            .map(<[u8]>::to_vec)
                    } else {
                        None
                    };
                    let buf: &mut B = segs.pop().expect("one segment");
                    let l4 = l4_at(buf.data());
                    conn.seq.adjust(buf, l4, dir);
                    // Bytes that cannot be matched to the rewritten ones leave out: the
                    // segment goes as a bare ack, never with the untranslated text.
                    let piece = piece.unwrap_or_default();
                    if mangle(buf, 14, 0, text.len(), &piece).is_err() {
                        self.count_no_room(tag.alg);
                    }
                    self.conns.insert(key, conn);
                    return;
                }
            }
        }
        let edits: Vec<(usize, usize, String)> = if conn.stand_aside {
            Vec::new()
        } else if text_alg {
            let (e, _) =
                crate::alg_text::control_edits(&text, 0, text.len(), datagram, tag, &self.counters);
            e.into_iter().map(|x| (x.at, x.len, x.with)).collect()
        } else {
            self.ftp_edits(&text, tag, &mut conn, dir)
        };
        // The rewritten text, cut again where the segments were cut: every segment but
        // the last keeps its length (so none grows past what its sender sent), the last
        // takes the difference. Each segment gets its sequence adjustment; the run's
        // correction is recorded at the last one.
        let new_text = if edits.is_empty() {
            None
        } else {
            let e: Vec<cgnat_alg::text::Edit> = edits
                .into_iter()
                .map(|(at, len, with)| cgnat_alg::text::Edit { at, len, with })
                .collect();
            Some(cgnat_alg::text::apply(&text, &e))
        };
        let n = segs.len();
        if let (Some(nt), false, true) = (&new_text, datagram, n > 1) {
            if self.runs.len() >= MAX_RUNS {
                self.runs.clear();
            }
            let run = Run {
                start: seq_of(&*segs[0]),
                len: text.len() as u32,
                last: seq_of(&*segs[n - 1]),
                text: nt.clone(),
            };
            self.runs.insert((key, tag.dir), run);
        }
        for (k, b) in segs.iter_mut().enumerate() {
            let buf: &mut B = b;
            let Some((l4, _, _)) = crate::mangle::l4_of(buf.data(), 14) else {
                continue;
            };
            let orig_seq = if datagram {
                None
            } else {
                conn.seq.adjust(buf, l4, dir)
            };
            let Some(nt) = &new_text else { continue };
            let old_len = starts.get(k + 1).copied().unwrap_or(text.len()) - starts[k];
            let from = starts[k].min(nt.len());
            let to = if k + 1 == n {
                nt.len()
            } else {
                (starts[k] + old_len).min(nt.len())
            };
            let piece = &nt[from..to];
            if piece == &text[starts[k]..starts[k] + old_len] {
                continue;
            }
            match mangle(buf, 14, 0, old_len, piece) {
                Ok(d) => {
                    self.count_rewrite(tag.alg);
                    if let (Some(seq), true) = (orig_seq, k + 1 == n) {
                        conn.seq.record(dir, seq, d as i32);
                        if self.sync_on && d != 0 && self.changed.len() < SYNC_ROOM {
                            self.changed.push(key);
                        }
                    }
                }
                Err(_) => self.count_no_room(tag.alg),
            }
        }
        if !datagram {
            self.conns.insert(key, conn);
        }
    }

    /// FTP counts rewritten segments here (SIP and RTSP count messages as they are
    /// rewritten).
    fn count_rewrite(&self, alg: u8) {
        if alg != crate::nat::ALG_SIP && alg != crate::nat::ALG_RTSP {
            self.counters.alg_ftp_rewrites.inc();
        }
    }

    fn count_no_room(&self, alg: u8) {
        use crate::counters::AlgEvent;
        if let Some(ev) = self.counters.text_alg_events(alg) {
            ev[AlgEvent::NoRoom as usize].inc();
        }
    }

    /// The FTP edits of a control payload: PORT and EPRT from the client, 227 and 229
    /// from a server behind the NAT, with the worker's translations; AUTH TLS noted.
    fn ftp_edits(
        &self,
        payload: &[u8],
        tag: &Tag,
        conn: &mut Conn,
        dir: usize,
    ) -> Vec<(usize, usize, String)> {
        let mut edits: Vec<(usize, usize, String)> = Vec::new();
        let find = |inside: (u32, u16)| {
            tag.rewrites[..usize::from(tag.n)]
                .iter()
                .find(|r| r.inside == inside)
                .copied()
        };
        // What an endpoint the client announced becomes: its reserved mapping; or, for
        // the client's own address with none (the tag had no room, a port below
        // min_data_port, no port free), the outside address with the port as written
        // (no mapping answers there): the inside address never leaves. Another
        // host's address (bounce, FXP) is left alone.
        let to = |inside: (u32, u16)| match find(inside) {
            Some(r) => Some((Ipv4Addr::from(r.outside.0), r.outside.1)),
            None if inside.0 == tag.inside.0 => {
                self.counters.alg_ftp_masked.inc();
                Some((Ipv4Addr::from(tag.outside.0), inside.1))
            }
            None => None,
        };
        let mut at = 0;
        while let Ok(Some(l)) = next_line(payload, at) {
            let line = &payload[l.start..l.end];
            let msg = classify(line);
            if msg != Message::Other {
                self.counters.alg_ftp_messages.inc();
            }
            if tag.nat64 {
                if let Some(e) = self.ftp64_edit(line, msg, tag, conn, dir) {
                    edits.push((l.start, l.end - l.start, e));
                }
                at = l.next;
                continue;
            }
            match (msg, dir) {
                (Message::Port(arg), 0) => {
                    if let Ok((a, p)) = parse_host_port(arg) {
                        if let Some((a, p)) = to((u32::from(a), p)) {
                            edits.push((l.start + 5, arg.len(), format_host_port(a, p)));
                        }
                    }
                }
                (Message::Eprt(arg), 0) => {
                    if let Ok(Eprt::V4(a, p)) = parse_eprt(arg) {
                        if let Some((a, p)) = to((u32::from(a), p)) {
                            edits.push((l.start + 5, arg.len(), format_eprt(a, p)));
                        }
                    }
                }
                // A server behind the NAT announcing where to connect.
                (Message::Reply227, 0) => {
                    if let Ok((a, p, st, en)) = cgnat_alg::ftp::parse_227(line) {
                        if let Some((a, p)) = to((u32::from(a), p)) {
                            edits.push((l.start + st, en - st, format_host_port(a, p)));
                        }
                    }
                }
                (Message::Reply229, 0) => {
                    if let Ok((p, st, en)) = cgnat_alg::ftp::parse_229(line) {
                        if let Some(r) = find((tag.inside.0, p)) {
                            edits.push((l.start + st, en - st, r.outside.1.to_string()));
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
        edits
    }

    /// NAT64 (RFC 6384), one control line between the IPv6 client and the IPv4 server:
    /// its replacement, if any. The client's EPRT naming its own IPv6 address (the
    /// worker reserved the data connection's mapping) becomes PORT with the pool
    /// address and port; EPSV (or EPSV 2) becomes PASV and the server's 227 answer a
    /// 229 with the port alone, which the client reaches at the server's address
    /// under the NAT64 prefix (the 227 must name the server's own address). The
    /// IPv4-only commands (PORT, PASV, LPRT, LPSV, EPRT |1|), EPSV ALL or 1, and an
    /// EPRT or a 227 that cannot be translated pass unchanged, counted
    /// (`alg_nat64_ftp_refused`).
    fn ftp64_edit(
        &self,
        line: &[u8],
        msg: Message<'_>,
        tag: &Tag,
        conn: &mut Conn,
        dir: usize,
    ) -> Option<String> {
        let refused = || {
            self.counters.alg_nat64_ftp_refused.inc();
            None
        };
        if dir == 0 && !matches!(msg, Message::Epsv(_)) {
            // The client's next command: the EPSV was answered.
            conn.epsv_as_pasv = false;
        }
        match (msg, dir) {
            (Message::Eprt(arg), 0) => {
                let Ok(Eprt::V6(_, p)) = parse_eprt(arg) else {
                    return refused();
                };
                let r = tag.rewrites[..usize::from(tag.n)]
                    .iter()
                    .find(|r| r.inside == (tag.inside.0, p));
                match r {
                    Some(r) => Some(format!(
                        "PORT {}",
                        format_host_port(Ipv4Addr::from(r.outside.0), r.outside.1)
                    )),
                    None => refused(),
                }
            }
            (Message::Epsv(arg), 0) => {
                if arg.is_empty() || arg == b"2" {
                    conn.epsv_as_pasv = true;
                    Some("PASV".into())
                } else {
                    refused()
                }
            }
            (Message::Port(_) | Message::Pasv | Message::Long, 0) => refused(),
            (Message::Auth, 0) => {
                conn.auth_pending = true;
                None
            }
            (Message::Reply234, 1) if conn.auth_pending => {
                conn.stand_aside = true;
                self.counters.alg_ftp_stand_aside.inc();
                None
            }
            (Message::Reply227, 1) if conn.epsv_as_pasv => {
                // Kept until the client's next command: a retransmitted 227 is
                // translated again, the same bytes at the same place.
                match cgnat_alg::ftp::parse_227(line) {
                    Ok((a, p, _, _)) if u32::from(a) == tag.remote.0 => {
                        Some(format!("229 Entering Extended Passive Mode (|||{p}|)"))
                    }
                    _ => refused(),
                }
            }
            (_, 1) if conn.epsv_as_pasv && matches!(line.first(), Some(b'2'..=b'5')) => {
                // The server refused the PASV (or answered something else): nothing
                // more to translate for that EPSV.
                if line.get(3) != Some(&b'-') {
                    conn.epsv_as_pasv = false;
                }
                None
            }
            _ => None,
        }
    }
}
