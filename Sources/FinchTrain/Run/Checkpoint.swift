import Foundation
import FinchKernels
import FinchModel

/// A resumable checkpoint folder:
/// ```
/// trainable.safetensors   the trainable tensors (decoder HF names or PEFT adapter keys)
/// optimizer.safetensors   AdamW moments;  optimizer.json: groups, step counts
/// trainer_state.json      step (= schedule position), epoch, RNG state, data cursors, best eval, patience
/// ```
/// plus whatever the caller's `extra` writes (a usable model or adapter folder). Written into a temporary
/// folder and renamed into place by `RunFolder`, so it is complete or absent.
public enum Checkpoint {
    public static let weightsFile = "trainable.safetensors"

    /// Writes weights, optimizer state and trainer state into `folder` (which exists and is empty).
    public static func write(to folder: URL, parameters: [String: Tensor], optimizer: AdamWOptimizer,
                             state: TrainingState) throws {
        var tensors: [String: Tensor] = [:]
        for name in optimizer.parameterNames {
            guard let t = parameters[name] else { throw TrainingError("checkpoint: no tensor for trainable parameter '\(name)'") }
            tensors[name] = t
        }
        try SafeTensors.write(tensors, to: folder.appendingPathComponent(weightsFile))
        try optimizer.saveState(to: folder)
        try state.save(to: folder)
    }

    /// Copies the saved tensors into the live `parameters` (same names and shapes; every saved name must
    /// exist), restores the optimizer (bound to those live tensors) and returns the trainer state.
    @discardableResult
    public static func restore(from folder: URL, into parameters: [String: Tensor], optimizer: AdamWOptimizer?) throws -> TrainingState {
        let url = folder.appendingPathComponent(weightsFile)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw TrainingError("\(folder.path): not a Finch checkpoint (no \(weightsFile))")
        }
        let state = try TrainingState.load(from: folder)
        let file = try SafeTensors.File(url: url)
        for name in file.entries.keys.sorted() {
            guard let dst = parameters[name] else {
                throw TrainingError("\(url.path): tensor '\(name)' is not a trainable parameter of this run (different method or model?)")
            }
            let t = try file.tensor(name)
            guard t.shape == dst.shape else {
                throw TrainingError("\(url.path): tensor '\(name)' has shape \(t.shape), the model has \(dst.shape)")
            }
            dst.copy(from: t)
        }
        try optimizer?.loadState(from: folder, parameters: parameters)
        return state
    }

    /// The trainer state of a checkpoint without loading anything else.
    public static func state(at folder: URL) throws -> TrainingState { try TrainingState.load(from: folder) }
}
