#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Documents through the command line as a user meets them: `m3 extract` (text, --json places and
# chunks), then `m3 index` of a folder of PDF, pptx, EPUB, mbox, gzip, flat ODF, Markdown, an
# encrypted PDF and a zip bomb, `m3 check` of that index (sound, and damage found in the ranges of
# both derived and plain chunks), and `m3 search --json` results carrying their "location";
# re-indexing leaves them unchanged.
# Usage: test-documents-cli.sh PATH/TO/m3 TESTS_DATA_DIR
set -euo pipefail
m3=$1
data=$2
model=$data/m3-tiny
docs=$data/documents
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
pass() { echo "ok: $*"; }

# extract: plain text, CJK without the PDF's line wraps.
"$m3" extract "$docs/sample.pdf" >"$tmp/pdf.txt"
if grep -q '^灯塔守护者每天晚上记录天气。冬天港口结冰，渔民们留在岸上。$' "$tmp/pdf.txt"; then pass "extract: PDF text"; else fail "extract: PDF text"; cat "$tmp/pdf.txt"; fi
# extract --json: places, and chunks with their location.
"$m3" extract --json "$docs/sample.pptx" >"$tmp/pptx.json"
if [[ $(jq -c '[.places[].location]' "$tmp/pptx.json") == '["slide 1","slide 2","slide 3","slide 4"]' &&
      $(jq -r '.extractor' "$tmp/pptx.json") == ooxml ]]; then pass "extract --json: places"; else fail "extract --json places"; fi
"$m3" extract --json --model "$model" "$docs/sample.epub" >"$tmp/epub.json"
if jq -e '(.chunks | length) >= 1 and all(.chunks[]; .location | startswith("chapter ")) and
          ((.chunks[0].start) as $s | .text[$s:$s+5]) != null' "$tmp/epub.json" >/dev/null; then
    pass "extract --json --model: chunks located"
else
    fail "extract --json --model chunks"; jq -c '.chunks' "$tmp/epub.json" | head -c 500
fi
# extract: errors name the file, exit 1.
set +e
msg=$("$m3" extract "$docs/encrypted.pdf" 2>&1 >/dev/null); rc=$?
set -e
if [[ $rc -eq 1 && $msg == "m3 extract: $docs/encrypted.pdf: skipped: encrypted" ]]; then pass "extract: encrypted"; else fail "extract encrypted: $rc $msg"; fi
# extract: flat OpenDocument is read as its text, not as a zip file nor as XML.
for f in writer.fodt calc.fods impress.fodp; do
    if "$m3" extract "$docs/office/$f" >"$tmp/$f.txt" 2>"$tmp/$f.err" && grep -q 'blue notebook\|Blue notebooks' "$tmp/$f.txt" &&
       ! grep -q '<\|xmlns' "$tmp/$f.txt"; then pass "extract: $f"; else fail "extract $f"; cat "$tmp/$f.err"; head -5 "$tmp/$f.txt"; fi
done

# index and search: results carry their place; the encrypted PDF and the bomb are per-file states.
mkdir "$tmp/docs"
cp "$docs"/{sample.pdf,sample.pptx,sample.epub,sample.mbox,encrypted.pdf,bomb.docx} "$tmp/docs/"
# LibreOffice's password-protected ODF and LibreOffice's encrypted PDF, an encrypted zip entry.
cp "$docs"/{encrypted-lo.odt,encrypted-lo.pdf,encrypted-entry.epub} "$tmp/docs/"
# Derived text of two more kinds (gzip, flat ODF), and a plain file whose offsets are its bytes.
cp "$docs"/{sample.txt.gz,office/writer.fodt,source.md} "$tmp/docs/"
"$m3" index --model "$model" --index "$tmp/idx" --backend cpu "$tmp/docs" >"$tmp/index.out" 2>&1 || true
if grep -q 'encrypted.pdf: skipped: encrypted' "$tmp/index.out" && grep -q 'bomb.docx: zip bomb' "$tmp/index.out" &&
   grep -q 'encrypted-lo.odt: skipped: encrypted' "$tmp/index.out" && grep -q 'encrypted-lo.pdf: skipped: encrypted' "$tmp/index.out" &&
   grep -q 'encrypted-entry.epub: skipped: encrypted' "$tmp/index.out" &&
   grep -q '7 indexed' "$tmp/index.out"; then pass "index: documents"; else fail "index"; cat "$tmp/index.out"; fi
# A fresh index of documents is consistent: the offsets of derived text are positions in that text,
# not bytes of the file (the gzip text is longer than the file, a PDF's shorter).
if out=$("$m3" check --index "$tmp/idx" 2>&1) && [[ $out == ok ]]; then pass "check: documents"; else fail "check documents: $out"; fi
# The encrypted files are skipped (not failed: nothing to retry), the bomb failed.
if "$m3" status --index "$tmp/idx" | grep -q '^files .*(1 failed, 4 skipped)'; then pass "status: skipped and failed"; else fail "status"; "$m3" status --index "$tmp/idx"; fi
"$m3" search --model "$model" --index "$tmp/idx" --backend cpu --json --limit 10 "Ice in the harbour" >"$tmp/hits.json"
declare -A want=([sample.pdf]='page ' [sample.pptx]='slide ' [sample.epub]='chapter ' [sample.mbox]='message ')
for f in "${!want[@]}"; do
    loc=$(jq -r --arg f "$tmp/docs/$f" '.results[] | select(.path == $f) | .location' "$tmp/hits.json")
    if [[ $loc == "${want[$f]}"* ]]; then pass "search: $f at '$loc'"; else fail "search: $f location '$loc'"; fi
done
"$m3" index --model "$model" --index "$tmp/idx" --backend cpu "$tmp/docs" >"$tmp/index2.out" 2>&1 || true
if grep -q '0 indexed' "$tmp/index2.out"; then pass "index again: documents unchanged"; else fail "index again"; cat "$tmp/index2.out"; fi
"$m3" check --index "$tmp/idx" >/dev/null && pass "check after indexing again" || fail "check after indexing again"

# check still finds damaged ranges: in a copy of the index, the chunk record (u32 file id, u32
# tokens, u64 start, u64 end, little-endian) of a gzip file's chunk ends one byte early (its range
# no longer spans its stored text), and a Markdown file's ends past the file.
"$m3" search --model "$model" --index "$tmp/idx" --backend cpu --json --limit 50 "lighthouse keeper notebook" >"$tmp/all.json"
range() { jq -r --arg f "$tmp/docs/$1" '[.results[] | select(.path == $f)][0] | "\(.start) \(.end)"' "$tmp/all.json"; }
read -r gs ge <<<"$(range sample.txt.gz)"
read -r ms me <<<"$(range source.md)"
msize=$(stat -c %s "$docs/source.md")
if [[ $gs =~ ^[0-9]+$ && $ms =~ ^[0-9]+$ ]] && command -v python3 >/dev/null; then
    cp -r "$tmp/idx" "$tmp/bad"
    # LMDB pages have no checksums: the values are patched in place (every copy, old pages too).
    patched=$(python3 - "$tmp/bad/data.mdb" "$gs" "$ge" "$ms" "$me" "$msize" <<'PY'
import struct, sys
p, gs, ge, ms, me, msize = sys.argv[1], *map(int, sys.argv[2:])
d = bytearray(open(p, 'rb').read())
n = 0
for (s, e), new_e in (((gs, ge), ge - 1), ((ms, me), msize + 100)):
    old = struct.pack('<QQ', s, e)
    i = d.find(old)
    while i >= 0:
        d[i:i + 16] = struct.pack('<QQ', s, new_e)
        n += 1
        i = d.find(old, i + 16)
open(p, 'wb').write(d)
print(n)
PY
)
    set +e
    out=$("$m3" check --index "$tmp/bad" 2>&1); rc=$?
    set -e
    if [[ $patched -ge 2 && $rc -eq 1 &&
          $out == *"sample.txt.gz: chunk "*" has text range $gs..$((ge - 1)) of the gzip extractor's text, but $((ge - gs)) bytes of text"* &&
          $out == *"source.md: chunk "*" has byte range $ms..$((msize + 100)), past the file's $msize bytes"* &&
          $out == *"2 problems: the index is inconsistent"* ]]; then
        pass "check: the damaged ranges of a derived and a plain chunk found"
    else
        fail "check of a damaged index (patched $patched): rc $rc: $out"
    fi
else
    fail "check damage: no ranges of sample.txt.gz ('$gs') and source.md ('$ms') in the results, or no python3"
fi

[[ $fails -eq 0 ]] || { echo "$fails failures" >&2; exit 1; }
