//! PPTP through the whole pipeline (no EAL): enhanced GRE (version 1) of a PPTP call
//! translated by the call table while the PPTP ALG is on (the pool address out, the
//! subscriber and its own call ID back), dropped and counted (`gre_no_call`) without a
//! call; plain GRE (version 0) still by address alone, and GRE version 1 too while
//! the ALG is off.

mod common;
use cgnat_alg::contract::{Contract, Ctx, Dir, Edits, Grant, Plan};
use cgnat_alg::pptp::{message, msg, Pptp};
use cgnat_dataplane::counters::DropReason;
use cgnat_dataplane::harness::Harness;
use cgnat_dataplane::pipeline::Side::{Inside, Outside};
use cgnat_dataplane::wire::checksum;
use common::*;
use std::net::Ipv4Addr;

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

/// The PPTP control session of `client` (established through the NAT) and its
/// context for messages of direction `dir`.
fn control(h: &mut Harness, client: &str) -> (u32, impl Fn(Dir) -> Ctx) {
    let c = connect(
        h,
        &format!("{client}:40000"),
        &format!("{SERVER}:1723"),
        5000,
    );
    let nat = &h.nth(0).nat;
    let (i, s) = nat
        .iter_sessions_indexed()
        .find(|(_, s)| s.out_addr == u32::from(*c.ip()) && s.out_port == c.port())
        .map(|(i, s)| (i, *s))
        .unwrap();
    assert_eq!(s.alg(), cgnat_alg::id::PPTP);
    (i, move |dir| Ctx {
        dir,
        inside: (s.in_addr, s.in_port),
        outside: (s.out_addr, s.out_port),
        remote: (s.rem_addr, s.rem_port),
        datagram: false,
    })
}

/// The worker's grants for control message `m` of session `i`, and `m` edited.
fn granted(h: &mut Harness, i: u32, ctx: &Ctx, mut m: Vec<u8>, now: u32) -> Vec<u8> {
    let mut plan = Plan::default();
    Pptp.plan(&m, ctx, &mut plan);
    let nat = &mut h.nth(0).nat;
    let grants: Vec<Grant> = plan
        .asks()
        .map(|a| nat.pptp_grant(a, ctx, i, now))
        .collect();
    let mut e = Edits::default();
    Pptp.edits(&m, ctx, &plan, &grants, &mut e).unwrap();
    e.apply_in_place(&mut m).unwrap();
    m
}

/// An outgoing call of `client` with its call ID `id` answered by the server's
/// `server_id`: the translated call ID.
fn call(h: &mut Harness, client: &str, id: u16, server_id: u16) -> u16 {
    let (i, ctx) = control(h, client);
    let rq = granted(
        h,
        i,
        &ctx(Dir::FromInside),
        message(msg::OUT_CALL_REQUEST, id, 1),
        1000,
    );
    let out = u16::from_be_bytes([rq[12], rq[13]]);
    let rp = granted(
        h,
        i,
        &ctx(Dir::FromOutside),
        message(msg::OUT_CALL_REPLY, server_id, out),
        1000,
    );
    assert_eq!(u16::from_be_bytes([rp[14], rp[15]]), id);
    out
}

#[test]
fn gre_of_two_calls_with_one_call_id_reaches_each_subscriber() {
    let mut h = harness(ON);
    let (a, b) = ("100.64.1.2", "100.64.1.3");
    let out_a = call(&mut h, a, 7, 0x100);
    let out_b = call(&mut h, b, 7, 0x101);
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
    let out_a = call(&mut h, "100.64.1.2", 7, 0x100);
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
