#include "CFinchSIMD.h"
#include "half.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

// Decoding's weight × activation products with the activation quantised to int8 (as llama.cpp's q8_0 rows):
// each weight block meets a 32-element int8 block of x in integer dot products, and one float multiply per
// block applies both scales. The VNNI path and the portable path compute the same integers; only the order of
// the float sums differs.

#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

static uint16_t load_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

// ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j of a Q4_K block.
static void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) { *sc = q[j] & 63; *m = q[j + 4] & 63; }
    else { *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}

// MARK: activation quantisation

static void quantize_portable(const float *x, long k, int8_t *q, float *d, int32_t *s) {
    for (long b = 0; b < k / 32; b++) {
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[32 * b + i]));
        float db = amax / 127, id = db != 0 ? 1 / db : 0;
        int32_t sum = 0;
        for (int i = 0; i < 32; i++) {
            int v = (int)nearbyintf(x[32 * b + i] * id);
            q[32 * b + i] = (int8_t)v; sum += v;
        }
        d[b] = db; s[b] = sum;
    }
}

VNNI_TARGET
static void quantize_vnni(const float *x, long k, int8_t *q, float *d, int32_t *s) {
    for (long b = 0; b < k / 32; b++) {
        __m512 x0 = _mm512_loadu_ps(x + 32 * b), x1 = _mm512_loadu_ps(x + 32 * b + 16);
        __m512 a = _mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1));
        float amax = _mm512_reduce_max_ps(a);
        float db = amax / 127, id = db != 0 ? 1 / db : 0;
        __m512 vid = _mm512_set1_ps(id);
        // Round to nearest even, as nearbyintf does in the portable path.
        __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, vid)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, vid));
        _mm_storeu_si128((__m128i *)(q + 32 * b), _mm512_cvtsepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(q + 32 * b + 16), _mm512_cvtsepi32_epi8(i1));
        d[b] = db; s[b] = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
    }
}

// MARK: portable dot products (one weight row · one quantised x row)

static float dot_portable(int format, long k, const uint8_t *w, const int8_t *xq, const float *xd, const int32_t *xs) {
    float sum = 0;
    switch (format) {
    case CFINCH_Q8_0:
        for (long b = 0; b < k / 32; b++, w += 34) {
            int32_t p = 0;
            for (int i = 0; i < 32; i++) p += (int8_t)w[2 + i] * xq[32 * b + i];
            sum += cfinch_half_to_float(load_u16(w)) * xd[b] * (float)p;
        }
        break;
    case CFINCH_Q4_0:
        for (long b = 0; b < k / 32; b++, w += 18) {
            int32_t p = 0;
            for (int i = 0; i < 16; i++) p += (w[2 + i] & 0xF) * xq[32 * b + i] + (w[2 + i] >> 4) * xq[32 * b + 16 + i];
            sum += cfinch_half_to_float(load_u16(w)) * xd[b] * (float)(p - 8 * xs[b]);
        }
        break;
    case CFINCH_Q5_0:
        for (long b = 0; b < k / 32; b++, w += 22) {
            uint32_t qh; memcpy(&qh, w + 2, 4);
            int32_t p = 0;
            for (int i = 0; i < 16; i++) {
                int lo = (w[6 + i] & 0xF) | (((qh >> i) & 1) << 4), hi = (w[6 + i] >> 4) | (((qh >> (i + 16)) & 1) << 4);
                p += lo * xq[32 * b + i] + hi * xq[32 * b + 16 + i];
            }
            sum += cfinch_half_to_float(load_u16(w)) * xd[b] * (float)(p - 16 * xs[b]);
        }
        break;
    case CFINCH_Q4_K:
        for (long sb = 0; sb < k / 256; sb++, w += 144) {
            float dd = cfinch_half_to_float(load_u16(w)), dmin = cfinch_half_to_float(load_u16(w + 2));
            const uint8_t *qs = w + 16;
            for (int j = 0; j < 8; j++) {
                int sc, mn; scale_min_k4(j, w + 4, &sc, &mn);
                long b = sb * 8 + j;
                const uint8_t *qq = qs + 32 * (j / 2);
                int32_t p = 0;
                for (int i = 0; i < 32; i++) p += (j % 2 ? qq[i] >> 4 : qq[i] & 0xF) * xq[32 * b + i];
                sum += xd[b] * (dd * (float)sc * (float)p - dmin * (float)mn * (float)xs[b]);
            }
        }
        break;
    case CFINCH_Q6_K:
        for (long sb = 0; sb < k / 256; sb++, w += 210) {
            float dd = cfinch_half_to_float(load_u16(w + 208));
            for (int j = 0; j < 8; j++) {   // x block b = 32 weights: half n, quarter g of ggml's q6_K layout
                int n = j / 4, g = j % 4;
                long b = sb * 8 + j;
                for (int h = 0; h < 2; h++) {   // two sub-blocks of 16, a scale each
                    int32_t p = 0;
                    for (int i = 16 * h; i < 16 * h + 16; i++) {
                        int lo = w[64 * n + 32 * (g & 1) + i], hi = (w[128 + 32 * n + i] >> (2 * g)) & 3;
                        p += (((g < 2 ? lo & 0xF : lo >> 4) | (hi << 4)) - 32) * xq[32 * b + i];
                    }
                    sum += xd[b] * dd * (float)(int8_t)w[192 + 8 * n + 2 * g + h] * (float)p;
                }
            }
        }
        break;
    }
    return sum;
}

// MARK: VNNI dot products

VNNI_TARGET static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// 16 packed bytes → 32 unsigned nibbles: low nibbles in bytes 0..15, high nibbles in 16..31 (ggml's order).
VNNI_TARGET static inline __m256i nibbles(const uint8_t *p) {
    __m128i v = _mm_loadu_si128((const __m128i *)p), m = _mm_set1_epi8(0xF);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
}

// A dpbusd accumulator whose lanes sum to c (the offset correction of a block, folded into the integer sum).
VNNI_TARGET static inline __m256i lane0(int32_t c) { return _mm256_zextsi128_si256(_mm_cvtsi32_si128(c)); }

// One 32-element block (a sub-block pair's half for Q4_K) of weight row `w` against x block b, added to acc.
// Each returns acc + (w·x terms in 8 lanes); offsets of unsigned formats are folded into the integer sums.

// q8_0: dpbusd takes one unsigned operand, so w is offset to w + 128 (w ^ 0x80) and the offset taken back
// through Σx (one xor per block, where the |w|, sign(x, w) trick takes two vpsignb).
VNNI_TARGET static inline __m256 blk_q8_0(const uint8_t *w, long b, const int8_t *xq, const float *xd, const int32_t *xs, __m256 acc) {
    const uint8_t *p = w + 34 * b;
    __m256i wv = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 2)), _mm256_set1_epi8((char)0x80));
    __m256i d = _mm256_dpbusd_epi32(lane0(-128 * xs[b]), wv, _mm256_loadu_si256((const __m256i *)(xq + 32 * b)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(_cvtsh_ss(load_u16(p)) * xd[b]), acc);
}

VNNI_TARGET static inline __m256 blk_q4_0(const uint8_t *w, long b, const int8_t *xq, const float *xd, const int32_t *xs, __m256 acc) {
    const uint8_t *p = w + 18 * b;
    __m256i d = _mm256_dpbusd_epi32(lane0(-8 * xs[b]), nibbles(p + 2), _mm256_loadu_si256((const __m256i *)(xq + 32 * b)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(_cvtsh_ss(load_u16(p)) * xd[b]), acc);
}

VNNI_TARGET static inline __m256 blk_q5_0(const uint8_t *w, long b, const int8_t *xq, const float *xd, const int32_t *xs, __m256 acc) {
    const uint8_t *p = w + 22 * b;
    uint32_t qh; memcpy(&qh, p + 2, 4);
    __m256i n = nibbles(p + 6);
    __m256i u = _mm256_mask_add_epi8(n, (__mmask32)qh, n, _mm256_set1_epi8(0x10));   // bit i of qh → element i's 5th bit
    __m256i d = _mm256_dpbusd_epi32(lane0(-16 * xs[b]), u, _mm256_loadu_si256((const __m256i *)(xq + 32 * b)));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(_cvtsh_ss(load_u16(p)) * xd[b]), acc);
}

// Q4_K: b is a pair index (sub-blocks 2b' and 2b'+1 of super-block b / 4 share one 32-byte run of nibbles).
VNNI_TARGET static inline __m256 blk_q4_k(const uint8_t *w, long b, const int8_t *xq, const float *xd, const int32_t *xs, __m256 acc) {
    const uint8_t *p = w + 144 * (b / 4);
    int j = (int)(b % 4) * 2, sc0, m0, sc1, m1;
    scale_min_k4(j, p + 4, &sc0, &m0); scale_min_k4(j + 1, p + 4, &sc1, &m1);
    float dd = _cvtsh_ss(load_u16(p)), dmin = _cvtsh_ss(load_u16(p + 2));
    long xb = 2 * b;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    __m256i q = _mm256_loadu_si256((const __m256i *)(p + 16 + 16 * j));
    __m256i p0 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_and_si256(q, m4), _mm256_loadu_si256((const __m256i *)(xq + 32 * xb)));
    __m256i p1 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                     _mm256_loadu_si256((const __m256i *)(xq + 32 * xb + 32)));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(dd * (float)sc0 * xd[xb]), acc);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(dd * (float)sc1 * xd[xb + 1]), acc);
    float off = dmin * ((float)m0 * xd[xb] * (float)xs[xb] + (float)m1 * xd[xb + 1] * (float)xs[xb + 1]);
    return _mm256_sub_ps(acc, _mm256_zextps128_ps256(_mm_set_ss(off)));
}

// Q6_K: b is a 32-element x block; block j of a super-block takes the low (quarters 0, 1) or high (2, 3) nibbles
// of 32 ql bytes, 2 bits of 32 qh bytes, and two scales (lanes 0–3 and 4–7 of dpbusd are its two 16-element
// sub-blocks). The −32 offset is taken back per lane through dpbusd(32, x).
VNNI_TARGET static inline __m256 blk_q6_k(const uint8_t *w, long b, const int8_t *xq, const float *xd, const int32_t *xs, __m256 acc) {
    (void)xs;
    const uint8_t *p = w + 210 * (b / 8);
    int j = (int)(b % 8), n = j / 4, g = j % 4;
    const int8_t *sc = (const int8_t *)(p + 192) + 8 * n + 2 * g;
    const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3);
    __m256i lo = _mm256_loadu_si256((const __m256i *)(p + 64 * n + 32 * (g & 1)));
    if (g >= 2) lo = _mm256_srli_epi16(lo, 4);
    __m256i hi = _mm256_and_si256(_mm256_srl_epi16(_mm256_loadu_si256((const __m256i *)(p + 128 + 32 * n)), _mm_cvtsi32_si128(2 * g)), m2);
    __m256i q = _mm256_or_si256(_mm256_and_si256(lo, m4), _mm256_slli_epi16(hi, 4));
    __m256i xv = _mm256_loadu_si256((const __m256i *)(xq + 32 * b));
    __m256i dot = _mm256_sub_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), q, xv),
                                   _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(32), xv));
    float s = _cvtsh_ss(load_u16(p + 208)) * xd[b];
    __m256 scale = _mm256_set_m128(_mm_set1_ps(s * (float)sc[1]), _mm_set1_ps(s * (float)sc[0]));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc);
}

// The lane sums of four accumulators as one vector (a, b, c, d).
VNNI_TARGET static inline __m128 hsum4x8(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 ab = _mm256_hadd_ps(a, b), cd = _mm256_hadd_ps(c, d), abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// Rows [r0, r1) × m x rows: four weight rows at a time meet each x block (x loaded once, one reduction for four
// outputs); the weight rows stay in L1 across the m x rows. `units` blocks per row (Q4_K: 32-byte pairs), UNIT
// bytes each on average. While one group of four rows is read, the next group is prefetched unit by unit: the
// hardware prefetchers alone left the loads stalling on memory (perf: most samples on the first use of each
// row's load), and this made SmolLM2 q8_0 decoding 1.5x faster on one thread (139 → 220 tok/s).
#define ROWS_KERNEL(NAME, BLK, UNIT)                                                                                  \
VNNI_TARGET static void NAME(long units, long k, const uint8_t *w, long rowBytes, long r0, long r1, int m,             \
                             const int8_t *xq, const float *xd, const int32_t *xs, float *y, long ldy, float beta) {  \
    long nb = k / 32, j = r0;                                                                                          \
    for (; j + 4 <= r1; j += 4) {                                                                                      \
        const uint8_t *w0 = w + j * rowBytes, *w1 = w0 + rowBytes, *w2 = w1 + rowBytes, *w3 = w2 + rowBytes;         \
        for (int i = 0; i < m; i++) {                                                                                  \
            const int8_t *q = xq + i * k; const float *d = xd + i * nb; const int32_t *s = xs + i * nb;               \
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                                \
            for (long b = 0; b < units; b++) {                                                                         \
                if (i == 0) { /* the next four rows, as far along as this unit: see the note above */                \
                    const char *n0 = (const char *)w0 + 4 * rowBytes + UNIT * b;                                       \
                    _mm_prefetch(n0, _MM_HINT_T0); _mm_prefetch(n0 + rowBytes, _MM_HINT_T0);                           \
                    _mm_prefetch(n0 + 2 * rowBytes, _MM_HINT_T0); _mm_prefetch(n0 + 3 * rowBytes, _MM_HINT_T0);        \
                }                                                                                                      \
                a0 = BLK(w0, b, q, d, s, a0); a1 = BLK(w1, b, q, d, s, a1);                                            \
                a2 = BLK(w2, b, q, d, s, a2); a3 = BLK(w3, b, q, d, s, a3);                                            \
            }                                                                                                          \
            __m128 v = hsum4x8(a0, a1, a2, a3);                                                                        \
            float *o = y + i * ldy + j;                                                                                \
            if (beta != 0) v = _mm_fmadd_ps(_mm_set1_ps(beta), _mm_loadu_ps(o), v);                                    \
            _mm_storeu_ps(o, v);                                                                                       \
        }                                                                                                              \
    }                                                                                                                  \
    for (; j < r1; j++) {                                                                                              \
        const uint8_t *w0 = w + j * rowBytes;                                                                          \
        for (int i = 0; i < m; i++) {                                                                                  \
            const int8_t *q = xq + i * k; const float *d = xd + i * nb; const int32_t *s = xs + i * nb;               \
            __m256 a0 = _mm256_setzero_ps();                                                                           \
            for (long b = 0; b < units; b++) a0 = BLK(w0, b, q, d, s, a0);                                             \
            float v = hsum8(a0), *o = y + i * ldy + j;                                                                 \
            *o = beta == 0 ? v : v + beta * *o;                                                                        \
        }                                                                                                              \
    }                                                                                                                  \
}

ROWS_KERNEL(rows_q8_0, blk_q8_0, 34)
ROWS_KERNEL(rows_q4_0, blk_q4_0, 18)
ROWS_KERNEL(rows_q5_0, blk_q5_0, 22)
ROWS_KERNEL(rows_q4_k, blk_q4_k, 36)
ROWS_KERNEL(rows_q6_k, blk_q6_k, 27)

VNNI_TARGET
static void rows_vnni(int format, long k, const uint8_t *w, long rowBytes, long r0, long r1, int m,
                      const int8_t *xq, const float *xd, const int32_t *xs, float *y, long ldy, float beta) {
    switch (format) {
    case CFINCH_Q8_0: rows_q8_0(k / 32, k, w, rowBytes, r0, r1, m, xq, xd, xs, y, ldy, beta); break;
    case CFINCH_Q4_0: rows_q4_0(k / 32, k, w, rowBytes, r0, r1, m, xq, xd, xs, y, ldy, beta); break;
    case CFINCH_Q5_0: rows_q5_0(k / 32, k, w, rowBytes, r0, r1, m, xq, xd, xs, y, ldy, beta); break;
    case CFINCH_Q4_K: rows_q4_k(k / 64, k, w, rowBytes, r0, r1, m, xq, xd, xs, y, ldy, beta); break;
    default: rows_q6_k(k / 32, k, w, rowBytes, r0, r1, m, xq, xd, xs, y, ldy, beta); break;
    }
}

// MARK: entry points

void cfinch_quantize_q8_32(const float *x, long k, int8_t *q, float *d, int32_t *s, int simd) {
    if (simd && cfinch_cpu_has_avx512vnni()) quantize_vnni(x, k, q, d, s);
    else quantize_portable(x, k, q, d, s);
}

void cfinch_gemv_i8(int format, long k, const void *w, long rowBytes, long r0, long r1, int m,
                    const int8_t *xq, const float *xd, const int32_t *xs, float *y, long ldy, float beta, int simd) {
    if (simd && cfinch_cpu_has_avx512vnni()) {
        rows_vnni(format, k, (const uint8_t *)w, rowBytes, r0, r1, m, xq, xd, xs, y, ldy, beta);
        return;
    }
    long nb = k / 32;
    for (long j = r0; j < r1; j++) {
        const uint8_t *row = (const uint8_t *)w + j * rowBytes;
        for (int i = 0; i < m; i++) {
            float v = dot_portable(format, k, row, xq + i * k, xd + i * nb, xs + i * nb);
            float *o = y + i * ldy + j;
            *o = beta == 0 ? v : v + beta * *o;
        }
    }
}
