import Foundation
import FinchTokenizerKernels

extension BPETokenizer {
    /// Loads a Hugging Face `tokenizer.json` (BPE model). A `tokenizer_config.json` beside it, when present,
    /// gives bos/eos/pad and `add_bos_token`.
    public convenience init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw BPETokenizerError.invalid(path: url.path, key: "(file)", message: error.localizedDescription)
        }
        var config: [String: Any]? = nil
        let configURL = url.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
        // Optional; but one that is there and damaged is an error, never silently ignored (it sets bos/eos and add_bos_token).
        if FileManager.default.fileExists(atPath: configURL.path) {
            let d: Data
            do { d = try Data(contentsOf: configURL) } catch {
                throw BPETokenizerError.invalid(path: configURL.path, key: "(file)", message: error.localizedDescription)
            }
            guard let o = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any] else {
                throw BPETokenizerError.invalid(path: configURL.path, key: "(root)", message: "not a JSON object")
            }
            config = o
        }
        try self.init(json: data, config: config, source: url.path)
    }

    /// Loads `tokenizer.json` bytes; `config` is the parsed `tokenizer_config.json` (optional).
    public convenience init(json data: Data, config: [String: Any]? = nil, source: String = "tokenizer.json") throws {
        let spec = try TokenizerJSON.parse(data, config: config, path: source)
        try self.init(spec: spec, source: source, fingerprint: SHA256.hex(data), jsonBytes: data)
    }
}

enum TokenizerJSON {
    static func parse(_ data: Data, config: [String: Any]?, path: String) throws -> BPESpec {
        func invalid(_ key: String, _ message: String) -> BPETokenizerError { .invalid(path: path, key: key, message: message) }
        func unsupported(_ key: String, _ what: String) -> BPETokenizerError { .unsupported(path: path, key: key, what: what) }
        let root: OrderedJSON
        do { root = try JSONReader.parse(data) } catch let f as JSONReader.Failure {
            throw invalid("(root)", "not valid JSON at byte \(f.offset): \(f.message)")
        }
        guard root.object != nil else { throw invalid("(root)", "not a JSON object") }
        guard let model = root["model"], model.object != nil else { throw invalid("model", "missing") }
        let type = model["type"]?.string ?? (model["merges"] != nil ? "BPE" : "?")
        guard type == "BPE" else { throw unsupported("model.type", "model type \"\(type)\" (only BPE is implemented)") }
        var spec = BPESpec()

        // vocabulary: dense ids
        guard let vocab = model["vocab"]?.object else { throw invalid("model.vocab", "missing or not an object") }
        var pieces = [String?](repeating: nil, count: vocab.count)
        var ids = [PieceKey: Int32](minimumCapacity: vocab.count)
        for (piece, v) in vocab {
            guard let id = v.int else { throw invalid("model.vocab[\"\(piece)\"]", "id is not an integer") }
            guard id >= 0 && id < vocab.count else {
                throw invalid("model.vocab[\"\(piece)\"]", "id \(id) is outside 0..<\(vocab.count): ids must be dense")
            }
            guard pieces[id] == nil else { throw invalid("model.vocab[\"\(piece)\"]", "id \(id) is used twice: ids must be dense") }
            guard ids.updateValue(Int32(id), forKey: PieceKey(piece)) == nil else {
                throw invalid("model.vocab[\"\(piece)\"]", "the piece appears twice")
            }
            pieces[id] = piece
        }
        spec.pieces = pieces.map { $0! }

        // merges: "a b" strings or ["a", "b"] pairs
        let rawMerges: [OrderedJSON]
        if let m = model["merges"] {
            guard let a = m.array else { throw invalid("model.merges", "not an array") }
            rawMerges = a
        } else { rawMerges = [] }
        spec.merges.reserveCapacity(rawMerges.count)
        for (i, m) in rawMerges.enumerated() {
            let a: String, b: String
            if let s = m.string {
                let u = Array(s.utf8)
                guard u.count >= 3, let sp = u[1...].firstIndex(of: 0x20) else {
                    throw invalid("model.merges[\(i)]", "\"\(s)\" is not two tokens separated by a space")
                }
                a = String(decoding: u[..<sp], as: UTF8.self); b = String(decoding: u[(sp + 1)...], as: UTF8.self)
            } else if let pair = m.array, pair.count == 2, let x = pair[0].string, let y = pair[1].string {
                a = x; b = y
            } else {
                throw invalid("model.merges[\(i)]", "neither \"a b\" nor [\"a\", \"b\"]")
            }
            guard let ia = ids[PieceKey(a)] else { throw invalid("model.merges[\(i)]", "token \"\(a)\" is not in model.vocab") }
            guard let ib = ids[PieceKey(b)] else { throw invalid("model.merges[\(i)]", "token \"\(b)\" is not in model.vocab") }
            guard ids[PieceKey(a + b)] != nil else { throw invalid("model.merges[\(i)]", "merged token \"\(a + b)\" is not in model.vocab") }
            spec.merges.append((ia, ib))
        }
        if case .number(let d)? = model["dropout"], d > 0 { throw unsupported("model.dropout", "BPE dropout \(d)") }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let s = model[key]?.string, !s.isEmpty { throw unsupported("model.\(key)", "\"\(s)\"") }
        }
        spec.byteFallback = model["byte_fallback"]?.bool ?? false
        spec.fuseUnk = model["fuse_unk"]?.bool ?? false
        spec.ignoreMerges = model["ignore_merges"]?.bool ?? false
        if let u = model["unk_token"]?.string {
            guard let id = ids[PieceKey(u)] else { throw invalid("model.unk_token", "\"\(u)\" is not in model.vocab") }
            spec.unk = id
        }

        // added tokens
        if let addedValue = root["added_tokens"], !addedValue.isNull {
            guard let added = addedValue.array else { throw invalid("added_tokens", "not an array") }
            for (i, t) in added.enumerated() {
                guard let content = t["content"]?.string, let id = t["id"]?.int else {
                    throw invalid("added_tokens[\(i)]", "needs \"id\" and \"content\"")
                }
                guard id >= 0 && id < 1 << 24 else { throw invalid("added_tokens[\(i)].id", "\(id) is out of range") }
                if let v = ids[PieceKey(content)], v != Int32(id) {
                    throw invalid("added_tokens[\(i)]", "\"\(content)\" has id \(id) but model.vocab gives \(v)")
                }
                spec.added.append(AddedToken(id: Int32(id), content: content, special: t["special"]?.bool ?? false,
                                             lstrip: t["lstrip"]?.bool ?? false, rstrip: t["rstrip"]?.bool ?? false,
                                             singleWord: t["single_word"]?.bool ?? false,
                                             normalized: t["normalized"]?.bool ?? false))
            }
        }

        // normalizer
        func normalizer(_ n: OrderedJSON?, _ key: String) throws {
            guard let n, !n.isNull else { return }
            guard let t = n["type"]?.string else { throw invalid(key, "not an object with a type") }
            switch t {
            case "Sequence":
                for (i, x) in (n["normalizers"]?.array ?? []).enumerated() { try normalizer(x, "\(key).normalizers[\(i)]") }
            case "NFC": spec.nfc = true
            case "Prepend":
                guard let s = n["prepend"]?.string else { throw invalid("\(key).prepend", "missing") }
                spec.prepend = .always(s)
            case "Replace":
                guard n["pattern"]?["String"]?.string == " ", let content = n["content"]?.string else {
                    throw unsupported(key, "Replace normalizer other than \" \" → a string")
                }
                spec.spaceReplacement = content
            default: throw unsupported("\(key).type", "normalizer \"\(t)\"")
            }
        }
        try normalizer(root["normalizer"], "normalizer")

        // pre-tokenizer
        var parts: [OrderedJSON] = []
        func flatten(_ p: OrderedJSON?, _ key: String) throws {
            guard let p, !p.isNull else { return }
            guard let t = p["type"]?.string else { throw invalid(key, "not an object with a type") }
            if t == "Sequence" {
                for (i, x) in (p["pretokenizers"]?.array ?? []).enumerated() { try flatten(x, "\(key).pretokenizers[\(i)]") }
            } else { parts.append(p) }
        }
        try flatten(root["pre_tokenizer"], "pre_tokenizer")
        let names = parts.map { $0["type"]?.string ?? "?" }
        spec.byteLevel = false
        spec.preTokenizer = .none
        func byteLevelPart(_ d: OrderedJSON, regexAllowed: Bool) throws {
            spec.byteLevel = true
            spec.addPrefixSpace = d["add_prefix_space"]?.bool ?? false
            let useRegex = d["use_regex"]?.bool ?? true
            if useRegex != regexAllowed {
                throw unsupported("pre_tokenizer", "ByteLevel use_regex=\(useRegex) in the sequence \(names)")
            }
        }
        switch names {
        case []: break
        case ["ByteLevel"]:
            try byteLevelPart(parts[0], regexAllowed: true); spec.preTokenizer = .gpt2
        case ["Digits", "ByteLevel"]:
            guard parts[0]["individual_digits"]?.bool == true else {
                throw unsupported("pre_tokenizer", "Digits without individual_digits")
            }
            try byteLevelPart(parts[1], regexAllowed: true); spec.preTokenizer = .gpt2Digits
        case ["Split", "ByteLevel"]:
            let pattern = parts[0]["pattern"]?["Regex"]?.string ?? ""
            guard parts[0]["behavior"]?.string == "Isolated", (parts[0]["invert"]?.bool ?? false) == false else {
                throw unsupported("pre_tokenizer", "Split behavior \(parts[0]["behavior"]?.string ?? "?")")
            }
            switch pattern {
            case PreTokenizerKind.llama3Pattern: spec.preTokenizer = .llama3
            case PreTokenizerKind.qwen2Pattern: spec.preTokenizer = .qwen2
            case PreTokenizerKind.gpt2Pattern: spec.preTokenizer = .gpt2
            default: throw unsupported("pre_tokenizer.pretokenizers[0].pattern", "split pattern \(pattern.debugDescription)")
            }
            try byteLevelPart(parts[1], regexAllowed: false)
        case ["Split"] where spec.spaceReplacement != nil && parts[0]["pattern"]?["String"]?.string == " ":
            // Gemma: the normalizer already replaced every " ", so splitting on " " cuts nothing
            break
        case ["Metaspace"]:
            let d = parts[0]
            let repl = d["replacement"]?.string ?? "▁"
            spec.spaceReplacement = repl
            let scheme = d["prepend_scheme"]?.string ?? ((d["add_prefix_space"]?.bool ?? true) ? "always" : "never")
            switch scheme {
            case "always": spec.prepend = .unlessStarts(repl)
            case "first": spec.prepend = .firstUnlessStarts(repl)
            case "never": spec.prepend = .never
            default: throw unsupported("pre_tokenizer.prepend_scheme", "\"\(scheme)\"")
            }
            spec.preTokenizer = (d["split"]?.bool ?? true) ? .metaspaceSplit : .none
            if repl != "▁" && spec.preTokenizer == .metaspaceSplit { throw unsupported("pre_tokenizer.replacement", "\"\(repl)\" with split") }
        default:
            throw unsupported("pre_tokenizer", "pre-tokenizer sequence \(names)")
        }

        // decoder
        spec.decodeByteLevel = spec.byteLevel
        func decoder(_ o: OrderedJSON?, _ key: String) throws {
            guard let o, !o.isNull else { return }
            guard let t = o["type"]?.string else { throw invalid(key, "not an object with a type") }
            switch t {
            case "Sequence":
                for (i, x) in (o["decoders"]?.array ?? []).enumerated() { try decoder(x, "\(key).decoders[\(i)]") }
            case "ByteLevel": spec.decodeByteLevel = true
            case "ByteFallback": spec.decodeByteFallback = true; spec.decodeByteLevel = false
            case "Fuse": break
            case "Replace":
                guard let pattern = o["pattern"]?["String"]?.string, o["content"]?.string == " " else {
                    throw unsupported(key, "Replace decoder other than a string → \" \"")
                }
                spec.decodeReplacement = pattern; spec.decodeByteLevel = false
            case "Strip":
                let content = o["content"]?.string ?? " "
                let start = o["start"]?.int ?? 0, stop = o["stop"]?.int ?? 0
                guard content == " ", start <= 1, stop == 0 else { throw unsupported(key, "Strip decoder (\(content), \(start), \(stop))") }
                spec.decodeStripLeadingSpace = start == 1
            case "Metaspace":
                spec.decodeByteLevel = false
                spec.decodeReplacement = o["replacement"]?.string ?? "▁"
                let scheme = o["prepend_scheme"]?.string ?? ((o["add_prefix_space"]?.bool ?? true) ? "always" : "never")
                spec.decodeFirstTokenDropsSpaces = scheme != "never"
            default: throw unsupported("\(key).type", "decoder \"\(t)\"")
            }
        }
        try decoder(root["decoder"], "decoder")

        // BOS from the post-processor template
        func template(_ o: OrderedJSON?) {
            guard let o, let t = o["type"]?.string else { return }
            if t == "Sequence" { for x in o["processors"]?.array ?? [] { template(x) }; return }
            guard t == "TemplateProcessing", let first = o["single"]?.array?.first,
                  let name = first["SpecialToken"]?["id"]?.string else { return }
            if let id = o["special_tokens"]?[name]?["ids"]?.array?.first?.int {
                spec.bos = id; spec.addsBOS = true
            } else if let id = ids[PieceKey(name)] { spec.bos = Int(id); spec.addsBOS = true }
        }
        template(root["post_processor"])

        if let config {
            func tokenName(_ k: String) -> String? {
                if let s = config[k] as? String { return s }
                return (config[k] as? [String: Any])?["content"] as? String
            }
            func lookup(_ name: String?) -> Int? {
                guard let name else { return nil }
                let key = PieceKey(name)
                if let t = spec.added.first(where: { PieceKey($0.content) == key }) { return Int(t.id) }
                return ids[key].map(Int.init)
            }
            if let b = lookup(tokenName("bos_token")) { spec.bos = b }
            if let e = lookup(tokenName("eos_token")) { spec.eos = e }
            if let p = lookup(tokenName("pad_token")) { spec.pad = p }
            if let a = config["add_bos_token"] as? Bool { spec.addsBOS = a }
        }
        return spec
    }
}
