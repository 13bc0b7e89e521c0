#!/bin/sh
# SPDX-License-Identifier: MIT
# Fills the seed corpora of the document fuzz targets (tests/fuzz/fuzz-extract.c) from the test
# documents: tests/fuzz/corpus/extract-FAMILY/. Families with several extractors get the choosing
# byte first (zip: 0 OpenDocument, 1 OOXML, 2 EPUB; mail: 0 eml, 1 mbox). Run from anywhere.
set -eu
cd "$(dirname "$0")"
docs=../data/documents
c=corpus
# Overwrites the seeds it makes and nothing else: the corpora also hold regression inputs added by
# hand (crashes found by fuzzing), which must stay.
mkdir -p $c/extract-pdf $c/extract-zip $c/extract-html $c/extract-mail $c/extract-rtf $c/extract-gzip
plain() { cp "$docs/$2" "$c/extract-$1/$2"; }
picked() { { printf "\\$(printf %03o "$2")"; cat "$docs/$3"; } > "$c/extract-$1/$3"; }
for f in sample.pdf lighthouse.pdf encrypted.pdf; do plain pdf $f; done
for f in sample.odt sample.ods sample.odp lighthouse.odt lighthouse.ods lighthouse.odp encrypted.odt encrypted-lo.odt; do picked zip 0 $f; done
# Flat OpenDocument (one XML file; the same extractor tells it from a package by its bytes).
for f in writer.fodt calc.fods impress.fodp; do
    { printf '\000'; cat "$docs/office/$f"; } > "$c/extract-zip/$f"
done
for f in sample.docx sample.pptx sample.xlsx lighthouse.docx lighthouse.pptx lighthouse.xlsx entities.docx encrypted-entry.docx; do picked zip 1 $f; done
for f in sample.epub lighthouse.epub encrypted-entry.epub; do picked zip 2 $f; done
plain html sample.html
for f in sample.eml neomutt.eml; do picked mail 0 $f; done
for f in sample.mbox neomutt.mbox; do picked mail 1 $f; done
plain rtf sample.rtf
plain gzip sample.txt.gz
