//! The outside address pool of one worker: which ports of which pool address are in
//! use, port blocks and their owners, and the quarantine of released ports.
//!
//! The port range of every pool address is cut into blocks of `block_size` ports;
//! block `b` belongs to worker `b % workers`, so the worker that owns any outside port
//! is a computation ([`PortLayout::owner`]), never a lookup. Each protocol (TCP, UDP,
//! ICMP) has its own port space; a block covers all three.
//!
//! Under dynamic allocation on an outside port steered by RSS ([`Pool::with_steering`])
//! ownership follows the device instead: a worker owns the ports whose replies the
//! device delivers to its own RX queue (the Toeplitz hash of the pool address and the
//! port, through the redirection table), and hands out only those, so that no reply
//! needs a handoff. Blocks then only count ports for metrics.
//!
//! A reload may change the pool ([`Pool::update`]). Indexes of pool addresses are
//! stored in mappings, subscribers, blocks and quarantine, so they never change: an
//! address added is appended (next index), one removed is marked draining and kept.
//! A draining address takes no new subscribers, no new blocks and no new mappings
//! (except those of a subscriber already paired with it under paired pooling, RFC 4787
//! REQ-2: it keeps its one address until it has no mappings left, and is then paired
//! anew); its live mappings work on until they end, and it stays a pool address
//! (replies, proxy ARP) for good. Added again, it simply stops draining. Every worker
//! applies the same update, so indexes agree across workers and with the metrics.

use super::rss::Steering;
use std::collections::VecDeque;
use std::sync::Arc;

/// Marks "no subscriber" in a block's owner field.
pub const NO_OWNER: u32 = u32::MAX;

/// How the port range is cut into blocks and shared among workers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortLayout {
    /// First port of the range.
    pub lo: u16,
    /// Ports per block.
    pub block_size: u16,
    /// Number of whole blocks in the range.
    pub blocks: u16,
    /// Number of workers.
    pub workers: u16,
}

impl PortLayout {
    /// The layout of `[lo, hi]` cut in blocks of `block_size` for `workers` workers.
    /// Ports after the last whole block are not used for dynamic translation.
    pub fn new(lo: u16, hi: u16, block_size: u16, workers: u16) -> PortLayout {
        let span = u32::from(hi) - u32::from(lo) + 1;
        let blocks = (span / u32::from(block_size.max(1))) as u16;
        PortLayout {
            lo,
            block_size: block_size.max(1),
            blocks,
            workers: workers.max(1),
        }
    }

    /// The block holding `port`, if the port is in a whole block of the range.
    pub fn block_of(&self, port: u16) -> Option<u16> {
        let off = port.checked_sub(self.lo)?;
        let b = off / self.block_size;
        (b < self.blocks).then_some(b)
    }

    /// The worker owning `port` (the worker that must process its out2in packets).
    pub fn owner(&self, port: u16) -> Option<u16> {
        self.block_of(port).map(|b| b % self.workers)
    }

    /// First port of block `b`.
    pub fn block_start(&self, b: u16) -> u16 {
        self.lo + b * self.block_size
    }
}

/// One pool address as seen by one worker (the address itself is in the pool's dense
/// list, [`Pool::addr`]).
pub struct PoolAddr {
    /// Ports in use (all protocols, quarantined included) per block.
    block_used: Vec<u16>,
    /// Subscriber owning each block (port-block allocation), or NO_OWNER.
    block_owner: Vec<u32>,
    /// Blocks of this worker that have no owner, as a stack.
    free_blocks: Vec<u16>,
    /// Ports in use on this address by this worker (all protocols).
    pub ports_used: u32,
    /// Subscribers paired with this address (paired pooling balance).
    pub subscribers: u32,
    /// The address's share of the outside port's RSS hash (steered pools).
    rss_part: u32,
    /// Removed from the pool by a reload: no new subscribers, blocks or mappings.
    pub draining: bool,
}

impl PoolAddr {
    fn new(layout: &PortLayout, worker: u16) -> PoolAddr {
        let mut free_blocks: Vec<u16> = (0..layout.blocks)
            .filter(|b| b % layout.workers == worker)
            .collect();
        free_blocks.reverse(); // pop() hands out low blocks first
        PoolAddr {
            block_used: vec![0; usize::from(layout.blocks)],
            block_owner: vec![NO_OWNER; usize::from(layout.blocks)],
            free_blocks,
            ports_used: 0,
            subscribers: 0,
            rss_part: 0,
            draining: false,
        }
    }

    /// Marks `port` of protocol index `p` in use in `used`, this address's
    /// [`PortMaps::of`].
    fn mark(&mut self, used: &mut [u64], p: usize, port: u16, layout: &PortLayout) {
        used[PortMaps::word(p, port)] |= 1 << (port & 63);
        self.ports_used += 1;
        if let Some(b) = layout.block_of(port) {
            self.block_used[usize::from(b)] += 1;
        }
    }

    fn unmark(
        &mut self,
        used: &mut [u64],
        p: usize,
        port: u16,
        layout: &PortLayout,
    ) -> Option<u16> {
        used[PortMaps::word(p, port)] &= !(1 << (port & 63));
        self.ports_used -= 1;
        let b = layout.block_of(port)?;
        self.block_used[usize::from(b)] -= 1;
        Some(b)
    }

    /// Free blocks left on this address for this worker.
    pub fn free_block_count(&self) -> usize {
        self.free_blocks.len()
    }
}

/// A released port waiting out its quarantine.
#[derive(Clone, Copy, Debug)]
struct Quarantined {
    pool: u16,
    proto: u8,
    port: u16,
    until: u32,
}

/// The used-port bitmaps of every address the pool may hold ([`POOL_ROOM`] more than
/// at start), one per protocol (tcp, udp, icmp) of 65,536 bits each: 24 KB an address,
/// in one allocation on transparent huge pages. Creating a session reads and writes
/// a word of its address's map, an address picked at random among thousands: on 4 KB
/// pages (a vector per map, as they were) nearly every such access missed the TLB.
/// From zeroed memory: the maps of addresses never used cost no resident memory.
struct PortMaps {
    bits: Vec<u64>,
}

impl PortMaps {
    /// Words of one protocol's map.
    const WORDS: usize = 65_536 / 64;
    /// Words of one address's maps.
    const ADDR: usize = 3 * Self::WORDS;

    fn new(addrs: usize) -> PortMaps {
        PortMaps {
            bits: cgnat_ffi::huge_zeroed(addrs * Self::ADDR),
        }
    }

    /// The word of `port` of protocol index `p` in an address's maps.
    #[inline]
    fn word(p: usize, port: u16) -> usize {
        p * Self::WORDS + usize::from(port >> 6)
    }

    /// Address `a`'s maps.
    #[inline]
    fn of(&self, a: usize) -> &[u64] {
        &self.bits[a * Self::ADDR..(a + 1) * Self::ADDR]
    }

    #[inline]
    fn of_mut(&mut self, a: usize) -> &mut [u64] {
        &mut self.bits[a * Self::ADDR..(a + 1) * Self::ADDR]
    }
}

/// What the pool says when asked for a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortError {
    /// No port or block left.
    Exhausted,
    /// The subscriber holds its maximum number of blocks, all full.
    SubscriberLimit,
}

/// The pool of one worker.
pub struct Pool {
    /// Addresses of the pool.
    pub addrs: Vec<PoolAddr>,
    /// Their used-port bitmaps, by pool index.
    maps: PortMaps,
    /// The addresses (host order) by pool index, densely, 4 bytes each: what every
    /// mapping's outside address reads; `addrs[i]` is the state of `list[i]`. Sorted
    /// at start; a reload appends.
    list: Vec<u32>,
    /// The addresses sorted (the membership test every packet makes, a binary
    /// search), with their pool indexes in `sorted_idx`.
    sorted: Vec<u32>,
    sorted_idx: Vec<u16>,
    /// Ports in use per address (all protocols, quarantined included), for metrics:
    /// [`POOL_ROOM`] more counters than addresses at start, for addresses a reload adds.
    pub usage: std::sync::Arc<Vec<crate::counters::Counter>>,
    /// How ports are cut into blocks.
    pub layout: PortLayout,
    worker: u16,
    quarantine_secs: u32,
    quarantine: VecDeque<Quarantined>,
    rng: u64,
    /// The outside port's RSS steering, when ownership follows it.
    steering: Option<Arc<Steering>>,
}

/// Addresses a reload may add to the pool beyond those it had at start: the usage
/// counters shared with the metrics and the API are allocated for them at start.
pub const POOL_ROOM: usize = 4096;

/// Pool indexes are 16 bits (`u16::MAX` marks "none").
pub const MAX_POOL_INDEXES: usize = u16::MAX as usize;

/// The pool by index after a reload asks for `wanted` (sorted) while `running` (by
/// index) is in use: `running` kept in its order, the addresses of `wanted` it lacks
/// appended in order; the second list marks (by index) the addresses `wanted` no longer
/// has (draining).
pub fn merged(running: &[u32], wanted: &[u32]) -> (Vec<u32>, Vec<bool>) {
    let known: std::collections::HashSet<u32> = running.iter().copied().collect();
    let keep: std::collections::HashSet<u32> = wanted.iter().copied().collect();
    let mut list = running.to_vec();
    list.extend(wanted.iter().filter(|a| !known.contains(a)));
    let draining = list.iter().map(|a| !keep.contains(a)).collect();
    (list, draining)
}

/// Protocol index of a port space.
pub fn pidx(proto: u8) -> usize {
    crate::counters::proto_index(proto)
}

impl Pool {
    /// A pool over `addrs` for worker `worker` of `layout.workers`, able to hold
    /// `capacity` quarantined ports without growing.
    pub fn new(
        addrs: &[u32],
        layout: PortLayout,
        worker: u16,
        quarantine_secs: u32,
        capacity: usize,
        seed: u64,
    ) -> Pool {
        debug_assert!(addrs.windows(2).all(|w| w[0] < w[1]), "pool not sorted");
        let capacity_addrs = addrs.len() + POOL_ROOM;
        Pool {
            addrs: addrs
                .iter()
                .map(|_| PoolAddr::new(&layout, worker))
                .collect(),
            maps: PortMaps::new(capacity_addrs),
            list: addrs.to_vec(),
            sorted: addrs.to_vec(),
            sorted_idx: (0..addrs.len()).map(|i| i as u16).collect(),
            usage: std::sync::Arc::new(
                (0..capacity_addrs)
                    .map(|_| crate::counters::Counter::default())
                    .collect(),
            ),
            layout,
            worker,
            quarantine_secs,
            quarantine: VecDeque::with_capacity(capacity),
            rng: seed | 1,
            steering: None,
        }
    }

    /// The same pool with ownership following the outside port's RSS `steering`
    /// (dynamic allocation only: blocks and deterministic ranges must stay contiguous).
    pub fn with_steering(mut self, steering: Arc<Steering>) -> Pool {
        for (pa, &addr) in self.addrs.iter_mut().zip(&self.list) {
            pa.rss_part = steering.addr_part(addr);
        }
        self.steering = Some(steering);
        self
    }

    /// Takes the pool a reload asks for: `list` by index (the running one first, as
    /// [`merged`] makes it) and which of them drain. Addresses past the running ones
    /// are appended; indexes never change. Refused (nothing changed) when `list` does
    /// not start with the running addresses or more would be added than the usage
    /// counters have room for. Allocates (the new addresses' block lists; their port
    /// maps came with the pool): called between bursts, never per packet.
    pub fn update(&mut self, list: &[u32], draining: &[bool]) -> Result<(), String> {
        let n = self.list.len();
        if list.len() < n || list[..n] != self.list[..] {
            return Err("the new pool does not keep the running addresses' indexes".into());
        }
        if list.len() > self.usage.len() || list.len() > MAX_POOL_INDEXES {
            return Err(format!(
                "{} pool addresses, room for {}",
                list.len(),
                self.usage.len().min(MAX_POOL_INDEXES)
            ));
        }
        for &addr in &list[n..] {
            let mut pa = PoolAddr::new(&self.layout, self.worker);
            if let Some(s) = &self.steering {
                pa.rss_part = s.addr_part(addr);
            }
            self.addrs.push(pa);
            self.list.push(addr);
        }
        if list.len() > n {
            let mut pairs: Vec<(u32, u16)> = self
                .list
                .iter()
                .enumerate()
                .map(|(i, &a)| (a, i as u16))
                .collect();
            pairs.sort_unstable();
            self.sorted = pairs.iter().map(|p| p.0).collect();
            self.sorted_idx = pairs.iter().map(|p| p.1).collect();
        }
        for (i, pa) in self.addrs.iter_mut().enumerate() {
            pa.draining = draining.get(i).copied().unwrap_or(false);
        }
        Ok(())
    }

    /// True if address `a` drains (a reload removed it).
    #[inline]
    pub fn is_draining(&self, a: usize) -> bool {
        self.addrs.get(a).is_some_and(|p| p.draining)
    }

    /// The first address that does not drain (0 when all do: it is refused then).
    #[inline]
    pub fn first_active(&self) -> usize {
        self.addrs.iter().position(|p| !p.draining).unwrap_or(0)
    }

    /// True if address `a` drains and holds nothing of this worker any more (no port in
    /// use or quarantined, no subscriber paired): released.
    pub fn is_released(&self, a: usize) -> bool {
        self.addrs
            .get(a)
            .is_some_and(|p| p.draining && p.ports_used == 0 && p.subscribers == 0)
    }

    /// The outside port's RSS steering, if ownership follows it.
    pub fn steering(&self) -> Option<&Arc<Steering>> {
        self.steering.as_ref()
    }

    /// The worker owning outside `port` of pool address `addr` (the one that must
    /// process its out2in packets): the RX queue its replies reach when the pool is
    /// steered, else the block's worker. None: a port outside every whole block of an
    /// unsteered pool.
    #[inline]
    pub fn owner(&self, addr: u32, port: u16) -> Option<u16> {
        match &self.steering {
            Some(s) => Some(s.queue_of(addr, port)),
            None => self.layout.owner(port),
        }
    }

    /// True if this worker may hand out `port` of address `a` (always, unsteered: the
    /// caller picks among its own blocks).
    #[inline]
    fn owns(&self, a: usize, port: u16) -> bool {
        match &self.steering {
            Some(s) => s.queue_with(self.addrs[a].rss_part, port) == self.worker,
            None => true,
        }
    }

    /// How full address `a` is for this worker, in percent: blocks handed out under
    /// port-block allocation, ports in use (all protocols) otherwise.
    pub fn utilisation(&self, a: usize, blocks: bool) -> u32 {
        let pa = &self.addrs[a];
        if blocks {
            let mine = self.my_block_count() as u64;
            (mine - pa.free_blocks.len() as u64)
                .saturating_mul(100)
                .checked_div(mine)
                .unwrap_or(100) as u32
        } else {
            (u64::from(pa.ports_used) * 100)
                .checked_div(3 * self.my_port_count())
                .unwrap_or(100) as u32
        }
    }

    /// Ports of each address (per protocol) this worker hands out dynamically: those
    /// of its blocks, or when steered its share of the redirection table of all the
    /// blocks' ports (the hash spreads ports evenly, see the tests of `rss`).
    fn my_port_count(&self) -> u64 {
        let all = u64::from(self.layout.blocks) * u64::from(self.layout.block_size);
        match &self.steering {
            Some(s) => {
                let (mine, of) = s.share(self.worker);
                all * mine as u64 / of as u64
            }
            None => self.my_block_count() as u64 * u64::from(self.layout.block_size),
        }
    }

    /// The worker this pool belongs to.
    pub fn worker(&self) -> u16 {
        self.worker
    }

    /// Index of a pool address.
    #[inline]
    pub fn index_of(&self, addr: u32) -> Option<usize> {
        // Most addresses asked about (every outbound packet's destination) are not
        // the pool's: two compares. Otherwise a binary search of the dense list.
        match (self.sorted.first(), self.sorted.last()) {
            (Some(&lo), Some(&hi)) if lo <= addr && addr <= hi => self
                .sorted
                .binary_search(&addr)
                .ok()
                .map(|i| usize::from(self.sorted_idx[i])),
            _ => None,
        }
    }

    /// The address of pool index `i`.
    #[inline]
    pub fn addr(&self, i: usize) -> u32 {
        self.list[i]
    }

    /// The addresses, by pool index.
    pub fn addresses(&self) -> &[u32] {
        &self.list
    }

    /// xorshift64*: ports must be hard to guess (RFC 6056), not cryptographic.
    pub fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn adjust_parity(port: u16, want: Option<u16>, start: u16, len: u16) -> u16 {
        let inside = |p: u16| p >= start && u32::from(p) < u32::from(start) + u32::from(len);
        match want {
            Some(par) if port & 1 != par & 1 && inside(port ^ 1) => port ^ 1,
            _ => port,
        }
    }

    /// Picks and marks a free port this worker owns among the `len` ports from `start`
    /// on address `a`, random first, then a scan from a random point. `parity` asks
    /// for a port of the same parity.
    fn pick_in(
        &mut self,
        a: usize,
        p: usize,
        start: u16,
        len: u16,
        parity: Option<u16>,
    ) -> Option<u16> {
        let span = u32::from(len);
        if span == 0 {
            return None;
        }
        // Steered, about one port in `workers` is ours: as many more random tries.
        let tries = if self.steering.is_some() {
            8 * u32::from(self.layout.workers).min(8)
        } else {
            8
        };
        for _ in 0..tries {
            let port = start + (self.random() % u64::from(span)) as u16;
            let port = Self::adjust_parity(port, parity, start, len);
            if !self.is_used(a, p, port) && self.owns(a, port) {
                self.mark(a, p, port);
                self.usage[a].set(u64::from(self.addrs[a].ports_used));
                return Some(port);
            }
        }
        let first = (self.random() % u64::from(span)) as u32;
        let mut fallback = None;
        for i in 0..span {
            let port = start + ((first + i) % span) as u16;
            if !self.is_used(a, p, port) && self.owns(a, port) {
                match parity {
                    Some(par) if port & 1 != par & 1 => {
                        fallback.get_or_insert(port);
                    }
                    _ => {
                        self.mark(a, p, port);
                        self.usage[a].set(u64::from(self.addrs[a].ports_used));
                        return Some(port);
                    }
                }
            }
        }
        // No port of the right parity: parity is a preference (RFC 4787 REQ-4 is a
        // SHOULD), a mapping with the other parity beats a refused session.
        let port = fallback?;
        self.mark(a, p, port);
        self.usage[a].set(u64::from(self.addrs[a].ports_used));
        Some(port)
    }

    /// Dynamic allocation: a random free port of this worker's blocks on address `a`
    /// (steered: a random free port of all blocks whose replies reach this worker).
    pub fn alloc_dynamic(
        &mut self,
        a: usize,
        proto: u8,
        parity: Option<u16>,
    ) -> Result<u16, PortError> {
        let p = pidx(proto);
        if self.steering.is_some() {
            let span = u32::from(self.layout.blocks) * u32::from(self.layout.block_size);
            let len = span.min(u32::from(u16::MAX)) as u16;
            return self
                .pick_in(a, p, self.layout.lo, len, parity)
                .ok_or(PortError::Exhausted);
        }
        let mine = self.my_block_count();
        if mine == 0 {
            return Err(PortError::Exhausted);
        }
        // Random block of mine, then the blocks after it, until a port is found.
        let first = (self.random() % mine as u64) as u16;
        for i in 0..mine as u16 {
            let nth = (first + i) % mine as u16;
            let b = nth * self.layout.workers + self.worker;
            let start = self.layout.block_start(b);
            if let Some(port) = self.pick_in(a, p, start, self.layout.block_size, parity) {
                return Ok(port);
            }
        }
        Err(PortError::Exhausted)
    }

    /// Blocks of each address this worker owns.
    pub fn my_block_count(&self) -> usize {
        let (b, w, me) = (
            usize::from(self.layout.blocks),
            usize::from(self.layout.workers),
            usize::from(self.worker),
        );
        if b <= me {
            0
        } else {
            (b - me).div_ceil(w)
        }
    }

    /// Port-block allocation: a random free port in one of the subscriber's blocks
    /// (`room[..*held]`, each `pool << 16 | block`), or a new block when they are full
    /// and the subscriber may hold another (`*held < room.len()`: `room` has one entry
    /// per block the subscriber may hold). A new block is taken on address `a` and
    /// appended as `room[*held]`. Never allocates.
    #[allow(clippy::too_many_arguments)]
    pub fn alloc_in_blocks(
        &mut self,
        room: &mut [u32],
        held: &mut u16,
        owner: u32,
        a: usize,
        proto: u8,
        parity: Option<u16>,
    ) -> Result<(usize, u16, bool), PortError> {
        let p = pidx(proto);
        let n = usize::from(*held).min(room.len());
        let first = if n > 0 {
            (self.random() % n as u64) as usize
        } else {
            0
        };
        for i in 0..n {
            let entry = room[(first + i) % n];
            let (ai, b) = ((entry >> 16) as usize, entry as u16);
            let start = self.layout.block_start(b);
            if let Some(port) = self.pick_in(ai, p, start, self.layout.block_size, parity) {
                return Ok((ai, port, false));
            }
        }
        if n >= room.len() {
            return Err(PortError::SubscriberLimit);
        }
        // New blocks only from addresses that do not drain.
        if self.is_draining(a) {
            return Err(PortError::Exhausted);
        }
        let b = self.addrs[a]
            .free_blocks
            .pop()
            .ok_or(PortError::Exhausted)?;
        self.addrs[a].block_owner[usize::from(b)] = owner;
        room[n] = (a as u32) << 16 | u32::from(b);
        *held = n as u16 + 1;
        let start = self.layout.block_start(b);
        let port = self
            .pick_in(a, p, start, self.layout.block_size, parity)
            .ok_or(PortError::Exhausted)?;
        Ok((a, port, true))
    }

    /// A random free port among the `len` ports from `start` (a deterministic range).
    pub fn alloc_range(
        &mut self,
        a: usize,
        proto: u8,
        start: u16,
        len: u16,
        parity: Option<u16>,
    ) -> Option<u16> {
        self.pick_in(a, pidx(proto), start, len, parity)
    }

    /// True if `port` of address `a` is in use for protocol index `p`.
    #[inline]
    pub fn is_used(&self, a: usize, p: usize, port: u16) -> bool {
        self.maps.of(a)[PortMaps::word(p, port)] & (1 << (port & 63)) != 0
    }

    #[inline]
    fn mark(&mut self, a: usize, p: usize, port: u16) {
        self.addrs[a].mark(self.maps.of_mut(a), p, port, &self.layout);
    }

    /// Prefetches what picking a port in block `b` of address `a` for `proto` reads
    /// ([`Pool::alloc_in_blocks`]): the block's words of the used-port bitmap and its
    /// use count. A hint only: nothing changes.
    #[inline]
    pub fn prefetch_block(&self, a: usize, proto: u8, b: u16) {
        let Some(addr) = self.addrs.get(a) else {
            return;
        };
        let start = self.layout.block_start(b);
        let last = start.saturating_add(self.layout.block_size.saturating_sub(1));
        let used = self.maps.of(a);
        let p = pidx(proto);
        for port in [start, last] {
            cgnat_ffi::prefetch(&used[PortMaps::word(p, port)]);
        }
        if let Some(n) = addr.block_used.get(usize::from(b)) {
            cgnat_ffi::prefetch(n);
        }
    }

    /// Takes a specific port (static mappings, port preservation); false if in use.
    pub fn take(&mut self, a: usize, proto: u8, port: u16) -> bool {
        let p = pidx(proto);
        if self.is_used(a, p, port) {
            return false;
        }
        self.mark(a, p, port);
        self.usage[a].set(u64::from(self.addrs[a].ports_used));
        true
    }

    /// Gives block `b` of address `a` to subscriber slot `owner` (an HA standby
    /// installing what the active holds); false when another holds it or it is not
    /// this worker's.
    pub fn take_block(&mut self, a: usize, b: u16, owner: u32) -> bool {
        let pa = &mut self.addrs[a];
        match pa.block_owner.get(usize::from(b)) {
            Some(&o) if o == owner => return true,
            Some(&NO_OWNER) => {}
            _ => return false,
        }
        let Some(k) = pa.free_blocks.iter().position(|&x| x == b) else {
            return false;
        };
        pa.free_blocks.remove(k);
        pa.block_owner[usize::from(b)] = owner;
        true
    }

    /// Sets the quarantine of released ports; returns the one it replaces.
    pub fn set_quarantine_secs(&mut self, secs: u32) -> u32 {
        std::mem::replace(&mut self.quarantine_secs, secs)
    }

    /// Takes back a port of address `a` that waits in quarantine (a static mapping
    /// put back by a reload): it stays in use and never comes free by itself. False
    /// when it is not in quarantine.
    pub fn reclaim(&mut self, a: usize, proto: u8, port: u16) -> bool {
        let (a, p) = (a as u16, pidx(proto) as u8);
        let before = self.quarantine.len();
        self.quarantine
            .retain(|q| !(q.pool == a && q.proto == p && q.port == port));
        self.quarantine.len() < before
    }

    /// Releases a port into quarantine; it becomes free after `quarantine_secs`.
    /// With `immediate` (TCP after a clean close) it is free at once. Returns the
    /// block that became empty, if any, for the caller to return.
    pub fn release(
        &mut self,
        a: usize,
        proto: u8,
        port: u16,
        now: u32,
        immediate: bool,
    ) -> Option<(usize, u16, u32)> {
        if immediate
            || self.quarantine_secs == 0
            || self.quarantine.len() == self.quarantine.capacity()
        {
            return self.free_now(a, pidx(proto), port);
        }
        self.quarantine.push_back(Quarantined {
            pool: a as u16,
            proto: pidx(proto) as u8,
            port,
            until: now.saturating_add(self.quarantine_secs),
        });
        None
    }

    fn free_now(&mut self, a: usize, p: usize, port: u16) -> Option<(usize, u16, u32)> {
        let b = self.addrs[a].unmark(self.maps.of_mut(a), p, port, &self.layout);
        self.usage[a].set(u64::from(self.addrs[a].ports_used));
        let b = b?;
        let owner = self.addrs[a].block_owner[usize::from(b)];
        if owner != NO_OWNER && self.addrs[a].block_used[usize::from(b)] == 0 {
            self.addrs[a].block_owner[usize::from(b)] = NO_OWNER;
            self.addrs[a].free_blocks.push(b);
            return Some((a, b, owner));
        }
        None
    }

    /// Frees the oldest quarantined port if its quarantine ended by `now`. Returns
    /// None when nothing is due, else the block that became empty, if any.
    #[allow(clippy::option_option)]
    pub fn pop_expired(&mut self, now: u32) -> Option<Option<(usize, u16, u32)>> {
        let q = *self.quarantine.front().filter(|q| q.until <= now)?;
        self.quarantine.pop_front();
        Some(self.free_now(usize::from(q.pool), usize::from(q.proto), q.port))
    }

    /// Ports waiting in quarantine.
    pub fn quarantined(&self) -> usize {
        self.quarantine.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_is_computed_from_the_port() {
        let l = PortLayout::new(1024, 65535, 512, 2);
        assert_eq!(l.blocks, 126);
        assert_eq!(l.owner(1024), Some(0));
        assert_eq!(l.owner(1536), Some(1));
        assert_eq!(l.owner(2048), Some(0));
        assert_eq!(l.owner(80), None);
        assert_eq!(l.owner(65535), Some(1));
        let l = PortLayout::new(1024, 65000, 512, 2);
        assert_eq!(l.owner(65000), None); // after the last whole block
    }

    #[test]
    fn dynamic_ports_stay_in_own_blocks_and_never_repeat() {
        let l = PortLayout::new(1024, 2047, 64, 2);
        let mut p = Pool::new(&[0xc633_6401], l, 1, 0, 16, 42);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..(8 * 64) {
            let port = p.alloc_dynamic(0, 17, None).unwrap();
            assert_eq!(l.owner(port), Some(1));
            assert!(seen.insert(port), "port {port} handed out twice");
        }
        assert_eq!(p.alloc_dynamic(0, 17, None), Err(PortError::Exhausted));
        // TCP has its own port space.
        assert!(p.alloc_dynamic(0, 6, None).is_ok());
    }

    fn steering(workers: u16, reta: u16) -> Arc<Steering> {
        let s = Steering::new(
            &super::super::rss::STEERING_KEY,
            &Steering::spread(workers, reta),
        );
        Arc::new(s.unwrap())
    }

    #[test]
    fn steered_ports_reply_to_their_own_worker_and_share_the_range() {
        // Several worker counts, redirection table sizes and pools: every port a worker
        // hands out hashes (the reply's destination through Toeplitz and the table) to
        // the worker's own queue, none twice, and together the workers use every port
        // of the range once.
        for (workers, reta, addrs, lo, hi) in [
            (2u16, 128u16, 1usize, 1024u16, 4095u16),
            (3, 128, 2, 1024, 2047),
            (4, 512, 3, 2000, 3983),
            (8, 64, 1, 1024, 3071),
        ] {
            let st = steering(workers, reta);
            let pool: Vec<u32> = (0..addrs as u32).map(|i| 0xc633_6401 + 7 * i).collect();
            let l = PortLayout::new(lo, hi, 64, workers);
            let mut taken = std::collections::HashSet::new();
            for w in 0..workers {
                let mut p =
                    Pool::new(&pool, l, w, 0, 16, 42 + u64::from(w)).with_steering(st.clone());
                for (a, &addr) in pool.iter().enumerate() {
                    let mine = (lo..=hi)
                        .filter(|&port| st.queue_of(addr, port) == w)
                        .count();
                    for _ in 0..mine {
                        let port = p.alloc_dynamic(a, 17, None).unwrap();
                        assert_eq!(p.owner(addr, port), Some(w));
                        assert_eq!(st.queue_of(addr, port), w, "reply reaches worker {w}");
                        assert!(taken.insert((addr, port)), "{addr:x}:{port} twice");
                    }
                    assert_eq!(p.alloc_dynamic(a, 17, None), Err(PortError::Exhausted));
                    assert_eq!(p.utilisation(a, false) / 10, 3, "a third: UDP only");
                }
            }
            assert_eq!(taken.len(), addrs * usize::from(hi - lo + 1));
        }
    }

    #[test]
    fn steered_ports_keep_parity() {
        let st = steering(2, 128);
        let l = PortLayout::new(1024, 65535, 512, 2);
        let mut p = Pool::new(&[0xc633_6401], l, 1, 0, 16, 5).with_steering(st.clone());
        for i in 0..2000u16 {
            let port = p.alloc_dynamic(0, 6, Some(i)).unwrap();
            assert_eq!(port & 1, i & 1);
            assert_eq!(st.queue_of(0xc633_6401, port), 1);
        }
    }

    #[test]
    fn parity_is_kept_when_possible() {
        let l = PortLayout::new(1024, 65535, 512, 1);
        let mut p = Pool::new(&[1], l, 0, 0, 16, 7);
        for i in 0..200u16 {
            let port = p.alloc_dynamic(0, 17, Some(i)).unwrap();
            assert_eq!(port & 1, i & 1);
        }
    }

    #[test]
    fn quarantine_holds_ports_then_frees_blocks() {
        let l = PortLayout::new(1024, 2047, 4, 1);
        let mut p = Pool::new(&[1], l, 0, 120, 16, 3);
        let (mut room, mut held) = ([0u32; 1], 0u16);
        let (a, port, new) = p
            .alloc_in_blocks(&mut room, &mut held, 5, 0, 17, None)
            .unwrap();
        assert!(new);
        assert_eq!(held, 1);
        for _ in 0..3 {
            p.alloc_in_blocks(&mut room, &mut held, 5, 0, 17, None)
                .unwrap();
        }
        assert_eq!(
            p.alloc_in_blocks(&mut room, &mut held, 5, 0, 17, None),
            Err(PortError::SubscriberLimit)
        );
        assert_eq!(held, 1);
        assert_eq!(p.release(a, 17, port, 10, false), None);
        assert!(p.is_used(0, 1, port));
        assert_eq!(p.pop_expired(129), None);
        assert!(p.is_used(0, 1, port), "still quarantined at 129");
        assert_eq!(p.pop_expired(130), Some(None), "block still has 3 ports");
        assert!(!p.is_used(0, 1, port));
    }

    #[test]
    fn a_reload_appends_addresses_and_keeps_every_index() {
        let l = PortLayout::new(1024, 2047, 64, 2);
        let (a, b, c) = (0xc633_6405, 0xc000_0201, 0xc633_6401);
        let mut p = Pool::new(&[c, a], l, 0, 0, 16, 9);
        let port = p.alloc_dynamic(1, 17, None).unwrap();
        // b sorts first, yet it is appended: indexes 0 and 1 keep their addresses.
        let (list, draining) = merged(p.addresses(), &[b, a]);
        assert_eq!(list, [c, a, b]);
        assert_eq!(draining, [true, false, false]);
        p.update(&list, &draining).unwrap();
        assert_eq!(p.addresses(), [c, a, b]);
        assert_eq!(
            (p.index_of(c), p.index_of(a), p.index_of(b)),
            (Some(0), Some(1), Some(2))
        );
        assert_eq!(p.index_of(0xc000_0202), None);
        assert!(p.is_used(1, 1, port), "address 1's state kept");
        assert!(
            p.alloc_dynamic(2, 17, None).is_ok(),
            "the new address hands out ports"
        );
        assert_eq!(p.usage[2].get(), 1, "its usage counter is the reserved one");
        // Removed and added back: it stops draining, still at index 0.
        let (list, draining) = merged(p.addresses(), &[a, b, c]);
        assert_eq!(list, [c, a, b]);
        p.update(&list, &draining).unwrap();
        assert!(!p.is_draining(0));
        // A list that would move an index is refused, nothing changed.
        assert!(p.update(&[a, c, b], &[false; 3]).is_err());
        assert_eq!(p.addresses(), [c, a, b]);
        // No more addresses than the usage counters have room for.
        let many: Vec<u32> = (0..(3 + POOL_ROOM) as u32)
            .map(|i| 0x0a00_0000 + i)
            .collect();
        let (list, draining) = merged(p.addresses(), &many);
        assert!(p.update(&list, &draining).is_err());
        assert_eq!(p.addresses().len(), 3);
    }

    #[test]
    fn every_address_the_pool_may_hold_has_port_maps_of_its_own() {
        let l = PortLayout::new(1024, 65535, 64, 1);
        let mut p = Pool::new(&[1, 2], l, 0, 0, 16, 5);
        // A reload adds as many addresses as there is room for: the last one's maps
        // end the one allocation.
        let all: Vec<u32> = (1..=(2 + POOL_ROOM) as u32).collect();
        let (list, draining) = merged(p.addresses(), &all);
        p.update(&list, &draining).unwrap();
        let last = 1 + POOL_ROOM;
        assert_eq!(p.addresses().len(), last + 1);
        for (a, port) in [(0, 1024), (last, 65535), (last, 1024), (1, 65535)] {
            assert!(p.take(a, 17, port));
            assert!(!p.take(a, 17, port), "taken once");
        }
        assert!(p.is_used(last, pidx(17), 65535));
        // Not for another protocol, nor on the neighbouring addresses.
        assert!(!p.is_used(last, pidx(6), 65535));
        assert!(!p.is_used(last, pidx(1), 65535));
        assert!(!p.is_used(last - 1, pidx(17), 65535));
        assert!(!p.is_used(1, pidx(17), 1024));
        assert!(!p.is_used(0, pidx(17), 65535) && !p.is_used(0, pidx(1), 1024));
        assert_eq!(p.addrs[last].ports_used, 2);
        assert!(p.take(last, 6, 65535) && p.take(last, 1, 65535));
        assert_eq!(p.addrs[last].ports_used, 4);
    }

    #[test]
    fn a_draining_address_gives_no_new_block_but_its_blocks_serve_on() {
        let l = PortLayout::new(1024, 2047, 4, 1);
        let mut p = Pool::new(&[1, 2], l, 0, 0, 16, 3);
        let (mut room, mut held) = ([0u32; 2], 0u16);
        let (a, first, _) = p
            .alloc_in_blocks(&mut room, &mut held, 5, 0, 17, None)
            .unwrap();
        assert_eq!((a, held), (0, 1));
        let (list, draining) = merged(p.addresses(), &[2]);
        p.update(&list, &draining).unwrap();
        assert!(p.is_draining(0) && !p.is_released(0));
        // The block held on the draining address keeps handing out its ports...
        for _ in 0..3 {
            let (a, _, new) = p
                .alloc_in_blocks(&mut room, &mut held, 5, 0, 17, None)
                .unwrap();
            assert_eq!((a, new), (0, false));
        }
        // ...but no new block comes from it, only from address 1.
        assert_eq!(
            p.alloc_in_blocks(&mut room, &mut held, 5, 0, 17, None),
            Err(PortError::Exhausted)
        );
        let (a, _, new) = p
            .alloc_in_blocks(&mut room, &mut held, 5, 1, 17, None)
            .unwrap();
        assert_eq!((a, new), (1, true));
        // Its ports released, it holds nothing more: released.
        let b = room[0] as u16;
        for port in l.block_start(b)..l.block_start(b) + 4 {
            p.release(0, 17, port, 0, true);
        }
        assert!(!p.is_used(0, 1, first));
        assert!(p.is_released(0));
    }
}
