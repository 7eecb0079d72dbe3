//! The control API: HTTP and JSON on loopback by default, from a plain thread. Counters
//! and pool usage are read from the workers' counters; sessions and subscribers are
//! asked of each worker over a channel and answered between its bursts.
//!
//! GET /counters, /pool, /sessions?subscriber=IP&outside=IP[:PORT]&remote=IP[:PORT]&limit=N&cursor=C,
//! /subscribers/IP, /subscribers?top=N, /expectations, /workers, /config (the running
//! config, resolved); POST /reload (re-read the file, apply what changes live: see
//! `reload.rs`).
//!
//! `/sessions` is a page of at most [`MAX_PAGE`] sessions; `next` in the answer is the
//! cursor of the following page. Each worker is asked for a bounded piece at a time
//! ([`cgnat_dataplane::inspect::SLOTS_PER_ANSWER`] slots, at most
//! [`cgnat_dataplane::inspect::ROWS_PER_ANSWER`] sessions), one piece per poll, and
//! the JSON is made here, off the workers.

use crate::http::Response;
use crate::runtime::{summarize, WorkerLink};
use cgnat_dataplane::counters::{Counter, WorkerCounters};
use cgnat_dataplane::inspect::{Answer, Filter, Query, SubscriberLoad, BUSIEST_MAX};
use cgnat_ffi::Port;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A subscriber as `/subscribers/` names it: an IPv4 address, an IPv6 address (the
/// NAT64 subscriber whose prefix holds it) or an IPv6 prefix `ADDR/LEN` (the same, by
/// its first address; the subscriber's prefix must hold all of it).
fn subscriber_arg(s: &str) -> Result<(IpAddr, Option<u8>), String> {
    let bad =
        || format!("`{s}` is not an IPv4 address, an IPv6 address or an IPv6 prefix (ADDR/LEN)");
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().map_err(|_| bad())?;
    let len = match (addr, len) {
        (_, None) => None,
        (IpAddr::V6(_), Some(l)) => Some(l.parse().ok().filter(|l| *l <= 128).ok_or_else(bad)?),
        (IpAddr::V4(_), Some(_)) => return Err(bad()),
    };
    Ok((addr, len))
}

/// Most sessions one `/sessions` answer holds (larger limits are cut to it).
pub const MAX_PAGE: usize = 10_000;
/// Sessions per page when the request gives no limit.
const DEFAULT_PAGE: usize = 1000;
/// Time a reload may take to be started, and then to be answered.
const RELOAD_DEADLINE: Duration = Duration::from_secs(10);
/// Time a `/sessions` page may take to gather.
const PAGE_DEADLINE: Duration = Duration::from_secs(3);

/// Where a `/sessions` page starts: a worker, and a session slot of that worker.
type Cursor = (usize, u32);

/// Where a worker sends its answer.
type Reply = crossbeam::channel::Sender<Answer>;

/// What the API reads.
pub struct State {
    pub links: Vec<Arc<WorkerLink>>,
    pub queries: Vec<crossbeam::channel::Sender<(Query, Reply)>>,
    pub control: Arc<WorkerCounters>,
    pub ports: [Port; 2],
    pub pool_usage: Vec<Arc<Vec<Counter>>>,
    /// The pool by index, draining marks included (a reload changes it).
    pub pool_addrs: crate::reload::SharedPool,
    pub block_size: u16,
    /// Ports each pool address has for dynamic translation, the three protocols'
    /// port spaces together (what `ports_used` counts against).
    pub ports_per_address: u64,
    /// Each port's ownership mode, as in the summary.
    pub ownership: [&'static str; 2],
    /// The ports' VLAN sub-interfaces ([`cgnat_dataplane::vlan::labels`]).
    pub vlans: Vec<(String, String, usize)>,
    /// Refusals of the two HTTP servers (API, metrics), for `/counters`.
    pub http: [Arc<crate::http::Stats>; 2],
    /// The appliance is stopping: waiting for workers is pointless.
    pub stop: Arc<AtomicBool>,
    /// The running config (`/config`).
    pub running: crate::reload::Running,
    /// Reload requests (`POST /reload`).
    pub reload: crossbeam::channel::Sender<crate::reload::Request>,
    /// HA state sync, when `[ha]` is configured (`/ha`, `POST /ha/promote|demote`).
    pub ha: Option<Arc<crate::hasync::Shared>>,
}

fn endpoint(s: &str) -> Result<(Ipv4Addr, Option<u16>), String> {
    match s.split_once(':') {
        Some((a, p)) => Ok((
            a.parse()
                .map_err(|_| format!("`{a}` is not an IPv4 address"))?,
            Some(p.parse().map_err(|_| format!("`{p}` is not a port"))?),
        )),
        None => Ok((
            s.parse()
                .map_err(|_| format!("`{s}` is not an IPv4 address"))?,
            None,
        )),
    }
}

impl State {
    /// Waits for `rx` until `deadline`, giving up early if the appliance stops.
    fn wait(&self, rx: &crossbeam::channel::Receiver<Answer>, deadline: Instant) -> Option<Answer> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stop.load(Ordering::Relaxed) {
                return None;
            }
            match rx.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(a) => return Some(a),
                Err(crossbeam::channel::RecvTimeoutError::Timeout) => {}
                Err(_) => return None,
            }
        }
    }

    /// Queues `q` for worker `w` until `deadline`, giving up early if the appliance
    /// stops (a stopped worker no longer takes queries).
    fn send(&self, w: usize, q: Query, tx: Reply, deadline: Instant) -> bool {
        let mut msg = (q, tx);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stop.load(Ordering::Relaxed) {
                return false;
            }
            match self.queries[w].send_timeout(msg, left.min(Duration::from_millis(50))) {
                Ok(()) => return true,
                Err(crossbeam::channel::SendTimeoutError::Timeout(m)) => msg = m,
                Err(_) => return false,
            }
        }
    }

    /// Asks one worker.
    fn ask_one(&self, w: usize, q: Query, deadline: Instant) -> Option<Answer> {
        let (tx, rx) = crossbeam::channel::bounded(1);
        if !self.send(w, q, tx, deadline) {
            return None;
        }
        self.wait(&rx, deadline)
    }

    /// Asks every worker.
    fn ask(&self, q: &Query) -> Vec<Answer> {
        let (tx, rx) = crossbeam::channel::bounded(self.queries.len().max(1));
        let deadline = Instant::now() + Duration::from_secs(3);
        let asked = (0..self.queries.len())
            .filter(|&w| self.send(w, q.clone(), tx.clone(), deadline))
            .count();
        (0..asked)
            .filter_map(|_| self.wait(&rx, deadline))
            .collect()
    }

    /// The `n` subscribers with the most sessions over every worker, busiest first:
    /// each worker is asked a bounded piece of its subscriber table at a time.
    fn busiest(&self, n: usize) -> Result<Vec<SubscriberLoad>, (u16, String)> {
        let deadline = Instant::now() + PAGE_DEADLINE;
        let mut all = Vec::new();
        for w in 0..self.queries.len() {
            let mut from = Some(0);
            while let Some(f) = from {
                let Some(Answer::Busiest(mut rows, next)) =
                    self.ask_one(w, Query::Busiest(f, n), deadline)
                else {
                    return Err((503, format!("worker {w} did not answer in time")));
                };
                all.append(&mut rows);
                all.sort_by_key(SubscriberLoad::rank);
                all.truncate(n);
                from = next;
            }
        }
        Ok(all)
    }

    /// Each worker's counters, for rates (`cgnat top`): `tsc` is the time they were
    /// read, in cycles of `tsc_hz` (busy share: busy cycles over elapsed cycles).
    fn workers(&self) -> Value {
        let list: Vec<Value> = self
            .links
            .iter()
            .enumerate()
            .map(|(w, l)| {
                let c = &l.counters;
                json!({
                    "worker": w,
                    "rx": { "inside": c.rx[0].get(), "outside": c.rx[1].get() },
                    "tx": { "inside": c.tx[0].get(), "outside": c.tx[1].get() },
                    "handoff": { "sent": c.handoff_out.get(), "received": c.handoff_in.get() },
                    "busy_polls": c.busy_polls.get(),
                    "idle_polls": c.idle_polls.get(),
                    "busy_cycles": c.busy_cycles.get(),
                    "sessions_active": c.sessions_active.iter().map(Counter::get).sum::<u64>(),
                    "subscribers_active": c.subscribers_active.get(),
                    "dropped": c.drops.0.iter().map(Counter::get).sum::<u64>(),
                })
            })
            .collect();
        json!({ "tsc": cgnat_ffi::tsc(), "tsc_hz": cgnat_ffi::tsc_hz(), "workers": list })
    }

    /// A page of sessions from `cursor` (worker, slot): the sessions and the cursor
    /// of the next page, if any slot is left.
    fn sessions(
        &self,
        filter: &Filter,
        cursor: Cursor,
        limit: usize,
    ) -> Result<(Vec<Value>, Option<Cursor>), (u16, String)> {
        let deadline = Instant::now() + PAGE_DEADLINE;
        let (mut w, mut from) = cursor;
        let mut out = Vec::new();
        while w < self.queries.len() && out.len() < limit {
            let want = (limit - out.len()).min(cgnat_dataplane::inspect::ROWS_PER_ANSWER);
            let q = Query::Sessions(filter.clone(), from, want);
            let Some(Answer::Sessions(rows, next)) = self.ask_one(w, q, deadline) else {
                return Err((
                    503,
                    format!("worker {w} did not answer in time; ask again with a smaller limit"),
                ));
            };
            out.extend(
                rows.iter()
                    .map(|r| serde_json::to_value(r.info()).unwrap_or(Value::Null)),
            );
            match next {
                Some(n) => from = n,
                None => (w, from) = (w + 1, 0),
            }
        }
        Ok((out, (w < self.queries.len()).then_some((w, from))))
    }

    /// Asks the reload thread to reload and waits for its answer.
    fn reload(&self) -> Result<Value, (u16, String)> {
        let (tx, rx) = crossbeam::channel::bounded(1);
        let busy = || (503, "the reload thread did not answer in time".to_string());
        self.reload
            .send_timeout(tx, RELOAD_DEADLINE)
            .map_err(|_| busy())?;
        rx.recv_timeout(RELOAD_DEADLINE).map_err(|_| busy())
    }

    /// `GET /ha`: the sync's state; `POST /ha/promote|demote`: a role change (the
    /// sync thread makes it within a millisecond; the answer says the role asked).
    fn ha_route(&self, path: &str) -> Result<Value, (u16, String)> {
        let ha = self
            .ha
            .as_ref()
            .ok_or((404, "HA is not configured ([ha])".to_string()))?;
        let want = match path {
            "/ha/promote" => crate::hasync::WANT_ACTIVE,
            "/ha/demote" => crate::hasync::WANT_STANDBY,
            _ => return Ok(ha.status()),
        };
        ha.wanted.store(want, Ordering::Relaxed);
        // Wait (briefly) for the thread to take it, so that the answer is the new role.
        let deadline = Instant::now() + Duration::from_secs(2);
        while ha.wanted.load(Ordering::Relaxed) != crate::hasync::WANT_NONE
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(ha.status())
    }

    fn route(&self, method: &str, path: &str, query: &str) -> Result<Value, (u16, String)> {
        let post = matches!(path, "/reload" | "/ha/promote" | "/ha/demote");
        if post != (method == "POST") {
            return Err((
                405,
                "POST /reload, /ha/promote, /ha/demote; every other endpoint is GET".into(),
            ));
        }
        let params: Vec<(&str, &str)> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let get = |k: &str| params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
        let bad = |e: String| (400, e);
        match path {
            "/counters" => {
                let stats = [self.ports[0].stats(), self.ports[1].stats()];
                let mut v = summarize(
                    &self.links,
                    &self.control,
                    &stats,
                    self.ownership,
                    &self.vlans,
                );
                v["http_refused"] = json!({
                    "api": crate::http::refusals_json(&self.http[0]),
                    "metrics": crate::http::refusals_json(&self.http[1]),
                });
                Ok(v)
            }
            "/reload" => self.reload(),
            "/ha" | "/ha/promote" | "/ha/demote" => self.ha_route(path),
            "/config" => {
                // The tokens are not for whoever reads the config.
                let mut c = self
                    .running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                for t in [&mut c.api.token, &mut c.metrics.token] {
                    if t.is_some() {
                        *t = Some("(set, not shown)".into());
                    }
                }
                Ok(json!({ "file": c.file, "toml": c.resolved_toml() }))
            }
            "/pool" => {
                let view = self.pool_addrs.read().unwrap_or_else(|e| e.into_inner());
                let addrs: Vec<Value> = view
                    .entries()
                    .map(|(i, a, draining)| {
                        let used = crate::metrics::ports_used(&self.pool_usage, i);
                        // A draining address with no port left in use (quarantine
                        // included) has no mapping left: released.
                        let state = match (draining, used) {
                            (false, _) => "active",
                            (true, 0) => "released",
                            (true, _) => "draining",
                        };
                        json!({ "address": a.to_string(), "ports_used": used,
                                "ports_total": self.ports_per_address,
                                "draining": draining, "state": state })
                    })
                    .collect();
                Ok(json!({ "block_size": self.block_size, "addresses": addrs }))
            }
            "/sessions" => {
                let filter = Filter {
                    subscriber: get("subscriber")
                        .map(|s| {
                            s.parse().map_err(|_| {
                                format!("subscriber `{s}` is not an IPv4 or IPv6 address")
                            })
                        })
                        .transpose()
                        .map_err(bad)?,
                    outside: get("outside").map(endpoint).transpose().map_err(bad)?,
                    remote: get("remote").map(endpoint).transpose().map_err(bad)?,
                };
                let limit = get("limit")
                    .map(|l| {
                        l.parse::<usize>()
                            .map_err(|_| format!("limit `{l}` is not a number"))
                    })
                    .transpose()
                    .map_err(bad)?
                    .unwrap_or(DEFAULT_PAGE)
                    .min(MAX_PAGE);
                let cursor = match get("cursor") {
                    None => (0, 0),
                    Some(c) => c
                        .split_once('.')
                        .and_then(|(w, i)| Some((w.parse().ok()?, i.parse().ok()?)))
                        .ok_or_else(|| {
                            bad(format!(
                                "cursor `{c}` is not one of this API's (WORKER.SLOT)"
                            ))
                        })?,
                };
                let (all, next) = self.sessions(&filter, cursor, limit)?;
                Ok(json!({
                    "sessions": all,
                    "truncated": next.is_some(),
                    "limit": limit,
                    "next": next.map(|(w, i)| format!("{w}.{i}")),
                }))
            }
            "/expectations" => {
                let limit = get("limit").and_then(|l| l.parse().ok()).unwrap_or(1000);
                let mut all = Vec::new();
                for ans in self.ask(&Query::Expectations(limit)) {
                    if let Answer::Expectations(mut e) = ans {
                        all.append(&mut e);
                    }
                }
                Ok(json!({ "expectations": all }))
            }
            "/workers" => Ok(self.workers()),
            "/subscribers" => {
                let n = match get("top") {
                    None => 10,
                    Some(t) => t
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=BUSIEST_MAX).contains(n))
                        .ok_or_else(|| {
                            bad(format!("top `{t}` is not a number from 1 to {BUSIEST_MAX}"))
                        })?,
                };
                Ok(json!({ "busiest": self.busiest(n)? }))
            }
            p if p.starts_with("/subscribers/") => {
                let arg = &p["/subscribers/".len()..];
                let (a, len) = subscriber_arg(arg).map_err(bad)?;
                for ans in self.ask(&Query::Subscriber(a)) {
                    if let Answer::Subscriber(Some(s)) = ans {
                        if let (Some(want), Some(have)) = (len, s.prefix_len) {
                            if want < have {
                                return Err(bad(format!(
                                    "`{arg}` is wider than one subscriber (nat64.subscriber_prefix_len is {have})"
                                )));
                            }
                        }
                        return Ok(serde_json::to_value(s).unwrap_or(Value::Null));
                    }
                }
                Err((404, format!("subscriber {arg} has no state")))
            }
            _ => Err((
                404,
                "endpoints: /counters /pool /sessions /subscribers/IP /subscribers?top=N \
                 /expectations /workers /config, POST /reload"
                    .into(),
            )),
        }
    }
}

/// Serves the API from `server` on a plain thread until `stop` is set.
pub fn serve(
    server: crate::http::Server,
    st: State,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    crate::http::serve(server, stop, move |method, path, query| {
        let (code, body) = match st.route(method, path, query) {
            Ok(v) => (200, v),
            Err((c, e)) => (c, json!({ "error": e })),
        };
        Response {
            code,
            content_type: "application/json",
            body: body.to_string(),
        }
    })
}
