//! HA state sync in the appliance: the `cgnat-ha` thread, which owns the sync socket
//! (UDP on a management network, `[ha]`), and what the worker does for it between
//! bursts.
//!
//! Why a UDP socket on a management network and a thread, not a DPDK port and an
//! lcore: the sync traffic is small next to the forwarded traffic (about 28 bytes per
//! session change), it must reach the peer even when the data ports are the thing that
//! failed, it wants the kernel's routing and firewalling like keepalived's VRRP does,
//! and building, signing and opening messages (HMAC-SHA256) is work the hot path must
//! never do. The worker only copies session changes into a bounded lock-free queue
//! (no lock, no allocation, no log) and, between bursts like the API's queries,
//! answers the thread's requests (a piece of a bulk walk, a batch of records to
//! install).

use cgnat_dataplane::alg::AlgControl;
use cgnat_dataplane::counters::Counter;
use cgnat_dataplane::ha::auth::Auth;
use cgnat_dataplane::ha::link::{Apply, Link, Role};
use cgnat_dataplane::ha::transport::{self, Tables};
use cgnat_dataplane::ha::wire::{Item, Record, SeqAdjRec, MAX_MESSAGE};
use cgnat_dataplane::ha::{HaCounters, Receiver, Sender};
use cgnat_dataplane::nat::sync::SyncCursor;
use cgnat_dataplane::nat::Nat;
use crossbeam::channel::{Receiver as Rx, Sender as Tx};
use crossbeam::queue::ArrayQueue;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Session changes the worker queues for the thread at most.
const JOURNAL: usize = 65536;
/// Records the thread asks the worker for per bulk-walk request.
const WALK_CHUNK: usize = 1024;
/// Session slots the worker examines per bulk-walk request at most.
const WALK_SLOTS: u32 = 65536;
/// Records the thread hands the worker to install at once.
const APPLY_CHUNK: usize = 1024;
/// ALG adjustments queued from the workers to the thread.
const SEQ_QUEUE: usize = 4096;
/// Longest wait for a worker's answer.
const WORKER_WAIT: Duration = Duration::from_secs(1);

/// A role change asked through the control API.
pub const WANT_NONE: u8 = 0;
/// Become active.
pub const WANT_ACTIVE: u8 = 1;
/// Become standby.
pub const WANT_STANDBY: u8 = 2;

/// What the thread, the worker, the API and the metrics share.
pub struct Shared {
    /// The role the worker applies (true: standby).
    pub standby: AtomicBool,
    /// A role change the API asked for ([`WANT_ACTIVE`], [`WANT_STANDBY`]).
    pub wanted: AtomicU8,
    /// The link's counters.
    pub counters: HaCounters,
    /// Role changes made.
    pub promotions: Counter,
    /// Role changes to standby made.
    pub demotions: Counter,
    /// The standby holds a complete bulk sync and saw no loss since.
    pub in_sync: AtomicBool,
    /// Unix ms of the last bulk sync completed (sent or received); 0 never.
    pub last_bulk_ms: AtomicU64,
    /// Unix ms of the last message accepted from the peer; 0 never.
    pub last_rx_ms: AtomicU64,
    /// Records waiting to be sent (the sync lag, in records).
    pub queued: AtomicU64,
    /// Last sequence number sent.
    pub seq_sent: AtomicU64,
    /// Highest sequence number received from the peer.
    pub peer_seq: AtomicU64,
    /// Gratuitous ARP frames sent on promotions.
    pub garp_sent: Counter,
    /// ALG connections' sequence adjustments that changed (the workers' ALG stream
    /// engines -> thread).
    pub seq_out: ArrayQueue<Item>,
    /// The configuration.
    pub cfg: cgnat_config::Ha,
}

impl Shared {
    /// At start, in the configured role.
    pub fn new(cfg: &cgnat_config::Ha) -> Shared {
        Shared {
            standby: AtomicBool::new(cfg.role == cgnat_config::HaRole::Standby),
            wanted: AtomicU8::new(WANT_NONE),
            counters: HaCounters::default(),
            promotions: Counter::default(),
            demotions: Counter::default(),
            in_sync: AtomicBool::new(false),
            last_bulk_ms: AtomicU64::new(0),
            last_rx_ms: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            seq_sent: AtomicU64::new(0),
            peer_seq: AtomicU64::new(0),
            garp_sent: Counter::default(),
            seq_out: ArrayQueue::new(SEQ_QUEUE),
            cfg: cfg.clone(),
        }
    }

    /// The current role's name.
    pub fn role(&self) -> &'static str {
        if self.standby.load(Ordering::Relaxed) {
            Role::Standby.name()
        } else {
            Role::Active.name()
        }
    }

    /// `GET /ha`: role, peer, sync state and counters.
    pub fn status(&self) -> Value {
        let now = unix_ms();
        let ago = |ms: u64| (ms != 0).then(|| (now.saturating_sub(ms)) as f64 / 1000.0);
        let mut counters = serde_json::Map::new();
        for (name, c) in self.counters.all() {
            counters.insert(name.to_string(), json!(c.get()));
        }
        json!({
            "role": self.role(),
            "listen": self.cfg.listen.to_string(),
            "peer": self.cfg.peer.to_string(),
            "in_sync": self.in_sync.load(Ordering::Relaxed),
            "sync_lag_records": self.queued.load(Ordering::Relaxed),
            "last_message_from_peer_secs_ago": ago(self.last_rx_ms.load(Ordering::Relaxed)),
            "last_bulk_sync_secs_ago": ago(self.last_bulk_ms.load(Ordering::Relaxed)),
            "last_bulk_sync_unix_ms": self.last_bulk_ms.load(Ordering::Relaxed),
            "seq_sent": self.seq_sent.load(Ordering::Relaxed),
            "peer_seq": self.peer_seq.load(Ordering::Relaxed),
            "promotions": self.promotions.get(),
            "demotions": self.demotions.get(),
            "garp_sent": self.garp_sent.get(),
            "messages": counters,
        })
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What the thread asks of the worker.
pub enum Cmd {
    /// Install these (the Vec comes back, to be freed off the worker).
    Apply(Vec<Apply>),
    /// The next piece of a bulk walk from this cursor, into this Vec (its capacity).
    Walk(SyncCursor, Vec<Item>),
}

/// What the worker answers.
pub enum Reply {
    /// The applied batch's Vec, emptied.
    Applied(Vec<Apply>),
    /// A piece of the walk: where it stopped, the records, whether it is complete.
    Walked(SyncCursor, Vec<Item>, bool),
}

/// The worker's end.
pub struct WorkerHa {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Session changes toward the thread (worker pushes, thread pops: lock-free).
    pub journal: ArrayQueue<Item>,
    /// Changes were lost (the journal or the queue was full): a bulk sync is due.
    pub lost: AtomicBool,
    cmds: Rx<Cmd>,
    replies: Tx<Reply>,
}

/// The thread's end of one worker.
pub struct ThreadEnd {
    cmds: Tx<Cmd>,
    replies: Rx<Reply>,
}

/// The two ends for one worker.
pub fn ends(shared: Arc<Shared>) -> (WorkerHa, ThreadEnd) {
    let (ctx, crx) = crossbeam::channel::bounded(2);
    let (rtx, rrx) = crossbeam::channel::bounded(2);
    (
        WorkerHa {
            shared,
            journal: ArrayQueue::new(JOURNAL),
            lost: AtomicBool::new(false),
            cmds: crx,
            replies: rtx,
        },
        ThreadEnd {
            cmds: ctx,
            replies: rrx,
        },
    )
}

impl WorkerHa {
    /// The worker's turn, between bursts: its session changes to the journal and
    /// its ALG stream engine's changed sequence adjustments to the thread (an
    /// active), one request of the thread answered (a standby's engine installs the
    /// adjustments of the connections whose session this worker holds). Returns the
    /// role to apply when it changed (true: standby).
    pub fn turn(
        &self,
        nat: &mut Nat,
        alg: &mut AlgControl,
        standby: bool,
        now: u32,
    ) -> Option<bool> {
        let want = self.shared.standby.load(Ordering::Relaxed);
        if !standby && nat.sync_drain(now, &mut |it| self.journal.push(it).is_ok()) {
            self.lost.store(true, Ordering::Relaxed);
        }
        if !standby {
            // (A NAT64 host this node no longer knows: its connection is gone.)
            alg.sync_take(&mut |r| {
                nat.seq_item_out(r)
                    .is_none_or(|it| self.shared.seq_out.push(it).is_ok())
            });
        }
        if let Ok(cmd) = self.cmds.try_recv() {
            let reply = match cmd {
                Cmd::Apply(mut v) => {
                    for a in v.drain(..) {
                        match a {
                            Apply::Flush => nat.sync_flush(now),
                            Apply::Item(mut it) => {
                                if let Record::SeqAdj(r) = &it.record {
                                    // With this node's handle for a NAT64 host (its
                                    // control session came first); a worker that does
                                    // not know the host does not hold the connection
                                    // (as `Nat::sync_install` says of the others).
                                    let Some(r) = nat.seq_rec_in(r) else {
                                        continue;
                                    };
                                    if it.end || nat.holds_tcp(r.inside, r.remote) {
                                        alg.sync_install(&r, it.end, now);
                                    }
                                    it.record = Record::SeqAdj(r);
                                }
                                if nat.sync_install(&it, now).is_err() {
                                    self.shared.counters.install_failed.inc();
                                }
                            }
                            Apply::BulkDone => {}
                        }
                    }
                    Reply::Applied(v)
                }
                Cmd::Walk(mut cur, mut v) => {
                    let room = v.capacity();
                    let done = nat.sync_walk(&mut cur, now, WALK_SLOTS, &mut |it| {
                        if v.len() < room {
                            v.push(it);
                            true
                        } else {
                            false
                        }
                    });
                    Reply::Walked(cur, v, done)
                }
            };
            let _ = self.replies.try_send(reply);
        }
        (want != standby).then_some(want)
    }
}

/// The [`Tables`] of the appliance's workers, reached over their channels: news from
/// every worker's journal, the bulk walk worker after worker, every install handed to
/// every worker (each takes what lives on its outside ports).
struct WorkerTables<'a> {
    ends: &'a [ThreadEnd],
    workers: &'a [Arc<WorkerHa>],
    shared: &'a Shared,
    /// The worker the walk is at.
    walk_w: usize,
    held: Option<Item>,
    applies: Vec<Apply>,
    cursor: SyncCursor,
    walked: VecDeque<Item>,
    walk_done: bool,
    /// The latest adjustment of each ALG connection the active rewrote (kept here for
    /// bulk syncs and refreshes: the workers walk their sessions only), until its session
    /// ends.
    seq: std::collections::HashMap<(u32, u16, u32, u16), SeqAdjRec>,
    seq_walk: Vec<SeqAdjRec>,
    seq_walking: bool,
}

fn seq_key(inside: (u32, u16), remote: (u32, u16)) -> (u32, u16, u32, u16) {
    (inside.0, inside.1, remote.0, remote.1)
}

impl WorkerTables<'_> {
    /// Sends `cmd` to worker `w` and waits for its reply.
    fn ask(&self, w: usize, cmd: Cmd) -> Option<Reply> {
        let end = &self.ends[w];
        end.cmds.send_timeout(cmd, WORKER_WAIT).ok()?;
        end.replies.recv_timeout(WORKER_WAIT).ok()
    }

    fn send_applies(&mut self) {
        if self.applies.is_empty() {
            return;
        }
        // Every worker gets the batch (the emptied Vecs come back, freed here, never
        // on a worker).
        for w in 0..self.ends.len() {
            let batch = self.applies.clone();
            match self.ask(w, Cmd::Apply(batch)) {
                Some(Reply::Applied(v)) => drop(v),
                _ => self.shared.counters.install_failed.inc(),
            }
        }
        self.applies.clear();
    }
}

impl Tables for WorkerTables<'_> {
    fn updates(&mut self, push: &mut dyn FnMut(Item) -> bool) -> bool {
        let (shared, workers) = (self.shared, self.workers);
        let next = || {
            workers
                .iter()
                .find_map(|w| w.journal.pop())
                .or_else(|| shared.seq_out.pop())
        };
        while let Some(it) = self.held.take().or_else(next) {
            match it.record {
                Record::SeqAdj(r) => {
                    self.seq.insert(seq_key(r.inside, r.remote), r);
                }
                Record::Session(x) if it.end && x.proto == 6 => {
                    self.seq.remove(&seq_key(x.inside, x.remote));
                }
                _ => {}
            }
            if !push(it) {
                self.held = Some(it);
                break;
            }
        }
        // Every worker's flag is taken (none is left set for later).
        let mut lost = false;
        for w in self.workers {
            lost |= w.lost.swap(false, Ordering::Relaxed);
        }
        lost
    }
    fn walk_start(&mut self) {
        self.cursor = SyncCursor::default();
        self.walk_w = 0;
        self.walked.clear();
        self.walk_done = false;
        self.seq_walking = false;
    }
    fn walk(&mut self, push: &mut dyn FnMut(Item) -> bool) -> bool {
        loop {
            while let Some(it) = self.walked.front() {
                if !push(*it) {
                    return false;
                }
                self.walked.pop_front();
            }
            if self.walk_done {
                // Then the ALG connections' adjustments.
                if !self.seq_walking {
                    self.seq_walking = true;
                    self.seq_walk = self.seq.values().copied().collect();
                }
                while let Some(r) = self.seq_walk.last() {
                    let it = Item {
                        end: false,
                        record: Record::SeqAdj(*r),
                    };
                    if !push(it) {
                        return false;
                    }
                    self.seq_walk.pop();
                }
                return true;
            }
            let chunk = Cmd::Walk(self.cursor, Vec::with_capacity(WALK_CHUNK));
            match self.ask(self.walk_w, chunk) {
                Some(Reply::Walked(cur, items, done)) => {
                    self.cursor = cur;
                    self.walked.extend(items);
                    if done {
                        // The next worker's tables, or the end.
                        self.walk_w += 1;
                        self.cursor = SyncCursor::default();
                        self.walk_done = self.walk_w >= self.ends.len();
                    }
                }
                _ => return false,
            }
        }
    }
    fn apply(&mut self, a: Apply) {
        // (An ALG adjustment too: the worker holding its session installs it in its
        // ALG stream engine.)
        self.applies.push(a);
        if self.applies.len() >= APPLY_CHUNK {
            self.send_applies();
        }
    }
    fn received(&mut self) {
        self.send_applies();
    }
}

/// Starts the `cgnat-ha` thread: the sync socket, the link in the configured role,
/// role changes the API asks for, one turn every millisecond until `stop`.
pub fn spawn(
    shared: Arc<Shared>,
    workers: Vec<Arc<WorkerHa>>,
    ends: Vec<ThreadEnd>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let cfg = shared.cfg.clone();
    let socket = transport::open(cfg.listen.into(), cfg.peer.into())
        .map_err(|e| anyhow::anyhow!("ha.listen {}: {e}", cfg.listen))?;
    let auth = Auth::from_file(std::path::Path::new(&cfg.key_file)).map_err(anyhow::Error::msg)?;
    // A start's epoch is its second: greater than any earlier run's, so the peer
    // refuses that run's messages as replays and takes this one's as a new life.
    let epoch = (unix_ms() / 1000) as u32;
    let node = u32::from(*cfg.listen.ip());
    let role = if shared.standby.load(Ordering::Relaxed) {
        Role::Standby
    } else {
        Role::Active
    };
    let mut link = Link::new(
        role,
        Sender::new(auth.clone(), node, epoch),
        Receiver::new(auth),
        cfg.rate,
        8192,
    );
    if role == Role::Active {
        // A peer that is up asks for a bulk sync; one that is not costs nothing.
        link.want_bulk();
    }
    let h = std::thread::Builder::new()
        .name("cgnat-ha".into())
        .spawn(move || {
            let t0 = Instant::now();
            let base = unix_ms();
            let mut buf = vec![0u8; MAX_MESSAGE];
            let mut tables = WorkerTables {
                ends: &ends,
                workers: &workers,
                shared: &shared,
                walk_w: 0,
                held: None,
                applies: Vec::with_capacity(APPLY_CHUNK),
                cursor: SyncCursor::default(),
                walked: VecDeque::new(),
                walk_done: false,
                seq: std::collections::HashMap::new(),
                seq_walk: Vec::new(),
                seq_walking: false,
            };
            while !stop.load(Ordering::Relaxed) {
                let now_ms = t0.elapsed().as_millis() as u64;
                match shared.wanted.swap(WANT_NONE, Ordering::Relaxed) {
                    WANT_ACTIVE if link.role() != Role::Active => {
                        link.set_role(Role::Active);
                        shared.standby.store(false, Ordering::Relaxed);
                        shared.promotions.inc();
                        eprintln!("cgnat: HA: promoted to active");
                    }
                    WANT_STANDBY if link.role() != Role::Standby => {
                        link.set_role(Role::Standby);
                        shared.standby.store(true, Ordering::Relaxed);
                        shared.demotions.inc();
                        eprintln!("cgnat: HA: demoted to standby");
                    }
                    _ => {}
                }
                transport::step(
                    &mut link,
                    &socket,
                    &mut tables,
                    &shared.counters,
                    now_ms,
                    &mut buf,
                );
                shared.in_sync.store(
                    link.role() == Role::Standby && link.in_sync(),
                    Ordering::Relaxed,
                );
                if let Some(t) = link.last_bulk_ms() {
                    shared.last_bulk_ms.store(base + t, Ordering::Relaxed);
                }
                if let Some(t) = link.last_rx_ms() {
                    shared.last_rx_ms.store(base + t, Ordering::Relaxed);
                }
                let journals: usize = workers.iter().map(|w| w.journal.len()).sum();
                shared
                    .queued
                    .store((link.queued() + journals) as u64, Ordering::Relaxed);
                shared.seq_sent.store(link.seq_sent(), Ordering::Relaxed);
                if let Some((_, s)) = link.peer_position() {
                    shared.peer_seq.store(s, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        })?;
    Ok(h)
}
