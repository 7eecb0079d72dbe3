//! PPTP calls and their enhanced GRE (RFC 2637 section 4.1: GRE version 1, the key
//! field's low half the *receiver's* call ID). The PPTP ALG (`cgnat_alg::pptp`) gives
//! each subscriber's call a translated call ID of its own, unique per pool address and
//! server; [`Calls`] is a worker's table of them, looked up both ways:
//! - outbound GRE (key: the server's call ID) by (inside address, server, server's call
//!   ID): the source becomes the pool address, the key stays;
//! - inbound GRE (key: the translated call ID) by (pool address, server, key): the
//!   destination becomes the inside address, the key the subscriber's own call ID;
//! - the control messages by (inside address, server, subscriber's call ID) and by the
//!   translated one.
//!
//! The table is bounded (its size is given when it is made: every map and the slots
//! are allocated then, never on the hot path); when full a new call is refused and the
//! live ones are untouched. It knows nothing of sessions or the pool: the NAT passes in
//! the control session's id and which call IDs are its worker's to hand out (the same
//! owner function as ports, so the worker that owns inbound GRE is computable from the
//! pool address and key alone).
//!
//! Every call made and every call ended, whichever way it ends, is noted in the
//! table's journal (bounded too: [`Calls::changes`]), which the NAT turns into its
//! log events (`Nat::log_calls`), so no path that ends a call goes unlogged.
//!
//! For the HA sync (an active), a second journal ([`Calls::sync_journal`]) notes each
//! call as it is made, bound, marked closing and ended; a standby installs the calls
//! it is sent with their translated call IDs ([`Calls::install`]).

use hashbrown::HashMap;

/// One call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// The subscriber's address.
    pub inside: u32,
    /// The subscriber's own call ID.
    pub inside_id: u16,
    /// The pool address the call goes out from.
    pub outside: u32,
    /// Its translated call ID.
    pub outside_id: u16,
    /// The server's address.
    pub server: u32,
    /// The server's call ID (0 until a reply binds it: `bound`).
    pub server_id: u16,
    /// The server's call ID is known.
    pub bound: bool,
    /// The control session (its slot in the NAT's session table).
    pub control: u32,
    /// Second of the last control message or GRE packet of the call.
    pub seen: u32,
    /// The second the call was marked closing (a Call-Clear-Request from the
    /// subscriber, or its control connection closed): it still carries GRE until a
    /// Call-Disconnect-Notify ends it, or the linger after this second does.
    pub closing: Option<u32>,
}

/// (address, server, call ID).
type Key = (u32, u32, u16);

/// Why a call was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The table holds its maximum of calls.
    Full,
    /// No call ID of the worker's share is free for the pool address and server.
    NoId,
}

/// A worker's PPTP calls.
pub struct Calls {
    slots: Vec<Option<Call>>,
    free: Vec<u32>,
    by_inside: HashMap<Key, u32>,
    by_outside: HashMap<Key, u32>,
    by_server: HashMap<Key, u32>,
    /// Where the search for the next translated call ID starts.
    cursor: u16,
    /// The calls made (true) and ended (false) since [`Calls::clear_changes`].
    changes: Vec<(bool, Call)>,
    /// Changes not noted since then, the journal full.
    changes_lost: u64,
    /// HA sync (an active): calls made, bound or marked closing (true) and ended
    /// (false) since the last [`Calls::sync_take`], while `sync_on`; room reserved when
    /// switched on.
    sync: Vec<(bool, Call)>,
    sync_on: bool,
    /// A sync entry found no room since the last take.
    sync_lost: bool,
    /// The last [`ENDED_ROOM`] calls ended, oldest overwritten first: a control
    /// message that still names one (a Call-Clear-Request retransmitted after the
    /// server's Call-Disconnect-Notify ended the call, or that notify retransmitted)
    /// gets the translation the call had ([`Calls::ended_inside`],
    /// [`Calls::ended_outside`]) instead of going out with the other side's ID.
    ended: [Option<Call>; ENDED_ROOM],
    /// Where the next ended call is written in `ended`.
    ended_next: usize,
}

/// Ended calls a worker remembers for retransmitted control messages.
pub const ENDED_ROOM: usize = 32;

impl Calls {
    /// A table of at most `max` calls (everything allocated now).
    pub fn new(max: usize) -> Calls {
        Calls {
            slots: vec![None; max],
            free: (0..max as u32).rev().collect(),
            by_inside: HashMap::with_capacity(max),
            by_outside: HashMap::with_capacity(max),
            by_server: HashMap::with_capacity(max),
            cursor: 1,
            changes: Vec::with_capacity(max),
            changes_lost: 0,
            sync: Vec::new(),
            sync_on: false,
            sync_lost: false,
            ended: [None; ENDED_ROOM],
            ended_next: 0,
        }
    }

    fn note(&mut self, made: bool, c: Call) {
        if self.changes.len() < self.changes.capacity() {
            self.changes.push((made, c));
        } else {
            self.changes_lost += 1;
        }
        self.note_sync(made, c);
    }

    /// Notes call `c` for the HA sync: as it is now (`live`), or ended.
    fn note_sync(&mut self, live: bool, c: Call) {
        if !self.sync_on {
            return;
        }
        if self.sync.len() < self.sync.capacity() {
            self.sync.push((live, c));
        } else {
            self.sync_lost = true;
        }
    }

    /// Switches the HA sync journal on (an active) or off; its room (as many entries
    /// as the table holds calls) is reserved once.
    pub fn sync_journal(&mut self, on: bool) {
        self.sync_on = on;
        if on && self.sync.capacity() < self.slots.len() {
            self.sync.reserve_exact(self.slots.len());
        }
        self.sync.clear();
        self.sync_lost = false;
    }

    /// Hands the sync journal's entries (the call as it was then, and whether it is
    /// still live) to `push`, oldest first, until it returns false; true when entries
    /// were lost since the last call.
    pub fn sync_take(&mut self, push: &mut dyn FnMut(bool, &Call) -> bool) -> bool {
        let mut n = 0;
        while n < self.sync.len() {
            let (live, c) = self.sync[n];
            if !push(live, &c) {
                break;
            }
            n += 1;
        }
        self.sync.drain(..n);
        std::mem::take(&mut self.sync_lost)
    }

    /// The call in slot `s`, if any (a walk of the table: [`Calls::slot_count`]).
    pub fn slot(&self, s: u32) -> Option<&Call> {
        self.slots.get(s as usize)?.as_ref()
    }

    /// Slots of the table.
    pub fn slot_count(&self) -> u32 {
        self.slots.len() as u32
    }

    /// A standby installs call `c` as the active has it (its translated call ID
    /// given, never chosen): a known call (the subscriber's, to that server, by its
    /// own call ID) is updated (binding, closing, time), one with another translation
    /// replaced. Refused when the table is full or another call holds the
    /// translated ID.
    pub fn install(&mut self, c: Call) -> Result<(), Refused> {
        let inside = (c.inside, c.server, c.inside_id);
        if let Some(&s) = self.by_inside.get(&inside) {
            let old = self.slots[s as usize].expect("indexed call");
            if (old.outside, old.outside_id) == (c.outside, c.outside_id) {
                if c.bound && (!old.bound || old.server_id != c.server_id) {
                    self.bind_slot(s, c.server_id, c.seen);
                }
                let x = self.slots[s as usize].as_mut().expect("indexed call");
                x.seen = c.seen;
                x.control = c.control;
                x.closing = c.closing;
                return Ok(());
            }
            self.remove_slot(s);
        }
        if self
            .by_outside
            .contains_key(&(c.outside, c.server, c.outside_id))
        {
            return Err(Refused::NoId);
        }
        let Some(slot) = self.free.pop() else {
            return Err(Refused::Full);
        };
        let bound = Call { bound: false, ..c };
        self.by_inside.insert(inside, slot);
        self.by_outside
            .insert((c.outside, c.server, c.outside_id), slot);
        self.slots[slot as usize] = Some(bound);
        if c.bound {
            self.bind_slot(slot, c.server_id, c.seen);
        }
        self.note(true, c);
        Ok(())
    }

    /// Gives every call a fresh time at `now` (a standby promoted: the calls' last
    /// packets went through the old active).
    pub fn refresh_all(&mut self, now: u32) {
        for c in self.slots.iter_mut().flatten() {
            c.seen = c.seen.max(now);
        }
    }

    /// The calls made (true) and ended (false, as they were at their end) since the
    /// last [`Calls::clear_changes`], in order; and how many more there were that the
    /// journal (room for as many as the table holds) had no room for.
    pub fn changes(&self) -> (&[(bool, Call)], u64) {
        (&self.changes, self.changes_lost)
    }

    /// Empties the journal.
    pub fn clear_changes(&mut self) {
        self.changes.clear();
        self.changes_lost = 0;
    }

    /// Most calls.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Live calls.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// No call.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live calls.
    pub fn iter(&self) -> impl Iterator<Item = &Call> {
        self.slots.iter().flatten()
    }

    /// The subscriber's call (`inside`: its address and call ID) to `server`, announced on control session
    /// `control`: its translation, the same as before when the call is known (it is
    /// refreshed), else a new call ID on `pool` that no call to `server` from `pool`
    /// has and `mine` accepts (this worker's share).
    pub fn announce(
        &mut self,
        (inside, inside_id): (u32, u16),
        server: u32,
        pool: u32,
        control: u32,
        now: u32,
        mine: impl Fn(u32, u16) -> bool,
    ) -> Result<&Call, Refused> {
        if let Some(&s) = self.by_inside.get(&(inside, server, inside_id)) {
            let c = self.slots[s as usize].as_mut().expect("indexed call");
            c.seen = now;
            c.control = control;
            return Ok(c);
        }
        let Some(&slot) = self.free.last() else {
            return Err(Refused::Full);
        };
        // Every ID once at most, from where the last search ended (0 is never handed
        // out: some implementations read it as no call).
        let mut id = self.cursor;
        let mut found = None;
        for _ in 0..u16::MAX {
            if id != 0 && mine(pool, id) && !self.by_outside.contains_key(&(pool, server, id)) {
                found = Some(id);
                break;
            }
            id = id.wrapping_add(1);
        }
        let outside_id = found.ok_or(Refused::NoId)?;
        self.cursor = outside_id.wrapping_add(1);
        self.free.pop();
        let call = Call {
            inside,
            inside_id,
            outside: pool,
            outside_id,
            server,
            server_id: 0,
            bound: false,
            control,
            seen: now,
            closing: None,
        };
        self.by_inside.insert((inside, server, inside_id), slot);
        self.by_outside.insert((pool, server, outside_id), slot);
        self.note(true, call);
        Ok(self.slots[slot as usize].insert(call))
    }

    fn bind_slot(&mut self, slot: u32, server_id: u16, now: u32) -> &Call {
        let c = self.slots[slot as usize].expect("indexed call");
        if c.bound {
            self.by_server.remove(&(c.inside, c.server, c.server_id));
        }
        self.by_server.insert((c.inside, c.server, server_id), slot);
        let c = self.slots[slot as usize].as_mut().expect("indexed call");
        c.server_id = server_id;
        c.bound = true;
        c.seen = now;
        let c = *c;
        self.note_sync(true, c);
        self.slots[slot as usize].as_ref().expect("indexed call")
    }

    /// The server's call ID of the subscriber's call `inside_id` (an
    /// Incoming-Call-Reply the subscriber sends).
    pub fn bind_inside(
        &mut self,
        inside: u32,
        server: u32,
        inside_id: u16,
        server_id: u16,
        now: u32,
    ) -> Option<&Call> {
        let &s = self.by_inside.get(&(inside, server, inside_id))?;
        Some(self.bind_slot(s, server_id, now))
    }

    /// The server's call ID of the call it knows as `outside_id` (an
    /// Outgoing-Call-Reply the server sends).
    pub fn bind_outside(
        &mut self,
        pool: u32,
        server: u32,
        outside_id: u16,
        server_id: u16,
        now: u32,
    ) -> Option<&Call> {
        let &s = self.by_outside.get(&(pool, server, outside_id))?;
        Some(self.bind_slot(s, server_id, now))
    }

    /// The call `server` knows as `outside_id` on `pool` (a control message from the
    /// server naming the subscriber's call), refreshed.
    pub fn lookup_outside(
        &mut self,
        pool: u32,
        server: u32,
        outside_id: u16,
        now: u32,
    ) -> Option<&Call> {
        let &s = self.by_outside.get(&(pool, server, outside_id))?;
        let c = self.slots[s as usize].as_mut().expect("indexed call");
        c.seen = now;
        Some(c)
    }

    /// The subscriber's call `inside_id` to `server`.
    pub fn get_inside(&self, inside: u32, server: u32, inside_id: u16) -> Option<&Call> {
        let &s = self.by_inside.get(&(inside, server, inside_id))?;
        self.slots[s as usize].as_ref()
    }

    /// Outbound GRE: the bound call of `inside` whose server call ID is `key`,
    /// refreshed.
    #[inline]
    pub fn outbound(&mut self, inside: u32, server: u32, key: u16, now: u32) -> Option<&Call> {
        let &s = self.by_server.get(&(inside, server, key))?;
        let c = self.slots[s as usize].as_mut().expect("indexed call");
        c.seen = now;
        Some(c)
    }

    /// Inbound GRE: the call the server knows as `key` on `pool`, refreshed.
    #[inline]
    pub fn inbound(&mut self, pool: u32, server: u32, key: u16, now: u32) -> Option<&Call> {
        self.lookup_outside(pool, server, key, now)
    }

    fn remove_slot(&mut self, s: u32) -> Option<Call> {
        let c = self.slots[s as usize].take()?;
        self.by_inside.remove(&(c.inside, c.server, c.inside_id));
        self.by_outside.remove(&(c.outside, c.server, c.outside_id));
        if c.bound {
            self.by_server.remove(&(c.inside, c.server, c.server_id));
        }
        self.free.push(s);
        self.note(false, c);
        self.ended[self.ended_next] = Some(c);
        self.ended_next = (self.ended_next + 1) % ENDED_ROOM;
        Some(c)
    }

    /// The most recently ended of the remembered calls for which `is` holds, unless
    /// a live call has taken its translated call ID toward its server since, or the
    /// subscriber has given its own call ID to a new call to that server (a message
    /// of the old call translated then would name the new one).
    fn ended_where(&self, is: impl Fn(&Call) -> bool) -> Option<&Call> {
        (1..=ENDED_ROOM)
            .filter_map(|k| self.ended[(self.ended_next + ENDED_ROOM - k) % ENDED_ROOM].as_ref())
            .find(|c| is(c))
            .filter(|c| {
                !self
                    .by_outside
                    .contains_key(&(c.outside, c.server, c.outside_id))
                    && !self
                        .by_inside
                        .contains_key(&(c.inside, c.server, c.inside_id))
            })
    }

    /// A recently ended call of the subscriber `inside` with its call ID `inside_id`
    /// to `server` (see `ended`), when no live call has the same.
    pub fn ended_inside(&self, inside: u32, server: u32, inside_id: u16) -> Option<&Call> {
        self.ended_where(|c| c.inside == inside && c.server == server && c.inside_id == inside_id)
    }

    /// A recently ended call of control session `control` that `server` knows by its
    /// translated call ID `outside_id` on `pool` (see `ended`).
    pub fn ended_outside(
        &self,
        control: u32,
        pool: u32,
        server: u32,
        outside_id: u16,
    ) -> Option<&Call> {
        self.ended_where(|c| {
            c.control == control
                && c.outside == pool
                && c.server == server
                && c.outside_id == outside_id
        })
    }

    /// Ends the subscriber's call `inside_id` to `server` at once.
    pub fn end_inside(&mut self, inside: u32, server: u32, inside_id: u16) -> Option<Call> {
        let &s = self.by_inside.get(&(inside, server, inside_id))?;
        self.remove_slot(s)
    }

    /// Marks the subscriber's call `inside_id` to `server` closing at `now` (it
    /// cleared the call: the server's Call-Disconnect-Notify, or the linger, ends it).
    /// A call already closing keeps its first second.
    pub fn close_inside(
        &mut self,
        inside: u32,
        server: u32,
        inside_id: u16,
        now: u32,
    ) -> Option<&Call> {
        let &s = self.by_inside.get(&(inside, server, inside_id))?;
        let c = self.slots[s as usize].as_mut().expect("indexed call");
        if c.closing.is_none() {
            c.closing = Some(now);
            let c = *c;
            self.note_sync(true, c);
        }
        self.slots[s as usize].as_ref()
    }

    /// Ends the call of control session `control` that `server` knows by its
    /// translated call ID `outside_id` on `pool` (a Call-Disconnect-Notify as deployed
    /// servers write it: the subscriber's call ID, as the NAT translated it).
    pub fn end_outside_of(
        &mut self,
        control: u32,
        pool: u32,
        server: u32,
        outside_id: u16,
    ) -> Option<Call> {
        let &s = self.by_outside.get(&(pool, server, outside_id))?;
        if self.slots[s as usize].as_ref()?.control != control {
            return None;
        }
        self.remove_slot(s)
    }

    /// Ends the call of `inside` whose server call ID is `server_id` (the server
    /// disconnected it, naming its own call ID as RFC 2637 2.13 says).
    pub fn end_server(&mut self, inside: u32, server: u32, server_id: u16) -> Option<Call> {
        let &s = self.by_server.get(&(inside, server, server_id))?;
        self.remove_slot(s)
    }

    /// Ends every call of control session `control` (it ended); how many.
    pub fn end_control(&mut self, control: u32) -> usize {
        self.end_where(|c| c.control == control)
    }

    /// Once a second: marks closing at `now` the calls whose control session `closed`
    /// says is closed, then ends the calls closing for `linger` seconds and those not
    /// seen for `idle`; how many of each (lingered, idle). A walk of the slots: not on
    /// the hot path.
    pub fn sweep(
        &mut self,
        now: u32,
        idle: u32,
        linger: u32,
        closed: impl Fn(u32) -> bool,
    ) -> (usize, usize) {
        let (mut lingered, mut idled) = (0, 0);
        for s in 0..self.slots.len() as u32 {
            let Some(c) = self.slots[s as usize].as_mut() else {
                continue;
            };
            if c.closing.is_none() && closed(c.control) {
                c.closing = Some(now);
                let c = *c;
                self.note_sync(true, c);
            }
            let Some(c) = self.slots[s as usize].as_ref() else {
                continue;
            };
            if c.closing.is_some_and(|t| now.wrapping_sub(t) >= linger) {
                self.remove_slot(s);
                lingered += 1;
            } else if now.wrapping_sub(c.seen) >= idle {
                self.remove_slot(s);
                idled += 1;
            }
        }
        (lingered, idled)
    }

    /// Ends every call `f` picks (a walk of the slots: not on the hot path).
    fn end_where(&mut self, f: impl Fn(&Call) -> bool) -> usize {
        let mut n = 0;
        for s in 0..self.slots.len() as u32 {
            if self.slots[s as usize].as_ref().is_some_and(&f) {
                self.remove_slot(s);
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: u32 = 0xC633_6411;
    const SERVER: u32 = 0xCB00_7107;
    const A: u32 = 0x6440_0102;
    const B: u32 = 0x6440_0103;

    fn all(_: u32, _: u16) -> bool {
        true
    }

    #[test]
    fn two_subscribers_with_the_same_call_id_get_two_translations() {
        let mut t = Calls::new(8);
        let a = *t.announce((A, 7), SERVER, POOL, 1, 0, all).unwrap();
        let b = *t.announce((B, 7), SERVER, POOL, 2, 0, all).unwrap();
        assert_ne!(a.outside_id, b.outside_id);
        assert_eq!((a.outside, b.outside), (POOL, POOL));
        // The same call announced again keeps its translation.
        assert_eq!(
            t.announce((A, 7), SERVER, POOL, 1, 5, all)
                .unwrap()
                .outside_id,
            a.outside_id
        );
        assert_eq!(t.len(), 2);

        // Both bound to the same server call ID (two calls of one server are two IDs
        // in practice, but each subscriber's own table entry is apart).
        t.bind_outside(POOL, SERVER, a.outside_id, 0x500, 6)
            .unwrap();
        t.bind_outside(POOL, SERVER, b.outside_id, 0x501, 6)
            .unwrap();
        assert_eq!(t.outbound(A, SERVER, 0x500, 7).unwrap().outside, POOL);
        assert_eq!(t.outbound(B, SERVER, 0x501, 7).unwrap().inside_id, 7);
        assert!(t.outbound(A, SERVER, 0x501, 7).is_none());
        let ia = *t.inbound(POOL, SERVER, a.outside_id, 8).unwrap();
        let ib = *t.inbound(POOL, SERVER, b.outside_id, 8).unwrap();
        assert_eq!((ia.inside, ia.inside_id), (A, 7));
        assert_eq!((ib.inside, ib.inside_id), (B, 7));
        assert!(t.inbound(POOL, SERVER + 1, a.outside_id, 8).is_none());
    }

    #[test]
    fn translated_ids_are_the_workers_share_and_unique_per_server() {
        let mut t = Calls::new(64);
        let even = |_: u32, id: u16| id.is_multiple_of(2);
        let mut seen = std::collections::HashSet::new();
        for i in 0..32u16 {
            let c = *t.announce((A, i), SERVER, POOL, 1, 0, even).unwrap();
            assert_eq!(c.outside_id % 2, 0);
            assert_ne!(c.outside_id, 0);
            assert!(seen.insert(c.outside_id));
        }
        // None of the share free: refused, nothing taken.
        let none = |_: u32, _: u16| false;
        assert_eq!(
            t.announce((B, 1), SERVER, POOL, 2, 0, none).err(),
            Some(Refused::NoId)
        );
        assert_eq!(t.len(), 32);
    }

    #[test]
    fn a_full_table_refuses_new_calls_and_keeps_the_live_ones() {
        let mut t = Calls::new(100);
        for i in 0..100u32 {
            t.announce((A + i, 7), SERVER, POOL, i, 0, all).unwrap();
        }
        assert_eq!(
            t.announce((A + 100, 7), SERVER, POOL, 100, 0, all).err(),
            Some(Refused::Full)
        );
        assert_eq!(t.len(), 100);
        for i in 0..100u32 {
            assert!(t.get_inside(A + i, SERVER, 7).is_some());
        }
        // A known call is still refreshed when full.
        assert!(t.announce((A, 7), SERVER, POOL, 0, 9, all).is_ok());
        t.end_inside(A, SERVER, 7).unwrap();
        assert!(t.announce((A + 100, 7), SERVER, POOL, 100, 0, all).is_ok());
    }

    #[test]
    fn calls_end_by_either_side_their_control_session_or_idleness() {
        let mut t = Calls::new(8);
        let a = *t.announce((A, 7), SERVER, POOL, 1, 0, all).unwrap();
        t.bind_inside(A, SERVER, 7, 0x500, 0).unwrap();
        assert_eq!(t.end_server(A, SERVER, 0x500).unwrap().inside_id, 7);
        assert!(t.inbound(POOL, SERVER, a.outside_id, 1).is_none());
        assert!(t.outbound(A, SERVER, 0x500, 1).is_none());
        assert!(t.is_empty());

        t.announce((A, 7), SERVER, POOL, 1, 0, all).unwrap();
        t.announce((A, 8), SERVER, POOL, 1, 0, all).unwrap();
        t.announce((B, 7), SERVER, POOL, 2, 0, all).unwrap();
        assert_eq!(t.end_control(1), 2);
        assert_eq!(t.len(), 1);
        assert!(t.end_inside(A, SERVER, 7).is_none());

        // B seen at 100 by its GRE: not idle at 350 with 300 s, idle at 400.
        let b = t.get_inside(B, SERVER, 7).copied().unwrap();
        t.inbound(POOL, SERVER, b.outside_id, 100).unwrap();
        assert_eq!(t.sweep(350, 300, 10, |_| false), (0, 0));
        assert_eq!(t.sweep(400, 300, 10, |_| false), (0, 1));
        assert!(t.is_empty());
        assert_eq!(t.free.len(), t.capacity());
    }

    #[test]
    fn ended_calls_are_remembered_for_retransmissions_until_their_ids_are_taken() {
        let mut t = Calls::new(4);
        let all = |_: u32, _: u16| true;
        let c = *t.announce((A, 7), SERVER, POOL, 1, 10, all).unwrap();
        assert_eq!(t.ended_inside(A, SERVER, 7), None, "live, not ended");
        t.end_outside_of(1, POOL, SERVER, c.outside_id).unwrap();
        assert_eq!(t.ended_inside(A, SERVER, 7), Some(&c));
        assert_eq!(t.ended_outside(1, POOL, SERVER, c.outside_id), Some(&c));
        // Another control session, subscriber, server or ID: not this call.
        assert_eq!(t.ended_outside(2, POOL, SERVER, c.outside_id), None);
        assert_eq!(t.ended_inside(B, SERVER, 7), None);
        assert_eq!(t.ended_inside(A, SERVER + 1, 7), None);
        assert_eq!(t.ended_inside(A, SERVER, 8), None);
        // The subscriber calls again with the same ID: the live call is the one, and
        // the old call's translated ID no longer leads to the subscriber's 7.
        let again = *t.announce((A, 7), SERVER, POOL, 1, 11, all).unwrap();
        assert_ne!(again.outside_id, c.outside_id);
        assert_eq!(t.ended_inside(A, SERVER, 7), None);
        assert_eq!(t.ended_outside(1, POOL, SERVER, c.outside_id), None);
        t.end_inside(A, SERVER, 7).unwrap();
        assert_eq!(t.ended_inside(A, SERVER, 7), Some(&again), "the latest");
        // A live call that took the ended call's translated ID: not given out twice.
        let mut u = Calls::new(4);
        let c = *u.announce((A, 7), SERVER, POOL, 1, 10, all).unwrap();
        u.end_inside(A, SERVER, 7).unwrap();
        u.cursor = c.outside_id;
        let d = *u.announce((B, 9), SERVER, POOL, 2, 12, all).unwrap();
        assert_eq!(d.outside_id, c.outside_id);
        assert_eq!(u.ended_inside(A, SERVER, 7), None);
        // Room for the last ENDED_ROOM ends, the oldest forgotten first.
        for id in 100..100 + ENDED_ROOM as u16 + 1 {
            t.announce((A, id), SERVER, POOL, 1, 20, all).unwrap();
            t.end_inside(A, SERVER, id).unwrap();
        }
        assert_eq!(t.ended_inside(A, SERVER, 100), None);
        assert!(t.ended_inside(A, SERVER, 101).is_some());
        assert_eq!(t.ended_inside(A, SERVER, 7), None);
    }

    #[test]
    fn a_closing_call_lingers_and_a_disconnect_ends_only_its_control_sessions_call() {
        let mut t = Calls::new(8);
        let a = *t.announce((A, 7), SERVER, POOL, 1, 0, all).unwrap();
        let b = *t.announce((B, 7), SERVER, POOL, 2, 0, all).unwrap();
        // Another control session's call is not ended by its translated ID.
        assert!(t.end_outside_of(1, POOL, SERVER, b.outside_id).is_none());
        assert_eq!(t.len(), 2);
        // Closing keeps its first second; GRE still finds it but does not extend it.
        assert_eq!(t.close_inside(A, SERVER, 7, 10).unwrap().closing, Some(10));
        assert_eq!(t.close_inside(A, SERVER, 7, 12).unwrap().closing, Some(10));
        assert!(t.inbound(POOL, SERVER, a.outside_id, 15).is_some());
        assert_eq!(t.sweep(19, 300, 10, |_| false), (0, 0));
        assert_eq!(t.sweep(20, 300, 10, |_| false), (1, 0));
        assert!(t.inbound(POOL, SERVER, a.outside_id, 20).is_none());
        // A closed control session marks its calls closing at the sweep.
        assert_eq!(t.sweep(30, 300, 10, |c| c == 2), (0, 0));
        assert_eq!(t.get_inside(B, SERVER, 7).unwrap().closing, Some(30));
        assert_eq!(t.sweep(40, 300, 10, |_| false), (1, 0));
        assert!(t.is_empty());
        // Ended by its translated ID on its own control session.
        let a = *t.announce((A, 8), SERVER, POOL, 1, 50, all).unwrap();
        assert_eq!(
            t.end_outside_of(1, POOL, SERVER, a.outside_id)
                .unwrap()
                .inside_id,
            8
        );
        assert!(t.is_empty());
    }

    #[test]
    fn the_sync_journal_notes_each_change_and_install_keeps_the_given_translation() {
        let mut t = Calls::new(4);
        t.sync_journal(true);
        let a = *t.announce((A, 7), SERVER, POOL, 1, 0, all).unwrap();
        t.bind_outside(POOL, SERVER, a.outside_id, 0x500, 1)
            .unwrap();
        t.close_inside(A, SERVER, 7, 2).unwrap();
        t.close_inside(A, SERVER, 7, 3).unwrap();
        t.end_inside(A, SERVER, 7).unwrap();
        let mut seen = vec![];
        assert!(!t.sync_take(&mut |live, c| {
            seen.push((live, c.bound, c.closing));
            true
        }));
        assert_eq!(
            seen,
            [
                (true, false, None),
                (true, true, None),
                (true, true, Some(2)),
                (false, true, Some(2))
            ]
        );

        // A standby's table: the translation given, the binding with it.
        let mut s = Calls::new(2);
        let c = Call {
            server_id: 0x500,
            bound: true,
            ..a
        };
        s.install(c).unwrap();
        assert_eq!(
            s.outbound(A, SERVER, 0x500, 5).unwrap().outside_id,
            a.outside_id
        );
        assert_eq!(
            s.inbound(POOL, SERVER, a.outside_id, 5).unwrap().inside_id,
            7
        );
        // Again with a new server call ID: rebound, still one call.
        s.install(Call {
            server_id: 0x600,
            ..c
        })
        .unwrap();
        assert!(s.outbound(A, SERVER, 0x500, 5).is_none());
        assert!(s.outbound(A, SERVER, 0x600, 5).is_some());
        assert_eq!(s.len(), 1);
        // Another subscriber's call on the same translated ID: refused.
        assert_eq!(
            s.install(Call { inside: B, ..c }).err(),
            Some(Refused::NoId)
        );
        // The same call with another translation replaces it.
        let moved = Call {
            outside_id: a.outside_id + 1,
            ..c
        };
        s.install(moved).unwrap();
        assert!(s.inbound(POOL, SERVER, a.outside_id, 6).is_none());
        assert!(s.inbound(POOL, SERVER, a.outside_id + 1, 6).is_some());
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_rebind_replaces_the_server_call_id() {
        let mut t = Calls::new(4);
        let a = *t.announce((A, 7), SERVER, POOL, 1, 0, all).unwrap();
        t.bind_outside(POOL, SERVER, a.outside_id, 0x500, 0)
            .unwrap();
        t.bind_outside(POOL, SERVER, a.outside_id, 0x600, 0)
            .unwrap();
        assert!(t.outbound(A, SERVER, 0x500, 0).is_none());
        assert!(t.outbound(A, SERVER, 0x600, 0).is_some());
        assert!(t
            .bind_outside(POOL, SERVER, a.outside_id ^ 1, 1, 0)
            .is_none());
    }
}
