//! `cgnat top`: a live view of a running appliance, from its control API. Every
//! interval it reads `/counters`, `/workers`, `/pool` and `/subscribers?top=N`, and
//! draws the differences with the previous reading as rates: per worker packets and
//! busy share, drops by reason, sessions and subscribers, pool use per address as
//! bars, ALG events, the busiest subscribers.
//!
//! The screen is drawn with plain ANSI sequences (alternate screen, cursor home, erase
//! to end of line); keys are read with the terminal out of canonical mode (`stty`),
//! which is restored on `q`, Ctrl-C, SIGTERM or an error. The width and height come
//! from `stty size` (each frame, so a resized terminal is followed), else `COLUMNS` and
//! `LINES`; without either (a pipe), lines are not cut.

use anyhow::{anyhow, Result};
use serde_json::Value;
use std::io::{IsTerminal, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// How `cgnat top` runs.
pub struct Options {
    /// The control API, HOST:PORT.
    pub api: String,
    /// Its bearer token, if it needs one.
    pub token: Option<String>,
    /// Time between frames.
    pub interval: Duration,
    /// Wait for each answer of the API at most this long.
    pub timeout: Duration,
    /// Busiest subscribers shown.
    pub busiest: usize,
    /// One frame after one interval of sampling, to stdout, then exit.
    pub once: bool,
}

/// One reading of the API.
pub struct Sample {
    at: Instant,
    wall: SystemTime,
    counters: Value,
    workers: Value,
    pool: Value,
    busiest: Value,
}

impl Sample {
    /// Reads every endpoint the view needs.
    pub fn fetch(o: &Options) -> Result<Sample> {
        let get = |path: &str| super::http_get(&o.api, path, o.token.as_deref(), o.timeout);
        let at = Instant::now();
        let wall = SystemTime::now();
        let counters = get("/counters")?;
        let workers = get("/workers")?;
        let pool = get("/pool")?;
        let busiest = get(&format!("/subscribers?top={}", o.busiest))?;
        Ok(Sample {
            at,
            wall,
            counters,
            workers,
            pool,
            busiest,
        })
    }
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// A rate as an operator reads it: whole numbers, millions with a suffix.
fn rate(per_sec: f64) -> String {
    if per_sec >= 10_000_000.0 {
        format!("{:.1}M", per_sec / 1e6)
    } else {
        format!("{per_sec:.0}")
    }
}

/// `line` ended with a bar of `share` (0 to 1) over what is left of `width` (at most 40
/// cells, 30 when the width is unknown; none when under 10 cells are left).
fn with_bar(mut line: String, share: f64, width: Option<usize>) -> String {
    let cells = width.map_or(30, |w| w.saturating_sub(line.chars().count() + 2).min(40));
    if cells >= 10 {
        line.push_str(&bar(share, cells));
    }
    line
}

/// A bar of `width` cells, `share` (0 to 1) of them filled.
fn bar(share: f64, width: usize) -> String {
    let filled = ((share.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    // Anything above zero shows at least one cell.
    let filled = if share > 0.0 { filled.max(1) } else { filled };
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

/// Hours, minutes and seconds of `t`, UTC.
fn clock(t: SystemTime) -> String {
    let s = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        % 86_400;
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
}

/// Every counter of an object (nested objects as `outer.inner`), in key order.
fn leaves(prefix: &str, v: &Value, out: &mut Vec<(String, u64)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&name, x, out);
            }
        }
        x => {
            if let Some(n) = x.as_u64() {
                out.push((prefix.to_string(), n));
            }
        }
    }
}

/// A frame: its lines, and the ranges of them that are lists (rows of a table), which
/// [`fit`] may shorten to fit a terminal's height.
pub struct Frame {
    /// The lines.
    pub lines: Vec<String>,
    lists: Vec<std::ops::Range<usize>>,
}

/// The frame for the change from `prev` to `cur` (not yet cut to a width; the bars, at
/// the ends of their lines, fill what `width` leaves).
pub fn render(prev: &Sample, cur: &Sample, o: &Options, width: Option<usize>) -> Frame {
    let secs = cur
        .at
        .saturating_duration_since(prev.at)
        .as_secs_f64()
        .max(1e-3);
    let per_sec = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
    let (c0, c1) = (&prev.counters, &cur.counters);
    let delta = |path: &[&str]| {
        let pick = |mut v: &Value| {
            for p in path {
                v = &v[*p];
            }
            num(v)
        };
        per_sec(pick(c0), pick(c1))
    };
    let mut l = Vec::new();
    let mut lists = Vec::new();
    l.push(format!(
        "cgnat top - {}  {}  every {:.1} s  (q quits)",
        o.api,
        clock(cur.wall),
        o.interval.as_secs_f64()
    ));
    l.push(format!(
        "packets/s  in: inside {} outside {}   out: inside {} outside {}",
        rate(delta(&["packets_in", "inside"])),
        rate(delta(&["packets_in", "outside"])),
        rate(delta(&["packets_out", "inside"])),
        rate(delta(&["packets_out", "outside"])),
    ));
    l.push(format!(
        "translated/s  in2out {} out2in {}   dropped/s {}",
        rate(delta(&["translated", "in2out"])),
        rate(delta(&["translated", "out2in"])),
        rate(
            c1["dropped"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| per_sec(num(&c0["dropped"][k]), num(v)))
                .sum()
        ),
    ));

    // Workers.
    l.push(String::new());
    l.push(format!(
        "{:<6}{:>10}{:>10}{:>11}{:>9}{:>10}{:>12}{:>9}",
        "WORKER", "RX/s", "TX/s", "HANDOFF/s", "DROP/s", "SESSIONS", "SUBSCRIBERS", "BUSY"
    ));
    let start = l.len();
    let tsc = num(&cur.workers["tsc"]).saturating_sub(num(&prev.workers["tsc"])) as f64;
    let empty = Vec::new();
    let before = prev.workers["workers"].as_array().unwrap_or(&empty);
    for (i, w) in cur.workers["workers"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .enumerate()
    {
        let p = before.get(i).unwrap_or(&Value::Null);
        let both = |v: &Value, k: &str| num(&v[k]["inside"]) + num(&v[k]["outside"]);
        let busy = if tsc > 0.0 {
            num(&w["busy_cycles"]).saturating_sub(num(&p["busy_cycles"])) as f64 / tsc
        } else {
            0.0
        }
        .min(1.0);
        let line = format!(
            "{:<6}{:>10}{:>10}{:>11}{:>9}{:>10}{:>12}{:>7.1} %  ",
            num(&w["worker"]),
            rate(per_sec(both(p, "rx"), both(w, "rx"))),
            rate(per_sec(both(p, "tx"), both(w, "tx"))),
            rate(per_sec(
                num(&p["handoff"]["received"]),
                num(&w["handoff"]["received"])
            )),
            rate(per_sec(num(&p["dropped"]), num(&w["dropped"]))),
            num(&w["sessions_active"]),
            num(&w["subscribers_active"]),
            busy * 100.0,
        );
        l.push(with_bar(line, busy, width));
    }
    lists.push(start..l.len());

    // Sessions and subscribers.
    let active: Vec<(&str, u64)> = cgnat_dataplane::counters::PROTO_NAMES
        .iter()
        .map(|&k| (k, num(&c1["sessions_active"][k])))
        .collect();
    let sum = |key: &str, c: &Value| -> u64 {
        c[key]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, v)| num(v))
            .sum()
    };
    l.push(String::new());
    l.push(format!(
        "sessions {} ({})   subscribers {}",
        active.iter().map(|(_, n)| n).sum::<u64>(),
        active
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        num(&c1["subscribers_active"]),
    ));
    l.push(format!(
        "sessions created/s {}   expired/s {}",
        rate(per_sec(
            sum("sessions_created", c0),
            sum("sessions_created", c1)
        )),
        rate(per_sec(
            sum("sessions_expired", c0),
            sum("sessions_expired", c1)
        )),
    ));

    // Drops by reason: the fastest first, then the largest totals.
    let mut drops: Vec<(String, f64, u64)> = c1["dropped"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), per_sec(num(&c0["dropped"][k]), num(v)), num(v)))
        .collect();
    drops.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.2.cmp(&a.2)));
    l.push(String::new());
    l.push(format!("{:<34}{:>12}{:>16}", "DROPS", "/s", "TOTAL"));
    let start = l.len();
    if drops.is_empty() {
        l.push("  none".into());
    }
    for (k, r, t) in &drops {
        l.push(format!("  {k:<32}{:>12}{t:>16}", rate(*r)));
    }
    lists.push(start..l.len());

    // Pool use per address, the fullest first.
    let total = num(&cur.pool["addresses"][0]["ports_total"]).max(1);
    let mut addrs: Vec<(String, u64, bool)> = cur.pool["addresses"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|a| {
            (
                a["address"].as_str().unwrap_or("?").to_string(),
                num(&a["ports_used"]),
                a["draining"] == true,
            )
        })
        .collect();
    addrs.sort_by_key(|a| std::cmp::Reverse(a.1));
    l.push(String::new());
    l.push(format!(
        "POOL  {} addresses, {} ports each (tcp, udp, icmp), block size {}",
        addrs.len(),
        total,
        num(&cur.pool["block_size"])
    ));
    const POOL_LINES: usize = 16;
    let start = l.len();
    for (a, used, draining) in addrs.iter().take(POOL_LINES) {
        let share = *used as f64 / total as f64;
        // An address a reload removed: its ports drain.
        let what = if *draining { "drain" } else { "used " };
        let line = format!("  {a:<16}{:>7.2} %{used:>12} {what} ", share * 100.0);
        l.push(with_bar(line, share, width));
    }
    if addrs.len() > POOL_LINES {
        let idle = addrs.iter().filter(|(_, u, _)| *u == 0).count();
        l.push(format!(
            "  ... {} more addresses ({idle} unused)",
            addrs.len() - POOL_LINES
        ));
    }
    lists.push(start..l.len());

    // ALG events: every counter that ever counted, with its rate.
    let (mut a0, mut a1) = (Vec::new(), Vec::new());
    leaves("", &c0["alg"], &mut a0);
    leaves("", &c1["alg"], &mut a1);
    let cells: Vec<String> = a1
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| {
            let was = a0.iter().find(|(k0, _)| k0 == k).map_or(0, |(_, n)| *n);
            format!("{k} {}/s ({n})", rate(per_sec(was, *n)))
        })
        .collect();
    l.push(String::new());
    l.push("ALG EVENTS".into());
    let start = l.len();
    if cells.is_empty() {
        l.push("  none".into());
    }
    // As many columns of cells as the width holds (3 when it is unknown).
    const CELL: usize = 46;
    for row in cells.chunks(width.map_or(3, |w| (w / CELL).max(1))) {
        l.push(
            row.iter()
                .map(|c| format!("  {c:<w$}", w = CELL - 2))
                .collect::<String>()
                .trim_end()
                .to_string(),
        );
    }
    lists.push(start..l.len());

    // The busiest subscribers.
    l.push(String::new());
    l.push("BUSIEST SUBSCRIBERS (by sessions)".into());
    l.push(format!(
        "  {:<16}{:>10}{:>10}{:>10}{:>8}  {:<16}{:>7}",
        "ADDRESS", "SESSIONS", "INBOUND", "MAPPINGS", "BLOCKS", "POOL ADDRESS", "WORKER"
    ));
    let start = l.len();
    let busiest = cur.busiest["busiest"].as_array().unwrap_or(&empty);
    if busiest.is_empty() {
        l.push("  none".into());
    }
    for s in busiest {
        l.push(format!(
            "  {:<16}{:>10}{:>10}{:>10}{:>8}  {:<16}{:>7}",
            s["address"].as_str().unwrap_or("?"),
            num(&s["sessions"]),
            num(&s["inbound_sessions"]),
            num(&s["mappings"]),
            num(&s["port_blocks"]),
            s["pool_address"].as_str().unwrap_or("-"),
            num(&s["worker"]),
        ));
    }
    lists.push(start..l.len());
    Frame { lines: l, lists }
}

/// The lines of `frame` cut to `width` characters and `height` lines, where known: when
/// the frame is taller, its lists are shortened (each keeps at least one line, the rest
/// of the room shared out in turn; a shortened list ends with `... N more`), and what
/// still does not fit is cut.
pub fn fit(frame: Frame, width: Option<usize>, height: Option<usize>) -> Vec<String> {
    let mut lines = match height {
        Some(h) if frame.lines.len() > h => shorten(frame, h),
        _ => frame.lines,
    };
    if let Some(h) = height {
        if lines.len() > h {
            lines.truncate(h.saturating_sub(1));
            lines.push("...".into());
        }
    }
    if let Some(w) = width {
        for line in &mut lines {
            if let Some((i, _)) = line.char_indices().nth(w) {
                line.truncate(i);
            }
        }
    }
    lines
}

/// A frame of plain lines (no lists).
fn text(lines: Vec<String>) -> Frame {
    Frame {
        lines,
        lists: Vec::new(),
    }
}

/// `frame` with its lists shortened toward `height` lines.
fn shorten(frame: Frame, height: usize) -> Vec<String> {
    let Frame { lines, lists } = frame;
    let listed: usize = lists.iter().map(ExactSizeIterator::len).sum();
    let mut room = height.saturating_sub(lines.len() - listed);
    let mut give = vec![0usize; lists.len()];
    loop {
        let mut gave = false;
        for (g, r) in give.iter_mut().zip(&lists) {
            if room > 0 && *g < r.len() {
                *g += 1;
                room -= 1;
                gave = true;
            }
        }
        if !gave {
            break;
        }
    }
    // Each list shows at least one line, even over the height (cut after).
    let mut out = Vec::with_capacity(height + lists.len());
    let mut at = 0;
    for (r, &g) in lists.iter().zip(&give) {
        out.extend_from_slice(&lines[at..r.start]);
        let g = g.max(r.len().min(1));
        if g >= r.len() {
            out.extend_from_slice(&lines[r.clone()]);
        } else {
            out.extend_from_slice(&lines[r.start..r.start + g - 1]);
            out.push(format!("  ... {} more", r.len() - (g - 1)));
        }
        at = r.end;
    }
    out.extend_from_slice(&lines[at..]);
    out
}

/// The terminal's (columns, rows): `stty size` on a terminal, else `COLUMNS` and
/// `LINES`, else unknown.
fn size() -> (Option<usize>, Option<usize>) {
    if std::io::stdin().is_terminal() {
        if let Ok(o) = Command::new("stty")
            .arg("size")
            .stdin(Stdio::inherit())
            .stderr(Stdio::null())
            .output()
        {
            let text = String::from_utf8_lossy(&o.stdout);
            let mut it = text.split_whitespace().map(|n| n.parse::<usize>().ok());
            if let (Some(Some(rows)), Some(Some(cols))) = (it.next(), it.next()) {
                if rows > 0 && cols > 0 {
                    return (Some(cols), Some(rows));
                }
            }
        }
    }
    let env = |k: &str| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
    };
    (env("COLUMNS"), env("LINES"))
}

/// The terminal in the state the view needs (keys one at a time, not echoed, the
/// alternate screen, no cursor), restored when dropped.
struct Screen {
    saved: Option<String>,
}

impl Screen {
    fn enter() -> Screen {
        let saved = std::io::stdin()
            .is_terminal()
            .then(|| {
                Command::new("stty")
                    .arg("-g")
                    .stdin(Stdio::inherit())
                    .stderr(Stdio::null())
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            })
            .flatten();
        if saved.is_some() {
            stty(&["-icanon", "-echo", "min", "1", "time", "0"]);
        }
        let mut out = std::io::stdout();
        let _ = write!(out, "\x1b[?1049h\x1b[?25l\x1b[2J\x1b[H");
        let _ = out.flush();
        Screen { saved }
    }

    fn draw(&self, lines: &[String]) {
        // No line break after the last line: on the terminal's last row it would
        // scroll the first line away.
        let mut frame = String::from("\x1b[H");
        frame.push_str(&lines.join("\x1b[K\r\n"));
        frame.push_str("\x1b[K\x1b[J");
        let mut out = std::io::stdout();
        let _ = out.write_all(frame.as_bytes());
        let _ = out.flush();
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let mut out = std::io::stdout();
        let _ = write!(out, "\x1b[?25h\x1b[?1049l");
        let _ = out.flush();
        if let Some(s) = &self.saved {
            stty(&[s.as_str()]);
        }
    }
}

fn stty(args: &[&str]) {
    let _ = Command::new("stty")
        .args(args)
        .stdin(Stdio::inherit())
        .stderr(Stdio::null())
        .status();
}

/// Sets `quit` on `q`, `Q` or Ctrl-C typed on stdin (a thread left blocked in its
/// read at exit).
fn watch_keys(quit: Arc<AtomicBool>) {
    let _ = std::thread::Builder::new()
        .name("top-keys".into())
        .spawn(move || {
            let mut b = [0u8; 1];
            while let Ok(1) = std::io::stdin().read(&mut b) {
                if matches!(b[0], b'q' | b'Q' | 0x03) {
                    quit.store(true, Ordering::Relaxed);
                    return;
                }
            }
        });
}

/// Waits `d`, or less if `quit` is set.
fn pause(d: Duration, quit: &AtomicBool) {
    let until = Instant::now() + d;
    while !quit.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Runs the view until `q`, Ctrl-C or `stop` (SIGINT, SIGTERM); with `once`, prints
/// one frame and returns.
pub fn run(o: &Options, stop: Arc<AtomicBool>) -> Result<()> {
    if o.once {
        let first = Sample::fetch(o)?;
        pause(o.interval, &stop);
        let second = Sample::fetch(o)?;
        let (w, h) = size();
        for line in fit(render(&first, &second, o, w), w, h) {
            println!("{line}");
        }
        return Ok(());
    }
    if !std::io::stdout().is_terminal() {
        return Err(anyhow!(
            "cgnat top draws on a terminal; give --once to print one frame"
        ));
    }
    let screen = Screen::enter();
    watch_keys(stop.clone());
    let (w, h) = size();
    screen.draw(&fit(
        text(vec![format!("cgnat top - {}: sampling...", o.api)]),
        w,
        h,
    ));
    let mut prev = Sample::fetch(o)?;
    while !stop.load(Ordering::Relaxed) {
        pause(o.interval, &stop);
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let (w, h) = size();
        match Sample::fetch(o) {
            Ok(cur) => {
                screen.draw(&fit(render(&prev, &cur, o, w), w, h));
                prev = cur;
            }
            // The appliance may be restarting: say so, and keep asking.
            Err(e) => screen.draw(&fit(
                text(vec![
                    format!("cgnat top - {}  {}", o.api, clock(SystemTime::now())),
                    format!("{e:#}"),
                ]),
                w,
                h,
            )),
        }
    }
    drop(screen);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(at: Instant, rx: u64, busy: u64, tsc: u64, drops: u64) -> Sample {
        Sample {
            at,
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(3600 * 7 + 62),
            counters: json!({
                "packets_in": { "inside": rx, "outside": 0 },
                "dropped": { "source_not_inside": drops },
                "sessions_active": { "tcp": 1, "udp": 2, "icmp": 0 },
                "subscribers_active": 2,
                "alg": { "ftp_messages": 0, "sip": { "messages": drops } },
            }),
            workers: json!({ "tsc": tsc, "workers": [
                { "worker": 0, "rx": { "inside": rx, "outside": 0 }, "busy_cycles": busy,
                  "sessions_active": 3, "subscribers_active": 2, "dropped": drops }
            ]}),
            pool: json!({ "block_size": 512, "addresses": [
                { "address": "198.51.100.1", "ports_used": 3, "ports_total": 12,
                  "draining": true },
                { "address": "198.51.100.2", "ports_used": 6, "ports_total": 12 },
            ]}),
            busiest: json!({ "busiest": [
                { "address": "100.64.1.2", "sessions": 2, "inbound_sessions": 0, "mappings": 2,
                  "port_blocks": 0, "pool_address": "198.51.100.2", "worker": 0 }
            ]}),
        }
    }

    fn options() -> Options {
        Options {
            api: "127.0.0.1:9470".into(),
            token: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            busiest: 10,
            once: true,
        }
    }

    #[test]
    fn a_frame_shows_rates_busy_share_bars_drops_alg_and_subscribers() {
        let t = Instant::now();
        let a = sample(t, 1000, 0, 1_000_000, 10);
        let b = sample(t + Duration::from_secs(2), 5000, 250_000, 2_000_000, 30);
        let text = render(&a, &b, &options(), Some(100)).lines.join("\n");
        assert!(text.contains("07:01:02 UTC"), "{text}");
        assert!(
            text.contains("packets/s  in: inside 2000 outside 0"),
            "{text}"
        );
        // A quarter of the cycles busy; 2000 packets/s; 10 drops/s.
        let worker = text.lines().find(|l| l.starts_with("0 ")).unwrap();
        assert!(worker.contains("2000"), "{worker}");
        assert!(
            worker.ends_with("   25.0 %  [#####--------------]"),
            "{worker}"
        );
        assert_eq!(worker.len(), 100, "the bar fills the width: {worker}");
        // In 80 columns the numbers stay whole and the bar makes way.
        let narrow = render(&a, &b, &options(), Some(80)).lines.join("\n");
        let worker = narrow.lines().find(|l| l.starts_with("0 ")).unwrap();
        assert!(
            worker.ends_with("25.0 %  ") && worker.len() <= 80,
            "{worker}"
        );
        assert!(
            text.contains("sessions 3 (tcp 1, udp 2, icmp 0, other 0)"),
            "{text}"
        );
        let drop = text
            .lines()
            .find(|l| l.contains("source_not_inside"))
            .unwrap();
        assert_eq!(
            drop.split_whitespace().collect::<Vec<_>>(),
            ["source_not_inside", "10", "30"]
        );
        // The fuller address first, half of its ports as half a bar; the one a reload
        // removed says it drains.
        let pool: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  198.51.100."))
            .collect();
        let (half, quarter) = (
            format!("[{}{}]", "#".repeat(20), "-".repeat(20)),
            format!("[{}{}]", "#".repeat(10), "-".repeat(30)),
        );
        assert_eq!(
            pool,
            [
                format!("  198.51.100.2      50.00 %           6 used  {half}"),
                format!("  198.51.100.1      25.00 %           3 drain {quarter}"),
            ],
            "{text}"
        );
        assert!(text.contains("sip.messages 10/s (30)"), "{text}");
        assert!(
            !text.contains("ftp_messages"),
            "an ALG counter that never counted: {text}"
        );
        assert!(text.contains("100.64.1.2"), "{text}");
    }

    #[test]
    fn lines_are_cut_to_the_terminal() {
        let lines = vec!["abcdef".to_string(), "gh".into(), "ij".into(), "kl".into()];
        assert_eq!(
            fit(text(lines.clone()), Some(3), None),
            ["abc", "gh", "ij", "kl"]
        );
        assert_eq!(
            fit(text(lines.clone()), None, Some(3)),
            ["abcdef", "gh", "..."]
        );
        assert_eq!(fit(text(lines), None, None).len(), 4);
    }

    #[test]
    fn a_short_terminal_shortens_every_list_and_keeps_every_heading() {
        // Two tables: a heading and 6 rows, a heading and 2 rows, then a last line.
        let mut lines = vec!["A".to_string()];
        lines.extend((1..=6).map(|i| format!("a{i}")));
        lines.push("B".into());
        lines.extend((1..=2).map(|i| format!("b{i}")));
        lines.push("end".into());
        let frame = || Frame {
            lines: lines.clone(),
            lists: vec![1..7, 8..10],
        };
        assert_eq!(fit(frame(), None, Some(11)), lines, "room for all");
        // 7 lines: 3 fixed, 4 for the lists, given in turn: 2 and 2.
        assert_eq!(
            fit(frame(), None, Some(7)),
            ["A", "a1", "  ... 5 more", "B", "b1", "b2", "end"]
        );
        // 8 lines: the longer list takes what the shorter one leaves.
        assert_eq!(
            fit(frame(), None, Some(8)),
            ["A", "a1", "a2", "  ... 4 more", "B", "b1", "b2", "end"]
        );
        // Under a line per list: each keeps one, and the rest is cut.
        assert_eq!(
            fit(frame(), None, Some(4)),
            ["A", "  ... 6 more", "B", "..."]
        );
    }
}
