//! RTCP (RFC 3550 section 6): the SDES CNAME of a compound packet, which phones often
//! build as `user@host-address` (section 6.5.1) and so carries the inside address out
//! of a media session. [`rewrite_cname`] rebuilds the compound packet with the address
//! replaced; any packet that does not parse cleanly (SRTCP, truncated, bad lengths)
//! is left alone. [`Rtcp`] is its ALG contract, for the RTCP sessions an RTP/RTCP
//! pair's expectation makes (session id [`crate::id::RTCP`]: no ALG of the registry,
//! no ports, no `[alg]` section; [`crate::contract_of`] names it).

use crate::contract::{Contract, Ctx, Dir, EditError, Edits, Framing, Grant, Plan};
use crate::text;
use std::net::Ipv4Addr;

/// SDES packet type.
const SDES: u8 = 202;
/// CNAME item type.
const CNAME: u8 = 1;

/// The compound packet `p` with `from` replaced by `to` in every CNAME whose host part
/// (after `@`) or whole text is `from`; None when nothing changes or `p` is not a
/// clean compound RTCP packet.
pub fn rewrite_cname(p: &[u8], from: &str, to: &str) -> Option<Vec<u8>> {
    let mut room = p.len() + 32;
    loop {
        let mut out = vec![0u8; room];
        match rewrite_cname_into(p, from.as_bytes(), to.as_bytes(), &mut out) {
            Ok(n) => return n.map(|n| out[..n].to_vec()),
            Err(_) => room *= 2,
        }
    }
}

/// Bytes written into a buffer of fixed size.
struct Out<'o> {
    b: &'o mut [u8],
    n: usize,
    /// Something did not fit.
    full: bool,
}

impl Out<'_> {
    fn put(&mut self, x: &[u8]) {
        match self.b.get_mut(self.n..self.n + x.len()) {
            Some(to) => {
                to.copy_from_slice(x);
                self.n += x.len();
            }
            None => self.full = true,
        }
    }
}

/// [`rewrite_cname`] into `out` (no allocation): the length of the new packet, None
/// when nothing changes or `p` is not clean; [`EditError::TooMany`] when the new packet
/// does not fit in `out`.
pub fn rewrite_cname_into(
    p: &[u8],
    from: &[u8],
    to: &[u8],
    out: &mut [u8],
) -> Result<Option<usize>, EditError> {
    let mut out = Out {
        b: out,
        n: 0,
        full: false,
    };
    let changed = cname_packets(p, from, to, &mut out);
    if out.full {
        return Err(EditError::TooMany);
    }
    Ok(changed.filter(|&c| c).map(|_| out.n))
}

/// Writes the compound packet `p` with its CNAMEs rewritten into `out`: whether a
/// CNAME changed; None when `p` is not clean.
fn cname_packets(p: &[u8], from: &[u8], to: &[u8], out: &mut Out<'_>) -> Option<bool> {
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
            out.put(pkt);
            at += len;
            continue;
        }
        let chunks = usize::from(h[0] & 0x1f);
        let start = out.n;
        out.put(&pkt[..4]);
        let mut c = 4;
        for _ in 0..chunks {
            out.put(pkt.get(c..c + 4)?);
            c += 4;
            loop {
                let t = *pkt.get(c)?;
                if t == 0 {
                    break;
                }
                let n = usize::from(*pkt.get(c + 1)?);
                let text = pkt.get(c + 2..c + 2 + n)?;
                let host_at = text.iter().rposition(|&b| b == b'@').map_or(0, |i| i + 1);
                out.put(&[t]);
                if t == CNAME && &text[host_at..] == from {
                    changed = true;
                    out.put(&[u8::try_from(host_at + to.len()).ok()?]);
                    out.put(&text[..host_at]);
                    out.put(to);
                } else {
                    out.put(&[n as u8]);
                    out.put(text);
                }
                c += 2 + n;
            }
            // The end item and padding to a 32-bit boundary, in and out.
            c += 4 - (c % 4);
            let pad = 4 - ((out.n.saturating_sub(start)) % 4);
            out.put(&[0u8; 4][..pad]);
        }
        if c != len {
            return None;
        }
        let words = (out.n.saturating_sub(start) / 4).checked_sub(1)?;
        let words = u16::try_from(words).ok()?.to_be_bytes();
        if let Some(w) = out.b.get_mut(start + 2..start + 4) {
            w.copy_from_slice(&words);
        }
        at += len;
    }
    Some(changed)
}

/// Longest RTCP packet rewritten (a jumbo frame's, and room for its CNAMEs to grow);
/// a longer one is left as it is, counted `no_room` by the dataplane.
pub const MAX_RTCP: usize = 9216;

/// The RTCP of announced media on the ALG [`Contract`]: a datagram is one message,
/// which asks nothing; from the inside host, a CNAME naming its address names the
/// session's outside address instead (the edits that make the packet
/// [`rewrite_cname`]'s, noted `rtcp_cname_rewritten`, counted among SIP's events by
/// the dataplane as before). Its edits are made by the worker (a datagram's), so the
/// dataplane's fast path for media is left only for RTCP from the inside host.
pub struct Rtcp;

/// [`Rtcp`]'s own events.
const EVENTS: [&str; 1] = ["rtcp_cname_rewritten"];

impl Contract for Rtcp {
    fn framing(&self, buf: &[u8], ctx: &Ctx) -> Framing {
        // Read only from the inside host (the peer's CNAME is its own).
        if ctx.datagram && ctx.dir == Dir::FromInside && !buf.is_empty() {
            Framing::Whole(buf.len())
        } else {
            Framing::Skip(buf.len().max(1))
        }
    }

    fn plan(&self, _msg: &[u8], _ctx: &Ctx, _plan: &mut Plan) {}

    fn events(&self) -> &'static [&'static str] {
        &EVENTS
    }

    fn edits(
        &self,
        msg: &[u8],
        ctx: &Ctx,
        _plan: &Plan,
        _grants: &[Grant],
        edits: &mut Edits,
    ) -> Result<(), EditError> {
        if ctx.dir != Dir::FromInside {
            return Ok(());
        }
        let from = text::text::<16>(format_args!("{}", Ipv4Addr::from(ctx.inside.0)));
        let to = text::text::<16>(format_args!("{}", Ipv4Addr::from(ctx.outside.0)));
        let (Some(from), Some(to)) = (from, to) else {
            return Ok(());
        };
        let mut new = [0u8; MAX_RTCP];
        if let Some(n) = rewrite_cname_into(msg, from.bytes(), to.bytes(), &mut new)? {
            edits.push_diff(msg, &new[..n])?;
            edits.notes.note(0);
        }
        Ok(())
    }
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
    fn a_packet_whose_rewrite_does_not_fit_is_left_as_it_is() {
        let p = compound(b"a@192.168.1.2");
        let mut small = [0u8; 16];
        assert_eq!(
            rewrite_cname_into(&p, b"192.168.1.2", b"198.51.100.13", &mut small),
            Err(EditError::TooMany)
        );
        // Past MAX_RTCP with the rewrite: the contract's edits fail (the dataplane
        // counts `no_room` and sends the packet as it was).
        let mut big = p.clone();
        let words = (MAX_RTCP / 4) as u16;
        big.extend_from_slice(&[0x80, 204]);
        big.extend_from_slice(&(words - 1).to_be_bytes());
        big.resize(big.len() + usize::from(words - 1) * 4, 0);
        let ctx = Ctx {
            dir: Dir::FromInside,
            inside: (u32::from(Ipv4Addr::new(192, 168, 1, 2)), 30001),
            outside: (u32::from(Ipv4Addr::new(198, 51, 100, 13)), 61001),
            remote: (0xC000_021E, 7001),
            datagram: true,
        };
        let mut e = Edits::default();
        assert_eq!(
            Rtcp.edits(&big, &ctx, &Plan::default(), &[], &mut e),
            Err(EditError::TooMany)
        );
        assert!(e.is_empty() && e.notes.is_empty());
        // rewrite_cname has room for any packet.
        assert!(rewrite_cname(&big, "192.168.1.2", "198.51.100.13").is_some());
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
    fn the_contract_rewrites_the_inside_hosts_cname_only() {
        let ctx = |dir| Ctx {
            dir,
            inside: (u32::from(Ipv4Addr::new(192, 168, 1, 2)), 30001),
            outside: (u32::from(Ipv4Addr::new(198, 51, 100, 13)), 61001),
            remote: (0xC000_021E, 7001),
            datagram: true,
        };
        let long = [b'u'; 60];
        for user in [&b"11894297-4432a9f8"[..], &long[..]] {
            let p = compound(&[user, b"@192.168.1.2"].concat());
            let c = ctx(Dir::FromInside);
            assert_eq!(Rtcp.framing(&p, &c), Framing::Whole(p.len()));
            let mut e = Edits::default();
            Rtcp.edits(&p, &c, &Plan::default(), &[], &mut e).unwrap();
            let mut out = vec![0u8; p.len() + 64];
            let n = e.apply_into(&p, &mut out).unwrap();
            assert_eq!(out[..n], compound(&[user, b"@198.51.100.13"].concat()));
            assert_eq!(e.notes.get(0), 1);
        }
        let p = compound(b"a@192.168.1.2");
        let c = ctx(Dir::FromOutside);
        assert_eq!(Rtcp.framing(&p, &c), Framing::Skip(p.len()));
        let mut e = Edits::default();
        Rtcp.edits(&p, &c, &Plan::default(), &[], &mut e).unwrap();
        assert!(e.is_empty() && e.notes.is_empty());
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
