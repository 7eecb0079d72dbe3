//! cgnat against the Linux kernel's NAT on the same FTP and TFTP scenarios.
//!
//! scripts/linux-nat-e2e.sh runs them through a router namespace doing nftables snat
//! with the kernel's ftp and tftp conntrack helpers and a strict forward filter;
//! scripts/netns-e2e.sh runs them through `cgnat run`. Both print one line per
//! scenario (`LINUX-RESULT` / `CGNAT-RESULT name=... ok=0|1 detail=...`).
//!
//! Asserted: the ordinary modes (curl EPSV, PASV, EPRT, PORT, uploads, lftp passive
//! and active, TFTP) work under both; a PORT command split across two TCP segments
//! fails or leaks the inside address under Linux, and is translated by cgnat with
//! the transfer intact; the FTP command policy (a SITE command and a bounce PORT)
//! gets 504 from cgnat, while under Linux the server itself answers both. The other
//! cases are printed side by side, not asserted.

mod bed;

use bed::{parse_results, Outcome};
use std::path::{Path, PathBuf};
use std::process::Command;

fn run_bed(script: &Path, args: &[&Path]) -> (bool, String) {
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- {}\n{stdout}", script.display());
    if !stderr.is_empty() {
        eprintln!("--- {} (stderr)\n{stderr}", script.display());
    }
    (out.status.success(), stdout)
}

/// Scenarios that must work under both NATs.
const ORDINARY: &[&str] = &[
    "ftp-epsv",
    "ftp-pasv",
    "ftp-eprt",
    "ftp-port",
    "ftp-upload-pasv",
    "ftp-upload-port",
    "lftp-passive",
    "lftp-active",
    "tftp",
];

#[test]
fn parses_result_lines() {
    let text = "noise\nLINUX-RESULT name=ftp-port ok=1 detail=5 MB sha256 ok, leak=0\n\
                LINUX-RESULT name=x ok=0 detail=reply='a b' leak=1\nCGNAT-RESULT name=y ok=1 detail=\n";
    let r = parse_results(text, "LINUX-RESULT");
    assert_eq!(r.len(), 2);
    assert!(r["ftp-port"].ok);
    assert_eq!(r["ftp-port"].detail, "5 MB sha256 ok, leak=0");
    assert!(!r["x"].ok);
    assert_eq!(r["x"].detail, "reply='a b' leak=1");
    let c = parse_results(text, "CGNAT-RESULT");
    assert!(c["y"].ok && c["y"].detail.is_empty());
}

#[test]
fn linux_nat_helper_against_cgnat() {
    if bed::skip_without_root("the comparison") {
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = root.join("target").join("linux-compare");
    let _ = std::fs::remove_dir_all(&work);
    let (linux_ok, linux_out) = run_bed(
        &root.join("scripts/linux-nat-e2e.sh"),
        &[&work.join("linux")],
    );
    assert!(linux_ok, "the Linux NAT bed itself failed (see its output)");
    let cgnat_bin = PathBuf::from(env!("CARGO_BIN_EXE_cgnat"));
    let (cgnat_ok, cgnat_out) = run_bed(
        &root.join("scripts/netns-e2e.sh"),
        &[&cgnat_bin, &work.join("cgnat")],
    );
    let linux = parse_results(&linux_out, "LINUX-RESULT");
    let cgnat = parse_results(&cgnat_out, "CGNAT-RESULT");

    println!("{:<34} {:>5} {:>5}", "scenario", "linux", "cgnat");
    let names: std::collections::BTreeSet<&String> = linux.keys().chain(cgnat.keys()).collect();
    let mark = |o: Option<&Outcome>| match o {
        Some(o) if o.ok => "ok",
        Some(_) => "FAIL",
        None => "-",
    };
    for n in &names {
        println!(
            "{:<34} {:>5} {:>5}",
            n,
            mark(linux.get(*n)),
            mark(cgnat.get(*n))
        );
    }

    assert!(cgnat_ok, "the cgnat bed (scripts/netns-e2e.sh) failed");
    for name in ORDINARY {
        let l = linux
            .get(*name)
            .unwrap_or_else(|| panic!("Linux bed gave no result for {name}"));
        assert!(l.ok, "{name} under Linux NAT: {}", l.detail);
        let c = cgnat
            .get(*name)
            .unwrap_or_else(|| panic!("cgnat bed gave no result for {name}"));
        assert!(c.ok, "{name} through cgnat: {}", c.detail);
    }

    // The FTP command policy (issue 14): through cgnat the SITE command and the bounce
    // PORT get 504 in the server's name; Linux's helper has no policy, so the server
    // itself answers both (pyftpdlib: 200 to SITE CHMOD, a refusal of its own to the
    // foreign PORT).
    for name in ["ftp-policy-site", "ftp-policy-bounce"] {
        let c = &cgnat[name];
        assert!(
            c.ok && c.detail.contains("'504 "),
            "{name} through cgnat: {}",
            c.detail
        );
        let l = &linux[name];
        assert!(
            !l.ok && l.detail.contains("_reply='") && !l.detail.contains("'504 "),
            "{name} under Linux NAT: {}",
            l.detail
        );
    }

    // The split PORT: Linux's helper drops the first part (and every retransmission of
    // it) or, were it to pass, the inside address would reach the server; cgnat holds
    // the first part, joins, rewrites, and the 5 MB transfer matches by sha256.
    let split = "ftp-tricky-split-port";
    let l = &linux[split];
    assert!(
        !l.ok && (l.detail.contains("leak=1") || l.detail.contains("transfer=failed")),
        "expected Linux to leak or fail on {split}: {}",
        l.detail
    );
    let c = &cgnat[split];
    assert!(
        c.ok && c.detail.contains("leak=0") && c.detail.contains("transfer=sha256 ok"),
        "expected cgnat to translate {split}: {}",
        c.detail
    );
    assert!(
        c.detail.contains("server-received=[") && !c.detail.contains("100,64,"),
        "the server got an inside address through cgnat: {}",
        c.detail
    );
}
