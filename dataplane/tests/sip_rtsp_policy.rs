//! The SIP and RTSP ALGs' request policy (`alg.sip.deny_methods`, `max_message_size`,
//! `deny_status`, `alg.rtsp.deny_methods`, `on_deny`) on the harness: a refused
//! request never reaches the server; the client gets the protocol's response in the
//! server's name, over UDP as a datagram of its own, over TCP in the server's sequence
//! space.

mod common;
use cgnat_dataplane::counters::{AlgEvent, DropReason};
use cgnat_dataplane::harness::{Harness, INSIDE_MAC, OUTSIDE_MAC};
use cgnat_dataplane::pipeline::Side::{self, Inside, Outside};
use common::*;
use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use std::net::SocketAddrV4;

const PHONE: &str = "100.64.1.2:5060";
const PROXY: &str = "192.0.2.20:5060";

fn request(method: &str, pad: usize) -> String {
    format!(
        "{method} sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 100.64.1.2:5060;branch=z9hG4bK-7;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@100.64.1.2>;tag=a1\r\nTo: <sip:bob@192.0.2.20>\r\n\
         Call-ID: c7@100.64.1.2\r\nCSeq: 3 {method}\r\nContact: <sip:alice@100.64.1.2:5060>\r\n\
         X-Pad: {}\r\nContent-Length: 0\r\n\r\n",
        "x".repeat(pad)
    )
}

/// What left, by side: (source, destination, L4 payload).
type Out = Vec<(SocketAddrV4, SocketAddrV4, String)>;

fn sides(o: Vec<(Side, Vec<u8>)>) -> (Out, Out) {
    let (mut i, mut x) = (Vec::new(), Vec::new());
    for (s, f) in o {
        assert!(checksums_ok(&f), "checksums: {f:02x?}");
        let a = out(&f);
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let text = match p.transport {
            Some(TransportSlice::Udp(u)) => String::from_utf8_lossy(u.payload()).into_owned(),
            Some(TransportSlice::Tcp(t)) => String::from_utf8_lossy(t.payload()).into_owned(),
            _ => panic!("not UDP or TCP"),
        };
        match s {
            Inside => i.push((a.src, a.dst, text)),
            Outside => x.push((a.src, a.dst, text)),
        }
    }
    (i, x)
}

fn sip_harness(sip: &str) -> Harness {
    harness(&format!("[alg]\nsip = {{ enabled = true, {sip} }}"))
}

#[test]
fn a_denied_sip_method_gets_405_with_the_dialog_headers_and_never_leaves() {
    let mut h = sip_harness("deny_methods = [\"MESSAGE\", \"SUBSCRIBE\"]");
    let (back, sent) = sides(h.inject(
        &udp(PHONE, PROXY, request("MESSAGE", 0).as_bytes(), false),
        Inside,
        1001,
    ));
    assert!(sent.is_empty(), "{sent:?}");
    assert_eq!(back.len(), 1);
    let (src, dst, r) = &back[0];
    assert_eq!((*src, *dst), (sa(PROXY), sa(PHONE)));
    assert!(r.starts_with("SIP/2.0 405 Method Not Allowed\r\n"), "{r}");
    for h in [
        "Via: SIP/2.0/UDP 100.64.1.2:5060;branch=z9hG4bK-7;rport\r\n",
        "From: <sip:alice@100.64.1.2>;tag=a1\r\n",
        "Call-ID: c7@100.64.1.2\r\n",
        "CSeq: 3 MESSAGE\r\n",
    ] {
        assert!(r.contains(h), "{h} missing in {r}");
    }
    assert!(r.contains("To: <sip:bob@192.0.2.20>;tag=cgnat"), "{r}");
    let allow = r.lines().find(|l| l.starts_with("Allow: ")).expect("Allow");
    assert!(
        allow.contains("INVITE") && !allow.contains("MESSAGE") && !allow.contains("SUBSCRIBE"),
        "{allow}"
    );
    assert!(
        r.ends_with("Content-Length: 0\r\n\r\n") && !r.contains("X-Pad"),
        "{r}"
    );
    assert_eq!(h.counters.alg_sip[AlgEvent::PolicyReply as usize].get(), 1);
    assert_eq!(h.counters.dropped(DropReason::AlgPolicy), 1);
    // Another method goes on, rewritten as ever.
    let (back, sent) = sides(h.inject(
        &udp(PHONE, PROXY, request("OPTIONS", 0).as_bytes(), false),
        Inside,
        1002,
    ));
    assert!(back.is_empty());
    assert!(
        sent[0].2.starts_with("OPTIONS ") && !sent[0].2.contains("100.64.1.2"),
        "{}",
        sent[0].2
    );
}

#[test]
fn deny_status_403_and_a_too_large_message_gets_513() {
    let mut h =
        sip_harness("deny_methods = [\"MESSAGE\"], deny_status = 403, max_message_size = 1024");
    let (back, _) = sides(h.inject(
        &udp(PHONE, PROXY, request("MESSAGE", 0).as_bytes(), false),
        Inside,
        1001,
    ));
    assert!(
        back[0].2.starts_with("SIP/2.0 403 Forbidden\r\n") && !back[0].2.contains("Allow:"),
        "{}",
        back[0].2
    );
    let (back, sent) = sides(h.inject(
        &udp(PHONE, PROXY, request("INVITE", 1100).as_bytes(), false),
        Inside,
        1002,
    ));
    assert!(sent.is_empty());
    assert!(
        back[0].2.starts_with("SIP/2.0 513 Message Too Large\r\n"),
        "{}",
        back[0].2
    );
    assert!(back[0].2.contains("CSeq: 3 INVITE\r\n"));
    // Below the limit: on its way.
    let (_, sent) = sides(h.inject(
        &udp(PHONE, PROXY, request("INVITE", 500).as_bytes(), false),
        Inside,
        1003,
    ));
    assert!(sent[0].2.starts_with("INVITE "));
}

#[test]
fn on_deny_drop_and_a_denied_ack_send_nothing() {
    let mut h = sip_harness("deny_methods = [\"MESSAGE\", \"ACK\"], on_deny = \"drop\"");
    none(
        &mut h,
        &udp(PHONE, PROXY, request("MESSAGE", 0).as_bytes(), false),
        Inside,
        1001,
    );
    let mut h2 = sip_harness("deny_methods = [\"ACK\"]");
    none(
        &mut h2,
        &udp(PHONE, PROXY, request("ACK", 0).as_bytes(), false),
        Inside,
        1001,
    );
    assert_eq!(h.counters.alg_sip[AlgEvent::PolicyDrop as usize].get(), 1);
    assert_eq!(h2.counters.alg_sip[AlgEvent::PolicyDrop as usize].get(), 1);
}

/// A TCP segment with ACK and PSH.
fn seg(src: &str, dst: &str, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let (s, d) = (sa(src), sa(dst));
    let inbound = !s.ip().octets().starts_with(&[100, 64]);
    let (smac, dmac) = if inbound {
        (GW_MAC, OUTSIDE_MAC)
    } else {
        (HOST_MAC, INSIDE_MAC)
    };
    let mut v = Vec::new();
    PacketBuilder::ethernet2(smac, dmac)
        .ipv4(s.ip().octets(), d.ip().octets(), 64)
        .tcp(s.port(), d.port(), seq, 29200)
        .ack(ack)
        .psh()
        .write(&mut v, payload)
        .unwrap();
    v
}

fn seq_ack(f: &[u8]) -> (u32, u32) {
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(TransportSlice::Tcp(t)) = p.transport else {
        panic!()
    };
    (t.sequence_number(), t.acknowledgment_number())
}

#[test]
fn a_denied_rtsp_method_over_tcp_gets_405_and_the_session_goes_on() {
    let mut h =
        harness("[alg]\nrtsp = { enabled = true, deny_methods = [\"RECORD\", \"ANNOUNCE\"] }");
    let (client, server) = ("100.64.1.2:40000", "192.0.2.30:554");
    let c = connect(&mut h, client, server, 500).to_string();
    let rec = b"RECORD rtsp://192.0.2.30/cam RTSP/1.0\r\nCSeq: 5\r\nSession: 12345678\r\n\r\n";
    let n = rec.len() as u32;
    let o = h.inject(&seg(client, server, 101, 501, rec), Inside, 1001);
    let frames: Vec<(Side, Vec<u8>)> = o.clone();
    let (back, sent) = sides(o);
    assert_eq!(sent[0].2, "", "a bare ack reaches the server");
    let reply = &back[0].2;
    assert!(
        reply.starts_with("RTSP/1.0 405 Method Not Allowed\r\nCSeq: 5\r\nAllow: "),
        "{reply}"
    );
    assert!(
        !reply.contains("RECORD") && reply.contains("PLAY"),
        "{reply}"
    );
    let r = reply.len() as u32;
    let to_client = frames.iter().find(|(s, _)| *s == Inside).unwrap();
    assert_eq!(seq_ack(&to_client.1), (501, 101 + n));
    // The next request reaches the server in its numbering; its answer the client in
    // the client's.
    let play = b"PLAY rtsp://192.0.2.30/cam RTSP/1.0\r\nCSeq: 6\r\nSession: 12345678\r\n\r\n";
    let o = h.inject(&seg(client, server, 101 + n, 501 + r, play), Inside, 1002);
    let (side, f) = &o[0];
    assert_eq!(*side, Outside);
    assert_eq!(seq_ack(f), (101, 501));
    let ok = b"RTSP/1.0 200 OK\r\nCSeq: 6\r\nSession: 12345678\r\n\r\n";
    let o = h.inject(
        &seg(server, &c, 501, 101 + play.len() as u32, ok),
        Outside,
        1002,
    );
    assert_eq!(seq_ack(&o[0].1), (501 + r, 101 + n + play.len() as u32));
    assert_eq!(h.counters.alg_rtsp[AlgEvent::PolicyReply as usize].get(), 1);
}

#[test]
fn a_denied_sip_request_over_tcp_gets_its_response_in_sequence() {
    let mut h = sip_harness("deny_methods = [\"MESSAGE\"]");
    connect(&mut h, "100.64.1.2:40000", PROXY, 500);
    let m = request("MESSAGE", 0).replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    let o = h.inject(
        &seg("100.64.1.2:40000", PROXY, 101, 501, m.as_bytes()),
        Inside,
        1001,
    );
    let reply = o.iter().find(|(s, _)| *s == Inside).expect("a response");
    let sent = o.iter().find(|(s, _)| *s == Outside).expect("a bare ack");
    assert_eq!(seq_ack(&reply.1), (501, 101 + m.len() as u32));
    assert_eq!(seq_ack(&sent.1), (101, 501));
    assert!(String::from_utf8_lossy(&reply.1[54..]).starts_with("SIP/2.0 405 "));
    assert_eq!(
        sent.1.len(),
        54,
        "nothing of the request reaches the server"
    );
}

/// A request larger than the MTU comes in fragments: reassembled, refused whole, and
/// answered (none of its fragments leaves).
#[test]
fn a_fragmented_request_over_the_limit_gets_513() {
    let mut h = sip_harness("max_message_size = 2048");
    let frags = fragment(
        &udp(PHONE, PROXY, request("INVITE", 3000).as_bytes(), false),
        &[1480, 2960],
    );
    let mut got = Vec::new();
    for f in &frags {
        got.extend(h.inject(f, Inside, 1001));
    }
    let (back, sent) = sides(got);
    assert!(sent.is_empty(), "{sent:?}");
    let drops: Vec<_> = DropReason::ALL
        .iter()
        .map(|r| (r.label(), h.counters.dropped(*r), h.counters.dropped(*r)))
        .filter(|x| x.1 + x.2 > 0)
        .collect();
    assert!(!back.is_empty(), "{drops:?}");
    assert!(
        back[0].2.starts_with("SIP/2.0 513 Message Too Large\r\n"),
        "{}",
        back[0].2
    );
    assert_eq!(
        h.counters.dropped(DropReason::AlgPolicy),
        frags.len() as u64
    );
}

/// The worker plans nothing for a refused request: a denied INVITE's SDP opens no
/// media pinhole.
#[test]
fn a_refused_invite_opens_no_pinhole() {
    let sdp = "v=0\r\no=a 1 1 IN IP4 100.64.1.2\r\ns=-\r\nc=IN IP4 100.64.1.2\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";
    let invite = request("INVITE", 0).replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    );
    for (cfg, pinholes) in [
        ("deny_methods = [\"INVITE\"]", 0),
        ("deny_methods = [\"MESSAGE\"]", 1),
    ] {
        let mut h = sip_harness(cfg);
        h.inject(&udp(PHONE, PROXY, invite.as_bytes(), false), Inside, 1001);
        assert_eq!(
            h.counters.alg_sip[AlgEvent::MediaPairs as usize].get(),
            pinholes,
            "{cfg}"
        );
    }
}

/// Bytes the server sent that the client has not acknowledged yet (in flight when it
/// sends its request): the response goes after them, not over them.
#[test]
fn a_response_goes_after_the_servers_bytes_in_flight() {
    let mut h = harness("[alg]\nrtsp = { enabled = true, deny_methods = [\"RECORD\"] }");
    let (client, server) = ("100.64.1.2:40000", "192.0.2.30:554");
    let c = connect(&mut h, client, server, 500).to_string();
    let note = b"ANNOUNCE rtsp://100.64.1.2/x RTSP/1.0\r\nCSeq: 1\r\n\r\n";
    h.inject(&seg(server, &c, 501, 101, note), Outside, 1001);
    // The client's request acks only what came before the server's message.
    let rec = b"RECORD rtsp://192.0.2.30/cam RTSP/1.0\r\nCSeq: 5\r\n\r\n";
    let o = h.inject(&seg(client, server, 101, 501, rec), Inside, 1002);
    let back = o.iter().find(|(s, _)| *s == Inside).expect("a response");
    assert_eq!(seq_ack(&back.1).0, 501 + note.len() as u32);
}
