//! IPv6 on the inside port (issue 17, RFC 4861 and RFC 4443 echo): neighbour
//! solicitations for the port's addresses answered, echo to the appliance answered, a
//! neighbour resolved by our solicitation and its advertisement, and every IPv6 frame
//! that is not served dropped and counted. Frames in and expected frames out are built
//! here by hand (ICMPv6 checksums by the helper below), through the whole pipeline.

mod common;
use cgnat_config::Config;
use cgnat_dataplane::buf::VecBuf;
use cgnat_dataplane::counters::DropReason;
use cgnat_dataplane::harness::{Harness, INSIDE_MAC, OUTSIDE_MAC};
use cgnat_dataplane::pipeline::Side;
use common::{a6, config_text, group_mac, icmp6_frame as frame, nd, sol_node, HOST_MAC};

const PORT6: &str = "2001:db8:ffff::1";
const SUB6: &str = "2001:db8:ffff::10";

fn config() -> Config {
    let text = config_text("").replace(
        "ipv4 = \"100.64.0.1/10\"",
        &format!("ipv4 = \"100.64.0.1/10\"\nipv6 = [\"{PORT6}/64\"]"),
    );
    Config::parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn harness() -> Harness {
    Harness::new(&config(), 1000)
}

const ROUTER_SOLICITED_OVERRIDE: u32 = 0xe000_0000;

fn only(out: Vec<(Side, Vec<u8>)>) -> Vec<u8> {
    assert_eq!(out.len(), 1, "one frame out: {out:?}");
    assert_eq!(out[0].0, Side::Inside);
    out.into_iter().next().unwrap().1
}

/// The subscriber's solicitation for the port's address, to its solicited-node group.
fn port_solicitation() -> Vec<u8> {
    let group = sol_node(a6(PORT6));
    frame(
        HOST_MAC,
        group_mac(group),
        a6(SUB6),
        group,
        255,
        &nd(135, 0, a6(PORT6), 1, HOST_MAC),
    )
}

#[test]
fn a_solicitation_for_the_ports_address_is_answered() {
    let mut h = harness();
    let got = only(h.inject(&port_solicitation(), Side::Inside, 1000));
    let want = frame(
        INSIDE_MAC,
        HOST_MAC,
        a6(PORT6),
        a6(SUB6),
        255,
        &nd(136, ROUTER_SOLICITED_OVERRIDE, a6(PORT6), 2, INSIDE_MAC),
    );
    assert_eq!(got, want);
    assert_eq!(h.control_counters.dropped(DropReason::NdMalformed), 0);
}

#[test]
fn the_link_local_address_from_the_mac_is_answered_too() {
    let mut h = harness();
    // INSIDE_MAC 02:00:00:00:01:01 -> fe80::ff:fe00:101.
    let ll = a6("fe80::ff:fe00:101");
    let peer = a6("fe80::10");
    let ns = frame(
        HOST_MAC,
        INSIDE_MAC,
        peer,
        ll,
        255,
        &nd(135, 0, ll, 1, HOST_MAC),
    );
    let got = only(h.inject(&ns, Side::Inside, 1000));
    let want = frame(
        INSIDE_MAC,
        HOST_MAC,
        ll,
        peer,
        255,
        &nd(136, ROUTER_SOLICITED_OVERRIDE, ll, 2, INSIDE_MAC),
    );
    assert_eq!(got, want);
}

#[test]
fn duplicate_address_detection_is_answered_to_all_nodes() {
    let mut h = harness();
    let group = sol_node(a6(PORT6));
    let ns = frame(
        HOST_MAC,
        group_mac(group),
        [0; 16],
        group,
        255,
        &nd(135, 0, a6(PORT6), 0, [0; 6]),
    );
    let got = only(h.inject(&ns, Side::Inside, 1000));
    let all = a6("ff02::1");
    let want = frame(
        INSIDE_MAC,
        [0x33, 0x33, 0, 0, 0, 1],
        a6(PORT6),
        all,
        255,
        &nd(136, 0xa000_0000, a6(PORT6), 2, INSIDE_MAC), // router, override; not solicited
    );
    assert_eq!(got, want);
}

#[test]
fn bad_solicitations_are_dropped_and_counted() {
    let mut h = harness();
    let group = sol_node(a6(PORT6));
    let ns = |hop: u8, body: &[u8]| frame(HOST_MAC, group_mac(group), a6(SUB6), group, hop, body);
    let good = nd(135, 0, a6(PORT6), 1, HOST_MAC);
    // Hop limit other than 255: from off the link.
    assert!(h.inject(&ns(64, &good), Side::Inside, 1000).is_empty());
    // Bad checksum.
    let mut bad = ns(255, &good);
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(h.inject(&bad, Side::Inside, 1000).is_empty());
    // An option of length zero.
    let mut zero = good.clone();
    zero[25] = 0;
    assert!(h.inject(&ns(255, &zero), Side::Inside, 1000).is_empty());
    // Shorter than a solicitation.
    assert!(h
        .inject(&ns(255, &good[..20]), Side::Inside, 1000)
        .is_empty());
    assert_eq!(h.control_counters.dropped(DropReason::NdMalformed), 4);
    // A DAD probe with a source link-layer address.
    let dad = frame(HOST_MAC, group_mac(group), [0; 16], group, 255, &good);
    assert!(h.inject(&dad, Side::Inside, 1000).is_empty());
    assert_eq!(h.control_counters.dropped(DropReason::NdMalformed), 5);
    // For another target: not our group (dropped by the worker), or our group but
    // not our address (consumed by the control lcore).
    let other = a6("2001:db8:ffff::99");
    let f = frame(
        HOST_MAC,
        group_mac(sol_node(other)),
        a6(SUB6),
        sol_node(other),
        255,
        &nd(135, 0, other, 1, HOST_MAC),
    );
    assert!(h.inject(&f, Side::Inside, 1000).is_empty());
    assert_eq!(h.counters.dropped(DropReason::Ipv6Multicast), 1);
    let same_group = a6("2001:db8:ffff:1::1"); // low 24 bits as the port's
    let f = ns(255, &nd(135, 0, same_group, 1, HOST_MAC));
    assert!(h.inject(&f, Side::Inside, 1000).is_empty());
    assert_eq!(h.control_counters.dropped(DropReason::NdConsumed), 1);
}

#[test]
fn echo_to_the_appliance_is_answered() {
    let mut h = harness();
    let body = |ty: u8| {
        let mut m = vec![ty, 0, 0, 0, 0x12, 0x34, 0, 7];
        m.extend_from_slice(b"ping6 payload");
        m
    };
    let req = frame(HOST_MAC, INSIDE_MAC, a6(SUB6), a6(PORT6), 64, &body(128));
    let got = only(h.inject(&req, Side::Inside, 1000));
    let want = frame(INSIDE_MAC, HOST_MAC, a6(PORT6), a6(SUB6), 64, &body(129));
    assert_eq!(got, want);
    let ll = a6("fe80::ff:fe00:101");
    let peer = a6("fe80::10");
    let req = frame(HOST_MAC, INSIDE_MAC, peer, ll, 1, &body(128));
    let got = only(h.inject(&req, Side::Inside, 1000));
    assert_eq!(got, frame(INSIDE_MAC, HOST_MAC, ll, peer, 64, &body(129)));
    // Anything else for the appliance's address: not served.
    let udp = {
        let mut f = frame(HOST_MAC, INSIDE_MAC, a6(SUB6), a6(PORT6), 64, &body(128));
        f[20] = 17;
        f
    };
    assert!(h.inject(&udp, Side::Inside, 1000).is_empty());
    assert_eq!(h.counters.dropped(DropReason::LocalUnsupported), 1);
}

#[test]
fn a_neighbour_is_learned_from_the_answer_to_our_solicitation_only() {
    let mut h = harness();
    let sub = a6(SUB6);
    // An advertisement nobody asked for teaches nothing.
    let na = frame(
        HOST_MAC,
        INSIDE_MAC,
        sub,
        a6(PORT6),
        255,
        &nd(136, 0x6000_0000, sub, 2, HOST_MAC),
    );
    assert!(h.inject(&na, Side::Inside, 1000).is_empty());
    assert_eq!(h.control_counters.dropped(DropReason::NdUnsolicited), 1);
    let nd6 = h.control.nd().unwrap();
    assert_eq!(nd6.neighbors().lookup(&sub), None);
    // Our solicitation, byte for byte.
    let mut b = VecBuf::new(&[]);
    assert!(nd6.solicit(&sub, &mut b, 1000));
    let group = sol_node(sub);
    let want = frame(
        INSIDE_MAC,
        group_mac(group),
        a6(PORT6),
        group,
        255,
        &nd(135, 0, sub, 1, INSIDE_MAC),
    );
    assert_eq!(b.to_vec(), want);
    // Its answer is learned.
    assert!(h.inject(&na, Side::Inside, 1001).is_empty());
    assert_eq!(h.control_counters.dropped(DropReason::NdConsumed), 1);
    let nd6 = h.control.nd().unwrap();
    assert_eq!(nd6.neighbors().lookup(&sub), Some(HOST_MAC));
    // An answer that comes too late is not.
    let other = a6("2001:db8:ffff::11");
    assert!(nd6.solicit(&other, &mut b, 1002));
    let late = frame(
        HOST_MAC,
        INSIDE_MAC,
        other,
        a6(PORT6),
        255,
        &nd(136, 0x6000_0000, other, 2, [2, 0, 0, 0, 0, 0x11]),
    );
    assert!(h.inject(&late, Side::Inside, 1010).is_empty());
    assert_eq!(h.control_counters.dropped(DropReason::NdUnsolicited), 2);
    assert_eq!(h.control.nd().unwrap().neighbors().lookup(&other), None);
}

#[test]
fn ipv6_that_is_not_served_is_dropped_and_counted() {
    let mut h = harness();
    let echo = [128, 0, 0, 0, 0, 1, 0, 1];
    // Truncated: the payload length says more than the frame holds.
    let mut f = frame(HOST_MAC, INSIDE_MAC, a6(SUB6), a6(PORT6), 64, &echo);
    f.truncate(f.len() - 2);
    assert!(h.inject(&f, Side::Inside, 1000).is_empty());
    assert_eq!(h.counters.dropped(DropReason::Ipv6Truncated), 1);
    // Version 4 in an IPv6 frame; a multicast source.
    let mut f = frame(HOST_MAC, INSIDE_MAC, a6(SUB6), a6(PORT6), 64, &echo);
    f[14] = 0x40;
    assert!(h.inject(&f, Side::Inside, 1000).is_empty());
    let f = frame(HOST_MAC, INSIDE_MAC, a6("ff02::1"), a6(PORT6), 64, &echo);
    assert!(h.inject(&f, Side::Inside, 1000).is_empty());
    assert_eq!(h.counters.dropped(DropReason::Ipv6Malformed), 2);
    // A router solicitation to all routers; an MLD report.
    let rs = a6("ff02::2");
    let f = frame(
        HOST_MAC,
        group_mac(rs),
        a6(SUB6),
        rs,
        255,
        &[133, 0, 0, 0, 0, 0, 0, 0],
    );
    assert!(h.inject(&f, Side::Inside, 1000).is_empty());
    assert_eq!(h.counters.dropped(DropReason::Ipv6Multicast), 1);
    // To an IPv4 server through NAT64 (not translated yet).
    let server = a6("64:ff9b::c000:221");
    let f = frame(HOST_MAC, INSIDE_MAC, a6(SUB6), server, 64, &echo);
    assert!(h.inject(&f, Side::Inside, 1000).is_empty());
    assert_eq!(h.counters.dropped(DropReason::Ipv6NotTranslated), 1);
    // IPv6 on the outside port, and on an inside port without IPv6 addresses.
    let out = frame(HOST_MAC, OUTSIDE_MAC, a6(SUB6), a6(PORT6), 64, &echo);
    assert!(h.inject(&out, Side::Outside, 1000).is_empty());
    assert_eq!(h.counters.dropped(DropReason::EthUnsupported), 1);
    let f = frame(HOST_MAC, INSIDE_MAC, a6(SUB6), a6(PORT6), 64, &echo);
    let mut plain = common::harness("");
    assert!(plain.inject(&f, Side::Inside, 1000).is_empty());
    assert_eq!(plain.counters.dropped(DropReason::EthUnsupported), 1);
}

#[test]
fn solicitations_past_the_source_budget_are_dropped_before_the_control_lcore() {
    let mut h = harness();
    let ns = port_solicitation();
    // dataplane.arp_per_source = 16 a second, shared with ARP.
    let answered = (0..20)
        .filter(|_| !h.inject(&ns, Side::Inside, 1000).is_empty())
        .count();
    assert_eq!(answered, 16);
    assert_eq!(h.counters.dropped(DropReason::NdRateLimited), 4);
    assert_eq!(h.inject(&ns, Side::Inside, 1001).len(), 1);
}

#[test]
fn mutated_ipv6_frames_never_panic_and_every_answer_checks_out() {
    let mut h = harness();
    let seeds = [
        port_solicitation(),
        frame(
            HOST_MAC,
            INSIDE_MAC,
            a6(SUB6),
            a6(PORT6),
            255,
            &nd(136, 0x6000_0000, a6(SUB6), 2, HOST_MAC),
        ),
        frame(
            HOST_MAC,
            INSIDE_MAC,
            a6(SUB6),
            a6(PORT6),
            64,
            &[128, 0, 0, 0, 0, 1, 0, 1, 1, 2, 3, 4],
        ),
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut answered = 0;
    for i in 0..20_000u32 {
        let mut f = seeds[(next() % 3) as usize].clone();
        for _ in 0..1 + next() % 3 {
            let at = 14 + (next() as usize) % (f.len() - 14);
            match next() % 4 {
                0 => f.truncate(at),
                _ => f[at] = next() as u8,
            }
            if f.len() <= 14 {
                break;
            }
        }
        // A new second now and then: the per-source budget does not hide the rest.
        for (side, out) in h.inject(&f, Side::Inside, 1000 + i / 8) {
            answered += 1;
            assert_eq!(side, Side::Inside);
            assert_eq!(&out[12..14], &[0x86, 0xdd]);
            let plen = usize::from(u16::from_be_bytes([out[18], out[19]]));
            assert_eq!(out.len(), 54 + plen);
            let len = (plen as u32).to_be_bytes();
            let sum = common::csum(&[&out[22..38], &out[38..54], &len, &[0, 0, 0, 58], &out[54..]]);
            assert_eq!(sum, 0, "answer's checksum to {f:02x?}");
        }
    }
    assert!(answered > 100, "{answered}");
}
