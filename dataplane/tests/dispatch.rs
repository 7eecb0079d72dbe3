//! The dispatcher of verdicts (`cgnat_dataplane::dispatch`) the runtime's worker loop,
//! the harness and replay share: every verdict kind in one burst, outputs without room,
//! and handoff between the harness's workers.

mod common;
use cgnat_config::Config;
use cgnat_dataplane::buf::{PacketBuf, VecBuf};
use cgnat_dataplane::counters::DropReason;
use cgnat_dataplane::dispatch::VecOutputs;
use cgnat_dataplane::harness::{Harness, INSIDE_MAC};
use cgnat_dataplane::nat::hash32;
use cgnat_dataplane::pipeline::Side::{self, Inside, Outside};
use cgnat_dataplane::vector;
use cgnat_dataplane::wire::checksum;
use common::*;
use std::net::Ipv4Addr;

/// `workers` workers sharing one control handler, inside hosts known.
fn harness_of(cfg: &Config, workers: u16) -> Harness {
    let h = Harness::with_workers(cfg, workers, 1000);
    for i in 1..=250u8 {
        h.neighbors
            .learn(u32::from(Ipv4Addr::new(100, 64, 1, i)), &HOST_MAC);
    }
    h
}

/// An inside host 100.64.1.x whose subscriber worker `w` of `workers` owns (no
/// steering, dynamic or port-block allocation: a hash of the address).
fn host_of(w: u16, workers: u16, skip: usize) -> String {
    (1..=250u8)
        .map(|i| Ipv4Addr::new(100, 64, 1, i))
        .filter(|a| hash32(u32::from(*a)) % u32::from(workers) == u32::from(w))
        .nth(skip)
        .expect("a host for each worker")
        .to_string()
}

/// The second fragment of `frame`'s datagram (its first carries `first_len` bytes).
fn later_fragment(frame: &[u8], first_len: usize) -> Vec<u8> {
    let mut f = frame[..34].to_vec();
    f.extend_from_slice(&frame[34 + first_len..]);
    let total = (f.len() - 14) as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f[20..22].copy_from_slice(&((first_len / 8) as u16).to_be_bytes());
    f[24] = 0;
    f[25] = 0;
    let c = checksum::finish(checksum::sum(&f[14..34]));
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

fn data(v: &[(Side, VecBuf)]) -> Vec<(Side, Vec<u8>)> {
    v.iter().map(|(s, b)| (*s, b.data().to_vec())).collect()
}

/// One burst on worker 0 of three with every verdict kind: sent on both sides, handed
/// to each of the two other workers, to the control lcore, to the worker's ALG stream
/// engine, held, dropped
/// for two reasons. Each frame lands in its own output, each is counted once, and
/// the handed frames are translated by the workers they were handed to.
#[test]
fn a_burst_of_every_verdict_is_dispatched_to_its_output_and_counted() {
    let cfg = config("");
    let mut h = harness_of(&cfg, 3);
    let (h0, h1, h2) = (host_of(0, 3, 0), host_of(1, 3, 0), host_of(2, 3, 0));
    // Before the burst: a mapping for the reply, an FTP control connection.
    let out_udp = h.inject(
        &udp(&format!("{h0}:5000"), "192.0.2.10:53", b"q", false),
        Inside,
        1000,
    );
    let mapping = out(&out_udp[0].1).src;
    let syn = tcp(&format!("{h0}:40001"), "192.0.2.10:21", 1, "S", b"", false);
    assert_eq!(h.inject(&syn, Inside, 1000)[0].0, Outside);
    let c0 = h.worker.counters().clone();
    let (tx_in, tx_out) = (c0.tx[0].get(), c0.tx[1].get());

    let to_outside = udp(&format!("{h0}:5001"), "192.0.2.11:53", b"a", false);
    let to_inside = udp("192.0.2.10:53", &mapping.to_string(), b"answer", true);
    let to_w1 = udp(&format!("{h1}:6000"), "192.0.2.12:53", b"b", false);
    let to_w2 = udp(&format!("{h2}:7000"), "192.0.2.13:53", b"c", false);
    let local = ping(&h0, "100.64.0.1", 9, 1, false, false);
    let port_cmd = tcp(
        &format!("{h0}:40001"),
        "192.0.2.10:21",
        2,
        "PA",
        format!("PORT {},19,137\r\n", h0.replace('.', ",")).as_bytes(),
        false,
    );
    let whole = udp(&format!("{h0}:5002"), "192.0.2.14:53", &[0x55; 600], false);
    let held = later_fragment(&whole, 304);
    let truncated = to_outside[..10].to_vec();
    let mut ipv6 = to_outside.clone();
    ipv6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let burst: [(&[u8], Side); 9] = [
        (&to_outside, Inside),
        (&to_inside, Outside),
        (&to_w1, Inside),
        (&to_w2, Inside),
        (&local, Inside),
        (&port_cmd, Inside),
        (&held, Inside),
        (&truncated, Inside),
        (&ipv6, Inside),
    ];
    let mut o = VecOutputs::default();
    for (frame, side) in burst {
        vector::receive(&mut h.worker, VecBuf::new(frame), side, 1001, &mut o);
    }

    let tx = data(&o.tx);
    assert_eq!(tx.len(), 3, "{tx:02x?}");
    assert_eq!(tx[0].0, Outside);
    assert_eq!(out(&tx[0].1).dst, sa("192.0.2.11:53"));
    assert_eq!(out(&tx[0].1).src.ip(), mapping.ip());
    assert_eq!(tx[1].0, Inside);
    assert_eq!(out(&tx[1].1).dst, sa(&format!("{h0}:5000")));
    // The ALG frame: rewritten by the worker's own ALG stream engine, in its place in
    // the burst, untagged, and counted sent once.
    assert_eq!(tx[2].0, Outside);
    assert_eq!(out(&tx[2].1).src.ip(), mapping.ip());
    let announced = format!("PORT {},", mapping.ip().to_string().replace('.', ","));
    let text = String::from_utf8_lossy(&tx[2].1[54..]).to_string();
    assert!(text.starts_with(&announced), "{text:?}");
    assert_eq!(
        (c0.tx[0].get() - tx_in, c0.tx[1].get() - tx_out),
        (1, 2),
        "the ALG frame is counted sent when the worker's engine sends it"
    );

    let handed: Vec<(u16, Side)> = o.handoff.iter().map(|(w, s, _)| (*w, *s)).collect();
    assert_eq!(handed, [(1, Inside), (2, Inside)]);
    assert_eq!(o.handoff[0].2.data(), &to_w1[..], "handed over untouched");
    assert_eq!(c0.handoff_out.get(), 2);

    assert_eq!(o.control.len(), 1);
    assert_eq!(o.control[0].0, Inside, "as received on");
    assert_eq!(o.control[0].1.data(), &local[..]);

    assert!(o.alg.is_empty(), "no ALG frame goes to the control lcore");

    assert_eq!(c0.fragments_held.get(), 1, "the later fragment waits");

    let dropped: Vec<DropReason> = o.dropped.iter().map(|(r, _)| *r).collect();
    assert_eq!(
        dropped,
        [DropReason::EthTruncated, DropReason::EthUnsupported]
    );
    assert_eq!(c0.dropped(DropReason::EthTruncated), 1);
    assert_eq!(c0.dropped(DropReason::EthUnsupported), 1);
    for r in [
        DropReason::TxFull,
        DropReason::RingFull,
        DropReason::ArpRingFull,
    ] {
        assert_eq!(c0.dropped(r), 0, "{r:?}");
    }

    // The handed frames, delivered as the handoff ring does: translated by their owners.
    let mut o2 = VecOutputs::default();
    for (w, side, b) in std::mem::take(&mut o.handoff) {
        vector::receive_handed(h.nth(w), b, side, 1001, &mut o2);
    }
    let tx2 = data(&o2.tx);
    assert_eq!(tx2.len(), 2);
    assert!(tx2.iter().all(|(s, f)| *s == Outside && checksums_ok(f)));
    assert_eq!(out(&tx2[0].1).dst, sa("192.0.2.12:53"));
    assert_eq!(out(&tx2[1].1).dst, sa("192.0.2.13:53"));
    for w in [1, 2] {
        let c = h.nth(w).counters().clone();
        assert_eq!((c.handoff_in.get(), c.tx[1].get()), (1, 1), "worker {w}");
        assert_eq!(c.rx[0].get(), 0, "counted received by worker 0");
    }
    assert!(o2.handoff.is_empty() && o2.dropped.is_empty());

    // The first fragment releases the held one right behind it.
    let mut first = whole[..34 + 304].to_vec();
    let total = (first.len() - 14) as u16;
    first[16..18].copy_from_slice(&total.to_be_bytes());
    first[20..22].copy_from_slice(&0x2000u16.to_be_bytes());
    first[24] = 0;
    first[25] = 0;
    let c = checksum::finish(checksum::sum(&first[14..34]));
    first[24..26].copy_from_slice(&c.to_be_bytes());
    let mut o3 = VecOutputs::default();
    vector::receive(&mut h.worker, VecBuf::new(&first), Inside, 1001, &mut o3);
    assert_eq!(
        o3.tx.len(),
        2,
        "the first fragment, then the one it released"
    );
    assert!(o3.tx.iter().all(|(s, _)| *s == Outside));
}

/// Outputs without room: each refused frame is counted dropped with its output's own
/// reason (tx burst, handoff ring, control's ARP ring; an ALG frame, which the
/// worker's own engine rewrites, meets the full tx burst), as the runtime counts a
/// full burst or ring.
#[test]
fn frames_an_output_has_no_room_for_are_counted_with_its_reason() {
    let cfg = config("");
    let mut h = harness_of(&cfg, 2);
    let (h0, h1) = (host_of(0, 2, 0), host_of(1, 2, 0));
    let syn = tcp(&format!("{h0}:40001"), "192.0.2.10:21", 1, "S", b"", false);
    assert_eq!(h.inject(&syn, Inside, 1000).len(), 1);
    let frames = [
        udp(&format!("{h0}:5001"), "192.0.2.11:53", b"a", false),
        udp(&format!("{h1}:6000"), "192.0.2.12:53", b"b", false),
        ping(&h0, "100.64.0.1", 9, 1, false, false),
        tcp(
            &format!("{h0}:40001"),
            "192.0.2.10:21",
            2,
            "PA",
            format!("PORT {},19,137\r\n", h0.replace('.', ",")).as_bytes(),
            false,
        ),
    ];
    let mut o = VecOutputs::<VecBuf> {
        room: [0; 4],
        ..VecOutputs::default()
    };
    for f in &frames {
        vector::receive(&mut h.worker, VecBuf::new(f), Inside, 1001, &mut o);
    }
    let dropped: Vec<DropReason> = o.dropped.iter().map(|(r, _)| *r).collect();
    assert_eq!(
        dropped,
        [
            DropReason::TxFull,
            DropReason::RingFull,
            DropReason::ArpRingFull,
            DropReason::TxFull
        ]
    );
    let c = h.worker.counters();
    assert_eq!(c.dropped(DropReason::TxFull), 2);
    assert_eq!(c.dropped(DropReason::RingFull), 1);
    assert_eq!(c.dropped(DropReason::ArpRingFull), 1);
    assert!(o.tx.is_empty() && o.handoff.is_empty() && o.control.is_empty() && o.alg.is_empty());
}

/// Two workers, every frame delivered to the wrong one (a device without RSS, or one
/// that hashes otherwise): each is handed to its owner through the dispatcher and
/// translated there, both ways, the state on the owner only; what the owner gets
/// directly is translated without handoff. The single-worker harness could not run
/// this (a handoff was unreachable there).
#[test]
fn two_workers_hand_misdelivered_frames_to_their_owner_which_translates_them() {
    let cfg = config("");
    let mut h = harness_of(&cfg, 2);
    for owner in [0u16, 1] {
        let wrong = 1 - owner;
        for k in 0..3 {
            let host = host_of(owner, 2, k);
            let src = format!("{host}:{}", 5000 + k);
            let o = h.inject_at(
                wrong,
                &udp(&src, "192.0.2.10:53", b"q", false),
                Inside,
                1000,
            );
            assert_eq!(o.len(), 1, "{o:02x?}");
            assert_eq!(o[0].0, Outside);
            assert!(checksums_ok(&o[0].1));
            let mapping = out(&o[0].1).src;
            assert_eq!(out(&o[0].1).dst, sa("192.0.2.10:53"));
            // The reply, also to the wrong worker: handed back to the mapping's owner.
            let reply = udp("192.0.2.10:53", &mapping.to_string(), b"a", true);
            let back = h.inject_at(wrong, &reply, Outside, 1001);
            assert_eq!(back.len(), 1, "the reply to {src} via {mapping}");
            assert_eq!(back[0].0, Inside);
            assert_eq!(out(&back[0].1).dst, sa(&src));
            assert_eq!(&back[0].1[..6], &HOST_MAC);
            assert_eq!(&back[0].1[6..12], &INSIDE_MAC);
            // To the owner directly: translated there, no handoff.
            let before = h.nth(owner).counters().handoff_in.get();
            let again = h.inject_at(owner, &reply, Outside, 1002);
            assert_eq!(again.len(), 1);
            assert_eq!(out(&again[0].1).dst, sa(&src));
            assert_eq!(h.nth(owner).counters().handoff_in.get(), before);
        }
    }
    for w in [0u16, 1] {
        let c = h.nth(w).counters().clone();
        assert_eq!(c.handoff_out.get(), 6, "worker {w}: 3 out, 3 replies");
        assert_eq!(c.handoff_in.get(), 6, "worker {w}");
        assert_eq!(c.in2out.get(), 3, "worker {w}");
        assert_eq!(c.out2in.get(), 6, "worker {w}");
        assert_eq!(
            h.nth(w).nat().live_sessions(),
            3,
            "worker {w}: its own only"
        );
    }
}

/// A hairpin that starts with a handoff: subscriber A's frame reaches the wrong worker
/// and is handed to A's owner, whose translation finds B's public mapping on the other
/// worker and hands it on again (as from outside) to B's owner, which delivers it to
/// B. The runtime's handed-frame path used to drop that second handoff (it sent on
/// only what the first worker's verdicts said); the one dispatcher sends it on.
#[test]
fn a_hairpin_after_a_handoff_is_handed_on_to_the_mapping_owner() {
    let cfg = config("");
    let mut h = harness_of(&cfg, 2);
    let (a, b) = (host_of(1, 2, 0), host_of(0, 2, 0));
    let o = h.inject_at(
        0,
        &udp(&format!("{b}:7000"), "192.0.2.10:53", b"", false),
        Inside,
        1000,
    );
    let b_public = out(&o[0].1).src;
    let f = udp(&format!("{a}:5000"), &b_public.to_string(), b"hello", false);
    let o = h.inject_at(0, &f, Inside, 1001);
    assert_eq!(o.len(), 1, "{o:02x?}");
    assert_eq!(o[0].0, Inside);
    let got = out(&o[0].1);
    assert_eq!(got.dst, sa(&format!("{b}:7000")));
    assert_eq!(
        got.src.ip().octets()[..3],
        [198, 51, 100],
        "A's public address"
    );
    let (c0, c1) = (h.nth(0).counters().clone(), h.nth(1).counters().clone());
    assert_eq!(
        (c0.handoff_out.get(), c1.handoff_in.get()),
        (1, 1),
        "A to its owner"
    );
    assert_eq!(
        (c1.handoff_out.get(), c0.handoff_in.get()),
        (1, 1),
        "on to B's owner"
    );
    assert_eq!(
        c0.dropped(DropReason::RingFull) + c1.dropped(DropReason::RingFull),
        0
    );
}

/// Issue 14: with two workers, a PORT command split across segments that the control
/// lcore holds, then releases when its time runs out, goes back through the worker
/// that sent it (and is counted as sent by it), whichever worker the control lcore
/// was serving when the time ran out.
#[test]
fn a_held_ftp_run_released_on_timeout_goes_back_through_the_worker_it_came_from() {
    let cfg = config("");
    let mut h = harness_of(&cfg, 2);
    for owner in [0u16, 1] {
        let other = 1 - owner;
        let client = format!("{}:40001", host_of(owner, 2, 0));
        let t = 1000 + 10 * u32::from(owner);
        let syn = tcp(&client, "192.0.2.10:21", 1, "S", b"", false);
        assert_eq!(h.inject_at(owner, &syn, Inside, t).len(), 1);
        let start = tcp(&client, "192.0.2.10:21", 2, "PA", b"PORT 100,64,", false);
        assert!(
            h.inject_at(owner, &start, Inside, t).is_empty(),
            "the start of the PORT is held"
        );
        // The other worker passes traffic of its own meanwhile.
        let mine = format!("{}:5000", host_of(other, 2, 1));
        let q = udp(&mine, "192.0.2.11:53", b"q", false);
        assert_eq!(h.inject_at(other, &q, Inside, t).len(), 1);
        let sent = |h: &mut Harness, w: u16| h.nth(w).counters().tx[Outside as usize].get();
        let before = (sent(&mut h, owner), sent(&mut h, other));
        let out = h.timer_frames(t + 3);
        assert_eq!(out.len(), 1, "the held segment is released: {out:02x?}");
        assert_eq!(out[0].0, Outside);
        assert_eq!(&out[0].1[54..], b"PORT 100,64,");
        assert_eq!(
            (sent(&mut h, owner), sent(&mut h, other)),
            (before.0 + 1, before.1),
            "worker {owner} sent it, worker {other} did not"
        );
    }
}
