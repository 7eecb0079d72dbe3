//! RTSP on arbitrary bytes: framing, Transport, plan and rewrite.
#![no_main]
use cgnat_alg::{rtsp, text};
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
                    let _ = text::apply(b, &e);
                }
                at += m.msg.len.max(1);
            }
            _ => break,
        }
    }
});
