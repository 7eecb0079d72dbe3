//! A map of at most a given number of entries, sized once and never grown: an
//! [`Index`] (open addressing, no tombstones) of record numbers over a slab of records
//! with a free list. Nothing is allocated after [`FixedMap::new`]; past its maximum a
//! new key is refused ([`FixedMap::insert`] gives the entry back). The stream engine's
//! tables (`alg.rs`) are these.

use crate::nat::index::{Hasher, Index};

/// A key of a [`FixedMap`]: what it hashes as (two 64-bit words).
pub trait MapKey: Copy + Eq {
    /// The key as two words.
    fn words(&self) -> (u64, u64);
}

/// A control connection: inside address and port, remote address and port.
impl MapKey for (u32, u16, u32, u16) {
    fn words(&self) -> (u64, u64) {
        (
            u64::from(self.0) << 32 | u64::from(self.2),
            u64::from(self.1) << 16 | u64::from(self.3),
        )
    }
}

/// A session's record number.
impl MapKey for u32 {
    fn words(&self) -> (u64, u64) {
        (u64::from(*self), 0)
    }
}

/// A control connection and a direction.
impl MapKey for ((u32, u16, u32, u16), u8) {
    fn words(&self) -> (u64, u64) {
        let (x, y) = self.0.words();
        (x, y | u64::from(self.1) << 32)
    }
}

/// See the module's doc.
pub struct FixedMap<K, V> {
    index: Index,
    hasher: Hasher,
    slots: Vec<Option<(K, V)>>,
    free: Vec<u32>,
}

impl<K: MapKey, V> FixedMap<K, V> {
    /// Empty, for at most `max` entries (at least one).
    pub fn new(max: usize) -> FixedMap<K, V> {
        let max = max.clamp(1, crate::nat::index::MAX_RECORD as usize);
        FixedMap {
            index: Index::new(max as u32),
            hasher: Hasher::new(0xa16_c0de ^ max as u64),
            slots: (0..max).map(|_| None).collect(),
            free: (0..max as u32).rev().collect(),
        }
    }

    fn hash(hasher: &Hasher, k: &K) -> u32 {
        let (x, y) = k.words();
        hasher.mix(x, y)
    }

    fn find(&self, k: &K) -> Option<usize> {
        let slots = &self.slots;
        let r = self.index.find(Self::hash(&self.hasher, k), |r| {
            slots[r as usize].as_ref().is_some_and(|(o, _)| o == k)
        })?;
        Some(r as usize)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Entries it holds at most.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// True when a new key would be refused.
    pub fn is_full(&self) -> bool {
        self.index.is_full()
    }

    /// Whether `k` is there.
    pub fn contains_key(&self, k: &K) -> bool {
        self.find(k).is_some()
    }

    /// The value of `k`.
    pub fn get(&self, k: &K) -> Option<&V> {
        let r = self.find(k)?;
        self.slots[r].as_ref().map(|(_, v)| v)
    }

    /// The value of `k`, mutable.
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let r = self.find(k)?;
        self.slots[r].as_mut().map(|(_, v)| v)
    }

    /// Sets the value of `k` (replacing any); a new key when full is refused and its
    /// value given back.
    pub fn insert(&mut self, k: K, v: V) -> Result<(), V> {
        if let Some(old) = self.get_mut(&k) {
            *old = v;
            return Ok(());
        }
        let Some(&r) = self.free.last() else {
            return Err(v);
        };
        let hash = Self::hash(&self.hasher, &k);
        if self.index.insert(hash, r, |_| false).is_err() {
            return Err(v);
        }
        self.free.pop();
        self.slots[r as usize] = Some((k, v));
        Ok(())
    }

    /// Removes `k`; its value.
    pub fn remove(&mut self, k: &K) -> Option<V> {
        let (slots, hasher) = (&self.slots, &self.hasher);
        let r = self.index.remove(
            Self::hash(hasher, k),
            |r| slots[r as usize].as_ref().is_some_and(|(o, _)| o == k),
            |o| {
                slots[o as usize]
                    .as_ref()
                    .map_or(0, |(o, _)| Self::hash(hasher, o))
            },
        )?;
        self.free.push(r);
        self.slots[r as usize].take().map(|(_, v)| v)
    }

    /// Keeps the entries for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        for r in 0..self.slots.len() {
            let gone = match &mut self.slots[r] {
                Some((k, v)) => (!keep(k, v)).then_some(*k),
                None => None,
            };
            if let Some(k) = gone {
                self.remove(&k);
            }
        }
    }

    /// Forgets every entry (every slot is written: slow path).
    pub fn clear(&mut self) {
        self.index.clear();
        self.free.clear();
        for (r, s) in self.slots.iter_mut().enumerate().rev() {
            *s = None;
            self.free.push(r as u32);
        }
    }

    /// The entries, in slot order (the same while none is added or removed).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.slots
            .iter()
            .filter_map(|s| s.as_ref().map(|(k, v)| (k, v)))
    }

    /// The keys, as [`FixedMap::iter`] gives them.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.iter().map(|(k, _)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Key = (u32, u16, u32, u16);

    fn key(n: u32) -> Key {
        (0x6440_0000 + n, 40000, 0xc000_020a, 21)
    }

    /// Filled to its maximum, it refuses a new key but takes a known one; what is
    /// removed makes room again, and churn past its size many times over never
    /// allocates.
    #[test]
    fn a_fixed_map_refuses_past_its_size_and_never_allocates() {
        let mut m: FixedMap<Key, u32> = FixedMap::new(64);
        assert_eq!(m.capacity(), 64);
        let churn = allocation_counter::measure(|| {
            for n in 0..64 {
                assert_eq!(m.insert(key(n), n), Ok(()));
            }
            assert!(m.is_full());
            assert_eq!(m.insert(key(64), 64), Err(64));
            assert_eq!(m.insert(key(3), 33), Ok(()));
            assert_eq!(m.get(&key(3)), Some(&33));
            for round in 0..100u32 {
                let old = key(round % 64 + 64 * (round / 64));
                assert!(m.remove(&old).is_some(), "round {round}");
                assert_eq!(m.insert(key(round + 64), round), Ok(()));
            }
            m.retain(|k, _| k.0 % 2 == 0);
            assert_eq!(m.len(), 32);
            for n in 0..1000 {
                let _ = m.insert(key(5000 + n), n);
            }
            assert_eq!(m.len(), 64);
        });
        assert_eq!(churn.count_total, 0);
        assert_eq!(m.keys().count(), 64);
        m.clear();
        assert!(m.is_empty() && !m.contains_key(&key(5000)));
        assert_eq!(m.insert(key(1), 1), Ok(()));
    }
}
