//! Data-parallel helpers the NAT's lookups use (SSE2 on x86-64, which every x86-64
//! CPU has; plain Rust elsewhere).

/// For the 16 four-byte slots of a hash index's cache line (`nat/index.rs`: the
/// record number plus one in the low 24 bits, 0 when empty; a tag in the high 8):
/// bit `k` of the first mask is set when slot `k`'s tag is `tag`, bit `k` of the
/// second when slot `k` is empty (its low 24 bits 0).
#[inline]
pub fn slot_masks(line: &[u32; 16], tag: u32) -> (u32, u32) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{
            __m128i, _mm_and_si128, _mm_cmpeq_epi32, _mm_loadu_si128, _mm_movemask_epi8,
            _mm_packs_epi16, _mm_packs_epi32, _mm_set1_epi32, _mm_setzero_si128, _mm_srli_epi32,
        };
        let p = line.as_ptr().cast::<__m128i>();
        // SAFETY: `line` is 64 readable bytes: four unaligned 16-byte loads from its
        // start. SSE2 is part of x86-64 itself, so its intrinsics can always run.
        unsafe {
            let v = [
                _mm_loadu_si128(p),
                _mm_loadu_si128(p.add(1)),
                _mm_loadu_si128(p.add(2)),
                _mm_loadu_si128(p.add(3)),
            ];
            let t = _mm_set1_epi32(tag as i32);
            let low = _mm_set1_epi32(0x00ff_ffff);
            let zero = _mm_setzero_si128();
            let hit = v.map(|x| _mm_cmpeq_epi32(_mm_srli_epi32::<24>(x), t));
            let empty = v.map(|x| _mm_cmpeq_epi32(_mm_and_si128(x, low), zero));
            // Lanes of all ones or zeroes, narrowed to a byte each in slot order.
            let bits = |m: [__m128i; 4]| {
                let b = _mm_packs_epi16(_mm_packs_epi32(m[0], m[1]), _mm_packs_epi32(m[2], m[3]));
                _mm_movemask_epi8(b) as u32 & 0xffff
            };
            (bits(hit), bits(empty))
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        slot_masks_plain(line, tag)
    }
}

/// [`slot_masks`] one slot at a time.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn slot_masks_plain(line: &[u32; 16], tag: u32) -> (u32, u32) {
    let (mut hit, mut empty) = (0, 0);
    for (k, &s) in line.iter().enumerate() {
        hit |= u32::from(s >> 24 == tag) << k;
        empty |= u32::from(s & 0x00ff_ffff == 0) << k;
    }
    (hit, empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_agree_with_the_slots_one_at_a_time() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000 {
            let mut line = [0u32; 16];
            for s in line.iter_mut() {
                // Empty slots, slots of a few tags, records of every size.
                *s = match next() % 4 {
                    0 => 0,
                    1 => ((next() % 3) as u32) << 24,
                    _ => (next() as u32 % 3) << 24 | (next() as u32 & 0x00ff_ffff),
                };
            }
            let tag = (next() % 4) as u32;
            assert_eq!(
                slot_masks(&line, tag),
                slot_masks_plain(&line, tag),
                "round {round}: {line:x?} tag {tag}"
            );
        }
        let mut line = [0x0100_0001u32; 16];
        line[0] = 0;
        line[15] = 0xff00_0000;
        assert_eq!(slot_masks(&line, 1), (0x7ffe, 0x8001));
        assert_eq!(slot_masks(&line, 0xff), (0x8000, 0x8001));
        assert_eq!(slot_masks(&line, 0), (0x0001, 0x8001));
    }
}
