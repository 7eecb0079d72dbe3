//! Established flows through the burst path (figures (a) and (b) of scripts/bench,
//! without DPDK): `N` UDP flows from `S` subscribers, one datagram each per pass, as
//! vectors of `VECTOR` through `vector::receive_burst` on a harness worker. A first
//! pass creates the sessions (untimed); `P` passes after it are timed, only the
//! bursts' own processing (copying the frames in before each burst is not).
//! Prints the nanoseconds and TSC cycles per packet and the worker's per-stage cycles
//! per packet of the timed passes.
//!
//! `cargo bench -p cgnat-dataplane --bench established [-- N S P]` (by default
//! 65,536 flows of 4,096 subscribers, 20 passes: (a); (b) is `4194304 65536 2`).
//! Also the workload to count instructions with (no PMU needed):
//! `valgrind --tool=callgrind target/release/deps/established-* 65536 4096 2`.

use cgnat_config::Config;
use cgnat_dataplane::buf::VecBuf;
use cgnat_dataplane::dispatch::VecOutputs;
use cgnat_dataplane::harness::{Harness, INSIDE_MAC};
use cgnat_dataplane::pipeline::Side;
use cgnat_dataplane::vector::{self, VECTOR};
use std::net::Ipv4Addr;
use std::time::Instant;

mod common;

/// Sized as scripts/bench's (a) and (b): max_sessions at least the flows, a /20 pool.
fn config_text(flows: u32) -> String {
    cgnat_testkit::null_ports_config(&format!(
        "pool = [\"198.51.96.0/20\"]\nmax_sessions = {}",
        flows.max(1 << 20)
    ))
}

/// The datagram of flow `k` of `subs` subscribers: subscriber `k % subs`, a source
/// port per round of them, padded to the minimum frame.
fn datagram(k: u32, subs: u32) -> Vec<u8> {
    let src = Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 1, 0)) + k % subs);
    let dst = Ipv4Addr::new(192, 0, 2, 1 + (k % 200) as u8);
    let sport = 1024 + (k / subs) as u16;
    let b = etherparse::PacketBuilder::ethernet2([2, 0xbb, 0, 0, 0, 1], INSIDE_MAC)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, 53);
    let mut f = Vec::with_capacity(64);
    b.write(&mut f, &[0; 18]).expect("a datagram");
    f.resize(f.len().max(60), 0);
    f
}

fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let arg = |i: usize, d: u32| args.get(i).copied().unwrap_or(d);
    let (flows, subs, passes) = (arg(0, 65_536), arg(1, 4_096), arg(2, 20));
    let cfg = Config::parse(&config_text(flows), "established-bench.toml")
        .unwrap_or_else(|e| panic!("{e}"));
    let now = 1000;
    let mut h = Harness::new(&cfg, now);
    let mut o = VecOutputs::default();
    let frames: Vec<Vec<u8>> = (0..flows).map(|k| datagram(k, subs)).collect();
    pass(&mut h, &mut o, &frames, now, &mut 0, &mut 0);
    assert_eq!(h.worker.nat().live_sessions(), flows, "a session per flow");
    common::reset_stage_cycles(&h);
    let (mut ns, mut cycles) = (0u128, 0u64);
    let (wall, tsc0) = (Instant::now(), cgnat_ffi::tsc());
    for p in 0..passes {
        pass(&mut h, &mut o, &frames, now + 1 + p, &mut ns, &mut cycles);
    }
    let hz = cgnat_ffi::tsc().wrapping_sub(tsc0) as f64 / wall.elapsed().as_secs_f64();
    assert_eq!(h.worker.nat().live_sessions(), flows, "no session created");
    let n = f64::from(flows) * f64::from(passes.max(1));
    let per = |x: f64| x / n;
    println!(
        "established: {flows} flows of {subs} subscribers, {passes} passes in bursts of \
         {VECTOR}: {:.1} ns, {:.0} cycles per packet ({:.2} Mpps; TSC {:.2} GHz)",
        per(ns as f64),
        per(cycles as f64),
        n / (ns as f64 / 1e9) / 1e6,
        hz / 1e9
    );
    println!(
        "established: stage cycles per packet: {}",
        common::stage_cycles(&h, n)
    );
}

/// One pass over `frames` in bursts of [`VECTOR`], adding the bursts' time and TSC
/// cycles to `ns` and `cycles`; every frame must go out translated.
fn pass(
    h: &mut Harness,
    o: &mut VecOutputs<VecBuf>,
    frames: &[Vec<u8>],
    now: u32,
    ns: &mut u128,
    cycles: &mut u64,
) {
    for chunk in frames.chunks(VECTOR) {
        let bufs: Vec<(VecBuf, Side)> = chunk
            .iter()
            .map(|f| (VecBuf::new(f), Side::Inside))
            .collect();
        let (t, c) = (Instant::now(), cgnat_ffi::tsc());
        vector::receive_burst(&mut h.worker, bufs, false, now, o);
        *cycles += cgnat_ffi::tsc().wrapping_sub(c);
        *ns += t.elapsed().as_nanos();
        assert_eq!(o.tx.len(), chunk.len(), "every frame translated");
        o.tx.clear();
    }
}
