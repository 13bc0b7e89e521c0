// SPDX-License-Identifier: MIT
// Shared by the compute shaders: weights are IEEE halves packed two per uint (unpackHalf2x16 needs
// no 16-bit storage feature, so the same SPIR-V runs on every device); activations are fp32.

// Half number i of a packed half array.
float half_at(uint packed_word, uint i)
{
    vec2 v = unpackHalf2x16(packed_word);
    return (i & 1u) == 0u ? v.x : v.y;
}

// erf(x) for fp32, W. J. Cody's rational approximations as used by many libm ports would be
// overkill here: Abramowitz & Stegun 7.1.26 has |error| < 1.5e-7, below fp32's resolution of the
// GELU output that matters (0.5·x·erf(x/√2)), so the exact-erf GELU is reproduced to fp32 noise.
float erf_approx(float x)
{
    float s = sign(x), a = abs(x);
    float t = 1.0 / (1.0 + 0.3275911 * a);
    float y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t +
                     0.254829592) * t * exp(-a * a);
    return s * y;
}

float gelu_erf(float x)
{
    return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752));
}
