#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Tokenizer benchmark (not a test): our tokenizer against Debian's spm_encode (sentencepiece) on a
# multilingual text built from this machine's gettext catalogues, one line per translated message.
# Reports MB/s for both and the ratio, then compares the ids line by line (spm ids mapped to the
# XLM-R convention: +1, unk -> 3, <s> ... </s>) and lists the lines that differ.
#
#   tools/bench-tokenizer.sh [BUILD_DIR] [MEGABYTES]     (defaults: build-tok, 20)
#
# Needs: gettext (msgunfmt), sentencepiece (spm_encode), python3; BUILD_DIR must contain
# tests/tokenizer/bench-tokenizer (ninja -C BUILD_DIR tests/tokenizer/bench-tokenizer).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

build=${1:-build-tok}
megabytes=${2:-20}
model=tests/data/m3-tiny/sentencepiece.bpe.model
bench=$build/tests/tokenizer/bench-tokenizer
work=$build/bench-tokenizer
mkdir -p "$work"
corpus=$work/corpus-${megabytes}MB.txt

for tool in msgunfmt spm_encode python3; do
    command -v "$tool" >/dev/null || { echo "bench-tokenizer: $tool is missing" >&2; exit 1; }
done
[[ -x $bench ]] || ninja -C "$build" tests/tokenizer/bench-tokenizer >/dev/null

# msgstr strings of every catalogue, in a fixed pseudo-random order of files (so that the first
# MEGABYTES hold many languages and domains), escapes undone, invalid UTF-8 dropped.
if [[ ! -s $corpus ]]; then
    echo "bench-tokenizer: building $corpus from /usr/share/locale" >&2
    limit=$((megabytes * 1000000))
    : >"$corpus.tmp"
    mapfile -t catalogues < <(for f in /usr/share/locale/*/LC_MESSAGES/*.mo; do
        printf '%s %s\n' "$(printf '%s' "$f" | md5sum | cut -c1-12)" "$f"
    done | sort | cut -d' ' -f2-)
    for f in "${catalogues[@]}"; do
        msgunfmt "$f" 2>/dev/null | awk '
            function flush() { if (in_str && s != "") print s; in_str = 0; s = "" }
            /^msgid / { flush(); next }
            /^msgstr/ { flush(); in_str = 1; sub(/^msgstr(\[[0-9]+\])? "/, ""); sub(/"$/, ""); s = $0; next }
            /^"/ { if (in_str) { sub(/^"/, ""); sub(/"$/, ""); s = s $0 } next }
            { flush() }
            END { flush() }' |
            sed -e 's/\\n/ /g; s/\\t/ /g; s/\\"/"/g; s/\\\\/\\/g' |
            grep -av '^Project-Id-Version\|^Content-Type:' | iconv -f UTF-8 -t UTF-8 -c >>"$corpus.tmp" || true
        [[ $(stat -c %s "$corpus.tmp") -ge $limit ]] && break
    done
    head -c "$limit" "$corpus.tmp" | sed '$d' >"$corpus" || true
    rm -f "$corpus.tmp"
fi
bytes=$(stat -c %s "$corpus")
lines=$(wc -l <"$corpus")
echo "corpus: $corpus, $bytes bytes, $lines lines" >&2

# Whole-process wall times (model load, reading and writing included) for both; best of 3.
best() {
    local best_t=999999 t
    for _ in 1 2 3; do
        local start=$(date +%s.%N)
        "$@"
        t=$(echo "$(date +%s.%N) - $start" | bc -l)
        best_t=$(echo "if ($t < $best_t) $t else $best_t" | bc -l)
    done
    echo "$best_t"
}
t_spm=$(best sh -c "spm_encode --model '$model' --output_format=id <'$corpus' >'$work/spm.ids'")
t_m3=$(best sh -c "'$bench' '$model' '$corpus' '$work/m3.ids' 2>'$work/m3.log'")
cat "$work/m3.log" >&2
python3 - "$bytes" "$t_spm" "$t_m3" <<'PY'
import sys
b, ts, tm = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"spm_encode: {ts:.2f} s, {b / 1e6 / ts:.2f} MB/s")
print(f"m3:         {tm:.2f} s, {b / 1e6 / tm:.2f} MB/s")
print(f"ratio:      {ts / tm:.2f}x")
PY

# Line-by-line comparison.
python3 - "$corpus" "$work/spm.ids" "$work/m3.ids" <<'PY'
import sys
texts = open(sys.argv[1], encoding='utf-8', newline='\n').read().split('\n')
spm = open(sys.argv[2]).read().split('\n')
m3 = open(sys.argv[3]).read().split('\n')
def mapped(line):
    ids = [int(x) for x in line.split()]
    return [0] + [3 if i == 0 else i + 1 for i in ids] + [2]
diff = 0
n = min(len(texts), len(spm), len(m3)) - 1
for k in range(n):
    want = mapped(spm[k])
    got = [int(x) for x in m3[k].split()]
    if want != got:
        diff += 1
        special = any(t in texts[k] for t in ('<s>', '</s>', '<pad>', '<unk>', '<mask>'))
        print(f"line {k + 1}{' [literal special token]' if special else ''}: {texts[k]!r}")
        print(f"  spm_encode: {want}")
        print(f"  m3:         {got}")
print(f"{n} lines compared, {diff} differ")
PY
