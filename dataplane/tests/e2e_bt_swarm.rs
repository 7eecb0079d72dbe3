//! A real BitTorrent swarm across a running `cgnat run` (scripts/bt-swarm-e2e.sh):
//! transmission-daemon seeds from the subscriber namespace with port forwarding on
//! (NAT-PMP to its gateway, cgnat); opentracker and aria2c are on the internet side,
//! the leecher unreachable from outside, so it can only connect to the seeder's
//! mapping. With `[pcp]` the whole file arrives (sha256 checked) and the tracker
//! lists the seeder at a pool address; without it the leecher gets nothing.

mod bed;

use std::path::PathBuf;
use std::process::Command;

/// The two swarms run one after the other: each runs cgnat on net_af_packet over veth
/// ends in the root namespace, and DPDK's af_packet names its PACKET_FANOUT group by
/// the process id XOR the interface index, so two beds at once can pick the same group
/// (seen: "could not set PACKET_FANOUT ... Invalid argument", the second cgnat never up).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn swarm(mode: &str) -> String {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = root.join("target").join(format!("e2e-swarm-{mode}"));
    let out = Command::new("bash")
        .arg(root.join("scripts/bt-swarm-e2e.sh"))
        .arg(mode)
        .arg(env!("CARGO_BIN_EXE_cgnat"))
        .arg(&work)
        .output()
        .expect("running scripts/bt-swarm-e2e.sh");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "swarm ({mode}) failed:\n{stdout}\n{stderr}"
    );
    stdout
}

#[test]
fn bittorrent_seeder_behind_cgnat_is_reached_through_its_nat_pmp_mapping() {
    if bed::skip_without_root("the BitTorrent swarm test") {
        return;
    }
    let out = swarm("pcp");
    assert!(out.contains("SWARM E2E PASS (pcp)"));
    assert!(out.contains("the tracker lists the seeder at 198.51.100."));
}

#[test]
fn without_pcp_the_same_swarm_gets_nothing() {
    if bed::skip_without_root("the BitTorrent swarm test") {
        return;
    }
    let out = swarm("nopcp");
    assert!(out.contains("SWARM E2E PASS (nopcp)"));
}
