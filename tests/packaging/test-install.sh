#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# `meson install` into a DESTDIR: the installed files are exactly the manifest's (no file missing,
# none unexpected), and the validators accept them: desktop-file-validate, appstreamcli validate
# --no-net (no errors, no warnings), glib-compile-schemas --strict, man --warnings; the D-Bus
# service files and the unit start the installed programs.
#
# usage: test-install.sh BUILD_DIR MANIFEST TAGS VAR=VALUE...   (TAGS: enabled tags, comma-separated)
set -euo pipefail
build=$1 manifest=$2 tags=$3
shift 3
dest=$(mktemp -d "${TMPDIR:-/tmp}/m3-install-XXXXXX")
trap 'rm -rf "$dest"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

meson install -C "$build" --no-rebuild --destdir "$dest" --quiet >"$dest.log" 2>&1 || { cat "$dest.log" >&2; rm -f "$dest.log"; fail "meson install"; }
rm -f "$dest.log"

declare -A var
for kv in "$@"; do var[${kv%%=*}]=${kv#*=}; done

# The expected list: the manifest with its placeholders filled and its disabled tags dropped.
expected=$(grep -v -e '^#' -e '^$' "$manifest" | while read -r path tag; do
    if [[ -n ${tag:-} ]]; then
        tag=${tag#[}; tag=${tag%]}
        [[ ,$tags, == *,$tag,* ]] || continue
    fi
    while [[ $path =~ @([a-z]+)@ ]]; do
        name=${BASH_REMATCH[1]}
        [[ -n ${var[$name]:-} ]] || { echo "manifest: no value for @$name@" >&2; exit 1; }
        path=${path//@$name@/${var[$name]}}
    done
    echo "$path"
done | sort)
actual=$(cd "$dest" && find . \( -type f -o -type l \) | sed 's/^\.//' | sort)
if [[ $expected != "$actual" ]]; then
    diff <(echo "$expected") <(echo "$actual") | sed -e 's/^</missing:   /' -e 's/^>/unexpected:/' >&2 || true
    fail "the installed files differ from $manifest"
fi
echo "ok: $(echo "$actual" | wc -l) files installed, as listed"

datadir=$dest${var[datadir]}
desktop-file-validate "$datadir/applications/org.m3search.Search.desktop" || fail "desktop-file-validate"
out=$(appstreamcli validate --no-net "$datadir/metainfo/org.m3search.Search.metainfo.xml" 2>&1) || { echo "$out" >&2; fail "appstreamcli validate"; }
if grep -E '^[EW]:' <<<"$out" >&2; then fail "appstreamcli reports errors or warnings"; fi
glib-compile-schemas --strict --dry-run "$datadir/glib-2.0/schemas" || fail "glib-compile-schemas --strict"
for page in "$dest${var[mandir]}"/man1/*.1; do
    warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null) || fail "man $page"
    [[ -z $warnings ]] || { echo "$warnings" >&2; fail "man --warnings: $page"; }
done
echo "ok: desktop-file-validate, appstreamcli validate --no-net, glib-compile-schemas --strict, man --warnings"

# Every command line the installed files start names a program of this prefix by its full path
# (or, in the desktop file and the file-manager entries, by name); the D-Bus names match the files.
grep -qx "Exec=${var[bindir]}/m3search --gapplication-service" "$datadir/dbus-1/services/org.m3search.Search.service" || fail "org.m3search.Search.service does not start ${var[bindir]}/m3search"
grep -qx "Name=org.m3search.Search" "$datadir/dbus-1/services/org.m3search.Search.service" || fail "org.m3search.Search.service: Name"
grep -qx "Exec=${var[bindir]}/m3searchd" "$datadir/dbus-1/services/org.m3search.Indexer.service" || fail "org.m3search.Indexer.service does not start ${var[bindir]}/m3searchd"
grep -qx "SystemdService=m3searchd.service" "$datadir/dbus-1/services/org.m3search.Indexer.service" || fail "org.m3search.Indexer.service: SystemdService"
unit=$dest${var[unitdir]}/m3searchd.service
grep -qx "ExecStart=${var[bindir]}/m3searchd" "$unit" && grep -qx "Type=dbus" "$unit" && grep -qx "BusName=org.m3search.Indexer" "$unit" || fail "m3searchd.service: ExecStart, Type=dbus, BusName"
grep -qx "DBusActivatable=true" "$datadir/applications/org.m3search.Search.desktop" || fail "the desktop file is not DBusActivatable"
grep -q '^Name\[de\]=Ähnliche Dokumente finden$' "$datadir/nemo/actions/m3search.nemo_action" || fail "the Nemo action is not translated"
grep -q '^Name\[ko\]=' "$datadir/kio/servicemenus/org.m3search.Search.findsimilar.desktop" || fail "the Dolphin service menu is not translated"
echo "ok: service files, unit, desktop file and file-manager entries"

# D-Bus activation of the installed programs, for the parts built here: a private session bus whose
# only service folder holds the installed .service files (Exec pointed into the DESTDIR), a
# temporary home, the installed schema; a Ping to the name must start the program, then it is
# stopped. (The systemd unit is not involved: this bus has no systemd, so it uses Exec=.)
activation_names=()
[[ ,$tags, == *,window,* ]] && activation_names+=(org.m3search.Search:/org/m3search/Search)
[[ ,$tags, == *,daemon,* ]] && activation_names+=(org.m3search.Indexer:/org/m3search/Indexer)
if [[ ${#activation_names[@]} -gt 0 ]]; then
    bus=$dest/bus
    mkdir -p "$bus/services" "$bus/home" "$bus/schemas" "$bus/runtime"
    chmod 700 "$bus/runtime"
    for f in "$datadir"/dbus-1/services/*.service; do
        sed "s|^Exec=${var[bindir]}/|Exec=$dest${var[bindir]}/|" "$f" >"$bus/services/$(basename "$f")"
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
    glib-compile-schemas --targetdir "$bus/schemas" "$datadir/glib-2.0/schemas"
    export HOME=$bus/home XDG_DATA_HOME=$bus/home/data XDG_CONFIG_HOME=$bus/home/config \
        XDG_CACHE_HOME=$bus/home/cache XDG_RUNTIME_DIR=$bus/runtime GSETTINGS_SCHEMA_DIR=$bus/schemas \
        GSETTINGS_BACKEND=memory
    # The window is a GTK application: even as a D-Bus service it opens the display at start-up.
    display=()
    if [[ ,$tags, == *,window,* && -z ${DISPLAY:-} && -z ${WAYLAND_DISPLAY:-} ]]; then
        command -v xvfb-run >/dev/null || fail "no display for the window's D-Bus activation (install xvfb)"
        display=(xvfb-run -a)
    fi
    DEST=$dest "${display[@]}" dbus-run-session --config-file="$bus/session.conf" -- bash -euo pipefail -c '
        for entry in "$@"; do
            name=${entry%%:*} path=${entry#*:}
            timeout 30 gdbus call --session --dest "$name" --object-path "$path" \
                --method org.freedesktop.DBus.Peer.Ping >/dev/null || { echo "FAIL: $name was not started by D-Bus activation" >&2; exit 1; }
            pid=$(gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
                --method org.freedesktop.DBus.GetConnectionUnixProcessID "$name" | sed "s/^(uint32 \\([0-9]*\\),)$/\\1/")
            cmd=$(tr "\\0" " " <"/proc/$pid/cmdline")
            kill "$pid"
            [[ $cmd == *"$DEST/"* ]] || { echo "FAIL: $name is served by \"$cmd\", not by the installed program" >&2; exit 1; }
            echo "ok: D-Bus activation of $name started $cmd"
        done' activation "${activation_names[@]}"
fi
