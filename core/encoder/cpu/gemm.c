// SPDX-License-Identifier: MIT
//
// The GEMM driver: weight packing, kernel choice, blocking and the split over threads. The inner
// work is the micro-kernel of gemm-<isa>.c (see gemm-private.h for the layouts).
//
// Blocking, for a task that owns rows [m0, m1) and columns [n0, n1) of C:
//   for each k block of kc:                        the task's W block (kc × (n1-n0)) sits in L2
//     for each micro-tile of mr rows:              its A rows (mr × kc) are read in place (fp32)
//                                                  or from A converted to bf16 pairs, in L1
//       for each panel of nr columns:              the panel streams from L2 through the FMAs
//         micro-kernel; after the last k block, GELU on the tile while it is in L1
// While a k block runs, the kernels that can (tile_pf) prefetch the next k block of the task's
// panels into L2, each micro-tile of rows a share of each panel's block, so that W comes from
// memory at an even pace over the whole task instead of in bursts at the start of each k block
// (the first micro-tile reading a block from memory, the others from L2). It matters where W is
// reused by few rows: a 16-token query streams all the weights (1.2 GB in fp32 for BGE-M3) once
// per pass; fp32 GEMM time at m = 16 fell 6–10 % (interleaved A/B, docs/performance.md).
// Bias and the residual are added at the first k block (so the residual may alias C: each
// element is read before it is first written), GELU after the last.
// bf16 and int8 convert (int8: quantise) each row block of A once per GEMM, in the first task that
// needs it (ready_rows). int8 differs: the tasks never block k (exact int32 sums over all of k,
// scaled once in the store), so a task's columns are cut to keep its panels (nt × kp bytes)
// within ~256 KB of L2.
// Tasks tile C in (rows × columns); they are made small enough that every thread gets several, so
// a 16-token query splits its columns over all threads.
// Reading fp32 A in place (instead of transposing each tile into a packed buffer, as before)
// removed ~1 scalar move per 16 FMAs: 1-thread GFLOP/s on the BGE-M3 shapes went from 120–163 to
// 171–216 (tools/bench-gemm, the 2-vCPU AMD EPYC dev machine, docs/performance.md).
#include "encoder/cpu/gemm.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "encoder/cpu/gemm-private.h"

struct m3_packed_matrix {
    size_t n, k;
    size_t kp;  // k rounded up to the kernel's k step (bf16: pairs; int8: groups of 4)
    const m3_gemm_kernel *kernel;
    void *data;  // ceil(n / nr) panels of kp × nr elements, 64-byte aligned (int8: the blob)
    size_t bytes;
    const float *w_scale;    // int8: inside data
    const int32_t *w_sum;    // int8: inside data
    bool borrowed;  // data belongs to the caller (a model file's mapping): not freed
};

// Every kernel this build has, best first within each precision. bf16-amx-model (the AMX kernel
// with its tile instructions done in C, for the tests) comes after the scalar fallbacks, so that
// only M3_GEMM_KERNEL ever picks it.
static const m3_gemm_kernel *const all_kernels[] = {
#if defined(__x86_64__)
    &m3_gemm_kernel_avx512, &m3_gemm_kernel_avx2, &m3_gemm_kernel_bf16_amx,
    &m3_gemm_kernel_bf16_avx512, &m3_gemm_kernel_int8_avx512vnni, &m3_gemm_kernel_int8_avxvnni,
    &m3_gemm_kernel_int8_avx2,
#endif
    &m3_gemm_kernel_scalar, &m3_gemm_kernel_bf16_scalar, &m3_gemm_kernel_int8_scalar,
#if defined(__x86_64__)
    &m3_gemm_kernel_bf16_amx_model,
#endif
};
enum { N_KERNELS = sizeof all_kernels / sizeof *all_kernels };

#if defined(__x86_64__)
// AVX-VNNI from CPUID (leaf 7, subleaf 1, EAX bit 4): clang 14's __builtin_cpu_supports does not
// know "avxvnni" (tools/peak-flops.c asks the same way). Its ymm forms need AVX2's OS support.
static bool cpu_has_avx_vnni(void) {
    unsigned a, b, c, d;
    return __builtin_cpu_supports("avx2") && __get_cpuid_count(7, 1, &a, &b, &c, &d) &&
           (a & (1u << 4));
}

// AMX-TILE and AMX-BF16 from CPUID (leaf 7, EDX bits 24 and 22), and Linux's leave to use the
// tiles: a process must ask for the XTILEDATA state (arch_prctl ARCH_REQ_XCOMP_PERM, Linux 5.16)
// before its first tile instruction, or that instruction raises SIGILL. The leave is the whole
// process's, threads made later included; asked once.
static bool cpu_has_amx_bf16(void) {
    static atomic_int state;  // 0: not asked yet, 1: yes, 2: no
    int s = atomic_load_explicit(&state, memory_order_acquire);
    if (s == 0) {
        unsigned a, b, c, d;
        bool ok = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 24)) && (d & (1u << 22));
        enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
        ok = ok && syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
        s = ok ? 1 : 2;
        atomic_store_explicit(&state, s, memory_order_release);
    }
    return s == 1;
}
#endif

static bool cpu_has(const m3_gemm_kernel *k) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    // __builtin_cpu_supports takes a literal, so each feature a kernel may name is listed here.
    char features[64];
    snprintf(features, sizeof features, "%s", k->cpu_features);
    for (char *save = NULL, *f = strtok_r(features, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        bool ok = strcmp(f, "avx512f") == 0      ? __builtin_cpu_supports("avx512f")
                  : strcmp(f, "avx512bf16") == 0 ? __builtin_cpu_supports("avx512bf16")
                  : strcmp(f, "avx2") == 0       ? __builtin_cpu_supports("avx2")
                  : strcmp(f, "fma") == 0        ? __builtin_cpu_supports("fma")
                  : strcmp(f, "avx512bw") == 0   ? __builtin_cpu_supports("avx512bw")
                  : strcmp(f, "avx512vnni") == 0 ? __builtin_cpu_supports("avx512vnni")
                  : strcmp(f, "avxvnni") == 0    ? cpu_has_avx_vnni()
                  : strcmp(f, "amx-bf16") == 0   ? cpu_has_amx_bf16()
                                                 : false;
        if (!ok)
            return false;
    }
    return true;
#else
    return k->cpu_features[0] == '\0';
#endif
}

const m3_gemm_kernel *m3_gemm_kernel_select_for(m3_gemm_precision precision) {
    const char *forced = getenv("M3_GEMM_KERNEL");
    if (forced && *forced) {
        char list[128];
        snprintf(list, sizeof list, "%s", forced);
        for (char *save = NULL, *name = strtok_r(list, ",", &save); name;
             name = strtok_r(NULL, ",", &save))
            for (size_t i = 0; i < N_KERNELS; i++)
                if (strcmp(all_kernels[i]->name, name) == 0 &&
                    all_kernels[i]->precision == precision && cpu_has(all_kernels[i]))
                    return all_kernels[i];
    }
    for (size_t i = 0; i < N_KERNELS; i++)
        if (all_kernels[i]->precision == precision && cpu_has(all_kernels[i]))
            return all_kernels[i];
    return precision == M3_GEMM_BF16   ? &m3_gemm_kernel_bf16_scalar
           : precision == M3_GEMM_INT8 ? &m3_gemm_kernel_int8_scalar
                                       : &m3_gemm_kernel_scalar;
}

const m3_gemm_kernel *m3_gemm_kernel_select(void) {
    return m3_gemm_kernel_select_for(M3_GEMM_FP32);
}

const char *m3_gemm_kernel_name_for(m3_gemm_precision precision) {
    return m3_gemm_kernel_select_for(precision)->name;
}

const char *m3_gemm_kernel_name(void) {
    return m3_gemm_kernel_name_for(M3_GEMM_FP32);
}

bool m3_gemm_precision_native(m3_gemm_precision precision) {
    for (size_t i = 0; i < N_KERNELS; i++)
        if (all_kernels[i]->precision == precision && all_kernels[i]->cpu_features[0] &&
            cpu_has(all_kernels[i]))
            return true;
    return false;
}

const m3_gemm_kernel *m3_packed_matrix_kernel(const m3_packed_matrix *p) {
    return p->kernel;
}

const void *m3_packed_matrix_data(const m3_packed_matrix *p, size_t *bytes) {
    *bytes = p->bytes;
    return p->data;
}

float m3_gelu_erf(float x) {
    // 1 + erf(x/√2) = erfc(-x/√2), which keeps the relative accuracy for negative x.
    return (float)(0.5 * (double)x * erfc(-(double)x * 0.70710678118654752440));
}

// ---- Packing -------------------------------------------------------------------------------------

// k rounded up to the kernel's k step.
static size_t packed_kp(m3_gemm_precision precision, size_t k) {
    return precision == M3_GEMM_BF16 ? (k + 1) / 2 * 2 : precision == M3_GEMM_INT8 ? (k + 3) / 4 * 4 : k;
}

// The packed size of an [n, k] matrix for `kernel` (the layouts of gemm-private.h; int8: the
// panels, then a scale and a sum per column); 0 when it overflows or int8 cannot take k. A
// precision with another layout adds its case here, in m3_gemm_layout_id and in packed-file.c.
static size_t packed_bytes(const m3_gemm_kernel *kernel, size_t n, size_t k) {
    bool bf16 = kernel->precision == M3_GEMM_BF16, int8 = kernel->precision == M3_GEMM_INT8;
    size_t nr = kernel->nr, esize = bf16 ? 2 : int8 ? 1 : 4, kp = packed_kp(kernel->precision, k);
    if (n == 0 || k == 0 || (int8 && k > M3_GEMM_INT8_K_MAX))
        return 0;
    size_t panels = (n + nr - 1) / nr;
    if (kp + 8 > SIZE_MAX / esize / nr / panels)
        return 0;
    return panels * nr * kp * esize + (int8 ? panels * nr * 8 : 0);
}

size_t m3_packed_matrix_bytes_for(size_t n, size_t k, m3_gemm_precision precision) {
    return packed_bytes(m3_gemm_kernel_select_for(precision), n, k);
}

// The bytes a kernel reads depend only on its precision's layout (gemm-private.h), its nr and the
// packing code (M3_GEMM_LAYOUT_VERSION). int8: every int8 kernel reads the one blob of k groups of
// 4 bytes with the per-column fp32 scales and int32 sums after the panels (the non-VNNI ones ignore
// the sums), so int8-avx2, int8-avxvnni and int8-scalar (nr 16) share "int8-k4-nr16-v1" and
// int8-avx512vnni has "int8-k4-nr64-v1". How A is quantised (signed or +128) is no part of it.
const char *m3_gemm_layout_id(m3_gemm_precision precision, char *buf, size_t size) {
    const m3_gemm_kernel *kernel = m3_gemm_kernel_select_for(precision);
    const char *layout = "unknown";  // matches no file's layout
    switch (precision) {
    case M3_GEMM_FP32: layout = "fp32"; break;
    case M3_GEMM_BF16: layout = "bf16-kpairs"; break;
    case M3_GEMM_INT8: layout = "int8-k4"; break;
    }
    snprintf(buf, size, "%s-nr%zu-v%d", layout, kernel->nr, M3_GEMM_LAYOUT_VERSION);
    return buf;
}

// int8: panel pi of the blob at data (layout in gemm-private.h): each column's scale from its
// largest magnitude, its k values quantised into groups of 4 bytes, and its sum.
static void pack_int8_panel(const float *src, size_t s0, size_t s1, size_t n, size_t k, size_t kp,
                            size_t nr, size_t pi, void *data) {
    size_t panels = (n + nr - 1) / nr, np = panels * nr;
    int8_t *panel = (int8_t *)data + pi * kp * nr;
    float *scale = (float *)((char *)data + np * kp);
    int32_t *sum = (int32_t *)(scale + np);
    memset(panel, 0, kp * nr);
    for (size_t j = 0; j < nr; j++) {
        size_t col = pi * nr + j;
        float amax = 0.0f;
        for (size_t kk = 0; col < n && kk < k; kk++)
            amax = fmaxf(amax, fabsf(src[col * s0 + kk * s1]));
        float inv = m3_gemm_i8_inv(amax);
        int32_t total = 0;
        for (size_t kk = 0; col < n && kk < k; kk++) {
            int8_t q = m3_gemm_i8_quantise(src[col * s0 + kk * s1], inv);
            panel[(kk / 4 * nr + j) * 4 + kk % 4] = q;
            total += q;
        }
        scale[col] = col < n ? m3_gemm_i8_scale(amax) : 0.0f;
        sum[col] = total;
    }
}

// Writes W's panels for `kernel` into data (packed_bytes of them).
static m3_status pack_panels(const m3_tensor *w, const m3_gemm_kernel *kernel, void *data,
                             m3_error *err) {
    const char *name = w->name ? w->name : "(unnamed)";
    size_t n = (size_t)w->shape[0], k = (size_t)w->shape[1];
    bool bf16 = kernel->precision == M3_GEMM_BF16, int8 = kernel->precision == M3_GEMM_INT8;
    size_t nr = kernel->nr, kp = packed_kp(kernel->precision, k);
    size_t panels = (n + nr - 1) / nr;
    // fp32: read through the strides; other dtypes: convert to a contiguous copy first.
    const float *src = w->data;
    float *converted = NULL;
    size_t s0 = (size_t)w->strides[0], s1 = (size_t)w->strides[1];
    if (w->dtype != M3_DTYPE_F32) {
        converted = malloc(n * k * sizeof(float));
        if (!converted)
            return m3_error_set(err, M3_STATUS_NOMEM, ENOMEM,
                                "gemm: out of memory converting %s to fp32", name);
        m3_tensor_to_f32(w, converted);
        src = converted;
        s0 = k;
        s1 = 1;
    }
    for (size_t pi = 0; pi < panels && int8; pi++)
        pack_int8_panel(src, s0, s1, n, k, kp, nr, pi, data);
    for (size_t pi = 0; pi < panels && !int8; pi++) {
        size_t j0 = pi * nr, cols = n - j0 < nr ? n - j0 : nr;
        if (bf16) {
            uint16_t *panel = (uint16_t *)data + pi * kp * nr;
            for (size_t q = 0; q < kp / 2; q++)
                for (size_t j = 0; j < nr; j++)
                    for (size_t h = 0; h < 2; h++) {
                        size_t kk = 2 * q + h;
                        panel[(q * nr + j) * 2 + h] =
                            j < cols && kk < k ? m3_gemm_bf16_round(src[(j0 + j) * s0 + kk * s1])
                                               : 0;
                    }
        } else {
            float *panel = (float *)data + pi * k * nr;
            for (size_t kk = 0; kk < k; kk++) {
                float *dst = panel + kk * nr;
                for (size_t j = 0; j < cols; j++)
                    dst[j] = src[(j0 + j) * s0 + kk * s1];
                for (size_t j = cols; j < nr; j++)
                    dst[j] = 0.0f;
            }
        }
    }
    free(converted);
    return M3_STATUS_OK;
}

// The matrix over packed bytes (owned or borrowed); int8's scales and sums lie after its panels.
static void set_matrix(m3_packed_matrix *p, size_t n, size_t k, const m3_gemm_kernel *kernel, void *data,
                       size_t bytes) {
    size_t nr = kernel->nr, np = (n + nr - 1) / nr * nr;
    p->n = n;
    p->k = k;
    p->kp = packed_kp(kernel->precision, k);
    p->kernel = kernel;
    p->data = data;
    p->bytes = bytes;
    if (kernel->precision == M3_GEMM_INT8) {
        p->w_scale = (const float *)((const char *)data + np * p->kp);
        p->w_sum = (const int32_t *)(p->w_scale + np);
    }
}

static m3_status check_matrix(const m3_tensor *w, m3_error *err) {
    if (w->ndim != 2 || w->shape[0] <= 0 || w->shape[1] <= 0)
        return m3_error_set(err, M3_STATUS_INVALID, 0,
                            "gemm: weight %s must be a non-empty matrix [out, in]",
                            w->name ? w->name : "(unnamed)");
    return M3_STATUS_OK;
}

m3_status m3_packed_matrix_pack_into(const m3_tensor *w, m3_gemm_precision precision, void *dst,
                                     size_t bytes, m3_error *err) {
    m3_status st = check_matrix(w, err);
    if (st != M3_STATUS_OK)
        return st;
    const m3_gemm_kernel *kernel = m3_gemm_kernel_select_for(precision);
    size_t want = packed_bytes(kernel, (size_t)w->shape[0], (size_t)w->shape[1]);
    if (want == 0 || want != bytes)
        return m3_error_set(err, M3_STATUS_INVALID, 0,
                            "gemm: weight %s packs into %zu bytes, not %zu",
                            w->name ? w->name : "(unnamed)", want, bytes);
    return pack_panels(w, kernel, dst, err);
}

// 4 KiB pages cost the GEMM a few per cent inside the encoder: one layer streams 48 MB of fp32
// weights (12,288 pages) and its activations (4-16 MB a buffer at 1,024 tokens) through the
// micro-kernel's panels, and the dTLB (a few thousand entries) misses on them again and again; on
// 2 MiB pages the same bytes take 24 + a handful of entries. Measured on the dev VM (2 vCPU EPYC,
// tests/encoder/bench-pages: one process, the same weights and activations both ways): the
// encoder's four fp32 GEMMs 3-9 % faster at 1,024 and 2,048 rows (docs/performance.md, "fp32 on
// huge pages"). The cost: each buffer rounded up to 2 MiB (the weights are multiples of it).
//
// Large buffers are mapped here (mmap), not taken from malloc: a 2 MiB aligned block from the heap
// leaves up to 2 MiB of slack before it that later small allocations touch, and on BGE-M3's 97
// matrices that grew the resident set by ~80 MB. The mapping is trimmed to the 2 MiB aligned block
// plus the 4 KiB page before it, which holds the header m3_gemm_buffer_free reads. Under
// AddressSanitizer every buffer comes from aligned_alloc, so that ASan still sees overruns.
enum { HUGE_PAGE = 2u << 20, BUFFER_HEAD = 4096 };
typedef struct buffer_head {
    void *base;  // what to release: the mapping, or (len 0) the aligned_alloc block
    size_t len;
} buffer_head;

static buffer_head *head_of(void *data) {
    return (buffer_head *)(void *)((unsigned char *)data - 64);
}

void *m3_gemm_buffer_alloc(size_t bytes) {
    if (bytes > SIZE_MAX - 2 * (size_t)HUGE_PAGE)
        return NULL;
#ifdef __SANITIZE_ADDRESS__
    bool small = true;
#else
    bool small = bytes < HUGE_PAGE;
#endif
    if (small) {
        unsigned char *base = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
        if (!base)
            return NULL;
        *head_of(base + 64) = (buffer_head){.base = base, .len = 0};
        return base + 64;
    }
    size_t rounded = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE, len = rounded + HUGE_PAGE;
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        return NULL;
    uintptr_t base = (uintptr_t)map, data = (base + BUFFER_HEAD + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    uintptr_t keep = data - BUFFER_HEAD, end = data + rounded;
    if (keep > base)
        munmap(map, keep - base);
    if (base + len > end)
        munmap((void *)end, base + len - end);
#ifdef MADV_HUGEPAGE
    (void)madvise((void *)data, rounded, MADV_HUGEPAGE);  // advice only: a kernel without THP says EINVAL
#endif
    *head_of((void *)data) = (buffer_head){.base = (void *)keep, .len = end - keep};
    return (void *)data;
}

void m3_gemm_buffer_free(void *data) {
    if (!data)
        return;
    buffer_head h = *head_of(data);
    if (h.len)
        munmap(h.base, h.len);
    else
        free(h.base);
}

m3_status m3_packed_matrix_new_as(const m3_tensor *w, m3_gemm_precision precision,
                                  m3_packed_matrix **out, m3_error *err) {
    *out = NULL;
    const char *name = w->name ? w->name : "(unnamed)";
    m3_status st = check_matrix(w, err);
    if (st != M3_STATUS_OK)
        return st;
    size_t n = (size_t)w->shape[0], k = (size_t)w->shape[1];
    const m3_gemm_kernel *kernel = m3_gemm_kernel_select_for(precision);
    if (precision == M3_GEMM_INT8 && k > M3_GEMM_INT8_K_MAX)
        return m3_error_set(err, M3_STATUS_INVALID, 0,
                            "gemm: weight %s has %zu columns, int8 takes at most %d", name, k,
                            (int)M3_GEMM_INT8_K_MAX);
    size_t bytes = packed_bytes(kernel, n, k);
    if (bytes == 0)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "gemm: weight %s is too large", name);

    m3_packed_matrix *p = calloc(1, sizeof *p);
    void *data = m3_gemm_buffer_alloc(bytes);
    if (!p || !data) {
        free(p);
        m3_gemm_buffer_free(data);
        return m3_error_set(err, M3_STATUS_NOMEM, ENOMEM, "gemm: out of memory packing %s (%zu MB)",
                            name, bytes >> 20);
    }
    if ((st = pack_panels(w, kernel, data, err)) != M3_STATUS_OK) {
        free(p);
        m3_gemm_buffer_free(data);
        return st;
    }
    set_matrix(p, n, k, kernel, data, bytes);
    *out = p;
    return M3_STATUS_OK;
}

m3_status m3_packed_matrix_wrap(size_t n, size_t k, m3_gemm_precision precision, const void *data,
                                size_t bytes, m3_packed_matrix **out, m3_error *err) {
    *out = NULL;
    const m3_gemm_kernel *kernel = m3_gemm_kernel_select_for(precision);
    size_t want = packed_bytes(kernel, n, k);
    if (want == 0 || want != bytes)
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "gemm: a packed [%zu, %zu] matrix takes %zu bytes, not %zu", n, k, want,
                            bytes);
    if ((uintptr_t)data % 64 != 0)
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "gemm: packed weights must start at a multiple of 64 bytes");
    // int8: the scales and sums lie inside the blob at an offset fixed by n, k and nr; the size check
    // above puts their np × 8 bytes exactly at its end, and they must be 64-byte aligned as well.
    size_t nr = kernel->nr, np = (n + nr - 1) / nr * nr;
    if (kernel->precision == M3_GEMM_INT8 &&
        (np * packed_kp(precision, k) % 64 != 0 || np * packed_kp(precision, k) + np * 8 != bytes))
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "gemm: the int8 scales of a packed [%zu, %zu] matrix lie outside its %zu bytes or off "
                            "their alignment", n, k, bytes);
    m3_packed_matrix *p = calloc(1, sizeof *p);
    if (!p)
        return m3_error_set(err, M3_STATUS_NOMEM, ENOMEM, "gemm: out of memory");
    set_matrix(p, n, k, kernel, (void *)(uintptr_t)data, bytes);  // never written: kernels only read W
    p->borrowed = true;
    *out = p;
    return M3_STATUS_OK;
}

m3_status m3_packed_matrix_new(const m3_tensor *w, m3_packed_matrix **out, m3_error *err) {
    return m3_packed_matrix_new_as(w, M3_GEMM_FP32, out, err);
}

size_t m3_packed_matrix_rows(const m3_packed_matrix *p) {
    return p->n;
}

size_t m3_packed_matrix_cols(const m3_packed_matrix *p) {
    return p->k;
}

void m3_packed_matrix_free(m3_packed_matrix *p) {
    if (!p)
        return;
    if (!p->borrowed)
        m3_gemm_buffer_free(p->data);
    free(p);
}

// ---- The multiply --------------------------------------------------------------------------------

enum { KC_MAX = 512 };
// About 192 rows of C per task: the W block is reused from L2 by that many rows.
enum { MT_ROWS = 192 };

// The calling thread's buffer for A converted (bf16 pairs, int8 bytes and row scales), kept from
// one m3_gemm to the next: allocated per call, its pages came back from the kernel freshly mapped
// each time (glibc returns blocks this large), and on the dev VM the first touch of 4,096 pages
// (a 2048 × 4096 A in bf16) cost up to 40 ms, as much as the multiply. It grows and never
// shrinks (at most the largest converted A the thread has multiplied); freed when the thread
// exits. The thread owns it for the duration of its call; the pool's workers use it only then.
typedef struct gemm_scratch {
    void *data;
    size_t bytes;
} gemm_scratch;

static _Thread_local gemm_scratch scratch;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p) {
    gemm_scratch *s = p;
    free(s->data);
    s->data = NULL;
    s->bytes = 0;
}

static void scratch_key_create(void) {
    if (pthread_key_create(&scratch_key, scratch_free) != 0)
        abort();
}

void m3_gemm_release_scratch(void) {
    scratch_free(&scratch);
}

// At least `bytes` of 64-byte aligned scratch; NULL when out of memory.
static void *scratch_get(size_t bytes) {
    if (scratch.bytes >= bytes)
        return scratch.data;
    pthread_once(&scratch_once, scratch_key_create);
    free(scratch.data);
    size_t grown = (bytes + (bytes >> 3) + 4095) / 4096 * 4096;  // some room for the next
    scratch.data = aligned_alloc(64, grown);
    scratch.bytes = scratch.data ? grown : 0;
    pthread_setspecific(scratch_key, &scratch);
    return scratch.data;
}

typedef struct gemm_job {
    size_t m;
    const float *a;
    size_t lda;
    const m3_packed_matrix *w;
    const float *bias;
    m3_gemm_epilogue epilogue;
    const float *r;
    size_t ldr;
    float *c;
    size_t ldc;
    size_t mt, nt;      // rows and columns of C per task (nt a multiple of nr)
    size_t n_col_tasks;
    void *qa;               // int8: A quantised, m rows of w->kp bytes; bf16: A as k pairs,
                            // m rows of qld words
    size_t qld;             // bf16: qa's row stride in words
    float *a_scale;         // int8: m row scales
    atomic_int *ready;      // int8, bf16: per row block of mt rows, READY_* (below); NULL when
                            // A came as pairs (m3_gemm_pairs)
    uint32_t *out;          // m3_gemm_to_pairs: C as bf16 pairs, row stride ldo words; C itself
    size_t ldo;             // is then each thread's tile (mt × nt floats at tiles + thread · mt · nt)
    float *tiles;
} gemm_job;

// The states of a row block's converted A.
enum { READY_NOT = 0, READY_CLAIMED = 1, READY_DONE = 2 };

// int8: quantises the rows of row block rb of A into job->qa; bf16: converts them to k pairs.
static void convert_rows(const gemm_job *job, size_t rb) {
    size_t i0 = rb * job->mt;
    size_t rows = job->m - i0 < job->mt ? job->m - i0 : job->mt;
    size_t kp = job->w->kp;
    const m3_gemm_kernel *kern = job->w->kernel;
    if (kern->precision == M3_GEMM_BF16)
        kern->to_bf16(job->a + i0 * job->lda, job->lda, rows, job->w->k,
                      (uint32_t *)job->qa + i0 * job->qld, job->qld);
    else
        kern->to_int8(job->a + i0 * job->lda, job->lda, rows, job->w->k, kp,
                      (uint8_t *)job->qa + i0 * kp, kp, job->a_scale + i0);
}

// Converts row block rb unless another task has claimed it.
static void claim_rows(const gemm_job *job, size_t rb) {
    int expected = READY_NOT;
    if (atomic_compare_exchange_strong_explicit(&job->ready[rb], &expected, READY_CLAIMED,
                                                memory_order_relaxed, memory_order_relaxed)) {
        convert_rows(job, rb);
        atomic_store_explicit(&job->ready[rb], READY_DONE, memory_order_release);
    }
}

// int8, bf16: makes row block rb's converted A ready for the task. A is converted in the GEMM's
// own tasks, just ahead of use, instead of in a pool run of its own before them: the first task
// of a row block (column task 0; the pool hands tasks out in order) converts the next row block
// too, so that the other threads rarely find theirs unconverted. A task that does converts the
// row blocks after it that nobody has claimed yet while it waits (many threads on a few row
// blocks), then waits for the task that claimed its own, which is running (it claimed it inside
// a task), so waiting cannot deadlock. One pool run per GEMM instead of two (a barrier less),
// and each block's A is still in L2 when its micro-tiles read it.
static void ready_rows(const gemm_job *job, size_t task) {
    size_t rb = task / job->n_col_tasks, row_tasks = (job->m + job->mt - 1) / job->mt;
    claim_rows(job, rb);
    size_t next = rb + 1;
    if (task % job->n_col_tasks == 0 && next < row_tasks)
        claim_rows(job, next++);
    for (unsigned spins = 0;
         atomic_load_explicit(&job->ready[rb], memory_order_acquire) != READY_DONE; spins++) {
        if (next < row_tasks)
            claim_rows(job, next++);
        else if (spins >= 1000)  // the converting thread may have lost its CPU
            sched_yield();
#if defined(__x86_64__)
        else
            __builtin_ia32_pause();
#endif
    }
}

// int8: the task's micro-tiles over all of k (the quantised A tile stays in L1, the task's panels
// in L2: m3_gemm sizes nt for that).
static void gemm_i8_task(const gemm_job *job, size_t m0, size_t m1, size_t n0, size_t n1,
                         size_t mr_even) {
    const m3_packed_matrix *w = job->w;
    const m3_gemm_kernel *kern = w->kernel;
    const size_t nr = kern->nr, kp = w->kp;
    bool residual = job->epilogue == M3_GEMM_BIAS_RESIDUAL;
    bool gelu = job->epilogue == M3_GEMM_BIAS_GELU;
    for (size_t i0 = m0; i0 < m1; i0 += mr_even) {
        size_t mr = m1 - i0 < mr_even ? m1 - i0 : mr_even;
        for (size_t j0 = n0; j0 < n1; j0 += nr) {
            size_t cols = n1 - j0 < nr ? n1 - j0 : nr;
            float *c = job->c + i0 * job->ldc + j0;
            kern->tile_i8(kp, job->qa + i0 * kp, kp, (const int8_t *)w->data + j0 * kp, c,
                          job->ldc, mr, cols, job->a_scale + i0, w->w_scale + j0, w->w_sum + j0,
                          job->bias ? job->bias + j0 : NULL,
                          residual ? job->r + i0 * job->ldr + j0 : NULL, job->ldr, gelu);
        }
    }
}

static void gemm_task(void *ctx, size_t task, int thread) {
    const gemm_job *job = ctx;
    const m3_packed_matrix *w = job->w;
    const m3_gemm_kernel *kern = w->kernel;
    const size_t mr_max = kern->mr, nr = kern->nr, kp = w->kp, n = w->n, k = w->k;
    const size_t kc = kern->kc;
    const bool bf16 = kern->precision == M3_GEMM_BF16;
    const size_t esize = bf16 ? 2 : 4;
    size_t m0 = task / job->n_col_tasks * job->mt, n0 = task % job->n_col_tasks * job->nt;
    size_t m1 = m0 + job->mt < job->m ? m0 + job->mt : job->m;
    size_t n1 = n0 + job->nt < n ? n0 + job->nt : n;
    // Split the rows evenly into micro-tiles of at most mr_max (16 rows: 8 + 8, not 14 + 2).
    size_t rows = m1 - m0, tiles = (rows + mr_max - 1) / mr_max, mr_even = (rows + tiles - 1) / tiles;
    size_t n_tiles = (rows + mr_even - 1) / mr_even;  // ≤ tiles
    if (job->ready)
        ready_rows(job, task);
    if (kern->precision == M3_GEMM_INT8) {
        gemm_i8_task(job, m0, m1, n0, n1, mr_even);
        return;
    }
    bool residual = job->epilogue == M3_GEMM_BIAS_RESIDUAL;
    bool gelu = job->epilogue == M3_GEMM_BIAS_GELU;
    // to_pairs: the task's C lives in the thread's tile (in L2 across the k blocks) and only its
    // bf16 pairs go to memory, each micro-tile converted after its last k block, still in L1.
    float *tile = job->out ? job->tiles + (size_t)thread * job->mt * job->nt : NULL;
    size_t ldc = job->out ? job->nt : job->ldc;
    for (size_t k0 = 0; k0 < k; k0 += kc) {
        size_t kb = k - k0 < kc ? k - k0 : kc;
        bool first = k0 == 0, last = k0 + kb == k;
        for (size_t i0 = m0; i0 < m1; i0 += mr_even) {
            size_t mr = m1 - i0 < mr_even ? m1 - i0 : mr_even;
            // fp32: A in place; bf16: the pairs m3_gemm converted (k0 is even: kc is).
            const void *at = bf16 ? (const void *)((const uint32_t *)job->qa + i0 * job->qld + k0 / 2)
                                  : (const void *)(job->a + i0 * job->lda + k0);
            size_t lda = bf16 ? job->qld : job->lda;
            for (size_t j0 = n0; j0 < n1; j0 += nr) {
                size_t cols = n1 - j0 < nr ? n1 - j0 : nr;
                // Panel j0/nr starts at element j0*kp; its k block at k0*nr.
                const void *wp = (const char *)w->data + (j0 * kp + k0 * nr) * esize;
                float *c = tile ? tile + (i0 - m0) * ldc + (j0 - n0) : job->c + i0 * ldc + j0;
                const float *bias = job->bias ? job->bias + j0 : NULL;
                const float *r = residual ? job->r + i0 * job->ldr + j0 : NULL;
                if (kern->tile_pf && !last) {
                    // Row tile t of the task's n_tiles prefetches lines [t·L/n_tiles,
                    // (t+1)·L/n_tiles) of the L lines of this panel's next k block.
                    size_t t = (i0 - m0) / mr_even, next_kb = k - k0 - kb < kc ? k - k0 - kb : kc;
                    size_t lines = next_kb * nr * esize / 64;
                    size_t l0 = t * lines / n_tiles, l1 = (t + 1) * lines / n_tiles;
                    if (l1 - l0 > 2 * kb)  // the most the tile spreads over its k steps
                        l1 = l0 + 2 * kb;
                    kern->tile_pf(kb, at, lda, wp, c, ldc, mr, cols, first, bias, r, job->ldr,
                                  (const char *)wp + kb * nr * esize + l0 * 64, l1 - l0);
                } else {
                    kern->tile(kb, at, lda, wp, c, ldc, mr, cols, first, bias, r, job->ldr);
                }
                if (last && gelu)
                    for (size_t i = 0; i < mr; i++)
                        kern->gelu(c + i * ldc, cols);
                if (last && tile)  // j0 is a multiple of nr, so even: word j0 / 2
                    kern->to_bf16(c, ldc, mr, cols, job->out + i0 * job->ldo + j0 / 2, job->ldo);
            }
        }
    }
}

// m3_gemm and its bf16 pair forms: A is fp32 at a, or pairs at pa (then a is NULL); C is fp32 at c,
// or pairs at out (then c is NULL).
static void gemm_run(m3_threadpool *pool, size_t m, const float *a, size_t lda, const uint32_t *pa,
                     const m3_packed_matrix *w, const float *bias, m3_gemm_epilogue epilogue,
                     const float *r, size_t ldr, float *c, size_t ldc, uint32_t *out) {
    if (m == 0)
        return;
    const m3_gemm_kernel *kern = w->kernel;
    M3_ASSERT(kern->kc <= KC_MAX && kern->kc % 2 == 0 && kern->mr <= M3_GEMM_MR_MAX);
    M3_ASSERT(pa ? lda >= w->kp / 2 : lda >= w->k);
    M3_ASSERT(out ? ldc >= (w->n + 1) / 2 : ldc >= w->n);
    M3_ASSERT(((!pa && !out) || kern->precision == M3_GEMM_BF16) &&
              (!out || epilogue != M3_GEMM_BIAS_RESIDUAL));
    M3_ASSERT(epilogue != M3_GEMM_BIAS_RESIDUAL || (r && ldr >= w->n));
    size_t nr = kern->nr, mr = kern->mr;
    size_t panels = (w->n + nr - 1) / nr;
    size_t threads = (size_t)m3_threadpool_size(pool);

    // Start from tasks of ~192 rows × ~256 columns (an L2-sized W block), then shrink the
    // columns, then the rows, until every thread has about four tasks to balance.
    size_t mt_tiles = (MT_ROWS + mr - 1) / mr, nt_panels = (256 + nr - 1) / nr;
    size_t m_tiles = (m + mr - 1) / mr;
    if (mt_tiles > m_tiles)
        mt_tiles = m_tiles;
    bool int8 = kern->precision == M3_GEMM_INT8;
    if (int8)  // all of k at once: keep the task's panels (nt × kp bytes) within ~256 KB of L2
        nt_panels = (256 * 1024 / (w->kp * nr)) > 1 ? 256 * 1024 / (w->kp * nr) : 1;
    if (nt_panels > panels)
        nt_panels = panels;
    size_t target = threads > 1 ? 4 * threads : 1;
#define N_TASKS() (((m_tiles + mt_tiles - 1) / mt_tiles) * ((panels + nt_panels - 1) / nt_panels))
    while (N_TASKS() < target && nt_panels > 1)
        nt_panels = (nt_panels + 1) / 2 < nt_panels ? (nt_panels + 1) / 2 : nt_panels - 1;
    while (N_TASKS() < target && mt_tiles > 1)
        mt_tiles = (mt_tiles + 1) / 2 < mt_tiles ? (mt_tiles + 1) / 2 : mt_tiles - 1;
    gemm_job job = {
        .m = m, .a = a, .lda = lda, .w = w, .bias = bias, .epilogue = epilogue, .r = r,
        .ldr = ldr, .c = c, .ldc = ldc, .out = out, .ldo = ldc,
        .mt = mt_tiles * mr < m ? mt_tiles * mr : m,
        .nt = nt_panels * nr,
        .n_col_tasks = (panels + nt_panels - 1) / nt_panels,
    };
    size_t row_tasks = (m + job.mt - 1) / job.mt;
#undef N_TASKS
    bool bf16 = kern->precision == M3_GEMM_BF16;
    if (pa) {
        job.qa = (void *)(uintptr_t)pa;  // only read
        job.qld = lda;
    }
    // The calling thread's scratch: A converted (int8, bf16 from fp32), then int8's row scales,
    // the row blocks' ready flags, then to_pairs's C tiles, one per pool thread.
    bool convert = (int8 || bf16) && !pa;
    size_t bytes = convert ? (m * w->kp * (bf16 ? 2 : 1) + 63) / 64 * 64 : 0;
    size_t scales = int8 ? (m * sizeof(float) + 63) / 64 * 64 : 0;
    size_t flags = convert ? (row_tasks * sizeof(atomic_int) + 63) / 64 * 64 : 0;
    size_t tiles = out ? (size_t)m3_threadpool_size(pool) * job.mt * job.nt * sizeof(float) : 0;
    if (convert || out) {
        unsigned char *buf = scratch_get(bytes + scales + flags + tiles);
        if (!buf) {
            fprintf(stderr, "gemm: out of memory for the %s activations (%zu × %zu bytes)\n",
                    int8 ? "int8" : "bf16", m, w->kp * (bf16 ? 2 : 1));
            abort();
        }
        if (out)
            job.tiles = (float *)(buf + bytes + scales + flags);
        if (convert) {
            // bf16: A is converted to k pairs once per GEMM (ready_rows), not per micro-tile and
            // column task (the same rows were converted again for each of the n / nt column
            // tasks: 7 % of a 2048-row GEMM's time, mostly waiting for fp32 A from memory).
            job.qld = w->kp / 2;
            job.qa = buf;
            job.a_scale = int8 ? (float *)(buf + bytes) : NULL;
            job.ready = (atomic_int *)(buf + bytes + scales);
            for (size_t i = 0; i < row_tasks; i++)
                atomic_init(&job.ready[i], READY_NOT);
        }
    }
    m3_threadpool_run(pool, row_tasks * job.n_col_tasks, gemm_task, &job);
}

void m3_gemm(m3_threadpool *pool, size_t m, const float *a, size_t lda, const m3_packed_matrix *w,
             const float *bias, m3_gemm_epilogue epilogue, const float *r, size_t ldr, float *c,
             size_t ldc) {
    gemm_run(pool, m, a, lda, NULL, w, bias, epilogue, r, ldr, c, ldc, NULL);
}

void m3_gemm_to_pairs(m3_threadpool *pool, size_t m, const float *a, size_t lda,
                      const m3_packed_matrix *w, const float *bias, m3_gemm_epilogue epilogue,
                      uint32_t *c, size_t ldc) {
    gemm_run(pool, m, a, lda, NULL, w, bias, epilogue, NULL, 0, NULL, ldc, c);
}

void m3_gemm_pairs(m3_threadpool *pool, size_t m, const uint32_t *a, size_t lda,
                   const m3_packed_matrix *w, const float *bias, m3_gemm_epilogue epilogue,
                   const float *r, size_t ldr, float *c, size_t ldc) {
    gemm_run(pool, m, NULL, lda, a, w, bias, epilogue, r, ldr, c, ldc, NULL);
}

void m3_gemm_pairs_to_pairs(m3_threadpool *pool, size_t m, const uint32_t *a, size_t lda,
                            const m3_packed_matrix *w, const float *bias,
                            m3_gemm_epilogue epilogue, uint32_t *c, size_t ldc) {
    gemm_run(pool, m, NULL, lda, a, w, bias, epilogue, NULL, 0, NULL, ldc, c);
}

void m3_gemm_rows_to_pairs(const m3_packed_matrix *w, const float *a, size_t lda, size_t rows,
                           size_t k, uint32_t *dst, size_t ldd) {
    M3_ASSERT(w->kernel->precision == M3_GEMM_BF16 && ldd >= (k + 1) / 2);
    w->kernel->to_bf16(a, lda, rows, k, dst, ldd);
}
