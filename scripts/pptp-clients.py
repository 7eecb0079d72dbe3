#!/usr/bin/python3
"""PPTP clients (PNS) for scripts/pptp-e2e.sh, all in the subscriber namespace: each
client has its own address (100.64.1.1, .2, ...), a real TCP control connection bound
to it (Start-Control-Connection, Outgoing-Call with Call ID 1 for every client: the NAT
must tell them apart, Set-Link-Info), and sends enhanced GRE (version 1, key = the
server's Call ID) built and sent with scapy from its address. One raw socket takes every
GRE packet that comes back and files it by destination address.

The server (scripts/pptp-peer.py) echoes each GRE packet to the call's peer Call ID and
appends what it saw ("|from=SRC|pns=ID|pac=ID"), so the clients see whether the NAT
gave every call its own Call ID on the outside and one pool address.

Scenarios, each printed as "PPTP-RESULT name=N ok=0|1 required=0|1 detail=...":
  two clients, then 100 (the two and 98 more, all calls live at once), then one
  client clears its call (Call-Clear-Request -> Call-Disconnect-Notify, which must
  name the client's own Call ID), sends the clear again as a client whose notify was
  lost does (the server answers with the notify again: the clear must reach it with
  the call's outside Call ID, the notify the client with its own), and keeps sending
  GRE on the call while the others go on;
  two calls on one control connection; a client closes its control connection without
  clearing its call and sends GRE on it once a NAT's linger for a closed connection's
  calls (cgnat's: 10 s) is past.

Usage: pptp-clients.py SERVER SERVER_LOG SUMMARY_JSON REQUIRED N
"""

import json
import socket
import struct
import sys
import threading
import time

from scapy.all import IP, Raw, conf  # noqa: E402
from scapy.layers.l2 import GRE_PPTP
from scapy.supersocket import L3RawSocket

server, server_log, summary_file = sys.argv[1], sys.argv[2], sys.argv[3]
required, total = sys.argv[4], int(sys.argv[5])
MAGIC = 0x1A2B3C4D
CALL_ID = 1  # every client's own Call ID
PPP_HEAD = b"\xff\x03\x00\x21"  # PPP address, control, protocol (IPv4)
# The seconds cgnat keeps the calls of a closed control connection (CALL_LINGER in
# dataplane/src/nat/calls.rs, docs/alg.md), and a margin for its once-a-second sweep.
LINGER = 10
LINGER_MARGIN = 2
summary = {}
failed_required = False


def result(name, ok, detail, req=None):
    global failed_required
    req = required if req is None else req
    print("PPTP-RESULT name=%s ok=%d required=%s detail=%s" % (name, 1 if ok else 0, req, detail), flush=True)
    if not ok and req == "1":
        failed_required = True


def control(ctype, body):
    return struct.pack("!HHIHH", 12 + len(body), 1, MAGIC, ctype, 0) + body


class Client:
    """One call, on a control connection of its own or on another call's (share)."""

    def __init__(self, addr, call_id=CALL_ID, share=None):
        self.addr = addr
        self.call_id = call_id
        self.name = "%s#%d" % (addr, call_id)
        self.share = share
        self.pac = None  # the server's Call ID
        self.sock = None
        self.seq = 0
        self.cdn = None
        self.peer = None  # the Peer's Call ID of the server's reply, as it came back

    def read(self):
        head = b""
        while len(head) < 2:
            chunk = self.sock.recv(2 - len(head))
            if not chunk:
                raise OSError("control connection closed")
            head += chunk
        (length,) = struct.unpack("!H", head)
        msg = head
        while len(msg) < length:
            chunk = self.sock.recv(length - len(msg))
            if not chunk:
                raise OSError("control connection closed")
            msg += chunk
        ctype = struct.unpack("!H", msg[8:10])[0]
        return ctype, msg[12:]

    def expect(self, want):
        ctype, body = self.read()
        if ctype != want:
            raise OSError("expected control message %d, got %d" % (want, ctype))
        return body

    def start(self):
        if self.share is not None:
            self.sock = self.share.sock
            return self.outgoing_call()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.bind((self.addr, 0))
        self.sock.connect((server, 1723))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(control(1, struct.pack("!HHIIHH64s64s", 0x0100, 0, 1, 1, 0, 1, b"client", b"e2e")))
        body = self.expect(2)
        if body[2] != 1:
            raise OSError("start-control-connection refused, result %d" % body[2])
        self.outgoing_call()

    def outgoing_call(self):
        self.sock.sendall(control(7, struct.pack(
            "!HHIIIIHHHH64s64s", self.call_id, 7, 2400, 10000000, 3, 3, 64, 0, 0, 0, b"", b"")))
        body = self.expect(8)
        pac, peer, res = struct.unpack("!HHB", body[:5])
        if res != 1:
            raise OSError("outgoing call refused, result %d" % res)
        self.pac, self.peer = pac, peer
        self.sock.sendall(control(15, struct.pack("!HHII", pac, 0, 0xFFFFFFFF, 0xFFFFFFFF)))

    def echo(self):
        self.sock.sendall(control(5, struct.pack("!I", 77)))
        body = self.expect(6)
        return struct.unpack("!I", body[:4])[0] == 77

    def clear(self):
        self.sock.sendall(control(12, struct.pack("!HH", self.call_id, 0)))
        body = self.expect(13)
        self.cdn = struct.unpack("!H", body[:2])[0]

    def gre(self, phase, count):
        pkts = []
        for _ in range(count):
            self.seq += 1
            marker = ("m=%s/%s/%d" % (self.name, phase, self.seq)).encode()
            pkts.append(IP(src=self.addr, dst=server, proto=47)
                        / GRE_PPTP(seqnum_present=1, sequence_number=self.seq, call_id=self.pac)
                        / Raw(PPP_HEAD + marker))
        return pkts


received = []  # (destination address, key, text)
recv_lock = threading.Lock()


def receiver():
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)
    while True:
        pkt = raw.recv(65535)
        ihl = (pkt[0] & 0x0F) * 4
        dst = socket.inet_ntoa(pkt[16:20])
        gre = pkt[ihl:]
        if len(gre) < 8:
            continue
        flags, _, plen, key = struct.unpack("!HHHH", gre[:8])
        off = 8 + (4 if flags & 0x1000 else 0) + (4 if flags & 0x0080 else 0)
        text = gre[off + 4:off + plen].decode("ascii", "replace")
        with recv_lock:
            received.append((dst, key, text))


l3 = L3RawSocket()


def send_round(clients, phase, count, settle=3.0):
    """Each client sends COUNT packets; waits until every one came back or SETTLE s."""
    with recv_lock:
        start = len(received)
    pkts = [p for c in clients for p in c.gre(phase, count)]
    for p in pkts:
        l3.send(p)
    deadline = time.time() + settle
    while time.time() < deadline:
        with recv_lock:
            got = sum(1 for r in received[start:] if "/%s/" % phase in r[2])
        if got >= len(pkts):
            break
        time.sleep(0.05)
    time.sleep(0.2)  # stragglers, and anything crossed
    with recv_lock:
        return received[start:]


def judge(clients, phase, got, count):
    """Per client: its own echoes (to its address, its Call ID, its marker), and crossed
    ones (to its address but another's marker or another Call ID)."""
    own, crossed = {}, []
    for dst, key, text in got:
        if "/%s/" % phase not in text:
            continue
        head = text.partition("|")[0]
        who = head[2:].split("/")[0]
        if who == "%s#%d" % (dst, key):
            own[who] = own.get(who, 0) + 1
        else:
            crossed.append("%s got %s key %d" % (dst, head, key))
    missing = [c.name for c in clients if own.get(c.name, 0) == 0]
    short = [c.name for c in clients if 0 < own.get(c.name, 0) < count]
    return own, crossed, missing, short


def run_phase(clients, phase, count, label, first_call):
    got = send_round(clients, phase, count)
    own, crossed, missing, short = judge(clients, phase, got, count)
    n = len(clients)
    echoed = sum(own.values())
    result("%s-echo" % label, not missing and not crossed,
           "clients=%d sent=%d echoed_own=%d without_echo=%d crossed=%d short=%d%s%s" % (
               n, n * count, echoed, len(missing), len(crossed), len(short),
               " missing:" + ",".join(missing[:5]) if missing else "",
               " crossed:" + ";".join(crossed[:3]) if crossed else ""))
    # The calls as the server recorded them (peer address, the Call ID it was told).
    calls = [e for e in server_events() if e.get("ev") == "call"][first_call:]
    froms = sorted({e["peer"] for e in calls})
    ids = [e["pns"] for e in calls]
    inside = [f for f in froms if f.startswith("100.64.")]
    result("%s-call-ids" % label, len(froms) == 1 and not inside and len(set(ids)) == len(ids) == n,
           "server saw %d calls from %s with %d distinct peer call IDs%s" % (
               len(ids), ",".join(froms) or "-", len(set(ids)),
               " (e.g. %s)" % ",".join(str(i) for i in sorted(set(ids))[:4]) if ids else ""))
    summary[label] = {"echoed": echoed, "sent": n * count, "crossed": len(crossed),
                      "missing": len(missing), "froms": froms, "distinct_ids": len(set(ids))}


def server_events():
    out = []
    for line in open(server_log):
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def main():
    threading.Thread(target=receiver, daemon=True).start()
    time.sleep(0.2)
    clients = [Client("100.64.1.%d" % i) for i in range(1, total + 1)]
    t0 = time.time()

    def start_all(cs):
        bad = []
        for c in cs:
            try:
                c.start()
            except OSError as e:
                bad.append("%s: %s" % (c.addr, e))
        return bad

    # 1. two clients, one Call ID between them
    def control_result(label, cs, bad):
        # The Outgoing-Call-Reply names the client's Call ID as its Peer's Call ID: it
        # must come back as the client's own (1), whatever the server was told.
        wrong = ["%s:%s" % (c.name, c.peer) for c in cs if c.pac and c.peer != c.call_id]
        result(label, not bad and not wrong, "calls set up %d/%d (at %.1f s), peer call ID in the reply not the client's: %d%s%s" % (
            sum(1 for c in cs if c.pac), len(cs), time.time() - t0, len(wrong),
            " (%s)" % ",".join(wrong[:3]) if wrong else "", " " + "; ".join(bad[:3]) if bad else ""))

    bad = start_all(clients[:2])
    control_result("two-control", clients[:2], bad)
    try:
        ok = clients[0].echo()
    except OSError as e:
        ok = False
    result("control-echo", ok, "Echo-Request answered on the control connection")
    run_phase([c for c in clients[:2] if c.pac], "two", 5, "two", 0)

    # 2. 100 clients (the two and the rest), all calls live
    bad = start_all(clients[2:])
    live = [c for c in clients if c.pac]
    control_result("many-control", clients, bad)
    run_phase(live, "many", 3, "many", 0)

    # 3. a client clears its call, then sends on it; the others go on. The client is
    # one whose Call ID the server knows by another number (the NAT's), so that a
    # Call-Disconnect-Notify left untranslated shows.
    outside = {e["pac"]: e["pns"] for e in server_events() if e.get("ev") == "call"}
    gone = next((c for c in live if outside.get(c.pac, c.call_id) != c.call_id), clients[0])
    try:
        gone.clear()
        cleared = True
    except OSError as e:
        cleared = False
        result("clear", False, "no Call-Disconnect-Notify: %s" % e)
    if cleared:
        result("clear-disconnect-notify", gone.cdn == gone.call_id,
               "Call-Disconnect-Notify names Call ID %d (the client's is %d, the server's name for it %s)" % (
                   gone.cdn, gone.call_id, outside.get(gone.pac)))
        # The notify lost, as far as the client knows: it sends the clear again. The
        # call has ended at the NAT, which must still give the clear the call's outside
        # Call ID (the server names the call so) and the notify the client's own.
        first = next((e["pns"] for e in server_events() if e.get("ev") == "clear" and e.get("pac") == gone.pac), None)
        first_cdn = gone.cdn
        try:
            gone.clear()
            again = "the notify named Call ID %d" % gone.cdn
        except OSError as e:
            gone.cdn = None
            again = "no notify came (%s)" % e
        time.sleep(0.3)
        seen = [e for e in server_events() if e.get("ev") in ("clear-again", "clear-unknown")]
        result("clear-resent", gone.cdn == gone.call_id and first is not None
               and any(e["ev"] == "clear-again" and e["pns"] == first for e in seen),
               "the clear sent again reached the server as %s (the first as Call ID %s), %s (the client's is %d)" % (
                   ",".join("%s pns=%s" % (e["ev"], e["pns"]) for e in seen) or "nothing", first, again, gone.call_id))
        gone.cdn = first_cdn
        time.sleep(0.5)
        t_clear = time.time()
        others = [c for c in live if c is not gone]
        got_gone = send_round([gone], "after-clear", 5, settle=1.0)
        echoed_gone = sum(1 for d, _, t in got_gone if "/after-clear/" in t and d == gone.addr)
        got = send_round(others, "after-others", 2)
        own, crossed, missing, _ = judge(others, "after-others", got, 2)
        time.sleep(0.3)
        ev = server_events()
        clear = [e for e in ev if e.get("ev") in ("clear", "clear-unknown")]
        cleared_ok = any(e["ev"] == "clear" and e["pac"] == gone.pac for e in clear)
        result("clear-reached-server", cleared_ok,
               "the server's clears: %s (the client's call is the server's %d)" % (
                   ",".join("%s pns=%s pac=%s" % (e["ev"], e["pns"], e.get("pac", "-")) for e in clear) or "none",
                   gone.pac))
        reached = [e for e in ev if e.get("ev") in ("gre", "gre-unknown")
                   and "/after-clear/" in e.get("payload", "") and e.get("t", 0) >= t_clear - 0.1]
        result("cleared-call-dropped", not reached and echoed_gone == 0,
               "GRE sent on the cleared call: 5, reached the server: %d (%s), echoed: %d" % (
                   len(reached), ",".join(sorted({"%s key %s" % (e["src"], e["key"]) for e in reached})) or "-",
                   echoed_gone))
        result("others-after-clear", not missing and not crossed,
               "clients=%d echoed_own=%d without_echo=%d crossed=%d" % (
                   len(others), sum(own.values()), len(missing), len(crossed)))
        summary["after_clear"] = {"sent": 5, "reached_server": len(reached), "echoed": echoed_gone}

    # 4. two calls on one control connection (Call IDs 1 and 2 of one client)
    calls_before = len([e for e in server_events() if e.get("ev") == "call"])
    one = Client("100.64.2.1")
    two = Client("100.64.2.1", 2, share=one)
    bad = start_all([one, two])
    control_result("two-calls-control", [one, two], bad)
    run_phase([c for c in (one, two) if c.pac], "one-conn", 3, "two-calls", calls_before)
    clients += [one, two]

    # 5. a client closes its control connection (FIN both ways) without clearing its
    # call, then, once the linger is past, sends GRE on the call: it must not reach
    # the server (cgnat ends a closed connection's calls after the linger)
    closer = next((c for c in live if c is not gone), None)
    if closer is not None:
        closer.sock.close()
        time.sleep(LINGER + LINGER_MARGIN)
        t_close = time.time()
        got = send_round([closer], "after-close", 3, settle=1.0)
        time.sleep(0.3)
        reached = [e for e in server_events() if e.get("ev") in ("gre", "gre-unknown")
                   and "/after-close/" in e.get("payload", "") and e.get("t", 0) >= t_close - 0.1]
        result("closed-connection-gre", not reached,
               "GRE sent on a call %d s after its control connection closed: 3, reached the server: %d, echoed: %d" % (
                   LINGER + LINGER_MARGIN, len(reached), sum(1 for r in got if "/after-close/" in r[2])))

    summary["secs"] = round(time.time() - t0, 1)
    for c in clients:
        if c.sock:
            c.sock.close()
    json.dump(summary, open(summary_file, "w"))
    return 1 if failed_required else 0


conf.verb = 0
sys.exit(main())
