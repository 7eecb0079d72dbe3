//! The control API: HTTP and JSON on loopback by default, from a plain thread. Counters
//! and pool usage are read from the workers' counters; sessions and subscribers are
//! asked of each worker over a channel and answered between its bursts.
//!
//! GET /counters, /pool, /sessions?subscriber=IP&outside=IP[:PORT]&remote=IP[:PORT]&limit=N,
//! /subscribers/IP.

use crate::http::Response;
use crate::runtime::{summarize, WorkerLink};
use cgnat_dataplane::counters::{Counter, WorkerCounters};
use cgnat_dataplane::inspect::{Answer, Filter, Query};
use cgnat_ffi::Port;
use serde_json::{json, Value};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// What the API reads.
pub struct State {
    pub links: Vec<Arc<WorkerLink>>,
    pub queries: Vec<crossbeam::channel::Sender<(Query, crossbeam::channel::Sender<Answer>)>>,
    pub control: Arc<WorkerCounters>,
    pub ports: [Port; 2],
    pub pool_usage: Vec<Arc<Vec<Counter>>>,
    pub pool_addrs: Vec<Ipv4Addr>,
    pub block_size: u16,
    /// Each port's ownership mode, as in the summary.
    pub ownership: [&'static str; 2],
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
    fn ask(&self, q: &Query) -> Vec<Answer> {
        let (tx, rx) = crossbeam::channel::bounded(self.queries.len().max(1));
        let mut asked = 0;
        for s in &self.queries {
            if s.send_timeout((q.clone(), tx.clone()), Duration::from_secs(1))
                .is_ok()
            {
                asked += 1;
            }
        }
        (0..asked)
            .filter_map(|_| rx.recv_timeout(Duration::from_secs(3)).ok())
            .collect()
    }

    fn route(&self, path: &str, query: &str) -> Result<Value, (u16, String)> {
        let params: Vec<(&str, &str)> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let get = |k: &str| params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
        let bad = |e: String| (400, e);
        match path {
            "/counters" => {
                let stats = [self.ports[0].stats(), self.ports[1].stats()];
                Ok(summarize(
                    &self.links,
                    &self.control,
                    &stats,
                    self.ownership,
                ))
            }
            "/pool" => {
                let addrs: Vec<Value> = self
                    .pool_addrs
                    .iter()
                    .enumerate()
                    .map(|(i, a)| {
                        let used = crate::metrics::ports_used(&self.pool_usage, i);
                        json!({ "address": a.to_string(), "ports_used": used })
                    })
                    .collect();
                Ok(json!({ "block_size": self.block_size, "addresses": addrs }))
            }
            "/sessions" => {
                let filter = Filter {
                    subscriber: get("subscriber")
                        .map(|s| {
                            s.parse()
                                .map_err(|_| format!("subscriber `{s}` is not an IPv4 address"))
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
                    .unwrap_or(1000);
                let mut all = Vec::new();
                let mut truncated = false;
                for a in self.ask(&Query::Sessions(filter, limit)) {
                    if let Answer::Sessions(mut s, more) = a {
                        all.append(&mut s);
                        truncated |= more;
                    }
                }
                truncated |= all.len() > limit;
                all.truncate(limit);
                Ok(json!({ "sessions": all, "truncated": truncated }))
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
            p if p.starts_with("/subscribers/") => {
                let a: Ipv4Addr = p["/subscribers/".len()..]
                    .parse()
                    .map_err(|_| bad(format!("`{p}`: not an IPv4 address")))?;
                for ans in self.ask(&Query::Subscriber(a)) {
                    if let Answer::Subscriber(Some(s)) = ans {
                        return Ok(serde_json::to_value(s).unwrap_or(Value::Null));
                    }
                }
                Err((404, format!("subscriber {a} has no state")))
            }
            _ => Err((
                404,
                "endpoints: /counters /pool /sessions /subscribers/IP".into(),
            )),
        }
    }
}

/// Serves the API on `listen` from a plain thread until `stop` is set.
pub fn serve(
    listen: SocketAddr,
    st: State,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    crate::http::serve("cgnat-api", listen, stop, move |path, query| {
        let (code, body) = match st.route(path, query) {
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
