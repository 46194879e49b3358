import Foundation
import FinchGGUF

/// A SentencePiece-style GGUF vocabulary (`tokenizer.ggml.model` = "llama": Gemma, Llama 2, TinyLlama) written as the
/// `tokenizer.json` that transformers' fast tokenizers read, so a model folder Finch exports from a GGUF file loads
/// in transformers with the model's own tokenizer (issue 16).
///
/// The file is the one transformers builds when it reads the same GGUF (`integrations/gguf`): a BPE model with byte
/// fallback over the pieces, merges recovered from the vocabulary (sentencepiece's BPE merges the pair whose
/// piece scores best, so every split of a piece into two pieces is a merge ranked by that piece's score; Gemma's
/// scores do not follow its merge order, its file order does, and Gemma's all-space pieces are spelled "▁…"),
/// control pieces as special added tokens and user-defined pieces as plain added tokens (the all-space ones
/// matched in the normalised text, as llama.cpp matches them in the raw text), spaces escaped to "▁" by
/// a normaliser, and "▁" prepended to the text by a Metaspace pre-tokenizer when the file asks for a space prefix.
public enum GGUFSentencePieceJSON {
    /// The `tokenizer.json` bytes for `file`'s vocabulary.
    public static func tokenizerJSON(_ file: GGUFFile) throws -> Data {
        let path = file.url.path
        func fail(_ m: String) -> TokenizerError { .load(path: path, message: m) }
        let meta = file.metadata
        guard meta["tokenizer.ggml.model"]?.string == "llama" else {
            throw fail("tokenizer.json synthesis is for SentencePiece-style vocabularies (tokenizer.ggml.model = llama)")
        }
        guard let tokens = meta["tokenizer.ggml.tokens"]?.strings, !tokens.isEmpty else {
            throw fail("tokenizer.ggml.tokens is missing or empty")
        }
        let n = tokens.count
        let scores = meta["tokenizer.ggml.scores"]?.floats ?? [Float](repeating: 0, count: n)
        let types = meta["tokenizer.ggml.token_type"]?.ints ?? [Int](repeating: 1, count: n)
        guard scores.count == n, types.count == n else { throw fail("tokenizer.ggml.scores/token_type do not match the \(n) tokens") }
        func id(_ key: String) -> Int? {
            guard let v = meta["tokenizer.ggml.\(key)"]?.int, v >= 0, v < n else { return nil }
            return v
        }
        let gemma = (meta["general.architecture"]?.string ?? "").hasPrefix("gemma")
        let spacePrefix = meta["tokenizer.ggml.add_space_prefix"]?.bool ?? true
        let addBOS = meta["tokenizer.ggml.add_bos_token"]?.bool ?? true
        let unk = id("unknown_token_id") ?? types.firstIndex(of: 2)

        // Gemma stores its pieces of two or more spaces with real spaces; after the normaliser they read "▁…".
        let pieces = gemma ? tokens.map { t in
            t.contains(" ") && t.allSatisfy(\.isWhitespace) ? String(repeating: "\u{2581}", count: t.unicodeScalars.count) : t
        } : tokens
        let rank: [Float] = gemma ? (0..<n).map { -Float($0) } : scores
        let merges = recoveredMerges(pieces: pieces, rank: rank)

        var added: [[String: Any]] = []
        for (i, t) in types.enumerated() {
            let special = t == 2 || t == 3
            guard special || t == 4 else { continue }
            // A respelled run of spaces is matched in the normalised text ("▁▁"), i.e. where the raw text has the
            // spaces, as llama.cpp matches the piece "  "; every other added piece is matched as written.
            added.append(["id": i, "content": pieces[i], "single_word": false, "lstrip": false, "rstrip": false,
                          "normalized": pieces[i] != tokens[i], "special": special])
        }
        let replace: [String: Any] = ["type": "Replace", "pattern": ["String": " "], "content": "\u{2581}"]
        var decoders: [[String: Any]] = [
            ["type": "Replace", "pattern": ["String": "\u{2581}"], "content": " "], ["type": "ByteFallback"], ["type": "Fuse"],
        ]
        var pre: Any = NSNull()
        if spacePrefix {
            pre = ["type": "Metaspace", "replacement": "\u{2581}", "prepend_scheme": "first", "split": false] as [String: Any]
            decoders.append(["type": "Strip", "content": " ", "start": 1, "stop": 0])
        }
        var post: Any = NSNull()
        if addBOS, let bos = id("bos_token_id") {
            let name = pieces[bos]
            let special: [String: Any] = ["SpecialToken": ["id": name, "type_id": 0]]
            post = ["type": "TemplateProcessing",
                    "single": [special, ["Sequence": ["id": "A", "type_id": 0]]],
                    "pair": [special, ["Sequence": ["id": "A", "type_id": 0]], special, ["Sequence": ["id": "B", "type_id": 1]]],
                    "special_tokens": [name: ["id": name, "ids": [bos], "tokens": [name]]]] as [String: Any]
        }
        // Written field by field: the vocabulary is keyed by exact bytes, and a Swift dictionary of Strings would
        // merge pieces that are canonically equivalent but distinct (Gemma has both "য়" and "য"+"়").
        var out = Data("{".utf8)
        func field(_ name: String, _ value: Any) throws {
            out.append(contentsOf: Array("\"\(name)\":".utf8))
            out.append(try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys]))
            out.append(UInt8(ascii: ","))
        }
        try field("version", "1.0")
        try field("truncation", NSNull())
        try field("padding", NSNull())
        try field("added_tokens", added)
        try field("normalizer", spacePrefix ? NSNull() as Any : replace)
        try field("pre_tokenizer", pre)
        try field("post_processor", post)
        try field("decoder", ["type": "Sequence", "decoders": decoders])
        out.append(contentsOf: Array("\"model\":{".utf8))
        try field("type", "BPE")
        try field("dropout", NSNull())
        try field("unk_token", unk.map { pieces[$0] as Any } ?? NSNull())
        try field("continuing_subword_prefix", NSNull())
        try field("end_of_word_suffix", NSNull())
        try field("fuse_unk", true)
        try field("byte_fallback", types.contains(6))
        try field("ignore_merges", false)
        out.append(contentsOf: Array("\"vocab\":{".utf8))
        for (i, p) in pieces.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(try JSONSerialization.data(withJSONObject: p, options: [.fragmentsAllowed]))
            out.append(contentsOf: Array(":\(i)".utf8))
        }
        out.append(contentsOf: Array("},\"merges\":".utf8))
        out.append(try JSONSerialization.data(withJSONObject: merges.map { [$0.0, $0.1] }, options: []))
        out.append(contentsOf: Array("}}".utf8))
        return out
    }

    /// sentencepiece's BPE as ranked merges: every way to cut a piece into two pieces of the vocabulary, best piece
    /// first (higher `rank`), then longer left and right parts; within a piece, by the ids of its parts; otherwise
    /// in vocabulary order (transformers' `generate_merges`, whose results tokenizers applies). Lengths count
    /// Unicode scalars, as Python's `len` does.
    static func recoveredMerges(pieces: [String], rank: [Float]) -> [(String, String)] {
        // Keyed by bytes: Swift's String equality is canonical equivalence, Python's (and tokenizers') is not.
        var id: [PieceKey: Int] = [:]
        for (i, p) in pieces.enumerated() { id[PieceKey(p)] = i }   // a repeated piece keeps its last id, as a Python dict
        struct Merge { let left: String, right: String, rank: Float, leftLength: Int, rightLength: Int, order: Int }
        var merges: [Merge] = []
        var seen = Set<PieceKey>()
        for (i, piece) in pieces.enumerated() where seen.insert(PieceKey(piece)).inserted {
            let scalars = Array(piece.unicodeScalars)
            guard scalars.count > 1 else { continue }
            let r = rank[id[PieceKey(piece)] ?? i]
            var local: [(String, String, Int, Int, Int)] = []
            for cut in 1..<scalars.count {
                var l = String.UnicodeScalarView(), rt = String.UnicodeScalarView()
                l.append(contentsOf: scalars[..<cut]); rt.append(contentsOf: scalars[cut...])
                let left = String(l), right = String(rt)
                if let a = id[PieceKey(left)], let b = id[PieceKey(right)] { local.append((left, right, a, b, cut)) }
            }
            local.sort { ($0.2, $0.3) < ($1.2, $1.3) }
            for m in local {
                merges.append(Merge(left: m.0, right: m.1, rank: r, leftLength: m.4, rightLength: scalars.count - m.4,
                                    order: merges.count))
            }
        }
        merges.sort { a, b in
            if a.rank != b.rank { return a.rank > b.rank }
            if a.leftLength != b.leftLength { return a.leftLength > b.leftLength }
            if a.rightLength != b.rightLength { return a.rightLength > b.rightLength }
            return a.order < b.order
        }
        return merges.map { ($0.left, $0.right) }
    }
}
