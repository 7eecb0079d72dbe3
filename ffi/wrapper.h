/* What bindgen reads: the DPDK headers whose real (exported) functions and types the
 * Rust side calls, plus cgnat's shim. build.rs allowlists the few items used, so the
 * bindings stay small; DPDK's static inline fast-path functions are not callable from
 * Rust and are re-exported by shim.c instead. */
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include "shim.h"
