//! `cgnat top` against a running appliance: `cgnat run` on net_pcap with `infinite_rx`
//! (the input replayed from memory without end, so the rates never fall to zero), the
//! view run in a tmux pane and its screen read back with `tmux capture-pane`.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A tmux server of this test's own (its socket in the test's directory), killed when
/// dropped.
struct Tmux(PathBuf);
impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.0)
            .args(args)
            .output()
            .unwrap()
    }
    /// Starts `cgnat top ARGS` in a new `cols`x`rows` session `name`, in a shell that
    /// survives Ctrl-C and says, once it returns, its exit status and whether the
    /// terminal's settings are back as they were.
    fn start(&self, name: &str, cols: u16, rows: u16, args: &str) {
        let cmd = format!(
            "before=$(stty -g); trap true INT; {} top {args}; echo top-exited-$?; \
             [ \"$(stty -g)\" = \"$before\" ] && echo tty-restored; echo top-done; sleep 60",
            env!("CARGO_BIN_EXE_cgnat"),
        );
        let (c, r) = (cols.to_string(), rows.to_string());
        let o = self.run(&["new-session", "-d", "-s", name, "-x", &c, "-y", &r, &cmd]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    /// The visible screen of session `name`.
    fn screen(&self, name: &str) -> String {
        let o = self.run(&["capture-pane", "-p", "-t", name]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
    /// The screen of session `name` once it shows `text`, within `limit`.
    fn wait_for(&self, name: &str, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let s = self.screen(name);
            if s.contains(text) {
                return s;
            }
            assert!(Instant::now() < deadline, "no {text:?} in {name}:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    /// Types `keys` in session `name`; the view must end with status 0 and the
    /// terminal as it was (the shell's lines are on the normal screen).
    fn quit_with(&self, name: &str, keys: &str) {
        let o = self.run(&["send-keys", "-t", name, keys]);
        assert!(o.status.success());
        let s = self.wait_for(name, "top-done", Duration::from_secs(10));
        assert!(s.contains("top-exited-0"), "{keys}:\n{s}");
        assert!(
            s.contains("tty-restored"),
            "{keys}: terminal settings not restored:\n{s}"
        );
        assert!(
            !s.contains("WORKER"),
            "{keys}: the view stayed on screen:\n{s}"
        );
    }
}
impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `frame` sent to net_pcap0's MAC (02:70:63:61:70:00): `cgnat run` drops frames for
/// other hosts, as a router must.
fn to_pcap0(mut f: Vec<u8>) -> Vec<u8> {
    f[..6].copy_from_slice(&[0x02, 0x70, 0x63, 0x61, 0x70, 0x00]);
    f
}

fn api_get(aport: u16, path: &str) -> Option<Value> {
    serde_json::from_str(&http_get(&format!("http://127.0.0.1:{aport}{path}"))?).ok()
}

/// The number after `label` (a word) on the first line holding it.
fn number_after(screen: &str, label: &str) -> Option<u64> {
    screen.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        let i = w.iter().position(|x| *x == label)?;
        w.get(i + 1)?.parse().ok()
    })
}

/// The rows of the worker table: lines that start with a worker number.
fn worker_rows(screen: &str) -> Vec<Vec<String>> {
    let mut in_table = false;
    let mut rows = Vec::new();
    for l in screen.lines() {
        if l.starts_with("WORKER") {
            in_table = true;
            continue;
        }
        if in_table {
            if l.trim().is_empty() {
                break;
            }
            rows.push(l.split_whitespace().map(str::to_string).collect());
        }
    }
    rows
}

fn setup(dir: &Path, aport: u16) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    // Three busy subscribers (12, 8 and 4 flows), 20 with one flow each, a SIP INVITE
    // (the ALG counts it), and frames dropped for two reasons: a source outside the
    // inside prefixes, and an IPv6 frame.
    let mut frames = Vec::new();
    for (host, flows) in [("100.64.1.2", 12), ("100.64.1.3", 8), ("100.64.1.4", 4)] {
        for p in 0..flows {
            frames.push(udp(
                &format!("{host}:{}", 4000 + p),
                "192.0.2.10:53",
                b"q",
                false,
            ));
        }
    }
    for i in 0..20 {
        frames.push(udp(
            &format!("100.64.2.{}:5000", 10 + i),
            "192.0.2.10:53",
            b"q",
            false,
        ));
    }
    frames.push(invite(20000, 700));
    frames.push(udp("8.8.8.8:5000", "192.0.2.10:53", b"q", false));
    let mut v6 = udp("100.64.1.9:5000", "192.0.2.10:53", b"q", false);
    v6[12..14].copy_from_slice(&[0x86, 0xdd]);
    frames.push(v6);
    let frames: Vec<Vec<u8>> = frames.into_iter().map(to_pcap0).collect();
    write_pcap(&dir.join("in.pcap"), &frames);
    // Two workers, each reading the file from memory without end on its own queue.
    let cfg = format!(
        r#"[dataplane]
eal_args = ["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--file-prefix=cgnat-top-{pid}"]
worker_lcores = [1, 2]
[[ports]]
name = "inside"
role = "inside"
device = "net_pcap0,rx_pcap={d}/in.pcap,rx_pcap={d}/in.pcap,infinite_rx=1"
ipv4 = "100.64.0.1/10"
[[ports]]
name = "outside"
role = "outside"
device = "net_null0,no-rx=1"
ipv4 = "203.0.113.1/24"
gateway = "203.0.113.254"
gateway_mac = "02:aa:00:00:00:fe"
[nat]
pool = ["198.51.100.0/30"]
[alg.sip]
enabled = true
[metrics]
listen = "off"
[api]
listen = "127.0.0.1:{aport}"
"#,
        pid = std::process::id(),
        d = dir.display()
    );
    let path = dir.join("cgnat.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

#[test]
fn top_shows_live_rates_of_a_running_appliance_and_quits_on_q() {
    require_tools(&["tmux", "curl"]);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("top");
    let aport = free_port();
    let cfg = setup(&dir, aport);
    let log = dir.join("cgnat.log");
    let _cgnat = Killed(
        Command::new(env!("CARGO_BIN_EXE_cgnat"))
            .args(["run", "-c"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    // Every flow has its session: 44, and the SIP call's.
    let deadline = Instant::now() + Duration::from_secs(60);
    let counters = loop {
        if let Some(c) = api_get(aport, "/counters").filter(|c| c["sessions_active"]["udp"] == 45) {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "cgnat never held the 45 sessions: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let sessions: u64 = counters["sessions_active"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();

    // One frame for scripts: cut to COLUMNS.
    let once = Command::new(env!("CARGO_BIN_EXE_cgnat"))
        .args(["top", "--once", "--api", &format!("127.0.0.1:{aport}")])
        .env("COLUMNS", "60")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&once.stdout);
    assert!(
        once.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&once.stderr)
    );
    assert!(text.lines().all(|l| l.chars().count() <= 60), "{text}");
    assert_eq!(worker_rows(&text).len(), 2, "{text}");

    // The view in a 160x50 terminal.
    let tmux = Tmux(dir.join("tmux.sock"));
    tmux.start("top", 160, 50, &format!("-c {}", cfg.display()));
    let first = tmux.wait_for("top", "BUSIEST SUBSCRIBERS", Duration::from_secs(30));
    std::fs::write(dir.join("screen1.txt"), &first).unwrap();
    assert!(first.lines().all(|l| l.chars().count() <= 160), "{first}");
    // Each worker took packets and was busy for them.
    let rows = worker_rows(&first);
    assert_eq!(rows.len(), 2, "{first}");
    for r in &rows {
        let rx: f64 = r[1].trim_end_matches('M').parse().unwrap();
        assert!(rx > 0.0, "worker {} without packets/s:\n{first}", r[0]);
        let busy: f64 = r[7].parse().unwrap();
        assert!(busy > 0.0, "worker {} never busy:\n{first}", r[0]);
    }
    // The sessions the API holds, on the screen, in all and per worker.
    assert_eq!(number_after(&first, "sessions"), Some(sessions), "{first}");
    let per_worker: u64 = rows.iter().map(|r| r[5].parse::<u64>().unwrap()).sum();
    assert_eq!(per_worker, sessions, "{first}");
    assert_eq!(
        number_after(&first, "subscribers"),
        counters["subscribers_active"].as_u64(),
        "{first}"
    );
    // Both drop reasons, at a rate.
    for reason in ["source_not_inside", "eth_unsupported_ethertype"] {
        let rate = number_after(&first, reason);
        assert!(rate.is_some_and(|r| r > 0), "{reason}:\n{first}");
    }
    // A bar per pool address, with the ports in use.
    let pool = api_get(aport, "/pool").unwrap();
    for a in pool["addresses"].as_array().unwrap() {
        let addr = a["address"].as_str().unwrap();
        let line = first
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{addr} ")))
            .unwrap_or_else(|| panic!("no bar for {addr}:\n{first}"));
        assert!(line.contains('[') && line.contains(']'), "{line}");
        if a["ports_used"].as_u64().unwrap() > 0 {
            assert!(line.contains("[#"), "{line}");
        }
    }
    // The SIP ALG's messages, at a rate.
    let sip = first
        .split_whitespace()
        .skip_while(|w| *w != "sip.messages")
        .nth(1)
        .unwrap_or_else(|| panic!("no sip.messages:\n{first}"));
    assert!(
        sip.trim_end_matches("/s").parse::<f64>().unwrap() > 0.0,
        "{first}"
    );
    // The busiest subscriber first, with the sessions the API gives it.
    let busiest = api_get(aport, "/subscribers/100.64.1.2").unwrap();
    let want =
        busiest["sessions"].as_u64().unwrap() + busiest["inbound_sessions"].as_u64().unwrap();
    let after = first.split("BUSIEST SUBSCRIBERS").nth(1).unwrap();
    let row: Vec<&str> = after.lines().nth(2).unwrap().split_whitespace().collect();
    assert_eq!(row[..2], ["100.64.1.2", &want.to_string()], "{first}");

    // A couple of seconds later, the screen was drawn again: the clock moved and the
    // cumulative drop totals grew.
    std::thread::sleep(Duration::from_millis(2500));
    let second = tmux.screen("top");
    std::fs::write(dir.join("screen2.txt"), &second).unwrap();
    let clock = |s: &str| s.lines().next().unwrap_or("").to_string();
    assert_ne!(clock(&first), clock(&second), "{second}");
    let total = |s: &str| -> u64 {
        let l = s.lines().find(|l| l.contains("source_not_inside")).unwrap();
        l.split_whitespace().last().unwrap().parse().unwrap()
    };
    assert!(total(&second) > total(&first), "{first}\n{second}");

    tmux.quit_with("top", "q");

    // In a small terminal the tables are shortened to fit, every heading kept from
    // the clock to the busiest subscribers; Ctrl-C quits as q does.
    tmux.start(
        "small",
        70,
        30,
        &format!("--api 127.0.0.1:{aport} --interval 0.5"),
    );
    let small = tmux.wait_for("small", "WORKER", Duration::from_secs(30));
    std::fs::write(dir.join("screen-small.txt"), &small).unwrap();
    let lines: Vec<&str> = small.lines().collect();
    assert!(lines.iter().all(|l| l.chars().count() <= 70), "{small}");
    assert!(lines.len() <= 30, "{small}");
    assert!(
        lines[0].starts_with("cgnat top - "),
        "the first line scrolled away:\n{small}"
    );
    for heading in ["DROPS", "POOL", "ALG EVENTS", "BUSIEST SUBSCRIBERS"] {
        assert!(
            lines.iter().any(|l| l.starts_with(heading)),
            "{heading}:\n{small}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  ... ") && l.ends_with(" more")),
        "{small}"
    );
    tmux.quit_with("small", "C-c");
}
