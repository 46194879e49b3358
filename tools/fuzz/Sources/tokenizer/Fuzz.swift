// Fuzzes the tokenizer-file loader: a `tokenizer.json` (byte-level or SentencePiece-style BPE: model, merges,
// added tokens, pre-tokenizer, normalizer, decoder) through `Tokenizers.load(path:)`, as a model folder is read,
// then encoding and decoding a few texts. Inputs that start with "GGUF" are read as a GGUF file and its
// vocabulary loaded (`tokenizer.ggml.*`, byte-level BPE or a SentencePiece model rebuilt from it).
import Foundation
import FinchData
import FinchGGUF
import FuzzSupport

let texts = ["Hello world", " the  quick\tbrown\n\nfox's 12345 jumps!", "日本語 テキスト 🙂 e\u{301}", "<|im_start|>user\nhi<|im_end|>",
             "", "   ", "a\u{0}b", String(repeating: "ab", count: 64)]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let isGGUF = size >= 4 && Array(bytes[0..<4]) == Array("GGUF".utf8)
    let url = Fuzz.write(bytes, to: isGGUF ? "vocab.gguf" : "tokenizer.json")
    do {
        let tok = try Tokenizers.load(path: url.path)
        Fuzz.accepted("vocab \(tok.vocabSize): \(String(describing: try? tok.encode(texts[1])))")
        _ = tok.vocabSize; _ = tok.fingerprint
        for id in [tok.bosID, tok.eosID, tok.padID, tok.unkID, 0, tok.vocabSize - 1, tok.vocabSize] {
            _ = tok.piece(id); _ = tok.isControl(id)
        }
        for text in texts {
            guard let ids = try? tok.encode(text) else { continue }
            _ = try? tok.decode(ids)
            var more: [Int32] = []
            var utf8 = Array(text.utf8)
            try? utf8.withUnsafeMutableBytes { try tok.encode(utf8: UnsafeRawBufferPointer($0), appendingTo: &more) }
        }
        _ = try? tok.decode([Int32(0), 1, 2, -1, Int32.max])
    } catch {
        Fuzz.report(error)
        // A thrown error (naming the file and key) is the right answer to a bad tokenizer file.
    }
    return 0
}

/// The entry point SwiftPM links as `main` (see `Fuzz.runDriver`).
@_cdecl("fuzz_tokenizer_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.runDriver(argc, argv, fuzz)
}
