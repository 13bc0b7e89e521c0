#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# `m3 bench search` at toy sizes (not timed): it runs, prints one JSON object per size with every
# field, finds most of the brute-force top 10, cleans up its temporary indexes, and reuses a kept
# one. Usage: test-bench-search.sh PATH/TO/m3
set -uo pipefail
m3=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
pass() { echo "ok: $*"; }
command -v jq >/dev/null || { echo "jq not found"; exit 77; }

fields='["chunks","files","dim","colbert_tokens","colbert_storage","weights","queries","threads","reused_index",
  "build_s","build_peak_rss_mib","build_peak_anon_mib","index_disk_mib","index_bytes_per_chunk",
  "colbert_bytes_per_token","search_p50_ms","search_p99_ms","search_mean_ms","search_cpu_ms","repeat_p50_ms",
  "repeat_p99_ms","search_peak_rss_mib","search_peak_anon_mib","rss_peak_reset","brute_p50_ms",
  "brute_p99_ms","brute_mean_ms","brute_cpu_ms","brute_data_mib","speedup_p50","speedup_p99","recall_at_10"]'

# Two sizes in a temporary folder of our own: two lines, and nothing left behind.
mkdir "$tmp/t"
out=$(TMPDIR="$tmp/t" "$m3" bench search --chunks 3000,1001 --queries 20 --dim 128 --json 2>"$tmp/err")
rc=$?
[ $rc -eq 0 ] && pass "bench search runs" || { fail "exit $rc: $(cat "$tmp/err")"; exit 1; }
[ "$(wc -l <<<"$out")" -eq 2 ] && pass "one line per size" || fail "expected 2 lines, got: $out"
first=$(head -n 1 <<<"$out")
jq -e --argjson f "$fields" '. as $o | $f | all(. as $k | $o | has($k))' <<<"$first" >/dev/null &&
  pass "every field present" || fail "fields missing: $first"
jq -e '.chunks == 3000 and .files == 375 and .dim == 128 and .queries == 20 and .reused_index == false' \
  <<<"$first" >/dev/null && pass "sizes as asked" || fail "sizes: $first"
jq -e '.search_p50_ms > 0 and .search_p99_ms >= .search_p50_ms and .brute_p50_ms > 0 and
       .brute_p99_ms >= .brute_p50_ms and .speedup_p50 > 0 and .index_disk_mib > 0 and .build_s > 0 and
       .search_peak_rss_mib > 0' <<<"$first" >/dev/null && pass "figures are positive" || fail "figures: $first"
# The index search against the exact brute-force ranking (deterministic data): well above chance.
jq -e '.recall_at_10 >= 0.6 and .recall_at_10 <= 1' <<<"$first" >/dev/null &&
  pass "recall@10 $(jq .recall_at_10 <<<"$first")" || fail "recall@10 too low: $first"
jq -e '.chunks == 1001 and .files == 126' <<<"$(tail -n 1 <<<"$out")" >/dev/null && pass "a last file shorter than 8 chunks" ||
  fail "second size: $out"
[ -z "$(ls -A "$tmp/t")" ] && pass "temporary indexes removed" || fail "left behind: $(ls -R "$tmp/t")"

# Each candidate path alone against the brute force: the dense stages (sign codes, asymmetric,
# int8) and MaxScore over the postings. Sparse candidates are exact up to the posting weights'
# quantisation; the dense ones lose only near-ties to int8 (measured 1.0 and 0.995).
dense=$("$m3" bench search --chunks 3000 --queries 20 --dim 128 --weights 1,0,0 --json)
jq -e '.recall_at_10 >= 0.95' <<<"$dense" >/dev/null && pass "dense alone: recall@10 $(jq .recall_at_10 <<<"$dense")" ||
  fail "dense alone: $dense"
sparse=$("$m3" bench search --chunks 3000 --queries 20 --dim 128 --weights 0,1,0 --json)
jq -e '.recall_at_10 >= 0.98' <<<"$sparse" >/dev/null && pass "sparse alone: recall@10 $(jq .recall_at_10 <<<"$sparse")" ||
  fail "sparse alone: $sparse"

# --index DIR --keep: kept, then reused with the same results.
a=$("$m3" bench search --chunks 2000 --queries 10 --dim 64 --colbert-tokens 4 --index "$tmp/keep" --keep --json)
b=$("$m3" bench search --chunks 2000 --queries 10 --dim 64 --colbert-tokens 4 --index "$tmp/keep" --keep --json)
[ -f "$tmp/keep/n2000-d64-t4/data.mdb" ] && pass "--keep keeps the index" || fail "no index kept"
jq -e '.reused_index == true' <<<"$b" >/dev/null && pass "a kept index is reused" || fail "not reused: $b"
[ "$(jq .recall_at_10 <<<"$a")" = "$(jq .recall_at_10 <<<"$b")" ] && pass "same recall on the reused index" ||
  fail "recall differs: $a / $b"

# Usage errors.
"$m3" bench search --chunks 0 >/dev/null 2>&1
[ $? -eq 2 ] && pass "--chunks 0 refused" || fail "--chunks 0 accepted"
"$m3" bench search --dim 4 >/dev/null 2>&1
[ $? -eq 2 ] && pass "--dim 4 refused" || fail "--dim 4 accepted"
"$m3" bench search --weights 0,0,0 >/dev/null 2>&1
[ $? -eq 2 ] && pass "--weights 0,0,0 refused" || fail "--weights 0,0,0 accepted"
"$m3" bench search --help | grep -q "brute-force" && pass "--help" || fail "--help"

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
