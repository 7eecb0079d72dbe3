//! The neighbour (ARP) table: IPv4 address to MAC, written by the control lcore alone
//! and read lock-free by every worker.
//!
//! Fixed size, open addressing. Each slot is a seqlock (single writer): the writer makes
//! the sequence odd, writes, makes it even; a reader retries while the sequence is odd
//! or changed under it. Entries are never removed, only overwritten with a newer MAC.
//!
//! An entry learned from an answer to our own ARP request carries the second it was
//! learned; once it is [`REFRESH_SECS`] old, the worker that uses it asks again (and
//! keeps sending to the MAC it has meanwhile), so a host that changed its MAC (a
//! replaced CPE or router) is found by the answer, the only thing that may teach one.
//! Configured entries, and those taken from frames in replay and pcap mode, never age.

use crate::wire::ethernet::Mac;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

struct Slot {
    seq: AtomicU32,
    ip: AtomicU32,
    /// The second (workers' clock) the entry was learned, or [`NEVER_AGES`].
    at: AtomicU32,
    /// MAC in the low 48 bits, bit 63 set when the slot is in use.
    mac: AtomicU64,
}

const USED: u64 = 1 << 63;
/// A configured entry (gateway_mac): never overwritten by a learned one.
const PINNED: u64 = 1 << 62;
const PROBE: usize = 8;
/// `at` of an entry that is never asked for again.
const NEVER_AGES: u32 = u32::MAX;
/// Age, in seconds, past which an entry in use is asked for again.
pub const REFRESH_SECS: u32 = 60;

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

/// Slots of the appliance's table (as many hosts as it holds on the inside and
/// outside links together, at most a probe window's worth past it).
pub const APPLIANCE_SLOTS: usize = 1 << 16;

impl Neighbors {
    /// The appliance's table for `cfg` (the runtime's, and the harness's, so that
    /// the tests and benches look subscribers up in the same table): sized
    /// [`APPLIANCE_SLOTS`], with each port's configured gateway MAC pinned.
    pub fn of_config(cfg: &cgnat_config::Config) -> Neighbors {
        let n = Neighbors::new(APPLIANCE_SLOTS);
        for p in &cfg.ports {
            if let (Some(gw), Some(mac)) = (p.gateway, p.gateway_mac) {
                n.pin(u32::from(gw), &mac);
            }
        }
        n
    }

    /// A table of `size` slots (rounded up to a power of two).
    pub fn new(size: usize) -> Neighbors {
        let n = size.next_power_of_two().max(PROBE);
        Neighbors {
            slots: (0..n)
                .map(|_| Slot {
                    seq: AtomicU32::new(0),
                    ip: AtomicU32::new(0),
                    at: AtomicU32::new(NEVER_AGES),
                    mac: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    #[inline]
    fn home(&self, ip: u32) -> usize {
        (ip.wrapping_mul(0x9e37_79b1) >> 7) as usize & (self.slots.len() - 1)
    }

    #[inline]
    fn read(&self, i: usize) -> (u32, u64, u32) {
        let s = &self.slots[i];
        loop {
            let s1 = s.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let ip = s.ip.load(Ordering::Relaxed);
            let mac = s.mac.load(Ordering::Relaxed);
            let at = s.at.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if s.seq.load(Ordering::Relaxed) == s1 {
                return (ip, mac, at);
            }
        }
    }

    #[inline]
    fn find(&self, ip: u32) -> Option<(Mac, u32)> {
        let h = self.home(ip);
        for k in 0..PROBE {
            let (sip, mac, at) = self.read((h + k) & (self.slots.len() - 1));
            if mac & USED == 0 {
                return None;
            }
            if sip == ip {
                return Some((unpack(mac), at));
            }
        }
        None
    }

    /// Brings the slot where `ip` would be first looked for into the cache, ahead of
    /// a lookup (a new flow's subscriber, whose MAC its first packet checks).
    #[inline]
    pub fn prefetch(&self, ip: u32) {
        cgnat_ffi::prefetch(&self.slots[self.home(ip)]);
    }

    /// The MAC of `ip`, if known.
    pub fn lookup(&self, ip: u32) -> Option<Mac> {
        self.find(ip).map(|(mac, _)| mac)
    }

    /// The MAC of `ip`, if known, and whether it is due to be asked for again at `now`
    /// (learned from an answer [`REFRESH_SECS`] or more ago).
    #[inline]
    pub fn lookup_due(&self, ip: u32, now: u32) -> Option<(Mac, bool)> {
        self.find(ip).map(|(mac, at)| {
            (
                mac,
                at != NEVER_AGES && now.wrapping_sub(at) >= REFRESH_SECS,
            )
        })
    }

    /// Records `ip` at `mac`, for good (replay and pcap mode, where nobody answers
    /// ARP). Only one thread may call this (the control lcore, or start-up before the
    /// workers run). A full probe window overwrites its first learned entry;
    /// configured entries are never overwritten by learned ones.
    pub fn learn(&self, ip: u32, mac: &Mac) {
        self.store(ip, pack(mac), NEVER_AGES);
    }

    /// Records `ip` at `mac` from the answer to our request, at `now`: asked for
    /// again [`REFRESH_SECS`] later. Same rules as [`Neighbors::learn`].
    pub fn learn_answer(&self, ip: u32, mac: &Mac, now: u32) {
        self.store(ip, pack(mac), now.min(NEVER_AGES - 1));
    }

    /// Records a configured neighbour (`gateway_mac`), which learning never replaces.
    pub fn pin(&self, ip: u32, mac: &Mac) {
        self.store(ip, pack(mac) | PINNED, NEVER_AGES);
    }

    fn store(&self, ip: u32, value: u64, at: u32) {
        let h = self.home(ip);
        let mut target = None;
        let mut victim = None;
        for k in 0..PROBE {
            let i = (h + k) & (self.slots.len() - 1);
            let (sip, m, _) = self.read(i);
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
        s.at.store(at, Ordering::Relaxed);
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
    fn answers_age_and_the_rest_never_does() {
        let n = Neighbors::new(16);
        n.learn_answer(1, &[2, 0, 0, 0, 0, 1], 100);
        assert_eq!(n.lookup_due(1, 100), Some(([2, 0, 0, 0, 0, 1], false)));
        assert_eq!(
            n.lookup_due(1, 100 + REFRESH_SECS - 1),
            Some(([2, 0, 0, 0, 0, 1], false))
        );
        assert_eq!(
            n.lookup_due(1, 100 + REFRESH_SECS),
            Some(([2, 0, 0, 0, 0, 1], true))
        );
        // A new answer starts the age over, with its MAC.
        n.learn_answer(1, &[2, 0, 0, 0, 0, 2], 200);
        assert_eq!(
            n.lookup_due(1, 200 + REFRESH_SECS - 1),
            Some(([2, 0, 0, 0, 0, 2], false))
        );
        n.learn(2, &[2, 0, 0, 0, 0, 3]);
        n.pin(3, &[2, 0, 0, 0, 0, 4]);
        for ip in [2, 3] {
            assert_eq!(
                n.lookup_due(ip, u32::MAX - 1).map(|(_, due)| due),
                Some(false)
            );
        }
        assert_eq!(n.lookup_due(9, 0), None);
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
