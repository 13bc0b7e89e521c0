// SPDX-License-Identifier: MIT
//
// The dense search's inner loops (see scan.h). The SIMD versions are compiled for their ISA with
// GCC/Clang target attributes in this one file (small kernels; no per-ISA library needed) and only
// called after __builtin_cpu_supports said yes.
#include "index/scan.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define M3_SCAN_X86 1
#endif

// ---- portable ----------------------------------------------------------------------------------

static void hamming_generic(const unsigned char *codes, size_t n, size_t cb, const unsigned char *q, uint32_t *out)
{
    for (size_t i = 0; i < n; i++) {
        const unsigned char *c = codes + i * cb;
        uint32_t h = 0;
        size_t b = 0;
        for (; b + 8 <= cb; b += 8) {
            uint64_t x, y;
            memcpy(&x, c + b, 8);
            memcpy(&y, q + b, 8);
            h += (uint32_t)__builtin_popcountll(x ^ y);
        }
        for (; b < cb; b++) h += (uint32_t)__builtin_popcount((unsigned)(c[b] ^ q[b]));
        out[i] = h;
    }
}

static size_t below_generic(const uint32_t *dist, const unsigned char *live, size_t n, uint32_t below, uint32_t *slots)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (dist[i] < below && (live[i / 8] >> (i % 8) & 1)) slots[m++] = (uint32_t)i;
    return m;
}

// Four partial sums: the compiler vectorises them without reassociating a single sum.
static float dot_i8_generic(const float *q, const void *pv, size_t d)
{
    const signed char *p = pv;
    float s[4] = {0};
    size_t i = 0;
    for (; i + 4 <= d; i += 4)
        for (size_t l = 0; l < 4; l++) s[l] += q[i + l] * (float)p[i + l];
    float r = (s[0] + s[1]) + (s[2] + s[3]);
    for (; i < d; i++) r += q[i] * (float)p[i];
    return r;
}

static float dot_f32_generic(const float *q, const void *pv, size_t d)
{
    const unsigned char *p = pv;
    float s[4] = {0};
    size_t i = 0;
    for (; i + 4 <= d; i += 4)
        for (size_t l = 0; l < 4; l++) {
            float x;
            memcpy(&x, p + 4 * (i + l), 4);
            s[l] += q[i + l] * x;
        }
    float r = (s[0] + s[1]) + (s[2] + s[3]);
    for (; i < d; i++) {
        float x;
        memcpy(&x, p + 4 * i, 4);
        r += q[i] * x;
    }
    return r;
}

static const m3_scan_kernels generic_kernels = {"generic", hamming_generic, below_generic, dot_i8_generic,
                                                dot_f32_generic};

#ifdef M3_SCAN_X86

// ---- the popcnt instruction, scalar --------------------------------------------------------------

__attribute__((target("popcnt"))) static void hamming_popcnt(const unsigned char *codes, size_t n, size_t cb,
                                                             const unsigned char *q, uint32_t *out)
{
    for (size_t i = 0; i < n; i++) {
        const unsigned char *c = codes + i * cb;
        uint64_t h = 0;
        size_t b = 0;
        for (; b + 8 <= cb; b += 8) {
            uint64_t x, y;
            memcpy(&x, c + b, 8);
            memcpy(&y, q + b, 8);
            h += (uint64_t)__builtin_popcountll(x ^ y);
        }
        for (; b < cb; b++) h += (uint64_t)__builtin_popcount((unsigned)(c[b] ^ q[b]));
        out[i] = (uint32_t)h;
    }
}

static const m3_scan_kernels popcnt_kernels = {"popcnt", hamming_popcnt, below_generic, dot_i8_generic,
                                               dot_f32_generic};

// ---- AVX2: popcount by nibble lookup (vpshufb) and vpsadbw ----------------------------------------

#define AVX2_TARGET __attribute__((target("avx2,fma,popcnt")))

AVX2_TARGET static inline __m256i popcount256(__m256i v)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2,
                                         2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
    __m256i cnt = _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
    return _mm256_sad_epu8(cnt, _mm256_setzero_si256());  // four u64 sums
}

AVX2_TARGET static void hamming_avx2(const unsigned char *codes, size_t n, size_t cb, const unsigned char *q,
                                     uint32_t *out)
{
    size_t vec = cb / 32 * 32;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *c = codes + i * cb;
        __m256i acc = _mm256_setzero_si256();
        for (size_t b = 0; b < vec; b += 32) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(c + b));
            __m256i y = _mm256_loadu_si256((const __m256i *)(q + b));
            acc = _mm256_add_epi64(acc, popcount256(_mm256_xor_si256(x, y)));
        }
        __m128i s = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
        uint64_t h = (uint64_t)_mm_cvtsi128_si64(s) + (uint64_t)_mm_extract_epi64(s, 1);
        size_t b = vec;
        for (; b + 8 <= cb; b += 8) {
            uint64_t x, y;
            memcpy(&x, c + b, 8);
            memcpy(&y, q + b, 8);
            h += (uint64_t)__builtin_popcountll(x ^ y);
        }
        for (; b < cb; b++) h += (uint64_t)__builtin_popcount((unsigned)(c[b] ^ q[b]));
        out[i] = (uint32_t)h;
    }
}

AVX2_TARGET static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2_TARGET static float dot_i8_avx2(const float *q, const void *pv, size_t d)
{
    const signed char *p = pv;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(p + i));
        __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(x));
        __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(x, x)));
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), lo, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), hi, a1);
    }
    float r = hsum256(_mm256_add_ps(a0, a1));
    for (; i < d; i++) r += q[i] * (float)p[i];
    return r;
}

AVX2_TARGET static float dot_f32_avx2(const float *q, const void *pv, size_t d)
{
    const unsigned char *p = pv;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= d; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps((const float *)(p + 4 * i)), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps((const float *)(p + 4 * i + 32)), a1);
    }
    float r = hsum256(_mm256_add_ps(a0, a1));
    for (; i < d; i++) {
        float x;
        memcpy(&x, p + 4 * i, 4);
        r += q[i] * x;
    }
    return r;
}

// 8 distances at a time; the mask of those below, with their live bits, as a byte of bits.
AVX2_TARGET static size_t below_avx2(const uint32_t *dist, const unsigned char *live, size_t n, uint32_t below,
                                     uint32_t *slots)
{
    // dist ≤ 65536 (a code has at most that many bits): a signed compare is exact.
    const __m256i lim = _mm256_set1_epi32(below > INT32_MAX ? INT32_MAX : (int)below);
    size_t m = 0;
    for (size_t i = 0; i < n; i += 8) {
        __m256i d = _mm256_loadu_si256((const __m256i *)(dist + i));
        unsigned bits = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(lim, d))) & live[i / 8];
        while (bits) {
            slots[m++] = (uint32_t)(i + (size_t)__builtin_ctz(bits));
            bits &= bits - 1;
        }
    }
    return m;
}

static const m3_scan_kernels avx2_kernels = {"avx2", hamming_avx2, below_avx2, dot_i8_avx2, dot_f32_avx2};

// ---- AVX-512 with VPOPCNTDQ ----------------------------------------------------------------------

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vpopcntdq,fma,popcnt")))

AVX512_TARGET static void hamming_avx512(const unsigned char *codes, size_t n, size_t cb, const unsigned char *q,
                                         uint32_t *out)
{
    if (cb == 128) {  // 1024-d (BGE-M3): two registers per code, the query's kept in registers
        __m512i q0 = _mm512_loadu_si512(q), q1 = _mm512_loadu_si512(q + 64);
        size_t i = 0;
        for (; i + 2 <= n; i += 2) {
            const unsigned char *c = codes + i * 128;
            __m512i a = _mm512_add_epi64(_mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(c), q0)),
                                         _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(c + 64), q1)));
            __m512i b = _mm512_add_epi64(_mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(c + 128), q0)),
                                         _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(c + 192), q1)));
            out[i] = (uint32_t)_mm512_reduce_add_epi64(a);
            out[i + 1] = (uint32_t)_mm512_reduce_add_epi64(b);
        }
        for (; i < n; i++) {
            const unsigned char *c = codes + i * 128;
            __m512i a = _mm512_add_epi64(_mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(c), q0)),
                                         _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(c + 64), q1)));
            out[i] = (uint32_t)_mm512_reduce_add_epi64(a);
        }
        return;
    }
    size_t full = cb / 64 * 64, rest = cb - full;
    __mmask64 tail = rest ? _cvtu64_mask64((~0ull) >> (64 - rest)) : 0;
    __m512i qt = _mm512_maskz_loadu_epi8(tail, q + full);
    for (size_t i = 0; i < n; i++) {
        const unsigned char *c = codes + i * cb;
        __m512i acc = _mm512_setzero_si512();
        for (size_t b = 0; b < full; b += 64)
            acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(
                                            _mm512_xor_si512(_mm512_loadu_si512(c + b), _mm512_loadu_si512(q + b))));
        if (rest)
            acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_maskz_loadu_epi8(tail, c + full), qt)));
        out[i] = (uint32_t)_mm512_reduce_add_epi64(acc);
    }
}

AVX512_TARGET static float dot_i8_avx512(const float *q, const void *pv, size_t d)
{
    const signed char *p = pv;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        __m512 x0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + i))));
        __m512 x1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + i + 16))));
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), x0, a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), x1, a1);
    }
    float r = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    for (; i < d; i++) r += q[i] * (float)p[i];
    return r;
}

AVX512_TARGET static float dot_f32_avx512(const float *q, const void *pv, size_t d)
{
    const unsigned char *p = pv;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= d; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_loadu_ps(p + 4 * i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), _mm512_loadu_ps(p + 4 * i + 64), a1);
    }
    float r = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    for (; i < d; i++) {
        float x;
        memcpy(&x, p + 4 * i, 4);
        r += q[i] * x;
    }
    return r;
}

AVX512_TARGET static size_t below_avx512(const uint32_t *dist, const unsigned char *live, size_t n, uint32_t below,
                                         uint32_t *slots)
{
    const __m512i lim = _mm512_set1_epi32((int)below);
    const __m512i step = _mm512_set1_epi32(16);
    __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    size_t m = 0;
    for (size_t i = 0; i < n; i += 16) {
        uint16_t l;
        memcpy(&l, live + i / 8, 2);
        __mmask16 k = _mm512_mask_cmplt_epu32_mask((__mmask16)l, _mm512_loadu_si512(dist + i), lim);
        // Compress in a register, store all 16 lanes (slots has room): the memory form of
        // vpcompressd is microcoded and slow on some CPUs (AMD Zen 4).
        if (k) _mm512_storeu_si512(slots + m, _mm512_maskz_compress_epi32(k, idx));
        m += (size_t)__builtin_popcount((unsigned)k);
        idx = _mm512_add_epi32(idx, step);
    }
    return m;
}

static const m3_scan_kernels avx512_kernels = {"avx512", hamming_avx512, below_avx512, dot_i8_avx512,
                                               dot_f32_avx512};

#endif  // M3_SCAN_X86

const m3_scan_kernels *m3_scan_kernels_named(const char *name)
{
    if (!strcmp(name, "generic")) return &generic_kernels;
#ifdef M3_SCAN_X86
    __builtin_cpu_init();
    if (!strcmp(name, "popcnt") && __builtin_cpu_supports("popcnt")) return &popcnt_kernels;
    if (!strcmp(name, "avx2") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("popcnt"))
        return &avx2_kernels;
    if (!strcmp(name, "avx512") && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vpopcntdq") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("popcnt"))
        return &avx512_kernels;
#endif
    return NULL;
}

static const m3_scan_kernels *chosen;

static void choose(void)
{
    static const char *const order[] = {"avx512", "avx2", "popcnt", "generic"};
    for (size_t i = 0; !chosen; i++) chosen = m3_scan_kernels_named(order[i]);
}

const m3_scan_kernels *m3_scan_kernels_get(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, choose);
    return chosen;
}
