//! The ALGs over NAT64 through the whole pipeline: FTP between an IPv6 client and an
//! IPv4 server (RFC 6384: EPRT |2| to PORT, EPSV to PASV and the 227 answer to a
//! 229, the sequence adjustment that follows, the commands that cannot be
//! translated passed and counted), TFTP (the server's answer from a new port
//! reaches the IPv6 host) and RTSP (the client ports of a SETUP get a pinhole pair);
//! SIP is not followed (counted). Frames in and expected frames out are built here with
//! etherparse; only what the NAT chooses (pool port, IPv4 identification) is read
//! from its output.

mod common;
use cgnat_config::Config;
use cgnat_dataplane::ha::wire::Record;
use cgnat_dataplane::harness::{Harness, INSIDE_MAC, OUTSIDE_MAC};
use cgnat_dataplane::pipeline::Side;
use common::{a6, config_text, v4_out, GW_MAC, HOST_MAC};
use etherparse::PacketBuilder;

const PORT6: &str = "2001:db8:ffff::1";
const HOST6: &str = "2001:db8:ffff::10";
/// 8.8.4.4 under the well-known prefix.
const SERVER6: &str = "64:ff9b::808:404";
const SERVER4: [u8; 4] = [8, 8, 4, 4];
const T0: u32 = 1000;

/// Address-and-port-dependent filtering: only an expectation lets a server's new
/// connection or answer from a new port in.
fn harness() -> Harness {
    harness_with("")
}

/// [`harness`] with more settings for the RTSP ALG.
fn harness_with(rtsp: &str) -> Harness {
    let nat = "allocation = \"port-block\"\nblock_size = 64\n\
               filtering = \"address-and-port-dependent\"\n";
    let text = config_text(nat).replace(
        "ipv4 = \"100.64.0.1/10\"",
        &format!("ipv4 = \"100.64.0.1/10\"\nipv6 = [\"{PORT6}/64\"]"),
    );
    let text = format!(
        "{text}\n[alg]\ntftp = {{ enabled = true }}\n\
         rtsp = {{ enabled = true, ports = [554]{rtsp} }}\n\
         sip = {{ enabled = true, ports = [5060] }}\n\n[nat64]\n"
    );
    let cfg = Config::parse(&text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let mut h = Harness::new(&cfg, T0);
    let nd = h.control.nd().expect("the inside port speaks IPv6");
    nd.neighbors().learn_answer(&a6(HOST6), &HOST_MAC, T0);
    h
}

fn write(b: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    b(&mut v);
    v
}

fn only(out: Vec<(Side, Vec<u8>)>, side: Side) -> Vec<u8> {
    assert_eq!(out.len(), 1, "one frame out: {out:?}");
    assert_eq!(out[0].0, side);
    out.into_iter().next().unwrap().1
}

fn from_host() -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ethernet2(HOST_MAC, INSIDE_MAC).ipv6(a6(HOST6), a6(SERVER6), 64)
}

fn to_server(src: [u8; 4]) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ethernet2(OUTSIDE_MAC, GW_MAC).ipv4(src, SERVER4, 63)
}

fn from_server(dst: [u8; 4]) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ethernet2(GW_MAC, OUTSIDE_MAC).ipv4(SERVER4, dst, 64)
}

fn to_host() -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    PacketBuilder::ethernet2(INSIDE_MAC, HOST_MAC).ipv6(a6(SERVER6), a6(HOST6), 63)
}

/// The pool address and port of an outbound IPv4 frame, and its identification.
fn chosen(f: &[u8]) -> ([u8; 4], u16, u16) {
    assert_eq!(&f[12..14], &[0x08, 0x00], "IPv4 leaves");
    let src: [u8; 4] = f[26..30].try_into().unwrap();
    assert_eq!(&src[..3], &[198, 51, 100], "from the pool");
    (
        src,
        u16::from_be_bytes([f[34], f[35]]),
        u16::from_be_bytes([f[18], f[19]]),
    )
}

/// The TCP payload of an IPv4 frame.
fn payload4(f: &[u8]) -> &[u8] {
    let l4 = 14 + usize::from(f[14] & 0x0f) * 4;
    &f[l4 + usize::from(f[l4 + 12] >> 4) * 4..]
}

/// A connection from the host's port `sport` to the server's `dport`, handshake done
/// (client ISN `isn`, server `isn_s`): the pool address and port.
fn handshake(h: &mut Harness, sport: u16, dport: u16, isn: u32, isn_s: u32) -> ([u8; 4], u16) {
    let syn = write(|v| {
        from_host()
            .tcp(sport, dport, isn, 64000)
            .syn()
            .write(v, &[])
            .unwrap()
    });
    let got = only(h.inject(&syn, Side::Inside, T0), Side::Outside);
    let (pool, port, _) = chosen(&got);
    let synack = write(|v| {
        from_server(pool)
            .tcp(dport, port, isn_s, 29200)
            .syn()
            .ack(isn + 1)
            .write(v, &[])
            .unwrap()
    });
    only(h.inject(&synack, Side::Outside, T0), Side::Inside);
    (pool, port)
}

/// The FTP control connection: from the host's port 40000 to the server's 21 (client
/// ISN 1000, server 5000).
fn control(h: &mut Harness) -> ([u8; 4], u16) {
    handshake(h, 40000, 21, 1000, 5000)
}

/// The client's segment (seq, ack) with `text`: what leaves to the server.
fn client_says(h: &mut Harness, seq: u32, ack: u32, text: &[u8]) -> Vec<u8> {
    let f = write(|v| {
        from_host()
            .tcp(40000, 21, seq, 64000)
            .ack(ack)
            .psh()
            .write(v, text)
            .unwrap()
    });
    only(h.inject(&f, Side::Inside, T0 + 1), Side::Outside)
}

/// The server's segment (seq, ack) with `text`: what reaches the host.
fn server_says(h: &mut Harness, pool: ([u8; 4], u16), seq: u32, ack: u32, text: &[u8]) -> Vec<u8> {
    let f = write(|v| {
        from_server(pool.0)
            .tcp(21, pool.1, seq, 29200)
            .ack(ack)
            .psh()
            .write(v, text)
            .unwrap()
    });
    only(h.inject(&f, Side::Outside, T0 + 1), Side::Inside)
}

fn to_server_seg(pool: ([u8; 4], u16), seq: u32, ack: u32, text: &[u8], ident: u16) -> Vec<u8> {
    v4_out(
        write(|v| {
            to_server(pool.0)
                .tcp(pool.1, 21, seq, 64000)
                .ack(ack)
                .psh()
                .write(v, text)
                .unwrap()
        }),
        ident,
    )
}

fn to_host_seg(seq: u32, ack: u32, text: &[u8]) -> Vec<u8> {
    write(|v| {
        to_host()
            .tcp(21, 40000, seq, 29200)
            .ack(ack)
            .psh()
            .write(v, text)
            .unwrap()
    })
}

#[test]
fn an_ipv6_clients_eprt_reaches_the_ipv4_server_as_port_and_its_data_connection_comes_back() {
    let mut h = harness();
    let ctl = control(&mut h);
    let eprt = format!("EPRT |2|{HOST6}|50000|\r\n");
    let got = client_says(&mut h, 1001, 5001, eprt.as_bytes());
    let text = String::from_utf8(payload4(&got).to_vec()).unwrap();
    // PORT with the pool address (the control connection's) and a port reserved for
    // the host's 50000.
    let nums: Vec<u16> = text
        .strip_prefix("PORT ")
        .and_then(|t| t.strip_suffix("\r\n"))
        .unwrap_or_else(|| panic!("PORT expected, got {text:?}"))
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(nums.len(), 6);
    let addr = [nums[0] as u8, nums[1] as u8, nums[2] as u8, nums[3] as u8];
    assert_eq!(addr, ctl.0, "the control connection's pool address");
    let data_port = nums[4] << 8 | nums[5];
    let want = format!(
        "PORT {},{},{},{},{},{}\r\n",
        addr[0],
        addr[1],
        addr[2],
        addr[3],
        data_port >> 8,
        data_port & 0xff
    );
    let (_, _, ident) = chosen(&got);
    assert_eq!(got, to_server_seg(ctl, 1001, 5001, want.as_bytes(), ident));
    assert_eq!(h.counters.alg_nat64_ftp_refused.get(), 0);
    // The server acknowledges the PORT line: the host sees its EPRT acknowledged.
    let after_port = 1001 + want.len() as u32;
    let after_eprt = 1001 + eprt.len() as u32;
    let reply = b"200 PORT command successful\r\n";
    let got = server_says(&mut h, ctl, 5001, after_port, reply);
    assert_eq!(got, to_host_seg(5001, after_eprt, reply));
    // The client's next command is numbered after its EPRT: the server sees it after
    // the PORT.
    let got = client_says(&mut h, after_eprt, 5001 + reply.len() as u32, b"RETR f\r\n");
    let (_, _, ident) = chosen(&got);
    let want_retr = to_server_seg(
        ctl,
        after_port,
        5001 + reply.len() as u32,
        b"RETR f\r\n",
        ident,
    );
    assert_eq!(got, want_retr);
    // The data connection from the server's port 20 to the pool address and port the
    // PORT named reaches the host's port 50000 from the server under the prefix.
    let syn = write(|v| {
        from_server(addr)
            .tcp(20, data_port, 9000, 29200)
            .syn()
            .write(v, &[])
            .unwrap()
    });
    let got = only(h.inject(&syn, Side::Outside, T0 + 2), Side::Inside);
    let want = write(|v| {
        to_host()
            .tcp(20, 50000, 9000, 29200)
            .syn()
            .write(v, &[])
            .unwrap()
    });
    assert_eq!(got, want);
}

#[test]
fn epsv_goes_to_the_ipv4_server_as_pasv_and_its_227_comes_back_as_229() {
    let mut h = harness();
    let ctl = control(&mut h);
    let got = client_says(&mut h, 1001, 5001, b"EPSV\r\n");
    let (_, _, ident) = chosen(&got);
    assert_eq!(got, to_server_seg(ctl, 1001, 5001, b"PASV\r\n", ident));
    let r227 = b"227 Entering Passive Mode (8,8,4,4,195,80).\r\n";
    let got = server_says(&mut h, ctl, 5001, 1007, r227);
    let r229 = b"229 Entering Extended Passive Mode (|||50000|)\r\n";
    assert_eq!(got, to_host_seg(5001, 1007, r229));
    // The 227 again (the server did not see the client's ack): the same 229 again.
    let got = server_says(&mut h, ctl, 5001, 1007, r227);
    assert_eq!(got, to_host_seg(5001, 1007, r229));
    // What follows is numbered after the 229 for the host, after the 227 for the
    // server.
    let (s227, s229) = (5001 + r227.len() as u32, 5001 + r229.len() as u32);
    let r150 = b"150 Opening BINARY mode data connection\r\n";
    let got = server_says(&mut h, ctl, s227, 1007, r150);
    assert_eq!(got, to_host_seg(s229, 1007, r150));
    let got = client_says(&mut h, 1007, s229 + r150.len() as u32, b"QUIT\r\n");
    let (_, _, ident) = chosen(&got);
    let want = to_server_seg(ctl, 1007, s227 + r150.len() as u32, b"QUIT\r\n", ident);
    assert_eq!(got, want);
    assert_eq!(h.counters.alg_nat64_ftp_refused.get(), 0);
}

#[test]
fn what_cannot_be_translated_passes_unchanged_and_is_counted() {
    let mut h = harness();
    let ctl = control(&mut h);
    let mut seq = 1001;
    let mut refused = 0;
    for line in [
        // IPv4-only commands from an IPv6 client (RFC 6384 translates EPSV and EPRT).
        "PASV\r\n".to_string(),
        "PORT 10,0,0,1,195,80\r\n".into(),
        "LPSV\r\n".into(),
        // Another host's address (a bounce), EPSV ALL.
        "EPRT |2|2001:db8:ffff::99|50000|\r\n".into(),
        "EPSV ALL\r\n".into(),
    ] {
        let got = client_says(&mut h, seq, 5001, line.as_bytes());
        let (_, _, ident) = chosen(&got);
        assert_eq!(
            got,
            to_server_seg(ctl, seq, 5001, line.as_bytes(), ident),
            "{line:?}"
        );
        seq += line.len() as u32;
        refused += 1;
        assert_eq!(h.counters.alg_nat64_ftp_refused.get(), refused, "{line:?}");
    }
    // A 227 naming another address than the server's, answering a translated EPSV.
    let got = client_says(&mut h, seq, 5001, b"EPSV\r\n");
    let (_, _, ident) = chosen(&got);
    assert_eq!(got, to_server_seg(ctl, seq, 5001, b"PASV\r\n", ident));
    let r227 = b"227 Entering Passive Mode (10,1,2,3,195,80)\r\n";
    let got = server_says(&mut h, ctl, 5001, seq + 6, r227);
    assert_eq!(got, to_host_seg(5001, seq + 6, r227));
    assert_eq!(h.counters.alg_nat64_ftp_refused.get(), refused + 1);
}

#[test]
fn a_tftp_answer_from_a_new_port_reaches_the_ipv6_host() {
    let mut h = harness();
    let rrq = b"\x00\x01file.bin\x00octet\x00";
    let f = write(|v| from_host().udp(5000, 69).write(v, rrq).unwrap());
    let got = only(h.inject(&f, Side::Inside, T0), Side::Outside);
    let (pool, port, ident) = chosen(&got);
    let want = write(|v| to_server(pool).udp(port, 69).write(v, rrq).unwrap());
    assert_eq!(got, v4_out(want, ident));
    // The first data block, from the server's new port.
    let data = b"\x00\x03\x00\x01hello";
    let f = write(|v| from_server(pool).udp(7777, port).write(v, data).unwrap());
    let got = only(h.inject(&f, Side::Outside, T0 + 1), Side::Inside);
    let want = write(|v| to_host().udp(7777, 5000).write(v, data).unwrap());
    assert_eq!(got, want);
}

/// The TFTP ALG follows a NAT64 session through the contract path, as it does a NAT44
/// one: the host's request is counted under `alg="tftp"` and opens the pinhole.
#[test]
fn a_tftp_request_over_nat64_runs_on_the_alg_contract() {
    use cgnat_dataplane::counters::ContractEvent::{Messages, Pinholes};
    let mut h = harness();
    let rrq = b"\x00\x02up.bin\x00octet\x00";
    let f = write(|v| from_host().udp(5001, 69).write(v, rrq).unwrap());
    only(h.inject(&f, Side::Inside, T0), Side::Outside);
    let ev = |e| h.counters.contract_event(cgnat_alg::id::TFTP, e).get();
    assert_eq!((ev(Messages), ev(Pinholes)), (1, 1));
    assert_eq!(h.counters.expectations_created.get(), 1);
}

/// The host's SETUP (client ports 50220-50221) on its control connection (41000 to
/// 554, after [`handshake`]): the text sent, the frame that left toward the server, and
/// its payload.
fn send_setup(h: &mut Harness) -> (String, Vec<u8>, String) {
    let setup = format!(
        "SETUP rtsp://[{SERVER6}]/t/trackID=1 RTSP/1.0\r\nCSeq: 4\r\n\
         Transport: RTP/AVP;unicast;client_port=50220-50221\r\n\r\n"
    );
    let f = write(|v| {
        from_host()
            .tcp(41000, 554, 101, 64000)
            .ack(901)
            .psh()
            .write(v, setup.as_bytes())
            .unwrap()
    });
    let got = only(h.inject(&f, Side::Inside, T0 + 1), Side::Outside);
    let text = String::from_utf8(payload4(&got).to_vec()).unwrap();
    (setup, got, text)
}

#[test]
fn an_rtsp_setups_client_ports_get_a_pair_and_the_servers_rtp_reaches_the_ipv6_host() {
    let mut h = harness();
    let (pool, port) = handshake(&mut h, 41000, 554, 100, 900);
    let (setup, got, text) = send_setup(&mut h);
    let ports = text
        .split("client_port=")
        .nth(1)
        .and_then(|t| t.split("\r\n").next())
        .unwrap_or_else(|| panic!("{text}"));
    let (a, b) = ports.split_once('-').unwrap();
    let (a, b): (u16, u16) = (a.parse().unwrap(), b.parse().unwrap());
    assert_eq!(
        (a % 2, b),
        (0, a + 1),
        "an even RTP port, RTCP next: {text}"
    );
    let sent = setup.replace("50220-50221", &format!("{a}-{b}"));
    let (_, _, ident) = chosen(&got);
    let want = v4_out(
        write(|v| {
            to_server(pool)
                .tcp(port, 554, 101, 64000)
                .ack(901)
                .psh()
                .write(v, sent.as_bytes())
                .unwrap()
        }),
        ident,
    );
    assert_eq!(got, want);
    // The reply names the pool ports: the host gets its own back, the ack numbered
    // for what it sent.
    let reply = format!(
        "RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: 8c30e1\r\n\
         Transport: RTP/AVP/UDP;unicast;client_port={a}-{b};server_port=58547-58548\r\n\r\n"
    );
    let f = write(|v| {
        from_server(pool)
            .tcp(554, port, 901, 29200)
            .ack(101 + sent.len() as u32)
            .psh()
            .write(v, reply.as_bytes())
            .unwrap()
    });
    let got = only(h.inject(&f, Side::Outside, T0 + 1), Side::Inside);
    let back = reply.replace(&format!("{a}-{b}"), "50220-50221");
    let want = write(|v| {
        to_host()
            .tcp(554, 41000, 901, 29200)
            .ack(101 + setup.len() as u32)
            .psh()
            .write(v, back.as_bytes())
            .unwrap()
    });
    assert_eq!(got, want);
    // The server's RTP, to the pool port the SETUP named, reaches the host.
    let f = write(|v| from_server(pool).udp(58547, a).write(v, b"rtp").unwrap());
    let got = only(h.inject(&f, Side::Outside, T0 + 2), Side::Inside);
    let want = write(|v| to_host().udp(58547, 50220).write(v, b"rtp").unwrap());
    assert_eq!(got, want);
    assert_eq!(h.counters.alg_nat64_skipped.get(), 0);
}

#[test]
fn sip_is_not_followed_over_nat64_and_is_counted() {
    // Its messages name the host's IPv6 address (Via, Contact, SDP c=IN IP6), which
    // an IPv4 peer cannot use: the session goes without the ALG, counted.
    let mut h = harness();
    let invite = format!(
        "INVITE sip:bob@[{SERVER6}] SIP/2.0\r\nVia: SIP/2.0/UDP [{HOST6}]:5060\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let f = write(|v| {
        from_host()
            .udp(5060, 5060)
            .write(v, invite.as_bytes())
            .unwrap()
    });
    let got = only(h.inject(&f, Side::Inside, T0), Side::Outside);
    let (pool, port, ident) = chosen(&got);
    let want = write(|v| {
        to_server(pool)
            .udp(port, 5060)
            .write(v, invite.as_bytes())
            .unwrap()
    });
    assert_eq!(got, v4_out(want, ident));
    assert_eq!(h.counters.alg_nat64_skipped.get(), 1);
}

#[test]
fn an_eprt_split_across_two_segments_is_held_and_leaves_as_port_cut_where_the_client_cut() {
    let mut h = harness();
    let ctl = control(&mut h);
    let eprt = format!("EPRT |2|{HOST6}|50000|\r\n");
    let (a, b) = eprt.as_bytes().split_at(12);
    let f = write(|v| {
        from_host()
            .tcp(40000, 21, 1001, 64000)
            .ack(5001)
            .psh()
            .write(v, a)
            .unwrap()
    });
    // The start is held until the rest comes.
    assert!(h.inject(&f, Side::Inside, T0 + 1).is_empty());
    let f = write(|v| {
        from_host()
            .tcp(40000, 21, 1001 + a.len() as u32, 64000)
            .ack(5001)
            .psh()
            .write(v, b)
            .unwrap()
    });
    let out = h.inject(&f, Side::Inside, T0 + 1);
    assert_eq!(out.len(), 2, "both segments leave: {out:?}");
    let (first, second) = (&out[0].1, &out[1].1);
    let text = [payload4(first), payload4(second)].concat();
    let text = String::from_utf8(text).unwrap();
    assert!(text.starts_with("PORT 198,51,100,"), "{text}");
    assert_eq!(payload4(first).len(), a.len(), "the first keeps its length");
    // Each in its place in the server's numbering, checksums whole.
    let seq = |f: &[u8]| u32::from_be_bytes(f[38..42].try_into().unwrap());
    assert_eq!(seq(first), 1001);
    assert_eq!(seq(second), 1001 + a.len() as u32);
    for (f, part) in [(first, &text[..a.len()]), (second, &text[a.len()..])] {
        let (_, _, ident) = chosen(f);
        let want = to_server_seg(ctl, seq(f), 5001, part.as_bytes(), ident);
        assert_eq!(f, &want);
    }
    // The server's ack of the whole PORT line reaches the client as the ack of its
    // EPRT.
    let reply = b"200 PORT command successful\r\n";
    let got = server_says(&mut h, ctl, 5001, 1001 + text.len() as u32, reply);
    assert_eq!(got, to_host_seg(5001, 1001 + eprt.len() as u32, reply));
}

#[test]
fn mutated_alg_frames_never_panic_and_what_leaves_is_whole() {
    // 10,000 frames of NAT64 ALG sessions both ways (FTP commands and replies through
    // the control lcore, an RTSP SETUP, a TFTP request) with a few bytes changed and
    // maybe cut short: no panic, and every frame that leaves is a whole IPv4 packet
    // with a valid header checksum or a whole IPv6 packet.
    let mut h = harness();
    let ctl = control(&mut h);
    let (rpool, rport) = handshake(&mut h, 41000, 554, 100, 900);
    let seg6 = |sport: u16, dport: u16, text: &str| {
        write(|v| {
            from_host()
                .tcp(sport, dport, 1001, 64000)
                .ack(5001)
                .psh()
                .write(v, text.as_bytes())
                .unwrap()
        })
    };
    let seg4 = |pool: ([u8; 4], u16), sport: u16, text: &str| {
        write(|v| {
            from_server(pool.0)
                .tcp(sport, pool.1, 5001, 29200)
                .ack(1001)
                .psh()
                .write(v, text.as_bytes())
                .unwrap()
        })
    };
    let seeds: Vec<(Vec<u8>, Side)> = vec![
        (seg6(40000, 21, &format!("EPRT |2|{HOST6}|50000|\r\n")), Side::Inside),
        (seg6(40000, 21, "EPSV\r\nPASV\r\n"), Side::Inside),
        (
            seg4(ctl, 21, "227 Entering Passive Mode (8,8,4,4,195,80)\r\n"),
            Side::Outside,
        ),
        (
            seg6(
                41000,
                554,
                "SETUP rtsp://s/t RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=50220-50221\r\n\r\n",
            ),
            Side::Inside,
        ),
        (
            seg4(
                (rpool, rport),
                554,
                "RTSP/1.0 200 OK\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=2000-2001\r\n\r\n",
            ),
            Side::Outside,
        ),
        (
            write(|v| {
                from_host()
                    .udp(5000, 69)
                    .write(v, b"\x00\x01f\x00octet\x00")
                    .unwrap()
            }),
            Side::Inside,
        ),
    ];
    let left = common::mutated_run(&mut h, &seeds, 10_000, 0x2545_f491_4f6c_dd1d, T0 + 1);
    assert!(left[0] > 500 && left[1] > 100, "{left:?}");
}

/// HA: a NAT64 FTP control connection's sequence adjustment is offered to the sync
/// naming its host by the host's address, not by this node's handle for it (which on
/// the peer would name another host, or none); the peer takes its own handle back
/// (`ha_nat.rs` fails over such a connection).
#[test]
fn a_nat64_control_connections_adjustment_is_synced_with_its_hosts_address() {
    let mut h = harness();
    control(&mut h);
    let eprt = format!("EPRT |2|{HOST6}|50000|\r\n");
    let got = client_says(&mut h, 1001, 5001, eprt.as_bytes());
    assert!(
        payload4(&got).starts_with(b"PORT "),
        "rewritten: lengths differ"
    );
    let mut recs = Vec::new();
    let mut at = 0;
    assert!(h.worker.alg_control().sync_walk(&mut at, &mut |r| {
        recs.push(r);
        true
    }));
    assert_eq!(recs.len(), 1, "{recs:?}");
    let handle = recs[0].inside.0;
    let item = h
        .worker
        .nat
        .seq_item_out(recs[0])
        .expect("the host is known");
    let Record::SeqAdj(sent) = item.record else {
        panic!("{item:?}")
    };
    let host: std::net::Ipv6Addr = HOST6.parse().unwrap();
    assert_eq!(sent.host6, Some(u128::from(host)));
    assert_eq!((sent.inside, sent.remote), (recs[0].inside, recs[0].remote));
    // Back in: this node's handle for the host.
    assert_eq!(
        h.worker.nat.seq_rec_in(&sent).map(|r| r.inside.0),
        Some(handle)
    );
}

/// The request policy applies to NAT44 sessions only: an IPv6 host's SETUP, whose
/// method is denied, is not refused (the control lcore does not police NAT64
/// sessions), so the worker still plans its pinhole pair and the server gets it
/// translated.
#[test]
fn the_rtsp_request_policy_leaves_nat64_sessions_alone() {
    let mut h = harness_with(", deny_methods = [\"SETUP\"]");
    handshake(&mut h, 41000, 554, 100, 900);
    let (_, _, text) = send_setup(&mut h);
    assert!(
        text.starts_with("SETUP ") && !text.contains("50220"),
        "{text}"
    );
}
