#!/usr/bin/env bash
# The real iptux (Debian's package, a GTK program) headless under Xvfb, inside a private network
# namespace that has only "lo", bound to 127.0.0.2:2425. tests/msg/iptux.rs drives it; by hand it
# is the quickest way to see what iptux does with a datagram. Needs root, and the packages
# .ci/run installs (iptux xvfb xauth dbus xdotool x11-apps netpbm fonts-wqy-microhei).
#
#   ipmsg_lab.sh up              namespace, Xvfb on a free display, iptux; returns once iptux is bound
#   ipmsg_lab.sh run CMD...      CMD inside the namespace (taojie, a probe, ...)
#   ipmsg_lab.sh say TEXT        make iptux send TEXT to the top pal of its list (xdotool)
#   ipmsg_lab.sh shot [FILE]     screenshot of the virtual display (PNG)
#   ipmsg_lab.sh down            end what "up" started (by its PIDs) and delete the namespace
#
# Nothing leaves the namespace: it has no interface but "lo" (iptux's start-up broadcast to
# 255.255.255.255 has no route there). iptux answers to sender_ip:2425 whatever port a datagram
# came from, so a peer binds another 127.x address on port 2425, e.g.
#   ipmsg_lab.sh run taojie msg listen --bind 127.0.0.1 --broadcast 127.0.0.2
#
# In LAB: iptux.log (-l DEBUG: every datagram, sent ones hex-dumped), home/ (iptux's HOME), and
# home/.config/iptux/log/communicate.log: each text iptux received or sent, as iptux decoded it.
#
# Env: NS (ipmsg-lab)  LAB (${TMPDIR:-/tmp}/ipmsg-lab)  IPTUX_IP (127.0.0.2)
set -euo pipefail
NS=${NS:-ipmsg-lab}
LAB=${LAB:-${TMPDIR:-/tmp}/ipmsg-lab}
IPTUX_IP=${IPTUX_IP:-127.0.0.2}
case "$IPTUX_IP" in 127.*) ;; *) echo "IPTUX_IP must be a loopback address" >&2; exit 2;; esac

die() { echo "ipmsg_lab: $*" >&2; exit 1; }
inns() { ip netns exec "$NS" "$@"; }

# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || return 1
    sleep 0.05
  done
}

# The PID in $LAB/$1 if that process is still the $2 we started (a PID can be reused).
ours() {
  local pid
  pid=$(cat "$LAB/$1" 2>/dev/null) || return 1
  [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = "$2" ] || return 1
  echo "$pid"
}

# Whether process $1 has ended (a zombie has: whoever adopted it reaps it in its own time).
gone() {
  local st
  st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
  case "$st" in Z*|"") return 0;; *) return 1;; esac
}

# Ends process $1: signal $2, then SIGKILL if it is still there after $3 seconds.
end() {
  kill -"$2" "$1" 2>/dev/null || true
  wait_for "$3" gone "$1" || { kill -KILL "$1" 2>/dev/null || true; wait_for 2 gone "$1" || true; }
}

display() { cat "$LAB/display" 2>/dev/null || die "no display in $LAB (is the lab up?)"; }
bound() { grep -q "bind UDP port" "$LAB/iptux.log" 2>/dev/null; }
sent_count() {
  local n
  n=$(grep -c "Send-To:" "$LAB/home/.config/iptux/log/communicate.log" 2>/dev/null) || true
  echo "${n:-0}"
}
more_sent() { [ "$(sent_count)" -gt "$1" ]; }

case "${1:-}" in
up)
  [ ! -e "$LAB/xvfb.pid" ] || die "$LAB holds a lab already (ipmsg_lab.sh down first)"
  # iptux opens its chat log before it creates this directory: without it, nothing is logged.
  mkdir -p "$LAB/home/.config/iptux/log"
  ip netns add "$NS"
  inns ip link set lo up
  # -displayfd: Xvfb takes the first free display and writes its number once clients can
  # connect. No shell function around these two: $! must be the PID that execs into the program.
  rm -f "$LAB/display.fd"
  ip netns exec "$NS" Xvfb -displayfd 3 -nolisten tcp -screen 0 1280x800x24 \
    3>"$LAB/display.fd" >"$LAB/xvfb.log" 2>&1 &
  echo $! >"$LAB/xvfb.pid"
  wait_for 10 grep -q '^[0-9]' "$LAB/display.fd" || die "Xvfb did not start, see $LAB/xvfb.log"
  echo ":$(head -1 "$LAB/display.fd")" >"$LAB/display"
  # Its own session bus (a second iptux on a shared bus would only raise the first one's
  # window); English messages and window titles, whatever the caller's locale.
  ip netns exec "$NS" env HOME="$LAB/home" XDG_CONFIG_HOME="$LAB/home/.config" \
    XDG_CACHE_HOME="$LAB/home/.cache" XDG_DATA_HOME="$LAB/home/.local/share" \
    LC_ALL=C.UTF-8 LANGUAGE= DISPLAY="$(display)" NO_AT_BRIDGE=1 \
    dbus-run-session -- iptux -b "$IPTUX_IP" -l DEBUG >"$LAB/iptux.log" 2>&1 &
  echo $! >"$LAB/dbus-run-session.pid"
  wait_for 10 bound || die "iptux did not start, see $LAB/iptux.log"
  echo "iptux on $IPTUX_IP:2425 in namespace $NS, display $(display), files in $LAB"
  ;;
run)
  shift
  inns "$@"
  ;;
say)
  shift
  disp=$(display)
  xdo() { ip netns exec "$NS" env DISPLAY="$disp" xdotool "$@"; }
  before=$(sent_count)
  # A double-click on the top row of iptux's pal list opens a chat window titled
  # "Talk with NAME(HOST) IP:ADDR". The row may not be drawn yet when the pal has just come:
  # try again, each try bounded.
  win=""
  for _ in 1 2 3; do
    xdo mousemove 75 115 click --repeat 2 1
    win=$(timeout 3 ip netns exec "$NS" env DISPLAY="$disp" \
      xdotool search --sync --onlyvisible --name ' IP:[0-9.]+$' 2>/dev/null | head -1) && [ -n "$win" ] && break
  done
  [ -n "$win" ] || die "no chat window opened (is a pal listed? ipmsg_lab.sh shot)"
  eval "$(xdo getwindowgeometry --shell "$win")"  # X, Y: where the window is
  # Without a window manager nothing signals that a click has been handled: short pauses let
  # GTK give the input box the focus and take the typed text before Send is clicked.
  xdo mousemove $((X + 185)) $((Y + 320)) click 1; sleep 0.3  # the input box
  xdo type --delay 20 "$*"; sleep 0.3
  xdo mousemove $((X + 331)) $((Y + 401)) click 1              # Send
  # iptux logs what it sends the moment it sends it.
  wait_for 5 more_sent "$before" || die "iptux did not send the text (ipmsg_lab.sh shot)"
  ;;
shot)
  out=${2:-$LAB/shot.png}
  inns env DISPLAY="$(display)" xwd -root -silent | xwdtopnm 2>/dev/null | pnmtopng >"$out"
  echo "$out"
  ;;
down)
  # SIGHUP ends iptux at once (on SIGTERM it prints a crash report for seconds; SIGINT is
  # ignored by programs a script started in the background); dbus-run-session then ends its
  # bus and itself.
  if drs=$(ours dbus-run-session.pid dbus-run-sessio); then
    for p in $(pgrep -P "$drs" -x iptux || true); do end "$p" HUP 3; done
    if ! wait_for 5 gone "$drs"; then
      for p in $(pgrep -P "$drs" || true); do end "$p" KILL 2; done
      end "$drs" TERM 3
    fi
  fi
  if x=$(ours xvfb.pid Xvfb); then end "$x" TERM 3; fi
  rm -f "$LAB/dbus-run-session.pid" "$LAB/xvfb.pid"
  left=$(ip netns pids "$NS" 2>/dev/null || true)
  [ -z "$left" ] || echo "still running in $NS: $left (started by someone else? not ended)" >&2
  ip netns del "$NS" 2>/dev/null || true
  ;;
*)
  sed -n '2,23p' "$0"; exit 2
  ;;
esac
