//! NAT64 hosts in the NAT's tables (RFC 6146 3.5's BIB and sessions): an IPv6 host
//! stands in as a handle, and a subscriber is its IPv6 prefix (`[nat64]
//! subscriber_prefix_len`), with NAT44's allocation, limits and outside side.

use super::*;

const CONFIG: &str = "[dataplane]\ncontrol_lcore = 0\nworker_lcores = [1]\n\
    [[ports]]\nname = \"inside\"\nrole = \"inside\"\ndevice = \"net_null0\"\nipv4 = \"100.64.0.1/10\"\n\
    ipv6 = [\"2001:db8:ffff::1/64\"]\n\
    [[ports]]\nname = \"outside\"\nrole = \"outside\"\ndevice = \"net_null1\"\nipv4 = \"203.0.113.1/24\"\n";

const SUB4: u32 = 0x6440_0102; // 100.64.1.2
const R1: u32 = 0xc000_020a; // 192.0.2.10
const T0: u32 = 1000;

fn nat(nat: &str, nat64: &str) -> (Nat, Arc<WorkerCounters>) {
    let text = format!("{CONFIG}[nat]\npool = [\"198.51.100.0/30\"]\n{nat}\n[nat64]\n{nat64}\n");
    let cfg = cgnat_config::Config::parse(&text, "t.toml").unwrap();
    let mut params = NatParams::from_config(&cfg.nat, 1).unwrap();
    params.set_nat64(cfg.nat64.as_ref());
    params.log.sessions = true;
    params.log.limits = true;
    let counters = Arc::new(WorkerCounters::default());
    (Nat::new(params, 0, 1, T0, 7, counters.clone()), counters)
}

fn a6(s: &str) -> u128 {
    u128::from(s.parse::<std::net::Ipv6Addr>().unwrap())
}

fn udp(sport: u16, dst: u32, dport: u16) -> Tuple {
    Tuple {
        proto: ipv4::PROTO_UDP,
        src: 0,
        dst,
        sport,
        dport,
    }
}

/// A NAT44 session of SUB4 (UDP 5000 to R1:53).
fn nat44_session(n: &mut Nat) -> u32 {
    let t = Tuple {
        src: SUB4,
        ..udp(5000, R1, 53)
    };
    n.in2out(&t, 0, true, T0).unwrap()
}

const PORT_BLOCK: &str = "allocation = \"port-block\"\nblock_size = 64\n";

#[test]
fn hosts_of_one_56_share_a_subscriber_its_port_block_and_pool_address() {
    let (mut n, _) = nat(PORT_BLOCK, "");
    let a = n
        .in2out6(a6("2001:db8:1:100::1"), &udp(5000, R1, 53), 0, true, T0)
        .unwrap();
    let b = n
        .in2out6(a6("2001:db8:1:1ff::77"), &udp(5000, R1, 53), 0, true, T0)
        .unwrap();
    let c = n
        .in2out6(a6("2001:db8:1:200::1"), &udp(5000, R1, 53), 0, true, T0)
        .unwrap();
    let (sa, sb, sc) = (*n.session(a), *n.session(b), *n.session(c));
    // Each host has its own handle in 0/8, never an IPv4 address of the inside.
    assert!(sa.in_addr >> 24 == 0 && sb.in_addr >> 24 == 0 && sc.in_addr >> 24 == 0);
    assert!(sa.in_addr != sb.in_addr && sb.in_addr != sc.in_addr);
    assert_eq!(n.host6(sa.in_addr), Some(a6("2001:db8:1:100::1")));
    assert_eq!(n.host6(sb.in_addr), Some(a6("2001:db8:1:1ff::77")));
    assert_eq!(n.host6(SUB4), None);
    // The two hosts of 2001:db8:1:100::/56 are one subscriber: one block, one address.
    let block = |addr: u32, port: u16| (n.pool.index_of(addr).unwrap(), port / 64);
    assert_eq!(
        block(sa.out_addr, sa.out_port),
        block(sb.out_addr, sb.out_port)
    );
    assert_ne!(sa.out_port, sb.out_port);
    let (sub, prefix) = n.subscriber6(a6("2001:db8:1:1ab::5")).unwrap();
    assert_eq!(prefix, a6("2001:db8:1:100::"));
    assert_eq!((sub.sessions, sub.block_count()), (2, 1));
    assert_eq!(n.subscriber_prefix6(sub.addr), Some(prefix));
    assert_eq!(n.subscriber6_blocks(a6("2001:db8:1:100::1")).len(), 1);
    // The other /56 is another subscriber, with a block of its own.
    assert_ne!(
        block(sa.out_addr, sa.out_port),
        block(sc.out_addr, sc.out_port)
    );
    let (other, _) = n.subscriber6(a6("2001:db8:1:200::1")).unwrap();
    assert_eq!(other.sessions, 1);
    assert_eq!(n.live_subscribers(), 2);
    assert_eq!(n.nat64_counts(), (3, 2));
    assert_eq!(n.counters.nat64_hosts_active.get(), 3);
    assert_eq!(n.counters.nat64_subscribers_active.get(), 2);
}

#[test]
fn each_64_or_each_address_is_a_subscriber_when_configured() {
    for (len, subscribers) in [(64, 2), (128, 3)] {
        let (mut n, _) = nat(PORT_BLOCK, &format!("subscriber_prefix_len = {len}"));
        for h in [
            "2001:db8:1:100::1",
            "2001:db8:1:100::2",
            "2001:db8:1:101::1",
        ] {
            n.in2out6(a6(h), &udp(5000, R1, 53), 0, true, T0).unwrap();
        }
        assert_eq!(n.live_subscribers(), subscribers, "/{len}");
    }
}

#[test]
fn nat44_and_nat64_subscribers_live_side_by_side_and_answers_find_their_host() {
    let (mut n, _) = nat("", "");
    let v4 = nat44_session(&mut n);
    let v6 = n
        .in2out6(a6("2001:db8:1:100::1"), &udp(5000, R1, 53), 0, true, T0)
        .unwrap();
    assert_ne!(v4, v6);
    assert_eq!(n.live_subscribers(), 2);
    assert_eq!(n.subscriber(SUB4).unwrap().sessions, 1);
    // The answer to the IPv6 host's session: found by its outside key, as NAT44's.
    let s = *n.session(v6);
    let back = Tuple {
        src: R1,
        ..udp(53, s.out_addr, s.out_port)
    };
    assert_eq!(n.out2in(&back, 0, true, T0), Ok(v6));
    assert_eq!(
        n.host6(n.session(v6).in_addr),
        Some(a6("2001:db8:1:100::1"))
    );
    // The same host's next packet finds the same session.
    assert_eq!(
        n.in2out6(a6("2001:db8:1:100::1"), &udp(5000, R1, 53), 0, true, T0 + 1),
        Ok(v6)
    );
}

#[test]
fn a_host_handle_and_its_subscriber_end_with_the_last_session() {
    let (mut n, _) = nat("", "");
    let h = a6("2001:db8:1:100::1");
    n.in2out6(h, &udp(5000, R1, 53), 0, true, T0).unwrap();
    n.in2out6(h, &udp(5001, R1, 53), 0, true, T0).unwrap();
    assert!(n.handle6(h).is_some());
    assert_eq!(n.nat64_counts(), (1, 1));
    assert_eq!(n.counters.nat64_sessions_active.get(), 2);
    // UDP's timeout (300 s by default) passes: the host's handle goes with its last
    // session; its subscriber (and the prefix's key) stays while it holds its port
    // block (the ports are in quarantine).
    n.expire(T0 + 400, usize::MAX);
    assert_eq!(n.live_sessions(), 0);
    assert_eq!(n.counters.nat64_sessions_active.get(), 0);
    assert_eq!(n.handle6(h), None);
    let (sub, _) = n.subscriber6(a6("2001:db8:1:1ff::9")).unwrap();
    assert_eq!((sub.sessions, sub.block_count()), (0, 1));
    assert_eq!(n.nat64_counts(), (0, 1));
    // A new host of the prefix meanwhile is the same subscriber, with the same block.
    let c = &n.counters;
    assert_eq!(
        (c.nat64_hosts_active.get(), c.nat64_subscribers_active.get()),
        (0, 1),
        "the gauges: no host, the prefix's subscriber"
    );
    let blocks = n.subscriber6_blocks(h).to_vec();
    let i = n
        .in2out6(
            a6("2001:db8:1:1ff::9"),
            &udp(7000, R1, 53),
            0,
            true,
            T0 + 400,
        )
        .unwrap();
    assert_eq!(n.subscriber6_blocks(h), &blocks[..]);
    assert_eq!(n.nat64_counts(), (1, 1));
    // Its session, then the quarantine, end: nothing is left.
    n.expire(T0 + 800, usize::MAX);
    assert_eq!(n.session_at(i).map(|s| s.in_addr), None);
    for t in (T0 + 800..T0 + 2000).step_by(50) {
        n.expire(t, usize::MAX);
    }
    assert!(n.subscriber6(h).is_none());
    assert_eq!(n.nat64_counts(), (0, 0));
    assert_eq!(n.live_subscribers(), 0);
    let c = &n.counters;
    assert_eq!(
        (c.nat64_hosts_active.get(), c.nat64_subscribers_active.get()),
        (0, 0),
        "the gauges follow"
    );
}

#[test]
fn a_refused_first_session_leaves_no_host_behind() {
    let (mut n, _) = nat("", "");
    let h = a6("2001:db8:1:100::1");
    let ack = Tuple {
        proto: ipv4::PROTO_TCP,
        ..udp(5000, R1, 80)
    };
    assert_eq!(
        n.in2out6(h, &ack, tcp::ACK, true, T0),
        Err(DropReason::TcpNoSessionNotSyn)
    );
    assert_eq!(n.handle6(h), None);
    assert_eq!(n.nat64_counts(), (0, 0));
}

#[test]
fn the_subscriber_limits_count_every_host_of_the_prefix() {
    let (mut n, _) = nat("max_sessions_per_subscriber = 3\n", "");
    for (i, h) in [
        "2001:db8:1:100::1",
        "2001:db8:1:100::2",
        "2001:db8:1:1ff::3",
    ]
    .iter()
    .enumerate()
    {
        n.in2out6(a6(h), &udp(5000 + i as u16, R1, 53), 0, true, T0)
            .unwrap();
    }
    assert_eq!(
        n.in2out6(a6("2001:db8:1:180::4"), &udp(6000, R1, 53), 0, true, T0),
        Err(DropReason::SubscriberSessionLimit)
    );
    assert_eq!(n.handle6(a6("2001:db8:1:180::4")), None);
    // Another prefix is another subscriber, with its own budget.
    assert!(n
        .in2out6(a6("2001:db8:1:200::4"), &udp(6000, R1, 53), 0, true, T0)
        .is_ok());
}

#[test]
fn without_nat64_no_ipv6_host_is_taken() {
    let cfg = cgnat_config::Config::parse(
        &format!("{CONFIG}[nat]\npool = [\"198.51.100.0/30\"]\n"),
        "t.toml",
    )
    .unwrap();
    let params = NatParams::from_config(&cfg.nat, 1).unwrap();
    let mut n = Nat::new(params, 0, 1, T0, 7, Arc::new(WorkerCounters::default()));
    assert_eq!(
        n.in2out6(a6("2001:db8::1"), &udp(5000, R1, 53), 0, true, T0),
        Err(DropReason::Nat64HostTableFull)
    );
    assert_eq!(n.live_sessions(), 0);
}

#[test]
fn nat64_events_carry_the_ipv6_host_or_the_subscriber_prefix() {
    let (mut n, c) = nat(
        &format!("{PORT_BLOCK}max_sessions_per_subscriber = 1\n"),
        "",
    );
    n.params.log.blocks = true;
    let v6 = |e: &LogEvent| (e.kind, e.v6_len, std::net::Ipv6Addr::from(e.inside6));
    let host: std::net::Ipv6Addr = "2001:db8:1:100::1".parse().unwrap();
    let prefix: std::net::Ipv6Addr = "2001:db8:1:100::".parse().unwrap();
    nat44_session(&mut n);
    let i = n
        .in2out6(u128::from(host), &udp(5000, R1, 53), 0, true, T0)
        .unwrap();
    let s = *n.session(i);
    // The limit is the prefix's: another host of it is refused, logged as the prefix.
    assert_eq!(
        n.in2out6(a6("2001:db8:1:1ff::2"), &udp(5000, R1, 53), 0, true, T0),
        Err(DropReason::SubscriberSessionLimit)
    );
    let ev: Vec<LogEvent> = n.events().drain(..).collect();
    assert_eq!(ev.len(), 5, "{ev:?}");
    // NAT44's events as before: IPv4 inside, no IPv6 part.
    assert_eq!(
        (ev[0].kind, ev[0].inside, ev[0].v6_len),
        (event::PORT_BLOCK_ALLOC, SUB4, 0)
    );
    assert_eq!(
        (ev[1].kind, ev[1].inside, ev[1].v6_len),
        (event::SESSION_CREATE, SUB4, 0)
    );
    assert_eq!(v6(&ev[2]), (event::PORT_BLOCK_ALLOC, 56, prefix));
    assert_eq!(v6(&ev[3]), (event::NAT64_SESSION_CREATE, 128, host));
    assert_eq!(
        (ev[3].proto, ev[3].outside, ev[3].in_port, ev[3].out_port),
        (ipv4::PROTO_UDP, s.out_addr, 5000, s.out_port)
    );
    assert_eq!(v6(&ev[4]), (event::QUOTA_EXCEEDED, 56, prefix));
    assert_eq!(ev[4].dst, quota::MAX_ENTRIES_PER_USER);
    // The session ends (its handle with it): the delete names the host, resolved
    // before the handle went; the block's release after the quarantine, the prefix.
    n.expire(T0 + 400, usize::MAX);
    for t in (T0 + 400..T0 + 2000).step_by(50) {
        n.expire(t, usize::MAX);
    }
    let ev: Vec<LogEvent> = n.events().drain(..).filter(|e| e.inside != SUB4).collect();
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(v6(&ev[0]), (event::NAT64_SESSION_DELETE, 128, host));
    assert_eq!(v6(&ev[1]), (event::PORT_BLOCK_FREE, 56, prefix));
    assert_eq!(c.log_events_nat64_unlogged.get(), 0);
    assert_eq!(n.nat64_counts(), (0, 0));
}

#[test]
fn bib_events_open_and_close_each_mapping_once_with_the_ipv6_host() {
    // logging.ipfix.mappings: a BIB create when a mapping is made, a delete when it
    // ends or at the stop; a mapping two sessions share (endpoint-independent) is
    // one pair. NAT44's are natEvent 6/7, NAT64's 8/9 with the host's address.
    let (mut n, c) = nat("", "");
    n.params.log.mappings = true;
    n.params.log.sessions = false;
    let host: std::net::Ipv6Addr = "2001:db8:1:100::1".parse().unwrap();
    let i = n
        .in2out6(u128::from(host), &udp(5000, R1, 53), 0, true, T0)
        .unwrap();
    let j = n
        .in2out6(u128::from(host), &udp(5000, R1 + 1, 53), 0, true, T0)
        .unwrap();
    let (si, sj) = (*n.session(i), *n.session(j));
    assert_eq!((si.out_addr, si.out_port), (sj.out_addr, sj.out_port));
    nat44_session(&mut n);
    let ev: Vec<LogEvent> = n.events().drain(..).collect();
    let kinds: Vec<(u8, u8)> = ev.iter().map(|e| (e.kind, e.v6_len)).collect();
    assert_eq!(
        kinds,
        vec![(event::NAT64_BIB_CREATE, 128), (event::BIB_CREATE, 0)],
        "{ev:?}"
    );
    assert_eq!(std::net::Ipv6Addr::from(ev[0].inside6), host);
    assert_eq!(
        (ev[0].proto, ev[0].in_port, ev[0].outside, ev[0].out_port),
        (ipv4::PROTO_UDP, 5000, si.out_addr, si.out_port)
    );
    assert_eq!((ev[1].inside, ev[1].in_port), (SUB4, 5000));
    // The stop closes both mappings (the shared one is a mapping record now).
    let mut cursor = 0;
    while !n.close_log(&mut cursor, 1000) {}
    let ev: Vec<LogEvent> = n.events().drain(..).collect();
    let mut kinds: Vec<(u8, u32, u16)> =
        ev.iter().map(|e| (e.kind, e.outside, e.out_port)).collect();
    kinds.sort();
    let s4 = *n.iter_sessions().find(|s| s.in_addr == SUB4).unwrap();
    let mut want = vec![
        (event::BIB_DELETE, s4.out_addr, s4.out_port),
        (event::NAT64_BIB_DELETE, si.out_addr, si.out_port),
    ];
    want.sort();
    assert_eq!(kinds, want, "{ev:?}");
    // The sessions end: each mapping's delete once, the NAT64 one naming the host.
    n.expire(T0 + 400, usize::MAX);
    let ev: Vec<LogEvent> = n.events().drain(..).collect();
    let mut kinds: Vec<u8> = ev.iter().map(|e| e.kind).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec![event::BIB_DELETE, event::NAT64_BIB_DELETE],
        "{ev:?}"
    );
    let d6 = ev
        .iter()
        .find(|e| e.kind == event::NAT64_BIB_DELETE)
        .unwrap();
    assert_eq!(std::net::Ipv6Addr::from(d6.inside6), host);
    assert_eq!(c.log_events_nat64_unlogged.get(), 0);
}

#[test]
fn addresses_in_0_slash_8_from_outside_the_nat64_path_find_and_pin_nothing() {
    // The control API's subscriber query and PCP (a THIRD_PARTY option names any
    // address) can hand the NAT an address of 0/8: never a crash, never a host's
    // subscriber, never a pin on a NAT64 mapping.
    for nat64 in [false, true] {
        let (mut n, _) = if nat64 {
            nat("", "")
        } else {
            let cfg = cgnat_config::Config::parse(
                &format!("{CONFIG}[nat]\npool = [\"198.51.100.0/30\"]\n"),
                "t.toml",
            )
            .unwrap();
            let params = NatParams::from_config(&cfg.nat, 1).unwrap();
            let c = Arc::new(WorkerCounters::default());
            (Nat::new(params, 0, 1, T0, 7, c.clone()), c)
        };
        for a in [0x0000_0001, 0x0000_0005, 0x007f_ffff] {
            assert!(n.subscriber(a).is_none(), "{a:#x}");
            assert!(n.subscriber_blocks(a).is_empty());
            assert_eq!(n.subscriber_inbound(a), (0, 0));
            assert_eq!(n.host6(a), None);
        }
        if nat64 {
            let i = n
                .in2out6(a6("2001:db8:1:100::1"), &udp(5000, R1, 53), 0, true, T0)
                .unwrap();
            let h = n.session(i).in_addr;
            // A PCP mapping for the host's handle is refused.
            let ask = pcp::PcpAsk {
                proto: ipv4::PROTO_UDP,
                inside: (h, 5000),
                lifetime: 600,
                nonce: [7; 12],
                max_per_subscriber: 32,
                ..Default::default()
            };
            assert!(n.pcp_map(&ask, T0).is_err());
            assert!(n.pcp_entries().next().is_none());
            // Once the host is gone its handle names nothing.
            n.expire(T0 + 400, usize::MAX);
            assert!(n.subscriber(h).is_none());
            assert_eq!(n.host6(h), None);
        }
    }
}
