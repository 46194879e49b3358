import CFinchSIMD

/// The arithmetic of a GEMM: fp32 throughout, or bf16 operands with fp32 accumulation.
public enum GemmPrecision: Sendable {
    case fp32
    /// Both operands rounded to bf16 (nearest-even, as PyTorch's `.to(torch.bfloat16)`), products summed
    /// in fp32 by `vdpbf16ps`; C stays fp32. Twice the fp32 arithmetic rate on AVX512-BF16 CPUs.
    case bf16
}

extension Gemm {
    /// Whether this CPU runs the bf16 kernel (AVX512-BF16, with the OS saving zmm state).
    public static let bf16Available: Bool = cfinch_cpu_has_avx512bf16() != 0

    /// Deepest bf16 k block: a packed k-pair word holds two k steps in the bytes of one fp32 value, so twice
    /// the fp32 `KC` keeps the same cache footprint (A sliver 6 KiB, B sliver 64 KiB, B block 512 KiB).
    static let KCBF16 = 512

    /// `C = alpha · op(A) · op(B) + beta · C` with the arguments and layouts of `sgemm`, fp32 in and out.
    ///
    /// `.fp32` is `sgemm` itself (the same bits). `.bf16` rounds op(A) and op(B) to bf16 while packing and
    /// accumulates in fp32; it runs the fp32 path instead when `bf16Available` is false, and for single-row or
    /// single-column products (m == 1 or n == 1), whose matrix–vector path is bound by reading memory, not
    /// by arithmetic. The bf16 kernel treats bf16 denormals (|x| < 2⁻¹²⁶) as zero.
    public static func gemm(precision: GemmPrecision, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                            alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0,
                            c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard precision == .bf16, bf16Available, m > 1, n > 1, k > 0, alpha != 0 else {
            sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                  b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        blocked(bf16: true, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    /// The bf16 k block for depth `k`: k cut into equal even blocks of at most `KCBF16` (k = 768 gives two
    /// blocks of 384, not 512 + 256), so that every block keeps the kernel busy equally long.
    static func kcBF16(_ k: Int) -> Int {
        let blocks = (k + KCBF16 - 1) / KCBF16
        let kc = (k + blocks - 1) / blocks
        return kc + (kc & 1)
    }

    /// One thread's share of a bf16 k block: B slivers `nSlivers` × A slivers `mSlivers` (as `computeBlock`;
    /// the C kernel clips edge tiles itself).
    static func computeBlockBF16(transB: Bool, m: Int, n: Int, kc: Int, p0: Int, alpha: Float,
                                 aPacked: UnsafeMutablePointer<UInt32>, b: UnsafePointer<Float>, ldb: Int,
                                 beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
                                 nSlivers: Range<Int>, mSlivers: Range<Int>) {
        guard !nSlivers.isEmpty, !mSlivers.isEmpty else { return }
        let pairs = (kc + 1) / 2
        let bBuf = GemmScratch.current(1).words(NC / NR * NR * pairs)
        forEachTile(nSlivers: nSlivers, mSlivers: mSlivers, pack: { t, slot in
            packBSliverBF16(transB: transB, b: b, ldb: ldb, j0: t * NR, cols: min(NR, n - t * NR),
                            p0: p0, kc: kc, dst: bBuf + slot * NR * pairs)
        }, tile: { s, t, slot in
            cfinch_gemm_bf16_6x64(pairs, aPacked + s * MR * pairs, bBuf + slot * NR * pairs,
                                  c + s * MR * ldc + t * NR, ldc, alpha, beta,
                                  Int32(min(MR, m - s * MR)), Int32(min(NR, n - t * NR)))
        })
    }
}
