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
                let (v0, v1) = C.decode(row + c / C.blockSize * C.blockBytes, sub: c % C.blockSize / 32)
                out.storeBytes(of: v0, toByteOffset: c * 4, as: SIMD16<Float>.self)
                out.storeBytes(of: v1, toByteOffset: c * 4 + 64, as: SIMD16<Float>.self)
                c += 32
            }
        }
    }
}
