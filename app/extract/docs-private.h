// SPDX-License-Identifier: MIT
//
// Shared by the document extractors (app/extract): limits, the zip reader with bomb caps, XML
// reading options, the HTML walker (HTML pages, EPUB chapters, HTML mail), nested extraction.
#ifndef M3_APP_EXTRACT_DOCS_PRIVATE_H
#define M3_APP_EXTRACT_DOCS_PRIVATE_H

#include <libxml/xmlreader.h>
#include <stdbool.h>
#include <stddef.h>
#include <zip.h>

#include "extract/builder.h"
#include "extract/docs.h"

enum {
    DOCS_MAX_TEXT = 64 << 20,            // bytes of extracted text per document
    DOCS_MAX_ENTRY = 256 << 20,          // bytes of one decompressed zip entry or gzip stream
    DOCS_MAX_TOTAL = 512 << 20,          // bytes decompressed per document, all entries together
    DOCS_MAX_RATIO = 200,                // decompressed / compressed, beyond 1 MiB: a bomb
    DOCS_MAX_ENTRIES = 20000,            // entries of a zip file
    DOCS_MAX_DEPTH = 3,                  // nesting of documents (mail attachments, gzip)
    DOCS_MAX_PARTS = 10000,              // parts of a mail, chapters of an e-book, slides, sheets
};

// ---- zip ---------------------------------------------------------------------------------------

typedef struct docs_zip {
    zip_t *z;
    const char *path;     // for messages
    uint64_t total;       // bytes decompressed so far
} docs_zip;

// Opens size bytes as a zip file. FORMAT "PATH: damaged or truncated zip file (...)" on failure.
m3_status docs_zip_open(docs_zip *z, const unsigned char *data, size_t size, const char *path, m3_error *err);
void docs_zip_close(docs_zip *z);
// True when the archive holds name (exact, case-sensitive as the formats require).
bool docs_zip_has(docs_zip *z, const char *name);
// Reads one entry whole (malloc'd, NUL-terminated; *len without the NUL). NOT_FOUND when absent,
// UNSUPPORTED "skipped: encrypted" for an encrypted entry, LIMIT for a bomb, FORMAT when damaged.
m3_status docs_zip_read(docs_zip *z, const char *name, char **out, size_t *len, m3_error *err);

// ---- XML ---------------------------------------------------------------------------------------

// A reader over len bytes (no network, no DTD loading, no entity substitution, libxml2's default
// depth and size limits); NULL when out of memory. name is the entry, for messages.
xmlTextReaderPtr docs_xml_reader(const char *data, size_t len, const char *name);
// The error after xmlTextReaderRead returned -1: FORMAT "PATH: damaged XML in NAME".
m3_status docs_xml_error(const char *path, const char *name, m3_error *err);
// The attribute's value by local name (malloc'd by libxml2: xmlFree), NULL when absent.
char *docs_xml_attr(xmlTextReaderPtr r, const char *local);
// Resolves a relative reference against the folder of base ("OEBPS/content.opf" + "ch1.xhtml" →
// "OEBPS/ch1.xhtml"; "../x" climbs; "%20" decoded; a fragment dropped). malloc'd; NULL on error.
char *docs_resolve(const char *base, const char *ref);

// Maps a relationships part (OOXML "_rels/x.rels") Id → Target, resolved against source part.
typedef struct docs_rels {
    char **id, **target;
    char **type;          // the Type URI's last segment: "header", "footnotes", "notesSlide"...
    size_t n;
} docs_rels;
m3_status docs_rels_read(docs_zip *z, const char *source, docs_rels *out, m3_error *err);
const char *docs_rels_get(const docs_rels *r, const char *id);
// The targets of the relationships of one type ("header"), sorted by name (header1.xml first);
// *n of them, borrowed from r. NULL (and *n 0) when none or out of memory.
const char **docs_rels_of_type(const docs_rels *r, const char *type, size_t *n);
void docs_rels_free(docs_rels *r);

// ---- HTML --------------------------------------------------------------------------------------

// Appends the text of an HTML or XHTML document: title first, then the body in document order;
// scripts, styles and templates dropped; block elements end paragraphs. encoding NULL: from BOM,
// meta or sniffing. *title_out (when non-NULL) receives the first h1/title (malloc'd or NULL).
m3_status docs_html_append(m3_text_builder *b, const unsigned char *data, size_t size, const char *encoding,
                           const char *path, bool with_title, m3_error *err);

// ---- nesting -------------------------------------------------------------------------------------

// Extracts an embedded document (a mail attachment, the content of a .gz) with the extractor its
// name and bytes call for, one level deeper; LIMIT past DOCS_MAX_DEPTH. The text is appended.
m3_status docs_nested_append(m3_text_builder *b, const char *name, const unsigned char *data, size_t size,
                             const char *path, m3_error *err);

// Appends len bytes of text (paragraphs separated by '\n') to b as paragraphs of their own.
void docs_append_paragraphs(m3_text_builder *b, const char *text, size_t len);
// "PATH: skipped: encrypted"
m3_status docs_encrypted(const char *path, m3_error *err);

#endif
