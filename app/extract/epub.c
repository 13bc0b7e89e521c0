// SPDX-License-Identifier: MIT
//
// EPUB (2 and 3): META-INF/container.xml names the package document (OPF); its spine lists the
// chapters (XHTML) in reading order, its manifest where they are. Each chapter is read by the HTML
// walker (html.c) and marked "chapter N" (N counts the spine documents that hold text). A book
// whose chapters are listed in META-INF/encryption.xml (DRM) is "skipped: encrypted"; font
// obfuscation alone lists only fonts and is fine.
#include <stdlib.h>
#include <string.h>

#include "extract/docs-private.h"

enum { EPUB_VERSION = 1 };

static bool is(xmlTextReaderPtr r, const char *local)
{
    const xmlChar *n = xmlTextReaderConstLocalName(r);
    return n && !strcmp((const char *)n, local);
}

// The first element's attribute in an XML part (container.xml's rootfile full-path).
static char *first_attr(const char *xml, size_t len, const char *name, const char *element, const char *attr)
{
    xmlTextReaderPtr r = docs_xml_reader(xml, len, name);
    char *v = NULL;
    while (r && !v && xmlTextReaderRead(r) == 1)
        if (xmlTextReaderNodeType(r) == XML_READER_TYPE_ELEMENT && is(r, element)) {
            char *a = docs_xml_attr(r, attr);
            if (a) v = strdup(a);
            xmlFree(a);
        }
    if (r) xmlFreeTextReader(r);
    return v;
}

typedef struct item {
    char *id, *href;
} item;

static m3_status read_chapter(docs_zip *z, m3_text_builder *b, const char *href, int *chapter, const char *enc,
                              m3_error *err)
{
    if (enc && strstr(enc, href)) return docs_encrypted(z->path, err);
    char *x;
    size_t len;
    m3_status s = docs_zip_read(z, href, &x, &len, err);
    if (s == M3_STATUS_NOT_FOUND) return M3_STATUS_OK;  // a dangling spine entry: the rest is read
    if (s != M3_STATUS_OK) return s;
    size_t before = b->len;
    m3_text_builder_mark(b, "chapter %d", *chapter + 1);
    s = docs_html_append(b, (const unsigned char *)x, len, NULL, z->path, false, err);
    if (b->len > before) ++*chapter;
    free(x);
    return s;
}

static m3_status extract_epub(const unsigned char *data, size_t size, const char *path, m3_extracted *out,
                              m3_error *err)
{
    memset(out, 0, sizeof *out);
    docs_zip z;
    m3_status s = docs_zip_open(&z, data, size, path, err);
    if (s != M3_STATUS_OK) return s;
    char *xml = NULL, *opf_name = NULL, *enc = NULL;
    size_t len, enc_len;
    item *items = NULL;
    size_t n_items = 0, cap = 0;
    m3_text_builder b;
    m3_text_builder_init(&b, DOCS_MAX_TEXT);
    if ((s = docs_zip_read(&z, "META-INF/container.xml", &xml, &len, err)) != M3_STATUS_OK) goto out;
    opf_name = first_attr(xml, len, "META-INF/container.xml", "rootfile", "full-path");
    free(xml);
    xml = NULL;
    if (!opf_name) {
        s = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: damaged EPUB (no package document in META-INF/container.xml)", path);
        goto out;
    }
    if (docs_zip_read(&z, "META-INF/encryption.xml", &enc, &enc_len, NULL) != M3_STATUS_OK) enc = NULL;
    if ((s = docs_zip_read(&z, opf_name, &xml, &len, err)) != M3_STATUS_OK) goto out;
    xmlTextReaderPtr r = docs_xml_reader(xml, len, opf_name);
    if (!r) {
        s = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
        goto out;
    }
    int rc, chapter = 0, spine = 0;
    while (s == M3_STATUS_OK && (rc = xmlTextReaderRead(r)) == 1) {
        if (xmlTextReaderNodeType(r) != XML_READER_TYPE_ELEMENT) continue;
        if (is(r, "item") && n_items < DOCS_MAX_PARTS) {
            char *id = docs_xml_attr(r, "id"), *href = docs_xml_attr(r, "href");
            if (id && href) {
                if (n_items == cap) {
                    cap = cap ? 2 * cap : 32;
                    item *ni = realloc(items, cap * sizeof *ni);
                    if (!ni) s = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
                    else items = ni;
                }
                if (s == M3_STATUS_OK) {
                    items[n_items].id = strdup(id);
                    items[n_items].href = docs_resolve(opf_name, href);
                    n_items++;
                }
            }
            xmlFree(id), xmlFree(href);
        } else if (is(r, "itemref") && ++spine <= DOCS_MAX_PARTS) {
            // The manifest comes before the spine in the package document.
            char *idref = docs_xml_attr(r, "idref");
            for (size_t i = 0; idref && i < n_items; i++)
                if (items[i].id && items[i].href && !strcmp(items[i].id, idref)) {
                    s = read_chapter(&z, &b, items[i].href, &chapter, enc, err);
                    break;
                }
            xmlFree(idref);
        }
    }
    xmlFreeTextReader(r);
    if (s == M3_STATUS_OK && rc < 0) s = docs_xml_error(path, opf_name, err);
out:
    for (size_t i = 0; i < n_items; i++) free(items[i].id), free(items[i].href);
    free(items);
    free(xml);
    free(enc);
    free(opf_name);
    docs_zip_close(&z);
    if (s != M3_STATUS_OK) {
        m3_text_builder_clear(&b);
        if (s == M3_STATUS_NOT_FOUND && err) err->status = M3_STATUS_FORMAT;
        return s == M3_STATUS_NOT_FOUND ? M3_STATUS_FORMAT : s;
    }
    return m3_text_builder_finish(&b, path, out, err);
}

static const char *const epub_ext[] = {"epub", NULL};
const m3_extractor m3_docs_epub = {"epub", EPUB_VERSION, epub_ext, extract_epub, NULL};
