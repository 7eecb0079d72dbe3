#!/usr/bin/env bash
# Installs the system packages cgnat needs to build and test, when they are missing.
# Debian 12 / Ubuntu 22.04+: DPDK 22.11 (libdpdk-dev, with its PMDs: net_pcap,
# net_null, net_ring, net_af_packet), libpcap, clang for bindgen, and the tools the
# end-to-end tests drive (iproute2, ethtool, tcpdump, curl, python3); dpkg-dev
# (dpkg-shlibdeps) and binutils (strip) for `make deb`.
set -euo pipefail

pkgs=(libdpdk-dev dpdk libpcap-dev clang libclang-dev pkg-config
      iproute2 ethtool tcpdump curl python3 iputils-ping procps dpkg-dev binutils)
if [ "${1:-}" = "--bench" ]; then
    # DPDK's own testpmd, the benchmark's reference.
    pkgs+=(dpdk-dev)
fi
if [ "${1:-}" = "--test" ]; then
    # Real peers for the end-to-end tests; tmux reads `cgnat top`'s screen;
    # systemd-analyze and groff check the package's units and man page.
    pkgs+=(systemd groff-base socat prometheus tshark python3-pyftpdlib tftpd-hpa tftp-hpa nftables lftp baresip-core kamailio ffmpeg vlc-bin vlc-plugin-base tmux)
    # PCP and NAT-PMP clients, and a BitTorrent swarm (seeder, tracker, leecher).
    pkgs+=(natpmpc transmission-daemon transmission-cli opentracker aria2)
    # The HA pair's failover is decided by keepalived (VRRP); BIRD announces the pool
    # from the active to the upstream router.
    pkgs+=(keepalived bird2)
    # The NAT64 bed: unbound's dns64 module is the DNS64, tayga the CLAT of 464XLAT
    # (and, beside cgnat, the Linux PLAT).
    pkgs+=(unbound tayga)
    # The PPTP bed builds and sends enhanced GRE with scapy (Debian's python3).
    pkgs+=(python3-scapy)
    # The IRC bed: an IRC server and the library its DCC clients are written with.
    pkgs+=(ircd-hybrid python3-irc)
fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
    missing+=(cargo rustc)
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    # tshark asks whether non-root users may capture; answer for it.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections 2>/dev/null || true
    $SUDO apt-get update -qq
    # The end-to-end peers (VLC, baresip, ...) are installed as Debian means them to
    # be, with their recommended packages; the build needs none.
    recommends="--no-install-recommends"
    [ "${1:-}" = "--test" ] && recommends=""
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $recommends "${missing[@]}" >/dev/null
fi
# Debian starts tftpd-hpa as a service on install; the tests start their own.
if command -v service >/dev/null 2>&1; then service tftpd-hpa stop >/dev/null 2>&1 || true; fi
# Likewise keepalived and BIRD: the HA test runs its own, in its namespaces; and
# unbound and tayga (whose Debian service would also add a NAT44 rule to the host), and
# ircd-hybrid (the IRC test runs its own in a namespace).
if command -v service >/dev/null 2>&1; then
    service keepalived stop >/dev/null 2>&1 || true
    service bird stop >/dev/null 2>&1 || true
    service unbound stop >/dev/null 2>&1 || true
    service tayga stop >/dev/null 2>&1 || true
    service ircd-hybrid stop >/dev/null 2>&1 || true
fi
pkg-config --atleast-version=22.11 libdpdk || { echo "install-deps: DPDK >= 22.11 is required" >&2; exit 1; }
