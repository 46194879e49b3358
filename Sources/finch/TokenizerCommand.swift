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
        static let configuration = CommandConfiguration(abstract: "Print the ids and pieces of TEXT (no BOS/EOS).",
                                                        discussion: "Example: finch tokenizer encode --model tok/tokenizer.model \"Hello world\"")
        @Option(name: .long, help: "A .model file or a folder holding tokenizer.model.") var model: String
        @Argument(help: "Text to encode.") var text: [String]

        func run() throws {
            let tok = try loadTokenizer(model)
            let joined = text.joined(separator: " ")
            let ids = try tok.encode(joined)
            print(ids.map(String.init).joined(separator: " "))
            print(try tok.encodePieces(joined).joined(separator: " "))
            print("\(ids.count) tokens")
        }
    }

    struct Decode: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the text of token IDS.",
                                                        discussion: "Example: finch tokenizer decode --model tok/tokenizer.model 1 345 22")
        @Option(name: .long, help: "A .model file or a folder holding tokenizer.model.") var model: String
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
        @Option(name: .long, help: "A .model file or a folder holding tokenizer.model.") var model: String

        func run() throws {
            let tok = try loadTokenizer(model)
            print("# \(tok.vocabSize) pieces, unk \(tok.unkID) bos \(tok.bosID) eos \(tok.eosID) pad \(tok.padID), sha256 \(tok.fingerprint)")
            for e in tok.vocabulary { print("\(e.id)\t\(e.type.rawValue)\t\(e.score)\t\(e.piece)") }
        }
    }
}

/// Loads a tokenizer from a `.model` file or a folder containing `tokenizer.model`.
func loadTokenizer(_ path: String) throws -> SentencePieceTokenizer {
    try SentencePieceTokenizer.load(path: path)
}
