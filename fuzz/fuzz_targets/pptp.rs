//! PPTP control streams on arbitrary bytes: framing never claims more than the
//! buffer, a whole message's plan is bounded, and its edits (every grant a translation)
//! keep the message's length and lie inside it; the edited message asks the same kinds
//! of things again.
#![no_main]
use cgnat_alg::contract::{Contract, Ctx, Dir, Edits, Framing, Grant, Plan};
use cgnat_alg::pptp::Pptp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let mut turn = 0usize;
    while !rest.is_empty() {
        let dir = if turn % 2 == 0 {
            Dir::FromInside
        } else {
            Dir::FromOutside
        };
        turn += 1;
        let ctx = Ctx {
            dir,
            inside: (0x6440_0102, 40000),
            outside: (0xC633_6411, 1024),
            remote: (0xCB00_7107, 1723),
            datagram: false,
        };
        let n = match Pptp.framing(rest, &ctx) {
            Framing::Whole(n) => n,
            Framing::Skip(0) | Framing::More => break,
            Framing::Skip(n) => {
                assert!(n <= rest.len());
                rest = &rest[n..];
                continue;
            }
        };
        assert!(n > 0 && n <= rest.len());
        let m = &rest[..n];
        let mut plan = Plan::default();
        Pptp.plan(m, &ctx, &mut plan);
        assert_eq!(plan.over, 0);
        let grants: Vec<Grant> = (0..plan.len())
            .map(|i| Grant::To((0xC633_6411, 0x4000 + i as u16)))
            .collect();
        let mut edits = Edits::default();
        Pptp.edits(m, &ctx, &plan, &grants, &mut edits).unwrap();
        assert!(edits.keep_length());
        let mut out = m.to_vec();
        edits.apply_in_place(&mut out).unwrap();
        let mut again = Plan::default();
        Pptp.plan(&out, &ctx, &mut again);
        assert_eq!(again.len(), plan.len());
        rest = &rest[n..];
    }
});
