#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Opens the window from a build tree without installing anything (`./dev run` with no arguments):
# the settings schema from the build tree, a session bus (a private one when there is none, e.g. on a
# console or over ssh), the indexer service m3searchd from the build tree when no service owns
# org.m3search.Indexer yet, then m3search. The service keeps running after the window closes, as an
# installed one would (it ends with the session bus).
#
# Usage: tools/run-window.sh BUILD_DIR [m3search ARGS...]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
shift || true
export GSETTINGS_SCHEMA_DIR=$build/packaging${GSETTINGS_SCHEMA_DIR:+:$GSETTINGS_SCHEMA_DIR}
export M3SEARCH_LOCALEDIR=${M3SEARCH_LOCALEDIR:-$build/po}

if [[ -z ${DBUS_SESSION_BUS_ADDRESS:-} && ! -S ${XDG_RUNTIME_DIR:-/run/user/$(id -u)}/bus ]]; then
    # No session bus: give the window and the service a private one for this run.
    exec dbus-run-session -- "$0" "$build" "$@"
fi
if [[ -z ${DISPLAY:-} && -z ${WAYLAND_DISPLAY:-} ]]; then
    echo "run-window: no display (DISPLAY / WAYLAND_DISPLAY unset): run it in a desktop session, or under xvfb-run" >&2
    exit 1
fi

has_owner=$(gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
    --method org.freedesktop.DBus.NameHasOwner org.m3search.Indexer 2>/dev/null || echo '(false,)')
if [[ $has_owner != "(true,)" ]]; then
    if [[ -x $build/app/m3searchd ]]; then
        echo "run-window: starting the indexer service $build/app/m3searchd" >&2
        nohup "$build/app/m3searchd" >"${XDG_RUNTIME_DIR:-/tmp}/m3searchd.log" 2>&1 &
        for _ in $(seq 50); do
            [[ $(gdbus call --session --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
                --method org.freedesktop.DBus.NameHasOwner org.m3search.Indexer 2>/dev/null) == "(true,)" ]] && break
            sleep 0.1
        done
    else
        echo "run-window: $build/app/m3searchd is not built; the window will say that the service is unreachable" >&2
    fi
fi
exec "$build/ui/m3search" "$@"
