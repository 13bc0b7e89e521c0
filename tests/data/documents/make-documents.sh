#!/bin/sh
# SPDX-License-Identifier: MIT
# Regenerates the test documents from source.md and the page texts with the producers named in
# README.md (Debian 12: pandoc, pango1.0-tools, poppler-utils, qpdf, python3-openpyxl, python3-odf,
# fonts-dejavu-core, fonts-wqy-microhei). Not run by the tests: the outputs are committed, so the
# tests read the bytes real producers wrote. Run in this folder.
set -eu
for f in docx odt epub html rtf pptx; do pandoc -s source.md -o sample.$f; done
tmp=$(mktemp -d)
pango-view --no-display -q -o "$tmp/1.pdf" --width=300 --font="DejaVu Sans 11" pdf-page1.txt
pango-view --no-display -q -o "$tmp/2.pdf" --width=150 --font="WenQuanYi Micro Hei 11" pdf-page2.txt
pango-view --no-display -q -o "$tmp/3.pdf" --width=300 --font="DejaVu Sans 11" pdf-page3.txt
pdfunite "$tmp/1.pdf" "$tmp/2.pdf" "$tmp/3.pdf" sample.pdf
qpdf --encrypt secret owner 256 -- sample.pdf encrypted.pdf || [ $? -eq 3 ]  # 3: warnings (pdfunite's object count)
rm -r "$tmp"
gzip -9 -n -c expected.txt > sample.txt.gz
/usr/bin/python3 make-documents.py
