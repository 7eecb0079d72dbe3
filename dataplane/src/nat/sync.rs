//! HA state sync, the NAT side: the tables as sync records (a bulk walk, and a journal
//! of sessions created and ended for the incremental updates), and a standby's
//! installing of what it receives, with the same outside address and port, never
//! choosing one of its own.
//!
//! Kept apart from the translation: the journal costs the packet path one test of a
//! flag where a session is created or released (never on the fast path of an
//! existing session), and is written only into room reserved when sync is switched on.

use super::*;
use crate::ha::wire::{
    self, mapping_kind, Block, CallRec, ExpectRec, Item, MappingRec, Pair, Record, SessionRec,
};

/// Room for journal entries between two drains by the worker loop.
pub const JOURNAL_ROOM: usize = 8192;

/// Room for changes of PCP/NAT-PMP mappings and expectations between two drains.
pub const PIN_ROOM: usize = 4096;

/// A change of what pins a mapping without a session (a PCP or NAT-PMP mapping, an
/// ALG expectation), noted for the incremental sync. What was made or changed is
/// named, and sent as it is when the journal is drained; what ended is its record.
#[derive(Clone, Copy, Debug)]
pub enum Pin {
    /// The expectation on this outside key was made or changed.
    Expect(Key),
    /// The PCP/NAT-PMP mapping of this mapping record was made or refreshed.
    Mapping(u32),
    /// One ended.
    End(Record),
}

/// Pushes `p` into the room reserved in `pins` (never beyond it: no allocation);
/// false, nothing pushed, when it is full.
fn push_pin(pins: &mut Vec<Pin>, p: Pin) -> bool {
    let room = pins.len() < pins.capacity();
    if room {
        pins.push(p);
    }
    room
}

/// Connections with a synced sequence adjustment a standby's worker keeps at most
/// (as many as a worker's contract path follows: `alg_contract::ADJUSTED`).
pub const ADJUSTED_ROOM: usize = 4096;

/// Why a record was not installed (each counted by the caller).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstallError {
    /// Its outside address is not in this worker's pool.
    NotInPool,
    /// Its outside port is held by another mapping here.
    PortTaken,
    /// Its port block is held by another subscriber, or is not this worker's.
    BlockTaken,
    /// A table (sessions, mappings, subscribers, expectations) is full.
    TableFull,
    /// An expectation whose master session is not here, or a PPTP call whose
    /// control session is not.
    NoMaster,
    /// A PPTP call whose translated call ID another call holds here.
    CallTaken,
}

/// Where a bulk walk is: a phase (subscribers, sessions, PCP mappings,
/// expectations, PPTP calls) and a slot in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncCursor {
    phase: u8,
    at: u32,
    /// Within a subscriber: the next of its records (0 its pairing, then blocks).
    sub_item: u16,
    /// Where a walk beyond the NAT's tables is (the ALG connections' adjustments,
    /// [`crate::alg::AlgControl::sync_walk`]).
    pub(crate) extra: usize,
}

impl Nat {
    /// Switches the journal of created and ended sessions on (the active's source of
    /// incremental updates) or off; its room is reserved once.
    pub fn sync_journal(&mut self, on: bool) {
        self.journal_on = on;
        if on && self.journal.capacity() < JOURNAL_ROOM {
            self.journal.reserve_exact(JOURNAL_ROOM);
        }
        if on && self.pins.capacity() < PIN_ROOM {
            self.pins.reserve_exact(PIN_ROOM);
        }
        if !on {
            self.journal.clear();
            self.pins.clear();
        }
        self.calls.sync_journal(on);
    }

    /// Notes session `s` created (`end` false) or ended, if the journal is on. Past
    /// its room the entry is dropped and counted: the sync link then asks for a bulk
    /// sync.
    #[inline]
    pub(super) fn note(&mut self, end: bool, s: &Session) {
        // Address-only sessions (GRE, ESP, ...) are not synced: a standby's worker
        // takes what lives on its outside ports, and they have none (docs/design.md).
        if !self.journal_on || super::portless(s.proto) {
            return;
        }
        if self.journal.len() < self.journal.capacity() {
            // A NAT64 host's address now: its handle may be gone when the journal is
            // drained.
            self.journal.push((end, *s, self.host6(s.in_addr)));
        } else {
            self.journal_lost = true;
            self.counters.ha_journal_full.inc();
        }
    }

    /// Notes a change of a PCP mapping or an expectation, if the journal is on; past
    /// its room it is dropped and counted (the sync link then asks for a bulk sync).
    fn note_pin(&mut self, p: Pin) {
        if self.journal_on && !push_pin(&mut self.pins, p) {
            self.pins_lost();
        }
    }

    /// A change found no room in the pins' journal: counted, and the peer will need
    /// a bulk sync.
    fn pins_lost(&mut self) {
        self.journal_lost = true;
        self.counters.ha_journal_full.inc();
    }

    /// Notes the expectation on outside key `k` made or changed.
    pub(super) fn note_expect(&mut self, k: &Key) {
        self.note_pin(Pin::Expect(*k));
    }

    /// Notes the expectations of `master` tagged `tag` changed.
    pub(super) fn note_expects_of(&mut self, master: u32, tag: u32) {
        if !self.journal_on {
            return;
        }
        let mut lost = false;
        for (k, _) in self
            .expects
            .iter()
            .filter(|(_, e)| e.master == master && e.tag == tag)
        {
            lost |= !push_pin(&mut self.pins, Pin::Expect(*k));
        }
        if lost {
            self.pins_lost();
        }
    }

    /// Notes expectation `e` on outside key `k` ended (removed from the table, its
    /// mapping not yet unpinned). One of a NAT64 session was never sent.
    pub(super) fn note_expect_end(&mut self, k: &Key, e: &Expect) {
        if !self.journal_on {
            return;
        }
        if let Some(rec) = self.expect_body(k, e) {
            self.note_pin(Pin::End(Record::Expect(rec)));
        }
    }

    /// Notes the PCP/NAT-PMP mapping of mapping record `m` made or refreshed.
    pub(super) fn note_pcp(&mut self, m: u32) {
        self.note_pin(Pin::Mapping(m));
    }

    /// Notes PCP/NAT-PMP mapping `e` ended.
    pub(super) fn note_pcp_end(&mut self, e: &pcp::PcpEntry) {
        if self.journal_on {
            self.note_pin(Pin::End(Record::Mapping(pcp_rec(e, e.expires))));
        }
    }

    /// Hands the journal's entries to `push` (oldest first) until it returns false,
    /// as sync items at `now`. Returns true when entries were lost since the last
    /// call (the peer needs a bulk sync).
    pub fn sync_drain(&mut self, now: u32, push: &mut dyn FnMut(Item) -> bool) -> bool {
        let mut n = 0;
        while n < self.journal.len() {
            let (end, s, host6) = self.journal[n];
            if !push(Item {
                end,
                record: Record::Session(session_rec(&s, host6, now)),
            }) {
                break;
            }
            n += 1;
        }
        let all = n == self.journal.len();
        self.journal.drain(..n);
        let mut lost = std::mem::take(&mut self.journal_lost);
        // Then the PCP mappings and expectations (after the sessions: an
        // expectation's master session is journaled before it, and a session an
        // expectation let in before the expectation's end).
        if all {
            let mut n = 0;
            while n < self.pins.len() {
                let item = match self.pins[n] {
                    Pin::Expect(k) => self
                        .expects
                        .get(&k)
                        .and_then(|e| self.expect_rec(&k, e, now))
                        .map(|r| Item {
                            end: false,
                            record: Record::Expect(r),
                        }),
                    Pin::Mapping(m) => self.pcp.get(&m).map(|e| Item {
                        end: false,
                        record: Record::Mapping(pcp_rec(e, now)),
                    }),
                    Pin::End(record) => Some(Item { end: true, record }),
                };
                // What was made and is gone already: its end follows.
                if let Some(it) = item {
                    if !push(it) {
                        break;
                    }
                }
                n += 1;
            }
            self.pins.drain(..n);
        }
        // Then the PPTP calls made, bound, closing or ended since (after the sessions:
        // a call's control session is created before it and ends with or after it).
        if all {
            let sessions = &self.sessions;
            lost |= self.calls.sync_take(&mut |live, c| {
                match call_rec(c, control_of(sessions, c), now) {
                    Some(r) => push(Item {
                        end: !live,
                        record: Record::Call(r),
                    }),
                    // Its control session ended since: so did the call, whose end
                    // follows in the journal.
                    None if live => true,
                    None => push(Item {
                        end: true,
                        record: Record::Call(call_rec(c, Some((0, 0)), now).expect("given")),
                    }),
                }
            });
        }
        lost
    }

    /// Session `i` as a sync record at `now`, if alive.
    pub fn sync_session(&self, i: u32, now: u32) -> Option<SessionRec> {
        self.session_at(i)
            .filter(|s| !super::portless(s.proto))
            .map(|s| session_rec(s, self.host6(s.in_addr), now))
    }

    /// The next records of a bulk walk from `cur`, handed to `push` until it returns
    /// false or `budget` slots were examined; true once the whole state was walked. Expectations are walked in the
    /// table's own order: one created or ended during the walk may be missed by it
    /// (the journal and the next walk catch sessions; an expectation lives seconds).
    pub fn sync_walk(
        &self,
        cur: &mut SyncCursor,
        now: u32,
        budget: u32,
        push: &mut dyn FnMut(Item) -> bool,
    ) -> bool {
        let mut put = |r: Record| {
            push(Item {
                end: false,
                record: r,
            })
        };
        for _ in 0..budget {
            match cur.phase {
                0 => {
                    let Some(s) = self.subs.get(cur.at as usize) else {
                        cur.phase = 1;
                        cur.at = 0;
                        continue;
                    };
                    // A NAT64 subscriber's key is this node's own (its sessions,
                    // which carry their hosts' addresses, bring it on the standby).
                    let live = self.subscriber_at(cur.at).is_some() && !hosts6::is_key(s.addr);
                    let blocks = if live { self.blocks_of(cur.at) } else { &[] };
                    let k = usize::from(cur.sub_item);
                    let rec = if !live {
                        None
                    } else if k == 0 {
                        (s.pool != NO_POOL).then(|| {
                            Record::Pair(Pair {
                                inside: s.addr,
                                outside: self.pool.addr(usize::from(s.pool)),
                            })
                        })
                    } else {
                        blocks.get(k - 1).map(|&e| {
                            Record::Block(Block {
                                inside: s.addr,
                                outside: self.pool.addr((e >> 16) as usize),
                                first_port: self.pool.layout.block_start(e as u16),
                            })
                        })
                    };
                    if let Some(r) = rec {
                        if !put(r) {
                            return false;
                        }
                    }
                    if live && k < blocks.len() {
                        cur.sub_item += 1;
                    } else {
                        cur.sub_item = 0;
                        cur.at += 1;
                    }
                }
                1 => {
                    if cur.at >= self.session_slots() {
                        cur.phase = 2;
                        cur.at = 0;
                        continue;
                    }
                    if let Some(r) = self.sync_session(cur.at, now) {
                        if !put(Record::Session(r)) {
                            return false;
                        }
                    }
                    cur.at += 1;
                }
                2 => {
                    if cur.at as usize >= self.mappings.len() {
                        cur.phase = 3;
                        cur.at = 0;
                        continue;
                    }
                    let r = self.map_base + cur.at;
                    let rec = if self.statics.contains(&r) {
                        Some(self.static_rec(cur.at))
                    } else {
                        self.pcp.get(&cur.at).map(|e| pcp_rec(e, now))
                    };
                    if let Some(m) = rec {
                        if !put(Record::Mapping(m)) {
                            return false;
                        }
                    }
                    cur.at += 1;
                }
                3 => {
                    let Some((k, e)) = self.expects.iter().nth(cur.at as usize) else {
                        cur.phase = 4;
                        cur.at = 0;
                        continue;
                    };
                    if let Some(x) = self.expect_rec(k, e, now) {
                        if !put(Record::Expect(x)) {
                            return false;
                        }
                    }
                    cur.at += 1;
                }
                4 => {
                    if cur.at >= self.calls.slot_count() {
                        cur.phase = 5;
                        return true;
                    }
                    if let Some(c) = self.calls.slot(cur.at) {
                        if let Some(r) = call_rec(c, control_of(&self.sessions, c), now) {
                            if !put(Record::Call(r)) {
                                return false;
                            }
                        }
                    }
                    cur.at += 1;
                }
                _ => return true,
            }
        }
        false
    }

    fn static_rec(&self, m: u32) -> MappingRec {
        let map = &self.mappings[m as usize];
        MappingRec {
            kind: mapping_kind::STATIC,
            proto: map.proto(),
            inside: (map.in_addr, map.in_port),
            outside: (map.out_addr(&self.pool), map.out_port),
            ..MappingRec::default()
        }
    }

    fn expect_rec(&self, k: &Key, e: &Expect, now: u32) -> Option<ExpectRec> {
        let m = self.session_at(e.master)?;
        let body = self.expect_body(k, e)?;
        // NAT64: the master session is of the same host (a handle of this node's,
        // which the record names once, by the host's address).
        let nat64 = hosts6::is_host(m.in_addr) || body.host6.is_some();
        if nat64 && m.in_addr != body.inside.0 {
            return None;
        }
        Some(ExpectRec {
            remaining: e.until.saturating_sub(now),
            master: (m.proto, (m.in_addr, m.in_port), (m.rem_addr, m.rem_port)),
            ..body
        })
    }

    /// Expectation `e` on outside key `k` as a record without its master session and
    /// time left (what an end needs); a NAT64 host's with the host's address (its
    /// handle here names another host, or none, on the peer).
    fn expect_body(&self, k: &Key, e: &Expect) -> Option<ExpectRec> {
        let map = &self.mappings[e.mapping as usize];
        let host6 = if hosts6::is_host(map.in_addr) {
            Some(self.host6(map.in_addr)?)
        } else {
            None
        };
        Some(ExpectRec {
            proto: k.proto,
            class: e.class,
            alg: e.alg,
            keep: e.keep,
            inside: (map.in_addr, map.in_port),
            outside: (k.a, k.pa),
            remote: e.remote,
            tag: e.tag,
            host6,
            ..ExpectRec::default()
        })
    }

    /// A bulk sync begins (a standby): everything received before is dropped, the
    /// bulk brings the active's whole state again. Every session ends (its port
    /// freed at once), every session record is free again and the timer wheel empty;
    /// PCP mappings and expectations end. Static mappings stay (they come from the
    /// configuration, as on the active).
    pub fn sync_flush(&mut self, now: u32) {
        let keys: Vec<Key> = self.expects.keys().copied().collect();
        for k in keys {
            self.remove_expectation(&k, now);
        }
        let pcps: Vec<u32> = self.pcp.keys().copied().collect();
        for m in pcps {
            if self.pcp.remove(&m).is_some() {
                self.unpin_mapping(m, now, true);
            }
        }
        self.counters.pcp_mappings_active.set(0);
        let q = self.pool.set_quarantine_secs(0);
        for i in 0..self.session_slots() {
            if self.session_at(i).is_some() {
                self.release_session(i, now);
            }
        }
        self.pool.set_quarantine_secs(q);
        debug_assert_eq!(self.live_sessions, 0);
        // No session is left: every record goes back on the free list, the wheel
        // starts empty (released records need not wait there for their deadline).
        let cap = self.sessions.len();
        for (i, s) in self.sessions.iter_mut().enumerate() {
            s.next = if i + 1 < cap { i as u32 + 1 } else { NIL };
        }
        self.free_session = if cap > 0 { 0 } else { NIL };
        self.wheel = Wheel::new(wheel_slots(&self.params), now);
        // The bulk brings the adjustments again, after the sessions.
        self.adjusted_in.clear();
    }

    /// A standby: notes the TCP connection of adjustment `r` if its session is this
    /// worker's. When the room is full, the connections whose session ended go first.
    /// Whether this table holds the TCP session of `inside` with `remote` (a standby:
    /// whose ALG adjustment its worker's ALG stream engine installs).
    pub fn holds_tcp(&self, inside: (u32, u16), remote: (u32, u16)) -> bool {
        self.session_of(crate::wire::ipv4::PROTO_TCP, inside, remote)
            .is_some()
    }

    /// The session of protocol `proto` of `inside` with `remote`, if this table
    /// holds it.
    pub fn session_of(&self, proto: u8, inside: (u32, u16), remote: (u32, u16)) -> Option<u32> {
        self.session_by_in_key(&Key {
            proto,
            a: inside.0,
            pa: inside.1,
            b: remote.0,
            pb: remote.1,
        })
    }

    /// A sequence adjustment (an ALG engine's record) as the sync item sent: a NAT64
    /// connection's names its host by the host's address (None when this node has no
    /// handle for it any more: its connection is gone).
    pub fn seq_item_out(&self, r: wire::SeqAdjRec) -> Option<Item> {
        let host6 = if hosts6::is_host(r.inside.0) {
            Some(self.host6(r.inside.0)?)
        } else {
            None
        };
        Some(Item {
            end: false,
            record: Record::SeqAdj(wire::SeqAdjRec { host6, ..r }),
        })
    }

    /// A received sequence adjustment's record with this node's handle for its NAT64
    /// host (its control session, synced before it, took one); None without one.
    pub fn seq_rec_in(&self, r: &wire::SeqAdjRec) -> Option<wire::SeqAdjRec> {
        match r.host6 {
            None => Some(*r),
            Some(a6) => Some(wire::SeqAdjRec {
                inside: (self.hosts6.find(a6)?, r.inside.1),
                ..*r
            }),
        }
    }

    fn note_adjusted(&mut self, r: &wire::SeqAdjRec) -> Result<(), InstallError> {
        let key = (r.inside.0, r.inside.1, r.remote.0, r.remote.1);
        let session = |k: &(u32, u16, u32, u16)| Key {
            proto: crate::wire::ipv4::PROTO_TCP,
            a: k.0,
            pa: k.1,
            b: k.2,
            pb: k.3,
        };
        if self.session_by_in_key(&session(&key)).is_none() || self.adjusted_in.contains(&key) {
            return Ok(());
        }
        if self.adjusted_in.len() >= ADJUSTED_ROOM {
            let mut keys = std::mem::take(&mut self.adjusted_in);
            keys.retain(|k| self.session_by_in_key(&session(k)).is_some());
            self.adjusted_in = keys;
        }
        if self.adjusted_in.len() >= ADJUSTED_ROOM {
            return Err(InstallError::TableFull);
        }
        self.adjusted_in.push(key);
        Ok(())
    }

    /// The sessions whose sequence adjustment a standby was synced (still alive),
    /// each handed to `f` once, then forgotten: at promotion, so that the worker's
    /// contract path sends their frames to its ALG stream engine, which holds the
    /// adjustment (`alg_contract::Streams::promote`).
    pub fn sync_adjusted(&mut self, f: &mut dyn FnMut(&Nat, u32)) {
        let mut keys = std::mem::take(&mut self.adjusted_in);
        for &(a, pa, b, pb) in &keys {
            let k = Key {
                proto: crate::wire::ipv4::PROTO_TCP,
                a,
                pa,
                b,
                pb,
            };
            if let Some(i) = self.session_by_in_key(&k) {
                f(self, i);
            }
        }
        keys.clear();
        self.adjusted_in = keys;
    }

    /// Installs (or, `it.end`, removes) what a standby received, at `now`, with the
    /// outside address and port it names, if this worker owns that port (else it is
    /// another worker's: nothing is done).
    pub fn sync_install(&mut self, it: &Item, now: u32) -> Result<(), InstallError> {
        // With several workers every worker is handed every record: each takes what
        // lives on its outside ports (where the replies come), as the active's did.
        let outside = match &it.record {
            Record::Session(x) => Some(x.outside),
            Record::Mapping(x) => Some(x.outside),
            Record::Expect(x) => Some(x.outside),
            // A call is the worker's whose share its translated call ID is in (as a
            // port), which is its control session's.
            Record::Call(x) => Some(x.outside),
            _ => None,
        };
        if let Some((addr, port)) = outside {
            if self.pool.owner(addr, port).unwrap_or(0) != self.pool.worker() {
                return Ok(());
            }
        }
        match (it.end, &it.record) {
            // A pairing of a subscriber with no state here (on the active it may hold
            // only ports in quarantine, which a standby does not keep) is not taken:
            // its next session brings it.
            (false, Record::Pair(p)) => {
                let a = self
                    .pool
                    .index_of(p.outside)
                    .ok_or(InstallError::NotInPool)?;
                if let Some(sub) = self.subscriber_by_addr(p.inside) {
                    self.pair_with(sub, a);
                }
                Ok(())
            }
            (true, Record::Pair(_)) => Ok(()),
            // Blocks follow the ports of what is installed (a session's, a PCP
            // mapping's, an expectation's): a block the active holds only for ports in
            // quarantine would never be released here.
            (false, Record::Block(b)) => {
                self.pool
                    .index_of(b.outside)
                    .ok_or(InstallError::NotInPool)?;
                Ok(())
            }
            // A block ends on the standby as on the active: with its last port.
            (true, Record::Block(_)) => Ok(()),
            (false, Record::Session(s)) => self.install_session(s, now),
            (true, Record::Session(s)) => {
                let mut key = rec_in_key(s);
                if let Some(a6) = s.host6 {
                    match self.hosts6.find(a6) {
                        Some(h) => key.a = h,
                        None => return Ok(()),
                    }
                }
                if let Some(i) = self.session_by_in_key(&key) {
                    self.free_session_at_sync(i, now);
                }
                Ok(())
            }
            (end, Record::Mapping(m)) => self.install_mapping_rec(end, m, now),
            (false, Record::Expect(e)) => self.install_expect(e, now),
            (true, Record::Expect(e)) => {
                let k = Key {
                    proto: e.proto,
                    a: e.outside.0,
                    pa: e.outside.1,
                    b: 0,
                    pb: 0,
                };
                self.remove_expectation(&k, now);
                Ok(())
            }
            // The adjustment is installed in the ALG stream engine of the worker
            // holding the session (crate::alg::AlgControl::sync_install), which
            // notes here that its frames are to go there once promoted
            // (Nat::sync_adjusted).
            (false, Record::SeqAdj(r)) => self.note_adjusted(r),
            (true, Record::SeqAdj(_)) => Ok(()),
            (false, Record::Call(c)) => self.install_call(c, now),
            (true, Record::Call(c)) => {
                let known = self.calls.get_inside(c.inside.0, c.server.0, c.inside.1);
                if known.is_some_and(|k| (k.outside, k.outside_id) == c.outside) {
                    self.calls.end_inside(c.inside.0, c.server.0, c.inside.1);
                }
                Ok(())
            }
        }
    }

    /// A standby installs PPTP call `r` on its control session (which the records
    /// before it brought), with the translated call ID it names.
    fn install_call(&mut self, r: &CallRec, now: u32) -> Result<(), InstallError> {
        let control = self
            .session_by_in_key(&Key {
                proto: crate::wire::ipv4::PROTO_TCP,
                a: r.inside.0,
                pa: r.control.0,
                b: r.server.0,
                pb: r.control.1,
            })
            .ok_or(InstallError::NoMaster)?;
        let call = gre::Call {
            inside: r.inside.0,
            inside_id: r.inside.1,
            outside: r.outside.0,
            outside_id: r.outside.1,
            server: r.server.0,
            server_id: r.server.1,
            bound: r.flags & wire::CALL_BOUND != 0,
            control,
            seen: now.saturating_sub(r.idle),
            closing: (r.flags & wire::CALL_CLOSING != 0).then(|| now.saturating_sub(r.closing)),
        };
        self.calls.install(call).map_err(|e| match e {
            gre::Refused::Full => InstallError::TableFull,
            gre::Refused::NoId => InstallError::CallTaken,
        })
    }

    /// Pairs subscriber `sub` with pool address `a` if it has no pairing yet.
    fn pair_with(&mut self, sub: u32, a: usize) {
        let s = &mut self.subs[sub as usize];
        if s.pool == NO_POOL {
            s.pool = a as u16;
            self.pool.addrs[a].subscribers += 1;
        }
    }

    /// Under port-block allocation, gives subscriber `sub` the block of `port` on
    /// address `a` (if it does not hold it already).
    fn hold_block(&mut self, sub: u32, a: usize, port: u16) -> Result<(), InstallError> {
        if self.block_room == 0 {
            return Ok(());
        }
        let b = self
            .pool
            .layout
            .block_of(port)
            .ok_or(InstallError::BlockTaken)?;
        let entry = (a as u32) << 16 | u32::from(b);
        if self.blocks_of(sub).contains(&entry) {
            return Ok(());
        }
        let held = self.subs[sub as usize].block_count();
        if held >= self.block_room || !self.pool.take_block(a, b, sub) {
            return Err(InstallError::BlockTaken);
        }
        self.sub_blocks[sub as usize * self.block_room + held] = entry;
        self.subs[sub as usize].blocks += 1;
        self.counters.blocks_active.add(1);
        Ok(())
    }

    fn install_session(&mut self, r: &SessionRec, now: u32) -> Result<(), InstallError> {
        let Some(a6) = r.host6 else {
            return self.install_session_v4(r, now);
        };
        // NAT64: this node's handle for the host, taken now if it has none.
        let known = self.hosts6.find(a6);
        let h = match known {
            Some(h) => h,
            None => self
                .hosts6
                .handle(a6)
                .map_err(|_| InstallError::TableFull)?,
        };
        let local = SessionRec {
            inside: (h, r.inside.1),
            ..*r
        };
        let result = self.install_session_v4(&local, now);
        if known.is_none() {
            if result.is_err() {
                self.hosts6.forget_unused(h);
            }
            self.count_hosts6();
        }
        result
    }

    fn install_session_v4(&mut self, r: &SessionRec, now: u32) -> Result<(), InstallError> {
        let key = rec_in_key(r);
        let flags = r.state | r.alg << 4;
        let last_seen = now.saturating_sub(r.idle);
        if let Some(i) = self.session_by_in_key(&key) {
            let s = self.sessions[i as usize];
            if (s.out_addr, s.out_port) == r.outside {
                // Known: its state and timer.
                let s = &mut self.sessions[i as usize];
                s.flags = s.flags & (INBOUND | ANSWERED) | flags & !(INBOUND | ANSWERED);
                s.last_seen = last_seen;
                return Ok(());
            }
            // Another outside endpoint (a session ended and came back while messages
            // were lost): the active's is the one.
            self.free_session_at_sync(i, now);
        }
        if self.free_session == NIL {
            return Err(InstallError::TableFull);
        }
        let a = self
            .pool
            .index_of(r.outside.0)
            .ok_or(InstallError::NotInPool)?;
        // A NAT64 host's handle (which the martian check of an inside address would
        // refuse) finds its prefix's subscriber by its key.
        let sub = if hosts6::is_host(r.inside.0) {
            self.find_or_add_subscriber_hashed(r.inside.0, 0)
        } else {
            self.find_or_add_subscriber(r.inside.0)
        }
        .map_err(|_| InstallError::TableFull)?;
        let result = self.install_session_for(sub, a, key, r, flags, last_seen);
        if result.is_err() {
            self.maybe_remove_subscriber(sub);
        }
        result
    }

    fn install_session_for(
        &mut self,
        sub: u32,
        a: usize,
        key: Key,
        r: &SessionRec,
        flags: u8,
        last_seen: u32,
    ) -> Result<(), InstallError> {
        self.pair_with(sub, a);
        self.hold_block(sub, a, r.outside.1)?;
        let mkey = self.mapping_key(&key);
        let m = match self.mapping_by_in_key(&mkey) {
            Some(mr) => {
                let o = self.mapping_out_key(mr);
                if (o.a, o.pa) != r.outside {
                    return Err(InstallError::PortTaken);
                }
                self.mapping_record(mr)
                    .map_err(|_| InstallError::TableFull)?
            }
            None => {
                if self.map_in.is_full() {
                    return Err(InstallError::TableFull);
                }
                if !self.pool.take(a, r.proto, r.outside.1) {
                    return Err(InstallError::PortTaken);
                }
                self.subs[sub as usize].mappings += 1;
                self.bib_event(event::BIB_CREATE, r.proto, r.inside, r.outside);
                FOLDED | sub
            }
        };
        let mut extra = 0;
        if r.flags & wire::FLAG_INBOUND != 0 {
            extra |= INBOUND;
            if r.flags & wire::FLAG_ANSWERED != 0 {
                extra |= ANSWERED;
            }
        }
        let i = self.new_session(Session {
            in_addr: key.a,
            in_port: key.pa,
            out_addr: r.outside.0,
            out_port: r.outside.1,
            rem_addr: key.b,
            rem_port: key.pb,
            proto: key.proto,
            flags: flags | extra,
            last_seen,
            mapping: m,
            next: NIL,
        });
        if m & FOLDED != 0 {
            self.index_mapping(i);
            self.counters.mappings_active.set(self.map_out.len() as u64);
        }
        if extra & INBOUND != 0 {
            self.link_inbound(sub, i, usize::from(extra & ANSWERED != 0));
        }
        Ok(())
    }

    /// Ends session `i` now (a standby told so, or replacing it). Its record stays on
    /// the timer wheel until its deadline comes, then the expiry frees it.
    fn free_session_at_sync(&mut self, i: u32, now: u32) {
        self.release_session(i, now);
    }

    fn install_mapping_rec(
        &mut self,
        end: bool,
        m: &MappingRec,
        now: u32,
    ) -> Result<(), InstallError> {
        if m.kind == mapping_kind::STATIC {
            // Static mappings come from the configuration, the same on both.
            return Ok(());
        }
        let mkey = Key {
            proto: m.proto,
            a: m.inside.0,
            pa: m.inside.1,
            b: 0,
            pb: 0,
        };
        let existing = self
            .mapping_by_in_key(&mkey)
            .and_then(|r| r.checked_sub(self.map_base));
        if end {
            if let Some(mi) = existing {
                if let Some(e) = self.pcp.remove(&mi) {
                    let _ = e;
                    self.unpin_mapping(mi, now, false);
                    self.counters.pcp_mappings_active.set(self.pcp.len() as u64);
                }
            }
            return Ok(());
        }
        if let Some(mi) = existing {
            if let Some(e) = self.pcp.get_mut(&mi) {
                e.expires = now.saturating_add(m.remaining);
                e.n_filters = m.n_filters;
                fill_filters(e, m);
                return Ok(());
            }
        }
        if self.pcp.len() >= pcp::MAX_PCP_ENTRIES {
            return Err(InstallError::TableFull);
        }
        let a = self
            .pool
            .index_of(m.outside.0)
            .ok_or(InstallError::NotInPool)?;
        let sub = self
            .find_or_add_subscriber(m.inside.0)
            .map_err(|_| InstallError::TableFull)?;
        let mi = match self.mapping_at(sub, a, mkey, m.outside) {
            Ok(mi) => mi,
            Err(e) => {
                self.maybe_remove_subscriber(sub);
                return Err(e);
            }
        };
        self.mappings[mi as usize].sessions += 1;
        let mut e = pcp::PcpEntry {
            mapping: mi,
            proto: m.proto,
            inside: m.inside,
            outside: m.outside,
            expires: now.saturating_add(m.remaining),
            nonce: m.nonce,
            filters: Default::default(),
            n_filters: m.n_filters,
            peer: m.kind == mapping_kind::PEER,
        };
        fill_filters(&mut e, m);
        self.pcp.insert(mi, e);
        self.counters.pcp_mappings_active.set(self.pcp.len() as u64);
        Ok(())
    }

    fn install_expect(&mut self, x: &ExpectRec, now: u32) -> Result<(), InstallError> {
        // NAT64: this node's handle for the host, which its master session (installed
        // before it) took.
        let local;
        let x = match x.host6 {
            None => x,
            Some(a6) => {
                let h = self.hosts6.find(a6).ok_or(InstallError::NoMaster)?;
                local = ExpectRec {
                    inside: (h, x.inside.1),
                    master: (x.master.0, (h, x.master.1 .1), x.master.2),
                    ..*x
                };
                &local
            }
        };
        let (mp, mi, mr) = x.master;
        let master = self
            .session_by_in_key(&Key {
                proto: mp,
                a: mi.0,
                pa: mi.1,
                b: mr.0,
                pb: mr.1,
            })
            .ok_or(InstallError::NoMaster)?;
        let sub = self
            .master_sub(master, x.inside.0)
            .ok_or(InstallError::NoMaster)?;
        let a = self
            .pool
            .index_of(x.outside.0)
            .ok_or(InstallError::NotInPool)?;
        let mkey = Key {
            proto: x.proto,
            a: x.inside.0,
            pa: x.inside.1,
            b: 0,
            pb: 0,
        };
        let m = self.mapping_at(sub, a, mkey, x.outside)?;
        let req = ExpectReq {
            proto: x.proto,
            in_addr: x.inside.0,
            in_port: x.inside.1,
            remote: x.remote,
            class: x.class,
            tag: x.tag,
            secs: x.remaining.max(1),
            keep: x.keep,
            alg: x.alg,
        };
        self.pin_expectation(m, master, &req, now)
            .map(|_| ())
            .ok_or(InstallError::TableFull)
    }

    /// The mapping record of `mkey` at outside endpoint `outside` (address index
    /// `a`) for a pin (a PCP mapping, an expectation): the existing mapping (given a
    /// record if folded), else a new one on that very port.
    fn mapping_at(
        &mut self,
        sub: u32,
        a: usize,
        mkey: Key,
        outside: (u32, u16),
    ) -> Result<u32, InstallError> {
        if let Some(r) = self.mapping_by_in_key(&mkey) {
            let o = self.mapping_out_key(r);
            if (o.a, o.pa) != outside {
                return Err(InstallError::PortTaken);
            }
            return self.mapping_record(r).map_err(|_| InstallError::TableFull);
        }
        self.pair_with(sub, a);
        self.hold_block(sub, a, outside.1)?;
        if self.mapping_full() || !self.pool.take(a, mkey.proto, outside.1) {
            return Err(InstallError::PortTaken);
        }
        Ok(self.install_mapping(sub, mkey, a, outside.1))
    }

    /// A standby holds its live sessions (the expiry does not end them: the active's
    /// traffic, unseen here, keeps them alive; their end comes from the active);
    /// released records are still freed as their deadline passes.
    /// A standby also frees the ports of the sessions it is told ended at once (no
    /// quarantine: the active decides when a port is reused; this one only follows).
    pub fn sync_hold(&mut self, hold: bool) {
        self.hold = hold;
        if hold && self.adjusted_in.capacity() < ADJUSTED_ROOM {
            self.adjusted_in.reserve_exact(ADJUSTED_ROOM);
        }
        self.pool
            .set_quarantine_secs(if hold { 0 } else { self.params.quarantine_secs });
    }

    /// Gives every live session a fresh timer at `now` (a standby becoming active: its
    /// sessions' last packets went through the old active).
    pub fn sync_promote(&mut self, now: u32) {
        self.calls.refresh_all(now);
        for i in 0..self.session_slots() {
            let s = &mut self.sessions[i as usize];
            if s.mapping != NIL && s.last_seen < now {
                s.last_seen = now;
            }
        }
    }
}

fn fill_filters(e: &mut pcp::PcpEntry, m: &MappingRec) {
    for (f, &(addr, prefix, port)) in e.filters.iter_mut().zip(&m.filters) {
        *f = crate::wire::pcp::Filter { addr, prefix, port };
    }
    e.filters[usize::from(m.n_filters)..]
        .iter_mut()
        .for_each(|f| *f = Default::default());
}

fn rec_in_key(r: &SessionRec) -> Key {
    Key {
        proto: r.proto,
        a: r.inside.0,
        pa: r.inside.1,
        b: r.remote.0,
        pb: r.remote.1,
    }
}

/// A session as a sync record at `now`.
fn session_rec(s: &Session, host6: Option<u128>, now: u32) -> SessionRec {
    let mut flags = 0;
    if s.inbound() {
        flags |= wire::FLAG_INBOUND;
        if !s.unanswered() {
            flags |= wire::FLAG_ANSWERED;
        }
    }
    SessionRec {
        proto: s.proto,
        state: s.state() as u8,
        alg: s.alg(),
        flags,
        inside: (s.in_addr, s.in_port),
        outside: (s.out_addr, s.out_port),
        remote: (s.rem_addr, s.rem_port),
        idle: now.saturating_sub(s.last_seen),
        host6,
    }
}

/// The ports (subscriber's, server's) of call `c`'s control session, while it is
/// that call's (alive, PPTP, the same subscriber and server).
fn control_of(sessions: &[Session], c: &gre::Call) -> Option<(u16, u16)> {
    let s = sessions.get(c.control as usize)?;
    (s.mapping != NIL
        && s.proto == crate::wire::ipv4::PROTO_TCP
        && s.alg() == ALG_PPTP
        && (s.in_addr, s.rem_addr) == (c.inside, c.server))
        .then_some((s.in_port, s.rem_port))
}

/// Call `c` on its control connection `control` (its ports) as a sync record at
/// `now`; None without a control connection.
fn call_rec(c: &gre::Call, control: Option<(u16, u16)>, now: u32) -> Option<CallRec> {
    let mut flags = 0;
    if c.bound {
        flags |= wire::CALL_BOUND;
    }
    if c.closing.is_some() {
        flags |= wire::CALL_CLOSING;
    }
    Some(CallRec {
        inside: (c.inside, c.inside_id),
        outside: (c.outside, c.outside_id),
        server: (c.server, c.server_id),
        control: control?,
        flags,
        idle: now.saturating_sub(c.seen),
        closing: c.closing.map_or(0, |t| now.saturating_sub(t)),
    })
}

/// A PCP or NAT-PMP entry as a sync record at `now`.
fn pcp_rec(e: &pcp::PcpEntry, now: u32) -> MappingRec {
    let mut m = MappingRec {
        kind: if e.peer {
            mapping_kind::PEER
        } else if e.nonce == [0; 12] {
            mapping_kind::NATPMP
        } else {
            mapping_kind::PCP
        },
        proto: e.proto,
        inside: e.inside,
        outside: e.outside,
        remaining: e.expires.saturating_sub(now),
        nonce: e.nonce,
        n_filters: e.n_filters,
        ..MappingRec::default()
    };
    for (d, f) in m
        .filters
        .iter_mut()
        .zip(&e.filters[..usize::from(e.n_filters)])
    {
        *d = (f.addr, f.prefix, f.port);
    }
    m
}
