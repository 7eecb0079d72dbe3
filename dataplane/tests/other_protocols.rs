//! Every IP protocol but TCP, UDP and ICMP (GRE, ESP, AH, SCTP, ...): address-only
//! translation through the whole pipeline (no EAL). Sessions keyed by (inside,
//! remote, protocol) and (pool address, remote, protocol); two subscribers never
//! share a pool address for one remote and protocol; nothing comes in without a
//! session; ICMP errors about them translated both ways; `nat.protocols` honoured;
//! expiry after `nat.timeouts.other`; several workers.

mod common;
use cgnat_dataplane::counters::{proto_index, DropReason};
use cgnat_dataplane::harness::Harness;
use cgnat_dataplane::pipeline::Side::{Inside, Outside};
use cgnat_dataplane::wire::checksum;
use common::*;
use std::net::Ipv4Addr;

const GRE: u8 = 47;
const ESP: u8 = 50;

fn harness_n(nat_extra: &str, workers: u16) -> Harness {
    let h = Harness::with_workers(&config(nat_extra), workers, 1000);
    for i in 0..=255u8 {
        for j in 1..=3u8 {
            h.neighbors
                .learn(u32::from(Ipv4Addr::new(100, 64, j, i)), &HOST_MAC);
        }
    }
    h
}

/// GRE version 0 with the PPTP-free minimum: no flags, protocol type IPv4, a body.
fn gre_body(tag: u8) -> Vec<u8> {
    vec![0, 0, 0x08, 0x00, 0x45, tag, 0, 8, 1, 2, 3, 4]
}

/// ESP: SPI, sequence number, opaque bytes.
fn esp_body(spi: u32) -> Vec<u8> {
    let mut v = spi.to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]);
    v
}

/// (protocol, source, destination, payload) of an output frame, its IPv4 checksum
/// checked.
fn parts(f: &[u8]) -> (u8, Ipv4Addr, Ipv4Addr, Vec<u8>) {
    let ipb = &f[14..];
    assert_eq!(
        checksum::fold(checksum::sum(&ipb[..20])),
        0xffff,
        "IPv4 checksum"
    );
    let a = |o: usize| Ipv4Addr::new(ipb[o], ipb[o + 1], ipb[o + 2], ipb[o + 3]);
    (ipb[9], a(12), a(16), ipb[20..].to_vec())
}

fn in_pool(a: Ipv4Addr) -> bool {
    a.octets()[..3] == [198, 51, 100] && a.octets()[3] < 16
}

#[test]
fn gre_and_esp_go_out_and_back_on_the_address_alone() {
    let mut h = harness_n("", 1);
    for (proto, body) in [(GRE, gre_body(1)), (ESP, esp_body(0x1000))] {
        let f = ip_frame("100.64.1.2", "192.0.2.10", proto, &body, false);
        let o = one(&mut h, &f, Inside, 1000, Outside);
        let (p, src, dst, payload) = parts(&o);
        assert_eq!(p, proto);
        assert!(in_pool(src), "source {src} not in the pool");
        assert_eq!(dst, ip("192.0.2.10"));
        assert_eq!(payload, body, "the payload is not touched");
        assert_eq!(o[14 + 8], 63, "TTL");
        let back = ip_frame("192.0.2.10", &src.to_string(), proto, &body, true);
        let b = one(&mut h, &back, Outside, 1001, Inside);
        let (p, s, d, payload) = parts(&b);
        assert_eq!((p, s, d), (proto, ip("192.0.2.10"), ip("100.64.1.2")));
        assert_eq!(payload, body);
    }
    assert_eq!(h.counters.sessions_created[proto_index(GRE)].get(), 2);
    assert_eq!(h.counters.sessions_active[proto_index(ESP)].get(), 2);
    // The subscriber's TCP/UDP pool address is the one its GRE uses (paired).
    let u = out(&one(
        &mut h,
        &udp("100.64.1.2:5000", "192.0.2.99:53", b"", false),
        Inside,
        1002,
        Outside,
    ));
    let g = one(
        &mut h,
        &ip_frame("100.64.1.2", "192.0.2.10", GRE, &gre_body(2), false),
        Inside,
        1002,
        Outside,
    );
    assert_eq!(parts(&g).1, *u.src.ip());
}

#[test]
fn two_subscribers_to_one_remote_get_two_pool_addresses() {
    // A pool of two addresses, three subscribers to one remote: whatever addresses
    // they are paired with, the first two get one each, the third none (it would
    // mix its GRE with another's).
    let text = config_text("").replace("198.51.100.0/28", "198.51.100.2/31");
    let cfg = cgnat_config::Config::parse(&text, "test.toml").unwrap();
    let mut h = Harness::new(&cfg, 1000);
    let subs = ["100.64.1.2", "100.64.1.3", "100.64.1.4"];
    for i in [2u8, 3, 4] {
        h.neighbors
            .learn(u32::from(Ipv4Addr::new(100, 64, 1, i)), &HOST_MAC);
    }
    let mut srcs = Vec::new();
    for sub in &subs[..2] {
        let o = one(
            &mut h,
            &ip_frame(sub, "192.0.2.10", GRE, &gre_body(1), false),
            Inside,
            1000,
            Outside,
        );
        srcs.push(parts(&o).1);
    }
    assert_ne!(srcs[0], srcs[1], "two subscribers, two pool addresses");
    let r = h.inject(
        &ip_frame(subs[2], "192.0.2.10", GRE, &gre_body(1), false),
        Inside,
        1000,
    );
    assert!(r.iter().all(|(side, _)| *side == Inside), "{r:02x?}");
    assert_eq!(
        h.counters.dropped(DropReason::OtherProtocolAddressConflict),
        1
    );
    // Each one's GRE comes back to its own subscriber.
    for (sub, src) in subs.iter().zip(&srcs) {
        let b = one(
            &mut h,
            &ip_frame("192.0.2.10", &src.to_string(), GRE, &gre_body(9), true),
            Outside,
            1001,
            Inside,
        );
        assert_eq!(parts(&b).2, ip(sub));
    }
}

#[test]
fn a_pool_of_one_address_refuses_the_second_subscriber_and_keeps_the_first() {
    let text = config_text("").replace("198.51.100.0/28", "198.51.100.1/32");
    let cfg = cgnat_config::Config::parse(&text, "test.toml").unwrap();
    let mut h = Harness::new(&cfg, 1000);
    for i in [2u8, 3] {
        h.neighbors
            .learn(u32::from(Ipv4Addr::new(100, 64, 1, i)), &HOST_MAC);
    }
    let first = ip_frame("100.64.1.2", "192.0.2.10", GRE, &gre_body(1), false);
    let o = one(&mut h, &first, Inside, 1000, Outside);
    assert_eq!(parts(&o).1, ip("198.51.100.1"));
    let second = ip_frame("100.64.1.3", "192.0.2.10", GRE, &gre_body(2), false);
    let r = h.inject(&second, Inside, 1000);
    // Refused (an ICMP admin-prohibited to the subscriber at most), never sent out.
    assert!(r.iter().all(|(side, _)| *side == Inside), "{r:02x?}");
    assert_eq!(
        h.counters.dropped(DropReason::OtherProtocolAddressConflict),
        1
    );
    // Another remote, or another protocol to that remote, is free for it.
    one(
        &mut h,
        &ip_frame("100.64.1.3", "192.0.2.11", GRE, &gre_body(3), false),
        Inside,
        1000,
        Outside,
    );
    one(
        &mut h,
        &ip_frame("100.64.1.3", "192.0.2.10", ESP, &esp_body(7), false),
        Inside,
        1000,
        Outside,
    );
    // The first subscriber's flow goes on, both ways.
    one(&mut h, &first, Inside, 1001, Outside);
    let back = ip_frame("192.0.2.10", "198.51.100.1", GRE, &gre_body(4), true);
    let b = one(&mut h, &back, Outside, 1001, Inside);
    assert_eq!(parts(&b).2, ip("100.64.1.2"));
}

#[test]
fn nothing_comes_in_without_a_session() {
    let mut h = harness_n("", 1);
    none(
        &mut h,
        &ip_frame("192.0.2.10", "198.51.100.3", GRE, &gre_body(1), true),
        Outside,
        1000,
    );
    none(
        &mut h,
        &ip_frame("192.0.2.10", "198.51.100.3", ESP, &esp_body(1), true),
        Outside,
        1000,
    );
    assert_eq!(h.counters.dropped(DropReason::NoMapping), 2);
    assert_eq!(h.counters.sessions_created[proto_index(GRE)].get(), 0);
}

/// An ICMP error (`kind`, `code`) from `from` to `to` quoting `quoted` (an IPv4
/// packet: its header and 8 bytes).
fn icmp_error(from: &str, to: &str, kind: u8, code: u8, quoted: &[u8], inbound: bool) -> Vec<u8> {
    let mut m = vec![kind, code, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&quoted[..28.min(quoted.len())]);
    let c = !checksum::fold(checksum::sum(&m));
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ip_frame(from, to, 1, &m, inbound)
}

#[test]
fn icmp_errors_about_gre_are_translated_both_ways() {
    let mut h = harness_n("", 1);
    let f = ip_frame("100.64.1.2", "192.0.2.10", GRE, &gre_body(1), false);
    let o = one(&mut h, &f, Inside, 1000, Outside);
    let pool = parts(&o).1;
    // A router on the way: host unreachable about the GRE packet the NAT sent.
    let e = icmp_error("203.0.113.7", &pool.to_string(), 3, 1, &o[14..], true);
    let b = one(&mut h, &e, Outside, 1001, Inside);
    let (p, s, d, m) = parts(&b);
    assert_eq!((p, s, d), (1, ip("203.0.113.7"), ip("100.64.1.2")));
    assert_eq!(checksum::fold(checksum::sum(&m)), 0xffff, "ICMP checksum");
    let quoted = &m[8..];
    assert_eq!(quoted[9], GRE);
    assert_eq!(&quoted[12..16], &ip("100.64.1.2").octets(), "quoted source");
    assert_eq!(&quoted[16..20], &ip("192.0.2.10").octets());
    // The subscriber's error about GRE that came in goes out from the pool address.
    let inbound = ip_frame("192.0.2.10", &pool.to_string(), GRE, &gre_body(2), true);
    let i = one(&mut h, &inbound, Outside, 1002, Inside);
    let e = icmp_error("100.64.1.2", "192.0.2.10", 3, 2, &i[14..], false);
    let x = one(&mut h, &e, Inside, 1003, Outside);
    let (p, s, d, m) = parts(&x);
    assert_eq!((p, s, d), (1, pool, ip("192.0.2.10")));
    assert_eq!(checksum::fold(checksum::sum(&m)), 0xffff, "ICMP checksum");
    assert_eq!(&m[8 + 16..8 + 20], &pool.octets(), "quoted destination");
}

#[test]
fn nat_protocols_decides_which_are_translated() {
    let mut h = harness_n(
        "[nat.protocols]\ngre = \"drop\"\nsctp = \"allow\"\n99 = \"allow\"",
        1,
    );
    none(
        &mut h,
        &ip_frame("100.64.1.2", "192.0.2.10", GRE, &gre_body(1), false),
        Inside,
        1000,
    );
    none(
        &mut h,
        &ip_frame("100.64.1.2", "192.0.2.10", 103, b"pim pim!", false),
        Inside,
        1000,
    );
    assert_eq!(h.counters.dropped(DropReason::ProtocolDenied), 2);
    for proto in [ESP, 132, 99] {
        let o = one(
            &mut h,
            &ip_frame("100.64.1.2", "192.0.2.10", proto, &esp_body(3), false),
            Inside,
            1000,
            Outside,
        );
        assert_eq!(parts(&o).0, proto);
    }
    // The default: SCTP is not translated.
    let mut d = harness_n("", 1);
    none(
        &mut d,
        &ip_frame("100.64.1.2", "192.0.2.10", 132, &esp_body(1), false),
        Inside,
        1000,
    );
    assert_eq!(d.counters.dropped(DropReason::ProtocolDenied), 1);
}

#[test]
fn an_idle_session_expires_after_the_other_timeout() {
    let mut h = harness_n("timeouts = { other = 120 }", 1);
    let f = ip_frame("100.64.1.2", "192.0.2.10", GRE, &gre_body(1), false);
    let pool = parts(&one(&mut h, &f, Inside, 1000, Outside)).1;
    let back = ip_frame("192.0.2.10", &pool.to_string(), GRE, &gre_body(2), true);
    h.expire(1100);
    one(&mut h, &back, Outside, 1100, Inside);
    h.expire(1121);
    assert_eq!(h.counters.sessions_active[proto_index(GRE)].get(), 0);
    assert_eq!(h.counters.sessions_expired[proto_index(GRE)].get(), 1);
    none(&mut h, &back, Outside, 1122);
    assert_eq!(h.counters.dropped(DropReason::NoMapping), 1);
    // The subscriber is gone with its last session.
    assert_eq!(h.counters.subscribers_active.get(), 0);
}

#[test]
fn with_two_workers_replies_reach_the_session_whichever_queue_they_arrive_on() {
    let mut h = harness_n("pooling = \"arbitrary\"\nallocation = \"dynamic\"", 2);
    for (k, remote) in ["192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13"]
        .iter()
        .enumerate()
    {
        for (w_out, w_in) in [(0u16, 1u16), (1, 0)] {
            let subs = ["100.64.1.2", "100.64.2.3"];
            let mut pools = Vec::new();
            for sub in subs {
                let f = ip_frame(sub, remote, GRE, &gre_body(k as u8), false);
                let o = h.inject_at(w_out, &f, Inside, 1000);
                assert_eq!(o.len(), 1, "one frame out: {o:02x?}");
                assert_eq!(o[0].0, Outside);
                pools.push(parts(&o[0].1).1);
            }
            assert_ne!(
                pools[0], pools[1],
                "two subscribers, one remote: two addresses"
            );
            for (sub, pool) in subs.iter().zip(&pools) {
                let back = ip_frame(remote, &pool.to_string(), GRE, &gre_body(9), true);
                let b = h.inject_at(w_in, &back, Outside, 1001);
                assert_eq!(b.len(), 1, "the reply reaches {sub}: {b:02x?}");
                assert_eq!(parts(&b[0].1).2, ip(sub));
            }
        }
    }
}

#[test]
fn cgnat_show_names_the_protocol_of_an_address_only_session() {
    use cgnat_dataplane::inspect::{answer, Answer, Filter, Query};
    let mut h = harness_n("[nat.protocols]\n99 = \"allow\"", 1);
    for proto in [GRE, ESP, 99] {
        one(
            &mut h,
            &ip_frame("100.64.1.2", "192.0.2.10", proto, &esp_body(1), false),
            Inside,
            1000,
            Outside,
        );
    }
    let q = Query::Sessions(Filter::default(), 0, 10);
    let Answer::Sessions(rows, _) = answer(&h.worker.nat, 0, &q, 1000) else {
        panic!("not a session answer")
    };
    let mut seen: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            let i = r.info();
            (i.protocol, i.inside, i.remote)
        })
        .collect();
    seen.sort();
    let row = |p: &str| (p.into(), "100.64.1.2:0".into(), "192.0.2.10:0".into());
    assert_eq!(seen, vec![row("99"), row("esp"), row("gre")]);
}

#[test]
fn a_reload_that_drops_a_protocol_stops_it_both_ways_at_once() {
    let mut h = harness_n("", 1);
    let f = ip_frame("100.64.1.2", "192.0.2.10", GRE, &gre_body(1), false);
    let pool = parts(&one(&mut h, &f, Inside, 1000, Outside)).1;
    let back = ip_frame("192.0.2.10", &pool.to_string(), GRE, &gre_body(2), true);
    let text = config_text("[nat.protocols]\ngre = \"drop\"");
    let running = config("");
    let new = cgnat_config::Config::parse(&text, "test.toml").unwrap();
    let changes = cgnat_config::reload_plan(&running, &new, &text).expect("nat.protocols is live");
    assert!(changes.iter().any(|c| c.key.starts_with("nat.protocols")));
    h.reconfigure(&new, 1001);
    none(&mut h, &f, Inside, 1001);
    none(&mut h, &back, Outside, 1001);
    assert_eq!(h.counters.dropped(DropReason::ProtocolDenied), 2);
}

#[test]
fn address_only_packets_to_a_pool_address_are_not_hairpinned() {
    let mut h = harness_n("", 1);
    none(
        &mut h,
        &ip_frame("100.64.1.2", "198.51.100.5", GRE, &gre_body(1), false),
        Inside,
        1000,
    );
    assert_eq!(h.counters.dropped(DropReason::ProtocolDenied), 1);
    assert_eq!(h.counters.sessions_created[proto_index(GRE)].get(), 0);
}

#[test]
fn with_two_workers_an_icmp_error_about_gre_reaches_the_session_from_either_queue() {
    let mut h = harness_n("", 2);
    for (k, remote) in ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
        .iter()
        .enumerate()
    {
        let f = ip_frame("100.64.1.2", remote, GRE, &gre_body(k as u8), false);
        let o = h.inject_at(0, &f, Inside, 1000);
        assert_eq!(o.len(), 1, "{o:02x?}");
        let pool = parts(&o[0].1).1;
        for w in [0u16, 1] {
            // A router's error, whose source says nothing of the session's worker.
            let e = icmp_error("203.0.113.7", &pool.to_string(), 3, 1, &o[0].1[14..], true);
            let b = h.inject_at(w, &e, Outside, 1001);
            assert_eq!(b.len(), 1, "the error reaches the subscriber: {b:02x?}");
            assert_eq!(parts(&b[0].1).2, ip("100.64.1.2"));
        }
    }
}
