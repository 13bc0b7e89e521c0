// SPDX-License-Identifier: MIT
//
// The extractors of structured documents: PDF (poppler TextOutputDev), OpenDocument and Office Open XML
// (libzip + libxml2), EPUB (libzip + libxml2), HTML/XHTML (libxml2's HTML parser), e-mail (.eml,
// mbox: GMime), RTF (hand-written: no Debian library reads it) and gzip (zlib). They live in app/
// because GMime is a GLib library (and poppler is C++) and core/ stays GLib-free; only the sandboxed
// helper ('m3 extract-helper') and the tests link them (docs/formats.md says why each library).
//
//     // the helper, before m3_sandbox_serve:
//     if (m3_docs_register(&err) != M3_STATUS_OK) ...;
//     m3_docs_warm_up();
//     // the indexer (it decides from the extractor's name and version whether a file must be
//     // extracted again, with m3_extract_find): m3_docs_register only.
//
// m3_docs_register initialises the libraries and registers the extractors (m3_extract_register);
// further calls do nothing. m3_docs_warm_up runs a sample of each library's formats through its
// extractor, so that everything the libraries load lazily (GLib's type system, GMime's charset
// tables, iconv modules, poppler's global parameters and fonts configuration) is loaded before the seccomp filter denies
// opening files. Not thread-safe: call them at start-up.
//
// Every extractor returns, besides OK: M3_STATUS_FORMAT (damaged or truncated: "PATH: damaged PDF
// (...)"), M3_STATUS_UNSUPPORTED with "PATH: skipped: encrypted" for password-protected files,
// M3_STATUS_LIMIT for decompression bombs, too deep nesting and texts over 64 MiB, M3_STATUS_NOMEM.
// Threads: extractors are reentrant except for their shared nesting depth (attachments, gzip), which
// is per thread.
#ifndef M3_APP_EXTRACT_DOCS_H
#define M3_APP_EXTRACT_DOCS_H

#include "base/status.h"
#include "extract/extract.h"

m3_status m3_docs_register(m3_error *err);
void m3_docs_warm_up(void);

// Each extractor's table (for the fuzz target and the tests, which call them in-process).
extern const m3_extractor m3_docs_pdf, m3_docs_odf, m3_docs_ooxml, m3_docs_epub, m3_docs_html, m3_docs_eml,
    m3_docs_mbox, m3_docs_rtf, m3_docs_gzip;

#endif
