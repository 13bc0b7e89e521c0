// SPDX-License-Identifier: MIT
//
// Registration of the document extractors, their warm-up before the seccomp filter, nesting, and
// gzip-compressed files.
#include <gmime/gmime.h>
#include <libxml/parser.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "extract/docs-private.h"

enum { GZIP_VERSION = 1 };

static _Thread_local int depth;

m3_status docs_nested_append(m3_text_builder *b, const char *name, const unsigned char *data, size_t size,
                             const char *path, m3_error *err)
{
    if (depth >= DOCS_MAX_DEPTH)
        return m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: documents nested more than %d deep", path, DOCS_MAX_DEPTH);
    const m3_extractor *ex = m3_extract_find(name, data, size < 4096 ? size : 4096);
    if (!ex) return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: no extractor for %s", path, name);
    m3_extracted doc;
    depth++;
    m3_status s = ex->extract(data, size, path, &doc, err);
    depth--;
    if (s != M3_STATUS_OK) return s;
    // The nested document's paragraphs stay paragraphs; its places are one place here ("attachment
    // x.pdf"), the caller's.
    docs_append_paragraphs(b, doc.text, doc.len);
    m3_extracted_clear(&doc);
    if (m3_text_builder_failed(b))
        return m3_error_set(err, b->oom ? M3_STATUS_NOMEM : M3_STATUS_LIMIT, 0, "%s: text longer than %d MiB", path,
                            DOCS_MAX_TEXT >> 20);
    return M3_STATUS_OK;
}

void docs_append_paragraphs(m3_text_builder *b, const char *text, size_t len)
{
    m3_text_builder_break(b);
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - text) : len;
        m3_text_builder_append(b, text + i, e - i);
        m3_text_builder_break(b);
        i = e + 1;
    }
}

// ---- gzip ------------------------------------------------------------------------------------------

static m3_status extract_gzip(const unsigned char *data, size_t size, const char *path, m3_extracted *out,
                              m3_error *err)
{
    memset(out, 0, sizeof *out);
    // The inner name: "notes.txt.gz" → "notes.txt"; "x.tgz" is a tar archive, not read.
    size_t pl = strlen(path);
    char *inner = strdup(path);
    if (!inner) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    if (pl > 3 && !strcasecmp(path + pl - 3, ".gz")) inner[pl - 3] = 0;
    z_stream zs = {0};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        free(inner);
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    }
    size_t cap = 64 << 10, n = 0;
    unsigned char *buf = malloc(cap);
    m3_status s = buf ? M3_STATUS_OK : m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    zs.next_in = (unsigned char *)data;
    zs.avail_in = size > UINT32_MAX ? UINT32_MAX : (unsigned)size;
    while (s == M3_STATUS_OK) {
        if (n >= DOCS_MAX_ENTRY || (n > (1 << 20) && n / (size ? size : 1) > DOCS_MAX_RATIO)) {
            s = m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: gzip bomb (%zu MiB from %zu bytes, more than %d:1 or %d MiB)",
                             path, n >> 20, size, DOCS_MAX_RATIO, DOCS_MAX_ENTRY >> 20);
            break;
        }
        if (n == cap) {
            unsigned char *nb = realloc(buf, cap * 2);
            if (!nb) {
                s = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        zs.next_out = buf + n;
        zs.avail_out = (unsigned)(cap - n);
        int rc = inflate(&zs, Z_NO_FLUSH);
        n = cap - zs.avail_out;
        if (rc == Z_STREAM_END) break;
        if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
            s = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: truncated gzip file", path);
        } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
            s = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: damaged gzip file (%s)", path, zs.msg ? zs.msg : "inflate");
        }
    }
    inflateEnd(&zs);
    if (s == M3_STATUS_OK) {
        const m3_extractor *ex = m3_extract_find(inner, buf, n < 4096 ? n : 4096);
        if (!ex || ex == &m3_docs_gzip) {
            s = m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: no extractor for the compressed content", path);
        } else if (depth >= DOCS_MAX_DEPTH) {
            s = m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: documents nested more than %d deep", path, DOCS_MAX_DEPTH);
        } else {
            depth++;
            s = ex->extract(buf, n, path, out, err);
            depth--;
            // The text is not a byte range of the compressed file.
            if (s == M3_STATUS_OK && !out->derived) {
                free(out->anchors);
                out->anchors = NULL;
                out->n_anchors = 0;
                out->identity = false;
                out->derived = true;
            }
        }
    }
    free(buf);
    free(inner);
    return s;
}

static bool sniff_gzip(const unsigned char *head, size_t n) { return n >= 3 && head[0] == 0x1f && head[1] == 0x8b && head[2] == 8; }

static const char *const gzip_ext[] = {"gz", NULL};
const m3_extractor m3_docs_gzip = {"gzip", GZIP_VERSION, gzip_ext, extract_gzip, sniff_gzip};

// ---- registration ----------------------------------------------------------------------------------

// A one-page PDF saying "warm" (poppler repairs the missing cross-reference table).
static const char warm_pdf[] =
    "%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    "2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    "3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]/Contents 4 0 R"
    "/Resources<</Font<</F1 5 0 R>>>>>>endobj\n"
    "4 0 obj<</Length 36>>stream\nBT /F1 12 Tf 20 100 Td (warm) Tj ET\nendstream endobj\n"
    "5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n"
    "trailer<</Root 1 0 R>>\n%%EOF\n";

static const char warm_mail[] =
    "From: =?ISO-8859-1?Q?Andr=E9?= <a@example.org>\r\nTo: b@example.org\r\nSubject: =?UTF-8?B?d2FybQ==?=\r\n"
    "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain; charset=windows-1252\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9\r\n--x\r\nContent-Type: text/html; charset=iso-8859-15\r\n"
    "Content-Disposition: attachment; filename=a.html\r\n\r\n<html><body><p>caf\xe9</p></body></html>\r\n--x--\r\n";

static const m3_extractor *const all[] = {&m3_docs_pdf, &m3_docs_odf, &m3_docs_ooxml, &m3_docs_epub, &m3_docs_html,
                                          &m3_docs_eml, &m3_docs_mbox, &m3_docs_rtf, &m3_docs_gzip};

m3_status m3_docs_register(m3_error *err)
{
    static bool done;
    if (done) return M3_STATUS_OK;
    // libxml2 and GMime set up global tables; GLib its type system (poppler's, GMime's objects).
    xmlInitParser();
    g_mime_init();
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        m3_status s = m3_extract_register(all[i]);
        if (s != M3_STATUS_OK) return m3_error_set(err, s, 0, "cannot register the %s extractor", all[i]->name);
    }
    done = true;
    return M3_STATUS_OK;
}

void m3_docs_warm_up(void)
{
    // Samples through every library: what they load lazily is loaded now, before the filter.
    m3_extracted doc;
    if (m3_docs_pdf.extract((const unsigned char *)warm_pdf, sizeof warm_pdf - 1, "warm-up.pdf", &doc, NULL) == M3_STATUS_OK)
        m3_extracted_clear(&doc);
    if (m3_docs_eml.extract((const unsigned char *)warm_mail, sizeof warm_mail - 1, "warm-up.eml", &doc, NULL) == M3_STATUS_OK)
        m3_extracted_clear(&doc);
    static const char html[] = "<html><head><meta charset=windows-1251><title>t</title></head><body>\xe0</body></html>";
    if (m3_docs_html.extract((const unsigned char *)html, sizeof html - 1, "warm-up.html", &doc, NULL) == M3_STATUS_OK)
        m3_extracted_clear(&doc);
}
