//! Mempools, owned mbufs, and bursts of them.

use crate::{cstring, errno, error, sys, Result};
use std::ptr::NonNull;

/// A pool of packet buffers (rte_pktmbuf_pool_create). DPDK mempools are thread-safe.
pub struct Mempool {
    ptr: NonNull<sys::rte_mempool>,
}

// SAFETY: rte_mempool get/put are multi-thread safe (per-lcore caches, lock-free ring).
unsafe impl Send for Mempool {}
// SAFETY: as above; every method takes &self and DPDK synchronises internally.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// A packet-mbuf pool of `n` buffers with `data_room` bytes each (headroom
    /// included), `cache` per lcore, on `socket`.
    pub fn new_pktmbuf(
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Mempool> {
        let c = cstring(name)?;
        // SAFETY: a valid C string; the returned pointer is checked for NULL.
        let p = unsafe { sys::rte_pktmbuf_pool_create(c.as_ptr(), n, cache, 0, data_room, socket) };
        NonNull::new(p)
            .map(|ptr| Mempool { ptr })
            .ok_or_else(|| error("rte_pktmbuf_pool_create", errno()))
    }

    /// A new mbuf, or None when the pool is empty.
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool pointer is valid for self's lifetime.
        let m = unsafe { sys::cgnat_shim_pktmbuf_alloc(self.ptr.as_ptr()) };
        // SAFETY: a freshly allocated mbuf, owned by nobody else.
        NonNull::new(m).map(|ptr| unsafe { Mbuf::from_raw(ptr) })
    }

    /// Fills `out` with `n` new mbufs at once (all or none); false if the pool has
    /// fewer than `n` free or `out` has no room for them.
    pub fn alloc_bulk(&self, out: &mut MbufBurst, n: usize) -> bool {
        let (p, room) = out.spare();
        if n > room {
            return false;
        }
        // SAFETY: `p` has `room >= n` free slots; on success DPDK writes `n` owned
        // mbuf pointers there, on failure none.
        let rc = unsafe { sys::cgnat_shim_pktmbuf_alloc_bulk(self.ptr.as_ptr(), p, n as u32) };
        if rc != 0 {
            return false;
        }
        out.filled(n);
        true
    }

    /// Buffers available.
    pub fn available(&self) -> u32 {
        // SAFETY: read-only query on a valid pool.
        unsafe { sys::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// Buffers in use.
    pub fn in_use(&self) -> u32 {
        // SAFETY: read-only query on a valid pool.
        unsafe { sys::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.ptr.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: the pool is freed once; callers drop every Mbuf and stop every port
        // using it before (documented on Port::rx_queue_setup).
        unsafe { sys::rte_mempool_free(self.ptr.as_ptr()) }
    }
}

/// An owned packet buffer, freed back to its pool on drop. cgnat configures its ports
/// without scatter, so the frame is the first segment: [`Mbuf::data`] covers it all.
///
/// The first segment's address and length are read once (one call into the shim) and
/// kept, so the per-packet code reads bytes without crossing into C; every method
/// that moves the data start or end reads them again.
pub struct Mbuf {
    ptr: NonNull<sys::rte_mbuf>,
    data: *mut u8,
    len: u16,
}

// SAFETY: an mbuf is owned by exactly one Mbuf value at a time; moving it to another
// thread (over a ring) moves the ownership, and freeing from any lcore is allowed.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `ptr` must be a valid mbuf that nothing else owns or will free.
    pub unsafe fn from_raw(ptr: NonNull<sys::rte_mbuf>) -> Mbuf {
        let mut m = Mbuf {
            ptr,
            data: std::ptr::null_mut(),
            len: 0,
        };
        m.refresh();
        m
    }

    fn refresh(&mut self) {
        // SAFETY: the mbuf is valid and owned; the shim only reads two fields.
        self.data = unsafe { sys::cgnat_shim_data(self.ptr.as_ptr(), &mut self.len) };
    }

    /// Gives up ownership (the caller must free or hand it to DPDK).
    pub fn into_raw(self) -> NonNull<sys::rte_mbuf> {
        let p = self.ptr;
        std::mem::forget(self);
        p
    }

    /// The bytes of the first segment.
    pub fn data(&self) -> &[u8] {
        // SAFETY: `data` and `len` were read from the owned mbuf after its last change
        // (`refresh`): `len` initialised bytes of its buffer; the borrow ties the slice
        // to self.
        unsafe { std::slice::from_raw_parts(self.data, usize::from(self.len)) }
    }

    /// The bytes of the first segment, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`, and &mut self guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.data, usize::from(self.len)) }
    }

    /// Packet length (all segments).
    pub fn len(&self) -> usize {
        // SAFETY: field read on an owned, valid mbuf.
        unsafe { sys::cgnat_shim_pkt_len(self.ptr.as_ptr()) as usize }
    }

    /// True for an empty packet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if the packet is one segment.
    pub fn is_contiguous(&self) -> bool {
        // SAFETY: field read on an owned, valid mbuf.
        unsafe { sys::cgnat_shim_nb_segs(self.ptr.as_ptr()) == 1 }
    }

    fn len16(n: usize) -> Option<u16> {
        u16::try_from(n).ok()
    }

    /// Grows the front by `n` bytes (into the headroom).
    pub fn prepend(&mut self, n: usize) -> bool {
        // SAFETY: DPDK checks the headroom and leaves the mbuf unchanged on failure.
        let ok = Self::len16(n)
            .is_some_and(|n| unsafe { sys::cgnat_shim_prepend(self.ptr.as_ptr(), n) != 0 });
        self.refresh();
        ok
    }

    /// Grows the tail by `n` bytes (into the tailroom of the last segment).
    pub fn append(&mut self, n: usize) -> bool {
        // SAFETY: DPDK checks the tailroom and leaves the mbuf unchanged on failure.
        let ok = Self::len16(n)
            .is_some_and(|n| unsafe { sys::cgnat_shim_append(self.ptr.as_ptr(), n) != 0 });
        self.refresh();
        ok
    }

    /// Strips `n` bytes from the front.
    pub fn adj(&mut self, n: usize) -> bool {
        // SAFETY: DPDK checks the length and leaves the mbuf unchanged on failure.
        let ok = Self::len16(n)
            .is_some_and(|n| unsafe { sys::cgnat_shim_adj(self.ptr.as_ptr(), n) != 0 });
        self.refresh();
        ok
    }

    /// Strips `n` bytes from the tail.
    pub fn trim(&mut self, n: usize) -> bool {
        // SAFETY: DPDK checks the length and leaves the mbuf unchanged on failure.
        let ok = Self::len16(n)
            .is_some_and(|n| unsafe { sys::cgnat_shim_trim(self.ptr.as_ptr(), n) != 0 });
        self.refresh();
        ok
    }

    /// Bytes free before the data.
    pub fn headroom(&self) -> usize {
        // SAFETY: field read on an owned, valid mbuf.
        unsafe { usize::from(sys::cgnat_shim_headroom(self.ptr.as_ptr())) }
    }

    /// Bytes free after the data (last segment).
    pub fn tailroom(&self) -> usize {
        // SAFETY: field read on an owned, valid mbuf.
        unsafe { usize::from(sys::cgnat_shim_tailroom(self.ptr.as_ptr())) }
    }

    /// The input port (or what `set_port` stored).
    pub fn port(&self) -> u16 {
        // SAFETY: field read on an owned, valid mbuf.
        unsafe { sys::cgnat_shim_mbuf_port(self.ptr.as_ptr()) }
    }

    /// Stores a port number in the mbuf (used to tag direction across rings).
    pub fn set_port(&mut self, port: u16) {
        // SAFETY: field write on an exclusively owned mbuf.
        unsafe { sys::cgnat_shim_mbuf_set_port(self.ptr.as_ptr(), port) }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: self owns the mbuf; it is freed exactly once.
        unsafe { sys::cgnat_shim_pktmbuf_free(self.ptr.as_ptr()) }
    }
}

/// Packets per burst.
pub const MAX_BURST: usize = 32;

/// Up to [`MAX_BURST`] owned mbufs in a fixed array (no heap), in order.
pub struct MbufBurst {
    ptrs: [*mut sys::rte_mbuf; MAX_BURST],
    start: usize,
    end: usize,
}

// SAFETY: owns its mbufs exactly like a [Mbuf; N] would.
unsafe impl Send for MbufBurst {}

impl Default for MbufBurst {
    fn default() -> Self {
        Self::new()
    }
}

impl MbufBurst {
    /// An empty burst.
    pub fn new() -> MbufBurst {
        MbufBurst {
            ptrs: [std::ptr::null_mut(); MAX_BURST],
            start: 0,
            end: 0,
        }
    }

    /// Mbufs held.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.ptrs.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// Appends an mbuf; gives it back when full.
    pub fn push(&mut self, m: Mbuf) -> std::result::Result<(), Mbuf> {
        self.compact();
        if self.end == MAX_BURST {
            return Err(m);
        }
        self.ptrs[self.end] = m.into_raw().as_ptr();
        self.end += 1;
        Ok(())
    }

    /// Takes the first mbuf.
    pub fn pop_front(&mut self) -> Option<Mbuf> {
        if self.start == self.end {
            return None;
        }
        let p = self.ptrs[self.start];
        self.start += 1;
        // SAFETY: every pointer in start..end is an owned, valid mbuf; it leaves the
        // range, so ownership moves to the returned Mbuf alone.
        NonNull::new(p).map(|p| unsafe { Mbuf::from_raw(p) })
    }

    /// Takes every mbuf, in order.
    pub fn take_all(&mut self) -> impl Iterator<Item = Mbuf> + '_ {
        std::iter::from_fn(move || self.pop_front())
    }

    /// Frees every mbuf, in one call to DPDK.
    pub fn clear(&mut self) {
        let (p, n) = self.held();
        if n > 0 {
            // SAFETY: the held range holds `n` owned mbufs; after the call the burst
            // forgets them.
            unsafe { sys::cgnat_shim_pktmbuf_free_bulk(p, n as u32) };
        }
        self.start = 0;
        self.end = 0;
    }

    /// Free slots and a pointer to them, for DPDK to fill; then `filled(n)`.
    pub(crate) fn spare(&mut self) -> (*mut *mut sys::rte_mbuf, usize) {
        self.compact();
        (self.ptrs[self.end..].as_mut_ptr(), MAX_BURST - self.end)
    }

    /// Records that DPDK wrote `n` owned mbufs into the spare slots.
    pub(crate) fn filled(&mut self, n: usize) {
        self.end += n;
    }

    /// The held mbufs as a pointer and count, for DPDK to take from the front.
    pub(crate) fn held(&mut self) -> (*mut *mut sys::rte_mbuf, usize) {
        (self.ptrs[self.start..].as_mut_ptr(), self.len())
    }

    /// Records that DPDK took ownership of the first `n` held mbufs.
    pub(crate) fn consumed(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

impl Drop for MbufBurst {
    fn drop(&mut self) {
        self.clear();
    }
}
