import ArgumentParser
import Foundation
import FinchData
import FinchGGUF

/// `finch template render`: what the model's own chat template makes of a conversation, byte for byte as
/// transformers' `apply_chat_template(..., tokenize=False)` renders it.
struct TemplateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "template",
        abstract: "Look at a model's own (Jinja) chat template.",
        subcommands: [Render.self])

    struct Render: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Render a conversation with the model's chat template.",
            discussion: """
            The template comes from tokenizer_config.json or chat_template.jinja in a model folder, or from \\
            tokenizer.chat_template in a .gguf file. FILE.json holds a list of messages ({"role", "content", …}), or an \\
            object {"messages": […], "tools": […], …}: other keys are passed to the template as variables.

            Example: finch template render --model smollm2/ --messages chat.json --add-generation-prompt
            """)
        @Option(help: "Model folder or .gguf file.") var model: String
        @Option(help: "JSON file with the messages.") var messages: String
        @Flag(help: "End with the assistant's turn opening, ready for the model to answer.") var addGenerationPrompt = false

        func run() throws {
            let url = URL(fileURLWithPath: model)
            let template: HFChatTemplate
            if url.pathExtension.lowercased() == "gguf" {
                let file = try GGUFFile(contentsOf: url)
                guard let source = file.metadata["tokenizer.chat_template"]?.string else {
                    throw ValidationError("\(model): the GGUF file has no tokenizer.chat_template")
                }
                template = try HFChatTemplate(source: source, name: model, bosToken: file.specialTokenText("bos_token_id"),
                                              eosToken: file.specialTokenText("eos_token_id"))
            } else {
                guard let t = try HFChatTemplate.load(folder: url) else {
                    throw ValidationError("\(model): no chat template (tokenizer_config.json chat_template or chat_template.jinja)")
                }
                template = t
            }
            guard let data = FileManager.default.contents(atPath: messages) else { throw ValidationError("\(messages): cannot read") }
            // Parsed keeping the file's key order: templates that print whole dictionaries (tools | tojson) show it.
            let json: JinjaValue
            do { json = try JinjaValue.parseJSON(String(decoding: data, as: UTF8.self)) } catch {
                throw ValidationError("\(messages): not valid JSON (\(error))")
            }
            var list: [JinjaValue]
            var extra: [String: JinjaValue] = [:]
            var tools: [JinjaValue]? = nil
            switch json {
            case .array(let a):
                list = a
            case .dict(let o):
                guard case .array(let a)? = o["messages"] else {
                    throw ValidationError("\(messages): expected a list of messages or an object with \"messages\"")
                }
                list = a
                if case .array(let t)? = o["tools"] { tools = t }
                for (k, v) in o.pairs where k != "messages" && k != "tools" { extra[k] = v }
            default:
                throw ValidationError("\(messages): expected a list of messages or an object with \"messages\"")
            }
            let text = try template.renderTracking(messages: list, addGenerationPrompt: addGenerationPrompt, tools: tools,
                                                   extra: extra).text
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}
