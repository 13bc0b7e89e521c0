#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# `meson install` into a DESTDIR: the installed files are exactly the manifest's (no file missing,
# none unexpected), and the validators accept them: desktop-file-validate, appstreamcli validate
# --no-net (no errors, no warnings), glib-compile-schemas --strict, man --warnings; the D-Bus
# service files and the unit name the installed programs, and D-Bus activation starts them.
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

# D-Bus activation of the installed programs, for the parts built here.
activation_names=()
[[ ,$tags, == *,window,* ]] && activation_names+=(org.m3search.Search:/org/m3search/Search)
[[ ,$tags, == *,daemon,* ]] && activation_names+=(org.m3search.Indexer:/org/m3search/Indexer)
"$(dirname "$0")/check-activation.sh" "$dest" "${var[bindir]}" "${var[datadir]}" "${activation_names[@]}"
