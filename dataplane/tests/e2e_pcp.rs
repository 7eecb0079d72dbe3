//! End to end with real clients: the PCP and NAT-PMP server of a running `cgnat run`
//! between a subscriber and an internet namespace (scripts/pcp-e2e.sh: natpmpc and a
//! PCP client map ports; outside hosts reach servers behind them; tshark's PCP
//! dissector reads the messages).

mod bed;

use std::path::PathBuf;
use std::process::Command;

#[test]
fn natpmpc_and_pcp_clients_open_ports_outside_hosts_reach() {
    if bed::skip_without_root("the PCP end-to-end test") {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = root.join("target").join("e2e-pcp");
    let _ = std::fs::remove_dir_all(&work);
    let out = Command::new("bash")
        .arg(root.join("scripts/pcp-e2e.sh"))
        .arg(env!("CARGO_BIN_EXE_cgnat"))
        .arg(&work)
        .output()
        .expect("running scripts/pcp-e2e.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "PCP end-to-end test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("PCP E2E PASS"));
}
