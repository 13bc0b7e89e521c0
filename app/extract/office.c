// SPDX-License-Identifier: MIT
//
// Office documents: OpenDocument (odt, ods, odp: content.xml) and Office Open XML (docx:
// word/document.xml; pptx: the slides in presentation order; xlsx: the sheets in workbook order,
// shared strings resolved). Both are zip files of XML read with libzip and libxml2's streaming
// reader (docs-zip.c). Places: "slide N", "sheet NAME". Reading order of what is not running text
// (a person searches it too, so it is read, each once):
//   - text documents (odt, docx): the header(s) first, then the body, then the footnotes and
//     endnotes in order (not at their anchors: a note inside a sentence would cut it), then the
//     footer(s); headers and footers that repeat the same text (first page, left pages) once;
//   - presentations (odp, pptx): each slide's speaker notes after the slide's text, in its place.
// Comments (annotations) and change-tracked deletions are not read.
#include <stdlib.h>
#include <string.h>

#include "extract/docs-private.h"

// 2: headers, footers, footnotes, speaker notes. OpenDocument 3: flat files (fodt, fods, fodp),
// which version 2 failed on or left to the text extractor; a new version has them read again.
enum { OFFICE_VERSION = 2, ODF_VERSION = 3 };

typedef enum kind { WRITER, CALC, IMPRESS } kind;

static bool is(xmlTextReaderPtr r, const char *local)
{
    const xmlChar *n = xmlTextReaderConstLocalName(r);
    return n && !strcmp((const char *)n, local);
}

// The text of the current text node (or significant white space).
static bool append_value(m3_text_builder *b, xmlTextReaderPtr r)
{
    const xmlChar *v = xmlTextReaderConstValue(r);
    return !v || m3_text_builder_append_str(b, (const char *)v);
}

static m3_status finish_read(int rc, m3_text_builder *b, const char *path, const char *name, m3_error *err)
{
    if (rc < 0) return docs_xml_error(path, name, err);
    if (m3_text_builder_failed(b)) return m3_error_set(err, b->oom ? M3_STATUS_NOMEM : M3_STATUS_LIMIT, 0,
                                                       "%s: text longer than %d MiB", path, DOCS_MAX_TEXT >> 20);
    return M3_STATUS_OK;
}

// ---- OpenDocument ----------------------------------------------------------------------------------

// Appends b's text to out, paragraph by paragraph, unless seen[] already holds the same text (a
// first-page header repeating the default one). b is cleared.
static bool append_once(m3_text_builder *out, m3_text_builder *b, char **seen, size_t *n_seen, size_t max_seen)
{
    bool ok = !m3_text_builder_failed(b);
    bool dup = false;
    for (size_t i = 0; ok && i < *n_seen; i++) dup |= strlen(seen[i]) == b->len && !memcmp(seen[i], b->text, b->len);
    if (ok && !dup && b->len && *n_seen < max_seen) {
        seen[*n_seen] = strndup(b->text, b->len);
        ok = seen[*n_seen] != NULL;
        if (ok) ++*n_seen;
    }
    if (ok && !dup && b->len) docs_append_paragraphs(out, b->text, b->len);
    m3_text_builder_clear(b);
    m3_text_builder_init(b, DOCS_MAX_TEXT);
    return ok;
}

enum { MAX_REPEATS = 16 };  // distinct headers (footers) kept per document

// The headers (footer false) or footers of the master pages in part (styles.xml, or a flat file's
// whole XML), each distinct text once.
static m3_status odf_header_footer(m3_text_builder *out, const char *xml, size_t len, const char *part, bool footer,
                                   const char *path, m3_error *err)
{
    xmlTextReaderPtr r = docs_xml_reader(xml, len, part);
    if (!r) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    const char *want = footer ? "footer" : "header";
    size_t wl = strlen(want);
    m3_text_builder one;
    m3_text_builder_init(&one, DOCS_MAX_TEXT);
    char *seen[MAX_REPEATS];
    size_t n_seen = 0;
    int rc, in = 0;
    bool ok = true;
    while (ok && (rc = xmlTextReaderRead(r)) == 1) {
        int type = xmlTextReaderNodeType(r);
        const char *n = (const char *)xmlTextReaderConstLocalName(r);
        // header, header-left, header-first (not header-style, header-footer-properties)
        bool mine = n && !strncmp(n, want, wl) && (!n[wl] || !strcmp(n + wl, "-left") || !strcmp(n + wl, "-first"));
        if (type == XML_READER_TYPE_ELEMENT && mine && !xmlTextReaderIsEmptyElement(r)) {
            in++;
        } else if (type == XML_READER_TYPE_END_ELEMENT && mine && in) {
            if (!--in) ok = append_once(out, &one, seen, &n_seen, MAX_REPEATS);
        } else if (in && type == XML_READER_TYPE_END_ELEMENT && (is(r, "p") || is(r, "h"))) {
            m3_text_builder_break(&one);
        } else if (in && (type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_SIGNIFICANT_WHITESPACE)) {
            append_value(&one, r);
        }
    }
    for (size_t i = 0; i < n_seen; i++) free(seen[i]);
    m3_text_builder_clear(&one);
    xmlFreeTextReader(r);
    if (!ok) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    return finish_read(rc, out, path, part, err);
}

// The office:body of part (content.xml, or a flat file's whole XML) into b; footnotes and endnotes
// (their bodies, not their citation marks) into notes, for the caller to append after the body.
static m3_status odf_content(m3_text_builder *b, m3_text_builder *notes, const char *xml, size_t len, const char *part,
                             kind k, const char *path, m3_error *err)
{
    xmlTextReaderPtr r = docs_xml_reader(xml, len, part);
    if (!r) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    m3_text_builder *main = b;
    int rc, skip = 0, cell = 0, slide = 0, in_note = 0;
    while ((rc = xmlTextReaderRead(r)) == 1) {
        int type = xmlTextReaderNodeType(r);
        bool empty = type == XML_READER_TYPE_ELEMENT && xmlTextReaderIsEmptyElement(r);
        if (type == XML_READER_TYPE_ELEMENT) {
            // Annotations, change-tracked deletions and a note's citation mark ("1") are not text.
            // Nor is any child of the root but office:body: content.xml's others (scripts, font
            // declarations, automatic styles) hold none, but a flat file's office:meta (title,
            // generator, dates), office:settings and the master pages' headers (read apart) do.
            if (skip || is(r, "annotation") || is(r, "tracked-changes") || is(r, "note-citation") ||
                (xmlTextReaderDepth(r) == 1 && !is(r, "body"))) {
                if (!empty) skip++;
                continue;
            }
            if (is(r, "note-body") && !empty && !in_note++) {
                b = notes;
                m3_text_builder_break(b);
            } else if (is(r, "s")) {
                m3_text_builder_append(b, " ", 1);
            } else if (is(r, "tab") || is(r, "line-break")) {
                m3_text_builder_append(b, " ", 1);
            } else if (k == IMPRESS && is(r, "page")) {
                m3_text_builder_mark(b, "slide %d", ++slide);
            } else if (k == CALC && is(r, "table") && xmlTextReaderDepth(r) <= 3) {
                char *name = docs_xml_attr(r, "name");
                m3_text_builder_mark(b, "sheet %s", name ? name : "?");
                xmlFree(name);
            } else if (is(r, "table-cell") && !empty) {
                cell++;
            }
        } else if (type == XML_READER_TYPE_END_ELEMENT) {
            if (skip) {
                skip--;
                continue;
            }
            if (is(r, "note-body") && in_note && !--in_note) {
                m3_text_builder_break(b);
                b = main;
            } else if (is(r, "p") || is(r, "h")) {
                if (cell && !in_note) m3_text_builder_append(b, " ", 1);
                else m3_text_builder_break(b);
            } else if (is(r, "table-cell")) {
                if (cell) cell--;
                m3_text_builder_append(b, " ", 1);
            } else if (is(r, "table-row") || is(r, "list-item")) {
                m3_text_builder_break(b);
            }
        } else if (!skip && (type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_SIGNIFICANT_WHITESPACE)) {
            append_value(b, r);
        }
        if (m3_text_builder_failed(b)) break;
    }
    xmlFreeTextReader(r);
    if (m3_text_builder_failed(notes)) return finish_read(rc, notes, path, part, err);
    return finish_read(rc, main, path, part, err);
}

// The kind a document's MIME type names (the package's "mimetype" entry, a flat file's
// office:mimetype); a text document when it names none.
static kind odf_kind(const char *mime)
{
    if (mime && strstr(mime, "spreadsheet")) return CALC;
    if (mime && strstr(mime, "presentation")) return IMPRESS;
    return WRITER;
}

// The text of one document: for text documents the headers, the body, the notes, the footers (see
// the top of this file); styles (styles.xml, or NULL) and content (content.xml) may be the same
// bytes, a flat file's.
static m3_status odf_text(m3_text_builder *b, kind k, const char *styles, size_t styles_len, const char *styles_part,
                          const char *content, size_t content_len, const char *content_part, const char *path,
                          m3_error *err)
{
    m3_text_builder notes;
    m3_text_builder_init(&notes, DOCS_MAX_TEXT);
    m3_status s = M3_STATUS_OK;
    // Headers and footers: text documents only (a sheet's or slide's are fields: page numbers).
    if (k != WRITER) styles = NULL;
    if (styles) s = odf_header_footer(b, styles, styles_len, styles_part, false, path, err);
    if (s == M3_STATUS_OK) s = odf_content(b, &notes, content, content_len, content_part, k, path, err);
    if (s == M3_STATUS_OK && notes.len) docs_append_paragraphs(b, notes.text, notes.len);
    if (s == M3_STATUS_OK && styles) s = odf_header_footer(b, styles, styles_len, styles_part, true, path, err);
    m3_text_builder_clear(&notes);
    return s;
}

// ---- flat OpenDocument -----------------------------------------------------------------------------

// A flat file (fodt, fods, fodp) is one XML document whose root, office:document, holds what the
// package's parts hold (office:meta, office:settings, office:styles, office:master-styles,
// office:body), in the same vocabulary; so it is read by the same walkers. It has no password
// protection (ODF encrypts the parts of a package) and no entries to inflate: its bytes are the
// file's, read from memory under the same XML options and caps as a package's content.xml.

#define ODF_OFFICE_NS "urn:oasis:names:tc:opendocument:xmlns:office:1.0"

// Skips a UTF-8 byte order mark and white space; true when the next byte opens markup ('<') or the
// bytes start with a UTF-16 byte order mark: the file is XML, not a zip package. *at receives the
// offset of the '<' (0 for UTF-16).
static bool odf_xml_start(const unsigned char *d, size_t n, size_t *at)
{
    if (n >= 2 && ((d[0] == 0xff && d[1] == 0xfe) || (d[0] == 0xfe && d[1] == 0xff))) {
        *at = 0;
        return true;
    }
    size_t i = n >= 3 && d[0] == 0xef && d[1] == 0xbb && d[2] == 0xbf ? 3 : 0;
    while (i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\r' || d[i] == '\n')) i++;
    *at = i;
    return i < n && d[i] == '<';
}

// True when the first bytes are XML whose root element is office:document (the prefix LibreOffice
// and every ODF writer we know use: sniffing cannot resolve namespaces, the extractor does). The
// XML declaration, comments, processing instructions and a document type may come before it.
static bool sniff_flat_odf(const unsigned char *head, size_t n)
{
    size_t i;
    // UTF-16 (which odf_xml_start lets through for the extractor) cannot be matched byte-wise.
    if (!odf_xml_start(head, n, &i) || head[i] != '<') return false;
    while (i < n) {
        if (head[i] == ' ' || head[i] == '\t' || head[i] == '\r' || head[i] == '\n') {
            i++;
            continue;
        }
        if (head[i] != '<' || i + 1 >= n) return false;
        const char *end = NULL;
        if (head[i + 1] == '?') end = "?>";
        else if (n - i >= 4 && !memcmp(head + i, "<!--", 4)) end = "-->";
        else if (head[i + 1] == '!') end = ">";  // a document type without an internal subset
        if (!end) {
            static const char root[] = "<office:document";
            size_t rl = sizeof root - 1;
            return n - i > rl && !memcmp(head + i, root, rl) &&
                   (head[i + rl] == ' ' || head[i + rl] == '\t' || head[i + rl] == '\r' || head[i + rl] == '\n' ||
                    head[i + rl] == '>');
        }
        const unsigned char *e = memmem(head + i + 2, n - i - 2, end, strlen(end));
        if (!e) return false;
        i = (size_t)(e - head) + strlen(end);
    }
    return false;
}

static m3_status extract_flat_odf(const unsigned char *data, size_t size, const char *path, m3_extracted *out,
                                  m3_error *err)
{
    // The same cap as one decompressed entry of a package: the file is its own content.xml.
    if (size > DOCS_MAX_ENTRY)
        return m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: flat OpenDocument file of %zu MiB (at most %d MiB)", path,
                            size >> 20, DOCS_MAX_ENTRY >> 20);
    const char *xml = (const char *)data;
    const char *part = "the document";  // for messages: "PATH: damaged XML in the document"
    // The root says what the file is and, in office:mimetype, its kind (the walkers need the kind
    // before they meet the body); reading up to the root's start tag costs next to nothing.
    xmlTextReaderPtr r = docs_xml_reader(xml, size, part);
    if (!r) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    int rc;
    while ((rc = xmlTextReaderRead(r)) == 1 && xmlTextReaderNodeType(r) != XML_READER_TYPE_ELEMENT) {}
    if (rc != 1) {
        xmlFreeTextReader(r);
        return docs_xml_error(path, part, err);
    }
    const xmlChar *ns = xmlTextReaderConstNamespaceUri(r);
    if (!is(r, "document") || !ns || strcmp((const char *)ns, ODF_OFFICE_NS)) {
        const xmlChar *name = xmlTextReaderConstName(r);
        m3_status s = m3_error_set(err, M3_STATUS_FORMAT, 0,
                                   "%s: not an OpenDocument file (XML whose root is <%s>, not a flat document's "
                                   "office:document)", path, name ? (const char *)name : "?");
        xmlFreeTextReader(r);
        return s;
    }
    char *mime = docs_xml_attr(r, "mimetype");
    kind k = odf_kind(mime);
    xmlFree(mime);
    xmlFreeTextReader(r);
    m3_text_builder b;
    m3_text_builder_init(&b, DOCS_MAX_TEXT);
    m3_status s = odf_text(&b, k, xml, size, part, xml, size, part, path, err);
    if (s != M3_STATUS_OK) {
        m3_text_builder_clear(&b);
        return s;
    }
    return m3_text_builder_finish(&b, path, out, err);
}

static m3_status extract_odf(const unsigned char *data, size_t size, const char *path, m3_extracted *out,
                             m3_error *err)
{
    memset(out, 0, sizeof *out);
    // By content, not by name: a flat file is XML, a package a zip file (whatever they are called).
    size_t at;
    if (odf_xml_start(data, size, &at)) return extract_flat_odf(data, size, path, out, err);
    docs_zip z;
    m3_status s = docs_zip_open(&z, data, size, path, err);
    if (s != M3_STATUS_OK) return s;
    char *mime = NULL, *xml = NULL;
    size_t len;
    kind k = WRITER;
    if (docs_zip_read(&z, "mimetype", &mime, &len, NULL) == M3_STATUS_OK) k = odf_kind(mime);
    free(mime);
    // A password-protected document lists its encrypted parts in the manifest.
    char *manifest = NULL;
    if (docs_zip_read(&z, "META-INF/manifest.xml", &manifest, &len, NULL) == M3_STATUS_OK &&
        strstr(manifest, "encryption-data")) {
        free(manifest);
        docs_zip_close(&z);
        return docs_encrypted(path, err);
    }
    free(manifest);
    m3_text_builder b;
    m3_text_builder_init(&b, DOCS_MAX_TEXT);
    char *styles = NULL;
    size_t styles_len = 0;
    if (k != WRITER || docs_zip_read(&z, "styles.xml", &styles, &styles_len, NULL) != M3_STATUS_OK) {
        free(styles);
        styles = NULL;
    }
    s = docs_zip_read(&z, "content.xml", &xml, &len, err);
    if (s == M3_STATUS_OK) s = odf_text(&b, k, styles, styles_len, "styles.xml", xml, len, "content.xml", path, err);
    free(styles);
    free(xml);
    docs_zip_close(&z);
    if (s != M3_STATUS_OK) {
        m3_text_builder_clear(&b);
        return s == M3_STATUS_NOT_FOUND ? m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: not an OpenDocument file (no content.xml)", path) : s;
    }
    return m3_text_builder_finish(&b, path, out, err);
}

// Packages and flat files alike (extract_odf tells them apart by their bytes). Drawings (odg, fodg)
// are not read, packaged or flat.
static const char *const odf_ext[] = {"odt", "ods", "odp", "ott", "ots", "otp", "fodt", "fods", "fodp", NULL};
const m3_extractor m3_docs_odf = {"opendocument", ODF_VERSION, odf_ext, extract_odf, sniff_flat_odf};

// ---- Office Open XML -----------------------------------------------------------------------------

// One XML part of a docx (document), pptx (slide) or xlsx (shared strings, sheet). For a sheet,
// shared[] resolves cells of type "s".
typedef struct ooxml_part {
    const char *name;
    char **shared;        // xlsx shared strings (sheet parts)
    size_t n_shared;
    char ***collect;      // xlsx: collect shared strings into *collect
    size_t *n_collect;
} ooxml_part;

#define W_NS "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

static bool push_str(char ***v, size_t *n, size_t *cap, const char *s, size_t len)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 256;
        char **nv = realloc(*v, c * sizeof *nv);
        if (!nv) return false;
        *v = nv;
        *cap = c;
    }
    char *d = strndup(s, len);
    if (!d) return false;
    (*v)[(*n)++] = d;
    return true;
}

static m3_status ooxml_part_read(m3_text_builder *b, const char *xml, size_t len, const ooxml_part *p, const char *path,
                                 m3_error *err)
{
    xmlTextReaderPtr r = docs_xml_reader(xml, len, p->name);
    if (!r) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    int rc;
    int in_t = 0, skip = 0;
    bool in_v = false, shared_cell = false, oom = false;
    size_t cap_collect = 0;
    char *si = NULL;  // the shared string being collected
    size_t si_len = 0;
    while ((rc = xmlTextReaderRead(r)) == 1 && !oom) {
        int type = xmlTextReaderNodeType(r);
        bool empty = type == XML_READER_TYPE_ELEMENT && xmlTextReaderIsEmptyElement(r);
        if (type == XML_READER_TYPE_ELEMENT) {
            // Deleted (tracked) text, field codes and phonetic guides are not the text.
            // So are the separator lines of footnotes.xml (w:footnote with a w:type).
            bool separator = false;
            if (is(r, "footnote") || is(r, "endnote")) {
                xmlChar *t = xmlTextReaderGetAttributeNs(r, BAD_CAST "type", BAD_CAST W_NS);
                separator = t != NULL;
                xmlFree(t);
            }
            if (skip || separator || is(r, "del") || is(r, "instrText") || is(r, "rPh") || is(r, "delText")) {
                if (!empty) skip++;
                continue;
            }
            if (is(r, "t") && !empty) in_t++;
            else if (is(r, "tab") || is(r, "br") || is(r, "cr")) m3_text_builder_append(b, " ", 1);
            else if (is(r, "c") && p->shared) {
                char *t = docs_xml_attr(r, "t");
                shared_cell = t && !strcmp(t, "s");
                xmlFree(t);
            } else if (is(r, "v") && !empty) in_v = true;
            else if (is(r, "si") && p->collect && !empty) {
                free(si);
                si = NULL;
                si_len = 0;
            }
        } else if (type == XML_READER_TYPE_END_ELEMENT) {
            if (skip) {
                skip--;
                continue;
            }
            if (is(r, "t")) {
                if (in_t) in_t--;
            } else if (is(r, "p")) {
                m3_text_builder_break(b);
            } else if (is(r, "v")) {
                in_v = false;
            } else if (is(r, "c") && p->shared) {
                m3_text_builder_append(b, " ", 1);
            } else if (is(r, "row")) {
                m3_text_builder_break(b);
            } else if (is(r, "si") && p->collect) {
                oom = !push_str(p->collect, p->n_collect, &cap_collect, si ? si : "", si_len);
                free(si);
                si = NULL;
                si_len = 0;
            }
        } else if (!skip && (type == XML_READER_TYPE_TEXT || type == XML_READER_TYPE_SIGNIFICANT_WHITESPACE)) {
            const char *v = (const char *)xmlTextReaderConstValue(r);
            if (!v) continue;
            if (p->collect) {
                if (!in_t) continue;
                size_t n = strlen(v);
                char *ns = realloc(si, si_len + n + 1);
                if (!ns || *p->n_collect >= (size_t)DOCS_MAX_ENTRY / 16) {
                    free(ns ? ns : NULL);
                    si = ns ? NULL : si;
                    oom = true;
                    break;
                }
                memcpy(ns + si_len, v, n + 1);
                si = ns;
                si_len += n;
            } else if (in_v && shared_cell) {
                char *end;
                unsigned long i = strtoul(v, &end, 10);
                if (end != v && i < p->n_shared) m3_text_builder_append_str(b, p->shared[i]);
            } else if (in_t || in_v) {
                m3_text_builder_append_str(b, v);
            }
        }
        if (m3_text_builder_failed(b)) break;
    }
    free(si);
    xmlFreeTextReader(r);
    if (oom) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    return finish_read(rc, b, path, p->name, err);
}

static m3_status ooxml_read_part(docs_zip *z, m3_text_builder *b, const ooxml_part *p, m3_error *err)
{
    char *xml;
    size_t len;
    m3_status s = docs_zip_read(z, p->name, &xml, &len, err);
    if (s != M3_STATUS_OK) return s;
    s = ooxml_part_read(b, xml, len, p, z->path, err);
    free(xml);
    return s;
}

// The ordered list parts of a pptx (sldId r:id in presentation.xml) or xlsx (sheet r:id, name in
// workbook.xml), resolved through the relationships. Calls fn for each.
typedef m3_status (*part_fn)(docs_zip *z, m3_text_builder *b, const char *target, const char *name, int n,
                             void *user, m3_error *err);

static m3_status ooxml_each(docs_zip *z, m3_text_builder *b, const char *main_part, const char *element, part_fn fn,
                            void *user, m3_error *err)
{
    docs_rels rels;
    m3_status s = docs_rels_read(z, main_part, &rels, err);
    if (s != M3_STATUS_OK) return s;
    char *xml;
    size_t len;
    if ((s = docs_zip_read(z, main_part, &xml, &len, err)) != M3_STATUS_OK) {
        docs_rels_free(&rels);
        return s;
    }
    xmlTextReaderPtr r = docs_xml_reader(xml, len, main_part);
    int rc = -1, n = 0;
    while (r && s == M3_STATUS_OK && (rc = xmlTextReaderRead(r)) == 1) {
        if (xmlTextReaderNodeType(r) != XML_READER_TYPE_ELEMENT || !is(r, element)) continue;
        // r:id (transitional or strict namespace), not the element's own numeric id.
        char *id = (char *)xmlTextReaderGetAttributeNs(
            r, BAD_CAST "id", BAD_CAST "http://schemas.openxmlformats.org/officeDocument/2006/relationships");
        if (!id)
            id = (char *)xmlTextReaderGetAttributeNs(r, BAD_CAST "id",
                                                     BAD_CAST "http://purl.oclc.org/ooxml/officeDocument/relationships");
        char *name = docs_xml_attr(r, "name");
        const char *target = id ? docs_rels_get(&rels, id) : NULL;
        if (target && ++n <= DOCS_MAX_PARTS) s = fn(z, b, target, name, n, user, err);
        xmlFree(id);
        xmlFree(name);
    }
    if (r) xmlFreeTextReader(r);
    free(xml);
    docs_rels_free(&rels);
    if (s == M3_STATUS_OK && rc < 0) s = r ? docs_xml_error(z->path, main_part, err) : m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", z->path);
    return s;
}

// The parts of one relationship type of source ("header" of word/document.xml), in name order;
// each distinct text once when seen is given. A part that is absent is skipped.
static m3_status ooxml_related(docs_zip *z, m3_text_builder *b, const docs_rels *rels, const char *type, bool once,
                               m3_error *err)
{
    size_t n;
    const char **t = docs_rels_of_type(rels, type, &n);
    char *seen[MAX_REPEATS];
    size_t n_seen = 0;
    m3_status s = M3_STATUS_OK;
    m3_text_builder one;
    m3_text_builder_init(&one, DOCS_MAX_TEXT);
    for (size_t i = 0; i < n && s == M3_STATUS_OK; i++) {
        ooxml_part p = {.name = t[i]};
        s = ooxml_read_part(z, once ? &one : b, &p, err);
        if (s == M3_STATUS_NOT_FOUND) s = M3_STATUS_OK;
        if (s == M3_STATUS_OK && once && !append_once(b, &one, seen, &n_seen, MAX_REPEATS))
            s = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", z->path);
    }
    for (size_t i = 0; i < n_seen; i++) free(seen[i]);
    m3_text_builder_clear(&one);
    free(t);
    return s;
}

static m3_status slide_fn(docs_zip *z, m3_text_builder *b, const char *target, const char *name, int n, void *user,
                          m3_error *err)
{
    (void)name, (void)user;
    m3_text_builder_mark(b, "slide %d", n);
    ooxml_part p = {.name = target};
    m3_status s = ooxml_read_part(z, b, &p, err);
    // Its speaker notes (ppt/notesSlides/notesSlideN.xml) after it, in its place.
    docs_rels rels;
    if (s == M3_STATUS_OK && docs_rels_read(z, target, &rels, NULL) == M3_STATUS_OK) {
        m3_text_builder_break(b);
        s = ooxml_related(z, b, &rels, "notesSlide", false, err);
        docs_rels_free(&rels);
    }
    return s;
}

typedef struct shared_strings {
    char **v;
    size_t n;
} shared_strings;

static m3_status sheet_fn(docs_zip *z, m3_text_builder *b, const char *target, const char *name, int n, void *user,
                          m3_error *err)
{
    (void)n;
    shared_strings *ss = user;
    m3_text_builder_mark(b, "sheet %s", name ? name : "?");
    ooxml_part p = {.name = target, .shared = ss->v ? ss->v : (char *[]){NULL}, .n_shared = ss->n};
    return ooxml_read_part(z, b, &p, err);
}

// An encrypted OOXML file is not a zip at all but an OLE compound file holding "EncryptedPackage".
static bool ole_encrypted(const unsigned char *d, size_t size)
{
    static const unsigned char ole[8] = {0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1};
    static const char name[] = "E\0n\0c\0r\0y\0p\0t\0e\0d\0P\0a\0c\0k\0a\0g\0e";
    return size >= 8 && !memcmp(d, ole, 8) && memmem(d, size, name, sizeof name - 1);
}

static m3_status extract_ooxml(const unsigned char *data, size_t size, const char *path, m3_extracted *out,
                               m3_error *err)
{
    memset(out, 0, sizeof *out);
    if (ole_encrypted(data, size)) return docs_encrypted(path, err);
    docs_zip z;
    m3_status s = docs_zip_open(&z, data, size, path, err);
    if (s != M3_STATUS_OK) return s;
    m3_text_builder b;
    m3_text_builder_init(&b, DOCS_MAX_TEXT);
    if (docs_zip_has(&z, "word/document.xml")) {
        // Headers, the body, footnotes, endnotes, footers (the order at the top of this file).
        docs_rels rels = {0};
        bool related = docs_rels_read(&z, "word/document.xml", &rels, NULL) == M3_STATUS_OK;
        if (related) s = ooxml_related(&z, &b, &rels, "header", true, err);
        ooxml_part p = {.name = "word/document.xml"};
        if (s == M3_STATUS_OK) s = ooxml_read_part(&z, &b, &p, err);
        if (related && s == M3_STATUS_OK) m3_text_builder_break(&b);
        if (related && s == M3_STATUS_OK) s = ooxml_related(&z, &b, &rels, "footnotes", false, err);
        if (related && s == M3_STATUS_OK) s = ooxml_related(&z, &b, &rels, "endnotes", false, err);
        if (related && s == M3_STATUS_OK) s = ooxml_related(&z, &b, &rels, "footer", true, err);
        if (related) docs_rels_free(&rels);
    } else if (docs_zip_has(&z, "ppt/presentation.xml")) {
        s = ooxml_each(&z, &b, "ppt/presentation.xml", "sldId", slide_fn, NULL, err);
    } else if (docs_zip_has(&z, "xl/workbook.xml")) {
        shared_strings ss = {0};
        if (docs_zip_has(&z, "xl/sharedStrings.xml")) {
            ooxml_part p = {.name = "xl/sharedStrings.xml", .collect = &ss.v, .n_collect = &ss.n};
            m3_text_builder ignored;
            m3_text_builder_init(&ignored, DOCS_MAX_TEXT);
            s = ooxml_read_part(&z, &ignored, &p, err);
            m3_text_builder_clear(&ignored);
        }
        if (s == M3_STATUS_OK) s = ooxml_each(&z, &b, "xl/workbook.xml", "sheet", sheet_fn, &ss, err);
        for (size_t i = 0; i < ss.n; i++) free(ss.v[i]);
        free(ss.v);
    } else {
        s = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: not an Office Open XML document (no document, presentation or workbook)", path);
    }
    docs_zip_close(&z);
    if (s != M3_STATUS_OK) {
        m3_text_builder_clear(&b);
        // A part the format requires is missing: the file is damaged.
        if (s == M3_STATUS_NOT_FOUND && err) err->status = M3_STATUS_FORMAT;
        return s == M3_STATUS_NOT_FOUND ? M3_STATUS_FORMAT : s;
    }
    return m3_text_builder_finish(&b, path, out, err);
}

static const char *const ooxml_ext[] = {"docx", "docm", "dotx", "xlsx", "xlsm", "pptx", "pptm", "ppsx", NULL};
const m3_extractor m3_docs_ooxml = {"ooxml", OFFICE_VERSION, ooxml_ext, extract_ooxml, NULL};
