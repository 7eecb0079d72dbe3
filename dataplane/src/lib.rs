//! cgnat's dataplane: wire formats, NAT sessions and pools, the per-packet pipeline,
//! and (in the binary) the DPDK workers and control lcore that drive it.
//!
//! Everything in this library is generic over [`buf::PacketBuf`] and runs without EAL;
//! only the binary touches DPDK, through `cgnat-ffi`.
#![forbid(unsafe_code)]

pub mod alg;
pub mod alg_text;
pub mod buf;
pub mod counters;
pub mod dpdk;
pub mod frag;
pub mod harness;
pub mod inspect;
pub mod log;
pub mod mangle;
pub mod nat;
pub mod neighbors;
pub mod pcap;
pub mod pipeline;
pub mod replay;
pub mod wire;
