/// Parsing of the GGUF container (header, metadata, tensor infos) from a byte buffer.
/// Layout (little-endian): "GGUF", u32 version, u64 tensor count, u64 kv count,
/// kv pairs (string key, u32 type, value), tensor infos (string name, u32 n_dims, u64 ne[n_dims],
/// u32 type, u64 offset), padding to `general.alignment`, data section.

/// A parsed container, before it is attached to a ``GGUFFile``.
struct GGUFLayout {
    var version = 0
    var alignment = 32
    var metadata: [String: GGUFValue] = [:]
    var metadataKeys: [String] = []
    var tensors: [GGUFTensorInfo] = []
    var tensorIndex: [String: Int] = [:]
    var dataOffset = 0
}

enum GGUFParser {
    static let maxArrayDepth = 16
    static let maxDims = 4

    static func parse(_ base: UnsafeRawPointer, count: Int, file: String) throws -> GGUFLayout {
        var r = ByteReader(base: base, count: count, file: file)
        var out = GGUFLayout()

        // Header.
        if count < 4 {
            throw r.error(.truncated, at: 0, nil, "file is \(count) bytes, too short for a GGUF header")
        }
        let magic = (0..<4).map { base.load(fromByteOffset: $0, as: UInt8.self) }
        if magic != Array("GGUF".utf8) {
            let shown = magic.map { (0x20..<0x7f).contains($0) ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16) }.joined()
            throw r.error(.badMagic, at: 0, nil, "not a GGUF file (magic is \"\(shown)\", expected \"GGUF\")")
        }
        r.skip(to: 4)
        let version = try r.u32("version")
        if version == 1 {
            throw r.error(.unsupportedVersion, at: 4, nil, "GGUF version 1 is not supported (only versions 2 and 3 are); re-convert the model with a current llama.cpp")
        }
        if version & 0xFFFF == 0 && version != 0 {
            throw r.error(.unsupportedVersion, at: 4, nil, "big-endian GGUF (version field \(version.byteSwapped) byte-swapped) is not supported")
        }
        guard version == 2 || version == 3 else {
            throw r.error(.unsupportedVersion, at: 4, nil, "unsupported GGUF version \(version) (supported: 2, 3)")
        }
        out.version = Int(version)
        let tensorCountAt = r.position
        let tensorCount = try r.u64AsInt("tensor count")
        let kvCountAt = r.position
        let kvCount = try r.u64AsInt("metadata key/value count")
        // Each kv needs >= 13 bytes (key length, type, 1-byte value); each tensor info >= 24 bytes.
        if kvCount > r.remaining / 13 {
            throw r.error(.malformed, at: kvCountAt, nil, "metadata count \(kvCount) is impossible for a file of \(count) bytes")
        }
        if tensorCount > r.remaining / 24 {
            throw r.error(.malformed, at: tensorCountAt, nil, "tensor count \(tensorCount) is impossible for a file of \(count) bytes")
        }

        // Metadata.
        out.metadata.reserveCapacity(kvCount)
        out.metadataKeys.reserveCapacity(kvCount)
        for i in 0..<kvCount {
            let keyAt = r.position
            let key = try r.string("key of metadata entry \(i)")
            let ctx = "key '\(key)'"
            if out.metadata[key] != nil {
                throw r.error(.malformed, at: keyAt, ctx, "duplicate metadata key")
            }
            let typeAt = r.position
            let rawType = try r.u32("value type", ctx)
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw r.error(.malformed, at: typeAt, ctx, "unknown metadata value type \(rawType)")
            }
            let value = try readValue(&r, type, context: ctx, depth: 0)
            out.metadata[key] = value
            out.metadataKeys.append(key)
        }

        // Alignment.
        if let a = out.metadata["general.alignment"] {
            guard let n = a.int, n > 0, n & (n - 1) == 0, n <= 1 << 30 else {
                throw r.error(.malformed, at: nil, "key 'general.alignment'", "alignment \(a) is not a positive power of two")
            }
            out.alignment = n
        }

        // Tensor infos.
        out.tensors.reserveCapacity(tensorCount)
        out.tensorIndex.reserveCapacity(tensorCount)
        for i in 0..<tensorCount {
            let infoAt = r.position
            let name = try r.string("name of tensor \(i)")
            let ctx = "tensor '\(name)'"
            if name.isEmpty {
                throw r.error(.malformed, at: infoAt, "tensor \(i)", "tensor name is empty")
            }
            if out.tensorIndex[name] != nil {
                throw r.error(.malformed, at: infoAt, ctx, "duplicate tensor name")
            }
            let dimsAt = r.position
            let nDims = try r.u32("n_dims", ctx)
            if nDims > UInt32(maxDims) {
                throw r.error(.malformed, at: dimsAt, ctx, "n_dims \(nDims) is larger than \(maxDims)")
            }
            var shape: [Int] = []
            var elements = 1
            for d in 0..<Int(nDims) {
                let neAt = r.position
                let ne = try r.read(UInt64.self, "ne[\(d)]", ctx)
                guard ne > 0, let n = Int(exactly: ne) else {
                    throw r.error(.malformed, at: neAt, ctx, "dimension ne[\(d)] = \(ne) is out of range")
                }
                let (p, o) = elements.multipliedReportingOverflow(by: n)
                if o || p > Int.max / 16 {
                    throw r.error(.malformed, at: neAt, ctx, "shape \(shape + [n]) has too many elements")
                }
                elements = p
                shape.append(n)
            }
            let typeAt = r.position
            let rawType = try r.u32("type", ctx)
            guard let type = GGMLType(rawValue: rawType) else {
                throw r.error(.malformed, at: typeAt, ctx, "unknown ggml tensor type \(rawType)")
            }
            let rowLength = shape.first ?? 1
            if rowLength % type.blockSize != 0 {
                throw r.error(.malformed, at: dimsAt, ctx, "row length \(rowLength) is not a multiple of the \(type.name) block size \(type.blockSize)")
            }
            let (bytes, o) = (elements / type.blockSize).multipliedReportingOverflow(by: type.typeSize)
            if o {
                throw r.error(.malformed, at: dimsAt, ctx, "byte size of shape \(shape) overflows")
            }
            let offsetAt = r.position
            let offset64 = try r.read(UInt64.self, "data offset", ctx)
            guard let offset = Int(exactly: offset64), offset <= count else {
                throw r.error(.malformed, at: offsetAt, ctx, "data offset \(offset64) is past the end of the file (\(count) bytes)")
            }
            if offset % out.alignment != 0 {
                throw r.error(.malformed, at: offsetAt, ctx, "data offset \(offset) is not a multiple of the alignment \(out.alignment)")
            }
            out.tensorIndex[name] = out.tensors.count
            out.tensors.append(GGUFTensorInfo(name: name, shape: shape, type: type, offset: offset,
                                              byteCount: bytes, elementCount: elements))
        }

        // Data section: starts at the next multiple of the alignment.
        let end = r.position
        let dataOffset = (end + out.alignment - 1) / out.alignment * out.alignment
        out.dataOffset = dataOffset
        if !out.tensors.isEmpty && dataOffset > count {
            throw r.error(.truncated, at: end, nil, "file ends before the data section (starts at \(dataOffset), file is \(count) bytes)")
        }
        for t in out.tensors {
            let (start, o1) = dataOffset.addingReportingOverflow(t.offset)
            let (stop, o2) = start.addingReportingOverflow(t.byteCount)
            if o1 || o2 || stop > count {
                throw r.error(.truncated, at: start, "tensor '\(t.name)'",
                              "tensor data (\(t.byteCount) bytes at data offset \(t.offset)) runs past the end of the file (\(count) bytes)")
            }
        }
        return out
    }

    /// Reads one value of `type`; arrays recurse up to `maxArrayDepth`.
    static func readValue(_ r: inout ByteReader, _ type: GGUFValueType, context: String, depth: Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try r.read(UInt8.self, "u8 value", context))
        case .int8: return .int8(try r.read(Int8.self, "i8 value", context))
        case .uint16: return .uint16(try r.read(UInt16.self, "u16 value", context))
        case .int16: return .int16(try r.read(Int16.self, "i16 value", context))
        case .uint32: return .uint32(try r.read(UInt32.self, "u32 value", context))
        case .int32: return .int32(try r.read(Int32.self, "i32 value", context))
        case .uint64: return .uint64(try r.read(UInt64.self, "u64 value", context))
        case .int64: return .int64(try r.read(Int64.self, "i64 value", context))
        case .float32: return .float32(Float(bitPattern: try r.read(UInt32.self, "f32 value", context)))
        case .float64: return .float64(Double(bitPattern: try r.read(UInt64.self, "f64 value", context)))
        case .bool:
            let at = r.position
            let b = try r.read(UInt8.self, "bool value", context)
            guard b <= 1 else { throw r.error(.malformed, at: at, context, "bool value \(b) is neither 0 nor 1") }
            return .bool(b == 1)
        case .string:
            return .string(try r.string("string value", context))
        case .array:
            if depth >= maxArrayDepth {
                throw r.error(.malformed, context, "arrays nested more than \(maxArrayDepth) deep")
            }
            let typeAt = r.position
            let rawType = try r.u32("array element type", context)
            guard let elementType = GGUFValueType(rawValue: rawType) else {
                throw r.error(.malformed, at: typeAt, context, "unknown array element type \(rawType)")
            }
            let countAt = r.position
            let n = try r.u64AsInt("array length", context)
            if n > r.remaining / elementType.minimumEncodedSize {
                throw r.error(.truncated, at: countAt, context,
                              "array of \(n) \(elementType) values runs past the end of the file (\(r.remaining) bytes left)")
            }
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n {
                items.append(try readValue(&r, elementType, context: context, depth: depth + 1))
            }
            return .array(elementType, items)
        }
    }
}
