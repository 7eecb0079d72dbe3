//! Test kit: classic pcap files, and frames of subscriber traffic for the NAT's inside
//! port. Used by `gen-traffic` (the demo's sample traffic, the benchmarks' inputs) and
//! by integration tests.
#![forbid(unsafe_code)]

pub mod pcap;
pub mod traffic;
