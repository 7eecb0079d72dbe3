//! Address-only sessions ([`portless`]) inside the NAT: they hold no port, no mapping
//! and no block, and are logged with their protocol and remote when a collector is
//! on, whatever the per-session switch says (nothing else records them).

use super::fold_tests::{nat, R1, SUB, T0};
use super::*;

fn gre(src: u32, dst: u32) -> Tuple {
    Tuple {
        proto: 47,
        src,
        dst,
        sport: 0,
        dport: 0,
    }
}

#[test]
fn an_address_only_session_takes_no_port_mapping_or_block_and_leaves_none() {
    let (mut n, c) = nat("");
    let i = n.in2out(&gre(SUB, R1), 0, true, T0).unwrap();
    let s = *n.session(i);
    assert_eq!((s.in_port, s.out_port, s.rem_port), (0, 0, 0));
    assert_eq!(n.live_mappings(), 0);
    assert_eq!(n.subscriber_blocks(SUB).len(), 0);
    assert_eq!(n.subscriber(SUB).unwrap().sessions, 1);
    // The same (inside, remote, protocol) is the same session.
    assert_eq!(n.in2out(&gre(SUB, R1), 0, true, T0 + 1).unwrap(), i);
    assert_eq!(n.expire(T0 + 1 + 300 + 1, 100), 1);
    assert_eq!(n.live_sessions(), 0);
    assert!(
        n.subscriber(SUB).is_none(),
        "the subscriber goes with its session"
    );
    assert_eq!(c.subscribers_active.get(), 0);
}

#[test]
fn address_only_sessions_are_logged_with_protocol_and_remote_under_block_logging() {
    let (mut n, _) = nat("");
    // What a syslog collector under port-block allocation asks for: blocks only.
    n.params.log = crate::log::Policy {
        blocks: true,
        other_sessions: true,
        ..crate::log::Policy::default()
    };
    n.in2out(&gre(SUB, R1), 0, true, T0).unwrap();
    n.in2out(&fold_tests::udp(SUB, 5000, R1, 53), 0, true, T0)
        .unwrap();
    let ev: Vec<LogEvent> = n.events().drain(..).collect();
    let sessions: Vec<&LogEvent> = ev
        .iter()
        .filter(|e| e.kind == event::SESSION_CREATE)
        .collect();
    assert_eq!(sessions.len(), 1, "the GRE session's alone: {ev:?}");
    let e = sessions[0];
    assert_eq!((e.proto, e.inside, e.dst), (47, SUB, R1));
    assert_eq!((e.in_port, e.out_port, e.dst_port), (0, 0, 0));
    let line = crate::log::syslog_line(e, "h", "t");
    assert!(
        line.ends_with("protocol=\"gre\" remote=\"192.0.2.10\"]"),
        "{line}"
    );
    n.expire(T0 + 400, 100);
    assert!(n
        .events()
        .iter()
        .any(|e| e.kind == event::SESSION_DELETE && e.proto == 47));
}

#[test]
fn address_only_sessions_are_not_synced_to_a_standby() {
    // A standby's worker takes what lives on its outside ports; these have none
    // (docs/design.md 5.5). A UDP session beside it is synced as ever.
    let (mut n, _) = nat("");
    n.sync_journal(true);
    let g = n.in2out(&gre(SUB, R1), 0, true, T0).unwrap();
    let u = n
        .in2out(&fold_tests::udp(SUB, 5000, R1, 53), 0, true, T0)
        .unwrap();
    let mut items = Vec::new();
    n.sync_drain(T0, &mut |it| {
        items.push(it);
        true
    });
    assert_eq!(items.len(), 1, "the UDP session alone: {items:?}");
    assert!(n.sync_session(g, T0).is_none());
    assert!(n.sync_session(u, T0).is_some());
}
