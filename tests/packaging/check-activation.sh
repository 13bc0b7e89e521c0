#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# D-Bus activation of installed programs that live under ROOT (a DESTDIR, or unpacked .deb files):
# a private session bus whose only service folder holds ROOT's .service files (Exec= pointed into
# ROOT), a temporary home and ROOT's GSettings schema; a Ping to each NAME must start the program
# from ROOT, which is then stopped. The systemd unit is not involved: this bus has no systemd
# behind it, so dbus-daemon uses Exec=. Used by the install test and by `./dev package`.
#
# usage: check-activation.sh ROOT BINDIR DATADIR NAME:OBJECT_PATH...   (BINDIR, DATADIR as installed, e.g. /usr/bin)
set -euo pipefail
root=$1 bindir=$2 datadir=$3
shift 3
fail() { echo "FAIL: $*" >&2; exit 1; }
[[ $# -gt 0 ]] || exit 0

bus=$(mktemp -d "${TMPDIR:-/tmp}/m3-activation-XXXXXX")
trap 'rm -rf "$bus"' EXIT
mkdir -p "$bus/services" "$bus/home" "$bus/schemas" "$bus/runtime"
chmod 700 "$bus/runtime"
for f in "$root$datadir"/dbus-1/services/*.service; do
    sed "s|^Exec=$bindir/|Exec=$root$bindir/|" "$f" >"$bus/services/$(basename "$f")"
done
cat >"$bus/session.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=$bus</listen>
  <auth>EXTERNAL</auth>
  <servicedir>$bus/services</servicedir>
  <policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>
CONF
glib-compile-schemas --targetdir "$bus/schemas" "$root$datadir/glib-2.0/schemas"
export HOME=$bus/home XDG_DATA_HOME=$bus/home/data XDG_CONFIG_HOME=$bus/home/config \
    XDG_CACHE_HOME=$bus/home/cache XDG_RUNTIME_DIR=$bus/runtime GSETTINGS_SCHEMA_DIR=$bus/schemas \
    GSETTINGS_BACKEND=memory
# The window is a GTK application: even as a D-Bus service it opens the display at start-up.
display=()
if [[ -z ${DISPLAY:-} && -z ${WAYLAND_DISPLAY:-} ]]; then
    command -v xvfb-run >/dev/null || fail "no display for D-Bus activation of the window (install xvfb)"
    display=(xvfb-run -a)
fi
ROOT=$root "${display[@]}" dbus-run-session --config-file="$bus/session.conf" -- bash -euo pipefail -c '
    for entry in "$@"; do
        name=${entry%%:*} path=${entry#*:}
        timeout 30 gdbus call --session --dest "$name" --object-path "$path" \
            --method org.freedesktop.DBus.Peer.Ping >/dev/null || { echo "FAIL: $name was not started by D-Bus activation" >&2; exit 1; }
        pid=$(gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
            --method org.freedesktop.DBus.GetConnectionUnixProcessID "$name" | sed "s/^(uint32 \\([0-9]*\\),)$/\\1/")
        cmd=$(tr "\\0" " " <"/proc/$pid/cmdline")
        kill "$pid"
        [[ $cmd == *"$ROOT/"* ]] || { echo "FAIL: $name is served by \"$cmd\", not by the installed program" >&2; exit 1; }
        echo "ok: D-Bus activation of $name started $cmd"
    done' activation "$@"
