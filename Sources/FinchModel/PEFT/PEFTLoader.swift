import Foundation

/// Opens any adapter folder Finch can train or serve, by its `peft_type`.
public enum PEFTLoader {
    /// A `LoRAModule` (LORA), `PromptTuningModule` (PROMPT_TUNING), `PrefixTuningModule` (PREFIX_TUNING) or
    /// `AdapterModule` (Finch's ADAPTER) for `decoder`. Call `attach(to: decoder)` before use.
    public static func load(folder: URL, decoder: Decoder) throws -> PEFTModule {
        switch try PEFTAdapterFolder.peftType(of: folder) {
        case "ADAPTER": return try AdapterModule(folder: folder, config: decoder.config)
        case "PROMPT_TUNING": return try PromptTuningModule(folder: folder, decoder: decoder)
        case "PREFIX_TUNING": return try PrefixTuningModule(folder: folder, decoder: decoder)
        default: return try LoRAModule(folder: folder, decoder: decoder)   // LORA, or PEFTAdapterFolder's error
        }
    }
}
