//! Port mappings subscribers ask for (PCP, NAT-PMP): the NAT side, kept apart from
//! the translation. A PCP mapping is a mapping of the worker's tables (so hairpinning,
//! ICMP, logging, quarantine and the inspection cover it) that holds one reference on
//! itself until its lifetime ends, like a static mapping with a deadline. It is always
//! a mapping record (it lives without a session): a mapping of the inside endpoint
//! folded in its only session is first given its record, as a second session or an
//! ALG's pin gives it one ([`Nat::mapping_record`]). Inbound
//! connections to it are wanted (a port forward), narrowed to the remotes of its
//! FILTER options if it has any. Only the worker that owns the subscriber calls this.

use super::{event, Key, Nat};
use crate::wire::pcp::{Filter, MAX_FILTERS};

/// One mapping a subscriber asked for.
#[derive(Clone, Copy, Debug)]
pub struct PcpEntry {
    /// The mapping record it pins (an index of [`Nat::mapping`], never folded).
    pub mapping: u32,
    /// IP protocol.
    pub proto: u8,
    /// Inside endpoint.
    pub inside: (u32, u16),
    /// Outside endpoint.
    pub outside: (u32, u16),
    /// Time (seconds) its lifetime ends.
    pub expires: u32,
    /// The PCP mapping nonce (zero for NAT-PMP).
    pub nonce: [u8; 12],
    /// Remotes allowed in (none: any).
    pub filters: [Filter; MAX_FILTERS],
    /// How many filters.
    pub n_filters: u8,
    /// Made by PEER (its one remote peer is its filter).
    pub peer: bool,
}

/// What a subscriber asks for.
#[derive(Clone, Copy, Debug, Default)]
pub struct PcpAsk {
    /// IP protocol (TCP or UDP).
    pub proto: u8,
    /// Inside endpoint.
    pub inside: (u32, u16),
    /// Suggested outside endpoint (zeros: any).
    pub suggest: (u32, u16),
    /// Lifetime granted (already within the operator's bounds), seconds.
    pub lifetime: u32,
    /// The suggested outside endpoint or nothing.
    pub prefer_failure: bool,
    /// Remotes allowed in.
    pub filters: [Filter; MAX_FILTERS],
    /// How many.
    pub n_filters: u8,
    /// Earlier filters are removed (a FILTER option of prefix length 0).
    pub clear_filters: bool,
    /// Mapping nonce.
    pub nonce: [u8; 12],
    /// PEER: the remote peer.
    pub peer: Option<(u32, u16)>,
    /// Mappings one subscriber may hold.
    pub max_per_subscriber: u32,
}

/// Why a request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcpRefusal {
    /// The mapping exists under another nonce.
    NonceMismatch,
    /// The subscriber holds as many as it may.
    Quota,
    /// No port (or no record) left for it.
    NoResources,
    /// The subscriber's port quota is used up.
    PortQuota,
    /// PREFER_FAILURE and the suggested endpoint cannot be had.
    CannotProvide,
}

/// PCP entries a worker holds at most.
pub const MAX_PCP_ENTRIES: usize = 16384;

impl Nat {
    /// Creates or refreshes the mapping `ask` describes; returns its outside
    /// endpoint. A lifetime of 0 is a delete ([`Nat::pcp_delete`]).
    pub fn pcp_map(&mut self, ask: &PcpAsk, now: u32) -> Result<(u32, u16), PcpRefusal> {
        let mkey = Key {
            proto: ask.proto,
            a: ask.inside.0,
            pa: ask.inside.1,
            b: 0,
            pb: 0,
        };
        if let Some(m) = self
            .mapping_by_in_key(&mkey)
            .and_then(|r| self.record_of(r))
        {
            if let Some(e) = self.pcp.get_mut(&m) {
                if e.nonce != ask.nonce {
                    return Err(PcpRefusal::NonceMismatch);
                }
                e.expires = now + ask.lifetime;
                if ask.clear_filters {
                    e.n_filters = 0;
                }
                merge_filters(e, ask);
                let outside = e.outside;
                self.note_pcp(m);
                return Ok(outside);
            }
        }
        let held = self
            .pcp
            .values()
            .filter(|e| e.inside.0 == ask.inside.0)
            .count();
        if held as u32 >= ask.max_per_subscriber {
            return Err(PcpRefusal::Quota);
        }
        if self.pcp.len() >= MAX_PCP_ENTRIES {
            return Err(PcpRefusal::NoResources);
        }
        let sub = self
            .find_or_add_subscriber(ask.inside.0)
            .map_err(|_| PcpRefusal::NoResources)?;
        let m = match self.pcp_mapping(sub, mkey, ask) {
            Ok(m) => m,
            Err(r) => {
                self.maybe_remove_subscriber(sub);
                return Err(r);
            }
        };
        // The entry's own reference: the mapping lives until the lifetime ends.
        self.mappings[m as usize].sessions += 1;
        let map = self.mappings[m as usize];
        let outside = (map.out_addr(&self.pool), map.out_port);
        let mut e = PcpEntry {
            mapping: m,
            proto: ask.proto,
            inside: ask.inside,
            outside,
            expires: now + ask.lifetime,
            nonce: ask.nonce,
            filters: [Filter::default(); MAX_FILTERS],
            n_filters: 0,
            peer: ask.peer.is_some(),
        };
        merge_filters(&mut e, ask);
        self.pcp.insert(m, e);
        self.note_pcp(m);
        self.counters.pcp_mappings_active.set(self.pcp.len() as u64);
        self.pcp_event(event::SESSION_CREATE, &e);
        Ok(outside)
    }

    /// The mapping record of mapping index record `r` if it has one (not folded).
    fn record_of(&self, r: u32) -> Option<u32> {
        r.checked_sub(self.map_base)
    }

    /// The mapping record for a new entry: the existing mapping of the inside endpoint
    /// (a folded one given its record), else a new one on the suggested port when the
    /// subscriber may have it, else any port of its own (its block, its range).
    fn pcp_mapping(&mut self, sub: u32, mkey: Key, ask: &PcpAsk) -> Result<u32, PcpRefusal> {
        let wants = |out: (u32, u16)| {
            (ask.suggest.0 == 0 || ask.suggest.0 == out.0)
                && (ask.suggest.1 == 0 || ask.suggest.1 == out.1)
        };
        if let Some(r) = self.mapping_by_in_key(&mkey) {
            let out = self.mapping_out_key(r);
            if ask.prefer_failure && !wants((out.a, out.pa)) {
                return Err(PcpRefusal::CannotProvide);
            }
            // Shared with its session from now on: a record of its own, counting
            // that session (refused, and nothing changed, when none is free).
            return self.mapping_record(r).map_err(|_| PcpRefusal::NoResources);
        }
        if self.mapping_full() {
            return Err(PcpRefusal::NoResources);
        }
        if ask.suggest.1 != 0 {
            let prefer = self.pool.index_of(ask.suggest.0).unwrap_or(0);
            if let Some(a) = self.try_port(sub, mkey, ask.suggest.1, prefer) {
                let on_addr = ask.suggest.0 == 0 || self.pool.addr(a) == ask.suggest.0;
                if on_addr && self.pool.take(a, mkey.proto, ask.suggest.1) {
                    return Ok(self.install_mapping(sub, mkey, a, ask.suggest.1));
                }
            }
        }
        if ask.prefer_failure && (ask.suggest.0 != 0 || ask.suggest.1 != 0) {
            return Err(PcpRefusal::CannotProvide);
        }
        let m = self
            .new_mapping_with(sub, mkey, None, false)
            .map_err(|r| match r {
                crate::counters::DropReason::SubscriberPortLimit => PcpRefusal::PortQuota,
                _ => PcpRefusal::NoResources,
            })?;
        let map = self.mappings[m as usize];
        if ask.prefer_failure && !wants((map.out_addr(&self.pool), map.out_port)) {
            // Not what was asked for: given back at once.
            self.mappings[m as usize].sessions += 1;
            self.unpin_mapping(m, 0, true);
            return Err(PcpRefusal::CannotProvide);
        }
        Ok(m)
    }

    /// Deletes the entry of inside endpoint (`proto`, `inside`), checking its nonce
    /// if given; a port of 0 deletes every entry of that address and protocol
    /// (NAT-PMP). Deleting what does not exist succeeds (RFC 6887 15).
    pub fn pcp_delete(
        &mut self,
        proto: u8,
        inside: (u32, u16),
        nonce: Option<[u8; 12]>,
        now: u32,
    ) -> Result<(), PcpRefusal> {
        let mut gone = std::mem::take(&mut self.pcp_ending);
        gone.clear();
        gone.extend(
            self.pcp
                .iter()
                .filter(|(_, e)| {
                    e.proto == proto
                        && e.inside.0 == inside.0
                        && (inside.1 == 0 || e.inside.1 == inside.1)
                })
                .map(|(&m, _)| m),
        );
        let refused = nonce.is_some_and(|n| gone.iter().any(|m| self.pcp[m].nonce != n));
        if !refused {
            for &m in &gone {
                self.pcp_remove(m, now);
            }
        }
        self.pcp_ending = gone;
        if refused {
            return Err(PcpRefusal::NonceMismatch);
        }
        Ok(())
    }

    fn pcp_remove(&mut self, m: u32, now: u32) {
        if let Some(e) = self.pcp.remove(&m) {
            self.note_pcp_end(&e);
            self.pcp_event(event::SESSION_DELETE, &e);
            self.unpin_mapping(m, now, false);
            self.counters.pcp_mappings_active.set(self.pcp.len() as u64);
        }
    }

    /// Ends the entries whose lifetime is over (once a second).
    pub(super) fn pcp_expire(&mut self, now: u32) {
        if self.pcp.is_empty() {
            return;
        }
        let mut over = std::mem::take(&mut self.pcp_ending);
        over.clear();
        over.extend(
            self.pcp
                .iter()
                .filter(|(_, e)| e.expires <= now)
                .map(|(&m, _)| m),
        );
        for &m in &over {
            self.pcp_remove(m, now);
            self.counters.pcp_mappings_expired.inc();
        }
        self.pcp_ending = over;
    }

    /// Whether remote `src`:`sport` may open a session on mapping index record `r`:
    /// None when it is no PCP mapping, else whether its filters (if any) let it in.
    #[inline]
    pub(super) fn pcp_admits(&self, r: u32, src: u32, sport: u16) -> Option<bool> {
        if self.pcp.is_empty() {
            return None;
        }
        let e = self.pcp.get(&self.record_of(r)?)?;
        let f = &e.filters[..usize::from(e.n_filters)];
        Some(f.is_empty() || f.iter().any(|f| f.admits(src, sport)))
    }

    /// The outside address a subscriber's mappings get (NAT-PMP's public address
    /// request): its paired address, or None if it has none to get.
    pub fn pcp_external(&mut self, inside: u32) -> Option<u32> {
        if let Some(d) = self.params.deterministic.as_ref() {
            let (a, _) = d.forward_index(inside)?;
            return self.pool.addresses().get(a).copied();
        }
        let sub = self.find_or_add_subscriber(inside).ok()?;
        let a = self.pair_address(sub).ok();
        self.maybe_remove_subscriber(sub);
        a.map(|a| self.pool.addr(a))
    }

    /// The live PCP and NAT-PMP entries.
    pub fn pcp_entries(&self) -> impl Iterator<Item = &PcpEntry> + '_ {
        self.pcp.values()
    }

    fn pcp_event(&mut self, kind: u8, e: &PcpEntry) {
        if self.params.log.sessions {
            let (dst, dst_port) = match (e.peer, self.params.log.destinations) {
                (true, true) => (e.filters[0].addr, e.filters[0].port),
                _ => (0, 0),
            };
            self.emit(crate::log::LogEvent {
                kind,
                proto: e.proto,
                inside: e.inside.0,
                in_port: e.inside.1,
                outside: e.outside.0,
                out_port: e.outside.1,
                dst,
                dst_port,
                ..Default::default()
            });
        }
    }
}

/// Adds `ask`'s filters to `e` (or its peer, for PEER), within [`MAX_FILTERS`].
fn merge_filters(e: &mut PcpEntry, ask: &PcpAsk) {
    let add = |e: &mut PcpEntry, f: Filter| {
        let n = usize::from(e.n_filters);
        if e.filters[..n].contains(&f) {
            return;
        }
        if n == MAX_FILTERS {
            e.filters.copy_within(1.., 0);
            e.filters[MAX_FILTERS - 1] = f;
        } else {
            e.filters[n] = f;
            e.n_filters += 1;
        }
    };
    if let Some((addr, port)) = ask.peer {
        add(
            e,
            Filter {
                addr,
                prefix: 32,
                port,
            },
        );
    }
    for f in &ask.filters[..usize::from(ask.n_filters)] {
        add(e, *f);
    }
}
