import Foundation
import FinchModel
import FinchData

/// Settings of `finch classify`.
public struct ClassifyOptions: Sendable {
    public var model: String
    public var data: String
    public var evalData: String?
    public var labels: [String]
    public var out: String
    /// full, freeze (head only) or lora.
    public var method = "lora"
    public var peft = PEFTOptions()
    public var epochs = 2
    public var maxSteps: Int?
    public var batchSize = 16
    public var maxLength = 128
    public var lr = 1e-3
    public var warmup = 10
    public var seed: UInt64 = 42
    public var logEvery = 10
    public init(model: String, data: String, labels: [String], out: String) {
        self.model = model; self.data = data; self.labels = labels; self.out = out
    }
}

/// What `finch classify` measured.
public struct ClassifyResult: Codable, Sendable {
    public var steps: Int
    public var firstLoss: Double?
    public var lastLoss: Double?
    public var trainableParameters: Int
    public var trainingSeconds: Double
    public var report: ClassificationReport?
}

/// `finch classify`: fine-tunes a classification head (and the trunk: full / LoRA) on `{text, label}` rows.
public enum ClassifyJob {
    public static func run(_ o: ClassifyOptions, log: @escaping (String) -> Void = { print($0) }) throws -> ClassifyResult {
        guard ["full", "freeze", "lora"].contains(o.method) else { throw TrainingError("--method must be full, freeze or lora (got \(o.method))") }
        guard o.labels.count >= 2 else { throw TrainingError("--labels needs at least two labels") }
        let runURL = URL(fileURLWithPath: o.out)
        let run = try RunFolder(url: runURL)
        let modelURL = URL(fileURLWithPath: o.model)
        let folder = try HFModelFolder.read(modelURL)
        guard let tokURL = folder.tokenizerModel else { throw TrainingError("\(modelURL.path): no tokenizer (tokenizer.model or tokenizer.json) in the model folder") }
        let tokenizer = try Tokenizers.load(path: tokURL.path)
        try folder.requireTokenizerFits(tokenizer, tokenizerFile: tokURL)
        let maxLength = min(o.maxLength, folder.config.maxPositions)
        let train = try ClassifyData.read(URL(fileURLWithPath: o.data), labels: o.labels, tokenizer: tokenizer, maxLength: maxLength)
        let eval = try o.evalData.map { try ClassifyData.read(URL(fileURLWithPath: $0), labels: o.labels, tokenizer: tokenizer, maxLength: maxLength) }
        guard !train.isEmpty else { throw TrainingError("\(o.data): no rows") }

        let decoder = try SequenceClassifier.classifierDecoder(config: folder.config, parameters: folder.parameters, labels: o.labels, seed: o.seed)
        let peft = o.method == "lora" ? try PEFTMethods.make("lora", options: o.peft, decoder: decoder, tokenizer: tokenizer, seed: o.seed) : nil
        let clf = try SequenceClassifier(decoder: decoder, peft: peft, labels: o.labels, trainTrunk: o.method == "full")
        if o.method == "full" { clf.model.allocateGradients() }
        let params = clf.trainableParameters
        let trainable = params.values.reduce(0) { $0 + $1.count }
        let stepsPerEpoch = (train.count + o.batchSize - 1) / o.batchSize
        let total = o.maxSteps ?? stepsPerEpoch * o.epochs
        let schedule = LRSchedule(kind: .cosine, baseLR: o.lr, warmupSteps: o.warmup, totalSteps: total)
        let groups = [ParameterGroup(label: "classifier", names: params.keys.sorted(), weightDecay: false)]
        let progress = Progress(total: total, every: o.logEvery)
        let session = try TrainingSession(run: run, parameters: { clf.trainableParameters }, groups: groups,
                                          settings: AdamWSettings(weightDecay: 0, maxGradNorm: 1.0), schedule: schedule,
                                          seed: o.seed, progress: progress)
        log("classify (\(o.method)): \(trainable) trainable parameters, \(train.count) training rows, \(eval?.count ?? 0) held out, \(total) steps")
        let start = Date()
        var rng = SeededRNG(seed: o.seed)
        var order: [Int] = []
        var first: Double?, lastLoss: Double?
        while session.state.step < total {
            if order.isEmpty { order = Array(train.indices).shuffled(using: &rng) }
            let take = Array(order.prefix(o.batchSize)); order.removeFirst(take.count)
            let rows = take.map { train[$0] }
            clf.zeroGradients()
            let z = clf.logits(rows.map(\.ids))
            let loss = clf.lossAndBackward(logits: z, targets: rows.map(\.label), scale: 1 / Float(rows.count))
            let lr = session.currentLR
            try session.step(gradients: clf.gradients)
            first = first ?? loss; lastLoss = loss
            progress.update(step: session.state.step, loss: loss, lr: lr, tokens: rows.reduce(0) { $0 + $1.ids.count })
            try session.log(["loss": loss, "lr": lr])
        }
        progress.finish()
        try session.writeLossCurve()
        let seconds = Date().timeIntervalSince(start)
        var report: ClassificationReport?
        if let eval, !eval.isEmpty {
            let predicted = clf.predict(eval.map(\.ids)).map { o.labels[$0] }
            report = ClassificationReport(predictions: predicted, gold: eval.map { o.labels[$0.label] }, classes: o.labels)
            log(reportText(report!))
        }
        // RUN/final: a LlamaForSequenceClassification folder (num_labels = K, LoRA merged into the weights).
        let finalURL = runURL.appendingPathComponent("final")
        var weights = decoder.parameters
        if let lora = peft as? LoRAModule { weights = try lora.mergedParameters(decoder.parameters, config: decoder.config) }
        try RunFolder.writeAtomically(to: finalURL) { dir in
            try HFModelFolder.save(config: decoder.config, parameters: weights, to: dir,
                                   finchInfo: FinchModelInfo(flavour: decoder.config.flavour), tokenizerModel: tokURL)
            try AtomicFile.write(try JSONSerialization.data(withJSONObject: ["labels": o.labels]), to: dir.appendingPathComponent("labels.json"))
        }
        let result = ClassifyResult(steps: session.state.step, firstLoss: first, lastLoss: lastLoss, trainableParameters: trainable,
                                    trainingSeconds: seconds, report: report)
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try AtomicFile.write(try enc.encode(result), to: runURL.appendingPathComponent("classify.json"))
        return result
    }

    /// Accuracy, then precision / recall / F1 / support per class and the macro F1.
    public static func reportText(_ r: ClassificationReport) -> String {
        var lines = [String(format: "accuracy %.1f%%  macro F1 %.3f", 100 * r.accuracy, r.macroF1),
                     "class        precision  recall     F1  support"]
        for c in r.classes {
            let s = r.perClass[c]!
            lines.append(c.padding(toLength: 12, withPad: " ", startingAt: 0)
                         + String(format: " %9.3f %7.3f %6.3f %8d", s.precision, s.recall, s.f1, s.support))
        }
        return lines.joined(separator: "\n")
    }
}
