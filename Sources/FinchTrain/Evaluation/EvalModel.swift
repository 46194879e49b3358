import Foundation
import FinchModel
import FinchData

/// A model ready for evaluation: decoder (a LoRA adapter merged in), its tokenizer and chat template.
public final class EvalModel {
    public let name: String
    public let decoder: Decoder
    public let tokenizer: any TextTokenizer
    /// The stored chat template's encoder; nil for a base model without one.
    public let encoder: ChatEncoder?
    /// Trainable parameters of the run that produced the model (summary.json next to the folder), when known.
    public let trainableParameters: Int?
    /// Training wall time of that run in seconds (`training_seconds` in summary.json / timing.json), when known.
    public let trainingSeconds: Double?
    public var totalParameters: Int { decoder.parameters.values.reduce(0) { $0 + $1.count } }

    /// Loads `folder` (a model folder, or a LoRA adapter folder whose `base_model_name_or_path` names the base)
    /// plus an optional LoRA `adapter` folder.
    public init(folder: URL, adapter: URL? = nil, name: String? = nil) throws {
        var modelURL = folder, adapterURL = adapter
        if adapter == nil {
            (modelURL, adapterURL) = try PEFTAdapterFolder.modelAndAdapter(folder, noBase: "give --model BASE --adapter \(folder.path)")
        }
        let hf = try HFModelFolder.read(modelURL)
        try hf.requireCausalLM("evaluation")
        guard let tok = hf.tokenizerModel else { throw TrainingError("\(modelURL.path): no tokenizer (tokenizer.model or tokenizer.json) in the model folder") }
        tokenizer = try Tokenizers.load(path: tok.path)
        try hf.requireTokenizerFits(tokenizer, tokenizerFile: tok)
        if let template = try ChatTemplate.forModel(modelURL) {
            encoder = try ChatEncoder(tokenizer: tokenizer, template: template)
        } else {
            encoder = nil
        }
        var parameters = hf.parameters
        let adapterType = try adapterURL.map { try PEFTAdapterFolder.peftType(of: $0) }
        if let adapterURL, adapterType == "LORA" {
            parameters = try LoRAMerger.merge(parameters, config: hf.config, adapterFolder: adapterURL)
        }
        decoder = try Decoder(config: hf.config, parameters: parameters)
        if let adapterURL, let type = adapterType, type != "LORA" {
            // Bottleneck adapters act inside every block: attached as the decoder's hooks, as in training.
            guard type == "ADAPTER" else {
                throw TrainingError("\(adapterURL.path): \(type) adapters are not evaluated (LoRA/DoRA and bottleneck adapters are)")
            }
            try PEFTLoader.load(folder: adapterURL, decoder: decoder).attach(to: decoder)
        }
        self.name = name ?? EvalModel.defaultName(adapterURL ?? modelURL)
        let info = try EvalModel.runInfo(near: adapterURL ?? modelURL)
        trainableParameters = info.trainable
        trainingSeconds = info.seconds
    }

    /// A model already in memory (one being trained, say), evaluated as it is: its decoder with whatever hooks it has.
    public init(name: String, decoder: Decoder, tokenizer: any TextTokenizer, encoder: ChatEncoder?) {
        self.name = name; self.decoder = decoder; self.tokenizer = tokenizer; self.encoder = encoder
        trainableParameters = nil
        trainingSeconds = nil
    }

    /// "runs/sft/final" → "sft".
    static func defaultName(_ url: URL) -> String {
        let last = url.lastPathComponent
        return ["final", "best", "merged"].contains(last) ? url.deletingLastPathComponent().lastPathComponent : last
    }

    /// Reads trainable parameters and training time from the run folder above a `final`/`best` folder.
    static func runInfo(near url: URL) throws -> (trainable: Int?, seconds: Double?) {
        var trainable: Int?, seconds: Double?
        for dir in [url, url.deletingLastPathComponent(), url.deletingLastPathComponent().deletingLastPathComponent()] {
            for file in ["summary.json", "timing.json"] {
                let fileURL = dir.appendingPathComponent(file)
                guard FileManager.default.fileExists(atPath: fileURL.path) else { continue }   // optional; damaged is an error
                let data: Data
                do { data = try Data(contentsOf: fileURL) } catch { throw TrainingError("cannot read \(fileURL.path): \(error.localizedDescription)") }
                guard let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
                    throw TrainingError("\(fileURL.path): not a JSON object")
                }
                trainable = trainable ?? (o["trainableParameters"] as? Int) ?? (o["trainable_parameters"] as? Int)
                seconds = seconds ?? (o["training_seconds"] as? Double) ?? (o["trainingSeconds"] as? Double)
            }
        }
        return (trainable, seconds)
    }

    /// Token ids of the generation prompt for a user message: the chat template, or plain text
    /// `fewShot` examples + "Question: …\nAnswer:" when `plain` (a base model prompted in context).
    public func promptIDs(_ row: EvalRow, plain: Bool, fewShot: [EvalRow] = []) throws -> [Int] {
        if !plain, let encoder {
            return try encoder.generationPrompt([Message(.user, row.prompt)]).map(Int.init)
        }
        var ids: [Int] = tokenizer.bosID >= 0 ? [tokenizer.bosID] : []
        ids += try tokenizer.encode(EvalModel.plainPrompt(row, fewShot: fewShot)).map(Int.init)
        return ids
    }

    /// The in-context prompt: each example as "Question: …\nAnswer: …" separated by blank lines, then the question.
    public static func plainPrompt(_ row: EvalRow, fewShot: [EvalRow]) -> String {
        var text = ""
        for e in fewShot { text += "Question: \(e.prompt)\nAnswer: \(e.reference)\n\n" }
        return text + "Question: \(row.prompt)\nAnswer:"
    }

    /// Ids of prompt + reference with the index where the reference starts (for perplexity and KL).
    public func sequence(_ row: EvalRow, response: String, plain: Bool, fewShot: [EvalRow] = []) throws -> (ids: [Int], responseStart: Int) {
        let prompt = try promptIDs(row, plain: plain, fewShot: fewShot)
        var reply: [Int]
        if !plain, let encoder {
            reply = try encoder.encodeReply(response).map(Int.init)
        } else {
            reply = try tokenizer.encode(" " + response).map(Int.init)
        }
        return (prompt + reply, prompt.count)
    }
}
