/// Single-precision GEMM on row-major buffers.
///
/// `C[m×n] = alpha · op(A) · op(B) + beta · C` where `op(A)` is `m×k` (A stored `[m,k]`, or `[k,m]`
/// when `transA`), and `op(B)` is `k×n` (B stored `[k,n]`, or `[n,k]` when `transB`).
/// `lda`/`ldb`/`ldc` are row strides in elements. beta == 0 overwrites C (NaNs in C are ignored).
///
/// Implementation (BLIS-style, with the roles arranged for row-major C and vectors along n):
/// k is cut into blocks of `KC`; for each block op(A) is packed into `MR`-row slivers (shared by the
/// threads), and each thread packs its own `KC × NC` block of op(B) (kept in its core's L2) and sweeps
/// all A slivers (each stays in L1 while it meets `NC / NR` B slivers) through the `MR × NR`
/// register-tiled micro-kernel. Threads split the n slivers (or the m slivers when n is narrow).
/// Single-row or single-column products take a bandwidth-bound matrix–vector path instead.
///
/// bf16 (`gemm(precision: .bf16, …)`, GemmBF16.swift): the same loop nest, but the packers round both
/// operands to bf16 (nearest-even) into k-pair panels and a C micro-kernel (CFinchSIMD) accumulates in
/// fp32 with `vdpbf16ps`; k blocks are twice as deep (`KCBF16`) for the same bytes.
public enum Gemm {
    /// Micro-tile: MR rows × NR columns of C held in 24 zmm accumulators.
    static let MR = 6, NR = 64
    /// k block: an A sliver (MR × KC) is 6 KiB, a B sliver (KC × NR) 64 KiB.
    static let KC = 256
    /// n block per thread: the packed B block (KC × NC) is 512 KiB, half of a core's L2.
    static let NC = 512

    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                             alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0,
                             c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        if k == 0 || alpha == 0 { scale(m: m, n: n, beta: beta, c: c, ldc: ldc); return }
        if m == 1 {
            // One row of C: x = op(A)(0, :).
            let x = contiguous(a, count: k, stride: transA ? lda : 1)
            gemv(transB: transB, n: n, k: k, alpha: alpha, x: x, b: b, ldb: ldb, beta: beta, y: c, incy: 1)
            return
        }
        if n == 1 {
            // One column: Cᵀ = op(B)ᵀ · op(A)ᵀ, with x = op(B)(:, 0) and the rows of op(A) as the matrix.
            let x = contiguous(b, count: k, stride: transB ? 1 : ldb)
            gemv(transB: !transA, n: m, k: k, alpha: alpha, x: x, b: a, ldb: lda, beta: beta, y: c, incy: ldc)
            return
        }
        blocked(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }

    /// C = beta · C (beta == 0 writes zeros).
    static func scale(m: Int, n: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        for i in 0..<m {
            let row = c + i * ldc
            if beta == 0 { row.update(repeating: 0, count: n) } else { for j in 0..<n { row[j] *= beta } }
        }
    }

    /// `count` values at `stride`, as a contiguous pointer (copied to scratch when strided).
    private static func contiguous(_ p: UnsafePointer<Float>, count: Int, stride: Int) -> UnsafePointer<Float> {
        if stride == 1 { return p }
        let buf = GemmScratch.current(0).floats(count)
        for i in 0..<count { buf[i] = p[i * stride] }
        return UnsafePointer(buf)
    }

    /// The blocked loop nest; `bf16` packs bf16 k-pair panels and runs the `vdpbf16ps` kernel (the caller
    /// has checked `bf16Available`), otherwise fp32 panels and `microKernel6x64`.
    static func blocked(bf16: Bool = false, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let mSlivers = (m + MR - 1) / MR, nSlivers = (n + NR - 1) / NR
        let pool = ThreadPool.shared
        // Small products are not worth waking the other core for.
        let parallel = m * n * k >= 96 * 96 * 96 && pool.threads > 1
        let kcMax = bf16 ? kcBF16(k) : KC
        let scratch = GemmScratch.current(0)
        let aBuf = bf16 ? nil : scratch.floats(mSlivers * MR * KC)
        let aWords = bf16 ? scratch.words(mSlivers * MR * ((kcMax + 1) / 2)) : nil
        var p0 = 0
        while p0 < k {
            let kc = min(kcMax, k - p0)
            let blockBeta: Float = p0 == 0 ? beta : 1
            let packA: (Int, Range<Int>) -> Void = { _, r in
                if let aWords {
                    packASliversBF16(transA: transA, a: a, lda: lda, m: m, slivers: r, p0: p0, kc: kc, dst: aWords)
                    return
                }
                for s in r {
                    packASliver(transA: transA, a: a, lda: lda, i0: s * MR, rows: min(MR, m - s * MR),
                                p0: p0, kc: kc, dst: aBuf! + s * MR * kc)
                }
            }
            if parallel { pool.parallelFor(mSlivers, minChunk: 4, packA) } else { packA(0, 0..<mSlivers) }

            let run = { (ns: Range<Int>, ms: Range<Int>) in
                if let aWords {
                    computeBlockBF16(transB: transB, m: m, n: n, kc: kc, p0: p0, alpha: alpha, aPacked: aWords,
                                     b: b, ldb: ldb, beta: blockBeta, c: c, ldc: ldc, nSlivers: ns, mSlivers: ms)
                } else {
                    computeBlock(transB: transB, m: m, n: n, kc: kc, p0: p0, alpha: alpha, aPacked: aBuf!,
                                 b: b, ldb: ldb, beta: blockBeta, c: c, ldc: ldc, nSlivers: ns, mSlivers: ms)
                }
            }
            if !parallel {
                run(0..<nSlivers, 0..<mSlivers)
            } else if nSlivers >= 2 * pool.threads {
                pool.parallelFor(nSlivers) { _, r in run(r, 0..<mSlivers) }
            } else {
                pool.parallelFor(mSlivers) { _, r in run(0..<nSlivers, r) }
            }
            p0 += kc
        }
    }

    /// Visits one thread's share of a k block in cache order: for each run of up to `NC / NR` B slivers,
    /// `pack(t, slot)` packs B sliver `t` into block slot `slot`, then `tile(s, t, slot)` runs A sliver `s`
    /// against each of them (the A sliver stays in L1, the packed B block in L2).
    @inline(__always)
    static func forEachTile(nSlivers: Range<Int>, mSlivers: Range<Int>, pack: (Int, Int) -> Void,
                            tile: (Int, Int, Int) -> Void) {
        let perBlock = NC / NR
        for jc in stride(from: nSlivers.lowerBound, to: nSlivers.upperBound, by: perBlock) {
            let jcEnd = min(jc + perBlock, nSlivers.upperBound)
            for t in jc..<jcEnd { pack(t, t - jc) }
            for s in mSlivers { for t in jc..<jcEnd { tile(s, t, t - jc) } }
        }
    }

    /// One thread's share of a k block: B slivers `nSlivers` × A slivers `mSlivers`.
    static func computeBlock(transB: Bool, m: Int, n: Int, kc: Int, p0: Int, alpha: Float,
                             aPacked: UnsafeMutablePointer<Float>, b: UnsafePointer<Float>, ldb: Int,
                             beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int,
                             nSlivers: Range<Int>, mSlivers: Range<Int>) {
        guard !nSlivers.isEmpty, !mSlivers.isEmpty else { return }
        let bBuf = GemmScratch.current(1).floats(NC / NR * NR * kc)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: MR * NR) { edge in
            let tile = edge.baseAddress!
            forEachTile(nSlivers: nSlivers, mSlivers: mSlivers, pack: { t, slot in
                packBSliver(transB: transB, b: b, ldb: ldb, j0: t * NR, cols: min(NR, n - t * NR),
                            p0: p0, kc: kc, dst: bBuf + slot * NR * kc)
            }, tile: { s, t, slot in
                let rows = min(MR, m - s * MR), cols = min(NR, n - t * NR)
                let aS = UnsafePointer(aPacked + s * MR * kc)
                let bS = UnsafePointer(bBuf + slot * NR * kc)
                let cT = c + s * MR * ldc + t * NR
                if rows == MR && cols == NR {
                    microKernel6x64(kc: kc, a: aS, b: bS, c: cT, ldc: ldc, alpha: alpha, beta: beta)
                } else {
                    microKernel6x64(kc: kc, a: aS, b: bS, c: tile, ldc: NR, alpha: alpha, beta: 0)
                    for i in 0..<rows {
                        for j in 0..<cols {
                            let v = tile[i * NR + j]
                            cT[i * ldc + j] = beta == 0 ? v : v + beta * cT[i * ldc + j]
                        }
                    }
                }
            })
        }
    }
}
