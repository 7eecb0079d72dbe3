//! Ethernet ports: configuration, queues, start/stop, MAC, link, stats, bursts.

use crate::mbuf::{MbufBurst, Mempool};
use crate::{cstring, error, sys, Error, Result};
use std::ffi::CStr;

/// A DPDK ethdev port. A (port, queue) pair must be used by one lcore at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port {
    id: u16,
}

/// Port configuration.
#[derive(Clone, Copy, Debug)]
pub struct PortConf {
    /// Spread received packets over the RX queues by IP hash.
    pub rss: bool,
    /// MTU (applied when the device supports it).
    pub mtu: u16,
}

/// What the device says about itself.
#[derive(Clone, Debug)]
pub struct PortInfo {
    /// Driver name (e.g. net_pcap).
    pub driver_name: String,
    /// RX queues it supports.
    pub max_rx_queues: u16,
    /// TX queues it supports.
    pub max_tx_queues: u16,
    /// RSS hash types it supports.
    pub flow_type_rss_offloads: u64,
}

/// Link state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Link up.
    pub up: bool,
    /// Speed in Mb/s.
    pub speed_mbps: u32,
}

/// Basic port statistics (rte_eth_stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets the NIC dropped for lack of descriptors.
    pub imissed: u64,
    /// Receive errors.
    pub ierrors: u64,
    /// Transmit errors.
    pub oerrors: u64,
    /// Receive failures for lack of mbufs.
    pub rx_nombuf: u64,
}

fn check(call: &'static str, rc: i32) -> Result<()> {
    if rc < 0 {
        Err(error(call, rc))
    } else {
        Ok(())
    }
}

impl Port {
    /// The port of a probed device (vdevs are created with `--vdev` in the EAL args).
    pub fn by_name(name: &str) -> Result<Port> {
        let c = cstring(name)?;
        let mut id = 0u16;
        // SAFETY: valid C string and out-pointer.
        let rc = unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if rc != 0 {
            return Err(Error::NotFound(format!("DPDK port `{name}`")));
        }
        Ok(Port { id })
    }

    /// Number of available ports.
    pub fn count() -> u16 {
        // SAFETY: plain query.
        unsafe { sys::rte_eth_dev_count_avail() }
    }

    /// The port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Device information.
    pub fn info(&self) -> Result<PortInfo> {
        let mut i = sys::cgnat_port_info::default();
        // SAFETY: valid port id and out-pointer; the shim fills a plain struct.
        check("rte_eth_dev_info_get", unsafe {
            sys::cgnat_shim_port_info(self.id, &mut i)
        })?;
        // SAFETY: the shim NUL-terminates driver_name (snprintf).
        let name = unsafe { CStr::from_ptr(i.driver_name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        Ok(PortInfo {
            driver_name: name,
            max_rx_queues: i.max_rx_queues,
            max_tx_queues: i.max_tx_queues,
            flow_type_rss_offloads: i.flow_type_rss_offloads,
        })
    }

    /// Configures `nb_rx` RX and `nb_tx` TX queues.
    pub fn configure(&self, nb_rx: u16, nb_tx: u16, conf: &PortConf) -> Result<()> {
        // SAFETY: the shim builds a zeroed rte_eth_conf on its stack.
        check("rte_eth_dev_configure", unsafe {
            sys::cgnat_shim_port_configure(self.id, nb_rx, nb_tx, i32::from(conf.rss), conf.mtu)
        })
    }

    /// Sets up RX queue `q` with `nb_desc` descriptors, filled from `pool`. The pool
    /// must outlive the port's use (stop and close the port before dropping it).
    pub fn rx_queue_setup(&self, q: u16, nb_desc: u16, socket: i32, pool: &Mempool) -> Result<()> {
        // SAFETY: NULL rx_conf means the driver's defaults; pool pointer is valid.
        check("rte_eth_rx_queue_setup", unsafe {
            sys::rte_eth_rx_queue_setup(
                self.id,
                q,
                nb_desc,
                socket as u32,
                std::ptr::null(),
                pool.as_ptr(),
            )
        })
    }

    /// Sets up TX queue `q`.
    pub fn tx_queue_setup(&self, q: u16, nb_desc: u16, socket: i32) -> Result<()> {
        // SAFETY: NULL tx_conf means the driver's defaults.
        check("rte_eth_tx_queue_setup", unsafe {
            sys::rte_eth_tx_queue_setup(self.id, q, nb_desc, socket as u32, std::ptr::null())
        })
    }

    /// Starts the port.
    pub fn start(&self) -> Result<()> {
        // SAFETY: valid port id.
        check("rte_eth_dev_start", unsafe {
            sys::rte_eth_dev_start(self.id)
        })
    }

    /// Stops the port (errors ignored: nothing to do about them at shutdown).
    pub fn stop(&self) {
        // SAFETY: valid port id.
        let _ = unsafe { sys::rte_eth_dev_stop(self.id) };
    }

    /// Closes the port (flushes drivers such as net_pcap's output file).
    pub fn close(&self) {
        // SAFETY: valid port id; no queue is used after this (callers stop lcores first).
        let _ = unsafe { sys::rte_eth_dev_close(self.id) };
    }

    /// Promiscuous mode on or off.
    pub fn promiscuous(&self, on: bool) -> Result<()> {
        // SAFETY: valid port id.
        let rc = unsafe {
            if on {
                sys::rte_eth_promiscuous_enable(self.id)
            } else {
                sys::rte_eth_promiscuous_disable(self.id)
            }
        };
        check("rte_eth_promiscuous", rc)
    }

    /// The port's MAC address.
    pub fn mac_addr(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        // SAFETY: 6-byte out buffer.
        unsafe { sys::cgnat_shim_port_mac(self.id, m.as_mut_ptr()) };
        m
    }

    /// Link state, without waiting.
    pub fn link(&self) -> Link {
        let (mut up, mut speed) = (0i32, 0u32);
        // SAFETY: out-pointers to locals.
        unsafe { sys::cgnat_shim_port_link(self.id, &mut up, &mut speed) };
        Link {
            up: up != 0,
            speed_mbps: speed,
        }
    }

    /// Statistics.
    pub fn stats(&self) -> PortStats {
        let mut s = sys::cgnat_port_stats::default();
        // SAFETY: out-pointer to a plain struct.
        unsafe { sys::cgnat_shim_port_stats(self.id, &mut s) };
        PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }

    /// Receives into the free space of `out`; returns how many arrived.
    #[inline]
    pub fn rx_burst(&self, q: u16, out: &mut MbufBurst) -> usize {
        let (p, room) = out.spare();
        if room == 0 {
            return 0;
        }
        // SAFETY: `p` points at `room` writable slots; the driver writes that many
        // owned mbuf pointers at most and returns the count.
        let n = usize::from(unsafe { sys::cgnat_shim_rx_burst(self.id, q, p, room as u16) });
        out.filled(n);
        n
    }

    /// Sends from the front of `burst`; the unsent stay in it. Returns how many left.
    #[inline]
    pub fn tx_burst(&self, q: u16, burst: &mut MbufBurst) -> usize {
        let (p, n) = burst.held();
        if n == 0 {
            return 0;
        }
        // SAFETY: `p` points at `n` owned mbufs; the driver takes ownership of the
        // first `sent` of them, which the burst then forgets.
        let sent = usize::from(unsafe { sys::cgnat_shim_tx_burst(self.id, q, p, n as u16) });
        burst.consumed(sent);
        sent
    }
}
