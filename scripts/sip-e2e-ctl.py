#!/usr/bin/env python3
"""Drives two baresip instances over their ctrl_tcp sockets for scripts/sip-e2e.sh.

Each baresip listens for control on 127.0.0.1:PORT inside its own network namespace;
this script joins the namespace (setns) just long enough to open the connection, so
one process can talk to both ends of a call. ctrl_tcp frames every message as a
netstring ("LEN:JSON,"); commands are {"command", "params", "token"}, answers carry
"response": true and events "event": true.

Usage:
  sip-e2e-ctl.py wait-reg NETNS:PORT [NETNS:PORT ...]      every UA registered (200)
  sip-e2e-ctl.py call CALLER=NETNS:PORT CALLEE=NETNS:PORT URI SECONDS [READY_FILE]
      CALLER dials URI, CALLEE must see the call and (auto-)answer, both sides must
      report CALL_ESTABLISHED; after SECONDS the caller hangs up and both must report
      CALL_CLOSED. Prints one JSON line with the timeline (epoch seconds) and events.
      With READY_FILE, writes the time the call was established (both sides) there.
"""
import ctypes
import json
import os
import select
import socket
import sys
import time

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL("libc.so.6", use_errno=True)


def setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "setns %s: %s" % (path, os.strerror(err)))
    finally:
        os.close(fd)


ROOT_NS = "/proc/%d/ns/net" % os.getpid()
ROOT_FD = os.open(ROOT_NS, os.O_RDONLY)


def back_to_root():
    if libc.setns(ROOT_FD, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns back to the root namespace")


class Baresip:
    def __init__(self, spec, name=None):
        netns, port = spec.rsplit(":", 1)
        self.name = name or netns
        setns("/run/netns/" + netns)
        try:
            deadline = time.time() + 10
            while True:
                try:
                    self.sock = socket.create_connection(("127.0.0.1", int(port)), 2)
                    break
                except OSError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.2)
        finally:
            back_to_root()
        self.buf = b""
        self.events = []
        self.token = 0

    def _read_one(self, timeout):
        """One netstring message as a dict, or None on timeout."""
        self.sock.settimeout(max(timeout, 0.01))
        while True:
            colon = self.buf.find(b":")
            if colon > 0:
                n = int(self.buf[:colon])
                if len(self.buf) >= colon + 1 + n + 1:
                    body = self.buf[colon + 1:colon + 1 + n]
                    assert self.buf[colon + 1 + n:colon + 2 + n] == b",", self.buf[:80]
                    self.buf = self.buf[colon + 2 + n:]
                    return json.loads(body.decode("utf-8", "replace"))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                raise EOFError("%s: ctrl_tcp closed the connection" % self.name)
            self.buf += chunk

    def command(self, command, params="", timeout=5):
        self.token += 1
        token = "%s-%d" % (self.name, self.token)
        msg = {"command": command, "params": params, "token": token}
        body = json.dumps(msg).encode()
        self.sock.sendall(b"%d:%s," % (len(body), body))
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = self._read_one(deadline - time.time())
            if m is None:
                break
            if m.get("event"):
                m["at"] = time.time()
                self.events.append(m)
            elif m.get("response"):
                return m
        raise TimeoutError("%s: no answer to %s" % (self.name, command))

    def wait_event(self, types, timeout):
        """The first event (already seen or new) whose type is in types."""
        deadline = time.time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("type") in types:
                    return self.events.pop(i)
            left = deadline - time.time()
            if left <= 0:
                return None
            m = self._read_one(left)
            if m is not None and m.get("event"):
                m["at"] = time.time()
                self.events.append(m)

    def drain(self, seconds):
        """Read what arrives within seconds (and at least what is already there)."""
        end = time.time() + seconds
        while True:
            m = self._read_one(max(end - time.time(), 0.005))
            if m is not None and m.get("event"):
                m["at"] = time.time()
                self.events.append(m)
            if m is None and time.time() >= end:
                return


def short(e):
    if e is None:
        return None
    keep = ("type", "direction", "peeruri", "param", "at", "accountaor")
    return {k: e[k] for k in keep if k in e}


def wait_reg(specs):
    ok = True
    for spec in specs:
        b = Baresip(spec)
        status = ""
        for _ in range(50):
            r = b.command("reginfo")
            status = r.get("data", "")
            if "OK" in status:
                break
            time.sleep(0.2)
        print(json.dumps({"ua": spec, "registered": "OK" in status, "reginfo": status}))
        ok &= "OK" in status
    return 0 if ok else 1


def pump(uas, seconds):
    """Read events from every UA for the given time (at least one pass)."""
    end = time.time() + seconds
    while True:
        socks = {u.sock: u for u in uas}
        left = max(end - time.time(), 0)
        ready, _, _ = select.select(list(socks), [], [], left)
        for s in ready:
            socks[s].drain(0)
        if time.time() >= end:
            return


def seen(ua, types):
    return [e for e in ua.events if e.get("type") in types]


def wait_both(uas, types, timeout):
    """Until every UA has an event of one of the types; their first such events."""
    deadline = time.time() + timeout
    while True:
        got = [seen(u, types) for u in uas]
        if all(got) or time.time() >= deadline:
            return [g[0] if g else None for g in got]
        pump(uas, min(0.1, deadline - time.time()))


def call(caller_spec, callee_spec, uri, seconds, ready=None):
    caller = Baresip(caller_spec.split("=", 1)[1], caller_spec.split("=", 1)[0])
    callee = Baresip(callee_spec.split("=", 1)[1], callee_spec.split("=", 1)[0])
    both = (caller, callee)
    out = {"uri": uri, "start": time.time()}
    r = caller.command("dial", uri)
    out["dial"] = {"ok": r.get("ok"), "data": r.get("data")}
    est = wait_both(both, ("CALL_ESTABLISHED", "CALL_CLOSED"), 15)
    out["caller_established"], out["callee_established"] = short(est[0]), short(est[1])
    established = all(e is not None and e["type"] == "CALL_ESTABLISHED" for e in est)
    out["established"] = established
    if established:
        out["media_start"] = time.time()
        if ready:
            with open(ready, "w") as f:
                f.write("%.3f\n" % out["media_start"])
        pump(both, seconds)
        out["media_end"] = time.time()
        # baresip's own word that RTP arrived (first packet received).
        rtp = [seen(u, ("CALL_RTPESTAB",)) for u in both]
        out["rtpestab"] = {"caller": bool(rtp[0]), "callee": bool(rtp[1])}
        out["closed_early"] = [short(e) for u in both for e in seen(u, ("CALL_CLOSED",))]
        r = caller.command("hangup")
        out["hangup"] = {"ok": r.get("ok"), "data": r.get("data")}
    else:
        caller.command("hangup")
        callee.command("hangup")
    # Wait for CALL_CLOSED events newer than the established ones.
    deadline = time.time() + 10
    while time.time() < deadline:
        closed = [[e for e in seen(u, ("CALL_CLOSED",)) if e["at"] >= out.get("media_end", 0)] for u in both]
        if all(closed):
            break
        pump(both, 0.1)
    out["caller_closed"] = short(closed[0][0]) if closed[0] else None
    out["callee_closed"] = short(closed[1][0]) if closed[1] else None
    out["end"] = time.time()
    out["events"] = {"caller": [short(e) for e in caller.events], "callee": [short(e) for e in callee.events]}
    print(json.dumps(out))
    ok = established and not out.get("closed_early") and all(out.get("rtpestab", {0: 0}).values()) \
        and out["caller_closed"] and out["callee_closed"]
    return 0 if ok else 1


def main(argv):
    if argv[1] == "wait-reg":
        return wait_reg(argv[2:])
    if argv[1] == "call":
        return call(argv[2], argv[3], argv[4], float(argv[5]), *argv[6:7])
    if argv[1] == "cmd":  # cmd NETNS:PORT COMMAND [PARAMS]: one command, print the answer
        b = Baresip(argv[2])
        print(json.dumps(b.command(argv[3], argv[4] if len(argv) > 4 else "")))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
