//! Rings between lcores. Owns [`Ring`] (a ring of owned mbufs) and [`MsgRing`] (a
//! ring of small `Copy` values, stored in the ring itself: no allocation per message).

use crate::burst::MbufBurst;
use crate::eal::control;
use crate::error::{self, Error, Result};
use crate::sys;
use std::fmt;
use std::marker::PhantomData;
use std::mem::{size_of, MaybeUninit};
use std::os::raw::c_void;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

/// One side (producer or consumer) of a ring. A ring made single-producer (or
/// single-consumer) is undefined behaviour in DPDK if two threads enqueue (dequeue) at
/// once; since the ring types are `Sync`, such a side gets a spin lock, uncontended
/// (one atomic swap per burst) when the contract is kept, serialising when it is not.
#[repr(align(64))]
struct Side {
    single: bool,
    busy: AtomicBool,
}

/// Holds a single side's lock; releases it on drop.
struct SideGuard<'a>(Option<&'a AtomicBool>);

impl Drop for SideGuard<'_> {
    fn drop(&mut self) {
        if let Some(b) = self.0 {
            b.store(false, Ordering::Release);
        }
    }
}

impl Side {
    fn new(single: bool) -> Side {
        Side {
            single,
            busy: AtomicBool::new(false),
        }
    }

    #[inline]
    fn lock(&self) -> SideGuard<'_> {
        if !self.single {
            return SideGuard(None);
        }
        while self
            .busy
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        SideGuard(Some(&self.busy))
    }
}

/// Creates a ring of `count` elements of `esize` bytes (`None`: pointers).
fn create(
    kind: &str,
    name: &str,
    count: u32,
    esize: Option<u32>,
    sides: (bool, bool),
    socket: i32,
) -> Result<NonNull<sys::rte_ring>> {
    if count == 0 {
        return Err(Error::Invalid(format!(
            "the {kind} `{name}` needs room for at least one entry"
        )));
    }
    let c = error::cstring("a ring name", name)?;
    let flags = sys::RING_F_EXACT_SZ
        | if sides.0 { sys::RING_F_SP_ENQ } else { 0 }
        | if sides.1 { sys::RING_F_SC_DEQ } else { 0 };
    let mut ctl = control();
    ctl.running()?;
    // SAFETY: the EAL is running (and stays so: the control lock is held); `c` is a
    // valid C string for the call; the result is checked for NULL.
    let p = unsafe {
        match esize {
            None => sys::rte_ring_create(c.as_ptr(), count, socket, flags),
            Some(e) => sys::rte_ring_create_elem(c.as_ptr(), e, count, socket, flags),
        }
    };
    let call = if esize.is_some() {
        "rte_ring_create_elem"
    } else {
        "rte_ring_create"
    };
    let p = NonNull::new(p).ok_or_else(|| error::create_failed(call, kind, name))?;
    ctl.objects += 1;
    Ok(p)
}

/// Frees a ring made by `create`.
fn free(p: NonNull<sys::rte_ring>) {
    let mut ctl = control();
    // SAFETY: the ring is alive until here (the EAL too: it is not cleaned up while a
    // ring exists), its owner is being dropped, and it is freed once.
    unsafe { sys::rte_ring_free(p.as_ptr()) };
    ctl.objects -= 1;
    // Mbufs the ring held went back to their pools: a dropped pool may be free now.
    ctl.free_orphans();
}

/// A ring of owned mbufs (`rte_ring_create`), for handing packets between lcores.
///
/// `Send + Sync`: share it (e.g. in an `Arc`) between the producer and the consumer.
/// With `single_producer` (`single_consumer`) one thread at a time may enqueue
/// (dequeue), as DPDK requires; this is enforced (see the module's `Side`). Mbufs still
/// in the ring when it is dropped are freed.
pub struct Ring {
    ptr: NonNull<sys::rte_ring>,
    name: String,
    prod: Side,
    cons: Side,
}

// SAFETY: rte_ring is made for use across lcores: its multi-producer/consumer sides are
// thread-safe, and a single side is serialised by its lock; it holds only owned mbufs,
// which are Send.
unsafe impl Send for Ring {}
// SAFETY: as above; every method takes &self.
unsafe impl Sync for Ring {}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("name", &self.name)
            .field("count", &self.count())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl Ring {
    /// A ring named `name` (unique in the process) that holds exactly `count` mbufs,
    /// on NUMA `socket` (-1 for any). `single_producer` (`single_consumer`): one
    /// thread at a time enqueues (dequeues), which is cheaper in DPDK.
    pub fn new(
        name: &str,
        count: u32,
        single_producer: bool,
        single_consumer: bool,
        socket: i32,
    ) -> Result<Ring> {
        let ptr = create(
            "ring",
            name,
            count,
            None,
            (single_producer, single_consumer),
            socket,
        )?;
        Ok(Ring {
            ptr,
            name: name.to_string(),
            prod: Side::new(single_producer),
            cons: Side::new(single_consumer),
        })
    }

    /// Moves mbufs from the front of `burst` into the ring, as many as fit; the rest
    /// stay in `burst`, in order. Returns how many moved.
    #[inline]
    pub fn enqueue_burst(&self, burst: &mut MbufBurst) -> usize {
        let (mbufs, n) = burst.held();
        if n == 0 {
            return 0;
        }
        let _side = self.prod.lock();
        // SAFETY: the ring is alive; its producer side is ours (lock above, or a
        // thread-safe side); `mbufs` points at `n` owned mbuf pointers, of which the
        // ring copies the first `k`.
        let k = unsafe {
            sys::cgnat_shim_ring_enqueue_burst(
                self.ptr.as_ptr(),
                mbufs.cast::<*mut c_void>().cast_const(),
                n as u32,
            )
        } as usize;
        // SAFETY: the ring owns the first `k` mbufs now.
        unsafe { burst.forget_front(k) };
        k
    }

    /// Moves mbufs from the ring into the free space at the end of `out`; returns how
    /// many moved.
    #[inline]
    pub fn dequeue_burst(&self, out: &mut MbufBurst) -> usize {
        let (slots, room) = out.spare();
        if room == 0 {
            return 0;
        }
        let _side = self.cons.lock();
        // SAFETY: the ring is alive; its consumer side is ours; `slots` has `room`
        // writable slots and DPDK writes at most that many.
        let k = unsafe {
            sys::cgnat_shim_ring_dequeue_burst(
                self.ptr.as_ptr(),
                slots.cast::<*mut c_void>(),
                room as u32,
            )
        } as usize;
        // SAFETY: only owned mbufs are ever enqueued into this ring (its pointer never
        // leaves this type), and each is dequeued once: `out` owns these `k` now.
        unsafe { out.commit(k) };
        k
    }

    /// Mbufs in the ring now.
    pub fn count(&self) -> u32 {
        // SAFETY: a read-only query on a live ring.
        unsafe { sys::cgnat_shim_ring_count(self.ptr.as_ptr()) }
    }

    /// Free slots now.
    pub fn free_count(&self) -> u32 {
        // SAFETY: a read-only query on a live ring.
        unsafe { sys::cgnat_shim_ring_free_count(self.ptr.as_ptr()) }
    }

    /// How many mbufs it can hold (the `count` it was made with).
    pub fn capacity(&self) -> u32 {
        // SAFETY: a read-only query on a live ring.
        unsafe { sys::cgnat_shim_ring_capacity(self.ptr.as_ptr()) }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let mut b = MbufBurst::new();
        while self.dequeue_burst(&mut b) > 0 {
            b.clear();
        }
        free(self.ptr);
    }
}

/// The largest value a [`MsgRing`] carries.
pub const MAX_MSG_SIZE: usize = 1024;

/// A staging area for values DPDK cannot read or write in place: the element size of
/// a DPDK ring is a multiple of 4, and it copies 8- and 16-byte elements as aligned
/// 64- and 128-bit words.
#[repr(C, align(16))]
struct Stage([MaybeUninit<u8>; MAX_MSG_SIZE]);

/// A ring of small `Copy` values (`rte_ring_create_elem`): messages between lcores,
/// stored in the ring itself, so sending one allocates nothing.
///
/// DPDK's element size is `size_of::<T>()` rounded up to a multiple of 4. Values
/// whose size already is one, in a suitably aligned slice, are copied by DPDK
/// directly; others go through a small buffer on the stack. `T` must have a size from
/// 1 to [`MAX_MSG_SIZE`] bytes (checked when the program is compiled).
///
/// `Send + Sync` like [`Ring`], with the same single producer/consumer rule.
pub struct MsgRing<T: Copy + Send> {
    ptr: NonNull<sys::rte_ring>,
    name: String,
    prod: Side,
    cons: Side,
    _values: PhantomData<T>,
}

// SAFETY: as for Ring; values of T are copied in on one thread and out on another,
// which T: Send allows.
unsafe impl<T: Copy + Send> Send for MsgRing<T> {}
// SAFETY: as above; every method takes &self.
unsafe impl<T: Copy + Send> Sync for MsgRing<T> {}

impl<T: Copy + Send> fmt::Debug for MsgRing<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsgRing")
            .field("name", &self.name)
            .field("element_size", &Self::ESIZE)
            .field("count", &self.count())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl<T: Copy + Send> MsgRing<T> {
    const SIZE: usize = size_of::<T>();
    /// DPDK's element size.
    const ESIZE: usize = {
        assert!(size_of::<T>() > 0, "MsgRing cannot carry zero-sized values");
        assert!(
            size_of::<T>() <= MAX_MSG_SIZE,
            "MsgRing values are at most MAX_MSG_SIZE (1024) bytes"
        );
        (size_of::<T>() + 3) & !3
    };
    /// The alignment DPDK's copy loops assume for an element array of ESIZE.
    const ALIGN: usize = if Self::ESIZE % 16 == 0 {
        16
    } else if Self::ESIZE % 8 == 0 {
        8
    } else {
        4
    };
    /// Elements per staging pass.
    const PER_STAGE: usize = MAX_MSG_SIZE / Self::ESIZE;

    /// A ring named `name` (unique in the process) that holds exactly `count` values,
    /// on NUMA `socket` (-1 for any); single producer/consumer as for [`Ring::new`].
    pub fn new(
        name: &str,
        count: u32,
        single_producer: bool,
        single_consumer: bool,
        socket: i32,
    ) -> Result<Self> {
        let ptr = create(
            "message ring",
            name,
            count,
            Some(Self::ESIZE as u32),
            (single_producer, single_consumer),
            socket,
        )?;
        Ok(MsgRing {
            ptr,
            name: name.to_string(),
            prod: Side::new(single_producer),
            cons: Side::new(single_consumer),
            _values: PhantomData,
        })
    }

    /// True when DPDK can copy the values at `p` in place.
    #[inline]
    fn in_place(p: *const T) -> bool {
        Self::SIZE == Self::ESIZE && (p as usize) & (Self::ALIGN - 1) == 0
    }

    /// Copies values from the front of `items` into the ring, as many as fit, in
    /// order; returns how many.
    pub fn enqueue_burst(&self, items: &[T]) -> usize {
        if items.is_empty() {
            return 0;
        }
        let _side = self.prod.lock();
        if Self::in_place(items.as_ptr()) {
            let n = items.len().min(u32::MAX as usize);
            // SAFETY: the ring is alive and its producer side ours; `items` holds `n`
            // values of exactly ESIZE bytes each, aligned as DPDK's copy assumes, which
            // it reads (and does not keep a pointer to).
            return unsafe {
                sys::cgnat_shim_ring_enqueue_burst_elem(
                    self.ptr.as_ptr(),
                    items.as_ptr().cast(),
                    Self::ESIZE as u32,
                    n as u32,
                )
            } as usize;
        }
        let mut stage = Stage([MaybeUninit::uninit(); MAX_MSG_SIZE]);
        let base = stage.0.as_mut_ptr().cast::<u8>();
        let mut done = 0;
        for chunk in items.chunks(Self::PER_STAGE) {
            for (i, v) in chunk.iter().enumerate() {
                // SAFETY: element i of the stage, `i * ESIZE .. i * ESIZE + SIZE`, is
                // inside it (i < PER_STAGE = MAX_MSG_SIZE / ESIZE) and does not overlap
                // `v`; a bitwise copy of a Copy value is a copy of it. The padding up to
                // ESIZE stays uninitialised: DPDK copies it as bytes, and it is never
                // read as a value.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        (v as *const T).cast::<u8>(),
                        base.add(i * Self::ESIZE),
                        Self::SIZE,
                    );
                }
            }
            // SAFETY: as in the direct case, with the stage: 16-byte aligned, holding
            // `chunk.len()` elements of ESIZE bytes.
            let k = unsafe {
                sys::cgnat_shim_ring_enqueue_burst_elem(
                    self.ptr.as_ptr(),
                    base.cast::<c_void>().cast_const(),
                    Self::ESIZE as u32,
                    chunk.len() as u32,
                )
            } as usize;
            done += k;
            if k < chunk.len() {
                break;
            }
        }
        done
    }

    /// Copies values out of the ring into the front of `out`, in order; returns how
    /// many (`out[..n]` then holds them).
    pub fn dequeue_burst(&self, out: &mut [T]) -> usize {
        if out.is_empty() {
            return 0;
        }
        let _side = self.cons.lock();
        if Self::in_place(out.as_ptr()) {
            let n = out.len().min(u32::MAX as usize);
            // SAFETY: the ring is alive and its consumer side ours; DPDK writes at most
            // `n` elements of ESIZE == size_of::<T>() bytes into `out`, aligned as its
            // copy assumes. Each element is the bytes of a T that `enqueue_burst` put
            // in (nothing else can reach this ring), so every written value is a valid T.
            return unsafe {
                sys::cgnat_shim_ring_dequeue_burst_elem(
                    self.ptr.as_ptr(),
                    out.as_mut_ptr().cast(),
                    Self::ESIZE as u32,
                    n as u32,
                )
            } as usize;
        }
        let mut stage = Stage([MaybeUninit::uninit(); MAX_MSG_SIZE]);
        let base = stage.0.as_mut_ptr().cast::<u8>();
        let mut done = 0;
        for chunk in out.chunks_mut(Self::PER_STAGE) {
            // SAFETY: the stage has room for PER_STAGE >= chunk.len() elements of
            // ESIZE bytes, 16-byte aligned; DPDK writes at most chunk.len() of them.
            let k = unsafe {
                sys::cgnat_shim_ring_dequeue_burst_elem(
                    self.ptr.as_ptr(),
                    base.cast::<c_void>(),
                    Self::ESIZE as u32,
                    chunk.len() as u32,
                )
            } as usize;
            for (i, slot) in chunk[..k].iter_mut().enumerate() {
                // SAFETY: element i (< k) was written by DPDK: the first SIZE bytes are
                // those of a T that enqueue_burst copied in, hence a valid T; read
                // unaligned as element offsets need not match T's alignment.
                *slot = unsafe { base.add(i * Self::ESIZE).cast::<T>().read_unaligned() };
            }
            done += k;
            if k < chunk.len() {
                break;
            }
        }
        done
    }

    /// Values in the ring now.
    pub fn count(&self) -> u32 {
        // SAFETY: a read-only query on a live ring.
        unsafe { sys::cgnat_shim_ring_count(self.ptr.as_ptr()) }
    }

    /// Free slots now.
    pub fn free_count(&self) -> u32 {
        // SAFETY: a read-only query on a live ring.
        unsafe { sys::cgnat_shim_ring_free_count(self.ptr.as_ptr()) }
    }

    /// How many values it can hold (the `count` it was made with).
    pub fn capacity(&self) -> u32 {
        // SAFETY: a read-only query on a live ring.
        unsafe { sys::cgnat_shim_ring_capacity(self.ptr.as_ptr()) }
    }
}

impl<T: Copy + Send> Drop for MsgRing<T> {
    fn drop(&mut self) {
        free(self.ptr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_sizes_round_up_to_four() {
        assert_eq!(MsgRing::<u8>::ESIZE, 4);
        assert_eq!(MsgRing::<[u8; 6]>::ESIZE, 8);
        assert_eq!(MsgRing::<u32>::ESIZE, 4);
        assert_eq!(MsgRing::<u64>::ESIZE, 8);
        assert_eq!(MsgRing::<[u32; 3]>::ESIZE, 12);
        assert_eq!(MsgRing::<[u64; 4]>::ESIZE, 32);
        assert_eq!(MsgRing::<[u8; 1024]>::PER_STAGE, 1);
        assert_eq!(MsgRing::<u8>::PER_STAGE, 256);
    }

    #[test]
    fn in_place_only_when_dpdk_can_copy_directly() {
        assert_eq!(MsgRing::<u64>::ALIGN, 8);
        assert_eq!(MsgRing::<[u64; 2]>::ALIGN, 16);
        assert_eq!(MsgRing::<[u32; 3]>::ALIGN, 4);
        assert!(MsgRing::<u32>::in_place(8 as *const u32));
        assert!(!MsgRing::<[u8; 6]>::in_place(16 as *const [u8; 6]));
        assert!(!MsgRing::<[u8; 4]>::in_place(3 as *const [u8; 4]));
        assert!(MsgRing::<[u64; 2]>::in_place(32 as *const [u64; 2]));
        assert!(!MsgRing::<[u64; 2]>::in_place(40 as *const [u64; 2]));
    }

    #[test]
    fn rings_refuse_service_before_eal() {
        assert_eq!(
            Ring::new("r", 8, true, true, -1).unwrap_err(),
            Error::EalNotRunning
        );
        assert_eq!(
            MsgRing::<u32>::new("m", 8, true, true, -1).unwrap_err(),
            Error::EalNotRunning
        );
        assert!(matches!(
            Ring::new("r", 0, true, true, -1),
            Err(Error::Invalid(_))
        ));
    }

    #[test]
    fn side_lock_serialises_a_single_side() {
        let s = Side::new(true);
        let g = s.lock();
        assert!(s.busy.load(Ordering::SeqCst));
        drop(g);
        assert!(!s.busy.load(Ordering::SeqCst));
        let m = Side::new(false);
        let _g = m.lock();
        assert!(!m.busy.load(Ordering::SeqCst), "a multi side takes no lock");
    }
}
