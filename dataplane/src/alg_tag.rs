//! The ALG tag: what the worker's NAT and contract path tell its ALG stream engine
//! about a frame of an ALG's control session (the session's endpoints, the ALG, the translations it reserved),
//! and where a frame's L4 header and TCP payload are. Below the stream engine's
//! control (`alg.rs`) and the contract ALGs (`alg_contract.rs`); it imports neither.
//!
//! The tag travels in front of the frame, in the mbuf headroom:
//! `[0xA7, direction, n, alg, in_addr, in_port, rem_addr, rem_port, out_addr, out_port, frag, frags,
//! nat64, inside_server, worker_read, grew, n x (in_addr, in_port, out_addr, out_port)]`.

use crate::buf::PacketBuf;
use crate::wire::{be16, be32, ipv4, put16, put32, tcp};

const MAGIC: u8 = 0xA7;
/// Rewrites one packet may carry.
pub const MAX_REWRITES: usize = 8;
const HEAD: usize = 30;
const EACH: usize = 12;

/// An announced endpoint and its translation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rewrite {
    /// Inside address and port as the client wrote them.
    pub inside: (u32, u16),
    /// Their translation.
    pub outside: (u32, u16),
}

/// What the worker's NAT and contract path tell the ALG stream engine about a packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tag {
    /// 0: from the inside host, 1: from the outside peer.
    pub dir: u8,
    /// The session's inside endpoint.
    pub inside: (u32, u16),
    /// The session's remote endpoint.
    pub remote: (u32, u16),
    /// The session's outside endpoint (the inside one's translation).
    pub outside: (u32, u16),
    /// The ALG (see [`crate::nat::ALG_FTP`] and the others).
    pub alg: u8,
    /// Rewrites decided by the worker.
    pub rewrites: [Rewrite; MAX_REWRITES],
    /// How many.
    pub n: u8,
    /// Index of this fragment among the `frags` of a datagram the worker reassembled
    /// (the ALG stream engine gathers them, rewrites the whole and fragments it again).
    pub frag: u8,
    /// Fragments of that datagram; 0 for a frame that is a whole packet.
    pub frags: u8,
    /// A NAT64 session (the inside endpoint is an IPv6 host's handle): the FTP ALG
    /// translates between the IPv6 client and the IPv4 server (RFC 6384).
    pub nat64: bool,
    /// The session's inside host is the ALG's server (its port is one of the ALG's:
    /// a port forward).
    pub inside_server: bool,
    /// How far into the frame's payload (as it comes to the stream engine) the
    /// worker read: the messages before it, the worker planned, granted and rewrote
    /// (the engine reads them no more); the stream engine plans the others and asks
    /// the NAT for their grants itself ([`crate::alg_contract::EngineGrants`]), so
    /// that each message is read once. 0: a frame handed over unread (a stateful
    /// ALG's stream, a stream the engine adjusts or polices, a datagram reassembled
    /// from fragments); [`Tag::READ_ALL`]: all of it (a datagram the policy refused).
    pub worker_read: u16,
    /// How much the worker's rewrite of what it read changed the payload's length
    /// (a TCP stream's first length-changing rewrite: the engine adjusts the
    /// sequence numbers from it on).
    pub grew: i16,
}

impl Tag {
    /// [`Tag::worker_read`] of a frame the worker read whole.
    pub const READ_ALL: u16 = u16::MAX;

    /// Prepends the tag to the frame; false without headroom.
    pub fn push<B: PacketBuf>(&self, buf: &mut B) -> bool {
        let len = HEAD + EACH * usize::from(self.n);
        if !buf.prepend(len) {
            return false;
        }
        let d = buf.data_mut();
        d[0] = MAGIC;
        d[1] = self.dir;
        d[2] = self.n;
        d[3] = self.alg;
        put32(d, 4, self.inside.0);
        put16(d, 8, self.inside.1);
        put32(d, 10, self.remote.0);
        put16(d, 14, self.remote.1);
        put32(d, 16, self.outside.0);
        put16(d, 20, self.outside.1);
        d[22] = self.frag;
        d[23] = self.frags;
        d[24] = u8::from(self.nat64);
        d[25] = u8::from(self.inside_server);
        put16(d, 26, self.worker_read);
        put16(d, 28, self.grew as u16);
        for (k, r) in self.rewrites[..usize::from(self.n)].iter().enumerate() {
            let at = HEAD + EACH * k;
            put32(d, at, r.inside.0);
            put16(d, at + 4, r.inside.1);
            put32(d, at + 6, r.outside.0);
            put16(d, at + 10, r.outside.1);
        }
        true
    }

    /// Takes the tag off the front of the frame.
    pub fn pop<B: PacketBuf>(buf: &mut B) -> Option<Tag> {
        let d = buf.data();
        if d.len() < HEAD || d[0] != MAGIC || usize::from(d[2]) > MAX_REWRITES {
            return None;
        }
        let n = d[2];
        let len = HEAD + EACH * usize::from(n);
        if d.len() < len {
            return None;
        }
        let mut t = Tag {
            dir: d[1],
            inside: (be32(d, 4), be16(d, 8)),
            remote: (be32(d, 10), be16(d, 14)),
            outside: (be32(d, 16), be16(d, 20)),
            alg: d[3],
            n,
            frag: d[22],
            frags: d[23],
            nat64: d[24] == 1,
            inside_server: d[25] == 1,
            worker_read: be16(d, 26),
            grew: be16(d, 28) as i16,
            ..Tag::default()
        };
        for k in 0..usize::from(n) {
            let at = HEAD + EACH * k;
            t.rewrites[k] = Rewrite {
                inside: (be32(d, at), be16(d, at + 4)),
                outside: (be32(d, at + 6), be16(d, at + 10)),
            };
        }
        buf.adj(len).then_some(t)
    }
}

/// The TCP payload range of the IPv4 frame (or IPv6, a NAT64 session's frame to its
/// host), if any.
pub fn tcp_payload(d: &[u8]) -> Option<(usize, usize)> {
    let (l4, end, proto) = crate::mangle::l4_of(d, 14)?;
    if proto != ipv4::PROTO_TCP || end > d.len() || l4 > end {
        return None;
    }
    let seg = tcp::Segment::new_checked(&d[l4..end]).ok()?;
    Some((l4 + seg.header_len(), end))
}

/// Where the L4 header of the frame's IPv4 or IPv6 packet starts (14 + 20 if unknown).
pub fn l4_at(d: &[u8]) -> usize {
    crate::mangle::l4_of(d, 14).map_or(34, |x| x.0)
}
