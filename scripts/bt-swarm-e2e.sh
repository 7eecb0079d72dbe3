#!/usr/bin/env bash
# A real BitTorrent swarm across cgnat: transmission-daemon seeds a file from the
# subscriber namespace with port forwarding on (it asks its gateway, cgnat's inside
# address, for its peer port with NAT-PMP); opentracker and a leecher (aria2c) are in
# the internet namespace. The leecher cannot be reached from outside (nftables drops
# connections to it), so it gets the file only by connecting to the seeder at the
# address and port the tracker gives: the seeder's mapping on the pool.
#   MODE pcp:   [pcp] on. The leecher downloads the whole file (sha256 checked) and
#               the tracker lists the seeder at a pool address and its mapped port.
#   MODE nopcp: no [pcp]. The same swarm: the leecher gets nothing within the time.
# Needs root. Usage: bt-swarm-e2e.sh MODE CGNAT_BINARY WORKDIR
set -euo pipefail
. "$(dirname "$0")/lib/cgnat-bed.sh"
mode=$1
bin=$(realpath "$2")
work=$(realpath -m "$3")
rm -rf "$work"
mkdir -p "$work"
bed_init cgbt
fail() {
    echo "SWARM E2E FAIL ($mode): $*" >&2
    echo "--- cgnat counters"; curl -s --max-time 3 "http://127.0.0.1:${api_port:-9470}/counters" >&2 || true
    echo "--- seeder log"; tail -30 "$work/seeder.log" >&2 || true
    echo "--- leecher log"; tail -30 "$work/leecher.log" >&2 || true
    exit 1
}

bed_up "$sub" "$inet" "$vs" "$vsn" "$vi" "$vin"
case "$mode" in
    pcp) extra='
[pcp]' ;;
    nopcp) extra='' ;;
    *) echo "MODE is pcp or nopcp" >&2; exit 2 ;;
esac
write_cgnat_config "$work/cgnat.toml" bt "$vsn" "$vin" "$extra"
"$bin" check -c "$work/cgnat.toml" > "$work/check.txt" || fail "config refused"
start_cgnat "$bin" "$work/cgnat.toml"
wait_up "$cg" || fail "cgnat did not answer ping on 100.64.0.1 (or exited)"
echo "swarm: appliance up ($mode)"

# The content and its torrent.
mkdir -p "$work/seed" "$work/leech" "$work/seeder-cfg"
head -c 4194304 /dev/urandom > "$work/seed/payload.bin"
want=$(sha256sum "$work/seed/payload.bin" | cut -d' ' -f1)
transmission-create -t http://192.0.2.10:6969/announce -o "$work/payload.torrent" "$work/seed/payload.bin" > "$work/create.log" 2>&1 || fail "transmission-create"
hash=$(transmission-show "$work/payload.torrent" | sed -n 's/^ *Hash: *\([0-9a-f]*\)$/\1/p')
[ -n "$hash" ] || fail "no info hash"

# The tracker, on the internet side (Debian's opentracker serves the torrents of its
# whitelist only, read in its chroot; it will not run as root).
mkdir -p "$work/tracker"
echo "$hash" > "$work/tracker/whitelist.txt"
chmod 755 "$work/tracker"
chmod 644 "$work/tracker/whitelist.txt"
ip netns exec "$inet" opentracker -i 192.0.2.10 -p 6969 -P 6969 -d "$work/tracker" -u nobody -w whitelist.txt > "$work/tracker.log" 2>&1 &
pids+=($!)

# The seeder behind cgnat: port forwarding on, no DHT, LPD, PEX or uTP (only the
# tracker brings peers, only over TCP).
cat > "$work/seeder-cfg/settings.json" <<JSON
{
    "dht-enabled": false,
    "lpd-enabled": false,
    "pex-enabled": false,
    "utp-enabled": false,
    "port-forwarding-enabled": true,
    "peer-port": 51413,
    "peer-port-random-on-start": false,
    "rpc-enabled": true,
    "rpc-bind-address": "127.0.0.1",
    "rpc-port": 9091,
    "rpc-authentication-required": false,
    "rpc-whitelist-enabled": false,
    "download-dir": "$work/seed",
    "message-level": 3
}
JSON
ip netns exec "$sub" transmission-daemon -f -g "$work/seeder-cfg" -e "$work/seeder.log" > "$work/seeder.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    ip netns exec "$sub" transmission-remote 127.0.0.1:9091 -l > /dev/null 2>&1 && break
    sleep 0.2
done
# Its port forwarding first, so that it announces the mapped port from the start
# (without [pcp], NAT-PMP gets no answer and it announces its own port).
fwd=0
for _ in $(seq 1 ${FWD_WAIT:-75}); do
    if grep -q 'Port [0-9]* forwarded successfully' "$work/seeder.log" 2>/dev/null; then fwd=1; break; fi
    sleep 0.2
done
if [ "$mode" = pcp ]; then
    [ $fwd = 1 ] || fail "the seeder's NAT-PMP port forwarding did not succeed"
    echo "swarm: the seeder forwarded its peer port with NAT-PMP"
else
    [ $fwd = 0 ] || fail "NAT-PMP port forwarding succeeded without [pcp]"
    echo "swarm: the seeder's NAT-PMP got no answer"
fi
ip netns exec "$sub" transmission-remote 127.0.0.1:9091 -a "$work/payload.torrent" -w "$work/seed" > /dev/null || fail "adding the torrent to the seeder"
# Seeding once verified, and announced to the tracker.
seeding=0
for _ in $(seq 1 150); do
    if grep -q 'Percent Done: 100%' <<<"$(ip netns exec "$sub" transmission-remote 127.0.0.1:9091 -t 1 -i 2>/dev/null)"; then seeding=1; break; fi
    sleep 0.2
done
[ $seeding = 1 ] || fail "the seeder does not seed"
echo "swarm: seeder seeding $hash"

# What the tracker knows: a compact announce from the internet side lists the seeder.
tracker_peers() {
    ip netns exec "$inet" python3 - "$hash" <<'PY'
import socket, sys, urllib.parse, urllib.request
h = bytes.fromhex(sys.argv[1])
# quote, not quote_plus: opentracker does not read "+" as a space, and an info hash
# with a 0x20 byte (one in about 13) would be refused as another torrent.
q = urllib.parse.urlencode({"info_hash": h, "peer_id": b"-QQ0001-observer0001", "port": 1,
                            "uploaded": 0, "downloaded": 0, "left": 0, "compact": 1,
                            "numwant": 50}, quote_via=urllib.parse.quote)
body = urllib.request.urlopen("http://192.0.2.10:6969/announce?" + q, timeout=5).read()
i = body.find(b"5:peers")
n_start = i + len(b"5:peers")
colon = body.index(b":", n_start)
n = int(body[n_start:colon])
peers = body[colon + 1:colon + 1 + n]
for k in range(0, len(peers) - 5, 6):
    print("%s:%d" % (socket.inet_ntoa(peers[k:k + 4]), int.from_bytes(peers[k + 4:k + 6], "big")))
PY
}
seen=
for _ in $(seq 1 100); do
    seen=$(tracker_peers 2>/dev/null | grep '^198\.51\.100\.' | head -1 || true)
    [ -n "$seen" ] && break
    sleep 0.2
done
[ -n "$seen" ] || fail "the tracker does not list the seeder at a pool address: $(tracker_peers 2>&1)"
echo "swarm: the tracker lists the seeder at $seen"
m=$(curl -s --max-time 3 "http://127.0.0.1:$metrics_port/metrics")
mapped=$(echo "$m" | sed -n 's/^cgnat_pcp_requests_total{outcome="mapped"} \([0-9]*\)$/\1/p')
echo "swarm: cgnat PCP/NAT-PMP mappings made: ${mapped:-none (server off)}"

# The leecher, unreachable from outside: it must connect to the seeder.
ip netns exec "$inet" nft -f - <<'NFT'
table inet swarm {
    chain input {
        type filter hook input priority 0;
        tcp flags syn / syn,ack ip daddr 203.0.113.254 drop
        tcp flags syn / syn,ack ip daddr 192.0.2.10 tcp dport != 6969 drop
    }
}
NFT
secs=${SWARM_SECS:-45}
set +e
ip netns exec "$inet" timeout "$secs" aria2c --dir="$work/leech" --seed-time=0 \
    --enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false \
    --listen-port=6881 --summary-interval=5 --console-log-level=notice \
    --bt-stop-timeout="$secs" --allow-overwrite=true "$work/payload.torrent" > "$work/leecher.log" 2>&1
rc=$?
set -e
got=$( [ -f "$work/leech/payload.bin" ] && sha256sum "$work/leech/payload.bin" | cut -d' ' -f1 || echo none)
if [ "$mode" = pcp ]; then
    [ $rc = 0 ] || fail "aria2c exited $rc"
    [ "$got" = "$want" ] || fail "sha256 mismatch: $want vs $got"
    port=${seen##*:}
    [ "$port" != 51413 ] || echo "swarm: (the mapped port is the seeder's own, 51413)"
    echo "swarm: the leecher downloaded 4 MB from the seeder at $seen, sha256 $got"
    echo "SWARM E2E PASS (pcp)"
else
    [ "$got" != "$want" ] || fail "the leecher got the file without PCP"
    have=$(stat -c %s "$work/leech/payload.bin" 2>/dev/null || echo 0)
    grep -q 'Download complete' "$work/leecher.log" && fail "aria2c completed a download without PCP"
    echo "swarm: without [pcp] the leecher got nothing from $seen within ${secs}s (aria2c exit $rc, file $have bytes allocated, sha256 $got)"
    echo "SWARM E2E PASS (nopcp)"
fi
