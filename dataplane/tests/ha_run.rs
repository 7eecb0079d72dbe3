//! Two `cgnat run` processes joined by `[ha]` on the loopback: the active translates
//! 300 flows from its pcap port, the standby (which receives nothing on its ports)
//! ends up with the same 300 sessions on the same outside ports; `cgnat ha
//! promote|demote|status` and `cgnat show ha` change and show the roles through the
//! control API; the new active announces its addresses (gratuitous ARP, written to
//! its pcap ports); `/metrics` says role, peer, messages; a datagram from a host
//! without the key is refused and counted.

mod bed;
mod common;
mod running;
use cgnat_dataplane::ha::auth::Auth;
use cgnat_dataplane::ha::{wire, HaCounters, Sender};
use common::*;
use running::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn cli(args: &[&str], api: u16) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cgnat"))
        .args(args)
        .args(["--api", &format!("127.0.0.1:{api}")])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn json(api: u16, path: &str) -> Option<Value> {
    serde_json::from_str(&http_get(&format!("http://127.0.0.1:{api}{path}"))?).ok()
}

/// (outside endpoint, inside endpoint, worker) of every session.
fn sessions(api: u16) -> BTreeSet<(String, String, u64)> {
    let v = json(api, "/sessions?limit=10000").unwrap_or_default();
    v["sessions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["outside"].as_str().unwrap_or("").to_string(),
                s["inside"].as_str().unwrap_or("").to_string(),
                s["worker"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect()
}

#[test]
fn a_standby_gets_the_actives_sessions_and_roles_change_through_the_api() {
    pair_of_appliances("[1]", "one", false);
}

/// The same with two workers each: every worker's sessions reach the standby's worker
/// that owns their outside ports (the same worker number as on the active).
#[test]
fn with_two_workers_each_worker_syncs_its_own_sessions() {
    pair_of_appliances("[1, 2]", "two", false);
}

/// The same with half the flows from IPv6 hosts through NAT64: each appliance names a
/// host by a handle of its own, and the standby's sessions show the same IPv6 hosts
/// on the same outside ports as the active's (the sync records carry the hosts'
/// addresses).
#[test]
fn a_standby_gets_the_actives_nat64_sessions_with_their_ipv6_hosts() {
    pair_of_appliances("[1]", "nat64", true);
}

/// Flow `i` of the active's input: IPv4 from a NAT44 subscriber, or, with `nat64`,
/// every other one IPv6 from a host of fd00:ffff::/64 to 8.8.4.4 under the
/// well-known prefix.
fn flow(i: usize, nat64: bool) -> Vec<u8> {
    if !(nat64 && i % 2 == 1) {
        return to_pcap0(&format!("100.64.1.{}:{}", 2 + i % 200, 4000 + i));
    }
    let host: std::net::Ipv6Addr = format!("fd00:ffff::{:x}", 0x10 + i).parse().unwrap();
    let server: std::net::Ipv6Addr = "64:ff9b::808:404".parse().unwrap();
    let mut f = Vec::new();
    etherparse::PacketBuilder::ethernet2(HOST_MAC, [0x02, 0x70, 0x63, 0x61, 0x70, 0x00])
        .ipv6(host.octets(), server.octets(), 64)
        .udp(4000 + i as u16, 53)
        .write(&mut f, b"m")
        .unwrap();
    f
}

fn pair_of_appliances(workers: &str, name: &str, nat64: bool) {
    require_tools(&["curl"]);
    let (da, ds) = (
        workdir(&format!("ha-run-{name}-a")),
        workdir(&format!("ha-run-{name}-s")),
    );
    let frames: Vec<Vec<u8>> = (0..300).map(|i| flow(i, nat64)).collect();
    write_pcap(&da.join("in.pcap"), &frames);
    write_pcap(&ds.join("in.pcap"), &[]);
    let key = da.join("ha.key");
    std::fs::write(&key, "a shared key for the two test appliances\n").unwrap();
    let (sync_a, sync_s) = (free_port(), free_port());
    let (api_a, api_s, metrics_s) = (free_port(), free_port(), free_port());
    let cfg = |dir: &Path, prefix: &str, role: &str, me: u16, peer: u16, api: u16, extra: &str| {
        let text = run_config(
            dir,
            prefix,
            workers,
            &format!(
                "[nat]\npool = [\"198.51.100.0/28\"]\n[api]\nlisten = \"127.0.0.1:{api}\"\n\
                 {extra}[ha]\nrole = \"{role}\"\nlisten = \"127.0.0.1:{me}\"\n\
                 peer = \"127.0.0.1:{peer}\"\nkey_file = \"{}\"\n",
                key.display()
            ),
        );
        let text = if nat64 {
            text.replacen(
                "ipv4 = \"100.64.0.1/10\"",
                "ipv4 = \"100.64.0.1/10\"\nipv6 = [\"fd00:ffff::1/64\"]",
                1,
            ) + "[nat64]\n"
        } else {
            text
        };
        if workers == "[1]" {
            return text;
        }
        // One more queue per port (net_pcap: one rx_pcap and tx_pcap per queue); the
        // frames all come in on queue 0 and are handed to the worker that owns them.
        write_pcap(&dir.join("in1.pcap"), &[]);
        let d = dir.display();
        text.replace(
            &format!("rx_pcap={d}/in.pcap,tx_pcap={d}/in-tx.pcap"),
            &format!("rx_pcap={d}/in.pcap,rx_pcap={d}/in1.pcap,tx_pcap={d}/in-tx.pcap,tx_pcap={d}/in-tx1.pcap"),
        )
        .replace(
            &format!("rx_pcap={d}/none.pcap,tx_pcap={d}/out-tx.pcap"),
            &format!("rx_pcap={d}/none.pcap,rx_pcap={d}/none.pcap,tx_pcap={d}/out-tx.pcap,tx_pcap={d}/out-tx1.pcap"),
        )
    };
    let metrics = format!("[metrics]\nlisten = \"127.0.0.1:{metrics_s}\"\n");
    let (log_a, log_s) = (da.join("cgnat.log"), ds.join("cgnat.log"));
    let _s = spawn_run(
        &ds,
        &cfg(
            &ds,
            &format!("ha-s-{name}"),
            "standby",
            sync_s,
            sync_a,
            api_s,
            &metrics,
        ),
        &log_s,
    );
    let _a = spawn_run(
        &da,
        &cfg(
            &da,
            &format!("ha-a-{name}"),
            "active",
            sync_a,
            sync_s,
            api_a,
            "[metrics]\nlisten = \"off\"\n",
        ),
        &log_a,
    );

    until(30, "the active translates 300 flows", &log_a, || {
        sessions(api_a).len() == 300
    });
    let on_active = sessions(api_a);
    if nat64 {
        let v6 = on_active
            .iter()
            .filter(|s| s.1.starts_with("[fd00:ffff::"))
            .count();
        assert_eq!(v6, 150, "the IPv6 hosts' sessions: {on_active:?}");
    }
    let used: BTreeSet<u64> = on_active.iter().map(|s| s.2).collect();
    assert_eq!(used.len(), if workers == "[1]" { 1 } else { 2 }, "{used:?}");
    until(
        30,
        "the standby holds the active's sessions",
        &log_s,
        || sessions(api_s) == on_active,
    );
    let st = json(api_s, "/ha").unwrap();
    assert_eq!(st["role"], "standby");
    assert_eq!(st["in_sync"], true, "{st}");
    assert!(st["messages"]["received"].as_u64().unwrap() > 0);
    assert_eq!(st["messages"]["install_failed"], 0, "{st}");

    // A host on the sync network without the key: refused, counted, nothing applied.
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(b"CGHA not a message", ("127.0.0.1", sync_s))
        .unwrap();
    let mut forged = vec![0u8; 100];
    forged[..4].copy_from_slice(b"CGHA");
    forged[4] = 1;
    forged[5] = 1;
    forged[25] = 100 - 28 - 32;
    sock.send_to(&forged, ("127.0.0.1", sync_s)).unwrap();
    // And one signed with the key, but from another address than the peer's.
    let mut sender = Sender::new(Auth::from_file(&key).unwrap(), 7, u32::MAX);
    let mut buf = vec![0u8; wire::MAX_MESSAGE];
    let b = sender.start(&mut buf, wire::kind::BULK_BEGIN);
    let n = sender.seal(b, &HaCounters::default());
    sock.send_to(&buf[..n], ("127.0.0.1", sync_s)).unwrap();
    until(30, "the forged datagrams are refused", &log_s, || {
        json(api_s, "/ha").is_some_and(|v| {
            v["messages"]["refused_malformed"] == 1
                && v["messages"]["refused_bad_mac"] == 1
                && v["messages"]["refused_source"] == 1
        })
    });
    assert_eq!(sessions(api_s), on_active);

    let (ok, text) = cli(&["show", "ha"], api_s);
    assert!(
        ok && text.contains("role standby") && text.contains("in sync true"),
        "{text}"
    );
    let m = http_get(&format!("http://127.0.0.1:{metrics_s}/metrics")).unwrap();
    for want in [
        "cgnat_ha_role{role=\"standby\"} 1",
        "cgnat_ha_in_sync 1",
        &format!("cgnat_ha_peer_info{{peer=\"127.0.0.1:{sync_a}\""),
        "cgnat_ha_refused_total{reason=\"bad_mac\"} 1",
        "cgnat_ha_last_bulk_sync_timestamp_seconds",
    ] {
        assert!(m.contains(want), "no `{want}` in\n{m}");
    }

    // A planned switchover: the active steps down, the standby takes over.
    let (ok, text) = cli(&["ha", "demote"], api_a);
    assert!(ok && text.contains("role standby"), "{text}");
    let (ok, text) = cli(&["ha", "promote"], api_s);
    assert!(ok && text.contains("role active"), "{text}");
    until(30, "the new active announces its addresses", &log_s, || {
        json(api_s, "/ha").is_some_and(|v| v["garp_sent"].as_u64() >= Some(2))
    });
    // Gratuitous ARP out of both ports: the port addresses, and the pool's outside.
    let out = read_pcap(&ds.join("out-tx.pcap"));
    let garp = |f: &Vec<u8>, ip: [u8; 4]| f[12..14] == [8, 6] && f[28..32] == ip && f[38..42] == ip;
    assert!(out.iter().any(|f| garp(f, [203, 0, 113, 1])), "{out:02x?}");
    assert!(out.iter().any(|f| garp(f, [198, 51, 100, 5])));
    let inside = read_pcap(&ds.join("in-tx.pcap"));
    assert!(inside.iter().any(|f| garp(f, [100, 64, 0, 1])));
    // The new active keeps the sessions; the old one, now standby, gets them back.
    assert_eq!(sessions(api_s), on_active);
    until(30, "the old active is a standby in sync", &log_a, || {
        json(api_a, "/ha").is_some_and(|v| v["role"] == "standby" && v["in_sync"] == true)
    });
    assert_eq!(sessions(api_a), on_active);
    let (ok, text) = cli(&["ha", "status"], api_a);
    assert!(ok && text.contains("role standby"), "{text}");
}
