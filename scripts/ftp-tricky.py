#!/usr/bin/env python3
"""FTP control-channel cases that trip up address-rewriting NATs, for the end-to-end
beds (scripts/netns-e2e.sh through cgnat, scripts/linux-nat-e2e.sh through the Linux
kernel's nf_conntrack_ftp/nf_nat_ftp). Standard library only.

  ftp-tricky.py client CASE SERVER INSIDE_ADDR FILE OUT
      Logs in anonymously to SERVER:21, sends an active-mode data command shaped as
      CASE names, fetches FILE into OUT and prints one line of JSON with what happened.
      The data socket listens on INSIDE_ADDR (the client's own address).

      split-port      "PORT 100,64," and the rest in a second TCP segment
      split-eprt      "EPRT |1|100.64." and the rest in a second segment
      pipelined-port  "NOOP\\r\\nPORT ...\\r\\n" in one segment (PORT not at its start)
      pipelined-eprt  "NOOP\\r\\nEPRT ...\\r\\n" in one segment
      pipelined-split-port  "NOOP\\r\\nPORT 100,64," then the rest in a second segment
      port            a plain PORT in a segment of its own (the control case)

  ftp-tricky.py server ADDR FILE [split]
      A minimal passive-only FTP server on ADDR:21 serving FILE (any name), for a
      server behind the NAT: it announces ADDR in its 227 reply, in one segment or,
      with "split", as "227 Entering Passive Mode (h1,h2," and the rest 0.2 s later.
      Serves connections until killed.

  ftp-tricky.py leaks PCAP TEXT...
      Prints one line of JSON: the TCP payloads in PCAP (Ethernet, as tcpdump -w
      writes on a veth) that contain any of the TEXTs, e.g. "100,64,0,2" ("hits"),
      the lines of the reassembled TCP streams that contain one ("stream_hits"),
      and every payload of the latest connection sent to and from port 21 in order, retransmissions included
      ("to_21", "from_21": [tcp seq, text]).
"""
import hashlib
import json
import os
import socket
import sys
import time

GAP = 0.2  # seconds between the two halves of a split line


def client(case, server, inside, name, out):
    res = {"case": case, "command_reply": None, "data_connected": False, "bytes": 0,
           "sha256": None, "transfer_reply": None, "error": None}
    try:
        c = socket.create_connection((server, 21), 10)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.settimeout(10)
        f = c.makefile("rb")

        def reply():
            line = f.readline()
            while line[3:4] == b"-":
                line = f.readline()
            if not line:
                raise EOFError("control connection closed")
            return line.decode("latin-1").strip()

        assert reply().startswith("220")
        for cmd in (b"USER anonymous\r\n", b"PASS x@\r\n", b"TYPE I\r\n"):
            c.sendall(cmd)
            reply()
        d = socket.socket()
        d.bind((inside, 0))
        d.listen(1)
        d.settimeout(10)
        p = d.getsockname()[1]
        port_arg = ("%s,%d,%d" % (inside.replace(".", ","), p >> 8, p & 255)).encode()
        eprt_arg = ("|1|%s|%d|" % (inside, p)).encode()
        if case == "port":
            c.sendall(b"PORT " + port_arg + b"\r\n")
        elif case in ("split-port", "split-eprt"):
            line = (b"PORT " + port_arg if case == "split-port" else b"EPRT " + eprt_arg) + b"\r\n"
            cut = line.index(b"," if case == "split-port" else b".") + 1
            cut = line.index(b"," if case == "split-port" else b".", cut) + 1
            c.sendall(line[:cut])
            time.sleep(GAP)
            c.sendall(line[cut:])
        elif case == "pipelined-split-port":
            c.sendall(b"NOOP\r\nPORT " + port_arg[:port_arg.index(b",", port_arg.index(b",") + 1) + 1])
            time.sleep(GAP)
            c.sendall(port_arg[port_arg.index(b",", port_arg.index(b",") + 1) + 1:] + b"\r\n")
            reply()  # the NOOP's
        elif case in ("pipelined-port", "pipelined-eprt"):
            cmd = b"PORT " + port_arg if case == "pipelined-port" else b"EPRT " + eprt_arg
            c.sendall(b"NOOP\r\n" + cmd + b"\r\n")
            reply()  # the NOOP's
        else:
            raise ValueError("unknown case " + case)
        try:
            res["command_reply"] = reply()
        except socket.timeout:
            res["command_reply"] = "(no reply within 10 s)"
            raise
        if not res["command_reply"].startswith("200"):
            raise RuntimeError("data command refused")
        c.sendall(b"RETR " + name.encode() + b"\r\n")
        s, _ = d.accept()
        res["data_connected"] = True
        h = hashlib.sha256()
        with open(out, "wb") as o:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                o.write(b)
                h.update(b)
                res["bytes"] += len(b)
        res["sha256"] = h.hexdigest()
        r = reply()
        if r.startswith("150") or r.startswith("125"):
            r = reply()
        res["transfer_reply"] = r
    except Exception as e:  # report, do not hide: the bed decides what it means
        res["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(res), flush=True)


def server(addr, path, split):
    data = open(path, "rb").read()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, 21))
    ls.listen(4)
    while True:
        c, peer = ls.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.settimeout(30)
        f = c.makefile("rb")
        c.sendall(b"220 tricky\r\n")
        pasv = None
        try:
            while True:
                line = f.readline()
                if not line:
                    break
                verb = line.split(b" ")[0].strip().upper()
                if verb == b"PASV":
                    pasv = socket.socket()
                    pasv.bind((addr, 0))
                    pasv.listen(1)
                    pasv.settimeout(10)
                    p = pasv.getsockname()[1]
                    text = ("227 Entering Passive Mode (%s,%d,%d).\r\n"
                            % (addr.replace(".", ","), p >> 8, p & 255)).encode()
                    print("sent:", text.decode().strip(), "split" if split else "", flush=True)
                    if split:
                        cut = text.index(b",", text.index(b",") + 1) + 1
                        c.sendall(text[:cut])
                        time.sleep(GAP)
                        c.sendall(text[cut:])
                    else:
                        c.sendall(text)
                elif verb == b"RETR" and pasv is not None:
                    c.sendall(b"150 here it comes\r\n")
                    try:
                        d, dpeer = pasv.accept()
                        print("data connection from", dpeer, flush=True)
                        d.sendall(data)
                        d.close()
                        c.sendall(b"226 done\r\n")
                    except socket.timeout:
                        print("no data connection", flush=True)
                        c.sendall(b"425 no data connection\r\n")
                    pasv.close()
                    pasv = None
                elif verb == b"SIZE":
                    c.sendall(b"213 %d\r\n" % len(data))
                elif verb == b"QUIT":
                    c.sendall(b"221 bye\r\n")
                    break
                elif verb in (b"EPSV", b"EPRT", b"PORT"):
                    c.sendall(b"502 passive IPv4 only\r\n")
                elif verb == b"PWD":
                    c.sendall(b'257 "/"\r\n')
                else:
                    c.sendall(b"200 ok\r\n")
        except (socket.timeout, OSError) as e:
            print("control:", e, flush=True)
        c.close()


def leaks(path, texts):
    raw = open(path, "rb").read()
    if len(raw) < 24 or raw[:4] not in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        print(json.dumps({"error": "not a little-endian pcap file", "hits": []}))
        return
    hits, to_21, from_21, streams, packets, off = [], [], [], {}, 0, 24
    last_greeting = None  # the client port of the latest connection (its "220")
    while off + 16 <= len(raw):
        caplen = int.from_bytes(raw[off + 8:off + 12], "little")
        frame = raw[off + 16:off + 16 + caplen]
        off += 16 + caplen
        packets += 1
        if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
            continue
        ihl = (frame[14] & 15) * 4
        tcp = frame[14 + ihl:]
        if len(tcp) < 20:
            continue
        total = int.from_bytes(frame[16:18], "big")
        payload = frame[14 + ihl + (tcp[12] >> 4) * 4:14 + total]
        if not payload:
            continue
        src = "%s:%d" % (".".join(str(b) for b in frame[26:30]), int.from_bytes(tcp[0:2], "big"))
        dst = "%s:%d" % (".".join(str(b) for b in frame[30:34]), int.from_bytes(tcp[2:4], "big"))
        seq = int.from_bytes(tcp[4:8], "big")
        text = payload.decode("latin-1")
        sport, dport = int.from_bytes(tcp[0:2], "big"), int.from_bytes(tcp[2:4], "big")
        if dport == 21:
            to_21.append([seq, text, sport])
        if sport == 21:
            from_21.append([seq, text, dport])
            if text.startswith("220"):
                last_greeting = dport
        if any(t.encode() in payload for t in texts):
            hits.append({"src": src, "payload": text})
        # The byte stream of each direction, by sequence number (a text split across
        # segments is found too).
        st = streams.setdefault((src, dst), {"base": seq, "bytes": {}})
        rel = (seq - st["base"]) & 0xffffffff
        if rel < 1 << 20:
            for i, b in enumerate(payload):
                st["bytes"].setdefault(rel + i, b)
    stream_hits = []
    for (src, dst), st in streams.items():
        data = bytes(st["bytes"].get(i, 0) for i in range(max(st["bytes"], default=-1) + 1))
        for t in texts:
            i = data.find(t.encode())
            if i >= 0:
                line = data[data.rfind(b"\n", 0, i) + 1:data.find(b"\n", i) + 1 or None]
                stream_hits.append({"src": src, "dst": dst, "line": line.decode("latin-1")})
                break
    # Keep the latest connection's payloads only (earlier ones may still retransmit).
    if last_greeting is not None:
        to_21 = [s for s in to_21 if s[2] == last_greeting]
        from_21 = [s for s in from_21 if s[2] == last_greeting]
    print(json.dumps({"packets": packets, "hits": hits, "stream_hits": stream_hits,
                      "to_21": [s[:2] for s in to_21], "from_21": [s[:2] for s in from_21]}))


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "client":
        client(*sys.argv[2:])
    elif len(sys.argv) in (4, 5) and sys.argv[1] == "server":
        server(sys.argv[2], sys.argv[3], len(sys.argv) == 5 and sys.argv[4] == "split")
    elif len(sys.argv) >= 4 and sys.argv[1] == "leaks":
        leaks(sys.argv[2], sys.argv[3:])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
    os._exit(0)
