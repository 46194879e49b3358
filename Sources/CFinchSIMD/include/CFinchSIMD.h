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

#endif
