#!/usr/bin/env bash
# The FTP and TFTP scenarios of scripts/netns-e2e.sh, but through the Linux kernel's
# NAT (nftables snat + the built-in nf_conntrack_ftp/nf_nat_ftp and tftp helpers)
# instead of cgnat, to compare the two. Needs root. Usage: linux-nat-e2e.sh WORKDIR
#
#   subscriber ns                   router ns (Linux NAT)                 internet ns
#   vsub 100.64.0.2/10 <veth> ri 100.64.0.1/10   ro 203.0.113.1/24 <veth> vi 203.0.113.254/24
#        100.64.0.3 (servers        snat 100.64.0.0/10 -> 198.51.100.1     lo: 192.0.2.10 (server)
#        behind the NAT)            dnat 198.51.100.1:21 -> 100.64.0.2
#                                   dnat 198.51.100.2:21 -> 100.64.0.3
#
# The router's forward filter is strict, like cgnat's address-and-port-dependent
# filtering: from the internet side only established or related (helper-expected)
# connections and the two port forwards pass. Helpers are assigned explicitly with
# nftables ct helper objects (automatic assignment is off in current kernels).
#
# Prints one line per scenario, "LINUX-RESULT name=NAME ok=0|1 detail=TEXT", and
# exits 0 whatever the scenarios gave (a failure of the bed itself exits 1). ok=1
# means the transfer worked, the data matched by sha256, and no inside address
# (100.64.x.x) appeared in what the internet side received.
#
# Measured on 6.18 (nftables 1.0.6), with captures on both links of the router:
# - Ordinary PORT, EPRT, PASV, EPSV, uploads, lftp both modes, TFTP, and a server
#   behind a port forward (227 rewritten, 229 expected): all work.
# - PORT or EPRT split across two segments, the first starting with the command
#   ("PORT 100,64," / "0,2,p1,p2\r\n"): the helper drops the first segment and every
#   retransmission of it; the second passes untranslated and the server, missing
#   the bytes before it, never answers: the control connection stalls. (Without the
#   ftp helper the same segments pass and the server gets the inside address.)
# - A command not at the start of its segment ("NOOP\r\nPORT ...\r\n", whole or
#   split): the helper does not look at it; the server gets PORT 100,64,0,2,... and
#   refuses it ("501 ... foreign address").
# - A 227 reply split across two segments from a server behind the NAT: the first
#   part is dropped on every retransmission; the client times out.
set -euo pipefail
work=$(realpath -m "$1")
here=$(dirname "$(realpath "$0")")
tricky="$here/ftp-tricky.py"
mkdir -p "$work"
tag=$$
sub=lnsub$tag rt=lnrt$tag inet=lninet$tag
pids=()
PY=/usr/bin/python3 # Debian's python3, which has pyftpdlib

cleanup() {
    set +e
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.3
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
    for n in "$sub" "$rt" "$inet"; do ip netns del "$n" 2>/dev/null; done
}
trap cleanup EXIT
die() {
    echo "LINUX BED FAIL: $*" >&2
    exit 1
}
result() { # name ok detail
    echo "LINUX-RESULT name=$1 ok=$2 detail=$3"
}
# (Background jobs are started with "ip netns exec" itself, never through these
# functions, so that $! is the program's own pid and kill reaches it.)
in_sub() { ip netns exec "$sub" "$@"; }
in_rt() { ip netns exec "$rt" "$@"; }
in_inet() { ip netns exec "$inet" "$@"; }

for n in "$sub" "$rt" "$inet"; do
    ip netns add "$n"
    ip -n "$n" link set lo up
    ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
done
ip -n "$sub" link add vsub type veth peer name ri netns "$rt"
ip -n "$inet" link add vi type veth peer name ro netns "$rt"
for pair in "$sub vsub" "$rt ri" "$rt ro" "$inet vi"; do
    set -- $pair
    ip netns exec "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    ip -n "$1" link set "$2" up
done
ip -n "$sub" addr add 100.64.0.2/10 dev vsub
ip -n "$sub" addr add 100.64.0.3/10 dev vsub
ip -n "$sub" route add default via 100.64.0.1
ip -n "$rt" addr add 100.64.0.1/10 dev ri
ip -n "$rt" addr add 203.0.113.1/24 dev ro
ip -n "$rt" route add default via 203.0.113.254
in_rt sysctl -qw net.ipv4.ip_forward=1
ip -n "$inet" addr add 192.0.2.10/32 dev lo
ip -n "$inet" addr add 203.0.113.254/24 dev vi
ip -n "$inet" route add 198.51.100.0/28 via 203.0.113.1

cat > "$work/linux-nat.nft" <<'NFT'
table ip lnat {
    ct helper ftp-21 {
        type "ftp" protocol tcp
        l3proto ip
    }
    ct helper tftp-69 {
        type "tftp" protocol udp
        l3proto ip
    }
    chain port_forwards {
        type nat hook prerouting priority dstnat; policy accept;
        iifname "ro" ip daddr 198.51.100.1 tcp dport 21 dnat to 100.64.0.2
        iifname "ro" ip daddr 198.51.100.2 tcp dport 21 dnat to 100.64.0.3
    }
    chain helpers {
        type filter hook prerouting priority filter; policy accept;
        ct state new tcp dport 21 ct helper set "ftp-21"
        ct state new udp dport 69 ct helper set "tftp-69"
    }
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related counter accept
        iifname "ri" oifname "ro" ct state new counter accept
        iifname "ro" oifname "ri" ct state new ct status dnat counter accept
        counter comment "dropped: new from the internet side, not expected"
    }
    chain outbound_nat {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "ro" ip saddr 100.64.0.0/10 snat to 198.51.100.1
    }
}
NFT
in_rt nft -f "$work/linux-nat.nft" || die "nft ruleset refused"

in_sub ping -c 1 -W 2 192.0.2.10 > "$work/ping.txt" 2>&1 && result ping 1 "$(grep -o '[0-9]* received' "$work/ping.txt")" \
    || result ping 0 "no answer through the router"

# Data: 5 MB for FTP, 256 KB for TFTP.
mkdir -p "$work/ftp" "$work/tftp"
head -c 5242880 /dev/urandom > "$work/ftp/blob5.bin"
want5=$(sha256sum "$work/ftp/blob5.bin" | cut -d' ' -f1)
head -c 262144 /dev/urandom > "$work/tftp/t.bin"

wait_tcp() { # ns-runner addr port
    local run=$1 addr=$2 port=$3
    for _ in $(seq 1 50); do
        $run $PY -c "import socket; socket.create_connection(('$addr', $port), 0.2)" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
# Captures per scenario of the FTP control traffic: what the internet side receives
# (FILE) and what passes on the subscriber's link (FILE with -sub before .pcap).
cap_start() { # file
    local subf=${1%.pcap}-sub.pcap
    rm -f "$1" "$subf"
    ip netns exec "$inet" tcpdump -i vi -Q in -nn -U --immediate-mode -w "$1" tcp port 21 2>/dev/null &
    cap=$!
    pids+=("$cap")
    ip netns exec "$sub" tcpdump -i vsub -nn -U --immediate-mode -w "$subf" tcp port 21 2>/dev/null &
    capsub=$!
    pids+=("$capsub")
    for _ in $(seq 1 40); do [ -s "$1" ] && [ -s "$subf" ] && break; sleep 0.05; done
    sleep 0.2
}
cap_stop() {
    sleep 0.3
    kill "$cap" "$capsub" 2>/dev/null || true
    wait "$cap" "$capsub" 2>/dev/null || true
}
# The control payloads in a capture, to or from port 21, as "relative-seq:'text'"
# (a retransmission shows as a repeated seq), after the login when it is in sight.
segments() { # pcap to_21|from_21 [prefix: keep only payloads starting with it]
    $PY "$tricky" leaks "$1" 100,64 > "$1.segments.json"
    $PY - "$1.segments.json" "$2" "${3:-}" <<'PY'
import json, sys
segs = json.load(open(sys.argv[1]))[sys.argv[2]]
if segs:
    base = segs[0][0]
    i = next((k for k, s in enumerate(segs) if s[1].startswith("TYPE")), -1) + 1
    print(" ".join("%d:%r" % ((q - base) & 0xffffffff, t) for q, t in segs[i:]
                   if t.startswith(sys.argv[3]) and not t.startswith("RETR")))
PY
}
leak_of() { # pcap -> "leak=0" or "leak=1 (a line with an inside address)"
    $PY "$tricky" leaks "$1" 100,64,0,2 100.64.0.2 100,64,0,3 100.64.0.3 > "$1.leaks.json"
    $PY - "$1.leaks.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
h = r.get("stream_hits", [])
print("leak=%d" % bool(h) + ("" if not h else " (%s sent %r)" % (h[0]["src"], h[0]["line"].strip())))
PY
}

# 1. FTP through the kernel helper: pyftpdlib on the internet side, curl and lftp.
ip netns exec "$inet" $PY -m pyftpdlib -i 192.0.2.10 -p 21 -w -d "$work/ftp" > "$work/ftp.log" 2>&1 &
pids+=($!)
wait_tcp in_inet 192.0.2.10 21 || die "pyftpdlib did not start"

ftp_case() { # name, then the command (run in the subscriber namespace) writing $out
    local name=$1; shift
    local out="$work/got-$name.bin"
    rm -f "$out"
    cap_start "$work/cap-$name.pcap"
    local err=""
    in_sub timeout 60 "$@" > "$work/$name.log" 2>&1 || err="client exit $?: $(tail -1 "$work/$name.log")"
    cap_stop
    local leak; leak=$(leak_of "$work/cap-$name.pcap")
    local sum=""; [ -f "$out" ] && sum=$(sha256sum "$out" | cut -d' ' -f1)
    if [ -z "$err" ] && [ "$sum" = "$want5" ] && [ "$leak" = leak=0 ]; then
        result "$name" 1 "5 MB sha256 ok, $leak"
    else
        result "$name" 0 "${err:-sha256 ${sum:-none}} $leak"
    fi
}
ftp_case ftp-epsv curl -sS --max-time 50 -o "$work/got-ftp-epsv.bin" ftp://192.0.2.10/blob5.bin
ftp_case ftp-pasv curl -sS --max-time 50 --disable-epsv -o "$work/got-ftp-pasv.bin" ftp://192.0.2.10/blob5.bin
ftp_case ftp-eprt curl -sS --max-time 50 --ftp-port - -o "$work/got-ftp-eprt.bin" ftp://192.0.2.10/blob5.bin
ftp_case ftp-port curl -sS --max-time 50 --ftp-port - --disable-eprt -o "$work/got-ftp-port.bin" ftp://192.0.2.10/blob5.bin
for mode in pasv port; do
    opt=(); [ $mode = port ] && opt=(--ftp-port - --disable-eprt)
    name=ftp-upload-$mode
    rm -f "$work/ftp/up-$mode.bin"
    cap_start "$work/cap-$name.pcap"
    err=""
    in_sub timeout 60 curl -sS --max-time 50 "${opt[@]}" -T "$work/ftp/blob5.bin" "ftp://192.0.2.10/up-$mode.bin" \
        > "$work/$name.log" 2>&1 || err="curl exit $?: $(tail -1 "$work/$name.log")"
    cap_stop
    leak=$(leak_of "$work/cap-$name.pcap")
    sum=""; [ -f "$work/ftp/up-$mode.bin" ] && sum=$(sha256sum "$work/ftp/up-$mode.bin" | cut -d' ' -f1)
    if [ -z "$err" ] && [ "$sum" = "$want5" ] && [ "$leak" = leak=0 ]; then
        result "$name" 1 "5 MB sha256 ok, $leak"
    else
        result "$name" 0 "${err:-sha256 ${sum:-none}} $leak"
    fi
done
lftp_get() { # name passive-mode
    ftp_case "$1" lftp -d -c "set net:timeout 10; set net:max-retries 2; set ftp:passive-mode $2;
        set xfer:clobber on; open -u anonymous,x@ ftp://192.0.2.10; get blob5.bin -o $work/got-$1.bin"
}
lftp_get lftp-passive on
lftp_get lftp-active off

# 1b. The FTP command policy of cgnat (alg.ftp.deny = ["SITE"], bounce PORTs refused):
#     the kernel's helper has none. The probes of scripts/netns-e2e.sh record what came
#     back: curl's SITE CHMOD, and a raw client's PORT naming another host, then PWD.
#     ok=1 only for a 504 refusal.
in_sub curl -v -sS --max-time 60 -Q "*SITE CHMOD 644 blob5.bin" -o "$work/got-policy.bin" \
    ftp://192.0.2.10/blob5.bin > "$work/ftp-policy.log" 2>&1
site_reply=$(awk '/^> SITE/{f = 1; next} f && /^< [0-9]/{print; exit}' "$work/ftp-policy.log")
case "$site_reply" in "< 504 "*) ok=1 ;; *) ok=0 ;; esac
result ftp-policy-site "$ok" "site_reply='${site_reply#< }'"
bounce=$(in_sub $PY "$here/ftp-policy-probe.py" 192.0.2.10 2>&1)
case "$bounce" in "port_reply='504 "*) ok=1 ;; *) ok=0 ;; esac
result ftp-policy-bounce "$ok" "$bounce"

# 2. The cases that trip up a per-segment helper (scripts/ftp-tricky.py): a PORT or
#    EPRT split over two TCP segments, or not at the start of its segment.
for case in port split-port split-eprt pipelined-port pipelined-eprt pipelined-split-port; do
    name=ftp-tricky-$case
    cap_start "$work/cap-$name.pcap"
    in_sub timeout 40 $PY "$tricky" client "$case" 192.0.2.10 100.64.0.2 blob5.bin "$work/got-$name.bin" \
        > "$work/$name.json" 2> "$work/$name.err" || true
    cap_stop
    leak=$(leak_of "$work/cap-$name.pcap")
    detail=$($PY - "$work/$name.json" "$want5" <<'PY'
import json, sys
try:
    r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
except Exception as e:
    print("ok=0 no result from the client (%s)" % e); sys.exit()
ok = r["sha256"] == sys.argv[2] and not r["error"]
print("ok=%d reply=%r transfer=%s%s" % (ok, r["command_reply"], "sha256 ok" if ok else "failed",
      "" if not r["error"] else " error=%r" % r["error"]))
PY
)
    okv=${detail%% *}; okv=${okv#ok=}
    [ "$leak" = leak=0 ] || okv=0
    # What the client sent and what reached the server after the login: shows a
    # segment passed untranslated, or dropped by the helper and retransmitted.
    sent=$(segments "${work}/cap-$name-sub.pcap" to_21)
    seen=$(segments "$work/cap-$name.pcap" to_21)
    result "$name" "$okv" "${detail#* } $leak client-sent=[$sent] server-received=[$seen]"
done

# 3. The strict filter really is strict: after the subscriber sends from UDP port 40000
#    to 192.0.2.10:7000, a datagram from 192.0.2.10:7001 to the mapping is dropped and
#    one from :7000 gets through (address-and-port-dependent filtering).
ip netns exec "$inet" $PY - > "$work/filter-inet.log" 2>&1 <<'PY' &
import socket, time
a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("192.0.2.10", 7000)); a.settimeout(5)
b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(("192.0.2.10", 7001))
data, peer = a.recvfrom(100)
print("mapping", peer)
b.sendto(b"other port", peer); time.sleep(0.2)
a.sendto(b"same port", peer)
PY
fpid=$!
pids+=("$fpid")
sleep 0.5
in_sub $PY - > "$work/filter.log" 2>&1 <<'PY' || true
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("100.64.0.2", 40000)); s.settimeout(2)
s.sendto(b"open", ("192.0.2.10", 7000))
got = []
try:
    while True:
        data, peer = s.recvfrom(100)
        got.append("%s:%d" % peer)
except socket.timeout:
    pass
print(" ".join(got) or "nothing")
PY
wait "$fpid" || true
got=$(cat "$work/filter.log")
if [ "$got" = "192.0.2.10:7000" ]; then
    result filter-apdf 1 "only the reply from the contacted port passed ($(cat "$work/filter-inet.log"))"
else
    result filter-apdf 0 "subscriber received from: $got"
fi

# 4. TFTP (tftp-hpa): the server answers from a new port, which the strict filter
#    admits only through the tftp helper's expectation.
ip netns exec "$inet" /usr/sbin/in.tftpd -L -a 192.0.2.10:69 -s "$work/tftp" > "$work/tftpd.log" 2>&1 &
pids+=($!)
sleep 0.5
rm -f "$work/got-tftp.bin"
if (cd "$work" && in_sub timeout 30 tftp 192.0.2.10 -m binary -c get t.bin got-tftp.bin > "$work/tftp.log" 2>&1) \
    && [ "$(sha256sum "$work/got-tftp.bin" | cut -d' ' -f1)" = "$(sha256sum "$work/tftp/t.bin" | cut -d' ' -f1)" ]; then
    result tftp 1 "256 KB sha256 ok"
else
    result tftp 0 "$(tail -1 "$work/tftp.log")"
fi

# 5. Servers behind the NAT (port forwards): the helper rewrites the server's 227 and
#    229 replies and expects the client's data connection. pyftpdlib on 100.64.0.2
#    (forwarded from 198.51.100.1:21), and a minimal server on 100.64.0.3 (from
#    198.51.100.2:21) that sends its 227 reply in one segment, then split in two.
ip netns exec "$sub" $PY -m pyftpdlib -i 100.64.0.2 -p 21 -d "$work/ftp" > "$work/ftp-inside.log" 2>&1 &
pids+=($!)
wait_tcp in_sub 100.64.0.2 21 || die "inside pyftpdlib did not start"
inside_case() { # name, server address, curl options...
    local name=$1 addr=$2; shift 2
    local out="$work/got-$name.bin"
    rm -f "$out"
    cap_start "$work/cap-$name.pcap"
    local err=""
    in_inet timeout 40 curl -sS --max-time 30 "$@" -o "$out" "ftp://$addr/blob5.bin" > "$work/$name.log" 2>&1 \
        || err="curl exit $?: $(tail -1 "$work/$name.log")"
    cap_stop
    local leak; leak=$(leak_of "$work/cap-$name.pcap")
    local sum=""; [ -f "$out" ] && sum=$(sha256sum "$out" | cut -d' ' -f1)
    local seen="server-sent=[$(segments "$work/cap-$name-sub.pcap" from_21 22)]"
    seen+=" client-received=[$(segments "$work/cap-$name.pcap" from_21 22)]"
    if [ -z "$err" ] && [ "$sum" = "$want5" ] && [ "$leak" = leak=0 ]; then
        result "$name" 1 "5 MB sha256 ok, $leak $seen"
    else
        result "$name" 0 "${err:-sha256 ${sum:-none}} $leak $seen"
    fi
}
inside_case server-inside-pasv 198.51.100.1 --disable-epsv
inside_case server-inside-epsv 198.51.100.1
ip netns exec "$sub" $PY "$tricky" server 100.64.0.3 "$work/ftp/blob5.bin" > "$work/tricky-server.log" 2>&1 &
tpid=$!
pids+=("$tpid")
wait_tcp in_sub 100.64.0.3 21 || die "tricky server did not start"
inside_case server-inside-227 198.51.100.2 --disable-epsv
kill "$tpid" 2>/dev/null; wait "$tpid" 2>/dev/null || true
ip netns exec "$sub" $PY "$tricky" server 100.64.0.3 "$work/ftp/blob5.bin" split > "$work/tricky-server-split.log" 2>&1 &
pids+=($!)
wait_tcp in_sub 100.64.0.3 21 || die "tricky server (split) did not start"
inside_case server-inside-split-227 198.51.100.2 --disable-epsv

in_rt nft list ruleset > "$work/ruleset-after.txt"
echo "LINUX BED DONE"
