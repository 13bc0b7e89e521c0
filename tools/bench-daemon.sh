#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The indexer service's benchmark (tools/bench-daemon.py) on a private session bus. Model: $MODEL,
# default the random-weight GGUF file of the real BGE-M3 shape that tools/bench-index.sh writes.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
work=tools/.bench
mkdir -p "$work"
model=${MODEL:-$(ls "$work"/bench-model-open-*.gguf 2>/dev/null | grep -v -- -no-trie | head -1 || true)}
if [[ -z $model ]]; then
    echo "writing a random-weight model file of the BGE-M3 shape (once, 1.1 GB)..." >&2
    build/tests/gguf/bench-model-open --keep "$work" >&2
    model=$(ls "$work"/bench-model-open-*.gguf | head -1)
fi
exec dbus-run-session -- /usr/bin/python3 tools/bench-daemon.py "$(readlink -f "$model")" "${KB:-48}"
