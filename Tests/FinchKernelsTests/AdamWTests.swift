import XCTest
import Foundation
import FinchKernels
import FinchConformance

final class AdamWTests: XCTestCase {
    /// The SIMD step against a scalar Double transcription of torch's formulas, odd sizes, several steps.
    func testStepMatchesScalarReference() {
        var rng = MKRNG(11)
        let h = AdamW.Hyper(lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1)
        for n in mkOddSizes + [257] {
            let p = rng.tensor([n]), m = Tensor(shape: [n]), v = Tensor(shape: [n])
            var rp = p.array.map(Double.init), rm = [Double](repeating: 0, count: n), rv = rm
            for t in 1...4 {
                let g = rng.tensor([n])
                AdamW.step(param: p, grad: g, m: m, v: v, hyper: h, step: t)
                let bc1 = 1 - pow(0.9, Double(t)), bc2 = 1 - pow(0.95, Double(t))
                for i in 0..<n {
                    let gi = Double(g[i])
                    rp[i] *= 1 - Double(h.lr) * Double(h.weightDecay)
                    rm[i] = 0.9 * rm[i] + 0.1 * gi
                    rv[i] = 0.95 * rv[i] + 0.05 * gi * gi
                    rp[i] -= Double(h.lr) / bc1 * rm[i] / (rv[i].squareRoot() / bc2.squareRoot() + 1e-8)
                }
            }
            mkAssertClose(p.array, rp.map(Float.init), abs: 1e-6, rel: 1e-5, "param n=\(n)")
            mkAssertClose(m.array, rm.map(Float.init), abs: 1e-7, rel: 1e-5, "m n=\(n)")
            mkAssertClose(v.array, rv.map(Float.init), abs: 1e-8, rel: 1e-5, "v n=\(n)")
        }
    }

    func testClipMatchesScalarReference() {
        var rng = MKRNG(5)
        let ts = mkOddSizes.map { rng.tensor([$0], scale: 2) }
        let before = ts.map { $0.array }
        let ref = before.flatMap { $0 }.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let norm = Clip.clip(ts, maxNorm: 1.0)
        XCTAssertEqual(norm, ref, accuracy: ref * 1e-12)
        let coef = Float(1.0 / (ref + 1e-6))
        for (t, b) in zip(ts, before) { mkAssertClose(t.array, b.map { $0 * coef }, abs: 1e-7, rel: 1e-6, "clipped") }
        // Below the limit nothing changes.
        let again = ts.map { $0.array }
        Clip.clip(ts, maxNorm: 10)
        for (t, b) in zip(ts, again) { XCTAssertEqual(t.array, b) }
    }

    /// The `adamw` conformance kind: clipping + several AdamW steps, as torch computed them.
    func testConformanceCases() throws {
        try Conformance.run(kind: "adamw") { c, checker in
            let hp = c.hyperparameters, inputs = c.inputs
            let betas = try hp.required("betas", \.doubles)
            let hyper = AdamW.Hyper(lr: Float(try hp.required("lr", \.double)), beta1: Float(betas[0]), beta2: Float(betas[1]),
                                    eps: Float(try hp.required("eps", \.double)),
                                    weightDecay: Float(try hp.required("weight_decay", \.double)))
            let maxNorm = try hp.required("max_grad_norm", \.double)
            let steps = try hp.required("steps", \.int)
            let names = try inputs.required("parameter_names", \.strings)
            let initial = try inputs.required("initial", \.object)
            let rawGrads = try inputs.required("raw_grads", \.array)
            guard steps > 0, rawGrads.count >= steps, !names.isEmpty else {
                checker.fail("case.json: steps \(steps), \(rawGrads.count) raw_grads, \(names.count) parameter names")
                return
            }
            let expected = try c.expectedTensors()
            var params: [String: Tensor] = [:], ms: [String: Tensor] = [:], vs: [String: Tensor] = [:]
            for name in names {
                let (values, shape) = try initial.required(name, \.nestedFloats)
                params[name] = Tensor(shape: shape.isEmpty ? [values.count] : shape, values: values)
                ms[name] = Tensor(shape: params[name]!.shape)
                vs[name] = Tensor(shape: params[name]!.shape)
            }
            var norms: [Double] = [], coefs: [Double] = []
            for step in 1...steps {
                let grads: [Tensor] = try names.map { name in
                    let (values, _) = try rawGrads[step - 1].required(name, \.nestedFloats)
                    return Tensor(shape: params[name]!.shape, values: values)
                }
                let norm = Clip.clip(grads, maxNorm: maxNorm)
                norms.append(norm)
                coefs.append(Clip.coefficient(norm: norm, maxNorm: maxNorm))
                for (name, g) in zip(names, grads) {
                    AdamW.step(param: params[name]!, grad: g, m: ms[name]!, v: vs[name]!, hyper: hyper, step: step)
                    checker.check("step\(step).clipped_grad.\(name)", actual: g, in: expected)
                    checker.check("step\(step).param.\(name)", actual: params[name]!, in: expected)
                    checker.check("step\(step).exp_avg.\(name)", actual: ms[name]!, in: expected)
                    checker.check("step\(step).exp_avg_sq.\(name)", actual: vs[name]!, in: expected)
                }
            }
            checker.check("pre_clip_total_norm", actual: norms, expected: try c.expected.required("pre_clip_total_norm", \.doubles))
            checker.check("clip_coefficient", actual: coefs, expected: try c.expected.required("clip_coefficient", \.doubles))
        }
    }
}
