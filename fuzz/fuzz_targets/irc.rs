//! The IRC DCC ALG's contract on arbitrary bytes, both ways: framing stays within the
//! input, and the edits made with any grants lie within their message, in order, and
//! apply (in place when they keep the length).
#![no_main]
use cgnat_alg::contract::{Contract, Ctx, Dir, Edits, Framing, Grant, Plan, MAX_ASKS};
use cgnat_alg::irc::Irc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for dir in [Dir::FromInside, Dir::FromOutside] {
        let ctx = Ctx {
            dir,
            inside: (0x6440_0102, 40000),
            outside: (0xC633_6401, 1024),
            remote: (0xC000_020A, 6667),
            datagram: false,
        };
        let mut at = 0;
        while at < data.len() {
            let rest = &data[at..];
            match Irc.framing(rest, &ctx) {
                Framing::Whole(n) => {
                    assert!(n > 0 && n <= rest.len());
                    let msg = &rest[..n];
                    let mut plan = Plan::default();
                    Irc.plan(msg, &ctx, &mut plan);
                    // Every other ask refused, the rest granted a long endpoint.
                    let mut grants = [Grant::Refused; MAX_ASKS];
                    for (k, g) in grants.iter_mut().enumerate().take(plan.len()) {
                        if k % 2 == 0 {
                            *g = Grant::To((u32::MAX - k as u32, 65535 - k as u16));
                        }
                    }
                    let mut e = Edits::default();
                    if Irc
                        .edits(msg, &ctx, &plan, &grants[..plan.len()], &mut e)
                        .is_ok()
                    {
                        let mut last = 0;
                        for x in e.iter() {
                            assert!(x.at >= last && x.at + x.len <= msg.len());
                            last = x.at + x.len;
                        }
                        let mut out = vec![0u8; msg.len() + 64 * e.len()];
                        assert!(e.apply_into(msg, &mut out).is_some());
                        if e.keep_length() {
                            let mut m = msg.to_vec();
                            assert!(e.apply_in_place(&mut m).is_ok());
                        }
                    }
                    at += n;
                }
                Framing::Skip(n) => {
                    assert!(n > 0 && n <= rest.len());
                    at += n;
                }
                Framing::More => break,
            }
        }
    }
});
