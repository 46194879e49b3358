#!/usr/bin/env python3
"""Drives `finch chat` on a real model through a pseudo-terminal, as a person would: asks a question at the
prompt and checks the streamed answer. Usage: chat_real_model_pty.py FINCH MODEL QUESTION EXPECTED_WORD
Exit 0 when the reply (greedy) contains EXPECTED_WORD; 77 when pexpect is missing."""
import sys

try:
    import pexpect
except ImportError:
    print("SKIP: python3 module pexpect is not installed")
    sys.exit(77)

finch, model, question, expected = sys.argv[1:5]
child = pexpect.spawn(finch, ["chat", "--model", model, "--temperature", "0", "--repetition-penalty", "1",
                              "--max-tokens", "32"], encoding="utf-8", timeout=120, dimensions=(40, 120))
child.expect(">>> ")
child.send(question + "\r")
try:
    child.expect(expected)
    child.expect(">>> ")
    ok = True
except (pexpect.TIMEOUT, pexpect.EOF):
    ok = False
screen = child.before or ""
child.sendcontrol("d")
child.expect(pexpect.EOF)
print(("PASS" if ok else "FAIL") + f": {question!r} -> {screen.strip()[-300:]!r}")
sys.exit(0 if ok else 1)
