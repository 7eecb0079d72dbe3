//! The sync link over UDP on a management network: one socket, bound to the sync
//! address and connected to the peer's, driven by the `cgnat-ha` thread (never a
//! worker). [`step`] is one turn of that thread: take every datagram waiting, hand
//! the tables' news to the [`Link`], walk the tables for a bulk sync while the link
//! has room, and send what the rate allows.

use super::link::{Apply, Link};
use super::wire::{Item, MAX_MESSAGE};
use super::HaCounters;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};

/// The tables a link syncs: the active's source of records, the standby's sink.
pub trait Tables {
    /// Incremental records since the last call (active), handed to `push` until it
    /// returns false (the rest waits for the next call). True when some were lost
    /// (the peer needs a bulk sync).
    fn updates(&mut self, push: &mut dyn FnMut(Item) -> bool) -> bool;
    /// Restarts the walk of the whole state for a bulk sync.
    fn walk_start(&mut self);
    /// The next records of the walk, handed to `push` until it returns false (no
    /// room: the walk goes on from there next time); true once the walk is complete.
    fn walk(&mut self, push: &mut dyn FnMut(Item) -> bool) -> bool;
    /// Applies what a standby received.
    fn apply(&mut self, a: Apply);
    /// The datagrams waiting were all handed to [`Tables::apply`] (a driver that
    /// batches its applies sends them on now).
    fn received(&mut self) {}
}

/// The sync socket: bound to `local`, sending to `peer`; datagrams from elsewhere
/// are read and refused (counted), never applied. Non-blocking.
pub struct SyncSocket {
    socket: UdpSocket,
    peer: SocketAddr,
}

/// Opens the sync socket.
pub fn open(local: SocketAddr, peer: SocketAddr) -> std::io::Result<SyncSocket> {
    let socket = UdpSocket::bind(local)?;
    socket.set_nonblocking(true)?;
    Ok(SyncSocket { socket, peer })
}

impl SyncSocket {
    /// The next datagram waiting: its length and whether the peer sent it.
    pub fn recv(&self, buf: &mut [u8]) -> std::io::Result<(usize, bool)> {
        let (n, from) = self.socket.recv_from(buf)?;
        Ok((n, from == self.peer))
    }

    /// Sends a datagram to the peer.
    pub fn send(&self, d: &[u8]) -> std::io::Result<usize> {
        self.socket.send_to(d, self.peer)
    }
}

/// One turn of the link at `now_ms`: receive, feed, send. `buf` holds a datagram
/// (at least [`MAX_MESSAGE`] bytes).
pub fn step(
    link: &mut Link,
    socket: &SyncSocket,
    tables: &mut dyn Tables,
    counters: &HaCounters,
    now_ms: u64,
    buf: &mut [u8],
) {
    debug_assert!(buf.len() >= MAX_MESSAGE);
    loop {
        match socket.recv(buf) {
            Ok((n, true)) => link.receive(&buf[..n], now_ms, counters, &mut |a| tables.apply(a)),
            Ok((n, false)) => link.refuse_foreign(&buf[..n], counters),
            // A refused send (the peer's port closed: it is down) shows up here.
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
            Err(_) => break,
        }
    }
    tables.received();
    if link.wants_bulk() {
        link.bulk_started();
        tables.walk_start();
    }
    if link.bulk_in_progress() && tables.walk(&mut |it| link.bulk(it)) {
        link.bulk_fed();
    }
    // Updates during a bulk sync go after it (they are newer than what it read).
    if tables.updates(&mut |it| link.update(it)) {
        link.want_bulk();
    }
    link.poll(now_ms, counters, &mut |d| {
        // A lost datagram is found by the receiver (a sequence gap); nothing to do.
        let _ = socket.send(d);
    });
}
