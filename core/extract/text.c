// SPDX-License-Identifier: MIT
//
// The built-in extractors (plain text, Markdown, source code: all read as text) and the decoding
// of text files into UTF-8 with a map back to file offsets.
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <uchardet/uchardet.h>

#include "extract/extract.h"

enum { EXTRACT_TEXT_VERSION = 1, MAX_REGISTERED = 32 };

static bool push_anchor(m3_extracted *out, size_t *cap, size_t text, size_t file)
{
    if (out->n_anchors == *cap) {
        size_t nc = *cap ? 2 * *cap : 64;
        m3_offset_anchor *a = realloc(out->anchors, nc * sizeof *a);
        if (!a) return false;
        out->anchors = a;
        *cap = nc;
    }
    out->anchors[out->n_anchors++] = (m3_offset_anchor){text, file};
    return true;
}

bool m3_extract_utf8_valid(const unsigned char *s, size_t n, bool nul_ok)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if (!c && !nul_ok) return false;
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07;
        else return false;
        if (i + len > n) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static m3_status decode_utf16(const unsigned char *d, size_t size, bool le, m3_extracted *out, m3_error *err)
{
    size_t cap = 0;
    out->text = malloc(size / 2 * 3 + 4);
    if (!out->text) return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    size_t o = 0, i = 2;
    if (!push_anchor(out, &cap, 0, 2)) return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    while (i + 1 < size) {
        size_t at = i;
        uint32_t u = le ? (uint32_t)(d[i] | d[i + 1] << 8) : (uint32_t)(d[i] << 8 | d[i + 1]);
        i += 2;
        if (u >= 0xd800 && u < 0xdc00 && i + 1 < size) {
            uint32_t l = le ? (uint32_t)(d[i] | d[i + 1] << 8) : (uint32_t)(d[i] << 8 | d[i + 1]);
            if (l >= 0xdc00 && l < 0xe000) {
                u = 0x10000 + ((u - 0xd800) << 10) + (l - 0xdc00);
                i += 2;
            } else {
                u = 0xfffd;
            }
        } else if (u >= 0xd800 && u < 0xe000) {
            u = 0xfffd;
        }
        if (u == 0) u = ' ';
        (void)at;
        o += put_utf8(out->text + o, u);
        if (u == '\n' && !push_anchor(out, &cap, o, i)) return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    }
    out->text[o] = 0;
    out->len = o;
    snprintf(out->encoding, sizeof out->encoding, "UTF-16%s", le ? "LE" : "BE");
    return M3_STATUS_OK;
}

// Converts line by line so that every line start maps exactly to its file offset.
static m3_status decode_legacy(const unsigned char *d, size_t size, const char *charset, const char *path,
                               m3_extracted *out, m3_error *err)
{
    iconv_t cd = iconv_open("UTF-8", charset);
    if (cd == (iconv_t)-1) {
        charset = "WINDOWS-1252";
        cd = iconv_open("UTF-8", charset);
        if (cd == (iconv_t)-1) return m3_error_errno(err, errno, "iconv", path);
    }
    size_t cap_out = size * 4 + 16, cap = 0, o = 0;
    out->text = malloc(cap_out);
    if (!out->text) {
        iconv_close(cd);
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    }
    size_t line = 0;
    while (line < size) {
        const unsigned char *nl = memchr(d + line, '\n', size - line);
        size_t end = nl ? (size_t)(nl - d) + 1 : size;
        if (!push_anchor(out, &cap, o, line)) {
            iconv_close(cd);
            return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        }
        char *in = (char *)d + line, *op = out->text + o;
        size_t inleft = end - line, outleft = cap_out - o - 4;
        iconv(cd, NULL, NULL, NULL, NULL);
        while (inleft) {
            if (iconv(cd, &in, &inleft, &op, &outleft) != (size_t)-1) break;
            if (errno == E2BIG) break;
            // An invalid or truncated sequence: U+FFFD for one byte, go on.
            if (outleft < 4) break;
            op += put_utf8(op, 0xfffd);
            outleft -= 3;
            in++;
            inleft--;
        }
        o = (size_t)(op - out->text);
        line = end;
    }
    iconv_close(cd);
    out->text[o] = 0;
    out->len = o;
    snprintf(out->encoding, sizeof out->encoding, "%s", charset);
    return M3_STATUS_OK;
}

m3_status m3_extract_decode_text(const unsigned char *d, size_t size, const char *path, m3_extracted *out,
                                 m3_error *err)
{
    memset(out, 0, sizeof *out);
    static const unsigned char empty[1];
    if (!d) d = empty;  // an empty attachment comes as (NULL, 0): memchr and friends want a pointer
    m3_status s;
    size_t cap = 0;
    if (size >= 2 && ((d[0] == 0xff && d[1] == 0xfe) || (d[0] == 0xfe && d[1] == 0xff))) {
        s = decode_utf16(d, size, d[0] == 0xff, out, err);
        if (s != M3_STATUS_OK) m3_extracted_clear(out);
        return s;
    }
    if (memchr(d, 0, size)) {
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: binary file (NUL bytes)", path);
    }
    size_t skip = size >= 3 && d[0] == 0xef && d[1] == 0xbb && d[2] == 0xbf ? 3 : 0;
    if (m3_extract_utf8_valid(d + skip, size - skip, true)) {
        out->text = malloc(size - skip + 1);
        if (!out->text || !push_anchor(out, &cap, 0, skip)) {
            m3_extracted_clear(out);
            return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        }
        memcpy(out->text, d + skip, size - skip);
        out->text[size - skip] = 0;
        out->len = size - skip;
        out->identity = true;
        snprintf(out->encoding, sizeof out->encoding, "UTF-8");
        return M3_STATUS_OK;
    }
    char charset[64] = "WINDOWS-1252";
    uchardet_t ud = uchardet_new();
    if (ud) {
        if (uchardet_handle_data(ud, (const char *)d, size) == 0) {
            uchardet_data_end(ud);
            const char *cs = uchardet_get_charset(ud);
            if (cs && *cs && strcasecmp(cs, "ASCII") && strcasecmp(cs, "UTF-8"))
                snprintf(charset, sizeof charset, "%s", cs);
        }
        uchardet_delete(ud);
    }
    s = decode_legacy(d, size, charset, path, out, err);
    if (s != M3_STATUS_OK) m3_extracted_clear(out);
    return s;
}

void m3_extracted_clear(m3_extracted *doc)
{
    if (!doc) return;
    free(doc->text);
    free(doc->anchors);
    free(doc->marks);
    memset(doc, 0, sizeof *doc);
}

const char *m3_extracted_location(const m3_extracted *doc, size_t off)
{
    // Last mark at or before off (binary search: a long PDF has thousands of pages).
    size_t lo = 0, hi = doc->n_marks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (doc->marks[mid].text <= off) lo = mid + 1;
        else hi = mid;
    }
    return lo ? doc->marks[lo - 1].where : NULL;
}

void m3_extracted_locate_chunks(const m3_extracted *doc, m3_text_chunk *chunks, size_t n)
{
    for (size_t i = 0; i < n; i++) chunks[i].location = m3_extracted_location(doc, chunks[i].start);
}

uint64_t m3_extracted_file_offset(const m3_extracted *doc, size_t text_off, bool round_up, uint64_t file_size)
{
    if (doc->derived) return text_off < doc->len ? text_off : doc->len;
    if (!doc->n_anchors) return 0;
    if (doc->identity) return doc->anchors[0].file + text_off;
    // Last anchor at or before text_off.
    size_t lo = 0, hi = doc->n_anchors;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (doc->anchors[mid].text <= text_off) lo = mid;
        else hi = mid;
    }
    if (doc->anchors[lo].text == text_off || !round_up) return doc->anchors[lo].file;
    return lo + 1 < doc->n_anchors ? doc->anchors[lo + 1].file : file_size;
}

static m3_status extract_text(const unsigned char *data, size_t size, const char *path, m3_extracted *out,
                              m3_error *err)
{
    return m3_extract_decode_text(data, size, path, out, err);
}

static const char *const text_ext[] = {"txt", "text", "log", "csv", "tsv", "srt", "vtt", "ini", "cfg", "conf", NULL};
static const char *const markdown_ext[] = {"md", "markdown", "mdown", "mkd", "rst", "adoc", "asciidoc", "org", "tex", NULL};
static const char *const code_ext[] = {
    "c",    "h",    "cc",  "cpp",  "cxx", "hpp", "hh",  "py",   "js",  "mjs", "ts",   "tsx", "jsx", "rs",
    "go",   "java", "kt",  "scala", "cs", "rb",  "pl",  "pm",   "php", "lua", "sh",   "bash", "zsh", "fish",
    "swift", "m",   "mm",  "r",    "jl",  "hs",  "ml",  "ex",   "exs", "erl", "clj",  "el",  "vim", "sql",
    "json", "yaml", "yml", "toml", "xml", "html", "htm", "css", "scss", "meson", "cmake", "mk", "nix", "zig",
    NULL};

static const m3_extractor builtin[] = {
    {"text", EXTRACT_TEXT_VERSION, text_ext, extract_text, NULL},
    {"markdown", EXTRACT_TEXT_VERSION, markdown_ext, extract_text, NULL},
    {"code", EXTRACT_TEXT_VERSION, code_ext, extract_text, NULL},
};

static const m3_extractor *registered[MAX_REGISTERED];
static size_t n_registered;

m3_status m3_extract_register(const m3_extractor *ex)
{
    if (!ex || !ex->name || !ex->extract) return M3_STATUS_INVALID;
    // One of a name already registered replaces it (an upgrade: its version tells the index).
    for (size_t i = 0; i < n_registered; i++)
        if (!strcmp(registered[i]->name, ex->name)) {
            registered[i] = ex;
            return M3_STATUS_OK;
        }
    if (n_registered == MAX_REGISTERED) return M3_STATUS_LIMIT;
    registered[n_registered++] = ex;
    return M3_STATUS_OK;
}

const m3_extractor *m3_extract_find_name(const char *name)
{
    for (size_t i = 0; i < n_registered; i++)
        if (!strcmp(registered[i]->name, name)) return registered[i];
    for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
        if (!strcmp(builtin[i].name, name)) return &builtin[i];
    return NULL;
}

uint32_t m3_extract_set_version(void)
{
    uint32_t h = 2166136261u;  // FNV-1a over "name:version;" of every extractor, in lookup order
    char buf[64];
    for (size_t i = 0; i < n_registered + sizeof builtin / sizeof builtin[0]; i++) {
        const m3_extractor *ex = i < n_registered ? registered[i] : &builtin[i - n_registered];
        int n = snprintf(buf, sizeof buf, "%s:%u;", ex->name, ex->version);
        for (int k = 0; k < n && k < (int)sizeof buf; k++) h = (h ^ (unsigned char)buf[k]) * 16777619u;
    }
    return h;
}

static bool has_ext(const m3_extractor *ex, const char *ext)
{
    for (const char *const *e = ex->extensions; e && *e; e++)
        if (!strcasecmp(*e, ext)) return true;
    return false;
}

const m3_extractor *m3_extract_find_ext(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    if (dot && dot != base && dot[1]) {
        for (size_t i = 0; i < n_registered; i++)
            if (has_ext(registered[i], dot + 1)) return registered[i];
        for (size_t i = 0; i < sizeof builtin / sizeof builtin[0]; i++)
            if (has_ext(&builtin[i], dot + 1)) return &builtin[i];
    }
    return NULL;
}

const m3_extractor *m3_extract_find(const char *path, const unsigned char *head, size_t n)
{
    const m3_extractor *by_ext = m3_extract_find_ext(path);
    if (by_ext) return by_ext;
    // Unknown or no extension: a registered format that recognises its first bytes, else text
    // when it looks like text.
    for (size_t i = 0; i < n_registered; i++)
        if (registered[i]->sniff && registered[i]->sniff(head, n)) return registered[i];
    if (n >= 2 && ((head[0] == 0xff && head[1] == 0xfe) || (head[0] == 0xfe && head[1] == 0xff))) return &builtin[0];
    if (n == 0 || memchr(head, 0, n)) return NULL;
    size_t ctrl = 0;
    for (size_t i = 0; i < n; i++)
        if (head[i] < 0x20 && head[i] != '\n' && head[i] != '\r' && head[i] != '\t' && head[i] != '\f') ctrl++;
    return ctrl * 100 <= n ? &builtin[0] : NULL;
}
