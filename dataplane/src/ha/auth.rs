//! Authentication of sync messages with a shared key (HMAC-SHA256 over the header and
//! the records), and refusal of replays: a sliding window of sequence numbers per
//! sender epoch, as IPsec's anti-replay window (RFC 4303 3.4.3).

use super::wire::MAC_LEN;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Shortest key accepted (bytes).
pub const MIN_KEY: usize = 16;

/// The shared key, ready to sign and verify.
#[derive(Clone)]
pub struct Auth {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth(..)")
    }
}

impl Auth {
    /// From the key's bytes; refused below [`MIN_KEY`] bytes.
    pub fn new(key: &[u8]) -> Result<Auth, String> {
        if key.len() < MIN_KEY {
            return Err(format!(
                "the HA key has {} bytes; at least {MIN_KEY} are needed",
                key.len()
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(key).map_err(|e| e.to_string())?;
        Ok(Auth { mac })
    }

    /// Reads a key file: its content, without trailing white space, is the key.
    pub fn from_file(path: &std::path::Path) -> Result<Auth, String> {
        let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let end = raw
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        Auth::new(&raw[..end]).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The tag of `data`.
    pub fn sign(&self, data: &[u8]) -> [u8; MAC_LEN] {
        let mut m = self.mac.clone();
        m.update(data);
        m.finalize().into_bytes().into()
    }

    /// Whether `tag` is the tag of `data` (compared in constant time).
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        let mut m = self.mac.clone();
        m.update(data);
        m.verify_slice(tag).is_ok()
    }
}

/// Sequence numbers remembered below the highest one.
pub const WINDOW: u64 = 64;

/// What [`ReplayGuard::check`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fresh {
    /// The next one expected, or late but not seen before.
    InOrder,
    /// Newer than the next one expected: this many were skipped (lost, or reordered
    /// beyond the window).
    Gap(u64),
    /// The first message of a new epoch of the sender (it started again).
    NewEpoch,
}

/// Replay refusal for one sender: its epoch, the highest sequence number received in
/// it, and which of the [`WINDOW`] below were received.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReplayGuard {
    epoch: u32,
    top: u64,
    seen: u64,
    started: bool,
}

impl ReplayGuard {
    /// Whether (`epoch`, `seq`) is fresh, without recording it.
    pub fn check(&self, epoch: u32, seq: u64) -> Option<Fresh> {
        if !self.started || epoch > self.epoch {
            return Some(Fresh::NewEpoch);
        }
        if epoch < self.epoch {
            return None;
        }
        if seq > self.top {
            let skipped = seq - self.top - 1;
            return Some(if skipped == 0 {
                Fresh::InOrder
            } else {
                Fresh::Gap(skipped)
            });
        }
        let back = self.top - seq;
        if back >= WINDOW || self.seen & (1 << back) != 0 {
            return None;
        }
        Some(Fresh::InOrder)
    }

    /// Records (`epoch`, `seq`) as received (after [`ReplayGuard::check`] said fresh
    /// and the message was authenticated and applied).
    pub fn accept(&mut self, epoch: u32, seq: u64) {
        if !self.started || epoch > self.epoch {
            *self = ReplayGuard {
                epoch,
                top: seq,
                seen: 1,
                started: true,
            };
            return;
        }
        if seq > self.top {
            let shift = seq - self.top;
            self.seen = if shift >= WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.top = seq;
        } else {
            self.seen |= 1 << (self.top - seq);
        }
    }

    /// The epoch and highest sequence number received.
    pub fn position(&self) -> Option<(u32, u64)> {
        self.started.then_some((self.epoch, self.top))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_verifies_only_with_the_same_key_and_data() {
        let a = Auth::new(b"0123456789abcdef").unwrap();
        let b = Auth::new(b"0123456789abcdeg").unwrap();
        let t = a.sign(b"hello");
        assert!(a.verify(b"hello", &t));
        assert!(!a.verify(b"hellp", &t));
        assert!(!b.verify(b"hello", &t));
        assert!(!a.verify(b"hello", &t[..31]));
        assert!(Auth::new(b"short").is_err());
    }

    #[test]
    fn the_window_refuses_repeats_and_old_ones_and_reports_gaps() {
        let mut g = ReplayGuard::default();
        assert_eq!(g.check(5, 10), Some(Fresh::NewEpoch));
        g.accept(5, 10);
        assert_eq!(g.check(5, 10), None);
        assert_eq!(g.check(5, 11), Some(Fresh::InOrder));
        g.accept(5, 11);
        assert_eq!(g.check(5, 14), Some(Fresh::Gap(2)));
        g.accept(5, 14);
        // Late but unseen: accepted once.
        assert_eq!(g.check(5, 12), Some(Fresh::InOrder));
        g.accept(5, 12);
        assert_eq!(g.check(5, 12), None);
        assert_eq!(g.check(5, 11), None);
        // An older epoch is a replay; a newer one starts again.
        assert_eq!(g.check(4, 100), None);
        g.accept(5, 14 + WINDOW);
        assert_eq!(g.check(5, 14), None);
        assert_eq!(g.check(6, 0), Some(Fresh::NewEpoch));
        g.accept(6, 0);
        assert_eq!(g.position(), Some((6, 0)));
        assert_eq!(g.check(5, 1000), None);
    }
}
