//! The neighbour tables: IPv4 address to MAC (ARP) and IPv6 address to MAC (neighbour
//! discovery on the inside port), written by the control lcore alone and read
//! lock-free by every worker.
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

struct Slot<const W: usize> {
    seq: AtomicU32,
    /// The address as `W` 32-bit words (one for IPv4, four for IPv6).
    ip: [AtomicU32; W],
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

/// A neighbour table keyed by addresses of `W` 32-bit words: [`Neighbors`] (IPv4,
/// the ARP table) and [`Neighbors6`] (IPv6, neighbour discovery on the inside port).
pub struct Table<const W: usize> {
    slots: Vec<Slot<W>>,
}

/// The ARP table: IPv4 address (host order) to MAC.
pub type Neighbors = Table<1>;
/// The IPv6 neighbour table: address to MAC.
pub type Neighbors6 = Table<4>;

fn pack(m: &Mac) -> u64 {
    let mut b = [0u8; 8];
    b[2..].copy_from_slice(m);
    u64::from_be_bytes(b) | USED
}

fn unpack(v: u64) -> Mac {
    let b = (v & !(USED | PINNED)).to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// Slots of the appliance's ARP table (as many hosts as it holds on the inside and
/// outside links together, at most a probe window's worth past it).
pub const APPLIANCE_SLOTS: usize = 1 << 16;

fn words6(a: &[u8; 16]) -> [u32; 4] {
    let w = |i: usize| u32::from_be_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
    [w(0), w(4), w(8), w(12)]
}

impl<const W: usize> Table<W> {
    /// A table of `size` slots (rounded up to a power of two).
    pub fn new(size: usize) -> Table<W> {
        let n = size.next_power_of_two().max(PROBE);
        Table {
            slots: (0..n)
                .map(|_| Slot {
                    seq: AtomicU32::new(0),
                    ip: std::array::from_fn(|_| AtomicU32::new(0)),
                    at: AtomicU32::new(NEVER_AGES),
                    mac: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    #[inline]
    fn home(&self, ip: &[u32; W]) -> usize {
        let mut x = ip[0];
        for (k, w) in ip.iter().enumerate().skip(1) {
            x ^= w.rotate_left(7 * k as u32);
        }
        (x.wrapping_mul(0x9e37_79b1) >> 7) as usize & (self.slots.len() - 1)
    }

    #[inline]
    fn read(&self, i: usize) -> ([u32; W], u64, u32) {
        let s = &self.slots[i];
        loop {
            let s1 = s.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let ip = std::array::from_fn(|k| s.ip[k].load(Ordering::Relaxed));
            let mac = s.mac.load(Ordering::Relaxed);
            let at = s.at.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if s.seq.load(Ordering::Relaxed) == s1 {
                return (ip, mac, at);
            }
        }
    }

    #[inline]
    fn find(&self, ip: &[u32; W]) -> Option<(Mac, u32)> {
        let h = self.home(ip);
        for k in 0..PROBE {
            let (sip, mac, at) = self.read((h + k) & (self.slots.len() - 1));
            if mac & USED == 0 {
                return None;
            }
            if sip == *ip {
                return Some((unpack(mac), at));
            }
        }
        None
    }

    #[inline]
    fn due(&self, ip: &[u32; W], now: u32) -> Option<(Mac, bool)> {
        self.find(ip).map(|(mac, at)| {
            (
                mac,
                at != NEVER_AGES && now.wrapping_sub(at) >= REFRESH_SECS,
            )
        })
    }

    fn store(&self, ip: &[u32; W], value: u64, at: u32) {
        let h = self.home(ip);
        let mut target = None;
        let mut victim = None;
        for k in 0..PROBE {
            let i = (h + k) & (self.slots.len() - 1);
            let (sip, m, _) = self.read(i);
            if m & USED == 0 || sip == *ip {
                if sip == *ip && m & PINNED != 0 && value & PINNED == 0 {
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
        for (k, w) in ip.iter().enumerate() {
            s.ip[k].store(*w, Ordering::Relaxed);
        }
        s.mac.store(value, Ordering::Relaxed);
        s.at.store(at, Ordering::Relaxed);
        s.seq.store(seq.wrapping_add(2), Ordering::Release);
    }
}

impl Table<1> {
    /// The appliance's ARP table for `cfg` (the runtime's, and the harness's, so that
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

    /// Brings the slot where `ip` would be first looked for into the cache, ahead of
    /// a lookup (a new flow's subscriber, whose MAC its first packet checks).
    #[inline]
    pub fn prefetch(&self, ip: u32) {
        cgnat_ffi::prefetch(&self.slots[self.home(&[ip])]);
    }

    /// The MAC of `ip`, if known.
    pub fn lookup(&self, ip: u32) -> Option<Mac> {
        self.find(&[ip]).map(|(mac, _)| mac)
    }

    /// The MAC of `ip`, if known, and whether it is due to be asked for again at `now`
    /// (learned from an answer [`REFRESH_SECS`] or more ago).
    #[inline]
    pub fn lookup_due(&self, ip: u32, now: u32) -> Option<(Mac, bool)> {
        self.due(&[ip], now)
    }

    /// Records `ip` at `mac`, for good (replay and pcap mode, where nobody answers
    /// ARP). Only one thread may call this (the control lcore, or start-up before the
    /// workers run). A full probe window overwrites its first learned entry;
    /// configured entries are never overwritten by learned ones.
    pub fn learn(&self, ip: u32, mac: &Mac) {
        self.store(&[ip], pack(mac), NEVER_AGES);
    }

    /// Records `ip` at `mac` from the answer to our request, at `now`: asked for
    /// again [`REFRESH_SECS`] later. Same rules as [`Neighbors::learn`].
    pub fn learn_answer(&self, ip: u32, mac: &Mac, now: u32) {
        self.store(&[ip], pack(mac), now.min(NEVER_AGES - 1));
    }

    /// Records a configured neighbour (`gateway_mac`), which learning never replaces.
    pub fn pin(&self, ip: u32, mac: &Mac) {
        self.store(&[ip], pack(mac) | PINNED, NEVER_AGES);
    }
}

impl Table<4> {
    /// The MAC of `a`, if known.
    pub fn lookup(&self, a: &[u8; 16]) -> Option<Mac> {
        self.find(&words6(a)).map(|(mac, _)| mac)
    }

    /// The MAC of `a`, if known, and whether it is due to be asked for again at `now`.
    #[inline]
    pub fn lookup_due(&self, a: &[u8; 16], now: u32) -> Option<(Mac, bool)> {
        self.due(&words6(a), now)
    }

    /// Records `a` at `mac` from the answer to our solicitation, at `now` (one writer:
    /// the control lcore); asked for again [`REFRESH_SECS`] later.
    pub fn learn_answer(&self, a: &[u8; 16], mac: &Mac, now: u32) {
        self.store(&words6(a), pack(mac), now.min(NEVER_AGES - 1));
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
    fn ipv6_entries_learn_age_and_overwrite() {
        let t = Neighbors6::new(16);
        let a: [u8; 16] = "2001:db8::10"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        let mut b = a;
        b[15] = 0x11;
        assert_eq!(t.lookup(&a), None);
        t.learn_answer(&a, &[2, 0, 0, 0, 0, 1], 100);
        t.learn_answer(&b, &[2, 0, 0, 0, 0, 2], 100);
        assert_eq!(t.lookup(&a), Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(
            t.lookup_due(&a, 100 + REFRESH_SECS),
            Some(([2, 0, 0, 0, 0, 1], true))
        );
        t.learn_answer(&a, &[2, 0, 0, 0, 0, 3], 200);
        assert_eq!(t.lookup_due(&a, 201), Some(([2, 0, 0, 0, 0, 3], false)));
        assert_eq!(t.lookup(&b), Some([2, 0, 0, 0, 0, 2]));
        // More addresses than slots: the newest are found.
        for i in 0..64u8 {
            let mut c = a;
            c[14] = i;
            t.learn_answer(&c, &[2, 0, 0, 0, 1, i], 300);
            assert_eq!(t.lookup(&c), Some([2, 0, 0, 0, 1, i]));
        }
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
