//! IPv4 fragments through the NAT (RFC 4787 REQ-14, RFC 6864): the first fragment is
//! translated like any packet and leaves a record of its datagram's translation;
//! later fragments (no L4 header) follow that record. Fragments that arrive before
//! the first are held, bounded in number and time, and released when it comes.
//!
//! Datagrams that are fragmented get a new IP identifier, the same for all their
//! fragments: after translation many subscribers share one source address, and their
//! own identifiers could collide at the receiver's reassembly (RFC 6864 section 4).

use hashbrown::HashMap;

/// Datagrams whose translation is remembered at once, per worker.
pub const MAX_DATAGRAMS: usize = 4096;
/// Fragments held at once, per worker.
pub const MAX_HELD: usize = 256;
/// Datagrams one source (a subscriber inside, a remote host outside) may have recorded
/// at once: a sixteenth of the table.
pub const MAX_DATAGRAMS_PER_SOURCE: usize = MAX_DATAGRAMS / 16;
/// Fragments one source may have held at once: a sixteenth of them.
pub const MAX_HELD_PER_SOURCE: usize = MAX_HELD / 16;
/// [`Translation::out`] of a datagram whose fragments are all dropped (an ALG's
/// datagram, which cannot be read whole).
pub const DROPPED: u8 = 2;
/// [`Translation::out`] of an outside datagram that another worker owns (with several
/// workers): its fragments are handed to worker [`Translation::id`].
pub const HANDED: u8 = 3;
/// Seconds a record or a held fragment lives (RFC 791 suggests 15 s for reassembly).
pub const TIMEOUT: u32 = 15;

/// A datagram, as its fragments identify it before translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// IP identification.
    pub id: u16,
    /// Protocol.
    pub proto: u8,
}

impl Key {
    /// The worker (of `workers`) that all fragments of an outside datagram reach
    /// first: a device spreads fragments on their addresses alone (no ports in
    /// later fragments), so they land anywhere; this one learns the owner from the
    /// first fragment and hands the datagram's fragments to it.
    pub fn director(&self, workers: u16) -> u16 {
        let mix = self.src
            ^ self.dst.rotate_left(11)
            ^ (u32::from(self.id) << 8 | u32::from(self.proto)).rotate_left(21);
        (crate::nat::hash32(mix) % u32::from(workers.max(1))) as u16
    }
}

/// How every fragment of a datagram is translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// New source address.
    pub src: u32,
    /// New destination address.
    pub dst: u32,
    /// New identification.
    pub id: u16,
    /// Port side it leaves on (0 inside, 1 outside; [`DROPPED`]: none; [`HANDED`]:
    /// another worker's).
    pub out: u8,
    /// Dies at this second.
    pub until: u32,
}

/// Why a fragment or a datagram's record was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The worker's table is full.
    Full,
    /// Its source holds its share already.
    Source,
}

/// Fragment state of one worker; `B` is the packet buffer type it holds.
pub struct Fragments<B> {
    records: HashMap<Key, Translation>,
    /// Records per source address (sources with none are absent).
    per_source: HashMap<u32, u16>,
    held: Vec<(Key, B, u8, u32)>,
    next_id: u16,
}

impl<B> Fragments<B> {
    /// Empty, sized for [`MAX_DATAGRAMS`] and [`MAX_HELD`].
    pub fn new(seed: u16) -> Fragments<B> {
        Fragments {
            records: HashMap::with_capacity(2 * MAX_DATAGRAMS),
            per_source: HashMap::with_capacity(2 * MAX_DATAGRAMS),
            held: Vec::with_capacity(MAX_HELD),
            next_id: seed,
        }
    }

    /// The translation of a datagram's later fragments, if its first one passed.
    pub fn lookup(&self, k: &Key, now: u32) -> Option<Translation> {
        self.records.get(k).filter(|t| t.until >= now).copied()
    }

    /// A fresh identifier for a fragmented datagram.
    pub fn new_id(&mut self) -> u16 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    /// Records a datagram's translation, unless the table is full or its source
    /// holds [`MAX_DATAGRAMS_PER_SOURCE`] records already.
    pub fn record(&mut self, k: Key, t: Translation) -> Result<(), Refused> {
        if let Some(r) = self.records.get_mut(&k) {
            *r = t;
            return Ok(());
        }
        if self.records.len() >= MAX_DATAGRAMS {
            return Err(Refused::Full);
        }
        let n = self.per_source.entry(k.src).or_insert(0);
        if usize::from(*n) >= MAX_DATAGRAMS_PER_SOURCE {
            return Err(Refused::Source);
        }
        *n += 1;
        self.records.insert(k, t);
        Ok(())
    }

    /// Whether a fragment of `k` can be held: the table has room and its source holds
    /// fewer than [`MAX_HELD_PER_SOURCE`] (a scan of at most [`MAX_HELD`] keys).
    pub fn can_hold(&self, k: &Key) -> Result<(), Refused> {
        if self.held.len() >= MAX_HELD {
            return Err(Refused::Full);
        }
        if self.held.iter().filter(|h| h.0.src == k.src).count() >= MAX_HELD_PER_SOURCE {
            return Err(Refused::Source);
        }
        Ok(())
    }

    /// Holds a fragment received on side `from` until its first fragment comes.
    pub fn hold(&mut self, k: Key, buf: B, from: u8, now: u32) -> Result<(), (B, Refused)> {
        if let Err(r) = self.can_hold(&k) {
            return Err((buf, r));
        }
        self.held.push((k, buf, from, now + TIMEOUT));
        Ok(())
    }

    /// Takes the held fragments of datagram `k`.
    pub fn take_held(&mut self, k: &Key, mut f: impl FnMut(B)) {
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].0 == *k {
                let (_, b, _, _) = self.held.swap_remove(i);
                f(b);
            } else {
                i += 1;
            }
        }
    }

    /// Forgets expired records and drops expired held fragments; returns how many
    /// fragments were dropped.
    pub fn expire(&mut self, now: u32) -> usize {
        let per_source = &mut self.per_source;
        self.records.retain(|k, t| {
            if t.until >= now {
                return true;
            }
            if let Some(n) = per_source.get_mut(&k.src) {
                *n -= 1;
                if *n == 0 {
                    per_source.remove(&k.src);
                }
            }
            false
        });
        let before = self.held.len();
        self.held.retain(|h| h.3 >= now);
        before - self.held.len()
    }

    /// Fragments held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}
