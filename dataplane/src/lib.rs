//! cgnat's dataplane: wire formats, NAT sessions and pools, the per-packet pipeline,
//! and (in the binary) the DPDK workers and control lcore that drive it.
//!
//! Everything in this library is generic over [`buf::PacketBuf`] and runs without EAL.
//! It links `cgnat-ffi` for four things only: the [`buf::PacketBuf`] impl over an mbuf
//! (`dpdk.rs`), `prefetch`, `tsc` (the burst stages' cycle counters), and the
//! huge-page table allocators; EAL, ports and rings are
//! driven only by the binary (`runtime.rs`).
#![forbid(unsafe_code)]

pub mod alg;
pub mod alg_contract;
pub mod alg_stream;
pub mod alg_tag;
pub mod backlog;
pub mod buf;
pub mod counters;
pub mod dispatch;
pub mod dpdk;
pub mod fixed_map;
pub mod frag;
pub mod ha;
pub mod harness;
pub mod inspect;
#[cfg(test)]
mod layering_tests;
pub mod log;
pub mod mangle;
pub mod nat;
pub mod nd;
pub mod neighbors;
pub mod ordinary;
pub mod pcap;
pub mod pcp;
pub mod pipeline;
pub mod replay;
pub mod side;
pub mod vector;
pub mod vlan;
pub mod wire;
pub mod xlat;
