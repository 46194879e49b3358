#include "CFinchSIMD.h"
#include "half.h"
#include <immintrin.h>

// Decoding's y = x · Wᵀ with W held as IEEE half (an f16 file's weights): each weight is widened to fp32 in
// registers (vcvtph2ps, exact), x stays fp32, so the products are those of the fp32 path on the same weights and
// only the order of the sums differs. Three paths: AVX-512 (16 lanes, four weight rows share each x load),
// AVX2 + F16C (8 lanes), portable C.

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define F16C_TARGET __attribute__((target("avx2,fma,f16c")))

static int level(int simd) {
    if (simd >= 2 && cfinch_cpu_has_avx512()) return 2;
    if (simd >= 1 && cfinch_cpu_has_f16c()) return 1;
    return 0;
}

// MARK: AVX-512

AVX512_TARGET static inline __m512 widen16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }

AVX512_TARGET static inline __m256 fold16(__m512 v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

// The lane sums of four accumulators as one vector (a, b, c, d).
AVX512_TARGET static inline __m128 hsum4x16(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m256 ab = _mm256_hadd_ps(fold16(a), fold16(b)), cd = _mm256_hadd_ps(fold16(c), fold16(d)), abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// Four consecutive weight rows (ldw apart) · x: x is loaded once per 16 columns for all four. With `prefetch`,
// the next four rows are prefetched one cache line (32 halves) per row per step, as in gemv_i8.c's row groups.
AVX512_TARGET static __m128 dot4_avx512(long k, const uint16_t *w, long ldw, const float *x, int prefetch) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const uint16_t *w1 = w + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
    long p = 0;
    for (; p + 16 <= k; p += 16) {
        if (prefetch && p % 32 == 0) {
            const char *n = (const char *)(w + 4 * ldw + p);
            _mm_prefetch(n, _MM_HINT_T0); _mm_prefetch(n + 2 * ldw, _MM_HINT_T0);
            _mm_prefetch(n + 4 * ldw, _MM_HINT_T0); _mm_prefetch(n + 6 * ldw, _MM_HINT_T0);
        }
        __m512 xv = _mm512_loadu_ps(x + p);
        a0 = _mm512_fmadd_ps(widen16(w + p), xv, a0);
        a1 = _mm512_fmadd_ps(widen16(w1 + p), xv, a1);
        a2 = _mm512_fmadd_ps(widen16(w2 + p), xv, a2);
        a3 = _mm512_fmadd_ps(widen16(w3 + p), xv, a3);
    }
    if (p < k) {   // a masked tail: k need not be a multiple of 16
        __mmask16 mk = (__mmask16)((1u << (k - p)) - 1);
        __m512 xv = _mm512_maskz_loadu_ps(mk, x + p);
        a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, w + p)), xv, a0);
        a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, w1 + p)), xv, a1);
        a2 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, w2 + p)), xv, a2);
        a3 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, w3 + p)), xv, a3);
    }
    return hsum4x16(a0, a1, a2, a3);
}

AVX512_TARGET static float dot_avx512(long k, const uint16_t *w, const float *x) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    long p = 0;
    for (; p + 32 <= k; p += 32) {
        a0 = _mm512_fmadd_ps(widen16(w + p), _mm512_loadu_ps(x + p), a0);
        a1 = _mm512_fmadd_ps(widen16(w + p + 16), _mm512_loadu_ps(x + p + 16), a1);
    }
    for (; p < k; p += 16) {
        long left = k - p;
        __mmask16 mk = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, w + p)), _mm512_maskz_loadu_ps(mk, x + p), a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

AVX512_TARGET
static void rows_avx512(long k, const uint16_t *w, long ldw, long r0, long r1, int m, const float *x, long ldx,
                        float *y, long ldy, float beta) {
    long j = r0;
    for (; j + 4 <= r1; j += 4) {   // the four rows stay in L1 across the m x rows
        for (int i = 0; i < m; i++) {
            __m128 v = dot4_avx512(k, w + j * ldw, ldw, x + i * ldx, i == 0);
            float *o = y + i * ldy + j;
            if (beta != 0) v = _mm_fmadd_ps(_mm_set1_ps(beta), _mm_loadu_ps(o), v);
            _mm_storeu_ps(o, v);
        }
    }
    cfinch_rows16(dot_avx512, k, w, ldw, j, r1, m, x, ldx, y, ldy, beta);
}

// MARK: AVX2 + F16C

F16C_TARGET static inline __m256 widen8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

F16C_TARGET static float dot_f16c(long k, const uint16_t *w, const float *x) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    long p = 0;
    for (; p + 32 <= k; p += 32) {
        a0 = _mm256_fmadd_ps(widen8(w + p), _mm256_loadu_ps(x + p), a0);
        a1 = _mm256_fmadd_ps(widen8(w + p + 8), _mm256_loadu_ps(x + p + 8), a1);
        a2 = _mm256_fmadd_ps(widen8(w + p + 16), _mm256_loadu_ps(x + p + 16), a2);
        a3 = _mm256_fmadd_ps(widen8(w + p + 24), _mm256_loadu_ps(x + p + 24), a3);
    }
    for (; p + 8 <= k; p += 8) a0 = _mm256_fmadd_ps(widen8(w + p), _mm256_loadu_ps(x + p), a0);
    __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    float v = _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
    for (; p < k; p++) v += _cvtsh_ss(w[p]) * x[p];
    return v;
}

// MARK: entry points

static float dot_portable(long k, const uint16_t *w, const float *x) {
    float s = 0;
    for (long p = 0; p < k; p++) s += cfinch_half_to_float(w[p]) * x[p];
    return s;
}

void cfinch_gemv_f16(long k, const uint16_t *w, long ldw, long r0, long r1, int m, const float *x, long ldx,
                     float *y, long ldy, float beta, int simd) {
    int l = level(simd);
    if (l == 2) rows_avx512(k, w, ldw, r0, r1, m, x, ldx, y, ldy, beta);
    else cfinch_rows16(l == 1 ? dot_f16c : dot_portable, k, w, ldw, r0, r1, m, x, ldx, y, ldy, beta);
}

F16C_TARGET static void widen_f16c(const uint16_t *src, long n, float *dst) {
    long i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, widen8(src + i));
    for (; i < n; i++) dst[i] = _cvtsh_ss(src[i]);
}

void cfinch_f16_to_f32(const uint16_t *src, long n, float *dst, int simd) {
    if (level(simd) >= 1) { widen_f16c(src, n, dst); return; }
    for (long i = 0; i < n; i++) dst[i] = cfinch_half_to_float(src[i]);
}
