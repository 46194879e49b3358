#!/usr/bin/env python3
"""Drives `finch chat` through a real pseudo-terminal, as a person would, and checks the screen.

Usage: chat_pty_test.py /path/to/finch

Uses the hidden test hook `--engine echo` (a deterministic stand-in that answers "echo: <message>",
one word per token, sleeping --echo-delay-ms between tokens), so the REPL mechanics are tested
without a model: streaming, line editing, history, commands, Ctrl-C during a reply, Ctrl-D.
Exit status 0 = every check passed; 77 = pexpect missing (skip).
"""
import json
import os
import sys
import tempfile
import time

try:
    import pexpect
except ImportError:
    print("SKIP: python3 module pexpect is not installed")
    sys.exit(77)

LEFT, RIGHT, HOME, END, UP = "\x1b[D", "\x1b[C", "\x1b[H", "\x1b[F", "\x1b[A"
PROMPT = ">>> "


def main():
    finch = sys.argv[1]
    work = tempfile.mkdtemp(prefix="finch-chat-pty-")
    history = os.path.join(work, "history")
    saved = os.path.join(work, "chats.jsonl")
    prefs = os.path.join(work, "prefs.jsonl")
    env = dict(os.environ, FINCH_HISTORY=history, NO_COLOR="1", TERM="xterm")
    child = pexpect.spawn(finch, ["chat", "--engine", "echo", "--echo-delay-ms", "40", "--echo-context", "400",
                                  "--prefs", prefs], env=env, encoding="utf-8", dimensions=(24, 100), timeout=10)
    transcript = open(os.path.join(work, "screen.log"), "w")
    child.logfile_read = transcript
    checks = []

    def check(name, ok):
        checks.append(name)
        if not ok:
            raise AssertionError(name)
        print("ok:", name)

    def expect(text, name):
        try:
            child.expect_exact(text)
        except (pexpect.TIMEOUT, pexpect.EOF):
            raise AssertionError("%s: %r never appeared; screen tail: %r" % (name, text, (child.before or "")[-400:]))
        check(name, True)

    try:
        expect("Type /help", "banner")
        expect(PROMPT, "prompt")

        child.send("hello world\r")
        expect("echo: hello world", "reply to a message")
        expect(PROMPT, "prompt after the reply")

        # Streaming: the first words appear well before the last one.
        words = " ".join("w%d" % i for i in range(15)) + " zebra"
        child.send(words + "\r")
        expect("echo: w0", "first token shows")
        t0 = time.time()
        check("reply still streaming when the first token shows", "zebra" not in child.buffer)
        expect("zebra", "last token shows")
        check("tokens arrive over time (%.2fs)" % (time.time() - t0), time.time() - t0 > 0.3)
        expect(PROMPT, "prompt after the streamed reply")

        # Line editing: arrows, Home/End, Ctrl-A/E, UTF-8 backspace, Ctrl-W, Ctrl-U, Ctrl-K.
        child.send("abc" + LEFT + LEFT + "X" + HOME + "Y" + END + "Z\r")
        expect("echo: YaXbcZ", "left/home/end editing")
        child.send("héllo wörld\x17" + "\x7f\x7f\x7fp\r")   # Ctrl-W deletes "wörld", 3 backspaces eat " ", "o", "l"
        expect("echo: hélp", "Ctrl-W and UTF-8 backspace")
        child.send("junk\x15keep this\x01[\x05]\r")          # Ctrl-U, Ctrl-A, Ctrl-E
        expect("echo: [keep this]", "Ctrl-U, Ctrl-A, Ctrl-E")
        child.send("cut here" + LEFT * 5 + "\x0b\r")          # Ctrl-K
        expect("echo: cut", "Ctrl-K")
        child.send("한국어 ok" + LEFT * 3 + "\x1b[3~\r")       # Delete key removes the space
        expect("echo: 한국어ok", "wide characters and the Delete key")

        # History: Up brings back the previous line.
        child.send(UP + UP + "!\r")
        expect("echo: cut!", "up-arrow history")

        # Commands.
        child.send("/set temperature=0 top_k=3 max_tokens=100\r")
        expect("temperature=0 (greedy) top_k=3 max_tokens=100", "/set echoes the new values")
        child.send("/set top_p=7\r")
        expect("top_p=7: must be in (0, 1]", "/set error names the key")
        child.send("/show\r")
        expect("context: ", "/show context use")
        expect("settings: temperature=0 (greedy) top_k=3", "/show settings")
        expect("tokens/s", "/show last reply speed")
        child.send("/bogus\r")
        expect("unknown command /bogus", "unknown command")

        # Ctrl-C on a partly typed line clears it.
        child.send("partial")
        child.sendcontrol("c")
        expect("^C", "Ctrl-C on a partial line")
        child.send("fresh\r")
        expect("echo: fresh", "line after Ctrl-C starts empty")

        # /retry then /prefer and /save.
        child.send("/retry\r")
        expect("echo (2): fresh", "/retry gives another answer")
        expect("/prefer 1 keeps", "/retry hints at /prefer")
        child.send("/prefer 1\r")
        expect("preference recorded", "/prefer writes a record")
        child.send("/save %s\r" % saved)
        expect("saved ", "/save writes the conversation")

        # Ctrl-C while a slow reply streams stops it and returns to the prompt.
        long = " ".join("slow%d" % i for i in range(60)) + " never"
        child.send(long + "\r")
        expect("echo: slow0 slow1", "slow reply starts")
        child.sendintr()
        expect("[interrupted]", "Ctrl-C marks the reply interrupted")
        streamed = child.before or ""
        check("the reply stopped early (%d of 61 tokens shown)" % (streamed.count("slow") + 2),
              "never" not in streamed and "slow59" not in streamed)
        expect(PROMPT, "prompt is back after Ctrl-C")
        child.send("/show\r")
        expect("stopped: interrupted", "/show reports the interrupted reply")
        child.send("still alive\r")
        expect("echo: still alive", "chat goes on after Ctrl-C")

        # Filling the 400-token context drops old exchanges with a notice.
        child.send("/set max_tokens=2\r")
        expect("max_tokens=2", "/set max_tokens")
        dropped = False
        for i in range(12):
            child.send(" ".join("fill%d" % k for k in range(40)) + "\r")
            idx = child.expect_exact(["dropped the", "echo: fill0"])
            if idx == 0:
                dropped = True
                break
            child.expect_exact("[max_tokens reached]")
        check("context full notice after %d long messages" % (i + 1), dropped)
        expect("[max_tokens reached]", "reply after dropping old turns")
        child.send("/system be brief\r")
        expect("system prompt set", "/system")
        expect(PROMPT, "prompt after /system")   # keys sent before the editor is back in raw mode could be lost

        # Ctrl-D on an empty line exits cleanly.
        child.sendcontrol("d")
        child.expect(pexpect.EOF)
        child.close()
        check("Ctrl-D exits with status 0", child.exitstatus == 0)

        record = json.loads(open(saved).read().splitlines()[-1])
        roles = [m["role"] for m in record["messages"]]
        check("saved record is chat format", roles[:2] == ["user", "assistant"] and len(roles) % 2 == 0)
        check("saved record holds the preferred answer", record["messages"][-1]["content"] == "echo: fresh")
        pref = json.loads(open(prefs).read().splitlines()[-1])
        check("preference record", pref["chosen"] == "echo: fresh" and pref["rejected"] == "echo (2): fresh"
              and pref["prompt"][-1] == {"role": "user", "content": "fresh"})
        lines = open(history).read().splitlines()
        check("history file keeps the typed lines", "hello world" in lines and "/show" in lines and "partial" not in lines)
    except AssertionError as e:
        print("FAIL:", e)
        print("screen log:", transcript.name)
        if child.isalive():
            child.terminate(force=True)
        return 1
    print("pty test passed: %d checks" % len(checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
