import Foundation

/// A small JSON reader for tokenizer.json. Foundation's dictionaries key by Swift `String`, which compares by
/// canonical equivalence ("Å" U+00C5 == "Å" U+212B) and would merge distinct vocabulary pieces; here objects
/// keep every key as written, in order.
/// Not FinchModel's `JSONValue`: that one keys objects by `String` (merging such pieces) and sits above FinchData.
indirect enum OrderedJSON {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([OrderedJSON])
    case object([(String, OrderedJSON)])

    subscript(key: String) -> OrderedJSON? {
        guard case .object(let pairs) = self else { return nil }
        let k = Array(key.utf8)
        for (name, v) in pairs where name.utf8.elementsEqual(k) { return v }
        return nil
    }
    var string: String? { if case .string(let s) = self { return s }; return nil }
    var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    var int: Int? { if case .number(let d) = self, let i = Int(exactly: d) { return i }; return nil }
    var array: [OrderedJSON]? { if case .array(let a) = self { return a }; return nil }
    var object: [(String, OrderedJSON)]? { if case .object(let o) = self { return o }; return nil }
    var isNull: Bool { if case .null = self { return true }; return false }

    /// Back to Foundation types (for small parts such as the post-processor).
    var foundation: Any {
        switch self {
        case .null: return NSNull()
        case .bool(let b): return b
        case .number(let d): return d
        case .string(let s): return s
        case .array(let a): return a.map { $0.foundation }
        case .object(let o):
            var d: [String: Any] = [:]
            for (k, v) in o { d[k] = v.foundation }
            return d
        }
    }
}

struct JSONReader {
    struct Failure: Error { let offset: Int; let message: String }

    static func parse(_ data: Data) throws -> OrderedJSON {
        try data.withUnsafeBytes { raw in
            let p = raw.bindMemory(to: UInt8.self)
            var r = JSONReader(p: p.baseAddress ?? UnsafePointer(bitPattern: 1)!, n: p.count)
            if r.n >= 3 && r.p[0] == 0xEF && r.p[1] == 0xBB && r.p[2] == 0xBF { r.i = 3 }
            let v = try r.value(depth: 0)
            r.skip()
            if r.i != r.n { throw Failure(offset: r.i, message: "trailing characters") }
            return v
        }
    }

    let p: UnsafePointer<UInt8>
    let n: Int
    var i = 0
    var scratch: [UInt8] = []

    init(p: UnsafePointer<UInt8>, n: Int) { self.p = p; self.n = n }

    mutating func skip() {
        while i < n, p[i] == 0x20 || p[i] == 0x0A || p[i] == 0x0D || p[i] == 0x09 { i += 1 }
    }

    mutating func value(depth: Int) throws -> OrderedJSON {
        guard depth < 200 else { throw Failure(offset: i, message: "nesting too deep") }
        skip()
        guard i < n else { throw Failure(offset: i, message: "unexpected end") }
        switch p[i] {
        case 0x7B: // {
            i += 1
            var pairs: [(String, OrderedJSON)] = []
            skip()
            if i < n && p[i] == 0x7D { i += 1; return .object(pairs) }
            while true {
                skip()
                guard i < n, p[i] == 0x22 else { throw Failure(offset: i, message: "expected a key") }
                let k = try string()
                skip()
                guard i < n, p[i] == 0x3A else { throw Failure(offset: i, message: "expected ':'") }
                i += 1
                pairs.append((k, try value(depth: depth + 1)))
                skip()
                guard i < n else { throw Failure(offset: i, message: "unexpected end") }
                if p[i] == 0x2C { i += 1; continue }
                if p[i] == 0x7D { i += 1; return .object(pairs) }
                throw Failure(offset: i, message: "expected ',' or '}'")
            }
        case 0x5B: // [
            i += 1
            var items: [OrderedJSON] = []
            skip()
            if i < n && p[i] == 0x5D { i += 1; return .array(items) }
            while true {
                items.append(try value(depth: depth + 1))
                skip()
                guard i < n else { throw Failure(offset: i, message: "unexpected end") }
                if p[i] == 0x2C { i += 1; continue }
                if p[i] == 0x5D { i += 1; return .array(items) }
                throw Failure(offset: i, message: "expected ',' or ']'")
            }
        case 0x22: return .string(try string())
        case 0x74: try literal("true"); return .bool(true)
        case 0x66: try literal("false"); return .bool(false)
        case 0x6E: try literal("null"); return .null
        default:
            let start = i
            while i < n, (p[i] >= 0x30 && p[i] <= 0x39) || p[i] == 0x2D || p[i] == 0x2B || p[i] == 0x2E || p[i] == 0x65 || p[i] == 0x45 { i += 1 }
            guard i > start, let d = Double(String(decoding: UnsafeBufferPointer(start: p + start, count: i - start), as: UTF8.self)) else {
                throw Failure(offset: start, message: "unexpected character")
            }
            return .number(d)
        }
    }

    mutating func literal(_ s: StaticString) throws {
        let len = s.utf8CodeUnitCount
        guard i + len <= n, memcmp(p + i, s.utf8Start, len) == 0 else { throw Failure(offset: i, message: "bad literal") }
        i += len
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= n else { throw Failure(offset: i, message: "short \\u escape") }
        var v: UInt32 = 0
        for k in 0..<4 {
            let c = p[i + k]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw Failure(offset: i + k, message: "bad \\u escape")
            }
            v = v << 4 | d
        }
        i += 4
        return v
    }

    mutating func string() throws -> String {
        i += 1 // opening quote
        let start = i
        while i < n && p[i] != 0x22 && p[i] != 0x5C { i += 1 }
        if i < n && p[i] == 0x22 {
            let s = String(decoding: UnsafeBufferPointer(start: p + start, count: i - start), as: UTF8.self)
            i += 1
            return s
        }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(start: p + start, count: i - start))
        while i < n {
            let c = p[i]
            if c == 0x22 { i += 1; return String(decoding: scratch, as: UTF8.self) }
            if c != 0x5C { scratch.append(c); i += 1; continue }
            i += 1
            guard i < n else { break }
            let e = p[i]; i += 1
            switch e {
            case 0x22: scratch.append(0x22)
            case 0x5C: scratch.append(0x5C)
            case 0x2F: scratch.append(0x2F)
            case 0x62: scratch.append(0x08)
            case 0x66: scratch.append(0x0C)
            case 0x6E: scratch.append(0x0A)
            case 0x72: scratch.append(0x0D)
            case 0x74: scratch.append(0x09)
            case 0x75:
                var v = try hex4()
                if v >= 0xD800 && v < 0xDC00, i + 6 <= n, p[i] == 0x5C, p[i + 1] == 0x75 {
                    let save = i
                    i += 2
                    let lo = try hex4()
                    if lo >= 0xDC00 && lo < 0xE000 { v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00) } else { i = save }
                }
                let scalar = Unicode.Scalar(v) ?? "\u{FFFD}"
                scratch.append(contentsOf: Array(String(scalar).utf8))
            default: throw Failure(offset: i - 1, message: "bad escape")
            }
        }
        throw Failure(offset: start, message: "unterminated string")
    }
}

/// A vocabulary key compared byte for byte (Swift `String` equality is canonical equivalence).
struct PieceKey: Hashable {
    let bytes: [UInt8]
    init(_ s: String) { bytes = Array(s.utf8) }
    init(bytes: [UInt8]) { self.bytes = bytes }
}
