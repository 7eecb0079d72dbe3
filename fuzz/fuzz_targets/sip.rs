//! SIP on arbitrary bytes, as a datagram and as a stream: parse, plan, and rewrite
//! both ways; a rewrite must leave a message that parses again with a body as long as
//! its Content-Length says. And its ALG contract, both ways, datagram and stream:
//! framing stays within the input, the edits made with any grants lie within their
//! message, in order, and apply, and a refusal's reply is a SIP response or none.
#![no_main]
#[path = "common/contract.rs"]
mod contract;
use cgnat_alg::contract::{Conn, Contract, Ctx, Dir, Edits, Policy, Reply, MAX_EDIT};
use cgnat_alg::sip;
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    let inside = Ipv4Addr::new(100, 64, 1, 2);
    let outside = Ipv4Addr::new(198, 51, 100, 7);
    for datagram in [true, false] {
        let Ok(Some(m)) = sip::parse(data, datagram) else {
            continue;
        };
        assert!(m.msg.len <= data.len());
        let _ = sip::plan(data, &m, inside);
        let ports = |_: sip::Role, p: u16| Some(p.wrapping_add(7));
        for (from, to) in [(inside, outside), (outside, inside)] {
            let t = sip::Translate {
                from,
                to,
                port: &ports,
                tokens: true,
            };
            let msg = &data[..m.msg.len];
            let mut edits = Edits::default();
            if sip::rewrite(msg, &m, &t, &mut edits).is_err() {
                continue;
            }
            let mut out = vec![0u8; msg.len() + MAX_EDIT * edits.len()];
            let n = edits.apply_into(msg, &mut out).expect("edits apply");
            out.truncate(n);
            if m.msg.content_length.is_some() {
                if let Ok(Some(m2)) = sip::parse(&out, datagram) {
                    assert_eq!(m2.msg.len, out.len());
                }
            }
        }
    }
    for datagram in [true, false] {
        for dir in [Dir::FromInside, Dir::FromOutside] {
            let ctx = Ctx {
                dir,
                inside: (u32::from(inside), 5060),
                outside: (u32::from(outside), 1024),
                remote: (0xC000_0214, 5060),
                datagram,
            };
            contract::check(&sip::SipAlg, data, &ctx, |msg| {
                let conn = Conn {
                    policy: Policy {
                        max_message_size: 300,
                        deny_status: 403,
                        ..Policy::default()
                    },
                    ..Conn::of(ctx)
                };
                let mut r = Reply::default();
                let denied = |m: &[u8]| m.len() % 2 == 0;
                if sip::SipAlg.refuse(msg, &conn, &denied, &mut r) {
                    assert!(r.bytes().is_empty() || r.bytes().starts_with(b"SIP/2.0 "));
                }
            });
        }
    }
});
