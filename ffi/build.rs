//! Finds DPDK with pkg-config, compiles the C shim with DPDK's own flags (a -march
//! mismatch between shim and library is a known way to crash), and runs bindgen over
//! the few real functions cgnat calls.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim.h");
    println!("cargo:rerun-if-changed=shim.c");
    let dpdk = pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
        .unwrap_or_else(|e| {
            panic!("DPDK >= 22.11 not found by pkg-config ({e}); run scripts/install-deps.sh")
        });

    // The shim, with exactly the cflags libdpdk.pc gives (includes, -include
    // rte_config.h, -march): bindgen sees the same.
    let out = std::process::Command::new("pkg-config")
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("running pkg-config");
    let clang_args: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    let mut cc = cc::Build::new();
    cc.file("shim.c").include(".").warnings(false).opt_level(3);
    for p in &dpdk.include_paths {
        cc.include(p);
    }
    let mut args = clang_args.iter();
    while let Some(a) = args.next() {
        if a == "-include" {
            if let Some(h) = args.next() {
                cc.flag("-include").flag(h);
            }
        } else if !a.starts_with("-I") {
            cc.flag(a);
        }
    }
    cc.compile("cgnat_shim");

    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&clang_args)
        .clang_arg("-I.")
        .allowlist_function("cgnat_shim_.*")
        .allowlist_function(
            "rte_eal_init|rte_eal_cleanup|rte_pktmbuf_pool_create|rte_mempool_free|rte_mempool_avail_count\
             |rte_mempool_in_use_count|rte_eth_dev_get_port_by_name|rte_eth_dev_count_avail|rte_eth_rx_queue_setup\
             |rte_eth_tx_queue_setup|rte_eth_dev_start|rte_eth_dev_stop|rte_eth_dev_close|rte_eth_promiscuous_enable\
             |rte_eth_promiscuous_disable|rte_eth_dev_socket_id|rte_ring_create|rte_ring_create_elem|rte_ring_free\
             |rte_eal_remote_launch|rte_eal_wait_lcore|rte_get_main_lcore|rte_socket_id|rte_get_tsc_hz|rte_strerror\
             |rte_lcore_count|rte_lcore_is_enabled",
        )
        .allowlist_type("cgnat_port_stats|cgnat_port_info")
        .allowlist_var("RING_F_SP_ENQ|RING_F_SC_DEQ|RTE_MAX_LCORE|SOCKET_ID_ANY")
        .opaque_type("rte_mbuf|rte_mempool|rte_ring|rte_eth_rxconf|rte_eth_txconf")
        .derive_default(true)
        .generate_comments(false)
        .layout_tests(false)
        .generate()
        .expect("bindgen over DPDK headers");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("writing bindings");
}
