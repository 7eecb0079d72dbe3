#!/usr/bin/env bash
# End-to-end test bed: a "subscriber" and an "internet" network namespace joined to
# cgnat by veth pairs through net_af_packet. Runs real traffic through a running
# appliance and checks it. Needs root. Usage: netns-e2e.sh CGNAT_BINARY WORKDIR
#
#   subscriber ns                 root ns (cgnat)                 internet ns
#   vsub 100.64.0.2/10  <veth>  vsubX  [inside]  [outside]  vinetX  <veth>  vinet 203.0.113.254/24
#                                                                         lo: 192.0.2.10 (server)
#   pool 198.51.100.0/28, cgnat outside 203.0.113.1, inside 100.64.0.1
set -euo pipefail
. "$(dirname "$0")/lib/cgnat-bed.sh"
bin=$(realpath "$1")
work=$(realpath -m "$2")
mkdir -p "$work"
bed_init cg
# One machine-readable line per FTP/TFTP scenario (the names match those of
# scripts/linux-nat-e2e.sh, which runs the same scenarios through Linux's NAT).
result() { # name ok detail
    echo "CGNAT-RESULT name=$1 ok=$2 detail=$3"
}
fail() {
    echo "E2E FAIL: $*" >&2
    echo "--- cgnat counters"; curl -s --max-time 3 "http://127.0.0.1:${api_port:-9470}/counters" >&2 || true
    echo "--- cgnat log"; cat "$work/cgnat.log" >&2 || true
    for f in "$work"/ftp.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; } >&2; done
    exit 1
}

bed_up "$sub" "$inet" "$vs" "$vsn" "$vi" "$vin"

write_cgnat_config "$work/cgnat.toml" e2e "$vsn" "$vin" '
# A server behind the NAT (port forward) for the 227-reply cases.
[[nat.static]]
protocol = "tcp"
inside = "100.64.0.3:21"
outside = "198.51.100.2:21"

[alg]
tftp = { enabled = true }
# The FTP command policy (issue 14): SITE refused; bounce PORTs refused (the default).
ftp = { deny = ["SITE"] }'

"$bin" check -c "$work/cgnat.toml" > "$work/check.txt" || fail "config refused"
start_cgnat "$bin" "$work/cgnat.toml"

# The capture on the internet side: everything that reaches it from cgnat.
ip netns exec "$inet" tcpdump -i "$vi" -Q in -nn -U -w "$work/internet.pcap" 2>/dev/null &
pids+=($!)

# Wait for the appliance: the subscriber can ping its gateway (answered by the
# control lcore after ARP).
wait_up "$cg" || fail "cgnat did not answer ping on 100.64.0.1 (or exited)"
echo "e2e: appliance up"

# 1. ping through the NAT
ip netns exec "$sub" ping -c 3 -i 0.2 -W 2 192.0.2.10 > "$work/ping.txt" || fail "ping through NAT"
echo "e2e: ping ok: $(grep -o '[0-9]* received' "$work/ping.txt")"

# 2. HTTP download of 1 MB, sha256 checked
head -c 1048576 /dev/urandom > "$work/blob.bin"
want=$(sha256sum "$work/blob.bin" | cut -d' ' -f1)
ip netns exec "$inet" python3 -m http.server 8080 --bind 192.0.2.10 --directory "$work" > "$work/http.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do
    ip netns exec "$inet" python3 -c "import socket; socket.create_connection(('192.0.2.10', 8080), 0.2)" 2>/dev/null && break
    sleep 0.1
done
ip netns exec "$sub" curl -sS --max-time 60 -o "$work/got.bin" http://192.0.2.10:8080/blob.bin || fail "curl download"
got=$(sha256sum "$work/got.bin" | cut -d' ' -f1)
[ "$want" = "$got" ] || fail "sha256 mismatch: $want vs $got"
echo "e2e: http 1 MB download ok, sha256 $got"

# 3. UDP round trip to a real echo server
ip netns exec "$inet" python3 - > "$work/udp-server.log" 2>&1 <<'PY' &
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.10", 7007))
s.settimeout(30)
for _ in range(3):
    data, peer = s.recvfrom(2048)
    print(peer[0], peer[1], flush=True)
    s.sendto(data.upper(), peer)
PY
pids+=($!)
sleep 0.3
ip netns exec "$sub" python3 - > "$work/udp-client.log" 2>&1 <<'PY' || fail "UDP round trip"
import socket
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.settimeout(3)
for i in range(3):
    c.sendto(b"hello %d" % i, ("192.0.2.10", 7007))
    data, _ = c.recvfrom(2048)
    assert data == b"HELLO %d" % i, data
print("udp ok")
PY
peer=$(head -1 "$work/udp-server.log" | cut -d' ' -f1)
case "$peer" in 198.51.100.*) ;; *) fail "UDP server saw source $peer, not a pool address";; esac
echo "e2e: udp round trip ok, server saw $peer"

# 4. FTP through the ALG: a real server (pyftpdlib) and curl, passive (EPSV, PASV)
#    and active (EPRT, PORT) downloads of 5 MB, and uploads both ways.
mkdir -p "$work/ftp"
head -c 5242880 /dev/urandom > "$work/ftp/blob5.bin"
want5=$(sha256sum "$work/ftp/blob5.bin" | cut -d' ' -f1)
ip netns exec "$inet" /usr/bin/python3 -m pyftpdlib -i 192.0.2.10 -p 21 -w -d "$work/ftp" > "$work/ftp.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do
    ip netns exec "$inet" python3 -c "import socket; socket.create_connection(('192.0.2.10', 21), 0.2)" 2>/dev/null && break
    sleep 0.1
done
ftp_get() { # mode name, curl options...
    local mode=$1; shift
    ip netns exec "$sub" curl -sS --max-time 60 "$@" -o "$work/got-$mode.bin" ftp://192.0.2.10/blob5.bin \
        || { result "ftp-$mode" 0 "curl failed"; fail "FTP $mode download"; }
    [ "$(sha256sum "$work/got-$mode.bin" | cut -d' ' -f1)" = "$want5" ] \
        || { result "ftp-$mode" 0 "sha256 mismatch"; fail "FTP $mode download: sha256 mismatch"; }
    echo "e2e: ftp $mode download of 5 MB ok"
    result "ftp-$mode" 1 "5 MB sha256 ok"
}
ftp_get epsv
ftp_get pasv --disable-epsv
ftp_get eprt --ftp-port -
ftp_get port --ftp-port - --disable-eprt
for mode in pasv port; do
    opt=(); [ $mode = port ] && opt=(--ftp-port - --disable-eprt)
    ip netns exec "$sub" curl -sS --max-time 60 "${opt[@]}" -T "$work/ftp/blob5.bin" "ftp://192.0.2.10/up-$mode.bin" \
        || { result "ftp-upload-$mode" 0 "curl failed"; fail "FTP $mode upload"; }
    [ "$(sha256sum "$work/ftp/up-$mode.bin" | cut -d' ' -f1)" = "$want5" ] \
        || { result "ftp-upload-$mode" 0 "sha256 mismatch"; fail "FTP $mode upload: sha256 mismatch"; }
    echo "e2e: ftp $mode upload of 5 MB ok"
    result "ftp-upload-$mode" 1 "5 MB sha256 ok"
done

# lftp, a second client: passive (it tries EPSV/PASV) and active (PORT) downloads.
# lftp first asks for AUTH TLS, which pyftpdlib refuses: the ALG must carry on in clear.
for m in passive:on active:off; do
    name=lftp-${m%%:*}
    rm -f "$work/got-$name.bin"
    ip netns exec "$sub" timeout 60 lftp -d -c "set net:timeout 10; set net:max-retries 2;
        set ftp:passive-mode ${m#*:}; set xfer:clobber on; open -u anonymous,x@ ftp://192.0.2.10;
        get blob5.bin -o $work/got-$name.bin" > "$work/$name.log" 2>&1 \
        || { result "$name" 0 "lftp failed: $(tail -1 "$work/$name.log")"; fail "$name download"; }
    [ "$(sha256sum "$work/got-$name.bin" | cut -d' ' -f1)" = "$want5" ] \
        || { result "$name" 0 "sha256 mismatch"; fail "$name download: sha256 mismatch"; }
    echo "e2e: $name download of 5 MB ok ($(grep -o -m1 -E -- '---> (EPSV|PASV|EPRT|PORT)' "$work/$name.log" | cut -c6-))"
    result "$name" 1 "5 MB sha256 ok"
done

# The FTP command policy: curl's SITE CHMOD (the "*" lets curl go on past a failed
# quote command) gets 504 from cgnat in the server's name and never reaches pyftpdlib
# (which would answer 200), and the transfer after it works; a raw client's bounce
# PORT (naming another host) gets 504 and its next command (PWD) is answered.
ip netns exec "$sub" curl -v -sS --max-time 60 -Q "*SITE CHMOD 644 blob5.bin" -o "$work/got-policy.bin" \
    ftp://192.0.2.10/blob5.bin > "$work/ftp-policy.log" 2>&1 || fail "FTP after a refused SITE: $(tail -3 "$work/ftp-policy.log")"
grep -q "< 504 Command not allowed by policy" "$work/ftp-policy.log" \
    || fail "SITE was not refused: $(grep -E '^[<>] (SITE|[0-9]{3} )' "$work/ftp-policy.log" | tail -5)"
[ "$(sha256sum "$work/got-policy.bin" | cut -d' ' -f1)" = "$want5" ] || fail "FTP after a refused SITE: sha256 mismatch"
sent_to_server() { tcpdump -nn -A -r "$work/internet.pcap" 'tcp dst port 21' 2>/dev/null | grep -c "$1" || true; }
[ "$(sent_to_server "SITE CHMOD")" = 0 ] || fail "SITE CHMOD reached the server"
echo "e2e: ftp SITE refused with 504, the download after it ok (5 MB sha256)"
site_reply=$(awk '/^> SITE/{f = 1; next} f && /^< [0-9]/{print; exit}' "$work/ftp-policy.log")
result ftp-policy-site 1 "site_reply='${site_reply#< }' then 5 MB sha256 ok"
ip netns exec "$sub" python3 "$(dirname "$(realpath "$0")")/ftp-policy-probe.py" 192.0.2.10 > "$work/ftp-bounce.log" 2>&1 \
    || fail "FTP bounce PORT: $(cat "$work/ftp-bounce.log")"
grep -q "port_reply='504 Data connection to another host" "$work/ftp-bounce.log" \
    || fail "the bounce PORT was not refused: $(cat "$work/ftp-bounce.log")"
grep -q "pwd_reply='257 " "$work/ftp-bounce.log" || fail "no answer to PWD after the bounce PORT: $(cat "$work/ftp-bounce.log")"
[ "$(sent_to_server "PORT 192,0,2,99")" = 0 ] || fail "the bounce PORT reached the server"
[ "$(sent_to_server "PWD")" -ge 2 ] || fail "the capture of the control traffic shows no PWD (the check above reads nothing)"
echo "e2e: ftp bounce PORT refused with 504, the session goes on (PWD answered)"
result ftp-policy-bounce 1 "$(cat "$work/ftp-bounce.log")"

# PORT and EPRT commands that a per-segment helper gets wrong (scripts/ftp-tricky.py):
# split across two TCP segments (Linux drops the first part; cgnat holds it, joins and
# rewrites), or not at the start of their segment. A capture of the control traffic on
# the internet side per case checks that no inside address reaches the server.
tricky="$(dirname "$(realpath "$0")")/ftp-tricky.py"
for case in split-port split-eprt pipelined-port pipelined-eprt pipelined-split-port; do
    name=ftp-tricky-$case
    rm -f "$work/cap-$name.pcap"
    ip netns exec "$inet" tcpdump -i "$vi" -Q in -nn -U --immediate-mode -w "$work/cap-$name.pcap" tcp port 21 2>/dev/null &
    capp=$!
    pids+=("$capp")
    for _ in $(seq 1 40); do [ -s "$work/cap-$name.pcap" ] && break; sleep 0.05; done
    sleep 0.2
    ip netns exec "$sub" timeout 40 python3 "$tricky" client "$case" 192.0.2.10 100.64.0.2 blob5.bin "$work/got-$name.bin" \
        > "$work/$name.json" 2> "$work/$name.err" || true
    sleep 0.3
    kill "$capp" 2>/dev/null; wait "$capp" 2>/dev/null || true
    python3 "$tricky" leaks "$work/cap-$name.pcap" 100,64,0,2 100.64.0.2 > "$work/cap-$name.leaks.json"
    line=$(python3 - "$work/$name.json" "$work/cap-$name.leaks.json" "$want5" <<'PY'
import json, sys
try:
    r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
except Exception as e:
    r = {"sha256": None, "error": "no result from the client (%s)" % e, "command_reply": None}
cap = json.load(open(sys.argv[2]))
leak = cap.get("stream_hits", [])
segs = cap.get("to_21", [])
base = segs[0][0] if segs else 0
i = next((k for k, s in enumerate(segs) if s[1].startswith("TYPE")), -1) + 1
seen = " ".join("%d:%r" % ((q - base) & 0xffffffff, t) for q, t in segs[i:] if not t.startswith("RETR"))
ok = r["sha256"] == sys.argv[3] and not r["error"] and not leak
print("%d reply=%r transfer=%s%s leak=%d%s server-received=[%s]" % (
    ok, r["command_reply"], "sha256 ok" if r["sha256"] == sys.argv[3] else "failed",
    " error=%r" % r["error"] if r["error"] else "", bool(leak),
    " (%s sent %r)" % (leak[0]["src"], leak[0]["line"].strip()) if leak else "", seen))
PY
)
    result "$name" "${line%% *}" "${line#* }"
    if [ "${line%% *}" = 1 ]; then
        echo "e2e: ftp $case ok (5 MB, no inside address in the control traffic)"
    elif [ "$case" = split-port ]; then
        fail "FTP with a split PORT command: ${line#* }"
    else
        echo "e2e: ftp $case NOT ok: ${line#* }" # recorded, not (yet) required
    fi
done

# A server behind the NAT (static mapping 198.51.100.2:21 -> 100.64.0.3:21): the
# minimal server of scripts/ftp-tricky.py announces 100.64.0.3 in its 227 reply, in one
# segment, then split in two. curl on the internet side (which connects to the control
# connection's address whatever the 227 says); the capture shows what reply it got.
# Required: the port forward admits the control connection under address-and-port-
# dependent filtering, the 227 (whole or split) reaches the client translated, and the
# data connection comes in through the pinhole. (Before this was built, the inbound
# SYN was held and refused with ICMP, and the 227 went out untranslated.)
ip netns exec "$sub" ip addr add 100.64.0.3/10 dev "$vs"
for variant in 227 split-227; do
    name=server-inside-$variant
    split=(); [ $variant = split-227 ] && split=(split)
    ip netns exec "$sub" python3 "$tricky" server 100.64.0.3 "$work/ftp/blob5.bin" "${split[@]}" > "$work/$name-server.log" 2>&1 &
    spid=$!
    pids+=("$spid")
    rm -f "$work/cap-$name.pcap" "$work/got-$name.bin"
    ip netns exec "$inet" tcpdump -i "$vi" -Q in -nn -U --immediate-mode -w "$work/cap-$name.pcap" tcp port 21 2>/dev/null &
    capp=$!
    pids+=("$capp")
    for _ in $(seq 1 40); do [ -s "$work/cap-$name.pcap" ] && break; sleep 0.05; done
    # The server listening (a busy machine starts python slowly: curl once found
    # nothing on port 21 yet and was refused).
    for _ in $(seq 1 100); do
        ip netns exec "$sub" ss -Hltn 'sport = :21' | grep -q . && break
        sleep 0.05
    done
    sleep 0.3
    err=""
    ip netns exec "$inet" curl -sS --connect-timeout 3 --max-time 20 --disable-epsv -o "$work/got-$name.bin" ftp://198.51.100.2/blob5.bin \
        > "$work/$name.log" 2>&1 || err="curl exit $?: $(tail -1 "$work/$name.log")"
    sleep 0.3
    kill "$capp" "$spid" 2>/dev/null; wait "$capp" "$spid" 2>/dev/null || true
    python3 "$tricky" leaks "$work/cap-$name.pcap" 100,64,0,3 100.64.0.3 > "$work/cap-$name.leaks.json"
    line=$(python3 - "$work/cap-$name.leaks.json" <<'PY'
import json, sys
cap = json.load(open(sys.argv[1]))
leak = cap.get("stream_hits", [])
got = " ".join("%r" % t for _, t in cap.get("from_21", []) if t.startswith("22"))
print("%d%s client-received=[%s]" % (bool(leak), " (%s sent %r)" % (leak[0]["src"], leak[0]["line"].strip()) if leak else "", got))
PY
)
    sum=""; [ -f "$work/got-$name.bin" ] && sum=$(sha256sum "$work/got-$name.bin" | cut -d' ' -f1)
    if [ -z "$err" ] && [ "$sum" = "$want5" ] && [ "${line%% *}" = 0 ]; then
        result "$name" 1 "5 MB sha256 ok, leak=0 ${line#* }"
        echo "e2e: ftp server behind the NAT, $variant reply: ok"
    else
        result "$name" 0 "${err:-sha256 ${sum:-none}} leak=${line}"
        fail "ftp server behind the NAT, $variant reply: ${err:-sha256 ${sum:-none}} leak=${line}"
    fi
done

# A PORT with no transfer leaves an expectation (pinhole) that an operator can list:
# a minimal server on 192.0.2.11 acknowledges the command and never connects.
ip netns exec "$inet" ip addr add 192.0.2.11/32 dev lo
ip netns exec "$inet" python3 - > "$work/fake-ftp.log" 2>&1 <<'PY' &
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.0.2.11", 21)); s.listen(1); s.settimeout(20)
c, _ = s.accept(); c.sendall(b"220 hi\r\n"); f = c.makefile("rb")
while True:
    line = f.readline()
    if not line: break
    c.sendall(b"200 OK\r\n")
PY
pids+=($!)
sleep 0.5
ip netns exec "$sub" python3 - > "$work/expect.log" 2>&1 <<'PY' &
import socket, time
c = socket.create_connection(("192.0.2.11", 21), 10)
f = c.makefile("rb")
f.readline()
c.sendall(b"PORT 100,64,0,2,195,80\r\n"); print(f.readline(), flush=True)
time.sleep(4)
PY
client=$!
sleep 1.5
"$bin" show expectations --api "127.0.0.1:$api_port" > "$work/expectations.json" || fail "cgnat show expectations"
grep -q '"inside": "100.64.0.2:50000"' "$work/expectations.json" || fail "the pinhole is not listed: $(cat "$work/expectations.json")"
grep -q '"remote": "192.0.2.11"' "$work/expectations.json" || fail "the pinhole's remote is wrong: $(cat "$work/expectations.json")"
echo "e2e: cgnat show expectations lists the FTP pinhole"
wait "$client" 2>/dev/null || true

# 5. TFTP (tftp-hpa from tftpd-hpa): the server answers from a new port, which strict
#    filtering admits only through the TFTP ALG's expectation.
mkdir -p "$work/tftp"
head -c 262144 /dev/urandom > "$work/tftp/t.bin"
ip netns exec "$inet" /usr/sbin/in.tftpd -L -a 192.0.2.10:69 -s "$work/tftp" > "$work/tftpd.log" 2>&1 &
pids+=($!)
sleep 0.5
(cd "$work" && ip netns exec "$sub" timeout 30 tftp 192.0.2.10 -m binary -c get t.bin got-tftp.bin) \
    || { result tftp 0 "tftp failed"; fail "TFTP download"; }
[ "$(sha256sum "$work/got-tftp.bin" | cut -d' ' -f1)" = "$(sha256sum "$work/tftp/t.bin" | cut -d' ' -f1)" ] \
    || { result tftp 0 "sha256 mismatch"; fail "TFTP sha256 mismatch"; }
result tftp 1 "256 KB sha256 ok"
echo "e2e: tftp download of 256 KB ok (address-and-port-dependent filtering, TFTP ALG)"

# 5b. GRE (47) and ESP (50), translated by address alone, from two subscribers
#     (100.64.0.2 and 100.64.0.3, both in the subscriber namespace) to one remote. No
#     GRE or ESP module is needed: raw IP sockets send and receive them. The remote
#     echoes each packet to its source; each subscriber must get its own back (tagged),
#     and the remote must have seen two different pool addresses.
ip netns exec "$inet" python3 - > "$work/other-echo.log" 2>&1 <<'PY' &
import select, socket, time
socks = [socket.socket(socket.AF_INET, socket.SOCK_RAW, p) for p in (47, 50)]
for s in socks:
    s.bind(("192.0.2.10", 0))  # replies from the remote's address, not the route's
end = time.time() + 30
seen = 0
while time.time() < end and seen < 8:
    r, _, _ = select.select(socks, [], [], 1)
    for s in r:
        data, peer = s.recvfrom(4096)
        body = data[(data[0] & 15) * 4:]
        s.sendto(b"echo " + body, (peer[0], 0))
        print(s.proto, peer[0], body.decode(errors="replace"), flush=True)
        seen += 1
PY
pids+=($!)
sleep 0.5
ip netns exec "$sub" python3 - > "$work/other-client.log" 2>&1 <<'PY' || fail "GRE/ESP round trip: $(cat "$work/other-client.log")"
import socket, time
subs = ["100.64.0.2", "100.64.0.3"]
for proto in (47, 50):
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    r.settimeout(3)
    for k in range(2):
        for sub in subs:
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
            s.bind((sub, 0))
            s.sendto(("%s %d from %s" % (proto, k, sub)).encode(), ("192.0.2.10", 0))
            s.close()
    got = {}
    deadline = time.time() + 5
    while len(got) < 4 and time.time() < deadline:
        data, peer = r.recvfrom(4096)
        dst = socket.inet_ntoa(data[16:20])
        body = data[(data[0] & 15) * 4:].decode(errors="replace")
        assert peer[0] == "192.0.2.10", peer
        assert body.startswith("echo %d " % proto) and body.endswith("from " + dst), (dst, body)
        got[body] = dst
    assert len(got) == 4, got
    print("proto", proto, "ok:", sorted(got.values()))
PY
pools=$(awk '{print $2}' "$work/other-echo.log" | sort -u | tr '\n' ' ')
[ "$(awk '{print $2}' "$work/other-echo.log" | sort -u | wc -l)" = 2 ] \
    || fail "GRE/ESP: the remote saw sources [$pools], not two pool addresses"
case "$pools" in *100.64.*) fail "GRE/ESP: an inside address reached the remote: $pools";; esac
echo "e2e: GRE and ESP from two subscribers to one remote and back ok (remote saw $pools)"

# 6. Only pool addresses may appear as sources on the internet side.
sleep 0.5
kill "${pids[1]}" 2>/dev/null || true
sleep 0.5
tcpdump -nn -r "$work/internet.pcap" ip 2>/dev/null | awk '{print $3}' | cut -d. -f1-4 | sort | uniq -c > "$work/sources.txt"
echo "e2e: sources seen on the internet side:"; cat "$work/sources.txt"
[ -s "$work/sources.txt" ] || fail "nothing captured on the internet side"
if awk '{print $2}' "$work/sources.txt" | grep -v '^198\.51\.100\.\([0-9]\|1[0-5]\)$' ; then
    fail "a non-pool source leaked to the internet side"
fi

# 7. Clean stop with final counters
stop_cgnat "$cg"
python3 - "$work/summary.json" <<'PY' || fail "bad final summary"
import json, sys
text = open(sys.argv[1]).read()
s = json.loads(text[text.index("{"):])
assert s["translated"]["in2out"] > 0 and s["translated"]["out2in"] > 0, s["translated"]
assert s["sessions_created"]["tcp"] >= 1 and s["sessions_created"]["udp"] >= 1 and s["sessions_created"]["icmp"] >= 1, s
# GRE and ESP of two subscribers (5b): four address-only sessions.
assert s["sessions_created"]["other"] == 4, s["sessions_created"]
alg = s["alg"]
# At least four active FTP transfers (EPRT and PORT downloads, PORT upload, split PORT;
# lftp active and the other tricky cases add to them): four rewrites and expectations
# the server's data connections matched; one more for TFTP.
assert alg["ftp_rewrites"] >= 5 and alg["expectations_matched"] >= 5, alg
assert alg["ftp_held"] >= 1 and alg["ftp_joined"] >= 1, alg
assert alg["ftp_policy_reply"] >= 2, alg
print("e2e: final counters", json.dumps(s["translated"]), json.dumps(alg))
PY
echo "E2E PASS"
