// SPDX-License-Identifier: MIT
//
// Text extraction and chunking. An extractor is a table of functions per format: new formats
// register one (m3_extract_register) without the index knowing about them.
//
//     const m3_extractor *ex = m3_extract_find(path, head, head_len);   // NULL: not supported
//     m3_extracted doc;
//     if (ex && ex->extract(data, size, path, &doc, &err) == M3_STATUS_OK) {
//         m3_text_chunk *chunks; size_t n;
//         m3_extract_chunk(tok, doc.text, doc.len, NULL, &chunks, &n, &err);
//         ... m3_extracted_file_offset(&doc, chunks[i].start, false) ...
//         free(chunks);
//         m3_extracted_clear(&doc);
//     }
//
// Plain text comes in as UTF-8 (a BOM is skipped), UTF-16 with a BOM, or a legacy 8-bit or CJK
// encoding detected with uchardet and converted with iconv. Markdown and source code are read as
// text. Files with NUL bytes (and no UTF-16 BOM) are binary: M3_STATUS_UNSUPPORTED.
//
// Threads: extractors and m3_extract_chunk are reentrant; m3_extract_register is not (call it at
// start-up).
//
// m3 index runs the extractors in a sandboxed helper process (sandbox.h): an extractor gets the
// file's bytes and must not need any file itself (the helper can open none, write nothing but its
// pipe and stderr, and has no network); it may allocate up to the helper's memory limit. An extractor added
// with m3_extract_register must be registered in the helper too (before m3_sandbox_serve).
#ifndef M3_EXTRACT_EXTRACT_H
#define M3_EXTRACT_EXTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "tokenizer/tokenizer.h"

typedef struct m3_offset_anchor {
    size_t text, file;  // text offset `text` comes from file offset `file`
} m3_offset_anchor;

// Where a stretch of the text comes from, in words a person understands: "page 12", "slide 3",
// "sheet Budget", "chapter 2", "message 7". The mark holds from its text offset up to the next.
enum { M3_LOCATION_MAX = 64 };
typedef struct m3_location_mark {
    size_t text;                    // text offset where the place starts
    char where[M3_LOCATION_MAX];    // printable UTF-8, NUL-terminated, never empty
} m3_location_mark;

typedef struct m3_extracted {
    char *text;               // UTF-8, NUL-terminated (malloc'd)
    size_t len;
    // Text offset → file offset: when identity is true they are equal plus `anchors[0].file`;
    // otherwise anchors (sorted, one at least per line) map line starts exactly.
    bool identity;
    m3_offset_anchor *anchors;
    size_t n_anchors;
    char encoding[32];        // "UTF-8", "UTF-16LE", "WINDOWS-1252", ...
    // Places (malloc'd, sorted by text offset; none for plain text).
    m3_location_mark *marks;
    size_t n_marks;
    // True for such documents: the text is not a byte range of the file, "file offsets" are text
    // offsets (m3_extracted_file_offset returns them as they are; no anchors).
    bool derived;
} m3_extracted;

typedef struct m3_extractor {
    const char *name;                 // "text", "markdown", "code"
    uint32_t version;                 // bumped when its output changes: files are re-extracted
    const char *const *extensions;    // lower-case, without the dot; NULL-terminated
    // Extracts the text of size bytes. Errors: M3_STATUS_UNSUPPORTED (binary), M3_STATUS_NOMEM.
    m3_status (*extract)(const unsigned char *data, size_t size, const char *path, m3_extracted *out,
                         m3_error *err);
    // Optional: true when the first bytes are this format (files without a known extension: an
    // mbox named "Inbox", a PDF named "scan"). Consulted before the plain-text fallback.
    bool (*sniff)(const unsigned char *head, size_t n);
} m3_extractor;

// The extractor for path by extension, else by sniffing the first bytes (registered extractors'
// sniff functions, then: text without NULs, or a UTF-16 BOM, is "text"). NULL when none applies.
const m3_extractor *m3_extract_find(const char *path, const unsigned char *head, size_t n);

// The extractor path's extension names (as m3_extract_find picks it), NULL when the extension names
// none or there is none.
const m3_extractor *m3_extract_find_ext(const char *path);

// Adds an extractor, consulted before the built-in ones. At most 32. Not thread-safe.
m3_status m3_extract_register(const m3_extractor *ex);

// The extractor called name (as m3_extract_find would pick among those of that name), NULL when
// there is none.
const m3_extractor *m3_extract_find_name(const char *name);

// A number that changes whenever the extractors change (their names and versions): files that no
// extractor could read are looked at again when it changes, since a new one may read them.
uint32_t m3_extract_set_version(void);

// The file offset of a text offset: exact for UTF-8; for other encodings the start of the line
// (round_up false) or of the next line (round_up true).
uint64_t m3_extracted_file_offset(const m3_extracted *doc, size_t text_off, bool round_up, uint64_t file_size);

void m3_extracted_clear(m3_extracted *doc);

// True when s[0..n) is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF); NUL bytes count as valid only when nul_ok.
bool m3_extract_utf8_valid(const unsigned char *s, size_t n, bool nul_ok);

// Decodes bytes (any supported encoding, see above) into out. Shared by the text extractors.
m3_status m3_extract_decode_text(const unsigned char *data, size_t size, const char *path, m3_extracted *out,
                                 m3_error *err);

typedef struct m3_chunk_options {
    size_t max_tokens;      // per chunk, <s> and </s> included (default 512)
    size_t overlap_tokens;  // repeated from the previous chunk (default 64), whole sentences
} m3_chunk_options;

typedef struct m3_text_chunk {
    size_t start, end;  // bytes of the text
    size_t tokens;      // estimated (pieces of its sentences + 2)
    // The place the chunk starts in (borrowed from the m3_extracted's marks: valid until it is
    // cleared), NULL when the document has no marks. Set by m3_extracted_locate_chunks.
    const char *location;
} m3_text_chunk;

// Cuts text into chunks of whole sentences (ICU's sentence break iterator) of at most
// max_tokens; a sentence longer than that is cut between words, a word longer than that between
// characters. Chunks skip leading and trailing white space; a text of only white space has none.
// *chunks is malloc'd. opt may be NULL.
m3_status m3_extract_chunk(const m3_tokenizer *tok, const char *text, size_t len, const m3_chunk_options *opt,
                           m3_text_chunk **chunks, size_t *n_chunks, m3_error *err);

// The place of text offset off: the last mark at or before it, NULL when none.
const char *m3_extracted_location(const m3_extracted *doc, size_t off);

// Sets chunks[i].location from doc's marks (the place where each chunk starts).
void m3_extracted_locate_chunks(const m3_extracted *doc, m3_text_chunk *chunks, size_t n);

#endif
