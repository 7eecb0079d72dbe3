# SIP peers for the beds (sip-e2e.sh, ha-e2e.sh): kamailio as registrar and proxy,
# and baresip user agents (ausine's 440 Hz tone as source, aubridge and sndfile to
# keep what they decoded, ctrl_tcp on 127.0.0.1:4444 in their namespace for
# sip-e2e-ctl.py, RTP stats).

# kamailio_config DIR ADDR: DIR/kamailio.cfg, a registrar and stateful proxy on
# ADDR:5060 (UDP and TCP) that record-routes INVITEs.
kamailio_config() {
    local kam=$2
    mkdir -p "$1"
    cat > "$1/kamailio.cfg" <<KAM
#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=1
auto_aliases=no
alias="$kam"
listen=udp:$kam:5060
listen=tcp:$kam:5060

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"

modparam("usrloc", "db_mode", 0)
modparam("rr", "enable_full_lr", 1)

request_route {
    xlog("L_INFO", "req \$rm \$ru from \$si:\$sp ct=\$ct\n");
    if (!mf_process_maxfwd_header("10")) {
        sl_send_reply("483", "Too Many Hops");
        exit;
    }
    if (has_totag()) {
        if (loose_route()) {
            t_relay();
            exit;
        }
        if (is_method("ACK")) {
            if (t_check_trans()) t_relay();
            exit;
        }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (is_method("CANCEL")) {
        if (t_check_trans()) t_relay();
        exit;
    }
    t_check_trans();
    if (is_method("REGISTER")) {
        if (!save("location")) sl_reply_error();
        exit;
    }
    if (is_method("INVITE|SUBSCRIBE")) record_route();
    if (!uri==myself) {
        t_relay();
        exit;
    }
    if (\$rU == \$null) {
        sl_send_reply("484", "Address Incomplete");
        exit;
    }
    if (!lookup("location")) {
        sl_send_reply("404", "Not Found");
        exit;
    }
    xlog("L_INFO", "relay \$rm to \$ru\n");
    t_relay();
}

onreply_route {
    xlog("L_INFO", "reply \$rs \$rr from \$si:\$sp ct=\$ct\n");
}
KAM
}

# baresip_config DIR NAME ADDR INTERFACE REGISTRAR RTP_LO RTP_HI: DIR/config and
# DIR/accounts for NAME (sip:NAME@REGISTRAR, auto-answer, PCMU), listening on
# ADDR:5060, media from INTERFACE's address on RTP ports RTP_LO-RTP_HI.
baresip_config() {
    local dir=$1 kam=$5 rtp_lo=$6 rtp_hi=$7
    mkdir -p "$dir/audio"
    cat > "$dir/config" <<CONF
poll_method		epoll
sip_listen		$3:5060
net_interface		$4
call_local_timeout	30
call_max_calls		4
audio_player		aubridge,$2
audio_source		ausine,440
audio_alert		aubridge,$2-alert
ausrc_srate		48000
ausrc_channels		2
audio_level		no
audio_buffer		20-160
rtp_tos			0
rtp_ports		$rtp_lo-$rtp_hi
rtcp_mux		no
jitter_buffer_delay	5-10
rtp_stats		yes
module_path		/usr/lib/baresip/modules
module			g711.so
module			ausine.so
module			aubridge.so
module			sndfile.so
module_tmp		account.so
module_app		ctrl_tcp.so
module_app		menu.so
ctrl_tcp_listen		127.0.0.1:4444
snd_path		$dir/audio
CONF
    echo "<sip:$2@$kam;transport=udp>;regint=120;answermode=auto;audio_codecs=PCMU;medianat=" > "$dir/accounts"
    : > "$dir/contacts"
}
