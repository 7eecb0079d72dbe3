//! A real Prometheus server scrapes a running `cgnat run`; the values read back
//! through Prometheus' HTTP API must match the traffic sent, and `promtool check
//! metrics` must find nothing wrong with the exposition.

mod bed;
mod common;
mod running;
use common::*;
use running::*;
use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn query(prom: u16, q: &str) -> Option<f64> {
    let url = format!(
        "http://127.0.0.1:{prom}/api/v1/query?query={}",
        q.replace('{', "%7B")
            .replace('}', "%7D")
            .replace('"', "%22")
            .replace('=', "%3D")
            .replace('(', "%28")
            .replace(')', "%29")
    );
    let v: Value = serde_json::from_str(&http_get(&url)?).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_scrapes_cgnat_and_reads_back_the_traffic() {
    require_tools(&["prometheus", "promtool", "curl"]);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("metrics");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let frames: Vec<Vec<u8>> = (0..300)
        .map(|i| {
            to_pcap0(&format!(
                "100.64.{}.{}:{}",
                1 + i / 200,
                2 + i % 200,
                4000 + i
            ))
        })
        .collect();
    write_pcap(&dir.join("in.pcap"), &frames);
    write_pcap(&dir.join("none.pcap"), &[]);
    let mport = free_port();
    let aport = free_port();
    let cfg = run_config(
        &dir,
        "metrics",
        "[1]",
        &format!(
            "[nat]\npool = [\"198.51.100.0/28\"]\nmax_sessions = 100000\n\
             [metrics]\nlisten = \"127.0.0.1:{mport}\"\n[api]\nlisten = \"127.0.0.1:{aport}\"\n"
        ),
    );
    let cgnat = spawn_run(&dir, &cfg, &dir.join("cgnat.log"));
    let metrics_url = format!("http://127.0.0.1:{mport}/metrics");
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        if let Some(t) = http_get(&metrics_url) {
            if t.contains("cgnat_translated_packets_total{direction=\"in2out\"} 300") {
                break t;
            }
        }
        assert!(
            Instant::now() < deadline,
            "cgnat never reported 300 translations: {}",
            std::fs::read_to_string(dir.join("cgnat.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    std::fs::write(dir.join("metrics.txt"), &text).unwrap();
    // One worker: nothing to steer or hand off, and the metric says so.
    assert!(
        text.contains("cgnat_port_ownership{port=\"outside\",mode=\"single\"} 1"),
        "{text}"
    );
    let check = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "promtool check metrics < {}",
            dir.join("metrics.txt").display()
        ))
        .output()
        .unwrap();
    assert!(
        check.status.success() && check.stdout.is_empty() && check.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let pport = free_port();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: cgnat\n    static_configs:\n      - targets: ['127.0.0.1:{mport}']\n"),
    )
    .unwrap();
    let _prom = Killed(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if query(
            pport,
            "cgnat_translated_packets_total{direction=\"in2out\"}",
        ) == Some(300.0)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never read the value: {}",
            std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        query(pport, "cgnat_nat_sessions{protocol=\"udp\"}"),
        Some(300.0)
    );
    assert_eq!(query(pport, "cgnat_nat_subscribers"), Some(300.0));
    assert_eq!(query(pport, "sum(cgnat_pool_ports_used)"), Some(300.0));
    assert_eq!(
        query(pport, "cgnat_port_rx_packets_total{port=\"inside\"}"),
        Some(300.0)
    );
    assert_eq!(
        query(pport, "cgnat_port_tx_packets_total{port=\"outside\"}"),
        Some(300.0)
    );
    assert_eq!(query(pport, "sum(cgnat_drops_total)"), Some(0.0));
    assert!(query(pport, "cgnat_worker_busy_cycles_total{worker=\"0\"}").unwrap_or(0.0) > 0.0);
    // The burst path's stages: every frame parsed and dispatched once; each one
    // either translated the fast way, or had its session created in the creation
    // stage, or taken the slow one.
    let stage = |what: &str, s: &str| {
        query(
            pport,
            &format!("cgnat_worker_stage_{what}_total{{worker=\"0\",stage=\"{s}\"}}"),
        )
    };
    assert_eq!(stage("packets", "parse"), Some(300.0));
    assert_eq!(stage("packets", "dispatch"), Some(300.0));
    assert_eq!(
        stage("packets", "translate")
            .zip(stage("packets", "create"))
            .zip(stage("packets", "slow"))
            .map(|((a, b), c)| a + b + c),
        Some(300.0)
    );
    assert!(stage("cycles", "parse").unwrap_or(0.0) > 0.0);
    assert!(
        stage("cycles", "create").unwrap_or(0.0) + stage("cycles", "slow").unwrap_or(0.0) > 0.0
    );

    // Live inspection through the control API and the CLI that uses it.
    let show = |args: &[&str]| -> String {
        let o = Command::new(env!("CARGO_BIN_EXE_cgnat"))
            .arg("show")
            .args(args)
            .arg("-c")
            .arg(dir.join("cgnat.toml"))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "cgnat show {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let one_sub: Value =
        serde_json::from_str(&show(&["sessions", "--subscriber", "100.64.1.2", "--json"])).unwrap();
    let list = one_sub["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{one_sub}");
    assert_eq!(list[0]["inside"], "100.64.1.2:4000");
    assert_eq!(list[0]["remote"], "192.0.2.10:53");
    assert_eq!(list[0]["protocol"], "udp");
    let outside = list[0]["outside"].as_str().unwrap().to_string();
    let by_out: Value =
        serde_json::from_str(&show(&["sessions", "--outside", &outside, "--json"])).unwrap();
    assert_eq!(by_out["sessions"][0]["inside"], "100.64.1.2:4000");
    let by_remote: Value = serde_json::from_str(&show(&[
        "sessions",
        "--remote",
        "192.0.2.10:53",
        "--limit",
        "50",
        "--json",
    ]))
    .unwrap();
    assert_eq!(by_remote["sessions"].as_array().unwrap().len(), 50);
    assert_eq!(by_remote["truncated"], true);
    let table = show(&["sessions", "--subscriber", "100.64.1.2"]);
    assert!(
        table.contains("100.64.1.2:4000") && table.contains("1 sessions"),
        "{table}"
    );
    let sub: Value = serde_json::from_str(&show(&["subscriber", "100.64.1.2"])).unwrap();
    assert_eq!(sub["sessions"], 1);
    assert_eq!(
        (&sub["inbound_sessions"], &sub["inbound_answered"]),
        (&0.into(), &0.into())
    );
    let blocks = sub["port_blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 1, "port-block allocation: one block");
    assert_eq!(
        blocks[0][0].as_str().unwrap(),
        outside.split(':').next().unwrap()
    );
    let pool: Value = serde_json::from_str(&show(&["pool", "--json"])).unwrap();
    let used: u64 = pool["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["ports_used"].as_u64().unwrap())
        .sum();
    assert_eq!(used, 300);
    let counters: Value = serde_json::from_str(&show(&["counters"])).unwrap();
    assert_eq!(counters["translated"]["in2out"], 300);
    // Every FTP ALG counter is in both outputs.
    assert_eq!(counters["alg"]["ftp_low_port"], 0, "{counters}");
    for (label, key, _) in cgnat_dataplane::counters::FTP_EVENTS {
        assert!(counters["alg"][key].is_u64(), "{key} not in {counters}");
        assert!(
            text.contains(&format!(
                "cgnat_alg_events_total{{alg=\"ftp\",event=\"{label}\"}}"
            )),
            "{label}"
        );
    }
    // Every ALG policy decision of every ALG, in both outputs.
    for p in cgnat_alg::PLUGINS.iter() {
        for d in cgnat_dataplane::counters::POLICY_DECISIONS {
            assert!(
                counters["alg"]["policy"][p.name][d].is_u64(),
                "policy {} {d} not in {counters}",
                p.name
            );
            let line = format!(
                "cgnat_alg_policy_total{{alg=\"{}\",decision=\"{d}\"}} 0",
                p.name
            );
            assert!(text.contains(&line), "{line}");
        }
    }
    // And every SIP and RTSP event, under the ALG's name.
    for alg in ["sip", "rtsp"] {
        for label in cgnat_dataplane::counters::ALG_EVENT_NAMES {
            assert!(
                counters["alg"][alg][label].is_u64(),
                "{alg} {label} not in {counters}"
            );
            assert!(
                text.contains(&format!(
                    "cgnat_alg_events_total{{alg=\"{alg}\",event=\"{label}\"}}"
                )),
                "{alg} {label}"
            );
        }
    }
    // And every event of the ALGs run through their contract (IRC), likewise.
    for p in cgnat_dataplane::counters::contract_algs() {
        for label in cgnat_dataplane::counters::CONTRACT_EVENT_NAMES {
            assert!(
                counters["alg"][p.name][label].is_u64(),
                "{} {label} not in {counters}",
                p.name
            );
            let line = format!(
                "cgnat_alg_events_total{{alg=\"{}\",event=\"{label}\"}} 0",
                p.name
            );
            assert!(text.contains(&line), "{line}");
        }
    }
    assert!(text.contains("cgnat_alg_events_total{alg=\"irc\",event=\"pinholes\"}"));
    assert_eq!(counters["ownership"]["inside"], "single");
    for stage in cgnat_dataplane::counters::STAGES {
        assert!(
            counters["stages"][stage]["cycles"].is_u64()
                && counters["stages"][stage]["packets"].is_u64(),
            "{stage} not in {counters}"
        );
    }
    assert_eq!(counters["stages"]["parse"]["packets"], 300);
    let missing = Command::new(env!("CARGO_BIN_EXE_cgnat"))
        .args(["show", "subscriber", "100.64.77.77", "-c"])
        .arg(dir.join("cgnat.toml"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("has no state"));
    drop(cgnat);
}

#[test]
fn nat64_subscribers_in_show_map_and_metrics() {
    // A running cgnat with NAT44 and NAT64 subscribers: `cgnat show` and `cgnat map`
    // take an IPv6 address or prefix and answer with the NAT64 subscriber's prefix,
    // blocks and sessions (the IPv6 host inside); /metrics has the NAT64 gauges.
    let dir = workdir("nat64-show");
    let pcap0 = [0x02, 0x70, 0x63, 0x61, 0x70, 0x00];
    let udp6 = |host: &str, sport: u16| {
        let mut v = Vec::new();
        etherparse::PacketBuilder::ethernet2(HOST_MAC, pcap0)
            .ipv6(a6(host), a6("64:ff9b::808:404"), 64)
            .udp(sport, 53)
            .write(&mut v, b"q")
            .unwrap();
        v
    };
    let frames = vec![
        to_pcap0("100.64.1.2:4000"),
        udp6("fd00:ffff::10", 5000),
        udp6("fd00:ffff::10", 5001),
        udp6("fd00:ffff::20", 6000),
    ];
    write_pcap(&dir.join("in.pcap"), &frames);
    let (mport, aport) = (free_port(), free_port());
    let cfg = run_config(
        &dir,
        "nat64-show",
        "[1]",
        &format!(
            "[nat]\npool = [\"198.51.100.0/28\"]\n[nat64]\n\
             [metrics]\nlisten = \"127.0.0.1:{mport}\"\n[api]\nlisten = \"127.0.0.1:{aport}\"\n"
        ),
    )
    .replace(
        "ipv4 = \"100.64.0.1/10\"",
        "ipv4 = \"100.64.0.1/10\"\nipv6 = [\"fd00:ffff::1/64\"]",
    );
    let log = dir.join("cgnat.log");
    let cgnat = spawn_run(&dir, &cfg, &log);
    let metrics_url = format!("http://127.0.0.1:{mport}/metrics");
    let mut text = String::new();
    until(30, "4 translations", &log, || {
        text = http_get(&metrics_url).unwrap_or_default();
        text.contains("cgnat_translated_packets_total{direction=\"in2out\"} 4")
    });
    for want in [
        "cgnat_nat64_hosts 2",
        "cgnat_nat64_subscribers 1",
        "cgnat_nat64_sessions 3",
        "cgnat_nat_subscribers 2",
        "cgnat_nat_sessions{protocol=\"udp\"} 4",
        "cgnat_log_events_nat64_unlogged_total 0",
    ] {
        assert!(text.contains(want), "{want} not in\n{text}");
    }
    let cgnat_cmd = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_cgnat"))
            .args(args)
            .arg("-c")
            .arg(dir.join("cgnat.toml"))
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let ok = |args: &[&str]| {
        let (code, out, err) = cgnat_cmd(args);
        assert_eq!(code, Some(0), "cgnat {args:?}: {err}");
        out
    };
    // Sessions by any address of the /56 (another host's too): the IPv6 hosts.
    let table = ok(&["show", "sessions", "--subscriber", "fd00:ffff::99"]);
    for host in [
        "[fd00:ffff::10]:5000",
        "[fd00:ffff::10]:5001",
        "[fd00:ffff::20]:6000",
    ] {
        assert!(table.contains(host), "{host} not in\n{table}");
    }
    assert!(
        table.contains("3 sessions") && !table.contains("100.64.1.2"),
        "{table}"
    );
    let all: Value = serde_json::from_str(&ok(&["show", "sessions", "--json"])).unwrap();
    let rows = all["sessions"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{all}");
    let row = rows
        .iter()
        .find(|r| r["inside"] == "[fd00:ffff::20]:6000")
        .expect("the IPv6 host's session");
    let outside = row["outside"].as_str().unwrap().to_string();
    assert!(outside.starts_with("198.51.100."), "{row}");
    // The subscriber by its prefix: the prefix, its block, its sessions.
    let sub: Value = serde_json::from_str(&ok(&["show", "subscriber", "fd00:ffff::/56"])).unwrap();
    assert_eq!(
        (&sub["address"], &sub["prefix_len"], &sub["sessions"]),
        (&"fd00:ffff::".into(), &56.into(), &3.into()),
        "{sub}"
    );
    let blocks = sub["port_blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 1, "{sub}");
    let (pool, first, last) = (
        blocks[0][0].as_str().unwrap(),
        blocks[0][1].as_u64().unwrap(),
        blocks[0][2].as_u64().unwrap(),
    );
    assert_eq!(Some(pool), outside.split(':').next());
    assert_eq!(
        ok(&["show", "subscriber", "fd00:ffff::10"]),
        ok(&["show", "subscriber", "fd00:ffff::/56"])
    );
    // A prefix wider than a subscriber, and a /56 with no state, are refused.
    let (code, _, err) = cgnat_cmd(&["show", "subscriber", "fd00:ffff::/48"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("wider than one subscriber"), "{err}");
    let (code, _, err) = cgnat_cmd(&["show", "subscriber", "fd00:fffe::/56"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("has no state"), "{err}");
    // `cgnat map` (never deterministic beside [nat64]) from the live state: the
    // subscriber's block, and the host behind a public address and port.
    assert_eq!(
        ok(&["map", "forward", "fd00:ffff::20"]),
        format!("fd00:ffff::/56 -> {pool} ports {first}-{last}\n")
    );
    let (public, port) = outside.split_once(':').unwrap();
    assert_eq!(
        ok(&["map", "reverse", public, port]),
        format!("{outside} <- [fd00:ffff::20]:6000 (udp to 8.8.4.4:53)\n")
    );
    assert_eq!(
        ok(&["map", "forward", "100.64.1.2"]).split(" -> ").next(),
        Some("100.64.1.2"),
        "a NAT44 subscriber beside"
    );
    drop(cgnat);
}

#[test]
fn a_listen_address_in_use_stops_the_start_with_nothing_left_running() {
    let dir = workdir("listen-taken");
    write_pcap(&dir.join("in.pcap"), &[]);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    for (table, other) in [("api", "metrics"), ("metrics", "api")] {
        let cfg = run_config(
            &dir,
            "taken",
            "[1]",
            &format!(
                "[nat]\npool = [\"198.51.100.0/28\"]\n[{table}]\nlisten = \"127.0.0.1:{port}\"\n\
                 [{other}]\nlisten = \"127.0.0.1:{}\"\n",
                free_port()
            ),
        );
        let log = dir.join(format!("{table}.log"));
        let mut child = spawn_run(&dir, &cfg, &log);
        let status = exit_within(&mut child.0, Duration::from_secs(15));
        let err = std::fs::read_to_string(&log).unwrap_or_default();
        let status = status.unwrap_or_else(|| panic!("{table}.listen taken: still running\n{err}"));
        assert!(!status.success(), "{err}");
        assert!(
            err.contains(&format!("{table}.listen 127.0.0.1:{port}"))
                && err.contains("cannot listen"),
            "the message names the key: {err}"
        );
        // Bound before anything started: no EAL, no worker.
        assert!(!err.contains("EAL"), "{err}");
    }
    drop(taken);
}

/// Sends `request` on a fresh connection and reads the answer (at most `wait`).
fn raw(port: u16, request: &[u8], wait: Duration) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let _ = s.write_all(request);
    let mut v = Vec::new();
    let _ = s.read_to_end(&mut v);
    String::from_utf8_lossy(&v).into_owned()
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A client that sends the start of a request a byte at a time, forever.
fn trickle(port: u16, path: &'static str) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        use std::io::Write;
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return;
        };
        let req = format!("GET {path} HTTP/1.1\r\nX-Slow: ");
        let _ = s.write_all(req.as_bytes());
        for _ in 0..600 {
            std::thread::sleep(Duration::from_millis(100));
            if s.write_all(b"a").is_err() {
                return;
            }
        }
    })
}

#[test]
fn control_surfaces_hold_against_hostile_clients_and_a_stop_waits_for_none() {
    const TOKEN: &str = "s3cret-t0ken-for-the-api";
    let dir = workdir("hostile-http");
    // 60 subscribers with 200 flows each, to net_pcap0's MAC.
    let frames: Vec<Vec<u8>> = (0..12_000u32)
        .map(|i| to_pcap0(&format!("100.64.9.{}:{}", 2 + i / 200, 2000 + i % 200)))
        .collect();
    write_pcap(&dir.join("in.pcap"), &frames);
    let (mport, aport) = (free_port(), free_port());
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let sport = syslog.local_addr().unwrap().port();
    let cfg = run_config(
        &dir,
        "hostile",
        "[1]",
        &format!(
            "[nat]\npool = [\"198.51.100.0/28\"]\nmax_sessions = 100000\n\
             [metrics]\nlisten = \"127.0.0.1:{mport}\"\n\
             [api]\nlisten = \"127.0.0.1:{aport}\"\ntoken = \"{TOKEN}\"\n\
             [logging]\nsyslog = {{ server = \"127.0.0.1:{sport}\" }}\n"
        ),
    );
    let log = dir.join("cgnat.log");
    let mut cgnat = spawn_run(&dir, &cfg, &log);
    let pid = cgnat.0.id();
    // The syslog lines (port blocks), collected until the process is gone and then
    // quiet for a second (a slow start-up on a loaded machine must not end the
    // collection before the first line).
    let gone = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let lines = std::thread::spawn({
        let gone = gone.clone();
        move || {
            syslog
                .set_read_timeout(Some(Duration::from_secs(1)))
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 2048];
            loop {
                match syslog.recv(&mut buf) {
                    Ok(n) => got.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                    Err(_) if gone.load(std::sync::atomic::Ordering::SeqCst) => break,
                    Err(_) => {}
                }
            }
            got
        }
    });
    let metrics_url = format!("http://127.0.0.1:{mport}/metrics");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if http_get(&metrics_url).is_some_and(|t| {
            t.contains("cgnat_translated_packets_total{direction=\"in2out\"} 12000")
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cgnat never translated the 12000 flows: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Slow clients hold their own connection only: 20 trickling a request, 5 idle,
    // and a scrape still answers at once.
    let slow: Vec<_> = (0..20).map(|_| trickle(mport, "/metrics")).collect();
    let idle: Vec<_> = (0..5)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", mport)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let scrape = http_get(&metrics_url);
    assert!(
        scrape.is_some() && t.elapsed() < Duration::from_secs(1),
        "a scrape beside slow clients took {:?}",
        t.elapsed()
    );
    drop(idle);

    // A request head over the limit is refused early, and costs no memory.
    let big = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(16 * 1024));
    let answer = raw(mport, big.as_bytes(), Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.200}");
    let before = rss_kb(pid);
    let sent = {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", mport)).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        let chunk = vec![b'a'; 1 << 20];
        let _ = s.write_all(b"GET /");
        let mut sent = 0usize;
        while sent < 300 << 20 && s.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
        sent
    };
    let grown = rss_kb(pid).saturating_sub(before);
    eprintln!(
        "a {} MB request line: the server's RSS grew {grown} kB",
        sent >> 20
    );
    assert!(
        sent < 64 << 20,
        "the server took {} MB of a request line",
        sent >> 20
    );
    assert!(grown < 16 * 1024, "a long request line cost {grown} kB");

    // The API wants its token.
    let unauth = raw(
        aport,
        b"GET /counters HTTP/1.1\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(unauth.starts_with("HTTP/1.1 401"), "{unauth:.200}");
    let wrong = raw(
        aport,
        b"GET /counters HTTP/1.1\r\nAuthorization: Bearer s3cret-t0ken-for-the-apX\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong:.200}");
    let api_get = |path: &str| -> Value {
        let a = raw(
            aport,
            format!("GET {path} HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n").as_bytes(),
            Duration::from_secs(10),
        );
        assert!(a.starts_with("HTTP/1.1 200"), "{path}: {a:.300}");
        serde_json::from_str(a.split_once("\r\n\r\n").unwrap().1).unwrap()
    };
    // A page is capped, and the cursors walk the whole table once.
    let first = api_get("/sessions?limit=100000");
    assert_eq!(first["sessions"].as_array().unwrap().len(), 10_000);
    assert_eq!(first["limit"], 10_000);
    assert_eq!(first["truncated"], true);
    let mut seen = std::collections::HashSet::new();
    let mut page = api_get("/sessions?limit=5000");
    loop {
        for s in page["sessions"].as_array().unwrap() {
            assert!(
                seen.insert(s["inside"].as_str().unwrap().to_string()),
                "{s} twice"
            );
        }
        let Some(next) = page["next"].as_str() else {
            break;
        };
        page = api_get(&format!("/sessions?limit=5000&cursor={next}"));
    }
    assert_eq!(seen.len(), 12_000);
    // `cgnat show` sends the config's token.
    let show = Command::new(env!("CARGO_BIN_EXE_cgnat"))
        .args(["show", "sessions", "--limit", "3", "--json", "-c"])
        .arg(dir.join("cgnat.toml"))
        .output()
        .unwrap();
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    let v: Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(v["sessions"].as_array().unwrap().len(), 3);

    // Connections beyond the cap are refused at once, and counted.
    let held: Vec<_> = (0..64)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", aport)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let busy = raw(
        aport,
        b"GET /counters HTTP/1.1\r\n\r\n",
        Duration::from_secs(2),
    );
    assert!(busy.starts_with("HTTP/1.1 503"), "{busy:.200}");
    drop(held);
    let text = http_get(&metrics_url).unwrap();
    assert!(
        text.contains("cgnat_http_refused_total{server=\"api\",reason=\"busy\"} 1")
            && text.contains("cgnat_http_refused_total{server=\"api\",reason=\"unauthorized\"} 2")
            && text.contains("cgnat_http_refused_total{server=\"metrics\",reason=\"too_large\"} 2"),
        "{}",
        text.lines()
            .filter(|l| l.contains("http"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // A stop waits for no client: one trickling, one not reading a large answer.
    let _slow = trickle(mport, "/metrics");
    let mut unread = std::net::TcpStream::connect(("127.0.0.1", aport)).unwrap();
    {
        use std::io::Write;
        write!(
            unread,
            "GET /sessions?limit=10000 HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        )
        .unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = exit_within(&mut cgnat.0, Duration::from_secs(10));
    let took = t.elapsed();
    eprintln!("exit {took:?} after SIGTERM with two hostile clients");
    assert!(
        status.is_some_and(|s| s.success()) && took < Duration::from_secs(2),
        "exit {status:?} {took:?} after SIGTERM: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    drop(unread);
    drop(slow);

    // The stop released in the log every block it had logged as allocated.
    gone.store(true, std::sync::atomic::Ordering::SeqCst);
    let lines = lines.join().unwrap();
    let count = |what: &str| lines.iter().filter(|l| l.contains(what)).count();
    assert_eq!(count("port-block-alloc"), 60, "{lines:?}");
    assert_eq!(count("port-block-free"), 60, "{lines:?}");
}

/// `cgnat ARGS`, stopped after `limit`: (exit status, stderr).
fn cgnat_within(args: &[&str], limit: Duration, dir: &Path, name: &str) -> (Option<i32>, String) {
    let log = dir.join(format!("{name}.log"));
    let mut c = Killed(
        Command::new(env!("CARGO_BIN_EXE_cgnat"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let st = exit_within(&mut c.0, limit);
    (
        st.and_then(|s| s.code()),
        std::fs::read_to_string(&log).unwrap_or_default(),
    )
}

#[test]
fn start_up_and_show_mistakes_name_what_to_fix() {
    let dir = workdir("mistakes");
    write_pcap(&dir.join("in.pcap"), &[]);
    let off = "[nat]\npool = [\"198.51.100.0/28\"]\n[metrics]\nlisten = \"off\"\n[api]\nlisten = \"off\"\n";
    let path = |name: &str| dir.join(name).display().to_string();
    let write = |name: &str, text: String| std::fs::write(dir.join(name), text).unwrap();
    let t = Duration::from_secs(20);

    // A second appliance with the file prefix of one running (shared config on).
    let shared = run_config(&dir, "clash", "[1]", off).replace("\"--no-shconf\", ", "");
    write("shared.toml", shared.clone());
    let first_log = dir.join("first.log");
    let first = spawn_run(&dir, &shared, &first_log);
    let deadline = Instant::now() + t;
    while !std::fs::read_to_string(&first_log)
        .unwrap_or_default()
        .contains("port outside")
    {
        assert!(
            Instant::now() < deadline,
            "the first appliance did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, err) = cgnat_within(&["run", "-c", &path("shared.toml")], t, &dir, "second");
    drop(first);
    // EAL leaves its runtime directory behind when the config is shared.
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/cgnat-clash-{}", std::process::id()));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("another DPDK process")
            && err.contains("file prefix `cgnat-clash-")
            && err.contains("dataplane.eal_args")
            && !err.contains("Success (rte_errno 0)"),
        "{err}"
    );

    // A device DPDK does not have, and an lcore beyond DPDK's ids.
    write(
        "nodev.toml",
        run_config(&dir, "nodev", "[1]", off).replacen(
            "net_pcap1,rx_pcap=",
            "0000:99:00.0\"\n#",
            1,
        ),
    );
    let (code, err) = cgnat_within(&["run", "-c", &path("nodev.toml")], t, &dir, "nodev");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("nodev.toml: key `ports[1].device`") && err.contains("0000:99:00.0"),
        "{err}"
    );
    write("lcore.toml", run_config(&dir, "lcore", "[1, 4000]", off));
    let (code, err) = cgnat_within(&["run", "-c", &path("lcore.toml")], t, &dir, "lcore");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("lcore.toml: key `dataplane.worker_lcores[1]`: lcore 4000"),
        "{err}"
    );

    // A pcap input that is not a capture.
    std::fs::write(
        dir.join("junk.pcap"),
        b"this is not a capture at all, just text",
    )
    .unwrap();
    write("pcap.toml", run_config(&dir, "junk", "[1]", off));
    let (code, err) = cgnat_within(
        &[
            "pcap",
            "-c",
            &path("pcap.toml"),
            "--inside",
            &path("junk.pcap"),
            "--out-dir",
            &path("junk-out"),
        ],
        t,
        &dir,
        "junk",
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "--inside {}: cannot be read as a pcap file",
            path("junk.pcap")
        )) && !err.contains("not found"),
        "{err}"
    );

    // An API that accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = silent.local_addr().unwrap().to_string();
    let started = Instant::now();
    let (code, err) = cgnat_within(
        &["show", "counters", "--api", &api, "--timeout", "1"],
        t,
        &dir,
        "silent",
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        err.contains(&format!(
            "the control API at {api} did not answer within 1 s"
        )),
        "{err}"
    );
}

/// One host beyond loopback cannot take every connection slot of a control surface:
/// cgnat runs in a network namespace of its own with the API on a plain address
/// (198.18.0.1, with a token); a client there holds `PER_SOURCE` (8) idle connections,
/// and the next one from the same address is refused at once (503, counted
/// `per_source`), while the slots are free again once those connections end.
#[test]
fn one_remote_address_cannot_take_every_connection_slot() {
    if bed::skip_without_root("the per-source connection cap test") {
        return;
    }
    let ns = format!("cgnat-http-{}", std::process::id());
    let ip = |args: &[&str]| {
        let ok = Command::new("ip").args(args).status().unwrap().success();
        assert!(ok, "ip {args:?}");
    };
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    ip(&["netns", "add", &ns]);
    struct DelNs(String);
    impl Drop for DelNs {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _ns = DelNs(ns.clone());
    ip(&["-n", &ns, "link", "set", "lo", "up"]);
    ip(&["-n", &ns, "addr", "add", "198.18.0.1/32", "dev", "lo"]);

    let dir = workdir("per-source");
    write_pcap(&dir.join("in.pcap"), &[]);
    let token = "per-source-test-token-0123456789";
    let cfg = run_config(
        &dir,
        "persource",
        "[1]",
        &format!(
            "[nat]\npool = [\"198.51.100.0/28\"]\n[api]\nlisten = \"198.18.0.1:9470\"\n\
             token = \"{token}\"\n[metrics]\nlisten = \"off\"\n"
        ),
    );
    std::fs::write(dir.join("cgnat.toml"), &cfg).unwrap();
    let log = dir.join("run.log");
    let _run = Killed(
        Command::new("ip")
            .args(["netns", "exec", &ns])
            .arg(env!("CARGO_BIN_EXE_cgnat"))
            .args(["run", "-c"])
            .arg(dir.join("cgnat.toml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    // The client, in the namespace: its source is 198.18.0.1, not loopback.
    let client = r#"
import socket, sys, time
token = sys.argv[1]
def get(path):
    s = socket.create_connection(("198.18.0.1", 9470), timeout=5)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            return data.decode(errors="replace")
        data += b
deadline = time.time() + 60
while True:
    try:
        get("/counters")
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("cgnat's API never answered")
        time.sleep(0.2)
idle = [socket.create_connection(("198.18.0.1", 9470), timeout=5) for _ in range(8)]
time.sleep(0.3)
s = socket.create_connection(("198.18.0.1", 9470), timeout=5)
s.sendall(b"GET /counters HTTP/1.1\r\nHost: x\r\n\r\n")
print("NINTH", s.recv(200).split(b"\r\n")[0].decode())
for c in idle:
    c.close()
time.sleep(0.3)
answer = get("/counters")
print("AFTER", answer.split("\r\n")[0])
print("BODY", answer.split("\r\n\r\n", 1)[1].replace("\n", " "))
"#;
    let out = Command::new("ip")
        .args(["netns", "exec", &ns, "python3", "-c", client, token])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        out.status.success(),
        "{text}{}\ncgnat: {err}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("NINTH HTTP/1.1 503"), "{text}");
    assert!(text.contains("AFTER HTTP/1.1 200"), "{text}");
    let body = text.split("BODY ").nth(1).unwrap_or("{}");
    let v: Value = serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(v["http_refused"]["api"]["per_source"], 1, "{body}");
    assert!(
        err.contains("api.listen 198.18.0.1:9470 can be reached from other hosts"),
        "{err}"
    );
}
