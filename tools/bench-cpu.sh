#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The CPU encoder against its anchor, ONNX Runtime fp32 (MLAS kernels, what fastembed and
# transformers.js users run), side by side in one run on this machine: the same BGE-M3 shape with
# random weights, the same thread count, the same batch shapes; m3 in fp32, in bf16 where the CPU
# has AVX512_BF16, and in int8 where it has AVX512-VNNI, AVX-VNNI or AVX2, in rounds (below). Prints
# each row with the ratios and the load average before and after (the machine may be shared);
# writes a JSON summary to tools/.bench/cpu-summary.json.
#
# Needs: python3-torch and python3-onnx (to export the ONNX graph once, ~2.3 GB), nodejs + npm
# (onnxruntime-node, installed into tools/.bench without its install script, which would fetch GPU
# add-ons). ./dev bench cpu installs the Debian packages (Node.js and npm only where the commands
# are missing: a NodeSource or nvm install is used as it is).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
threads=${THREADS:-2}
work=tools/.bench
mkdir -p "$work"
if [[ ! -d $work/node_modules/onnxruntime-node ]]; then
    (cd "$work" && { [[ -f package.json ]] || echo '{"name":"m3-bench","private":true}' >package.json; } &&
        npm install --ignore-scripts --no-audit --no-fund onnxruntime-node >/dev/null)
fi
if [[ ! -f $work/bge-m3-shape.onnx ]]; then
    echo "exporting the BGE-M3 shape to ONNX (once)..." >&2
    /usr/bin/python3 tools/anchor/export_onnx.py "$work/bge-m3-shape.onnx" >&2
fi
cp tools/anchor/ort_bench.mjs "$work/ort_bench.mjs"

# Each CPU's fp32 FMA peak alone (peak-flops on one thread, pinned), before and after: a VM's
# vCPUs need not run at one speed (on the dev VM one ran at times at two-thirds of the other,
# docs/performance.md, "Twelfth session"), and two threads are only as fast as what they share.
# The CPUs this script may run on ("0-3,8" in /proc's list gives 0 1 2 3 8), not 0 .. nproc - 1:
# under a cpuset or taskset they need not start at 0 nor follow each other.
cpus_allowed() {
    local r
    for r in $(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status | tr ',' ' '); do
        seq "${r%-*}" "${r#*-}"
    done
}
cpu_peaks() {
    local c out=()
    command -v taskset >/dev/null && [[ -x build/tests/encoder/peak-flops ]] || { echo "unknown"; return; }
    for c in $(cpus_allowed); do
        out+=("$(taskset -c "$c" build/tests/encoder/peak-flops 1 2>/dev/null |
            awk '/^fp32 FMA/ { for (i = 1; i < NF; i++) if ($(i + 1) == "GFLOP/s") { print $i; exit } }')")
    done
    echo "${out[*]}"
}
peaks_before=$(cpu_peaks)
echo "fp32 FMA peak of each CPU alone, GFLOP/s: $peaks_before" >&2
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
precisions=(fp32)
grep -qw avx512_bf16 /proc/cpuinfo && precisions+=(bf16)
grep -qwE 'avx512_vnni|avx_vnni|avx2' /proc/cpuinfo && precisions+=(int8)
# Rounds: ONNX Runtime, then m3 in each precision, ROUNDS times (default 3). A shared VM's speed
# drifts by 15-40 % over minutes, so one pass of each side minutes apart compares two machines; the
# rounds interleave the sides, and each side is summarised by its best and its median round.
rounds=${ROUNDS:-3}
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), threads used: $threads, $rounds rounds" >&2
: >"$work/ort.jsonl"
: >"$work/m3.jsonl"
for round in $(seq "$rounds"); do
    echo "round $round: ONNX Runtime $(node -p "require('./$work/node_modules/onnxruntime-node/package.json').version")..." >&2
    (cd "$work" && THREADS=$threads SECONDS_PER_SHAPE=${SECONDS_PER_SHAPE:-2} node ort_bench.mjs bge-m3-shape.onnx) >>"$work/ort.jsonl"
    for p in "${precisions[@]}"; do
        echo "round $round: m3 (cpu backend, $p)..." >&2
        build/app/m3 bench --backend cpu --precision "$p" --threads "$threads" \
            --shapes 1x16,8x128,4x512,1x2048 --seconds "${SECONDS_PER_SHAPE:-2}" --json >>"$work/m3.jsonl"
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
peaks_after=$(cpu_peaks)

jq -s --slurpfile ort "$work/ort.jsonl" --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    --arg before "$load_before" --arg after "$load_after" --argjson rounds "$rounds" \
    --arg peaks_before "$peaks_before" --arg peaks_after "$peaks_after" '
  def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def r2: . * 100 | round / 100;
  { machine: $cpu, threads: .[0].threads, rounds: $rounds, load_average_before: $before, load_average_after: $after,
    cpu_fp32_peak_gflops_before: $peaks_before, cpu_fp32_peak_gflops_after: $peaks_after,
    rows: [ group_by([.precision, .batch, .seq])[] as $g | $g[0] as $m
            | [ $ort[] | select(.batch == $m.batch and .seq == $m.seq) | .tokens_per_s ] as $o
            | [ $g[].tokens_per_s ] as $t
            | { precision: $m.precision, batch: $m.batch, seq: $m.seq,
                m3_tokens_per_s_best: ($t | max), m3_tokens_per_s_median: ($t | median | . * 10 | round / 10),
                ort_tokens_per_s_best: ($o | max), ort_tokens_per_s_median: ($o | median | . * 10 | round / 10),
                ratio_best: (($t | max) / ($o | max) | r2), ratio_median: (($t | median) / ($o | median) | r2),
                m3_tokens_per_s_rounds: $t, ort_tokens_per_s_rounds: $o,
                m3_peak_rss_mib: ([ $g[].peak_rss_mib ] | max) } ] }' "$work/m3.jsonl" >"$work/cpu-summary.json"
jq -r '"\(.machine), \(.threads) threads, \(.rounds) rounds, load \(.load_average_before) -> \(.load_average_after)",
  "fp32 FMA peak of each CPU alone, GFLOP/s: \(.cpu_fp32_peak_gflops_before) -> \(.cpu_fp32_peak_gflops_after)",
  "precision batch x seq   ORT best/median   m3 best/median   ratio best/median",
  (.rows | sort_by(.precision != "fp32", .precision != "bf16", .seq)[] |
   "\(.precision)\t\(.batch) x \(.seq)\t\(.ort_tokens_per_s_best) / \(.ort_tokens_per_s_median)\t\(.m3_tokens_per_s_best) / \(.m3_tokens_per_s_median)\t\(.ratio_best) / \(.ratio_median)")' \
    "$work/cpu-summary.json"
