//! Every validation rule: a bad value is refused with its file, line, key, and what
//! would be valid; every example parses; resolved settings parse back to the same.

use cgnat_config::{load, Allocation, Behavior, Config, ConfigError, Role};
use std::path::Path;

const BASE: &str = r#"[dataplane]
control_lcore = 0
worker_lcores = [1]

[[ports]]
name = "inside"
role = "inside"
device = "net_null0"
ipv4 = "100.64.0.1/10"

[[ports]]
name = "outside"
role = "outside"
device = "net_null1"
ipv4 = "203.0.113.1/24"
gateway = "203.0.113.254"

[nat]
pool = ["198.51.100.0/28"]
"#;

fn err(text: &str) -> ConfigError {
    Config::parse(text, "t.toml").expect_err("must be refused")
}

/// BASE with `from` replaced by `to` (which must be unique); the error must name
/// `key`, point at the line where the key's last part is written in `to`, and say `hint`.
fn refused(from: &str, to: &str, key: &str, hint: &str) {
    assert!(BASE.contains(from), "test bug: {from}");
    let text = BASE.replacen(from, to, 1);
    assert_eq!(text.matches(to).count(), 1, "test bug: {to} not unique");
    let e = err(&text);
    let at = text.find(to).unwrap();
    let leaf = key.rsplit('.').next().unwrap().split('[').next().unwrap();
    let leaf_at = at
        + to.find(&format!("{leaf} ="))
            .or_else(|| to.find(leaf))
            .unwrap_or(0);
    let line = text[..leaf_at].matches('\n').count() + 1;
    assert_eq!(e.file, "t.toml");
    assert_eq!(e.key, key, "{e}");
    assert_eq!(e.line, line, "{e}");
    assert!(
        e.message.contains(hint),
        "message `{}` lacks `{hint}`",
        e.message
    );
    assert!(
        e.to_string()
            .starts_with(&format!("t.toml:{line}: key `{key}`")),
        "{e}"
    );
}

#[test]
fn base_parses_with_defaults() {
    let c = Config::parse(BASE, "t.toml").unwrap();
    assert_eq!(c.nat.mapping, Behavior::EndpointIndependent);
    assert_eq!(c.nat.allocation, Allocation::PortBlock);
    assert_eq!(c.nat.port_range, (1024, 65535));
    assert_eq!(c.nat.timeouts.tcp_established, 7440);
    assert_eq!(
        c.port(Role::Outside).unwrap().gateway,
        Some("203.0.113.254".parse().unwrap())
    );
    assert!(c.alg.ftp.enabled && !c.alg.sip.enabled);
    assert_eq!(c.metrics.listen, Some("127.0.0.1:9469".parse().unwrap()));
    assert_eq!(
        c.dataplane.eal_args,
        vec!["--no-huge", "-m", "1024", "--no-pci"]
    );
}

#[test]
fn syntax_error_has_its_line() {
    let e = err(&BASE.replace("control_lcore = 0", "control_lcore = = 0"));
    assert_eq!(e.line, 2, "{e}");
    assert_eq!(e.key, "control_lcore");
}

#[test]
fn unknown_key_is_named() {
    let e = err(&BASE.replace("worker_lcores = [1]", "worker_lcores = [1]\nwokrers = 2"));
    assert_eq!(e.line, 4, "{e}");
    assert_eq!(e.key, "wokrers");
    assert!(e.message.contains("expected one of"), "{e}");
}

#[test]
fn bad_enum_lists_valid_values() {
    let e = err(&BASE.replace("pool = [", "mapping = \"sideways\"\npool = ["));
    assert_eq!(e.line, 19, "{e}");
    assert_eq!(e.key, "mapping");
    assert!(
        e.message.contains("endpoint-independent")
            && e.message.contains("address-and-port-dependent"),
        "{e}"
    );
}

#[test]
fn wrong_type_is_refused() {
    let e = err(&BASE.replace("control_lcore = 0", "control_lcore = \"zero\""));
    assert_eq!(e.line, 2, "{e}");
}

#[test]
fn semantic_rules_name_line_key_and_fix() {
    refused(
        "ipv4 = \"100.64.0.1/10\"",
        "ipv4 = \"100.64.0.1/33\"",
        "ports[0].ipv4",
        "0 to 32",
    );
    refused(
        "ipv4 = \"100.64.0.1/10\"",
        "ipv4 = \"100.64.0.0/10\"",
        "ports[0].ipv4",
        "own address",
    );
    refused(
        "gateway = \"203.0.113.254\"",
        "gateway = \"192.0.2.1\"",
        "ports[1].gateway",
        "subnet",
    );
    refused(
        "gateway = \"203.0.113.254\"",
        "gateway = \"203.0.113.254\"\ngateway_mac = \"zz:00\"",
        "ports[1].gateway_mac",
        "MAC",
    );
    refused(
        "device = \"net_null1\"",
        "device = \"net_null1\"\nmtu = 20000",
        "ports[1].mtu",
        "68 to 9600",
    );
    refused(
        "pool = [\"198.51.100.0/28\"]",
        "pool = [\"198.51.100.1/28\"]",
        "nat.pool[0]",
        "host bits",
    );
    refused(
        "pool = [\"198.51.100.0/28\"]",
        "pool = [\"10.1.0.0/24\"]",
        "nat.pool[0]",
        "overlaps inside",
    );
    refused(
        "pool = [\"198.51.100.0/28\"]",
        "pool = []",
        "nat.pool",
        "empty",
    );
    refused(
        "pool = [\"198.51.100.0/28\"]",
        "pool = [\"198.51.100.0/28\"]\nport_range = [2000, 1000]",
        "nat.port_range",
        "low <= high",
    );
    refused(
        "pool = [\"198.51.100.0/28\"]",
        "pool = [\"198.51.100.0/28\"]\nblock_size = 0",
        "nat.block_size",
        "from 1",
    );
    refused(
        "pool = [\"198.51.100.0/28\"]",
        "pool = [\"198.51.100.0/28\"]\ntimeouts = { udp = 60 }",
        "nat.timeouts.udp",
        "RFC 4787 REQ-5",
    );
    refused(
        "pool = [\"198.51.100.0/28\"]",
        "pool = [\"198.51.100.0/28\"]\ntimeouts = { tcp_established = 3600 }",
        "nat.timeouts.tcp_established",
        "RFC 5382 REQ-5",
    );
    refused(
        "pool = [\"198.51.100.0/28\"]",
        "pool = [\"198.51.100.0/28\"]\ntimeouts = { tcp_transitory = 30 }",
        "nat.timeouts.tcp_transitory",
        "RFC 5382 REQ-5",
    );
    refused(
        "pool = [\"198.51.100.0/28\"]",
        "pool = [\"198.51.100.0/28\"]\ntimeouts = { icmp = 10 }",
        "nat.timeouts.icmp",
        "RFC 5508 REQ-1",
    );
    refused(
        "pool = [\"198.51.100.0/28\"]",
        "pool = [\"198.51.100.0/28\"]\nexclude_destinations = [\"1.2.3.0/33\"]",
        "nat.exclude_destinations[0]",
        "0 to 32",
    );
    refused(
        "worker_lcores = [1]",
        "worker_lcores = [0]",
        "dataplane.worker_lcores",
        "control lcore",
    );
    refused(
        "worker_lcores = [1]",
        "worker_lcores = [1, 1]",
        "dataplane.worker_lcores",
        "twice",
    );
    refused(
        "worker_lcores = [1]",
        "worker_lcores = []",
        "dataplane.worker_lcores",
        "at least one",
    );
    refused(
        "name = \"outside\"\nrole = \"outside\"",
        "name = \"inside\"\nrole = \"outside\"",
        "ports[1].name",
        "twice",
    );
    refused(
        "pool = [\"198.51.100.0/28\"]",
        "pool = [\"198.51.100.0/28\"]\n[[nat.static]]\nprotocol = \"tcp\"\ninside = \"100.64.0.9:80\"\noutside = \"192.0.2.1:80\"",
        "nat.static[0].outside",
        "not in nat.pool",
    );
    refused(
        "[dataplane]",
        "[metrics]\nlisten = \"localhost\"\n[dataplane]",
        "metrics.listen",
        "address and port",
    );
}

#[test]
fn both_roles_are_required() {
    let text = BASE.replace("role = \"outside\"", "role = \"inside\"");
    let e = err(&text);
    assert_eq!(e.key, "ports");
    assert!(
        e.message
            .contains("exactly one port with role = \"inside\""),
        "{e}"
    );
}

#[test]
fn missing_nat_table_is_explained() {
    let text = &BASE[..BASE.find("[nat]").unwrap()];
    let e = err(text);
    assert_eq!(e.key, "nat.pool");
}

#[test]
fn examples_parse_and_resolved_settings_round_trip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let c = load(&path).unwrap_or_else(|e| panic!("{e}"));
            let again = Config::parse(&c.resolved_toml(), &c.file)
                .unwrap_or_else(|e| panic!("{e}\n{}", c.resolved_toml()));
            assert_eq!(c, again, "{}", path.display());
            n += 1;
        }
    }
    assert!(n >= 3);
    let full = load(&dir.join("full.toml")).unwrap();
    assert_eq!(full.nat.statics.len(), 1);
    assert_eq!(full.nat.pool.len(), 2);
    assert!(full.logging.ipfix.is_some());
}

#[test]
fn unreadable_file_is_an_error_not_a_panic() {
    let e = load(Path::new("/nonexistent/cgnat.toml")).unwrap_err();
    assert!(e.message.contains("cannot read"));
}
