#include "CFinchSIMD.h"
#include "half.h"
#include <immintrin.h>
#include <string.h>

// Decoding's y = x · Wᵀ with W held as bf16: each weight is widened to fp32 on the fly (bf16 → fp32 is a
// 16-bit shift, exact), and x stays fp32, so the products are those of the fp32 path on the same weights.

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))

// The AVX-512 loops prefetch the weights this far ahead of the line they read (consecutive rows are adjacent, so
// this reaches into the next rows): the hardware prefetchers alone left the loads stalling on memory.
#ifndef PREFETCH_BYTES
#define PREFETCH_BYTES 4096
#endif

static float bf16_to_f32(uint16_t h) { uint32_t b = (uint32_t)h << 16; float f; memcpy(&f, &b, 4); return f; }

AVX512_TARGET
static inline __m512 widen(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }

AVX512_TARGET
static float dot_avx512(long k, const uint16_t *w, const float *x) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    long p = 0;
    for (; p + 32 <= k; p += 32) {
        _mm_prefetch((const char *)(w + p) + PREFETCH_BYTES, _MM_HINT_T0);
        a0 = _mm512_fmadd_ps(widen(_mm256_loadu_si256((const __m256i *)(w + p))), _mm512_loadu_ps(x + p), a0);
        a1 = _mm512_fmadd_ps(widen(_mm256_loadu_si256((const __m256i *)(w + p + 16))), _mm512_loadu_ps(x + p + 16), a1);
    }
    for (; p < k; p += 16) {   // a masked tail: k need not be a multiple of 16
        long left = k - p;
        __mmask16 mk = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        a0 = _mm512_fmadd_ps(widen(_mm256_maskz_loadu_epi16(mk, w + p)), _mm512_maskz_loadu_ps(mk, x + p), a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

static float dot_portable(long k, const uint16_t *w, const float *x) {
    float s = 0;
    for (long p = 0; p < k; p++) s += bf16_to_f32(w[p]) * x[p];
    return s;
}

void cfinch_gemv_bf16(long k, const uint16_t *w, long ldw, long r0, long r1, int m, const float *x, long ldx,
                      float *y, long ldy, float beta, int simd) {
    cfinch_rows16(simd && cfinch_cpu_has_avx512() ? dot_avx512 : dot_portable, k, w, ldw, r0, r1, m, x, ldx, y, ldy, beta);
}

// MARK: fp32 weights

AVX512_TARGET
static float dot_f32_avx512(long k, const float *w, const float *x) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
    long p = 0;
    for (; p + 64 <= k; p += 64) {
        const char *n = (const char *)(w + p) + PREFETCH_BYTES;
        _mm_prefetch(n, _MM_HINT_T0); _mm_prefetch(n + 64, _MM_HINT_T0);
        _mm_prefetch(n + 128, _MM_HINT_T0); _mm_prefetch(n + 192, _MM_HINT_T0);
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + p), _mm512_loadu_ps(x + p), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + p + 16), _mm512_loadu_ps(x + p + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w + p + 32), _mm512_loadu_ps(x + p + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w + p + 48), _mm512_loadu_ps(x + p + 48), a3);
    }
    for (; p < k; p += 16) {
        long left = k - p;
        __mmask16 mk = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, w + p), _mm512_maskz_loadu_ps(mk, x + p), a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

void cfinch_gemv_f32(long k, const float *w, long ldw, long r0, long r1, const float *x, float *y, float beta, int simd) {
    int fast = simd && cfinch_cpu_has_avx512();
    for (long j = r0; j < r1; j++) {
        float v;
        if (fast) v = dot_f32_avx512(k, w + j * ldw, x);
        else { v = 0; for (long p = 0; p < k; p++) v += w[j * ldw + p] * x[p]; }
        y[j] = beta == 0 ? v : v + beta * y[j];
    }
}
