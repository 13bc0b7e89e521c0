// SPDX-License-Identifier: MIT
//
// The two containers of the m3-tiny fixture: names, shapes, dtypes, values; both containers give
// identical tensors; data is used in place from the mapping; the fp16 heads stay fp16.
#include <math.h>
#include <stdint.h>

#include "model/weights.h"
#include "test-util.h"

static bool in_mapping(const m3_weights *w, const m3_tensor *t)
{
    const m3_mapped_file *f = m3_weights_get_file(w);
    const unsigned char *p = t->data;
    size_t bytes = (size_t)m3_tensor_numel(t) * m3_dtype_size(t->dtype);
    return p >= f->data && p + bytes <= f->data + f->size;
}

static m3_weights *open_ok(const char *rel)
{
    m3_weights *w = NULL;
    m3_error err = {0};
    m3_status st = m3_weights_open(test_data(rel), &w, &err);
    if (st != M3_STATUS_OK) fprintf(stderr, "%s: %s\n", rel, err.message);
    CHECK(st == M3_STATUS_OK);
    return w;
}

static void test_safetensors(void)
{
    m3_weights *w = open_ok("m3-tiny/model.safetensors");
    if (!w) return;
    CHECK(m3_weights_count(w) == 39);  // 5 embeddings + 2 x 16 per layer + 2 pooler
    const m3_tensor *t = m3_weights_find(w, "embeddings.word_embeddings.weight");
    CHECK(t && t->dtype == M3_DTYPE_F32 && t->ndim == 2 && t->shape[0] == 8002 && t->shape[1] == 128);
    CHECK(t && t->strides[0] == 128 && t->strides[1] == 1 && m3_tensor_is_contiguous(t));
    t = m3_weights_find(w, "encoder.layer.1.intermediate.dense.weight");
    CHECK(t && t->shape[0] == 512 && t->shape[1] == 128);
    t = m3_weights_find(w, "embeddings.LayerNorm.bias");
    CHECK(t && t->ndim == 1 && t->shape[0] == 128);
    CHECK(m3_weights_find(w, "__metadata__") == NULL);
    CHECK(m3_weights_find(w, "nope") == NULL);
    for (size_t i = 0; i < m3_weights_count(w); i++) CHECK(in_mapping(w, m3_weights_at(w, i)));
    CHECK(m3_weights_at(w, m3_weights_count(w)) == NULL);
    m3_weights_close(w);
    m3_weights_close(NULL);
}

// Same names, shapes, dtypes and element values (followed through the strides).
static void compare_sets(const m3_weights *a, const m3_weights *b)
{
    CHECK(m3_weights_count(a) == m3_weights_count(b));
    for (size_t i = 0; i < m3_weights_count(a); i++) {
        const m3_tensor *x = m3_weights_at(a, i), *y = m3_weights_find(b, x->name);
        CHECK(y != NULL);
        if (!y) {
            fprintf(stderr, "  %s missing from %s\n", x->name, m3_weights_path(b));
            continue;
        }
        CHECK(x->dtype == y->dtype && x->ndim == y->ndim);
        bool same_shape = x->ndim == y->ndim;
        for (int d = 0; same_shape && d < x->ndim; d++) same_shape = x->shape[d] == y->shape[d];
        CHECK(same_shape);
        if (!same_shape || x->dtype != y->dtype) continue;
        size_t n = (size_t)m3_tensor_numel(x), es = m3_dtype_size(x->dtype);
        if (m3_tensor_is_contiguous(x) && m3_tensor_is_contiguous(y)) {
            CHECK(!memcmp(x->data, y->data, n * es));
        } else {
            float *fx = malloc(n * 4 + 4), *fy = malloc(n * 4 + 4);
            m3_tensor_to_f32(x, fx);
            m3_tensor_to_f32(y, fy);
            CHECK(!memcmp(fx, fy, n * 4));
            free(fx);
            free(fy);
        }
    }
}

static void test_pytorch_matches_safetensors(void)
{
    m3_weights *st = open_ok("m3-tiny/model.safetensors");
    m3_weights *pt = open_ok("m3-tiny/pytorch_model.bin");
    if (st && pt) {
        compare_sets(st, pt);
        compare_sets(pt, st);
        // The storages are read in place: no tensor data lives on the heap.
        for (size_t i = 0; i < m3_weights_count(pt); i++) CHECK(in_mapping(pt, m3_weights_at(pt, i)));
        // Spot-check values against the safetensors header order: first tensor by name.
        const m3_tensor *t = m3_weights_find(pt, "encoder.layer.0.attention.self.query.weight");
        CHECK(t && t->dtype == M3_DTYPE_F32 && t->shape[0] == 128 && t->shape[1] == 128);
    }
    m3_weights_close(st);
    m3_weights_close(pt);
}

static void test_heads_fp16(void)
{
    m3_weights *w = open_ok("m3-tiny/colbert_linear.pt");
    if (w) {
        CHECK(m3_weights_count(w) == 2);
        const m3_tensor *t = m3_weights_find(w, "weight");
        CHECK(t && t->dtype == M3_DTYPE_F16 && t->ndim == 2 && t->shape[0] == 128 && t->shape[1] == 128);
        CHECK(t && in_mapping(w, t));
        t = m3_weights_find(w, "bias");
        CHECK(t && t->dtype == M3_DTYPE_F16 && t->ndim == 1 && t->shape[0] == 128);
        CHECK(!strcmp(m3_weights_at(w, 0)->name, "weight") && !strcmp(m3_weights_at(w, 1)->name, "bias"));
    }
    m3_weights_close(w);
    w = open_ok("m3-tiny/sparse_linear.pt");
    if (w) {
        const m3_tensor *t = m3_weights_find(w, "weight");
        CHECK(t && t->dtype == M3_DTYPE_F16 && t->ndim == 2 && t->shape[0] == 1 && t->shape[1] == 128);
        t = m3_weights_find(w, "bias");
        CHECK(t && t->dtype == M3_DTYPE_F16 && t->ndim == 1 && t->shape[0] == 1);
        if (t) {
            float v;
            m3_tensor_to_f32(t, &v);
            CHECK(isfinite(v));
        }
    }
    m3_weights_close(w);
}

static void test_missing_file(void)
{
    m3_weights *w = (m3_weights *)1;
    m3_error err = {0};
    CHECK(m3_weights_open("/nonexistent/m3/x.safetensors", &w, &err) == M3_STATUS_IO);
    CHECK(w == NULL && strstr(err.message, "/nonexistent/m3/x.safetensors"));
}

int main(void)
{
    test_safetensors();
    test_pytorch_matches_safetensors();
    test_heads_fp16();
    test_missing_file();
    return test_finish("test-weights");
}
