//! PCP (RFC 6887) and NAT-PMP (RFC 6886, version 0) messages: a bounded parser of
//! requests into a fixed-size [`Request`] (no allocation, never panics on any input)
//! and builders of the responses into a caller's buffer.

use super::{be16, be32, put16, put32};

/// UDP port the server listens on (both protocols).
pub const SERVER_PORT: u16 = 5351;
/// UDP port clients listen on for announcements.
pub const CLIENT_PORT: u16 = 5350;
/// PCP version.
pub const VERSION: u8 = 2;
/// NAT-PMP version.
pub const NATPMP_VERSION: u8 = 0;
/// Longest PCP message (RFC 6887 7).
pub const MAX_LEN: usize = 1100;
/// PCP common header length.
pub const HEADER_LEN: usize = 24;
/// MAP opcode data length.
pub const MAP_LEN: usize = 36;
/// PEER opcode data length.
pub const PEER_LEN: usize = 56;
/// FILTER options one request may carry.
pub const MAX_FILTERS: usize = 4;

/// Opcodes.
pub mod op {
    /// ANNOUNCE.
    pub const ANNOUNCE: u8 = 0;
    /// MAP.
    pub const MAP: u8 = 1;
    /// PEER.
    pub const PEER: u8 = 2;
}

/// Option codes.
pub mod opt {
    /// THIRD_PARTY: the internal address is another host's.
    pub const THIRD_PARTY: u8 = 1;
    /// PREFER_FAILURE: the suggested external endpoint or nothing.
    pub const PREFER_FAILURE: u8 = 2;
    /// FILTER: only this remote prefix and port may use the mapping.
    pub const FILTER: u8 = 3;
}

/// PCP result codes (RFC 6887 7.4).
pub mod result {
    /// SUCCESS.
    pub const SUCCESS: u8 = 0;
    /// UNSUPP_VERSION.
    pub const UNSUPP_VERSION: u8 = 1;
    /// NOT_AUTHORIZED.
    pub const NOT_AUTHORIZED: u8 = 2;
    /// MALFORMED_REQUEST.
    pub const MALFORMED_REQUEST: u8 = 3;
    /// UNSUPP_OPCODE.
    pub const UNSUPP_OPCODE: u8 = 4;
    /// UNSUPP_OPTION.
    pub const UNSUPP_OPTION: u8 = 5;
    /// MALFORMED_OPTION.
    pub const MALFORMED_OPTION: u8 = 6;
    /// NETWORK_FAILURE.
    pub const NETWORK_FAILURE: u8 = 7;
    /// NO_RESOURCES.
    pub const NO_RESOURCES: u8 = 8;
    /// UNSUPP_PROTOCOL.
    pub const UNSUPP_PROTOCOL: u8 = 9;
    /// USER_EX_QUOTA.
    pub const USER_EX_QUOTA: u8 = 10;
    /// CANNOT_PROVIDE_EXTERNAL.
    pub const CANNOT_PROVIDE_EXTERNAL: u8 = 11;
    /// ADDRESS_MISMATCH.
    pub const ADDRESS_MISMATCH: u8 = 12;
    /// EXCESSIVE_REMOTE_PEERS.
    pub const EXCESSIVE_REMOTE_PEERS: u8 = 13;
}

/// NAT-PMP result codes (RFC 6886 3.5).
pub mod pmp {
    /// Success.
    pub const SUCCESS: u16 = 0;
    /// Unsupported version.
    pub const UNSUPP_VERSION: u16 = 1;
    /// Not authorized / refused.
    pub const REFUSED: u16 = 2;
    /// Network failure (no external address).
    pub const NETWORK_FAILURE: u16 = 3;
    /// Out of resources.
    pub const NO_RESOURCES: u16 = 4;
    /// Unsupported opcode.
    pub const UNSUPP_OPCODE: u16 = 5;
}

/// A FILTER option: remote prefix (IPv4, length 0..=32) and port (0: any).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Remote address.
    pub addr: u32,
    /// Prefix length over the IPv4 address.
    pub prefix: u8,
    /// Remote port, 0 for any.
    pub port: u16,
}

impl Filter {
    /// Whether remote `addr`:`port` passes.
    pub fn admits(&self, addr: u32, port: u16) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix.min(32)))
        };
        (addr ^ self.addr) & mask == 0 && (self.port == 0 || self.port == port)
    }
}

/// A MAP or PEER request's opcode data and options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    /// Mapping nonce.
    pub nonce: [u8; 12],
    /// IP protocol (0: all).
    pub proto: u8,
    /// Internal port.
    pub internal_port: u16,
    /// Suggested external port (0: any).
    pub external_port: u16,
    /// Suggested external address (0: any; from an IPv4-mapped address).
    pub external_addr: u32,
    /// PEER: the remote peer.
    pub peer: (u32, u16),
    /// THIRD_PARTY's internal address, if the option came.
    pub third_party: Option<u32>,
    /// PREFER_FAILURE came.
    pub prefer_failure: bool,
    /// FILTER options (the first `n_filters`).
    pub filters: [Filter; MAX_FILTERS],
    /// How many FILTER options came.
    pub n_filters: u8,
    /// A FILTER with prefix length 0 came: earlier filters are removed.
    pub clear_filters: bool,
}

/// A request, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// PCP: opcode, requested lifetime, client address (IPv4 from an IPv4-mapped
    /// address; None if it is not one), and the opcode's data.
    Pcp {
        /// Opcode.
        opcode: u8,
        /// Requested lifetime (seconds).
        lifetime: u32,
        /// Client's address as it wrote it.
        client: Option<u32>,
        /// MAP or PEER data (default for ANNOUNCE).
        map: Mapping,
    },
    /// A PCP request refused before its opcode was read: the result code, the
    /// opcode (for the response) and the requested lifetime.
    PcpError {
        /// Result code.
        code: u8,
        /// Opcode as received (0 if the header is too short to say).
        opcode: u8,
    },
    /// NAT-PMP public address request.
    PmpAddress,
    /// NAT-PMP map request: protocol (6 or 17), internal port, suggested external
    /// port, lifetime.
    PmpMap {
        /// IP protocol.
        proto: u8,
        /// Internal port.
        internal_port: u16,
        /// Suggested external port.
        external_port: u16,
        /// Requested lifetime.
        lifetime: u32,
    },
    /// NAT-PMP request refused: result code and opcode.
    PmpError {
        /// Result code.
        code: u16,
        /// Opcode as received.
        opcode: u8,
    },
}

/// Why a message is dropped without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silent {
    /// Shorter than 2 bytes (RFC 6887 8.3), or a NAT-PMP request of the wrong length.
    Short,
    /// A response (R bit set, or NAT-PMP opcode >= 128).
    Response,
}

/// The IPv4 address of an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
pub fn mapped_v4(b: &[u8]) -> Option<u32> {
    if b.len() != 16 || b[..10].iter().any(|&x| x != 0) || b[10] != 0xff || b[11] != 0xff {
        return None;
    }
    Some(be32(b, 12))
}

/// Writes `a` as an IPv4-mapped IPv6 address into `b[..16]`.
pub fn put_mapped_v4(b: &mut [u8], a: u32) {
    b[..10].fill(0);
    b[10] = 0xff;
    b[11] = 0xff;
    put32(b, 12, a);
}

/// Parses a request (a UDP payload to the server's port).
pub fn parse(d: &[u8]) -> Result<Request, Silent> {
    if d.len() < 2 {
        return Err(Silent::Short);
    }
    if d[0] == NATPMP_VERSION {
        return parse_pmp(d);
    }
    if d[1] & 0x80 != 0 {
        return Err(Silent::Response);
    }
    let opcode = d[1] & 0x7f;
    let err = |code| Ok(Request::PcpError { code, opcode });
    if d[0] != VERSION {
        return err(result::UNSUPP_VERSION);
    }
    if d.len() < HEADER_LEN || d.len() > MAX_LEN || !d.len().is_multiple_of(4) {
        return err(result::MALFORMED_REQUEST);
    }
    let lifetime = be32(d, 4);
    let client = mapped_v4(&d[8..24]);
    let need = match opcode {
        op::ANNOUNCE => 0,
        op::MAP => MAP_LEN,
        op::PEER => PEER_LEN,
        _ => return err(result::UNSUPP_OPCODE),
    };
    if d.len() < HEADER_LEN + need {
        return err(result::MALFORMED_REQUEST);
    }
    let mut map = Mapping::default();
    if need > 0 {
        let o = &d[HEADER_LEN..HEADER_LEN + need];
        map.nonce.copy_from_slice(&o[..12]);
        map.proto = o[12];
        map.internal_port = be16(o, 16);
        map.external_port = be16(o, 18);
        map.external_addr = if o[20..36].iter().all(|&b| b == 0) {
            0
        } else {
            match mapped_v4(&o[20..36]) {
                Some(a) => a,
                // An IPv6 external address: this is a NAT44.
                None => return err(result::UNSUPP_PROTOCOL),
            }
        };
        if opcode == op::PEER {
            let Some(peer) = mapped_v4(&o[40..56]) else {
                return err(result::MALFORMED_REQUEST);
            };
            map.peer = (peer, be16(o, 36));
        }
    }
    if let Err(code) = parse_options(&d[HEADER_LEN + need..], opcode, &mut map) {
        return err(code);
    }
    Ok(Request::Pcp {
        opcode,
        lifetime,
        client,
        map,
    })
}

fn parse_options(mut d: &[u8], opcode: u8, map: &mut Mapping) -> Result<(), u8> {
    while !d.is_empty() {
        if d.len() < 4 {
            return Err(result::MALFORMED_OPTION);
        }
        let (code, len) = (d[0], usize::from(be16(d, 2)));
        let padded = len.div_ceil(4) * 4;
        if d.len() < 4 + padded {
            return Err(result::MALFORMED_OPTION);
        }
        let data = &d[4..4 + len];
        match code {
            opt::THIRD_PARTY if opcode != op::ANNOUNCE => {
                if len != 16 || map.third_party.is_some() {
                    return Err(result::MALFORMED_OPTION);
                }
                map.third_party = Some(mapped_v4(data).ok_or(result::MALFORMED_OPTION)?);
            }
            opt::PREFER_FAILURE if opcode == op::MAP => {
                if len != 0 || map.prefer_failure {
                    return Err(result::MALFORMED_OPTION);
                }
                map.prefer_failure = true;
            }
            opt::FILTER if opcode == op::MAP => {
                if len != 20 {
                    return Err(result::MALFORMED_OPTION);
                }
                let prefix = data[1];
                let port = be16(data, 2);
                if prefix == 0 {
                    map.clear_filters = true;
                    map.n_filters = 0;
                } else {
                    let addr = mapped_v4(&data[4..20]).ok_or(result::MALFORMED_OPTION)?;
                    if !(96..=128).contains(&prefix) {
                        return Err(result::MALFORMED_OPTION);
                    }
                    let n = usize::from(map.n_filters);
                    if n == MAX_FILTERS {
                        return Err(result::EXCESSIVE_REMOTE_PEERS);
                    }
                    map.filters[n] = Filter {
                        addr,
                        prefix: prefix - 96,
                        port,
                    };
                    map.n_filters += 1;
                }
            }
            // A known option where its opcode does not allow it.
            opt::THIRD_PARTY | opt::PREFER_FAILURE | opt::FILTER => {
                return Err(result::MALFORMED_OPTION)
            }
            // Unknown: mandatory to process below 128, ignored above.
            c if c < 128 => return Err(result::UNSUPP_OPTION),
            _ => {}
        }
        d = &d[4 + padded..];
    }
    Ok(())
}

fn parse_pmp(d: &[u8]) -> Result<Request, Silent> {
    let opcode = d[1];
    if opcode >= 128 {
        return Err(Silent::Response);
    }
    match opcode {
        0 if d.len() == 2 => Ok(Request::PmpAddress),
        1 | 2 if d.len() == 12 => Ok(Request::PmpMap {
            proto: if opcode == 1 { 17 } else { 6 },
            internal_port: be16(d, 4),
            external_port: be16(d, 6),
            lifetime: be32(d, 8),
        }),
        0..=2 => Err(Silent::Short),
        _ => Ok(Request::PmpError {
            code: pmp::UNSUPP_OPCODE,
            opcode,
        }),
    }
}

/// Builds a PCP response to request `req` into `out`: the request's bytes are the
/// template (opcode data and options copied, RFC 6887 8.3), the header is the
/// response's. On success of MAP or PEER the assigned external endpoint is written
/// in. Returns the length.
pub fn build_response(
    req: &[u8],
    out: &mut [u8],
    code: u8,
    lifetime: u32,
    epoch: u32,
    external: (u32, u16),
) -> usize {
    let opcode = req.get(1).map_or(0, |b| b & 0x7f);
    let n = req.len().min(MAX_LEN).min(out.len()) & !3;
    let n = n.max(HEADER_LEN).min(out.len());
    out[..n].fill(0);
    let copy = req.len().min(n);
    out[..copy].copy_from_slice(&req[..copy]);
    out[0] = VERSION;
    out[1] = 0x80 | opcode;
    out[2] = 0;
    out[3] = code;
    put32(out, 4, lifetime);
    put32(out, 8, epoch);
    out[12..24].fill(0);
    let data = match opcode {
        op::MAP => MAP_LEN,
        op::PEER => PEER_LEN,
        _ => 0,
    };
    if code == result::SUCCESS && data > 0 && n >= HEADER_LEN + data {
        let o = &mut out[HEADER_LEN..];
        put16(o, 18, external.1);
        put_mapped_v4(&mut o[20..36], external.0);
    }
    n
}

/// Builds an unsolicited ANNOUNCE response (RFC 6887 14.1.3) into `out[..24]`.
pub fn build_announce(out: &mut [u8], epoch: u32) -> usize {
    out[..HEADER_LEN].fill(0);
    out[0] = VERSION;
    out[1] = 0x80 | op::ANNOUNCE;
    put32(out, 8, epoch);
    HEADER_LEN
}

/// Builds a NAT-PMP response into `out` (at least 16 bytes): public address
/// (`opcode` 0, 12 bytes), a map (1 or 2, 16 bytes), or the 8-byte header alone for
/// an unsupported version or opcode. Returns the length.
pub fn build_pmp(
    out: &mut [u8],
    opcode: u8,
    code: u16,
    epoch: u32,
    addr: u32,
    map: (u16, u16, u32),
) -> usize {
    out[0] = NATPMP_VERSION;
    out[1] = 128 | opcode;
    put16(out, 2, code);
    put32(out, 4, epoch);
    match opcode {
        _ if code == pmp::UNSUPP_VERSION || code == pmp::UNSUPP_OPCODE => 8,
        0 => {
            put32(out, 8, addr);
            12
        }
        _ => {
            put16(out, 8, map.0);
            put16(out, 10, map.1);
            put32(out, 12, map.2);
            16
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_request(lifetime: u32, client: u32, opts: &[u8]) -> Vec<u8> {
        let mut v = vec![2, 1, 0, 0];
        v.extend_from_slice(&lifetime.to_be_bytes());
        let mut a = [0u8; 16];
        put_mapped_v4(&mut a, client);
        v.extend_from_slice(&a);
        v.extend_from_slice(&[7; 12]);
        v.extend_from_slice(&[17, 0, 0, 0, 0x1f, 0x90, 0x1f, 0x91]);
        v.extend_from_slice(&[0; 16]);
        v.extend_from_slice(opts);
        v
    }

    #[test]
    fn map_request_parses_and_response_has_the_expected_bytes() {
        let req = map_request(3600, 0x6440_0002, &[]);
        let Ok(Request::Pcp {
            opcode,
            lifetime,
            client,
            map,
        }) = parse(&req)
        else {
            panic!("{:?}", parse(&req));
        };
        assert_eq!((opcode, lifetime, client), (1, 3600, Some(0x6440_0002)));
        assert_eq!(
            (map.proto, map.internal_port, map.external_port),
            (17, 8080, 8081)
        );
        assert_eq!(map.nonce, [7; 12]);
        let mut out = [0u8; 128];
        let n = build_response(&req, &mut out, 0, 600, 42, (0xc633_6401, 1025));
        let mut want = vec![2, 0x81, 0, 0, 0, 0, 2, 0x58, 0, 0, 0, 42];
        want.extend_from_slice(&[0; 12]);
        want.extend_from_slice(&[7; 12]);
        want.extend_from_slice(&[17, 0, 0, 0, 0x1f, 0x90, 0x04, 0x01]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 1]);
        assert_eq!(&out[..n], &want[..]);
    }

    #[test]
    fn options_parse_and_bad_ones_get_their_result_code() {
        let filter = |prefix: u8| {
            let mut o = vec![3, 0, 0, 20, 0, prefix, 0, 80];
            o.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 0]);
            o
        };
        let mut opts = vec![2, 0, 0, 0];
        opts.extend(filter(120));
        let Ok(Request::Pcp { map, .. }) = parse(&map_request(60, 1, &opts)) else {
            panic!()
        };
        assert!(map.prefer_failure);
        assert_eq!(map.n_filters, 1);
        assert!(map.filters[0].admits(0xc000_02fe, 80));
        assert!(!map.filters[0].admits(0xc000_0301, 80));
        assert!(!map.filters[0].admits(0xc000_0201, 81));
        let code = |opts: &[u8]| match parse(&map_request(60, 1, opts)) {
            Ok(Request::PcpError { code, .. }) => code,
            other => panic!("{other:?}"),
        };
        // PREFER_FAILURE twice, a truncated option, an unknown mandatory option, a
        // FILTER of the wrong length, a prefix shorter than the IPv4-mapped part,
        // too many filters.
        assert_eq!(code(&[2, 0, 0, 0, 2, 0, 0, 0]), result::MALFORMED_OPTION);
        assert_eq!(code(&[3, 0, 0, 20, 0, 0, 0, 0]), result::MALFORMED_OPTION);
        assert_eq!(code(&[99, 0, 0, 0]), result::UNSUPP_OPTION);
        assert_eq!(code(&[3, 0, 0, 4, 0, 0, 0, 0]), result::MALFORMED_OPTION);
        assert_eq!(code(&filter(64)), result::MALFORMED_OPTION);
        let five: Vec<u8> = (0..5).flat_map(|_| filter(128)).collect();
        assert_eq!(code(&five), result::EXCESSIVE_REMOTE_PEERS);
        // An optional unknown option is ignored.
        assert!(matches!(
            parse(&map_request(60, 1, &[200, 0, 0, 0])),
            Ok(Request::Pcp { .. })
        ));
    }

    #[test]
    fn bad_headers_get_their_result_code_or_no_answer() {
        assert_eq!(parse(&[2]), Err(Silent::Short));
        assert_eq!(parse(&[2, 0x81, 0, 0]), Err(Silent::Response));
        let mut r = map_request(60, 1, &[]);
        r[0] = 3;
        assert_eq!(
            parse(&r),
            Ok(Request::PcpError {
                code: result::UNSUPP_VERSION,
                opcode: 1
            })
        );
        r[0] = 2;
        r[1] = 9;
        assert_eq!(
            parse(&r),
            Ok(Request::PcpError {
                code: result::UNSUPP_OPCODE,
                opcode: 9
            })
        );
        // Truncated MAP, and a length not a multiple of 4.
        assert_eq!(
            parse(&map_request(60, 1, &[])[..40]),
            Ok(Request::PcpError {
                code: result::MALFORMED_REQUEST,
                opcode: 1
            })
        );
        assert!(matches!(
            parse(&map_request(60, 1, &[])[..59]),
            Ok(Request::PcpError {
                code: result::MALFORMED_REQUEST,
                ..
            })
        ));
    }

    #[test]
    fn natpmp_requests_and_responses() {
        assert_eq!(parse(&[0, 0]), Ok(Request::PmpAddress));
        let req = [0, 2, 0, 0, 0x1a, 0xe1, 0, 0, 0, 0, 0x1c, 0x20];
        assert_eq!(
            parse(&req),
            Ok(Request::PmpMap {
                proto: 6,
                internal_port: 6881,
                external_port: 0,
                lifetime: 7200
            })
        );
        assert_eq!(
            parse(&[0, 7, 0, 0]),
            Ok(Request::PmpError {
                code: pmp::UNSUPP_OPCODE,
                opcode: 7
            })
        );
        assert_eq!(parse(&[0, 1, 0]), Err(Silent::Short));
        assert_eq!(parse(&[0, 128]), Err(Silent::Response));
        let mut out = [0u8; 16];
        let n = build_pmp(&mut out, 0, 0, 5, 0xc633_6401, (0, 0, 0));
        assert_eq!(&out[..n], &[0, 128, 0, 0, 0, 0, 0, 5, 198, 51, 100, 1]);
        let n = build_pmp(&mut out, 2, 0, 5, 0, (6881, 1030, 7200));
        assert_eq!(
            &out[..n],
            &[0, 130, 0, 0, 0, 0, 0, 5, 0x1a, 0xe1, 0x04, 0x06, 0, 0, 0x1c, 0x20]
        );
        let n = build_pmp(&mut out, 7, pmp::UNSUPP_OPCODE, 5, 0, (0, 0, 0));
        assert_eq!(&out[..n], &[0, 135, 0, 5, 0, 0, 0, 5]);
    }

    #[test]
    fn announce_bytes() {
        let mut out = [0xaau8; 24];
        assert_eq!(build_announce(&mut out, 3), 24);
        let mut want = [0u8; 24];
        want[0] = 2;
        want[1] = 0x80;
        want[11] = 3;
        assert_eq!(out, want);
    }
}
