import Foundation
import Dispatch

/// ggml's block formats written from float32, bit-identical with ggml's reference quantisers
/// (`quantize_row_*_ref` in ggml-quants.c) and gguf-py's `gguf.quants.quantize`: every product, quotient and sum is
/// a separately rounded Float operation in the reference's order (no fused multiply-add), ties round as the
/// reference does (`roundf`, truncation after +0.5, or `nearest_int`'s round-half-even), and scales are stored as
/// IEEE half with round-to-nearest-even.
///
/// K-quants (Q4_K, Q6_K, in GGMLKQuantizer.swift) use ggml's reference search without an importance matrix, as
/// `llama-quantize` does when it is given none.
public enum GGMLQuantizer {
    /// Types Finch can write from float32.
    public static let supportedTypes: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q4_K, .q6_K]

    public static func canQuantize(_ type: GGMLType) -> Bool { supportedTypes.contains(type) }

    /// The block bytes of `count` floats at `src` as `type`. `count` must be a multiple of the block size;
    /// block types refuse NaN and infinite inputs (ggml rejects such rows too). Work is split across `threads`
    /// threads (0: all active processors) for large inputs; the result does not depend on the split.
    public static func quantize(_ type: GGMLType, _ src: UnsafePointer<Float>, count: Int, threads: Int = 0) throws -> [UInt8] {
        guard canQuantize(type) else {
            throw GGUFError(.unsupportedType, file: "", "Finch cannot quantise to \(type.name) (it can write \(supportedTypes.map(\.name).joined(separator: ", ")))")
        }
        guard count >= 0, count % type.blockSize == 0 else {
            throw GGUFError(.malformed, file: "", "element count \(count) is not a multiple of the \(type.name) block size \(type.blockSize)")
        }
        let blocks = count / type.blockSize
        let bytes = blocks * type.typeSize
        guard blocks > 0 else { return [] }
        if type.isQuantized {
            for i in 0..<count where !src[i].isFinite {
                throw GGUFError(.malformed, file: "", "element \(i) is \(src[i]): \(type.name) blocks hold finite values only")
            }
        }
        let kernel = self.kernel(type)
        let cores = threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount
        // K-quants search per block: worth splitting from a few blocks on; cheap types from ~64K elements.
        let minBlocks = type.blockSize == 256 ? 64 : max(1, 65_536 / type.blockSize)
        let parts = max(1, min(cores, blocks / minBlocks))
        return [UInt8](unsafeUninitializedCapacity: bytes) { out, n in
            let dst = UnsafeMutableRawPointer(out.baseAddress!)
            if parts == 1 {
                kernel(src, dst, 0..<blocks)
            } else {
                DispatchQueue.concurrentPerform(iterations: parts) { p in
                    kernel(src, dst, blocks * p / parts ..< blocks * (p + 1) / parts)
                }
            }
            n = bytes
        }
    }

    /// The block bytes of `values` as `type`.
    public static func quantize(_ type: GGMLType, _ values: [Float], threads: Int = 0) throws -> [UInt8] {
        try values.withUnsafeBufferPointer { buf in
            guard let base = buf.baseAddress else { return [] }
            return try quantize(type, base, count: buf.count, threads: threads)
        }
    }

    /// Quantises the blocks `blocks` (block index) of `src` into `dst` at the same block position.
    typealias Kernel = (UnsafePointer<Float>, UnsafeMutableRawPointer, Range<Int>) -> Void

    static func kernel(_ type: GGMLType) -> Kernel {
        switch type {
        case .f32: return f32
        case .f16: return f16
        case .bf16: return bf16
        case .q8_0: return q8_0
        case .q4_0: return q4_0
        case .q4_1: return q4_1
        case .q5_0: return q5_0
        case .q5_1: return q5_1
        case .q4_K: return q4_K
        case .q6_K: return q6_K
        default: return { _, _, _ in }   // unreachable: canQuantize is checked first
        }
    }

    // MARK: Scalar conversions

    /// IEEE half bits of `f`, rounded to nearest even (overflow to infinity), as numpy's `astype(float16)` and
    /// ggml's `GGML_FP32_TO_FP16`; a NaN keeps its top payload bits and stays a NaN.
    @inline(__always)
    public static func floatToHalf(_ f: Float) -> UInt16 {
        let bits = f.bitPattern
        if bits & 0x7F80_0000 == 0x7F80_0000 {
            let sign = UInt16(truncatingIfNeeded: bits >> 16) & 0x8000
            let mant = bits & 0x7F_FFFF
            if mant == 0 { return sign | 0x7C00 }
            let r = UInt16(truncatingIfNeeded: 0x7C00 + (mant >> 13))
            return sign | (r == 0x7C00 ? 0x7C01 : r)
        }
        return Float16(f).bitPattern
    }

    /// bfloat16 bits of `f` as ggml's `ggml_compute_fp32_to_bf16` and gguf-py: round to nearest even, a NaN made quiet.
    @inline(__always)
    public static func floatToBF16(_ f: Float) -> UInt16 {
        let n = f.bitPattern
        if n & 0x7FFF_FFFF > 0x7F80_0000 { return UInt16(truncatingIfNeeded: ((n & 0xFFFF_0000) | (64 << 16)) >> 16) }
        return UInt16(truncatingIfNeeded: (n &+ (0x7FFF + ((n >> 16) & 1))) >> 16)
    }

    @inline(__always)
    static func storeHalf(_ p: UnsafeMutableRawPointer, _ offset: Int, _ f: Float) {
        p.storeBytes(of: floatToHalf(f).littleEndian, toByteOffset: offset, as: UInt16.self)
    }

    /// The value stored by `storeHalf`, read back as ggml reads it.
    @inline(__always)
    static func roundTripHalf(_ f: Float) -> Float { GGMLQuants.halfToFloat(floatToHalf(f)) }

    // MARK: Plain types

    static func f32(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ r: Range<Int>) {
        for i in r { dst.storeBytes(of: src[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
    }

    static func f16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ r: Range<Int>) {
        for i in r { dst.storeBytes(of: floatToHalf(src[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
    }

    static func bf16(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ r: Range<Int>) {
        for i in r { dst.storeBytes(of: floatToBF16(src[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
    }

    // MARK: 32-element blocks

    /// C's float → int conversion as x86 performs it (`cvttss2si`): truncation toward zero, and INT_MIN for NaN or
    /// a value out of range (where C leaves it undefined), so no input can trap.
    @inline(__always)
    static func cvtt(_ f: Float) -> Int32 {
        f >= -2_147_483_648 && f < 2_147_483_648 ? Int32(f) : .min
    }

    /// The reference's `MIN(top, (int8_t)(f))` stored as a uint8 level.
    @inline(__always)
    static func level(_ f: Float, _ top: Int8) -> UInt8 {
        UInt8(bitPattern: Swift.min(top, Int8(truncatingIfNeeded: cvtt(f))))
    }

    /// The element of largest magnitude (the first one on a tie), as the reference's `if (amax < fabsf(v))` scan.
    @inline(__always)
    static func signedAbsMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var amax: Float = 0, max: Float = 0
        for j in 0..<n where amax < abs(x[j]) { amax = abs(x[j]); max = x[j] }
        return max
    }

    @inline(__always)
    static func minMax(_ x: UnsafePointer<Float>, _ n: Int) -> (Float, Float) {
        var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
        for j in 0..<n {
            if x[j] < lo { lo = x[j] }
            if x[j] > hi { hi = x[j] }
        }
        return (lo, hi)
    }

    /// Stores d = max/`divisor` (max: the element of largest magnitude) as half at byte 0 and returns 1/d (0 for d = 0).
    @inline(__always)
    static func symmetricScale(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, divisor: Float) -> Float {
        let d = signedAbsMax(x, 32) / divisor
        storeHalf(y, 0, d)
        return d != 0 ? 1 / d : 0
    }

    /// Stores d = (max − min)/`steps` and m = min as halves at bytes 0 and 2; returns (min, 1/d or 0).
    @inline(__always)
    static func affineScale(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, steps: Float) -> (Float, Float) {
        let (lo, hi) = minMax(x, 32)
        let d = (hi - lo) / steps
        storeHalf(y, 0, d)
        storeHalf(y, 2, lo)
        return (lo, d != 0 ? 1 / d : 0)
    }

    /// block_q8_0: d = amax/127 (half), q = roundf(x/d) (x·(1/d), ties away from zero).
    static func q8_0(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ r: Range<Int>) {
        for b in r {
            let x = src + 32 * b, y = dst + 34 * b
            var amax: Float = 0
            for j in 0..<32 { amax = Swift.max(amax, abs(x[j])) }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            storeHalf(y, 0, d)
            let qs = (y + 2).assumingMemoryBound(to: Int8.self)
            for j in 0..<32 { qs[j] = Int8(truncatingIfNeeded: cvtt((x[j] * id).rounded())) }
        }
    }

    /// block_q4_0: d = max/−8 (max: the element of largest magnitude), q = min(15, trunc(x/d + 8.5)).
    static func q4_0(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ r: Range<Int>) {
        for b in r {
            let x = src + 32 * b, y = dst + 18 * b
            let id = symmetricScale(x, y, divisor: -8)
            let qs = (y + 2).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                qs[j] = level(x[j] * id + 8.5, 15) | level(x[j + 16] * id + 8.5, 15) << 4
            }
        }
    }

    /// block_q4_1: d = (max − min)/15, m = min, q = min(15, trunc((x − min)/d + 0.5)).
    static func q4_1(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ r: Range<Int>) {
        for b in r {
            let x = src + 32 * b, y = dst + 20 * b
            let (lo, id) = affineScale(x, y, steps: 15)
            let qs = (y + 4).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                qs[j] = level((x[j] - lo) * id + 0.5, 15) | level((x[j + 16] - lo) * id + 0.5, 15) << 4
            }
        }
    }

    /// Packs 32 five-bit levels: low nibbles in `qs` (element j and j + 16 share a byte), bit 4 of element j in bit j
    /// of the u32 `qh`.
    @inline(__always)
    static func pack5(_ y: UnsafeMutableRawPointer, qhAt: Int, qsAt: Int, _ level: (Int) -> UInt8) {
        var qh: UInt32 = 0
        let qs = (y + qsAt).assumingMemoryBound(to: UInt8.self)
        for j in 0..<16 {
            let a = level(j), c = level(j + 16)
            qs[j] = (a & 0x0F) | (c & 0x0F) << 4
            qh |= UInt32((a & 0x10) >> 4) << UInt32(j)
            qh |= UInt32((c & 0x10) >> 4) << UInt32(j + 16)
        }
        y.storeBytes(of: qh.littleEndian, toByteOffset: qhAt, as: UInt32.self)
    }

    /// block_q5_0: d = max/−16, q = min(31, trunc(x/d + 16.5)).
    static func q5_0(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ r: Range<Int>) {
        for b in r {
            let x = src + 32 * b, y = dst + 22 * b
            let id = symmetricScale(x, y, divisor: -16)
            pack5(y, qhAt: 2, qsAt: 6) { level(x[$0] * id + 16.5, 31) }
        }
    }

    /// block_q5_1: d = (max − min)/31, m = min, q = min(31, trunc((x − min)/d + 0.5)).
    static func q5_1(_ src: UnsafePointer<Float>, _ dst: UnsafeMutableRawPointer, _ r: Range<Int>) {
        for b in r {
            let x = src + 32 * b, y = dst + 24 * b
            let (lo, id) = affineScale(x, y, steps: 31)
            pack5(y, qhAt: 4, qsAt: 8) { level((x[$0] - lo) * id + 0.5, 31) }
        }
    }
}
