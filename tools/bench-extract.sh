#!/bin/bash
# SPDX-License-Identifier: MIT
# Extraction throughput per format, ours (in-process, best of 5) against the reference command-line
# tools in the same run: pdftotext (poppler-utils) for PDF, pandoc -t plain for docx, odt, epub,
# html and rtf, zcat for gzip (there is no common CLI for pptx, xlsx, eml, mbox: ours only).
# The inputs are the test documents' text repeated into larger files by the same producers
# (tests/data/documents/make-documents.sh). Usage: tools/bench-extract.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
build=${1:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
docs=tests/data/documents
# ~300 KB of text: source.md's body 200 times, chapters kept.
{ sed -n '1,5p' $docs/source.md; for i in $(seq 200); do sed -n '6,$p' $docs/source.md | sed "s/^# \(.*\)/# \1 $i/"; done; } > "$work/big.md"
for f in docx odt epub html rtf pptx; do pandoc -s "$work/big.md" -o "$work/big.$f"; done
# PDF: 40 pages of the Latin and CJK page texts.
for i in $(seq 20); do
    pango-view --no-display -q -o "$work/p$i-1.pdf" --width=300 --font="DejaVu Sans 11" $docs/pdf-page1.txt
    pango-view --no-display -q -o "$work/p$i-2.pdf" --width=150 --font="WenQuanYi Micro Hei 11" $docs/pdf-page2.txt
done
pdfunite $(for i in $(seq 20); do echo "$work/p$i-1.pdf $work/p$i-2.pdf"; done) "$work/big.pdf"
for i in $(seq 200); do cat $docs/sample.mbox; done > "$work/big.mbox"
for i in $(seq 200); do sed -n '1,$p' $docs/expected.txt; done | gzip -9 -n > "$work/big.txt.gz"
"$build/tests/extract/bench-extract-docs" --rounds 5 "$work"/big.* > "$work/ours.txt"
best() {  # seconds of the fastest of 5 runs of "$@"
    local b=1e9 t0 t
    for _ in 1 2 3 4 5; do
        t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t=$(echo "$(date +%s.%N) - $t0" | bc -l)
        b=$(echo "if ($t < $b) $t else $b" | bc -l)
    done
    echo "$b"
}
printf '%-10s %10s %12s %14s %10s %s\n' format bytes "ours MB/s" "reference MB/s" ratio reference
while read -r path name size text secs mbs; do
    ext=${path##*/big.}
    case $ext in
        pdf) ref=(pdftotext -q "$path" -) ;;
        docx|odt|epub|html|rtf) ref=(pandoc -t plain "$path") ;;
        txt.gz) ref=(zcat "$path") ;;
        *) ref=() ;;
    esac
    if [[ ${#ref[@]} -gt 0 ]]; then
        rs=$(best "${ref[@]}")
        rm=$(echo "$size / $rs / 1000000" | bc -l)
        printf '%-10s %10d %12.2f %14.2f %9.1fx %s\n' "$ext" "$size" "$mbs" "$rm" "$(echo "$mbs / $rm" | bc -l)" "${ref[0]}"
    else
        printf '%-10s %10d %12.2f %14s %10s %s\n' "$ext" "$size" "$mbs" - - -
    fi
done < "$work/ours.txt"
