// SPDX-License-Identifier: MIT
//
// Tensor helpers: dtype sizes, shapes, strides and exact half / bfloat16 conversions.
#include "model/tensor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

size_t m3_dtype_size(m3_dtype dtype)
{
    switch (dtype) {
    case M3_DTYPE_F32: return 4;
    case M3_DTYPE_F16: return 2;
    case M3_DTYPE_BF16: return 2;
    }
    return 0;
}

const char *m3_dtype_name(m3_dtype dtype)
{
    switch (dtype) {
    case M3_DTYPE_F32: return "F32";
    case M3_DTYPE_F16: return "F16";
    case M3_DTYPE_BF16: return "BF16";
    }
    return "unknown";
}

int64_t m3_tensor_numel(const m3_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

bool m3_tensor_is_contiguous(const m3_tensor *t)
{
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        // A dimension of size 1 may carry any stride; PyTorch itself treats it as contiguous.
        if (t->shape[i] != 1 && t->strides[i] != expect) return false;
        expect *= t->shape[i];
    }
    return true;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float m3_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (mant << 13));  // inf, nan (payload kept)
    if (exp == 0) {
        // Zero or subnormal: mant * 2^-24 is exact in float.
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

float m3_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

uint16_t m3_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t exp = (u >> 23) & 0xffu;
    uint32_t mant = u & 0x7fffffu;
    if (exp == 0xff) {
        if (mant == 0) return sign | 0x7c00u;
        return (uint16_t)(sign | 0x7e00u | (mant >> 13));  // quiet nan, top payload bits kept
    }
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 0x1f) return sign | 0x7c00u;  // overflow to infinity
    if (e <= 0) {
        // Subnormal half (or zero): shift the full significand (with its implicit bit) right.
        if (e < -10) return sign;  // below half the smallest subnormal: rounds to zero
        uint32_t m = mant | 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);  // q may carry into the exponent field: that is correct
    }
    uint32_t q = ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) q++;  // a carry may reach infinity: correct
    return (uint16_t)(sign | q);
}

void m3_tensor_to_f32(const m3_tensor *t, float *dst)
{
    int64_t numel = m3_tensor_numel(t);
    if (numel <= 0) return;
    int64_t idx[M3_TENSOR_MAX_DIMS] = {0};
    int64_t off = 0;  // element offset of the current index
    const unsigned char *base = t->data;
    for (int64_t n = 0; n < numel; n++) {
        switch (t->dtype) {
        case M3_DTYPE_F32: {
            float v;
            memcpy(&v, base + off * 4, 4);
            dst[n] = v;
            break;
        }
        case M3_DTYPE_F16: {
            uint16_t h;
            memcpy(&h, base + off * 2, 2);
            dst[n] = m3_f16_to_f32(h);
            break;
        }
        case M3_DTYPE_BF16: {
            uint16_t h;
            memcpy(&h, base + off * 2, 2);
            dst[n] = m3_bf16_to_f32(h);
            break;
        }
        }
        // Advance the multi-index, last dimension fastest.
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) {
                off += t->strides[d];
                break;
            }
            off -= (idx[d] - 1) * t->strides[d];
            idx[d] = 0;
        }
    }
}

static void format_shape(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

m3_status m3_tensor_check_shape(const m3_tensor *t, const char *file, int ndim, const int64_t *shape,
                                m3_error *err)
{
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (ok) return M3_STATUS_OK;
    char have[96], want[96];
    format_shape(have, sizeof have, t->ndim, t->shape);
    format_shape(want, sizeof want, ndim, shape);
    return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: tensor %s has shape %s, expected %s", file,
                        t->name ? t->name : "?", have, want);
}
