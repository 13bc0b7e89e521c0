// SPDX-License-Identifier: MIT
//
// E-mail through GMime: a message (.eml) or an mbox file (one message after another, marked
// "message N"). Per message: Subject, From, To, Cc, Date (decoded: RFC 2047 words, charsets), then
// the text parts (of an alternative, the plain text when there is one, else the HTML, read by the
// HTML walker), then attachments through the extractor their name and bytes call for (nested, at
// most DOCS_MAX_DEPTH deep), each marked "attachment NAME" (in an mbox "message N, attachment
// NAME"). Attachments no extractor reads are left out; an attachment that fails is left out too
// (the message's own text is still worth finding).
#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "extract/docs-private.h"

enum { MAIL_VERSION = 1, MAIL_MAX_ATTACHMENT = 64 << 20 };

typedef struct mail_ctx {
    m3_text_builder *b;
    const char *path;
    int message;          // 0 for a single .eml
    int parts;
    m3_error *err;
    m3_status status;     // first fatal error (nomem, limit of the text)
} mail_ctx;

static void header_line(m3_text_builder *b, const char *name, const char *value)
{
    if (!value || !*value) return;
    m3_text_builder_append_str(b, name);
    m3_text_builder_append(b, ": ", 2);
    m3_text_builder_append_str(b, value);
    m3_text_builder_break(b);
}

static void address_line(m3_text_builder *b, const char *name, InternetAddressList *list)
{
    if (!list || internet_address_list_length(list) == 0) return;
    char *s = internet_address_list_to_string(list, NULL, FALSE);
    header_line(b, name, s);
    g_free(s);
}

// The decoded bytes of a part's content (transfer encoding undone). NULL when empty.
static GByteArray *part_bytes(GMimePart *part)
{
    GMimeDataWrapper *w = g_mime_part_get_content(part);
    if (!w) return NULL;
    GMimeStream *mem = g_mime_stream_mem_new();
    g_mime_data_wrapper_write_to_stream(w, mem);
    GByteArray *a = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    GByteArray *copy = g_byte_array_sized_new(a->len);
    g_byte_array_append(copy, a->data, a->len);
    g_object_unref(mem);
    return copy;
}

static void walk(mail_ctx *c, GMimeObject *o, int depth);

static void message(mail_ctx *c, GMimeMessage *m, int depth)
{
    m3_text_builder *b = c->b;
    header_line(b, "Subject", g_mime_message_get_subject(m));
    address_line(b, "From", g_mime_message_get_from(m));
    address_line(b, "To", g_mime_message_get_to(m));
    address_line(b, "Cc", g_mime_message_get_cc(m));
    header_line(b, "Date", g_mime_object_get_header(GMIME_OBJECT(m), "Date"));
    m3_text_builder_break(b);
    GMimeObject *body = g_mime_message_get_mime_part(m);
    if (body) walk(c, body, depth + 1);
}

static void attachment(mail_ctx *c, GMimePart *part, const char *name)
{
    GByteArray *a = part_bytes(part);
    if (!a) return;
    if (a->len <= MAIL_MAX_ATTACHMENT) {
        if (c->message) m3_text_builder_mark(c->b, "message %d, attachment %s", c->message, name);
        else m3_text_builder_mark(c->b, "attachment %s", name);
        m3_error e = {0};
        m3_status s = docs_nested_append(c->b, name, a->data, a->len, c->path, &e);
        if (s == M3_STATUS_NOMEM && c->status == M3_STATUS_OK) c->status = m3_error_set(c->err, s, 0, "%s", e.message);
        // The text after an attachment is the message's again.
        if (c->message) m3_text_builder_mark(c->b, "message %d", c->message);
    }
    g_byte_array_unref(a);
}

static void walk(mail_ctx *c, GMimeObject *o, int depth)
{
    if (!o || depth > 32 || ++c->parts > DOCS_MAX_PARTS || c->status != M3_STATUS_OK) return;
    if (GMIME_IS_MESSAGE_PART(o)) {
        GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
        if (m) message(c, m, depth);
        return;
    }
    if (GMIME_IS_MULTIPART(o)) {
        GMimeMultipart *mp = GMIME_MULTIPART(o);
        int n = g_mime_multipart_get_count(mp);
        GMimeContentType *ct = g_mime_object_get_content_type(o);
        if (ct && !strcasecmp(g_mime_content_type_get_media_subtype(ct), "alternative")) {
            // The plain text when there is one, else the last (richest) part.
            GMimeObject *best = NULL;
            for (int i = 0; i < n; i++) {
                GMimeObject *p = g_mime_multipart_get_part(mp, i);
                GMimeContentType *pt = g_mime_object_get_content_type(p);
                if (pt && g_mime_content_type_is_type(pt, "text", "plain")) {
                    best = p;
                    break;
                }
                best = p;
            }
            walk(c, best, depth + 1);
            return;
        }
        for (int i = 0; i < n; i++) walk(c, g_mime_multipart_get_part(mp, i), depth + 1);
        return;
    }
    if (!GMIME_IS_PART(o)) return;
    GMimePart *part = GMIME_PART(o);
    GMimeContentType *ct = g_mime_object_get_content_type(o);
    const char *name = g_mime_part_get_filename(part);
    bool attached = g_mime_part_is_attachment(part) || (name && *name);
    if (!attached && GMIME_IS_TEXT_PART(o) && ct && g_mime_content_type_is_type(ct, "text", "plain")) {
        char *t = g_mime_text_part_get_text(GMIME_TEXT_PART(o));
        if (t) {
            // Paragraphs of a plain-text mail are its blank-line-separated blocks (LF or CRLF).
            const char *p = t;
            while (*p) {
                const char *e = p;
                while (*e && !(e[0] == '\n' && (e[1] == '\n' || (e[1] == '\r' && e[2] == '\n')))) e++;
                m3_text_builder_append(c->b, p, (size_t)(e - p));
                m3_text_builder_break(c->b);
                while (*e == '\n' || *e == '\r') e++;
                p = e;
            }
            g_free(t);
        }
    } else if (!attached && GMIME_IS_TEXT_PART(o) && ct && g_mime_content_type_is_type(ct, "text", "html")) {
        char *t = g_mime_text_part_get_text(GMIME_TEXT_PART(o));
        if (t) {
            m3_error e = {0};
            docs_html_append(c->b, (const unsigned char *)t, strlen(t), "UTF-8", c->path, false, &e);
            g_free(t);
        }
    } else if (attached) {
        attachment(c, part, name && *name ? name : "unnamed");
    }
}

static m3_status parse(const unsigned char *data, size_t size, const char *path, bool mbox, m3_extracted *out,
                       m3_error *err)
{
    memset(out, 0, sizeof *out);
    // The stream borrows data: GMime's memory stream over a GByteArray that does not own it would
    // need a copy; the copy is bounded by the document size.
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer((const char *)data, size);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    g_object_unref(stream);
    g_mime_parser_set_format(parser, mbox ? GMIME_FORMAT_MBOX : GMIME_FORMAT_MESSAGE);
    m3_text_builder b;
    m3_text_builder_init(&b, DOCS_MAX_TEXT);
    mail_ctx c = {.b = &b, .path = path, .err = err};
    int n = 0;
    while (c.status == M3_STATUS_OK && !m3_text_builder_failed(&b) && n < DOCS_MAX_PARTS) {
        GMimeMessage *m = g_mime_parser_construct_message(parser, NULL);
        if (!m) break;
        n++;
        if (mbox) {
            c.message = n;
            m3_text_builder_mark(&b, "message %d", n);
        }
        c.parts = 0;
        message(&c, m, 0);
        g_object_unref(m);
        if (!mbox) break;
    }
    g_object_unref(parser);
    if (c.status != M3_STATUS_OK) {
        m3_text_builder_clear(&b);
        return c.status;
    }
    if (!n) {
        m3_text_builder_clear(&b);
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: not readable as %s", path, mbox ? "an mbox file" : "a mail message");
    }
    return m3_text_builder_finish(&b, path, out, err);
}

static m3_status extract_eml(const unsigned char *data, size_t size, const char *path, m3_extracted *out,
                             m3_error *err)
{
    return parse(data, size, path, false, out, err);
}

static m3_status extract_mbox(const unsigned char *data, size_t size, const char *path, m3_extracted *out,
                              m3_error *err)
{
    return parse(data, size, path, true, out, err);
}

static bool sniff_mbox(const unsigned char *head, size_t n) { return n >= 5 && !memcmp(head, "From ", 5); }

static const char *const eml_ext[] = {"eml", "msg822", NULL};
static const char *const mbox_ext[] = {"mbox", "mbx", NULL};
const m3_extractor m3_docs_eml = {"eml", MAIL_VERSION, eml_ext, extract_eml, NULL};
const m3_extractor m3_docs_mbox = {"mbox", MAIL_VERSION, mbox_ext, extract_mbox, sniff_mbox};
