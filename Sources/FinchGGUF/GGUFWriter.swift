import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a GGUF v3 file the way llama.cpp's `gguf.cpp` and gguf-py's `GGUFWriter` lay it out: the header, the
/// metadata in the order it was set, the tensor infos in the order they were added, padding to `alignment`, then
/// each tensor's blocks at an aligned offset (zero-padded between tensors).
///
/// Tensor data is produced on demand when the file is written (`addTensor(…, produce:)`), so a model is quantised
/// tensor by tensor and never held twice in memory. ``write(to:)`` writes exactly the path it is given; callers that
/// must not leave a partial file write to a temporary name and rename it.
public struct GGUFWriter {
    /// One tensor to write. `shape` is in ggml order (`shape[0]` = ne0, the contiguous row length).
    public struct TensorEntry {
        public let name: String
        public let shape: [Int]
        public let type: GGMLType
        public let byteCount: Int
        let produce: () throws -> [UInt8]
    }

    /// Data alignment. A `general.alignment` key set by the caller must agree; otherwise the key is appended when the
    /// alignment is not ggml's default of 32.
    public var alignment = 32
    public private(set) var metadataKeys: [String] = []
    public private(set) var metadata: [String: GGUFValue] = [:]
    public private(set) var tensors: [TensorEntry] = []
    private var tensorNames = Set<String>()

    public init() {}

    /// Sets `key` (a key already present keeps its place in the order).
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if metadata.updateValue(value, forKey: key) == nil { metadataKeys.append(key) }
    }

    public mutating func set(_ key: String, _ value: String) { set(key, .string(value)) }
    public mutating func set(_ key: String, uint32 value: Int) { set(key, .uint32(UInt32(clamping: value))) }
    public mutating func set(_ key: String, float32 value: Float) { set(key, .float32(value)) }
    public mutating func set(_ key: String, _ value: Bool) { set(key, .bool(value)) }
    public mutating func set(_ key: String, strings: [String]) { set(key, .array(.string, strings.map { .string($0) })) }

    public mutating func remove(_ key: String) {
        guard metadata.removeValue(forKey: key) != nil else { return }
        metadataKeys.removeAll { $0 == key }
    }

    /// Adds a tensor whose `byteCount` bytes `produce` returns when the file is written.
    public mutating func addTensor(name: String, shape: [Int], type: GGMLType, produce: @escaping () throws -> [UInt8]) throws {
        guard !name.isEmpty, name.utf8.count < 64 else {
            throw GGUFError(.malformed, file: "", context: "tensor '\(name)'", "a tensor name must have 1 to 63 bytes (ggml's limit)")
        }
        guard !tensorNames.contains(name) else {
            throw GGUFError(.malformed, file: "", context: "tensor '\(name)'", "duplicate tensor name")
        }
        guard (1...4).contains(shape.count), shape.allSatisfy({ $0 > 0 }) else {
            throw GGUFError(.malformed, file: "", context: "tensor '\(name)'", "shape \(shape) must have 1 to 4 positive dimensions")
        }
        guard shape[0] % type.blockSize == 0 else {
            throw GGUFError(.malformed, file: "", context: "tensor '\(name)'",
                            "row length \(shape[0]) is not a multiple of the \(type.name) block size \(type.blockSize)")
        }
        let elements = shape.reduce(1, *)
        tensorNames.insert(name)
        tensors.append(TensorEntry(name: name, shape: shape, type: type,
                                   byteCount: elements / type.blockSize * type.typeSize, produce: produce))
    }

    /// Adds a tensor from its block bytes.
    public mutating func addTensor(name: String, shape: [Int], type: GGMLType, bytes: [UInt8]) throws {
        try addTensor(name: name, shape: shape, type: type, produce: { bytes })
    }

    // MARK: Layout

    /// The header, metadata and tensor infos, padded to the alignment: everything before the first tensor's data.
    public func headerBytes() throws -> [UInt8] {
        guard alignment > 0, alignment & (alignment - 1) == 0 else {
            throw GGUFError(.malformed, file: "", context: "key 'general.alignment'", "alignment \(alignment) is not a power of two")
        }
        var keys = metadataKeys
        var values = metadata
        if let a = values["general.alignment"] {
            guard a.int == alignment else {
                throw GGUFError(.malformed, file: "", context: "key 'general.alignment'", "the key says \(a) but GGUFWriter.alignment is \(alignment)")
            }
        } else if alignment != 32 {
            values["general.alignment"] = .uint32(UInt32(alignment))
            keys.append("general.alignment")
        }
        var out = Bytes()
        out.append(contentsOf: Array("GGUF".utf8))
        out.u32(3)
        out.u64(UInt64(tensors.count))
        out.u64(UInt64(keys.count))
        for key in keys {
            out.string(key)
            let value = values[key]!
            out.u32(value.type.rawValue)
            try out.value(value, context: "key '\(key)'")
        }
        var offset = 0
        for t in tensors {
            out.string(t.name)
            out.u32(UInt32(t.shape.count))
            for n in t.shape { out.u64(UInt64(n)) }
            out.u32(t.type.rawValue)
            out.u64(UInt64(offset))
            offset += padded(t.byteCount)
        }
        out.pad(to: alignment)
        return out.bytes
    }

    /// Total size of the file in bytes.
    public func fileSize() throws -> Int {
        try headerBytes().count + tensors.reduce(0) { $0 + padded($1.byteCount) }
    }

    private func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    // MARK: Output

    /// The whole file in memory (for tests and small files).
    public func serialized() throws -> [UInt8] {
        var out = try headerBytes()
        for t in tensors {
            let data = try data(of: t)
            out.append(contentsOf: data)
            out.append(contentsOf: [UInt8](repeating: 0, count: padded(data.count) - data.count))
        }
        return out
    }

    /// Writes the file to `url` (created or truncated). Throws ``GGUFError`` (kind `.io`) naming the system's
    /// reason when the file cannot be written (no space, permission denied, …).
    public func write(to url: URL) throws {
        let path = url.path
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw GGUFError(.io, file: path, "cannot create: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        func put(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { raw in
                var done = 0
                while done < raw.count {
                    let n = systemWrite(fd, raw.baseAddress! + done, raw.count - done)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw GGUFError(.io, file: path, "cannot write: \(String(cString: strerror(errno)))")
                    }
                    done += n
                }
            }
        }
        try put(try headerBytes())
        for t in tensors {
            let data = try data(of: t)
            try put(data)
            let pad = padded(data.count) - data.count
            if pad > 0 { try put([UInt8](repeating: 0, count: pad)) }
        }
        if fsync(fd) != 0 { throw GGUFError(.io, file: path, "cannot sync: \(String(cString: strerror(errno)))") }
    }

    private func data(of t: TensorEntry) throws -> [UInt8] {
        let data = try t.produce()
        guard data.count == t.byteCount else {
            throw GGUFError(.malformed, file: "", context: "tensor '\(t.name)'",
                            "\(data.count) bytes of data for \(t.shape) \(t.type.name), which needs \(t.byteCount)")
        }
        return data
    }
}

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif

/// A little-endian byte buffer with GGUF's encodings.
private struct Bytes {
    var bytes: [UInt8] = []

    mutating func append(contentsOf b: [UInt8]) { bytes.append(contentsOf: b) }
    mutating func int<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { int(v) }
    mutating func u64(_ v: UInt64) { int(v) }
    mutating func string(_ s: String) { let u = Array(s.utf8); u64(UInt64(u.count)); bytes.append(contentsOf: u) }
    mutating func pad(to alignment: Int) {
        let n = (bytes.count + alignment - 1) / alignment * alignment - bytes.count
        bytes.append(contentsOf: [UInt8](repeating: 0, count: n))
    }

    mutating func value(_ v: GGUFValue, context: String) throws {
        switch v {
        case .uint8(let x): int(x)
        case .int8(let x): int(x)
        case .uint16(let x): int(x)
        case .int16(let x): int(x)
        case .uint32(let x): int(x)
        case .int32(let x): int(x)
        case .uint64(let x): int(x)
        case .int64(let x): int(x)
        case .float32(let x): int(x.bitPattern)
        case .float64(let x): int(x.bitPattern)
        case .bool(let b): bytes.append(b ? 1 : 0)
        case .string(let s): string(s)
        case .array(let type, let items):
            u32(type.rawValue)
            u64(UInt64(items.count))
            for item in items {
                guard item.type == type else {
                    throw GGUFError(.malformed, file: "", context: context, "an array of \(type) holds a \(item.type) value")
                }
                try value(item, context: context)
            }
        }
    }
}
