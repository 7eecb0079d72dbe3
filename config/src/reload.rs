//! What a reload changes: the settings that differ between the running config and a
//! newly read one, each either changeable live or not. A reload is all or nothing:
//! one setting that cannot change live refuses the whole file ([`plan`]).

use crate::raw::FileConfig;
use crate::{Allocation, Config, ConfigError};
use toml::Value;

/// One setting a reload changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Dotted key (`nat.timeouts.udp`, `alg.ftp.enabled`, `nat.static`, ...).
    pub key: String,
    /// The running value (TOML), `-` when not set.
    pub from: String,
    /// The file's value (TOML), `-` when not set.
    pub to: String,
}

/// Settings that change live, as dotted keys: a key matches one equal to it or below
/// it (`alg` covers `alg.ftp.ports`).
const LIVE: &[&str] = &[
    "nat.timeouts",
    "nat.max_sessions_per_subscriber",
    "nat.max_inbound_sessions_per_subscriber",
    "nat.static",
    "nat.pool",
    "nat.hairpinning",
    "nat.exclude_destinations",
    "nat.allow_destinations",
    "nat.identity",
    "nat.ip_options",
    "nat.icmp_on_limit",
    "nat.inbound_syn",
    "nat.port_parity",
    "nat.port_preservation",
    // Read per packet: a protocol dropped now is dropped both ways at once (its
    // sessions end at their timeout); one allowed now is translated from now on.
    "nat.protocols",
    "alg",
    "logging",
    "metrics.token",
    "api.token",
    "dataplane.arp_per_source",
    "dataplane.unresolved_secs",
    // Read by the worker that serves each request: the next request has them.
    "pcp.min_lifetime",
    "pcp.max_lifetime",
    "pcp.max_mappings_per_subscriber",
    "pcp.allow_third_party",
    "pcp.nat_pmp",
];

/// Why the settings under a key cannot change live, most specific first.
const FIXED: &[(&str, &str)] = &[
    (
        "nat.inside",
        "the inside prefixes decide which worker owns a subscriber; restart to change them",
    ),
    (
        "nat.max_sessions",
        "the session tables are sized from it at start",
    ),
    (
        "nat.max_mappings",
        "the mapping records are allocated at start",
    ),
    (
        "nat.max_subscribers",
        "the subscriber tables are sized from it at start",
    ),
    (
        "nat.max_alg_connections",
        "the ALG stream engines are sized from it at start",
    ),
    (
        "nat.max_blocks_per_subscriber",
        "the subscribers' block tables are sized from it at start",
    ),
    (
        "nat",
        "live mappings were made under it (port layout, behaviour, allocation)",
    ),
    (
        "dataplane.worker_lcores",
        "lcores, their queues and rings are set up when DPDK starts",
    ),
    (
        "dataplane.control_lcore",
        "lcores, their queues and rings are set up when DPDK starts",
    ),
    (
        "dataplane",
        "DPDK's memory, mbufs, descriptors and queues are set up at start",
    ),
    ("ports", "devices and their addresses are set up at start"),
    (
        "pcp",
        "the PCP server (on or off, its port) is set up at start: its epoch counts \
         from then and its ANNOUNCE tells clients to renew their mappings",
    ),
    (
        "nat64",
        "NAT64 subscribers' mappings were made under its prefix and subscriber length",
    ),
    ("metrics", "the metrics listener is bound at start"),
    ("api", "the control API's listener is bound at start"),
    (
        "ha",
        "the sync socket and key are set up at start; the role changes with \
         `cgnat ha promote|demote`",
    ),
];

fn under(key: &str, prefix: &str) -> bool {
    key == prefix
        || key
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// Why `key` cannot change live, or None when it can.
pub fn fixed_reason(key: &str) -> Option<&'static str> {
    if LIVE.iter().any(|p| under(key, p)) {
        return None;
    }
    Some(
        FIXED
            .iter()
            .find(|(p, _)| under(key, p))
            .map_or("it is read only at start", |(_, why)| why),
    )
}

fn render(v: Option<&Value>) -> String {
    match v {
        None => "-".into(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(v) => {
            let s = v.to_string();
            // Arrays of tables render over several lines: keep the answer one line.
            s.split_whitespace().collect::<Vec<_>>().join(" ")
        }
    }
}

/// Every setting (dotted key) that differs between `a` and `b`; arrays count as one
/// setting.
fn differences(prefix: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<Change>) {
    match (a, b) {
        (Some(Value::Table(x)), Some(Value::Table(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                differences(&key, x.get(k), y.get(k), out);
            }
        }
        // A whole table set or unset: each of its settings changed.
        (Some(Value::Table(x)), None) => {
            for (k, v) in x {
                differences(&format!("{prefix}.{k}"), Some(v), None, out);
            }
        }
        (None, Some(Value::Table(y))) => {
            for (k, v) in y {
                differences(&format!("{prefix}.{k}"), None, Some(v), out);
            }
        }
        _ if a == b => {}
        _ => out.push(Change {
            key: prefix.to_string(),
            from: render(a),
            to: render(b),
        }),
    }
}

/// The settings of `new` that differ from `running`, sorted by key.
pub fn changes(running: &Config, new: &Config) -> Vec<Change> {
    let tree = |c: &Config| Value::try_from(FileConfig::from_config(c)).ok();
    let (a, b) = (tree(running), tree(new));
    let mut out = Vec::new();
    differences("", a.as_ref(), b.as_ref(), &mut out);
    out
}

/// Why the pool of `new` cannot replace the running one live, when `key` is the
/// pool's (prefixes added are appended, removed ones drain; see the dataplane's
/// `nat::pool`), or None when it can.
fn pool_reason(started: &Config, new: &Config, key: &str) -> Option<String> {
    if key != "nat.pool" {
        return None;
    }
    if started.nat.allocation == Allocation::Deterministic {
        return Some(
            "under deterministic allocation (RFC 7422) the pool is part of the computation \
             of every subscriber's address and port range: another pool would move live \
             subscribers to other addresses and ports"
                .into(),
        );
    }
    // The subscriber tables were sized from the pool at start when max_subscribers is
    // left to its default: a pool that serves more subscribers needs bigger ones.
    let workers = started.dataplane.worker_lcores.len() as u32;
    let (had, needs) = (
        started.nat.subscriber_limit(workers),
        new.nat.subscriber_limit(workers),
    );
    (started.nat.max_subscribers.is_none() && needs > had).then(|| {
        format!(
            "the subscriber tables (nat.max_subscribers, by default what the pool serves) \
             were sized at start for {had} subscribers and this pool needs {needs}: set \
             nat.max_subscribers at a restart to leave room for the prefixes to come"
        )
    })
}

/// What a reload from `new` (read from `text`) would change in `running`: every
/// change, when all can be made live; otherwise every change that cannot, each named
/// by the file, its line in `text` (0 when the file leaves it to its default), the key,
/// and why it needs a restart. Nothing is to be applied then.
pub fn plan(running: &Config, new: &Config, text: &str) -> Result<Vec<Change>, Vec<ConfigError>> {
    plan_since(running, running, new, text)
}

/// [`plan`] for an appliance started with `started` (its tables sized from it) and
/// running `running` after earlier reloads: a pool that shrank by a reload may grow
/// back to what the tables were sized for.
pub fn plan_since(
    started: &Config,
    running: &Config,
    new: &Config,
    text: &str,
) -> Result<Vec<Change>, Vec<ConfigError>> {
    let all = changes(running, new);
    let refused: Vec<ConfigError> = all
        .iter()
        .filter_map(|c| {
            let why = fixed_reason(&c.key)
                .map(String::from)
                .or_else(|| pool_reason(started, new, &c.key))?;
            Some(ConfigError {
                file: new.file.clone(),
                line: crate::locate::line_of_key(text, &c.key),
                key: c.key.clone(),
                message: format!(
                    "cannot change without a restart ({why}): running {}, file {}; \
                     nothing was applied",
                    c.from, c.to
                ),
            })
        })
        .collect();
    if refused.is_empty() {
        Ok(all)
    } else {
        Err(refused)
    }
}
