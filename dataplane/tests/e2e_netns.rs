//! End to end with real hosts: a subscriber and an internet namespace joined to a
//! running `cgnat run` by veth pairs through net_af_packet (scripts/netns-e2e.sh sets
//! the bed up and checks ping, a 1 MB HTTP download by sha256, a UDP round trip, and
//! that only pool addresses reach the internet side).

mod bed;

use std::path::PathBuf;
use std::process::Command;

#[test]
fn subscriber_reaches_internet_host_through_cgnat() {
    if bed::skip_without_root("the end-to-end test") {
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
