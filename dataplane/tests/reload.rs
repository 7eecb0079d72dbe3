//! A reload's settings taken by live workers ([`Worker::reconfigure`] through the
//! harness): ALG switches, timeouts, static mappings and limits change for what
//! comes next, and every live session goes on as it was.
//!
//! [`Worker::reconfigure`]: cgnat_dataplane::pipeline::Worker::reconfigure

mod common;
use cgnat_dataplane::pipeline::Side::{Inside, Outside};
use common::*;

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
