//! PPTP (RFC 2637) on the ALG contract: the control connection (TCP 1723) carries the
//! call IDs that enhanced GRE (version 1) packets carry in their key field, each side's
//! packets keyed by the *receiver's* call ID. Behind a NAT, two subscribers may pick the
//! same call ID toward the same server; the NAT gives each call a translated call ID of
//! its own (unique per pool address and server), writes it into the control messages
//! the subscriber sends, writes the subscriber's own back into those the server sends,
//! and learns the server's call ID so that GRE is mapped both ways.
//!
//! Every edit replaces a 2-byte call ID by another: the messages keep their length and
//! the worker makes the edits inline.
//!
//! What each message asks (`own` is the Call ID field at offset 12, the sender's own;
//! `peer` the Peer's Call ID, the receiver's):
//!
//! | message                         | from inside                              | from outside                              |
//! |---------------------------------|------------------------------------------|-------------------------------------------|
//! | Outgoing/Incoming-Call-Request  | announce `own` (rewritten)               | nothing (the server's own ID)             |
//! | Outgoing/Incoming-Call-Reply    | announce `own` (rewritten), bind `peer`  | look up `peer` (rewritten back), bind `own` |
//! | Incoming-Call-Connected, Set-Link-Info, WAN-Error-Notify | nothing (`peer` is the server's) | look up `peer` (rewritten back) |
//! | Call-Clear-Request, Call-Disconnect-Notify | end `own` (rewritten)         | end the call `own` names (see below): rewritten back when it is the translated ID |
//!
//! Conventions for [`Kind::Id`] asks (the dataplane's call table reads them so):
//! - a [`Ask::Bind`] from outside names the subscriber's call by its translation (as
//!   the server wrote it; address 0: the session's pool address), from inside by the
//!   subscriber's own ID;
//! - an [`Ask::End`] from inside names the subscriber's call by its own ID (the call is
//!   closing: GRE may still flow until the server's Call-Disconnect-Notify);
//! - an [`Ask::End`] from outside (`translated` is true: it is not the subscriber's own
//!   ID) names the call by the Call ID as the server wrote it, address 0 (the
//!   session's pool address). Two conventions meet there: RFC 2637 2.13 says a
//!   Call-Disconnect-Notify carries the server's own call ID, while deployed servers
//!   (pptpd, accel-ppp; Linux's nf_nat_pptp reads it so) write the subscriber's, i.e.
//!   the translated one. The NAT tries the translated ID first, among the control
//!   session's calls, and grants the subscriber's own ID (the field is rewritten
//!   back); else the server's own, granted as written (left); else refused (left).

use crate::contract::{Ask, Contract, Ctx, Dir, EditError, Edits, Framing, Grant, Kind, Plan};

/// The magic cookie every control message carries at offset 4.
pub const MAGIC: u32 = 0x1A2B_3C4D;
/// PPTP message type of a control message (offset 2).
pub const CONTROL: u16 = 1;
/// Shortest control message (the header and a Call ID: Call-Clear-Request).
pub const MIN_LEN: usize = 16;
/// Longest message the ALG holds to read whole (the longest of RFC 2637 is 220 bytes:
/// Incoming-Call-Request); a longer Length is no PPTP and is skipped.
pub const MAX_LEN: usize = 512;

/// Control message types (offset 8).
pub mod msg {
    /// Outgoing-Call-Request.
    pub const OUT_CALL_REQUEST: u16 = 7;
    /// Outgoing-Call-Reply.
    pub const OUT_CALL_REPLY: u16 = 8;
    /// Incoming-Call-Request.
    pub const IN_CALL_REQUEST: u16 = 9;
    /// Incoming-Call-Reply.
    pub const IN_CALL_REPLY: u16 = 10;
    /// Incoming-Call-Connected.
    pub const IN_CALL_CONNECTED: u16 = 11;
    /// Call-Clear-Request.
    pub const CALL_CLEAR_REQUEST: u16 = 12;
    /// Call-Disconnect-Notify.
    pub const CALL_DISCONNECT_NOTIFY: u16 = 13;
    /// WAN-Error-Notify.
    pub const WAN_ERROR_NOTIFY: u16 = 14;
    /// Set-Link-Info.
    pub const SET_LINK_INFO: u16 = 15;
}

/// Offset of the sender's Call ID (or, for the messages that carry only the peer's,
/// the Peer's Call ID).
const AT_CALL: usize = 12;
/// Offset of the Peer's Call ID in the replies.
const AT_PEER: usize = 14;

/// The length RFC 2637 gives each control message type that carries a call ID; a
/// message shorter than its type's is malformed and asks nothing.
fn fixed_len(kind: u16) -> Option<usize> {
    Some(match kind {
        msg::OUT_CALL_REQUEST => 168,
        msg::OUT_CALL_REPLY => 32,
        msg::IN_CALL_REQUEST => 220,
        msg::IN_CALL_REPLY => 24,
        msg::IN_CALL_CONNECTED => 28,
        msg::CALL_CLEAR_REQUEST => 16,
        msg::CALL_DISCONNECT_NOTIFY => 148,
        msg::WAN_ERROR_NOTIFY => 40,
        msg::SET_LINK_INFO => 24,
        _ => return None,
    })
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// PPTP's contract.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pptp;

/// What one control message is, read once for both [`Contract::plan`] and
/// [`Contract::edits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    /// A request: the sender's own call ID.
    Request { own: u16 },
    /// A reply: the sender's own call ID and the peer's.
    Reply { own: u16, peer: u16 },
    /// A message naming only the receiver's call ID.
    ToPeer { peer: u16 },
    /// The end of a call, named by the sender's own call ID.
    End { own: u16 },
}

/// The control message `m` (framed whole), or None when it carries no call ID or is
/// malformed.
fn read(m: &[u8]) -> Option<Read> {
    if m.len() < MIN_LEN
        || usize::from(be16(m, 0)) != m.len()
        || be16(m, 2) != CONTROL
        || u32::from_be_bytes([m[4], m[5], m[6], m[7]]) != MAGIC
    {
        return None;
    }
    let kind = be16(m, 8);
    if m.len() < fixed_len(kind)? {
        return None;
    }
    Some(match kind {
        msg::OUT_CALL_REQUEST | msg::IN_CALL_REQUEST => Read::Request {
            own: be16(m, AT_CALL),
        },
        msg::OUT_CALL_REPLY | msg::IN_CALL_REPLY => Read::Reply {
            own: be16(m, AT_CALL),
            peer: be16(m, AT_PEER),
        },
        msg::IN_CALL_CONNECTED | msg::WAN_ERROR_NOTIFY | msg::SET_LINK_INFO => Read::ToPeer {
            peer: be16(m, AT_CALL),
        },
        _ => Read::End {
            own: be16(m, AT_CALL),
        },
    })
}

impl Pptp {
    /// The class of the announces (see [`crate::class::PPTP_CALL`]).
    const CLASS: u8 = crate::class::PPTP_CALL;
}

impl Contract for Pptp {
    fn framing(&self, buf: &[u8], _ctx: &Ctx) -> Framing {
        if buf.len() < 2 {
            return if buf.is_empty() {
                Framing::Skip(0)
            } else {
                Framing::More
            };
        }
        let len = usize::from(be16(buf, 0));
        if !(MIN_LEN..=MAX_LEN).contains(&len) {
            // The stream is not where a message starts: nothing after is read.
            return Framing::Skip(buf.len());
        }
        if buf.len() >= 8 && u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) != MAGIC {
            return Framing::Skip(buf.len());
        }
        if buf.len() < len {
            return Framing::More;
        }
        if be16(buf, 2) != CONTROL {
            // A management message (none is defined): its length is known, passed on.
            return Framing::Skip(len);
        }
        Framing::Whole(len)
    }

    fn plan(&self, m: &[u8], ctx: &Ctx, plan: &mut Plan) {
        let Some(r) = read(m) else { return };
        let me = ctx.inside.0;
        let class = Self::CLASS;
        let announce = |own| Ask::Announce {
            kind: Kind::Id,
            inside: (me, own),
            class,
            from: None,
        };
        let lookup = |peer| Ask::Lookup {
            kind: Kind::Id,
            outside: (0, peer),
        };
        match (ctx.dir, r) {
            (Dir::FromInside, Read::Request { own }) => {
                plan.push(announce(own));
            }
            (Dir::FromInside, Read::Reply { own, peer }) => {
                plan.push(announce(own));
                plan.push(Ask::Bind {
                    kind: Kind::Id,
                    inside: (me, own),
                    peer,
                });
            }
            (Dir::FromInside, Read::End { own }) => {
                plan.push(Ask::End {
                    kind: Kind::Id,
                    endpoint: (me, own),
                    translated: false,
                });
            }
            (Dir::FromOutside, Read::Reply { own, peer }) => {
                plan.push(lookup(peer));
                plan.push(Ask::Bind {
                    kind: Kind::Id,
                    inside: (0, peer),
                    peer: own,
                });
            }
            (Dir::FromOutside, Read::ToPeer { peer }) => {
                plan.push(lookup(peer));
            }
            (Dir::FromOutside, Read::End { own }) => {
                plan.push(Ask::End {
                    kind: Kind::Id,
                    endpoint: (0, own),
                    translated: true,
                });
            }
            // The server's own ID in a request, the server's in a message from inside:
            // the server's call IDs are not translated.
            (Dir::FromOutside, Read::Request { .. }) | (Dir::FromInside, Read::ToPeer { .. }) => {}
        }
    }

    fn edits(
        &self,
        m: &[u8],
        ctx: &Ctx,
        plan: &Plan,
        grants: &[Grant],
        edits: &mut Edits,
    ) -> Result<(), EditError> {
        let Some(r) = read(m) else { return Ok(()) };
        // The field the first ask's grant goes into; the others (bind) edit nothing.
        let at = match (ctx.dir, r) {
            (Dir::FromInside, Read::Request { .. } | Read::Reply { .. } | Read::End { .. }) => {
                AT_CALL
            }
            (Dir::FromOutside, Read::Reply { .. }) => AT_PEER,
            (Dir::FromOutside, Read::ToPeer { .. } | Read::End { .. }) => AT_CALL,
            _ => return Ok(()),
        };
        match (plan.asks().next(), grants.first()) {
            (
                Some(Ask::Announce { .. } | Ask::Lookup { .. } | Ask::End { .. }),
                Some(Grant::To((_, id))),
            ) => {
                if be16(m, at) != *id {
                    edits.push(at, 2, &id.to_be_bytes())?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// A control message of type `kind` (its RFC 2637 length; 16 bytes for a type without
/// a call ID) with `a` at offset 12 (the Call ID) and `b` at 14, zeros elsewhere: for
/// tests and tools, not the dataplane.
pub fn message(kind: u16, a: u16, b: u16) -> Vec<u8> {
    let len = fixed_len(kind).unwrap_or(MIN_LEN);
    let mut m = vec![0u8; len];
    m[0..2].copy_from_slice(&(len as u16).to_be_bytes());
    m[2..4].copy_from_slice(&CONTROL.to_be_bytes());
    m[4..8].copy_from_slice(&MAGIC.to_be_bytes());
    m[8..10].copy_from_slice(&kind.to_be_bytes());
    m[12..14].copy_from_slice(&a.to_be_bytes());
    m[14..16].copy_from_slice(&b.to_be_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: u32 = 0x6440_0102; // 100.64.1.2
    const POOL: u32 = 0xC633_6411; // 198.51.100.17
    const SERVER: u32 = 0xCB00_7107; // 203.0.113.7

    fn ctx(dir: Dir) -> Ctx {
        Ctx {
            dir,
            inside: (CLIENT, 40000),
            outside: (POOL, 1024),
            remote: (SERVER, 1723),
            datagram: false,
        }
    }

    fn plan_of(m: &[u8], dir: Dir) -> Vec<Ask> {
        let mut p = Plan::default();
        Pptp.plan(m, &ctx(dir), &mut p);
        p.asks().copied().collect()
    }

    /// The message after its edits with `grants`.
    fn edited(m: &[u8], dir: Dir, grants: &[Grant]) -> Vec<u8> {
        let mut p = Plan::default();
        Pptp.plan(m, &ctx(dir), &mut p);
        let mut e = Edits::default();
        Pptp.edits(m, &ctx(dir), &p, grants, &mut e).unwrap();
        assert!(e.keep_length());
        let mut out = m.to_vec();
        e.apply_in_place(&mut out).unwrap();
        out
    }

    #[test]
    fn framing_reads_the_length_and_the_cookie() {
        let m = message(msg::OUT_CALL_REQUEST, 7, 0);
        let c = ctx(Dir::FromInside);
        assert_eq!(Pptp.framing(&m, &c), Framing::Whole(168));
        let mut two = m.clone();
        two.extend_from_slice(&m[..20]);
        assert_eq!(Pptp.framing(&two, &c), Framing::Whole(168));
        assert_eq!(Pptp.framing(&m[..1], &c), Framing::More);
        assert_eq!(Pptp.framing(&m[..6], &c), Framing::More);
        assert_eq!(Pptp.framing(&m[..100], &c), Framing::More);
        assert_eq!(Pptp.framing(&[], &c), Framing::Skip(0));

        let mut bad = m.clone();
        bad[5] ^= 1;
        assert_eq!(Pptp.framing(&bad, &c), Framing::Skip(168));
        assert_eq!(Pptp.framing(&bad[..10], &c), Framing::Skip(10));
        let mut short = m.clone();
        short[0..2].copy_from_slice(&8u16.to_be_bytes());
        assert_eq!(Pptp.framing(&short, &c), Framing::Skip(168));
        let mut long = m.clone();
        long[0..2].copy_from_slice(&60000u16.to_be_bytes());
        assert_eq!(Pptp.framing(&long, &c), Framing::Skip(168));
        let mut mgmt = m.clone();
        mgmt[2..4].copy_from_slice(&2u16.to_be_bytes());
        assert_eq!(Pptp.framing(&mgmt, &c), Framing::Skip(168));
    }

    #[test]
    fn an_outgoing_call_is_announced_translated_and_bound() {
        // The subscriber's request: its call ID 7 becomes the granted 0x1234.
        let rq = message(msg::OUT_CALL_REQUEST, 7, 99);
        let asks = plan_of(&rq, Dir::FromInside);
        assert_eq!(
            asks,
            vec![Ask::Announce {
                kind: Kind::Id,
                inside: (CLIENT, 7),
                class: crate::class::PPTP_CALL,
                from: None
            }]
        );
        let out = edited(&rq, Dir::FromInside, &[Grant::To((POOL, 0x1234))]);
        assert_eq!(be16(&out, 12), 0x1234);
        assert_eq!(be16(&out, 14), 99, "the serial number is left");
        assert_eq!(out[16..], rq[16..]);

        // The server's reply: its own call ID 0x0500, the peer's the translated one.
        let rp = message(msg::OUT_CALL_REPLY, 0x0500, 0x1234);
        let asks = plan_of(&rp, Dir::FromOutside);
        assert_eq!(
            asks,
            vec![
                Ask::Lookup {
                    kind: Kind::Id,
                    outside: (0, 0x1234)
                },
                Ask::Bind {
                    kind: Kind::Id,
                    inside: (0, 0x1234),
                    peer: 0x0500
                }
            ]
        );
        let back = edited(
            &rp,
            Dir::FromOutside,
            &[Grant::To((CLIENT, 7)), Grant::To((POOL, 0x1234))],
        );
        assert_eq!((be16(&back, 12), be16(&back, 14)), (0x0500, 7));
    }

    #[test]
    fn an_incoming_call_is_announced_and_bound_by_the_subscribers_reply() {
        let rq = message(msg::IN_CALL_REQUEST, 0x0600, 0);
        assert!(plan_of(&rq, Dir::FromOutside).is_empty());
        let rp = message(msg::IN_CALL_REPLY, 9, 0x0600);
        assert_eq!(
            plan_of(&rp, Dir::FromInside),
            vec![
                Ask::Announce {
                    kind: Kind::Id,
                    inside: (CLIENT, 9),
                    class: crate::class::PPTP_CALL,
                    from: None
                },
                Ask::Bind {
                    kind: Kind::Id,
                    inside: (CLIENT, 9),
                    peer: 0x0600
                }
            ]
        );
        let out = edited(
            &rp,
            Dir::FromInside,
            &[Grant::To((POOL, 0x2000)), Grant::To((POOL, 0x2000))],
        );
        assert_eq!((be16(&out, 12), be16(&out, 14)), (0x2000, 0x0600));
        let cn = message(msg::IN_CALL_CONNECTED, 0x2000, 0);
        let back = edited(&cn, Dir::FromOutside, &[Grant::To((CLIENT, 9))]);
        assert_eq!(be16(&back, 12), 9);
        // From inside it names the server's ID: nothing to do.
        assert!(plan_of(&cn, Dir::FromInside).is_empty());
    }

    #[test]
    fn link_info_and_wan_errors_from_outside_name_the_subscribers_call_back() {
        for kind in [msg::SET_LINK_INFO, msg::WAN_ERROR_NOTIFY] {
            let m = message(kind, 0x1234, 0);
            assert_eq!(
                plan_of(&m, Dir::FromOutside),
                vec![Ask::Lookup {
                    kind: Kind::Id,
                    outside: (0, 0x1234)
                }]
            );
            assert_eq!(
                be16(&edited(&m, Dir::FromOutside, &[Grant::To((CLIENT, 7))]), 12),
                7
            );
            assert!(plan_of(&m, Dir::FromInside).is_empty());
            // A call the NAT does not know: the message is left as written.
            assert_eq!(edited(&m, Dir::FromOutside, &[Grant::Refused]), m);
        }
    }

    #[test]
    fn a_call_ends_from_either_side() {
        for kind in [msg::CALL_CLEAR_REQUEST, msg::CALL_DISCONNECT_NOTIFY] {
            let m = message(kind, 7, 0);
            assert_eq!(
                plan_of(&m, Dir::FromInside),
                vec![Ask::End {
                    kind: Kind::Id,
                    endpoint: (CLIENT, 7),
                    translated: false
                }]
            );
            let out = edited(&m, Dir::FromInside, &[Grant::To((POOL, 0x1234))]);
            assert_eq!(be16(&out, 12), 0x1234);

            let s = message(kind, 0x0500, 0);
            assert_eq!(
                plan_of(&s, Dir::FromOutside),
                vec![Ask::End {
                    kind: Kind::Id,
                    endpoint: (0, 0x0500),
                    translated: true
                }]
            );
            // Granted as the translated ID of a call: rewritten to the subscriber's.
            let back = edited(&s, Dir::FromOutside, &[Grant::To((CLIENT, 7))]);
            assert_eq!(be16(&back, 12), 7);
            assert_eq!(back[14..], s[14..]);
            // Granted as written (the server's own ID), or refused: left.
            assert_eq!(
                edited(&s, Dir::FromOutside, &[Grant::To((POOL, 0x0500))]),
                s,
                "the server's own ID is not rewritten"
            );
            assert_eq!(edited(&s, Dir::FromOutside, &[Grant::Refused]), s);
        }
    }

    #[test]
    fn malformed_or_other_messages_ask_nothing() {
        // Start-Control-Connection, echo: no call ID.
        for kind in [1u16, 2, 3, 4, 5, 6, 16, 0xffff] {
            let mut m = message(kind, 7, 7);
            m.resize(156, 0);
            m[0..2].copy_from_slice(&156u16.to_be_bytes());
            assert!(plan_of(&m, Dir::FromInside).is_empty(), "{kind}");
            assert!(plan_of(&m, Dir::FromOutside).is_empty(), "{kind}");
        }
        // Shorter than its type, a Length that is not the message's, a bad cookie.
        let mut short = message(msg::OUT_CALL_REQUEST, 7, 0);
        short.truncate(40);
        short[0..2].copy_from_slice(&40u16.to_be_bytes());
        assert!(plan_of(&short, Dir::FromInside).is_empty());
        let m = message(msg::OUT_CALL_REPLY, 1, 2);
        assert!(plan_of(&m[..20], Dir::FromOutside).is_empty());
        let mut cookie = m.clone();
        cookie[7] = 0;
        assert!(plan_of(&cookie, Dir::FromOutside).is_empty());
        assert!(plan_of(&[0u8; 3], Dir::FromOutside).is_empty());
        // Edits of an unread message: none, whatever the grants.
        let mut e = Edits::default();
        Pptp.edits(
            &cookie,
            &ctx(Dir::FromOutside),
            &Plan::default(),
            &[Grant::To((1, 1))],
            &mut e,
        )
        .unwrap();
        assert!(e.is_empty());
    }
}
