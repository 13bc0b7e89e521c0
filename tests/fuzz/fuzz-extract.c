// SPDX-License-Identifier: MIT
//
// Arbitrary bytes through one family of document extractors (app/extract/docs.h), the family
// chosen at compile time (-DFUZZ_FAMILY=n), one libFuzzer target per entry point family:
//   0 fuzz-extract-pdf   PDF (poppler + ICU bidi)
//   1 fuzz-extract-zip   OpenDocument, OOXML, EPUB (libzip + libxml2): the first byte picks one
//   2 fuzz-extract-html  HTML/XHTML (libxml2's HTML parser, charset detection)
//   3 fuzz-extract-mail  .eml and mbox (GMime; attachments through the other extractors): first byte
//   4 fuzz-extract-rtf   RTF (hand-written)
//   5 fuzz-extract-gzip  gzip (zlib; the content through the other extractors)
// Families of one extractor read the input as the file; the others take the first byte as the
// choice and the rest as the file. An extractor must return an error naming the file, or text
// that is UTF-8 with places sorted and in range. Seeds: tests/fuzz/corpus/extract-FAMILY/, made
// from tests/data/documents by tests/fuzz/make-extract-seeds.sh.
#include <stdint.h>
#include <string.h>

#include "extract/docs.h"

#ifndef FUZZ_FAMILY
#error "FUZZ_FAMILY must be set (0 to 5)"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const m3_extractor *const pdf[] = {&m3_docs_pdf};
static const m3_extractor *const zip[] = {&m3_docs_odf, &m3_docs_ooxml, &m3_docs_epub};
static const m3_extractor *const html[] = {&m3_docs_html};
static const m3_extractor *const mail[] = {&m3_docs_eml, &m3_docs_mbox};
static const m3_extractor *const rtf[] = {&m3_docs_rtf};
static const m3_extractor *const gzip[] = {&m3_docs_gzip};
static const struct {
    const m3_extractor *const *ex;
    size_t n;
} families[] = {{pdf, 1}, {zip, 3}, {html, 1}, {mail, 2}, {rtf, 1}, {gzip, 1}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        m3_docs_register(NULL);  // nested documents (mail attachments, gzip) find their extractor
        ready = true;
    }
    const m3_extractor *e = families[FUZZ_FAMILY].ex[0];
    if (families[FUZZ_FAMILY].n > 1) {
        if (size < 1) return 0;
        e = families[FUZZ_FAMILY].ex[data[0] % families[FUZZ_FAMILY].n];
        data++, size--;
    }
    m3_extracted doc;
    m3_error err = {0};
    m3_status s = e->extract(data, size, "fuzz.doc", &doc, &err);
    if (s != M3_STATUS_OK) {
        M3_ASSERT(err.status == s && strstr(err.message, "fuzz.doc"));
        return 0;
    }
    M3_ASSERT(doc.text && doc.text[doc.len] == 0 && m3_extract_utf8_valid((const unsigned char *)doc.text, doc.len, false));
    for (size_t i = 0; i < doc.n_marks; i++)
        M3_ASSERT(doc.marks[i].text <= doc.len && (!i || doc.marks[i].text > doc.marks[i - 1].text) && doc.marks[i].where[0]);
    m3_extracted_clear(&doc);
    return 0;
}
