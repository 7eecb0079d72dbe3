//! RTSP on arbitrary bytes: framing, Transport, plan and rewrite; and its ALG contract
//! both ways: framing stays within the input, the edits made with any grants lie
//! within their message, in order, and apply, and a refusal's reply is bounded.
#![no_main]
#[path = "common/contract.rs"]
mod contract;
use cgnat_alg::contract::{Conn, Contract, Ctx, Dir, Edits, Reply, MAX_EDIT};
use cgnat_alg::rtsp;
use libfuzzer_sys::fuzz_target;
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    let host = Ipv4Addr::new(100, 64, 1, 2);
    let mut at = 0;
    while at < data.len() {
        match rtsp::parse(&data[at..]) {
            Ok(Some(rtsp::Frame::Interleaved(n))) => at += n,
            Ok(Some(rtsp::Frame::Message(m))) => {
                let b = &data[at..at + m.msg.len];
                let _ = rtsp::plan(b, &m, host);
                if let Ok(e) = rtsp::rewrite(b, &m, host, Ipv4Addr::new(198, 51, 100, 7), &|p| {
                    Some(p ^ 1)
                }) {
                    let mut all = Edits::default();
                    for x in e.iter() {
                        all.add(x).expect("in order");
                    }
                    let mut out = vec![0u8; b.len() + MAX_EDIT * all.len()];
                    assert!(all.apply_into(b, &mut out).is_some());
                }
                at += m.msg.len.max(1);
            }
            _ => break,
        }
    }
    for dir in [Dir::FromInside, Dir::FromOutside] {
        let ctx = Ctx {
            dir,
            inside: (u32::from(host), 41000),
            outside: (0xC633_6401, 1024),
            remote: (0xC000_020A, 554),
            datagram: false,
        };
        contract::check(&rtsp::Rtsp, data, &ctx, |msg| {
            let mut r = Reply::default();
            if rtsp::Rtsp.refuse(msg, &Conn::of(ctx), &|m: &[u8]| m.len() % 2 == 0, &mut r) {
                assert!(r.bytes().starts_with(b"RTSP/1.0 405"));
            }
        });
    }
});
