#!/usr/bin/env python3
"""The FTP client of scripts/ha-e2e.sh: one control connection across a failover.

Logs in (anonymous) to 192.0.2.10, downloads small.bin in active mode (the PORT
command is rewritten by cgnat's ALG, to another length: the control connection's
sequence numbers are corrected from then on), writes WORK/ftp-ready, waits for
WORK/ftp-go (the failover happened meanwhile), then on the same control connection
asks PWD and downloads small.bin again in active mode (a PORT the new active's ALG
rewrites). Writes what it got to WORK/ftp1.bin and WORK/ftp2.bin, prints "ftp ok".

Usage: ha-ftp-client.py WORK
"""
import ftplib
import os
import sys
import time

work = sys.argv[1]


def fetch(f, out):
    chunks = []
    f.retrbinary("RETR small.bin", chunks.append)
    with open(out, "wb") as o:
        o.write(b"".join(chunks))


f = ftplib.FTP()
f.connect("192.0.2.10", 21, timeout=30)
f.login()
f.set_pasv(False)
fetch(f, os.path.join(work, "ftp1.bin"))
open(os.path.join(work, "ftp-ready"), "w").close()
deadline = time.time() + 120
while not os.path.exists(os.path.join(work, "ftp-go")):
    if time.time() > deadline:
        sys.exit("no go")
    time.sleep(0.05)
print("pwd after the failover:", f.pwd())
fetch(f, os.path.join(work, "ftp2.bin"))
f.quit()
print("ftp ok")
