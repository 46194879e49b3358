import Foundation
import FinchGGUF

/// Finds and loads the tokenizer a model or dataset brings, whatever its form.
public enum Tokenizers {
    /// Loads from:
    /// - a `.gguf` file: its vocabulary (`tokenizer.ggml.model` "gpt2" → byte-level BPE, "llama" → SentencePiece);
    /// - a `.model` file (SentencePiece) or a `tokenizer.json` file;
    /// - a folder holding `tokenizer.model` (preferred: it is the original SentencePiece model where both exist) or
    ///   `tokenizer.json`.
    public static func load(path: String) throws -> any TextTokenizer {
        let url = URL(fileURLWithPath: path)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw TokenizerError.load(path: path, message: "no such file or folder")
        }
        if isDir.boolValue {
            let spm = url.appendingPathComponent("tokenizer.model")
            if FileManager.default.fileExists(atPath: spm.path) { return try SentencePieceTokenizer(contentsOf: spm) }
            let json = url.appendingPathComponent("tokenizer.json")
            if FileManager.default.fileExists(atPath: json.path) { return try BPETokenizer(contentsOf: json) }
            throw TokenizerError.load(path: path, message: "no tokenizer.model or tokenizer.json in the folder")
        }
        if path.lowercased().hasSuffix(".gguf") { return try load(gguf: GGUFFile(contentsOf: url)) }
        if path.lowercased().hasSuffix(".json") { return try BPETokenizer(contentsOf: url) }
        return try SentencePieceTokenizer(contentsOf: url)
    }

    /// The vocabulary of a GGUF file.
    public static func load(gguf file: GGUFFile) throws -> any TextTokenizer {
        guard let model = file.metadata["tokenizer.ggml.model"]?.string else {
            throw TokenizerError.load(path: file.url.path, message: "no tokenizer.ggml.model key: the file carries no vocabulary")
        }
        switch model {
        case "gpt2": return try BPETokenizer(gguf: file)
        case "llama": return try SentencePieceTokenizer(modelBytes: GGUFSentencePiece.modelProto(file), source: file.url.path)
        default:
            throw TokenizerError.load(path: file.url.path, message: "tokenizer.ggml.model \"\(model)\" is not supported (supported: gpt2 (byte-level BPE), llama (SentencePiece))")
        }
    }
}
