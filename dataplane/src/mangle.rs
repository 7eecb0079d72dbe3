//! The one helper for payload rewrites that change length ("mangle"), and the TCP
//! sequence adjustment that must follow them (as Linux's nf_conntrack_seqadj does,
//! but remembering several correction points, so a retransmission of bytes before any
//! of the last eight rewrites still gets the offset that applied to it).
//!
//! Both are tools for the ALGs: the control lcore's rewrites use both; the one length
//! change on a worker is the RTCP CNAME rewrite of announced media (`alg-plugins`'s
//! `rtcp`), which goes through [`mangle`] too. Translation alone never changes a
//! packet's length.

use crate::buf::PacketBuf;
use crate::wire::checksum;
use crate::wire::{be16, be32, ipv4, put16, put32, tcp, udp};

/// Why a rewrite could not be done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MangleError {
    /// The packet is not IPv4 TCP or UDP, or the range lies outside its payload.
    OutOfRange,
    /// Not enough room in the buffer to grow (or the result exceeds 65535 bytes).
    NoRoom,
}

/// Where the L4 header of the IP packet at `l3` starts and the packet ends, and its
/// protocol: IPv4, or IPv6 without extension headers (as NAT64 translation leaves a
/// packet it sends to a host, RFC 7915). None for anything else.
pub fn l4_of(d: &[u8], l3: usize) -> Option<(usize, usize, u8)> {
    let v = d.get(l3)? >> 4;
    if v == 6 {
        let ip = crate::wire::ipv6::Packet::new_checked(d.get(l3..)?).ok()?;
        let l4 = l3 + crate::wire::ipv6::HEADER_LEN;
        let end = l4 + ip.payload_len();
        let nh = ip.next_header();
        (end <= d.len() && matches!(nh, ipv4::PROTO_TCP | ipv4::PROTO_UDP)).then_some((l4, end, nh))
    } else {
        let ip = ipv4::Packet::new_checked(d.get(l3..)?).ok()?;
        Some((l3 + ip.header_len(), l3 + ip.total_len(), ip.protocol()))
    }
}

/// Replaces `len` bytes at `offset` of the L4 payload of the IP packet at `l3` (IPv4,
/// or IPv6 as [`l4_of`] reads it) with `with`, moving the tail, and fixes the IP
/// length (and IPv4 checksum) and the L4 length and checksum. Returns the change in
/// length.
pub fn mangle<B: PacketBuf>(
    buf: &mut B,
    l3: usize,
    offset: usize,
    len: usize,
    with: &[u8],
) -> Result<isize, MangleError> {
    let (l4, end, proto) = l4_of(buf.data(), l3).ok_or(MangleError::OutOfRange)?;
    let v6 = buf.data()[l3] >> 4 == 6;
    let total = end - l3;
    if end > buf.data().len() || l4 > end {
        return Err(MangleError::OutOfRange);
    }
    let hdr = match proto {
        ipv4::PROTO_TCP => tcp::Segment::new_checked(&buf.data()[l4..end])
            .map_err(|_| MangleError::OutOfRange)?
            .header_len(),
        ipv4::PROTO_UDP => udp::HEADER_LEN,
        _ => return Err(MangleError::OutOfRange),
    };
    let at = l4 + hdr + offset;
    if at + len > end {
        return Err(MangleError::OutOfRange);
    }
    let delta = with.len() as isize - len as isize;
    let new_total = total as isize + delta;
    if new_total > 65535 {
        return Err(MangleError::NoRoom);
    }
    let tail = end - (at + len);
    if delta > 0 {
        // Frame bytes after the datagram (Ethernet padding) are dropped first.
        if !buf.set_len(end) || !buf.append(delta as usize) {
            return Err(MangleError::NoRoom);
        }
        let d = buf.data_mut();
        d.copy_within(at + len..at + len + tail, at + with.len());
    } else {
        let d = buf.data_mut();
        d.copy_within(at + len..at + len + tail, at + with.len());
        if !buf.set_len((end as isize + delta) as usize) {
            return Err(MangleError::NoRoom);
        }
    }
    let new_end = (end as isize + delta) as usize;
    let d = buf.data_mut();
    d[at..at + with.len()].copy_from_slice(with);
    let pseudo = |d: &[u8], l4_len: u16| {
        if v6 {
            let (s6, d6) = (&d[l3 + 8..l3 + 24], &d[l3 + 24..l3 + 40]);
            let mut acc = checksum::add(checksum::sum(s6), checksum::sum(d6));
            acc = checksum::add(acc, u32::from(l4_len));
            checksum::add(acc, u32::from(proto))
        } else {
            let ip = ipv4::Packet::new_unchecked(&d[l3..]);
            checksum::pseudo_header(
                ip.src().to_be_bytes(),
                ip.dst().to_be_bytes(),
                proto,
                l4_len,
            )
        }
    };
    if v6 {
        put16(d, l3 + 4, (new_end - l4) as u16);
    } else {
        let mut ip = ipv4::Packet::new_unchecked(&mut d[l3..new_end]);
        ip.set_total_len(new_total as u16);
    }
    let l4_len = (new_end - l4) as u16;
    let ph = pseudo(d, l4_len);
    let seg = &mut d[l4..new_end];
    match proto {
        ipv4::PROTO_TCP => {
            put16(seg, tcp::CHECKSUM, 0);
            let c = checksum::finish(checksum::add(checksum::sum(seg), ph));
            put16(seg, tcp::CHECKSUM, c);
        }
        _ => {
            put16(seg, 4, l4_len);
            let had = be16(seg, udp::CHECKSUM) != 0;
            put16(seg, udp::CHECKSUM, 0);
            if had {
                let c = checksum::finish(checksum::add(checksum::sum(seg), ph));
                put16(seg, udp::CHECKSUM, if c == 0 { 0xffff } else { c });
            }
        }
    }
    Ok(delta)
}

/// `a` comes after `b` in sequence space (RFC 1982).
fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

const POINTS: usize = 8;

/// The corrections of one direction: from each point's sequence number on (strictly
/// after), bytes of that direction are shifted by its cumulative offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Direction {
    points: [(u32, i32); POINTS],
    n: usize,
    /// Offset before the oldest remembered point.
    base: i32,
}

impl Direction {
    fn last(&self) -> i32 {
        if self.n == 0 {
            self.base
        } else {
            self.points[self.n - 1].1
        }
    }

    /// Offset for a segment starting at `seq` (original numbering).
    fn for_seq(&self, seq: u32) -> i32 {
        let mut off = self.base;
        for &(pos, cum) in &self.points[..self.n] {
            if after(seq, pos) {
                off = cum;
            }
        }
        off
    }

    /// Offset to remove from an ack (mangled numbering) acknowledging these bytes.
    fn for_ack(&self, ack: u32) -> i32 {
        let mut off = self.base;
        for &(pos, cum) in &self.points[..self.n] {
            if after(ack.wrapping_sub(cum as u32), pos) {
                off = cum;
            }
        }
        off
    }

    fn record(&mut self, seq: u32, delta: i32) {
        let cum = self.last() + delta;
        if self.n > 0 && self.points[self.n - 1].0 == seq {
            // The same segment rewritten again (a retransmission is re-mangled the
            // same way): the correction is already there.
            return;
        }
        if self.n == POINTS {
            self.base = self.points[0].1;
            self.points.copy_within(1.., 0);
            self.n -= 1;
        }
        self.points[self.n] = (seq, cum);
        self.n += 1;
    }
}

/// Sequence adjustment of one TCP connection; index 0 is the direction from the
/// inside host, 1 the other.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqAdj {
    dirs: [Direction; 2],
}

impl SeqAdj {
    /// Its corrections, per direction: the offset before the oldest point, the points
    /// (original sequence number, cumulative offset), oldest first (HA sync).
    pub fn parts(&self) -> [(i32, &[(u32, i32)]); 2] {
        [0, 1].map(|d| {
            let x = &self.dirs[d];
            (x.base, &x.points[..x.n])
        })
    }

    /// The adjustment of `parts` (as [`SeqAdj::parts`] gives them; points past the
    /// eighth of a direction are left out).
    pub fn from_parts(parts: [(i32, &[(u32, i32)]); 2]) -> SeqAdj {
        let mut s = SeqAdj::default();
        for (d, (base, points)) in s.dirs.iter_mut().zip(parts) {
            d.base = base;
            d.n = points.len().min(POINTS);
            d.points[..d.n].copy_from_slice(&points[..d.n]);
        }
        s
    }

    /// Records that the segment starting at `seq` in direction `dir` changed length by
    /// `delta` (call after mangling, with the segment's original sequence number).
    pub fn record(&mut self, dir: usize, seq: u32, delta: i32) {
        if delta != 0 {
            self.dirs[dir & 1].record(seq, delta);
        }
    }

    /// Records `n` bytes put into direction `dir`'s stream after sequence number
    /// `pos` (original numbering): a reply the ALG sends in the sender's name. Bytes
    /// put at the same place again (a second reply before the sender sent more) add
    /// to the same correction.
    pub fn insert(&mut self, dir: usize, pos: u32, n: i32) {
        let d = &mut self.dirs[dir & 1];
        if d.n > 0 && d.points[d.n - 1].0 == pos {
            d.points[d.n - 1].1 += n;
        } else {
            d.record(pos, n);
        }
    }

    /// The offset a segment of direction `dir` starting at `seq` (original
    /// numbering) is shifted by.
    pub fn offset(&self, dir: usize, seq: u32) -> i32 {
        self.dirs[dir & 1].for_seq(seq)
    }

    /// True if any correction was recorded.
    pub fn active(&self) -> bool {
        self.dirs.iter().any(|d| d.n > 0 || d.base != 0)
    }

    /// Adjusts seq, ack and SACK blocks of a TCP segment (at `l4`, inside the IPv4
    /// packet at `l3`) travelling in direction `dir`, with incremental checksums.
    /// Returns the original sequence number (for `record`).
    pub fn adjust<B: PacketBuf>(&self, buf: &mut B, l4: usize, dir: usize) -> Option<u32> {
        let d = buf.data_mut();
        let seg = tcp::Segment::new_checked(&d[l4..]).ok()?;
        let hlen = seg.header_len();
        let (seq, ack, flags) = (seg.seq(), seg.ack(), seg.flags());
        let mine = &self.dirs[dir & 1];
        let theirs = &self.dirs[(dir + 1) & 1];
        let mut check = be16(&d[l4..], tcp::CHECKSUM);
        let new_seq = seq.wrapping_add(mine.for_seq(seq) as u32);
        if new_seq != seq {
            check = checksum::update32(check, seq, new_seq);
            put32(&mut d[l4..], 4, new_seq);
        }
        if flags & tcp::ACK != 0 {
            let new_ack = ack.wrapping_sub(theirs.for_ack(ack) as u32);
            if new_ack != ack {
                check = checksum::update32(check, ack, new_ack);
                put32(&mut d[l4..], 8, new_ack);
            }
            // SACK blocks acknowledge the other direction's bytes, like the ack.
            let mut i = 20;
            while i < hlen {
                match d[l4 + i] {
                    0 => break,
                    1 => i += 1,
                    kind => {
                        let Some(&olen) = d.get(l4 + i + 1) else {
                            break;
                        };
                        let olen = usize::from(olen);
                        if olen < 2 || i + olen > hlen {
                            break;
                        }
                        if kind == 5 {
                            let mut e = i + 2;
                            while e + 4 <= i + olen {
                                let v = be32(&d[l4..], e);
                                let nv = v.wrapping_sub(theirs.for_ack(v) as u32);
                                if nv != v {
                                    check = checksum::update32(check, v, nv);
                                    put32(&mut d[l4..], e, nv);
                                }
                                e += 4;
                            }
                        }
                        i += olen;
                    }
                }
            }
        }
        put16(&mut d[l4..], tcp::CHECKSUM, check);
        Some(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    fn tcp_frame(seq: u32, ack: u32, payload: &[u8]) -> VecBuf {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([100, 64, 1, 2], [192, 0, 2, 10], 64)
            .tcp(40000, 21, seq, 65535)
            .ack(ack)
            .write(&mut v, payload)
            .unwrap();
        VecBuf::new(&v)
    }

    fn valid(buf: &VecBuf) -> (u32, u32, Vec<u8>) {
        let d = buf.data();
        assert_eq!(
            checksum::fold(checksum::sum(&d[14..34])),
            0xffff,
            "IP checksum"
        );
        let tl = usize::from(be16(d, 16));
        assert_eq!(tl, d.len() - 14, "IP total length");
        let seg = &d[34..14 + tl];
        let src = [d[26], d[27], d[28], d[29]];
        let dst = [d[30], d[31], d[32], d[33]];
        assert_eq!(
            checksum::fold(checksum::add(
                checksum::sum(seg),
                checksum::pseudo_header(src, dst, 6, seg.len() as u16)
            )),
            0xffff,
            "TCP checksum"
        );
        let p = SlicedPacket::from_ethernet(d).unwrap();
        let Some(TransportSlice::Tcp(t)) = p.transport else {
            panic!()
        };
        (
            t.sequence_number(),
            t.acknowledgment_number(),
            t.payload().to_vec(),
        )
    }

    #[test]
    fn mangle_grows_and_shrinks_with_valid_checksums() {
        let mut b = tcp_frame(1000, 5, b"PORT 10,0,0,1,4,1\r\nNOOP\r\n");
        let d = mangle(&mut b, 14, 5, 12, b"198,51,100,7,7,138").unwrap();
        assert_eq!(d, 6);
        assert_eq!(valid(&b).2, b"PORT 198,51,100,7,7,138\r\nNOOP\r\n");
        let d = mangle(&mut b, 14, 5, 18, b"1,2,3,4,0,9").unwrap();
        assert_eq!(d, -7);
        assert_eq!(valid(&b).2, b"PORT 1,2,3,4,0,9\r\nNOOP\r\n");
        assert_eq!(
            mangle(&mut b, 14, 20, 100, b"x"),
            Err(MangleError::OutOfRange)
        );
    }

    #[test]
    fn later_segments_and_acks_follow_the_correction() {
        let mut adj = SeqAdj::default();
        // The client's PORT segment at seq 1000 grows by 6 bytes.
        let mut b = tcp_frame(1000, 5, b"PORT 10,0,0,1,4,1\r\n");
        let seq = adj.adjust(&mut b, 34, 0).unwrap();
        let d = mangle(&mut b, 14, 5, 12, b"198,51,100,7,7,138").unwrap();
        adj.record(0, seq, d as i32);
        assert_eq!(valid(&b).0, 1000, "the rewritten segment keeps its own seq");
        // The next client segment (seq 1019 originally) is shifted by 6.
        let mut n = tcp_frame(1019, 5, b"LIST\r\n");
        adj.adjust(&mut n, 34, 0);
        assert_eq!(valid(&n).0, 1025);
        // The server acks 1025 (mangled numbering): the client must see 1019.
        let mut a = tcp_frame(5, 1025, b"");
        adj.adjust(&mut a, 34, 1);
        assert_eq!(valid(&a).1, 1019);
        // A retransmission of the PORT segment keeps the offset before the point.
        let mut r = tcp_frame(1000, 5, b"PORT 10,0,0,1,4,1\r\n");
        adj.adjust(&mut r, 34, 0);
        assert_eq!(valid(&r).0, 1000);
        // A second correction later on stacks on the first.
        adj.record(0, 1019, -2);
        let mut m = tcp_frame(1030, 5, b"x");
        adj.adjust(&mut m, 34, 0);
        assert_eq!(valid(&m).0, 1030 + 4);
        // Bytes between the two points still get only the first offset.
        let mut k = tcp_frame(1019, 5, b"LIST\r\n");
        adj.adjust(&mut k, 34, 0);
        assert_eq!(valid(&k).0, 1025);
        let mut a2 = tcp_frame(5, 1034, b"");
        adj.adjust(&mut a2, 34, 1);
        assert_eq!(valid(&a2).1, 1030);
    }

    #[test]
    fn sequence_wrap_is_handled() {
        let mut adj = SeqAdj::default();
        adj.record(0, u32::MAX - 2, 10);
        let mut n = tcp_frame(5, 0, b"x");
        adj.adjust(&mut n, 34, 0);
        assert_eq!(valid(&n).0, 15, "after the wrap, still after the point");
    }

    #[test]
    fn sack_blocks_are_adjusted() {
        let mut adj = SeqAdj::default();
        adj.record(0, 1000, 6);
        let mut v = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([192, 0, 2, 10], [100, 64, 1, 2], 64)
            .tcp(21, 40000, 5, 65535)
            .ack(1025)
            .options(&[
                etherparse::TcpOptionElement::Noop,
                etherparse::TcpOptionElement::Noop,
                etherparse::TcpOptionElement::SelectiveAcknowledgement(
                    (1100, 1200),
                    [None, None, None],
                ),
            ])
            .unwrap()
            .write(&mut v, b"")
            .unwrap();
        let mut b = VecBuf::new(&v);
        adj.adjust(&mut b, 34, 1);
        let (_, ack, _) = valid(&b);
        assert_eq!(ack, 1019);
        let d = b.data();
        assert_eq!(be32(d, 34 + 20 + 4), 1094);
        assert_eq!(be32(d, 34 + 20 + 8), 1194);
    }
}
