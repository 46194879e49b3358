import Foundation
import FinchTokenizerKernels

/// Everything a `BPETokenizer` runs from, whatever file it came from (tokenizer.json or a GGUF vocabulary).
struct BPESpec {
    enum Prepend: Equatable {
        case never
        /// normalizer `Prepend(x)`: every non-empty segment.
        case always(String)
        /// Metaspace `prepend_scheme: always`: unless the segment already starts with the replacement.
        case unlessStarts(String)
        /// Metaspace `prepend_scheme: first`: only the segment at offset 0, unless it starts with the replacement.
        case firstUnlessStarts(String)
    }

    var pieces: [String] = []
    var merges: [(Int32, Int32)] = []
    var added: [AddedToken] = []
    /// Control ids beyond special added tokens (GGUF token_type control).
    var control: Set<Int32> = []
    var byteLevel = true
    var addPrefixSpace = false
    var preTokenizer: PreTokenizerKind = .gpt2
    var nfc = false
    var prepend: Prepend = .never
    /// Replacement of " " in the text (normalizer Replace(" ", "▁") or Metaspace), nil when none.
    var spaceReplacement: String? = nil
    var ignoreMerges = false
    var byteFallback = false
    var fuseUnk = false
    var unk: Int32 = -1
    /// Decoding: byte-level map, or SentencePiece style (replacement → " ", <0xNN> bytes).
    var decodeByteLevel = true
    var decodeReplacement: String? = nil
    var decodeByteFallback = false
    var decodeStripLeadingSpace = false
    /// Metaspace decoder: the first token's replacements vanish (`prepend_scheme` not never).
    var decodeFirstTokenDropsSpaces = false
    var bos = -1, eos = -1, pad = -1, eot = -1
    var addsBOS = false
}

/// Byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM/StarCoder) and SentencePiece-style BPE (Llama 2, TinyLlama,
/// Gemma) from a `tokenizer.json` or a GGUF vocabulary, giving the ids of the model's own runtime
/// (`tokenizers`; llama.cpp's test vectors).
///
/// Encoding cuts the text at added tokens, normalizes, pre-tokenizes with a hand-written scanner, and merges
/// each word with a pair-rank hash table; words are memoised (word bytes → ids). Thread-safe: each call
/// borrows a private workspace (cache + buffers) from a small pool.
public final class BPETokenizer: TextTokenizer, @unchecked Sendable {
    public let source: String
    public let fingerprint: String
    public let vocabSize: Int
    public let bosID: Int
    public let eosID: Int
    public let padID: Int
    public let unkID: Int
    /// End-of-turn id (GGUF `tokenizer.ggml.eot_token_id`, "<|eot_id|>", "<|im_end|>"), -1 when none.
    public let eotID: Int
    public let addsBOS: Bool
    /// The pre-tokenizer in use.
    public let preTokenizer: PreTokenizerKind
    /// The tokenizer.json bytes this tokenizer was loaded from (nil for a GGUF vocabulary).
    public let jsonBytes: Data?

    let spec: BPESpec
    let pieces: [String]
    let pieceIDs: [PieceKey: Int32]
    let controlFlags: [Bool]
    let merges: MergeTable
    let splitter: AddedTokenSplitter
    /// Byte-level: the id of each byte's character (-1 when absent).
    let byteSymbol: [Int32]
    /// SentencePiece style: the id of each single-scalar piece (BMP in a table, the rest in a dictionary).
    let scalarSymbol: [UInt32: Int32]
    let bmpSymbol: [Int32]
    /// `<0xNN>` ids (-1 when absent).
    let byteFallbackID: [Int32]
    /// Word bytes → id for `ignore_merges`.
    let rawVocab: [[UInt8]: Int32]
    /// What each id decodes to (control ids included; `decode` skips them).
    let tokenBytes: [[UInt8]]
    let spaceReplacementBytes: [UInt8]
    let prependBytes: [UInt8]

    private let poolLock = NSLock()
    private var pool: [Workspace] = []

    final class Workspace {
        let cache = WordCache()
        var ends: [Int] = []
        var sym: [Int32] = []
        var buffer: [UInt8] = []
        init() { ends.reserveCapacity(1024); sym.reserveCapacity(256) }
    }

    init(spec: BPESpec, source: String, fingerprint: String, jsonBytes: Data?) throws {
        self.spec = spec
        self.source = source
        self.fingerprint = fingerprint
        self.jsonBytes = jsonBytes
        var pieces = spec.pieces
        for t in spec.added where Int(t.id) >= pieces.count {
            pieces.append(contentsOf: [String](repeating: "", count: Int(t.id) - pieces.count + 1))
        }
        var ids = [PieceKey: Int32](minimumCapacity: pieces.count)
        for (i, p) in spec.pieces.enumerated() where ids[PieceKey(p)] == nil { ids[PieceKey(p)] = Int32(i) }
        for t in spec.added {
            if Int(t.id) >= spec.pieces.count || pieces[Int(t.id)].isEmpty { pieces[Int(t.id)] = t.content }
            ids[PieceKey(t.content)] = t.id
        }
        self.pieces = pieces
        self.pieceIDs = ids
        vocabSize = pieces.count
        var control = [Bool](repeating: false, count: pieces.count)
        for t in spec.added where t.special { control[Int(t.id)] = true }
        for c in spec.control where Int(c) < control.count && c >= 0 { control[Int(c)] = true }
        controlFlags = control
        preTokenizer = spec.preTokenizer

        var table = MergeTable(capacity: spec.merges.count)
        var mergedIDs: [Int32] = []
        mergedIDs.reserveCapacity(spec.merges.count)
        for (rank, m) in spec.merges.enumerated() {
            let merged = spec.pieces[Int(m.0)] + spec.pieces[Int(m.1)]
            guard let id = ids[PieceKey(merged)] else {
                throw BPETokenizerError.invalid(path: source, key: "model.merges[\(rank)]",
                                                message: "merge result \"\(merged)\" is not in the vocabulary")
            }
            table.insert(left: m.0, right: m.1, rank: Int32(rank), merged: id)
        }
        merges = table

        var bs = [Int32](repeating: -1, count: 256)
        if spec.byteLevel {
            for b in 0..<256 {
                let s = String(Unicode.Scalar(ByteLevel.byteToScalar[b])!)
                if let id = ids[PieceKey(s)] { bs[b] = id }
            }
        }
        byteSymbol = bs
        var ss: [UInt32: Int32] = [:]
        if !spec.byteLevel {
            for (i, p) in spec.pieces.enumerated() {
                let u = p.unicodeScalars
                if u.count == 1, ss[u.first!.value] == nil { ss[u.first!.value] = Int32(i) }
            }
            // the id the vocabulary map gives wins (later duplicates lose, as in the dictionary above)
            for (s, _) in ss { if let id = ids[PieceKey(String(Unicode.Scalar(s)!))] { ss[s] = id } }
        }
        scalarSymbol = ss
        var bmp = [Int32](repeating: -1, count: spec.byteLevel ? 0 : 0x10000)
        if !spec.byteLevel { for (k, v) in ss where k < 0x10000 { bmp[Int(k)] = v } }
        bmpSymbol = bmp
        var fb = [Int32](repeating: -1, count: 256)
        for b in 0..<256 { if let id = ids[PieceKey(String(format: "<0x%02X>", b))] { fb[b] = id } }
        byteFallbackID = fb

        var raw: [[UInt8]: Int32] = [:]
        if spec.ignoreMerges {
            for (i, p) in spec.pieces.enumerated() {
                let key = spec.byteLevel ? ByteLevel.strictDecode(p) : Array(p.utf8)
                if let key, raw[key] == nil, ids[PieceKey(p)] == Int32(i) { raw[key] = Int32(i) }
            }
        }
        rawVocab = raw

        var tb = [[UInt8]]()
        tb.reserveCapacity(pieces.count)
        let repl = spec.decodeReplacement
        for p in pieces {
            var out: [UInt8] = []
            if spec.decodeByteLevel {
                ByteLevel.decode(p, into: &out)
            } else if spec.decodeByteFallback, let b = BPETokenizer.byteFallbackValue(p) {
                out = [b]
            } else if let repl {
                out = Array(p.replacingOccurrences(of: repl, with: " ").utf8)
            } else {
                out = Array(p.utf8)
            }
            tb.append(out)
        }
        tokenBytes = tb
        spaceReplacementBytes = spec.spaceReplacement.map { Array($0.utf8) } ?? []
        switch spec.prepend {
        case .never: prependBytes = []
        case .always(let s), .unlessStarts(let s), .firstUnlessStarts(let s): prependBytes = Array(s.utf8)
        }
        splitter = AddedTokenSplitter(spec.added)

        func find(_ names: [String]) -> Int { for n in names { if let i = ids[PieceKey(n)] { return Int(i) } }; return -1 }
        bosID = spec.bos >= 0 ? spec.bos : find(["<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>"])
        eosID = spec.eos >= 0 ? spec.eos : find(["<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>"])
        padID = spec.pad
        unkID = Int(spec.unk)
        eotID = spec.eot >= 0 ? spec.eot : find(["<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>"])
        addsBOS = spec.addsBOS && bosID >= 0
    }

    static func byteFallbackValue(_ p: String) -> UInt8? {
        let u = Array(p.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        func hex(_ c: UInt8) -> UInt8? {
            switch c { case 0x30...0x39: return c - 0x30; case 0x41...0x46: return c - 0x41 + 10; default: return nil }
        }
        guard let h = hex(u[3]), let l = hex(u[4]) else { return nil }
        return h << 4 | l
    }

    // MARK: TextTokenizer

    public func piece(_ id: Int) -> String? { id >= 0 && id < pieces.count ? pieces[id] : nil }
    public func id(of piece: String) -> Int? { pieceIDs[PieceKey(piece)].map(Int.init) }
    public func isControl(_ id: Int) -> Bool { id >= 0 && id < controlFlags.count && controlFlags[id] }
    /// The added tokens (tokenizer.json `added_tokens`; GGUF control and user-defined tokens).
    public var addedTokens: [AddedToken] { spec.added }

    public func encode(_ text: String) throws -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(text.utf8.count / 3 + 4)
        var t = text
        try t.withUTF8 { try encode(utf8: UnsafeRawBufferPointer($0), appendingTo: &ids) }
        return ids
    }

    private func borrow() -> Workspace {
        poolLock.lock(); defer { poolLock.unlock() }
        return pool.popLast() ?? Workspace()
    }

    private func giveBack(_ w: Workspace) {
        poolLock.lock(); defer { poolLock.unlock() }
        if pool.count < 8 { pool.append(w) }
    }

    /// Forgets memoised words (benchmarks measure a cold cache).
    public func clearCache() {
        poolLock.lock(); defer { poolLock.unlock() }
        pool.removeAll()
    }

    public func encode(utf8 bytes: UnsafeRawBufferPointer, appendingTo ids: inout [Int32]) throws {
        guard bytes.count > 0, let base = bytes.baseAddress else { return }
        let p = base.assumingMemoryBound(to: UInt8.self)
        let w = borrow()
        defer { giveBack(w) }
        try merges.withView { m in
            try splitter.split(p, bytes.count) { piece in
                switch piece {
                case .token(let id): ids.append(id)
                case .text(let s, let e): try encodeSegment(p, s, e, w, m, &ids)
                }
            }
        }
    }

    /// A stretch of text between added tokens: normalize, pre-tokenize, merge.
    private func encodeSegment(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, _ w: Workspace, _ m: MergeTable.View,
                               _ ids: inout [Int32]) throws {
        if spec.nfc && BPETokenizer.mayNeedNFC(p, s, e) {
            let str = String(decoding: UnsafeBufferPointer(start: p + s, count: e - s), as: UTF8.self)
            var nfc = Array(str.precomposedStringWithCanonicalMapping.utf8)
            try nfc.withUnsafeMutableBufferPointer { b in
                try encodeWords(UnsafePointer(b.baseAddress!), 0, b.count, w, m, &ids)
            }
            return
        }
        if spec.byteLevel && spec.addPrefixSpace && p[s] != 0x20 {
            var buf = [UInt8](repeating: 0x20, count: 1)
            buf.append(contentsOf: UnsafeBufferPointer(start: p + s, count: e - s))
            try buf.withUnsafeBufferPointer { try encodeWords($0.baseAddress!, 0, $0.count, w, m, &ids) }
            return
        }
        if !spec.byteLevel && (spec.prepend != .never || spec.spaceReplacement != nil) {
            var buf = w.buffer
            buf.removeAll(keepingCapacity: true)
            let rep = spaceReplacementBytes
            let startsWithSpace = p[s] == 0x20 && !rep.isEmpty
            var startsWithReplacement = startsWithSpace
            if !startsWithReplacement && !prependBytes.isEmpty && e - s >= prependBytes.count {
                startsWithReplacement = memcmp(p + s, prependBytes, prependBytes.count) == 0
            }
            switch spec.prepend {
            case .never: break
            case .always: buf.append(contentsOf: prependBytes)
            case .unlessStarts: if !startsWithReplacement { buf.append(contentsOf: prependBytes) }
            case .firstUnlessStarts: if !startsWithReplacement && s == 0 { buf.append(contentsOf: prependBytes) }
            }
            if rep.isEmpty {
                buf.append(contentsOf: UnsafeBufferPointer(start: p + s, count: e - s))
            } else {
                for i in s..<e { if p[i] == 0x20 { buf.append(contentsOf: rep) } else { buf.append(p[i]) } }
            }
            w.buffer = []
            try buf.withUnsafeBufferPointer { try encodeWords($0.baseAddress!, 0, $0.count, w, m, &ids) }
            w.buffer = buf
            return
        }
        try encodeWords(p, s, e, w, m, &ids)
    }

    /// Whether the bytes hold a scalar NFC may change (see `CharClass.nfcUnsafe`); otherwise the text is NFC.
    static func mayNeedNFC(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> Bool {
        var i = s
        while i < e {
            if p[i] < 0xCC { i += 1; continue }
            let (v, n) = decodeScalar(p, i, e)
            if v < 0x10000 ? CharClass.nfcUnsafeBMP[Int(v)] : CharClass.nfcUnsafe(v) { return true }
            i += n
        }
        return false
    }

    private func encodeWords(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, _ w: Workspace, _ m: MergeTable.View,
                             _ ids: inout [Int32]) throws {
        guard s < e else { return }
        w.ends.removeAll(keepingCapacity: true)
        PreTokenizer.split(spec.preTokenizer, p, s, e, into: &w.ends)
        var a = s
        let cache = w.cache
        for b in w.ends {
            let n = b - a
            if n <= WordCache.maxWordBytes {
                let h = WordCache.hash(p + a, n)
                if cache.lookup(p + a, n, h, into: &ids) { a = b; continue }
                let before = ids.count
                try encodeWord(p, a, b, w, m, &ids)
                cache.insert(p + a, n, h, ids[before...])
            } else {
                try encodeWord(p, a, b, w, m, &ids)
            }
            a = b
        }
    }

    /// One word: initial symbols, then merges.
    private func encodeWord(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, _ w: Workspace, _ m: MergeTable.View,
                            _ ids: inout [Int32]) throws {
        if spec.ignoreMerges, let id = rawVocab[Array(UnsafeBufferPointer(start: p + s, count: e - s))] {
            ids.append(id); return
        }
        var sym = w.sym
        w.sym = []
        sym.removeAll(keepingCapacity: true)
        defer { w.sym = sym }
        if spec.byteLevel {
            var ok = true
            byteSymbol.withUnsafeBufferPointer { t in
                for i in s..<e {
                    let id = t[Int(p[i])]
                    if id < 0 { ok = false; break }
                    sym.append(id)
                }
            }
            if !ok {
                sym.removeAll(keepingCapacity: true)
                var i = s
                while i < e {
                    let id = byteSymbol[Int(p[i])]
                    if id >= 0 { sym.append(id) } else { try unknown(p, i, i + 1, &sym) }
                    i += 1
                }
            }
        } else {
            var i = s
            var lastUnk = false
            while i < e {
                let (v, n) = decodeScalar(p, i, e)
                let known = v < 0x10000 ? bmpSymbol[Int(v)] : (scalarSymbol[v] ?? -1)
                if known >= 0 {
                    sym.append(known); lastUnk = false
                } else {
                    var done = false
                    if spec.byteFallback {
                        var all = true
                        for k in i..<(i + n) where byteFallbackID[Int(p[k])] < 0 { all = false }
                        if all { for k in i..<(i + n) { sym.append(byteFallbackID[Int(p[k])]) }; done = true; lastUnk = false }
                    }
                    if !done {
                        guard spec.unk >= 0 else {
                            throw BPETokenizerError.encode(source: source, message: "character U+\(String(v, radix: 16, uppercase: true)) is not in the vocabulary and there is no unk token")
                        }
                        if !(spec.fuseUnk && lastUnk) { sym.append(spec.unk) }
                        lastUnk = true
                    }
                }
                i += n
            }
        }
        if sym.count > 48 { BPEMerge.mergeLong(&sym, m) } else { BPEMerge.mergeShort(&sym, m) }
        ids.append(contentsOf: sym)
    }

    private func unknown(_ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int, _ sym: inout [Int32]) throws {
        if spec.byteFallback {
            var all = true
            for k in s..<e where byteFallbackID[Int(p[k])] < 0 { all = false }
            if all { for k in s..<e { sym.append(byteFallbackID[Int(p[k])]) }; return }
        }
        guard spec.unk >= 0 else {
            throw BPETokenizerError.encode(source: source, message: "byte 0x\(String(p[s], radix: 16)) has no token and there is no unk token")
        }
        if !(spec.fuseUnk && sym.last == spec.unk) { sym.append(spec.unk) }
    }

    // MARK: decoding

    /// The bytes an id stands for in decoded text (empty for control ids when `skipControl`).
    public func bytes(of id: Int32, skipControl: Bool = true) -> [UInt8] {
        let i = Int(id)
        guard i >= 0 && i < tokenBytes.count else { return [] }
        if skipControl && controlFlags[i] { return [] }
        return tokenBytes[i]
    }

    /// Whether decoding drops one leading space of the text (SentencePiece-style decoders).
    public var decodeStripsLeadingSpace: Bool { spec.decodeStripLeadingSpace }

    public func decodeIDs(_ ids: [Int32]) throws -> String {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 4)
        var first = true
        for id in ids {
            guard id >= 0 && Int(id) < tokenBytes.count else {
                throw BPETokenizerError.encode(source: source, message: "id \(id) is out of range 0..<\(tokenBytes.count)")
            }
            if controlFlags[Int(id)] { continue }
            let b = tokenBytes[Int(id)]
            if first && spec.decodeFirstTokenDropsSpaces { out.append(contentsOf: b.filter { $0 != 0x20 }) }
            else if first && spec.decodeStripLeadingSpace && b.first == 0x20 { out.append(contentsOf: b.dropFirst()) }
            else { out.append(contentsOf: b) }
            if spec.decodeFirstTokenDropsSpaces || !b.isEmpty { first = false }
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: saving

    public func save(toFolder folder: URL) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let data = try jsonBytes ?? tokenizerJSON()
        try data.write(to: folder.appendingPathComponent("tokenizer.json"), options: .atomic)
    }
}
