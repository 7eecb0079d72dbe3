//! Rings between lcores: of mbufs, and of small Copy messages.

use crate::mbuf::MbufBurst;
use crate::{cstring, errno, error, sys, Result};
use std::marker::PhantomData;
use std::ptr::NonNull;

fn flags(sp: bool, sc: bool) -> u32 {
    (if sp { sys::RING_F_SP_ENQ } else { 0 }) | (if sc { sys::RING_F_SC_DEQ } else { 0 })
}

/// A ring of mbufs. With single producer/consumer flags, only one lcore may enqueue
/// (dequeue) at a time; that is the caller's contract.
pub struct Ring {
    ptr: NonNull<sys::rte_ring>,
}

// SAFETY: rte_ring is designed for cross-lcore use; the SP/SC contract is documented.
unsafe impl Send for Ring {}
// SAFETY: as above.
unsafe impl Sync for Ring {}

impl Ring {
    /// A ring of `count` slots (a power of two; one stays empty).
    pub fn new(
        name: &str,
        count: u32,
        single_producer: bool,
        single_consumer: bool,
        socket: i32,
    ) -> Result<Ring> {
        let c = cstring(name)?;
        // SAFETY: valid C string; NULL checked.
        let p = unsafe {
            sys::rte_ring_create(
                c.as_ptr(),
                count,
                socket,
                flags(single_producer, single_consumer),
            )
        };
        NonNull::new(p)
            .map(|ptr| Ring { ptr })
            .ok_or_else(|| error("rte_ring_create", errno()))
    }

    /// Moves mbufs from the front of `burst` into the ring; the rest stay.
    pub fn enqueue_burst(&self, burst: &mut MbufBurst) -> usize {
        let (p, n) = burst.held();
        if n == 0 {
            return 0;
        }
        // SAFETY: `p` points at `n` owned mbuf pointers; the ring takes the first `k`.
        let k = unsafe {
            sys::cgnat_shim_ring_enqueue_burst(
                self.ptr.as_ptr(),
                p as *const *mut _ as *mut _,
                n as u32,
            )
        } as usize;
        burst.consumed(k);
        k
    }

    /// Moves mbufs from the ring into the free space of `out`.
    pub fn dequeue_burst(&self, out: &mut MbufBurst) -> usize {
        let (p, room) = out.spare();
        if room == 0 {
            return 0;
        }
        // SAFETY: only owned mbuf pointers are ever enqueued; `room` slots are free.
        let k = unsafe {
            sys::cgnat_shim_ring_dequeue_burst(self.ptr.as_ptr(), p as *mut *mut _, room as u32)
        } as usize;
        out.filled(k);
        k
    }

    /// Entries queued.
    pub fn count(&self) -> u32 {
        // SAFETY: read-only query.
        unsafe { sys::cgnat_shim_ring_count(self.ptr.as_ptr()) }
    }

    /// Free slots.
    pub fn free_count(&self) -> u32 {
        // SAFETY: read-only query.
        unsafe { sys::cgnat_shim_ring_free_count(self.ptr.as_ptr()) }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // Mbufs still queued would leak: drain them first.
        let mut b = MbufBurst::new();
        while self.dequeue_burst(&mut b) > 0 {
            b.clear();
        }
        // SAFETY: freed once, after its last use.
        unsafe { sys::rte_ring_free(self.ptr.as_ptr()) }
    }
}

/// A ring of small `Copy` values (rte_ring_create_elem), e.g. messages between lcores.
pub struct MsgRing<T: Copy + Send> {
    ptr: NonNull<sys::rte_ring>,
    _t: PhantomData<T>,
}

// SAFETY: values are copied in and out; T: Send.
unsafe impl<T: Copy + Send> Send for MsgRing<T> {}
// SAFETY: as for Ring.
unsafe impl<T: Copy + Send> Sync for MsgRing<T> {}

impl<T: Copy + Send> MsgRing<T> {
    const ESIZE: u32 = {
        let s = std::mem::size_of::<T>();
        assert!(
            s > 0 && s & 3 == 0,
            "MsgRing element size must be a non-zero multiple of 4"
        );
        s as u32
    };

    /// A ring of `count` elements of `T`.
    pub fn new(
        name: &str,
        count: u32,
        single_producer: bool,
        single_consumer: bool,
        socket: i32,
    ) -> Result<Self> {
        let c = cstring(name)?;
        // SAFETY: valid C string; NULL checked.
        let p = unsafe {
            sys::rte_ring_create_elem(
                c.as_ptr(),
                Self::ESIZE,
                count,
                socket,
                flags(single_producer, single_consumer),
            )
        };
        NonNull::new(p)
            .map(|ptr| MsgRing {
                ptr,
                _t: PhantomData,
            })
            .ok_or_else(|| error("rte_ring_create_elem", errno()))
    }

    /// Copies as many of `items` as fit; returns how many.
    pub fn enqueue_burst(&self, items: &[T]) -> usize {
        // SAFETY: reads items.len() elements of ESIZE bytes from a valid slice.
        unsafe {
            sys::cgnat_shim_ring_enqueue_burst_elem(
                self.ptr.as_ptr(),
                items.as_ptr().cast(),
                Self::ESIZE,
                items.len() as u32,
            ) as usize
        }
    }

    /// Copies up to `out.len()` elements out; returns how many.
    pub fn dequeue_burst(&self, out: &mut [T]) -> usize {
        // SAFETY: writes at most out.len() elements of T's exact size into `out`; only
        // values of T were ever enqueued, so every written bit pattern is a valid T.
        unsafe {
            sys::cgnat_shim_ring_dequeue_burst_elem(
                self.ptr.as_ptr(),
                out.as_mut_ptr().cast(),
                Self::ESIZE,
                out.len() as u32,
            ) as usize
        }
    }

    /// Entries queued.
    pub fn count(&self) -> u32 {
        // SAFETY: read-only query.
        unsafe { sys::cgnat_shim_ring_count(self.ptr.as_ptr()) }
    }
}

impl<T: Copy + Send> Drop for MsgRing<T> {
    fn drop(&mut self) {
        // SAFETY: freed once.
        unsafe { sys::rte_ring_free(self.ptr.as_ptr()) }
    }
}
