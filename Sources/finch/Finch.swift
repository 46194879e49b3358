import ArgumentParser

@main
struct Finch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finch",
        abstract: "Instruction-tuning suite for GPT-style decoders on the CPU.",
        subcommands: [Tokenizer.self, DataCommand.self, ChatCommand.self, GenerateCommand.self, InspectCommand.self, ExportCommand.self, ConvertCommand.self, TemplateCommand.self, Bench.self, Merge.self, PretrainCommand.self, SFTCommand.self, EvalCommand.self, ClassifyCommand.self, RewardTrain.self, ScoreCommand.self, DPOCommand.self, PPOCommand.self])
}
