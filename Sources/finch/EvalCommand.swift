import ArgumentParser
import FinchTrain
import FinchKernels
import FinchModel
import Foundation

/// `finch eval`: scores one or several models on an evaluation file and compares them.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate models side by side: perplexity, exact match, token F1, BLEU, ROUGE-L, reward, KL, classification.",
        discussion: """
        DATA rows: {instruction, input, output, task, answer} (task "open_ended" → BLEU as sacrebleu's corpus_bleu / ROUGE-L F as rouge-score's, other tasks → exact match /
        token F1), {prompt, response} or {messages}, or {text, label} (label chosen by likelihood → accuracy, per-class P/R/F1).
        Replies are greedy, prompted with the model's stored chat template, or — with --few-shot K — as plain text after K
        "Question: … / Answer: …" examples from --few-shot-data (for a base model). --few-shot takes one value for all models
        or one per model. A LoRA adapter folder may be given as --model (its base_model_name_or_path is loaded).
        Writes OUT/eval.json, OUT/eval.md and OUT/eval.svg.
        Example: finch eval --model runs/base/final runs/sft/final --name base sft --few-shot 4 0 \\
                   --few-shot-data corpora/instructions.jsonl --data corpora/eval.jsonl --reward-command "python3 tools/reward_check.py"
        """)

    @Option(parsing: .upToNextOption, help: "Model folder(s) (or LoRA adapter folders).") var model: [String] = []
    @Option(parsing: .upToNextOption, help: "Display name per model.") var name: [String] = []
    @Option(parsing: .upToNextOption, help: "LoRA adapter per model ('-' for none).") var adapter: [String] = []
    @Option(help: "Evaluation JSONL.") var data: String
    @Option(help: "Reward model folder (finch reward).") var reward: String?
    @Option(help: "Reward program: JSONL {prompt,response,task,answer} on stdin, one number per line out.") var rewardCommand: String?
    @Option(help: "Reference model for the mean per-token KL of each model's own replies.") var klReference: String?
    @Option(parsing: .upToNextOption, help: "In-context examples (plain prompting); one value or one per model.") var fewShot: [Int] = []
    @Option(help: "Examples for --few-shot (JSONL; default: DATA rows are never used).") var fewShotData: String?
    @Option(help: "Longest reply in tokens.") var maxTokens = 48
    @Option(help: "Rows generated together.") var batch = 8
    @Option(help: "Sampling temperature for the replies (0 = greedy, the default).") var temperature: Float = 0
    @Option(help: "Top-p when sampling.") var topP: Float = 1
    @Option(help: "Replies sampled per prompt when --temperature > 0 (each row's scores are averaged over them).") var samples = 1
    @Option(help: "Seed of the sampled replies.") var seed: UInt64 = 0
    @Option(help: "Evaluate only the first N rows.") var limit: Int?
    @Option(help: "Output folder.") var out: String?
    @Option(help: "Threads (default: all cores).") var threads: Int?

    func validate() throws {
        guard !model.isEmpty else { throw ValidationError("give at least one --model DIR") }
        if !name.isEmpty && name.count != model.count { throw ValidationError("--name needs one name per --model (\(model.count))") }
        if !adapter.isEmpty && adapter.count != model.count { throw ValidationError("--adapter needs one entry per --model ('-' for none)") }
        if fewShot.count > 1 && fewShot.count != model.count { throw ValidationError("--few-shot takes one value or one per --model") }
        if fewShot.contains(where: { $0 > 0 }) && fewShotData == nil { throw ValidationError("--few-shot K needs --few-shot-data FILE") }
        if reward != nil && rewardCommand != nil { throw ValidationError("give --reward or --reward-command, not both") }
        if temperature < 0 || samples < 1 || topP <= 0 || topP > 1 { throw ValidationError("need --temperature ≥ 0, --samples ≥ 1 and 0 < --top-p ≤ 1") }
        if samples > 1 && temperature == 0 { throw ValidationError("--samples \(samples) needs --temperature > 0 (greedy replies are all the same)") }
    }

    func run() throws {
        if let threads, threads > 0 { ThreadPool.shared.setThreads(threads) }
        do {
            let rows = try EvalRow.read(URL(fileURLWithPath: data), limit: limit)
            let pool = try fewShotData.map { try EvalRow.read(URL(fileURLWithPath: $0), limit: 64) } ?? []
            let scorer: EvalRewards? = try reward.map { try EvalRewards(rewardModel: URL(fileURLWithPath: $0)) }
                ?? rewardCommand.map { try EvalRewards(command: $0) }
            defer { scorer?.close() }
            let reference = try klReference.map { try EvalModel(folder: URL(fileURLWithPath: $0), name: "reference") }
            // Cheap checks of every model and adapter first, so a bad last argument fails before the first evaluation.
            for (i, path) in model.enumerated() {
                guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("--model \(path) does not exist") }
                guard !adapter.isEmpty, adapter[i] != "-" else { continue }
                let type = try PEFTAdapterFolder.peftType(of: URL(fileURLWithPath: adapter[i]))
                guard ["LORA", "ADAPTER"].contains(type) else {
                    throw ValidationError("--adapter \(adapter[i]) is a \(type) adapter; eval serves LoRA/DoRA and bottleneck adapters (chat and generate serve prompt and prefix tuning)")
                }
            }
            print("evaluating \(model.count) model(s) on \(rows.count) rows of \(data)")
            var scores: [ModelScores] = []
            for (i, path) in model.enumerated() {
                let adapterURL = adapter.isEmpty || adapter[i] == "-" ? nil : URL(fileURLWithPath: adapter[i])
                let m = try EvalModel(folder: URL(fileURLWithPath: path), adapter: adapterURL, name: name.isEmpty ? nil : name[i])
                let k = fewShot.isEmpty ? 0 : fewShot.count == 1 ? fewShot[0] : fewShot[i]
                let settings = EvalSettings(maxTokens: maxTokens, fewShot: k, batch: batch, temperature: temperature, topP: topP,
                                            samples: samples, seed: seed)
                print("model \(m.name): \(path)\(k > 0 ? " (\(k)-shot plain prompting)" : "")")
                scores.append(try ModelEvaluation.evaluate(m, rows: rows, settings: settings, fewShotPool: pool, reward: scorer,
                                                           klReference: reference, log: { print($0) }))
            }
            let decoding = EvalSettings(temperature: temperature, topP: topP, samples: samples).decodingDescription
            let comparison = EvalComparison(data: data, models: scores, decoding: decoding)
            print("replies: \(decoding)")
            print(comparison.textTable())
            if let out {
                try comparison.write(to: URL(fileURLWithPath: out))
                print("wrote \(out)/eval.json, eval.md, eval.svg")
            }
        } catch let e as TrainingError {
            throw e   // a data or model error: printed without usage text
        }
    }
}
