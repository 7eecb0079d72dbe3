//! The PCP (RFC 6887) and NAT-PMP (RFC 6886) server on the inside port's address.
//!
//! Split like the ALGs: the worker that owns the subscriber (the only writer of its
//! tables) reads the request, creates, refreshes or deletes the mapping through the
//! NAT's PCP API ([`crate::nat::pcp`]) and puts what it decided ([`Decision`]) in
//! front of the frame; the control lcore builds the answer from the request and the
//! decision and sends it back ([`answer`]). The control lcore also announces the
//! server's (re)start to the inside (ANNOUNCE, RFC 6887 14.1.3; [`announce`]).
//! Every request's outcome is counted ([`PcpOutcome`]).

use crate::buf::PacketBuf;
use crate::counters::{PcpOutcome, WorkerCounters};
use crate::nat::pcp::{PcpAsk, PcpRefusal};
use crate::nat::Nat;
use crate::wire::ethernet::Mac;
use crate::wire::pcp::{self as w, pmp, result, Request};
use crate::wire::{be16, be32, checksum, ethernet, ipv4, put16, put32};

/// The server's settings (`[pcp]`).
pub use cgnat_config::Pcp as PcpParams;

/// The server's settings when it is on.
pub fn params(c: &PcpParams) -> Option<PcpParams> {
    c.enabled.then_some(*c)
}

/// Requests one subscriber may make per second (more are dropped, counted).
pub const REQUESTS_PER_SECOND: u32 = 16;
const RATE_SLOTS: usize = 256;

/// Requests per subscriber this second, in a small hashed table (subscribers that
/// hash alike share a slot's budget until one of them moves on).
pub struct RateLimit {
    slots: [(u32, u32, u32); RATE_SLOTS],
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            slots: [(0, 0, 0); RATE_SLOTS],
        }
    }
}

impl RateLimit {
    /// Whether `addr` may make one more request at `now`.
    pub fn allow(&mut self, addr: u32, now: u32) -> bool {
        let s = &mut self.slots[crate::nat::hash32(addr) as usize % RATE_SLOTS];
        if s.0 != addr || s.1 != now {
            *s = (addr, now, 0);
        }
        s.2 += 1;
        s.2 <= REQUESTS_PER_SECOND
    }
}

/// What the worker decided about a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// A NAT-PMP answer (else PCP).
    pub pmp: bool,
    /// Result code (PCP's or NAT-PMP's).
    pub code: u16,
    /// Lifetime to answer (seconds).
    pub lifetime: u32,
    /// The mapping's outside endpoint (NAT-PMP public address: the address).
    pub external: (u32, u16),
}

const MAGIC: u8 = 0xA9;
const TAG_LEN: usize = 16;

impl Decision {
    /// Prepends the decision to the frame; false without headroom.
    pub fn push<B: PacketBuf>(&self, buf: &mut B) -> bool {
        if !buf.prepend(TAG_LEN) {
            return false;
        }
        let d = buf.data_mut();
        d[0] = MAGIC;
        d[1] = u8::from(self.pmp);
        put16(d, 2, self.code);
        put32(d, 4, self.lifetime);
        put32(d, 8, self.external.0);
        put16(d, 12, self.external.1);
        put16(d, 14, 0);
        true
    }

    /// Whether the frame starts with a decision.
    pub fn tagged<B: PacketBuf>(buf: &B) -> bool {
        let d = buf.data();
        d.len() >= TAG_LEN && d[0] == MAGIC && d[1] <= 1 && be16(d, 14) == 0
    }

    /// Takes the decision off the frame.
    pub fn pop<B: PacketBuf>(buf: &mut B) -> Option<Decision> {
        if !Self::tagged(buf) {
            return None;
        }
        let d = buf.data();
        let t = Decision {
            pmp: d[1] == 1,
            code: be16(d, 2),
            lifetime: be32(d, 4),
            external: (be32(d, 8), be16(d, 12)),
        };
        buf.adj(TAG_LEN).then_some(t)
    }
}

/// The internal address a request speaks for: THIRD_PARTY's when it has one, else
/// its source. The worker that owns that address serves it.
pub fn internal_addr(req: &Request, src: u32) -> u32 {
    match req {
        Request::Pcp { map, .. } => map.third_party.unwrap_or(src),
        _ => src,
    }
}

fn pcp_error(code: u8) -> (Decision, PcpOutcome) {
    let outcome = match code {
        result::UNSUPP_VERSION => PcpOutcome::UnsuppVersion,
        result::UNSUPP_OPCODE => PcpOutcome::UnsuppOpcode,
        result::UNSUPP_OPTION => PcpOutcome::UnsuppOption,
        result::MALFORMED_OPTION => PcpOutcome::MalformedOption,
        result::UNSUPP_PROTOCOL => PcpOutcome::UnsuppProtocol,
        result::ADDRESS_MISMATCH => PcpOutcome::AddressMismatch,
        result::NOT_AUTHORIZED => PcpOutcome::NotAuthorized,
        result::USER_EX_QUOTA => PcpOutcome::Quota,
        result::NO_RESOURCES => PcpOutcome::NoResources,
        result::CANNOT_PROVIDE_EXTERNAL => PcpOutcome::CannotProvide,
        result::EXCESSIVE_REMOTE_PEERS => PcpOutcome::ExcessivePeers,
        _ => PcpOutcome::MalformedRequest,
    };
    // How long the client should take the error to last (RFC 6887 7.2): short for
    // a lack of resources, longer for what will not change.
    let lifetime = match code {
        result::NO_RESOURCES | result::USER_EX_QUOTA | result::CANNOT_PROVIDE_EXTERNAL => 30,
        _ => 1800,
    };
    (
        Decision {
            pmp: false,
            code: u16::from(code),
            lifetime,
            external: (0, 0),
        },
        outcome,
    )
}

fn refusal_code(r: PcpRefusal) -> u8 {
    match r {
        PcpRefusal::NonceMismatch => result::NOT_AUTHORIZED,
        PcpRefusal::Quota | PcpRefusal::PortQuota => result::USER_EX_QUOTA,
        PcpRefusal::NoResources => result::NO_RESOURCES,
        PcpRefusal::CannotProvide => result::CANNOT_PROVIDE_EXTERNAL,
    }
}

/// Serves request `req` from inside address `src` on the worker that owns the
/// internal address: the decision to answer with and its outcome.
pub fn serve(
    nat: &mut Nat,
    p: &PcpParams,
    req: &Request,
    src: u32,
    now: u32,
) -> (Decision, PcpOutcome) {
    let life = |l: u32| l.clamp(p.min_lifetime, p.max_lifetime);
    let pmp_answer = |code: u16, lifetime: u32, external: (u32, u16), o: PcpOutcome| {
        (
            Decision {
                pmp: true,
                code,
                lifetime,
                external,
            },
            o,
        )
    };
    match *req {
        Request::PmpAddress | Request::PmpMap { .. } | Request::PmpError { .. } if !p.nat_pmp => {
            pmp_answer(pmp::UNSUPP_VERSION, 0, (0, 0), PcpOutcome::UnsuppVersion)
        }
        Request::PmpError { code, .. } => pmp_answer(code, 0, (0, 0), PcpOutcome::UnsuppOpcode),
        Request::PmpAddress => match nat.pcp_external(src) {
            Some(a) => pmp_answer(pmp::SUCCESS, 0, (a, 0), PcpOutcome::Answered),
            None => pmp_answer(pmp::NETWORK_FAILURE, 0, (0, 0), PcpOutcome::NoResources),
        },
        Request::PmpMap {
            proto,
            internal_port,
            external_port,
            lifetime,
        } => {
            if lifetime == 0 {
                // RFC 6886 3.4: a delete (internal port 0: all of the client's).
                let _ = nat.pcp_delete(proto, (src, internal_port), None, now);
                return pmp_answer(pmp::SUCCESS, 0, (0, 0), PcpOutcome::Deleted);
            }
            if internal_port == 0 {
                return pmp_answer(pmp::REFUSED, 0, (0, 0), PcpOutcome::NotAuthorized);
            }
            let ask = PcpAsk {
                proto,
                inside: (src, internal_port),
                suggest: (0, external_port),
                lifetime: life(lifetime),
                max_per_subscriber: p.max_mappings_per_subscriber,
                ..PcpAsk::default()
            };
            match nat.pcp_map(&ask, now) {
                Ok(ext) => pmp_answer(pmp::SUCCESS, ask.lifetime, ext, PcpOutcome::Mapped),
                Err(r) => {
                    let (_, o) = pcp_error(refusal_code(r));
                    pmp_answer(pmp::NO_RESOURCES, 0, (0, 0), o)
                }
            }
        }
        Request::PcpError { code, .. } => pcp_error(code),
        Request::Pcp {
            opcode,
            lifetime,
            client,
            map,
        } => {
            if client != Some(src) {
                return pcp_error(result::ADDRESS_MISMATCH);
            }
            if opcode == w::op::ANNOUNCE {
                return (
                    Decision {
                        pmp: false,
                        code: 0,
                        lifetime: 0,
                        external: (0, 0),
                    },
                    PcpOutcome::Answered,
                );
            }
            if map.third_party.is_some() && !p.allow_third_party {
                let (d, _) = pcp_error(result::NOT_AUTHORIZED);
                return (d, PcpOutcome::ThirdParty);
            }
            if map.proto != ipv4::PROTO_TCP && map.proto != ipv4::PROTO_UDP {
                return pcp_error(result::UNSUPP_PROTOCOL);
            }
            let inside = (map.third_party.unwrap_or(src), map.internal_port);
            if lifetime == 0 {
                return match nat.pcp_delete(map.proto, inside, Some(map.nonce), now) {
                    Ok(()) => (
                        Decision {
                            pmp: false,
                            code: 0,
                            lifetime: 0,
                            external: (0, 0),
                        },
                        PcpOutcome::Deleted,
                    ),
                    Err(r) => pcp_error(refusal_code(r)),
                };
            }
            if map.internal_port == 0 {
                // "All ports": not given.
                return pcp_error(if opcode == w::op::PEER {
                    result::MALFORMED_REQUEST
                } else {
                    result::NOT_AUTHORIZED
                });
            }
            let ask = PcpAsk {
                proto: map.proto,
                inside,
                suggest: (map.external_addr, map.external_port),
                lifetime: life(lifetime),
                prefer_failure: map.prefer_failure,
                filters: map.filters,
                n_filters: map.n_filters,
                clear_filters: map.clear_filters,
                nonce: map.nonce,
                peer: (opcode == w::op::PEER).then_some(map.peer),
                max_per_subscriber: p.max_mappings_per_subscriber,
            };
            match nat.pcp_map(&ask, now) {
                Ok(ext) => (
                    Decision {
                        pmp: false,
                        code: 0,
                        lifetime: ask.lifetime,
                        external: ext,
                    },
                    PcpOutcome::Mapped,
                ),
                Err(r) => pcp_error(refusal_code(r)),
            }
        }
    }
}

/// Longest answer: a PCP message.
const MAX_ANSWER: usize = w::MAX_LEN;

/// Turns a request frame (Ethernet, IPv4, UDP to the server) carrying a decision
/// into its answer, in place: from `server(client address)` (the inside port's MAC,
/// its address where that client reaches it, and the server's port) back to the
/// client. False if the frame is not one.
pub fn answer<B: PacketBuf>(
    buf: &mut B,
    server: impl Fn(u32) -> Option<(Mac, u32, u16)>,
    epoch: u32,
) -> bool {
    let Some(dec) = Decision::pop(buf) else {
        return false;
    };
    let d = buf.data();
    let Some((l4, end)) = udp_bounds(d) else {
        return false;
    };
    let client_mac: Mac = match d.get(6..12).and_then(|m| m.try_into().ok()) {
        Some(m) => m,
        None => return false,
    };
    let client = (be32(d, ethernet::HEADER_LEN + 12), be16(d, l4));
    let Some(server) = server(client.0) else {
        return false;
    };
    let req = &d[l4 + 8..end];
    let mut out = [0u8; MAX_ANSWER];
    let n = if dec.pmp {
        let opcode = req.get(1).copied().unwrap_or(0) & 0x7f;
        let (int_port, life) = if req.len() >= 12 {
            (be16(req, 4), dec.lifetime)
        } else {
            (0, 0)
        };
        w::build_pmp(
            &mut out,
            opcode,
            dec.code,
            epoch,
            dec.external.0,
            (int_port, dec.external.1, life),
        )
    } else {
        w::build_response(
            req,
            &mut out,
            dec.code as u8,
            dec.lifetime,
            epoch,
            dec.external,
        )
    };
    emit_udp(
        buf,
        &out[..n],
        (server.0, client_mac),
        (server.1, server.2),
        client,
    )
}

/// The UDP header's offset and the datagram's end, for a whole unfragmented
/// Ethernet/IPv4/UDP frame.
fn udp_bounds(d: &[u8]) -> Option<(usize, usize)> {
    let l3 = ethernet::HEADER_LEN;
    let ip = d.get(l3..)?;
    if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != ipv4::PROTO_UDP {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(be16(ip, 2));
    if ihl < 20 || total < ihl + 8 || total > ip.len() {
        return None;
    }
    let l4 = l3 + ihl;
    let ulen = usize::from(be16(d, l4 + 4));
    if ulen < 8 || ulen > total - ihl {
        return None;
    }
    Some((l4, l4 + ulen))
}

/// Rewrites `buf` as one Ethernet/IPv4/UDP frame carrying `payload`.
fn emit_udp<B: PacketBuf>(
    buf: &mut B,
    payload: &[u8],
    macs: (Mac, Mac),
    from: (u32, u16),
    to: (u32, u16),
) -> bool {
    let l4 = ethernet::HEADER_LEN + 20;
    let total = l4 + 8 + payload.len();
    if !buf.set_len(total) {
        return false;
    }
    let d = buf.data_mut();
    ethernet::Frame::new_checked(&mut d[..])
        .map(|mut f| {
            f.set_addrs(&macs.0, &macs.1);
            f.set_ethertype(ethernet::ETHERTYPE_IPV4);
        })
        .is_ok()
        && {
            let ulen = (8 + payload.len()) as u16;
            ipv4::emit(
                &mut d[ethernet::HEADER_LEN..],
                (20 + 8 + payload.len()) as u16,
                0,
                true,
                if to.0 >> 28 == 0xe { 1 } else { 64 },
                ipv4::PROTO_UDP,
                from.0,
                to.0,
            );
            put16(d, l4, from.1);
            put16(d, l4 + 2, to.1);
            put16(d, l4 + 4, ulen);
            put16(d, l4 + 6, 0);
            d[l4 + 8..total].copy_from_slice(payload);
            let acc = checksum::add(
                checksum::pseudo_header(
                    from.0.to_be_bytes(),
                    to.0.to_be_bytes(),
                    ipv4::PROTO_UDP,
                    ulen,
                ),
                checksum::sum(&d[l4..total]),
            );
            let c = checksum::finish(acc);
            put16(d, l4 + 6, if c == 0 { 0xffff } else { c });
            true
        }
}

/// The all-hosts group and its MAC (RFC 6887 14.1.3: ANNOUNCE goes there).
pub const ALL_HOSTS: u32 = 0xe000_0001;
const ALL_HOSTS_MAC: Mac = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];

/// Builds the unsolicited ANNOUNCE into `buf` (any buffer with room): from the inside
/// port's MAC and address and the server's port to 224.0.0.1:5350.
pub fn announce<B: PacketBuf>(buf: &mut B, server: (Mac, u32, u16), epoch: u32) -> bool {
    let mut out = [0u8; w::HEADER_LEN];
    let n = w::build_announce(&mut out, epoch);
    emit_udp(
        buf,
        &out[..n],
        (server.0, ALL_HOSTS_MAC),
        (server.1, server.2),
        (ALL_HOSTS, w::CLIENT_PORT),
    )
}

/// Counts an outcome.
pub fn count(counters: &WorkerCounters, o: PcpOutcome) {
    counters.pcp[o as usize].inc();
}

/// Seconds after start-up the ANNOUNCE is sent (RFC 6887 14.1.3 asks for a few
/// copies, spaced out, as multicast is unreliable).
pub const ANNOUNCE_AT: [u32; 4] = [0, 1, 3, 7];
