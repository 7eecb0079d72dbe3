//! NAT44 behaviour through the whole pipeline (no EAL): translation both ways, TCP
//! states and timeouts, ICMP queries and errors, limits, ARP, bad input.

mod common;
use cgnat_dataplane::buf::{PacketBuf, VecBuf};
use cgnat_dataplane::counters::DropReason;
use cgnat_dataplane::nat::rss::{Steering, STEERING_KEY};
use cgnat_dataplane::pipeline::Side::{Inside, Outside};
use cgnat_dataplane::pipeline::{Verdict, Worker};
use common::*;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

fn pool_contains(a: &Ipv4Addr) -> bool {
    a.octets()[..3] == [198, 51, 100] && a.octets()[3] < 16
}

#[test]
fn rfc4787_req4_udp_out_and_back_with_port_parity_and_checksums() {
    let mut h = harness("");
    let f = one(
        &mut h,
        &udp("100.64.1.2:5000", "192.0.2.10:53", b"query", false),
        Inside,
        1000,
        Outside,
    );
    let o = out(&f);
    assert!(pool_contains(o.src.ip()), "source {} not in pool", o.src);
    assert_eq!(o.dst, sa("192.0.2.10:53"));
    assert_eq!(o.ttl, 63);
    assert_eq!(o.dst_mac, GW_MAC);
    assert_eq!(o.src_mac, cgnat_dataplane::harness::OUTSIDE_MAC);
    // Port parity is kept by default (RFC 4787 REQ-4).
    assert_eq!(o.src.port() & 1, 5000 & 1);
    // The reply comes back to the inside host.
    let reply = udp("192.0.2.10:53", &o.src.to_string(), b"answer", true);
    let back = out(&one(&mut h, &reply, Outside, 1001, Inside));
    assert_eq!(back.dst, sa("100.64.1.2:5000"));
    assert_eq!(back.src, sa("192.0.2.10:53"));
    assert_eq!(back.dst_mac, HOST_MAC);
    assert_eq!(h.counters.sessions_created[1].get(), 1);
}

#[test]
fn udp_checksum_zero_stays_zero() {
    let mut h = harness("");
    let mut f = udp("100.64.1.2:5000", "192.0.2.10:53", b"q", false);
    f[14 + 20 + 6] = 0;
    f[14 + 20 + 7] = 0;
    let o = one(&mut h, &f, Inside, 1000, Outside);
    assert_eq!(&o[40..42], &[0, 0]);
    out(&o);
}

#[test]
fn rfc4787_req1_req2_endpoint_independent_mapping_and_paired_pooling() {
    let mut h = harness("");
    let a = out(&one(
        &mut h,
        &udp("100.64.1.2:5000", "192.0.2.10:53", b"", false),
        Inside,
        1000,
        Outside,
    ));
    let b = out(&one(
        &mut h,
        &udp("100.64.1.2:5000", "192.0.2.99:123", b"", false),
        Inside,
        1000,
        Outside,
    ));
    assert_eq!(
        a.src, b.src,
        "same inside endpoint, same mapping for every remote"
    );
    let c = out(&one(
        &mut h,
        &udp("100.64.1.2:6001", "192.0.2.10:53", b"", false),
        Inside,
        1000,
        Outside,
    ));
    assert_eq!(
        a.src.ip(),
        c.src.ip(),
        "paired pooling: one address per subscriber"
    );
    assert_ne!(a.src.port(), c.src.port());
    // A third remote may reach the mapping (endpoint-independent filtering).
    let f = udp("192.0.2.200:4444", &a.src.to_string(), b"hi", true);
    let back = out(&one(&mut h, &f, Outside, 1001, Inside));
    assert_eq!(back.dst, sa("100.64.1.2:5000"));
}

#[test]
fn rfc4787_req8_address_and_port_dependent_filtering_refuses_strangers() {
    let mut h = harness("filtering = \"address-and-port-dependent\"");
    let a = out(&one(
        &mut h,
        &udp("100.64.1.2:5000", "192.0.2.10:53", b"", false),
        Inside,
        1000,
        Outside,
    ));
    none(
        &mut h,
        &udp("192.0.2.200:53", &a.src.to_string(), b"", true),
        Outside,
        1001,
    );
    none(
        &mut h,
        &udp("192.0.2.10:54", &a.src.to_string(), b"", true),
        Outside,
        1001,
    );
    assert_eq!(h.counters.dropped(DropReason::Filtered), 2);
    one(
        &mut h,
        &udp("192.0.2.10:53", &a.src.to_string(), b"", true),
        Outside,
        1001,
        Inside,
    );
}

#[test]
fn rfc4787_req8_address_dependent_filtering_admits_known_addresses_only() {
    let mut h = harness("filtering = \"address-dependent\"");
    let a = out(&one(
        &mut h,
        &udp("100.64.1.2:5000", "192.0.2.10:53", b"", false),
        Inside,
        1000,
        Outside,
    ));
    one(
        &mut h,
        &udp("192.0.2.10:9999", &a.src.to_string(), b"", true),
        Outside,
        1001,
        Inside,
    );
    none(
        &mut h,
        &udp("192.0.2.11:53", &a.src.to_string(), b"", true),
        Outside,
        1001,
    );
    assert_eq!(h.counters.dropped(DropReason::Filtered), 1);
}

#[test]
fn unsolicited_inbound_is_dropped_and_counted() {
    let mut h = harness("");
    none(
        &mut h,
        &udp("192.0.2.10:53", "198.51.100.3:4000", b"", true),
        Outside,
        1000,
    );
    none(
        &mut h,
        &udp("192.0.2.10:53", "203.0.113.77:4000", b"", true),
        Outside,
        1000,
    );
    assert_eq!(h.counters.dropped(DropReason::NoMapping), 1);
    assert_eq!(h.counters.dropped(DropReason::NotOurAddress), 1);
}

#[test]
fn rfc5382_req5_rfc7857_tcp_established_and_transitory_timeouts() {
    let mut h = harness("");
    let syn = out(&one(
        &mut h,
        &tcp("100.64.1.2:40000", "192.0.2.10:80", 1, "S", b"", false),
        Inside,
        1000,
        Outside,
    ));
    let o = syn.src.to_string();
    // Half-open sessions live for the transitory timeout (240 s) only.
    one(
        &mut h,
        &tcp("192.0.2.10:80", &o, 7, "SA", b"", true),
        Outside,
        1001,
        Inside,
    );
    one(
        &mut h,
        &tcp("100.64.1.2:40000", "192.0.2.10:80", 2, "A", b"GET /", false),
        Inside,
        1002,
        Outside,
    );
    // Established: survives well past the transitory timeout...
    assert_eq!(h.expire(1002 + 3600), 0);
    one(
        &mut h,
        &tcp("192.0.2.10:80", &o, 8, "A", b"data", true),
        Outside,
        1002 + 3600,
        Inside,
    );
    // ...and expires after 2 h 4 min without outbound traffic (RFC 5382 REQ-5).
    assert_eq!(h.expire(1002 + 7439), 0);
    assert_eq!(h.expire(1002 + 7441), 1);
    none(
        &mut h,
        &tcp("192.0.2.10:80", &o, 9, "A", b"late", true),
        Outside,
        1002 + 7442,
    );
}

#[test]
fn rfc7857_tcp_fin_both_ways_moves_to_transitory_timeout() {
    let mut h = harness("");
    let syn = out(&one(
        &mut h,
        &tcp("100.64.1.2:40000", "192.0.2.10:80", 1, "S", b"", false),
        Inside,
        1000,
        Outside,
    ));
    let o = syn.src.to_string();
    one(
        &mut h,
        &tcp("192.0.2.10:80", &o, 7, "SA", b"", true),
        Outside,
        1000,
        Inside,
    );
    one(
        &mut h,
        &tcp("100.64.1.2:40000", "192.0.2.10:80", 2, "FA", b"", false),
        Inside,
        1000,
        Outside,
    );
    one(
        &mut h,
        &tcp("192.0.2.10:80", &o, 8, "FA", b"", true),
        Outside,
        1000,
        Inside,
    );
    one(
        &mut h,
        &tcp("100.64.1.2:40000", "192.0.2.10:80", 3, "A", b"", false),
        Inside,
        1000,
        Outside,
    );
    assert_eq!(h.expire(1239), 0);
    assert_eq!(h.expire(1241), 1);
}

#[test]
fn rfc7857_tcp_rst_holds_for_transitory_timeout() {
    let mut h = harness("");
    let syn = out(&one(
        &mut h,
        &tcp("100.64.1.2:40000", "192.0.2.10:80", 1, "S", b"", false),
        Inside,
        1000,
        Outside,
    ));
    let o = syn.src.to_string();
    one(
        &mut h,
        &tcp("192.0.2.10:80", &o, 7, "SA", b"", true),
        Outside,
        1000,
        Inside,
    );
    one(
        &mut h,
        &tcp("100.64.1.2:40000", "192.0.2.10:80", 2, "A", b"", false),
        Inside,
        1000,
        Outside,
    );
    one(
        &mut h,
        &tcp("192.0.2.10:80", &o, 8, "R", b"", true),
        Outside,
        1010,
        Inside,
    );
    // RST is inbound: it does not refresh; the session goes 240 s after the last outbound.
    assert_eq!(h.expire(1239), 0);
    assert_eq!(h.expire(1241), 1);
}

#[test]
fn tcp_without_syn_creates_nothing() {
    let mut h = harness("");
    none(
        &mut h,
        &tcp("100.64.1.2:40000", "192.0.2.10:80", 1, "A", b"x", false),
        Inside,
        1000,
    );
    none(
        &mut h,
        &tcp("100.64.1.2:40000", "192.0.2.10:80", 1, "SA", b"", false),
        Inside,
        1000,
    );
    assert_eq!(h.counters.dropped(DropReason::TcpNoSessionNotSyn), 2);
    assert_eq!(h.worker.nat.live_sessions(), 0);
}

#[test]
fn rfc4787_req5_req6_udp_timeout_outbound_refresh_only_and_quarantine() {
    let mut h = harness("");
    let a = out(&one(
        &mut h,
        &udp("100.64.1.2:5000", "192.0.2.10:53", b"", false),
        Inside,
        1000,
        Outside,
    ));
    one(
        &mut h,
        &udp("192.0.2.10:53", &a.src.to_string(), b"", true),
        Outside,
        1200,
        Inside,
    );
    assert_eq!(h.expire(1299), 0);
    assert_eq!(h.expire(1300), 1);
    assert_eq!(h.worker.nat.live_mappings(), 0);
    // The port waits out its quarantine (RFC 6888 REQ-8), so the subscriber keeps its
    // block until then.
    assert_eq!(h.worker.nat.live_subscribers(), 1);
    assert_eq!(h.counters.blocks_active.get(), 1);
    h.expire(1419);
    assert_eq!(h.worker.nat.live_subscribers(), 1);
    h.expire(1420);
    assert_eq!(h.worker.nat.live_subscribers(), 0);
    assert_eq!(h.counters.blocks_active.get(), 0);
}

#[test]
fn rfc5508_req1_icmp_query_identifier_mapping_and_timeout() {
    let mut h = harness("");
    let o = out(&one(
        &mut h,
        &ping("100.64.1.2", "192.0.2.10", 77, 1, false, false),
        Inside,
        1000,
        Outside,
    ));
    assert!(pool_contains(o.src.ip()));
    let reply = ping(
        "192.0.2.10",
        &o.src.ip().to_string(),
        o.src.port(),
        1,
        true,
        true,
    );
    let back = out(&one(&mut h, &reply, Outside, 1000, Inside));
    assert_eq!(*back.dst.ip(), ip("100.64.1.2"));
    assert_eq!(back.dst.port(), 77);
    // An echo request from outside to a pool address creates nothing.
    none(
        &mut h,
        &ping("192.0.2.10", &o.src.ip().to_string(), 5, 1, false, true),
        Outside,
        1000,
    );
    assert_eq!(h.expire(1059), 0);
    assert_eq!(h.expire(1060), 1);
}

/// An ICMP error about `inner` (an IPv4 packet starting at its header) from `from` to `to`.
fn icmp_error(from: &str, to: &str, kind: u8, code: u8, inner: &[u8], inbound: bool) -> Vec<u8> {
    let mut body = vec![kind, code, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&inner[..inner.len().min(28)]);
    let c = cgnat_dataplane::wire::checksum::finish(cgnat_dataplane::wire::checksum::sum(&body));
    body[2..4].copy_from_slice(&c.to_be_bytes());
    let (smac, dmac) = if inbound {
        (GW_MAC, cgnat_dataplane::harness::OUTSIDE_MAC)
    } else {
        (HOST_MAC, cgnat_dataplane::harness::INSIDE_MAC)
    };
    let b = etherparse::PacketBuilder::ethernet2(smac, dmac).ipv4(
        ip(from).octets(),
        ip(to).octets(),
        64,
    );
    // Build as raw IP with protocol 1.
    let mut v = Vec::new();
    b.write(&mut v, etherparse::IpNumber::ICMP, &body).unwrap();
    v
}

#[test]
fn rfc5508_req3_icmp_error_from_outside_translates_embedded_udp() {
    let mut h = harness("");
    let sent = one(
        &mut h,
        &udp("100.64.1.2:5000", "192.0.2.10:53", b"q", false),
        Inside,
        1000,
        Outside,
    );
    let o = out(&sent);
    let err = icmp_error(
        "192.0.2.1",
        &o.src.ip().to_string(),
        3,
        3,
        &sent[14..],
        true,
    );
    let back = one(&mut h, &err, Outside, 1001, Inside);
    let b = out(&back);
    assert_eq!(*b.dst.ip(), ip("100.64.1.2"));
    let inner = &back[14 + 20 + 8..];
    assert_eq!(
        &inner[12..16],
        &[100, 64, 1, 2],
        "embedded source is the inside host"
    );
    assert_eq!(u16::from_be_bytes([inner[20], inner[21]]), 5000);
    assert_eq!(
        cgnat_dataplane::wire::checksum::fold(cgnat_dataplane::wire::checksum::sum(&inner[..20])),
        0xffff
    );
    // Errors never create state, and an error about nothing is counted.
    let stray = icmp_error(
        "192.0.2.1",
        "198.51.100.5",
        3,
        3,
        &udp("198.51.100.5:1", "192.0.2.10:53", b"", false)[14..],
        true,
    );
    none(&mut h, &stray, Outside, 1001);
    assert_eq!(h.counters.dropped(DropReason::IcmpErrorNoSession), 1);
}

#[test]
fn rfc5508_req4_icmp_error_from_inside_translates_embedded_udp() {
    let mut h = harness("");
    let a = out(&one(
        &mut h,
        &udp("100.64.1.2:5000", "192.0.2.10:53", b"q", false),
        Inside,
        1000,
        Outside,
    ));
    let inbound = one(
        &mut h,
        &udp("192.0.2.10:53", &a.src.to_string(), b"r", true),
        Outside,
        1000,
        Inside,
    );
    let err = icmp_error("100.64.1.2", "192.0.2.10", 3, 3, &inbound[14..], false);
    let o = one(&mut h, &err, Inside, 1001, Outside);
    let e = out(&o);
    assert_eq!(e.src.ip(), a.src.ip());
    let inner = &o[14 + 20 + 8..];
    assert_eq!(
        &inner[16..20],
        &a.src.ip().octets(),
        "embedded destination is the mapping"
    );
    assert_eq!(u16::from_be_bytes([inner[22], inner[23]]), a.src.port());
}

#[test]
fn ttl_expiry_sends_time_exceeded_from_the_inside_port() {
    let mut h = harness("");
    let mut f = udp("100.64.1.2:5000", "192.0.2.10:53", b"q", false);
    f[14 + 8] = 1;
    f[14 + 10] = 0;
    f[14 + 11] = 0;
    let c =
        cgnat_dataplane::wire::checksum::finish(cgnat_dataplane::wire::checksum::sum(&f[14..34]));
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let o = one(&mut h, &f, Inside, 1000, Inside);
    let e = out(&o);
    assert_eq!(*e.src.ip(), ip("100.64.0.1"));
    assert_eq!(*e.dst.ip(), ip("100.64.1.2"));
    assert_eq!(o[34], 11);
    assert_eq!(e.dst_mac, HOST_MAC);
    assert_eq!(h.counters.dropped(DropReason::TtlExpired), 1);
    assert_eq!(h.worker.nat.live_sessions(), 0);
}

#[test]
fn rfc6888_req11_full_table_refuses_new_sessions_and_keeps_live_ones() {
    let mut h = harness("max_sessions = 4");
    let mut live = Vec::new();
    for i in 0..4 {
        let f = udp(
            &format!("100.64.1.{}:5000", i + 2),
            "192.0.2.10:53",
            b"",
            false,
        );
        live.push(out(&one(&mut h, &f, Inside, 1000, Outside)).src);
    }
    // The fifth is refused with ICMP admin-prohibited back to the subscriber.
    let o = one(
        &mut h,
        &udp("100.64.1.9:5000", "192.0.2.10:53", b"", false),
        Inside,
        1000,
        Inside,
    );
    assert_eq!(&o[34..36], &[3, 13]);
    assert_eq!(h.counters.dropped(DropReason::SessionTableFull), 1);
    for (i, m) in live.iter().enumerate() {
        let back = out(&one(
            &mut h,
            &udp("192.0.2.10:53", &m.to_string(), b"", true),
            Outside,
            1001,
            Inside,
        ));
        assert_eq!(
            back.dst,
            SocketAddrV4::new(Ipv4Addr::new(100, 64, 1, i as u8 + 2), 5000)
        );
    }
}

#[test]
fn rfc6888_req5_subscriber_session_limit() {
    let mut h = harness("max_sessions_per_subscriber = 2\nicmp_on_limit = false");
    one(
        &mut h,
        &udp("100.64.1.2:1", "192.0.2.10:53", b"", false),
        Inside,
        1000,
        Outside,
    );
    one(
        &mut h,
        &udp("100.64.1.2:2", "192.0.2.10:53", b"", false),
        Inside,
        1000,
        Outside,
    );
    none(
        &mut h,
        &udp("100.64.1.2:3", "192.0.2.10:53", b"", false),
        Inside,
        1000,
    );
    one(
        &mut h,
        &udp("100.64.1.3:3", "192.0.2.10:53", b"", false),
        Inside,
        1000,
        Outside,
    );
    assert_eq!(h.counters.dropped(DropReason::SubscriberSessionLimit), 1);
}

/// The subscriber table is sized by `nat.max_subscribers`: one more subscriber is
/// refused (counted `subscriber_table_full`) and the live ones keep their sessions.
#[test]
fn a_subscriber_past_max_subscribers_is_refused_and_live_sessions_stay() {
    let mut h = harness("max_subscribers = 2");
    let mut live = Vec::new();
    for host in ["100.64.1.2:1", "100.64.1.3:1"] {
        let o = one(
            &mut h,
            &udp(host, "192.0.2.10:53", b"", false),
            Inside,
            1000,
            Outside,
        );
        live.push((host, out(&o).src));
    }
    // Refused like the other limits: ICMP admin-prohibited back to the subscriber.
    let o = one(
        &mut h,
        &udp("100.64.1.4:1", "192.0.2.10:53", b"", false),
        Inside,
        1000,
        Inside,
    );
    assert_eq!(&o[34..36], &[3, 13]);
    assert_eq!(h.counters.dropped(DropReason::SubscriberTableFull), 1);
    assert_eq!(h.worker.nat.live_subscribers(), 2);
    // A known subscriber still opens sessions; replies reach the live ones.
    one(
        &mut h,
        &udp("100.64.1.2:2", "192.0.2.10:53", b"", false),
        Inside,
        1000,
        Outside,
    );
    for (host, m) in live {
        let back = out(&one(
            &mut h,
            &udp("192.0.2.10:53", &m.to_string(), b"", true),
            Outside,
            1001,
            Inside,
        ));
        assert_eq!(back.dst.to_string(), host);
    }
    assert_eq!(h.worker.nat.live_sessions(), 3);
}

#[test]
fn rfc6888_req4_req14_port_blocks_hold_a_subscribers_ports_and_cap_them() {
    let mut h = harness("allocation = \"port-block\"\nblock_size = 64\nmax_blocks_per_subscriber = 2\nicmp_on_limit = false\nport_parity = false");
    let mut ports = Vec::new();
    for p in 0..128u16 {
        let f = udp(
            &format!("100.64.1.2:{}", 2000 + p),
            "192.0.2.10:53",
            b"",
            false,
        );
        ports.push(out(&one(&mut h, &f, Inside, 1000, Outside)).src.port());
    }
    none(
        &mut h,
        &udp("100.64.1.2:9999", "192.0.2.10:53", b"", false),
        Inside,
        1000,
    );
    assert_eq!(h.counters.dropped(DropReason::SubscriberPortLimit), 1);
    let mut blocks: Vec<u16> = ports.iter().map(|p| (p - 1024) / 64).collect();
    blocks.sort();
    blocks.dedup();
    assert_eq!(blocks.len(), 2, "128 ports in exactly two blocks");
    assert_eq!(h.counters.blocks_active.get(), 2);
}

#[test]
fn rfc6888_req15_dynamic_allocation_spreads_ports_randomly() {
    let mut h = harness("allocation = \"dynamic\"");
    let mut ports = Vec::new();
    for p in 0..50u16 {
        let f = udp(
            &format!("100.64.1.2:{}", 2000 + 2 * p),
            "192.0.2.10:53",
            b"",
            false,
        );
        ports.push(out(&one(&mut h, &f, Inside, 1000, Outside)).src.port());
    }
    let sequential = ports.windows(2).filter(|w| w[1] == w[0] + 2).count();
    assert!(sequential < 5, "ports look sequential: {ports:?}");
}

#[test]
fn rfc4787_req9_hairpinning_udp_shows_the_public_source() {
    let mut h = harness("");
    let b = out(&one(
        &mut h,
        &udp("100.64.2.2:7000", "192.0.2.10:53", b"", false),
        Inside,
        1000,
        Outside,
    ));
    let f = udp("100.64.1.2:5000", &b.src.to_string(), b"hello", false);
    let o = out(&one(&mut h, &f, Inside, 1001, Inside));
    assert_eq!(o.dst, sa("100.64.2.2:7000"));
    assert!(
        pool_contains(o.src.ip()),
        "B sees A's public address, not {}",
        o.src
    );
    assert_eq!(h.counters.hairpin.get(), 1);
}

#[test]
fn rfc6888_req6_excluded_destinations_pass_untranslated() {
    let mut h = harness("exclude_destinations = [\"192.0.2.0/24\"]");
    let o = out(&one(
        &mut h,
        &udp("100.64.1.2:5000", "192.0.2.10:53", b"", false),
        Inside,
        1000,
        Outside,
    ));
    assert_eq!(o.src, sa("100.64.1.2:5000"));
    assert_eq!(h.worker.nat.live_sessions(), 0);
}

#[test]
fn arp_is_answered_for_port_and_pool_addresses() {
    let mut h = harness("");
    let arp = |sha: [u8; 6], spa: &str, tpa: &str| {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&sha);
        f.extend_from_slice(&[0x08, 0x06]);
        f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&sha);
        f.extend_from_slice(&ip(spa).octets());
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&ip(tpa).octets());
        f
    };
    let r = one(
        &mut h,
        &arp([2, 9, 9, 9, 9, 9], "203.0.113.77", "198.51.100.7"),
        Outside,
        1000,
        Outside,
    );
    assert_eq!(&r[0..6], &[2, 9, 9, 9, 9, 9]);
    assert_eq!(&r[20..22], &[0, 2], "a reply");
    assert_eq!(&r[22..28], &cgnat_dataplane::harness::OUTSIDE_MAC);
    assert_eq!(&r[28..32], &[198, 51, 100, 7]);
    assert_eq!(
        h.neighbors.lookup(u32::from(ip("203.0.113.77"))),
        None,
        "a request teaches nothing (only the answer to a request of ours does)"
    );
    // The configured gateway_mac is pinned: an ARP claiming the gateway's address
    // (spoofed or not) does not replace it.
    one(
        &mut h,
        &arp([2, 6, 6, 6, 6, 6], "203.0.113.254", "203.0.113.1"),
        Outside,
        1000,
        Outside,
    );
    assert_eq!(
        h.neighbors.lookup(u32::from(ip("203.0.113.254"))),
        Some(GW_MAC)
    );
    // Inside: only the port's own address; the pool is not proxied there.
    one(
        &mut h,
        &arp([2, 1, 1, 1, 1, 1], "100.64.9.9", "100.64.0.1"),
        Inside,
        1000,
        Inside,
    );
    none(
        &mut h,
        &arp([2, 1, 1, 1, 1, 1], "100.64.9.9", "198.51.100.7"),
        Inside,
        1000,
    );
}

#[test]
fn ping_to_the_appliance_is_answered() {
    let mut h = harness("");
    let o = out(&one(
        &mut h,
        &ping("100.64.1.2", "100.64.0.1", 9, 1, false, false),
        Inside,
        1000,
        Inside,
    ));
    assert_eq!(*o.src.ip(), ip("100.64.0.1"));
    assert_eq!(*o.dst.ip(), ip("100.64.1.2"));
}

#[test]
fn unknown_next_hop_is_asked_for_and_the_frame_waits() {
    let mut h = harness("");
    // 100.65.0.1 is on the inside subnet but not known: its packet is translated (the
    // outside gateway is known) and an ARP request asks for it on the inside.
    let o = h.inject(
        &udp("100.65.0.1:5000", "192.0.2.10:53", b"", false),
        Inside,
        1000,
    );
    assert_eq!(o.len(), 2);
    let sent = out(&o.iter().find(|x| x.0 == Outside).unwrap().1);
    let req = &o.iter().find(|x| x.0 == Inside).unwrap().1;
    assert_eq!(&req[12..14], &[0x08, 0x06]);
    assert_eq!(&req[38..42], &[100, 65, 0, 1]);
    // The reply waits for the answer.
    none(
        &mut h,
        &udp("192.0.2.10:53", &sent.src.to_string(), b"", true),
        Outside,
        1000,
    );
    assert_eq!(h.worker.waiting(), 1);
}

#[test]
fn ip_options_are_translated() {
    let mut h = harness("");
    let base = udp("100.64.1.2:5000", "192.0.2.10:53", b"opt", false);
    // Insert 4 bytes of options (NOP NOP NOP EOL) and fix IHL, length, checksum.
    let mut f = base[..34].to_vec();
    f.extend_from_slice(&[1, 1, 1, 0]);
    f.extend_from_slice(&base[34..]);
    f[14] = 0x46;
    let tl = u16::from_be_bytes([f[16], f[17]]) + 4;
    f[16..18].copy_from_slice(&tl.to_be_bytes());
    f[24] = 0;
    f[25] = 0;
    let c =
        cgnat_dataplane::wire::checksum::finish(cgnat_dataplane::wire::checksum::sum(&f[14..38]));
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let o = one(&mut h, &f, Inside, 1000, Outside);
    assert!(checksums_ok(&o));
    assert!(pool_contains(&Ipv4Addr::new(o[26], o[27], o[28], o[29])));
}

#[test]
fn malformed_input_is_dropped_with_its_own_counter() {
    let mut h = harness("");
    let good = udp("100.64.1.2:5000", "192.0.2.10:53", b"payload", false);
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        (good[..10].to_vec(), DropReason::EthTruncated),
        (
            {
                let mut f = good.clone();
                f[12] = 0x86;
                f[13] = 0xdd;
                f
            },
            DropReason::EthUnsupported,
        ),
        (good[..30].to_vec(), DropReason::Ipv4Truncated),
        (
            {
                let mut f = good.clone();
                f[14] = 0x44;
                f
            },
            DropReason::Ipv4Malformed,
        ),
        (
            {
                let mut f = good.clone();
                f[16] = 0x10;
                f
            },
            DropReason::Ipv4Truncated,
        ),
        (
            {
                let mut f = good.clone();
                f[24] ^= 0xff;
                f
            },
            DropReason::Ipv4BadChecksum,
        ),
        (
            {
                let mut f = good.clone();
                f[38] = 0xff;
                f
            },
            DropReason::L4Truncated,
        ),
        (
            {
                let mut f = good.clone();
                // SCTP: not in nat.protocols' defaults (GRE, ESP, AH are translated).
                f[23] = 132;
                f[24] = 0;
                f[25] = 0;
                let c = cgnat_dataplane::wire::checksum::finish(
                    cgnat_dataplane::wire::checksum::sum(&f[14..34]),
                );
                f[24..26].copy_from_slice(&c.to_be_bytes());
                f
            },
            DropReason::ProtocolDenied,
        ),
        (
            udp("100.64.1.2:5000", "127.0.0.1:53", b"", false),
            DropReason::Ipv4Martian,
        ),
    ];
    for (f, reason) in cases {
        eprintln!("case {reason:?}");
        let before = h.counters.dropped(reason);
        none(&mut h, &f, Inside, 1000);
        assert_eq!(
            h.counters.dropped(reason),
            before + 1,
            "{reason:?} not counted"
        );
    }
}

#[test]
fn source_outside_inside_prefixes_is_refused() {
    let mut h = harness("inside = [\"100.64.0.0/10\"]");
    none(
        &mut h,
        &udp("192.168.1.2:5000", "192.0.2.10:53", b"", false),
        Inside,
        1000,
    );
    assert_eq!(h.counters.dropped(DropReason::SourceNotInside), 1);
}

#[test]
fn random_and_mutated_frames_never_panic() {
    let mut h = harness("[alg]\ntftp = { enabled = true }");
    // CGNAT_FUZZ_ITERS and CGNAT_FUZZ_SEED run it longer or elsewhere by hand.
    let iters: usize = std::env::var("CGNAT_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let mut x: u64 = std::env::var("CGNAT_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x1234_5678_9abc_def1)
        | 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let seeds = [
        udp("100.64.1.2:5000", "192.0.2.10:53", b"payload", false),
        tcp("100.64.1.2:40000", "192.0.2.10:80", 1, "S", b"", false),
        ping("100.64.1.2", "192.0.2.10", 1, 1, false, false),
        icmp_error(
            "192.0.2.1",
            "198.51.100.3",
            3,
            3,
            &udp("198.51.100.3:1024", "192.0.2.10:53", b"", false)[14..],
            true,
        ),
        // FTP control traffic through the ALG: SYN, a PORT, a split one, EPRT, AUTH.
        tcp("100.64.1.2:40001", "192.0.2.10:21", 1, "S", b"", false),
        tcp(
            "100.64.1.2:40001",
            "192.0.2.10:21",
            2,
            "PA",
            b"PORT 100,64,1,2,19,137\r\nEPRT |1|100.64.1.2|5002|\r\n",
            false,
        ),
        tcp(
            "100.64.1.2:40001",
            "192.0.2.10:21",
            2,
            "PA",
            b"PORT 100,64,",
            false,
        ),
        tcp(
            "100.64.1.2:40001",
            "192.0.2.10:21",
            14,
            "PA",
            b"1,2,19,138\r\nAUTH TLS\r\n",
            false,
        ),
        tcp("100.64.1.2:40002", "192.0.2.10:69", 1, "S", b"", false),
        udp(
            "100.64.1.2:40003",
            "192.0.2.10:69",
            b"\x00\x01f\x00octet\x00",
            false,
        ),
    ];
    for i in 0..iters {
        let mut f = seeds[i % seeds.len()].clone();
        let flips = 1 + rnd() % 6;
        for _ in 0..flips {
            let at = (rnd() as usize) % f.len();
            f[at] = rnd() as u8;
        }
        if rnd() % 4 == 0 {
            let l = (rnd() as usize) % f.len();
            f.truncate(l);
        }
        let side = if rnd() % 2 == 0 { Inside } else { Outside };
        for (_, o) in h.inject(&f, side, 1000 + (i as u32 / 1000)) {
            assert!(o.len() >= 14);
        }
    }
}

#[test]
fn port_blocks_are_listed_per_subscriber_freed_and_their_slots_reused() {
    let mut h = harness("allocation = \"port-block\"\nblock_size = 64\nmax_blocks_per_subscriber = 3\nicmp_on_limit = false\nport_parity = false\nquarantine_secs = 0");
    let a = u32::from(std::net::Ipv4Addr::new(100, 64, 1, 2));
    let b = u32::from(std::net::Ipv4Addr::new(100, 64, 1, 3));
    // Subscriber a fills two blocks and starts a third; b takes one block.
    for p in 0..130u16 {
        let f = udp(
            &format!("100.64.1.2:{}", 2000 + p),
            "192.0.2.10:53",
            b"",
            false,
        );
        out(&one(&mut h, &f, Inside, 1000, Outside));
    }
    out(&one(
        &mut h,
        &udp("100.64.1.3:2000", "192.0.2.10:53", b"", false),
        Inside,
        1000,
        Outside,
    ));
    let nat = h.worker.nat();
    assert_eq!(nat.subscriber_blocks(a).len(), 3);
    assert_eq!(nat.subscriber(a).unwrap().block_count(), 3);
    assert_eq!(nat.subscriber_blocks(b).len(), 1);
    let mut all: Vec<u32> = nat.subscriber_blocks(a).to_vec();
    all.extend_from_slice(nat.subscriber_blocks(b));
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "no block is held twice");
    assert!(nat.subscriber_blocks(0x0a00_0001).is_empty());
    assert_eq!(h.counters.blocks_active.get(), 4);
    // Everything expires: blocks go back, the subscribers go away.
    h.expire(1000 + 7441);
    assert_eq!(h.counters.blocks_active.get(), 0);
    let nat = h.worker.nat();
    assert!(nat.subscriber(a).is_none() && nat.subscriber(b).is_none());
    assert_eq!(nat.live_subscribers(), 0);
    // A new subscriber reuses a freed slot, with no stale blocks.
    let c = u32::from(std::net::Ipv4Addr::new(100, 64, 1, 4));
    out(&one(
        &mut h,
        &udp("100.64.1.4:2000", "192.0.2.10:53", b"", false),
        Inside,
        8500,
        Outside,
    ));
    let nat = h.worker.nat();
    assert_eq!(nat.subscriber_blocks(c).len(), 1);
    assert_eq!(h.counters.blocks_active.get(), 1);
}

/// Two workers behind RSS-steered ports, the software Toeplitz standing for the
/// device: every frame is delivered to the queue (worker) the device would pick, and
/// every one is translated there, in both directions, with no handoff. A reply sent to
/// the wrong worker is still handed to its owner (the safety net) and counted.
#[test]
fn rss_steered_workers_translate_both_ways_without_handoff() {
    for (workers, extra) in [
        (2u16, "allocation = \"dynamic\""),
        (2, "allocation = \"dynamic\"\npooling = \"arbitrary\""),
        (
            3,
            "allocation = \"dynamic\"\nport_preservation = true\nport_range = [1024, 9215]",
        ),
    ] {
        let cfg = config(extra);
        let inside =
            Arc::new(Steering::new(&STEERING_KEY, &Steering::spread(workers, 128)).unwrap());
        // As the runtime programs the outside port: RTP/RTCP pairs on one queue.
        let table = Steering::paired_spread(&STEERING_KEY, workers, 512);
        let outside = Arc::new(Steering::new(&STEERING_KEY, &table).unwrap());
        let (mut ws, neighbors) = build_workers(&cfg, workers, Some(&inside), Some(&outside));
        let mut used = vec![0u32; usize::from(workers)];
        for i in 0..600u32 {
            let host = Ipv4Addr::new(100, 64, 1 + (i % 9) as u8, (i % 250) as u8 + 1);
            neighbors.learn(u32::from(host), &HOST_MAC);
            let src = format!("{host}:{}", 10_000 + i);
            let dst = format!("192.0.2.{}:{}", 1 + i % 7, 53 + i % 3);
            let frame = if i % 2 == 0 {
                udp(&src, &dst, format!("q{i}").as_bytes(), false)
            } else {
                tcp(&src, &dst, i, "S", b"", false)
            };
            // The inside port hashes the source address only.
            let q = inside.queue_of_addr(u32::from(host));
            let mut buf = VecBuf::new(&frame);
            assert_eq!(
                ws[usize::from(q)].process(&mut buf, Inside, 1000),
                Verdict::Tx(Outside)
            );
            let o = out(buf.data());
            used[usize::from(q)] += 1;
            // The outside port hashes the reply's destination address and port: the
            // reply reaches the worker that created the mapping.
            let reply = if i % 2 == 0 {
                udp(&dst, &o.src.to_string(), b"answer", true)
            } else {
                tcp(&dst, &o.src.to_string(), 7, "SA", b"", true)
            };
            let q2 = outside.queue_of(u32::from(*o.src.ip()), o.src.port());
            assert_eq!(
                q2, q,
                "the reply to {src} via {} comes back to its worker",
                o.src
            );
            let mut buf = VecBuf::new(&reply);
            assert_eq!(
                ws[usize::from(q2)].process(&mut buf, Outside, 1001),
                Verdict::Tx(Inside)
            );
            assert_eq!(out(buf.data()).dst, sa(&src));
            if i % 100 == 0 {
                // Misdelivered (a device that hashes otherwise): handed to the owner.
                let wrong = (q2 + 1) % workers;
                let mut buf = VecBuf::new(&reply);
                let v = ws[usize::from(wrong)].process(&mut buf, Outside, 1001);
                assert_eq!(v, Verdict::Handoff(q2, Outside));
                let v = ws[usize::from(q2)].process_handed(&mut buf, Outside, 1001);
                assert_eq!(v, Verdict::Tx(Inside));
                assert_eq!(out(buf.data()).dst, sa(&src));
            }
        }
        assert!(
            used.iter().all(|&n| n > 100),
            "{extra}: every worker works: {used:?}"
        );
        let handed: u64 = ws.iter().map(|w| w.counters().handoff_out.get()).sum();
        let received: u64 = ws.iter().map(|w| w.counters().handoff_in.get()).sum();
        assert_eq!(
            (handed, received),
            (6, 6),
            "{extra}: only the misdelivered replies"
        );
        let sessions: u64 = ws.iter().map(|w| u64::from(w.nat().live_sessions())).sum();
        assert_eq!(sessions, 600, "{extra}");
    }
}

/// Deterministic allocation with two workers: a subscriber's mappings live on the
/// worker that owns its port range (one block), so replies find them; an inside packet
/// that reaches the other worker is handed over (it used to be translated there, and
/// the reply, owned by the range's worker, found no mapping).
#[test]
fn deterministic_allocation_with_two_workers_keeps_subscribers_on_their_range_owner() {
    let cfg = config("allocation = \"deterministic\"\ninside = [\"100.64.1.0/24\"]");
    let (mut ws, neighbors) = build_workers(&cfg, 2, None, None);
    // Everything arrives on worker 0's queues (a device without RSS), as in pcap mode.
    let through = |ws: &mut Vec<Worker<VecBuf>>, frame: &[u8], from, now| {
        let mut buf = VecBuf::new(frame);
        let v = match ws[0].process(&mut buf, from, now) {
            Verdict::Handoff(w, side) => ws[usize::from(w)].process_handed(&mut buf, side, now),
            v => v,
        };
        (v, buf)
    };
    for i in 1..=60u8 {
        let host = Ipv4Addr::new(100, 64, 1, i);
        neighbors.learn(u32::from(host), &HOST_MAC);
        let src = format!("{host}:5000");
        let (v, buf) = through(
            &mut ws,
            &udp(&src, "192.0.2.1:53", b"q", false),
            Inside,
            1000,
        );
        assert_eq!(v, Verdict::Tx(Outside));
        let o = out(buf.data());
        let reply = udp("192.0.2.1:53", &o.src.to_string(), b"a", true);
        let (v, buf) = through(&mut ws, &reply, Outside, 1001);
        assert_eq!(v, Verdict::Tx(Inside), "the reply to {src} via {}", o.src);
        assert_eq!(out(buf.data()).dst, sa(&src));
    }
    assert!(
        ws[1].counters().handoff_in.get() > 20,
        "both workers own ranges"
    );
}

/// A session listing is a bounded piece of work for the worker however large its
/// table and whatever limit was asked: at most `ROWS_PER_ANSWER` sessions copied and
/// `SLOTS_PER_ANSWER` slots examined, and the asker continues from the slot returned.
#[test]
fn a_session_listing_is_bounded_work_for_the_worker() {
    use cgnat_dataplane::inspect::{answer, Answer, Filter, Query};
    use cgnat_dataplane::inspect::{ROWS_PER_ANSWER, SLOTS_PER_ANSWER};
    let mut h = harness("max_sessions = 40000");
    for i in 0..1000u32 {
        let src = format!("100.64.{}.{}:{}", 1 + i / 200, 2 + i % 200, 4000 + i);
        one(
            &mut h,
            &udp(&src, "192.0.2.10:53", b"q", false),
            Inside,
            1000,
            Outside,
        );
    }
    let nat = &h.worker.nat;
    let q = Query::Sessions(Filter::default(), 0, 1_000_000);
    let Answer::Sessions(rows, next) = answer(nat, 0, &q, 1000) else {
        panic!("not a session answer")
    };
    assert_eq!(rows.len(), ROWS_PER_ANSWER);
    let next = next.expect("more to come");
    assert!(next <= SLOTS_PER_ANSWER, "{next}");
    // Walking on from each answer's slot finds every session once.
    let mut seen: std::collections::HashSet<String> =
        rows.iter().map(|r| r.info().inside).collect();
    let mut from = Some(next);
    let mut answers = 1;
    while let Some(f) = from {
        let Answer::Sessions(rows, next) = answer(
            nat,
            0,
            &Query::Sessions(Filter::default(), f, 1_000_000),
            1000,
        ) else {
            panic!()
        };
        assert!(rows.len() <= ROWS_PER_ANSWER);
        for r in rows {
            assert!(seen.insert(r.info().inside), "{r:?} twice");
        }
        from = next;
        answers += 1;
    }
    assert_eq!(seen.len(), 1000);
    assert!(answers >= 40000 / SLOTS_PER_ANSWER as usize, "{answers}");
}

/// The busiest subscribers (`cgnat top`, `/subscribers?top=N`) come from bounded pieces
/// of the subscriber table, each the busiest of its slots, busiest first; merged, they
/// are the busiest of all, with the counts `/subscribers/IP` gives.
#[test]
fn the_busiest_subscribers_are_found_in_bounded_pieces() {
    use cgnat_dataplane::inspect::{answer, Answer, Query, SubscriberLoad};
    use cgnat_dataplane::inspect::{BUSIEST_MAX, SUBSCRIBER_SLOTS_PER_ANSWER};
    let mut h = harness("max_sessions = 40000\nallocation = \"dynamic\"");
    let flows = |h: &mut cgnat_dataplane::harness::Harness, host: &str, n: u32| {
        for p in 0..n {
            let o = h.inject(
                &udp(
                    &format!("{host}:{}", 4000 + p),
                    "192.0.2.10:53",
                    b"q",
                    false,
                ),
                Inside,
                1000,
            );
            assert!(o.iter().any(|(s, _)| *s == Outside), "{host}: {o:02x?}");
        }
    };
    flows(&mut h, "100.64.1.2", 7);
    flows(&mut h, "100.64.1.3", 5);
    flows(&mut h, "100.64.1.4", 3);
    let many = SUBSCRIBER_SLOTS_PER_ANSWER + 500;
    for i in 0..many {
        flows(
            &mut h,
            &format!("100.64.{}.{}", 10 + i / 250, 1 + i % 250),
            1,
        );
    }
    // The last slot, beyond the first piece.
    flows(&mut h, "100.64.2.9", 6);
    let nat = &h.worker.nat;
    let Answer::Busiest(first, next) = answer(nat, 0, &Query::Busiest(0, 3), 1000) else {
        panic!("not a busiest answer")
    };
    assert_eq!(
        next,
        Some(SUBSCRIBER_SLOTS_PER_ANSWER),
        "one piece at a time"
    );
    let addrs = |rows: &[SubscriberLoad]| -> Vec<String> {
        rows.iter()
            .map(|r| format!("{}={}", r.address, r.sessions))
            .collect()
    };
    assert_eq!(
        addrs(&first),
        ["100.64.1.2=7", "100.64.1.3=5", "100.64.1.4=3"]
    );
    let mut all = first;
    let mut from = next;
    while let Some(f) = from {
        let Answer::Busiest(mut rows, next) = answer(nat, 0, &Query::Busiest(f, 3), 1000) else {
            panic!()
        };
        assert!(rows.len() <= 3);
        assert!(
            rows.windows(2).all(|w| w[0].rank() <= w[1].rank()),
            "{rows:?}"
        );
        all.append(&mut rows);
        from = next;
    }
    all.sort_by_key(SubscriberLoad::rank);
    all.truncate(3);
    assert_eq!(
        addrs(&all),
        ["100.64.1.2=7", "100.64.2.9=6", "100.64.1.3=5"]
    );
    for r in &all {
        let std::net::IpAddr::V4(a) = r.address else {
            panic!("{} is not a NAT44 subscriber", r.address)
        };
        let Answer::Subscriber(Some(s)) = answer(nat, 0, &Query::Subscriber(a.into()), 1000) else {
            panic!("{} unknown", r.address)
        };
        assert_eq!(
            (s.sessions + s.inbound_sessions, s.mappings),
            (r.sessions, r.mappings)
        );
        assert_eq!(s.pool_address, r.pool_address);
    }
    // However many are asked for, an answer holds at most BUSIEST_MAX.
    let Answer::Busiest(rows, _) = answer(nat, 0, &Query::Busiest(0, 1 << 20), 1000) else {
        panic!()
    };
    assert_eq!(rows.len(), BUSIEST_MAX);
}

// ---- issue 19: hostile subscribers, hostile internet (the dataplane) ------------

/// An ICMP error from inside host `from` to `to` quoting `quoted` (an IPv4+UDP frame
/// whose IP header and first 8 bytes are embedded).
fn icmp_error_frame(
    from: [u8; 4],
    to: [u8; 4],
    kind: u8,
    code: u8,
    quoted: &[u8],
    inbound: bool,
) -> Vec<u8> {
    let mut body = vec![kind, code, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&quoted[14..14 + 28]);
    let c = cgnat_dataplane::wire::checksum::finish(cgnat_dataplane::wire::checksum::sum(&body));
    body[2..4].copy_from_slice(&c.to_be_bytes());
    let (smac, dmac) = if inbound {
        (GW_MAC, cgnat_dataplane::harness::OUTSIDE_MAC)
    } else {
        (HOST_MAC, cgnat_dataplane::harness::INSIDE_MAC)
    };
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2(smac, dmac)
        .ipv4(from, to, 64)
        .write(&mut f, etherparse::IpNumber::ICMP, &body)
        .unwrap();
    f
}

/// Issue 19 item 10: a subscriber sent port unreachables about another subscriber's
/// session, and they left from the victim's public endpoint. An error from inside
/// must quote a packet that was sent to its sender.
#[test]
fn a_forged_icmp_error_about_another_subscribers_session_is_dropped() {
    let mut h = harness("");
    let m = open_udp(&mut h, 1000);
    // What the victim received: from the server to its inside endpoint.
    let quoted = udp("192.0.2.10:53", "100.64.1.2:5000", b"", false);
    let forged = icmp_error_frame([100, 64, 1, 3], [192, 0, 2, 10], 3, 3, &quoted, false);
    none(&mut h, &forged, Inside, 1001);
    assert_eq!(h.counters.dropped(DropReason::IcmpErrorNotOwn), 1);
    // The victim's own error about the same packet still goes, from its mapping.
    let own = icmp_error_frame([100, 64, 1, 2], [192, 0, 2, 10], 3, 3, &quoted, false);
    let o = out(&one(&mut h, &own, Inside, 1001, Outside));
    assert_eq!(o.src.ip(), m.ip());
}

/// A UDP frame from inside with a record-route option that already names the inside
/// host.
fn with_record_route(f: &[u8]) -> Vec<u8> {
    let opts = [7u8, 11, 8, 100, 64, 1, 2, 0, 0, 0, 0, 0];
    let mut v = f[..34].to_vec();
    v.extend_from_slice(&opts);
    v.extend_from_slice(&f[34..]);
    v[14] = 0x40 | ((20 + opts.len()) / 4) as u8;
    let total = u16::from_be_bytes([v[16], v[17]]) + opts.len() as u16;
    v[16..18].copy_from_slice(&total.to_be_bytes());
    v[24] = 0;
    v[25] = 0;
    let c = cgnat_dataplane::wire::checksum::finish(cgnat_dataplane::wire::checksum::sum(
        &v[14..14 + 20 + opts.len()],
    ));
    v[24..26].copy_from_slice(&c.to_be_bytes());
    v
}

/// Issue 19 item 11: IPv4 options (record route, timestamp, source route) carried the
/// inside address out. They are overwritten with NOPs (default) or the packet is
/// dropped (`ip_options = "drop"`), counted.
#[test]
fn ip_options_are_blanked_or_refused() {
    let mut h = harness("");
    let f = with_record_route(&udp("100.64.1.2:5000", "192.0.2.10:53", b"q", false));
    let o = one(&mut h, &f, Inside, 1000, Outside);
    assert!(checksums_ok(&o));
    assert_eq!(o[14] & 0x0f, 8, "the header keeps its length");
    assert!(
        o[34..46].iter().all(|&b| b == 1),
        "options are NOPs: {:?}",
        &o[34..46]
    );
    assert!(
        !o.windows(4).any(|w| w == [100, 64, 1, 2]),
        "the inside address left: {o:02x?}"
    );
    assert_eq!(out(&o).dst, sa("192.0.2.10:53"));
    assert_eq!(h.counters.ip_options_stripped.get(), 1);

    let mut h = harness("ip_options = \"drop\"");
    none(&mut h, &f, Inside, 1000);
    assert_eq!(h.counters.dropped(DropReason::IpOptions), 1);
}

/// Issue 19 item 11: packets from subscribers to private, shared, link-local and
/// directed-broadcast destinations were sent upstream. Dropped and counted unless
/// allowed (`allow_destinations`) or excluded from translation.
#[test]
fn subscribers_cannot_send_to_private_shared_link_local_or_broadcast_destinations() {
    let mut h = harness("");
    let reserved = [
        "10.1.2.3:53",
        "172.16.0.1:53",
        "192.168.0.1:53",
        "100.64.9.9:53",
        "169.254.1.1:53",
        "203.0.113.255:53",
    ];
    for d in reserved {
        none(
            &mut h,
            &udp("100.64.1.2:5000", d, b"q", false),
            Inside,
            1000,
        );
    }
    assert_eq!(
        h.counters.dropped(DropReason::DestinationReserved),
        reserved.len() as u64
    );
    assert_eq!(h.worker.nat.live_sessions(), 0);

    let mut h = harness(
        "allow_destinations = [\"10.0.0.0/8\"]\nexclude_destinations = [\"172.16.0.0/12\"]",
    );
    let a = out(&one(
        &mut h,
        &udp("100.64.1.2:5000", "10.1.2.3:53", b"q", false),
        Inside,
        1000,
        Outside,
    ));
    assert_eq!(
        a.src.ip().octets()[..3],
        [198, 51, 100],
        "allowed: translated"
    );
    let e = out(&one(
        &mut h,
        &udp("100.64.1.2:5000", "172.16.0.1:53", b"q", false),
        Inside,
        1000,
        Outside,
    ));
    assert_eq!(*e.src.ip(), ip("100.64.1.2"), "excluded: untranslated");
    none(
        &mut h,
        &udp("100.64.1.2:5000", "192.168.0.1:53", b"q", false),
        Inside,
        1000,
    );
    assert_eq!(h.counters.dropped(DropReason::DestinationReserved), 1);

    // An inside prefix outside private space is no destination for subscribers either.
    let mut h = harness("inside = [\"100.64.0.0/10\", \"198.18.0.0/15\"]");
    none(
        &mut h,
        &udp("100.64.1.2:5000", "198.18.0.5:53", b"q", false),
        Inside,
        1000,
    );
    assert_eq!(h.counters.dropped(DropReason::DestinationReserved), 1);
    one(
        &mut h,
        &udp("100.64.1.2:5000", "198.20.0.5:53", b"q", false),
        Inside,
        1000,
        Outside,
    );
}

/// Issue 19 item 11: an ICMP redirect from outside about a subscriber's flow was
/// translated and passed to the subscriber.
#[test]
fn icmp_redirects_from_outside_are_dropped() {
    let mut h = harness("");
    let m = open_udp(&mut h, 1000);
    let quoted = udp(&m.to_string(), "192.0.2.10:53", b"", true);
    let redirect = icmp_error_frame([192, 0, 2, 1], m.ip().octets(), 5, 1, &quoted, true);
    none(&mut h, &redirect, Outside, 1001);
    assert_eq!(h.counters.dropped(DropReason::IcmpRedirect), 1);
    // A port unreachable about the same flow still comes in.
    let unreach = icmp_error_frame([192, 0, 2, 10], m.ip().octets(), 3, 3, &quoted, true);
    one(&mut h, &unreach, Outside, 1001, Inside);
}

/// Issue 19 item 11: an outside packet with TTL 1 to an address that is not ours got
/// an ICMP time exceeded; only packets cgnat would forward do.
#[test]
fn no_time_exceeded_for_outside_packets_to_foreign_addresses() {
    let mut h = harness("");
    let mut f = udp("192.0.2.10:53", "203.0.113.77:4000", b"", true);
    f[14 + 8] = 1;
    f[24] = 0;
    f[25] = 0;
    let c =
        cgnat_dataplane::wire::checksum::finish(cgnat_dataplane::wire::checksum::sum(&f[14..34]));
    f[24..26].copy_from_slice(&c.to_be_bytes());
    none(&mut h, &f, Outside, 1000);
    assert_eq!(h.counters.dropped(DropReason::NotOurAddress), 1);
    assert_eq!(h.counters.icmp_sent.get(), 0);
}

/// Issue 19 item 3: under endpoint-independent filtering, spoofed sources sent to one
/// known mapping created sessions counted against the subscriber's quota, and its own
/// next flows failed (`subscriber_session_limit`). Inbound-created sessions have a
/// budget of their own (an eighth of the quota by default); past it the oldest
/// unanswered one is recycled, so the mapping stays reachable.
#[test]
fn inbound_sessions_cannot_starve_the_subscribers_own_quota() {
    let mut h = harness("max_sessions_per_subscriber = 100");
    let m = open_udp(&mut h, 1000);
    let mut delivered = 0;
    for k in 0..500u32 {
        let src = format!("192.0.2.{}:{}", 20 + k % 200, 1000 + k);
        let o = h.inject(&udp(&src, &m.to_string(), b"x", true), Outside, 1001);
        delivered += o.iter().filter(|(s, _)| *s == Inside).count();
    }
    for k in 0..20u32 {
        let src = format!("100.64.1.2:{}", 6000 + k);
        one(
            &mut h,
            &udp(&src, "192.0.2.99:80", b"q", false),
            Inside,
            1002,
            Outside,
        );
    }
    assert_eq!(h.counters.dropped(DropReason::SubscriberSessionLimit), 0);
    assert_eq!(delivered, 500, "every remote still reaches the mapping");
    assert_eq!(h.counters.inbound_sessions_recycled.get(), 500 - 12);
    assert_eq!(h.worker.nat.live_sessions(), 1 + 12 + 20);
    // What an operator sees of it (`cgnat show subscriber`): 21 sessions of its own,
    // 12 inbound ones apart, none answered.
    let host = u32::from(ip("100.64.1.2"));
    assert_eq!(h.worker.nat.subscriber(host).unwrap().sessions, 21);
    assert_eq!(h.worker.nat.subscriber_inbound(host), (12, 0));
}

/// The inbound budget recycles only sessions nobody answered: when the subscriber
/// answered all of them, the newcomer is refused (counted) and they stay.
#[test]
fn answered_inbound_sessions_are_kept_and_the_newcomer_refused() {
    let mut h = harness("max_sessions_per_subscriber = 100");
    let m = open_udp(&mut h, 1000);
    for k in 0..12u32 {
        let peer = format!("192.0.2.{}:7000", 20 + k);
        one(
            &mut h,
            &udp(&peer, &m.to_string(), b"x", true),
            Outside,
            1001,
            Inside,
        );
        one(
            &mut h,
            &udp("100.64.1.2:5000", &peer, b"y", false),
            Inside,
            1001,
            Outside,
        );
    }
    none(
        &mut h,
        &udp("192.0.2.99:7000", &m.to_string(), b"x", true),
        Outside,
        1002,
    );
    assert_eq!(h.counters.dropped(DropReason::SubscriberInboundLimit), 1);
    assert_eq!(h.counters.inbound_sessions_recycled.get(), 0);
    assert_eq!(h.worker.nat.live_sessions(), 13);
    assert_eq!(
        h.worker.nat.subscriber_inbound(u32::from(ip("100.64.1.2"))),
        (12, 12)
    );
    // Once they expire (the subscriber's own flow kept alive), the budget is free.
    one(
        &mut h,
        &udp("100.64.1.2:5000", "192.0.2.10:53", b"q", false),
        Inside,
        1200,
        Outside,
    );
    h.expire(1400);
    assert_eq!(h.worker.nat.live_sessions(), 1);
    one(
        &mut h,
        &udp("192.0.2.99:7000", &m.to_string(), b"x", true),
        Outside,
        1400,
        Inside,
    );
}

/// Past the inbound budget the oldest session nobody answered goes, not an older one
/// the subscriber answered.
#[test]
fn the_oldest_unanswered_inbound_session_is_recycled_not_an_answered_one() {
    // Budget: an eighth of 16, 2.
    let mut h = harness("max_sessions_per_subscriber = 16");
    let m = open_udp(&mut h, 1000);
    let to_m = |peer: &str| udp(peer, &m.to_string(), b"x", true);
    one(&mut h, &to_m("192.0.2.31:7000"), Outside, 1001, Inside);
    one(
        &mut h,
        &udp("100.64.1.2:5000", "192.0.2.31:7000", b"y", false),
        Inside,
        1001,
        Outside,
    );
    one(&mut h, &to_m("192.0.2.32:7000"), Outside, 1002, Inside);
    one(&mut h, &to_m("192.0.2.33:7000"), Outside, 1003, Inside);
    assert_eq!(h.counters.inbound_sessions_recycled.get(), 1);
    let remotes: Vec<u32> = h.worker.nat.iter_sessions().map(|s| s.rem_addr).collect();
    let has = |a: &str| remotes.contains(&u32::from(ip(a)));
    assert!(has("192.0.2.31") && has("192.0.2.33") && !has("192.0.2.32"));
    assert_eq!(h.worker.nat.live_sessions(), 3);
}
