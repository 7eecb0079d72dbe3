//! SIP on arbitrary bytes, as a datagram and as a stream: parse, plan, and rewrite
//! both ways; a rewrite must leave a message that parses again with a body as long as
//! its Content-Length says.
#![no_main]
use cgnat_alg::{sip, text};
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
            let edits = sip::rewrite(&data[..m.msg.len], &m, &t);
            let out = text::apply(&data[..m.msg.len], &edits);
            if m.msg.content_length.is_some() {
                if let Ok(Some(m2)) = sip::parse(&out, datagram) {
                    assert_eq!(m2.msg.len, out.len());
                }
            }
        }
    }
});
