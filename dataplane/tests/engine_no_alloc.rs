//! The ALG stream engine will run on each worker, whose hot path never allocates:
//! built once ([`AlgStream::new`], sized for `nat.max_alg_connections`' default), it
//! is then driven through what it does — an FTP PORT whose rewrite changes the length and the
//! sequence adjustment both ways after it, a command split across two segments (held,
//! then joined and rewritten), a retransmission of a rewritten run, a command the
//! policy refuses with its reply, AUTH TLS (the ALG stands aside), a SIP message over
//! TCP whose rewrite changes the length, a SIP datagram gathered from its fragments and
//! cut again, and a held run the tick releases — with this thread's allocations
//! counted around each step: there must be none.
//!
//! The engine's own API is driven (`alg`, `hold_alg`, `tick`, `take_ready`) with
//! frames built before counting, and the frames it hands back are kept in room made
//! before too, so the counts are the engine's alone. They are counted by the
//! `allocation-counter` crate (a dev-dependency: its global allocator counts per
//! thread, only inside `measure`; this crate keeps no unsafe code).

use cgnat_config::DEFAULT_ALG_CONNECTIONS;
use cgnat_dataplane::alg::{AlgPolicy, FtpPolicy, Rewrite, Tag};
use cgnat_dataplane::alg_stream::{AlgStream, Outcome};
use cgnat_dataplane::buf::{PacketBuf, VecBuf};
use cgnat_dataplane::counters::WorkerCounters;
use cgnat_dataplane::nat::{ALG_FTP, ALG_SIP};
use cgnat_dataplane::side::Side::{self, Inside, Outside};
use etherparse::PacketBuilder;
use std::sync::Arc;

const CLIENT: [u8; 4] = [100, 64, 1, 2];
const POOL: [u8; 4] = [198, 51, 100, 1];
const SERVER: [u8; 4] = [192, 0, 2, 10];
const ETH: usize = 14;

fn ip(a: [u8; 4]) -> u32 {
    u32::from_be_bytes(a)
}

/// The tag the worker puts on a frame of `alg`'s session of the client's port
/// `cport` to the server's `sport`, going `dir`, with the grants `grants` (the
/// client's port, the pool's).
fn tag(alg: u8, cport: u16, sport: u16, dir: u8, grants: &[(u16, u16)]) -> Tag {
    let mut t = Tag {
        dir,
        inside: (ip(CLIENT), cport),
        remote: (ip(SERVER), sport),
        outside: (ip(POOL), cport),
        alg,
        n: grants.len() as u8,
        ..Tag::default()
    };
    for (r, &(i, o)) in t.rewrites.iter_mut().zip(grants) {
        *r = Rewrite {
            inside: (ip(CLIENT), i),
            outside: (ip(POOL), o),
        };
    }
    t
}

/// A TCP segment of the FTP connection from the client's port `cport` (already
/// translated, as the worker hands it over): from the client (`dir` 0) or the server.
fn tcp(cport: u16, sport: u16, dir: u8, seq: u32, ack: u32, text: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    let b = if dir == 0 {
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(POOL, SERVER, 64)
            .tcp(cport, sport, seq, 29200)
    } else {
        PacketBuilder::ethernet2([4; 6], [2; 6])
            .ipv4(SERVER, CLIENT, 64)
            .tcp(sport, cport, seq, 29200)
    };
    b.ack(ack).psh().write(&mut v, text).unwrap();
    v
}

/// `frame` with `tag` in front, as the engine takes it.
fn tagged(frame: &[u8], tag: &Tag) -> VecBuf {
    let mut b = VecBuf::new(frame);
    assert!(tag.push(&mut b));
    b
}

fn payload(b: &VecBuf) -> &[u8] {
    let d = b.data();
    let ihl = usize::from(d[ETH] & 15) * 4;
    let l4 = ETH + ihl;
    let total = usize::from(u16::from_be_bytes([d[ETH + 2], d[ETH + 3]]));
    let off = if d[ETH + 9] == 6 {
        usize::from(d[l4 + 12] >> 4) * 4
    } else {
        8
    };
    &d[l4 + off..ETH + total]
}

fn seq(b: &VecBuf) -> u32 {
    let l4 = ETH + usize::from(b.data()[ETH] & 15) * 4;
    u32::from_be_bytes(b.data()[l4 + 4..l4 + 8].try_into().unwrap())
}

fn ack(b: &VecBuf) -> u32 {
    let l4 = ETH + usize::from(b.data()[ETH] & 15) * 4;
    u32::from_be_bytes(b.data()[l4 + 8..l4 + 12].try_into().unwrap())
}

/// The IPv4 header checksum of the frame's header, set.
fn ip_checksum(f: &mut [u8]) {
    f[ETH + 10..ETH + 12].copy_from_slice(&[0, 0]);
    let mut sum: u32 = f[ETH..ETH + 20]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    f[ETH + 10..ETH + 12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

/// The IPv4 frame `f` cut into two fragments, the first with `first` bytes of its
/// payload (a multiple of 8), identifier `id`.
fn fragments(f: &[u8], first: usize, id: u16) -> [Vec<u8>; 2] {
    let ip_payload = &f[ETH + 20..];
    let mut parts = [Vec::new(), Vec::new()];
    for (k, (from, to)) in [(0, first), (first, ip_payload.len())]
        .into_iter()
        .enumerate()
    {
        let mut p = f[..ETH + 20].to_vec();
        p.extend_from_slice(&ip_payload[from..to]);
        let total = (20 + to - from) as u16;
        p[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
        p[ETH + 4..ETH + 6].copy_from_slice(&id.to_be_bytes());
        let ff = (from / 8) as u16 | if k == 0 { 0x2000 } else { 0 };
        p[ETH + 6..ETH + 8].copy_from_slice(&ff.to_be_bytes());
        ip_checksum(&mut p);
        parts[k] = p;
    }
    parts
}

/// A SIP INVITE from the client over `transport` (`TCP` or `UDP`), its SDP naming
/// the client's media port 30000, padded with `pad` bytes.
fn invite(transport: &str, pad: usize) -> Vec<u8> {
    let sdp = "v=0\r\no=- 1 1 IN IP4 100.64.1.2\r\ns=call\r\nc=IN IP4 100.64.1.2\r\n\
               t=0 0\r\nm=audio 30000 RTP/AVP 0\r\n";
    format!(
        "INVITE sip:bob@192.0.2.10 SIP/2.0\r\n\
         Via: SIP/2.0/{transport} 100.64.1.2:5060;branch=z9hG4bKa\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@100.64.1.2:5060>;tag=1\r\n\
         To: <sip:bob@192.0.2.10>\r\n\
         Call-ID: c1@host\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:alice@100.64.1.2:5060>\r\n\
         X-Pad: {}\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        "p".repeat(pad),
        sdp.len()
    )
    .into_bytes()
}

fn has(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The frames the engine has ready, into `out` (room made before).
fn take(s: &mut AlgStream<VecBuf>, out: &mut Vec<(VecBuf, Side)>) {
    while let Some(f) = s.take_ready() {
        out.push(f);
    }
}

/// How many allocations `f` made on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    allocation_counter::measure(f).count_total
}

#[test]
fn the_engine_allocates_nothing_per_frame() {
    const FTP: u16 = 21;
    const SIP: u16 = 5060;
    // (Client A's control connection; B's is for AUTH TLS; C's for SIP over TCP.)
    let (a, b, c) = (40001, 40002, 5060);
    let counters = Arc::new(WorkerCounters::default());
    let mut s: AlgStream<VecBuf> = AlgStream::new(
        [2, 0, 0, 0, 1, 1],
        Box::new(|_| Some([2; 6])),
        1500,
        counters.clone(),
        DEFAULT_ALG_CONNECTIONS as usize,
    );
    // Buffers for a policy reply, or a datagram cut into more fragments.
    let mut pool: Vec<VecBuf> = (0..8).map(|_| VecBuf::new(&[])).collect();
    s.set_alloc(Box::new(move || pool.pop()));
    s.set_policy(AlgPolicy {
        ftp: FtpPolicy {
            deny: vec!["SITE".into()],
            ..FtpPolicy::default()
        },
        ..AlgPolicy::default()
    });
    let mut ready: Vec<(VecBuf, Side)> = Vec::with_capacity(64);
    let mut steps: Vec<(&str, u64)> = Vec::with_capacity(16);
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(16);

    // The client (seq 101 on) and the server (seq 512 on) of connection A.
    let port = b"PORT 100,64,1,2,156,64\r\n";
    let port_out = b"PORT 198,51,100,1,4,0\r\n";
    let shrink = port.len() - port_out.len();
    let grants = [(40000, 1024), (40001, 1025)];
    let t_a = tag(ALG_FTP, a, FTP, 0, &grants);
    let t_a_srv = tag(ALG_FTP, a, FTP, 1, &[]);
    let mut f = tagged(&tcp(a, FTP, 0, 101, 512, port), &t_a);
    let n = allocations(|| outcomes.push(s.alg(&mut f, Outside, 1, None)));
    steps.push(("PORT rewritten (length changed)", n));
    assert_eq!(
        (outcomes.pop(), payload(&f)),
        (Some(Outcome::Send), &port_out[..])
    );

    let at = 101 + port.len() as u32;
    let mut later = tagged(&tcp(a, FTP, 0, at, 512, b"NOOP\r\n"), &t_a);
    let srv_ack = at + 6 - shrink as u32;
    let mut reply = tagged(&tcp(a, FTP, 1, 512, srv_ack, b"200 PORT ok.\r\n"), &t_a_srv);
    let n = allocations(|| {
        outcomes.push(s.alg(&mut later, Outside, 2, None));
        outcomes.push(s.alg(&mut reply, Inside, 2, None));
    });
    steps.push(("sequence adjustment both ways", n));
    assert_eq!(outcomes, [Outcome::Send; 2]);
    outcomes.clear();
    assert_eq!(seq(&later), at - shrink as u32);
    assert_eq!(ack(&reply), at + 6);

    // A PORT split across two segments: held, then joined and rewritten.
    let at = at + 6;
    let split = b"PORT 100,64,1,2,156,65\r\n";
    let (one, two) = split.split_at(14);
    let mut first = tagged(&tcp(a, FTP, 0, at, 526, one), &t_a);
    let n = allocations(|| {
        outcomes.push(s.alg(&mut first, Outside, 3, None));
        s.hold_alg(first, 3, None);
    });
    steps.push(("segment held", n));
    assert_eq!(outcomes.pop(), Some(Outcome::Hold));
    let mut second = tagged(&tcp(a, FTP, 0, at + 14, 526, two), &t_a);
    let n = allocations(|| {
        outcomes.push(s.alg(&mut second, Outside, 3, None));
        take(&mut s, &mut ready);
    });
    steps.push(("held run joined and rewritten", n));
    assert_eq!(outcomes.pop(), Some(Outcome::Send));
    assert_eq!(ready.len(), 1);
    let joined = [payload(&second), payload(&ready[0].0)].concat();
    assert_eq!(joined, b"PORT 198,51,100,1,4,1\r\n");
    let first_out = payload(&second).to_vec();
    ready.clear();

    // The run's first segment again: the same rewritten bytes.
    let mut again = tagged(&tcp(a, FTP, 0, at, 526, one), &t_a);
    let n = allocations(|| outcomes.push(s.alg(&mut again, Outside, 4, None)));
    steps.push(("retransmission of a rewritten run", n));
    assert_eq!(outcomes.pop(), Some(Outcome::Send));
    assert_eq!(payload(&again), &first_out[..]);

    // A command the policy refuses: kept from the server, answered.
    let at = at + split.len() as u32;
    let mut site = tagged(&tcp(a, FTP, 0, at, 526, b"SITE CHMOD 777 x\r\n"), &t_a);
    let n = allocations(|| {
        outcomes.push(s.alg(&mut site, Outside, 5, None));
        take(&mut s, &mut ready);
    });
    steps.push(("command refused, reply sent", n));
    assert_eq!(outcomes.pop(), Some(Outcome::Send));
    assert_eq!(payload(&site), b"");
    assert_eq!(ready.len(), 1);
    assert!(payload(&ready[0].0).starts_with(b"504 "), "{:?}", ready[0]);
    assert_eq!(ready[0].1, Inside);
    ready.clear();

    // AUTH TLS on connection B: accepted, the ALG stands aside (a PORT after is not
    // read).
    let t_b = tag(ALG_FTP, b, FTP, 0, &grants);
    let t_b_srv = tag(ALG_FTP, b, FTP, 1, &[]);
    let mut auth = tagged(&tcp(b, FTP, 0, 101, 512, b"AUTH TLS\r\n"), &t_b);
    let mut ok = tagged(&tcp(b, FTP, 1, 512, 111, b"234 AUTH TLS OK.\r\n"), &t_b_srv);
    let mut port_b = tagged(&tcp(b, FTP, 0, 111, 530, port), &t_b);
    let n = allocations(|| {
        outcomes.push(s.alg(&mut auth, Outside, 6, None));
        outcomes.push(s.alg(&mut ok, Inside, 6, None));
        outcomes.push(s.alg(&mut port_b, Outside, 6, None));
    });
    steps.push(("AUTH TLS, stand aside", n));
    assert_eq!(outcomes, [Outcome::Send; 3]);
    outcomes.clear();
    assert_eq!(payload(&port_b), &port[..]);

    // A SIP INVITE over TCP: its addresses rewritten, the length changed; the next
    // segment's sequence number follows.
    let t_c = tag(ALG_SIP, c, SIP, 0, &[(30000, 1032)]);
    let msg = invite("TCP", 0);
    let mut inv = tagged(&tcp(c, SIP, 0, 1001, 1, &msg), &t_c);
    let mut next = tagged(&tcp(c, SIP, 0, 1001 + msg.len() as u32, 1, b""), &t_c);
    let n = allocations(|| {
        outcomes.push(s.alg(&mut inv, Outside, 7, None));
        outcomes.push(s.alg(&mut next, Outside, 7, None));
    });
    steps.push(("SIP over TCP rewritten (length changed)", n));
    assert_eq!(outcomes, [Outcome::Send; 2]);
    outcomes.clear();
    let out = payload(&inv).to_vec();
    assert!(has(&out, b"alice@198.51.100.1:5060") && has(&out, b"m=audio 1032 "));
    assert_ne!(out.len(), msg.len());
    let grown = out.len() as u32 - msg.len() as u32;
    assert_eq!(seq(&next), 1001 + msg.len() as u32 + grown);

    // A SIP datagram of two fragments (the worker reassembled it and handed over
    // each): gathered, rewritten whole, cut again to the MTU.
    let msg = invite("UDP", 1200);
    let mut whole = Vec::new();
    PacketBuilder::ethernet2([2; 6], [4; 6])
        .ipv4(POOL, SERVER, 64)
        .udp(c, SIP)
        .write(&mut whole, &msg)
        .unwrap();
    let [f0, f1] = fragments(&whole, 1480, 0x4242);
    let mut frags: Vec<VecBuf> = [f0, f1]
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let mut t = tag(ALG_SIP, c, SIP, 0, &[(30000, 1032)]);
            (t.frag, t.frags) = (k as u8, 2);
            tagged(f, &t)
        })
        .collect();
    let n = allocations(|| {
        while let Some(mut f) = frags.pop() {
            outcomes.push(s.alg(&mut f, Outside, 8, None));
            s.hold_alg(f, 8, None);
        }
        take(&mut s, &mut ready);
    });
    steps.push(("SIP datagram gathered, rewritten, cut again", n));
    assert_eq!(outcomes, [Outcome::Hold; 2]);
    outcomes.clear();
    assert_eq!(ready.len(), 2);
    let udp: Vec<u8> = ready
        .iter()
        .flat_map(|(b, _)| {
            let d = b.data();
            d[ETH + 20..ETH + usize::from(u16::from_be_bytes([d[ETH + 2], d[ETH + 3]]))].to_vec()
        })
        .collect();
    assert!(ready.iter().all(|(b, _)| b.len() <= ETH + 1500));
    assert!(has(&udp, b"alice@198.51.100.1:5060") && has(&udp, b"m=audio 1032 "));
    ready.clear();

    // A PORT cut short and nothing after: the tick releases it as it is.
    let at = at + 18;
    let mut cut = tagged(&tcp(a, FTP, 0, at, 526, b"PORT 100,64,1,2,1"), &t_a);
    let n = allocations(|| {
        outcomes.push(s.alg(&mut cut, Outside, 9, None));
        s.hold_alg(cut, 9, None);
        s.tick(9, None);
        take(&mut s, &mut ready);
    });
    steps.push(("segment held (to be released)", n));
    assert_eq!(outcomes.pop(), Some(Outcome::Hold));
    assert!(ready.is_empty());
    let n = allocations(|| {
        s.tick(20, None);
        take(&mut s, &mut ready);
    });
    steps.push(("held run released by the tick", n));
    assert_eq!(ready.len(), 1);
    assert_eq!(payload(&ready[0].0), b"PORT 100,64,1,2,1");
    // (Its sequence number adjusted: the first PORT shrank, the refused command went.)
    assert_eq!(seq(&ready[0].0), at - shrink as u32 - 1 - 18);

    for (step, n) in &steps {
        eprintln!("{n:>6} allocations: {step}");
    }
    assert!(
        steps.iter().all(|&(_, n)| n == 0),
        "the engine allocated: {steps:?}"
    );
    let footprint = s.footprint();
    eprintln!("one engine for {DEFAULT_ALG_CONNECTIONS} connections: {footprint} bytes");
}
