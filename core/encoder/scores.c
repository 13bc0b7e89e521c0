// SPDX-License-Identifier: MIT
//
// BGE-M3's three relevance scores, as FlagEmbedding computes them (sums in double).
#include <math.h>

#include "encoder/encoder.h"

float m3_score_dense(const m3_embedding *q, const m3_embedding *p)
{
    if (!q->dense || !p->dense || q->dim != p->dim)
        return NAN;
    double s = 0;
    for (size_t i = 0; i < q->dim; i++)
        s += (double)q->dense[i] * p->dense[i];
    return (float)s;
}

// Both lists are sorted by id with each id once: a merge join.
float m3_score_sparse(const m3_embedding *q, const m3_embedding *p)
{
    if ((!q->sparse && q->n_sparse) || (!p->sparse && p->n_sparse))
        return NAN;
    double s = 0;
    size_t i = 0, j = 0;
    while (i < q->n_sparse && j < p->n_sparse) {
        if (q->sparse[i].id < p->sparse[j].id) {
            i++;
        } else if (q->sparse[i].id > p->sparse[j].id) {
            j++;
        } else {
            s += (double)q->sparse[i].weight * p->sparse[j].weight;
            i++;
            j++;
        }
    }
    return (float)s;
}

float m3_score_colbert(const m3_embedding *q, const m3_embedding *p)
{
    if (!q->colbert || !p->colbert || !q->n_colbert || !p->n_colbert || q->dim != p->dim)
        return NAN;
    size_t d = q->dim;
    double total = 0;
    for (size_t i = 0; i < q->n_colbert; i++) {
        const float *a = q->colbert + i * d;
        double best = -INFINITY;
        for (size_t j = 0; j < p->n_colbert; j++) {
            const float *b = p->colbert + j * d;
            double s = 0;
            for (size_t c = 0; c < d; c++)
                s += (double)a[c] * b[c];
            if (s > best)
                best = s;
        }
        total += best;
    }
    return (float)(total / (double)q->n_colbert);
}
