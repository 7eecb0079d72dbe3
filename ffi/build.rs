//! Build script of cgnat-ffi: finds DPDK (>= 22.11) with pkg-config and links it as
//! shared libraries (so EAL loads the PMDs, net_pcap, net_null, net_ring,
//! net_af_packet..., from its plugin directory by itself), compiles the C shim with
//! exactly pkg-config's cflags (a `-march` or `rte_config.h` mismatch between shim and
//! library is a known way to crash, capsule issue #119), and runs bindgen, with the
//! same flags, over the few DPDK items the safe layer calls.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const MIN_DPDK: &str = "22.11";

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    for f in ["wrapper.h", "shim.h", "shim.c"] {
        println!("cargo:rerun-if-changed={f}");
    }

    // Link flags: the pkg-config crate prints cargo:rustc-link-lib/-search for every
    // -l/-L of `pkg-config --libs libdpdk` (dynamic, as the .pc file describes it).
    let lib = pkg_config::Config::new()
        .atleast_version(MIN_DPDK)
        .probe("libdpdk")
        .unwrap_or_else(|e| {
            panic!(
                "DPDK >= {MIN_DPDK} was not found by pkg-config: {e}\n\
                 Install it (Debian 12: apt-get install libdpdk-dev dpdk pkg-config \
                 clang libclang-dev) or point PKG_CONFIG_PATH at its libdpdk.pc."
            )
        });
    println!("cargo:version={}", lib.version);

    let cflags = dpdk_cflags();
    println!("cargo:cflags={}", cflags.join(" "));

    // The shim: pkg-config's cflags verbatim and in order (`-include rte_config.h` is
    // two words and must stay together), plus optimisation: the shim is the fast path
    // (rx/tx burst, mbuf free) even in debug builds.
    let mut cc = cc::Build::new();
    cc.file(dir.join("shim.c")).include(&dir).opt_level(2);
    for f in &cflags {
        cc.flag(f);
    }
    cc.compile("cgnat_shim");

    let bindings = bindgen::Builder::default()
        .header(dir.join("wrapper.h").to_string_lossy())
        .clang_args(&cflags)
        .clang_arg(format!("-I{}", dir.display()))
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        // Only what the safe layer calls: bindgen's cost is parsing the headers, the
        // size of its output is what the crate then compiles.
        .allowlist_function("cgnat_shim_.*")
        .allowlist_function(
            "rte_eal_(cleanup|get_lcore_state|mp_wait_lcore|remote_launch|wait_lcore)\
             |rte_(get_main_lcore|lcore_count|lcore_is_enabled|lcore_to_socket_id|socket_id)\
             |rte_(get_tsc_hz|strerror)\
             |rte_pktmbuf_pool_create|rte_mempool_(free|avail_count|in_use_count)\
             |rte_ring_(create|create_elem|free)\
             |rte_eth_dev_(count_avail|get_port_by_name|get_name_by_port|is_valid_port\
             |socket_id|start|stop|close)\
             |rte_eth_(rx|tx)_queue_setup|rte_eth_promiscuous_(enable|disable)\
             |rte_eth_stats_reset",
        )
        .allowlist_type("rte_mbuf|rte_lcore_state_t|cgnat_port_.*")
        .allowlist_var(
            "RTE_MAX_ETHPORTS|RTE_MAX_LCORE|RTE_MAX_QUEUES_PER_PORT|RTE_PKTMBUF_HEADROOM\
             |RTE_MEMPOOL_CACHE_MAX_SIZE|RTE_ETH_NAME_MAX_LEN|SOCKET_ID_ANY|LCORE_ID_ANY\
             |RING_F_(SP_ENQ|SC_DEQ|EXACT_SZ)|CGNAT_RETA_MAX|CGNAT_SOFTRSS_WORDS",
        )
        // The Rust side reads a few first-cache-line fields of rte_mbuf (buf_addr,
        // data_off, data_len, pkt_len, nb_segs, port); what the mbuf points at, and
        // the queue configurations (always NULL: driver defaults), stay opaque.
        .opaque_type("rte_mempool|rte_mbuf_ext_shared_info|rte_ring|rte_eth_(rx|tx)conf")
        .rustified_enum("rte_lcore_state_t")
        .derive_default(true)
        .derive_debug(false)
        .generate_comments(false)
        .layout_tests(true)
        .merge_extern_blocks(true)
        .generate()
        .expect("bindgen over the DPDK headers (is libclang installed?)");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("writing bindings.rs");
}

/// `pkg-config --cflags libdpdk`, word by word (include paths, `-include
/// rte_config.h`, `-march=...`). The pkg-config crate keeps only -I and -D, so ask the
/// tool itself, the same one (PKG_CONFIG) and search path the crate used.
fn dpdk_cflags() -> Vec<String> {
    println!("cargo:rerun-if-env-changed=PKG_CONFIG");
    let tool = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let out = Command::new(&tool)
        .args(["--cflags", "libdpdk"])
        .output()
        .unwrap_or_else(|e| panic!("running `{tool} --cflags libdpdk`: {e}"));
    assert!(
        out.status.success(),
        "`{tool} --cflags libdpdk` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("pkg-config output is UTF-8")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}
