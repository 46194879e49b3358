import Foundation
import FinchModel
import FinchData

/// Settings of one `finch eval` run.
public struct EvalSettings: Sendable {
    /// Longest generated reply (tokens).
    public var maxTokens: Int = 48
    /// In-context examples for plain (template-free) prompting; 0 = use the model's chat template.
    public var fewShot: Int = 0
    /// Rows generated together.
    public var batch: Int = 8
    /// Evaluate at most this many rows (nil = all).
    public var limit: Int?
    /// Decoding: greedy when `temperature` is 0; otherwise `samples` replies per prompt drawn at `temperature`
    /// (top-p `topP`), reply s of row r seeded from (`seed`, r, s), and each row's scores averaged over its replies.
    public var temperature: Float = 0
    public var topP: Float = 1
    public var samples: Int = 1
    public var seed: UInt64 = 0
    /// Measure the references' perplexity (a forward pass per row); off when only the replies matter.
    public var referencePerplexity = true
    public init(maxTokens: Int = 48, fewShot: Int = 0, batch: Int = 8, limit: Int? = nil,
                temperature: Float = 0, topP: Float = 1, samples: Int = 1, seed: UInt64 = 0) {
        self.maxTokens = maxTokens; self.fewShot = fewShot; self.batch = batch; self.limit = limit
        self.temperature = temperature; self.topP = topP; self.samples = max(1, samples); self.seed = seed
    }
    /// Replies generated per prompt.
    public var repliesPerPrompt: Int { temperature > 0 ? samples : 1 }
    /// How replies were chosen, for tables and reports.
    public var decodingDescription: String {
        guard temperature > 0 else { return "greedy" }
        let p = topP < 1 ? String(format: ", top-p %g", Double(topP)) : ""
        return String(format: "sampled at temperature %g", Double(temperature)) + p + ", \(repliesPerPrompt) per prompt, scores averaged per prompt"
    }
}

/// The scores of one model on one evaluation file. NaN (null in JSON) = not measured.
public struct ModelScores: Codable, Sendable {
    public var name: String
    public var rows: Int
    public var perplexity: Double?
    public var exactMatch: Double?
    public var exactMatchStderr: Double?
    public var tokenF1: Double?
    public var bleu: Double?
    public var rougeL: Double?
    public var meanReward: Double?
    public var rewardStderr: Double?
    public var klToReference: Double?
    public var accuracy: Double?
    public var macroF1: Double?
    public var classification: ClassificationReport?
    public var exactMatchByTask: [String: Double]
    public var trainableParameters: Int?
    public var totalParameters: Int
    public var trainingSeconds: Double?
    public var evalSeconds: Double
    public var fewShot: Int
    /// A few (prompt, reference, response) triples for the report.
    public var samples: [Sample]
    /// Per-row exact match (checkable rows, in file order) and reward (generated rows, in file order):
    /// two models evaluated on the same file can then be compared row by row (a paired standard error).
    public var rowExactMatch: [Double]?
    public var rowRewards: [Double]?
    /// Every generated row's reply (file order; its first reply when sampling), for reading what a model got wrong.
    public var rowResponses: [String]?

    public struct Sample: Codable, Sendable {
        public var prompt: String
        public var reference: String
        public var response: String
        public var task: String
    }
}

/// Evaluates one model on rows: perplexity of the references, greedy replies, exact match / token F1,
/// BLEU / ROUGE-L, rewards, KL to a reference model, and label accuracy for `{text, label}` rows.
public enum ModelEvaluation {
    public static func evaluate(_ model: EvalModel, rows: [EvalRow], settings: EvalSettings, fewShotPool: [EvalRow] = [],
                                reward: EvalRewards? = nil, klReference: EvalModel? = nil,
                                log: (String) -> Void = { _ in }) throws -> ModelScores {
        let start = Date()
        let plain = settings.fewShot > 0 || model.encoder == nil
        let shots = Array(fewShotPool.filter(\.isCheckable).prefix(settings.fewShot))
        let classRows = rows.filter { $0.label != nil }
        let genRows = rows.filter { $0.label == nil }

        // Perplexity of the references (one row's logits at a time).
        var nllSum = 0.0, nllCount = 0
        for row in genRows where settings.referencePerplexity {
            let s = try model.sequence(row, response: row.reference, plain: plain, fewShot: shots)
            let r = SequenceScoring.nll(model.decoder, ids: s.ids, from: s.responseStart)
            nllSum += r.sum; nllCount += r.count
        }

        // Replies: greedy, or `repliesPerPrompt` samples per row (row-major: row r's replies are adjacent).
        let n = settings.repliesPerPrompt
        var responses: [String] = []
        if !genRows.isEmpty {
            // Keep the most recent context when a prompt is too long to leave room for the reply.
            let positions = model.decoder.config.maxPositions
            let rowPrompts = try genRows.map {
                BatchGenerator.keepingRecent(try model.promptIDs($0, plain: plain, fewShot: shots), newTokens: settings.maxTokens, positions: positions)
            }
            let prompts = rowPrompts.flatMap { [[Int]](repeating: $0, count: n) }
            let sampling = settings.temperature > 0
                ? SamplingOptions(temperature: settings.temperature, topP: settings.topP, seed: settings.seed) : SamplingOptions()
            let seeds = (0..<prompts.count).map { i in
                settings.seed &+ UInt64(i / n) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(i % n) &* 0xD6E8_FEB8_6659_FD93
            }
            var stops = Set(model.encoder?.stopIDs ?? [])
            if model.tokenizer.eosID >= 0 { stops.insert(model.tokenizer.eosID) }
            let tokenizer = model.tokenizer
            // Plain prompting: the answer is one line; stop at the newline that would start the next "Question:".
            let newlineStop: (([Int]) -> Bool)? = plain ? { ids in ((try? tokenizer.decode(ids)) ?? "").contains("\n") } : nil
            let generator = BatchGenerator(decoder: model.decoder, maxBatch: settings.batch)
            let options = GenerationOptions(maxNewTokens: min(settings.maxTokens, positions - 1), sampling: sampling, stopTokenIds: stops)
            var done = 0
            for chunkStart in stride(from: 0, to: prompts.count, by: max(1, settings.batch)) {
                let range = chunkStart..<min(prompts.count, chunkStart + settings.batch)
                let results = generator.generate(Array(prompts[range]), options: options, seeds: Array(seeds[range]),
                                                 stopWhen: newlineStop ?? { _ in false })
                for r in results {
                    var text = try tokenizer.decode(r.tokensBeforeStop)
                    if plain, let nl = text.firstIndex(of: "\n") { text = String(text[..<nl]) }
                    responses.append(text.trimmingCharacters(in: .whitespacesAndNewlines))
                }
                done += range.count
                log("  \(model.name): generated \(done)/\(prompts.count)")
            }
        }
        /// Row r's replies.
        func replies(_ r: Int) -> ArraySlice<String> { responses[(r * n)..<((r + 1) * n)] }
        let expandedRows = genRows.flatMap { [EvalRow](repeating: $0, count: n) }
        func perRow(_ values: [Double]) -> [Double] {
            stride(from: 0, to: values.count, by: n).map { values[$0..<($0 + n)].reduce(0, +) / Double(n) }
        }

        // Text metrics (per row: the mean over its replies).
        var em: [Double] = [], f1: [Double] = [], byTask: [String: [Double]] = [:]
        var hyps: [String] = [], refs: [String] = [], rouge: [Double] = []
        for (r, row) in genRows.enumerated() {
            if row.isOpenEnded {
                for response in replies(r) { hyps.append(response); refs.append(row.reference) }
                rouge.append(EvalMetrics.mean(replies(r).map { EvalMetrics.rougeL($0, row.reference) }))
            } else {
                let hit = EvalMetrics.mean(replies(r).map { EvalMetrics.exactMatch($0, row.answer, task: row.task) ? 1.0 : 0.0 })
                em.append(hit); byTask[row.task, default: []].append(hit)
                f1.append(EvalMetrics.mean(replies(r).map { EvalMetrics.tokenF1($0, row.answer) }))
            }
        }

        // Rewards and KL (KL over every reply).
        var rewards: [Double] = []
        if let reward, !genRows.isEmpty { rewards = perRow(try reward.rewards(expandedRows, responses: responses)) }
        var kl: Double?
        if let ref = klReference, !genRows.isEmpty {
            var sum = 0.0, count = 0
            for (row, response) in zip(expandedRows, responses) {
                let s = try model.sequence(row, response: response, plain: plain, fewShot: shots)
                let r = SequenceScoring.kl(policy: model.decoder, reference: ref.decoder, ids: s.ids, from: s.responseStart)
                sum += r.sum; count += r.count
            }
            kl = count > 0 ? sum / Double(count) : nil
        }

        // Classification rows: the label whose text is most likely after the prompt.
        var report: ClassificationReport?
        if !classRows.isEmpty {
            let labels = Array(Set(classRows.compactMap(\.label))).sorted()
            var predictions: [String] = []
            for row in classRows {
                let ask = EvalRow(prompt: "Classify the text as one of: \(labels.joined(separator: ", ")).\n\n\(row.prompt)",
                                  reference: "", task: "classify")
                var best = labels[0], bestScore = Double.infinity
                for label in labels {
                    let s = try model.sequence(ask, response: label, plain: plain, fewShot: [])
                    let r = SequenceScoring.nll(model.decoder, ids: s.ids, from: s.responseStart)
                    let score = r.count > 0 ? r.sum / Double(r.count) : .infinity
                    if score < bestScore { bestScore = score; best = label }
                }
                predictions.append(best)
            }
            report = ClassificationReport(predictions: predictions, gold: classRows.map { $0.label! }, classes: labels)
        }

        func opt(_ v: [Double]) -> Double? { v.isEmpty ? nil : EvalMetrics.mean(v) }
        let firstReplies = (0..<genRows.count).map { responses[$0 * n] }
        let samples = zip(genRows, firstReplies).prefix(6).map {
            ModelScores.Sample(prompt: $0.0.prompt, reference: $0.0.reference, response: $0.1, task: $0.0.task)
        }
        return ModelScores(
            name: model.name, rows: rows.count,
            perplexity: nllCount > 0 ? EvalMetrics.perplexity(summedNLL: nllSum, tokenCount: nllCount) : nil,
            exactMatch: opt(em), exactMatchStderr: em.isEmpty ? nil : EvalMetrics.standardError(em), tokenF1: opt(f1),
            bleu: hyps.isEmpty ? nil : EvalMetrics.corpusBLEU(hypotheses: hyps, references: refs), rougeL: opt(rouge),
            meanReward: opt(rewards), rewardStderr: rewards.isEmpty ? nil : EvalMetrics.standardError(rewards),
            klToReference: kl, accuracy: report?.accuracy, macroF1: report?.macroF1, classification: report,
            exactMatchByTask: byTask.mapValues { EvalMetrics.mean($0) },
            trainableParameters: model.trainableParameters, totalParameters: model.totalParameters,
            trainingSeconds: model.trainingSeconds, evalSeconds: Date().timeIntervalSince(start),
            fewShot: plain ? shots.count : 0, samples: Array(samples),
            rowExactMatch: em.isEmpty ? nil : em, rowRewards: rewards.isEmpty ? nil : rewards,
            rowResponses: firstReplies.isEmpty ? nil : firstReplies)
    }
}
