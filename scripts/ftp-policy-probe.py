#!/usr/bin/env python3
"""An FTP client's bounce attempt, for the ALG policy steps of the netns beds.

Usage: ftp-policy-probe.py SERVER
Logs in as anonymous, sends PORT naming another host (192.0.2.99, port 25: an FTP
bounce toward a mail relay), then PWD, then QUIT, and prints one line:
  port_reply=<the reply to PORT> pwd_reply=<the reply to PWD>
(each the last line of a possibly multi-line reply). Exits 1 if the server stops
answering.
"""
import socket
import sys


def main():
    c = socket.create_connection((sys.argv[1], 21), 10)
    f = c.makefile("rb")

    def reply():
        while True:
            line = f.readline().decode(errors="replace")
            if not line:
                raise SystemExit("the connection closed")
            if len(line) > 3 and line[3] == " ":
                return line.strip()

    reply()
    got = {}
    for cmd in ("USER anonymous", "PASS x@", "PORT 192,0,2,99,0,25", "PWD", "QUIT"):
        c.sendall(cmd.encode() + b"\r\n")
        got[cmd.split()[0]] = reply()
    print("port_reply=%r pwd_reply=%r" % (got["PORT"], got["PWD"]))


if __name__ == "__main__":
    main()
