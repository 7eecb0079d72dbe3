//! Changes without restart: `cgnat reload` (POST /reload on the control API) and
//! SIGHUP re-read the config file the appliance runs, validate it as at start, and
//! apply what can change live; one setting that cannot refuses the whole file and
//! nothing is applied ([`cgnat_config::reload::plan`]).
//!
//! A plain thread does the work. Each worker gets its new settings on a channel it
//! polls once per loop, between bursts ([`Worker::reconfigure`]), and gives the ones
//! they replace back to be dropped here; the exporter takes new destinations on its
//! next poll, the HTTP servers new tokens on their next request. Live sessions stay:
//! only settings change.
//!
//! [`Worker::reconfigure`]: cgnat_dataplane::pipeline::Worker::reconfigure

use crate::exporter::Destinations;
use anyhow::{anyhow, Result};
use cgnat_config::{Config, ConfigError};
use cgnat_dataplane::nat::rss::Steering;
use cgnat_dataplane::nat::NatParams;
use cgnat_dataplane::pipeline::PipelineParams;
use crossbeam::channel::{Receiver, Sender};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// A worker's settings: what a reload hands it, and what it hands back.
#[derive(Clone)]
pub(crate) struct Settings {
    pub pipeline: PipelineParams,
    pub nat: NatParams,
    /// The ALGs' command and request policy (each worker's ALG stream engine's).
    pub alg: cgnat_dataplane::alg::AlgPolicy,
}

/// Builds the workers' settings from a config, at start and on each reload.
pub(crate) struct Builder {
    pub workers: u16,
    /// The inside and outside ports' steering, when the devices steer.
    pub steering: [Option<Arc<Steering>>; 2],
    /// Pcap mode: any destination MAC, broadcast to unknown next hops.
    pub until_drained: bool,
}

impl Builder {
    pub fn settings(&self, cfg: &Config) -> Result<Settings> {
        let mut pipeline = PipelineParams::from_config(cfg);
        pipeline.steering = self.steering[0].clone();
        if self.until_drained {
            // Pcap inputs carry whatever MACs they were captured with, and nobody
            // answers ARP: accept any destination MAC, and send to the broadcast MAC
            // when a next hop is unknown.
            pipeline.check_dst_mac = false;
            pipeline.unresolved_mac = Some(cgnat_dataplane::wire::ethernet::BROADCAST);
        }
        let mut nat = NatParams::from_config(&cfg.nat, self.workers)
            .map_err(|e| anyhow!("{}: {}", cfg.file, e.0))?;
        nat.set_algs(&cfg.alg);
        nat.set_nat64(cfg.nat64.as_ref());
        nat.steering = self.steering[1].clone();
        nat.log = cgnat_dataplane::log::Policy::from_config(cfg);
        let alg = cgnat_dataplane::alg::AlgPolicy::of(&cfg.alg);
        Ok(Settings { pipeline, nat, alg })
    }
}

/// The pool as the workers hold it, by pool index: what `/pool` and `/metrics` show,
/// what the control lcore answers proxy ARP for, and what the next reload orders its
/// pool after ([`NatParams::follow`]).
pub(crate) struct PoolView {
    /// The addresses, by pool index (draining ones kept).
    pub addrs: Vec<u32>,
    /// By pool index: removed by a reload, draining.
    pub draining: Vec<bool>,
    /// Addresses the workers' usage counters have room for.
    pub room: usize,
}

impl PoolView {
    /// The pool of a worker at start.
    pub fn new(pool: &cgnat_dataplane::nat::pool::Pool) -> PoolView {
        PoolView {
            addrs: pool.addresses().to_vec(),
            draining: vec![false; pool.addresses().len()],
            room: pool.usage.len(),
        }
    }

    /// The addresses with their draining marks, by pool index.
    pub fn entries(&self) -> impl Iterator<Item = (usize, std::net::Ipv4Addr, bool)> + '_ {
        self.addrs.iter().enumerate().map(|(i, &a)| {
            (
                i,
                std::net::Ipv4Addr::from(a),
                self.draining.get(i).copied().unwrap_or(false),
            )
        })
    }
}

/// The pool view the reload thread updates and the servers read.
pub(crate) type SharedPool = Arc<RwLock<PoolView>>;

/// The running config, readable by the control API (`/config`).
pub(crate) type Running = Arc<Mutex<Config>>;

/// Where a reload's answer goes.
pub(crate) type Request = Sender<Value>;

/// How long a worker may take to pick up new settings.
const WORKER_WAIT: Duration = Duration::from_secs(3);

pub(crate) struct Reloader {
    pub builder: Builder,
    /// The config the appliance started with (the tables were sized from it).
    pub started: Config,
    pub running: Running,
    /// One per worker: the settings it polls for.
    pub to_workers: Vec<Sender<Settings>>,
    /// The settings the workers replaced.
    pub replaced: Receiver<Settings>,
    pub destinations: Arc<Destinations>,
    /// The control API's and the metrics server's bearer tokens.
    pub tokens: [crate::http::Token; 2],
    /// The pool by index, as the workers hold it.
    pub pool: SharedPool,
    /// The control lcore's proxy-ARP list (every pool address, sorted), when a reload
    /// changes it, and the FTP policy.
    pub to_control: Sender<cgnat_dataplane::pipeline::ControlSettings>,
}

fn refusal(e: &ConfigError) -> Value {
    json!({ "file": e.file, "line": e.line, "key": e.key, "message": e.message,
            "text": e.to_string() })
}

fn refused(file: &str, errors: &[ConfigError]) -> Value {
    json!({ "applied": false, "file": file,
            "refused": errors.iter().map(refusal).collect::<Vec<_>>() })
}

impl Reloader {
    /// Reads the running config's file again and applies it, all or nothing. The
    /// answer: `applied`, and the `changes` made or the settings `refused`.
    pub fn reload(&self) -> Value {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let file = running.file.clone();
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                let e = ConfigError {
                    file: file.clone(),
                    line: 0,
                    key: String::new(),
                    message: format!("cannot read the file: {e}; nothing was applied"),
                };
                return refused(&file, &[e]);
            }
        };
        let new = match Config::parse(&text, &file) {
            Ok(c) => c,
            Err(e) => return refused(&file, &[e]),
        };
        let changes = match cgnat_config::reload_plan_since(&self.started, &running, &new, &text) {
            Ok(c) => c,
            Err(errors) => return refused(&file, &errors),
        };
        let running_pool = {
            let v = self.pool.read().unwrap_or_else(|e| e.into_inner());
            (v.addrs.clone(), v.room)
        };
        let settings = match self.builder.settings(&new).and_then(|mut s| {
            // Running pool addresses keep their indexes: new ones are appended,
            // removed ones drain.
            s.nat
                .follow(&running_pool.0, running_pool.1)
                .map_err(|e| anyhow!("nat.pool: {e}"))?;
            Ok(s)
        }) {
            Ok(s) => s,
            Err(e) => {
                let e = e.to_string();
                let key = if e.starts_with("nat.pool:") {
                    "nat.pool"
                } else {
                    "nat"
                };
                let e = ConfigError {
                    file: file.clone(),
                    line: 0,
                    key: key.into(),
                    message: format!("{e}; nothing was applied"),
                };
                return refused(&file, &[e]);
            }
        };
        let list: Vec<Value> = changes
            .iter()
            .map(|c| json!({ "key": c.key, "from": c.from, "to": c.to }))
            .collect();
        if changes.is_empty() {
            return json!({ "applied": true, "file": file, "changes": list });
        }
        // Every worker takes the settings between two bursts; the ones replaced come
        // back to be dropped here, off the lcores.
        let mut late = Vec::new();
        for (w, tx) in self.to_workers.iter().enumerate() {
            if tx.send_timeout(settings.clone(), WORKER_WAIT).is_err() {
                late.push(w);
            }
        }
        let taken = self.to_workers.len() - late.len();
        let mut back = 0;
        while back < taken && self.replaced.recv_timeout(WORKER_WAIT).is_ok() {
            back += 1;
        }
        if settings.nat.pool != running_pool.0
            || changes.iter().any(|c| c.key.starts_with("nat.pool"))
        {
            let mut sorted = settings.nat.pool.clone();
            sorted.sort_unstable();
            let _ = self
                .to_control
                .send(cgnat_dataplane::pipeline::ControlSettings::Pool(sorted));
            let mut v = self.pool.write().unwrap_or_else(|e| e.into_inner());
            v.addrs = settings.nat.pool.clone();
            v.draining = settings.nat.pool_draining.clone();
        }
        if changes.iter().any(|c| c.key.starts_with("logging.")) {
            self.destinations.set(new.logging.clone());
        }
        for (cell, token) in self.tokens.iter().zip([&new.api.token, &new.metrics.token]) {
            *cell.write().unwrap_or_else(|e| e.into_inner()) = token.clone();
        }
        *self.running.lock().unwrap_or_else(|e| e.into_inner()) = new;
        let mut answer = json!({ "applied": true, "file": file, "changes": list });
        if !late.is_empty() || back < taken {
            // A worker stuck for seconds: it takes the settings when it polls again.
            answer["warning"] = json!(format!(
                "workers {late:?} did not take the settings within {} s and {} of {taken} \
                 did not confirm; they take them at their next poll",
                WORKER_WAIT.as_secs(),
                taken - back
            ));
        }
        answer
    }
}

/// Runs `reloader` on a plain thread until `stop`: a reload on each SIGHUP (`hup`,
/// its answer on stderr) and each request of the control API (answered to it).
pub(crate) fn spawn(
    reloader: Reloader,
    requests: Receiver<Request>,
    hup: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("cgnat-reload".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if hup.swap(false, Ordering::AcqRel) {
                    let a = reloader.reload();
                    eprintln!("cgnat: reload (SIGHUP): {}", summary(&a));
                }
                if let Ok(reply) = requests.recv_timeout(Duration::from_millis(50)) {
                    let a = reloader.reload();
                    eprintln!("cgnat: reload (control API): {}", summary(&a));
                    let _ = reply.send(a);
                }
            }
        })
}

/// One line for a reload's answer: what changed or what was refused.
pub(crate) fn summary(a: &Value) -> String {
    let list = |k: &str, f: &dyn Fn(&Value) -> String| -> String {
        a[k].as_array()
            .into_iter()
            .flatten()
            .map(f)
            .collect::<Vec<_>>()
            .join("; ")
    };
    if a["applied"] == true {
        let c = list("changes", &|c| {
            format!(
                "{} {} -> {}",
                c["key"].as_str().unwrap_or(""),
                c["from"].as_str().unwrap_or(""),
                c["to"].as_str().unwrap_or("")
            )
        });
        if c.is_empty() {
            "applied: nothing changed".into()
        } else {
            format!("applied: {c}")
        }
    } else {
        format!(
            "refused, nothing applied: {}",
            list("refused", &|e| e["text"].as_str().unwrap_or("").to_string())
        )
    }
}
