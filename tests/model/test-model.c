// SPDX-License-Identifier: MIT
//
// config.json parsing (table-driven), opening the m3-tiny folder with either container, the
// `roberta.` prefix, and random models.
#include <math.h>
#include <stdint.h>

#include "model/model.h"
#include "model-files.h"
#include "test-util.h"

static const char *base_config =
    "{\"hidden_act\": \"gelu\", \"hidden_size\": 128, \"intermediate_size\": 512, \"layer_norm_eps\": 1e-05,"
    " \"max_position_embeddings\": 8194, \"num_attention_heads\": 2, \"num_hidden_layers\": 2,"
    " \"pad_token_id\": 1, \"type_vocab_size\": 1, \"vocab_size\": 8002, \"model_type\": \"xlm-roberta\"}";

static void test_config(void)
{
    m3_model_config c;
    m3_error err = {0};
    CHECK(m3_model_config_parse(base_config, strlen(base_config), "c.json", &c, &err) == M3_STATUS_OK);
    CHECK(c.hidden == 128 && c.layers == 2 && c.heads == 2 && c.intermediate == 512 && c.vocab == 8002);
    CHECK(c.max_positions == 8194 && c.type_vocab == 1 && c.pad_token_id == 1 && c.layer_norm_eps == 1e-5f);
    m3_model_config real = m3_model_config_bge_m3();
    CHECK(real.hidden == 1024 && real.layers == 24 && real.heads == 16 && real.intermediate == 4096);
    CHECK(real.vocab == 250002 && real.max_positions == 8194 && real.type_vocab == 1 && real.pad_token_id == 1);
    CHECK(real.layer_norm_eps == 1e-5f);
    CHECK(m3_model_config_check(&real, "bge-m3", &err) == M3_STATUS_OK);

    // Each case replaces one key's text in the base config.
    static const struct {
        const char *from, *to;
        m3_status want;
    } cases[] = {
        {"\"gelu\"", "\"gelu_new\"", M3_STATUS_UNSUPPORTED},
        {"\"gelu\"", "\"relu\"", M3_STATUS_UNSUPPORTED},
        {"\"hidden_act\": \"gelu\", ", "", M3_STATUS_FORMAT},
        {"\"num_attention_heads\": 2", "\"num_attention_heads\": 3", M3_STATUS_UNSUPPORTED},
        {"\"hidden_size\": 128", "\"hidden_size\": 0", M3_STATUS_UNSUPPORTED},
        {"\"hidden_size\": 128", "\"hidden_size\": -128", M3_STATUS_UNSUPPORTED},
        {"\"hidden_size\": 128", "\"hidden_size\": 1e9", M3_STATUS_FORMAT},
        {"\"hidden_size\": 128", "\"hidden_size\": 99999999999999999999", M3_STATUS_UNSUPPORTED},
        {"\"hidden_size\": 128", "\"hidden_size\": \"128\"", M3_STATUS_FORMAT},
        {"\"vocab_size\": 8002", "\"vocab_size\": 100000000", M3_STATUS_UNSUPPORTED},
        {"\"layer_norm_eps\": 1e-05", "\"layer_norm_eps\": 0", M3_STATUS_UNSUPPORTED},
        {"\"layer_norm_eps\": 1e-05", "\"layer_norm_eps\": -1", M3_STATUS_UNSUPPORTED},
        {"\"pad_token_id\": 1", "\"pad_token_id\": 9000", M3_STATUS_UNSUPPORTED},
        {"\"max_position_embeddings\": 8194", "\"max_position_embeddings\": 2", M3_STATUS_UNSUPPORTED},
        {"\"type_vocab_size\": 1, ", "", M3_STATUS_FORMAT},
        {"\"model_type\"", "\"position_embedding_type\": \"relative_key\", \"x\"", M3_STATUS_UNSUPPORTED},
        {"\"model_type\"", "\"position_embedding_type\": \"absolute\", \"x\"", M3_STATUS_OK},
        {"}", "} x", M3_STATUS_FORMAT},
        {"}", "}   \n", M3_STATUS_OK},
        {"{", "[", M3_STATUS_FORMAT},
        {"\"xlm-roberta\"}", "\"xlm-roberta\"", M3_STATUS_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[2048];
        const char *at = strstr(base_config, cases[i].from);
        M3_ASSERT(at);
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - base_config), base_config, cases[i].to,
                 at + strlen(cases[i].from));
        memset(&err, 0, sizeof err);
        m3_status st = m3_model_config_parse(buf, strlen(buf), "c.json", &c, &err);
        if (st != cases[i].want) fprintf(stderr, "config case %zu: got %d (%s)\n", i, st, err.message);
        CHECK(st == cases[i].want);
        CHECK(st == M3_STATUS_OK || !strncmp(err.message, "c.json: ", 8));
    }
    CHECK(m3_model_config_parse("", 0, "c.json", &c, &err) == M3_STATUS_FORMAT);
    CHECK(m3_model_config_parse(NULL, 0, "c.json", &c, &err) == M3_STATUS_FORMAT);
}

static void check_tiny(const m3_model *m)
{
    const m3_model_config *c = m3_model_get_config(m);
    CHECK(c->hidden == 128 && c->layers == 2 && c->vocab == 8002);
    const m3_model_weights *w = m3_model_get_weights(m);
    CHECK(w->word && w->word->shape[0] == 8002 && w->word->shape[1] == 128);
    CHECK(w->position && w->position->shape[0] == 8194);
    CHECK(w->token_type && w->emb_ln_w && w->emb_ln_b);
    for (int l = 0; l < c->layers; l++) {
        const m3_layer_weights *L = &w->layers[l];
        const m3_tensor *all[] = {L->query_w, L->query_b, L->key_w, L->key_b, L->value_w, L->value_b,
                                  L->attn_out_w, L->attn_out_b, L->attn_ln_w, L->attn_ln_b, L->ffn_in_w,
                                  L->ffn_in_b, L->ffn_out_w, L->ffn_out_b, L->ffn_ln_w, L->ffn_ln_b};
        for (size_t i = 0; i < 16; i++) CHECK(all[i] != NULL && all[i]->data != NULL);
        CHECK(L->ffn_in_w->shape[0] == 512 && L->ffn_in_w->shape[1] == 128);
        CHECK(L->ffn_out_w->shape[0] == 128 && L->ffn_out_w->shape[1] == 512);
    }
    CHECK(w->colbert_w && w->colbert_w->dtype == M3_DTYPE_F16 && w->colbert_w->shape[0] == 128);
    CHECK(w->colbert_b && w->colbert_b->dtype == M3_DTYPE_F16 && w->colbert_b->shape[0] == 128);
    CHECK(w->sparse_w && w->sparse_w->dtype == M3_DTYPE_F16 && w->sparse_w->shape[0] == 1 && w->sparse_w->shape[1] == 128);
    CHECK(w->sparse_b && w->sparse_b->dtype == M3_DTYPE_F16 && w->sparse_b->ndim == 1 && w->sparse_b->shape[0] == 1);
    CHECK(m3_model_get_tokenizer(m) != NULL);
}

static m3_model *open_ok(const char *dir)
{
    m3_model *m = NULL;
    m3_error err = {0};
    m3_status st = m3_model_open(dir, &m, &err);
    if (st != M3_STATUS_OK) fprintf(stderr, "%s: %s\n", dir, err.message);
    CHECK(st == M3_STATUS_OK);
    return m;
}

static void test_open_tiny(void)
{
    const char *fixture = test_data("m3-tiny");
    char fix[4096];
    snprintf(fix, sizeof fix, "%s", fixture);
    m3_model *m = open_ok(fix);
    if (m) {
        check_tiny(m);
        CHECK(!strcmp(m3_model_get_path(m), fix));
    }
    // The same folder without model.safetensors: the pickle is used, same values.
    char *dir = mf_temp_dir();
    const char *files[] = {"config.json", "pytorch_model.bin", "colbert_linear.pt", "sparse_linear.pt",
                           "sentencepiece.bpe.model"};
    for (size_t i = 0; i < 5; i++) mf_link(fix, dir, files[i]);
    m3_model *p = open_ok(dir);
    if (m && p) {
        check_tiny(p);
        const m3_tensor *a = m3_model_get_weights(m)->layers[1].ffn_out_w, *b = m3_model_get_weights(p)->layers[1].ffn_out_w;
        CHECK(!memcmp(a->data, b->data, (size_t)m3_tensor_numel(a) * 4));
    }
    m3_model_close(p);
    // A safetensors export with `roberta.` names opens too.
    m3_weights *w = NULL;
    m3_error err = {0};
    CHECK(m3_weights_open(test_data("m3-tiny/model.safetensors"), &w, &err) == M3_STATUS_OK);
    if (w) {
        char *path = mf_join(dir, "model.safetensors");
        mf_write_safetensors(path, w, "roberta.", NULL, NULL, 0);
        free(path);
        p = open_ok(dir);
        if (p && m) {
            check_tiny(p);
            const m3_tensor *a = m3_model_get_weights(m)->word, *b = m3_model_get_weights(p)->word;
            CHECK(!strcmp(b->name, "roberta.embeddings.word_embeddings.weight"));
            CHECK(!memcmp(a->data, b->data, (size_t)m3_tensor_numel(a) * 4));
        }
        m3_model_close(p);
    }
    m3_weights_close(w);
    m3_model_close(m);
    m3_model_close(NULL);
    mf_rm_rf(dir);
    free(dir);
}

static void test_random(void)
{
    m3_model_config c = {.hidden = 64, .layers = 3, .heads = 4, .intermediate = 96, .vocab = 300,
                         .max_positions = 40, .type_vocab = 1, .pad_token_id = 1, .layer_norm_eps = 1e-5f};
    m3_model *a = NULL, *b = NULL, *d = NULL;
    m3_error err = {0};
    CHECK(m3_model_new_random(&c, 7, &a, &err) == M3_STATUS_OK);
    CHECK(m3_model_new_random(&c, 7, &b, &err) == M3_STATUS_OK);
    CHECK(m3_model_new_random(&c, 8, &d, &err) == M3_STATUS_OK);
    if (a && b && d) {
        const m3_model_weights *wa = m3_model_get_weights(a), *wb = m3_model_get_weights(b), *wd = m3_model_get_weights(d);
        CHECK(m3_model_get_tokenizer(a) == NULL && !strcmp(m3_model_get_path(a), "random"));
        CHECK(!memcmp(wa->layers[2].ffn_in_w->data, wb->layers[2].ffn_in_w->data, 96 * 64 * 4));
        CHECK(memcmp(wa->layers[2].ffn_in_w->data, wd->layers[2].ffn_in_w->data, 96 * 64 * 4));
        CHECK(wa->layers[0].query_w->shape[0] == 64 && wa->layers[0].ffn_out_w->shape[1] == 96);
        // Standard deviation ~0.02, mean ~0, LayerNorm weights 1, biases 0.
        const float *x = wa->word->data;
        double s = 0, s2 = 0;
        int n = 300 * 64;
        for (int i = 0; i < n; i++) {
            s += x[i];
            s2 += (double)x[i] * x[i];
        }
        double sd = sqrt(s2 / n - (s / n) * (s / n));
        CHECK(fabs(s / n) < 0.002 && sd > 0.018 && sd < 0.022);
        CHECK(((const float *)wa->layers[1].attn_ln_w->data)[5] == 1.0f);
        CHECK(((const float *)wa->layers[1].attn_ln_b->data)[5] == 0.0f);
        CHECK(wa->colbert_w->dtype == M3_DTYPE_F32 && wa->sparse_w->shape[0] == 1 && wa->sparse_b->shape[0] == 1);
        // Rows of a matrix must differ (a broken generator could repeat).
        const float *q = wa->layers[0].query_w->data;
        CHECK(memcmp(q, q + 64, 64 * 4) != 0);
    }
    m3_model_close(a);
    m3_model_close(b);
    m3_model_close(d);
    c.heads = 5;
    CHECK(m3_model_new_random(&c, 1, &a, &err) == M3_STATUS_UNSUPPORTED && a == NULL);
}

int main(void)
{
    test_config();
    test_open_tiny();
    test_random();
    return test_finish("test-model");
}
