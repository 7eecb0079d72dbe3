//! A coarse timer wheel with lazy re-arm, one per worker.
//!
//! Each live session sits in exactly one slot (an intrusive list threaded through the
//! session table by index). A packet never touches the wheel: it only updates the
//! session's last-seen time. When a slot comes due, each entry's real deadline is
//! computed again; entries not yet due are re-armed at their deadline, the others
//! expire. Work per call is bounded, so a burst of expiries cannot stall the worker.

/// Marks the end of a slot's list.
pub const NIL: u32 = u32::MAX;

/// The wheel: `slots.len()` one-second slots.
pub struct Wheel {
    slots: Vec<u32>,
    /// Next second to process.
    cursor: u32,
    /// Entries taken from a due slot and not yet processed.
    pending: u32,
}

impl Wheel {
    /// A wheel of `slots` seconds (rounded up to a power of two), starting at `now`.
    pub fn new(slots: usize, now: u32) -> Wheel {
        Wheel {
            slots: vec![NIL; slots.next_power_of_two()],
            cursor: now,
            pending: NIL,
        }
    }

    fn mask(&self) -> u32 {
        self.slots.len() as u32 - 1
    }

    /// Puts entry `idx` in the slot of `deadline`; `next` is the entry's link field.
    /// Deadlines further away than the wheel's span land in the last slot ahead and are
    /// re-armed when it comes due.
    pub fn insert(&mut self, idx: u32, deadline: u32, next: &mut u32) {
        let span = self.mask();
        let at = deadline.clamp(
            self.cursor,
            self.cursor.saturating_add(span - 1).max(self.cursor),
        );
        let slot = (at & self.mask()) as usize;
        *next = self.slots[slot];
        self.slots[slot] = idx;
    }

    /// Takes the next entry that may be due at `now`, or None when nothing is due.
    /// `next_of` reads an entry's link field. The caller either expires the entry or
    /// re-inserts it.
    pub fn pop_due(&mut self, now: u32, next_of: impl Fn(u32) -> u32) -> Option<u32> {
        loop {
            if self.pending != NIL {
                let idx = self.pending;
                self.pending = next_of(idx);
                return Some(idx);
            }
            if self.cursor > now {
                return None;
            }
            let slot = (self.cursor & self.mask()) as usize;
            self.pending = std::mem::replace(&mut self.slots[slot], NIL);
            self.cursor += 1;
        }
    }

    /// The second the wheel has processed up to (exclusive).
    pub fn cursor(&self) -> u32 {
        self.cursor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_due_at_their_second_and_far_ones_are_rearmed() {
        let mut next = [NIL; 4];
        let mut w = Wheel::new(8, 100);
        w.insert(0, 103, &mut next[0]);
        w.insert(1, 103, &mut next[1]);
        w.insert(2, 150, &mut next[2]); // beyond the 8 s span
        assert_eq!(w.pop_due(102, |i| next[i as usize]), None);
        let mut due = vec![];
        while let Some(i) = w.pop_due(103, |i| next[i as usize]) {
            due.push(i);
        }
        due.sort();
        assert_eq!(due, vec![0, 1]);
        // Entry 2 surfaces early (lazy re-arm) and goes back in.
        let mut got = None;
        for t in 104..=110 {
            if let Some(i) = w.pop_due(t, |i| next[i as usize]) {
                got = Some((i, t));
                break;
            }
        }
        let (i, t) = got.unwrap();
        assert_eq!(i, 2);
        assert!(t < 150);
        w.insert(2, 150, &mut next[2]);
    }
}
