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

/// How every fragment of a datagram is translated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// New source address.
    pub src: u32,
    /// New destination address.
    pub dst: u32,
    /// New identification.
    pub id: u16,
    /// Port side it leaves on (0 inside, 1 outside).
    pub out: u8,
    /// Dies at this second.
    pub until: u32,
}

/// Fragment state of one worker; `B` is the packet buffer type it holds.
pub struct Fragments<B> {
    records: HashMap<Key, Translation>,
    held: Vec<(Key, B, u8, u32)>,
    next_id: u16,
}

impl<B> Fragments<B> {
    /// Empty, sized for [`MAX_DATAGRAMS`] and [`MAX_HELD`].
    pub fn new(seed: u16) -> Fragments<B> {
        Fragments {
            records: HashMap::with_capacity(2 * MAX_DATAGRAMS),
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

    /// Records a datagram's translation; false when the table is full.
    pub fn record(&mut self, k: Key, t: Translation) -> bool {
        if self.records.len() >= MAX_DATAGRAMS && !self.records.contains_key(&k) {
            return false;
        }
        self.records.insert(k, t);
        true
    }

    /// True if another fragment can be held.
    pub fn can_hold(&self) -> bool {
        self.held.len() < MAX_HELD
    }

    /// Holds a fragment received on side `from` until its first fragment comes.
    pub fn hold(&mut self, k: Key, buf: B, from: u8, now: u32) -> Result<(), B> {
        if !self.can_hold() {
            return Err(buf);
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
        self.records.retain(|_, t| t.until >= now);
        let before = self.held.len();
        self.held.retain(|h| h.3 >= now);
        before - self.held.len()
    }

    /// Fragments held now.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}
