// Shared by the 16-bit weight kernels: IEEE half → float in portable C (the fallback, and the q-format scales
// on CPUs without F16C), and the row loop of the one-row-at-a-time paths.
#ifndef CFINCH_HALF_H
#define CFINCH_HALF_H

#include <stdint.h>
#include <string.h>

static inline float cfinch_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (man == 0) { bits = sign; }
        else {   // subnormal: normalise
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FF) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f; memcpy(&f, &bits, 4); return f;
}

/// One dot product of k 16-bit weights (a row) with k fp32 x values.
typedef float (*cfinch_dot16)(long k, const uint16_t *w, const float *x);

/// y[i·ldy + j] = dot(W row j, x row i) (+ beta · y) for rows j in [r0, r1) and m x rows, one dot at a time.
static inline void cfinch_rows16(cfinch_dot16 dot, long k, const uint16_t *w, long ldw, long r0, long r1, int m,
                                 const float *x, long ldx, float *y, long ldy, float beta) {
    for (long j = r0; j < r1; j++) {
        for (int i = 0; i < m; i++) {
            float v = dot(k, w + j * ldw, x + i * ldx), *o = y + i * ldy + j;
            *o = beta == 0 ? v : v + beta * *o;
        }
    }
}

#endif
