//! RTCP compound packets on arbitrary bytes: a rewritten packet parses again and
//! rewriting it back gives the original. And its ALG contract (`rtcp::Rtcp`): the
//! edits from the inside host lie within the packet, in order, and make exactly the
//! rewritten packet.
#![no_main]
#[path = "common/contract.rs"]
mod contract;
use cgnat_alg::contract::{Contract, Ctx, Dir, Edits, Plan};
use cgnat_alg::rtcp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rewritten = rtcp::rewrite_cname(data, "100.64.1.2", "198.51.100.17");
    if let Some(out) = &rewritten {
        assert_eq!(out.len() % 4, 0);
        let back = rtcp::rewrite_cname(out, "198.51.100.17", "100.64.1.2");
        assert!(back.is_some());
    }
    for dir in [Dir::FromInside, Dir::FromOutside] {
        let ctx = Ctx {
            dir,
            inside: (0x6440_0102, 30001),
            outside: (0xC633_6411, 61001),
            remote: (0xC000_021E, 7001),
            datagram: true,
        };
        contract::check(&rtcp::Rtcp, data, &ctx, |_| {});
    }
    let ctx = Ctx {
        dir: Dir::FromInside,
        inside: (0x6440_0102, 30001),
        outside: (0xC633_6411, 61001),
        remote: (0xC000_021E, 7001),
        datagram: true,
    };
    let mut e = Edits::default();
    if rtcp::Rtcp
        .edits(data, &ctx, &Plan::default(), &[], &mut e)
        .is_ok()
    {
        let mut out = vec![0u8; data.len() + 64 * e.len()];
        let n = e.apply_into(data, &mut out).unwrap();
        let want = rewritten.as_deref().unwrap_or(data);
        assert_eq!(&out[..n], want);
    }
});
