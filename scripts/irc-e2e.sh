#!/usr/bin/env bash
# IRC DCC end-to-end test bed with real software: ircd-hybrid in an "internet"
# namespace, two IRC users driven by python3-irc (scripts/irc-dcc-client.py): alice in
# a subscriber namespace behind the NAT, bob on the internet side; they offer and take
# files and chats with DCC over real TCP data connections. Needs root.
#
# Usage: irc-e2e.sh MODE CGNAT_BINARY WORKDIR
#   MODE cgnat   cgnat runs in the root namespace on the veth ends (net_af_packet),
#                [alg.irc] on port 6667, address-and-port-dependent filtering; every
#                check is required; prints IRC-E2E PASS only if all passed.
#   MODE linux   a router namespace does nftables masquerade with the kernel's IRC
#                helper (ct helper "irc": nf_conntrack_irc + nf_nat_irc) on tcp 6667
#                and drops new inbound connections that conntrack does not relate to
#                one from inside; report only (required=0).
#   CGNAT_BINARY is only used in cgnat mode (pass - otherwise).
#   IRC_E2E_ALG=off (cgnat mode) leaves [alg.irc] out: what fails without the ALG.
#
#   subscriber ns                    cgnat (root ns) or router ns               internet ns
#   ircvs 100.64.0.2/10 <veth> ircvsn [inside 100.64.0.1] [outside 203.0.113.1] ircvin <veth> ircvi 203.0.113.254/24
#                                                          lo: 192.0.2.10 ircd-hybrid :6667
#                                                              192.0.2.20 bob
# Scenarios (alice is the subscriber):
#   a dcc-send-out      alice offers 3 MB with DCC SEND; bob connects in to the
#                       announced endpoint (only a pinhole from the offer lets him in)
#   b dcc-send-in       bob offers 3 MB; alice connects out
#   c dcc-reverse       bob offers 3 MB with port 0 and a token (reverse DCC); alice
#                       answers with her address, port and the token; bob connects in
#   g dcc-send-quoted   as a, the file name with a space, quoted as clients send it
#   h dcc-send-after-line  as a, the offer in one TCP segment behind a chat line
#                       (PRIVMSG bob :here it comes), as Nagle joins two messages
#   i dcc-resume        as a, bob holding the first MB: bob's DCC RESUME names the port
#                       he was offered, alice's ACCEPT the one she offered; bob gets
#                       the rest
#   j dcc-resume-shared as i, while carol (100.64.0.3, the same subscriber namespace)
#                       has an offer pending to dave on the same inside port
#   d dcc-chat          alice offers DCC CHAT; bob connects in; a line each way
#   e no-inside-address what reached the internet side names no 100.64/10 address,
#                       dotted or as DCC's decimal, in headers or IRC payloads
#   f (cgnat) alg-irc-metrics, expectations-irc-dcc, pinholes-after: /metrics has
#                       the irc ALG's counters, `cgnat show expectations` lists the
#                       irc_dcc pinhole while bob is about to connect in (scenario a)
#                       and none once every offer was taken
#
# Output: one line per check, "IRC-RESULT name=N ok=0|1 required=0|1 detail=...";
# evidence (clients' logs, captures, pinholes, counters) in WORKDIR.
set -euo pipefail
. "$(dirname "$0")/lib/cgnat-bed.sh"
mode=${1:?usage: irc-e2e.sh cgnat|linux CGNAT_BINARY WORKDIR}
result_label=IRC
bin=${2:?CGNAT_BINARY (or -)}
work=$(realpath -m "${3:?WORKDIR}")
client=$(realpath "$(dirname "$0")/irc-dcc-client.py")
case "$mode" in
cgnat) bin=$(realpath "$bin") ;;
linux) ;;
*) echo "unknown mode $mode" >&2; exit 2 ;;
esac
ircd=/usr/sbin/ircd-hybrid
for tool in "$ircd" tshark tcpdump nft setpriv ethtool curl unshare; do
    command -v "$tool" >/dev/null || { echo "IRC-E2E FAIL: $tool is not installed (scripts/install-deps.sh --test)" >&2; exit 1; }
done
# python3-irc is Debian's, for Debian's python3 (another python3 may come first in PATH)
py=/usr/bin/python3
$py -c 'import irc.client' 2>/dev/null || { echo "IRC-E2E FAIL: python3-irc is not installed (scripts/install-deps.sh --test)" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"
chmod 755 "$work"

bed_init irc
rtr=ircrtr$tag
trap 'bed_teardown "$sub" "$inet" "$rtr" -- "$vsn" "$vin"' EXIT

# ---- topology
bed_up "$sub" "$inet" "$vs" "$vsn" "$vi" "$vin"
ip netns exec "$inet" ip addr add 192.0.2.20/32 dev lo
# a second subscriber's address (carol, scenario j) in the subscriber namespace
ip netns exec "$sub" ip addr add 100.64.0.3/10 dev "$vs"
if [ "$mode" = linux ]; then
    router_up "$rtr" "$vsn" "$vin"
    # Masquerade to the first pool address, the kernel's IRC helper on the
    # subscriber's connections to 6667 (it reads DCC offers the client sends, rewrites
    # them and expects the peer's connection), and the usual home-router firewall:
    # from the internet only what conntrack relates to a connection from inside.
    ip netns exec "$rtr" nft -f - <<NFT || die "nft ruleset refused"
table ip ircbed {
    ct helper irc-6667 {
        type "irc" protocol tcp
        l3proto ip
    }
    chain helpers {
        type filter hook prerouting priority filter; policy accept;
        iifname "$vsn" ct state new tcp dport 6667 ct helper set "irc-6667"
    }
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related counter accept
        iifname "$vsn" oifname "$vin" ct state new counter accept
        counter comment "dropped: new from the internet, not expected"
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "$vin" ip saddr 100.64.0.0/10 snat to 198.51.100.1
    }
}
NFT
fi

# ---- cgnat
if [ "$mode" = cgnat ]; then
    # IRC_E2E_ALG=off leaves [alg.irc] out (the ALG is off by default): the bed then
    # shows what the scenarios need the ALG for.
    alg_section='
[alg.irc]
enabled = true
ports = [6667]'
    [ "${IRC_E2E_ALG:-on}" = off ] && alg_section=''
    write_cgnat_config "$work/cgnat.toml" irc "$vsn" "$vin" "$alg_section"
    "$bin" check -c "$work/cgnat.toml" > "$work/check.txt" 2>&1 || die "config refused: $(cat "$work/check.txt")"
    start_cgnat "$bin" "$work/cgnat.toml"
fi

# ---- captures: what reaches the internet, and what the subscriber sees
capture_both
gateway_up 192.0.2.10

# ---- ircd-hybrid, as nobody (it refuses root), not daemonized, its files in WORKDIR.
# It looks up each client's hostname; a resolver in the internet namespace answers
# NXDOMAIN at once (else each registration waits for the lookup to time out), and a
# private mount namespace gives ircd a resolv.conf naming it, /etc left alone.
mkdir -p "$work/ircd"
cat > "$work/ircd/ircd.conf" <<'CONF'
serverinfo {
    name = "irc.bed.example";
    sid = "0BE";
    description = "cgnat IRC bed";
    network_name = "bed";
    network_description = "bed";
    hub = no;
    default_max_clients = 64;
    max_nick_length = 15;
};
admin { name = "bed"; description = "bed"; email = "<root@localhost>"; };
class {
    name = "users";
    ping_time = 90 seconds;
    number_per_ip_local = 16;
    number_per_ip_global = 16;
    max_number = 64;
    sendq = 4 megabytes;
    recvq = 8000 bytes;
};
listen { host = "192.0.2.10"; port = 6667; };
auth { user = "*@*"; class = "users"; flags = exceed_limit, can_flood, kline_exempt; };
general { disable_auth = yes; ping_cookie = no; throttle_count = 100; throttle_time = 1 second; };
modules {
    path = "/usr/lib/ircd-hybrid/modules";
    path = "/usr/lib/ircd-hybrid/modules/autoload";
};
log { use_logging = no; };
CONF
echo "nameserver 192.0.2.10" > "$work/ircd/resolv.conf"
chown -R nobody:nogroup "$work/ircd"
ip netns exec "$inet" $py - > "$work/ircd/dns.log" 2>&1 <<'PY' &
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.10", 53))
while True:
    q, peer = s.recvfrom(512)
    if len(q) >= 12:
        # the query's id and question, as a response: recursion available, NXDOMAIN
        s.sendto(q[:2] + bytes([0x80 | (q[2] & 0x79), 0x83]) + q[4:6] + bytes(6) + q[12:], peer)
PY
pids+=($!)
# WORKDIR's ircd/ is also mounted on /mnt there: nobody may not be let through the
# directories above WORKDIR (a clone under /root).
d=$work/ircd
ip netns exec "$inet" unshare -m sh -c "mount --bind $d/resolv.conf /etc/resolv.conf && mount --bind $d /mnt && \
    exec setpriv --reuid=nobody --regid=nogroup --clear-groups $ircd -foreground -configfile /mnt/ircd.conf \
    -pidfile /mnt/ircd.pid -logfile /mnt/ircd.log -klinefile /mnt/kline -dlinefile /mnt/dline -xlinefile /mnt/xline \
    -resvfile /mnt/resv" > "$d/ircd.out" 2>&1 &
pids+=($!)
up=0
for _ in $(seq 1 100); do
    ip netns exec "$inet" ss -Hltn 'sport = :6667' | grep -q . && { up=1; break; }
    sleep 0.1
done
[ $up = 1 ] || die "ircd-hybrid did not come up: $(tail -5 "$d/ircd.out")"
echo "irc-e2e: $mode gateway up, ircd-hybrid on 192.0.2.10:6667"

# ---- the scenarios
for f in a b c; do head -c 3145728 /dev/urandom > "$work/$f.bin"; done
sha() { { sha256sum "$1" 2>/dev/null || true; } | cut -d' ' -f1; }

# What the NAT expects while bob is about to connect in: cgnat's pinholes, or the
# Linux helper's expectations.
list_pinholes() { # file
    if [ "$mode" = cgnat ]; then
        "$bin" show expectations --api "127.0.0.1:$api_port" > "$1" 2>&1 || true
    else
        ip netns exec "$rtr" cat /proc/net/nf_conntrack_expect > "$1" 2>&1 || true
    fi
}

# pair NAME ID: alice ("${alice[@]}") in the subscriber namespace and bob ("${bob[@]}")
# on the internet side, at once; the one given --hold DIR waits before connecting in
# until the pinholes are listed (DIR/pinholes). Leaves their exit codes in a_rc, b_rc.
pair() {
    local name=$1 id=$2 dir=$work/$1 apid bpid _
    mkdir -p "$dir"
    ip netns exec "$inet" timeout 40 $py "$client" --server 192.0.2.10:6667 --nick "bob$id" \
        --peer "alice$id" --bind 192.0.2.20 "${bob[@]}" > "$dir/bob.log" 2>&1 &
    bpid=$!
    ip netns exec "$sub" timeout 40 $py "$client" --server 192.0.2.10:6667 --nick "alice$id" \
        --peer "bob$id" "${alice[@]}" > "$dir/alice.log" 2>&1 &
    apid=$!
    pids+=("$apid" "$bpid")
    for _ in $(seq 1 300); do
        if [ -e "$dir/offered" ]; then
            list_pinholes "$dir/pinholes"
            touch "$dir/go"
            break
        fi
        kill -0 "$apid" 2>/dev/null || kill -0 "$bpid" 2>/dev/null || break
        sleep 0.1
    done
    a_rc=0 b_rc=0
    wait "$apid" || a_rc=$?
    wait "$bpid" || b_rc=$?
}
# The first error either client printed, and the DCC messages bob received.
why() {
    local who e
    for who in alice bob; do
        e=$(grep -m1 -o 'error=.*' "$work/$1/$who.log" 2>/dev/null | cut -c7-140 || true)
        [ -n "$e" ] && printf '%s: %s; ' "$who" "$e"
    done
    return 0
}
bob_got() { grep -o 'received=DCC .*' "$work/$1/bob.log" 2>/dev/null | sed 's/^received=//' | paste -sd'|' || true; }
secs() { grep -h -o 'done role=[a-z-]* .*secs=[0-9.]*' "$work/$1/alice.log" "$work/$1/bob.log" 2>/dev/null | grep -o 'secs=[0-9.]*' | sort -t= -k2 -n | tail -1; }

# leak=1 when a DCC message bob received names a 100.64/10 address (as DCC's number).
leak() {
    local n
    for n in $(bob_got "$1" | grep -o -E '\b[0-9]{9,10}\b' || true); do
        [ "$n" -ge 1681915904 ] && [ "$n" -lt 1686110208 ] && { echo 1; return; }
    done
    echo 0
}

transfer_result() { # name source received [more detail]
    local got want more=${4:+ $4}
    want=$(sha "$2")
    got=$(sha "$3")
    if [ "$a_rc" = 0 ] && [ "$b_rc" = 0 ] && [ -n "$got" ] && [ "$got" = "$want" ]; then
        result "$1" 1 "$(req)" "3 MB sha256 equal $(secs "$1") leak=$(leak "$1")$more bob_received=[$(bob_got "$1")]"
    else
        result "$1" 0 "$(req)" "alice_rc=$a_rc bob_rc=$b_rc sha256=$([ -n "$got" ] && [ "$got" = "$want" ] && echo equal || echo differs) leak=$(leak "$1")$more bob_received=[$(bob_got "$1")] ($(why "$1"))"
    fi
}

# a) alice offers; bob connects in to what the NAT made of her endpoint
alice=(send --file "$work/a.bin" --listen 100.64.0.2:41001)
bob=(receive --file "$work/dcc-send-out/received.bin" --hold "$work/dcc-send-out")
pair dcc-send-out a
transfer_result dcc-send-out "$work/a.bin" "$work/dcc-send-out/received.bin"

# b) bob offers; alice connects out (no help needed from the NAT)
bob=(send --file "$work/b.bin" --listen 192.0.2.20:42002)
alice=(receive --file "$work/dcc-send-in/received.bin")
pair dcc-send-in b
transfer_result dcc-send-in "$work/b.bin" "$work/dcc-send-in/received.bin"

# c) reverse DCC: bob offers with port 0 and a token, alice answers with her endpoint
bob=(send-passive --file "$work/c.bin" --hold "$work/dcc-reverse")
alice=(receive --file "$work/dcc-reverse/received.bin" --listen 100.64.0.2:41003)
pair dcc-reverse c
transfer_result dcc-reverse "$work/c.bin" "$work/dcc-reverse/received.bin"

# g) as a, the file name with a space: clients quote it (DCC SEND "two words.bin" ...)
alice=(send --file "$work/a.bin" --name "two words.bin" --listen 100.64.0.2:41005)
bob=(receive --file "$work/dcc-send-quoted/received.bin" --hold "$work/dcc-send-quoted")
pair dcc-send-quoted g
transfer_result dcc-send-quoted "$work/a.bin" "$work/dcc-send-quoted/received.bin"

# h) as a, the offer in the same segment as a chat line before it
alice=(send --file "$work/a.bin" --line-first "here it comes" --listen 100.64.0.2:41006)
bob=(receive --file "$work/dcc-send-after-line/received.bin" --hold "$work/dcc-send-after-line")
pair dcc-send-after-line h
# the case happened only if one segment from alice carried both
both=$(tshark -r "$work/subscriber.pcap" -Y 'tcp.dstport == 6667 && tcp.payload contains "here it comes" && tcp.payload contains "DCC SEND"' 2>/dev/null | wc -l)
transfer_result dcc-send-after-line "$work/a.bin" "$work/dcc-send-after-line/received.bin" "one_segment=$both"

# i) as a, bob holding the first MB already: DCC RESUME naming the offered port (as
#    bob sees it), alice's ACCEPT naming it (as she sees it), the rest sent from there
mkdir -p "$work/dcc-resume"
head -c 1048576 "$work/a.bin" > "$work/dcc-resume/received.bin"
alice=(send --file "$work/a.bin" --listen 100.64.0.2:41007)
bob=(receive --resume --file "$work/dcc-resume/received.bin" --hold "$work/dcc-resume")
pair dcc-resume i
alice_got=$(grep -o 'received=DCC .*' "$work/dcc-resume/alice.log" 2>/dev/null | sed 's/^received=//' | paste -sd'|' || true)
transfer_result dcc-resume "$work/a.bin" "$work/dcc-resume/received.bin" "from=$(grep -o 'from=[0-9]*' "$work/dcc-resume/alice.log" | cut -d= -f2 || true) alice_received=[$alice_got]"

# j) as i, while carol (another subscriber, 100.64.0.3) has an offer pending on the
#    same inside port (clients draw DCC ports from the same default ranges): carol
#    offers to dave, who waits; then alice offers on that port, bob resumes; then dave
#    takes carol's file.
d=$work/dcc-resume-shared
mkdir -p "$d/carol"
ip netns exec "$inet" timeout 40 $py "$client" --server 192.0.2.10:6667 --nick davej --peer carolj \
    --bind 192.0.2.20 receive --file "$d/carol/received.bin" --hold "$d/carol" > "$d/carol/dave.log" 2>&1 &
dave=$!
ip netns exec "$sub" timeout 40 $py "$client" --server 192.0.2.10:6667 --nick carolj --peer davej \
    --bind 100.64.0.3 send --file "$work/b.bin" --listen 100.64.0.3:41008 > "$d/carol/carol.log" 2>&1 &
carol=$!
pids+=("$dave" "$carol")
for _ in $(seq 1 100); do [ -e "$d/carol/offered" ] && break; sleep 0.1; done
list_pinholes "$d/carol/pinholes"
head -c 1048576 "$work/a.bin" > "$d/received.bin"
alice=(send --file "$work/a.bin" --listen 100.64.0.2:41008)
bob=(receive --resume --file "$d/received.bin" --hold "$d")
pair dcc-resume-shared j
touch "$d/carol/go"
c_rc=0
wait "$carol" || c_rc=$?
wait "$dave" || c_rc=$?
alice_got=$(grep -o 'received=DCC .*' "$d/alice.log" 2>/dev/null | sed 's/^received=//' | paste -sd'|' || true)
dave_got=$(grep -o 'received=DCC .*' "$d/carol/dave.log" 2>/dev/null | sed 's/^received=//' | paste -sd'|' || true)
transfer_result dcc-resume-shared "$work/a.bin" "$d/received.bin" "carol_rc=$c_rc carol_sha256=$([ "$(sha "$work/b.bin")" = "$(sha "$d/carol/received.bin")" ] && echo equal || echo differs) dave_received=[$dave_got] alice_received=[$alice_got]"

# d) DCC CHAT offered by alice, a line each way
alice=(chat --listen 100.64.0.2:41004 --say "hello from inside" --expect "hello from outside")
bob=(chat-accept --say "hello from outside" --expect "hello from inside" --hold "$work/dcc-chat")
pair dcc-chat d
if [ "$a_rc" = 0 ] && [ "$b_rc" = 0 ]; then
    result dcc-chat 1 "$(req)" "a line each way leak=$(leak dcc-chat) bob_received=[$(bob_got dcc-chat)]"
else
    result dcc-chat 0 "$(req)" "alice_rc=$a_rc bob_rc=$b_rc leak=$(leak dcc-chat) bob_received=[$(bob_got dcc-chat)] ($(why dcc-chat))"
fi

# The pinholes listed while bob was about to connect in, for the record.
for s in dcc-send-out dcc-reverse dcc-send-quoted dcc-send-after-line dcc-resume dcc-resume-shared dcc-chat; do
    if [ "$mode" = cgnat ]; then
        listed=$($py -c "
import json, sys
try:
    e = json.load(open(sys.argv[1]))['expectations']
    print(len(e), ';'.join('%s %s %s->%s<-%s' % (x.get('class'), x['protocol'], x['outside'], x['inside'], x['remote']) for x in e))
except Exception as x:
    print('unreadable', x)
" "$work/$s/pinholes")
    else
        listed="none listed"
        [ -f "$work/$s/pinholes" ] && listed="$(grep -c . "$work/$s/pinholes" || true) $(tr -s ' \n' ' ;' < "$work/$s/pinholes")"
    fi
    echo "irc-e2e: pinholes before bob connected in ($s): $listed"
done

# ---- f) cgnat's own view: the irc_dcc pinhole of scenario a, and the irc counters
if [ "$mode" = cgnat ]; then
    pin=$($py -c "
import json, sys
e = json.load(open(sys.argv[1]))['expectations']
m = [x for x in e if x.get('class') == 'irc_dcc' and x['inside'] == '100.64.0.2:41001']
print('%d %s' % (len(m), ';'.join('%s->%s<-%s expires_in=%ss' % (x['outside'], x['inside'], x['remote'], x['expires_in_secs']) for x in m)))
" "$work/dcc-send-out/pinholes" 2>/dev/null || echo "0 unreadable: $(head -c 200 "$work/dcc-send-out/pinholes" 2>/dev/null)")
    [ "${pin%% *}" -ge 1 ] 2>/dev/null && result expectations-irc-dcc 1 1 "cgnat show expectations during dcc-send-out: ${pin#* }" \
        || result expectations-irc-dcc 0 1 "no irc_dcc pinhole for 100.64.0.2:41001 listed during dcc-send-out: ${pin#* }"
    # every offer's pinhole was taken by the peer's connection: none is left
    list_pinholes "$work/pinholes-after"
    left=$($py -c "
import json, sys
e = [x for x in json.load(open(sys.argv[1]))['expectations'] if x.get('class') == 'irc_dcc']
print(len(e), ';'.join('%s->%s' % (x['outside'], x['inside']) for x in e))
" "$work/pinholes-after" 2>/dev/null || echo "unreadable")
    [ "${left%% *}" = 0 ] && result pinholes-after 1 1 "no irc_dcc pinhole left once every offer was taken" \
        || result pinholes-after 0 1 "irc_dcc pinholes left: $left"
    curl -s --max-time 3 "http://127.0.0.1:$metrics_port/metrics" > "$work/metrics.txt" || true
    irc_lines=$(grep -E '^cgnat_[a-z_]+\{[^}]*alg="irc"' "$work/metrics.txt" || true)
    nonzero=$(echo "$irc_lines" | awk 'NF == 2 && $2 > 0' | sed 's/^cgnat_//' | paste -sd' ' || true)
    created=$(grep -E '^cgnat_alg_expectations_total\{event="(created|matched)"\}' "$work/metrics.txt" | sed 's/^cgnat_alg_expectations_total//' | paste -sd' ' || true)
    if [ -n "$nonzero" ]; then
        result alg-irc-metrics 1 1 "$nonzero; expectations $created"
    else
        result alg-irc-metrics 0 1 "no non-zero irc counter in /metrics ($(echo "$irc_lines" | grep -c . || true) irc lines); expectations $created"
    fi
fi

# ---- e) what reached the internet side: no 100.64/10 address, in IP headers, dotted
#         anywhere in the IRC stream, or as DCC's decimal number
sleep 0.5
kill "$cap_inet" "$cap_sub" 2>/dev/null || true
sleep 0.5
hdr=$(tshark -r "$work/internet.pcap" -Y 'ip.src == 100.64.0.0/10 || ip.dst == 100.64.0.0/10' 2>/dev/null | wc -l)
tshark -r "$work/internet.pcap" -Y 'tcp.port == 6667 && tcp.len > 0' -T fields -e tcp.payload 2>/dev/null > "$work/irc-payloads.hex" || true
leaks=$($py - "$work/irc-payloads.hex" > "$work/irc-leaks.txt" <<'PY'; head -1 "$work/irc-leaks.txt"
import re, sys
lo, hi = 0x64400000, 0x64800000  # 100.64.0.0/10
dotted = re.compile(rb"\b100\.(6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\.[0-9]{1,3}\.[0-9]{1,3}\b")
found, dcc = [], []
for line in open(sys.argv[1]):
    h = line.strip().replace(":", "")
    if not h:
        continue
    data = bytes.fromhex(h)
    for m in dotted.finditer(data):
        found.append(m.group(0).decode())
    for n in re.findall(rb"\b[0-9]{9,10}\b", data):
        if lo <= int(n) < hi:
            found.append(n.decode())
    dcc += [m.decode(errors="replace") for m in re.findall(rb"\x01DCC [^\x01\r\n]*", data)]
print(len(found), " ".join(found[:6]))
print("dcc messages on the internet side: " + " | ".join(d.strip("\x01") for d in dcc))
PY
)
dccs=$(sed -n 2p "$work/irc-leaks.txt")
if [ "$hdr" = 0 ] && [ "${leaks%% *}" = 0 ]; then
    result no-inside-address 1 "$(req)" "no 100.64/10 in IP headers or IRC payloads; $dccs"
else
    result no-inside-address 0 "$(req)" "ip_headers=$hdr irc_payload=${leaks:-unreadable}; $dccs"
fi
# The inside listening ports (41001, 41003 to 41008) in a DCC message on the internet
# side: Linux's helper keeps the port when it can (reported); cgnat translates to a
# port of the subscriber's block, and a fresh cgnat hands out the lowest blocks first
# (1024 up), so that no translated port can be an inside one here (required).
kept=$(echo "$dccs" | grep -o -E ' (4100[1-8])( |$)' | tr -d ' ' | paste -sd, || true)
result inside-port-in-dcc "$([ -z "$kept" ] && echo 1 || echo 0)" "$(req)" "inside ports named on the internet side: ${kept:-none}"

# ---- cgnat stops cleanly
if [ "$mode" = cgnat ]; then
    kill -TERM "$cg"
    for _ in $(seq 1 50); do kill -0 "$cg" 2>/dev/null || break; sleep 0.1; done
    rc=0
    if kill -0 "$cg" 2>/dev/null; then rc=stuck; else wait "$cg" || rc=$?; fi
    [ "$rc" = 0 ] && result cgnat-clean-exit 1 1 "" || result cgnat-clean-exit 0 1 "rc=$rc"
else
    ip netns exec "$rtr" nft list chain ip ircbed forward > "$work/linux-forward.txt" 2>&1 || true
    echo "irc-e2e: dropped from the internet: $(grep -o 'counter packets [0-9]*' "$work/linux-forward.txt" | tail -1)"
fi

printf '%s\n' "${results[@]}" > "$work/results.txt"
if [ "$mode" = cgnat ]; then
    if [ "$failed_required" = 0 ]; then echo "IRC-E2E PASS"; else echo "IRC-E2E FAIL"; exit 1; fi
else
    echo "IRC-E2E REPORT mode=$mode (nothing required)"
fi
