//! Per-subscriber-prefix enabling and disabling of each ALG (`alg.<name>.only`,
//! `alg.<name>.except`): decided when a session is bound to its ALG, counted per ALG,
//! and followed by a reload for the sessions made after it.

mod common;
use cgnat_dataplane::harness::Harness;
use cgnat_dataplane::nat::{ALG_FTP, ALG_SIP};
use cgnat_dataplane::pipeline::Side::{Inside, Outside};
use common::*;

fn text(f: &[u8], at: usize) -> String {
    String::from_utf8_lossy(&f[at..]).into_owned()
}

/// A PORT from `client` (its first command, after the handshake) as it leaves.
fn port_from(h: &mut Harness, client: &str, port_arg: &str) -> String {
    connect(h, &format!("{client}:40000"), "192.0.2.10:21", 500);
    let o = one(
        h,
        &tcp(
            &format!("{client}:40000"),
            "192.0.2.10:21",
            101,
            "PA",
            format!("PORT {port_arg}\r\n").as_bytes(),
            false,
        ),
        Inside,
        1001,
        Outside,
    );
    text(&o, 54)
}

#[test]
fn ftp_except_leaves_the_listed_subscribers_without_the_alg() {
    let mut h = harness("[alg]\nftp = { except = [\"100.64.8.0/24\"] }");
    // A subscriber in the prefix: a plain session, the PORT goes as written.
    let t = port_from(&mut h, "100.64.8.5", "100,64,8,5,19,137");
    assert_eq!(t, "PORT 100,64,8,5,19,137\r\n");
    assert_eq!(h.counters.alg_subscriber_off[usize::from(ALG_FTP)].get(), 1);
    assert_eq!(h.counters.expectations_created.get(), 0);
    // Another subscriber: the ALG as ever.
    let t = port_from(&mut h, "100.64.1.2", "100,64,1,2,19,137");
    assert!(t.starts_with("PORT 198,51,100,"), "{t}");
    assert_eq!(h.counters.expectations_created.get(), 1);
    assert_eq!(h.counters.alg_subscriber_off[usize::from(ALG_FTP)].get(), 1);
}

#[test]
fn sip_only_serves_the_listed_subscribers() {
    let invite = |from: &str| {
        format!(
            "OPTIONS sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP {from}:5060;branch=z9hG4bK-1\r\n\
             From: <sip:alice@{from}>;tag=a1\r\nTo: <sip:bob@192.0.2.20>\r\nCall-ID: c1@{from}\r\n\
             CSeq: 1 OPTIONS\r\nContact: <sip:alice@{from}:5060>\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let mut h = harness("[alg]\nsip = { enabled = true, only = [\"100.64.1.0/24\"] }");
    for (phone, served) in [("100.64.1.2", true), ("100.64.2.2", false)] {
        let o = one(
            &mut h,
            &udp(
                &format!("{phone}:5060"),
                "192.0.2.20:5060",
                invite(phone).as_bytes(),
                false,
            ),
            Inside,
            1001,
            Outside,
        );
        let t = text(&o, 42);
        assert_eq!(!t.contains(phone), served, "{phone}: {t}");
    }
    assert_eq!(h.counters.alg_subscriber_off[usize::from(ALG_SIP)].get(), 1);
}

#[test]
fn a_reload_changes_the_subscribers_for_new_sessions() {
    let mut h = harness("");
    let t = port_from(&mut h, "100.64.8.5", "100,64,8,5,19,137");
    assert!(t.starts_with("PORT 198,51,100,"), "{t}");
    h.reconfigure(
        &config("[alg]\nftp = { except = [\"100.64.8.0/24\"] }"),
        1002,
    );
    let t = port_from(&mut h, "100.64.8.6", "100,64,8,6,19,137");
    assert_eq!(t, "PORT 100,64,8,6,19,137\r\n");
}

/// With syslog on, an ALG left off for a subscriber is logged as an `alg-policy`
/// decision (`subscriber_off`, the session's endpoints, no command refused); without
/// it, only counted.
#[test]
fn an_alg_left_off_for_a_subscriber_is_logged_with_syslog_on() {
    use cgnat_dataplane::log::{event, syslog_line};
    let policy = |h: &mut Harness| -> Vec<String> {
        let ev = h.worker.nat.events();
        let lines = ev
            .iter()
            .filter(|e| e.kind == event::ALG_POLICY)
            .map(|e| syslog_line(e, "h", "T"))
            .collect();
        ev.clear();
        lines
    };
    let except = "[alg]\nftp = { except = [\"100.64.8.0/24\"] }\n";
    let mut h = harness(&format!(
        "{except}[logging]\nsyslog = {{ server = \"127.0.0.1:514\" }}\n"
    ));
    port_from(&mut h, "100.64.1.2", "100,64,1,2,19,137");
    assert_eq!(
        policy(&mut h),
        Vec::<String>::new(),
        "served: nothing to log"
    );
    port_from(&mut h, "100.64.8.5", "100,64,8,5,19,137");
    let lines = policy(&mut h);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let l = &lines[0];
    assert!(
        l.starts_with("<132>1 T h cgnat - alg-policy [nat@32473 alg=\"ftp\" decision=\"subscriber_off\" inside=\"100.64.8.5:40000\" outside=\"198.51.100."),
        "{l}"
    );
    assert!(l.ends_with(" remote=\"192.0.2.10:21\"]"), "{l}");
    assert_eq!(h.counters.alg_subscriber_off[usize::from(ALG_FTP)].get(), 1);

    let mut h = harness(except);
    port_from(&mut h, "100.64.8.5", "100,64,8,5,19,137");
    assert_eq!(
        policy(&mut h),
        Vec::<String>::new(),
        "no syslog: counted only"
    );
    assert_eq!(h.counters.alg_subscriber_off[usize::from(ALG_FTP)].get(), 1);
}
