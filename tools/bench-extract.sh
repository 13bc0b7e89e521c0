#!/bin/bash
# SPDX-License-Identifier: MIT
# Extraction throughput per format against the reference command-line tools, in one run:
# pdftotext (poppler-utils) for PDF, pandoc -t plain for docx, odt, epub, html and rtf, zcat for
# gzip; there is no common CLI for pptx and mbox (ours only). Three figures per format, MB/s of the
# input file: ours in-process (bench-extract-docs, best of 5: what the indexer's long-lived helper
# costs per file), ours as a command (`m3 extract`, a process and its sandboxed helper started per
# file, best of 5), and the reference command (best of 5); the ratio compares the two commands.
# Inputs: the texts of /usr/share/common-licenses (about 300 KB of varied English) through the
# producers of tests/data/documents (pandoc; pango-view + pdfunite for the PDF, 60 lines a page),
# plus the test documents' multilingual text. Usage: tools/bench-extract.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
build=${1:-build}
m3=$build/app/m3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
docs=tests/data/documents
lic=(/usr/share/common-licenses/{GPL-3,GPL-2,LGPL-2.1,LGPL-2,MPL-1.1,MPL-2.0,GFDL-1.3,Apache-2.0,Artistic,CC0-1.0})
{
    sed -n '1,5p' $docs/source.md
    for f in "${lic[@]}"; do printf '\n# %s\n\n' "${f##*/}"; tr -d '\f' < "$f" | sed 's/^[ \t]*//; s/^[#*+-]/\\&/; s/^\([0-9]*\)\./\1\\./'; done
    sed -n '6,$p' $docs/source.md
} > "$work/big.md"
for f in docx odt epub html rtf pptx; do pandoc -s "$work/big.md" -o "$work/big.$f"; done
cat "${lic[@]}" | tr -d '\f' > "$work/all.txt"  # form feeds: pandoc would write them into XML
split -l 60 -d -a 3 "$work/all.txt" "$work/page-"
pages=()
for p in "$work"/page-*; do
    pango-view --no-display -q -o "$p.pdf" --width=450 --font="DejaVu Sans 9" "$p"
    pages+=("$p.pdf")
done
pango-view --no-display -q -o "$work/cjk.pdf" --width=150 --font="WenQuanYi Micro Hei 11" $docs/pdf-page2.txt
pango-view --no-display -q -o "$work/rtl.pdf" --width=300 --font="DejaVu Sans 11" $docs/pdf-page3.txt
pdfunite "${pages[@]}" "$work/cjk.pdf" "$work/rtl.pdf" "$work/big.pdf"
for i in $(seq 100); do cat $docs/sample.mbox; done > "$work/big.mbox"
gzip -9 -n -c "$work/all.txt" > "$work/big.txt.gz"
inputs=("$work"/big.{pdf,docx,odt,pptx,epub,html,rtf,mbox,txt.gz})
"$build/tests/extract/bench-extract-docs" --rounds 5 "${inputs[@]}" > "$work/ours.txt"
best() {  # seconds of the fastest of 5 runs of "$@"
    local b=0 t0 t
    for _ in 1 2 3 4 5; do
        t0=$(date +%s%N); "$@" >/dev/null 2>&1; t=$(($(date +%s%N) - t0))
        if [[ $b -eq 0 || $t -lt $b ]]; then b=$t; fi
    done
    awk -v ns="$b" 'BEGIN { printf "%.6f", ns / 1e9 }'
}
printf '%-7s %9s %10s %13s %12s %7s  %s\n' format bytes "in-process" "m3 extract" reference ratio "reference (MB/s of input)"
while read -r path name size text secs mbs; do
    ext=${path##*/big.}
    case $ext in
        pdf) ref=(pdftotext -q "$path" -) ;;
        docx|odt|epub|html|rtf) ref=(pandoc -t plain "$path") ;;
        txt.gz) ref=(zcat "$path") ;;
        *) ref=() ;;
    esac
    cs=$(best "$m3" extract "$path")
    rs=-1
    [[ ${#ref[@]} -gt 0 ]] && rs=$(best "${ref[@]}")
    awk -v e="$ext" -v n="$size" -v m="$mbs" -v c="$cs" -v s="$rs" -v r="${ref[0]:--}" 'BEGIN {
        cm = n / c / 1e6
        if (s > 0) printf "%-7s %9d %10.2f %13.2f %12.2f %6.1fx  %s\n", e, n, m, cm, n / s / 1e6, cm / (n / s / 1e6), r
        else printf "%-7s %9d %10.2f %13.2f %12s %7s  %s\n", e, n, m, cm, "-", "-", r }'
done < "$work/ours.txt"
