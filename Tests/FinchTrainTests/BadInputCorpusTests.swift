import Foundation
import XCTest
import FinchKernels
import FinchModel
import FinchData
import FinchTrain

/// The bad-input corpus: every folder `Tests/BadInput/<NN-name>/` holding a `case.json` is one user mistake (a damaged
/// file, a wrong folder, a failing reward program, a full disk…). Each case runs the real `finch` binary and must exit
/// as the case says (non-zero for a refusal), name the file and the place in its message, leave no half-written output
/// and keep earlier checkpoints intact. Nothing here is specific to one case; see Tests/BadInput/README.md for the format.
///
/// `FINCH_BADINPUT_ONLY=substring` runs only the cases whose folder name contains it; `FINCH_BADINPUT_VERBOSE=1` prints
/// every case's stderr; `FINCH_BADINPUT_BIN=path` runs another `finch` binary (e.g. an older build, for before/after).
final class BadInputCorpusTests: XCTestCase {
    static let corpus = PipelineTests.repoRoot.appendingPathComponent("Tests/BadInput")
    static let minimumCases = 40

    struct Case {
        let name: String
        let folder: URL
        let spec: [String: Any]
    }

    /// Every case folder, sorted by name.
    static func discover() throws -> [Case] {
        let fm = FileManager.default
        var out: [Case] = []
        for name in try fm.contentsOfDirectory(atPath: corpus.path).sorted() {
            let folder = corpus.appendingPathComponent(name)
            let file = folder.appendingPathComponent("case.json")
            guard fm.fileExists(atPath: file.path) else { continue }
            let data = try Data(contentsOf: file)
            guard let spec = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw NSError(domain: "BadInput", code: 1, userInfo: [NSLocalizedDescriptionKey: "\(file.path): not a JSON object"])
            }
            out.append(Case(name: name, folder: folder, spec: spec))
        }
        return out
    }

    /// The inputs every case may name: a tiny causal LM, a reward model, the tokenizer, valid data files, a packed dataset.
    struct Fixtures {
        var values: [String: String]

        static func make() throws -> Fixtures {
            let F = TrainerFixture.self
            let dir = try F.tempDir("badinput-fixtures")
            let model = try RLHFFixture.policyFolder(in: dir)
            let rm = dir.appendingPathComponent("rm")
            let d = try RewardModel.sequenceClassifier(config: F.config(), parameters: F.decoder().parameters, padID: 0, seed: 1)
            try RewardModel(decoder: d, padID: 0).save(to: rm, tokenizer: F.tokenizerURL, templateName: nil)
            try F.template.save(toModel: rm)
            let data = try F.recordsFile(24, in: dir)
            let prefs = try RLHFFixture.preferences(16, in: dir)
            let prompts = dir.appendingPathComponent("prompts.jsonl")
            try (0..<12).map { "{\"prompt\": \"What colour is the \(F.things[$0 % 8])?\"}" }.joined(separator: "\n")
                .appending("\n").write(to: prompts, atomically: true, encoding: .utf8)
            let pack = try F.dataset(24, in: dir.appendingPathComponent("packed-src").creatingFolder())
            return Fixtures(values: ["MODEL": model.path, "RM": rm.path, "TOK": F.tokenizerURL.path,
                                     "TOKDIR": F.tokenizerURL.deletingLastPathComponent().path,
                                     "DATA": data.path, "PREFS": prefs.path, "PROMPTS": prompts.path, "PACK": pack.path])
        }
    }

    /// `$NAME` placeholders replaced by their values (longest names first, so $TOKDIR is not read as $TOK + "DIR").
    static func substitute(_ s: String, _ values: [String: String]) -> String {
        var r = s
        for k in values.keys.sorted(by: { $0.count > $1.count }) { r = r.replacingOccurrences(of: "$" + k, with: values[k]!) }
        return r
    }

    /// A file or folder's content as relative path → bytes digest (for `intact`).
    static func snapshot(_ url: URL) -> [String: Data] {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else { return [:] }
        if !isDir.boolValue { return ["": (try? Data(contentsOf: url)) ?? Data()] }
        var out: [String: Data] = [:]
        let e = fm.enumerator(atPath: url.path)
        while let rel = e?.nextObject() as? String {
            let f = url.appendingPathComponent(rel)
            var d: ObjCBool = false
            if fm.fileExists(atPath: f.path, isDirectory: &d), !d.boolValue { out[rel] = (try? Data(contentsOf: f)) ?? Data() }
        }
        return out
    }

    /// Names a crash or an interrupted write leaves behind.
    static func partialFiles(under url: URL) -> [String] {
        let fm = FileManager.default
        var out: [String] = []
        let e = fm.enumerator(atPath: url.path)
        while let rel = e?.nextObject() as? String {
            let name = (rel as NSString).lastPathComponent
            if name.contains(".tmp") || name.contains(".partial") || name.hasPrefix(".old-") || name.contains("nosync") { out.append(rel) }
        }
        return out
    }

    struct RunResult { var status: Int32; var signalled: Bool; var timedOut: Bool; var stdout: String; var stderr: String }

    /// Runs `executable args` in `dir` and kills it after `timeout` seconds.
    static func run(_ executable: String, _ args: [String], in dir: URL, environment: [String: String], stdin: String?,
                    timeout: Double) throws -> RunResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.currentDirectoryURL = dir
        p.environment = environment
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out; p.standardError = err
        p.standardInput = stdin == nil ? FileHandle.nullDevice : input
        // The readers may outlive the wait below (a child left running holds the pipes): results go through a lock.
        final class Output: @unchecked Sendable {
            private let lock = NSLock(); private var data = [Int: Data]()
            func set(_ k: Int, _ d: Data) { lock.lock(); data[k] = d; lock.unlock() }
            func get(_ k: Int) -> Data { lock.lock(); defer { lock.unlock() }; return data[k] ?? Data() }
        }
        let collected = Output()
        let group = DispatchGroup()
        group.enter(); DispatchQueue.global().async { collected.set(1, out.fileHandleForReading.readDataToEndOfFile()); group.leave() }
        group.enter(); DispatchQueue.global().async { collected.set(2, err.fileHandleForReading.readDataToEndOfFile()); group.leave() }
        try p.run()
        if let stdin {
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try? input.fileHandleForWriting.close()
        }
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while p.isRunning {
            if Date() > deadline { timedOut = true; kill(p.processIdentifier, SIGKILL); break }
            usleep(20_000)
        }
        p.waitUntilExit()
        // A child the program left running holds the pipes open: do not wait for it forever.
        _ = group.wait(timeout: .now() + 5)
        return RunResult(status: p.terminationStatus, signalled: p.terminationReason == .uncaughtSignal, timedOut: timedOut,
                         stdout: String(decoding: collected.get(1), as: UTF8.self), stderr: String(decoding: collected.get(2), as: UTF8.self))
    }

    /// Runs one case; returns what went wrong (empty when it behaved), or nil when the case was skipped.
    static func check(_ c: Case, finch: URL, fixtures: Fixtures) throws -> [String]? {
        let fm = FileManager.default
        let work = try TrainerFixture.tempDir("badinput-\(c.name)")
        try fm.removeItem(at: work)
        try fm.copyItem(at: c.folder, to: work)
        let outDir = work.appendingPathComponent("out")
        var values = fixtures.values
        values["FINCH"] = finch.path; values["WORK"] = work.path; values["OUT"] = outDir.path; values["CASE"] = c.folder.path
        var env = ProcessInfo.processInfo.environment
        for (k, v) in values { env[k] = v }
        let spec = c.spec
        let strings: (String) -> [String] = { key in ((spec[key] as? [String]) ?? []).map { substitute($0, values) } }
        var problems: [String] = []
        defer {
            if let teardown = spec["teardown"] as? String {
                _ = try? run("/bin/bash", ["-c", teardown], in: work, environment: env, stdin: nil, timeout: 30)
            }
            if problems.isEmpty { try? fm.removeItem(at: work) }
        }

        if let setup = spec["setup"] as? String {
            let s = try run("/bin/bash", ["-c", "set -e\n" + setup], in: work, environment: env, stdin: nil, timeout: 60)
            if s.status == 77 { return nil }   // the case cannot run here (e.g. no tmpfs mount)
            guard s.status == 0, !s.timedOut else {
                return ["setup failed (status \(s.status)): \(s.stdout.suffix(600)) \(s.stderr.suffix(1200))"]
            }
        }
        let readonly = strings("readonly")
        for path in readonly { _ = chmod(path, 0o555) }
        let intact = strings("intact")
        let before = intact.map { snapshot(URL(fileURLWithPath: $0)) }
        for (path, snap) in zip(intact, before) where snap.isEmpty { problems.append("intact: \(path) is missing or empty before the run") }

        // The command line: finch ARGS, under `ulimit -f` and, for read-only folders as root, without the capability
        // that lets root write anywhere.
        let args = strings("args")
        var prefix = ""
        if let blocks = spec["ulimit_f"] as? Int { prefix += "ulimit -f \(blocks); " }
        var launcher: [String] = []
        if !readonly.isEmpty && getuid() == 0 {
            guard fm.isExecutableFile(atPath: "/usr/bin/setpriv") else { return nil }
            launcher = ["/usr/bin/setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner,-linux_immutable", "--"]
        }
        let script = prefix + "exec \"$@\""
        let timeout = (spec["timeout"] as? Double) ?? 40
        let r = try run("/bin/bash", ["-c", script, "finch"] + launcher + [finch.path] + args, in: work, environment: env,
                        stdin: (spec["stdin"] as? String).map { substitute($0, values) }, timeout: timeout)
        for path in readonly { _ = chmod(path, 0o755) }
        let shown = "\n--- stdout ---\n\(r.stdout.suffix(800))\n--- stderr ---\n\(r.stderr.suffix(1500))"

        if r.timedOut { problems.append("hung: killed after \(timeout) s") }
        let expected = spec["exit"] ?? "nonzero"
        if let want = expected as? Int {
            if r.status != want || r.signalled { problems.append("exit status \(r.status)\(r.signalled ? " (signal)" : ""), expected \(want)") }
        } else if r.signalled || r.status == 0 || r.status >= 128 {
            problems.append("exit status \(r.status)\(r.signalled ? " (killed by a signal)" : ""), expected a clean non-zero exit")
        }
        for marker in ["Program crashed", "Fatal error", "Illegal instruction", "Segmentation fault", "-nan"] where r.stderr.contains(marker) || r.stdout.contains(marker) {
            problems.append("output shows '\(marker)'")
        }
        for s in strings("stderr_contains") where !r.stderr.contains(s) { problems.append("stderr lacks '\(s)'") }
        for s in strings("stdout_contains") where !r.stdout.contains(s) { problems.append("stdout lacks '\(s)'") }
        for path in strings("no_output") where fm.fileExists(atPath: path) { problems.append("left output: \(path)") }
        for (path, snap) in zip(intact, before) where snapshot(URL(fileURLWithPath: path)) != snap {
            problems.append("changed: \(path) (an earlier checkpoint or input was modified)")
        }
        for p in partialFiles(under: work) { problems.append("partial file left: \(p)") }
        if let check = spec["check"] as? String {
            let k = try run("/bin/bash", ["-c", check], in: work, environment: env, stdin: nil, timeout: 30)
            if k.status != 0 { problems.append("check failed (status \(k.status)): \(check)\n\(k.stdout.suffix(400))\(k.stderr.suffix(400))") }
        }
        if !problems.isEmpty { problems.append(shown) }
        if ProcessInfo.processInfo.environment["FINCH_BADINPUT_VERBOSE"] != nil {
            print("--- \(c.name): exit \(r.status)\(r.signalled ? " (signal)" : "")\(r.timedOut ? " (timed out)" : "")\n\(r.stderr.suffix(700))")
        }
        return problems
    }

    func testEveryBadInputCaseFailsCleanly() throws {
        let all = try Self.discover()
        XCTAssertGreaterThanOrEqual(all.count, Self.minimumCases, "the bad-input corpus holds only \(all.count) cases")
        let override = ProcessInfo.processInfo.environment["FINCH_BADINPUT_BIN"].map { URL(fileURLWithPath: $0) }
        guard let finch = override ?? PipelineTests.finchBinary() else { throw XCTSkip("no built finch binary next to the tests (swift build first)") }
        let only = ProcessInfo.processInfo.environment["FINCH_BADINPUT_ONLY"]
        let cases = all.filter { only == nil || $0.name.contains(only!) }
        let fixtures = try Fixtures.make()
        var passed = 0, skipped = 0
        let start = Date()
        for c in cases {
            let t0 = Date()
            guard let problems = try Self.check(c, finch: finch, fixtures: fixtures) else {
                skipped += 1
                print("bad-input \(c.name): skipped (cannot run here)")
                continue
            }
            let secs = String(format: "%.1f s", Date().timeIntervalSince(t0))
            if problems.isEmpty {
                passed += 1
                print("bad-input \(c.name): ok (\(secs))")
            } else {
                XCTFail("bad-input \(c.name): " + problems.joined(separator: "\n  "))
            }
        }
        print(String(format: "bad-input corpus: %d of %d cases ok, %d skipped, %.1f s", passed, cases.count, skipped, Date().timeIntervalSince(start)))
    }
}

private extension URL {
    func creatingFolder() throws -> URL {
        try FileManager.default.createDirectory(at: self, withIntermediateDirectories: true)
        return self
    }
}
