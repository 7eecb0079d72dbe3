//! NAT event logs (RFC 8158 over IPFIX) from a running cgnat, captured on the wire and
//! decoded by a real collector-side decoder (tshark's IPFIX dissector); the fields
//! must match the traffic sent. Syslog (RFC 5424) block events likewise.

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
[[ports]]
name = "outside"
role = "outside"
device = "pcap"
ipv4 = "203.0.113.1/24"
gateway = "203.0.113.254"
gateway_mac = "02:aa:00:00:00:fe"
"#;

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
/// value, in order).
fn column(cap: &Path, port: u16, field: &str) -> Vec<String> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(cap)
        .args([
            "-d",
            &format!("udp.port=={port},cflow"),
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

#[test]
fn ipfix_session_and_quota_events_decode_with_tshark() {
    let port = free_udp_port();
    let extra = format!(
        "[nat]\npool = [\"198.51.100.0/28\"]\nallocation = \"dynamic\"\nmax_sessions_per_subscriber = 2\nicmp_on_limit = false\n\
         [logging]\nipfix = {{ collector = \"127.0.0.1:{port}\" }}\n"
    );
    let frames = vec![
        udp("100.64.1.2:1111", "192.0.2.10:53", b"a", false),
        udp("100.64.1.2:2222", "192.0.2.10:53", b"b", false),
        udp("100.64.1.2:3333", "192.0.2.10:53", b"refused", false),
        udp("100.64.1.3:4444", "192.0.2.11:53", b"c", false),
    ];
    let cap = run_and_capture("ipfix-sessions", &extra, port, &frames);
    let events = column(&cap, port, "cflow.nat_event");
    assert_eq!(
        events.iter().filter(|e| *e == "1").count(),
        3,
        "three session creates: {events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| *e == "11").count(),
        1,
        "one quota exceeded: {events:?}"
    );
    // The end of the run closes in the log what it opened: a delete for each
    // session still alive, after its create.
    assert_eq!(
        events.iter().filter(|e| *e == "2").count(),
        3,
        "three session deletes at the stop: {events:?}"
    );
    assert_eq!(events.last().map(String::as_str), Some("2"), "{events:?}");
    let src = column(&cap, port, "cflow.srcaddr");
    for want in ["100.64.1.2", "100.64.1.3"] {
        assert!(src.iter().any(|s| s == want), "{want} not logged: {src:?}");
    }
    let post = column(&cap, port, "cflow.post_natsource_ipv4_address");
    assert_eq!(post.len(), 6, "creates and deletes: {post:?}");
    assert!(
        post.iter().all(|a| a.starts_with("198.51.100.")),
        "{post:?}"
    );
    let ports = column(&cap, port, "cflow.srcport");
    for p in ["1111", "2222", "4444"] {
        assert!(ports.iter().any(|x| x == p), "{p} not logged: {ports:?}");
    }
    assert_eq!(
        column(&cap, port, "cflow.nat_quota_exceeded_event"),
        vec!["3"],
        "maximum entries per user"
    );
    assert_eq!(column(&cap, port, "cflow.max_entries_per_user"), vec!["2"]);
    // No destinations by default (RFC 6888 REQ-12).
    assert!(column(&cap, port, "cflow.dstaddr").is_empty());
    // Templates came first, and timestamps are milliseconds.
    let t = column(&cap, port, "cflow.observation_time_milliseconds");
    assert!(!t.is_empty());
}

#[test]
fn ipfix_port_block_events_and_syslog() {
    let port = free_udp_port();
    let sport = free_udp_port();
    let extra = format!(
        "[nat]\npool = [\"198.51.100.0/28\"]\nblock_size = 256\n\
         [logging]\nipfix = {{ collector = \"127.0.0.1:{port}\" }}\nsyslog = {{ server = \"127.0.0.1:{sport}\" }}\n"
    );
    let syslog = UdpSocket::bind(("127.0.0.1", sport)).unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let frames: Vec<Vec<u8>> = (0..5)
        .map(|i| {
            udp(
                &format!("100.64.1.2:{}", 1000 + i),
                "192.0.2.10:53",
                b"x",
                false,
            )
        })
        .collect();
    let cap = run_and_capture("ipfix-blocks", &extra, port, &frames);
    let events = column(&cap, port, "cflow.nat_event");
    assert_eq!(
        events,
        vec!["14", "15"],
        "one block allocation, no per-session events (RFC 6888 REQ-14), and the \
         block's release when the run stops"
    );
    let start: u16 = column(&cap, port, "cflow.port_range_start")[0]
        .parse()
        .unwrap();
    let end: u16 = column(&cap, port, "cflow.port_range_end")[0]
        .parse()
        .unwrap();
    assert_eq!(end - start + 1, 256);
    assert_eq!(
        column(&cap, port, "cflow.srcaddr"),
        vec!["100.64.1.2", "100.64.1.2"]
    );
    assert_eq!(
        column(&cap, port, "cflow.port_range_start")[1],
        start.to_string()
    );
    let mut buf = [0u8; 2048];
    let n = syslog.recv(&mut buf).expect("a syslog line");
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(line.starts_with("<134>1 "), "{line}");
    assert!(
        line.contains("port-block-alloc")
            && line.contains("inside=\"100.64.1.2\"")
            && line.contains(&format!("first=\"{start}\"")),
        "{line}"
    );
    let n = syslog.recv(&mut buf).expect("a second syslog line");
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(
        line.contains("port-block-free")
            && line.contains("inside=\"100.64.1.2\"")
            && line.contains(&format!("first=\"{start}\"")),
        "the stop releases the block: {line}"
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
    let events = column(&cap, port, "cflow.nat_event");
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
    assert_eq!(column(&cap, port, "cflow.nat_threshold_event"), vec!["1"]);
}
