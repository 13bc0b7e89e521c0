// SPDX-License-Identifier: MIT
//
// RTF, hand-written: Debian has no C library that reads RTF (unrtf and catdoc are programs). Only
// what text needs: groups, control words, \uN with its \ucN fallback skipped, \'hh in the
// document's code page (\ansicpgN, converted with iconv), paragraph and cell ends, and the
// destinations that hold no running text (font, colour and style tables, document information,
// pictures, field instructions, headers and footers, footnotes, anything marked \*) skipped.
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

#include "extract/docs-private.h"

enum { RTF_VERSION = 1, RTF_MAX_GROUPS = 512 };

typedef struct rtf_group {
    bool skip;
    int uc;  // characters after \uN that stand for it in older readers
} rtf_group;

typedef struct rtf {
    m3_text_builder *b;
    const char *charset;
    unsigned char bytes[256];  // \'hh bytes not yet converted
    size_t n_bytes;
} rtf;

static const char *codepage(long cp)
{
    switch (cp) {
    case 1250: return "WINDOWS-1250";
    case 1251: return "WINDOWS-1251";
    case 1253: return "WINDOWS-1253";
    case 1254: return "ISO-8859-9";
    case 1255: return "WINDOWS-1255";
    case 1256: return "WINDOWS-1256";
    case 1257: return "WINDOWS-1257";
    case 1258: return "WINDOWS-1258";
    case 874: return "TIS-620";
    case 932: return "SHIFT_JIS";
    case 936: return "GB18030";
    case 949: return "UHC";
    case 950: return "BIG5";
    case 65001: return "UTF-8";
    default: return "WINDOWS-1252";
    }
}

static void flush(rtf *r)
{
    if (!r->n_bytes) return;
    iconv_t cd = iconv_open("UTF-8", r->charset);
    if (cd == (iconv_t)-1) cd = iconv_open("UTF-8", "WINDOWS-1252");
    char out[1024];
    char *in = (char *)r->bytes, *o = out;
    size_t inleft = r->n_bytes, outleft = sizeof out;
    if (cd != (iconv_t)-1) {
        while (inleft && iconv(cd, &in, &inleft, &o, &outleft) == (size_t)-1 && inleft) {
            // An invalid byte: U+FFFD, then go on after it.
            if (outleft < 3) break;
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3, outleft -= 3, in++, inleft--;
        }
        iconv_close(cd);
    }
    m3_text_builder_append(r->b, out, (size_t)(o - out));
    r->n_bytes = 0;
}

static void put_cp(rtf *r, unsigned long cp)
{
    flush(r);
    char u[4];
    size_t n;
    if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;
    if (cp < 0x80) u[0] = (char)cp, n = 1;
    else if (cp < 0x800) u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    else u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3f)), u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    m3_text_builder_append(r->b, u, n);
}

static const char *const skipped[] = {
    "fonttbl", "colortbl", "stylesheet", "info", "pict", "header", "headerl", "headerr", "headerf", "footer",
    "footerl", "footerr", "footerf", "footnote", "fldinst", "object", "themedata", "colorschememapping",
    "latentstyles", "datastore", "xmlnsdecl", "listtable", "listoverridetable", "revtbl", "rsidtbl", "generator",
    "filetbl", "bkmkstart", "bkmkend", "annotation", "atnid", "atnauthor", "nonshppict", "shpinst", "mmathPr", NULL};

static bool in(const char *w, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(w, *list)) return true;
    return false;
}

static m3_status extract_rtf(const unsigned char *d, size_t size, const char *path, m3_extracted *out, m3_error *err)
{
    memset(out, 0, sizeof *out);
    if (size < 5 || memcmp(d, "{\\rtf", 5))
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: not an RTF file (no {\\rtf header)", path);
    m3_text_builder b;
    m3_text_builder_init(&b, DOCS_MAX_TEXT);
    rtf r = {.b = &b, .charset = "WINDOWS-1252"};
    rtf_group g[RTF_MAX_GROUPS];
    int top = 0;
    g[0] = (rtf_group){false, 1};
    int skip_chars = 0;  // fallback characters still to skip after \uN
    m3_status s = M3_STATUS_OK;
    for (size_t i = 0; i < size && s == M3_STATUS_OK && !m3_text_builder_failed(&b);) {
        unsigned char c = d[i];
        if (c == '{') {
            flush(&r);
            if (top + 1 >= RTF_MAX_GROUPS) {
                s = m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: RTF groups nested more than %d deep", path, RTF_MAX_GROUPS);
                break;
            }
            g[top + 1] = g[top];
            top++;
            i++;
            skip_chars = 0;
        } else if (c == '}') {
            flush(&r);
            if (top) top--;
            i++;
            skip_chars = 0;
        } else if (c == '\r' || c == '\n') {
            i++;
        } else if (c != '\\') {
            if (skip_chars) skip_chars--;
            else if (!g[top].skip) {
                flush(&r);
                m3_text_builder_append(&b, (const char *)&d[i], 1);
            }
            i++;
        } else if (i + 1 >= size) {
            break;
        } else if (d[i + 1] == '\'' ) {
            // \'hh: a byte in the code page.
            unsigned v = 0;
            bool ok = i + 3 < size;
            for (int k = 2; ok && k < 4; k++) {
                unsigned char h = d[i + k];
                v = v << 4 | (h >= '0' && h <= '9' ? h - '0' : (h | 0x20) >= 'a' && (h | 0x20) <= 'f' ? (h | 0x20) - 'a' + 10 : (ok = false, 0));
            }
            i += ok ? 4 : 2;
            if (!ok) continue;
            if (skip_chars) skip_chars--;
            else if (!g[top].skip) {
                if (r.n_bytes == sizeof r.bytes) flush(&r);
                r.bytes[r.n_bytes++] = (unsigned char)v;
            }
        } else if ((d[i + 1] | 0x20) >= 'a' && (d[i + 1] | 0x20) <= 'z' && d[i + 1] >= 'a') {
            // A control word with its optional numeric parameter and delimiting space.
            char w[32];
            size_t n = 0, j = i + 1;
            while (j < size && d[j] >= 'a' && d[j] <= 'z') {
                if (n < sizeof w - 1) w[n++] = (char)d[j];
                j++;
            }
            w[n] = 0;
            bool has = false, neg = false;
            long p = 0;
            if (j < size && d[j] == '-') neg = true, j++;
            while (j < size && d[j] >= '0' && d[j] <= '9') {
                has = true;
                if (p < 10000000) p = p * 10 + (d[j] - '0');
                j++;
            }
            if (neg) p = -p;
            if (j < size && d[j] == ' ') j++;
            i = j;
            if (!strcmp(w, "bin") && has && p > 0) {
                i += (size_t)p < size - i ? (size_t)p : size - i;
                continue;
            }
            if (in(w, skipped)) {
                flush(&r);
                g[top].skip = true;
            } else if (!strcmp(w, "ansicpg") && has) {
                r.charset = codepage(p);
            } else if (!strcmp(w, "uc") && has && p >= 0 && p < 10) {
                g[top].uc = (int)p;
            } else if (g[top].skip) {
                continue;
            } else if (!strcmp(w, "u") && has) {
                put_cp(&r, (unsigned long)(p < 0 ? p + 65536 : p));
                skip_chars = g[top].uc;
            } else if (!strcmp(w, "par") || !strcmp(w, "sect") || !strcmp(w, "page") || !strcmp(w, "row")) {
                flush(&r);
                m3_text_builder_break(&b);
            } else if (!strcmp(w, "line") || !strcmp(w, "tab") || !strcmp(w, "cell")) {
                put_cp(&r, ' ');
            } else if (!strcmp(w, "emdash")) put_cp(&r, 0x2014);
            else if (!strcmp(w, "endash")) put_cp(&r, 0x2013);
            else if (!strcmp(w, "lquote")) put_cp(&r, 0x2018);
            else if (!strcmp(w, "rquote")) put_cp(&r, 0x2019);
            else if (!strcmp(w, "ldblquote")) put_cp(&r, 0x201c);
            else if (!strcmp(w, "rdblquote")) put_cp(&r, 0x201d);
            else if (!strcmp(w, "bullet")) put_cp(&r, 0x2022);
        } else {
            // A control symbol.
            unsigned char sym = d[i + 1];
            i += 2;
            if (sym == '*') {
                g[top].skip = true;
            } else if (g[top].skip) {
                continue;
            } else if (sym == '\\' || sym == '{' || sym == '}') {
                if (skip_chars) skip_chars--;
                else put_cp(&r, sym);
            } else if (sym == '~') {
                put_cp(&r, 0xa0);
            } else if (sym == '_') {
                put_cp(&r, 0x2011);
            } else if (sym == '\n' || sym == '\r') {
                flush(&r);
                m3_text_builder_break(&b);
            }
        }
    }
    flush(&r);
    if (s != M3_STATUS_OK) {
        m3_text_builder_clear(&b);
        return s;
    }
    return m3_text_builder_finish(&b, path, out, err);
}

static bool sniff_rtf(const unsigned char *head, size_t n) { return n >= 5 && !memcmp(head, "{\\rtf", 5); }

static const char *const rtf_ext[] = {"rtf", NULL};
const m3_extractor m3_docs_rtf = {"rtf", RTF_VERSION, rtf_ext, extract_rtf, sniff_rtf};
