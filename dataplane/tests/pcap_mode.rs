//! `cgnat pcap` end to end: spawn the binary (a real EAL with net_pcap vdevs) on
//! generated traffic and check what leaves each port, byte by byte.

mod common;
use common::*;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

const CONFIG: &str = r#"
[dataplane]
eal_args = ["--no-huge", "-m", "512", "--no-pci"]
control_lcore = 0
worker_lcores = [1]
mbufs = 8191

[[ports]]
name = "inside"
role = "inside"
device = "replaced-in-pcap-mode"
ipv4 = "100.64.0.1/10"

[[ports]]
name = "outside"
role = "outside"
device = "replaced-in-pcap-mode"
ipv4 = "203.0.113.1/24"
gateway = "203.0.113.254"
gateway_mac = "02:aa:00:00:00:fe"

[nat]
pool = ["198.51.100.0/28"]
"#;

fn workdir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("pcap-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run_pcap(
    dir: &Path,
    config_extra: &str,
    inside: &[Vec<u8>],
    outside: Option<&[Vec<u8>]>,
) -> Value {
    run_pcap_config(dir, &format!("{CONFIG}\n{config_extra}"), inside, outside)
}

/// [`run_pcap`] with the whole config text.
fn run_pcap_config(
    dir: &Path,
    config: &str,
    inside: &[Vec<u8>],
    outside: Option<&[Vec<u8>]>,
) -> Value {
    let cfg = dir.join("cgnat.toml");
    std::fs::write(&cfg, config).unwrap();
    write_pcap(&dir.join("in.pcap"), inside);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cgnat"));
    cmd.arg("pcap")
        .arg("-c")
        .arg(&cfg)
        .arg("--inside")
        .arg(dir.join("in.pcap"));
    if let Some(o) = outside {
        write_pcap(&dir.join("in-outside.pcap"), o);
        cmd.arg("--outside").arg(dir.join("in-outside.pcap"));
    }
    let out = cmd
        .arg("--out-dir")
        .arg(dir.join("out"))
        .output()
        .expect("spawn cgnat");
    assert!(
        out.status.success(),
        "cgnat pcap failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("out/summary.json")).expect("summary.json");
    serde_json::from_str(&text).expect("summary is JSON")
}

fn in_pool(a: Ipv4Addr) -> bool {
    a.octets()[..3] == [198, 51, 100] && a.octets()[3] < 16
}

struct Flow {
    proto: u8,
    src: Ipv4Addr,
    sport: u16,
}

/// What the subscribers send: `flows` flows from `subs` subscribers of 100.64/10,
/// a third each UDP, TCP (SYN then ACK with data) and ICMP echo.
fn subscriber_traffic(flows: usize, subs: u32) -> (Vec<Vec<u8>>, Vec<Flow>) {
    let mut frames = Vec::new();
    let mut meta = Vec::new();
    for i in 0..flows {
        let s = 1 + (i as u32 * 7919) % subs;
        let src = Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + 256 + s * 37);
        let server = Ipv4Addr::new(192, 0, 2, 10 + (i % 10) as u8);
        let sport = 1024 + (i as u16).wrapping_mul(13) % 60000;
        let a = format!("{src}:{sport}");
        match i % 3 {
            0 => {
                frames.push(udp(
                    &a,
                    &format!("{server}:53"),
                    format!("q{i}").as_bytes(),
                    false,
                ));
                meta.push(Flow {
                    proto: 17,
                    src,
                    sport,
                });
            }
            1 => {
                frames.push(tcp(&a, &format!("{server}:443"), 1000, "S", b"", false));
                meta.push(Flow {
                    proto: 6,
                    src,
                    sport,
                });
                frames.push(tcp(
                    &a,
                    &format!("{server}:443"),
                    1001,
                    "A",
                    b"hello",
                    false,
                ));
                meta.push(Flow {
                    proto: 6,
                    src,
                    sport,
                });
            }
            _ => {
                frames.push(ping(
                    &src.to_string(),
                    &server.to_string(),
                    sport,
                    1,
                    false,
                    false,
                ));
                meta.push(Flow {
                    proto: 1,
                    src,
                    sport,
                });
            }
        }
    }
    (frames, meta)
}

#[test]
fn ten_thousand_flows_leave_with_pool_sources_consistent_mappings_and_valid_checksums() {
    let dir = workdir("10k");
    let (frames, meta) = subscriber_traffic(10_000, 1000);
    let summary = run_pcap(&dir, "", &frames, None);
    let out = read_pcap(&dir.join("out/outside.pcap"));
    assert_eq!(
        out.len(),
        frames.len(),
        "every packet translated; summary: {summary}"
    );
    let mut endpoint: HashMap<(u8, Ipv4Addr, u16), (Ipv4Addr, u16)> = HashMap::new();
    let mut owner: HashMap<(u8, Ipv4Addr, u16), (Ipv4Addr, u16)> = HashMap::new();
    let mut sub_addr: HashMap<Ipv4Addr, Ipv4Addr> = HashMap::new();
    for (f, m) in out.iter().zip(&meta) {
        assert!(checksums_ok(f), "bad checksum: {f:02x?}");
        let o = common::out(f);
        assert!(
            in_pool(*o.src.ip()),
            "source {} is not a pool address",
            o.src
        );
        assert_eq!(o.proto, m.proto);
        assert_eq!(o.dst_mac, GW_MAC);
        let mapped = (*o.src.ip(), o.src.port());
        // The same inside endpoint always on the same outside address and port.
        let prev = endpoint.insert((m.proto, m.src, m.sport), mapped);
        assert!(
            prev.is_none() || prev == Some(mapped),
            "{}:{} moved",
            m.src,
            m.sport
        );
        // No two inside endpoints on the same outside address and port.
        let who = owner.insert((m.proto, mapped.0, mapped.1), (m.src, m.sport));
        assert!(
            who.is_none() || who == Some((m.src, m.sport)),
            "{mapped:?} shared"
        );
        // Each subscriber on a single pool address (paired pooling).
        let a = sub_addr.entry(m.src).or_insert(mapped.0);
        assert_eq!(*a, mapped.0, "subscriber {} on two pool addresses", m.src);
    }
    assert_eq!(summary["packets_in"]["inside"], frames.len());
    assert_eq!(summary["translated"]["in2out"], frames.len());
    let created: u64 = ["tcp", "udp", "icmp"]
        .iter()
        .map(|p| summary["sessions_created"][p].as_u64().unwrap())
        .sum();
    assert_eq!(created, 10_000);
    assert_eq!(sub_addr.len(), 1000);
    let used: HashSet<Ipv4Addr> = sub_addr.values().copied().collect();
    assert!(
        used.len() > 8,
        "subscribers spread over the pool, got {}",
        used.len()
    );
}

#[test]
fn a_udp_packet_is_rewritten_exactly() {
    let dir = workdir("exact");
    let input = udp("100.64.1.2:5000", "192.0.2.10:53", b"exact bytes", false);
    run_pcap(&dir, "", std::slice::from_ref(&input), None);
    let out = read_pcap(&dir.join("out/outside.pcap"));
    assert_eq!(out.len(), 1);
    let got = &out[0];
    let o = common::out(got);
    // Rebuild what must have left: same frame with the pool source, TTL - 1, the
    // gateway's MAC and this port's MAC, checksums computed from scratch by etherparse.
    let mut src_mac = [0u8; 6];
    src_mac.copy_from_slice(&got[6..12]);
    let mut want = Vec::new();
    etherparse::PacketBuilder::ethernet2(src_mac, GW_MAC)
        .ipv4(o.src.ip().octets(), [192, 0, 2, 10], 63)
        .udp(o.src.port(), 53)
        .write(&mut want, b"exact bytes")
        .unwrap();
    // etherparse sets DF and identification 0 like the input; compare every byte.
    assert_eq!(&want[..], &got[..], "\nwant {want:02x?}\ngot  {got:02x?}");
    assert_eq!(o.src.port() & 1, 0, "port parity kept");
}

#[test]
fn static_mapping_carries_inbound_traffic_to_the_inside_host() {
    let dir = workdir("static");
    let extra = "[[nat.static]]\nprotocol = \"udp\"\ninside = \"100.64.1.2:5000\"\noutside = \"198.51.100.1:6000\"\n";
    let inbound = udp("192.0.2.10:53", "198.51.100.1:6000", b"to the server", true);
    let summary = run_pcap(&dir, extra, &[], Some(std::slice::from_ref(&inbound)));
    let out = read_pcap(&dir.join("out/inside.pcap"));
    assert_eq!(out.len(), 1, "summary: {summary}");
    let o = common::out(&out[0]);
    assert_eq!(o.dst, sa("100.64.1.2:5000"));
    assert_eq!(o.src, sa("192.0.2.10:53"));
}

#[test]
fn malformed_frames_are_counted_by_reason_and_nothing_crashes() {
    let dir = workdir("bad");
    let good = udp("100.64.1.2:5000", "192.0.2.10:53", b"payload", false);
    let mut bad_ihl = good.clone();
    bad_ihl[14] = 0x44;
    let mut bad_sum = good.clone();
    bad_sum[24] ^= 0xff;
    let mut ipv6 = good.clone();
    ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
    let unsolicited = udp("192.0.2.10:53", "198.51.100.3:4000", b"", true);
    let frames = vec![good[..20].to_vec(), bad_ihl, bad_sum, ipv6, good.clone()];
    let summary = run_pcap(&dir, "", &frames, Some(std::slice::from_ref(&unsolicited)));
    let d = &summary["dropped"];
    assert_eq!(d["ipv4_truncated"], 1, "{summary}");
    assert_eq!(d["ipv4_malformed"], 1);
    assert_eq!(d["ipv4_bad_checksum"], 1);
    assert_eq!(d["eth_unsupported_ethertype"], 1);
    assert_eq!(d["no_mapping"], 1);
    assert_eq!(read_pcap(&dir.join("out/outside.pcap")).len(), 1);
}

#[test]
fn a_bad_config_is_refused_with_file_line_and_key() {
    let dir = workdir("badcfg");
    let cfg = dir.join("bad.toml");
    std::fs::write(
        &cfg,
        CONFIG.replace("mapping_unused", "").replace(
            "pool = [\"198.51.100.0/28\"]",
            "pool = [\"198.51.100.0/28\"]\nmapping = \"sideways\"",
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cgnat"))
        .arg("check")
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:"), "{err}");
    assert!(err.contains("mapping"), "{err}");
    assert!(
        err.contains("endpoint-independent"),
        "says what would be valid: {err}"
    );
    // A control surface open to other hosts without a token.
    let open = dir.join("open.toml");
    let text = format!("{CONFIG}\n[api]\nlisten = \"0.0.0.0:9470\"\n");
    std::fs::write(&open, &text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cgnat"))
        .arg("check")
        .arg("-c")
        .arg(&open)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .position(|l| l.contains("0.0.0.0:9470"))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("open.toml:{line}: key `api.listen`")) && err.contains("api.token"),
        "{err}"
    );
}

#[allow(dead_code)]
fn parse_ports(f: &[u8]) -> Option<(u16, u16)> {
    let p = SlicedPacket::from_ethernet(f).ok()?;
    let Some(NetSlice::Ipv4(_)) = p.net else {
        return None;
    };
    match p.transport {
        Some(TransportSlice::Udp(u)) => Some((u.source_port(), u.destination_port())),
        _ => None,
    }
}

/// Splits a frame's datagram in two fragments (first with `n` payload bytes).
fn fragments(frame: &[u8], n: usize, id: u16) -> (Vec<u8>, Vec<u8>) {
    let payload = &frame[34..];
    let mk = |off: usize, data: &[u8], more: bool| {
        let mut f = frame[..34].to_vec();
        f.extend_from_slice(data);
        f[16..18].copy_from_slice(&((20 + data.len()) as u16).to_be_bytes());
        f[18..20].copy_from_slice(&id.to_be_bytes());
        f[20..22]
            .copy_from_slice(&(((off / 8) as u16) | if more { 0x2000 } else { 0 }).to_be_bytes());
        f[24..26].copy_from_slice(&[0, 0]);
        let c = cgnat_dataplane::wire::checksum::finish(cgnat_dataplane::wire::checksum::sum(
            &f[14..34],
        ));
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f
    };
    (mk(0, &payload[..n], true), mk(n, &payload[n..], false))
}

/// The key behaviours through real net_pcap ports. Port preservation on a one-address
/// pool makes every mapping predictable, so the outside input can answer it. In pcap
/// mode each poll takes a burst from the inside input before one from the outside
/// input, so these few inside packets are translated before any outside one arrives.
#[test]
fn key_behaviours_through_pcap_mode() {
    let dir = workdir("behaviours");
    let extra =
        "allocation = \"dynamic\"\nport_preservation = true\nmax_sessions_per_subscriber = 3\n";
    let cfg_pool = "pool = [\"198.51.100.1/32\"]";
    let (f1, f2) = fragments(
        &udp("100.64.1.7:7000", "192.0.2.10:53", &[9; 800], false),
        400,
        0x1234,
    );
    let inside = vec![
        udp("100.64.1.2:5000", "192.0.2.10:53", b"a", false), // A: mapping 198.51.100.1:5000
        udp("100.64.1.3:6000", "192.0.2.10:53", b"b", false), // B: mapping 198.51.100.1:6000
        udp("100.64.1.2:5000", "198.51.100.1:6000", b"hairpin", false), // A -> B by B's public endpoint
        udp("100.64.1.4:1", "192.0.2.10:53", b"", false),
        udp("100.64.1.4:2", "192.0.2.10:53", b"", false),
        udp("100.64.1.4:3", "192.0.2.10:53", b"", false),
        udp("100.64.1.4:4", "192.0.2.10:53", b"", false), // C's fourth session: over the limit
        f2,                                               // out of order
        f1,
    ];
    let outside = vec![udp(
        "192.0.2.99:7777",
        "198.51.100.1:5000",
        b"stranger",
        true,
    )]; // EIF
    let cfg = dir.join("cgnat.toml");
    std::fs::write(
        &cfg,
        CONFIG.replace("pool = [\"198.51.100.0/28\"]", cfg_pool) + "\n" + extra,
    )
    .unwrap();
    write_pcap(&dir.join("in.pcap"), &inside);
    write_pcap(&dir.join("out-in.pcap"), &outside);
    let st = Command::new(env!("CARGO_BIN_EXE_cgnat"))
        .args(["pcap", "-c"])
        .arg(&cfg)
        .arg("--inside")
        .arg(dir.join("in.pcap"))
        .arg("--outside")
        .arg(dir.join("out-in.pcap"))
        .arg("--out-dir")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let is_frag = |f: &Vec<u8>| u16::from_be_bytes([f[20], f[21]]) & 0x3fff != 0;
    let all_out = read_pcap(&dir.join("out/outside.pcap"));
    let outs: Vec<common::Out> = all_out
        .iter()
        .filter(|f| !is_frag(f))
        .map(|f| common::out(f))
        .collect();
    let ins_raw = read_pcap(&dir.join("out/inside.pcap"));
    let ins: Vec<common::Out> = ins_raw.iter().map(|f| common::out(f)).collect();
    // EIM with preservation: A on 198.51.100.1:5000, B on :6000 (C's ports 1 and 2 are
    // below the port range: not preserved, two dynamic ports).
    assert_eq!(outs[0].src, sa("198.51.100.1:5000"));
    assert_eq!(outs[1].src, sa("198.51.100.1:6000"));
    assert_eq!(
        outs.iter()
            .filter(|o| o.src.ip().octets() == [198, 51, 100, 1])
            .count(),
        outs.len()
    );
    // Hairpin: B receives A's packet from A's public endpoint.
    assert!(
        ins.iter()
            .any(|o| o.dst == sa("100.64.1.3:6000") && o.src == sa("198.51.100.1:5000")),
        "{ins:?}"
    );
    // EIF: the stranger reaches A.
    assert!(
        ins.iter()
            .any(|o| o.dst == sa("100.64.1.2:5000") && o.src == sa("192.0.2.99:7777")),
        "{ins:?}"
    );
    // Limit: C's fourth flow answered with ICMP admin-prohibited from the inside port.
    assert!(ins_raw
        .iter()
        .any(|f| f[23] == 1 && f[34] == 3 && f[35] == 13 && f[30..34] == [100, 64, 1, 4]));
    // Fragments out of order: both left, same new identifier, from the pool.
    let frags: Vec<&Vec<u8>> = all_out.iter().filter(|f| is_frag(f)).collect();
    assert_eq!(frags.len(), 2);
    assert!(frags.iter().all(|f| f[26..30] == [198, 51, 100, 1]));
    assert_eq!(frags[0][18..20], frags[1][18..20]);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/summary.json")).unwrap())
            .unwrap();
    assert_eq!(
        summary["dropped"]["subscriber_session_limit"], 1,
        "{summary}"
    );
}

#[test]
fn deterministic_mappings_through_pcap_mode_agree_with_cgnat_map() {
    let dir = workdir("deterministic");
    let frames: Vec<Vec<u8>> = (2..20)
        .map(|i| udp(&format!("100.64.0.{i}:4000"), "192.0.2.10:53", b"d", false))
        .collect();
    let extra = "allocation = \"deterministic\"\ninside = [\"100.64.0.0/20\"]\n";
    let cfg = dir.join("cgnat.toml");
    std::fs::write(&cfg, format!("{CONFIG}\n{extra}")).unwrap();
    run_pcap(&dir, extra, &frames, None);
    let outs = read_pcap(&dir.join("out/outside.pcap"));
    assert_eq!(outs.len(), frames.len());
    for (i, f) in outs.iter().enumerate() {
        let o = common::out(f);
        let r = Command::new(env!("CARGO_BIN_EXE_cgnat"))
            .args(["map", "-c"])
            .arg(&cfg)
            .args([
                "reverse",
                &o.src.ip().to_string(),
                &o.src.port().to_string(),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&r.stdout);
        assert!(
            text.trim().ends_with(&format!("100.64.0.{}", i + 2)),
            "{o:?}: {text}"
        );
    }
}

/// Two workers (sharing a CPU here), inputs dealt over two queues each: every packet
/// must be translated by the worker that owns its subscriber or outside port, and
/// nothing may be lost on the way between them.
#[test]
fn two_workers_hand_packets_to_their_owners_and_lose_nothing() {
    let dir = workdir("two-workers");
    // Static mappings on ports of worker 0 (block 0) and worker 1 (block 1).
    let statics = "[[nat.static]]\nprotocol = \"udp\"\ninside = \"100.64.9.1:53\"\noutside = \"198.51.100.1:1030\"\n\
                   [[nat.static]]\nprotocol = \"udp\"\ninside = \"100.64.9.2:53\"\noutside = \"198.51.100.1:1540\"\n";
    let (frames, meta) = subscriber_traffic(2000, 300);
    let inbound: Vec<Vec<u8>> = (0..40)
        .map(|i| {
            let to = if i % 2 == 0 {
                "198.51.100.1:1030"
            } else {
                "198.51.100.1:1540"
            };
            udp(
                &format!("192.0.2.{}:{}", 10 + i % 5, 2000 + i),
                to,
                b"query",
                true,
            )
        })
        .collect();
    let cfg = dir.join("cgnat.toml");
    let text = CONFIG.replace("worker_lcores = [1]", "worker_lcores = [1, 2]") + "\n" + statics;
    std::fs::write(&cfg, text).unwrap();
    write_pcap(&dir.join("in.pcap"), &frames);
    write_pcap(&dir.join("out-in.pcap"), &inbound);
    let st = Command::new(env!("CARGO_BIN_EXE_cgnat"))
        .args(["pcap", "-c"])
        .arg(&cfg)
        .arg("--inside")
        .arg(dir.join("in.pcap"))
        .arg("--outside")
        .arg(dir.join("out-in.pcap"))
        .arg("--out-dir")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["workers"], 2);
    // net_pcap has no RSS: ownership by hash (inside) and port blocks (outside), and
    // the log says so.
    assert_eq!(
        summary["ownership"],
        serde_json::json!({ "inside": "hash", "outside": "blocks" })
    );
    let log = String::from_utf8_lossy(&st.stderr);
    assert!(
        log.contains("port inside (net_pcap): a hash of the source address")
            && log.contains("port outside (net_pcap): port blocks per worker"),
        "{log}"
    );
    assert!(
        summary["handoff"]["sent"].as_u64().unwrap() > 100,
        "{summary}"
    );
    assert_eq!(
        summary["handoff"]["sent"], summary["handoff"]["received"],
        "nothing lost between workers"
    );
    assert_eq!(summary["dropped"], serde_json::json!({}), "{summary}");
    // Frames received from the ports, each once (a frame handed to its owner is not
    // received again).
    assert_eq!(
        summary["packets_in"],
        serde_json::json!({ "inside": frames.len(), "outside": inbound.len() }),
        "{summary}"
    );
    let out = read_pcap(&dir.join("out/outside.pcap"));
    assert_eq!(out.len(), frames.len());
    // Mappings are consistent even though a subscriber's packets reached both queues.
    let mut endpoint: HashMap<(u8, Ipv4Addr, u16), (Ipv4Addr, u16)> = HashMap::new();
    let mut sub_addr: HashMap<Ipv4Addr, Ipv4Addr> = HashMap::new();
    // UDP payloads ("q{i}") are unique: they tell which flow an output packet is.
    let by_payload: HashMap<Vec<u8>, &Flow> = frames
        .iter()
        .zip(&meta)
        .filter(|(_, m)| m.proto == 17)
        .map(|(f, m)| (f[42..].to_vec(), m))
        .collect();
    let mut checked = 0;
    for f in &out {
        let o = common::out(f);
        if o.proto != 17 {
            continue;
        }
        let Some(m) = by_payload.get(&f[42..]) else {
            continue;
        };
        checked += 1;
        let mapped = (*o.src.ip(), o.src.port());
        let prev = endpoint.insert((m.proto, m.src, m.sport), mapped);
        assert!(prev.is_none() || prev == Some(mapped));
        assert_eq!(*sub_addr.entry(m.src).or_insert(mapped.0), mapped.0);
    }
    assert!(checked > 600, "{checked} UDP flows checked");
    let ins = read_pcap(&dir.join("out/inside.pcap"));
    assert_eq!(
        ins.len(),
        inbound.len(),
        "every inbound packet reached its static mapping"
    );
}

/// `cgnat run` asks the kernel for transparent huge pages for the tables every packet
/// reads (sessions, mappings and their indexes: 32 MB of session records alone at the
/// default 1,048,576 sessions). Where the kernel offers them (`madvise` or `always`),
/// the running process holds huge pages.
#[test]
fn the_tables_every_packet_reads_sit_on_huge_pages_where_the_kernel_has_them() {
    let thp =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let dir = workdir("huge-pages");
    let api = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.join("cgnat.toml");
    let text = CONFIG
        .replace(
            "\"--no-pci\"]",
            &format!(
                "\"--no-pci\", \"--file-prefix=cgnat-thp-{}\"]",
                std::process::id()
            ),
        )
        .replacen(
            "device = \"replaced-in-pcap-mode\"",
            "device = \"net_null0,no-rx=1\"",
            1,
        )
        .replacen(
            "device = \"replaced-in-pcap-mode\"",
            "device = \"net_null1,no-rx=1\"",
            1,
        )
        + &format!("\n[api]\nlisten = \"127.0.0.1:{api}\"\n");
    std::fs::write(&cfg, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cgnat"))
        .args(["run", "-c"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("cgnat.log")).unwrap())
        .spawn()
        .unwrap();
    // Running once the control API answers (the tables are made before it serves; its
    // address is bound, and takes connections, from the very start).
    let answers = || -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", api)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(500)));
        let _ = s.write_all(b"GET /pool HTTP/1.1\r\n\r\n");
        let mut head = [0u8; 12];
        s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !answers() {
        assert!(
            std::time::Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "cgnat did not start: {}",
            std::fs::read_to_string(dir.join("cgnat.log")).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", child.id())).unwrap();
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let kb = |field: &str| -> u64 {
        rollup
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {rollup}"))
    };
    let huge = kb("AnonHugePages:");
    if thp.contains("[madvise]") || thp.contains("[always]") {
        // Session and mapping records: 56 MB, at least 16 MB of it in whole huge pages.
        assert!(huge >= 16 * 1024, "{huge} kB of huge pages: {rollup}");
    } else {
        eprintln!(
            "transparent huge pages off here ({}): {huge} kB",
            thp.trim()
        );
    }
}

/// An ARP flood (10,000 requests from as many MACs, past any per-source limit) mixed
/// with the PORT commands of 200 FTP control connections: the ALG frames have their
/// own ring to the control lcore, and every PORT leaves rewritten.
#[test]
fn an_arp_flood_does_not_crowd_alg_frames_out() {
    let dir = workdir("arp-flood");
    let mut inside = Vec::new();
    for k in 0..200u32 {
        let client = format!("100.64.{}.{}:40000", 1 + k / 200, 1 + k % 200);
        inside.push(tcp(&client, "192.0.2.10:21", 100, "S", b"", false));
        for j in 0..50u32 {
            let n = k * 50 + j;
            let mac = [0x02, 0xf0, 0, (n >> 16) as u8, (n >> 8) as u8, n as u8];
            let mut f = vec![0xff; 6];
            f.extend_from_slice(&mac);
            f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
            f.extend_from_slice(&mac);
            f.extend_from_slice(&[100, 64, 200, (n % 250) as u8]);
            f.extend_from_slice(&[0; 6]);
            f.extend_from_slice(&[100, 64, 0, 1]);
            inside.push(f);
        }
        let a = 1 + k % 200;
        let port = format!("PORT 100,64,{},{},19,137\r\n", 1 + k / 200, a);
        inside.push(tcp(
            &client,
            "192.0.2.10:21",
            101,
            "PA",
            port.as_bytes(),
            false,
        ));
    }
    let s = run_pcap(&dir, "", &inside, None);
    let out = read_pcap(&dir.join("out/outside.pcap"));
    let ports: Vec<String> = out
        .iter()
        .filter(|f| f.len() > 54 && f[12..14] == [0x08, 0x00] && f[23] == 6)
        .map(|f| String::from_utf8_lossy(&f[54..]).into_owned())
        .filter(|t| t.starts_with("PORT "))
        .collect();
    assert_eq!(ports.len(), 200, "{s}");
    assert!(
        ports.iter().all(|t| t.starts_with("PORT 198,51,100,")),
        "{ports:?}"
    );
    assert_eq!(s["dropped"]["ring_full"], Value::Null, "{s}");
}

/// Issue 19 item 11 through real net_pcap ports: SIP INVITEs over UDP in fragments
/// (one of three fragments, out of order, larger than an MTU once rewritten; one of
/// two that fits one packet) leave the outside port translated, no inside address in
/// any byte, the large one fragmented again with one checksum over the whole. With one
/// worker, and with two (the fragments handed to the subscriber's owner).
#[test]
fn a_fragmented_sip_invite_leaves_rewritten_through_pcap_mode() {
    let big = fragment(&with_ident(invite(40000, 2400), 0x51), &[1000, 2000]);
    let small = fragment(&with_ident(invite(40002, 1100), 0x52), &[600]);
    let inside = vec![
        big[2].clone(),
        big[0].clone(),
        big[1].clone(),
        small[1].clone(),
        small[0].clone(),
    ];
    for (name, lcores) in [("sip-fragments", "[1]"), ("sip-fragments-2w", "[1, 2]")] {
        let dir = workdir(name);
        let config = CONFIG.replace("worker_lcores = [1]", &format!("worker_lcores = {lcores}"))
            + "\n[alg]\nsip = { enabled = true, ports = [5060] }\n";
        let summary = run_pcap_config(&dir, &config, &inside, None);
        let out: Vec<Vec<u8>> = read_pcap(&dir.join("out/outside.pcap"))
            .into_iter()
            .filter(|f| f[12..14] == [0x08, 0x00])
            .collect();
        // The large one: two fragments out (it came in three); the small one whole.
        assert_eq!(out.len(), 2 + 1, "{summary}");
        for f in &out {
            assert!(!contains(f, b"100.64.1.2"), "no inside address leaves");
            assert!(in_pool(Ipv4Addr::new(f[26], f[27], f[28], f[29])));
            assert!(f.len() - 14 <= 1500);
        }
        let is_frag = |f: &Vec<u8>| u16::from_be_bytes([f[20], f[21]]) & 0x3fff != 0;
        let frags: Vec<Vec<u8>> = out.iter().filter(|f| is_frag(f)).cloned().collect();
        let whole = out.iter().find(|f| !is_frag(f)).unwrap();
        for w in [&reassemble(&frags), whole] {
            assert!(udp_ok(w));
            assert!(contains(w, b"c=IN IP4 198.51.100."));
            assert!(contains(w, b"Via: SIP/2.0/UDP 198.51.100."));
        }
        assert_eq!(summary["fragments"]["reassembled"], 2, "{summary}");
        assert_eq!(summary["fragments"]["refragmented"], 1, "{summary}");
        assert_eq!(summary["alg"]["expectations_created"], 4, "{summary}");
    }
}

#[test]
fn vlan_tagged_subscribers_through_pcap_mode() {
    let dir = workdir("vlan");
    let config = CONFIG
        .replace(
            "ipv4 = \"100.64.0.1/10\"",
            "vlans = [\n  { id = 100, ipv4 = \"100.64.100.1/24\" },\n  \
             { id = 200, ipv4 = \"100.64.200.1/24\" },\n  \
             { qinq = [10, 300], ipv4 = \"100.64.30.1/24\" },\n]",
        )
        .replace(
            "ipv4 = \"203.0.113.1/24\"\ngateway = \"203.0.113.254\"\ngateway_mac = \"02:aa:00:00:00:fe\"",
            "vlans = [{ id = 7, ipv4 = \"203.0.113.1/24\", gateway = \"203.0.113.254\" }]",
        )
        .replace("[nat]\n", "[nat]\ninside = [\"100.64.0.0/10\"]\n")
        + "[[nat.static]]\nprotocol = \"udp\"\ninside = \"100.64.200.9:5000\"\noutside = \"198.51.100.1:6000\"\n";
    let sub = |src: &str, tags: &[u16]| {
        vlan_tagged(&udp(src, "192.0.2.10:53", b"vlan query", false), tags)
    };
    let inside = vec![
        sub("100.64.100.5:4000", &[100]),
        sub("100.64.200.5:4000", &[200]),
        sub("100.64.30.5:4000", &[10, 300]),
        sub("100.64.100.6:4000", &[101]),
        udp("100.64.100.7:4000", "192.0.2.10:53", b"untagged", false),
    ];
    let inbound = vlan_tagged(
        &udp(
            "192.0.2.10:53",
            "198.51.100.1:6000",
            b"to the static host",
            true,
        ),
        &[7],
    );
    let summary = run_pcap_config(&dir, &config, &inside, Some(std::slice::from_ref(&inbound)));
    let d = &summary["dropped"];
    assert_eq!(d["vlan_unknown"], 1, "{summary}");
    assert_eq!(d["vlan_untagged"], 1, "{summary}");
    let out: Vec<_> = read_pcap(&dir.join("out/outside.pcap"))
        .iter()
        .map(|f| vlan_untagged(f))
        .collect();
    assert_eq!(out.len(), 3, "{summary}");
    for (tags, f) in &out {
        assert_eq!(tags, &[7], "the outside VLAN's tag");
        let o = common::out(f);
        assert!(in_pool(*o.src.ip()), "{o:?}");
        assert_eq!(o.dst, sa("192.0.2.10:53"));
    }
    let back: Vec<_> = read_pcap(&dir.join("out/inside.pcap"))
        .iter()
        .map(|f| vlan_untagged(f))
        .filter(|(_, f)| f[12..14] == [8, 0])
        .collect();
    assert_eq!(back.len(), 1, "{summary}");
    assert_eq!(back[0].0, [200], "back on the static host's VLAN");
    assert_eq!(common::out(&back[0].1).dst, sa("100.64.200.9:5000"));
    let vlans = summary["vlans"].as_array().expect("per-VLAN counters");
    let count = |port: &str, v: &str, k: &str| {
        vlans
            .iter()
            .find(|x| x["port"] == port && x["vlan"] == v)
            .map(|x| x[k].as_u64().unwrap())
    };
    assert_eq!(count("inside", "100", "rx"), Some(1), "{summary}");
    assert_eq!(count("inside", "10.300", "rx"), Some(1));
    assert_eq!(count("inside", "200", "tx"), Some(1));
    assert_eq!(count("outside", "7", "tx"), Some(3));
    assert_eq!(count("outside", "7", "rx"), Some(1));
}

#[test]
fn ipv6_subscribers_reach_ipv4_servers_through_nat64_over_dpdk() {
    // [nat64] runs (it was refused at start until the dataplane translated): IPv6
    // UDP, TCP and echo to 8.8.4.4 under the well-known prefix leave the outside
    // port as IPv4 from the pool, byte for byte as built here with etherparse (the
    // pool port and the IPv4 identification read from the output); IPv6 to an
    // address outside the prefix is dropped and counted.
    let dir = workdir("nat64");
    // Pcap mode takes any destination MAC.
    const PORT_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 1];
    let text = CONFIG.replace(
        "ipv4 = \"100.64.0.1/10\"",
        "ipv4 = \"100.64.0.1/10\"\nipv6 = [\"fd00:ffff::1/64\"]",
    ) + "\n[nat64]\n";
    let server6 = a6("64:ff9b::808:404");
    let v6 = |host: &str| {
        etherparse::PacketBuilder::ethernet2(HOST_MAC, PORT_MAC).ipv6(a6(host), server6, 64)
    };
    let build = |b: &dyn Fn(&mut Vec<u8>)| {
        let mut v = Vec::new();
        b(&mut v);
        v
    };
    let inside = vec![
        build(&|v| {
            v6("fd00:ffff::10")
                .udp(5000, 53)
                .write(v, b"query")
                .unwrap()
        }),
        build(&|v| {
            v6("fd00:ffff::10")
                .tcp(40000, 80, 1000, 64000)
                .syn()
                .write(v, &[])
                .unwrap()
        }),
        build(&|v| {
            v6("fd00:ffff::20")
                .icmpv6_echo_request(0x1234, 1)
                .write(v, b"abcdefgh")
                .unwrap()
        }),
        build(&|v| {
            etherparse::PacketBuilder::ethernet2(HOST_MAC, PORT_MAC)
                .ipv6(a6("fd00:ffff::10"), a6("2001:db8:9::1"), 64)
                .udp(5000, 53)
                .write(v, b"elsewhere")
                .unwrap()
        }),
    ];
    let summary = run_pcap_config(&dir, &text, &inside, None);
    assert_eq!(summary["dropped"]["nat64_not_prefix"], 1, "{summary}");
    assert_eq!(summary["translated"]["in2out"], 3, "{summary}");
    // Two IPv6 hosts, one /56 subscriber: the NAT64 gauges (also in /metrics).
    assert_eq!(summary["nat64_hosts_active"], 2, "{summary}");
    assert_eq!(summary["nat64_subscribers_active"], 1, "{summary}");
    assert_eq!(summary["nat64_sessions_active"], 3, "{summary}");
    let out = read_pcap(&dir.join("out/outside.pcap"));
    assert_eq!(out.len(), 3, "{summary}");
    // From the outside port's MAC (the pcap device's) to the gateway_mac.
    let gw = [0x02, 0xaa, 0, 0, 0, 0xfe];
    let to_server = |smac: [u8; 6], src: [u8; 4]| {
        etherparse::PacketBuilder::ethernet2(smac, gw).ipv4(src, [8, 8, 4, 4], 63)
    };
    let mut protos = Vec::new();
    for f in &out {
        let src: [u8; 4] = f[26..30].try_into().unwrap();
        let smac: [u8; 6] = f[6..12].try_into().unwrap();
        assert!(in_pool(src.into()), "{f:?}");
        let proto = f[23];
        let at = if proto == 1 { 38 } else { 34 };
        let port = u16::from_be_bytes([f[at], f[at + 1]]);
        let mut want = match proto {
            17 => build(&|v| {
                to_server(smac, src)
                    .udp(port, 53)
                    .write(v, b"query")
                    .unwrap()
            }),
            6 => build(&|v| {
                to_server(smac, src)
                    .tcp(port, 80, 1000, 64000)
                    .syn()
                    .write(v, &[])
                    .unwrap()
            }),
            1 => build(&|v| {
                to_server(smac, src)
                    .icmpv4_echo_request(port, 1)
                    .write(v, b"abcdefgh")
                    .unwrap()
            }),
            p => panic!("protocol {p}"),
        };
        // RFC 7915 5.1: the worker's identification, no DF at this size.
        want[18..20].copy_from_slice(&f[18..20]);
        want[20..22].copy_from_slice(&[0, 0]);
        want[24..26].copy_from_slice(&[0, 0]);
        let c = csum(&[&want[14..34]]);
        want[24..26].copy_from_slice(&c.to_be_bytes());
        assert_eq!(f, &want, "protocol {proto}");
        protos.push(proto);
    }
    protos.sort_unstable();
    assert_eq!(protos, [1, 6, 17]);
}

/// NAT64 with two workers over DPDK: pcap mode brings every frame to the first
/// worker's queue; the frames of a subscriber (here each host, `subscriber_prefix_len
/// = 128`) that the other worker owns are handed to it over the handoff ring and
/// translated there, from its share of the pool.
#[test]
fn nat64_subscribers_are_translated_by_their_owner_among_two_workers_over_dpdk() {
    let dir = workdir("nat64-workers");
    const PORT_MAC: [u8; 6] = [0x02, 0, 0, 0, 1, 1];
    let text = CONFIG
        .replace("worker_lcores = [1]", "worker_lcores = [1, 2]")
        .replace(
            "ipv4 = \"100.64.0.1/10\"",
            "ipv4 = \"100.64.0.1/10\"\nipv6 = [\"fd00:ffff::1/64\"]",
        )
        + "\n[nat64]\nsubscriber_prefix_len = 128\n";
    let server6 = a6("64:ff9b::808:404");
    let hosts: Vec<String> = (1..=8).map(|h| format!("fd00:ffff::{h:x}0")).collect();
    let mut inside = Vec::new();
    for h in &hosts {
        for sport in [5000u16, 5001] {
            let mut v = Vec::new();
            etherparse::PacketBuilder::ethernet2(HOST_MAC, PORT_MAC)
                .ipv6(a6(h), server6, 64)
                .udp(sport, 53)
                .write(&mut v, b"query")
                .unwrap();
            inside.push(v);
        }
    }
    let summary = run_pcap_config(&dir, &text, &inside, None);
    assert_eq!(summary["translated"]["in2out"], 16, "{summary}");
    assert_eq!(summary["nat64_subscribers_active"], 8, "{summary}");
    let handed = summary["handoff"]["sent"].as_u64().unwrap();
    assert!(
        handed > 0 && handed < 16,
        "some hosts are the second worker's: {summary}"
    );
    assert_eq!(summary["handoff"]["received"], handed, "{summary}");
    let out = read_pcap(&dir.join("out/outside.pcap"));
    assert_eq!(out.len(), 16, "{summary}");
    let mut by_port = std::collections::HashMap::new();
    for f in &out {
        let src: [u8; 4] = f[26..30].try_into().unwrap();
        assert!(in_pool(src.into()), "{f:?}");
        let sport = u16::from_be_bytes([f[34], f[35]]);
        by_port.insert((src, sport), ());
    }
    // The two workers' shares of the pool are apart: a port may be used on each.
    assert_eq!(by_port.len(), 16, "16 distinct outside endpoints");
}

#[test]
fn the_inside_port_answers_neighbour_solicitations_and_echo_over_dpdk() {
    let dir = workdir("ipv6-inside");
    let (port, sub) = (a6("fd00:ffff::1"), a6("fd00:ffff::10"));
    let text = CONFIG.replace(
        "ipv4 = \"100.64.0.1/10\"",
        "ipv4 = \"100.64.0.1/10\"\nipv6 = [\"fd00:ffff::1/64\"]",
    );
    let group = sol_node(port);
    let ns = icmp6_frame(
        HOST_MAC,
        group_mac(group),
        sub,
        group,
        255,
        &nd(135, 0, port, 1, HOST_MAC),
    );
    let echo = |ty: u8| vec![ty, 0, 0, 0, 0xab, 0xcd, 0, 1, b'v', b'6'];
    // Any destination MAC is taken in pcap mode.
    let req = icmp6_frame(HOST_MAC, [2, 0, 0, 0, 0, 0], sub, port, 64, &echo(128));
    let bad = {
        let mut f = req.clone();
        f[14] = 0x40;
        f
    };
    let summary = run_pcap_config(&dir, &text, &[ns, req, bad], None);
    assert_eq!(summary["dropped"]["ipv6_malformed"], 1, "{summary}");
    let out = read_pcap(&dir.join("out/inside.pcap"));
    assert_eq!(out.len(), 2, "{summary}");
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&out[0][6..12]);
    let na = icmp6_frame(
        mac,
        HOST_MAC,
        port,
        sub,
        255,
        &nd(136, 0xe000_0000, port, 2, mac),
    );
    assert_eq!(out[0], na);
    assert_eq!(
        out[1],
        icmp6_frame(mac, HOST_MAC, port, sub, 64, &echo(129))
    );
}

#[test]
fn a_command_whose_reader_went_away_ends_quietly() {
    // `cgnat check | head -1`, `cgnat show ... | grep -q`: the reader closes the pipe
    // before the output is all written. The command ends as Unix tools do (SIGPIPE),
    // not with a panic's backtrace on a failed print.
    use std::os::unix::process::ExitStatusExt;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cgnat"))
        .arg("check")
        .arg("-c")
        .arg(root.join("config/examples/full.toml"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        out.status.success() || out.status.signal() == Some(13),
        "{:?}: {err}",
        out.status
    );
}

/// One SIP request `method` from subscriber 100.64.1.2 to 192.0.2.20, through pcap
/// mode in work directory `name` with `[alg.sip]` keys `sip` and syslog on: the
/// directory, the summary and the syslog collector (a local UDP socket, 5 s read
/// timeout).
fn one_sip_request(name: &str, method: &str, sip: &str) -> (PathBuf, Value, std::net::UdpSocket) {
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let port = syslog.local_addr().unwrap().port();
    let msg = format!(
        "{method} sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 100.64.1.2:5060;branch=z9hG4bK-9\r\n\
         From: <sip:alice@100.64.1.2>;tag=a\r\nTo: <sip:bob@192.0.2.20>\r\nCall-ID: m9@100.64.1.2\r\n\
         CSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    );
    let dir = workdir(name);
    let config = format!(
        "{CONFIG}\n[alg]\nsip = {{ {sip} }}\n[logging]\nsyslog = {{ server = \"127.0.0.1:{port}\" }}\n"
    );
    let frame = udp("100.64.1.2:5060", "192.0.2.20:5060", msg.as_bytes(), false);
    let summary = run_pcap_config(&dir, &config, &[frame], None);
    (dir, summary, syslog)
}

/// The first `alg-policy` line the collector gets among its first eight (the
/// subscriber's port block comes first).
fn alg_policy_line(syslog: &std::net::UdpSocket) -> String {
    let mut buf = [0u8; 1024];
    (0..8)
        .map(|_| {
            let n = syslog.recv(&mut buf).expect("a syslog line");
            String::from_utf8_lossy(&buf[..n]).into_owned()
        })
        .find(|l| l.contains(" alg-policy "))
        .expect("an alg-policy line")
}

/// Issue 14 over DPDK: a SIP request the policy refuses never leaves the outside
/// port; the response leaves the inside port (a buffer from the pool, back through
/// the worker), the decision is counted in the summary and logged to syslog.
#[test]
fn a_refused_sip_request_is_answered_counted_and_logged_through_pcap_mode() {
    let sip = "enabled = true, deny_methods = [\"MESSAGE\"]";
    let (dir, summary, syslog) = one_sip_request("sip-policy", "MESSAGE", sip);
    let out = read_pcap(&dir.join("out/outside.pcap"));
    assert!(
        out.iter().all(|f| !contains(f, b"MESSAGE")),
        "the request left: {summary}"
    );
    let back = read_pcap(&dir.join("out/inside.pcap"));
    let r = back
        .iter()
        .find(|f| contains(f, b"SIP/2.0 405 Method Not Allowed"))
        .unwrap_or_else(|| panic!("no response on the inside: {summary}"));
    assert!(udp_ok(r) && contains(r, b"CSeq: 1 MESSAGE"));
    assert_eq!(summary["alg"]["policy"]["sip"]["reply"], 1, "{summary}");
    // (The subscriber's port block comes first.)
    let line = alg_policy_line(&syslog);
    assert!(
        line.contains(
            "alg-policy [nat@32473 alg=\"sip\" decision=\"reply\" inside=\"100.64.1.2:5060\""
        ) && line.contains("remote=\"192.0.2.20:5060\" refused=\"MESSAGE\"]"),
        "{line}"
    );
}

/// Issue 14: an ALG left off for a subscriber (`alg.sip.except`) over DPDK: the
/// subscriber's SIP request leaves untouched (a plain session), the decision is in
/// the summary and its `alg-policy` line (`subscriber_off`, the session's endpoints)
/// reaches the syslog collector.
#[test]
fn an_alg_left_off_for_a_subscriber_is_counted_and_logged_through_pcap_mode() {
    let sip = "enabled = true, except = [\"100.64.1.0/24\"]";
    let (dir, summary, syslog) = one_sip_request("sip-subscriber-off", "OPTIONS", sip);
    let out = read_pcap(&dir.join("out/outside.pcap"));
    let sent = out
        .iter()
        .find(|f| contains(f, b"OPTIONS sip:bob"))
        .unwrap_or_else(|| panic!("the request did not leave: {summary}"));
    assert!(
        contains(sent, b"Via: SIP/2.0/UDP 100.64.1.2:5060"),
        "as written: no ALG"
    );
    assert_eq!(
        summary["alg"]["policy"]["sip"]["subscriber_off"], 1,
        "{summary}"
    );
    let line = alg_policy_line(&syslog);
    assert!(
        line.contains(
            "alg-policy [nat@32473 alg=\"sip\" decision=\"subscriber_off\" inside=\"100.64.1.2:5060\""
        ) && line.ends_with("remote=\"192.0.2.20:5060\"]"),
        "{line}"
    );
}

/// Issue 14: ALG frames are never dropped. 1,500 FTP control connections, every SYN
/// first, then two rounds of one PORT command each: 3,000 ALG frames in a row, read
/// from the pcap as fast as the worker polls (three times what a ring to another lcore
/// would hold: the worker's own ALG stream engine rewrites them, in their place). Every
/// PORT leaves rewritten to a pool address (each its own segment, in order per
/// connection), and nothing is counted dropped.
#[test]
fn more_alg_frames_than_the_ring_holds_all_leave_rewritten() {
    let dir = workdir("alg-burst");
    let conns = 1500u32;
    let client = |k: u32| format!("100.64.{}.{}:40000", 1 + k / 200, 1 + k % 200);
    let mut inside: Vec<Vec<u8>> = (0..conns)
        .map(|k| tcp(&client(k), "192.0.2.10:21", 100, "S", b"", false))
        .collect();
    let mut seq = vec![101u32; conns as usize];
    for round in 0..2u32 {
        for k in 0..conns {
            let port = 20000 + 2 * round;
            let line = format!(
                "PORT 100,64,{},{},{},{}\r\n",
                1 + k / 200,
                1 + k % 200,
                port >> 8,
                port & 255
            );
            let i = k as usize;
            inside.push(tcp(
                &client(k),
                "192.0.2.10:21",
                seq[i],
                "PA",
                line.as_bytes(),
                false,
            ));
            seq[i] += line.len() as u32;
        }
    }
    let s = run_pcap(&dir, "", &inside, None);
    let out = read_pcap(&dir.join("out/outside.pcap"));
    let ports: Vec<([u8; 6], u32, String)> = out
        .iter()
        .filter(|f| f.len() > 54 && f[12..14] == [0x08, 0x00] && f[23] == 6)
        .map(|f| {
            (
                [f[26], f[27], f[28], f[29], f[34], f[35]],
                u32::from_be_bytes([f[38], f[39], f[40], f[41]]),
                String::from_utf8_lossy(&f[54..]).into_owned(),
            )
        })
        .filter(|(_, _, t)| t.starts_with("PORT "))
        .collect();
    assert_eq!(s["dropped"], serde_json::json!({}), "{s}");
    assert_eq!(ports.len(), 2 * conns as usize, "{s}");
    assert!(
        ports
            .iter()
            .all(|(_, _, t)| t.starts_with("PORT 198,51,100,")),
        "{ports:?}"
    );
    // Per connection (its outside source address and port), its two commands left in
    // the order they came: the second one's sequence number is the later.
    let mut per: HashMap<[u8; 6], Vec<u32>> = HashMap::new();
    for (p, seq, _) in ports {
        per.entry(p).or_default().push(seq);
    }
    assert_eq!(per.len(), conns as usize);
    assert!(per.values().all(|s| s.len() == 2 && s[0] < s[1]), "{per:?}");
    assert_eq!(s["alg"]["ftp_rewrites"], 2 * conns, "{s}");
    assert_eq!(s["alg"]["expectations_created"], 2 * conns, "{s}");
    // Every PORT was timed through the worker's ALG stream engine, and nothing is
    // left waiting.
    let a = &s["alg_frames"];
    assert!(
        a["latency_us"]["count"].as_u64() >= Some(2 * u64::from(conns)),
        "{s}"
    );
    assert!(a["latency_us"]["p99"].as_f64().is_some(), "{s}");
    assert_eq!(a["backlog"], 0, "{s}");
    eprintln!("alg_frames: {a}");
}

#[test]
fn gre_and_esp_leave_by_address_alone_on_two_workers_and_sctp_is_denied() {
    // Twenty subscribers, each with GRE and ESP to three remotes, over two workers
    // (the frames all reach worker 0's queue: the owners take theirs by handoff): a
    // pool of 16 addresses serves 16 subscribers per (remote, protocol), the other
    // four are refused. SCTP is not translated by default; GRE from outside with no
    // session is dropped.
    let dir = workdir("other-protocols");
    let remotes = ["192.0.2.10", "192.0.2.11", "192.0.2.12"];
    let mut frames = Vec::new();
    for s in 0..20u8 {
        let sub = format!("100.64.1.{}", 2 + s);
        for r in remotes {
            for proto in [47u8, 50] {
                frames.push(ip_frame(&sub, r, proto, &[0, 0, 8, 0, s, 1, 2, 3], false));
            }
        }
        frames.push(ip_frame(&sub, remotes[0], 132, &[0; 12], false));
    }
    let unsolicited = ip_frame("192.0.2.99", "198.51.100.3", 47, &[0; 8], true);
    let text = CONFIG.replace("worker_lcores = [1]", "worker_lcores = [1, 2]");
    let summary = run_pcap_config(
        &dir,
        &text,
        &frames,
        Some(std::slice::from_ref(&unsolicited)),
    );
    let out = read_pcap(&dir.join("out/outside.pcap"));
    assert_eq!(out.len(), 16 * 3 * 2, "{summary}");
    // (protocol, pool address, remote) -> the subscriber's payload byte: one each.
    let mut owner: HashMap<(u8, Ipv4Addr, Ipv4Addr), u8> = HashMap::new();
    for f in &out {
        assert!(checksums_ok(f));
        let ipb = &f[14..];
        let a = |o: usize| Ipv4Addr::new(ipb[o], ipb[o + 1], ipb[o + 2], ipb[o + 3]);
        let (proto, src, dst) = (ipb[9], a(12), a(16));
        assert!(in_pool(src), "{src} not a pool address");
        let who = owner.insert((proto, src, dst), ipb[24]);
        assert!(
            who.is_none(),
            "{proto} {src} -> {dst} shared by two subscribers"
        );
    }
    assert_eq!(summary["sessions_created"]["other"], out.len(), "{summary}");
    assert_eq!(
        summary["dropped"]["other_protocol_address_conflict"],
        4 * 3 * 2
    );
    assert_eq!(summary["dropped"]["protocol_denied"], 20, "{summary}");
    assert_eq!(summary["dropped"]["no_mapping"], 1, "{summary}");
}
