//! The NAT's side of PPTP (`cgnat_alg::pptp`): the asks of identifier kind
//! ([`cgnat_alg::contract::Kind::Id`]) its control messages make are granted from the
//! worker's call table (`nat/gre.rs`), and enhanced GRE (version 1) is translated by it.
//! A call lives on the worker of its control session (the subscriber's); its
//! translated call ID is taken from that worker's share of the pool address's port
//! space (as a port: [`super::pool::Pool::owner`]), so that inbound GRE, keyed by that
//! ID, is the same worker's. A Call-Clear-Request from the subscriber, or its control
//! connection closing (FIN both ways, or a reset), marks a call closing: its GRE still
//! flows (the server sends its Call-Disconnect-Notify, then stops) until the server's
//! Call-Disconnect-Notify ends it, or [`CALL_LINGER`] seconds later (`calls_lingered`).
//! A call also ends with its control session, or after the `pptp_call` class's timeout
//! without a control message or GRE packet; GRE of a call keeps its control session
//! alive.
//!
//! A Call-Disconnect-Notify from the server names the call by the subscriber's call ID
//! as the server knows it (the translated one), as deployed servers write it (pptpd,
//! accel-ppp; Linux's nf_nat_pptp reads it so), or by the server's own call ID, as RFC
//! 2637 2.13 says. The translated ID is tried first, among this control session's
//! calls: it is then rewritten to the subscriber's own; else the server's own ID, left
//! as written; else the message is left as written and counted
//! (`disconnects_unmatched`). When both name a call, and not the same, the translated
//! ID's is ended: server call IDs and translated ones are apart only by accident, and
//! the translated one is what deployed servers send.
//!
//! A Call-Clear-Request or Call-Disconnect-Notify naming a call that ended already (a
//! retransmission) gets the translation the call had, from the last ended calls the
//! table remembers (`nat/gre.rs`), counted `ends_resent`: the subscriber's own call ID
//! does not go out, nor the translated one in.

use super::gre::{Call, Refused};
use super::{Nat, TcpState, ALG_PPTP};
use crate::counters::DropReason;
use crate::log::{event as log_event, LogEvent};
use cgnat_alg::contract::{Ask, Ctx, Dir, Grant, Kind};

/// The PPTP counters: the event label in `/metrics`
/// (`cgnat_alg_events_total{alg="pptp",event=...}`) and the key in the summary's
/// `alg.pptp`, by index of [`crate::counters::WorkerCounters::pptp`] (with
/// `gre_no_call`, the drop counter, beside them).
pub const PPTP_EVENTS: [&str; 8] = [
    "calls",
    "calls_refused",
    "calls_ended",
    "gre_out",
    "gre_in",
    "calls_lingered",
    "disconnects_unmatched",
    "ends_resent",
];
/// Indexes of [`PPTP_EVENTS`].
pub mod event {
    /// Calls made (a subscriber's call ID translated).
    pub const CALLS: usize = 0;
    /// Calls refused (the table full, no call ID free).
    pub const REFUSED: usize = 1;
    /// Calls ended (either side, the control session, idleness, the linger).
    pub const ENDED: usize = 2;
    /// GRE packets of calls translated outbound.
    pub const GRE_OUT: usize = 3;
    /// Likewise inbound.
    pub const GRE_IN: usize = 4;
    /// Calls closing (cleared by the subscriber, or their control connection closed)
    /// ended by the linger, no Call-Disconnect-Notify having come (also in `ENDED`).
    pub const LINGERED: usize = 5;
    /// Call-Disconnect-Notify (or Call-Clear-Request) messages from the server naming
    /// no call of their control session by either convention: left as written.
    pub const UNMATCHED: usize = 6;
    /// A subscriber's Call-Clear-Request or a server's Call-Disconnect-Notify naming
    /// a call that had ended already (retransmitted): given the translation the call
    /// had (`nat/gre.rs`, the ended calls remembered).
    pub const RESENT: usize = 7;
}

/// The seconds a call lives without a control message or GRE packet.
const CALL_TIMEOUT: u32 = cgnat_alg::CLASSES[cgnat_alg::class::PPTP_CALL as usize].timeout_secs;

/// The seconds a closing call still carries GRE without a Call-Disconnect-Notify.
pub const CALL_LINGER: u32 = 10;

/// GRE's IP protocol number.
pub const PROTO_GRE: u8 = 47;

/// The call ID in the key of an enhanced GRE packet (RFC 2637 4.1: version 1, key
/// present, no checksum or routing, protocol type 0x880B); `gre` starts at the GRE
/// header. Some(None): a GRE version 1 packet that names no call (no key, a checksum
/// or routing field before it, another protocol type, truncated); None: not version 1
/// (plain GRE, translated by address alone).
#[inline]
pub fn gre_call_id(gre: &[u8]) -> Option<Option<u16>> {
    if gre.len() < 2 || gre[1] & 0x07 != 1 {
        return None;
    }
    let ok = gre.len() >= 8 && gre[0] & 0xe0 == 0x20 && gre[2] == 0x88 && gre[3] == 0x0b;
    Some(ok.then(|| u16::from_be_bytes([gre[6], gre[7]])))
}

/// The log event of call `c` made (`made`) or ended: see [`Nat::log_calls`].
pub(super) fn call_event(made: bool, c: &Call) -> LogEvent {
    LogEvent {
        kind: if made {
            log_event::SESSION_CREATE
        } else {
            log_event::SESSION_DELETE
        },
        proto: PROTO_GRE,
        inside: c.inside,
        in_port: c.inside_id,
        outside: c.outside,
        out_port: c.outside_id,
        dst: c.server,
        dst_port: if c.bound { c.server_id } else { 0 },
        ..LogEvent::default()
    }
}

impl Nat {
    /// Whether the PPTP ALG is on (its GRE is then translated by call).
    #[inline]
    pub fn pptp_on(&self) -> bool {
        !self.params.alg_ports(ALG_PPTP).is_empty()
    }

    /// The live PPTP calls of this worker (for the API).
    pub fn pptp_calls(&self) -> impl Iterator<Item = &Call> {
        self.calls.iter()
    }

    /// Grants an ask of identifier kind of PPTP control session `control` (its message
    /// `ctx`): a new or known call's translation (announce), what the server names
    /// (lookup), the server's call ID recorded (bind), a call's end.
    pub fn pptp_grant(&mut self, ask: &Ask, ctx: &Ctx, control: u32, now: u32) -> Grant {
        let (pool, server) = (ctx.outside.0, ctx.remote.0);
        let pptp = &self.counters.pptp;
        match *ask {
            Ask::Announce {
                kind: Kind::Id,
                inside,
                ..
            } => {
                let known = match self.calls.get_inside(inside.0, server, inside.1) {
                    // A call ID announced again after its clear: a new call (the old
                    // one's Call-Disconnect-Notify then names nothing).
                    Some(c) if c.closing.is_some() => {
                        self.calls.end_inside(inside.0, server, inside.1);
                        pptp[event::ENDED].inc();
                        false
                    }
                    known => known.is_some(),
                };
                let owner = &self.pool;
                let me = owner.worker();
                // The IDs whose inbound GRE reaches this worker (as a port would).
                let mine = |a: u32, id: u16| owner.owner(a, id) == Some(me);
                match self
                    .calls
                    .announce(inside, server, pool, control, now, mine)
                {
                    Ok(c) => {
                        if !known {
                            pptp[event::CALLS].inc();
                        }
                        Grant::To((c.outside, c.outside_id))
                    }
                    Err(Refused::Full | Refused::NoId) => {
                        pptp[event::REFUSED].inc();
                        Grant::Refused
                    }
                }
            }
            Ask::Lookup {
                kind: Kind::Id,
                outside,
            } => {
                let a = if outside.0 == 0 { pool } else { outside.0 };
                match self.calls.lookup_outside(a, server, outside.1, now) {
                    Some(c) => Grant::To((c.inside, c.inside_id)),
                    None => Grant::Refused,
                }
            }
            Ask::Bind {
                kind: Kind::Id,
                inside,
                peer,
            } => {
                let c = match ctx.dir {
                    Dir::FromInside => self
                        .calls
                        .bind_inside(inside.0, server, inside.1, peer, now),
                    Dir::FromOutside => {
                        let a = if inside.0 == 0 { pool } else { inside.0 };
                        self.calls.bind_outside(a, server, inside.1, peer, now)
                    }
                };
                c.map_or(Grant::Refused, |c| Grant::To((c.outside, c.outside_id)))
            }
            Ask::End {
                kind: Kind::Id,
                endpoint,
                translated: false,
            } => {
                // The subscriber cleared its call: closing until the server's
                // Call-Disconnect-Notify (or the linger) ends it. A clear of a call
                // that ended meanwhile (retransmitted) names it as before.
                match self.calls.close_inside(endpoint.0, server, endpoint.1, now) {
                    Some(c) => Grant::To((c.outside, c.outside_id)),
                    None => match self.calls.ended_inside(endpoint.0, server, endpoint.1) {
                        Some(c) => {
                            pptp[event::RESENT].inc();
                            Grant::To((c.outside, c.outside_id))
                        }
                        None => Grant::Refused,
                    },
                }
            }
            Ask::End {
                kind: Kind::Id,
                endpoint,
                translated: true,
            } => {
                // The translated call ID first (deployed servers), then the server's
                // own (RFC 2637): see the module's doc.
                let named = (if endpoint.0 == 0 { pool } else { endpoint.0 }, endpoint.1);
                let (c, back) = match self.calls.end_outside_of(control, named.0, server, named.1) {
                    Some(c) => (Some(c), (c.inside, c.inside_id)),
                    None => (
                        self.calls.end_server(ctx.inside.0, server, endpoint.1),
                        endpoint,
                    ),
                };
                if c.is_some() {
                    pptp[event::ENDED].inc();
                    // The server's own ID is left as written: the grant is the
                    // endpoint as named.
                    Grant::To(back)
                } else if let Some(c) = self.calls.ended_outside(control, named.0, server, named.1)
                {
                    // The notify of a call it ended already (retransmitted).
                    pptp[event::RESENT].inc();
                    Grant::To((c.inside, c.inside_id))
                } else {
                    pptp[event::UNMATCHED].inc();
                    Grant::Refused
                }
            }
            _ => Grant::Refused,
        }
    }

    /// Refreshes the control session of a call its GRE was seen on.
    #[inline]
    fn touch_control(&mut self, control: u32, now: u32) {
        if let Some(s) = self.sessions.get_mut(control as usize) {
            if s.alg() == ALG_PPTP && s.last_seen < now {
                s.last_seen = now;
            }
        }
    }

    /// Outbound enhanced GRE from `inside` to `server` keyed `key` (the server's call
    /// ID): the pool address it leaves from.
    #[inline]
    pub fn gre_in2out(
        &mut self,
        inside: u32,
        server: u32,
        key: u16,
        now: u32,
    ) -> Result<u32, DropReason> {
        let c = self
            .calls
            .outbound(inside, server, key, now)
            .copied()
            .ok_or(DropReason::GreNoCall)?;
        self.touch_control(c.control, now);
        self.counters.pptp[event::GRE_OUT].inc();
        Ok(c.outside)
    }

    /// Inbound enhanced GRE from `server` to `pool` keyed `key` (the translated call
    /// ID): the subscriber's address and own call ID.
    #[inline]
    pub fn gre_out2in(
        &mut self,
        pool: u32,
        server: u32,
        key: u16,
        now: u32,
    ) -> Result<(u32, u16), DropReason> {
        let c = self
            .calls
            .inbound(pool, server, key, now)
            .copied()
            .ok_or(DropReason::GreNoCall)?;
        self.touch_control(c.control, now);
        self.counters.pptp[event::GRE_IN].inc();
        Ok((c.inside, c.inside_id))
    }

    /// Ends the calls of control session `i`, which ends.
    pub(super) fn end_calls_of(&mut self, i: u32) {
        if !self.calls.is_empty() {
            let n = self.calls.end_control(i);
            self.counters.pptp[event::ENDED].add(n as u64);
        }
    }

    /// The log events of the calls made and ended since the last time (the call
    /// table's journal, emptied): a session create or delete (natEvent 1/2) of
    /// protocol GRE whose ports are call IDs, the subscriber's address and own call ID
    /// inside, the pool address and translated call ID outside, the server and its
    /// call ID (0 while unknown: a call is made before the server answers) as the
    /// remote, always carried as for the other address-only sessions. Logged when
    /// GRE's sessions are (`Policy::other_sessions`): a call holds no port block, so
    /// nothing else attributes its GRE to the subscriber.
    pub(super) fn log_calls(&mut self) {
        let (changes, lost) = self.calls.changes();
        if changes.is_empty() && lost == 0 {
            return;
        }
        let log = self.params.log;
        if log.sessions || log.other_sessions {
            for k in 0..changes.len() {
                let (made, c) = self.calls.changes().0[k];
                self.emit(call_event(made, &c));
            }
            self.counters.log_events_dropped.add(lost);
        }
        self.calls.clear_changes();
    }

    /// Once a second (a walk of the table): marks closing the calls whose control
    /// connection closed (FIN both ways, or a reset), and ends those closing for
    /// [`CALL_LINGER`] and those idle for the class's timeout.
    pub(super) fn expire_calls(&mut self, now: u32) {
        // A standby holds its calls: their end comes from the active.
        if self.calls.is_empty() || self.calls_checked == now || self.hold {
            return;
        }
        self.calls_checked = now;
        let sessions = &self.sessions;
        let closed = |i: u32| {
            sessions.get(i as usize).is_some_and(|s| {
                s.proto == crate::wire::ipv4::PROTO_TCP
                    && matches!(s.state(), TcpState::Closing | TcpState::Reset)
            })
        };
        let (lingered, idle) = self.calls.sweep(now, CALL_TIMEOUT, CALL_LINGER, closed);
        self.counters.pptp[event::LINGERED].add(lingered as u64);
        self.counters.pptp[event::ENDED].add((lingered + idle) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fold_tests::{CONFIG, T0};
    use super::super::{NatParams, Tuple};
    use super::*;
    use crate::counters::WorkerCounters;
    use crate::wire::{ipv4, tcp};
    use cgnat_alg::contract::{Contract, Edits, Framing, Plan};
    use cgnat_alg::pptp::{message, msg, Pptp};
    use std::sync::Arc;

    const SERVER: u32 = 0xCB00_7107; // 203.0.113.7
    const SUB: u32 = 0x6440_0102; // 100.64.1.2

    /// A worker's table with the PPTP ALG on and room for `calls` calls.
    fn nat(calls: usize) -> (Nat, Arc<WorkerCounters>) {
        let cfg = cgnat_config::Config::parse(
            &format!("{CONFIG}[alg]\npptp = {{ enabled = true }}\n"),
            "t.toml",
        )
        .unwrap();
        let mut params = NatParams::from_config(&cfg.nat, 1).unwrap();
        params.set_algs(&cfg.alg);
        params.pptp_calls = calls;
        let counters = Arc::new(WorkerCounters::default());
        (Nat::new(params, 0, 1, T0, 7, counters.clone()), counters)
    }

    /// A subscriber's PPTP control connection: its session and the message context
    /// of direction `dir`.
    fn control(n: &mut Nat, sub: u32) -> (u32, impl Fn(Dir) -> Ctx) {
        let t = Tuple {
            proto: ipv4::PROTO_TCP,
            src: sub,
            sport: 40000,
            dst: SERVER,
            dport: 1723,
        };
        let i = n.in2out(&t, tcp::SYN, true, T0).unwrap();
        let s = *n.session(i);
        assert_eq!(s.alg(), ALG_PPTP);
        (i, move |dir| Ctx {
            dir,
            inside: (s.in_addr, s.in_port),
            outside: (s.out_addr, s.out_port),
            remote: (s.rem_addr, s.rem_port),
            datagram: false,
        })
    }

    /// What the worker does with a whole control message on session `i`: framed,
    /// planned, granted from the call table, edited in place.
    fn through(n: &mut Nat, i: u32, ctx: &Ctx, mut m: Vec<u8>, now: u32) -> Vec<u8> {
        assert_eq!(Pptp.framing(&m, ctx), Framing::Whole(m.len()));
        let mut plan = Plan::default();
        Pptp.plan(&m, ctx, &mut plan);
        let grants: Vec<Grant> = plan.asks().map(|a| n.pptp_grant(a, ctx, i, now)).collect();
        let mut e = Edits::default();
        Pptp.edits(&m, ctx, &plan, &grants, &mut e).unwrap();
        e.apply_in_place(&mut m).unwrap();
        m
    }

    fn id_at(m: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([m[at], m[at + 1]])
    }

    /// An outgoing call of subscriber `sub` with its call ID `id`, the server answering
    /// with `server_id`: the translated call ID.
    fn call(n: &mut Nat, sub: u32, id: u16, server_id: u16) -> (u32, u32, u16) {
        let (i, ctx) = control(n, sub);
        let rq = through(
            n,
            i,
            &ctx(Dir::FromInside),
            message(msg::OUT_CALL_REQUEST, id, 1),
            T0,
        );
        let out_id = id_at(&rq, 12);
        let rp = through(
            n,
            i,
            &ctx(Dir::FromOutside),
            message(msg::OUT_CALL_REPLY, server_id, out_id),
            T0,
        );
        assert_eq!(
            id_at(&rp, 14),
            id,
            "the reply names the subscriber's own call ID"
        );
        assert_eq!(id_at(&rp, 12), server_id);
        (i, ctx(Dir::FromInside).outside.0, out_id)
    }

    #[test]
    fn two_subscribers_same_call_id_same_server_are_kept_apart() {
        let (mut n, c) = nat(16);
        let b = SUB + 1;
        let (_, pool_a, out_a) = call(&mut n, SUB, 7, 0x100);
        let (_, pool_b, out_b) = call(&mut n, b, 7, 0x101);
        assert!(
            pool_a != pool_b || out_a != out_b,
            "one outside call for two"
        );
        // GRE both ways.
        assert_eq!(n.gre_in2out(SUB, SERVER, 0x100, T0 + 1), Ok(pool_a));
        assert_eq!(n.gre_in2out(b, SERVER, 0x101, T0 + 1), Ok(pool_b));
        assert_eq!(n.gre_out2in(pool_a, SERVER, out_a, T0 + 1), Ok((SUB, 7)));
        assert_eq!(n.gre_out2in(pool_b, SERVER, out_b, T0 + 1), Ok((b, 7)));
        // Another subscriber's server call ID or another server: no call.
        assert_eq!(
            n.gre_in2out(SUB, SERVER, 0x101, T0 + 1),
            Err(DropReason::GreNoCall)
        );
        assert_eq!(
            n.gre_out2in(pool_a, SERVER + 1, out_a, T0 + 1),
            Err(DropReason::GreNoCall)
        );
        assert_eq!(c.pptp[event::CALLS].get(), 2);
        assert_eq!(c.pptp[event::GRE_OUT].get(), 2);
        assert_eq!(c.pptp[event::GRE_IN].get(), 2);
    }

    #[test]
    fn a_hundred_subscribers_with_one_call_id_each_reach_their_own() {
        let (mut n, _) = nat(1024);
        let calls: Vec<_> = (0..100u32)
            .map(|k| call(&mut n, SUB + k, 1, 0x200 + k as u16))
            .collect();
        let mut outside: Vec<_> = calls.iter().map(|&(_, p, o)| (p, o)).collect();
        outside.sort();
        outside.dedup();
        assert_eq!(outside.len(), 100);
        for (k, &(_, pool, out)) in calls.iter().enumerate() {
            let k = k as u32;
            assert_eq!(n.gre_out2in(pool, SERVER, out, T0 + 2), Ok((SUB + k, 1)));
            assert_eq!(
                n.gre_in2out(SUB + k, SERVER, 0x200 + k as u16, T0 + 2),
                Ok(pool)
            );
        }
    }

    #[test]
    fn clear_disconnect_and_the_control_sessions_end_remove_the_call() {
        let (mut n, c) = nat(16);
        // Call-Clear-Request from the subscriber: its call ID rewritten, the call
        // closing (its GRE still flows) until the server's Call-Disconnect-Notify,
        // naming the translated ID (rewritten back), ends it.
        let (i, pool, out) = call(&mut n, SUB, 7, 0x100);
        let (_, ctx) = control(&mut n, SUB);
        let m = through(
            &mut n,
            i,
            &ctx(Dir::FromInside),
            message(msg::CALL_CLEAR_REQUEST, 7, 0),
            T0 + 1,
        );
        assert_eq!(id_at(&m, 12), out);
        assert!(n.pptp_calls().next().unwrap().closing == Some(T0 + 1));
        assert_eq!(n.gre_out2in(pool, SERVER, out, T0 + 1), Ok((SUB, 7)));
        let m = through(
            &mut n,
            i,
            &ctx(Dir::FromOutside),
            message(msg::CALL_DISCONNECT_NOTIFY, out, 0),
            T0 + 1,
        );
        assert_eq!(id_at(&m, 12), 7);
        assert_eq!(
            n.gre_out2in(pool, SERVER, out, T0 + 2),
            Err(DropReason::GreNoCall)
        );
        assert_eq!(
            n.gre_in2out(SUB, SERVER, 0x100, T0 + 2),
            Err(DropReason::GreNoCall)
        );

        // Call-Disconnect-Notify from the server, naming its own call ID.
        let (i, pool, out) = call(&mut n, SUB, 8, 0x102);
        let m = message(msg::CALL_DISCONNECT_NOTIFY, 0x102, 0);
        assert_eq!(
            through(&mut n, i, &ctx(Dir::FromOutside), m.clone(), T0 + 3),
            m
        );
        assert_eq!(
            n.gre_out2in(pool, SERVER, out, T0 + 4),
            Err(DropReason::GreNoCall)
        );

        // The control connection's end (a reset) takes its calls.
        let (i, pool, out) = call(&mut n, SUB, 9, 0x103);
        let rst = Tuple {
            proto: ipv4::PROTO_TCP,
            src: SUB,
            sport: 40000,
            dst: SERVER,
            dport: 1723,
        };
        n.in2out(&rst, tcp::RST | tcp::ACK, true, T0 + 5).unwrap();
        // Closing from the next sweep, gone the linger after: long before the call's
        // own idle timeout or the reset session's transitory one.
        n.expire(T0 + 6, 1000);
        n.expire(T0 + 6 + CALL_LINGER - 1, 1000);
        assert_eq!(
            n.gre_out2in(pool, SERVER, out, T0 + 6 + CALL_LINGER - 1),
            Ok((SUB, 9))
        );
        n.expire(T0 + 6 + CALL_LINGER, 1000);
        assert_eq!(
            n.live_sessions(),
            1,
            "the control session {i} is still held"
        );
        assert_eq!(
            n.gre_out2in(pool, SERVER, out, T0 + 6 + CALL_LINGER),
            Err(DropReason::GreNoCall)
        );
        assert_eq!(n.pptp_calls().count(), 0);
        assert_eq!(c.pptp[event::ENDED].get(), 3);
        assert_eq!(c.pptp[event::LINGERED].get(), 1);
    }

    #[test]
    fn gre_keeps_its_control_session_alive_and_idle_calls_expire() {
        let (mut n, _) = nat(16);
        let (i, pool, out) = call(&mut n, SUB, 7, 0x100);
        // Established: the control session's timeout is long; GRE refreshes it.
        let before = n.session(i).last_seen;
        n.gre_out2in(pool, SERVER, out, T0 + 50).unwrap();
        assert_eq!(n.session(i).last_seen, T0 + 50);
        assert!(n.session(i).last_seen > before);
        // No GRE nor control message for the class's timeout: the call goes.
        n.expire(T0 + 50 + CALL_TIMEOUT - 1, 0);
        assert_eq!(n.pptp_calls().count(), 1);
        n.expire(T0 + 50 + CALL_TIMEOUT, 0);
        assert_eq!(n.pptp_calls().count(), 0);
    }

    #[test]
    fn a_full_table_refuses_the_next_call_and_keeps_the_others() {
        let (mut n, c) = nat(100);
        let calls: Vec<_> = (0..100u32)
            .map(|k| call(&mut n, SUB + k, 5, 0x300 + k as u16))
            .collect();
        let (i, ctx) = control(&mut n, SUB + 100);
        let rq = message(msg::OUT_CALL_REQUEST, 5, 1);
        // Refused: the message goes on as written, no call is made.
        assert_eq!(
            through(&mut n, i, &ctx(Dir::FromInside), rq.clone(), T0),
            rq
        );
        assert_eq!(c.pptp[event::REFUSED].get(), 1);
        assert_eq!(n.pptp_calls().count(), 100);
        for (k, &(_, pool, out)) in calls.iter().enumerate() {
            assert_eq!(
                n.gre_out2in(pool, SERVER, out, T0 + 1),
                Ok((SUB + k as u32, 5))
            );
        }
    }

    #[test]
    fn the_gre_key_is_read_from_version_1_only() {
        let v1 = [0x30, 0x81, 0x88, 0x0b, 0, 0, 0x12, 0x34];
        assert_eq!(gre_call_id(&v1), Some(Some(0x1234)));
        let v0 = [0x20, 0x00, 0x08, 0x00, 0, 0, 0x12, 0x34];
        assert_eq!(gre_call_id(&v0), None);
        let no_key = [0x10, 0x81, 0x88, 0x0b, 0, 0, 0x12, 0x34];
        assert_eq!(gre_call_id(&no_key), Some(None));
        assert_eq!(gre_call_id(&v1[..6]), Some(None));
        assert_eq!(gre_call_id(&[0x30]), None);
        let other = [0x30, 0x81, 0x08, 0x00, 0, 0, 0x12, 0x34];
        assert_eq!(gre_call_id(&other), Some(None));
        // A checksum or routing field would move the key: no call named.
        let csum = [0xb0, 0x01, 0x88, 0x0b, 0, 0, 0x12, 0x34];
        assert_eq!(gre_call_id(&csum), Some(None));
        let routing = [0x70, 0x01, 0x88, 0x0b, 0, 0, 0x12, 0x34];
        assert_eq!(gre_call_id(&routing), Some(None));
    }
}
