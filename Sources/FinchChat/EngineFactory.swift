import Foundation
import FinchModel
import FinchData

/// Builds the chat engine for a model folder (and optional PEFT adapter folder).
///
/// This is the one place `finch chat` and `finch generate` get a model from: a `DecoderChatEngine` over the
/// folder's weights, tokenizer and stored chat template, with a LoRA adapter merged in when given.
/// `raw`: the model may have no chat template (plain-text generation of a base model).
public func makeChatEngine(modelDir: URL, adapterDir: URL?, raw: Bool = false) throws -> ChatEngine {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: modelDir.path, isDirectory: &isDir), isDir.boolValue || HFModelFolder.isGGUF(modelDir) else {
        throw EngineError("model \(modelDir.path) does not exist (a model folder or a .gguf file)")
    }
    if let adapterDir {
        guard FileManager.default.fileExists(atPath: adapterDir.path, isDirectory: &isDir), isDir.boolValue else {
            throw EngineError("adapter folder \(adapterDir.path) does not exist")
        }
    }
    return try DecoderChatEngine(modelDir: modelDir, adapterDir: adapterDir, raw: raw)
}

/// A model or adapter folder that cannot be turned into a chat engine.
public struct EngineError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
