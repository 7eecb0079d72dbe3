//! What the config tests share.

/// A minimal valid config: one worker, null devices, a /28 pool.
pub const BASE: &str = r#"[dataplane]
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
