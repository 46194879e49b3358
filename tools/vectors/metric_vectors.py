#!/usr/bin/env python3
"""Test vectors for Finch's BLEU and ROUGE-L (Tests/FinchTrainTests/MetricVectorTests.swift).

`finch eval` reports
  - BLEU    = sacrebleu.corpus_bleu(hypotheses, [references]) with its defaults (13a tokenisation, mixed case,
              'exp' smoothing, max order 4, no effective order), divided by 100 (Finch stores [0, 1] and
              prints ×100);
  - ROUGE-L = rouge_score.rouge_scorer.RougeScorer(['rougeL'], use_stemmer=False).score(reference, reply)
              ['rougeL'].fmeasure, averaged over the rows (and over a row's replies with --samples N).
`EvalMetrics.sentenceBLEU` is sacrebleu.sentence_bleu(hypothesis, [reference]) (exp smoothing, effective order) / 100.

Output: ${FINCH_TEST_ASSETS:-~/.cache/finch/test-assets}/metric_vectors/cases.json
  {sacrebleu_version, rouge_score_version,
   tokenizer: [{text, tok13a (sacrebleu's 13a output, a space-joined string), rouge_tokens}],
   corpora: [{name, hypotheses, references,
              bleu: {score (0-100), counts, totals, precisions, bp, sys_len, ref_len},
              sentence_bleu: [score (0-100) per pair],
              rouge_l: [{precision, recall, fmeasure} per pair], rouge_l_mean}]}
Deterministic (fixed seeds, sorted keys) and idempotent (the file is rewritten only when its content changes).
"""
import json
import os
import random
import sys

import sacrebleu
from sacrebleu.metrics.bleu import BLEU
from rouge_score import rouge_scorer
try:
    from importlib.metadata import version as _dist_version
except ImportError:  # pragma: no cover
    _dist_version = None

OUT_DIR = os.path.join(os.environ.get("FINCH_TEST_ASSETS") or os.path.expanduser("~/.cache/finch/test-assets"),
                       "metric_vectors")

# ---------------------------------------------------------------------------------------------------------------
# Hand-written corpora: each exercises one rule of the 13a tokeniser, the smoothing or the ROUGE-L tokeniser.

HANDWRITTEN = [
    ("worked_example", ["the cat sat on the mat", "a b c d e"], ["the cat is on the mat", "a b c d e f g"]),
    ("no_4gram_match", ["the cat sat on the mat"], ["the cat is on the mat"]),
    ("brevity_only", ["a b c d e"], ["a b c d e f g"]),
    ("identical", ["The quick brown fox jumps over the lazy dog.", "Hello, world!", "It costs $3.50."],
                  ["The quick brown fox jumps over the lazy dog.", "Hello, world!", "It costs $3.50."]),
    ("identical_single", ["Paris is the capital of France."], ["Paris is the capital of France."]),
    ("no_overlap", ["alpha beta gamma delta", "one two three"], ["epsilon zeta eta theta", "four five six"]),
    ("all_empty_hypotheses", ["", ""], ["the cat sat", "on the mat today"]),
    ("some_empty_hypotheses", ["", "the cat sat on the mat", ""], ["a dog", "the cat sat on a mat", "nothing here"]),
    ("empty_reference", ["some words here", "the cat"], ["", "the cat"]),
    ("whitespace_only", ["   ", "\t\n"], ["a b", "c"]),
    ("short_sentences", ["a b", "c d", "e"], ["a b", "c x", "e f"]),
    ("three_token_corpus", ["a b c", "d e f"], ["a b c", "d e g"]),
    ("exp_smoothing_orders_2_3_4", ["a x b y c z d"], ["a b c d"]),
    ("exp_smoothing_order_4", ["w1 w2 w3 q w4 w5 w6"], ["w1 w2 w3 w4 w5 w6"]),
    ("longer_hypothesis", ["the the the the the the the"], ["the cat is on the mat"]),
    ("clipping", ["the the the cat cat", "on on on"], ["the cat the", "on the mat"]),
    ("punctuation", ["Hello, world! How's it going? (Fine; thanks.)", "Wait... what?!", "x/y z\\w [a] {b} <c> |d| ~e^ _f_ `g`"],
                    ["Hello world, how is it going? Fine, thanks!", "Wait - what?", "x / y z \\ w [ a ] { b } < c >"]),
    ("numbers", ["It costs $1,234.56 today.", "Pi is 3.14159, roughly.", "1,000,000 people; 2.5% growth",
                 "version 2.0.1 of pages 10-20", "-5 degrees at 3-4pm", "a.b,c 1.a a.1 1,a a,1"],
                ["It costs $1234.56 today .", "Pi is about 3.14159.", "1 000 000 people; 2.5 % growth",
                 "version 2.0.1 , pages 10 - 20", "- 5 degrees at 3 - 4 pm", "a . b , c 1 . a a . 1"]),
    ("abbreviations", ["The U.S.A. e.g., i.e. etc.", "Mr. Smith vs. Dr. Jones.", "end.", ".start", "a..b,,c", "..,,"],
                      ["The U.S.A. e.g. i.e. etc.", "Mr Smith vs Dr Jones", "end", "start", "a . . b , , c", ". . , ,"]),
    ("hyphens", ["a state-of-the-art, well-known model", "a 10-year-old -- really -- 2-3 times", "em—dash and en–dash",
                 "pre- and post-war", "1-2-3-4"],
                ["a state of the art well known model", "a ten-year-old - really - 2 - 3 times", "em — dash and en – dash",
                 "pre and post war", "1 - 2 - 3 - 4"]),
    ("quotes", ['"quoted" text', "'single' and don't", "“curly” ‘quotes’ «guillemets»", "``latex'' quotes", "it's 5'10\""],
               ['" quoted " text', "single and do n't", "\" curly \" ' quotes ' guillemets", "`` latex '' quotes", "it 's 5 ' 10 \""]),
    ("html_entities", ["&quot;x&quot; &amp; y &lt;z&gt;", "AT&T and &amp;lt; and &lt;b&gt;", "&apos; &nbsp; &#39;"],
                      ['"x" & y <z>', "AT & T and < and <b>", "' & nbsp ; & # 39 ;"]),
    ("newlines_and_skipped", ["line one-\ntwo", "a\nb\nc", "<skipped> words <skipped>", "trailing spaces  \t",
                              "end-\n", "x<skipped>y"],
                             ["line onetwo", "a b c", "words", "trailing spaces", "end-", "xy"]),
    ("unicode_whitespace", ["a\u00a0b c\u3000d", "e\x1cf g\u2009h", "i\u0085j", "k\u200bl", "tail\u00a0"],
                           ["a b c d", "e f g h", "i j", "k l", "tail"]),
    ("unicode", ["Café naïve résumé", "Cafe\u0301 nai\u0308ve", "İstanbul and KELVIN \u212a", "日本語のテキスト。",
                 "👍 great 👍!", "ΣΊΣΥΦΟΣ σοφός", "Ünïcödé ÄÖÜ ß"],
                ["Café naïve résumé", "Café naïve", "istanbul and kelvin k", "日本語 の テキスト 。",
                 "👍 great!", "σίσυφος σοφός", "Unicode AOU ss"]),
    ("case_sensitivity", ["The Cat SAT", "HELLO world"], ["the cat sat", "hello WORLD"]),
    ("rouge_tokens_only_alnum", ["don't stop-believing!!! 42nd", "C++ and C# (2024)", "e-mail: a@b.com"],
                                ["do not stop believing 42 nd", "C and C 2024", "email a b com"]),
    ("lin_rouge_example", ["police killed the gunman", "police kill the gunman", "the gunman kill police"],
                          ["police killed the gunman", "police killed the gunman", "police killed the gunman"]),
]


def random_corpora():
    """Seeded corpora of mixed length and content: references from a vocabulary with punctuation, numbers,
    hyphens, quotes and non-ASCII words, hypotheses derived by edits (drop, swap, substitute, duplicate)."""
    vocab = ("the a of to and in is was for on that with as by at from it this be are or an "
             "model data train loss token word answer question river city music garden winter "
             "Paris London Tokyo Berlin NASA GPU CPU").split()
    extras = [",", ".", "!", "?", ";", ":", "(", ")", '"', "'", "-", "--", "...", "$", "%", "&", "/",
              "1,234", "3.14", "10-20", "2.0", "42", "-7", "e.g.", "U.S.", "state-of-the-art", "don't", "it's",
              "café", "naïve", "Straße", "日本", "“quoted”", "&amp;", "&lt;", "x-ray", "re-use", "5%", "#1", "@home"]
    out = []
    for seed in range(12):
        rng = random.Random(1000 + seed)
        rows = rng.choice([1, 2, 3, 5, 8, 20])
        hyps, refs = [], []
        for _ in range(rows):
            n = rng.choice([0, 1, 2, 3, 4, 5, 7, 10, 15, 25, 40])
            ref = [rng.choice(extras) if rng.random() < 0.25 else rng.choice(vocab) for _ in range(n)]
            hyp = list(ref)
            for _ in range(rng.randint(0, max(1, n // 2))):
                op = rng.random()
                if not hyp or op < 0.25:
                    hyp.insert(rng.randint(0, len(hyp)), rng.choice(vocab + extras))
                elif op < 0.5:
                    del hyp[rng.randrange(len(hyp))]
                elif op < 0.75:
                    hyp[rng.randrange(len(hyp))] = rng.choice(vocab + extras)
                elif len(hyp) > 1:
                    i = rng.randrange(len(hyp) - 1)
                    hyp[i], hyp[i + 1] = hyp[i + 1], hyp[i]
            glue = lambda ws: "".join(w if i == 0 or (w in ",.!?;:" and rng.random() < 0.7) else " " + w
                                      for i, w in enumerate(ws))
            if rng.random() < 0.1:
                hyp = []
            hyps.append(glue(hyp))
            refs.append(glue(ref))
        out.append((f"random_{seed}", hyps, refs))
    # A long corpus (a few hundred sentences) as an eval run would see.
    rng = random.Random(7)
    hyps, refs = [], []
    for _ in range(300):
        n = rng.randint(3, 30)
        ref = [rng.choice(vocab) if rng.random() < 0.85 else rng.choice(extras) for _ in range(n)]
        hyp = [w if rng.random() < 0.7 else rng.choice(vocab) for w in ref][: rng.randint(1, n + 3)]
        hyps.append(" ".join(hyp))
        refs.append(" ".join(ref))
    out.append(("long_corpus_300", hyps, refs))
    return out


def dist_version(name, module):
    if _dist_version is not None:
        try:
            return _dist_version(name)
        except Exception:
            pass
    return getattr(module, "__version__", "unknown")


def main():
    bleu_metric = BLEU()  # sacrebleu's defaults, as corpus_bleu builds them
    tok13a = bleu_metric.tokenizer
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rouge_tok = scorer._tokenizer

    corpora, texts = [], []
    for name, hyps, refs in HANDWRITTEN + random_corpora():
        assert len(hyps) == len(refs), name
        b = sacrebleu.corpus_bleu(hyps, [refs])
        # The default arguments must be what Finch implements.
        assert b.score == BLEU(tokenize="13a", smooth_method="exp", lowercase=False,
                               effective_order=False).corpus_score(hyps, [refs]).score, name
        sent = [sacrebleu.sentence_bleu(h, [r]).score for h, r in zip(hyps, refs)]
        rl = []
        for h, r in zip(hyps, refs):
            s = scorer.score(r, h)["rougeL"]  # score(target, prediction)
            rl.append({"precision": s.precision, "recall": s.recall, "fmeasure": s.fmeasure})
        corpora.append({
            "name": name, "hypotheses": hyps, "references": refs,
            "bleu": {"score": b.score, "counts": list(b.counts), "totals": list(b.totals),
                     "precisions": list(b.precisions), "bp": b.bp, "sys_len": b.sys_len, "ref_len": b.ref_len},
            "sentence_bleu": sent,
            "rouge_l": rl,
            "rouge_l_mean": sum(x["fmeasure"] for x in rl) / len(rl),
        })
        texts.extend(hyps + refs)

    seen, tokenizer = set(), []
    for t in texts:
        if t in seen:
            continue
        seen.add(t)
        tokenizer.append({"text": t, "tok13a": tok13a(t.rstrip()), "rouge_tokens": rouge_tok.tokenize(t)})

    doc = {"sacrebleu_version": dist_version("sacrebleu", sacrebleu),
           "rouge_score_version": dist_version("rouge-score", rouge_scorer),
           "tokenizer": tokenizer, "corpora": corpora}
    text = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=True) + "\n"

    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, "cases.json")
    old = None
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = f.read()
    if old != text:
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
        print(f"metric_vectors: wrote {len(corpora)} corpora, {len(tokenizer)} texts to {path}")
    else:
        print(f"metric_vectors: {path} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
