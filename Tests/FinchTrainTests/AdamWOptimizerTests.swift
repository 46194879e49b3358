import XCTest
import FinchConformance
import FinchKernels
import FinchModel
import FinchTrain

final class AdamWOptimizerTests: XCTestCase {
    /// The optimizer wrapper against torch (`adamw` cases): clipping, states and parameters per step.
    func testAdamWConformance() throws {
        try Conformance.run(kind: "adamw") { c, checker in
            let hp = c.hyperparameters, inp = c.inputs
            let betas = try hp.required("betas", \.doubles)
            let names = try inp.required("parameter_names", \.strings)
            let initial = try inp.required("initial", \.object)
            var params: [String: Tensor] = [:]
            for n in names {
                let (v, s) = try initial.required(n, \.nestedFloats)
                params[n] = Tensor(shape: s, values: v)
            }
            let settings = AdamWSettings(beta1: betas[0], beta2: betas[1], eps: try hp.required("eps", \.double),
                                         weightDecay: try hp.required("weight_decay", \.double),
                                         maxGradNorm: try hp.optional("max_grad_norm", \.double))
            let opt = try AdamWOptimizer(parameters: params, groups: [ParameterGroup(label: "all", names: names)], settings: settings)
            let lr = try hp.required("lr", \.double)
            let file = try c.expectedTensors()
            var norms: [Double] = [], coefs: [Double] = [], clipped: [Bool] = []
            for (k, raw) in try inp.required("raw_grads", \.array).enumerated() {
                var grads: [String: Tensor] = [:]
                for n in names { let (v, s) = try raw.required(n, \.nestedFloats); grads[n] = Tensor(shape: s, values: v) }
                let rep = try opt.step(gradients: grads, lr: lr)
                norms.append(rep.gradNorm); coefs.append(rep.clipCoefficient); clipped.append(rep.clipCoefficient < 1)
                let step = k + 1
                for n in names {
                    let st = opt.state(of: n)!
                    let produced: [String: Tensor] = ["param": params[n]!, "clipped_grad": grads[n]!, "exp_avg": st.m, "exp_avg_sq": st.v]
                    for (what, t) in produced {
                        let key = "step\(step).\(what).\(n)"
                        if file.entries[key] != nil { checker.check(key, actual: t, in: file) }
                    }
                }
            }
            let listed = Set(c.expectedTensorNames)
            let produced = Set(names.flatMap { n in (1...norms.count).flatMap { s in
                ["param", "clipped_grad", "exp_avg", "exp_avg_sq"].map { "step\(s).\($0).\(n)" } } })
            for missing in listed.subtracting(produced).sorted() { checker.fail("expected tensor '\(missing)' is not produced") }
            for name in c.expected.keys.sorted() {
                switch name {
                case "pre_clip_total_norm": checker.check(name, actual: norms, expected: try c.expected.required(name, \.doubles))
                case "clip_coefficient": checker.check(name, actual: coefs, expected: try c.expected.required(name, \.doubles))
                case "step_was_clipped": checker.checkExact(name, actual: clipped, expected: try c.expected.required(name, \.bools))
                default: checker.fail("expected scalar '\(name)' is not produced")
                }
            }
        }
    }

    /// Plain scalar reference (Double) for groups with lr multipliers and decay off, odd sizes.
    func testGroupsAgainstScalarReference() throws {
        var rng = SeededRNG(seed: 3)
        let shapes: [String: [Int]] = ["a": [1], "b": [7, 3], "c": [33], "d": [130, 5]]
        var params: [String: Tensor] = [:]
        var ref: [String: [Double]] = [:]
        for (n, s) in shapes {
            let t = Tensor(shape: s); rng.fillNormal(t.ptr, count: t.count); params[n] = t
            ref[n] = t.array.map(Double.init)
        }
        let groups = [ParameterGroup(label: "low", names: ["a", "b"], lrMultiplier: 0.25),
                      ParameterGroup(label: "nodecay", names: ["c"], weightDecay: false),
                      ParameterGroup(label: "top", names: ["d"], lrMultiplier: 2)]
        let settings = AdamWSettings(beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1, maxGradNorm: nil)
        let opt = try AdamWOptimizer(parameters: params, groups: groups, settings: settings)
        var m = ref.mapValues { $0.map { _ in 0.0 } }, v = m
        for t in 1...4 {
            var grads: [String: Tensor] = [:]
            for (n, s) in shapes { let g = Tensor(shape: s); rng.fillNormal(g.ptr, count: g.count); grads[n] = g }
            let lr = 0.01 * Double(t)
            try opt.step(gradients: grads, lr: lr)
            for g in groups {
                let lrG = lr * g.lrMultiplier, wd = g.weightDecay ? 0.1 : 0
                for n in g.names {
                    for i in 0..<ref[n]!.count {
                        let gi = Double(grads[n]![i])
                        ref[n]![i] *= 1 - lrG * wd
                        m[n]![i] = 0.8 * m[n]![i] + 0.2 * gi
                        v[n]![i] = 0.99 * v[n]![i] + 0.01 * gi * gi
                        let bc1 = 1 - pow(0.8, Double(t)), bc2 = 1 - pow(0.99, Double(t))
                        ref[n]![i] -= lrG / bc1 * m[n]![i] / (v[n]![i].squareRoot() / bc2.squareRoot() + 1e-6)
                    }
                }
            }
        }
        for (n, t) in params {
            for i in 0..<t.count { XCTAssertEqual(Double(t[i]), ref[n]![i], accuracy: 2e-6, "\(n)[\(i)]") }
        }
        XCTAssertEqual(opt.stepCount, 4)
        XCTAssertEqual(opt.parameterCount, 1 + 21 + 33 + 650)
    }

    /// Save, load into a fresh optimizer, continue: identical to an uninterrupted run.
    func testSaveLoadResumesExactly() throws {
        func makeParams() -> [String: Tensor] {
            var rng = SeededRNG(seed: 11)
            var p: [String: Tensor] = [:]
            for (n, c) in [("w", 37), ("b", 5)] { let t = Tensor(shape: [c]); rng.fillNormal(t.ptr, count: c); p[n] = t }
            return p
        }
        func grads(_ step: Int) -> [String: Tensor] {
            var rng = SeededRNG(seed: UInt64(100 + step))
            var g: [String: Tensor] = [:]
            for (n, c) in [("w", 37), ("b", 5)] { let t = Tensor(shape: [c]); rng.fillNormal(t.ptr, count: c, std: 3); g[n] = t }
            return g
        }
        let groups = [ParameterGroup(label: "w", names: ["w"]), ParameterGroup(label: "b", names: ["b"], weightDecay: false)]
        let settings = AdamWSettings(weightDecay: 0.05, maxGradNorm: 1)
        let a = makeParams()
        let optA = try AdamWOptimizer(parameters: a, groups: groups, settings: settings)
        for s in 0..<6 { try optA.step(gradients: grads(s), lr: 1e-2) }

        let b = makeParams()
        let optB = try AdamWOptimizer(parameters: b, groups: groups, settings: settings)
        for s in 0..<3 { try optB.step(gradients: grads(s), lr: 1e-2) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("finch-adamw-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try optB.saveState(to: dir)
        let weights = b.mapValues { $0.copy() }
        let optC = try AdamWOptimizer(parameters: weights, groups: [ParameterGroup(label: "w", names: ["w"])], settings: settings)
        try optC.loadState(from: dir, parameters: weights)
        XCTAssertEqual(optC.groups, groups)
        XCTAssertEqual(optC.stepCount, 3)
        for s in 3..<6 { try optC.step(gradients: grads(s), lr: 1e-2) }
        for n in ["w", "b"] { XCTAssertEqual(weights[n]!.array, a[n]!.array, n) }

        // Errors name what is wrong and change nothing.
        let wrong = ["w": Tensor(shape: [36]), "b": Tensor(shape: [5])]
        XCTAssertThrowsError(try optC.loadState(from: dir, parameters: wrong)) { e in
            XCTAssert("\(e)".contains("exp_avg.w"), "\(e)")
        }
        XCTAssertThrowsError(try optC.step(gradients: ["w": grads(0)["w"]!], lr: 1)) { e in XCTAssert("\(e)".contains("'b'"), "\(e)") }
        let nan = grads(0); nan["w"]![3] = .nan
        let before = weights["w"]!.array
        XCTAssertThrowsError(try optC.step(gradients: nan, lr: 1))
        XCTAssertEqual(weights["w"]!.array, before)
    }

    func testGradualUnfreezingAddsFreshState() throws {
        let p = ["x": Tensor(shape: [3], values: [1, 2, 3]), "y": Tensor(shape: [2], values: [1, 1])]
        let opt = try AdamWOptimizer(parameters: p, groups: [ParameterGroup(label: "x", names: ["x"])], settings: AdamWSettings())
        try opt.step(gradients: ["x": Tensor(shape: [3], values: [1, 1, 1])], lr: 0.1)
        try opt.addGroup(ParameterGroup(label: "y", names: ["y"]), parameters: p)
        XCTAssertThrowsError(try opt.addGroup(ParameterGroup(label: "again", names: ["x"]), parameters: p))
        try opt.step(gradients: ["x": Tensor(shape: [3], values: [1, 1, 1]), "y": Tensor(shape: [2], values: [1, -1])], lr: 0.1)
        XCTAssertEqual(opt.state(of: "x")!.step, 2)
        XCTAssertEqual(opt.state(of: "y")!.step, 1)
        // First step of y: Adam moves each weight by ≈ lr·sign(g) (after decay).
        XCTAssertEqual(p["y"]![0], 1 * (1 - 0.1 * 0.01) - 0.1, accuracy: 1e-6)
        XCTAssertEqual(p["y"]![1], 1 * (1 - 0.1 * 0.01) + 0.1, accuracy: 1e-6)
    }
}
