//! HA sync of the NAT's own tables, without EAL: two pipelines (one active, one
//! standby) joined by the sync link over UDP on the loopback. After the bulk sync and
//! after incremental updates the standby holds the same sessions (same outside address
//! and port, TCP state, ALG), subscriber pairings and port blocks as the active; a lost
//! datagram brings a resync that leaves them equal again; a reply from the outside
//! is dropped by a standby (counted) and, once it is promoted, reaches the inside host
//! through the tables the sync built (what a failover relies on).

mod common;

use cgnat_dataplane::counters::DropReason;
use cgnat_dataplane::ha::auth::Auth;
use cgnat_dataplane::ha::link::{Link, Role};
use cgnat_dataplane::ha::tables::NatTables;
use cgnat_dataplane::ha::transport;
use cgnat_dataplane::ha::wire;
use cgnat_dataplane::ha::{HaCounters, Receiver, Sender};
use cgnat_dataplane::harness::Harness;
use cgnat_dataplane::nat::sync::SyncCursor;
use cgnat_dataplane::nat::{ExpectReq, Nat};
use cgnat_dataplane::pipeline::Side;
use common::*;
use std::collections::BTreeSet;
use std::net::UdpSocket;

const KEY: &[u8] = b"ha_nat test key, 32 bytes long!!";

struct Node {
    h: Harness,
    link: Link,
    socket: transport::SyncSocket,
    counters: HaCounters,
    cursor: SyncCursor,
    buf: Vec<u8>,
}

impl Node {
    fn step(&mut self, now: u32, ms: u64) {
        let (nat, alg) = self.h.worker.sync_parts();
        let mut t = NatTables {
            nat,
            alg: Some(alg),
            cursor: &mut self.cursor,
            now,
            counters: &self.counters,
        };
        transport::step(
            &mut self.link,
            &self.socket,
            &mut t,
            &self.counters,
            ms,
            &mut self.buf,
        );
    }
}

fn pair(nat_extra: &str) -> (Node, Node) {
    pair_of(&|| harness(nat_extra))
}

/// An active and a standby, each a pipeline `make` builds.
fn pair_of(make: &dyn Fn() -> Harness) -> (Node, Node) {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    drop((a, b));
    let node = |role, local, peer, id| {
        let mut h = make();
        h.worker.nat.sync_journal(role == Role::Active);
        h.worker.alg_control().sync_journal(role == Role::Active);
        h.worker.set_standby(role == Role::Standby, 1000);
        Node {
            h,
            link: Link::new(
                role,
                Sender::new(Auth::new(KEY).unwrap(), id, 1),
                Receiver::new(Auth::new(KEY).unwrap()),
                2000,
                8192,
            ),
            socket: transport::open(local, peer).unwrap(),
            counters: HaCounters::default(),
            cursor: SyncCursor::default(),
            buf: vec![0; wire::MAX_MESSAGE],
        }
    };
    (
        node(Role::Active, aa, ba, 1),
        node(Role::Standby, ba, aa, 2),
    )
}

/// Runs both ends for `ms` milliseconds of link time at worker second `now`.
fn run(a: &mut Node, s: &mut Node, now: u32, ms: u64) {
    let base = u64::from(now) * 1000;
    let mut t = 0;
    while t < ms {
        a.step(now, base + t);
        std::thread::sleep(std::time::Duration::from_micros(200));
        s.step(now, base + t);
        std::thread::sleep(std::time::Duration::from_micros(200));
        t += 10;
    }
}

type SessionView = (u8, (u32, u16), (u32, u16), (u32, u16), u8, u8);
type SubView = (u32, Option<u32>, Vec<u32>);

/// What the tables hold: sessions (protocol, inside, outside, remote, TCP state, ALG),
/// subscribers with mappings (address, paired pool address, blocks).
fn tables(n: &Nat) -> (BTreeSet<SessionView>, BTreeSet<SubView>) {
    let sessions = n
        .iter_sessions()
        .map(|s| {
            (
                s.proto,
                (s.in_addr, s.in_port),
                (s.out_addr, s.out_port),
                (s.rem_addr, s.rem_port),
                s.state() as u8,
                s.alg(),
            )
        })
        .collect();
    // Subscribers that hold something besides ports in quarantine (the quarantine
    // is the active's: a standby frees a port when told its mapping ended).
    let subs = (0..n.subscriber_slots())
        .filter_map(|i| n.subscriber_at(i))
        .filter(|(s, inbound)| s.sessions > 0 || s.mappings > 0 || *inbound > 0)
        .map(|(s, _)| {
            let pool = n.pool.addresses().get(usize::from(s.pool)).copied();
            (s.addr, pool, n.subscriber_blocks(s.addr).to_vec())
        })
        .collect();
    (sessions, subs)
}

fn assert_same(a: &Node, s: &Node) {
    let (ta, ts) = (tables(&a.h.worker.nat), tables(&s.h.worker.nat));
    assert!(!ta.0.is_empty());
    assert_eq!(ta.0.len(), ts.0.len(), "session counts");
    assert_eq!(ta.0, ts.0, "sessions");
    assert_eq!(ta.1, ts.1, "subscribers, pairings, blocks");
}

fn udp_flows(h: &mut Harness, subs: std::ops::Range<u8>, dport: u16, now: u32) {
    for i in subs {
        let src = format!("100.64.1.{i}:{}", 4000 + u16::from(i));
        let f = udp(&src, &format!("192.0.2.10:{dport}"), b"q", false);
        one(h, &f, Side::Inside, now, Side::Outside);
    }
}

fn sync_round_trip(nat_extra: &str) {
    let (mut a, mut s) = pair(nat_extra);
    udp_flows(&mut a.h, 1..40, 53, 1000);
    let tcp_out = connect(&mut a.h, "100.64.2.7:40000", "192.0.2.20:80", 5000);
    // The standby joins: a bulk sync.
    run(&mut a, &mut s, 1000, 300);
    assert!(s.link.in_sync());
    assert_same(&a, &s);
    assert_eq!(s.counters.install_failed.get(), 0);
    let flushes = s.counters.bulk_syncs.get();
    a.link.set_refresh_ms(200);

    // Incremental: new flows, flows that end, a TCP connection whose handshake
    // completes after its creation was journaled (its state reaches the standby with
    // the next refresh sweep).
    udp_flows(&mut a.h, 40..80, 123, 1010);
    connect(&mut a.h, "100.64.2.8:40001", "192.0.2.20:443", 7000);
    assert!(
        a.h.expire(1010 + 400) > 0,
        "the first flows time out on the active"
    );
    udp_flows(&mut a.h, 80..90, 53, 1410);
    run(&mut a, &mut s, 1410, 300);
    assert_same(&a, &s);
    assert_eq!(s.counters.bulk_syncs.get(), flushes, "no bulk sync needed");
    assert_eq!(s.counters.lost.get(), 0);
    // The records of the sessions it was told ended are freed by the standby's
    // expiry when their deadline comes; what it holds stays.
    let held = s.h.worker.nat.live_sessions();
    s.h.expire(1412);
    assert_eq!(s.h.worker.nat.live_sessions(), held);
    assert_same(&a, &s);

    // A datagram lost: taken off the standby's socket before it reads it. It held
    // the end of ten flows (left on the standby until the resync's sweep) and five
    // new ones.
    assert_eq!(a.h.expire(1720), 10);
    udp_flows(&mut a.h, 90..95, 53, 1720);
    a.step(1720, 1_720_000);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let mut scratch = [0u8; wire::MAX_MESSAGE];
    assert!(s.socket.recv(&mut scratch).is_ok());
    udp_flows(&mut a.h, 95..99, 53, 1721);
    run(&mut a, &mut s, 1721, 2500);
    assert_eq!(s.counters.lost.get(), 1);
    assert_eq!(s.counters.bulk_syncs.get(), flushes + 1, "a resync");
    assert_same(&a, &s);
    assert_eq!(s.counters.install_failed.get(), 0);

    // A standby does not expire what it holds (the active's traffic, unseen here,
    // keeps it alive): long past every timeout, the sessions are still there.
    let held = s.h.worker.nat.live_sessions();
    s.h.expire(6422);
    assert_eq!(s.h.worker.nat.live_sessions(), held);

    // A standby forwards nothing and creates nothing: both counted drops.
    let reply = tcp(
        "192.0.2.20:80",
        &tcp_out.to_string(),
        5001,
        "A",
        b"data",
        true,
    );
    let before = s.h.worker.nat.live_sessions();
    none(&mut s.h, &reply, Side::Outside, 6422);
    none(
        &mut s.h,
        &udp("100.64.3.3:7000", "192.0.2.10:53", b"q", false),
        Side::Inside,
        6422,
    );
    assert_eq!(s.h.counters.dropped(DropReason::HaStandby), 2);
    assert_eq!(s.h.worker.nat.live_sessions(), before);

    // Promoted: the server's next segment reaches the client through the tables the
    // sync built.
    s.h.worker.set_standby(false, 6422);
    let back = one(&mut s.h, &reply, Side::Outside, 6422, Side::Inside);
    assert_eq!(out(&back).dst, sa("100.64.2.7:40000"));
    // And a UDP answer to a flow the resync brought.
    let mapped =
        s.h.worker
            .nat
            .iter_sessions()
            .find(|x| x.in_addr == u32::from(ip("100.64.1.96")))
            .map(|x| format!("{}:{}", std::net::Ipv4Addr::from(x.out_addr), x.out_port))
            .expect("synced");
    let back = one(
        &mut s.h,
        &udp("192.0.2.10:53", &mapped, b"a", true),
        Side::Outside,
        6422,
        Side::Inside,
    );
    assert_eq!(out(&back).dst, sa("100.64.1.96:4096"));
}

#[test]
fn dynamic_allocation_sessions_and_pairings_sync_bulk_incremental_and_after_loss() {
    sync_round_trip("allocation = \"dynamic\"\n");
}

#[test]
fn port_block_allocation_sessions_and_blocks_sync_bulk_incremental_and_after_loss() {
    sync_round_trip("allocation = \"port-block\"\nblock_size = 64\n");
}

/// An ALG's request for a connection to 100.64.5.5 (`proto`, `port`) from `remote`
/// (0: any), of class `class` and call tag `tag`, with the class's lifetime.
fn expect_req(proto: u8, port: u16, remote: u32, class: u8, tag: u32) -> ExpectReq {
    ExpectReq {
        proto,
        in_addr: u32::from(ip("100.64.5.5")),
        in_port: port,
        remote,
        class,
        tag,
        secs: 0,
        keep: false,
        alg: 0,
    }
}

/// PCP mappings (with their nonce, filters and lifetime left) and ALG expectations
/// (pinned mapping, remote, class, master session) sync too: after the bulk sync an
/// FTP data connection the active expected is admitted by the promoted standby, and a
/// remote the PCP filter names reaches the mapped inside server.
#[test]
fn pcp_mappings_and_alg_expectations_sync() {
    use cgnat_dataplane::nat::pcp::PcpAsk;
    use cgnat_dataplane::nat::{class, ALG_FTP};
    use cgnat_dataplane::wire::pcp::Filter;
    let (mut a, mut s) = pair("");
    let sub = u32::from(ip("100.64.4.4"));
    let mut ask = PcpAsk {
        proto: 6,
        inside: (sub, 8080),
        lifetime: 600,
        nonce: *b"twelve bytes",
        n_filters: 1,
        max_per_subscriber: 8,
        ..PcpAsk::default()
    };
    ask.filters[0] = Filter {
        addr: u32::from(ip("192.0.2.0")),
        prefix: 24,
        port: 0,
    };
    let pcp_out = a.h.worker.nat.pcp_map(&ask, 1000).expect("mapped");
    // An FTP control connection and the data connection its PORT announced.
    connect(&mut a.h, "100.64.5.5:41000", "192.0.2.21:21", 9000);
    let master =
        a.h.worker
            .nat
            .iter_sessions_indexed()
            .find(|(_, x)| x.rem_port == 21)
            .map(|(i, _)| i)
            .unwrap();
    let req = expect_req(6, 41001, u32::from(ip("192.0.2.21")), class::FTP_DATA, 0);
    let data_out =
        a.h.worker
            .nat
            .alg_expect_with(master, &req, 1000)
            .expect("expected");
    run(&mut a, &mut s, 1000, 300);
    assert!(s.link.in_sync());
    assert_eq!(s.counters.install_failed.get(), 0);
    let pcp: Vec<_> = s.h.worker.nat.pcp_entries().copied().collect();
    assert_eq!(pcp.len(), 1);
    assert_eq!(
        (
            pcp[0].outside,
            pcp[0].nonce,
            pcp[0].n_filters,
            pcp[0].expires
        ),
        (pcp_out, ask.nonce, 1, 1600)
    );
    let exp: Vec<_> =
        s.h.worker
            .nat
            .expectations()
            .map(|(k, e)| (*k, *e))
            .collect();
    assert_eq!(exp.len(), 1);
    assert_eq!((exp[0].0.a, exp[0].0.pa), data_out);
    assert_eq!(exp[0].1.class, class::FTP_DATA);
    let master_s = s.h.worker.nat.session(exp[0].1.master);
    assert_eq!((master_s.rem_port, master_s.alg()), (21, ALG_FTP));

    s.h.worker.set_standby(false, 1001);
    let to = |ep: (u32, u16)| format!("{}:{}", std::net::Ipv4Addr::from(ep.0), ep.1);
    // The server opens the data connection to the announced endpoint.
    let back = one(
        &mut s.h,
        &tcp("192.0.2.21:20", &to(data_out), 7000, "S", b"", true),
        Side::Outside,
        1001,
        Side::Inside,
    );
    assert_eq!(out(&back).dst, sa("100.64.5.5:41001"));
    // A remote inside the PCP filter reaches the mapped server.
    let back = one(
        &mut s.h,
        &tcp("192.0.2.99:5555", &to(pcp_out), 1, "S", b"", true),
        Side::Outside,
        1001,
        Side::Inside,
    );
    assert_eq!(out(&back).dst, sa("100.64.4.4:8080"));
}

/// An FTP control connection the ALG rewrote (a PORT command of another length) keeps
/// its sequence adjustment on the promoted standby: the client's next command goes out
/// shifted by the length change, as the server expects. Without the adjustment synced
/// it would go out unshifted and the server would see a hole in the stream.
#[test]
fn a_rewritten_ftp_control_connection_keeps_its_sequence_adjustment_after_failover() {
    let (mut a, mut s) = pair("filtering = \"address-and-port-dependent\"");
    connect(&mut a.h, "100.64.1.2:40000", "192.0.2.10:21", 500);
    let port = tcp(
        "100.64.1.2:40000",
        "192.0.2.10:21",
        101,
        "PA",
        b"PORT 100,64,1,2,19,137\r\n",
        false,
    );
    let o = one(&mut a.h, &port, Side::Inside, 1001, Side::Outside);
    let delta = (o.len() - 54) as i64 - "PORT 100,64,1,2,19,137\r\n".len() as i64;
    assert_ne!(delta, 0, "a PORT of another length");
    run(&mut a, &mut s, 1001, 300);
    assert!(s.link.in_sync());
    assert_eq!(s.counters.install_failed.get(), 0);
    s.h.worker.set_standby(false, 1002);
    let next = one(
        &mut s.h,
        &tcp(
            "100.64.1.2:40000",
            "192.0.2.10:21",
            125,
            "PA",
            b"RETR f\r\n",
            false,
        ),
        Side::Inside,
        1002,
        Side::Outside,
    );
    assert_eq!(
        u32::from_be_bytes([next[38], next[39], next[40], next[41]]) as i64,
        125 + delta
    );
}

/// A pipeline with NAT64 (hosts under 2001:db8:ffff::/48, one subscriber per /64).
fn nat64_harness() -> Harness {
    let text = config_text("allocation = \"port-block\"\nblock_size = 64\n").replace(
        "ipv4 = \"100.64.0.1/10\"",
        "ipv4 = \"100.64.0.1/10\"\nipv6 = [\"2001:db8:ffff::1/48\"]",
    ) + "\n[nat64]\nsubscriber_prefix_len = 64\n";
    let cfg = cgnat_config::Config::parse(&text, "t.toml").unwrap();
    Harness::new(&cfg, 1000)
}

/// A NAT64 FTP control connection whose EPRT |2| the ALG rewrote to a PORT of
/// another length (RFC 6384) keeps its sequence adjustment on the promoted standby,
/// whose handle for the IPv6 host is not the active's (the record names the host by
/// its address): the host's next command goes out shifted by the length change.
#[test]
fn a_nat64_ftp_control_connection_keeps_its_sequence_adjustment_after_failover() {
    use cgnat_dataplane::harness::{INSIDE_MAC, OUTSIDE_MAC};
    use etherparse::PacketBuilder;
    let (mut a, mut s) = pair_of(&nat64_harness);
    let server6 = a6("64:ff9b::808:404");
    // Three hosts' datagrams before the standby is there (the active's journal off,
    // as before a standby joins): their handles are the active's first, and they end
    // before it joins, so the FTP client's handles differ on the two nodes.
    a.h.worker.nat.sync_journal(false);
    for k in 0..3u16 {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(HOST_MAC, INSIDE_MAC)
            .ipv6(a6(&format!("2001:db8:ffff:{k}::10")), server6, 64)
            .udp(5000, 53)
            .write(&mut f, b"q")
            .unwrap();
        one(&mut a.h, &f, Side::Inside, 1000, Side::Outside);
    }
    a.h.worker.nat.sync_journal(true);
    let host = a6("2001:db8:ffff:7::10");
    let from_host = |seq: u32, ack: Option<u32>, text: &[u8]| {
        let mut f = Vec::new();
        let b = PacketBuilder::ethernet2(HOST_MAC, INSIDE_MAC)
            .ipv6(host, server6, 64)
            .tcp(40000, 21, seq, 64000);
        match ack {
            None => b.syn().write(&mut f, text),
            Some(n) => b.ack(n).psh().write(&mut f, text),
        }
        .unwrap();
        f
    };
    let syn = one(
        &mut a.h,
        &from_host(1000, None, b""),
        Side::Inside,
        1200,
        Side::Outside,
    );
    let pool: [u8; 4] = syn[26..30].try_into().unwrap();
    let port = u16::from_be_bytes([syn[34], syn[35]]);
    let mut synack = Vec::new();
    PacketBuilder::ethernet2(GW_MAC, OUTSIDE_MAC)
        .ipv4([8, 8, 4, 4], pool, 64)
        .tcp(21, port, 5000, 29200)
        .syn()
        .ack(1001)
        .write(&mut synack, b"")
        .unwrap();
    let nd = a.h.control.nd().unwrap();
    nd.neighbors().learn_answer(&host, &HOST_MAC, 1200);
    one(&mut a.h, &synack, Side::Outside, 1200, Side::Inside);
    let eprt = b"EPRT |2|2001:db8:ffff:7::10|50000|\r\n";
    let out = one(
        &mut a.h,
        &from_host(1001, Some(5001), eprt),
        Side::Inside,
        1200,
        Side::Outside,
    );
    let text = &out[34 + usize::from(out[46] >> 4) * 4..];
    assert!(
        text.starts_with(b"PORT "),
        "{}",
        String::from_utf8_lossy(text)
    );
    let delta = text.len() as i64 - eprt.len() as i64;
    assert_ne!(delta, 0, "a PORT of another length");
    assert_eq!(a.h.expire(1000 + 301), 3, "the three datagrams time out");
    run(&mut a, &mut s, 1301, 300);
    assert!(s.link.in_sync());
    assert_eq!(s.counters.install_failed.get(), 0);
    let handle = |n: &Node| n.h.worker.nat.handle6(u128::from_be_bytes(host));
    assert!(handle(&s).is_some());
    assert_ne!(
        handle(&a),
        handle(&s),
        "the nodes name the host differently"
    );

    s.h.worker.set_standby(false, 1302);
    let next_seq = 1001 + eprt.len() as u32;
    let next = one(
        &mut s.h,
        &from_host(next_seq, Some(5001), b"RETR f\r\n"),
        Side::Inside,
        1302,
        Side::Outside,
    );
    assert_eq!(
        u32::from_be_bytes([next[38], next[39], next[40], next[41]]) as i64,
        i64::from(next_seq) + delta
    );
}

/// NAT64 sessions sync with their hosts' IPv6 addresses: each node names a host by a
/// handle of its own (here they differ: the active's first host ended before the
/// bulk sync, so the standby numbers the others from one), and the standby takes its
/// own for the address a session record carries. Once promoted, it translates the
/// servers' answers to the right IPv6 hosts; the sessions a journal says ended end
/// there too, and their hosts with them.
#[test]
fn nat64_sessions_sync_with_their_hosts_addresses_and_reach_them_after_failover() {
    use cgnat_dataplane::harness::{INSIDE_MAC, OUTSIDE_MAC};
    use cgnat_dataplane::nat::class;
    use etherparse::PacketBuilder;
    let (mut a, mut s) = pair_of(&nat64_harness);
    let server6 = a6("64:ff9b::808:404");
    let host = |k: u16| format!("2001:db8:ffff:{k:x}::10");
    let send = |n: &mut Node, k: u16, now: u32| {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(HOST_MAC, INSIDE_MAC)
            .ipv6(a6(&host(k)), server6, 64)
            .udp(5000 + k, 53)
            .write(&mut f, b"q")
            .unwrap();
        let got = one(&mut n.h, &f, Side::Inside, now, Side::Outside);
        let pool: [u8; 4] = got[26..30].try_into().unwrap();
        (pool, u16::from_be_bytes([got[34], got[35]]))
    };
    // Host 0's session ends before the standby joins: the active's handles of the
    // others start at 2.
    send(&mut a, 0, 1000);
    let mut mapped = Vec::new();
    for k in 1..6 {
        mapped.push((k, send(&mut a, k, 1200)));
    }
    assert_eq!(a.h.expire(1000 + 301), 1, "host 0's session times out");
    run(&mut a, &mut s, 1301, 300);
    assert!(s.link.in_sync());
    assert_eq!(s.counters.install_failed.get(), 0);
    let handles = |n: &Node| -> BTreeSet<(u32, u128)> {
        n.h.worker
            .nat
            .iter_sessions()
            .map(|x| {
                (
                    x.in_addr,
                    n.h.worker.nat.host6(x.in_addr).expect("a NAT64 host"),
                )
            })
            .collect()
    };
    let (ha, hs) = (handles(&a), handles(&s));
    assert_eq!(hs.len(), 5);
    assert_ne!(ha, hs, "the two nodes number the hosts differently");
    let hosts = |v: &BTreeSet<(u32, u128)>| v.iter().map(|x| x.1).collect::<BTreeSet<_>>();
    assert_eq!(hosts(&ha), hosts(&hs), "the same hosts");
    // The same hosts (the active's subscriber of host 0 lives on while its port
    // block does; a standby takes subscribers with their sessions).
    assert_eq!(s.h.worker.nat.nat64_counts(), (5, 5));

    // Incremental: a new host, and one whose session ends on the active.
    a.link.set_refresh_ms(200);
    mapped.push((6, send(&mut a, 6, 1400)));
    assert_eq!(a.h.expire(1200 + 301), 5, "hosts 1-5 time out");
    for k in 1..6 {
        mapped.push((k, send(&mut a, k, 1510)));
    }
    mapped.drain(..5);
    run(&mut a, &mut s, 1510, 300);
    assert_eq!(s.counters.install_failed.get(), 0);
    assert_eq!(hosts(&handles(&a)), hosts(&handles(&s)));
    assert_eq!(s.h.worker.nat.live_sessions(), 6);

    // An FTP data connection host 6 announced (EPRT |2| of its own address) on a
    // control connection to 8.8.4.4: expected on the standby too, under the
    // standby's own handle for the host (the record names it by its address).
    let host6 = u128::from_be_bytes(a6(&host(6)));
    let h6 = a.h.worker.nat.handle6(host6).expect("host 6 has a handle");
    let mut f = Vec::new();
    PacketBuilder::ethernet2(HOST_MAC, INSIDE_MAC)
        .ipv6(a6(&host(6)), server6, 64)
        .tcp(41000, 21, 1, 64240)
        .syn()
        .write(&mut f, b"")
        .unwrap();
    one(&mut a.h, &f, Side::Inside, 1511, Side::Outside);
    let master =
        a.h.worker
            .nat
            .iter_sessions_indexed()
            .find(|(_, x)| x.in_addr == h6 && x.rem_port == 21)
            .map(|(i, _)| i)
            .expect("the control connection");
    let data_out =
        a.h.worker
            .nat
            .alg_expect_with(
                master,
                &ExpectReq {
                    in_addr: h6,
                    ..expect_req(6, 41001, u32::from(ip("8.8.4.4")), class::FTP_DATA, 0)
                },
                1511,
            )
            .expect("expected");
    run(&mut a, &mut s, 1511, 100);
    assert_eq!(s.counters.install_failed.get(), 0);
    let on_standby: Vec<_> =
        s.h.worker
            .nat
            .expectations()
            .map(|(k, e)| ((k.a, k.pa), e.class, e.remote))
            .collect();
    assert_eq!(
        on_standby,
        vec![(data_out, class::FTP_DATA, u32::from(ip("8.8.4.4")))]
    );
    assert_eq!(s.h.worker.nat.live_sessions(), 7);

    // Promoted: every server's answer reaches its host.
    s.h.worker.set_standby(false, 1510);
    for (k, (pool, port)) in mapped {
        let mut answer = Vec::new();
        PacketBuilder::ethernet2(GW_MAC, OUTSIDE_MAC)
            .ipv4([8, 8, 4, 4], pool, 64)
            .udp(53, port)
            .write(&mut answer, b"a")
            .unwrap();
        let nd = s.h.control.nd().unwrap();
        nd.neighbors().learn_answer(&a6(&host(k)), &HOST_MAC, 1510);
        let back = one(&mut s.h, &answer, Side::Outside, 1510, Side::Inside);
        assert_eq!(&back[38..54], &a6(&host(k)), "the answer to host {k}");
        assert_eq!(u16::from_be_bytes([back[56], back[57]]), 5000 + k);
    }
    // And the server opens the announced data connection: to host 6's port 41001.
    let mut syn = Vec::new();
    PacketBuilder::ethernet2(GW_MAC, OUTSIDE_MAC)
        .ipv4([8, 8, 4, 4], data_out.0.to_be_bytes(), 64)
        .tcp(20, data_out.1, 7000, 64240)
        .syn()
        .write(&mut syn, b"")
        .unwrap();
    let back = one(&mut s.h, &syn, Side::Outside, 1512, Side::Inside);
    assert_eq!(
        &back[38..54],
        &a6(&host(6)),
        "the data connection to host 6"
    );
    assert_eq!(u16::from_be_bytes([back[56], back[57]]), 41001);
}

/// A PPTP control connection of `client` (port 40000) to 192.0.2.10 and a call on it
/// with the subscriber's call ID `id`, the server answering with `server_id`: the
/// control connection's outside endpoint and the translated call ID.
fn pptp_call(h: &mut Harness, client: &str, id: u16, server_id: u16) -> (String, u16) {
    use cgnat_alg::pptp::{message, msg};
    let c = connect(h, &format!("{client}:40000"), "192.0.2.10:1723", 5000).to_string();
    let rq = tcp(
        &format!("{client}:40000"),
        "192.0.2.10:1723",
        101,
        "PA",
        &message(msg::OUT_CALL_REQUEST, id, 1),
        false,
    );
    let sent = one(h, &rq, Side::Inside, 1000, Side::Outside);
    let out_id = u16::from_be_bytes([sent[54 + 12], sent[54 + 13]]);
    let rp = tcp(
        "192.0.2.10:1723",
        &c,
        5001,
        "PA",
        &message(msg::OUT_CALL_REPLY, server_id, out_id),
        true,
    );
    let got = one(h, &rp, Side::Outside, 1000, Side::Inside);
    assert_eq!(u16::from_be_bytes([got[54 + 14], got[54 + 15]]), id);
    (c, out_id)
}

/// The subscriber `client` clears its call `id` (after the call made by [`pptp_call`]).
fn pptp_clear(h: &mut Harness, client: &str, id: u16, now: u32) {
    use cgnat_alg::pptp::{message, msg};
    let clear = tcp(
        &format!("{client}:40000"),
        "192.0.2.10:1723",
        101 + 168,
        "PA",
        &message(msg::CALL_CLEAR_REQUEST, id, 0),
        false,
    );
    one(h, &clear, Side::Inside, now, Side::Outside);
}

/// An enhanced GRE packet (version 1, key and sequence number) keyed `call`.
fn gre1(call: u16) -> Vec<u8> {
    let mut g = vec![0x30, 0x01, 0x88, 0x0b, 0, 4];
    g.extend_from_slice(&call.to_be_bytes());
    g.extend_from_slice(&[0, 0, 0, 9, 0xff, 0x03, 0x00, 0x21]);
    g
}

/// (subscriber, its call ID, pool address, translated ID, server, server's ID, bound,
/// closing) of every call.
type CallView = (u32, u16, u32, u16, u32, u16, bool, bool);

fn calls(n: &Nat) -> BTreeSet<CallView> {
    n.pptp_calls()
        .map(|c| {
            (
                c.inside,
                c.inside_id,
                c.outside,
                c.outside_id,
                c.server,
                c.server_id,
                c.bound,
                c.closing.is_some(),
            )
        })
        .collect()
}

/// PPTP calls sync: one made before the standby joins (the bulk sync) and one after
/// (the journal) are on the standby with the same translated call IDs, bound to the
/// same server call IDs; a call the subscriber clears and the server disconnects ends
/// there too. Once promoted, the standby carries a live call's GRE both ways (out from
/// the pool address, back to the subscriber with its own call ID); the ended call's
/// GRE is dropped (`gre_no_call`), and its clear sent again gets its translated ID.
#[test]
fn pptp_calls_sync_and_their_gre_flows_through_the_promoted_standby() {
    use cgnat_alg::pptp::{message, msg};
    let (mut a, mut s) = pair("[alg]\npptp = { enabled = true }\n");
    let (_, out_a) = pptp_call(&mut a.h, "100.64.1.2", 7, 0x100);
    run(&mut a, &mut s, 1000, 300);
    assert!(s.link.in_sync());
    assert_eq!(s.counters.install_failed.get(), 0);
    assert_eq!(calls(&s.h.worker.nat).len(), 1, "the bulk sync's call");
    assert_eq!(calls(&a.h.worker.nat), calls(&s.h.worker.nat));

    // Incremental: a second subscriber's call with the same call ID, and a third
    // call that is cleared and disconnected.
    let (_, out_b) = pptp_call(&mut a.h, "100.64.1.3", 7, 0x101);
    let (c_c, out_c) = pptp_call(&mut a.h, "100.64.1.4", 9, 0x102);
    run(&mut a, &mut s, 1001, 300);
    assert_eq!(s.counters.install_failed.get(), 0);
    assert_eq!(calls(&s.h.worker.nat).len(), 3);
    assert_eq!(calls(&a.h.worker.nat), calls(&s.h.worker.nat));
    pptp_clear(&mut a.h, "100.64.1.4", 9, 1002);
    let notify = tcp(
        "192.0.2.10:1723",
        &c_c,
        5001 + 32,
        "PA",
        &message(msg::CALL_DISCONNECT_NOTIFY, out_c, 0),
        true,
    );
    one(&mut a.h, &notify, Side::Outside, 1002, Side::Inside);
    // A fourth call its subscriber clears, the server not answering yet: closing.
    pptp_call(&mut a.h, "100.64.1.5", 11, 0x103);
    pptp_clear(&mut a.h, "100.64.1.5", 11, 1002);
    assert_eq!(calls(&a.h.worker.nat).len(), 3);
    run(&mut a, &mut s, 1002, 300);
    assert_eq!(calls(&a.h.worker.nat), calls(&s.h.worker.nat), "ended");
    assert_eq!(s.counters.install_failed.get(), 0);

    let closing: Vec<_> =
        s.h.worker
            .nat
            .pptp_calls()
            .filter(|c| c.closing.is_some())
            .collect();
    assert_eq!(
        (closing.len(), closing[0].inside_id),
        (1, 11),
        "closing there too"
    );
    // A standby holds its calls past their idle timeout and the linger (their end
    // comes from the active).
    s.h.expire(1002 + 1000);
    assert_eq!(calls(&s.h.worker.nat).len(), 3);

    // Promoted: each live call's GRE both ways.
    s.h.worker.set_standby(false, 2002);
    for (client, server_id, out_id) in [("100.64.1.2", 0x100, out_a), ("100.64.1.3", 0x101, out_b)]
    {
        let f = ip_frame(client, "192.0.2.10", 47, &gre1(server_id), false);
        let o = one(&mut s.h, &f, Side::Inside, 2002, Side::Outside);
        let pool = std::net::Ipv4Addr::new(o[26], o[27], o[28], o[29]);
        assert_eq!(&o[34..], &gre1(server_id)[..], "the key kept");
        let f = ip_frame("192.0.2.10", &pool.to_string(), 47, &gre1(out_id), true);
        let o = one(&mut s.h, &f, Side::Outside, 2002, Side::Inside);
        assert_eq!(&o[30..34], &ip(client).octets(), "to {client}");
        assert_eq!(u16::from_be_bytes([o[40], o[41]]), 7, "its own call ID");
    }
    let f = ip_frame("100.64.1.4", "192.0.2.10", 47, &gre1(0x102), false);
    none(&mut s.h, &f, Side::Inside, 2002);
    assert_eq!(s.h.counters.dropped(DropReason::GreNoCall), 1);
    // The ended call's clear sent again by its subscriber (the notify lost on its
    // way): the standby ended the call as the sync told it, so it remembers it as the
    // active did, and the clear goes out with the call's translated ID.
    let clear = tcp(
        "100.64.1.4:40000",
        "192.0.2.10:1723",
        101 + 168,
        "PA",
        &message(msg::CALL_CLEAR_REQUEST, 9, 0),
        false,
    );
    let o = one(&mut s.h, &clear, Side::Inside, 2002, Side::Outside);
    assert_eq!(
        u16::from_be_bytes([o[54 + 12], o[54 + 13]]),
        out_c,
        "the ended call's translation, after the failover"
    );
    // Active now, it sweeps its calls: the closing one, past its linger, goes; the
    // live ones stay.
    s.h.expire(2003);
    let left: BTreeSet<u32> = s.h.worker.nat.pptp_calls().map(|c| c.inside).collect();
    assert_eq!(
        left,
        [ip("100.64.1.2"), ip("100.64.1.3")].map(u32::from).into()
    );
}

/// An IRC connection whose DCC offer the active rewrote to another length: once the
/// standby is promoted, the client's next line goes out moved by the growth and the
/// server's acknowledgement comes back in the client's own numbering (the control
/// lcore's adjustment is synced, and the standby's worker sends the session's frames
/// there).
#[test]
fn an_irc_connection_with_a_resized_dcc_offer_keeps_its_adjustment_after_failover() {
    let (mut a, mut s) = pair("[alg]\nirc = { enabled = true }\n");
    let (client, server) = ("100.64.1.2:40000", "192.0.2.10:6667");
    let c = connect(&mut a.h, client, server, 500).to_string();
    let line = b"PRIVMSG bob :\x01DCC SEND f 100.64.1.2 5000 1024\x01\r\n";
    let o = one(
        &mut a.h,
        &tcp(client, server, 101, "PA", line, false),
        Side::Inside,
        1001,
        Side::Outside,
    );
    let grown = (o.len() - 54) as i64 - line.len() as i64;
    assert_ne!(grown, 0, "an offer of another length");
    run(&mut a, &mut s, 1001, 300);
    assert!(s.link.in_sync());
    assert_eq!(s.counters.install_failed.get(), 0);

    s.h.worker.set_standby(false, 1002);
    let next = 101 + line.len() as u32;
    let o = one(
        &mut s.h,
        &tcp(client, server, next, "PA", b"PING x\r\n", false),
        Side::Inside,
        1002,
        Side::Outside,
    );
    let seq_of = |f: &[u8]| u32::from_be_bytes([f[38], f[39], f[40], f[41]]);
    let ack_of = |f: &[u8]| u32::from_be_bytes([f[42], f[43], f[44], f[45]]);
    assert_eq!(
        seq_of(&o) as i64,
        next as i64 + grown,
        "moved by the growth"
    );
    assert_eq!(&o[54..], b"PING x\r\n");
    // The server acknowledges what it received: the client sees its own numbering.
    let acked = (next as i64 + grown + 8) as u32;
    let pong = {
        use cgnat_dataplane::harness::OUTSIDE_MAC;
        let d = sa(&c);
        let mut v = Vec::new();
        etherparse::PacketBuilder::ethernet2(GW_MAC, OUTSIDE_MAC)
            .ipv4([192, 0, 2, 10], d.ip().octets(), 64)
            .tcp(6667, d.port(), 501, 29200)
            .ack(acked)
            .psh()
            .write(&mut v, b"PONG x\r\n")
            .unwrap();
        v
    };
    let i = one(&mut s.h, &pong, Side::Outside, 1003, Side::Inside);
    assert_eq!(
        ack_of(&i),
        next + 8,
        "acknowledged in the client's numbering"
    );
}

/// PCP mappings and ALG expectations made, changed and ended on the active reach the
/// standby with the incremental updates, not only with the next refresh sweep (none
/// runs here): a failover seconds after a PCP request or an ALG's announcement keeps
/// them.
#[test]
fn pcp_mappings_and_expectations_reach_the_standby_without_a_refresh() {
    use cgnat_dataplane::nat::class;
    use cgnat_dataplane::nat::pcp::PcpAsk;
    let (mut a, mut s) = pair("");
    a.link.set_refresh_ms(0);
    udp_flows(&mut a.h, 1..3, 53, 1000);
    run(&mut a, &mut s, 1000, 300);
    assert!(s.link.in_sync());
    let bulks = s.counters.bulk_syncs.get();
    // (outside, class, remote, tag, seconds left) of each expectation, sorted.
    let expects = |n: &Node, now: u32| {
        let mut v: Vec<_> =
            n.h.worker
                .nat
                .expectations()
                .map(|(k, e)| ((k.a, k.pa), e.class, e.remote, e.tag, e.until - now))
                .collect();
        v.sort();
        v
    };
    // (inside, outside, expiry) of each PCP mapping, sorted.
    let pcps = |n: &Node| {
        let mut v: Vec<_> =
            n.h.worker
                .nat
                .pcp_entries()
                .map(|e| (e.inside, e.outside, e.expires))
                .collect();
        v.sort();
        v
    };

    // Made: a PCP mapping, an FTP data connection and a call's media (any source).
    let sub = u32::from(ip("100.64.4.4"));
    let ask = PcpAsk {
        proto: 17,
        inside: (sub, 5000),
        lifetime: 600,
        nonce: *b"twelve bytes",
        max_per_subscriber: 8,
        ..PcpAsk::default()
    };
    let pcp_out = a.h.worker.nat.pcp_map(&ask, 1001).expect("mapped");
    connect(&mut a.h, "100.64.5.5:41000", "192.0.2.21:21", 9000);
    one(
        &mut a.h,
        &udp("100.64.5.5:5060", "192.0.2.30:5060", b"INVITE", false),
        Side::Inside,
        1001,
        Side::Outside,
    );
    let master_of = |n: &Node, port: u16| {
        n.h.worker
            .nat
            .iter_sessions_indexed()
            .find(|(_, x)| x.rem_port == port)
            .map(|(i, _)| i)
            .unwrap()
    };
    let (ftp, sip) = (master_of(&a, 21), master_of(&a, 5060));
    let req = expect_req;
    let data_out =
        a.h.worker
            .nat
            .alg_expect_with(
                ftp,
                &req(6, 41001, u32::from(ip("192.0.2.21")), class::FTP_DATA, 0),
                1001,
            )
            .expect("expected");
    let media_out =
        a.h.worker
            .nat
            .alg_expect_with(sip, &req(17, 10000, 0, class::SIP_MEDIA, 7), 1001)
            .expect("expected");
    run(&mut a, &mut s, 1001, 100);
    assert_eq!(expects(&s, 1001).len(), 2);
    assert_eq!(expects(&s, 1001), expects(&a, 1001));
    assert_eq!(pcps(&s), pcps(&a));
    assert_eq!(pcps(&s)[0].1, pcp_out);

    // Changed: the callee's SDP names its media address; the mapping is refreshed
    // with a longer lifetime.
    let callee = u32::from(ip("192.0.2.31"));
    a.h.worker.nat.alg_narrow(sip, 7, callee);
    a.h.worker
        .nat
        .pcp_map(
            &PcpAsk {
                lifetime: 3600,
                ..ask
            },
            1002,
        )
        .expect("refreshed");
    run(&mut a, &mut s, 1002, 100);
    assert_eq!(expects(&s, 1002), expects(&a, 1002));
    assert!(expects(&s, 1002).iter().any(|e| e.2 == callee && e.3 == 7));
    assert_eq!(pcps(&s), vec![((sub, 5000), pcp_out, 1002 + 3600)]);

    // Ended: the FTP expectation by the ALG, the PCP mapping by a delete, the media
    // one by the callee's first packet (the session it lets in comes too).
    assert_eq!(
        a.h.worker
            .nat
            .alg_end(6, u32::from(ip("100.64.5.5")), 41001, 1003),
        Some(data_out)
    );
    a.h.worker
        .nat
        .pcp_delete(17, (sub, 5000), Some(ask.nonce), 1003)
        .expect("deleted");
    let to = |ep: (u32, u16)| format!("{}:{}", std::net::Ipv4Addr::from(ep.0), ep.1);
    one(
        &mut a.h,
        &udp("192.0.2.31:20000", &to(media_out), b"rtp", true),
        Side::Outside,
        1003,
        Side::Inside,
    );
    assert!(expects(&a, 1003).is_empty());
    run(&mut a, &mut s, 1003, 100);
    assert!(expects(&s, 1003).is_empty());
    assert!(pcps(&s).is_empty());
    // The same sessions, the callee's media among them (the FTP connection's TCP
    // state moved since its creation was journaled: that one comes with a sweep).
    let stateless = |n: &Node| {
        let mut t = tables(&n.h.worker.nat).0;
        t = t
            .into_iter()
            .map(|x| (x.0, x.1, x.2, x.3, 0, x.5))
            .collect();
        t
    };
    assert_eq!(stateless(&s), stateless(&a));
    assert!(stateless(&s).iter().any(|x| x.3 == (callee, 20000)));

    assert_eq!(s.counters.refreshes.get() + a.counters.refreshes.get(), 0);
    assert_eq!(s.counters.bulk_syncs.get(), bulks, "no bulk sync needed");
    assert_eq!(s.counters.install_failed.get(), 0);
}
