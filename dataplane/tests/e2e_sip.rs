//! SIP end to end with real software, through cgnat and through the Linux kernel's NAT
//! side by side: baresip (alice) in a subscriber namespace behind the NAT, baresip
//! (bob) and kamailio (registrar and proxy) in an internet namespace, and a recorder
//! that keeps what reaches it (scripts/sip-e2e.sh sets the bed up, with SIP_TCP=1 so
//! the direct call is also made over SIP/TCP).
//!
//! The same bed runs twice: against `cgnat run` with the SIP ALG and strict
//! (address-and-port-dependent) filtering, and through a router namespace doing the
//! NAT with nftables and the kernel's SIP helper (nf_conntrack_sip, nf_nat_sip).
//! Both result sets are printed side by side (and kept in target/e2e-sip-{cgnat,linux}/
//! results.txt).
//!
//! Asserted for cgnat: the calls (direct, proxy, incoming, direct over TCP) each have
//! media both ways and a clean hang-up; an INVITE with SDP over TCP, whole and split
//! in two segments inside the SDP's c= address, reaches the internet side whole
//! (Content-Length equal to the body), with no inside address, and its SDP lets
//! media in; no 100.64.x.x address reaches the internet side; no SIP media pinhole is
//! left once the calls are over; and issue 20's call across reloads (`reloads`): the
//! direct call with 8 s of media, during which the bed changes nat.timeouts.udp and
//! runs `cgnat reload` three times, each answered applied; RTP reached both ends after
//! the last reload and the call's sessions (inside, outside, remote) stayed the same;
//! and issue 14's request policy (`policy-message`): with `deny_methods = ["MESSAGE"]`
//! a MESSAGE to kamailio gets 405 in kamailio's name and never reaches the internet,
//! while an OPTIONS after it gets kamailio's own answer.
//!
//! Asserted for Linux: it fails at least one of the leak check (with SIP over TCP the
//! helper leaves the inside address in Via or Contact) and the split INVITE (the
//! helper passes a message it does not see whole untranslated, so the inside address
//! reaches the internet, or the message does not arrive whole), with that evidence.
//!
//! Printed, not asserted: split-tcp-late, the same split with the second part sent
//! 0.6 s late, so that a NAT holding the first part unacknowledged sees it
//! retransmitted before the rest comes; and the split INVITE's wire_mismatch, the
//! segments toward the internet whose bytes differ from what the recorder's stream
//! holds at their place (a retransmission forwarded untranslated after the
//! translated message went).

mod bed;

use bed::{field, parse_results, Outcome};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const PREFIX: &str = "SIP-RESULT ";

fn skip() -> bool {
    bed::skip_without_root("the SIP end-to-end test")
}

/// Runs scripts/sip-e2e.sh in the given mode (SIP_TCP=1 unless the environment says
/// otherwise); returns (success, stdout, stderr).
fn run_bed(mode: &str, work: &Path) -> (bool, String, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let _ = std::fs::remove_dir_all(work);
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("scripts/sip-e2e.sh"))
        .arg(mode)
        .arg(env!("CARGO_BIN_EXE_cgnat"))
        .arg(work);
    if std::env::var_os("SIP_TCP").is_none() {
        cmd.env("SIP_TCP", "1");
    }
    let out = cmd.output().expect("running scripts/sip-e2e.sh");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("--- sip-e2e.sh {mode}\n{stdout}");
    if !stderr.is_empty() {
        eprintln!("--- sip-e2e.sh {mode} (stderr)\n{stderr}");
    }
    (out.status.success(), stdout, stderr)
}

fn work_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join(name)
}

/// A count `key=N` in a detail text, 0 when absent or not a number.
fn count(detail: &str, key: &str) -> u64 {
    field(detail, key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Must pass through cgnat.
const CGNAT_PASSES: &[&str] = &[
    "direct",
    "proxy",
    "incoming",
    "direct-tcp",
    "reloads",
    "whole-tcp",
    "split-tcp",
    "leak",
    "pinholes",
    "policy-message",
];

/// Reported by the Linux bed (pinholes is cgnat's own check).
const LINUX_REPORTS: &[&str] = &[
    "direct",
    "proxy",
    "incoming",
    "direct-tcp",
    "whole-tcp",
    "split-tcp",
    "split-tcp-late",
    "leak",
];

/// Why the Linux result of the leak check shows the helper's SIP/TCP gap: the inside
/// address in Via or Contact of a message that left toward the internet.
fn linux_leak_evidence(o: &Outcome) -> Option<String> {
    let via = count(&o.detail, "in_via");
    let contact = count(&o.detail, "in_contact");
    (!o.ok && via + contact > 0).then(|| {
        format!("leak: inside address in Via of {via} and Contact of {contact} SIP messages toward the internet")
    })
}

/// Why the Linux result of the split INVITE shows the helper's gap: the inside address
/// reached the internet (and where in the message), or the message did not arrive
/// whole. Alice's first data segment must end at the cut, or the case did not happen.
fn linux_split_evidence(o: &Outcome) -> Option<String> {
    let cut = field(&o.detail, "cut_at")?;
    let segments = field(&o.detail, "subscriber_segments")?;
    if o.ok || segments.split(',').next() != Some(cut) {
        return None;
    }
    let inside = field(&o.detail, "inside_addr_in").unwrap_or("none");
    let leaked = count(&o.detail, "leak") == 1
        || count(&o.detail, "segments_with_100.64_toward_internet") > 0;
    let whole = count(&o.detail, "whole") == 1;
    (leaked || !whole).then(|| {
        format!(
            "split-tcp: the INVITE left alice cut at byte {cut} (data segments {segments}), \
             arrived {} with the inside address in {inside}, SDP media toward {}",
            if whole { "whole" } else { "NOT whole" },
            field(&o.detail, "sdp_media_out").unwrap_or("none"),
        )
    })
}

#[test]
fn parses_result_lines() {
    let text = "noise\nSIP-RESULT name=leak ok=0 detail=sip_messages_toward_internet=13 in_via=3 in_contact=1 (see x)\n\
                SIP-RESULT name=split-tcp ok=0 detail=split=sdp cut_at=422 subscriber_segments=422,75,276 leak=1 whole=1 inside_addr_in=Via,Contact,sdp-c sdp_media_out=100.64.0.2:10096(x)\n\
                SIP-RESULT name=pinholes ok=1 detail=\nSIP-E2E FAIL\n";
    let r = parse_results(text, PREFIX);
    assert_eq!(r.len(), 3);
    assert!(!r["leak"].ok && r["pinholes"].ok && r["pinholes"].detail.is_empty());
    assert_eq!(count(&r["leak"].detail, "in_via"), 3);
    assert_eq!(field(&r["split-tcp"].detail, "split"), Some("sdp"));
    assert!(linux_leak_evidence(&r["leak"]).is_some());
    let e = linux_split_evidence(&r["split-tcp"]).unwrap();
    assert!(e.contains("Via,Contact,sdp-c"), "{e}");
    let passed = Outcome {
        ok: true,
        required: false,
        detail: r["split-tcp"].detail.clone(),
    };
    assert!(linux_split_evidence(&passed).is_none());
}

/// The beds read SIP, RTSP and PPTP from their captures with `decode_as`
/// (scripts/lib/cgnat-bed.sh): tshark picks a payload's dissector by the lower of its
/// two ports, and a translated source port can be a registered one. A clean-clone CI
/// run had alice's SIP mapping at 198.51.100.10:1194 (OpenVPN's): no SIP message of it
/// was read, so the `reloads` call found no SDP and the leak check read 4 messages.
/// Here an INVITE with SDP from such ports (UDP and TCP) must be read as SIP with the
/// beds' arguments; tshark without them must not read the UDP one from 1194, or this
/// test no longer shows why the arguments are there.
#[test]
fn decode_as_reads_sip_from_registered_source_ports() {
    if Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("skipped: no tshark (scripts/install-deps.sh --test installs it)");
        return;
    }
    let sdp = "v=0\r\no=- 1 1 IN IP4 198.51.100.10\r\ns=-\r\nc=IN IP4 198.51.100.10\r\n\
               t=0 0\r\nm=audio 1044 RTP/AVP 0\r\n";
    let invite = format!(
        "INVITE sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.10:1194;branch=z9hG4bK1\r\n\
         From: <sip:alice@192.0.2.10>;tag=1\r\nTo: <sip:bob@192.0.2.20>\r\nCall-ID: c1\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:alice@198.51.100.10:1194>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    let builder = || {
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(
            [198, 51, 100, 10],
            [192, 0, 2, 20],
            64,
        )
    };
    let mut frames = Vec::new();
    // OpenVPN, VXLAN, H.225 RAS, Teredo: each takes the datagram from SIP by default.
    for sport in [1194u16, 4789, 1719, 3544] {
        let b = builder().udp(sport, 5060);
        let mut f = Vec::with_capacity(b.size(invite.len()));
        b.write(&mut f, invite.as_bytes()).unwrap();
        frames.push(f);
    }
    for sport in [1194u16, 3306] {
        let b = builder().tcp(sport, 5060, 1, 64240).psh().ack(1);
        let mut f = Vec::with_capacity(b.size(invite.len()));
        b.write(&mut f, invite.as_bytes()).unwrap();
        frames.push(f);
    }
    let dir = work_dir("decode-as");
    std::fs::create_dir_all(&dir).unwrap();
    let cap = dir.join("registered-ports.pcap");
    cgnat_dataplane::pcap::write(&cap, &frames, 1, 1000).unwrap();
    let lib = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/lib/cgnat-bed.sh");
    let media = |decode: bool| -> Vec<String> {
        let script = format!(
            ". '{}'; tshark {} -r '{}' -T fields -e sdp.media.port",
            lib.display(),
            if decode {
                "$(decode_as udp tcp sip)"
            } else {
                ""
            },
            cap.display()
        );
        let out = Command::new("bash").args(["-c", &script]).output().unwrap();
        let (text, err) = (out.stdout, out.stderr);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&err));
        String::from_utf8_lossy(&text)
            .lines()
            .map(String::from)
            .collect()
    };
    assert_eq!(media(true), vec!["1044"; frames.len()], "with decode_as");
    let plain = media(false);
    assert_eq!(plain.len(), frames.len());
    assert_eq!(
        plain[0], "",
        "tshark read the INVITE from 1194 as SIP by itself"
    );
}

#[test]
fn sip_cgnat_against_linux_helper() {
    if skip() {
        return;
    }
    let mut runs = BTreeMap::new();
    for mode in ["cgnat", "linux"] {
        let work = work_dir(&format!("e2e-sip-{mode}"));
        let (ok, stdout, stderr) = run_bed(mode, &work);
        let lines: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with("SIP-RESULT "))
            .collect();
        let _ = std::fs::write(work.join("results.txt"), lines.join("\n") + "\n");
        runs.insert(mode, (ok, parse_results(&stdout, PREFIX), stdout, stderr));
    }
    let (cgnat_ok, cgnat, cgnat_out, cgnat_err) = &runs["cgnat"];
    let (_, linux, linux_out, linux_err) = &runs["linux"];

    // Side by side.
    let names: BTreeSet<&String> = cgnat.keys().chain(linux.keys()).collect();
    let mark = |o: Option<&Outcome>| match o {
        Some(o) if o.ok => "ok",
        Some(_) => "FAIL",
        None => "-",
    };
    println!("{:<16} {:>6} {:>6}", "scenario", "linux", "cgnat");
    for n in &names {
        println!(
            "{:<16} {:>6} {:>6}",
            n,
            mark(linux.get(*n)),
            mark(cgnat.get(*n))
        );
    }
    for n in &names {
        for (mode, set) in [("linux", linux), ("cgnat", cgnat)] {
            if let Some(o) = set.get(*n) {
                println!("{mode:<5} {n}: ok={} {}", u8::from(o.ok), o.detail);
            }
        }
    }
    println!(
        "cgnat bed overall: {}",
        if *cgnat_ok { "PASS" } else { "FAIL" }
    );

    for name in CGNAT_PASSES {
        let o = cgnat.get(*name).unwrap_or_else(|| {
            panic!("the cgnat bed gave no result for `{name}`:\n{cgnat_out}\n{cgnat_err}")
        });
        assert!(o.ok, "`{name}` through cgnat: {}", o.detail);
    }
    // The split INVITE through cgnat: cut on the subscriber's side, no inside address
    // anywhere, the rewritten SDP let the recorder's datagrams in.
    let split = &cgnat["split-tcp"].detail;
    assert!(
        field(split, "subscriber_segments").and_then(|s| s.split(',').next())
            == field(split, "cut_at")
            && field(split, "inside_addr_in") == Some("none")
            && count(split, "media_in") >= 1,
        "split-tcp through cgnat: {split}"
    );

    // The call across three reloads: each applied, RTP both ways after the last one,
    // the call's mappings the same.
    let reloads = &cgnat["reloads"].detail;
    let before = field(reloads, "mappings_before").unwrap_or("none");
    assert!(
        field(reloads, "reloads") == Some("applied,applied,applied")
            && count(reloads, "alice_rtp_rx_after_reloads") >= 20
            && count(reloads, "bob_rtp_rx_after_reloads") >= 20
            && before.contains("udp:100.64.0.2:")
            && field(reloads, "mappings_after") == Some(before),
        "reloads through cgnat: {reloads}"
    );

    for name in LINUX_REPORTS {
        assert!(
            linux.contains_key(*name),
            "the linux bed gave no result for `{name}`:\n{linux_out}\n{linux_err}"
        );
    }
    let evidence: Vec<String> = [
        linux_leak_evidence(&linux["leak"]),
        linux_split_evidence(&linux["split-tcp"]),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(
        !evidence.is_empty(),
        "expected the Linux helper to leak the inside address over SIP/TCP or to fail the split INVITE:\n\
         leak: ok={} {}\nsplit-tcp: ok={} {}",
        u8::from(linux["leak"].ok),
        linux["leak"].detail,
        u8::from(linux["split-tcp"].ok),
        linux["split-tcp"].detail
    );
    for e in &evidence {
        println!("linux fails where cgnat passes: {e}");
    }
    for name in ["split-tcp", "split-tcp-late"] {
        let o = &cgnat[name];
        if !o.ok || count(&o.detail, "wire_mismatch") > 0 {
            println!(
                "cgnat, not asserted: {name} ok={} wire_mismatch={}: {}",
                u8::from(o.ok),
                count(&o.detail, "wire_mismatch"),
                o.detail
            );
        }
    }
}
