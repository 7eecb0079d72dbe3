//! PPTP end to end, through cgnat and through the Linux kernel's NAT side by side
//! (scripts/pptp-e2e.sh): clients in a subscriber namespace, each on its own
//! 100.64.1.x address with a real TCP control connection to a PPTP server
//! (scripts/pptp-peer.py) and enhanced GRE sent with scapy, all with Call ID 1; the
//! server echoes each GRE packet to its call's peer Call ID. No pptpd or pptp-linux:
//! the kernel has no PPP.
//!
//! Asserted for cgnat (`[alg.pptp]` on 1723, one pool address, strict filtering):
//! two and then 100 clients each get their own GRE echoes back, none crossed, and the
//! server saw every call from the one pool address with a Call ID of its own; after
//! Call-Clear-Request the GRE of that call is dropped and counted (`gre_no_call`)
//! while the other 99 flow; `cgnat show expectations` lists the live calls; two calls
//! on one control connection each work; the server's Call-Disconnect-Notify (naming
//! the call as the server knows it, the translated ID) reaches the client naming its
//! own Call ID; the clear sent again after the notify (a client whose notify was lost)
//! reaches the server with the call's outside Call ID and the notify sent again for it
//! the client with its own, counted `ends_resent`; the GRE of a call whose control
//! connection closed without clearing it is dropped once the linger (10 s) is past,
//! and no call is listed then; no 100.64/10 address reaches the internet side; cgnat
//! exits cleanly.
//!
//! Asserted for Linux (`ct helper "pptp"`, snat to one address): the two and the 100
//! clients each get their own echoes and the server sees distinct Call IDs from the
//! one address (nf_nat_pptp gives each call the control connection's translated TCP
//! port as its Call ID), and the clear and notify sent again are translated as the
//! first ones were; and what docs/alg.md's PPTP table records of it: the GRE
//! of a cleared call still reaches the server, and two calls on one control
//! connection get the same Call ID on the outside.

mod bed;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// Runs scripts/pptp-e2e.sh MODE; returns (success, stdout, its checks by name).
fn run_bed(mode: &str) -> (bool, String, BTreeMap<String, bed::Outcome>) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = root.join("target").join(format!("e2e-pptp-{mode}"));
    let out = Command::new("bash")
        .arg(root.join("scripts/pptp-e2e.sh"))
        .arg(mode)
        .arg(env!("CARGO_BIN_EXE_cgnat"))
        .arg(&work)
        .output()
        .expect("running scripts/pptp-e2e.sh");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "--- pptp-e2e.sh {mode} (evidence in {})\n{stdout}",
        work.display()
    );
    if !stderr.is_empty() {
        eprintln!("--- pptp-e2e.sh {mode} (stderr)\n{stderr}");
    }
    let checks = bed::parse_results(&stdout, "PPTP-RESULT");
    (out.status.success(), stdout, checks)
}

/// The checks named that did not give `want`, with their detail.
fn not_as(checks: &BTreeMap<String, bed::Outcome>, names: &[&str], want: bool) -> Vec<String> {
    names
        .iter()
        .filter(|n| checks.get(**n).map(|c| c.ok) != Some(want))
        .map(|n| match checks.get(*n) {
            Some(c) => format!("{n}: ok={} {}", c.ok, c.detail),
            None => format!("{n}: not run"),
        })
        .collect()
}

/// What both NATs do: the calls of 2 and of 100 clients with one Call ID.
const BOTH: &[&str] = &[
    "two-control",
    "control-echo",
    "two-echo",
    "two-call-ids",
    "many-control",
    "many-echo",
    "many-call-ids",
    "clear-reached-server",
    "clear-resent",
    "others-after-clear",
    "no-inside-address",
];

#[test]
fn pptp_through_cgnat_two_and_100_clients() {
    if bed::skip_without_root("the PPTP end-to-end test") {
        return;
    }
    let (success, stdout, checks) = run_bed("cgnat");
    let failed: Vec<String> = checks
        .iter()
        .filter(|(_, c)| c.required && !c.ok)
        .map(|(n, c)| format!("{n}: {}", c.detail))
        .collect();
    let mut must = BOTH.to_vec();
    must.extend([
        "cleared-call-dropped",
        "cleared-call-counted",
        "clear-disconnect-notify",
        "ends-resent-counted",
        "closed-connection-gre",
        "calls-after-close",
        "calls-listed",
        "two-calls-control",
        "two-calls-echo",
        "two-calls-call-ids",
        "cgnat-clean-exit",
    ]);
    let missing = not_as(&checks, &must, true);
    assert!(
        success && failed.is_empty() && missing.is_empty() && stdout.contains("PPTP-E2E PASS"),
        "PPTP through cgnat:\n{}\n{}",
        failed.join("\n"),
        missing.join("\n")
    );
}

#[test]
fn pptp_through_linux_nat_helper() {
    if bed::skip_without_root("the PPTP end-to-end test (Linux)") {
        return;
    }
    let (success, stdout, checks) = run_bed("linux");
    assert!(
        success && stdout.contains("PPTP-E2E REPORT mode=linux"),
        "the Linux bed itself failed"
    );
    let wrong = not_as(&checks, BOTH, true);
    assert!(
        wrong.is_empty(),
        "Linux's PPTP helper no longer does what the bed measured:\n{}",
        wrong.join("\n")
    );
    // The differences docs/alg.md's PPTP table records: if Linux changes, so must it.
    let changed = not_as(
        &checks,
        &["cleared-call-dropped", "two-calls-call-ids"],
        false,
    );
    assert!(
        changed.is_empty(),
        "Linux now does what docs/alg.md says it does not (update its PPTP table):\n{}",
        changed.join("\n")
    );
}
