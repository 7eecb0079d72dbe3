//! A running `cgnat run` on net_pcap ports, for the tests that talk to one (its
//! control API, metrics, signals).
#![allow(dead_code)]

use super::common::*;
use std::path::Path;
use std::process::{Command, Stdio};

/// A UDP datagram from `src` to 192.0.2.10:53, addressed to net_pcap0's MAC
/// (02:70:63:61:70:00): `cgnat run` drops frames for other hosts, as a router must.
pub fn to_pcap0(src: &str) -> Vec<u8> {
    let mut f = udp(src, "192.0.2.10:53", b"m", false);
    f[..6].copy_from_slice(&[0x02, 0x70, 0x63, 0x61, 0x70, 0x00]);
    f
}

/// The config of a `cgnat run` on net_pcap ports reading `dir/in.pcap` (nothing
/// outside), with `extra` tables appended.
pub fn run_config(dir: &Path, prefix: &str, workers: &str, extra: &str) -> String {
    format!(
        r#"[dataplane]
eal_args = ["--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--file-prefix=cgnat-{prefix}-{pid}"]
worker_lcores = {workers}
[[ports]]
name = "inside"
role = "inside"
device = "net_pcap0,rx_pcap={d}/in.pcap,tx_pcap={d}/in-tx.pcap"
ipv4 = "100.64.0.1/10"
[[ports]]
name = "outside"
role = "outside"
device = "net_pcap1,rx_pcap={d}/none.pcap,tx_pcap={d}/out-tx.pcap"
ipv4 = "203.0.113.1/24"
gateway = "203.0.113.254"
gateway_mac = "02:aa:00:00:00:fe"
{extra}
"#,
        pid = std::process::id(),
        d = dir.display()
    )
}

pub fn workdir(name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    write_pcap(&dir.join("none.pcap"), &[]);
    dir
}

/// `cgnat run` on `cfg` (written to `dir/cgnat.toml`), its stderr in `log`.
pub fn spawn_run(dir: &Path, cfg: &str, log: &Path) -> Killed {
    std::fs::write(dir.join("cgnat.toml"), cfg).unwrap();
    Killed(
        Command::new(env!("CARGO_BIN_EXE_cgnat"))
            .args(["run", "-c"])
            .arg(dir.join("cgnat.toml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

/// Waits until `f` holds, at most `secs`; else fails with `what` and cgnat's log.
pub fn until(secs: u64, what: &str, log: &Path, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never happened; cgnat's log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
