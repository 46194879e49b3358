import ArgumentParser
import Foundation
import FinchModel

/// `finch convert --from FILE.gguf --out DIR`: a GGUF model as a Hugging Face folder (float32 safetensors,
/// config.json, generation_config.json, the tokenizer as tokenizer.json or tokenizer.model, and
/// tokenizer_config.json with the chat template), loadable by transformers and by every Finch command.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a GGUF model file into a Hugging Face model folder.",
        discussion: """
        Quantised tensors are dequantised exactly as ggml does; llama.cpp's Q/K row permutation and Gemma's stored 1 + w \\
        norms are undone, so transformers computes the same logits from the folder as llama.cpp does from the file.

        Example: finch convert --from SmolLM2-135M-Instruct.Q4_1.gguf --out smollm2/
        """)

    @Option(name: .customLong("from"), help: "The .gguf file to read.") var from: String
    @Option(help: "Folder to write.") var out: String
    @Option(help: "Largest weight file in MB (MiB); larger models are sharded with an index.") var shardSize: Int = 2048

    func run() throws {
        let url = URL(fileURLWithPath: from)
        guard HFModelFolder.isGGUF(url) else { throw ValidationError("--from must be a .gguf file") }
        let start = Date()
        let source = try HFModelFolder.read(url)
        let outURL = URL(fileURLWithPath: out)
        try HFModelFolder.save(config: source.config, parameters: source.parameters, to: outURL,
                               shardSize: shardSize << 20, generationConfig: source.generationConfig,
                               tokenizerModel: source.tokenizerModel)
        print(String(format: "wrote %@ (%d parameters from %@ tensors, float32) to %@ in %.1f s", source.config.hfArchitecture,
                     source.config.parameterCount, source.storedDTypes.joined(separator: "/"), outURL.path, Date().timeIntervalSince(start)))
    }
}
