//! HA bulk sync of N sessions, without sockets (issue 18's figures): an active NAT
//! filled with N UDP sessions (100 per subscriber) is walked, its records batched into
//! signed messages (`ha::Sender`), each opened (`ha::Receiver`: MAC, records, replay
//! window) and installed in a standby NAT with the same outside ports. Prints the
//! messages and bytes per million sessions (the sync bandwidth: UDP and IPv4 headers
//! counted), and the CPU time of each side per million sessions (walk, encode and sign
//! on the active; open and install on the standby), each on one thread. The wire time
//! at a given `ha.rate` follows from the messages.
//!
//! `cargo bench -p cgnat-dataplane --bench ha_sync [-- N]` (N: 10,000,000 by default;
//! about 3 GB of tables for both NATs).

use cgnat_config::Config;
use cgnat_dataplane::counters::WorkerCounters;
use cgnat_dataplane::ha::auth::Auth;
use cgnat_dataplane::ha::wire::{self, kind, Item};
use cgnat_dataplane::ha::{HaCounters, Receiver, Sender};
use cgnat_dataplane::nat::sync::SyncCursor;
use cgnat_dataplane::nat::{Nat, NatParams, Tuple};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config(n: u32) -> String {
    cgnat_testkit::null_ports_config(&format!(
        "pool = [\"198.51.0.0/18\"]\nallocation = \"dynamic\"\nmax_sessions = {n}\n\
         max_subscribers = {subs}",
        subs = n / 100 + 1024
    ))
}

fn nat(cfg: &Config) -> Nat {
    let params = NatParams::from_config(&cfg.nat, 1).unwrap();
    Nat::new(params, 0, 1, 1000, 7, Arc::new(WorkerCounters::default()))
}

fn main() {
    let n: u32 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let cfg = Config::parse(&config(n), "ha-bench.toml").unwrap_or_else(|e| panic!("{e}"));
    let (mut active, mut standby) = (nat(&cfg), nat(&cfg));
    let t = Instant::now();
    for i in 0..n {
        let t = Tuple {
            proto: 17,
            src: 0x6440_0000 + i / 100,
            dst: 0xc000_0200 + i % 100,
            sport: 10_000 + (i % 100) as u16,
            dport: 53,
        };
        active.in2out(&t, 0, true, 1000).expect("a session");
    }
    eprintln!("filled {n} sessions in {:.1} s", t.elapsed().as_secs_f64());

    let key = b"a key for the sync benchmark, 32 bytes";
    let mut sender = Sender::new(Auth::new(key).unwrap(), 1, 1);
    let mut receiver = Receiver::new(Auth::new(key).unwrap());
    let (tx, rx) = (HaCounters::default(), HaCounters::default());
    let mut buf = vec![0u8; wire::MAX_MESSAGE];
    let mut cur = SyncCursor::default();
    let (mut t_active, mut t_standby) = (Duration::ZERO, Duration::ZERO);
    let mut bytes = 0u64;
    let mut done = false;
    while !done {
        // The active: one message of the walk (a record that does not fit is walked
        // again into the next: the cursor stays on it).
        let t0 = Instant::now();
        let mut b = sender.start(&mut buf, kind::BULK);
        done = active.sync_walk(&mut cur, 1000, u32::MAX, &mut |it: Item| {
            b.push(it.end, &it.record)
        });
        let len = sender.seal(b, &tx);
        t_active += t0.elapsed();
        bytes += len as u64 + 28;
        // The standby: open and install.
        let t1 = Instant::now();
        let (m, _) = receiver.open(&buf[..len], &rx).expect("accepted");
        for it in m.records() {
            standby
                .sync_install(&it.expect("decodes"), 1000)
                .expect("installed");
        }
        t_standby += t1.elapsed();
    }
    assert_eq!(standby.live_sessions(), active.live_sessions());
    let msgs = tx.sent.get();
    let per_m = |x: f64| x * 1e6 / f64::from(n);
    println!(
        "{n} sessions, {} records: {msgs} messages, {:.1} MB ({:.0} messages and {:.1} MB per million sessions)",
        tx.records_sent.get(),
        bytes as f64 / 1e6,
        per_m(msgs as f64),
        per_m(bytes as f64) / 1e6
    );
    println!(
        "active (walk, encode, sign): {:.2} s, {:.2} s per million sessions",
        t_active.as_secs_f64(),
        per_m(t_active.as_secs_f64())
    );
    println!(
        "standby (open, install): {:.2} s, {:.2} s per million sessions",
        t_standby.as_secs_f64(),
        per_m(t_standby.as_secs_f64())
    );
    for rate in [2000u64, 20_000, 100_000] {
        println!(
            "at ha.rate = {rate} messages/s: {:.1} s on the wire",
            msgs as f64 / rate as f64
        );
    }
}
