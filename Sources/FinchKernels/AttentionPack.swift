import Foundation

/// Rows of a per-head operand: element (b, h, t, d) at `base + b·batchStride + h·headStride + t·ld + d`. Either a
/// view of the caller's rows (when headDim is a multiple of 16) or a zero-padded copy whose rows are 16-float
/// multiples, so that the register tiles never read past a head's columns.
struct HeadRows {
    var base: UnsafeMutablePointer<Float>
    var ld: Int, batchStride: Int, headStride: Int
    @inline(__always) func at(_ b: Int, _ h: Int, _ t: Int) -> UnsafeMutablePointer<Float> {
        base + b * batchStride + h * headStride + t * ld
    }
}

/// Buffers an attention call allocates once and frees at the end (the caller's rows stay untouched).
final class AttentionScratch {
    private var owned: [UnsafeMutablePointer<Float>] = []
    func floats(_ n: Int, zeroed: Bool = false) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        if zeroed { p.initialize(repeating: 0, count: max(n, 1)) }
        owned.append(p)
        return p
    }
    deinit { for p in owned { p.deallocate() } }
}

enum AttentionPack {
    @inline(__always) static func padded(_ hd: Int) -> Int { (hd + 15) / 16 * 16 }

    /// `r` as [batch, heads, length, hdp] rows: the caller's memory when hd is a multiple of 16, else a padded copy.
    static func rows(_ r: StridedRows, batch: Int, heads: Int, length: Int, headDim hd: Int,
                     scratch: AttentionScratch) -> HeadRows {
        let hdp = padded(hd)
        if hdp == hd { return HeadRows(base: r.base, ld: r.rowStride, batchStride: r.batchStride, headStride: hd) }
        let buf = scratch.floats(batch * heads * length * hdp)
        let out = HeadRows(base: buf, ld: hdp, batchStride: heads * length * hdp, headStride: length * hdp)
        ThreadPool.shared.parallelFor(batch * length, minChunk: 64) { _, range in
            for bt in range {
                let b = bt / length, t = bt % length
                for h in 0..<heads {
                    let d = out.at(b, h, t)
                    d.update(from: r.row(b, t) + h * hd, count: hd)
                    (d + hd).update(repeating: 0, count: hdp - hd)
                }
            }
        }
        return out
    }

    /// `r` transposed per (batch, head): element (b, h, d, j) at `base + ((b·heads + h)·hd + d)·ldT + j`, with
    /// ldT = length rounded up to 64 and zeros past `length`. Makes q·kᵀ a product of contiguous 16-key vectors.
    static func transposed(_ r: StridedRows, batch: Int, heads: Int, length: Int, headDim hd: Int,
                           scratch: AttentionScratch) -> (base: UnsafeMutablePointer<Float>, ld: Int) {
        let ldT = (length + 63) / 64 * 64, blocks = ldT / 64
        let buf = scratch.floats(batch * heads * hd * ldT)
        ThreadPool.shared.parallelFor(batch * heads * blocks, minChunk: 4) { _, range in
            for task in range {
                let bh = task / blocks, j0 = (task % blocks) * 64
                let b = bh / heads, h = bh % heads
                let dst = buf + bh * hd * ldT + j0
                let n = min(64, length - j0)
                for j in 0..<n {
                    let src = r.row(b, j0 + j) + h * hd
                    for d in 0..<hd { dst[d * ldT + j] = src[d] }
                }
                if n < 64 { for d in 0..<hd { (dst + d * ldT + n).update(repeating: 0, count: 64 - n) } }
            }
        }
        return (buf, ldT)
    }
}
