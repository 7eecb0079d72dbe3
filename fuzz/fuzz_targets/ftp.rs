//! Every FTP parser on arbitrary bytes: lines, PORT, EPRT, 227, 229, classification.
#![no_main]
use cgnat_alg::ftp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    while let Ok(Some(l)) = ftp::next_line(data, at) {
        assert!(l.start <= l.end && l.end < l.next && l.next <= data.len());
        let line = &data[l.start..l.end];
        let _ = ftp::classify(line);
        if let Ok((a, p)) = ftp::parse_host_port(line) {
            // What parses formats back to something that parses to the same.
            assert_eq!(
                ftp::parse_host_port(ftp::format_host_port(a, p).as_bytes()),
                Ok((a, p))
            );
        }
        let _ = ftp::parse_eprt(line);
        if let Ok((_, _, s, e)) = ftp::parse_227(line) {
            assert!(s <= e && e <= line.len());
        }
        if let Ok((_, s, e)) = ftp::parse_229(line) {
            assert!(s <= e && e <= line.len());
        }
        at = l.next;
    }
});
