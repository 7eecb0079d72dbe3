#!/usr/bin/python3
"""A PPTP server (PAC) for scripts/pptp-e2e.sh: the control protocol of RFC 2637 on a
real TCP listener, and an echo of enhanced GRE (version 1) on a raw socket. No PPP is
run (the test kernel has none): the GRE payload is only carried back.

Control: Start-Control-Connection-Request -> Reply, Echo-Request -> Reply,
Outgoing-Call-Request -> Reply (with a Call ID of the server's own, distinct for every
call), Set-Link-Info (recorded), Call-Clear-Request -> Call-Disconnect-Notify (the call
ends; a clear naming a call this connection cleared before gets the notify again, as a
PNS whose notify was lost asks for it), Stop-Control-Connection-Request -> Reply.

GRE: a packet whose key names one of the server's live calls is sent back to the
address it came from, keyed by that call's peer Call ID (the client's Call ID as the
server was told it in the Outgoing-Call-Request, i.e. after any NAT), its payload
followed by "|from=SRC|pns=PEER_CALL_ID|pac=CALL_ID". A packet for no live call is not
answered.

Every event is one JSON line in the log: {"ev": "sccrq" | "call" | "sli" | "clear" |
"clear-again" | "clear-unknown" | "gre" | "gre-unknown" | ..., ...}, with the peer's address.

Usage: pptp-peer.py ADDR LOGFILE [FIRST_CALL_ID]
  FIRST_CALL_ID: the server's first Call ID (0x4000); the next calls count up from it.
"""

import json
import socket
import struct
import sys
import threading
import time

MAGIC = 0x1A2B3C4D
PPTP_PORT = 1723
GRE_PROTO = 47
GRE_PPP = 0x880B

SCCRQ, SCCRP, STOPRQ, STOPRP, ECHORQ, ECHORP = 1, 2, 3, 4, 5, 6
OCRQ, OCRP, CCRQ, CDN, SLI = 7, 8, 12, 13, 15

addr, logfile = sys.argv[1], sys.argv[2]
log_lock = threading.Lock()
log = open(logfile, "a", buffering=1)
calls_lock = threading.Lock()
calls = {}  # the server's call ID -> {"peer": address, "pns": peer call ID}
next_call = [int(sys.argv[3]) if len(sys.argv) > 3 else 0x4000]


def record(**ev):
    ev["t"] = round(time.time(), 3)
    with log_lock:
        log.write(json.dumps(ev) + "\n")


def control(ctype, body):
    """A control message: length, message type 1, magic cookie, type, reserved."""
    return struct.pack("!HHIHH", 12 + len(body), 1, MAGIC, ctype, 0) + body


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def serve(conn, peer):
    mine = []  # the calls of this control connection
    ended = {}  # the calls it cleared: the PNS's Call ID -> ours
    try:
        while True:
            head = read_exact(conn, 2)
            if head is None:
                break
            (length,) = struct.unpack("!H", head)
            if length < 12:
                record(ev="bad-length", peer=peer[0], length=length)
                break
            rest = read_exact(conn, length - 2)
            if rest is None:
                break
            msg = head + rest
            _, mtype, magic, ctype, _ = struct.unpack("!HHIHH", msg[:12])
            if mtype != 1 or magic != MAGIC:
                record(ev="bad-header", peer=peer[0])
                break
            body = msg[12:]
            if ctype == SCCRQ:
                record(ev="sccrq", peer=peer[0], port=peer[1])
                conn.sendall(control(SCCRP, struct.pack(
                    "!HBBIIHH64s64s", 0x0100, 1, 0, 3, 3, 65535, 1,
                    b"pptp-peer", b"cgnat-e2e")))
            elif ctype == ECHORQ:
                (ident,) = struct.unpack("!I", body[:4])
                conn.sendall(control(ECHORP, struct.pack("!IBBH", ident, 1, 0, 0)))
            elif ctype == OCRQ:
                pns, serial = struct.unpack("!HH", body[:4])
                with calls_lock:
                    pac = next_call[0]
                    next_call[0] += 1
                    calls[pac] = {"peer": peer[0], "pns": pns}
                mine.append(pac)
                record(ev="call", peer=peer[0], port=peer[1], pns=pns, pac=pac, serial=serial)
                conn.sendall(control(OCRP, struct.pack(
                    "!HHBBHIHHI", pac, pns, 1, 0, 0, 64000, 64, 0, 0)))
            elif ctype == SLI:
                (pac,) = struct.unpack("!H", body[:2])
                record(ev="sli", peer=peer[0], pac=pac, known=pac in mine)
            elif ctype == CCRQ:
                (pns,) = struct.unpack("!H", body[:2])
                with calls_lock:
                    pac = next((c for c in mine if c in calls and calls[c]["pns"] == pns), None)
                    if pac is not None:
                        del calls[pac]
                if pac is None and pns in ended:
                    # A clear of a call this connection cleared already: the PNS did
                    # not get the notify; it is sent again, as the first was.
                    record(ev="clear-again", peer=peer[0], pns=pns, pac=ended[pns])
                    conn.sendall(control(CDN, struct.pack("!HBBHH128s", pns, 1, 0, 0, 0, b"")))
                    continue
                if pac is None:
                    record(ev="clear-unknown", peer=peer[0], pns=pns)
                    continue
                ended[pns] = pac
                record(ev="clear", peer=peer[0], pns=pns, pac=pac)
                # The Call ID of a Call-Disconnect-Notify names the call as the PNS
                # knows it (its own Call ID), as pptp-linux reads it and Linux's
                # nf_nat_pptp translates it.
                conn.sendall(control(CDN, struct.pack("!HBBHH128s", pns, 1, 0, 0, 0, b"")))
            elif ctype == STOPRQ:
                record(ev="stop", peer=peer[0])
                conn.sendall(control(STOPRP, struct.pack("!BBH", 1, 0, 0)))
            else:
                record(ev="other", peer=peer[0], ctype=ctype)
    except OSError as e:
        record(ev="conn-error", peer=peer[0], error=str(e))
    finally:
        with calls_lock:
            for c in mine:
                calls.pop(c, None)
        record(ev="closed", peer=peer[0], port=peer[1])
        conn.close()


def gre_echo():
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, GRE_PROTO)
    # The echo leaves from the server's address whatever the route's source would be.
    raw.bind((addr, 0))
    while True:
        pkt, (src, _) = raw.recvfrom(65535)
        ihl = (pkt[0] & 0x0F) * 4
        if socket.inet_ntoa(pkt[16:20]) != addr:
            continue
        gre = pkt[ihl:]
        if len(gre) < 8:
            continue
        flags, proto, plen, key = struct.unpack("!HHHH", gre[:8])
        if flags & 0x7 != 1 or not flags & 0x2000 or proto != GRE_PPP:
            record(ev="gre-other", src=src, flags=flags, proto=proto)
            continue
        off = 8 + (4 if flags & 0x1000 else 0) + (4 if flags & 0x0080 else 0)
        seq = struct.unpack("!I", gre[8:12])[0] if flags & 0x1000 else None
        payload = gre[off:off + plen]
        with calls_lock:
            call = calls.get(key)
        text = payload[4:].decode("ascii", "replace")
        if call is None:
            record(ev="gre-unknown", src=src, key=key, payload=text)
            continue
        record(ev="gre", src=src, key=key, pns=call["pns"], payload=text)
        back = payload + ("|from=%s|pns=%d|pac=%d" % (src, call["pns"], key)).encode()
        hdr = struct.pack("!HHHH", 0x3001, GRE_PPP, len(back), call["pns"])
        hdr += struct.pack("!I", seq if seq is not None else 0)
        raw.sendto(hdr + back, (src, 0))


def main():
    threading.Thread(target=gre_echo, daemon=True).start()
    lsn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsn.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsn.bind((addr, PPTP_PORT))
    lsn.listen(256)
    record(ev="listening", addr=addr)
    while True:
        conn, peer = lsn.accept()
        threading.Thread(target=serve, args=(conn, peer), daemon=True).start()


main()
