import Foundation
import FinchGGUF

/// A SentencePiece model rebuilt from a GGUF vocabulary (`tokenizer.ggml.model` = "llama": Llama 2, TinyLlama,
/// Gemma). llama.cpp's SPM tokenizer is sentencepiece's BPE algorithm over these pieces and scores, with the
/// text's spaces escaped to "▁", a "▁" prepended when `tokenizer.ggml.add_space_prefix` (default true), no other
/// normalisation, and byte pieces for characters outside the vocabulary. The same model expressed as a
/// `ModelProto` lets libsentencepiece do the encoding, so ids equal what the original `tokenizer.model` gives.
enum GGUFSentencePiece {
    /// The serialised `sentencepiece.ModelProto` of the file's vocabulary.
    static func modelProto(_ file: GGUFFile) throws -> Data {
        let path = file.url.path
        func fail(_ m: String) -> TokenizerError { .load(path: path, message: m) }
        let meta = file.metadata
        guard let tokens = meta["tokenizer.ggml.tokens"]?.strings, !tokens.isEmpty else {
            throw fail("tokenizer.ggml.tokens is missing or empty")
        }
        let n = tokens.count
        let scores = meta["tokenizer.ggml.scores"]?.floats ?? [Float](repeating: 0, count: n)
        let types = meta["tokenizer.ggml.token_type"]?.ints ?? [Int](repeating: 1, count: n)
        guard scores.count == n else { throw fail("tokenizer.ggml.scores has \(scores.count) entries for \(n) tokens") }
        guard types.count == n else { throw fail("tokenizer.ggml.token_type has \(types.count) entries for \(n) tokens") }
        func id(_ key: String) throws -> Int? {
            guard let v = meta["tokenizer.ggml.\(key)"]?.int else { return nil }
            guard v >= 0 && v < n else { throw fail("tokenizer.ggml.\(key) = \(v) is outside the \(n)-token vocabulary") }
            return v
        }
        let unk = try id("unknown_token_id") ?? types.firstIndex(of: 2)
        guard let unk else { throw fail("the vocabulary has no unknown token (SentencePiece needs one)") }
        let bos = try id("bos_token_id"), eos = try id("eos_token_id"), pad = try id("padding_token_id")
        let addSpacePrefix = meta["tokenizer.ggml.add_space_prefix"]?.bool ?? true

        // llama.cpp matches a user-defined piece in the raw text, spaces included (Gemma's "  " … 30 spaces);
        // sentencepiece matches user-defined pieces after escaping spaces to "▁", so such a piece is spelled with
        // "▁" (as transformers respells it too), unless that spelling is taken.
        let spelled = Set(tokens.map { Array($0.utf8) })
        func spelling(_ i: Int) -> String {
            guard types[i] == 4, tokens[i].contains(" ") else { return tokens[i] }
            let escaped = tokens[i].replacingOccurrences(of: " ", with: "\u{2581}")
            return spelled.contains(Array(escaped.utf8)) ? tokens[i] : escaped
        }

        var model = ProtoWriter()
        for i in 0..<n {
            var t = types[i]
            guard (1...6).contains(t) else { throw fail("token \(i) (\"\(tokens[i])\") has token_type \(t), expected 1…6") }
            if i == unk { t = 2 } else if t == 2 { t = 3 }   // exactly one unknown piece
            var piece = ProtoWriter()
            piece.string(1, spelling(i))
            piece.float(2, scores[i])
            piece.varint(3, UInt64(t))
            model.message(1, piece)
        }
        var trainer = ProtoWriter()
        trainer.varint(3, 2)                       // model_type = BPE
        trainer.varint(4, UInt64(n))               // vocab_size
        trainer.varint(35, types.contains(6) ? 1 : 0)   // byte_fallback
        trainer.int32(40, unk)
        trainer.int32(41, bos ?? -1)
        trainer.int32(42, eos ?? -1)
        trainer.int32(43, pad ?? -1)
        trainer.string(45, tokens[unk])
        if let bos { trainer.string(46, tokens[bos]) }
        if let eos { trainer.string(47, tokens[eos]) }
        if let pad { trainer.string(48, tokens[pad]) }
        model.message(2, trainer)
        var normalizer = ProtoWriter()
        normalizer.string(1, "identity")
        normalizer.varint(3, addSpacePrefix ? 1 : 0)   // add_dummy_prefix
        normalizer.varint(4, 0)                        // remove_extra_whitespaces
        normalizer.varint(5, 1)                        // escape_whitespaces
        model.message(3, normalizer)
        return model.data
    }
}

/// Just enough of the protobuf wire format to write a ModelProto.
struct ProtoWriter {
    var data = Data()

    mutating func rawVarint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { data.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
        data.append(UInt8(v))
    }
    mutating func tag(_ field: Int, _ wire: UInt64) { rawVarint(UInt64(field) << 3 | wire) }
    mutating func varint(_ field: Int, _ v: UInt64) { tag(field, 0); rawVarint(v) }
    /// int32 fields encode negatives as 10-byte two's complement varints.
    mutating func int32(_ field: Int, _ v: Int) { tag(field, 0); rawVarint(UInt64(bitPattern: Int64(v))) }
    mutating func float(_ field: Int, _ v: Float) {
        tag(field, 5)
        withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) }
    }
    mutating func bytes(_ field: Int, _ b: Data) { tag(field, 2); rawVarint(UInt64(b.count)); data.append(b) }
    mutating func string(_ field: Int, _ s: String) { bytes(field, Data(s.utf8)) }
    mutating func message(_ field: Int, _ m: ProtoWriter) { bytes(field, m.data) }
}
