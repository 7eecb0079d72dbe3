//! `cgnat replay` on the real captures in tests/captures: the round trip must hold
//! and nothing of the inside host may show on the outside.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

const CONFIG: &str = r#"[[ports]]
name = "inside"
role = "inside"
device = "replay"
ipv4 = "100.64.0.1/10"
[[ports]]
name = "outside"
role = "outside"
device = "replay"
ipv4 = "203.0.113.1/24"
gateway = "203.0.113.254"
[nat]
inside = ["192.168.1.2/32", "141.142.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.43.0/24", "16.0.0.200/32"]
pool = ["198.51.100.0/28"]
"#;

fn replay(capture: &str, host: &str) -> (bool, Value) {
    replay_with(capture, host, "")
}

fn replay_with(capture: &str, host: &str, extra: &str) -> (bool, Value) {
    replay_args(capture, host, extra, &[])
}

fn replay_args(capture: &str, host: &str, extra: &str, more: &[&str]) -> (bool, Value) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "replay-{capture}{}",
        if extra.is_empty() { "" } else { "-x" }
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    replay_in(&dir, &cgnat_testkit::capture(capture), host, extra, more)
}

/// Runs `cgnat replay` of `pcap` in `dir` (config and outputs there).
fn replay_in(
    dir: &std::path::Path,
    pcap: &std::path::Path,
    host: &str,
    extra: &str,
    more: &[&str],
) -> (bool, Value) {
    std::fs::write(dir.join("cgnat.toml"), format!("{CONFIG}{extra}")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cgnat"))
        .args(["replay", "-c"])
        .arg(dir.join("cgnat.toml"))
        .args(["--inside-host", host])
        .args(more)
        .arg(pcap)
        .arg("--out-dir")
        .arg(dir)
        .output()
        .unwrap();
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert!(dir.join("outside.pcap").exists() && dir.join("inside.pcap").exists());
    (out.status.success(), report)
}

#[test]
fn tftp_read_request_round_trips() {
    let (ok, r) = replay("tftp-rrq.pcap", "192.168.1.2");
    assert!(ok, "{r}");
    // The server answers from a new port: endpoint-independent filtering lets it in.
    assert_eq!(r["outbound"], 4);
    assert_eq!(r["inbound_ok"], 3);
}

#[test]
fn ftp_with_epsv_round_trips_without_leaks() {
    let (ok, r) = replay("ftp-retr-epsv.pcap", "141.142.228.5");
    assert!(ok, "{r}");
    assert!(r["inbound_ok"].as_u64().unwrap() > 20);
}

/// Active FTP carries the client's address in PORT: the FTP ALG rewrites it to the
/// mapping it reserves, the server's data connection comes in through the
/// expectation, and the server's acks (of the rewritten, shorter stream) are adjusted
/// back: the client sees exactly what it saw.
#[test]
fn ftp_active_and_passive_round_trip_with_the_alg() {
    let (ok, r) = replay("ftp-ipv4-pasv-port.pcap", "141.142.220.235");
    assert!(ok, "{r}");
    assert!(r["inbound_ok"].as_u64().unwrap() > 40);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("replay-ftp-ipv4-pasv-port.pcap");
    let out = cgnat_dataplane::pcap::frames(&dir.join("outside.pcap")).unwrap();
    let ports: Vec<String> = out
        .iter()
        .filter_map(|f| {
            let at = f.windows(5).position(|w| w == b"PORT ")?;
            Some(String::from_utf8_lossy(&f[at..]).into_owned())
        })
        .collect();
    assert_eq!(ports.len(), 2, "{ports:?}");
    assert!(
        ports.iter().all(|p| p.starts_with("PORT 198,51,100,")),
        "{ports:?}"
    );
}

/// Without the ALG the replay must catch the leak (the checker itself is tested).
#[test]
fn replay_catches_the_port_command_leak_without_the_alg() {
    let (ok, r) = replay_with(
        "ftp-ipv4-pasv-port.pcap",
        "141.142.220.235",
        "[alg]\nftp = { enabled = false }\n",
    );
    assert!(!ok);
    let leaks: Vec<&str> = r["leaks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        !leaks.is_empty() && leaks.iter().all(|l| l.contains("FTP comma form")),
        "{leaks:?}"
    );
    let mism: Vec<&str> = r["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        mism.iter().any(|m| m.contains("has no mapping")),
        "{mism:?}"
    );
}

/// Under address-and-port-dependent filtering the TFTP server's answer from a new port
/// needs the TFTP ALG's expectation; without it the transfer cannot start.
#[test]
fn tftp_under_strict_filtering_needs_and_gets_the_alg() {
    let strict = "filtering = \"address-and-port-dependent\"\n";
    let (ok, r) = replay_with(
        "tftp-rrq.pcap",
        "192.168.1.2",
        &format!("{strict}[alg]\ntftp = {{ enabled = true }}\n"),
    );
    assert!(ok, "{r}");
    let (ok, r) = replay_with("tftp-rrq.pcap", "192.168.1.2", strict);
    assert!(!ok, "{r}");
}

const SIP_RTSP: &str = "filtering = \"address-and-port-dependent\"\n[alg]\nsip = { enabled = true }\nrtsp = { enabled = true }\n";

/// REGISTER with digest authentication, INVITEs with SDP, CANCEL, RTP and RTCP from a
/// phone behind the NAT: every address and port it announces is translated (Via and
/// its branch, Contact, Call-ID, SDP, and the RTCP CNAME), the replies come back as
/// captured, and the only inside address left is inside the digest credentials, which
/// no NAT may change without breaking authentication (reported as protected).
#[test]
fn sip_call_round_trips_without_leaks() {
    let (ok, r) = replay_with("sip-sdp-rtp.pcap", "192.168.1.2", SIP_RTSP);
    assert!(ok, "{r}");
    assert_eq!(r["outbound"], 78);
    assert_eq!(r["inbound_ok"], 34);
    assert_eq!(r["protected"].as_array().unwrap().len(), 12, "{r}");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("replay-sip-sdp-rtp.pcap-x");
    let out = cgnat_dataplane::pcap::frames(&dir.join("outside.pcap")).unwrap();
    let text: Vec<String> = out
        .iter()
        .map(|f| String::from_utf8_lossy(&f[42..]).into_owned())
        .filter(|t| t.starts_with("INVITE "))
        .collect();
    assert!(!text.is_empty());
    for t in &text {
        let m: u16 = t
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|l| l.split(' ').next())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(m % 2, 0, "RTP on an even outside port: {t}");
        assert!(t.contains("c=IN IP4 198.51.100."), "{t}");
    }
    // Without the ALG the replay finds the leaks.
    let (ok, r) = replay_with(
        "sip-sdp-rtp.pcap",
        "192.168.1.2",
        "filtering = \"address-and-port-dependent\"\n",
    );
    assert!(!ok);
    assert!(r["leaks"].as_array().unwrap().len() > 20, "{r}");
}

/// RTSP over a connection the capture joins mid-way (picked up), SETUPs retransmitted
/// four times, DESCRIBE replies split between head and body (a whole head goes at once:
/// RTSP rewrites only headers): the client ports are translated to an even pair and
/// back, the acks follow the rewritten stream.
#[test]
fn rtsp_setup_round_trips() {
    let (ok, r) = replay_with("rtsp-setup.pcap", "10.1.1.10", SIP_RTSP);
    assert!(ok, "{r}");
    assert_eq!(r["picked_up"], 1);
    assert_eq!(r["held"], 0);
    assert!(r["inbound_ok"].as_u64().unwrap() > 250);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("replay-rtsp-setup.pcap-x");
    let out = cgnat_dataplane::pcap::frames(&dir.join("outside.pcap")).unwrap();
    let setups: Vec<String> = out
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .filter(|t| t.contains("SETUP rtsp://"))
        .collect();
    assert!(!setups.is_empty());
    assert!(
        setups.iter().all(|t| !t.contains("client_port=55664")),
        "{setups:?}"
    );
}

#[test]
fn rtsp_single_setup_from_a_pcapng_round_trips() {
    let (ok, r) = replay_with("rtsp-setup-single.pcapng", "172.28.5.170", SIP_RTSP);
    assert!(ok, "{r}");
    assert_eq!(r["outbound"], 1);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("replay-rtsp-setup-single.pcapng-x");
    let out = cgnat_dataplane::pcap::frames(&dir.join("outside.pcap")).unwrap();
    let t = String::from_utf8_lossy(&out[0]).into_owned();
    assert!(t.contains("Transport: RTP/AVP;unicast;client_port="), "{t}");
    assert!(!t.contains("client_port=50220-50221"), "{t}");
}

const IRC: &str = "[alg]\nirc = { enabled = true }\n";

/// IRC DCC, a real capture: a client behind the NAT offers a file (DCC SEND, 1.3 MB)
/// and a chat (DCC CHAT) with its address as a decimal number. The offers leave with
/// the pool address and the translated ports (a length-changing rewrite: the stream
/// after it is adjusted), and the peer's connections come in through the pinholes.
#[test]
fn irc_dcc_send_and_chat_round_trip_with_the_alg() {
    let (ok, r) = replay_with("irc-dcc-send.pcapng", "10.0.0.7", IRC);
    assert!(ok, "{r}");
    assert!(r["inbound_ok"].as_u64().unwrap() > 150, "{r}");
    assert!(r["outbound"].as_u64().unwrap() > 1000, "{r}");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("replay-irc-dcc-send.pcapng-x");
    let out = cgnat_dataplane::pcap::frames(&dir.join("outside.pcap")).unwrap();
    let offers: Vec<String> = out
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .filter(|t| t.contains("\x01DCC "))
        .collect();
    assert_eq!(offers.len(), 2, "{offers:?}");
    for t in &offers {
        // 10.0.0.7 is 167772167; the pool (198.51.100.0/28) is 33252567xx.
        assert!(!t.contains("167772167") && t.contains(" 33252567"), "{t}");
        assert!(!t.contains(" 59130 ") && !t.contains(" 59214\x01"), "{t}");
    }
}

/// Without the ALG the same capture leaks the inside address (in the DCC offers, as a
/// decimal number) and the peer's connections find no mapping.
#[test]
fn replay_catches_the_dcc_leak_without_the_alg() {
    let (ok, r) = replay("irc-dcc-send.pcapng", "10.0.0.7");
    assert!(!ok);
    let leaks = r["leaks"].as_array().unwrap();
    assert!(
        leaks
            .iter()
            .any(|l| l.as_str().unwrap().contains("payload (decimal)")),
        "{r}"
    );
}

const PPTP: &str = "[alg]\npptp = { enabled = true }\n";

/// A PPTP control message: its type, Call ID and Peer's Call ID.
type Control = (u16, u16, u16);
/// A GRE packet: its source and key.
type Gre = (std::net::Ipv4Addr, u16);

/// The PPTP control messages and the GRE packets of the outside view of a replay in
/// `dir`.
fn pptp_outside(dir: &str) -> (Vec<Control>, Vec<Gre>) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(dir);
    let frames = cgnat_dataplane::pcap::frames(&dir.join("outside.pcap")).unwrap();
    let be16 = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    let (mut control, mut gre) = (vec![], vec![]);
    for f in &frames {
        let ip = &f[14..];
        let hl = usize::from(ip[0] & 0x0f) * 4;
        let l4 = &ip[hl..];
        match ip[9] {
            6 => {
                let p = &l4[usize::from(l4[12] >> 4) * 4..];
                if p.len() >= 16 && p[4..8] == [0x1a, 0x2b, 0x3c, 0x4d] {
                    control.push((be16(p, 8), be16(p, 12), be16(p, 14)));
                }
            }
            47 => gre.push((
                std::net::Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
                be16(l4, 6),
            )),
            _ => {}
        }
    }
    (control, gre)
}

/// PPTP, a real capture: Outgoing-Call-Request (the client's call ID 0), the reply
/// (naming it), Set-Link-Info and the client's first GRE packet (keyed by the server's
/// call ID 0). The request leaves with a translated call ID, the reply comes back
/// naming the client's own, and the GRE leaves from the pool address, its key kept.
#[test]
fn pptp_call_and_its_gre_round_trip_with_the_call_id_translated() {
    let (ok, r) = replay_with("pptp-call.pcap", "10.1.1.11", PPTP);
    assert!(ok, "{r}");
    assert!(r["inbound_ok"].as_u64().unwrap() >= 5, "{r}");
    let (control, gre) = pptp_outside("replay-pptp-call.pcap-x");
    let request: Vec<_> = control.iter().filter(|m| m.0 == 7).collect();
    assert_eq!(request.len(), 1, "{control:?}");
    assert_ne!(request[0].1, 0, "the call ID left untranslated");
    assert_eq!(gre.len(), 1, "{gre:?}");
    assert_eq!(
        gre[0].1, 0,
        "the key (the server's call ID) is not the NAT's"
    );
    assert_eq!(gre[0].0.octets()[..3], [198, 51, 100]);
}

/// PPTP from a private client to a public server through Call-Clear-Request: the
/// request and the clear name the same translated call ID; the server's reply and
/// Set-Link-Info, sent to that translation, reach the client naming its own (0).
#[test]
fn pptp_call_clear_names_the_same_translated_call_id() {
    let (ok, r) = replay_with("pptp-clear.pcap", "192.168.43.22", PPTP);
    assert!(ok, "{r}");
    let (control, _) = pptp_outside("replay-pptp-clear.pcap-x");
    let ids = |t: u16| -> Vec<u16> { control.iter().filter(|m| m.0 == t).map(|m| m.1).collect() };
    let (request, clear) = (ids(7), ids(12));
    assert_eq!(request.len(), 1, "{control:?}");
    assert_ne!(request[0], 0);
    assert!(!clear.is_empty() && clear[0] == request[0], "{control:?}");
    // The server's messages naming the client's call came back (inbound_ok) as
    // captured: Outgoing-Call-Reply, two Set-Link-Info, Call-Disconnect-Notify.
    assert!(r["inbound_ok"].as_u64().unwrap() >= 4, "{r}");
    // The NAT knew the call each server message named: the clear's retransmission
    // names the call it closed, and the Call-Disconnect-Notify after the clear names
    // the client's call ID (as deployed servers write it: here 0, as the server saw
    // it its translation), which ends the call and comes back as the client's own.
    assert_eq!(r["alg_refused"], 0, "{r}");
    assert_eq!(r["mismatches"], serde_json::json!([]), "{r}");
}

/// Enhanced GRE alone (no control connection in the capture; its frames carry the
/// IPv4 GRE packets in an IPv6 tunnel, taken off here with its VLAN tag): with the PPTP ALG off it goes
/// by address alone both ways; with it on, no call names it: dropped.
#[test]
fn gre_version_1_without_its_control_connection() {
    let frames =
        cgnat_dataplane::pcap::frames(&cgnat_testkit::capture("gre-pptp-v1.pcap")).unwrap();
    let unwrapped: Vec<Vec<u8>> = frames
        .iter()
        .map(|f| {
            // Ethernet, a VLAN tag, IPv6 (next header 4), then the IPv4 packet.
            assert_eq!(
                (&f[12..14], &f[16..18]),
                (&[0x81, 0][..], &[0x86, 0xdd][..])
            );
            assert_eq!(f[18 + 6], 4, "IPv4 in IPv6");
            [&f[..12], &[0x08, 0x00][..], &f[18 + 40..]].concat()
        })
        .collect();
    for (alg, ok) in [("", true), (PPTP, false)] {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("replay-gre-pptp-v1-{}", alg.len()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pcap = dir.join("gre-v4.pcap");
        cgnat_dataplane::pcap::write(&pcap, &unwrapped, 1, 1000).unwrap();
        let (passed, r) = replay_in(&dir, &pcap, "16.0.0.200", alg, &[]);
        assert_eq!(passed, ok, "{r}");
        if ok {
            assert_eq!(
                (r["outbound"].as_u64(), r["inbound_ok"].as_u64()),
                (Some(1), Some(1))
            );
        } else {
            assert!(
                r["mismatches"][0]
                    .as_str()
                    .unwrap()
                    .contains("not translated"),
                "{r}"
            );
        }
    }
}

/// FTP upgraded with AUTH TLS, captured on loopback (both ends 127.0.0.1): the server's
/// end plays the outside peer at another address. The ALG reads FEAT and AUTH, stands
/// aside once 234 accepts it, and the encrypted stream passes untouched both ways.
#[test]
fn ftp_auth_tls_round_trips_and_the_alg_stands_aside() {
    let (ok, r) = replay_args(
        "ftp-auth-tls.pcap",
        "127.0.0.1",
        "filtering = \"address-and-port-dependent\"\n",
        &["--server-port", "21", "--inside-as", "141.142.1.1"],
    );
    assert!(ok, "{r}");
    assert_eq!(r["ftp_stand_aside"], 1, "{r}");
    assert_eq!(
        r["outbound"].as_u64().unwrap() + r["inbound_ok"].as_u64().unwrap(),
        84
    );
}

/// An ICMP error to the inside host (a port unreachable answering its last datagram,
/// as a hole-punching peer gets) is matched through the datagram it quotes: the peer
/// quotes the translated datagram, and the inside host gets the error as captured.
#[test]
fn an_inbound_icmp_error_is_matched_through_the_datagram_it_quotes() {
    let mut frames =
        cgnat_testkit::pcap::read_frames(cgnat_testkit::capture("tftp-rrq.pcap")).unwrap();
    let host = "192.168.1.2".parse().unwrap();
    let last = frames
        .iter()
        .rev()
        .find(|f| f[26..30] == [192, 168, 1, 2])
        .unwrap()
        .clone();
    let quoted = &last[14..14 + 28];
    let error = cgnat_testkit::packet::Frame::new().icmp_error(
        "192.168.1.1".parse().unwrap(),
        host,
        3,
        3,
        [0; 4],
        quoted,
    );
    frames.push(error);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("replay-icmp-error");
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("tftp-rrq-icmp.pcap");
    cgnat_testkit::pcap::write_packets(&pcap, &frames).unwrap();
    let (ok, r) = replay_in(&dir, &pcap, "192.168.1.2", "", &[]);
    assert!(ok, "{r}");
    assert_eq!(r["mismatches"].as_array().unwrap().len(), 0, "{r}");
    let (_, plain) = replay("tftp-rrq.pcap", "192.168.1.2");
    assert_eq!(
        r["inbound_ok"].as_u64().unwrap(),
        plain["inbound_ok"].as_u64().unwrap() + 1,
        "{r}"
    );
}

/// With `[logging]` on, the replay takes the log events the run makes as the
/// runtime's exporter would (what an FTP download makes), counted in the report:
/// the round trip is the same.
#[test]
fn a_replay_with_logging_counts_the_log_events_it_made() {
    let (ok, plain) = replay("ftp-retr-epsv.pcap", "141.142.228.5");
    assert!(ok, "{plain}");
    assert_eq!(plain["log_events"], 0);
    let logging = "[logging]\nsyslog = { server = \"127.0.0.1:514\" }\n";
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("replay-logging");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = cgnat_testkit::capture("ftp-retr-epsv.pcap");
    let (ok, r) = replay_in(&dir, &pcap, "141.142.228.5", logging, &[]);
    assert!(ok, "{r}");
    assert!(r["log_events"].as_u64().unwrap() >= 1, "{r}");
    assert_eq!(r["inbound_ok"], plain["inbound_ok"]);
    assert_eq!(r["outbound"], plain["outbound"]);
}
