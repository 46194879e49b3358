import Foundation
import Dispatch

/// ggml's tensor block formats, dequantised bit-exactly as ggml's reference `dequantize_row_*`
/// (ggml-quants.c) and gguf-py's `gguf.quants.dequantize`: every product and sum is a separately
/// rounded Float operation in the reference order (no fused multiply-add).
public enum GGMLQuants {
    /// Dequantises `count` elements of `type` from `src` into `into`.
    /// `count` must be a multiple of `type.blockSize` and `src` must hold the blocks.
    /// Work is split across `threads` threads (0: all active processors) for large inputs.
    public static func dequantize(_ type: GGMLType, _ src: UnsafeRawBufferPointer, count: Int,
                                  into dst: UnsafeMutablePointer<Float>, threads: Int = 0) throws {
        guard type.canDequantize else {
            throw GGUFError(.unsupportedType, file: "", "tensor type \(type.name) is unsupported for dequantisation")
        }
        guard count >= 0, count % type.blockSize == 0 else {
            throw GGUFError(.malformed, file: "", "element count \(count) is not a multiple of the \(type.name) block size \(type.blockSize)")
        }
        let blocks = count / type.blockSize
        let (need, o) = blocks.multipliedReportingOverflow(by: type.typeSize)
        guard !o, need <= src.count else {
            throw GGUFError(.truncated, file: "", "\(count) \(type.name) elements need \(need) bytes, buffer has \(src.count)")
        }
        guard blocks > 0, let base = src.baseAddress else { return }
        let kernel = self.kernel(type)

        // Split into contiguous block ranges: one per thread, at least ~64K elements each.
        let cores = threads > 0 ? threads : ProcessInfo.processInfo.activeProcessorCount
        let minBlocks = max(1, 65_536 / type.blockSize)
        let parts = max(1, min(cores, blocks / minBlocks))
        if parts == 1 {
            kernel(base, dst, 0..<blocks)
            return
        }
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            let lo = blocks * p / parts, hi = blocks * (p + 1) / parts
            kernel(base, dst, lo..<hi)
        }
    }

    /// Dequantises into a new array.
    public static func dequantize(_ type: GGMLType, _ src: UnsafeRawBufferPointer, count: Int, threads: Int = 0) throws -> [Float] {
        try [Float](unsafeUninitializedCapacity: count) { buf, n in
            if count > 0 { try dequantize(type, src, count: count, into: buf.baseAddress!, threads: threads) }
            n = count
        }
    }

    /// Converts IEEE half-precision bits to Float exactly (NaN payloads kept, as numpy does).
    @inline(__always)
    public static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1F
        var mant = UInt32(h & 0x3FF)
        if exp == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
        if exp == 0 {
            if mant == 0 { return Float(bitPattern: sign) }
            var e: UInt32 = 113
            while mant & 0x400 == 0 { mant <<= 1; e -= 1 }
            return Float(bitPattern: sign | (e << 23) | ((mant & 0x3FF) << 13))
        }
        return Float(bitPattern: sign | ((exp + 112) << 23) | (mant << 13))
    }

    /// Converts bfloat16 bits to Float (exact).
    @inline(__always)
    public static func bf16ToFloat(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

    /// Dequantises the blocks `blocks` of `src` (block index, not byte offset) into `dst` at the same
    /// element position.
    typealias Kernel = (UnsafeRawPointer, UnsafeMutablePointer<Float>, Range<Int>) -> Void

    static func kernel(_ type: GGMLType) -> Kernel {
        switch type {
        case .f32: return f32
        case .f16: return f16
        case .bf16: return bf16
        case .q4_0: return q4_0
        case .q4_1: return q4_1
        case .q5_0: return q5_0
        case .q5_1: return q5_1
        case .q8_0: return q8_0
        case .q2_K: return q2_K
        case .q3_K: return q3_K
        case .q4_K: return q4_K
        case .q5_K: return q5_K
        case .q6_K: return q6_K
        default: return { _, _, _ in }  // unreachable: canDequantize is checked first
        }
    }

    /// All 65536 half-precision values as Float (256 KiB), like ggml's `ggml_table_f32_f16`.
    static let halfTable: [Float] = (0..<65536).map { halfToFloat(UInt16($0)) }

    @inline(__always)
    static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        halfToFloat(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self).littleEndian)
    }

    // MARK: Plain types

    static func f32(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        UnsafeMutableRawPointer(dst + r.lowerBound).copyMemory(from: src + r.lowerBound * 4, byteCount: r.count * 4)
    }

    static func f16(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        halfTable.withUnsafeBufferPointer { table in
            let t = table.baseAddress!
            for i in r {
                dst[i] = t[Int(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian)]
            }
        }
    }

    static func bf16(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        for i in r {
            dst[i] = bf16ToFloat(src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian)
        }
    }

    // MARK: 32-element blocks

    /// block_q4_0: f16 d, u8 qs[16]; y[j] = (lo - 8)·d, y[j+16] = (hi - 8)·d.
    static func q4_0(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        for b in r {
            let x = src + b * 18, y = dst + b * 32
            let d = half(x, 0)
            let qs = x.assumingMemoryBound(to: UInt8.self) + 2
            for j in 0..<16 {
                y[j] = Float(Int32(qs[j] & 0x0F) - 8) * d
                y[j + 16] = Float(Int32(qs[j] >> 4) - 8) * d
            }
        }
    }

    /// block_q4_1: f16 d, f16 m, u8 qs[16]; y = q·d + m.
    static func q4_1(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        for b in r {
            let x = src + b * 20, y = dst + b * 32
            let d = half(x, 0), m = half(x, 2)
            let qs = x.assumingMemoryBound(to: UInt8.self) + 4
            for j in 0..<16 {
                y[j] = Float(qs[j] & 0x0F) * d + m
                y[j + 16] = Float(qs[j] >> 4) * d + m
            }
        }
    }

    /// block_q5_0: f16 d, u32 qh, u8 qs[16]; 5-bit q with the high bit of element j in bit j of qh; y = (q - 16)·d.
    static func q5_0(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        for b in r {
            let x = src + b * 22, y = dst + b * 32
            let d = half(x, 0)
            let qh = x.loadUnaligned(fromByteOffset: 2, as: UInt32.self).littleEndian
            let qs = x.assumingMemoryBound(to: UInt8.self) + 6
            for j in 0..<16 {
                let h0 = Int32(truncatingIfNeeded: (qh >> UInt32(j)) << 4) & 0x10
                let h1 = Int32(truncatingIfNeeded: qh >> UInt32(j + 12)) & 0x10
                y[j] = Float((Int32(qs[j] & 0x0F) | h0) - 16) * d
                y[j + 16] = Float((Int32(qs[j] >> 4) | h1) - 16) * d
            }
        }
    }

    /// block_q5_1: f16 d, f16 m, u32 qh, u8 qs[16]; y = q·d + m.
    static func q5_1(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        for b in r {
            let x = src + b * 24, y = dst + b * 32
            let d = half(x, 0), m = half(x, 2)
            let qh = x.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian
            let qs = x.assumingMemoryBound(to: UInt8.self) + 8
            for j in 0..<16 {
                let h0 = Int32(truncatingIfNeeded: (qh >> UInt32(j)) << 4) & 0x10
                let h1 = Int32(truncatingIfNeeded: qh >> UInt32(j + 12)) & 0x10
                y[j] = Float(Int32(qs[j] & 0x0F) | h0) * d + m
                y[j + 16] = Float(Int32(qs[j] >> 4) | h1) * d + m
            }
        }
    }

    /// block_q8_0: f16 d, i8 qs[32]; y = q·d.
    static func q8_0(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ r: Range<Int>) {
        for b in r {
            let x = src + b * 34, y = dst + b * 32
            let d = half(x, 0)
            let qs = (x + 2).assumingMemoryBound(to: Int8.self)
            for j in 0..<32 { y[j] = Float(qs[j]) * d }
        }
    }
}
