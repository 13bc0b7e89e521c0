// SPDX-License-Identifier: MIT
//
// tensor.h: dtype helpers, exact fp16 / bf16 conversions, strided copies, shape checks.
#include <math.h>
#include <stdint.h>

#include "model/tensor.h"
#include "test-util.h"

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

// Reference conversion by value: every half is m * 2^e with small m, exact in double.
static double f16_value(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

static void test_f16_roundtrip(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = m3_f16_to_f32((uint16_t)h);
        int e = (h >> 10) & 31;
        if (e == 31) {
            if ((h & 1023) == 0) bad += !(isinf(f) && (signbit(f) != 0) == ((h & 0x8000) != 0));
            else bad += !isnan(f);
            bad += m3_f32_to_f16(f) != (isnan(f) ? (uint16_t)(h | 0x200) : h);
            continue;
        }
        bad += (double)f != f16_value((uint16_t)h);
        bad += (signbit(f) != 0) != ((h & 0x8000) != 0);
        bad += m3_f32_to_f16(f) != h;  // every half survives the round trip, subnormals included
    }
    CHECK(bad == 0);
}

static void test_f32_to_f16_rounding(void)
{
    // Ties to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10.
    CHECK(m3_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00);
    CHECK(m3_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02);
    CHECK(m3_f32_to_f16(1.0f + 0x1p-11f + 0x1p-20f) == 0x3c01);
    CHECK(m3_f32_to_f16(65504.0f) == 0x7bff);
    CHECK(m3_f32_to_f16(65520.0f) == 0x7c00);  // halfway to the next binade: rounds to inf
    CHECK(m3_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(m3_f32_to_f16(1e10f) == 0x7c00);
    CHECK(m3_f32_to_f16(-INFINITY) == 0xfc00);
    CHECK((m3_f32_to_f16(NAN) & 0x7c00) == 0x7c00 && (m3_f32_to_f16(NAN) & 0x3ff) != 0);
    CHECK(m3_f32_to_f16(0x1p-24f) == 0x0001);   // smallest subnormal
    CHECK(m3_f32_to_f16(0x1p-25f) == 0x0000);   // tie with zero: even is zero
    CHECK(m3_f32_to_f16(0x1.8p-25f) == 0x0001);
    CHECK(m3_f32_to_f16(3 * 0x1p-25f) == 0x0002); // 1.5 ulp: tie to even (2)
    CHECK(m3_f32_to_f16(0x1.ff8p-15f) == 0x03ff); // largest subnormal
    CHECK(m3_f32_to_f16(0x1.ffcp-15f) == 0x0400); // tie: rounds up out of the subnormals to even
    CHECK(m3_f32_to_f16(-0.0f) == 0x8000);
    CHECK(m3_f32_to_f16(1e-30f) == 0);
    // Compare with the round-to-nearest-even of a double reference on a sweep of values.
    int bad = 0;
    uint32_t s = 12345;
    for (int i = 0; i < 200000; i++) {
        s = s * 1664525u + 1013904223u;
        uint32_t u = (s & 0x807fffffu) | ((uint32_t)(96 + (s >> 8) % 50) << 23);
        float f;
        memcpy(&f, &u, 4);
        uint16_t h = m3_f32_to_f16(f);
        uint16_t lo = h & 0x7fff ? (uint16_t)(h - 1) : h, hi = (uint16_t)(h + 1);
        double d = fabs((double)f - f16_value(h));
        // No neighbour is strictly closer.
        if ((h & 0x7fff) < 0x7c00) {
            if ((hi & 0x7fff) < 0x7c00 && fabs((double)f - f16_value(hi)) < d) bad++;
            if ((h & 0x7fff) && fabs((double)f - f16_value(lo)) < d) bad++;
        }
    }
    CHECK(bad == 0);
    (void)bits;
}

static void test_bf16(void)
{
    CHECK(m3_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(m3_bf16_to_f32(0xc000) == -2.0f);
    CHECK(isinf(m3_bf16_to_f32(0x7f80)));
    CHECK(isnan(m3_bf16_to_f32(0x7fc1)));
    CHECK(m3_bf16_to_f32(0x0001) == 0x1p-133f);  // subnormal
}

static void test_strided(void)
{
    float data[12];
    for (int i = 0; i < 12; i++) data[i] = (float)i;
    // A [3, 2] view of a [2, 6] buffer, transposed, starting at element 1: t[i][j] = data[1 + i + 6 j].
    m3_tensor t = {.name = "x", .dtype = M3_DTYPE_F32, .ndim = 2, .shape = {3, 2}, .strides = {1, 6}, .data = data + 1};
    float out[6];
    m3_tensor_to_f32(&t, out);
    float want[6] = {1, 7, 2, 8, 3, 9};
    CHECK(!memcmp(out, want, sizeof want));
    CHECK(!m3_tensor_is_contiguous(&t));
    CHECK(m3_tensor_numel(&t) == 6);
    m3_tensor c = {.name = "c", .dtype = M3_DTYPE_F16, .ndim = 3, .shape = {2, 1, 3}, .strides = {3, 99, 1}};
    uint16_t h[6];
    for (int i = 0; i < 6; i++) h[i] = m3_f32_to_f16((float)i * 0.5f);
    c.data = h;
    CHECK(m3_tensor_is_contiguous(&c));
    m3_tensor_to_f32(&c, out);
    for (int i = 0; i < 6; i++) CHECK(out[i] == (float)i * 0.5f);
    m3_tensor scalar = {.name = "s", .dtype = M3_DTYPE_BF16, .ndim = 0, .data = (uint16_t[]){0x4040}};
    CHECK(m3_tensor_numel(&scalar) == 1);
    m3_tensor_to_f32(&scalar, out);
    CHECK(out[0] == 3.0f);
}

static void test_dtype_and_shape(void)
{
    CHECK(m3_dtype_size(M3_DTYPE_F32) == 4 && m3_dtype_size(M3_DTYPE_F16) == 2 && m3_dtype_size(M3_DTYPE_BF16) == 2);
    CHECK(!strcmp(m3_dtype_name(M3_DTYPE_F16), "F16") && !strcmp(m3_dtype_name(M3_DTYPE_BF16), "BF16"));
    m3_tensor t = {.name = "w", .dtype = M3_DTYPE_F32, .ndim = 2, .shape = {4, 5}, .strides = {5, 1}};
    m3_error err = {0};
    CHECK(m3_tensor_check_shape(&t, "f.bin", 2, (const int64_t[]){4, 5}, &err) == M3_STATUS_OK);
    CHECK(m3_tensor_check_shape(&t, "f.bin", 2, (const int64_t[]){5, 4}, &err) == M3_STATUS_FORMAT);
    CHECK(!strcmp(err.message, "f.bin: tensor w has shape [4, 5], expected [5, 4]"));
    CHECK(m3_tensor_check_shape(&t, "f.bin", 1, (const int64_t[]){20}, &err) == M3_STATUS_FORMAT);
}

int main(void)
{
    test_f16_roundtrip();
    test_f32_to_f16_rounding();
    test_bf16();
    test_strided();
    test_dtype_and_shape();
    return test_finish("test-tensor");
}
