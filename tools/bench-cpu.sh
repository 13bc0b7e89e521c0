#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The CPU encoder against its anchor, ONNX Runtime fp32 (MLAS kernels, what fastembed and
# transformers.js users run), side by side in one run on this machine: the same BGE-M3 shape with
# random weights, the same thread count, the same batch shapes; m3 in fp32, in bf16 where the CPU
# has AVX512_BF16, and in int8 where it has AVX512-VNNI, AVX-VNNI or AVX2. Prints each row with the ratio and the load average before and after (the
# machine may be shared); writes a JSON summary to tools/.bench/cpu-summary.json.
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

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
precisions=(fp32)
grep -qw avx512_bf16 /proc/cpuinfo && precisions+=(bf16)
grep -qwE 'avx512_vnni|avx_vnni|avx2' /proc/cpuinfo && precisions+=(int8)
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), threads used: $threads" >&2
echo "ONNX Runtime $(node -p "require('./$work/node_modules/onnxruntime-node/package.json').version")..." >&2
(cd "$work" && THREADS=$threads node ort_bench.mjs bge-m3-shape.onnx) >"$work/ort.jsonl"
: >"$work/m3.jsonl"
for p in "${precisions[@]}"; do
    echo "m3 (cpu backend, $p)..." >&2
    build/app/m3 bench --backend cpu --precision "$p" --threads "$threads" \
        --shapes 1x16,8x128,4x512,1x2048 --seconds 5 --json >>"$work/m3.jsonl"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

jq -s --slurpfile ort "$work/ort.jsonl" --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
    --arg before "$load_before" --arg after "$load_after" '
  { machine: $cpu, threads: .[0].threads, load_average_before: $before, load_average_after: $after,
    rows: [ .[] as $m | ($ort[] | select(.batch == $m.batch and .seq == $m.seq)) as $o
            | { precision: $m.precision, batch: $m.batch, seq: $m.seq, m3_ms: $m.ms,
                m3_tokens_per_s: $m.tokens_per_s, ort_ms: $o.ms, ort_tokens_per_s: $o.tokens_per_s,
                ratio: (($m.tokens_per_s / $o.tokens_per_s) * 100 | round / 100),
                m3_peak_rss_mib: $m.peak_rss_mib } ] }' "$work/m3.jsonl" | tee "$work/cpu-summary.json"
