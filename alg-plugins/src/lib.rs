//! The ALGs: one module per protocol, and the registry the dataplane builds on. An
//! ALG here is parsers and decisions over byte strings; it owns no packets and no
//! tables, so it is tested (and fuzzed) on bytes alone.
//!
//! The ALG contract of docs/design.md (section 6: a hook that sees a control message and
//! may mangle it, expect a connection and allocate a port, answering accept, drop or
//! need more) is split along who owns what in the dataplane:
//! - *plan* (on the worker that owns the subscriber and its ports): read a control
//!   message and say which inside endpoints it announces and what they need (an
//!   expectation of a class, an RTP/RTCP pair, a registration, the end of a call):
//!   `ftp::classify`/`parse_*`, `sip::plan`, `rtsp::plan`;
//! - *rewrite* (on the control lcore, which sees every packet of the session in order):
//!   given the translations the worker reserved, the edits (offset, length,
//!   replacement) of the message, Content-Length included: `sip::rewrite`,
//!   `rtsp::rewrite`, the FTP formatters, `rtcp::rewrite_cname`;
//! - *need more*: the framing (`text::parse`, `ftp::next_line`) says when a message is
//!   not complete yet, and the dataplane holds the segment rather than letting it
//!   through untranslated.
//!
//! [`PLUGINS`] lists each ALG's name, the session id the dataplane tags its sessions
//! with, its transport protocols and default ports, whether it is on by default
//! (FTP only: RFC 4787 REQ-10, RFC 5382 REQ-6), and its expectation classes.
#![forbid(unsafe_code)]

pub mod ftp;
pub mod rtcp;
pub mod rtsp;
pub mod sip;
pub mod text;

/// A class of expectations (pinholes) with its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectClass {
    /// Name, for counters and the API.
    pub name: &'static str,
    /// Most live expectations of the class per worker (a subscriber holds a sixteenth
    /// at most); past it the requesting subscriber's own oldest goes, never another's.
    pub max: usize,
    /// Seconds an unmatched expectation lives (a registration: its own lifetime).
    pub timeout_secs: u32,
}

/// Every expectation class, indexed by the class ids below.
pub const CLASSES: [ExpectClass; 6] = [
    ExpectClass {
        name: "ftp_data",
        max: 4096,
        timeout_secs: 120,
    },
    ExpectClass {
        name: "tftp",
        max: 1024,
        timeout_secs: 30,
    },
    ExpectClass {
        name: "sip_media",
        max: 4096,
        timeout_secs: 300,
    },
    ExpectClass {
        name: "sip_register",
        max: 4096,
        timeout_secs: 3600,
    },
    ExpectClass {
        name: "rtsp_media",
        max: 2048,
        timeout_secs: 300,
    },
    ExpectClass {
        name: "sip_dialog",
        max: 2048,
        timeout_secs: 3600,
    },
];

/// IP protocol numbers.
pub const TCP: u8 = 6;
/// IP protocol numbers.
pub const UDP: u8 = 17;

/// One ALG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plugin {
    /// The id sessions bound to it carry.
    pub id: u8,
    /// Name (the `[alg]` key).
    pub name: &'static str,
    /// Transport protocols of its control sessions.
    pub protocols: &'static [u8],
    /// Server ports by default.
    pub default_ports: &'static [u16],
    /// On unless configured off.
    pub on_by_default: bool,
    /// Its expectation classes (indexes into [`CLASSES`]).
    pub classes: &'static [u8],
}

/// The ALGs.
pub const PLUGINS: [Plugin; 4] = [
    Plugin {
        id: 1,
        name: "ftp",
        protocols: &[TCP],
        default_ports: &[21],
        on_by_default: true,
        classes: &[0],
    },
    Plugin {
        id: 2,
        name: "tftp",
        protocols: &[UDP],
        default_ports: &[69],
        on_by_default: false,
        classes: &[1],
    },
    Plugin {
        id: 3,
        name: "sip",
        protocols: &[UDP, TCP],
        default_ports: &[5060],
        on_by_default: false,
        classes: &[2, 3, 5],
    },
    Plugin {
        id: 4,
        name: "rtsp",
        protocols: &[TCP],
        default_ports: &[554, 8554],
        on_by_default: false,
        classes: &[4],
    },
];

/// The ALG with session id `id`.
pub fn plugin(id: u8) -> Option<&'static Plugin> {
    PLUGINS.iter().find(|p| p.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_consistent() {
        for (i, p) in PLUGINS.iter().enumerate() {
            assert_eq!(plugin(p.id), Some(p));
            assert!(PLUGINS[i + 1..]
                .iter()
                .all(|q| q.id != p.id && q.name != p.name));
            assert!(p.classes.iter().all(|&c| usize::from(c) < CLASSES.len()));
        }
        // Every class belongs to exactly one ALG.
        for c in 0..CLASSES.len() as u8 {
            assert_eq!(PLUGINS.iter().filter(|p| p.classes.contains(&c)).count(), 1);
        }
        assert_eq!(PLUGINS.iter().filter(|p| p.on_by_default).count(), 1);
    }
}
