//! PPTP through the whole pipeline (no EAL): enhanced GRE (version 1) of a PPTP call
//! translated by the call table while the PPTP ALG is on (the pool address out, the
//! subscriber and its own call ID back), dropped and counted (`gre_no_call`) without a
//! call; plain GRE (version 0) still by address alone, and GRE version 1 too while
//! the ALG is off.

mod common;
use cgnat_alg::pptp::{message, msg};
use cgnat_dataplane::counters::{ContractEvent, DropReason};
use cgnat_dataplane::harness::Harness;
use cgnat_dataplane::pipeline::Side::{Inside, Outside};
use cgnat_dataplane::wire::checksum;
use common::*;
use etherparse::{SlicedPacket, TransportSlice};
use std::net::{Ipv4Addr, SocketAddrV4};

const GRE: u8 = 47;
const SERVER: &str = "192.0.2.10";
const ON: &str = "[alg]\npptp = { enabled = true }\n";

/// An enhanced GRE packet (RFC 2637 4.1): key and sequence number present, version
/// 1, protocol type PPP, the call ID in the key, a PPP body.
fn gre1(call: u16, seq: u32) -> Vec<u8> {
    let body = [0xff, 0x03, 0x00, 0x21, 0x45, 0x00];
    let mut g = vec![0x30, 0x01, 0x88, 0x0b];
    g.extend_from_slice(&(body.len() as u16).to_be_bytes());
    g.extend_from_slice(&call.to_be_bytes());
    g.extend_from_slice(&seq.to_be_bytes());
    g.extend_from_slice(&body);
    g
}

/// (source, destination, GRE bytes) of an output frame, its IPv4 checksum checked.
fn gre_parts(f: &[u8]) -> (Ipv4Addr, Ipv4Addr, Vec<u8>) {
    let ipb = &f[14..];
    assert_eq!(ipb[9], GRE);
    assert_eq!(
        checksum::fold(checksum::sum(&ipb[..20])),
        0xffff,
        "IPv4 checksum"
    );
    let a = |o: usize| Ipv4Addr::new(ipb[o], ipb[o + 1], ipb[o + 2], ipb[o + 3]);
    (a(12), a(16), ipb[20..].to_vec())
}

fn key(gre: &[u8]) -> u16 {
    u16::from_be_bytes([gre[6], gre[7]])
}

/// Seq of the client's and the server's next bytes on a control connection made by
/// [`control`] (client ISN 100, server ISN 5000).
const CLIENT_SEQ: u32 = 101;
const SERVER_SEQ: u32 = 5001;

/// A PPTP control connection of `client` (port 40000) to the server, established
/// through the NAT: the client's outside endpoint.
fn control(h: &mut Harness, client: &str) -> SocketAddrV4 {
    connect(
        h,
        &format!("{client}:40000"),
        &format!("{SERVER}:1723"),
        5000,
    )
}

/// The PPTP payload of a TCP frame (its checksums checked).
fn payload_of(f: &[u8]) -> Vec<u8> {
    assert!(checksums_ok(f), "checksums: {f:02x?}");
    match SlicedPacket::from_ethernet(f).unwrap().transport {
        Some(TransportSlice::Tcp(t)) => t.payload().to_vec(),
        _ => panic!("not TCP"),
    }
}

/// The subscriber `client` sends `m` at `seq`: what reached the server.
fn from_client(h: &mut Harness, client: &str, seq: u32, m: &[u8], now: u32) -> Vec<u8> {
    let f = tcp(
        &format!("{client}:40000"),
        &format!("{SERVER}:1723"),
        seq,
        "PA",
        m,
        false,
    );
    payload_of(&one(h, &f, Inside, now, Outside))
}

/// The server sends `m` at `seq` to the client's outside endpoint `c`: what reached
/// the subscriber.
fn from_server(h: &mut Harness, c: SocketAddrV4, seq: u32, m: &[u8], now: u32) -> Vec<u8> {
    let f = tcp(
        &format!("{SERVER}:1723"),
        &c.to_string(),
        seq,
        "PA",
        m,
        true,
    );
    payload_of(&one(h, &f, Outside, now, Inside))
}

fn id_at(m: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([m[at], m[at + 1]])
}

/// An outgoing call of `client` with its call ID `id` answered by the server's
/// `server_id`, through the pipeline: the control connection's outside endpoint and
/// the translated call ID.
fn call(h: &mut Harness, client: &str, id: u16, server_id: u16) -> (SocketAddrV4, u16) {
    let c = control(h, client);
    let rq = message(msg::OUT_CALL_REQUEST, id, 1);
    let sent = from_client(h, client, CLIENT_SEQ, &rq, 1000);
    assert_eq!(sent.len(), rq.len());
    assert_eq!(sent[14..], rq[14..], "only the call ID is rewritten");
    let out = id_at(&sent, 12);
    let rp = message(msg::OUT_CALL_REPLY, server_id, out);
    let got = from_server(h, c, SERVER_SEQ, &rp, 1000);
    assert_eq!(
        (id_at(&got, 12), id_at(&got, 14)),
        (server_id, id),
        "the reply names the subscriber's own call ID"
    );
    (c, out)
}

#[test]
fn gre_of_two_calls_with_one_call_id_reaches_each_subscriber() {
    let mut h = harness(ON);
    let (a, b) = ("100.64.1.2", "100.64.1.3");
    let (_, out_a) = call(&mut h, a, 7, 0x100);
    let (_, out_b) = call(&mut h, b, 7, 0x101);
    // Out: the pool address, the server's call ID kept.
    let mut pools = vec![];
    for (client, server_id) in [(a, 0x100), (b, 0x101)] {
        let f = ip_frame(client, SERVER, GRE, &gre1(server_id, 1), false);
        let (src, dst, g) = gre_parts(&one(&mut h, &f, Inside, 1001, Outside));
        assert_eq!(dst, ip(SERVER));
        assert_eq!(g, gre1(server_id, 1), "the GRE is not touched");
        pools.push(src);
    }
    assert!(
        pools[0] != pools[1] || out_a != out_b,
        "two calls behind one outside call"
    );
    // Back: each to its subscriber, keyed by its own call ID again.
    for (client, pool, out) in [(a, pools[0], out_a), (b, pools[1], out_b)] {
        let f = ip_frame(SERVER, &pool.to_string(), GRE, &gre1(out, 9), true);
        let (src, dst, g) = gre_parts(&one(&mut h, &f, Outside, 1002, Inside));
        assert_eq!((src, dst), (ip(SERVER), ip(client)));
        assert_eq!(key(&g), 7);
        assert_eq!(g[8..], gre1(out, 9)[8..]);
    }
    let c = &h.counters;
    assert_eq!(c.pptp[3].get(), 2, "gre_out");
    assert_eq!(c.pptp[4].get(), 2, "gre_in");
    assert_eq!(c.dropped(DropReason::GreNoCall), 0);
}

#[test]
fn gre_version_1_without_a_call_is_dropped_and_counted() {
    let mut h = harness(ON);
    let (_, out_a) = call(&mut h, "100.64.1.2", 7, 0x100);
    // Another server call ID from inside; another call ID from outside; no key.
    none(
        &mut h,
        &ip_frame("100.64.1.2", SERVER, GRE, &gre1(0x999, 1), false),
        Inside,
        1001,
    );
    let f = ip_frame("100.64.1.2", SERVER, GRE, &gre1(0x100, 1), false);
    let (pool, _, _) = gre_parts(&one(&mut h, &f, Inside, 1001, Outside));
    none(
        &mut h,
        &ip_frame(
            SERVER,
            &pool.to_string(),
            GRE,
            &gre1(out_a.wrapping_add(1), 1),
            true,
        ),
        Outside,
        1001,
    );
    let mut no_key = gre1(0x100, 1);
    no_key[0] = 0x10;
    none(
        &mut h,
        &ip_frame("100.64.1.2", SERVER, GRE, &no_key, false),
        Inside,
        1001,
    );
    assert_eq!(h.counters.dropped(DropReason::GreNoCall), 3);
    // Plain GRE (version 0) goes on by address alone.
    let v0 = [0, 0, 0x08, 0x00, 0x45, 0, 0, 8];
    let f = ip_frame("100.64.1.2", "192.0.2.20", GRE, &v0, false);
    let (_, dst, g) = gre_parts(&one(&mut h, &f, Inside, 1002, Outside));
    assert_eq!((dst, &g[..]), (ip("192.0.2.20"), &v0[..]));
}

#[test]
fn gre_version_1_goes_by_address_alone_while_the_alg_is_off() {
    let mut h = harness("");
    let f = ip_frame("100.64.1.2", SERVER, GRE, &gre1(0x100, 1), false);
    let (pool, _, g) = gre_parts(&one(&mut h, &f, Inside, 1000, Outside));
    assert_eq!(g, gre1(0x100, 1));
    let back = ip_frame(SERVER, &pool.to_string(), GRE, &gre1(0x55, 2), true);
    let (_, dst, g) = gre_parts(&one(&mut h, &back, Outside, 1001, Inside));
    assert_eq!((dst, key(&g)), (ip("100.64.1.2"), 0x55));
    assert_eq!(h.counters.dropped(DropReason::GreNoCall), 0);
}

/// Inbound GRE keyed `out` to pool address `pool`: the subscriber it reaches and the
/// call ID it carries there; None when dropped.
fn gre_in(h: &mut Harness, pool: Ipv4Addr, out: u16, now: u32) -> Option<(Ipv4Addr, u16)> {
    let f = ip_frame(SERVER, &pool.to_string(), GRE, &gre1(out, 3), true);
    let mut o = h.inject(&f, Outside, now);
    let (side, f) = o.pop()?;
    assert_eq!(side, Inside);
    let (_, dst, g) = gre_parts(&f);
    Some((dst, key(&g)))
}

#[test]
fn a_hundred_subscribers_with_one_call_id_each_get_their_own_gre() {
    let mut h = harness(ON);
    let clients: Vec<String> = (0..100).map(|k| format!("100.64.2.{}", k + 1)).collect();
    let calls: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(k, c)| call(&mut h, c, 1, 0x400 + k as u16))
        .collect();
    let mut outside: Vec<_> = calls.iter().map(|(c, o)| (*c.ip(), *o)).collect();
    outside.sort();
    outside.dedup();
    assert_eq!(outside.len(), 100, "one outside call ID per call");
    for (k, (c, out)) in calls.iter().enumerate() {
        assert_eq!(
            gre_in(&mut h, *c.ip(), *out, 1001),
            Some((ip(&clients[k]), 1))
        );
        let f = ip_frame(&clients[k], SERVER, GRE, &gre1(0x400 + k as u16, 1), false);
        let (src, _, _) = gre_parts(&one(&mut h, &f, Inside, 1001, Outside));
        assert_eq!(src, *c.ip());
    }
    assert_eq!(h.counters.pptp[0].get(), 100, "calls");
}

#[test]
fn clear_request_disconnect_notify_and_the_control_end_remove_the_call() {
    let mut h = harness(ON);
    let sub = "100.64.1.2";
    // Call-Clear-Request from the subscriber: rewritten to the translated call ID.
    let (c, out) = call(&mut h, sub, 7, 0x100);
    let seq = CLIENT_SEQ + 168;
    let clear = from_client(
        &mut h,
        sub,
        seq,
        &message(msg::CALL_CLEAR_REQUEST, 7, 0),
        1001,
    );
    assert_eq!(id_at(&clear, 12), out);
    // The server's Call-Disconnect-Notify (naming the translated ID) ends it.
    let sseq = SERVER_SEQ + 32;
    let cdn = from_server(
        &mut h,
        c,
        sseq,
        &message(msg::CALL_DISCONNECT_NOTIFY, out, 0),
        1001,
    );
    assert_eq!(id_at(&cdn, 12), 7);
    assert_eq!(gre_in(&mut h, *c.ip(), out, 1002), None);
    none(
        &mut h,
        &ip_frame(sub, SERVER, GRE, &gre1(0x100, 1), false),
        Inside,
        1002,
    );
    assert_eq!(h.counters.dropped(DropReason::GreNoCall), 2);

    // A second call on the same connection; the server disconnects it, naming its
    // own call ID (left as written).
    let seq = seq + 16;
    let sseq = sseq + 148;
    let rq = from_client(
        &mut h,
        sub,
        seq,
        &message(msg::OUT_CALL_REQUEST, 8, 2),
        1003,
    );
    let out2 = id_at(&rq, 12);
    from_server(
        &mut h,
        c,
        sseq,
        &message(msg::OUT_CALL_REPLY, 0x101, out2),
        1003,
    );
    assert_eq!(gre_in(&mut h, *c.ip(), out2, 1004), Some((ip(sub), 8)));
    let cdn = message(msg::CALL_DISCONNECT_NOTIFY, 0x101, 0);
    assert_eq!(from_server(&mut h, c, sseq + 32, &cdn, 1005), cdn);
    assert_eq!(gre_in(&mut h, *c.ip(), out2, 1006), None);

    // A third call; the control connection is reset: its calls go with it.
    let rq = from_client(
        &mut h,
        sub,
        seq + 168,
        &message(msg::OUT_CALL_REQUEST, 9, 3),
        1007,
    );
    let out3 = id_at(&rq, 12);
    from_server(
        &mut h,
        c,
        sseq + 32 + 148,
        &message(msg::OUT_CALL_REPLY, 0x102, out3),
        1007,
    );
    assert_eq!(gre_in(&mut h, *c.ip(), out3, 1008), Some((ip(sub), 9)));
    let rst = tcp(
        &format!("{sub}:40000"),
        &format!("{SERVER}:1723"),
        seq + 336,
        "RA",
        b"",
        false,
    );
    h.inject(&rst, Inside, 1009);
    // Sooner than the call's own idle timeout (300 s): the reset session's transitory
    // timeout (240 s) ends it, and its call with it.
    h.expire(1009 + 250);
    assert_eq!(gre_in(&mut h, *c.ip(), out3, 1009 + 251), None);
    assert_eq!(h.counters.pptp[2].get(), 3, "calls_ended");
    assert_eq!(h.counters.dropped(DropReason::GreNoCall), 4);
}

#[test]
fn link_info_from_the_server_names_the_subscribers_own_call_id() {
    let mut h = harness(ON);
    let (c, out) = call(&mut h, "100.64.1.2", 7, 0x100);
    assert_ne!(out, 7, "the call ID was not translated");
    let sli = message(msg::SET_LINK_INFO, out, 0);
    let got = from_server(&mut h, c, SERVER_SEQ + 32, &sli, 1001);
    assert_eq!(id_at(&got, 12), 7);
    assert_eq!(got[14..], sli[14..]);
}

#[test]
fn a_full_call_table_refuses_the_next_call_and_keeps_the_others() {
    let mut h = harness(ON);
    let max = cgnat_alg::CLASSES[usize::from(cgnat_alg::class::PPTP_CALL)].max;
    let client = |k: usize| format!("100.64.{}.{}", 1 + k / 250, 1 + k % 250);
    let calls: Vec<_> = (0..max)
        .map(|k| call(&mut h, &client(k), 5, k as u16))
        .collect();
    control(&mut h, &client(max));
    let rq = message(msg::OUT_CALL_REQUEST, 5, 1);
    assert_eq!(
        from_client(&mut h, &client(max), CLIENT_SEQ, &rq, 1001),
        rq,
        "a refused call goes on as written"
    );
    assert_eq!(h.counters.pptp[1].get(), 1, "calls_refused");
    for (k, (c, out)) in calls.iter().enumerate() {
        assert_eq!(
            gre_in(&mut h, *c.ip(), *out, 1002),
            Some((ip(&client(k)), 5))
        );
    }
}

#[test]
fn malformed_control_messages_pass_untouched_and_are_counted() {
    let mut h = harness(ON);
    let (c, out) = call(&mut h, "100.64.1.2", 7, 0x100);
    let skipped = |h: &mut Harness| {
        h.worker
            .counters()
            .contract_event(cgnat_alg::id::PPTP, ContractEvent::Skipped)
            .get()
    };
    let before = skipped(&mut h);
    // A bad magic cookie, a Length below the header's, a Length past any message.
    let mut cookie = message(msg::SET_LINK_INFO, out, 0);
    cookie[4] = 0;
    let mut short = message(msg::SET_LINK_INFO, out, 0);
    short[0..2].copy_from_slice(&4u16.to_be_bytes());
    let mut long = message(msg::SET_LINK_INFO, out, 0);
    long[0..2].copy_from_slice(&0xfff0u16.to_be_bytes());
    let mut seq = SERVER_SEQ + 32;
    for m in [cookie, short, long] {
        assert_eq!(from_server(&mut h, c, seq, &m, 1001), m);
        seq += m.len() as u32;
    }
    assert!(skipped(&mut h) >= before + 3, "skipped not counted");
    // Random bytes from both sides: no panic, the call still works.
    let mut x: u32 = 0x1234_5678;
    for n in 0..200u32 {
        let len = (n % 40 + 1) as usize;
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let f = tcp(
            "100.64.1.2:40000",
            &format!("{SERVER}:1723"),
            50_000 + n * 64,
            "PA",
            &junk,
            false,
        );
        h.inject(&f, Inside, 1002);
    }
    assert_eq!(
        gre_in(&mut h, *c.ip(), out, 1003),
        Some((ip("100.64.1.2"), 7))
    );
}

#[test]
fn with_two_workers_gre_reaches_the_worker_that_holds_the_call() {
    let mut h = Harness::with_workers(&config(ON), 2, 1000);
    for i in 1..=40u8 {
        h.neighbors
            .learn(u32::from(Ipv4Addr::new(100, 64, 1, i)), &HOST_MAC);
    }
    let clients: Vec<String> = (1..=40).map(|k| format!("100.64.1.{k}")).collect();
    let calls: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(k, c)| call(&mut h, c, 7, 0x500 + k as u16))
        .collect();
    let mut outside: Vec<_> = calls.iter().map(|(c, o)| (*c.ip(), *o)).collect();
    outside.sort();
    outside.dedup();
    assert_eq!(outside.len(), 40);
    // Whichever queue the device delivers GRE to, it reaches its call.
    for (k, (c, out)) in calls.iter().enumerate() {
        let queue = (k % 2) as u16;
        let f = ip_frame(SERVER, &c.ip().to_string(), GRE, &gre1(*out, 3), true);
        let o = h.inject_at(queue, &f, Outside, 1001);
        assert_eq!(o.len(), 1, "call {k} from queue {queue}");
        let (_, dst, g) = gre_parts(&o[0].1);
        assert_eq!((dst, key(&g)), (ip(&clients[k]), 7));
        let f = ip_frame(&clients[k], SERVER, GRE, &gre1(0x500 + k as u16, 1), false);
        let o = h.inject_at(1 - queue, &f, Inside, 1001);
        assert_eq!(o.len(), 1, "call {k} out from queue {}", 1 - queue);
        assert_eq!(gre_parts(&o[0].1).0, *c.ip());
    }
    let no_call: u64 = h
        .workers()
        .map(|w| w.counters().dropped(DropReason::GreNoCall))
        .sum();
    assert_eq!(no_call, 0);
}

#[test]
fn calls_are_listed_with_the_expectations() {
    use cgnat_dataplane::inspect::{answer, Answer, Query};
    let mut h = harness(ON);
    let (c, out) = call(&mut h, "100.64.1.2", 7, 0x100);
    let Answer::Expectations(rows) = answer(&h.nth(0).nat, 0, &Query::Expectations(100), 1010)
    else {
        panic!("not expectations")
    };
    let calls: Vec<_> = rows.iter().filter(|r| r.class == "pptp_call").collect();
    assert_eq!(calls.len(), 1, "{rows:?}");
    let r = calls[0];
    assert_eq!(r.protocol, "gre");
    assert_eq!(r.outside, format!("{}:{out}", c.ip()));
    assert_eq!(r.inside, "100.64.1.2:7");
    assert_eq!(r.remote, SERVER);
    assert_eq!(r.expires_in_secs, 290);
}

#[test]
fn a_fragmented_gre_packet_of_a_call_reaches_the_subscriber_whole() {
    let mut h = harness(ON);
    let (c, out) = call(&mut h, "100.64.1.2", 7, 0x100);
    let mut g = gre1(out, 5);
    // A later fragment whose bytes look like a GRE v1 header of no call.
    let fake = gre1(0x7777, 0);
    g.resize(24, 0x11);
    g.extend_from_slice(&fake);
    g.extend_from_slice(&[0xab; 40]);
    let whole = with_ident(ip_frame(SERVER, &c.ip().to_string(), GRE, &g, true), 0x4242);
    let frags = fragment(&whole, &[24]);
    assert_eq!(frags[1][34..42], fake[..8]);
    let mut got = vec![];
    for f in &frags {
        for (side, o) in h.inject(f, Outside, 1001) {
            assert_eq!(side, Inside);
            got.push(o);
        }
    }
    assert_eq!(got.len(), 2, "both fragments delivered");
    let back = reassemble(&got);
    let (_, dst, gre) = gre_parts(&back);
    assert_eq!(dst, ip("100.64.1.2"));
    assert_eq!(key(&gre), 7);
    assert_eq!(gre[8..], g[8..]);
    assert_eq!(h.counters.dropped(DropReason::GreNoCall), 0);
}

#[test]
fn with_two_workers_fragmented_gre_follows_its_first_fragment_both_ways() {
    let mut h = Harness::with_workers(&config(ON), 2, 1000);
    for i in 1..=8u8 {
        h.neighbors
            .learn(u32::from(Ipv4Addr::new(100, 64, 1, i)), &HOST_MAC);
    }
    for k in 1..=8u16 {
        let client = format!("100.64.1.{k}");
        let (c, out) = call(&mut h, &client, 7, 0x600 + k);
        // Out, then in: the first fragment on one queue, the later on the other; a
        // later fragment whose bytes look like GRE version 0.
        for (from, src, dst, key_id, to) in [
            (
                Inside,
                client.clone(),
                SERVER.to_string(),
                0x600 + k,
                Outside,
            ),
            (Outside, SERVER.to_string(), c.ip().to_string(), out, Inside),
        ] {
            let mut g = gre1(key_id, 5);
            g.resize(24, 0x11);
            g.extend_from_slice(&[0, 0, 0x08, 0x00, 0x45, 0, 0, 8]);
            g.extend_from_slice(&[0xab; 40]);
            let whole = with_ident(ip_frame(&src, &dst, GRE, &g, from == Outside), 0x100 + k);
            let frags = fragment(&whole, &[24]);
            let mut got = vec![];
            for (q, f) in frags.iter().enumerate() {
                for (side, o) in h.inject_at((q as u16 + k) % 2, f, from, 1001) {
                    assert_eq!(side, to);
                    got.push(o);
                }
            }
            assert_eq!(got.len(), 2, "call {k} from {from:?}: both fragments");
            let (s, d, gre) = gre_parts(&reassemble(&got));
            assert_eq!(gre[8..], g[8..]);
            if from == Inside {
                assert_eq!((s, d), (*c.ip(), ip(SERVER)));
            } else {
                assert_eq!((d, key(&gre)), (ip(&client), 7));
            }
        }
    }
}

#[test]
fn an_incoming_call_is_translated_and_its_gre_mapped() {
    let mut h = harness(ON);
    let sub = "100.64.1.2";
    let c = control(&mut h, sub);
    // The server's Incoming-Call-Request carries its own call ID: passed as it is.
    let icrq = message(msg::IN_CALL_REQUEST, 0x700, 1);
    assert_eq!(from_server(&mut h, c, SERVER_SEQ, &icrq, 1000), icrq);
    // The subscriber's reply: its call ID translated, the server's bound to it.
    let icrp = from_client(
        &mut h,
        sub,
        CLIENT_SEQ,
        &message(msg::IN_CALL_REPLY, 9, 0x700),
        1000,
    );
    let out = id_at(&icrp, 12);
    assert_ne!(out, 9);
    assert_eq!(id_at(&icrp, 14), 0x700);
    // Incoming-Call-Connected names the translation: the subscriber gets its own.
    let iccn = message(msg::IN_CALL_CONNECTED, out, 0);
    assert_eq!(
        id_at(&from_server(&mut h, c, SERVER_SEQ + 220, &iccn, 1001), 12),
        9
    );
    assert_eq!(gre_in(&mut h, *c.ip(), out, 1002), Some((ip(sub), 9)));
    let f = ip_frame(sub, SERVER, GRE, &gre1(0x700, 1), false);
    let (src, _, g) = gre_parts(&one(&mut h, &f, Inside, 1002, Outside));
    assert_eq!((src, key(&g)), (*c.ip(), 0x700));
}

/// Message `m` sent in two segments cut at `at` (the first at `seq`), each made by
/// `seg` (seq, payload) and coming in on `from`: the payloads that left, joined.
fn in_two(
    h: &mut Harness,
    seg: impl Fn(u32, &[u8]) -> Vec<u8>,
    seq: u32,
    m: &[u8],
    at: usize,
    from: cgnat_dataplane::pipeline::Side,
) -> Vec<u8> {
    let (a, b) = m.split_at(at);
    let mut out = h.inject(&seg(seq, a), from, 1001);
    out.extend(h.inject(&seg(seq + a.len() as u32, b), from, 1001));
    out.iter().flat_map(|(_, f)| payload_of(f)).collect()
}

#[test]
fn a_control_message_cut_across_segments_is_joined_and_translated() {
    let mut h = harness(ON);
    let sub = "100.64.1.2";
    let c = control(&mut h, sub);
    let (client, server) = (format!("{sub}:40000"), format!("{SERVER}:1723"));
    // The request cut in the middle of its Call ID (offset 12).
    let rq = message(msg::OUT_CALL_REQUEST, 7, 1);
    let up = |seq: u32, p: &[u8]| tcp(&client, &server, seq, "PA", p, false);
    let sent = in_two(&mut h, up, CLIENT_SEQ, &rq, 13, Inside);
    assert_eq!(sent.len(), rq.len(), "{sent:02x?}");
    let out = id_at(&sent, 12);
    assert_ne!(out, 7, "the call ID left untranslated");
    assert_eq!(sent[14..], rq[14..]);
    // The reply cut likewise, in its Peer's Call ID (offset 14).
    let rp = message(msg::OUT_CALL_REPLY, 0x100, out);
    let down = |seq: u32, p: &[u8]| tcp(&server, &c.to_string(), seq, "PA", p, true);
    let got = in_two(&mut h, down, SERVER_SEQ, &rp, 15, Outside);
    assert_eq!((id_at(&got, 12), id_at(&got, 14)), (0x100, 7));
    assert_eq!(gre_in(&mut h, *c.ip(), out, 1002), Some((ip(sub), 7)));
}

#[test]
fn turning_the_alg_on_by_reload_leaves_earlier_calls_gre_without_a_call() {
    let mut h = harness("");
    let c = control(&mut h, "100.64.1.2");
    let f = ip_frame("100.64.1.2", SERVER, GRE, &gre1(0x100, 1), false);
    let (pool, _, _) = gre_parts(&one(&mut h, &f, Inside, 1001, Outside));
    assert_eq!(
        gre_in(&mut h, pool, 0x55, 1001),
        Some((ip("100.64.1.2"), 0x55))
    );
    h.reconfigure(&config(ON), 1002);
    // The control connection predates the ALG: no call was made, its GRE is dropped.
    assert_eq!(gre_in(&mut h, pool, 0x55, 1003), None);
    assert_eq!(h.counters.dropped(DropReason::GreNoCall), 1);
    assert_eq!(*c.ip(), pool);
    // Off again: by address alone.
    h.reconfigure(&config(""), 1004);
    assert_eq!(
        gre_in(&mut h, pool, 0x55, 1005),
        Some((ip("100.64.1.2"), 0x55))
    );
}

/// The seconds a closing call lingers (`cgnat_dataplane::nat::CALL_LINGER`, as
/// docs/alg.md says).
const LINGER: u32 = 10;

/// A PPTP event counter by its name (`cgnat_dataplane::nat::PPTP_EVENTS`).
fn pptp_event(h: &Harness, name: &str) -> u64 {
    let k = cgnat_dataplane::nat::PPTP_EVENTS
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("no PPTP event {name}"));
    h.counters.pptp[k].get()
}

fn contract_refused(h: &mut Harness) -> u64 {
    h.worker
        .counters()
        .contract_event(cgnat_alg::id::PPTP, ContractEvent::Refused)
        .get()
}

/// Outbound GRE of `client` keyed by the server's call ID `server_id`: whether it left.
fn gre_out(h: &mut Harness, client: &str, server_id: u16, now: u32) -> bool {
    let f = ip_frame(client, SERVER, GRE, &gre1(server_id, 1), false);
    !h.inject(&f, Inside, now).is_empty()
}

/// The seconds the API gives the one PPTP call listed at `now`.
fn listed_expiry(h: &mut Harness, now: u32) -> Option<u32> {
    use cgnat_dataplane::inspect::{answer, Answer, Query};
    let Answer::Expectations(rows) = answer(&h.nth(0).nat, 0, &Query::Expectations(100), now)
    else {
        panic!("not expectations")
    };
    let calls: Vec<_> = rows.iter().filter(|r| r.class == "pptp_call").collect();
    assert!(calls.len() <= 1, "{rows:?}");
    calls.first().map(|r| r.expires_in_secs)
}

/// The subscriber clears its call `id` (translated `out`) at `now`.
fn clear(h: &mut Harness, client: &str, id: u16, out: u16, now: u32) {
    let m = from_client(
        h,
        client,
        CLIENT_SEQ + 168,
        &message(msg::CALL_CLEAR_REQUEST, id, 0),
        now,
    );
    assert_eq!(id_at(&m, 12), out, "the clear names the translated call ID");
}

/// The server's Call-Disconnect-Notify naming `named` at `now` (after the reply):
/// the Call ID the subscriber got.
fn disconnect(h: &mut Harness, c: SocketAddrV4, named: u16, now: u32) -> u16 {
    let m = message(msg::CALL_DISCONNECT_NOTIFY, named, 0);
    let got = from_server(h, c, SERVER_SEQ + 32, &m, now);
    assert_eq!(got[14..], m[14..]);
    id_at(&got, 12)
}

#[test]
fn a_disconnect_naming_the_translated_call_id_is_rewritten_to_the_subscribers_own() {
    // The de-facto convention (pptpd, accel-ppp): the PNS's call ID, as the server
    // knows it, i.e. the translation.
    let mut h = harness(ON);
    let sub = "100.64.1.2";
    let (c, out) = call(&mut h, sub, 7, 0x100);
    let refused = contract_refused(&mut h);
    assert_eq!(disconnect(&mut h, c, out, 1001), 7);
    assert_eq!(gre_in(&mut h, *c.ip(), out, 1002), None);
    assert!(!gre_out(&mut h, sub, 0x100, 1002));
    assert_eq!(h.counters.dropped(DropReason::GreNoCall), 2);
    assert_eq!(
        contract_refused(&mut h),
        refused,
        "the disconnect was refused"
    );
    assert_eq!(pptp_event(&h, "calls_ended"), 1);
    assert_eq!(pptp_event(&h, "disconnects_unmatched"), 0);
}

#[test]
fn after_a_clear_gre_flows_until_the_disconnect_naming_the_servers_id() {
    // RFC 2637 2.13's convention: the PAC's own call ID, left as written.
    let mut h = harness(ON);
    let sub = "100.64.1.2";
    let (c, out) = call(&mut h, sub, 7, 0x100);
    clear(&mut h, sub, 7, out, 1001);
    // Closing: the server may still send (and the subscriber too) until it notifies.
    assert_eq!(gre_in(&mut h, *c.ip(), out, 1002), Some((ip(sub), 7)));
    assert!(gre_out(&mut h, sub, 0x100, 1002));
    assert_eq!(disconnect(&mut h, c, 0x100, 1003), 0x100);
    assert_eq!(gre_in(&mut h, *c.ip(), out, 1004), None);
    assert!(!gre_out(&mut h, sub, 0x100, 1004));
    assert_eq!(pptp_event(&h, "calls_ended"), 1);
    assert_eq!(pptp_event(&h, "disconnects_unmatched"), 0);
}

#[test]
fn clear_then_disconnect_gives_the_client_its_own_call_id_back() {
    let mut h = harness(ON);
    let sub = "100.64.1.2";
    let (c, out) = call(&mut h, sub, 7, 0x100);
    assert_ne!(out, 7, "the call ID was not translated");
    clear(&mut h, sub, 7, out, 1001);
    let refused = contract_refused(&mut h);
    assert_eq!(
        disconnect(&mut h, c, out, 1002),
        7,
        "the client would not find its call"
    );
    assert_eq!(
        contract_refused(&mut h),
        refused,
        "the disconnect was refused"
    );
    assert_eq!(gre_in(&mut h, *c.ip(), out, 1003), None);
    assert_eq!(pptp_event(&h, "calls_ended"), 1);
    assert_eq!(pptp_event(&h, "calls_lingered"), 0);
    // The ended call is remembered for retransmissions: the subscriber's clear sent
    // again goes out with the translated call ID (not its own), the server's notify
    // again comes in with the subscriber's own; counted, nothing made or ended again.
    clear(&mut h, sub, 7, out, 1004);
    assert_eq!(disconnect(&mut h, c, out, 1004), 7);
    assert_eq!(pptp_event(&h, "ends_resent"), 2);
    assert_eq!(pptp_event(&h, "disconnects_unmatched"), 0);
    assert_eq!(
        (pptp_event(&h, "calls"), pptp_event(&h, "calls_ended")),
        (1, 1)
    );
    assert_eq!(gre_in(&mut h, *c.ip(), out, 1005), None, "no call again");
    // A notify naming an ID no call had: left as written, counted.
    assert_eq!(disconnect(&mut h, c, out ^ 0x5a5a, 1005), out ^ 0x5a5a);
    assert_eq!(pptp_event(&h, "disconnects_unmatched"), 1);
}

#[test]
fn a_cleared_call_without_a_disconnect_goes_after_the_linger() {
    let linger = LINGER;
    let mut h = harness(ON);
    let sub = "100.64.1.2";
    let (c, out) = call(&mut h, sub, 7, 0x100);
    clear(&mut h, sub, 7, out, 1001);
    assert_eq!(
        listed_expiry(&mut h, 1004),
        Some(LINGER - 3),
        "the API's expiry"
    );
    // GRE refreshes nothing of a closing call: the linger counts from the clear.
    for t in 1002..1001 + linger {
        h.expire(t);
        assert_eq!(gre_in(&mut h, *c.ip(), out, t), Some((ip(sub), 7)), "{t}");
    }
    h.expire(1001 + linger);
    assert_eq!(gre_in(&mut h, *c.ip(), out, 1001 + linger), None);
    assert!(!gre_out(&mut h, sub, 0x100, 1001 + linger));
    assert_eq!(h.counters.dropped(DropReason::GreNoCall), 2);
    assert_eq!(pptp_event(&h, "calls_lingered"), 1);
    assert_eq!(pptp_event(&h, "calls_ended"), 1);
    // The server's late disconnect names the call that lingered out: the
    // subscriber's own ID, as its disconnect in time would have had.
    assert_eq!(disconnect(&mut h, c, out, 1001 + linger), 7);
    assert_eq!(pptp_event(&h, "ends_resent"), 1);
    assert_eq!(pptp_event(&h, "disconnects_unmatched"), 0);
}

#[test]
fn a_disconnect_matching_two_calls_ends_the_translated_ids() {
    let mut h = harness(ON);
    let sub = "100.64.1.2";
    // Call 7 (translated `out_a`), then call 8 to which the server gives the call ID
    // `out_a` as its own: a disconnect naming `out_a` matches both.
    let (c, out_a) = call(&mut h, sub, 7, 0x100);
    let rq = from_client(
        &mut h,
        sub,
        CLIENT_SEQ + 168,
        &message(msg::OUT_CALL_REQUEST, 8, 2),
        1001,
    );
    let out_b = id_at(&rq, 12);
    let rp = from_server(
        &mut h,
        c,
        SERVER_SEQ + 32,
        &message(msg::OUT_CALL_REPLY, out_a, out_b),
        1001,
    );
    assert_eq!(id_at(&rp, 14), 8);
    let cdn = from_server(
        &mut h,
        c,
        SERVER_SEQ + 64,
        &message(msg::CALL_DISCONNECT_NOTIFY, out_a, 0),
        1002,
    );
    assert_eq!(
        id_at(&cdn, 12),
        7,
        "the translated ID's call is the one ended"
    );
    assert_eq!(gre_in(&mut h, *c.ip(), out_a, 1003), None);
    assert_eq!(gre_in(&mut h, *c.ip(), out_b, 1003), Some((ip(sub), 8)));
    assert!(gre_out(&mut h, sub, out_a, 1003), "call 8's GRE out");
}

#[test]
fn a_closed_control_connection_ends_its_calls_after_the_linger() {
    let linger = LINGER;
    for how in ["fin", "rst"] {
        let mut h = harness(ON);
        let sub = "100.64.1.2";
        let (c, out) = call(&mut h, sub, 7, 0x100);
        let (client, server) = (format!("{sub}:40000"), format!("{SERVER}:1723"));
        if how == "fin" {
            h.inject(
                &tcp(&client, &server, CLIENT_SEQ + 168, "FA", b"", false),
                Inside,
                1001,
            );
            let back = tcp(&server, &c.to_string(), SERVER_SEQ + 32, "FA", b"", true);
            h.inject(&back, Outside, 1001);
        } else {
            h.inject(
                &tcp(&client, &server, CLIENT_SEQ + 168, "RA", b"", false),
                Inside,
                1001,
            );
        }
        // GRE still flows for the linger (and keeps the session alive meanwhile)...
        for t in 1002..=1001 + linger {
            h.expire(t);
            assert_eq!(
                gre_in(&mut h, *c.ip(), out, t),
                Some((ip(sub), 7)),
                "{how} {t}"
            );
        }
        // ... then the call goes, long before the control session's own timeout.
        h.expire(1002 + linger);
        assert_eq!(gre_in(&mut h, *c.ip(), out, 1002 + linger), None, "{how}");
        assert!(!gre_out(&mut h, sub, 0x100, 1002 + linger), "{how}");
        assert_eq!(h.counters.dropped(DropReason::GreNoCall), 2, "{how}");
        assert_eq!(pptp_event(&h, "calls_lingered"), 1, "{how}");
    }
}

#[test]
fn a_call_id_reused_after_its_clear_is_a_new_call() {
    let mut h = harness(ON);
    let sub = "100.64.1.2";
    let (c, out) = call(&mut h, sub, 7, 0x100);
    clear(&mut h, sub, 7, out, 1001);
    let rq = from_client(
        &mut h,
        sub,
        CLIENT_SEQ + 184,
        &message(msg::OUT_CALL_REQUEST, 7, 2),
        1002,
    );
    let again = id_at(&rq, 12);
    assert_ne!(
        again, out,
        "the closing call's translation handed out again"
    );
    assert_eq!(gre_in(&mut h, *c.ip(), out, 1003), None);
    assert_eq!(pptp_event(&h, "calls"), 2);
    assert_eq!(pptp_event(&h, "calls_ended"), 1);
    // The server answers the new call, then its notify of the old one comes late,
    // naming it by its translated ID. The subscriber's 7 is the new call now: the
    // notify must not be given it (the client would end its new call), though the
    // old call is among the remembered ended ones.
    let rp = message(msg::OUT_CALL_REPLY, 0x200, again);
    let got = from_server(&mut h, c, SERVER_SEQ + 32, &rp, 1003);
    assert_eq!(id_at(&got, 14), 7);
    let late = message(msg::CALL_DISCONNECT_NOTIFY, out, 0);
    let got = from_server(&mut h, c, SERVER_SEQ + 64, &late, 1004);
    assert_eq!(
        id_at(&got, 12),
        out,
        "the old call's notify named the new call"
    );
    assert_eq!(pptp_event(&h, "ends_resent"), 0);
    assert_eq!(pptp_event(&h, "disconnects_unmatched"), 1);
    assert_eq!(gre_in(&mut h, *c.ip(), again, 1005), Some((ip(sub), 7)));
    assert!(gre_out(&mut h, sub, 0x200, 1005));
}

/// The GRE events the worker logged since the last look (the others dropped):
/// (natEvent, inside, its call ID, pool address, translated call ID, server, its call
/// ID).
type CallEvent = (u8, Ipv4Addr, u16, Ipv4Addr, u16, Ipv4Addr, u16);
fn gre_events(h: &mut Harness) -> Vec<CallEvent> {
    let ev = h.nth(0).nat.events();
    let v = ev
        .iter()
        .filter(|e| e.proto == GRE)
        .map(|e| {
            let a = Ipv4Addr::from;
            let (i, o, d) = (a(e.inside), a(e.outside), a(e.dst));
            (e.kind, i, e.in_port, o, e.out_port, d, e.dst_port)
        })
        .collect();
    ev.clear();
    v
}

/// Another outgoing call of `client` on its control connection `c` (its outside
/// endpoint), the subscriber's call ID and the server's `ids`, the client's and the
/// server's next sequence numbers `seqs` moved on: the translated call ID.
fn another_call(
    h: &mut Harness,
    client: &str,
    c: SocketAddrV4,
    seqs: &mut (u32, u32),
    (id, server_id): (u16, u16),
    now: u32,
) -> u16 {
    let rq = message(msg::OUT_CALL_REQUEST, id, 1);
    let out = id_at(&from_client(h, client, seqs.0, &rq, now), 12);
    let rp = message(msg::OUT_CALL_REPLY, server_id, out);
    from_server(h, c, seqs.1, &rp, now);
    *seqs = (seqs.0 + rq.len() as u32, seqs.1 + rp.len() as u32);
    out
}

#[test]
fn a_call_is_logged_when_made_and_when_it_ends_whichever_way() {
    use cgnat_dataplane::log::event::{SESSION_CREATE as MADE, SESSION_DELETE as ENDED};
    // Port blocks: no per-session events, but a call holds no block: logged.
    let mut h = harness(&format!(
        "allocation = \"port-block\"\n{ON}[logging]\nipfix = {{ collector = \"127.0.0.1:4739\" }}\n"
    ));
    let (a, b, server) = ("100.64.1.2", "100.64.1.3", ip(SERVER));
    // Subscriber b's call, left idle; made before the server answers (its call ID
    // unknown then).
    let (cb, out_b) = call(&mut h, b, 5, 0x200);
    let made_b = (MADE, ip(b), 5, *cb.ip(), out_b, server, 0);
    assert_eq!(gre_events(&mut h), vec![made_b]);

    // a's first call: cleared by the subscriber, disconnected by the server.
    let (c, out) = call(&mut h, a, 7, 0x100);
    let pool = *c.ip();
    // The call made (the server's call ID unknown) and ended (known).
    let logged = |id, out, server_id| {
        vec![
            (MADE, ip(a), id, pool, out, server, 0),
            (ENDED, ip(a), id, pool, out, server, server_id),
        ]
    };
    let mut seqs = (CLIENT_SEQ + 168, SERVER_SEQ + 32);
    let clear = message(msg::CALL_CLEAR_REQUEST, 7, 0);
    from_client(&mut h, a, seqs.0, &clear, 1001);
    seqs.0 += 16;
    let cdn = |id| message(msg::CALL_DISCONNECT_NOTIFY, id, 0);
    from_server(&mut h, c, seqs.1, &cdn(0x100), 1001);
    seqs.1 += 148;
    assert_eq!(gre_events(&mut h), logged(7, out, 0x100));

    // A second call, disconnected by the server.
    let out2 = another_call(&mut h, a, c, &mut seqs, (8, 0x101), 1003);
    from_server(&mut h, c, seqs.1, &cdn(0x101), 1004);
    seqs.1 += 148;
    assert_eq!(gre_events(&mut h), logged(8, out2, 0x101));

    // A third, ended with its control connection (reset, then its timeout).
    let out3 = another_call(&mut h, a, c, &mut seqs, (9, 0x102), 1007);
    let rst = tcp(
        &format!("{a}:40000"),
        &format!("{SERVER}:1723"),
        seqs.0,
        "RA",
        b"",
        false,
    );
    h.inject(&rst, Inside, 1009);
    h.expire(1009 + 250);
    assert_eq!(
        gre_events(&mut h),
        logged(9, out3, 0x102),
        "b's call is not idle yet"
    );

    // b's call, idle for the class's timeout (300 s).
    h.expire(1000 + 300);
    assert_eq!(
        gre_events(&mut h),
        vec![(ENDED, ip(b), 5, cb.ip().to_owned(), out_b, server, 0x200)]
    );
    assert_eq!(h.counters.pptp[2].get(), 4, "calls_ended");
}

#[test]
fn a_call_alive_at_the_stop_is_closed_in_the_log() {
    use cgnat_dataplane::log::event::{SESSION_CREATE as MADE, SESSION_DELETE as ENDED};
    let mut h = harness(&format!(
        "allocation = \"port-block\"\n{ON}[logging]\nsyslog = {{ server = \"127.0.0.1:514\" }}\n"
    ));
    let (c, out) = call(&mut h, "100.64.1.2", 7, 0x100);
    let made = (MADE, ip("100.64.1.2"), 7, *c.ip(), out, ip(SERVER), 0);
    // What the stop records (`close_log`), after what the worker had not yet handed
    // over: the call made, then its end, with the server's call ID.
    let mut cursor = 0;
    while !h.nth(0).nat.close_log(&mut cursor, 1000) {}
    assert_eq!(
        gre_events(&mut h),
        vec![made, (ENDED, made.1, 7, made.3, out, made.5, 0x100)]
    );
}
