#!/usr/bin/env bash
# RTSP end-to-end test bed with real software: VLC serves a generated clip over RTSP
# from an "internet" namespace, ffmpeg in a "subscriber" namespace plays it (RTP over
# UDP, which needs the NAT to open pinholes for the server's media) and pushes to an
# ffmpeg RTSP listener (RECORD, over TCP interleaved and over UDP). Needs root.
#
# Usage: rtsp-e2e.sh MODE CGNAT_BINARY WORKDIR
#   MODE cgnat   cgnat runs in the root namespace on the veth ends (net_af_packet),
#                RTSP ALG on ports 554 and 8554, address-and-port-dependent filtering;
#                prints RTSP-E2E PASS only if every required check passed.
#   MODE linux   a router namespace does nftables masquerade and drops new inbound
#                connections (no RTSP conntrack helper in mainline Linux); report only.
#   MODE routed  the same router namespace, plain routing, no NAT: proves that the
#                server and the clients work on this machine; report only.
#   CGNAT_BINARY is only used in cgnat mode (pass - otherwise).
#
#   subscriber ns                    cgnat (root ns) or router ns               internet ns
#   rvs 100.64.0.2/10 <veth> rvsn  [inside 100.64.0.1]  [outside 203.0.113.1]  rvin <veth> rvi 203.0.113.254/24
#                                                                        lo: 192.0.2.10 (servers)
# Servers in the internet namespace:
#   VLC  rtsp://192.0.2.10:8554/test  (stream_out rtp with its own RTSP server, UDP only)
#   ffmpeg -rtsp_flags listen  rtsp://192.0.2.10:554/live  (accepts ANNOUNCE/RECORD)
#
# Output: one line per check, "RTSP-RESULT name=N ok=0|1 required=0|1 detail=...";
# evidence (the RTSP exchange as seen on either side, counters, pinholes) in WORKDIR.
set -euo pipefail
. "$(dirname "$0")/lib/cgnat-bed.sh"
# RTSP on any TCP port from 1024: a translated port must not hide it.
rtsp_as=$(decode_as tcp rtsp)
mode=${1:?usage: rtsp-e2e.sh cgnat|linux|routed CGNAT_BINARY WORKDIR}
result_label=RTSP
bin=${2:?CGNAT_BINARY (or -)}
work=$(realpath -m "${3:?WORKDIR}")
case "$mode" in
cgnat) bin=$(realpath "$bin") ;;
linux | routed) ;;
*) echo "unknown mode $mode" >&2; exit 2 ;;
esac
for tool in cvlc ffmpeg tshark tcpdump nft setpriv ethtool curl; do
    command -v "$tool" >/dev/null || { echo "RTSP-E2E FAIL: $tool is not installed (scripts/install-deps.sh --test)" >&2; exit 1; }
done
rm -rf "$work"
mkdir -p "$work"
tag=$$
sub=rtsub$tag inet=rtinet$tag rtr=rtrtr$tag
vs=rvs$tag vsn=rvsn$tag vi=rvi$tag vin=rvin$tag
server=192.0.2.10
pids=()
vlcdir=$(mktemp -d /tmp/rtsp-e2e-vlc.XXXXXX)

cleanup() {
    bed_teardown "$sub" "$inet" "$rtr" -- "$vsn" "$vin"
    rm -rf "$vlcdir"
}
trap cleanup EXIT

wait_tcp() { # ns addr port
    for _ in $(seq 1 100); do
        ip netns exec "$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

wait_listen() { # ns port: a TCP listener is up (without connecting: ffmpeg's
    # listen mode takes the first connection, whatever it is)
    for _ in $(seq 1 100); do
        ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q . && return 0
        sleep 0.1
    done
    return 1
}

# ---- topology
ip netns add "$sub"
ip netns add "$inet"
ip link add "$vs" type veth peer name "$vsn"
ip link add "$vi" type veth peer name "$vin"
ip link set "$vs" netns "$sub"
ip link set "$vi" netns "$inet"
offload() { ethtool -K "$1" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true; }
ip netns exec "$sub" sh -c "
    sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip link set lo up
    ip addr add 100.64.0.2/10 dev $vs
    ip link set $vs up
    ip route add default via 100.64.0.1"
ip netns exec "$sub" ethtool -K "$vs" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
# The server's media leaves from its service address (src), as on a single-homed
# server; RTSP_E2E_LINK_SRC=1 lets it leave from the link address instead (VLC then
# names it in the Transport reply as source=).
src_opt="src $server"
[ "${RTSP_E2E_LINK_SRC:-0}" = 1 ] && src_opt=""
ip netns exec "$inet" sh -c "
    sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip link set lo up
    ip addr add $server/32 dev lo
    ip addr add 203.0.113.254/24 dev $vi
    ip link set $vi up
    ip route add 198.51.100.0/28 via 203.0.113.1 $src_opt"
ip netns exec "$inet" ethtool -K "$vi" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true

if [ "$mode" = cgnat ]; then
    for ifc in "$vsn" "$vin"; do
        sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1" || true
        offload "$ifc"
        ip link set "$ifc" up
    done
else
    router_up "$rtr" "$vsn" "$vin"
    if [ "$mode" = routed ]; then
        ip netns exec "$inet" ip route add 100.64.0.0/10 via 203.0.113.1 $src_opt
    else
        # Masquerade (to the first pool address, so that the server sees the same
        # kind of peer as with cgnat and answers from its service address), and the
        # usual home-router firewall: from the internet only what conntrack relates
        # to a connection from inside. No RTSP helper exists in mainline Linux, so
        # nothing opens the media ports.
        ip netns exec "$rtr" nft -f - <<NFT
table ip rtspbed {
    chain forward {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "$vsn" accept
        counter comment "dropped from the internet"
    }
    chain postrouting {
        type nat hook postrouting priority 100;
        oifname "$vin" snat to 198.51.100.1
    }
}
NFT
        ip netns exec "$rtr" sh -c 'ls /proc/sys/net/netfilter/ | grep -i rtsp; lsmod 2>/dev/null | grep -i rtsp' \
            > "$work/linux-rtsp-helper.txt" 2>&1 || true
    fi
fi

# ---- cgnat
if [ "$mode" = cgnat ]; then
    write_cgnat_config "$work/cgnat.toml" rtsp "$vsn" "$vin" '
[alg]
rtsp = { enabled = true, ports = [554, 8554] }'
    "$bin" check -c "$work/cgnat.toml" > "$work/check.txt" 2>&1 || die "config refused: $(cat "$work/check.txt")"
    start_cgnat "$bin" "$work/cgnat.toml"
fi

# ---- captures: what reaches the internet, and what the subscriber sees
# Both directions on the internet link; what went toward the internet is what came
# from the NAT side's MAC address.
capture_both
gateway_up "$server"
echo "rtsp-e2e: $mode gateway up, $server reachable"

# ---- media and servers (a 180 s clip takes a few seconds to encode)
ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc=size=320x240:rate=25" -f lavfi -i "sine=frequency=440:sample_rate=44100" \
    -t "${RTSP_E2E_CLIP_SECS:-180}" -c:v libx264 -preset ultrafast -tune zerolatency -g 25 -pix_fmt yuv420p \
    -c:a aac -b:a 64k "$vlcdir/clip.mp4" || die "ffmpeg could not generate the clip"
chown -R nobody:nogroup "$vlcdir"
chmod 755 "$vlcdir"

# VLC will not run as root: run it as nobody inside the namespace. stream_out rtp
# with sdp=rtsp:// makes VLC an RTSP server. The clip outlasts the whole run: at
# each loop VLC renumbers its tracks (trackID=N), and a client whose DESCRIBE and
# SETUP straddle a loop gets 404 for the SETUP.
ip netns exec "$inet" setpriv --reuid=nobody --regid=nogroup --clear-groups \
    env HOME="$vlcdir" cvlc -q --intf dummy --no-video-title-show --loop --sout-keep \
    "$vlcdir/clip.mp4" --sout "#rtp{sdp=rtsp://$server:8554/test}" > "$work/vlc.log" 2>&1 &
pids+=($!)
wait_tcp "$inet" "$server" 8554 || die "VLC's RTSP server did not come up: $(tail -5 "$work/vlc.log")"
sleep 1 # let the stream start

frames() { { grep -o 'frame= *[0-9]*' "$1" || true; } | tail -1 | tr -dc 0-9; }
min_frames=${RTSP_E2E_MIN_FRAMES:-40}

# ---- 1. PLAY over UDP (client_port=a-b): the NAT must let the server's RTP in.
# ffmpeg sends a "punch" packet from each client port to the server_port the reply
# named, right after SETUP: a NAT that keeps the source port (Linux does) then lets
# the media in without any ALG. nopunch drops every UDP packet the subscriber sends
# toward the internet during the run, so that only a pinhole opened from the RTSP
# exchange itself (an ALG) can let the media in.
play() { # name transport required punch|nopunch
    local name=$1 tr=$2 rq=$3 punch=${4:-punch} log="$work/$1.log"
    local t0 rc=0
    if [ "$punch" = nopunch ]; then
        ip netns exec "$sub" nft -f - <<NFT
table ip nopunch {
    chain output {
        type filter hook output priority 0;
        meta l4proto udp ip daddr != 100.64.0.0/10 counter drop
    }
}
NFT
    fi
    if [ "$mode" = cgnat ]; then
        (sleep 2; curl -s --max-time 3 "http://127.0.0.1:$api_port/expectations" > "$work/expectations-during-$name.json") &
        pids+=($!)
    fi
    t0=$(date +%s.%N)
    ip netns exec "$sub" timeout 15 ffmpeg -hide_banner -nostdin -loglevel verbose \
        -rtsp_transport "$tr" -i "rtsp://$server:8554/test" -t 3 -f null - > "$log" 2>&1 || rc=$?
    local secs dropped=""
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    if [ "$punch" = nopunch ]; then
        dropped=" udp_dropped_at_subscriber=$(ip netns exec "$sub" nft list table ip nopunch | grep -o 'packets [0-9]*' | tr -dc 0-9)"
        ip netns exec "$sub" nft delete table ip nopunch
    fi
    local n why
    n=$(frames "$log")
    n=${n:-0}
    why=$(grep -E -i -m1 'failed|timeout|error|unsupported' "$log" | tr -s ' ' | cut -c1-120 || true)
    if [ "$rc" = 0 ] && [ "$n" -ge "$min_frames" ]; then
        result "$name" 1 "$rq" "frames=$n rc=$rc secs=$secs$dropped"
    else
        result "$name" 0 "$rq" "frames=$n rc=$rc secs=$secs$dropped ${why:+($why)}"
    fi
}

play play-udp udp "$(req)"
play play-udp-nopunch udp "$(req)" nopunch
# The same player with ffmpeg's default transport list (UDP, then TCP on timeout).
# The server's media from another address than the RTSP server's: its link address,
# which VLC then names in the reply (Transport: ...;source=203.0.113.254;...).
back_net=198.51.100.0/28
[ "$mode" = routed ] && back_net=100.64.0.0/10
ip netns exec "$inet" ip route change $back_net via 203.0.113.1
play play-udp-source-nopunch udp 0 nopunch
ip netns exec "$inet" ip route change $back_net via 203.0.113.1 $src_opt
play play-default udp+tcp 0
# VLC's stream_out RTSP server has no interleaved transport: a SETUP asking for
# RTP/AVP/TCP gets "461 Unsupported transport". What is checked is that this
# exchange crosses the NAT intact (the SETUP reaches VLC, its 461 reaches ffmpeg);
# interleaved media is covered by RECORD below.
play play-tcp-vlc tcp 0
if grep -q '461 Unsupported transport' "$work/play-tcp-vlc.log"; then
    result play-tcp-vlc-answer 1 "$(req)" "SETUP RTP/AVP/TCP answered 461 by VLC, as without NAT"
else
    result play-tcp-vlc-answer 0 "$(req)" "no 461 reached the client: $(grep -i -m1 -E 'failed|error' "$work/play-tcp-vlc.log" | cut -c1-120)"
fi

# ---- 2. RECORD (ANNOUNCE + SETUP mode=record): ffmpeg pushes the clip to an ffmpeg
#         listener on port 554, interleaved in the RTSP connection and then over UDP.
record() { # name transport required
    local name=$1 tr=$2 rq=$3
    ip netns exec "$inet" timeout 30 ffmpeg -hide_banner -nostdin -loglevel verbose \
        -rtsp_flags listen -timeout 20 -i "rtsp://$server:554/live" -f null - > "$work/$name-server.log" 2>&1 &
    local srv=$!
    pids+=("$srv")
    wait_listen "$inet" 554 || true
    local rc=0
    ip netns exec "$sub" timeout 30 ffmpeg -hide_banner -nostdin -loglevel verbose -re \
        -i "$vlcdir/clip.mp4" -t 4 -c copy -f rtsp -rtsp_transport "$tr" \
        "rtsp://$server:554/live" > "$work/$name-client.log" 2>&1 || rc=$?
    local src=0
    wait "$srv" || src=$?
    local n
    n=$(frames "$work/$name-server.log")
    n=${n:-0}
    local why
    why=$(grep -h -E -i -m1 'failed|timeout|error|unsupported' "$work/$name-client.log" "$work/$name-server.log" | tr -s ' ' | cut -c1-120 || true)
    if [ "$rc" = 0 ] && [ "$n" -ge "$min_frames" ]; then
        result "$name" 1 "$rq" "server_frames=$n client_rc=$rc server_rc=$src"
    else
        result "$name" 0 "$rq" "server_frames=$n client_rc=$rc server_rc=$src ${why:+($why)}"
    fi
}
record record-tcp tcp "$(req)"
record record-udp udp "$(req)"

# ---- 3. pinholes: what cgnat lists after every client has sent TEARDOWN
if [ "$mode" = cgnat ]; then
    sleep 1
    curl -s --max-time 3 "http://127.0.0.1:$api_port/expectations" > "$work/expectations-after.json" || true
    curl -s --max-time 3 "http://127.0.0.1:$api_port/counters" > "$work/counters.json" || true
    # frames cgnat handed to a port against what the port sent: a frame longer than
    # the link's MTU (e.g. two TCP segments joined) is dropped by the kernel unseen
    python3 -c "
import json, sys
c = json.load(open(sys.argv[1]))
for side in ('inside', 'outside'):
    print('%s: cgnat packets_out=%s port opackets=%s oerrors=%s' % (side, c['packets_out'][side],
          c['port_stats'][side]['opackets'], c['port_stats'][side]['oerrors']))
" "$work/counters.json" > "$work/tx-accounting.txt" 2>&1 || true
    echo "rtsp-e2e: $(tr '\n' ';' < "$work/tx-accounting.txt")"
    # Client ports of the RTSP connections that ended with TEARDOWN, and of those
    # that did not (a client killed by timeout may just close the connection; RTSP
    # sessions may outlive their connection, so their pinholes wait for expiry).
    tshark $rtsp_as -r "$work/subscriber.pcap" -Y 'rtsp.request' -T fields -e tcp.stream -e rtsp.method -e rtsp.transport \
        2>/dev/null > "$work/requests.txt" || true
    left=$(python3 - "$work/expectations-after.json" "$work/requests.txt" > "$work/pinholes-after.txt" <<'PY' && head -1 "$work/pinholes-after.txt" || echo "unreadable"
import json, re, sys
e = json.load(open(sys.argv[1]))["expectations"]
ports, torn = {}, set()
for line in open(sys.argv[2]):
    f = line.rstrip("\n").split("\t") + ["", ""]
    if f[1] == "TEARDOWN":
        torn.add(f[0])
    m = re.search(r"client_port=(\d+)(?:-(\d+))?", f[2])
    if m:
        lo = int(m.group(1)); hi = int(m.group(2) or lo)
        for p in range(lo, hi + 1):
            ports[p] = f[0]
bad, other = [], []
for x in e:
    if not x["inside"].startswith("100.64.0.2:"):
        continue
    port = int(x["inside"].split(":")[1])
    d = "%s %s<-%s expires_in=%ss" % (x["protocol"], x["inside"], x["remote"], x["expires_in_secs"])
    (bad if ports.get(port) in torn else other).append(d)
print(len(bad), ";".join(bad))
print(len(other), ";".join(other))
PY
)
    untorn=$(sed -n 2p "$work/pinholes-after.txt" 2>/dev/null || true)
    for f in "$work"/expectations-during-*.json; do
        during=$(python3 -c "
import json, sys
try:
    e = json.load(open(sys.argv[1]))['expectations']
    print(len(e), ';'.join('%s %s->%s<-%s' % (x['protocol'], x['outside'], x['inside'], x['remote']) for x in e))
except Exception as x:
    print('unreadable', x)
" "$f")
        n=${f##*/expectations-during-}
        echo "rtsp-e2e: pinholes listed 2 s into ${n%.json}: $during"
    done
    during=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['expectations']))" "$work/expectations-during-play-udp-nopunch.json" 2>/dev/null || echo '?')
    created=$(python3 -c "
import json, sys
a = json.load(open(sys.argv[1])).get('alg', {})
print('created=%s matched=%s expired=%s' % (a.get('expectations_created'), a.get('expectations_matched'), a.get('expectations_expired')))
" "$work/counters.json" 2>/dev/null || echo 'counters unreadable')
    if [ "${left%% *}" = 0 ]; then
        result pinholes-after-teardown 1 1 "none left by sessions that sent TEARDOWN; listed 2 s into play-udp-nopunch: $during; expectations $created"
    else
        result pinholes-after-teardown 0 1 "left after TEARDOWN: $left; expectations $created"
    fi
    result pinholes-without-teardown "$([ "${untorn%% *}" = 0 ] && echo 1 || echo 0)" 0 \
        "of sessions whose client closed without TEARDOWN: ${untorn:-?}"
fi

# ---- 4. what reached the internet side: never a 100.64/10 address, in headers
#         or in the RTSP text (Transport, SDP)
sleep 0.5
kill "$cap_inet" "$cap_sub" 2>/dev/null || true
sleep 0.5
if [ "$mode" = cgnat ]; then nat_mac=$(cat "/sys/class/net/$vin/address"); else nat_mac=$(ip netns exec "$rtr" cat "/sys/class/net/$vin/address"); fi
out="eth.src == $nat_mac"
tshark -r "$work/internet.pcap" -Y "$out && ip" -T fields -E occurrence=f -e ip.src 2>/dev/null | sort | uniq -c > "$work/sources.txt" || true
hdr=$(tshark -r "$work/internet.pcap" -Y "$out && (ip.src == 100.64.0.0/10 || ip.dst == 100.64.0.0/10)" 2>/dev/null | wc -l)
pay=$(tshark $rtsp_as -r "$work/internet.pcap" -Y "$out && rtsp && frame contains \"100.64.\"" -T fields -e frame.number -e rtsp.request -e rtsp.transport 2>/dev/null || true)
echo "$pay" > "$work/payload-leaks.txt"
npay=$(grep -c . "$work/payload-leaks.txt" || true)
srcs=$(awk '{printf "%s:%s ", $2, $1}' "$work/sources.txt")
[ "$hdr" = 0 ] && result no-inside-address-in-headers 1 "$(req)" "sources $srcs" \
    || result no-inside-address-in-headers 0 "$(req)" "$hdr packets with 100.64/10 in the IP header; sources $srcs"
[ "$npay" = 0 ] && result no-inside-address-in-rtsp 1 "$(req)" "no RTSP message names 100.64/10" \
    || result no-inside-address-in-rtsp 0 "$(req)" "$npay RTSP messages name 100.64/10: $(head -3 "$work/payload-leaks.txt" | tr '\t\n' ' |')"

# How the RTSP connections fared: TCP retransmissions the subscriber had to make
# (none without NAT), the longest a request waited for the first byte of its reply,
# and data segments that reached the internet side out of order. Reported, not
# required: an ALG that holds a segment ending inside a message (or inside an
# interleaved frame) until the rest comes can stall a sender that waits for the ACK
# of what was held (Nagle) until its retransmission timer fires.
retx=$(tshark -r "$work/subscriber.pcap" -Y '(tcp.port == 554 || tcp.port == 8554) && tcp.len > 0 && (tcp.analysis.retransmission || tcp.analysis.spurious_retransmission || tcp.analysis.fast_retransmission)' 2>/dev/null | wc -l)
ooo=$(tshark -r "$work/internet.pcap" -Y '(tcp.port == 554 || tcp.port == 8554) && tcp.len > 0 && tcp.analysis.out_of_order' 2>/dev/null | wc -l)
# request (first sending) to reply, as the subscriber saw it
wait_ms=$(tshark $rtsp_as -r "$work/subscriber.pcap" -Y 'rtsp.request || rtsp.response' -T fields \
    -e tcp.stream -e frame.time_relative -e rtsp.method -e rtsp.response 2>/dev/null \
    | awk -F'\t' 'BEGIN{m=0} $3!="" && !($1 in t){t[$1]=$2} $4!="" && ($1 in t){d=$2-t[$1]; if(d>m)m=d; delete t[$1]} END{printf "%d", m*1000}')
result rtsp-tcp-health "$([ "$retx" = 0 ] && [ "$ooo" = 0 ] && echo 1 || echo 0)" 0 \
    "retransmissions_by_subscriber=$retx out_of_order_at_server=$ooo longest_reply_gap_ms=$wait_ms"

# The RTSP exchange as seen on each side, for the record.
for side in subscriber internet; do
    tshark $rtsp_as -r "$work/$side.pcap" -Y rtsp -T fields -E occurrence=f -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport \
        -e rtsp.method -e rtsp.response -e rtsp.transport -e rtsp.url 2>/dev/null | sed 's/\\r\\n//g' \
        > "$work/rtsp-$side.txt" || true
    tshark -r "$work/$side.pcap" -Y 'udp && !icmp' -T fields -e ip.src -e udp.srcport -e ip.dst -e udp.dstport 2>/dev/null \
        | sort | uniq -c | sort -rn > "$work/udp-$side.txt" || true
done
for side in subscriber internet; do
    echo "rtsp-e2e: the first SETUP exchanges as the $side side saw them:"
    grep -E 'RTP/AVP' "$work/rtsp-$side.txt" | head -4 | sed 's/^/    /'
done
echo "rtsp-e2e: busiest UDP flows on the subscriber side:"
head -6 "$work/udp-subscriber.txt" | sed 's/^/    /'

# ---- 5. cgnat stops cleanly
if [ "$mode" = cgnat ]; then
    end_cgnat "$cg"
    alg=$(python3 -c "
import json, sys
t = open(sys.argv[1]).read()
s = json.loads(t[t.index('{'):])
print(json.dumps(s.get('alg', {}), separators=(',', ':')))
" "$work/summary.json" 2>/dev/null || echo '?')
    [ "$cg_rc" = 0 ] && result cgnat-clean-exit 1 1 "alg=$alg" || result cgnat-clean-exit 0 1 "rc=$cg_rc"
fi

if [ "$mode" = cgnat ]; then
    if [ "$failed_required" = 0 ]; then echo "RTSP-E2E PASS"; else echo "RTSP-E2E FAIL"; exit 1; fi
else
    echo "RTSP-E2E REPORT mode=$mode (nothing required)"
fi
