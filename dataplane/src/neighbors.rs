//! The neighbour (ARP) table: IPv4 address to MAC, written by the control lcore alone
//! and read lock-free by every worker.
//!
//! Fixed size, open addressing. Each slot is a seqlock (single writer): the writer makes
//! the sequence odd, writes, makes it even; a reader retries while the sequence is odd
//! or changed under it. Entries are never removed, only overwritten with a newer MAC.

use crate::wire::ethernet::Mac;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

struct Slot {
    seq: AtomicU32,
    ip: AtomicU32,
    /// MAC in the low 48 bits, bit 63 set when the slot is in use.
    mac: AtomicU64,
}

const USED: u64 = 1 << 63;
/// A configured entry (gateway_mac): never overwritten by a learned one.
const PINNED: u64 = 1 << 62;
const PROBE: usize = 8;

/// The table.
pub struct Neighbors {
    slots: Vec<Slot>,
}

fn pack(m: &Mac) -> u64 {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(m);
    u64::from_be_bytes(b) | USED
}

fn unpack(v: u64) -> Mac {
    let b = (v & !(USED | PINNED)).to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

impl Neighbors {
    /// A table of `size` slots (rounded up to a power of two).
    pub fn new(size: usize) -> Neighbors {
        let n = size.next_power_of_two().max(PROBE);
        Neighbors {
            slots: (0..n)
                .map(|_| Slot {
                    seq: AtomicU32::new(0),
                    ip: AtomicU32::new(0),
                    mac: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    fn home(&self, ip: u32) -> usize {
        (ip.wrapping_mul(0x9e37_79b1) >> 7) as usize & (self.slots.len() - 1)
    }

    fn read(&self, i: usize) -> (u32, u64) {
        let s = &self.slots[i];
        loop {
            let s1 = s.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let ip = s.ip.load(Ordering::Relaxed);
            let mac = s.mac.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if s.seq.load(Ordering::Relaxed) == s1 {
                return (ip, mac);
            }
        }
    }

    /// The MAC of `ip`, if known.
    pub fn lookup(&self, ip: u32) -> Option<Mac> {
        let h = self.home(ip);
        for k in 0..PROBE {
            let (sip, mac) = self.read((h + k) & (self.slots.len() - 1));
            if mac & USED == 0 {
                return None;
            }
            if sip == ip {
                return Some(unpack(mac));
            }
        }
        None
    }

    /// Records `ip` at `mac`. Only one thread may call this (the control lcore, or
    /// start-up before the workers run). A full probe window overwrites its first
    /// learned entry; configured entries are never overwritten by learned ones.
    pub fn learn(&self, ip: u32, mac: &Mac) {
        self.store(ip, pack(mac));
    }

    /// Records a configured neighbour (`gateway_mac`), which learning never replaces.
    pub fn pin(&self, ip: u32, mac: &Mac) {
        self.store(ip, pack(mac) | PINNED);
    }

    fn store(&self, ip: u32, value: u64) {
        let h = self.home(ip);
        let mut target = None;
        let mut victim = None;
        for k in 0..PROBE {
            let i = (h + k) & (self.slots.len() - 1);
            let (sip, m) = self.read(i);
            if m & USED == 0 || sip == ip {
                if sip == ip && m & PINNED != 0 && value & PINNED == 0 {
                    return; // a learned MAC never replaces a configured one
                }
                target = Some(i);
                break;
            }
            if m & PINNED == 0 && victim.is_none() {
                victim = Some(i);
            }
        }
        let Some(target) = target.or(victim) else {
            return;
        };
        let s = &self.slots[target];
        let seq = s.seq.load(Ordering::Relaxed);
        s.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        s.ip.store(ip, Ordering::Relaxed);
        s.mac.store(value, Ordering::Relaxed);
        s.seq.store(seq.wrapping_add(2), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learn_lookup_overwrite() {
        let n = Neighbors::new(16);
        assert_eq!(n.lookup(1), None);
        n.learn(1, &[2, 0, 0, 0, 0, 1]);
        n.learn(2, &[2, 0, 0, 0, 0, 2]);
        assert_eq!(n.lookup(1), Some([2, 0, 0, 0, 0, 1]));
        n.learn(1, &[2, 0, 0, 0, 0, 9]);
        assert_eq!(n.lookup(1), Some([2, 0, 0, 0, 0, 9]));
        assert_eq!(n.lookup(2), Some([2, 0, 0, 0, 0, 2]));
        for ip in 100..200 {
            n.learn(ip, &[0, 0, 0, 0, 0, ip as u8]);
        }
        assert_eq!(n.lookup(199), Some([0, 0, 0, 0, 0, 199]));
    }

    #[test]
    fn configured_entries_survive_a_flood_of_learned_ones() {
        let n = Neighbors::new(64);
        n.pin(7, &[2, 0, 0, 0, 0, 7]);
        for ip in 1000..100_000 {
            n.learn(ip, &[0, 0, 0, 0, 1, 1]);
        }
        n.learn(7, &[9, 9, 9, 9, 9, 9]);
        assert_eq!(n.lookup(7), Some([2, 0, 0, 0, 0, 7]));
    }
}
