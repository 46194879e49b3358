#!/usr/bin/env python3
"""Write Finch's shipped corpora into corpora/ (deterministic, seeded, no dependencies).

Everything here is written by this script from templates and hand-written text; nothing is
copied from elsewhere. Running it twice with the same seed gives byte-identical files.

    python3 tools/gen_corpora.py            # default seed, writes corpora/
    python3 tools/gen_corpora.py --seed 7 --out /tmp/corpora

Held-out evaluation: every checkable task instance has a canonical key (the task plus its
operands, e.g. ("add", 23, 45) with commutative operands sorted). A stable hash of the key puts
about one instance in eight into the held-out partition; evaluation draws only from it, every
training file only from the rest, and the script asserts at the end that no evaluation key or
prompt occurs in any training file.
"""

import argparse
import hashlib
import json
import os
import random
import re
import sys

DEFAULT_SEED = 20240607
HELDOUT_BUCKETS = 8          # one key in HELDOUT_BUCKETS is held out
# Share of pretraining paragraphs that are chat logs. Measured on the demo (same SFT recipe): 15 % gave SFT 13.6 %
# held-out exact match, 30 % gave 18.3 % (the no-transfer baseline, which never sees this text, stays near 14 %).
CHAT_SHARE = 0.30

# ---------------------------------------------------------------------------------------------
# Vocabulary (hand-written)
# ---------------------------------------------------------------------------------------------

WORDS = """
apple river garden window pencil orange yellow silver basket castle doctor summer winter
spring autumn forest island bridge candle letter number planet rocket guitar violin piano
monkey rabbit turtle tiger lion zebra horse camel dolphin eagle parrot spider beetle
bread butter cheese honey lemon mango cherry grape melon pepper potato tomato carrot onion
table chair mirror blanket pillow ladder hammer bottle button jacket pocket wallet ticket
market school office museum library kitchen village harbor valley desert meadow canyon
cloud storm thunder rainbow shadow sunset morning evening moment travel journey picture
friend family mother father sister brother cousin teacher farmer sailor painter dancer
simple quiet gentle bright happy clever brave strong little purple golden frozen
jump swim dance sing read write paint build carry follow listen wonder answer bake
copper marble velvet crystal paper cotton wooden plastic engine wheel anchor compass
lantern kettle saucer spoon fork knife plate coffee sugar salt flour rice pasta soup
dragon wizard knight queen king prince pirate giant robot comet galaxy meteor moon star
sand stone rock pebble shell coral wave tide ocean lake pond stream brook hill mountain
north south east west center corner circle square triangle line point edge angle
red blue green black white brown pink gray violet amber
cat dog cow pig hen fox owl bee ant bat elk yak emu
book door lamp road tree leaf seed root bark nest egg milk tea cup jar box bag hat
""".split()

NAMES = """
Ann Bob Cara Dan Eve Finn Gail Hugo Iris Jack Kate Leo Mia Ned Olga Paul Quinn Rosa Sam Tara
Umar Vera Walt Xena Yuri Zoe Abel Bea Carl Dora Emil Faye Gus Hana Ivan Jade Kurt Lena Max Nora
Omar Pia Ray Sara Theo Una Vic Wren Alma Ben Cleo Dean Ella Fred Gina Hal Ida Joel Kira Luis
""".split()

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
CITIES = ["Oslo", "Lima", "Rome", "Paris", "Cairo", "Delhi", "Tokyo", "Quito", "Accra", "Dublin",
          "Madrid", "Vienna", "Seoul", "Hanoi", "Nairobi", "Lisbon", "Prague", "Bogota"]
COLORS = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white", "gray", "pink"]


def fmt_num(x):
    """Canonical number text: integers without a decimal point, others without trailing zeros."""
    if isinstance(x, int) or float(x).is_integer():
        return str(int(x))
    return ("%.3f" % x).rstrip("0").rstrip(".")


def fmt_list(xs):
    return ", ".join(fmt_num(x) if isinstance(x, (int, float)) else str(x) for x in xs)


def stable_hash(key):
    return int(hashlib.sha1(repr(key).encode("utf-8")).hexdigest()[:12], 16)


def is_heldout(key):
    return stable_hash(key) % HELDOUT_BUCKETS == 0


# ---------------------------------------------------------------------------------------------
# Checkable task families. Each sampler returns (key, fields, answer); the key identifies the
# task instance independently of its phrasing. Templates are (instruction, input) pairs.
# ---------------------------------------------------------------------------------------------

def s_add(r):
    a, b = r.randint(0, 99), r.randint(0, 99)
    return ("add",) + tuple(sorted((a, b))), {"a": a, "b": b}, fmt_num(a + b)


def s_sub(r):
    a, b = r.randint(0, 99), r.randint(0, 99)
    a, b = max(a, b), min(a, b)
    return ("sub", a, b), {"a": a, "b": b}, fmt_num(a - b)


def s_mul(r):
    a, b = r.randint(2, 15), r.randint(2, 12)
    return ("mul",) + tuple(sorted((a, b))), {"a": a, "b": b}, fmt_num(a * b)


def s_reverse_word(r):
    w = r.choice(WORDS)
    return ("reverse_word", w), {"w": w}, w[::-1]


def s_uppercase(r):
    w = r.choice(WORDS)
    return ("uppercase", w), {"w": w}, w.upper()


def s_count_letter(r):
    w = r.choice([w for w in WORDS if len(w) >= 4])
    # Mostly letters that occur, sometimes one that does not (answer 0).
    c = r.choice(w) if r.random() < 0.85 else r.choice("qxzjkvw")
    return ("count_letter", w, c), {"w": w, "c": c}, fmt_num(w.count(c))


def s_first_letter(r):
    w = r.choice(WORDS)
    return ("first_letter", w), {"w": w}, w[0]


def s_last_letter(r):
    w = r.choice(WORDS)
    return ("last_letter", w), {"w": w}, w[-1]


def rand_list(r, lo=3, hi=6):
    return [r.randint(0, 99) for _ in range(r.randint(lo, hi))]


def s_sort_numbers(r):
    xs = rand_list(r)
    return ("sort_numbers", tuple(xs)), {"lst": fmt_list(xs)}, fmt_list(sorted(xs))


def s_list_max(r):
    xs = rand_list(r)
    return ("list_max", tuple(xs)), {"lst": fmt_list(xs)}, fmt_num(max(xs))


def s_list_min(r):
    xs = rand_list(r)
    return ("list_min", tuple(xs)), {"lst": fmt_list(xs)}, fmt_num(min(xs))


def s_list_length(r):
    xs = [r.choice(WORDS) for _ in range(r.randint(2, 8))]
    return ("list_length", tuple(xs)), {"lst": fmt_list(xs)}, fmt_num(len(xs))


def s_reverse_list(r):
    xs = [r.choice(WORDS) for _ in range(r.randint(3, 5))]
    return ("reverse_list", tuple(xs)), {"lst": fmt_list(xs)}, fmt_list(xs[::-1])


def s_km_to_m(r):
    v = r.choice([r.randint(1, 60), r.randint(1, 99) / 10])
    return ("km_to_m", fmt_num(v)), {"v": fmt_num(v)}, fmt_num(round(v * 1000, 3))


def s_m_to_km(r):
    v = r.randint(1, 120) * 100
    return ("m_to_km", fmt_num(v)), {"v": fmt_num(v)}, fmt_num(v / 1000)


def s_hours_to_minutes(r):
    v = r.choice([r.randint(1, 24), r.randint(1, 20) + 0.5])
    return ("hours_to_minutes", fmt_num(v)), {"v": fmt_num(v)}, fmt_num(v * 60)


def s_minutes_to_hours(r):
    v = r.randint(1, 48) * 30
    return ("minutes_to_hours", fmt_num(v)), {"v": fmt_num(v)}, fmt_num(v / 60)


def s_kg_to_g(r):
    v = r.choice([r.randint(1, 60), r.randint(1, 99) / 10])
    return ("kg_to_g", fmt_num(v)), {"v": fmt_num(v)}, fmt_num(round(v * 1000, 3))


def s_g_to_kg(r):
    v = r.randint(1, 120) * 100
    return ("g_to_kg", fmt_num(v)), {"v": fmt_num(v)}, fmt_num(v / 1000)


def s_format_date(r):
    y, m = r.randint(1990, 2030), r.randint(1, 12)
    d = r.randint(1, MONTH_DAYS[m - 1])
    iso, long = "%04d-%02d-%02d" % (y, m, d), "%s %d, %d" % (MONTHS[m - 1], d, y)
    to_long = r.random() < 0.5
    fields = {"iso": iso, "long": long, "dir": "long" if to_long else "iso"}
    return ("format_date", y, m, d), fields, long if to_long else iso


def s_title_case(r):
    ws = [r.choice(WORDS) for _ in range(r.randint(2, 4))]
    phrase = " ".join(ws)
    return ("title_case", phrase), {"p": phrase}, " ".join(w.capitalize() for w in ws)


def s_key_value(r):
    name, age, city = r.choice(NAMES), r.randint(5, 90), r.choice(CITIES)
    fields = [("name", name), ("age", age), ("city", city)][: r.randint(2, 3)]
    style = r.randint(0, 2)
    if style == 0:
        text = ", ".join("%s=%s" % kv for kv in fields)
    elif style == 1:
        text = "; ".join("%s: %s" % kv for kv in fields)
    else:
        text = " and ".join("the %s is %s" % kv for kv in fields)
    answer = "{" + ", ".join('"%s": %s' % (k, v if isinstance(v, int) else '"%s"' % v) for k, v in fields) + "}"
    return ("key_value",) + tuple(fields), {"kv": text}, answer


def height_fact(r, hi, lo):
    """'hi is taller than lo' or, equally often, 'lo is shorter than hi'."""
    return "%s is taller than %s." % (hi, lo) if r.random() < 0.5 else "%s is shorter than %s." % (lo, hi)


def s_taller(r):
    a, b, c = r.sample(NAMES, 3)          # a > b > c in height
    q = r.choice(["tallest", "shortest", "two"])
    if q == "two":
        ask = r.choice(["taller", "shorter"])
        fields = {"facts": height_fact(r, a, b), "ask": ask}
        return ("taller", a, b), fields, a if ask == "taller" else b
    facts = [height_fact(r, a, b), height_fact(r, b, c)]
    r.shuffle(facts)
    fields = {"facts": " ".join(facts), "ask": q}
    return ("taller", a, b, c), fields, a if q == "tallest" else c


def s_comes_first(r):
    kind = r.choice(["alpha", "day", "month"])
    if kind == "alpha":
        x, y = r.sample(WORDS, 2)
        while x[0] == y[0]:
            x, y = r.sample(WORDS, 2)
        ans, where = min(x, y), "in alphabetical order"
    elif kind == "day":
        i, j = r.sample(range(7), 2)
        x, y, ans, where = DAYS[i], DAYS[j], DAYS[min(i, j)], "in the week (starting on Monday)"
    else:
        i, j = r.sample(range(12), 2)
        x, y, ans, where = MONTHS[i], MONTHS[j], MONTHS[min(i, j)], "in the year"
    return ("comes_first",) + tuple(sorted((x, y))), {"x": x, "y": y, "where": where}, ans


SAMPLERS = {
    "add": s_add, "sub": s_sub, "mul": s_mul,
    "reverse_word": s_reverse_word, "uppercase": s_uppercase, "count_letter": s_count_letter,
    "first_letter": s_first_letter, "last_letter": s_last_letter,
    "sort_numbers": s_sort_numbers, "list_max": s_list_max, "list_min": s_list_min,
    "list_length": s_list_length, "reverse_list": s_reverse_list,
    "km_to_m": s_km_to_m, "m_to_km": s_m_to_km, "hours_to_minutes": s_hours_to_minutes,
    "minutes_to_hours": s_minutes_to_hours, "kg_to_g": s_kg_to_g, "g_to_kg": s_g_to_kg,
    "format_date": s_format_date, "title_case": s_title_case, "key_value": s_key_value,
    "taller": s_taller, "comes_first": s_comes_first,
}

FAMILY = {
    "add": "arithmetic", "sub": "arithmetic", "mul": "arithmetic",
    "reverse_word": "string", "uppercase": "string", "count_letter": "string",
    "first_letter": "string", "last_letter": "string",
    "sort_numbers": "list", "list_max": "list", "list_min": "list", "list_length": "list",
    "reverse_list": "list",
    "km_to_m": "units", "m_to_km": "units", "hours_to_minutes": "units",
    "minutes_to_hours": "units", "kg_to_g": "units", "g_to_kg": "units",
    "format_date": "formatting", "title_case": "formatting", "key_value": "formatting",
    "taller": "reasoning", "comes_first": "reasoning",
}

TEMPLATES = {
    "add": [("What is {a} + {b}?", ""), ("Add {a} and {b}.", ""),
            ("Compute the sum of the two numbers.", "{a} and {b}"),
            ("Calculate {a} plus {b}. Answer with the number only.", ""),
            ("Find the total.", "{a} + {b}")],
    "sub": [("What is {a} - {b}?", ""), ("Subtract {b} from {a}.", ""),
            ("Compute the difference between the first and the second number.", "{a} and {b}"),
            ("Calculate {a} minus {b}. Answer with the number only.", ""),
            ("How much is left if you take {b} away from {a}?", "")],
    "mul": [("What is {a} x {b}?", ""), ("Multiply {a} by {b}.", ""),
            ("Compute the product of the two numbers.", "{a} and {b}"),
            ("Calculate {a} times {b}. Answer with the number only.", ""),
            ("What do you get when you multiply these numbers?", "{a} * {b}")],
    "reverse_word": [("Reverse the word '{w}'.", ""), ("Spell the word backwards.", "{w}"),
                     ("Write '{w}' with its letters in reverse order.", ""),
                     ("What is the word {w} spelled backwards?", "")],
    "uppercase": [("Convert '{w}' to uppercase.", ""), ("Write the word in capital letters.", "{w}"),
                  ("Rewrite {w} using only uppercase letters.", ""),
                  ("Make this word all caps.", "{w}")],
    "count_letter": [("How many times does the letter '{c}' appear in '{w}'?", ""),
                     ("Count the letter '{c}' in the word.", "{w}"),
                     ("In the word {w}, how many '{c}' letters are there?", ""),
                     ("Count how often '{c}' occurs in the given word. Answer with a number.", "{w}")],
    "first_letter": [("What is the first letter of '{w}'?", ""), ("Give the first letter of the word.", "{w}"),
                     ("Which letter does the word {w} start with?", ""),
                     ("Write only the initial letter of this word.", "{w}")],
    "last_letter": [("What is the last letter of '{w}'?", ""), ("Give the last letter of the word.", "{w}"),
                    ("Which letter does the word {w} end with?", ""),
                    ("Write only the final letter of this word.", "{w}")],
    "sort_numbers": [("Sort these numbers from smallest to largest.", "{lst}"),
                     ("Put the numbers in ascending order: {lst}", ""),
                     ("Arrange the list in increasing order.", "{lst}"),
                     ("Order {lst} from lowest to highest.", "")],
    "list_max": [("What is the largest number in the list?", "{lst}"),
                 ("Find the maximum of {lst}.", ""),
                 ("Which of these numbers is the biggest?", "{lst}"),
                 ("Give the highest value among {lst}.", "")],
    "list_min": [("What is the smallest number in the list?", "{lst}"),
                 ("Find the minimum of {lst}.", ""),
                 ("Which of these numbers is the smallest?", "{lst}"),
                 ("Give the lowest value among {lst}.", "")],
    "list_length": [("How many items are in this list?", "{lst}"),
                    ("Count the words in the list: {lst}", ""),
                    ("What is the length of the list {lst}?", ""),
                    ("Tell me how many elements the list has.", "{lst}")],
    "reverse_list": [("Reverse the order of the list.", "{lst}"),
                     ("Write the items {lst} in reverse order.", ""),
                     ("List these words backwards, last item first.", "{lst}"),
                     ("Reverse this list: {lst}", "")],
    "km_to_m": [("Convert {v} km to meters.", ""), ("How many meters are in {v} kilometers?", ""),
                ("Express the distance in meters. Answer with the number only.", "{v} km"),
                ("{v} kilometers is how many meters?", "")],
    "m_to_km": [("Convert {v} m to kilometers.", ""), ("How many kilometers are {v} meters?", ""),
                ("Express the distance in kilometers. Answer with the number only.", "{v} m"),
                ("{v} meters is how many kilometers?", "")],
    "hours_to_minutes": [("Convert {v} hours to minutes.", ""), ("How many minutes are in {v} hours?", ""),
                         ("Express the time in minutes. Answer with the number only.", "{v} hours"),
                         ("{v} hours is how many minutes?", "")],
    "minutes_to_hours": [("Convert {v} minutes to hours.", ""), ("How many hours are {v} minutes?", ""),
                         ("Express the time in hours. Answer with the number only.", "{v} minutes"),
                         ("{v} minutes is how many hours?", "")],
    "kg_to_g": [("Convert {v} kg to grams.", ""), ("How many grams are in {v} kilograms?", ""),
                ("Express the weight in grams. Answer with the number only.", "{v} kg"),
                ("{v} kilograms is how many grams?", "")],
    "g_to_kg": [("Convert {v} g to kilograms.", ""), ("How many kilograms are {v} grams?", ""),
                ("Express the weight in kilograms. Answer with the number only.", "{v} g"),
                ("{v} grams is how many kilograms?", "")],
    # format_date templates depend on the direction; see render().
    "format_date": [],
    "title_case": [("Convert the phrase to title case.", "{p}"),
                   ("Capitalize the first letter of every word: {p}", ""),
                   ("Write '{p}' in title case.", ""),
                   ("Rewrite this phrase so each word starts with a capital letter.", "{p}")],
    "key_value": [("Format the following as a JSON object.", "{kv}"),
                  ("Turn this into JSON: {kv}", ""),
                  ("Write these fields as a JSON object with numbers unquoted.", "{kv}"),
                  ("Convert the key and value pairs to JSON.", "{kv}")],
    # taller templates depend on the question; see render().
    "taller": [],
    "comes_first": [("Which comes first {where}: {x} or {y}?", ""),
                    ("Of {x} and {y}, which one is earlier {where}?", ""),
                    ("Answer with one word. Which comes first {where}?", "{x} or {y}"),
                    ("Between {x} and {y}, name the one that comes first {where}.", "")],
}

DATE_TEMPLATES = {
    "long": [("Write the date {iso} in the form Month D, YYYY.", ""),
             ("Convert this ISO date to a written date like January 5, 2020.", "{iso}"),
             ("Rewrite {iso} as month name, day and year.", ""),
             ("Format the date in words (for example March 9, 2001).", "{iso}")],
    "iso": [("Write the date {long} in the form YYYY-MM-DD.", ""),
            ("Convert this date to ISO format (YYYY-MM-DD).", "{long}"),
            ("Rewrite {long} as an ISO date.", ""),
            ("Format the date as year-month-day with two-digit month and day.", "{long}")],
}

TALLER_TEMPLATES = {
    "two": [("{facts} Who is {ask}?", ""), ("Read the fact and answer: who is {ask}?", "{facts}"),
            ("Given the fact below, name the person who is {ask}.", "{facts}"),
            ("{facts} Of the two, who is {ask}? Answer with a name.", "")],
    "multi": [("{facts} Who is the {ask}?", ""), ("Read the facts and answer: who is the {ask}?", "{facts}"),
              ("Given the facts below, name the {ask} person.", "{facts}"),
              ("{facts} Of the three, who is the {ask}? Answer with a name.", "")],
}


def templates_for(task, fields):
    if task == "format_date":
        return DATE_TEMPLATES[fields["dir"]]
    if task == "taller":
        return TALLER_TEMPLATES["two" if fields["ask"] in ("taller", "shorter") else "multi"]
    return TEMPLATES[task]


def render(task, fields, template):
    instruction, inp = template
    return instruction.format(**fields), inp.format(**fields)


def prompt_text(instruction, inp):
    """Plain prompt for preferences and PPO: the instruction, then the input on its own paragraph."""
    return instruction if not inp else instruction + "\n\n" + inp


def sample_instance(r, task, heldout):
    """Draws an instance of `task` from the held-out or the training partition."""
    for _ in range(10000):
        key, fields, answer = SAMPLERS[task](r)
        if is_heldout(key) == heldout:
            return key, fields, answer
    raise RuntimeError("task %s: no %s instance found" % (task, "held-out" if heldout else "training"))


# Instructions that say what form the reply takes; their demonstrations are always the bare answer.
ASKS_FOR_FORM = re.compile(r"\bonly\b|answer with|one word", re.IGNORECASE)


def make_records(r, task, count, heldout, seen):
    """`count` distinct (instruction, input) records of `task`; stops early when the space is used up."""
    out, misses = [], 0
    while len(out) < count and misses < 2000:
        key, fields, answer = sample_instance(r, task, heldout)
        inst, inp = render(task, fields, r.choice(templates_for(task, fields)))
        if (inst, inp) in seen:
            misses += 1
            continue
        seen.add((inst, inp))
        out.append({"key": key, "fields": fields, "instruction": inst, "input": inp, "output": answer,
                    "task": task, "answer": answer})
    return out


def public(rec):
    return {k: rec[k] for k in ("instruction", "input", "output", "task", "answer")}


# ---------------------------------------------------------------------------------------------
# Plausibly wrong answers for preference pairs
# ---------------------------------------------------------------------------------------------

def corrupt(r, task, fields, answer):
    """A wrong answer of the kind a weak model gives: off by one, wrong unit, reversed, truncated."""
    fam = FAMILY[task]
    if task in ("add", "sub", "mul", "list_max", "list_min", "list_length", "count_letter"):
        n = int(answer)
        choice = r.random()
        if task == "list_max" and choice < 0.4:
            return fmt_num(min(int(x) for x in fields["lst"].split(", ")))
        if task == "list_min" and choice < 0.4:
            return fmt_num(max(int(x) for x in fields["lst"].split(", ")))
        if task == "sub" and choice < 0.3 and fields["b"] != 0:
            return fmt_num(fields["a"] + fields["b"])
        if task == "mul" and choice < 0.3:
            return fmt_num(fields["a"] + fields["b"])
        delta = r.choice([-1, 1]) if n > 0 else 1
        if task in ("add", "mul") and choice > 0.8:
            delta = r.choice([-10, 10]) if n >= 10 else 2
        return fmt_num(n + delta)
    if fam == "units":
        v = float(answer)
        wrong = r.choice(["unit", "factor", "off"])
        if wrong == "unit":
            return fields["v"]                      # forgot to convert
        if wrong == "factor":
            return fmt_num(round(v * 10, 3) if r.random() < 0.5 else round(v / 10, 4))
        return fmt_num(round(v + (1 if v >= 2 else 0.5), 3))
    if task == "reverse_word":
        w = fields["w"]
        return w if r.random() < 0.4 else answer[:-1]
    if task == "uppercase":
        return fields["w"].capitalize() if r.random() < 0.5 else answer[:-1]
    if task == "first_letter":
        return fields["w"][-1] if fields["w"][-1] != answer else fields["w"][1]
    if task == "last_letter":
        return fields["w"][0] if fields["w"][0] != answer else fields["w"][-2]
    if task == "sort_numbers":
        xs = [int(x) for x in answer.split(", ")]
        opts = [fmt_list(xs[::-1]), fmt_list(xs[:-1]), fields["lst"]]
        return r.choice([o for o in opts if o != answer])
    if task == "reverse_list":
        xs = answer.split(", ")
        opts = [fields["lst"], ", ".join(xs[:-1])]
        return r.choice([o for o in opts if o != answer])
    if task == "format_date":
        if fields["dir"] == "long":
            y, m, d = fields["iso"].split("-")
            return r.choice(["%s %d, %s" % (MONTHS[int(m) % 12], int(d), y), "%s %s" % (MONTHS[int(m) - 1], y)])
        y, m, d = fields["iso"].split("-")
        return r.choice(["%s-%s-%s" % (y, d, m) if d != m else "%s-%s" % (y, m), "%s-%s" % (y, m)])
    if task == "title_case":
        return fields["p"] if r.random() < 0.5 else answer.split(" ", 1)[0] + " " + answer.split(" ", 1)[1].lower()
    if task == "key_value":
        return answer.replace('"', "") if r.random() < 0.5 else answer.rsplit(", ", 1)[0] + "}"
    if task == "taller":
        names = [w.strip(".") for w in fields["facts"].split() if w.strip(".") in NAMES]
        return r.choice([n for n in names if n != answer])
    if task == "comes_first":
        return fields["y"] if answer == fields["x"] else fields["x"]
    raise ValueError(task)


# ---------------------------------------------------------------------------------------------
# Hand-written open-ended examples (the last OPEN_HELDOUT go to the evaluation set)
# ---------------------------------------------------------------------------------------------

OPEN_ENDED = [
    ("Explain why the sky is blue.", "",
     "Sunlight contains all colors. When it passes through the air, the tiny gas molecules scatter short blue waves much more than long red ones, so blue light reaches our eyes from every part of the sky."),
    ("Describe a cat in two sentences.", "",
     "A cat is a small, furry animal with soft paws, sharp claws and bright eyes. It likes to sleep in warm places and can move very quietly when it hunts."),
    ("Give me three tips for sleeping better.", "",
     "1. Go to bed and wake up at the same time every day. 2. Keep your bedroom dark, quiet and cool. 3. Avoid screens and coffee in the hour before bed."),
    ("Write a short poem about the sea.", "",
     "The sea rolls in with silver light,\nit hums all day and sings all night.\nIt keeps the secrets of the shore\nand comes back soon to tell some more."),
    ("What is a good way to learn a new language?", "",
     "Practice a little every day. Learn the most common words first, listen to simple speech, read short texts and speak with other people as soon as you can, even if you make mistakes."),
    ("Explain what a computer program is.", "",
     "A computer program is a list of instructions written in a language the computer understands. The computer follows the steps one by one to do a job, such as adding numbers or showing a picture."),
    ("Describe a rainy morning.", "",
     "The sky is gray and low. Rain taps on the windows, the streets shine with puddles and people hurry by under bright umbrellas while the air smells fresh and wet."),
    ("Why do plants need sunlight?", "",
     "Plants use sunlight to make their own food. In a process called photosynthesis they turn light, water and carbon dioxide into sugar, which gives them energy to grow."),
    ("Give advice to someone starting their first job.", "",
     "Arrive on time, listen carefully and ask questions when something is unclear. Write down what you learn, be kind to your colleagues and do not be afraid to admit a mistake."),
    ("Write a haiku about autumn.", "",
     "Red leaves drift and fall\ncool wind hums through empty trees\nthe year breathes slowly"),
    ("Explain how a bicycle moves.", "",
     "When you push the pedals, they turn a gear that pulls a chain. The chain turns the back wheel, and the wheel pushes against the ground, so the bicycle rolls forward."),
    ("What makes a good friend?", "",
     "A good friend listens to you, tells you the truth kindly, helps when things are hard and is happy when things go well for you. Trust and respect go both ways."),
    ("Describe the taste of a lemon.", "",
     "A lemon tastes very sour and sharp, with a fresh and slightly bitter flavor. It makes your mouth pucker, but a little of its juice makes food and drinks taste bright."),
    ("Give three reasons to read books.", "",
     "1. Books teach you new ideas and facts. 2. Reading builds your vocabulary and helps you write better. 3. Stories let you relax and see the world through other eyes."),
    ("Explain what rain is.", "",
     "Rain is water that falls from clouds. Warm air carries water vapor up, where it cools and forms tiny droplets. When the droplets join and become heavy, they fall to the ground."),
    ("Write a short poem about a cat.", "",
     "Soft paws on the windowsill,\ngreen eyes watching, very still.\nA stretch, a yawn, a quiet purr,\nthe sun is warm on silky fur."),
    ("How can I save money each month?", "",
     "Write down what you spend, then set a budget. Pay yourself first by moving some money to savings on payday, cook at home more often and wait a day before buying things you do not need."),
    ("Describe a busy market.", "",
     "A busy market is loud and colorful. Sellers call out prices, baskets are full of fruit and bread, people bargain and laugh, and the air smells of spices and fresh food."),
    ("Explain why we have seasons.", "",
     "The Earth is tilted. As it travels around the Sun, first one half and then the other leans toward the Sun and gets more direct light and longer days. That half has summer while the other has winter."),
    ("Give advice for a job interview.", "",
     "Learn about the company, prepare short stories about your work, arrive a little early and dress neatly. Listen to each question, answer clearly and ask a thoughtful question at the end."),
    ("What is the water cycle?", "",
     "The water cycle is the journey of water on Earth. Water evaporates from seas and lakes, forms clouds, falls as rain or snow, and flows back through rivers to the sea, again and again."),
    ("Write a short poem about the moon.", "",
     "The moon climbs up the evening sky,\na silver lamp that drifts on high.\nIt lights the road for those who roam\nand softly guides the sailors home."),
    ("Explain what a map is used for.", "",
     "A map is a flat picture of a place seen from above. It shows roads, rivers, towns and distances, so you can find where you are and plan how to get somewhere."),
    ("Describe your ideal weekend.", "",
     "A slow breakfast, a long walk in the park with a friend, an afternoon reading a good book and a simple dinner with family, followed by an early night."),
    ("How do I make a cup of tea?", "",
     "Boil fresh water, pour it over a tea bag or loose tea in a cup, and let it steep for three to five minutes. Remove the tea, then add milk, sugar or lemon if you like."),
    ("Why is exercise good for you?", "",
     "Exercise makes your heart and muscles stronger, helps you keep a healthy weight, improves your sleep and lifts your mood. Even a daily walk makes a difference."),
    ("Give three tips for studying.", "",
     "1. Study in short sessions with small breaks. 2. Test yourself instead of only rereading. 3. Keep a quiet place to work and put your phone away."),
    ("Explain what gravity is.", "",
     "Gravity is the force that pulls things toward each other. The Earth's gravity pulls us toward the ground, keeps the Moon in orbit and makes a dropped ball fall down."),
    ("Describe a forest in spring.", "",
     "The forest wakes up in spring. Fresh green leaves open on the branches, small flowers cover the ground, birds sing from every tree and streams run fast with melted snow."),
    ("Write a short poem about friendship.", "",
     "A friend is a lamp on a winding road,\na hand to help you lift the load.\nIn sun or storm, in joy or pain,\nthey walk beside you through the rain."),
    ("What should I pack for a day hike?", "",
     "Bring water, a snack, a map, sunscreen, a light jacket and comfortable shoes. A small first aid kit and a charged phone are good to have too."),
    ("Explain what a volcano is.", "",
     "A volcano is an opening in the Earth's crust. Hot melted rock called magma rises from deep below, and when pressure builds up it bursts out as lava, ash and gas."),
    ("Describe the sound of a thunderstorm.", "",
     "A thunderstorm starts with a distant rumble that grows into loud cracks and booms. Rain drums on the roof, wind howls through the trees and each flash is followed by a roll of thunder."),
    ("Give advice for staying calm under stress.", "",
     "Take slow, deep breaths, focus on one small task at a time and remember that the feeling will pass. A short walk or a talk with a friend can help a lot."),
    ("Why do birds migrate?", "",
     "Many birds fly to warmer places in winter because food becomes hard to find where they live. In spring they return to build nests and raise their young where food is plentiful."),
    ("Write a two-line poem about the sun.", "",
     "The sun wakes up and paints the sky,\nand golden light says hello to every eye."),
    ("Explain how to plant a seed.", "",
     "Fill a pot with soil, make a small hole about twice as deep as the seed, drop the seed in and cover it. Water it gently and keep it in a warm, bright place."),
    ("What is a good habit to start?", "",
     "Going for a short walk every day is a good habit. It is easy to start, costs nothing, clears your mind and keeps your body healthy."),
    ("Describe a kitchen in the morning.", "",
     "Sunlight falls across the table, the kettle whistles, toast pops up and the smell of coffee fills the room while someone hums and sets out the plates."),
    ("Explain what a dictionary is.", "",
     "A dictionary is a book or website that lists words in alphabetical order and explains what each word means, how to say it and sometimes where it comes from."),
    ("Give three ways to help the environment.", "",
     "1. Use less plastic and recycle what you can. 2. Walk, cycle or take the bus instead of driving. 3. Save energy by turning off lights and devices you are not using."),
    ("Write a short poem about winter.", "",
     "Snow falls soft on the sleeping town,\nthe roofs and roads in a silver gown.\nThe fire glows and the kettle sings,\nwhile winter waits for the warmth of spring."),
    ("Why is it important to drink water?", "",
     "Your body is mostly water. Drinking enough keeps you cool, helps you digest food, carries nutrients to your cells and keeps your mind clear and alert."),
    ("Describe a dog playing in the park.", "",
     "The dog races across the grass with its ears flapping, grabs a stick and runs back with its tail wagging, then drops the stick and barks for another throw."),
    ("Explain what a calendar is for.", "",
     "A calendar shows the days, weeks and months of the year. People use it to know the date, remember birthdays and plan meetings and holidays."),
    ("Give advice to a new student.", "",
     "Get to know your classmates, ask teachers for help early, keep your notes organised and find a routine that leaves time for rest and fun."),
    ("How does a refrigerator keep food cold?", "",
     "A refrigerator pumps a special fluid through pipes. The fluid takes heat from inside the box as it evaporates and releases that heat outside, so the inside stays cold."),
    ("Write a short poem about a tree.", "",
     "An old oak stands upon the hill,\nthrough wind and rain it waits there still.\nIts roots hold deep, its branches wide,\ngive birds a home and shade to hide."),
    ("Describe the night sky in the countryside.", "",
     "Far from city lights, the night sky is deep black and full of stars. The Milky Way stretches across it like a pale river, and now and then a shooting star flashes by."),
    ("Explain why we brush our teeth.", "",
     "Brushing removes food and the sticky layer of bacteria called plaque. Without it, the bacteria make acids that cause holes in teeth and sore gums."),
    ("Give three tips for cooking rice.", "",
     "1. Rinse the rice until the water runs clear. 2. Use about one and a half cups of water for each cup of rice. 3. Simmer with the lid on and let it rest for ten minutes before serving."),
    ("What is a good way to start the day?", "",
     "Wake up at a steady time, drink a glass of water, stretch for a few minutes and eat a simple breakfast before you check your messages."),
    ("Explain what an island is.", "",
     "An island is a piece of land that is surrounded by water on all sides. Some islands are tiny rocks, while others are large enough to hold whole countries."),
    ("Describe a snowy day.", "",
     "Everything is white and quiet. Snow covers the roofs and cars, children build snowmen and throw snowballs, and footprints crunch along the sidewalk."),
    ("Write a short poem about rain.", "",
     "Rain on the roof, a gentle drum,\nit tells the flowers summer will come.\nIt fills the rivers, cleans the street,\nand cools the ground beneath our feet."),
    ("Why do we need sleep?", "",
     "Sleep lets the body repair itself and the brain sort and store what we learned during the day. Without enough sleep we feel tired, forget things and get sick more easily."),
    ("Give advice for writing a clear email.", "",
     "Use a short subject that says what the email is about, put the main point in the first sentence, keep paragraphs short and end with what you need from the reader."),
    ("Explain what a battery does.", "",
     "A battery stores energy in chemical form and releases it as electricity. When you connect it to a device, a current flows and powers things like a flashlight or a phone."),
    ("Describe a lighthouse.", "",
     "A lighthouse is a tall tower near the sea with a bright lamp at the top. Its light turns and flashes at night to warn ships about rocks and guide them safely."),
    ("Give three reasons to learn to swim.", "",
     "1. Swimming can save your life near water. 2. It is great exercise for the whole body. 3. It lets you enjoy lakes, pools and the sea with friends."),
    ("How do bees make honey?", "",
     "Bees collect nectar from flowers and carry it back to the hive. They pass it between them and fan it with their wings until most of the water evaporates and it turns into thick honey."),
    ("Write a short poem about a river.", "",
     "The river runs from hill to sea,\nit sings of places it will be.\nPast stones and fields and sleepy towns,\nit carries leaves and thistle down."),
    ("Explain why ice floats on water.", "",
     "When water freezes, its molecules line up in an open pattern that takes more space. Ice is therefore less dense than liquid water, so it floats."),
    ("Describe a train journey.", "",
     "The train rocks gently as fields, villages and rivers slide past the window. People read, chat or sleep, and the wheels click steadily on the rails."),
    ("Give advice for keeping a plant alive.", "",
     "Put it where it gets the right amount of light, water it only when the top of the soil is dry, and make sure the pot has holes so extra water can drain."),
    ("What is a rainbow?", "",
     "A rainbow is an arc of colors in the sky. It appears when sunlight shines through raindrops, which bend and split the light into red, orange, yellow, green, blue and violet."),
    ("Write a short poem about the morning.", "",
     "The morning comes on quiet feet,\nwith birdsong soft and sunlight sweet.\nThe world wakes up and starts anew,\nwith open skies of gold and blue."),
    ("Explain what recycling means.", "",
     "Recycling means collecting used materials like paper, glass and metal and turning them into new products, so fewer raw materials are needed and less waste goes to landfills."),
    ("Describe a birthday party.", "",
     "Balloons hang from the ceiling, friends laugh and play games, and everyone sings as the cake with glowing candles is carried in. Then come the presents and the smiles."),
    ("Explain what a library is.", "",
     "A library is a place where books, newspapers and films are kept for people to borrow or read for free. Librarians help visitors find what they are looking for."),
    ("Describe an apple.", "",
     "An apple is a round fruit with red, green or yellow skin. Its white flesh is crisp and juicy, sweet or a little sour, with small brown seeds in the middle."),
    ("Give advice for learning to cook.", "",
     "Start with simple dishes like eggs, soup and pasta. Read the whole recipe first, prepare all the ingredients before you begin and taste the food as you go."),
    ("Write a short poem about the stars.", "",
     "A thousand stars come out at night,\nsmall lanterns hung in velvet light.\nThey wink and shine from far away\nand fade when morning brings the day."),
    ("Why do leaves change color in autumn?", "",
     "In autumn the days get shorter and trees stop making green chlorophyll. As the green fades, yellow and orange colors that were hidden show through, and some trees make new red colors."),
    ("Explain what a museum is.", "",
     "A museum is a building that keeps and shows interesting objects, such as old tools, paintings, fossils or machines, so that people can look at them and learn about the past."),
    ("Give three tips for a long car trip.", "",
     "1. Take a break every two hours to stretch. 2. Bring water and healthy snacks. 3. Plan the route ahead and download music or stories to pass the time."),
]
OPEN_HELDOUT = 12   # the last twelve examples are held out for BLEU / ROUGE-L evaluation


def open_wrong(r, i):
    """A worse answer to open-ended example i: cut short, or an answer to another question."""
    _, _, good = OPEN_ENDED[i]
    if r.random() < 0.5:
        words = good.split()
        return " ".join(words[: max(3, len(words) // 4)])
    j = r.randrange(len(OPEN_ENDED) - OPEN_HELDOUT - 1)
    return OPEN_ENDED[j if j < i else j + 1][2]


# ---------------------------------------------------------------------------------------------
# Pretraining text
# ---------------------------------------------------------------------------------------------

ANIMALS = [  # name, plural, size, home, food, covering, sound
    ("fox", "foxes", "small", "forest", "mice and berries", "red fur", "yelps"),
    ("owl", "owls", "small", "old trees", "mice and insects", "soft feathers", "hoots"),
    ("bear", "bears", "large", "mountains", "fish, roots and honey", "thick fur", "growls"),
    ("rabbit", "rabbits", "small", "meadows", "grass and clover", "soft fur", "thumps"),
    ("horse", "horses", "large", "open fields", "grass and hay", "a shiny coat", "neighs"),
    ("dolphin", "dolphins", "medium", "warm seas", "fish and squid", "smooth gray skin", "clicks"),
    ("eagle", "eagles", "large", "high cliffs", "fish and small animals", "brown feathers", "screams"),
    ("frog", "frogs", "tiny", "ponds", "flies and worms", "wet green skin", "croaks"),
    ("camel", "camels", "large", "deserts", "dry plants", "shaggy hair", "grunts"),
    ("turtle", "turtles", "small", "rivers and seas", "plants and jellyfish", "a hard shell", "hisses"),
    ("wolf", "wolves", "medium", "cold forests", "deer and rabbits", "gray fur", "howls"),
    ("penguin", "penguins", "medium", "icy shores", "fish and krill", "black and white feathers", "squawks"),
    ("squirrel", "squirrels", "small", "parks and woods", "nuts and seeds", "bushy fur", "chatters"),
    ("elephant", "elephants", "huge", "grasslands", "leaves, grass and fruit", "wrinkled gray skin", "trumpets"),
    ("bee", "bees", "tiny", "hives", "nectar and pollen", "fuzzy stripes", "buzzes"),
    ("goat", "goats", "medium", "rocky hills", "grass and leaves", "rough hair", "bleats"),
    ("duck", "ducks", "small", "lakes", "seeds and water plants", "waterproof feathers", "quacks"),
    ("lion", "lions", "large", "the savanna", "zebras and antelopes", "golden fur", "roars"),
    ("mouse", "mice", "tiny", "fields and barns", "grain and seeds", "gray fur", "squeaks"),
    ("whale", "whales", "enormous", "the deep ocean", "krill and small fish", "smooth skin", "sings"),
]

FACTS = [
    "Water boils at 100 degrees Celsius at sea level.", "Water freezes at 0 degrees Celsius.",
    "A week has seven days.", "A year has twelve months.", "An hour has sixty minutes.",
    "A minute has sixty seconds.", "A day has twenty-four hours.", "A kilometer is one thousand meters.",
    "A kilogram is one thousand grams.", "A meter is one hundred centimeters.",
    "The Earth goes around the Sun once a year.", "The Moon goes around the Earth about once a month.",
    "Plants need water, air and light to grow.", "Fish breathe through gills.",
    "Bees make honey from the nectar of flowers.", "Ice is frozen water.",
    "The Sun rises in the east and sets in the west.", "Spiders have eight legs.",
    "Insects have six legs.", "A triangle has three sides.", "A square has four equal sides.",
    "Zero is an even number.", "Every even number can be divided by two.",
    "Adding zero to a number does not change it.", "Multiplying a number by one does not change it.",
    "Multiplying any number by zero gives zero.", "The alphabet has twenty-six letters.",
    "The first letter of the alphabet is a.", "The last letter of the alphabet is z.",
    "January is the first month of the year.", "December is the last month of the year.",
    "Monday comes before Tuesday.", "February is the shortest month.", "Sound travels slower than light.",
    "Whales are mammals, not fish.", "Bats are the only mammals that can fly.",
    "Rainbows appear when sunlight passes through raindrops.", "Metals conduct electricity.",
    "A leap year has three hundred sixty-six days.", "The heart pumps blood around the body.",
    "Trees take in carbon dioxide and give out oxygen.", "Snow is made of tiny ice crystals.",
    "Mountains are colder at the top than at the bottom.", "A compass needle points north.",
    "Sugar dissolves in warm water.", "The ocean is salty.", "Most rivers flow into the sea.",
    "Owls hunt at night.", "Camels can go a long time without water.", "Penguins cannot fly but swim well.",
]

THINGS = [  # thing, material, use
    ("cup", "clay", "holding tea"), ("table", "wood", "eating and working"), ("knife", "steel", "cutting bread"),
    ("blanket", "wool", "keeping warm"), ("basket", "willow", "carrying fruit"), ("lamp", "glass and metal", "giving light"),
    ("boat", "wood", "crossing the lake"), ("bridge", "stone", "crossing the river"), ("kite", "paper", "flying in the wind"),
    ("bottle", "glass", "holding water"), ("jacket", "cotton", "staying dry"), ("hammer", "iron", "driving nails"),
]

PLACES = ["the village", "the old town", "the harbor", "the market", "the library", "the park",
          "the school", "the farm", "the beach", "the train station", "the museum", "the bakery"]
ADJ = ["quiet", "busy", "small", "old", "bright", "cold", "warm", "peaceful", "noisy", "beautiful"]
FEELINGS = ["happy", "tired", "curious", "proud", "surprised", "calm", "excited", "sleepy"]
PETS = ["dog", "cat", "rabbit", "parrot", "turtle", "hamster"]
OBJECTS = ["a red ball", "a small kite", "a blue hat", "an old map", "a shiny coin", "a wooden box",
           "a green umbrella", "a book of stories", "a paper boat", "a silver key"]


def p_animal(r):
    n, pl, size, home, food, cover, sound = r.choice(ANIMALS)
    art = "an" if size[0] in "aeiou" else "a"
    if r.random() < 0.5:   # singular paragraph
        s = [r.choice(["The %s is %s %s animal." % (n, art, size), "A %s is %s %s animal." % (n, art, size)]),
             r.choice(["It lives in %s." % home, "You can find it in %s." % home]),
             r.choice(["It eats %s." % food, "Its food is mostly %s." % food]),
             r.choice(["It has %s." % cover, "Its body is covered with %s." % cover]),
             r.choice(["When it calls, the %s %s." % (n, sound), "A %s %s to talk to others." % (n, sound), ""])]
    else:                  # plural paragraph
        s = [r.choice(["%s are %s animals." % (pl.capitalize(), size), "Most %s are %s in size." % (pl, size)]),
             r.choice(["%s live in %s." % (pl.capitalize(), home), "You can find %s in %s." % (pl, home)]),
             r.choice(["%s eat %s." % (pl.capitalize(), food), "Their food is mostly %s." % food]),
             r.choice(["%s have %s." % (pl.capitalize(), cover), ""]),
             r.choice(["When they call, %s %s." % (pl, sound[:-2] if sound.endswith("es") and sound[-3] in "sxz" else sound[:-1]), ""])]
    return " ".join(x for x in s if x)


def p_facts(r):
    return " ".join(r.sample(FACTS, r.randint(2, 4)))


def p_thing(r):
    t, mat, use = r.choice(THINGS)
    a, place = r.choice(["small", "old", "new", "heavy", "large", "simple", "shiny", "useful"]), r.choice(PLACES)
    return r.choice([
        "The %s is made of %s. People use it for %s." % (t, mat, use),
        "In %s there is a %s %s. It is made of %s and is good for %s." % (place, a, t, mat, use),
        "A %s is useful for %s. Most are made of %s." % (t, use, mat),
    ])


def p_place(r):
    place, a, b = r.choice(PLACES), r.choice(ADJ), r.choice(ADJ)
    who, day = r.choice(NAMES), r.choice(DAYS)
    return r.choice([
        "%s is %s in the morning and %s in the evening. On %s, %s likes to go there." % (place.capitalize(), a, b, day, who),
        "Every %s, %s walks to %s. It is a %s place with many people." % (day, who, place, a),
        "%s was %s today. %s said it was the best part of the week." % (place.capitalize(), a, who),
    ])


def p_story(r):
    a, b = r.sample(NAMES, 2)
    pet, obj, place, feel = r.choice(PETS), r.choice(OBJECTS), r.choice(PLACES), r.choice(FEELINGS)
    day, month = r.choice(DAYS), r.choice(MONTHS)
    return r.choice([
        "Once upon a time, %s had a %s. One %s they went to %s together. There %s found %s. %s felt %s and took it home."
        % (a, pet, day, place, a, obj, a, feel),
        "%s and %s were friends. In %s they built %s out of sticks and string. When it was finished, they were %s, and they showed it to everyone in %s."
        % (a, b, month, r.choice(["a kite", "a small raft", "a birdhouse", "a tree house"]), feel, place),
        "On a %s day in %s, %s lost %s near %s. %s helped to look for it. After a long search, the %s found it under a bench. Everyone was %s."
        % (r.choice(ADJ), month, a, obj, place, b, pet, feel),
        "%s wanted to learn to bake bread. First %s mixed flour, water and salt. Then %s waited for the dough to rise. In the evening the bread was ready, and %s shared it with %s."
        % (a, a, a, a, b),
        "Every morning %s walked the %s to %s. One day it started to rain, so they ran home and sat by the window. %s said, \"Tomorrow will be sunny.\" And it was."
        % (a, pet, place, a),
    ])


def prose_example(r, task, fields, answer):
    """A worked example of a checkable task written as a sentence, for transfer from pretraining."""
    f = dict(fields)
    if task == "add":
        return r.choice(["%d plus %d equals %s." % (f["a"], f["b"], answer),
                         "If you add %d and %d, you get %s." % (f["a"], f["b"], answer),
                         "The sum of %d and %d is %s." % (f["a"], f["b"], answer)])
    if task == "sub":
        return r.choice(["%d minus %d equals %s." % (f["a"], f["b"], answer),
                         "If you take %d away from %d, %s is left." % (f["b"], f["a"], answer)])
    if task == "mul":
        return r.choice(["%d times %d is %s." % (f["a"], f["b"], answer),
                         "%d groups of %d make %s." % (f["a"], f["b"], answer)])
    if task == "reverse_word":
        return "The word %s spelled backwards is %s." % (f["w"], answer)
    if task == "uppercase":
        return "In capital letters, %s is written %s." % (f["w"], answer)
    if task == "count_letter":
        return "The letter %s appears %s times in the word %s." % (f["c"], answer, f["w"])
    if task == "first_letter":
        return "The word %s starts with the letter %s." % (f["w"], answer)
    if task == "last_letter":
        return "The word %s ends with the letter %s." % (f["w"], answer)
    if task == "sort_numbers":
        return "Sorted from smallest to largest, %s becomes %s." % (f["lst"], answer)
    if task == "list_max":
        return "The largest of %s is %s." % (f["lst"], answer)
    if task == "list_min":
        return "The smallest of %s is %s." % (f["lst"], answer)
    if task == "list_length":
        return "The list %s has %s items." % (f["lst"], answer)
    if task == "reverse_list":
        return "The list %s in reverse order is %s." % (f["lst"], answer)
    units = {"km_to_m": ("kilometers", "meters"), "m_to_km": ("meters", "kilometers"),
             "hours_to_minutes": ("hours", "minutes"), "minutes_to_hours": ("minutes", "hours"),
             "kg_to_g": ("kilograms", "grams"), "g_to_kg": ("grams", "kilograms")}
    if task in units:
        a, b = units[task]
        return r.choice(["%s %s is %s %s." % (f["v"], a, answer, b),
                         "There are %s %s in %s %s." % (answer, b, f["v"], a)])
    if task == "format_date":
        return "The date %s is written %s." % (f["iso"] if f["dir"] == "long" else f["long"], answer)
    if task == "title_case":
        return "In title case, %s is written %s." % (f["p"], answer)
    if task == "key_value":
        return "As JSON, %s becomes %s." % (f["kv"], answer)
    if task == "taller":
        if f["ask"] in ("taller", "shorter"):
            return "%s So %s is the %s one." % (f["facts"], answer, f["ask"])
        return "%s So %s is the %s." % (f["facts"], answer, f["ask"])
    if task == "comes_first":
        return "%s comes before %s %s." % (answer, f["y"] if answer == f["x"] else f["x"], f["where"])
    raise ValueError(task)


def chatml_style():
    """The turn markers and default system prompt of the demo's chat template (prompts/chatml.json)."""
    prompts = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "prompts")
    with open(os.path.join(prompts, "chatml.json"), encoding="utf-8") as f:
        t = json.load(f)
    with open(os.path.join(prompts, "system", t["default_system"] + ".txt"), encoding="utf-8") as f:
        system = f.read().strip("\n")
    return t, system


def chat_transcript(r, style, turns):
    """A chat log in the demo's template: the base model sees the turn markers (and learns where a reply
    ends) before SFT, as real base models see chat logs on the web. LoRA cannot train the embeddings or
    the LM head, so markers the base never saw would be nearly unlearnable for the adapter."""
    t, system = style
    out = t["system"]["prefix"] + system + t["system"]["suffix"] if r.random() < 0.75 else ""
    for q, a in turns:
        out += t["user"]["prefix"] + q + t["user"]["suffix"] + t["assistant"]["prefix"] + a + t["assistant"]["suffix"]
    return out.rstrip("\n")


def pretrain_text(r, target_bytes, train_keys):
    """Paragraphs of descriptions, facts, stories, worked task examples and chat logs (training partition only)."""
    kinds = [p_animal, p_facts, p_thing, p_place, p_story]
    tasks = sorted(SAMPLERS)
    style = chatml_style()
    paras, size = [], 0
    while size < target_bytes:
        roll = r.random()
        if roll < CHAT_SHARE:
            # Chat logs: task questions answered in one short reply, or a topic described in prose.
            turns = []
            for _ in range(r.randint(1, 3)):
                if r.random() < 0.8:
                    task = r.choice(tasks)
                    key, fields, answer = sample_instance(r, task, heldout=False)
                    train_keys.add(key)
                    inst, inp = render(task, fields, r.choice(templates_for(task, fields)))
                    turns.append((prompt_text(inst, inp), answer))
                else:
                    turns.append((r.choice(["Tell me something.", "Describe something for me.", "Write a short paragraph.",
                                            "Tell me a short story.", "Say something interesting."]),
                                  r.choice(kinds)(r)))
            para = chat_transcript(r, style, turns)
        elif roll < CHAT_SHARE + 0.4:
            para = " ".join(r.choice(kinds)(r) for _ in range(r.randint(1, 3)))
        elif roll < 0.8:
            sents = []
            for _ in range(r.randint(2, 4)):
                task = r.choice(tasks)
                key, fields, answer = sample_instance(r, task, heldout=False)
                train_keys.add(key)
                sents.append(prose_example(r, task, fields, answer))
            para = " ".join(sents)
        else:
            # Question / answer drills in plain text, the format few-shot prompts use.
            lines = []
            for _ in range(r.randint(2, 4)):
                task = r.choice(tasks)
                key, fields, answer = sample_instance(r, task, heldout=False)
                train_keys.add(key)
                inst, inp = render(task, fields, r.choice(templates_for(task, fields)))
                q = inst if not inp else inst + " " + inp
                lines.append("Question: %s\nAnswer: %s" % (q, answer))
            para = "\n".join(lines)
        paras.append(para)
        size += len(para.encode("utf-8")) + 2
    return "\n\n".join(paras) + "\n"


# ---------------------------------------------------------------------------------------------
# Classification (topic labels)
# ---------------------------------------------------------------------------------------------

TOPICS = {
    "sports": (["The team", "Our goalkeeper", "The young runner", "The captain", "The visiting side", "The coach"],
               ["scored twice in the second half", "won the final match", "trained hard before the race",
                "lost on penalties", "broke the club record", "celebrated the championship",
                "missed an easy shot", "finished the marathon in under three hours"],
               ["at the stadium", "last season", "in front of a loud crowd", "after a long game", "on Sunday"]),
    "food": (["The soup", "My grandmother's pie", "The new bakery", "This curry", "The fresh bread", "The salad"],
             ["tastes of garlic and lemon", "was baked with honey and nuts", "needs a little more salt",
              "is served warm with rice", "smells of cinnamon", "was cooked slowly in the oven",
              "comes with a spicy sauce", "uses tomatoes from the garden"],
             ["for dinner", "at lunch", "on the menu today", "in the small cafe", "with a cup of tea"]),
    "weather": (["The morning", "The forecast", "The afternoon", "Tonight", "The coast", "The valley"],
                ["will bring heavy rain", "stayed cold and windy", "turned sunny and warm", "had thick fog",
                 "is expected to see snow", "brought a strong thunderstorm", "felt humid and cloudy",
                 "will have clear skies"],
                ["across the north", "this weekend", "after midnight", "for the next three days", "near the mountains"]),
    "technology": (["The new phone", "This laptop", "The software update", "The robot", "The app", "The computer chip"],
                   ["runs twice as fast", "has a longer battery life", "fixed a security bug", "can answer questions by voice",
                    "stores files in the cloud", "uses less power than before", "crashed after the update",
                    "connects to the network automatically"],
                   ["according to the engineers", "since the last release", "in early tests", "for most users", "this year"]),
}


def classify_example(r, label):
    subj, preds, tails = TOPICS[label]
    s = "%s %s %s." % (r.choice(subj), r.choice(preds), r.choice(tails))
    if r.random() < 0.4:
        s2 = r.choice(TOPICS[label][0]) + " " + r.choice(preds) + "."
        s = s + " " + s2
    return s


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

def write_jsonl(path, rows):
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    write_text(path, text)
    return len(rows)


def write_text(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (default %d)" % DEFAULT_SEED)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpora"),
                    help="output folder (default: corpora/ next to tools/)")
    ap.add_argument("--pretrain-bytes", type=int, default=2_000_000, help="size of pretrain.txt (default 2000000)")
    ap.add_argument("--per-task", type=int, default=160, help="instruction records per task (default 160)")
    ap.add_argument("--eval-per-task", type=int, default=40, help="held-out evaluation records per task (default 40)")
    ap.add_argument("--pref-per-task", type=int, default=80, help="preference pairs per task (default 80)")
    ap.add_argument("--sentence-share", type=float, default=0.3,
                    help="share of instruction replies written as a sentence instead of the bare answer (default 0.3)")
    ap.add_argument("--ppo-per-task", type=int, default=40, help="PPO prompts per task (default 40)")
    args = ap.parse_args()
    out = os.path.normpath(args.out)
    os.makedirs(out, exist_ok=True)
    r = random.Random(args.seed)
    tasks = sorted(SAMPLERS)

    # Held-out evaluation set first: drawn only from held-out keys.
    eval_seen, eval_rows = set(), []
    for task in tasks:
        eval_rows += make_records(random.Random("%d/eval/%s" % (args.seed, task)), task, args.eval_per_task, True, eval_seen)
    n_open_train = len(OPEN_ENDED) - OPEN_HELDOUT
    for inst, inp, outp in OPEN_ENDED[n_open_train:]:
        eval_rows.append({"key": ("open_ended", inst), "instruction": inst, "input": inp, "output": outp,
                          "task": "open_ended", "answer": outp})

    # Training files, each from its own seeded stream so one file's size does not shift the others.
    train_keys, train_prompts = set(), set()
    instr_rows, seen = [], set()
    for task in tasks:
        instr_rows += make_records(random.Random("%d/instr/%s" % (args.seed, task)), task, args.per_task, False, seen)
    # Reply style: people who write demonstrations often answer in a sentence ("The sum of 23 and 45 is 68.")
    # rather than with the bare answer the checker and the evaluation want. A seeded share of the replies is
    # written that way (own stream: the other files do not move); `answer` stays the canonical answer. This is the
    # preference the demonstrations do not express and PPO against tools/reward_check.py can learn. Instructions
    # that ask for a form ("Answer with the number only.") always get the bare answer, as a careful writer gives.
    rs = random.Random("%d/instr-style" % args.seed)
    for rec in instr_rows:
        if rs.random() < args.sentence_share and not ASKS_FOR_FORM.search(rec["instruction"]):
            rec["output"] = prose_example(rs, rec["task"], rec["fields"], rec["answer"])
    random.Random("%d/instr-shuffle" % args.seed).shuffle(instr_rows)

    pref_rows = []
    for task in tasks:
        rr = random.Random("%d/pref/%s" % (args.seed, task))
        for rec in make_records(rr, task, args.pref_per_task, False, set()):
            wrong = corrupt(rr, task, rec["fields"], rec["answer"])
            if wrong == rec["answer"] or not wrong:
                continue
            pref_rows.append({"key": rec["key"], "prompt": prompt_text(rec["instruction"], rec["input"]),
                              "chosen": rec["answer"], "rejected": wrong, "task": task})
    ro = random.Random("%d/pref-open" % args.seed)
    for i, (inst, inp, outp) in enumerate(OPEN_ENDED[:n_open_train]):
        pref_rows.append({"key": ("open_ended", inst), "prompt": prompt_text(inst, inp), "chosen": outp,
                          "rejected": open_wrong(ro, i), "task": "open_ended"})
    random.Random("%d/pref-shuffle" % args.seed).shuffle(pref_rows)

    ppo_rows = []
    for task in tasks:
        for rec in make_records(random.Random("%d/ppo/%s" % (args.seed, task)), task, args.ppo_per_task, False, set()):
            ppo_rows.append({"key": rec["key"], "prompt": prompt_text(rec["instruction"], rec["input"]),
                             "task": task, "answer": rec["answer"]})
    random.Random("%d/ppo-shuffle" % args.seed).shuffle(ppo_rows)

    pretrain = pretrain_text(random.Random("%d/pretrain" % args.seed), args.pretrain_bytes, train_keys)

    # Classification: topic sentences; evaluation sentences never occur in training.
    rc = random.Random("%d/classify" % args.seed)
    labels = sorted(TOPICS)
    cls_eval, cls_train, cls_seen = [], [], set()
    for rows, n in ((cls_eval, 100), (cls_train, 400)):
        for label in labels:
            got = 0
            while got < n:
                text = classify_example(rc, label)
                if text in cls_seen:
                    continue
                cls_seen.add(text)
                rows.append({"text": text, "label": label})
                got += 1
    rc.shuffle(cls_train)
    rc.shuffle(cls_eval)

    # ---- Disjointness checks ----
    eval_keys = {row["key"] for row in eval_rows}
    for name, rows in (("instructions", instr_rows), ("preferences", pref_rows), ("ppo_prompts", ppo_rows)):
        for row in rows:
            train_keys.add(row["key"])
            assert row["key"] not in eval_keys, "%s contains held-out instance %r" % (name, row["key"])
    assert not (train_keys & eval_keys), "pretraining text contains held-out instances"
    eval_prompts = {prompt_text(row["instruction"], row["input"]) for row in eval_rows}
    train_prompts = ({prompt_text(x["instruction"], x["input"]) for x in instr_rows}
                     | {x["prompt"] for x in pref_rows} | {x["prompt"] for x in ppo_rows}
                     | {prompt_text(i, n) for i, n, _ in OPEN_ENDED[:n_open_train]})
    assert not (eval_prompts & train_prompts), "an evaluation prompt occurs in training data"
    for row in eval_rows:
        if row["task"] != "open_ended":
            q = row["instruction"] if not row["input"] else row["instruction"] + " " + row["input"]
            assert "Question: %s\n" % q not in pretrain, "pretraining drill contains evaluation prompt %r" % q
            assert "\n%s<|im_end|>" % prompt_text(row["instruction"], row["input"]) not in pretrain, \
                "pretraining chat log contains evaluation prompt %r" % q
    assert not ({x["text"] for x in cls_eval} & {x["text"] for x in cls_train})

    strip = lambda rows: [{k: v for k, v in row.items() if k != "key"} for row in rows]
    counts = {
        "pretrain.txt": len(pretrain.encode("utf-8")),
        "instructions.jsonl": write_jsonl(os.path.join(out, "instructions.jsonl"), [public(x) for x in instr_rows]),
        "open_ended.jsonl": write_jsonl(os.path.join(out, "open_ended.jsonl"),
                                        [{"instruction": i, "input": n, "output": o} for i, n, o in OPEN_ENDED[:n_open_train]]),
        "preferences.jsonl": write_jsonl(os.path.join(out, "preferences.jsonl"), strip(pref_rows)),
        "ppo_prompts.jsonl": write_jsonl(os.path.join(out, "ppo_prompts.jsonl"), strip(ppo_rows)),
        "eval.jsonl": write_jsonl(os.path.join(out, "eval.jsonl"), [public(x) for x in eval_rows]),
        "classify.jsonl": write_jsonl(os.path.join(out, "classify.jsonl"), cls_train),
        "classify_eval.jsonl": write_jsonl(os.path.join(out, "classify_eval.jsonl"), cls_eval),
    }
    write_text(os.path.join(out, "pretrain.txt"), pretrain)
    write_text(os.path.join(out, "README.md"), readme(args, counts, tasks, labels))
    for name, n in counts.items():
        print("%-22s %s" % (name, ("%d bytes" % n) if name.endswith(".txt") else ("%d records" % n)))


def readme(args, counts, tasks, labels):
    fam = {}
    for t in tasks:
        fam.setdefault(FAMILY[t], []).append(t)
    families = "\n".join("- %s: %s" % (f, ", ".join("`%s`" % t for t in ts)) for f, ts in sorted(fam.items()))
    return """# Finch corpora

Written by `tools/gen_corpora.py` from templates and hand-written text (nothing here is copied from
elsewhere). Regenerate with

    python3 tools/gen_corpora.py            # seed %(seed)d (the default); --seed N for another draw

The output is byte-identical for the same seed. Options: `--pretrain-bytes`, `--per-task`,
`--eval-per-task`, `--pref-per-task`, `--ppo-per-task`, `--sentence-share`, `--out`.

| file | records | fields |
|---|---|---|
| `pretrain.txt` | %(pretrain.txt)d bytes | plain text: descriptions, facts, short stories, worked task examples as prose, `Question: … / Answer: …` drills, and chat logs in the demo's ChatML template (`<|im_start|>user … <|im_end|>`, task questions with one-line replies); paragraphs separated by a blank line |
| `instructions.jsonl` | %(instructions.jsonl)d | `instruction`, `input`, `output`, `task`, `answer` (alpaca format; `answer` is the canonical answer; `output` is the reply: the bare answer, or, with probability %(share)d%% when the instruction does not ask for a form (such as "Answer with the number only."), a sentence that gives it, as people often write, e.g. "The sum of 23 and 45 is 68.") |
| `open_ended.jsonl` | %(open_ended.jsonl)d | `instruction`, `input`, `output` (hand-written explanations, descriptions, advice, short poems) |
| `preferences.jsonl` | %(preferences.jsonl)d | `prompt`, `chosen`, `rejected`, `task` (`chosen` correct, `rejected` plausibly wrong: off by one, wrong unit or factor, reversed, truncated, other name; for `open_ended` a cut-short or off-topic answer) |
| `ppo_prompts.jsonl` | %(ppo_prompts.jsonl)d | `prompt`, `task`, `answer` |
| `eval.jsonl` | %(eval.jsonl)d | `instruction`, `input`, `output`, `task`, `answer` (held out; `task` = `open_ended` rows are scored with BLEU / ROUGE-L, the rest with exact match / token F1) |
| `classify.jsonl` | %(classify.jsonl)d | `text`, `label` |
| `classify_eval.jsonl` | %(classify_eval.jsonl)d | `text`, `label` (held out) |

Prompts in `preferences.jsonl` and `ppo_prompts.jsonl` are plain text, not chat-templated: the
instruction, then (when there is one) a blank line and the input.

Checkable task families (several phrasings each; answers short and canonical):

%(families)s

Classification labels: %(labels)s.

Exact match normalises answers (trim, lowercase, collapse spaces, strip a trailing period), except
that `uppercase` and `title_case` answers are compared without lowercasing
(`EvalMetrics.exactMatch(_:_:task:)` in Swift, `tools/reward_check.py` for PPO).

## Held-out evaluation

Every checkable instance has a canonical key (the task and its operands, e.g. `add` of 23 and 45,
commutative operands sorted; `taller` by its chain of names, whatever the question). A SHA-1 hash of
the key sends one key in %(buckets)d to the held-out partition. `eval.jsonl` draws only from it; the
instruction, preference and PPO files and the worked examples in `pretrain.txt` only from the rest.
The generator asserts this at the end, and also that no evaluation prompt text occurs in training
data. The last %(open)d hand-written open-ended examples are held out into `eval.jsonl`.

Rewards for PPO on these tasks: `tools/reward_check.py` (reads `{prompt, response}` JSONL on stdin,
looks the answer up here when the line carries none). It pays 1 for the bare answer and 0.5 for the right
answer inside a sentence, so it expresses a preference that the instruction replies (some bare, some
sentences) do not: SFT imitates the mix, PPO can learn the preferred form. The held-out `eval.jsonl`
replies are always the bare answer.
""" % dict(counts, seed=args.seed, families=families, labels=", ".join("`%s`" % l for l in labels),
           buckets=HELDOUT_BUCKETS, open=OPEN_HELDOUT, share=round(100 * args.sentence_share))


if __name__ == "__main__":
    main()
