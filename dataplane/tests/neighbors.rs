//! Neighbours through the pipeline (worker and control handler, no EAL): only the
//! answer to a request of ours teaches a MAC (an unsolicited reply, a gratuitous ARP
//! or a packet's source MAC does not), ARP is limited per source before it reaches
//! the control lcore, and a frame to a next hop not yet resolved waits for the answer
//! (a few per next hop, bounded, dropped and counted when the answer never comes).

mod common;

use cgnat_config::Config;
use cgnat_dataplane::counters::DropReason;
use cgnat_dataplane::harness::{Harness, OUTSIDE_MAC};
use cgnat_dataplane::neighbors::REFRESH_SECS;
use cgnat_dataplane::pipeline::Side::{self, Inside, Outside};
use cgnat_dataplane::pipeline::{WAIT_MAX, WAIT_PER_HOP, WAIT_SECS};
use common::*;

const ATTACKER: [u8; 6] = [0x02, 0xee, 0, 0, 0, 0x66];
const GW: &str = "203.0.113.254";

/// The test config, without a configured gateway MAC: the gateway is resolved by ARP.
fn unpinned() -> Harness {
    let text = config_text("");
    let text = text.replace("gateway_mac = \"02:aa:00:00:00:fe\"\n", "");
    assert!(!text.contains("gateway_mac"));
    Harness::new(&Config::parse(&text, "test.toml").unwrap(), 1000)
}

/// The ARP requests among `out`: (side, address asked for).
fn requests(out: &[(Side, Vec<u8>)]) -> Vec<(Side, std::net::Ipv4Addr)> {
    out.iter()
        .filter(|(_, f)| f[12..14] == [0x08, 0x06] && f[20..22] == [0, 1])
        .map(|(s, f)| (*s, std::net::Ipv4Addr::new(f[38], f[39], f[40], f[41])))
        .collect()
}

fn ipv4_frames(out: &[(Side, Vec<u8>)]) -> Vec<(Side, Vec<u8>)> {
    out.iter()
        .filter(|(_, f)| f[12..14] == [0x08, 0x00])
        .cloned()
        .collect()
}

/// `n` ARP requests for the inside port from [`ATTACKER`] at `now`: how many were
/// answered.
fn flood(h: &mut Harness, n: usize, now: u32) -> usize {
    (0..n)
        .map(|_| {
            h.inject(
                &arp(1, ATTACKER, "100.64.1.66", "100.64.0.1", Inside),
                Inside,
                now,
            )
            .len()
        })
        .sum()
}

fn lookup(h: &Harness, a: &str) -> Option<[u8; 6]> {
    h.neighbors.lookup(u32::from(ip(a)))
}

#[test]
fn an_unsolicited_reply_or_gratuitous_arp_never_redirects_a_subscriber() {
    // 100.64.1.3 is known (as after ARP). Another subscriber claims its address with
    // an unsolicited reply, then a gratuitous request: return traffic still goes to
    // the real host.
    let mut h = harness("");
    none(
        &mut h,
        &arp(2, ATTACKER, "100.64.1.3", "100.64.0.1", Inside),
        Inside,
        1000,
    );
    none(
        &mut h,
        &arp(1, ATTACKER, "100.64.1.3", "100.64.1.3", Inside),
        Inside,
        1000,
    );
    assert_eq!(lookup(&h, "100.64.1.3"), Some(HOST_MAC));
    // Nor does one teach an address nobody asked for.
    none(
        &mut h,
        &arp(2, ATTACKER, "100.64.200.9", "100.64.0.1", Inside),
        Inside,
        1000,
    );
    assert_eq!(lookup(&h, "100.64.200.9"), None);
    assert_eq!(h.control_counters.dropped(DropReason::ArpUnsolicited), 2);
    let sent = out(&one(
        &mut h,
        &udp("100.64.1.3:5000", "192.0.2.10:53", b"q", false),
        Inside,
        1000,
        Outside,
    ));
    let back = out(&one(
        &mut h,
        &udp("192.0.2.10:53", &sent.src.to_string(), b"a", true),
        Outside,
        1000,
        Inside,
    ));
    assert_eq!(back.dst_mac, HOST_MAC);
}

#[test]
fn a_spoofed_source_teaches_nothing_and_the_real_host_answers_the_request() {
    // 100.64.1.7 is not known yet. A subscriber sends with its address as source:
    // the frame's source MAC is not learned; an ARP request asks who has it.
    let mut h = Harness::new(&config(""), 1000);
    let mut spoofed = udp("100.64.1.7:5000", "192.0.2.10:53", b"q", false);
    spoofed[6..12].copy_from_slice(&ATTACKER);
    let o = h.inject(&spoofed, Inside, 1000);
    assert_eq!(
        lookup(&h, "100.64.1.7"),
        None,
        "learned from a spoofed source"
    );
    assert_eq!(requests(&o), vec![(Inside, ip("100.64.1.7"))]);
    let sent = out(&ipv4_frames(&o)[0].1);
    // The real host answers; the reply to its flow then reaches it.
    none(
        &mut h,
        &arp(2, HOST_MAC, "100.64.1.7", "100.64.0.1", Inside),
        Inside,
        1000,
    );
    assert_eq!(lookup(&h, "100.64.1.7"), Some(HOST_MAC));
    let back = out(&one(
        &mut h,
        &udp("192.0.2.10:53", &sent.src.to_string(), b"a", true),
        Outside,
        1000,
        Inside,
    ));
    assert_eq!(back.dst_mac, HOST_MAC);
    // A later unsolicited claim changes nothing.
    none(
        &mut h,
        &arp(2, ATTACKER, "100.64.1.7", "100.64.0.1", Inside),
        Inside,
        1001,
    );
    assert_eq!(lookup(&h, "100.64.1.7"), Some(HOST_MAC));
}

#[test]
fn the_first_packet_to_an_unresolved_next_hop_waits_for_the_answer() {
    // A single DNS query, the first packet through an unresolved gateway: it waits,
    // an ARP request goes out, and the query leaves once the gateway answers.
    let mut h = unpinned();
    let q = udp("100.64.1.2:5000", "192.0.2.10:53", b"query", false);
    let o = h.inject(&q, Inside, 1000);
    // (And one for the inside host, whose MAC is not known either.)
    assert!(requests(&o).contains(&(Outside, ip(GW))), "{o:02x?}");
    assert!(ipv4_frames(&o).is_empty());
    assert_eq!(h.worker.waiting(), 1);
    assert_eq!(h.counters.dropped(DropReason::NeighborUnresolved), 0);
    let o = h.inject(&arp(2, GW_MAC, GW, "203.0.113.1", Outside), Outside, 1000);
    let sent = ipv4_frames(&o);
    assert_eq!(sent.len(), 1, "{o:02x?}");
    assert_eq!(sent[0].0, Outside);
    let m = out(&sent[0].1);
    assert_eq!((m.dst_mac, m.src_mac), (GW_MAC, OUTSIDE_MAC));
    assert_eq!(m.dst, sa("192.0.2.10:53"));
    assert_eq!(&sent[0].1[42..], b"query");
    assert_eq!(h.worker.waiting(), 0);
    assert_eq!(lookup(&h, GW), Some(GW_MAC));
}

/// A harness whose gateway was resolved by its answer at 1000.
fn resolved_gateway() -> Harness {
    let mut h = unpinned();
    h.inject(&query(0), Inside, 1000);
    h.inject(&arp(2, GW_MAC, GW, "203.0.113.1", Outside), Outside, 1000);
    assert_eq!(lookup(&h, GW), Some(GW_MAC));
    h
}

fn query(k: u32) -> Vec<u8> {
    udp(
        &format!("100.64.1.2:{}", 5000 + k),
        "192.0.2.10:53",
        b"q",
        false,
    )
}

/// Sends `query(k)` at `now`: the MACs the frames to the gateway went to, and
/// whether the gateway was asked for.
fn send(h: &mut Harness, k: u32, now: u32) -> (Vec<[u8; 6]>, bool) {
    let o = h.inject(&query(k), Inside, now);
    let macs = ipv4_frames(&o)
        .iter()
        .filter(|(s, _)| *s == Outside)
        .map(|(_, f)| out(f).dst_mac)
        .collect();
    (macs, requests(&o).contains(&(Outside, ip(GW))))
}

const NEW_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0x77];

#[test]
fn a_next_hop_that_changes_its_mac_is_found_by_asking_again() {
    // A minute after the gateway's answer, frames to it still go to the MAC known and
    // an ARP request asks again. The gateway was replaced meanwhile: only the new MAC
    // answers, and once the request ends unanswered by the old one, the new MAC is
    // taken and the next frames use it.
    let mut h = resolved_gateway();
    assert_eq!(
        send(&mut h, 1, 1000 + REFRESH_SECS - 1),
        (vec![GW_MAC], false)
    );
    let due = 1000 + REFRESH_SECS;
    assert_eq!(send(&mut h, 2, due), (vec![GW_MAC], true));
    h.inject(&arp(2, NEW_MAC, GW, "203.0.113.1", Outside), Outside, due);
    assert_eq!(
        lookup(&h, GW),
        Some(GW_MAC),
        "not before the old MAC had its chance"
    );
    assert_eq!(h.control_counters.dropped(DropReason::ArpOtherMac), 1);
    h.timer_frames(due + 3);
    assert_eq!(lookup(&h, GW), Some(NEW_MAC));
    assert_eq!(send(&mut h, 3, due + 4), (vec![NEW_MAC], false));
}

#[test]
fn a_claim_during_a_refresh_loses_to_the_live_neighbour() {
    // Someone answers the refresh with its own MAC; the real gateway answers too: the
    // known MAC stays, and nothing changes when the request ends.
    let mut h = resolved_gateway();
    let due = 1000 + REFRESH_SECS;
    assert_eq!(send(&mut h, 1, due), (vec![GW_MAC], true));
    h.inject(&arp(2, ATTACKER, GW, "203.0.113.1", Outside), Outside, due);
    h.inject(&arp(2, GW_MAC, GW, "203.0.113.1", Outside), Outside, due);
    h.timer_frames(due + 5);
    assert_eq!(lookup(&h, GW), Some(GW_MAC));
    // Asked again a minute later; this time two other MACs answer and the known one
    // is silent: which is the real one cannot be told, so neither is taken.
    let due = due + REFRESH_SECS;
    assert_eq!(send(&mut h, 2, due), (vec![GW_MAC], true));
    h.inject(&arp(2, ATTACKER, GW, "203.0.113.1", Outside), Outside, due);
    h.inject(&arp(2, NEW_MAC, GW, "203.0.113.1", Outside), Outside, due);
    h.timer_frames(due + 5);
    assert_eq!(lookup(&h, GW), Some(GW_MAC));
    assert_eq!(h.control_counters.dropped(DropReason::ArpOtherMac), 3);
}

#[test]
fn the_wait_is_bounded_per_next_hop_and_dropped_counted_when_nobody_answers() {
    let mut h = unpinned();
    for k in 0..WAIT_PER_HOP + 2 {
        let q = udp(
            &format!("100.64.1.2:{}", 5000 + k),
            "192.0.2.10:53",
            b"q",
            false,
        );
        let o = h.inject(&q, Inside, 1000);
        assert!(ipv4_frames(&o).is_empty());
    }
    assert_eq!(h.worker.waiting(), WAIT_PER_HOP);
    assert_eq!(h.counters.dropped(DropReason::NeighborQueueFull), 2);
    // Asked again each second while they wait, then dropped.
    let again = h.timer_frames(1001);
    assert_eq!(requests(&again), vec![(Outside, ip(GW))]);
    let end = h.timer_frames(1000 + WAIT_SECS);
    assert!(ipv4_frames(&end).is_empty());
    assert_eq!(h.worker.waiting(), 0);
    assert_eq!(
        h.counters.dropped(DropReason::NeighborUnresolved),
        WAIT_PER_HOP as u64
    );
    // A late answer is not one to a live request: nothing learned.
    h.inject(
        &arp(2, GW_MAC, GW, "203.0.113.1", Outside),
        Outside,
        1000 + WAIT_SECS + 5,
    );
    assert_eq!(lookup(&h, GW), None);
}

#[test]
fn the_wait_is_bounded_per_worker() {
    // Inbound replies to many inside hosts nobody resolved: at most WAIT_MAX wait.
    let mut h = Harness::new(&config(""), 1000);
    let mut outside = Vec::new();
    for k in 0..WAIT_MAX + 10 {
        let src = format!("100.64.{}.{}:5000", 20 + k / 200, 1 + k % 200);
        let o = h.inject(&udp(&src, "192.0.2.10:53", b"q", false), Inside, 1000);
        outside.push(out(&ipv4_frames(&o)[0].1).src);
    }
    for o in &outside {
        h.inject(
            &udp("192.0.2.10:53", &o.to_string(), b"a", true),
            Outside,
            1000,
        );
    }
    assert_eq!(h.worker.waiting(), WAIT_MAX);
    assert_eq!(h.counters.dropped(DropReason::NeighborQueueFull), 10);
}

#[test]
fn arp_is_limited_per_source_before_the_control_lcore() {
    let mut h = harness("");
    let answered = flood(&mut h, 40, 1000);
    let limit = cgnat_dataplane::pipeline::ARP_PER_SOURCE as usize;
    assert_eq!(answered, limit);
    assert_eq!(
        h.counters.dropped(DropReason::ArpRateLimited),
        (40 - limit) as u64
    );
    // Another host is answered meanwhile, and the flooder again the next second.
    one(
        &mut h,
        &arp(1, HOST_MAC, "100.64.1.2", "100.64.0.1", Inside),
        Inside,
        1000,
        Inside,
    );
    one(
        &mut h,
        &arp(1, ATTACKER, "100.64.1.66", "100.64.0.1", Inside),
        Inside,
        1001,
        Inside,
    );
}

#[test]
fn the_configured_limits_apply() {
    let text = config_text("")
        .replace("gateway_mac = \"02:aa:00:00:00:fe\"\n", "")
        .replace(
            "worker_lcores = [1]",
            "worker_lcores = [1]\narp_per_source = 2\nunresolved_queue = 1\nunresolved_secs = 5",
        );
    let mut h = Harness::new(&Config::parse(&text, "test.toml").unwrap(), 1000);
    for k in 0..3 {
        let q = udp(
            &format!("100.64.1.2:{}", 5000 + k),
            "192.0.2.10:53",
            b"q",
            false,
        );
        h.inject(&q, Inside, 1000);
    }
    assert_eq!(h.worker.waiting(), 1);
    assert_eq!(h.counters.dropped(DropReason::NeighborQueueFull), 2);
    h.timer_frames(1004);
    assert_eq!(h.worker.waiting(), 1, "still waiting after 4 s");
    h.timer_frames(1005);
    assert_eq!(h.worker.waiting(), 0);
    let answered = flood(&mut h, 5, 1006);
    assert_eq!(answered, 2);
    // unresolved_queue = 0: nothing waits (counted as unresolved at once).
    let text = config_text("").replace(
        "worker_lcores = [1]",
        "worker_lcores = [1]\nunresolved_queue = 0",
    );
    let mut h = Harness::new(&Config::parse(&text, "test.toml").unwrap(), 1000);
    let o = h.inject(
        &udp("100.64.99.2:5000", "192.0.2.10:53", b"q", false),
        Inside,
        1000,
    );
    let back = out(&ipv4_frames(&o)[0].1);
    h.inject(
        &udp("192.0.2.10:53", &back.src.to_string(), b"a", true),
        Outside,
        1000,
    );
    assert_eq!(h.worker.waiting(), 0);
    assert_eq!(h.counters.dropped(DropReason::NeighborUnresolved), 1);
}
