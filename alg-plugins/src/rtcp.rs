//! RTCP (RFC 3550 section 6): the SDES CNAME of a compound packet, which phones often
//! build as `user@host-address` (section 6.5.1) and so carries the inside address out
//! of a media session. [`rewrite_cname`] rebuilds the compound packet with the address
//! replaced; any packet that does not parse cleanly (SRTCP, truncated, bad lengths)
//! is left alone. [`Rtcp`] is its ALG contract, for the RTCP sessions an RTP/RTCP
//! pair's expectation makes (session id [`crate::id::RTCP`]: no ALG of the registry,
//! no ports, no `[alg]` section; [`crate::contract_of`] names it).

use crate::contract::{Contract, Ctx, Dir, EditError, Edits, Framing, Grant, Plan};
use std::net::Ipv4Addr;

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
        let from = Ipv4Addr::from(ctx.inside.0).to_string();
        let to = Ipv4Addr::from(ctx.outside.0).to_string();
        if let Some(new) = rewrite_cname(msg, &from, &to) {
            edits.push_diff(msg, &new)?;
            edits.notes.note(0);
        }
        Ok(())
    }
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
