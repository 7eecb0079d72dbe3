//! The FTP ALG's command policy (`alg.ftp.deny`, `allow`, `bounce`, `low_port`,
//! `on_deny`) on the harness: what the server sees, what the client sees, and that
//! both sides' sequence numbers stay continuous across the refused command, the next
//! one and a data transfer.

mod common;
use cgnat_dataplane::counters::DropReason;
use cgnat_dataplane::harness::{Harness, INSIDE_MAC};
use cgnat_dataplane::pipeline::Side::{self, Inside, Outside};
use common::*;
use etherparse::{PacketBuilder, SlicedPacket, TcpOptionElement, TransportSlice};
use std::net::SocketAddrV4;

const CLIENT: &str = "100.64.1.2:40000";
const SERVER: &str = "192.0.2.10:21";
const REFUSED: &str = "504 Command not allowed by policy.\r\n";

/// A TCP segment with the ACK flag, `ack`, and timestamps when given.
fn seg(
    src: &str,
    dst: &str,
    seq: u32,
    ack: u32,
    payload: &[u8],
    ts: Option<(u32, u32)>,
) -> Vec<u8> {
    let (s, d) = (sa(src), sa(dst));
    let inbound = !s.ip().octets().starts_with(&[100, 64]);
    let (smac, dmac) = if inbound {
        (GW_MAC, cgnat_dataplane::harness::OUTSIDE_MAC)
    } else {
        (HOST_MAC, INSIDE_MAC)
    };
    let mut b = PacketBuilder::ethernet2(smac, dmac)
        .ipv4(s.ip().octets(), d.ip().octets(), 64)
        .tcp(s.port(), d.port(), seq, 29200)
        .ack(ack)
        .psh();
    if let Some((val, ecr)) = ts {
        b = b
            .options(&[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::Timestamp(val, ecr),
            ])
            .unwrap();
    }
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// A segment as it left: addresses, seq, ack, payload, timestamps, window.
#[derive(Debug)]
struct Seg {
    src: SocketAddrV4,
    dst: SocketAddrV4,
    seq: u32,
    ack: u32,
    text: String,
    ts: Option<(u32, u32)>,
    window: u16,
}

fn parse(f: &[u8]) -> Seg {
    assert!(checksums_ok(f), "checksums: {f:02x?}");
    let o = out(f);
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(TransportSlice::Tcp(t)) = p.transport else {
        panic!("not TCP")
    };
    let ts = t.options_iterator().find_map(|o| match o {
        Ok(TcpOptionElement::Timestamp(a, b)) => Some((a, b)),
        _ => None,
    });
    Seg {
        src: o.src,
        dst: o.dst,
        seq: t.sequence_number(),
        ack: t.acknowledgment_number(),
        text: String::from_utf8_lossy(t.payload()).into_owned(),
        ts,
        window: t.window_size(),
    }
}

/// The frames that left each side.
fn sides(o: Vec<(Side, Vec<u8>)>) -> (Vec<Seg>, Vec<Seg>) {
    let (mut i, mut x) = (Vec::new(), Vec::new());
    for (s, f) in o {
        match s {
            Inside => i.push(parse(&f)),
            Outside => x.push(parse(&f)),
        }
    }
    (i, x)
}

/// A control connection (client ISN 100, server ISN 500) past the server's banner
/// (`220 ready\r\n`, 11 bytes: the client is at 101, the server at 512); returns the
/// harness and the client's outside endpoint.
/// A client's segment (window 512) at `seq` carrying `text` at `now`: what reaches
/// the client and what reaches the server.
fn from_client(h: &mut Harness, seq: u32, text: &[u8], now: u32) -> (Vec<Seg>, Vec<Seg>) {
    sides(h.inject(&seg(CLIENT, SERVER, seq, 512, text, None), Inside, now))
}

fn session(alg: &str) -> (Harness, SocketAddrV4) {
    let mut h = harness(&format!("[alg]\nftp = {{ {alg} }}"));
    let c = connect(&mut h, CLIENT, SERVER, 500);
    let o = one(
        &mut h,
        &seg(SERVER, &c.to_string(), 501, 101, b"220 ready\r\n", None),
        Outside,
        1001,
        Inside,
    );
    assert_eq!(parse(&o).text, "220 ready\r\n");
    (h, c)
}

#[test]
fn a_denied_command_gets_504_and_never_reaches_the_server() {
    let (mut h, c) = session("deny = [\"SITE\", \"DELE\"]");
    let cs = c.to_string();
    let site = b"SITE CHMOD 777 f\r\n";
    let n = site.len() as u32;
    let r = REFUSED.len() as u32;
    let (to_client, to_server) = from_client(&mut h, 101, site, 1002);
    // The server gets a bare ack: the command's bytes left the stream.
    assert_eq!(to_server.len(), 1, "{to_server:?}");
    assert_eq!(to_server[0].text, "");
    assert_eq!((to_server[0].seq, to_server[0].ack), (101, 512));
    // The client gets the refusal from the server's endpoint, right after the banner,
    // acking the command.
    assert_eq!(to_client.len(), 1, "{to_client:?}");
    let reply = &to_client[0];
    assert_eq!(reply.text, REFUSED);
    assert_eq!((reply.src, reply.dst), (sa(SERVER), sa(CLIENT)));
    assert_eq!((reply.seq, reply.ack), (512, 101 + n));
    assert_eq!(reply.window, 29200, "the server's last window");
    assert_eq!(h.counters.alg_ftp_policy_reply.get(), 1);
    // Logged for the exporter: the ALG, the decision, the endpoints, the command.
    let ev = h.worker.alg_control().events().clone();
    assert_eq!(ev.len(), 1);
    let line = cgnat_dataplane::log::syslog_line(&ev[0], "h", "T");
    assert!(
        line.contains("alg=\"ftp\" decision=\"reply\" inside=\"100.64.1.2:40000\"")
            && line.contains("remote=\"192.0.2.10:21\" refused=\"SITE\"]"),
        "{line}"
    );

    // The client acks the reply and sends its next command: the server sees it right
    // after the banner's ack, acking only what it sent.
    let (to_client, to_server) = sides(h.inject(
        &seg(CLIENT, SERVER, 101 + n, 512 + r, b"PWD\r\n", None),
        Inside,
        1003,
    ));
    assert!(to_client.is_empty());
    assert_eq!(to_server[0].text, "PWD\r\n");
    assert_eq!((to_server[0].seq, to_server[0].ack), (101, 512));
    // The server's answer reaches the client after the refusal, acking all it sent.
    let (to_client, _) = sides(h.inject(
        &seg(SERVER, &cs, 512, 106, b"257 \"/\"\r\n", None),
        Outside,
        1003,
    ));
    assert_eq!(to_client[0].text, "257 \"/\"\r\n");
    assert_eq!((to_client[0].seq, to_client[0].ack), (512 + r, 101 + n + 5));

    // A PORT and its data connection work as ever.
    let port = b"PORT 100,64,1,2,19,137\r\n";
    let (_, to_server) = sides(h.inject(
        &seg(CLIENT, SERVER, 106 + n, 521 + r, port, None),
        Inside,
        1004,
    ));
    let t = &to_server[0];
    assert!(t.text.starts_with("PORT 198,51,100,"), "{}", t.text);
    assert_eq!((t.seq, t.ack), (106, 521));
    let nums: Vec<u16> = t.text[5..t.text.len() - 2]
        .split(',')
        .map(|x| x.parse().unwrap())
        .collect();
    let data = format!(
        "{}.{}.{}.{}:{}",
        nums[0],
        nums[1],
        nums[2],
        nums[3],
        nums[4] << 8 | nums[5]
    );
    let grown = t.text.len() as u32 - port.len() as u32;
    let (to_client, _) = sides(h.inject(
        &seg(
            SERVER,
            &cs,
            521,
            106 + t.text.len() as u32,
            b"200 PORT ok\r\n",
            None,
        ),
        Outside,
        1004,
    ));
    assert_eq!(
        (to_client[0].seq, to_client[0].ack),
        (521 + r, 106 + n + port.len() as u32)
    );
    let syn = one(
        &mut h,
        &tcp("192.0.2.10:20", &data, 7000, "S", b"", true),
        Outside,
        1005,
        Inside,
    );
    assert_eq!(out(&syn).dst, sa("100.64.1.2:5001"));
    // And later commands still line up (the PORT grew the stream by `grown`).
    let (_, to_server) = sides(h.inject(
        &seg(CLIENT, SERVER, 130 + n, 534 + r, b"DELE f\r\n", None),
        Inside,
        1006,
    ));
    assert_eq!(to_server[0].text, "", "DELE is denied too");
    assert_eq!(to_server[0].seq, 130 + grown);
    assert_eq!(h.counters.alg_ftp_policy_reply.get(), 2);
}

#[test]
fn a_retransmitted_denied_command_gets_the_same_reply_once_in_sequence() {
    let (mut h, c) = session("deny = [\"SITE\"]");
    let site = seg(CLIENT, SERVER, 101, 512, b"SITE X\r\n", Some((1000, 77)));
    let (first, _) = sides(h.inject(&site, Inside, 1002));
    let (again, to_server) = sides(h.inject(&site, Inside, 1003));
    assert_eq!(to_server[0].text, "");
    assert_eq!(again[0].seq, first[0].seq);
    assert_eq!(again[0].text, first[0].text);
    // Timestamps: the server's last (the client's TSecr) and the client's own.
    assert_eq!(first[0].ts, Some((77, 1000)));
    // The server's next bytes are shifted by one reply, not two.
    let (to_client, _) = sides(h.inject(
        &seg(SERVER, &c.to_string(), 512, 101, b"421 bye\r\n", None),
        Outside,
        1004,
    ));
    assert_eq!(to_client[0].seq, 512 + REFUSED.len() as u32);
}

#[test]
fn two_refusals_in_a_row_stack() {
    let (mut h, c) = session("deny = [\"SITE\"]");
    let r = REFUSED.len() as u32;
    let (a, _) = from_client(&mut h, 101, b"SITE A\r\n", 1002);
    let (b, to_server) = sides(h.inject(
        &seg(CLIENT, SERVER, 109, 512 + r, b"SITE B\r\nNOOP\r\n", None),
        Inside,
        1003,
    ));
    assert_eq!((a[0].seq, b[0].seq), (512, 512 + r));
    // NOOP after the refused command: it goes on, at the server's numbering.
    assert_eq!(to_server[0].text, "NOOP\r\n");
    assert_eq!((to_server[0].seq, to_server[0].ack), (101, 512));
    let (to_client, _) = sides(h.inject(
        &seg(SERVER, &c.to_string(), 512, 107, b"200 ok\r\n", None),
        Outside,
        1004,
    ));
    assert_eq!((to_client[0].seq, to_client[0].ack), (512 + 2 * r, 123));
}

#[test]
fn bounce_and_low_data_ports_are_refused_by_default() {
    let (mut h, _) = session("");
    let (to_client, to_server) = from_client(&mut h, 101, b"PORT 192,0,2,99,0,25\r\n", 1002);
    assert_eq!(to_server[0].text, "");
    assert_eq!(
        to_client[0].text,
        "504 Data connection to another host not allowed by policy.\r\n"
    );
    let (mut h, _) = session("");
    let (to_client, to_server) = sides(h.inject(
        &seg(
            CLIENT,
            SERVER,
            101,
            512,
            b"EPRT |1|100.64.1.2|25|\r\n",
            None,
        ),
        Inside,
        1002,
    ));
    assert_eq!(to_server[0].text, "");
    assert_eq!(
        to_client[0].text,
        "504 Data port not allowed by policy.\r\n"
    );
    assert_eq!(h.counters.expectations_created.get(), 0);
    // "pass": today's behaviour (nothing opened, the command goes on).
    let (mut h, _) = session("bounce = \"pass\", low_port = \"pass\"");
    let (to_client, to_server) = from_client(&mut h, 101, b"PORT 192,0,2,99,0,25\r\n", 1002);
    assert!(to_client.is_empty());
    assert_eq!(to_server[0].text, "PORT 192,0,2,99,0,25\r\n");
}

#[test]
fn an_allow_list_refuses_everything_else() {
    let (mut h, _) = session("allow = [\"USER\", \"PASS\", \"RETR\"]");
    let (to_client, to_server) = from_client(&mut h, 101, b"USER a\r\n", 1002);
    assert!(to_client.is_empty());
    assert_eq!(to_server[0].text, "USER a\r\n");
    let (to_client, to_server) = from_client(&mut h, 109, b"stor f\r\n", 1003);
    assert_eq!(to_server[0].text, "");
    assert_eq!(to_client[0].text, REFUSED);
}

/// Under `on_deny = "drop"`, and for a refused command pipelined behind another in one
/// segment (its reply could not go before the server's reply to the first), the
/// segment is dropped.
#[test]
fn on_deny_drop_and_a_pipelined_refusal_drop_the_segment() {
    for (cfg, text) in [
        ("deny = [\"SITE\"], on_deny = \"drop\"", &b"SITE X\r\n"[..]),
        ("deny = [\"SITE\"]", b"NOOP\r\nSITE X\r\n"),
    ] {
        let (mut h, _) = session(cfg);
        none(
            &mut h,
            &seg(CLIENT, SERVER, 101, 512, text, None),
            Inside,
            1002,
        );
        assert_eq!(h.counters.dropped(DropReason::AlgPolicy), 1);
        assert_eq!(h.counters.alg_ftp_policy_drop.get(), 1);
    }
}

#[test]
fn a_denied_command_cut_in_two_is_held_and_refused() {
    let (mut h, _) = session("deny = [\"SITE\"]");
    none(
        &mut h,
        &seg(CLIENT, SERVER, 101, 512, b"SI", None),
        Inside,
        1002,
    );
    let (to_client, to_server) = from_client(&mut h, 103, b"TE CHMOD 777 f\r\n", 1002);
    assert_eq!(
        to_server
            .iter()
            .map(|s| s.text.as_str())
            .collect::<String>(),
        ""
    );
    assert_eq!(to_client[0].text, REFUSED);
    assert_eq!(to_client[0].ack, 101 + 18);
    // Both pieces left the stream: the next command follows the banner's ack.
    let r = REFUSED.len() as u32;
    let (_, to_server) = sides(h.inject(
        &seg(CLIENT, SERVER, 119, 512 + r, b"PWD\r\n", None),
        Inside,
        1003,
    ));
    assert_eq!((to_server[0].seq, to_server[0].ack), (101, 512));
}

#[test]
fn the_policy_follows_a_reload() {
    let (mut h, _) = session("");
    let site = |seq, t: &[u8]| seg(CLIENT, SERVER, seq, 512, t, None);
    let (to_client, _) = sides(h.inject(&site(101, b"SITE X\r\n"), Inside, 1002));
    assert!(to_client.is_empty(), "no policy yet");
    h.reconfigure(&config("[alg]\nftp = { deny = [\"SITE\"] }"), 1003);
    let (to_client, _) = sides(h.inject(&site(109, b"SITE Y\r\n"), Inside, 1003));
    assert_eq!(to_client[0].text, REFUSED);
}

/// Under an allow list, a client's unfinished line that may still become a refused
/// command is held; a server's reply (digits) and an allowed command's unfinished
/// line are not.
#[test]
fn only_what_may_become_a_refused_command_is_held() {
    let (mut h, _) = session("allow = [\"USER\", \"RETR\"]");
    let (_, to_server) = from_client(&mut h, 101, b"RETR fi", 1002);
    assert_eq!(to_server[0].text, "RETR fi", "an allowed command goes on");
    none(
        &mut h,
        &seg(CLIENT, SERVER, 108, 512, b"le\r\nST", None),
        Inside,
        1002,
    );
    assert_eq!(h.counters.alg_ftp_held.get(), 1, "STOR or STAT may follow");
    let (mut h, _) = session("deny = [\"SITE\"]");
    let (_, to_server) = from_client(&mut h, 101, b"RETR fi", 1002);
    assert_eq!(to_server[0].text, "RETR fi");
    let (_, to_server) = from_client(&mut h, 108, b"le\r\n220-multi", 1002);
    assert_eq!(
        to_server[0].text, "le\r\n220-multi",
        "digits never start a command"
    );
    assert_eq!(h.counters.alg_ftp_held.get(), 0);
}
