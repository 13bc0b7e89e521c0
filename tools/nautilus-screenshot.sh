#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Real Nautilus 43 under Xvfb with the built extension: right-clicks a file, screenshots the menu
# with "Find Similar Documents" (docs/screenshots/nautilus-find-similar.png), clicks the item and
# checks that an application registered as org.m3search.Search on the private session bus received
# app.find-similar with the file's URI. A manual check, not a test: it downloads Nautilus's Debian
# packages (apt-get download, unpacked under build/nautilus-root, nothing installed) and, as
# Nautilus only loads extensions from its own folder, links the module into
# /usr/lib/<triplet>/nautilus/extensions-4 for the run (needs root; removed afterwards).
#
# usage: tools/nautilus-screenshot.sh [BUILD_DIR] [OUTPUT.png]
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
build=$(readlink -f "${1:-build}")
out=${2:-docs/screenshots/nautilus-find-similar.png}
module=$build/packaging/libm3search-nautilus.so
[[ -f $module ]] || { echo "no $module: build first (ninja -C $build)" >&2; exit 1; }
for tool in Xvfb xdotool import convert dbus-run-session /usr/bin/python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (xvfb, xdotool, imagemagick, dbus, python3-gi)" >&2; exit 1; }
done

root=$build/nautilus-root
if [[ ! -x $root/usr/bin/nautilus ]]; then
    mkdir -p "$root.debs"
    # Nautilus and the libraries it needs that are not installed; the daemons it can live without
    # (tracker, gvfs, udisks) are left out.
    pkgs=$(apt-get install -s --no-install-recommends nautilus | awk '/^Inst/ {print $2}' |
        grep -v -x -E 'udev|udisks2|fdisk|gdisk|parted|dmidecode|tracker|tracker-extract|tracker-miner-fs|gvfs-daemons|gvfs|bubblewrap')
    (cd "$root.debs" && apt-get download $pkgs >/dev/null 2>&1)
    mkdir -p "$root"
    for deb in "$root.debs"/*.deb; do dpkg -x "$deb" "$root"; done
fi

work=$(mktemp -d /tmp/m3-nautilus-shot-XXXXXX)
extdir=$(pkg-config --variable=extensiondir libnautilus-extension-4)
link=$extdir/$(basename "$module")
cleanup() {
    [[ -n ${pgid:-} ]] && kill -- "-$pgid" 2>/dev/null || true
    [[ -L $link ]] && rm -f "$link"
    rmdir "$extdir" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$extdir"
ln -sf "$module" "$link"

mkdir -p "$work/schemas" "$work/home/Documents/Letters" "$work/runtime"
chmod 700 "$work/runtime"
cp /usr/share/glib-2.0/schemas/*.xml "$root"/usr/share/glib-2.0/schemas/*.xml "$work/schemas/"
cp /usr/share/glib-2.0/schemas/*.override "$work/schemas/" 2>/dev/null || true
glib-compile-schemas "$work/schemas"
printf 'Steuererklärung 2025\n\nEinkommensteuer, Belege, Fristen.\n' >"$work/home/Documents/Steuererklärung-2025.txt"
printf '# Notes\n' >"$work/home/Documents/notes.md"
printf '세금 안내\n' >"$work/home/Documents/세금 안내문.txt"
cat >"$work/app.py" <<'PY'
# The receiving end: an application with the window's id and its find-similar action.
import sys, gi
gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib
app = Gio.Application(application_id="org.m3search.Search", flags=Gio.ApplicationFlags.IS_SERVICE)
action = Gio.SimpleAction.new("find-similar", GLib.VariantType.new("s"))
action.connect("activate", lambda a, p: print(p.get_string(), flush=True))
app.add_action(action)
app.hold()
app.run(sys.argv)
PY

export GSETTINGS_SCHEMA_DIR=$work/schemas GSETTINGS_BACKEND=memory HOME=$work/home
export LD_LIBRARY_PATH=$root/usr/lib/x86_64-linux-gnu XDG_DATA_DIRS=$root/usr/share:/usr/share
export XDG_RUNTIME_DIR=$work/runtime GSK_RENDERER=cairo NO_AT_BRIDGE=1 LANGUAGE=en LC_ALL=C.UTF-8
display=:$((90 + RANDOM % 100))
export DISPLAY=$display
setsid bash -c '
    Xvfb "$DISPLAY" -screen 0 1100x720x24 -nolisten tcp -noreset & sleep 2
    exec dbus-run-session -- bash -c "/usr/bin/python3 \"$1/app.py\" >\"$1/received\" 2>\"$1/app.log\" &
        exec \"$2/usr/bin/nautilus\" --new-window \"$1/home/Documents\" >\"$1/nautilus.log\" 2>&1"
' shot "$work" "$root" &
pgid=$!
for _ in $(seq 50); do xdotool getmouselocation >/dev/null 2>&1 && break; sleep 0.2; done
xdotool search --sync --onlyvisible --class nautilus >/dev/null
sleep 5  # let the folder load and the icons settle
# The second file (Steuererklärung-2025.txt) of the icon grid at Nautilus's default window size.
xdotool mousemove 488 125 click 1
sleep 1
xdotool mousemove 600 480
sleep 1
import -window root "$work/base.png"
xdotool mousemove 488 125 click 3
sleep 2
xdotool mousemove 584 475  # hover "Find Similar Documents"
sleep 1
import -window root "$work/menu.png"
# Without a compositor the popover's transparent margin is black: show the window beneath instead.
convert "$work/menu.png" -fill '#ff00ff' -opaque black -fill black +opaque '#ff00ff' -fill white \
    -opaque '#ff00ff' "$work/mask.png"
convert "$work/menu.png" "$work/base.png" "$work/mask.png" -composite -crop 890x550+0+0 +repage "$out"
xdotool click 1
for _ in $(seq 20); do [[ -s $work/received ]] && break; sleep 0.5; done
expected="file://$work/home/Documents/Steuerer"
received=$(cat "$work/received")
[[ $received == "$expected"* ]] || { echo "FAIL: the click reached org.m3search.Search with '$received'" >&2; exit 1; }
echo "ok: $out; activating the item sent find-similar $received"
