//! The sync link's [`Tables`] over one worker's NAT ([`crate::nat::Nat`]): the
//! active's journal and bulk walk, the standby's installs, each refusal counted.

use super::link::Apply;
use super::transport::Tables;
use super::wire::{Item, Record};
use super::HaCounters;
use crate::alg::AlgControl;
use crate::nat::sync::SyncCursor;
use crate::nat::Nat;

/// One NAT's tables at second `now` of its clock, and the ALG connections' state if
/// given (their sequence adjustments).
pub struct NatTables<'a> {
    /// The tables.
    pub nat: &'a mut Nat,
    /// The ALG control connections (the control lcore's; a harness's `control`).
    pub alg: Option<&'a mut AlgControl>,
    /// The bulk walk's position (kept by the caller between turns).
    pub cursor: &'a mut SyncCursor,
    /// The worker clock's second.
    pub now: u32,
    /// Where install refusals are counted.
    pub counters: &'a HaCounters,
}

impl Tables for NatTables<'_> {
    fn updates(&mut self, push: &mut dyn FnMut(Item) -> bool) -> bool {
        let lost = self.nat.sync_drain(self.now, push);
        let nat = &*self.nat;
        if let Some(alg) = self.alg.as_deref_mut() {
            alg.sync_take(&mut |r| nat.seq_item_out(r).is_none_or(&mut *push));
        }
        lost
    }
    fn walk_start(&mut self) {
        *self.cursor = SyncCursor::default();
    }
    fn walk(&mut self, push: &mut dyn FnMut(Item) -> bool) -> bool {
        if !self.nat.sync_walk(self.cursor, self.now, u32::MAX, push) {
            return false;
        }
        let nat = &*self.nat;
        match self.alg.as_deref() {
            Some(alg) => alg.sync_walk(&mut self.cursor.extra, &mut |r| {
                nat.seq_item_out(r).is_none_or(&mut *push)
            }),
            None => true,
        }
    }
    fn apply(&mut self, a: Apply) {
        match a {
            Apply::Flush => self.nat.sync_flush(self.now),
            Apply::Item(Item {
                end,
                record: Record::SeqAdj(r),
            }) => {
                // With this node's handle for a NAT64 host (its control session
                // came first; without it the connection is not held here, as
                // `Nat::sync_install` says of a session it does not hold).
                let Some(r) = self.nat.seq_rec_in(&r) else {
                    return;
                };
                // The control lcore's adjustment, and the worker's note that the
                // session's frames go there.
                if let Some(alg) = self.alg.as_deref_mut() {
                    alg.sync_install(&r, end, self.now);
                }
                let it = Item {
                    end,
                    record: Record::SeqAdj(r),
                };
                if self.nat.sync_install(&it, self.now).is_err() {
                    self.counters.install_failed.inc();
                }
            }
            Apply::Item(it) => {
                if self.nat.sync_install(&it, self.now).is_err() {
                    self.counters.install_failed.inc();
                }
            }
            Apply::BulkDone => {}
        }
    }
}
