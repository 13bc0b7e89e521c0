#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# Fits the rational erf of the AVX-512 GELU (core/encoder/cpu/gemm-gelu-avx512.h):
#
#     erf(x/√2) ≈ x · P(x²) / Q(x²),  Q(0) = 1,  x in [0, X]
#
# minimising the largest absolute error (what the GELU's error bound counts: x/2 · (1 + erf)).
# Linearised least squares (x·(P − erf·Q) weighted by the last Q, Sanathanan–Koerner) with
# Lawson's reweighting towards the minimax, on Chebyshev points; x² is scaled to [0, 1] while
# fitting so the columns stay well conditioned, and scaled back at the end. Prints the exact-
# arithmetic error, then the coefficients rounded to fp32 as the header writes them.
#
#     tools/fit-gelu.py [degree of P] [degree of Q] [X]      (default 5 5 5.5)
import math
import sys

import numpy as np


def fit(deg_p, deg_q, limit, points=4000, rounds=200):
    x = np.sort((np.cos(np.pi * (np.arange(points) + 0.5) / points) + 1) / 2 * limit)
    f = np.array([math.erf(v / math.sqrt(2)) for v in x])
    scale = 1.0 / limit**2
    u = x * x * scale
    q_last = np.ones(points)
    weight = np.ones(points) / points
    best = None
    for _ in range(rounds):
        cols = [x * u**k for k in range(deg_p + 1)] + [-f * u**k for k in range(1, deg_q + 1)]
        a = np.stack(cols, axis=1)
        w = np.sqrt(weight) / q_last
        sol = np.linalg.lstsq(a * w[:, None], f * w, rcond=None)[0]
        p = sol[: deg_p + 1]
        q = np.concatenate([[1.0], sol[deg_p + 1 :]])
        pv = sum(p[k] * u**k for k in range(deg_p + 1))
        qv = sum(q[k] * u**k for k in range(deg_q + 1))
        err = x * pv / qv - f
        worst = float(np.max(np.abs(err)))
        if best is None or worst < best[0]:
            best = (worst, p.copy(), q.copy())
        q_last = qv
        weight = weight * np.abs(err)
        weight /= weight.sum()
    worst, p, q = best
    p_w = [p[k] * scale**k for k in range(deg_p + 1)]
    q_w = [q[k] * scale**k for k in range(deg_q + 1)]
    return worst, p_w, q_w


def main():
    deg_p = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    deg_q = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    limit = float(sys.argv[3]) if len(sys.argv) > 3 else 5.5
    worst, p, q = fit(deg_p, deg_q, limit)
    print(f"max |x·P/Q − erf(x/√2)| on [0, {limit}]: {worst:.3g}")
    for name, coef in (("P", p), ("Q", q)):
        print(name, ", ".join(f"{np.float32(c):.9e}f" for c in coef))


if __name__ == "__main__":
    main()
