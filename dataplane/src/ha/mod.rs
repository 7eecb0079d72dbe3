//! HA state synchronisation between an active and a standby cgnat (issue 18): the
//! versioned wire format ([`wire`]), authentication and replay refusal ([`auth`]), and
//! the two ends of a sync link, [`Sender`] and [`Receiver`], which count every
//! message sent, received, refused (per reason) and lost.
//!
//! Nothing here touches packets or the worker: messages are built and opened on the
//! sync thread, off the hot path.

pub mod auth;
pub mod link;
pub mod tables;
pub mod transport;
pub mod wire;

use crate::counters::Counter;
use auth::{Auth, Fresh, ReplayGuard};
use wire::{Builder, Message, Refusal};

/// The sync link's counters (one writer: the sync thread).
#[derive(Debug, Default)]
pub struct HaCounters {
    /// Messages sent.
    pub sent: Counter,
    /// Records sent.
    pub records_sent: Counter,
    /// Messages received and accepted.
    pub received: Counter,
    /// Records received in accepted messages.
    pub records_received: Counter,
    /// Messages the receiver never saw (sequence gaps).
    pub lost: Counter,
    /// Refused: malformed.
    pub malformed: Counter,
    /// Refused: a version this code does not speak.
    pub bad_version: Counter,
    /// Refused: the MAC does not verify (forged, or another key).
    pub bad_mac: Counter,
    /// Refused: replayed (or from an older epoch of the sender).
    pub replay: Counter,
    /// Refused: authentic, but sent from another address than the peer's.
    pub foreign: Counter,
    /// Resync requests sent (after a loss or on joining).
    pub resync_requests: Counter,
    /// Bulk syncs completed (sent by an active, received by a standby).
    pub bulk_syncs: Counter,
    /// Refresh sweeps the active completed (its whole state again, as updates).
    pub refreshes: Counter,
    /// Records a standby could not install (a port or block held here otherwise, a
    /// full table, an address not in the pool).
    pub install_failed: Counter,
}

impl HaCounters {
    /// Counts a refusal under its own reason.
    pub fn refused(&self, r: Refusal) {
        match r {
            Refusal::Malformed => self.malformed.inc(),
            Refusal::Version => self.bad_version.inc(),
            Refusal::BadMac => self.bad_mac.inc(),
            Refusal::Replay => self.replay.inc(),
            Refusal::Source => self.foreign.inc(),
        }
    }

    /// Every counter with its metric name, in a stable order.
    pub fn all(&self) -> [(&'static str, &Counter); 14] {
        [
            ("sent", &self.sent),
            ("records_sent", &self.records_sent),
            ("received", &self.received),
            ("records_received", &self.records_received),
            ("lost", &self.lost),
            ("refused_malformed", &self.malformed),
            ("refused_version", &self.bad_version),
            ("refused_bad_mac", &self.bad_mac),
            ("refused_replay", &self.replay),
            ("refused_source", &self.foreign),
            ("resync_requests", &self.resync_requests),
            ("bulk_syncs", &self.bulk_syncs),
            ("refresh_sweeps", &self.refreshes),
            ("install_failed", &self.install_failed),
        ]
    }
}

/// The sending end: node id, epoch (set at start, greater than any earlier run's:
/// the receiver refuses older epochs as replays) and the next sequence number.
#[derive(Debug)]
pub struct Sender {
    auth: Auth,
    node: u32,
    epoch: u32,
    seq: u64,
}

impl Sender {
    /// A sender with the shared key, its node id and epoch.
    pub fn new(auth: Auth, node: u32, epoch: u32) -> Sender {
        Sender {
            auth,
            node,
            epoch,
            seq: 0,
        }
    }

    /// Starts the next message of `kind` in `buf` (at least [`wire::MAX_MESSAGE`]
    /// bytes). Every message takes a sequence number, heartbeats too.
    pub fn start<'a>(&mut self, buf: &'a mut [u8], kind: u8) -> Builder<'a> {
        self.seq += 1;
        Builder::new(buf, kind, self.node, self.epoch, self.seq)
    }

    /// Signs and ends a message; its length.
    pub fn seal(&self, b: Builder<'_>, counters: &HaCounters) -> usize {
        counters.sent.inc();
        counters.records_sent.add(u64::from(b.count()));
        b.finish(|d| self.auth.sign(d))
    }

    /// The last sequence number used.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

/// What an accepted message tells besides its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// The next one expected (or a late one not seen before).
    InOrder,
    /// Messages were lost before it: the receiver should ask for a resync.
    Lost(u64),
    /// The first from a sender that started again (or the first ever).
    NewEpoch,
}

/// The receiving end: the shared key and the replay window of the peer.
#[derive(Debug)]
pub struct Receiver {
    auth: Auth,
    guard: ReplayGuard,
}

impl Receiver {
    /// A receiver with the shared key.
    pub fn new(auth: Auth) -> Receiver {
        Receiver {
            auth,
            guard: ReplayGuard::default(),
        }
    }

    /// Opens a datagram: checks header and version, the MAC, every record, and then
    /// freshness, in that order; a refusal is counted under its reason and nothing of
    /// the message may be used. An accepted message is recorded in the replay window
    /// (and a gap before it counted as lost).
    pub fn open<'a>(
        &mut self,
        datagram: &'a [u8],
        counters: &HaCounters,
    ) -> Result<(Message<&'a [u8]>, Arrival), Refusal> {
        let r = self.check(datagram);
        match r {
            Ok((ref m, arrival)) => {
                counters.received.inc();
                counters.records_received.add(u64::from(m.count()));
                if let Arrival::Lost(n) = arrival {
                    counters.lost.add(n);
                }
            }
            Err(e) => counters.refused(e),
        }
        r
    }

    /// A datagram from another address than the peer's: refused and counted, under
    /// what is wrong with it first (malformed, version, MAC), else as foreign. The
    /// replay window is not touched.
    pub fn refuse_foreign(&self, datagram: &[u8], counters: &HaCounters) {
        let r: Result<(), Refusal> = Message::new_checked(datagram).and_then(|m| {
            if self.auth.verify(m.signed(), m.mac()) {
                Err(Refusal::Source)
            } else {
                Err(Refusal::BadMac)
            }
        });
        if let Err(e) = r {
            counters.refused(e);
        }
    }

    fn check<'a>(&mut self, datagram: &'a [u8]) -> Result<(Message<&'a [u8]>, Arrival), Refusal> {
        let m = Message::new_checked(datagram)?;
        if !self.auth.verify(m.signed(), m.mac()) {
            return Err(Refusal::BadMac);
        }
        m.validate()?;
        let fresh = self
            .guard
            .check(m.epoch(), m.seq())
            .ok_or(Refusal::Replay)?;
        self.guard.accept(m.epoch(), m.seq());
        Ok((
            m,
            match fresh {
                Fresh::InOrder => Arrival::InOrder,
                Fresh::Gap(n) => Arrival::Lost(n),
                Fresh::NewEpoch => Arrival::NewEpoch,
            },
        ))
    }

    /// The peer's epoch and highest sequence number received.
    pub fn position(&self) -> Option<(u32, u64)> {
        self.guard.position()
    }
}
