/// Dequantisation of matrix tiles into Float (the tile path of `QuantGemm` and `QuantizedMatrix.dequantize`).
enum QuantDequant {
    /// Rows `rr`, columns `cr` (multiples of 32) of `w` into `dst` with row stride `ld`.
    @inline(__always)
    static func rows<C: QuantBlockCodec>(_: C.Type, _ w: QuantizedMatrix, _ rr: Range<Int>, _ cr: Range<Int>,
                                         _ dst: UnsafeMutablePointer<Float>, _ ld: Int) {
        for r in rr {
            let row = w.row(r)
            let out = UnsafeMutableRawPointer(dst + (r - rr.lowerBound) * ld - cr.lowerBound)
            var c = cr.lowerBound
            while c < cr.upperBound {
                // One block's scales serve all its sub-blocks in the range.
                let blk = c / C.blockSize, end = min(cr.upperBound, (blk + 1) * C.blockSize)
                let p = row + blk * C.blockBytes, s = C.scales(p)
                while c < end {
                    let (v0, v1) = C.decode(p, s, sub: c % C.blockSize / 32)
                    out.storeBytes(of: v0, toByteOffset: c * 4, as: SIMD16<Float>.self)
                    out.storeBytes(of: v1, toByteOffset: c * 4 + 64, as: SIMD16<Float>.self)
                    c += 32
                }
            }
        }
    }
}
