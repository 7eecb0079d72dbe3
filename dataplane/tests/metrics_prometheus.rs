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
    drop(cgnat);
}
