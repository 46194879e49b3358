/// A bounds-checked little-endian cursor over a byte buffer. Every read checks the remaining length
/// and throws ``GGUFError`` (kind `.truncated`) rather than reading past the end.
struct ByteReader {
    let base: UnsafeRawPointer
    let count: Int
    let file: String
    private(set) var position: Int = 0

    init(base: UnsafeRawPointer, count: Int, file: String) {
        self.base = base
        self.count = count
        self.file = file
    }

    var remaining: Int { count - position }

    func error(_ kind: GGUFError.Kind, at offset: Int? = nil, _ context: String? = nil, _ message: String) -> GGUFError {
        GGUFError(kind, file: file, offset: offset ?? position, context: context, message)
    }

    /// Throws unless `n` more bytes are available.
    func need(_ n: Int, _ what: @autoclosure () -> String, _ context: String? = nil) throws {
        if n < 0 || n > remaining {
            throw error(.truncated, context,
                        "file ends while reading \(what()) (needs \(n) bytes, \(remaining) left)")
        }
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String, _ context: String? = nil) throws -> T {
        try need(MemoryLayout<T>.size, what(), context)
        let v = base.loadUnaligned(fromByteOffset: position, as: T.self)
        position += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    mutating func u32(_ what: @autoclosure () -> String, _ context: String? = nil) throws -> UInt32 {
        try read(UInt32.self, what(), context)
    }

    /// A u64 count or length that must also fit in `Int`.
    mutating func u64AsInt(_ what: @autoclosure () -> String, _ context: String? = nil) throws -> Int {
        let at = position
        let v = try read(UInt64.self, what(), context)
        guard let i = Int(exactly: v), i >= 0 else {
            throw error(.malformed, at: at, context, "\(what()) \(v) is out of range")
        }
        return i
    }

    /// A GGUF string: u64 byte length then UTF-8 bytes (invalid UTF-8 is repaired with U+FFFD).
    mutating func string(_ what: @autoclosure () -> String, _ context: String? = nil) throws -> String {
        let at = position
        let n = try u64AsInt("length of \(what())", context)
        if n > remaining {
            throw error(.truncated, at: at, context,
                        "length \(n) of \(what()) runs past the end of the file (\(remaining) bytes left)")
        }
        let s = String(decoding: UnsafeRawBufferPointer(start: base + position, count: n), as: UTF8.self)
        position += n
        return s
    }

    mutating func skip(to offset: Int) { position = offset }
}
