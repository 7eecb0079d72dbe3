//! A real Prometheus server scrapes a running `cgnat run`; the values read back
//! through Prometheus' HTTP API must match the traffic sent, and `promtool check
//! metrics` must find nothing wrong with the exposition.

mod common;
use common::*;
use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "2", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
    for tool in ["prometheus", "promtool", "curl"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .status()
                .unwrap()
                .success(),
            "{tool} is missing: run scripts/install-deps.sh --test"
        );
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("metrics");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Addressed to net_pcap0's MAC (02:70:63:61:70:00): `cgnat run` drops frames for
    // other hosts, as a router must.
    let frames: Vec<Vec<u8>> = (0..300)
        .map(|i| {
            let mut f = udp(
                &format!("100.64.{}.{}:{}", 1 + i / 200, 2 + i % 200, 4000 + i),
                "192.0.2.10:53",
                b"m",
                false,
            );
            f[..6].copy_from_slice(&[0x02, 0x70, 0x63, 0x61, 0x70, 0x00]);
            f
        })
        .collect();
    write_pcap(&dir.join("in.pcap"), &frames);
    write_pcap(&dir.join("none.pcap"), &[]);
    let mport = free_port();
    let aport = free_port();
    let cfg = format!(
        r#"[dataplane]
eal_args = ["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--file-prefix=cgnat-metrics-{pid}"]
worker_lcores = [1]
[[ports]]
name = "inside"
role = "inside"
device = "net_pcap0,rx_pcap={d}/in.pcap,tx_pcap={d}/in-tx.pcap"
ipv4 = "100.64.0.1/10"
[[ports]]
name = "outside"
role = "outside"
device = "net_pcap1,rx_pcap={d}/none.pcap,tx_pcap={d}/out-tx.pcap"
ipv4 = "203.0.113.1/24"
gateway = "203.0.113.254"
gateway_mac = "02:aa:00:00:00:fe"
[nat]
pool = ["198.51.100.0/28"]
max_sessions = 100000
[metrics]
listen = "127.0.0.1:{mport}"
[api]
listen = "127.0.0.1:{aport}"
"#,
        pid = std::process::id(),
        d = dir.display()
    );
    std::fs::write(dir.join("cgnat.toml"), cfg).unwrap();
    let cgnat = Killed(
        Command::new(env!("CARGO_BIN_EXE_cgnat"))
            .args(["run", "-c"])
            .arg(dir.join("cgnat.toml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("cgnat.log")).unwrap())
            .spawn()
            .unwrap(),
    );
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
    assert_eq!(counters["ownership"]["inside"], "single");
    let missing = Command::new(env!("CARGO_BIN_EXE_cgnat"))
        .args(["show", "subscriber", "100.64.77.77", "-c"])
        .arg(dir.join("cgnat.toml"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("has no state"));
    drop(cgnat);
}
