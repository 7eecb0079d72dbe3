//! The SIP and RTSP ALGs through the pipeline (worker and control lcore, no EAL):
//! rewrites in exactly the places that carry endpoints, RTP/RTCP pinhole pairs on an
//! even outside port under the strictest filtering, pinholes ended by BYE and TEARDOWN,
//! registrations that let incoming calls in, messages split across TCP segments held
//! and joined, bad input passed untouched with no pinhole.

mod common;

use cgnat_dataplane::counters::AlgEvent;
use cgnat_dataplane::pipeline::Side::{Inside, Outside};
use common::*;
use std::net::SocketAddrV4;

const STRICT: &str = "filtering = \"address-and-port-dependent\"\n[alg]\nsip = { enabled = true, ports = [5060] }\nrtsp = { enabled = true, ports = [554, 8554] }";

fn udp_payload(f: &[u8]) -> String {
    String::from_utf8_lossy(&f[42..]).into_owned()
}

fn tcp_payload(f: &[u8]) -> String {
    String::from_utf8_lossy(&f[54..]).into_owned()
}

fn invite(call: &str, media_port: u16) -> String {
    let sdp = format!(
        "v=0\r\no=alice 1 1 IN IP4 100.64.1.2\r\ns=-\r\nc=IN IP4 100.64.1.2\r\nt=0 0\r\nm=audio {media_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    );
    format!(
        "INVITE sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 100.64.1.2:5060;branch=z9hG4bK-1;rport\r\nFrom: <sip:alice@100.64.1.2>;tag=a1\r\nTo: <sip:bob@192.0.2.20>\r\nCall-ID: {call}@100.64.1.2\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@100.64.1.2:5060>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// A datagram from the phone (100.64.1.2:5060) to the proxy (192.0.2.20:5060) at `now`;
/// the one frame that leaves the outside port.
fn from_phone(h: &mut cgnat_dataplane::harness::Harness, payload: &[u8], now: u32) -> Vec<u8> {
    one(
        h,
        &udp("100.64.1.2:5060", "192.0.2.20:5060", payload, false),
        Inside,
        now,
        Outside,
    )
}

fn header<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

fn media_port(text: &str) -> u16 {
    header(text, "m=audio ")
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap()
}

fn content_length_ok(text: &str) {
    let cl: usize = header(text, "Content-Length: ")[16..]
        .trim()
        .parse()
        .unwrap();
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    assert_eq!(cl, body.len(), "{text}");
}

#[test]
fn invite_is_rewritten_only_where_endpoints_stand_and_media_gets_an_even_pair() {
    let mut h = harness(STRICT);
    let text = invite("c1", 30000);
    let o = from_phone(&mut h, text.as_bytes(), 1000);
    let sig = out(&o).src;
    let t = udp_payload(&o);
    assert!(!t.contains("100.64.1.2"), "inside address leaked:\n{t}");
    let pub_ip = sig.ip().to_string();
    assert_eq!(
        header(&t, "Via: "),
        format!(
            "Via: SIP/2.0/UDP {pub_ip}:{};branch=z9hG4bK-1;rport",
            sig.port()
        )
    );
    assert_eq!(
        header(&t, "Contact: "),
        format!("Contact: <sip:alice@{pub_ip}:{}>", sig.port())
    );
    assert_eq!(
        header(&t, "From: "),
        format!("From: <sip:alice@{pub_ip}:{}>;tag=a1", sig.port())
    );
    assert_eq!(header(&t, "Call-ID: "), format!("Call-ID: c1@{pub_ip}"));
    // Untouched headers stay byte for byte.
    assert_eq!(header(&t, "To: "), "To: <sip:bob@192.0.2.20>");
    assert_eq!(header(&t, "Max-Forwards: "), "Max-Forwards: 70");
    assert_eq!(header(&t, "c="), format!("c=IN IP4 {pub_ip}"));
    content_length_ok(&t);
    let rtp = media_port(&t);
    assert_eq!(rtp % 2, 0, "RTP on an even port");
    assert_eq!(h.counters.alg_sip[AlgEvent::MediaPairs as usize].get(), 1);
    // Media from the callee (any source until its answer) reaches the caller's ports
    // under address-and-port-dependent filtering: RTP and RTCP on the next port.
    let m = out(&one(
        &mut h,
        &udp("192.0.2.30:40000", &format!("{pub_ip}:{rtp}"), b"rtp", true),
        Outside,
        1001,
        Inside,
    ));
    assert_eq!(m.dst, sa("100.64.1.2:30000"));
    let m = out(&one(
        &mut h,
        &udp(
            "192.0.2.30:40001",
            &format!("{pub_ip}:{}", rtp + 1),
            b"rtcp",
            true,
        ),
        Outside,
        1001,
        Inside,
    ));
    assert_eq!(m.dst, sa("100.64.1.2:30001"));
    // The caller's own RTP leaves from the announced port.
    let r = out(&one(
        &mut h,
        &udp("100.64.1.2:30000", "192.0.2.30:40000", b"rtp", false),
        Inside,
        1001,
        Outside,
    ));
    assert_eq!(r.src, SocketAddrV4::new(*sig.ip(), rtp));
}

#[test]
fn responses_are_translated_back_and_bye_ends_the_pinholes() {
    let mut h = harness(STRICT);
    let o = one(
        &mut h,
        &udp(
            "100.64.1.2:5060",
            "192.0.2.20:5060",
            invite("c2", 30002).as_bytes(),
            false,
        ),
        Inside,
        1000,
        Outside,
    );
    let sig = out(&o).src;
    let pub_ip = sig.ip().to_string();
    let before = h.worker.nat().expectations().count();
    assert_eq!(before, 2, "RTP and RTCP pinholes");
    // The callee answers with the Via it received plus received/rport: the caller
    // sees its own Via again.
    let sdp = "v=0\r\nc=IN IP4 192.0.2.30\r\nm=audio 40000 RTP/AVP 0\r\n";
    let resp = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {pub_ip}:{p};branch=z9hG4bK-1;rport={p};received={pub_ip}\r\nFrom: <sip:alice@{pub_ip}:{p}>;tag=a1\r\nTo: <sip:bob@192.0.2.20>;tag=b1\r\nCall-ID: c2@{pub_ip}\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@192.0.2.20>\r\nContent-Type: application/sdp\r\nContent-Length: {n}\r\n\r\n{sdp}",
        p = sig.port(),
        n = sdp.len()
    );
    let back = one(
        &mut h,
        &udp("192.0.2.20:5060", &sig.to_string(), resp.as_bytes(), true),
        Outside,
        1001,
        Inside,
    );
    let t = udp_payload(&back);
    assert_eq!(
        header(&t, "Via: "),
        "Via: SIP/2.0/UDP 100.64.1.2:5060;branch=z9hG4bK-1;rport=5060;received=100.64.1.2"
    );
    assert_eq!(header(&t, "Call-ID: "), "Call-ID: c2@100.64.1.2");
    assert_eq!(
        header(&t, "From: "),
        "From: <sip:alice@100.64.1.2:5060>;tag=a1"
    );
    // The answer named the callee's media address: the pinholes now take only it.
    assert!(h
        .worker
        .nat()
        .expectations()
        .all(|(_, e)| e.remote == u32::from(ip("192.0.2.30"))));
    let bye = "BYE sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 100.64.1.2:5060;branch=z9hG4bK-2\r\nCall-ID: c2@100.64.1.2\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
    from_phone(&mut h, bye.as_bytes(), 1002);
    assert_eq!(
        h.worker.nat().expectations().count(),
        0,
        "BYE removed the call's pinholes"
    );
    assert_eq!(h.counters.alg_sip[AlgEvent::Ended as usize].get(), 1);
}

#[test]
fn bye_ends_every_pinhole_of_a_call_with_many_media_streams() {
    // Ten streams: RTP and RTCP pinholes for the first eight, twice what the worker
    // gathers at once when it ends a call.
    let mut h = harness(STRICT);
    let media: String = (0..10)
        .map(|k| format!("m=audio {} RTP/AVP 0\r\n", 30000 + 2 * k))
        .collect();
    let sdp = format!(
        "v=0\r\no=alice 1 1 IN IP4 100.64.1.2\r\ns=-\r\nc=IN IP4 100.64.1.2\r\nt=0 0\r\n{media}"
    );
    let invite = format!(
        "INVITE sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 100.64.1.2:5060;branch=z9hG4bK-1\r\nFrom: <sip:alice@100.64.1.2>;tag=a1\r\nTo: <sip:bob@192.0.2.20>\r\nCall-ID: many@100.64.1.2\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@100.64.1.2:5060>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    from_phone(&mut h, invite.as_bytes(), 1000);
    // (The SDP parser reads at most MAX_MEDIA streams: 2 x 8 pinholes.)
    let share = 2 * cgnat_alg::sip::MAX_MEDIA;
    assert_eq!(h.worker.nat().expectations().count(), share);
    assert!(share > 8);
    let bye = "BYE sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 100.64.1.2:5060;branch=z9hG4bK-2\r\nCall-ID: many@100.64.1.2\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
    from_phone(&mut h, bye.as_bytes(), 1001);
    assert_eq!(h.worker.nat().expectations().count(), 0);
    assert_eq!(h.counters.expectations_removed.get(), share as u64);
}

#[test]
fn two_calls_of_one_phone_keep_their_own_pinholes() {
    let mut h = harness(STRICT);
    one(
        &mut h,
        &udp(
            "100.64.1.2:5060",
            "192.0.2.20:5060",
            invite("k1", 30010).as_bytes(),
            false,
        ),
        Inside,
        1000,
        Outside,
    );
    one(
        &mut h,
        &udp(
            "100.64.1.2:5060",
            "192.0.2.20:5060",
            invite("k2", 30020).as_bytes(),
            false,
        ),
        Inside,
        1000,
        Outside,
    );
    assert_eq!(h.worker.nat().expectations().count(), 4);
    let cancel = "CANCEL sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 100.64.1.2:5060;branch=z9hG4bK-1\r\nCall-ID: k1@100.64.1.2\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n";
    one(
        &mut h,
        &udp(
            "100.64.1.2:5060",
            "192.0.2.20:5060",
            cancel.as_bytes(),
            false,
        ),
        Inside,
        1001,
        Outside,
    );
    let left: Vec<u16> = h
        .worker
        .nat()
        .expectations()
        .map(|(_, e)| h.worker.nat().mapping(e.mapping).key().pa)
        .collect();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|p| *p == 30020 || *p == 30021), "{left:?}");
    // A final error from the far end ends the other.
    let busy = "SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP x\r\nCall-ID: k2@198.51.100.1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    let sig = h
        .worker
        .nat()
        .iter_sessions()
        .find(|s| s.in_port == 5060)
        .map(|s| SocketAddrV4::new(s.out_addr.into(), s.out_port))
        .unwrap();
    // The Call-ID as the far end saw it.
    let busy = busy.replace("198.51.100.1", &sig.ip().to_string());
    one(
        &mut h,
        &udp("192.0.2.20:5060", &sig.to_string(), busy.as_bytes(), true),
        Outside,
        1002,
        Inside,
    );
    assert_eq!(h.worker.nat().expectations().count(), 0);
}

#[test]
fn registration_lets_incoming_calls_in_after_the_session_is_gone_and_unregister_closes() {
    let mut h = harness(STRICT);
    let reg = "REGISTER sip:192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 100.64.1.2:5060;branch=z9hG4bK-r\r\nFrom: <sip:alice@192.0.2.20>;tag=r\r\nTo: <sip:alice@192.0.2.20>\r\nCall-ID: reg1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@100.64.1.2:5060>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n";
    let o = from_phone(&mut h, reg.as_bytes(), 1000);
    let sig = out(&o).src;
    assert!(udp_payload(&o).contains(&format!("Contact: <sip:alice@{}:{}>", sig.ip(), sig.port())));
    assert_eq!(
        h.counters.alg_sip[AlgEvent::Registrations as usize].get(),
        1
    );
    // The UDP session times out (300 s), the registration does not.
    h.expire(1000 + 400);
    h.expire(1000 + 800);
    assert_eq!(h.worker.nat().live_sessions(), 0);
    let inv = format!(
        "INVITE sip:alice@{ip}:{p} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-p\r\nFrom: <sip:bob@192.0.2.20>;tag=b\r\nTo: <sip:alice@192.0.2.20>\r\nCall-ID: in1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        ip = sig.ip(),
        p = sig.port()
    );
    let got = h.inject(
        &udp("192.0.2.20:5060", &sig.to_string(), inv.as_bytes(), true),
        Outside,
        1900,
    );
    let i = got.into_iter().next().unwrap().1;
    assert_eq!(out(&i).dst, sa("100.64.1.2:5060"));
    assert!(
        udp_payload(&i).starts_with("INVITE sip:alice@100.64.1.2:5060 SIP/2.0\r\n"),
        "{}",
        udp_payload(&i)
    );
    // The answer with SDP from the subscriber is an ALG message too: its media is
    // rewritten and pinholed.
    let sdp = "v=0\r\nc=IN IP4 100.64.1.2\r\nm=audio 30100 RTP/AVP 0\r\n";
    let ok = format!("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-p\r\nCall-ID: in1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@100.64.1.2:5060>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len());
    let o = from_phone(&mut h, ok.as_bytes(), 1901);
    assert!(!udp_payload(&o).contains("100.64.1.2"));
    // De-registration closes the door.
    let unreg = reg
        .replace("Expires: 3600", "Expires: 0")
        .replace("CSeq: 1", "CSeq: 2");
    one(
        &mut h,
        &udp(
            "100.64.1.2:5060",
            "192.0.2.20:5060",
            unreg.as_bytes(),
            false,
        ),
        Inside,
        1902,
        Outside,
    );
    assert_eq!(
        h.counters.alg_sip[AlgEvent::Deregistrations as usize].get(),
        1
    );
    assert!(!h
        .worker
        .nat()
        .expectations()
        .any(|(_, e)| e.class == cgnat_dataplane::nat::class::SIP_REGISTER));
}

/// A SIP INVITE over TCP split in two segments: the first is held, then both go as one
/// rewritten segment (Linux's helper lets such a message through untranslated).
#[test]
fn sip_over_tcp_split_across_segments_is_joined_and_rewritten() {
    let mut h = harness(STRICT);
    let c = connect(&mut h, "100.64.1.2:40500", "192.0.2.20:5060", 900);
    let text = invite("t1", 30200).replace(
        "SIP/2.0/UDP 100.64.1.2:5060",
        "SIP/2.0/TCP 100.64.1.2:40500",
    );
    let (a, b) = text.as_bytes().split_at(300);
    let held = h.inject(
        &tcp("100.64.1.2:40500", "192.0.2.20:5060", 101, "PA", a, false),
        Inside,
        1001,
    );
    assert!(held.is_empty(), "the incomplete message is held");
    let o = h.inject(
        &tcp(
            "100.64.1.2:40500",
            "192.0.2.20:5060",
            101 + a.len() as u32,
            "PA",
            b,
            false,
        ),
        Inside,
        1001,
    );
    assert_eq!(o.len(), 2, "both segments leave, in order");
    assert_eq!(o[0].1.len() - 54, a.len(), "the first keeps its length");
    assert!(o
        .iter()
        .all(|(side, f)| *side == Outside && checksums_ok(f)));
    let t = tcp_payload(&o[0].1) + &tcp_payload(&o[1].1);
    assert!(
        t.starts_with("INVITE sip:bob@192.0.2.20 SIP/2.0\r\n"),
        "{t}"
    );
    assert!(!t.contains("100.64.1.2"), "{t}");
    content_length_ok(&t);
    assert_eq!(h.counters.alg_sip[AlgEvent::Joined as usize].get(), 1);
    assert_eq!(
        h.worker
            .nat()
            .expectations()
            .filter(|(_, e)| e.class == cgnat_dataplane::nat::class::SIP_MEDIA)
            .count(),
        2
    );
    // The callee's ack of the grown segment comes back to what the caller sent.
    let grew = t.len() as i64 - text.len() as i64;
    let ack_seq = (101 + text.len() as i64 + grew) as u32;
    let mut f = tcp("192.0.2.20:5060", &c.to_string(), 901, "A", b"", true);
    f[42..46].copy_from_slice(&ack_seq.to_be_bytes());
    let fixed = fix_tcp_checksum(f);
    let back = one(&mut h, &fixed, Outside, 1002, Inside);
    assert_eq!(
        u32::from_be_bytes(back[42..46].try_into().unwrap()),
        101 + text.len() as u32
    );
}

fn fix_tcp_checksum(mut f: Vec<u8>) -> Vec<u8> {
    use cgnat_dataplane::wire::checksum;
    f[50] = 0;
    f[51] = 0;
    let len = f.len() - 34;
    let mut ph = Vec::new();
    ph.extend_from_slice(&f[26..34]);
    ph.extend_from_slice(&[0, 6]);
    ph.extend_from_slice(&(len as u16).to_be_bytes());
    ph.extend_from_slice(&f[34..]);
    let c = !checksum::fold(checksum::sum(&ph));
    f[50..52].copy_from_slice(&c.to_be_bytes());
    f
}

#[test]
fn bad_sip_passes_untouched_with_no_pinhole_and_is_counted() {
    let mut h = harness(STRICT);
    let cases: [&[u8]; 6] = [
        b"INVITE sip:b@192.0.2.20 SIP/2.0\r\nVia SIP/2.0/UDP 100.64.1.2\r\n\r\n",
        b"INVITE sip:b@192.0.2.20 SIP/2.0\r\nContent-Length: -5\r\n\r\nv=0\r\n",
        b"INVITE sip:b@192.0.2.20 SIP/2.0\r\nContent-Length: 999999\r\n\r\nv=0\r\n",
        b"INVITE sip:b@192.0.2.20 SIP/2.0\r\nContent-Type: application/sdp\r\n\r\nv=0\r\nc=IN IP4 100.64.1.2\r\nc=IN IP4 100.64.1.2\r\nm=audio 4000 RTP/AVP 0\r\n",
        b"INVITE sip:b@192.0.2.20 SIP/2.0\r\nContent-Type: application/sdp\r\n\r\nv=0\r\nc=IN IP6 fd00::2\r\nm=audio 4000 RTP/AVP 0\r\n",
        b"\xff\xfe\x00garbage\r\n\r\n",
    ];
    for c in cases {
        let o = from_phone(&mut h, c, 1000);
        assert!(checksums_ok(&o));
    }
    assert_eq!(h.worker.nat().expectations().count(), 0);
    let ev = |e: AlgEvent| h.counters.alg_sip[e as usize].get();
    assert_eq!(ev(AlgEvent::ParseErrors), 3);
    assert_eq!(ev(AlgEvent::NoPinhole), 2);
    assert_eq!(ev(AlgEvent::NotMessage), 1);
}

#[test]
fn rtsp_setup_opens_a_pair_the_reply_is_translated_back_and_teardown_closes() {
    let mut h = harness(STRICT);
    let c = connect(&mut h, "100.64.1.2:41000", "192.0.2.40:8554", 900);
    let setup = b"SETUP rtsp://192.0.2.40:8554/t/trackID=1 RTSP/1.0\r\nCSeq: 4\r\nTransport: RTP/AVP;unicast;client_port=50220-50221\r\n\r\n";
    let o = one(
        &mut h,
        &tcp(
            "100.64.1.2:41000",
            "192.0.2.40:8554",
            101,
            "PA",
            setup,
            false,
        ),
        Inside,
        1001,
        Outside,
    );
    let t = tcp_payload(&o);
    let cp = header(&t, "Transport: ")
        .split("client_port=")
        .nth(1)
        .unwrap()
        .to_string();
    let (a, b) = cp.split_once('-').unwrap();
    let (a, b): (u16, u16) = (a.parse().unwrap(), b.parse().unwrap());
    assert_eq!((a % 2, b), (0, a + 1), "{t}");
    let reply = format!("RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: 8c30e1;timeout=60\r\nTransport: RTP/AVP/UDP;unicast;client_port={a}-{b};server_port=58547-58548;ssrc=B1964B48;mode=play\r\n\r\n");
    let back = one(
        &mut h,
        &tcp(
            "192.0.2.40:8554",
            &c.to_string(),
            901,
            "PA",
            reply.as_bytes(),
            true,
        ),
        Outside,
        1002,
        Inside,
    );
    assert!(
        tcp_payload(&back).contains("client_port=50220-50221;server_port=58547-58548;"),
        "{}",
        tcp_payload(&back)
    );
    // The server's RTP comes in through the pinhole.
    let pub_ip = c.ip().to_string();
    let m = out(&one(
        &mut h,
        &udp("192.0.2.40:58547", &format!("{pub_ip}:{a}"), b"rtp", true),
        Outside,
        1003,
        Inside,
    ));
    assert_eq!(m.dst, sa("100.64.1.2:50220"));
    assert_eq!(
        h.worker.nat().expectations().count(),
        1,
        "RTCP's pinhole is left"
    );
    let teardown =
        b"TEARDOWN rtsp://192.0.2.40:8554/t RTSP/1.0\r\nCSeq: 5\r\nSession: 8c30e1\r\n\r\n";
    one(
        &mut h,
        &tcp(
            "100.64.1.2:41000",
            "192.0.2.40:8554",
            101 + setup.len() as u32,
            "PA",
            teardown,
            false,
        ),
        Inside,
        1004,
        Outside,
    );
    assert_eq!(h.worker.nat().expectations().count(), 0);
    assert_eq!(h.counters.alg_rtsp[AlgEvent::Ended as usize].get(), 1);
}

#[test]
fn rtsp_interleaved_and_elsewhere_open_nothing() {
    let mut h = harness(STRICT);
    connect(&mut h, "100.64.1.2:41001", "192.0.2.40:554", 900);
    let setup = b"SETUP rtsp://192.0.2.40/t RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\nSETUP rtsp://192.0.2.40/t RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP;unicast;destination=10.9.9.9;client_port=4000-4001\r\n\r\n";
    let o = one(
        &mut h,
        &tcp(
            "100.64.1.2:41001",
            "192.0.2.40:554",
            101,
            "PA",
            setup,
            false,
        ),
        Inside,
        1001,
        Outside,
    );
    assert_eq!(tcp_payload(&o).as_bytes(), setup);
    assert_eq!(h.worker.nat().expectations().count(), 0);
    assert_eq!(h.counters.alg_rtsp[AlgEvent::Elsewhere as usize].get(), 1);
    // Refused by the dataplane on its own account, not by the NAT.
    assert_eq!(
        h.counters.alg_rtsp[AlgEvent::PinholeRefused as usize].get(),
        0
    );
    assert_eq!(h.counters.alg_rtsp[AlgEvent::Messages as usize].get(), 2);
}

/// A phone that sends RTCP before its SDP (baresip's answer does) already has its RTCP
/// port mapped on its own: the SDP then says where RTCP is (`a=rtcp`, RFC 3605), and the
/// far end's RTCP gets in there.
#[test]
fn rtcp_mapped_before_the_sdp_is_announced_with_a_rtcp() {
    let mut h = harness(STRICT);
    let early = out(&one(
        &mut h,
        &udp(
            "100.64.1.2:30001",
            "192.0.2.30:40001",
            b"\x80\xc9\x00\x01ping",
            false,
        ),
        Inside,
        1000,
        Outside,
    ))
    .src;
    let o = one(
        &mut h,
        &udp(
            "100.64.1.2:5060",
            "192.0.2.20:5060",
            invite("r1", 30000).as_bytes(),
            false,
        ),
        Inside,
        1000,
        Outside,
    );
    let t = udp_payload(&o);
    content_length_ok(&t);
    let rtp = media_port(&t);
    if early.port() != rtp + 1 {
        assert!(t.contains(&format!("a=rtcp:{}\r\n", early.port())), "{t}");
    }
    // The far end's RTCP to the announced port reaches the phone's RTCP port.
    let m = out(&one(
        &mut h,
        &udp("192.0.2.30:40001", &early.to_string(), b"rtcp", true),
        Outside,
        1001,
        Inside,
    ));
    assert_eq!(m.dst, sa("100.64.1.2:30001"));
}

/// The answerer's pinholes take only the media address the offer named.
#[test]
fn answer_pinholes_take_only_the_offers_media_address() {
    let mut h = harness(STRICT);
    let reg = "REGISTER sip:192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 100.64.1.2:5060;branch=z9hG4bK-r\r\nCall-ID: reg2\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@100.64.1.2:5060>\r\nContent-Length: 0\r\n\r\n";
    let sig = out(&from_phone(&mut h, reg.as_bytes(), 1000)).src;
    let sdp = "v=0\r\nc=IN IP4 192.0.2.30\r\nm=audio 40000 RTP/AVP 0\r\n";
    let inv = format!("INVITE sip:alice@{sig} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-o\r\nCall-ID: o1@192.0.2.21\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len());
    one(
        &mut h,
        &udp("192.0.2.20:5060", &sig.to_string(), inv.as_bytes(), true),
        Outside,
        1001,
        Inside,
    );
    let ans = "v=0\r\nc=IN IP4 100.64.1.2\r\nm=audio 30300 RTP/AVP 0\r\n";
    let ok = format!("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-o\r\nCall-ID: o1@192.0.2.21\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{ans}", ans.len());
    from_phone(&mut h, ok.as_bytes(), 1002);
    let media: Vec<u32> = h
        .worker
        .nat()
        .expectations()
        .filter(|(_, e)| e.class == cgnat_dataplane::nat::class::SIP_MEDIA)
        .map(|(_, e)| e.remote)
        .collect();
    assert_eq!(media, vec![u32::from(ip("192.0.2.30")); 2]);
}

/// A SIP message bigger than one segment: the first segment is held, the joined and
/// rewritten message would not fit the MTU, so it leaves as two segments again, in
/// order, each no bigger than the sender's, with the inside address gone from both.
#[test]
fn a_message_longer_than_a_segment_leaves_in_segments_that_fit_the_mtu() {
    let mut h = harness(STRICT);
    connect(&mut h, "100.64.1.2:40600", "192.0.2.20:5060", 900);
    let filler: String = (0..60)
        .map(|i| format!("a=x-filler-{i:03}:0123456789\r\n"))
        .collect();
    let text = invite("big", 30400)
        .replace(
            "SIP/2.0/UDP 100.64.1.2:5060",
            "SIP/2.0/TCP 100.64.1.2:40600",
        )
        .replace(
            "a=rtpmap:0 PCMU/8000\r\n",
            &format!("a=rtpmap:0 PCMU/8000\r\n{filler}"),
        );
    let text = {
        // Fix Content-Length for the longer body.
        let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
        let cl_line = text
            .lines()
            .find(|l| l.starts_with("Content-Length: "))
            .unwrap()
            .to_string();
        text.replace(&cl_line, &format!("Content-Length: {}", body.len()))
    };
    assert!(text.len() > 1448 + 100);
    let (a, b) = text.as_bytes().split_at(1448);
    assert!(h
        .inject(
            &tcp("100.64.1.2:40600", "192.0.2.20:5060", 101, "PA", a, false),
            Inside,
            1001
        )
        .is_empty());
    let o = h.inject(
        &tcp(
            "100.64.1.2:40600",
            "192.0.2.20:5060",
            101 + 1448,
            "PA",
            b,
            false,
        ),
        Inside,
        1001,
    );
    assert_eq!(o.len(), 2, "cut in two");
    let seq = |f: &[u8]| u32::from_be_bytes(f[38..42].try_into().unwrap());
    let (f1, f2) = (&o[0].1, &o[1].1);
    assert!(f1.len() <= 1514 && f2.len() <= 1514);
    assert!(checksums_ok(f1) && checksums_ok(f2));
    assert_eq!(f1.len() - 54, 1448);
    assert_eq!(seq(f2), seq(f1) + 1448);
    let whole = format!("{}{}", tcp_payload(f1), tcp_payload(f2));
    assert!(whole.starts_with("INVITE sip:bob@192.0.2.20 SIP/2.0\r\n"));
    assert!(!whole.contains("100.64.1.2"), "{whole}");
    content_length_ok(&whole);
}

/// The far end may not have acked a rewritten run when its sender retransmits part of
/// it: the retransmission carries the rewritten bytes, never the inside address. And a
/// retransmission of a held start before the rest comes starts the run over, so the
/// message is still read whole (media gets its pinholes).
#[test]
fn retransmissions_inside_and_before_a_rewritten_run_never_leak() {
    let mut h = harness(STRICT);
    connect(&mut h, "100.64.1.2:40700", "192.0.2.20:5060", 900);
    let text = invite("rx", 30500).replace(
        "SIP/2.0/UDP 100.64.1.2:5060",
        "SIP/2.0/TCP 100.64.1.2:40700",
    );
    let (a, b) = text.as_bytes().split_at(250);
    let first = tcp("100.64.1.2:40700", "192.0.2.20:5060", 101, "PA", a, false);
    assert!(h.inject(&first, Inside, 1001).is_empty());
    // The start again (no ack came), then the rest.
    assert!(h.inject(&first, Inside, 1001).is_empty());
    let second = tcp(
        "100.64.1.2:40700",
        "192.0.2.20:5060",
        101 + a.len() as u32,
        "PA",
        b,
        false,
    );
    let o = h.inject(&second, Inside, 1001);
    assert_eq!(o.len(), 2);
    let whole = tcp_payload(&o[0].1) + &tcp_payload(&o[1].1);
    assert!(!whole.contains("100.64.1.2"), "{whole}");
    assert_eq!(
        h.worker
            .nat()
            .expectations()
            .filter(|(_, e)| e.class == cgnat_dataplane::nat::class::SIP_MEDIA)
            .count(),
        2
    );
    // Each part retransmitted: the rewritten bytes again, at the same place.
    for (orig, sent) in [(&first, &o[0].1), (&second, &o[1].1)] {
        let r = one(&mut h, orig, Inside, 1002, Outside);
        assert_eq!(tcp_payload(&r), tcp_payload(sent));
        assert_eq!(r[38..42], sent[38..42], "same sequence number");
        assert!(checksums_ok(&r));
    }
}

/// SIP over TLS is opaque: configured on 5061 or not, TLS records pass untouched and
/// open nothing (counted as not SIP).
#[test]
fn sip_over_tls_is_left_alone() {
    let mut h = harness("filtering = \"address-and-port-dependent\"\n[alg]\nsip = { enabled = true, ports = [5060, 5061] }");
    connect(&mut h, "100.64.1.2:40800", "192.0.2.20:5061", 900);
    // A TLS ClientHello record carrying bytes that look like an address.
    let mut hello = vec![0x16, 0x03, 0x01, 0x00, 0x40];
    hello.extend_from_slice(b"\x01\x00\x00\x3c\x03\x03100.64.1.2 INVITE sip:x SIP/2.0\r\n\r\n");
    let o = one(
        &mut h,
        &tcp(
            "100.64.1.2:40800",
            "192.0.2.20:5061",
            101,
            "PA",
            &hello,
            false,
        ),
        Inside,
        1001,
        Outside,
    );
    assert_eq!(&o[54..], &hello[..]);
    assert_eq!(h.worker.nat().expectations().count(), 0);
    assert!(h.counters.alg_sip[AlgEvent::NotMessage as usize].get() >= 1);
}

/// A subscriber holds at most its share of an expectation class (TFTP: 1024 per worker,
/// 64 each). Past its share, or when the class is full, its own oldest expectation
/// goes, never another subscriber's; a newcomer with none to give up is refused while
/// the class is full. All counted.
#[test]
fn a_full_expectation_class_evicts_only_the_requesters_own_oldest() {
    use cgnat_dataplane::nat::class::{MAX, PER_SUBSCRIBER, TFTP};
    let mut h = harness("filtering = \"address-and-port-dependent\"\nmax_sessions_per_subscriber = 4000\n[alg]\ntftp = { enabled = true }");
    let (max, per) = (MAX[TFTP as usize], PER_SUBSCRIBER[TFTP as usize]);
    let rrq = |h: &mut cgnat_dataplane::harness::Harness, host: u32, port: usize| {
        let src = format!("100.64.2.{host}:{port}");
        one(
            h,
            &udp(&src, "192.0.2.69:69", b"\x00\x01file\x00octet\x00", false),
            Inside,
            1000,
            Outside,
        );
    };
    let of = |h: &cgnat_dataplane::harness::Harness, host: u32| {
        h.worker
            .nat()
            .expectations()
            .filter(|(_, e)| e.class == TFTP)
            .map(|(_, e)| h.worker.nat().mapping(e.mapping).key())
            .filter(|k| k.a == u32::from(ip(&format!("100.64.2.{host}"))))
            .map(|k| k.pa)
            .collect::<Vec<u16>>()
    };
    // One subscriber asks for one more than its share: its own oldest goes.
    for k in 0..=per {
        rrq(&mut h, 1, 20000 + k);
    }
    let first = of(&h, 1);
    assert_eq!(first.len(), per);
    assert!(!first.contains(&20000), "its own oldest went");
    assert_eq!(h.counters.expectations_evicted.get(), 1);
    // The others fill the class.
    let n = (max / per) as u32;
    for host in 2..=n {
        for k in 0..per {
            rrq(&mut h, host, 20000 + k);
        }
    }
    assert_eq!(h.worker.nat().expectations().count(), max);
    // A newcomer with none of its own is refused: nobody else's goes.
    rrq(&mut h, 200, 20000);
    assert!(of(&h, 200).is_empty());
    assert_eq!(h.counters.expectations_refused.get(), 1);
    assert_eq!(h.counters.expectations_evicted.get(), 1);
    // A subscriber with expectations in the full class gives up its own oldest.
    rrq(&mut h, 2, 30000);
    let second = of(&h, 2);
    assert!(second.contains(&30000) && !second.contains(&20000));
    assert_eq!(h.counters.expectations_evicted.get(), 2);
    assert_eq!(of(&h, 1), first, "the first subscriber's are untouched");
}

#[test]
fn sdp_media_on_a_low_port_opens_no_pinhole_and_is_counted() {
    // `m=audio 52`: a pinhole to UDP 52/53 of the subscriber, from any source until
    // the answer, under the strictest filtering. Refused below alg.sip.min_media_port.
    let mut h = harness(STRICT);
    let o = from_phone(&mut h, invite("low", 52).as_bytes(), 1000);
    assert_eq!(h.worker.nat().expectations().count(), 0, "no pinhole");
    assert_eq!(h.counters.alg_sip[AlgEvent::LowPort as usize].get(), 1);
    assert_eq!(h.counters.alg_sip[AlgEvent::MediaPairs as usize].get(), 0);
    let t = udp_payload(&o);
    assert!(!t.contains("100.64.1.2"), "inside address leaked:\n{t}");
    // A configured lower bound lets it through.
    let mut h = harness(&STRICT.replace(
        "sip = { enabled = true, ports = [5060] }",
        "sip = { enabled = true, ports = [5060], min_media_port = 50 }",
    ));
    from_phone(&mut h, invite("low", 52).as_bytes(), 1000);
    assert_eq!(h.worker.nat().expectations().count(), 2);
    assert_eq!(h.counters.alg_sip[AlgEvent::LowPort as usize].get(), 0);
}

#[test]
fn rtsp_client_ports_below_the_minimum_open_nothing() {
    let mut h = harness(STRICT);
    connect(&mut h, "100.64.1.2:41000", "192.0.2.40:8554", 900);
    let setup = b"SETUP rtsp://192.0.2.40:8554/t/trackID=1 RTSP/1.0\r\nCSeq: 4\r\nTransport: RTP/AVP;unicast;client_port=22-23\r\n\r\n";
    one(
        &mut h,
        &tcp(
            "100.64.1.2:41000",
            "192.0.2.40:8554",
            101,
            "PA",
            setup,
            false,
        ),
        Inside,
        1001,
        Outside,
    );
    assert_eq!(h.worker.nat().expectations().count(), 0);
    assert_eq!(h.counters.alg_rtsp[AlgEvent::LowPort as usize].get(), 1);
    assert_eq!(
        h.counters.alg_rtsp[AlgEvent::PinholeRefused as usize].get(),
        0
    );
}

#[test]
fn every_via_naming_the_inside_host_is_rewritten_to_a_mapping_of_its_own() {
    // The phone (acting as a proxy for itself on another port) sends a request with
    // a second Via naming it on a port with no mapping yet, one more as a second
    // comma-separated value of a compact `v:` line, each with the address in its branch.
    let mut h = harness(STRICT);
    let msg = "OPTIONS sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 100.64.1.2:5060;branch=z9hG4bK-1;rport\r\nVia: SIP/2.0/UDP 100.64.1.2:5072;branch=z9hG4bK-100.64.1.2-2\r\nv: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bK-3, SIP/2.0/UDP 100.64.1.2:5074;branch=z9hG4bK-4;received=100.64.1.2\r\nFrom: <sip:alice@100.64.1.2>;tag=a1\r\nTo: <sip:bob@192.0.2.20>\r\nCall-ID: v2@100.64.1.2\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    let o = from_phone(&mut h, msg.as_bytes(), 1000);
    let sig = out(&o).src;
    let pub_ip = sig.ip().to_string();
    let t = udp_payload(&o);
    assert!(!t.contains("100.64.1.2"), "inside address leaked:\n{t}");
    assert!(
        t.contains("SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bK-3"),
        "{t}"
    );
    // Each Via port of the phone is a mapping that leads back to that port.
    let needle = format!("SIP/2.0/UDP {pub_ip}:");
    let ports: Vec<u16> = t
        .match_indices(&needle)
        .map(|(at, _)| {
            t[at + needle.len()..]
                .split(';')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(ports.len(), 3, "{t}");
    for (p, inside) in ports.into_iter().zip([5060u16, 5072, 5074]) {
        assert_eq!(
            h.worker.nat().inside_of(17, u32::from(*sig.ip()), p),
            Some((u32::from(ip("100.64.1.2")), inside)),
            "port {p}:\n{t}"
        );
    }
    // The answer carries the Vias back: the phone sees its own again.
    let back_vias: Vec<&str> = t
        .lines()
        .filter(|l| l.starts_with("Via") || l.starts_with("v:"))
        .collect();
    let resp = format!(
        "SIP/2.0 200 OK\r\n{}\r\nFrom: <sip:alice@{pub_ip}>;tag=a1\r\nTo: <sip:bob@192.0.2.20>;tag=b\r\nCall-ID: v2@{pub_ip}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        back_vias.join("\r\n")
    );
    let back = one(
        &mut h,
        &udp("192.0.2.20:5060", &sig.to_string(), resp.as_bytes(), true),
        Outside,
        1001,
        Inside,
    );
    let b = udp_payload(&back);
    let sent: Vec<&str> = msg
        .lines()
        .filter(|l| l.starts_with("Via") || l.starts_with("v:"))
        .collect();
    let got: Vec<&str> = b
        .lines()
        .filter(|l| l.starts_with("Via") || l.starts_with("v:"))
        .collect();
    assert_eq!(got, sent, "{b}");
}

/// Issue 14: a call whose RTP flows longer than the UDP timeout (300 s) keeps its
/// signalling session alive: the proxy's BYE after 2,000 s of media still reaches the
/// phone under the strictest filtering, whether the callee's RTP (through the
/// pinhole) or the phone's came first. Once the media stops, the signalling session
/// expires one UDP timeout after the last packet.
#[test]
fn rtp_flowing_longer_than_the_udp_timeout_keeps_the_signalling_session() {
    for callee_first in [true, false] {
        let mut h = harness(STRICT);
        let o = from_phone(&mut h, invite("c9", 30002).as_bytes(), 1000);
        let sig = out(&o).src;
        let media = format!("{}:{}", sig.ip(), media_port(&udp_payload(&o)));
        let rtp_in = udp("192.0.2.30:40000", &media, b"rtp", true);
        let rtp_out = udp("100.64.1.2:30002", "192.0.2.30:40000", b"rtp", false);
        if callee_first {
            one(&mut h, &rtp_in, Outside, 1001, Inside);
        } else {
            let o = one(&mut h, &rtp_out, Inside, 1001, Outside);
            assert_eq!(out(&o).src.to_string(), media, "the pinned mapping");
        }
        // Then both ways every 100 s.
        let mut t = 1001;
        while t < 3000 {
            t += 100;
            h.expire(t);
            one(&mut h, &rtp_out, Inside, t, Outside);
            one(&mut h, &rtp_in, Outside, t, Inside);
        }
        let bye = "BYE sip:alice@100.64.1.2 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK-9\r\nCall-ID: c9@100.64.1.2\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
        let bye = udp("192.0.2.20:5060", &sig.to_string(), bye.as_bytes(), true);
        h.expire(t + 1);
        let back = one(&mut h, &bye, Outside, t + 1, Inside);
        assert_eq!(out(&back).dst, sa("100.64.1.2:5060"));
        // The media stopped at `t`: the signalling session goes one UDP timeout later.
        h.expire(t + 301);
        none(&mut h, &bye, Outside, t + 301);
    }
}

/// Issue 14: RTSP media flowing longer than the established TCP timeout (7,440 s)
/// keeps the RTSP control connection alive: the client's TEARDOWN after it still
/// leaves, from the same outside endpoint.
#[test]
fn rtsp_media_longer_than_the_tcp_timeout_keeps_the_control_connection() {
    let mut h = harness(STRICT);
    let c = connect(&mut h, "100.64.1.2:41000", "192.0.2.40:554", 900);
    let setup = b"SETUP rtsp://192.0.2.40/t/trackID=1 RTSP/1.0\r\nCSeq: 4\r\nTransport: RTP/AVP;unicast;client_port=50220-50221\r\n\r\n";
    let to_server =
        |seq, text: &[u8]| tcp("100.64.1.2:41000", "192.0.2.40:554", seq, "PA", text, false);
    let o = one(&mut h, &to_server(101, setup), Inside, 1001, Outside);
    let t = tcp_payload(&o);
    let ports = header(&t, "Transport: ")
        .split("client_port=")
        .nth(1)
        .unwrap();
    let rtcp: u16 = ports.split_once('-').unwrap().1.parse().unwrap();
    // The server's RTCP comes in through the pinhole; receiver reports go back.
    let from_server = udp(
        "192.0.2.40:58548",
        &format!("{}:{rtcp}", c.ip()),
        b"sr",
        true,
    );
    let report = udp("100.64.1.2:50221", "192.0.2.40:58548", b"rr", false);
    let mut now = 1002;
    one(&mut h, &from_server, Outside, now, Inside);
    while now < 1002 + 10_000 {
        now += 100;
        h.expire(now);
        one(&mut h, &report, Inside, now, Outside);
        one(&mut h, &from_server, Outside, now, Inside);
    }
    let teardown = b"TEARDOWN rtsp://192.0.2.40/t RTSP/1.0\r\nCSeq: 5\r\nSession: 8c30e1\r\n\r\n";
    let seq = 101 + setup.len() as u32;
    let o = one(&mut h, &to_server(seq, teardown), Inside, now + 1, Outside);
    assert_eq!(out(&o).src, c);
}

/// A dialog's contact on another port than its signalling session's (a phone whose
/// Contact names 5072 while it sends from 5060) is pinned in the `sip_dialog` class
/// and ends with the call: BYE closes it with the media pinholes (it was pinned as a
/// registration, which outlives calls, and stayed for an hour).
#[test]
fn a_dialogs_contact_on_another_port_is_a_dialog_pinhole_that_ends_with_the_call() {
    let mut h = harness(STRICT);
    let text = invite("c12", 30010).replace(
        "Contact: <sip:alice@100.64.1.2:5060>",
        "Contact: <sip:alice@100.64.1.2:5072>",
    );
    from_phone(&mut h, text.as_bytes(), 1000);
    let classes = |h: &cgnat_dataplane::harness::Harness| {
        let mut c: Vec<u8> = h
            .worker
            .nat()
            .expectations()
            .map(|(_, e)| e.class)
            .collect();
        c.sort_unstable();
        c
    };
    use cgnat_dataplane::nat::class;
    assert_eq!(
        classes(&h),
        [class::SIP_MEDIA, class::SIP_MEDIA, class::SIP_DIALOG],
        "RTP, RTCP and the dialog's contact"
    );
    let dialog = h
        .worker
        .nat()
        .expectations()
        .find(|(_, e)| e.class == class::SIP_DIALOG)
        .map(|(_, e)| e.until)
        .unwrap();
    assert_eq!(dialog, 1000 + class::TIMEOUT[class::SIP_DIALOG as usize]);
    let bye = "BYE sip:bob@192.0.2.20 SIP/2.0\r\nVia: SIP/2.0/UDP 100.64.1.2:5060;branch=z9hG4bK-2\r\nCall-ID: c12@100.64.1.2\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
    from_phone(&mut h, bye.as_bytes(), 1002);
    assert_eq!(classes(&h), [], "BYE removed every pinhole of the call");
}

/// SIP runs on the ALG contract (issue 14): an INVITE over UDP is read, granted and
/// rewritten by the one generic path, by the worker itself (a datagram has no
/// sequence numbers to adjust: no trip to the control lcore), counted as a contract
/// ALG's message and pinhole, and under SIP's own names as before.
#[test]
fn sip_runs_on_the_alg_contract_and_a_datagram_is_rewritten_by_the_worker() {
    use cgnat_dataplane::counters::ContractEvent;
    let sip = cgnat_alg::id::SIP;
    assert!(cgnat_alg::plugin(sip).unwrap().contract.is_some());
    let mut h = harness(STRICT);
    let o = from_phone(&mut h, invite("k1", 30000).as_bytes(), 1000);
    let t = udp_payload(&o);
    assert!(!t.contains("100.64.1.2"), "{t}");
    content_length_ok(&t);
    let ev = |e| h.counters.contract_event(sip, e).get();
    assert_eq!(
        [
            ContractEvent::Messages,
            ContractEvent::Pinholes,
            ContractEvent::MediaPairs,
            ContractEvent::RewrittenInline,
        ]
        .map(ev),
        [1, 1, 1, 1]
    );
    assert_eq!(h.counters.alg_sip[AlgEvent::Messages as usize].get(), 1);
    assert_eq!(h.counters.alg_sip[AlgEvent::Rewritten as usize].get(), 1);
    assert_eq!(h.counters.alg_sip[AlgEvent::MediaPairs as usize].get(), 1);
}

/// On the contract, SIP leaves a media stream below `min_media_port` unasked: counted
/// `low_media_port` only, as before (not `pinhole_refused`, nor the contract's
/// `refused`).
#[test]
fn a_low_media_port_is_counted_once_and_asks_nothing() {
    use cgnat_dataplane::counters::ContractEvent;
    let mut h = harness(STRICT);
    from_phone(&mut h, invite("low2", 52).as_bytes(), 1000);
    let sip = |e: AlgEvent| h.counters.alg_sip[e as usize].get();
    assert_eq!(
        [AlgEvent::LowPort, AlgEvent::PinholeRefused].map(sip),
        [1, 0]
    );
    let ev = |e| h.counters.contract_event(cgnat_alg::id::SIP, e).get();
    assert_eq!(
        [ContractEvent::Refused, ContractEvent::Pinholes].map(ev),
        [0, 0]
    );
}

/// RTCP of a call's media, on the contract too (`rtcp::Rtcp`, session id `rtcp`): the
/// phone's CNAME naming its address names the pool address, the packet grows by the
/// difference (made by the worker), counted `rtcp_cname_rewritten` among SIP's
/// events as before; the callee's RTCP comes back untouched.
#[test]
fn rtcp_cname_of_the_phone_is_rewritten_on_the_contract_and_counted_as_sips() {
    let mut h = harness(STRICT);
    let o = from_phone(&mut h, invite("r1", 30600).as_bytes(), 1000);
    let pub_ip = out(&o).src.ip().to_string();
    let cname = b"alice@100.64.1.2";
    let mut sdes = vec![0x81, 202, 0, 0, 9, 9, 9, 9, 1, cname.len() as u8];
    sdes.extend_from_slice(cname);
    sdes.push(0);
    while sdes.len() % 4 != 0 {
        sdes.push(0);
    }
    let w = (sdes.len() / 4 - 1) as u16;
    sdes[2..4].copy_from_slice(&w.to_be_bytes());
    let mut rtcp = vec![0x80, 201, 0, 1, 1, 2, 3, 4];
    rtcp.extend_from_slice(&sdes);
    let f = one(
        &mut h,
        &udp("100.64.1.2:30601", "192.0.2.30:40001", &rtcp, false),
        Inside,
        1001,
        Outside,
    );
    assert!(checksums_ok(&f));
    let payload = &f[42..];
    let want = format!("alice@{pub_ip}");
    assert!(
        payload.windows(want.len()).any(|w| w == want.as_bytes()),
        "{payload:?}"
    );
    assert!(!payload.windows(10).any(|w| w == b"100.64.1.2"));
    assert_eq!(payload.len() % 4, 0);
    assert_eq!(
        h.counters.alg_sip[AlgEvent::RtcpRewritten as usize].get(),
        1
    );
}

/// A SETUP the NAT cannot give a media pair (the subscriber's one port block is
/// used up) is counted `pinhole_refused` under RTSP's own counters, as before RTSP ran
/// on the contract, and the contract's `refused` too; a SETUP whose client port is no
/// port opens nothing and is counted `no_pinhole`.
#[test]
fn rtsp_refused_and_unreadable_client_ports_are_counted_as_rtsps_own() {
    use cgnat_dataplane::counters::ContractEvent;
    let cfg = format!(
        "allocation = \"port-block\"\nblock_size = 16\nmax_blocks_per_subscriber = 1\nicmp_on_limit = false\n{STRICT}"
    );
    let mut h = harness(&cfg);
    connect(&mut h, "100.64.1.2:41000", "192.0.2.40:8554", 900);
    let ev =
        |h: &cgnat_dataplane::harness::Harness, e: AlgEvent| h.counters.alg_rtsp[e as usize].get();
    let mut seq = 101u32;
    let mut send = |h: &mut cgnat_dataplane::harness::Harness, setup: &[u8]| {
        one(
            h,
            &tcp(
                "100.64.1.2:41000",
                "192.0.2.40:8554",
                seq,
                "PA",
                setup,
                false,
            ),
            Inside,
            1001,
            Outside,
        );
        seq += setup.len() as u32;
    };
    let mut pairs = 0;
    for k in 0..16u16 {
        let port = 50000 + 2 * k;
        let setup = format!(
            "SETUP rtsp://192.0.2.40:8554/t/trackID={k} RTSP/1.0\r\nCSeq: {k}\r\nTransport: RTP/AVP;unicast;client_port={port}-{}\r\n\r\n",
            port + 1
        );
        send(&mut h, setup.as_bytes());
        if ev(&h, AlgEvent::PinholeRefused) > 0 {
            break;
        }
        pairs += 1;
    }
    assert!(pairs > 0, "the block had room for some pairs");
    assert_eq!(ev(&h, AlgEvent::PinholeRefused), 1);
    assert_eq!(ev(&h, AlgEvent::MediaPairs), pairs);
    let refused = ContractEvent::Refused;
    assert_eq!(
        h.counters
            .contract_event(cgnat_alg::id::RTSP, refused)
            .get(),
        1
    );
    assert_eq!(ev(&h, AlgEvent::NoPinhole), 0);

    // A client port that is no port: nothing asked, counted `no_pinhole`.
    let bad = b"SETUP rtsp://192.0.2.40:8554/t/trackID=9 RTSP/1.0\r\nCSeq: 20\r\nTransport: RTP/AVP;unicast;client_port=5x000-5x001\r\n\r\n";
    let before = h.worker.nat().expectations().count();
    send(&mut h, bad);
    assert_eq!(ev(&h, AlgEvent::NoPinhole), 1);
    assert_eq!(ev(&h, AlgEvent::PinholeRefused), 1);
    assert_eq!(h.worker.nat().expectations().count(), before);
}
