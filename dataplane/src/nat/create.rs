//! Session creation in stages over the new flows of a burst ([`crate::vector`]):
//! what [`Nat::in2out`] does once its lookup missed, split so that the cache misses
//! of a burst's creations overlap instead of following one another.
//!
//! - [`Nat::create_slots`] (stage a): the hashes of the subscriber and mapping keys,
//!   carried in the frame's metadata, and a prefetch of their index slots;
//! - [`Nat::create_records`] (stage b): the subscriber record and its block list,
//!   the existing mapping (a mapping record, or the session record it is folded in);
//! - [`Nat::create_ports`] (stage c): the port bitmap words of the subscriber's
//!   blocks (where the port is picked), the free session record the next creation
//!   takes;
//! - [`Nat::create_commit`] (stage d, in `nat/mod.rs` beside [`Nat::in2out`], which
//!   calls it after a miss), in the burst's order: it decides exactly what
//!   [`Nat::in2out`] decides (the stages before only read and prefetch: they choose
//!   nothing). The outside keys of the sessions it creates (the session's, a
//!   folded mapping's), whose index slots are known only once the port is picked,
//!   are entered after the burst's next creations ([`Nat::defer_out_keys`],
//!   [`Nat::index_deferred`]), so that their slots' misses overlap those instead
//!   of each following its own pick.

use super::{Nat, Tuple, NIL};

/// The hashes creating a session of an outbound tuple needs: its subscriber's (the
/// inside address) and its mapping key's.
#[derive(Clone, Copy, Debug, Default)]
pub struct CreateHashes {
    /// Of the inside address, in the subscriber index.
    pub sub: u32,
    /// Of the mapping key, in the mapping index.
    pub map: u32,
}

impl Nat {
    /// Stage a: the hashes of outbound tuple `t`'s subscriber and mapping keys, and
    /// a prefetch of their index slots.
    #[inline]
    pub fn create_slots(&self, t: &Tuple) -> CreateHashes {
        let h = CreateHashes {
            sub: self.hasher.addr(t.src),
            map: self.hasher.key(&self.mapping_key(&t.in2out_key())),
        };
        self.sub_idx.prefetch(h.sub);
        self.map_in.prefetch(h.map);
        h
    }

    /// Stage b: prefetches the subscriber record the subscriber slot names and its
    /// block list, and the existing mapping the mapping slot names.
    #[inline]
    pub fn create_records(&self, h: CreateHashes) {
        if let Some(i) = self.sub_idx.guess(h.sub) {
            if let Some(s) = self.subs.get(i as usize) {
                cgnat_ffi::prefetch(s);
            }
            if let Some(b) = self.sub_blocks.get(i as usize * self.block_room) {
                cgnat_ffi::prefetch(b);
            }
        }
        match self.map_in.guess(h.map) {
            Some(r) if r < self.map_base => {
                if let Some(s) = self.sessions.get(r as usize) {
                    cgnat_ffi::prefetch(s);
                }
            }
            Some(r) => {
                if let Some(m) = self.mappings.get((r - self.map_base) as usize) {
                    cgnat_ffi::prefetch(m);
                }
            }
            None => {}
        }
    }

    /// Stage c: prefetches the used-port bitmap words of the (first few) blocks the
    /// subscriber holds, where a new mapping's port is picked, and, for the first
    /// new flow of a burst (`first`), the free session record creation takes (the
    /// ones after it are named by that record).
    #[inline]
    pub fn create_ports(&self, t: &Tuple, h: CreateHashes, first: bool) {
        if let Some(i) = self.sub_idx.guess(h.sub) {
            let held = self
                .subs
                .get(i as usize)
                .filter(|s| s.addr == t.src)
                .map_or(0, |s| usize::from(s.blocks).min(self.block_room));
            let start = i as usize * self.block_room;
            if let Some(room) = self.sub_blocks.get(start..start + held) {
                for &e in room.iter().take(4) {
                    self.pool
                        .prefetch_block((e >> 16) as usize, t.proto, e as u16);
                }
            }
        }
        if first && self.free_session != NIL {
            if let Some(s) = self.sessions.get(self.free_session as usize) {
                cgnat_ffi::prefetch(s);
            }
        }
    }

    /// True when a new session of outbound tuple `t` gets no ALG: no ALG is on for
    /// its destination port, and no expectation could give it one (RTCP). The burst
    /// path creates only those; the others go the full way, where the ALG reads
    /// the packet.
    #[inline]
    pub fn creates_plain(&self, t: &Tuple) -> bool {
        self.expects.is_empty() && self.alg_for(t.proto, t.dport) == 0
    }
}
