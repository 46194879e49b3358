import Foundation

/// Runs `finch chat` on standard input/output: an interactive REPL on a terminal, or one reply per
/// input line when standard input is not a terminal.
public enum ChatREPL {
    /// The prompt shown before each user message.
    public static let prompt = ">>> "

    /// Runs until `/quit`, Ctrl-D or end of input.
    public static func run(engine: ChatEngine, system: String?, settings: SamplingSettings,
                           verbose: Bool, preferencesFile: URL?) {
        if let terminal = TerminalMode(fd: 0), isatty(1) == 1 {
            runInteractive(terminal: terminal, engine: engine, system: system, settings: settings,
                           verbose: verbose, preferencesFile: preferencesFile)
        } else {
            runPiped(engine: engine, system: system, settings: settings, verbose: verbose,
                     preferencesFile: preferencesFile)
        }
    }

    static func runInteractive(terminal: TerminalMode, engine: ChatEngine, system: String?,
                               settings: SamplingSettings, verbose: Bool, preferencesFile: URL?) {
        let out = FDWriter(fd: 1)
        let presenter = TerminalPresenter(out: out)
        let session = ChatSession(engine: engine, system: system, settings: settings, presenter: presenter,
                                  verbose: verbose, preferencesFile: preferencesFile)
        session.interruptRequested = { Interrupt.requested }
        let editor = LineEditor(input: 0, output: out, history: History(file: History.defaultFile),
                                columns: { terminal.columns() })
        Interrupt.install()
        defer { terminal.restore() }
        out.write("finch chat: \(engine.name). Type /help for commands, Ctrl-C stops a reply, Ctrl-D quits.\n")
        while true {
            terminal.enterRaw()
            guard let line = editor.readLine(prompt: prompt) else { break }
            terminal.enterReply()
            editor.history.add(line)
            Interrupt.clear()
            if !session.handle(line: line) { break }
        }
    }

    static func runPiped(engine: ChatEngine, system: String?, settings: SamplingSettings, verbose: Bool,
                         preferencesFile: URL?) {
        let out = FDWriter(fd: 1)
        let presenter = PipePresenter(out: out)
        let session = ChatSession(engine: engine, system: system, settings: settings, presenter: presenter,
                                  verbose: verbose, preferencesFile: preferencesFile)
        while let line = Swift.readLine(strippingNewline: true) {
            // Every input line is a message (no commands), and every message gets exactly one output line.
            if line.trimmingCharacters(in: .whitespaces).isEmpty { out.write("\n"); continue }
            if !session.send(line) { out.write("\n") }   // failed (error on stderr): keep lines aligned
        }
    }
}
