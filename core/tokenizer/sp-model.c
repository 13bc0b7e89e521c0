// SPDX-License-Identifier: MIT
#include "tokenizer/sp-model-private.h"

#include <stdlib.h>
#include <string.h>

#include "tokenizer/utf8-private.h"

enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

typedef struct pb_reader {
    const unsigned char *file;  // start of the whole file, for byte offsets in messages
    const unsigned char *p, *end;
    const char *name;
    m3_error *err;
} pb_reader;

__attribute__((format(printf, 2, 3))) static m3_status pb_fail(const pb_reader *r, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return m3_error_set(r->err, M3_STATUS_FORMAT, 0,
                        "%s: malformed sentencepiece model: %s at byte %zu", r->name, what,
                        (size_t)(r->p - r->file));
}

static m3_status pb_varint(pb_reader *r, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) return pb_fail(r, "truncated varint");
        unsigned c = *r->p++;
        if (shift == 63 && c > 1) return pb_fail(r, "varint longer than 64 bits");
        v |= (uint64_t)(c & 0x7f) << shift;
        if (c < 0x80) {
            *out = v;
            return M3_STATUS_OK;
        }
    }
    return pb_fail(r, "varint longer than 10 bytes");
}

static m3_status pb_tag(pb_reader *r, uint32_t *field, unsigned *wire)
{
    uint64_t tag = 0;
    m3_status s = pb_varint(r, &tag);
    if (s != M3_STATUS_OK) return s;
    if (tag >> 3 == 0 || tag >> 3 > 0x1fffffff) return pb_fail(r, "invalid field number");
    *field = (uint32_t)(tag >> 3);
    *wire = (unsigned)(tag & 7);
    return M3_STATUS_OK;
}

static m3_status pb_bytes(pb_reader *r, const unsigned char **p, size_t *n)
{
    uint64_t len = 0;
    m3_status s = pb_varint(r, &len);
    if (s != M3_STATUS_OK) return s;
    if (len > (uint64_t)(r->end - r->p))
        return pb_fail(r, "length %llu runs past the end", (unsigned long long)len);
    *p = r->p;
    *n = (size_t)len;
    r->p += len;
    return M3_STATUS_OK;
}

static m3_status pb_skip(pb_reader *r, uint32_t field, unsigned wire)
{
    uint64_t v = 0;
    const unsigned char *p = NULL;
    size_t n = 0;
    switch (wire) {
    case WIRE_VARINT: return pb_varint(r, &v);
    case WIRE_LEN: return pb_bytes(r, &p, &n);
    case WIRE_I64:
    case WIRE_I32: {
        size_t want = wire == WIRE_I64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < want) return pb_fail(r, "truncated field %u", field);
        r->p += want;
        return M3_STATUS_OK;
    }
    default: return pb_fail(r, "field %u has unsupported wire type %u", field, wire);
    }
}

static m3_status pb_expect(pb_reader *r, const char *what, uint32_t field, unsigned wire,
                           unsigned expected)
{
    if (wire == expected) return M3_STATUS_OK;
    return pb_fail(r, "%s (field %u) has wire type %u instead of %u", what, field, wire, expected);
}

// A nested message: a reader over its bytes that reports offsets in the whole file.
static pb_reader pb_sub(const pb_reader *r, const unsigned char *p, size_t n)
{
    pb_reader sub = *r;
    sub.p = p;
    sub.end = p + n;
    return sub;
}

#define TRY(expr)                               \
    do {                                        \
        m3_status s_ = (expr);                  \
        if (s_ != M3_STATUS_OK) return s_;      \
    } while (0)

static m3_status parse_piece(pb_reader *r, size_t index, m3_sp_piece *piece)
{
    piece->text = NULL;
    piece->len = 0;
    piece->score = 0.0f;
    piece->type = 1;  // NORMAL
    bool has_text = false;
    while (r->p < r->end) {
        uint32_t field = 0;
        unsigned wire = 0;
        TRY(pb_tag(r, &field, &wire));
        if (field == 1) {
            TRY(pb_expect(r, "piece text", field, wire, WIRE_LEN));
            const unsigned char *p = NULL;
            size_t n = 0;
            TRY(pb_bytes(r, &p, &n));
            if (n == 0) return pb_fail(r, "piece %zu is empty", index);
            if (n > UINT32_MAX) return pb_fail(r, "piece %zu is too long", index);
            if (!m3_utf8_valid(p, n)) return pb_fail(r, "piece %zu is not UTF-8", index);
            piece->text = p;
            piece->len = (uint32_t)n;
            has_text = true;
        } else if (field == 2) {
            TRY(pb_expect(r, "piece score", field, wire, WIRE_I32));
            if (r->end - r->p < 4) return pb_fail(r, "truncated score of piece %zu", index);
            uint32_t bits = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
                            (uint32_t)r->p[3] << 24;
            memcpy(&piece->score, &bits, 4);
            r->p += 4;
        } else if (field == 3) {
            TRY(pb_expect(r, "piece type", field, wire, WIRE_VARINT));
            uint64_t v = 0;
            TRY(pb_varint(r, &v));
            piece->type = (int32_t)(uint32_t)v;
        } else {
            TRY(pb_skip(r, field, wire));
        }
    }
    if (!has_text) return pb_fail(r, "piece %zu has no text", index);
    return M3_STATUS_OK;
}

static m3_status parse_trainer_spec(pb_reader *r, m3_sp_model *m)
{
    while (r->p < r->end) {
        uint32_t field = 0;
        unsigned wire = 0;
        TRY(pb_tag(r, &field, &wire));
        int32_t *target = field == 3    ? &m->model_type
                          : field == 40 ? &m->unk_id
                          : field == 41 ? &m->bos_id
                          : field == 42 ? &m->eos_id
                          : field == 43 ? &m->pad_id
                                        : NULL;
        if (target) {
            TRY(pb_expect(r, "trainer_spec id or model type", field, wire, WIRE_VARINT));
            uint64_t v = 0;
            TRY(pb_varint(r, &v));
            *target = (int32_t)(uint32_t)v;  // int32 fields: negatives are sign-extended varints
        } else {
            TRY(pb_skip(r, field, wire));
        }
    }
    return M3_STATUS_OK;
}

static m3_status parse_normalizer_spec(pb_reader *r, m3_sp_model *m)
{
    while (r->p < r->end) {
        uint32_t field = 0;
        unsigned wire = 0;
        TRY(pb_tag(r, &field, &wire));
        if (field == 1 || field == 2) {
            TRY(pb_expect(r, field == 1 ? "normalizer name" : "precompiled_charsmap", field, wire,
                          WIRE_LEN));
            const unsigned char *p = NULL;
            size_t n = 0;
            TRY(pb_bytes(r, &p, &n));
            if (field == 1) {
                m->normalizer_name = p;
                m->normalizer_name_len = n;
            } else {
                m->charsmap = p;
                m->charsmap_size = n;
            }
        } else if (field >= 3 && field <= 5) {
            TRY(pb_expect(r, "normalizer flag", field, wire, WIRE_VARINT));
            uint64_t v = 0;
            TRY(pb_varint(r, &v));
            bool *flag = field == 3   ? &m->add_dummy_prefix
                         : field == 4 ? &m->remove_extra_whitespaces
                                      : &m->escape_whitespaces;
            *flag = v != 0;
        } else {
            TRY(pb_skip(r, field, wire));
        }
    }
    return M3_STATUS_OK;
}

static m3_status parse_model(pb_reader *r, m3_sp_model *m, size_t *cap)
{
    while (r->p < r->end) {
        uint32_t field = 0;
        unsigned wire = 0;
        TRY(pb_tag(r, &field, &wire));
        if (field == 1 || field == 2 || field == 3) {
            static const char *const what[] = {"", "pieces", "trainer_spec", "normalizer_spec"};
            TRY(pb_expect(r, what[field], field, wire, WIRE_LEN));
            const unsigned char *p = NULL;
            size_t n = 0;
            TRY(pb_bytes(r, &p, &n));
            pb_reader sub = pb_sub(r, p, n);
            if (field == 2) {
                TRY(parse_trainer_spec(&sub, m));
            } else if (field == 3) {
                TRY(parse_normalizer_spec(&sub, m));
            } else {
                if (m->n_pieces == *cap) {
                    size_t ncap = *cap ? *cap * 2 : 1024;
                    m3_sp_piece *np = realloc(m->pieces, ncap * sizeof *np);
                    if (!np)
                        return m3_error_set(r->err, M3_STATUS_NOMEM, 0,
                                            "%s: out of memory reading the pieces", r->name);
                    m->pieces = np;
                    *cap = ncap;
                }
                TRY(parse_piece(&sub, m->n_pieces, &m->pieces[m->n_pieces]));
                m->n_pieces++;
            }
        } else {
            TRY(pb_skip(r, field, wire));
        }
    }
    return M3_STATUS_OK;
}

m3_status m3_sp_model_parse(const unsigned char *data, size_t size, const char *name,
                            m3_sp_model *model, m3_error *err)
{
    memset(model, 0, sizeof *model);
    model->model_type = M3_SP_MODEL_UNIGRAM;
    model->unk_id = 0;
    model->bos_id = 1;
    model->eos_id = 2;
    model->pad_id = -1;
    model->add_dummy_prefix = model->remove_extra_whitespaces = model->escape_whitespaces = true;
    pb_reader r = {.file = data, .p = data, .end = data + size, .name = name, .err = err};
    size_t cap = 0;
    m3_status s = parse_model(&r, model, &cap);
    if (s != M3_STATUS_OK) m3_sp_model_destroy(model);
    return s;
}

void m3_sp_model_destroy(m3_sp_model *model)
{
    free(model->pieces);
    model->pieces = NULL;
    model->n_pieces = 0;
}
