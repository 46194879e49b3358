import Foundation
import FinchModel
import FinchData

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
    /// Runs `finch classify`: events go to `progress`, which may ask the run to stop (a checkpoint is written and
    /// `TrainingInterrupted` thrown; `resume` continues exactly: weights, optimizer, data order).
    public static func run(_ config: ClassifyConfig, progress sink: any ProgressSink = NoProgress()) throws -> ClassifyResult {
        try config.validate()
        let o = config.classify
        let progress = ProgressReporter(sink: sink)
        let log: (String) -> Void = { progress.report($0) }
        let runURL = URL(fileURLWithPath: o.out)
        let run = try RunFolder(url: runURL)
        try Recipe.of(config).write(to: run)
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
        let peft = o.method == "lora" ? try PEFTMethods.make("lora", options: config.peft, decoder: decoder, tokenizer: tokenizer, seed: o.seed) : nil
        let clf = try SequenceClassifier(decoder: decoder, peft: peft, labels: o.labels, trainTrunk: o.method == "full")
        if o.method == "full" { clf.model.allocateGradients() }
        let params = clf.trainableParameters
        let trainable = params.values.reduce(0) { $0 + $1.count }
        let stepsPerEpoch = (train.count + o.batchSize - 1) / o.batchSize
        let total = o.maxSteps ?? stepsPerEpoch * o.epochs
        progress.totalSteps = total
        let schedule = LRSchedule(kind: .cosine, baseLR: o.lr, warmupSteps: o.warmup, totalSteps: total)
        let groups = [ParameterGroup(label: "classifier", names: params.keys.sorted(), weightDecay: false)]
        let session = try TrainingSession(run: run, parameters: { clf.trainableParameters }, groups: groups,
                                          settings: AdamWSettings(weightDecay: 0, maxGradNorm: 1.0), schedule: schedule,
                                          seed: o.seed, progress: progress)
        session.checkpointEvery = o.checkpointEvery
        session.keepCheckpoints = o.keepCheckpoints
        log("classify (\(o.method)): \(trainable) trainable parameters, \(train.count) training rows, \(eval?.count ?? 0) held out, \(total) steps")
        // The data order: epochs shuffled by the session's generator; the rest of the current epoch is kept in checkpoints.
        var order: [Int] = []
        var first: Double?, lastLoss: Double?
        try RLHFSetup.resumeIfAsked(session, resume: o.resume)
        if session.state.step > 0 {
            order = try session.state.extras["order"]?.decode([Int].self) ?? []
            first = try session.state.extras["first_loss"]?.decode(Double.self)
        }
        let start = Date()
        progress.startClock(afterStep: session.state.step)
        while session.state.step < total {
            if progress.stopRequested { try RLHFSetup.stop(session) }
            if order.isEmpty { order = Array(train.indices).shuffled(using: &session.state.rng) }
            let take = Array(order.prefix(o.batchSize)); order.removeFirst(take.count)
            let rows = take.map { train[$0] }
            clf.zeroGradients()
            let z = clf.logits(rows.map(\.ids))
            let loss = clf.lossAndBackward(logits: z, targets: rows.map(\.label), scale: 1 / Float(rows.count))
            let lr = session.currentLR
            try session.step(gradients: clf.gradients)
            first = first ?? loss; lastLoss = loss
            session.state.extras["order"] = try JSONValue(encoding: order)
            session.state.extras["first_loss"] = try JSONValue(encoding: first)
            progress.step(session.state.step, loss: loss, lr: lr, tokens: rows.reduce(0) { $0 + $1.ids.count })
            var record: [String: Any] = ["loss": loss, "lr": lr]
            if let tps = progress.tokensPerSecond { record["tokens_per_s"] = tps }
            try session.log(record)
            if session.shouldCheckpoint { try session.checkpoint() }
        }
        progress.done(step: session.state.step, reason: "completed")
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
