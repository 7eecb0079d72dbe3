//! RFC 7915 header translation (`xlat`), case by case, on whole Ethernet frames: each
//! input and each expected output is built here, field by field, with etherparse (IP,
//! UDP and TCP headers and their checksums) or by hand (ICMP messages, with the
//! checksum helper below), never by the code under test.

mod common;
use cgnat_dataplane::buf::{PacketBuf, VecBuf};
use cgnat_dataplane::xlat::{
    split_ipv6, to_ipv4, to_ipv6, Mtus, Out6, Refused, Side4, Side6, To4, To6,
};
use common::csum;
use etherparse::{
    EtherType, Ethernet2Header, IpFragOffset, IpNumber, Ipv4Dscp, Ipv4Ecn, Ipv4Header, Ipv4Options,
    Ipv6FlowLabel, Ipv6Header, TcpHeader, UdpHeader,
};
use std::net::{Ipv4Addr, Ipv6Addr};

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
/// The subscriber.
const SUB: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10);
/// The IPv4 server and its IPv6 representation under 64:ff9b::/96.
const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 33);
const SERVER6: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x221);
/// The pool address the subscriber's packets leave with.
const POOL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
/// A router on the IPv4 side, and its representation.
const ROUTER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);
const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0xcb00, 0x7109);
/// A router on the IPv6 side.
const ROUTER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// The IPv4 address the IPv6 router is shown as (the caller's choice).
const ROUTER_V6_AS4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 200);
const SUB_PORT: u16 = 40000;
const POOL_PORT: u16 = 1025;
const L3: usize = 14;

// ---- Builders (etherparse and by hand) ----

fn eth(t: EtherType) -> Vec<u8> {
    Ethernet2Header {
        source: MAC_A,
        destination: MAC_B,
        ether_type: t,
    }
    .to_bytes()
    .to_vec()
}

#[derive(Clone, Copy)]
struct H4 {
    tos: u8,
    ident: u16,
    df: bool,
    mf: bool,
    /// Fragment offset in 8-byte units.
    off: u16,
    ttl: u8,
    proto: u8,
    src: Ipv4Addr,
    dst: Ipv4Addr,
}

fn h4(proto: u8, src: Ipv4Addr, dst: Ipv4Addr) -> H4 {
    H4 {
        tos: 0,
        ident: 0x1111,
        df: true,
        mf: false,
        off: 0,
        ttl: 64,
        proto,
        src,
        dst,
    }
}

/// An IPv4 packet (header by etherparse, checksum filled) with `options` and `payload`.
fn ip4(h: H4, options: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut ip = Ipv4Header::new(
        payload.len() as u16,
        h.ttl,
        IpNumber(h.proto),
        h.src.octets(),
        h.dst.octets(),
    )
    .unwrap();
    ip.dscp = Ipv4Dscp::try_new(h.tos >> 2).unwrap();
    ip.ecn = Ipv4Ecn::try_new(h.tos & 3).unwrap();
    ip.identification = h.ident;
    ip.dont_fragment = h.df;
    ip.more_fragments = h.mf;
    ip.fragment_offset = IpFragOffset::try_new(h.off).unwrap();
    ip.options = Ipv4Options::try_from(options).unwrap();
    ip.total_len = (ip.header_len() + payload.len()) as u16;
    ip.header_checksum = ip.calc_header_checksum();
    let mut v = ip.to_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

#[derive(Clone, Copy)]
struct H6 {
    tc: u8,
    flow: u32,
    hop: u8,
    nh: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
}

fn h6(nh: u8, src: Ipv6Addr, dst: Ipv6Addr) -> H6 {
    H6 {
        tc: 0,
        flow: 0,
        hop: 64,
        nh,
        src,
        dst,
    }
}

/// An IPv6 packet (fixed header by etherparse) with `payload` (extensions included).
fn ip6(h: H6, payload: &[u8]) -> Vec<u8> {
    let ip = Ipv6Header {
        traffic_class: h.tc,
        flow_label: Ipv6FlowLabel::try_new(h.flow).unwrap(),
        payload_length: payload.len() as u16,
        next_header: IpNumber(h.nh),
        hop_limit: h.hop,
        source: h.src.octets(),
        destination: h.dst.octets(),
    };
    let mut v = ip.to_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

/// A fragment header, by hand (RFC 8200 4.5: offset in the top 13 bits of bytes 2-3,
/// M the lowest bit). Not etherparse's: 0.16 writes the offset and M at the wrong bits
/// (etherparse issue 150, fixed in 0.20).
fn frag6(nh: u8, off_units: u16, more: bool, ident: u32) -> Vec<u8> {
    let mut v = vec![nh, 0];
    v.extend_from_slice(&(off_units << 3 | u16::from(more)).to_be_bytes());
    v.extend_from_slice(&ident.to_be_bytes());
    v
}

fn udp_hdr(sp: u16, dp: u16, data: &[u8]) -> UdpHeader {
    UdpHeader {
        source_port: sp,
        destination_port: dp,
        length: (8 + data.len()) as u16,
        checksum: 0,
    }
}

/// A UDP datagram with its IPv4 checksum (etherparse).
fn udp4(src: Ipv4Addr, dst: Ipv4Addr, sp: u16, dp: u16, data: &[u8]) -> Vec<u8> {
    let mut u = udp_hdr(sp, dp, data);
    u.checksum = u
        .calc_checksum_ipv4_raw(src.octets(), dst.octets(), data)
        .unwrap();
    let mut v = u.to_bytes().to_vec();
    v.extend_from_slice(data);
    v
}

/// A UDP datagram with its IPv6 checksum (etherparse).
fn udp6(src: Ipv6Addr, dst: Ipv6Addr, sp: u16, dp: u16, data: &[u8]) -> Vec<u8> {
    let mut u = udp_hdr(sp, dp, data);
    u.checksum = u
        .calc_checksum_ipv6_raw(src.octets(), dst.octets(), data)
        .unwrap();
    let mut v = u.to_bytes().to_vec();
    v.extend_from_slice(data);
    v
}

fn tcp_hdr(sp: u16, dp: u16) -> TcpHeader {
    let mut t = TcpHeader::new(sp, dp, 0x0102_0304, 64240);
    t.syn = true;
    t.set_options_raw(&[2, 4, 5, 0xb4, 1, 1, 4, 2]).unwrap();
    t
}

fn tcp4(src: Ipv4Addr, dst: Ipv4Addr, sp: u16, dp: u16, data: &[u8]) -> Vec<u8> {
    let mut t = tcp_hdr(sp, dp);
    t.checksum = t
        .calc_checksum_ipv4_raw(src.octets(), dst.octets(), data)
        .unwrap();
    let mut v = t.to_bytes().to_vec();
    v.extend_from_slice(data);
    v
}

fn tcp6(src: Ipv6Addr, dst: Ipv6Addr, sp: u16, dp: u16, data: &[u8]) -> Vec<u8> {
    let mut t = tcp_hdr(sp, dp);
    t.checksum = t
        .calc_checksum_ipv6_raw(src.octets(), dst.octets(), data)
        .unwrap();
    let mut v = t.to_bytes().to_vec();
    v.extend_from_slice(data);
    v
}

/// An ICMPv4 message, checksum by hand.
fn icmp4(ty: u8, code: u8, word: u32, body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&word.to_be_bytes());
    m.extend_from_slice(body);
    let c = csum(&[&m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// An ICMPv6 message from `src` to `dst`, checksum by hand over the pseudo-header.
fn icmp6(src: Ipv6Addr, dst: Ipv6Addr, ty: u8, code: u8, word: u32, body: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&word.to_be_bytes());
    m.extend_from_slice(body);
    let len = (m.len() as u32).to_be_bytes();
    let c = csum(&[&src.octets(), &dst.octets(), &len, &[0, 0, 0, 58], &m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn frame(t: EtherType, l3: &[u8]) -> Vec<u8> {
    let mut f = eth(t);
    f.extend_from_slice(l3);
    f
}

fn v4frame(l3: &[u8]) -> Vec<u8> {
    frame(EtherType::IPV4, l3)
}

fn v6frame(l3: &[u8]) -> Vec<u8> {
    frame(EtherType::IPV6, l3)
}

// ---- The translations under test ----

fn s6(src: Ipv6Addr, dst: Ipv6Addr, ports: Option<(u16, u16)>) -> Side6 {
    Side6 {
        src: src.octets(),
        dst: dst.octets(),
        ports,
    }
}

fn s4(src: Ipv4Addr, dst: Ipv4Addr, ports: Option<(u16, u16)>) -> Side4 {
    Side4 {
        src: u32::from(src),
        dst: u32::from(dst),
        ports,
    }
}

/// Server -> pool, back to the subscriber: 64:ff9b::server -> subscriber.
fn inbound(ports: Option<(u16, u16)>) -> To6 {
    To6 {
        outer: s6(SERVER6, SUB, ports),
        inner: s6(SUB, SERVER6, ports.map(|(a, b)| (b, a))),
    }
}

/// Subscriber -> 64:ff9b::server, out as pool -> server.
fn outbound(ports: Option<(u16, u16)>) -> To4 {
    To4 {
        outer: s4(POOL, SERVER, ports),
        inner: s4(SERVER, POOL, ports.map(|(a, b)| (b, a))),
        ident: 0x4242,
    }
}

fn run6(f: &[u8], t: &To6, m: &Mtus) -> Result<(Out6, Vec<u8>), Refused> {
    let mut b = VecBuf::new(f);
    to_ipv6(&mut b, L3, t, m).map(|o| (o, b.to_vec()))
}

fn run4(f: &[u8], t: &To4, m: &Mtus) -> Result<Vec<u8>, Refused> {
    let mut b = VecBuf::new(f);
    to_ipv4(&mut b, L3, t, m).map(|()| b.to_vec())
}

fn whole6(f: &[u8], t: &To6) -> Vec<u8> {
    let (o, v) = run6(f, t, &Mtus::default()).unwrap();
    assert_eq!(o, Out6::Whole);
    v
}

fn hex(v: &[u8]) -> String {
    v.iter().map(|b| format!("{b:02x}")).collect()
}

#[track_caller]
fn same(got: &[u8], want: &[u8]) {
    assert_eq!(hex(got), hex(want), "translated frame differs");
}

// ---- 4.1 / 5.1: headers ----

#[test]
fn rfc7915_4_1_udp_ipv4_to_ipv6_tos_ttl_addresses_ports_checksum() {
    let data = b"four score and seven";
    let mut h = h4(17, SERVER, POOL);
    h.tos = 0xb9; // DSCP EF + ECN ECT(1)
    h.ttl = 50;
    let input = v4frame(&ip4(h, &[], &udp4(SERVER, POOL, 53, POOL_PORT, data)));
    let got = whole6(&input, &inbound(Some((53, SUB_PORT))));
    let mut e = h6(17, SERVER6, SUB);
    e.tc = 0xb9; // traffic class = TOS, flow label 0
    e.hop = 49; // TTL - 1
    let want = v6frame(&ip6(e, &udp6(SERVER6, SUB, 53, SUB_PORT, data)));
    same(&got, &want);
}

#[test]
fn rfc7915_5_1_udp_ipv6_to_ipv4_traffic_class_flow_label_hop_limit_df_ident() {
    let data = b"hello over nat64";
    let mut h = h6(17, SUB, SERVER6);
    h.tc = 0x28;
    h.flow = 0xabcde; // dropped
    h.hop = 9;
    let input = v6frame(&ip6(h, &udp6(SUB, SERVER6, SUB_PORT, 53, data)));
    let got = run4(&input, &outbound(Some((POOL_PORT, 53))), &Mtus::default()).unwrap();
    let mut e = h4(17, POOL, SERVER);
    e.tos = 0x28;
    e.ttl = 8;
    e.df = false; // 1260 bytes or fewer: DF clear, identification from the caller
    e.ident = 0x4242;
    let want = v4frame(&ip4(e, &[], &udp4(POOL, SERVER, POOL_PORT, 53, data)));
    same(&got, &want);
}

#[test]
fn rfc7915_5_1_df_set_above_1260_bytes() {
    let data = vec![0x5a; 1300 - 48];
    let input = v6frame(&ip6(
        h6(17, SUB, SERVER6),
        &udp6(SUB, SERVER6, SUB_PORT, 53, &data),
    ));
    let got = run4(&input, &outbound(None), &Mtus::default()).unwrap();
    let mut e = h4(17, POOL, SERVER);
    e.ttl = 63;
    e.df = true;
    e.ident = 0x4242;
    let want = v4frame(&ip4(e, &[], &udp4(POOL, SERVER, SUB_PORT, 53, &data)));
    assert_eq!(got.len(), L3 + 1280);
    same(&got, &want);
}

#[test]
fn rfc7915_tcp_both_ways_with_ipv4_options_dropped() {
    let data = b"GET / HTTP/1.1\r\n\r\n";
    // Record route and a no-op: not translated (RFC 7915 1.2), just dropped.
    let opts = [7, 7, 4, 0, 0, 0, 0, 1];
    let input = v4frame(&ip4(
        h4(6, SERVER, POOL),
        &opts,
        &tcp4(SERVER, POOL, 80, POOL_PORT, data),
    ));
    let got = whole6(&input, &inbound(Some((80, SUB_PORT))));
    let mut e = h6(6, SERVER6, SUB);
    e.hop = 63;
    same(
        &got,
        &v6frame(&ip6(e, &tcp6(SERVER6, SUB, 80, SUB_PORT, data))),
    );

    let input = v6frame(&ip6(
        h6(6, SUB, SERVER6),
        &tcp6(SUB, SERVER6, SUB_PORT, 80, data),
    ));
    let got = run4(&input, &outbound(Some((POOL_PORT, 80))), &Mtus::default()).unwrap();
    let mut e = h4(6, POOL, SERVER);
    e.ttl = 63;
    e.df = false;
    e.ident = 0x4242;
    same(
        &got,
        &v4frame(&ip4(e, &[], &tcp4(POOL, SERVER, POOL_PORT, 80, data))),
    );
}

#[test]
fn rfc7915_4_1_unexpired_source_route_is_refused_and_expired_one_translated() {
    let u = udp4(SERVER, POOL, 53, POOL_PORT, b"x");
    // LSRR, pointer 4 of length 7: an address left to visit.
    let lsrr = ip4(h4(17, SERVER, POOL), &[131, 7, 4, 10, 0, 0, 1, 0], &u);
    assert_eq!(
        run6(&v4frame(&lsrr), &inbound(None), &Mtus::default()),
        Err(Refused::SourceRoute)
    );
    // Pointer 8 past the length 7: the route is done.
    let done = ip4(h4(17, SERVER, POOL), &[131, 7, 8, 10, 0, 0, 1, 0], &u);
    let got = whole6(&v4frame(&done), &inbound(Some((53, POOL_PORT))));
    let mut e = h6(17, SERVER6, SUB);
    e.hop = 63;
    same(
        &got,
        &v6frame(&ip6(e, &udp6(SERVER6, SUB, 53, POOL_PORT, b"x"))),
    );
}

#[test]
fn rfc7915_ttl_and_hop_limit_of_one_are_refused_for_time_exceeded() {
    let mut h = h4(17, SERVER, POOL);
    h.ttl = 1;
    let f = v4frame(&ip4(h, &[], &udp4(SERVER, POOL, 53, 1, b"")));
    assert_eq!(
        run6(&f, &inbound(None), &Mtus::default()),
        Err(Refused::HopLimit)
    );
    let mut h = h6(17, SUB, SERVER6);
    h.hop = 1;
    let f = v6frame(&ip6(h, &udp6(SUB, SERVER6, 1, 53, b"")));
    assert_eq!(
        run4(&f, &outbound(None), &Mtus::default()),
        Err(Refused::HopLimit)
    );
}

#[test]
fn rfc7915_4_5_udp_zero_checksum_computed_unless_fragmented() {
    let data = b"no checksum";
    let mut u = udp_hdr(53, POOL_PORT, data).to_bytes().to_vec();
    u.extend_from_slice(data);
    let f = v4frame(&ip4(h4(17, SERVER, POOL), &[], &u));
    let got = whole6(&f, &inbound(Some((53, SUB_PORT))));
    let mut e = h6(17, SERVER6, SUB);
    e.hop = 63;
    same(
        &got,
        &v6frame(&ip6(e, &udp6(SERVER6, SUB, 53, SUB_PORT, data))),
    );
    let mut h = h4(17, SERVER, POOL);
    h.df = false;
    h.mf = true;
    let f = v4frame(&ip4(h, &[], &u));
    assert_eq!(
        run6(&f, &inbound(None), &Mtus::default()),
        Err(Refused::UdpZeroChecksumFragment)
    );
}

#[test]
fn rfc7915_other_protocols_pass_with_their_payload_untouched() {
    let gre = [0, 0, 0x08, 0x00, 1, 2, 3, 4];
    let f = v4frame(&ip4(h4(47, SERVER, POOL), &[], &gre));
    let got = whole6(&f, &inbound(None));
    let mut e = h6(47, SERVER6, SUB);
    e.hop = 63;
    same(&got, &v6frame(&ip6(e, &gre)));
    let f = v6frame(&ip6(h6(47, SUB, SERVER6), &gre));
    let got = run4(&f, &outbound(None), &Mtus::default()).unwrap();
    let mut e = h4(47, POOL, SERVER);
    e.ttl = 63;
    e.df = false;
    e.ident = 0x4242;
    same(&got, &v4frame(&ip4(e, &[], &gre)));
}

#[test]
fn rfc7915_vlan_header_is_kept_and_its_ethertype_set() {
    let data = b"tagged";
    let mut f = eth(EtherType::VLAN_TAGGED_FRAME);
    f.extend_from_slice(&[0x00, 0x64, 0x08, 0x00]); // VLAN 100, then IPv4
    f.extend_from_slice(&ip4(
        h4(17, SERVER, POOL),
        &[],
        &udp4(SERVER, POOL, 53, POOL_PORT, data),
    ));
    let mut b = VecBuf::new(&f);
    to_ipv6(&mut b, 18, &inbound(Some((53, SUB_PORT))), &Mtus::default()).unwrap();
    let mut want = eth(EtherType::VLAN_TAGGED_FRAME);
    want.extend_from_slice(&[0x00, 0x64, 0x86, 0xdd]);
    let mut e = h6(17, SERVER6, SUB);
    e.hop = 63;
    want.extend_from_slice(&ip6(e, &udp6(SERVER6, SUB, 53, SUB_PORT, data)));
    same(&b.to_vec(), &want);
}

#[test]
fn ethernet_padding_after_the_ipv4_packet_is_not_translated() {
    let data = b"hi";
    let mut f = v4frame(&ip4(
        h4(17, SERVER, POOL),
        &[],
        &udp4(SERVER, POOL, 53, POOL_PORT, data),
    ));
    f.resize(60, 0); // minimum Ethernet frame
    let got = whole6(&f, &inbound(Some((53, SUB_PORT))));
    let mut e = h6(17, SERVER6, SUB);
    e.hop = 63;
    same(
        &got,
        &v6frame(&ip6(e, &udp6(SERVER6, SUB, 53, SUB_PORT, data))),
    );
}

// ---- Extension headers ----

#[test]
fn rfc7915_5_1_extension_headers_are_skipped() {
    let data = b"ext";
    let u = udp6(SUB, SERVER6, SUB_PORT, 53, data);
    // Hop-by-hop (PadN), then destination options (PadN), then UDP.
    let mut p = vec![60, 0, 1, 4, 0, 0, 0, 0];
    p.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
    p.extend_from_slice(&u);
    let f = v6frame(&ip6(h6(0, SUB, SERVER6), &p));
    let got = run4(&f, &outbound(Some((POOL_PORT, 53))), &Mtus::default()).unwrap();
    let mut e = h4(17, POOL, SERVER);
    e.ttl = 63;
    e.df = false;
    e.ident = 0x4242;
    same(
        &got,
        &v4frame(&ip4(e, &[], &udp4(POOL, SERVER, POOL_PORT, 53, data))),
    );
}

#[test]
fn rfc7915_5_1_routing_header_with_segments_left_is_refused_with_its_pointer() {
    let u = udp6(SUB, SERVER6, SUB_PORT, 53, b"r");
    // Routing header type 0... any type: 24 bytes, 1 segment left.
    let mut p = vec![17, 2, 0, 1, 0, 0, 0, 0];
    p.extend_from_slice(&[0; 16]);
    p.extend_from_slice(&u);
    let f = v6frame(&ip6(h6(43, SUB, SERVER6), &p));
    assert_eq!(
        run4(&f, &outbound(None), &Mtus::default()),
        Err(Refused::SegmentsLeft { pointer: 43 })
    );
}

#[test]
fn rfc7915_5_1_extension_header_after_the_fragment_header_is_refused() {
    let mut p = frag6(60, 0, true, 7);
    p.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
    p.extend_from_slice(&udp6(SUB, SERVER6, 1, 2, b"x"));
    let f = v6frame(&ip6(h6(44, SUB, SERVER6), &p));
    assert_eq!(
        run4(&f, &outbound(None), &Mtus::default()),
        Err(Refused::ExtensionAfterFragment)
    );
}

// ---- Fragments and MTU ----

#[test]
fn rfc7915_4_1_ipv4_fragments_get_a_fragment_header_with_their_identification() {
    // First fragment: UDP header and 16 bytes of a longer datagram (checksum over the
    // whole datagram, as the sender computed it).
    let whole = udp4(SERVER, POOL, 53, POOL_PORT, &[7u8; 40]);
    let first = &whole[..24];
    let mut h = h4(17, SERVER, POOL);
    h.df = false;
    h.mf = true;
    h.ident = 0xbeef;
    let got = run6(
        &v4frame(&ip4(h, &[], first)),
        &inbound(Some((53, SUB_PORT))),
        &Mtus::default(),
    )
    .unwrap();
    assert_eq!(got.0, Out6::Whole);
    let whole6 = udp6(SERVER6, SUB, 53, SUB_PORT, &[7u8; 40]);
    let mut p = frag6(17, 0, true, 0xbeef);
    p.extend_from_slice(&whole6[..24]);
    let mut e = h6(44, SERVER6, SUB);
    e.hop = 63;
    same(&got.1, &v6frame(&ip6(e, &p)));

    // The last fragment: offset 3 (24 bytes), no L4 header, left as it is.
    let mut h = h4(17, SERVER, POOL);
    h.df = false;
    h.off = 3;
    h.ident = 0xbeef;
    let got = run6(
        &v4frame(&ip4(h, &[], &whole[24..])),
        &inbound(Some((53, SUB_PORT))),
        &Mtus::default(),
    )
    .unwrap();
    let mut p = frag6(17, 3, false, 0xbeef);
    p.extend_from_slice(&whole[24..]);
    same(&got.1, &v6frame(&ip6(e, &p)));
}

#[test]
fn rfc7915_4_1_an_ipv4_fragment_over_lowest_ipv6_mtu_with_its_fragment_header_is_cut() {
    // A first fragment of 20 + 1236 bytes: 40 + 8 + 1236 = 1284 bytes as IPv6, over
    // 1280 only once its fragment header is counted.
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 253) as u8).collect();
    let whole = udp4(SERVER, POOL, 53, POOL_PORT, &data);
    let mut h = h4(17, SERVER, POOL);
    h.df = false;
    h.mf = true;
    h.ident = 0x0d0e;
    let f = v4frame(&ip4(h, &[], &whole[..1236]));
    let mut b = VecBuf::new(&f);
    let o = to_ipv6(&mut b, L3, &inbound(Some((53, SUB_PORT))), &Mtus::default()).unwrap();
    assert_eq!(o, Out6::Split, "1284 bytes as IPv6 must be cut to 1280");
    let mut rest = VecBuf::new(&[]);
    assert!(split_ipv6(&mut b, L3, 1280, &mut rest).unwrap());
    let u6 = udp6(SERVER6, SUB, 53, SUB_PORT, &data);
    let mut e = h6(44, SERVER6, SUB);
    e.hop = 63;
    let mut p = frag6(17, 0, true, 0x0d0e);
    p.extend_from_slice(&u6[..1232]);
    same(&b.to_vec(), &v6frame(&ip6(e, &p)));
    // The rest keeps M: more of the datagram follows in later IPv4 fragments.
    let mut p = frag6(17, 1232 / 8, true, 0x0d0e);
    p.extend_from_slice(&u6[1232..1236]);
    same(&rest.to_vec(), &v6frame(&ip6(e, &p)));
    // 4 bytes less: 1280 as IPv6, whole.
    let f = v4frame(&ip4(h, &[], &whole[..1232]));
    let (o, got) = run6(&f, &inbound(Some((53, SUB_PORT))), &Mtus::default()).unwrap();
    assert_eq!(o, Out6::Whole);
    assert_eq!(got.len(), L3 + 1280);
}

#[test]
fn rfc7915_5_1_1_ipv6_fragments_become_ipv4_fragments_without_df() {
    let whole = udp6(SUB, SERVER6, SUB_PORT, 53, &[9u8; 40]);
    let mut p = frag6(17, 0, true, 0x1234_5678);
    p.extend_from_slice(&whole[..24]);
    let f = v6frame(&ip6(h6(44, SUB, SERVER6), &p));
    let got = run4(&f, &outbound(Some((POOL_PORT, 53))), &Mtus::default()).unwrap();
    let whole4 = udp4(POOL, SERVER, POOL_PORT, 53, &[9u8; 40]);
    let mut e = h4(17, POOL, SERVER);
    e.ttl = 63;
    e.df = false;
    e.mf = true;
    e.ident = 0x5678; // the low 16 bits
    same(&got, &v4frame(&ip4(e, &[], &whole4[..24])));

    let mut p = frag6(17, 3, false, 0x1234_5678);
    p.extend_from_slice(&whole[24..]);
    let f = v6frame(&ip6(h6(44, SUB, SERVER6), &p));
    let got = run4(&f, &outbound(Some((POOL_PORT, 53))), &Mtus::default()).unwrap();
    e.mf = false;
    e.off = 3;
    same(&got, &v4frame(&ip4(e, &[], &whole[24..])));
}

#[test]
fn rfc7915_4_1_without_df_a_large_packet_is_fragmented_to_lowest_ipv6_mtu() {
    let data: Vec<u8> = (0..1400u32).map(|i| i as u8).collect();
    let mut h = h4(17, SERVER, POOL);
    h.df = false;
    h.ident = 0x0abc;
    let f = v4frame(&ip4(h, &[], &udp4(SERVER, POOL, 53, POOL_PORT, &data)));
    let mut b = VecBuf::new(&f);
    let o = to_ipv6(&mut b, L3, &inbound(Some((53, SUB_PORT))), &Mtus::default()).unwrap();
    assert_eq!(o, Out6::Split);
    let mut rest = VecBuf::new(&[]);
    assert!(split_ipv6(&mut b, L3, 1280, &mut rest).unwrap());
    let mut last = VecBuf::new(&[]);
    assert!(!split_ipv6(&mut rest, L3, 1280, &mut last).unwrap());
    // The datagram as IPv6 would carry it, cut at 1232 bytes (1280 - 40 - 8).
    let u6 = udp6(SERVER6, SUB, 53, SUB_PORT, &data);
    let mut e = h6(44, SERVER6, SUB);
    e.hop = 63;
    let mut p = frag6(17, 0, true, 0x0abc);
    p.extend_from_slice(&u6[..1232]);
    same(&b.to_vec(), &v6frame(&ip6(e, &p)));
    assert_eq!(b.len(), L3 + 1280);
    let mut p = frag6(17, 1232 / 8, false, 0x0abc);
    p.extend_from_slice(&u6[1232..]);
    same(&rest.to_vec(), &v6frame(&ip6(e, &p)));
    // Without DF and small enough: no fragment header (RFC 7915 4).
    let mut h = h4(17, SERVER, POOL);
    h.df = false;
    let f = v4frame(&ip4(h, &[], &udp4(SERVER, POOL, 53, POOL_PORT, b"small")));
    let got = whole6(&f, &inbound(Some((53, SUB_PORT))));
    let mut e = h6(17, SERVER6, SUB);
    e.hop = 63;
    same(
        &got,
        &v6frame(&ip6(e, &udp6(SERVER6, SUB, 53, SUB_PORT, b"small"))),
    );
    // A larger lowest-ipv6-mtu keeps the same packet whole.
    let f = v4frame(&ip4(
        {
            let mut h = h4(17, SERVER, POOL);
            h.df = false;
            h
        },
        &[],
        &udp4(SERVER, POOL, 53, POOL_PORT, &data),
    ));
    let m = Mtus {
        lowest_ipv6: 1500,
        ..Mtus::default()
    };
    assert_eq!(run6(&f, &inbound(None), &m).unwrap().0, Out6::Whole);
}

/// A 1480-byte IPv4 UDP packet with DF (1500 bytes as IPv6), server to pool.
fn big4() -> Vec<u8> {
    let data = vec![1u8; 1452];
    v4frame(&ip4(
        h4(17, SERVER, POOL),
        &[],
        &udp4(SERVER, POOL, 53, POOL_PORT, &data),
    ))
}

/// A 1500-byte IPv6 UDP packet (1480 bytes as IPv4), subscriber to server.
fn big6() -> Vec<u8> {
    let data = vec![1u8; 1452];
    v6frame(&ip6(
        h6(17, SUB, SERVER6),
        &udp6(SUB, SERVER6, SUB_PORT, 53, &data),
    ))
}

#[test]
fn rfc7915_4_1_df_and_too_big_for_the_ipv6_hop_is_refused_with_the_mtu() {
    let f = big4();
    // 1480 + 20 = 1500 bytes as IPv6 fits a 1500 hop; a 1480 hop does not.
    assert!(run6(&f, &inbound(None), &Mtus::default()).is_ok());
    let m = Mtus {
        ipv6: 1480,
        ..Mtus::default()
    };
    assert_eq!(
        run6(&f, &inbound(None), &m),
        Err(Refused::TooBig { mtu: 1460 })
    );
}

#[test]
fn rfc7915_5_ipv6_too_big_for_the_ipv4_hop_is_refused_with_the_mtu() {
    let f = big6();
    let m = Mtus {
        ipv4: 1400,
        ..Mtus::default()
    };
    assert_eq!(
        run4(&f, &outbound(None), &m),
        Err(Refused::TooBig { mtu: 1420 })
    );
}

// ---- 4.2 / 5.2: ICMP queries ----

#[test]
fn rfc7915_echo_both_ways_with_identifier_and_checksums() {
    let body = b"abcdefghijklmnop";
    let seq = 7u32;
    // Echo request from the subscriber, identifier 0x1111 -> 0x2222.
    let f = v6frame(&ip6(
        h6(58, SUB, SERVER6),
        &icmp6(SUB, SERVER6, 128, 0, 0x1111 << 16 | seq, body),
    ));
    let got = run4(&f, &outbound(Some((0x2222, 0))), &Mtus::default()).unwrap();
    let mut e = h4(1, POOL, SERVER);
    e.ttl = 63;
    e.df = false;
    e.ident = 0x4242;
    same(
        &got,
        &v4frame(&ip4(e, &[], &icmp4(8, 0, 0x2222 << 16 | seq, body))),
    );
    // The reply from the server, identifier back to 0x1111.
    let f = v4frame(&ip4(
        h4(1, SERVER, POOL),
        &[],
        &icmp4(0, 0, 0x2222 << 16 | seq, body),
    ));
    let got = whole6(&f, &inbound(Some((0x1111, 0))));
    let mut e = h6(58, SERVER6, SUB);
    e.hop = 63;
    same(
        &got,
        &v6frame(&ip6(
            e,
            &icmp6(SERVER6, SUB, 129, 0, 0x1111 << 16 | seq, body),
        )),
    );
}

#[test]
fn rfc7915_informational_icmp_is_dropped_both_ways() {
    // ICMPv4 timestamp, information request, router advertisement, redirect, source quench.
    for (ty, code) in [(13, 0), (15, 0), (9, 0), (5, 1), (4, 0), (14, 0)] {
        let body = if matches!(ty, 5 | 4) {
            ip4(h4(17, POOL, SERVER), &[], &udp4(POOL, SERVER, 1, 2, b""))
        } else {
            vec![0; 12]
        };
        let f = v4frame(&ip4(h4(1, SERVER, POOL), &[], &icmp4(ty, code, 0, &body)));
        assert_eq!(
            run6(&f, &inbound(None), &Mtus::default()),
            Err(Refused::IcmpUntranslatable),
            "ICMPv4 type {ty}"
        );
    }
    // MLD query, router solicitation, neighbour solicitation and advertisement.
    for ty in [130, 133, 135, 136] {
        let f = v6frame(&ip6(
            h6(58, SUB, SERVER6),
            &icmp6(SUB, SERVER6, ty, 0, 0, &[0; 16]),
        ));
        assert_eq!(
            run4(&f, &outbound(None), &Mtus::default()),
            Err(Refused::IcmpUntranslatable),
            "ICMPv6 type {ty}"
        );
    }
}

#[test]
fn rfc7915_fragmented_icmp_is_not_translated() {
    let mut h = h4(1, SERVER, POOL);
    h.df = false;
    h.mf = true;
    let f = v4frame(&ip4(h, &[], &icmp4(0, 0, 1, &[0; 16])));
    assert_eq!(
        run6(&f, &inbound(None), &Mtus::default()),
        Err(Refused::FragmentedIcmp)
    );
    let mut p = frag6(58, 0, true, 1);
    p.extend_from_slice(&icmp6(SUB, SERVER6, 128, 0, 1, &[0; 16]));
    let f = v6frame(&ip6(h6(44, SUB, SERVER6), &p));
    assert_eq!(
        run4(&f, &outbound(None), &Mtus::default()),
        Err(Refused::FragmentedIcmp)
    );
}

// ---- 4.2-4.3: ICMPv4 errors to ICMPv6 ----

/// (type, code) in, (type, code, 32-bit word) out.
type ErrorCase = ((u8, u8), (u8, u8, u32));

/// The subscriber's UDP datagram as it left through the NAT (pool -> server), TTL as a
/// router saw it.
fn sent4(data: &[u8]) -> Vec<u8> {
    let mut h = h4(17, POOL, SERVER);
    h.ttl = 20;
    h.ident = 0x0077;
    ip4(h, &[], &udp4(POOL, SERVER, POOL_PORT, 53, data))
}

/// The same datagram as the subscriber sent it.
fn sent6(data: &[u8]) -> Vec<u8> {
    let mut h = h6(17, SUB, SERVER6);
    h.hop = 20; // the inner TTL is not decremented
    ip6(h, &udp6(SUB, SERVER6, SUB_PORT, 53, data))
}

/// The translation of an error from the IPv4 router about `sent4`.
fn about_sent() -> To6 {
    To6 {
        outer: s6(ROUTER6, SUB, None),
        inner: s6(SUB, SERVER6, Some((SUB_PORT, 53))),
    }
}

/// An ICMPv4 error from the IPv4 router about `sent4`, translated.
fn error4(ty: u8, code: u8, word: u32, m: &Mtus) -> Result<Vec<u8>, Refused> {
    let f = v4frame(&ip4(
        h4(1, ROUTER, POOL),
        &[],
        &icmp4(ty, code, word, &sent4(b"query")),
    ));
    let t = about_sent();
    run6(&f, &t, m).map(|(_, v)| v)
}

fn want_error6(ty: u8, code: u8, word: u32) -> Vec<u8> {
    let mut e = h6(58, ROUTER6, SUB);
    e.hop = 63;
    v6frame(&ip6(
        e,
        &icmp6(ROUTER6, SUB, ty, code, word, &sent6(b"query")),
    ))
}

#[test]
fn rfc7915_4_2_icmpv4_errors_map_to_icmpv6_with_the_packet_inside_translated() {
    let m = Mtus::default();
    // (ICMPv4 type, code) -> (ICMPv6 type, code, word)
    let cases: [ErrorCase; 17] = [
        ((3, 0), (1, 0, 0)),
        ((3, 1), (1, 0, 0)),
        ((3, 2), (4, 1, 6)), // protocol unreachable: parameter problem, next header
        ((3, 3), (1, 4, 0)),
        ((3, 5), (1, 0, 0)),
        ((3, 6), (1, 0, 0)),
        ((3, 7), (1, 0, 0)),
        ((3, 8), (1, 0, 0)),
        ((3, 9), (1, 1, 0)),
        ((3, 10), (1, 1, 0)),
        ((3, 11), (1, 0, 0)),
        ((3, 12), (1, 0, 0)),
        ((3, 13), (1, 1, 0)),
        ((3, 15), (1, 1, 0)),
        ((11, 0), (3, 0, 0)),
        ((11, 1), (3, 1, 0)),
        ((12, 0), (4, 0, 8)), // pointer 12 (source address) -> 8, set below
    ];
    for ((t4, c4), (t6, c6, w6)) in cases {
        let word = if t4 == 12 { 12 << 24 } else { 0 };
        let got = error4(t4, c4, word, &m).unwrap();
        same(&got, &want_error6(t6, c6, w6));
    }
    // Precedence violation and unknown codes: dropped.
    for (t4, c4) in [(3, 14), (3, 16), (12, 1)] {
        assert_eq!(error4(t4, c4, 0, &m), Err(Refused::IcmpUntranslatable));
    }
}

#[test]
fn rfc7915_4_2_parameter_problem_pointers_follow_figure_3() {
    let m = Mtus::default();
    for (p4, p6) in [
        (0, 0),
        (1, 1),
        (2, 4),
        (3, 4),
        (8, 7),
        (9, 6),
        (15, 8),
        (16, 24),
    ] {
        same(
            &error4(12, 0, p4 << 24, &m).unwrap(),
            &want_error6(4, 0, p6),
        );
    }
    // Identification, flags, checksum: no IPv6 counterpart, dropped.
    for p4 in [4, 6, 10] {
        assert_eq!(
            error4(12, 0, p4 << 24, &m),
            Err(Refused::IcmpUntranslatable)
        );
    }
}

#[test]
fn rfc7915_4_2_fragmentation_needed_becomes_packet_too_big_with_the_mtu_adjusted() {
    let m = Mtus::default();
    // 1400 + 20.
    same(&error4(3, 4, 1400, &m).unwrap(), &want_error6(2, 0, 1420));
    // Never above the IPv6 hop's MTU.
    same(&error4(3, 4, 1492, &m).unwrap(), &want_error6(2, 0, 1500));
    // Never below 1280.
    same(&error4(3, 4, 576, &m).unwrap(), &want_error6(2, 0, 1280));
    // No MTU given (a router from before RFC 1191): the plateau below the packet's 33
    // bytes (none: 68), + 20, raised to 1280.
    same(&error4(3, 4, 0, &m).unwrap(), &want_error6(2, 0, 1280));
    // Bounded by the IPv4 hop's MTU + 20 as well.
    let small = Mtus { ipv4: 1300, ..m };
    same(
        &error4(3, 4, 1450, &small).unwrap(),
        &want_error6(2, 0, 1320),
    );
}

#[test]
fn rfc7915_4_3_icmpv6_error_is_truncated_to_1280_bytes() {
    let data = vec![3u8; 1400];
    let f = v4frame(&ip4(
        h4(1, ROUTER, POOL),
        &[],
        &icmp4(3, 3, 0, &sent4(&data)),
    ));
    let t = about_sent();
    let (_, got) = run6(&f, &t, &Mtus::default()).unwrap();
    assert_eq!(got.len(), L3 + 1280);
    let inner = sent6(&data);
    let mut e = h6(58, ROUTER6, SUB);
    e.hop = 63;
    let want = v6frame(&ip6(e, &icmp6(ROUTER6, SUB, 1, 4, 0, &inner[..1280 - 48])));
    same(&got, &want);
}

#[test]
fn rfc7915_4_3_an_error_about_an_echo_translates_the_embedded_echo() {
    let mut h = h4(1, POOL, SERVER);
    h.ttl = 3;
    let echo4 = ip4(h, &[], &icmp4(8, 0, 0x2222 << 16 | 1, b"ping"));
    let f = v4frame(&ip4(h4(1, ROUTER, POOL), &[], &icmp4(11, 0, 0, &echo4)));
    let t = To6 {
        outer: s6(ROUTER6, SUB, None),
        inner: s6(SUB, SERVER6, Some((0x1111, 0))),
    };
    let (_, got) = run6(&f, &t, &Mtus::default()).unwrap();
    let mut ih = h6(58, SUB, SERVER6);
    ih.hop = 3;
    let echo6 = ip6(ih, &icmp6(SUB, SERVER6, 128, 0, 0x1111 << 16 | 1, b"ping"));
    let mut e = h6(58, ROUTER6, SUB);
    e.hop = 63;
    same(
        &got,
        &v6frame(&ip6(e, &icmp6(ROUTER6, SUB, 3, 0, 0, &echo6))),
    );
}

#[test]
fn rfc7915_4_3_an_error_inside_an_error_and_a_bad_checksum_are_dropped() {
    let inner_err = ip4(h4(1, POOL, SERVER), &[], &icmp4(3, 3, 0, &sent4(b"q")));
    let f = v4frame(&ip4(h4(1, ROUTER, POOL), &[], &icmp4(3, 1, 0, &inner_err)));
    assert_eq!(
        run6(&f, &inbound(None), &Mtus::default()),
        Err(Refused::NestedError)
    );
    let mut bad = icmp4(3, 3, 0, &sent4(b"q"));
    bad[3] ^= 0x55;
    let f = v4frame(&ip4(h4(1, ROUTER, POOL), &[], &bad));
    assert_eq!(
        run6(&f, &inbound(None), &Mtus::default()),
        Err(Refused::Checksum)
    );
}

// ---- 5.2-5.3: ICMPv6 errors to ICMPv4 ----

/// The server's reply as the NAT delivered it (server6 -> subscriber), about which an
/// IPv6 router sends an ICMPv6 error to the server.
fn reply6(data: &[u8]) -> Vec<u8> {
    let mut h = h6(17, SERVER6, SUB);
    h.hop = 30;
    ip6(h, &udp6(SERVER6, SUB, 53, SUB_PORT, data))
}

fn reply4(data: &[u8]) -> Vec<u8> {
    let mut h = h4(17, SERVER, POOL);
    h.ttl = 30;
    h.df = false;
    h.ident = 0;
    ip4(h, &[], &udp4(SERVER, POOL, 53, POOL_PORT, data))
}

/// The translation of an error from the IPv6 router about `reply6`.
fn about_reply() -> To4 {
    To4 {
        outer: s4(ROUTER_V6_AS4, SERVER, None),
        inner: s4(SERVER, POOL, Some((53, POOL_PORT))),
        ident: 0x0999,
    }
}

fn error6(ty: u8, code: u8, word: u32, m: &Mtus) -> Result<Vec<u8>, Refused> {
    let f = v6frame(&ip6(
        h6(58, ROUTER_V6, SERVER6),
        &icmp6(ROUTER_V6, SERVER6, ty, code, word, &reply6(b"answer")),
    ));
    let t = about_reply();
    run4(&f, &t, m)
}

fn want_error4(ty: u8, code: u8, word: u32) -> Vec<u8> {
    let mut e = h4(1, ROUTER_V6_AS4, SERVER);
    e.ttl = 63;
    e.df = false;
    e.ident = 0x0999;
    v4frame(&ip4(e, &[], &icmp4(ty, code, word, &reply4(b"answer"))))
}

#[test]
fn rfc7915_5_2_icmpv6_errors_map_to_icmpv4_with_the_packet_inside_translated() {
    let m = Mtus::default();
    let cases: [ErrorCase; 9] = [
        ((1, 0), (3, 1, 0)),
        ((1, 1), (3, 10, 0)),
        ((1, 2), (3, 1, 0)),
        ((1, 3), (3, 1, 0)),
        ((1, 4), (3, 3, 0)),
        ((3, 0), (11, 0, 0)),
        ((3, 1), (11, 1, 0)),
        ((4, 1), (3, 2, 0)), // unrecognised next header: protocol unreachable
        ((4, 0), (12, 0, 12 << 24)), // pointer 8 (source) -> 12, set below
    ];
    for ((t6, c6), (t4, c4, w4)) in cases {
        let word = if (t6, c6) == (4, 0) { 8 } else { 0 };
        same(&error6(t6, c6, word, &m).unwrap(), &want_error4(t4, c4, w4));
    }
    for (t6, c6) in [(1, 5), (1, 6), (4, 2), (4, 3)] {
        assert_eq!(error6(t6, c6, 0, &m), Err(Refused::IcmpUntranslatable));
    }
}

#[test]
fn rfc7915_5_2_parameter_problem_pointers_follow_figure_6() {
    let m = Mtus::default();
    for (p6, p4) in [
        (0, 0),
        (1, 1),
        (4, 2),
        (5, 2),
        (6, 9),
        (7, 8),
        (8, 12),
        (23, 12),
        (24, 16),
        (39, 16),
    ] {
        same(
            &error6(4, 0, p6, &m).unwrap(),
            &want_error4(12, 0, p4 << 24),
        );
    }
    for p6 in [2, 3, 40] {
        assert_eq!(error6(4, 0, p6, &m), Err(Refused::IcmpUntranslatable));
    }
}

#[test]
fn rfc7915_5_2_packet_too_big_becomes_fragmentation_needed_with_the_mtu_adjusted() {
    let m = Mtus::default();
    same(&error6(2, 0, 1400, &m).unwrap(), &want_error4(3, 4, 1380));
    // Bounded by the IPv4 hop's MTU, and by the IPv6 hop's MTU - 20.
    same(&error6(2, 0, 9000, &m).unwrap(), &want_error4(3, 4, 1480));
    let small = Mtus { ipv6: 1400, ..m };
    same(
        &error6(2, 0, 9000, &small).unwrap(),
        &want_error4(3, 4, 1380),
    );
}

#[test]
fn rfc7915_5_3_icmpv4_error_is_truncated_to_576_bytes() {
    let data = vec![4u8; 700];
    let f = v6frame(&ip6(
        h6(58, ROUTER_V6, SERVER6),
        &icmp6(ROUTER_V6, SERVER6, 1, 4, 0, &reply6(&data)),
    ));
    let t = about_reply();
    let got = run4(&f, &t, &Mtus::default()).unwrap();
    assert_eq!(got.len(), L3 + 576);
    let inner = reply4(&data);
    let mut e = h4(1, ROUTER_V6_AS4, SERVER);
    e.ttl = 63;
    e.df = false;
    e.ident = 0x0999;
    same(
        &got,
        &v4frame(&ip4(e, &[], &icmp4(3, 3, 0, &inner[..576 - 28]))),
    );
}

#[test]
fn rfc7915_5_3_an_icmpv6_error_with_a_bad_checksum_is_dropped() {
    let mut m = icmp6(ROUTER_V6, SERVER6, 1, 4, 0, &reply6(b"x"));
    m[2] ^= 0x10;
    let f = v6frame(&ip6(h6(58, ROUTER_V6, SERVER6), &m));
    assert_eq!(
        run4(&f, &outbound(None), &Mtus::default()),
        Err(Refused::Checksum)
    );
}

#[test]
fn truncated_and_malformed_packets_are_refused() {
    let f = v4frame(&ip4(h4(6, SERVER, POOL), &[], &[0; 10]));
    assert_eq!(
        run6(&f, &inbound(None), &Mtus::default()),
        Err(Refused::Truncated)
    );
    let mut f = v4frame(&ip4(
        h4(17, SERVER, POOL),
        &[],
        &udp4(SERVER, POOL, 1, 2, b""),
    ));
    f[L3 + 10] ^= 1; // header checksum
    assert_eq!(
        run6(&f, &inbound(None), &Mtus::default()),
        Err(Refused::Checksum)
    );
    let f = v6frame(&ip6(h6(17, SUB, SERVER6), &[0; 6]));
    assert_eq!(
        run4(&f, &outbound(None), &Mtus::default()),
        Err(Refused::Truncated)
    );
    let mut f = v6frame(&ip6(h6(17, SUB, SERVER6), &udp6(SUB, SERVER6, 1, 2, b"")));
    f[L3] = 0x45;
    assert_eq!(
        run4(&f, &outbound(None), &Mtus::default()),
        Err(Refused::Malformed)
    );
}

#[test]
fn a_refused_packet_is_left_as_it_came_for_the_callers_icmp_error() {
    // Too big for the next hop: the caller answers with the packet as it was sent
    // (ports and checksum not rewritten), so the sender can match the error.
    let f = big4();
    let m = Mtus {
        ipv6: 1480,
        ..Mtus::default()
    };
    let mut b = VecBuf::new(&f);
    let r = to_ipv6(&mut b, L3, &inbound(Some((53, SUB_PORT))), &m);
    assert_eq!(r, Err(Refused::TooBig { mtu: 1460 }));
    same(&b.to_vec(), &f);
    let f = big6();
    let m = Mtus {
        ipv4: 1400,
        ..Mtus::default()
    };
    let mut b = VecBuf::new(&f);
    let r = to_ipv4(&mut b, L3, &outbound(Some((POOL_PORT, 53))), &m);
    assert_eq!(r, Err(Refused::TooBig { mtu: 1420 }));
    same(&b.to_vec(), &f);
    // Bytes after the packet (padding) are left too.
    for (f, v6) in [(big4(), false), (big6(), true)] {
        let mut f = f;
        f.extend_from_slice(&[0xee; 6]);
        let mut b = VecBuf::new(&f);
        let r = if v6 {
            let m = Mtus {
                ipv4: 1400,
                ..Mtus::default()
            };
            to_ipv4(&mut b, L3, &outbound(None), &m).err()
        } else {
            let m = Mtus {
                ipv6: 1480,
                ..Mtus::default()
            };
            to_ipv6(&mut b, L3, &inbound(None), &m).err()
        };
        assert!(matches!(r, Some(Refused::TooBig { .. })));
        same(&b.to_vec(), &f);
    }
}

/// An RFC 4884 extension structure (version 2, its checksum) with one MPLS label stack
/// object (RFC 4950: class 1, c-type 1, one entry).
fn extension() -> Vec<u8> {
    let mut e = vec![0x20, 0, 0, 0, 0x00, 0x08, 1, 1, 0x00, 0x12, 0x31, 0xff];
    let c = csum(&[&e]);
    e[2..4].copy_from_slice(&c.to_be_bytes());
    e
}

/// `orig` zero-padded to `len` bytes, then `ext`.
fn padded(orig: &[u8], len: usize, ext: &[u8]) -> Vec<u8> {
    let mut v = orig.to_vec();
    v.resize(len, 0);
    v.extend_from_slice(ext);
    v
}

#[test]
fn rfc7915_4_2_an_icmpv4_extension_follows_the_translated_datagram_with_its_length() {
    let t = about_sent();
    // Time exceeded: the original datagram padded to 128 bytes (length 32 words),
    // then the extension.
    let body = padded(&sent4(b"query"), 128, &extension());
    let f = v4frame(&ip4(
        h4(1, ROUTER, POOL),
        &[],
        &icmp4(11, 0, 32 << 16, &body),
    ));
    let (_, got) = run6(&f, &t, &Mtus::default()).unwrap();
    // As IPv6 the datagram is 148 bytes (40 + 108), padded to 152: 19 8-byte words.
    let want_body = padded(&sent6(b"query"), 152, &extension());
    let mut e = h6(58, ROUTER6, SUB);
    e.hop = 63;
    same(
        &got,
        &v6frame(&ip6(e, &icmp6(ROUTER6, SUB, 3, 0, 19 << 24, &want_body))),
    );
    // A parameter problem has no extension in ICMPv6: the extension is left out.
    let f = v4frame(&ip4(
        h4(1, ROUTER, POOL),
        &[],
        &icmp4(12, 0, 12 << 24 | 32 << 16, &body),
    ));
    let (_, got) = run6(&f, &t, &Mtus::default()).unwrap();
    let want_body = padded(&sent6(b"query"), 148, &[]);
    same(
        &got,
        &v6frame(&ip6(e, &icmp6(ROUTER6, SUB, 4, 0, 8, &want_body))),
    );
}

#[test]
fn rfc7915_5_2_an_icmpv6_extension_follows_the_translated_datagram_with_its_length() {
    // Destination unreachable (port): the original datagram padded to 128 bytes (16
    // 8-byte words), then the extension.
    let body = padded(&reply6(b"answer"), 128, &extension());
    let f = v6frame(&ip6(
        h6(58, ROUTER_V6, SERVER6),
        &icmp6(ROUTER_V6, SERVER6, 1, 4, 16 << 24, &body),
    ));
    let t = about_reply();
    let got = run4(&f, &t, &Mtus::default()).unwrap();
    // As IPv4 the datagram is 108 bytes (20 + 88), padded to 128: 32 4-byte words.
    let want_body = padded(&reply4(b"answer"), 128, &extension());
    let mut e = h4(1, ROUTER_V6_AS4, SERVER);
    e.ttl = 63;
    e.df = false;
    e.ident = 0x0999;
    same(
        &got,
        &v4frame(&ip4(e, &[], &icmp4(3, 3, 32 << 16, &want_body))),
    );
}

/// A small xorshift generator: the same mutations every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `f` with a few bytes changed, cut or grown (the L2 header left alone).
fn mutate(r: &mut Rng, f: &[u8]) -> Vec<u8> {
    let mut v = f.to_vec();
    for _ in 0..1 + r.below(4) {
        match r.below(6) {
            0..=2 if v.len() > L3 => {
                let i = L3 + r.below(v.len() - L3);
                v[i] = r.next() as u8;
            }
            3 if v.len() > L3 => v.truncate(L3 + r.below(v.len() - L3)),
            4 => v.extend((0..r.below(64)).map(|_| r.next() as u8)),
            _ if v.len() > L3 + 48 => {
                // A plausible field: a length, a type, a header length.
                let i = L3 + [2, 3, 4, 5, 6, 9, 20, 21, 24, 25, 40, 41, 48, 49][r.below(14)];
                if i < v.len() {
                    v[i] = [0, 1, 0x40, 0x80, 0xff, 8, 58, 44][r.below(8)];
                }
            }
            _ => {}
        }
    }
    v
}

#[test]
fn mutated_frames_never_panic_and_what_is_translated_is_consistent() {
    let seeds4: Vec<Vec<u8>> = vec![
        big4(),
        v4frame(&ip4(
            h4(6, SERVER, POOL),
            &[7, 7, 4, 0, 0, 0, 0, 1],
            &tcp4(SERVER, POOL, 80, POOL_PORT, b"GET /"),
        )),
        v4frame(&ip4(
            h4(1, SERVER, POOL),
            &[],
            &icmp4(0, 0, 0x2222 << 16, b"ping"),
        )),
        v4frame(&ip4(
            h4(1, ROUTER, POOL),
            &[],
            &icmp4(3, 4, 1400, &sent4(b"q")),
        )),
        v4frame(&ip4(
            h4(1, ROUTER, POOL),
            &[],
            &icmp4(
                11,
                0,
                32 << 16,
                &padded(&sent4(b"query"), 128, &extension()),
            ),
        )),
    ];
    let seeds6: Vec<Vec<u8>> = vec![
        big6(),
        v6frame(&ip6(
            h6(6, SUB, SERVER6),
            &tcp6(SUB, SERVER6, SUB_PORT, 80, b"GET /"),
        )),
        v6frame(&ip6(
            h6(58, SUB, SERVER6),
            &icmp6(SUB, SERVER6, 128, 0, 0x1111 << 16, b"ping"),
        )),
        v6frame(&ip6(
            h6(58, ROUTER_V6, SERVER6),
            &icmp6(ROUTER_V6, SERVER6, 2, 0, 1400, &reply6(b"a")),
        )),
        v6frame(&ip6(
            h6(58, ROUTER_V6, SERVER6),
            &icmp6(
                ROUTER_V6,
                SERVER6,
                1,
                4,
                16 << 24,
                &padded(&reply6(b"answer"), 128, &extension()),
            ),
        )),
    ];
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut ok4, mut ok6) = (0, 0);
    for _ in 0..20_000 {
        let k = r.below(seeds4.len());
        let f = mutate(&mut r, &seeds4[k]);
        let mut b = VecBuf::new(&f);
        match to_ipv6(&mut b, L3, &about_sent(), &Mtus::default()) {
            Ok(Out6::Whole) => {
                ok4 += 1;
                let out = b.to_vec();
                assert_eq!(&out[12..14], &[0x86, 0xdd]);
                let plen = usize::from(u16::from_be_bytes([out[L3 + 4], out[L3 + 5]]));
                assert_eq!(out.len(), L3 + 40 + plen, "payload length of {}", hex(&f));
            }
            Ok(Out6::Split) => {
                let mut rest = VecBuf::new(&[]);
                while split_ipv6(&mut b, L3, 1280, &mut rest).unwrap() {
                    assert!(b.len() <= L3 + 1280);
                    b = std::mem::replace(&mut rest, VecBuf::new(&[]));
                }
            }
            Err(Refused::TooBig { .. }) => same(&b.to_vec(), &f),
            Err(_) => {}
        }
        let k = r.below(seeds6.len());
        let f = mutate(&mut r, &seeds6[k]);
        let mut b = VecBuf::new(&f);
        match to_ipv4(&mut b, L3, &about_reply(), &Mtus::default()) {
            Ok(()) => {
                ok6 += 1;
                let out = b.to_vec();
                assert_eq!(&out[12..14], &[0x08, 0x00]);
                let total = usize::from(u16::from_be_bytes([out[L3 + 2], out[L3 + 3]]));
                assert_eq!(out.len(), L3 + total, "total length of {}", hex(&f));
                assert_eq!(
                    csum(&[&out[L3..L3 + 20]]),
                    0,
                    "header checksum of {}",
                    hex(&f)
                );
            }
            Err(Refused::TooBig { .. }) => same(&b.to_vec(), &f),
            Err(_) => {}
        }
    }
    // The mutations leave many packets translatable.
    assert!(ok4 > 1000 && ok6 > 1000, "{ok4} {ok6}");
}
