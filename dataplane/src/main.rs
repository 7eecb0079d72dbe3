//! The `cgnat` command: the appliance (`run`), pcap test mode (`pcap`), config
//! validation (`check`), deterministic NAT look-ups (`map`), a real capture through
//! the pipeline (`replay`), the live state of a running appliance (`show`, and `top`,
//! refreshed every second) and the host's huge pages and vfio-pci bindings (`setup`).
//! `cgnat CMD --help` prints the part of the help about CMD; the man page is made from
//! these texts.

mod api;
mod exporter;
mod hasync;
mod http;
mod metrics;
mod reload;
mod runtime;
mod setup;
mod top;

use anyhow::{anyhow, bail, Context, Result};
use cgnat_config::{Config, Role};
use runtime::{run, RunOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const USAGE: &str = "cgnat: carrier-grade NAT44 on DPDK, with FTP, TFTP, SIP and RTSP ALGs.

usage:
  cgnat run -c FILE
      Run the appliance on the ports of FILE until SIGINT or SIGTERM.
  cgnat pcap -c FILE --inside IN.pcap [--outside IN2.pcap] --out-dir DIR
      Pcap test mode: feed IN.pcap to the inside port (and IN2.pcap to the outside),
      run until drained, write DIR/outside.pcap and DIR/inside.pcap (what left each
      port), print a JSON summary (also in DIR/summary.json).
  cgnat replay -c FILE --inside-host IP [--server-port P [--server-as IP] [--inside-as IP]] CAPTURE --out-dir DIR
      Replay a two-sided capture through the pipeline, playing the outside peer as it
      would have seen the translated traffic; fails on any round-trip mismatch or any
      trace of the inside host on the outside. Writes outside.pcap, inside.pcap and
      report.json to DIR.
  cgnat check -c FILE
      Validate FILE and print every resolved setting.
  cgnat show sessions [--subscriber IP] [--outside IP[:PORT]] [--remote IP[:PORT]] [--limit N] [--cursor C]
  cgnat show subscriber IP|IPV6[/LEN] | pool | counters | expectations | config | ha   (-c FILE or --api HOST:PORT [--token T]; --json; --timeout SECS, 10)
      Live state of a running appliance, through its control API (api.listen, with
      api.token from FILE). A page holds at most 10000 sessions; --cursor continues.
      `config`: the settings it runs with (after the last reload), resolved.
  cgnat top [-c FILE | --api HOST:PORT [--token T]] [--interval SECS] [--once] [--subscribers N] [--timeout SECS]
      A live view of a running appliance, redrawn every --interval (1 s): packets/s
      and busy share per worker, drops by reason, sessions and subscribers, pool use
      per address, ALG events/s, the N (10) busiest subscribers. q or Ctrl-C quits.
      --once prints one frame, after one interval of sampling, and exits.
  cgnat reload (-c FILE | --api HOST:PORT [--token T]) [--json] [--timeout SECS, 30]
      Make a running appliance read its config file again (the one it was started
      with) and apply what changes live: timeouts, ALGs, limits, policies, static
      mappings, logging. A setting that needs a restart (lcores, devices, table sizes,
      the pool, listeners) or an invalid file is named and nothing is applied (exit
      status 2). Live sessions stay. SIGHUP does the same.
  cgnat ha promote|demote|status (-c FILE | --api HOST:PORT [--token T]) [--json] [--timeout SECS, 10]
      HA (`[ha]`): make the appliance active (it forwards, announces its addresses
      with gratuitous ARP and sends its state to the peer) or standby (it forwards
      nothing and installs the active's state), or show its role and sync state
      (also `cgnat show ha`). keepalived's notify scripts call these.
  cgnat map -c FILE forward INSIDE_IP
  cgnat map -c FILE reverse PUBLIC_IP PORT
      Deterministic NAT (RFC 7422): the public address and port range of an inside
      address, or the inside address that owned a public address and port. No logs
      needed: the answer is computed from the config.
  cgnat map -c FILE [--api HOST:PORT] [--token T] forward IP|IPV6[/LEN] | reverse PUBLIC_IP PORT
      With [nat64] (never deterministic): from the running appliance's live state,
      the port blocks of a subscriber (an IPv6 address or prefix: the NAT64
      subscriber whose prefix holds it), or the inside host (an IPv6 one for a NAT64
      session) of each session using a public address and port now. What was held
      before is in the event logs (IPFIX, syslog).
  cgnat setup -c FILE [--dry-run] [--bind] [--page-size 2M|1G]
      Prepare the host for FILE: reserve the huge pages its DPDK memory needs
      (dataplane.eal_args -m or --socket-mem, at least its mbuf pool, queues and rings;
      pages are added, never taken away) and mount hugetlbfs; with --bind, bind the
      PCI devices its ports name to vfio-pci (refused for an interface that is up).
      --dry-run prints each step without taking it. Pages are of the kernel's default
      size unless --page-size says otherwise.
";

/// Options that take no value.
const FLAGS: &[&str] = &["--json", "--once", "--dry-run", "--bind"];

/// The part of [`USAGE`] about one command: its synopsis lines and what follows them.
fn command_help(cmd: &str) -> Option<String> {
    let head = format!("  cgnat {cmd} ");
    let mut out = String::new();
    let mut inside = false;
    for line in USAGE.lines() {
        if line.starts_with("  cgnat ") {
            inside = line.starts_with(&head);
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    (!out.is_empty()).then(|| format!("usage:\n{out}"))
}

struct Args {
    cmd: String,
    opts: Vec<(String, String)>,
    /// Arguments that are not options (for `map`).
    words: Vec<String>,
}

impl Args {
    fn parse(mut it: impl Iterator<Item = String>) -> Result<Args> {
        let cmd = it.next().ok_or_else(|| anyhow!("no command given"))?;
        let mut opts = Vec::new();
        let mut words = Vec::new();
        while let Some(a) = it.next() {
            if !a.starts_with('-') {
                words.push(a);
                continue;
            }
            if FLAGS.contains(&a.as_str()) {
                opts.push((a, "true".to_string()));
                continue;
            }
            let (k, v) = match a.split_once('=') {
                Some((k, v)) if k.starts_with("--") => (k.to_string(), v.to_string()),
                _ => {
                    let v = it.next().ok_or_else(|| anyhow!("{a} needs a value"))?;
                    (a, v)
                }
            };
            opts.push((k, v));
        }
        Ok(Args { cmd, opts, words })
    }

    fn get(&self, keys: &[&str]) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|(k, _)| keys.contains(&k.as_str()))
            .map(|(_, v)| v.as_str())
    }

    fn only(&self, allowed: &[&str]) -> Result<()> {
        if !["map", "show", "replay", "ha"].contains(&self.cmd.as_str()) {
            if let Some(w) = self.words.first() {
                bail!("unexpected argument `{w}` for `cgnat {}`", self.cmd);
            }
        }
        for (k, _) in &self.opts {
            if !allowed.contains(&k.as_str()) {
                bail!("unknown option {k} for `cgnat {}`", self.cmd);
            }
        }
        Ok(())
    }

    fn config(&self) -> Result<Config> {
        let path = self
            .get(&["-c", "--config"])
            .ok_or_else(|| anyhow!("-c FILE is required"))?;
        cgnat_config::load(Path::new(path)).map_err(|e| anyhow!("{e}"))
    }
}

fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handler")?;
    }
    Ok(stop)
}

fn write_empty_pcap(path: &Path) -> Result<()> {
    std::fs::write(path, cgnat_dataplane::pcap::header())
        .with_context(|| format!("writing {}", path.display()))
}

fn absolute(p: &str) -> Result<PathBuf> {
    let p = PathBuf::from(p);
    if !p.exists() {
        bail!("{} does not exist", p.display());
    }
    p.canonicalize()
        .with_context(|| format!("resolving {}", p.display()))
}

fn pcap_mode(args: &Args) -> Result<()> {
    args.only(&["-c", "--config", "--inside", "--outside", "--out-dir"])?;
    let mut cfg = args.config()?;
    let inside = absolute(
        args.get(&["--inside"])
            .ok_or_else(|| anyhow!("--inside IN.pcap is required"))?,
    )?;
    let out_dir = PathBuf::from(
        args.get(&["--out-dir"])
            .ok_or_else(|| anyhow!("--out-dir DIR is required"))?,
    );
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let out_dir = out_dir.canonicalize()?;
    let outside = match args.get(&["--outside"]) {
        Some(p) => absolute(p)?,
        None => {
            let p = out_dir.join(".no-outside-input.pcap");
            write_empty_pcap(&p)?;
            p
        }
    };
    for path in [&inside, &outside, &out_dir] {
        if path.to_string_lossy().contains(',') {
            bail!(
                "{}: DPDK device arguments cannot hold a comma in a path",
                path.display()
            );
        }
    }
    // The pcap vdevs replace whatever devices the config names. With several workers,
    // each input is dealt over one file per queue as RSS on IP addresses would (a
    // subscriber's conversations land on every queue; workers hand them to the owner), and the per-queue
    // outputs are merged in time order at the end.
    let workers = cfg.dataplane.worker_lcores.len();
    let mut outputs: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
    for p in &mut cfg.ports {
        let (idx, input, name) = match p.role {
            Role::Inside => (0, &inside, "inside"),
            Role::Outside => (1, &outside, "outside"),
        };
        let rx: Vec<PathBuf> = if workers == 1 {
            vec![input.clone()]
        } else {
            cgnat_dataplane::pcap::split(input, &out_dir.join(format!(".{name}-rx")), workers)
                .with_context(|| format!("dealing {} over {workers} queues", input.display()))?
        };
        let tx: Vec<PathBuf> = if workers == 1 {
            vec![out_dir.join(format!("{name}.pcap"))]
        } else {
            (0..workers)
                .map(|q| out_dir.join(format!(".{name}-tx{q}.pcap")))
                .collect()
        };
        let mut dev = format!("net_pcap{idx}");
        for r in &rx {
            dev.push_str(&format!(",rx_pcap={}", r.display()));
        }
        for t in &tx {
            dev.push_str(&format!(",tx_pcap={}", t.display()));
        }
        p.device = dev;
        if workers > 1 {
            outputs.push((out_dir.join(format!("{name}.pcap")), tx));
        }
    }
    // How many frames the inputs hold: the run is drained once the workers have
    // received them all (a quiet spell alone can be a busy machine's scheduler).
    // A file the pcap driver cannot read leaves its port uncreated: say so here, by
    // the file's name, rather than as a missing port.
    let mut input_frames = 0u64;
    for (flag, f) in [("--inside", &inside), ("--outside", &outside)] {
        input_frames += cgnat_dataplane::pcap::frames(f)
            .map_err(|e| anyhow!("{flag} {}: cannot be read as a pcap file: {e}", f.display()))?
            .len() as u64;
    }
    let opts = RunOptions {
        until_drained: true,
        input_frames: Some(input_frames),
        stop: stop_flag()?,
    };
    let summary = run(&cfg, &opts)?;
    for (merged, parts) in &outputs {
        cgnat_dataplane::pcap::merge(parts, merged)
            .with_context(|| format!("writing {}", merged.display()))?;
    }
    let text = serde_json::to_string_pretty(&summary)?;
    std::fs::write(out_dir.join("summary.json"), &text)?;
    println!("{text}");
    Ok(())
}

fn run_mode(args: &Args) -> Result<()> {
    args.only(&["-c", "--config"])?;
    let cfg = args.config()?;
    let opts = RunOptions {
        until_drained: false,
        input_frames: None,
        stop: stop_flag()?,
    };
    eprintln!("cgnat: running {} (SIGINT or SIGTERM to stop)", cfg.file);
    let summary = run(&cfg, &opts)?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

fn check_mode(args: &Args) -> Result<()> {
    args.only(&["-c", "--config"])?;
    let cfg = args.config()?;
    print!("{}", cfg.resolved_toml());
    Ok(())
}

fn map_mode(args: &Args) -> Result<()> {
    args.only(&["-c", "--config", "--api", "--token", "--timeout"])?;
    let cfg = args.config()?;
    if cfg.nat.allocation != cgnat_config::Allocation::Deterministic {
        if cfg.nat64.is_none() {
            bail!("{}: nat.allocation is not \"deterministic\"; only deterministic NAT can be mapped without logs", cfg.file);
        }
        return map_live(args, &cfg.file);
    }
    let params = cgnat_dataplane::nat::NatParams::from_config(&cfg.nat, 1)
        .map_err(|e| anyhow!("{}: {}", cfg.file, e.0))?;
    let det = params
        .deterministic
        .ok_or_else(|| anyhow!("no deterministic parameters"))?;
    let w: Vec<&str> = args.words.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["forward", ip] => {
            let ip: std::net::Ipv4Addr = ip
                .parse()
                .with_context(|| format!("`{ip}` is not an IPv4 address"))?;
            let (public, first, last) = det
                .forward(ip)
                .ok_or_else(|| anyhow!("{ip} is not in nat.inside of {}", cfg.file))?;
            println!("{ip} -> {public} ports {first}-{last}");
        }
        ["reverse", public, port] => {
            let public: std::net::Ipv4Addr = public
                .parse()
                .with_context(|| format!("`{public}` is not an IPv4 address"))?;
            let port: u16 = port
                .parse()
                .with_context(|| format!("`{port}` is not a port"))?;
            let ip = det.reverse(public, port).ok_or_else(|| {
                anyhow!(
                    "{public} port {port} belongs to no subscriber (not in the pool or the range)"
                )
            })?;
            println!("{public}:{port} <- {ip}");
        }
        _ => bail!("usage: cgnat map -c FILE forward INSIDE_IP | reverse PUBLIC_IP PORT"),
    }
    Ok(())
}

/// `cgnat map` beside `[nat64]` (never deterministic): the blocks and sessions the
/// running appliance holds now, through its control API; what was held before is in
/// the event logs (IPFIX, syslog).
fn map_live(args: &Args, file: &str) -> Result<()> {
    let (api, token, timeout) = api_target(args, SHOW_TIMEOUT_SECS)?;
    let live = |path: &str| {
        http_get(&api, path, token.as_deref(), timeout).with_context(|| {
            format!("{file}: allocation is not deterministic, so `cgnat map` answers from the running appliance's live state (api.listen {api}); earlier mappings are in its event logs")
        })
    };
    let w: Vec<&str> = args.words.iter().map(String::as_str).collect();
    match w.as_slice() {
        ["forward", who] => {
            let v = live(&format!("/subscribers/{who}"))?;
            let name = match v["prefix_len"].as_u64() {
                Some(len) => format!("{}/{len}", v["address"].as_str().unwrap_or("?")),
                None => v["address"].as_str().unwrap_or("?").to_string(),
            };
            let blocks = v["port_blocks"].as_array().cloned().unwrap_or_default();
            for b in &blocks {
                println!(
                    "{name} -> {} ports {}-{}",
                    b[0].as_str().unwrap_or("?"),
                    b[1],
                    b[2]
                );
            }
            if blocks.is_empty() {
                println!(
                    "{name}: no port block now ({} sessions: `cgnat show sessions --subscriber {who}`)",
                    v["sessions"]
                );
            }
        }
        ["reverse", public, port] => {
            let v = live(&format!("/sessions?outside={public}:{port}&limit=100"))?;
            let list = v["sessions"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                bail!("no session uses {public}:{port} now; an earlier one is in the event logs");
            }
            for s in &list {
                println!(
                    "{public}:{port} <- {} ({} to {})",
                    s["inside"].as_str().unwrap_or("?"),
                    s["protocol"].as_str().unwrap_or("?"),
                    s["remote"].as_str().unwrap_or("?")
                );
            }
        }
        _ => {
            bail!("usage: cgnat map -c FILE forward INSIDE_IP|IPV6[/LEN] | reverse PUBLIC_IP PORT")
        }
    }
    Ok(())
}

fn replay_mode(args: &Args) -> Result<()> {
    args.only(&[
        "-c",
        "--config",
        "--inside-host",
        "--out-dir",
        "--server-port",
        "--server-as",
        "--inside-as",
    ])?;
    let cfg = args.config()?;
    let mut host: std::net::Ipv4Addr = args
        .get(&["--inside-host"])
        .ok_or_else(|| anyhow!("--inside-host IP is required"))?
        .parse()
        .context("--inside-host is not an IPv4 address")?;
    let [capture] = args.words.as_slice() else {
        bail!("give one CAPTURE file")
    };
    let out_dir = PathBuf::from(
        args.get(&["--out-dir"])
            .ok_or_else(|| anyhow!("--out-dir DIR is required"))?,
    );
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut frames = cgnat_dataplane::pcap::frames_with_time(Path::new(capture))
        .with_context(|| format!("reading {capture}"))?;
    if let Some(port) = args.get(&["--server-port"]) {
        // Both ends on one host (a loopback capture): the end on the server's port
        // plays the outside peer at `--server-as`, the other the inside host at
        // `--inside-as` (loopback addresses are never translated).
        let port: u16 = port.parse().context("--server-port is not a port")?;
        let addr = |key: &str, default: &str| -> Result<std::net::Ipv4Addr> {
            args.get(&[key])
                .unwrap_or(default)
                .parse()
                .with_context(|| format!("{key} is not an IPv4 address"))
        };
        let (server_as, inside_as) = (
            addr("--server-as", "192.0.2.1")?,
            addr("--inside-as", "10.0.0.1")?,
        );
        cgnat_dataplane::replay::separate_server(&mut frames, host, port, server_as, inside_as);
        host = inside_as;
    }
    if !cfg.nat.inside.iter().any(|n| n.contains(host)) {
        bail!("{}: the inside host {host} is not in nat.inside; add it (the NAT does not care whether inside addresses are private)", cfg.file);
    }
    let report = cgnat_dataplane::replay::replay(&cfg, host, &frames);
    cgnat_dataplane::pcap::write(&out_dir.join("outside.pcap"), &report.outside_view, 0, 1)?;
    cgnat_dataplane::pcap::write(&out_dir.join("inside.pcap"), &report.inside_view, 0, 1)?;
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(out_dir.join("report.json"), &text)?;
    println!("{text}");
    if !report.passed() {
        bail!(
            "replay of {capture} failed: {} mismatches, {} leaks",
            report.mismatches.len(),
            report.leaks.len()
        );
    }
    Ok(())
}

/// How long `cgnat show` waits for the control API, by default (`--timeout`).
const SHOW_TIMEOUT_SECS: u64 = 10;

fn http_get(
    api: &str,
    path: &str,
    token: Option<&str>,
    timeout: std::time::Duration,
) -> Result<serde_json::Value> {
    http_call("GET", api, path, token, timeout)
}

fn http_call(
    method: &str,
    api: &str,
    path: &str,
    token: Option<&str>,
    timeout: std::time::Duration,
) -> Result<serde_json::Value> {
    use std::io::{Read, Write};
    let silent = || {
        anyhow!(
            "the control API at {api} did not answer within {} s (is cgnat stuck or \
             stopping, or is something else listening there?)",
            timeout.as_secs_f64()
        )
    };
    let addr: std::net::SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(api)
        .with_context(|| format!("`{api}` is not an address and port"))?
        .next()
        .ok_or_else(|| anyhow!("`{api}` resolves to no address"))?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).with_context(|| {
        format!("cannot reach the control API at {api}: is cgnat running with api.listen set?")
    })?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw) {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            return Err(silent());
        }
        return Err(e).with_context(|| format!("reading the answer of {api}"));
    }
    if raw.is_empty() {
        return Err(silent());
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("bad answer from {api}"))?;
    let status = head.lines().next().unwrap_or(head);
    if !status.starts_with("HTTP/1.1 200") {
        let why = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{status}: {}", body.trim()));
        if status.starts_with("HTTP/1.1 401") {
            bail!("{why} (the API wants api.token: give -c FILE with it, or --token)");
        }
        bail!("{why}");
    }
    serde_json::from_str(body).with_context(|| format!("bad JSON from {api}"))
}

/// The control API a command talks to: `--api` or the config's `api.listen`, its token
/// (`--token` or the config's `api.token`) and how long to wait for it (`--timeout`,
/// else `default_secs`).
fn api_target(
    args: &Args,
    default_secs: u64,
) -> Result<(String, Option<String>, std::time::Duration)> {
    let timeout = seconds(args, "--timeout", default_secs as f64)?;
    let (api, config_token) = match args.get(&["--api"]) {
        Some(a) => (a.to_string(), None),
        None => {
            let cfg = args
                .config()
                .context("give -c FILE (its api.listen) or --api HOST:PORT")?;
            let listen = cfg
                .api
                .listen
                .ok_or_else(|| anyhow!("{}: api.listen is off", cfg.file))?;
            (listen.to_string(), cfg.api.token)
        }
    };
    let token = args.get(&["--token"]).map(str::to_string).or(config_token);
    Ok((api, token, timeout))
}

/// Seconds given to `flag` (e.g. 10 or 0.5), or `default`.
fn seconds(args: &Args, flag: &str, default: f64) -> Result<std::time::Duration> {
    match args.get(&[flag]) {
        None => Ok(std::time::Duration::from_secs_f64(default)),
        Some(t) => t
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(std::time::Duration::from_secs_f64)
            .ok_or_else(|| anyhow!("{flag} `{t}`: seconds, e.g. 10 or 0.5")),
    }
}

fn top_mode(args: &Args) -> Result<()> {
    args.only(&[
        "-c",
        "--config",
        "--api",
        "--token",
        "--timeout",
        "--interval",
        "--once",
        "--subscribers",
    ])?;
    let (api, token, timeout) = api_target(args, SHOW_TIMEOUT_SECS)?;
    let busiest = match args.get(&["--subscribers"]) {
        None => 10,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=cgnat_dataplane::inspect::BUSIEST_MAX).contains(n))
            .ok_or_else(|| {
                anyhow!(
                    "--subscribers `{n}`: a number from 1 to {}",
                    cgnat_dataplane::inspect::BUSIEST_MAX
                )
            })?,
    };
    let opts = top::Options {
        api,
        token,
        interval: seconds(args, "--interval", 1.0)?,
        timeout,
        busiest,
        once: args.get(&["--once"]).is_some_and(|v| v != "false"),
    };
    top::run(&opts, stop_flag()?)
}

/// How long `cgnat reload` waits for the answer, by default.
const RELOAD_TIMEOUT_SECS: u64 = 30;

fn reload_mode(args: &Args) -> Result<()> {
    args.only(&["-c", "--config", "--api", "--token", "--timeout", "--json"])?;
    let (api, token, timeout) = api_target(args, RELOAD_TIMEOUT_SECS).map_err(|e| {
        anyhow!("{e:#}; nothing was sent to the appliance (--api HOST:PORT asks it anyway)")
    })?;
    let v = http_call("POST", &api, "/reload", token.as_deref(), timeout)?;
    if args.get(&["--json"]).is_some_and(|v| v != "false") {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else if v["applied"] == true {
        let changes = v["changes"].as_array().cloned().unwrap_or_default();
        if changes.is_empty() {
            println!(
                "reloaded {}: nothing changed",
                v["file"].as_str().unwrap_or("")
            );
        }
        for c in &changes {
            println!(
                "changed {}: {} -> {}",
                c["key"].as_str().unwrap_or(""),
                c["from"].as_str().unwrap_or(""),
                c["to"].as_str().unwrap_or("")
            );
        }
        if let Some(w) = v["warning"].as_str() {
            eprintln!("cgnat: {w}");
        }
    }
    if v["applied"] != true {
        let why: Vec<String> = v["refused"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["text"].as_str().unwrap_or("").to_string())
            .collect();
        bail!("reload refused, nothing applied:\n  {}", why.join("\n  "));
    }
    Ok(())
}

fn show_mode(args: &Args) -> Result<()> {
    args.only(&[
        "-c",
        "--config",
        "--api",
        "--subscriber",
        "--outside",
        "--remote",
        "--limit",
        "--cursor",
        "--json",
        "--token",
        "--timeout",
    ])?;
    let (api, token, timeout) = api_target(args, SHOW_TIMEOUT_SECS)?;
    let json = args.get(&["--json"]).is_some_and(|v| v != "false");
    let w: Vec<&str> = args.words.iter().map(String::as_str).collect();
    let (path, kind) = match w.as_slice() {
        ["sessions"] => {
            let mut q = Vec::new();
            for k in ["subscriber", "outside", "remote", "limit", "cursor"] {
                if let Some(v) = args.get(&[&format!("--{k}")]) {
                    q.push(format!("{k}={v}"));
                }
            }
            (format!("/sessions?{}", q.join("&")), "sessions")
        }
        ["subscriber", ip] => (format!("/subscribers/{ip}"), "subscriber"),
        ["pool"] => ("/pool".to_string(), "pool"),
        ["expectations"] => ("/expectations".to_string(), "expectations"),
        ["counters"] => ("/counters".to_string(), "counters"),
        ["config"] => ("/config".to_string(), "config"),
        ["ha"] => ("/ha".to_string(), "ha"),
        _ => bail!("usage: cgnat show sessions|subscriber IP|pool|counters|expectations|config|ha [-c FILE | --api HOST:PORT] [--json]"),
    };
    let v = http_get(&api, &path, token.as_deref(), timeout)?;
    if kind == "config" && !json {
        print!("{}", v["toml"].as_str().unwrap_or(""));
        return Ok(());
    }
    if kind == "ha" && !json {
        print_ha(&v);
        return Ok(());
    }
    if json || kind == "counters" || kind == "subscriber" || kind == "expectations" {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if kind == "pool" {
        println!("block size {}", v["block_size"]);
        println!("{:<18} {:>10}  STATE", "ADDRESS", "PORTS USED");
        for a in v["addresses"].as_array().into_iter().flatten() {
            println!(
                "{:<18} {:>10}  {}",
                a["address"].as_str().unwrap_or(""),
                a["ports_used"],
                a["state"].as_str().unwrap_or("active")
            );
        }
        return Ok(());
    }
    let list = v["sessions"].as_array().cloned().unwrap_or_default();
    // An IPv6 host's endpoint (`[addr]:port`) may be longer than the column.
    let wide = list
        .iter()
        .filter_map(|s| s["inside"].as_str().map(str::len))
        .fold(22, usize::max);
    println!(
        "{:<5} {:<wide$} {:<22} {:<22} {:<12} {:>6} {:>8} {:>6}",
        "PROTO", "INSIDE", "OUTSIDE", "REMOTE", "STATE", "IDLE", "EXPIRES", "WORKER"
    );
    for s in &list {
        let f = |k: &str| s[k].as_str().unwrap_or("").to_string();
        println!(
            "{:<5} {:<wide$} {:<22} {:<22} {:<12} {:>5}s {:>7}s {:>6}",
            f("protocol"),
            f("inside"),
            f("outside"),
            f("remote"),
            f("state"),
            s["idle_secs"],
            s["expires_in_secs"],
            s["worker"]
        );
    }
    println!(
        "{} sessions{}",
        list.len(),
        match v["next"].as_str() {
            Some(next) => format!(" (more: --cursor {next})"),
            None if v["truncated"] == true => " (more left out: raise --limit)".to_string(),
            None => String::new(),
        }
    );
    Ok(())
}

/// `cgnat show ha` and `cgnat ha status` in words.
fn print_ha(v: &serde_json::Value) {
    let secs = |k: &str| match v[k].as_f64() {
        Some(s) => format!("{s:.1} s ago"),
        None => "never".to_string(),
    };
    println!(
        "role {}   peer {}   sync address {}",
        v["role"].as_str().unwrap_or("?"),
        v["peer"].as_str().unwrap_or("?"),
        v["listen"].as_str().unwrap_or("?")
    );
    println!(
        "in sync {}   sync lag {} records   last message from peer {}   last bulk sync {}",
        v["in_sync"],
        v["sync_lag_records"],
        secs("last_message_from_peer_secs_ago"),
        secs("last_bulk_sync_secs_ago")
    );
    let m = &v["messages"];
    println!(
        "messages sent {} received {} lost {}   refused: malformed {} version {} bad MAC {} replay {} other sender {}",
        m["sent"],
        m["received"],
        m["lost"],
        m["refused_malformed"],
        m["refused_version"],
        m["refused_bad_mac"],
        m["refused_replay"],
        m["refused_source"]
    );
    println!(
        "records sent {} received {} not installed {}   resync requests {}   bulk syncs {}",
        m["records_sent"],
        m["records_received"],
        m["install_failed"],
        m["resync_requests"],
        m["bulk_syncs"]
    );
}

fn ha_mode(args: &Args) -> Result<()> {
    args.only(&["-c", "--config", "--api", "--token", "--timeout", "--json"])?;
    let (method, path) = match args.words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["promote"] => ("POST", "/ha/promote"),
        ["demote"] => ("POST", "/ha/demote"),
        ["status"] => ("GET", "/ha"),
        _ => bail!("usage: cgnat ha promote|demote|status [-c FILE | --api HOST:PORT] [--json]"),
    };
    let (api, token, timeout) = api_target(args, SHOW_TIMEOUT_SECS)?;
    let v = if method == "POST" {
        http_call(method, &api, path, token.as_deref(), timeout)?
    } else {
        http_get(&api, path, token.as_deref(), timeout)?
    };
    if args.get(&["--json"]).is_some_and(|v| v != "false") {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_ha(&v);
    }
    Ok(())
}

fn setup_mode(args: &Args) -> Result<()> {
    args.only(&["-c", "--config", "--dry-run", "--bind", "--page-size"])?;
    let cfg = args.config()?;
    setup::setup(
        &cfg,
        &setup::SetupOptions {
            dry_run: args.get(&["--dry-run"]).is_some(),
            bind: args.get(&["--bind"]).is_some(),
            page_size: args.get(&["--page-size"]),
        },
    )
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match argv.first().map(String::as_str) {
        None | Some("-h" | "--help" | "help") => {
            // `cgnat help CMD`: the part about CMD.
            match argv.get(1).and_then(|c| command_help(c)) {
                Some(h) => print!("{h}"),
                None => print!("{USAGE}"),
            }
            return ExitCode::SUCCESS;
        }
        Some("-V" | "--version") => {
            println!("cgnat {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some(cmd) if argv[1..].iter().any(|a| a == "-h" || a == "--help") => {
            return match command_help(cmd) {
                Some(h) => {
                    print!("{h}");
                    ExitCode::SUCCESS
                }
                None => {
                    eprintln!("cgnat: unknown command `{cmd}`\n{USAGE}");
                    ExitCode::from(2)
                }
            };
        }
        _ => {}
    }
    let argv = argv.into_iter();
    let result = Args::parse(argv).inspect(|args| {
        if matches!(
            args.cmd.as_str(),
            "map" | "show" | "check" | "ha" | "reload"
        ) {
            // Commands that print and exit: a reader that went away ends them quietly.
            cgnat_ffi::default_sigpipe();
        }
    });
    let result = result.and_then(|args| match args.cmd.as_str() {
        "run" => run_mode(&args),
        "pcap" => pcap_mode(&args),
        "check" => check_mode(&args),
        "map" => map_mode(&args),
        "show" => show_mode(&args),
        "top" => top_mode(&args),
        "reload" => reload_mode(&args),
        "ha" => ha_mode(&args),
        "replay" => replay_mode(&args),
        "setup" => setup_mode(&args),
        other => Err(anyhow!("unknown command `{other}`\n{USAGE}")),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cgnat: {e:#}");
            ExitCode::from(2)
        }
    }
}
