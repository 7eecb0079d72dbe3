/* See shim.h. build.rs compiles this file with exactly the cflags pkg-config gives
 * for libdpdk (include paths, -include rte_config.h, -march), so the inline code
 * below agrees with the library about every struct layout and instruction set. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <rte_thash.h>

#include "shim.h"

/* --- mbufs --- */

struct rte_mbuf *cgnat_shim_pktmbuf_alloc(struct rte_mempool *mp)
{
    return rte_pktmbuf_alloc(mp);
}

int cgnat_shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int n)
{
    return rte_pktmbuf_alloc_bulk(mp, mbufs, n);
}

void cgnat_shim_pktmbuf_free(struct rte_mbuf *m)
{
    rte_pktmbuf_free(m);
}

void cgnat_shim_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int n)
{
    rte_pktmbuf_free_bulk(mbufs, n);
}

uint8_t *cgnat_shim_pktmbuf_mtod(struct rte_mbuf *m)
{
    return rte_pktmbuf_mtod(m, uint8_t *);
}

uint32_t cgnat_shim_pktmbuf_pkt_len(const struct rte_mbuf *m)
{
    return rte_pktmbuf_pkt_len(m);
}

uint16_t cgnat_shim_pktmbuf_data_len(const struct rte_mbuf *m)
{
    return rte_pktmbuf_data_len(m);
}

void cgnat_shim_pktmbuf_set_pkt_len(struct rte_mbuf *m, uint32_t len)
{
    m->pkt_len = len;
}

void cgnat_shim_pktmbuf_set_data_len(struct rte_mbuf *m, uint16_t len)
{
    m->data_len = len;
}

uint16_t cgnat_shim_pktmbuf_headroom(const struct rte_mbuf *m)
{
    return rte_pktmbuf_headroom(m);
}

uint16_t cgnat_shim_pktmbuf_tailroom(const struct rte_mbuf *m)
{
    return rte_pktmbuf_tailroom(m);
}

int cgnat_shim_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len)
{
    return rte_pktmbuf_prepend(m, len) != NULL;
}

int cgnat_shim_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
    return rte_pktmbuf_append(m, len) != NULL;
}

int cgnat_shim_pktmbuf_adj(struct rte_mbuf *m, uint16_t len)
{
    return rte_pktmbuf_adj(m, len) != NULL;
}

int cgnat_shim_pktmbuf_trim(struct rte_mbuf *m, uint16_t len)
{
    return rte_pktmbuf_trim(m, len) == 0;
}

int cgnat_shim_pktmbuf_is_contiguous(const struct rte_mbuf *m)
{
    return rte_pktmbuf_is_contiguous(m);
}

uint16_t cgnat_shim_mbuf_refcnt(const struct rte_mbuf *m)
{
    return rte_mbuf_refcnt_read(m);
}

uint16_t cgnat_shim_mbuf_port(const struct rte_mbuf *m)
{
    return m->port;
}

void cgnat_shim_mbuf_set_port(struct rte_mbuf *m, uint16_t port)
{
    m->port = port;
}

uint64_t cgnat_shim_mbuf_ol_flags(const struct rte_mbuf *m)
{
    return m->ol_flags;
}

uint32_t cgnat_shim_mbuf_packet_type(const struct rte_mbuf *m)
{
    return m->packet_type;
}

int cgnat_shim_mbuf_stamp_register(void)
{
    static const struct rte_mbuf_dynfield desc = {
        .name = "cgnat_dynfield_alg_stamp",
        .size = sizeof(uint64_t),
        .align = __alignof__(uint64_t),
    };
    return rte_mbuf_dynfield_register(&desc);
}

/* --- ethdev fast path --- */

uint16_t cgnat_shim_eth_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
    return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t cgnat_shim_eth_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
    return rte_eth_tx_burst(port, queue, pkts, n);
}

/* --- rings --- */

unsigned int cgnat_shim_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned int n)
{
    return rte_ring_enqueue_burst(r, objs, n, NULL);
}

unsigned int cgnat_shim_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned int n)
{
    return rte_ring_dequeue_burst(r, objs, n, NULL);
}

unsigned int cgnat_shim_ring_enqueue_burst_elem(struct rte_ring *r, const void *objs,
                                                unsigned int esize, unsigned int n)
{
    return rte_ring_enqueue_burst_elem(r, objs, esize, n, NULL);
}

unsigned int cgnat_shim_ring_dequeue_burst_elem(struct rte_ring *r, void *objs,
                                                unsigned int esize, unsigned int n)
{
    return rte_ring_dequeue_burst_elem(r, objs, esize, n, NULL);
}

unsigned int cgnat_shim_ring_count(const struct rte_ring *r)
{
    return rte_ring_count(r);
}

unsigned int cgnat_shim_ring_free_count(const struct rte_ring *r)
{
    return rte_ring_free_count(r);
}

unsigned int cgnat_shim_ring_capacity(const struct rte_ring *r)
{
    return rte_ring_get_capacity(r);
}

/* --- lcores, time, errors --- */

unsigned int cgnat_shim_lcore_id(void)
{
    return rte_lcore_id();
}

uint64_t cgnat_shim_rdtsc(void)
{
    return rte_rdtsc();
}

void cgnat_shim_pause(void)
{
    rte_pause();
}

int cgnat_shim_errno(void)
{
    return rte_errno;
}

int cgnat_shim_eal_init(int argc, char **argv)
{
    int saved, rc;

    rte_openlog_stream(stderr);
    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    if (saved >= 0 && dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
        close(saved);
        saved = -1;
    }
    rc = rte_eal_init(argc, argv);
    /* rte_errno is DPDK's own per-lcore variable: the calls below leave it alone. */
    fflush(stdout);
    if (saved >= 0) {
        dup2(saved, STDOUT_FILENO);
        close(saved);
    }
    return rc;
}

/* --- ethdev control path --- */

/* The Rust side names RSS hash types by value (ffi/src/port.rs, rss_hash): they must
 * be DPDK's. */
_Static_assert(RTE_ETH_RSS_IPV4 == 1ULL << 2, "RTE_ETH_RSS_IPV4");
_Static_assert(RTE_ETH_RSS_FRAG_IPV4 == 1ULL << 3, "RTE_ETH_RSS_FRAG_IPV4");
_Static_assert(RTE_ETH_RSS_NONFRAG_IPV4_TCP == 1ULL << 4, "RTE_ETH_RSS_NONFRAG_IPV4_TCP");
_Static_assert(RTE_ETH_RSS_NONFRAG_IPV4_UDP == 1ULL << 5, "RTE_ETH_RSS_NONFRAG_IPV4_UDP");
_Static_assert(RTE_ETH_RSS_NONFRAG_IPV4_OTHER == 1ULL << 7, "RTE_ETH_RSS_NONFRAG_IPV4_OTHER");
_Static_assert(RTE_ETH_RSS_L3_SRC_ONLY == 1ULL << 63, "RTE_ETH_RSS_L3_SRC_ONLY");
_Static_assert(RTE_ETH_RSS_L3_DST_ONLY == 1ULL << 62, "RTE_ETH_RSS_L3_DST_ONLY");
_Static_assert(RTE_ETH_RSS_L4_SRC_ONLY == 1ULL << 61, "RTE_ETH_RSS_L4_SRC_ONLY");
_Static_assert(RTE_ETH_RSS_L4_DST_ONLY == 1ULL << 60, "RTE_ETH_RSS_L4_DST_ONLY");

int cgnat_shim_port_configure(uint16_t port, uint16_t nb_rx, uint16_t nb_tx, int rss,
                              uint64_t rss_hf, const uint8_t *key, uint8_t key_len, uint16_t mtu)
{
    struct rte_eth_conf conf;
    struct rte_eth_dev_info info;
    uint8_t full_key[255];
    int rc;

    memset(&conf, 0, sizeof(conf));
    rc = rte_eth_dev_info_get(port, &info);
    if (rc != 0)
        return rc;
    if (rss_hf != 0 && nb_rx > 1 && key != NULL && key_len > 0) {
        /* Steering: exactly these hash types, and this key repeated to the device's
         * key length (the caller checked the device offers them). */
        uint8_t n = info.hash_key_size != 0 ? info.hash_key_size : key_len;
        for (unsigned int i = 0; i < n; i++)
            full_key[i] = key[i % key_len];
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_key = full_key;
        conf.rx_adv_conf.rss_conf.rss_key_len = n;
        conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
    } else if (rss && nb_rx > 1 && (info.flow_type_rss_offloads & RTE_ETH_RSS_IP) != 0) {
        /* RSS only where it means something: several queues and a device that can hash
         * on IP addresses (software vdevs such as net_pcap and net_ring cannot). */
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_key = NULL;
        conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads & RTE_ETH_RSS_IP;
    }
    conf.rxmode.mtu = mtu; /* 0: the device's default (RTE_ETHER_MTU) */
    return rte_eth_dev_configure(port, nb_rx, nb_tx, &conf);
}

#define CGNAT_RETA_GROUPS (CGNAT_RETA_MAX / RTE_ETH_RETA_GROUP_SIZE)

int cgnat_shim_port_rss_steer(uint16_t port, const uint16_t *want, uint16_t want_size, uint16_t *reta,
                              uint16_t *reta_size, uint8_t *key, uint8_t *key_len, uint64_t *rss_hf)
{
    struct rte_eth_rss_reta_entry64 conf[CGNAT_RETA_GROUPS];
    struct rte_eth_dev_info info;
    struct rte_eth_rss_conf rss;
    uint16_t n, groups, i;
    int rc;

    *reta_size = 0;
    *key_len = 0;
    *rss_hf = 0;
    rc = rte_eth_dev_info_get(port, &info);
    if (rc != 0)
        return rc;
    n = info.reta_size;
    if (n == 0 || n > CGNAT_RETA_MAX)
        return -ENOTSUP;
    if (want_size != n)
        return -EINVAL;
    groups = (n + RTE_ETH_RETA_GROUP_SIZE - 1) / RTE_ETH_RETA_GROUP_SIZE;
    memset(conf, 0, sizeof(conf));
    for (i = 0; i < n; i++) {
        conf[i / RTE_ETH_RETA_GROUP_SIZE].mask |= 1ULL << (i % RTE_ETH_RETA_GROUP_SIZE);
        conf[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] = want[i];
    }
    rc = rte_eth_dev_rss_reta_update(port, conf, n);
    if (rc != 0)
        return rc;
    /* Read back what the device holds: that, not what was asked, steers frames. */
    for (i = 0; i < groups; i++)
        memset(conf[i].reta, 0xff, sizeof(conf[i].reta));
    rc = rte_eth_dev_rss_reta_query(port, conf, n);
    if (rc != 0)
        return rc;
    for (i = 0; i < n; i++)
        reta[i] = conf[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE];
    memset(&rss, 0, sizeof(rss));
    rss.rss_key = key;
    rss.rss_key_len = *key_len = info.hash_key_size != 0 ? info.hash_key_size : 40;
    rc = rte_eth_dev_rss_hash_conf_get(port, &rss);
    if (rc != 0)
        return rc;
    *key_len = rss.rss_key_len;
    *rss_hf = rss.rss_hf;
    *reta_size = n;
    return 0;
}

uint32_t cgnat_shim_softrss(const uint32_t *tuple, uint32_t len, const uint8_t *key, uint32_t key_len)
{
    /* rte_softrss reads the key as 32-bit words (word j + 1 for input word j). */
    uint32_t k[CGNAT_SOFTRSS_WORDS + 1];
    uint32_t t[CGNAT_SOFTRSS_WORDS];

    if (len > CGNAT_SOFTRSS_WORDS || key_len < 4 * (len + 1) || key_len > sizeof(k))
        return 0;
    memcpy(k, key, key_len);
    memcpy(t, tuple, 4 * len);
    return rte_softrss(t, len, (const uint8_t *)k);
}

int cgnat_shim_port_info(uint16_t port, struct cgnat_port_info *out)
{
    struct rte_eth_dev_info info;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = rte_eth_dev_info_get(port, &info);
    if (rc != 0)
        return rc;
    if (info.driver_name != NULL)
        snprintf(out->driver_name, sizeof(out->driver_name), "%s", info.driver_name);
    out->if_index = info.if_index;
    out->max_rx_queues = info.max_rx_queues;
    out->max_tx_queues = info.max_tx_queues;
    out->min_mtu = info.min_mtu;
    out->max_mtu = info.max_mtu;
    out->max_rx_pktlen = info.max_rx_pktlen;
    out->reta_size = info.reta_size;
    out->hash_key_size = info.hash_key_size;
    out->flow_type_rss_offloads = info.flow_type_rss_offloads;
    out->rx_offload_capa = info.rx_offload_capa;
    out->tx_offload_capa = info.tx_offload_capa;
    return 0;
}

int cgnat_shim_port_mac(uint16_t port, uint8_t out[6])
{
    struct rte_ether_addr a;
    int rc;

    memset(out, 0, 6);
    rc = rte_eth_macaddr_get(port, &a);
    if (rc == 0)
        memcpy(out, a.addr_bytes, 6);
    return rc;
}

int cgnat_shim_port_link(uint16_t port, struct cgnat_port_link *out)
{
    struct rte_eth_link l;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(&l, 0, sizeof(l));
    rc = rte_eth_link_get_nowait(port, &l);
    if (rc != 0)
        return rc;
    out->speed_mbps = l.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0 : l.link_speed;
    out->up = l.link_status == RTE_ETH_LINK_UP;
    out->full_duplex = l.link_duplex == RTE_ETH_LINK_FULL_DUPLEX;
    out->autoneg = l.link_autoneg == RTE_ETH_LINK_AUTONEG;
    return 0;
}

int cgnat_shim_port_stats(uint16_t port, struct cgnat_port_stats *out)
{
    struct rte_eth_stats s;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = rte_eth_stats_get(port, &s);
    if (rc != 0)
        return rc;
    out->ipackets = s.ipackets;
    out->opackets = s.opackets;
    out->ibytes = s.ibytes;
    out->obytes = s.obytes;
    out->imissed = s.imissed;
    out->ierrors = s.ierrors;
    out->oerrors = s.oerrors;
    out->rx_nombuf = s.rx_nombuf;
    return 0;
}
