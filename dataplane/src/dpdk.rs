//! The pipeline's packet-buffer contract over DPDK mbufs (single-segment: cgnat
//! configures its ports without scatter, so every received frame is contiguous).

use crate::buf::PacketBuf;
use cgnat_ffi::Mbuf;

impl PacketBuf for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }
    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        Mbuf::prepend(self, n)
    }
    #[inline]
    fn append(&mut self, n: usize) -> bool {
        Mbuf::append(self, n)
    }
    #[inline]
    fn adj(&mut self, n: usize) -> bool {
        Mbuf::adj(self, n)
    }
    #[inline]
    fn trim(&mut self, n: usize) -> bool {
        Mbuf::trim(self, n)
    }
}
