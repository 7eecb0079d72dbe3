//! VLAN sub-interfaces through the pipeline (worker and control handler, no EAL):
//! subscribers on two 802.1Q VLANs and one QinQ pair of the inside port are
//! translated out on the outside port's VLAN and answered on their own VLAN; ARP is
//! answered and asked per VLAN, with each VLAN's own address; a frame with a VLAN the
//! port does not have, an untagged frame on a tagged-only port, and a subscriber
//! using another VLAN's addresses are dropped, each with its own counter; the
//! per-VLAN counters count what each VLAN received, sent and dropped.

mod common;

use cgnat_config::Config;
use cgnat_dataplane::counters::DropReason;
use cgnat_dataplane::harness::{Harness, INSIDE_MAC, OUTSIDE_MAC};
use cgnat_dataplane::pipeline::Side::{self, Inside, Outside};
use cgnat_dataplane::vlan;
use common::*;

const GW: &str = "203.0.113.254";

fn config_text(inside_untagged: bool) -> String {
    let untagged = if inside_untagged {
        "ipv4 = \"100.64.0.1/24\"\n"
    } else {
        ""
    };
    format!(
        r#"
[dataplane]
control_lcore = 0
worker_lcores = [1]

[[ports]]
name = "inside"
role = "inside"
device = "net_null0"
{untagged}vlans = [
  {{ id = 100, ipv4 = "100.64.100.1/24", inside = ["100.65.0.0/16"] }},
  {{ id = 200, ipv4 = "100.64.200.1/24" }},
  {{ qinq = [10, 300], ipv4 = "100.64.30.1/24" }},
]

[[ports]]
name = "outside"
role = "outside"
device = "net_null1"

[[ports.vlans]]
id = 7
ipv4 = "203.0.113.1/24"
gateway = "{GW}"

[nat]
inside = ["100.64.0.0/10"]
pool = ["198.51.100.0/28"]
"#
    )
}

fn appliance(inside_untagged: bool) -> Harness {
    appliance_with(inside_untagged, "")
}

/// The same, with `more` appended to the config.
fn appliance_with(inside_untagged: bool, more: &str) -> Harness {
    let text = config_text(inside_untagged) + more;
    let cfg = Config::parse(&text, "test.toml").unwrap_or_else(|e| {
        panic!("{e}");
    });
    let h = Harness::new(&cfg, 1000);
    h.neighbors.learn(u32::from(ip(GW)), &GW_MAC);
    for a in ["100.64.100.5", "100.64.200.5", "100.64.30.5", "100.64.0.5"] {
        h.neighbors.learn(u32::from(ip(a)), &HOST_MAC);
    }
    h
}

/// Injects and expects exactly one frame, out of `to`: its tags and untagged frame.
fn one_tagged(h: &mut Harness, frame: &[u8], from: Side, to: Side) -> (Vec<u16>, Vec<u8>) {
    vlan_untagged(&one(h, frame, from, 1000, to))
}

fn vlan_count(h: &Harness, side: Side, i: usize, kind: usize) -> u64 {
    h.counters.vlan[vlan::slot(side, i)][kind].get()
}

#[test]
fn subscribers_on_two_vlans_and_qinq_are_answered_on_their_own_vlan() {
    let mut h = appliance(false);
    let subscribers = [
        ("100.64.100.5:4000", &[100u16][..], 0),
        ("100.64.200.5:4000", &[200][..], 1),
        ("100.64.30.5:4000", &[10, 300][..], 2),
    ];
    for (src, tags, i) in subscribers {
        let f = vlan_tagged(&udp(src, "192.0.2.7:53", b"query", false), tags);
        let (out_tags, o) = one_tagged(&mut h, &f, Inside, Outside);
        assert_eq!(out_tags, [7], "the outside VLAN's tag is set");
        let m = out(&o);
        assert!(m.src.ip().octets()[..3] == [198, 51, 100], "{m:?}");
        assert_eq!(m.dst, sa("192.0.2.7:53"));
        assert_eq!((m.src_mac, m.dst_mac), (OUTSIDE_MAC, GW_MAC));

        let reply = vlan_tagged(
            &udp("192.0.2.7:53", &m.src.to_string(), b"answer", true),
            &[7],
        );
        let (back_tags, b) = one_tagged(&mut h, &reply, Outside, Inside);
        assert_eq!(back_tags, tags, "the reply goes back on {src}'s VLAN");
        let r = out(&b);
        assert_eq!(r.dst, sa(src));
        assert_eq!((r.src_mac, r.dst_mac), (INSIDE_MAC, HOST_MAC));
        assert_eq!(vlan_count(&h, Inside, i, vlan::RX), 1);
        assert_eq!(vlan_count(&h, Inside, i, vlan::TX), 1);
    }
    assert_eq!(vlan_count(&h, Outside, 0, vlan::TX), 3);
    assert_eq!(vlan_count(&h, Outside, 0, vlan::RX), 3);
}

#[test]
fn pcp_is_answered_on_each_vlan_from_that_vlans_own_address() {
    let mut h = appliance_with(true, "\n[pcp]\n");
    // A NAT-PMP public address request (version 0, opcode 0) to the address of the
    // subscriber's own interface: the answer comes from that address, on that VLAN.
    for (src, tags, me) in [
        ("100.64.100.5:40000", &[100u16][..], "100.64.100.1"),
        ("100.64.200.5:40000", &[200][..], "100.64.200.1"),
        ("100.64.30.5:40000", &[10, 300][..], "100.64.30.1"),
        ("100.64.0.5:40000", &[][..], "100.64.0.1"),
    ] {
        let server = format!("{me}:5351");
        let f = vlan_tagged(&udp(src, &server, &[0, 0], false), tags);
        let (t, r) = one_tagged(&mut h, &f, Inside, Inside);
        assert_eq!(t, tags, "{src}");
        let m = out(&r);
        assert_eq!((m.src, m.dst), (sa(&server), sa(src)));
        assert_eq!(&r[42..44], &[0, 128], "a NAT-PMP answer to opcode 0");
        assert_eq!(&r[44..46], &[0, 0], "success");
        assert_eq!(&r[50..53], &[198, 51, 100], "the pool address");
    }
    // Another VLAN's address is not a server for this one.
    let f = vlan_tagged(
        &udp("100.64.100.5:40000", "100.64.200.1:5351", &[0, 0], false),
        &[100],
    );
    let o = h.inject(&f, Inside, 1000);
    assert!(
        o.iter().all(|(_, b)| {
            let (_, r) = vlan_untagged(b);
            r.len() < 44 || r[42..44] != [0, 128]
        }),
        "{o:02x?}"
    );
}

#[test]
fn arp_is_answered_and_asked_per_vlan() {
    let mut h = appliance(false);
    let arp = |op: u16, spa: &str, tpa: &str| arp(op, HOST_MAC, spa, tpa, Inside);
    // Each VLAN's own address, answered on that VLAN.
    for (tags, me, peer) in [
        (&[100u16][..], "100.64.100.1", "100.64.100.9"),
        (&[200][..], "100.64.200.1", "100.64.200.9"),
        (&[10, 300][..], "100.64.30.1", "100.64.30.9"),
    ] {
        let (t, r) = one_tagged(
            &mut h,
            &vlan_tagged(&arp(1, peer, me), tags),
            Inside,
            Inside,
        );
        assert_eq!(t, tags);
        assert_eq!(&r[12..14], &[0x08, 0x06]);
        assert_eq!(&r[20..22], &[0, 2], "a reply");
        assert_eq!(&r[28..32], &ip(me).octets());
        assert_eq!(&r[38..42], &ip(peer).octets());
    }
    // Another VLAN's address is not answered on this one.
    none(
        &mut h,
        &vlan_tagged(&arp(1, "100.64.200.9", "100.64.100.1"), &[200]),
        Inside,
        1000,
    );
    // A pool address on the outside VLAN.
    let (t, r) = one_tagged(
        &mut h,
        &vlan_tagged(&arp(1, GW, "198.51.100.3"), &[7]),
        Outside,
        Outside,
    );
    assert_eq!(t, [7]);
    assert_eq!(&r[28..32], &ip("198.51.100.3").octets());

    // A subscriber nobody knows yet is asked for on its own VLAN, from that VLAN's
    // address (its packet goes on).
    let f = vlan_tagged(
        &udp("100.64.200.6:4000", "192.0.2.7:53", b"q", false),
        &[200],
    );
    let o: Vec<_> = h
        .inject(&f, Inside, 1000)
        .iter()
        .map(|(s, f)| (*s, vlan_untagged(f)))
        .collect();
    assert_eq!(o.len(), 2, "{o:02x?}");
    let (side, (t, r)) = o.iter().find(|(_, (_, f))| f[12..14] == [8, 6]).unwrap();
    assert_eq!((*side, t.as_slice()), (Inside, &[200u16][..]));
    assert_eq!(&r[20..22], &[0, 1], "a request");
    assert_eq!(
        &r[28..32],
        &ip("100.64.200.1").octets(),
        "from VLAN 200's address"
    );
    assert_eq!(&r[38..42], &ip("100.64.200.6").octets());
}

#[test]
fn unknown_vlans_untagged_frames_and_foreign_sources_are_dropped_and_counted() {
    let mut h = appliance(false);
    let f = udp("100.64.100.5:4000", "192.0.2.7:53", b"q", false);
    none(&mut h, &vlan_tagged(&f, &[101]), Inside, 1000);
    none(&mut h, &vlan_tagged(&f, &[100, 300]), Inside, 1000);
    assert_eq!(h.counters.dropped(DropReason::VlanUnknown), 2);
    none(&mut h, &f, Inside, 1000);
    assert_eq!(h.counters.dropped(DropReason::VlanUntagged), 1);
    // VLAN 200 sending with VLAN 100's subscriber addresses.
    none(&mut h, &vlan_tagged(&f, &[200]), Inside, 1000);
    let g = udp("100.65.1.1:4000", "192.0.2.7:53", b"q", false);
    none(&mut h, &vlan_tagged(&g, &[200]), Inside, 1000);
    assert_eq!(h.counters.dropped(DropReason::VlanSourceMismatch), 2);
    assert_eq!(vlan_count(&h, Inside, 1, vlan::RX), 2);
    assert_eq!(vlan_count(&h, Inside, 1, vlan::DROPS), 2);
    // The outside: only its VLAN.
    let r = udp("192.0.2.7:53", "198.51.100.1:1024", b"a", true);
    none(&mut h, &vlan_tagged(&r, &[8]), Outside, 1000);
    none(&mut h, &r, Outside, 1000);
    assert_eq!(h.counters.dropped(DropReason::VlanUnknown), 3);
    assert_eq!(h.counters.dropped(DropReason::VlanUntagged), 2);
    // A frame the pipeline drops after its VLAN accepted it counts on that VLAN.
    none(&mut h, &vlan_tagged(&r, &[7]), Outside, 1000);
    assert_eq!(h.counters.dropped(DropReason::NoMapping), 1);
    assert_eq!(vlan_count(&h, Outside, 0, vlan::DROPS), 1);
}

#[test]
fn a_port_with_an_untagged_address_takes_untagged_frames_too() {
    let mut h = appliance(true);
    let f = udp("100.64.0.5:4000", "192.0.2.7:53", b"q", false);
    let (t, o) = one_tagged(&mut h, &f, Inside, Outside);
    assert_eq!(t, [7]);
    let m = out(&o);
    let reply = vlan_tagged(&udp("192.0.2.7:53", &m.src.to_string(), b"a", true), &[7]);
    let (t, b) = one_tagged(&mut h, &reply, Outside, Inside);
    assert!(t.is_empty(), "untagged back: {t:?}");
    assert_eq!(out(&b).dst, sa("100.64.0.5:4000"));
    // Tagged subscribers still get their tags back.
    let g = vlan_tagged(
        &udp("100.64.100.5:4000", "192.0.2.7:53", b"q", false),
        &[100],
    );
    let m = out(&one_tagged(&mut h, &g, Inside, Outside).1);
    let reply = vlan_tagged(&udp("192.0.2.7:53", &m.src.to_string(), b"a", true), &[7]);
    assert_eq!(one_tagged(&mut h, &reply, Outside, Inside).0, [100]);
}
