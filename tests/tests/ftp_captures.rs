//! The FTP parsers against real control conversations (tests/captures): every
//! address-carrying line parses, to the addresses the capture's hosts really used.

use cgnat_alg::ftp::{
    classify, next_line, parse_227, parse_229, parse_eprt, parse_host_port, Eprt, Message,
};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use std::net::Ipv4Addr;

/// The control-channel payloads (TCP port 21) of a capture, in order.
fn control_lines(file: &str) -> Vec<Vec<u8>> {
    let frames = cgnat_testkit::pcap::read_frames(cgnat_testkit::capture(file)).unwrap();
    let mut lines = Vec::new();
    for f in frames {
        let Ok(p) = SlicedPacket::from_ethernet(&f) else {
            continue;
        };
        let (Some(NetSlice::Ipv4(_)), Some(TransportSlice::Tcp(t))) = (&p.net, &p.transport) else {
            continue;
        };
        if t.source_port() != 21 && t.destination_port() != 21 {
            continue;
        }
        let payload = t.payload();
        let mut at = 0;
        while let Ok(Some(l)) = next_line(payload, at) {
            lines.push(payload[l.start..l.end].to_vec());
            at = l.next;
        }
    }
    lines
}

#[test]
fn port_and_227_lines_of_a_real_session_parse() {
    let lines = control_lines("ftp-ipv4-pasv-port.pcap");
    let mut ports = 0;
    let mut pasv = 0;
    for l in &lines {
        match classify(l) {
            Message::Port(arg) => {
                let (a, p) = parse_host_port(arg)
                    .unwrap_or_else(|e| panic!("{:?}: {e:?}", String::from_utf8_lossy(l)));
                assert_eq!(
                    a,
                    Ipv4Addr::new(141, 142, 220, 235),
                    "the client's own address"
                );
                assert!(p > 1023);
                ports += 1;
            }
            Message::Reply227 => {
                let (a, p, s, e) = parse_227(l).unwrap();
                assert!(!a.is_private() && p > 0);
                assert_eq!(parse_host_port(&l[s..e]).unwrap(), (a, p));
                pasv += 1;
            }
            _ => {}
        }
    }
    assert!(
        ports >= 1 && pasv >= 2,
        "{ports} PORT, {pasv} 227 in {} lines",
        lines.len()
    );
}

#[test]
fn epsv_229_lines_of_a_real_session_parse() {
    let lines = control_lines("ftp-retr-epsv.pcap");
    let replies: Vec<u16> = lines
        .iter()
        .filter(|l| classify(l) == Message::Reply229)
        .map(|l| parse_229(l).unwrap().0)
        .collect();
    assert!(!replies.is_empty(), "{} lines, no 229", lines.len());
    assert!(replies.iter().all(|&p| p > 1023));
}

#[test]
fn auth_tls_is_seen_in_a_real_session() {
    let lines = control_lines("ftp-auth-tls.pcap");
    assert!(lines.iter().any(|l| classify(l) == Message::Auth));
    assert!(lines.iter().any(|l| classify(l) == Message::Reply234));
}

#[test]
fn ipv6_eprt_is_recognised_and_left_alone() {
    // The IPv6 capture is not NAT44 traffic; its EPRT form is still recognised (NAT64
    // translates it, RFC 6384).
    assert_eq!(
        parse_eprt(b"|2|2001:470:1f05:17a9::3|40000|"),
        Ok(Eprt::V6("2001:470:1f05:17a9::3".parse().unwrap(), 40000))
    );
}
