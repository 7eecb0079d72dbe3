//! HA state sync (issue 18): the wire format round-trips every record type; a message
//! is accepted only with the shared key's MAC, once, and in a version this code
//! speaks; every refusal and every lost message is counted under its own name.

use cgnat_dataplane::ha::auth::Auth;
use cgnat_dataplane::ha::wire::{
    self, kind, Block, CallRec, ExpectRec, Item, MappingRec, Pair, Record, Refusal, SeqAdjRec,
    SeqDir, SessionRec,
};
use cgnat_dataplane::ha::{Arrival, HaCounters, Receiver, Sender};

const KEY: &[u8] = b"the sync link's shared secret";

fn every_record() -> Vec<(bool, Record)> {
    let mut seq = SeqAdjRec {
        inside: (0x6440_0102, 40000),
        remote: (0xc633_6407, 21),
        ..SeqAdjRec::default()
    };
    seq.dirs[0] = SeqDir {
        base: -3,
        n: 2,
        ..SeqDir::default()
    };
    seq.dirs[0].points[0] = (1000, 4);
    seq.dirs[0].points[1] = (u32::MAX - 5, -12);
    seq.dirs[1].n = 8;
    for (i, p) in seq.dirs[1].points.iter_mut().enumerate() {
        *p = (i as u32 * 77, i as i32 - 4);
    }
    let mut pcp = MappingRec {
        kind: wire::mapping_kind::PCP,
        proto: 6,
        inside: (0x6440_0102, 8080),
        outside: (0xcb00_7105, 5000),
        remaining: 3600,
        nonce: *b"nonce-twelve",
        n_filters: 2,
        ..MappingRec::default()
    };
    pcp.filters[0] = (0xc633_6400, 24, 0);
    pcp.filters[1] = (0xc633_6407, 32, 443);
    vec![
        (
            false,
            Record::Pair(Pair {
                inside: 0x6440_0102,
                outside: 0xcb00_7105,
            }),
        ),
        (
            true,
            Record::Block(Block {
                inside: 0x6440_0102,
                outside: 0xcb00_7105,
                first_port: 1024,
            }),
        ),
        (
            false,
            Record::Session(SessionRec {
                proto: 6,
                state: 3,
                alg: 1,
                flags: wire::FLAG_INBOUND | wire::FLAG_ANSWERED,
                inside: (0x6440_0102, 40000),
                outside: (0xcb00_7105, 1030),
                remote: (0xc633_6407, 21),
                idle: 17,
                host6: None,
            }),
        ),
        (
            true,
            Record::Session(SessionRec {
                proto: 17,
                inside: (0x0000_0002, 5000),
                outside: (0xcb00_7105, 1031),
                remote: (0x0808_0404, 53),
                idle: 3,
                host6: Some(0x2001_0db8_ffff_0001_0000_0000_0000_0010),
                ..SessionRec::default()
            }),
        ),
        (false, Record::Mapping(pcp)),
        (
            false,
            Record::Expect(ExpectRec {
                proto: 6,
                class: 0,
                alg: 0,
                keep: false,
                inside: (0x6440_0102, 40001),
                outside: (0xcb00_7105, 1031),
                remote: 0xc633_6407,
                tag: 0,
                remaining: 55,
                master: (6, (0x6440_0102, 40000), (0xc633_6407, 21)),
                host6: None,
            }),
        ),
        (
            false,
            Record::Expect(ExpectRec {
                proto: 6,
                inside: (0x0000_0002, 41001),
                outside: (0xcb00_7105, 1032),
                remote: 0x0808_0404,
                remaining: 120,
                master: (6, (0x0000_0002, 41000), (0x0808_0404, 21)),
                host6: Some(0x2001_0db8_ffff_0006_0000_0000_0000_0010),
                ..ExpectRec::default()
            }),
        ),
        (false, Record::SeqAdj(seq)),
        (
            false,
            Record::SeqAdj(SeqAdjRec {
                inside: (0x0000_0002, 40000),
                remote: (0x0808_0404, 21),
                host6: Some(0x2001_0db8_ffff_0006_0000_0000_0000_0010),
                ..seq
            }),
        ),
        (
            false,
            Record::Call(CallRec {
                inside: (0x6440_0102, 7),
                outside: (0xcb00_7105, 0x1234),
                server: (0xc633_6407, 0x0100),
                control: (40000, 1723),
                flags: wire::CALL_BOUND | wire::CALL_CLOSING,
                idle: 12,
                closing: 3,
            }),
        ),
        (
            true,
            Record::Call(CallRec {
                inside: (0x6440_0103, 9),
                outside: (0xcb00_7105, 0x1235),
                server: (0xc633_6407, 0),
                control: (40001, 1723),
                ..CallRec::default()
            }),
        ),
    ]
}

fn message(s: &mut Sender, c: &HaCounters, k: u8, recs: &[(bool, Record)]) -> Vec<u8> {
    let mut buf = vec![0u8; wire::MAX_MESSAGE];
    let mut b = s.start(&mut buf, k);
    for (end, r) in recs {
        assert!(b.push(*end, r));
    }
    let n = s.seal(b, c);
    buf.truncate(n);
    buf
}

fn pair() -> (Sender, Receiver, HaCounters, HaCounters) {
    (
        Sender::new(Auth::new(KEY).unwrap(), 7, 100),
        Receiver::new(Auth::new(KEY).unwrap()),
        HaCounters::default(),
        HaCounters::default(),
    )
}

#[test]
fn every_record_type_round_trips_through_a_signed_message() {
    let (mut s, mut r, tx, rx) = pair();
    let recs = every_record();
    let m = message(&mut s, &tx, kind::BULK, &recs);
    let (msg, arrival) = r.open(&m, &rx).expect("accepted");
    assert_eq!(arrival, Arrival::NewEpoch);
    assert_eq!(
        (msg.kind(), msg.node(), msg.epoch(), msg.seq()),
        (kind::BULK, 7, 100, 1)
    );
    let got: Vec<Item> = msg.records().map(|r| r.unwrap()).collect();
    let want: Vec<Item> = recs
        .iter()
        .map(|&(end, record)| Item { end, record })
        .collect();
    assert_eq!(got, want);
    assert_eq!((tx.sent.get(), tx.records_sent.get()), (1, 11));
    assert_eq!((rx.received.get(), rx.records_received.get()), (1, 11));
}

#[test]
fn a_full_message_refuses_the_record_that_does_not_fit() {
    let (mut s, _, tx, _) = pair();
    let mut buf = vec![0u8; wire::MAX_MESSAGE];
    let mut b = s.start(&mut buf, kind::UPDATE);
    let rec = every_record()[2].1;
    let mut n = 0;
    while b.push(false, &rec) {
        n += 1;
    }
    // 28 bytes of sessions a record, in 1,472 - 28 - 32 bytes.
    assert_eq!(n, (wire::MAX_BODY / 28) as u16);
    assert_eq!(b.count(), n);
    let len = s.seal(b, &tx);
    assert!(len <= wire::MAX_MESSAGE);
}

#[test]
fn forged_replayed_malformed_and_foreign_version_messages_are_refused_and_counted() {
    let (mut s, mut r, tx, rx) = pair();
    let recs = every_record();
    let good = message(&mut s, &tx, kind::UPDATE, &recs);

    // Signed with another key: a host on the sync network without the key.
    let mut forger = Sender::new(Auth::new(b"not the shared secret!!").unwrap(), 7, 100);
    let forged = message(&mut forger, &tx, kind::UPDATE, &recs);
    assert_eq!(r.open(&forged, &rx).err(), Some(Refusal::BadMac));
    // One bit changed in a record after signing.
    let mut flipped = good.clone();
    flipped[wire::HEADER_LEN + 3] ^= 1;
    assert_eq!(r.open(&flipped, &rx).err(), Some(Refusal::BadMac));
    assert_eq!(rx.bad_mac.get(), 2);

    assert!(r.open(&good, &rx).is_ok());
    // The same message again, byte for byte.
    assert_eq!(r.open(&good, &rx).err(), Some(Refusal::Replay));
    assert_eq!(rx.replay.get(), 1);

    // Truncated, wrong magic, a body length that lies.
    assert_eq!(r.open(&good[..40], &rx).err(), Some(Refusal::Malformed));
    let mut magic = good.clone();
    magic[0] = b'X';
    assert_eq!(r.open(&magic, &rx).err(), Some(Refusal::Malformed));
    assert_eq!(
        r.open(&good[..good.len() - 1], &rx).err(),
        Some(Refusal::Malformed)
    );
    assert_eq!(rx.malformed.get(), 3);

    // Version 2 (whatever its MAC).
    let mut v2 = good.clone();
    v2[4] = 2;
    assert_eq!(r.open(&v2, &rx).err(), Some(Refusal::Version));
    assert_eq!(rx.bad_version.get(), 1);

    // A record that does not decode, correctly signed: malformed, not applied.
    let mut buf = vec![0u8; wire::MAX_MESSAGE];
    let mut b = s.start(&mut buf, kind::UPDATE);
    let mut bad = every_record()[2].1;
    if let Record::Session(ref mut x) = bad {
        x.state = 9;
    }
    assert!(b.push(false, &bad));
    let n = s.seal(b, &tx);
    assert_eq!(r.open(&buf[..n], &rx).err(), Some(Refusal::Malformed));
    assert_eq!(rx.malformed.get(), 4);
    assert_eq!(rx.received.get(), 1);
}

#[test]
fn a_gap_in_sequence_numbers_is_counted_lost_and_a_restarted_sender_is_a_new_epoch() {
    let (mut s, mut r, tx, rx) = pair();
    let m1 = message(&mut s, &tx, kind::UPDATE, &[]);
    let _m2 = message(&mut s, &tx, kind::UPDATE, &[]);
    let _m3 = message(&mut s, &tx, kind::UPDATE, &[]);
    let m4 = message(&mut s, &tx, kind::HEARTBEAT, &[]);
    assert_eq!(r.open(&m1, &rx).unwrap().1, Arrival::NewEpoch);
    assert_eq!(r.open(&m4, &rx).unwrap().1, Arrival::Lost(2));
    assert_eq!(rx.lost.get(), 2);
    // The sender restarts with a greater epoch: its sequence starts again.
    let mut s2 = Sender::new(Auth::new(KEY).unwrap(), 7, 101);
    let n1 = message(&mut s2, &tx, kind::BULK_BEGIN, &[]);
    assert_eq!(r.open(&n1, &rx).unwrap().1, Arrival::NewEpoch);
    // The old life's messages are replays now.
    assert_eq!(r.open(&m4, &rx).err(), Some(Refusal::Replay));
    assert_eq!(r.position(), Some((101, 1)));
}
