//! Fragments (RFC 4787 REQ-14, RFC 6864), packets too big (RFC 1191), and held
//! unsolicited SYNs (RFC 5382 REQ-4), through the whole pipeline.

mod common;
use cgnat_dataplane::alg_stream::Outcome;
use cgnat_dataplane::buf::VecBuf;
use cgnat_dataplane::counters::DropReason;
use cgnat_dataplane::pipeline::Side::{Inside, Outside};
use cgnat_dataplane::pipeline::{Side, Verdict, Worker};
use cgnat_dataplane::wire::checksum;
use common::*;

/// Splits a frame's IPv4 datagram in two fragments, the first carrying `first_len`
/// payload bytes (a multiple of 8).
fn split(frame: &[u8], first_len: usize) -> (Vec<u8>, Vec<u8>) {
    let mut f = fragment(frame, &[first_len]);
    let b = f.pop().unwrap();
    (f.pop().unwrap(), b)
}

/// Reassembles two translated fragments and checks the UDP checksum of the whole.
fn reassembled_udp_ok(a: &[u8], b: &[u8]) -> bool {
    udp_ok(&reassemble(&[a.to_vec(), b.to_vec()]))
}

fn ident(f: &[u8]) -> u16 {
    u16::from_be_bytes([f[18], f[19]])
}

#[test]
fn rfc4787_req14_fragments_in_order_are_all_translated() {
    let mut h = harness("");
    let whole = with_ident(
        udp("100.64.1.2:5000", "192.0.2.10:53", &[0x5a; 600], false),
        777,
    );
    let (f1, f2) = split(&whole, 304);
    let o1 = one(&mut h, &f1, Inside, 1000, Outside);
    let o2 = one(&mut h, &f2, Inside, 1000, Outside);
    assert_eq!(
        o1[26..30],
        o2[26..30],
        "both fragments from the same pool address"
    );
    assert_eq!(o1[26], 198);
    assert_eq!(ident(&o1), ident(&o2), "one identifier for the datagram");
    assert_ne!(
        ident(&o1),
        777,
        "RFC 6864: fragmented datagrams get a new identifier"
    );
    assert!(
        reassembled_udp_ok(&o1, &o2),
        "the reassembled datagram's UDP checksum holds"
    );
    assert_eq!(checksum::fold(checksum::sum(&o2[14..34])), 0xffff);
    assert_eq!(o2[22], 63, "TTL decremented on later fragments too");
}

#[test]
fn rfc4787_req14_fragments_out_of_order_are_held_then_released() {
    let mut h = harness("");
    let whole = with_ident(
        udp("100.64.1.2:5000", "192.0.2.10:53", &[0x33; 900], false),
        4242,
    );
    let (f1, f2) = split(&whole, 504);
    none(&mut h, &f2, Inside, 1000);
    assert_eq!(h.counters.fragments_held.get(), 1);
    let out = h.inject(&f1, Inside, 1000);
    assert_eq!(out.len(), 2, "the first fragment releases the held one");
    let (a, b) = (&out[0].1, &out[1].1);
    assert!(out.iter().all(|(s, _)| *s == Outside));
    assert!(reassembled_udp_ok(a, b));
    assert_eq!(ident(a), ident(b));
}

#[test]
fn inbound_fragments_reach_the_inside_host() {
    let mut h = harness("");
    let m = out(&one(
        &mut h,
        &udp("100.64.1.2:5000", "192.0.2.10:53", b"q", false),
        Inside,
        1000,
        Outside,
    ));
    let whole = with_ident(
        udp("192.0.2.10:53", &m.src.to_string(), &[7; 1000], true),
        99,
    );
    let (f1, f2) = split(&whole, 496);
    none(&mut h, &f2, Outside, 1001);
    let out = h.inject(&f1, Outside, 1001);
    assert_eq!(out.len(), 2);
    for (side, f) in &out {
        assert_eq!(*side, Inside);
        assert_eq!(&f[30..34], &[100, 64, 1, 2]);
    }
    let first = out
        .iter()
        .find(|(_, f)| u16::from_be_bytes([f[20], f[21]]) & 0x1fff == 0)
        .unwrap();
    let later = out
        .iter()
        .find(|(_, f)| u16::from_be_bytes([f[20], f[21]]) & 0x1fff != 0)
        .unwrap();
    assert!(reassembled_udp_ok(&first.1, &later.1));
}

#[test]
fn held_fragments_time_out_and_are_counted() {
    let mut h = harness("");
    let whole = udp("100.64.1.2:5000", "192.0.2.10:53", &[1; 600], false);
    let (_, f2) = split(&whole, 304);
    none(&mut h, &f2, Inside, 1000);
    h.expire(1016);
    assert_eq!(h.counters.dropped(DropReason::FragmentTimeout), 1);
}

#[test]
fn rfc1191_too_big_with_df_gets_fragmentation_needed() {
    let mut h = harness("");
    let big = udp("100.64.1.2:5000", "192.0.2.10:53", &[0; 1600], false);
    let o = one(&mut h, &big, Inside, 1000, Inside);
    assert_eq!(
        &o[34..36],
        &[3, 4],
        "destination unreachable, fragmentation needed"
    );
    assert_eq!(u16::from_be_bytes([o[40], o[41]]), 1500, "next-hop MTU");
    assert_eq!(h.counters.dropped(DropReason::TooBig), 1);
    assert!(checksums_ok(&o));
}

#[test]
fn rfc5382_req4_unsolicited_syn_is_held_then_answered_with_port_unreachable() {
    let mut h = harness("");
    none(
        &mut h,
        &tcp("192.0.2.10:4444", "198.51.100.3:2000", 1, "S", b"", true),
        Outside,
        1000,
    );
    assert_eq!(h.counters.dropped(DropReason::SynHeld), 1);
    assert!(
        h.timer_frames(1005).is_empty(),
        "nothing said for 6 seconds"
    );
    let f = h.timer_frames(1006);
    assert_eq!(f.len(), 1);
    let (side, icmp) = &f[0];
    assert_eq!(*side, Outside);
    let o = out(icmp);
    assert_eq!(*o.src.ip(), ip("198.51.100.3"));
    assert_eq!(*o.dst.ip(), ip("192.0.2.10"));
    assert_eq!(&icmp[34..36], &[3, 3], "port unreachable");
    assert_eq!(&icmp[42 + 12..42 + 16], &[192, 0, 2, 10], "quotes the SYN");
}

#[test]
fn rfc5382_req4_held_syn_is_forgotten_when_the_inside_host_opens_too() {
    let mut h = harness("filtering = \"address-and-port-dependent\"");
    let m = out(&one(
        &mut h,
        &tcp("100.64.1.2:40000", "192.0.2.10:80", 1, "S", b"", false),
        Inside,
        1000,
        Outside,
    ));
    // A SYN from another remote to the same mapping is filtered and held...
    none(
        &mut h,
        &tcp("192.0.2.20:5555", &m.src.to_string(), 9, "S", b"", true),
        Outside,
        1001,
    );
    // ...then the inside host opens to that remote (simultaneous open): silence.
    let o = out(&one(
        &mut h,
        &tcp("100.64.1.2:40000", "192.0.2.20:5555", 1, "S", b"", false),
        Inside,
        1002,
        Outside,
    ));
    assert_eq!(o.src, m.src, "same mapping (endpoint-independent)");
    assert!(h.timer_frames(1010).is_empty());
    // The remote's retransmitted SYN now completes the simultaneous open.
    one(
        &mut h,
        &tcp("192.0.2.20:5555", &m.src.to_string(), 9, "S", b"", true),
        Outside,
        1003,
        Inside,
    );
}

#[test]
fn inbound_syn_drop_mode_answers_nothing() {
    let mut h = harness("inbound_syn = \"drop\"");
    none(
        &mut h,
        &tcp("192.0.2.10:4444", "198.51.100.3:2000", 1, "S", b"", true),
        Outside,
        1000,
    );
    assert_eq!(h.counters.dropped(DropReason::NoMapping), 1);
    assert!(h.timer_frames(1010).is_empty());
}

// ---- issue 19: fragments as a weapon ------------------------------------------

use cgnat_dataplane::frag::{
    MAX_DATAGRAMS, MAX_DATAGRAMS_PER_SOURCE, MAX_HELD, MAX_HELD_PER_SOURCE,
};
use cgnat_dataplane::harness::Harness;

/// The first fragment of a 600-byte UDP datagram with identifier `id`.
fn first_of(src: &str, dst: &str, id: u16, inbound: bool) -> Vec<u8> {
    split(&with_ident(udp(src, dst, &[1; 600], inbound), id), 304).0
}

/// The server's fragmented answer to mapping `m`, its later fragment first: both reach
/// the inside host.
fn server_datagram_out_of_order_is_delivered(h: &mut Harness, m: std::net::SocketAddrV4) {
    let whole = udp("192.0.2.10:53", &m.to_string(), &[7; 1000], true);
    let (f1, f2) = split(&with_ident(whole, 99), 496);
    none(h, &f2, Outside, 1001);
    let o = h.inject(&f1, Outside, 1001);
    assert_eq!(o.len(), 2, "both fragments delivered");
}

/// Issue 19 item 4: a first fragment counted `fragment_table_full` was still sent:
/// the rest of its datagram could never follow. Now it is dropped with it.
#[test]
fn a_first_fragment_the_table_cannot_record_is_not_sent() {
    let mut h = harness("");
    let per = MAX_DATAGRAMS_PER_SOURCE;
    for s in 0..MAX_DATAGRAMS / per {
        let src = format!("100.64.3.{}:5000", s + 1);
        for id in 0..per {
            h.inject(
                &first_of(&src, "192.0.2.10:53", id as u16, false),
                Inside,
                1000,
            );
        }
    }
    let before = h.counters.dropped(DropReason::FragmentTableFull);
    none(
        &mut h,
        &first_of("100.64.4.1:5000", "192.0.2.10:53", 1, false),
        Inside,
        1000,
    );
    assert_eq!(
        h.counters.dropped(DropReason::FragmentTableFull),
        before + 1
    );
}

/// Issue 19 item 4: 4,096 first fragments of one subscriber stopped another's
/// fragmented datagrams. A source records at most its share.
#[test]
fn one_subscriber_cannot_take_every_fragment_record() {
    let mut h = harness("");
    for id in 0..MAX_DATAGRAMS as u16 {
        h.inject(
            &first_of("100.64.3.1:5000", "192.0.2.10:53", id, false),
            Inside,
            1000,
        );
    }
    let whole = with_ident(udp("100.64.3.2:5000", "192.0.2.10:53", &[5; 600], false), 9);
    let (f1, f2) = split(&whole, 304);
    let o1 = one(&mut h, &f1, Inside, 1000, Outside);
    let o2 = one(&mut h, &f2, Inside, 1000, Outside);
    assert!(reassembled_udp_ok(&o1, &o2));
    assert_eq!(
        h.counters.dropped(DropReason::FragmentSourceLimit),
        (MAX_DATAGRAMS - MAX_DATAGRAMS_PER_SOURCE) as u64
    );
}

/// Issue 19 item 4: fragments to addresses that are not ours were held, and 256 of
/// them cost a real inbound datagram its fragment. The destination is checked first.
#[test]
fn fragments_to_foreign_addresses_are_never_held() {
    let mut h = harness("");
    for id in 0..MAX_HELD as u16 {
        let (_, f2) = split(
            &with_ident(
                udp("192.0.2.66:53", "203.0.113.77:4000", &[2; 600], true),
                id,
            ),
            304,
        );
        none(&mut h, &f2, Outside, 1000);
    }
    let m = open_udp(&mut h, 1000);
    server_datagram_out_of_order_is_delivered(&mut h, m);
    assert_eq!(h.counters.fragments_held.get(), 1, "the server's alone");
    assert_eq!(
        h.counters.dropped(DropReason::NotOurAddress),
        MAX_HELD as u64
    );
}

/// Issue 19 item 4: one remote filling the held fragments (to a real pool address)
/// cost another remote's datagram its fragment. A source holds at most its share.
#[test]
fn one_remote_cannot_take_every_held_fragment() {
    let mut h = harness("");
    let m = open_udp(&mut h, 1000);
    for id in 0..MAX_HELD as u16 {
        let (_, f2) = split(
            &with_ident(udp("192.0.2.66:53", &m.to_string(), &[2; 600], true), id),
            304,
        );
        none(&mut h, &f2, Outside, 1000);
    }
    server_datagram_out_of_order_is_delivered(&mut h, m);
    assert_eq!(
        h.counters.fragments_held.get(),
        MAX_HELD_PER_SOURCE as u64 + 1
    );
    assert_eq!(
        h.counters.dropped(DropReason::FragmentSourceLimit),
        (MAX_HELD - MAX_HELD_PER_SOURCE) as u64
    );
}

/// The media port the rewritten SDP of `whole` (a frame) announces.
fn media_port(whole: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(&whole[42..]);
    let at = text.find("m=audio ").unwrap() + 8;
    text[at..].split(' ').next().unwrap().parse().unwrap()
}

/// Issue 19 item 11: a fragmented SIP INVITE over UDP passed untranslated (the inside
/// address in its Via, Contact and SDP) and opened no pinhole; then it was dropped
/// whole. Now its fragments are held until the datagram is whole, the ALG reads and
/// rewrites it, and it leaves translated: as one packet when it fits the MTU, else
/// fragmented again (a datagram larger than one buffer too). In order and out of
/// order, in 2, 3 and 4 fragments; the RTP pinhole lets the callee's media in.
#[test]
fn a_fragmented_sip_invite_is_reassembled_rewritten_and_opens_its_pinhole() {
    let mut h = harness("[alg]\nsip = { enabled = true, ports = [5060] }");
    let cases: [(usize, &[usize], &[usize]); 7] = [
        (1200, &[600], &[0, 1]),
        (1200, &[600], &[1, 0]),
        (2000, &[504, 1000], &[0, 1, 2]),
        (2000, &[504, 1000], &[2, 0, 1]),
        (2000, &[1000, 1480], &[1, 2, 0]),
        (5000, &[1480, 2960, 4440], &[3, 1, 0, 2]),
        // Two full fragments that the rewrite makes three (a buffer more).
        (2960 - 8 - 4, &[1480], &[0, 1]),
    ];
    let mut now = 1000;
    for (n, &(size, cuts, order)) in cases.iter().enumerate() {
        now += 1;
        let media = 40000 + 2 * n as u16;
        let frags = fragment(&with_ident(invite(media, size), 7 + n as u16), cuts);
        let mut got = Vec::new();
        for &i in order {
            got.extend(h.inject(&frags[i], Inside, now));
        }
        let frames: Vec<Vec<u8>> = got.iter().map(|(_, f)| f.clone()).collect();
        assert!(!frames.is_empty(), "case {n}: drops {:?}", h.counters.drops);
        assert!(got.iter().all(|(s, _)| *s == Outside));
        for f in &frames {
            assert!(
                !contains(f, b"100.64.1.2"),
                "case {n}: no inside address leaves"
            );
            assert!(f.len() - 14 <= 1500, "case {n}: within the MTU");
        }
        let whole = if frames.len() == 1 {
            frames[0].clone()
        } else {
            reassemble(&frames)
        };
        let expect = match size {
            ..=1400 => 1,
            2948 => 3,
            s => (s + 8).div_ceil(1480),
        };
        assert_eq!(frames.len(), expect, "case {n}: packets out");
        assert!(
            udp_ok(&whole),
            "case {n}: the UDP checksum covers the whole"
        );
        assert!(contains(&whole, b"c=IN IP4 198.51.100."));
        let text = String::from_utf8_lossy(&whole[42..]).to_string();
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        assert!(text.contains(&format!("Content-Length: {}\r\n", body.len())));
        // The callee's media reaches the caller through the pinhole.
        let pub_addr = std::net::Ipv4Addr::new(whole[26], whole[27], whole[28], whole[29]);
        let rtp = udp(
            "192.0.2.20:30000",
            &format!("{pub_addr}:{}", media_port(&whole)),
            b"rtp",
            true,
        );
        let back = out(&one(&mut h, &rtp, Outside, now, Inside));
        assert_eq!(back.dst, sa(&format!("100.64.1.2:{media}")), "case {n}");
    }
    assert_eq!(h.counters.fragments_reassembled.get(), cases.len() as u64);
    assert_eq!(h.counters.fragments_refragmented.get(), 5);
    assert_eq!(h.counters.dropped(DropReason::AlgFragment), 0);
}

/// A TFTP read request in fragments: reassembled, the TFTP ALG's expectation lets the
/// server answer from its new port, and the request leaves whole, translated.
#[test]
fn a_fragmented_tftp_read_request_is_reassembled_and_its_answer_let_in() {
    let mut h =
        harness("filtering = \"address-and-port-dependent\"\n[alg]\ntftp = { enabled = true }");
    let mut rrq = b"\x00\x01".to_vec();
    rrq.extend_from_slice("dir/".repeat(150).as_bytes());
    rrq.extend_from_slice(b"file\x00octet\x00blksize\x001428\x00");
    let whole = with_ident(udp("100.64.1.2:44935", "192.0.2.10:69", &rrq, false), 31);
    let frags = fragment(&whole, &[200, 400]);
    none(&mut h, &frags[2], Inside, 1000);
    none(&mut h, &frags[0], Inside, 1000);
    let sent = one(&mut h, &frags[1], Inside, 1000, Outside);
    assert_eq!(sent.len(), whole.len(), "one packet: it fits the MTU");
    assert!(udp_ok(&sent));
    assert_eq!(&sent[42..], &rrq[..]);
    let m = out(&sent).src;
    assert_eq!(h.counters.expectations_created.get(), 1);
    tftp_answer_reaches_client(&mut h, m, 1000);
}

/// Fragments of an ALG's datagram whose other fragments never come are held no
/// longer than the timeout, counted; and the bounds refuse, counted: a datagram over
/// `MAX_REASSEMBLED`, a source over its bytes, the worker over its bytes.
#[test]
fn reassembly_times_out_and_its_bounds_refuse_counted() {
    use cgnat_dataplane::frag::{MAX_REASSEMBLED, REASSEMBLY_BYTES, REASSEMBLY_BYTES_PER_SOURCE};
    let mut h = harness("[alg]\nsip = { enabled = true, ports = [5060] }");
    let frags = fragment(&with_ident(invite(41000, 2000), 50), &[504, 1000]);
    none(&mut h, &frags[0], Inside, 1000);
    none(&mut h, &frags[2], Inside, 1000);
    h.expire(1000 + 16);
    assert_eq!(
        h.counters.dropped(DropReason::ReassemblyTimeout),
        2,
        "{:?} held {}",
        h.counters.drops,
        h.counters.fragments_held.get()
    );
    // The last fragment alone later: held, and it times out too.
    none(&mut h, &frags[1], Inside, 1017);
    h.expire(1017 + 16);
    assert_eq!(
        h.counters.dropped(DropReason::FragmentTimeout)
            + h.counters.dropped(DropReason::ReassemblyTimeout),
        3
    );

    // Too big: a fragment that ends past MAX_REASSEMBLED refuses the datagram.
    let big = with_ident(invite(41002, 2000), 51);
    let f = fragment(&big, &[504]);
    none(&mut h, &f[0], Inside, 1100);
    let mut far = f[1].clone();
    let off = ((MAX_REASSEMBLED / 8) as u16) | 0x2000;
    far[20..22].copy_from_slice(&off.to_be_bytes());
    let far = with_ident(far, 51);
    none(&mut h, &far, Inside, 1100);
    assert_eq!(h.counters.dropped(DropReason::ReassemblyTooBig), 1);
    assert_eq!(
        h.counters.dropped(DropReason::AlgFragment),
        1,
        "its first fragment goes"
    );
    none(&mut h, &f[1], Inside, 1100);
    assert_eq!(
        h.counters.dropped(DropReason::AlgFragment),
        2,
        "and the rest"
    );

    // Bytes: first fragments of datagrams that never complete, from one source and
    // then from many; each source stops at its share, the worker at its total.
    let first_of_invite = |host: u8, id: u16| {
        let mut frame = invite(42000, 3000);
        frame[29] = host;
        frame[24] = 0;
        frame[25] = 0;
        let c = checksum::finish(checksum::sum(&frame[14..34]));
        frame[24..26].copy_from_slice(&c.to_be_bytes());
        fragment(&with_ident(frame, id), &[1400]).remove(0)
    };
    let per = first_of_invite(2, 0).len();
    let mut refused = 0;
    for i in 0..(REASSEMBLY_BYTES_PER_SOURCE / per + 2) {
        h.inject(&first_of_invite(2, 100 + i as u16), Inside, 1200);
    }
    refused += 2;
    assert_eq!(h.counters.dropped(DropReason::ReassemblyLimit), refused);
    let per_source = REASSEMBLY_BYTES_PER_SOURCE / per;
    let sources = REASSEMBLY_BYTES / (per_source * per);
    for host in 3..(3 + sources as u8) {
        for i in 0..per_source {
            h.inject(&first_of_invite(host, 300 + i as u16), Inside, 1200);
        }
    }
    assert!(
        h.counters.dropped(DropReason::ReassemblyLimit) > refused,
        "the worker's total binds before every source has its share"
    );
    assert_eq!(h.counters.dropped(DropReason::AlgFragment), 2);
}

/// A later fragment carries no ICMP header: bytes that look like a redirect's type
/// there are data, and the fragment is translated like the rest of its datagram.
#[test]
fn a_later_fragment_of_an_echo_is_not_taken_for_a_redirect() {
    let mut h = harness("");
    let mut whole = Vec::new();
    etherparse::PacketBuilder::ethernet2(HOST_MAC, cgnat_dataplane::harness::INSIDE_MAC)
        .ipv4([100, 64, 1, 2], [192, 0, 2, 10], 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut whole, &[5; 600])
        .unwrap();
    let (f1, f2) = split(&with_ident(whole, 3), 304);
    one(&mut h, &f1, Inside, 1000, Outside);
    one(&mut h, &f2, Inside, 1000, Outside);
    assert_eq!(h.counters.dropped(DropReason::IcmpRedirect), 0);
}

/// `n` workers of `cfg` (the inside host 100.64.1.2 known; their ALG stream engines'
/// buffers for more fragments from Vecs).
fn appliance(cfg: &cgnat_config::Config, n: u16) -> Vec<Worker<VecBuf>> {
    let (mut ws, neighbors) = build_workers(cfg, n, None, None);
    neighbors.learn(u32::from(ip("100.64.1.2")), &HOST_MAC);
    for w in &mut ws {
        w.set_alg_alloc(Box::new(|| Some(VecBuf::new(&[]))));
    }
    ws
}

/// Drives `frame` into worker `w` as the runtime does: handoffs followed (in order),
/// held frames held, released fragments sent or handed on, ALG frames through the
/// worker's ALG stream engine. Returns what left.
fn drive(
    ws: &mut [Worker<VecBuf>],
    w: usize,
    frame: &[u8],
    from: Side,
    now: u32,
) -> Vec<(Side, Vec<u8>)> {
    let mut queue = std::collections::VecDeque::from([(w, VecBuf::new(frame), from, false)]);
    let mut out = Vec::new();
    while let Some((w, mut b, side, handed)) = queue.pop_front() {
        let v = if handed {
            ws[w].process_handed(&mut b, side, now)
        } else {
            ws[w].process(&mut b, side, now)
        };
        let mut to_alg = Vec::new();
        match v {
            Verdict::Tx(s) => out.push((s, b.to_vec())),
            Verdict::Hold => ws[w].hold(b),
            Verdict::Handoff(t, s) => queue.push_back((usize::from(t), b, s, true)),
            Verdict::Alg(s) => to_alg.push((b, s)),
            _ => {}
        }
        while let Some((b, s)) = ws[w].take_ready() {
            out.push((s, b.to_vec()));
        }
        while let Some((b, t, s)) = ws[w].take_handoff() {
            queue.push_back((usize::from(t), b, s, true));
        }
        while let Some(a) = ws[w].take_alg() {
            to_alg.push(a);
        }
        for (mut b, s) in to_alg {
            match ws[w].alg_frame(&mut b, s) {
                Outcome::Send => out.push((s, b.to_vec())),
                Outcome::Hold => ws[w].hold_alg(b),
                Outcome::Drop(_) => {}
            }
            while let Some((b, s)) = ws[w].take_alg_ready() {
                out.push((s, b.to_vec()));
            }
        }
    }
    out
}

/// With several workers an outside datagram's fragments reach any worker (a device
/// spreads fragments on their addresses, later fragments carry no port): the first
/// went to the owner of the destination port and the others stayed where they
/// arrived, held until they timed out. Now every fragment goes first to one worker
/// chosen by the datagram, which hands them to the owner once the first has named
/// it: all arrive, first or later fragments first, on right or wrong workers.
#[test]
fn outside_fragments_reach_the_owner_whichever_worker_receives_them() {
    let cfg = config("");
    for n in [2u16, 3] {
        let mut ws = appliance(&cfg, n);
        let first = drive(
            &mut ws,
            0,
            &udp("100.64.1.2:5000", "192.0.2.10:53", b"q", false),
            Inside,
            1000,
        );
        assert_eq!(first.len(), 1);
        let m = out(&first[0].1).src;
        let owner = (0..usize::from(n))
            .find(|&w| ws[w].nat().live_sessions() > 0)
            .unwrap();
        let orders: [[usize; 3]; 4] = [[0, 1, 2], [2, 1, 0], [1, 0, 2], [2, 0, 1]];
        let mut id = 100u16;
        for order in orders {
            for shift in 1..=n {
                id += 1;
                let whole = with_ident(
                    udp("192.0.2.10:53", &m.to_string(), &[id as u8; 1400], true),
                    id,
                );
                let frags = fragment(&whole, &[496, 1000]);
                let mut got = Vec::new();
                for (k, &i) in order.iter().enumerate() {
                    // Mostly not the owner: the worker a device hashing addresses picks.
                    let w = (owner + usize::from(shift) + k) % usize::from(n);
                    got.extend(drive(&mut ws, w, &frags[i], Outside, 1001));
                }
                assert_eq!(
                    got.len(),
                    3,
                    "{n} workers, order {order:?}, shift {shift}: every fragment leaves"
                );
                assert!(got
                    .iter()
                    .all(|(s, f)| *s == Inside && f[30..34] == [100, 64, 1, 2]));
                let frames: Vec<Vec<u8>> = got.into_iter().map(|(_, f)| f).collect();
                let whole_out = reassemble(&frames);
                assert!(udp_ok(&whole_out), "the datagram's checksum holds");
                assert_eq!(u16::from_be_bytes([whole_out[36], whole_out[37]]), 5000);
            }
        }
        let timed_out: u64 = ws
            .iter()
            .map(|w| w.counters().dropped(DropReason::FragmentTimeout))
            .sum();
        assert_eq!(timed_out, 0);
    }
}

/// An FTP command in a TCP segment fragmented at the IP layer is reassembled the same
/// way: the PORT after a run of other commands is rewritten (no inside address
/// leaves) and its data connection comes in under the strictest filtering.
#[test]
fn an_ftp_port_in_a_fragmented_segment_is_rewritten() {
    let mut h = harness("filtering = \"address-and-port-dependent\"");
    connect(&mut h, "100.64.1.2:40000", "192.0.2.10:21", 500);
    let mut text = "NOOP\r\n".repeat(150).into_bytes();
    text.extend_from_slice(b"PORT 100,64,1,2,19,137\r\n");
    let seg = tcp("100.64.1.2:40000", "192.0.2.10:21", 101, "PA", &text, false);
    let frags = fragment(&with_ident(seg, 77), &[504]);
    none(&mut h, &frags[1], Inside, 1001);
    let sent = h.inject(&frags[0], Inside, 1001);
    assert_eq!(sent.len(), 1, "one packet: it fits the MTU");
    let o = &sent[0].1;
    assert!(!contains(o, b"100,64,1,2"));
    let tail = String::from_utf8_lossy(&o[54 + 900..]).to_string();
    let at = tail.find("PORT ").unwrap();
    let nums: Vec<u16> = tail[at + 5..tail.len() - 2]
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(nums[..3], [198, 51, 100]);
    assert!(checksums_ok(o));
    let data = format!("198.51.100.{}:{}", nums[3], nums[4] << 8 | nums[5]);
    let syn = out(&one(
        &mut h,
        &tcp("192.0.2.10:20", &data, 7, "S", b"", true),
        Outside,
        1002,
        Inside,
    ));
    assert_eq!(syn.dst, sa("100.64.1.2:5001"));
}

/// Both together, with several workers: a callee's SIP answer whose SDP makes it
/// larger than the MTU arrives in fragments on any worker; they reach the worker that
/// owns the caller's mapping, are reassembled there, rewritten by its ALG stream engine
/// (the caller's own address back in Via, From and Call-ID) and delivered whole.
#[test]
fn a_fragmented_sip_answer_reaches_the_owner_and_is_rewritten_with_several_workers() {
    let cfg = config("[alg]\nsip = { enabled = true, ports = [5060] }");
    for n in [2u16, 3] {
        let mut ws = appliance(&cfg, n);
        let sent = drive(&mut ws, 0, &invite(30000, 700), Inside, 1000);
        assert_eq!(sent.len(), 1);
        let sig = out(&sent[0].1).src;
        let pub_ip = sig.ip().to_string();
        let owner = (0..usize::from(n))
            .find(|&w| ws[w].nat().live_sessions() > 0)
            .unwrap();
        let sdp = format!(
            "v=0\r\nc=IN IP4 192.0.2.30\r\nm=audio 40000 RTP/AVP 0\r\na=x-pad:{}\r\n",
            "p".repeat(1500)
        );
        let resp = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {pub_ip}:{p};branch=z9hG4bK-30000;rport={p};received={pub_ip}\r\nFrom: <sip:alice@{pub_ip}:{p}>;tag=a1\r\nTo: <sip:bob@192.0.2.20>;tag=b1\r\nCall-ID: frag30000@{pub_ip}\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@192.0.2.20>\r\nContent-Type: application/sdp\r\nContent-Length: {l}\r\n\r\n{sdp}",
            p = sig.port(),
            l = sdp.len()
        );
        for (k, order) in [[0usize, 1, 2], [2, 1, 0], [1, 2, 0]].iter().enumerate() {
            let whole = with_ident(
                udp("192.0.2.20:5060", &sig.to_string(), resp.as_bytes(), true),
                900 + k as u16,
            );
            let frags = fragment(&whole, &[504, 1000]);
            let mut got = Vec::new();
            for (j, &i) in order.iter().enumerate() {
                let w = (owner + 1 + j) % usize::from(n);
                got.extend(drive(&mut ws, w, &frags[i], Outside, 1001));
            }
            let frames: Vec<Vec<u8>> = got.iter().map(|(_, f)| f.clone()).collect();
            assert_eq!(
                frames.len(),
                2,
                "{n} workers, order {order:?}: two fragments in"
            );
            assert!(got.iter().all(|(s, _)| *s == Inside));
            let back = reassemble(&frames);
            assert!(udp_ok(&back));
            assert_eq!(&back[30..34], &[100, 64, 1, 2]);
            assert!(contains(&back, b"Via: SIP/2.0/UDP 100.64.1.2:5060;"));
            assert!(
                !contains(&back, pub_ip.as_bytes()),
                "{n} workers: rewritten"
            );
        }
        assert_eq!(ws[owner].counters().fragments_reassembled.get(), 3);
    }
}
