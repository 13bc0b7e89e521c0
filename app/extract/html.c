// SPDX-License-Identifier: MIT
//
// HTML and XHTML pages (and the chapters of EPUBs, HTML mail) through libxml2's HTML parser, which
// builds a tree from real-world tag soup. The charset comes from a BOM or a meta element (libxml2
// reads both); a page that declares none is UTF-8 when it is valid UTF-8, else what uchardet
// guesses. The title comes first; scripts, styles, templates and other non-text elements are
// dropped; block elements end paragraphs.
#include <libxml/HTMLparser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uchardet/uchardet.h>

#include "extract/docs-private.h"

enum { HTML_VERSION = 1, HTML_MAX_DEPTH = 256 };

static bool in_list(const char *name, const char *const *list)
{
    for (; *list; list++)
        if (!strcasecmp(name, *list)) return true;
    return false;
}

static const char *const dropped_elements[] = {"script", "style", "noscript", "template", "head", "svg", "math",
                                               "object", "iframe", "select", "button", NULL};
static const char *const block_elements[] = {
    "p",     "div",   "br",      "hr",    "h1",  "h2",   "h3",   "h4",   "h5",      "h6",         "li",
    "ul",    "ol",    "dl",      "dt",    "dd",  "pre",  "table", "tr",  "blockquote", "section", "article",
    "aside", "header", "footer", "nav",   "figure", "figcaption", "main", "address", "caption", "details",
    "summary", "form", "fieldset", "legend", "body", "html", NULL};
static const char *const cell_elements[] = {"td", "th", NULL};

static void walk(m3_text_builder *b, xmlNodePtr n, int depth)
{
    for (; n && !m3_text_builder_failed(b); n = n->next) {
        if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
            if (n->content) m3_text_builder_append_str(b, (const char *)n->content);
            continue;
        }
        if (n->type != XML_ELEMENT_NODE || !n->name) continue;
        const char *name = (const char *)n->name;
        if (in_list(name, dropped_elements)) continue;
        bool block = in_list(name, block_elements);
        if (block) m3_text_builder_break(b);
        if (depth < HTML_MAX_DEPTH) walk(b, n->children, depth + 1);
        if (block) m3_text_builder_break(b);
        else if (in_list(name, cell_elements)) m3_text_builder_append(b, " ", 1);
    }
}

static xmlNodePtr find(xmlNodePtr n, const char *name, int depth)
{
    for (; n && depth < HTML_MAX_DEPTH; n = n->next) {
        if (n->type == XML_ELEMENT_NODE && n->name && !strcasecmp((const char *)n->name, name)) return n;
        if (n->type == XML_ELEMENT_NODE && n->name && !strcasecmp((const char *)n->name, "body")) continue;
        xmlNodePtr c = find(n->children, name, depth + 1);
        if (c) return c;
    }
    return NULL;
}

// The charset to parse with: NULL when the page says (BOM, meta) and libxml2 reads it.
static const char *guess_encoding(const unsigned char *d, size_t size, char *buf, size_t cap)
{
    if (size >= 2 && ((d[0] == 0xff && d[1] == 0xfe) || (d[0] == 0xfe && d[1] == 0xff))) return NULL;
    if (size >= 3 && d[0] == 0xef && d[1] == 0xbb && d[2] == 0xbf) return "UTF-8";
    size_t head = size < 4096 ? size : 4096;
    for (size_t i = 0; i + 9 <= head; i++)
        if (!strncasecmp((const char *)d + i, "charset=", 8) || !strncasecmp((const char *)d + i, "encoding=", 9))
            return NULL;
    if (m3_extract_utf8_valid(d, size, true)) return "UTF-8";
    uchardet_t u = uchardet_new();
    const char *enc = "WINDOWS-1252";
    if (u && uchardet_handle_data(u, (const char *)d, size) == 0) {
        uchardet_data_end(u);
        const char *c = uchardet_get_charset(u);
        if (c && *c && strcasecmp(c, "ASCII")) {
            snprintf(buf, cap, "%s", c);
            enc = buf;
        }
    }
    if (u) uchardet_delete(u);
    return enc;
}

m3_status docs_html_append(m3_text_builder *b, const unsigned char *data, size_t size, const char *encoding,
                           const char *path, bool with_title, m3_error *err)
{
    if (size > INT32_MAX) return m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: HTML larger than 2 GiB", path);
    char buf[64];
    if (!encoding) encoding = guess_encoding(data, size, buf, sizeof buf);
    htmlDocPtr doc = htmlReadMemory((const char *)data, (int)size, NULL, encoding,
                                    HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NOBLANKS);
    if (!doc) {
        // An empty or unparseable page: libxml2 gives no tree for what has no element at all.
        bool blank = true;
        for (size_t i = 0; i < size && blank; i++) blank = data[i] == ' ' || data[i] == '\n' || data[i] == '\r' || data[i] == '\t';
        if (blank) return M3_STATUS_OK;
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: not readable as HTML", path);
    }
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (with_title && root) {
        xmlNodePtr t = find(root->children, "title", 0);
        if (t) {
            xmlChar *s = xmlNodeGetContent(t);
            if (s) {
                m3_text_builder_append_str(b, (const char *)s);
                m3_text_builder_break(b);
                xmlFree(s);
            }
        }
    }
    if (root) walk(b, root, 0);
    m3_text_builder_break(b);
    xmlFreeDoc(doc);
    if (m3_text_builder_failed(b))
        return m3_error_set(err, b->oom ? M3_STATUS_NOMEM : M3_STATUS_LIMIT, 0, "%s: text longer than %d MiB", path,
                            DOCS_MAX_TEXT >> 20);
    return M3_STATUS_OK;
}

static m3_status extract_html(const unsigned char *data, size_t size, const char *path, m3_extracted *out,
                              m3_error *err)
{
    memset(out, 0, sizeof *out);
    m3_text_builder b;
    m3_text_builder_init(&b, DOCS_MAX_TEXT);
    m3_status s = docs_html_append(&b, data, size, NULL, path, true, err);
    if (s != M3_STATUS_OK) {
        m3_text_builder_clear(&b);
        return s;
    }
    return m3_text_builder_finish(&b, path, out, err);
}

static bool sniff_html(const unsigned char *head, size_t n)
{
    size_t i = 0;
    if (n >= 3 && head[0] == 0xef && head[1] == 0xbb && head[2] == 0xbf) i = 3;
    while (i < n && (head[i] == ' ' || head[i] == '\n' || head[i] == '\r' || head[i] == '\t')) i++;
    return (n - i >= 9 && !strncasecmp((const char *)head + i, "<!doctype", 9) &&
            n - i >= 14 && !strncasecmp((const char *)head + i + 10, "html", 4)) ||
           (n - i >= 5 && !strncasecmp((const char *)head + i, "<html", 5));
}

static const char *const html_ext[] = {"html", "htm", "xhtml", "xht", "shtml", NULL};
const m3_extractor m3_docs_html = {"html", HTML_VERSION, html_ext, extract_html, sniff_html};
