//! The traffic generator end to end: run the `gen-traffic` binary, read its pcap back,
//! and check what the NAT's inside port would receive.

use cgnat_testkit::packet::{check_checksums, check_checksums6, ipv6_packet, parse, TcpFlags, L4};
use cgnat_testkit::pcap::{read_packets, LINKTYPE_ETHERNET};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gen-traffic"))
        .args(args)
        .current_dir(std::env::temp_dir())
        .output()
        .expect("gen-traffic runs")
}

fn gen_ok(out: &Path, args: &[&str]) {
    let mut all = vec!["--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = gen(&all);
    assert!(
        o.status.success(),
        "gen-traffic {all:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn in_net(a: Ipv4Addr, net: Ipv4Addr, len: u32) -> bool {
    let mask = u32::MAX << (32 - len);
    u32::from(a) & mask == u32::from(net) & mask
}

/// Flow key: protocol, subscriber address, port or echo identifier, server, port.
type Key = (u8, Ipv4Addr, u16, Ipv4Addr, u16);

/// Every frame of `path`, checked, grouped by flow in the order they come.
fn flows_of(path: &Path, dst_mac: [u8; 6]) -> HashMap<Key, Vec<L4>> {
    let packets = read_packets(path).unwrap();
    assert!(!packets.is_empty());
    let mut flows: HashMap<Key, Vec<L4>> = HashMap::new();
    for (i, p) in packets.iter().enumerate() {
        assert_eq!(p.linktype, LINKTYPE_ETHERNET);
        if let Err(e) = check_checksums(&p.data) {
            panic!("frame {i}: {e}");
        }
        let f = parse(&p.data).unwrap_or_else(|| panic!("frame {i} does not parse"));
        assert_eq!(f.dst_mac, dst_mac, "frame {i}");
        assert!(
            in_net(f.src, Ipv4Addr::new(100, 64, 0, 0), 10),
            "frame {i} from {}",
            f.src
        );
        assert!(!in_net(f.dst, Ipv4Addr::new(100, 64, 0, 0), 10));
        assert!(!in_net(f.dst, Ipv4Addr::new(198, 51, 100, 0), 24));
        assert!(!in_net(f.dst, Ipv4Addr::new(203, 0, 113, 0), 24));
        assert!(!f.src.is_private() && !f.dst.is_private());
        let (sport, dport) = match f.l4 {
            L4::Udp { sport, dport } | L4::Tcp { sport, dport, .. } => (sport, dport),
            L4::Icmp { icmp_type, id, .. } => {
                assert_eq!(icmp_type, 8, "echo requests only");
                (id, 0)
            }
            L4::Other => panic!("frame {i}: protocol {}", f.protocol),
        };
        flows
            .entry((f.protocol, f.src, sport, f.dst, dport))
            .or_default()
            .push(f.l4);
    }
    flows
}

fn temp() -> PathBuf {
    cgnat_testkit::temp_dir("gen-traffic").unwrap()
}

#[test]
fn generated_pcap_has_the_flows_asked_for() {
    let dir = temp();
    let out = dir.join("in.pcap");
    gen_ok(
        &out,
        &[
            "--flows",
            "600",
            "--subscribers",
            "40",
            "--seed",
            "7",
            "--dst-mac",
            "02:aa:bb:cc:dd:ee",
        ],
    );
    let flows = flows_of(&out, [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
    assert_eq!(flows.len(), 600);
    let mut by_proto: HashMap<u8, usize> = HashMap::new();
    for (key, frames) in &flows {
        *by_proto.entry(key.0).or_default() += 1;
        assert_eq!(frames.len(), 3, "{key:?}");
        match key.0 {
            6 => {
                // SYN, then data segments whose sequence numbers follow on.
                let flags: Vec<TcpFlags> = frames
                    .iter()
                    .map(|l| match l {
                        L4::Tcp { flags, .. } => *flags,
                        _ => unreachable!(),
                    })
                    .collect();
                assert_eq!(flags, [TcpFlags::SYN, TcpFlags::PSH_ACK, TcpFlags::PSH_ACK]);
                let (L4::Tcp { seq: s0, .. }, L4::Tcp { seq: s1, .. }) = (&frames[0], &frames[1])
                else {
                    unreachable!()
                };
                assert_eq!(*s1, s0.wrapping_add(1));
            }
            1 => {
                let seqs: Vec<u16> = frames
                    .iter()
                    .map(|l| match l {
                        L4::Icmp { seq, .. } => *seq,
                        _ => unreachable!(),
                    })
                    .collect();
                assert_eq!(seqs, [1, 2, 3]);
            }
            _ => {}
        }
    }
    assert_eq!(by_proto, HashMap::from([(17, 200), (6, 200), (1, 200)]));
    let subscribers: std::collections::HashSet<_> = flows.keys().map(|k| k.1).collect();
    assert_eq!(subscribers.len(), 40);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn options_change_the_traffic_and_the_seed_fixes_it() {
    let dir = temp();
    let a = dir.join("a.pcap");
    let b = dir.join("b.pcap");
    let c = dir.join("c.pcap");
    let args = [
        "--flows",
        "50",
        "--subscribers",
        "5",
        "--mix",
        "udp,icmp",
        "--servers",
        "192.0.2.50,198.18.7.7",
        "--packets-per-flow",
        "2",
    ];
    gen_ok(&a, &args);
    gen_ok(&b, &args);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let mut other = args.to_vec();
    other.extend(["--seed", "0x2a"]);
    gen_ok(&c, &other);
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());

    let flows = flows_of(&a, [0x02, 0x70, 0x63, 0x61, 0x70, 0x00]);
    assert_eq!(flows.len(), 50);
    for (key, frames) in &flows {
        assert!(key.0 == 17 || key.0 == 1, "{key:?}");
        assert!(
            key.3 == Ipv4Addr::new(192, 0, 2, 50) || key.3 == Ipv4Addr::new(198, 18, 7, 7),
            "{key:?}"
        );
        assert_eq!(frames.len(), 2);
    }

    // Padded to the Ethernet minimum, the same packets.
    let d = dir.join("d.pcap");
    let mut padded = args.to_vec();
    padded.push("--pad");
    gen_ok(&d, &padded);
    let plain = read_packets(&a).unwrap();
    let padded = read_packets(&d).unwrap();
    assert_eq!(plain.len(), padded.len());
    for (p, q) in plain.iter().zip(&padded) {
        assert!(q.data.len() >= 60);
        assert_eq!(parse(&p.data), parse(&q.data));
        assert!(check_checksums(&q.data).is_ok());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_arguments_fail_with_a_message() {
    for args in [
        &["--flows", "10"][..],
        &["--out", "/nonexistent-dir/x.pcap"],
        &["--out", "x.pcap", "--mix", "udp,sctp"],
        &["--out", "x.pcap", "--dst-mac", "02:00:00"],
        &["--out", "x.pcap", "--servers", "192.0.2.300"],
        &["--out", "x.pcap", "--servers", "100.64.9.9"],
        &["--out", "x.pcap", "--subscribers", "0"],
        &["--out", "x.pcap", "--packets-per-flow", "0"],
        &["--out", "x.pcap", "--flows"],
        &["--bogus"],
    ] {
        let o = gen(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(!o.stderr.is_empty(), "{args:?}: no message");
    }
    let o = gen(&["--help"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("--packets-per-flow"));
}

/// `--ipv6`: every frame an IPv6 one, from the subscriber prefix to the NAT64 prefix,
/// with a right checksum; its options refused without it or when wrong.
#[test]
fn ipv6_traffic_goes_to_the_nat64_prefix() {
    let dir = temp();
    let out = dir.join("v6.pcap");
    let args = [
        "--ipv6",
        "--nat64-prefix",
        "2001:db8:64::/96",
        "--subscriber-prefix",
        "2001:db8:200::/40",
        "--flows",
        "90",
        "--subscribers",
        "9",
        "--pad",
    ];
    gen_ok(&out, &args);
    let packets = read_packets(&out).unwrap();
    assert_eq!(packets.len(), 270);
    let mut hosts = std::collections::HashSet::new();
    for (i, p) in packets.iter().enumerate() {
        if let Err(e) = check_checksums6(&p.data) {
            panic!("frame {i}: {e}");
        }
        let ip = ipv6_packet(&p.data).unwrap();
        assert!(
            matches!(ip[6], 6 | 17 | 58),
            "frame {i}: next header {}",
            ip[6]
        );
        assert_eq!(
            &ip[8..13],
            &[0x20, 0x01, 0x0d, 0xb8, 0x02],
            "frame {i}: source"
        );
        assert_eq!(
            &ip[24..36],
            &[0x20, 0x01, 0x0d, 0xb8, 0, 0x64, 0, 0, 0, 0, 0, 0]
        );
        hosts.insert(ip[8..24].to_vec());
    }
    assert_eq!(hosts.len(), 9);
    for bad in [
        &["--family", "5"][..],
        &["--nat64-prefix", "2001:db8:64::/96"],
        &["--ipv6", "--nat64-prefix", "2001:db8:64::/80"],
        &[
            "--ipv6",
            "--subscriber-prefix",
            "2001:db8:100::/40",
            "--subscriber-prefix-len",
            "30",
        ],
        &["--ipv6", "--subscriber-prefix", "2001:db8::1/40"],
    ] {
        let mut all = vec!["--out", "x.pcap"];
        all.extend_from_slice(bad);
        let o = gen(&all);
        assert!(!o.status.success(), "{bad:?} succeeded");
        assert!(!o.stderr.is_empty(), "{bad:?}: no message");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// The bundled sample is what the command in samples/README.md produces.
#[test]
fn bundled_sample_is_reproducible() {
    let sample = cgnat_testkit::workspace().join("samples/subscribers.pcap");
    let readme = cgnat_testkit::workspace().join("samples/README.md");
    let (Ok(bundled), Ok(readme)) = (std::fs::read(&sample), std::fs::read_to_string(&readme))
    else {
        println!("note: samples/ is absent, skipping");
        return;
    };
    let line = readme
        .lines()
        .find(|l| l.contains("--bin gen-traffic --"))
        .expect("samples/README.md shows the gen-traffic command");
    let args: Vec<&str> = line
        .split_once("--bin gen-traffic --")
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let at = args.iter().position(|a| *a == "--out").unwrap();
    assert_eq!(args[at + 1], "samples/subscribers.pcap");
    let dir = temp();
    let out = dir.join("subscribers.pcap");
    let mut args: Vec<&str> = args.clone();
    let out_s = out.to_str().unwrap().to_string();
    args[at + 1] = &out_s;
    let o = gen(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        std::fs::read(&out).unwrap() == bundled,
        "samples/subscribers.pcap differs from what `{}` writes: regenerate it",
        line.trim()
    );
    assert!(bundled.len() < 300 * 1024);
    std::fs::remove_dir_all(dir).unwrap();
}
