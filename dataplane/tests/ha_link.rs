//! The HA sync link over real UDP sockets on the loopback: bulk sync when the standby
//! joins, then incremental updates; a lost datagram is seen as a sequence gap, the
//! standby asks for a resync and ends up with the active's state again; the active
//! never sends more than its rate; a standby does not send state.
//!
//! The tables here are a record store (what the link carries, keyed by what each
//! record names); the NAT's own tables are synced in `ha_nat.rs`.

use cgnat_dataplane::ha::auth::Auth;
use cgnat_dataplane::ha::link::{Apply, Link, Role};
use cgnat_dataplane::ha::transport::{self, Tables};
use cgnat_dataplane::ha::wire::{self, Item, Pair, Record, SessionRec};
use cgnat_dataplane::ha::{HaCounters, Receiver, Sender};
use std::collections::{BTreeMap, VecDeque};
use std::net::{SocketAddr, UdpSocket};

const KEY: &[u8] = b"a key both ends read from a file";

/// What a record names (its identity): a later record with the same replaces it.
fn ident(r: &Record) -> (u8, u32, u16, u32, u16) {
    match r {
        Record::Session(s) => (s.proto, s.inside.0, s.inside.1, s.remote.0, s.remote.1),
        Record::Pair(p) => (0, p.inside, 0, 0, 0),
        other => (other.rtype(), 0, 0, 0, 0),
    }
}

#[derive(Default)]
struct Store {
    held: BTreeMap<(u8, u32, u16, u32, u16), Record>,
    news: VecDeque<Item>,
    walk: Vec<Record>,
    at: usize,
    flushes: u32,
}

impl Store {
    fn set(&mut self, r: Record) {
        self.held.insert(ident(&r), r);
        self.news.push_back(Item {
            end: false,
            record: r,
        });
    }
    fn end(&mut self, r: Record) {
        self.held.remove(&ident(&r));
        self.news.push_back(Item {
            end: true,
            record: r,
        });
    }
}

impl Tables for Store {
    fn updates(&mut self, push: &mut dyn FnMut(Item) -> bool) -> bool {
        while let Some(it) = self.news.front() {
            if !push(*it) {
                break;
            }
            self.news.pop_front();
        }
        false
    }
    fn walk_start(&mut self) {
        self.walk = self.held.values().copied().collect();
        self.at = 0;
    }
    fn walk(&mut self, push: &mut dyn FnMut(Item) -> bool) -> bool {
        while self.at < self.walk.len() {
            let it = Item {
                end: false,
                record: self.walk[self.at],
            };
            if !push(it) {
                return false;
            }
            self.at += 1;
        }
        true
    }
    fn apply(&mut self, a: Apply) {
        match a {
            Apply::Flush => {
                self.flushes += 1;
                self.held.clear();
            }
            Apply::Item(it) if it.end => {
                self.held.remove(&ident(&it.record));
            }
            Apply::Item(it) => {
                self.held.insert(ident(&it.record), it.record);
            }
            Apply::BulkDone => {}
        }
    }
}

/// The standby holds exactly the active's state.
fn same(standby: &Store, active: &Store) {
    assert!(
        standby.held == active.held,
        "standby holds {} records, active {}",
        standby.held.len(),
        active.held.len()
    );
}

fn session(n: u32) -> Record {
    Record::Session(SessionRec {
        proto: 17,
        inside: (0x6440_0000 + n, 5000),
        outside: (0xcb00_7105, 1024 + n as u16),
        remote: (0x0808_0808, 53),
        idle: n % 30,
        ..SessionRec::default()
    })
}

struct End {
    link: Link,
    socket: transport::SyncSocket,
    store: Store,
    counters: HaCounters,
    buf: Vec<u8>,
}

impl End {
    fn step(&mut self, now: u64) {
        transport::step(
            &mut self.link,
            &self.socket,
            &mut self.store,
            &self.counters,
            now,
            &mut self.buf,
        );
    }
}

fn sockets() -> (transport::SyncSocket, transport::SyncSocket) {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (aa, ba): (SocketAddr, SocketAddr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    drop((a, b));
    (
        transport::open(aa, ba).unwrap(),
        transport::open(ba, aa).unwrap(),
    )
}

fn end(role: Role, socket: transport::SyncSocket, node: u32, rate: u32) -> End {
    End {
        link: Link::new(
            role,
            Sender::new(Auth::new(KEY).unwrap(), node, 1),
            Receiver::new(Auth::new(KEY).unwrap()),
            rate,
            4096,
        ),
        socket,
        store: Store::default(),
        counters: HaCounters::default(),
        buf: vec![0; wire::MAX_MESSAGE],
    }
}

/// Runs both ends for `ms` milliseconds of link time in steps of 10 (the loopback
/// delivers at once; a short sleep lets the kernel pass the datagrams).
fn run(a: &mut End, s: &mut End, from: u64, ms: u64) -> u64 {
    let mut t = from;
    while t < from + ms {
        a.step(t);
        std::thread::sleep(std::time::Duration::from_micros(200));
        s.step(t);
        std::thread::sleep(std::time::Duration::from_micros(200));
        t += 10;
    }
    t
}

#[test]
fn bulk_then_incremental_and_a_lost_datagram_brings_a_resync() {
    let (sa, sb) = sockets();
    let mut a = end(Role::Active, sa, 1, 1000);
    let mut s = end(Role::Standby, sb, 2, 1000);
    for n in 0..500 {
        a.store.set(session(n));
    }
    a.store.set(Record::Pair(Pair {
        inside: 0x6440_0001,
        outside: 0xcb00_7105,
    }));
    a.store.news.clear();
    // The standby joins: nothing held, it asks for a resync, gets a bulk sync.
    let t = run(&mut a, &mut s, 0, 300);
    assert!(s.link.in_sync(), "bulk sync completed");
    same(&s.store, &a.store);
    assert_eq!(a.counters.bulk_syncs.get(), 1);
    assert_eq!(s.counters.bulk_syncs.get(), 1);
    assert!(s.counters.resync_requests.get() >= 1);
    // 501 records of about 30 bytes: 12 or so bulk messages, plus begin and end.
    let bulk_msgs = a.counters.sent.get();
    assert!((10..=20).contains(&bulk_msgs), "{bulk_msgs} messages");

    // Incremental: changes, ends, new ones.
    for n in 0..50 {
        a.store.end(session(n));
    }
    for n in 1000..1100 {
        a.store.set(session(n));
    }
    let t = run(&mut a, &mut s, t, 100);
    same(&s.store, &a.store);
    assert_eq!(s.store.flushes, 1, "no second bulk");
    assert_eq!(s.counters.lost.get(), 0);

    // A datagram lost on the way: taken off the standby's socket before it reads it.
    a.store.set(session(5000));
    a.step(t);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let mut scratch = [0u8; wire::MAX_MESSAGE];
    let (n, from_peer) = s.socket.recv(&mut scratch).expect("the update was sent");
    assert!(from_peer);
    assert!(n > wire::HEADER_LEN);
    assert!(s.store.held != a.store.held);
    // The next message (here a heartbeat or update) shows the gap.
    a.store.set(session(5001));
    let _ = run(&mut a, &mut s, t + 10, 2500);
    assert_eq!(s.counters.lost.get(), 1);
    assert!(s.counters.resync_requests.get() >= 2);
    assert_eq!(a.counters.bulk_syncs.get(), 2);
    assert!(s.link.in_sync());
    same(&s.store, &a.store);
    assert!(s.store.held.contains_key(&ident(&session(5000))));
}

#[test]
fn the_active_keeps_to_its_rate_and_a_standby_sends_no_state() {
    let (sa, sb) = sockets();
    let mut a = end(Role::Active, sa, 1, 50);
    let mut s = end(Role::Standby, sb, 2, 50);
    for n in 0..3000 {
        a.store.set(session(n));
    }
    // One second of link time: at most 50 messages (and the first token).
    let t = run(&mut a, &mut s, 0, 1000);
    let sent = a.counters.sent.get();
    assert!(
        (40..=51).contains(&sent),
        "{sent} messages in a second at 50/s"
    );
    assert!(!s.link.in_sync() || s.store.held.len() < 3000);
    let _ = run(&mut a, &mut s, t, 3000);
    same(&s.store, &a.store);
    // The standby sent only resync requests, and its own changes go nowhere.
    s.store.set(session(9999));
    let before = s.counters.sent.get();
    assert!(!s.link.update(Item {
        end: false,
        record: session(9999)
    }));
    assert_eq!(before, s.counters.resync_requests.get());
}
