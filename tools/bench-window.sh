#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# ./dev bench window: how quickly the window answers typing, and whether its main loop ever stalls.
#  0. what a first write to a populated heap page costs on this machine (tools/first-touch.c);
#  1. the window with the real service (tools/bench-window.py on a private desktop): keystroke → list
#     drawn, split into the service's work (encoding, index search, results; M3SEARCHD_TRACE), D-Bus,
#     the list update (model splice, selection and preview) and the first frame after it (layout,
#     drawing); the longest main-loop gap, the longest frame, and the most CPU the main thread used
#     in one gap; with the service idle and while it indexes;
#  2. the parts at the real BGE-M3 shape with random weights on the CPU, which the tiny model of (1)
#     does not show: encoding one short query (m3 bench --shapes 1x16) and searching 100 000 chunks
#     (m3 bench search --chunks 100000);
#  3. keystroke → list at 100 000 chunks with the real shape, composed: (2)'s encoding and search
#     medians in place of the tiny model's, plus (1)'s results, D-Bus, list update and first frame.
# Usage: tools/bench-window.sh BUILD_DIR [MODEL]   (MODEL: default tests/data/m3-tiny)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
model=${2:-$(cd "$(dirname "$0")/.." && pwd)/tests/data/m3-tiny}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== the first write to a populated heap page against the second (why ui/x11-frames.c writes them ahead)"
"$build/tests/ui/first-touch" 12 3
echo "== the window and the service (model: $model)"
M3_BENCH_SUMMARY=$work/window.json M3_TINY_MODEL=$model "$(dirname "$0")/../tests/ui/run-gui.sh" "$build" \
    ../../tools/bench-window.py "$model" 2>&1 |
    grep -v -e '^dbus-daemon' -e 'SpiRegistry' -e 'dbind-WARNING' -e '^$' -e 'm3searchd-Message' -e '^X connection' \
        -e '^XIO' -e 'after 0 requests'
echo "== query encoding at the BGE-M3 shape (random weights, CPU)"
"$build/app/m3" bench --backend cpu --shapes 1x16 --json | tee "$work/encode.json"
echo "== search at 100 000 chunks"
"$build/app/m3" bench search --chunks 100000 --queries 100 --no-brute --json | tee "$work/search.json"
echo "== keystroke to list at 100 000 chunks, BGE-M3 shape, CPU (composed from the medians above)"
/usr/bin/python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
win = json.load(open(f"{w}/window.json"))
enc = json.loads(open(f"{w}/encode.json").read().splitlines()[-1])["ms"]
srch = json.loads(open(f"{w}/search.json").read().splitlines()[-1])["search_p50_ms"]
for label, s in win.items():
    rest = s["results"] + s["dbus"] + s["update"] + s["drawn"]
    print(f"{label}: query encoding {enc:.1f} + index search {srch:.1f} + results {s['results']:.1f} + D-Bus "
          f"{s['dbus']:.1f} + list update {s['update']:.1f} + first frame {s['drawn']:.1f} = {enc + srch + rest:.1f} ms "
          f"(target 150 ms)")
PY
