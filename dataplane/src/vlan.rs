//! VLAN sub-interfaces of a port (802.1Q and QinQ): which one a frame came in on and
//! which one it leaves by, and the per-VLAN counters.
//!
//! A tagged frame's tags are stripped when it comes in ([`ingress`]) and the frame
//! goes through the pipeline as an untagged one; on the way out ([`egress`], at
//! dispatch) the tags of the sub-interface that routes its destination are pushed.
//! Which sub-interface routes an address ([`PortInfo::iface`]) follows from the
//! configuration alone: its subnet, its subscriber prefixes (inside), else the one
//! with a gateway. The subnets and prefixes of a port's VLANs do not overlap
//! (validated), so an inside subscriber's replies leave on the VLAN its packets came
//! from, and the neighbour table, keyed by address, holds each VLAN's hosts apart.
//!
//! A port without VLANs costs one compare each way.

use crate::buf::PacketBuf;
use crate::counters::{DropReason, WorkerCounters};
use crate::pipeline::{PortInfo, Side};
use crate::wire::ethernet::{ETHERTYPE_ARP, ETHERTYPE_IPV4};
use crate::wire::vlan::{self, Tags};
use crate::wire::{be16, be32};
use cgnat_config::{Ipv4Net, VlanConfig, MAX_VLANS};

/// A VLAN sub-interface as the pipeline sees it.
#[derive(Clone, Debug)]
pub struct VlanIf {
    /// Its tags.
    pub tags: Tags,
    /// Its own address and subnet.
    pub net: Ipv4Net,
    /// Next hop for what it routes off its subnet.
    pub gateway: Option<u32>,
    /// Subscriber prefixes reached through it.
    pub inside: Vec<Ipv4Net>,
}

impl VlanIf {
    /// From its configuration.
    pub fn of(c: &VlanConfig) -> VlanIf {
        VlanIf {
            tags: Tags::of(&c.tags),
            net: c.ipv4,
            gateway: c.gateway.map(u32::from),
            inside: c.inside.clone(),
        }
    }

    fn routes(&self, ip: u32) -> bool {
        self.net.contains(ip.into()) || self.inside.iter().any(|n| n.contains(ip.into()))
    }
}

impl PortInfo {
    /// The sub-interface that routes `ip`: None for the untagged one, else an index in
    /// `vlans`. The VLAN whose subnet or subscriber prefixes hold it; else the
    /// untagged interface if its subnet holds it or it has a gateway; else the first
    /// VLAN with a gateway; else the untagged interface, or the first VLAN.
    pub fn iface(&self, ip: u32) -> Option<usize> {
        if let Some(i) = self.vlans.iter().position(|v| v.routes(ip)) {
            return Some(i);
        }
        if self.untagged && (self.net.contains(ip.into()) || self.gateway.is_some()) {
            return None;
        }
        match self.vlans.iter().position(|v| v.gateway.is_some()) {
            Some(i) => Some(i),
            None if self.untagged || self.vlans.is_empty() => None,
            None => Some(0),
        }
    }

    /// The next hop for `dst` through the sub-interface that routes it.
    pub(crate) fn vlan_next_hop(&self, dst: u32) -> u32 {
        match self.iface(dst) {
            Some(i) => {
                let v = &self.vlans[i];
                match v.gateway {
                    Some(g) if !v.net.contains(dst.into()) => g,
                    _ => dst,
                }
            }
            None => match self.gateway {
                Some(g) if !self.net.contains(dst.into()) => g,
                _ => dst,
            },
        }
    }

    /// The appliance's own address on the sub-interface that routes `peer` (the
    /// source of what it sends there).
    #[inline]
    pub fn addr_for(&self, peer: u32) -> u32 {
        match self.iface(peer) {
            Some(i) => u32::from(self.vlans[i].net.addr),
            None => self.addr(),
        }
    }

    /// True if `ip` is one of the port's own addresses (any sub-interface's).
    #[inline]
    pub fn owns(&self, ip: u32) -> bool {
        self.addrs().any(|a| a == ip)
    }
}

/// The VLAN sub-interfaces of a port, from its configuration.
pub fn vlans_of(c: &cgnat_config::PortConfig) -> Vec<VlanIf> {
    c.vlans.iter().map(VlanIf::of).collect()
}

/// Per-VLAN counters: [`WorkerCounters::vlan`] index of sub-interface `i` on `side`.
#[inline]
pub fn slot(side: Side, i: usize) -> usize {
    side as usize * MAX_VLANS + i
}

/// Per-VLAN counter kinds.
pub const RX: usize = 0;
/// Sent on the VLAN.
pub const TX: usize = 1;
/// Received on the VLAN and dropped.
pub const DROPS: usize = 2;

/// A frame received on `port` (`side`): which sub-interface it came in on (0:
/// untagged, else 1 + its index in `vlans`), its tags stripped. Refused: a tag no
/// sub-interface has (`vlan_unknown`), untagged on a port with only tagged
/// sub-interfaces (`vlan_untagged`), and (inside, and ARP either side) a source
/// that another sub-interface routes (`vlan_source_mismatch`: its replies would
/// leave elsewhere).
#[inline]
pub fn ingress<B: PacketBuf>(
    port: &PortInfo,
    side: Side,
    buf: &mut B,
    counters: &WorkerCounters,
) -> Result<u8, DropReason> {
    if port.vlans.is_empty() {
        return Ok(0);
    }
    let d = buf.data();
    let tags = Tags::parse(d).map_err(|_| DropReason::EthTruncated)?;
    let iface = if tags.is_empty() {
        if !port.untagged {
            return Err(DropReason::VlanUntagged);
        }
        None
    } else {
        let i = port
            .vlans
            .iter()
            .position(|v| v.tags == tags)
            .ok_or(DropReason::VlanUnknown)?;
        counters.vlan[slot(side, i)][RX].inc();
        Some(i)
    };
    let l2 = tags.header_len();
    let ethertype = if d.len() >= l2 { be16(d, l2 - 2) } else { 0 };
    let src = match ethertype {
        ETHERTYPE_IPV4 if side == Side::Inside && d.len() >= l2 + 20 => be32(d, l2 + 12),
        ETHERTYPE_ARP if d.len() >= l2 + 28 => be32(d, l2 + 14),
        _ => 0,
    };
    if src != 0 && port.iface(src) != iface {
        if let Some(i) = iface {
            counters.vlan[slot(side, i)][DROPS].inc();
        }
        return Err(DropReason::VlanSourceMismatch);
    }
    if !vlan::pop(buf, tags) {
        return Err(DropReason::EthTruncated);
    }
    Ok(iface.map_or(0, |i| i as u8 + 1))
}

/// A frame about to be sent on `port` (`side`): the tags of the sub-interface that
/// routes its destination (IPv4) or target (ARP) pushed, counted sent on that VLAN.
/// Refused (`vlan_no_headroom`) when the buffer has no room in front.
#[inline]
pub fn egress<B: PacketBuf>(
    port: &PortInfo,
    side: Side,
    buf: &mut B,
    counters: &WorkerCounters,
) -> Result<(), DropReason> {
    if port.vlans.is_empty() {
        return Ok(());
    }
    let d = buf.data();
    let ip = match (d.len() >= 14).then(|| be16(d, 12)) {
        Some(ETHERTYPE_IPV4) if d.len() >= 34 => be32(d, 30),
        Some(ETHERTYPE_ARP) if d.len() >= 42 => be32(d, 38),
        _ => 0,
    };
    let Some(i) = port.iface(ip) else {
        return Ok(());
    };
    if !vlan::push(buf, port.vlans[i].tags) {
        return Err(DropReason::VlanNoHeadroom);
    }
    counters.vlan[slot(side, i)][TX].inc();
    Ok(())
}

/// Counts a frame received on sub-interface `vlan` (as [`ingress`] answered) that
/// the pipeline dropped.
#[inline]
pub fn count_drop(counters: &WorkerCounters, side: Side, vlan: u8) {
    if vlan != 0 {
        counters.vlan[slot(side, usize::from(vlan) - 1)][DROPS].inc();
    }
}

/// Each configured VLAN sub-interface: its port's name, its label (the id, or
/// `outer.inner`) and its [`slot`] in [`WorkerCounters::vlan`].
pub fn labels(cfg: &cgnat_config::Config) -> Vec<(String, String, usize)> {
    let mut out = Vec::new();
    for role in [cgnat_config::Role::Inside, cgnat_config::Role::Outside] {
        if let Some(p) = cfg.port(role) {
            for (i, v) in p.vlans.iter().enumerate() {
                out.push((p.name.clone(), v.label(), slot(Side::of(role), i)));
            }
        }
    }
    out
}

/// Received, sent and dropped on each VLAN ([`labels`]), summed over `counters`.
pub fn totals<'a>(
    vlans: &[(String, String, usize)],
    counters: impl Iterator<Item = &'a WorkerCounters> + Clone,
) -> Vec<[u64; 3]> {
    vlans
        .iter()
        .map(|&(_, _, s)| {
            std::array::from_fn(|k| counters.clone().map(|c| c.vlan[s][k].get()).sum())
        })
        .collect()
}
