//! HA sync messages on arbitrary bytes. The input is opened twice: as a whole datagram
//! (header checks, MAC, records: refused without the key, never a panic), and as the
//! records of a message signed with the key, so that the fuzzer reaches the record
//! decoder without forging a MAC. Whatever decodes is written again and must decode
//! to the same records.
#![no_main]
use cgnat_dataplane::ha::auth::Auth;
use cgnat_dataplane::ha::wire::{self, Builder, Message};
use cgnat_dataplane::ha::{HaCounters, Receiver};
use libfuzzer_sys::fuzz_target;

const KEY: &[u8] = b"fuzzing the sync link's key";

fuzz_target!(|data: &[u8]| {
    let auth = Auth::new(KEY).unwrap();
    let counters = HaCounters::default();
    let _ = Receiver::new(auth.clone()).open(data, &counters);
    if let Ok(m) = Message::new_checked(data) {
        for r in m.records() {
            let _ = r;
        }
    }

    // The input as records of a signed message.
    if data.len() > wire::MAX_BODY {
        return;
    }
    let mut buf = vec![0u8; wire::MAX_MESSAGE];
    Builder::new(&mut buf, wire::kind::UPDATE, 1, 1, 1);
    // Splice the body in, fix the lengths, count what decodes, sign.
    let mut msg = buf[..wire::HEADER_LEN].to_vec();
    msg.extend_from_slice(data);
    msg[24..26].copy_from_slice(&(data.len() as u16).to_be_bytes());
    let view = Message::new_checked({
        let mut m = msg.clone();
        m.extend_from_slice(&[0; wire::MAC_LEN]);
        m
    })
    .expect("a header we built");
    let items: Vec<_> = view.records().collect();
    let good = items.iter().take_while(|r| r.is_ok()).count();
    msg[6..8].copy_from_slice(&(good.min(usize::from(u16::MAX)) as u16).to_be_bytes());
    let tag = auth.sign(&msg);
    msg.extend_from_slice(&tag);
    let opened = Receiver::new(auth.clone()).open(&msg, &counters);
    assert_eq!(opened.is_ok(), good == items.len());

    // Round trip of what decoded.
    let mut out = vec![0u8; wire::MAX_MESSAGE];
    let mut b = Builder::new(&mut out, wire::kind::UPDATE, 1, 1, 2);
    let decoded: Vec<_> = items.into_iter().take(good).map(|r| r.unwrap()).collect();
    for it in &decoded {
        assert!(b.push(it.end, &it.record), "a decoded record fits again");
    }
    let len = b.finish(|d| auth.sign(d));
    let again = Message::new_checked(&out[..len]).expect("written well");
    let back: Vec<_> = again.records().map(|r| r.expect("decodes again")).collect();
    assert_eq!(back, decoded);
});
