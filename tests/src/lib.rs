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

/// The shared folder of real captures, `<workspace>/../shared/captures`, if it exists.
/// Tests that need it skip, with a printed note, when it does not.
pub fn shared_captures() -> Option<PathBuf> {
    let p = workspace().join("..").join("shared").join("captures");
    p.is_dir().then_some(p)
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
        match shared_captures() {
            Some(p) => assert!(p.ends_with("shared/captures")),
            None => println!("note: ../shared/captures is absent"),
        }
        let d = temp_dir("testkit").unwrap();
        assert!(d.is_dir() && std::fs::read_dir(&d).unwrap().next().is_none());
        std::fs::remove_dir_all(d).unwrap();
    }
}
