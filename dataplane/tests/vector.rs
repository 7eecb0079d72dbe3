//! The burst path (`cgnat_dataplane::vector`): a burst processed in stages gives
//! exactly what processing its frames one at a time through the per-packet path
//! (`Worker::process`, then the dispatcher) gives: the same frames out of the same
//! outputs, the same drops, the same counters and the same sessions.

mod common;
use cgnat_dataplane::buf::{PacketBuf, VecBuf};
use cgnat_dataplane::counters::{DropReason, WorkerCounters, STAGES};
use cgnat_dataplane::dispatch::{self, VecOutputs};
use cgnat_dataplane::harness::{Harness, INSIDE_MAC, OUTSIDE_MAC};
use cgnat_dataplane::pipeline::Side::{self, Inside, Outside};
use cgnat_dataplane::vector;
use cgnat_dataplane::wire::checksum;
use common::*;

const PARSE: usize = 0;
const LOOKUP: usize = 1;
const TRANSLATE: usize = 2;
const CREATE: usize = 3;
const SLOW: usize = 4;
const DISPATCH: usize = 5;

type Frames = Vec<(Vec<u8>, Side)>;

/// The old way: each frame through `Worker::process` (or `process_handed`) and the
/// dispatcher, one after the other.
fn one_at_a_time(h: &mut Harness, frames: &Frames, handed: bool, now: u32) -> VecOutputs<VecBuf> {
    let mut o = VecOutputs::default();
    for (f, side) in frames {
        let mut b = VecBuf::new(f);
        let v = if handed {
            h.worker.process_handed(&mut b, *side, now)
        } else {
            h.worker.process(&mut b, *side, now)
        };
        dispatch::dispatch(&mut h.worker, b, v, *side, &mut o);
    }
    o
}

/// The burst path: all the frames as one burst.
fn as_burst(h: &mut Harness, frames: &Frames, handed: bool, now: u32) -> VecOutputs<VecBuf> {
    let mut o = VecOutputs::default();
    let burst = frames.iter().map(|(f, s)| (VecBuf::new(f), *s));
    vector::receive_burst(&mut h.worker, burst, handed, now, &mut o);
    o
}

fn frames_of(v: &[(Side, VecBuf)]) -> Vec<(Side, Vec<u8>)> {
    v.iter().map(|(s, b)| (*s, b.data().to_vec())).collect()
}

/// Everything a test compares of an output set.
fn outputs(o: &VecOutputs<VecBuf>) -> String {
    let handoff: Vec<_> = o
        .handoff
        .iter()
        .map(|(w, s, b)| (*w, *s, b.data().to_vec()))
        .collect();
    let dropped: Vec<_> = o
        .dropped
        .iter()
        .map(|(r, b)| (*r, b.data().to_vec()))
        .collect();
    format!(
        "tx {:02x?}\ncontrol {:02x?}\nalg {:02x?}\nhandoff {handoff:02x?}\ndropped {dropped:02x?}",
        frames_of(&o.tx),
        frames_of(&o.control),
        frames_of(&o.alg),
    )
}

/// A worker's counters without the stage counters (which only the burst path has),
/// its sessions and the frames waiting in it.
fn state(h: &mut Harness) -> String {
    let c: &WorkerCounters = h.worker.counters();
    let stages: Vec<(u64, u64)> = (0..STAGES.len())
        .map(|k| (c.stage_cycles[k].get(), c.stage_packets[k].get()))
        .collect();
    for k in 0..STAGES.len() {
        c.stage_cycles[k].set(0);
        c.stage_packets[k].set(0);
    }
    let text = format!("{c:?}");
    for (k, (cy, p)) in stages.into_iter().enumerate() {
        c.stage_cycles[k].set(cy);
        c.stage_packets[k].set(p);
    }
    let sessions: Vec<String> = h
        .worker
        .nat()
        .iter_sessions_indexed()
        .map(|(i, s)| format!("{i} {s:?}"))
        .collect();
    let gleaned = h.worker.take_gleaned().to_vec();
    format!(
        "{text}\nsessions {sessions:?}\nwaiting {}\ngleaned {gleaned:?}",
        h.worker.waiting()
    )
}

/// Runs `frames` one at a time on one harness and as a burst on its twin (both made
/// by `make` and brought to the same state by `setup`) and checks that outputs,
/// counters and sessions agree; returns the burst side's harness and outputs.
fn same_as_one_at_a_time(
    make: &dyn Fn() -> Harness,
    setup: &dyn Fn(&mut Harness) -> Frames,
    handed: bool,
    now: u32,
) -> (Harness, VecOutputs<VecBuf>) {
    let (mut a, mut b) = (make(), make());
    let (fa, fb) = (setup(&mut a), setup(&mut b));
    assert_eq!(fa, fb, "the twins were set up alike");
    assert_eq!(state(&mut a), state(&mut b), "the twins start alike");
    // The stage counters from here on count the burst only.
    let c = b.worker.counters().clone();
    for k in 0..STAGES.len() {
        c.stage_cycles[k].set(0);
        c.stage_packets[k].set(0);
    }
    let oa = one_at_a_time(&mut a, &fa, handed, now);
    let ob = as_burst(&mut b, &fb, handed, now);
    assert_eq!(outputs(&oa), outputs(&ob));
    assert_eq!(state(&mut a), state(&mut b));
    let c = b.worker.counters().clone();
    assert_eq!(c.stage_packets[PARSE].get(), fb.len() as u64);
    assert_eq!(c.stage_packets[DISPATCH].get(), fb.len() as u64);
    (b, ob)
}

/// The frame with its IPv4 header checksum recomputed (options included).
fn fix_ip(mut f: Vec<u8>) -> Vec<u8> {
    f[24] = 0;
    f[25] = 0;
    let end = 14 + usize::from(f[14] & 0x0f) * 4;
    let c = checksum::finish(checksum::sum(&f[14..end]));
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

/// The frame with an IPv4 options word of no-operations (which cgnat forwards, but
/// not the fast way).
fn with_options(mut f: Vec<u8>) -> Vec<u8> {
    f.splice(34..34, [1, 1, 1, 1]);
    f[14] = 0x46;
    let total = (f.len() - 14) as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    fix_ip(f)
}

/// An ICMP error from `from` to `to` (inbound) quoting `inner` (an IPv4 packet).
fn icmp_error_in(from: &str, to: &str, inner: &[u8]) -> Vec<u8> {
    let mut body = vec![3, 3, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&inner[..28]);
    let c = checksum::finish(checksum::sum(&body));
    body[2..4].copy_from_slice(&c.to_be_bytes());
    let b = etherparse::PacketBuilder::ethernet2(GW_MAC, cgnat_dataplane::harness::OUTSIDE_MAC)
        .ipv4(ip(from).octets(), ip(to).octets(), 64);
    let mut v = Vec::new();
    b.write(&mut v, etherparse::IpNumber::ICMP, &body).unwrap();
    v
}

/// An ARP request from an inside host for the inside port's address.
fn arp_request() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&HOST_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&HOST_MAC);
    f.extend_from_slice(&[100, 64, 1, 2]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[100, 64, 0, 1]);
    f
}

/// Established UDP, TCP and ICMP flows and an FTP control connection, at 1000; the
/// frames of the mixed burst: established both ways, new flows (two packets of one
/// among them), an FTP PORT, an ICMP error, a fragmented datagram, a hairpin, an
/// expired TTL, ARP, IPv6, a bad header checksum, a truncated frame, a frame for
/// another MAC.
fn mixed(h: &mut Harness) -> Frames {
    let udp_out = udp("100.64.1.2:5000", "192.0.2.10:53", b"q", false);
    let sent = one(h, &udp_out, Inside, 1000, Outside);
    let m1 = out(&sent).src;
    let syn = tcp("100.64.1.3:40000", "192.0.2.20:80", 1, "S", b"", false);
    let m2 = out(&one(h, &syn, Inside, 1000, Outside)).src;
    let syn_ack = tcp("192.0.2.20:80", &m2.to_string(), 9, "SA", b"", true);
    one(h, &syn_ack, Outside, 1000, Inside);
    let ack = tcp("100.64.1.3:40000", "192.0.2.20:80", 2, "A", b"", false);
    one(h, &ack, Inside, 1000, Outside);
    let ftp_syn = tcp("100.64.1.4:40001", "192.0.2.21:21", 1, "S", b"", false);
    let m3 = out(&one(h, &ftp_syn, Inside, 1000, Outside)).src;
    let ftp_sa = tcp("192.0.2.21:21", &m3.to_string(), 5, "SA", b"", true);
    one(h, &ftp_sa, Outside, 1000, Inside);
    let echo = ping("100.64.1.5", "192.0.2.30", 7, 1, false, false);
    let (icmp_addr, icmp_id) = {
        let o = one(h, &echo, Inside, 1000, Outside);
        let a = std::net::Ipv4Addr::new(o[26], o[27], o[28], o[29]);
        (a.to_string(), u16::from_be_bytes([o[38], o[39]]))
    };

    let big = udp("100.64.1.7:7000", "192.0.2.50:53", &[0x5a; 600], false);
    let frags = fragment(&with_ident(big, 77), &[304]);
    let mut ttl1 = udp("100.64.1.2:5000", "192.0.2.10:53", b"ttl", false);
    ttl1[22] = 1;
    let mut bad_sum = udp("100.64.1.2:5000", "192.0.2.10:53", b"bad", false);
    bad_sum[24] ^= 0xff;
    let mut ipv6 = udp("100.64.1.2:5000", "192.0.2.10:53", b"v6", false);
    ipv6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let mut other_mac = udp("100.64.1.2:5000", "192.0.2.10:53", b"mac", false);
    other_mac[..6].copy_from_slice(&[0x02, 0xcc, 0, 0, 0, 9]);
    let mut padded = udp("100.64.1.2:5000", "192.0.2.10:53", b"p", false);
    padded.extend_from_slice(&[0; 12]);
    // An options word of no-operations: not a plain frame, but forwarded.
    let options = with_options(udp("100.64.1.2:5000", "192.0.2.10:53", b"o", false));
    assert_ne!(INSIDE_MAC, [0x02, 0xcc, 0, 0, 0, 9]);
    vec![
        (udp("100.64.1.2:5000", "192.0.2.10:53", b"a", false), Inside),
        (
            udp("192.0.2.10:53", &m1.to_string(), b"reply", true),
            Outside,
        ),
        (
            tcp(
                "100.64.1.3:40000",
                "192.0.2.20:80",
                2,
                "PA",
                b"GET /",
                false,
            ),
            Inside,
        ),
        (
            tcp("192.0.2.20:80", &m2.to_string(), 10, "PA", b"200 OK", true),
            Outside,
        ),
        (
            udp("100.64.1.6:6000", "192.0.2.40:53", b"new", false),
            Inside,
        ),
        (
            udp("100.64.1.6:6000", "192.0.2.40:53", b"new again", false),
            Inside,
        ),
        (
            tcp(
                "100.64.1.4:40001",
                "192.0.2.21:21",
                2,
                "PA",
                b"PORT 100,64,1,4,19,137\r\n",
                false,
            ),
            Inside,
        ),
        (
            icmp_error_in("192.0.2.10", &m1.ip().to_string(), &sent[14..]),
            Outside,
        ),
        (frags[0].clone(), Inside),
        (frags[1].clone(), Inside),
        (
            udp("100.64.1.8:8000", &m1.to_string(), b"hairpin", false),
            Inside,
        ),
        (ttl1, Inside),
        (arp_request(), Inside),
        (ipv6, Inside),
        (bad_sum, Inside),
        (
            udp("100.64.1.2:5000", "192.0.2.10:53", b"t", false)[..20].to_vec(),
            Inside,
        ),
        (other_mac, Inside),
        (padded, Inside),
        (options, Inside),
        (ping("100.64.1.5", "192.0.2.30", 7, 2, false, false), Inside),
        (
            ping("192.0.2.30", &icmp_addr, icmp_id, 2, true, true),
            Outside,
        ),
        (
            tcp("100.64.1.3:40000", "192.0.2.20:80", 7, "FA", b"", false),
            Inside,
        ),
        (
            udp("100.64.1.2:5000", "192.0.2.10:53", b"last", false),
            Inside,
        ),
    ]
}

#[test]
fn a_mixed_burst_gives_the_frames_counters_and_sessions_of_one_at_a_time() {
    let (h, o) = same_as_one_at_a_time(&|| harness(""), &mixed, false, 1001);
    let c = h.worker.counters().clone();
    // The established frames went the fast way: UDP both ways, TCP both ways and
    // its FIN, the echo request and reply, the padded frame; not the last one,
    // whose session the frame with IP options (the slow way) used before it.
    assert_eq!(c.stage_packets[TRANSLATE].get(), 8, "{:?}", c.stage_packets);
    // The plain frames: those 8 and the last one, the two new ones (looked up and
    // missed) and the FTP command (found, but its session has an ALG).
    assert_eq!(c.stage_packets[LOOKUP].get(), 12);
    // Of the rest, the new flow's first frame had its session created in the
    // creation stage; its second (a duplicate) and the others went the full way.
    assert_eq!(c.stage_packets[CREATE].get(), 1, "{:?}", c.stage_packets);
    assert_eq!(c.stage_packets[SLOW].get(), 23 - 8 - 1);
    // The frame with options was forwarded, as the one-at-a-time path does.
    assert!(frames_of(&o.tx)
        .iter()
        .any(|(_, f)| f.len() > 14 && f[14] == 0x46));
    assert!(c.stage_cycles[PARSE].get() > 0 && c.stage_cycles[DISPATCH].get() > 0);
    // And the burst did what the frames ask for: an ALG frame, ARP to control, drops.
    assert!(
        o.alg.is_empty(),
        "the ALG frame is rewritten by the worker's own engine"
    );
    assert_eq!(o.control.len(), 1);
    for r in [
        DropReason::EthUnsupported,
        DropReason::Ipv4BadChecksum,
        DropReason::Ipv4Truncated,
        DropReason::EthOtherHost,
    ] {
        assert!(o.dropped.iter().any(|(d, _)| *d == r), "{r:?} dropped");
    }
    assert_eq!(c.hairpin.get(), 1);
}

/// A setup of nothing but the frames given.
fn just(frames: Frames) -> impl Fn(&mut Harness) -> Frames {
    move |_| frames.clone()
}

#[test]
fn two_packets_of_one_new_flow_in_a_burst_share_its_one_session() {
    let f = udp("100.64.1.6:6000", "192.0.2.40:53", b"one", false);
    let g = udp("100.64.1.6:6000", "192.0.2.40:53", b"two", false);
    let (h, o) = same_as_one_at_a_time(
        &|| harness(""),
        &just(vec![(f, Inside), (g, Inside)]),
        false,
        1000,
    );
    assert_eq!(h.worker.nat().live_sessions(), 1);
    assert_eq!(o.tx.len(), 2);
    assert_eq!(out(o.tx[0].1.data()).src, out(o.tx[1].1.data()).src);
    let c = h.worker.counters();
    assert_eq!(c.sessions_created[1].get(), 1);
    assert_eq!(
        c.stage_packets[CREATE].get(),
        1,
        "the first created the session"
    );
    assert_eq!(c.stage_packets[SLOW].get(), 1, "the second looked again");
}

#[test]
fn a_flow_created_in_a_burst_is_followed_by_its_next_packets_in_the_same_burst() {
    // The SYN creates the session; the remote's SYN-ACK (which needs the mapping the
    // SYN took: the pool port is chosen at random, so it is read off a twin) and the
    // ACK come in the same burst.
    let setup = |h: &mut Harness| {
        let mut twin = harness("");
        let syn = tcp("100.64.1.3:40000", "192.0.2.20:80", 1, "S", b"", false);
        let m = out(&one(&mut twin, &syn, Inside, 1000, Outside)).src;
        let _ = h;
        vec![
            (syn, Inside),
            (
                tcp("192.0.2.20:80", &m.to_string(), 9, "SA", b"", true),
                Outside,
            ),
            (
                tcp("100.64.1.3:40000", "192.0.2.20:80", 2, "A", b"", false),
                Inside,
            ),
            (
                tcp("100.64.1.3:40000", "192.0.2.20:80", 2, "PA", b"x", false),
                Inside,
            ),
        ]
    };
    let (h, o) = same_as_one_at_a_time(&|| harness(""), &setup, false, 1000);
    assert_eq!(o.tx.len(), 4, "{}", outputs(&o));
    assert_eq!(h.worker.nat().live_sessions(), 1);
    let s = h.worker.nat().iter_sessions().next().copied().unwrap();
    assert_eq!(s.state(), cgnat_dataplane::nat::TcpState::Established);
}

#[test]
fn a_second_burst_of_the_flows_goes_the_fast_way_and_matches() {
    // The mixed burst once (both twins), then again: now the new flows of the first
    // are established and go the fast way too.
    let setup = |h: &mut Harness| {
        let frames = mixed(h);
        let mut o = VecOutputs::default();
        let burst = frames.iter().map(|(f, s)| (VecBuf::new(f), *s));
        vector::receive_burst(&mut h.worker, burst, false, 1001, &mut o);
        frames
    };
    let (h, _) = same_as_one_at_a_time(&|| harness(""), &setup, false, 1002);
    let c = h.worker.counters();
    // The 8 of the first burst's, and the new flow's two packets.
    assert_eq!(c.stage_packets[TRANSLATE].get(), 8 + 2);
}

#[test]
fn handed_frames_go_through_the_stages_as_received_ones_do() {
    // Frames another worker handed over: counted received there, not here.
    let setup = |h: &mut Harness| {
        let mut f = mixed(h);
        // A handed frame's MAC was checked by the worker that received it.
        f.retain(|(fr, _)| fr[..6] == INSIDE_MAC[..] || fr[..6] == OUTSIDE_MAC[..]);
        assert_eq!(f.len(), 21);
        f
    };
    let (h, _) = same_as_one_at_a_time(&|| harness(""), &setup, true, 1001);
    let c = h.worker.counters();
    assert_eq!(c.handoff_in.get(), 21);
    assert_eq!(c.stage_packets[TRANSLATE].get(), 8);
}

#[test]
fn a_burst_longer_than_a_vector_is_processed_in_vectors() {
    let setup = |h: &mut Harness| {
        let m = out(&one(
            h,
            &udp("100.64.1.2:5000", "192.0.2.10:53", b"q", false),
            Inside,
            1000,
            Outside,
        ))
        .src;
        (0..70)
            .map(|i| {
                if i % 3 == 0 {
                    (udp("192.0.2.10:53", &m.to_string(), b"in", true), Outside)
                } else {
                    (
                        udp(
                            &format!("100.64.1.{}:5000", 2 + i % 5),
                            "192.0.2.10:53",
                            b"x",
                            false,
                        ),
                        Inside,
                    )
                }
            })
            .collect()
    };
    let (h, o) = same_as_one_at_a_time(&|| harness(""), &setup, false, 1001);
    assert_eq!(o.tx.len(), 70);
    // In vectors of VECTOR frames: a host's packets miss the lookup in the vector its flow is
    // created in (all of them: the lookups come before the creation), and go the
    // fast way in the vectors after it. The replies always do.
    let mut known = vec![2];
    let mut fast = 0;
    for v in (0..70).collect::<Vec<_>>().chunks(vector::VECTOR) {
        let mut seen = Vec::new();
        for &i in v {
            let host = 2 + i % 5;
            if i % 3 == 0 || known.contains(&host) {
                fast += 1;
            } else {
                seen.push(host);
            }
        }
        known.extend(seen);
    }
    assert_eq!(h.worker.counters().stage_packets[TRANSLATE].get(), fast);
}

#[test]
fn a_slow_frame_of_a_session_keeps_its_place_before_a_plain_one_of_the_same_session() {
    // An established connection; then, in one burst, a RST the slow way (it carries
    // IP options) and a new SYN of the same connection, plain. In their order the
    // RST resets the session and the SYN opens it again (SynOut); the other way
    // round the SYN changes nothing and the RST resets it.
    let setup = |h: &mut Harness| {
        let syn = tcp("100.64.1.3:40000", "192.0.2.20:80", 1, "S", b"", false);
        let m = out(&one(h, &syn, Inside, 1000, Outside)).src;
        let syn_ack = tcp("192.0.2.20:80", &m.to_string(), 9, "SA", b"", true);
        one(h, &syn_ack, Outside, 1000, Inside);
        let rst = tcp("100.64.1.3:40000", "192.0.2.20:80", 2, "R", b"", false);
        vec![
            (with_options(rst), Inside),
            (syn, Inside),
            (
                tcp("100.64.1.9:9000", "192.0.2.20:80", 1, "S", b"", false),
                Inside,
            ),
        ]
    };
    let (h, o) = same_as_one_at_a_time(&|| harness(""), &setup, false, 1001);
    assert_eq!(o.tx.len(), 3);
    let s = h
        .worker
        .nat()
        .iter_sessions()
        .find(|s| s.in_port == 40000)
        .copied()
        .unwrap();
    assert_eq!(s.state(), cgnat_dataplane::nat::TcpState::SynOut);
    let c = h.worker.counters();
    assert_eq!(c.stage_packets[TRANSLATE].get(), 0);
    // The new flow's session is created in the creation stage.
    assert_eq!(c.stage_packets[CREATE].get(), 1, "{:?}", c.stage_packets);
    assert_eq!(c.stage_packets[SLOW].get(), 2, "{:?}", c.stage_packets);
}

#[test]
fn with_two_workers_the_mixed_burst_hands_off_what_the_other_owns_as_before() {
    // Hosts the other worker owns: their frames are handed off, not translated here,
    // the one way as the other; the outputs (handoff ring included) agree.
    let make = || {
        let h = Harness::with_workers(&config(""), 2, 1000);
        for i in 0..=255u8 {
            h.neighbors
                .learn(u32::from(std::net::Ipv4Addr::new(100, 64, 1, i)), &HOST_MAC);
        }
        h
    };
    let (h, o) = same_as_one_at_a_time(&make, &mixed, false, 1001);
    assert!(!o.handoff.is_empty(), "{}", outputs(&o));
    assert!(h.worker.counters().stage_packets[TRANSLATE].get() > 0);
}

/// `n` new outbound flows of `subs` subscribers: UDP, TCP SYNs and ICMP echo
/// requests in turn.
fn new_flows(n: usize, subs: usize) -> Frames {
    (0..n)
        .map(|k| {
            let src = format!("100.64.{}.{}", 1 + k % subs, 10 + k % 7);
            let dst = format!("192.0.2.{}", 1 + k % 50);
            let port = 10000 + k as u16;
            let f = match k % 3 {
                0 => udp(&format!("{src}:{port}"), &format!("{dst}:53"), b"q", false),
                1 => tcp(
                    &format!("{src}:{port}"),
                    &format!("{dst}:443"),
                    7,
                    "S",
                    b"",
                    false,
                ),
                _ => ping(&src, &dst, port, 1, false, false),
            };
            (f, Inside)
        })
        .collect()
}

#[test]
fn a_burst_of_new_flows_is_created_in_the_creation_stage_as_one_at_a_time_would() {
    // A whole vector of them, and more than two vectors.
    for n in [vector::VECTOR, 2 * vector::VECTOR + 5] {
        let (h, o) = same_as_one_at_a_time(&|| harness(""), &just(new_flows(n, 5)), false, 1000);
        assert_eq!(o.tx.len(), n, "{}", outputs(&o));
        assert_eq!(h.worker.nat().live_sessions(), n as u32);
        let c = h.worker.counters();
        assert_eq!(c.stage_packets[CREATE].get(), n as u64);
        assert_eq!(c.stage_packets[SLOW].get(), 0);
    }
    // Port-block allocation too (the subscriber's blocks, their bitmap words).
    let pb = "allocation = \"port-block\"\nblock_size = 64\nport_parity = false";
    let (h, o) = same_as_one_at_a_time(&|| harness(pb), &just(new_flows(32, 3)), false, 1000);
    assert_eq!(o.tx.len(), 32, "{}", outputs(&o));
    assert_eq!(h.worker.counters().stage_packets[CREATE].get(), 32);
}

#[test]
fn duplicate_new_flows_in_a_burst_create_one_session_each_and_go_the_full_way() {
    let mut frames = new_flows(8, 2);
    let again: Frames = frames.iter().rev().take(4).cloned().collect();
    frames.extend(again);
    frames.insert(3, frames[0].clone());
    let (h, o) = same_as_one_at_a_time(&|| harness(""), &just(frames), false, 1000);
    assert_eq!(o.tx.len(), 13, "{}", outputs(&o));
    assert_eq!(h.worker.nat().live_sessions(), 8);
    let c = h.worker.counters();
    assert_eq!(c.stage_packets[CREATE].get(), 8);
    assert_eq!(c.stage_packets[SLOW].get(), 5);
}

#[test]
fn a_limit_hit_mid_burst_refuses_as_one_at_a_time_would() {
    // One subscriber, at most 5 sessions: the sixth flow on is refused, with ICMP
    // (the default) or silently.
    let frames: Frames = (0..12u16)
        .map(|k| {
            let f = udp(
                &format!("100.64.1.9:{}", 2000 + k),
                "192.0.2.7:53",
                b"q",
                false,
            );
            (f, Inside)
        })
        .collect();
    for extra in ["", "icmp_on_limit = false"] {
        let cfg = format!("max_sessions_per_subscriber = 5\n{extra}");
        let (h, o) = same_as_one_at_a_time(&|| harness(&cfg), &just(frames.clone()), false, 1000);
        assert_eq!(h.worker.nat().live_sessions(), 5);
        assert_eq!(
            o.tx.len(),
            if extra.is_empty() { 12 } else { 5 },
            "{}",
            outputs(&o)
        );
        let c = h.worker.counters();
        assert_eq!(c.dropped(DropReason::SubscriberSessionLimit), 7);
        assert_eq!(c.stage_packets[CREATE].get(), 12);
    }
}

#[test]
fn an_inbound_frame_ahead_in_the_burst_creating_a_new_flows_session_sends_it_the_full_way() {
    // Endpoint-independent filtering: a third remote's packet to an existing mapping
    // creates the session an outbound packet after it in the burst (whose lookup had
    // missed) belongs to.
    let setup = |h: &mut Harness| {
        let m = open_udp(h, 1000);
        vec![
            (udp("192.0.2.99:7000", &m.to_string(), b"in", true), Outside),
            (
                udp("100.64.1.2:5000", "192.0.2.99:7000", b"out", false),
                Inside,
            ),
        ]
    };
    let (h, o) = same_as_one_at_a_time(&|| harness(""), &setup, false, 1000);
    assert_eq!(o.tx.len(), 2, "{}", outputs(&o));
    assert_eq!(h.worker.nat().live_sessions(), 2);
    let c = h.worker.counters();
    assert_eq!(c.stage_packets[CREATE].get(), 0);
    assert_eq!(c.stage_packets[SLOW].get(), 2);
}

#[test]
fn new_flows_that_may_not_create_a_session_are_refused_in_the_creation_stage_as_one_at_a_time() {
    // A TCP segment without SYN and an outbound echo reply of no session: refused
    // (no session) by the creation stage's commit, as the full path refuses them.
    let frames = vec![
        (
            tcp("100.64.1.5:4000", "192.0.2.30:80", 1, "A", b"", false),
            Inside,
        ),
        (ping("100.64.1.5", "192.0.2.30", 77, 1, true, false), Inside),
        (udp("100.64.1.5:4001", "192.0.2.30:53", b"q", false), Inside),
    ];
    let (h, o) = same_as_one_at_a_time(&|| harness(""), &just(frames), false, 1000);
    assert_eq!(o.tx.len(), 1, "{}", outputs(&o));
    assert_eq!(h.worker.nat().live_sessions(), 1);
    let c = h.worker.counters();
    assert_eq!(c.dropped(DropReason::TcpNoSessionNotSyn), 1);
    assert_eq!(c.dropped(DropReason::NoMapping), 1);
    assert_eq!(c.stage_packets[CREATE].get(), 3);
}

#[test]
fn the_outside_keys_of_new_flows_are_found_by_replies_and_shared_mappings_in_and_after_their_burst()
{
    // The creation stage indexes a new session's outside keys (its own, its folded
    // mapping's) after the next creations of the burst: a reply to it later in the
    // burst, a second flow sharing its mapping (which gets a mapping record of its
    // own), and the next burst's replies and new remotes all find what one at a time
    // leaves. Flows 0-15 share four mappings; 16-23 have one each (left folded).
    let outbound = |k: usize| {
        let port = if k < 16 { 4000 + k % 4 } else { 5000 + k };
        udp(
            &format!("100.64.1.{}:{port}", 1 + k % 2),
            &format!("192.0.2.{}:53", 1 + k),
            b"q",
            false,
        )
    };
    // The outside endpoints the flows get, learnt on a third twin.
    let mut t = harness("");
    let ends: Vec<String> = (0..24)
        .map(|k| {
            let f = one(&mut t, &outbound(k), Inside, 1000, Outside);
            out(&f).src.to_string()
        })
        .collect();
    let reply = |k: usize| udp(&format!("192.0.2.{}:53", 1 + k), &ends[k], b"a", true);
    // From a remote no flow went to: a new session of the mapping (endpoint-
    // independent filtering), found by the mapping's outside key.
    let stranger = |k: usize| udp("198.51.100.9:999", &ends[k], b"s", true);
    let mut first: Frames = Vec::new();
    for k in 0..24 {
        first.push((outbound(k), Inside));
        if k % 8 == 7 {
            first.push((reply(k - 2), Outside));
            first.push((stranger(k - 1), Outside));
        }
    }
    let next: Frames = (0..24)
        .flat_map(|k| [(reply(k), Outside), (stranger(k), Outside)])
        .collect();
    let (mut a, mut b) = (harness(""), harness(""));
    for (frames, now, sent) in [(&first, 1000, 30), (&next, 1001, 48)] {
        let oa = one_at_a_time(&mut a, frames, false, now);
        let ob = as_burst(&mut b, frames, false, now);
        assert_eq!(outputs(&oa), outputs(&ob));
        assert_eq!(state(&mut a), state(&mut b));
        assert_eq!(ob.tx.len(), sent, "{}", outputs(&ob));
    }
    let c = b.worker.counters();
    assert_eq!(c.stage_packets[CREATE].get(), 24);
    assert!(c.stage_packets[TRANSLATE].get() >= 24);
}

/// An FTP control connection's commands cut across segments, in one burst with
/// other flows' frames between them: the stream engine runs on each frame as the
/// burst is processed, holds the start of a command, and sends the run it completes
/// (and a command that changes its length, adjusted after) in the order one frame at
/// a time gives, the run's segments right before the frame that completed it.
#[test]
fn split_alg_commands_in_a_burst_go_as_one_at_a_time_would() {
    let setup = |h: &mut Harness| -> Frames {
        let syn = tcp("100.64.1.4:40001", "192.0.2.21:21", 1, "S", b"", false);
        let m = out(&one(h, &syn, Inside, 1000, Outside)).src;
        let sa = tcp("192.0.2.21:21", &m.to_string(), 5, "SA", b"", true);
        one(h, &sa, Outside, 1000, Inside);
        let other = |k: u8| {
            (
                udp("100.64.1.9:5000", "192.0.2.10:53", &[b'a' + k], false),
                Inside,
            )
        };
        let ftp = |seq: u32, text: &[u8]| {
            (
                tcp("100.64.1.4:40001", "192.0.2.21:21", seq, "PA", text, false),
                Inside,
            )
        };
        let first = b"PORT 100,64,";
        let rest = b"1,4,19,137\r\nNO";
        let last = b"OP\r\nPORT 100,64,1,4,19,138\r\n";
        let at = 2 + first.len() as u32;
        vec![
            other(0),
            ftp(2, first),
            other(1),
            ftp(at, rest),
            other(2),
            ftp(at + rest.len() as u32, last),
            (
                tcp(
                    "192.0.2.21:21",
                    &m.to_string(),
                    6,
                    "PA",
                    b"200 OK\r\n",
                    true,
                ),
                Outside,
            ),
            other(3),
        ]
    };
    let (h, o) = same_as_one_at_a_time(&|| harness(""), &setup, false, 1001);
    let text: Vec<u8> =
        o.tx.iter()
            .filter(|(s, b)| *s == Outside && b.data().len() > 54 && b.data()[23] == 6)
            .flat_map(|(_, b)| b.data()[54..].to_vec())
            .collect();
    let text = String::from_utf8(text).unwrap();
    assert!(!text.contains("100,64,1,4"), "{text}");
    assert_eq!(text.matches("PORT ").count(), 2, "{text}");
    assert!(text.contains("\r\nNOOP\r\n"), "{text}");
    assert!(h.worker.counters().expectations_created.get() >= 2);
}

/// Outbound frames between every kind of address the checks of a frame single out
/// (identity hosts, addresses outside the inside prefixes, excluded, allowed and
/// reserved destinations, the pool, the ports' own and broadcast addresses, martians)
/// and ordinary ones: the burst path's shortcut past the address checks
/// (`cgnat_dataplane::ordinary`) changes nothing. Each flow's first datagram is in
/// one burst (new flows), its second in the next (the sessions found, if any).
#[test]
fn the_address_shortcut_gives_what_the_address_checks_give() {
    let extra = "identity = [\"100.65.9.0/24\"]\n\
                 exclude_destinations = [\"192.0.2.128/25\"]\n\
                 allow_destinations = [\"10.9.0.0/16\"]";
    let dsts = [
        "192.0.2.10",
        "192.0.2.200",
        "198.51.100.3",
        "198.51.100.15",
        "100.64.0.1",
        "203.0.113.1",
        "100.127.255.255",
        "203.0.113.255",
        "10.1.2.3",
        "10.9.1.1",
        "172.16.5.5",
        "169.254.1.1",
        "127.0.0.1",
        "0.1.2.3",
        "224.0.0.5",
        "255.255.255.255",
        "8.8.8.8",
    ];
    let mut flows: Vec<(String, String)> = dsts
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("100.64.1.2:{}", 5000 + i), format!("{d}:9000")))
        .collect();
    for src in ["100.65.9.5:7000", "100.128.0.1:7000", "100.63.255.254:7000"] {
        flows.push((src.to_string(), "8.8.4.4:9000".to_string()));
    }
    let burst = |n: u8| -> Frames {
        flows
            .iter()
            .map(|(s, d)| (udp(s, d, &[b'a' + n], false), Inside))
            .collect()
    };
    let (first, second) = (burst(0), burst(1));
    let (_, o) = same_as_one_at_a_time(&|| harness(extra), &just(first.clone()), false, 1001);
    assert!(!o.dropped.is_empty() && !o.tx.is_empty());
    let after_first = |h: &mut Harness| {
        as_burst(h, &first, false, 1001);
        second.clone()
    };
    let (h, o) = same_as_one_at_a_time(&|| harness(extra), &after_first, false, 1002);
    assert!(!o.dropped.is_empty() && !o.tx.is_empty());
    // The ordinary flows' second datagrams went the fast way (those to 8.8.8.8 and
    // 8.8.4.4, to 192.0.2.10, and to the allowed reserved destination).
    let c = h.worker.counters();
    assert!(
        c.stage_packets[TRANSLATE].get() >= 3,
        "{:?}",
        c.stage_packets
    );
}

/// A reload that excludes a destination and adds a pool address takes the address
/// shortcut (`cgnat_dataplane::ordinary`) with it: the burst path then sends new
/// flows to the excluded prefix untranslated and hairpins those to the new address,
/// as one frame at a time does.
#[test]
fn a_reload_rebuilds_the_address_shortcut() {
    let frames = || -> Frames {
        vec![
            (udp("100.64.1.2:5000", "8.8.8.9:9000", b"a", false), Inside),
            (udp("100.64.1.2:5001", "9.9.0.3:9000", b"b", false), Inside),
        ]
    };
    let reloaded = || {
        let mut h = harness("");
        let text = cgnat_testkit::null_ports_config(
            "pool = [\"198.51.100.0/28\", \"9.9.0.3/32\"]\n\
             exclude_destinations = [\"8.8.8.0/24\"]",
        );
        let cfg =
            cgnat_config::Config::parse(&text, "reload.toml").unwrap_or_else(|e| panic!("{e}"));
        h.reconfigure(&cfg, 1001);
        h
    };
    let (h, o) = same_as_one_at_a_time(&reloaded, &|_| frames(), false, 1002);
    // Before the reload both went the fast way's creation; after it neither did.
    assert_eq!(h.worker.counters().stage_packets[CREATE].get(), 0);
    let sent: Vec<Vec<u8>> =
        o.tx.iter()
            .map(|(_, b)| b.data()[26..34].to_vec())
            .collect();
    assert!(
        sent.contains(&vec![100, 64, 1, 2, 8, 8, 8, 9]),
        "excluded: untranslated"
    );
    let mut before = harness("");
    let o = as_burst(&mut before, &frames(), false, 1002);
    assert_eq!(before.worker.counters().stage_packets[CREATE].get(), 2);
    assert_eq!(o.tx.len(), 2);
}
