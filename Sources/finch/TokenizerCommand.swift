import ArgumentParser
import FinchData
import Foundation

/// `finch tokenizer train|encode|decode|vocab`.
struct Tokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Train a SentencePiece tokenizer or look at how text tokenizes.",
        subcommands: [Train.self, Encode.self, Decode.self, Vocab.self])

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a SentencePiece model (byte fallback, chat-template special tokens) into DIR/tokenizer.model.",
            discussion: "Example: finch tokenizer train --input corpus.txt --vocab-size 8000 --type bpe --out tok/")

        @Option(name: .long, parsing: .upToNextOption, help: "Text files (one sentence or paragraph per line) or JSONL record files (their texts are used).")
        var input: [String]
        @Option(name: .long, help: "Vocabulary size.") var vocabSize: Int
        @Option(name: .long, help: "bpe or unigram (bpe: Llama-style, and packs faster: see README).") var type: String = "bpe"
        @Option(name: .long, help: "Output folder.") var out: String
        @Option(name: .long, help: "Extra user-defined symbols, comma separated (added to the chat-template ones).")
        var symbols: String?
        @Option(name: .long, help: "Pad id (-1 for none).") var padId: Int = 3
        @Option(name: .long, help: "Sentences sampled from the input (0 = all).") var inputSentenceSize: Int = 2_000_000
        @Option(name: .long, help: "Normalization rule: identity (byte-exact) or nmt_nfkc.") var normalization: String = "identity"
        @Flag(name: .long, help: "Disable byte fallback.") var noByteFallback = false

        func run() throws {
            guard let t = TokenizerTrainer.ModelType(rawValue: type) else {
                throw ValidationError("--type must be unigram or bpe, not \(type)")
            }
            let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("finch-tokenizer-\(getpid())")
            defer { try? FileManager.default.removeItem(at: scratch) }
            let inputs = try TokenizerTrainer.textInputs(input.map { URL(fileURLWithPath: $0) }, scratch: scratch)
            var o = TokenizerTrainer.Options(inputs: inputs, vocabSize: vocabSize, type: t)
            o.padID = padId
            o.byteFallback = !noByteFallback
            o.inputSentenceSize = inputSentenceSize
            o.normalization = normalization
            if let symbols { o.userDefinedSymbols += symbols.split(separator: ",").map(String.init) }
            let start = Date()
            let tok = try TokenizerTrainer.train(o, into: URL(fileURLWithPath: out))
            print("wrote \(out)/tokenizer.model: \(tok.vocabSize) pieces, sha256 \(tok.fingerprint) (\(String(format: "%.1f", Date().timeIntervalSince(start))) s)")
        }
    }

    struct Encode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the ids (and pieces) of TEXT or of a text file (no BOS/EOS).",
            discussion: """
            The model's own tokenizer is used: a model folder (tokenizer.model or tokenizer.json), a .gguf file, a .model \
            file or a tokenizer.json file. Special tokens written in the text map to their ids, as the model's runtime does.

            Example: finch tokenizer encode --model SmolLM2-135M-Instruct.Q4_1.gguf --json "Hello world"
            """)
        @Option(name: .long, help: "Model folder, .gguf, .model or tokenizer.json.") var model: String
        @Option(name: .long, help: "Encode this file's whole text instead of the arguments.") var textFile: String?
        @Flag(name: .long, help: "Print the ids as one JSON array only.") var json = false
        @Option(name: .long, help: "Encode each line of this file, a JSON string, and print one JSON array of ids per line.")
        var jsonLines: String?
        @Argument(help: "Text to encode.") var text: [String] = []

        func validate() throws {
            if textFile == nil && jsonLines == nil && text.isEmpty { throw ValidationError("give TEXT, --text-file FILE or --json-lines FILE") }
        }

        func run() throws {
            let tok = try loadTokenizer(model)
            if let jsonLines {
                guard let data = FileManager.default.contents(atPath: jsonLines) else { throw ValidationError("\(jsonLines): cannot read") }
                for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated()
                where !line.isEmpty {
                    guard let s = try? JSONSerialization.jsonObject(with: Data(line.utf8), options: .fragmentsAllowed) as? String else {
                        throw ValidationError("\(jsonLines):\(n + 1): not a JSON string")
                    }
                    print("[" + (try tok.encode(s)).map(String.init).joined(separator: ",") + "]")
                }
                return
            }
            let joined: String
            if let textFile {
                guard let data = FileManager.default.contents(atPath: textFile) else { throw ValidationError("\(textFile): cannot read") }
                joined = String(decoding: data, as: UTF8.self)
            } else {
                joined = text.joined(separator: " ")
            }
            let ids = try tok.encode(joined)
            if json { print("[" + ids.map(String.init).joined(separator: ",") + "]"); return }
            print(ids.map(String.init).joined(separator: " "))
            print(ids.map { tok.piece(Int($0)) ?? "?" }.joined(separator: " "))
            print("\(ids.count) tokens")
        }
    }

    struct Decode: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the text of token IDS.",
                                                        discussion: "Example: finch tokenizer decode --model tok/tokenizer.model 1 345 22")
        @Option(name: .long, help: "Model folder, .gguf, .model or tokenizer.json.") var model: String
        @Argument(help: "Token ids.") var ids: [Int]

        func run() throws {
            let tok = try loadTokenizer(model)
            if let bad = ids.first(where: { $0 < 0 || $0 >= tok.vocabSize }) {
                throw ValidationError("id \(bad) is outside the vocabulary (0..<\(tok.vocabSize))")
            }
            print(try tok.decode(ids))
        }
    }

    struct Vocab: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the vocabulary: id, type, score, piece.")
        @Option(name: .long, help: "Model folder, .gguf, .model or tokenizer.json.") var model: String

        func run() throws {
            let tok = try loadTokenizer(model)
            print("# \(tok.vocabSize) pieces, unk \(tok.unkID) bos \(tok.bosID) eos \(tok.eosID) pad \(tok.padID), sha256 \(tok.fingerprint)")
            if let sp = tok as? SentencePieceTokenizer {
                for e in sp.vocabulary { print("\(e.id)\t\(e.type.rawValue)\t\(e.score)\t\(e.piece)") }
            } else {
                for id in 0..<tok.vocabSize { print("\(id)\t\(tok.isControl(id) ? "control" : "normal")\t0\t\(tok.piece(id) ?? "")") }
            }
        }
    }
}

/// Loads the tokenizer of a model folder, .gguf, .model or tokenizer.json file.
func loadTokenizer(_ path: String) throws -> any TextTokenizer {
    try Tokenizers.load(path: path)
}
