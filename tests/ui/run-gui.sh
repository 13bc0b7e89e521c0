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
for p in xvfb-run dbus-run-session xdotool import; do
    command -v "$p" >/dev/null || { echo "SKIP: $p is not installed (Debian: xvfb dbus xdotool imagemagick)"; exit 77; }
done
/usr/bin/python3 -c 'import gi; gi.require_version("Atspi", "2.0")' 2>/dev/null ||
    { echo "SKIP: python3-gi and gir1.2-atspi-2.0 are not installed"; exit 77; }
[[ -x $build/ui/m3search ]] || { echo "SKIP: the window was not built (GTK 4 / libadwaita missing)"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home/.config XDG_DATA_HOME=$tmp/home/.local/share
export XDG_CACHE_HOME=$tmp/home/.cache XDG_RUNTIME_DIR=$tmp/run
mkdir -p "$HOME/Documents" "$HOME/Desktop" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
printf 'XDG_DOCUMENTS_DIR="$HOME/Documents"\nXDG_DESKTOP_DIR="$HOME/Desktop"\n' >"$XDG_CONFIG_HOME/user-dirs.dirs"
export GSETTINGS_BACKEND=keyfile
export GSETTINGS_SCHEMA_DIR=$build/packaging${GSETTINGS_SCHEMA_DIR:+:$GSETTINGS_SCHEMA_DIR}
export GTK_A11Y=atspi NO_AT_BRIDGE=0 GDK_BACKEND=x11 GSK_RENDERER=cairo LC_ALL=${LC_ALL:-C.UTF-8}
export M3_BUILD=$build M3_TEST_TMP=$tmp M3SEARCH_LOCALEDIR=$build/po
unset DBUS_SESSION_BUS_ADDRESS DISPLAY WAYLAND_DISPLAY
cd "$(dirname "$0")"
exec xvfb-run -a -s "-screen 0 1200x760x24 -nolisten tcp" \
    dbus-run-session -- /usr/bin/python3 "$test" "$@"
