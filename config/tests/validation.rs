//! Every validation rule: a bad value is refused with its file, line, dotted key, and
//! what would be valid; every example parses; resolved settings parse back the same.

use cgnat_config::{load, Allocation, Behavior, Config, ConfigError, InboundSyn, Role};
use std::path::Path;

mod common;
use common::BASE;

const POOL: &str = "pool = [\"198.51.100.0/28\"]";

/// BASE with `from` (which must be there) replaced by `to`.
fn with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "test bug: `{from}` not in BASE");
    BASE.replacen(from, to, 1)
}

/// BASE with `lines` added to the [nat] table.
fn nat(lines: &str) -> String {
    with(POOL, &format!("{POOL}\n{lines}"))
}

/// BASE with `text` appended (new tables).
fn plus(text: &str) -> String {
    format!("{BASE}\n{text}\n")
}

/// The 1-based line of the only occurrence of `needle` in `text`.
fn line(text: &str, needle: &str) -> usize {
    assert_eq!(text.matches(needle).count(), 1, "test bug: `{needle}`");
    text[..text.find(needle).unwrap()].matches('\n').count() + 1
}

/// `text` must be refused at `line` for `key`, saying `hint`.
fn refused_at(text: &str, line: usize, key: &str, hint: &str) -> ConfigError {
    let e = Config::parse(text, "t.toml").expect_err("must be refused");
    assert_eq!(e.file, "t.toml");
    assert_eq!(e.key, key, "{e}");
    assert_eq!(e.line, line, "{e}");
    assert!(e.message.contains(hint), "`{e}` lacks `{hint}`");
    assert!(
        e.to_string()
            .starts_with(&format!("t.toml:{line}: key `{key}`: ")),
        "{e}"
    );
    e
}

/// `text` must be refused for `key` on the line where `at` is written.
fn refused(text: &str, at: &str, key: &str, hint: &str) -> ConfigError {
    refused_at(text, line(text, at), key, hint)
}

// ---- what parses ----------------------------------------------------------------

#[test]
fn base_parses_with_defaults() {
    let c = Config::parse(BASE, "t.toml").unwrap();
    assert_eq!(c.file, "t.toml");
    assert_eq!(c.nat.mapping, Behavior::EndpointIndependent);
    assert_eq!(c.nat.filtering, Behavior::EndpointIndependent);
    assert_eq!(c.nat.allocation, Allocation::PortBlock);
    assert_eq!(c.nat.port_range, (1024, 65535));
    assert_eq!(
        (c.nat.block_size, c.nat.max_blocks_per_subscriber),
        (512, 8)
    );
    assert_eq!(c.nat.max_sessions_per_subscriber, 8000);
    assert_eq!(c.nat.max_sessions, 1_048_576);
    assert!(c.nat.port_parity && c.nat.hairpinning && c.nat.icmp_on_limit);
    assert_eq!(c.nat.quarantine_secs, 120);
    assert_eq!(c.nat.inbound_syn, InboundSyn::Hold);
    let t = &c.nat.timeouts;
    assert_eq!(
        (
            t.udp,
            t.tcp_established,
            t.tcp_transitory,
            t.icmp,
            t.tcp_syn_inbound
        ),
        (300, 7440, 240, 60, 6)
    );
    let inside: Vec<String> = c.nat.inside.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        inside,
        [
            "10.0.0.0/8",
            "100.64.0.0/10",
            "172.16.0.0/12",
            "192.168.0.0/16"
        ]
    );
    let out = c.port(Role::Outside).unwrap();
    assert_eq!(out.gateway, Some("203.0.113.254".parse().unwrap()));
    assert_eq!((out.mtu, out.gateway_mac), (1500, None));
    // A port's address keeps its host bits: it is the port's own address.
    assert_eq!(
        c.port(Role::Inside).unwrap().ipv4.to_string(),
        "100.64.0.1/10"
    );
    assert!(c.alg["ftp"].enabled && !c.alg["tftp"].enabled && !c.alg["sip"].enabled);
    assert_eq!(c.alg["ftp"].ports, [21]);
    assert_eq!(c.alg["rtsp"].ports, [554, 8554]);
    assert_eq!(c.metrics.listen, Some("127.0.0.1:9469".parse().unwrap()));
    assert!(c.logging.ipfix.is_none());
    let d = &c.dataplane;
    assert_eq!(d.eal_args, ["--no-huge", "-m", "1024", "--no-pci"]);
    assert_eq!((d.control_lcore, d.worker_lcores.as_slice()), (0, &[1][..]));
    assert_eq!(
        (d.busy_poll, d.mbufs, d.rx_desc, d.tx_desc),
        (false, 16383, 1024, 1024)
    );
}

#[test]
fn metrics_off_or_empty_disables_the_endpoint() {
    for v in ["off", ""] {
        let c = Config::parse(&plus(&format!("[metrics]\nlisten = \"{v}\"")), "t").unwrap();
        assert_eq!(c.metrics.listen, None, "{v:?}");
    }
}

#[test]
fn examples_parse_and_resolved_settings_round_trip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let c = load(&path).unwrap_or_else(|e| panic!("{e}"));
            let again = Config::parse(&c.resolved_toml(), &c.file)
                .unwrap_or_else(|e| panic!("{e}\n{}", c.resolved_toml()));
            assert_eq!(c, again, "{}", path.display());
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    names.sort();
    assert_eq!(names, ["af_packet.toml", "full.toml", "pcap.toml"]);

    let pcap = load(&dir.join("pcap.toml")).unwrap();
    let out = pcap.port(Role::Outside).unwrap();
    assert!(out.device.starts_with("net_pcap"));
    assert_eq!(out.gateway_mac, Some([0x02, 0x00, 0x5e, 0x00, 0x53, 0xfe]));
    let afp = load(&dir.join("af_packet.toml")).unwrap();
    assert!(afp.ports.iter().all(|p| p.device.contains("iface=")));
    let full = load(&dir.join("full.toml")).unwrap();
    assert_eq!(full.nat.statics.len(), 1);
    assert_eq!(full.nat.pool.len(), 2);
    assert!(full.logging.ipfix.is_some());
}

#[test]
fn settings_other_than_the_defaults_round_trip() {
    let text = r#"
[dataplane]
eal_args = ["-m", "2048"]
control_lcore = 2
worker_lcores = [3, 1]
busy_poll = true
mbufs = 4095
mbuf_size = 9216
rx_desc = 512
tx_desc = 2048

[[ports]]
name = "out0"
role = "outside"
device = "0000:01:00.0"
ipv4 = "203.0.113.9/29"
gateway = "203.0.113.14"
gateway_mac = "AA:bb:cc:dd:ee:0f"
mtu = 9000

[[ports]]
name = "in0"
role = "inside"
device = "net_tap0"
ipv4 = "10.1.2.3/16"
gateway = "10.1.0.1"

[nat]
inside = ["10.0.0.0/8"]
pool = ["198.51.100.0/28", "192.0.2.64/26"]
mapping = "address-dependent"
filtering = "address-and-port-dependent"
pooling = "arbitrary"
allocation = "dynamic"
port_range = [2000, 3999]
block_size = 100
max_blocks_per_subscriber = 3
max_sessions_per_subscriber = 100
max_sessions = 5000
port_parity = false
port_preservation = true
quarantine_secs = 0
hairpinning = false
exclude_destinations = ["192.0.2.0/26"]
identity = ["10.9.0.0/24"]
icmp_on_limit = false
inbound_syn = "drop"
max_inbound_sessions_per_subscriber = 30
allow_destinations = ["10.8.0.0/16"]
ip_options = "drop"
timeouts = { udp = 120, tcp_established = 8000, tcp_transitory = 300, icmp = 90, tcp_syn_inbound = 10 }

[[nat.static]]
protocol = "udp"
inside = "10.0.0.5:53"
outside = "192.0.2.65:53"

[alg]
ftp = { enabled = false }
sip = { enabled = true, ports = [5060, 5080] }

[metrics]
listen = "off"

[api]
listen = "0.0.0.0:8080"
token = "0123456789abcdef0123"

[logging]
ipfix = { collector = "[::1]:4739", sessions = "on", destinations = true, mappings = true, threshold_percent = 0 }
syslog = { server = "192.0.2.9:514" }
"#;
    let c = Config::parse(text, "x.toml").unwrap();
    assert_eq!(c.port(Role::Inside).unwrap().name, "in0");
    assert_eq!(c.nat.port_range, (2000, 3999));
    assert_eq!(
        c.port(Role::Outside).unwrap().gateway_mac,
        Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f])
    );
    assert!(c.logging.ipfix.as_ref().is_some_and(|i| i.mappings));
    let resolved = c.resolved_toml();
    assert!(resolved.contains("listen = \"off\""), "{resolved}");
    let again = Config::parse(&resolved, "x.toml").unwrap_or_else(|e| panic!("{e}\n{resolved}"));
    assert_eq!(c, again);
}

// ---- syntax and schema --------------------------------------------------------------

#[test]
fn syntax_error_has_its_line_and_key() {
    let t = with("control_lcore = 0", "control_lcore = = 0");
    refused(&t, "= = 0", "dataplane.control_lcore", "not valid TOML");
    let t = with("gateway = \"203.0.113.254\"", "gateway = \"203.0.113.254");
    refused(&t, "gateway =", "ports[1].gateway", "not valid TOML");
}

#[test]
fn duplicate_key_is_a_syntax_error() {
    let t = with("control_lcore = 0", "control_lcore = 0\ncontrol_lcore = 1");
    refused(
        &t,
        "control_lcore = 1",
        "dataplane.control_lcore",
        "duplicate key",
    );
}

#[test]
fn unknown_key_lists_the_allowed_keys() {
    let t = with("worker_lcores = [1]", "worker_lcores = [1]\nwokrers = 2");
    refused(
        &t,
        "wokrers",
        "dataplane.wokrers",
        "expected one of `eal_args`, `control_lcore`, `worker_lcores`",
    );
    let t = with(
        "ipv4 = \"203.0.113.1/24\"",
        "ipv4 = \"203.0.113.1/24\"\nip6 = \"::1/64\"",
    );
    refused(&t, "ip6", "ports[1].ip6", "`gateway_mac`, `mtu`, `ipv6`");
}

#[test]
fn unknown_key_in_an_inline_table_is_named() {
    let t = nat("timeouts = { udp = 300, icmpp = 60 }");
    refused(&t, "timeouts", "nat.timeouts.icmpp", "`tcp_syn_inbound`");
    let t = plus("[alg]\nftp = { enabled = true, port = [21] }");
    refused(&t, "port = [21]", "alg.ftp.port", "`ports`");
}

#[test]
fn unknown_table_is_named() {
    let t = plus("[metric]\nlisten = \"off\"");
    refused(&t, "[metric]", "metric", "`metrics`");
}

#[test]
fn wrong_type_says_which_type() {
    let t = with("control_lcore = 0", "control_lcore = \"zero\"");
    refused(
        &t,
        "zero",
        "dataplane.control_lcore",
        "an integer from 0 to 4294967295",
    );
    let t = with("worker_lcores = [1]", "worker_lcores = 1");
    refused(
        &t,
        "worker_lcores",
        "dataplane.worker_lcores",
        "expected an array",
    );
    let t = plus("[alg]\nftp = { enabled = \"yes\" }");
    refused(&t, "yes", "alg.ftp.enabled", "true or false");
    let t = plus("[alg]\nftp = 3");
    refused(&t, "ftp = 3", "alg.ftp", "expected a table");
}

#[test]
fn out_of_range_integer_says_the_range() {
    let t = with(
        "device = \"net_null1\"",
        "device = \"net_null1\"\nmtu = 70000",
    );
    refused(&t, "70000", "ports[1].mtu", "0 to 65535");
    let t = with("control_lcore = 0", "control_lcore = -1");
    refused(&t, "-1", "dataplane.control_lcore", "from 0");
}

#[test]
fn bad_enum_string_lists_valid_values() {
    for (k, bad, valid) in [
        ("mapping", "sideways", "`address-and-port-dependent`"),
        ("filtering", "strict", "`address-dependent`"),
        ("pooling", "random", "`arbitrary`"),
        (
            "allocation",
            "blocks",
            "`port-block`, `dynamic`, `deterministic`",
        ),
        ("inbound_syn", "reject", "`hold` or `drop`"),
    ] {
        let t = nat(&format!("{k} = \"{bad}\""));
        refused(&t, bad, &format!("nat.{k}"), valid);
    }
    let t = with("role = \"outside\"", "role = \"out\"");
    refused(&t, "\"out\"", "ports[1].role", "`inside` or `outside`");
    let t = plus("[[nat.static]]\nprotocol = \"sctp\"\ninside = \"10.0.0.1:1\"\noutside = \"198.51.100.1:1\"");
    refused(&t, "sctp", "nat.static[0].protocol", "`tcp` or `udp`");
    let t = plus("[logging]\nipfix = { collector = \"127.0.0.1:4739\", sessions = \"all\" }");
    refused(&t, "all", "logging.ipfix.sessions", "`auto`, `on`, `off`");
}

#[test]
fn ipfix_mappings_is_a_boolean() {
    let t = plus("[logging]\nipfix = { collector = \"127.0.0.1:4739\", mappings = \"yes\" }");
    refused(
        &t,
        "mappings",
        "logging.ipfix.mappings",
        "expected true or false",
    );
}

#[test]
fn enum_given_a_number_lists_valid_values() {
    let t = with("role = \"outside\"", "role = 2");
    refused(&t, "role = 2", "ports[1].role", "\"inside\" or \"outside\"");
}

#[test]
fn missing_port_key_is_named() {
    let t = with("device = \"net_null1\"\n", "");
    let at = t.rfind("[[ports]]").unwrap();
    let l = t[..at].matches('\n').count() + 1;
    refused_at(&t, l, "ports[1].device", "name, role, device and ipv4");
}

#[test]
fn missing_pool_is_explained_at_the_nat_table() {
    let t = with(POOL, "hairpinning = true");
    refused(
        &t,
        "[nat]",
        "nat.pool",
        "e.g. [nat] pool = [\"198.51.100.0/28\"]",
    );
}

#[test]
fn missing_nat_table_is_explained() {
    let t = &BASE[..BASE.find("[nat]").unwrap()];
    refused_at(t, 0, "nat.pool", "nat.pool is required");
}

#[test]
fn missing_ipfix_collector_is_named() {
    let t = plus("[logging]\nipfix = { sessions = \"on\" }");
    refused(
        &t,
        "ipfix",
        "logging.ipfix.collector",
        "collector = \"127.0.0.1:4739\"",
    );
}

// ---- [dataplane] ---------------------------------------------------------------------

#[test]
fn worker_lcores_must_not_be_empty() {
    let t = with("worker_lcores = [1]", "worker_lcores = []");
    refused(
        &t,
        "worker_lcores",
        "dataplane.worker_lcores",
        "at least one worker lcore",
    );
}

#[test]
fn worker_lcores_must_not_repeat() {
    let t = with(
        "worker_lcores = [1]",
        "worker_lcores = [\n  1,\n  2,\n  1,\n]",
    );
    refused_at(&t, 6, "dataplane.worker_lcores[2]", "listed twice");
}

#[test]
fn worker_lcores_must_not_hold_the_control_lcore() {
    let t = with("worker_lcores = [1]", "worker_lcores = [1, 0]");
    refused(
        &t,
        "worker_lcores",
        "dataplane.worker_lcores[1]",
        "control lcore",
    );
}

#[test]
fn mbufs_have_a_minimum() {
    let t = with("worker_lcores = [1]", "worker_lcores = [1]\nmbufs = 100");
    refused(&t, "mbufs", "dataplane.mbufs", "at least 1024");
}

#[test]
fn descriptors_are_a_power_of_two_in_range() {
    let t = with("worker_lcores = [1]", "worker_lcores = [1]\nrx_desc = 1000");
    refused(
        &t,
        "rx_desc",
        "dataplane.rx_desc",
        "power of two from 32 to 16384",
    );
    let t = with("worker_lcores = [1]", "worker_lcores = [1]\ntx_desc = 16");
    refused(&t, "tx_desc", "dataplane.tx_desc", "power of two");
}

#[test]
fn eal_args_must_not_pick_lcores() {
    let t = with("[dataplane]", "[dataplane]\neal_args = [\"-l\", \"0-3\"]");
    refused(
        &t,
        "eal_args",
        "dataplane.eal_args",
        "control_lcore and worker_lcores",
    );
}

#[test]
fn mbuf_must_hold_a_full_frame() {
    let t = with(
        "device = \"net_null1\"",
        "device = \"net_null1\"\nmtu = 9000",
    );
    refused(&t, "[dataplane]", "dataplane.mbuf_size", "at least 9146");
}

// ---- [[ports]] -----------------------------------------------------------------------

#[test]
fn one_inside_and_one_outside_port() {
    let t = with("role = \"outside\"", "role = \"inside\"");
    let e = refused(
        &t,
        "[[ports]]\nname = \"inside\"",
        "ports",
        "exactly one port with role = \"inside\"",
    );
    assert!(e.message.contains("for now"), "{e}");
    let t = plus("[[ports]]\nname = \"out2\"\nrole = \"outside\"\ndevice = \"net_null2\"\nipv4 = \"192.0.2.1/24\"");
    refused(&t, "[[ports]]\nname = \"inside\"", "ports", "found 2");
}

#[test]
fn port_names_are_unique() {
    let t = with("name = \"outside\"", "name = \"inside\"");
    let l = line(&t, "role = \"outside\"") - 1;
    refused_at(&t, l, "ports[1].name", "used twice");
}

#[test]
fn port_needs_a_device() {
    let t = with("device = \"net_null1\"", "device = \" \"");
    refused(&t, "device = \" \"", "ports[1].device", "a PCI address");
}

#[test]
fn port_prefix_length_is_at_most_32() {
    let t = with("ipv4 = \"100.64.0.1/10\"", "ipv4 = \"100.64.0.1/33\"");
    refused(&t, "/33", "ports[0].ipv4", "0 to 32");
}

#[test]
fn port_address_must_be_an_address() {
    let t = with("ipv4 = \"100.64.0.1/10\"", "ipv4 = \"100.64.0/10\"");
    refused(&t, "100.64.0/10", "ports[0].ipv4", "not an IPv4 address");
}

#[test]
fn port_needs_its_own_address_not_the_network() {
    let t = with("ipv4 = \"100.64.0.1/10\"", "ipv4 = \"100.64.0.0/10\"");
    refused(&t, "100.64.0.0/10", "ports[0].ipv4", "own address");
}

#[test]
fn gateway_is_on_the_port_subnet() {
    let t = with("gateway = \"203.0.113.254\"", "gateway = \"192.0.2.1\"");
    refused(&t, "192.0.2.1", "ports[1].gateway", "subnet 203.0.113.0/24");
    let t = with("gateway = \"203.0.113.254\"", "gateway = \"203.0.113.1\"");
    refused(&t, "gateway", "ports[1].gateway", "another address");
    let t = with("gateway = \"203.0.113.254\"", "gateway = \"gw\"");
    refused(&t, "gateway", "ports[1].gateway", "not an IPv4 address");
}

#[test]
fn gateway_mac_is_a_mac_address() {
    let t = with(
        "gateway = \"203.0.113.254\"",
        "gateway = \"203.0.113.254\"\ngateway_mac = \"zz:00\"",
    );
    refused(&t, "zz:00", "ports[1].gateway_mac", "MAC address");
}

#[test]
fn gateway_mac_needs_a_gateway() {
    let t = with(
        "ipv4 = \"100.64.0.1/10\"",
        "ipv4 = \"100.64.0.1/10\"\ngateway_mac = \"02:00:00:00:00:01\"",
    );
    refused(&t, "gateway_mac", "ports[0].gateway_mac", "needs a gateway");
}

#[test]
fn mtu_is_68_to_9600() {
    for bad in [67, 9601] {
        let t = with(
            "device = \"net_null1\"",
            &format!("device = \"net_null1\"\nmtu = {bad}"),
        );
        refused(&t, "mtu", "ports[1].mtu", "68 to 9600");
    }
}

// ---- [nat] ---------------------------------------------------------------------------

#[test]
fn pool_must_not_be_empty() {
    let t = with(POOL, "pool = []");
    refused(&t, "pool", "nat.pool", "at least one prefix");
}

#[test]
fn pool_prefix_is_a_network_address() {
    let t = with(
        POOL,
        "pool = [\n  \"192.0.2.0/24\",\n  \"198.51.100.1/28\",\n]",
    );
    refused(
        &t,
        "198.51.100.1/28",
        "nat.pool[1]",
        "host bits set; the prefix is 198.51.100.0/28",
    );
}

#[test]
fn inside_prefix_is_a_network_address() {
    let t = nat("inside = [\"100.64.0.1/10\"]");
    refused(&t, "inside =", "nat.inside[0]", "host bits");
}

#[test]
fn exclude_destinations_are_prefixes() {
    let t = nat("exclude_destinations = [\"1.2.3.0/33\"]");
    refused(&t, "exclude", "nat.exclude_destinations[0]", "0 to 32");
    let t = nat("exclude_destinations = [\"1.2.3.4/24\"]");
    refused(&t, "exclude", "nat.exclude_destinations[0]", "host bits");
}

#[test]
fn pool_must_not_overlap_inside() {
    let t = with(POOL, "pool = [\"10.1.0.0/24\"]");
    refused(
        &t,
        "pool",
        "nat.pool[0]",
        "overlaps inside prefix 10.0.0.0/8",
    );
}

#[test]
fn pool_prefixes_must_not_overlap_each_other() {
    let t = with(POOL, "pool = [\"198.51.100.0/28\", \"198.51.100.8/29\"]");
    refused(&t, "pool", "nat.pool[1]", "overlaps 198.51.100.0/28");
}

#[test]
fn pool_must_not_hold_a_port_address() {
    // Subscribers paired onto the outside port's own address would lose every reply
    // (the appliance takes packets to it for itself).
    let t = with(POOL, "pool = [\"203.0.113.0/28\"]");
    refused(
        &t,
        "pool",
        "nat.pool[0]",
        "holds 203.0.113.1, the address of port `outside`",
    );
    let t = with(POOL, "pool = [\"198.51.100.0/28\", \"203.0.113.1/32\"]");
    refused(&t, "pool", "nat.pool[1]", "the address of port `outside`");
}

#[test]
fn identity_must_not_overlap_the_pool() {
    let t = nat("identity = [\"198.51.100.0/30\"]");
    refused(&t, "identity", "nat.identity[0]", "overlaps pool prefix");
}

#[test]
fn port_range_is_low_to_high() {
    let t = nat("port_range = [2000, 1000]");
    refused(&t, "port_range", "nat.port_range", "1 <= low <= high");
}

#[test]
fn port_range_does_not_start_at_zero() {
    let t = nat("port_range = [0, 1000]");
    refused(&t, "port_range", "nat.port_range", "1 <= low");
}

#[test]
fn port_range_has_two_ends() {
    let t = nat("port_range = [1024, 2048, 4096]");
    refused(
        &t,
        "port_range",
        "nat.port_range",
        "two ports, e.g. [1024, 65535]",
    );
}

#[test]
fn block_size_is_at_least_one() {
    let t = nat("block_size = 0");
    refused(
        &t,
        "block_size",
        "nat.block_size",
        "from 1 to the 64512 ports",
    );
}

#[test]
fn block_size_fits_in_the_port_range() {
    let t = nat("port_range = [1024, 1100]\nblock_size = 100");
    refused(
        &t,
        "block_size",
        "nat.block_size",
        "from 1 to the 77 ports of port_range",
    );
    // The default block size (512) too, pointing at [nat] where it would be written.
    let t = nat("port_range = [1024, 1100]");
    refused(&t, "[nat]", "nat.block_size", "block_size 512");
}

#[test]
fn max_blocks_per_subscriber_is_at_least_one() {
    let t = nat("max_blocks_per_subscriber = 0");
    refused(
        &t,
        "max_blocks",
        "nat.max_blocks_per_subscriber",
        "at least 1",
    );
}

#[test]
fn max_sessions_per_subscriber_is_at_least_one() {
    let t = nat("max_sessions_per_subscriber = 0");
    refused(
        &t,
        "max_sessions_per",
        "nat.max_sessions_per_subscriber",
        "at least 1",
    );
}

#[test]
fn max_sessions_covers_every_worker() {
    let t = nat("max_sessions = 0");
    refused(
        &t,
        "max_sessions =",
        "nat.max_sessions",
        "one session per worker",
    );
}

#[test]
fn max_sessions_fits_the_tables_of_the_workers() {
    // The sample config has one worker lcore: 16,000,000 sessions at most.
    let t = nat("max_sessions = 16000001");
    refused(
        &t,
        "max_sessions =",
        "nat.max_sessions",
        "more than 16000000 per worker lcore; with 1 worker lcore(s), at most 16000000",
    );
    let ok = nat("max_sessions = 16000000");
    assert!(Config::parse(&ok, "t.toml").is_ok());
}

#[test]
fn max_mappings_defaults_to_an_eighth_of_max_sessions_within_the_record_numbers() {
    let c = Config::parse(BASE, "t.toml").unwrap();
    assert_eq!(c.nat.mapping_records(1), 1_048_576 / 8);
    // Small tables keep room for pinholes and static mappings.
    let c = Config::parse(&nat("max_sessions = 100"), "t.toml").unwrap();
    assert_eq!(c.nat.mapping_records(1), 1024);
    // A worker numbers its sessions and mapping records together in 24 bits.
    let c = Config::parse(&nat("max_sessions = 16000000"), "t.toml").unwrap();
    assert_eq!(c.nat.mapping_records(1), 777_215);
    let c = Config::parse(&nat("max_mappings = 5000"), "t.toml").unwrap();
    assert_eq!(c.nat.mapping_records(1), 5000);
}

#[test]
fn max_mappings_is_refused_outside_its_range() {
    let t = nat("max_sessions = 16000000\nmax_mappings = 777216");
    refused(
        &t,
        "max_mappings",
        "nat.max_mappings",
        "777216 mapping records; from 1 (per worker lcore, one and one per static mapping) \
         to 777215: a worker numbers its 16000000 sessions",
    );
    let t = nat("max_mappings = 0");
    refused(&t, "max_mappings", "nat.max_mappings", "from 1 ");
    // Two workers, one static mapping: each worker may need a record for it.
    let t = with("worker_lcores = [1]", "worker_lcores = [1, 2]").replace(
        POOL,
        &format!(
            "{POOL}\nmax_mappings = 3\n[[nat.static]]\nprotocol = \"tcp\"\n\
             inside = \"100.64.0.5:80\"\noutside = \"198.51.100.1:80\""
        ),
    );
    refused(&t, "max_mappings", "nat.max_mappings", "from 4 ");
}

#[test]
fn max_alg_connections_defaults_and_is_refused_outside_its_range() {
    let c = Config::parse(BASE, "t.toml").unwrap();
    assert_eq!(c.nat.max_alg_connections, 65_536);
    let c = Config::parse(&nat("max_alg_connections = 64"), "t.toml").unwrap();
    assert_eq!(c.nat.max_alg_connections, 64);
    refused(
        &nat("max_alg_connections = 63"),
        "max_alg_connections",
        "nat.max_alg_connections",
        "63 ALG control connections; from 64 (64 per worker lcore) to 4194304",
    );
    refused(
        &nat("max_alg_connections = 4194305"),
        "max_alg_connections",
        "nat.max_alg_connections",
        "to 4194304",
    );
    // Two workers: 64 each at least.
    let t = with("worker_lcores = [1]", "worker_lcores = [1, 2]")
        .replace(POOL, &format!("{POOL}\nmax_alg_connections = 100"));
    refused(
        &t,
        "max_alg_connections",
        "nat.max_alg_connections",
        "from 128 ",
    );
}

#[test]
fn max_subscribers_defaults_to_what_the_pool_can_serve() {
    // Port-block: the pool's blocks (16 addresses of 126 blocks of 512 ports).
    let c = Config::parse(BASE, "t.toml").unwrap();
    assert_eq!(c.nat.subscriber_limit(1), 16 * 126);
    // Dynamic: a subscriber with state has a session.
    let c = Config::parse(
        &nat("allocation = \"dynamic\"\nmax_sessions = 5000"),
        "t.toml",
    )
    .unwrap();
    assert_eq!(c.nat.subscriber_limit(1), 5000);
    let c = Config::parse(&nat("max_subscribers = 300"), "t.toml").unwrap();
    assert_eq!(c.nat.subscriber_limit(1), 300);
    // Four workers: the busiest owns 32 of each address's 126 blocks.
    let four = with("worker_lcores = [1]", "worker_lcores = [1, 2, 3, 4]");
    let c = Config::parse(&four, "t.toml").unwrap();
    assert_eq!(c.nat.subscriber_limit(4), 16 * 32 * 4);
}

#[test]
fn max_subscribers_is_refused_outside_its_range() {
    let t = nat("max_subscribers = 0");
    refused(
        &t,
        "max_subscribers",
        "nat.max_subscribers",
        "0 subscribers; from 1 (one per worker lcore) to 16000000",
    );
    let t = nat("max_subscribers = 16000001");
    refused(&t, "max_subscribers", "nat.max_subscribers", "to 16000000");
}

#[test]
fn udp_timeout_has_the_rfc_4787_minimum() {
    let t = nat("timeouts = { udp = 60 }");
    refused(
        &t,
        "timeouts",
        "nat.timeouts.udp",
        "below the 120 s minimum of RFC 4787 REQ-5",
    );
}

#[test]
fn tcp_established_timeout_has_the_rfc_5382_minimum() {
    let t = nat("[nat.timeouts]\ntcp_established = 3600");
    refused(
        &t,
        "3600",
        "nat.timeouts.tcp_established",
        "7440 s minimum of RFC 5382 REQ-5",
    );
}

#[test]
fn tcp_transitory_timeout_has_the_rfc_5382_minimum() {
    let t = nat("timeouts.tcp_transitory = 30");
    refused(
        &t,
        "30",
        "nat.timeouts.tcp_transitory",
        "240 s minimum of RFC 5382 REQ-5",
    );
}

#[test]
fn icmp_timeout_has_the_rfc_5508_minimum() {
    let t = nat("timeouts = { icmp = 10 }");
    refused(
        &t,
        "timeouts",
        "nat.timeouts.icmp",
        "60 s minimum of RFC 5508 REQ-1",
    );
}

#[test]
fn inbound_syn_hold_is_bounded() {
    let t = nat("timeouts = { tcp_syn_inbound = 0 }");
    refused(
        &t,
        "timeouts",
        "nat.timeouts.tcp_syn_inbound",
        "from 1 to 60",
    );
}

const STATIC: &str = "[[nat.static]]\nprotocol = \"tcp\"\ninside = \"100.64.0.9:80\"\noutside = \"198.51.100.1:8080\"";

#[test]
fn static_mapping_parses() {
    let c = Config::parse(&plus(STATIC), "t").unwrap();
    let s = c.nat.statics[0];
    assert_eq!(s.protocol, cgnat_config::L4Proto::Tcp);
    assert_eq!(s.inside, "100.64.0.9:80".parse().unwrap());
    assert_eq!(s.outside, "198.51.100.1:8080".parse().unwrap());
}

#[test]
fn static_outside_address_is_in_the_pool() {
    let t = plus(&STATIC.replace("198.51.100.1:8080", "192.0.2.1:8080"));
    refused(
        &t,
        "192.0.2.1:8080",
        "nat.static[0].outside",
        "192.0.2.1 is not in nat.pool",
    );
}

#[test]
fn static_inside_address_is_an_inside_address() {
    let t = plus(&STATIC.replace("100.64.0.9:80", "192.0.2.9:80"));
    refused(
        &t,
        "192.0.2.9:80",
        "nat.static[0].inside",
        "not in nat.inside",
    );
}

#[test]
fn static_endpoints_have_ports() {
    let t = plus(&STATIC.replace("100.64.0.9:80", "100.64.0.9"));
    refused(
        &t,
        "inside =",
        "nat.static[0].inside",
        "like \"10.0.0.5:80\"",
    );
}

#[test]
fn static_outside_endpoint_is_mapped_once() {
    let second = STATIC.replace("100.64.0.9", "100.64.0.10");
    let t = plus(&format!("{STATIC}\n{second}"));
    let l = line(&t, "100.64.0.10") + 1;
    refused_at(&t, l, "nat.static[1].outside", "mapped twice");
    let t = plus(&format!("{STATIC}\n{}", second.replace("tcp", "udp")));
    assert!(
        Config::parse(&t, "t").is_ok(),
        "udp and tcp may share a port"
    );
}

// ---- [alg], [metrics], [api], [logging] ------------------------------------------------

#[test]
fn alg_ports_are_non_empty_and_non_zero() {
    let t = plus("[alg]\nsip = { enabled = true, ports = [] }");
    refused(&t, "sip", "alg.sip.ports", "at least one port");
    let t = plus("[alg]\nrtsp = { ports = [554, 0] }");
    refused(&t, "rtsp", "alg.rtsp.ports", "none of them 0");
}

#[test]
fn ftp_only_switches_are_refused_elsewhere() {
    let t = plus("[alg]\ntftp = { min_data_port = 1024 }");
    refused(&t, "tftp", "alg.tftp.min_data_port", "only alg.ftp");
    let t = plus("[alg]\nftp = { min_data_port = 0 }");
    refused(&t, "ftp", "alg.ftp.min_data_port", "1 to 65535");
}

#[test]
fn ftp_command_policy_is_validated() {
    let t = plus("[alg]\nftp = { deny = [\"SITE\", \"RM -R\"] }");
    refused(&t, "ftp", "alg.ftp.deny", "`RM -R` is not an FTP command");
    let t = plus("[alg]\nftp = { allow = [\"USER\", \"X\"] }");
    refused(&t, "ftp", "alg.ftp.allow", "three or four letters");
    let t = plus("[alg]\nftp = { deny = [\"site\"], allow = [\"USER\", \"SITE\"] }");
    refused(
        &t,
        "ftp",
        "alg.ftp.deny",
        "`SITE` is in both deny and allow",
    );
    let t = plus("[alg]\nftp = { bounce = \"allow\" }");
    refused(&t, "allow", "alg.ftp.bounce", "`refuse` or `pass`");
    let t = plus("[alg]\nftp = { low_port = \"yes\" }");
    refused(&t, "yes", "alg.ftp.low_port", "`refuse` or `pass`");
    let t = plus("[alg]\nftp = { on_deny = \"reset\" }");
    refused(&t, "reset", "alg.ftp.on_deny", "`reply` or `drop`");
    let t = plus("[alg]\nsip = { deny = [\"SITE\"] }");
    refused(&t, "sip", "alg.sip.deny", "only alg.ftp");
    // The defaults: bounce and low ports refused, with a reply; verbs upper-cased.
    let c = Config::parse(&plus(""), "t").unwrap();
    let f = &c.alg["ftp"];
    assert!(f.refuse_bounce && f.refuse_low_port && f.deny.is_empty() && f.allow.is_empty());
    assert_eq!(f.on_deny, cgnat_config::OnDeny::Reply);
    let t =
        plus("[alg]\nftp = { deny = [\"site\", \"Dele\"], bounce = \"pass\", on_deny = \"drop\" }");
    let c = Config::parse(&t, "t").unwrap();
    assert_eq!(c.alg["ftp"].deny, ["SITE", "DELE"]);
    assert!(!c.alg["ftp"].refuse_bounce && c.alg["ftp"].refuse_low_port);
    assert_eq!(c.alg["ftp"].on_deny, cgnat_config::OnDeny::Drop);
}

#[test]
fn alg_subscriber_prefixes_are_within_the_inside_prefixes() {
    let t =
        plus("[alg]\nsip = { enabled = true, except = [\"100.64.8.0/24\", \"100.64.9.1/24\"] }");
    refused(&t, "sip", "alg.sip.except[1]", "host bits set");
    let t = plus("[alg]\nftp = { only = [\"198.18.0.0/15\"] }");
    refused(
        &t,
        "ftp",
        "alg.ftp.only[0]",
        "198.18.0.0/15 names no subscriber: a prefix within nat.inside (10.0.0.0/8, 100.64.0.0/10",
    );
    let t = plus("[alg]\nrtsp = { only = [\"100.64.0.0/16\"], except = [\"100.64.8.0/24\"] }");
    let c = Config::parse(&t, "t").unwrap();
    assert_eq!(c.alg["rtsp"].only[0].to_string(), "100.64.0.0/16");
    assert_eq!(c.alg["rtsp"].except[0].to_string(), "100.64.8.0/24");
    assert!(c.alg["ftp"].only.is_empty() && c.alg["ftp"].except.is_empty());
}

#[test]
fn sip_and_rtsp_method_policy_is_validated() {
    let t = plus("[alg]\nsip = { deny_methods = [\"MESSAGE\", \"invite\"] }");
    refused(
        &t,
        "sip",
        "alg.sip.deny_methods",
        "`invite` is not a request method",
    );
    let t = plus("[alg]\nftp = { deny_methods = [\"SITE\"] }");
    refused(
        &t,
        "ftp",
        "alg.ftp.deny_methods",
        "only alg.sip and alg.rtsp",
    );
    let t = plus("[alg]\nrtsp = { max_message_size = 2048 }");
    refused(&t, "rtsp", "alg.rtsp.max_message_size", "only alg.sip");
    let t = plus("[alg]\nsip = { max_message_size = 100 }");
    refused(&t, "sip", "alg.sip.max_message_size", "512 to 24576 bytes");
    let t = plus("[alg]\nsip = { deny_status = 404 }");
    refused(
        &t,
        "sip",
        "alg.sip.deny_status",
        "405 (Method Not Allowed) or 403",
    );
    let t = plus("[alg]\ntftp = { on_deny = \"drop\" }");
    refused(
        &t,
        "tftp",
        "alg.tftp.on_deny",
        "only alg.ftp, alg.sip and alg.rtsp",
    );
    let t = plus(
        "[alg]\nsip = { deny_methods = [\"MESSAGE\"], max_message_size = 4096, deny_status = 403 }\n\
         rtsp = { deny_methods = [\"RECORD\"], on_deny = \"drop\" }",
    );
    let c = Config::parse(&t, "t").unwrap();
    assert_eq!(c.alg["sip"].deny_methods, ["MESSAGE"]);
    assert_eq!(
        (c.alg["sip"].max_message_size, c.alg["sip"].deny_status),
        (4096, 403)
    );
    assert_eq!(c.alg["rtsp"].on_deny, cgnat_config::OnDeny::Drop);
    let d = Config::parse(&plus(""), "t").unwrap();
    assert_eq!(
        (d.alg["sip"].max_message_size, d.alg["sip"].deny_status),
        (0, 405)
    );
}

#[test]
fn every_registry_alg_has_its_section_with_the_registry_defaults() {
    use cgnat_alg::PLUGINS;
    let c = Config::parse(BASE, "t.toml").unwrap();
    let order: Vec<&str> = c.alg.iter().map(|(p, _)| p.name).collect();
    let names: Vec<&str> = PLUGINS.iter().map(|p| p.name).collect();
    assert_eq!(order, names);
    for p in &PLUGINS {
        let n = p.name;
        let a = c.alg.get(n).unwrap_or_else(|| panic!("no [alg.{n}]"));
        assert_eq!(a.enabled, p.on_by_default, "{n}");
        assert_eq!(a.ports, p.default_ports, "{n}");
        assert!(a.only.is_empty() && a.except.is_empty(), "{n}");
        assert_eq!(c.alg.by_id(p.id), Some(a), "{n}");
        // The keys every ALG takes, set under each.
        let t = plus(&format!(
            "[alg.{n}]\nenabled = {}\nports = [4000, 4001]\n\
             only = [\"100.64.0.0/16\"]\nexcept = [\"100.64.8.0/24\"]",
            !p.on_by_default
        ));
        let d = Config::parse(&t, "t.toml").unwrap_or_else(|e| panic!("{n}: {e}"));
        let b = &d.alg[n];
        assert_eq!(b.enabled, !p.on_by_default, "{n}");
        assert_eq!(b.ports, [4000, 4001], "{n}");
        assert_eq!(b.only[0].to_string(), "100.64.0.0/16", "{n}");
        assert_eq!(b.except[0].to_string(), "100.64.8.0/24", "{n}");
        for q in PLUGINS.iter().filter(|q| q.name != n) {
            assert_eq!(d.alg[q.name], c.alg[q.name], "{n} changed {}", q.name);
        }
        let t = plus(&format!("[alg.{n}]\nports = []"));
        refused(
            &t,
            "ports = []",
            &format!("alg.{n}.ports"),
            "at least one port",
        );
    }
}

#[test]
fn an_unknown_alg_section_is_refused_naming_the_registry_algs() {
    let t = plus("[alg.ftps]\nenabled = true");
    let e = refused(&t, "[alg.ftps]", "alg.ftps", "no ALG `ftps`: the ALGs are");
    let t = plus("[alg]\nh323 = { enabled = true }");
    let f = refused(&t, "h323", "alg.h323", "no ALG `h323`: the ALGs are");
    for p in &cgnat_alg::PLUGINS {
        let name = format!("`{}`", p.name);
        assert!(
            e.message.contains(&name) && f.message.contains(&name),
            "{e}"
        );
    }
    // A schema error, named before the values of other tables are checked.
    let t = format!(
        "{}\n[alg.ftps]\nenabled = true\n",
        with(POOL, "pool = [\"198.51.100.0/99\"]")
    );
    refused(&t, "[alg.ftps]", "alg.ftps", "no ALG `ftps`");
}

#[test]
fn a_key_of_some_algs_is_refused_under_another_naming_the_algs_it_belongs_to() {
    for (alg, key, hint) in [
        ("tftp", "loose = true", "only alg.ftp takes loose"),
        (
            "sip",
            "min_data_port = 2000",
            "only alg.ftp takes min_data_port",
        ),
        ("rtsp", "bounce = \"pass\"", "only alg.ftp takes bounce"),
        (
            "rtsp",
            "deny_status = 403",
            "only alg.sip takes deny_status",
        ),
        ("sip", "allow = [\"LIST\"]", "only alg.ftp takes allow"),
        (
            "ftp",
            "max_message_size = 4096",
            "only alg.sip takes max_message_size",
        ),
        (
            "tftp",
            "deny_methods = [\"X\"]",
            "only alg.sip and alg.rtsp take deny_methods",
        ),
        (
            "tftp",
            "on_deny = \"drop\"",
            "only alg.ftp, alg.sip and alg.rtsp take on_deny",
        ),
    ] {
        let t = plus(&format!("[alg.{alg}]\n{key}"));
        let k = key.split(' ').next().unwrap();
        refused(&t, key, &format!("alg.{alg}.{k}"), hint);
    }
}

#[test]
fn min_media_port_is_for_sip_and_rtsp_and_never_zero() {
    let t = plus("[alg]\nftp = { min_media_port = 1024 }");
    refused(
        &t,
        "ftp",
        "alg.ftp.min_media_port",
        "only alg.sip and alg.rtsp take min_media_port",
    );
    let t = plus("[alg]\nsip = { enabled = true, min_media_port = 0 }");
    refused(&t, "sip", "alg.sip.min_media_port", "1 to 65535");
    let t = plus("[alg]\nrtsp = { min_media_port = 0 }");
    refused(&t, "rtsp", "alg.rtsp.min_media_port", "1 to 65535");
    let c = cgnat_config::Config::parse(&plus("[alg]\nsip = { min_media_port = 2000 }"), "t.toml")
        .unwrap();
    assert_eq!(
        (c.alg["sip"].min_media_port, c.alg["rtsp"].min_media_port),
        (2000, 1024)
    );
}

#[test]
fn metrics_listen_is_a_socket_address() {
    let t = plus("[metrics]\nlisten = \"localhost\"");
    refused(
        &t,
        "localhost",
        "metrics.listen",
        "not an address and port; e.g. \"127.0.0.1:9469\", or \"off\"",
    );
}

#[test]
fn api_listen_is_a_socket_address() {
    let t = plus("[api]\nlisten = \"127.0.0.1\"");
    refused(&t, "listen", "api.listen", "address and port");
}

#[test]
fn a_control_surface_beyond_loopback_needs_a_token() {
    for table in ["api", "metrics"] {
        let t = plus(&format!("[{table}]\nlisten = \"0.0.0.0:9999\""));
        refused(
            &t,
            "0.0.0.0:9999",
            &format!("{table}.listen"),
            &format!("set {table}.token"),
        );
        let t = plus(&format!("[{table}]\nlisten = \"192.0.2.7:9999\""));
        refused(&t, "192.0.2.7", &format!("{table}.listen"), "other hosts");
        let t = plus(&format!(
            "[{table}]\nlisten = \"0.0.0.0:9999\"\ntoken = \"short\""
        ));
        refused(&t, "short", &format!("{table}.token"), "at least 16");
        let t = plus(&format!(
            "[{table}]\nlisten = \"0.0.0.0:9999\"\ntoken = \"has a space in it ok\""
        ));
        refused(&t, "space", &format!("{table}.token"), "without spaces");
        let good = plus(&format!(
            "[{table}]\nlisten = \"0.0.0.0:9999\"\ntoken = \"0123456789abcdef\""
        ));
        let c = Config::parse(&good, "t.toml").unwrap();
        let token = if table == "api" {
            c.api.token.clone()
        } else {
            c.metrics.token.clone()
        };
        assert_eq!(token.as_deref(), Some("0123456789abcdef"));
        // Loopback needs none.
        Config::parse(
            &plus(&format!("[{table}]\nlisten = \"127.0.0.1:9999\"")),
            "t.toml",
        )
        .unwrap();
    }
}

#[test]
fn ipfix_collector_is_a_socket_address() {
    let t = plus("[logging]\nipfix = { collector = \"collector\" }");
    refused(
        &t,
        "ipfix",
        "logging.ipfix.collector",
        "e.g. \"127.0.0.1:4739\"",
    );
}

#[test]
fn ipfix_threshold_is_a_percentage() {
    let t = plus("[logging.ipfix]\ncollector = \"127.0.0.1:4739\"\nthreshold_percent = 101");
    refused(
        &t,
        "101",
        "logging.ipfix.threshold_percent",
        "0 (off) to 100",
    );
}

#[test]
fn ipfix_template_refresh_is_bounded() {
    let t = plus("[logging.ipfix]\ncollector = \"127.0.0.1:4739\"\ntemplate_refresh_secs = 0");
    refused(
        &t,
        "template_refresh_secs",
        "logging.ipfix.template_refresh_secs",
        "1 to 3600",
    );
}

#[test]
fn syslog_server_is_a_socket_address() {
    let t = plus("[logging]\nsyslog = { server = \"loghost\" }");
    refused(&t, "syslog", "logging.syslog.server", "127.0.0.1:514");
}

// ---- the file ------------------------------------------------------------------------

#[test]
fn error_display_is_file_line_key_message() {
    let e = ConfigError {
        file: "a.toml".into(),
        line: 7,
        key: "nat.port_range".into(),
        message: "bad".into(),
    };
    assert_eq!(e.to_string(), "a.toml:7: key `nat.port_range`: bad");
    let _: &dyn std::error::Error = &e;
}

#[test]
fn load_names_the_file() {
    let dir = std::env::temp_dir().join(format!("cgnat-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, with("[nat]", "[nat]\nblock_size = 0")).unwrap();
    let e = load(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(e.file, path.display().to_string());
    assert_eq!((e.line, e.key.as_str()), (19, "nat.block_size"), "{e}");
}

#[test]
fn unreadable_file_is_an_error_not_a_panic() {
    let e = load(Path::new("/nonexistent/cgnat.toml")).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(e.message.contains("cannot read"), "{e}");
}

#[test]
fn neighbour_limits_are_bounded() {
    let dp = |lines: &str| {
        with(
            "worker_lcores = [1]",
            &format!("worker_lcores = [1]\n{lines}"),
        )
    };
    let t = dp("arp_per_source = 0");
    refused(
        &t,
        "arp_per_source",
        "dataplane.arp_per_source",
        "1 to 100000",
    );
    let t = dp("unresolved_queue_total = 0");
    refused(
        &t,
        "unresolved_queue_total",
        "dataplane.unresolved_queue_total",
        "1 to 4096",
    );
    let t = dp("unresolved_queue = 9\nunresolved_queue_total = 8");
    refused(
        &t,
        "unresolved_queue =",
        "dataplane.unresolved_queue",
        "at most unresolved_queue_total (8)",
    );
    let t = dp("unresolved_secs = 61");
    refused(
        &t,
        "unresolved_secs",
        "dataplane.unresolved_secs",
        "1 to 60",
    );
    let c = Config::parse(&dp("unresolved_queue = 0"), "t.toml").unwrap();
    assert_eq!(
        (
            c.dataplane.unresolved_queue,
            c.dataplane.unresolved_queue_total,
            c.dataplane.unresolved_secs,
            c.dataplane.arp_per_source
        ),
        (0, 64, 3, 16)
    );
}

#[test]
fn inbound_session_budget_is_within_the_session_quota() {
    let t = nat("max_inbound_sessions_per_subscriber = 0");
    refused(
        &t,
        "max_inbound",
        "nat.max_inbound_sessions_per_subscriber",
        "from 1 to max_sessions_per_subscriber (8000)",
    );
    let t = nat("max_sessions_per_subscriber = 100\nmax_inbound_sessions_per_subscriber = 101");
    refused(
        &t,
        "max_inbound",
        "nat.max_inbound_sessions_per_subscriber",
        "from 1 to max_sessions_per_subscriber (100)",
    );
    let c = Config::parse(&nat("max_inbound_sessions_per_subscriber = 50"), "t.toml").unwrap();
    assert_eq!(c.nat.max_inbound_sessions_per_subscriber, 50);
    let c = Config::parse(BASE, "t.toml").unwrap();
    assert_eq!(c.nat.max_inbound_sessions_per_subscriber, 1000, "an eighth");
    let c = Config::parse(&nat("max_sessions_per_subscriber = 100"), "t.toml").unwrap();
    assert_eq!(c.nat.max_inbound_sessions_per_subscriber, 12, "an eighth");
}

#[test]
fn ip_options_and_allowed_destinations_are_checked() {
    let t = nat("ip_options = \"keep\"");
    refused(&t, "ip_options", "nat.ip_options", "`strip` or `drop`");
    let t = nat("allow_destinations = [\"10.0.0.1/8\"]");
    refused(
        &t,
        "allow_destinations",
        "nat.allow_destinations[0]",
        "host bits",
    );
    let c = Config::parse(
        &nat("ip_options = \"drop\"\nallow_destinations = [\"10.0.0.0/8\"]"),
        "t.toml",
    )
    .unwrap();
    assert_eq!(c.nat.ip_options, cgnat_config::IpOptions::Drop);
    assert_eq!(c.nat.allow_destinations.len(), 1);
    assert_eq!(
        Config::parse(BASE, "t.toml").unwrap().nat.ip_options,
        cgnat_config::IpOptions::Strip
    );
}

// ---- VLAN sub-interfaces -----------------------------------------------------------

const INSIDE_ADDR: &str = "ipv4 = \"100.64.0.1/10\"";

/// BASE whose inside port has, in place of its address, the VLANs `vlans` (the
/// lines of an inline array's items).
fn vlans(items: &str) -> String {
    with(INSIDE_ADDR, &format!("vlans = [\n{items}\n]"))
        .replace("[nat]\n", "[nat]\ninside = [\"100.64.0.0/10\"]\n")
}

#[test]
fn vlans_parse_and_resolve_back() {
    let t = vlans(
        "  { id = 100, ipv4 = \"100.64.100.1/24\", inside = [\"100.65.0.0/16\"] },\n  \
         { qinq = [10, 300], ipv4 = \"100.64.30.1/24\", gateway = \"100.64.30.254\" },",
    );
    let c = Config::parse(&t, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let p = c.port(Role::Inside).unwrap();
    assert!(!p.untagged);
    assert_eq!(p.vlans.len(), 2);
    assert_eq!(p.vlans[0].tags, [100]);
    assert_eq!(p.vlans[1].tags, [10, 300]);
    assert_eq!(p.vlans[1].label(), "10.300");
    assert_eq!(p.vlans[0].inside[0].to_string(), "100.65.0.0/16");
    let again = Config::parse(&c.resolved_toml(), "t.toml").unwrap();
    assert_eq!(c, again);
    // Untagged too, as a table array.
    let t = plus("[[ports.vlans]]\nid = 7\nipv4 = \"198.18.0.1/24\"");
    let c = Config::parse(&t, "t.toml").unwrap_or_else(|e| panic!("{e}"));
    let p = c.port(Role::Outside).unwrap();
    assert!(p.untagged);
    assert_eq!(p.vlans[0].tags, [7]);
}

#[test]
fn vlan_ids_are_checked() {
    let t = vlans("  { id = 4095, ipv4 = \"100.64.100.1/24\" },");
    refused(&t, "4095", "ports[0].vlans[0].id", "1 to 4094");
    let t = vlans("  { qinq = [0, 5], ipv4 = \"100.64.100.1/24\" },");
    refused(&t, "[0, 5]", "ports[0].vlans[0].qinq", "1 to 4094");
    let t = vlans("  { qinq = [5], ipv4 = \"100.64.100.1/24\" },");
    refused(&t, "[5]", "ports[0].vlans[0].qinq", "[outer, inner]");
    let t = vlans("  { ipv4 = \"100.64.100.1/24\" },");
    refused(&t, "{ ipv4", "ports[0].vlans[0]", "exactly one of `id`");
    let t = vlans(
        "  { id = 100, ipv4 = \"100.64.100.1/24\" },\n  { id = 100, ipv4 = \"100.64.101.1/24\" },",
    );
    refused(
        &t,
        "100.64.101.1/24",
        "ports[0].vlans[1].id",
        "configured twice",
    );
    let t = vlans("  { id = 100, ipv4 = \"100.64.100.1/24\", vid = 3 },");
    refused(&t, "vid", "ports[0].vlans[0].vid", "`qinq`");
}

#[test]
fn vlan_addresses_and_prefixes_do_not_overlap() {
    let t = vlans(
        "  { id = 100, ipv4 = \"100.64.100.1/24\" },\n  { id = 200, ipv4 = \"100.64.100.129/25\" },",
    );
    refused(
        &t,
        "100.64.100.129/25",
        "ports[0].vlans[1].ipv4",
        "overlaps VLAN 100",
    );
    let t = vlans(
        "  { id = 100, ipv4 = \"100.64.100.1/24\", inside = [\"100.65.0.0/16\"] },\n  \
         { id = 200, ipv4 = \"100.64.200.1/24\", inside = [\"100.65.3.0/24\"] },",
    );
    refused(
        &t,
        "100.65.3.0/24",
        "ports[0].vlans[1].inside[0]",
        "overlaps 100.65.0.0/16",
    );
    let t = vlans("  { id = 100, ipv4 = \"100.64.100.1/24\", inside = [\"10.0.0.0/8\"] },");
    refused(
        &t,
        "10.0.0.0/8",
        "ports[0].vlans[0].inside[0]",
        "not within nat.inside",
    );
    let t = vlans("  { id = 100, ipv4 = \"100.64.100.1/24\", gateway = \"100.64.101.1\" },");
    refused(
        &t,
        "100.64.101.1",
        "ports[0].vlans[0].gateway",
        "another address",
    );
    let t = with(
        INSIDE_ADDR,
        "ipv4 = \"100.64.0.1/10\"\nvlans = [{ id = 5, ipv4 = \"100.64.5.1/24\" }]",
    );
    refused(&t, "100.64.0.1/10", "ports[0].ipv4", "overlaps VLAN 5");
    let t = plus("[[ports.vlans]]\nid = 7\nipv4 = \"198.18.0.1/24\"\ninside = [\"100.64.0.0/16\"]");
    refused(
        &t,
        "inside = [\"100.64",
        "ports[1].vlans[0].inside",
        "outside's take none",
    );
    // No address at all: the port's table is named.
    let t = with(INSIDE_ADDR, "");
    refused_at(&t, 5, "ports[0].ipv4", "VLAN sub-interfaces");
}

#[test]
fn the_full_example_has_inside_vlans() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let full = load(&dir.join("full.toml")).unwrap();
    let p = full.port(Role::Inside).unwrap();
    assert!(p.untagged);
    let tags: Vec<_> = p.vlans.iter().map(|v| v.tags.clone()).collect();
    assert_eq!(tags, [vec![100], vec![20, 200]]);
}

// ---- [pcp] ---------------------------------------------------------------------

#[test]
fn pcp_is_off_without_its_table_and_on_with_it() {
    let off = Config::parse(BASE, "t.toml").unwrap();
    assert!(!off.pcp.enabled);
    let on = Config::parse(
        &plus("[pcp]\nmax_lifetime = 7200\nallow_third_party = true"),
        "t.toml",
    )
    .unwrap();
    assert!(on.pcp.enabled && on.pcp.allow_third_party && on.pcp.nat_pmp);
    assert_eq!(
        (on.pcp.listen, on.pcp.min_lifetime, on.pcp.max_lifetime),
        (5351, 120, 7200)
    );
    let again = Config::parse(&on.resolved_toml(), "t.toml").unwrap();
    assert_eq!(on, again);
}

#[test]
fn pcp_values_are_checked() {
    let t = plus("[pcp]\nlisten = 0");
    refused(&t, "listen = 0", "pcp.listen", "from 1 to 65535");
    let t = plus("[pcp]\nmin_lifetime = 0");
    refused(&t, "min_lifetime", "pcp.min_lifetime", "at least 1 second");
    let t = plus("[pcp]\nmin_lifetime = 600\nmax_lifetime = 300");
    refused(
        &t,
        "max_lifetime",
        "pcp.max_lifetime",
        "from min_lifetime (600)",
    );
    let t = plus("[pcp]\nmax_mappings_per_subscriber = 0");
    refused(
        &t,
        "max_mappings_per_subscriber",
        "pcp.max_mappings_per_subscriber",
        "from 1 to 65535",
    );
    let t = plus("[pcp]\nthird_party = true");
    refused(&t, "third_party", "pcp.third_party", "allow_third_party");
}

// ---- NAT64 ----------------------------------------------------------------------

/// BASE with an IPv6 address on the inside port and `table` as the [nat64] table.
fn nat64(table: &str) -> String {
    let t = with(
        "ipv4 = \"100.64.0.1/10\"",
        "ipv4 = \"100.64.0.1/10\"\nipv6 = [\"fd00:ffff::1/64\"]",
    );
    format!("{t}\n[nat64]\n{table}\n")
}

#[test]
fn nat64_is_off_without_its_table_and_has_the_rfc_defaults_with_it() {
    let off = Config::parse(BASE, "t.toml").unwrap();
    assert_eq!(off.nat64, None);
    let on = Config::parse(&nat64(""), "t.toml").unwrap();
    let n = on.nat64.unwrap();
    assert_eq!(n.prefix.to_string(), "64:ff9b::/96");
    assert_eq!((n.subscriber_prefix_len, n.lowest_ipv6_mtu), (56, 1280));
    let inside = on.port(Role::Inside).unwrap();
    assert_eq!(inside.ipv6[0].to_string(), "fd00:ffff::1/64");
    let again = Config::parse(&on.resolved_toml(), "t.toml").unwrap();
    assert_eq!(on, again);
    // Every RFC 6052 length, and each subscriber length.
    for (p, len) in [
        ("2001:db8::/32", 56),
        ("2001:db8:100::/40", 64),
        ("2001:db8:122::/48", 128),
        ("2001:db8:122:300::/56", 56),
        ("2001:db8:122:344::/64", 56),
        ("2001:db8:122:344::/96", 56),
    ] {
        let t = nat64(&format!(
            "prefix = \"{p}\"\nsubscriber_prefix_len = {len}\nlowest_ipv6_mtu = 1500"
        ));
        let c = Config::parse(&t, "t.toml").unwrap();
        let n = c.nat64.unwrap();
        assert_eq!(n.prefix.to_string(), p);
        assert_eq!((n.subscriber_prefix_len, n.lowest_ipv6_mtu), (len, 1500));
        assert_eq!(Config::parse(&c.resolved_toml(), "t.toml").unwrap(), c);
    }
}

#[test]
fn nat64_prefix_is_checked_against_rfc_6052() {
    let t = nat64("prefix = \"2001:db8::/33\"");
    refused(&t, "prefix =", "nat64.prefix", "32, 40, 48, 56, 64 or 96");
    let t = nat64("prefix = \"2001:db8::1/96\"");
    refused(&t, "prefix =", "nat64.prefix", "host bits set");
    let t = nat64("prefix = \"2001:db8:0:0:100::/96\"");
    refused(&t, "prefix =", "nat64.prefix", "u octet");
    let t = nat64("prefix = \"64:ff9b::\"");
    refused(&t, "prefix =", "nat64.prefix", "no prefix length");
    let t = nat64("prefix = \"198.51.100.0/24\"");
    refused(&t, "prefix =", "nat64.prefix", "not an IPv6 address");
    let t = nat64("prefix = \"fd00:ffff::/48\"");
    refused(
        &t,
        "ipv6 = [",
        "ports[0].ipv6[0]",
        "overlaps the NAT64 prefix fd00:ffff::/48",
    );
}

#[test]
fn nat64_subscriber_length_mtu_and_allocation_are_checked() {
    let t = nat64("subscriber_prefix_len = 48");
    refused(
        &t,
        "subscriber_prefix_len",
        "nat64.subscriber_prefix_len",
        "56 (the default), 64 or 128",
    );
    let t = nat64("lowest_ipv6_mtu = 1279");
    refused(&t, "lowest_ipv6_mtu", "nat64.lowest_ipv6_mtu", "from 1280");
    let t = nat64("lowest_ipv6_mtu = 1501");
    refused(
        &t,
        "lowest_ipv6_mtu",
        "nat64.lowest_ipv6_mtu",
        "the inside port's MTU (1500)",
    );
    let t = nat64("prefix_len = 56");
    refused(
        &t,
        "prefix_len",
        "nat64.prefix_len",
        "subscriber_prefix_len",
    );
    let t = nat64("").replace(POOL, &format!("{POOL}\nallocation = \"deterministic\""));
    refused(&t, "[nat64]", "nat64", "port-block");
}

#[test]
fn nat64_needs_an_ipv6_address_on_the_inside_port() {
    let t = plus("[nat64]");
    refused(&t, "[nat64]", "nat64", "IPv6 address on the inside port");
}

#[test]
fn port_ipv6_addresses_are_checked() {
    let inside = "ipv4 = \"100.64.0.1/10\"";
    let bad = |v: &str| with(inside, &format!("{inside}\nipv6 = [{v}]"));
    let cases = [
        ("\"2001:db8::1\"", "no prefix length"),
        ("\"2001:db8::/64\"", "not an address in its subnet"),
        ("\"2001:db8::1/128\"", "not an address in its subnet"),
        ("\"fe80::1/64\"", "link-local"),
        ("\"ff02::1/64\"", "multicast"),
        ("\"::1/64\"", "loopback"),
        ("\"::ffff:10.0.0.1/120\"", "IPv4-mapped"),
        (
            "\"2001:db8::1/64\", \"2001:db8::2/64\"",
            "overlaps 2001:db8::1/64",
        ),
    ];
    for (v, hint) in cases {
        let t = bad(v);
        let key = if v.contains(", ") {
            "ports[0].ipv6[1]"
        } else {
            "ports[0].ipv6[0]"
        };
        refused(&t, "ipv6 = [", key, hint);
    }
    let outside = "ipv4 = \"203.0.113.1/24\"";
    let t = with(outside, &format!("{outside}\nipv6 = [\"2001:db8::1/64\"]"));
    refused(&t, "ipv6 = [", "ports[1].ipv6[0]", "inside port only");
    let t = with(
        inside,
        &format!(
            "{inside}\nipv6 = [\"2001:db8::1/64\"]\nvlans = [{{ id = 7, ipv4 = \"10.7.0.1/24\" }}]"
        ),
    );
    refused(&t, "ipv6 = [", "ports[0].ipv6[0]", "not served yet");
    // Several addresses on the inside port are fine.
    let t = bad("\"2001:db8::1/64\", \"fd00:1::1/64\"");
    let c = Config::parse(&t, "t.toml").unwrap();
    assert_eq!(c.port(Role::Inside).unwrap().ipv6.len(), 2);
}

#[test]
fn the_inside_ports_ipv6_gateway_is_checked() {
    let inside = "ipv4 = \"100.64.0.1/10\"";
    let v6 = "ipv6 = [\"2001:db8:ffff::1/64\"]";
    let gw = |g: &str| with(inside, &format!("{inside}\n{v6}\ngateway6 = \"{g}\""));
    for (g, hint) in [
        ("2001:db8::zz", "not an IPv6 address"),
        ("ff02::2", "not a unicast address"),
        ("::", "not a unicast address"),
        ("2001:db8:ffff::1", "the port's own address"),
        (
            "2001:db8:1::1",
            "not on the port's link (2001:db8:ffff::/64)",
        ),
    ] {
        refused(&gw(g), "gateway6", "ports[0].gateway6", hint);
    }
    let t = with(inside, &format!("{inside}\ngateway6 = \"fe80::1\""));
    refused(
        &t,
        "gateway6",
        "ports[0].gateway6",
        "needs the port's own IPv6 address",
    );
    // A link-local router, or one in the port's prefix.
    for g in ["fe80::1", "2001:db8:ffff::fe"] {
        let c = Config::parse(&gw(g), "t.toml").unwrap();
        let p = c.port(Role::Inside).unwrap();
        assert_eq!(p.gateway6, Some(g.parse().unwrap()));
    }
    let c = Config::parse(BASE, "t.toml").unwrap();
    assert_eq!(c.port(Role::Inside).unwrap().gateway6, None);
}

// ---- [ha] ----------------------------------------------------------------------

/// A key file of `len` bytes in the test's temp directory; its path.
fn ha_key(name: &str, len: usize) -> String {
    let dir = std::env::temp_dir().join(format!("cgnat-ha-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, "k".repeat(len) + "\n").unwrap();
    p.display().to_string()
}

fn ha(lines: &str) -> String {
    plus(&format!("[ha]\n{lines}"))
}

#[test]
fn ha_is_off_without_its_table_and_round_trips_with_it() {
    assert_eq!(Config::parse(BASE, "t.toml").unwrap().ha, None);
    let key = ha_key("good", 32);
    let c = Config::parse(
        &ha(&format!(
            "role = \"standby\"\nlisten = \"10.255.0.2:7946\"\npeer = \"10.255.0.1:7946\"\nkey_file = \"{key}\""
        )),
        "t.toml",
    )
    .unwrap();
    let h = c.ha.clone().unwrap();
    assert_eq!(h.role, cgnat_config::HaRole::Standby);
    assert_eq!(
        (h.listen.to_string(), h.peer.to_string(), h.rate),
        ("10.255.0.2:7946".into(), "10.255.0.1:7946".into(), 2000)
    );
    assert_eq!(Config::parse(&c.resolved_toml(), "t.toml").unwrap(), c);
}

#[test]
fn ha_values_are_checked() {
    let key = ha_key("ok", 20);
    let good = format!(
        "role = \"active\"\nlisten = \"10.255.0.1:7946\"\npeer = \"10.255.0.2:7946\"\nkey_file = \"{key}\""
    );
    let t = ha(&good.replace("\"active\"", "\"primary\""));
    refused(
        &t,
        "role = \"primary\"",
        "ha.role",
        "expected `active` or `standby`",
    );
    let t = ha(&good.replace("10.255.0.1:7946", "10.255.0.1"));
    refused(&t, "listen =", "ha.listen", "not an IPv4 address and port");
    let t = ha(&good.replace("10.255.0.2:7946", "10.255.0.1:7946"));
    refused(&t, "peer =", "ha.peer", "not this one's");
    let t = ha(&good.replace("10.255.0.2:7946", "0.0.0.0:7946"));
    refused(&t, "peer =", "ha.peer", "a specific address");
    let t = ha(&good.replace(&key, "/nonexistent/ha.key"));
    refused(&t, "key_file =", "ha.key_file", "cannot read");
    let short = ha_key("short", 8);
    let t = ha(&good.replace(&key, &short));
    refused(&t, "key_file =", "ha.key_file", "at least 16");
    let t = ha(&format!("{good}\nrate = 0"));
    refused(&t, "rate = 0", "ha.rate", "from 1 to 100000");
    let t = ha(&good.replace("role = \"active\"\n", ""));
    refused(
        &t,
        "[ha]",
        "ha.role",
        "needs role, listen, peer and key_file",
    );
    // Any number of workers.
    let t = ha(&good).replace("worker_lcores = [1]", "worker_lcores = [1, 2]");
    assert!(Config::parse(&t, "t.toml").is_ok());
    let t = ha(&format!("{good}\nelection = true"));
    refused(&t, "election", "ha.election", "rate");
}

// ---- nat.protocols, nat.timeouts.other ---------------------------------------------

#[test]
fn other_protocols_default_to_gre_esp_ah_and_follow_nat_protocols() {
    let c = Config::parse(BASE, "t.toml").unwrap();
    assert_eq!(c.nat.other_protocols, vec![47, 50, 51]);
    assert_eq!(c.nat.timeouts.other, 300);
    let t = nat("timeouts = { other = 90 }\n[nat.protocols]\nesp = \"drop\"\nsctp = \"allow\"\n99 = \"allow\"");
    let c = Config::parse(&t, "t.toml").unwrap();
    assert_eq!(c.nat.other_protocols, vec![47, 51, 99, 132]);
    assert_eq!(c.nat.timeouts.other, 90);
    // The resolved file writes what differs from the defaults, and reads back.
    let again = Config::parse(&c.resolved_toml(), "r.toml").unwrap();
    assert_eq!(again.nat.other_protocols, c.nat.other_protocols);
}

#[test]
fn nat_protocols_refuses_unknown_names_and_the_protocols_with_their_own_handling() {
    let t = nat("[nat.protocols]\ngree = \"allow\"");
    refused(&t, "gree", "nat.protocols.gree", "gre, esp, ah, sctp");
    let t = nat("[nat.protocols]\n256 = \"allow\"");
    refused(&t, "256", "nat.protocols.256", "a number from 0 to 255");
    for p in ["tcp", "udp", "icmp", "6", "17", "1"] {
        let t = nat(&format!("[nat.protocols]\n{p} = \"drop\""));
        refused(
            &t,
            &format!("{p} = "),
            &format!("nat.protocols.{p}"),
            "has its own translation",
        );
    }
    let t = nat("[nat.protocols]\ngre = \"maybe\"");
    refused(&t, "maybe", "nat.protocols.gre", "`allow`");
}

#[test]
fn nat_timeouts_other_has_a_floor() {
    let t = nat("timeouts = { other = 59 }");
    refused(&t, "timeouts", "nat.timeouts.other", "60 s minimum");
}
