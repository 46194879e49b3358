import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One tensor's entry in a GGUF file.
public struct GGUFTensorInfo: Equatable, Sendable {
    public let name: String
    /// ggml order: `shape[0]` is ne0, the contiguous row length (the reverse of PyTorch's order).
    public let shape: [Int]
    public let type: GGMLType
    /// Byte offset of the tensor's blocks from the start of the data section.
    public let offset: Int
    /// Bytes of block data (`elementCount / type.blockSize * type.typeSize`).
    public let byteCount: Int
    /// Product of `shape` (1 for a 0-dimensional tensor).
    public let elementCount: Int

    /// Elements per row (ne0).
    public var rowLength: Int { shape.first ?? 1 }
    /// Number of rows (product of ne1, ne2, ne3).
    public var rowCount: Int { elementCount / rowLength }
    /// Bytes per row of blocks.
    public var rowByteCount: Int { rowLength / type.blockSize * type.typeSize }
}

/// A GGUF (v2 or v3) file: parsed metadata and tensor directory, with tensor data memory-mapped.
///
/// The mapping lives as long as this object; buffers from ``bytes(of:)`` are valid only while it is alive.
public final class GGUFFile: @unchecked Sendable {
    public let url: URL
    /// Format version (2 or 3).
    public let version: Int
    /// Data alignment in bytes (`general.alignment`, default 32).
    public let alignment: Int
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    /// Byte offset of the data section in the file.
    public let dataOffset: Int
    /// File size in bytes.
    public let fileSize: Int

    private let tensorIndex: [String: Int]
    private let base: UnsafeRawPointer
    private let unmap: () -> Void

    /// Opens and parses `url`, mapping its data read-only. Throws ``GGUFError`` for any bad input.
    public convenience init(contentsOf url: URL) throws {
        let path = url.path
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            throw GGUFError(.io, file: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 {
            throw GGUFError(.io, file: path, "cannot stat: \(String(cString: strerror(errno)))")
        }
        if (st.st_mode & S_IFMT) != S_IFREG {
            throw GGUFError(.io, file: path, "not a regular file")
        }
        let size = Int(st.st_size)
        if size < 24 {
            throw GGUFError(.truncated, file: path, offset: 0, "file is \(size) bytes, too short for a GGUF header (24 bytes)")
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw GGUFError(.io, file: path, "cannot map \(size) bytes: \(String(cString: strerror(errno)))")
        }
        let mapped = UnsafeRawPointer(p)
        try self.init(url: url, base: mapped, count: size, unmap: { _ = munmap(p, size) })
    }

    /// Parses a GGUF image held in memory (copied); `name` stands in for the file name in errors.
    public convenience init(bytes: [UInt8], name: String = "<memory>") throws {
        let n = max(bytes.count, 1)
        let buf = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 64)
        bytes.withUnsafeBytes { if let b = $0.baseAddress { buf.copyMemory(from: b, byteCount: bytes.count) } }
        try self.init(url: URL(fileURLWithPath: name), base: UnsafeRawPointer(buf), count: bytes.count,
                      unmap: { buf.deallocate() })
    }

    private init(url: URL, base: UnsafeRawPointer, count: Int, unmap: @escaping () -> Void) throws {
        let layout: GGUFLayout
        do {
            layout = try GGUFParser.parse(base, count: count, file: url.path)
        } catch {
            unmap()
            throw error
        }
        self.url = url
        self.base = base
        self.unmap = unmap
        self.fileSize = count
        self.version = layout.version
        self.alignment = layout.alignment
        self.metadata = layout.metadata
        self.metadataKeys = layout.metadataKeys
        self.tensors = layout.tensors
        self.tensorIndex = layout.tensorIndex
        self.dataOffset = layout.dataOffset
    }

    deinit { unmap() }

    // MARK: Tensors

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The tensor's raw block data, in place in the mapping (valid while `self` is alive).
    /// Bounds were checked when the file was opened. A tensor info that is not this file's gives an empty buffer.
    public func bytes(of t: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        guard owns(t) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + dataOffset + t.offset, count: t.byteCount)
    }

    /// The tensor as `elementCount` floats, row-major (ne0 fastest), bit-exact with ggml / gguf-py.
    public func dequantize(_ t: GGUFTensorInfo, threads: Int = 0) throws -> [Float] {
        try [Float](unsafeUninitializedCapacity: t.elementCount) { buf, initialized in
            try dequantize(t, into: buf.baseAddress!, threads: threads)
            initialized = t.elementCount
        }
    }

    /// Dequantises into `into`, which must have room for `t.elementCount` floats.
    public func dequantize(_ t: GGUFTensorInfo, into: UnsafeMutablePointer<Float>, threads: Int = 0) throws {
        try checkOwned(t)
        do {
            try GGMLQuants.dequantize(t.type, bytes(of: t), count: t.elementCount, into: into, threads: threads)
        } catch let e as GGUFError {
            throw e.attributed(file: url.path, context: "tensor '\(t.name)'")
        }
    }

    /// Dequantises the tensor named `name`.
    public func dequantize(named name: String, threads: Int = 0) throws -> [Float] {
        guard let t = tensor(named: name) else {
            throw GGUFError(.malformed, file: url.path, context: "tensor '\(name)'", "no such tensor")
        }
        return try dequantize(t, threads: threads)
    }

    /// Guards against a `GGUFTensorInfo` from another file (its range could lie outside this mapping).
    private func checkOwned(_ t: GGUFTensorInfo) throws {
        guard owns(t) else {
            throw GGUFError(.malformed, file: url.path, context: "tensor '\(t.name)'", "tensor info does not belong to this file")
        }
    }

    private func owns(_ t: GGUFTensorInfo) -> Bool {
        guard let i = tensorIndex[t.name] else { return false }
        return tensors[i] == t
    }

    // MARK: Metadata

    public subscript(key: String) -> GGUFValue? { metadata[key] }
    public func value(_ key: String) -> GGUFValue? { metadata[key] }
    public func string(_ key: String) -> String? { metadata[key]?.string }
    public func int(_ key: String) -> Int? { metadata[key]?.int }
    public func double(_ key: String) -> Double? { metadata[key]?.double }
    public func float(_ key: String) -> Float? { metadata[key]?.float }
    public func bool(_ key: String) -> Bool? { metadata[key]?.bool }
    public func strings(_ key: String) -> [String]? { metadata[key]?.strings }
    public func ints(_ key: String) -> [Int]? { metadata[key]?.ints }
    public func floats(_ key: String) -> [Float]? { metadata[key]?.floats }

    /// `general.architecture`, e.g. "llama", "gemma3".
    public var architecture: String? { string("general.architecture") }

    /// An architecture-scoped key: `arch("context_length")` reads "<architecture>.context_length".
    public func arch(_ suffix: String) -> GGUFValue? {
        architecture.flatMap { metadata["\($0).\(suffix)"] }
    }
}
