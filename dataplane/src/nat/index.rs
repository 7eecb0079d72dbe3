//! A fixed-size open-addressing index from a key's hash to a record number (a session
//! or a mapping). The records hold the keys; the index holds, per slot, 4 bytes: the
//! record number (24 bits) and an 8-bit tag from the key's hash. Lookups compare the
//! tag first and the full key (through the caller's record) only when it matches, so
//! a probe past another key's slot touches that key's record once in 256 times.
//!
//! - Sized once in [`Index::new`] for a maximum number of entries, at a load factor of
//!   at most 3/4 when full; it never grows and never allocates afterwards. Past the
//!   maximum, inserts are refused. Record numbers go up to [`MAX_RECORD`].
//! - Linear probing from a home slot chosen by the hash's high bits (multiply-shift
//!   range reduction, so the slot count need not be a power of two), wrapping around
//!   at the end of the table. Sixteen slots share a cache line.
//! - Deletion shifts the following entries of the cluster back (Knuth's algorithm R
//!   for linear probing), so there are no tombstones and lookups never slow down with
//!   churn. The slots do not keep whole hashes, so deletion asks the caller for the
//!   hash of each entry it may move (from the entry's record).
//! - An empty slot is all zeroes (the record number is stored plus one), so the table
//!   comes from zeroed memory that the kernel maps lazily: an unused part of a large
//!   table costs no resident memory.

use crate::nat::Key;

/// What a slot holds: the record number plus one in the low 24 bits (0: empty), the
/// tag (the hash's low byte) in the high 8.
type Slot = u32;

/// The largest record number an index can hold (2^24 - 2: 16,777,214).
pub const MAX_RECORD: u32 = 0x00ff_fffe;

/// The index refused an entry: it holds its maximum already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// Slots of a 64-byte cache line.
const LINE: usize = 16;

/// Where a lookup stands after [`Index::probe`]: at the first slot of the hash's tag
/// in the home slot's cache line (its record's key not yet compared), at the first
/// slot past that line (none of the hash's tag in it), or sure that the hash has no
/// entry (an empty slot came first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe(u32);

impl Probe {
    /// No entry of the hash.
    pub const ABSENT: Probe = Probe(u32::MAX);
}

/// A fixed-size hash index of record numbers. See the module documentation.
pub struct Index {
    slots: Vec<Slot>,
    len: u32,
    max: u32,
}

#[inline]
fn tag(hash: u32) -> u32 {
    hash & 0xff
}

#[inline]
fn slot_tag(s: Slot) -> u32 {
    s >> 24
}

#[inline]
fn slot_record(s: Slot) -> Option<u32> {
    match s & 0x00ff_ffff {
        0 => None,
        r => Some(r - 1),
    }
}

#[inline]
fn make_slot(hash: u32, record: u32) -> Slot {
    debug_assert!(record <= MAX_RECORD);
    tag(hash) << 24 | (record + 1)
}

impl Index {
    /// An index for at most `max` entries (`max` <= [`MAX_RECORD`]).
    pub fn new(max: u32) -> Index {
        Index::with_slots(max, |n| vec![0; n])
    }

    /// The same on transparent huge pages where the kernel has them (an index every
    /// packet looks up: fewer TLB misses).
    pub fn new_huge(max: u32) -> Index {
        Index::with_slots(max, cgnat_ffi::huge_zeroed)
    }

    fn with_slots(max: u32, zeroed: impl FnOnce(usize) -> Vec<Slot>) -> Index {
        assert!(max <= MAX_RECORD, "index larger than record numbers");
        // At most 3/4 full, and always one empty slot so probes end.
        let n = (max as usize + (max as usize).div_ceil(3)).max(max as usize + 1);
        Index {
            slots: zeroed(n),
            len: 0,
            max,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when it holds its maximum: a new key would be refused.
    pub fn is_full(&self) -> bool {
        self.len >= self.max
    }

    /// Slots of the table (memory: 4 bytes each).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn home(&self, hash: u32) -> usize {
        ((u64::from(hash) * self.slots.len() as u64) >> 32) as usize
    }

    #[inline]
    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() {
            0
        } else {
            i + 1
        }
    }

    /// Brings the home slot of `hash` into the cache, ahead of a lookup.
    #[inline]
    pub fn prefetch(&self, hash: u32) {
        if !self.slots.is_empty() {
            cgnat_ffi::prefetch(&self.slots[self.home(hash)]);
        }
    }

    /// The first record from the home slot of `hash` on (at most 8 slots, stopping
    /// at an empty one) whose slot holds that hash's tag: a guess at the record a
    /// lookup will find, to prefetch it ([`Index::find`] decides). None most often
    /// means the key is not there.
    #[inline]
    pub fn guess(&self, hash: u32) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let t = tag(hash);
        let mut i = self.home(hash);
        for _ in 0..8 {
            let s = self.slots[i];
            let r = slot_record(s)?;
            if slot_tag(s) == t {
                return Some(r);
            }
            i = self.next(i);
        }
        None
    }

    /// The first step of a lookup of `hash` ([`Index::find_from`] completes it): the
    /// first slot from the home slot to the end of its cache line whose tag is the
    /// hash's, before an empty slot. The home slot itself first (where 5 entries in
    /// 8 of a table 3/4 full sit, and nearly all of one much emptier); past it, one
    /// pass over the line's 16 slots with no branch per slot
    /// ([`cgnat_ffi::slot_masks`]): a loop that stops at the first tag match or empty
    /// slot mispredicts its exit on most such lookups, whose probes vary in length.
    /// With it, the record of that slot, if any: the likely one, to prefetch.
    #[inline]
    pub fn probe(&self, hash: u32) -> (Probe, Option<u32>) {
        let t = tag(hash);
        let h = self.home(hash);
        if let Some(&s) = self.slots.get(h) {
            if slot_tag(s) == t && slot_record(s).is_some() {
                return (Probe(h as u32), slot_record(s));
            }
        }
        // The slots of the home slot's cache line from it on.
        let off = (self.slots.as_ptr() as usize / 4 + h) % LINE;
        let start = h - off.min(h);
        let Some(line) = self
            .slots
            .get(start..start + LINE)
            .and_then(|l| <&[Slot; LINE]>::try_from(l).ok())
        else {
            // The table's last slots (the probe may wrap around): one by one.
            return self.probe_slowly(hash);
        };
        let (hit, empty) = cgnat_ffi::slot_masks(line, t);
        let skip = h - start;
        let (hit, empty) = (hit >> skip, empty >> skip);
        // Only the slots before the first empty one count (an empty slot's tag is 0).
        let first_empty = (empty | 1 << LINE).trailing_zeros();
        let hit = hit & ((1 << first_empty) - 1);
        if hit != 0 {
            let at = h + hit.trailing_zeros() as usize;
            (Probe(at as u32), slot_record(self.slots[at]))
        } else if (first_empty as usize) < LINE - skip {
            (Probe::ABSENT, None)
        } else {
            // Every slot to the end of the line holds another tag: on from the next.
            (Probe(self.next(start + LINE - 1) as u32), None)
        }
    }

    /// [`Index::probe`] one slot at a time (the table's last slots, or a table
    /// smaller than a line).
    fn probe_slowly(&self, hash: u32) -> (Probe, Option<u32>) {
        if self.slots.is_empty() {
            return (Probe::ABSENT, None);
        }
        let t = tag(hash);
        let mut i = self.home(hash);
        loop {
            let s = self.slots[i];
            if slot_record(s).is_none() {
                return (Probe::ABSENT, None);
            }
            if slot_tag(s) == t {
                return (Probe(i as u32), slot_record(s));
            }
            i = self.next(i);
        }
    }

    /// [`Index::find`] from where [`Index::probe`] of the same `hash` stopped, the
    /// index unchanged since.
    #[inline]
    pub fn find_from(&self, hash: u32, p: Probe, eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if p == Probe::ABSENT {
            return None;
        }
        self.find_on(hash, p.0 as usize, eq)
    }

    /// The record of the entry of hash `hash` for which `eq(record)` holds (the
    /// caller compares the record's key with the one it looks for).
    #[inline]
    pub fn find(&self, hash: u32, eq: impl FnMut(u32) -> bool) -> Option<u32> {
        self.find_on(hash, self.home(hash), eq)
    }

    /// [`Index::find`] from slot `i` on (its home slot, or a slot of its cluster
    /// with none of its entries before it).
    #[inline]
    fn find_on(&self, hash: u32, mut i: usize, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let t = tag(hash);
        loop {
            let s = self.slots[i];
            let r = slot_record(s)?;
            if slot_tag(s) == t && eq(r) {
                return Some(r);
            }
            i = self.next(i);
        }
    }

    /// Inserts `record` under `hash`, or, when an entry for which `eq` holds is there
    /// already, makes it point to `record` and returns the record it replaced (as a
    /// map's insert does). Refused when the index holds its maximum and the key is new.
    pub fn insert(
        &mut self,
        hash: u32,
        record: u32,
        mut eq: impl FnMut(u32) -> bool,
    ) -> Result<Option<u32>, Full> {
        let t = tag(hash);
        let mut i = self.home(hash);
        loop {
            let s = self.slots[i];
            match slot_record(s) {
                None => {
                    if self.len >= self.max {
                        return Err(Full);
                    }
                    self.slots[i] = make_slot(hash, record);
                    self.len += 1;
                    return Ok(None);
                }
                Some(r) if slot_tag(s) == t && eq(r) => {
                    self.slots[i] = make_slot(hash, record);
                    return Ok(Some(r));
                }
                Some(_) => i = self.next(i),
            }
        }
    }

    /// Removes the entry of hash `hash` for which `eq(record)` holds; returns its
    /// record. `hash_of(record)` gives the hash of another entry's key, for the entries
    /// that follow in the cluster (to know where their home is).
    pub fn remove(
        &mut self,
        hash: u32,
        mut eq: impl FnMut(u32) -> bool,
        mut hash_of: impl FnMut(u32) -> u32,
    ) -> Option<u32> {
        let t = tag(hash);
        let mut i = self.home(hash);
        let r = loop {
            let s = self.slots[i];
            let r = slot_record(s)?;
            if slot_tag(s) == t && eq(r) {
                break r;
            }
            i = self.next(i);
        };
        self.len -= 1;
        // Backward shift: the hole at `i` is filled by the next entry of the cluster
        // whose home is not cyclically within (i, j] (it may legally sit at i), until
        // an empty slot ends the cluster.
        let mut j = i;
        loop {
            j = self.next(j);
            let s = self.slots[j];
            let Some(o) = slot_record(s) else {
                break;
            };
            let k = self.home(hash_of(o));
            let stays = if i <= j {
                i < k && k <= j
            } else {
                i < k || k <= j
            };
            if !stays {
                self.slots[i] = s;
                i = j;
            }
        }
        self.slots[i] = 0;
        Some(r)
    }

    /// The records held, in slot order (slow path: inspection).
    pub fn records(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots.iter().filter_map(|&s| slot_record(s))
    }

    /// Empties the index (every slot is written: slow path).
    pub fn clear(&mut self) {
        self.slots.fill(0);
        self.len = 0;
    }
}

#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Seeded hashes of keys for the indexes.
#[derive(Clone, Copy, Debug)]
pub struct Hasher {
    k: [u64; 3],
}

impl Hasher {
    /// A hasher whose secrets derive from `seed` (splitmix64).
    pub fn new(seed: u64) -> Hasher {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Hasher {
            k: [next() | 1, next() | 1, next() | 1],
        }
    }

    /// The hash of a lookup key.
    #[inline]
    pub fn key(&self, k: &Key) -> u32 {
        let x = u64::from(k.a) << 32 | u64::from(k.b);
        let y = u64::from(k.pa) << 32 | u64::from(k.pb) << 16 | u64::from(k.proto);
        self.mix(x, y)
    }

    /// The hash of a 32-bit key (a subscriber's address).
    #[inline]
    pub fn addr(&self, a: u32) -> u32 {
        self.mix(u64::from(a), 0)
    }

    /// The hash of a 128-bit key (an IPv6 address or prefix).
    #[inline]
    pub fn addr6(&self, a: u128) -> u32 {
        self.mix(a as u64, (a >> 64) as u64)
    }

    /// The hash of a key of two 64-bit words (any other table's key).
    #[inline]
    pub fn mix(&self, x: u64, y: u64) -> u32 {
        let h = fold(x ^ self.k[0], y ^ self.k[1]);
        (fold(h, self.k[2]) >> 32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hashbrown::HashMap;

    #[test]
    fn guess_names_the_first_record_of_its_tag_in_the_cluster() {
        let mut ix = Index::new(16);
        assert_eq!(ix.guess(7), None);
        ix.prefetch(7);
        ix.insert(7, 3, |_| false).unwrap();
        assert_eq!(ix.guess(7), Some(3));
        // Another hash with the same home slot and another tag is not guessed to be
        // there.
        let other = (0..u32::MAX)
            .find(|&h| tag(h) != tag(7) && ix.home(h) == ix.home(7))
            .unwrap();
        assert_eq!(ix.guess(other), None);
        // Entered after 7, it sits in the next slot, and is guessed there.
        ix.insert(other, 4, |_| false).unwrap();
        assert_eq!(ix.guess(other), Some(4));
        assert_eq!(ix.guess(7), Some(3));
        ix.remove(other, |r| r == 4, |_| other);
        ix.remove(7, |r| r == 3, |_| 7);
        assert_eq!(ix.guess(7), None);
    }

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// Records are keys (u64) in a slab; the index maps a key's hash to its record.
    struct Model {
        idx: Index,
        keys: Vec<u64>,
        free: Vec<u32>,
        map: HashMap<u64, u32>,
        hash: fn(u64) -> u32,
    }

    impl Model {
        /// An index of `max` entries over a slab of `max + 1` records (a spare one,
        /// so that a key can be replaced when the index is full).
        fn new(max: u32, hash: fn(u64) -> u32) -> Model {
            Model {
                idx: Index::new(max),
                keys: vec![0; max as usize + 1],
                free: (0..=max).rev().collect(),
                map: HashMap::new(),
                hash,
            }
        }
        /// The record of `k`, found both ways: [`Index::find`], and [`Index::probe`]
        /// then [`Index::find_from`] (which must agree, with the probe's guess the
        /// first record of the hash's tag from its home, when it makes one).
        fn find(&self, k: u64) -> Option<u32> {
            let keys = &self.keys;
            let h = (self.hash)(k);
            let found = self.idx.find(h, |r| keys[r as usize] == k);
            let (p, guess) = self.idx.probe(h);
            assert_eq!(
                self.idx.find_from(h, p, |r| keys[r as usize] == k),
                found,
                "key {k:#x}"
            );
            if let Some(r) = guess {
                // The first slot of the tag from home, before an empty one.
                let n = self.idx.slots.len();
                let mut i = self.idx.home(h);
                let first = loop {
                    let s = self.idx.slots[i];
                    match slot_record(s) {
                        None => break None,
                        Some(r) if slot_tag(s) == tag(h) => break Some(r),
                        Some(_) => i = (i + 1) % n,
                    }
                };
                assert_eq!(first, Some(r), "key {k:#x}");
            }
            if p == Probe::ABSENT {
                assert_eq!(found, None);
            }
            found
        }
        fn insert(&mut self, k: u64) -> Result<Option<u32>, Full> {
            let r = *self.free.last().expect("a spare record");
            self.keys[r as usize] = k;
            let keys = &self.keys;
            let got = self
                .idx
                .insert((self.hash)(k), r, |o| keys[o as usize] == k);
            if let Ok(old) = got {
                self.free.pop();
                if let Some(o) = old {
                    self.free.push(o);
                }
                assert_eq!(self.map.insert(k, r), old);
            }
            got
        }
        fn remove(&mut self, k: u64) -> Option<u32> {
            let keys = &self.keys;
            let hash = self.hash;
            let r = self.idx.remove(
                hash(k),
                |o| keys[o as usize] == k,
                |o| hash(keys[o as usize]),
            );
            assert_eq!(r, self.map.remove(&k));
            if let Some(r) = r {
                self.free.push(r);
            }
            r
        }
        fn check(&self) {
            assert_eq!(self.idx.len(), self.map.len());
            for (&k, &r) in &self.map {
                assert_eq!(self.find(k), Some(r), "key {k:#x}");
            }
            let mut recs: Vec<u32> = self.idx.records().collect();
            recs.sort_unstable();
            let mut want: Vec<u32> = self.map.values().copied().collect();
            want.sort_unstable();
            assert_eq!(recs, want);
            // Every entry is reachable from its home without crossing an empty slot,
            // and carries its hash's tag.
            let n = self.idx.slots.len();
            for (i, &s) in self.idx.slots.iter().enumerate() {
                let Some(r) = slot_record(s) else {
                    continue;
                };
                let h = (self.hash)(self.keys[r as usize]);
                assert_eq!(slot_tag(s), tag(h));
                let mut j = self.idx.home(h);
                while j != i {
                    assert!(slot_record(self.idx.slots[j]).is_some(), "hole before {i}");
                    j = (j + 1) % n;
                }
            }
        }
    }

    fn good_hash(k: u64) -> u32 {
        Hasher::new(7).mix(k, 0)
    }

    /// Few distinct hashes: long clusters, many equal hashes told apart by the key.
    fn bad_hash(k: u64) -> u32 {
        ((k % 5) as u32).wrapping_mul(0x3333_3333)
    }

    /// Everything in the last slots: clusters wrap around the end of the table.
    fn end_hash(k: u64) -> u32 {
        u32::MAX - (k % 3) as u32
    }

    fn churn(max: u32, hash: fn(u64) -> u32, keyspace: u64, rounds: usize, seed: u64) {
        let mut m = Model::new(max, hash);
        let mut rng = Rng(seed);
        for round in 0..rounds {
            let k = rng.next() % keyspace;
            match rng.next() % 8 {
                0..=3 => {
                    let full = m.map.len() as u32 >= max && !m.map.contains_key(&k);
                    let got = m.insert(k);
                    assert_eq!(got.is_err(), full, "round {round}");
                }
                4..=6 => {
                    m.remove(k);
                }
                _ => assert_eq!(m.find(k), m.map.get(&k).copied()),
            }
            if round % 97 == 0 {
                m.check();
            }
        }
        m.check();
        // Empty it again: nothing is left behind.
        let keys: Vec<u64> = m.map.keys().copied().collect();
        for k in keys {
            assert!(m.remove(k).is_some());
        }
        m.check();
        assert!(m.idx.is_empty());
        assert!(m.idx.slots.iter().all(|&s| s == 0));
    }

    #[test]
    fn churn_against_a_map() {
        churn(1000, good_hash, 1500, 200_000, 0x1234_5678_9abc_def1);
        churn(64, good_hash, 100, 50_000, 42);
    }

    #[test]
    fn churn_with_colliding_hashes() {
        churn(50, bad_hash, 80, 50_000, 99);
    }

    #[test]
    fn churn_wrapping_around() {
        churn(40, end_hash, 60, 50_000, 5);
    }

    #[test]
    fn full_index_refuses_new_keys_but_replaces_old() {
        let mut m = Model::new(8, good_hash);
        for k in 0..8 {
            assert_eq!(m.insert(k), Ok(None));
        }
        assert!(m.idx.slots() > 8);
        assert_eq!(m.insert(100), Err(Full));
        assert_eq!(m.find(100), None);
        // A key already there is replaced even when full (by the spare record 8).
        let old = m.find(3);
        assert!(old.is_some());
        assert_eq!(m.insert(3), Ok(old));
        assert_eq!(m.find(3), Some(8));
        m.check();
        assert!(m.remove(5).is_some());
        assert_eq!(m.insert(100), Ok(None));
        m.check();
        let zero = Index::new(0);
        assert_eq!(zero.find(1, |_| true), None);
        let mut zero = zero;
        assert_eq!(zero.insert(1, 0, |_| true), Err(Full));
    }

    #[test]
    fn probes_wrap_around_the_end() {
        let mut m = Model::new(6, end_hash);
        let n = m.idx.slots();
        for k in 0..6 {
            m.insert(k).unwrap();
        }
        // Homes are in the last slot or two; six entries spill over to slot 0 onward.
        assert!(slot_record(m.idx.slots[0]).is_some());
        assert!(slot_record(m.idx.slots[n - 1]).is_some());
        m.check();
        // Removing from the end shifts the wrapped entries back across the boundary.
        for k in [0, 3, 1] {
            m.remove(k);
            m.check();
        }
    }

    #[test]
    fn backward_shift_moves_only_what_may_move() {
        // Hand-placed homes in an 8-slot table (max 6): home(h) = h * 8 >> 32.
        let mut idx = Index::new(6);
        assert_eq!(idx.slots(), 8);
        let at = |home: u32, tag: u32| (home << 29) + tag;
        // Two entries at home 2, one at home 3, one at home 5 (not in the cluster).
        let h = [at(2, 0), at(2, 1), at(3, 0), at(5, 0)];
        for (r, &x) in h.iter().enumerate() {
            assert_eq!(idx.home(x), [2, 2, 3, 5][r]);
            idx.insert(x, r as u32, |o| o == r as u32).unwrap();
        }
        let place = |idx: &Index| -> Vec<Option<u32>> {
            idx.slots.iter().map(|&s| slot_record(s)).collect()
        };
        let p = place(&idx);
        assert_eq!(&p[2..6], &[Some(0), Some(1), Some(2), Some(3)]);
        // Removing record 0: 1 moves to its home 2, 2 moves to its home 3, 3 stays.
        assert_eq!(idx.remove(h[0], |o| o == 0, |o| h[o as usize]), Some(0));
        let p = place(&idx);
        assert_eq!(&p[2..6], &[Some(1), Some(2), None, Some(3)]);
        assert_eq!(idx.find(h[2], |o| o == 2), Some(2));
        assert_eq!(idx.find(h[3], |o| o == 3), Some(3));
        // Removing record 1 (at its home): 2 is at its own home and stays.
        assert_eq!(idx.remove(h[1], |o| o == 1, |o| h[o as usize]), Some(1));
        let p = place(&idx);
        assert_eq!(&p[2..6], &[None, Some(2), None, Some(3)]);
        assert_eq!(idx.len(), 2);
        assert_eq!(idx.remove(h[1], |o| o == 1, |o| h[o as usize]), None);
    }

    #[test]
    fn key_hashes_spread() {
        let h = Hasher::new(1);
        let mut idx = Index::new(1 << 14);
        let mut n = 0u32;
        for a in 0..64u32 {
            for p in 0..256u16 {
                let k = Key {
                    proto: 17,
                    a: 0x6440_0000 + a,
                    pa: 1024 + p,
                    b: 0x0808_0808,
                    pb: 53,
                };
                idx.insert(h.key(&k), n, |_| false).unwrap();
                n += 1;
            }
        }
        // Sequential keys: the longest cluster stays short at load 3/4.
        let mut longest = 0;
        let mut run = 0;
        for &s in &idx.slots {
            run = if slot_record(s).is_some() { run + 1 } else { 0 };
            longest = longest.max(run);
        }
        assert!(longest < 200, "cluster of {longest}");
        assert_ne!(Hasher::new(1).addr(5), Hasher::new(2).addr(5));
    }
}
