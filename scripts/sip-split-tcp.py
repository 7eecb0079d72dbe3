#!/usr/bin/env python3
"""A SIP INVITE over TCP, with SDP, sent whole or split across two TCP segments, for
scripts/sip-e2e.sh. Three roles:

  sip-split-tcp.py record ADDR PORT DIR
      Internet side: accepts connections on ADDR:PORT (TCP) and, for each, writes
      DIR/conn-N.json with every chunk as it arrived (time, bytes). Once a request is
      whole (head plus Content-Length bytes) it sends three UDP datagrams to the media
      address and port of the SDP it got (as a callee's early media would), answers
      486 Busy Here (Via, From, To, Call-ID, CSeq copied) and records what follows
      (the ACK) until the peer closes.
      A request that never becomes whole is recorded as it is after 5 s.

  sip-split-tcp.py send SRC DST PORT SPLIT OUT.json [PAUSE]
      Subscriber side: binds SRC:0 (the ephemeral port goes in Via and Contact, as a
      phone reusing its connection does), sets TCP_NODELAY, connects, sends the INVITE
      in two writes PAUSE seconds apart (0.3: longer than the retransmission timeout,
      so a NAT that holds the first part without acknowledging it sees it again), split at SPLIT (`sdp`: inside the address of the SDP
      c= line; `via`: inside the address of the Via header; a byte offset; `whole`:
      one write), reads the answer and ACKs a final error. OUT.json has what was sent,
      where it was split and what came back: the answer, and the datagrams that
      reached the SDP's media port (UDP 10096, bound before the INVITE goes).

  sip-split-tcp.py judge SENT.json RECORD.json [WIRE.txt]
      Compares: prints `leak=0|1 whole=0|1 consistent=0|1 ...` about what the
      recorder got: any inside (100.64.0.0/10) address anywhere in it, Content-Length
      against the body that came, and every line that did not name the inside address
      when sent arrived unchanged (Content-Length and the port of an m= line aside,
      an added a=rtcp line allowed), the others still present. WIRE.txt (tshark fields
      tcp.seq, tcp.payload of the connection's data segments toward the recorder, seq
      relative) gives wire_mismatch: segments whose bytes differ from what the
      recorder's stream holds at their place (a retransmission sent untranslated
      after the translated copy went, say).
"""
import base64
import json
import os
import re
import socket
import sys
import time

INSIDE = re.compile(rb"100\.(6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\.[0-9]{1,3}\.[0-9]{1,3}")


def whole_message(buf):
    """Length of the first whole SIP message in buf, or None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    m = re.search(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*([0-9]+)", buf[:end + 2])
    clen = int(m.group(1)) if m else 0
    total = end + 4 + clen
    return total if len(buf) >= total else None


def header(msg, name):
    m = re.search(rb"(?im)^" + name + rb"[ \t]*:[^\r\n]*", msg)
    return m.group(0) if m else None


def record(addr, port, out):
    os.makedirs(out, exist_ok=True)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, int(port)))
    ls.listen(8)
    print("listening", addr, port, flush=True)
    n = 0
    while True:
        c, peer = ls.accept()
        n += 1
        rec = {"peer": "%s:%d" % peer, "accepted": time.time(), "chunks": [], "after": [], "answered": None}
        try:
            serve(c, n, addr, rec)
        except OSError as e:
            rec["error"] = str(e)
        c.close()
        with open(os.path.join(out, "conn-%d.json" % n), "w") as f:
            json.dump(rec, f)


def serve(c, n, addr, rec):
    """One connection: the request, the media datagrams, the 486, the ACK."""
    buf = b""
    c.settimeout(5)
    try:
        while whole_message(buf) is None:
            d = c.recv(65536)
            if not d:
                break
            rec["chunks"].append([time.time(), base64.b64encode(d).decode()])
            buf += d
    except socket.timeout:
        rec["timeout"] = True
    total = whole_message(buf)
    if total is not None:
        req = buf[:total]
        rec["media_to"] = media(addr, req)
        lines = [b"SIP/2.0 486 Busy Here"]
        for h in (rb"via|v", rb"from|f", rb"to|t", rb"call-id|i", rb"cseq"):
            v = header(req, rb"(?:" + h + rb")")
            if v is None:
                continue
            if h.startswith(rb"to") and b"tag=" not in v:
                v += b";tag=rec%d" % n
            lines.append(v)
        lines.append(b"Content-Length: 0")
        ans = b"\r\n".join(lines) + b"\r\n\r\n"
        c.sendall(ans)
        rec["answered"] = base64.b64encode(ans).decode()
        try:
            c.settimeout(3)
            while True:
                d = c.recv(65536)
                if not d:
                    break
                rec["after"].append([time.time(), base64.b64encode(d).decode()])
        except socket.timeout:
            pass


def media(addr, req):
    """Three datagrams to the c= address and m= port of req's SDP; where they went."""
    c = re.search(rb"(?m)^c=IN IP4 ([0-9.]+)", req)
    m = re.search(rb"(?m)^m=audio ([0-9]+) ", req)
    if not (c and m):
        return None
    to = (c.group(1).decode(), int(m.group(1)))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((addr, 0))
    try:
        for i in range(3):
            u.sendto(b"split-probe-media %d" % i, to)
            time.sleep(0.02)
    except OSError as e:
        return "%s:%d(%s)" % (to + (e.strerror.replace(" ", "-"),))
    finally:
        u.close()
    return "%s:%d" % to


def invite(src, lport, dst, call):
    sdp = (
        "v=0\r\n"
        "o=alice 4711 4711 IN IP4 %(src)s\r\n"
        "s=split\r\n"
        "c=IN IP4 %(src)s\r\n"
        "t=0 0\r\n"
        "m=audio 10096 RTP/AVP 0\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=sendrecv\r\n" % {"src": src}
    ).encode()
    head = (
        "INVITE sip:probe@%(dst)s SIP/2.0\r\n"
        "Via: SIP/2.0/TCP %(src)s:%(lport)d;branch=z9hG4bK-%(call)s;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:alice@192.0.2.10>;tag=a-%(call)s\r\n"
        "To: <sip:probe@%(dst)s>\r\n"
        "Call-ID: %(call)s\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:alice@%(src)s:%(lport)d;transport=tcp>\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: %(clen)d\r\n"
        "\r\n" % {"src": src, "dst": dst, "lport": lport, "call": call, "clen": len(sdp)}
    ).encode()
    return head + sdp


def send(src, dst, port, split, out, pause="0.3"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.bind((src, 0))
    lport = s.getsockname()[1]
    call = "split-%d-%d" % (os.getpid(), lport)
    msg = invite(src, lport, dst, call)
    if split == "whole":
        at = len(msg)
    elif split in ("sdp", "via"):
        anchor = b"\r\nc=IN IP4 " if split == "sdp" else b"\r\nVia: SIP/2.0/TCP "
        at = msg.index(anchor) + len(anchor) + 3  # "100" | ".64..."
    else:
        at = int(split)
    res = {"src": src, "lport": lport, "dst": "%s:%s" % (dst, port), "split": split, "at": at, "pause": float(pause),
           "len": len(msg), "sent": base64.b64encode(msg).decode(), "start": time.time()}
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((src, 10096))
    s.settimeout(5)
    s.connect((dst, int(port)))
    s.sendall(msg[:at])
    if at < len(msg):
        time.sleep(float(pause))
        s.sendall(msg[at:])
    buf = b""
    try:
        while whole_message(buf) is None:
            d = s.recv(65536)
            if not d:
                break
            buf += d
    except socket.timeout:
        res["timeout"] = True
    res["answer"] = base64.b64encode(buf).decode()
    status = re.match(rb"SIP/2.0 ([0-9]{3})", buf)
    res["status"] = int(status.group(1)) if status else 0
    if res["status"] >= 300:
        to = header(buf, rb"(?:to|t)") or b"To: <sip:probe@%s>" % dst.encode()
        ack = (
            b"ACK sip:probe@%s SIP/2.0\r\n" % dst.encode()
            + header(msg, rb"via") + b"\r\n"
            + b"Max-Forwards: 70\r\n"
            + header(msg, rb"from") + b"\r\n"
            + to + b"\r\n"
            + header(msg, rb"call-id") + b"\r\n"
            + b"CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        )
        s.sendall(ack)
        res["ack"] = base64.b64encode(ack).decode()
    got = []
    u.settimeout(0.3)
    try:
        while True:
            got.append(u.recvfrom(2048)[0].decode("latin-1"))
    except socket.timeout:
        pass
    res["media_in"] = got
    s.close()
    res["end"] = time.time()
    with open(out, "w") as f:
        json.dump(res, f)
    print(json.dumps({k: res[k] for k in ("lport", "at", "len", "status", "media_in")}))


def wire_mismatch(wire_file, stream):
    """Segments in wire_file whose payload is not the stream's bytes at their seq."""
    n = 0
    for line in open(wire_file):
        parts = line.split()
        if len(parts) != 2:
            continue
        off = int(parts[0]) - 1
        data = bytes.fromhex(parts[1].replace(":", ""))
        if stream[off:off + len(data)] != data:
            n += 1
    return n


def judge(sent_file, rec_file, wire_file=None):
    sent = json.load(open(sent_file))
    msg = base64.b64decode(sent["sent"])
    try:
        rec = json.load(open(rec_file))
    except (OSError, ValueError):
        print("received=none leak=0 whole=0 consistent=0")
        return
    got = b"".join(base64.b64decode(c[1]) for c in rec["chunks"])
    after = b"".join(base64.b64decode(c[1]) for c in rec["after"])
    leak = 1 if INSIDE.search(got + after) else 0
    wire = wire_mismatch(wire_file, got + after) if wire_file else -1
    where = []
    end = got.find(b"\r\n\r\n")
    head, body = (got[:end], got[end + 4:]) if end >= 0 else (got, b"")
    for line in head.split(b"\r\n"):
        if INSIDE.search(line):
            where.append(line.split(b":", 1)[0].decode("latin-1") if b":" in line[:20] else "request-line")
    for line in body.split(b"\r\n"):
        if INSIDE.search(line):
            where.append("sdp-" + line[:1].decode("latin-1"))
    m = re.search(rb"(?im)^content-length[ \t]*:[ \t]*([0-9]+)", head)
    clen = int(m.group(1)) if m else -1
    whole = 1 if end >= 0 and clen == len(body) else 0
    # Line by line against what was sent: equal where the inside address was not named.
    s_end = msg.find(b"\r\n\r\n")
    s_lines = msg[:s_end].split(b"\r\n") + [b""] + msg[s_end + 4:].split(b"\r\n")
    g_lines = head.split(b"\r\n") + [b""] + body.split(b"\r\n") if end >= 0 else head.split(b"\r\n")
    # An a=rtcp line the NAT added (its RTCP port not next to the RTP port) is its own.
    added = 0
    if not any(x.startswith(b"a=rtcp:") for x in s_lines):
        added = sum(1 for x in g_lines if x.startswith(b"a=rtcp:"))
        g_lines = [x for x in g_lines if not x.startswith(b"a=rtcp:")]
    diff = []
    if len(s_lines) != len(g_lines):
        diff.append("lines:%d->%d" % (len(s_lines), len(g_lines)))
    for a, b in zip(s_lines, g_lines):
        if a.lower().startswith(b"content-length"):
            if not b.lower().startswith(b"content-length"):
                diff.append("content-length-line")
        elif INSIDE.search(a):
            if a[:2] != b[:2]:
                diff.append("line:" + a[:12].decode("latin-1"))
        elif a.startswith(b"m="):
            # The media port is the NAT's to change, nothing else on the line.
            wa, wb = a.split(b" "), b.split(b" ")
            if len(wa) != len(wb) or wa[0] != wb[0] or wa[2:] != wb[2:] or not wb[1].isdigit():
                diff.append("changed:" + a[:12].decode("latin-1"))
        elif a != b:
            diff.append("changed:" + a[:12].decode("latin-1"))
    consistent = 1 if whole and not diff else 0
    via = header(head, rb"via") or b""
    print("received=%d/%d leak=%d whole=%d consistent=%d content_length=%d body=%d inside_addr_in=%s "
          "changed=%s a_rtcp_added=%d via_out=%s sdp_media_out=%s media_in=%d answer=%d chunks_at_server=%s ack_at_server=%d "
          "timeout=%d wire_mismatch=%d" % (
              len(got), len(msg), leak, whole, consistent, clen, len(body),
              ",".join(where) or "none", ",".join(diff) or "none", added,
              via.split(b" ")[-1].split(b";")[0].decode("latin-1") or "none",
              rec.get("media_to") or "none", len(sent.get("media_in", [])), sent.get("status", 0),
              ",".join(str(len(base64.b64decode(c[1]))) for c in rec["chunks"]) or "none",
              1 if after.startswith(b"ACK ") else 0, 1 if rec.get("timeout") else 0, wire))


if __name__ == "__main__":
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role == "record" and len(sys.argv) == 5:
        record(*sys.argv[2:5])
    elif role == "send" and len(sys.argv) in (7, 8):
        send(*sys.argv[2:8])
    elif role == "judge" and len(sys.argv) in (4, 5):
        judge(*sys.argv[2:5])
    else:
        sys.exit(__doc__)
