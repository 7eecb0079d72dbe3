//! Replay of a two-sided capture through the pipeline (no DPDK): packets from the
//! inside host go in on the inside port; packets to it are played by the outside peer
//! as it would have seen the translated conversation (sent to the mapping cgnat gave),
//! and what reaches the inside must be what the capture shows (TTL, checksums and MACs
//! aside). Nothing of the inside host may appear on the outside: its address in the
//! headers or, written dotted or FTP-comma style, in the payload.

use crate::harness::Harness;
use crate::pipeline::Side;
use crate::wire::{be16, be32, ipv4, put16, put32};
use cgnat_alg::contract::{Ask, Contract, Ctx, Dir, Edits, Framing, Grant, Kind, Plan};
use cgnat_config::Config;
use hashbrown::HashMap;
use serde::Serialize;
use std::net::Ipv4Addr;

/// The outcome of a replay.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Frames in the capture.
    pub frames: usize,
    /// Frames neither from nor to the inside host (or not IPv4), skipped.
    pub skipped: usize,
    /// Frames from the inside host translated out.
    pub outbound: usize,
    /// Frames to the inside host that came back as captured.
    pub inbound_ok: usize,
    /// Frames that did not make the round trip, with the reason.
    pub mismatches: Vec<String>,
    /// Outside frames that carry the inside host's address.
    pub leaks: Vec<String>,
    /// Outside frames that carry the inside host's address only where no NAT may
    /// change it: inside a SIP digest credential (`uri="..."` of Authorization or
    /// Proxy-Authorization), which the user agent's response hash covers (RFC 2617
    /// section 3.2.2, RFC 3261 section 22.4): rewriting it makes the registrar refuse
    /// the request. Reported, not failed.
    pub protected: Vec<String>,
    /// Segments an ALG held because they end inside a message (joined with the next,
    /// or replaced by their retransmission).
    pub held: usize,
    /// TCP connections the capture joins after their handshake: the replay opened
    /// them with a made-up SYN and SYN-ACK (not in either view) before their first
    /// captured segment, as a NAT that was running all along would have.
    pub picked_up: usize,
    /// FTP control connections the ALG stood aside from (AUTH TLS accepted).
    pub ftp_stand_aside: u64,
    /// Asks of the contract ALGs' messages the NAT refused (a lookup of an endpoint
    /// or call ID it does not know, a call it cannot make or end).
    pub alg_refused: u64,
    /// The NAT log events the run made under the config's `[logging]` (sessions and
    /// mappings made and ended, limits, PPTP calls, ALG policy decisions), as the
    /// runtime would hand them to its exporter (a replay sends none: counted here).
    pub log_events: u64,
    /// What left the outside port.
    #[serde(skip)]
    pub outside_view: Vec<Vec<u8>>,
    /// What left the inside port.
    #[serde(skip)]
    pub inside_view: Vec<Vec<u8>>,
}

impl Report {
    /// True when every frame made the round trip and nothing leaked.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty() && self.leaks.is_empty() && self.outbound + self.inbound_ok > 0
    }
}

/// (protocol, inside port, remote address, remote port) of a conversation.
type ConvKey = (u8, u16, u32, u16);

struct Ports {
    l4: usize,
    sport: u16,
    dport: u16,
}

fn ports(f: &[u8]) -> Option<(u32, u32, u8, Ports)> {
    if f.len() < 34 || f[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = ipv4::Packet::new_checked(&f[14..]).ok()?;
    let (src, dst, proto, l4) = (ip.src(), ip.dst(), ip.protocol(), 14 + ip.header_len());
    let first = ip.frag_offset() == 0;
    let p = match proto {
        ipv4::PROTO_TCP | ipv4::PROTO_UDP if first && f.len() >= l4 + 4 => Ports {
            l4,
            sport: be16(f, l4),
            dport: be16(f, l4 + 2),
        },
        ipv4::PROTO_ICMP if first && f.len() >= l4 + 8 => Ports {
            l4,
            sport: be16(f, l4 + 4),
            dport: be16(f, l4 + 4),
        },
        _ => Ports {
            l4,
            sport: 0,
            dport: 0,
        },
    };
    Some((src, dst, proto, p))
}

/// The datagram an ICMP error quotes, when the inside host sent it.
struct Quoted {
    /// Offset of the quoted IPv4 header in the frame.
    l3: usize,
    /// Offset of its L4 header.
    l4: usize,
    proto: u8,
    dst: u32,
    /// The inside host's port (TCP, UDP) or query identifier (ICMP).
    sport: u16,
    dport: u16,
}

fn quoted(f: &[u8], p: &Ports, host: u32) -> Option<Quoted> {
    let icmp_type = *f.get(p.l4)?;
    if !crate::wire::icmp::is_error(icmp_type) || ip_is_fragment(f) {
        return None;
    }
    let l3 = p.l4 + 8;
    let body = f.get(l3..)?;
    let ihl = usize::from(*body.first()? & 0x0f) * 4;
    if body[0] >> 4 != 4 || ihl < 20 || body.len() < ihl + 8 || be32(body, 12) != host {
        return None;
    }
    let (proto, dst, l4) = (body[9], be32(body, 16), l3 + ihl);
    let (sport, dport) = match proto {
        ipv4::PROTO_TCP | ipv4::PROTO_UDP => (be16(f, l4), be16(f, l4 + 2)),
        ipv4::PROTO_ICMP => (be16(f, l4 + 4), be16(f, l4 + 4)),
        _ => return None,
    };
    Some(Quoted {
        l3,
        l4,
        proto,
        dst,
        sport,
        dport,
    })
}

/// Makes the quoted datagram of an ICMP error what the outside peer saw: from the
/// mapping (`oaddr`, `oport`), its checksums adjusted as the NAT adjusts them.
fn quote_translated(f: &mut [u8], q: &Quoted, oaddr: u32, oport: u16) {
    use crate::wire::checksum::{update16, Delta};
    let old_addr = be32(f, q.l3 + 12);
    ipv4::Packet::new_unchecked(&mut f[q.l3..q.l4]).set_src(oaddr);
    let end = 14 + ipv4::Packet::new_unchecked(&f[14..]).total_len();
    let l4 = &mut f[q.l4..end.max(q.l4)];
    match q.proto {
        ipv4::PROTO_TCP | ipv4::PROTO_UDP => {
            put16(l4, 0, oport);
            let ck = if q.proto == ipv4::PROTO_TCP { 16 } else { 6 };
            if l4.len() >= ck + 2 {
                let old = be16(l4, ck);
                if !(q.proto == ipv4::PROTO_UDP && old == 0) {
                    let new = Delta::addr_port(old_addr, q.sport, oaddr, oport).apply(old);
                    put16(l4, ck, new);
                }
            }
        }
        _ => {
            let new = update16(be16(l4, 2), q.sport, oport);
            put16(l4, 4, oport);
            put16(l4, 2, new);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

const PROTECTED: &str = "a SIP digest credential (protected by its hash)";

/// Whether every occurrence of `needle` is on an Authorization or Proxy-Authorization
/// header line.
fn only_in_credentials(payload: &[u8], needle: &[u8]) -> bool {
    let mut line_start = 0;
    let mut i = 0;
    while i + needle.len() <= payload.len() {
        if payload[i] == b'\n' {
            line_start = i + 1;
        }
        if &payload[i..i + needle.len()] == needle {
            let line = &payload[line_start..];
            let auth = |h: &[u8]| line.len() >= h.len() && line[..h.len()].eq_ignore_ascii_case(h);
            if !(auth(b"authorization:") || auth(b"proxy-authorization:")) {
                return false;
            }
        }
        i += 1;
    }
    true
}

/// Where the inside host shows in an outside frame, if it does.
fn leak(f: &[u8], host: Ipv4Addr) -> Option<&'static str> {
    let o = host.octets();
    let (src, dst, _, p) = ports(f)?;
    if src == u32::from(host) || dst == u32::from(host) {
        return Some("IP header");
    }
    let payload = f.get(p.l4..)?;
    let dotted = host.to_string();
    if find(payload, dotted.as_bytes()) {
        if only_in_credentials(payload, dotted.as_bytes()) {
            return Some(PROTECTED);
        }
        return Some("payload (dotted)");
    }
    if find(
        payload,
        format!("{},{},{},{}", o[0], o[1], o[2], o[3]).as_bytes(),
    ) {
        return Some("payload (FTP comma form)");
    }
    if find(payload, u32::from(host).to_string().as_bytes()) {
        // (IRC DCC writes an address as one decimal number.)
        return Some("payload (decimal)");
    }
    None
}

/// Recomputes the IPv4 header checksum and the TCP, UDP or ICMP checksum of a frame
/// (the L4 one only for an unfragmented datagram), in place.
fn fix_checksums(f: &mut [u8]) {
    use crate::wire::checksum;
    let Ok(ip) = ipv4::Packet::new_checked(&f[14..]) else {
        return;
    };
    let (hl, tl, proto) = (ip.header_len(), ip.total_len(), ip.protocol());
    let (src, dst) = (ip.src().to_be_bytes(), ip.dst().to_be_bytes());
    let fragment = ip.is_fragment();
    ipv4::Packet::new_unchecked(&mut f[14..14 + hl]).fill_checksum();
    if fragment {
        return;
    }
    let seg = &mut f[14 + hl..14 + tl];
    let at = match proto {
        ipv4::PROTO_TCP if seg.len() >= 20 => 16,
        ipv4::PROTO_UDP if seg.len() >= 8 => 6,
        ipv4::PROTO_ICMP if seg.len() >= 8 => 2,
        _ => return,
    };
    put16(seg, at, 0);
    let mut acc = checksum::sum(seg);
    if proto != ipv4::PROTO_ICMP {
        acc = checksum::add(
            acc,
            checksum::pseudo_header(src, dst, proto, seg.len() as u16),
        );
    }
    let c = checksum::finish(acc);
    put16(
        seg,
        at,
        if c == 0 && proto == ipv4::PROTO_UDP {
            0xffff
        } else {
            c
        },
    );
}

fn ip_is_fragment(f: &[u8]) -> bool {
    ipv4::Packet::new_checked(&f[14..])
        .map(|p| p.is_fragment())
        .unwrap_or(false)
}

/// The frame with TTL, checksums and MACs blanked, for comparison.
fn normalized(f: &[u8]) -> Vec<u8> {
    let mut v = f.to_vec();
    let Ok(ip) = ipv4::Packet::new_checked(&v[14..]) else {
        return v;
    };
    let (hl, tl, proto) = (ip.header_len(), ip.total_len(), ip.protocol());
    v.truncate(14 + tl);
    v[..12].fill(0);
    v[14 + 8] = 0;
    v[14 + 10] = 0;
    v[14 + 11] = 0;
    let at = match proto {
        ipv4::PROTO_TCP => 16,
        ipv4::PROTO_UDP => 6,
        ipv4::PROTO_ICMP => 2,
        _ => return v,
    };
    if !ip_is_fragment(f) && v.len() >= 14 + hl + at + 2 {
        v[14 + hl + at] = 0;
        v[14 + hl + at + 1] = 0;
    }
    v
}

/// Payload of a TCP frame, if any.
fn tcp_payload(f: &[u8]) -> &[u8] {
    crate::alg::tcp_payload(f).map_or(&[][..], |(s, e)| &f[s..e])
}

/// The endpoints the messages of the contract ALGs (FTP's PORT and EPRT, IRC DCC) in a
/// payload announce from the inside, in order; `sender`: the frame's source address
/// (what the subscriber's own is, as FTP reads it).
fn announced(payload: &[u8], sender: u32) -> Vec<(u32, u16)> {
    let mut v = Vec::new();
    messages(payload, Dir::FromInside, sender, |_, plan, _, _| {
        v.extend(plan.asks().filter_map(|a| match a {
            Ask::Announce { kind, inside, .. } if *kind != Kind::Id => Some(*inside),
            _ => None,
        }))
    });
    v
}

/// The contract ALGs' whole messages in `payload` going `dir`, each with its plan.
fn messages(
    payload: &[u8],
    dir: Dir,
    inside: u32,
    mut each: impl FnMut(std::ops::Range<usize>, &Plan, &Ctx, &'static dyn Contract),
) {
    let ctx = Ctx {
        dir,
        inside: (inside, 0),
        outside: (0, 0),
        remote: (0, 0),
        datagram: false,
    };
    for c in crate::counters::contract_algs().filter_map(|p| p.contract) {
        let mut at = 0;
        while at < payload.len() {
            match c.framing(&payload[at..], &ctx) {
                Framing::Whole(n) if n > 0 => {
                    let mut plan = Plan::default();
                    c.plan(&payload[at..at + n], &ctx, &mut plan);
                    each(at..at + n, &plan, &ctx, c);
                    at += n;
                }
                Framing::Skip(n) if n > 0 => at += n,
                _ => break,
            }
        }
    }
}

/// The identifiers (PPTP call IDs) the subscriber's messages in `payload` announce, in
/// order.
fn announced_ids(payload: &[u8]) -> Vec<u16> {
    let mut v = Vec::new();
    messages(payload, Dir::FromInside, 0, |_, plan, _, _| {
        v.extend(plan.asks().filter_map(|a| match a {
            Ask::Announce {
                kind: Kind::Id,
                inside,
                ..
            } => Some(inside.1),
            _ => None,
        }))
    });
    v
}

/// Writes the peer's messages in `payload` as the peer saw them: where one names a
/// subscriber's identifier (a PPTP Peer's Call ID, or the Call ID of a
/// Call-Disconnect-Notify written as deployed servers do), its translation from `ids`.
/// The edits keep the length.
fn as_the_peer_saw(payload: &mut [u8], ids: &HashMap<u16, (u32, u16)>) {
    let mut edits = Vec::new();
    messages(payload, Dir::FromOutside, 0, |r, plan, ctx, c| {
        let grants: Vec<Grant> = plan
            .asks()
            .map(|a| match a {
                Ask::Lookup {
                    kind: Kind::Id,
                    outside,
                }
                | Ask::End {
                    kind: Kind::Id,
                    endpoint: outside,
                    translated: true,
                } => ids
                    .get(&outside.1)
                    .map_or(Grant::Refused, |&(a, id)| Grant::To((a, id))),
                _ => Grant::Refused,
            })
            .collect();
        if grants.iter().all(|g| *g == Grant::Refused) {
            return;
        }
        let mut e = Edits::default();
        if c.edits(&payload[r.clone()], ctx, plan, &grants, &mut e)
            .is_ok()
            && e.keep_length()
        {
            edits.push((r.start, e));
        }
    });
    for (at, e) in edits {
        let _ = e.apply_in_place(&mut payload[at..]);
    }
}

/// A bare TCP segment made from `f` (a TCP frame): no payload, the given flags,
/// sequence and acknowledgement numbers, checksums fixed; swapped end to end with
/// `reverse`.
fn bare_tcp(f: &[u8], p: &Ports, flags: u8, seq: u32, ack: u32, reverse: bool) -> Vec<u8> {
    let hl = p.l4 - 14;
    let mut v = f[..p.l4 + 20].to_vec();
    put16(&mut v, 16, (hl + 20) as u16);
    v[p.l4 + 12] = 5 << 4;
    v[p.l4 + 13] = flags;
    put32(&mut v, p.l4 + 4, seq);
    put32(&mut v, p.l4 + 8, ack);
    if reverse {
        let (src, dst) = (be32(&v, 26), be32(&v, 30));
        put32(&mut v, 26, dst);
        put32(&mut v, 30, src);
        put16(&mut v, p.l4, p.dport);
        put16(&mut v, p.l4 + 2, p.sport);
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&v[0..6]);
        v.copy_within(6..12, 0);
        v[6..12].copy_from_slice(&mac);
    }
    fix_checksums(&mut v);
    v
}

/// A capture of both ends on one host (loopback): the end on `server_port` is moved to
/// `server_as` and the other to `inside_as`, so the replay can tell the inside host
/// from its peer by address.
pub fn separate_server(
    frames: &mut [(u64, Vec<u8>)],
    host: Ipv4Addr,
    server_port: u16,
    server_as: Ipv4Addr,
    inside_as: Ipv4Addr,
) {
    let h = u32::from(host);
    for (_, f) in frames.iter_mut() {
        let Some((src, dst, proto, p)) = ports(f) else {
            continue;
        };
        if src != h || dst != h || !matches!(proto, ipv4::PROTO_TCP | ipv4::PROTO_UDP) {
            continue;
        }
        if p.sport == server_port {
            put32(f, 26, u32::from(server_as));
            put32(f, 30, u32::from(inside_as));
        } else if p.dport == server_port {
            put32(f, 26, u32::from(inside_as));
            put32(f, 30, u32::from(server_as));
        } else {
            continue;
        }
        fix_checksums(f);
    }
}

/// Notes a held segment: a new run, the next of a run, or the run's start again.
fn hold(runs: &mut HashMap<ConvKey, (u32, Vec<u8>)>, key: ConvKey, seq: u32, payload: &[u8]) {
    match runs.get_mut(&key) {
        Some((start, bytes)) if seq == start.wrapping_add(bytes.len() as u32) => {
            bytes.extend_from_slice(payload)
        }
        _ => {
            runs.insert(key, (seq, payload.to_vec()));
        }
    }
}

/// Segments the ALG stream engine has held so far, all ALGs.
fn held_count(h: &Harness) -> u64 {
    use crate::counters::AlgEvent;
    let c = &h.counters;
    crate::counters::TEXT_ALG_EVENTS
        .iter()
        .map(|(_, of)| of(c)[AlgEvent::Held as usize].get())
        .sum::<u64>()
        + crate::counters::contract_algs()
            .filter(|p| c.text_alg_events(p.id).is_none())
            .map(|p| {
                c.contract_event(p.id, crate::counters::ContractEvent::Held)
                    .get()
            })
            .sum::<u64>()
}

/// `a` after `b` in sequence space.
fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// Takes the log events the worker made since the last call (as the runtime's loop
/// hands them to the exporter, so that none is counted `log_events_dropped`): how
/// many.
fn take_events(h: &mut Harness) -> u64 {
    let nat = h.worker.nat.events().drain(..).count();
    let alg = h.worker.alg_control().events().drain(..).count();
    (nat + alg) as u64
}

/// Replays `frames` (with their capture times in seconds) for `inside_host`.
pub fn replay(cfg: &Config, inside_host: Ipv4Addr, frames: &[(u64, Vec<u8>)]) -> Report {
    let t0 = frames.first().map_or(0, |f| f.0);
    let mut h = Harness::new_replay(cfg, 1000);
    let mut r = Report {
        frames: frames.len(),
        ..Report::default()
    };
    let host = u32::from(inside_host);
    let mut conv: HashMap<ConvKey, (u32, u16)> = HashMap::new();
    let mut by_port: HashMap<(u8, u16), (u32, u16)> = HashMap::new();
    // Bytes the ALG added to or removed from each conversation's inside-to-outside
    // stream, from which sequence number on: the outside peer acknowledges the
    // translated stream.
    let mut shifts: HashMap<ConvKey, Vec<(u32, i32)>> = HashMap::new();
    // Segments an ALG holds (the start of a message), per conversation and direction.
    let mut held_out: HashMap<ConvKey, (u32, Vec<u8>)> = HashMap::new();
    let mut held_in: HashMap<ConvKey, (u32, Vec<u8>)> = HashMap::new();
    // The subscriber's identifiers (PPTP call IDs) and their translation (pool address,
    // identifier), as its messages announced them.
    let mut ids: HashMap<u16, (u32, u16)> = HashMap::new();
    for (i, (ts, frame)) in frames.iter().enumerate() {
        r.log_events += take_events(&mut h);
        if i > 0 && i % 100_000 == 0 {
            // Progress on long captures, on stderr (stdout is the report).
            eprintln!(
                "cgnat replay: {i} of {} frames, {} out, {} back",
                frames.len(),
                r.outbound,
                r.inbound_ok
            );
        }
        let now = 1000 + ts.saturating_sub(t0) as u32;
        let Some((src, dst, proto, p)) = ports(frame) else {
            r.skipped += 1;
            continue;
        };
        if src == host {
            let key = (proto, p.sport, dst, p.dport);
            if proto == ipv4::PROTO_TCP
                && !conv.contains_key(&key)
                && frame.len() >= p.l4 + 20
                && frame[p.l4 + 13] & 0x02 == 0
            {
                // A connection already open when the capture started: open it as it
                // was (SYN, SYN-ACK) before its first captured segment.
                let (seq, ack) = (be32(frame, p.l4 + 4), be32(frame, p.l4 + 8));
                let syn = bare_tcp(frame, &p, 0x02, seq.wrapping_sub(1), 0, false);
                if let Some((Side::Outside, o)) =
                    h.inject(&syn, Side::Inside, now).into_iter().next()
                {
                    if let Some((osrc, _, _, op)) = ports(&o) {
                        let mut sa = bare_tcp(frame, &p, 0x12, ack.wrapping_sub(1), seq, true);
                        put32(&mut sa, 30, osrc);
                        put16(&mut sa, p.l4 + 2, op.sport);
                        fix_checksums(&mut sa);
                        h.inject(&sa, Side::Outside, now);
                        conv.insert(key, (osrc, op.sport));
                        by_port.insert((proto, p.sport), (osrc, op.sport));
                        r.picked_up += 1;
                    }
                }
            }
            let before = held_count(&h);
            let out = h.inject(frame, Side::Inside, now);
            // A completed run of held segments leaves as several segments: all of them
            // are what the peer receives.
            let rest: Vec<Vec<u8>> = out.iter().skip(1).map(|x| x.1.clone()).collect();
            let Some((Side::Outside, o)) = out.into_iter().next() else {
                if held_count(&h) > before {
                    // The ALG holds a segment that ends inside a message.
                    hold(
                        &mut held_out,
                        key,
                        be32(frame, p.l4 + 4),
                        tcp_payload(frame),
                    );
                    r.held += 1;
                    continue;
                }
                r.mismatches
                    .push(format!("frame {i}: outbound packet not translated"));
                continue;
            };
            let joined: Option<Vec<u8>> = held_out.remove(&key).map(|(_, mut held)| {
                held.extend_from_slice(tcp_payload(frame));
                held
            });
            if let Some((osrc, _, _, op)) = ports(&o) {
                conv.insert((proto, p.sport, dst, p.dport), (osrc, op.sport));
                by_port.insert((proto, p.sport), (osrc, op.sport));
            }
            if proto == ipv4::PROTO_TCP {
                let mut sent = tcp_payload(&o).to_vec();
                for f in &rest {
                    sent.extend_from_slice(tcp_payload(f));
                }
                let (a, b) = (
                    joined.as_deref().unwrap_or(tcp_payload(frame)),
                    sent.as_slice(),
                );
                // Endpoints the ALG rewrote: the peer will connect to their translation.
                let senders = (be32(frame, 26), be32(&o, 26));
                let (ia, ib) = (announced(a, senders.0), announced(b, senders.1));
                for (inside, outside) in ia.into_iter().zip(ib) {
                    if inside != outside {
                        by_port.insert((proto, inside.1), outside);
                    }
                }
                // Identifiers (PPTP call IDs) the ALG translated: the peer names those.
                for (inside, outside) in announced_ids(a).into_iter().zip(announced_ids(b)) {
                    ids.insert(inside, (be32(&o, 26), outside));
                }
                let grew = b.len() as i32 - a.len() as i32;
                let seq = be32(frame, p.l4 + 4);
                let v = shifts.entry((proto, p.sport, dst, p.dport)).or_default();
                // A retransmission of bytes already shifted shifts nothing more.
                if grew != 0 && v.last().is_none_or(|x| after(seq, x.0)) {
                    let cum = v.last().map_or(0, |x| x.1) + grew;
                    v.push((seq, cum));
                }
            }
            match leak(&o, inside_host) {
                Some(PROTECTED) => r
                    .protected
                    .push(format!("frame {i}: inside address in {PROTECTED}")),
                Some(w) => r.leaks.push(format!("frame {i}: inside address in {w}")),
                None => {}
            }
            for f in &rest {
                if let Some(w) = leak(f, inside_host).filter(|w| *w != PROTECTED) {
                    r.leaks.push(format!("frame {i}: inside address in {w}"));
                }
            }
            r.outbound += 1;
            r.outside_view.push(o);
            r.outside_view.extend(rest);
        } else if dst == host {
            // The peer sends to the mapping it saw (any port of the inside host's
            // mapping for replies from a new source port, as TFTP servers do).
            if let Some(q) = quoted(frame, &p, host).filter(|_| proto == ipv4::PROTO_ICMP) {
                // An ICMP error about a datagram the inside host sent: the peer quotes
                // that datagram as it saw it (from the mapping), and the inside host
                // must get the error as captured.
                let k = (q.proto, q.sport, q.dst, q.dport);
                let Some(&(oaddr, oport)) =
                    conv.get(&k).or_else(|| by_port.get(&(q.proto, q.sport)))
                else {
                    r.mismatches.push(format!(
                        "frame {i}: ICMP error about {}:{} to {}:{}, which has no mapping",
                        inside_host,
                        q.sport,
                        Ipv4Addr::from(q.dst),
                        q.dport
                    ));
                    continue;
                };
                let mut f = frame.clone();
                put32(&mut f, 30, oaddr);
                quote_translated(&mut f, &q, oaddr, oport);
                fix_checksums(&mut f);
                let out = h.inject(&f, Side::Outside, now);
                match out.into_iter().next() {
                    Some((Side::Inside, back)) if normalized(&back) == normalized(frame) => {
                        r.inbound_ok += 1;
                        r.inside_view.push(back);
                    }
                    Some((Side::Inside, back)) => {
                        r.mismatches.push(format!(
                            "frame {i}: the inside host would not see the ICMP error it saw"
                        ));
                        r.inside_view.push(back);
                    }
                    _ => r
                        .mismatches
                        .push(format!("frame {i}: inbound ICMP error dropped")),
                }
                continue;
            }
            let key = (proto, p.dport, src, p.sport);
            // Enhanced GRE keyed by a call ID the subscriber announced: the peer sent it
            // to the call's translation.
            let call = (proto == crate::nat::PROTO_GRE)
                .then(|| crate::nat::gre_call_id(&frame[p.l4..]))
                .flatten()
                .flatten()
                .and_then(|k| ids.get(&k).copied());
            let Some((oaddr, oport)) = call.map(|(a, _)| (a, 0)).or_else(|| {
                conv.get(&key)
                    .or_else(|| by_port.get(&(proto, p.dport)))
                    .copied()
            }) else {
                r.mismatches.push(format!(
                    "frame {i}: inbound packet to {}:{} has no mapping",
                    inside_host, p.dport
                ));
                continue;
            };
            let mut f = frame.clone();
            put32(&mut f, 30, oaddr);
            if proto == ipv4::PROTO_TCP && f[p.l4 + 13] & 0x10 != 0 {
                if let Some(v) = shifts.get(&key) {
                    let ack = be32(&f, p.l4 + 8);
                    let off = v
                        .iter()
                        .rfind(|(pos, _)| after(ack, *pos))
                        .map_or(0, |x| x.1);
                    put32(&mut f, p.l4 + 8, ack.wrapping_add(off as u32));
                }
            }
            if let Some((_, id)) = call {
                put16(&mut f, p.l4 + 6, id);
            }
            if proto == ipv4::PROTO_TCP && !ids.is_empty() && !ip_is_fragment(frame) {
                let (s0, e0) = crate::alg::tcp_payload(&f).unwrap_or((0, 0));
                as_the_peer_saw(&mut f[s0..e0], &ids);
            }
            if !ip_is_fragment(frame) {
                match proto {
                    ipv4::PROTO_TCP | ipv4::PROTO_UDP => put16(&mut f, p.l4 + 2, oport),
                    ipv4::PROTO_ICMP => put16(&mut f, p.l4 + 4, oport),
                    _ => {}
                }
            }
            fix_checksums(&mut f);
            let before = held_count(&h);
            let out = h.inject(&f, Side::Outside, now);
            // (A held run completed here leaves as several segments.)
            let back_rest: Vec<Vec<u8>> = out.iter().skip(1).map(|x| x.1.clone()).collect();
            let Some((Side::Inside, back)) = out.into_iter().next() else {
                if held_count(&h) > before {
                    hold(&mut held_in, key, be32(frame, p.l4 + 4), tcp_payload(frame));
                    r.held += 1;
                    continue;
                }
                r.mismatches.push(format!(
                    "frame {i}: inbound packet dropped ({:?})",
                    h.counters.drops.0.iter().map(|c| c.get()).sum::<u64>()
                ));
                continue;
            };
            if let Some((_, mut held)) = held_in.remove(&key) {
                // A held run completed by this one: the inside host gets the same
                // bytes, in as many segments.
                held.extend_from_slice(tcp_payload(frame));
                let mut got = tcp_payload(&back).to_vec();
                for f in &back_rest {
                    got.extend_from_slice(tcp_payload(f));
                }
                if got == held && ports(&back).map(|x| (x.0, x.1)) == Some((src, dst)) {
                    r.inbound_ok += 1;
                } else {
                    r.mismatches.push(format!(
                        "frame {i}: the joined segment is not what the inside host saw"
                    ));
                }
            } else if normalized(&back) != normalized(frame) {
                r.mismatches.push(format!(
                    "frame {i}: the inside host would not see what it saw"
                ));
            } else {
                r.inbound_ok += 1;
            }
            r.inside_view.push(back);
        } else {
            r.skipped += 1;
        }
    }
    r.log_events += take_events(&mut h);
    r.ftp_stand_aside = h.counters.alg_ftp_stand_aside.get();
    r.alg_refused = crate::counters::contract_algs()
        .map(|p| {
            h.counters
                .contract_event(p.id, crate::counters::ContractEvent::Refused)
                .get()
        })
        .sum();
    r
}
