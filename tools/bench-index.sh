#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# End-to-end indexing throughput against the encoder's own: `m3 index` (walk, read, extract, chunk,
# tokenize on the reader thread; encode in token-budget batches; quantise and commit to LMDB) on a
# text corpus, and `m3 bench` with batches of 512-token chunks, on the same model, backend and
# threads, in one run. The goal (issue 4): indexing at >= 90 % of the bench figure, i.e. the reader
# never starves the encoder and storing costs little. The bench runs before and after the index so
# that a change in machine load shows. Prints a JSON summary (also in tools/.bench/index-summary.json).
#
# Model: $MODEL (a folder or .gguf); default a GGUF file of the real BGE-M3 shape with random
# weights and a synthetic 250002-piece vocabulary, written once to tools/.bench (1.1 GB) by
# tests/gguf/bench-model-open. Corpus: the licence texts in /usr/share/common-licenses cut into
# files of about 6 KB, repeated up to $KB kilobytes (default 96: ~20 k tokens, a few minutes on 2
# CPUs with the real shape).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
threads=${THREADS:-$(nproc)}
backend=${BACKEND:-cpu}
kb=${KB:-96}
work=tools/.bench
mkdir -p "$work"
m3=build/app/m3
model=${MODEL:-}
if [[ -z $model ]]; then
    model=$(ls "$work"/bench-model-open-*.gguf 2>/dev/null | head -1 || true)
    if [[ -z $model ]]; then
        echo "writing a random-weight model file of the BGE-M3 shape (once, 1.1 GB)..." >&2
        build/tests/gguf/bench-model-open --keep "$work" >&2
        model=$(ls "$work"/bench-model-open-*.gguf | head -1)
    fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/corpus"
cat /usr/share/common-licenses/* >"$tmp/all.txt"
n=0
while (( $(du -sk "$tmp/corpus" | cut -f1) < kb )); do
    split -C 6000 -d -a 3 "$tmp/all.txt" "$tmp/corpus/r$n-"
    for f in "$tmp/corpus/r$n-"*; do mv "$f" "$f.txt"; done
    n=$((n + 1))
done
# Trim to about kb kilobytes (whole files).
total=0
for f in $(ls "$tmp/corpus" | sort); do
    if (( total > kb * 1024 )); then rm "$tmp/corpus/$f"; else total=$((total + $(stat -c %s "$tmp/corpus/$f"))); fi
done

bench() {
    "$m3" bench --backend "$backend" --threads "$threads" --model "$model" --shapes 8x512 --seconds 20 --json |
        jq -s '.[0].tokens_per_s'
}
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); model $model" >&2
echo "m3 bench 8x512..." >&2
b1=$(bench)
echo "m3 index of $(ls "$tmp/corpus" | wc -l) files, $((total / 1024)) KB..." >&2
"$m3" index --backend "$backend" --threads "$threads" --index "$tmp/idx" --model "$model" "$tmp/corpus" 2>"$tmp/index.log"
cat "$tmp/index.log" >&2
idx_tps=$(sed -n 's/.*(\([0-9.]*\) tokens\/s).*/\1/p' "$tmp/index.log" | tail -1)
echo "m3 bench 8x512 again..." >&2
b2=$(bench)
jq -n --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" --arg backend "$backend" \
    --argjson threads "$threads" --argjson b1 "$b1" --argjson b2 "$b2" --argjson idx "$idx_tps" \
    --arg log "$(tail -1 "$tmp/index.log")" '
  { machine: $cpu, backend: $backend, threads: $threads,
    bench_tokens_per_s: [$b1, $b2], index_tokens_per_s: $idx,
    ratio: (($idx / (($b1 + $b2) / 2)) * 100 | round / 100), index_summary: $log }' | tee "$work/index-summary.json"
