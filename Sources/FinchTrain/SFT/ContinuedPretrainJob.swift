import Foundation

/// `finch pretrain --model M`: domain-adaptive (continued) pretraining of a model Finch can load, its own or an
/// imported one, on raw text, in full or with a PEFT method, with replay of a general corpus against forgetting.
/// The text is packed as `finch pretrain` packs it (cut into windows, every token trained); the training itself is
/// `finch sft`'s (same trainer, checkpoints, resume, PEFT methods), so this maps the pretrain options onto an
/// `SFTConfig`. Forgetting is reported as the perplexity on the general text (`--base-eval`, default `--replay`)
/// before and after, beside the domain's held-out perplexity before and after.
public enum ContinuedPretrainJob {
    public static func run(_ pretrain: PretrainConfig, recipe: Recipe?, progress sink: any ProgressSink) throws -> JobReport {
        try pretrain.validate()
        return try SFTJob.run(sftConfig(pretrain), recipe: recipe ?? Recipe.of(pretrain), progress: sink)
    }

    /// The `finch sft` configuration that trains exactly what `finch pretrain --model` asks for.
    public static func sftConfig(_ pretrain: PretrainConfig) -> SFTConfig {
        let p = pretrain.job
        var job = SFTJobOptions(model: p.model ?? "", data: p.data, out: p.out)
        job.template = nil            // the model keeps its own chat template; raw text is not templated anyway
        job.evalFraction = p.evalFraction
        job.replay = p.replay
        job.baseEval = p.baseEval
        job.baseEvalBatches = p.baseEvalBatches
        job.resume = p.resume
        job.merge = p.merge
        job.trainOnPrompt = true      // language modelling: every token is a target
        job.threads = p.threads
        return SFTConfig(job: job, training: pretrain.training, peft: pretrain.peft)
    }
}
