//! The contract ALGs run on the worker lcore, whose hot path never allocates: every
//! registered contract (and RTCP's) is driven through its framing, plan, grants'
//! events, edits and request policy on realistic messages both ways, once to warm up,
//! then again with this thread's allocations counted; there must be none.
//!
//! The allocations are counted by the `allocation-counter` crate (a dev-dependency):
//! its global allocator wraps the system one and counts per thread, only inside
//! `measure`, so the test harness's own threads do not disturb it, and the project
//! keeps its unsafe code in `ffi/` (a global allocator is an unsafe trait).

use cgnat_alg::contract::{
    Ask, Conn, Contract, Ctx, Dir, Edits, Framing, Grant, Notes, Plan, Policy, Reply, MAX_ASKS,
};
use cgnat_alg::{contract_of, id, pptp, PLUGINS};

/// How many allocations `f` made on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).count_total
}

const INSIDE: u32 = 0x6440_0102; // 100.64.1.2
const POOL: u32 = 0xC633_6407; // 198.51.100.7
const PEER: u32 = 0xC000_0214; // 192.0.2.20

fn ctx(dir: Dir, inside: u16, remote: u16, datagram: bool) -> Ctx {
    Ctx {
        dir,
        inside: (INSIDE, inside),
        outside: (POOL, 1024),
        remote: (PEER, remote),
        datagram,
    }
}

/// A grant for every ask, as the worker would give: from the subscriber, a pool port;
/// from the peer, an inside port.
fn grants(plan: &Plan, dir: Dir) -> [Grant; MAX_ASKS] {
    let mut g = [Grant::Refused; MAX_ASKS];
    for (k, (a, slot)) in plan.asks().zip(g.iter_mut()).enumerate() {
        let k = k as u16;
        *slot = match (dir, a) {
            (_, Ask::EndGroup { .. }) => Grant::To((0, 1)),
            (Dir::FromInside, _) => Grant::To((POOL, 40000 + 2 * k)),
            (Dir::FromOutside, _) => Grant::To((INSIDE, 30000 + 2 * k)),
        };
    }
    g
}

/// Everything the worker (and the control lcore) asks of `c` for the stream or
/// datagram `data`; what it saw, to check the messages were read at all.
#[derive(Default, Debug)]
struct Seen {
    messages: usize,
    skipped: usize,
    asks: usize,
    edits: usize,
    refused: usize,
}

fn drive(c: &dyn Contract, data: &[u8], conn: &Conn<'_>, seen: &mut Seen) {
    let denied = |m: &[u8]| m == b"MESSAGE" || m == b"RECORD";
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        match c.framing_in(rest, conn) {
            Framing::Whole(n) => {
                let msg = &rest[..n];
                seen.messages += 1;
                let mut reply = Reply::default();
                if c.refuse(msg, conn, &denied, &mut reply) {
                    seen.refused += 1;
                }
                let mut plan = Plan::default();
                c.plan_in(msg, conn, &mut plan);
                seen.asks += plan.len();
                let g = grants(&plan, conn.ctx.dir);
                let g = &g[..plan.len()];
                let mut notes = Notes::default();
                c.granted(&plan, g, conn, &mut notes);
                let mut edits = Edits::default();
                if c.edits_in(msg, conn, &plan, g, &mut edits).is_ok() {
                    seen.edits += edits.len();
                    let mut out = [0u8; 4096];
                    let _ = edits.apply_into(msg, &mut out);
                }
                let mut notes = Notes::default();
                let _ = c.advance(msg, conn, &mut notes);
                at += n;
            }
            Framing::Skip(n) => {
                let _ = c.skipped(&rest[..n], &conn.ctx);
                seen.skipped += 1;
                at += n;
            }
            Framing::More => break,
        }
    }
}

const SDP: &str = "v=0\r\n\
o=- 2890844526 2890844526 IN IP4 100.64.1.2\r\n\
s=call\r\n\
c=IN IP4 100.64.1.2\r\n\
t=0 0\r\n\
m=audio 30000 RTP/AVP 0 8 101\r\n\
a=rtcp:30011 IN IP4 100.64.1.2\r\n\
a=sendrecv\r\n\
m=video 30002 RTP/AVP 96\r\n\
c=IN IP4 100.64.1.2\r\n\
m=image 30004 udptl t38\r\n";

const HEAD: &str = "Via: SIP/2.0/UDP 100.64.1.2:5060;branch=z9hG4bK100.64.1.2x;rport\r\n\
Via: SIP/2.0/UDP 100.64.1.2:5062;branch=z9hG4bKb;received=100.64.1.2;rport=5062\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@100.64.1.2:5060>;tag=1928301774\r\n\
To: <sip:bob@192.0.2.20>\r\n\
Call-ID: a84b4c76e66710@100.64.1.2\r\n\
Contact: <sip:alice@100.64.1.2:5070>, <sip:alice@100.64.1.2>;expires=60\r\n\
Route: <sip:192.0.2.20;lr>, <sip:198.51.100.9:5080;lr>\r\n\
Record-Route: <sip:100.64.1.2:5060;lr>\r\n";

fn sip_messages() -> Messages {
    let invite = format!(
        "INVITE sip:bob@192.0.2.20 SIP/2.0\r\n{HEAD}CSeq: 1 INVITE\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    );
    let answer = SDP
        .replace("100.64.1.2", "192.0.2.20")
        .replace("30011", "20011");
    let ok_from_peer = format!(
        "SIP/2.0 200 OK\r\n\
         Via: SIP/2.0/UDP 198.51.100.7:1024;branch=z9hG4bK198.51.100.7x;received=198.51.100.7;rport=1024\r\n\
         From: \"Alice\" <sip:alice@198.51.100.7:1024>;tag=1928301774\r\n\
         To: <sip:bob@192.0.2.20>;tag=314159\r\n\
         Call-ID: a84b4c76e66710@198.51.100.7\r\n\
         Contact: <sip:bob@192.0.2.20>\r\n\
         Record-Route: <sip:198.51.100.7:40002;lr>\r\n\
         CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{answer}",
        answer.len()
    );
    let ok_from_inside = format!(
        "SIP/2.0 200 OK\r\n{HEAD}CSeq: 7 INVITE\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    );
    let register = format!(
        "REGISTER sip:192.0.2.20 SIP/2.0\r\n{HEAD}CSeq: 2 REGISTER\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n"
    );
    let unregister = format!(
        "REGISTER sip:192.0.2.20 SIP/2.0\r\n{HEAD}CSeq: 3 REGISTER\r\nContact: *\r\nExpires: 0\r\nl: 0\r\n\r\n"
    );
    let bye =
        format!("BYE sip:bob@192.0.2.20 SIP/2.0\r\n{HEAD}CSeq: 4 BYE\r\nContent-Length: 0\r\n\r\n");
    let bye_from_peer = "BYE sip:alice@198.51.100.7:1024 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.20;branch=z9hG4bKp\r\n\
         From: <sip:bob@192.0.2.20>;tag=314159\r\nTo: <sip:alice@198.51.100.7>;tag=1928301774\r\n\
         Call-ID: a84b4c76e66710@198.51.100.7\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n"
        .to_string();
    let refused = format!(
        "MESSAGE sip:bob@192.0.2.20 SIP/2.0\r\n{HEAD}CSeq: 5 MESSAGE\r\nContent-Length: 2\r\n\r\nhi"
    );
    let oversize = format!(
        "OPTIONS sip:bob@192.0.2.20 SIP/2.0\r\n{HEAD}CSeq: 6 OPTIONS\r\nX-Pad: {}\r\nContent-Length: 0\r\n\r\n",
        "p".repeat(3000)
    );
    let error =
        format!("SIP/2.0 486 Busy Here\r\n{HEAD}CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
    [
        (Dir::FromInside, invite),
        (Dir::FromOutside, ok_from_peer),
        (Dir::FromInside, ok_from_inside),
        (Dir::FromInside, register),
        (Dir::FromInside, unregister),
        (Dir::FromInside, bye),
        (Dir::FromOutside, bye_from_peer),
        (Dir::FromInside, refused),
        (Dir::FromInside, oversize),
        (Dir::FromOutside, error),
        (Dir::FromInside, "\r\n\r\n".to_string()),
    ]
    .into_iter()
    .map(|(d, m)| (d, m.into_bytes()))
    .collect()
}

/// The text messages `list`, as bytes.
fn owned(list: &[(Dir, &str)]) -> Messages {
    list.iter()
        .map(|(d, m)| (*d, m.as_bytes().to_vec()))
        .collect()
}

fn rtsp_messages() -> Messages {
    owned(&[
        (
            Dir::FromInside,
            "SETUP rtsp://192.0.2.20/media/track1 RTSP/1.0\r\nCSeq: 2\r\n\
             Transport: RTP/AVP;unicast;client_port=41000-41001, RTP/AVP;multicast;destination=100.64.1.2;client_port=41002-41003\r\n\r\n",
        ),
        (
            Dir::FromOutside,
            "RTSP/1.0 200 OK\r\nCSeq: 2\r\nSession: 12345678;timeout=60\r\n\
             Transport: RTP/AVP;unicast;client_port=40000-40001;server_port=6970-6971;source=192.0.2.20\r\n\r\n",
        ),
        (
            Dir::FromInside,
            "PLAY rtsp://192.0.2.20/media RTSP/1.0\r\nCSeq: 3\r\nSession: 12345678\r\nRange: npt=0-\r\n\r\n",
        ),
        (
            Dir::FromInside,
            "RECORD rtsp://192.0.2.20/media RTSP/1.0\r\nCSeq: 4\r\nSession: 12345678\r\n\r\n",
        ),
        (
            Dir::FromInside,
            "TEARDOWN rtsp://192.0.2.20/media RTSP/1.0\r\nCSeq: 5\r\nSession: 12345678\r\n\r\n",
        ),
    ])
}

fn ftp_messages() -> Messages {
    owned(&[
        (Dir::FromInside, "PORT 100,64,1,2,156,64\r\n"),
        (Dir::FromInside, "EPRT |1|100.64.1.2|40001|\r\n"),
        (Dir::FromInside, "EPRT |2|2001:db8::1|40001|\r\n"),
        (
            Dir::FromOutside,
            "227 Entering Passive Mode (192,0,2,20,156,65)\r\n",
        ),
        (
            Dir::FromOutside,
            "229 Entering Extended Passive Mode (|||40002|)\r\n",
        ),
        (Dir::FromInside, "STOR file\r\nRETR file\r\n"),
        (Dir::FromOutside, "150 ok\r\n226 done\r\n"),
    ])
}

fn irc_messages() -> Messages {
    owned(&[
        (
            Dir::FromInside,
            "PRIVMSG bob :\x01DCC SEND file.txt 1681916162 40000 1024\x01\r\n",
        ),
        (
            Dir::FromInside,
            "PRIVMSG bob :\x01DCC CHAT chat 100.64.1.2 40001\x01\r\n",
        ),
        (
            Dir::FromOutside,
            ":bob!b@h PRIVMSG alice :\x01DCC ACCEPT file.txt 1024 0\x01\r\n",
        ),
    ])
}

fn pptp_messages() -> Messages {
    vec![
        (
            Dir::FromInside,
            pptp::message(pptp::msg::OUT_CALL_REQUEST, 0x1234, 0),
        ),
        (
            Dir::FromOutside,
            pptp::message(pptp::msg::OUT_CALL_REPLY, 0x8001, 40000),
        ),
        (
            Dir::FromInside,
            pptp::message(pptp::msg::CALL_CLEAR_REQUEST, 0x1234, 0),
        ),
    ]
}

fn tftp_messages() -> Messages {
    vec![(Dir::FromInside, b"\x00\x01boot.bin\x00octet\x00".to_vec())]
}

/// An RTCP compound packet: an SR, then an SDES whose CNAME names the inside host.
fn rtcp_messages() -> Messages {
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&[0x11; 24]);
    let cname = b"alice@100.64.1.2";
    let mut chunk = vec![0x22; 4];
    chunk.push(1);
    chunk.push(cname.len() as u8);
    chunk.extend_from_slice(cname);
    chunk.push(0);
    while !chunk.len().is_multiple_of(4) {
        chunk.push(0);
    }
    p.extend_from_slice(&[0x81, 202]);
    p.extend_from_slice(&((chunk.len() / 4) as u16).to_be_bytes());
    p.extend_from_slice(&chunk);
    vec![(Dir::FromInside, p)]
}

/// Messages and the way each goes.
type Messages = Vec<(Dir, Vec<u8>)>;

/// The messages of the ALG of session id `id`, the ports of its session, whether
/// datagrams.
fn messages(id: u8) -> (Messages, u16, u16, &'static [bool]) {
    match id {
        id::SIP => (sip_messages(), 5060, 5060, &[true, false]),
        id::RTSP => (rtsp_messages(), 41000, 554, &[false]),
        id::FTP => (ftp_messages(), 40500, 21, &[false]),
        id::IRC => (irc_messages(), 40600, 6667, &[false]),
        id::PPTP => (pptp_messages(), 40700, 1723, &[false]),
        id::TFTP => (tftp_messages(), 40800, 69, &[true]),
        id::RTCP => (rtcp_messages(), 30001, 20001, &[true]),
        other => panic!("no messages for ALG {other}: add them here"),
    }
}

/// The connection of `ctx` with a policy: `deny` refused, a size limit, a lowest
/// media port.
fn conn(deny: &[String], ctx: Ctx) -> Conn<'_> {
    Conn {
        policy: Policy {
            deny,
            max_message_size: 2048,
            min_media_port: 1024,
            ..Policy::default()
        },
        ..Conn::of(ctx)
    }
}

#[test]
fn the_contract_algs_do_not_allocate_per_message() {
    let ids = PLUGINS
        .iter()
        .filter(|p| p.contract.is_some())
        .map(|p| p.id)
        .chain([id::RTCP]);
    let deny = ["MESSAGE".to_string(), "RECORD".to_string()];
    // The counter sees an allocation made here (so a zero below means none).
    assert_eq!(allocations(|| drop(std::hint::black_box(vec![0u8; 64]))), 1);
    let mut report = Vec::new();
    for alg in ids {
        let c = contract_of(alg).expect("a contract");
        let (msgs, inside, remote, datagram) = messages(alg);
        for &datagram in datagram {
            for (dir, m) in &msgs {
                let conn = conn(&deny, ctx(*dir, inside, remote, datagram));
                let mut warm = Seen::default();
                drive(c, m, &conn, &mut warm);
                let mut seen = Seen::default();
                let n = allocations(|| drive(c, m, &conn, &mut seen));
                assert_eq!(format!("{warm:?}"), format!("{seen:?}"));
                assert!(
                    seen.messages + seen.skipped > 0,
                    "alg {alg}: {m:?} not framed"
                );
                if n > 0 {
                    report.push(format!(
                        "alg {alg} {dir:?} datagram={datagram}: {n} allocations for {:?}",
                        String::from_utf8_lossy(&m[..m.len().min(40)])
                    ));
                }
            }
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n"));
}

/// The messages are realistic enough to exercise the paths: what each ALG saw (asks,
/// edits, refusals), so a change that makes them skip everything fails here.
#[test]
fn the_messages_are_read_and_edited() {
    let deny = ["MESSAGE".to_string(), "RECORD".to_string()];
    for (alg, want_asks, want_edits, want_refused) in [
        (id::SIP, 10, 40, 2),
        (id::RTSP, 2, 2, 1),
        (id::FTP, 2, 2, 0),
        (id::IRC, 2, 2, 0),
        (id::PPTP, 2, 2, 0),
        (id::TFTP, 1, 0, 0),
        (id::RTCP, 0, 1, 0),
    ] {
        let c = contract_of(alg).unwrap();
        let (msgs, inside, remote, datagram) = messages(alg);
        let mut seen = Seen::default();
        for (dir, m) in &msgs {
            let conn = conn(&deny, ctx(*dir, inside, remote, datagram[0]));
            drive(c, m, &conn, &mut seen);
        }
        assert!(
            seen.asks >= want_asks && seen.edits >= want_edits && seen.refused >= want_refused,
            "alg {alg}: {seen:?}"
        );
    }
}
