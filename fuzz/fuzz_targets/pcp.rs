//! PCP and NAT-PMP requests on arbitrary bytes: the parser never panics, and an
//! answer built from whatever it accepted is bounded, starts with the right version
//! and marks itself a response.
#![no_main]
use cgnat_dataplane::wire::pcp::{self, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = pcp::parse(data) else {
        return;
    };
    let mut out = [0u8; pcp::MAX_LEN];
    match req {
        Request::Pcp { .. } | Request::PcpError { .. } => {
            let n = pcp::build_response(data, &mut out, 0, 60, 1, (0xc633_6401, 1024));
            assert!((pcp::HEADER_LEN..=pcp::MAX_LEN).contains(&n) && n % 4 == 0);
            assert_eq!((out[0], out[1] & 0x80), (pcp::VERSION, 0x80));
        }
        Request::PmpAddress | Request::PmpMap { .. } | Request::PmpError { .. } => {
            let n = pcp::build_pmp(&mut out, data[1], 0, 1, 0xc633_6401, (1, 2, 3));
            assert!(matches!(n, 8 | 12 | 16));
            assert_eq!((out[0], out[1] & 0x80), (0, 0x80));
        }
    }
    if let Request::Pcp { map, .. } = req {
        assert!(usize::from(map.n_filters) <= pcp::MAX_FILTERS);
    }
});
