//! Ethernet ports. Owns [`Port`] (configuration, queues, start/stop/close, MAC, link,
//! statistics, and the rx/tx bursts) and the per-queue gates that make its safe API
//! sound.
//!
//! # Queue gates
//!
//! DPDK's burst functions check nothing: calling one on a queue that is not set up,
//! from two threads at once, or while another thread starts, stops, reconfigures or
//! closes the port, is undefined behaviour. Every (port, queue, direction) therefore
//! has a gate, an atomic on its own cache line: a burst enters it with one
//! compare-exchange (`READY` to `BUSY`) and leaves it with one store, so the lcore
//! that owns a queue pays two uncontended atomics per burst. A burst that finds the
//! gate anything but `READY` (queue not set up, port stopped or being reconfigured,
//! EAL gone, or another thread using the queue) moves nothing and returns 0, without
//! calling DPDK. The control operations hold the gates they affect (`HELD`), waiting
//! for a burst in flight to leave, and set them to what the queue is afterwards.

use crate::burst::MbufBurst;
use crate::eal::{control, Control};
use crate::error::{self, Error, Result};
use crate::mbuf::Mempool;
use crate::sys;
use std::ffi::CStr;
use std::os::raw::c_char;
use std::sync::atomic::{AtomicU8, Ordering};

/// The most RX (and TX) queues per port that this layer lets you use: queue ids run
/// from 0 to `MAX_QUEUES - 1`.
pub const MAX_QUEUES: u16 = 32;

const MAX_PORTS: usize = sys::RTE_MAX_ETHPORTS as usize;
const _: () = assert!(MAX_PORTS <= 64, "Control::ports_used is a u64 bitmap");

/// The queue is not set up (or the port is closed, or the EAL is gone).
const CLOSED: u8 = 0;
/// Set up, on a port that is stopped.
const IDLE: u8 = 1;
/// Set up, on a started port: a burst may enter.
const READY: u8 = 2;
/// A burst is in progress.
const BUSY: u8 = 3;
/// A control operation holds the queue.
const HELD: u8 = 4;

/// One queue's gate, alone on its cache line so lcores polling different queues do
/// not share one.
#[repr(align(64))]
struct Gate(AtomicU8);

impl Gate {
    const fn new() -> Gate {
        Gate(AtomicU8::new(CLOSED))
    }

    /// Enters for one burst; false if the queue cannot be used now.
    #[inline]
    fn enter(&self) -> bool {
        // Acquire: see everything the control operation that made it READY did.
        self.0
            .compare_exchange(READY, BUSY, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Leaves after the burst.
    #[inline]
    fn leave(&self) {
        // Release: the next holder sees what the burst did to the queue.
        self.0.store(READY, Ordering::Release);
    }

    /// Takes the gate for a control operation, waiting for a burst in flight; returns
    /// the state it had. Only one control operation runs at a time (they hold the
    /// control lock), so the gate is never HELD already.
    fn hold(&self) -> u8 {
        loop {
            let s = self.0.load(Ordering::Relaxed);
            debug_assert_ne!(s, HELD);
            if s != BUSY
                && self
                    .0
                    .compare_exchange(s, HELD, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return s;
            }
            std::hint::spin_loop();
        }
    }

    /// Gives a held gate its new state.
    fn release(&self, state: u8) {
        self.0.store(state, Ordering::Release);
    }
}

struct PortGates {
    rx: [Gate; MAX_QUEUES as usize],
    tx: [Gate; MAX_QUEUES as usize],
}

static GATES: [PortGates; MAX_PORTS] = [const {
    PortGates {
        rx: [const { Gate::new() }; MAX_QUEUES as usize],
        tx: [const { Gate::new() }; MAX_QUEUES as usize],
    }
}; MAX_PORTS];

/// The states of one port's gates, held.
struct Held {
    port: usize,
    rx: [u8; MAX_QUEUES as usize],
    tx: [u8; MAX_QUEUES as usize],
}

impl Held {
    /// Holds every gate of `port` (the control lock must be held).
    fn port(port: u16) -> Held {
        let g = &GATES[usize::from(port)];
        let mut h = Held {
            port: usize::from(port),
            rx: [CLOSED; MAX_QUEUES as usize],
            tx: [CLOSED; MAX_QUEUES as usize],
        };
        for (s, gate) in h.rx.iter_mut().zip(&g.rx) {
            *s = gate.hold();
        }
        for (s, gate) in h.tx.iter_mut().zip(&g.tx) {
            *s = gate.hold();
        }
        h
    }

    /// Gives every gate back the state it had.
    fn restore(self) {
        self.release_with(|s| s);
    }

    /// Gives every gate the state `f` makes of the one it had.
    fn release_with(self, f: impl Fn(u8) -> u8) {
        let g = &GATES[self.port];
        for (s, gate) in self.rx.iter().zip(&g.rx) {
            gate.release(f(*s));
        }
        for (s, gate) in self.tx.iter().zip(&g.tx) {
            gate.release(f(*s));
        }
    }

    /// Shuts every gate: the queues must be set up again before use.
    fn shut(self) {
        let g = &GATES[self.port];
        for gate in g.rx.iter().chain(&g.tx) {
            gate.release(CLOSED);
        }
    }
}

impl Control {
    /// The state of a queue just set up on `port`: ready if the port is started
    /// (DPDK's runtime queue setup), idle otherwise.
    fn set_up_state(&self, port: u16) -> u8 {
        if self.ports_started & (1 << port) != 0 {
            READY
        } else {
            IDLE
        }
    }
}

/// Stops and closes every port this process configured, shutting their gates (for
/// `Eal`'s drop). Their RX pools stay in `ctl.rx_pools` for the caller to release.
pub(crate) fn close_all(ctl: &mut Control) {
    if ctl.running().is_err() {
        return;
    }
    for id in 0..MAX_PORTS as u16 {
        if ctl.ports_used & (1 << id) != 0 {
            let held = Held::port(id);
            // SAFETY: the EAL is running, `id` is a port this process configured, and
            // every queue gate of it is held, so no burst runs meanwhile. Errors (a
            // port already closed) leave nothing to do.
            unsafe {
                sys::rte_eth_dev_stop(id);
                sys::rte_eth_dev_close(id);
            }
            held.shut();
        }
    }
    ctl.ports_used = 0;
    ctl.ports_started = 0;
}

/// Shuts every gate of every port, for good (the EAL is about to be cleaned up).
pub(crate) fn shut_all_gates() {
    for id in 0..MAX_PORTS as u16 {
        Held::port(id).shut();
    }
}

/// A DPDK Ethernet port: a device probed at EAL init (PCI, or a vdev from
/// `--vdev=...` in the EAL arguments), by its port id.
///
/// It is `Copy` and `Send`: it is only an id. Control operations (configure, queue
/// setup, start, stop, close, promiscuous, info, stats, link) may be called from any
/// thread; they are serialised with each other. A (port, queue) pair is meant to be
/// polled by one lcore at a time, as DPDK requires; this layer enforces it: a burst
/// on a queue another thread is using, or that is not set up, moves nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Port {
    id: u16,
}

/// How to configure a port ([`Port::configure`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortConf {
    /// Spread received packets over the RX queues by a hash of their IP addresses
    /// (only where the device can, and with more than one RX queue; software vdevs
    /// such as net_pcap and net_ring cannot, and deliver everything to queue 0).
    pub rss: bool,
    /// Steer instead: RSS with exactly these hash types and key, so that software can
    /// tell which queue a frame reaches ([`Port::rss_steer`] then programs the
    /// redirection table). Only with more than one RX queue; the caller checks that
    /// the device offers the hash types ([`PortInfo::flow_type_rss_offloads`]).
    pub steer: Option<RssConf>,
    /// The MTU, within the device's [`PortInfo::min_mtu`]..=[`PortInfo::max_mtu`];
    /// 0 for the device's default (1500).
    pub mtu: u16,
}

/// RSS with a known hash ([`PortConf::steer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RssConf {
    /// The hash types and field selectors ([`rss_hash`]).
    pub hash: u64,
    /// The key, repeated as often as needed to fill the device's key length.
    pub key: [u8; 40],
}

/// RSS hash types and field selectors (DPDK's `RTE_ETH_RSS_*`; shim.c checks that the
/// values are DPDK's).
pub mod rss_hash {
    /// IPv4 packets, on their addresses.
    pub const IPV4: u64 = 1 << 2;
    /// IPv4 fragments.
    pub const FRAG_IPV4: u64 = 1 << 3;
    /// IPv4 TCP packets (not fragments), on addresses and ports.
    pub const NONFRAG_IPV4_TCP: u64 = 1 << 4;
    /// IPv4 UDP packets (not fragments), on addresses and ports.
    pub const NONFRAG_IPV4_UDP: u64 = 1 << 5;
    /// Other IPv4 packets.
    pub const NONFRAG_IPV4_OTHER: u64 = 1 << 7;
    /// Of the addresses, only the source.
    pub const L3_SRC_ONLY: u64 = 1 << 63;
    /// Of the addresses, only the destination.
    pub const L3_DST_ONLY: u64 = 1 << 62;
    /// Of the ports, only the source.
    pub const L4_SRC_ONLY: u64 = 1 << 61;
    /// Of the ports, only the destination.
    pub const L4_DST_ONLY: u64 = 1 << 60;
}

/// How a steered port spreads frames, as read back from the device
/// ([`Port::rss_steer`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RssState {
    /// The redirection table: entry `i` sends to queue `reta[i]`.
    pub reta: Vec<u16>,
    /// The hash key.
    pub key: Vec<u8>,
    /// The hash types the device reports as configured.
    pub hash: u64,
}

/// DPDK's `rte_softrss`: the Toeplitz hash of `tuple` (host-order 32-bit words, as
/// DPDK takes them) under `key`. Needs no EAL.
///
/// # Panics
/// When `tuple` has more than 15 words or `key` is shorter than `4 * (tuple.len() +
/// 1)` bytes (the hash reads that far) or longer than 64.
pub fn softrss(tuple: &[u32], key: &[u8]) -> u32 {
    let words = sys::CGNAT_SOFTRSS_WORDS as usize;
    assert!(
        tuple.len() <= words && key.len() >= 4 * (tuple.len() + 1) && key.len() <= 4 * (words + 1),
        "softrss hashes at most {words} words with a key of 4 * (words + 1) to 64 bytes, \
         not {} words with {} bytes",
        tuple.len(),
        key.len()
    );
    // SAFETY: both slices are valid for the lengths passed, which the shim checks
    // against its own buffers before copying; it keeps no pointer.
    unsafe {
        sys::cgnat_shim_softrss(
            tuple.as_ptr(),
            tuple.len() as u32,
            key.as_ptr(),
            key.len() as u32,
        )
    }
}

/// What a device says about itself (`rte_eth_dev_info_get`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortInfo {
    /// The driver, e.g. `net_pcap`, `net_ring`, `net_null`, `net_af_packet`.
    pub driver_name: String,
    /// The kernel interface index, when the device has one (0 otherwise).
    pub if_index: u32,
    /// The most RX queues it supports.
    pub max_rx_queues: u16,
    /// The most TX queues it supports.
    pub max_tx_queues: u16,
    /// The smallest MTU it accepts.
    pub min_mtu: u16,
    /// The largest MTU it accepts.
    pub max_mtu: u16,
    /// The longest frame it can receive.
    pub max_rx_pktlen: u32,
    /// The size of its RSS redirection table (0: no RSS).
    pub reta_size: u16,
    /// The length of its RSS hash key in bytes.
    pub hash_key_size: u8,
    /// The RSS hash types it supports (`RTE_ETH_RSS_*`; 0: no RSS).
    pub flow_type_rss_offloads: u64,
    /// The RX offloads it supports (`RTE_ETH_RX_OFFLOAD_*`).
    pub rx_offload_capa: u64,
    /// The TX offloads it supports (`RTE_ETH_TX_OFFLOAD_*`).
    pub tx_offload_capa: u64,
}

/// A port's link state (`rte_eth_link_get_nowait`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Link {
    /// The link is up.
    pub up: bool,
    /// Its speed in Mb/s (0 when unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
    /// Speed and duplex were auto-negotiated.
    pub autoneg: bool,
}

/// A port's basic counters (`rte_eth_stats_get`).
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
    /// Packets the device dropped because its RX queues were full.
    pub imissed: u64,
    /// Erroneous packets received.
    pub ierrors: u64,
    /// Packets that failed to be sent.
    pub oerrors: u64,
    /// Receive failures for lack of mbufs.
    pub rx_nombuf: u64,
}

impl Port {
    /// The port of the device called `name` (e.g. `net_ring0`, `net_pcap0`, or a PCI
    /// address); vdevs are created by `--vdev=name,options` in the EAL arguments.
    pub fn by_name(name: &str) -> Result<Port> {
        let c = error::cstring("a port name", name)?;
        let ctl = control();
        ctl.running()?;
        let mut id = 0u16;
        // SAFETY: the EAL is running; `c` is a valid C string and `id` a valid
        // out-pointer for the call's duration.
        let rc = unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if rc != 0 || usize::from(id) >= MAX_PORTS {
            let names: Vec<String> = (0..MAX_PORTS as u16)
                .filter_map(|p| Port { id: p }.name_locked())
                .collect();
            return Err(Error::NotFound(format!(
                "no DPDK port is called `{name}`; the ports are {names:?} \
                 (a vdev needs --vdev={name}... in the EAL arguments)"
            )));
        }
        Ok(Port { id })
    }

    /// The port with id `id`, if a device has it.
    pub fn from_id(id: u16) -> Result<Port> {
        let ctl = control();
        ctl.running()?;
        // SAFETY: the EAL is running; the call checks any id.
        let valid = unsafe { sys::rte_eth_dev_is_valid_port(id) } != 0;
        if !valid || usize::from(id) >= MAX_PORTS {
            return Err(Error::NotFound(format!("no DPDK port has id {id}")));
        }
        Ok(Port { id })
    }

    /// The number of ports available (0 unless the EAL is running).
    pub fn count() -> u16 {
        let ctl = control();
        if ctl.running().is_err() {
            return 0;
        }
        // SAFETY: the EAL is running.
        unsafe { sys::rte_eth_dev_count_avail() }
    }

    /// The port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The device's name (what [`Port::by_name`] takes), or `None` if the port has
    /// gone (closed) or the EAL is not running.
    pub fn name(&self) -> Option<String> {
        let ctl = control();
        ctl.running().ok()?;
        self.name_locked()
    }

    /// True while a device has this port id (the control lock must be held with the
    /// EAL running). Checked first so a closed port is reported as such rather than
    /// by DPDK's "Invalid port_id" log line.
    fn exists(&self) -> bool {
        // SAFETY: the caller holds the control lock with the EAL running; the call
        // checks any id and logs nothing.
        unsafe { sys::rte_eth_dev_is_valid_port(self.id) != 0 }
    }

    /// `Ok` while the port exists.
    fn check_exists(&self) -> Result<()> {
        if self.exists() {
            Ok(())
        } else {
            Err(Error::NotFound(format!(
                "DPDK port {} is gone (closed or detached)",
                self.id
            )))
        }
    }

    fn name_locked(&self) -> Option<String> {
        if !self.exists() {
            return None;
        }
        let mut buf = [0 as c_char; sys::RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: the caller holds the control lock with the EAL running; `buf` has
        // the RTE_ETH_NAME_MAX_LEN bytes DPDK writes at most, NUL included.
        let rc = unsafe { sys::rte_eth_dev_get_name_by_port(self.id, buf.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: on success DPDK wrote a NUL-terminated string into `buf`.
        let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
        Some(name.to_string_lossy().into_owned())
    }

    /// The NUMA socket the device is attached to (-1 when unknown), where its queues
    /// and mbuf pool are best allocated.
    pub fn socket_id(&self) -> i32 {
        let ctl = control();
        if ctl.running().is_err() {
            return sys::SOCKET_ID_ANY;
        }
        // SAFETY: the EAL is running; the call checks the id.
        unsafe { sys::rte_eth_dev_socket_id(self.id) }
    }

    /// What the device says about itself.
    pub fn info(&self) -> Result<PortInfo> {
        let ctl = control();
        ctl.running()?;
        self.info_locked()
    }

    fn info_locked(&self) -> Result<PortInfo> {
        self.check_exists()?;
        let mut i = sys::cgnat_port_info::default();
        // SAFETY: the caller holds the control lock with the EAL running; `i` is a
        // valid out-pointer the shim fills (driver_name NUL-terminated by snprintf).
        error::check("rte_eth_dev_info_get", unsafe {
            sys::cgnat_shim_port_info(self.id, &mut i)
        })?;
        // SAFETY: the shim zeroed the struct, then wrote driver_name with snprintf,
        // which NUL-terminates within the array.
        let driver = unsafe { CStr::from_ptr(i.driver_name.as_ptr()) };
        Ok(PortInfo {
            driver_name: driver.to_string_lossy().into_owned(),
            if_index: i.if_index,
            max_rx_queues: i.max_rx_queues,
            max_tx_queues: i.max_tx_queues,
            min_mtu: i.min_mtu,
            max_mtu: i.max_mtu,
            max_rx_pktlen: i.max_rx_pktlen,
            reta_size: i.reta_size,
            hash_key_size: i.hash_key_size,
            flow_type_rss_offloads: i.flow_type_rss_offloads,
            rx_offload_capa: i.rx_offload_capa,
            tx_offload_capa: i.tx_offload_capa,
        })
    }

    /// Configures `nb_rx` RX and `nb_tx` TX queues (the port must be stopped). The
    /// queues must then be set up ([`Port::rx_queue_setup`], [`Port::tx_queue_setup`])
    /// before the port is started.
    pub fn configure(&self, nb_rx: u16, nb_tx: u16, conf: &PortConf) -> Result<()> {
        let mut ctl = control();
        ctl.running()?;
        let info = self.info_locked()?;
        let name = self.name_locked().unwrap_or_default();
        let limit = MAX_QUEUES.min(info.max_rx_queues);
        if nb_rx == 0 || nb_rx > limit {
            return Err(Error::Invalid(format!(
                "port {name} can have 1 to {limit} RX queues, not {nb_rx}"
            )));
        }
        let limit = MAX_QUEUES.min(info.max_tx_queues);
        if nb_tx == 0 || nb_tx > limit {
            return Err(Error::Invalid(format!(
                "port {name} can have 1 to {limit} TX queues, not {nb_tx}"
            )));
        }
        if conf.mtu != 0 && !(info.min_mtu..=info.max_mtu).contains(&conf.mtu) {
            return Err(Error::Invalid(format!(
                "port {name} ({}) takes an MTU from {} to {}, not {}",
                info.driver_name, info.min_mtu, info.max_mtu, conf.mtu
            )));
        }
        let held = Held::port(self.id);
        // SAFETY: the EAL is running, the control lock serialises DPDK's control path,
        // and every queue gate of the port is held, so no burst uses its queues while
        // DPDK reallocates them.
        let rc = unsafe {
            let (hash, key) = conf
                .steer
                .as_ref()
                .map_or((0, std::ptr::null()), |s| (s.hash, s.key.as_ptr()));
            let key_len = if key.is_null() { 0 } else { 40 };
            sys::cgnat_shim_port_configure(
                self.id,
                nb_rx,
                nb_tx,
                i32::from(conf.rss),
                hash,
                key,
                key_len,
                conf.mtu,
            )
        };
        if rc == -EBUSY {
            // A started port: DPDK changed nothing.
            held.restore();
        } else {
            // Done, or failed halfway (DPDK then releases every queue): either way the
            // queues must be set up again.
            held.shut();
            ctl.ports_used |= 1 << self.id;
        }
        error::check("rte_eth_dev_configure", rc)
    }

    /// Programs the redirection table of a port configured with
    /// [`PortConf::steer`], entry `i` to queue `table[i]` (`table` has
    /// [`PortInfo::reta_size`] entries), and reads back the table, key and hash types
    /// the device then holds. Call it once the port is started. Fails on a device
    /// without a redirection table.
    pub fn rss_steer(&self, table: &[u16]) -> Result<RssState> {
        let ctl = control();
        ctl.running()?;
        self.check_exists()?;
        let want_size = u16::try_from(table.len()).map_err(|_| {
            Error::Invalid(format!("a redirection table of {} entries", table.len()))
        })?;
        let mut reta = vec![0u16; sys::CGNAT_RETA_MAX as usize];
        let mut key = vec![0u8; 255];
        let (mut reta_size, mut key_len, mut hash) = (0u16, 0u8, 0u64);
        // SAFETY: the EAL is running and the control lock serialises DPDK's control
        // path; `table` holds `want_size` entries, which the shim reads only if that is
        // the device's table size (at most CGNAT_RETA_MAX); `reta` has CGNAT_RETA_MAX
        // entries and `key` 255 bytes, the room the shim documents, and the
        // out-parameters are valid; nothing is kept.
        let rc = unsafe {
            sys::cgnat_shim_port_rss_steer(
                self.id,
                table.as_ptr(),
                want_size,
                reta.as_mut_ptr(),
                &mut reta_size,
                key.as_mut_ptr(),
                &mut key_len,
                &mut hash,
            )
        };
        error::check("rte_eth_dev_rss_reta_update", rc)?;
        reta.truncate(usize::from(reta_size));
        key.truncate(usize::from(key_len));
        Ok(RssState { reta, key, hash })
    }

    /// Sets up RX queue `q` with `nb_desc` descriptors on NUMA `socket` (-1 for any),
    /// refilled from `pool`. The queue keeps a handle to the pool until the port is
    /// closed (or the queue set up again).
    pub fn rx_queue_setup(&self, q: u16, nb_desc: u16, socket: i32, pool: &Mempool) -> Result<()> {
        let mut ctl = control();
        ctl.running()?;
        self.check_exists()?;
        let gate = queue_gate(&GATES[usize::from(self.id)].rx, q)?;
        let before = gate.hold();
        // SAFETY: the EAL is running, the control lock serialises the control path,
        // and the queue's gate is held, so no burst uses the queue meanwhile. NULL
        // rx_conf means the driver's defaults; the pool is alive, and is kept alive
        // below for as long as the queue may refill from it. The socket's bits pass
        // as the unsigned int DPDK takes (-1 is SOCKET_ID_ANY either way).
        let rc = unsafe {
            sys::rte_eth_rx_queue_setup(
                self.id,
                q,
                nb_desc,
                socket as u32,
                std::ptr::null(),
                pool.as_ptr(),
            )
        };
        let mut old = None;
        match rc {
            0 => {
                gate.release(ctl.set_up_state(self.id));
                // DPDK released the queue's previous incarnation: its pool is free.
                if let Some(i) = ctl.rx_pools.iter().position(|e| (e.0, e.1) == (self.id, q)) {
                    old = Some(ctl.rx_pools.swap_remove(i));
                }
                ctl.rx_pools.push((self.id, q, pool.clone()));
                ctl.ports_used |= 1 << self.id;
            }
            rc if rc == -EBUSY => gate.release(before),
            _ => gate.release(CLOSED),
        }
        drop(ctl);
        drop(old);
        error::check("rte_eth_rx_queue_setup", rc)
    }

    /// Sets up TX queue `q` with `nb_desc` descriptors on NUMA `socket` (-1 for any).
    pub fn tx_queue_setup(&self, q: u16, nb_desc: u16, socket: i32) -> Result<()> {
        let mut ctl = control();
        ctl.running()?;
        self.check_exists()?;
        let gate = queue_gate(&GATES[usize::from(self.id)].tx, q)?;
        let before = gate.hold();
        // SAFETY: as in rx_queue_setup; NULL tx_conf means the driver's defaults.
        let rc = unsafe {
            sys::rte_eth_tx_queue_setup(self.id, q, nb_desc, socket as u32, std::ptr::null())
        };
        gate.release(match rc {
            0 => ctl.set_up_state(self.id),
            rc if rc == -EBUSY => before,
            _ => CLOSED,
        });
        if rc == 0 {
            ctl.ports_used |= 1 << self.id;
        }
        error::check("rte_eth_tx_queue_setup", rc)
    }

    /// Starts the port: its set-up queues begin to move packets.
    pub fn start(&self) -> Result<()> {
        let mut ctl = control();
        ctl.running()?;
        self.check_exists()?;
        let held = Held::port(self.id);
        // SAFETY: the EAL is running, the control lock serialises the control path,
        // and all the port's gates are held while DPDK installs the driver's burst
        // functions, which bursts read.
        let rc = unsafe { sys::rte_eth_dev_start(self.id) };
        if rc == 0 {
            held.release_with(|s| if s == IDLE { READY } else { s });
            ctl.ports_started |= 1 << self.id;
        } else {
            held.restore();
        }
        error::check("rte_eth_dev_start", rc)
    }

    /// Stops the port: bursts move nothing until it is started again. An error (e.g.
    /// a port already closed) leaves nothing to do and is ignored.
    pub fn stop(&self) {
        let mut ctl = control();
        if ctl.running().is_err() || !self.exists() {
            return;
        }
        let held = Held::port(self.id);
        // SAFETY: as in start: DPDK swaps the burst functions for dummies.
        unsafe { sys::rte_eth_dev_stop(self.id) };
        held.release_with(|s| if s == READY { IDLE } else { s });
        ctl.ports_started &= !(1 << self.id);
    }

    /// Stops the port if needed and closes it, releasing its queues (and their pool
    /// handles). Drivers that write files, such as net_pcap, flush them here. The port
    /// cannot be used afterwards. Errors (a port already closed) are ignored.
    pub fn close(&self) {
        let mut ctl = control();
        if ctl.running().is_err() || !self.exists() {
            return;
        }
        let held = Held::port(self.id);
        // SAFETY: as in start; every gate is shut afterwards, so no burst can reach
        // the released queues.
        unsafe {
            sys::rte_eth_dev_stop(self.id);
            sys::rte_eth_dev_close(self.id);
        }
        held.shut();
        ctl.ports_used &= !(1 << self.id);
        ctl.ports_started &= !(1 << self.id);
        // The queues' pool handles are moved out and dropped after the lock: a pool's
        // drop takes it.
        let mut pools = Vec::new();
        let mut i = 0;
        while i < ctl.rx_pools.len() {
            if ctl.rx_pools[i].0 == self.id {
                pools.push(ctl.rx_pools.swap_remove(i));
            } else {
                i += 1;
            }
        }
        drop(ctl);
        drop(pools);
    }

    /// Promiscuous mode on or off.
    pub fn promiscuous(&self, on: bool) -> Result<()> {
        let ctl = control();
        ctl.running()?;
        self.check_exists()?;
        // SAFETY: the EAL is running and the control lock serialises the control
        // path; DPDK checks the port id.
        let rc = unsafe {
            if on {
                sys::rte_eth_promiscuous_enable(self.id)
            } else {
                sys::rte_eth_promiscuous_disable(self.id)
            }
        };
        error::check("rte_eth_promiscuous_enable/disable", rc)
    }

    /// The port's MAC address (zeros if it cannot be read).
    pub fn mac_addr(&self) -> [u8; 6] {
        let mut m = [0u8; 6];
        let ctl = control();
        if ctl.running().is_ok() && self.exists() {
            // SAFETY: the EAL is running, the control lock is held, and `m` has the 6
            // bytes the shim writes.
            unsafe { sys::cgnat_shim_port_mac(self.id, m.as_mut_ptr()) };
        }
        m
    }

    /// The link state, without waiting for auto-negotiation (down if unknown).
    pub fn link(&self) -> Link {
        let mut l = sys::cgnat_port_link::default();
        let ctl = control();
        if ctl.running().is_ok() && self.exists() {
            // SAFETY: the EAL is running, the control lock is held, and `l` is a valid
            // out-pointer (zeroed by the shim on failure).
            unsafe { sys::cgnat_shim_port_link(self.id, &mut l) };
        }
        Link {
            up: l.up != 0,
            speed_mbps: l.speed_mbps,
            full_duplex: l.full_duplex != 0,
            autoneg: l.autoneg != 0,
        }
    }

    /// The port's counters (zeros if they cannot be read). Safe to call while lcores
    /// poll the port, as DPDK's drivers allow.
    pub fn stats(&self) -> PortStats {
        let mut s = sys::cgnat_port_stats::default();
        let ctl = control();
        if ctl.running().is_ok() && self.exists() {
            // SAFETY: the EAL is running, the control lock is held, and `s` is a valid
            // out-pointer (zeroed by the shim on failure).
            unsafe { sys::cgnat_shim_port_stats(self.id, &mut s) };
        }
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

    /// Sets the port's counters back to zero.
    pub fn reset_stats(&self) -> Result<()> {
        let ctl = control();
        ctl.running()?;
        self.check_exists()?;
        // SAFETY: the EAL is running and the control lock is held.
        error::check("rte_eth_stats_reset", unsafe {
            sys::rte_eth_stats_reset(self.id)
        })
    }

    /// Receives from RX queue `q` into the free space at the end of `out`; returns how
    /// many mbufs arrived. 0 also when `out` is full, the queue is not set up, or
    /// another thread is polling it.
    #[inline]
    pub fn rx_burst(&self, q: u16, out: &mut MbufBurst) -> usize {
        let Some(gate) = GATES[usize::from(self.id)].rx.get(usize::from(q)) else {
            return 0;
        };
        let (slots, room) = out.spare();
        if room == 0 || !gate.enter() {
            return 0;
        }
        // SAFETY: the gate guarantees the queue is set up and that this thread alone
        // uses it until `leave`; `slots` points at `room` (<= 32) writable slots of
        // `out`, of which the driver fills at most `room` with mbufs it hands over.
        let n = unsafe { sys::cgnat_shim_eth_rx_burst(self.id, q, slots, room as u16) };
        gate.leave();
        let n = usize::from(n);
        // SAFETY: the driver wrote `n <= room` received mbufs, now owned by `out`:
        // fresh from the queue's pool (kept alive by the queue), direct, refcnt 1.
        unsafe { out.commit(n) };
        n
    }

    /// Transmits from the front of `burst` on TX queue `q`; returns how many mbufs
    /// the driver took. The rest stay in `burst`, in order, for the caller to retry,
    /// count or free. 0 also when the queue is not set up or another thread is using
    /// it.
    #[inline]
    pub fn tx_burst(&self, q: u16, burst: &mut MbufBurst) -> usize {
        let Some(gate) = GATES[usize::from(self.id)].tx.get(usize::from(q)) else {
            return 0;
        };
        let (mbufs, n) = burst.held();
        if n == 0 || !gate.enter() {
            return 0;
        }
        // SAFETY: the gate guarantees the queue is set up and that this thread alone
        // uses it until `leave`; `mbufs` points at `n` (<= 32) owned mbufs; the driver
        // takes ownership of the first `sent` and leaves the others untouched.
        let sent = unsafe { sys::cgnat_shim_eth_tx_burst(self.id, q, mbufs, n as u16) };
        gate.leave();
        let sent = usize::from(sent);
        // SAFETY: the driver owns the first `sent` mbufs now.
        unsafe { burst.forget_front(sent) };
        sent
    }
}

/// EBUSY, as DPDK returns it negated (a started port refuses configuration).
const EBUSY: i32 = 16;

fn queue_gate(gates: &[Gate; MAX_QUEUES as usize], q: u16) -> Result<&Gate> {
    gates.get(usize::from(q)).ok_or_else(|| {
        Error::Invalid(format!(
            "queue {q} is out of range: cgnat_ffi supports queues 0 to {}",
            MAX_QUEUES - 1
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_lets_one_burst_in_at_a_time() {
        let g = Gate::new();
        assert!(!g.enter(), "a queue that is not set up is closed");
        assert_eq!(g.hold(), CLOSED);
        g.release(IDLE);
        assert!(!g.enter(), "a stopped port's queue is closed to bursts");
        assert_eq!(g.hold(), IDLE);
        g.release(READY);
        assert!(g.enter());
        assert!(!g.enter(), "a second thread finds the queue busy");
        g.leave();
        assert_eq!(g.hold(), READY);
        assert!(!g.enter(), "held by a control operation");
        g.release(READY);
        assert!(g.enter());
        g.leave();
    }

    #[test]
    fn hold_waits_for_the_burst_in_flight() {
        use std::sync::atomic::AtomicBool;
        static G: Gate = Gate::new();
        static IN: AtomicBool = AtomicBool::new(false);
        G.release(READY);
        assert!(G.enter());
        let t = std::thread::spawn(|| {
            let s = G.hold();
            assert!(
                !IN.load(Ordering::SeqCst),
                "held while the burst was in flight"
            );
            G.release(s);
            s
        });
        IN.store(true, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(20));
        IN.store(false, Ordering::SeqCst);
        G.leave();
        assert_eq!(t.join().unwrap(), READY);
    }

    #[test]
    fn ports_refuse_service_before_eal() {
        assert_eq!(Port::by_name("net_ring0"), Err(Error::EalNotRunning));
        assert_eq!(Port::from_id(0), Err(Error::EalNotRunning));
        assert_eq!(Port::count(), 0);
        let p = Port { id: 0 };
        assert_eq!(p.info(), Err(Error::EalNotRunning));
        assert_eq!(
            p.configure(1, 1, &PortConf::default()),
            Err(Error::EalNotRunning)
        );
        assert_eq!(p.start(), Err(Error::EalNotRunning));
        assert_eq!(p.stats(), PortStats::default());
        assert_eq!(p.link(), Link::default());
        assert_eq!(p.mac_addr(), [0; 6]);
        p.stop();
        p.close();
        let mut b = MbufBurst::new();
        assert_eq!(p.rx_burst(0, &mut b), 0);
        assert_eq!(p.tx_burst(0, &mut b), 0);
        assert_eq!(p.rx_burst(MAX_QUEUES, &mut b), 0);
    }
}
