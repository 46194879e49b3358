import XCTest
import FinchTrain

final class RecipeTests: XCTestCase {
    /// config.yaml reads back with the same types in a YAML 1.1 reader (PyYAML): `1e-3` would be a string there.
    func testRecordedConfigFloatsAreFloatsToPyYAML() throws {
        let recipe = try Recipe(defaults: ["lr": 1e-3, "beta2": 0.999, "epochs": 1.0, "eps": 1e-8, "big": 3.0e20, "steps": 7, "name": "x"], flags: [:])
        let yaml = try recipe.yaml()
        XCTAssertTrue(yaml.contains("lr: 1.0e-03") || yaml.contains("lr: 0.001"), yaml)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString.prefix(6)).yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        let check = try ToolProcess.run("/usr/bin/env", ["python3", "-c", """
            import sys, yaml
            d = yaml.safe_load(open(sys.argv[1]))
            bad = [k for k in ("lr", "beta2", "epochs", "eps", "big") if not isinstance(d[k], float)]
            assert not bad and isinstance(d["steps"], int) and d["lr"] == 1e-3 and d["eps"] == 1e-8, (bad, d)
            """, file.path], in: FileManager.default.temporaryDirectory)
        XCTAssertEqual(check.status, 0, check.output)
    }

    struct Config: Codable, Equatable {
        var lr: Double = 3e-4
        var epochs: Double = 1
        var maxSteps: Int?
        var batchSize: Int = 8
        var schedule: String = "cosine"
        var targetModules: [String] = []
        var cacheFeatures: Bool = false
        var seed: UInt64 = 0
    }

    func testFlagsWinOverRecipeOverDefaults() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-recipe-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let yaml = dir.appendingPathComponent("recipe.yaml")
        try """
        # SFT recipe
        lr: 1e-4
        batch_size: 4
        max-steps: 200
        target-modules: [q_proj, v_proj]
        cache-features: yes
        schedule: linear
        """.write(to: yaml, atomically: true, encoding: .utf8)
        let defaults = try Recipe.defaults(from: Config())
        XCTAssertEqual(Set(defaults.keys), ["lr", "epochs", "batch-size", "schedule", "target-modules", "cache-features", "seed"])
        let known = Set(defaults.keys).union(["max-steps"])
        let r = try Recipe(defaults: defaults, recipe: yaml, flags: ["batch-size": 16, "seed": 7], knownKeys: known)
        XCTAssertEqual(try r.double("lr"), 1e-4)
        XCTAssertEqual(try r.int("batch-size"), 16)
        XCTAssertEqual(r.sources["batch-size"], .flag)
        XCTAssertEqual(r.sources["lr"], .recipe)
        XCTAssertEqual(r.sources["epochs"], .defaultValue)
        XCTAssertEqual(r.origin(of: "max_steps"), "\(yaml.path):4")
        XCTAssertEqual(try r.strings("target-modules"), ["q_proj", "v_proj"])
        let c = try r.decode(Config.self)
        XCTAssertEqual(c, Config(lr: 1e-4, epochs: 1, maxSteps: 200, batchSize: 16, schedule: "linear",
                                 targetModules: ["q_proj", "v_proj"], cacheFeatures: true, seed: 7))

        // The resolved configuration is recorded in the run folder, and reads back the same.
        let run = try RunFolder(url: dir.appendingPathComponent("run"))
        try r.write(to: run)
        let back = try Recipe(recipe: run.configYAMLURL)
        XCTAssertEqual(try back.decode(Config.self), c)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: run.configJSONURL)) as? [String: Any]
        XCTAssertEqual((json?["batch-size"] as? NSNumber)?.intValue, 16)

        // Errors name the file, line and key.
        try "lr: 1e-4\nlerning-rate: 3\n".write(to: yaml, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Recipe(recipe: yaml, knownKeys: ["lr", "learning-rate"])) { e in
            XCTAssert("\(e)".contains("recipe.yaml:2: unknown key 'lerning-rate' (did you mean 'learning-rate'?)"), "\(e)")
        }
        try "batch-size: many\n".write(to: yaml, atomically: true, encoding: .utf8)
        let bad = try Recipe(defaults: defaults, recipe: yaml)
        XCTAssertThrowsError(try bad.decode(Config.self)) { e in XCTAssert("\(e)".contains("recipe.yaml:1: 'batch-size'"), "\(e)") }
        XCTAssertThrowsError(try bad.int("batch-size")) { e in XCTAssert("\(e)".contains("must be an integer"), "\(e)") }
        try "- a\n- b\n".write(to: yaml, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Recipe(recipe: yaml)) { e in XCTAssert("\(e)".contains("must be a mapping"), "\(e)") }
        XCTAssertThrowsError(try Recipe(flags: ["batch-sise": 1], knownKeys: known)) { e in XCTAssert("\(e)".contains("--batch-sise"), "\(e)") }
    }
}

final class ProgressTests: XCTestCase {
    func testTerminalPlainAndQuiet() {
        var out = ""
        var now = 100.0
        let tty = Progress(total: 100, mode: .terminal, write: { out += $0 }, clock: { now }, columns: { nil })
        tty.update(step: 1, loss: 2.5, lr: 1e-4, tokens: 1000)
        now += 2
        tty.update(step: 3, loss: 2.25, lr: 2e-4, tokens: 2000, extra: [("kl", "0.012")])
        XCTAssert(out.hasPrefix("\rstep 1/100 · loss 2.5000 · lr 1.00e-04"), out)
        XCTAssert(out.contains("\rstep 3/100 · loss 2.2500 · lr 2.00e-04 · 1.0k tok/s · kl 0.012 · ETA 1m37s\u{1B}[K"), out)
        XCTAssertFalse(out.contains("\n"))
        tty.message("eval loss 2.1")
        XCTAssert(out.hasSuffix("\u{1B}[K\neval loss 2.1\n"), out)

        var plain = ""
        let p = Progress(total: 25, mode: .plain, every: 10, write: { plain += $0 }, clock: { now })
        for s in 1...25 { now += 1; p.update(step: s, loss: 1, lr: 1, tokens: 10) }
        XCTAssertEqual(plain.split(separator: "\n").map { String($0.prefix(10)) }, ["step 10/25", "step 20/25", "step 25/25"])

        var quiet = ""
        let q = Progress(total: 5, mode: .quiet, write: { quiet += $0 })
        q.update(step: 5, loss: 1, lr: 1); q.message("x"); q.finish()
        XCTAssertEqual(quiet, "")
        XCTAssertEqual(Progress.duration(3725), "1h02m")
        XCTAssertEqual(Progress.compact(4_560_000), "4.56M")
    }

    /// A line rewritten in place never reaches the terminal's width (it would wrap, and `\r` would then rewrite
    /// only its last row): extras go from the end first, then the rest is cut. A log line keeps every field.
    func testTerminalLineFitsTheWidth() {
        let extra = [("reward", "0.438"), ("kl", "0.051"), ("len", "5.8"), ("ent", "1.23"), ("clip", "0.000")]
        func lastLine(width: Int?) -> String {
            var out = ""
            var now = 0.0
            let p = Progress(total: 120, mode: .terminal, write: { out += $0 }, clock: { now }, columns: { width })
            p.update(step: 1, loss: 0.5, lr: 3e-4, tokens: 100, extra: extra)
            now += 1
            out = ""
            p.update(step: 2, loss: 0.25, lr: 3e-4, tokens: 100, extra: extra)
            return String(out.dropFirst().dropLast(3))   // without "\r" and the erase escape
        }
        let full = lastLine(width: nil)
        XCTAssertEqual(full, "step 2/120 · loss 0.2500 · lr 3.00e-04 · 100 tok/s · reward 0.438 · kl 0.051 · len 5.8 · ent 1.23 · clip 0.000 · ETA 1m58s")
        XCTAssertEqual(lastLine(width: 200), full)
        for width in [20, 60, 80, 100, 120] {
            let line = lastLine(width: width)
            XCTAssertLessThan(line.count, width, line)
            if width >= 80 { XCTAssert(line.hasPrefix("step 2/120 · loss 0.2500") && line.hasSuffix("ETA 1m58s"), line) }
        }
        XCTAssertEqual(lastLine(width: 80), "step 2/120 · loss 0.2500 · lr 3.00e-04 · 100 tok/s · reward 0.438 · ETA 1m58s")
        var plain = ""
        let p = Progress(total: 1, mode: .plain, write: { plain += $0 }, clock: { 0 }, columns: { 20 })
        p.update(step: 1, loss: 1, lr: 1, extra: extra)
        XCTAssert(plain.contains("clip 0.000"), plain)
    }
}

final class StopSignalTests: XCTestCase {
    func testFirstSignalOnlySetsTheFlag() {
        StopSignal.install()
        defer { StopSignal.uninstall() }
        XCTAssertFalse(StopSignal.requested)
        raise(SIGINT)   // delivered synchronously to this thread
        XCTAssertTrue(StopSignal.requested)
        StopSignal.reset()
        XCTAssertFalse(StopSignal.requested)
        raise(SIGTERM)
        XCTAssertTrue(StopSignal.requested)
        StopSignal.reset()
        StopSignal.request()
        XCTAssertTrue(StopSignal.requested)
    }
}
