// SPDX-License-Identifier: MIT
//
// Packed CPU weights in the model file (docs/model-file.md, "Packed weights") on m3-tiny:
//   1. convert with the packed weights of fp32, bf16 and int8 (each from an f16 and an f32 file): the file
//      verifies and names the plain file's checksum as its identity (m3_model_file_identify); the CPU
//      backend uses them in place (it says so at debug level) and every output (dense, lexical,
//      ColBERT) is bitwise that of the plain file, which packs at start-up: the same kernels read the
//      same packed bytes; every other precision is packed at start-up from the same file;
//   2. a file whose layout id names another layout version, and a kernel of another layout (forced
//      with M3_GEMM_KERNEL, as on a CPU without AVX-512), fall back to packing, say why, and give the
//      same outputs;
//   3. damage: truncated inside the packed section, a packed tensor renamed away, shrunk, grown, or
//      moved off its 4096-byte alignment: opening the model or making the encoder fails with an error
//      naming the file, never a crash or silent garbage (int8: its scales and sums lie inside each
//      tensor, so a wrong size could make the kernel read past the mapping);
//   4. int8's kernels of one panel width share the layout: a file packed by int8-avx2 is used in
//      place by int8-avxvnni and int8-scalar, with their own outputs of the plain file;
//   5. `auto` never resolves to int8 when packing.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "encoder/cpu/packed-file.h"
#include "encoder/encoder.h"
#include "model/model.h"

static int failures, checks;

#define CHECK(cond, ...)                                      \
    do {                                                      \
        checks++;                                             \
        if (!(cond)) {                                        \
            failures++;                                       \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);       \
            printf(__VA_ARGS__);                              \
            printf("\n");                                     \
        }                                                     \
    } while (0)

static char last_debug[1024];

static void on_log(m3_log_level level, const char *message, void *user)
{
    (void)user;
    if (level == M3_LOG_DEBUG && strstr(message, "pack")) snprintf(last_debug, sizeof last_debug, "%s", message);
}

static const char *const texts[] = {
    "Hello world, this is a test of packing.",
    "Ein zweiter, etwas längerer Satz über gepackte Gewichte im Modell.",
    "x",
};
enum { N_TEXTS = sizeof texts / sizeof *texts };

typedef struct outputs {
    m3_embedding e[N_TEXTS];
    bool ok;
} outputs;

// Encodes the texts with model's tokenizer and a CPU encoder at `precision`. debug (1024 bytes, or
// NULL) receives the backend's last debug line about packing.
static m3_status encode(const m3_model *model, m3_precision precision, outputs *o, char *debug, m3_error *err)
{
    memset(o, 0, sizeof *o);
    last_debug[0] = 0;
    m3_encoder_options opt = m3_encoder_options_default();
    opt.threads = 2;
    opt.precision = precision;
    m3_encoder *enc;
    m3_status st = m3_encoder_new(model, &opt, &enc, err);
    if (debug) snprintf(debug, 1024, "%s", last_debug);
    if (st != M3_STATUS_OK) return st;
    for (int i = 0; i < N_TEXTS && st == M3_STATUS_OK; i++) {
        int32_t *ids;
        size_t n;
        st = m3_tokenizer_encode(m3_model_get_tokenizer(model), texts[i], strlen(texts[i]), 64, &ids, &n, err);
        if (st != M3_STATUS_OK) break;
        m3_sequence seq = {ids, n};
        st = m3_encoder_encode(enc, &seq, 1, M3_OUTPUT_ALL, &o->e[i], err);
        free(ids);
    }
    m3_encoder_free(enc);
    o->ok = st == M3_STATUS_OK;
    return st;
}

static void clear(outputs *o)
{
    for (int i = 0; i < N_TEXTS; i++) m3_embedding_clear(&o->e[i]);
}

static bool same(const outputs *a, const outputs *b)
{
    if (!a->ok || !b->ok) return false;
    for (int i = 0; i < N_TEXTS; i++) {
        const m3_embedding *x = &a->e[i], *y = &b->e[i];
        if (x->dim != y->dim || x->n_sparse != y->n_sparse || x->n_colbert != y->n_colbert ||
            memcmp(x->dense, y->dense, x->dim * sizeof *x->dense) != 0 ||
            memcmp(x->sparse, y->sparse, x->n_sparse * sizeof *x->sparse) != 0 ||
            memcmp(x->colbert, y->colbert, x->n_colbert * x->dim * sizeof *x->colbert) != 0)
            return false;
    }
    return true;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = malloc((size_t)size);
    if (d && fread(d, 1, (size_t)size, f) != (size_t)size) {
        free(d);
        d = NULL;
    }
    fclose(f);
    *n = (size_t)size;
    return d;
}

static void put(const char *path, const unsigned char *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(d, 1, n, f) == n, "write %s", path);
    if (f) fclose(f);
}

static size_t find(const unsigned char *d, size_t n, const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i + len <= n; i++)
        if (!memcmp(d + i, s, len)) return i;
    return SIZE_MAX;
}

// Opens path and makes a CPU encoder at precision; returns its status with the message in err.
static m3_status open_and_encode(const char *path, m3_precision precision, outputs *o, char *debug, m3_error *err)
{
    m3_model *m;
    memset(o, 0, sizeof *o);
    m3_status st = m3_model_open(path, &m, err);
    if (st != M3_STATUS_OK) return st;
    st = encode(m, precision, o, debug, err);
    m3_model_close(m);
    return st;
}

static void test_precision(const char *src, const char *dir, m3_dtype dtype, m3_precision precision)
{
    const char *pname = m3_precision_name(precision), *dname = m3_dtype_name(dtype);
    char plain[4096], packed[4096], debug[1024];
    snprintf(plain, sizeof plain, "%s/plain-%s.gguf", dir, dname);
    snprintf(packed, sizeof packed, "%s/packed-%s-%s.gguf", dir, dname, pname);
    m3_error err = {0};
    m3_cpu_packer packer;
    CHECK(m3_cpu_packer_init(&packer, precision, &err) == M3_STATUS_OK, "packer: %s", err.message);
    CHECK(m3_model_convert(src, plain, dtype, &err) == M3_STATUS_OK, "convert: %s", err.message);
    CHECK(m3_model_convert_packed(src, packed, dtype, &packer.base, &err) == M3_STATUS_OK, "convert %s: %s", pname,
          err.message);

    // Its identity for an index is the plain file's checksum (packing changes no output), and its
    // own checksum verifies.
    m3_model_config cfg;
    char id_plain[72] = "", id_packed[72] = "";
    CHECK(m3_model_file_identify(plain, &cfg, id_plain, &err) == M3_STATUS_OK &&
              m3_model_file_identify(packed, &cfg, id_packed, &err) == M3_STATUS_OK && !strcmp(id_plain, id_packed),
          "%s %s: identity %s, plain %s", dname, pname, id_packed, id_plain);
    CHECK(m3_model_verify(packed, NULL, &err) == M3_STATUS_OK, "verify %s: %s", packed, err.message);

    outputs a, b;
    CHECK(open_and_encode(plain, precision, &a, debug, &err) == M3_STATUS_OK, "plain: %s", err.message);
    CHECK(strstr(debug, "packing them at start-up"), "%s %s plain file: \"%s\"", dname, pname, debug);
    CHECK(open_and_encode(packed, precision, &b, debug, &err) == M3_STATUS_OK, "packed: %s", err.message);
    CHECK(strstr(debug, "in place from the model file"), "%s %s packed file: \"%s\"", dname, pname, debug);
    CHECK(same(&a, &b), "%s %s: the packed file's outputs differ from the plain file's", dname, pname);
    clear(&b);

    // The other precisions are packed at start-up from the same file, as from a plain one.
    const m3_precision all[] = {M3_PRECISION_FP32, M3_PRECISION_BF16, M3_PRECISION_INT8};
    for (size_t o = 0; o < sizeof all / sizeof *all; o++) {
        if (all[o] == precision) continue;
        outputs c, d;
        CHECK(open_and_encode(plain, all[o], &c, NULL, &err) == M3_STATUS_OK, "plain other: %s", err.message);
        CHECK(open_and_encode(packed, all[o], &d, debug, &err) == M3_STATUS_OK, "packed other: %s", err.message);
        CHECK(strstr(debug, "no packed") && same(&c, &d), "%s file packed for %s, encoded in %s: \"%s\"", dname,
              pname, m3_precision_name(all[o]), debug);
        clear(&c);
        clear(&d);
    }

    if (dtype != M3_DTYPE_F16) {
        clear(&a);
        return;
    }
    // Another layout version in the file: falls back and gives the same outputs.
    size_t n;
    unsigned char *bytes = slurp(packed, &n);
    CHECK(bytes != NULL, "read %s", packed);
    if (!bytes) return;
    char changed[4096];
    snprintf(changed, sizeof changed, "%s/other-version-%s.gguf", dir, pname);
    char id[64], other_id[64];
    m3_gemm_layout_id(packer.precision, id, sizeof id);
    size_t at = find(bytes, n, id);
    CHECK(at != SIZE_MAX && id[strlen(id) - 2] == 'v', "layout id %s in the file", id);
    if (at != SIZE_MAX) {
        snprintf(other_id, sizeof other_id, "%s", id);
        other_id[strlen(other_id) - 1] = '9';
        memcpy(bytes + at, other_id, strlen(other_id));
        put(changed, bytes, n);
        memcpy(bytes + at, id, strlen(id));
        outputs e;
        CHECK(open_and_encode(changed, precision, &e, debug, &err) == M3_STATUS_OK, "other version: %s", err.message);
        CHECK(strstr(debug, other_id) && strstr(debug, "packing them at start-up"), "another version: \"%s\"", debug);
        CHECK(same(&a, &e), "%s: another layout version: the outputs differ", pname);
        clear(&e);
        unlink(changed);
    }

    // A kernel of another layout (the portable one, as on a CPU without AVX-512): packs at start-up.
    setenv("M3_GEMM_KERNEL", "scalar,bf16-scalar,int8-scalar", 1);
    char forced[64];
    m3_gemm_layout_id(packer.precision, forced, sizeof forced);
    outputs f, g;
    CHECK(open_and_encode(plain, precision, &f, NULL, &err) == M3_STATUS_OK, "plain, scalar: %s", err.message);
    CHECK(open_and_encode(packed, precision, &g, debug, &err) == M3_STATUS_OK, "packed, scalar: %s", err.message);
    if (strcmp(forced, id) != 0)
        CHECK(strstr(debug, forced) && strstr(debug, "packing them at start-up"), "scalar kernel: \"%s\"", debug);
    else
        CHECK(strstr(debug, "in place"), "scalar kernel of the same layout: \"%s\"", debug);
    CHECK(same(&f, &g), "%s, scalar kernel: the outputs differ", pname);
    clear(&f);
    clear(&g);
    unsetenv("M3_GEMM_KERNEL");

    // Damage. Each case must fail with a message naming the file (opening or making the encoder).
    char name[64];
    snprintf(name, sizeof name, "packed.%s.encoder.layer.1.ffn_in", m3_cpu_packed_tag(packer.precision));
    size_t tensor = find(bytes, n, name);
    CHECK(tensor != SIZE_MAX, "tensor %s in the file", name);
    if (tensor == SIZE_MAX) {
        free(bytes);
        clear(&a);
        return;
    }
    size_t info = tensor + strlen(name);  // u32 dims, u64 size, u32 type, u64 offset
    uint64_t size, offset;
    memcpy(&size, bytes + info + 4, 8);
    memcpy(&offset, bytes + info + 16, 8);
    struct {
        const char *what;
        size_t cut;       // a shorter file, or 0
        size_t patch_at;  // bytes to change, or 0
        uint64_t value;
        int width;
    } cases[] = {
        {"truncated in the packed section", n - 5000, 0, 0, 0},
        {"a packed tensor missing", 0, tensor + strlen(name) - 6, 'X', 1},
        {"a packed tensor shrunk", 0, info + 4, size - 64, 8},
        {"a packed tensor grown", 0, info + 4, size + 64, 8},
        {"a packed tensor off its alignment", 0, info + 16, offset + 64, 8},
        {"a packed tensor of another type", 0, info + 12, 0, 4},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/damaged-%zu.gguf", dir, k);
        unsigned char saved[8];
        if (cases[k].patch_at) {
            memcpy(saved, bytes + cases[k].patch_at, (size_t)cases[k].width);
            memcpy(bytes + cases[k].patch_at, &cases[k].value, (size_t)cases[k].width);
        }
        put(path, bytes, cases[k].cut ? cases[k].cut : n);
        if (cases[k].patch_at) memcpy(bytes + cases[k].patch_at, saved, (size_t)cases[k].width);
        outputs h;
        memset(&err, 0, sizeof err);
        m3_status st = open_and_encode(path, precision, &h, NULL, &err);
        CHECK(st == M3_STATUS_FORMAT && strstr(err.message, path), "%s %s: status %d, \"%s\"", pname,
              cases[k].what, st, err.message);
        printf("%s, %s: %s\n", pname, cases[k].what, err.message);
        clear(&h);
        unlink(path);
    }
    // The last packed tensor (nothing after it to overlap) moved 64 bytes on and shrunk to end where
    // it did: caught by the alignment check, as the kernel's 64-byte alignment needs.
    snprintf(name, sizeof name, "packed.%s.colbert", m3_cpu_packed_tag(packer.precision));
    size_t last = find(bytes, n, name);
    CHECK(last != SIZE_MAX, "tensor %s in the file", name);
    if (last != SIZE_MAX) {
        size_t li = last + strlen(name);
        uint64_t lsize, loff;
        memcpy(&lsize, bytes + li + 4, 8);
        memcpy(&loff, bytes + li + 16, 8);
        uint64_t msize = lsize - 64, moff = loff + 64;
        memcpy(bytes + li + 4, &msize, 8);
        memcpy(bytes + li + 16, &moff, 8);
        char path[4096];
        snprintf(path, sizeof path, "%s/damaged-misaligned.gguf", dir);
        put(path, bytes, n);
        outputs h;
        memset(&err, 0, sizeof err);
        m3_status st = open_and_encode(path, precision, &h, NULL, &err);
        CHECK(st == M3_STATUS_FORMAT && strstr(err.message, path) && strstr(err.message, "multiple of"),
              "%s misaligned last tensor: status %d, \"%s\"", pname, st, err.message);
        printf("%s, the last packed tensor misaligned: %s\n", pname, err.message);
        clear(&h);
        unlink(path);
    }
    free(bytes);
    clear(&a);
}

// int8's kernels of nr 16 (int8-avx2, int8-avxvnni, int8-scalar) read the same bytes, so they
// share one layout id: a file packed by one is used in place by the others, with each one's own
// outputs of the plain F16 file (written by test_precision).
static void test_int8_shared_layout(const char *src, const char *dir)
{
    static const char *const kernels[] = {"int8-avx2", "int8-avxvnni", "int8-scalar"};
    char plain[4096], packed[4096], debug[1024], id[64];
    snprintf(plain, sizeof plain, "%s/plain-%s.gguf", dir, m3_dtype_name(M3_DTYPE_F16));
    snprintf(packed, sizeof packed, "%s/packed-int8-nr16.gguf", dir);
    setenv("M3_GEMM_KERNEL", kernels[0], 1);
    if (strcmp(m3_gemm_kernel_name_for(M3_GEMM_INT8), kernels[0]) != 0) {
        printf("int8 shared layout: this CPU has no %s; not checked\n", kernels[0]);
        unsetenv("M3_GEMM_KERNEL");
        return;
    }
    m3_error err = {0};
    m3_cpu_packer packer;
    CHECK(m3_cpu_packer_init(&packer, M3_PRECISION_INT8, &err) == M3_STATUS_OK &&
              m3_model_convert_packed(src, packed, M3_DTYPE_F16, &packer.base, &err) == M3_STATUS_OK,
          "convert int8 with %s: %s", kernels[0], err.message);
    m3_gemm_layout_id(M3_GEMM_INT8, id, sizeof id);
    for (size_t i = 0; i < sizeof kernels / sizeof *kernels; i++) {
        setenv("M3_GEMM_KERNEL", kernels[i], 1);
        if (strcmp(m3_gemm_kernel_name_for(M3_GEMM_INT8), kernels[i]) != 0) continue;  // not on this CPU
        char here[64];
        m3_gemm_layout_id(M3_GEMM_INT8, here, sizeof here);
        CHECK(!strcmp(here, id), "%s reads layout %s, %s reads %s", kernels[i], here, kernels[0], id);
        outputs a, b;
        CHECK(open_and_encode(plain, M3_PRECISION_INT8, &a, NULL, &err) == M3_STATUS_OK, "plain: %s", err.message);
        CHECK(open_and_encode(packed, M3_PRECISION_INT8, &b, debug, &err) == M3_STATUS_OK, "packed: %s", err.message);
        CHECK(strstr(debug, "in place"), "%s on a file packed by %s: \"%s\"", kernels[i], kernels[0], debug);
        CHECK(same(&a, &b), "%s on a file packed by %s: the outputs differ", kernels[i], kernels[0]);
        printf("int8 layout %s: packed by %s, used in place by %s\n", id, kernels[0], kernels[i]);
        clear(&a);
        clear(&b);
    }
    unsetenv("M3_GEMM_KERNEL");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test-gguf-packed TESTS_DATA\n");
        return 2;
    }
    char src[4096], dir[] = "/tmp/m3-packed-XXXXXX";
    snprintf(src, sizeof src, "%s/m3-tiny", argv[1]);
    if (!mkdtemp(dir)) return 1;
    m3_log_set(on_log, NULL, M3_LOG_DEBUG);
    test_precision(src, dir, M3_DTYPE_F16, M3_PRECISION_BF16);
    test_precision(src, dir, M3_DTYPE_F16, M3_PRECISION_FP32);
    test_precision(src, dir, M3_DTYPE_F32, M3_PRECISION_FP32);
    test_precision(src, dir, M3_DTYPE_F32, M3_PRECISION_BF16);
    test_precision(src, dir, M3_DTYPE_F16, M3_PRECISION_INT8);
    test_precision(src, dir, M3_DTYPE_F32, M3_PRECISION_INT8);
    test_int8_shared_layout(src, dir);
    m3_cpu_packer automatic;
    m3_error err = {0};
    CHECK(m3_cpu_packer_init(&automatic, M3_PRECISION_AUTO, &err) == M3_STATUS_OK &&
              automatic.precision != M3_GEMM_INT8 && strcmp(automatic.base.precision, "int8") != 0,
          "auto packs for %s", automatic.base.precision ? automatic.base.precision : "(none)");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("could not remove %s\n", dir);
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
