//! Bursts: up to [`MAX_BURST`] owned mbufs in a fixed array, in order, with no heap.
//! Owns [`MbufBurst`], the unit that ports and rings move packets in, and the
//! bookkeeping that lets DPDK write into (and take from) its slots directly.

use crate::mbuf::Mbuf;
use crate::sys;
use std::fmt;
use std::mem::MaybeUninit;

/// The most mbufs a burst holds (and a port or ring call moves at once).
pub const MAX_BURST: usize = 32;

/// Up to [`MAX_BURST`] owned mbufs, in order, in a fixed array (no allocation).
///
/// Ports receive into the free space at its end and transmit from its front
/// ([`crate::Port::rx_burst`], [`crate::Port::tx_burst`]); rings do the same. What is
/// still in a burst when it is dropped or [cleared](MbufBurst::clear) is freed.
pub struct MbufBurst {
    /// `slots[start..end]` hold owned mbufs; the rest are uninitialised.
    slots: [MaybeUninit<Mbuf>; MAX_BURST],
    start: usize,
    end: usize,
}

// Mbuf is one pointer (repr(transparent) over NonNull<rte_mbuf>), so the slots are an
// array of `struct rte_mbuf *`, which is what DPDK reads and writes.
const _: () = assert!(
    std::mem::size_of::<MaybeUninit<Mbuf>>() == std::mem::size_of::<*mut sys::rte_mbuf>()
        && std::mem::align_of::<MaybeUninit<Mbuf>>() == std::mem::align_of::<*mut sys::rte_mbuf>()
);

impl Default for MbufBurst {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MbufBurst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl MbufBurst {
    /// An empty burst.
    pub const fn new() -> MbufBurst {
        MbufBurst {
            slots: [const { MaybeUninit::uninit() }; MAX_BURST],
            start: 0,
            end: 0,
        }
    }

    /// How many mbufs it holds.
    #[inline]
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when it holds none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// True when it holds [`MAX_BURST`].
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len() == MAX_BURST
    }

    /// Moves the held mbufs to the front of the array, so all free space is at the end.
    fn compact(&mut self) {
        if self.start > 0 {
            let n = self.len();
            // SAFETY: moves the n initialised slots start..end to 0..n (ranges may
            // overlap: ptr::copy allows it); afterwards only 0..n count as initialised,
            // so every mbuf is still owned exactly once.
            unsafe {
                let base = self.slots.as_mut_ptr();
                std::ptr::copy(base.add(self.start), base, n);
            }
            self.start = 0;
            self.end = n;
        }
    }

    /// Appends `m`; gives it back when the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.end == MAX_BURST {
            if self.start == 0 {
                return Err(m);
            }
            self.compact();
        }
        self.slots[self.end].write(m);
        self.end += 1;
        Ok(())
    }

    /// Takes the last mbuf.
    #[inline]
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.is_empty() {
            return None;
        }
        self.end -= 1;
        // SAFETY: slot `end` was in the initialised range and has just left it, so the
        // mbuf is read out exactly once and now owned by the caller alone.
        let m = unsafe { self.slots[self.end].assume_init_read() };
        self.normalise();
        Some(m)
    }

    /// Takes the first mbuf.
    #[inline]
    pub fn pop_front(&mut self) -> Option<Mbuf> {
        if self.is_empty() {
            return None;
        }
        // SAFETY: slot `start` is in the initialised range and leaves it below, so the
        // mbuf is read out exactly once.
        let m = unsafe { self.slots[self.start].assume_init_read() };
        self.start += 1;
        self.normalise();
        Some(m)
    }

    /// An empty burst starts at slot 0 again, so the next receive has all the room.
    #[inline]
    fn normalise(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Takes every mbuf out, first to last. The burst is empty afterwards: mbufs the
    /// iterator did not yield when it is dropped are freed.
    #[inline]
    pub fn take_all(&mut self) -> Drain<'_> {
        Drain { burst: self }
    }

    /// The held mbufs, in order.
    #[inline]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: slots start..end are initialised Mbufs (MaybeUninit<Mbuf> has Mbuf's
        // layout); the borrow of self keeps them in place.
        unsafe {
            std::slice::from_raw_parts(self.slots.as_ptr().add(self.start).cast(), self.len())
        }
    }

    /// The held mbufs, in order, writable.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        let n = self.len();
        // SAFETY: as in as_slice, with &mut self for exclusive access. Swapping two
        // Mbufs through the slice keeps each owned exactly once.
        unsafe { std::slice::from_raw_parts_mut(self.slots.as_mut_ptr().add(self.start).cast(), n) }
    }

    /// Iterates over the held mbufs.
    pub fn iter(&self) -> std::slice::Iter<'_, Mbuf> {
        self.as_slice().iter()
    }

    /// Iterates over the held mbufs, writable (e.g. to rewrite every packet in place
    /// before a transmit).
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Mbuf> {
        self.as_mut_slice().iter_mut()
    }

    /// Frees every mbuf (one call into DPDK for all of them).
    pub fn clear(&mut self) {
        let (p, n) = self.held();
        if n == 0 {
            return;
        }
        self.start = 0;
        self.end = 0;
        // SAFETY: `p` points at the n owned mbufs that were held; the burst forgot them
        // above, so each is freed exactly once, here.
        unsafe { sys::cgnat_shim_pktmbuf_free_bulk(p, n as u32) };
    }

    /// The free slots at the end (after compacting) as DPDK's `struct rte_mbuf **`,
    /// and how many there are. Whatever DPDK writes there counts only after
    /// [`MbufBurst::commit`].
    pub(crate) fn spare(&mut self) -> (*mut *mut sys::rte_mbuf, usize) {
        self.compact();
        let p = self.slots[self.end..].as_mut_ptr().cast();
        (p, MAX_BURST - self.end)
    }

    /// Counts the first `n` spare slots as held.
    ///
    /// # Safety
    /// DPDK (or the caller) wrote `n` (at most the room [`MbufBurst::spare`] gave)
    /// owned, valid mbuf pointers there, as [`Mbuf::from_raw`] requires them.
    pub(crate) unsafe fn commit(&mut self, n: usize) {
        debug_assert!(self.end + n <= MAX_BURST);
        self.end += n;
    }

    /// The held mbufs as DPDK's `struct rte_mbuf **`, and how many; the burst still
    /// owns them until [`MbufBurst::forget_front`].
    pub(crate) fn held(&mut self) -> (*mut *mut sys::rte_mbuf, usize) {
        (self.slots[self.start..].as_mut_ptr().cast(), self.len())
    }

    /// Stops holding the first `n` mbufs, whose ownership went elsewhere.
    ///
    /// # Safety
    /// DPDK (or the caller) took ownership of the first `n` held mbufs (`n <= len`).
    pub(crate) unsafe fn forget_front(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n;
        self.normalise();
    }
}

impl Drop for MbufBurst {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The iterator of [`MbufBurst::take_all`]: yields the mbufs first to last, and frees
/// the ones not taken when dropped.
pub struct Drain<'a> {
    burst: &'a mut MbufBurst,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        self.burst.pop_front()
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.burst.len(), Some(self.burst.len()))
    }
}

impl DoubleEndedIterator for Drain<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Mbuf> {
        self.burst.pop()
    }
}

impl ExactSizeIterator for Drain<'_> {}

impl std::iter::FusedIterator for Drain<'_> {}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        self.burst.clear();
    }
}

impl<'a> IntoIterator for &'a MbufBurst {
    type Item = &'a Mbuf;
    type IntoIter = std::slice::Iter<'a, Mbuf>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a> IntoIterator for &'a mut MbufBurst {
    type Item = &'a mut Mbuf;
    type IntoIter = std::slice::IterMut<'a, Mbuf>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Mbufs need a running EAL (tests/eal.rs); an empty burst does not.
    #[test]
    fn empty_burst() {
        let mut b = MbufBurst::new();
        assert_eq!((b.len(), b.is_empty(), b.is_full()), (0, true, false));
        assert!(b.pop().is_none());
        assert!(b.pop_front().is_none());
        assert_eq!(b.take_all().count(), 0);
        assert!(b.iter().next().is_none());
        b.clear();
        let (_, room) = b.spare();
        assert_eq!(room, MAX_BURST);
        assert_eq!(b.held().1, 0);
        assert_eq!(format!("{b:?}"), "[]");
    }
}
