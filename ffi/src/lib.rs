//! DPDK for cgnat, and the only crate of the project with `unsafe` code.
//!
//! Three layers:
//! - [`sys`]: bindgen's bindings to the system DPDK (22.11 or later, found with
//!   pkg-config, linked as shared libraries so EAL loads its PMDs by itself), limited
//!   to the items used here, plus `cgnat_shim_*`, the C shim (`shim.c`) that compiles
//!   DPDK's static inline fast path (rx/tx burst, mbuf alloc/free/adjust, ring
//!   enqueue/dequeue, `rte_lcore_id`, `rte_rdtsc`, `rte_errno`) into callable
//!   functions.
//! - A safe layer: [`Eal`] (init once, cleanup on drop), [`Mempool`] and [`Mbuf`],
//!   [`MbufBurst`] (32 owned mbufs, no heap), [`Port`] (configure, queues, bursts,
//!   stats), [`Ring`] and [`MsgRing`] (between lcores), and lcore launch ([`launch`],
//!   [`wait`]) and time ([`tsc`], [`tsc_hz`]).
//! - Soundness bookkeeping, so that no sequence of safe calls is undefined
//!   behaviour: DPDK calls before `Eal::init` or after cleanup return
//!   [`Error::EalNotRunning`] instead of touching unmapped memory; control calls are
//!   serialised; a burst on a queue that is not set up, or that another thread is
//!   polling or reconfiguring, moves nothing; a pool outlives its mbufs; a single-
//!   producer ring cannot be entered by two producers at once. The hot path pays two
//!   uncontended atomics per burst for it.
//!
//! Every `unsafe` block says why it is sound (`clippy::undocumented_unsafe_blocks` is
//! denied).
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

/// Raw bindings: bindgen's output over `wrapper.h` (DPDK's headers and the shim),
/// allowlisted to what the safe layer uses. Calling them needs `unsafe`, which is for
/// this crate only; other crates use the safe layer.
#[allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks
)]
pub mod sys {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

mod burst;
mod eal;
mod error;
mod mbuf;
mod mem;
mod port;
mod ring;
mod sig;
mod simd;

pub use burst::{Drain, MbufBurst, MAX_BURST};
pub use eal::{
    current_lcore, launch, pause, prefetch, tsc, tsc_hz, wait, Eal, JOB_PANICKED, MAX_LCORE,
};
pub use error::{Error, Result};
pub use mbuf::{Mbuf, Mempool};
pub use mem::{huge_vec, huge_zeroed};
pub use port::{
    rss_hash, softrss, Link, Port, PortConf, PortInfo, PortStats, RssConf, RssState, MAX_QUEUES,
};
pub use ring::{MsgRing, Ring, MAX_MSG_SIZE};
pub use sig::default_sigpipe;
pub use simd::slot_masks;

#[cfg(test)]
mod tests {
    use super::*;

    // The unit tests never start the EAL (that is tests/eal.rs, one per process):
    // they check that everything refuses, harmlessly, to run without it.
    #[test]
    fn nothing_runs_before_eal() {
        assert_eq!(
            Mempool::new_pktmbuf("p", 1023, 32, 2176, -1).unwrap_err(),
            Error::EalNotRunning
        );
        assert_eq!(launch(1, || 0).unwrap_err(), Error::EalNotRunning);
        assert!(Eal::lcores().is_empty());
        assert!(Eal::worker_lcores().is_empty());
        assert_eq!(Eal::lcore_count(), 0);
        assert_eq!(current_lcore(), u32::MAX, "not an lcore");
        assert_eq!(Eal::socket_id(), -1);
        assert_eq!(tsc_hz(), 0);
        assert!(tsc() > 0);
        pause();
    }

    #[test]
    #[should_panic(expected = "must be called on the main lcore")]
    fn wait_belongs_to_the_main_lcore() {
        wait(1);
    }

    #[test]
    fn softrss_gives_the_rss_specification_hashes() {
        // Microsoft's RSS verification key and its first IPv4 vectors: source
        // 66.9.149.187:2794, destination 161.142.100.80:1766, and the next one.
        let key: Vec<u8> = [
            0x6d5a_56da_u32,
            0x255b_0ec2,
            0x4167_253d,
            0x43a3_8fb0,
            0xd0ca_2bcb,
            0xae7b_30b4,
            0x77cb_2da3,
            0x8030_f20c,
            0x6a42_b73b,
            0xbeac_01fa,
        ]
        .iter()
        .flat_map(|w| w.to_be_bytes())
        .collect();
        let (s, d) = (0x4209_95bb_u32, 0xa18e_6450_u32);
        assert_eq!(softrss(&[s, d], &key), 0x323e_8fc2);
        assert_eq!(softrss(&[s, d, 2794 << 16 | 1766], &key), 0x51cc_c178);
        let (s, d) = (0xc75c_6f02_u32, 0x4145_8c53_u32);
        assert_eq!(softrss(&[s, d, 14230 << 16 | 4739], &key), 0xc626_b0ea);
    }

    #[test]
    #[should_panic(expected = "softrss hashes at most")]
    fn softrss_refuses_a_short_key() {
        softrss(&[1, 2, 3], &[0; 12]);
    }

    #[test]
    fn mempool_cache_limits_are_explained() {
        let e = Mempool::new_pktmbuf("p", 100, 512, 2176, -1).unwrap_err();
        assert!(e.to_string().contains("at most 512"), "{e}");
    }

    #[test]
    fn api_types_are_send_and_sync_as_documented() {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<Mbuf>();
        send::<MbufBurst>();
        send::<Mempool>();
        sync::<Mempool>();
        send::<Port>();
        sync::<Port>();
        send::<Ring>();
        sync::<Ring>();
        send::<MsgRing<[u32; 3]>>();
        sync::<MsgRing<[u32; 3]>>();
    }
}
