//! Session creation through the burst path (figure (c) of scripts/bench, without
//! DPDK): `N` TCP SYNs of distinct flows from 65,536 subscribers, as vectors of `VECTOR`
//! through `vector::receive_burst` on a harness worker whose tables are sized as
//! (c)'s (max_sessions 2,097,152, pool 198.51.96.0/20, the defaults otherwise).
//! Prints the nanoseconds and TSC cycles per new session (only the bursts' own
//! processing is timed: building the frames before and freeing them after are not)
//! and the worker's per-stage cycles per new session.
//!
//! `cargo bench -p cgnat-dataplane --bench create [-- N] [warm]` (N: 1,000,000 by
//! default). A cold run fills fresh tables (whose pages the kernel zeroes at first
//! touch, inside the timed bursts); `warm` first fills them once untimed and expires
//! every session, then times a second fill: the steady state of a running
//! appliance, whose free session list is no longer in record order.
//! Plain `std::time::Instant` and the TSC: one long run per invocation, no
//! statistics framework needed (criterion's repeated short samples would each start
//! from a different table fill, and the figure is the cost at a fill like (c)'s);
//! run it several times, alternating builds, for an A/B.

use cgnat_config::Config;
use cgnat_dataplane::buf::VecBuf;
use cgnat_dataplane::dispatch::VecOutputs;
use cgnat_dataplane::harness::{Harness, INSIDE_MAC};
use cgnat_dataplane::pipeline::Side;
use cgnat_dataplane::vector::{self, VECTOR};
use std::net::Ipv4Addr;
use std::time::Instant;

mod common;

const SUBSCRIBERS: u32 = 65_536;

/// Sized as scripts/bench's (c): max_sessions 2,097,152, a /20 pool.
fn config_text() -> String {
    cgnat_testkit::null_ports_config("pool = [\"198.51.96.0/20\"]\nmax_sessions = 2097152")
}

/// The SYN of flow `k`: subscriber `k % 65,536`, a source port per round of them.
fn syn(k: u32) -> Vec<u8> {
    let src = Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 1, 0)) + k % SUBSCRIBERS);
    let dst = Ipv4Addr::new(192, 0, 2, 1 + (k % 200) as u8);
    let sport = 1024 + (k / SUBSCRIBERS) as u16;
    let b = etherparse::PacketBuilder::ethernet2([2, 0xbb, 0, 0, 0, 1], INSIDE_MAC)
        .ipv4(src.octets(), dst.octets(), 64)
        .tcp(sport, 80, k, 65535)
        .syn();
    let mut f = Vec::with_capacity(64);
    b.write(&mut f, &[]).expect("a SYN");
    // Padded to the minimum frame, as (c)'s file is.
    f.resize(f.len().max(60), 0);
    f
}

fn main() {
    let n: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let cfg = Config::parse(&config_text(), "create-bench.toml").unwrap_or_else(|e| panic!("{e}"));
    let now = 1000;
    let mut h = Harness::new(&cfg, now);
    let mut o = VecOutputs::default();
    let mut now = now;
    if std::env::args().any(|a| a == "warm") {
        fill(&mut h, &mut o, n, now, &mut 0, &mut 0);
        now += 100_000;
        h.expire(now);
        assert_eq!(h.worker.nat().live_sessions(), 0, "all expired");
        common::reset_stage_cycles(&h);
    }
    let (mut ns, mut cycles) = (0u128, 0u64);
    let (wall, tsc0) = (Instant::now(), cgnat_ffi::tsc());
    fill(&mut h, &mut o, n, now, &mut ns, &mut cycles);
    let hz = cgnat_ffi::tsc().wrapping_sub(tsc0) as f64 / wall.elapsed().as_secs_f64();
    report(&h, n, ns, cycles, hz);
}

/// Creates the sessions of `n` SYNs in bursts of [`VECTOR`], adding the time and TSC
/// cycles of the bursts to `ns` and `cycles`.
fn fill(
    h: &mut Harness,
    o: &mut VecOutputs<VecBuf>,
    n: u32,
    now: u32,
    ns: &mut u128,
    cycles: &mut u64,
) {
    let mut k = 0;
    while k < n {
        let m = (n - k).min(VECTOR as u32);
        let bufs: Vec<(VecBuf, Side)> = (k..k + m)
            .map(|j| (VecBuf::new(&syn(j)), Side::Inside))
            .collect();
        let (t, c) = (Instant::now(), cgnat_ffi::tsc());
        vector::receive_burst(&mut h.worker, bufs, false, now, o);
        *cycles += cgnat_ffi::tsc().wrapping_sub(c);
        *ns += t.elapsed().as_nanos();
        o.tx.clear();
        o.dropped.clear();
        o.control.clear();
        k += m;
    }
}

fn report(h: &Harness, n: u32, ns: u128, cycles: u64, hz: f64) {
    let created = h.worker.nat().live_sessions();
    assert_eq!(created, n, "every SYN created its session");
    let per = |x: f64| x / f64::from(n);
    println!(
        "create: {n} new sessions in bursts of {VECTOR}: {:.1} ns, {:.0} cycles per new session \
         ({:.2} M/s; TSC {:.2} GHz)",
        per(ns as f64),
        per(cycles as f64),
        f64::from(n) / (ns as f64 / 1e9) / 1e6,
        hz / 1e9
    );
    println!(
        "create: stage cycles per new session: {}",
        common::stage_cycles(h, f64::from(n))
    );
}
