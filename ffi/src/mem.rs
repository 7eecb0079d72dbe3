//! Memory advice for the NAT's large tables: transparent huge pages.
//!
//! The session, mapping and index tables are ordinary heap memory (`--no-huge` runs
//! have no DPDK hugepage memory, and the tables are sized from the config, possibly
//! gigabytes). Looked up at random, they miss the TLB on almost every access when
//! they are on 4 KB pages. Advising the kernel (`madvise(MADV_HUGEPAGE)`) lets it
//! back them with 2 MB pages where it can (`/sys/kernel/mm/transparent_hugepage/
//! enabled` set to `madvise` or `always`); where it cannot, nothing changes.

use std::mem::MaybeUninit;

const MADV_HUGEPAGE: i32 = 14;
const PAGE: usize = 4096;

extern "C" {
    fn madvise(addr: *mut core::ffi::c_void, len: usize, advice: i32) -> i32;
}

/// Advises huge pages for the whole pages of `len` bytes from `start`.
fn advise(start: usize, len: usize) -> bool {
    let (a, b) = (start.div_ceil(PAGE) * PAGE, (start + len) / PAGE * PAGE);
    if b <= a {
        return false;
    }
    // SAFETY: callers pass memory they borrow (a slice or a vector's spare capacity),
    // so [a, b) is mapped memory of this process. MADV_HUGEPAGE changes how the kernel
    // backs the pages, never their contents.
    unsafe { madvise(a as *mut core::ffi::c_void, b - a, MADV_HUGEPAGE) == 0 }
}

/// Advises huge pages for the whole pages inside `mem`; its contents do not change.
/// Best on memory not yet touched (zeroed memory fresh from the kernel): its first
/// touch then faults in a huge page. True if the kernel took the advice; false if
/// `mem` holds no whole page or the kernel refused (no THP).
pub fn advise_huge_pages<T>(mem: &mut [T]) -> bool {
    advise(mem.as_mut_ptr() as usize, std::mem::size_of_val(mem))
}

/// A vector of `n` copies of `fill`, allocated once (capacity `n`) and advised for
/// huge pages before it is written.
pub fn huge_vec<T: Clone>(n: usize, fill: T) -> Vec<T> {
    let mut v = huge_capacity(n);
    v.resize(n, fill);
    v
}

/// An empty vector with room for `n` elements, advised for huge pages (elements are
/// pushed later, within that capacity).
fn huge_capacity<T>(n: usize) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    let spare: &mut [MaybeUninit<T>] = v.spare_capacity_mut();
    advise(spare.as_mut_ptr() as usize, std::mem::size_of_val(spare));
    v
}

/// `n` zeroes from zeroed memory (mapped by the kernel only when first written, so
/// unwritten parts cost no resident memory), advised for huge pages.
/// For the integer types (`u32`, `u64`), whose zeroed vectors come from zeroed memory;
/// any other type is written whole.
pub fn huge_zeroed<T: Clone + Default>(n: usize) -> Vec<T> {
    let mut v = vec![T::default(); n];
    advise_huge_pages(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_vectors_hold_what_they_were_given() {
        let v = huge_vec(3 << 20, 7u32);
        assert_eq!(v.len(), 3 << 20);
        assert!(v.iter().all(|&x| x == 7));
        let w: Vec<u64> = huge_capacity(1 << 20);
        assert!(w.is_empty() && w.capacity() >= 1 << 20);
        // Nothing whole to advise in a few bytes.
        assert!(!advise_huge_pages(&mut [0u8; 16]));
        let z: Vec<u32> = huge_zeroed(1 << 20);
        assert!(z.len() == 1 << 20 && z.iter().all(|&x| x == 0));
        let z: Vec<u64> = huge_zeroed(1 << 20);
        assert!(z.len() == 1 << 20 && z.iter().all(|&x| x == 0));
    }

    #[test]
    fn the_kernel_takes_the_advice_where_it_has_transparent_huge_pages() {
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        let mut v = vec![0u64; 4 << 20];
        let took = advise_huge_pages(&mut v);
        // Under "never" the kernel may refuse or ignore it; otherwise it takes it.
        if thp.contains("[madvise]") || thp.contains("[always]") {
            assert!(took);
        }
    }
}
