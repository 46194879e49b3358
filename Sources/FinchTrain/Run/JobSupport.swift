import Foundation
import FinchModel
import FinchData

/// Shared steps of `finch pretrain` / `finch sft`: datasets from files or folders, model output folders,
/// the start and end-of-run tables.
public enum JobSupport {
    /// Whether `url` is a packed dataset folder (holds manifest.json).
    public static func isDataset(_ url: URL) -> Bool {
        FileManager.default.fileExists(atPath: url.appendingPathComponent("manifest.json").path)
    }

    /// A packed dataset for `inputs`: the folder itself when it is one; else the records packed into
    /// `folder` with `tokenizer` + `template` (reused as is when `folder` already holds a dataset made with
    /// this tokenizer, e.g. on resume).
    public static func dataset(_ inputs: [URL], into folder: URL, tokenizer: any TextTokenizer, template: ChatTemplate?,
                               maxLength: Int, pack: Bool = true, trainOnPrompt: Bool = false, overlong: OverlongPolicy = .drop,
                               log: @escaping (String) -> Void = { _ in }) throws -> URL {
        if inputs.count == 1, isDataset(inputs[0]) { return inputs[0] }
        for u in inputs where !FileManager.default.fileExists(atPath: u.path) {
            throw TrainingError("\(u.path): no such file or dataset folder")
        }
        if isDataset(folder), try DatasetManifest.read(folder).tokenizer.sha256 == tokenizer.fingerprint {
            log("reusing packed data in \(folder.path)")
            return folder
        }
        var o = DatasetPacker.Options(inputs: inputs, maxLength: maxLength)
        o.pack = pack
        o.trainOnPrompt = trainOnPrompt
        o.overlong = overlong
        o.threads = 2
        try DatasetPacker.pack(o, tokenizer: tokenizer, template: template, into: folder) { log("  " + $0) }
        return folder
    }

    /// Writes a Hugging Face model folder (config.json, model.safetensors, generation_config.json, finch.json
    /// with the chat template, tokenizer.model).
    public static func writeModel(_ decoder: Decoder, to folder: URL, tokenizer: URL?, template: ChatTemplate?) throws {
        try HFModelFolder.save(config: decoder.config, parameters: decoder.parameters, to: folder,
                               finchInfo: FinchModelInfo(flavour: decoder.config.flavour, chatTemplate: template?.name),
                               tokenizerModel: tokenizer)
        try template?.save(toModel: folder)
    }

    /// The start line: trainable parameters, count and share.
    public static func parameterLine(_ model: CausalLMModel, method: String) -> String {
        let c = model.parameterCounts
        return String(format: "method %@: %@ trainable parameters of %@ (%.3f%%)", method, grouped(c.trainable), grouped(c.total),
                      100 * Double(c.trainable) / Double(max(1, c.total)))
    }

    static func grouped(_ n: Int) -> String {
        let f = NumberFormatter()
        f.numberStyle = .decimal
        f.groupingSeparator = ","
        return f.string(from: NSNumber(value: n)) ?? "\(n)"
    }

    /// The end-of-run table.
    public static func summaryTable(_ s: TrainingSummary, baseBefore: EvalResult?, baseAfter: EvalResult?, heldOutBefore: EvalResult? = nil) -> String {
        var rows: [(String, String)] = [
            ("steps", "\(s.steps)/\(s.totalSteps) (\(s.endReason))"),
            ("trainable parameters", String(format: "%@ (%.3f%% of %@)", grouped(s.trainableParameters),
                                            100 * Double(s.trainableParameters) / Double(max(1, s.totalParameters)), grouped(s.totalParameters))),
            ("train loss", [s.firstLoss, s.lastLoss].map { $0.map { String(format: "%.4f", $0) } ?? "-" }.joined(separator: " → ")),
            ("tokens/s", s.tokensPerSecond.map { ProgressReporter.compact($0) } ?? "-"),
            ("peak memory", String(format: "%.1f MB", Double(s.peakMemoryBytes) / 1e6)),
            ("best eval loss", s.bestEvalLoss.map { String(format: "%.4f at step %d", $0, s.bestStep ?? 0) } ?? "-"),
        ]
        if let e = s.finalEval {
            rows.append(("final eval", String(format: "loss %.4f · ppl %.2f", e.loss, e.perplexity) + (e.accuracy.map { String(format: " · accuracy %.3f", $0) } ?? "")))
        }
        if let b = heldOutBefore, let a = s.finalEval {
            rows.append(("held-out ppl", String(format: "%.2f before → %.2f after (%+.1f%%, the training data's own text)", b.perplexity, a.perplexity,
                                                100 * (a.perplexity / b.perplexity - 1))))
        }
        if let b = baseBefore, let a = baseAfter {
            let change = 100 * (a.perplexity / b.perplexity - 1)
            rows.append(("base-corpus ppl", String(format: "%.2f before → %.2f after (%+.1f%%, %@)", b.perplexity, a.perplexity, change,
                                                   change > 0 ? "forgetting" : "no forgetting")))
        }
        let w = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.padding(toLength: w, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }
}
