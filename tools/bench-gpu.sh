#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The Vulkan encoder on an NVIDIA GPU machine (../shared/docs/gpu.md), next to the PyTorch anchor
# in the same run. Two steps:
#
#   tools/bench-gpu.sh stage [BUILD]   here, on the Debian 12 build machine: copies the binaries of
#                                      BUILD (default build-vk, a release build) into .gl/bin and
#                                      downloads the Debian packages of the libraries they need
#                                      (libvulkan1 included) into .gl/ with apt-get download
#   tools/bench-gpu.sh                 there, from the repository root with .gl/ carried along:
#                                      unpacks .gl/*.deb into .gl/root (no root needed), finds the
#                                      NVIDIA Vulkan driver (VK_DRIVER_FILES when the loader does not
#                                      see it by itself), runs the Vulkan tests (the cooperative-
#                                      matrix GEMM has never run anywhere else), `m3 bench --backend
#                                      vulkan --json` (and again with the tiled GEMM when the
#                                      cooperative-matrix one is in use), then
#                                      tools/anchor/bench_torch.py, and writes everything plus a
#                                      summary to $OUT (default tools/.bench/gpu):
#                                        summary.json  device, per shape m3 vs PyTorch tokens/s
#                                        m3-vulkan.jsonl, m3-vulkan-tiled.jsonl, torch.json
#                                        test-*.log, probe.log, env.txt
#                                      Where the host CPU has AMX-BF16 (these machines are often
#                                      Intel Xeons), first the CPU's bf16 kernels, which no dev
#                                      machine can run: test-gemm and test-encoder-precision
#                                      (bf16-amx against the references), peak-flops, bench-gemm,
#                                      and m3 bench on the CPU with bf16-amx and bf16-avx512
#                                      alternated: cpu-*.log, cpu-m3-*.jsonl (SKIP_CPU=1: none).
# Environment (run step): OUT, SECONDS_PER_SHAPE (default 2), SHAPES (m3's --shapes; default: its
# Vulkan defaults 64x512,256x128,1x16,1x8192), MODEL (m3's --model; default random weights of the
# BGE-M3 shape), TESTS (default: all four Vulkan test programs), SKIP_TORCH=1, SKIP_TESTS=1.
# Device time: about 1 min of tests, 1-2 min per m3 bench run, 1-2 min of PyTorch, 2-3 min of
# the CPU step where it runs; each step has its own timeout (use SKIP_* to split the run over two
# 600 s calls).
# Only the m3 binaries get LD_LIBRARY_PATH=.gl/root/...; python and PyTorch run untouched.
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here" || exit 1

stage() {
    build=${1:-build-vk}
    bins="app/m3 tests/encoder/test-vulkan-ops tests/encoder/test-vulkan-replay
          tests/encoder/test-vulkan-encoder tests/encoder/test-vulkan-coopmat
          tests/encoder/test-gemm tests/encoder/test-encoder-precision tests/encoder/bench-gemm
          tests/encoder/peak-flops"
    rm -rf .gl && mkdir -p .gl/bin || exit 1
    for b in $bins; do
        [ -x "$build/$b" ] || { echo "bench-gpu: $build/$b is missing (ninja -C $build)" >&2; exit 1; }
        cp "$build/$b" .gl/bin/ && strip .gl/bin/"$(basename "$b")" 2>/dev/null
    done
    # The packages of every shared library the binaries load, but glibc, libgcc and libstdc++
    # (the GPU machine has newer ones; ours were built against Debian 12's, which they accept).
    pkgs=$(for b in .gl/bin/*; do ldd "$b"; done | awk '$3 ~ /^\// {print $3}' | sort -u |
        while read -r f; do dpkg -S "$(readlink -f "$f")" 2>/dev/null || dpkg -S "$f" 2>/dev/null; done |
        cut -d: -f1 | sort -u | grep -v -x -e libc6 -e libgcc-s1 -e libstdc++6)
    (cd .gl && apt-get download $pkgs) || exit 1
    du -sh .gl
    echo "staged: carry .gl to the GPU machine and run tools/bench-gpu.sh there"
}

# Unpacks a .deb into $2 without dpkg (the GPU machine may lack it): an ar archive whose
# data.tar.* member is the file tree.
unpack_deb() {
    if command -v dpkg-deb >/dev/null 2>&1; then
        dpkg-deb -x "$1" "$2"
        return
    fi
    python3 - "$1" "$2" <<'EOF'
import io, sys, tarfile
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"!<arch>\n", "not a .deb"
at = 8
while at + 60 <= len(data):
    name = data[at:at + 16].decode().strip().rstrip("/")
    size = int(data[at + 48:at + 58].decode().strip())
    body = data[at + 60:at + 60 + size]
    if name.startswith("data.tar"):
        tarfile.open(fileobj=io.BytesIO(body)).extractall(sys.argv[2])
    at += 60 + size + (size & 1)
EOF
}

run_m3() {
    LD_LIBRARY_PATH="$m3_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"
}

# The CPU's AMX-BF16 kernel, where the host has it: its tests, the peaks, its GEMMs, and the
# encoder with it and with bf16-avx512 alternated (three rounds each, the same process set-up).
cpu_amx() {
    grep -m1 'model name' /proc/cpuinfo >>"$OUT/env.txt"
    if ! grep -qw amx_bf16 /proc/cpuinfo; then
        echo "cpu: no AMX-BF16 on this host, CPU step skipped" | tee -a "$OUT/env.txt"
        return
    fi
    for t in test-gemm test-encoder-precision; do
        M3_TEST_DATA="$here/tests/data" run_m3 timeout 240 .gl/bin/$t >"$OUT/cpu-$t.log" 2>&1
        rc=$?
        echo "cpu $t: exit $rc ($(grep 'bf16-amx[^-]' "$OUT/cpu-$t.log" | grep -vc 'not ') lines on bf16-amx)"
        cpu_tests_json="$cpu_tests_json${cpu_tests_json:+, }\"$t\": $rc"
    done
    run_m3 timeout 60 .gl/bin/peak-flops >"$OUT/cpu-peak-flops.log" 2>&1
    run_m3 timeout 120 .gl/bin/bench-gemm 0.5 bf16 >"$OUT/cpu-bench-gemm.log" 2>&1
    echo "cpu peak-flops, bench-gemm: done"
    for round in 1 2 3; do
        for k in bf16-amx bf16-avx512; do
            M3_GEMM_KERNEL=$k run_m3 timeout 120 .gl/bin/m3 bench --backend cpu --precision bf16 \
                --shapes 1x16,8x128,4x512 --seconds 2 --json >>"$OUT/cpu-m3-$k.jsonl" 2>>"$OUT/cpu-m3.err"
        done
    done
    echo "cpu m3 bench: done"
}

# The device name m3 sees (empty when it sees none).
probe() {
    run_m3 .gl/bin/m3 bench --backend vulkan --model tests/data/m3-tiny --shapes 1x16 --seconds 0 \
        --json >"$OUT/probe.log" 2>&1
    sed -n 's/.*"device": "\([^"]*\)".*/\1/p' "$OUT/probe.log" | head -n 1
}

run() {
    OUT=${OUT:-$here/tools/.bench/gpu}
    mkdir -p "$OUT" || exit 1
    [ -x .gl/bin/m3 ] || { echo "bench-gpu: no .gl/bin/m3: run 'tools/bench-gpu.sh stage' on the build machine" >&2; exit 1; }
    rm -rf .gl/root && mkdir -p .gl/root
    for deb in .gl/*.deb; do
        [ -e "$deb" ] && { unpack_deb "$deb" .gl/root || echo "bench-gpu: cannot unpack $deb" >&2; }
    done
    m3_libs="$here/.gl/root/usr/lib/x86_64-linux-gnu:$here/.gl/root/lib/x86_64-linux-gnu"
    {
        echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        uname -a
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
    } >"$OUT/env.txt"

    cpu_tests_json=""
    [ "${SKIP_CPU:-0}" = 1 ] || cpu_amx

    device=$(probe)
    case "$device" in
    "" | *llvmpipe*)
        # The loader did not find the NVIDIA driver by itself: point it at the ICD.
        for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json \
            /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
            if [ -f "$icd" ]; then
                export VK_DRIVER_FILES="$icd" VK_ICD_FILENAMES="$icd"
                echo "VK_DRIVER_FILES=$icd" >>"$OUT/env.txt"
                device=$(probe)
                break
            fi
        done ;;
    esac
    echo "device: ${device:-none}" | tee -a "$OUT/env.txt"
    [ -n "$device" ] || { echo "bench-gpu: no Vulkan device (see $OUT/probe.log)" >&2; exit 1; }

    tests_json=""
    if [ "${SKIP_TESTS:-0}" != 1 ]; then
        for t in ${TESTS:-test-vulkan-coopmat test-vulkan-ops test-vulkan-replay test-vulkan-encoder}; do
            M3_TEST_DATA="$here/tests/data" run_m3 timeout 150 .gl/bin/$t >"$OUT/$t.log" 2>&1
            rc=$?
            echo "$t: exit $rc"
            tests_json="$tests_json${tests_json:+, }\"$t\": $rc"
        done
    fi

    shapes_arg=""
    [ -n "${SHAPES:-}" ] && shapes_arg="--shapes $SHAPES"
    [ -n "${MODEL:-}" ] && shapes_arg="$shapes_arg --model $MODEL"
    run_m3 timeout 300 .gl/bin/m3 bench --backend vulkan --json --seconds "${SECONDS_PER_SHAPE:-2}" \
        $shapes_arg >"$OUT/m3-vulkan.jsonl" 2>"$OUT/m3-vulkan.err"
    echo "m3 bench: exit $?"
    if grep -q coopmat "$OUT/m3-vulkan.jsonl"; then
        M3_VULKAN_COOPMAT=0 run_m3 timeout 300 .gl/bin/m3 bench --backend vulkan --json \
            --seconds "${SECONDS_PER_SHAPE:-2}" $shapes_arg >"$OUT/m3-vulkan-tiled.jsonl" \
            2>"$OUT/m3-vulkan-tiled.err"
        echo "m3 bench, tiled GEMM: exit $?"
    fi
    if [ "${SKIP_TORCH:-0}" != 1 ]; then
        timeout 300 python3 tools/anchor/bench_torch.py "$OUT/torch.json" >"$OUT/torch.log" 2>&1
        echo "bench_torch.py: exit $?"
    fi

    python3 - "$OUT" "$device" "{$tests_json}" "{$cpu_tests_json}" <<'EOF'
import json, os, sys
out, device, tests, cpu_tests = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
def rows(name):
    path = os.path.join(out, name)
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip().startswith("{")]
m3, tiled = rows("m3-vulkan.jsonl"), rows("m3-vulkan-tiled.jsonl")
torch = {}
if os.path.exists(os.path.join(out, "torch.json")):
    torch = json.load(open(os.path.join(out, "torch.json")))
tr = {(r["batch"], r["seq"]): r for r in torch.get("rows", [])}
ti = {(r["batch"], r["seq"]): r for r in tiled}
compare = []
for r in m3:
    key = (r["batch"], r["seq"])
    row = {"batch": r["batch"], "seq": r["seq"], "m3_ms": r["ms"], "m3_tokens_per_s": r["tokens_per_s"],
           "m3_device_peak_mib": r.get("device_peak_mib")}
    if key in ti:
        row["m3_tiled_tokens_per_s"] = ti[key]["tokens_per_s"]
    if key in tr:
        row["torch_ms"] = tr[key]["ms_per_batch"]
        row["torch_tokens_per_s"] = tr[key]["tokens_per_s"]
        row["torch_peak_mem_gib"] = tr[key].get("peak_mem_gib")
        row["m3_over_torch"] = round(r["tokens_per_s"] / tr[key]["tokens_per_s"], 3)
    compare.append(row)
# The CPU step: per shape, each bf16 kernel's best and median tokens/s over the rounds.
cpu = {}
for k in ("bf16-amx", "bf16-avx512"):
    for r in rows("cpu-m3-%s.jsonl" % k):
        cpu.setdefault("%dx%d" % (r["batch"], r["seq"]), {}).setdefault(k, []).append(r["tokens_per_s"])
for shape, ks in cpu.items():
    for k, v in ks.items():
        v.sort()
        ks[k] = {"best": v[-1], "median": v[len(v) // 2], "rounds": len(v)}
summary = {"device": device, "kernels": m3[0].get("kernels") if m3 else None,
           "torch": {k: torch.get(k) for k in ("device", "torch", "dtype")}, "tests": tests,
           "compare": compare, "cpu_tests": cpu_tests, "cpu_bf16_tokens_per_s": cpu}
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1)
print(json.dumps(summary, indent=1))
EOF
}

case "${1:-run}" in
stage) shift; stage "$@" ;;
run) run ;;
*) echo "usage: tools/bench-gpu.sh [stage [BUILD] | run]" >&2; exit 2 ;;
esac
