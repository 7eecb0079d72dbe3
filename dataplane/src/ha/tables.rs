//! The sync link's [`Tables`] over one worker's NAT ([`crate::nat::Nat`]): the
//! active's journal and bulk walk, the standby's installs, each refusal counted.

use super::link::Apply;
use super::transport::Tables;
use super::HaCounters;
use crate::nat::sync::SyncCursor;
use crate::nat::Nat;

/// One NAT's tables at second `now` of its clock.
pub struct NatTables<'a> {
    /// The tables.
    pub nat: &'a mut Nat,
    /// The bulk walk's position (kept by the caller between turns).
    pub cursor: &'a mut SyncCursor,
    /// The worker clock's second.
    pub now: u32,
    /// Where install refusals are counted.
    pub counters: &'a HaCounters,
}

impl Tables for NatTables<'_> {
    fn updates(&mut self, push: &mut dyn FnMut(super::wire::Item) -> bool) -> bool {
        self.nat.sync_drain(self.now, push)
    }
    fn walk_start(&mut self) {
        *self.cursor = SyncCursor::default();
    }
    fn walk(&mut self, push: &mut dyn FnMut(super::wire::Item) -> bool) -> bool {
        self.nat.sync_walk(self.cursor, self.now, u32::MAX, push)
    }
    fn apply(&mut self, a: Apply) {
        match a {
            Apply::Flush => self.nat.sync_flush(self.now),
            Apply::Item(it) => {
                if self.nat.sync_install(&it, self.now).is_err() {
                    self.counters.install_failed.inc();
                }
            }
            Apply::BulkDone => {}
        }
    }
}
