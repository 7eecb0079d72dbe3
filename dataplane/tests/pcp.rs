//! The PCP (RFC 6887) and NAT-PMP (RFC 6886) server through the pipeline: requests
//! from the inside to the inside address's port 5351, answered by the control lcore
//! with the mapping the owning worker made; the mapping lets remotes in (narrowed by
//! FILTER), ends with its lifetime or a delete; every refusal has its result code and
//! its counter.

mod common;

use cgnat_dataplane::counters::PcpOutcome;
use cgnat_dataplane::harness::Harness;
use cgnat_dataplane::pipeline::Side;
use common::*;
use std::net::SocketAddrV4;

const SUB: &str = "100.64.1.2";
const SERVER: &str = "100.64.0.1:5351";

fn pcp_harness(pcp: &str) -> Harness {
    harness(&format!(
        "filtering = \"address-and-port-dependent\"\n[pcp]\n{pcp}"
    ))
}

fn outcome(h: &Harness, o: PcpOutcome) -> u64 {
    h.counters.pcp[o as usize].get()
}

/// A PCP request: opcode, lifetime, client address, opcode data and options.
fn pcp_req(opcode: u8, lifetime: u32, client: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut v = vec![2, opcode, 0, 0];
    v.extend_from_slice(&lifetime.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
    v.extend_from_slice(&client);
    v.extend_from_slice(data);
    v
}

/// MAP data: nonce, protocol, internal port, suggested external port and address.
fn map_data(nonce: u8, proto: u8, port: u16, ext_port: u16, opts: &[u8]) -> Vec<u8> {
    let mut v = vec![nonce; 12];
    v.extend_from_slice(&[proto, 0, 0, 0]);
    v.extend_from_slice(&port.to_be_bytes());
    v.extend_from_slice(&ext_port.to_be_bytes());
    v.extend_from_slice(&[0; 16]);
    v.extend_from_slice(opts);
    v
}

const ME: [u8; 4] = [100, 64, 1, 2];

/// Sends a request from the subscriber; the answer's UDP payload.
fn ask(h: &mut Harness, payload: &[u8], now: u32) -> Vec<u8> {
    let f = one(
        h,
        &udp(&format!("{SUB}:40000"), SERVER, payload, false),
        Side::Inside,
        now,
        Side::Inside,
    );
    let o = out(&f);
    assert_eq!(o.src, sa(SERVER));
    assert_eq!(o.dst, sa(&format!("{SUB}:40000")));
    assert_eq!(o.dst_mac, HOST_MAC);
    f[42..].to_vec()
}

fn ext_of(resp: &[u8]) -> SocketAddrV4 {
    let port = u16::from_be_bytes([resp[42], resp[43]]);
    let a = &resp[56..60];
    SocketAddrV4::new([a[0], a[1], a[2], a[3]].into(), port)
}

/// A TCP SYN from `remote` to the mapped endpoint: whether it reaches the subscriber.
fn syn_reaches(h: &mut Harness, remote: &str, ext: SocketAddrV4, port: u16, now: u32) -> bool {
    let o = h.inject(
        &tcp(remote, &ext.to_string(), 1, "S", b"", true),
        Side::Outside,
        now,
    );
    match o.as_slice() {
        [(Side::Inside, f)] => {
            assert_eq!(out(f).dst, sa(&format!("{SUB}:{port}")));
            true
        }
        _ => false,
    }
}

#[test]
fn pcp_map_answers_with_the_expected_bytes_and_lets_remotes_in() {
    let mut h = pcp_harness("");
    // Before any mapping, the filtering keeps remotes out.
    let r = ask(
        &mut h,
        &pcp_req(1, 3600, ME, &map_data(7, 6, 8080, 0, &[])),
        1000,
    );
    assert_eq!(&r[..4], &[2, 0x81, 0, 0], "MAP response, SUCCESS");
    assert_eq!(&r[4..8], &3600u32.to_be_bytes());
    assert_eq!(&r[24..36], &[7; 12], "nonce echoed");
    assert_eq!(&r[36..42], &[6, 0, 0, 0, 0x1f, 0x90]);
    assert_eq!(&r[44..56], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
    let ext = ext_of(&r);
    assert!(ext.ip().octets()[..3] == [198, 51, 100], "{ext}");
    assert!(syn_reaches(&mut h, "192.0.2.9:5555", ext, 8080, 1001));
    assert_eq!(outcome(&h, PcpOutcome::Mapped), 1);
    // Refreshing with the same nonce keeps the endpoint; another nonce is refused.
    let again = ask(
        &mut h,
        &pcp_req(1, 60, ME, &map_data(7, 6, 8080, 0, &[])),
        1002,
    );
    assert_eq!((again[3], ext_of(&again)), (0, ext));
    assert_eq!(
        &again[4..8],
        &120u32.to_be_bytes(),
        "raised to min_lifetime"
    );
    let thief = ask(
        &mut h,
        &pcp_req(1, 60, ME, &map_data(8, 6, 8080, 0, &[])),
        1002,
    );
    assert_eq!(thief[3], 2, "NOT_AUTHORIZED");
    // Delete (lifetime 0) with the nonce: remotes are kept out again.
    let del = ask(
        &mut h,
        &pcp_req(1, 0, ME, &map_data(7, 6, 8080, 0, &[])),
        1003,
    );
    assert_eq!((del[3], &del[4..8]), (0, &[0u8, 0, 0, 0][..]));
    assert!(!syn_reaches(&mut h, "192.0.2.9:5556", ext, 8080, 1004));
    assert_eq!(outcome(&h, PcpOutcome::Deleted), 1);
}

#[test]
fn a_mapping_ends_with_its_lifetime() {
    let mut h = pcp_harness("min_lifetime = 10");
    let r = ask(
        &mut h,
        &pcp_req(1, 10, ME, &map_data(1, 17, 6881, 0, &[])),
        1000,
    );
    let ext = ext_of(&r);
    let probe = |h: &mut Harness, now| {
        !h.inject(
            &udp("192.0.2.9:7000", &ext.to_string(), b"x", true),
            Side::Outside,
            now,
        )
        .is_empty()
    };
    assert!(probe(&mut h, 1005));
    h.expire(1011);
    // The remote's own session (UDP timeout) still stands; a new remote does not get in.
    let o = h.inject(
        &udp("192.0.2.77:7000", &ext.to_string(), b"x", true),
        Side::Outside,
        1011,
    );
    assert!(o.is_empty(), "{o:02x?}");
    assert_eq!(h.counters.pcp_mappings_expired.get(), 1);
}

#[test]
fn filter_narrows_who_may_come_in() {
    let mut h = pcp_harness("");
    // FILTER: 192.0.2.0/24 (prefix 96 + 24), any port.
    let mut f = vec![3, 0, 0, 20, 0, 120, 0, 0];
    f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 0]);
    let r = ask(
        &mut h,
        &pcp_req(1, 600, ME, &map_data(3, 6, 22, 0, &f)),
        1000,
    );
    assert_eq!(r[3], 0);
    assert_eq!(&r[60..64], &[3, 0, 0, 20], "FILTER echoed");
    let ext = ext_of(&r);
    assert!(syn_reaches(&mut h, "192.0.2.200:1234", ext, 22, 1001));
    assert!(!syn_reaches(&mut h, "203.0.113.50:1234", ext, 22, 1001));
}

#[test]
fn peer_reports_the_external_endpoint_and_admits_the_peer() {
    let mut h = pcp_harness("");
    let mut d = map_data(4, 17, 5000, 0, &[]);
    d.extend_from_slice(&[0x1f, 0x90, 0, 0]);
    d.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 10]);
    let r = ask(&mut h, &pcp_req(2, 600, ME, &d), 1000);
    assert_eq!(&r[..4], &[2, 0x82, 0, 0]);
    let ext = ext_of(&r);
    // The peer's packets come in; another remote's do not.
    let o = h.inject(
        &udp("192.0.2.10:8080", &ext.to_string(), b"x", true),
        Side::Outside,
        1001,
    );
    assert_eq!(o.len(), 1);
    assert_eq!(out(&o[0].1).dst, sa(&format!("{SUB}:5000")));
    let o = h.inject(
        &udp("192.0.2.11:8080", &ext.to_string(), b"x", true),
        Side::Outside,
        1001,
    );
    assert!(o.is_empty());
    // The outbound flow to the peer uses the same endpoint.
    let f = one(
        &mut h,
        &udp(&format!("{SUB}:5000"), "192.0.2.10:8080", b"y", false),
        Side::Inside,
        1002,
        Side::Outside,
    );
    assert_eq!(out(&f).src, ext);
}

#[test]
fn natpmp_public_address_and_map() {
    let mut h = pcp_harness("");
    let r = ask(&mut h, &[0, 0], 1000);
    assert_eq!(&r[..4], &[0, 128, 0, 0]);
    assert_eq!(r.len(), 12);
    let public = [r[8], r[9], r[10], r[11]];
    // Map TCP 6881, suggested 0, 7200 s.
    let r = ask(
        &mut h,
        &[0, 2, 0, 0, 0x1a, 0xe1, 0, 0, 0, 0, 0x1c, 0x20],
        1001,
    );
    assert_eq!(r.len(), 16);
    assert_eq!(&r[..4], &[0, 130, 0, 0]);
    assert_eq!(&r[8..10], &[0x1a, 0xe1]);
    assert_eq!(&r[12..16], &7200u32.to_be_bytes());
    let ext = SocketAddrV4::new(public.into(), u16::from_be_bytes([r[10], r[11]]));
    assert!(syn_reaches(&mut h, "192.0.2.9:5555", ext, 6881, 1002));
    // Delete all of the client's TCP mappings: internal port 0, lifetime 0.
    let r = ask(&mut h, &[0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 1003);
    assert_eq!(&r[..4], &[0, 130, 0, 0]);
    assert!(!syn_reaches(&mut h, "192.0.2.9:5556", ext, 6881, 1004));
    // Unknown opcode: an 8-byte answer with result 5.
    let r = ask(&mut h, &[0, 9, 0, 0], 1005);
    assert_eq!(&r[..4], &[0, 137, 0, 5]);
    assert_eq!(outcome(&h, PcpOutcome::UnsuppOpcode), 1);
}

#[test]
fn natpmp_off_answers_unsupported_version() {
    let mut h = pcp_harness("nat_pmp = false");
    let r = ask(&mut h, &[0, 0], 1000);
    assert_eq!(&r[..4], &[0, 128, 0, 1]);
    assert_eq!(outcome(&h, PcpOutcome::UnsuppVersion), 1);
}

#[test]
fn every_refusal_has_its_result_code_and_counter() {
    let mut h = pcp_harness("max_mappings_per_subscriber = 1");
    let code = |h: &mut Harness, req: &[u8]| ask(h, req, 1000)[3];
    // Another host's address in the client field.
    let r = pcp_req(1, 60, [100, 64, 9, 9], &map_data(1, 6, 80, 0, &[]));
    assert_eq!(code(&mut h, &r), 12);
    assert_eq!(outcome(&h, PcpOutcome::AddressMismatch), 1);
    // THIRD_PARTY, not allowed.
    let mut tp = vec![1, 0, 0, 16];
    tp.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 100, 64, 1, 3]);
    assert_eq!(
        code(&mut h, &pcp_req(1, 60, ME, &map_data(1, 6, 80, 0, &tp))),
        2
    );
    assert_eq!(outcome(&h, PcpOutcome::ThirdParty), 1);
    // Version 3, opcode 9, truncated MAP, unknown mandatory option, bad protocol.
    let mut v3 = pcp_req(1, 60, ME, &map_data(1, 6, 80, 0, &[]));
    v3[0] = 3;
    assert_eq!(code(&mut h, &v3), 1);
    assert_eq!(code(&mut h, &pcp_req(9, 60, ME, &[])), 4);
    assert_eq!(code(&mut h, &pcp_req(1, 60, ME, &[0; 12])), 3);
    assert_eq!(
        code(
            &mut h,
            &pcp_req(1, 60, ME, &map_data(1, 6, 80, 0, &[42, 0, 0, 0]))
        ),
        5
    );
    assert_eq!(
        code(&mut h, &pcp_req(1, 60, ME, &map_data(1, 1, 80, 0, &[]))),
        9
    );
    // PREFER_FAILURE twice is malformed.
    assert_eq!(
        code(
            &mut h,
            &pcp_req(1, 60, ME, &map_data(1, 6, 80, 0, &[2, 0, 0, 0, 2, 0, 0, 0]))
        ),
        6
    );
    // Quota: one mapping, then USER_EX_QUOTA.
    assert_eq!(
        code(&mut h, &pcp_req(1, 60, ME, &map_data(1, 6, 80, 0, &[]))),
        0
    );
    assert_eq!(
        code(&mut h, &pcp_req(1, 60, ME, &map_data(1, 6, 81, 0, &[]))),
        10
    );
    // PREFER_FAILURE with a port not the subscriber's: CANNOT_PROVIDE_EXTERNAL.
    let mut h2 = pcp_harness("");
    assert_eq!(
        code(
            &mut h2,
            &pcp_req(1, 60, ME, &map_data(1, 6, 80, 7, &[2, 0, 0, 0]))
        ),
        11
    );
    for (o, n) in [
        (PcpOutcome::UnsuppVersion, 1),
        (PcpOutcome::UnsuppOpcode, 1),
        (PcpOutcome::MalformedRequest, 1),
        (PcpOutcome::UnsuppOption, 1),
        (PcpOutcome::UnsuppProtocol, 1),
        (PcpOutcome::MalformedOption, 1),
        (PcpOutcome::Quota, 1),
        (PcpOutcome::Mapped, 1),
    ] {
        assert_eq!(outcome(&h, o), n, "{o:?}");
    }
    assert_eq!(outcome(&h2, PcpOutcome::CannotProvide), 1);
}

#[test]
fn requests_dropped_without_answer_are_counted() {
    let mut h = pcp_harness("");
    // From the outside port: dropped.
    none(
        &mut h,
        &udp("192.0.2.9:40000", SERVER, &pcp_req(0, 0, ME, &[]), true),
        Side::Outside,
        1000,
    );
    assert_eq!(outcome(&h, PcpOutcome::NotInside), 1);
    // A response, a one-byte message.
    none(
        &mut h,
        &udp(&format!("{SUB}:1"), SERVER, &[2, 0x81, 0, 0], false),
        Side::Inside,
        1000,
    );
    none(
        &mut h,
        &udp(&format!("{SUB}:1"), SERVER, &[2], false),
        Side::Inside,
        1000,
    );
    assert_eq!(outcome(&h, PcpOutcome::Dropped), 2);
    // More than the rate in one second.
    let announce = pcp_req(0, 0, ME, &[]);
    for _ in 0..cgnat_dataplane::pcp::REQUESTS_PER_SECOND {
        ask(&mut h, &announce, 1001);
    }
    none(
        &mut h,
        &udp(&format!("{SUB}:1"), SERVER, &announce, false),
        Side::Inside,
        1001,
    );
    assert_eq!(outcome(&h, PcpOutcome::RateLimited), 1);
    assert_eq!(
        outcome(&h, PcpOutcome::Answered),
        u64::from(cgnat_dataplane::pcp::REQUESTS_PER_SECOND)
    );
}

#[test]
fn without_pcp_requests_get_no_answer() {
    let mut h = harness("");
    none(
        &mut h,
        &udp(&format!("{SUB}:1"), SERVER, &[0, 0], false),
        Side::Inside,
        1000,
    );
}

#[test]
fn announce_goes_to_all_hosts_at_start_up() {
    let mut h = pcp_harness("");
    let frames = h.timer_frames(1000);
    let (side, f) = frames
        .iter()
        .find(|(_, f)| f.len() > 42 && f[36..38] == [0x14, 0xe6])
        .expect("an ANNOUNCE");
    assert_eq!(*side, Side::Inside);
    let o = out(f);
    assert_eq!(o.src, sa(SERVER));
    assert_eq!(o.dst, sa("224.0.0.1:5350"));
    assert_eq!(o.dst_mac, [1, 0, 0x5e, 0, 0, 1]);
    assert_eq!(&f[42..46], &[2, 0x80, 0, 0]);
    assert_eq!(f.len(), 42 + 24);
    // Once now, again one second later.
    assert!(h.timer_frames(1000).iter().all(|(_, f)| f.len() != 66));
    assert!(h.timer_frames(1001).iter().any(|(_, f)| f.len() == 66));
}

#[test]
fn the_subscriber_view_lists_its_port_mappings() {
    use cgnat_dataplane::inspect::{answer, Answer, Query};
    let mut h = pcp_harness("");
    let r = ask(
        &mut h,
        &pcp_req(1, 600, ME, &map_data(5, 17, 6881, 0, &[])),
        1000,
    );
    let ext = ext_of(&r);
    let Answer::Subscriber(Some(s)) =
        answer(&h.worker.nat, 0, &Query::Subscriber(ip(SUB).into()), 1010)
    else {
        panic!("no subscriber")
    };
    assert_eq!(s.port_mappings.len(), 1);
    let m = &s.port_mappings[0];
    assert_eq!(
        (
            m.protocol.as_str(),
            m.inside.as_str(),
            m.outside.clone(),
            m.expires_in_secs
        ),
        ("udp", "100.64.1.2:6881", ext.to_string(), 590)
    );
}

#[test]
fn mappings_are_logged_like_sessions() {
    use cgnat_dataplane::counters::WorkerCounters;
    use cgnat_dataplane::log::event;
    use cgnat_dataplane::nat::pcp::PcpAsk;
    use cgnat_dataplane::nat::{Nat, NatParams};
    // The runtime sets the log policy from [logging]; session events on.
    let mut params = NatParams::from_config(&config("").nat, 1).unwrap();
    params.log.sessions = true;
    let mut nat = Nat::new(
        params,
        0,
        1,
        1000,
        7,
        std::sync::Arc::new(WorkerCounters::default()),
    );
    let ask = PcpAsk {
        proto: 6,
        inside: (u32::from(ip(SUB)), 8080),
        lifetime: 600,
        max_per_subscriber: 4,
        ..PcpAsk::default()
    };
    let (oa, op) = nat.pcp_map(&ask, 1000).unwrap();
    nat.pcp_delete(6, ask.inside, Some([0; 12]), 1001).unwrap();
    let kinds: Vec<(u8, u16, u16, u32)> = nat
        .events()
        .iter()
        .map(|e| (e.kind, e.in_port, e.out_port, e.outside))
        .collect();
    assert!(
        kinds.contains(&(event::SESSION_CREATE, 8080, op, oa)),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&(event::SESSION_DELETE, 8080, op, oa)),
        "{kinds:?}"
    );
}

/// A MAP for TCP `port` from inside `host`, injected at worker `at`; the answer's
/// result code and outside endpoint.
fn map_from(h: &mut Harness, host: &str, port: u16, at: u16, now: u32) -> (u8, SocketAddrV4) {
    let a: std::net::Ipv4Addr = host.parse().unwrap();
    let req = pcp_req(1, 600, a.octets(), &map_data(9, 6, port, 0, &[]));
    let o = h.inject_at(
        at,
        &udp(&format!("{host}:40000"), SERVER, &req, false),
        Side::Inside,
        now,
    );
    let [(Side::Inside, f)] = o.as_slice() else {
        panic!("{o:02x?}")
    };
    assert_eq!(out(f).dst, sa(&format!("{host}:40000")));
    (f[42 + 3], ext_of(&f[42..]))
}

#[test]
fn with_two_workers_the_subscribers_owner_makes_the_mapping() {
    let cfg = config("filtering = \"address-and-port-dependent\"\n[pcp]");
    let mut h = Harness::with_workers(&cfg, 2, 1000);
    for i in 1..=20u8 {
        h.neighbors
            .learn(u32::from(std::net::Ipv4Addr::new(100, 64, 1, i)), &HOST_MAC);
    }
    for i in 1..=20u8 {
        let host = format!("100.64.1.{i}");
        // Received by worker 0 whoever owns the subscriber.
        let (code, ext) = map_from(&mut h, &host, 22, 0, 1000);
        assert_eq!(code, 0);
        let holders: Vec<u16> = (0..2u16)
            .filter(|&w| {
                h.nth(w)
                    .nat
                    .pcp_entries()
                    .any(|e| e.outside == (u32::from(*ext.ip()), ext.port()))
            })
            .collect();
        let owner = (cgnat_dataplane::nat::hash32(u32::from(ip(&host))) % 2) as u16;
        assert_eq!(holders, [owner], "{host}");
        // An outside host reaches it, whichever worker receives its SYN.
        let o = h.inject_at(
            0,
            &tcp("192.0.2.9:5555", &ext.to_string(), 1, "S", b"", true),
            Side::Outside,
            1001,
        );
        assert!(
            matches!(o.as_slice(), [(Side::Inside, f)] if out(f).dst == sa(&format!("{host}:22"))),
            "{host}: {o:02x?}"
        );
        // The subscriber's own traffic from that port leaves by the same mapping.
        let o = h.inject_at(
            0,
            &tcp(&format!("{host}:22"), "192.0.2.77:443", 1, "S", b"", false),
            Side::Inside,
            1002,
        );
        assert!(
            matches!(o.as_slice(), [(Side::Outside, f)] if out(f).src == ext),
            "{host}: {o:02x?}"
        );
    }
    assert!(
        h.nth(1).counters().handoff_in.get() > 0,
        "some requests went to worker 1"
    );
}

#[test]
fn under_deterministic_allocation_the_mapping_is_in_the_subscribers_range() {
    let nat = "inside = [\"100.64.0.0/16\"]\nallocation = \"deterministic\"";
    let cfg = config(&format!(
        "{nat}\nfiltering = \"address-and-port-dependent\"\n[pcp]"
    ));
    let mut h = Harness::new(&cfg, 1000);
    h.neighbors.learn(u32::from(ip(SUB)), &HOST_MAC);
    let d = cgnat_dataplane::nat::NatParams::from_config(&cfg.nat, 1)
        .unwrap()
        .deterministic
        .unwrap();
    let (public, first, last) = d.forward(ip(SUB)).unwrap();
    let (code, ext) = map_from(&mut h, SUB, 8080, 0, 1000);
    assert_eq!(code, 0);
    assert_eq!(*ext.ip(), public);
    assert!(
        (first..=last).contains(&ext.port()),
        "{ext} outside {first}-{last}"
    );
}

#[test]
fn a_reload_gives_the_next_request_the_new_lifetimes_and_quota() {
    let text = |pcp: &str| {
        config_text(&format!(
            "filtering = \"address-and-port-dependent\"\n[pcp]\n{pcp}"
        ))
    };
    let before = text("max_lifetime = 7200");
    let mut h = pcp_harness("max_lifetime = 7200");
    let r = ask(
        &mut h,
        &pcp_req(1, 3600, ME, &map_data(7, 6, 8080, 0, &[])),
        1000,
    );
    assert_eq!((r[3], &r[4..8]), (0, &3600u32.to_be_bytes()[..]));
    let ext = ext_of(&r);
    // Live settings (cgnat_config::reload_plan takes them), taken between bursts.
    let after = text("max_lifetime = 600\nmax_mappings_per_subscriber = 1");
    let (old, new) = (
        cgnat_config::Config::parse(&before, "a.toml").unwrap(),
        cgnat_config::Config::parse(&after, "b.toml").unwrap(),
    );
    let plan = cgnat_config::reload_plan(&old, &new, &after).expect("live");
    assert_eq!(plan.len(), 2, "{plan:?}");
    h.reconfigure(&new, 1001);
    // The refresh is granted the new maximum, on the same endpoint, still reached.
    let r = ask(
        &mut h,
        &pcp_req(1, 3600, ME, &map_data(7, 6, 8080, 0, &[])),
        1002,
    );
    assert_eq!(
        (r[3], &r[4..8], ext_of(&r)),
        (0, &600u32.to_be_bytes()[..], ext)
    );
    assert!(syn_reaches(&mut h, "192.0.2.9:5555", ext, 8080, 1003));
    // One mapping per subscriber now: a second is USER_EX_QUOTA.
    let r = ask(
        &mut h,
        &pcp_req(1, 60, ME, &map_data(7, 6, 8081, 0, &[])),
        1004,
    );
    assert_eq!(r[3], 10);
    assert_eq!(outcome(&h, PcpOutcome::Quota), 1);
}

#[test]
fn in_a_burst_requests_go_the_slow_way_and_a_mappings_sessions_the_fast_way() {
    use cgnat_dataplane::counters::STAGES;
    let stage = |name: &str| STAGES.iter().position(|s| *s == name).unwrap();
    let (translate, slow) = (stage("translate"), stage("slow"));
    let mut h = pcp_harness("");
    let r = ask(
        &mut h,
        &pcp_req(1, 600, ME, &map_data(7, 17, 9000, 0, &[])),
        1000,
    );
    let ext = ext_of(&r).to_string();
    // A remote opens a session through the mapping (the full path creates it).
    let first = udp("192.0.2.9:4000", &ext, b"hello", true);
    let o = h.inject(&first, Side::Outside, 1001);
    assert_eq!(o.len(), 1);
    assert_eq!(out(&o[0].1).dst, sa(&format!("{SUB}:9000")));
    let c = h.counters.clone();
    let (t0, s0) = (
        c.stage_packets[translate].get(),
        c.stage_packets[slow].get(),
    );
    // Then, in one burst: the remote again, a refresh to the server, the subscriber's
    // answer. The request to the inside address is never a plain frame.
    let refresh = udp(
        &format!("{SUB}:40000"),
        SERVER,
        &pcp_req(1, 600, ME, &map_data(7, 17, 9000, 0, &[])),
        false,
    );
    let answer = udp(&format!("{SUB}:9000"), "192.0.2.9:4000", b"hi", false);
    let o = h.inject_burst(
        &[
            (&first, Side::Outside),
            (&refresh, Side::Inside),
            (&answer, Side::Inside),
        ],
        1002,
    );
    assert_eq!(c.stage_packets[translate].get() - t0, 2);
    assert_eq!(c.stage_packets[slow].get() - s0, 1);
    let to = |side: Side| o.iter().filter(|(s, _)| *s == side).count();
    assert_eq!((to(Side::Inside), to(Side::Outside)), (2, 1), "{o:?}");
    let pcp = o
        .iter()
        .find(|(s, f)| *s == Side::Inside && out(f).src == sa(SERVER))
        .expect("the refresh answered");
    assert_eq!(
        (pcp.1[42 + 3], ext_of(&pcp.1[42..]).to_string()),
        (0, ext.clone())
    );
    let back = o.iter().find(|(s, _)| *s == Side::Outside).unwrap();
    assert_eq!(out(&back.1).src, sa(&ext));
}
