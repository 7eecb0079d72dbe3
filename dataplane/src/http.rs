//! A minimal HTTP/1.1 server for the plain threads (metrics, control API): one request
//! per connection, GET only, answered in order. Enough for Prometheus and `cgnat show`,
//! and nothing on the dataplane depends on it.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// An answer.
pub struct Response {
    /// Status code.
    pub code: u16,
    /// Content type.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Method Not Allowed",
    }
}

fn answer(mut s: TcpStream, handler: &dyn Fn(&str, &str) -> Response) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    let mut r = BufReader::new(&s);
    if r.read_line(&mut line).is_err() {
        return;
    }
    let mut h = String::new();
    while r.read_line(&mut h).map(|n| n > 2).unwrap_or(false) {
        h.clear();
    }
    let resp = if line.starts_with("GET ") {
        let target = line.split_whitespace().nth(1).unwrap_or("/");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        handler(path, query)
    } else {
        Response {
            code: 405,
            content_type: "text/plain",
            body: "only GET\n".into(),
        }
    };
    let _ = write!(
        s,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        resp.code,
        reason(resp.code),
        resp.content_type,
        resp.body.len(),
        resp.body
    );
}

/// Serves `handler(path, query)` on `listen` from a thread named `name` until `stop`.
pub fn serve(
    name: &str,
    listen: SocketAddr,
    stop: Arc<AtomicBool>,
    handler: impl Fn(&str, &str) -> Response + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let l = TcpListener::bind(listen)?;
    l.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        let _ = s.set_nonblocking(false);
                        answer(s, &handler);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        })
}
