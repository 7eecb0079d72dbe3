//! One end of a sync link, as a state machine over datagrams: what it sends (batched
//! updates, bulk syncs, heartbeats, resync requests) within a rate, and what it does
//! with what it receives. The driver (the `cgnat-ha` thread, or a test) owns the
//! socket and the tables: it feeds [`Link::update`] and [`Link::bulk`], calls
//! [`Link::poll`] to send and [`Link::receive`] for each datagram. No socket and no
//! clock here: times are milliseconds the driver passes.
//!
//! The active sends; the standby applies and, when it sees a sequence gap (lost
//! messages), a restart of the active (a new epoch), or nothing yet, asks for a resync;
//! the active then sends its whole state again (bulk), then updates go on.

use super::wire::{kind, Item, MAX_MESSAGE};
use super::{Arrival, HaCounters, Receiver, Sender};
use std::collections::VecDeque;

/// The role of an end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Forwards, and sends its state.
    Active,
    /// Installs what it receives; does not forward.
    Standby,
}

impl Role {
    /// Its name in the API, metrics and config.
    pub fn name(self) -> &'static str {
        match self {
            Role::Active => "active",
            Role::Standby => "standby",
        }
    }
}

/// Milliseconds between heartbeats when there is nothing else to send.
pub const HEARTBEAT_MS: u64 = 1000;
/// Milliseconds between two resync requests.
pub const RESYNC_MS: u64 = 1000;
/// Milliseconds between two refresh sweeps by default: the active walks its tables
/// again and sends every record as an update, so that what the journal does not carry
/// (TCP state changes, idle times) reaches the standby within this time.
pub const REFRESH_MS: u64 = 30_000;

/// What [`Link::receive`] hands the driver to apply.
// (Nearly every one is an `Item`, in Vecs the workers drain: boxing it would have a
// worker free memory for each record, for variants that come once per bulk sync.)
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Apply {
    /// A bulk sync starts: drop the state received from the peer before.
    Flush,
    /// Install (or remove, `end`) this state.
    Item(Item),
    /// A bulk sync is complete.
    BulkDone,
}

/// One end of the link.
#[derive(Debug)]
pub struct Link {
    role: Role,
    sender: Sender,
    receiver: Receiver,
    /// Incremental records waiting to be sent; bounded: past it the standby cannot be
    /// kept exact incrementally, and a bulk sync follows.
    updates: VecDeque<Item>,
    update_room: usize,
    /// Records of the bulk sync in progress, waiting to be sent.
    bulk: VecDeque<Item>,
    bulk_room: usize,
    /// A bulk sync was asked for and not started yet.
    bulk_wanted: bool,
    /// A bulk sync is being sent: BEGIN went, the driver is still feeding records.
    bulk_open: bool,
    /// The driver fed the whole state.
    bulk_fed: bool,
    begin_pending: bool,
    /// The walk in progress is a refresh sweep (updates, no BEGIN or END).
    refreshing: bool,
    /// Milliseconds between refresh sweeps (0: none).
    refresh_ms: u64,
    /// When the last walk (bulk or refresh) ended.
    last_walk_ms: u64,
    /// Messages per second at most.
    rate: u32,
    tokens: f64,
    last_ms: u64,
    last_sent_ms: u64,
    last_resync_ms: Option<u64>,
    /// The standby received a complete bulk sync since its last loss.
    in_sync: bool,
    /// The standby received every message since the current bulk sync began.
    bulk_clean: bool,
    /// When the last bulk sync completed (sent or received), ms.
    last_bulk_ms: Option<u64>,
    /// When the last message was accepted, ms.
    last_rx_ms: Option<u64>,
    buf: Vec<u8>,
}

impl Link {
    /// An end in `role`, sending with `sender`, opening with `receiver`, at most `rate`
    /// messages a second, with room for `room` queued records of each kind.
    pub fn new(role: Role, sender: Sender, receiver: Receiver, rate: u32, room: usize) -> Link {
        Link {
            role,
            sender,
            receiver,
            updates: VecDeque::with_capacity(room),
            update_room: room,
            bulk: VecDeque::with_capacity(room),
            bulk_room: room,
            bulk_wanted: false,
            bulk_open: false,
            bulk_fed: false,
            begin_pending: false,
            refreshing: false,
            refresh_ms: REFRESH_MS,
            last_walk_ms: 0,
            rate: rate.max(1),
            tokens: 1.0,
            last_ms: 0,
            last_sent_ms: 0,
            last_resync_ms: None,
            in_sync: false,
            bulk_clean: false,
            last_bulk_ms: None,
            last_rx_ms: None,
            buf: vec![0; MAX_MESSAGE],
        }
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Changes the role. A new active sends its whole state (the old active, now
    /// standby, asks for it when it hears from it).
    pub fn set_role(&mut self, role: Role) {
        if role != self.role {
            self.role = role;
            self.updates.clear();
            self.bulk.clear();
            self.bulk_open = false;
            self.refreshing = false;
            self.bulk_wanted = role == Role::Active;
            self.in_sync = false;
        }
    }

    /// Queues an incremental record (active). False when the queue is full: the
    /// record is not sent, and a bulk sync is asked for instead.
    pub fn update(&mut self, item: Item) -> bool {
        if self.role != Role::Active {
            return false;
        }
        if self.updates.len() >= self.update_room {
            self.bulk_wanted = true;
            return false;
        }
        self.updates.push_back(item);
        true
    }

    /// Asks for a bulk sync (the tables lost track of changes).
    pub fn want_bulk(&mut self) {
        if self.role == Role::Active {
            self.bulk_wanted = true;
        }
    }

    /// The driver should start walking its tables for a bulk sync: call
    /// [`Link::bulk_started`], then [`Link::bulk`] while there is room, then
    /// [`Link::bulk_fed`].
    /// A refresh sweep (the same walk, sent as updates) is due as well.
    pub fn wants_bulk(&self) -> bool {
        let refresh = self.refresh_ms > 0
            && !self.bulk_open
            && self.last_ms.saturating_sub(self.last_walk_ms) >= self.refresh_ms;
        self.role == Role::Active
            && ((self.bulk_wanted && (!self.bulk_open || self.refreshing)) || refresh)
    }

    /// A walk starts: a bulk sync if one was asked for (updates queued before it are
    /// superseded by it; a refresh in progress is dropped), else a refresh sweep.
    pub fn bulk_started(&mut self) {
        self.bulk_open = true;
        self.bulk_fed = false;
        self.bulk.clear();
        self.refreshing = !self.bulk_wanted;
        if self.bulk_wanted {
            self.bulk_wanted = false;
            self.begin_pending = true;
            self.updates.clear();
        }
    }

    /// Sets the time between refresh sweeps (0: none).
    pub fn set_refresh_ms(&mut self, ms: u64) {
        self.refresh_ms = ms;
    }

    /// Room for more bulk records.
    pub fn bulk_room(&self) -> usize {
        self.bulk_room - self.bulk.len()
    }

    /// Queues a record of the bulk sync; false when there is no room (feed it again
    /// after a [`Link::poll`]).
    pub fn bulk(&mut self, item: Item) -> bool {
        if !self.bulk_open || self.bulk.len() >= self.bulk_room {
            return false;
        }
        self.bulk.push_back(item);
        true
    }

    /// The driver fed its whole state.
    pub fn bulk_fed(&mut self) {
        self.bulk_fed = true;
    }

    /// A bulk sync is being sent.
    pub fn bulk_in_progress(&self) -> bool {
        self.bulk_open
    }

    /// Whether the standby holds the peer's whole state (a bulk sync completed and no
    /// loss since).
    pub fn in_sync(&self) -> bool {
        self.in_sync
    }

    /// When the last bulk sync completed, ms.
    pub fn last_bulk_ms(&self) -> Option<u64> {
        self.last_bulk_ms
    }

    /// When the last message was accepted, ms.
    pub fn last_rx_ms(&self) -> Option<u64> {
        self.last_rx_ms
    }

    /// Records waiting to be sent.
    pub fn queued(&self) -> usize {
        self.updates.len() + self.bulk.len()
    }

    /// The last sequence number sent.
    pub fn seq_sent(&self) -> u64 {
        self.sender.seq()
    }

    /// The peer's epoch and highest sequence number received.
    pub fn peer_position(&self) -> Option<(u32, u64)> {
        self.receiver.position()
    }

    /// Sends what is due at `now_ms` through `send`, within the rate: the bulk sync's
    /// messages first, then updates, a heartbeat when idle; a standby that is not in
    /// sync asks for a resync once per [`RESYNC_MS`].
    pub fn poll(&mut self, now_ms: u64, counters: &HaCounters, send: &mut dyn FnMut(&[u8])) {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = now_ms;
        let rate = f64::from(self.rate);
        self.tokens = (self.tokens + elapsed as f64 * rate / 1000.0).min(rate.max(1.0));
        match self.role {
            Role::Standby => {
                let due = match self.last_resync_ms {
                    None => true,
                    Some(t) => now_ms.saturating_sub(t) >= RESYNC_MS,
                };
                // Not while a bulk sync arrives whole (asking again would restart it).
                if !self.in_sync && !self.bulk_clean && due && self.tokens >= 1.0 {
                    self.last_resync_ms = Some(now_ms);
                    counters.resync_requests.inc();
                    self.emit(kind::RESYNC, None, counters, now_ms, send);
                }
            }
            Role::Active => {
                while self.tokens >= 1.0 {
                    if self.begin_pending {
                        self.begin_pending = false;
                        self.emit(kind::BULK_BEGIN, None, counters, now_ms, send);
                    } else if self.refreshing && !self.updates.is_empty() {
                        // A sweep's records wait for the news.
                        self.emit(kind::UPDATE, Some(false), counters, now_ms, send);
                    } else if !self.bulk.is_empty() {
                        let k = if self.refreshing {
                            kind::UPDATE
                        } else {
                            kind::BULK
                        };
                        self.emit(k, Some(true), counters, now_ms, send);
                    } else if self.bulk_open && self.bulk_fed {
                        self.bulk_open = false;
                        self.last_walk_ms = now_ms;
                        if std::mem::take(&mut self.refreshing) {
                            counters.refreshes.inc();
                        } else {
                            self.last_bulk_ms = Some(now_ms);
                            counters.bulk_syncs.inc();
                            self.emit(kind::BULK_END, None, counters, now_ms, send);
                        }
                    } else if !self.bulk_open && !self.updates.is_empty() {
                        self.emit(kind::UPDATE, Some(false), counters, now_ms, send);
                    } else {
                        break;
                    }
                }
                if now_ms.saturating_sub(self.last_sent_ms) >= HEARTBEAT_MS && self.tokens >= 1.0 {
                    self.emit(kind::HEARTBEAT, None, counters, now_ms, send);
                }
            }
        }
    }

    /// Builds and sends one message of `k`; `from_bulk`: which queue its records come
    /// from (None: no records).
    fn emit(
        &mut self,
        k: u8,
        from_bulk: Option<bool>,
        counters: &HaCounters,
        now_ms: u64,
        send: &mut dyn FnMut(&[u8]),
    ) {
        let mut b = self.sender.start(&mut self.buf, k);
        if let Some(bulk) = from_bulk {
            let q = if bulk {
                &mut self.bulk
            } else {
                &mut self.updates
            };
            while let Some(it) = q.front() {
                if !b.push(it.end, &it.record) {
                    break;
                }
                q.pop_front();
            }
        }
        let n = self.sender.seal(b, counters);
        self.tokens -= 1.0;
        self.last_sent_ms = now_ms;
        send(&self.buf[..n]);
    }

    /// A datagram from another address than the peer's: refused, counted.
    pub fn refuse_foreign(&self, datagram: &[u8], counters: &HaCounters) {
        self.receiver.refuse_foreign(datagram, counters);
    }

    /// Opens a datagram received at `now_ms` and hands what it carries to `apply`
    /// (only on a standby; an active takes resync requests). Refusals are counted and
    /// leave everything as it was.
    pub fn receive(
        &mut self,
        datagram: &[u8],
        now_ms: u64,
        counters: &HaCounters,
        apply: &mut dyn FnMut(Apply),
    ) {
        let Ok((m, arrival)) = self.receiver.open(datagram, counters) else {
            return;
        };
        self.last_rx_ms = Some(now_ms);
        match (self.role, m.kind()) {
            (Role::Active, kind::RESYNC) => self.bulk_wanted = true,
            (Role::Active, _) | (Role::Standby, kind::RESYNC) => {}
            (Role::Standby, k) => {
                if matches!(arrival, Arrival::Lost(_) | Arrival::NewEpoch) && k != kind::BULK_BEGIN
                {
                    // Something was missed: what is held may be wrong until a bulk
                    // sync ends. (Records of this message are still applied: they are
                    // newer than what is held.)
                    self.in_sync = false;
                    self.bulk_clean = false;
                    self.last_resync_ms = None;
                }
                match k {
                    kind::BULK_BEGIN => {
                        self.in_sync = false;
                        self.bulk_clean = true;
                        apply(Apply::Flush);
                    }
                    // Complete only if nothing of the bulk sync was lost.
                    kind::BULK_END if self.bulk_clean && arrival == Arrival::InOrder => {
                        self.in_sync = true;
                        self.last_bulk_ms = Some(now_ms);
                        counters.bulk_syncs.inc();
                        apply(Apply::BulkDone);
                    }
                    _ => {}
                }
                for it in m.records().flatten() {
                    apply(Apply::Item(it));
                }
            }
        }
    }
}
