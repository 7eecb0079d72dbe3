/* See shim.h. Compiled with exactly the flags pkg-config gives for libdpdk. */
#include <stdio.h>
#include <string.h>
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

uint16_t cgnat_shim_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_rx_burst(port, queue, pkts, n); }
uint16_t cgnat_shim_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_tx_burst(port, queue, pkts, n); }
struct rte_mbuf *cgnat_shim_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }
void cgnat_shim_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
int cgnat_shim_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned n)
{ return rte_pktmbuf_alloc_bulk(mp, mbufs, n); }
void cgnat_shim_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned n) { rte_pktmbuf_free_bulk(mbufs, n); }
uint8_t *cgnat_shim_mtod(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, uint8_t *); }
uint8_t *cgnat_shim_data(struct rte_mbuf *m, uint16_t *len) { *len = m->data_len; return rte_pktmbuf_mtod(m, uint8_t *); }
uint32_t cgnat_shim_pkt_len(const struct rte_mbuf *m) { return m->pkt_len; }
uint16_t cgnat_shim_data_len(const struct rte_mbuf *m) { return m->data_len; }
uint16_t cgnat_shim_nb_segs(const struct rte_mbuf *m) { return m->nb_segs; }
uint16_t cgnat_shim_headroom(const struct rte_mbuf *m) { return rte_pktmbuf_headroom(m); }
uint16_t cgnat_shim_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }
int cgnat_shim_prepend(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_prepend(m, len) != NULL; }
int cgnat_shim_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len) != NULL; }
int cgnat_shim_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len) != NULL; }
int cgnat_shim_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len) == 0; }
uint16_t cgnat_shim_mbuf_port(const struct rte_mbuf *m) { return m->port; }
void cgnat_shim_mbuf_set_port(struct rte_mbuf *m, uint16_t port) { m->port = port; }

unsigned cgnat_shim_ring_enqueue_burst(struct rte_ring *r, void *const *objs, unsigned n)
{ return rte_ring_enqueue_burst(r, objs, n, NULL); }
unsigned cgnat_shim_ring_dequeue_burst(struct rte_ring *r, void **objs, unsigned n)
{ return rte_ring_dequeue_burst(r, objs, n, NULL); }
unsigned cgnat_shim_ring_enqueue_burst_elem(struct rte_ring *r, const void *objs, unsigned esize, unsigned n)
{ return rte_ring_enqueue_burst_elem(r, objs, esize, n, NULL); }
unsigned cgnat_shim_ring_dequeue_burst_elem(struct rte_ring *r, void *objs, unsigned esize, unsigned n)
{ return rte_ring_dequeue_burst_elem(r, objs, esize, n, NULL); }
unsigned cgnat_shim_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }
unsigned cgnat_shim_ring_free_count(const struct rte_ring *r) { return rte_ring_free_count(r); }

unsigned cgnat_shim_lcore_id(void) { return rte_lcore_id(); }
uint64_t cgnat_shim_rdtsc(void) { return rte_rdtsc(); }
int cgnat_shim_errno(void) { return rte_errno; }
void cgnat_shim_pause(void) { rte_pause(); }
/* EAL on Linux logs to stdout; cgnat keeps stdout for its own output (the JSON
 * summary) and sends DPDK's messages to stderr. Call before rte_eal_init. */
void cgnat_shim_log_to_stderr(void) { rte_openlog_stream(stderr); }

int cgnat_shim_port_configure(uint16_t port, uint16_t nb_rx, uint16_t nb_tx, int rss, uint16_t mtu)
{
    struct rte_eth_conf conf;
    struct rte_eth_dev_info info;
    int rc;
    memset(&conf, 0, sizeof(conf));
    rc = rte_eth_dev_info_get(port, &info);
    if (rc != 0)
        return rc;
    if (rss && nb_rx > 1) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_key = NULL;
        conf.rx_adv_conf.rss_conf.rss_hf = RTE_ETH_RSS_IP & info.flow_type_rss_offloads;
    }
    if (mtu >= info.min_mtu && mtu <= info.max_mtu)
        conf.rxmode.mtu = mtu;
    return rte_eth_dev_configure(port, nb_rx, nb_tx, &conf);
}

int cgnat_shim_port_info(uint16_t port, struct cgnat_port_info *out)
{
    struct rte_eth_dev_info info;
    int rc = rte_eth_dev_info_get(port, &info);
    if (rc != 0)
        return rc;
    memset(out, 0, sizeof(*out));
    if (info.driver_name)
        snprintf(out->driver_name, sizeof(out->driver_name), "%s", info.driver_name);
    out->max_rx_queues = info.max_rx_queues;
    out->max_tx_queues = info.max_tx_queues;
    out->flow_type_rss_offloads = info.flow_type_rss_offloads;
    return 0;
}

int cgnat_shim_port_mac(uint16_t port, uint8_t out[6])
{
    struct rte_ether_addr a;
    int rc = rte_eth_macaddr_get(port, &a);
    if (rc == 0)
        memcpy(out, a.addr_bytes, 6);
    return rc;
}

int cgnat_shim_port_link(uint16_t port, int *up, uint32_t *speed_mbps)
{
    struct rte_eth_link l;
    int rc;
    memset(&l, 0, sizeof(l));
    rc = rte_eth_link_get_nowait(port, &l);
    *up = l.link_status;
    *speed_mbps = l.link_speed;
    return rc;
}

int cgnat_shim_port_stats(uint16_t port, struct cgnat_port_stats *out)
{
    struct rte_eth_stats s;
    int rc = rte_eth_stats_get(port, &s);
    memset(out, 0, sizeof(*out));
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
