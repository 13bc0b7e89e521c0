#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# ./dev bench window: how quickly the window answers typing, and whether its main loop ever stalls.
#  1. the window with the real service (tools/bench-window.py on a private desktop): keystroke → list
#     drawn, the service's reply time within it, the longest main-loop gap; idle and while indexing;
#  2. the parts at the real BGE-M3 shape with random weights on the CPU, which the tiny model of (1)
#     does not show: encoding one short query (m3 bench --shapes 1x16) and searching 100 000 chunks
#     (m3 bench search --chunks 100000).
# Usage: tools/bench-window.sh BUILD_DIR [MODEL]   (MODEL: default tests/data/m3-tiny)
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
model=${2:-$(cd "$(dirname "$0")/.." && pwd)/tests/data/m3-tiny}
echo "== the window and the service (model: $model)"
M3_TINY_MODEL=$model "$(dirname "$0")/../tests/ui/run-gui.sh" "$build" ../../tools/bench-window.py "$model" 2>&1 |
    grep -v -e '^dbus-daemon' -e 'SpiRegistry' -e 'dbind-WARNING' -e '^$' -e 'm3searchd-Message'
echo "== query encoding at the BGE-M3 shape (random weights, CPU)"
"$build/app/m3" bench --backend cpu --shapes 1x16,1x8
echo "== search at 100 000 chunks"
"$build/app/m3" bench search --chunks 100000 --queries 100 --no-brute
