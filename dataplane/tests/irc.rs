//! The IRC DCC ALG (`alg-plugins/src/irc.rs`) through the dataplane's generic contract
//! path (`dataplane/src/alg_contract.rs`) on the harness: offers from the subscriber
//! rewritten and opened, RESUME/ACCEPT both ways, passive DCC, a line cut across
//! segments, a length-changing rewrite with the sequence numbers adjusted after it, a
//! same-length rewrite made on the worker alone, and malformed requests left alone.

mod common;
use cgnat_dataplane::alg::Tag;
use cgnat_dataplane::alg_stream::Outcome;
use cgnat_dataplane::buf::{PacketBuf, VecBuf};
use cgnat_dataplane::counters::ContractEvent;
use cgnat_dataplane::harness::{Harness, INSIDE_MAC, OUTSIDE_MAC};
use cgnat_dataplane::pipeline::Side::{Inside, Outside};
use cgnat_dataplane::pipeline::Verdict;
use common::*;
use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use std::net::{Ipv4Addr, SocketAddrV4};

const CLIENT: &str = "100.64.1.2:40000";
const SERVER: &str = "192.0.2.10:6667";
const PEER: &str = "203.0.113.9";
/// 100.64.1.2 as a decimal number, as DCC writes it.
const SUB_DEC: &str = "1681916162";
const IRC: u8 = cgnat_alg::id::IRC;

/// A TCP segment with ACK and PSH.
fn seg(src: &str, dst: &str, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let (s, d) = (sa(src), sa(dst));
    let inbound = !s.ip().octets().starts_with(&[100, 64]);
    let (smac, dmac) = if inbound {
        (GW_MAC, OUTSIDE_MAC)
    } else {
        (HOST_MAC, INSIDE_MAC)
    };
    let b = PacketBuilder::ethernet2(smac, dmac)
        .ipv4(s.ip().octets(), d.ip().octets(), 64)
        .tcp(s.port(), d.port(), seq, 29200)
        .ack(ack)
        .psh();
    let mut v = Vec::new();
    b.write(&mut v, payload).unwrap();
    v
}

/// Seq, ack and payload of a TCP frame (its checksums checked).
fn tcp_of(f: &[u8]) -> (u32, u32, Vec<u8>) {
    assert!(checksums_ok(f), "checksums: {f:02x?}");
    let p = SlicedPacket::from_ethernet(f).unwrap();
    let Some(TransportSlice::Tcp(t)) = p.transport else {
        panic!("not TCP")
    };
    (
        t.sequence_number(),
        t.acknowledgment_number(),
        t.payload().to_vec(),
    )
}

/// An IRC session (client ISN 100, server ISN 500; the client at 101, the server at
/// 501); the harness and the client's outside endpoint.
fn session() -> (Harness, SocketAddrV4) {
    let mut h = harness("[alg]\nirc = { enabled = true }");
    let c = connect(&mut h, CLIENT, SERVER, 500);
    (h, c)
}

/// The subscriber sends `text` at `seq`: the segments that left toward the server.
fn from_client(h: &mut Harness, seq: u32, text: &[u8], now: u32) -> Vec<(u32, u32, Vec<u8>)> {
    h.inject(&seg(CLIENT, SERVER, seq, 501, text), Inside, now)
        .into_iter()
        .map(|(s, f)| {
            assert_eq!(s, Outside);
            tcp_of(&f)
        })
        .collect()
}

/// The server sends `text` at `seq` to the client's outside endpoint `c`: the
/// segments that reached the client.
fn from_server(
    h: &mut Harness,
    c: SocketAddrV4,
    seq: u32,
    ack: u32,
    text: &[u8],
    now: u32,
) -> Vec<(u32, u32, Vec<u8>)> {
    h.inject(&seg(SERVER, &c.to_string(), seq, ack, text), Outside, now)
        .into_iter()
        .map(|(s, f)| {
            assert_eq!(s, Inside);
            tcp_of(&f)
        })
        .collect()
}

/// The address and port of the first DCC offer of a line (`DCC TYPE name ip port`).
fn offer(line: &[u8]) -> (String, u16) {
    let s = String::from_utf8_lossy(line);
    let body = s.split('\x01').nth(1).expect("a CTCP");
    let w: Vec<&str> = body.split(' ').collect();
    (w[3].to_string(), w[4].parse().unwrap())
}

fn dec(a: Ipv4Addr) -> String {
    u32::from(a).to_string()
}

fn event(h: &mut Harness, e: ContractEvent) -> u64 {
    h.worker.counters().contract_event(IRC, e).get()
        + h.control_counters.contract_event(IRC, e).get()
}

/// A peer's SYN to port `port` of the client's outside address (`c`'s) reaches the
/// subscriber at its port `inside`.
fn peer_reaches(h: &mut Harness, c: SocketAddrV4, port: u16, inside: u16, now: u32) {
    let to = SocketAddrV4::new(*c.ip(), port).to_string();
    let syn = tcp(&format!("{PEER}:33333"), &to, 9000, "S", b"", true);
    let o = one(h, &syn, Outside, now, Inside);
    assert_eq!(out(&o).dst, SocketAddrV4::new(ip("100.64.1.2"), inside));
}

#[test]
fn a_dcc_send_from_the_subscriber_is_rewritten_and_the_peer_reaches_it() {
    let (mut h, c) = session();
    let line = format!("PRIVMSG bob :\x01DCC SEND file.txt {SUB_DEC} 5000 1024\x01\r\n");
    let o = from_client(&mut h, 101, line.as_bytes(), 1001);
    assert_eq!(o.len(), 1);
    let (addr, port) = offer(&o[0].2);
    assert_eq!(addr, dec(*c.ip()), "{:?}", String::from_utf8_lossy(&o[0].2));
    assert_ne!(port, 0);
    assert_eq!(
        String::from_utf8_lossy(&o[0].2),
        format!("PRIVMSG bob :\x01DCC SEND file.txt {addr} {port} 1024\x01\r\n")
    );
    assert_eq!(event(&mut h, ContractEvent::Pinholes), 1);
    peer_reaches(&mut h, c, port, 5000, 1002);
}

#[test]
fn a_dcc_chat_is_rewritten_and_opened() {
    let (mut h, c) = session();
    let line = b"PRIVMSG bob :\x01DCC CHAT chat 100.64.1.2 6000\x01\r\n";
    let o = from_client(&mut h, 101, line, 1001);
    let (addr, port) = offer(&o[0].2);
    assert_eq!(addr, c.ip().to_string(), "dotted stays dotted");
    peer_reaches(&mut h, c, port, 6000, 1002);
}

#[test]
fn resume_and_accept_are_translated_both_ways() {
    let (mut h, c) = session();
    let line = format!("PRIVMSG bob :\x01DCC SEND f {SUB_DEC} 5000 9999\x01\r\n");
    let o = from_client(&mut h, 101, line.as_bytes(), 1001);
    let (_, port) = offer(&o[0].2);
    let sent = o[0].2.len() as u32;
    // The peer asks to resume at the translated port: the subscriber reads its own.
    let resume = format!(":bob!b@h PRIVMSG alice :\x01DCC RESUME f {port} 4096\x01\r\n");
    let i = from_server(&mut h, c, 501, 101 + sent, resume.as_bytes(), 1002);
    assert_eq!(
        String::from_utf8_lossy(&i[0].2),
        ":bob!b@h PRIVMSG alice :\x01DCC RESUME f 5000 4096\x01\r\n"
    );
    // The subscriber accepts naming its own port: the peer reads the translation.
    let seq = 101 + line.len() as u32;
    let o = from_client(
        &mut h,
        seq,
        b"PRIVMSG bob :\x01DCC ACCEPT f 5000 4096\x01\r\n",
        1003,
    );
    assert_eq!(
        String::from_utf8_lossy(&o[0].2),
        format!("PRIVMSG bob :\x01DCC ACCEPT f {port} 4096\x01\r\n")
    );
    // An ACCEPT naming a port the peer offered (none of the subscriber's): left.
    let seq = seq + 41;
    let accept = b"PRIVMSG bob :\x01DCC ACCEPT g 7777 4096\x01\r\n";
    let o = from_client(&mut h, seq, accept, 1004);
    assert_eq!(o[0].2, accept.to_vec());
    assert_eq!(event(&mut h, ContractEvent::Lookups), 2);
}

#[test]
fn passive_dcc_the_subscribers_answer_is_rewritten_and_opened() {
    let (mut h, c) = session();
    // The peer offers port 0 with a token: the subscriber is to listen.
    let offer_line = b":bob!b@h PRIVMSG alice :\x01DCC SEND f 3405803785 0 100 77\x01\r\n";
    let i = from_server(&mut h, c, 501, 101, offer_line, 1001);
    assert_eq!(i[0].2, offer_line.to_vec());
    // It answers with its address, a port and the token.
    let line = format!("PRIVMSG bob :\x01DCC SEND f {SUB_DEC} 5001 100 77\x01\r\n");
    let o = from_client(&mut h, 101, line.as_bytes(), 1002);
    let (addr, port) = offer(&o[0].2);
    assert_eq!(addr, dec(*c.ip()));
    assert!(String::from_utf8_lossy(&o[0].2).ends_with(" 100 77\x01\r\n"));
    peer_reaches(&mut h, c, port, 5001, 1003);
}

#[test]
fn a_dcc_line_cut_across_two_segments_is_joined_and_rewritten() {
    let (mut h, c) = session();
    let line = format!("PRIVMSG bob :\x01DCC SEND file.txt {SUB_DEC} 5000 1024\x01\r\n");
    let (a, b) = line.as_bytes().split_at(30);
    // The first part is held (nothing leaves) until the rest comes.
    assert!(from_client(&mut h, 101, a, 1001).is_empty());
    assert_eq!(event(&mut h, ContractEvent::Held), 1);
    let o = from_client(&mut h, 101 + a.len() as u32, b, 1001);
    assert_eq!(o.len(), 2, "{o:?}");
    let mut text = o[0].2.clone();
    text.extend_from_slice(&o[1].2);
    let (addr, port) = offer(&text);
    assert_eq!(addr, dec(*c.ip()));
    assert_eq!(o[0].0, 101);
    assert_eq!(o[1].0, 101 + o[0].2.len() as u32);
    peer_reaches(&mut h, c, port, 5000, 1002);
}

#[test]
fn a_bare_ack_between_the_two_parts_of_a_dcc_line_does_not_lose_the_start() {
    let (mut h, c) = session();
    let line = format!("PRIVMSG bob :\x01DCC SEND file.txt {SUB_DEC} 5000 1024\x01\r\n");
    let (a, b) = line.as_bytes().split_at(30);
    assert!(from_client(&mut h, 101, a, 1001).is_empty());
    // The client acks data of the server's meanwhile: no payload, at the same seq.
    let next = 101 + a.len() as u32;
    let o = from_client(&mut h, next, b"", 1001);
    assert!(o.iter().all(|s| s.2.is_empty()), "{o:?}");
    let o: Vec<_> = from_client(&mut h, next, b, 1001)
        .into_iter()
        .filter(|s| !s.2.is_empty())
        .collect();
    let mut text = Vec::new();
    for s in &o {
        text.extend_from_slice(&s.2);
    }
    let (addr, port) = offer(&text);
    assert_eq!(addr, dec(*c.ip()), "{:?}", String::from_utf8_lossy(&text));
    peer_reaches(&mut h, c, port, 5000, 1002);
}

#[test]
fn a_length_changing_rewrite_adjusts_the_sequence_numbers_both_ways() {
    let (mut h, c) = session();
    // Dotted 100.64.1.2 (10 bytes) becomes the pool address, dotted (12 to 14 bytes).
    let line = b"PRIVMSG bob :\x01DCC SEND f 100.64.1.2 5000 1024\x01\r\n";
    let o = from_client(&mut h, 101, line, 1001);
    let grown = o[0].2.len() as i64 - line.len() as i64;
    assert_ne!(grown, 0, "{:?}", String::from_utf8_lossy(&o[0].2));
    assert_eq!(offer(&o[0].2).0, c.ip().to_string());
    // More from the client: its sequence number is moved by the growth.
    let next = 101 + line.len() as u32;
    let o = from_client(&mut h, next, b"PING x\r\n", 1002);
    assert_eq!(o[0].0 as i64, next as i64 + grown);
    assert_eq!(o[0].2, b"PING x\r\n".to_vec());
    // The server acks what it received: the client sees its own numbering.
    let acked = (next as i64 + grown + 8) as u32;
    let i = from_server(&mut h, c, 501, acked, b"PONG x\r\n", 1003);
    assert_eq!(i[0].1, next + 8);
}

#[test]
fn a_same_length_rewrite_is_made_on_the_worker_without_the_control_lcore() {
    let (mut h, c) = session();
    // The translation's port has as many digits as 50000 or 5000: pick the one that
    // matches the pool's ports (the address is 10 digits both ways).
    let probe = format!("PRIVMSG bob :\x01DCC SEND p {SUB_DEC} 5000 1\x01\r\n");
    let o = from_client(&mut h, 101, probe.as_bytes(), 1001);
    let seq = 101 + probe.len() as u32;
    let width = offer(&o[0].2).1.to_string().len();
    assert_eq!(offer(&o[0].2).0.len(), 10);
    let port = if width == 5 { 50000 } else { 5001 };
    let line = format!("PRIVMSG bob :\x01DCC SEND file.txt {SUB_DEC} {port} 1024\x01\r\n");
    let before = event(&mut h, ContractEvent::RewrittenInline);
    let held = h.worker.counters().alg_frames_held.get();
    // Straight through the worker: it answers Tx (sent by itself), not Alg (to the
    // control lcore).
    let mut b = VecBuf::new(&seg(CLIENT, SERVER, seq, 501, line.as_bytes()));
    let v = h.worker.process(&mut b, Inside, 1002);
    assert_eq!(v, Verdict::Tx(Outside));
    assert_eq!(h.worker.counters().alg_frames_held.get(), held);
    let (_, _, text) = tcp_of(b.data());
    assert_eq!(text.len(), line.len());
    let (addr, p) = offer(&text);
    assert_eq!(addr, dec(*c.ip()));
    assert_ne!(p, port);
    assert_eq!(event(&mut h, ContractEvent::RewrittenInline), before + 1);
    peer_reaches(&mut h, c, p, port, 1003);
}

/// The TCP payload of the one frame of a capture.
fn capture_payload(name: &str) -> Vec<u8> {
    let frames = cgnat_dataplane::pcap::frames(&cgnat_testkit::capture(name)).unwrap();
    tcp_of(&frames[0]).2
}

#[test]
fn malformed_dcc_requests_are_left_untouched_and_counted() {
    let (mut h, c) = session();
    let mut seq = 501;
    let mut cseq = 101;
    for name in ["irc-dcc-malformed-host.pcap", "irc-dcc-malformed-port.pcap"] {
        let p = capture_payload(name);
        assert!(contains(&p, b"DCC SEND"), "{name}");
        // From the server, and the same line from the subscriber.
        let i = from_server(&mut h, c, seq, 101, &p, 1001);
        assert_eq!(i[0].2, p, "{name}");
        seq += p.len() as u32;
        let o = from_client(&mut h, cseq, &p, 1001);
        assert_eq!(o[0].2, p, "{name}");
        cseq += p.len() as u32;
    }
    assert_eq!(event(&mut h, ContractEvent::Skipped), 4);
    assert_eq!(event(&mut h, ContractEvent::Pinholes), 0);
    // Another host's address: untouched, counted, nothing opened.
    let o = from_client(
        &mut h,
        cseq,
        b"PRIVMSG v :\x01DCC SEND f 3232235876 5000\x01\r\n",
        1002,
    );
    assert_eq!(
        o[0].2,
        b"PRIVMSG v :\x01DCC SEND f 3232235876 5000\x01\r\n".to_vec()
    );
    assert_eq!(event(&mut h, ContractEvent::Elsewhere), 1);
    assert_eq!(event(&mut h, ContractEvent::Pinholes), 0);
}

/// The worker processes `text` from the client at `seq` and answers that it goes to
/// the ALG stream engine: the tag it put on it (what it read, what it granted), then
/// the engine runs on it (the frame as it leaves, if it does at once).
fn tagged_for_engine(h: &mut Harness, seq: u32, text: &[u8], now: u32) -> (Tag, Option<Vec<u8>>) {
    let mut b = VecBuf::new(&seg(CLIENT, SERVER, seq, 501, text));
    assert_eq!(h.worker.process(&mut b, Inside, now), Verdict::Alg(Outside));
    let tag = Tag::pop(&mut b).expect("tagged");
    assert!(tag.push(&mut b));
    match h.worker.alg_frame(&mut b, Outside) {
        Outcome::Send => (tag, Some(tcp_of(b.data()).2)),
        Outcome::Hold => {
            h.worker.hold_alg(b);
            (tag, None)
        }
        Outcome::Drop(r) => panic!("dropped: {r:?}"),
    }
}

/// Each message is read once: the worker reads an ordinary stream and rewrites in
/// place; in the frame where it finds a rewrite that changes a length, it reads and
/// rewrites up to that message and no further, and the engine reads the rest (and
/// adjusts the sequence numbers from there); from then on the worker hands the stream's frames over unread (no grant in
/// the tag), and the engine plans and grants them itself. A message start the worker
/// finds cut across segments is left to the engine the same way.
#[test]
fn each_message_is_read_by_the_worker_or_by_the_engine_not_both() {
    let (mut h, c) = session();
    let resized = b"PRIVMSG bob :\x01DCC SEND f 100.64.1.2 5000 1024\x01\r\n";
    let after = format!("PRIVMSG bob :\x01DCC SEND g {SUB_DEC} 5001 1\x01\r\n");
    let mut text = resized.to_vec();
    text.extend_from_slice(after.as_bytes());
    let pinholes = |h: &mut Harness| h.worker.counters().expectations_created.get();
    let (tag, sent) = tagged_for_engine(&mut h, 101, &text, 1001);
    // Read and rewritten up to the resized offer (where it ends as rewritten); the
    // second offer read, granted and rewritten by the engine.
    assert_ne!(tag.grew, 0);
    let read = resized.len() as i64 + i64::from(tag.grew);
    assert_eq!(i64::from(tag.worker_read), read);
    assert_eq!(tag.n, 1);
    assert_eq!(pinholes(&mut h), 2);
    let sent = sent.expect("sent at once");
    let (first, second) = sent.split_at(read as usize);
    assert_eq!(offer(first).0, c.ip().to_string());
    assert_eq!(offer(second).0, dec(*c.ip()));
    assert_eq!(sent.len() as i64, text.len() as i64 + i64::from(tag.grew));
    // From now on, nothing read on the worker: the engine grants.
    let next = 101 + text.len() as u32;
    let third = format!("PRIVMSG bob :\x01DCC SEND h {SUB_DEC} 5002 1\x01\r\n");
    let (tag, sent) = tagged_for_engine(&mut h, next, third.as_bytes(), 1002);
    assert_eq!((tag.worker_read, tag.n), (0, 0));
    assert_eq!(pinholes(&mut h), 3);
    let (addr, port) = offer(&sent.expect("sent at once"));
    assert_eq!(addr, dec(*c.ip()));
    peer_reaches(&mut h, c, port, 5002, 1003);

    // Another session: a line cut across segments.
    let (mut h, _) = session();
    let line = format!("PRIVMSG bob :\x01DCC SEND file.txt {SUB_DEC} 5000 1024\x01\r\n");
    let (a, b) = line.as_bytes().split_at(30);
    let (tag, sent) = tagged_for_engine(&mut h, 101, a, 1001);
    assert_eq!((tag.worker_read, tag.n, sent), (0, 0, None), "held");
    let (tag, _) = tagged_for_engine(&mut h, 101 + a.len() as u32, b, 1001);
    assert_eq!((tag.worker_read, tag.n), (0, 0), "the rest: unread");
    assert_eq!(pinholes(&mut h), 1);
}

/// The worker's first length-changing rewrite in a segment that ends inside the next
/// line: the worker rewrites the first offer and hands the segment over; the engine
/// holds it, reads the joined line when the rest comes and rewrites it, and every
/// later segment is moved by both growths, both ways; a retransmission of the held
/// run's segments gets the same rewritten bytes.
#[test]
fn a_resized_offer_before_a_line_cut_across_segments_adjusts_by_both_rewrites() {
    let (mut h, c) = session();
    let resized = b"PRIVMSG bob :\x01DCC SEND f 100.64.1.2 5000 1024\x01\r\n";
    let line = b"PRIVMSG bob :\x01DCC SEND g 100.64.1.2 5001 1\x01\r\n";
    let (a, b) = line.split_at(20);
    let mut first = resized.to_vec();
    first.extend_from_slice(a);
    assert!(from_client(&mut h, 101, &first, 1001).is_empty(), "held");
    let at = 101 + first.len() as u32;
    let o = from_client(&mut h, at, b, 1001);
    assert_eq!(o.len(), 2, "{o:?}");
    let mut text = o[0].2.clone();
    text.extend_from_slice(&o[1].2);
    let t = String::from_utf8_lossy(&text).to_string();
    assert!(!t.contains("100.64.1.2"), "{t}");
    assert_eq!(t.matches(&c.ip().to_string()).count(), 2, "{t}");
    assert_eq!(o[0].0, 101);
    assert_eq!(o[1].0, 101 + o[0].2.len() as u32);
    let grown = text.len() as i64 - (resized.len() + line.len()) as i64;
    assert!(grown > 0);
    // The run again, as its sender retransmits it: the same bytes.
    let again = from_client(&mut h, 101, &first, 1002);
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!((again[0].0, &again[0].2), (o[0].0, &o[0].2));
    let again = from_client(&mut h, at, b, 1002);
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!((again[0].0, &again[0].2), (o[1].0, &o[1].2));
    // Later bytes, both ways.
    let next = 101 + (resized.len() + line.len()) as u32;
    let p = from_client(&mut h, next, b"PING x\r\n", 1003);
    assert_eq!(p[0].0 as i64, next as i64 + grown);
    let acked = (next as i64 + grown + 8) as u32;
    let i = from_server(&mut h, c, 501, acked, b"PONG x\r\n", 1003);
    assert_eq!(i[0].1, next + 8);
}
