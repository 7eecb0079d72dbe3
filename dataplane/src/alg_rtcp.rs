//! The RTCP sessions a media expectation opens (SIP's and RTSP's pairs carry
//! `cgnat_alg::id::RTCP`): no ALG of its own and no contract (it has no control
//! stream, no asks, and no `[alg]` key), but an inside host's RTCP names the host in
//! its SDES CNAME, which the worker rewrites inline (`cgnat_alg::rtcp`).

use crate::buf::PacketBuf;
use crate::counters::{AlgEvent, WorkerCounters};
use crate::wire::{ipv4, udp};
use std::net::Ipv4Addr;

/// An RTCP packet of a media session an ALG announced, from the inside host: a CNAME
/// naming the host's address names the outside address instead (the UDP payload is
/// rebuilt through the mangle helper; anything that does not parse goes as it is).
/// Counted `rtcp_cname_rewritten`, or `no_room`, among SIP's events (as always: the
/// media of either ALG). Returns the change in length.
pub fn from_inside<B: PacketBuf>(
    buf: &mut B,
    in_addr: u32,
    out_addr: u32,
    counters: &WorkerCounters,
) -> isize {
    let Some((l4, end, ipv4::PROTO_UDP)) = crate::mangle::l4_of(buf.data(), 14) else {
        return 0;
    };
    let start = l4 + udp::HEADER_LEN;
    if end < start || end > buf.data().len() {
        return 0;
    }
    let from = Ipv4Addr::from(in_addr).to_string();
    let to = Ipv4Addr::from(out_addr).to_string();
    let Some(new) = cgnat_alg::rtcp::rewrite_cname(&buf.data()[start..end], &from, &to) else {
        return 0;
    };
    let (d, e) = match crate::mangle::mangle(buf, 14, 0, end - start, &new) {
        Ok(d) => (d, AlgEvent::RtcpRewritten),
        Err(_) => (0, AlgEvent::NoRoom),
    };
    if let Some(ev) = counters.text_alg_events(crate::nat::ALG_SIP) {
        ev[e as usize].inc();
    }
    d
}
