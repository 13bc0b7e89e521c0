#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Runs one GUI test (a Python script driving the real window) on a private desktop: Xvfb, a private
# D-Bus session bus (dbus-run-session, with the accessibility bus GTK registers on), a temporary
# HOME with its own XDG folders, the settings in a key file there (shared by every process of the
# test, as dconf would be), the build tree's settings schema.
#
# Usage: run-gui.sh BUILD_DIR TEST.py [ARGS...]
set -euo pipefail
build=$(cd "$1" && pwd)
test=$2
shift 2
for p in Xvfb dbus-run-session xdotool import; do
    command -v "$p" >/dev/null || { echo "SKIP: $p is not installed (Debian: xvfb dbus xdotool imagemagick)"; exit 77; }
done
/usr/bin/python3 -c 'import gi; gi.require_version("Atspi", "2.0")' 2>/dev/null ||
    { echo "SKIP: python3-gi and gir1.2-atspi-2.0 are not installed"; exit 77; }
[[ -x $build/ui/m3search ]] || { echo "SKIP: the window was not built (GTK 4 / libadwaita missing)"; exit 77; }

tmp=$(mktemp -d)
xvfb=
trap '[[ -n $xvfb ]] && kill "$xvfb" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home/.config XDG_DATA_HOME=$tmp/home/.local/share
export XDG_CACHE_HOME=$tmp/home/.cache XDG_RUNTIME_DIR=$tmp/run
mkdir -p "$HOME/Documents" "$HOME/Desktop" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
printf 'XDG_DOCUMENTS_DIR="$HOME/Documents"\nXDG_DESKTOP_DIR="$HOME/Desktop"\n' >"$XDG_CONFIG_HOME/user-dirs.dirs"
export GSETTINGS_BACKEND=keyfile
export GSETTINGS_SCHEMA_DIR=$build/packaging${GSETTINGS_SCHEMA_DIR:+:$GSETTINGS_SCHEMA_DIR}
# GTK's cairo renderer: Xvfb has no GPU, and GL through Mesa's llvmpipe draws the whole window every
# frame (slower, see docs/performance.md, "The window"); M3_GSK_RENDERER picks another to compare.
export GTK_A11Y=atspi NO_AT_BRIDGE=0 GDK_BACKEND=x11 GSK_RENDERER=${M3_GSK_RENDERER:-cairo} LC_ALL=${LC_ALL:-C.UTF-8}
export M3_BUILD=$build M3_TEST_TMP=$tmp M3SEARCH_LOCALEDIR=$build/po
unset DBUS_SESSION_BUS_ADDRESS DISPLAY WAYLAND_DISPLAY
cd "$(dirname "$0")"
# A display of our own: a random number well above the ones people and other test runners use, Xvfb
# told to say when it accepts connections (-displayfd; xvfb-run's signal handshake fails when the
# test runner ignores SIGUSR1); another number when that one is taken. -noreset: by default the
# server resets when its last client leaves, and a client connecting during the reset is turned away
# ("cannot open display"): the check below leaves as the window starts, and on a busy machine the
# reset took long enough that the window failed to start in about one run in four.
start_xvfb() {
    local _
    for _ in 1 2 3 4 5 6 7 8; do
        n=$((200 + RANDOM % 700))
        : >"$tmp/display"
        Xvfb ":$n" -displayfd 3 -screen 0 1200x760x24 -nolisten tcp -noreset 3>"$tmp/display" 2>"$tmp/xvfb.log" &
        xvfb=$!
        for _ in $(seq 100); do
            [[ -s $tmp/display ]] && break
            kill -0 "$xvfb" 2>/dev/null || break
            sleep 0.1
        done
        if [[ -s $tmp/display ]]; then
            export DISPLAY=:$(tr -d '\n' <"$tmp/display")
            # A client must get through before the test starts one.
            for _ in $(seq 50); do
                xdotool getdisplaygeometry >/dev/null 2>>"$tmp/xvfb.log" && return 0
                sleep 0.1
            done
            echo "note: $DISPLAY does not accept clients; trying another display" >>"$tmp/xvfb.log"
        fi
        kill "$xvfb" 2>/dev/null
        wait "$xvfb" 2>/dev/null
        xvfb=
    done
    echo "FAIL: Xvfb did not start:"
    cat "$tmp/xvfb.log"
    exit 1
}
start_xvfb
dbus-run-session -- /usr/bin/python3 "$test" "$@"
rc=$?
if [[ $rc -ne 0 && $rc -ne 77 ]] && ! kill -0 "$xvfb" 2>/dev/null; then
    # The X server went away under the test (something outside killed it): that says nothing about
    # the window, so the test runs once more on a new one.
    echo "note: the X server $DISPLAY went away during the test (killed from outside?); running the test again"
    rm -rf "$HOME" && mkdir -p "$HOME/Documents" "$HOME/Desktop" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME"
    printf 'XDG_DOCUMENTS_DIR="$HOME/Documents"\nXDG_DESKTOP_DIR="$HOME/Desktop"\n' >"$XDG_CONFIG_HOME/user-dirs.dirs"
    start_xvfb
    dbus-run-session -- /usr/bin/python3 "$test" "$@"
    rc=$?
fi
[[ $rc -eq 0 || ! -s $tmp/xvfb.log ]] || { echo "Xvfb said:"; cat "$tmp/xvfb.log"; }
exit $rc
