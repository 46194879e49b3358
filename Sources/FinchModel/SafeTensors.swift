import Foundation
import FinchKernels

/// The safetensors format: 8-byte little-endian header length, a JSON header
/// (`{name: {dtype, shape, data_offsets}}`, optional `__metadata__`), then raw little-endian data.
public enum SafeTensors {
    public struct Entry {
        public let name: String
        public let dtype: String
        public let shape: [Int]
        public let range: Range<Int>   // byte range inside the data section
    }

    /// A safetensors file mapped into memory; tensors are decoded on request.
    public final class File {
        public let url: URL
        public let entries: [String: Entry]
        public let metadata: [String: String]
        private let data: Data
        private let dataStart: Int

        public init(url: URL) throws {
            self.url = url
            guard let d = try? Data(contentsOf: url, options: .alwaysMapped) else {
                throw ModelFileError("cannot read \(url.path)")
            }
            data = d
            guard d.count >= 8 else { throw ModelFileError("\(url.path): too short to be a safetensors file") }
            var n: UInt64 = 0
            for i in 0..<8 { n |= UInt64(d[d.startIndex + i]) << (8 * UInt64(i)) }
            guard n > 0, n <= UInt64(d.count - 8) else {   // compared as UInt64: a huge length must not wrap around
                throw ModelFileError("\(url.path): header length \(n) does not fit the file (\(d.count) bytes)")
            }
            dataStart = 8 + Int(n)
            let headerData = d.subdata(in: (d.startIndex + 8)..<(d.startIndex + dataStart))
            guard let obj = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
                throw ModelFileError("\(url.path): header is not a JSON object")
            }
            var entries: [String: Entry] = [:]
            var meta: [String: String] = [:]
            let dataBytes = d.count - dataStart
            for (name, value) in obj {
                if name == "__metadata__" {
                    guard let m = value as? [String: String] else {
                        throw ModelFileError("\(url.path): __metadata__ must map strings to strings")
                    }
                    meta = m
                    continue
                }
                func bad(_ why: String) -> ModelFileError { ModelFileError("\(url.path): header entry for tensor '\(name)': \(why)") }
                guard let e = value as? [String: Any], let dtype = e["dtype"] as? String,
                      let shape = e["shape"] as? [Int], let offs = e["data_offsets"] as? [Int], offs.count == 2 else {
                    throw bad("needs dtype (string), shape (integers) and data_offsets (two integers)")
                }
                guard let width = Self.dtypeWidth[dtype] else { throw bad("unknown dtype \(dtype)") }
                guard shape.allSatisfy({ $0 >= 0 }) else { throw bad("negative dimension in shape \(shape)") }
                var count = 1
                for dim in shape {
                    let (p, overflow) = count.multipliedReportingOverflow(by: dim)
                    guard !overflow else { throw bad("shape \(shape) overflows") }
                    count = p
                }
                guard offs[0] >= 0, offs[0] <= offs[1], offs[1] <= dataBytes else {
                    throw bad("data_offsets \(offs) are outside the \(dataBytes)-byte data section")
                }
                let (need, overflow) = count.multipliedReportingOverflow(by: width)
                guard !overflow, offs[1] - offs[0] == need else {
                    throw bad("data_offsets \(offs) hold \(offs[1] - offs[0]) bytes, shape \(shape) × \(dtype) needs \(count) × \(width)")
                }
                entries[name] = Entry(name: name, dtype: dtype, shape: shape, range: offs[0]..<offs[1])
            }
            // Tensors may not share bytes (the format's rule; a crafted file could alias one tensor into another).
            let sorted = entries.values.filter { !$0.range.isEmpty }.sorted { $0.range.lowerBound < $1.range.lowerBound }
            for (a, b) in zip(sorted, sorted.dropFirst()) where b.range.lowerBound < a.range.upperBound {
                throw ModelFileError("\(url.path): tensors '\(a.name)' and '\(b.name)' overlap in the data section")
            }
            self.entries = entries
            self.metadata = meta
        }

        /// Bytes per element of every safetensors dtype.
        static let dtypeWidth: [String: Int] = ["F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
                                                "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1]

        public var names: [String] { entries.keys.sorted() }

        /// Raw little-endian bytes of one tensor.
        public func bytes(_ name: String) throws -> Data {
            guard let e = entries[name] else { throw ModelFileError("\(url.path): no tensor '\(name)'") }
            let lo = data.startIndex + dataStart + e.range.lowerBound
            return data.subdata(in: lo..<(lo + e.range.count))
        }

        /// The tensor converted to float32 (from F32, F16, BF16, F64, I64, I32).
        public func tensor(_ name: String) throws -> Tensor {
            guard let e = entries[name] else { throw ModelFileError("\(url.path): no tensor '\(name)'") }
            let count = e.shape.reduce(1, *)
            let t = Tensor(shape: e.shape)
            let raw = try bytes(name)
            let width: Int
            switch e.dtype {
            case "F32": width = 4
            case "F16", "BF16": width = 2
            case "F64", "I64": width = 8
            case "I32": width = 4
            default: throw ModelFileError("\(url.path): tensor '\(name)' has unsupported dtype \(e.dtype)")
            }
            guard raw.count == count * width else {
                throw ModelFileError("\(url.path): tensor '\(name)' holds \(raw.count) bytes, shape \(e.shape) × \(e.dtype) needs \(count * width)")
            }
            raw.withUnsafeBytes { (p: UnsafeRawBufferPointer) in
                let out = t.ptr
                switch e.dtype {
                case "F32":
                    for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                case "F16":
                    for i in 0..<count {
                        let bits = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                        out[i] = halfToFloat(bits)
                    }
                case "BF16":
                    for i in 0..<count {
                        let bits = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                        out[i] = Float(bitPattern: UInt32(bits) << 16)
                    }
                case "F64":
                    for i in 0..<count { out[i] = Float(Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
                case "I64":
                    for i in 0..<count { out[i] = Float(Int64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
                case "I32":
                    for i in 0..<count { out[i] = Float(Int32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
                default: break
                }
            }
            return t
        }

        /// An integer tensor (I64 or I32) as Int values.
        public func ints(_ name: String) throws -> [Int] {
            guard let e = entries[name] else { throw ModelFileError("\(url.path): no tensor '\(name)'") }
            let raw = try bytes(name)
            let count = e.shape.reduce(1, *)
            return raw.withUnsafeBytes { p in
                switch e.dtype {
                case "I64": return (0..<count).map { Int(Int64(littleEndian: p.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) }
                case "I32": return (0..<count).map { Int(Int32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
                default: return (0..<count).map { _ in 0 }
                }
            }
        }
    }

    /// IEEE 754 half → float.
    public static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exp = Int((h >> 10) & 0x1f)
        let mant = UInt32(h & 0x3ff)
        if exp == 0 {
            if mant == 0 { return Float(bitPattern: sign) }
            // subnormal half: mant * 2^-24
            let v = Float(mant) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -v : v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mant << 13)) }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
    }

    /// Writes tensors as F32 (sorted by name, as safetensors does) to `url`, atomically
    /// (a temporary file in the same folder, then a rename), so a crash never leaves half a file.
    public static func write(_ tensors: [String: Tensor], to url: URL, metadata: [String: String] = ["format": "pt"]) throws {
        let names = tensors.keys.sorted()
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for name in names {
            let t = tensors[name]!
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.count]] as [String: Any]
            offset += 4 * t.count
        }
        var headerData = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (8 + headerData.count) % 8 != 0 { headerData.append(0x20) }   // pad with spaces, as the reference writer does
        var out = Data(capacity: 8 + headerData.count + offset)
        var n = UInt64(headerData.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(headerData)
        for name in names {
            let t = tensors[name]!
            out.append(UnsafeBufferPointer(start: t.ptr, count: t.count))
        }
        try AtomicFile.write(out, to: url)
    }
}
