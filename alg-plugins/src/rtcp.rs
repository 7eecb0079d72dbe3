//! RTCP (RFC 3550 section 6): the SDES CNAME of a compound packet, which phones often
//! build as `user@host-address` (section 6.5.1) and so carries the inside address out
//! of a media session. [`rewrite_cname`] rebuilds the compound packet with the address
//! replaced; any packet that does not parse cleanly (SRTCP, truncated, bad lengths)
//! is left alone.

/// SDES packet type.
const SDES: u8 = 202;
/// CNAME item type.
const CNAME: u8 = 1;

/// The compound packet `p` with `from` replaced by `to` in every CNAME whose host part
/// (after `@`) or whole text is `from`; None when nothing changes or `p` is not a
/// clean compound RTCP packet.
pub fn rewrite_cname(p: &[u8], from: &str, to: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(p.len() + 32);
    let mut changed = false;
    let mut at = 0;
    while at < p.len() {
        let h = p.get(at..at + 4)?;
        if h[0] >> 6 != 2 {
            return None;
        }
        let len = (usize::from(u16::from_be_bytes([h[2], h[3]])) + 1) * 4;
        let pkt = p.get(at..at + len)?;
        if h[1] != SDES || h[0] & 0x20 != 0 {
            out.extend_from_slice(pkt);
            at += len;
            continue;
        }
        let chunks = usize::from(h[0] & 0x1f);
        let start = out.len();
        out.extend_from_slice(&pkt[..4]);
        let mut c = 4;
        for _ in 0..chunks {
            out.extend_from_slice(pkt.get(c..c + 4)?);
            c += 4;
            loop {
                let t = *pkt.get(c)?;
                if t == 0 {
                    break;
                }
                let n = usize::from(*pkt.get(c + 1)?);
                let text = pkt.get(c + 2..c + 2 + n)?;
                let new = if t == CNAME {
                    cname(text, from, to)
                } else {
                    None
                };
                let text = new.as_deref().unwrap_or(text);
                changed |= new.is_some();
                out.push(t);
                out.push(u8::try_from(text.len()).ok()?);
                out.extend_from_slice(text);
                c += 2 + n;
            }
            // The end item and padding to a 32-bit boundary, in and out.
            c += 4 - (c % 4);
            let pad = 4 - ((out.len() - start) % 4);
            out.extend(std::iter::repeat_n(0, pad));
        }
        if c != len {
            return None;
        }
        let words = (out.len() - start) / 4 - 1;
        out[start + 2..start + 4].copy_from_slice(&u16::try_from(words).ok()?.to_be_bytes());
        at += len;
    }
    changed.then_some(out)
}

fn cname(text: &[u8], from: &str, to: &str) -> Option<Vec<u8>> {
    let host_at = text.iter().rposition(|&b| b == b'@').map_or(0, |i| i + 1);
    (&text[host_at..] == from.as_bytes()).then(|| {
        let mut v = text[..host_at].to_vec();
        v.extend_from_slice(to.as_bytes());
        v
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Receiver report, then SDES with one chunk (CNAME, NOTE), then BYE.
    fn compound(cname: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 201, 0, 1, 1, 2, 3, 4];
        let mut sdes = vec![0x81, 202, 0, 0, 9, 9, 9, 9, CNAME, cname.len() as u8];
        sdes.extend_from_slice(cname);
        sdes.extend_from_slice(&[5, 2, b'h', b'i', 0]);
        while sdes.len() % 4 != 0 {
            sdes.push(0);
        }
        let w = (sdes.len() / 4 - 1) as u16;
        sdes[2..4].copy_from_slice(&w.to_be_bytes());
        p.extend_from_slice(&sdes);
        p.extend_from_slice(&[0x81, 203, 0, 1, 9, 9, 9, 9]);
        p
    }

    #[test]
    fn cname_host_is_replaced_and_lengths_stay_right() {
        let p = compound(b"11894297-4432a9f8@192.168.1.2");
        let q = rewrite_cname(&p, "192.168.1.2", "198.51.100.13").unwrap();
        assert_eq!(q, compound(b"11894297-4432a9f8@198.51.100.13"));
        // Back again gives the original.
        assert_eq!(
            rewrite_cname(&q, "198.51.100.13", "192.168.1.2").unwrap(),
            p
        );
    }

    #[test]
    fn other_cnames_and_bad_packets_are_left_alone() {
        assert_eq!(
            rewrite_cname(&compound(b"alice@example.org"), "192.168.1.2", "1.2.3.4"),
            None
        );
        assert_eq!(
            rewrite_cname(&compound(b"x@192.168.1.20"), "192.168.1.2", "1.2.3.4"),
            None
        );
        let mut p = compound(b"a@192.168.1.2");
        p.truncate(p.len() - 3);
        assert_eq!(rewrite_cname(&p, "192.168.1.2", "1.2.3.4"), None);
        let mut p = compound(b"a@192.168.1.2");
        p[10] = 200; // CNAME length past the packet
        assert_eq!(rewrite_cname(&p, "192.168.1.2", "1.2.3.4"), None);
        assert_eq!(rewrite_cname(b"\x00\x00", "a", "b"), None);
        assert_eq!(rewrite_cname(&[], "a", "b"), None);
    }
}
