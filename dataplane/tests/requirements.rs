//! The CGN requirement clauses not covered by nat44.rs / fragments.rs, one test each,
//! named after the clause (README's requirement table points here).

mod common;
use cgnat_dataplane::counters::DropReason;
use cgnat_dataplane::pipeline::Side::{Inside, Outside};
use common::*;
use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};

fn udp_out(
    h: &mut cgnat_dataplane::harness::Harness,
    src: &str,
    dst: &str,
    now: u32,
) -> SocketAddrV4 {
    out(&one(h, &udp(src, dst, b"x", false), Inside, now, Outside)).src
}

#[test]
fn rfc4787_req1_address_dependent_mapping_when_configured() {
    let mut h = harness("mapping = \"address-dependent\"");
    let a = udp_out(&mut h, "100.64.1.2:5000", "192.0.2.10:53", 1000);
    let b = udp_out(&mut h, "100.64.1.2:5000", "192.0.2.10:123", 1000);
    let c = udp_out(&mut h, "100.64.1.2:5000", "192.0.2.11:53", 1000);
    assert_eq!(a, b, "same remote address, same mapping");
    assert_ne!(a, c, "another remote address, another mapping");
}

#[test]
fn rfc4787_req1_address_and_port_dependent_mapping_when_configured() {
    let mut h = harness("mapping = \"address-and-port-dependent\"");
    let a = udp_out(&mut h, "100.64.1.2:5000", "192.0.2.10:53", 1000);
    let b = udp_out(&mut h, "100.64.1.2:5000", "192.0.2.10:123", 1000);
    assert_ne!(a, b);
    assert_eq!(a, udp_out(&mut h, "100.64.1.2:5000", "192.0.2.10:53", 1001));
}

#[test]
fn rfc5382_req1_tcp_endpoint_independent_mapping() {
    let mut h = harness("");
    let a = out(&one(
        &mut h,
        &tcp("100.64.1.2:40000", "192.0.2.10:80", 1, "S", b"", false),
        Inside,
        1000,
        Outside,
    ))
    .src;
    let b = out(&one(
        &mut h,
        &tcp("100.64.1.2:40000", "192.0.2.99:443", 1, "S", b"", false),
        Inside,
        1000,
        Outside,
    ))
    .src;
    assert_eq!(a, b);
}

#[test]
fn rfc4787_req2_arbitrary_pooling_when_configured() {
    let mut h = harness("pooling = \"arbitrary\"\nallocation = \"dynamic\"");
    let addrs: HashSet<Ipv4Addr> = (0..64)
        .map(|p| {
            *udp_out(
                &mut h,
                &format!("100.64.1.2:{}", 3000 + p),
                "192.0.2.10:53",
                1000,
            )
            .ip()
        })
        .collect();
    assert!(
        addrs.len() > 4,
        "one subscriber spread over the pool: {addrs:?}"
    );
}

#[test]
fn rfc6888_req2_req3_pool_of_non_contiguous_prefixes() {
    let cfg = config("").nat.pool.len();
    assert_eq!(cfg, 1);
    let mut h = cgnat_dataplane::harness::Harness::new(
        &{
            let mut c = config("");
            c.nat.pool = vec![
                "198.51.100.0/31".parse().unwrap(),
                "192.0.2.200/31".parse().unwrap(),
            ];
            c
        },
        1000,
    );
    for i in 0..=255u32 {
        h.neighbors
            .learn(u32::from(Ipv4Addr::new(100, 64, 1, i as u8)), &HOST_MAC);
    }
    let addrs: HashSet<Ipv4Addr> = (0..40)
        .map(|i| {
            *udp_out(
                &mut h,
                &format!("100.64.1.{}:5000", i + 2),
                "192.0.2.77:53",
                1000,
            )
            .ip()
        })
        .collect();
    assert_eq!(
        addrs.len(),
        4,
        "all four addresses of both prefixes in use: {addrs:?}"
    );
}

#[test]
fn rfc4787_req3_no_port_overloading() {
    let mut h = harness("allocation = \"dynamic\"\nmax_sessions_per_subscriber = 100000");
    let mut seen = HashSet::new();
    for i in 0..2000u32 {
        let src = format!("100.64.{}.{}:{}", 1 + i % 8, 2 + i % 200, 1024 + i);
        assert!(
            seen.insert(udp_out(&mut h, &src, "192.0.2.10:53", 1000)),
            "an outside endpoint was handed out twice"
        );
    }
}

#[test]
fn rfc4787_req3_port_preservation_when_configured() {
    let mut h = harness("allocation = \"dynamic\"\nport_preservation = true");
    assert_eq!(
        udp_out(&mut h, "100.64.1.2:5000", "192.0.2.10:53", 1000).port(),
        5000
    );
    // Taken: another subscriber asking for 5000 on the same address gets another port.
    let first = *udp_out(&mut h, "100.64.1.2:5000", "192.0.2.10:53", 1000).ip();
    let mut seen = Vec::new();
    for i in 3..120 {
        let m = udp_out(&mut h, &format!("100.64.1.{i}:5000"), "192.0.2.10:53", 1000);
        seen.push(m);
        if *m.ip() == first {
            assert_ne!(m.port(), 5000);
            return;
        }
    }
    panic!("no subscriber paired to {first}: {seen:?}");
}

#[test]
fn rfc4787_req4_port_parity_off_when_configured() {
    let mut h = harness("allocation = \"dynamic\"\nport_parity = false");
    let odd = (0..64)
        .filter(|p| {
            udp_out(
                &mut h,
                &format!("100.64.1.2:{}", 2000 + 2 * p),
                "192.0.2.10:53",
                1000,
            )
            .port()
                % 2
                == 1
        })
        .count();
    assert!(
        odd > 10,
        "parity not forced: {odd} odd ports of 64 from even inside ports"
    );
}

#[test]
fn rfc4787_req8_endpoint_independent_filtering_admits_any_remote() {
    let mut h = harness("");
    let m = udp_out(&mut h, "100.64.1.2:5000", "192.0.2.10:53", 1000);
    let back = out(&one(
        &mut h,
        &udp("203.0.113.99:7777", &m.to_string(), b"hi", true),
        Outside,
        1001,
        Inside,
    ));
    assert_eq!(back.dst, sa("100.64.1.2:5000"));
}

#[test]
fn rfc4787_req12_rfc5382_req10_icmp_errors_do_not_end_mappings() {
    let mut h = harness("");
    let sent = one(
        &mut h,
        &tcp("100.64.1.2:40000", "192.0.2.10:80", 1, "S", b"", false),
        Inside,
        1000,
        Outside,
    );
    let m = out(&sent).src;
    let mut body = vec![3, 1, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&sent[14..14 + 28]);
    let c = cgnat_dataplane::wire::checksum::finish(cgnat_dataplane::wire::checksum::sum(&body));
    body[2..4].copy_from_slice(&c.to_be_bytes());
    let mut err = Vec::new();
    etherparse::PacketBuilder::ethernet2(GW_MAC, cgnat_dataplane::harness::OUTSIDE_MAC)
        .ipv4([192, 0, 2, 1], m.ip().octets(), 64)
        .write(&mut err, etherparse::IpNumber::ICMP, &body)
        .unwrap();
    // The embedded TCP header is translated back (RFC 5382 REQ-9 wants this for TCP).
    let back = one(&mut h, &err, Outside, 1001, Inside);
    assert_eq!(&back[42 + 12..42 + 16], &[100, 64, 1, 2]);
    assert_eq!(u16::from_be_bytes([back[42 + 20], back[42 + 21]]), 40000);
    assert!(checksums_ok(&back));
    // The connection goes on.
    one(
        &mut h,
        &tcp("192.0.2.10:80", &m.to_string(), 7, "SA", b"", true),
        Outside,
        1002,
        Inside,
    );
    assert_eq!(h.worker.nat.live_sessions(), 1);
}

#[test]
fn rfc5508_req3_icmp_error_about_an_echo_is_translated() {
    let mut h = harness("");
    let sent = one(
        &mut h,
        &ping("100.64.1.2", "192.0.2.10", 55, 1, false, false),
        Inside,
        1000,
        Outside,
    );
    let m = out(&sent);
    let mut body = vec![11, 0, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&sent[14..14 + 28]);
    let c = cgnat_dataplane::wire::checksum::finish(cgnat_dataplane::wire::checksum::sum(&body));
    body[2..4].copy_from_slice(&c.to_be_bytes());
    let mut err = Vec::new();
    etherparse::PacketBuilder::ethernet2(GW_MAC, cgnat_dataplane::harness::OUTSIDE_MAC)
        .ipv4([192, 0, 2, 1], m.src.ip().octets(), 64)
        .write(&mut err, etherparse::IpNumber::ICMP, &body)
        .unwrap();
    let back = one(&mut h, &err, Outside, 1001, Inside);
    assert_eq!(&back[42 + 12..42 + 16], &[100, 64, 1, 2]);
    assert_eq!(
        u16::from_be_bytes([back[42 + 24], back[42 + 25]]),
        55,
        "embedded echo identifier restored"
    );
    assert!(checksums_ok(&back));
}

#[test]
fn rfc5508_icmp_errors_never_create_state() {
    let mut h = harness("");
    // About a packet the subscriber received (it quotes its own address), with no
    // session behind it.
    let inner = udp("192.0.2.10:53", "100.64.1.2:1024", b"", false);
    let mut body = vec![3, 3, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&inner[14..14 + 28]);
    let c = cgnat_dataplane::wire::checksum::finish(cgnat_dataplane::wire::checksum::sum(&body));
    body[2..4].copy_from_slice(&c.to_be_bytes());
    let mut err = Vec::new();
    etherparse::PacketBuilder::ethernet2(HOST_MAC, cgnat_dataplane::harness::INSIDE_MAC)
        .ipv4([100, 64, 1, 2], [192, 0, 2, 10], 64)
        .write(&mut err, etherparse::IpNumber::ICMP, &body)
        .unwrap();
    none(&mut h, &err, Inside, 1000);
    assert_eq!(h.worker.nat.live_sessions(), 0);
    assert_eq!(h.counters.dropped(DropReason::IcmpErrorNoSession), 1);
}

#[test]
fn rfc5382_req3_simultaneous_open() {
    let mut h = harness("");
    let m = out(&one(
        &mut h,
        &tcp("100.64.1.2:40000", "192.0.2.10:80", 1, "S", b"", false),
        Inside,
        1000,
        Outside,
    ))
    .src;
    // The remote's SYN crosses ours (no ACK): accepted, and the connection establishes.
    one(
        &mut h,
        &tcp("192.0.2.10:80", &m.to_string(), 9, "S", b"", true),
        Outside,
        1000,
        Inside,
    );
    one(
        &mut h,
        &tcp("100.64.1.2:40000", "192.0.2.10:80", 1, "SA", b"", false),
        Inside,
        1000,
        Outside,
    );
    assert_eq!(
        h.expire(1000 + 241),
        0,
        "established: past the transitory timeout"
    );
}

#[test]
fn rfc5382_req8_hairpinning_tcp() {
    let mut h = harness("");
    let b = out(&one(
        &mut h,
        &tcp("100.64.2.2:8080", "192.0.2.10:80", 1, "S", b"", false),
        Inside,
        1000,
        Outside,
    ))
    .src;
    let o = out(&one(
        &mut h,
        &tcp("100.64.1.2:40000", &b.to_string(), 1, "S", b"", false),
        Inside,
        1001,
        Inside,
    ));
    assert_eq!(o.dst, sa("100.64.2.2:8080"));
    assert_eq!(o.src.ip().octets()[..3], [198, 51, 100]);
}

#[test]
fn rfc4787_req10_rfc5382_req6_only_ftp_alg_on_by_default() {
    let c = config("");
    for p in &cgnat_alg::PLUGINS {
        assert_eq!(c.alg[p.name].enabled, p.name == "ftp", "{}", p.name);
    }
}

#[test]
fn rfc6888_req4_port_quota_refusal_sends_icmp_admin_prohibited() {
    let mut h = harness("block_size = 64\nmax_blocks_per_subscriber = 1\nport_parity = false");
    for p in 0..64 {
        udp_out(
            &mut h,
            &format!("100.64.1.2:{}", 2000 + p),
            "192.0.2.10:53",
            1000,
        );
    }
    let o = one(
        &mut h,
        &udp("100.64.1.2:9999", "192.0.2.10:53", b"", false),
        Inside,
        1000,
        Inside,
    );
    assert_eq!(&o[34..36], &[3, 13]);
    assert_eq!(h.counters.dropped(DropReason::SubscriberPortLimit), 1);
    // Other subscribers are not affected.
    udp_out(&mut h, "100.64.1.3:9999", "192.0.2.10:53", 1000);
}

#[test]
fn rfc6888_req8_quarantine_then_reuse_and_tcp_clean_close_reuses_at_once() {
    let mut h =
        harness("allocation = \"dynamic\"\nport_preservation = true\nquarantine_secs = 120");
    let a = udp_out(&mut h, "100.64.1.2:5000", "192.0.2.10:53", 1000);
    assert_eq!(a.port(), 5000);
    assert_eq!(h.expire(1300), 1);
    // During the quarantine, another subscriber cannot get port 5000 on that address.
    let mut blocked = true;
    for i in 3..60 {
        let m = udp_out(&mut h, &format!("100.64.1.{i}:5000"), "192.0.2.10:53", 1301);
        if *m.ip() == *a.ip() {
            blocked &= m.port() != 5000;
        }
    }
    assert!(blocked, "port reused within the quarantine");
    // TCP after FIN both ways: freed at once.
    let mut h =
        harness("allocation = \"dynamic\"\nport_preservation = true\nquarantine_secs = 120");
    let t = out(&one(
        &mut h,
        &tcp("100.64.1.2:6000", "192.0.2.10:80", 1, "S", b"", false),
        Inside,
        2000,
        Outside,
    ))
    .src;
    assert_eq!(t.port(), 6000);
    one(
        &mut h,
        &tcp("192.0.2.10:80", &t.to_string(), 7, "SA", b"", true),
        Outside,
        2000,
        Inside,
    );
    one(
        &mut h,
        &tcp("100.64.1.2:6000", "192.0.2.10:80", 2, "FA", b"", false),
        Inside,
        2000,
        Outside,
    );
    one(
        &mut h,
        &tcp("192.0.2.10:80", &t.to_string(), 8, "FA", b"", true),
        Outside,
        2000,
        Inside,
    );
    one(
        &mut h,
        &tcp("100.64.1.2:6000", "192.0.2.10:80", 3, "A", b"", false),
        Inside,
        2000,
        Outside,
    );
    assert_eq!(h.expire(2241), 1);
    assert_eq!(
        h.worker.nat.pool.quarantined(),
        0,
        "the TCP port skipped the quarantine"
    );
    let again = out(&one(
        &mut h,
        &tcp("100.64.1.2:6000", "192.0.2.10:80", 9, "S", b"", false),
        Inside,
        2242,
        Outside,
    ))
    .src;
    assert_eq!(again, t, "and is reused at once");
}

#[test]
fn rfc7422_deterministic_mapping_matches_cgnat_map() {
    let mut h = harness("inside = [\"100.64.0.0/16\"]\nallocation = \"deterministic\"");
    let params = cgnat_dataplane::nat::NatParams::from_config(
        &config("inside = [\"100.64.0.0/16\"]\nallocation = \"deterministic\"").nat,
        1,
    )
    .unwrap();
    let d = params.deterministic.unwrap();
    for i in 2..30 {
        let inside = Ipv4Addr::new(100, 64, 1, i);
        let m = udp_out(&mut h, &format!("{inside}:4000"), "192.0.2.10:53", 1000);
        let (public, first, last) = d.forward(inside).unwrap();
        assert_eq!(*m.ip(), public);
        assert!(
            (first..=last).contains(&m.port()),
            "{m} outside {first}-{last}"
        );
        assert_eq!(d.reverse(*m.ip(), m.port()), Some(inside));
    }
}

#[test]
fn static_mapping_is_reachable_and_used_for_outbound_traffic() {
    let mut h = harness("[[nat.static]]\nprotocol = \"tcp\"\ninside = \"100.64.1.5:80\"\noutside = \"198.51.100.2:8080\"");
    let o = out(&one(
        &mut h,
        &tcp("192.0.2.50:33333", "198.51.100.2:8080", 1, "S", b"", true),
        Outside,
        1000,
        Inside,
    ));
    assert_eq!(o.dst, sa("100.64.1.5:80"));
    let r = out(&one(
        &mut h,
        &tcp("100.64.1.5:80", "192.0.2.50:33333", 5, "SA", b"", false),
        Inside,
        1000,
        Outside,
    ));
    assert_eq!(r.src, sa("198.51.100.2:8080"));
    assert_eq!(
        h.expire(1000 + 10_000),
        1,
        "the session ends, the static mapping stays"
    );
    one(
        &mut h,
        &tcp("192.0.2.51:1", "198.51.100.2:8080", 1, "S", b"", true),
        Outside,
        11_001,
        Inside,
    );
}

#[test]
fn identity_mapping_forwards_untranslated_both_ways() {
    let mut h = harness("identity = [\"192.0.2.128/25\"]");
    h.neighbors.learn(u32::from(ip("192.0.2.130")), &HOST_MAC);
    let o = out(&one(
        &mut h,
        &udp("192.0.2.130:5000", "198.18.0.1:53", b"", false),
        Inside,
        1000,
        Outside,
    ));
    assert_eq!(o.src, sa("192.0.2.130:5000"));
    let i = out(&one(
        &mut h,
        &udp("198.18.0.1:53", "192.0.2.130:5000", b"", true),
        Outside,
        1000,
        Inside,
    ));
    assert_eq!(i.dst, sa("192.0.2.130:5000"));
    assert_eq!(i.dst_mac, HOST_MAC);
    assert_eq!(h.worker.nat.live_sessions(), 0);
}

#[test]
fn rfc5508_req7_hairpinned_icmp_error_reaches_the_other_subscriber() {
    let mut h = harness("");
    let b = udp_out(&mut h, "100.64.2.2:7000", "192.0.2.10:53", 1000);
    let a = udp_out(&mut h, "100.64.1.2:5000", "192.0.2.10:53", 1000);
    let to_b = one(
        &mut h,
        &udp("100.64.1.2:5000", &b.to_string(), b"hello", false),
        Inside,
        1001,
        Inside,
    );
    // B answers port unreachable about what it received (from A's public endpoint).
    let mut body = vec![3, 3, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&to_b[14..14 + 28]);
    let c = cgnat_dataplane::wire::checksum::finish(cgnat_dataplane::wire::checksum::sum(&body));
    body[2..4].copy_from_slice(&c.to_be_bytes());
    let mut err = Vec::new();
    etherparse::PacketBuilder::ethernet2(HOST_MAC, cgnat_dataplane::harness::INSIDE_MAC)
        .ipv4([100, 64, 2, 2], a.ip().octets(), 64)
        .write(&mut err, etherparse::IpNumber::ICMP, &body)
        .unwrap();
    let back = one(&mut h, &err, Inside, 1002, Inside);
    let o = out(&back);
    assert_eq!(*o.dst.ip(), ip("100.64.1.2"), "to A");
    assert_eq!(*o.src.ip(), *b.ip(), "from B's public address");
    assert_eq!(
        &back[42 + 12..42 + 16],
        &[100, 64, 1, 2],
        "embedded source: A itself"
    );
    assert_eq!(
        &back[42 + 16..42 + 20],
        &b.ip().octets(),
        "embedded destination: B's public endpoint"
    );
    assert_eq!(u16::from_be_bytes([back[42 + 22], back[42 + 23]]), b.port());
}

/// The FTP ALG through the pipeline: PORT from the client is rewritten to a mapping
/// reserved for it, the server's connection to that mapping reaches the client, a PORT
/// naming another host (bounce) opens nothing, and after AUTH TLS is accepted the ALG
/// reads no more.
mod ftp_alg {
    use super::*;

    /// A harness with an FTP control connection from 100.64.1.2:40000 set up; returns
    /// it and the connection's outside endpoint.
    fn control_session(extra: &str) -> (cgnat_dataplane::harness::Harness, SocketAddrV4) {
        let mut h = harness(extra);
        let c = connect(&mut h, "100.64.1.2:40000", "192.0.2.10:21", 500);
        (h, c)
    }

    fn payload(f: &[u8]) -> String {
        String::from_utf8_lossy(&f[54..]).into_owned()
    }

    /// The endpoint a `PORT h1,h2,h3,h4,p1,p2\r\n` command names.
    fn port_endpoint(text: &str) -> SocketAddrV4 {
        let nums: Vec<u16> = text[5..text.len() - 2]
            .split(',')
            .map(|n| n.parse().unwrap())
            .collect();
        SocketAddrV4::new(
            Ipv4Addr::new(nums[0] as u8, nums[1] as u8, nums[2] as u8, nums[3] as u8),
            nums[4] << 8 | nums[5],
        )
    }

    /// The client's `PORT 100,64,1,2,19,137` on the control connection, its first
    /// command.
    fn port_frame() -> Vec<u8> {
        tcp(
            "100.64.1.2:40000",
            "192.0.2.10:21",
            101,
            "PA",
            b"PORT 100,64,1,2,19,137\r\n",
            false,
        )
    }

    /// FTP runs on the ALG contract (issue 14): its PORT is read, granted and
    /// rewritten by the one generic path, counted as a contract ALG's message and
    /// pinhole, and under FTP's own names as before.
    #[test]
    fn ftp_runs_on_the_alg_contract() {
        use cgnat_dataplane::counters::ContractEvent;
        let ftp = cgnat_alg::id::FTP;
        assert!(cgnat_alg::plugin(ftp).unwrap().contract.is_some());
        let (mut h, _) = control_session("");
        let o = one(&mut h, &port_frame(), Inside, 1001, Outside);
        assert!(payload(&o).starts_with("PORT 198,51,100,"));
        let ev = |e| h.counters.contract_event(ftp, e).get();
        assert_eq!(
            [ContractEvent::Messages, ContractEvent::Pinholes].map(ev),
            [1, 1]
        );
        assert_eq!(h.counters.alg_ftp_messages.get(), 1);
        assert_eq!(h.counters.alg_ftp_rewrites.get(), 1);
    }

    /// `nat.max_alg_connections` sizes the workers' ALG stream engines: with 64 (one
    /// worker), 64 FTP control connections are followed and their PORTs rewritten;
    /// the 65th is not followed (its PORT goes as written; each of its three
    /// segments, the handshake's too, counted `no_room`), and the ones followed still
    /// are.
    #[test]
    fn the_alg_engines_follow_max_alg_connections_and_count_the_next_as_no_room() {
        use cgnat_dataplane::counters::ContractEvent::NoRoom;
        let mut h = harness("max_alg_connections = 64");
        let no_room = |h: &cgnat_dataplane::harness::Harness| {
            h.counters.contract_event(cgnat_alg::id::FTP, NoRoom).get()
        };
        let client = |k: u32| (1 + k / 200, 2 + k % 200);
        let port = |k: u32, seq: u32| {
            let (c, d) = client(k);
            tcp(
                &format!("100.64.{c}.{d}:40000"),
                "192.0.2.10:21",
                seq,
                "PA",
                format!("PORT 100,64,{c},{d},19,137\r\n").as_bytes(),
                false,
            )
        };
        for k in 0..65u32 {
            let (c, d) = client(k);
            connect(
                &mut h,
                &format!("100.64.{c}.{d}:40000"),
                "192.0.2.10:21",
                5000,
            );
            let sent = port(k, 101);
            let o = one(&mut h, &sent, Inside, 1001, Outside);
            if k < 64 {
                assert!(
                    payload(&o).starts_with("PORT 198,51,100,"),
                    "{k}: {}",
                    payload(&o)
                );
                assert_eq!(no_room(&h), 0, "{k}");
            } else {
                assert_eq!(payload(&o), payload(&sent), "not followed: as written");
                assert_eq!(no_room(&h), 3);
            }
        }
        // A connection followed before is followed still.
        let sent = port(3, 101 + payload(&port(3, 101)).len() as u32);
        let o = one(&mut h, &sent, Inside, 1002, Outside);
        assert!(
            payload(&o).starts_with("PORT 198,51,100,"),
            "{}",
            payload(&o)
        );
        assert_eq!(no_room(&h), 3);
    }

    #[test]
    fn port_is_rewritten_and_the_data_connection_comes_in() {
        let (mut h, c) = control_session("filtering = \"address-and-port-dependent\"");
        let port = port_frame();
        let o = one(&mut h, &port, Inside, 1001, Outside);
        let text = payload(&o);
        assert!(
            text.starts_with("PORT 198,51,100,") && text.ends_with("\r\n"),
            "{text}"
        );
        assert!(checksums_ok(&o));
        let data = port_endpoint(&text);
        assert_eq!(h.counters.expectations_created.get(), 1);
        // The server connects from port 20: allowed by the expectation although
        // filtering is address-and-port-dependent, and delivered to the client's port.
        let syn = out(&one(
            &mut h,
            &tcp("192.0.2.10:20", &data.to_string(), 7, "S", b"", true),
            Outside,
            1002,
            Inside,
        ));
        assert_eq!(syn.dst, sa("100.64.1.2:5001"));
        assert_eq!(h.counters.expectations_matched.get(), 1);
        // The next client command is shifted by the length change; the server's ack
        // of it comes back unshifted.
        let delta = text.len() as i64 - "PORT 100,64,1,2,19,137\r\n".len() as i64;
        let next = one(
            &mut h,
            &tcp(
                "100.64.1.2:40000",
                "192.0.2.10:21",
                125,
                "PA",
                b"RETR f\r\n",
                false,
            ),
            Inside,
            1003,
            Outside,
        );
        assert_eq!(
            u32::from_be_bytes([next[38], next[39], next[40], next[41]]) as i64,
            125 + delta
        );
        // The server acknowledges everything it received (translated numbering).
        let mut ack = tcp("192.0.2.10:21", &c.to_string(), 501, "A", b"", true);
        let acked = (133 + delta) as u32;
        ack[42..46].copy_from_slice(&acked.to_be_bytes());
        ack[50..52].copy_from_slice(&[0, 0]);
        let sum = cgnat_dataplane::wire::checksum::sum(&ack[34..])
            + cgnat_dataplane::wire::checksum::pseudo_header(
                [192, 0, 2, 10],
                c.ip().octets(),
                6,
                20,
            );
        ack[50..52].copy_from_slice(&cgnat_dataplane::wire::checksum::finish(sum).to_be_bytes());
        let back = one(&mut h, &ack, Outside, 1003, Inside);
        assert!(checksums_ok(&back));
        assert_eq!(
            u32::from_be_bytes([back[42], back[43], back[44], back[45]]),
            133,
            "the client sees its own numbering"
        );
    }

    /// Issue 19: 4,200 PORTs from two other subscribers evicted a subscriber's FTP
    /// data expectation (the class was capped per worker, the oldest of anyone went),
    /// and its data connection was refused. Each subscriber now holds its share of
    /// the class; the flood costs the flooders their own oldest.
    #[test]
    fn port_floods_of_other_subscribers_do_not_evict_an_expectation() {
        let (mut h, _) = control_session("filtering = \"address-and-port-dependent\"");
        let port = port_frame();
        let text = payload(&one(&mut h, &port, Inside, 1001, Outside));
        let data = port_endpoint(&text);
        for host in [3u8, 4] {
            let client = format!("100.64.1.{host}:40000");
            connect(&mut h, &client, "192.0.2.10:21", 500);
            for k in 0..2100u32 {
                // Same length every time: hi 100..=113, lo 100..=249.
                let cmd = format!(
                    "PORT 100,64,1,{host},{},{}\r\n",
                    100 + k / 150,
                    100 + k % 150
                );
                let seq = 101 + k * cmd.len() as u32;
                h.inject(
                    &tcp(&client, "192.0.2.10:21", seq, "PA", cmd.as_bytes(), false),
                    Inside,
                    1002,
                );
            }
        }
        assert!(
            h.counters.expectations_evicted.get() > 0,
            "the flooders lost their own"
        );
        let syn = out(&one(
            &mut h,
            &tcp("192.0.2.10:20", &data.to_string(), 7, "S", b"", true),
            Outside,
            1003,
            Inside,
        ));
        assert_eq!(syn.dst, sa("100.64.1.2:5001"));
    }

    /// A PORT command split over two segments (Linux's helper lets it through
    /// untranslated): the first part is held, the second joins it, and one rewritten
    /// segment leaves with the first part's sequence number.
    #[test]
    fn a_port_command_split_over_two_segments_is_held_joined_and_rewritten() {
        let (mut h, _) = control_session("");
        none(
            &mut h,
            &tcp(
                "100.64.1.2:40000",
                "192.0.2.10:21",
                101,
                "PA",
                b"PORT 100,64,",
                false,
            ),
            Inside,
            1001,
        );
        assert_eq!(h.counters.alg_ftp_held.get(), 1);
        let o = h.inject(
            &tcp(
                "100.64.1.2:40000",
                "192.0.2.10:21",
                113,
                "PA",
                b"1,2,19,137\r\n",
                false,
            ),
            Inside,
            1001,
        );
        // Both segments leave, in order, each with its share of the rewrite: together
        // they are the translated command.
        assert_eq!(o.len(), 2);
        let (a, b) = (&o[0].1, &o[1].1);
        assert!(checksums_ok(a) && checksums_ok(b));
        let seq = |f: &[u8]| u32::from_be_bytes([f[38], f[39], f[40], f[41]]);
        assert_eq!(seq(a), 101, "the first starts where it did");
        assert_eq!(seq(b), 101 + (a.len() - 54) as u32, "the second follows it");
        let text = payload(a) + &payload(b);
        assert!(
            text.starts_with("PORT 198,51,100,") && text.ends_with("\r\n"),
            "{text}"
        );
        assert!(!text.contains("100,64,1,2"));
        assert_eq!(h.counters.expectations_created.get(), 1);
        assert_eq!(h.counters.alg_ftp_joined.get(), 1);
    }

    #[test]
    fn a_held_start_with_no_continuation_goes_as_it_is() {
        let (mut h, _) = control_session("");
        none(
            &mut h,
            &tcp(
                "100.64.1.2:40000",
                "192.0.2.10:21",
                101,
                "PA",
                b"PORT 100,64,",
                false,
            ),
            Inside,
            1001,
        );
        assert!(
            h.timer_frames(1002).is_empty(),
            "held for one to two seconds"
        );
        let f = h.timer_frames(1003);
        assert_eq!(f.len(), 1);
        assert_eq!(payload(&f[0].1), "PORT 100,64,");
        assert_eq!(h.counters.alg_ftp_released.get(), 1);
    }

    #[test]
    fn privileged_data_ports_open_nothing_unless_allowed() {
        let (mut h, _) = control_session("[alg]\nftp = { low_port = \"pass\" }");
        let o = one(
            &mut h,
            &tcp(
                "100.64.1.2:40000",
                "192.0.2.10:21",
                101,
                "PA",
                b"PORT 100,64,1,2,0,25\r\n",
                false,
            ),
            Inside,
            1001,
            Outside,
        );
        assert!(payload(&o).ends_with(",0,25\r\n"), "{}", payload(&o));
        assert!(!payload(&o).contains("100,64,1,2"), "{}", payload(&o));
        assert_eq!(h.counters.alg_ftp_low_port.get(), 1);
        assert_eq!(h.counters.expectations_created.get(), 0);
        let (mut h, _) = control_session("[alg]\nftp = { min_data_port = 20 }");
        let o = one(
            &mut h,
            &tcp(
                "100.64.1.2:40000",
                "192.0.2.10:21",
                101,
                "PA",
                b"PORT 100,64,1,2,0,25\r\n",
                false,
            ),
            Inside,
            1001,
            Outside,
        );
        assert!(payload(&o).starts_with("PORT 198,51,100,"));
    }

    /// Twelve PORT commands in one segment: every one leaves translated (the first
    /// ones to reserved mappings, the ones the tag has no room for with the outside
    /// address and no mapping, counted); the inside address never leaves.
    #[test]
    fn many_commands_in_one_segment_never_leave_untranslated() {
        let (mut h, _) = control_session("");
        let mut text = String::new();
        for k in 0..12u16 {
            text.push_str(&format!("PORT 100,64,1,2,{},{}\r\n", 40 + k / 256, k % 256));
        }
        text.push_str("EPRT |1|100.64.1.2|6000|\r\nNOOP\r\n");
        let o = one(
            &mut h,
            &tcp(
                "100.64.1.2:40000",
                "192.0.2.10:21",
                101,
                "PA",
                text.as_bytes(),
                false,
            ),
            Inside,
            1001,
            Outside,
        );
        assert!(checksums_ok(&o));
        let t = payload(&o);
        assert!(
            !t.contains("100,64,1,2") && !t.contains("100.64.1.2"),
            "leaked:\n{t}"
        );
        assert_eq!(t.lines().count(), 14, "{t}");
        assert!(
            t.lines()
                .take(12)
                .all(|l| l.starts_with("PORT 198,51,100,")),
            "{t}"
        );
        assert!(t.contains("EPRT |1|198.51.100."), "{t}");
        let created = h.counters.expectations_created.get();
        assert_eq!(created, cgnat_dataplane::alg::MAX_REWRITES as u64);
        assert_eq!(h.counters.alg_ftp_masked.get(), 13 - created);
    }

    /// A PORT naming a privileged port of the client opens nothing, and its address
    /// leaves as the outside one (the port as written: no mapping answers there).
    #[test]
    fn a_refused_port_command_does_not_leak_the_inside_address() {
        let (mut h, c) = control_session("[alg]\nftp = { low_port = \"pass\" }");
        let o = one(
            &mut h,
            &tcp(
                "100.64.1.2:40000",
                "192.0.2.10:21",
                101,
                "PA",
                b"PORT 100,64,1,2,0,25\r\n",
                false,
            ),
            Inside,
            1001,
            Outside,
        );
        let pub_ip = c.ip().to_string().replace('.', ",");
        assert_eq!(payload(&o), format!("PORT {pub_ip},0,25\r\n"));
        assert_eq!(h.counters.alg_ftp_masked.get(), 1);
        assert_eq!(h.counters.expectations_created.get(), 0);
    }

    #[test]
    fn loose_lets_another_server_make_the_data_connection() {
        for (extra, admitted) in [("", false), ("[alg]\nftp = { loose = true }", true)] {
            let (mut h, _) = control_session(&format!(
                "filtering = \"address-and-port-dependent\"\n{extra}"
            ));
            let o = one(&mut h, &port_frame(), Inside, 1001, Outside);
            let text = payload(&o);
            let nums: Vec<u16> = text[5..text.len() - 2]
                .split(',')
                .map(|n| n.parse().unwrap())
                .collect();
            let data = SocketAddrV4::new(
                Ipv4Addr::new(nums[0] as u8, nums[1] as u8, nums[2] as u8, nums[3] as u8),
                nums[4] << 8 | nums[5],
            );
            let got = h.inject(
                &tcp("192.0.2.99:20", &data.to_string(), 7, "S", b"", true),
                Outside,
                1002,
            );
            assert_eq!(!got.is_empty(), admitted, "extra {extra:?}");
        }
    }

    #[test]
    fn bounce_attempts_open_nothing() {
        let (mut h, _) = control_session("[alg]\nftp = { bounce = \"pass\" }");
        let o = one(
            &mut h,
            &tcp(
                "100.64.1.2:40000",
                "192.0.2.10:21",
                101,
                "PA",
                b"PORT 192,0,2,99,0,25\r\n",
                false,
            ),
            Inside,
            1001,
            Outside,
        );
        assert_eq!(payload(&o), "PORT 192,0,2,99,0,25\r\n", "left alone");
        assert_eq!(h.counters.alg_ftp_bounce.get(), 1);
        assert_eq!(h.counters.expectations_created.get(), 0);
    }

    #[test]
    fn after_auth_tls_the_alg_stands_aside() {
        let (mut h, c) = control_session("");
        one(
            &mut h,
            &tcp(
                "100.64.1.2:40000",
                "192.0.2.10:21",
                101,
                "PA",
                b"AUTH TLS\r\n",
                false,
            ),
            Inside,
            1001,
            Outside,
        );
        one(
            &mut h,
            &tcp(
                "192.0.2.10:21",
                &c.to_string(),
                501,
                "PA",
                b"234 Proceed.\r\n",
                true,
            ),
            Outside,
            1001,
            Inside,
        );
        assert_eq!(h.counters.alg_ftp_stand_aside.get(), 1);
        let o = one(
            &mut h,
            &tcp(
                "100.64.1.2:40000",
                "192.0.2.10:21",
                111,
                "PA",
                b"PORT 100,64,1,2,19,137\r\n",
                false,
            ),
            Inside,
            1002,
            Outside,
        );
        assert_eq!(
            payload(&o),
            "PORT 100,64,1,2,19,137\r\n",
            "encrypted bytes are not touched"
        );
    }

    /// A control connection (strict filtering) whose client sent `PORT` at 1001: the
    /// harness, the connection's outside endpoint and the data endpoint announced.
    fn port_sent() -> (
        cgnat_dataplane::harness::Harness,
        (SocketAddrV4, SocketAddrV4),
    ) {
        let (mut h, c) = control_session("filtering = \"address-and-port-dependent\"");
        let port = port_frame();
        let data = port_endpoint(&payload(&one(&mut h, &port, Inside, 1001, Outside)));
        (h, (c, data))
    }

    /// An active-mode transfer: PORT at 1001, the server's data connection from port
    /// 20 answered by the client at 1002, then the client's acks every 1,000 s until
    /// `until`, with expiry run along. Returns the harness and the control
    /// connection's outside endpoint.
    fn transfer_until(until: u32) -> (cgnat_dataplane::harness::Harness, SocketAddrV4) {
        let (mut h, (c, data)) = port_sent();
        let syn = tcp("192.0.2.10:20", &data.to_string(), 7, "S", b"", true);
        one(&mut h, &syn, Outside, 1002, Inside);
        let synack = tcp("100.64.1.2:5001", "192.0.2.10:20", 900, "SA", b"", false);
        one(&mut h, &synack, Inside, 1002, Outside);
        let mut t = 1002;
        while t + 1000 <= until {
            t += 1000;
            h.expire(t);
            let ack = tcp("100.64.1.2:5001", "192.0.2.10:20", 901, "A", b"", false);
            one(&mut h, &ack, Inside, t, Outside);
        }
        (h, c)
    }

    /// The client's `NOOP` after its `PORT`, and the server's answer to outside
    /// endpoint `c`.
    fn noop() -> Vec<u8> {
        tcp(
            "100.64.1.2:40000",
            "192.0.2.10:21",
            125,
            "PA",
            b"NOOP\r\n",
            false,
        )
    }

    fn server_ok(c: SocketAddrV4) -> Vec<u8> {
        tcp(
            "192.0.2.10:21",
            &c.to_string(),
            501,
            "PA",
            b"200 ok\r\n",
            true,
        )
    }

    /// Issue 14: while the data connection the ALG opened carries traffic, the control
    /// connection is kept alive: after a transfer longer than the established TCP
    /// timeout (7,440 s) the client's next command still goes out and the server's
    /// reply comes back.
    #[test]
    fn a_transfer_longer_than_the_control_timeout_keeps_the_control_connection() {
        let end = 1002 + 20_000;
        let (mut h, c) = transfer_until(end);
        h.expire(end + 10);
        let noop = noop();
        let o = one(&mut h, &noop, Inside, end + 10, Outside);
        assert_eq!(out(&o).src, c);
        let reply = server_ok(c);
        let back = one(&mut h, &reply, Outside, end + 11, Inside);
        assert_eq!(out(&back).dst, sa("100.64.1.2:40000"));
    }

    /// The converse: once the data connection is quiet, the control connection
    /// expires one established timeout after the last activity of either.
    #[test]
    fn a_quiet_data_connection_keeps_the_control_connection_no_longer() {
        let last = 1002 + 3_000;
        let (mut h, c) = transfer_until(last);
        h.expire(last + 7_440 - 1);
        let noop = noop();
        let reply = server_ok(c);
        one(&mut h, &reply, Outside, last + 7_440 - 1, Inside);
        h.expire(last + 7_440 + 1);
        none(&mut h, &noop, Inside, last + 7_440 + 1);
        none(&mut h, &reply, Outside, last + 7_440 + 1);
    }

    /// And with no data connection at all, the control connection expires one
    /// established timeout after its own last packet, as before.
    #[test]
    fn a_control_connection_without_data_expires_as_before() {
        let (mut h, (c, _)) = port_sent();
        let reply = server_ok(c);
        h.expire(1001 + 7_440 - 1);
        one(&mut h, &reply, Outside, 1001 + 7_440 - 1, Inside);
        h.expire(1001 + 7_440 + 1);
        none(&mut h, &reply, Outside, 1001 + 7_440 + 1);
    }
}

#[test]
fn tftp_alg_lets_the_server_answer_from_a_new_port_under_strict_filtering() {
    let mut h =
        harness("filtering = \"address-and-port-dependent\"\n[alg]\ntftp = { enabled = true }");
    let rrq = udp(
        "100.64.1.2:44935",
        "192.0.2.10:69",
        b"\x00\x01file1\x00octet\x00",
        false,
    );
    let m = out(&one(&mut h, &rrq, Inside, 1000, Outside)).src;
    assert_eq!(
        h.counters.expectations_created.get(),
        1,
        "drops: {:?}",
        h.counters.drops
    );
    tftp_answer_reaches_client(&mut h, m, 1000);
    assert_eq!(h.counters.expectations_matched.get(), 1);
}

/// TFTP runs on the ALG contract (`alg-plugins/src/tftp.rs`): its datagrams are
/// counted under `cgnat_alg_events_total{alg="tftp"}`: a request from the client is a
/// message that opens a pinhole, another message none, a datagram too short for an
/// opcode is skipped, and nothing from the server asks anything.
#[test]
fn tftp_runs_on_the_alg_contract_and_is_counted_as_tftp() {
    use cgnat_dataplane::counters::ContractEvent::{Messages, Pinholes, Refused, Skipped};
    let mut h =
        harness("filtering = \"address-and-port-dependent\"\n[alg]\ntftp = { enabled = true }");
    let ev = |h: &cgnat_dataplane::harness::Harness, e| {
        h.counters.contract_event(cgnat_alg::id::TFTP, e).get()
    };
    let req = |payload: &[u8]| udp("100.64.1.2:44935", "192.0.2.10:69", payload, false);
    let m = out(&one(
        &mut h,
        &req(b"\x00\x01file1\x00octet\x00"),
        Inside,
        1000,
        Outside,
    ))
    .src;
    assert_eq!((ev(&h, Messages), ev(&h, Pinholes)), (1, 1));
    // The client's error on the same session: a message, no pinhole.
    one(
        &mut h,
        &req(b"\x00\x05\x00\x00stop\x00"),
        Inside,
        1000,
        Outside,
    );
    one(&mut h, &req(b"\x00"), Inside, 1000, Outside);
    assert_eq!(
        [Messages, Pinholes, Skipped, Refused].map(|e| ev(&h, e)),
        [2, 1, 1, 0]
    );
    // A request from the server's port on the session asks nothing.
    let back = udp(
        "192.0.2.10:69",
        &m.to_string(),
        b"\x00\x01f\x00octet\x00",
        true,
    );
    one(&mut h, &back, Outside, 1000, Inside);
    assert_eq!([Messages, Pinholes].map(|e| ev(&h, e)), [3, 1]);
    tftp_answer_reaches_client(&mut h, m, 1000);
    assert_eq!(h.counters.expectations_created.get(), 1);
}

/// A TFTP expectation lasts its class's timeout (30 s, `tftp` in the registry), not the
/// FTP data connection's 120 s: an answer after it is filtered like any stranger's.
#[test]
fn a_tftp_expectation_ends_after_its_class_timeout() {
    let mut h =
        harness("filtering = \"address-and-port-dependent\"\n[alg]\ntftp = { enabled = true }");
    let rrq = udp(
        "100.64.1.2:44935",
        "192.0.2.10:69",
        b"\x00\x01file1\x00octet\x00",
        false,
    );
    let m = out(&one(&mut h, &rrq, Inside, 1000, Outside)).src;
    let timeout = cgnat_alg::CLASSES
        .iter()
        .find(|c| c.name == "tftp")
        .unwrap()
        .timeout_secs;
    assert_eq!(timeout, 30);
    h.expire(1000 + timeout + 1);
    assert_eq!(h.counters.expectations_expired.get(), 1);
    let late = udp(
        "192.0.2.10:59557",
        &m.to_string(),
        b"\x00\x03\x00\x01hi",
        true,
    );
    none(&mut h, &late, Outside, 1000 + timeout + 1);
    assert_eq!(h.counters.expectations_matched.get(), 0);
}

mod ftp_more {
    use super::*;

    fn payload(f: &[u8]) -> String {
        String::from_utf8_lossy(&f[54..]).into_owned()
    }

    /// `NOOP\r\nPORT 100,64,` then the rest: the unfinished PORT after a whole command is
    /// held and joined (Linux's helper only reads the start of a segment and leaks it).
    #[test]
    fn port_split_after_another_command_in_the_same_segment_is_joined() {
        let mut h = harness("filtering = \"address-and-port-dependent\"");
        connect(&mut h, "100.64.1.2:40000", "192.0.2.10:21", 500);
        let a = b"NOOP\r\nPORT 100,64,";
        let held = h.inject(
            &tcp("100.64.1.2:40000", "192.0.2.10:21", 101, "PA", a, false),
            Inside,
            1001,
        );
        assert!(held.is_empty(), "held");
        let b = b"1,2,19,137\r\n";
        let o = h.inject(
            &tcp(
                "100.64.1.2:40000",
                "192.0.2.10:21",
                101 + a.len() as u32,
                "PA",
                b,
                false,
            ),
            Inside,
            1001,
        );
        assert_eq!(o.len(), 2);
        let t = payload(&o[0].1) + &payload(&o[1].1);
        assert!(t.starts_with("NOOP\r\nPORT 198,51,100,"), "{t}");
        assert!(!t.contains("100,64,1,2"), "{t}");
        assert_eq!(h.counters.expectations_created.get(), 1);
    }

    /// A 227 reply from a server behind the NAT split across two segments: held, and
    /// the run rewritten (Linux's helper drops such a segment).
    #[test]
    fn a_split_227_from_a_server_behind_the_nat_is_held_and_rewritten() {
        let mut h = harness("filtering = \"address-and-port-dependent\"\n[[nat.static]]\nprotocol = \"tcp\"\ninside = \"100.64.0.3:21\"\noutside = \"198.51.100.2:21\"");

        // The server is known on the inside link (as after ARP).
        h.neighbors.learn(u32::from(ip("100.64.0.3")), &HOST_MAC);
        one(
            &mut h,
            &tcp("192.0.2.50:50000", "198.51.100.2:21", 10, "S", b"", true),
            Outside,
            1000,
            Inside,
        );
        one(
            &mut h,
            &tcp("100.64.0.3:21", "192.0.2.50:50000", 700, "SA", b"", false),
            Inside,
            1000,
            Outside,
        );
        let a = b"227 Entering Passive Mode (100,64,0,";
        assert!(h
            .inject(
                &tcp("100.64.0.3:21", "192.0.2.50:50000", 701, "PA", a, false),
                Inside,
                1001
            )
            .is_empty());
        let b = b"3,195,80).\r\n";
        let o = h.inject(
            &tcp(
                "100.64.0.3:21",
                "192.0.2.50:50000",
                701 + a.len() as u32,
                "PA",
                b,
                false,
            ),
            Inside,
            1001,
        );
        assert_eq!(o.len(), 2);
        let t = payload(&o[0].1) + &payload(&o[1].1);
        assert!(
            t.starts_with("227 Entering Passive Mode (198,51,100,2,"),
            "{t}"
        );
        assert!(!t.contains("100,64,0,3"), "{t}");
        assert_eq!(h.counters.expectations_created.get(), 1);
    }

    /// An FTP server behind a port forward under the strictest filtering: the client's
    /// connection gets in, the server's 227 and 229 replies are rewritten to a reserved
    /// outside port, and the client's data connection comes in through it.
    #[test]
    fn server_behind_a_port_forward_gets_227_and_229_rewritten() {
        let mut h = harness("filtering = \"address-and-port-dependent\"\n[[nat.static]]\nprotocol = \"tcp\"\ninside = \"100.64.0.3:21\"\noutside = \"198.51.100.2:21\"");
        // The server is known on the inside link (as after ARP).
        h.neighbors.learn(u32::from(ip("100.64.0.3")), &HOST_MAC);
        let syn = out(&one(
            &mut h,
            &tcp("192.0.2.50:50000", "198.51.100.2:21", 10, "S", b"", true),
            Outside,
            1000,
            Inside,
        ));
        assert_eq!(syn.dst, sa("100.64.0.3:21"));
        one(
            &mut h,
            &tcp("100.64.0.3:21", "192.0.2.50:50000", 700, "SA", b"", false),
            Inside,
            1000,
            Outside,
        );
        let r = one(
            &mut h,
            &tcp(
                "100.64.0.3:21",
                "192.0.2.50:50000",
                701,
                "PA",
                b"227 Entering Passive Mode (100,64,0,3,195,80).\r\n",
                false,
            ),
            Inside,
            1001,
            Outside,
        );
        let t = payload(&r);
        assert!(
            t.starts_with("227 Entering Passive Mode (198,51,100,2,"),
            "{t}"
        );
        assert!(t.ends_with(").\r\n"));
        let inner = &t[t.find('(').unwrap() + 1..t.find(')').unwrap()];
        let n: Vec<u16> = inner.split(',').map(|x| x.parse().unwrap()).collect();
        let data = SocketAddrV4::new(
            Ipv4Addr::new(n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8),
            n[4] << 8 | n[5],
        );
        let d = out(&one(
            &mut h,
            &tcp("192.0.2.50:50001", &data.to_string(), 20, "S", b"", true),
            Outside,
            1002,
            Inside,
        ));
        assert_eq!(d.dst, sa("100.64.0.3:50000"));
        let r = one(
            &mut h,
            &tcp(
                "100.64.0.3:21",
                "192.0.2.50:50000",
                701 + t.len() as u32 - 1,
                "PA",
                b"229 Entering Extended Passive Mode (|||50010|)\r\n",
                false,
            ),
            Inside,
            1003,
            Outside,
        );
        let t2 = payload(&r);
        let port: u16 = t2
            .split("(|||")
            .nth(1)
            .unwrap()
            .split('|')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_ne!(port, 50010, "{t2}");
        let d = out(&one(
            &mut h,
            &tcp(
                "192.0.2.50:50002",
                &format!("198.51.100.2:{port}"),
                30,
                "S",
                b"",
                true,
            ),
            Outside,
            1004,
            Inside,
        ));
        assert_eq!(d.dst, sa("100.64.0.3:50010"));
    }
}
