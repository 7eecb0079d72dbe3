//! RTCP compound packets on arbitrary bytes: a rewritten packet parses again and
//! rewriting it back gives the original.
#![no_main]
use cgnat_alg::rtcp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(out) = rtcp::rewrite_cname(data, "100.64.1.2", "198.51.100.17") {
        assert_eq!(out.len() % 4, 0);
        let back = rtcp::rewrite_cname(&out, "198.51.100.17", "100.64.1.2");
        assert!(back.is_some());
    }
});
