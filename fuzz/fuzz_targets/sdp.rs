//! SDP bodies on arbitrary bytes: media found must lie inside the body.
#![no_main]
use cgnat_alg::sip;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let d = sip::sdp(data, 0..data.len());
    assert!(d.media.len() <= sip::MAX_MEDIA);
    for s in &d.spots {
        if let Some((r, _)) = &s.port {
            assert!(r.end <= data.len());
        }
        if let Some((Some(r), _)) = &s.addr {
            assert!(r.end <= data.len());
        }
    }
});
