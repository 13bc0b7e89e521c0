#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The one-file model through the command line: m3 model convert / verify, m3 tokenize --model FILE,
# m3 selftest (exit 0 with PASS lines on the folder and on both files; non-zero against a wrong
# reference), and clear one-line errors for damaged files.
# Usage: test-model-file-cli.sh PATH/TO/m3 TESTS_DATA_DIR
set -euo pipefail
m3=$1
data=$2
model=$data/m3-tiny
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
pass() { echo "ok: $*"; }

# convert: prints the file, writes it whole (no .tmp left).
out=$("$m3" model convert "$model" "$tmp/tiny.gguf" 2>"$tmp/err") || fail "convert: $(cat "$tmp/err")"
[[ $out == "$tmp/tiny.gguf" && -s $tmp/tiny.gguf && ! -e $tmp/tiny.gguf.tmp ]] && pass "convert (f16)" || fail "convert output"
"$m3" model convert --dtype f32 "$model" "$tmp/tiny32.gguf" >/dev/null 2>&1 && pass "convert --dtype f32" || fail "convert f32"
if "$m3" model convert --dtype q4 "$model" "$tmp/x.gguf" 2>/dev/null; then fail "--dtype q4 accepted"; else [[ $? -eq 2 ]] && pass "--dtype q4 is a usage error" || fail "--dtype q4 status"; fi
if "$m3" model convert "$data/nowhere" "$tmp/x.gguf" 2>"$tmp/err"; then fail "convert of a missing folder"; else grep -q "nowhere" "$tmp/err" && pass "convert of a missing folder names it" || fail "convert error: $(cat "$tmp/err")"; fi

# verify: OK lines, exit 0.
"$m3" model verify "$tmp/tiny.gguf" | grep -q "OK: model file, checksum sha256:" && pass "verify file" || fail "verify file"
"$m3" model verify "$model" | grep -q "OK: model folder" && pass "verify folder" || fail "verify folder"
# A folder with a SHA256SUMS manifest: checked, and a damaged file named.
mkdir "$tmp/folder"
cp "$model"/* "$tmp/folder/"
(cd "$tmp/folder" && sha256sum config.json sparse_linear.pt colbert_linear.pt sentencepiece.bpe.model >SHA256SUMS)
"$m3" model verify "$tmp/folder" | grep -q "4 files match SHA256SUMS" && pass "verify folder with SHA256SUMS" || fail "verify SHA256SUMS"
printf 'x' >>"$tmp/folder/sentencepiece.bpe.model"
if "$m3" model verify "$tmp/folder" 2>"$tmp/err"; then fail "verify missed a damaged folder file"; else grep -q "sentencepiece.bpe.model: checksum mismatch" "$tmp/err" && pass "verify names the damaged folder file" || fail "verify folder error: $(cat "$tmp/err")"; fi

# A flipped bit in the tensor data: verify fails naming the file; a truncated file does not open.
size=$(stat -c %s "$tmp/tiny.gguf")
cp "$tmp/tiny.gguf" "$tmp/flip.gguf"
printf '\xff' | dd of="$tmp/flip.gguf" bs=1 seek=$((size - 4096)) conv=notrunc status=none
if "$m3" model verify "$tmp/flip.gguf" 2>"$tmp/err"; then fail "verify missed a flipped bit"; else grep -q "flip.gguf: checksum mismatch" "$tmp/err" && pass "verify: flipped bit reported" || fail "verify message: $(cat "$tmp/err")"; fi
head -c $((size / 2)) "$tmp/tiny.gguf" >"$tmp/trunc.gguf"
if echo '"x"' | "$m3" tokenize --model "$tmp/trunc.gguf" >/dev/null 2>"$tmp/err"; then fail "a truncated file opened"; else grep -q "trunc.gguf: .*truncated" "$tmp/err" && pass "truncated file: $(cut -c1-90 "$tmp/err")..." || fail "truncation message: $(cat "$tmp/err")"; fi

# tokenize --model FILE == --model DIR on every reference text.
jq -c '.cases[].text' "$data/tokenize_public.json" >"$tmp/texts"
"$m3" tokenize --model "$model" <"$tmp/texts" >"$tmp/ids.dir"
"$m3" tokenize --model "$tmp/tiny.gguf" <"$tmp/texts" >"$tmp/ids.file"
cmp -s "$tmp/ids.dir" "$tmp/ids.file" && pass "tokenize --model FILE: $(wc -l <"$tmp/texts") texts as from the folder" || fail "tokenize from the file differs"

# embed --model FILE (f32) == --model DIR, byte for byte.
jq -c '.cases[] | select(.tokens < 40) | .text' "$data/m3_public.json" >"$tmp/etexts"
"$m3" embed --model "$model" --threads 2 <"$tmp/etexts" >"$tmp/emb.dir"
"$m3" embed --model "$tmp/tiny32.gguf" --threads 2 <"$tmp/etexts" >"$tmp/emb.file"
cmp -s "$tmp/emb.dir" "$tmp/emb.file" && pass "embed --model FILE (f32) identical to the folder" || fail "embed from the f32 file differs"

# convert --precision: a model file given packed weights in place (SRC = DST); embed in that precision
# gives the plain file's output byte for byte, using them in place (M3_LOG=debug says so).
cp "$tmp/tiny.gguf" "$tmp/tiny-packed.gguf"
for p in bf16 fp32 int8; do
  "$m3" model convert --precision $p "$tmp/tiny-packed.gguf" "$tmp/tiny-packed.gguf" >/dev/null 2>"$tmp/err" || fail "convert --precision $p: $(cat "$tmp/err")"
  "$m3" embed --model "$tmp/tiny.gguf" --precision $p --threads 2 <"$tmp/etexts" >"$tmp/emb.plain"
  M3_LOG=debug "$m3" embed --model "$tmp/tiny-packed.gguf" --precision $p --threads 2 <"$tmp/etexts" >"$tmp/emb.packed" 2>"$tmp/err"
  grep -q "using the packed $p weights in place" "$tmp/err" && pass "embed --precision $p uses the packed weights in place" || fail "packed $p not used: $(cat "$tmp/err")"
  cmp -s "$tmp/emb.plain" "$tmp/emb.packed" && pass "embed --precision $p: packed file identical to the plain file" || fail "packed $p output differs"
done
if "$m3" model convert --precision int4 "$model" "$tmp/x.gguf" 2>/dev/null; then fail "--precision int4 accepted"; else [[ $? -eq 2 ]] && pass "--precision int4 is a usage error" || fail "--precision int4 status"; fi

# selftest: exit 0 and PASS lines on the folder and both files.
for m in "$model" "$tmp/tiny.gguf" "$tmp/tiny32.gguf"; do
  if "$m3" selftest --model "$m" --reference "$data" --threads 2 >"$tmp/st" 2>&1; then
    npass=$(grep -c '^PASS ' "$tmp/st" || true)
    grep -q '^FAIL' "$tmp/st" && fail "selftest $m printed FAIL with exit 0" || pass "selftest $(basename "$m"): exit 0, $npass PASS lines"
  else
    fail "selftest $m: exit $?"; grep FAIL "$tmp/st" | head -5
  fi
done
# A deliberately wrong reference: one dense score and one tokenizer id changed.
mkdir "$tmp/ref"
cp "$data/m3_public.safetensors" "$tmp/ref/"
jq '.scores[0].dense += 0.01' "$data/m3_public.json" >"$tmp/ref/m3_public.json"
jq '.cases[5].ids[1] += 1' "$data/tokenize_public.json" >"$tmp/ref/tokenize_public.json"
if "$m3" selftest --model "$model" --reference "$tmp/ref" --threads 2 >"$tmp/st" 2>&1; then
  fail "selftest passed against a wrong reference"
else
  [[ $(grep -c '^FAIL' "$tmp/st") -ge 3 ]] && pass "selftest against a wrong reference: exit non-zero, $(grep -c '^FAIL' "$tmp/st") FAIL lines" || fail "selftest wrong reference output"
fi
if "$m3" selftest --model "$model" >/dev/null 2>"$tmp/err"; then fail "selftest of the tiny model without --reference"; else grep -q "not the real BGE-M3" "$tmp/err" && pass "selftest asks for --reference" || fail "selftest message"; fi

# The real model's checks (FlagEmbedding's published values, docs bge-m3.md) without the 2.3 GB model:
# --published runs them on the tiny model. Every one of the 27 checks must run and print its
# published expected value; they fail (other weights), so the exit status is 1, never a crash.
for m in "$model" "$tmp/tiny.gguf"; do
  rc=0
  "$m3" selftest --model "$m" --published --threads 2 >"$tmp/st" 2>&1 || rc=$?
  n=$(grep -c -E '^(PASS|FAIL)  ' "$tmp/st" || true)
  missing=""
  for v in 'expected \[0, 35378, 6661, 38, 2\]' 'expected \[0, 581, 63773, 119455, 6, 147797' \
           'expected 0.6259035 ' 'expected 0.34749585 ' 'expected 0.349868 ' 'expected 0.6782462 ' \
           '"What" in s1\[0\] +expected 0.08362077 ' '"is" in s1\[0\] +expected 0.081469566 ' \
           '"B" in s1\[0\] +expected 0.12964639 ' '"GE" in s1\[0\] +expected 0.25186998 ' \
           '"M" in s1\[0\] +expected 0.17001738 ' '"3" in s1\[0\] +expected 0.26957875 ' '"?" in s1\[0\] +expected 0.040755156 ' \
           'expected 0.195544485 ' 'expected 0.00880391989 ' 'expected \(8, 1024\) \(30, 1024\)' \
           'expected 0.779666245 ' 'expected 0.462117791 ' 'id 183497 .*expected 0.32012847 ' 'id 1733 .*expected 0.18622744 '; do
    grep -q -E "$v" "$tmp/st" || missing="$missing [$v]"
  done
  if [[ $rc -eq 1 && $n -eq 27 && -z $missing ]] && tail -1 "$tmp/st" | grep -q '^FAIL: [0-9]* passed, [0-9]* failed$'; then
    pass "selftest --published on $(basename "$m"): the 27 published checks ran (exit 1: other weights)"
  else
    fail "selftest --published on $m: exit $rc, $n check lines, missing:$missing"; tail -5 "$tmp/st"
  fi
done
grep -q 'within 2e-03 absolute' "$tmp/st" && pass "selftest --published on an f16 file: fp16 tolerance 2e-3" || fail "selftest f16 tolerance"
if "$m3" selftest --model "$model" --published --reference "$data" >/dev/null 2>&1; then fail "--published with --reference accepted"; else [[ $? -eq 2 ]] && pass "--published with --reference is a usage error" || fail "--published --reference status"; fi

if [[ $fails -gt 0 ]]; then echo "$fails failures" >&2; exit 1; fi
echo "all passed"
