#!/usr/bin/env bash
# Changes without restart, end to end: a subscriber downloads a file over HTTP (rate
# limited, so it spans the test) and keeps a UDP exchange going while cgnat is
# reloaded four times (`cgnat reload` three times, SIGHUP once) with timeouts, an ALG
# switch, a static mapping, a limit, a log collector and the pool changed (the last
# reload adds 198.51.100.64/30 and removes the /28: the subscriber's live sessions
# stay on its draining address, `cgnat show pool` shows it draining and the new
# addresses active, and a second subscriber address gets a new one). Checks: the download's
# sha256, every UDP datagram answered (at most 3 sent again in the run) from one
# unchanged mapping, the subscriber's
# sessions (inside and outside endpoints) the same after each reload, the running
# config changed each time, and the ALG switch followed: active FTP fails with the
# FTP ALG off and works again once it is back on. Needs root.
# Usage: reload-e2e.sh CGNAT_BINARY WORKDIR
set -euo pipefail
. "$(dirname "$0")/lib/cgnat-bed.sh"
bin=$(realpath "$1")
work=$(realpath -m "$2")
rm -rf "$work"
mkdir -p "$work"
bed_init rl
fail() {
    echo "RELOAD-E2E FAIL: $*" >&2
    echo "--- cgnat log" >&2; cat "$work/cgnat.log" >&2 || true
    for f in udp-client.log udp-server.log curl.log; do
        [ -f "$work/$f" ] && { echo "--- $f"; tail -20 "$work/$f"; } >&2
    done
    exit 1
}

bed_up "$sub" "$inet" "$vs" "$vsn" "$vi" "$vin"

# The config of reload N: the bed's, with EXTRA [nat] keys and tables.
config() { # extra
    local api=${api_port:-} metrics=${metrics_port:-}
    # Room for subscribers set at start: the default is sized from the pool, and a
    # pool added live must not need bigger tables.
    write_cgnat_config "$work/cgnat.toml" reload "$vsn" "$vin" "max_subscribers = 4096
$1"
    if [ -n "$api" ]; then
        # Same listeners as at start (they cannot change live).
        sed -i "s/127.0.0.1:$api_port\"/127.0.0.1:$api\"/; s/127.0.0.1:$metrics_port\"/127.0.0.1:$metrics\"/" "$work/cgnat.toml"
        api_port=$api metrics_port=$metrics
    fi
}
config ''
"$bin" check -c "$work/cgnat.toml" > /dev/null || fail "config refused"
start_cgnat "$bin" "$work/cgnat.toml"
api="127.0.0.1:$api_port"

wait_up "$cg" || fail "cgnat did not answer ping on 100.64.0.1 (or exited)"
echo "reload-e2e: appliance up"

# Servers: HTTP with a 24 MB file, a UDP echo, FTP (pyftpdlib) with a small file.
# 24 MB at 250 KB/s: 80 s or more, over twice what the four reloads and their checks take
# on an idle machine (with 8 MB a loaded CI run reached reload 3 after the download
# had ended).
head -c 25165824 /dev/urandom > "$work/blob.bin"
want=$(sha256sum "$work/blob.bin" | cut -d' ' -f1)
mkdir -p "$work/ftp"
head -c 65536 /dev/urandom > "$work/ftp/small.bin"
ip netns exec "$inet" python3 -m http.server 8080 --bind 192.0.2.10 --directory "$work" > "$work/http.log" 2>&1 &
pids+=($!)
ip netns exec "$inet" /usr/bin/python3 -m pyftpdlib -i 192.0.2.10 -p 21 -d "$work/ftp" > "$work/ftp.log" 2>&1 &
pids+=($!)
ip netns exec "$inet" python3 - > "$work/udp-server.log" 2>&1 <<'PY' &
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.10", 7007))
s.settimeout(60)
peers = set()
while True:
    data, peer = s.recvfrom(2048)
    if data == b"END":
        print("peers", " ".join("%s:%d" % p for p in sorted(peers)), flush=True)
        s.sendto(b"BYE", peer)
        break
    peers.add(peer)
    s.sendto(data.upper(), peer)
PY
pids+=($!)
for port in 8080 21; do
    for _ in $(seq 1 50); do
        ip netns exec "$inet" python3 -c "import socket; socket.create_connection(('192.0.2.10', $port), 0.2)" 2>/dev/null && break
        sleep 0.1
    done
done

# The long transfers: the download at 250 KB/s (about 33 s), and a datagram every
# 50 ms from one socket, each answer awaited (3 s at most) until told to stop.
ip netns exec "$sub" curl -sS --max-time 180 --limit-rate 250k -o "$work/got.bin" \
    http://192.0.2.10:8080/blob.bin > "$work/curl.log" 2>&1 &
curl_pid=$!
pids+=("$curl_pid")
ip netns exec "$sub" python3 - "$work/udp-stop" > "$work/udp-client.log" 2>&1 <<'PY' &
import os, socket, sys, time
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.bind(("100.64.0.2", 40777))
c.settimeout(3)
# Warm-up: the first datagram may wait for ARP on either side.
for _ in range(20):
    c.sendto(b"hello", ("192.0.2.10", 7007))
    try:
        if c.recvfrom(2048)[0] == b"HELLO":
            break
    except socket.timeout:
        pass
else:
    sys.exit("no answer at all")
# A datagram unanswered for 3 s is sent again, twice at most: the veths and the
# af_packet rings between the namespaces and cgnat may lose one on a loaded machine
# (a clean-clone CI run lost one of 1,721 with no drop counted by cgnat and every
# packet its ports received sent on). Passes with every datagram answered and at most MAX_RESENT sent again in
# the run; an answer to an earlier try is read past.
MAX_RESENT = 3
sent = answered = resent = 0
while not os.path.exists(sys.argv[1]) and sent < 2000:
    msg = b"ping %d" % sent
    sent += 1
    got = False
    for attempt in range(3):
        if attempt:
            resent += 1
            print("no answer to", msg, "in 3 s: sent again", flush=True)
        c.sendto(msg, ("192.0.2.10", 7007))
        deadline = time.monotonic() + 3
        while not got and time.monotonic() < deadline:
            c.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                got = c.recvfrom(2048)[0] == msg.upper()
            except socket.timeout:
                break
        if got:
            break
    if got:
        answered += 1
    else:
        print("no answer to", msg, "after 3 tries", flush=True)
    time.sleep(0.05)
c.settimeout(3)
c.sendto(b"END", ("192.0.2.10", 7007))
while c.recvfrom(2048)[0] != b"BYE":
    pass
print("sent", sent, "answered", answered, "sent again", resent, flush=True)
sys.exit(0 if sent == answered and sent > 100 and resent <= MAX_RESENT else 1)
PY
udp_pid=$!
pids+=("$udp_pid")

# The subscriber's sessions as "protocol inside outside" lines: the download and the
# UDP exchange (FTP sessions come and go).
sessions() {
    "$bin" show sessions --api "$api" --subscriber 100.64.0.2 --json \
        | python3 -c '
import json, sys
for s in json.load(sys.stdin)["sessions"]:
    if s["remote"] in ("192.0.2.10:8080", "192.0.2.10:7007"):
        print(s["protocol"], s["inside"], s["outside"])' | sort
}
for _ in $(seq 1 50); do
    [ "$(sessions | wc -l)" = 2 ] && break
    sleep 0.1
done
before=$(sessions)
[ "$(echo "$before" | wc -l)" = 2 ] || fail "the download and the UDP exchange are not both in the sessions: $before"
echo "reload-e2e: live sessions:"; echo "$before" | sed 's/^/    /'

check_same() { # after-what
    local now
    now=$(sessions)
    [ "$now" = "$before" ] || fail "sessions changed $1: before [$before] now [$now]"
    kill -0 "$curl_pid" 2>/dev/null || fail "the download ended $1 (too early)"
    echo "reload-e2e: $1: the same sessions, both transfers going"
}
active_ftp() { # -> status of an active-mode (PORT) download
    ip netns exec "$sub" curl -sS --max-time 10 --ftp-port - --disable-eprt \
        -o "$work/ftp-got.bin" ftp://192.0.2.10/small.bin > "$work/ftp-curl.log" 2>&1
}

sleep 1
# Reload 1 (cgnat reload): longer UDP timeout, the FTP ALG off.
config '[nat.timeouts]
udp = 600
[alg]
ftp = { enabled = false }'
"$bin" reload -c "$work/cgnat.toml" > "$work/reload1.txt" 2>&1 || fail "reload 1: $(cat "$work/reload1.txt")"
grep -q "changed alg.ftp.enabled: true -> false" "$work/reload1.txt" || fail "reload 1 answer: $(cat "$work/reload1.txt")"
grep -q "^udp = 600" <<<"$("$bin" show config --api "$api")" || fail "reload 1 not in show config"
check_same "after reload 1"
if active_ftp; then fail "active FTP worked with the FTP ALG off"; fi
# The PORT command went out as the subscriber wrote it: the server saw the inside
# address (and refused it).
grep -q "Rejected data connection to foreign address 100.64.0.2:" "$work/ftp.log" \
    || fail "with the FTP ALG off the server did not see the inside address: $(tail -3 "$work/ftp.log")"
echo "reload-e2e: active FTP fails with the FTP ALG off: the server saw PORT 100.64.0.2"

sleep 1
# Reload 2 (SIGHUP): a static mapping, a session limit, an IPFIX collector.
config 'max_sessions_per_subscriber = 500
[nat.timeouts]
udp = 600
[[nat.static]]
protocol = "tcp"
inside = "100.64.0.3:80"
outside = "198.51.100.2:8080"
[alg]
ftp = { enabled = false }
[logging.ipfix]
collector = "127.0.0.1:4739"'
n=$(grep -c "reload (SIGHUP): applied" "$work/cgnat.log" || true)
kill -HUP "$cg"
for _ in $(seq 1 50); do
    [ "$(grep -c "reload (SIGHUP): applied" "$work/cgnat.log" || true)" -gt "$n" ] && break
    sleep 0.1
done
grep "reload (SIGHUP): applied" "$work/cgnat.log" | grep -q "nat.static" || fail "SIGHUP reload not applied"
grep -q "198.51.100.2:8080" <<<"$("$bin" show config --api "$api")" || fail "reload 2 not in show config"
check_same "after reload 2 (SIGHUP)"

sleep 1
# Reload 3 (cgnat reload): back to the start, the FTP ALG on again.
config ''
"$bin" reload --api "$api" > "$work/reload3.txt" 2>&1 || fail "reload 3: $(cat "$work/reload3.txt")"
grep -q "changed alg.ftp.enabled: false -> true" "$work/reload3.txt" || fail "reload 3 answer: $(cat "$work/reload3.txt")"
grep -q "^udp = 300" <<<"$("$bin" show config --api "$api")" || fail "reload 3 not in show config"
check_same "after reload 3"
active_ftp || fail "active FTP with the FTP ALG back on: $(cat "$work/ftp-curl.log")"
cmp -s "$work/ftp-got.bin" "$work/ftp/small.bin" || fail "active FTP download differs"
echo "reload-e2e: active FTP works with the FTP ALG back on"

sleep 1
# Reload 4 (cgnat reload): 198.51.100.64/30 added, the /28 removed (it drains). The
# internet routes the new prefix to the appliance too.
ip -n "$inet" route add 198.51.100.64/30 via 203.0.113.1
config ''
sed -i 's|^pool = \["198.51.100.0/28"\]|pool = ["198.51.100.64/30"]|' "$work/cgnat.toml"
grep -q '^pool = \["198.51.100.64/30"\]' "$work/cgnat.toml" || fail "the pool line of the bed's config moved"
"$bin" reload --api "$api" > "$work/reload4.txt" 2>&1 || fail "reload 4: $(cat "$work/reload4.txt")"
grep -q "changed nat.pool" "$work/reload4.txt" || fail "reload 4 answer: $(cat "$work/reload4.txt")"
check_same "after reload 4 (pool)"
"$bin" show pool --api "$api" > "$work/pool.txt" || fail "show pool: $(cat "$work/pool.txt")"
out_addr=$(echo "$before" | awk '$1 == "udp" { split($3, a, ":"); print a[1] }')
grep -Eq "^$out_addr +[1-9][0-9]* +draining$" "$work/pool.txt" \
    || fail "the subscriber's address $out_addr is not draining in show pool: $(cat "$work/pool.txt")"
grep -Eq "^198.51.100.64 +[0-9]+ +active$" "$work/pool.txt" \
    || fail "198.51.100.64 not active in show pool: $(cat "$work/pool.txt")"
echo "reload-e2e: show pool after reload 4:"; sed 's/^/    /' "$work/pool.txt"
# A new subscriber (a second address of the subscriber's namespace) gets an address
# of the new prefix, never a draining one: the HTTP server sees it.
ip -n "$sub" addr add 100.64.0.4/10 dev "$vs"
ip netns exec "$sub" curl -sS --max-time 10 --interface 100.64.0.4 -o "$work/small-new.bin" \
    http://192.0.2.10:8080/ftp/small.bin > "$work/curl-new.log" 2>&1 \
    || fail "the new subscriber's download failed: $(cat "$work/curl-new.log")"
cmp -s "$work/small-new.bin" "$work/ftp/small.bin" || fail "the new subscriber's download differs"
grep -Eq '^198\.51\.100\.6[4-7] .*GET /ftp/small.bin' "$work/http.log" \
    || fail "the new subscriber did not come from 198.51.100.64/30: $(grep small.bin "$work/http.log")"
echo "reload-e2e: a new subscriber comes from $(grep 'GET /ftp/small.bin' "$work/http.log" | cut -d' ' -f1)"

wait "$curl_pid" || fail "the download failed: $(cat "$work/curl.log")"
got=$(sha256sum "$work/got.bin" | cut -d' ' -f1)
[ "$want" = "$got" ] || fail "sha256 mismatch: $want vs $got"
echo "reload-e2e: 24 MB download across four reloads ok, sha256 $got"
touch "$work/udp-stop"
wait "$udp_pid" || fail "the UDP exchange lost datagrams: $(tail -3 "$work/udp-client.log")"
peers=$(grep '^peers' "$work/udp-server.log" | cut -d' ' -f2-)
case "$peers" in
198.51.100.*:*) ;;
*) fail "the UDP server saw $peers, not one pool address and port" ;;
esac
[ "$(echo "$peers" | wc -w)" = 1 ] || fail "the UDP server saw several mappings: $peers"
echo "reload-e2e: UDP exchange across four reloads ok ($(tail -1 "$work/udp-client.log")), one mapping $peers"
echo "RELOAD-E2E PASS"
