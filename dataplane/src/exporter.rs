//! The NAT event exporter: a plain thread that drains the workers' event rings and
//! sends IPFIX messages (and syslog lines for port blocks) over UDP. Workers never
//! wait for it: a full ring drops events, counted. Its destinations change live
//! ([`Destinations::set`], a reload): it takes them up within a poll.

use cgnat_config::Logging;
use cgnat_dataplane::log::{event, syslog_line, Encoder, LogEvent};
use cgnat_dataplane::wire::rfc6052::Prefix;
use cgnat_ffi::MsgRing;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn rfc3339(ms: u64) -> String {
    // UTC, from days since the epoch (civil-from-days, Howard Hinnant's algorithm).
    let secs = ms / 1000;
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

/// Where events go, as the last reload left it.
pub struct Destinations {
    generation: AtomicU64,
    logging: Mutex<Logging>,
}

impl Destinations {
    /// The destinations of `logging`.
    pub fn new(logging: Logging) -> Destinations {
        Destinations {
            generation: AtomicU64::new(0),
            logging: Mutex::new(logging),
        }
    }

    /// Sends events to `logging` from now on.
    pub fn set(&self, logging: Logging) {
        *self.logging.lock().unwrap_or_else(|e| e.into_inner()) = logging;
        self.generation.fetch_add(1, Ordering::Release);
    }

    fn get(&self) -> Logging {
        self.logging
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Runs until `stop`, then drains what is left and returns. It runs with no
/// destination too (events are then not asked for): a reload may add one.
/// `nat64`: the NAT64 prefix (restart-only), under which NAT64 session records name
/// their destination.
pub fn spawn(
    dest: Arc<Destinations>,
    rings: Vec<Arc<MsgRing<LogEvent>>>,
    nat64: Option<Prefix>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let sock = UdpSocket::bind("0.0.0.0:0")?;
    let hostname = std::fs::read_to_string("/etc/hostname")
        .map_or_else(|_| "cgnat".to_string(), |h| h.trim().to_string());
    std::thread::Builder::new()
        .name("cgnat-ipfix".into())
        .spawn(move || {
            let mut seen = u64::MAX;
            let (mut ipfix, mut syslog, mut enc) = (None, None, None);
            let mut refresh = Duration::from_secs(60);
            let mut last_templates: Option<Instant> = None;
            let mut buf = vec![LogEvent::default(); 256];
            loop {
                let stopping = stop.load(Ordering::Acquire);
                let g = dest.generation.load(Ordering::Acquire);
                if g != seen {
                    // New destinations; a new collector gets a new encoder (its
                    // sequence numbers start again) and templates first.
                    seen = g;
                    let l = dest.get();
                    if l.ipfix != ipfix {
                        enc = l.ipfix.as_ref().map(|i: &cgnat_config::Ipfix| {
                            Encoder::new(i.domain_id, i.destinations).with_nat64(nat64)
                        });
                        refresh = Duration::from_secs(u64::from(
                            l.ipfix.as_ref().map_or(60, |i| i.template_refresh_secs),
                        ));
                        last_templates = None;
                    }
                    (ipfix, syslog) = (l.ipfix, l.syslog);
                }
                if let (Some(i), Some(e)) = (&ipfix, &enc) {
                    if last_templates.is_none_or(|t| t.elapsed() >= refresh) {
                        let _ = sock.send_to(&e.templates((now_ms() / 1000) as u32), i.collector);
                        last_templates = Some(Instant::now());
                    }
                }
                let mut got = 0;
                for r in &rings {
                    let n = r.dequeue_burst(&mut buf);
                    got += n;
                    if n == 0 {
                        continue;
                    }
                    let ms = now_ms();
                    if let (Some(i), Some(e)) = (&ipfix, enc.as_mut()) {
                        for m in e.data(&buf[..n], ms) {
                            let _ = sock.send_to(&m, i.collector);
                        }
                    }
                    if let Some(s) = &syslog {
                        for ev in &buf[..n] {
                            // Blocks, ALG policy refusals; and the sessions of the
                            // address-only protocols, which have no block
                            // (`Policy::other_sessions`).
                            let other = cgnat_dataplane::nat::portless(ev.proto)
                                && matches!(ev.kind, event::SESSION_CREATE | event::SESSION_DELETE);
                            if other
                                || matches!(
                                    ev.kind,
                                    event::PORT_BLOCK_ALLOC
                                        | event::PORT_BLOCK_FREE
                                        | event::ALG_POLICY
                                )
                            {
                                let _ = sock.send_to(
                                    syslog_line(ev, &hostname, &rfc3339(ms)).as_bytes(),
                                    s.server,
                                );
                            }
                        }
                    }
                }
                if got == 0 {
                    if stopping {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(1_764_000_000_123),
            "2025-11-24T16:00:00.123Z"
        );
    }
}
