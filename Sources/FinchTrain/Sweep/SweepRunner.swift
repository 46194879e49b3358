import Foundation
import FinchModel

/// `finch sweep`: searches hyper-parameters of a training command by running trials as child processes, each an
/// ordinary run folder (`OUT/trials/NNN`, launched as `finch CMD --config OUT/trials/NNN.yaml --out OUT/trials/NNN`),
/// as many at once as `parallel` allows. Each trial's evaluation curve is read from its `metrics.jsonl` as it
/// trains; asynchronous successive halving stops poor trials at a rung (SIGINT: the trial finishes its step, writes
/// a checkpoint and exits). A finished trial's metric is its last `eval_loss`, or its exact match from
/// `finch eval` on the evaluation data. Everything the sweep knows is in `OUT/trials.jsonl` and `OUT/sweep.json`,
/// rewritten atomically after every event, so a killed sweep resumes where it stopped (running trials continue
/// from their checkpoints with `--resume`).
public final class SweepRunner {
    /// What fixes a sweep; a resumed sweep must have the same.
    public struct Settings: Codable, Equatable {
        public var command: String
        public var baseConfig: String
        public var space: String
        public var metric: String
        public var trials: Int
        public var search: TPESampler.Method
        public var seed: UInt64
        public var halving: SuccessiveHalving?
        /// Evaluation data for `exact_match` (and its options).
        public var evalData: String?
        public var evalLimit: Int?
        public var evalMaxTokens: Int
        /// What the halving ranks at its rungs: `eval_loss` (nil, the default) or `exact_match`, the trials answering the
        /// first `rungLimit` rows of the evaluation data at every evaluation (`sft --eval-generate`).
        public var rungMetric: String?
        public var rungLimit: Int?
        public init(command: String, baseConfig: String, space: String, metric: String, trials: Int, search: TPESampler.Method,
                    seed: UInt64, halving: SuccessiveHalving?, evalData: String?, evalLimit: Int?, evalMaxTokens: Int,
                    rungMetric: String? = nil, rungLimit: Int? = nil) {
            self.command = command; self.baseConfig = baseConfig; self.space = space; self.metric = metric; self.trials = trials
            self.search = search; self.seed = seed; self.halving = halving; self.evalData = evalData; self.evalLimit = evalLimit
            self.evalMaxTokens = evalMaxTokens
            self.rungMetric = rungMetric == "eval_loss" ? nil : rungMetric
            self.rungLimit = self.rungMetric == nil ? nil : (rungLimit ?? 100)
        }

        /// The key of the trials' metrics.jsonl that the curves and the rungs read.
        public var curveKey: String { rungMetric == "exact_match" ? "eval_exact_match" : "eval_loss" }
        /// Whether a higher curve value is better.
        public var curveHigherIsBetter: Bool { rungMetric == "exact_match" }
    }

    public static let metrics = ["eval_loss", "exact_match"]
    /// Set in a trial's environment to the sweep's pid (see `StopSignal.followSweep`).
    public static let parentVariable = "FINCH_SWEEP_PARENT"

    public let settings: Settings
    public let out: URL
    public let space: SearchSpace
    /// The base recipe's values (kebab-case keys).
    let base: [String: Any]
    /// The `finch` binary the trials run.
    let finch: String
    /// Trials run at once, and compute threads each.
    public var parallel: Int
    public var threadsPerTrial: Int
    /// Seconds between looks at the running trials.
    public var pollInterval: TimeInterval = 1
    public private(set) var trials: [SweepTrial] = []
    private var running: [Int: (process: Process, started: Date, stopping: Bool)] = [:]
    private let log: (String) -> Void
    private var interrupted = false

    /// Checks everything a sweep needs before any trial starts: the metric, the space against the command's keys, the
    /// base recipe (it must resolve, with an evaluation for the metric), the evaluation data.
    public init(settings: Settings, out: URL, finch: String, parallel: Int, threadsPerTrial: Int, log: @escaping (String) -> Void) throws {
        guard Self.metrics.contains(settings.metric) else {
            throw TrainingError("--metric \(settings.metric): choose \(Self.metrics.joined(separator: " or "))")
        }
        guard settings.trials > 0 else { throw TrainingError("--trials must be at least 1") }
        let keys = try Self.recipeKeys(settings.command)
        space = try SearchSpace.load(URL(fileURLWithPath: settings.space), knownKeys: keys)
        base = try Recipe.loadYAML(URL(fileURLWithPath: settings.baseConfig)).values
        for reserved in ["out", "resume"] where base[reserved] != nil {
            throw TrainingError("\(settings.baseConfig): '\(reserved)' is set by the sweep for every trial; remove it from the base config")
        }
        let resolved = try Self.resolve(settings.command, values: base)
        // The metric must be one the trials log: eval_loss needs evaluation switched on.
        if (resolved["eval-every"] as? Int).map({ $0 < 0 }) ?? false {
            throw TrainingError("\(settings.baseConfig): eval-every is -1, so trials log no eval_loss (the halving and the eval_loss metric need it)")
        }
        if let r = settings.rungMetric {
            guard r == "exact_match" else { throw TrainingError("--rung-metric \(r): choose eval_loss or exact_match") }
            guard settings.metric == "exact_match" else { throw TrainingError("--rung-metric exact_match goes with --metric exact_match") }
            guard settings.command == "sft" else {
                throw TrainingError("--rung-metric exact_match needs sft trials (they answer --eval-data as they train); \(settings.command) logs eval_loss")
            }
            guard settings.evalData != nil else { throw TrainingError("--rung-metric exact_match needs --eval-data FILE (rows with task and answer)") }
            guard (settings.rungLimit ?? 1) >= 1 else { throw TrainingError("--rung-limit must be at least 1") }
            for key in ["eval-generate", "eval-generate-limit", "eval-generate-max-tokens"] where base[key] != nil {
                throw TrainingError("\(settings.baseConfig): '\(key)' is set by the sweep for every trial (--rung-metric exact_match); remove it from the base config")
            }
        }
        if settings.metric == "exact_match" {
            guard ["sft", "dpo", "kto"].contains(settings.command) else {
                throw TrainingError("--metric exact_match needs a generating model (sft, dpo or kto); \(settings.command) logs eval_loss")
            }
            guard let e = settings.evalData else { throw TrainingError("--metric exact_match needs --eval-data FILE (rows with task and answer)") }
            guard FileManager.default.fileExists(atPath: e) else { throw TrainingError("--eval-data \(e): no such file") }
        }
        var settings = settings
        // Halving from the trials' first evaluation unless told otherwise.
        if var h = settings.halving, h.graceSteps <= 0 {
            guard let every = resolved["eval-every"] as? Int, every > 0 else {
                throw TrainingError("\(settings.baseConfig): evaluation runs once per epoch (eval-every: 0), so the halving rungs need --grace-steps N")
            }
            h.graceSteps = every
            settings.halving = h
        }
        self.settings = settings
        self.out = out
        self.finch = finch
        self.parallel = max(1, parallel)
        self.threadsPerTrial = max(1, threadsPerTrial)
        self.log = log
    }

    // MARK: - Commands

    /// The recipe keys of a sweepable command.
    static func recipeKeys(_ command: String) throws -> Set<String> {
        switch command {
        case "sft": return SFTConfig.recipeKeys
        case "pretrain": return PretrainConfig.recipeKeys
        case "dpo": return DPOConfig.recipeKeys
        case "kto": return KTOConfig.recipeKeys
        case "reward": return RewardConfig.recipeKeys
        default: throw TrainingError("--command \(command): a sweep runs sft, pretrain, dpo, kto or reward")
        }
    }

    /// A trial recipe resolved and validated as the command would (without running it): its values, defaults
    /// included. A configuration error names the key.
    static func resolve(_ command: String, values: [String: Any]) throws -> [String: Any] {
        var flags = values
        flags["out"] = "sweep-check"
        func check<C: TrainingConfig>(_ type: C.Type) throws -> [String: Any] {
            do { return try C.resolve(flags: flags).recipe.values } catch let m as MissingOption { throw TrainingError(m.description) }
        }
        switch command {
        case "sft": return try check(SFTConfig.self)
        case "pretrain": return try check(PretrainConfig.self)
        case "dpo": return try check(DPOConfig.self)
        case "kto": return try check(KTOConfig.self)
        default: return try check(RewardConfig.self)
        }
    }

    // MARK: - State

    var trialsURL: URL { out.appendingPathComponent("trials.jsonl") }
    var settingsURL: URL { out.appendingPathComponent("sweep.json") }
    func folder(_ t: SweepTrial) -> URL { out.appendingPathComponent("trials/\(t.folderName)") }
    func recipeURL(_ t: SweepTrial) -> URL { out.appendingPathComponent("trials/\(t.folderName).yaml") }

    /// Starts a new sweep folder or reopens one: the settings must match the stopped sweep's.
    func open(overwrite: Bool) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: settingsURL.path) && !overwrite {
            let saved = try JSONDecoder().decode(Settings.self, from: Data(contentsOf: settingsURL))
            guard saved == settings else {
                throw TrainingError("\(out.path) holds a sweep with other settings (\(Self.difference(saved, settings))): give the same ones to resume it, --overwrite to replace it, or another --out")
            }
            let text = try String(contentsOf: trialsURL, encoding: .utf8)
            trials = try text.split(separator: "\n").enumerated().map { i, line in
                do { return try JSONDecoder().decode(SweepTrial.self, from: Data(line.utf8)) } catch {
                    throw TrainingError("\(trialsURL.path):\(i + 1): not a trial record (\(error))")
                }
            }
            log("resuming the sweep in \(out.path): \(trials.filter { $0.status != .running }.count) trials finished, \(trials.filter { $0.status == .running }.count) to continue")
            return
        }
        if fm.fileExists(atPath: out.path) {
            let contents = try fm.contentsOfDirectory(atPath: out.path).filter { !$0.hasPrefix(".") }
            if !contents.isEmpty {
                guard overwrite, fm.fileExists(atPath: settingsURL.path) else {
                    throw TrainingError("--out \(out.path) is not empty and holds no sweep: give another --out")
                }
                try fm.removeItem(at: out)
            }
        }
        try fm.createDirectory(at: out.appendingPathComponent("trials"), withIntermediateDirectories: true)
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(settings), to: settingsURL)
        try save()
    }

    static func difference(_ a: Settings, _ b: Settings) -> String {
        let ea = (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(a))) as? [String: Any] ?? [:]
        let eb = (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(b))) as? [String: Any] ?? [:]
        return Set(ea.keys).union(eb.keys).sorted().filter { "\(ea[$0] ?? "none")" != "\(eb[$0] ?? "none")" }
            .map { "\($0): \(ea[$0] ?? "none") then, \(eb[$0] ?? "none") now" }.joined(separator: "; ")
    }

    func save() throws {
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
        let lines = try trials.map { String(decoding: try enc.encode($0), as: UTF8.self) }
        try AtomicFile.write(Data((lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n")).utf8), to: trialsURL)
        try SweepResults(settings: settings, space: space, trials: trials, base: base).write(to: out)
    }

    // MARK: - Running

    /// Runs the sweep to its end, or until `stopRequested` (the CLI's Ctrl-C / SIGTERM): then the running trials stop
    /// at a checkpoint, the state is saved and `TrainingInterrupted` is thrown; the same command again resumes.
    public func run(overwrite: Bool = false, stopRequested: () -> Bool = { false }) throws {
        try open(overwrite: overwrite)
        // Trials that were running when the sweep stopped continue from their checkpoints, once the process of a killed
        // sweep's trial (which stops itself when its sweep is gone) has written its checkpoint and ended.
        for t in trials where t.status == .running {
            if let pid = t.pid, Self.isFinchProcess(pid) {
                log("trial \(t.folderName): waiting for its process \(pid) (from the stopped sweep) to end")
                while Self.isFinchProcess(pid) { Thread.sleep(forTimeInterval: 0.2) }
            }
            try launch(t.trial, resume: true)
        }
        while true {
            if stopRequested() && !interrupted {
                interrupted = true
                log("interrupted: stopping \(running.count) running trial(s) at a checkpoint; run the same command again to resume")
                for (_, r) in running where r.process.isRunning { r.process.interrupt() }
            }
            if !interrupted {
                while running.count < parallel && trials.count < settings.trials { try launch(try newTrial(), resume: false) }
            }
            if running.isEmpty { break }
            Thread.sleep(forTimeInterval: pollInterval)
            try poll()
        }
        try save()
        if interrupted { throw TrainingInterrupted(step: trials.filter { $0.status != .running }.count, runFolder: out) }
        if let best = SweepResults(settings: settings, space: space, trials: trials, base: base).best {
            log("best: trial \(best.folderName), \(settings.metric) \(SweepResults.format(best.value, metric: settings.metric)) — \(out.appendingPathComponent("best.yaml").path)")
        } else {
            log("no trial finished: see the logs in \(out.appendingPathComponent("trials").path)")
        }
    }

    /// The next trial's values from the sampler, given every trial so far (lower score is better).
    func newTrial() throws -> Int {
        let history = trials.map { t in
            TPESampler.Observation(values: t.params, score: t.status == .completed ? t.value.map(score) : nil)
        }
        var sampler = TPESampler(method: settings.search)
        sampler.startupTrials = max(3, min(10, settings.trials / 4))
        let index = trials.count
        let values = sampler.propose(space, history: history, seed: settings.seed, index: index)
        var t = SweepTrial(trial: index, params: values, status: .running, metric: settings.metric, value: nil, stderr: nil,
                           rung: -1, rungs: [:], curve: [], maxSteps: 0, seconds: nil, note: nil)
        var recipe = base
        for (k, v) in values { recipe[k] = v.native }
        if settings.rungMetric == "exact_match", let e = settings.evalData {
            recipe["eval-generate"] = e
            recipe["eval-generate-limit"] = settings.rungLimit ?? 100
            recipe["eval-generate-max-tokens"] = settings.evalMaxTokens
        }
        do {
            let resolved = try Self.resolve(settings.command, values: recipe)
            t.maxSteps = resolved["max-steps"] as? Int ?? 0
        } catch {
            t.status = .failed
            t.note = "invalid configuration: \(error)"
        }
        try AtomicFile.write(Data(try Recipe(defaults: recipe).yaml().utf8), to: recipeURL(t))
        trials.append(t)
        try save()
        if t.status == .failed { log("trial \(t.folderName): \(t.note!)") }
        return index
    }

    /// Whether `pid` is a live `finch` process (not a recycled pid).
    static func isFinchProcess(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0, let cmd = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8) else { return false }
        let state = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.split(separator: ")").last?.split(separator: " ").first
        return state != "Z" && cmd.split(separator: "\0").first.map { $0.hasSuffix("finch") } == true
    }

    /// Higher exact match is better; the sampler and the halving minimise.
    func score(_ value: Double) -> Double { settings.metric == "exact_match" ? -value : value }

    func launch(_ index: Int, resume: Bool) throws {
        let t = trials[index]
        guard t.status == .running else { return }
        let dir = folder(t)
        // A trial that ended while the sweep was gone (killed): take its result instead of running it again.
        if resume, let summary = try? JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("summary.json"))) as? [String: Any],
           (summary["endReason"] as? String ?? summary["end_reason"] as? String) != "interrupted" {
            try poll(index)
            try finish(index, status: 0)
            return
        }
        var args = [settings.command, "--config", recipeURL(t).path, "--out", dir.path, "--threads", "\(threadsPerTrial)"]
        if resume { args.append("--resume") }
        let p = try start(args, trial: t)
        running[index] = (p, Date(), false)
        trials[index].pid = p.processIdentifier
        try save()
        let shown = space.parameters.map { "\($0.key)=\(t.params[$0.key]?.description ?? "?")" }.joined(separator: " ")
        log("trial \(t.folderName) \(resume ? "continues" : "starts"): \(shown)")
    }

    /// Starts `finch ARGS` for a trial: output appended to the trial's log, stdin closed, the sweep's pid in its
    /// environment (see `StopSignal.followSweep`).
    func start(_ args: [String], trial t: SweepTrial) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: finch)
        p.arguments = args
        let logURL = out.appendingPathComponent("trials/\(t.folderName).log")
        if !FileManager.default.fileExists(atPath: logURL.path) { _ = FileManager.default.createFile(atPath: logURL.path, contents: nil) }
        let handle = try FileHandle(forWritingTo: logURL)
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        p.standardOutput = handle; p.standardError = handle; p.standardInput = FileHandle.nullDevice
        p.environment = ProcessInfo.processInfo.environment.merging([Self.parentVariable: "\(getpid())"]) { _, new in new }
        try p.run()
        return p
    }

    /// Reads every running trial's curve, applies the halving at new rungs, and collects trials that ended.
    func poll() throws {
        var changed = false
        for index in running.keys.sorted() {
            changed = try poll(index) || changed
            guard let r = running[index], !r.process.isRunning else { continue }
            try finish(index, status: r.process.terminationStatus)
            changed = true
        }
        if changed { try save() }
    }

    /// Updates one trial's curve from its metrics.jsonl; true when something changed.
    @discardableResult
    func poll(_ index: Int) throws -> Bool {
        let metricsURL = folder(trials[index]).appendingPathComponent("metrics.jsonl")
        guard FileManager.default.fileExists(atPath: metricsURL.path),
              let records = try? MetricsLog.read(metricsURL) else { return false }
        let curve = records.compactMap { r -> [Double]? in
            guard let s = (r["step"] as? NSNumber)?.doubleValue, let v = (r[settings.curveKey] as? NSNumber)?.doubleValue, v.isFinite else { return nil }
            return [s, v]
        }
        guard curve != trials[index].curve else { return false }
        trials[index].curve = curve
        if let h = settings.halving, !interrupted, let r = running[index], !r.stopping {
            let milestones = h.milestones(maxSteps: trials[index].maxSteps)
            for (k, m) in milestones.enumerated() where trials[index].rungs["\(k)"] == nil {
                guard let point = curve.first(where: { Int($0[0]) >= m }) else { break }
                trials[index].rungs["\(k)"] = point[1]
                trials[index].rung = k
                // The halving keeps the lowest values: exact match is compared negated.
                let sign = settings.curveHigherIsBetter ? -1.0 : 1.0
                let recorded = trials.compactMap { $0.rungs["\(k)"] }
                if !h.continues(sign * point[1], recorded: recorded.map { sign * $0 }) {
                    trials[index].note = String(format: "stopped at rung %d (step %d): %@ %.4f not in the best 1/%g of %d", k, Int(point[0]),
                                                settings.curveKey, point[1], h.eta, recorded.count)
                    log("trial \(trials[index].folderName) \(trials[index].note!)")
                    running[index]!.stopping = true
                    r.process.interrupt()
                    break
                }
            }
        }
        return true
    }

    /// A trial's process ended: completed (and evaluated), stopped by the halving, interrupted, or failed.
    func finish(_ index: Int, status: Int32) throws {
        let r = running.removeValue(forKey: index)
        if let r { trials[index].seconds = (trials[index].seconds ?? 0) + Date().timeIntervalSince(r.started) }
        if r?.stopping == true {
            trials[index].status = .stopped
            trials[index].value = settings.metric == "eval_loss" ? trials[index].curve.last?[1] : nil
        } else if interrupted {
            return   // stays "running": the next run resumes it
        } else if status == 0 {
            if settings.metric == "eval_loss" {
                trials[index].value = trials[index].curve.last?[1]
            } else {
                try evaluate(index)
            }
            trials[index].status = trials[index].value == nil ? .failed : .completed
            if trials[index].value == nil && trials[index].note == nil { trials[index].note = "finished without an eval_loss" }
            let v = SweepResults.format(trials[index].value, metric: settings.metric)
            log("trial \(trials[index].folderName) finished: \(settings.metric) \(v) (\(trials.filter { $0.status != .running }.count)/\(settings.trials))")
        } else {
            trials[index].status = .failed
            let logText = (try? String(contentsOf: out.appendingPathComponent("trials/\(trials[index].folderName).log"), encoding: .utf8)) ?? ""
            trials[index].note = "exit \(status): " + logText.split(separator: "\n").suffix(3).joined(separator: " | ")
            log("trial \(trials[index].folderName) failed: \(trials[index].note!)")
        }
        try save()
    }

    /// Exact match of a finished trial's model on the evaluation data (`finch eval`, greedy).
    func evaluate(_ index: Int) throws {
        let dir = folder(trials[index])
        let final = dir.appendingPathComponent("final")
        let merged = final.appendingPathComponent("merged")
        let model = FileManager.default.fileExists(atPath: merged.appendingPathComponent("config.json").path) ? merged : final
        let evalOut = dir.appendingPathComponent("eval")
        var args = ["eval", "--model", model.path, "--data", settings.evalData!, "--out", evalOut.path,
                    "--max-tokens", "\(settings.evalMaxTokens)", "--threads", "\(threadsPerTrial)"]
        if let l = settings.evalLimit { args += ["--limit", "\(l)"] }
        let p = try start(args, trial: trials[index])
        p.waitUntilExit()
        guard p.terminationStatus == 0,
              let json = try? JSONSerialization.jsonObject(with: Data(contentsOf: evalOut.appendingPathComponent("eval.json"))) as? [String: Any],
              let m = (json["models"] as? [[String: Any]])?.first, let em = (m["exactMatch"] as? NSNumber)?.doubleValue else {
            trials[index].note = "finch eval failed (exit \(p.terminationStatus)); see the trial's log"
            return
        }
        trials[index].value = em
        trials[index].stderr = (m["exactMatchStderr"] as? NSNumber)?.doubleValue
    }
}
