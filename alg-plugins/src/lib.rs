//! The ALGs: one module per protocol, and the registry the dataplane builds on. An
//! ALG here is parsers and decisions over byte strings; it owns no packets and no
//! tables, so it is tested (and fuzzed) on bytes alone.
//!
//! The ALG contract of docs/design.md (section 6: a hook that sees a control message and
//! may mangle it, expect a connection and allocate a port, answering accept, drop or
//! need more) is split along who owns what in the dataplane:
//! - *plan* (on the worker that owns the subscriber and its ports): read a control
//!   message and say which inside endpoints it announces and what they need (an
//!   expectation of a class, an RTP/RTCP pair, a registration, the end of a call): every
//!   ALG's `plan` ([`contract::Contract`]: FTP, TFTP, SIP, RTSP, IRC, PPTP);
//! - *rewrite* (by the stream engine of the worker that owns the session, which sees
//!   every packet of it in order, or inline when the edits keep the length or the
//!   message is a datagram): given the translations the worker reserved, the edits (offset, length,
//!   replacement) of the message, Content-Length included: every ALG's `edits` (SIP's
//!   are `sip::rewrite`'s), and `rtcp::rewrite_cname` for RTCP of announced media;
//! - *need more*: the framing (`text::parse`, `ftp::next_line`) says when a message is
//!   not complete yet, and the dataplane holds the segment rather than letting it
//!   through untranslated.
//!
//! [`PLUGINS`] lists each ALG's name, the session id the dataplane tags its sessions
//! with, its transport protocols and default ports, whether it is on by default
//! (FTP only: RFC 4787 REQ-10, RFC 5382 REQ-6), and its expectation classes.
#![forbid(unsafe_code)]

pub mod contract;
pub mod ftp;
pub mod irc;
pub mod pptp;
pub mod rtcp;
pub mod rtsp;
pub mod sip;
pub mod text;
pub mod tftp;

/// The session ids: what a session carries to say which ALG follows it (3 bits: 1 to 7;
/// 0 is none). One per ALG of [`PLUGINS`], and [`id::RTCP`].
pub mod id {
    /// FTP control sessions.
    pub const FTP: u8 = 1;
    /// TFTP requests.
    pub const TFTP: u8 = 2;
    /// SIP signalling.
    pub const SIP: u8 = 3;
    /// RTSP control sessions.
    pub const RTSP: u8 = 4;
    /// RTCP sessions a media expectation (SIP, RTSP) creates: not an ALG of its own (no
    /// ports, no `[alg]` key), but their CNAME may carry the inside address
    /// ([`crate::rtcp`]).
    pub const RTCP: u8 = 5;
    /// IRC sessions (DCC, [`crate::irc`]).
    pub const IRC: u8 = 6;
    /// PPTP control sessions ([`crate::pptp`]).
    pub const PPTP: u8 = 7;
    /// The largest id a session has room for.
    pub const MAX: u8 = 7;
}

/// The expectation class ids: indexes into [`CLASSES`].
pub mod class {
    /// An FTP data connection (PORT, EPRT, 227, 229).
    pub const FTP_DATA: u8 = 0;
    /// A TFTP server's answer from a new port.
    pub const TFTP: u8 = 1;
    /// SIP media (RTP and RTCP of an SDP `m=` line).
    pub const SIP_MEDIA: u8 = 2;
    /// A SIP registration: incoming requests to the registered contact.
    pub const SIP_REGISTER: u8 = 3;
    /// RTSP media (a SETUP's client ports).
    pub const RTSP_MEDIA: u8 = 4;
    /// A SIP dialog's contact on another port than its signalling session's (SIP over
    /// TCP from an ephemeral port): requests within the dialog; ends with the call.
    pub const SIP_DIALOG: u8 = 5;
    /// An IRC DCC connection (SEND, CHAT) a subscriber offered, from any peer.
    pub const IRC_DCC: u8 = 6;
    /// A PPTP call: its call ID translated, the enhanced GRE of the call mapped both
    /// ways by it (the dataplane's call table, not an expectation; `max` bounds it).
    pub const PPTP_CALL: u8 = 7;
}

/// A class of expectations (pinholes) with its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectClass {
    /// Its id (see [`class`]): its index in [`CLASSES`].
    pub id: u8,
    /// Name, for counters and the API.
    pub name: &'static str,
    /// Most live expectations of the class per worker (a subscriber holds a sixteenth
    /// at most); past it the requesting subscriber's own oldest goes, never another's.
    pub max: usize,
    /// Seconds an unmatched expectation lives (a registration: its own lifetime).
    pub timeout_secs: u32,
}

/// Every expectation class, indexed by its id (see [`class`]).
pub const CLASSES: [ExpectClass; 8] = [
    ExpectClass {
        id: class::FTP_DATA,
        name: "ftp_data",
        max: 4096,
        timeout_secs: 120,
    },
    ExpectClass {
        id: class::TFTP,
        name: "tftp",
        max: 1024,
        timeout_secs: 30,
    },
    ExpectClass {
        id: class::SIP_MEDIA,
        name: "sip_media",
        max: 4096,
        timeout_secs: 300,
    },
    ExpectClass {
        id: class::SIP_REGISTER,
        name: "sip_register",
        max: 4096,
        timeout_secs: 3600,
    },
    ExpectClass {
        id: class::RTSP_MEDIA,
        name: "rtsp_media",
        max: 2048,
        timeout_secs: 300,
    },
    ExpectClass {
        id: class::SIP_DIALOG,
        name: "sip_dialog",
        max: 2048,
        timeout_secs: 3600,
    },
    ExpectClass {
        id: class::IRC_DCC,
        name: "irc_dcc",
        max: 2048,
        timeout_secs: 300,
    },
    ExpectClass {
        id: class::PPTP_CALL,
        name: "pptp_call",
        max: 1024,
        timeout_secs: 300,
    },
];

/// IP protocol numbers.
pub const TCP: u8 = 6;
/// IP protocol numbers.
pub const UDP: u8 = 17;

/// One ALG.
#[derive(Clone, Copy)]
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
    /// The keys of its `[alg.<name>]` section beyond those every ALG takes
    /// (`enabled`, `ports`, `only`, `except`): the config refuses them for any other
    /// ALG, and the dataplane reads them for this one only.
    pub keys: &'static [&'static str],
    /// Its implementation of the [`contract::Contract`], which the dataplane runs
    /// without knowing the ALG's name; `None` for the ALGs whose dataplane code
    /// predates the contract (SIP); FTP, IRC, TFTP, PPTP and RTSP have one.
    pub contract: Option<&'static dyn contract::Contract>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("protocols", &self.protocols)
            .field("default_ports", &self.default_ports)
            .field("on_by_default", &self.on_by_default)
            .field("classes", &self.classes)
            .field("keys", &self.keys)
            .field("contract", &self.contract.is_some())
            .finish()
    }
}

/// Two entries are the same ALG when their ids are (the registry checks ids unique).
impl PartialEq for Plugin {
    fn eq(&self, other: &Plugin) -> bool {
        self.id == other.id
    }
}

impl Eq for Plugin {}

/// The ALGs.
pub const PLUGINS: [Plugin; 6] = [
    Plugin {
        id: id::FTP,
        name: "ftp",
        protocols: &[TCP],
        default_ports: &[21],
        on_by_default: true,
        classes: &[class::FTP_DATA],
        keys: &[
            "min_data_port",
            "loose",
            "deny",
            "allow",
            "bounce",
            "low_port",
            "on_deny",
        ],
        contract: Some(&ftp::Ftp),
    },
    Plugin {
        id: id::TFTP,
        name: "tftp",
        protocols: &[UDP],
        default_ports: &[69],
        on_by_default: false,
        classes: &[class::TFTP],
        keys: &[],
        contract: Some(&tftp::Tftp),
    },
    Plugin {
        id: id::SIP,
        name: "sip",
        protocols: &[UDP, TCP],
        default_ports: &[5060],
        on_by_default: false,
        classes: &[class::SIP_MEDIA, class::SIP_REGISTER, class::SIP_DIALOG],
        keys: &[
            "on_deny",
            "min_media_port",
            "deny_methods",
            "max_message_size",
            "deny_status",
        ],
        contract: Some(&sip::SipAlg),
    },
    Plugin {
        id: id::RTSP,
        name: "rtsp",
        protocols: &[TCP],
        default_ports: &[554, 8554],
        on_by_default: false,
        classes: &[class::RTSP_MEDIA],
        keys: &["on_deny", "min_media_port", "deny_methods"],
        contract: Some(&rtsp::Rtsp),
    },
    Plugin {
        id: id::IRC,
        name: "irc",
        protocols: &[TCP],
        default_ports: &[6667],
        on_by_default: false,
        classes: &[class::IRC_DCC],
        keys: &[],
        contract: Some(&irc::Irc),
    },
    Plugin {
        id: id::PPTP,
        name: "pptp",
        protocols: &[TCP],
        default_ports: &[1723],
        on_by_default: false,
        classes: &[class::PPTP_CALL],
        keys: &[],
        contract: Some(&pptp::Pptp),
    },
];

/// The ALG with session id `id`.
pub fn plugin(id: u8) -> Option<&'static Plugin> {
    PLUGINS.iter().find(|p| p.id == id)
}

/// The contract that runs the sessions of session id `id`: its registry entry's, or
/// RTCP's ([`rtcp::Rtcp`]) for [`id::RTCP`], which is no ALG of the registry.
pub fn contract_of(id: u8) -> Option<&'static dyn contract::Contract> {
    if id == id::RTCP {
        return Some(&rtcp::Rtcp);
    }
    plugin(id).and_then(|p| p.contract)
}

/// The ALG whose expectations class `class` is.
pub fn plugin_of_class(class: u8) -> Option<&'static Plugin> {
    PLUGINS.iter().find(|p| p.classes.contains(&class))
}

/// The registry checked as it is compiled: class ids are their indexes, session ids
/// fit a session's 3 bits and are not RTCP's.
const _: () = {
    let mut i = 0;
    while i < CLASSES.len() {
        assert!(CLASSES[i].id as usize == i);
        i += 1;
    }
    let mut i = 0;
    while i < PLUGINS.len() {
        assert!(PLUGINS[i].id > 0 && PLUGINS[i].id <= id::MAX && PLUGINS[i].id != id::RTCP);
        i += 1;
    }
    assert!(id::RTCP <= id::MAX);
};

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
        for c in &CLASSES {
            assert!(plugin_of_class(c.id).is_some(), "{}", c.name);
            assert!(CLASSES.iter().filter(|d| d.name == c.name).count() == 1);
        }
    }
}
