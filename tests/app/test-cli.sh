#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The m3 command line's stable interfaces, driven as a user (or another program) drives them:
# JSON lines in and out, exit statuses, one-line errors.
# Usage: test-cli.sh PATH/TO/m3 TESTS_DATA_DIR
set -euo pipefail
m3=$1
data=$2
model=$data/m3-tiny
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
pass() { echo "ok: $*"; }

# tokenize: every reference case, full length and cut to 16 ids.
jq -c '.cases[].text' "$data/tokenize_public.json" >"$tmp/texts"
jq -c '.cases[].ids' "$data/tokenize_public.json" >"$tmp/ids.expected"
jq -c '.cases[].ids_max16' "$data/tokenize_public.json" >"$tmp/ids16.expected"
"$m3" tokenize --model "$model" <"$tmp/texts" | jq -c . >"$tmp/ids.got"
"$m3" tokenize --model "$model" --max-length 16 <"$tmp/texts" | jq -c . >"$tmp/ids16.got"
n=$(wc -l <"$tmp/texts")
if cmp -s "$tmp/ids.expected" "$tmp/ids.got"; then pass "tokenize: $n cases"; else fail "tokenize differs"; diff "$tmp/ids.expected" "$tmp/ids.got" | head -5; fi
if cmp -s "$tmp/ids16.expected" "$tmp/ids16.got"; then pass "tokenize --max-length 16"; else fail "tokenize --max-length 16 differs"; fi

# embed: the short reference cases; shapes, norms and lexical weights against the reference (fp32:
# exact to 1e-4; the default, auto, may be bf16, whose bars test-encoder-precision checks).
jq -c '.cases[] | select(.tokens < 100) | .text' "$data/m3_public.json" >"$tmp/etexts"
jq -c '[.cases[] | select(.tokens < 100)]' "$data/m3_public.json" >"$tmp/ecases"
"$m3" embed --model "$model" --precision fp32 <"$tmp/etexts" >"$tmp/emb"
ne=$(wc -l <"$tmp/etexts")
[[ $(wc -l <"$tmp/emb") -eq $ne ]] || fail "embed wrote $(wc -l <"$tmp/emb") lines for $ne texts"
bad=$(jq -s --slurpfile ref "$tmp/ecases" '
  [ range(0; length) as $i | .[$i] as $e | $ref[0][$i] as $r
    | select(
        ($e.tokens != $r.tokens)
        or (($e.dense | length) != 128)
        or ((($e.dense | map(. * .) | add) - 1 | fabs) > 1e-4)
        or (($e.colbert | length) != $r.tokens - 1)
        or ([ $e.colbert[] | (map(. * .) | add) - 1 | fabs | select(. > 1e-4) ] | length > 0)
        or (($e.sparse | keys) != ($r.lexical_weights | keys))
        or ([ $r.lexical_weights | to_entries[] | ($e.sparse[.key] - .value) | fabs | select(. > 1e-4) ] | length > 0))
    | $i ] | length' "$tmp/emb")
if [[ $bad == 0 ]]; then pass "embed: $ne texts match the reference (tokens, norms, lexical weights)"; else fail "embed: $bad texts differ from the reference"; fi

# --outputs keeps only what was asked for.
echo '"hello"' | "$m3" embed --model "$model" --outputs sparse | jq -e 'has("sparse") and (has("dense") | not) and (has("colbert") | not)' >/dev/null \
    && pass "embed --outputs sparse" || fail "embed --outputs sparse"

# Errors: exit status and one line naming the problem.
expect_error() {  # expect_error STATUS PATTERN -- command...
    local want=$1 pattern=$2
    shift 3
    local got=0
    "$@" >"$tmp/out" 2>"$tmp/err" </dev/stdin || got=$?
    if [[ $got -ne $want ]]; then fail "'$*' exited $got, expected $want"; return; fi
    if [[ $(wc -l <"$tmp/err") -ne 1 ]] || ! grep -q -- "$pattern" "$tmp/err"; then
        fail "'$*': expected one line matching '$pattern' on stderr, got: $(cat "$tmp/err")"; return
    fi
    pass "'$*' -> $want: $(cat "$tmp/err")"
}
expect_error 1 "$tmp/nowhere" -- "$m3" tokenize --model "$tmp/nowhere" </dev/null
expect_error 1 "$tmp/nowhere" -- "$m3" embed --model "$tmp/nowhere" </dev/null
printf '"ok"\nnot json\n' | expect_error 1 "line 2" -- "$m3" tokenize --model "$model"
printf '"a" "b"\n' | expect_error 1 "line 1" -- "$m3" embed --model "$model"
expect_error 2 "max-length" -- "$m3" tokenize --model "$model" --max-length 1 </dev/null
expect_error 2 "unknown command" -- "$m3" frobnicate </dev/null
expect_error 1 "backend" -- "$m3" embed --model "$model" --backend nosuch </dev/null
expect_error 2 "precision" -- "$m3" embed --model "$model" --precision fp16 </dev/null
# --precision bf16: dense vectors within cosine 0.9995 of fp32's.
"$m3" embed --model "$model" --precision bf16 --outputs dense <"$tmp/etexts" >"$tmp/emb16"
bad=$(jq -s --slurpfile f "$tmp/emb" '[range(0; length) as $i | .[$i].dense as $a | $f[$i].dense as $b
    | ([range(0; $a | length) | $a[.] * $b[.]] | add) | select(. < 0.9995)] | length' "$tmp/emb16")
[[ $bad == 0 ]] && pass "embed --precision bf16: dense cosine >= 0.9995 against fp32" \
    || fail "embed --precision bf16: $bad texts below cosine 0.9995"
# --precision int8: dense vectors within cosine 0.999 of fp32's (its bar, test-encoder-precision).
"$m3" embed --model "$model" --precision int8 --outputs dense <"$tmp/etexts" >"$tmp/emb8"
bad=$(jq -s --slurpfile f "$tmp/emb" '[range(0; length) as $i | .[$i].dense as $a | $f[$i].dense as $b
    | ([range(0; $a | length) | $a[.] * $b[.]] | add) | select(. < 0.999)] | length' "$tmp/emb8")
[[ $bad == 0 ]] && pass "embed --precision int8: dense cosine >= 0.999 against fp32" \
    || fail "embed --precision int8: $bad texts below cosine 0.999"
for cmd in tokenize embed bench; do
    "$m3" "$cmd" --help | grep -q "usage: m3 $cmd" && pass "$cmd --help" || fail "$cmd --help"
done
"$m3" --help | grep -q tokenize && pass "--help" || fail "--help"
"$m3" tokenize 2>/dev/null && fail "tokenize without --model succeeded" || pass "tokenize without --model fails"

# bench on the tiny model: one JSON line per shape with a positive rate.
"$m3" bench --model "$model" --shapes 1x16,2x40 --seconds 0 --threads 2 --json >"$tmp/bench"
[[ $(jq -s 'length == 2 and all(.tokens_per_s > 0 and .threads == 2)' "$tmp/bench") == true ]] \
    && pass "bench --json" || fail "bench output: $(cat "$tmp/bench")"
"$m3" bench --model "$model" --shapes 1x16 --seconds 0 --precision bf16 --json >"$tmp/bench16"
[[ $(jq -r '.precision + " " + .kernels' "$tmp/bench16") == "bf16 gemm bf16-"* ]] \
    && pass "bench --precision bf16" || fail "bench --precision bf16: $(cat "$tmp/bench16")"

"$m3" bench --model "$model" --shapes 1x16 --seconds 0 --precision int8 --json >"$tmp/bench8"
[[ $(jq -r '.precision + " " + .kernels' "$tmp/bench8") == "int8 gemm int8-"* ]] \
    && pass "bench --precision int8" || fail "bench --precision int8: $(cat "$tmp/bench8")"

# File names that are not UTF-8 (a name may hold any bytes but '/' and NUL): the JSON outputs stay
# valid JSON, each such byte as Python's surrogateescape \udcXX, so the exact name comes back.
mkdir -p "$tmp/names"
odd=$tmp/names/$(printf 'bad\xffname "q".txt')
printf 'whales sing in the deep ocean\n' >"$odd"
"$m3" index --quiet --model "$model" --index "$tmp/nidx" "$tmp/names"
check_names() {  # stdin: JSON lines; a "path" (or a result's) must name the odd file exactly (not jq: it
                 # turns lone surrogates into U+FFFD)
    python3 -c '
import json, os, sys
docs = [json.loads(l) for l in sys.stdin.buffer.read().splitlines() if l.strip()]
paths = [r.get("path") for d in docs for r in d.get("results", [d])]
sys.exit(0 if any(p and os.path.exists(os.fsencode(p)) and b"\xff" in os.fsencode(p) for p in paths) else 1)'
}
"$m3" status --index "$tmp/nidx" --files --json | check_names && pass "status --json: a name that is not UTF-8" \
    || fail "status --json with a name that is not UTF-8: $("$m3" status --index "$tmp/nidx" --files --json | head -c 300)"
"$m3" search --model "$model" --index "$tmp/nidx" --json whales | check_names \
    && pass "search --json: a name that is not UTF-8" || fail "search --json with a name that is not UTF-8"
"$m3" extract --json "$odd" | check_names && pass "extract --json: a name that is not UTF-8" \
    || fail "extract --json with a name that is not UTF-8"

expect_error 2 "the query is empty" -- "$m3" search --model "$model" --index "$tmp/nidx" " " </dev/null
expect_error 1 "the model path is empty" -- "$m3" embed --model "" </dev/null

# A FIFO is not a document: an error at once, not an open that waits for a writer forever.
mkfifo "$tmp/names/pipe"
expect_error 1 "not a regular file" -- timeout 20 "$m3" extract "$tmp/names/pipe" </dev/null
expect_error 1 "not a regular file" -- timeout 20 "$m3" similar --model "$model" --index "$tmp/nidx" "$tmp/names/pipe" </dev/null

[[ $fails -eq 0 ]] || { echo "$fails failure(s)" >&2; exit 1; }
