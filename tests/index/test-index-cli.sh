#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# m3 index / search / similar / status / check as a user drives them, on a generated multilingual
# corpus with the tiny model: results, re-indexing after changes, SIGKILL at random moments,
# disk full, damaged index files, another model, --rebuild.
# Usage: test-index-cli.sh PATH/TO/m3 TESTS_DATA_DIR [BACKEND]
# BACKEND (default cpu) encodes everything: the suite runs once on the CPU and once on Vulkan
# (lavapipe here), skipping (77) with the reason when the backend has no device.
set -uo pipefail
m3=$1
data=$2
backend=${3:-cpu}
model=$data/m3-tiny
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
pass() { echo "ok [${SECONDS}s]: $*"; }
T=(--threads 1 --backend "$backend")
if [[ $backend != cpu ]] && ! probe=$(echo '"probe"' | "$m3" embed --backend "$backend" --model "$model" 2>&1 >/dev/null); then
  echo "SKIP: backend $backend is not usable here: $probe"
  exit 77
fi

# The corpus: several languages and encodings, a folder tree, a symlink out of the root.
docs=$tmp/docs
mkdir -p "$docs/a/b" "$tmp/outside"
sent=("The tax office sent a letter about the income tax return."
      "Die Steuererklärung muss bis Ende Mai beim Finanzamt sein."
      "세무서에서 소득세 신고에 관한 편지를 보냈습니다."
      "Le chat dort sur le canapé toute la journée."
      "El gato duerme en el sofá todo el día."
      "Кошка спит на диване весь день."
      "猫は一日中ソファで寝ています。"
      "The compiler builds the program from its sources.")
for i in $(seq 0 23); do
  f=$docs/doc$i.txt
  [[ $((i % 3)) -eq 1 ]] && f=$docs/a/doc$i.md
  [[ $((i % 5)) -eq 2 ]] && f=$docs/a/b/doc$i.c
  : >"$f"
  for j in $(seq 0 $((3 + i % 7))); do printf '%s ' "${sent[$(((i + j * (i % 3 == 0 ? 1 : 0)) % 8))]}" >>"$f"; done
  echo >>"$f"
done
printf '\xff\xfeH\x00e\x00l\x00l\x00o\x00 \x00w\x00o\x00r\x00l\x00d\x00\n\x00' >"$docs/utf16.txt"
printf 'Caf\xe9 cr\xe8me br\xfbl\xe9e, na\xefve r\xe9sum\xe9.\n' >"$docs/latin1.txt"
printf '\x00\x01\x02binary' >"$docs/blob.bin"
echo "secret outside the root" >"$tmp/outside/secret.txt"
ln -s "$tmp/outside" "$docs/link"
touch -d '2001-02-03 04:05:06' "$docs/doc0.txt"
atime_before=$(stat -c %X "$docs/doc0.txt")

idx=$tmp/idx
run_index() { "$m3" index "${T[@]}" --quiet --index "$1" --model "$model" --chunk-tokens 32 --overlap 8 "${@:2}"; }

# ---- index, status, check -------------------------------------------------------------------
if run_index "$idx" --exact "$docs"; then pass "index"; else fail "index exited $?"; fi
[[ $(stat -c %a "$idx") == 700 ]] && pass "index folder mode 0700" || fail "index folder mode $(stat -c %a "$idx")"
nfiles=$("$m3" status --index "$idx" --json | jq .files)
[[ $nfiles -eq 26 ]] && pass "status: 26 files" || fail "status: $nfiles files, expected 26"
"$m3" status --index "$idx" --files --json | tail -n +2 | jq -r .path | grep -q secret && fail "followed a symlink out of the root" || pass "symlinks not followed"
[[ $(stat -c %X "$docs/doc0.txt") == "$atime_before" ]] && [[ $(stat -c %y "$docs/doc0.txt") == 2001-02-03* ]] && pass "file times untouched" || fail "file times changed"
"$m3" check --index "$idx" >/dev/null && pass "check" || fail "check failed on a fresh index"

# ---- search ---------------------------------------------------------------------------------
out=$("$m3" search "${T[@]}" --index "$idx" --model "$model" --json --limit 5 "Finanzamt Steuererklärung")
if jq -e '.results | length == 5 and all(.[]; (.path|type)=="string" and (.score|type)=="number" and (.dense|type)=="number" and (.sparse|type)=="number" and (.colbert|type)=="number" and (.start|type)=="number" and (.end|type)=="number" and (.snippet|type)=="string")' <<<"$out" >/dev/null; then
  pass "search --json shape"; else fail "search --json: $out"; fi
jq -e '[.results[].score] | . == (sort | reverse)' <<<"$out" >/dev/null && pass "results sorted by score" || fail "results not sorted"
jq -e '[.results[].path] | length == (unique | length)' <<<"$out" >/dev/null && pass "one result per file" || fail "duplicate files"
jq -e '.results | all(.[]; ((0.4 * .dense + 0.2 * .sparse + 0.4 * .colbert) - .score | fabs) < 1e-5)' <<<"$out" >/dev/null && pass "hybrid = 0.4,0.2,0.4 weighted mean" || fail "hybrid score formula"
# The result's byte range holds the snippet's first word (UTF-8 files: exact offsets).
read -r p s e snip < <(jq -r '.results[0] | "\(.path) \(.start) \(.end) \(.snippet)"' <<<"$out")
w=$(sed 's/^…//' <<<"$snip" | awk '{print $1}')
dd if="$p" bs=1 skip="$s" count=$((e - s)) 2>/dev/null | grep -qF -- "$w" && pass "byte range holds the snippet" || fail "byte range $s-$e of $p lacks '$w'"
for mode in dense sparse colbert; do
  o=$("$m3" search "${T[@]}" --index "$idx" --model "$model" --json --mode $mode "tax letter")
  jq -e --arg m $mode '.results | length > 0 and all(.[]; (.[$m] - .score | fabs) < 1e-5)' <<<"$o" >/dev/null && pass "--mode $mode" || fail "--mode $mode: $o"
done
o=$("$m3" search "${T[@]}" --index "$idx" --model "$model" --json --weights 1,0,0 "tax letter")
jq -e '.results | all(.[]; (.dense - .score | fabs) < 1e-5)' <<<"$o" >/dev/null && pass "--weights 1,0,0" || fail "--weights"
"$m3" search "${T[@]}" --index "$idx" --model "$model" --weights 1,x "q" 2>/dev/null; [[ $? -eq 2 ]] && pass "bad --weights is a usage error" || fail "bad --weights"

# ---- similar --------------------------------------------------------------------------------
o=$("$m3" similar --index "$idx" --json --limit 5 "$docs/doc0.txt")
jq -e --arg p "$docs/doc0.txt" '.results | length > 0 and all(.[]; .path != $p)' <<<"$o" >/dev/null && pass "similar excludes the file" || fail "similar: $o"
"$m3" similar --index "$idx" "$docs/nope.txt" 2>/dev/null && fail "similar of a missing file" || pass "similar: a missing file is an error"
# A file outside the index is encoded first: one sentence that is a whole chunk of indexed files
# finds such a chunk first (identical text, so dense ≈ 1 up to int8 rounding).
echo "${sent[0]}" >"$tmp/copy-of-doc0.txt"
err=$(M3_MODEL= "$m3" similar --index "$idx" "$tmp/copy-of-doc0.txt" 2>&1)
[[ $? -eq 1 ]] && grep -q "is not indexed: give --model" <<<"$err" && pass "similar: unindexed file without a model says so" || fail "similar unindexed without model: $err"
o=$("$m3" similar --backend "$backend" --index "$idx" --model "$model" --json --limit 3 "$tmp/copy-of-doc0.txt")
jq -e --arg s "${sent[0]}" '.results[0].snippet == $s and .results[0].dense > 0.999' <<<"$o" >/dev/null && pass "similar: an unindexed file is encoded first" || fail "similar unindexed: $o"

# ---- re-index after modify / delete / add ---------------------------------------------------
before=$("$m3" status --index "$idx" --json | jq .chunks)
msg=$(run_index "$idx" "$docs" 2>&1; "$m3" index "${T[@]}" --index "$idx" --model "$model" --chunk-tokens 32 --overlap 8 "$docs" 2>&1)
grep -q "0 indexed" <<<"$msg" && pass "unchanged files skipped" || fail "re-index of unchanged files: $msg"
touch "$docs/a/doc1.md"
msg=$("$m3" index "${T[@]}" --index "$idx" --model "$model" --chunk-tokens 32 --overlap 8 "$docs" 2>&1)
grep -q "0 indexed" <<<"$msg" && pass "touched but identical file: hash matches, not re-encoded" || fail "touch: $msg"
echo "Ein völlig neuer Satz über Bahnhöfe und Züge." >"$docs/a/doc1.md"
rm "$docs/doc3.txt"
echo "Brand new text about volcanoes." >"$docs/new.txt"
msg=$("$m3" index "${T[@]}" --index "$idx" --model "$model" --chunk-tokens 32 --overlap 8 "$docs" 2>&1)
grep -q "2 indexed.*1 removed" <<<"$msg" && pass "modified + added re-indexed, deleted dropped" || fail "re-index: $msg"
"$m3" status --index "$idx" --files --json | grep -q '/doc3.txt"' && fail "deleted file still indexed" || pass "deleted file gone"
"$m3" check --index "$idx" >/dev/null && pass "check after re-index" || fail "check after re-index"
o=$("$m3" search "${T[@]}" --index "$idx" --model "$model" --json --limit 3 --mode sparse "volcanoes")
jq -e --arg p "$docs/new.txt" '.results[0].path == $p' <<<"$o" >/dev/null && pass "new file found" || fail "new file not found: $o"

# ---- a deleted PATH: its files are dropped -----------------------------------------------------
mkdir -p "$tmp/gone/sub"
echo "A kept file about owls in the barn." >"$tmp/gone/sub/owls.txt"
run_index "$tmp/idx-gone" "$tmp/gone" || fail "index of the folder to delete"
rm -rf "$tmp/gone"
# Relative, as typed: realpath cannot resolve a deleted path, so it is made absolute by its name.
m3_abs=$(realpath "$m3")
msg=$(cd "$tmp" && "$m3_abs" index "${T[@]}" --index "$tmp/idx-gone" --model "$model" ./gone/ 2>&1); rc=$?
o=$("$m3" search "${T[@]}" --index "$tmp/idx-gone" --model "$model" --json "owls barn")
if [[ $rc -eq 0 ]] && grep -q "no longer exists" <<<"$msg" && grep -q "1 removed" <<<"$msg" &&
   jq -e '.results | length == 0' <<<"$o" >/dev/null && [[ $("$m3" status --index "$tmp/idx-gone" --json | jq .files) -eq 0 ]]; then
  pass "a deleted PATH: its files are dropped"
else
  fail "deleted PATH: rc $rc: $msg; search: $o"
fi
msg=$(cd "$tmp" && "$m3_abs" index "${T[@]}" --index "$tmp/idx-gone" --model "$model" never-there 2>&1); rc=$?
[[ $rc -eq 1 ]] && grep -q "never-there: No such file or directory" <<<"$msg" && pass "a PATH the index never held is an error" || fail "missing PATH: rc $rc: $msg"

# ---- paths longer than the index's key limit are said, not skipped ------------------------------
lp=$(realpath "$tmp")/lp
deep=$lp/$(printf 'b%.0s' {1..200})/$(printf 'c%.0s' {1..200})/$(printf 'e%.0s' {1..200})
mkdir -p "$deep"
echo "Penguins on the ice." >"$deep/penguins.txt"
echo "A short file about horses." >"$lp/horses.txt"
msg=$("$m3" index "${T[@]}" --index "$tmp/idx-lp" --model "$model" "$lp" 2>&1); rc=$?
[[ $rc -eq 0 ]] && grep -qF "$deep: path longer than 511 bytes: not indexed" <<<"$msg" && grep -q "1 indexed.* 1 failed" <<<"$msg" &&
  pass "a folder path over 511 bytes is reported" || fail "long folder path: rc $rc: $msg"
msg=$("$m3" index "${T[@]}" --index "$tmp/idx-lp" --model "$model" "$deep/penguins.txt" 2>&1); rc=$?
[[ $rc -eq 1 ]] && grep -qF "$deep/penguins.txt: path longer than 511 bytes: not indexed" <<<"$msg" &&
  pass "a file path over 511 bytes named directly: reported, exit 1" || fail "long file path named: rc $rc: $msg"
rm -rf "$lp" "$tmp/idx-lp"

# ---- unreadable files and folders are failures, not left out --------------------------------------
# Root reads anything: as root the checks run as nobody (setpriv), in a folder nobody can reach.
perm=$(mktemp -d)
trap 'chmod -R u+rwX "$perm" 2>/dev/null; rm -rf "$tmp" "$perm"' EXIT
as_user=() skip=""
if [[ $(id -u) -eq 0 ]]; then
  if command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
    as_user=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups)
  else
    skip="running as root, who reads anything, without setpriv or the user nobody"
  fi
fi
mkdir -p "$perm/c/locked"
echo "A readable file about dolphins." >"$perm/c/ok.txt"
echo "A secret about tigers." >"$perm/c/noread.txt"
echo "Zebras on the savanna." >"$perm/c/locked/z.txt"
[[ -z $skip && ${#as_user[@]} -gt 0 ]] && chown -R nobody "$perm" && chmod 755 "$perm"
if [[ -z $skip ]] && ! "${as_user[@]}" test -x "$m3" -a -r "$model/config.json"; then
  skip="running as root, and nobody cannot reach $m3 or $model"
fi
if [[ -n $skip ]]; then
  echo "SKIP unreadable files: $skip"
else
  chmod 000 "$perm/c/noread.txt" "$perm/c/locked"
  pidx=$perm/idx
  msg=$("${as_user[@]}" "$m3" index "${T[@]}" --index "$pidx" --model "$model" "$perm/c" 2>&1); rc=$?
  files=$("${as_user[@]}" "$m3" status --index "$pidx" --files --json | tail -n +2)
  if [[ $rc -eq 0 ]] && grep -q "noread.txt: cannot open: Permission denied" <<<"$msg" &&
     grep -q "locked: cannot open the folder: Permission denied" <<<"$msg" && grep -q "1 indexed.* 2 failed" <<<"$msg" &&
     jq -se 'any(.[]; (.path | endswith("/noread.txt")) and .state == "failed" and .reason == "cannot open: Permission denied") and
             any(.[]; (.path | endswith("/c/locked")) and .state == "failed")' <<<"$files" >/dev/null; then
    pass "an unreadable file and folder are recorded as failed, with the reason"
  else
    fail "unreadable: rc $rc: $msg; files: $files"
  fi
  msg=$("${as_user[@]}" "$m3" index "${T[@]}" --index "$pidx" --model "$model" "$perm/c/noread.txt" 2>&1); rc=$?
  [[ $rc -eq 1 ]] && grep -q "noread.txt: cannot open: Permission denied" <<<"$msg" && pass "an unreadable file named directly: exit 1" || fail "unreadable named: rc $rc: $msg"
  chmod 644 "$perm/c/noread.txt"; chmod 755 "$perm/c/locked"
  msg=$("${as_user[@]}" "$m3" index "${T[@]}" --index "$pidx" --model "$model" "$perm/c" 2>&1); rc=$?
  n=$("${as_user[@]}" "$m3" status --index "$pidx" --files --json | tail -n +2 | jq -s '[.[] | select(.state == "done")] | length')
  [[ $rc -eq 0 && $n -eq 3 ]] && grep -q "2 indexed.* 0 failed" <<<"$msg" && pass "made readable (chmod only): indexed at the next run" || fail "after chmod: rc $rc, $n done: $msg"
fi
rm -rf "$perm"

# ---- another model is refused ---------------------------------------------------------------
cp -r "$model" "$tmp/other-model"
printf '\n' >>"$tmp/other-model/config.json"
err=$("$m3" search "${T[@]}" --index "$idx" --model "$tmp/other-model" "x" 2>&1)
[[ $? -eq 1 ]] && grep -q "was built with model" <<<"$err" && pass "another model refused: $err" || fail "another model: $err"


# ---- the converted model file works wherever --model is taken ---------------------------------
gguf=$tmp/m3-tiny.gguf
"$m3" model convert "$model" "$gguf" >/dev/null || fail "model convert"
if "$m3" index "${T[@]}" --quiet --index "$tmp/idx-gguf" --model "$gguf" --chunk-tokens 32 --overlap 8 "$docs" &&
   out=$("$m3" search "${T[@]}" --index "$tmp/idx-gguf" --model "$gguf" --json --limit 3 "Finanzamt Steuererklärung") &&
   jq -e '.results | length == 3' <<<"$out" >/dev/null &&
   "$m3" similar --index "$tmp/idx-gguf" --model "$gguf" --json "$docs/doc0.txt" | jq -e '.results | length > 0' >/dev/null; then
  pass "index, search and similar with the GGUF model file"
else
  fail "GGUF model file: index/search/similar failed"
fi
err=$("$m3" search "${T[@]}" --index "$tmp/idx-gguf" --model "$model" "x" 2>&1)
[[ $? -eq 1 ]] && grep -q "was built with model 'm3-tiny.gguf" <<<"$err" && pass "folder refused on a GGUF-built index" || fail "folder on a GGUF-built index: $err"
rm -rf "$tmp/idx-gguf"
# ---- a GPU lost mid-run: the encoder continues on the CPU, nothing is lost ----------------------
if [[ $backend == vulkan ]]; then
  lost=$tmp/idx-lost
  want=$("$m3" status --index "$idx" --json | jq .files)
  if out=$(M3_VULKAN_FAIL_AFTER=2 "$m3" index "${T[@]}" --index "$lost" --model "$model" --chunk-tokens 32 --overlap 8 --batch-tokens 64 "$docs" 2>&1) &&
     grep -q "VK_ERROR_DEVICE_LOST.*continuing on the CPU backend" <<<"$out" &&
     [[ $("$m3" status --index "$lost" --json | jq .files) -eq $want ]] && "$m3" check --index "$lost" >/dev/null; then
    pass "device lost after 2 passes: indexing finished on the CPU backend, all $want files"
  else
    fail "device lost: $out"
  fi
  rm -rf "$lost"
fi

# ---- one writer at a time; searches run while indexing -----------------------------------------
conc=$tmp/idx-conc
big=$tmp/big
mkdir -p "$big"
for i in $(seq 0 299); do
  for j in $(seq 0 24); do printf '%s ' "${sent[$(((i + j) % 8))]}"; done >"$big/f$i.txt"
done
run_index "$conc" "$docs" || fail "index for the concurrency test"
"$m3" index --threads 1 --backend "$backend" --quiet --index "$conc" --model "$model" --chunk-tokens 32 --overlap 8 --batch-tokens 64 "$big" &
writer=$!
# Wait until the background indexer holds the writer lock: it writes its pid into the lock file once
# it has it. (Probing with flock would take the lock for an instant and could make it fail.)
for _ in $(seq 1200); do
  [[ $(cat "$conc/writer.lock" 2>/dev/null) == "$writer" ]] && break
  kill -0 "$writer" 2>/dev/null || break
  sleep 0.05
done
searches=0 search_fail=0 second=""
while kill -0 "$writer" 2>/dev/null; do
  if "$m3" search "${T[@]}" --index "$conc" --model "$model" --json --limit 3 "Katze Sofa" >/dev/null; then
    searches=$((searches + 1))
  else
    search_fail=$((search_fail + 1))
  fi
  [[ -z $second ]] && second=$("$m3" index "${T[@]}" --quiet --index "$conc" --model "$model" "$docs" 2>&1; echo "rc=$?")
done
wait "$writer" || fail "the indexer exited $? during the concurrency test"
(( searches > 0 && search_fail == 0 )) && pass "$searches searches while indexing, none failed or blocked" || fail "searches while indexing: $searches ok, $search_fail failed"
grep -q "being written by another process" <<<"$second" && grep -q "rc=1" <<<"$second" && pass "a second writer is refused: ${second%%$'\n'*}" || fail "second writer: $second"
"$m3" check --index "$conc" >/dev/null && pass "check after concurrent use" || fail "check after concurrent use"
rm -rf "$conc" "$big"

# ---- SIGKILL at random moments --------------------------------------------------------------
big=$tmp/big
mkdir -p "$big"
for i in $(seq 0 199); do for j in $(seq 0 12); do printf '%s ' "${sent[$(((i * 7 + j) % 8))]}" "$i-$j"; done >"$big/f$i.txt"; done
kidx=$tmp/kidx
kills=0 bad=0 k=0
while [[ $kills -lt 20 && $k -lt 60 ]]; do
  k=$((k + 1))
  # m3 itself, not a subshell running it, must be the process killed: a surviving m3 would keep
  # writing while the files change and the next run starts.
  "$m3" index "${T[@]}" --quiet --index "$kidx" --model "$model" --chunk-tokens 32 --overlap 8 \
      --commit-interval 100 "$big" &
  pid=$!
  sleep "$(awk -v ms=$((RANDOM % 400)) 'BEGIN { print ms / 1000 }')"
  kill -KILL $pid 2>/dev/null && kills=$((kills + 1))
  wait $pid 2>/dev/null
  if [[ -e $kidx/data.mdb ]]; then
    "$m3" status --index "$kidx" --json >/dev/null 2>&1 || { bad=$((bad + 1)); echo "after kill $k: status fails" >&2; }
    "$m3" check --index "$kidx" >/dev/null 2>&1 || { bad=$((bad + 1)); echo "after kill $k: check fails" >&2; }
  fi
  # Change 30 files, move some away and back: every run has work to be killed in.
  for c in $(seq 1 30); do echo "change $k $c" >>"$big/f$(((k * 31 + c * 7) % 200)).txt"; done
  # Move files away and back so that killed runs also delete and re-add.
  [[ $((k % 4)) -eq 0 ]] && mv "$big/f$k.txt" "$tmp/f$k.away"
  [[ $((k % 4)) -eq 2 && -e $tmp/f$((k - 2)).away ]] && mv "$tmp/f$((k - 2)).away" "$big/f$((k - 2)).txt"
done
for f in "$tmp"/*.away; do [[ -e $f ]] && mv "$f" "$big/$(basename "$f" .away).txt"; done
run_index "$kidx" "$big" || fail "index after kills"
ref=$tmp/ref
run_index "$ref" "$big" || fail "reference index"
"$m3" status --index "$ref" --files --json | tail -n +2 | jq -c '{path,size,hash,state,chunks,tokens}' >"$tmp/ref.files"
"$m3" check --index "$kidx" >/dev/null || fail "check after the final run"
"$m3" status --index "$kidx" --files --json | tail -n +2 | jq -c '{path,size,hash,state,chunks,tokens}' >"$tmp/k.files"
if [[ $bad -eq 0 ]] && cmp -s "$tmp/ref.files" "$tmp/k.files"; then
  pass "SIGKILL x$kills: index always opens and checks, final content equals an uninterrupted run"
else
  fail "SIGKILL: $bad bad states; content differs: $(diff "$tmp/ref.files" "$tmp/k.files" | head -3)"
fi
q1=$("$m3" search "${T[@]}" --index "$ref" --model "$model" --json "tax letter" | jq -c '[.results[] | {path, score: (.score * 1e4 | round)}]')
q2=$("$m3" search "${T[@]}" --index "$kidx" --model "$model" --json "tax letter" | jq -c '[.results[] | {path, score: (.score * 1e4 | round)}]')
[[ "$q1" == "$q2" ]] && pass "same search results after kills" || fail "search differs after kills: $q1 vs $q2"

# ---- disk full (RLIMIT_FSIZE) ---------------------------------------------------------------
fidx=$tmp/fidx
run_index "$fidx" "$docs" || fail "index before disk full"
for i in $(seq 0 99); do for j in $(seq 0 30); do printf '%s %d ' "${sent[$(((i + j) % 8))]}" $((i * j)); done >"$big/g$i.txt"; done
size=$(stat -c %s "$fidx/data.mdb")
err=$( (ulimit -f $(((size + 65536) / 1024)); "$m3" index "${T[@]}" --quiet --index "$fidx" --model "$model" --chunk-tokens 32 "$big") 2>&1)
rc=$?
if [[ $rc -eq 1 ]] && grep -qi "disk full\|too large" <<<"$err"; then pass "disk full: clear error: $err"; else fail "disk full: rc $rc: $err"; fi
"$m3" status --index "$fidx" >/dev/null 2>&1 && "$m3" check --index "$fidx" >/dev/null 2>&1 && pass "index opens and checks after disk full" || fail "index broken after disk full"
run_index "$fidx" "$big" && "$m3" check --index "$fidx" >/dev/null && pass "indexing resumes after disk full" || fail "resume after disk full"

# ---- damaged index files --------------------------------------------------------------------
damage() {  # name, command to damage a copy
  local d=$tmp/dmg
  rm -rf "$d"; cp -r "$idx" "$d"; rm -f "$d/lock.mdb"
  eval "$2"
  local worst=0
  for cmd in "status --index $d" "check --index $d" "search ${T[*]} --index $d --model $model tax" "similar --index $d $docs/doc0.txt"; do
    err=$($m3 $cmd 2>&1 >/dev/null); rc=$?
    [[ $rc -ge 128 ]] && worst=$rc
    [[ $rc -ge 128 ]] && echo "  '$cmd' crashed ($rc)" >&2
  done
  if [[ $worst -eq 0 ]]; then pass "damaged ($1): no crash; e.g. $(head -c 160 <<<"$err")"; else fail "damaged ($1): crash"; fi
}
damage "truncated" 'truncate -s 5000 "$d/data.mdb"'
damage "truncated half" 'truncate -s $(( $(stat -c %s "$d/data.mdb") / 2 )) "$d/data.mdb"'
damage "garbage header" 'printf "garbagegarbagegarbage" | dd of="$d/data.mdb" conv=notrunc 2>/dev/null'
damage "zeroed meta pages" 'dd if=/dev/zero of="$d/data.mdb" bs=4096 count=2 conv=notrunc 2>/dev/null'
damage "empty file" ': >"$d/data.mdb"'
damage "garbage lock file" 'head -c 8192 /dev/urandom >"$d/lock.mdb"'
damage "not a file" 'rm "$d/data.mdb"; mkdir "$d/data.mdb"'
err=$("$m3" status --index "$tmp/nothing" 2>&1); grep -q "no index" <<<"$err" && pass "missing index: clear error" || fail "missing index message"

# ---- multi-vector storage (chosen at creation) ----------------------------------------------
"$m3" status --index "$idx" --json | jq -e '.colbert_storage == "f32" and .colbert_pool == 1' >/dev/null && pass "an exact index keeps fp32 multi-vectors" || fail "exact index storage"
"$m3" index --help | grep -q -- "--colbert-pool" && pass "index --help lists --colbert, --colbert-pool" || fail "index --help"
for kind in int8 bits none; do
  cidx=$tmp/colbert-$kind
  run_index "$cidx" --colbert $kind --colbert-pool 2 "$docs" || fail "index --colbert $kind"
  want_pool=2; [[ $kind == none ]] && want_pool=1
  st=$("$m3" status --index "$cidx" --json)
  jq -e --arg k $kind --argjson p $want_pool '.colbert_storage == $k and .colbert_pool == $p' <<<"$st" >/dev/null && pass "--colbert $kind --colbert-pool 2: status says so" || fail "--colbert $kind: $st"
  "$m3" check --index "$cidx" >/dev/null && pass "check (--colbert $kind)" || fail "check (--colbert $kind)"
  o=$("$m3" search "${T[@]}" --index "$cidx" --model "$model" --json --limit 3 "Finanzamt Steuererklärung")
  jq -e '.results | length == 3 and all(.[]; (.snippet | length) > 0)' <<<"$o" >/dev/null && pass "search (--colbert $kind)" || fail "search (--colbert $kind): $o"
done
o=$("$m3" search "${T[@]}" --index "$tmp/colbert-none" --model "$model" --json "Finanzamt")
jq -e '.results | length > 0 and all(.[]; .colbert == 0 and (((0.4 * .dense + 0.2 * .sparse) / 0.6 - .score) | fabs) < 1e-5)' <<<"$o" >/dev/null && pass "no multi-vectors: hybrid renormalised over dense + sparse" || fail "hybrid without multi-vectors: $o"
err=$("$m3" search "${T[@]}" --index "$tmp/colbert-none" --model "$model" --mode colbert "Finanzamt" 2>&1)
[[ $? -eq 1 ]] && grep -q "no multi-vectors" <<<"$err" && pass "--mode colbert without multi-vectors: clear error" || fail "--mode colbert without multi-vectors: $err"
msg=$(run_index "$tmp/colbert-int8" --colbert bits "$docs" 2>&1)
grep -q "keeps its multi-vectors as 'int8' pooled x2" <<<"$msg" && "$m3" status --index "$tmp/colbert-int8" --json | jq -e '.colbert_storage == "int8"' >/dev/null && pass "an existing index keeps its storage, and says so" || fail "other --colbert on an existing index: $msg"
"$m3" index "${T[@]}" --index "$tmp/colbert-x" --model "$model" --colbert fp8 "$docs" 2>/dev/null; [[ $? -eq 2 ]] && pass "bad --colbert is a usage error" || fail "bad --colbert"
err=$(run_index "$tmp/colbert-exact" --exact --colbert bits "$docs" 2>&1); [[ $? -eq 1 ]] && grep -q "exact" <<<"$err" && pass "--exact --colbert bits refused: $err" || fail "--exact --colbert bits: $err"

# ---- --rebuild ------------------------------------------------------------------------------
cp -r "$idx" "$tmp/rb"
truncate -s 5000 "$tmp/rb/data.mdb"
run_index "$tmp/rb" --rebuild "$docs" && "$m3" check --index "$tmp/rb" >/dev/null && pass "--rebuild recovers a damaged index" || fail "--rebuild"
n1=$("$m3" status --index "$tmp/rb" --json | jq .files); n2=$("$m3" status --index "$idx" --json | jq .files)
[[ $n1 -eq $n2 ]] && pass "--rebuild: same files ($n1)" || fail "--rebuild: $n1 files vs $n2"

echo "$fails failures"
[[ $fails -eq 0 ]]
