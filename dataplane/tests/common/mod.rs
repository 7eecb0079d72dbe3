//! Shared helpers for the pipeline tests: build frames with etherparse, check what
//! comes out with our own checksum code and etherparse's parser.
#![allow(dead_code)]

use cgnat_config::Config;
use cgnat_dataplane::buf::VecBuf;
use cgnat_dataplane::counters::WorkerCounters;
use cgnat_dataplane::harness::{Harness, INSIDE_MAC, OUTSIDE_MAC};
use cgnat_dataplane::nat::rss::Steering;
use cgnat_dataplane::nat::{Nat, NatParams};
use cgnat_dataplane::neighbors::Neighbors;
use cgnat_dataplane::pipeline::{port_infos, PipelineParams, Side, Worker};
use cgnat_dataplane::wire::checksum;
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const GW_MAC: [u8; 6] = [0x02, 0xaa, 0, 0, 0, 0xfe];
pub const HOST_MAC: [u8; 6] = [0x02, 0xbb, 0, 0, 0, 0x01];

/// A config with the given extra `[nat]` lines.
pub fn config(nat_extra: &str) -> Config {
    Config::parse(&config_text(nat_extra), "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// The text of [`config`].
pub fn config_text(nat_extra: &str) -> String {
    cgnat_testkit::null_ports_config(&format!("pool = [\"198.51.100.0/28\"]\n{nat_extra}"))
}

pub fn harness(nat_extra: &str) -> Harness {
    let h = Harness::new(&config(nat_extra), 1000);
    // Inside hosts are known (as after ARP).
    for i in 0..=255u32 {
        for j in [1u32, 2, 3, 4, 5, 6, 7, 8, 9, 10] {
            let ip = u32::from(Ipv4Addr::new(100, 64, j as u8, i as u8));
            h.neighbors.learn(ip, &HOST_MAC);
        }
    }
    h
}

pub fn sa(s: &str) -> SocketAddrV4 {
    s.parse().unwrap()
}

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn builder(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    inbound: bool,
) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    let (smac, dmac) = if inbound {
        (GW_MAC, OUTSIDE_MAC)
    } else {
        (HOST_MAC, INSIDE_MAC)
    };
    PacketBuilder::ethernet2(smac, dmac).ipv4(src.octets(), dst.octets(), 64)
}

/// An Ethernet frame of IPv4 protocol `proto` (any: GRE, ESP, ...) from `src` to
/// `dst` carrying `payload` (no options, TTL 64, header checksum filled).
pub fn ip_frame(src: &str, dst: &str, proto: u8, payload: &[u8], inbound: bool) -> Vec<u8> {
    let (smac, dmac) = if inbound {
        (GW_MAC, OUTSIDE_MAC)
    } else {
        (HOST_MAC, INSIDE_MAC)
    };
    let mut f = [&dmac[..], &smac[..], &[0x08, 0x00]].concat();
    let len = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&len.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&ip(src).octets());
    h.extend_from_slice(&ip(dst).octets());
    let c = !checksum::fold(checksum::sum(&h));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(payload);
    f
}

pub fn udp(src: &str, dst: &str, payload: &[u8], inbound: bool) -> Vec<u8> {
    let (s, d) = (sa(src), sa(dst));
    let b = builder(*s.ip(), *d.ip(), inbound).udp(s.port(), d.port());
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

pub fn tcp(src: &str, dst: &str, seq: u32, flags: &str, payload: &[u8], inbound: bool) -> Vec<u8> {
    let (s, d) = (sa(src), sa(dst));
    let mut b = builder(*s.ip(), *d.ip(), inbound).tcp(s.port(), d.port(), seq, 65535);
    for f in flags.chars() {
        b = match f {
            'S' => b.syn(),
            'A' => b.ack(1),
            'F' => b.fin(),
            'R' => b.rst(),
            'P' => b.psh(),
            _ => b,
        };
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

pub fn ping(src: &str, dst: &str, id: u16, seq: u16, reply: bool, inbound: bool) -> Vec<u8> {
    let b = builder(ip(src), ip(dst), inbound);
    let b = if reply {
        b.icmpv4_echo_reply(id, seq)
    } else {
        b.icmpv4_echo_request(id, seq)
    };
    let mut v = Vec::new();
    b.write(&mut v, b"abcdefgh").unwrap();
    v
}

/// An ARP frame: `op` 1 request, 2 reply; broadcast for a request, to the port's MAC
/// for a reply.
pub fn arp(op: u16, sha: [u8; 6], spa: &str, tpa: &str, to: Side) -> Vec<u8> {
    let mut f = if op == 1 {
        vec![0xff; 6]
    } else if to == Side::Inside {
        INSIDE_MAC.to_vec()
    } else {
        OUTSIDE_MAC.to_vec()
    };
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&ip(spa).octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&ip(tpa).octets());
    f
}

/// `frame` with 802.1Q tags (two: QinQ, the outer one 802.1ad) after its MACs.
pub fn vlan_tagged(frame: &[u8], tags: &[u16]) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    for (i, t) in tags.iter().enumerate() {
        let tpid: u16 = if tags.len() == 2 && i == 0 {
            0x88a8
        } else {
            0x8100
        };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&t.to_be_bytes());
    }
    f.extend_from_slice(&frame[12..]);
    f
}

/// A frame's tags and the frame without them.
pub fn vlan_untagged(frame: &[u8]) -> (Vec<u16>, Vec<u8>) {
    let mut tags = Vec::new();
    let mut at = 12;
    while matches!(
        u16::from_be_bytes([frame[at], frame[at + 1]]),
        0x8100 | 0x88a8
    ) {
        tags.push(u16::from_be_bytes([frame[at + 2], frame[at + 3]]) & 0xfff);
        at += 4;
    }
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&frame[at..]);
    (tags, f)
}

/// What a test reads off an output frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Out {
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub proto: u8,
    pub ttl: u8,
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
}

/// Verifies IPv4 and L4 checksums with the project's own one's-complement code.
pub fn checksums_ok(frame: &[u8]) -> bool {
    let ipb = &frame[14..];
    let ihl = usize::from(ipb[0] & 15) * 4;
    let total = usize::from(u16::from_be_bytes([ipb[2], ipb[3]]));
    if checksum::fold(checksum::sum(&ipb[..ihl])) != 0xffff {
        return false;
    }
    let l4 = &ipb[ihl..total];
    let (src, dst) = (
        [ipb[12], ipb[13], ipb[14], ipb[15]],
        [ipb[16], ipb[17], ipb[18], ipb[19]],
    );
    match ipb[9] {
        6 => {
            checksum::fold(
                checksum::sum(l4) + checksum::pseudo_header(src, dst, 6, l4.len() as u16),
            ) == 0xffff
        }
        17 => {
            u16::from_be_bytes([l4[6], l4[7]]) == 0
                || checksum::fold(
                    checksum::sum(l4) + checksum::pseudo_header(src, dst, 17, l4.len() as u16),
                ) == 0xffff
        }
        1 => checksum::fold(checksum::sum(l4)) == 0xffff,
        _ => true,
    }
}

pub fn out(frame: &[u8]) -> Out {
    assert!(checksums_ok(frame), "bad checksum in {frame:02x?}");
    let p = SlicedPacket::from_ethernet(frame).expect("parseable output");
    let Some(NetSlice::Ipv4(ipv4)) = p.net else {
        panic!("not IPv4: {frame:02x?}")
    };
    let h = ipv4.header();
    let (sp, dp) = match p.transport {
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
        Some(TransportSlice::Icmpv4(i)) => {
            let id = u16::from_be_bytes([i.slice()[4], i.slice()[5]]);
            (id, id)
        }
        _ => (0, 0),
    };
    let mut dst_mac = [0; 6];
    dst_mac.copy_from_slice(&frame[0..6]);
    let mut src_mac = [0; 6];
    src_mac.copy_from_slice(&frame[6..12]);
    Out {
        src: SocketAddrV4::new(h.source_addr(), sp),
        dst: SocketAddrV4::new(h.destination_addr(), dp),
        proto: h.protocol().0,
        ttl: h.ttl(),
        dst_mac,
        src_mac,
    }
}

/// Opens a TCP connection from inside `client` to outside `server` through the NAT
/// (client ISN 100, server ISN `server_isn`); returns the client's outside endpoint.
pub fn connect(h: &mut Harness, client: &str, server: &str, server_isn: u32) -> SocketAddrV4 {
    let c = out(&one(
        h,
        &tcp(client, server, 100, "S", b"", false),
        Side::Inside,
        1000,
        Side::Outside,
    ))
    .src;
    one(
        h,
        &tcp(server, &c.to_string(), server_isn, "SA", b"", true),
        Side::Outside,
        1000,
        Side::Inside,
    );
    c
}

/// Injects and expects exactly one frame out of `side`.
pub fn one(h: &mut Harness, frame: &[u8], from: Side, now: u32, to: Side) -> Vec<u8> {
    let mut o = h.inject(frame, from, now);
    assert_eq!(o.len(), 1, "expected one frame out");
    let (side, f) = o.pop().unwrap();
    assert_eq!(side, to);
    f
}

pub fn none(h: &mut Harness, frame: &[u8], from: Side, now: u32) {
    let o = h.inject(frame, from, now);
    assert!(o.is_empty(), "expected no output, got {o:02x?}");
}

/// Writes a classic pcap (microseconds, Ethernet).
pub fn write_pcap(path: &std::path::Path, frames: &[Vec<u8>]) {
    cgnat_dataplane::pcap::write(path, frames, 1_700_000_000, 1000).unwrap();
}

/// Reads the frames of a pcap written by DPDK's net_pcap (or by write_pcap).
pub fn read_pcap(path: &std::path::Path) -> Vec<Vec<u8>> {
    cgnat_dataplane::pcap::frames(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Opens a UDP flow from inside host 100.64.1.2:5000 to 192.0.2.10:53 at `now`; returns
/// its mapping (the outside endpoint).
pub fn open_udp(h: &mut Harness, now: u32) -> SocketAddrV4 {
    out(&one(
        h,
        &udp("100.64.1.2:5000", "192.0.2.10:53", b"q", false),
        Side::Inside,
        now,
        Side::Outside,
    ))
    .src
}

/// `n` workers of the appliance of `cfg` without EAL, as the runtime builds them,
/// with the inside and outside ports' RSS steering when given, sharing one neighbour
/// table (the gateway known).
pub fn build_workers(
    cfg: &Config,
    n: u16,
    inside: Option<&Arc<Steering>>,
    outside: Option<&Arc<Steering>>,
) -> (Vec<Worker<VecBuf>>, Arc<Neighbors>) {
    let neighbors = Arc::new(Neighbors::new(4096));
    neighbors.pin(u32::from(ip("203.0.113.254")), &GW_MAC);
    let macs = [INSIDE_MAC, OUTSIDE_MAC];
    let ws = (0..n)
        .map(|w| {
            let counters = Arc::new(WorkerCounters::default());
            let mut params = NatParams::from_config(&cfg.nat, n).unwrap();
            params.set_algs(&cfg.alg);
            params.set_nat64(cfg.nat64.as_ref());
            params.steering = outside.cloned();
            let nat = Nat::new(params, w, n, 1000, 77 + u64::from(w), counters.clone());
            let mut pp = PipelineParams::from_config(cfg);
            pp.steering = inside.cloned();
            Worker::new(nat, port_infos(cfg, macs), pp, neighbors.clone(), counters)
        })
        .collect();
    (ws, neighbors)
}

/// Splits a frame's IPv4 datagram (no options) into fragments at payload offsets
/// `cuts` (multiples of 8, rising).
pub fn fragment(frame: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let payload = &frame[34..];
    let mk = |off: usize, data: &[u8], more: bool| {
        let mut f = frame[..34].to_vec();
        f.extend_from_slice(data);
        let total = (20 + data.len()) as u16;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        let ff = ((off / 8) as u16) | if more { 0x2000 } else { 0 };
        f[20..22].copy_from_slice(&ff.to_be_bytes());
        f[22] = 64;
        f[24] = 0;
        f[25] = 0;
        let c = checksum::finish(checksum::sum(&f[14..34]));
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f
    };
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(payload.len());
    bounds
        .windows(2)
        .map(|w| mk(w[0], &payload[w[0]..w[1]], w[1] < payload.len()))
        .collect()
}

/// The frame with IP identifier `id` (header checksum recomputed).
pub fn with_ident(mut f: Vec<u8>, id: u16) -> Vec<u8> {
    f[18..20].copy_from_slice(&id.to_be_bytes());
    f[24] = 0;
    f[25] = 0;
    let c = checksum::finish(checksum::sum(&f[14..34]));
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

/// The IP payload of a datagram's fragments (in any order) put back together, after
/// the first fragment's Ethernet and IP header (no options); the length fields are
/// those of the first fragment.
pub fn reassemble(frags: &[Vec<u8>]) -> Vec<u8> {
    let mut v: Vec<&Vec<u8>> = frags.iter().collect();
    v.sort_by_key(|f| u16::from_be_bytes([f[20], f[21]]) & 0x1fff);
    let mut whole = v[0][..34].to_vec();
    for f in v {
        assert_eq!(
            usize::from(u16::from_be_bytes([f[20], f[21]]) & 0x1fff) * 8,
            whole.len() - 34,
            "fragments without gap or overlap"
        );
        whole.extend_from_slice(&f[34..]);
    }
    whole
}

/// Whether the UDP checksum of a whole datagram (frame without options) holds.
pub fn udp_ok(a: &[u8]) -> bool {
    let data = &a[34..];
    let src = [a[26], a[27], a[28], a[29]];
    let dst = [a[30], a[31], a[32], a[33]];
    checksum::fold(checksum::sum(data) + checksum::pseudo_header(src, dst, 17, data.len() as u16))
        == 0xffff
}

/// A SIP INVITE from 100.64.1.2:5060 whose SDP offers `media`, padded with an
/// attribute line to `size` bytes of UDP payload (at least about 600).
pub fn invite(media: u16, size: usize) -> Vec<u8> {
    let msg = |pad: usize| {
        let sdp = format!(
            "v=0\r\no=alice 1 1 IN IP4 100.64.1.2\r\ns=-\r\nc=IN IP4 100.64.1.2\r\nt=0 0\r\nm=audio {media} RTP/AVP 0 8 96\r\na=rtpmap:96 opus/48000/2\r\na=x-pad:{}\r\n",
            "p".repeat(pad)
        );
        format!(
            "INVITE sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 100.64.1.2:5060;branch=z9hG4bK-{media}\r\nFrom: <sip:alice@100.64.1.2>;tag=a1\r\nTo: <sip:bob@192.0.2.20>\r\nCall-ID: frag{media}@100.64.1.2\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@100.64.1.2:5060>\r\nContent-Type: application/sdp\r\nContent-Length: {:05}\r\n\r\n{sdp}",
            sdp.len()
        )
    };
    let pad = size.saturating_sub(msg(0).len());
    let m = msg(pad);
    udp("100.64.1.2:5060", "192.0.2.20:5060", m.as_bytes(), false)
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The TFTP server 192.0.2.10 answers a read request of 100.64.1.2:44935 (mapped to
/// `m`) from a new port: the answer reaches the client.
pub fn tftp_answer_reaches_client(h: &mut Harness, m: SocketAddrV4, now: u32) {
    let data = udp(
        "192.0.2.10:59557",
        &m.to_string(),
        b"\x00\x03\x00\x01hello",
        true,
    );
    let back = out(&one(h, &data, Side::Outside, now, Side::Inside));
    assert_eq!(back.dst, sa("100.64.1.2:44935"));
}

/// A TCP port on loopback that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The body of a GET of `url` (curl, 2 s at most), if it answered 2xx.
pub fn http_get(url: &str) -> Option<String> {
    let out = std::process::Command::new("curl")
        .args(["-sf", "--max-time", "2", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A spawned process (`cgnat run`), stopped with SIGTERM (then SIGKILL) when dropped.
pub struct Killed(pub std::process::Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg(self.0.id().to_string())
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Fails the test, naming what installs them, if any of `tools` is not on the PATH.
pub fn require_tools(tools: &[&str]) {
    for tool in tools {
        assert!(
            std::process::Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .status()
                .unwrap()
                .success(),
            "{tool} is missing: run scripts/install-deps.sh --test"
        );
    }
}

/// Waits at most `limit` for `child` to exit.
pub fn exit_within(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

// ---- IPv6 (issue 17) ----

/// An IPv6 address's bytes.
pub fn a6(s: &str) -> [u8; 16] {
    s.parse::<std::net::Ipv6Addr>().unwrap().octets()
}

/// The Internet checksum over the concatenated parts (each of even length but the
/// last), written here rather than taken from the code under test.
pub fn csum(parts: &[&[u8]]) -> u16 {
    let mut all: Vec<u8> = parts.concat();
    if all.len() % 2 == 1 {
        all.push(0);
    }
    let mut s: u32 = all
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet frame carrying an IPv6 ICMPv6 message, its checksum filled, by hand.
pub fn icmp6_frame(
    smac: [u8; 6],
    dmac: [u8; 6],
    src: [u8; 16],
    dst: [u8; 16],
    hop: u8,
    icmp: &[u8],
) -> Vec<u8> {
    let mut m = icmp.to_vec();
    m[2] = 0;
    m[3] = 0;
    let len = (m.len() as u32).to_be_bytes();
    let c = csum(&[&src, &dst, &len, &[0, 0, 0, 58], &m]);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&dmac);
    f.extend_from_slice(&smac);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(m.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, hop]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&m);
    f
}

/// A neighbour solicitation or advertisement body: type, flags, target, and a
/// link-layer address option (`opt` kind, 0 for none).
pub fn nd(ty: u8, flags: u32, target: [u8; 16], opt: u8, mac: [u8; 6]) -> Vec<u8> {
    let mut m = vec![ty, 0, 0, 0];
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&target);
    if opt != 0 {
        m.extend_from_slice(&[opt, 1]);
        m.extend_from_slice(&mac);
    }
    m
}

pub fn sol_node(a: [u8; 16]) -> [u8; 16] {
    let mut s = a6("ff02::1:ff00:0");
    s[13..].copy_from_slice(&a[13..]);
    s
}

pub fn group_mac(a: [u8; 16]) -> [u8; 6] {
    [0x33, 0x33, a[12], a[13], a[14], a[15]]
}

/// An IPv4 frame as cgnat sends it from IPv6 (RFC 7915 5.1): TTL = hop limit - 1,
/// identification `ident`, no DF at these sizes (1260 bytes or less), TOS 0.
pub fn v4_out(built: Vec<u8>, ident: u16) -> Vec<u8> {
    let mut f = built;
    f[18..20].copy_from_slice(&ident.to_be_bytes());
    f[20] = 0;
    f[21] = 0;
    f[24] = 0;
    f[25] = 0;
    let c = csum(&[&f[14..34]]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

/// Injects `n` frames at `now` + k / 1000 (k the frame's index), each one of `seeds`
/// in turn with 1 to 4 bytes after the Ethernet header changed and maybe cut short
/// (xorshift from `x`): nothing may panic, and every frame that leaves must be a
/// whole IPv4 packet with a valid header checksum or a whole IPv6 packet. Returns
/// how many left as IPv4 and as IPv6.
pub fn mutated_run(
    h: &mut Harness,
    seeds: &[(Vec<u8>, Side)],
    n: u32,
    mut x: u64,
    now: u32,
) -> [u32; 2] {
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut left = [0u32; 2];
    for k in 0..n {
        let (seed, side) = &seeds[k as usize % seeds.len()];
        let mut f = seed.clone();
        for _ in 0..1 + next() % 4 {
            // Past the Ethernet header: the frame stays IPv6 or IPv4 mostly.
            let at = 14 + (next() as usize) % (f.len() - 14);
            f[at] = next() as u8;
        }
        if next() % 4 == 0 {
            f.truncate(14 + (next() as usize) % (f.len() - 14));
        }
        for (_, out) in h.inject(&f, *side, now + k / 1000) {
            match u16::from_be_bytes([out[12], out[13]]) {
                0x0800 => {
                    let ihl = usize::from(out[14] & 15) * 4;
                    let total = usize::from(u16::from_be_bytes([out[16], out[17]]));
                    assert!(ihl >= 20 && 14 + total <= out.len(), "{out:?}");
                    assert_eq!(csum(&[&out[14..14 + ihl]]), 0, "{out:?}");
                    left[0] += 1;
                }
                0x86dd => {
                    let plen = usize::from(u16::from_be_bytes([out[18], out[19]]));
                    assert_eq!(14 + 40 + plen, out.len(), "{out:?}");
                    left[1] += 1;
                }
                t => panic!("ethertype {t:#x}: {out:?}"),
            }
        }
    }
    left
}
