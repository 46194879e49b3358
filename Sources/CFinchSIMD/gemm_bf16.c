#include "CFinchSIMD.h"
#include <immintrin.h>

#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// 24 fp32 accumulators (6 rows × 4 zmm of 16 columns) + 4 B vectors + 1 broadcast fit the 32 zmm registers.
// Each vdpbf16ps adds a[r][2p]·b[2p][j] + a[r][2p+1]·b[2p+1][j] to lane j: 64 flops, one per cycle on Zen 4.
// The instruction treats bf16 denormal inputs as zero and rounds its fp32 sums to nearest-even.
BF16_TARGET
void cfinch_gemm_bf16_6x64(long kpairs, const void *a, const void *b, float *c, long ldc,
                           float alpha, float beta, int rows, int cols) {
    __m512 acc[6][4];
    for (int r = 0; r < 6; r++)
        for (int j = 0; j < 4; j++) acc[r][j] = _mm512_setzero_ps();
    const int32_t *pa = (const int32_t *)a;
    const __m512i *pb = (const __m512i *)b;
    for (long p = 0; p < kpairs; p++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(pb + 0), b1 = (__m512bh)_mm512_loadu_si512(pb + 1);
        __m512bh b2 = (__m512bh)_mm512_loadu_si512(pb + 2), b3 = (__m512bh)_mm512_loadu_si512(pb + 3);
        for (int r = 0; r < 6; r++) {
            __m512bh ar = (__m512bh)_mm512_set1_epi32(pa[r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], ar, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], ar, b1);
            acc[r][2] = _mm512_dpbf16_ps(acc[r][2], ar, b2);
            acc[r][3] = _mm512_dpbf16_ps(acc[r][3], ar, b3);
        }
        pa += 6; pb += 4;
    }
    // Write-back as the fp32 kernel does it: alpha·acc, or fma(beta, C, alpha·acc).
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __mmask16 mask[4];
    for (int j = 0; j < 4; j++) {
        int left = cols - 16 * j;
        mask[j] = left >= 16 ? (__mmask16)0xFFFF : (left <= 0 ? 0 : (__mmask16)((1u << left) - 1));
    }
    for (int r = 0; r < 6 && r < rows; r++) {
        float *row = c + r * ldc;
        for (int j = 0; j < 4; j++) {
            __m512 v = _mm512_mul_ps(va, acc[r][j]);
            if (beta != 0) v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask[j], row + 16 * j), v);
            _mm512_mask_storeu_ps(row + 16 * j, mask[j], v);
        }
    }
}
