import CSentencePiece
import Foundation

/// Trains SentencePiece models with libsentencepiece_train.
public enum TokenizerTrainer {
    /// The segmentation algorithm.
    public enum ModelType: String, CaseIterable, Sendable { case unigram, bpe }

    /// Special tokens of the bundled chat templates, added as user-defined symbols so each is one
    /// piece that encoding recognises in text.
    public static let chatSymbols = ["<|im_start|>", "<|im_end|>", "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>",
                                     "<|system|>", "<|user|>", "<|assistant|>", "<|endoftext|>"]

    /// Training options. Defaults keep text byte-exact (identity normalization, whitespace and
    /// newlines preserved, byte fallback) so that decode(encode(x)) == x for chat transcripts.
    public struct Options: Sendable {
        public var inputs: [URL]
        public var vocabSize: Int
        public var type: ModelType = .bpe
        public var byteFallback = true
        public var userDefinedSymbols: [String] = TokenizerTrainer.chatSymbols
        public var characterCoverage = 0.9995
        /// `identity` keeps text as is; `nmt_nfkc` is sentencepiece's default.
        public var normalization = "identity"
        public var removeExtraWhitespaces = false
        public var splitDigits = true
        /// sentencepiece's dummy "▁" before every encoded text. Off by default: templates encode text between
        /// special tokens piece by piece, and a dummy prefix would put a space after every special token.
        public var addDummyPrefix = false
        /// Sentences sampled from the input (0 = all).
        public var inputSentenceSize = 2_000_000
        public var maxSentenceLength = 16384
        public var numThreads = 2
        public var unkID = 0, bosID = 1, eosID = 2
        /// -1 disables the pad piece.
        public var padID = 3
        public var seed: UInt32 = 0
        /// Extra raw `key=value` trainer options (override everything above).
        public var extra: [String: String] = [:]

        public init(inputs: [URL], vocabSize: Int, type: ModelType = .bpe) {
            self.inputs = inputs; self.vocabSize = vocabSize; self.type = type
        }

        /// The trainer options as sentencepiece keyword arguments.
        public var kwargs: [String: String] {
            var k: [String: String] = [
                "input": inputs.map(\.path).joined(separator: ","),
                "model_type": type.rawValue,
                "vocab_size": String(vocabSize),
                "byte_fallback": String(byteFallback),
                "character_coverage": String(characterCoverage),
                "normalization_rule_name": normalization,
                "remove_extra_whitespaces": String(removeExtraWhitespaces),
                "split_digits": String(splitDigits),
                "add_dummy_prefix": String(addDummyPrefix),
                "allow_whitespace_only_pieces": "true",
                "max_sentence_length": String(maxSentenceLength),
                "num_threads": String(numThreads),
                "unk_id": String(unkID), "bos_id": String(bosID), "eos_id": String(eosID), "pad_id": String(padID),
                "minloglevel": "1",
            ]
            if inputSentenceSize > 0 {
                k["input_sentence_size"] = String(inputSentenceSize)
                k["shuffle_input_sentence"] = "true"
            }
            if !userDefinedSymbols.isEmpty { k["user_defined_symbols"] = userDefinedSymbols.joined(separator: ",") }
            if seed != 0 { k["random_seed"] = String(seed) }
            for (key, v) in extra { k[key] = v }
            return k
        }
    }

    /// Trains a model and returns it loaded. Nothing is written to disk.
    public static func train(_ options: Options) throws -> SentencePieceTokenizer {
        for url in options.inputs where !FileManager.default.fileExists(atPath: url.path) {
            throw TokenizerError.train("\(url.path): no such input file")
        }
        let pairs = options.kwargs.sorted { $0.key < $1.key }
        var keys = pairs.map { strdup($0.key) }, values = pairs.map { strdup($0.value) }
        defer { keys.forEach { free($0) }; values.forEach { free($0) } }
        var model: UnsafeMutablePointer<CChar>? = nil
        var length = 0
        var err: UnsafeMutablePointer<CChar>? = nil
        let rc = keys.withUnsafeMutableBufferPointer { k in
            values.withUnsafeMutableBufferPointer { v in
                k.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: k.count) { kp in
                    v.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: v.count) { vp in
                        csp_train_kwargs(kp, vp, pairs.count, &model, &length, &err)
                    }
                }
            }
        }
        guard rc == 0, let model else {
            var message = "unknown error"
            if let err { message = String(cString: err); csp_free_buffer(err) }
            // SentencePiece names its own flags; say it in Finch's terms.
            if let r = message.range(of: #"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)"#, options: .regularExpression) {
                let numbers = message[r].split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
                if numbers.count == 2 {
                    message = "--vocab-size \(numbers[0]) is smaller than the \(numbers[1]) distinct characters the input needs (plus special pieces); use a larger --vocab-size"
                }
            }
            throw TokenizerError.train(message)
        }
        defer { csp_free_buffer(model) }
        return try SentencePieceTokenizer(modelBytes: Data(bytes: model, count: length), source: "<trained>")
    }

    /// Trains and writes `tokenizer.model` into `directory` (created if needed), atomically.
    @discardableResult
    public static func train(_ options: Options, into directory: URL) throws -> SentencePieceTokenizer {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let tok = try train(options)
        let url = directory.appendingPathComponent("tokenizer.model")
        try tok.write(to: url)
        return try SentencePieceTokenizer(contentsOf: url)
    }
}

extension TokenizerTrainer {
    /// Plain-text training inputs for `files`: text files are used as they are; JSONL record files are
    /// read as records and their texts (every message, reply and prompt) written to a temporary text file.
    public static func textInputs(_ files: [URL], scratch: URL) throws -> [URL] {
        try files.enumerated().map { i, url in
            guard RecordReader.isJSONL(url.path) else { return url }
            var text = ""
            for r in try RecordReader.read(url).records {
                switch r.body {
                case .text(let t): text += t + "\n"
                case .chat(let m), .prompt(let m): for x in m { text += x.content + "\n" }
                case .preference(let p, let c, let rej): for x in p { text += x.content + "\n" }; text += c + "\n" + rej + "\n"
                }
            }
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            let out = scratch.appendingPathComponent("input-\(i).txt")
            try Data(text.utf8).write(to: out, options: .atomic)
            return out
        }
    }
}
