//! 802.1Q and QinQ (802.1ad) tags: what a frame carries between its MAC addresses and
//! its EtherType, and the two edits the data path makes (strip on the way in, push on
//! the way out) by moving the 12 MAC bytes over the tags' room.

use super::{be16, put16, WireError};
use crate::buf::PacketBuf;

/// TPID of an 802.1Q (customer) tag.
pub const TPID_8021Q: u16 = 0x8100;
/// TPID of an 802.1ad (service, QinQ outer) tag.
pub const TPID_8021AD: u16 = 0x88a8;
/// Bytes of one tag.
pub const TAG_LEN: usize = 4;

/// A frame's VLAN ids, outermost first: none, one (802.1Q) or two (an 802.1ad outer
/// tag and an 802.1Q inner one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Tags {
    /// The ids (12 bits each); only the first `n` mean anything.
    pub ids: [u16; 2],
    /// How many tags.
    pub n: u8,
}

impl Tags {
    /// No tag.
    pub const NONE: Tags = Tags { ids: [0; 2], n: 0 };

    /// Tags from a configured list (one or two ids).
    pub fn of(ids: &[u16]) -> Tags {
        match *ids {
            [a] => Tags { ids: [a, 0], n: 1 },
            [a, b] => Tags { ids: [a, b], n: 2 },
            _ => Tags::NONE,
        }
    }

    /// Reads a frame's tags: an 802.1ad tag must be followed by an 802.1Q one; an
    /// 802.1Q tag followed by another is a QinQ pair too (as some switches, and
    /// Linux packet sockets that give the outer tag back as 802.1Q, write it); an
    /// 802.1Q tag alone is one tag.
    pub fn parse(frame: &[u8]) -> Result<Tags, WireError> {
        if frame.len() < 14 {
            return Err(WireError::Truncated);
        }
        let outer = be16(frame, 12);
        if !is_tag(outer) {
            return Ok(Tags::NONE);
        }
        if frame.len() < 18 {
            return Err(WireError::Truncated);
        }
        let first = be16(frame, 14) & 0x0fff;
        let next = be16(frame, 16);
        if next != TPID_8021Q {
            if outer == TPID_8021AD {
                return Err(WireError::Malformed);
            }
            return Ok(Tags {
                ids: [first, 0],
                n: 1,
            });
        }
        if frame.len() < 22 {
            return Err(WireError::Truncated);
        }
        Ok(Tags {
            ids: [first, be16(frame, 18) & 0x0fff],
            n: 2,
        })
    }

    /// Bytes the tags take.
    pub fn len(&self) -> usize {
        usize::from(self.n) * TAG_LEN
    }

    /// True for an untagged frame.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The Ethernet header's length with these tags (EtherType included).
    pub fn header_len(&self) -> usize {
        14 + self.len()
    }
}

/// True if `ethertype` (the one after the MAC addresses) starts a tag.
#[inline]
pub fn is_tag(ethertype: u16) -> bool {
    ethertype == TPID_8021Q || ethertype == TPID_8021AD
}

/// Strips `tags` (read by [`Tags::parse`]) from the frame: the MAC addresses move
/// up over them. False if the frame is shorter.
pub fn pop<B: PacketBuf>(buf: &mut B, tags: Tags) -> bool {
    let n = tags.len();
    if n == 0 {
        return true;
    }
    if buf.len() < 14 + n {
        return false;
    }
    buf.data_mut().copy_within(0..12, n);
    buf.adj(n)
}

/// Pushes `tags` into an untagged frame, in front of its EtherType (QinQ: the outer
/// one with TPID 0x88a8). False if there is no headroom.
pub fn push<B: PacketBuf>(buf: &mut B, tags: Tags) -> bool {
    let n = tags.len();
    if n == 0 {
        return true;
    }
    if buf.len() < 14 || !buf.prepend(n) {
        return false;
    }
    let d = buf.data_mut();
    d.copy_within(n..n + 12, 0);
    for i in 0..usize::from(tags.n) {
        let tpid = if tags.n == 2 && i == 0 {
            TPID_8021AD
        } else {
            TPID_8021Q
        };
        put16(d, 12 + i * TAG_LEN, tpid);
        put16(d, 14 + i * TAG_LEN, tags.ids[i]);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;

    fn frame() -> Vec<u8> {
        let mut f: Vec<u8> = (1..=12).collect();
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        f
    }

    #[test]
    fn push_then_parse_then_pop_gives_the_frame_back() {
        for ids in [&[100][..], &[10, 200][..]] {
            let t = Tags::of(ids);
            let mut b = VecBuf::new(&frame());
            assert!(push(&mut b, t));
            assert_eq!(b.len(), frame().len() + t.len());
            assert_eq!(&b.data()[..12], &frame()[..12]);
            let outer = if ids.len() == 2 { 0x88a8 } else { 0x8100 };
            assert_eq!(be16(b.data(), 12), outer);
            assert_eq!(Tags::parse(b.data()), Ok(t));
            assert_eq!(be16(b.data(), t.header_len() - 2), 0x0800);
            assert!(pop(&mut b, t));
            assert_eq!(b.data(), &frame()[..]);
        }
    }

    #[test]
    fn untagged_truncated_and_bad_qinq() {
        assert_eq!(Tags::parse(&frame()), Ok(Tags::NONE));
        let mut f = frame();
        f[12] = 0x81;
        f[13] = 0;
        assert_eq!(Tags::parse(&f), Err(WireError::Truncated));
        f[12] = 0x88;
        f[13] = 0xa8;
        f.extend_from_slice(&[0; 8]);
        assert_eq!(Tags::parse(&f), Err(WireError::Malformed));
        // Two 802.1Q tags: a QinQ pair.
        let mut b = VecBuf::new(&frame());
        assert!(push(&mut b, Tags::of(&[10, 300])));
        b.data_mut()[12..14].copy_from_slice(&[0x81, 0]);
        assert_eq!(Tags::parse(b.data()), Ok(Tags::of(&[10, 300])));
    }
}
