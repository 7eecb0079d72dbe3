//! TFTP (RFC 1350) on the [`Contract`]. The client sends its read or write request
//! (RRQ, opcode 1; WRQ, opcode 2) to the server's port 69; the server answers, and
//! the whole transfer runs, from a new port of its own to the client's endpoint. From
//! the subscriber, a request is an [`Ask::Announce`] of the session's own inside
//! endpoint (UDP, class `tftp`, from the session's remote address): the NAT keeps the
//! session's mapping and expects the server on it from any port, whatever the
//! filtering. The request names no address or port: nothing is rewritten.
//!
//! A datagram is one message. One shorter than an opcode is [`Framing::Skip`]. A
//! request asks on its opcode alone, as the kernel's helper does: the server answers a
//! request it refuses or cannot read with an ERROR from a new port too, which the
//! client must get. Everything else (data, acknowledgements, errors, and anything from
//! the server) asks nothing.

use crate::contract::{Ask, Contract, Ctx, Dir, EditError, Edits, Framing, Grant, Kind, Plan};

/// Read request.
pub const RRQ: u16 = 1;
/// Write request.
pub const WRQ: u16 = 2;

/// The TFTP ALG (see the module's doc).
pub struct Tftp;

/// The opcode of a datagram, if it has one.
fn opcode(msg: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.first()?, *msg.get(1)?]))
}

impl Contract for Tftp {
    fn framing(&self, buf: &[u8], _ctx: &Ctx) -> Framing {
        match opcode(buf) {
            Some(_) => Framing::Whole(buf.len()),
            None => Framing::Skip(buf.len()),
        }
    }

    fn plan(&self, msg: &[u8], ctx: &Ctx, plan: &mut Plan) {
        if ctx.dir == Dir::FromInside && matches!(opcode(msg), Some(RRQ | WRQ)) {
            plan.push(Ask::Announce {
                kind: Kind::Udp,
                inside: ctx.inside,
                class: crate::class::TFTP,
                from: None,
            });
        }
    }

    fn edits(
        &self,
        _msg: &[u8],
        _ctx: &Ctx,
        _plan: &Plan,
        _grants: &[Grant],
        _edits: &mut Edits,
    ) -> Result<(), EditError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: u32 = 0x6440_0102; // 100.64.1.2
    const POOL: u32 = 0xC633_6401; // 198.51.100.1
    const SERVER: u32 = 0xC000_020A; // 192.0.2.10

    fn ctx(dir: Dir) -> Ctx {
        Ctx {
            dir,
            inside: (SUB, 44935),
            outside: (POOL, 1024),
            remote: (SERVER, 69),
            datagram: true,
        }
    }

    fn plan_of(msg: &[u8], dir: Dir) -> Vec<Ask> {
        let c = ctx(dir);
        let mut p = Plan::default();
        Tftp.plan(msg, &c, &mut p);
        p.asks().copied().collect()
    }

    #[test]
    fn a_request_from_the_subscriber_expects_the_server_on_its_own_endpoint() {
        let want = vec![Ask::Announce {
            kind: Kind::Udp,
            inside: (SUB, 44935),
            class: crate::class::TFTP,
            from: None,
        }];
        for msg in [
            &b"\x00\x01file.bin\x00octet\x00"[..],
            b"\x00\x02up.bin\x00netascii\x00",
            b"\x00\x01f\x00octet\x00blksize\x001428\x00",
            // Unreadable: the server's ERROR comes from a new port too.
            b"\x00\x01",
        ] {
            assert_eq!(plan_of(msg, Dir::FromInside), want, "{msg:?}");
        }
    }

    #[test]
    fn nothing_else_asks_and_nothing_is_rewritten() {
        for msg in [
            &b"\x00\x03\x00\x01hello"[..],
            b"\x00\x04\x00\x01",
            b"\x00\x05\x00\x01File not found\x00",
            b"\x00\x06blksize\x001428\x00",
            b"\x01\x01file\x00octet\x00",
        ] {
            assert_eq!(plan_of(msg, Dir::FromInside), vec![], "{msg:?}");
        }
        // A request from the server's side is no client's.
        assert_eq!(plan_of(b"\x00\x01f\x00octet\x00", Dir::FromOutside), vec![]);
        let (c, msg) = (ctx(Dir::FromInside), b"\x00\x01f\x00octet\x00");
        let mut p = Plan::default();
        Tftp.plan(msg, &c, &mut p);
        let mut e = Edits::default();
        Tftp.edits(msg, &c, &p, &[Grant::To((POOL, 1024))], &mut e)
            .unwrap();
        assert!(e.is_empty());
    }

    #[test]
    fn a_datagram_is_one_message_and_one_without_an_opcode_is_skipped() {
        let c = ctx(Dir::FromInside);
        let msg = b"\x00\x01f\x00octet\x00";
        assert_eq!(Tftp.framing(msg, &c), Framing::Whole(msg.len()));
        assert_eq!(Tftp.framing(b"\x00\x04", &c), Framing::Whole(2));
        assert_eq!(Tftp.framing(b"\x00", &c), Framing::Skip(1));
        assert_eq!(Tftp.framing(b"", &c), Framing::Skip(0));
    }
}
