//! Stateful NAT64 (RFC 6146) through the whole pipeline: IPv6 hosts on the inside
//! reach IPv4 servers under the `[nat64]` prefix, their sessions in NAT44's tables
//! with the pool's addresses and ports, the answers translated back. Frames in and
//! expected frames out are built here with etherparse (addresses, ports, lengths and
//! checksums), never by the code under test; only what the NAT chooses (the pool
//! port, the IPv4 identification) is read from its output and checked for range.

mod common;
use cgnat_config::Config;
use cgnat_dataplane::counters::DropReason;
use cgnat_dataplane::harness::{Harness, INSIDE_MAC, OUTSIDE_MAC};
use cgnat_dataplane::pipeline::Side;
use common::{a6, config_text, csum, v4_out, GW_MAC, HOST_MAC};
use etherparse::PacketBuilder;

const PORT6: &str = "2001:db8:ffff::1";
const HOST6: &str = "2001:db8:ffff::10";
const HOST6B: &str = "2001:db8:ffff::20";
/// 8.8.4.4 under the well-known prefix (which carries only global addresses: RFC
/// 6052 3.1 keeps the documentation ranges out).
const SERVER6: &str = "64:ff9b::808:404";
const SERVER4: [u8; 4] = [8, 8, 4, 4];
const T0: u32 = 1000;

/// The common config text with `nat_extra` in `[nat]` and the inside port's IPv6
/// address (no `[nat64]` yet).
fn text6(nat_extra: &str) -> String {
    config_text(nat_extra).replace(
        "ipv4 = \"100.64.0.1/10\"",
        &format!("ipv4 = \"100.64.0.1/10\"\nipv6 = [\"{PORT6}/64\"]"),
    )
}

fn config(nat64: &str) -> Config {
    config_with("", nat64)
}

/// The same with `nat_extra` in `[nat]` too.
fn config_with(nat_extra: &str, nat64: &str) -> Config {
    let text = text6(&format!(
        "allocation = \"port-block\"\nblock_size = 64\n{nat_extra}"
    ));
    Config::parse(&format!("{text}\n[nat64]\n{nat64}\n"), "t.toml")
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The appliance with the two IPv6 hosts' MACs known (as after neighbour discovery).
fn harness(nat64: &str) -> Harness {
    let mut h = Harness::new(&config(nat64), T0);
    let nd = h.control.nd().expect("the inside port speaks IPv6");
    for a in [HOST6, HOST6B] {
        nd.neighbors().learn_answer(&a6(a), &HOST_MAC, T0);
    }
    h
}

fn v6(src: &str, dst: &str) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ethernet2(HOST_MAC, INSIDE_MAC).ipv6(a6(src), a6(dst), 64)
}

fn write(b: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    b(&mut v);
    v
}

fn udp6(src: &str, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    write(|v| {
        v6(src, SERVER6)
            .udp(sport, dport)
            .write(v, payload)
            .unwrap()
    })
}

fn only(out: Vec<(Side, Vec<u8>)>, side: Side) -> Vec<u8> {
    assert_eq!(out.len(), 1, "one frame out: {out:?}");
    assert_eq!(out[0].0, side);
    out.into_iter().next().unwrap().1
}

/// The pool address, port (or ICMP identifier) and IPv4 identification the NAT
/// chose for an outbound frame, checked for range.
fn chosen(f: &[u8]) -> ([u8; 4], u16, u16) {
    assert_eq!(&f[12..14], &[0x08, 0x00], "IPv4 leaves");
    let src: [u8; 4] = f[26..30].try_into().unwrap();
    assert_eq!(&src[..3], &[198, 51, 100], "from the pool 198.51.100.0/28");
    assert!(src[3] < 16);
    // ICMP: the identifier, after type, code and checksum.
    let at = if f[23] == 1 { 38 } else { 34 };
    let port = u16::from_be_bytes([f[at], f[at + 1]]);
    (src, port, u16::from_be_bytes([f[18], f[19]]))
}

/// An ICMPv6 error from the inside port's address to `host` quoting `quote`.
fn port_error(host: &str, ty: etherparse::Icmpv6Type, quote: &[u8]) -> Vec<u8> {
    write(|v| {
        PacketBuilder::ethernet2(INSIDE_MAC, HOST_MAC)
            .ipv6(a6(PORT6), a6(host), 64)
            .icmpv6(ty)
            .write(v, quote)
            .unwrap()
    })
}

fn to_server(src: [u8; 4], ttl: u8) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ethernet2(OUTSIDE_MAC, GW_MAC).ipv4(src, SERVER4, ttl)
}

fn from_server(dst: [u8; 4]) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ethernet2(GW_MAC, OUTSIDE_MAC).ipv4(SERVER4, dst, 64)
}

fn to_host(host: &str) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ethernet2(INSIDE_MAC, HOST_MAC).ipv6(a6(SERVER6), a6(host), 63)
}

#[test]
fn a_udp_datagram_leaves_from_the_pool_and_its_answer_returns_as_ipv6() {
    let mut h = harness("");
    let got = only(
        h.inject(&udp6(HOST6, 5000, 53, b"query"), Side::Inside, T0),
        Side::Outside,
    );
    let (pool, port, ident) = chosen(&got);
    let want = write(|v| {
        to_server(pool, 63)
            .udp(port, 53)
            .write(v, b"query")
            .unwrap()
    });
    assert_eq!(got, v4_out(want, ident));
    assert_eq!(h.counters.in2out.get(), 1);
    // The answer, to the pool address and port.
    let answer = write(|v| from_server(pool).udp(53, port).write(v, b"answer").unwrap());
    let got = only(h.inject(&answer, Side::Outside, T0 + 1), Side::Inside);
    let want = write(|v| to_host(HOST6).udp(53, 5000).write(v, b"answer").unwrap());
    assert_eq!(got, want);
    // The session is NAT44's: one session, one subscriber (the host's /56).
    assert_eq!(h.worker.nat.live_sessions(), 1);
    assert_eq!(h.worker.nat.nat64_counts(), (1, 1));
}

/// The appliance as in pcap mode: any destination MAC taken, next hops nobody
/// resolved sent to the broadcast MAC (so the fast path would not stop at an unknown
/// MAC for a handle).
fn replay_harness() -> Harness {
    let mut h = Harness::new_replay(&config(""), T0);
    let nd = h.control.nd().expect("the inside port speaks IPv6");
    nd.neighbors().learn_answer(&a6(HOST6), &HOST_MAC, T0);
    h
}

#[test]
fn a_burst_of_answers_takes_the_full_path_and_each_is_translated() {
    for mut h in [harness(""), replay_harness()] {
        let got = only(
            h.inject(&udp6(HOST6, 5000, 53, b"q"), Side::Inside, T0),
            Side::Outside,
        );
        let (pool, port, _) = chosen(&got);
        let answers: Vec<Vec<u8>> = (0..8u8)
            .map(|k| write(|v| from_server(pool).udp(53, port).write(v, &[k; 9]).unwrap()))
            .collect();
        let burst: Vec<(&[u8], Side)> = answers.iter().map(|a| (&a[..], Side::Outside)).collect();
        let out = h.inject_burst(&burst, T0 + 1);
        assert_eq!(out.len(), 8, "{out:?}");
        for (k, (side, f)) in out.into_iter().enumerate() {
            assert_eq!(side, Side::Inside);
            let want = write(|v| {
                to_host(HOST6)
                    .udp(53, 5000)
                    .write(v, &[k as u8; 9])
                    .unwrap()
            });
            assert_eq!(f, want, "answer {k}");
        }
    }
}

#[test]
fn a_tcp_handshake_goes_through_both_ways() {
    let mut h = harness("");
    let syn = write(|v| {
        v6(HOST6, SERVER6)
            .tcp(40000, 80, 1000, 64000)
            .syn()
            .write(v, &[])
            .unwrap()
    });
    let got = only(h.inject(&syn, Side::Inside, T0), Side::Outside);
    let (pool, port, ident) = chosen(&got);
    let want = write(|v| {
        to_server(pool, 63)
            .tcp(port, 80, 1000, 64000)
            .syn()
            .write(v, &[])
            .unwrap()
    });
    assert_eq!(got, v4_out(want, ident));
    let synack = write(|v| {
        from_server(pool)
            .tcp(80, port, 7000, 29200)
            .syn()
            .ack(1001)
            .write(v, &[])
            .unwrap()
    });
    let got = only(h.inject(&synack, Side::Outside, T0), Side::Inside);
    let want = write(|v| {
        to_host(HOST6)
            .tcp(80, 40000, 7000, 29200)
            .syn()
            .ack(1001)
            .write(v, &[])
            .unwrap()
    });
    assert_eq!(got, want);
    let ack = write(|v| {
        v6(HOST6, SERVER6)
            .tcp(40000, 80, 1001, 64000)
            .ack(7001)
            .write(v, b"GET / HTTP/1.0\r\n\r\n")
            .unwrap()
    });
    let got = only(h.inject(&ack, Side::Inside, T0 + 1), Side::Outside);
    let (_, _, ident) = chosen(&got);
    let want = write(|v| {
        to_server(pool, 63)
            .tcp(port, 80, 1001, 64000)
            .ack(7001)
            .write(v, b"GET / HTTP/1.0\r\n\r\n")
            .unwrap()
    });
    assert_eq!(got, v4_out(want, ident));
}

#[test]
fn an_echo_request_and_its_reply_are_translated() {
    let mut h = harness("");
    let ping = write(|v| {
        v6(HOST6, SERVER6)
            .icmpv6_echo_request(0x1234, 7)
            .write(v, b"abcdefgh")
            .unwrap()
    });
    let got = only(h.inject(&ping, Side::Inside, T0), Side::Outside);
    let (pool, id, ident) = chosen(&got);
    let want = write(|v| {
        to_server(pool, 63)
            .icmpv4_echo_request(id, 7)
            .write(v, b"abcdefgh")
            .unwrap()
    });
    assert_eq!(got, v4_out(want, ident));
    let reply = write(|v| {
        from_server(pool)
            .icmpv4_echo_reply(id, 7)
            .write(v, b"abcdefgh")
            .unwrap()
    });
    let got = only(h.inject(&reply, Side::Outside, T0), Side::Inside);
    let want = write(|v| {
        to_host(HOST6)
            .icmpv6_echo_reply(0x1234, 7)
            .write(v, b"abcdefgh")
            .unwrap()
    });
    assert_eq!(got, want);
}

#[test]
fn nat44_and_nat64_run_at_once_on_one_pool() {
    let mut h = harness("");
    h.neighbors
        .learn(u32::from(std::net::Ipv4Addr::new(100, 64, 1, 2)), &HOST_MAC);
    let v4 = common::udp("100.64.1.2:6000", "8.8.4.4:53", b"four", false);
    let got4 = only(h.inject(&v4, Side::Inside, T0), Side::Outside);
    let got6 = only(
        h.inject(&udp6(HOST6, 6000, 53, b"six"), Side::Inside, T0),
        Side::Outside,
    );
    let (o4, o6) = (common::out(&got4), chosen(&got6));
    assert_ne!((o4.src.ip().octets(), o4.src.port()), (o6.0, o6.1));
    assert_eq!(h.worker.nat.live_subscribers(), 2);
    // Each answer finds its own host.
    let a4 = write(|v| {
        from_server(o4.src.ip().octets())
            .udp(53, o4.src.port())
            .write(v, b"4")
            .unwrap()
    });
    let a6_ = write(|v| from_server(o6.0).udp(53, o6.1).write(v, b"6").unwrap());
    let back4 = only(h.inject(&a4, Side::Outside, T0), Side::Inside);
    assert_eq!(common::out(&back4).dst, common::sa("100.64.1.2:6000"));
    let back6 = only(h.inject(&a6_, Side::Outside, T0), Side::Inside);
    let want = write(|v| to_host(HOST6).udp(53, 6000).write(v, b"6").unwrap());
    assert_eq!(back6, want);
}

/// The appliance with `nat.hairpinning = false`, `host`'s MAC known.
fn no_hairpinning(host: &str) -> Harness {
    let mut h = Harness::new(&config_with("hairpinning = false\n", ""), T0);
    let nd = h.control.nd().expect("the inside port speaks IPv6");
    nd.neighbors().learn_answer(&a6(host), &HOST_MAC, T0);
    h
}

/// With `nat.hairpinning = false`, a NAT44 subscriber's packet to a NAT64 host's
/// mapping is refused as NAT44's hairpins are (`no_mapping`); with it on (the default)
/// it is served: `hairpinning_joins_nat64_hosts_and_nat44_subscribers`.
#[test]
fn with_hairpinning_off_a_nat44_subscriber_does_not_reach_a_nat64_mapping() {
    let mut h = no_hairpinning(HOST6);
    h.neighbors
        .learn(u32::from(std::net::Ipv4Addr::new(100, 64, 1, 2)), &HOST_MAC);
    let (pool, port, _) = chosen(&only(
        h.inject(&udp6(HOST6, 5000, 53, b"q"), Side::Inside, T0),
        Side::Outside,
    ));
    let to_mapping = std::net::SocketAddrV4::new(pool.into(), port).to_string();
    let f = common::udp("100.64.1.2:6000", &to_mapping, b"hairpin", false);
    assert!(h.inject(&f, Side::Inside, T0).is_empty());
    assert_eq!(h.counters.dropped(DropReason::NoMapping), 1);
    assert_eq!(h.counters.hairpin.get(), 0);
}

#[test]
fn two_hosts_of_one_subscriber_prefix_share_its_port_block() {
    let mut h = harness("");
    let a = chosen(&only(
        h.inject(&udp6(HOST6, 5000, 53, b"a"), Side::Inside, T0),
        Side::Outside,
    ));
    let b = chosen(&only(
        h.inject(&udp6(HOST6B, 5000, 53, b"b"), Side::Inside, T0),
        Side::Outside,
    ));
    assert_eq!(a.0, b.0, "one pool address");
    assert_eq!(a.1 / 64, b.1 / 64, "one block of 64 ports");
    assert_ne!(a.1, b.1);
    assert_eq!(h.worker.nat.live_subscribers(), 1);
    assert_eq!(h.worker.nat.nat64_counts(), (2, 1));
    // Each /128 its own subscriber when configured so.
    let mut h = harness("subscriber_prefix_len = 128");
    for host in [HOST6, HOST6B] {
        only(
            h.inject(&udp6(host, 5000, 53, b"x"), Side::Inside, T0),
            Side::Outside,
        );
    }
    assert_eq!(h.worker.nat.live_subscribers(), 2);
}

#[test]
fn what_nat64_does_not_translate_is_dropped_and_counted() {
    let mut h = harness("");
    let cases: Vec<(Vec<u8>, DropReason)> = vec![
        // Not under the prefix.
        (
            write(|v| v6(HOST6, "2001:db8:9::1").udp(1, 2).write(v, b"x").unwrap()),
            DropReason::Nat64NotPrefix,
        ),
        // Private space under the well-known prefix (RFC 6052 3.1).
        (
            write(|v| {
                v6(HOST6, "64:ff9b::a00:1")
                    .udp(1, 2)
                    .write(v, b"x")
                    .unwrap()
            }),
            DropReason::DestinationReserved,
        ),
        // An ICMPv6 message other than an echo request.
        (
            write(|v| {
                v6(HOST6, SERVER6)
                    .icmpv6_echo_reply(1, 1)
                    .write(v, b"x")
                    .unwrap()
            }),
            DropReason::Nat64IcmpUnsupported,
        ),
        // A TCP segment that opens nothing.
        (
            write(|v| {
                v6(HOST6, SERVER6)
                    .tcp(1, 80, 1, 100)
                    .ack(1)
                    .write(v, &[])
                    .unwrap()
            }),
            DropReason::TcpNoSessionNotSyn,
        ),
    ];
    for (f, r) in cases {
        let before = h.counters.dropped(r);
        assert!(h.inject(&f, Side::Inside, T0).is_empty(), "{r:?}");
        assert_eq!(h.counters.dropped(r), before + 1, "{r:?}");
    }
    assert_eq!(h.worker.nat.live_sessions(), 0);
    assert_eq!(h.worker.nat.nat64_counts(), (0, 0));
}

#[test]
fn without_nat64_ipv6_to_the_prefix_is_not_translated() {
    let mut h = Harness::new(&Config::parse(&text6(""), "t.toml").unwrap(), T0);
    assert!(h
        .inject(&udp6(HOST6, 5000, 53, b"q"), Side::Inside, T0)
        .is_empty());
    assert_eq!(h.counters.dropped(DropReason::Ipv6NotTranslated), 1);
}

#[test]
fn an_answer_to_an_unresolved_host_asks_the_control_lcore_to_solicit_it() {
    // The host's MAC is not known: its first answer is dropped and counted, and the
    // inside port solicits it (byte for byte); once its advertisement answers, the
    // next answer reaches it.
    let mut h = Harness::new(&config(""), T0);
    let host = "2001:db8:ffff::30";
    let (pool, port, _) = chosen(&only(
        h.inject(&udp6(host, 5000, 53, b"q"), Side::Inside, T0),
        Side::Outside,
    ));
    let answer = write(|v| from_server(pool).udp(53, port).write(v, b"a").unwrap());
    let ns = only(h.inject(&answer, Side::Outside, T0), Side::Inside);
    assert_eq!(h.counters.dropped(DropReason::Nat64NeighborUnresolved), 1);
    assert_eq!(ns, solicitation(host));
    // Asked once a second, not once per answer.
    assert!(h.inject(&answer, Side::Outside, T0).is_empty());
    assert_eq!(h.counters.dropped(DropReason::Nat64NeighborUnresolved), 2);
    let na = advertisement(host, HOST_MAC, 0x6000_0000);
    assert!(h.inject(&na, Side::Inside, T0 + 1).is_empty());
    let got = only(h.inject(&answer, Side::Outside, T0 + 1), Side::Inside);
    let want = write(|v| to_host(host).udp(53, 5000).write(v, b"a").unwrap());
    assert_eq!(got, want);
}

/// The inside port's neighbour solicitation for `target` (from its address).
fn solicitation(target: &str) -> Vec<u8> {
    let group = common::sol_node(a6(target));
    common::icmp6_frame(
        INSIDE_MAC,
        common::group_mac(group),
        a6(PORT6),
        group,
        255,
        &common::nd(135, 0, a6(target), 1, INSIDE_MAC),
    )
}

/// `from`'s neighbour advertisement (flags R, S, O as given) of its MAC `mac`, to
/// the inside port.
fn advertisement(from: &str, mac: [u8; 6], flags: u32) -> Vec<u8> {
    common::icmp6_frame(
        mac,
        INSIDE_MAC,
        a6(from),
        a6(PORT6),
        255,
        &common::nd(136, flags, a6(from), 2, mac),
    )
}

/// The IPv6 packet (no Ethernet header) `f` carries, with its hop limit set to `hop`.
fn ip6_of(f: &[u8], hop: u8) -> Vec<u8> {
    let mut p = f[14..].to_vec();
    p[7] = hop;
    p
}

#[test]
fn icmp_errors_about_a_hosts_packet_return_to_it_as_icmpv6_errors() {
    // A server's port unreachable and a router's time exceeded about the translated
    // datagram come back as ICMPv6 destination unreachable (port, code 4) and time
    // exceeded (code 0), from the IPv4 sender embedded in the prefix, quoting the
    // host's datagram as it left the host (the hop limit the IPv4 copy had: 63).
    let mut h = harness("");
    let sent = udp6(HOST6, 5000, 53, b"query");
    let out = only(h.inject(&sent, Side::Inside, T0), Side::Outside);
    let (pool, _, _) = chosen(&out);
    let quoted = out[14..].to_vec();
    let router4 = [9, 9, 9, 9];
    let router6 = "64:ff9b::909:909";
    for (from4, from6, ty4, ty6) in [
        (
            SERVER4,
            SERVER6,
            etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::Port,
            ),
            etherparse::Icmpv6Type::DestinationUnreachable(
                etherparse::icmpv6::DestUnreachableCode::Port,
            ),
        ),
        (
            router4,
            router6,
            etherparse::Icmpv4Type::TimeExceeded(
                etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit,
            ),
            etherparse::Icmpv6Type::TimeExceeded(
                etherparse::icmpv6::TimeExceededCode::HopLimitExceeded,
            ),
        ),
    ] {
        let err = write(|v| {
            PacketBuilder::ethernet2(GW_MAC, OUTSIDE_MAC)
                .ipv4(from4, pool, 64)
                .icmpv4(ty4.clone())
                .write(v, &quoted)
                .unwrap()
        });
        let got = only(h.inject(&err, Side::Outside, T0 + 1), Side::Inside);
        let want = write(|v| {
            PacketBuilder::ethernet2(INSIDE_MAC, HOST_MAC)
                .ipv6(a6(from6), a6(HOST6), 63)
                .icmpv6(ty6)
                .write(v, &ip6_of(&sent, 63))
                .unwrap()
        });
        assert_eq!(got, want, "{ty4:?}");
    }
}

#[test]
fn a_hosts_icmpv6_error_leaves_as_an_icmp_error_from_its_mapping() {
    // The server's datagram reaches the host through its mapping; the host answers
    // with port unreachable: it leaves as ICMP 3/3 from the pool address, quoting the
    // datagram as the server sent it (to the pool address and port; TTL as the host
    // got it, 63; identification 0, no DF, RFC 7915 5.3).
    let mut h = harness("");
    let (pool, port, _) = chosen(&only(
        h.inject(&udp6(HOST6, 5000, 53, b"q"), Side::Inside, T0),
        Side::Outside,
    ));
    let answer = write(|v| from_server(pool).udp(53, port).write(v, b"late").unwrap());
    let got6 = only(h.inject(&answer, Side::Outside, T0), Side::Inside);
    let err6 = write(|v| {
        v6(HOST6, SERVER6)
            .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
                etherparse::icmpv6::DestUnreachableCode::Port,
            ))
            .write(v, &got6[14..])
            .unwrap()
    });
    let got = only(h.inject(&err6, Side::Inside, T0), Side::Outside);
    let mut quoted = write(|v| {
        PacketBuilder::ipv4(SERVER4, pool, 63)
            .udp(53, port)
            .write(v, b"late")
            .unwrap()
    });
    quoted[4..8].copy_from_slice(&[0, 0, 0, 0]);
    quoted[10..12].copy_from_slice(&[0, 0]);
    let c = csum(&[&quoted[..20]]);
    quoted[10..12].copy_from_slice(&c.to_be_bytes());
    let (_, _, ident) = chosen(&got);
    let want = write(|v| {
        to_server(pool, 63)
            .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::Port,
            ))
            .write(v, &quoted)
            .unwrap()
    });
    assert_eq!(got, v4_out(want, ident));
    // An error about a packet no session sent is dropped.
    let mut stray = got6.clone();
    stray[14 + 40 + 2..14 + 40 + 4].copy_from_slice(&4999u16.to_be_bytes());
    let err6 = write(|v| {
        v6(HOST6, SERVER6)
            .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
                etherparse::icmpv6::DestUnreachableCode::Port,
            ))
            .write(v, &stray[14..])
            .unwrap()
    });
    assert!(h.inject(&err6, Side::Inside, T0).is_empty());
    assert_eq!(h.counters.dropped(DropReason::NoMapping), 1);
}

#[test]
fn show_names_a_nat64_sessions_ipv6_host_and_its_subscriber_prefix() {
    use cgnat_dataplane::inspect::{answer, Answer, Filter, Query};
    let mut h = harness("");
    only(
        h.inject(&udp6(HOST6, 5000, 53, b"q"), Side::Inside, T0),
        Side::Outside,
    );
    let nat = &h.worker.nat;
    let Answer::Sessions(rows, _) = answer(nat, 0, &Query::Sessions(Filter::default(), 0, 10), T0)
    else {
        panic!("not a session answer")
    };
    assert_eq!(rows.len(), 1);
    let info = rows[0].info();
    assert_eq!(info.inside, "[2001:db8:ffff::10]:5000");
    assert_eq!(info.remote, "8.8.4.4:53");
    assert!(info.outside.starts_with("198.51.100."), "{info:?}");
    let Answer::Busiest(subs, _) = answer(nat, 0, &Query::Busiest(0, 10), T0) else {
        panic!("not a busiest answer")
    };
    assert_eq!(subs.len(), 1);
    // The /56 the host is under.
    assert_eq!(subs[0].address.to_string(), "2001:db8:ffff::");
    assert_eq!(subs[0].sessions, 1);
    // One subscriber by any address of its prefix: the prefix, its block, sessions.
    let v6 = |s: &str| std::net::IpAddr::V6(s.parse().unwrap());
    let Answer::Subscriber(Some(sub)) =
        answer(nat, 0, &Query::Subscriber(v6("2001:db8:ffff:ab::1")), T0)
    else {
        panic!("no NAT64 subscriber")
    };
    assert_eq!(
        (sub.address, sub.prefix_len, sub.sessions),
        (v6("2001:db8:ffff::"), Some(56), 1)
    );
    assert_eq!(sub.port_blocks.len(), 1);
    assert_eq!(
        sub.port_blocks[0].0.to_string(),
        info.outside.split(':').next().unwrap()
    );
    let Answer::Subscriber(none) = answer(nat, 0, &Query::Subscriber(v6("2001:db8:fffe::10")), T0)
    else {
        panic!("not a subscriber answer")
    };
    assert_eq!(none, None, "another /56 has no state");
    // Its sessions by an address of the prefix (another host's too); none for another.
    let by = |a: &str| {
        let f = Filter {
            subscriber: Some(v6(a)),
            ..Filter::default()
        };
        match answer(nat, 0, &Query::Sessions(f, 0, 10), T0) {
            Answer::Sessions(rows, _) => rows.len(),
            _ => panic!("not a session answer"),
        }
    };
    assert_eq!(
        (by("2001:db8:ffff::10"), by("2001:db8:ffff:ff::99")),
        (1, 1)
    );
    assert_eq!(by("2001:db8:fffe::10"), 0);
}

#[test]
fn a_df_packet_too_big_for_the_inside_gets_fragmentation_needed_with_the_ipv6_mtu_less_20() {
    // 1500 bytes of IPv4 with DF become 1520 of IPv6: more than the inside port's
    // 1500. The server is told 1480 (RFC 7915 4.1), quoting the datagram as it sent
    // it (to the pool address and port).
    let mut h = harness("");
    let (pool, port, _) = chosen(&only(
        h.inject(&udp6(HOST6, 5000, 53, b"q"), Side::Inside, T0),
        Side::Outside,
    ));
    let mut big = write(|v| {
        from_server(pool)
            .udp(53, port)
            .write(v, &[7; 1472])
            .unwrap()
    });
    assert_eq!(big.len(), 14 + 1500);
    big[20] = 0x40; // DF
    big[21] = 0;
    big[24..26].copy_from_slice(&[0, 0]);
    let c = csum(&[&big[14..34]]);
    big[24..26].copy_from_slice(&c.to_be_bytes());
    let got = only(h.inject(&big, Side::Outside, T0), Side::Outside);
    assert_eq!(&got[30..34], &SERVER4, "to the server");
    assert_eq!(
        (got[23], got[34], got[35]),
        (1, 3, 4),
        "ICMP fragmentation needed"
    );
    assert_eq!(u16::from_be_bytes([got[40], got[41]]), 1480);
    assert_eq!(csum(&[&got[14..34]]), 0, "IP header checksum");
    assert_eq!(csum(&[&got[34..]]), 0, "ICMP checksum");
    // The quote: the server's header as sent (DF, to the pool address and port).
    let q = &got[42..];
    assert_eq!(&q[..20], &big[14..34]);
    assert_eq!(&q[20..24], &big[34..38], "ports as sent");
    assert_eq!(h.counters.dropped(DropReason::XlatTooBig), 1);
}

#[test]
fn the_translator_answers_a_host_with_icmpv6_time_exceeded_and_packet_too_big() {
    // Hop limit 1: time exceeded, no session made (RFC 7915 5.1). Too big for an
    // outside MTU of 1280 once IPv4: packet too big with 1280 + 20 (the quote cut to
    // what 1280 bytes of ICMPv6 hold, RFC 4443 2.4). From the inside port's address.
    let text = text6("").replace(
        "gateway = \"203.0.113.254\"",
        "gateway = \"203.0.113.254\"\nmtu = 1280",
    );
    let cfg = Config::parse(&format!("{text}\n[nat64]\n"), "t.toml").unwrap();
    let mut h = Harness::new(&cfg, T0);
    let nd = h.control.nd().unwrap();
    nd.neighbors().learn_answer(&a6(HOST6), &HOST_MAC, T0);
    let low = write(|v| {
        PacketBuilder::ethernet2(HOST_MAC, INSIDE_MAC)
            .ipv6(a6(HOST6), a6(SERVER6), 1)
            .udp(5000, 33434)
            .write(v, b"trace")
            .unwrap()
    });
    let got = only(h.inject(&low, Side::Inside, T0), Side::Inside);
    let want = port_error(
        HOST6,
        etherparse::Icmpv6Type::TimeExceeded(
            etherparse::icmpv6::TimeExceededCode::HopLimitExceeded,
        ),
        &low[14..],
    );
    assert_eq!(got, want);
    assert_eq!(h.worker.nat.live_sessions(), 0, "no session for it");
    assert_eq!(h.counters.dropped(DropReason::XlatHopLimit), 1);
    let big = udp6(HOST6, 5000, 53, &[9; 1400 - 48]);
    assert_eq!(big.len(), 14 + 1400);
    let got = only(h.inject(&big, Side::Inside, T0), Side::Inside);
    let want = port_error(
        HOST6,
        etherparse::Icmpv6Type::PacketTooBig { mtu: 1300 },
        &big[14..14 + 1280 - 48],
    );
    assert_eq!(got, want);
    assert_eq!(h.counters.dropped(DropReason::XlatTooBig), 1);
    // An ICMPv6 error is never answered with one.
    let err = write(|v| {
        v6(HOST6, SERVER6)
            .icmpv6(etherparse::Icmpv6Type::PacketTooBig { mtu: 1280 })
            .write(v, &big[14..200])
            .unwrap()
    });
    let mut err = err;
    err[14 + 7] = 1;
    assert!(h.inject(&err, Side::Inside, T0).is_empty());
}

#[test]
fn a_session_a_limit_refuses_gets_admin_prohibited_when_icmp_on_limit() {
    let text = text6("max_sessions_per_subscriber = 1\nicmp_on_limit = true");
    let cfg = Config::parse(&format!("{text}\n[nat64]\n"), "t.toml").unwrap();
    let mut h = Harness::new(&cfg, T0);
    only(
        h.inject(&udp6(HOST6, 5000, 53, b"one"), Side::Inside, T0),
        Side::Outside,
    );
    let second = udp6(HOST6B, 5001, 53, b"two");
    let got = only(h.inject(&second, Side::Inside, T0), Side::Inside);
    let want = port_error(
        HOST6B,
        etherparse::Icmpv6Type::DestinationUnreachable(
            etherparse::icmpv6::DestUnreachableCode::Prohibited,
        ),
        &second[14..],
    );
    assert_eq!(got, want);
    assert_eq!(
        h.counters.dropped(DropReason::SubscriberSessionLimit),
        1,
        "the /56's one session is taken"
    );
    assert_eq!(
        h.worker.nat.nat64_counts(),
        (1, 1),
        "no handle left for the refused host"
    );
}

#[test]
fn mutated_frames_never_panic_and_what_leaves_is_whole() {
    // 20,000 frames both ways, each a valid NAT64 frame (UDP, TCP, echo, an ICMPv6
    // error, an answer, an ICMP error) with a few bytes changed and maybe cut short:
    // no panic, and every frame that leaves is a whole IPv4 packet with a valid header
    // checksum or a whole IPv6 packet (deterministic; more iterations by hand).
    let mut h = harness("");
    let (pool, port, _) = chosen(&only(
        h.inject(&udp6(HOST6, 5000, 53, b"q"), Side::Inside, T0),
        Side::Outside,
    ));
    let answer = write(|v| from_server(pool).udp(53, port).write(v, b"answer").unwrap());
    let got6 = only(h.inject(&answer, Side::Outside, T0), Side::Inside);
    let seeds: Vec<(Vec<u8>, Side)> = vec![
        (udp6(HOST6, 5000, 53, b"query"), Side::Inside),
        (
            write(|v| {
                v6(HOST6, SERVER6)
                    .tcp(40000, 80, 1, 64000)
                    .syn()
                    .write(v, &[])
                    .unwrap()
            }),
            Side::Inside,
        ),
        (
            write(|v| {
                v6(HOST6B, SERVER6)
                    .icmpv6_echo_request(1, 2)
                    .write(v, b"ping")
                    .unwrap()
            }),
            Side::Inside,
        ),
        (
            write(|v| {
                v6(HOST6, SERVER6)
                    .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
                        etherparse::icmpv6::DestUnreachableCode::Port,
                    ))
                    .write(v, &got6[14..])
                    .unwrap()
            }),
            Side::Inside,
        ),
        (answer.clone(), Side::Outside),
        (
            write(|v| {
                from_server(pool)
                    .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                        etherparse::icmpv4::DestUnreachableHeader::Port,
                    ))
                    .write(v, &answer[14..])
                    .unwrap()
            }),
            Side::Outside,
        ),
    ];
    // Fragments both ways (first and later ones, out of order once mutated), and a
    // packet cut into IPv6 fragments.
    let mut seeds = seeds;
    let long = data(200);
    for f in frags6(&udp6(HOST6, 5000, 53, &long), &[64], 0x4242) {
        seeds.push((f, Side::Inside));
    }
    for f in frags4(&self::answer(pool, port, &long, 0x4343), &[64]) {
        seeds.push((f, Side::Outside));
    }
    seeds.push((self::answer(pool, port, &data(1400), 0x4444), Side::Outside));
    let left = common::mutated_run(&mut h, &seeds, 20_000, 0x9e37_79b9_7f4a_7c15, T0);
    // Many mutations keep a frame translatable (payload bytes; an IPv4 header byte
    // changed breaks its checksum): both ways were run.
    assert!(left[0] > 1000 && left[1] > 100, "{left:?}");
}

#[test]
fn under_a_network_specific_prefix_any_ipv4_destination_but_the_appliance_is_reached() {
    // 2001:db8:64::/96 may carry non-global addresses (RFC 6052 3.1 restricts only
    // the Well-Known Prefix): 192.0.2.10 is reached; the outside port's own address
    // is not (local_unsupported).
    let mut h = harness("prefix = \"2001:db8:64::/96\"");
    let to = |dst: &str| write(|v| v6(HOST6, dst).udp(5000, 53).write(v, b"x").unwrap());
    let got = only(
        h.inject(&to("2001:db8:64::c000:20a"), Side::Inside, T0),
        Side::Outside,
    );
    assert_eq!(&got[30..34], &[192, 0, 2, 10]);
    assert!(h
        .inject(&to("2001:db8:64::cb00:7101"), Side::Inside, T0)
        .is_empty());
    assert_eq!(h.counters.dropped(DropReason::LocalUnsupported), 1);
    // Nor the outside subnet's broadcast address.
    assert!(h
        .inject(&to("2001:db8:64::cb00:71ff"), Side::Inside, T0)
        .is_empty());
    assert_eq!(h.counters.dropped(DropReason::DestinationReserved), 1);
}

/// A host, its port, and the pool address and port of its mapping.
type Mapped = (String, u16, [u8; 4], u16);

/// With several workers, all hosts of a subscriber prefix are translated by one
/// worker, the prefix's owner, whichever queue their frames arrive on. A frame that
/// reaches another worker is handed over. The subscriber then has one block on one
/// worker, and the answers, which go to the owner of the pool port, find its sessions.
/// Before the handover, each worker made the prefix a subscriber of its own, with a
/// block from its own share of the pool.
#[test]
fn with_two_workers_a_subscriber_prefix_is_translated_by_its_owner_alone() {
    use cgnat_dataplane::buf::{PacketBuf, VecBuf};
    use cgnat_dataplane::neighbors::Neighbors6;
    use cgnat_dataplane::pipeline::Verdict;
    use std::sync::Arc;

    // The inside port's prefix is 2001:db8::/32: every host below is on-link.
    let text = text6("allocation = \"port-block\"\nblock_size = 64\n")
        .replace(&format!("{PORT6}/64"), &format!("{PORT6}/32"));
    let cfg = Config::parse(&format!("{text}\n[nat64]\n"), "t.toml").unwrap();
    let (mut ws, _) = common::build_workers(&cfg, 2, None, None);
    let n6 = Arc::new(Neighbors6::new(4096));
    for w in &mut ws {
        w.set_neighbors6(Some(n6.clone()));
    }
    // A frame given to worker `at`, then to the worker it is handed to, if any:
    // the verdict, the frame, and the worker that processed it last.
    let through = |ws: &mut Vec<_>, at: usize, frame: &[u8], from: Side, now: u32| {
        let ws: &mut Vec<cgnat_dataplane::pipeline::Worker<VecBuf>> = ws;
        let mut buf = VecBuf::new(frame);
        match ws[at].process(&mut buf, from, now) {
            Verdict::Handoff(w, side) => {
                let w = usize::from(w);
                (ws[w].process_handed(&mut buf, side, now), buf, w)
            }
            v => (v, buf, at),
        }
    };
    let mut owned = [0u32; 2];
    // A host of each worker and one of its mappings (for the hairpin below).
    let mut mapped: [Option<Mapped>; 2] = [None, None];
    for s in 0..16u32 {
        let hosts = [
            format!("2001:db8:ff{s:02x}:1::10"),
            format!("2001:db8:ff{s:02x}:2::20"),
        ];
        // (worker, pool address, block of 64 ports) of every frame of the prefix.
        let mut placed = Vec::new();
        for (k, host) in hosts.iter().enumerate() {
            n6.learn_answer(&a6(host), &HOST_MAC, T0);
            for f in 0..2u16 {
                // Spread over the two queues, as RSS would.
                let at = (k + usize::from(f)) % 2;
                let sport = 5000 + f;
                let (v, buf, w) =
                    through(&mut ws, at, &udp6(host, sport, 53, b"q"), Side::Inside, T0);
                assert_eq!(
                    v,
                    Verdict::Tx(Side::Outside),
                    "{host}:{sport} from queue {at}: {:02x?}",
                    buf.data()
                );
                let (pool, port, _) = chosen(buf.data());
                placed.push((w, pool, port / 64));
                mapped[w] = Some((host.clone(), sport, pool, port));
                // The answer, given to the other worker first: it goes to the port's
                // owner, which has the session.
                let answer = write(|v| from_server(pool).udp(53, port).write(v, b"a").unwrap());
                let (v, buf, _) = through(&mut ws, 1 - w, &answer, Side::Outside, T0 + 1);
                assert_eq!(v, Verdict::Tx(Side::Inside), "the answer to {host}:{sport}");
                let want = write(|v| to_host(host).udp(53, sport).write(v, b"a").unwrap());
                assert_eq!(buf.data(), &want[..]);
            }
        }
        assert!(
            placed.iter().all(|p| *p == placed[0]),
            "subscriber {s}: one worker, one address, one block: {placed:?}"
        );
        owned[placed[0].0] += 1;
    }
    assert!(
        owned[0] > 0 && owned[1] > 0,
        "both workers own prefixes: {owned:?}"
    );
    // Each subscriber is known to its owner only.
    let subs: u32 = ws.iter().map(|w| w.nat.nat64_counts().1 as u32).sum();
    assert_eq!(subs, 16);
    // Hairpinning across workers: the first worker's host to the second's mapping,
    // given to the second worker's queue. It is handed to the sender's owner, which
    // translates it out and hands it, as from outside, to the owner of the mapping's
    // port, which delivers it.
    let (Some((a, _, _, _)), Some((b, b_port, b_pool, b_out))) = (&mapped[0], &mapped[1]) else {
        unreachable!("both workers own prefixes")
    };
    let mut dst = a6("64:ff9b::");
    dst[12..].copy_from_slice(b_pool);
    let f = udp6_between(a6(a), dst, 9000, *b_out, b"across");
    let mut buf = VecBuf::new(&f);
    let (mut v, mut at, mut hops) = (ws[1].process(&mut buf, Side::Inside, T0 + 2), 1, 0);
    while let Verdict::Handoff(w, side) = v {
        hops += 1;
        at = usize::from(w);
        v = ws[at].process_handed(&mut buf, side, T0 + 2);
    }
    assert_eq!((v, at, hops), (Verdict::Tx(Side::Inside), 1, 2));
    assert_eq!(&buf.data()[38..54], &a6(b), "to the second worker's host");
    assert_eq!(
        u16::from_be_bytes([buf.data()[56], buf.data()[57]]),
        *b_port
    );
}

/// Subscribers behind a router (a routed or delegated prefix, as a BNG or a mobile
/// gateway has them): with `ports[].gateway6`, an answer to a host off the port's
/// links goes to the router. The port solicits the router (not the host), learns it
/// from its advertisement, and the answer leaves to the router's MAC. A host on the
/// port's link is still reached directly.
#[test]
fn answers_to_hosts_off_the_ports_link_go_to_the_ipv6_gateway() {
    const ROUTER: &str = "2001:db8:ffff::fe";
    const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x66, 0x01];
    let text = text6("allocation = \"port-block\"\nblock_size = 64\n").replace(
        &format!("ipv6 = [\"{PORT6}/64\"]"),
        &format!("ipv6 = [\"{PORT6}/64\"]\ngateway6 = \"{ROUTER}\""),
    );
    let cfg = Config::parse(&format!("{text}\n[nat64]\n"), "t.toml").unwrap();
    let mut h = Harness::new(&cfg, T0);
    // A host of a delegated prefix, behind the router.
    let host = "2001:db8:100:7::10";
    let mut out = Vec::new();
    PacketBuilder::ethernet2(ROUTER_MAC, INSIDE_MAC)
        .ipv6(a6(host), a6(SERVER6), 64)
        .udp(5000, 53)
        .write(&mut out, b"q")
        .unwrap();
    let (pool, port, _) = chosen(&only(h.inject(&out, Side::Inside, T0), Side::Outside));
    let answer = write(|v| from_server(pool).udp(53, port).write(v, b"a").unwrap());
    // The router is solicited, not the host.
    let ns = only(h.inject(&answer, Side::Outside, T0), Side::Inside);
    assert_eq!(h.counters.dropped(DropReason::Nat64NeighborUnresolved), 1);
    assert_eq!(ns, solicitation(ROUTER));
    let na = advertisement(ROUTER, ROUTER_MAC, 0xe000_0000);
    assert!(h.inject(&na, Side::Inside, T0 + 1).is_empty());
    let got = only(h.inject(&answer, Side::Outside, T0 + 1), Side::Inside);
    let mut want = write(|v| to_host(host).udp(53, 5000).write(v, b"a").unwrap());
    want[..6].copy_from_slice(&ROUTER_MAC);
    assert_eq!(got, want, "to the router's MAC");
    // A host on the port's link is reached directly (its own MAC).
    let nd = h.control.nd().unwrap();
    nd.neighbors().learn_answer(&a6(HOST6), &HOST_MAC, T0 + 1);
    let (pool, port, _) = chosen(&only(
        h.inject(&udp6(HOST6, 6000, 53, b"q"), Side::Inside, T0 + 1),
        Side::Outside,
    ));
    let answer = write(|v| from_server(pool).udp(53, port).write(v, b"b").unwrap());
    let got = only(h.inject(&answer, Side::Outside, T0 + 1), Side::Inside);
    let want = write(|v| to_host(HOST6).udp(53, 6000).write(v, b"b").unwrap());
    assert_eq!(got, want);
}

/// RFC 4443 2.4(c): an ICMPv6 error quotes as much of the packet as fits in 1280
/// bytes, so a host's packet too big about a full-sized answer quotes it truncated. It
/// leaves as ICMP fragmentation needed from the pool address to the server, with the
/// MTU less 20 (RFC 7915 5.2), quoting the server's datagram as it sent it. It is
/// taken from the host, from another address of the host's subscriber prefix (a CLAT
/// on the host sends it from its own address), not from another subscriber's
/// (no_mapping). Before, a truncated quote was dropped (`xlat_truncated`) and so was an
/// error from any address but the quoted destination: the server never lowered its
/// MTU and a download through a CLAT stalled.
#[test]
fn a_packet_too_big_quoting_a_truncated_answer_reaches_the_server() {
    let mut h = harness("");
    let (pool, port, _) = chosen(&only(
        h.inject(&udp6(HOST6, 5000, 53, b"q"), Side::Inside, T0),
        Side::Outside,
    ));
    let big = vec![0x5a; 1400];
    let answer = write(|v| from_server(pool).udp(53, port).write(v, &big).unwrap());
    let got6 = only(h.inject(&answer, Side::Outside, T0), Side::Inside);
    // The quote: as much as fits in 1280 bytes of ICMPv6 (1232 of the packet).
    let quote = &got6[14..14 + 1232];
    let ptb = |from: &str| {
        write(|v| {
            v6(from, SERVER6)
                .icmpv6(etherparse::Icmpv6Type::PacketTooBig { mtu: 1400 })
                .write(v, quote)
                .unwrap()
        })
    };
    for from in [HOST6, "2001:db8:ffff:0:1::464"] {
        let got = only(h.inject(&ptb(from), Side::Inside, T0), Side::Outside);
        let ip = etherparse::Ipv4HeaderSlice::from_slice(&got[14..]).unwrap();
        assert_eq!(
            (ip.source(), ip.destination(), ip.protocol().0),
            (pool, SERVER4, 1),
            "from {from}"
        );
        let icmp = &got[34..];
        assert_eq!((icmp[0], icmp[1]), (3, 4), "fragmentation needed");
        assert_eq!(
            u16::from_be_bytes([icmp[6], icmp[7]]),
            1380,
            "the MTU less 20"
        );
        assert_eq!(csum(&[icmp]), 0, "ICMP checksum");
        // The quoted datagram as the server sent it: to the pool address and port,
        // its total length the whole datagram's.
        let q = &icmp[8..];
        assert_eq!(q[0], 0x45);
        assert_eq!(u16::from_be_bytes([q[2], q[3]]), 20 + 8 + 1400);
        assert_eq!((&q[12..16], &q[16..20]), (&SERVER4[..], &pool[..]));
        assert_eq!(
            (
                u16::from_be_bytes([q[20], q[21]]),
                u16::from_be_bytes([q[22], q[23]])
            ),
            (53, port)
        );
    }
    // From another subscriber: not taken.
    assert!(h
        .inject(&ptb("2001:db8:fffe::10"), Side::Inside, T0)
        .is_empty());
    assert_eq!(h.counters.dropped(DropReason::NoMapping), 1);
    assert_eq!(h.counters.dropped(DropReason::XlatTruncated), 0);
}

/// With several workers, an ICMPv6 error goes to the worker of the host its quoted
/// packet went to, not of its sender: the router toward the hosts (`gateway6`) sends
/// packet too big about answers to hosts of either worker, and each reaches the server.
#[test]
fn with_two_workers_a_routers_packet_too_big_goes_to_the_quoted_hosts_owner() {
    use cgnat_dataplane::buf::{PacketBuf, VecBuf};
    use cgnat_dataplane::neighbors::Neighbors6;
    use cgnat_dataplane::pipeline::Verdict;
    use std::sync::Arc;

    const ROUTER: &str = "2001:db8:ffff::fe";
    // The hosts are off the port's /64, behind the router.
    let text = text6("allocation = \"port-block\"\nblock_size = 64\n").replace(
        &format!("ipv6 = [\"{PORT6}/64\"]"),
        &format!("ipv6 = [\"{PORT6}/64\"]\ngateway6 = \"{ROUTER}\""),
    );
    let cfg = Config::parse(&format!("{text}\n[nat64]\n"), "t.toml").unwrap();
    let (mut ws, _) = common::build_workers(&cfg, 2, None, None);
    let n6 = Arc::new(Neighbors6::new(4096));
    n6.learn_answer(&a6(ROUTER), &HOST_MAC, T0);
    for w in &mut ws {
        w.set_neighbors6(Some(n6.clone()));
    }
    let run =
        |ws: &mut Vec<cgnat_dataplane::pipeline::Worker<VecBuf>>, at: usize, f: &[u8], from| {
            let mut buf = VecBuf::new(f);
            let v = match ws[at].process(&mut buf, from, T0) {
                Verdict::Handoff(w, side) => ws[usize::from(w)].process_handed(&mut buf, side, T0),
                v => v,
            };
            (v, buf)
        };
    let mut owners = [0; 2];
    for k in 0..8u16 {
        let host = format!("2001:db8:{:x}::10", 0x100 + k);
        let (v, buf) = run(&mut ws, 0, &udp6(&host, 5000, 53, b"q"), Side::Inside);
        assert_eq!(v, Verdict::Tx(Side::Outside));
        let (pool, port, _) = chosen(buf.data());
        owners[usize::from(ws[1].nat.handle6(u128::from_be_bytes(a6(&host))).is_some())] += 1;
        let answer = write(|v| from_server(pool).udp(53, port).write(v, &[7; 600]).unwrap());
        let (v, got6) = run(&mut ws, 0, &answer, Side::Outside);
        assert_eq!(v, Verdict::Tx(Side::Inside));
        // The router's packet too big, arriving on the first worker's queue.
        let ptb = write(|v| {
            v6(ROUTER, SERVER6)
                .icmpv6(etherparse::Icmpv6Type::PacketTooBig { mtu: 1280 })
                .write(v, &got6.data()[14..])
                .unwrap()
        });
        let (v, got) = run(&mut ws, 0, &ptb, Side::Inside);
        assert_eq!(v, Verdict::Tx(Side::Outside), "the error about {host}");
        assert_eq!(&got.data()[34..36], &[3, 4]);
    }
    assert!(
        owners[0] > 0 && owners[1] > 0,
        "hosts on both workers: {owners:?}"
    );
}

// ---- Fragments (RFC 7915 4.1, 5.1.1; RFC 6146 3.5) ----

/// An IPv4 frame's datagram cut at payload offsets `cuts` (common::fragment), its TTL
/// kept.
fn frags4(frame: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    common::fragment(frame, cuts)
        .into_iter()
        .map(|mut f| {
            f[22] = frame[22];
            f[24..26].copy_from_slice(&[0, 0]);
            let c = csum(&[&f[14..34]]);
            f[24..26].copy_from_slice(&c.to_be_bytes());
            f
        })
        .collect()
}

/// An IPv6 frame's payload (no extension headers) cut at offsets `cuts` into
/// fragments, each with a fragment header (RFC 8200 4.5, written by hand) of `id`.
fn frags6(frame: &[u8], cuts: &[usize], id: u32) -> Vec<Vec<u8>> {
    let payload = &frame[54..];
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(payload.len());
    bounds
        .windows(2)
        .map(|w| {
            let mut f = frame[..54].to_vec();
            f[20] = 44;
            f[18..20].copy_from_slice(&((8 + w[1] - w[0]) as u16).to_be_bytes());
            let more = u16::from(w[1] < payload.len());
            f.extend_from_slice(&[frame[20], 0]);
            f.extend_from_slice(&((w[0] as u16) | more).to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
            f.extend_from_slice(&payload[w[0]..w[1]]);
            f
        })
        .collect()
}

/// Sends `frames` in from `side`, one by one; returns all that left, each with its
/// side checked.
fn each(h: &mut Harness, frames: &[&Vec<u8>], side: Side, now: u32) -> Vec<Vec<u8>> {
    let mut out = vec![];
    for f in frames {
        for (s, g) in h.inject(f, side, now) {
            assert_eq!(s, side.other());
            out.push(g);
        }
    }
    out
}

/// What a first fragment and the later ones held for it gave: the first, then the
/// others in any order.
fn released(mut got: Vec<Vec<u8>>, mut want: Vec<Vec<u8>>) {
    assert_eq!(got.len(), want.len());
    assert_eq!(got[0], want[0], "the first fragment leaves first");
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

#[test]
fn a_hosts_ipv6_fragments_leave_as_ipv4_fragments_of_its_session_in_any_order() {
    let mut h = harness("");
    let payload = data(200);
    // In order: the first fragment (UDP header and 56 bytes) makes the session.
    let frags = frags6(&udp6(HOST6, 5000, 53, &payload), &[64, 136], 0x1234_5678);
    let got = each(&mut h, &[&frags[0]], Side::Inside, T0);
    assert_eq!(got.len(), 1);
    let (pool, port, ident) = chosen(&got[0]);
    assert_eq!(ident, 0x5678, "the low 16 bits of the identification");
    let whole4 = v4_out(
        write(|v| {
            to_server(pool, 63)
                .udp(port, 53)
                .write(v, &payload)
                .unwrap()
        }),
        0x5678,
    );
    // The first fragment's checksum, updated by the pseudo-header and port delta,
    // is the whole IPv4 datagram's.
    let want = frags4(&whole4, &[64, 136]);
    assert_eq!(got[0], want[0]);
    let rest = each(&mut h, &[&frags[1], &frags[2]], Side::Inside, T0);
    assert_eq!(rest, want[1..].to_vec());
    assert_eq!(h.worker.nat.live_sessions(), 1);

    // Out of order: the later fragments wait for the first, then follow it.
    let frags = frags6(&udp6(HOST6, 5000, 53, &payload), &[64, 136], 0x0000_9abc);
    assert!(each(&mut h, &[&frags[2], &frags[1]], Side::Inside, T0 + 1).is_empty());
    assert_eq!(h.counters.fragments_held.get(), 2);
    let got = each(&mut h, &[&frags[0]], Side::Inside, T0 + 1);
    released(got, frags4(&with_ident(whole4.clone(), 0x9abc), &[64, 136]));
    assert_eq!(h.counters.fragments_translated.get(), 6);
    assert_eq!(h.worker.nat.live_sessions(), 1);
}

/// `f` with IPv4 identification `id` (header checksum recomputed).
fn with_ident(f: Vec<u8>, id: u16) -> Vec<u8> {
    common::with_ident(f, id)
}

/// A session of HOST6 port 5000 to the server's port 53: its pool address and port.
fn session(h: &mut Harness) -> ([u8; 4], u16) {
    let got = only(
        h.inject(&udp6(HOST6, 5000, 53, b"q"), Side::Inside, T0),
        Side::Outside,
    );
    let (pool, port, _) = chosen(&got);
    (pool, port)
}

/// The server's UDP answer to (`pool`, `port`) with `payload`, DF clear,
/// identification `id`.
fn answer(pool: [u8; 4], port: u16, payload: &[u8], id: u16) -> Vec<u8> {
    let mut f = write(|v| from_server(pool).udp(53, port).write(v, payload).unwrap());
    f[20] &= !0x40;
    with_ident(f, id)
}

#[test]
fn a_servers_ipv4_fragments_return_to_the_host_as_ipv6_fragments_in_any_order() {
    let mut h = harness("");
    let (pool, port) = session(&mut h);
    let payload = data(200);
    let whole6 = write(|v| to_host(HOST6).udp(53, 5000).write(v, &payload).unwrap());
    // The identification zero-extended, offsets and M copied (RFC 7915 4.1), the
    // first fragment's checksum updated by the delta.
    let want = frags6(&whole6, &[64, 136], 0xbeef);
    let frags = frags4(&answer(pool, port, &payload, 0xbeef), &[64, 136]);
    let got = each(
        &mut h,
        &[&frags[0], &frags[1], &frags[2]],
        Side::Outside,
        T0,
    );
    assert_eq!(got, want);

    let want = frags6(&whole6, &[64, 136], 0x0102);
    let frags = frags4(&answer(pool, port, &payload, 0x0102), &[64, 136]);
    assert!(each(&mut h, &[&frags[2], &frags[1]], Side::Outside, T0).is_empty());
    released(each(&mut h, &[&frags[0]], Side::Outside, T0), want);
    assert_eq!(h.counters.fragments_held.get(), 2);
}

#[test]
fn an_ipv4_packet_without_df_over_lowest_ipv6_mtu_is_cut_into_ipv6_fragments() {
    let mut h = harness("");
    let (pool, port) = session(&mut h);
    // Whole, 1400 bytes of data: 40 + 1408 as IPv6, cut at 1232 (1280 - 48).
    let payload = data(1400);
    let whole6 = write(|v| to_host(HOST6).udp(53, 5000).write(v, &payload).unwrap());
    let got = each(
        &mut h,
        &[&answer(pool, port, &payload, 0x0abc)],
        Side::Outside,
        T0,
    );
    assert_eq!(got, frags6(&whole6, &[1232], 0x0abc));
    assert!(got.iter().all(|f| f.len() <= 14 + 1280));
    // A 3000-byte datagram the server sent in 1500-byte fragments: each of the first
    // two is cut again (M kept), the last fits.
    let payload = data(3000);
    let whole6 = write(|v| to_host(HOST6).udp(53, 5000).write(v, &payload).unwrap());
    let frags = frags4(&answer(pool, port, &payload, 0x0def), &[1480, 2960]);
    let got = each(
        &mut h,
        &[&frags[0], &frags[1], &frags[2]],
        Side::Outside,
        T0,
    );
    assert_eq!(
        got,
        frags6(&whole6, &[1232, 1480, 2712, 2960], 0x0def),
        "fragments of 1232 and 248 bytes, then the last"
    );
    assert_eq!(h.counters.fragments_split6.get(), 3);
    // With DF, as IPv6 (1508 bytes) too big for the inside port: fragmentation
    // needed (as before). Whole with DF at 1448 bytes (no cutting to 1280).
    let mut df = answer(pool, port, &payload[..1420], 6);
    df[20] |= 0x40;
    let out = h.inject(&with_ident(df, 6), Side::Outside, T0);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].0, out[0].1.len()),
        (Side::Inside, 14 + 40 + 8 + 1420)
    );
    let mut df = answer(pool, port, &payload[..1460], 7);
    df[20] |= 0x40;
    let df = with_ident(df, 7);
    let before = h.counters.dropped(DropReason::XlatTooBig);
    let out = h.inject(&df, Side::Outside, T0);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, Side::Outside);
    assert_eq!(h.counters.dropped(DropReason::XlatTooBig), before + 1);
    // No buffer for the further fragments: dropped whole, counted.
    h.worker.set_alloc(Box::new(|| None));
    let f = answer(pool, port, &payload[..1400], 8);
    assert!(h.inject(&f, Side::Outside, T0).is_empty());
    assert_eq!(h.counters.dropped(DropReason::Nat64SplitNoBuffer), 1);
}

#[test]
fn fragments_past_the_limits_overlapping_or_whose_first_never_comes_are_dropped_and_counted() {
    let mut h = harness("");
    let (pool, port) = session(&mut h);
    let payload = data(200);
    // Later fragments of 17 datagrams whose first never comes: a source holds 16.
    for id in 0..17u32 {
        let frags = frags6(&udp6(HOST6, 6000, 53, &payload), &[64], 0x7000 + id);
        assert!(h.inject(&frags[1], Side::Inside, T0).is_empty());
    }
    assert_eq!(h.counters.fragments_held.get(), 16);
    assert_eq!(h.counters.dropped(DropReason::FragmentSourceLimit), 1);
    // Another host of the same /56 subscriber shares its share.
    let frags = frags6(&udp6(HOST6B, 6000, 53, &payload), &[64], 0x7100);
    assert!(h.inject(&frags[1], Side::Inside, T0).is_empty());
    assert_eq!(h.counters.dropped(DropReason::FragmentSourceLimit), 2);
    // Held past the timeout (15 s): dropped, counted.
    h.expire(T0 + 16);
    assert_eq!(h.counters.dropped(DropReason::FragmentTimeout), 16);
    let frags = frags6(&udp6(HOST6B, 6000, 53, &payload), &[64], 0x7100);
    assert!(h.inject(&frags[1], Side::Inside, T0 + 16).is_empty());
    assert_eq!(h.counters.fragments_held.get(), 17, "room again");

    // A later fragment overlapping the first (which carries the translated UDP
    // header), both ways.
    let frags = frags6(&udp6(HOST6, 5000, 53, &payload), &[64], 0x7200);
    assert_eq!(each(&mut h, &[&frags[0]], Side::Inside, T0 + 16).len(), 1);
    let mut overlap = frags[1].clone();
    overlap[56..58].copy_from_slice(&(8u16 | 1).to_be_bytes());
    assert!(h.inject(&overlap, Side::Inside, T0 + 16).is_empty());
    assert_eq!(h.counters.dropped(DropReason::Nat64FragmentOverlap), 1);
    let frags = frags4(&answer(pool, port, &payload, 0x7300), &[64]);
    assert_eq!(each(&mut h, &[&frags[0]], Side::Outside, T0 + 16).len(), 1);
    let overlap = common::fragment(&answer(pool, port, &payload, 0x7300), &[8])
        .pop()
        .unwrap();
    assert!(h.inject(&overlap, Side::Outside, T0 + 16).is_empty());
    assert_eq!(h.counters.dropped(DropReason::Nat64FragmentOverlap), 2);

    // A fragmented ICMPv6 echo (RFC 7915 1.2): refused before any session is made.
    let echo = write(|v| {
        v6(HOST6, SERVER6)
            .icmpv6_echo_request(9, 1)
            .write(v, &payload)
            .unwrap()
    });
    let sessions = h.worker.nat.live_sessions();
    assert!(h
        .inject(&frags6(&echo, &[64], 0x7400)[0], Side::Inside, T0 + 16)
        .is_empty());
    assert_eq!(h.counters.dropped(DropReason::XlatFragmentedIcmp), 1);
    assert_eq!(h.worker.nat.live_sessions(), sessions);
}

#[test]
fn a_servers_fragments_reach_the_nat64_sessions_worker_whichever_receives_them() {
    let mut h = Harness::with_workers(&config(""), 2, T0);
    let nd = h.control.nd().expect("the inside port speaks IPv6");
    nd.neighbors().learn_answer(&a6(HOST6), &HOST_MAC, T0);
    let (pool, port) = session(&mut h);
    let payload = data(200);
    let whole6 = write(|v| to_host(HOST6).udp(53, 5000).write(v, &payload).unwrap());
    let orders: [[usize; 3]; 3] = [[0, 1, 2], [2, 1, 0], [1, 2, 0]];
    for (n, order) in orders.iter().enumerate() {
        let id = 0x0600 + n as u16;
        let frags = frags4(&answer(pool, port, &payload, id), &[64, 136]);
        let mut got = vec![];
        for (k, &i) in order.iter().enumerate() {
            // Fragments spread on addresses alone: any worker receives any.
            for (s, f) in h.inject_at(((k + n) % 2) as u16, &frags[i], Side::Outside, T0) {
                assert_eq!(s, Side::Inside);
                got.push(f);
            }
        }
        got.sort();
        let mut want = frags6(&whole6, &[64, 136], u32::from(id));
        want.sort();
        assert_eq!(got, want, "order {order:?}");
    }
}

/// An IPv6 UDP frame from a host (its MAC) to the inside port.
fn udp6_between(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    write(|v| {
        PacketBuilder::ethernet2(HOST_MAC, INSIDE_MAC)
            .ipv6(src, dst, 64)
            .udp(sport, dport)
            .write(v, payload)
            .unwrap()
    })
}

/// The source address, source port, destination port and payload of an IPv6 UDP
/// frame, with its checksum checked.
fn udp6_of(f: &[u8]) -> ([u8; 16], u16, u16, Vec<u8>) {
    let p = etherparse::SlicedPacket::from_ethernet(f).expect("a frame");
    let Some(etherparse::NetSlice::Ipv6(ip)) = p.net else {
        panic!("IPv6 expected: {f:?}")
    };
    let Some(etherparse::TransportSlice::Udp(u)) = p.transport else {
        panic!("UDP expected")
    };
    let want = u
        .to_header()
        .calc_checksum_ipv6(&ip.header().to_header(), u.payload())
        .unwrap();
    assert_eq!(u.checksum(), want, "UDP checksum");
    (
        ip.header().source(),
        u.source_port(),
        u.destination_port(),
        u.payload().to_vec(),
    )
}

/// RFC 6146 3.8 (and RFC 4787 REQ-9 for NAT44): hairpinning. An IPv6 host reaches
/// another subscriber's mapping (its pool address under the prefix, its port): the
/// packet takes its own session out and the other's in, and arrives from the
/// sender's pool address and port. Between two NAT64 hosts it stays IPv6 (from the
/// sender's pool address under the prefix); to a NAT44 subscriber it arrives as
/// IPv4 from the host's pool address and port; from a NAT44 subscriber to a NAT64
/// host's mapping, as IPv6 from the subscriber's under the prefix. Answers go back
/// the same way. With `nat.hairpinning = false` it is dropped, counted.
#[test]
fn hairpinning_joins_nat64_hosts_and_nat44_subscribers() {
    let mut h = harness("");
    let sub4 = [100, 64, 1, 5];
    h.neighbors.learn(u32::from_be_bytes(sub4), &HOST_MAC);
    let embed = |a: [u8; 4]| {
        let mut x = a6("64:ff9b::");
        x[12..].copy_from_slice(&a);
        x
    };
    // B (IPv6) and C (IPv4) have mappings: their first datagrams to the server.
    let (pool_b, port_b, _) = chosen(&only(
        h.inject(&udp6(HOST6B, 7000, 53, b"b"), Side::Inside, T0),
        Side::Outside,
    ));
    let from_c = |dst: [u8; 4], dport: u16, payload: &[u8]| {
        write(|v| {
            PacketBuilder::ethernet2(HOST_MAC, INSIDE_MAC)
                .ipv4(sub4, dst, 64)
                .udp(6000, dport)
                .write(v, payload)
                .unwrap()
        })
    };
    let out = only(
        h.inject(&from_c(SERVER4, 53, b"c"), Side::Inside, T0),
        Side::Outside,
    );
    let (pool_c, port_c) = (
        <[u8; 4]>::try_from(&out[26..30]).unwrap(),
        u16::from_be_bytes([out[34], out[35]]),
    );

    // A (IPv6) to B's mapping: B gets IPv6 from A's pool address and port.
    let to_b = udp6_between(a6(HOST6), embed(pool_b), 5000, port_b, b"a to b");
    let got = only(h.inject(&to_b, Side::Inside, T0 + 1), Side::Inside);
    assert_eq!(&got[38..54], &a6(HOST6B), "to B");
    let (src, sport, dport, payload) = udp6_of(&got);
    assert_eq!((dport, &payload[..]), (7000, &b"a to b"[..]));
    let pool_a: [u8; 4] = src[12..].try_into().unwrap();
    assert_eq!(&src[..12], &embed([0; 4])[..12], "from under the prefix");
    assert_eq!(&pool_a[..3], &[198, 51, 100], "from A's pool address");
    assert_eq!(h.counters.hairpin.get(), 1);
    // B answers A's pool address and port: A gets it from B's.
    let back = udp6_between(a6(HOST6B), src, 7000, sport, b"b to a");
    let got = only(h.inject(&back, Side::Inside, T0 + 1), Side::Inside);
    assert_eq!(&got[38..54], &a6(HOST6), "to A");
    let (src_b, sport_b, dport_a, payload) = udp6_of(&got);
    assert_eq!((src_b, sport_b), (embed(pool_b), port_b));
    assert_eq!((dport_a, &payload[..]), (5000, &b"b to a"[..]));

    // A to C's mapping: C gets IPv4 from A's pool address.
    let to_c = udp6_between(a6(HOST6), embed(pool_c), 5001, port_c, b"a to c");
    let got = only(h.inject(&to_c, Side::Inside, T0 + 2), Side::Inside);
    let p = etherparse::SlicedPacket::from_ethernet(&got).unwrap();
    let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
        panic!("IPv4 to C")
    };
    assert_eq!(ip.header().destination(), sub4);
    assert_eq!(&ip.header().source()[..3], &[198, 51, 100]);
    assert!(ip.header().to_header().header_checksum == ip.header().header_checksum());
    let Some(etherparse::TransportSlice::Udp(u)) = p.transport else {
        panic!("UDP to C")
    };
    assert_eq!((u.destination_port(), u.payload()), (6000, &b"a to c"[..]));

    // C to B's mapping: B gets IPv6 from C's pool address and port under the prefix.
    let got = only(
        h.inject(&from_c(pool_b, port_b, b"c to b"), Side::Inside, T0 + 2),
        Side::Inside,
    );
    assert_eq!(&got[38..54], &a6(HOST6B), "to B");
    let (src, _, dport, payload) = udp6_of(&got);
    assert_eq!(&src[12..], &pool_c[..], "from C's pool address");
    assert_eq!((dport, &payload[..]), (7000, &b"c to b"[..]));
    assert_eq!(h.counters.hairpin.get(), 4);

    // Hairpinning off: refused, counted.
    let mut h = no_hairpinning(HOST6B);
    let (pool_b, port_b, _) = chosen(&only(
        h.inject(&udp6(HOST6B, 7000, 53, b"b"), Side::Inside, T0),
        Side::Outside,
    ));
    let to_b = udp6_between(a6(HOST6), embed(pool_b), 5000, port_b, b"a to b");
    assert!(h.inject(&to_b, Side::Inside, T0 + 1).is_empty());
    assert_eq!(h.counters.dropped(DropReason::Nat64Hairpin), 1);
}
