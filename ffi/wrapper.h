/* What bindgen sees of DPDK: only the real (non-inline) functions cgnat calls. The
 * static inline fast-path functions are re-exported by shim.c. */
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <rte_cycles.h>
#include "shim.h"
