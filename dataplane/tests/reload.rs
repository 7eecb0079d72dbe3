//! A reload's settings taken by live workers ([`Worker::reconfigure`] through the
//! harness): ALG switches, timeouts, static mappings and limits change for what
//! comes next, and every live session goes on as it was.
//!
//! [`Worker::reconfigure`]: cgnat_dataplane::pipeline::Worker::reconfigure

mod common;
use cgnat_dataplane::pipeline::Side::{Inside, Outside};
use common::*;
use std::net::{Ipv4Addr, SocketAddrV4};

const FTP_OFF: &str = "[alg]\nftp = { enabled = false }";

/// A PORT command on the FTP control connection from inside `client`, as it leaves.
fn port_command(h: &mut cgnat_dataplane::harness::Harness, client: &str, now: u32) -> Vec<u8> {
    let cmd = tcp(
        client,
        "192.0.2.10:21",
        101,
        "PA",
        b"PORT 100,64,1,2,19,137\r\n",
        false,
    );
    one(h, &cmd, Inside, now, Outside)
}

#[test]
fn an_alg_switched_off_skips_new_connections_and_keeps_following_live_ones() {
    let mut h = harness("");
    connect(&mut h, "100.64.1.2:40001", "192.0.2.10:21", 500);
    h.reconfigure(&config(FTP_OFF), 1001);
    connect(&mut h, "100.64.1.2:40002", "192.0.2.10:21", 700);
    // The new control connection is not followed: its PORT leaves as written.
    let o = port_command(&mut h, "100.64.1.2:40002", 1002);
    assert!(contains(&o, b"PORT 100,64,1,2,19,137"), "{o:02x?}");
    // The live one still is: its PORT names the outside address.
    let o = port_command(&mut h, "100.64.1.2:40001", 1002);
    assert!(contains(&o, b"PORT 198,51,100,"), "{o:02x?}");
    assert!(!contains(&o, b"100,64,1,2"));
    // Switched on again: new connections are followed.
    h.reconfigure(&config(""), 1003);
    connect(&mut h, "100.64.1.2:40003", "192.0.2.10:21", 900);
    let o = port_command(&mut h, "100.64.1.2:40003", 1004);
    assert!(contains(&o, b"PORT 198,51,100,"), "{o:02x?}");
}

#[test]
fn an_alg_moved_to_other_ports_follows_new_connections_there_only() {
    let mut h = harness("");
    let port_to = |h: &mut cgnat_dataplane::harness::Harness, client: &str, server: &str| {
        connect(h, client, server, 700);
        let cmd = tcp(
            client,
            server,
            101,
            "PA",
            b"PORT 100,64,1,2,19,137\r\n",
            false,
        );
        one(h, &cmd, Inside, 1002, Outside)
    };
    // FTP on 2121 and 990 only (neighbours of 21 in the port bitmap's words: 2112..2175).
    h.reconfigure(
        &config("[alg]\nftp = { enabled = true, ports = [2121, 990] }"),
        1001,
    );
    let o = port_to(&mut h, "100.64.1.2:40001", "192.0.2.10:2121");
    assert!(contains(&o, b"PORT 198,51,100,"), "{o:02x?}");
    let o = port_to(&mut h, "100.64.1.2:40002", "192.0.2.10:990");
    assert!(contains(&o, b"PORT 198,51,100,"), "{o:02x?}");
    for (k, other) in ["192.0.2.10:2120", "192.0.2.10:2122", "192.0.2.10:21"]
        .into_iter()
        .enumerate()
    {
        let client = format!("100.64.1.2:{}", 41000 + k);
        let o = port_to(&mut h, &client, other);
        assert!(contains(&o, b"PORT 100,64,1,2,19,137"), "{other}: {o:02x?}");
    }
}

#[test]
fn a_longer_timeout_keeps_live_sessions_and_a_shorter_one_ends_them_by_their_old_deadline() {
    let mut h = harness("");
    let m = open_udp(&mut h, 1000);
    h.reconfigure(&config("[nat.timeouts]\nudp = 900"), 1001);
    // Past the 300 s it was made under, the session lives on.
    assert_eq!(h.expire(1400), 0);
    let reply = udp("192.0.2.10:53", &m.to_string(), b"a", true);
    one(&mut h, &reply, Outside, 1400, Inside);
    let again = udp("100.64.1.2:5000", "192.0.2.10:53", b"q", false);
    assert_eq!(out(&one(&mut h, &again, Inside, 1400, Outside)).src, m);
    // 600 s after its last outbound packet it is still there, not 900 s after.
    assert_eq!(h.expire(2000), 0);
    assert_eq!(h.expire(2400), 1);

    let m = open_udp(&mut h, 3000);
    h.reconfigure(&config("[nat.timeouts]\nudp = 120"), 3001);
    // Idle longer than the new 120 s: it ends at the latest by its old deadline.
    assert_eq!(h.expire(3000 + 900), 1);
    none(
        &mut h,
        &udp("192.0.2.10:53", &m.to_string(), b"a", true),
        Outside,
        3901,
    );
}

const STATIC: &str = "filtering = \"address-and-port-dependent\"\n[[nat.static]]\n\
    protocol = \"tcp\"\ninside = \"100.64.1.5:80\"\noutside = \"198.51.100.2:8080\"";
const NO_STATIC: &str = "filtering = \"address-and-port-dependent\"";

#[test]
fn static_mappings_added_take_new_sessions_and_removed_ones_keep_theirs_until_they_end() {
    let mut h = harness(NO_STATIC);
    let syn = |remote: &str| tcp(remote, "198.51.100.2:8080", 1, "S", b"", true);
    none(&mut h, &syn("192.0.2.50:33333"), Outside, 1000);
    h.expire(1100);
    h.reconfigure(&config(STATIC), 1100);
    let o = out(&one(
        &mut h,
        &syn("192.0.2.50:33333"),
        Outside,
        1100,
        Inside,
    ));
    assert_eq!(o.dst, sa("100.64.1.5:80"));
    let sa_ = tcp("100.64.1.5:80", "192.0.2.50:33333", 5, "SA", b"", false);
    assert_eq!(
        out(&one(&mut h, &sa_, Inside, 1100, Outside)).src,
        sa("198.51.100.2:8080")
    );
    // Removed: the live session goes on both ways, a new remote is not let in.
    h.reconfigure(&config(NO_STATIC), 1101);
    let data = tcp("192.0.2.50:33333", "198.51.100.2:8080", 2, "A", b"x", true);
    assert_eq!(
        out(&one(&mut h, &data, Outside, 1102, Inside)).dst,
        sa("100.64.1.5:80")
    );
    let back = tcp("100.64.1.5:80", "192.0.2.50:33333", 6, "A", b"y", false);
    assert_eq!(
        out(&one(&mut h, &back, Inside, 1102, Outside)).src,
        sa("198.51.100.2:8080")
    );
    none(&mut h, &syn("192.0.2.51:1"), Outside, 1103);
    // Once the session ends the mapping is gone: nobody gets in.
    assert_eq!(h.expire(1102 + 10_000), 1);
    none(&mut h, &syn("192.0.2.50:33333"), Outside, 11_200);
    // Added back: in again.
    h.reconfigure(&config(STATIC), 11_300);
    one(&mut h, &syn("192.0.2.52:1"), Outside, 11_300, Inside);
}

#[test]
fn a_lower_session_limit_refuses_new_sessions_and_keeps_the_live_ones() {
    let mut h = harness("");
    let maps: Vec<_> = (0..3)
        .map(|i| {
            let f = udp(
                &format!("100.64.1.2:{}", 5000 + i),
                "192.0.2.10:53",
                b"q",
                false,
            );
            out(&one(&mut h, &f, Inside, 1000, Outside)).src
        })
        .collect();
    h.reconfigure(&config("max_sessions_per_subscriber = 2"), 1001);
    let fourth = udp("100.64.1.2:5003", "192.0.2.10:53", b"q", false);
    let o = h.inject(&fourth, Inside, 1002);
    assert!(o.iter().all(|(side, _)| *side == Inside), "{o:02x?}");
    for m in maps {
        let reply = udp("192.0.2.10:53", &m.to_string(), b"a", true);
        one(&mut h, &reply, Outside, 1002, Inside);
    }
    // Raised again: the subscriber may open more.
    h.reconfigure(&config(""), 1003);
    one(&mut h, &fourth, Inside, 1004, Outside);
}

/// The test config with `pool` (TOML list items) in place of the /28.
fn pooled(pool: &str, nat_extra: &str) -> cgnat_config::Config {
    let text = config_text(nat_extra).replace("\"198.51.100.0/28\"", pool);
    cgnat_config::Config::parse(&text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// The DNS server's answer to outside `m`: it must come in.
fn reply_in(h: &mut cgnat_dataplane::harness::Harness, m: SocketAddrV4, now: u32) {
    let reply = udp("192.0.2.10:53", &m.to_string(), b"a", true);
    one(h, &reply, Outside, now, Inside);
}

/// A harness on `cfg` at 1000 whose inside hosts 100.64.1.x are known.
fn pool_harness(cfg: &cgnat_config::Config) -> cgnat_dataplane::harness::Harness {
    let h = cgnat_dataplane::harness::Harness::new(cfg, 1000);
    for i in 0..=255u8 {
        h.neighbors
            .learn(u32::from(Ipv4Addr::new(100, 64, 1, i)), &HOST_MAC);
    }
    h
}

/// A UDP datagram from inside `from` to the DNS server; the outside source it leaves
/// with, None when it is dropped.
fn udp_out(
    h: &mut cgnat_dataplane::harness::Harness,
    from: &str,
    now: u32,
) -> Option<SocketAddrV4> {
    let f = udp(from, "192.0.2.10:53", b"q", false);
    let o = h.inject(&f, Inside, now);
    o.iter()
        .find(|(side, _)| *side == Outside)
        .map(|(_, f)| out(f).src)
}

const OLD: &str = "\"198.51.100.1/32\"";
const NEW: &str = "198.51.100.64";

/// Port-block allocation, one worker, two blocks per address: two subscribers fill an
/// address.
const TWO_BLOCKS: &str = "allocation = \"port-block\"\nport_range = [1024, 2047]\n\
    block_size = 512\nmax_blocks_per_subscriber = 1\nmax_subscribers = 64";

#[test]
fn a_prefix_added_live_serves_new_subscribers_once_the_old_one_is_full() {
    let mut h = pool_harness(&pooled(OLD, TWO_BLOCKS));
    let a = udp_out(&mut h, "100.64.1.2:5000", 1000).unwrap();
    let b = udp_out(&mut h, "100.64.1.3:5000", 1000).unwrap();
    assert_eq!(
        (a.ip().to_string(), b.ip().to_string()),
        ("198.51.100.1".into(), "198.51.100.1".into())
    );
    // The pool is full: a third subscriber gets nothing.
    assert_eq!(udp_out(&mut h, "100.64.1.4:5000", 1001), None);
    h.reconfigure(&pooled(&format!("{OLD}, \"{NEW}/32\""), TWO_BLOCKS), 1002);
    let c = udp_out(&mut h, "100.64.1.4:5000", 1003).expect("served from the new prefix");
    assert_eq!(c.ip().to_string(), NEW);
    // The new address is a pool address: its replies come in.
    reply_in(&mut h, c, 1003);
    // The live subscribers go on as they were.
    for m in [a, b] {
        reply_in(&mut h, m, 1003);
    }
    assert_eq!(udp_out(&mut h, "100.64.1.2:5000", 1004), Some(a));
    // Old indexes kept, the new address appended.
    let pool = &h.nth(0).nat().pool;
    assert_eq!(pool.addresses(), [0xc633_6401, 0xc633_6440]);
}

/// Dynamic allocation with `pooling`, one worker.
fn dynamic(pooling: &str) -> String {
    format!("allocation = \"dynamic\"\npooling = \"{pooling}\"\nmax_subscribers = 4096")
}

#[test]
fn a_prefix_removed_live_drains_under_arbitrary_pooling() {
    let both = format!("{OLD}, \"{NEW}/32\"");
    let mut h = pool_harness(&pooled(&both, &dynamic("arbitrary")));
    // A flow on the address to be removed.
    let on_old = (5000..5100)
        .map(|p| {
            (
                p,
                udp_out(&mut h, &format!("100.64.1.2:{p}"), 1000).unwrap(),
            )
        })
        .find(|(_, m)| m.ip().to_string() == "198.51.100.1")
        .expect("some flow on 198.51.100.1");
    h.reconfigure(
        &pooled(&format!("\"{NEW}/32\""), &dynamic("arbitrary")),
        1001,
    );
    assert!(h.nth(0).nat().pool.is_draining(0));
    // Its session keeps working both ways.
    let (port, m) = on_old;
    reply_in(&mut h, m, 1002);
    assert_eq!(
        udp_out(&mut h, &format!("100.64.1.2:{port}"), 1002),
        Some(m)
    );
    // New mappings, of this subscriber and of others, never get it.
    for i in 0..200u32 {
        let from = format!("100.64.1.{}:{}", 2 + i % 50, 7000 + i);
        let got = udp_out(&mut h, &from, 1003).unwrap();
        assert_eq!(got.ip().to_string(), NEW, "{from}");
    }
    assert!(!h.nth(0).nat().pool.is_released(0));
    // Once its sessions end and their ports left quarantine, it is released.
    h.expire(1003 + 10_000);
    h.expire(1003 + 20_000);
    assert!(h.nth(0).nat().pool.is_released(0));
    // Added back: it serves new mappings again.
    h.reconfigure(&pooled(&both, &dynamic("arbitrary")), 30_000);
    assert!(!h.nth(0).nat().pool.is_draining(0));
    let back = (0..200u32)
        .filter_map(|i| udp_out(&mut h, &format!("100.64.1.9:{}", 9000 + i), 30_001))
        .any(|m| m.ip().to_string() == "198.51.100.1");
    assert!(back, "the address added back is used again");
}

#[test]
fn a_subscriber_paired_with_a_draining_address_keeps_it_until_its_mappings_end() {
    let both = format!("{OLD}, \"{NEW}/32\"");
    let mut h = pool_harness(&pooled(&both, &dynamic("paired")));
    // A subscriber paired with the address to be removed.
    let (sub, m) = (2..60u8)
        .map(|i| {
            (
                i,
                udp_out(&mut h, &format!("100.64.1.{i}:5000"), 1000).unwrap(),
            )
        })
        .find(|(_, m)| m.ip().to_string() == "198.51.100.1")
        .expect("some subscriber paired with 198.51.100.1");
    h.reconfigure(&pooled(&format!("\"{NEW}/32\""), &dynamic("paired")), 1001);
    // Its session goes on both ways; its new mappings stay on its one address (RFC 4787
    // REQ-2) while it has mappings there.
    reply_in(&mut h, m, 1002);
    let again = udp_out(&mut h, &format!("100.64.1.{sub}:6000"), 1002).unwrap();
    assert_eq!(again.ip(), m.ip(), "paired: the same address");
    // New subscribers never get the draining address.
    for i in 60..250u8 {
        let got = udp_out(&mut h, &format!("100.64.1.{i}:5000"), 1003).unwrap();
        assert_eq!(got.ip().to_string(), NEW, "100.64.1.{i}");
    }
    // Its mappings ended, the subscriber is paired anew: with the remaining address.
    h.expire(1003 + 10_000);
    h.expire(1003 + 20_000);
    assert!(h.nth(0).nat().pool.is_released(0));
    let later = udp_out(&mut h, &format!("100.64.1.{sub}:5000"), 30_000).unwrap();
    assert_eq!(later.ip().to_string(), NEW);
}

#[test]
fn a_prefix_added_live_is_split_between_workers_and_answered_by_proxy_arp() {
    let cfg = |pool: &str| pooled(pool, &dynamic("arbitrary"));
    let mut h = cgnat_dataplane::harness::Harness::with_workers(&cfg(OLD), 2, 1000);
    for i in 0..=255u8 {
        h.neighbors
            .learn(u32::from(Ipv4Addr::new(100, 64, 1, i)), &HOST_MAC);
    }
    let who_has = arp(1, [2, 0, 0, 0, 0, 0x99], "203.0.113.254", NEW, Outside);
    assert!(h.inject(&who_has, Outside, 1000).is_empty(), "not ours yet");
    h.reconfigure(&cfg(&format!("\"{NEW}/32\", {OLD}")), 1001);
    // Both workers append it at the same index.
    for w in 0..2 {
        assert_eq!(h.nth(w).nat().pool.addresses(), [0xc633_6401, 0xc633_6440]);
    }
    let o = h.inject(&who_has, Outside, 1002);
    assert_eq!(o.len(), 1, "proxy ARP for the new address");
    // Flows of many subscribers (each on its worker) on the new address: their replies,
    // given to worker 0, reach the owner of the port and come back in.
    h.reconfigure(&cfg(&format!("\"{NEW}/32\"")), 1003);
    for i in 2..40u8 {
        let m = udp_out(&mut h, &format!("100.64.1.{i}:5000"), 1004).unwrap();
        assert_eq!(m.ip().to_string(), NEW);
        reply_in(&mut h, m, 1004);
    }
}

#[test]
fn under_port_block_a_subscriber_on_a_draining_address_uses_its_block_and_gets_no_new_one() {
    // Paired port-block pooling, blocks of 4 ports, two per address.
    let blocks = "allocation = \"port-block\"\nport_range = [1024, 1031]\nblock_size = 4\n\
        max_blocks_per_subscriber = 2\nmax_subscribers = 64";
    let both = format!("{OLD}, \"{NEW}/32\"");
    let mut h = pool_harness(&pooled(&both, blocks));
    let (sub, first) = (2..60u8)
        .map(|i| (i, udp_out(&mut h, &format!("100.64.1.{i}:5000"), 1000)))
        .find(|(_, m)| m.is_some_and(|m| m.ip().to_string() == "198.51.100.1"))
        .expect("some subscriber on 198.51.100.1");
    h.reconfigure(&pooled(&format!("\"{NEW}/32\""), blocks), 1001);
    // Its block's three other ports, on its draining address.
    for p in 1..4 {
        let m = udp_out(&mut h, &format!("100.64.1.{sub}:{}", 5000 + p), 1002).unwrap();
        assert_eq!(m.ip(), first.unwrap().ip());
    }
    // Its block full: no new block on the draining address, and none elsewhere (its
    // one address, RFC 4787 REQ-2): refused.
    assert_eq!(udp_out(&mut h, &format!("100.64.1.{sub}:6000"), 1003), None);
    reply_in(&mut h, first.unwrap(), 1003);
}

#[test]
fn port_preservation_does_not_map_onto_a_draining_address() {
    // Arbitrary pooling tries the inside port on the first address (index 0): once
    // that address drains, on the first one that does not.
    let cfg = |pool: &str| pooled(pool, &(dynamic("arbitrary") + "\nport_preservation = true"));
    let mut h = pool_harness(&cfg(&format!("{OLD}, \"{NEW}/32\"")));
    let m = udp_out(&mut h, "100.64.1.2:5000", 1000).unwrap();
    assert_eq!(m.to_string(), "198.51.100.1:5000", "preserved on index 0");
    h.reconfigure(&cfg(&format!("\"{NEW}/32\"")), 1001);
    // The inside port kept, on the address that does not drain.
    for i in 3..20u16 {
        let m = udp_out(&mut h, &format!("100.64.1.{i}:{}", 6000 + i), 1002).unwrap();
        assert_eq!(m.to_string(), format!("{NEW}:{}", 6000 + i));
    }
}
