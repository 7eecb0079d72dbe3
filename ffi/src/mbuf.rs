//! Packet buffers. Owns [`Mempool`] (a pool of mbufs, freed only once all its mbufs
//! are back) and [`Mbuf`] (one owned packet buffer, freed into its pool on drop).

use crate::burst::MbufBurst;
use crate::eal::{control, OrphanPool};
use crate::error::{self, Error, Result};
use crate::sys;
use std::fmt;
use std::mem::size_of;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

/// A pool of packet buffers (`rte_pktmbuf_pool_create`).
///
/// DPDK mempools are thread-safe, so a `Mempool` is `Send + Sync`, and cloning it is
/// cheap (one handle, reference-counted). When the last handle goes, the pool is freed
/// as soon as every mbuf taken from it is back; until then (mbufs still in an
/// [`Mbuf`], a ring, or a port's queues) it is kept, so an mbuf never outlives its
/// pool. An RX queue set up with a pool holds a handle until its port is closed.
///
/// Pool names are global to the process: a dropped pool's name is free again only once
/// the pool is actually freed.
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    ptr: NonNull<sys::rte_mempool>,
}

// SAFETY: rte_mempool's get and put are multi-thread safe (a lock-free ring, plus a
// cache per lcore that only that lcore's thread uses; threads that are not lcores use
// no cache), and the pool is freed only when no handle is left.
unsafe impl Send for PoolInner {}
// SAFETY: as above; every method takes &self and DPDK synchronises internally.
unsafe impl Sync for PoolInner {}

impl fmt::Debug for Mempool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mempool")
            .field("available", &self.available())
            .field("in_use", &self.in_use())
            .finish()
    }
}

/// The largest per-lcore cache DPDK accepts (RTE_MEMPOOL_CACHE_MAX_SIZE).
const MAX_CACHE: u32 = sys::RTE_MEMPOOL_CACHE_MAX_SIZE;

impl Mempool {
    /// A pool of `n` packet mbufs named `name`, each with `data_room` bytes of buffer
    /// (DPDK's headroom of 128 bytes included, so 2048 + 128 holds a 1518-byte frame
    /// with room to prepend), a per-lcore cache of `cache` mbufs (0 for none; at most
    /// 512 and n / 1.5), allocated on NUMA `socket` (-1 for any).
    ///
    /// `n` is best a power of two minus one (DPDK's ring then wastes nothing).
    pub fn new_pktmbuf(
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
        socket: i32,
    ) -> Result<Mempool> {
        if cache > MAX_CACHE || u64::from(cache) * 3 > u64::from(n) * 2 {
            return Err(Error::Invalid(format!(
                "a mempool cache of {cache} mbufs is too large for a pool of {n}: \
                 at most {MAX_CACHE} and two thirds of the pool"
            )));
        }
        let c = error::cstring("a mempool name", name)?;
        let mut ctl = control();
        ctl.running()?;
        // SAFETY: the EAL is running (checked under the control lock, which also keeps
        // it running during the call); `c` is a valid C string for the call's duration;
        // the result is checked for NULL.
        let p = unsafe { sys::rte_pktmbuf_pool_create(c.as_ptr(), n, cache, 0, data_room, socket) };
        let ptr = NonNull::new(p)
            .ok_or_else(|| error::create_failed("rte_pktmbuf_pool_create", "mempool", name))?;
        ctl.objects += 1;
        Ok(Mempool {
            inner: Arc::new(PoolInner { ptr }),
        })
    }

    /// A new mbuf (empty, with the pool's headroom, its stamp 0), or `None` when the
    /// pool is empty.
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is alive (self holds a handle); allocation is thread-safe.
        let m = unsafe { sys::cgnat_shim_pktmbuf_alloc(self.as_ptr()) };
        // SAFETY: a fresh mbuf from a live pool, direct, with refcnt 1 and owned by
        // nobody else: exactly what from_raw asks.
        let mut m = NonNull::new(m).map(|m| unsafe { Mbuf::from_raw(m) })?;
        // DPDK keeps dynamic fields across uses: a frame built here was never stamped.
        m.set_stamp(0);
        Some(m)
    }

    /// Appends `n` new mbufs to `out`, all or none (`rte_pktmbuf_alloc_bulk`); false
    /// if the pool has fewer than `n` free or `out` has no room for `n` more.
    pub fn alloc_bulk(&self, out: &mut MbufBurst, n: usize) -> bool {
        let (slots, room) = out.spare();
        if n > room {
            return false;
        }
        if n == 0 {
            return true;
        }
        // SAFETY: `slots` points at `room >= n` writable slots of `out`; on success DPDK
        // writes `n` fresh, owned mbuf pointers there, on failure none.
        let rc = unsafe { sys::cgnat_shim_pktmbuf_alloc_bulk(self.as_ptr(), slots, n as u32) };
        if rc != 0 {
            return false;
        }
        // SAFETY: DPDK filled the first `n` spare slots with fresh mbufs of this pool.
        unsafe { out.commit(n) };
        true
    }

    /// How many mbufs can be allocated now (per-lcore caches included).
    pub fn available(&self) -> u32 {
        // SAFETY: a read-only query on a live pool.
        unsafe { sys::rte_mempool_avail_count(self.as_ptr()) }
    }

    /// How many mbufs are out of the pool (in `Mbuf`s, bursts, rings, port queues).
    pub fn in_use(&self) -> u32 {
        // SAFETY: a read-only query on a live pool.
        unsafe { sys::rte_mempool_in_use_count(self.as_ptr()) }
    }

    /// The raw pool, valid while `self` lives.
    pub fn as_ptr(&self) -> *mut sys::rte_mempool {
        self.inner.ptr.as_ptr()
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        let mut ctl = control();
        ctl.objects -= 1;
        // Freed now if all its mbufs are back and that can be known for sure, else
        // later (by another pool's or a ring's drop, or Eal's drop).
        ctl.orphans.push(OrphanPool(self.ptr));
        ctl.free_orphans();
    }
}

/// One owned packet buffer (`rte_mbuf`), freed into its pool on drop.
///
/// cgnat configures its ports without scatter, so a received frame is one segment:
/// [`Mbuf::data`] is the first (normally only) segment, and [`Mbuf::is_contiguous`]
/// says whether that is the whole packet. An `Mbuf` is one pointer
/// (`#[repr(transparent)]`); its accessors read the mbuf's fields directly, with no
/// call into C.
#[repr(transparent)]
pub struct Mbuf(NonNull<sys::rte_mbuf>);

// SAFETY: an Mbuf owns its mbuf alone; moving it to another thread moves that
// ownership, and DPDK allows freeing an mbuf on any thread.
unsafe impl Send for Mbuf {}
// SAFETY: the &self methods only read the mbuf's fields and bytes; every change takes
// &mut self.
unsafe impl Sync for Mbuf {}

impl fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mbuf")
            .field("len", &self.len())
            .field("segments", &self.raw().nb_segs)
            .field("port", &self.port())
            .finish()
    }
}

impl Mbuf {
    /// Takes ownership of a raw mbuf, which the returned `Mbuf` frees on drop.
    ///
    /// # Safety
    /// `ptr` must be a valid packet mbuf that nothing else owns, uses or will free;
    /// its pool must be alive (a pool made by [`Mempool`] is: it waits for its mbufs);
    /// and it must be direct with a reference count of 1 (not sharing its data with
    /// another mbuf), since [`Mbuf::data_mut`] writes those bytes.
    pub unsafe fn from_raw(ptr: NonNull<sys::rte_mbuf>) -> Mbuf {
        Mbuf(ptr)
    }

    /// Gives up ownership: the caller must free the mbuf or hand it to DPDK.
    pub fn into_raw(self) -> NonNull<sys::rte_mbuf> {
        let p = self.0;
        std::mem::forget(self);
        p
    }

    /// The raw mbuf, valid while `self` lives.
    pub fn as_ptr(&self) -> *mut sys::rte_mbuf {
        self.0.as_ptr()
    }

    #[inline]
    fn raw(&self) -> &sys::rte_mbuf {
        // SAFETY: self owns a valid mbuf; nothing else writes it while self is borrowed
        // (writes need &mut self, or ownership, and self owns it alone).
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn data_ptr(&self) -> *mut u8 {
        let m = self.raw();
        // SAFETY: data_off is the offset of the data inside the buffer at buf_addr
        // (data_off + data_len <= buf_len is DPDK's invariant), so the result stays in
        // the buffer.
        unsafe { m.buf_addr.cast::<u8>().add(usize::from(m.data_off)) }
    }

    /// The bytes of the first segment (the whole packet when [`Mbuf::is_contiguous`]).
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: the first segment's data_len bytes from its data start lie inside its
        // buffer, which is mapped pool memory (initialised: the kernel zero-fills it
        // before DPDK first uses it); the mbuf is direct and owned by self alone, so
        // nothing writes them while the borrow of self lasts.
        unsafe { std::slice::from_raw_parts(self.data_ptr(), usize::from(self.raw().data_len)) }
    }

    /// The bytes of the first segment, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let len = usize::from(self.raw().data_len);
        // SAFETY: as in `data`; &mut self makes this the only access to the mbuf, and
        // a direct mbuf's buffer is not shared with any other mbuf.
        unsafe { std::slice::from_raw_parts_mut(self.data_ptr(), len) }
    }

    /// The packet's length, all segments (`pkt_len`).
    #[inline]
    pub fn len(&self) -> usize {
        self.raw().pkt_len as usize
    }

    /// True for an empty packet.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the packet is one segment, so [`Mbuf::data`] is all of it.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.raw().nb_segs == 1
    }

    /// Grows the packet at the front by `n` bytes, taken from the headroom; false (and
    /// no change) if the headroom is smaller. The new bytes hold whatever the buffer
    /// held there.
    pub fn prepend(&mut self, n: usize) -> bool {
        // SAFETY: self owns the mbuf; DPDK checks the headroom and changes nothing on
        // failure; data_off, data_len and pkt_len stay consistent.
        u16::try_from(n)
            .is_ok_and(|n| unsafe { sys::cgnat_shim_pktmbuf_prepend(self.as_ptr(), n) } != 0)
    }

    /// Grows the packet at the tail by `n` bytes, taken from the last segment's
    /// tailroom; false (and no change) if that is smaller. The new bytes are not
    /// zeroed.
    pub fn append(&mut self, n: usize) -> bool {
        // SAFETY: as in `prepend`, with the tailroom.
        u16::try_from(n)
            .is_ok_and(|n| unsafe { sys::cgnat_shim_pktmbuf_append(self.as_ptr(), n) } != 0)
    }

    /// Strips `n` bytes from the front of the packet; false (and no change) if the
    /// first segment is shorter.
    pub fn adj(&mut self, n: usize) -> bool {
        // SAFETY: as in `prepend`; DPDK checks the first segment's length.
        u16::try_from(n)
            .is_ok_and(|n| unsafe { sys::cgnat_shim_pktmbuf_adj(self.as_ptr(), n) } != 0)
    }

    /// Strips `n` bytes from the tail of the packet; false (and no change) if the
    /// last segment is shorter.
    pub fn trim(&mut self, n: usize) -> bool {
        // SAFETY: as in `prepend`; DPDK checks the last segment's length.
        u16::try_from(n)
            .is_ok_and(|n| unsafe { sys::cgnat_shim_pktmbuf_trim(self.as_ptr(), n) } != 0)
    }

    /// Bytes free in front of the data.
    #[inline]
    pub fn headroom(&self) -> usize {
        usize::from(self.raw().data_off)
    }

    /// Bytes free after the data, in the last segment.
    pub fn tailroom(&self) -> usize {
        // SAFETY: a read-only query on an owned, valid mbuf.
        usize::from(unsafe { sys::cgnat_shim_pktmbuf_tailroom(self.as_ptr()) })
    }

    /// The port the packet arrived on, or what [`Mbuf::set_port`] stored.
    #[inline]
    pub fn port(&self) -> u16 {
        self.raw().port
    }

    /// Stores a port number in the mbuf (cgnat tags a packet's direction with it when
    /// handing it to another lcore).
    #[inline]
    pub fn set_port(&mut self, port: u16) {
        // SAFETY: &mut self: the only access to an owned, valid mbuf; `port` is a
        // plain u16 field.
        unsafe { (*self.as_ptr()).port = port }
    }

    /// The offload flags (`RTE_MBUF_F_*`), e.g. checksum status set by the NIC.
    #[inline]
    pub fn ol_flags(&self) -> u64 {
        self.raw().ol_flags
    }

    /// The packet type the driver recognised (`RTE_PTYPE_*`; 0 if it does not tell).
    pub fn packet_type(&self) -> u32 {
        // SAFETY: a read-only query on an owned, valid mbuf.
        unsafe { sys::cgnat_shim_mbuf_packet_type(self.as_ptr()) }
    }
}

/// Offset in `struct rte_mbuf` of cgnat's stamp field (a DPDK mbuf dynamic field,
/// registered when the EAL starts), or -1: none registered, stamps are not kept.
static STAMP_OFFSET: AtomicIsize = AtomicIsize::new(-1);

/// Registers the stamp field ([`Mbuf::set_stamp`]); called once the EAL runs. A
/// failure (no room left among the dynamic fields) leaves stamps off.
pub(crate) fn register_stamp() {
    // SAFETY: the EAL is running; the shim passes a static descriptor.
    let off = unsafe { sys::cgnat_shim_mbuf_stamp_register() };
    let fits = usize::try_from(off)
        .is_ok_and(|o| o + size_of::<u64>() <= size_of::<sys::rte_mbuf>() && o % 8 == 0);
    if fits {
        STAMP_OFFSET.store(off as isize, Ordering::Relaxed);
    }
}

impl Mbuf {
    /// Stores `v` in the mbuf's stamp field (cgnat's own dynamic field: a TSC read
    /// when an ALG frame leaves the worker for the control lcore). Nothing without
    /// the field (before the EAL started).
    #[inline]
    pub fn set_stamp(&mut self, v: u64) {
        let off = STAMP_OFFSET.load(Ordering::Relaxed);
        if off < 0 {
            return;
        }
        // SAFETY: &mut self: the only access to an owned, valid mbuf; DPDK reserved
        // these 8 bytes at `off` (8-aligned, inside struct rte_mbuf, checked at
        // registration) for this field alone.
        unsafe {
            self.as_ptr()
                .cast::<u8>()
                .add(off as usize)
                .cast::<u64>()
                .write(v)
        }
    }

    /// The value [`Mbuf::set_stamp`] stored, if the field exists (whatever it holds
    /// otherwise: DPDK does not clear dynamic fields).
    #[inline]
    pub fn stamp(&self) -> Option<u64> {
        let off = STAMP_OFFSET.load(Ordering::Relaxed);
        if off < 0 {
            return None;
        }
        // SAFETY: as in `set_stamp`, read-only through &self.
        Some(unsafe {
            self.as_ptr()
                .cast::<u8>()
                .add(off as usize)
                .cast::<u64>()
                .read()
        })
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: self owns the mbuf, whose pool is alive (pools wait for their
        // mbufs); it is freed exactly once, here.
        unsafe { sys::cgnat_shim_pktmbuf_free(self.as_ptr()) }
    }
}
