//! What every ALG contract must hold on arbitrary bytes, one direction: framing stays
//! within the input, and the edits made with any grants (every other ask refused, the
//! rest granted a long endpoint) lie within their message, in order, and apply (in
//! place when they keep the length). Each whole message is also given to `more`.
use cgnat_alg::contract::{Contract, Ctx, Edits, Framing, Grant, Plan, MAX_ASKS};

pub fn check(c: &dyn Contract, data: &[u8], ctx: &Ctx, mut more: impl FnMut(&[u8])) {
    let mut at = 0;
    while at < data.len() {
        let rest = &data[at..];
        match c.framing(rest, ctx) {
            Framing::Whole(n) => {
                assert!(n > 0 && n <= rest.len());
                let msg = &rest[..n];
                let mut plan = Plan::default();
                c.plan(msg, ctx, &mut plan);
                let mut grants = [Grant::Refused; MAX_ASKS];
                for (k, g) in grants.iter_mut().enumerate().take(plan.len()) {
                    if k % 2 == 0 {
                        *g = Grant::To((u32::MAX - k as u32, 65535 - k as u16));
                    }
                }
                let mut e = Edits::default();
                if c.edits(msg, ctx, &plan, &grants[..plan.len()], &mut e)
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
                more(msg);
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
