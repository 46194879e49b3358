import FinchGGUF
import Foundation
import FinchTokenizerKernels

/// A GGUF byte-level BPE vocabulary (`tokenizer.ggml.model` = "gpt2") as plain arrays.
public struct GGUFBPEVocabulary: Sendable {
    public var tokens: [String]
    /// llama.cpp token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    public var types: [Int32]
    /// "a b" pairs, rank = index.
    public var merges: [String]
    /// `tokenizer.ggml.pre`.
    public var pre: String
    public var bosID = -1, eosID = -1, unkID = -1, padID = -1, eotID = -1
    /// `tokenizer.ggml.add_bos_token`; nil = llama.cpp's default for `pre`.
    public var addBOS: Bool? = nil

    public init(tokens: [String], types: [Int32], merges: [String], pre: String) {
        self.tokens = tokens; self.types = types; self.merges = merges; self.pre = pre
    }

    /// Reads the `tokenizer.ggml.*` keys of a GGUF file.
    public init(gguf: GGUFFile) throws {
        let path = gguf.url.path
        let model = gguf.string("tokenizer.ggml.model")
        guard model == "gpt2" else {
            throw BPETokenizerError.unsupported(path: path, key: "tokenizer.ggml.model",
                                                what: "tokenizer model \"\(model ?? "(missing)")\" for BPETokenizer (only \"gpt2\")")
        }
        guard let tokens = gguf.strings("tokenizer.ggml.tokens") else {
            throw BPETokenizerError.invalid(path: path, key: "tokenizer.ggml.tokens", message: "missing or not a string array")
        }
        let types = gguf.ints("tokenizer.ggml.token_type").map { $0.map { Int32(truncatingIfNeeded: $0) } }
            ?? [Int32](repeating: 1, count: tokens.count)
        guard let merges = gguf.strings("tokenizer.ggml.merges") else {
            throw BPETokenizerError.invalid(path: path, key: "tokenizer.ggml.merges", message: "missing or not a string array")
        }
        self.init(tokens: tokens, types: types, merges: merges, pre: gguf.string("tokenizer.ggml.pre") ?? "default")
        func id(_ k: String) -> Int { gguf.int("tokenizer.ggml.\(k)") ?? -1 }
        bosID = id("bos_token_id"); eosID = id("eos_token_id"); unkID = id("unknown_token_id")
        padID = id("padding_token_id"); eotID = id("eot_token_id")
        addBOS = gguf.bool("tokenizer.ggml.add_bos_token")
    }

    /// llama.cpp's `tokenizer.ggml.pre` names (src/llama-vocab.cpp) → Finch's pre-tokenizer, whether merges
    /// are skipped for whole-vocabulary words, and llama.cpp's default for adding BOS.
    public static func preTokenizer(for pre: String) -> (kind: PreTokenizerKind, ignoreMerges: Bool, addBOS: Bool)? {
        switch pre {
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano":
            return (.llama3, true, true)
        case "dbrx", "smaug-bpe":
            return (.llama3, false, false)
        case "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "hunyuan", "solar-open":
            return (.qwen2, false, false)
        case "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2":
            return (.gpt2Digits, false, false)
        case "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
             "modern-bert", "mpt", "olmo", "jais", "trillion", "granite-docling":
            return (.gpt2, false, false)
        default:
            return nil
        }
    }
}

extension BPETokenizer {
    /// A byte-level BPE tokenizer from a GGUF file's vocabulary (`tokenizer.ggml.model` = "gpt2").
    public convenience init(gguf: GGUFFile) throws {
        try self.init(vocabulary: GGUFBPEVocabulary(gguf: gguf), source: gguf.url.path)
    }

    /// A byte-level BPE tokenizer from GGUF vocabulary arrays. Control (3) and user-defined (4) tokens are
    /// matched in text as added tokens (control ones are special).
    public convenience init(vocabulary v: GGUFBPEVocabulary, source: String) throws {
        guard let (kind, ignoreMerges, addBOSDefault) = GGUFBPEVocabulary.preTokenizer(for: v.pre) else {
            throw BPETokenizerError.unsupported(path: source, key: "tokenizer.ggml.pre", what: "pre-tokenizer \"\(v.pre)\"")
        }
        guard v.types.count == v.tokens.count else {
            throw BPETokenizerError.invalid(path: source, key: "tokenizer.ggml.token_type",
                                            message: "\(v.types.count) types for \(v.tokens.count) tokens")
        }
        var spec = BPESpec()
        spec.pieces = v.tokens
        var ids = [PieceKey: Int32](minimumCapacity: v.tokens.count)
        for (i, t) in v.tokens.enumerated() where ids[PieceKey(t)] == nil { ids[PieceKey(t)] = Int32(i) }
        spec.merges.reserveCapacity(v.merges.count)
        for (i, m) in v.merges.enumerated() {
            let u = Array(m.utf8)
            guard u.count >= 3, let sp = u[1...].firstIndex(of: 0x20) else {
                throw BPETokenizerError.invalid(path: source, key: "tokenizer.ggml.merges[\(i)]", message: "\"\(m)\" is not \"a b\"")
            }
            let a = String(decoding: u[..<sp], as: UTF8.self), b = String(decoding: u[(sp + 1)...], as: UTF8.self)
            guard let ia = ids[PieceKey(a)], let ib = ids[PieceKey(b)] else {
                throw BPETokenizerError.invalid(path: source, key: "tokenizer.ggml.merges[\(i)]",
                                                message: "token \"\(ids[PieceKey(a)] == nil ? a : b)\" is not in tokenizer.ggml.tokens")
            }
            guard ids[PieceKey(a + b)] != nil else {
                throw BPETokenizerError.invalid(path: source, key: "tokenizer.ggml.merges[\(i)]",
                                                message: "merged token \"\(a + b)\" is not in tokenizer.ggml.tokens")
            }
            spec.merges.append((ia, ib))
        }
        for (i, t) in v.types.enumerated() where t == 3 || t == 4 {
            spec.added.append(AddedToken(id: Int32(i), content: v.tokens[i], special: t == 3))
            if t == 3 { spec.control.insert(Int32(i)) }
        }
        spec.byteLevel = true
        spec.preTokenizer = kind
        spec.ignoreMerges = ignoreMerges
        // Hugging Face normalizes these to NFC (Qwen2, GPT-NeoX/MPT tokenizer.json).
        spec.nfc = kind == .qwen2 || v.pre == "mpt" || v.pre == "command-r"
        spec.decodeByteLevel = true
        spec.unk = Int32(v.unkID >= 0 && v.unkID < v.tokens.count ? v.unkID : -1)
        let valid = { (i: Int) in i >= 0 && i < v.tokens.count ? i : -1 }
        spec.bos = valid(v.bosID); spec.eos = valid(v.eosID); spec.pad = valid(v.padID); spec.eot = valid(v.eotID)
        spec.addsBOS = v.addBOS ?? addBOSDefault

        var h = SHA256()
        func add(_ s: String) { h.update(Data(s.utf8)); h.update(Data([0])) }
        add("finch-gguf-bpe-v1"); add(v.pre)
        add("\(v.bosID),\(v.eosID),\(v.unkID),\(v.padID),\(v.eotID),\(spec.addsBOS)")
        for (t, ty) in zip(v.tokens, v.types) { add(t); add(String(ty)) }
        for m in v.merges { add(m) }
        try self.init(spec: spec, source: source, fingerprint: h.finalizeHex(), jsonBytes: nil)
    }

    /// A `tokenizer.json` equal to this tokenizer (what `save(toFolder:)` writes for a GGUF vocabulary).
    public func tokenizerJSON() throws -> Data {
        if let jsonBytes { return jsonBytes }
        let s = spec
        guard s.byteLevel else {
            throw BPETokenizerError.unsupported(path: source, key: "tokenizer.json", what: "synthesis of a non-byte-level tokenizer")
        }
        var vocab: [String: Int] = [:]
        var seen: [PieceKey: Int] = [:]
        for (i, p) in s.pieces.enumerated() {
            if let j = seen.updateValue(i, forKey: PieceKey(p)) {
                throw BPETokenizerError.invalid(path: source, key: "tokenizer.ggml.tokens[\(i)]",
                                                message: "\"\(p)\" repeats id \(j): tokenizer.json cannot hold it")
            }
            vocab[p] = i
        }
        let merges = s.merges.map { [s.pieces[Int($0.0)], s.pieces[Int($0.1)]] }
        func byteLevel(_ regex: Bool) -> [String: Any] {
            ["type": "ByteLevel", "add_prefix_space": s.addPrefixSpace, "trim_offsets": true, "use_regex": regex]
        }
        func split(_ pattern: String) -> [String: Any] {
            ["type": "Split", "pattern": ["Regex": pattern], "behavior": "Isolated", "invert": false]
        }
        let pre: Any
        switch s.preTokenizer {
        case .gpt2: pre = byteLevel(true)
        case .gpt2Digits: pre = ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel(true)]]
        case .llama3: pre = ["type": "Sequence", "pretokenizers": [split(PreTokenizerKind.llama3Pattern), byteLevel(false)]]
        case .qwen2: pre = ["type": "Sequence", "pretokenizers": [split(PreTokenizerKind.qwen2Pattern), byteLevel(false)]]
        case .none, .metaspaceSplit:
            throw BPETokenizerError.unsupported(path: source, key: "pre_tokenizer", what: "synthesis for \(s.preTokenizer)")
        }
        var post: Any = NSNull()
        if s.addsBOS, bosID >= 0, let name = piece(bosID) {
            let bos: [String: Any] = ["SpecialToken": ["id": name, "type_id": 0]]
            post = ["type": "TemplateProcessing",
                    "single": [bos, ["Sequence": ["id": "A", "type_id": 0]]],
                    "pair": [bos, ["Sequence": ["id": "A", "type_id": 0]], bos, ["Sequence": ["id": "B", "type_id": 1]]],
                    "special_tokens": [name: ["id": name, "ids": [bosID], "tokens": [name]]]] as [String: Any]
        }
        let added: [[String: Any]] = s.added.map {
            ["id": Int($0.id), "content": $0.content, "single_word": $0.singleWord, "lstrip": $0.lstrip,
             "rstrip": $0.rstrip, "normalized": $0.normalized, "special": $0.special]
        }
        let root: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": added,
            "normalizer": s.nfc ? ["type": "NFC"] as Any : NSNull(),
            "pre_tokenizer": pre,
            "post_processor": post,
            "decoder": byteLevel(true),
            "model": ["type": "BPE", "dropout": NSNull(), "unk_token": s.unk >= 0 ? s.pieces[Int(s.unk)] as Any : NSNull(),
                      "continuing_subword_prefix": NSNull(), "end_of_word_suffix": NSNull(), "fuse_unk": false,
                      "byte_fallback": false, "ignore_merges": s.ignoreMerges, "vocab": vocab, "merges": merges] as [String: Any],
        ]
        return try JSONSerialization.data(withJSONObject: root, options: [])
    }
}

extension GGUFBPEVocabulary {
    /// llama.cpp's `tokenizer.ggml.pre` name for a Finch pre-tokenizer: the inverse of `preTokenizer(for:)` (for a
    /// name that several models share, the one whose rules are the same in llama.cpp).
    public static func preName(kind: PreTokenizerKind, ignoreMerges: Bool, nfc: Bool) -> String? {
        switch kind {
        case .llama3: return ignoreMerges ? "llama-bpe" : "smaug-bpe"
        case .qwen2: return "qwen2"
        case .gpt2Digits: return nfc ? "command-r" : "smollm"
        case .gpt2: return nfc ? "mpt" : "gpt-2"
        default: return nil
        }
    }
}

extension BPETokenizer {
    /// This tokenizer as llama.cpp's byte-level BPE vocabulary (`tokenizer.ggml.model` = "gpt2"): the pieces by id,
    /// their types (special added tokens → control, other added tokens → user-defined, ids with no piece → unused
    /// "[PADn]"), the merges as "a b" and the pre-tokenizer's llama.cpp name. Throws for what llama.cpp's gpt2 model
    /// cannot express: SentencePiece-style BPE (Metaspace, byte fallback), a ByteLevel `add_prefix_space`, a
    /// pre-tokenizer it does not have, or added tokens matched with `single_word`, `lstrip` or `rstrip`.
    public func ggufVocabulary() throws -> GGUFBPEVocabulary {
        let s = spec
        func refuse(_ what: String) -> BPETokenizerError {
            .unsupported(path: source, key: "tokenizer.json", what: "\(what) in a GGUF vocabulary (llama.cpp's byte-level BPE cannot express it)")
        }
        guard s.byteLevel, s.spaceReplacement == nil, s.prepend == .never, !s.byteFallback else {
            throw refuse("a SentencePiece-style BPE tokenizer (Metaspace / byte fallback)")
        }
        guard !s.addPrefixSpace else { throw refuse("ByteLevel add_prefix_space") }
        guard let pre = GGUFBPEVocabulary.preName(kind: s.preTokenizer, ignoreMerges: s.ignoreMerges, nfc: s.nfc),
              let back = GGUFBPEVocabulary.preTokenizer(for: pre), back.kind == s.preTokenizer, back.ignoreMerges == s.ignoreMerges else {
            throw refuse("the pre-tokenizer \(s.preTokenizer)\(s.ignoreMerges ? " with ignore_merges" : "")")
        }
        // GGUF keeps an added token's text and type only: llama.cpp would match these where tokenizers does not.
        if let t = s.added.first(where: { $0.singleWord || $0.lstrip || $0.rstrip }) {
            let flags = [("single_word", t.singleWord), ("lstrip", t.lstrip), ("rstrip", t.rstrip)].filter(\.1).map(\.0)
            throw refuse("the added token \"\(t.content)\" with \(flags.joined(separator: ", "))")
        }
        var tokens = pieces, types = [Int32](repeating: 1, count: pieces.count)
        for t in s.added { types[Int(t.id)] = t.special ? 3 : 4 }
        for c in s.control where Int(c) < types.count && c >= 0 { types[Int(c)] = 3 }
        for i in tokens.indices where tokens[i].isEmpty { tokens[i] = "[PAD\(i)]"; types[i] = 5 }
        var v = GGUFBPEVocabulary(tokens: tokens, types: types,
                                  merges: s.merges.map { s.pieces[Int($0.0)] + " " + s.pieces[Int($0.1)] }, pre: pre)
        v.bosID = bosID; v.eosID = eosID; v.unkID = unkID; v.padID = padID; v.eotID = eotID
        v.addBOS = addsBOS
        return v
    }
}
