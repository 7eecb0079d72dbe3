/* cgnat's C shim over DPDK.
 *
 * DPDK's fast path (rx/tx burst, mbuf alloc/free and adjust, ring enqueue/dequeue,
 * rte_lcore_id, rte_rdtsc, rte_errno) is made of static inline functions and macros,
 * which have no symbol Rust could link against. shim.c compiles them, with exactly the
 * flags pkg-config gives for libdpdk, into plain functions named cgnat_shim_*.
 *
 * The struct-heavy control calls (rte_eth_dev_configure, rte_eth_dev_info_get,
 * rte_eth_link_get_nowait, rte_eth_stats_get, rte_eth_macaddr_get) are also wrapped,
 * with small flat structs, so the Rust side never depends on the layout of
 * rte_eth_conf, rte_eth_dev_info or rte_eth_link.
 */
#ifndef CGNAT_SHIM_H
#define CGNAT_SHIM_H
#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

/* --- mbufs --- */
struct rte_mbuf *cgnat_shim_pktmbuf_alloc(struct rte_mempool *mp);
/* 0 on success (all n allocated), negative errno (none allocated) otherwise. */
int cgnat_shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n);
void cgnat_shim_pktmbuf_free(struct rte_mbuf *m);
void cgnat_shim_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int n);
uint8_t *cgnat_shim_pktmbuf_mtod(struct rte_mbuf *m);
uint32_t cgnat_shim_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t cgnat_shim_pktmbuf_data_len(const struct rte_mbuf *m);
void cgnat_shim_pktmbuf_set_pkt_len(struct rte_mbuf *m, uint32_t len);
void cgnat_shim_pktmbuf_set_data_len(struct rte_mbuf *m, uint16_t len);
uint16_t cgnat_shim_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t cgnat_shim_pktmbuf_tailroom(const struct rte_mbuf *m);
/* These four return 1 when done, 0 when the mbuf had no room (it is then unchanged). */
int cgnat_shim_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
int cgnat_shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
int cgnat_shim_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int cgnat_shim_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
int cgnat_shim_pktmbuf_is_contiguous(const struct rte_mbuf *m);
uint16_t cgnat_shim_mbuf_refcnt(const struct rte_mbuf *m);
uint16_t cgnat_shim_mbuf_port(const struct rte_mbuf *m);
void cgnat_shim_mbuf_set_port(struct rte_mbuf *m, uint16_t port);
uint64_t cgnat_shim_mbuf_ol_flags(const struct rte_mbuf *m);
uint32_t cgnat_shim_mbuf_packet_type(const struct rte_mbuf *m);
/* Registers cgnat's 8-byte mbuf dynamic field (an ALG frame's TSC stamp): its offset
 * in struct rte_mbuf, or -1. */
int cgnat_shim_mbuf_stamp_register(void);

/* --- ethdev fast path --- */
uint16_t cgnat_shim_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t cgnat_shim_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);

/* --- rings --- */
unsigned int cgnat_shim_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n);
unsigned int cgnat_shim_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n);
unsigned int cgnat_shim_ring_enqueue_burst_elem(struct rte_ring *r, const void *objs,
                                                unsigned int esize, unsigned int n);
unsigned int cgnat_shim_ring_dequeue_burst_elem(struct rte_ring *r, void *objs,
                                                unsigned int esize, unsigned int n);
unsigned int cgnat_shim_ring_count(const struct rte_ring *r);
unsigned int cgnat_shim_ring_free_count(const struct rte_ring *r);
unsigned int cgnat_shim_ring_capacity(const struct rte_ring *r);

/* --- lcores, time, errors --- */
unsigned int cgnat_shim_lcore_id(void);
uint64_t cgnat_shim_rdtsc(void);
void cgnat_shim_pause(void);
int cgnat_shim_errno(void);
/* rte_eal_init, keeping stdout the program's own: DPDK's log goes to stderr (EAL on
 * Linux logs to stdout and syslog by default), and so does anything EAL prints with
 * printf during init (its usage text after a bad argument): file descriptor 1 points
 * at stderr for the duration of the call, for the whole process. */
int cgnat_shim_eal_init(int argc, char **argv);

/* --- ethdev control path, flattened --- */
struct cgnat_port_info {
    char driver_name[64];
    uint32_t if_index;
    uint16_t max_rx_queues;
    uint16_t max_tx_queues;
    uint16_t min_mtu;
    uint16_t max_mtu;
    uint32_t max_rx_pktlen;
    uint16_t reta_size;
    uint8_t hash_key_size;
    uint64_t flow_type_rss_offloads;
    uint64_t rx_offload_capa;
    uint64_t tx_offload_capa;
};

struct cgnat_port_link {
    uint32_t speed_mbps; /* 0 when unknown */
    uint8_t up;
    uint8_t full_duplex;
    uint8_t autoneg;
};

struct cgnat_port_stats {
    uint64_t ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors, rx_nombuf;
};

/* rss: spread over the RX queues by IP hash when the device can and nb_rx > 1.
 * rss_hf (non-zero, with key_len > 0): steer instead, with exactly these hash types
 * and `key` repeated to the device's key length.
 * mtu: 0 for the device's default. Returns 0 or a negative errno. */
int cgnat_shim_port_configure(uint16_t port, uint16_t nb_rx, uint16_t nb_tx, int rss,
                              uint64_t rss_hf, const uint8_t *key, uint8_t key_len, uint16_t mtu);
/* Largest redirection table cgnat steers with. */
#define CGNAT_RETA_MAX 4096
/* Programs the redirection table of a configured (RSS) port, entry i to queue
 * want[i] (want_size must be the device's table size), then reads back the table
 * (reta, CGNAT_RETA_MAX entries of room, and its size), the key (key, 255 bytes of
 * room, and its length) and the hash types. -ENOTSUP when the device has no table (or
 * one too large), -EINVAL when want_size is not its size. */
int cgnat_shim_port_rss_steer(uint16_t port, const uint16_t *want, uint16_t want_size, uint16_t *reta,
                              uint16_t *reta_size, uint8_t *key, uint8_t *key_len, uint64_t *rss_hf);
/* Most input words cgnat_shim_softrss hashes. */
#define CGNAT_SOFTRSS_WORDS 15
/* DPDK's rte_softrss over `len` host-order words with a key of key_len bytes (at
 * least 4 * (len + 1), at most 64); 0 when the lengths are out of range. */
uint32_t cgnat_shim_softrss(const uint32_t *tuple, uint32_t len, const uint8_t *key, uint32_t key_len);
int cgnat_shim_port_info(uint16_t port, struct cgnat_port_info *out);
int cgnat_shim_port_mac(uint16_t port, uint8_t out[6]);
int cgnat_shim_port_link(uint16_t port, struct cgnat_port_link *out);
int cgnat_shim_port_stats(uint16_t port, struct cgnat_port_stats *out);
#endif
