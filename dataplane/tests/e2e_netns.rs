//! End to end with real hosts: a subscriber and an internet namespace joined to a
//! running `cgnat run` by veth pairs through net_af_packet (scripts/netns-e2e.sh sets
//! the bed up and checks ping, a 1 MB HTTP download by sha256, a UDP round trip, and
//! that only pool addresses reach the internet side).

use std::path::PathBuf;
use std::process::Command;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

#[test]
fn subscriber_reaches_internet_host_through_cgnat() {
    if !is_root() {
        assert!(
            std::env::var_os("CGNAT_SKIP_NETNS").is_some(),
            "the end-to-end test needs root (network namespaces); set CGNAT_SKIP_NETNS=1 to skip it"
        );
        eprintln!("skipped: not root and CGNAT_SKIP_NETNS is set");
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = root.join("target").join("e2e-netns");
    let _ = std::fs::remove_dir_all(&work);
    let out = Command::new("bash")
        .arg(root.join("scripts/netns-e2e.sh"))
        .arg(env!("CARGO_BIN_EXE_cgnat"))
        .arg(&work)
        .output()
        .expect("running scripts/netns-e2e.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "end-to-end test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("E2E PASS"));
}
