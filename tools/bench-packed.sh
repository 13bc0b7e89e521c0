#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# `m3 embed` start-up to the first vector and peak resident memory, with a plain model file (the CPU
# backend packs every linear layer at start-up) against the same model with its packed weights
# stored (`m3 model convert --precision P`: mapped and used in place), in bf16, fp32 and int8, side
# by side in one run. Model: the random-weight file of the real BGE-M3 shape with the synthetic
# vocabulary (tests/gguf/bench-model-open, 1.1 GB, written once to tools/.bench); the packed copies
# are written once beside it (tools/.bench/packed-{bf16,fp32,int8}.gguf, 1.8, 2.4 and 1.5 GB). Every file is
# read once first, so that the times are warm (page cache); each figure is the best of RUNS runs
# (default 3) of one short text, 2 threads. Prints a table and writes tools/.bench/packed-summary.json.
# Usage: tools/bench-packed.sh   (or ./dev bench packed); MODEL=FILE to use another plain model file,
# PRECISIONS="int8" (default "bf16 fp32 int8") to measure fewer precisions.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
work=tools/.bench
mkdir -p "$work"
m3=build/app/m3
runs=${RUNS:-3}
threads=${THREADS:-2}
model=${MODEL:-}
read -r -a precisions <<<"${PRECISIONS:-bf16 fp32 int8}"
if [[ -z $model ]]; then
    model=$(ls "$work"/bench-model-open-*.gguf 2>/dev/null | grep -v no-trie | head -1 || true)
    if [[ -z $model ]]; then
        echo "writing a random-weight model file of the BGE-M3 shape (once, 1.1 GB)..." >&2
        build/tests/gguf/bench-model-open --keep "$work" >&2
        model=$(ls "$work"/bench-model-open-*.gguf | grep -v no-trie | head -1)
    fi
fi
for p in "${precisions[@]}"; do
    packed=$work/packed-$p.gguf
    if [[ ! -s $packed || $packed -ot $model ]]; then
        echo "writing $packed (once)..." >&2
        "$m3" model convert --precision $p "$model" "$packed" >/dev/null
    fi
done
# Warm: every file in the page cache.
files=("$model")
for p in "${precisions[@]}"; do files+=("$work/packed-$p.gguf"); done
cat "${files[@]}" >/dev/null
load_before=$(cut -d' ' -f1 /proc/loadavg)
text='"The start-up of m3 embed, measured to the first vector."'
rows=()
printf '%-6s %-8s %10s %14s\n' precision file 'time s' 'peak RSS MiB'
for p in "${precisions[@]}"; do
    for kind in plain packed; do
        f=$model
        [[ $kind == packed ]] && f=$work/packed-$p.gguf
        # The packed file must be used in place (same CPU and kernels as when it was written).
        log=$(echo "$text" | M3_LOG=debug "$m3" embed --model "$f" --precision $p --threads "$threads" \
            --outputs dense 2>&1 >/dev/null)
        if [[ $kind == packed ]] && ! grep -q "in place" <<<"$log"; then
            echo "$f is not used in place: $log (delete it to write it again)" >&2
            exit 1
        fi
        best_t=999999 best_m=0
        for ((r = 0; r < runs; r++)); do
            out=$( { echo "$text" | /usr/bin/time -f '%e %M' "$m3" embed --model "$f" --precision $p \
                --threads "$threads" --outputs dense >/dev/null; } 2>&1 | tail -1)
            t=${out% *} m=${out#* }
            best_t=$(awk -v a="$t" -v b="$best_t" 'BEGIN { print (a < b) ? a : b }')
            (( m > best_m )) && best_m=$m
        done
        mib=$((best_m / 1024))
        printf '%-9s %-8s %10s %14s\n' $p $kind "$best_t" "$mib"
        rows+=("{\"precision\": \"$p\", \"file\": \"$kind\", \"seconds\": $best_t, \"peak_rss_mib\": $mib}")
    done
done
load_after=$(cut -d' ' -f1 /proc/loadavg)
echo "load average: $load_before before, $load_after after"
{
    echo "{\"model\": \"$model\", \"threads\": $threads, \"runs\": $runs,"
    echo " \"load_before\": $load_before, \"load_after\": $load_after, \"rows\": ["
    (IFS=,; echo "  ${rows[*]}")
    echo "]}"
} >"$work/packed-summary.json"
