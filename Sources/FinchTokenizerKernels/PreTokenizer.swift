import Foundation

/// How a text segment is cut into words before BPE: hand-written scanners equal to the regular expressions
/// the real tokenizers use (Oniguruma in `tokenizers`, llama.cpp's `unicode.cpp`).
public enum PreTokenizerKind: String, Sendable, Equatable {
    /// GPT-2's `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` (ByteLevel use_regex).
    case gpt2
    /// Llama 3's `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`.
    case llama3
    /// Qwen2: the Llama 3 pattern with `\p{N}` (single digits).
    case qwen2
    /// SmolLM / StarCoder: `Digits(individual_digits: true)` then the GPT-2 pattern on what lies between.
    case gpt2Digits
    /// No cut: the whole segment is one word (SentencePiece-style BPE without a pre-tokenizer).
    case none
    /// Metaspace with `split: true`: a new word before every "▁".
    case metaspaceSplit

    public static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    public static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    public static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
}

public enum PreTokenizer {
    /// Appends the end offset of every word of `p[start..<end]` to `ends` (words are contiguous).
    public static func split(_ kind: PreTokenizerKind, _ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, into ends: inout [Int]) {
        guard start < end else { return }
        CharClass.bmp.withUnsafeBufferPointer { tb in
            let t = tb.baseAddress!
            switch kind {
            case .gpt2: gpt2(p, start, end, t, &ends)
            case .llama3: llama3(p, start, end, t, 3, &ends)
            case .qwen2: llama3(p, start, end, t, 1, &ends)
            case .gpt2Digits: digitsThen(p, start, end, t, &ends)
            case .none: ends.append(end)
            case .metaspaceSplit: metaspace(p, start, end, &ends)
            }
        }
    }

    @inline(__always)
    public static func cls(_ p: UnsafePointer<UInt8>, _ t: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> (UInt8, Int) {
        let b = p[i]
        if b < 0x80 { return (t[Int(b)], 1) }
        let (s, n) = decodeScalar(p, i, end)
        return (s < 0x10000 ? t[Int(s)] : CharClass.compute(s), n)
    }

    /// Length of a contraction at `i` ('s 't 'm 'd 're 've 'll), 0 when none.
    @inline(__always)
    public static func contraction(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int, caseless: Bool) -> Int {
        guard p[i] == 0x27, i + 1 < end else { return 0 }
        var c1 = p[i + 1]
        if caseless, c1 >= 0x41, c1 <= 0x5A { c1 |= 0x20 }
        if c1 == 0x73 || c1 == 0x74 || c1 == 0x6D || c1 == 0x64 { return 2 }   // s t m d
        guard i + 2 < end else { return 0 }
        var c2 = p[i + 2]
        if caseless, c2 >= 0x41, c2 <= 0x5A { c2 |= 0x20 }
        if (c1 == 0x72 && c2 == 0x65) || (c1 == 0x76 && c2 == 0x65) || (c1 == 0x6C && c2 == 0x6C) { return 3 }  // re ve ll
        return 0
    }

    @inline(__always)
    public static func run(_ p: UnsafePointer<UInt8>, _ t: UnsafePointer<UInt8>, _ from: Int, _ end: Int, _ c: UInt8) -> Int {
        var j = from
        while j < end {
            let (c2, n2) = cls(p, t, j, end)
            if c2 != c { break }
            j += n2
        }
        return j
    }

    /// `\s+(?!\S)|\s+` from `i` (a whitespace character): the run minus its last character when a
    /// non-space follows and the run has more than one character.
    @inline(__always)
    public static func whitespace(_ p: UnsafePointer<UInt8>, _ t: UnsafePointer<UInt8>, _ i: Int, _ end: Int,
                           lastNewlineEnd: inout Int) -> Int {
        var j = i, last = i
        lastNewlineEnd = -1
        while j < end {
            let (c2, n2) = cls(p, t, j, end)
            if c2 != CharClass.space && c2 != CharClass.newline { break }
            if c2 == CharClass.newline { lastNewlineEnd = j + n2 }
            last = j
            j += n2
        }
        if j == end || last == i { return j }
        return last
    }

    public static func gpt2(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, _ t: UnsafePointer<UInt8>, _ out: inout [Int]) {
        var i = start
        var nl = 0
        while i < end {
            let k = contraction(p, i, end, caseless: false)
            if k > 0 { i += k; out.append(i); continue }
            let (c, n) = cls(p, t, i, end)
            if p[i] == 0x20 && i + 1 < end {
                let (c2, n2) = cls(p, t, i + 1, end)
                if c2 == CharClass.letter || c2 == CharClass.number || c2 == CharClass.other {
                    i = run(p, t, i + 1 + n2, end, c2); out.append(i); continue
                }
            }
            if c == CharClass.letter || c == CharClass.number || c == CharClass.other {
                i = run(p, t, i + n, end, c); out.append(i); continue
            }
            i = whitespace(p, t, i, end, lastNewlineEnd: &nl)
            out.append(i)
        }
    }

    public static func llama3(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, _ t: UnsafePointer<UInt8>,
                       _ maxDigits: Int, _ out: inout [Int]) {
        var i = start
        var nl = 0
        while i < end {
            let k = contraction(p, i, end, caseless: true)
            if k > 0 { i += k; out.append(i); continue }
            let (c, n) = cls(p, t, i, end)
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if c == CharClass.letter { i = run(p, t, i + n, end, c); out.append(i); continue }
            if (c == CharClass.space || c == CharClass.other) && i + n < end {
                let (c2, n2) = cls(p, t, i + n, end)
                if c2 == CharClass.letter { i = run(p, t, i + n + n2, end, c2); out.append(i); continue }
            }
            // \p{N}{1,maxDigits}
            if c == CharClass.number {
                var j = i + n, count = 1
                while j < end && count < maxDigits {
                    let (c2, n2) = cls(p, t, j, end)
                    if c2 != CharClass.number { break }
                    j += n2; count += 1
                }
                i = j; out.append(i); continue
            }
            //  ?[^\s\p{L}\p{N}]+[\r\n]*
            var from = -1
            if c == CharClass.other { from = i + n }
            else if p[i] == 0x20 && i + 1 < end {
                let (c2, n2) = cls(p, t, i + 1, end)
                if c2 == CharClass.other { from = i + 1 + n2 }
            }
            if from >= 0 {
                var j = run(p, t, from, end, CharClass.other)
                while j < end && (p[j] == 0x0A || p[j] == 0x0D) { j += 1 }
                i = j; out.append(i); continue
            }
            // \s*[\r\n]+ | \s+(?!\S) | \s+
            let j = whitespace(p, t, i, end, lastNewlineEnd: &nl)
            i = nl > 0 ? nl : j
            out.append(i)
        }
    }

    /// Digits(individual_digits) then GPT-2 on the stretches between digits.
    public static func digitsThen(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, _ t: UnsafePointer<UInt8>, _ out: inout [Int]) {
        var i = start, segment = start
        while i < end {
            let (c, n) = cls(p, t, i, end)
            if c == CharClass.number {
                if segment < i { gpt2(p, segment, i, t, &out) }
                i += n; out.append(i); segment = i
            } else {
                i += n
            }
        }
        if segment < end { gpt2(p, segment, end, t, &out) }
    }

    /// A word starts at every "▁" (E2 96 81), merged with what follows.
    public static func metaspace(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, _ out: inout [Int]) {
        var i = start + 1
        while i + 2 < end {
            if p[i] == 0xE2 && p[i + 1] == 0x96 && p[i + 2] == 0x81 { out.append(i); i += 3 } else { i += 1 }
        }
        out.append(end)
    }
}
