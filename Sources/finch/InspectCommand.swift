import ArgumentParser
import Foundation
import FinchModel

/// `finch inspect MODEL_DIR`: what a model folder holds, from config.json and the safetensors headers only.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Describe a Hugging Face / Finch model folder (architecture, shapes, parameter count, dtype).",
        discussion: "Example: finch inspect runs/sft/best")

    @Argument(help: "Model folder (config.json + model.safetensors or a sharded index).") var model: String

    func run() throws {
        let url = URL(fileURLWithPath: model)
        let s = try HFModelSummary.inspect(url)
        let c = s.config
        func line(_ k: String, _ v: String) { print(k.padding(toLength: 20, withPad: " ", startingAt: 0) + v) }
        line("folder", url.path)
        line("architecture", s.architecture)
        line("flavour", c.flavour.rawValue + (s.finchInfo == nil ? "" : " (finch.json format \(s.finchInfo!.formatVersion))"))
        if let t = s.finchInfo?.chatTemplate { line("chat template", t) }
        line("layers", "\(c.numLayers)")
        line("hidden", "\(c.hiddenSize)  (intermediate \(c.intermediateSize))")
        line("heads", "\(c.numHeads) query, \(c.numKVHeads) key/value, head_dim \(c.headDim)")
        line("vocabulary", "\(c.vocabSize)")
        line("positions", "\(c.maxPositions)" + (c.flavour.usesRoPE ? "  (RoPE theta \(c.ropeTheta))" : "  (learned)"))
        line("norm eps", "\(c.normEps)")
        line("head", c.numLabels.map { "score, \($0) label(s)" } ?? (c.tieWordEmbeddings ? "tied to the embedding" : "separate lm_head"))
        let ids = [("bos", c.bosTokenId), ("eos", c.eosTokenId), ("pad", c.padTokenId)]
            .map { "\($0.0) \($0.1.map(String.init) ?? "-")" }.joined(separator: ", ")
        line("special ids", ids + ((c.eosTokenIds?.count ?? 0) > 1 ? "  (all eos: \(c.eosTokenIds!))" : ""))
        line("parameters", "\(c.parameterCount) (\(String(format: "%.2f", Double(c.parameterCount) / 1e6)) M)")
        let dtypes = s.dtypeCounts.keys.sorted().map { "\($0) ×\(s.dtypeCounts[$0]!)" }.joined(separator: ", ")
        line("stored dtype", dtypes + String(format: "  (%.1f MB in %d file(s))", Double(s.weightBytes) / 1e6, s.weightFiles.count))
        line("tokenizer.model", s.hasTokenizer ? "present" : "absent")
        line("generation config", s.generationConfig == nil ? "absent" : "present")
        print("\nshapes:")
        // Block 0 stands for every block (shown as N).
        for (name, shape) in c.parameterShapes() {
            var parts = name.split(separator: ".").map(String.init)
            if let i = parts.firstIndex(where: { Int($0) != nil }) {
                guard parts[i] == "0" else { continue }
                parts[i] = "N"
            }
            print("  " + parts.joined(separator: ".").padding(toLength: 48, withPad: " ", startingAt: 0) + "\(shape)")
        }
        if let p = s.problem {
            print("\nPROBLEM: \(p)")
            throw ExitCode.failure
        }
    }
}
