//! IRC DCC end to end with real software, through cgnat and through the Linux kernel's
//! NAT with its IRC helper: scripts/irc-e2e.sh runs ircd-hybrid on the internet side,
//! alice (python3-irc, scripts/irc-dcc-client.py) in a subscriber namespace behind
//! the NAT and bob on the internet side, and has them make DCC offers with real TCP
//! data connections: alice's DCC SEND (bob connects in), bob's (alice connects out),
//! reverse DCC (bob offers port 0 and a token, alice answers with her endpoint and bob
//! connects in), alice's DCC SEND of a file name with a space (quoted, as clients send
//! it), alice's DCC SEND in the same TCP segment as a chat line before it, alice's DCC
//! SEND resumed by bob from 1 MB (DCC RESUME and ACCEPT, each naming the port as its
//! sender sees it), the same while carol, another subscriber, has an offer pending on
//! the same inside port, and alice's DCC CHAT (a line each way). Each file is 3 MB
//! compared by sha256.
//!
//! cgnat (address-and-port-dependent filtering, `[alg.irc]` on 6667): every check is
//! required: each scenario works, no 100.64/10 address or inside port reaches the
//! internet side, `cgnat show expectations` lists alice's irc_dcc pinhole before bob
//! connects in and none once every offer was taken, `/metrics` has the irc ALG's
//! counters, cgnat stops cleanly.
//!
//! Linux (nftables masquerade, `ct helper "irc"`: nf_conntrack_irc + nf_nat_irc, new
//! inbound connections dropped unless related): asserted as measured on kernel 6.18:
//! the ordinary offers (SEND both ways, reverse DCC, RESUME, CHAT) work; the quoted file
//! name and the offer behind a chat line in one segment are not translated: the inside
//! address reaches bob and his connection fails; and a resume fails when another
//! subscriber's pending offer holds the same port (the helper moves alice's offer to
//! another port and does not translate RESUME or ACCEPT).

mod bed;

use bed::{field, parse_results, Outcome};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

const PREFIX: &str = "IRC-RESULT ";

/// Runs scripts/irc-e2e.sh MODE; returns (success, results by name, stdout).
fn run_bed(mode: &str) -> (bool, BTreeMap<String, Outcome>, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = root.join("target").join(format!("e2e-irc-{mode}"));
    let out = Command::new("bash")
        .arg(root.join("scripts/irc-e2e.sh"))
        .arg(mode)
        .arg(env!("CARGO_BIN_EXE_cgnat"))
        .arg(&work)
        .output()
        .expect("running scripts/irc-e2e.sh");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("--- irc-e2e.sh {mode}\n{stdout}");
    if !stderr.is_empty() {
        eprintln!("--- irc-e2e.sh {mode} (stderr)\n{stderr}");
    }
    (out.status.success(), parse_results(&stdout, PREFIX), stdout)
}

/// The DCC scenarios, in the bed's order.
const DCC: &[&str] = &[
    "dcc-send-out",
    "dcc-send-in",
    "dcc-reverse",
    "dcc-send-quoted",
    "dcc-send-after-line",
    "dcc-resume",
    "dcc-resume-shared",
    "dcc-chat",
];

#[test]
fn parses_result_lines() {
    let text = "irc-e2e: noise\n\
        IRC-RESULT name=dcc-send-out ok=1 required=1 detail=3 MB sha256 equal secs=0.4 leak=0 bob_received=[DCC SEND a.bin 3325256705 41001 3145728]\n\
        IRC-RESULT name=inside-port-in-dcc ok=0 required=0 detail=inside ports named on the internet side: 41001\n\
        IRC-RESULT name=cgnat-clean-exit ok=1 required=1 detail=\nIRC-E2E PASS\n";
    let r = parse_results(text, PREFIX);
    assert_eq!(r.len(), 3);
    let a = &r["dcc-send-out"];
    assert!(a.ok && a.required);
    assert_eq!(field(&a.detail, "leak"), Some("0"));
    assert!(a.detail.ends_with("3145728]"));
    assert!(!r["inside-port-in-dcc"].ok && !r["inside-port-in-dcc"].required);
    assert!(r["cgnat-clean-exit"].detail.is_empty());
}

#[test]
fn irc_dcc_through_cgnat_with_ircd_hybrid() {
    if bed::skip_without_root("the IRC end-to-end test") {
        return;
    }
    let (ok, r, stdout) = run_bed("cgnat");
    let expected = DCC.iter().chain(&[
        "no-inside-address",
        "inside-port-in-dcc",
        "expectations-irc-dcc",
        "pinholes-after",
        "alg-irc-metrics",
        "cgnat-clean-exit",
    ]);
    for name in expected {
        let o = r
            .get(*name)
            .unwrap_or_else(|| panic!("the cgnat bed gave no result for {name}:\n{stdout}"));
        assert!(o.required, "{name} must be required through cgnat");
    }
    let failed: Vec<String> = r
        .iter()
        .filter(|(_, o)| o.required && !o.ok)
        .map(|(n, o)| format!("{n}: {}", o.detail))
        .collect();
    assert!(
        failed.is_empty(),
        "required IRC checks failed through cgnat:\n{}",
        failed.join("\n")
    );
    for name in DCC {
        assert_eq!(
            field(&r[*name].detail, "leak"),
            Some("0"),
            "{name}: {}",
            r[*name].detail
        );
    }
    // the resume: bob named the outside port, alice read her own, and back
    let resume = &r["dcc-resume"].detail;
    assert!(
        field(resume, "from") == Some("1048576")
            && resume.contains("alice_received=[DCC RESUME a.bin 41007 1048576]")
            && !resume.contains("ACCEPT a.bin 41007"),
        "dcc-resume through cgnat: {resume}"
    );
    // the joined case happened: the offer left alice in one segment with the line
    let joined = &r["dcc-send-after-line"].detail;
    assert!(
        field(joined, "one_segment").is_some_and(|n| n != "0"),
        "the offer did not leave in one segment with the chat line: {joined}"
    );
    assert!(ok && stdout.contains("IRC-E2E PASS"), "{stdout}");
}

#[test]
fn irc_dcc_through_linux_nf_conntrack_irc() {
    if bed::skip_without_root("the IRC end-to-end test under Linux") {
        return;
    }
    let (ok, r, stdout) = run_bed("linux");
    assert!(ok, "the Linux IRC bed itself failed:\n{stdout}");
    let get = |name: &str| -> &Outcome {
        r.get(name)
            .unwrap_or_else(|| panic!("the linux bed gave no result for {name}:\n{stdout}"))
    };
    assert!(
        r.values().all(|o| !o.required),
        "the linux bed only reports"
    );
    for name in DCC.iter().chain(&["no-inside-address"]) {
        get(name);
    }
    // What the helper handles: offers read from the client's own messages, each alone
    // in its segment, the file name one word; reverse DCC is the same to it (alice's
    // answer is a DCC SEND with her endpoint). RESUME and ACCEPT it does not read: they
    // work because the masquerade kept alice's port.
    for name in [
        "dcc-send-out",
        "dcc-send-in",
        "dcc-reverse",
        "dcc-resume",
        "dcc-chat",
    ] {
        let o = get(name);
        assert!(
            o.ok && field(&o.detail, "leak") == Some("0"),
            "{name} under Linux: {}",
            o.detail
        );
    }
    // What it misses: a quoted file name (it takes the address after the first space)
    // and an offer behind another message in the segment (it reads one PRIVMSG at the
    // segment's start): the inside address reaches bob, nothing is expected.
    for name in ["dcc-send-quoted", "dcc-send-after-line"] {
        let o = get(name);
        assert!(
            !o.ok && field(&o.detail, "leak") == Some("1"),
            "expected Linux's helper to leave {name} untranslated: {}",
            o.detail
        );
    }
    let joined = get("dcc-send-after-line");
    assert!(
        field(&joined.detail, "one_segment").is_some_and(|n| n != "0"),
        "the offer did not leave in one segment with the chat line: {}",
        joined.detail
    );
    // Two subscribers behind the masquerade on the same inside port: carol's pending
    // offer keeps 41008, so alice's gets another port; bob's RESUME names that one, the
    // helper leaves it, and alice refuses a RESUME for a port she did not offer.
    let shared = get("dcc-resume-shared");
    assert!(
        !shared.ok
            && shared
                .detail
                .contains("dave_received=[DCC SEND b.bin 3325256705 41008 ")
            && shared.detail.contains("not the offered 41008"),
        "expected the resume on a port another subscriber holds to fail under Linux: {}",
        shared.detail
    );
    // masquerade keeps the inside port when it can
    let kept = get("inside-port-in-dcc");
    assert!(
        !kept.ok && kept.detail.contains("41001"),
        "expected Linux to keep alice's ports: {}",
        kept.detail
    );
    let leak = get("no-inside-address");
    assert!(
        !leak.ok && leak.detail.contains("1681915906"),
        "expected 100.64.0.2 (1681915906) on the internet side under Linux: {}",
        leak.detail
    );
}
