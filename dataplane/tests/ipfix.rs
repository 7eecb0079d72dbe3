//! NAT event logs (RFC 8158 over IPFIX) from a running cgnat, captured on the wire and
//! decoded by a real collector-side decoder (tshark's IPFIX dissector); the fields
//! must match the traffic sent. Syslog (RFC 5424) block events likewise. NAT64
//! subscribers' events (RFC 8158's IPv6 fields) beside NAT44's in the same runs.

mod common;
use common::*;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const BASE: &str = r#"[dataplane]
eal_args = ["--no-huge", "-m", "256", "--no-pci"]
worker_lcores = [1]
[[ports]]
name = "inside"
role = "inside"
device = "pcap"
ipv4 = "100.64.0.1/10"
ipv6 = ["fd00:ffff::1/64"]
[[ports]]
name = "outside"
role = "outside"
device = "pcap"
ipv4 = "203.0.113.1/24"
gateway = "203.0.113.254"
gateway_mac = "02:aa:00:00:00:fe"
"#;

/// A UDP datagram from IPv6 host `host` to IPv4 `server` under the Well-Known
/// Prefix (pcap mode takes any destination MAC).
fn udp6(host: &str, sport: u16, server: &str, dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2(HOST_MAC, [0x02, 0, 0, 0, 1, 1])
        .ipv6(a6(host), a6(&format!("64:ff9b::{server}")), 64)
        .udp(sport, dport)
        .write(&mut v, b"q")
        .unwrap();
    v
}

/// Runs `cgnat pcap` on `frames` with `extra` config while tcpdump captures UDP to
/// `port` on loopback; returns the capture's path.
fn run_and_capture(name: &str, extra: &str, port: u16, frames: &[Vec<u8>]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cgnat.toml"), format!("{BASE}{extra}")).unwrap();
    write_pcap(&dir.join("in.pcap"), frames);
    let cap = dir.join("events.pcap");
    // A bound socket makes the port reachable (no ICMP port unreachable noise).
    let sink = UdpSocket::bind(("127.0.0.1", port)).unwrap();
    let mut dump = Command::new("tcpdump")
        .args(["-i", "lo", "-U", "-n", "-w"])
        .arg(&cap)
        .arg(format!("udp and dst port {port}"))
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump");
    std::thread::sleep(Duration::from_millis(1500));
    let out = Command::new(env!("CARGO_BIN_EXE_cgnat"))
        .args(["pcap", "-c"])
        .arg(dir.join("cgnat.toml"))
        .arg("--inside")
        .arg(dir.join("in.pcap"))
        .arg("--out-dir")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every datagram cgnat sent is in the sink's queue by now (loopback delivers on
    // send); wait until tcpdump has written as many (it may lag on a loaded machine),
    // at most 10 s, then stop it.
    sink.set_nonblocking(true).unwrap();
    let mut sent = 0;
    let mut b = [0u8; 65536];
    while sink.recv(&mut b).is_ok() {
        sent += 1;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let written = cgnat_testkit::pcap::read_packets(&cap).map_or(0, |p| p.len());
        if written >= sent || std::time::Instant::now() > deadline {
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-INT", &dump.id().to_string()])
        .status();
    let _ = dump.wait();
    cap
}

/// Every value of one IPFIX field in the capture, decoded by tshark (one record per
/// value, in order). The capture holds only datagrams to the collector, read as IPFIX
/// whatever their ports: tshark would pick the dissector of the lower port, and the
/// exporter's ephemeral source port may be a registered one below the collector's.
fn column(cap: &Path, field: &str) -> Vec<String> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(cap)
        .args([
            "-d",
            "udp.port==1-65535,cflow",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=,",
        ])
        .args(["-Y", "cflow.nat_event", "-e", field])
        .output()
        .expect("tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .flat_map(|l| l.split(','))
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Asserts that `field` has the value `want` in two records, and in no other.
fn twice(cap: &Path, field: &str, want: &str) {
    assert_eq!(column(cap, field), vec![want, want], "{field}");
}

#[test]
fn ipfix_session_and_quota_events_decode_with_tshark() {
    let port = free_udp_port();
    let extra = format!(
        "[nat]\npool = [\"198.51.100.0/28\"]\nallocation = \"dynamic\"\nmax_sessions_per_subscriber = 2\nicmp_on_limit = false\n\
         [nat64]\n\
         [logging]\nipfix = {{ collector = \"127.0.0.1:{port}\" }}\n"
    );
    let frames = vec![
        udp("100.64.1.2:1111", "192.0.2.10:53", b"a", false),
        udp("100.64.1.2:2222", "192.0.2.10:53", b"b", false),
        udp("100.64.1.2:3333", "192.0.2.10:53", b"refused", false),
        udp("100.64.1.3:4444", "192.0.2.11:53", b"c", false),
        // Two hosts of one /56: one NAT64 subscriber, whose limit refuses the third.
        udp6("fd00:ffff::10", 5555, "8.8.4.4", 53),
        udp6("fd00:ffff::20", 6666, "8.8.4.4", 53),
        udp6("fd00:ffff::30", 7777, "8.8.4.4", 53),
    ];
    let cap = run_and_capture("ipfix-sessions", &extra, port, &frames);
    let events = column(&cap, "cflow.nat_event");
    let n = |kind: &str| events.iter().filter(|e| *e == kind).count();
    // NAT64 session create and delete (RFC 8158 natEvent 4 and 5), with the host's
    // IPv6 address in sourceIPv6Address, in templates of their own.
    assert_eq!(n("4"), 2, "two NAT64 session creates: {events:?}");
    assert_eq!(
        n("5"),
        2,
        "two NAT64 session deletes at the stop: {events:?}"
    );
    let src6 = column(&cap, "cflow.srcaddrv6");
    for want in ["fd00:ffff::10", "fd00:ffff::20"] {
        assert_eq!(
            src6.iter().filter(|s| *s == want).count(),
            2,
            "{want}: its create and delete: {src6:?}"
        );
    }
    // The quota event of the NAT64 subscriber names its /56.
    assert!(
        src6.iter().any(|s| s == "fd00:ffff::"),
        "the subscriber's prefix: {src6:?}"
    );
    assert_eq!(column(&cap, "cflow.srcmaskv6"), vec!["56"]);
    assert!(!src6.iter().any(|s| s == "fd00:ffff::30"), "{src6:?}");
    for p in ["5555", "6666"] {
        assert!(
            column(&cap, "cflow.srcport").iter().any(|x| x == p),
            "{p} not logged"
        );
    }
    assert_eq!(n("1"), 3, "three session creates: {events:?}");
    assert_eq!(
        n("11"),
        2,
        "one quota exceeded for each kind of subscriber: {events:?}"
    );
    // The end of the run closes in the log what it opened: a delete for each
    // session still alive, after its create.
    assert_eq!(n("2"), 3, "three session deletes at the stop: {events:?}");
    assert!(
        matches!(events.last().map(String::as_str), Some("2" | "5")),
        "{events:?}"
    );
    let src = column(&cap, "cflow.srcaddr");
    for want in ["100.64.1.2", "100.64.1.3"] {
        assert!(src.iter().any(|s| s == want), "{want} not logged: {src:?}");
    }
    let post = column(&cap, "cflow.post_natsource_ipv4_address");
    assert_eq!(
        post.len(),
        10,
        "creates and deletes, NAT44 and NAT64: {post:?}"
    );
    assert!(
        post.iter().all(|a| a.starts_with("198.51.100.")),
        "{post:?}"
    );
    let ports = column(&cap, "cflow.srcport");
    for p in ["1111", "2222", "4444"] {
        assert!(ports.iter().any(|x| x == p), "{p} not logged: {ports:?}");
    }
    assert_eq!(
        column(&cap, "cflow.nat_quota_exceeded_event"),
        vec!["3", "3"],
        "maximum entries per user"
    );
    twice(&cap, "cflow.max_entries_per_user", "2");
    // No destinations by default (RFC 6888 REQ-12).
    assert!(column(&cap, "cflow.dstaddr").is_empty());
    assert!(column(&cap, "cflow.dstaddrv6").is_empty());
    // Templates came first, and timestamps are milliseconds.
    let t = column(&cap, "cflow.observation_time_milliseconds");
    assert!(!t.is_empty());
}

#[test]
fn ipfix_port_block_events_and_syslog() {
    let port = free_udp_port();
    let sport = free_udp_port();
    let extra = format!(
        "[nat]\npool = [\"198.51.100.0/28\"]\nblock_size = 256\n\
         [nat64]\n\
         [logging]\nipfix = {{ collector = \"127.0.0.1:{port}\" }}\nsyslog = {{ server = \"127.0.0.1:{sport}\" }}\n"
    );
    let syslog = UdpSocket::bind(("127.0.0.1", sport)).unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut frames: Vec<Vec<u8>> = (0..5)
        .map(|i| {
            udp(
                &format!("100.64.1.2:{}", 1000 + i),
                "192.0.2.10:53",
                b"x",
                false,
            )
        })
        .collect();
    // Then a NAT64 subscriber (two hosts of one /56): one block too.
    frames.push(udp6("fd00:ffff::10", 5000, "8.8.4.4", 53));
    frames.push(udp6("fd00:ffff::20", 5000, "8.8.4.4", 53));
    let cap = run_and_capture("ipfix-blocks", &extra, port, &frames);
    let events = column(&cap, "cflow.nat_event");
    assert_eq!(
        events,
        vec!["14", "14", "15", "15"],
        "one block allocation per subscriber, no per-session events (RFC 6888 \
         REQ-14), and the blocks' release when the run stops"
    );
    let starts = column(&cap, "cflow.port_range_start");
    let ends = column(&cap, "cflow.port_range_end");
    assert_eq!((starts.len(), ends.len()), (4, 4));
    let range = |k: usize| -> (u16, u16) { (starts[k].parse().unwrap(), ends[k].parse().unwrap()) };
    let (start, end) = range(0);
    assert_eq!(end - start + 1, 256);
    assert_eq!(range(1).1 - range(1).0 + 1, 256);
    twice(&cap, "cflow.srcaddr", "100.64.1.2");
    // The NAT64 subscriber's records name its prefix (sourceIPv6Address and
    // sourceIPv6PrefixLength), never a host.
    twice(&cap, "cflow.srcaddrv6", "fd00:ffff::");
    twice(&cap, "cflow.srcmaskv6", "56");
    // Each release names the block its allocation did.
    let alloc6 = range(1);
    assert!(
        range(2) == (start, end) && range(3) == alloc6
            || range(3) == (start, end) && range(2) == alloc6,
        "{starts:?} {ends:?}"
    );
    let mut lines = Vec::new();
    let mut buf = [0u8; 2048];
    for _ in 0..4 {
        let n = syslog.recv(&mut buf).expect("a syslog line");
        lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(lines.iter().all(|l| l.starts_with("<134>1 ")), "{lines:?}");
    let has = |what: &str, inside: &str, first: u16| {
        lines.iter().any(|l| {
            l.contains(what)
                && l.contains(&format!("inside=\"{inside}\""))
                && l.contains(&format!("first=\"{first}\""))
        })
    };
    assert!(has("port-block-alloc", "100.64.1.2", start), "{lines:?}");
    assert!(
        has("port-block-free", "100.64.1.2", start),
        "the stop releases the block: {lines:?}"
    );
    assert!(
        has("port-block-alloc", "fd00:ffff::/56", alloc6.0),
        "{lines:?}"
    );
    assert!(
        has("port-block-free", "fd00:ffff::/56", alloc6.0),
        "{lines:?}"
    );
}

/// Runs `frames` under port-block allocation with both an IPFIX collector (`ipfix`:
/// its further keys) and a syslog server, `alg` added to the config; asserts that the
/// records are a block's allocation and release and one GRE (protocol 47) session's
/// create and delete (`what`). The capture and the four syslog lines.
fn gre_beside_blocks(
    name: &str,
    alg: &str,
    ipfix: &str,
    frames: &[Vec<u8>],
    what: &str,
) -> (PathBuf, Vec<String>) {
    let port = free_udp_port();
    let sport = free_udp_port();
    let extra = format!(
        "[nat]\npool = [\"198.51.100.0/28\"]\nblock_size = 256\n{alg}\
         [logging]\nipfix = {{ collector = \"127.0.0.1:{port}\"{ipfix} }}\n\
         syslog = {{ server = \"127.0.0.1:{sport}\" }}\n"
    );
    let syslog = UdpSocket::bind(("127.0.0.1", sport)).unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let cap = run_and_capture(name, &extra, port, frames);
    let mut events = column(&cap, "cflow.nat_event");
    events.sort();
    assert_eq!(
        events,
        vec!["1", "14", "15", "2"],
        "the block's allocation and release, {what}"
    );
    assert_eq!(column(&cap, "cflow.protocol"), vec!["47", "47"]);
    let mut lines = Vec::new();
    let mut buf = [0u8; 2048];
    for _ in 0..4 {
        let n = syslog.recv(&mut buf).expect("a syslog line");
        lines.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    (cap, lines)
}

#[test]
fn address_only_sessions_are_logged_beside_port_blocks_on_ipfix_and_syslog() {
    // Port-block allocation logs blocks, not sessions (RFC 6888 REQ-14); a GRE
    // session holds no block, so its create and delete (protocol 47, ports 0) are
    // logged all the same, on syslog with its protocol and remote.
    let frames = vec![
        udp("100.64.1.2:1000", "192.0.2.10:53", b"x", false),
        ip_frame(
            "100.64.1.2",
            "192.0.2.10",
            47,
            &[0, 0, 8, 0, 1, 2, 3, 4],
            false,
        ),
    ];
    let (_, lines) = gre_beside_blocks(
        "ipfix-other",
        "",
        "",
        &frames,
        "the GRE session's create and delete",
    );
    for what in ["session-create", "session-delete"] {
        assert!(
            lines.iter().any(|l| l.contains(what)
                && l.contains("inside=\"100.64.1.2\"")
                && l.contains("protocol=\"gre\" remote=\"192.0.2.10\"")),
            "{what}: {lines:?}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains("port-block-alloc")),
        "{lines:?}"
    );
}

#[test]
fn a_pptp_call_is_logged_with_its_call_ids_on_ipfix_and_syslog() {
    // A PPTP call's GRE is attributed only through the call's translation: its
    // creation and end are logged as a GRE session whose ports are the call IDs (the
    // subscriber's 7 inside, the translated one outside), beside port blocks.
    use cgnat_alg::pptp::{message, msg};
    let (c, s) = ("100.64.1.2:40000", "192.0.2.10:1723");
    let frames = vec![
        tcp(c, s, 100, "S", b"", false),
        tcp(
            c,
            s,
            101,
            "PA",
            &message(msg::OUT_CALL_REQUEST, 7, 1),
            false,
        ),
        tcp(
            c,
            s,
            269,
            "PA",
            &message(msg::CALL_CLEAR_REQUEST, 7, 0),
            false,
        ),
    ];
    let (cap, lines) = gre_beside_blocks(
        "ipfix-pptp",
        "[alg]\npptp = { enabled = true }\n",
        ", destinations = true",
        &frames,
        "the call's create and delete",
    );
    // The subscriber in the call's records and its block's.
    assert_eq!(column(&cap, "cflow.srcaddr"), vec!["100.64.1.2"; 4]);
    twice(&cap, "cflow.srcport", "7");
    twice(&cap, "cflow.dstaddr", "192.0.2.10");
    // Never answered: the server's call ID unknown (0) at both ends.
    twice(&cap, "cflow.dstport", "0");
    let out = column(&cap, "cflow.post_naptsource_transport_port");
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0], out[1]);
    assert_ne!(out[0], "0");
    for what in ["session-create", "session-delete"] {
        let call = format!(
            "protocol=\"gre\" remote=\"192.0.2.10\" call=\"7\" outside-call=\"{}\" remote-call=\"0\"]",
            out[0]
        );
        assert!(
            lines.iter().any(|l| l.contains(what)
                && l.contains("inside=\"100.64.1.2\"")
                && l.ends_with(&call)),
            "{what}: {lines:?}"
        );
    }
}

#[test]
fn ipfix_nat64_session_destinations_and_bib_decode_with_tshark() {
    // With destinations logged (RFC 8158's NAT64 session template in full): the
    // destination as the host named it under a network-specific prefix, and the
    // IPv4 address it left for. With mappings logged, the NAT64 BIB create before
    // the session's and its delete after (natEvent 8, 9), without the remote.
    let port = free_udp_port();
    let extra = format!(
        "[nat]\npool = [\"198.51.100.0/28\"]\nallocation = \"dynamic\"\n\
         [nat64]\nprefix = \"2001:db8:64::/48\"\n\
         [logging]\nipfix = {{ collector = \"127.0.0.1:{port}\", destinations = true, mappings = true }}\n"
    );
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2(HOST_MAC, [0x02, 0, 0, 0, 1, 1])
        // 192.0.2.10 under the /48: bytes 6-7, the u octet (8) skipped, then 9.
        .ipv6(a6("fd00:ffff::10"), a6("2001:db8:64:c000:2:a00::"), 64)
        .udp(5000, 53)
        .write(&mut frame, b"q")
        .unwrap();
    let cap = run_and_capture("ipfix-nat64-dst", &extra, port, &[frame]);
    assert_eq!(column(&cap, "cflow.nat_event"), vec!["8", "4", "5", "9"]);
    let four = |field: &str, want: &str| {
        assert_eq!(column(&cap, field), vec![want; 4], "{field}");
    };
    four("cflow.srcaddrv6", "fd00:ffff::10");
    four("cflow.srcport", "5000");
    twice(&cap, "cflow.dstaddrv6", "2001:db8:64:c000:2:a00::");
    twice(&cap, "cflow.post_natdestination_ipv4_address", "192.0.2.10");
    twice(&cap, "cflow.dstport", "53");
    twice(&cap, "cflow.post_naptdestination_transport_port", "53");
    let post = column(&cap, "cflow.post_natsource_ipv4_address");
    assert!(
        post.len() == 4
            && post
                .iter()
                .all(|a| a == &post[0] && a.starts_with("198.51.100.")),
        "{post:?}"
    );
}

#[test]
fn ipfix_threshold_event_when_a_pool_address_fills() {
    let port = free_udp_port();
    // One address, 4 blocks of 16 ports: the third block crosses 50 %.
    let extra = format!(
        "[nat]\npool = [\"198.51.100.1/32\"]\nport_range = [1024, 1087]\nblock_size = 16\n\
         [logging]\nipfix = {{ collector = \"127.0.0.1:{port}\", threshold_percent = 50 }}\n"
    );
    let frames: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            udp(
                &format!("100.64.1.{}:1000", 2 + i),
                "192.0.2.10:53",
                b"x",
                false,
            )
        })
        .collect();
    let cap = run_and_capture("ipfix-threshold", &extra, port, &frames);
    let events = column(&cap, "cflow.nat_event");
    assert_eq!(
        events.iter().filter(|e| *e == "14").count(),
        3,
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| *e == "16").count(),
        1,
        "one threshold event: {events:?}"
    );
    assert_eq!(column(&cap, "cflow.nat_threshold_event"), vec!["1"]);
}
