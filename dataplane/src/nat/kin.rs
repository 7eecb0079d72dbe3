//! Control sessions kept alive by the data sessions their ALG opened (issue 14).
//!
//! A session created through an ALG expectation (an FTP data connection after PORT or
//! EPRT, SIP or RTSP media, a TFTP answer) is recorded here with the control session
//! that announced it (the expectation's master). A SIP registration's expectation is
//! not followed: it outlives its master, whose record may hold another session. Nothing is done per packet: when the
//! control session comes due on the timer wheel ([`Nat::expire`]), its idle time is
//! taken from the latest activity of itself and of its live data sessions, so a
//! control connection outlives a transfer longer than its own timeout and expires as
//! before once its data sessions are quiet too. A record is a few words beside the
//! 32-byte session, written when the data session is created (never on the
//! established fast path).

use super::{Nat, Session, TcpState, NIL};
use crate::wire::ipv4;

/// Data sessions followed at once per worker; past it, records of sessions that
/// ended go first, then the oldest.
pub(super) const MAX_KIN: usize = 4096;

/// A data session and the control session it keeps alive. The data session's
/// endpoints are kept to recognise its record once another session reuses it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Kin {
    master: u32,
    child: u32,
    rem_addr: u32,
    out_port: u16,
    rem_port: u16,
}

impl Kin {
    /// Whether session record `child` still holds the data session recorded.
    fn alive(&self, sessions: &[Session]) -> bool {
        let s = &sessions[self.child as usize];
        s.mapping != NIL
            && s.out_port == self.out_port
            && s.rem_addr == self.rem_addr
            && s.rem_port == self.rem_port
    }
}

impl Nat {
    /// Records that session `child` was created through an expectation of control
    /// session `master`.
    pub(super) fn add_kin(&mut self, master: u32, child: u32) {
        let m = self.sessions.get(master as usize).copied();
        if master == child || m.is_none_or(|m| m.mapping == NIL) {
            return;
        }
        if self.kin.len() == MAX_KIN {
            let sessions = &self.sessions;
            self.kin.retain(|k| k.alive(sessions));
            if self.kin.len() == MAX_KIN {
                self.kin.remove(0);
            }
        }
        let s = &self.sessions[child as usize];
        self.kin.push(Kin {
            master,
            child,
            rem_addr: s.rem_addr,
            out_port: s.out_port,
            rem_port: s.rem_port,
        });
    }

    /// The control session `i` due at `now`: refreshed to the last second one of its
    /// live data sessions was seen, while it is open (an established TCP connection,
    /// a UDP flow). Records of its data sessions that ended are dropped.
    pub(super) fn keep_alive_by_kin(&mut self, i: u32) {
        let s = self.sessions[i as usize];
        let open = match s.proto {
            ipv4::PROTO_TCP => s.state() == TcpState::Established,
            _ => true,
        };
        let sessions = &self.sessions;
        let mut seen = 0;
        self.kin.retain(|k| {
            if k.master != i {
                return true;
            }
            let alive = k.alive(sessions);
            if alive {
                seen = seen.max(sessions[k.child as usize].last_seen);
            }
            alive
        });
        if open && seen > s.last_seen {
            self.sessions[i as usize].last_seen = seen;
        }
    }

    /// Forgets the data sessions of control session `i`, which ends.
    pub(super) fn forget_kin(&mut self, i: u32) {
        self.kin.retain(|k| k.master != i);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fold_tests::{udp, CONFIG, R1, REGISTER, SUB, T0};
    use super::super::{NatParams, Tuple, ALG_FTP};
    use super::*;
    use crate::counters::WorkerCounters;
    use crate::wire::tcp::{ACK, RST, SYN};
    use std::sync::Arc;

    /// A worker's table with the ALGs of the default configuration (FTP on 21).
    fn nat() -> Nat {
        let cfg = cgnat_config::Config::parse(CONFIG, "t.toml").unwrap();
        let mut params = NatParams::from_config(&cfg.nat, 1).unwrap();
        params.set_algs(&cfg.alg);
        Nat::new(params, 0, 1, T0, 7, Arc::new(WorkerCounters::default()))
    }

    fn tcp(src: u32, sport: u16, dst: u32, dport: u16) -> Tuple {
        Tuple {
            proto: ipv4::PROTO_TCP,
            ..udp(src, sport, dst, dport)
        }
    }

    /// A registration outlives the session that made it (whose record another
    /// session may hold by then): the calls it lets in, and the sessions the inside
    /// host opens on its pinned mapping, are nobody's data sessions.
    #[test]
    fn sessions_a_registration_lets_in_keep_no_session_alive() {
        let mut n = nat();
        let r = n.in2out(&udp(SUB, 5060, R1, 5060), 0, true, T0).unwrap();
        let (a, p) = n.alg_expect_with(r, &REGISTER, T0).unwrap();
        n.out2in(&udp(R1 + 1, 5060, a, p), 0, true, T0 + 1).unwrap();
        n.in2out(&udp(SUB, 5060, R1 + 2, 5060), 0, true, T0 + 2)
            .unwrap();
        assert_eq!(n.live_sessions(), 3);
        assert!(n.kin.is_empty());
    }

    /// A data session keeps its FTP control session alive; once it ended, a session
    /// that took its record keeps nothing alive: the control session expires one
    /// timeout after the data session's last packet.
    #[test]
    fn a_data_sessions_record_taken_by_another_session_keeps_nothing_alive() {
        let mut n = nat();
        let m = n.in2out(&tcp(SUB, 40000, R1, 21), SYN, true, T0).unwrap();
        let c = *n.session(m);
        n.out2in(&tcp(R1, 21, c.out_addr, c.out_port), SYN | ACK, true, T0)
            .unwrap();
        assert_eq!(n.session(m).alg(), ALG_FTP);
        assert_eq!(n.session(m).state(), TcpState::Established);
        let (a, p) = n.alg_expect(m, SUB, 5001, R1, T0).unwrap();
        let d = n.out2in(&tcp(R1, 20, a, p), SYN, true, T0 + 1).unwrap();
        let data = tcp(SUB, 5001, R1, 20);
        assert_eq!(n.in2out(&data, SYN | ACK, true, T0 + 1), Ok(d));
        let timeout = n.params.timeouts.tcp_established;
        // The transfer ends with a reset at `last`.
        let last = T0 + 3000;
        assert_eq!(n.in2out(&data, RST, true, last), Ok(d));
        // The control session comes due: refreshed to `last`.
        n.expire(T0 + timeout, usize::MAX);
        assert_eq!(n.session(m).last_seen, last);
        // The data session goes (at its own slot); another flow takes its record and
        // stays busy past the control session's new deadline.
        n.expire(T0 + timeout + 1, usize::MAX);
        assert_eq!(n.session(d).mapping, NIL);
        let other = tcp(SUB, 6000, R1, 80);
        let t = T0 + timeout + 2;
        assert_eq!(n.in2out(&other, SYN, true, t), Ok(d), "the record reused");
        let o = *n.session(d);
        n.out2in(&tcp(R1, 80, o.out_addr, o.out_port), SYN | ACK, true, t)
            .unwrap();
        let mut now = t;
        while now < last + timeout + 1000 {
            now += 100;
            n.expire(now, usize::MAX);
            n.in2out(&other, ACK, true, now).unwrap();
        }
        assert_eq!(n.session(m).mapping, NIL, "expired at {}", last + timeout);
        assert!(n.kin.is_empty());
    }
}
