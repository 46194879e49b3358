// Small C kernels that need instructions Swift cannot name (AVX512-BF16). Each function carries its own
// target attribute, so the rest of the binary stays portable; call them only when
// cfinch_cpu_has_avx512bf16() returned 1.
#ifndef CFINCH_SIMD_H
#define CFINCH_SIMD_H

#include <stdint.h>

/// 1 when the CPU executes AVX512-F/BW/VL/BF16 and the OS saves the zmm state, else 0.
int cfinch_cpu_has_avx512bf16(void);

/// C[rows×cols] (= or +=, see beta) alpha · A·B over `kpairs` k-pairs of packed bf16 panels:
/// `a` is [kpairs][6][2] bf16 (an MR=6 sliver), `b` is [kpairs][64][2] bf16 (an NR=64 sliver), both
/// zero-padded. beta == 0 overwrites C without reading it; rows ≤ 6 and cols ≤ 64 clip the write-back.
void cfinch_gemm_bf16_6x64(long kpairs, const void *_Nonnull a, const void *_Nonnull b,
                           float *_Nonnull c, long ldc, float alpha, float beta, int rows, int cols);

/// 1 when the CPU executes AVX512-F/BW/VL + VNNI (and AVX2, FMA, F16C) and the OS saves the zmm state, else 0.
int cfinch_cpu_has_avx512vnni(void);

/// Weight formats of `cfinch_gemv_i8` (ggml's block layouts).
enum { CFINCH_Q8_0 = 0, CFINCH_Q4_0 = 1, CFINCH_Q5_0 = 2, CFINCH_Q4_K = 3, CFINCH_Q6_K = 4 };

/// Quantises `k` floats (k a multiple of 32) as llama.cpp's q8_0 rows: per 32-element block, scale
/// d = amax / 127, q = round-to-nearest-even(x / d) in `q[k]`, d in `d[k/32]`, Σq in `s[k/32]`.
/// `simd` 0 forces the portable path (tests); else AVX-512 when the CPU has VNNI.
void cfinch_quantize_q8_32(const float *_Nonnull x, long k, int8_t *_Nonnull q, float *_Nonnull d,
                           int32_t *_Nonnull s, int simd);

/// y[i·ldy + j] = dot(W row j, x row i) (+ beta · y) for rows j in [r0, r1) of `w` (rows `rowBytes` apart,
/// `format` blocks over `k` columns) and the `m` int8 x rows of `cfinch_quantize_q8_32` (row i at
/// xq + i·k, xd + i·k/32, xs + i·k/32). beta == 0 overwrites y. `simd` as above.
void cfinch_gemv_i8(int format, long k, const void *_Nonnull w, long rowBytes, long r0, long r1, int m,
                    const int8_t *_Nonnull xq, const float *_Nonnull xd, const int32_t *_Nonnull xs,
                    float *_Nonnull y, long ldy, float beta, int simd);

/// 1 when the CPU executes AVX512-F/BW/VL (and AVX2, FMA) and the OS saves the zmm state, else 0.
int cfinch_cpu_has_avx512(void);

/// y[i·ldy + j] = Σ_p x[i·ldx + p] · fp32(w[j·ldw + p]) (+ beta · y) for rows j in [r0, r1) of a bf16 matrix
/// and m fp32 x rows of k elements. beta == 0 overwrites y. `simd` 0 forces the portable path (tests).
void cfinch_gemv_bf16(long k, const uint16_t *_Nonnull w, long ldw, long r0, long r1, int m,
                      const float *_Nonnull x, long ldx, float *_Nonnull y, long ldy, float beta, int simd);

/// y[j] = Σ_p x[p] · w[j·ldw + p] (+ beta · y[j]) for rows j in [r0, r1): one x row against fp32 weights read
/// front to back, one row at a time (a single stream for the prefetcher). `simd` 0 forces the portable path.
void cfinch_gemv_f32(long k, const float *_Nonnull w, long ldw, long r0, long r1, const float *_Nonnull x,
                     float *_Nonnull y, float beta, int simd);

/// 1 when the CPU executes AVX2, FMA and F16C and the OS saves the ymm state, else 0.
int cfinch_cpu_has_f16c(void);

/// y[i·ldy + j] = Σ_p x[i·ldx + p] · fp32(w[j·ldw + p]) (+ beta · y) for rows j in [r0, r1) of an IEEE-half
/// matrix and m fp32 x rows of k elements. beta == 0 overwrites y. `simd`: 0 the portable path, 1 at most
/// AVX2 + F16C, 2 the best the CPU has (AVX-512) — tests compare them.
void cfinch_gemv_f16(long k, const uint16_t *_Nonnull w, long ldw, long r0, long r1, int m,
                     const float *_Nonnull x, long ldx, float *_Nonnull y, long ldy, float beta, int simd);

/// dst[i] = fp32(src[i]) for i < n (exact). `simd` as for `cfinch_gemv_f16`.
void cfinch_f16_to_f32(const uint16_t *_Nonnull src, long n, float *_Nonnull dst, int simd);

#endif
