//! DPDK bindings (being written).
