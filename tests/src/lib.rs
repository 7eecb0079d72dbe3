//! Test kit of cgnat: capture files ([`pcap`]: classic pcap read and write, pcapng
//! read), Ethernet + IPv4 frames ([`packet`]: builders, a parser and checksum checks),
//! subscriber traffic for the NAT's inside port ([`traffic`], behind the `gen-traffic`
//! binary), and helpers for integration tests that spawn the `cgnat` binary.
#![forbid(unsafe_code)]

pub mod packet;
pub mod pcap;
pub mod traffic;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

/// A configuration of two `net_null` ports (inside 100.64.0.1/10; outside
/// 203.0.113.1/24 with its gateway and the gateway's MAC), one worker on lcore 1, and
/// `nat` as the `[nat]` table: what the pipeline tests and the benches build their
/// appliance from.
pub fn null_ports_config(nat: &str) -> String {
    format!(
        r#"
[dataplane]
control_lcore = 0
worker_lcores = [1]

[[ports]]
name = "inside"
role = "inside"
device = "net_null0"
ipv4 = "100.64.0.1/10"

[[ports]]
name = "outside"
role = "outside"
device = "net_null1"
ipv4 = "203.0.113.1/24"
gateway = "203.0.113.254"
gateway_mac = "02:aa:00:00:00:fe"

[nat]
{nat}
"#
    )
}

/// The workspace root: the parent of this crate's manifest directory.
pub fn workspace() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// The `cgnat` binary to test: `$CGNAT_BIN` if set, else whichever of
/// `<workspace>/target/release/cgnat` and `<workspace>/target/debug/cgnat` exists and
/// was built last (`$CARGO_TARGET_DIR` is honoured in place of `<workspace>/target`).
/// If neither exists, the debug path is returned, so that the error that follows names
/// the file that is missing.
pub fn cgnat_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CGNAT_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|p| !p.is_empty())
        .map(|p| {
            let p = PathBuf::from(p);
            if p.is_absolute() {
                p
            } else {
                workspace().join(p)
            }
        })
        .unwrap_or_else(|| workspace().join("target"));
    let candidates = [
        target.join("release").join("cgnat"),
        target.join("debug").join("cgnat"),
    ];
    let modified = |p: &PathBuf| -> Option<SystemTime> { p.metadata().ok()?.modified().ok() };
    candidates
        .iter()
        .filter_map(|p| Some((modified(p)?, p)))
        .max_by_key(|(t, _)| *t)
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| candidates[1].clone())
}

/// The repository's folder of real captures, `<workspace>/tests/captures` (their origins,
/// licences and inside hosts are in its `SOURCES.md`).
pub fn captures() -> PathBuf {
    workspace().join("tests").join("captures")
}

/// The path of one capture of [`captures()`]; panics naming the file when it is missing,
/// so that no test passes without its input.
pub fn capture(name: &str) -> PathBuf {
    let p = captures().join(name);
    assert!(
        p.is_file(),
        "test input {} is missing (see tests/captures/SOURCES.md)",
        p.display()
    );
    p
}

/// Every capture `tests/captures/SOURCES.md` lists in its file table (the first cell of
/// each row naming a `.pcap` or `.pcapng`), in its order; each is checked to exist.
pub fn listed_captures() -> Vec<PathBuf> {
    let sources = captures().join("SOURCES.md");
    let text = std::fs::read_to_string(&sources)
        .unwrap_or_else(|e| panic!("test input {} is missing: {e}", sources.display()));
    text.lines()
        .filter_map(|l| l.strip_prefix("| ")?.split(" |").next())
        .filter(|name| name.ends_with(".pcap") || name.ends_with(".pcapng"))
        .map(capture)
        .collect()
}

/// A DPDK `--file-prefix` no other process or test uses at the same time:
/// `cgnat-<tag>-<pid>-<n>`, `n` counting the calls in this process.
pub fn unique_prefix(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let tag: String = tag
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("cgnat-{tag}-{}-{n}", std::process::id())
}

/// A fresh, empty temporary directory for one test: `$TMPDIR/<unique_prefix(tag)>`.
pub fn temp_dir(tag: &str) -> std::io::Result<PathBuf> {
    let p = std::env::temp_dir().join(unique_prefix(tag));
    if p.exists() {
        std::fs::remove_dir_all(&p)?;
    }
    std::fs::create_dir_all(&p)?;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_unique_and_plain() {
        let a = unique_prefix("pcap mode/1");
        let b = unique_prefix("pcap mode/1");
        assert_ne!(a, b);
        assert!(a.starts_with("cgnat-pcap-mode-1-"));
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn paths_are_under_the_workspace() {
        assert!(workspace().join("Cargo.toml").exists());
        let bin = cgnat_bin();
        if std::env::var_os("CGNAT_BIN").is_none() {
            assert!(bin.ends_with("release/cgnat") || bin.ends_with("debug/cgnat"));
        }
        assert!(captures().starts_with(workspace()));
        assert_eq!(listed_captures().len(), 17);
        let d = temp_dir("testkit").unwrap();
        assert!(d.is_dir() && std::fs::read_dir(&d).unwrap().next().is_none());
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    #[should_panic(expected = "no-such.pcap is missing")]
    fn a_missing_capture_fails_naming_the_file() {
        capture("no-such.pcap");
    }

    /// Every file in tests/captures is listed in SOURCES.md with the sha256 it has, and
    /// every listed file is there.
    #[test]
    fn captures_are_the_files_their_sources_name() {
        let text = std::fs::read_to_string(captures().join("SOURCES.md")).unwrap();
        let listed: Vec<String> = listed_captures()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let mut present: Vec<String> = std::fs::read_dir(captures())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "SOURCES.md")
            .collect();
        present.sort();
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!(sorted, present, "tests/captures and SOURCES.md disagree");
        let out = std::process::Command::new("sha256sum")
            .args(&listed)
            .current_dir(captures())
            .output()
            .expect("sha256sum (coreutils) runs");
        assert!(out.status.success());
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            assert!(text.contains(line), "SOURCES.md does not record `{line}`");
        }
    }
}
