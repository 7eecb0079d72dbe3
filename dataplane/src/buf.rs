//! The packet-buffer contract: NAT and ALG logic is generic over it, so the same code
//! runs on DPDK mbufs in the appliance and on a Vec in unit tests and replay.

/// A contiguous packet buffer with headroom, like a single-segment mbuf.
pub trait PacketBuf {
    /// The packet bytes, starting at the Ethernet header.
    fn data(&self) -> &[u8];
    /// The packet bytes, mutable.
    fn data_mut(&mut self) -> &mut [u8];
    /// Grows the packet at the front by `n` bytes; false if the headroom is too small.
    fn prepend(&mut self, n: usize) -> bool;
    /// Grows the packet at the tail by `n` bytes; false if the tailroom is too small.
    fn append(&mut self, n: usize) -> bool;
    /// Strips `n` bytes from the front; false if the packet is shorter.
    fn adj(&mut self, n: usize) -> bool;
    /// Strips `n` bytes from the tail; false if the packet is shorter.
    fn trim(&mut self, n: usize) -> bool;

    /// Packet length in bytes.
    #[inline]
    fn len(&self) -> usize {
        self.data().len()
    }
    /// True for an empty packet.
    #[inline]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Sets the length to `len`, trimming or appending at the tail.
    #[inline]
    fn set_len(&mut self, len: usize) -> bool {
        let cur = self.len();
        if len <= cur {
            self.trim(cur - len)
        } else {
            self.append(len - cur)
        }
    }
}

/// Headroom of a [`VecBuf`], the same as DPDK's default `RTE_PKTMBUF_HEADROOM`.
pub const VEC_HEADROOM: usize = 128;
/// Room of a [`VecBuf`] after the headroom, like a 2 KiB mbuf data room.
pub const VEC_ROOM: usize = 2048;

/// A Vec-backed packet buffer for tests and replay, with mbuf-like head and tail room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VecBuf {
    storage: Vec<u8>,
    start: usize,
    end: usize,
}

impl VecBuf {
    /// A buffer holding `bytes`, with [`VEC_HEADROOM`] in front and room to grow to
    /// [`VEC_ROOM`] (or the packet's length if that is larger).
    pub fn new(bytes: &[u8]) -> VecBuf {
        VecBuf::with_room(bytes, VEC_ROOM)
    }

    /// A buffer holding `bytes` with room to grow to `room` bytes (or the packet's
    /// length if that is larger), and [`VEC_HEADROOM`] in front.
    pub fn with_room(bytes: &[u8], room: usize) -> VecBuf {
        let room = room.max(bytes.len());
        let mut storage = vec![0u8; VEC_HEADROOM + room];
        storage[VEC_HEADROOM..VEC_HEADROOM + bytes.len()].copy_from_slice(bytes);
        VecBuf {
            storage,
            start: VEC_HEADROOM,
            end: VEC_HEADROOM + bytes.len(),
        }
    }

    /// The packet bytes as an owned Vec.
    pub fn to_vec(&self) -> Vec<u8> {
        self.data().to_vec()
    }
}

impl PacketBuf for VecBuf {
    fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.end]
    }
    fn prepend(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        true
    }
    fn append(&mut self, n: usize) -> bool {
        if self.end + n > self.storage.len() {
            return false;
        }
        self.end += n;
        true
    }
    fn adj(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }
    fn trim(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.end -= n;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_and_tail_room_behave_like_an_mbuf() {
        let mut b = VecBuf::new(&[1, 2, 3]);
        assert!(b.prepend(2));
        assert_eq!(b.len(), 5);
        b.data_mut()[0] = 9;
        assert!(b.adj(2));
        assert_eq!(b.data(), &[1, 2, 3]);
        assert!(b.trim(1));
        assert_eq!(b.data(), &[1, 2]);
        assert!(!b.trim(3));
        assert!(!b.prepend(VEC_HEADROOM + 1));
        assert!(b.set_len(10));
        assert_eq!(b.len(), 10);
        assert!(!b.append(VEC_ROOM));
    }
}
