//! What a reload would change: the differences between the running config and a new
//! file, which of them change live, and that one that cannot refuses the whole file.

use cgnat_config::{reload_plan, Config};

mod common;
use common::BASE;

fn cfg(text: &str) -> Config {
    Config::parse(text, "new.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn keys(text: &str) -> Vec<String> {
    reload_plan(&cfg(BASE), &cfg(text), text)
        .unwrap_or_else(|e| panic!("refused: {e:?}"))
        .into_iter()
        .map(|c| c.key)
        .collect()
}

#[test]
fn the_same_file_changes_nothing() {
    assert!(keys(BASE).is_empty());
    // Defaults written out are no change either.
    assert!(keys(&format!("{BASE}[nat.timeouts]\nudp = 300\n")).is_empty());
}

#[test]
fn timeouts_alg_switches_limits_policies_and_statics_change_live() {
    let text = format!(
        "{BASE}max_sessions_per_subscriber = 77\nhairpinning = false\n\
         [nat.timeouts]\nudp = 600\n\
         [[nat.static]]\nprotocol = \"tcp\"\ninside = \"100.64.0.3:80\"\noutside = \"198.51.100.2:8080\"\n\
         [alg]\nftp = {{ enabled = false }}\nsip = {{ enabled = true, ports = [5060, 5070] }}\n"
    );
    let plan = reload_plan(&cfg(BASE), &cfg(&text), &text).unwrap();
    let k: Vec<&str> = plan.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(
        k,
        [
            "alg.ftp.enabled",
            "alg.sip.enabled",
            "alg.sip.ports",
            "nat.hairpinning",
            // Its default follows max_sessions_per_subscriber.
            "nat.max_inbound_sessions_per_subscriber",
            "nat.max_sessions_per_subscriber",
            "nat.static",
            "nat.timeouts.udp"
        ]
    );
    let udp = plan.iter().find(|c| c.key == "nat.timeouts.udp").unwrap();
    assert_eq!((udp.from.as_str(), udp.to.as_str()), ("300", "600"));
    let st = plan.iter().find(|c| c.key == "nat.static").unwrap();
    assert_eq!(st.from, "[]");
    assert!(st.to.contains("198.51.100.2:8080"), "{}", st.to);
}

#[test]
fn logging_destinations_change_live() {
    let text = format!("{BASE}[logging.ipfix]\ncollector = \"127.0.0.1:4739\"\n");
    let k = keys(&text);
    assert!(k.contains(&"logging.ipfix.collector".to_string()), "{k:?}");
    assert!(k.iter().all(|k| k.starts_with("logging.")), "{k:?}");
}

#[test]
fn lcores_are_refused_by_key_and_line_and_nothing_is_applied() {
    // A live change and one that needs a restart in the same file: only the latter is
    // named, and the plan holds nothing to apply.
    let text = BASE.replace("worker_lcores = [1]", "worker_lcores = [1, 2]")
        + "[nat.timeouts]\nudp = 600\n";
    let e = reload_plan(&cfg(BASE), &cfg(&text), &text).expect_err("must be refused");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].key, "dataplane.worker_lcores");
    assert_eq!(e[0].line, 3);
    assert_eq!(e[0].file, "new.toml");
    assert!(e[0].message.contains("without a restart"), "{}", e[0]);
    assert!(e[0].message.contains("lcores"), "{}", e[0]);
    assert!(e[0].message.contains("nothing was applied"), "{}", e[0]);
    assert!(e[0]
        .to_string()
        .starts_with("new.toml:3: key `dataplane.worker_lcores`"));
}

#[test]
fn devices_and_table_sizes_are_refused_each_named() {
    let text = BASE.replace("net_null1", "net_null9") + "max_sessions = 5000\n";
    let e = reload_plan(&cfg(BASE), &cfg(&text), &text).expect_err("must be refused");
    let k: Vec<(&str, usize)> = e.iter().map(|e| (e.key.as_str(), e.line)).collect();
    assert_eq!(k, [("nat.max_sessions", 20), ("ports", 5)]);
}

/// BASE under `allocation`, with room for subscribers set (the pool does not size the
/// subscriber tables then), and `pool`.
fn pooled(allocation: &str, pool: &str) -> String {
    BASE.replace("\"198.51.100.0/28\"", pool)
        + &format!("allocation = \"{allocation}\"\nmax_subscribers = 100000\n")
}

#[test]
fn pool_prefixes_are_added_and_removed_live() {
    for allocation in ["port-block", "dynamic"] {
        let running = pooled(allocation, "\"198.51.100.0/28\"");
        // One prefix added, then the first one removed: both live.
        let added = pooled(allocation, "\"198.51.100.0/28\", \"192.0.2.0/29\"");
        let plan = reload_plan(&cfg(&running), &cfg(&added), &added)
            .unwrap_or_else(|e| panic!("{allocation}: refused: {e:?}"));
        let k: Vec<&str> = plan.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(k, ["nat.pool"], "{allocation}");
        assert!(plan[0].to.contains("192.0.2.0/29"), "{}", plan[0].to);
        let removed = pooled(allocation, "\"192.0.2.0/29\"");
        let plan = reload_plan(&cfg(&added), &cfg(&removed), &removed)
            .unwrap_or_else(|e| panic!("{allocation}: refused: {e:?}"));
        assert_eq!(plan.len(), 1, "{plan:?}");
    }
}

#[test]
fn pool_changes_are_refused_under_deterministic_allocation() {
    let det = |pool: &str| {
        BASE.replace("\"198.51.100.0/28\"", pool)
            + "allocation = \"deterministic\"\ninside = [\"100.64.0.0/24\"]\n"
    };
    let running = det("\"198.51.100.0/28\"");
    let text = det("\"198.51.100.0/28\", \"192.0.2.0/28\"");
    let e = reload_plan(&cfg(&running), &cfg(&text), &text).expect_err("must be refused");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].key.as_str(), e[0].line), ("nat.pool", 19));
    assert!(e[0].message.contains("RFC 7422"), "{}", e[0]);
    assert!(e[0].message.contains("nothing was applied"), "{}", e[0]);
}

#[test]
fn a_pool_that_would_need_bigger_subscriber_tables_is_refused() {
    // Port-block allocation with max_subscribers left to its default: the tables were
    // sized for what the /28 serves; a /27 serves twice as many.
    let text = BASE.replace("198.51.100.0/28", "198.51.100.0/27");
    let e = reload_plan(&cfg(BASE), &cfg(&text), &text).expect_err("must be refused");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].key, "nat.pool");
    assert!(e[0].message.contains("nat.max_subscribers"), "{}", e[0]);
    assert!(e[0].message.contains("198.51.100.0/27"), "{}", e[0]);
    // Removing a prefix needs no room: live.
    let smaller = BASE.replace("198.51.100.0/28", "198.51.100.0/29");
    assert_eq!(keys(&smaller), ["nat.pool"]);
    // Back to the /28 after that: the tables were sized for it at start.
    let plan = cgnat_config::reload_plan_since(&cfg(BASE), &cfg(&smaller), &cfg(BASE), BASE)
        .unwrap_or_else(|e| panic!("refused: {e:?}"));
    assert_eq!(plan.len(), 1, "{plan:?}");
}

#[test]
fn a_setting_back_to_its_default_is_named_at_its_table() {
    // The running config has a key the new file drops: the change is to the default,
    // and a refused one is placed at the table that would hold it.
    let running = format!("{BASE}block_size = 128\n");
    let e = reload_plan(&cfg(&running), &cfg(BASE), BASE).expect_err("must be refused");
    assert_eq!(e[0].key, "nat.block_size");
    assert_eq!(e[0].line, 18); // [nat]
}

#[test]
fn tokens_change_live_and_listeners_do_not() {
    let text = format!(
        "{BASE}[api]\ntoken = \"0123456789abcdef\"\n[metrics]\ntoken = \"fedcba9876543210\"\n"
    );
    assert_eq!(keys(&text), ["api.token", "metrics.token"]);
    let text = format!("{BASE}[metrics]\nlisten = \"127.0.0.1:9999\"\n");
    let e = reload_plan(&cfg(BASE), &cfg(&text), &text).expect_err("must be refused");
    assert_eq!(e[0].key, "metrics.listen");
    assert!(
        e[0].message.contains("listener is bound at start"),
        "{}",
        e[0]
    );
}

#[test]
fn mapping_records_and_the_subscriber_limit_are_refused_live() {
    let text = format!("{BASE}max_mappings = 5000\nmax_subscribers = 100\n");
    let e = reload_plan(&cfg(BASE), &cfg(&text), &text).expect_err("must be refused");
    let k: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(k, ["nat.max_mappings", "nat.max_subscribers"]);
    assert!(e[0].message.contains("allocated at start"), "{}", e[0]);
    assert!(e[1].message.contains("sized from it at start"), "{}", e[1]);
}

#[test]
fn the_alg_engines_size_is_refused_live() {
    let text = format!("{BASE}max_alg_connections = 1024\n");
    let e = reload_plan(&cfg(BASE), &cfg(&text), &text).expect_err("must be refused");
    assert_eq!(e[0].key, "nat.max_alg_connections");
    assert!(e[0].message.contains("sized from it at start"), "{}", e[0]);
}

#[test]
fn pcp_limits_change_live_and_the_server_itself_does_not() {
    let on = format!("{BASE}[pcp]\n");
    // Its lifetimes, quota and switches: read by the worker at each request.
    let text = format!(
        "{on}min_lifetime = 60\nmax_lifetime = 3600\nmax_mappings_per_subscriber = 4\n\
         allow_third_party = true\nnat_pmp = false\n"
    );
    let plan = reload_plan(&cfg(&on), &cfg(&text), &text).unwrap();
    let k: Vec<&str> = plan.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(
        k,
        [
            "pcp.allow_third_party",
            "pcp.max_lifetime",
            "pcp.max_mappings_per_subscriber",
            "pcp.min_lifetime",
            "pcp.nat_pmp"
        ]
    );
    // Turning it on, off, or moving its port: a restart (its epoch, its ANNOUNCE).
    for (running, new) in [
        (BASE.to_string(), on.clone()),
        (on.clone(), BASE.to_string()),
        (on.clone(), format!("{on}enabled = false\n")),
        (on.clone(), format!("{on}listen = 5352\n")),
    ] {
        let e = reload_plan(&cfg(&running), &cfg(&new), &new).expect_err(&new);
        let refused: Vec<&str> = e.iter().map(|e| e.key.as_str()).collect();
        assert!(
            refused
                .iter()
                .all(|k| *k == "pcp.enabled" || *k == "pcp.listen"),
            "{refused:?}"
        );
        assert!(e[0].message.contains("PCP server"), "{}", e[0]);
    }
    let text = format!("{on}listen = 5352\n");
    let e = reload_plan(&cfg(&on), &cfg(&text), &text).unwrap_err();
    assert_eq!((e[0].key.as_str(), e[0].line), ("pcp.listen", 21));
}
