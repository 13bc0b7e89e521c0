// SPDX-License-Identifier: MIT
//
// The encoder front end: checks inputs, cuts batches into forward passes of at most the backend's
// token budget (whole sequences, packed without padding), and turns the backend's raw head outputs
// into BGE-M3's representations (normalised dense and ColBERT vectors, the sparse dictionary).
// Everything here is backend-independent, so the CPU and Vulkan backends give identical
// post-processing.
#include "encoder/encoder.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "encoder/backend.h"
// ---- Vulkan backend hook (GPU engineer) ----
#ifdef M3_HAVE_VULKAN
#include "encoder/vulkan/vulkan-backend.h"
#endif
// ---- end Vulkan hook ----

struct m3_encoder {
    m3_backend *be;
    m3_model_config cfg;
    double post_seconds;  // post-processing time, reported as "other"
    const m3_model *model;       // borrowed (outlives the encoder): for the CPU fallback
    m3_encoder_options options;
};

m3_encoder_options m3_encoder_options_default(void)
{
    return (m3_encoder_options){.backend = "cpu", .threads = 0, .precision = M3_PRECISION_FP32};
}

static const char *const precision_names[] = {
    [M3_PRECISION_FP32] = "fp32", [M3_PRECISION_BF16] = "bf16", [M3_PRECISION_AUTO] = "auto",
    [M3_PRECISION_INT8] = "int8"};

m3_status m3_precision_parse(const char *name, m3_precision *out, m3_error *err)
{
    for (size_t i = 0; i < sizeof precision_names / sizeof *precision_names; i++)
        if (name && strcmp(name, precision_names[i]) == 0) {
            *out = (m3_precision)i;
            return M3_STATUS_OK;
        }
    return m3_error_set(err, M3_STATUS_INVALID, 0,
                        "encoder: unknown precision \"%s\" (auto, fp32, bf16, int8)", name ? name : "");
}

const char *m3_precision_name(m3_precision precision)
{
    return (unsigned)precision < sizeof precision_names / sizeof *precision_names
               ? precision_names[precision]
               : "?";
}

m3_precision m3_encoder_precision(const m3_encoder *enc)
{
    return enc->be->precision;
}

m3_status m3_encoder_new(const m3_model *model, const m3_encoder_options *options, m3_encoder **out,
                         m3_error *err)
{
    if (!out)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "m3_encoder_new: out is NULL");
    *out = NULL;
    if (!model)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "m3_encoder_new: model is NULL");
    m3_encoder_options opt = options ? *options : m3_encoder_options_default();
    if (opt.threads < 0)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "encoder: %d threads", opt.threads);
    if ((unsigned)opt.precision > M3_PRECISION_INT8)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "encoder: precision %d", (int)opt.precision);
    const char *name = opt.backend ? opt.backend : "cpu";
    // ---- Vulkan backend hook (GPU engineer) ----
#ifdef M3_HAVE_VULKAN
    const bool vulkan = strcmp(name, "vulkan") == 0;
#define M3_BACKEND_NAMES "cpu, vulkan"
#else
    const bool vulkan = false;
#define M3_BACKEND_NAMES "cpu"
#endif
    // ---- end Vulkan hook ----
    if (strcmp(name, "cpu") != 0 && strcmp(name, "auto") != 0 && !vulkan)
        return m3_error_set(err, M3_STATUS_INVALID, 0,
                            "encoder: unknown backend \"%s\" (this build has: " M3_BACKEND_NAMES ")",
                            name);
    m3_encoder *enc = calloc(1, sizeof *enc);
    if (!enc)
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "encoder: out of memory");
    enc->cfg = *m3_model_get_config(model);
    enc->model = model;
    enc->options = opt;
    m3_status st = M3_STATUS_OK;
    bool cpu = !vulkan;
#ifdef M3_HAVE_VULKAN  // ---- Vulkan backend hook (GPU engineer) ----
    // "auto": Vulkan when a GPU is there (the backend refuses CPU devices such as lavapipe, which
    // the CPU backend outruns), else the CPU backend; why Vulkan was not taken goes to the log.
    const bool automatic = strcmp(name, "auto") == 0;
    if (vulkan || automatic) {
        m3_error verr = {0};
        st = m3_vulkan_backend_new(model, &opt, &enc->be, &verr);
        cpu = automatic && st != M3_STATUS_OK;
        if (cpu)
            m3_log(M3_LOG_INFO, "encoder: backend auto: %s; using the CPU backend", verr.message);
        else if (st != M3_STATUS_OK && err)
            *err = verr;
    }
#endif  // ---- end Vulkan hook ----
    if (cpu)
        st = m3_cpu_backend_new(model, &opt, &enc->be, err);
    if (st != M3_STATUS_OK) {
        free(enc);
        return st;
    }
    *out = enc;
    return M3_STATUS_OK;
}

void m3_encoder_free(m3_encoder *enc)
{
    if (!enc)
        return;
    enc->be->free(enc->be);
    free(enc);
}

const char *m3_encoder_backend_name(const m3_encoder *enc)
{
    return enc->be->name;
}

int m3_encoder_threads(const m3_encoder *enc)
{
    return enc->be->threads(enc->be);
}

const char *m3_encoder_kernel_name(const m3_encoder *enc)
{
    return enc->be->kernel_name(enc->be);
}

size_t m3_encoder_max_batch_tokens(const m3_encoder *enc)
{
    return enc->be->max_tokens;
}

size_t m3_encoder_activation_bytes(const m3_encoder *enc)
{
    return enc->be->activation_bytes(enc->be);
}

bool m3_encoder_get_device(const m3_encoder *enc, m3_encoder_device *out)
{
    memset(out, 0, sizeof *out);
    return enc->be->device && enc->be->device(enc->be, out);
}

void m3_encoder_get_profile(const m3_encoder *enc, m3_encoder_profile *out)
{
    *out = enc->be->profile;
    out->other += enc->post_seconds;
}

void m3_encoder_reset_profile(m3_encoder *enc)
{
    memset(&enc->be->profile, 0, sizeof enc->be->profile);
    enc->post_seconds = 0;
}

void m3_embedding_clear(m3_embedding *e)
{
    if (!e)
        return;
    free(e->dense);
    free(e->sparse);
    free(e->colbert);
    memset(e, 0, sizeof *e);
}

// ---- Post-processing --------------------------------------------------------------------------

// v / max(|v|, 1e-12), as torch.nn.functional.normalize; the norm in double.
static void normalize(float *v, size_t n)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += (double)v[i] * v[i];
    double norm = sqrt(ss);
    if (norm < 1e-12)
        norm = 1e-12;
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(v[i] / norm);
}

static int cmp_sparse(const void *a, const void *b)
{
    const m3_sparse_weight *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

// The lexical weights of one sequence from its per-token weights: special ids dropped, weights
// <= 0 dropped, the maximum kept per id, sorted by id.
static m3_status sparse_dict(const m3_sequence *seq, const float *w, m3_embedding *e)
{
    m3_sparse_weight *v = malloc(seq->n * sizeof *v);
    if (!v)
        return M3_STATUS_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < seq->n; i++) {
        int32_t id = seq->ids[i];
        if (id <= 3 || !(w[i] > 0.0f))  // <s> 0, <pad> 1, </s> 2, <unk> 3
            continue;
        v[k++] = (m3_sparse_weight){id, w[i]};
    }
    qsort(v, k, sizeof *v, cmp_sparse);
    size_t u = 0;
    for (size_t i = 0; i < k; i++) {
        if (u > 0 && v[u - 1].id == v[i].id) {
            if (v[i].weight > v[u - 1].weight)
                v[u - 1].weight = v[i].weight;
        } else {
            v[u++] = v[i];
        }
    }
    if (u == 0) {
        free(v);
        v = NULL;
    } else {
        m3_sparse_weight *shrunk = realloc(v, u * sizeof *v);
        if (shrunk)
            v = shrunk;
    }
    e->sparse = v;
    e->n_sparse = u;
    return M3_STATUS_OK;
}

// ---- Encoding ---------------------------------------------------------------------------------

static m3_status check_inputs(const m3_encoder *enc, const m3_sequence *seqs, size_t n,
                              unsigned outputs, const m3_embedding *out, m3_error *err)
{
    if (n > 0 && (!seqs || !out))
        return m3_error_set(err, M3_STATUS_INVALID, 0, "encoder: NULL sequences or outputs");
    if (outputs & ~(unsigned)M3_OUTPUT_ALL)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "encoder: unknown output flags 0x%x",
                            outputs);
    size_t longest = (size_t)enc->cfg.max_positions - 2;
    for (size_t s = 0; s < n; s++) {
        if (seqs[s].n == 0 || !seqs[s].ids)
            return m3_error_set(err, M3_STATUS_INVALID, 0, "encoder: sequence %zu is empty%s", s,
                                seqs[s].n ? " (ids is NULL)" : "");
        if (seqs[s].n > longest)
            return m3_error_set(err, M3_STATUS_INVALID, 0,
                                "encoder: sequence %zu has %zu tokens, the model takes at most %zu",
                                s, seqs[s].n, longest);
        for (size_t i = 0; i < seqs[s].n; i++) {
            int32_t id = seqs[s].ids[i];
            if (id < 0 || id >= enc->cfg.vocab)
                return m3_error_set(err, M3_STATUS_INVALID, 0,
                                    "encoder: sequence %zu, token %zu: id %d outside the "
                                    "vocabulary of %d",
                                    s, i, (int)id, enc->cfg.vocab);
        }
    }
    return M3_STATUS_OK;
}

static m3_status encode_once(m3_encoder *enc, const m3_sequence *seqs, size_t n, unsigned outputs,
                             m3_embedding *out, m3_error *err)
{
    m3_status st;
    const size_t h = (size_t)enc->cfg.hidden;
    const size_t budget = enc->be->max_tokens;
    for (size_t s = 0; s < n; s++)
        out[s] = (m3_embedding){.tokens = seqs[s].n, .dim = h};
    if (!(outputs & M3_OUTPUT_ALL))
        return M3_STATUS_OK;  // nothing asked for: no forward pass

    float **cls = calloc(n, sizeof *cls);
    float **col = calloc(n, sizeof *col);
    float *sparse = (outputs & M3_OUTPUT_SPARSE) ? malloc(budget * sizeof *sparse) : NULL;
    if (!cls || !col || ((outputs & M3_OUTPUT_SPARSE) && !sparse)) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "encoder: out of memory");
        goto done;
    }
    for (size_t s = 0; s < n; s++) {
        if (outputs & M3_OUTPUT_DENSE) {
            out[s].dense = malloc(h * sizeof(float));
            if (!out[s].dense)
                goto nomem;
            cls[s] = out[s].dense;
        }
        if ((outputs & M3_OUTPUT_COLBERT) && seqs[s].n > 1) {
            out[s].colbert = malloc((seqs[s].n - 1) * h * sizeof(float));
            if (!out[s].colbert)
                goto nomem;
            out[s].n_colbert = seqs[s].n - 1;
            col[s] = out[s].colbert;
        }
    }

    for (size_t first = 0; first < n;) {
        size_t count = 0, tokens = 0;
        while (first + count < n && tokens + seqs[first + count].n <= budget)
            tokens += seqs[first + count++].n;
        m3_backend_batch batch = {
            .seqs = seqs + first, .n = count, .outputs = outputs,
            .cls = cls + first, .sparse = sparse, .colbert = col + first,
        };
        st = enc->be->encode(enc->be, &batch, err);
        if (st != M3_STATUS_OK)
            goto done;

        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        size_t off = 0;
        for (size_t s = first; s < first + count; s++) {
            if (outputs & M3_OUTPUT_DENSE)
                normalize(out[s].dense, h);
            if (outputs & M3_OUTPUT_COLBERT)
                for (size_t i = 0; i < out[s].n_colbert; i++)
                    normalize(out[s].colbert + i * h, h);
            if ((outputs & M3_OUTPUT_SPARSE) &&
                sparse_dict(&seqs[s], sparse + off, &out[s]) != M3_STATUS_OK)
                goto nomem;
            off += seqs[s].n;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        enc->post_seconds += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        first += count;
    }
    st = M3_STATUS_OK;
    goto done;

nomem:
    st = m3_error_set(err, M3_STATUS_NOMEM, 0, "encoder: out of memory for the outputs");
done:
    if (st != M3_STATUS_OK)
        for (size_t s = 0; s < n; s++)
            m3_embedding_clear(&out[s]);
    free(cls);
    free(col);
    free(sparse);
    return st;
}

m3_status m3_encoder_encode(m3_encoder *enc, const m3_sequence *seqs, size_t n, unsigned outputs,
                            m3_embedding *out, m3_error *err)
{
    m3_status st = check_inputs(enc, seqs, n, outputs, out, err);
    if (st != M3_STATUS_OK || n == 0)
        return st;
    m3_error local = {0};
    st = encode_once(enc, seqs, n, outputs, out, &local);
    // A GPU that was lost (reset, driver crash) or has no memory left even for one sequence at a
    // time: the work is not lost, the CPU backend takes over for the rest of the encoder's life.
    const bool device_failed = st == M3_STATUS_DEVICE || (st == M3_STATUS_NOMEM && local.code != 0);
    if (device_failed && strcmp(enc->be->name, "cpu") != 0) {
        m3_backend *cpu;
        m3_error cerr = {0};
        if (m3_cpu_backend_new(enc->model, &enc->options, &cpu, &cerr) == M3_STATUS_OK) {
            m3_log(M3_LOG_WARN, "encoder: %s; continuing on the CPU backend", local.message);
            enc->be->free(enc->be);
            enc->be = cpu;
            return encode_once(enc, seqs, n, outputs, out, err);
        }
    }
    if (st != M3_STATUS_OK && err)
        *err = local;
    return st;
}
