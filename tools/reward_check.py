#!/usr/bin/env python3
"""Reward program for `finch ppo --reward-command`: scores responses to Finch's checkable tasks.

Reads JSONL lines {"prompt": ..., "response": ..., "task"?: ..., "answer"?: ...} on stdin and writes
one number per line on stdout, flushed after each line:

    1.0   the response equals the answer after normalising (trim, lowercase, collapse spaces,
          strip a trailing period and surrounding quotes; JSON answers compared as JSON;
          no lowercasing for the tasks about letter case: uppercase, title_case)
    0.5   the right answer with extra text, the right items with other punctuation, or a bare
          number off by a little (within 2 % of the answer; small answers such as counts and
          lengths get no credit for being one off, so a near miss never pays half of a hit)
    0.25  a number off by a little, with extra text
          (extra text earns nothing when the answer occurs in the question itself, as the largest of a
          list does: a reply that restates the question would hold it without answering)
    0.0   anything else (including hedging between the candidates of a reasoning question)
    open_ended rows: SQuAD token F1 against the reference answer, in [0, 1]

When a line carries no answer, its prompt is looked up in corpora/ppo_prompts.jsonl,
corpora/eval.jsonl, corpora/instructions.jsonl and corpora/preferences.jsonl (exactly, after
collapsing whitespace, or as the longest known prompt contained in a chat-templated prompt).
An unknown prompt scores 0.0 with a warning on stderr (or stops the program with --strict).
A line that is not a JSON object stops the program with exit status 2 and a message naming the line.

    python3 tools/reward_check.py --self-test
    echo '{"prompt": "What is 2 + 3?", "response": "5", "answer": "5"}' | python3 tools/reward_check.py
"""

import argparse
import json
import os
import re
import string
import sys

END_MARKERS = ["<|im_end|>", "<|eot_id|>", "<|endoftext|>", "</s>", "<|end|>", "<eos>"]
# Tasks whose answer is about letter case: compared without lowercasing.
CASE_SENSITIVE_TASKS = {"uppercase", "title_case"}
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def collapse(text):
    return " ".join(text.split())


def normalize(text, keep_case=False):
    """Same rule as EvalMetrics.normalizeAnswer, plus surrounding quotes removed."""
    t = collapse(text if keep_case else text.lower())
    while t.endswith("."):
        t = t[:-1]
    t = t.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"`":
        t = t[1:-1].strip()
    return t


def clean_response(text):
    for marker in END_MARKERS:
        cut = text.find(marker)
        if cut >= 0:
            text = text[:cut]
    return text.strip()


def squad_tokens(text):
    table = str.maketrans({c: " " for c in string.punctuation})
    return [w for w in text.lower().translate(table).split() if w not in ("a", "an", "the")]


def token_f1(prediction, reference):
    p, r = squad_tokens(prediction), squad_tokens(reference)
    if not p or not r:
        return 1.0 if p == r else 0.0
    counts = {}
    for t in r:
        counts[t] = counts.get(t, 0) + 1
    common = 0
    for t in p:
        if counts.get(t, 0) > 0:
            counts[t] -= 1
            common += 1
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(r)
    return 2 * precision * recall / (precision + recall)


def as_number(text):
    try:
        return float(text)
    except ValueError:
        return None


def candidates(task, prompt):
    """The options a reasoning question offers, so that naming all of them earns nothing."""
    if task == "taller":
        return {n for pair in re.findall(r"\b([A-Z][a-z]+) is (?:taller|shorter) than ([A-Z][a-z]+)", prompt) for n in pair}
    if task == "comes_first":
        pairs = re.findall(r"(?:Of|Between) (\w+) and (\w+)", prompt) or re.findall(r"(\w+) or (\w+)", prompt)
        return set(pairs[-1]) if pairs else set()
    return set()


def contains_word(haystack, needle):
    return re.search(r"(?<![\w])" + re.escape(needle) + r"(?![\w])", haystack) is not None


def score(prompt, response, task, answer):
    response = clean_response(response)
    if not response:
        return 0.0
    if task == "open_ended":
        return token_f1(response, answer)
    keep_case = task in CASE_SENSITIVE_TASKS
    got, want = normalize(response, keep_case), normalize(answer, keep_case)
    if got == want:
        return 1.0
    if answer.lstrip().startswith("{"):
        try:
            if json.loads(response) == json.loads(answer):
                return 1.0
        except ValueError:
            pass
    # A longer reply earns partial credit for holding the answer only when it could not hold it by restating the
    # question: "The largest of 86, 43, 28 is 96." names 86 because the question does. An answer that occurs in
    # the question earns credit only as the bare answer (the reasoning tasks name their candidates in the question
    # and have their own rule below).
    given = normalize(prompt, keep_case)
    want_num = as_number(want)
    if want_num is not None:
        got_num = as_number(got)
        asked = {float(x) for x in NUMBER.findall(given)}
        numbers = [float(x) for x in NUMBER.findall(got) if got_num is not None or float(x) not in asked]
        if got_num is None and want_num in numbers:
            return 0.5
        close = [x for x in numbers if abs(x - want_num) <= 0.02 * abs(want_num)]
        if got_num is not None and close:
            return 0.5
        return 0.25 if close else 0.0
    # Same items, other punctuation (e.g. "[2, 5, 9]" for "2, 5, 9").
    if re.findall(r"\w+", got) == re.findall(r"\w+", want):
        return 0.5
    if contains_word(got, want):
        options = {normalize(c, keep_case) for c in candidates(task, prompt)}
        if not options and contains_word(given, want):
            return 0.0
        named = {o for o in options if contains_word(got, o)}
        if named - {want}:
            return 0.0
        return 0.5
    return 0.0


class AnswerIndex:
    """Prompt text → (task, answer), built from the shipped corpora."""

    def __init__(self, corpora_dir):
        self.by_prompt = {}
        sources = [("ppo_prompts.jsonl", lambda d: (d["prompt"], d["task"], d["answer"])),
                   ("eval.jsonl", lambda d: (join_prompt(d), d["task"], d["answer"])),
                   ("instructions.jsonl", lambda d: (join_prompt(d), d.get("task"), d.get("answer", d["output"]))),
                   ("preferences.jsonl", lambda d: (d["prompt"], d.get("task"), d["chosen"]))]
        for name, extract in sources:
            path = os.path.join(corpora_dir, name)
            if not os.path.exists(path):
                continue
            with open(path, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        prompt, task, answer = extract(json.loads(line))
                    except (ValueError, KeyError) as e:
                        raise SystemExit("reward_check: %s:%d: unreadable record (%s)" % (path, n, e))
                    self.by_prompt.setdefault(collapse(prompt), (task, answer))
        # Longest first, for finding a known prompt inside a chat-templated one.
        self.longest_first = sorted(self.by_prompt, key=len, reverse=True)

    def lookup(self, prompt):
        key = collapse(prompt)
        if key in self.by_prompt:
            return self.by_prompt[key]
        for known in self.longest_first:
            if known in key:
                return self.by_prompt[known]
        return None


def join_prompt(d):
    return d["instruction"] if not d.get("input") else d["instruction"] + "\n\n" + d["input"]


def self_test():
    cases = [
        ("What is 2 + 3?", "5", "add", "5", 1.0),
        ("What is 2 + 3?", " 5. ", "add", "5", 1.0),
        ("What is 2 + 3?", "The answer is 5.", "add", "5", 0.5),
        ("What is 2 + 3?", "6", "add", "5", 0.0),
        ("How many items?", "4", "list_length", "3", 0.0),
        ("What is 200 + 300?", "505", "add", "500", 0.5),
        ("What is 200 + 300?", "I think 505", "add", "500", 0.25),
        ("What is 2 + 3?", "40", "add", "5", 0.0),
        ("What is 2 + 3?", "", "add", "5", 0.0),
        ("What is 2 + 3?", "5<|im_end|>junk", "add", "5", 1.0),
        ("Sort", "2, 5, 9", "sort_numbers", "2, 5, 9", 1.0),
        ("Sort", "[2, 5, 9]", "sort_numbers", "2, 5, 9", 0.5),
        ("Sort", "9, 5, 2", "sort_numbers", "2, 5, 9", 0.0),
        ("Reverse", "'noil'", "reverse_word", "noil", 1.0),
        ("Reverse", "noi", "reverse_word", "noil", 0.0),
        ("JSON", '{"age": 3, "name": "Ann"}', "key_value", '{"name": "Ann", "age": 3}', 1.0),
        ("Ann is taller than Bob. Who is taller?", "Ann is taller.", "taller", "Ann", 0.5),
        ("Ann is taller than Bob. Who is taller?", "Ann or Bob", "taller", "Ann", 0.0),
        ("Which comes first in the year: May or June?", "May comes first", "comes_first", "May", 0.5),
        ("Which comes first in the year: May or June?", "May or June", "comes_first", "May", 0.0),
        ("Convert 2 km to meters.", "2000 m", "km_to_m", "2000", 0.5),
        ("Describe", "a b c", "open_ended", "a b c", 1.0),
        ("Uppercase nest", "Nest", "uppercase", "NEST", 0.0),
        ("Uppercase nest", "NEST.", "uppercase", "NEST", 1.0),
        ("Title case", "follow red", "title_case", "Follow Red", 0.0),
        ("Title case", "It is Follow Red", "title_case", "Follow Red", 0.5),
        # Restating the question is no partial credit: the answer is among the question's own numbers or words.
        ("What is the largest number in 86, 43, 28?", "The largest of 86, 43, 28 is 96.", "list_max", "86", 0.0),
        ("What is the largest number in 86, 43, 28?", "86", "list_max", "86", 1.0),
        ("What is the largest number in 86, 43, 28?", "87", "list_max", "86", 0.5),
        ("What is the smallest number in 15, 78, 9?", "The smallest of 15, 78, 9 is 1.", "list_min", "9", 0.0),
        ("Which word comes first: red, tan?", "The first word is red", "first_word", "red", 0.0),
        ("What is the last letter of 'forest'?", "The word forest ends with the letter t.", "last_letter", "t", 0.5),
        ("Convert 13 hours to minutes.", "There are 780 minutes in 13 hours.", "hours_to_minutes", "780", 0.5),
        ("Convert 13 hours to minutes.", "There are 781 minutes in 13 hours.", "hours_to_minutes", "780", 0.25),
    ]
    for prompt, response, task, answer, want in cases:
        got = score(prompt, response, task, answer)
        assert abs(got - want) < 1e-9, "score(%r, %r) = %s, expected %s" % (response, answer, got, want)
    print("reward_check self-test: %d cases pass" % len(cases))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Score {prompt, response} JSONL lines for finch ppo --reward-command.")
    ap.add_argument("--corpora", default=os.path.join(here, "..", "corpora"),
                    help="folder with ppo_prompts.jsonl / eval.jsonl for answer look-up (default: corpora/)")
    ap.add_argument("--strict", action="store_true", help="stop (exit 2) on a prompt with no known answer")
    ap.add_argument("--self-test", action="store_true", help="run the built-in scoring checks and exit")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return
    index = None
    n = 0
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        n += 1
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            prompt, response = row["prompt"], row["response"]
        except (ValueError, KeyError, TypeError) as e:
            sys.stderr.write("reward_check: stdin line %d is not a {prompt, response} JSON object (%s)\n" % (n, e))
            sys.exit(2)
        task, answer = row.get("task"), row.get("answer")
        if answer is None:
            if index is None:
                index = AnswerIndex(os.path.normpath(args.corpora))
            found = index.lookup(prompt)
            if found is None:
                msg = "reward_check: stdin line %d: no answer given and prompt not found in %s: %r\n" % (
                    n, os.path.normpath(args.corpora), prompt[:120])
                sys.stderr.write(msg)
                if args.strict:
                    sys.exit(2)
                sys.stdout.write("0.0\n")
                sys.stdout.flush()
                continue
            task = task or found[0]
            answer = found[1]
        sys.stdout.write("%.4f\n" % score(prompt, response, task, str(answer)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
