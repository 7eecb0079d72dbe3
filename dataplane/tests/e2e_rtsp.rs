//! End to end for the RTSP ALG with real software: scripts/rtsp-e2e.sh starts
//! `cgnat run` between a subscriber and an internet namespace (veth pairs through
//! net_af_packet, address-and-port-dependent filtering, alg.rtsp on 554 and 8554),
//! serves a generated clip with VLC and plays it with ffmpeg over RTP/UDP (with and
//! without ffmpeg's punch packets, so that only the ALG's pinholes can let the media
//! in), pushes with ffmpeg RECORD over TCP interleaved and over UDP, and checks that
//! no 100.64/10 address reaches the internet side and that no pinhole is left after
//! TEARDOWN.

mod bed;

use std::path::PathBuf;
use std::process::Command;

#[test]
fn rtsp_through_cgnat_with_vlc_and_ffmpeg() {
    if bed::skip_without_root("the RTSP end-to-end test") {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = root.join("target").join("e2e-rtsp");
    let out = Command::new("bash")
        .arg(root.join("scripts/rtsp-e2e.sh"))
        .arg("cgnat")
        .arg(env!("CARGO_BIN_EXE_cgnat"))
        .arg(&work)
        .output()
        .expect("running scripts/rtsp-e2e.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    let failed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("RTSP-RESULT") && l.contains(" ok=0 required=1 "))
        .collect();
    assert!(
        out.status.success() && failed.is_empty(),
        "RTSP end-to-end test failed (evidence in {}):\n{}\n{stdout}\n{stderr}",
        work.display(),
        failed.join("\n")
    );
    assert!(stdout.contains("RTSP-E2E PASS"));
}
