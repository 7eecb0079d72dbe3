//! The pipeline's packet-buffer contract over DPDK mbufs (single-segment: cgnat
//! configures its ports without scatter, so every received frame is contiguous).

use crate::buf::PacketBuf;
use cgnat_ffi::Mbuf;

impl PacketBuf for Mbuf {
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }
    fn prepend(&mut self, n: usize) -> bool {
        Mbuf::prepend(self, n)
    }
    fn append(&mut self, n: usize) -> bool {
        Mbuf::append(self, n)
    }
    fn adj(&mut self, n: usize) -> bool {
        Mbuf::adj(self, n)
    }
    fn trim(&mut self, n: usize) -> bool {
        Mbuf::trim(self, n)
    }
}
