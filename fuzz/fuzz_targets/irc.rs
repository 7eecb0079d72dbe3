//! The IRC DCC ALG's contract on arbitrary bytes, both ways: framing stays within the
//! input, and the edits made with any grants lie within their message, in order, and
//! apply (in place when they keep the length).
#![no_main]
#[path = "common/contract.rs"]
mod contract;
use cgnat_alg::contract::{Ctx, Dir};
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
        contract::check(&Irc, data, &ctx, |_| {});
    }
});
