//! NAT64 hosts (RFC 6146): the NAT's tables key sessions, mappings and subscribers by
//! a 32-bit inside address. An IPv6 host stands in them as a *handle* from 0.0.0.0/8,
//! a range no NAT44 inside address takes (the pipeline drops every IPv4 packet from
//! or to 0/8 as a martian), so sessions stay 32 bytes and the pool side is NAT44's.
//!
//! - A host handle (0.0.0.1 to 0.127.255.255) names one IPv6 address with state. It is
//!   taken when the host's first session is about to be made ([`Hosts6::handle`]), held
//!   once per session ([`Hosts6::hold`], [`Hosts6::release`]) and freed with its last
//!   session (or at once when the session it was taken for is refused:
//!   [`Hosts6::forget_unused`]).
//! - A subscriber key (0.128.0.0 to 0.255.255.255) names one IPv6 prefix of
//!   `subscriber_prefix_len` bits: the NAT's subscriber of every host under it (port
//!   blocks, limits, paired address). It lives while a host under it does or the NAT
//!   holds a subscriber by it ([`Hosts6::hold_key`], [`Hosts6::release_key`]).
//!
//! Both tables are slabs with free lists and fixed-size indexes, sized at start-up
//! (no allocation after it; nothing when `[nat64]` is absent).

use super::index::{Hasher, Index, MAX_RECORD};
use super::wheel::NIL;
use crate::counters::DropReason;

/// The first host handle (0.0.0.0 is never one).
pub const HOST_BASE: u32 = 1;
/// The first subscriber key; host handles are below it.
pub const KEY_BASE: u32 = 0x0080_0000;
/// The end of the handle range (0.0.0.0/8).
pub const HANDLE_END: u32 = 0x0100_0000;

/// True for a host handle (an IPv6 host standing in as an inside address).
#[inline]
pub fn is_host(a: u32) -> bool {
    a.wrapping_sub(HOST_BASE) < KEY_BASE - HOST_BASE
}

/// True for a NAT64 subscriber key.
#[inline]
pub fn is_key(a: u32) -> bool {
    (KEY_BASE..HANDLE_END).contains(&a)
}

/// An entry of a [`Table`]: a host (its address, its subscriber prefix's slot) or a
/// subscriber prefix.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The address, or the prefix.
    key: u128,
    /// A host: its subscriber prefix's slot. A prefix: unused.
    net: u32,
    /// A host: the sessions holding it. A prefix: its hosts, plus one while the NAT
    /// holds a subscriber by its key.
    refs: u32,
    next_free: u32,
}

/// A slab of entries with a free list and an index by key, sized at start-up.
struct Table {
    slots: Vec<Entry>,
    idx: Index,
    cap: u32,
    free: u32,
}

impl Table {
    fn new(cap: u32) -> Table {
        Table {
            slots: Vec::with_capacity(cap as usize),
            idx: Index::new(cap),
            cap,
            free: NIL,
        }
    }

    fn full(&self) -> bool {
        self.free == NIL && self.slots.len() as u32 >= self.cap
    }

    fn find(&self, hasher: &Hasher, key: u128) -> Option<u32> {
        let slots = &self.slots;
        self.idx
            .find(hasher.addr6(key), |j| slots[j as usize].key == key)
    }

    /// Adds `key` (not in the table) in a free slot, held by nothing: None when full.
    fn add(&mut self, hasher: &Hasher, key: u128, net: u32) -> Option<u32> {
        let fresh = Entry {
            key,
            net,
            refs: 0,
            next_free: NIL,
        };
        let j = if self.free != NIL {
            let j = self.free;
            self.free = self.slots[j as usize].next_free;
            self.slots[j as usize] = fresh;
            j
        } else if !self.full() {
            // Within the capacity reserved at start-up: never reallocates.
            self.slots.push(fresh);
            self.slots.len() as u32 - 1
        } else {
            return None;
        };
        let slots = &self.slots;
        let r = self
            .idx
            .insert(hasher.addr6(key), j, |k| slots[k as usize].key == key);
        debug_assert!(r.is_ok());
        Some(j)
    }

    /// Takes slot `j` out of the index and onto the free list.
    fn remove(&mut self, hasher: &Hasher, j: u32) {
        let slots = &self.slots;
        self.idx.remove(
            hasher.addr6(slots[j as usize].key),
            |k| k == j,
            |k| hasher.addr6(slots[k as usize].key),
        );
        self.slots[j as usize].next_free = self.free;
        self.slots[j as usize].net = NIL;
        self.free = j;
    }
}

/// The IPv6 hosts and subscriber prefixes of one worker.
pub struct Hosts6 {
    mask: u128,
    prefix_len: u8,
    hosts: Table,
    nets: Table,
    hasher: Hasher,
}

impl Hosts6 {
    /// Room for `hosts` hosts and `subscribers` subscriber prefixes of `prefix_len`
    /// bits (1 to 128; both capacities 0: NAT64 off). Slots are reserved, touched only
    /// as used.
    pub fn new(prefix_len: u8, hosts: u32, subscribers: u32, seed: u64) -> Hosts6 {
        assert!((1..=128).contains(&prefix_len));
        Hosts6 {
            mask: u128::MAX << (128 - u32::from(prefix_len)),
            prefix_len,
            hosts: Table::new(hosts.min(KEY_BASE - HOST_BASE).min(MAX_RECORD)),
            nets: Table::new(subscribers.min(HANDLE_END - KEY_BASE).min(MAX_RECORD)),
            hasher: Hasher::new(seed ^ 0x6a09_e667_f3bc_c908),
        }
    }

    /// No room at all: NAT64 off.
    pub fn off() -> Hosts6 {
        Hosts6::new(128, 0, 0, 0)
    }

    /// The subscriber prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The subscriber prefix IPv6 address `addr` is under (its host bits cleared).
    #[inline]
    pub fn prefix_of(&self, addr: u128) -> u128 {
        addr & self.mask
    }

    /// Hosts with a handle.
    pub fn hosts(&self) -> usize {
        self.hosts.idx.len()
    }

    /// Subscriber prefixes with a key.
    pub fn subscribers(&self) -> usize {
        self.nets.idx.len()
    }

    /// The handle of host `addr`, if it has one.
    pub fn find(&self, addr: u128) -> Option<u32> {
        self.hosts.find(&self.hasher, addr).map(|j| HOST_BASE + j)
    }

    /// The handle of host `addr`, taken if it has none (with its subscriber prefix's
    /// key). A new handle is held by nothing: the caller holds it with the session it
    /// makes, or gives it back with [`Hosts6::forget_unused`].
    pub fn handle(&mut self, addr: u128) -> Result<u32, DropReason> {
        if let Some(h) = self.find(addr) {
            return Ok(h);
        }
        if self.hosts.full() {
            return Err(DropReason::Nat64HostTableFull);
        }
        let prefix = self.prefix_of(addr);
        let net = match self.nets.find(&self.hasher, prefix) {
            Some(n) => n,
            None => self
                .nets
                .add(&self.hasher, prefix, NIL)
                .ok_or(DropReason::SubscriberTableFull)?,
        };
        let j = self
            .hosts
            .add(&self.hasher, addr, net)
            .ok_or(DropReason::Nat64HostTableFull)?;
        self.nets.slots[net as usize].refs += 1;
        Ok(HOST_BASE + j)
    }

    /// The IPv6 address of host handle `h` (live).
    pub fn addr(&self, h: u32) -> u128 {
        self.hosts.slots[(h - HOST_BASE) as usize].key
    }

    /// The subscriber key of host handle `h` (live).
    #[inline]
    pub fn key_of(&self, h: u32) -> u32 {
        KEY_BASE + self.hosts.slots[(h - HOST_BASE) as usize].net
    }

    /// The subscriber key of `h` if it is a live host handle (any 32-bit value: one
    /// from outside the NAT64 path names nothing).
    #[inline]
    pub fn key_if_live(&self, h: u32) -> Option<u32> {
        let e = self.hosts.slots.get(h.wrapping_sub(HOST_BASE) as usize)?;
        (is_host(h) && e.net != NIL).then(|| KEY_BASE + e.net)
    }

    /// What a log event made from `a` names: a live host handle's address (128 bits),
    /// or with `subscriber` its subscriber prefix; a live key's prefix. None for
    /// anything else (a freed handle or key, a value outside 0/8's ranges).
    pub fn resolve(&self, a: u32, subscriber: bool) -> Option<(u128, u8)> {
        let k = if is_host(a) {
            let k = self.key_if_live(a)?;
            if !subscriber {
                return Some((self.addr(a), 128));
            }
            k
        } else if is_key(a) {
            let j = a - KEY_BASE;
            let e = self.nets.slots.get(j as usize)?;
            if self.nets.find(&self.hasher, e.key) != Some(j) {
                return None;
            }
            a
        } else {
            return None;
        };
        Some((self.prefix(k), self.prefix_len))
    }

    /// The prefix subscriber key `k` names (live).
    pub fn prefix(&self, k: u32) -> u128 {
        self.nets.slots[(k - KEY_BASE) as usize].key
    }

    /// The key of the subscriber prefix `addr` is under, if it has one.
    pub fn key_for(&self, addr: u128) -> Option<u32> {
        self.nets
            .find(&self.hasher, self.prefix_of(addr))
            .map(|n| KEY_BASE + n)
    }

    /// One more session holds host handle `h`.
    pub fn hold(&mut self, h: u32) {
        self.hosts.slots[(h - HOST_BASE) as usize].refs += 1;
    }

    /// A session holding host handle `h` ended: the handle is freed with the last.
    pub fn release(&mut self, h: u32) {
        let j = h - HOST_BASE;
        let host = &mut self.hosts.slots[j as usize];
        debug_assert!(host.refs > 0);
        host.refs -= 1;
        if host.refs == 0 {
            self.free_host(j);
        }
    }

    /// Frees host handle `h` if nothing holds it (a refused first session).
    pub fn forget_unused(&mut self, h: u32) {
        let j = h - HOST_BASE;
        let host = self.hosts.slots[j as usize];
        if host.refs == 0 && self.find(host.key) == Some(h) {
            self.free_host(j);
        }
    }

    fn free_host(&mut self, j: u32) {
        let net = self.hosts.slots[j as usize].net;
        self.hosts.remove(&self.hasher, j);
        self.release_net(net);
    }

    /// The NAT made a subscriber of key `k`: the key stays while it lives.
    pub fn hold_key(&mut self, k: u32) {
        self.nets.slots[(k - KEY_BASE) as usize].refs += 1;
    }

    /// The NAT's subscriber of key `k` is gone.
    pub fn release_key(&mut self, k: u32) {
        self.release_net(k - KEY_BASE);
    }

    fn release_net(&mut self, n: u32) {
        let net = &mut self.nets.slots[n as usize];
        debug_assert!(net.refs > 0);
        net.refs -= 1;
        if net.refs == 0 {
            self.nets.remove(&self.hasher, n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> u128 {
        u128::from(s.parse::<std::net::Ipv6Addr>().unwrap())
    }

    #[test]
    fn handles_and_keys_are_in_0_slash_8_apart_from_each_other() {
        let mut t = Hosts6::new(56, 16, 16, 1);
        let h = t.handle(a("2001:db8:1:100::1")).unwrap();
        let k = t.key_of(h);
        assert!(is_host(h) && !is_key(h), "{h:#x}");
        assert!(is_key(k) && !is_host(k), "{k:#x}");
        assert!(h >> 24 == 0 && k >> 24 == 0);
        assert_ne!(h, 0);
        assert!(!is_host(0) && !is_key(0) && !is_host(0x0100_0000) && !is_key(0x0100_0000));
        assert!(!is_host(0x0a00_0001) && !is_key(0x0a00_0001));
        assert_eq!(t.addr(h), a("2001:db8:1:100::1"));
        assert_eq!(t.prefix(k), a("2001:db8:1:100::"));
    }

    #[test]
    fn resolve_names_live_hosts_and_prefixes_only() {
        let mut t = Hosts6::new(56, 4, 4, 9);
        let h = t.handle(a("2001:db8:1:100::1")).unwrap();
        t.hold(h);
        let k = t.key_of(h);
        assert_eq!(t.resolve(h, false), Some((a("2001:db8:1:100::1"), 128)));
        assert_eq!(t.resolve(h, true), Some((a("2001:db8:1:100::"), 56)));
        assert_eq!(t.resolve(k, false), Some((a("2001:db8:1:100::"), 56)));
        // Gone with its last session, the handle and its prefix's key name nothing.
        t.release(h);
        assert_eq!((t.resolve(h, false), t.resolve(k, true)), (None, None));
        assert_eq!(t.resolve(0x0a00_0001, false), None, "not in 0/8");
        assert_eq!(t.resolve(KEY_BASE + 3, true), None, "never taken");
    }

    #[test]
    fn hosts_of_one_prefix_share_a_key_and_other_prefixes_do_not() {
        for (len, same, other) in [
            (56, "2001:db8:1:1ff:1234::9", "2001:db8:1:200::1"),
            (64, "2001:db8:1:100:ffff::1", "2001:db8:1:101::1"),
            (128, "2001:db8:1:100::1", "2001:db8:1:100::2"),
        ] {
            let mut t = Hosts6::new(len, 16, 16, 7);
            let h1 = t.handle(a("2001:db8:1:100::1")).unwrap();
            let k1 = t.key_of(h1);
            let k_same = t.handle(a(same)).map(|h| t.key_of(h));
            let k_other = t.handle(a(other)).map(|h| t.key_of(h)).unwrap();
            if len == 128 {
                assert_eq!(k_same, Ok(k1), "/{len}: the same address");
            } else {
                assert_eq!(k_same, Ok(k1), "/{len}: {same} is under the prefix");
            }
            assert_ne!(k_other, k1, "/{len}: {other} is another subscriber");
            assert_eq!(t.key_for(a(other)), Some(k_other));
        }
    }

    #[test]
    fn a_handle_is_the_same_while_held_and_freed_with_its_last_session() {
        let mut t = Hosts6::new(64, 4, 4, 3);
        let x = a("2001:db8::10");
        let h = t.handle(x).unwrap();
        t.hold(h);
        t.hold(h);
        assert_eq!(t.handle(x), Ok(h));
        assert_eq!(t.find(x), Some(h));
        t.release(h);
        assert_eq!(t.find(x), Some(h), "one session still holds it");
        t.release(h);
        assert_eq!(t.find(x), None);
        assert_eq!(
            (t.hosts(), t.subscribers()),
            (0, 0),
            "the key went with its last host"
        );
    }

    #[test]
    fn a_key_the_nat_holds_outlives_its_hosts() {
        let mut t = Hosts6::new(56, 4, 4, 3);
        let h = t.handle(a("2001:db8::10")).unwrap();
        let k = t.key_of(h);
        t.hold_key(k);
        t.hold(h);
        t.release(h);
        assert_eq!(t.hosts(), 0);
        assert_eq!(t.key_for(a("2001:db8:0:ff::1")), Some(k));
        // A new host under it gets the same key while the subscriber lives.
        let h2 = t.handle(a("2001:db8:0:ff::1")).unwrap();
        assert_eq!(t.key_of(h2), k);
        t.forget_unused(h2);
        t.release_key(k);
        assert_eq!((t.hosts(), t.subscribers()), (0, 0));
    }

    #[test]
    fn full_tables_refuse_and_freed_slots_are_reused() {
        let mut t = Hosts6::new(128, 2, 3, 5);
        let h1 = t.handle(a("2001:db8::1")).unwrap();
        let h2 = t.handle(a("2001:db8::2")).unwrap();
        t.hold(h1);
        t.hold(h2);
        assert_eq!(
            t.handle(a("2001:db8::3")),
            Err(DropReason::Nat64HostTableFull)
        );
        t.release(h1);
        let h3 = t.handle(a("2001:db8::3")).unwrap();
        assert_eq!(h3, h1, "the freed handle is taken again");
        assert_eq!(t.addr(h3), a("2001:db8::3"));
        assert_eq!(t.find(a("2001:db8::1")), None);
        // Subscriber prefixes run out before hosts here.
        let mut t = Hosts6::new(128, 4, 1, 5);
        let h = t.handle(a("2001:db8::1")).unwrap();
        t.hold(h);
        assert_eq!(
            t.handle(a("2001:db8::2")),
            Err(DropReason::SubscriberTableFull)
        );
        assert_eq!(t.hosts(), 1);
    }

    #[test]
    fn off_refuses_every_host() {
        let mut t = Hosts6::off();
        assert_eq!(
            t.handle(a("2001:db8::1")),
            Err(DropReason::Nat64HostTableFull)
        );
    }

    #[test]
    fn many_hosts_come_and_go_without_losing_one() {
        // 2,000 hosts over 40 /56 subscribers, freed in a scrambled order: every
        // lookup agrees with a model until the tables are empty again.
        let mut t = Hosts6::new(56, 4096, 64, 11);
        let addr = |i: u32| (0x2001_0db8_u128 << 96) | (u128::from(i % 40) << 72) | u128::from(i);
        let handles: Vec<u32> = (0..2000).map(|i| t.handle(addr(i)).unwrap()).collect();
        for &h in &handles {
            t.hold(h);
        }
        assert_eq!((t.hosts(), t.subscribers()), (2000, 40));
        let mut order: Vec<u32> = (0..2000).collect();
        let mut x = 12345u32;
        for i in (1..order.len()).rev() {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            order.swap(i, (x >> 8) as usize % (i + 1));
        }
        for (n, &i) in order.iter().enumerate() {
            t.release(handles[i as usize]);
            assert_eq!(t.find(addr(i)), None);
            for &j in order[n + 1..].iter().step_by(97) {
                assert_eq!(t.find(addr(j)), Some(handles[j as usize]));
                assert_eq!(t.addr(handles[j as usize]), addr(j));
            }
        }
        assert_eq!((t.hosts(), t.subscribers()), (0, 0));
    }
}
