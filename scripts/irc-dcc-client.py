#!/usr/bin/python3
"""One IRC user of scripts/irc-e2e.sh: connects to an IRC server with python3-irc,
waits for its peer, and makes or takes one DCC offer with real TCP data connections.

Usage: irc-dcc-client.py --server ADDR:PORT --nick NICK --peer NICK ROLE [options]

Roles:
  send          offers --file with DCC SEND ADDR PORT SIZE, listening on --listen; the
                peer connects in and receives (DCC acks, 4 bytes each); a DCC RESUME
                naming the offered port is answered ACCEPT and the file sent from there
  send-passive  offers --file with DCC SEND ADDR 0 SIZE TOKEN (reverse DCC); the peer
                answers with its own address, port and the token; connects there and
                sends
  receive       takes the peer's DCC SEND: a port connects there; port 0 (reverse)
                listens on --listen and answers with DCC SEND ADDR PORT SIZE TOKEN;
                stores what comes in --file; with --resume, asks to resume from what
                --file holds (DCC RESUME file port position, answered ACCEPT)
  chat          offers DCC CHAT chat ADDR PORT, listening on --listen; sends --say,
                expects --expect
  chat-accept   takes the peer's DCC CHAT, connects, expects --expect, sends --say

--bind gives the IRC connection and the DCC connections made to the peer a source
address. ADDR in an offer is the local address of the IRC connection (what a client behind a
NAT announces), unless --announce names another. With --hold DIR, before connecting
to an endpoint the peer announced, writes DIR/offered and waits (10 s at most) for
DIR/go: the bed lists the NAT's pinholes in between. With --line-first TEXT, the
offer leaves in one segment behind a chat line (PRIVMSG PEER :TEXT).

Prints `IRC-DCC sent=...` and `IRC-DCC received=...` for each DCC message, then
`IRC-DCC done ...` (exit 0) or `IRC-DCC error=...` (exit 1).
"""

import argparse
import hashlib
import os
import random
import socket
import struct
import sys
import time

import irc.client
import irc.connection


def say(line):
    print("IRC-DCC " + line, flush=True)


def quad_to_num(quad):
    return struct.unpack(">L", socket.inet_aton(quad))[0]


def num_to_quad(num):
    return socket.inet_ntoa(struct.pack(">L", int(num) & 0xFFFFFFFF))


def dcc_words(text):
    """The words of a DCC message; a quoted argument (a file name with spaces, as
    irssi sends it) is one word, without its quotes."""
    words, rest = [], text.strip()
    while rest:
        if rest.startswith('"') and '"' in rest[1:]:
            end = rest.index('"', 1)
            words.append(rest[1:end])
            rest = rest[end + 1 :].lstrip()
        else:
            word, _, rest = rest.partition(" ")
            words.append(word)
            rest = rest.lstrip()
    return words


def dcc_name(name):
    return '"%s"' % name if " " in name else name


class Failed(Exception):
    pass


class User:
    def __init__(self, args):
        self.args = args
        self.reactor = irc.client.IRC()
        self.conn = None
        self.welcome = False
        self.peer_online = False
        self.offers = []  # (kind, [words]) of DCC messages from the peer
        self.deadline = time.time() + args.timeout

    def connect(self):
        host, port = self.args.server.rsplit(":", 1)
        factory = irc.connection.Factory(bind_address=(self.args.bind or "", 0))
        self.conn = self.reactor.server().connect(host, int(port), self.args.nick, connect_factory=factory)
        for event, handler in (
            ("welcome", self.on_welcome),
            ("ison", self.on_ison),
            ("ctcp", self.on_ctcp),
            ("error", self.on_error),
            ("nicknameinuse", self.on_error),
        ):
            self.conn.add_global_handler(event, handler)
        self.pump(lambda: self.welcome, "the server's welcome")
        last = 0.0
        while not self.peer_online:
            if time.time() - last > 0.3:
                self.conn.ison([self.args.peer])
                last = time.time()
            self.pump_once()

    def on_welcome(self, _c, _e):
        self.welcome = True

    def on_ison(self, _c, e):
        online = " ".join(e.arguments).split()
        self.peer_online = self.args.peer.lower() in (n.lower() for n in online)

    def on_error(self, _c, e):
        raise Failed("server: %s %s" % (e.type, " ".join([e.target or ""] + e.arguments)))

    def on_ctcp(self, _c, e):
        if e.source.nick.lower() != self.args.peer.lower() or e.arguments[0] != "DCC":
            return
        text = e.arguments[1] if len(e.arguments) > 1 else ""
        say("received=DCC %s" % text)
        words = dcc_words(text)
        if words:
            self.offers.append((words[0].upper(), words[1:]))

    def pump_once(self):
        if time.time() > self.deadline:
            raise Failed("timed out")
        self.reactor.process_once(0.1)

    def pump(self, done, what, within=None):
        until = min(self.deadline, time.time() + within) if within else self.deadline
        while not done():
            if time.time() > until:
                raise Failed("timed out waiting for %s" % what)
            self.reactor.process_once(0.1)

    def dcc(self, text):
        if self.args.line_first:
            # a chat line and the offer in one write, hence one TCP segment, as a
            # client's two messages go when Nagle holds the second until the first
            # is acknowledged
            peer = self.args.peer
            both = "PRIVMSG %s :%s\r\nPRIVMSG %s :\x01DCC %s\x01\r\n" % (peer, self.args.line_first, peer, text)
            self.conn.socket.sendall(both.encode())
        else:
            self.conn.ctcp("DCC", self.args.peer, text)
        say("sent=DCC %s" % text)

    def next_offer(self, kind, within=None):
        self.pump(lambda: any(k == kind for k, _ in self.offers), "a DCC %s" % kind, within)
        for i, (k, w) in enumerate(self.offers):
            if k == kind:
                del self.offers[i]
                return w

    def my_address(self):
        return self.args.announce or self.conn.socket.getsockname()[0]

    def listener(self):
        host, port = self.args.listen.rsplit(":", 1)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, int(port)))
        s.listen(1)
        s.settimeout(max(1.0, self.deadline - time.time()))
        return s

    def accept(self, s, meanwhile=lambda: None):
        """Waits for the peer's connection while it is on IRC (calling MEANWHILE
        between IRC reads): a peer that gave up (its connection failed) quits, and
        this side stops waiting."""
        s.settimeout(0.1)
        last = time.time()
        while True:
            try:
                c, peer = s.accept()
                break
            except socket.timeout:
                pass
            self.reactor.process_once(0)
            meanwhile()
            if not self.peer_online:  # the server's answer to ISON, not its silence
                raise Failed("nobody connected to %s; the peer left" % self.args.listen)
            if time.time() - last > 0.5:
                self.conn.ison([self.args.peer])
                last = time.time()
            if time.time() > self.deadline:
                raise Failed("nobody connected to %s" % self.args.listen)
        say("accepted=%s:%d" % peer)
        s.close()
        c.settimeout(max(1.0, self.deadline - time.time()))
        return c

    def hold(self, endpoint):
        if not self.args.hold:
            return
        with open(os.path.join(self.args.hold, "offered"), "w") as f:
            f.write(endpoint + "\n")
        go = os.path.join(self.args.hold, "go")
        until = time.time() + 10
        while not os.path.exists(go) and time.time() < until:
            self.reactor.process_once(0.1)

    def connect_to(self, ip_num, port):
        addr = num_to_quad(ip_num)
        self.hold("%s:%s" % (addr, port))
        try:
            c = socket.create_connection((addr, int(port)), 10, (self.args.bind or "", 0))
        except OSError as e:
            raise Failed("connecting to %s:%s: %s" % (addr, port, e))
        say("connected=%s:%s" % (addr, port))
        c.settimeout(max(1.0, self.deadline - time.time()))
        return c

    def quit(self):
        try:
            self.conn.quit("bye")
            self.reactor.process_once(0.2)
        except Exception:
            pass


def send_file(c, path, start=0):
    """Sends the file from START and waits for the receiver's last ack (its position
    in the file, mod 2^32)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(start)
        while True:
            chunk = f.read(65536)
            if not chunk:
                break
            c.sendall(chunk)
    acked, buf = 0, b""
    while acked != size & 0xFFFFFFFF:
        data = c.recv(4096)
        if not data:
            break
        buf += data
        while len(buf) >= 4:
            acked = struct.unpack(">L", buf[:4])[0]
            buf = buf[4:]
    c.close()
    if acked != size & 0xFFFFFFFF:
        raise Failed("the receiver acknowledged %d of %d bytes" % (acked, size))
    return size


def receive_file(c, path, size, start=0):
    """Receives the file from START to SIZE into PATH (kept up to START), acking each
    read with the position reached; returns (bytes received, sha256 of the file)."""
    got = start
    with open(path, "r+b" if start else "wb") as f:
        f.seek(start)
        f.truncate()
        while got < size:
            data = c.recv(65536)
            if not data:
                break
            f.write(data)
            got += len(data)
            c.sendall(struct.pack(">L", got & 0xFFFFFFFF))
    c.close()
    if got != size:
        raise Failed("received up to %d of %d bytes" % (got, size))
    with open(path, "rb") as f:
        return got - start, hashlib.sha256(f.read()).hexdigest()


def read_line(c):
    buf = b""
    while not buf.endswith(b"\n"):
        data = c.recv(1)
        if not data:
            break
        buf += data
    return buf.decode(errors="replace").strip()


def run(u, a):
    t0 = time.time()
    name = dcc_name(a.name or os.path.basename(a.file or "chat"))
    if a.role == "send":
        size = os.path.getsize(a.file)
        s = u.listener()
        port = s.getsockname()[1]
        u.dcc("SEND %s %d %d %d" % (name, quad_to_num(u.my_address()), port, size))
        start = []

        def resume():
            # DCC RESUME file port position: accepted when it names the port offered
            for i, (k, w) in enumerate(u.offers):
                if k == "RESUME" and len(w) >= 3:
                    del u.offers[i]
                    if w[1] != str(port):
                        raise Failed("a RESUME for port %s, not the offered %d" % (w[1], port))
                    start.append(int(w[2]))
                    u.dcc("ACCEPT %s %s %s" % (dcc_name(w[0]), w[1], w[2]))
                    return

        c = u.accept(s, resume)
        n = send_file(c, a.file, start[0] if start else 0)
        say("done role=send bytes=%d from=%d secs=%.2f" % (n, start[0] if start else 0, time.time() - t0))
    elif a.role == "send-passive":
        size = os.path.getsize(a.file)
        token = str(random.randint(1, 99999))
        u.dcc("SEND %s %d 0 %d %s" % (name, quad_to_num(u.my_address()), size, token))
        while True:
            w = u.next_offer("SEND")
            if len(w) >= 5 and w[4] == token and w[2] != "0":
                break
            say("ignored=%s" % " ".join(w))
        c = u.connect_to(w[1], w[2])
        n = send_file(c, a.file)
        say("done role=send-passive bytes=%d token=%s secs=%.2f" % (n, token, time.time() - t0))
    elif a.role == "receive":
        w = u.next_offer("SEND")
        if len(w) < 4:
            raise Failed("a DCC SEND without a size: %s" % " ".join(w))
        size = int(w[3])
        if w[2] == "0":
            if len(w) < 5:
                raise Failed("a reverse DCC SEND without a token")
            s = u.listener()
            port = s.getsockname()[1]
            u.dcc("SEND %s %d %d %d %s" % (dcc_name(w[0]), quad_to_num(u.my_address()), port, size, w[4]))
            c = u.accept(s)
            start = 0
        else:
            start = os.path.getsize(a.file) if a.resume and os.path.exists(a.file) else 0
            if start:
                # DCC RESUME file port position, answered ACCEPT file port position
                u.dcc("RESUME %s %s %d" % (dcc_name(w[0]), w[2], start))
                r = u.next_offer("ACCEPT", within=5)
                if len(r) < 3 or r[1] != w[2] or r[2] != str(start):
                    raise Failed("the ACCEPT does not match the RESUME: %s" % " ".join(r))
            c = u.connect_to(w[1], w[2])
        n, digest = receive_file(c, a.file, size, start)
        say("done role=receive bytes=%d sha256=%s secs=%.2f" % (n, digest, time.time() - t0))
    elif a.role == "chat":
        s = u.listener()
        port = s.getsockname()[1]
        u.dcc("CHAT chat %d %d" % (quad_to_num(u.my_address()), port))
        c = u.accept(s)
        c.sendall((a.say + "\n").encode())
        line = read_line(c)
        c.close()
        say("chat-heard=%s" % line)
        if line != a.expect:
            raise Failed("heard %r, expected %r" % (line, a.expect))
        say("done role=chat secs=%.2f" % (time.time() - t0))
    elif a.role == "chat-accept":
        w = u.next_offer("CHAT")
        if len(w) < 3:
            raise Failed("a DCC CHAT without an address and port")
        c = u.connect_to(w[1], w[2])
        line = read_line(c)
        say("chat-heard=%s" % line)
        c.sendall((a.say + "\n").encode())
        c.close()
        if line != a.expect:
            raise Failed("heard %r, expected %r" % (line, a.expect))
        say("done role=chat-accept secs=%.2f" % (time.time() - t0))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("role", choices=["send", "send-passive", "receive", "chat", "chat-accept"])
    p.add_argument("--server", required=True)
    p.add_argument("--nick", required=True)
    p.add_argument("--peer", required=True)
    p.add_argument("--file")
    p.add_argument("--name", help="the file name offered (default: --file's); quoted when it has spaces")
    p.add_argument("--listen", default="0.0.0.0:0")
    p.add_argument("--announce")
    p.add_argument("--bind", help="source address of the IRC and DCC connections")
    p.add_argument("--say", default="")
    p.add_argument("--expect", default="")
    p.add_argument("--hold")
    p.add_argument("--resume", action="store_true", help="receive: resume from what --file holds (DCC RESUME/ACCEPT)")
    p.add_argument("--line-first", help="send this chat line and the DCC offer in one segment")
    p.add_argument("--timeout", type=float, default=30)
    a = p.parse_args()
    u = User(a)
    try:
        u.connect()
        run(u, a)
    except (Failed, OSError, irc.client.IRCError) as e:
        say("error=%s" % e)
        sys.exit(1)
    finally:
        u.quit()


if __name__ == "__main__":
    main()
