#!/bin/bash
# SPDX-License-Identifier: MIT
# Extraction throughput per format against the reference command-line tools, in one run:
# pdftotext (poppler-utils) for PDF, pandoc -t plain for docx, odt, epub, html and rtf, zcat for
# gzip, and the closest single-format tools as a second reference: docx2txt (docx), odt2txt (odt,
# ods, odp), html2text (html), ripmime (eml, mbox: decodes the parts to files, no text of its own);
# there is no common CLI for pptx and xlsx (ours only). Three figures per format, MB/s of the
# input file: ours in-process (bench-extract-docs, best of 5: what the indexer's long-lived helper
# costs per file), ours as a command (`m3 extract`, a process and its sandboxed helper started per
# file, best of 5), and the reference command (best of 5); the ratio compares the two commands.
# Inputs: the texts of /usr/share/common-licenses (about 300 KB of varied English) through the
# producers of tests/data/documents (pandoc; pango-view + pdfunite for the PDF, 60 lines a page),
# plus the test documents' multilingual text; and the real documents of tests/data/documents as
# LibreOffice and NeoMutt wrote them (lighthouse.*, neomutt.*: small, so the commands' start-up
# dominates them; the in-process figure is the one to read). Usage: tools/bench-extract.sh
# [BUILD_DIR], or `./dev bench extract` (installs the reference tools, builds release first).
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
inputs=("$work"/big.{pdf,docx,odt,pptx,epub,html,rtf,mbox,txt.gz}
        $docs/lighthouse.{pdf,odt,docx,epub,ods,xlsx,odp,pptx} $docs/neomutt.{eml,mbox})
"$build/tests/extract/bench-extract-docs" --rounds 5 "${inputs[@]}" > "$work/ours.txt"
best() {  # seconds of the fastest of 5 runs of "$@"
    local b=0 t0 t
    for _ in 1 2 3 4 5; do
        t0=$(date +%s%N); "$@" >/dev/null 2>&1; t=$(($(date +%s%N) - t0))
        if [[ $b -eq 0 || $t -lt $b ]]; then b=$t; fi
    done
    awk -v ns="$b" 'BEGIN { printf "%.6f", ns / 1e9 }'
}
printf '%-18s %9s %10s %11s %10s %7s %10s %7s  %s\n' file bytes "in-process" "m3 extract" reference ratio reference2 ratio2 \
    "references (MB/s of input; ratio: m3 extract / reference)"
mkdir "$work/rip"
while read -r path name size text secs mbs; do
    file=${path##*/}
    ext=${file#*.}
    case $ext in
        pdf) ref=(pdftotext -q "$path" -) ;;
        docx|odt|epub|html|rtf) ref=(pandoc -t plain "$path") ;;
        txt.gz) ref=(zcat "$path") ;;
        *) ref=() ;;
    esac
    case $ext in
        docx) ref2=(docx2txt "$path" -) ;;
        odt|ods|odp) ref2=(odt2txt "$path") ;;
        html) ref2=(html2text "$path") ;;
        eml|mbox) ref2=(ripmime -i "$path" -d "$work/rip") ;;
        *) ref2=() ;;
    esac
    cs=$(best "$m3" extract "$path")
    rs=-1 r2=-1
    [[ ${#ref[@]} -gt 0 ]] && command -v "${ref[0]}" >/dev/null && rs=$(best "${ref[@]}")
    [[ ${#ref2[@]} -gt 0 ]] && command -v "${ref2[0]}" >/dev/null && r2=$(best "${ref2[@]}")
    awk -v f="$file" -v n="$size" -v m="$mbs" -v c="$cs" -v s="$rs" -v s2="$r2" -v r="${ref[0]:--}" -v q="${ref2[0]:--}" 'BEGIN {
        cm = n / c / 1e6
        a = s > 0 ? sprintf("%10.2f %6.1fx", n / s / 1e6, cm / (n / s / 1e6)) : sprintf("%10s %7s", "-", "-")
        b = s2 > 0 ? sprintf("%10.2f %6.1fx", n / s2 / 1e6, cm / (n / s2 / 1e6)) : sprintf("%10s %7s", "-", "-")
        printf "%-18s %9d %10.2f %11.2f %s %s  %s, %s\n", f, n, m, cm, a, b, r, q }'
done < "$work/ours.txt"
