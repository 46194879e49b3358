import XCTest
import Foundation
import FinchKernels

/// RoPE (HF rotate_half) against a scalar reference; the inverse undoes the forward.
final class RopeTests: XCTestCase {
    func testRopeMatchesRotateHalfReference() {
        var rng = MKRNG(5)
        for half in [1, 7, 33] {
            let hd = 2 * half, heads = 3, rows = 5, ld = heads * hd + 3   // padded row stride
            let theta: Float = 10000
            let x = rng.tensor([rows, ld])
            let orig = x.array
            let pos: [Int32] = [0, 1, 7, 33, 100]
            let table = RopeTable(headDim: hd, theta: theta, maxPositions: 128)
            pos.withUnsafeBufferPointer { table.apply(x.ptr, ld: ld, rows: rows, heads: heads, positions: $0.baseAddress!) }
            var ref = orig
            for r in 0..<rows {
                for h in 0..<heads {
                    for i in 0..<half {
                        let invFreq = 1 / powf(theta, Float(2 * i) / Float(hd))
                        let ang = Double(Float(pos[r]) * invFreq)
                        let a = Double(orig[r * ld + h * hd + i]), b = Double(orig[r * ld + h * hd + half + i])
                        ref[r * ld + h * hd + i] = Float(a * cos(ang) - b * sin(ang))
                        ref[r * ld + h * hd + half + i] = Float(b * cos(ang) + a * sin(ang))
                    }
                }
            }
            mkAssertClose(x.array, ref, abs: 1e-6, rel: 1e-5, "rope half \(half)")
            pos.withUnsafeBufferPointer { table.apply(x.ptr, ld: ld, rows: rows, heads: heads, positions: $0.baseAddress!, inverse: true) }
            mkAssertClose(x.array, orig, abs: 1e-6, rel: 1e-5, "rope inverse half \(half)")
        }
    }
}
