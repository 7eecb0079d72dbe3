/* cgnat's C shim: DPDK's static inline functions and struct-heavy calls, re-exported
 * as plain functions with plain arguments so the Rust side never depends on the
 * layout of rte_mbuf, rte_eth_conf or rte_eth_link. */
#ifndef CGNAT_SHIM_H
#define CGNAT_SHIM_H
#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

struct cgnat_port_stats {
    uint64_t ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors, rx_nombuf;
};

struct cgnat_port_info {
    char driver_name[64];
    uint16_t max_rx_queues;
    uint16_t max_tx_queues;
    uint64_t flow_type_rss_offloads;
};

uint16_t cgnat_shim_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t cgnat_shim_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *cgnat_shim_pktmbuf_alloc(struct rte_mempool *mp);
void cgnat_shim_pktmbuf_free(struct rte_mbuf *m);
int cgnat_shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned n);
void cgnat_shim_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned n);
uint8_t *cgnat_shim_mtod(struct rte_mbuf *m);
uint8_t *cgnat_shim_data(struct rte_mbuf *m, uint16_t *len);
uint32_t cgnat_shim_pkt_len(const struct rte_mbuf *m);
uint16_t cgnat_shim_data_len(const struct rte_mbuf *m);
uint16_t cgnat_shim_nb_segs(const struct rte_mbuf *m);
uint16_t cgnat_shim_headroom(const struct rte_mbuf *m);
uint16_t cgnat_shim_tailroom(const struct rte_mbuf *m);
int cgnat_shim_prepend(struct rte_mbuf *m, uint16_t len);
int cgnat_shim_append(struct rte_mbuf *m, uint16_t len);
int cgnat_shim_adj(struct rte_mbuf *m, uint16_t len);
int cgnat_shim_trim(struct rte_mbuf *m, uint16_t len);
uint16_t cgnat_shim_mbuf_port(const struct rte_mbuf *m);
void cgnat_shim_mbuf_set_port(struct rte_mbuf *m, uint16_t port);

unsigned cgnat_shim_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n);
unsigned cgnat_shim_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n);
unsigned cgnat_shim_ring_enqueue_burst_elem(struct rte_ring *r, const void *objs, unsigned esize, unsigned n);
unsigned cgnat_shim_ring_dequeue_burst_elem(struct rte_ring *r, void *objs, unsigned esize, unsigned n);
unsigned cgnat_shim_ring_count(const struct rte_ring *r);
unsigned cgnat_shim_ring_free_count(const struct rte_ring *r);

unsigned cgnat_shim_lcore_id(void);
uint64_t cgnat_shim_rdtsc(void);
int cgnat_shim_errno(void);
void cgnat_shim_pause(void);
void cgnat_shim_log_to_stderr(void);

int cgnat_shim_port_configure(uint16_t port, uint16_t nb_rx, uint16_t nb_tx, int rss, uint16_t mtu);
int cgnat_shim_port_info(uint16_t port, struct cgnat_port_info *out);
int cgnat_shim_port_mac(uint16_t port, uint8_t out[6]);
int cgnat_shim_port_link(uint16_t port, int *up, uint32_t *speed_mbps);
int cgnat_shim_port_stats(uint16_t port, struct cgnat_port_stats *out);
#endif
