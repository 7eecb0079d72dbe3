//! What the burst-path benchmarks share.

use cgnat_dataplane::counters::STAGES;
use cgnat_dataplane::harness::Harness;

/// The worker's cycles per stage ([`STAGES`]) divided by `n`, as "name cycles, ...".
pub fn stage_cycles(h: &Harness, n: f64) -> String {
    let c = h.worker.counters();
    let stages: Vec<String> = STAGES
        .iter()
        .enumerate()
        .map(|(k, s)| format!("{s} {:.0}", c.stage_cycles[k].get() as f64 / n))
        .collect();
    stages.join(", ")
}

/// Zeroes the worker's stage cycle counters (after an untimed fill).
pub fn reset_stage_cycles(h: &Harness) {
    for k in 0..STAGES.len() {
        h.worker.counters().stage_cycles[k].set(0);
    }
}
