// SPDX-License-Identifier: MIT
//
// config.json of an XLM-RoBERTa model (the Hugging Face `XLMRobertaConfig`), read with json-c.
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

enum { MAX_CONFIG_BYTES = 1 << 20, MAX_JSON_DEPTH = 16 };

m3_model_config m3_model_config_bge_m3(void)
{
    return (m3_model_config){
        .hidden = 1024,
        .layers = 24,
        .heads = 16,
        .intermediate = 4096,
        .vocab = 250002,
        .max_positions = 8194,
        .type_vocab = 1,
        .pad_token_id = 1,
        .layer_norm_eps = 1e-5f,
    };
}

static m3_status get_int(json_object *root, const char *name, const char *key, int lo, int hi, int *out,
                         m3_error *err)
{
    json_object *v;
    if (!json_object_object_get_ex(root, key, &v))
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: %s is missing", name, key);
    if (!json_object_is_type(v, json_type_int))
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: %s is not an integer", name, key);
    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi)
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: %s = %lld is outside [%d, %d]", name, key,
                            (long long)x, lo, hi);
    *out = (int)x;
    return M3_STATUS_OK;
}

m3_status m3_model_config_check(const m3_model_config *c, const char *name, m3_error *err)
{
    if (c->hidden < 1 || c->hidden > 65536 || c->layers < 1 || c->layers > 1024 || c->heads < 1 ||
        c->heads > c->hidden || c->intermediate < 1 || c->intermediate > (1 << 20) || c->vocab < 1 ||
        c->vocab > (1 << 24) || c->max_positions < 1 || c->max_positions > (1 << 20) || c->type_vocab < 1 ||
        c->type_vocab > 1024)
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: model dimensions out of range", name);
    if (c->hidden % c->heads != 0)
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0,
                            "%s: hidden_size %d is not divisible by num_attention_heads %d", name, c->hidden,
                            c->heads);
    // Positions are numbered from pad_token_id + 1, so at least one real position must exist.
    if (c->pad_token_id < 0 || c->pad_token_id >= c->vocab || c->pad_token_id + 2 > c->max_positions)
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0,
                            "%s: pad_token_id %d does not fit vocab_size %d and max_position_embeddings %d",
                            name, c->pad_token_id, c->vocab, c->max_positions);
    if (!(c->layer_norm_eps > 0.0f) || !(c->layer_norm_eps < 1.0f))
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: layer_norm_eps %g is outside (0, 1)", name,
                            (double)c->layer_norm_eps);
    // Keep every weight matrix under 2^40 elements so that byte counts never overflow.
    if ((int64_t)c->vocab * c->hidden > ((int64_t)1 << 40) ||
        (int64_t)c->intermediate * c->hidden > ((int64_t)1 << 40))
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: model too large", name);
    return M3_STATUS_OK;
}

static m3_status parse_root(json_object *root, const char *name, m3_model_config *c, m3_error *err)
{
    if (!json_object_is_type(root, json_type_object))
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: not a JSON object", name);
    m3_status st;
    if ((st = get_int(root, name, "hidden_size", 1, 65536, &c->hidden, err)) ||
        (st = get_int(root, name, "num_hidden_layers", 1, 1024, &c->layers, err)) ||
        (st = get_int(root, name, "num_attention_heads", 1, 65536, &c->heads, err)) ||
        (st = get_int(root, name, "intermediate_size", 1, 1 << 20, &c->intermediate, err)) ||
        (st = get_int(root, name, "vocab_size", 1, 1 << 24, &c->vocab, err)) ||
        (st = get_int(root, name, "max_position_embeddings", 1, 1 << 20, &c->max_positions, err)) ||
        (st = get_int(root, name, "type_vocab_size", 1, 1024, &c->type_vocab, err)) ||
        (st = get_int(root, name, "pad_token_id", 0, 1 << 24, &c->pad_token_id, err)))
        return st;
    json_object *v;
    if (!json_object_object_get_ex(root, "layer_norm_eps", &v))
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: layer_norm_eps is missing", name);
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: layer_norm_eps is not a number", name);
    double eps = json_object_get_double(v);
    if (!(eps > 0.0 && eps < 1.0))
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: layer_norm_eps %g is outside (0, 1)", name, eps);
    c->layer_norm_eps = (float)eps;
    // The encoder implements exact (erf) GELU only; "gelu_new" / "gelu_fast" (tanh) would silently
    // give different vectors, so they are refused.
    if (!json_object_object_get_ex(root, "hidden_act", &v) || !json_object_is_type(v, json_type_string))
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: hidden_act is missing", name);
    if (strcmp(json_object_get_string(v), "gelu") != 0)
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: hidden_act \"%.32s\" is not supported (only \"gelu\")",
                            name, json_object_get_string(v));
    // Relative position embeddings would need another attention; absolute is the default.
    if (json_object_object_get_ex(root, "position_embedding_type", &v) && json_object_is_type(v, json_type_string) &&
        strcmp(json_object_get_string(v), "absolute") != 0)
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0,
                            "%s: position_embedding_type \"%.32s\" is not supported (only \"absolute\")", name,
                            json_object_get_string(v));
    return m3_model_config_check(c, name, err);
}

m3_status m3_model_config_parse(const char *json, size_t len, const char *name, m3_model_config *config,
                                m3_error *err)
{
    memset(config, 0, sizeof *config);
    if (len > MAX_CONFIG_BYTES)
        return m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: %zu bytes is too large for a config", name, len);
    json_tokener *tok = json_tokener_new_ex(MAX_JSON_DEPTH);
    if (!tok) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", name);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *root = json_tokener_parse_ex(tok, json ? json : "", (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!root || jerr != json_tokener_success) {
        json_object_put(root);
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: not valid JSON: %s", name,
                            jerr == json_tokener_continue ? "truncated" : json_tokener_error_desc(jerr));
    }
    for (size_t i = end; i < len; i++)
        if (json[i] != ' ' && json[i] != '\t' && json[i] != '\n' && json[i] != '\r') {
            json_object_put(root);
            return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: garbage after the JSON object at byte %zu", name, i);
        }
    m3_status st = parse_root(root, name, config, err);
    json_object_put(root);
    if (st != M3_STATUS_OK) memset(config, 0, sizeof *config);
    return st;
}
