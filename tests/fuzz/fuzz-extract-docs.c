// SPDX-License-Identifier: MIT
//
// Arbitrary bytes through every document extractor (app/extract/docs.h): the first byte picks the
// extractor (PDF, OpenDocument, OOXML, EPUB, HTML, eml, mbox, RTF, gzip), the rest is the file.
// An extractor must return an error naming the file, or text that is UTF-8 with places sorted and
// in range. Seeds: tests/fuzz/corpus/extract-docs/ (the test documents, each behind its byte).
#include <stdint.h>
#include <string.h>

#include "extract/docs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const m3_extractor *const ex[] = {&m3_docs_pdf, &m3_docs_odf, &m3_docs_ooxml, &m3_docs_epub, &m3_docs_html,
                                             &m3_docs_eml, &m3_docs_mbox, &m3_docs_rtf, &m3_docs_gzip};
    static bool ready;
    if (!ready) {
        m3_docs_register(NULL);  // nested documents (mail attachments, gzip) find their extractor
        ready = true;
    }
    if (size < 1) return 0;
    const m3_extractor *e = ex[data[0] % (sizeof ex / sizeof ex[0])];
    m3_extracted doc;
    m3_error err = {0};
    m3_status s = e->extract(data + 1, size - 1, "fuzz.doc", &doc, &err);
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
