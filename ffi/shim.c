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

int cgnat_shim_port_configure(uint16_t port, uint16_t nb_rx, uint16_t nb_tx, int rss, uint16_t mtu)
{
    struct rte_eth_conf conf;
    struct rte_eth_dev_info info;
    int rc;

    memset(&conf, 0, sizeof(conf));
    rc = rte_eth_dev_info_get(port, &info);
    if (rc != 0)
        return rc;
    /* RSS only where it means something: several queues and a device that can hash on
     * IP addresses (software vdevs such as net_pcap and net_ring cannot). */
    if (rss && nb_rx > 1 && (info.flow_type_rss_offloads & RTE_ETH_RSS_IP) != 0) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_key = NULL;
        conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads & RTE_ETH_RSS_IP;
    }
    conf.rxmode.mtu = mtu; /* 0: the device's default (RTE_ETHER_MTU) */
    return rte_eth_dev_configure(port, nb_rx, nb_tx, &conf);
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
