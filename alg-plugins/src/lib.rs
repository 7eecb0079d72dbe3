//! The ALG contract, and one module per protocol. An ALG is a parser and a decision:
//! it reads a control message in a direction, and asks its context to rewrite bytes,
//! expect a connection, or allocate an outside port. It owns no packets and no tables,
//! so it is tested on byte strings alone.
//!
//! Status: the contract and the FTP parsers are here; wiring them to the control lcore
//! (mangle with sequence adjustment, expectations on the owning worker) is issue 4.
#![forbid(unsafe_code)]

pub mod ftp;
pub mod rtsp;
pub mod sip;
pub mod text;

use std::net::Ipv4Addr;

/// Which way a control message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the inside host (before translation).
    FromInside,
    /// From the outside peer.
    FromOutside,
}

/// An ALG's answer for a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it (with whatever was mangled).
    Accept,
    /// Drop it, counted under this reason.
    Drop(&'static str),
    /// The message is incomplete: hold the packet until the next segment.
    NeedMore,
}

/// An IPv4 endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Address.
    pub addr: Ipv4Addr,
    /// Port.
    pub port: u16,
}

/// A class of expectations with its limits (as Linux's helper policies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectClass {
    /// Name, for counters.
    pub name: &'static str,
    /// Most live expectations per master session; the oldest is evicted past it.
    pub max: u16,
    /// Seconds an unmatched expectation lives.
    pub timeout_secs: u32,
}

/// A connection the ALG predicts: from `remote` (any port if None) to `outside`,
/// to be delivered to `inside`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// IP protocol of the expected connection.
    pub proto: u8,
    /// Remote address it may come from (None: any).
    pub remote: Option<Ipv4Addr>,
    /// Remote port it may come from (None: any).
    pub remote_port: Option<u16>,
    /// Outside endpoint it arrives at.
    pub outside: Endpoint,
    /// Inside endpoint it goes to.
    pub inside: Endpoint,
    /// Index into the ALG's classes.
    pub class: u8,
}

/// What the dataplane offers an ALG for one packet.
pub trait Context {
    /// The inside host's endpoint of the control session.
    fn inside(&self) -> Endpoint;
    /// Its translation (the outside endpoint).
    fn outside(&self) -> Endpoint;
    /// The remote peer.
    fn remote(&self) -> Endpoint;
    /// Replaces `len` payload bytes at `offset` by `with` (lengths may differ).
    fn mangle(&mut self, offset: usize, len: usize, with: &[u8]) -> bool;
    /// Installs an expectation; false if refused (class limit, no room).
    fn expect(&mut self, e: Expectation) -> bool;
    /// Allocates an outside port for a data connection of `proto` for the inside
    /// host, keeping `parity` if asked; None when none is free.
    fn allocate_port(&mut self, proto: u8, parity: Option<u16>) -> Option<u16>;
}
