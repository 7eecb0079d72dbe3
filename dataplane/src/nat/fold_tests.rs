//! A mapping that serves one session lives in the session's record (folded); a
//! mapping record is taken only when a second session or a pin shares it.

use super::*;

pub(super) const CONFIG: &str = "[dataplane]\ncontrol_lcore = 0\nworker_lcores = [1]\n\
    [[ports]]\nname = \"inside\"\nrole = \"inside\"\ndevice = \"net_null0\"\nipv4 = \"100.64.0.1/10\"\n\
    [[ports]]\nname = \"outside\"\nrole = \"outside\"\ndevice = \"net_null1\"\nipv4 = \"203.0.113.1/24\"\n\
    [nat]\npool = [\"198.51.100.0/30\"]\nquarantine_secs = 0\n";

pub(super) const SUB: u32 = 0x6440_0102; // 100.64.1.2
pub(super) const R1: u32 = 0xc000_020a; // 192.0.2.10
const R2: u32 = 0xc000_020b; // 192.0.2.11
const R3: u32 = 0xc000_020c; // 192.0.2.12
pub(super) const T0: u32 = 1000;

/// A SIP registration of the phone's signalling port, 5060: its contact pinned for an
/// hour.
pub(super) const REGISTER: ExpectReq = ExpectReq {
    proto: ipv4::PROTO_UDP,
    in_addr: SUB,
    in_port: 5060,
    remote: 0,
    class: class::SIP_REGISTER,
    tag: 0,
    secs: 3600,
    keep: true,
    alg: ALG_SIP,
};

pub(super) fn nat(extra: &str) -> (Nat, Arc<WorkerCounters>) {
    let cfg = cgnat_config::Config::parse(&format!("{CONFIG}{extra}"), "t.toml").unwrap();
    let params = NatParams::from_config(&cfg.nat, 1).unwrap();
    let counters = Arc::new(WorkerCounters::default());
    (Nat::new(params, 0, 1, T0, 7, counters.clone()), counters)
}

pub(super) fn udp(src: u32, sport: u16, dst: u32, dport: u16) -> Tuple {
    Tuple {
        proto: ipv4::PROTO_UDP,
        src,
        dst,
        sport,
        dport,
    }
}

/// Mapping records in use (the whole table less its free list).
fn records_used(n: &Nat) -> usize {
    let mut free = 0;
    let mut at = n.free_mapping;
    while at != NIL {
        free += 1;
        at = n.mappings[at as usize].sessions;
    }
    n.mappings.len() - free
}

/// Ports the pool has in use (quarantined included).
fn ports_used(n: &Nat) -> u32 {
    n.pool.addrs.iter().map(|a| a.ports_used).sum()
}

/// The outside endpoint of session `i`.
fn outside(n: &Nat, i: u32) -> (u32, u16) {
    let s = n.session(i);
    (s.out_addr, s.out_port)
}

#[test]
fn a_mapping_of_one_session_has_no_mapping_record() {
    let (mut n, _) = nat("");
    let i = n.in2out(&udp(SUB, 5000, R1, 53), 0, true, T0).unwrap();
    assert!(n.session(i).folded());
    assert_eq!(n.live_mappings(), 1);
    assert_eq!(records_used(&n), 0);
    assert_eq!(n.subscriber(SUB).unwrap().mappings, 1);
    // Found both ways, as a mapping record would be.
    let (oa, op) = outside(&n, i);
    assert_eq!(n.inside_of(ipv4::PROTO_UDP, oa, op), Some((SUB, 5000)));
    let back = udp(R1, 53, oa, op);
    assert_eq!(n.out2in(&back, 0, true, T0), Ok(i));
    // The record table is sized by max_mappings (by default an eighth of
    // max_sessions), not max_sessions.
    assert_eq!(n.mappings.len() * 8, n.session_slots() as usize);
}

#[test]
fn a_second_session_to_another_remote_shares_the_mapping_in_a_record() {
    let (mut n, _) = nat("");
    let a = n.in2out(&udp(SUB, 5000, R1, 53), 0, true, T0).unwrap();
    let b = n.in2out(&udp(SUB, 5000, R2, 53), 0, true, T0).unwrap();
    // Endpoint-independent mapping: the same outside endpoint (RFC 4787 REQ-1).
    assert_eq!(outside(&n, a), outside(&n, b));
    assert_eq!(records_used(&n), 1);
    assert_eq!(n.live_mappings(), 1);
    let (sa, sb) = (*n.session(a), *n.session(b));
    assert!(!sa.folded() && !sb.folded());
    assert_eq!(sa.mapping, sb.mapping);
    assert_eq!(n.mapping(sa.mapping).sessions, 2);
    assert_eq!(n.subscriber(SUB).unwrap().mappings, 1);
    // Another inside port is a mapping of its own, folded.
    let c = n.in2out(&udp(SUB, 5001, R1, 53), 0, true, T0).unwrap();
    assert!(n.session(c).folded());
    assert_ne!(outside(&n, c), outside(&n, a));
    assert_eq!((n.live_mappings(), records_used(&n)), (2, 1));
    // Replies reach each session.
    let (oa, op) = outside(&n, a);
    assert_eq!(n.out2in(&udp(R2, 53, oa, op), 0, true, T0), Ok(b));
    assert_eq!(n.out2in(&udp(R1, 53, oa, op), 0, true, T0), Ok(a));
}

#[test]
fn an_inbound_session_through_a_folded_mapping_shares_it() {
    let (mut n, c) = nat("");
    let a = n.in2out(&udp(SUB, 5000, R1, 53), 0, true, T0).unwrap();
    let (oa, op) = outside(&n, a);
    // Endpoint-independent filtering lets another remote in through the mapping.
    let b = n.out2in(&udp(R3, 4444, oa, op), 0, true, T0).unwrap();
    let s = *n.session(b);
    assert_eq!((s.in_addr, s.in_port, s.rem_addr), (SUB, 5000, R3));
    assert!(!n.session(a).folded());
    assert_eq!(n.mapping(s.mapping).sessions, 2);
    assert_eq!(records_used(&n), 1);
    assert_eq!(n.subscriber_inbound(SUB), (1, 0));
    // The inside host answers on it.
    assert_eq!(n.in2out(&udp(SUB, 5000, R3, 4444), 0, true, T0), Ok(b));
    assert_eq!(n.subscriber_inbound(SUB), (1, 1));
    assert_eq!(c.dropped(DropReason::MappingTableFull), 0);
}

#[test]
fn address_dependent_filtering_follows_a_mapping_into_its_record() {
    let (mut n, _) = nat("filtering = \"address-dependent\"\n");
    let a = n.in2out(&udp(SUB, 5000, R1, 53), 0, true, T0).unwrap();
    let (oa, op) = outside(&n, a);
    assert_eq!(
        n.out2in(&udp(R2, 99, oa, op), 0, true, T0),
        Err(DropReason::Filtered)
    );
    // The inside host sends to R2 too: the mapping gets its record, and what R1
    // may send through it comes along.
    n.in2out(&udp(SUB, 5000, R2, 53), 0, true, T0 + 200)
        .unwrap();
    assert!(!n.session(a).folded());
    assert!(n.out2in(&udp(R1, 99, oa, op), 0, true, T0).is_ok());
    assert!(n.out2in(&udp(R2, 99, oa, op), 0, true, T0).is_ok());
    assert_eq!(
        n.out2in(&udp(R3, 99, oa, op), 0, true, T0),
        Err(DropReason::Filtered)
    );
    // Once R1's sessions end, R1 is filtered again; R2's still stands.
    let r1 = n.find_out2in(&udp(R1, 99, oa, op)).unwrap();
    n.expire(T0 + 301, 100);
    assert!(n.session_at(a).is_none() && n.session_at(r1).is_none());
    assert_eq!(
        n.out2in(&udp(R1, 98, oa, op), 0, true, T0 + 301),
        Err(DropReason::Filtered)
    );
    assert!(n.out2in(&udp(R2, 98, oa, op), 0, true, T0 + 301).is_ok());
}

#[test]
fn expiry_frees_the_sessions_their_mappings_and_ports() {
    let (mut n, _) = nat("");
    let a = n.in2out(&udp(SUB, 5000, R1, 53), 0, true, T0).unwrap();
    n.in2out(&udp(SUB, 5000, R2, 53), 0, true, T0).unwrap();
    n.in2out(&udp(SUB, 5001, R1, 53), 0, true, T0).unwrap();
    let (oa, op) = outside(&n, a);
    assert_eq!((n.live_sessions(), n.live_mappings()), (3, 2));
    assert_eq!((records_used(&n), ports_used(&n)), (1, 2));
    let later = T0 + 301;
    assert_eq!(n.expire(later, 100), 3);
    assert_eq!((n.live_sessions(), n.live_mappings()), (0, 0));
    assert_eq!((records_used(&n), ports_used(&n)), (0, 0));
    assert!(n.subscriber(SUB).is_none());
    assert_eq!(n.inside_of(ipv4::PROTO_UDP, oa, op), None);
    assert_eq!(
        n.out2in(&udp(R1, 53, oa, op), 0, true, later),
        Err(DropReason::NoMapping)
    );
    // A shared mapping whose other session ends keeps its record until the last.
    let a = n.in2out(&udp(SUB, 5000, R1, 53), 0, true, later).unwrap();
    let b = n
        .in2out(&udp(SUB, 5000, R2, 53), 0, true, later + 200)
        .unwrap();
    assert_eq!(n.expire(later + 301, 100), 1);
    assert_eq!(n.session_at(a).map(|s| s.mapping), None);
    assert_eq!(n.mapping(n.session(b).mapping).sessions, 1);
    assert_eq!((n.live_mappings(), records_used(&n)), (1, 1));
    assert_eq!(n.expire(later + 501, 100), 1);
    assert_eq!(
        (n.live_mappings(), records_used(&n), ports_used(&n)),
        (0, 0, 0)
    );
}

#[test]
fn full_tables_refuse_new_state_and_keep_what_lives() {
    // Session table: as before.
    let (mut n, _) = nat("max_sessions = 2\n");
    let a = n.in2out(&udp(SUB, 5000, R1, 53), 0, true, T0).unwrap();
    n.in2out(&udp(SUB + 1, 5000, R1, 53), 0, true, T0).unwrap();
    assert_eq!(
        n.in2out(&udp(SUB + 2, 5000, R1, 53), 0, true, T0),
        Err(DropReason::SessionTableFull)
    );
    let (oa, op) = outside(&n, a);
    assert_eq!(n.out2in(&udp(R1, 53, oa, op), 0, true, T0), Ok(a));
    // Mapping records: a second session on a mapping needs one.
    let (mut n, _) = nat("max_mappings = 1\n");
    let a = n.in2out(&udp(SUB, 5000, R1, 53), 0, true, T0).unwrap();
    let b = n.in2out(&udp(SUB + 1, 5000, R1, 53), 0, true, T0).unwrap();
    n.in2out(&udp(SUB, 5000, R2, 53), 0, true, T0).unwrap();
    assert_eq!(
        n.in2out(&udp(SUB + 1, 5000, R2, 53), 0, true, T0),
        Err(DropReason::MappingTableFull)
    );
    let (ob, pb) = outside(&n, b);
    assert_eq!(
        n.out2in(&udp(R3, 1, ob, pb), 0, true, T0),
        Err(DropReason::MappingTableFull)
    );
    // Nothing changed for the refused: still folded, still answered.
    assert!(n.session(b).folded());
    assert_eq!(n.out2in(&udp(R1, 53, ob, pb), 0, true, T0), Ok(b));
    // New mappings of one session need none.
    assert!(n.in2out(&udp(SUB + 1, 6000, R2, 53), 0, true, T0).is_ok());
    assert_eq!(
        n.session(a).mapping,
        n.session(n.find_in2out(&udp(SUB, 5000, R2, 53)).unwrap())
            .mapping
    );
}

#[test]
fn a_subscriber_past_the_limit_is_refused_and_the_others_keep_their_sessions() {
    let (mut n, c) = nat("max_subscribers = 2\n");
    let a = n.in2out(&udp(SUB, 5000, R1, 53), 0, true, T0).unwrap();
    let b = n.in2out(&udp(SUB + 1, 5000, R1, 53), 0, true, T0).unwrap();
    assert_eq!(
        n.in2out(&udp(SUB + 2, 5000, R1, 53), 0, true, T0),
        Err(DropReason::SubscriberTableFull)
    );
    // Known subscribers still get new sessions; the live ones are untouched.
    assert!(n.in2out(&udp(SUB, 5001, R2, 53), 0, true, T0).is_ok());
    assert_eq!((n.live_sessions(), n.live_subscribers()), (3, 2));
    for (i, s) in [(a, SUB), (b, SUB + 1)] {
        let (oa, op) = outside(&n, i);
        assert_eq!(n.out2in(&udp(R1, 53, oa, op), 0, true, T0), Ok(i));
        assert_eq!(n.session(i).in_addr, s);
    }
    // Once one leaves, the next comes in.
    n.expire(T0 + 301, 100);
    assert!(n
        .in2out(&udp(SUB + 2, 5000, R1, 53), 0, true, T0 + 301)
        .is_ok());
    assert_eq!(c.sessions_created[proto_index(ipv4::PROTO_UDP)].get(), 4);
}

#[test]
fn an_alg_pinhole_on_a_folded_mapping_gives_it_a_record() {
    let (mut n, c) = nat("");
    // A SIP phone registers from its signalling port: the registration pins the
    // mapping its signalling session has folded.
    let master = n.in2out(&udp(SUB, 5060, R1, 5060), 0, true, T0).unwrap();
    assert!(n.session(master).folded());
    let req = REGISTER;
    let got = n.alg_expect_with(master, &req, T0).unwrap();
    assert_eq!(got, outside(&n, master));
    let m = n.session(master).mapping;
    assert!(!n.session(master).folded());
    assert_eq!(n.mapping(m).sessions, 2);
    assert_eq!(records_used(&n), 1);
    // A pinhole for another port: a record of its own (no session yet).
    let rtp = ExpectReq {
        in_port: 7000,
        class: class::SIP_MEDIA,
        keep: false,
        alg: 0,
        secs: 0,
        ..req
    };
    let (ma, mp) = n.alg_expect_with(master, &rtp, T0).unwrap();
    assert_eq!(records_used(&n), 2);
    // The media comes in through its pinhole.
    let media = n.out2in(&udp(R2, 9000, ma, mp), 0, true, T0).unwrap();
    assert_eq!(n.session(media).in_port, 7000);
    assert_eq!(c.expectations_matched.get(), 1);
    // The signalling session goes; the registration keeps its mapping.
    assert!(n.expire(T0 + 301, 100) >= 1);
    let (oa, op) = got;
    assert_eq!(n.inside_of(ipv4::PROTO_UDP, oa, op), Some((SUB, 5060)));
    let call = n.out2in(&udp(R3, 5060, oa, op), 0, true, T0 + 301).unwrap();
    assert_eq!(n.session(call).alg(), ALG_SIP);
    assert!(n.alg_unregister(ipv4::PROTO_UDP, SUB, 5060, T0 + 302));
}

/// A PCP (or NAT-PMP) request for UDP inside endpoint `inside`, `lifetime` seconds.
fn pcp_ask(inside: (u32, u16), lifetime: u32) -> pcp::PcpAsk {
    pcp::PcpAsk {
        proto: ipv4::PROTO_UDP,
        inside,
        lifetime,
        nonce: [7; 12],
        max_per_subscriber: 32,
        ..Default::default()
    }
}

#[test]
fn a_pcp_mapping_of_a_folded_mapping_gives_it_a_record_that_outlives_the_session() {
    let (mut n, _) = nat("");
    let a = n.in2out(&udp(SUB, 5000, R1, 53), 0, true, T0).unwrap();
    assert!(n.session(a).folded());
    // The subscriber asks for the endpoint its session uses: the same mapping
    // (RFC 6887 11.3), now in a record holding the session and the PCP mapping.
    let ext = n.pcp_map(&pcp_ask((SUB, 5000), 600), T0).unwrap();
    assert_eq!(ext, outside(&n, a));
    assert!(!n.session(a).folded());
    let m = n.session(a).mapping;
    assert_eq!(n.mapping(m).sessions, 2);
    assert_eq!(n.pcp_entries().next().unwrap().mapping, m);
    assert_eq!((n.live_mappings(), records_used(&n)), (1, 1));
    assert_eq!(n.subscriber(SUB).unwrap().mappings, 1);
    check(&n);
    // A remote comes in through it, and the session goes: the PCP mapping stays.
    let b = n.out2in(&udp(R3, 4444, ext.0, ext.1), 0, true, T0).unwrap();
    assert_eq!(n.session(b).mapping, m);
    check(&n);
    n.expire(T0 + 301, 100);
    assert_eq!(n.live_sessions(), 0);
    assert_eq!(n.mapping(m).sessions, 1);
    assert_eq!(
        n.inside_of(ipv4::PROTO_UDP, ext.0, ext.1),
        Some((SUB, 5000))
    );
    check(&n);
    // Still reached, with no session at all.
    let c = n
        .out2in(&udp(R2, 4444, ext.0, ext.1), 0, true, T0 + 302)
        .unwrap();
    assert_eq!((n.session(c).in_addr, n.session(c).in_port), (SUB, 5000));
    check(&n);
    // Its lifetime ends, then its last session: record, port and subscriber go.
    n.expire(T0 + 601, 100);
    assert_eq!(n.pcp_entries().count(), 0);
    check(&n);
    n.expire(T0 + 700, 100);
    check(&n);
    assert_eq!(
        (n.live_mappings(), records_used(&n), ports_used(&n)),
        (0, 0, 0)
    );
    assert_eq!(n.live_subscribers(), 0);
}

#[test]
fn a_pcp_mapping_without_a_session_is_a_record_of_its_own() {
    let (mut n, _) = nat("");
    let ext = n.pcp_map(&pcp_ask((SUB, 6000), 600), T0).unwrap();
    assert_eq!((n.live_mappings(), records_used(&n)), (1, 1));
    check(&n);
    // The subscriber's own traffic from that port shares it.
    let a = n.in2out(&udp(SUB, 6000, R1, 53), 0, true, T0).unwrap();
    assert!(!n.session(a).folded());
    assert_eq!(outside(&n, a), ext);
    check(&n);
    // A delete leaves it to its session.
    n.pcp_delete(ipv4::PROTO_UDP, (SUB, 6000), Some([7; 12]), T0 + 1)
        .unwrap();
    assert_eq!(n.mapping(n.session(a).mapping).sessions, 1);
    check(&n);
    n.expire(T0 + 400, 100);
    check(&n);
    assert_eq!((n.live_mappings(), records_used(&n)), (0, 0));
}

#[test]
fn a_pcp_request_with_no_record_left_is_refused_and_changes_nothing() {
    let (mut n, c) = nat("max_mappings = 1
");
    let a = n.in2out(&udp(SUB, 5000, R1, 53), 0, true, T0).unwrap();
    let b = n.in2out(&udp(SUB, 5001, R1, 53), 0, true, T0).unwrap();
    n.pcp_map(&pcp_ask((SUB, 5000), 600), T0).unwrap();
    assert_eq!(records_used(&n), 1);
    // Neither the folded mapping of another port nor a new one can have a record.
    let before = (n.live_mappings(), ports_used(&n), *n.session(b));
    for port in [5001, 7000] {
        assert_eq!(
            n.pcp_map(&pcp_ask((SUB, port), 600), T0),
            Err(pcp::PcpRefusal::NoResources)
        );
    }
    assert!(n.session(b).folded());
    assert_eq!(before.0, n.live_mappings());
    assert_eq!(before.1, ports_used(&n));
    assert_eq!(before.2.mapping, n.session(b).mapping);
    assert_eq!(n.pcp_entries().count(), 1);
    check(&n);
    // The refused request's session still works both ways.
    let (oa, op) = outside(&n, b);
    assert_eq!(n.out2in(&udp(R1, 53, oa, op), 0, true, T0), Ok(b));
    assert!(n.session(a).mapping != n.session(b).mapping);
    assert_eq!(c.dropped(DropReason::MappingTableFull), 0);
}

/// What the tables must agree on whatever happened: every live mapping is in both
/// mapping indexes once, folded in its only session or in a record counting its
/// sessions and pins; records in use are exactly the mappings not folded; each
/// subscriber counts its mappings; each mapping holds one port.
fn check(n: &Nat) {
    let mut folded = 0;
    let mut per_record: HashMap<u32, u32> = HashMap::new();
    for (i, s) in n.iter_sessions_indexed() {
        let r = n.mapping_ref(i, s);
        assert_eq!(
            n.map_in
                .find(n.hasher.key(&n.mapping_key(&s.in_key())), |x| x == r),
            Some(r)
        );
        if s.folded() {
            folded += 1;
            assert_eq!(n.subs[n.session_sub(s) as usize].addr, s.in_addr);
        } else {
            *per_record.entry(s.mapping).or_insert(0) += 1;
        }
    }
    let mut pins: HashMap<u32, u32> = HashMap::new();
    for (_, e) in n.expectations() {
        *pins.entry(e.mapping).or_insert(0) += 1;
    }
    // A PCP mapping holds its record (it may have no session).
    for e in n.pcp_entries() {
        assert!(e.mapping < n.mappings.len() as u32);
        *pins.entry(e.mapping).or_insert(0) += 1;
    }
    let records: std::collections::HashSet<u32> = n
        .map_in
        .records()
        .filter(|&r| r >= n.map_base)
        .map(|r| r - n.map_base)
        .collect();
    for &m in &records {
        let held = per_record.get(&m).copied().unwrap_or(0) + pins.get(&m).copied().unwrap_or(0);
        assert_eq!(n.mapping(m).sessions, held, "record {m}");
    }
    assert_eq!(records.len(), records_used(n));
    assert_eq!(n.map_in.len(), n.map_out.len());
    assert_eq!(n.live_mappings(), folded + records.len());
    let sub_mappings: u32 = n
        .sub_idx
        .records()
        .map(|i| n.subs[i as usize].mappings)
        .sum();
    assert_eq!(sub_mappings as usize, n.live_mappings());
    assert_eq!(ports_used(n) as usize, n.live_mappings());
}

#[test]
fn churn_keeps_the_mapping_tables_consistent() {
    for extra in [
        "",
        "filtering = \"address-dependent\"\n",
        "allocation = \"dynamic\"\n",
    ] {
        let (mut n, _) = nat(&format!("{extra}max_sessions = 1024\nmax_mappings = 8\n"));
        let mut refused = 0;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut now = T0;
        let mut masters = Vec::new();
        for step in 0..4000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let sub = SUB + (x % 4) as u32;
            let port = 5000 + ((x >> 8) % 6) as u16;
            let rem = R1 + ((x >> 16) % 3) as u32;
            match (x >> 24) % 8 {
                0..=3 => match n.in2out(&udp(sub, port, rem, 53), 0, true, now) {
                    Ok(i) => masters.push(i),
                    Err(DropReason::MappingTableFull) => refused += 1,
                    Err(_) => {}
                },
                4 | 5 => {
                    // A remote (perhaps a new one) sends to a mapping in use.
                    if let Some(&i) = masters.get((x >> 32) as usize % masters.len().max(1)) {
                        if let Some(s) = n.session_at(i).copied() {
                            let _ = n.out2in(&udp(rem, 99, s.out_addr, s.out_port), 0, true, now);
                        }
                    }
                }
                6 if (x >> 40) & 1 == 1 => {
                    // A subscriber asks for a port (PCP), or deletes what it has.
                    if (x >> 41) & 3 == 0 {
                        let _ = n.pcp_delete(ipv4::PROTO_UDP, (sub, port), None, now);
                    } else {
                        let _ = n.pcp_map(&pcp_ask((sub, port), 60), now);
                    }
                }
                6 => {
                    if let Some(&i) = masters.last() {
                        if let Some(s) = n.session_at(i).copied() {
                            let req = ExpectReq {
                                proto: ipv4::PROTO_UDP,
                                in_addr: s.in_addr,
                                in_port: port,
                                remote: 0,
                                class: class::SIP_MEDIA,
                                tag: step,
                                secs: 40,
                                keep: false,
                                alg: 0,
                            };
                            let _ = n.alg_expect_with(i, &req, now);
                        }
                    }
                }
                _ => {
                    now += 37;
                    n.expire(now, 1000);
                }
            }
            check(&n);
        }
        now += 1000;
        n.expire(now, 100_000);
        check(&n);
        assert_eq!(
            (n.live_sessions(), n.live_mappings(), records_used(&n)),
            (0, 0, 0)
        );
        assert_eq!(n.live_subscribers(), 0);
        // The records ran out on the way, and were refused cleanly.
        assert!(refused > 0, "{extra}");
    }
}

/// More expectations than the worker gathers at once (32) end with their master
/// session, and as many expire at their deadline: each is removed, none is left
/// pinning its mapping.
#[test]
fn many_expectations_end_with_their_master_and_at_their_deadline() {
    let text = format!("{CONFIG}[alg]\nsip = {{ enabled = true, ports = [5060] }}\n");
    let cfg = cgnat_config::Config::parse(&text, "t.toml").unwrap();
    let mut params = NatParams::from_config(&cfg.nat, 1).unwrap();
    params.set_algs(&cfg.alg);
    let c = Arc::new(WorkerCounters::default());
    let mut n = Nat::new(params, 0, 1, T0, 7, c.clone());
    let pin = |port: u16, secs: u32| ExpectReq {
        in_port: port,
        remote: R1,
        class: class::SIP_MEDIA,
        tag: 9,
        secs,
        keep: false,
        ..REGISTER
    };
    let i = n.in2out(&udp(SUB, 5060, R1, 5060), 0, true, T0).unwrap();
    assert_eq!(n.session(i).alg(), ALG_SIP);
    for p in 0..40 {
        assert!(n.alg_expect_with(i, &pin(20_000 + 2 * p, 60), T0).is_some());
    }
    assert_eq!(n.expectations().count(), 40);
    // Their deadline: all 40 go (the master lives on).
    n.expire(T0 + 61, 100);
    assert_eq!(n.expectations().count(), 0);
    assert_eq!(c.expectations_expired.get(), 40);
    // 40 more, then the master's end takes them.
    for p in 0..40 {
        assert!(n
            .alg_expect_with(i, &pin(30_000 + 2 * p, 3600), T0 + 61)
            .is_some());
    }
    assert_eq!(n.expectations().count(), 40);
    n.expire(T0 + 61 + 301, 100);
    assert_eq!(n.live_sessions(), 0);
    assert_eq!(n.expectations().count(), 0);
    assert_eq!(n.live_mappings(), 0);
}
