#!/usr/bin/env bash
# Shows what the demo did: the summary, and the same flows before and after cgnat.
set -euo pipefail
in=$1 out=$2
echo
echo "== summary ($out/summary.json)"
cat "$out/summary.json"
echo
echo "== first packets the subscribers sent (inside port input)"
tcpdump -nn -r "$in" -c 8 2>/dev/null | cut -c1-110
echo
echo "== the same packets as they left the outside port ($out/outside.pcap)"
tcpdump -nn -r "$out/outside.pcap" -c 8 2>/dev/null | cut -c1-110
echo
srcs=$(tcpdump -nn -r "$out/outside.pcap" ip 2>/dev/null | awk '{print $3}' | cut -d. -f1-4 | grep -E '^[0-9]+(\.[0-9]+){3}$' | sort -u)
echo "== distinct source addresses on the outside: $(echo "$srcs" | wc -l)"
echo "$srcs" | head -20
