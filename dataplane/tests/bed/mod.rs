//! What the end-to-end tests share: they need root for network namespaces.
#![allow(dead_code)]

use std::process::Command;

/// True when the test must be skipped: not root, and CGNAT_SKIP_NETNS says so. Not
/// root without it fails the test with a clear message (CI runs as root).
pub fn skip_without_root(what: &str) -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    if root {
        return false;
    }
    assert!(
        std::env::var_os("CGNAT_SKIP_NETNS").is_some(),
        "{what} needs root (network namespaces); set CGNAT_SKIP_NETNS=1 to skip it"
    );
    eprintln!("skipped: not root and CGNAT_SKIP_NETNS is set");
    true
}
