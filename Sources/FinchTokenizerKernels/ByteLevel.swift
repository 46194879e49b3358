import Foundation

/// GPT-2's reversible byte ↔ printable-character map (`bytes_to_unicode`), used by byte-level BPE
/// vocabularies ("Ġ" is the space byte, "Ċ" the newline byte).
public enum ByteLevel {
    /// The character that stands for each byte.
    public static let byteToScalar: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable { table[b] = UInt32(b) } else { table[b] = 256 + n; n += 1 }
        }
        return table
    }()

    /// The byte a character stands for, -1 when it stands for none (index: scalar value < 512).
    public static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 512)
        for (b, s) in byteToScalar.enumerated() { table[Int(s)] = Int16(b) }
        return table
    }()

    /// The byte-level string of raw bytes ("Ġthe" for " the").
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(Unicode.Scalar(byteToScalar[Int(b)])!) }
        return String(s)
    }

    /// The raw bytes of a byte-level string; characters outside the map keep their own UTF-8 bytes
    /// (as the `tokenizers` ByteLevel decoder does).
    public static func decode(_ piece: String, into out: inout [UInt8]) {
        for s in piece.unicodeScalars {
            let v = s.value
            if v < 512, scalarToByte[Int(v)] >= 0 { out.append(UInt8(scalarToByte[Int(v)])) }
            else { out.append(contentsOf: Array(String(s).utf8)) }
        }
    }

    /// Raw bytes when every character is in the map, nil otherwise.
    public static func strictDecode(_ piece: String) -> [UInt8]? {
        var out: [UInt8] = []
        for s in piece.unicodeScalars {
            let v = s.value
            guard v < 512, scalarToByte[Int(v)] >= 0 else { return nil }
            out.append(UInt8(scalarToByte[Int(v)]))
        }
        return out
    }
}

/// Character classes the pre-tokenizer patterns use: `\p{L}`, `\p{N}`, `\s` (Unicode White_Space, as
/// Oniguruma and Rust's `char::is_whitespace`), `[\r\n]`, everything else.
public enum CharClass {
    public static let letter: UInt8 = 0, number: UInt8 = 1, space: UInt8 = 2, newline: UInt8 = 3, other: UInt8 = 4

    public static func compute(_ v: UInt32) -> UInt8 {
        if v == 0x0A || v == 0x0D { return newline }
        guard let s = Unicode.Scalar(v) else { return other }
        let p = s.properties
        if p.isWhitespace { return space }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return letter
        case .decimalNumber, .letterNumber, .otherNumber: return number
        default: return other
        }
    }

    /// Class of every BMP scalar (computed once, 64 KiB).
    public static let bmp: [UInt8] = {
        var t = [UInt8](repeating: other, count: 0x10000)
        for v in 0..<0x10000 where !(0xD800...0xDFFF).contains(v) { t[v] = compute(UInt32(v)) }
        return t
    }()

    /// Whether a scalar can change under NFC, alone or with what precedes it (a superset of NFC_Quick_Check
    /// ≠ Yes): marks, non-zero combining class, Hangul jamo, full composition exclusions.
    public static func nfcUnsafe(_ v: UInt32) -> Bool {
        guard v >= 0x300, let s = Unicode.Scalar(v) else { return false }
        if (0x1100...0x11FF).contains(v) { return true }
        let p = s.properties
        if p.canonicalCombiningClass.rawValue != 0 || p.isFullCompositionExclusion { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }

    public static let nfcUnsafeBMP: [Bool] = (0..<0x10000).map { nfcUnsafe(UInt32($0)) }

    @inline(__always) public static func of(_ v: UInt32) -> UInt8 {
        v < 0x10000 ? bmp[Int(v)] : compute(v)
    }
}

/// Decodes one UTF-8 scalar at `i` (input already validated as UTF-8 by Swift's String or checked by the
/// caller; malformed bytes decode as one-byte scalars U+FFFD so scanning always advances).
@inline(__always)
public func decodeScalar(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> (scalar: UInt32, length: Int) {
    let b0 = UInt32(p[i])
    if b0 < 0x80 { return (b0, 1) }
    if b0 >= 0xC2 && b0 < 0xE0 && i + 1 < end { return (((b0 & 0x1F) << 6) | (UInt32(p[i + 1]) & 0x3F), 2) }
    if b0 >= 0xE0 && b0 < 0xF0 && i + 2 < end {
        return (((b0 & 0x0F) << 12) | ((UInt32(p[i + 1]) & 0x3F) << 6) | (UInt32(p[i + 2]) & 0x3F), 3)
    }
    if b0 >= 0xF0 && b0 < 0xF5 && i + 3 < end {
        return (((b0 & 0x07) << 18) | ((UInt32(p[i + 1]) & 0x3F) << 12) | ((UInt32(p[i + 2]) & 0x3F) << 6)
                | (UInt32(p[i + 3]) & 0x3F), 4)
    }
    return (0xFFFD, 1)
}
