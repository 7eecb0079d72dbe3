//! A small HTTP/1.1 server for the plain threads (metrics, control API): one GET (or
//! body-less POST) per connection. Enough for Prometheus and `cgnat show`, and nothing on the dataplane
//! depends on it.
//!
//! It is built for hostile clients (docs/security.md, "Control surfaces"): the
//! listening socket is bound before anything else starts ([`bind`]); each connection
//! has a thread of its own, up to [`MAX_CONNECTIONS`] at once, and at most
//! [`PER_SOURCE`] from one address beyond this host (more are answered 503 and closed,
//! counted); a request head must arrive whole within [`READ_DEADLINE`] and
//! fit in [`HEAD_LIMIT`] bytes (431 otherwise); an answer must be taken within
//! [`WRITE_DEADLINE`]; with a token, a request without `Authorization: Bearer TOKEN`
//! gets 401. Stopping never waits for a client: the accept thread returns within
//! [`POLL`], connection threads are left to the process exit, and [`Gate::close`]
//! makes sure none is still reading DPDK state when the ports and EAL go away.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Connections served at once per server; more are refused (503).
pub const MAX_CONNECTIONS: usize = 64;
/// Connections served at once from one address other than this host's own: one
/// remote host cannot take every slot (local clients, which could stop the process
/// anyway, are not limited beyond [`MAX_CONNECTIONS`]).
pub const PER_SOURCE: usize = 8;
/// Largest request head (request line and headers), in bytes; more is refused (431).
pub const HEAD_LIMIT: usize = 8192;
/// Time a client has to send its whole request head.
pub const READ_DEADLINE: Duration = Duration::from_secs(2);
/// Time a client has to take the whole answer.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(5);
/// How often the accept loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// An answer.
pub struct Response {
    /// Status code.
    pub code: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

impl Response {
    fn text(code: u16, body: &str) -> Response {
        Response {
            code,
            content_type: "text/plain",
            body: format!("{body}\n"),
        }
    }
}

/// What a server refused or cut short, by reason (exported by `/metrics` and in
/// `/counters`).
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections refused because [`MAX_CONNECTIONS`] were open.
    pub busy: AtomicU64,
    /// Connections refused because [`PER_SOURCE`] were open from the same address.
    pub per_source: AtomicU64,
    /// Requests whose head exceeded [`HEAD_LIMIT`].
    pub too_large: AtomicU64,
    /// Connections closed because the request head did not arrive in time, or the
    /// answer was not taken in time.
    pub timed_out: AtomicU64,
    /// Requests without the right token.
    pub unauthorized: AtomicU64,
    /// Connections open now.
    pub open: AtomicUsize,
}

impl Stats {
    /// (reason, count) pairs, in a stable order.
    pub fn refusals(&self) -> [(&'static str, u64); 5] {
        [
            ("busy", self.busy.load(Ordering::Relaxed)),
            ("per_source", self.per_source.load(Ordering::Relaxed)),
            ("too_large", self.too_large.load(Ordering::Relaxed)),
            ("timed_out", self.timed_out.load(Ordering::Relaxed)),
            ("unauthorized", self.unauthorized.load(Ordering::Relaxed)),
        ]
    }
}

/// Connections open per remote address (not loopback), for [`PER_SOURCE`]. Touched
/// twice per connection, by the accept thread and the connection's own thread; holds
/// at most [`MAX_CONNECTIONS`] addresses.
#[derive(Debug, Default)]
struct Sources(Mutex<HashMap<IpAddr, usize>>);

impl Sources {
    /// Counts a connection from `ip` if it may have one more.
    fn admit(&self, ip: IpAddr) -> bool {
        if ip.is_loopback() {
            return true;
        }
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= PER_SOURCE {
            return false;
        }
        *n += 1;
        true
    }

    /// A connection from `ip` ended.
    fn release(&self, ip: IpAddr) {
        if ip.is_loopback() {
            return;
        }
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&ip);
            }
        }
    }
}

/// Lets handlers read DPDK state (ports' statistics) only while it exists: handlers
/// run under the read side; [`Gate::close`] waits for those running and turns later
/// ones away (503).
#[derive(Debug)]
pub struct Gate(RwLock<bool>);

impl Default for Gate {
    fn default() -> Self {
        Gate(RwLock::new(true))
    }
}

impl Gate {
    /// Waits for the handlers running now; none runs after.
    pub fn close(&self) {
        let mut open = self.0.write().unwrap_or_else(|e| e.into_inner());
        *open = false;
    }
}

/// A server's bearer token, shared with whoever may change it.
pub type Token = Arc<RwLock<Option<String>>>;

/// A server's settings.
pub struct Server {
    /// Thread name.
    pub name: &'static str,
    /// The listening socket ([`bind`]).
    pub listener: TcpListener,
    /// Required bearer token, if any (a reload may change it: read per request).
    pub token: Token,
    /// Refusals.
    pub stats: Arc<Stats>,
    /// See [`Gate`].
    pub gate: Arc<Gate>,
}

/// Binds `listen` for the server configured by `key` (e.g. `api.listen`); the error
/// names the key.
pub fn bind(listen: SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    let l = TcpListener::bind(listen).map_err(|e| {
        anyhow::anyhow!("{key} {listen}: cannot listen: {e} (is another process using it?)")
    })?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// True when `listen` can be reached only from this host.
pub fn is_loopback(listen: SocketAddr) -> bool {
    listen.ip().is_loopback()
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Equal in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

enum Head {
    Complete(Vec<u8>),
    TooLarge,
    TimedOut,
    Gone,
}

/// Reads up to the end of the request head, within the deadline and the size limit.
fn read_head(s: &mut TcpStream) -> Head {
    let deadline = Instant::now() + READ_DEADLINE;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_read_timeout(Some(left)).is_err() {
            return Head::TimedOut;
        }
        match s.read(&mut chunk) {
            Ok(0) => return Head::Gone,
            Ok(n) => {
                let from = head.len().saturating_sub(3);
                head.extend_from_slice(&chunk[..n]);
                if let Some(end) = head[from..].windows(4).position(|w| w == b"\r\n\r\n") {
                    head.truncate(from + end);
                    return Head::Complete(head);
                }
                if head.len() > HEAD_LIMIT {
                    return Head::TooLarge;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Head::TimedOut
            }
            Err(_) => return Head::Gone,
        }
    }
}

/// Writes `data` within [`WRITE_DEADLINE`]; false if the client did not take it.
fn write_all(s: &mut TcpStream, data: &[u8]) -> bool {
    let deadline = Instant::now() + WRITE_DEADLINE;
    let mut sent = 0;
    while sent < data.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || s.set_write_timeout(Some(left)).is_err() {
            return false;
        }
        match s.write(&data[sent..]) {
            Ok(0) => return false,
            Ok(n) => sent += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

fn send(s: &mut TcpStream, resp: &Response, extra: &str) -> bool {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        resp.code,
        reason(resp.code),
        resp.content_type,
        resp.body.len(),
    );
    write_all(s, head.as_bytes()) && write_all(s, resp.body.as_bytes())
}

/// Closes after a refusal without resetting the connection (which could destroy
/// the answer before the client reads it): no more writes, and whatever the client
/// still sends is read and dropped, a bounded amount for a bounded time.
fn linger(s: &mut TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
    let deadline = Instant::now() + Duration::from_millis(500);
    let mut sink = [0u8; 4096];
    let mut left = 256 * 1024usize;
    while left > 0 {
        let t = deadline.saturating_duration_since(Instant::now());
        if t.is_zero() || s.set_read_timeout(Some(t)).is_err() {
            return;
        }
        match s.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// A handler: method (`GET` or `POST`), path, query.
type Handler = dyn Fn(&str, &str, &str) -> Response + Send + Sync;

fn answer(
    mut s: TcpStream,
    token: &RwLock<Option<String>>,
    stats: &Stats,
    gate: &Gate,
    h: &Handler,
) {
    let head = match read_head(&mut s) {
        Head::Complete(h) => h,
        Head::TooLarge => {
            stats.too_large.fetch_add(1, Ordering::Relaxed);
            let r = Response::text(431, &format!("request head over {HEAD_LIMIT} bytes"));
            send(&mut s, &r, "");
            linger(&mut s);
            return;
        }
        Head::TimedOut => {
            stats.timed_out.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Head::Gone => return,
    };
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("");
    let token = token.read().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(t) = token {
        let given = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| v.trim().strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|g| same(g.as_bytes(), t.as_bytes())) {
            stats.unauthorized.fetch_add(1, Ordering::Relaxed);
            let r = Response::text(401, "this server needs `Authorization: Bearer TOKEN`");
            send(&mut s, &r, "WWW-Authenticate: Bearer\r\n");
            return;
        }
    }
    let method = line.split(' ').next().unwrap_or("");
    let resp = match line.strip_prefix("GET ").or(line.strip_prefix("POST ")) {
        Some(rest) => {
            let target = rest.split_whitespace().next().unwrap_or("/");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let open = gate.0.read().unwrap_or_else(|e| e.into_inner());
            if *open {
                h(method, path, query)
            } else {
                Response::text(503, "stopping")
            }
        }
        None => Response::text(405, "only GET and POST"),
    };
    if !send(&mut s, &resp, "") {
        stats.timed_out.fetch_add(1, Ordering::Relaxed);
    }
}

/// Serves `handler(path, query)` from a thread named after the server until `stop`;
/// each connection gets a thread of its own, which the returned handle does not wait
/// for.
pub fn serve(
    server: Server,
    stop: Arc<AtomicBool>,
    handler: impl Fn(&str, &str, &str) -> Response + Send + Sync + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let Server {
        name,
        listener,
        token,
        stats,
        gate,
    } = server;
    let handler: Arc<Handler> = Arc::new(handler);
    let sources = Arc::new(Sources::default());
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok((mut s, peer)) = listener.accept() else {
                    std::thread::sleep(POLL);
                    continue;
                };
                let _ = s.set_nonblocking(false);
                let refused = if stats.open.load(Ordering::Acquire) >= MAX_CONNECTIONS {
                    Some(&stats.busy)
                } else if !sources.admit(peer.ip()) {
                    Some(&stats.per_source)
                } else {
                    None
                };
                if let Some(count) = refused {
                    count.fetch_add(1, Ordering::Relaxed);
                    let _ = s.set_write_timeout(Some(Duration::from_millis(100)));
                    let _ = s.write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                }
                stats.open.fetch_add(1, Ordering::AcqRel);
                let (h, t, st, g) = (handler.clone(), token.clone(), stats.clone(), gate.clone());
                let src = sources.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("{name}-conn"))
                    .stack_size(256 * 1024)
                    .spawn(move || {
                        answer(s, &t, &st, &g, h.as_ref());
                        src.release(peer.ip());
                        st.open.fetch_sub(1, Ordering::AcqRel);
                    });
                if spawned.is_err() {
                    sources.release(peer.ip());
                    stats.open.fetch_sub(1, Ordering::AcqRel);
                    stats.busy.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
}

/// A server's refusals as JSON, by reason.
pub fn refusals_json(stats: &Stats) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, v) in stats.refusals() {
        m.insert(k.into(), v.into());
    }
    serde_json::Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_remote_address_gets_at_most_its_share_and_this_host_is_not_limited() {
        let src = Sources::default();
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        let b: IpAddr = "192.0.2.8".parse().unwrap();
        for _ in 0..PER_SOURCE {
            assert!(src.admit(a));
        }
        assert!(!src.admit(a), "past its share");
        assert!(src.admit(b), "another address has its own");
        src.release(a);
        assert!(src.admit(a), "a slot freed is its own again");
        for ip in ["127.0.0.1", "::1"] {
            let l: IpAddr = ip.parse().unwrap();
            assert!((0..PER_SOURCE * 4).all(|_| src.admit(l)));
        }
        for _ in 0..PER_SOURCE {
            src.release(a);
        }
        src.release(b);
        let m = src.0.lock().unwrap();
        assert!(
            m.is_empty(),
            "no address is kept once its connections ended: {m:?}"
        );
    }
}
