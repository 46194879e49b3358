/// Matrix–vector products for GEMMs with a single output row or column (decoding: one token times a
/// weight). These are bound by reading B once, so they stream B with wide loads and no packing.
extension Gemm {
    /// `y[j·incy] = alpha · Σ_p x[p] · op(B)(p, j) + beta · y[j·incy]` for `j < n`; x is contiguous.
    static func gemv(transB: Bool, n: Int, k: Int, alpha: Float, x: UnsafePointer<Float>,
                     b: UnsafePointer<Float>, ldb: Int, beta: Float,
                     y: UnsafeMutablePointer<Float>, incy: Int) {
        @inline(__always) func store(_ j: Int, _ acc: Float) {
            y[j * incy] = beta == 0 ? alpha * acc : alpha * acc + beta * y[j * incy]
        }
        if transB {
            // y_j = dot(x, B[j, :]): four rows at a time share each load of x.
            let minRows = max(4, 65_536 / max(k, 1))
            ThreadPool.shared.parallelFor((n + 3) / 4, minChunk: (minRows + 3) / 4) { _, r in
                var j = r.lowerBound * 4
                let end = min(r.upperBound * 4, n)
                while j + 4 <= end {
                    let (d0, d1, d2, d3) = dot4(x, b + j * ldb, ldb, k)
                    store(j, d0); store(j + 1, d1); store(j + 2, d2); store(j + 3, d3)
                    j += 4
                }
                while j < end { store(j, dot1(x, b + j * ldb, k)); j += 1 }
            }
        } else {
            // y = xᵀ·B: blocks of 64 columns accumulate Σ_p x[p]·B[p, block] in registers.
            let blocks = (n + 63) / 64
            ThreadPool.shared.parallelFor(blocks, minChunk: max(1, 1024 / max(k, 1))) { _, r in
                for blk in r {
                    let j0 = blk * 64
                    if j0 + 64 <= n {
                        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
                        for p in 0..<k {
                            let row = UnsafeRawPointer(b + p * ldb + j0)
                            let xv = SIMD16<Float>(repeating: x[p])
                            a0 = a0.addingProduct(xv, row.loadUnaligned(fromByteOffset: 0, as: SIMD16<Float>.self))
                            a1 = a1.addingProduct(xv, row.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self))
                            a2 = a2.addingProduct(xv, row.loadUnaligned(fromByteOffset: 128, as: SIMD16<Float>.self))
                            a3 = a3.addingProduct(xv, row.loadUnaligned(fromByteOffset: 192, as: SIMD16<Float>.self))
                        }
                        for t in 0..<16 {
                            store(j0 + t, a0[t]); store(j0 + 16 + t, a1[t])
                            store(j0 + 32 + t, a2[t]); store(j0 + 48 + t, a3[t])
                        }
                    } else {
                        for j in j0..<n {
                            var acc: Float = 0
                            for p in 0..<k { acc += x[p] * b[p * ldb + j] }
                            store(j, acc)
                        }
                    }
                }
            }
        }
    }

    @inline(__always)
    static func dot1(_ x: UnsafePointer<Float>, _ r: UnsafePointer<Float>, _ k: Int) -> Float {
        var acc = SIMD16<Float>()
        var p = 0
        let rx = UnsafeRawPointer(x), rr = UnsafeRawPointer(r)
        while p + 16 <= k {
            acc = acc.addingProduct(rx.loadUnaligned(fromByteOffset: p * 4, as: SIMD16<Float>.self),
                                    rr.loadUnaligned(fromByteOffset: p * 4, as: SIMD16<Float>.self))
            p += 16
        }
        var s = acc.sum()
        while p < k { s += x[p] * r[p]; p += 1 }
        return s
    }

    @inline(__always)
    static func dot4(_ x: UnsafePointer<Float>, _ r: UnsafePointer<Float>, _ ld: Int, _ k: Int)
        -> (Float, Float, Float, Float) {
        var s0 = SIMD16<Float>(), s1 = SIMD16<Float>(), s2 = SIMD16<Float>(), s3 = SIMD16<Float>()
        var t0 = SIMD16<Float>(), t1 = SIMD16<Float>(), t2 = SIMD16<Float>(), t3 = SIMD16<Float>()
        let rx = UnsafeRawPointer(x)
        let r0 = UnsafeRawPointer(r), r1 = UnsafeRawPointer(r + ld)
        let r2 = UnsafeRawPointer(r + 2 * ld), r3 = UnsafeRawPointer(r + 3 * ld)
        var o = 0
        let end32 = (k / 32) * 32 * 4
        while o < end32 {
            let x0 = rx.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
            let x1 = rx.loadUnaligned(fromByteOffset: o + 64, as: SIMD16<Float>.self)
            s0 = s0.addingProduct(x0, r0.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self))
            s1 = s1.addingProduct(x0, r1.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self))
            s2 = s2.addingProduct(x0, r2.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self))
            s3 = s3.addingProduct(x0, r3.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self))
            t0 = t0.addingProduct(x1, r0.loadUnaligned(fromByteOffset: o + 64, as: SIMD16<Float>.self))
            t1 = t1.addingProduct(x1, r1.loadUnaligned(fromByteOffset: o + 64, as: SIMD16<Float>.self))
            t2 = t2.addingProduct(x1, r2.loadUnaligned(fromByteOffset: o + 64, as: SIMD16<Float>.self))
            t3 = t3.addingProduct(x1, r3.loadUnaligned(fromByteOffset: o + 64, as: SIMD16<Float>.self))
            o += 128
        }
        var d0 = (s0 + t0).sum(), d1 = (s1 + t1).sum(), d2 = (s2 + t2).sum(), d3 = (s3 + t3).sum()
        var p = o / 4
        while p < k {
            let xv = x[p]
            d0 += xv * r[p]; d1 += xv * r[ld + p]; d2 += xv * r[2 * ld + p]; d3 += xv * r[3 * ld + p]
            p += 1
        }
        return (d0, d1, d2, d3)
    }
}
