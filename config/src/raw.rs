//! The file as written (serde), its defaults, and its resolution into [`Config`] with
//! every rule checked. Errors carry the key's line, found in a span-keeping parse.

use crate::locate::{self, line_of};
use crate::*;
use serde::{Deserialize, Serialize};
use std::ops::Range;

/// One step of a key path.
#[derive(Clone, Debug)]
pub(crate) enum Seg {
    Key(&'static str),
    Idx(usize),
    /// A key the file chose (a table's entry, e.g. `nat.protocols.gre`).
    Name(String),
}

fn d_eal() -> Vec<String> {
    ["--no-huge", "-m", "1024", "--no-pci"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}
fn d_workers() -> Vec<u32> {
    vec![1]
}
fn d_mbufs() -> u32 {
    16383
}
fn d_mbuf_size() -> u16 {
    2176
}
fn d_desc() -> u16 {
    1024
}
fn d_mtu() -> u16 {
    1500
}
fn d_inside() -> Vec<String> {
    [
        "10.0.0.0/8",
        "100.64.0.0/10",
        "172.16.0.0/12",
        "192.168.0.0/16",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
fn d_ei() -> BehaviorName {
    BehaviorName::EndpointIndependent
}
fn d_range() -> Vec<u16> {
    vec![1024, 65535]
}
fn d_block() -> u16 {
    512
}
fn d_blocks() -> u16 {
    8
}
fn d_sps() -> u32 {
    8000
}
fn d_max_sessions() -> u32 {
    1 << 20
}
fn d_max_alg_connections() -> u32 {
    crate::DEFAULT_ALG_CONNECTIONS
}
fn d_true() -> bool {
    true
}
fn d_quarantine() -> u32 {
    120
}
fn d_listen() -> String {
    "127.0.0.1:9469".into()
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    #[serde(default)]
    dataplane: FileDataplane,
    #[serde(default)]
    ports: Vec<FilePort>,
    nat: Option<FileNat>,
    #[serde(default)]
    alg: FileAlg,
    #[serde(default)]
    metrics: FileMetrics,
    #[serde(default)]
    api: FileApi,
    #[serde(default)]
    logging: FileLogging,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pcp: Option<FilePcp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nat64: Option<FileNat64>,
    ha: Option<FileHa>,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum HaRoleName {
    Active,
    Standby,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNat64 {
    #[serde(default = "d_nat64_prefix")]
    prefix: String,
    #[serde(default = "d_nat64_subscriber")]
    subscriber_prefix_len: u8,
    #[serde(default = "d_nat64_mtu")]
    lowest_ipv6_mtu: u16,
}

fn d_nat64_prefix() -> String {
    crate::Nat64::default().prefix.to_string()
}
fn d_nat64_subscriber() -> u8 {
    crate::Nat64::default().subscriber_prefix_len
}
fn d_nat64_mtu() -> u16 {
    crate::Nat64::default().lowest_ipv6_mtu
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHa {
    role: HaRoleName,
    listen: String,
    peer: String,
    key_file: String,
    #[serde(default = "d_ha_rate")]
    rate: u32,
}

fn d_ha_rate() -> u32 {
    crate::HA_DEFAULT_RATE
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePcp {
    #[serde(default = "d_true")]
    enabled: bool,
    #[serde(default = "d_pcp_listen")]
    listen: u16,
    #[serde(default = "d_pcp_min")]
    min_lifetime: u32,
    #[serde(default = "d_pcp_max")]
    max_lifetime: u32,
    #[serde(default = "d_pcp_mappings")]
    max_mappings_per_subscriber: u32,
    #[serde(default)]
    allow_third_party: bool,
    #[serde(default = "d_true")]
    nat_pmp: bool,
}

fn d_pcp_listen() -> u16 {
    crate::Pcp::default().listen
}
fn d_pcp_min() -> u32 {
    crate::Pcp::default().min_lifetime
}
fn d_pcp_max() -> u32 {
    crate::Pcp::default().max_lifetime
}
fn d_pcp_mappings() -> u32 {
    crate::Pcp::default().max_mappings_per_subscriber
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDataplane {
    #[serde(default = "d_eal")]
    eal_args: Vec<String>,
    #[serde(default)]
    control_lcore: u32,
    #[serde(default = "d_workers")]
    worker_lcores: Vec<u32>,
    #[serde(default)]
    busy_poll: bool,
    #[serde(default = "d_mbufs")]
    mbufs: u32,
    #[serde(default = "d_mbuf_size")]
    mbuf_size: u16,
    #[serde(default = "d_desc")]
    rx_desc: u16,
    #[serde(default = "d_desc")]
    tx_desc: u16,
    #[serde(default = "d_arp_per_source")]
    arp_per_source: u32,
    #[serde(default = "d_unresolved_queue")]
    unresolved_queue: u32,
    #[serde(default = "d_unresolved_queue_total")]
    unresolved_queue_total: u32,
    #[serde(default = "d_unresolved_secs")]
    unresolved_secs: u32,
}

fn d_arp_per_source() -> u32 {
    16
}
fn d_unresolved_queue() -> u32 {
    3
}
fn d_unresolved_queue_total() -> u32 {
    64
}
fn d_unresolved_secs() -> u32 {
    3
}

impl Default for FileDataplane {
    fn default() -> Self {
        FileDataplane {
            eal_args: d_eal(),
            control_lcore: 0,
            worker_lcores: d_workers(),
            busy_poll: false,
            mbufs: d_mbufs(),
            mbuf_size: d_mbuf_size(),
            rx_desc: d_desc(),
            tx_desc: d_desc(),
            arp_per_source: d_arp_per_source(),
            unresolved_queue: d_unresolved_queue(),
            unresolved_queue_total: d_unresolved_queue_total(),
            unresolved_secs: d_unresolved_secs(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum RoleName {
    Inside,
    Outside,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePort {
    name: String,
    role: RoleName,
    device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ipv4: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway_mac: Option<String>,
    #[serde(default = "d_mtu")]
    mtu: u16,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ipv6: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway6: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    vlans: Vec<FileVlan>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileVlan {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    qinq: Option<Vec<u16>>,
    ipv4: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    inside: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum BehaviorName {
    EndpointIndependent,
    AddressDependent,
    AddressAndPortDependent,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum PoolingName {
    Paired,
    Arbitrary,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum AllocationName {
    PortBlock,
    Dynamic,
    Deterministic,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum InboundSynName {
    Hold,
    Drop,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum IpOptionsName {
    Strip,
    Drop,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum ProtoAction {
    Allow,
    Drop,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum ProtoName {
    Tcp,
    Udp,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTimeouts {
    #[serde(default = "d_udp")]
    udp: u32,
    #[serde(default = "d_est")]
    tcp_established: u32,
    #[serde(default = "d_trans")]
    tcp_transitory: u32,
    #[serde(default = "d_icmp")]
    icmp: u32,
    #[serde(default = "d_syn")]
    tcp_syn_inbound: u32,
    #[serde(default = "d_other")]
    other: u32,
}
fn d_udp() -> u32 {
    300
}
fn d_est() -> u32 {
    7440
}
fn d_trans() -> u32 {
    240
}
fn d_icmp() -> u32 {
    60
}
fn d_syn() -> u32 {
    6
}
// Address-only sessions (GRE, ESP, ...) carry datagrams like UDP's, and their
// keepalives (PPTP's echo every 60 s, IKE's) are spaced like UDP's: UDP's default.
fn d_other() -> u32 {
    300
}
impl Default for FileTimeouts {
    fn default() -> Self {
        FileTimeouts {
            udp: d_udp(),
            tcp_established: d_est(),
            tcp_transitory: d_trans(),
            icmp: d_icmp(),
            tcp_syn_inbound: d_syn(),
            other: d_other(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStatic {
    protocol: ProtoName,
    inside: String,
    outside: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNat {
    #[serde(default = "d_inside")]
    inside: Vec<String>,
    // Required, but checked in resolve() to say what it is for.
    #[serde(default)]
    pool: Option<Vec<String>>,
    #[serde(default = "d_ei")]
    mapping: BehaviorName,
    #[serde(default = "d_ei")]
    filtering: BehaviorName,
    #[serde(default = "d_pooling")]
    pooling: PoolingName,
    #[serde(default = "d_allocation")]
    allocation: AllocationName,
    #[serde(default = "d_range")]
    // A Vec, not [u16; 2]: serde would take the first two of a longer array.
    port_range: Vec<u16>,
    #[serde(default = "d_block")]
    block_size: u16,
    #[serde(default = "d_blocks")]
    max_blocks_per_subscriber: u16,
    #[serde(default = "d_sps")]
    max_sessions_per_subscriber: u32,
    // Default: an eighth of max_sessions_per_subscriber (resolve()).
    #[serde(default)]
    max_inbound_sessions_per_subscriber: Option<u32>,
    #[serde(default = "d_max_sessions")]
    max_sessions: u32,
    // Default: an eighth of max_sessions (resolve()).
    #[serde(default)]
    max_mappings: Option<u32>,
    // Default: what the pool and the allocation can serve (resolve()).
    #[serde(default)]
    max_subscribers: Option<u32>,
    #[serde(default = "d_max_alg_connections")]
    max_alg_connections: u32,
    #[serde(default = "d_true")]
    port_parity: bool,
    #[serde(default)]
    port_preservation: bool,
    #[serde(default = "d_quarantine")]
    quarantine_secs: u32,
    #[serde(default = "d_true")]
    hairpinning: bool,
    #[serde(default)]
    exclude_destinations: Vec<String>,
    #[serde(default)]
    allow_destinations: Vec<String>,
    #[serde(default = "d_ip_options")]
    ip_options: IpOptionsName,
    #[serde(default)]
    identity: Vec<String>,
    #[serde(default)]
    timeouts: FileTimeouts,
    #[serde(default = "d_true")]
    icmp_on_limit: bool,
    #[serde(default = "d_inbound_syn")]
    inbound_syn: InboundSynName,
    #[serde(default, rename = "static")]
    statics: Vec<FileStatic>,
    // Protocol name or number -> allow | drop; over the defaults (OTHER_DEFAULT_ALLOW).
    #[serde(default)]
    protocols: std::collections::BTreeMap<String, ProtoAction>,
}
fn d_pooling() -> PoolingName {
    PoolingName::Paired
}
fn d_allocation() -> AllocationName {
    AllocationName::PortBlock
}
fn d_ip_options() -> IpOptionsName {
    IpOptionsName::Strip
}
fn d_inbound_syn() -> InboundSynName {
    InboundSynName::Hold
}

#[derive(Serialize, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
struct FileAlgProto {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    ports: Option<Vec<u16>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_data_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    loose: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_media_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deny: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allow: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bounce: Option<RefusePass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    low_port: Option<RefusePass>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on_deny: Option<OnDenyName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deny_methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_message_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deny_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    only: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    except: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum RefusePass {
    Refuse,
    Pass,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum OnDenyName {
    Reply,
    Drop,
}

impl FileAlgProto {
    /// Each key of the section with whether the file sets it.
    fn keys(&self) -> [(&'static str, bool); 15] {
        [
            ("enabled", self.enabled.is_some()),
            ("ports", self.ports.is_some()),
            ("min_data_port", self.min_data_port.is_some()),
            ("loose", self.loose.is_some()),
            ("min_media_port", self.min_media_port.is_some()),
            ("deny", self.deny.is_some()),
            ("allow", self.allow.is_some()),
            ("bounce", self.bounce.is_some()),
            ("low_port", self.low_port.is_some()),
            ("on_deny", self.on_deny.is_some()),
            ("deny_methods", self.deny_methods.is_some()),
            ("max_message_size", self.max_message_size.is_some()),
            ("deny_status", self.deny_status.is_some()),
            ("only", self.only.is_some()),
            ("except", self.except.is_some()),
        ]
    }
}

/// The keys of `[alg.<name>]` every ALG of the registry takes; the others, each ALG
/// says in its registry entry ([`cgnat_alg::Plugin::keys`]).
const ALG_COMMON_KEYS: &[&str] = &["enabled", "ports", "only", "except"];

/// Whether `[alg.<alg>]` takes `key`.
fn alg_takes(alg: &str, key: &str) -> bool {
    ALG_COMMON_KEYS.contains(&key)
        || cgnat_alg::PLUGINS
            .iter()
            .any(|p| p.name == alg && p.keys.contains(&key))
}

/// "only alg.ftp takes deny", "only alg.sip and alg.rtsp take deny_methods".
fn alg_key_misplaced(key: &str) -> String {
    let names: Vec<String> = cgnat_alg::PLUGINS
        .iter()
        .filter(|p| p.keys.contains(&key))
        .map(|p| format!("alg.{}", p.name))
        .collect();
    match names.as_slice() {
        [one] => format!("only {one} takes {key}"),
        [init @ .., last] => format!("only {} and {last} take {key}", init.join(", ")),
        [] => format!("no ALG takes {key}"),
    }
}

/// `[alg]`: a section per ALG, by its registry name; a name the registry does not
/// have is refused when the file is resolved, with the names it has.
#[derive(Deserialize, Default)]
#[serde(transparent)]
struct FileAlg(std::collections::BTreeMap<String, FileAlgProto>);

/// Written in the registry's order.
impl Serialize for FileAlg {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for p in &cgnat_alg::PLUGINS {
            if let Some(a) = self.0.get(p.name) {
                m.serialize_entry(p.name, a)?;
            }
        }
        for (name, a) in &self.0 {
            if !cgnat_alg::PLUGINS.iter().any(|p| p.name == name) {
                m.serialize_entry(name, a)?;
            }
        }
        m.end()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileMetrics {
    #[serde(default = "d_listen")]
    listen: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}
impl Default for FileMetrics {
    fn default() -> Self {
        FileMetrics {
            listen: d_listen(),
            token: None,
        }
    }
}

fn d_api() -> String {
    "127.0.0.1:9470".into()
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileApi {
    #[serde(default = "d_api")]
    listen: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}
impl Default for FileApi {
    fn default() -> Self {
        FileApi {
            listen: d_api(),
            token: None,
        }
    }
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileLogging {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ipfix: Option<FileIpfix>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    syslog: Option<FileSyslog>,
}

#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum SessionLoggingName {
    Auto,
    On,
    Off,
}

fn d_sessions() -> SessionLoggingName {
    SessionLoggingName::Auto
}
fn d_refresh() -> u32 {
    60
}
fn d_domain() -> u32 {
    1
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIpfix {
    collector: String,
    #[serde(default = "d_sessions")]
    sessions: SessionLoggingName,
    #[serde(default)]
    destinations: bool,
    #[serde(default)]
    mappings: bool,
    #[serde(default = "d_refresh")]
    template_refresh_secs: u32,
    #[serde(default = "d_domain")]
    domain_id: u32,
    #[serde(default = "d_threshold")]
    threshold_percent: u32,
}

fn d_threshold() -> u32 {
    90
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSyslog {
    server: String,
}

/// Parses the TOML and its schema (types, unknown keys, enum values).
pub(crate) fn parse(text: &str, file: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str::<FileConfig>(text).map_err(|e| {
        let message = e.message().replace('\n', " ").trim().to_string();
        let Some(r) = e.span() else {
            return ConfigError {
                file: file.to_string(),
                line: 0,
                key: String::new(),
                message,
            };
        };
        let line = line_of(text, r.start);
        // The same text through the span-keeping parser: if it parses, this is a schema
        // error and the span names a key; if not, a syntax error.
        let Ok(doc) = text.parse::<toml_edit::ImDocument<String>>() else {
            return ConfigError {
                file: file.to_string(),
                line,
                key: locate::key_near(text, r.start),
                message: format!("not valid TOML: {message}"),
            };
        };
        let mut key = locate::key_at(&doc, r.start).unwrap_or_default();
        let message = match missing_field(&message) {
            Some(field) => {
                let what = if key.is_empty() {
                    "the file"
                } else {
                    "this table"
                };
                let msg = format!(
                    "`{field}` is required in {what} and has no default{}",
                    needs(&key)
                );
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(field);
                msg
            }
            None => plain(&message, &key),
        };
        ConfigError {
            file: file.to_string(),
            line,
            key,
            message,
        }
    })
}

/// The field of serde's "missing field `x`".
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")?
        .split_once('`')
        .map(|(f, _)| f)
}

/// What a table with a required key needs, by the table's path.
fn needs(table: &str) -> &'static str {
    let base = table.split('[').next().unwrap_or("");
    match base {
        "ports" => "; each [[ports]] entry needs name, role, device and ipv4",
        "nat.static" => "; each [[nat.static]] entry needs protocol, inside and outside",
        "logging.ipfix" => "; e.g. ipfix = { collector = \"127.0.0.1:4739\" }",
        "logging.syslog" => "; e.g. syslog = { server = \"127.0.0.1:514\" }",
        "ha" => "; [ha] needs role, listen, peer and key_file",
        _ => "",
    }
}

/// The strings an enum-valued key takes, by the key's last name.
fn choices(key: &str) -> Option<&'static str> {
    if key == "ha.role" {
        return Some("\"active\" or \"standby\"");
    }
    Some(match key.rsplit('.').next()? {
        "role" => "\"inside\" or \"outside\"",
        "protocol" => "\"tcp\" or \"udp\"",
        "mapping" | "filtering" => {
            "\"endpoint-independent\", \"address-dependent\" or \"address-and-port-dependent\""
        }
        "pooling" => "\"paired\" or \"arbitrary\"",
        "allocation" => "\"port-block\", \"dynamic\" or \"deterministic\"",
        "inbound_syn" => "\"hold\" or \"drop\"",
        "ip_options" => "\"strip\" or \"drop\"",
        "sessions" => "\"auto\", \"on\" or \"off\"",
        _ => return None,
    })
}

/// serde's words for the schema's types, in the file's terms.
fn plain(message: &str, key: &str) -> String {
    // What toml says of a non-string where an enum's name belongs.
    if message == "wanted string or table" {
        if let Some(c) = choices(key) {
            return format!("expected a string: {c}");
        }
    }
    let mut m = message.to_string();
    for (from, to) in [
        ("expected u8", "expected an integer from 0 to 255"),
        ("expected u16", "expected an integer from 0 to 65535"),
        ("expected u32", "expected an integer from 0 to 4294967295"),
        ("expected a sequence", "expected an array"),
        ("expected a boolean", "expected true or false"),
    ] {
        m = m.replace(from, to);
    }
    // Internal struct names (`struct FileNat`) are tables in the file.
    while let Some(i) = m.find("struct File") {
        let tail = &m[i + "struct ".len()..];
        let len = tail
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(tail.len());
        m.replace_range(i..i + "struct ".len() + len, "a table");
    }
    m
}

/// Resolution of values and the rules across them, with key paths for errors.
struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    doc: Option<toml_edit::ImDocument<String>>,
}

impl Ctx<'_> {
    fn span(&self, path: &[Seg]) -> Option<Range<usize>> {
        let doc = self.doc.as_ref()?;
        // The deepest item on the path that has a span.
        let mut item: &toml_edit::Item = doc.as_item();
        let mut best = None;
        for seg in path {
            let next = match seg {
                Seg::Key(k) => item.get(*k),
                Seg::Idx(i) => item.get(*i),
                Seg::Name(k) => item.get(k.as_str()),
            };
            let Some(next) = next else { break };
            item = next;
            if let Some(s) = item.span() {
                best = Some(s);
            } else if let Some(t) = item.as_table() {
                if let Some(s) = t.span() {
                    best = Some(s);
                }
            }
        }
        // A key's own span when the value has none (tables).
        if best.is_none() {
            if let (Some(Seg::Key(k)), Some(doc)) = (path.first(), self.doc.as_ref()) {
                best = doc.as_table().key(k).and_then(|k| k.span());
            }
        }
        best
    }

    fn err(&self, path: &[Seg], message: impl Into<String>) -> ConfigError {
        let line = self.span(path).map_or(0, |r| line_of(self.text, r.start));
        ConfigError {
            file: self.file.to_string(),
            line,
            key: path_string(path),
            message: message.into(),
        }
    }

    fn net(&self, path: &[Seg], s: &str) -> Result<Ipv4Net, ConfigError> {
        s.parse::<Ipv4Net>().map_err(|e| {
            self.err(
                path,
                format!("{e}; write an IPv4 prefix like \"198.51.100.0/28\""),
            )
        })
    }

    fn prefix(&self, path: &[Seg], s: &str) -> Result<Ipv4Net, ConfigError> {
        let n = self.net(path, s)?;
        if !n.is_network() {
            return Err(self.err(
                path,
                format!(
                    "`{s}` has host bits set; the prefix is {}/{}",
                    n.network(),
                    n.prefix
                ),
            ));
        }
        Ok(n)
    }

    fn addr(&self, path: &[Seg], s: &str) -> Result<Ipv4Addr, ConfigError> {
        s.parse().map_err(|_| {
            self.err(
                path,
                format!("`{s}` is not an IPv4 address; write one like \"203.0.113.254\""),
            )
        })
    }

    fn sockaddr(&self, path: &[Seg], s: &str) -> Result<SocketAddrV4, ConfigError> {
        s.parse().map_err(|_| {
            self.err(
                path,
                format!("`{s}` is not an IPv4 address and port; write one like \"10.0.0.5:80\""),
            )
        })
    }
}

/// A port's or VLAN's own address in its subnet.
fn own_net(cx: &Ctx, at: &[Seg], s: &str) -> Result<Ipv4Net, ConfigError> {
    let net = cx.net(at, s)?;
    if net.prefix > 30 || net.is_network() {
        return Err(cx.err(
            at,
            format!("`{s}` must be the port's own address in its subnet, e.g. \"203.0.113.1/24\""),
        ));
    }
    Ok(net)
}

/// A gateway, which must be another address on `net`.
fn gateway_on(
    cx: &Ctx,
    at: &[Seg],
    g: Option<&str>,
    net: &Ipv4Net,
) -> Result<Option<Ipv4Addr>, ConfigError> {
    let Some(g) = g else { return Ok(None) };
    let a = cx.addr(at, g)?;
    if !net.contains(a) || a == net.addr {
        return Err(cx.err(
            at,
            format!(
                "gateway {a} must be another address on the port's subnet {}/{}",
                net.network(),
                net.prefix
            ),
        ));
    }
    Ok(Some(a))
}

/// Port `i`'s VLAN sub-interfaces: ids 1 to 4094, one of `id` and `qinq`, no tags
/// twice, subnets and subscriber prefixes that overlap no other's, subscriber
/// prefixes on the inside port only.
fn port_vlans(
    cx: &Ctx,
    i: usize,
    p: &FilePort,
    role: Role,
) -> Result<Vec<VlanConfig>, ConfigError> {
    if p.vlans.len() > MAX_VLANS {
        return Err(cx.err(
            &[Key("ports"), Idx(i), Key("vlans")],
            format!("{} VLANs; at most {MAX_VLANS} per port", p.vlans.len()),
        ));
    }
    let mut out: Vec<VlanConfig> = Vec::new();
    for (j, v) in p.vlans.iter().enumerate() {
        let vk = |k: &'static str| vec![Key("ports"), Idx(i), Key("vlans"), Idx(j), Key(k)];
        let (tags, key) = match (&v.id, &v.qinq) {
            (Some(id), None) => (vec![*id], "id"),
            (None, Some(q)) if q.len() == 2 => (q.clone(), "qinq"),
            (None, Some(q)) => {
                return Err(cx.err(
                    &vk("qinq"),
                    format!("{q:?} is not [outer, inner]; two VLAN ids, e.g. [10, 100]"),
                ))
            }
            _ => {
                return Err(cx.err(
                    &[Key("ports"), Idx(i), Key("vlans"), Idx(j)],
                    "a VLAN needs exactly one of `id` (802.1Q) and `qinq` ([outer, inner])",
                ))
            }
        };
        if let Some(t) = tags.iter().find(|t| !(1..=4094).contains(*t)) {
            return Err(cx.err(&vk(key), format!("VLAN id {t} is out of range; 1 to 4094")));
        }
        if out.iter().any(|o| o.tags == tags) {
            return Err(cx.err(
                &vk(key),
                format!("VLAN {tags:?} is configured twice on this port"),
            ));
        }
        let ipv4 = own_net(cx, &vk("ipv4"), &v.ipv4)?;
        if let Some(o) = out.iter().find(|o| o.ipv4.overlaps(&ipv4)) {
            return Err(cx.err(
                &vk("ipv4"),
                format!("{ipv4} overlaps VLAN {}'s subnet {}", o.label(), o.ipv4),
            ));
        }
        let gateway = gateway_on(cx, &vk("gateway"), v.gateway.as_deref(), &ipv4)?;
        if role == Role::Outside && !v.inside.is_empty() {
            return Err(cx.err(
                &vk("inside"),
                "subscriber prefixes belong to the inside port's VLANs; the outside's take none",
            ));
        }
        let mut inside: Vec<Ipv4Net> = Vec::new();
        for (k, s) in v.inside.iter().enumerate() {
            let at = [
                Key("ports"),
                Idx(i),
                Key("vlans"),
                Idx(j),
                Key("inside"),
                Idx(k),
            ];
            let n = cx.prefix(&at, s)?;
            let clash = out
                .iter()
                .flat_map(|o| o.inside.iter().chain([&o.ipv4]))
                .chain(inside.iter())
                .find(|q| q.overlaps(&n));
            if let Some(q) = clash {
                return Err(cx.err(
                    &at,
                    format!("{n} overlaps {q}, reached through another VLAN or listed twice"),
                ));
            }
            inside.push(n);
        }
        if let Some(o) = out
            .iter()
            .find(|o| o.inside.iter().any(|q| q.overlaps(&ipv4)))
        {
            return Err(cx.err(
                &vk("ipv4"),
                format!("{ipv4} overlaps VLAN {}'s subscriber prefixes", o.label()),
            ));
        }
        out.push(VlanConfig {
            tags,
            ipv4,
            gateway,
            inside,
        });
    }
    Ok(out)
}

/// A port's IPv6 addresses: each its own address in its on-link prefix, global or
/// unique-local, on the inside port only, no two prefixes overlapping.
fn port_ipv6(cx: &Ctx, i: usize, p: &FilePort, role: Role) -> Result<Vec<Ipv6Net>, ConfigError> {
    let mut out: Vec<Ipv6Net> = Vec::new();
    for (j, a) in p.ipv6.iter().enumerate() {
        let at = [Key("ports"), Idx(i), Key("ipv6"), Idx(j)];
        if role == Role::Outside {
            return Err(cx.err(
                &at,
                "IPv6 addresses go on the inside port only: the outside port is the IPv4 \
                 pool's side",
            ));
        }
        if p.ipv4.is_none() || !p.vlans.is_empty() {
            return Err(cx.err(
                &at,
                "IPv6 is served on an untagged port without VLAN sub-interfaces: give it \
                 its own ipv4 and no vlans (IPv6 on a trunk is not served yet)",
            ));
        }
        let example = "write the port's own address and its on-link prefix, e.g. \
                       \"2001:db8:ffff::1/64\"";
        let net: Ipv6Net = a
            .parse()
            .map_err(|e| cx.err(&at, format!("{e}; {example}")))?;
        let seg0 = net.addr.segments()[0];
        let special = if net.addr.is_unspecified() || net.addr.is_loopback() {
            Some("the unspecified or loopback address")
        } else if seg0 & 0xff00 == 0xff00 {
            Some("a multicast address")
        } else if seg0 & 0xffc0 == 0xfe80 {
            Some("a link-local address (the port's own is made from its MAC)")
        } else if net.addr.to_ipv4_mapped().is_some() {
            Some("an IPv4-mapped address")
        } else {
            None
        };
        if let Some(what) = special {
            return Err(cx.err(&at, format!("`{a}` is {what}; {example}")));
        }
        if net.prefix == 0 || net.prefix > 127 || net.is_network() {
            return Err(cx.err(
                &at,
                format!("`{a}` is not an address in its subnet; {example}"),
            ));
        }
        if let Some(o) = out.iter().find(|o| o.overlaps(&net)) {
            return Err(cx.err(&at, format!("{net} overlaps {o}, also on this port")));
        }
        out.push(net);
    }
    Ok(out)
}

/// The inside port's IPv6 next hop toward subscribers that are not on its links
/// (routed or delegated prefixes): a link-local address, or one of an on-link prefix
/// of the port that is not the port's own.
fn port_gateway6(
    cx: &Ctx,
    i: usize,
    p: &FilePort,
    nets: &[Ipv6Net],
) -> Result<Option<Ipv6Addr>, ConfigError> {
    let Some(g) = &p.gateway6 else {
        return Ok(None);
    };
    let at = [Key("ports"), Idx(i), Key("gateway6")];
    let example = "the router toward the subscribers, on the port's link: a link-local \
                   address such as \"fe80::1\" or one in the port's IPv6 prefix";
    if nets.is_empty() {
        return Err(cx.err(
            &at,
            "an IPv6 gateway needs the port's own IPv6 address: add ipv6 = \
             [\"2001:db8:ffff::1/64\"] to this port",
        ));
    }
    let a: Ipv6Addr = g
        .parse()
        .map_err(|_| cx.err(&at, format!("`{g}` is not an IPv6 address; {example}")))?;
    let seg0 = a.segments()[0];
    let link_local = seg0 & 0xffc0 == 0xfe80;
    if a.is_unspecified() || a.is_loopback() || seg0 & 0xff00 == 0xff00 {
        return Err(cx.err(&at, format!("`{g}` is not a unicast address; {example}")));
    }
    if nets.iter().any(|n| n.addr == a) {
        return Err(cx.err(&at, format!("`{g}` is the port's own address; {example}")));
    }
    if !link_local && !nets.iter().any(|n| n.contains(a)) {
        let on: Vec<String> = nets
            .iter()
            .map(|n| format!("{}/{}", n.network(), n.prefix))
            .collect();
        return Err(cx.err(
            &at,
            format!(
                "`{g}` is not on the port's link ({}); {example}",
                on.join(", ")
            ),
        ));
    }
    Ok(Some(a))
}

/// The `[nat64]` table, checked against the ports and the NAT.
fn nat64(cx: &Ctx, f: &FileNat64, ports: &[PortConfig], nat: &Nat) -> Result<Nat64, ConfigError> {
    let nk = |k: &'static str| vec![Key("nat64"), Key(k)];
    let lengths = "32, 40, 48, 56, 64 or 96 (RFC 6052), e.g. the well-known \"64:ff9b::/96\"";
    let prefix: Ipv6Net = f
        .prefix
        .parse()
        .map_err(|e| cx.err(&nk("prefix"), format!("{e}; a prefix of length {lengths}")))?;
    if !crate::NAT64_PREFIX_LENGTHS.contains(&prefix.prefix) {
        return Err(cx.err(
            &nk("prefix"),
            format!(
                "prefix length /{} is not one RFC 6052 allows: {lengths}",
                prefix.prefix
            ),
        ));
    }
    if !prefix.is_network() {
        return Err(cx.err(
            &nk("prefix"),
            format!(
                "`{}` has host bits set; the prefix is {}/{}",
                f.prefix,
                prefix.network(),
                prefix.prefix
            ),
        ));
    }
    if prefix.addr.octets()[8] != 0 {
        return Err(cx.err(
            &nk("prefix"),
            "bits 64 to 71 (the u octet) must be zero (RFC 6052 2.2)",
        ));
    }
    if !crate::NAT64_SUBSCRIBER_LENGTHS.contains(&f.subscriber_prefix_len) {
        return Err(cx.err(
            &nk("subscriber_prefix_len"),
            format!(
                "{} is not a subscriber prefix length NAT64 takes: 56 (the default), 64 or 128",
                f.subscriber_prefix_len
            ),
        ));
    }
    let Some((pi, inside)) = ports
        .iter()
        .enumerate()
        .find(|(_, p)| p.role == Role::Inside)
    else {
        return Err(cx.err(&[Key("nat64")], "NAT64 needs an inside port"));
    };
    if inside.ipv6.is_empty() {
        return Err(cx.err(
            &[Key("nat64")],
            format!(
                "NAT64 needs an IPv6 address on the inside port: add e.g. ipv6 = \
                 [\"2001:db8:ffff::1/64\"] to port {}",
                inside.name
            ),
        ));
    }
    for (j, a) in inside.ipv6.iter().enumerate() {
        if a.overlaps(&prefix) {
            return Err(cx.err(
                &[Key("ports"), Idx(pi), Key("ipv6"), Idx(j)],
                format!("{a} overlaps the NAT64 prefix {prefix} (nat64.prefix)"),
            ));
        }
    }
    if !(1280..=inside.mtu).contains(&f.lowest_ipv6_mtu) {
        return Err(cx.err(
            &nk("lowest_ipv6_mtu"),
            format!(
                "{} is out of range: from 1280 (IPv6's minimum MTU) to the inside port's \
                 MTU ({})",
                f.lowest_ipv6_mtu, inside.mtu
            ),
        ));
    }
    if nat.allocation == Allocation::Deterministic {
        return Err(cx.err(
            &[Key("nat64")],
            "NAT64 does not run with nat.allocation = \"deterministic\" (it maps IPv4 \
             inside prefixes); use \"port-block\" or \"dynamic\"",
        ));
    }
    Ok(Nat64 {
        prefix,
        subscriber_prefix_len: f.subscriber_prefix_len,
        lowest_ipv6_mtu: f.lowest_ipv6_mtu,
    })
}

fn mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut m = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        m[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(m)
}

fn behavior(b: BehaviorName) -> Behavior {
    match b {
        BehaviorName::EndpointIndependent => Behavior::EndpointIndependent,
        BehaviorName::AddressDependent => Behavior::AddressDependent,
        BehaviorName::AddressAndPortDependent => Behavior::AddressAndPortDependent,
    }
}

fn behavior_name(b: Behavior) -> BehaviorName {
    match b {
        Behavior::EndpointIndependent => BehaviorName::EndpointIndependent,
        Behavior::AddressDependent => BehaviorName::AddressDependent,
        Behavior::AddressAndPortDependent => BehaviorName::AddressAndPortDependent,
    }
}

use Seg::{Idx, Key};

/// Resolves the parsed file into a Config, checking every rule.
/// Shortest token accepted for a control surface.
pub const MIN_TOKEN_LEN: usize = 16;

/// The bearer token of control surface `table` (`api` or `metrics`): required when it
/// listens beyond loopback (anyone who can reach the port would read the live session
/// table or the counters), and then long enough and fit for an HTTP header.
fn control_token(
    cx: &Ctx,
    table: &'static str,
    listen: Option<SocketAddr>,
    token: Option<&str>,
) -> Result<Option<String>, ConfigError> {
    if let Some(t) = token {
        if t.len() < MIN_TOKEN_LEN || !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(cx.err(
                &[Key(table), Key("token")],
                format!(
                    "a token of at least {MIN_TOKEN_LEN} printable ASCII characters without \
                     spaces (e.g. the output of `openssl rand -hex 24`)"
                ),
            ));
        }
    }
    if let Some(l) = listen {
        if !l.ip().is_loopback() && token.is_none() {
            return Err(cx.err(
                &[Key(table), Key("listen")],
                format!(
                    "`{l}` can be reached from other hosts, and this surface has no \
                     authentication of its own: set {table}.token (clients send \
                     `Authorization: Bearer TOKEN`), or listen on 127.0.0.1"
                ),
            ));
        }
    }
    Ok(token.map(str::to_string))
}

pub(crate) fn resolve(f: &FileConfig, text: &str, file: &str) -> Result<Config, ConfigError> {
    let cx = Ctx {
        file,
        text,
        doc: text.parse::<toml_edit::ImDocument<String>>().ok(),
    };

    // An [alg] section the registry has no ALG for: a schema error, refused before
    // any value is checked, as serde refuses an unknown key.
    if let Some(name) = f
        .alg
        .0
        .keys()
        .find(|n| !cgnat_alg::PLUGINS.iter().any(|p| p.name == n.as_str()))
    {
        let names: Vec<String> = cgnat_alg::PLUGINS
            .iter()
            .map(|p| format!("`{}`", p.name))
            .collect();
        return Err(cx.err(
            &[Key("alg"), Seg::Name(name.clone())],
            format!("no ALG `{name}`: the ALGs are {}", names.join(", ")),
        ));
    }

    // [dataplane]
    let dp = &f.dataplane;
    let dpk = |k: &'static str| vec![Key("dataplane"), Key(k)];
    if dp.worker_lcores.is_empty() {
        return Err(cx.err(
            &dpk("worker_lcores"),
            "at least one worker lcore is needed, e.g. [1]",
        ));
    }
    for (i, l) in dp.worker_lcores.iter().enumerate() {
        let at = [Key("dataplane"), Key("worker_lcores"), Idx(i)];
        if *l == dp.control_lcore {
            return Err(cx.err(
                &at,
                format!("lcore {l} is the control lcore; workers need lcores of their own"),
            ));
        }
        if dp.worker_lcores[..i].contains(l) {
            return Err(cx.err(
                &at,
                format!("lcore {l} is listed twice; each worker needs its own"),
            ));
        }
    }
    if dp.mbufs < 1024 {
        return Err(cx.err(
            &dpk("mbufs"),
            format!("{} mbufs is too few; at least 1024", dp.mbufs),
        ));
    }
    for k in ["rx_desc", "tx_desc"] {
        let v = if k == "rx_desc" {
            dp.rx_desc
        } else {
            dp.tx_desc
        };
        if !(32..=16384).contains(&v) || !v.is_power_of_two() {
            return Err(cx.err(
                &dpk(k),
                format!("{v} descriptors; a power of two from 32 to 16384"),
            ));
        }
    }
    if !(1..=100_000).contains(&dp.arp_per_source) {
        return Err(cx.err(
            &dpk("arp_per_source"),
            format!(
                "{} ARP frames per source MAC per second; 1 to 100000",
                dp.arp_per_source
            ),
        ));
    }
    if !(1..=4096).contains(&dp.unresolved_queue_total) {
        return Err(cx.err(
            &dpk("unresolved_queue_total"),
            format!(
                "{} frames waiting for next hops per worker; 1 to 4096",
                dp.unresolved_queue_total
            ),
        ));
    }
    if dp.unresolved_queue > dp.unresolved_queue_total.min(64) {
        return Err(cx.err(
            &dpk("unresolved_queue"),
            format!(
                "{} frames per next hop; 0 (none waits) to 64, and at most unresolved_queue_total ({})",
                dp.unresolved_queue, dp.unresolved_queue_total
            ),
        ));
    }
    if !(1..=60).contains(&dp.unresolved_secs) {
        return Err(cx.err(
            &dpk("unresolved_secs"),
            format!(
                "{} seconds waiting for a next hop; 1 to 60",
                dp.unresolved_secs
            ),
        ));
    }
    if dp
        .eal_args
        .iter()
        .any(|a| a == "-l" || a.starts_with("--lcores") || a == "-c")
    {
        return Err(cx.err(
            &dpk("eal_args"),
            "lcores come from control_lcore and worker_lcores; remove -l/-c/--lcores",
        ));
    }
    let dataplane = Dataplane {
        eal_args: dp.eal_args.clone(),
        control_lcore: dp.control_lcore,
        worker_lcores: dp.worker_lcores.clone(),
        busy_poll: dp.busy_poll,
        mbufs: dp.mbufs,
        mbuf_size: dp.mbuf_size,
        rx_desc: dp.rx_desc,
        tx_desc: dp.tx_desc,
        arp_per_source: dp.arp_per_source,
        unresolved_queue: dp.unresolved_queue as usize,
        unresolved_queue_total: dp.unresolved_queue_total as usize,
        unresolved_secs: dp.unresolved_secs,
    };

    // [[ports]]
    let mut ports = Vec::new();
    for (i, p) in f.ports.iter().enumerate() {
        let pk = |k: &'static str| vec![Key("ports"), Idx(i), Key(k)];
        if p.name.is_empty() {
            return Err(cx.err(&pk("name"), "a port needs a name"));
        }
        if f.ports[..i].iter().any(|q| q.name == p.name) {
            return Err(cx.err(&pk("name"), format!("port name `{}` is used twice", p.name)));
        }
        if p.device.trim().is_empty() {
            return Err(cx.err(
                &pk("device"),
                "a DPDK device is needed, e.g. \"net_af_packet0,iface=eth1\" or a PCI address",
            ));
        }
        let role = match p.role {
            RoleName::Inside => Role::Inside,
            RoleName::Outside => Role::Outside,
        };
        let vlans = port_vlans(&cx, i, p, role)?;
        let (ipv4, gateway) = match &p.ipv4 {
            Some(a) => {
                let ipv4 = own_net(&cx, &pk("ipv4"), a)?;
                let gateway = gateway_on(&cx, &pk("gateway"), p.gateway.as_deref(), &ipv4)?;
                if let Some(v) = vlans.iter().find(|v| v.ipv4.overlaps(&ipv4)) {
                    return Err(cx.err(
                        &pk("ipv4"),
                        format!("{ipv4} overlaps VLAN {}'s subnet {}", v.label(), v.ipv4),
                    ));
                }
                (ipv4, gateway)
            }
            None if vlans.is_empty() => {
                return Err(cx.err(
                    &pk("ipv4"),
                    "a port needs its address, e.g. ipv4 = \"203.0.113.1/24\", or VLAN \
                     sub-interfaces with theirs (vlans = [{ id = 100, ipv4 = ... }])",
                ))
            }
            None => {
                if p.gateway.is_some() {
                    return Err(cx.err(
                        &pk("gateway"),
                        "a port without an untagged address has no gateway of its own; \
                         give the VLAN that leads to it a gateway",
                    ));
                }
                (vlans[0].ipv4, None)
            }
        };
        let gateway_mac = match &p.gateway_mac {
            Some(m) => {
                if gateway.is_none() {
                    return Err(cx.err(&pk("gateway_mac"), "gateway_mac needs a gateway"));
                }
                Some(mac(m).ok_or_else(|| {
                    cx.err(
                        &pk("gateway_mac"),
                        format!("`{m}` is not a MAC address; write one like \"02:00:00:00:00:01\""),
                    )
                })?)
            }
            None => None,
        };
        if !(68..=9600).contains(&p.mtu) {
            return Err(cx.err(
                &pk("mtu"),
                format!("mtu {} is out of range; 68 to 9600", p.mtu),
            ));
        }
        let ipv6 = port_ipv6(&cx, i, p, role)?;
        let gateway6 = port_gateway6(&cx, i, p, &ipv6)?;
        ports.push(PortConfig {
            name: p.name.clone(),
            role,
            device: p.device.clone(),
            ipv4,
            gateway,
            gateway_mac,
            mtu: p.mtu,
            untagged: p.ipv4.is_some(),
            vlans,
            ipv6,
            gateway6,
        });
    }
    if let Some(p) = ports
        .iter()
        .find(|p| u32::from(p.mtu) + 146 > u32::from(dataplane.mbuf_size))
    {
        return Err(cx.err(
            &dpk("mbuf_size"),
            format!(
                "{} bytes cannot hold a frame of port {} (MTU {}): at least {}",
                dataplane.mbuf_size,
                p.name,
                p.mtu,
                u32::from(p.mtu) + 146
            ),
        ));
    }
    for role in [Role::Inside, Role::Outside] {
        let n = ports.iter().filter(|p| p.role == role).count();
        let name = if role == Role::Inside {
            "inside"
        } else {
            "outside"
        };
        if n != 1 {
            return Err(cx.err(
                &[Key("ports")],
                format!(
                    "exactly one port with role = \"{name}\" is needed (found {n}); \
                     cgnat drives one inside and one outside port for now"
                ),
            ));
        }
    }

    // [nat]
    let (Some(n), Some(n_pool)) = (&f.nat, f.nat.as_ref().and_then(|n| n.pool.as_ref())) else {
        return Err(cx.err(
            &[Key("nat"), Key("pool")],
            "nat.pool is required: the public prefixes subscribers are translated to, \
             e.g. [nat] pool = [\"198.51.100.0/28\"]",
        ));
    };
    let nk = |k: &'static str| vec![Key("nat"), Key(k)];
    let nki = |k: &'static str, i: usize| vec![Key("nat"), Key(k), Idx(i)];
    let mut inside = Vec::new();
    for (i, s) in n.inside.iter().enumerate() {
        inside.push(cx.prefix(&nki("inside", i), s)?);
    }
    for (pi, port) in ports.iter().enumerate() {
        for (vi, v) in port.vlans.iter().enumerate() {
            for (k, p) in v.inside.iter().enumerate() {
                if !inside
                    .iter()
                    .any(|q| q.contains(p.network()) && q.prefix <= p.prefix)
                {
                    return Err(cx.err(
                        &[
                            Key("ports"),
                            Idx(pi),
                            Key("vlans"),
                            Idx(vi),
                            Key("inside"),
                            Idx(k),
                        ],
                        format!(
                            "{p} is not within nat.inside; a VLAN's subscriber prefixes \
                             must be inside prefixes too"
                        ),
                    ));
                }
            }
        }
    }
    if n_pool.is_empty() {
        return Err(cx.err(
            &nk("pool"),
            "the pool is empty; give at least one prefix, e.g. [\"198.51.100.0/28\"]",
        ));
    }
    let mut pool: Vec<Ipv4Net> = Vec::new();
    for (i, s) in n_pool.iter().enumerate() {
        let p = cx.prefix(&nki("pool", i), s)?;
        if let Some(q) = inside.iter().find(|q| q.overlaps(&p)) {
            return Err(cx.err(&nki("pool", i), format!("pool prefix {p} overlaps inside prefix {q}; the pool must be outside nat.inside")));
        }
        if let Some(q) = pool.iter().find(|q| q.overlaps(&p)) {
            return Err(cx.err(&nki("pool", i), format!("pool prefix {p} overlaps {q}")));
        }
        // The appliance answers packets to its ports' own addresses itself: a
        // subscriber translated to one would lose every reply.
        if let Some(port) = ports
            .iter()
            .find(|q| p.contains(q.ipv4.addr) || q.vlans.iter().any(|v| p.contains(v.ipv4.addr)))
        {
            return Err(cx.err(
                &nki("pool", i),
                format!(
                    "pool prefix {p} holds {}, the address of port `{}`; the pool must \
                     leave out the ports' own addresses (e.g. a prefix of its own routed \
                     to the outside port)",
                    port.ipv4.addr, port.name
                ),
            ));
        }
        pool.push(p);
    }
    let mut identity = Vec::new();
    for (i, s) in n.identity.iter().enumerate() {
        let p = cx.prefix(&nki("identity", i), s)?;
        if let Some(q) = pool.iter().find(|q| q.overlaps(&p)) {
            return Err(cx.err(
                &nki("identity", i),
                format!("identity prefix {p} overlaps pool prefix {q}"),
            ));
        }
        identity.push(p);
    }
    let mut exclude = Vec::new();
    for (i, s) in n.exclude_destinations.iter().enumerate() {
        exclude.push(cx.prefix(&nki("exclude_destinations", i), s)?);
    }
    let mut allow = Vec::new();
    for (i, s) in n.allow_destinations.iter().enumerate() {
        allow.push(cx.prefix(&nki("allow_destinations", i), s)?);
    }
    let [lo, hi] = n.port_range[..] else {
        return Err(cx.err(
            &nk("port_range"),
            format!(
                "{:?} is not [low, high]; two ports, e.g. [1024, 65535]",
                n.port_range
            ),
        ));
    };
    if lo == 0 || lo > hi {
        return Err(cx.err(&nk("port_range"), format!("[{lo}, {hi}] is not a range; [low, high] with 1 <= low <= high, e.g. [1024, 65535]")));
    }
    let span = u32::from(hi) - u32::from(lo) + 1;
    if n.block_size == 0 || u32::from(n.block_size) > span {
        return Err(cx.err(
            &nk("block_size"),
            format!(
                "block_size {} must be from 1 to the {span} ports of port_range",
                n.block_size
            ),
        ));
    }
    if n.max_blocks_per_subscriber == 0 {
        return Err(cx.err(&nk("max_blocks_per_subscriber"), "at least 1"));
    }
    if n.max_sessions_per_subscriber == 0 {
        return Err(cx.err(&nk("max_sessions_per_subscriber"), "at least 1"));
    }
    let max_inbound = n
        .max_inbound_sessions_per_subscriber
        .unwrap_or((n.max_sessions_per_subscriber / 8).max(1));
    if max_inbound == 0 || max_inbound > n.max_sessions_per_subscriber {
        return Err(cx.err(
            &nk("max_inbound_sessions_per_subscriber"),
            format!(
                "{} sessions; from 1 to max_sessions_per_subscriber ({}): sessions \
                 remote hosts open toward a subscriber get a smaller budget of their own",
                max_inbound, n.max_sessions_per_subscriber
            ),
        ));
    }
    let workers = dataplane.worker_lcores.len().max(1) as u64;
    if n.max_sessions < workers as u32 {
        return Err(cx.err(&nk("max_sessions"), "at least one session per worker"));
    }
    if u64::from(n.max_sessions) > workers * u64::from(crate::MAX_SESSIONS_PER_WORKER) {
        return Err(cx.err(
            &nk("max_sessions"),
            format!(
                "max_sessions {} is more than {} per worker lcore; with {workers} worker \
                 lcore(s), at most {}",
                n.max_sessions,
                crate::MAX_SESSIONS_PER_WORKER,
                (workers * u64::from(crate::MAX_SESSIONS_PER_WORKER)).min(u64::from(u32::MAX))
            ),
        ));
    }
    // Mapping records: the records of one worker and its sessions' share one 24-bit
    // numbering. (The defaults are `Nat::mapping_records` and `Nat::subscriber_limit`.)
    let per_worker = u64::from(n.max_sessions) / workers;
    let room = u64::from(crate::MAX_RECORDS_PER_WORKER) - per_worker;
    if let Some(m) = n.max_mappings {
        // Static mappings may all fall to one worker.
        let least = workers * (1 + n.statics.len() as u64);
        if u64::from(m) < least || u64::from(m) / workers > room {
            return Err(cx.err(
                &nk("max_mappings"),
                format!(
                    "{m} mapping records; from {least} (per worker lcore, one and one per \
                     static mapping) to {}: a worker numbers its {per_worker} sessions and \
                     its mapping records together in 24 bits",
                    (room * workers).min(u64::from(u32::MAX))
                ),
            ));
        }
    }
    let most_subscribers = workers * u64::from(crate::MAX_SESSIONS_PER_WORKER);
    if let Some(s) = n.max_subscribers {
        if u64::from(s) < workers || u64::from(s) > most_subscribers {
            return Err(cx.err(
                &nk("max_subscribers"),
                format!(
                    "{s} subscribers; from {workers} (one per worker lcore) to {}",
                    most_subscribers.min(u64::from(u32::MAX))
                ),
            ));
        }
    }
    let c = u64::from(n.max_alg_connections);
    let (least, most) = (
        workers * u64::from(crate::MIN_ALG_CONNECTIONS_PER_WORKER),
        u64::from(crate::MAX_ALG_CONNECTIONS),
    );
    if c < least || c > most {
        return Err(cx.err(
            &nk("max_alg_connections"),
            format!(
                "{c} ALG control connections; from {least} ({} per worker lcore) to {most}",
                crate::MIN_ALG_CONNECTIONS_PER_WORKER
            ),
        ));
    }
    let t = &n.timeouts;
    let tk = |k: &'static str| vec![Key("nat"), Key("timeouts"), Key(k)];
    for (k, v, min, rfc) in [
        ("udp", t.udp, 120, "RFC 4787 REQ-5"),
        ("tcp_established", t.tcp_established, 7440, "RFC 5382 REQ-5"),
        ("tcp_transitory", t.tcp_transitory, 240, "RFC 5382 REQ-5"),
        ("icmp", t.icmp, 60, "RFC 5508 REQ-1"),
        (
            "other",
            t.other,
            60,
            "the ICMP query's, the shortest of any session",
        ),
    ] {
        if v < min {
            return Err(cx.err(
                &tk(k),
                format!("{v} s is below the {min} s minimum of {rfc}"),
            ));
        }
    }
    if t.tcp_syn_inbound == 0 || t.tcp_syn_inbound > 60 {
        return Err(cx.err(
            &tk("tcp_syn_inbound"),
            format!(
                "{} s; from 1 to 60 (RFC 5382 REQ-4 suggests 6)",
                t.tcp_syn_inbound
            ),
        ));
    }
    let mut allowed: Vec<u8> = crate::OTHER_DEFAULT_ALLOW.to_vec();
    for (name, action) in &n.protocols {
        let pk = vec![Key("nat"), Key("protocols"), Seg::Name(name.clone())];
        let number = crate::protocol_number(name).ok_or_else(|| {
            cx.err(
                &pk,
                format!(
                    "unknown protocol {name:?}; a name ({}) or a number from 0 to 255",
                    crate::OTHER_PROTOCOL_NAMES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        if matches!(number, 1 | 6 | 17) {
            return Err(cx.err(
                &pk,
                format!(
                    "protocol {number} (TCP, UDP and ICMP) has its own translation; \
                     nat.protocols names the others (gre, esp, ah, sctp or a number)"
                ),
            ));
        }
        allowed.retain(|&p| p != number);
        if *action == ProtoAction::Allow {
            allowed.push(number);
        }
    }
    allowed.sort_unstable();
    let mut statics = Vec::new();
    for (i, s) in n.statics.iter().enumerate() {
        let sk = |k: &'static str| vec![Key("nat"), Key("static"), Idx(i), Key(k)];
        let inside_ep = cx.sockaddr(&sk("inside"), &s.inside)?;
        let outside_ep = cx.sockaddr(&sk("outside"), &s.outside)?;
        if !pool.iter().any(|p| p.contains(*outside_ep.ip())) {
            return Err(cx.err(
                &sk("outside"),
                format!("{} is not in nat.pool", outside_ep.ip()),
            ));
        }
        if !inside.iter().any(|p| p.contains(*inside_ep.ip())) {
            return Err(cx.err(
                &sk("inside"),
                format!("{} is not in nat.inside", inside_ep.ip()),
            ));
        }
        let protocol = match s.protocol {
            ProtoName::Tcp => L4Proto::Tcp,
            ProtoName::Udp => L4Proto::Udp,
        };
        if statics
            .iter()
            .any(|m: &StaticMapping| m.protocol == protocol && m.outside == outside_ep)
        {
            return Err(cx.err(&sk("outside"), format!("{outside_ep} is mapped twice")));
        }
        statics.push(StaticMapping {
            protocol,
            inside: inside_ep,
            outside: outside_ep,
        });
    }
    let nat = Nat {
        inside,
        pool,
        mapping: behavior(n.mapping),
        filtering: behavior(n.filtering),
        pooling: match n.pooling {
            PoolingName::Paired => Pooling::Paired,
            PoolingName::Arbitrary => Pooling::Arbitrary,
        },
        allocation: match n.allocation {
            AllocationName::PortBlock => Allocation::PortBlock,
            AllocationName::Dynamic => Allocation::Dynamic,
            AllocationName::Deterministic => Allocation::Deterministic,
        },
        port_range: (lo, hi),
        block_size: n.block_size,
        max_blocks_per_subscriber: n.max_blocks_per_subscriber,
        max_sessions_per_subscriber: n.max_sessions_per_subscriber,
        max_inbound_sessions_per_subscriber: max_inbound,
        max_sessions: n.max_sessions,
        max_mappings: n.max_mappings,
        max_subscribers: n.max_subscribers,
        max_alg_connections: n.max_alg_connections,
        port_parity: n.port_parity,
        port_preservation: n.port_preservation,
        quarantine_secs: n.quarantine_secs,
        hairpinning: n.hairpinning,
        exclude_destinations: exclude,
        allow_destinations: allow,
        ip_options: match n.ip_options {
            IpOptionsName::Strip => IpOptions::Strip,
            IpOptionsName::Drop => IpOptions::Drop,
        },
        identity,
        timeouts: Timeouts {
            udp: t.udp,
            tcp_established: t.tcp_established,
            tcp_transitory: t.tcp_transitory,
            icmp: t.icmp,
            tcp_syn_inbound: t.tcp_syn_inbound,
            other: t.other,
        },
        icmp_on_limit: n.icmp_on_limit,
        inbound_syn: match n.inbound_syn {
            InboundSynName::Hold => InboundSyn::Hold,
            InboundSynName::Drop => InboundSyn::Drop,
        },
        statics,
        other_protocols: allowed,
    };

    // [alg]: one section per ALG of the registry (the unknown ones refused first).
    let alg_of = |plugin: &cgnat_alg::Plugin| -> Result<AlgProto, ConfigError> {
        let name = plugin.name;
        let a = &f.alg.0.get(name).cloned();
        let enabled = a
            .as_ref()
            .and_then(|a| a.enabled)
            .unwrap_or(plugin.on_by_default);
        let ports = a
            .as_ref()
            .and_then(|a| a.ports.clone())
            .unwrap_or_else(|| plugin.default_ports.to_vec());
        if ports.is_empty() || ports.contains(&0) {
            return Err(cx.err(
                &[Key("alg"), Key(name), Key("ports")],
                "at least one port, none of them 0",
            ));
        }
        // The keys of other ALGs.
        let keys = a.as_ref().map(FileAlgProto::keys).unwrap_or_default();
        if let Some((k, _)) = keys.iter().find(|(k, set)| *set && !alg_takes(name, k)) {
            return Err(cx.err(&[Key("alg"), Key(name), Key(k)], alg_key_misplaced(k)));
        }
        let mut deny_methods: Vec<String> = Vec::new();
        for m in a
            .as_ref()
            .and_then(|a| a.deny_methods.as_ref())
            .into_iter()
            .flatten()
        {
            let ok = !m.is_empty()
                && m.len() <= 32
                && m.bytes()
                    .all(|b| b.is_ascii_uppercase() || b == b'_' || b == b'-');
            if !ok {
                return Err(cx.err(
                    &[Key("alg"), Key(name), Key("deny_methods")],
                    format!(
                        "`{m}` is not a request method: upper-case letters as on the request \
                         line, e.g. \"MESSAGE\", \"SUBSCRIBE\", \"RECORD\""
                    ),
                ));
            }
            if !deny_methods.contains(m) {
                deny_methods.push(m.clone());
            }
        }
        let max_message_size = a.as_ref().and_then(|a| a.max_message_size).unwrap_or(0);
        if max_message_size != 0 && !(512..=24576).contains(&max_message_size) {
            return Err(cx.err(
                &[Key("alg"), Key(name), Key("max_message_size")],
                "512 to 24576 bytes (the largest message the ALG reads), or 0 for no limit",
            ));
        }
        let deny_status = a.as_ref().and_then(|a| a.deny_status).unwrap_or(405);
        if deny_status != 405 && deny_status != 403 {
            return Err(cx.err(
                &[Key("alg"), Key(name), Key("deny_status")],
                "405 (Method Not Allowed) or 403 (Forbidden)",
            ));
        }
        // Command verbs (RFC 959 4.1: alphabetic, three or four letters).
        let verbs =
            |k: &'static str, v: Option<&Vec<String>>| -> Result<Vec<String>, ConfigError> {
                let mut out: Vec<String> = Vec::new();
                for c in v.into_iter().flatten() {
                    if !(3..=4).contains(&c.len()) || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
                        return Err(cx.err(
                            &[Key("alg"), Key(name), Key(k)],
                            format!(
                                "`{c}` is not an FTP command: three or four letters, \
                             e.g. \"SITE\", \"DELE\", \"PORT\""
                            ),
                        ));
                    }
                    let c = c.to_ascii_uppercase();
                    if !out.contains(&c) {
                        out.push(c);
                    }
                }
                Ok(out)
            };
        let deny = verbs("deny", a.as_ref().and_then(|a| a.deny.as_ref()))?;
        let allow = verbs("allow", a.as_ref().and_then(|a| a.allow.as_ref()))?;
        if let Some(c) = deny.iter().find(|c| allow.contains(c)) {
            return Err(cx.err(
                &[Key("alg"), Key(name), Key("deny")],
                format!("`{c}` is in both deny and allow: name it in one of them"),
            ));
        }
        let min_media_port = a.as_ref().and_then(|a| a.min_media_port).unwrap_or(1024);
        if min_media_port == 0 {
            return Err(cx.err(
                &[Key("alg"), Key(name), Key("min_media_port")],
                "1 to 65535 (port 0 is never valid)",
            ));
        }
        let min_data_port = a.as_ref().and_then(|a| a.min_data_port).unwrap_or(1024);
        if min_data_port == 0 {
            return Err(cx.err(
                &[Key("alg"), Key(name), Key("min_data_port")],
                "1 to 65535 (port 0 is never valid)",
            ));
        }
        let loose = a.as_ref().and_then(|a| a.loose).unwrap_or(false);
        // Subscriber prefixes: each within the inside prefixes (else it names nobody).
        let subs =
            |k: &'static str, v: Option<&Vec<String>>| -> Result<Vec<Ipv4Net>, ConfigError> {
                let mut out = Vec::new();
                for (i, s) in v.into_iter().flatten().enumerate() {
                    let at = [Key("alg"), Key(name), Key(k), Idx(i)];
                    let p = cx.prefix(&at, s)?;
                    if !nat.inside.iter().any(|q| q.overlaps(&p)) {
                        let all: Vec<String> = nat.inside.iter().map(|q| q.to_string()).collect();
                        return Err(cx.err(
                            &at,
                            format!(
                                "{p} names no subscriber: a prefix within nat.inside ({})",
                                all.join(", ")
                            ),
                        ));
                    }
                    out.push(p);
                }
                Ok(out)
            };
        let only = subs("only", a.as_ref().and_then(|a| a.only.as_ref()))?;
        let except = subs("except", a.as_ref().and_then(|a| a.except.as_ref()))?;
        let refuse = |v: Option<RefusePass>| v != Some(RefusePass::Pass);
        Ok(AlgProto {
            enabled,
            ports,
            min_data_port,
            loose,
            min_media_port,
            deny,
            allow,
            refuse_bounce: refuse(a.as_ref().and_then(|a| a.bounce)),
            refuse_low_port: refuse(a.as_ref().and_then(|a| a.low_port)),
            on_deny: match a.as_ref().and_then(|a| a.on_deny) {
                Some(OnDenyName::Drop) => OnDeny::Drop,
                _ => OnDeny::Reply,
            },
            deny_methods,
            max_message_size,
            deny_status,
            only,
            except,
        })
    };
    let alg = Alg::from_registry_order(
        cgnat_alg::PLUGINS
            .iter()
            .map(alg_of)
            .collect::<Result<_, _>>()?,
    );

    // [metrics], [logging]
    let listen = match f.metrics.listen.trim() {
        "" | "off" => None,
        s => Some(s.parse::<SocketAddr>().map_err(|_| {
            cx.err(
                &[Key("metrics"), Key("listen")],
                format!("`{s}` is not an address and port; e.g. \"127.0.0.1:9469\", or \"off\""),
            )
        })?),
    };
    let api = match f.api.listen.trim() {
        "" | "off" => None,
        s => Some(s.parse::<SocketAddr>().map_err(|_| {
            cx.err(
                &[Key("api"), Key("listen")],
                format!("`{s}` is not an address and port; e.g. \"127.0.0.1:9470\", or \"off\""),
            )
        })?),
    };
    let metrics_token = control_token(&cx, "metrics", listen, f.metrics.token.as_deref())?;
    let api_token = control_token(&cx, "api", api, f.api.token.as_deref())?;
    let lk = |k: &'static str, f: &'static str| vec![Key("logging"), Key(k), Key(f)];
    let ipfix = match &f.logging.ipfix {
        Some(i) => {
            if i.threshold_percent > 100 {
                return Err(cx.err(
                    &lk("ipfix", "threshold_percent"),
                    "a percentage: 0 (off) to 100",
                ));
            }
            if i.template_refresh_secs == 0 || i.template_refresh_secs > 3600 {
                return Err(cx.err(
                    &lk("ipfix", "template_refresh_secs"),
                    "from 1 to 3600 seconds (RFC 7011 resends templates over UDP)",
                ));
            }
            Some(Ipfix {
                collector: i.collector.parse().map_err(|_| {
                    cx.err(
                        &lk("ipfix", "collector"),
                        format!(
                            "`{}` is not an address and port; e.g. \"127.0.0.1:4739\"",
                            i.collector
                        ),
                    )
                })?,
                sessions: match i.sessions {
                    SessionLoggingName::Auto => SessionLogging::Auto,
                    SessionLoggingName::On => SessionLogging::On,
                    SessionLoggingName::Off => SessionLogging::Off,
                },
                destinations: i.destinations,
                mappings: i.mappings,
                template_refresh_secs: i.template_refresh_secs,
                domain_id: i.domain_id,
                threshold_percent: i.threshold_percent,
            })
        }
        None => None,
    };
    let syslog = match &f.logging.syslog {
        Some(s) => Some(Syslog {
            server: s.server.parse().map_err(|_| {
                cx.err(
                    &lk("syslog", "server"),
                    format!(
                        "`{}` is not an address and port; e.g. \"127.0.0.1:514\"",
                        s.server
                    ),
                )
            })?,
        }),
        None => None,
    };
    let pcp = match &f.pcp {
        None => Pcp::default(),
        Some(p) => {
            let pk = |k: &'static str| vec![Key("pcp"), Key(k)];
            if p.listen == 0 {
                return Err(cx.err(&pk("listen"), "a UDP port from 1 to 65535 (PCP's is 5351)"));
            }
            if p.min_lifetime == 0 {
                return Err(cx.err(
                    &pk("min_lifetime"),
                    "at least 1 second (a lifetime of 0 deletes a mapping)",
                ));
            }
            if p.max_lifetime < p.min_lifetime || p.max_lifetime > 1 << 30 {
                return Err(cx.err(
                    &pk("max_lifetime"),
                    format!(
                        "from min_lifetime ({}) to {} seconds",
                        p.min_lifetime,
                        1u32 << 30
                    ),
                ));
            }
            if p.max_mappings_per_subscriber == 0 || p.max_mappings_per_subscriber > 65535 {
                return Err(cx.err(
                    &pk("max_mappings_per_subscriber"),
                    "from 1 to 65535 (set enabled = false to refuse every request)",
                ));
            }
            Pcp {
                enabled: p.enabled,
                listen: p.listen,
                min_lifetime: p.min_lifetime,
                max_lifetime: p.max_lifetime,
                max_mappings_per_subscriber: p.max_mappings_per_subscriber,
                allow_third_party: p.allow_third_party,
                nat_pmp: p.nat_pmp,
            }
        }
    };
    let nat64 = match &f.nat64 {
        Some(n) => Some(nat64(&cx, n, &ports, &nat)?),
        None => None,
    };

    let ha = match &f.ha {
        None => None,
        Some(h) => Some(resolve_ha(&cx, h)?),
    };

    Ok(Config {
        file: file.to_string(),
        dataplane,
        ports,
        nat,
        alg,
        metrics: Metrics {
            listen,
            token: metrics_token,
        },
        api: Api {
            listen: api,
            token: api_token,
        },
        logging: Logging { ipfix, syslog },
        pcp,
        nat64,
        ha,
    })
}

/// The `[ha]` table: addresses that parse, a key file that holds a usable key, a rate
/// in range.
fn resolve_ha(cx: &Ctx, h: &FileHa) -> Result<Ha, ConfigError> {
    let hk = |k: &'static str| vec![Key("ha"), Key(k)];
    let addr = |k: &'static str, s: &str| {
        s.parse::<SocketAddrV4>().map_err(|_| {
            cx.err(
                &hk(k),
                format!(
                    "`{s}` is not an IPv4 address and port on the sync network; e.g. \"10.255.0.1:7946\""
                ),
            )
        })
    };
    let listen = addr("listen", &h.listen)?;
    let peer = addr("peer", &h.peer)?;
    if peer == listen {
        return Err(cx.err(
            &hk("peer"),
            "the other appliance's sync address, not this one's (`listen`)",
        ));
    }
    if listen.ip().is_unspecified() || peer.ip().is_unspecified() || peer.port() == 0 {
        return Err(cx.err(
            &hk(if peer.port() == 0 || peer.ip().is_unspecified() {
                "peer"
            } else {
                "listen"
            }),
            "a specific address and port: the sync socket talks to its peer only",
        ));
    }
    let key = std::fs::read(&h.key_file).map_err(|e| {
        cx.err(
            &hk("key_file"),
            format!(
                "cannot read `{}`: {e}; the shared key of both appliances (at least {} bytes)",
                h.key_file,
                crate::HA_MIN_KEY
            ),
        )
    })?;
    let len = key
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    if len < crate::HA_MIN_KEY {
        return Err(cx.err(
            &hk("key_file"),
            format!(
                "`{}` holds a key of {len} bytes; at least {} are needed (e.g. `head -c 32 /dev/urandom | base64 > FILE`)",
                h.key_file,
                crate::HA_MIN_KEY
            ),
        ));
    }
    if h.rate == 0 || h.rate > 100_000 {
        return Err(cx.err(&hk("rate"), "from 1 to 100000 sync messages a second"));
    }
    Ok(Ha {
        role: match h.role {
            HaRoleName::Active => HaRole::Active,
            HaRoleName::Standby => HaRole::Standby,
        },
        listen,
        peer,
        key_file: h.key_file.clone(),
        rate: h.rate,
    })
}

impl FileConfig {
    /// The file form of a resolved config, every default written out.
    pub(crate) fn from_config(c: &Config) -> FileConfig {
        let strs = |v: &[Ipv4Net]| v.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        // A key of the ALG's, written out; None for another ALG's key.
        let alg = |name: &str, a: &AlgProto| {
            let of = |k: &str| alg_takes(name, k);
            let refuse = |r: bool| {
                if r {
                    RefusePass::Refuse
                } else {
                    RefusePass::Pass
                }
            };
            FileAlgProto {
                enabled: Some(a.enabled),
                ports: Some(a.ports.clone()),
                min_data_port: of("min_data_port").then_some(a.min_data_port),
                loose: of("loose").then_some(a.loose),
                min_media_port: of("min_media_port").then_some(a.min_media_port),
                deny: of("deny").then(|| a.deny.clone()),
                allow: of("allow").then(|| a.allow.clone()),
                bounce: of("bounce").then_some(refuse(a.refuse_bounce)),
                low_port: of("low_port").then_some(refuse(a.refuse_low_port)),
                on_deny: of("on_deny").then_some(match a.on_deny {
                    OnDeny::Reply => OnDenyName::Reply,
                    OnDeny::Drop => OnDenyName::Drop,
                }),
                deny_methods: of("deny_methods").then(|| a.deny_methods.clone()),
                max_message_size: of("max_message_size").then_some(a.max_message_size),
                deny_status: of("deny_status").then_some(a.deny_status),
                only: Some(strs(&a.only)),
                except: Some(strs(&a.except)),
            }
        };
        let n = &c.nat;
        FileConfig {
            dataplane: FileDataplane {
                eal_args: c.dataplane.eal_args.clone(),
                control_lcore: c.dataplane.control_lcore,
                worker_lcores: c.dataplane.worker_lcores.clone(),
                busy_poll: c.dataplane.busy_poll,
                mbufs: c.dataplane.mbufs,
                mbuf_size: c.dataplane.mbuf_size,
                rx_desc: c.dataplane.rx_desc,
                tx_desc: c.dataplane.tx_desc,
                arp_per_source: c.dataplane.arp_per_source,
                unresolved_queue: c.dataplane.unresolved_queue as u32,
                unresolved_queue_total: c.dataplane.unresolved_queue_total as u32,
                unresolved_secs: c.dataplane.unresolved_secs,
            },
            ports: c
                .ports
                .iter()
                .map(|p| FilePort {
                    name: p.name.clone(),
                    role: if p.role == Role::Inside {
                        RoleName::Inside
                    } else {
                        RoleName::Outside
                    },
                    device: p.device.clone(),
                    ipv4: p.untagged.then(|| p.ipv4.to_string()),
                    gateway: p.gateway.map(|g| g.to_string()),
                    gateway_mac: p.gateway_mac.map(|m| {
                        m.iter()
                            .map(|b| format!("{b:02x}"))
                            .collect::<Vec<_>>()
                            .join(":")
                    }),
                    mtu: p.mtu,
                    ipv6: p.ipv6.iter().map(|a| a.to_string()).collect(),
                    gateway6: p.gateway6.map(|g| g.to_string()),
                    vlans: p
                        .vlans
                        .iter()
                        .map(|v| FileVlan {
                            id: (v.tags.len() == 1).then(|| v.tags[0]),
                            qinq: (v.tags.len() == 2).then(|| v.tags.clone()),
                            ipv4: v.ipv4.to_string(),
                            gateway: v.gateway.map(|g| g.to_string()),
                            inside: strs(&v.inside),
                        })
                        .collect(),
                })
                .collect(),
            nat: Some(FileNat {
                inside: strs(&n.inside),
                pool: Some(strs(&n.pool)),
                mapping: behavior_name(n.mapping),
                filtering: behavior_name(n.filtering),
                pooling: match n.pooling {
                    Pooling::Paired => PoolingName::Paired,
                    Pooling::Arbitrary => PoolingName::Arbitrary,
                },
                allocation: match n.allocation {
                    Allocation::PortBlock => AllocationName::PortBlock,
                    Allocation::Dynamic => AllocationName::Dynamic,
                    Allocation::Deterministic => AllocationName::Deterministic,
                },
                port_range: vec![n.port_range.0, n.port_range.1],
                block_size: n.block_size,
                max_blocks_per_subscriber: n.max_blocks_per_subscriber,
                max_sessions_per_subscriber: n.max_sessions_per_subscriber,
                max_inbound_sessions_per_subscriber: Some(n.max_inbound_sessions_per_subscriber),
                max_sessions: n.max_sessions,
                max_mappings: n.max_mappings,
                max_subscribers: n.max_subscribers,
                max_alg_connections: n.max_alg_connections,
                port_parity: n.port_parity,
                port_preservation: n.port_preservation,
                quarantine_secs: n.quarantine_secs,
                hairpinning: n.hairpinning,
                exclude_destinations: strs(&n.exclude_destinations),
                allow_destinations: strs(&n.allow_destinations),
                ip_options: match n.ip_options {
                    IpOptions::Strip => IpOptionsName::Strip,
                    IpOptions::Drop => IpOptionsName::Drop,
                },
                identity: strs(&n.identity),
                timeouts: FileTimeouts {
                    udp: n.timeouts.udp,
                    tcp_established: n.timeouts.tcp_established,
                    tcp_transitory: n.timeouts.tcp_transitory,
                    icmp: n.timeouts.icmp,
                    tcp_syn_inbound: n.timeouts.tcp_syn_inbound,
                    other: n.timeouts.other,
                },
                icmp_on_limit: n.icmp_on_limit,
                inbound_syn: match n.inbound_syn {
                    InboundSyn::Hold => InboundSynName::Hold,
                    InboundSyn::Drop => InboundSynName::Drop,
                },
                statics: n
                    .statics
                    .iter()
                    .map(|s| FileStatic {
                        protocol: if s.protocol == L4Proto::Tcp {
                            ProtoName::Tcp
                        } else {
                            ProtoName::Udp
                        },
                        inside: s.inside.to_string(),
                        outside: s.outside.to_string(),
                    })
                    .collect(),
                protocols: (0..=255u8)
                    .filter(|p| !matches!(p, 1 | 6 | 17))
                    .filter_map(|p| {
                        let on = n.other_protocols.contains(&p);
                        let default = crate::OTHER_DEFAULT_ALLOW.contains(&p);
                        let action = if on {
                            ProtoAction::Allow
                        } else {
                            ProtoAction::Drop
                        };
                        (on != default).then(|| (crate::protocol_name(p), action))
                    })
                    .collect(),
            }),
            alg: FileAlg(
                c.alg
                    .iter()
                    .map(|(p, a)| (p.name.to_string(), alg(p.name, a)))
                    .collect(),
            ),
            metrics: FileMetrics {
                listen: c.metrics.listen.map_or("off".into(), |a| a.to_string()),
                token: c.metrics.token.clone(),
            },
            api: FileApi {
                listen: c.api.listen.map_or("off".into(), |a| a.to_string()),
                token: c.api.token.clone(),
            },
            logging: FileLogging {
                ipfix: c.logging.ipfix.as_ref().map(|i| FileIpfix {
                    collector: i.collector.to_string(),
                    sessions: match i.sessions {
                        SessionLogging::Auto => SessionLoggingName::Auto,
                        SessionLogging::On => SessionLoggingName::On,
                        SessionLogging::Off => SessionLoggingName::Off,
                    },
                    destinations: i.destinations,
                    mappings: i.mappings,
                    template_refresh_secs: i.template_refresh_secs,
                    domain_id: i.domain_id,
                    threshold_percent: i.threshold_percent,
                }),
                syslog: c.logging.syslog.as_ref().map(|s| FileSyslog {
                    server: s.server.to_string(),
                }),
            },
            pcp: (c.pcp != Pcp::default()).then_some(FilePcp {
                enabled: c.pcp.enabled,
                listen: c.pcp.listen,
                min_lifetime: c.pcp.min_lifetime,
                max_lifetime: c.pcp.max_lifetime,
                max_mappings_per_subscriber: c.pcp.max_mappings_per_subscriber,
                allow_third_party: c.pcp.allow_third_party,
                nat_pmp: c.pcp.nat_pmp,
            }),
            nat64: c.nat64.map(|n| FileNat64 {
                prefix: n.prefix.to_string(),
                subscriber_prefix_len: n.subscriber_prefix_len,
                lowest_ipv6_mtu: n.lowest_ipv6_mtu,
            }),
            ha: c.ha.as_ref().map(|h| FileHa {
                role: match h.role {
                    HaRole::Active => HaRoleName::Active,
                    HaRole::Standby => HaRoleName::Standby,
                },
                listen: h.listen.to_string(),
                peer: h.peer.to_string(),
                key_file: h.key_file.clone(),
                rate: h.rate,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key an ALG's registry entry names is a key of the section (not one of
    /// those every ALG takes), and every key of the section is taken by some ALG: an
    /// ALG added with a key the config does not read, or a key read for no ALG, fails
    /// here.
    #[test]
    fn alg_keys_name_registry_algs_and_section_keys() {
        let section = FileAlgProto::default().keys().map(|(k, _)| k);
        for p in &cgnat_alg::PLUGINS {
            for k in p.keys {
                assert!(
                    section.contains(k),
                    "{}: {k} is not a key of [alg.<name>]",
                    p.name
                );
                assert!(!ALG_COMMON_KEYS.contains(k), "{}: {k}", p.name);
            }
        }
        for k in section {
            assert!(
                cgnat_alg::PLUGINS.iter().any(|p| alg_takes(p.name, k)),
                "no ALG takes {k}"
            );
        }
        for k in ["enabled", "ports", "only", "except"] {
            assert!(cgnat_alg::PLUGINS.iter().all(|p| alg_takes(p.name, k)));
        }
    }
}
