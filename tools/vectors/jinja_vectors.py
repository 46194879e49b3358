#!/usr/bin/env python3
"""Test vectors for Finch's Jinja interpreter (Tests/FinchDataTests/JinjaTests.swift).

Renders real chat templates with jinja2 exactly as transformers' `apply_chat_template` does
(`transformers.utils.chat_template_utils.render_jinja_template`: ImmutableSandboxedEnvironment with
trim_blocks/lstrip_blocks, loopcontrols, AssistantTracker, transformers' tojson, raise_exception,
strftime_now, dict, namespace) and records the expected text, or the exception jinja2 raised.

Templates: every `vendor/llama.cpp/models/templates/*.jinja` of the llama_cpp_python sdist
(/root/.cache/finch/sdist/llama_cpp_python-*.tar.gz, or $FINCH_LLAMA_SDIST), plus a few classic templates
written out below (ChatML/SmolLM2, Zephyr/TinyLlama, Gemma, Llama 2, generation-block) whose text is
reconstructed from the model cards: they exercise the interpreter; apart from the SmolLM2 one (checked equal to
HuggingFaceTB's tokenizer_config.json) they are not claimed to be byte-exact copies of the Hub files.

Output: ${FINCH_TEST_ASSETS:-~/.cache/finch/test-assets}/jinja_vectors/
  templates/<name>.jinja   the template sources
  snippets.json            [{name, source, context, expected | error + error_type, generation_spans}]
  cases.json               [{template, case, bos_token, eos_token, add_generation_prompt, messages, tools,
                             expected | error + error_type, generation_spans}]
Deterministic and idempotent: strftime_now sees a fixed local time, 2024-07-26 10:30:00.
"""
import datetime as _dt
import glob
import json
import os
import shutil
import sys
import tarfile

import jinja2
from transformers.utils import chat_template_utils as ctu

FIXED_NOW = _dt.datetime(2024, 7, 26, 10, 30, 0)


class _FixedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return FIXED_NOW


# strftime_now in transformers calls the module-global `datetime.now()`.
ctu.datetime = _FixedDatetime

OUT = os.path.join(os.environ.get("FINCH_TEST_ASSETS") or os.path.expanduser("~/.cache/finch/test-assets"),
                   "jinja_vectors")

# Special tokens per template family (prefix of the file name → bos, eos); None = the tokenizer has none.
TOKENS = [
    ("meta-llama-Llama-3", "<|begin_of_text|>", "<|eot_id|>"),
    ("NousResearch-Hermes-2-Pro-Llama-3", "<|begin_of_text|>", "<|im_end|>"),
    ("NousResearch-Hermes-3-Llama-3.1", "<|begin_of_text|>", "<|im_end|>"),
    ("fireworks-ai-llama-3", "<|begin_of_text|>", "<|eot_id|>"),
    ("meetkai-functionary", "<|begin_of_text|>", "<|eot_id|>"),
    ("deepseek-ai-DeepSeek-R1-Distill-Llama", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    ("deepseek", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    ("llama-cpp-deepseek", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    ("Qwen", None, "<|im_end|>"),
    ("HuggingFaceTB", "<|im_start|>", "<|im_end|>"),
    ("finch-smollm2", "<|im_start|>", "<|im_end|>"),
    ("finch-chatml", None, "<|im_end|>"),
    ("google-gemma", "<bos>", "<eos>"),
    ("finch-gemma", "<bos>", "<eos>"),
    ("microsoft-Phi-3", "<s>", "<|endoftext|>"),
    ("mistralai", "<s>", "</s>"),
    ("unsloth-mistral", "<s>", "</s>"),
    ("finch-zephyr", "<s>", "</s>"),
    ("finch-llama2", "<s>", "</s>"),
    ("openai-gpt-oss", "<|startoftext|>", "<|return|>"),
    ("ibm-granite", "<|end_of_text|>", "<|end_of_text|>"),
    ("CohereForAI", "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>"),
    ("Cohere2", "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>"),
]
DEFAULT_TOKENS = ("<s>", "</s>")

# Classic templates (reconstructed; see the module docstring).
EXTRA_TEMPLATES = {
    "finch-smollm2-chatml": (
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
        "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    ),
    "finch-zephyr-tinyllama": (
        "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n"
        "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
        "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
        "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
    ),
    "finch-gemma3-like": (
        "{{ bos_token }}\n{%- if messages[0]['role'] == 'system' -%}\n    {%- if messages[0]['content'] is string -%}\n"
        "        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n    {%- else -%}\n"
        "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n    {%- endif -%}\n"
        "    {%- set loop_messages = messages[1:] -%}\n{%- else -%}\n    {%- set first_user_prefix = \"\" -%}\n"
        "    {%- set loop_messages = messages -%}\n{%- endif -%}\n{%- for message in loop_messages -%}\n"
        "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
        "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
        "    {%- endif -%}\n    {%- if (message['role'] == 'assistant') -%}\n        {%- set role = \"model\" -%}\n"
        "    {%- else -%}\n        {%- set role = message['role'] -%}\n    {%- endif -%}\n"
        "    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n"
        "    {%- if message['content'] is string -%}\n        {{ message['content'] | trim }}\n"
        "    {%- elif message['content'] is iterable -%}\n        {%- for item in message['content'] -%}\n"
        "            {%- if item['type'] == 'image' -%}\n                {{ '<start_of_image>' }}\n"
        "            {%- elif item['type'] == 'text' -%}\n                {{ item['text'] | trim }}\n"
        "            {%- endif -%}\n        {%- endfor -%}\n    {%- else -%}\n"
        "        {{ raise_exception(\"Invalid content type\") }}\n    {%- endif -%}\n    {{ '<end_of_turn>\n' }}\n"
        "{%- endfor -%}\n{%- if add_generation_prompt -%}\n    {{'<start_of_turn>model\n'}}\n{%- endif -%}\n"
    ),
    "finch-llama2-like": (
        "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
        "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
        "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
        "{% if loop.index0 == 0 and system_message != false %}"
        "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
        "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
        "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
        "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
    ),
    "finch-chatml-generation": (
        "{%- for message in messages %}\n    {%- if message.role == 'assistant' %}\n"
        "        {{- '<|im_start|>assistant\\n' }}\n        {%- generation %}\n"
        "        {{- message.content + '<|im_end|>' }}\n        {%- endgeneration %}\n        {{- '\\n' }}\n"
        "    {%- else %}\n        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}\n"
        "    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n"
    ),
}

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["location"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two integers.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer", "description": "second \"number\""}},
                "required": ["a", "b"],
            },
        },
    },
]

SYSTEM = "You are a helpful assistant. Answer briefly."
CONVERSATIONS = {
    "system_user": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What is the capital of France?"},
    ],
    "user_only": [{"role": "user", "content": "Hello! Can you help me?"}],
    "multi_turn": [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello! How can I help you today?"},
        {"role": "user", "content": "Tell me a joke about cats."},
    ],
    "multi_turn_system_unicode": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "  Translate 'café ☕' to 日本語, keep \"quotes\" and a\nnewline.  "},
        {"role": "assistant", "content": "カフェ ☕\n\"quotes\" kept."},
        {"role": "user", "content": "Thanks! And 🐈?"},
        {"role": "assistant", "content": "猫 (neko)."},
    ],
    "tool_calls": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What's the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call12345", "type": "function",
             "function": {"name": "get_current_weather", "arguments": {"location": "Paris, France", "unit": "celsius"}}}]},
        {"role": "tool", "tool_call_id": "call12345", "name": "get_current_weather", "content": "{\"temperature\": 22, \"sky\": \"sunny\"}"},
        {"role": "assistant", "content": "It is 22°C and sunny in Paris."},
        {"role": "user", "content": "And 2+3?"},
    ],
    "content_parts": [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
        {"role": "user", "content": [{"type": "text", "text": "Describe this picture."}, {"type": "image"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A cat on a mat."}]},
        {"role": "user", "content": [{"type": "text", "text": "  Thanks  "}]},
    ],
    "tool_calls_string_args": [
        {"role": "user", "content": "Add 2 and 3."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "abc123XYZ", "type": "function", "function": {"name": "add", "arguments": "{\"a\": 2, \"b\": 3}"}}]},
        {"role": "tool", "tool_call_id": "abc123XYZ", "content": "5"},
        {"role": "assistant", "content": "2 + 3 = 5"},
    ],
    "assistant_last": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Say hi."},
        {"role": "assistant", "content": "Hi!"},
    ],
    "reasoning": [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "2+2 = 4.", "reasoning_content": "Simple arithmetic: two plus two is four."},
        {"role": "user", "content": "And 3+3?"},
    ],
}


# Small templates exercising one semantic each, rendered by the same environment with the given context.
SNIPPETS = [
    # whitespace control, trim_blocks / lstrip_blocks
    ("ws_trim_lstrip", "<ul>\n    {% for x in xs %}\n    <li>{{ x }}</li>\n    {% endfor %}\n</ul>\n", {"xs": [1, 2]}),
    ("ws_minus", "a  {%- if true -%}  b  {%- endif -%}  c\n{{- ' d ' -}}\n e", {}),
    ("ws_plus", "a\n    {%+ if true %}b{% endif +%}\nc\n  {%+ if true +%}\nd{% endif %}", {}),
    ("ws_comment", "x\n  {# note #}\ny {#- trimmed -#}   z\n{# last #}\n", {}),
    ("ws_var_no_lstrip", "  {{ 'v' }}\n  {% if true %}\n  kept\n  {% endif %}\nend", {}),
    ("ws_crlf", "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc\r\n", {}),
    ("ws_raw", "{% raw %}{{ not rendered }} {% if %}{% endraw %}\n  {%- raw -%}  x  {%- endraw %}|", {}),
    ("ws_inline_block_line_start", "line\n  {% set a = 1 %}  after\n\t{% if a %}tab{% endif %}", {}),
    ("ws_trailing_newline_kept_once", "x\n\n", {}),
    # loops
    ("loop_vars", "{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}", {"xs": "abc"}),
    ("loop_prev_next", "{% for x in xs %}[{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }}]{% endfor %}", {"xs": [1, 2, 3]}),
    ("loop_prev_defined", "{% for x in xs %}{{ loop.previtem is defined }}{{ loop.nextitem is defined }} {% endfor %}", {"xs": [1, 2]}),
    ("loop_cycle", "{% for x in xs %}{{ loop.cycle('odd', 'even') }} {% endfor %}", {"xs": [1, 2, 3]}),
    ("loop_else", "{% for x in xs %}{{ x }}{% else %}empty{% endfor %}", {"xs": []}),
    ("loop_filter", "{% for x in xs if x % 2 %}{{ x }}:{{ loop.length }} {% endfor %}", {"xs": [1, 2, 3, 4, 5]}),
    ("loop_break_continue", "{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}", {"xs": [1, 2, 3, 4, 5]}),
    ("loop_unpack", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for a, b in [(1, 2), [3, 4]] %}{{ a + b }}{% endfor %}", {"d": {"b": 1, "a": 2}}),
    ("loop_dict_iter", "{% for k in d %}{{ k }}{% endfor %}", {"d": {"z": 1, "y": 2}}),
    ("loop_nested", "{% for a in [1, 2] %}{% for b in 'xy' %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }}|{% endfor %}", {}),
    ("loop_scope", "{% set x = 1 %}{% for i in range(3) %}{% if i == 1 %}{% set x = 5 %}{% endif %}{{ x }}{% endfor %}{{ x }}", {}),
    ("loop_undefined_iter", "{% for x in nothing %}{{ x }}{% else %}none{% endfor %}", {}),
    ("loop_none_iter_error", "{% for x in n %}{{ x }}{% endfor %}", {"n": None}),
    # namespace, set
    ("namespace", "{% set ns = namespace(count=0, found=false) %}{% for x in xs %}{% set ns.count = ns.count + x %}{% if x == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }}", {"xs": [1, 2, 3]}),
    ("set_tuple", "{% set a, b = 1, 'two' %}{{ a }}{{ b }}{% set c = (3, 4) %}{{ c }}{{ c[0] }}", {}),
    ("set_block", "{% set body %}\n  Hello {{ name }}!\n{% endset %}[{{ body }}]{% set up | upper | trim %} shout {% endset %}[{{ up }}]", {"name": "Ann"}),
    ("with_block", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a is defined }}", {}),
    # macros, call, filter blocks
    ("macro_defaults", "{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}{{ greet('Bob') }} {{ greet('Eve', punct='?') }} {{ greet('Al', 'Hi') }}", {}),
    ("macro_varargs_kwargs", "{% macro f(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ f(1, 2, 3, x=4) }}", {}),
    ("macro_caller", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ 1 + 1 }}{% endcall %}", {}),
    ("macro_sees_outer", "{% set g = 'G' %}{% macro m() %}{{ g }}{% endmacro %}{{ m() }}", {}),
    ("filter_block", "{% filter upper %}hello {{ name }}{% endfilter %}", {"name": "x"}),
    # expressions
    ("literals", "{{ 'a\\tb\\n\\'q\\'' }}|{{ \"d\\\"q\" }}|{{ 'x' 'y' }}|{{ 1_000 }}|{{ 1.5e3 }}|{{ True }}{{ false }}{{ None }}|{{ [1, 'a', none, 2.0] }}|{{ {'a': [1, {'b': None}]} }}|{{ (1,) }}|{{ () }}|{{ 'é\\u00e9\\x41' }}", {}),
    ("arith", "{{ 7 / 2 }} {{ 4 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7.5 % 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ -2 ** 2 }} {{ 1 + 2 * 3 - 4 }} {{ 0.1 + 0.2 }} {{ 3 * 'ab' }} {{ [1] * 2 }} {{ 1e16 }} {{ 1e-5 }} {{ 123456789.0 * 1000 }} {{ 1/3 }}", {}),
    ("concat", "{{ 'a' ~ 1 ~ none ~ undefined_thing ~ [1] ~ 2.50 }}", {}),
    ("compare", "{{ 1 < 2 < 3 }} {{ 1 < 3 < 2 }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 'a' in 'cat' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }} {{ true == 1 }} {{ none == none }} {{ x == y }}", {}),
    ("logic", "{{ 0 or 'b' }} {{ 'a' and 'b' }} {{ '' and 'b' }} {{ not [] }} {{ none or [] }} {{ 'y' if 1 > 2 else 'n' }} [{{ 'y' if false }}]", {}),
    ("subscript_slice", "{{ xs[0] }}{{ xs[-1] }}{{ xs[1:] }}{{ xs[:2] }}{{ xs[::-1] }}{{ xs[::2] }}{{ s[1:3] }}{{ s[::-1] }}{{ s[-2:] }}{{ xs[5] }}|{{ d['a'] }}{{ d.a }}{{ d.missing }}|{{ xs.0 }}", {"xs": [1, 2, 3, 4], "s": "hello", "d": {"a": "A"}}),
    ("str_of_values", "{{ x }}|{{ 1.0 }}|{{ [1.0, 'it\\'s', \"q\\\"\", '\\n'] }}|{{ {'k': true} }}|{{ ('a', 1) }}|{{ -0.0 }}|{{ 1e100 }}", {"x": {"a": [True, None, 1.25]}}),
    # filters
    ("f_trim_case", "[{{ '  hi  ' | trim }}][{{ 'xxhixx' | trim('x') }}]{{ 'hello world-foo(bar' | title }} {{ 'hELLO wORLD' | capitalize }} {{ 'aB' | upper }}{{ 'aB' | lower }}", {}),
    ("f_default", "{{ missing | default('d') }} {{ '' | default('e') }} {{ '' | default('e', true) }} {{ none | d('n') }} {{ false | default('f', boolean=true) }}", {}),
    ("f_length", "{{ xs | length }} {{ 'héllo' | length }} {{ d | count }} {{ missing | length }}", {"xs": [1, 2], "d": {"a": 1}}),
    ("f_join", "{{ xs | join(', ') }} {{ xs | join }} {{ users | join('/', attribute='name') }}", {"xs": [1, "a", None], "users": [{"name": "a"}, {"name": "b"}]}),
    ("f_tojson", "{{ v | tojson }}|{{ v | tojson(indent=2) }}|{{ v | tojson(sort_keys=true) }}|{{ v | tojson(separators=(',', ':')) }}|{{ 'é\"<>&' | tojson }}|{{ 'é' | tojson(ensure_ascii=true) }}|{{ 1.0 | tojson }}|{{ [] | tojson(indent=2) }}|{{ {} | tojson(indent=4) }}", {"v": {"b": [1, 2.5, True, None], "a": {"x": "y\n\t\u0001"}, "c": "日本"}}),
    ("f_items_list", "{{ d | items | list }} {{ 'ab' | list }} {{ d | list }} {{ xs | first }} {{ xs | last }} {{ 'xyz' | first }} {{ [] | first }}", {"d": {"a": 1, "b": 2}, "xs": [3, 4, 5]}),
    ("f_numbers", "{{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 3 | float }} {{ -3 | abs }} {{ 2.5 | round }} {{ 3.5 | round }} {{ 2.567 | round(2) }} {{ 2.1 | round(method='ceil') }} {{ 7 | round }} {{ '0x1A' | int(0, 16) }}", {}),
    ("f_replace_string", "{{ 'aaa' | replace('a', 'b') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ 12 | string }}{{ none | string }}", {}),
    ("f_select", "{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }} {{ msgs | rejectattr('role', 'eq', 'user') | list | length }} {{ [0, 1, 2, 3] | select('odd') | list }} {{ [0, 1, '', 'a'] | select | list }} {{ [1, 2, 3] | reject('divisibleby', 3) | list }} {{ msgs | selectattr('tool') | list }} {{ msgs | map(attribute='missing', default='x') | list }} {{ ['a', 'B'] | map('upper') | join }}", {"msgs": [{"role": "user", "content": "u1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2", "tool": 1}]}),
    ("f_generator_truthy", "{% if msgs | selectattr('role', 'equalto', 'nobody') %}truthy{% endif %}", {"msgs": [{"role": "user"}]}),
    ("f_generator_length_error", "{{ msgs | selectattr('role') | length }}", {"msgs": [{"role": "user"}]}),
    ("f_unique_sort", "{{ ['b', 'A', 'a', 'c', 'B'] | unique | list }} {{ ['b', 'A', 'a'] | unique(case_sensitive=true) | list }} {{ [3, 1, 2] | sort }} {{ ['b', 'A', 'c'] | sort }} {{ ['b', 'A', 'c'] | sort(case_sensitive=true) }} {{ [3, 1, 2] | sort(reverse=true) }} {{ users | sort(attribute='age') | map(attribute='n') | join }}", {"users": [{"n": "x", "age": 3}, {"n": "y", "age": 1}, {"n": "z", "age": 2}]}),
    ("f_misc", "{{ [1, 2, 3] | reverse | list }} {{ 'abc' | reverse }} {{ [1, 2, 3] | sum }} {{ [1.5, 2] | sum }} {{ [3, 1, 2] | min }} {{ ['b', 'A'] | max }} {{ [1, 2, 3, 4, 5] | batch(2) | list }} {{ 'one two  three' | wordcount }} {{ 'x' | center(7) }}|", {}),
    ("f_indent", "{{ 'a\nb\n\nc' | indent }}|{{ 'a\nb' | indent(2, true) }}|{{ 'a\n\nb' | indent('> ', blank=true) }}", {}),
    ("f_escape_safe", "{{ '<a href=\"x\">&\\'</a>' | e }} {{ '<b>' | safe }} {{ '<' | escape | escape }} {{ '<' | safe + '<' }} {{ '<' ~ '<' | safe }}", {}),
    ("f_dictsort", "{{ d | dictsort }} {{ d | dictsort(by='value') }}", {"d": {"b": 1, "a": 3, "C": 2}}),
    # tests
    ("tests_types", "{{ x is defined }}{{ y is undefined }}{{ n is none }}{{ 1 is number }}{{ 1.0 is float }}{{ 1 is integer }}{{ true is integer }}{{ true is boolean }}{{ 's' is string }}{{ d is mapping }}{{ xs is iterable }}{{ 's' is sequence }}{{ 1 is iterable }}{{ range is callable }}{{ d is sequence }}", {"x": 1, "n": None, "d": {}, "xs": []}),
    ("tests_values", "{{ 1 is odd }}{{ 2 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}{{ 'a' is in 'abc' }}{{ 2 is eq 2 }}{{ 2 is ne 3 }}{{ 'ab' is lower }}{{ 'AB' is upper }}{{ 3 is gt 2 }}{{ 3 is lt 2 }}{{ 3 is ge 3 }}{{ x is true }}{{ 1 is true }}{{ x is false }}{{ none is sameas none }}{{ 'upper' is filter }}{{ 'odd' is test }}", {"x": True}),
    ("tests_not", "{{ x is not defined }} {{ x is not none }} {{ not x is defined }}", {}),
    # string methods
    ("m_strip_split", "[{{ '  a b  '.strip() }}][{{ 'xxaxx'.lstrip('x') }}][{{ 'xxaxx'.rstrip('x') }}]{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a,b,c'.split(',', 1) }}{{ 'a,b,c'.rsplit(',', 1) }}{{ 'a b c'.split(none, 1) }}{{ 'l1\nl2\r\nl3'.splitlines() }}", {}),
    ("m_starts_ends", "{{ 'hello'.startswith('he') }}{{ 'hello'.endswith(('x', 'lo')) }}{{ 'hello'.startswith('l', 2) }}{{ 'hello'.find('l') }}{{ 'hello'.rfind('l') }}{{ 'hello'.find('z') }}{{ 'hello'.count('l') }}{{ 'hello'.index('e') }}", {}),
    ("m_case_replace", "{{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'Ab'.upper() }}{{ 'Ab'.lower() }} {{ 'a-b-c'.replace('-', '+') }} {{ 'a-b-c'.replace('-', '', 1) }} {{ ', '.join(['x', 'y']) }} {{ '{} and {}'.format('a', 1) }} {{ '{name}!'.format(name='n') }} {{ 'ab'.swapcase() }}", {}),
    ("m_dict_list", "{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 'def') }} {{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }} {{ xs.index(2) }} {{ xs.count(1) }} {{ d['items'] is defined }}", {"d": {"a": 1, "b": [2]}, "xs": [1, 2, 1]}),
    ("m_append_unsafe", "{% set xs = [] %}{{ xs.append(1) }}", {}),
    ("m_isfuncs", "{{ '123'.isdigit() }}{{ 'abc'.isalpha() }}{{ ' '.isspace() }}{{ 'Ab'.isupper() }}{{ 'ab'.islower() }}", {}),
    # globals
    ("g_range", "{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(5, 0, -2) | list }} {% for i in range(2) %}{{ i }}{% endfor %}", {}),
    ("g_dict_ns", "{{ dict(a=1, b='x') }} {% set ns = namespace({'k': 1}, j=2) %}{{ ns.k }}{{ ns.j }}", {}),
    ("g_raise", "{% if x %}{{ raise_exception('Bad thing: ' ~ x) }}{% endif %}", {"x": "oops"}),
    ("g_strftime", "{{ strftime_now('%Y-%m-%d %H:%M:%S') }} {{ strftime_now('%d %b %Y') }} {{ strftime_now('%B %-d, %A %a %j %y %I%p') }}", {}),
    # undefined semantics and errors
    ("u_render_empty", "[{{ missing }}][{{ missing is defined }}][{{ d.missing }}][{{ d['missing'] }}][{{ xs[9] }}]{% if missing %}t{% else %}f{% endif %}", {"d": {}, "xs": []}),
    ("u_attr_of_undefined_error", "{{ missing.attr }}", {}),
    ("u_arith_error", "{{ missing + 1 }}", {}),
    ("u_call_error", "{{ missing() }}", {}),
    ("e_type_concat", "{{ 'a' + 1 }}", {}),
    ("e_syntax", "{% if x %}unclosed", {}),
    ("e_syntax_expr", "{{ 1 + }}", {}),
    ("e_unknown_tag", "{% frobnicate %}", {}),
    ("e_div_zero", "{{ 1 / 0 }}", {}),
    # more edge cases
    ("x_int_keys", "{% set m = {0: 'zero', 512: 'half', 'k': 1} %}{{ m[0] }} {{ m[512] }} {{ m }} {{ 0 in m }} {{ m | tojson }} {% for k, v in m.items() %}{{ k }}{% endfor %}", {}),
    ("x_unicode_case", "{{ 'straße' | upper }} {{ 'ÉCOLE' | lower }} {{ \"it's a dog's life\" | title }} {{ \"it's\".title() }} {{ 'ǆemal' | capitalize }}", {}),
    ("x_in_undefined", "{{ 'a' in missing }} {{ missing in ['a'] }} {{ missing == missing }} {{ missing is none }}", {}),
    ("x_nested_loop_outer", "{% for a in [1, 2] %}{% set outer = loop %}{% for b in [3] %}{{ outer.index }}{{ loop.index }}{% endfor %}{% endfor %}", {}),
    ("x_macro_recursion", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * (fact(n - 1) | int) }}{% endif %}{% endmacro %}{{ fact(5) }}", {}),
    ("x_string_ops", "{{ 'abc' * 0 }}|{{ 'a' ~ 'b' * 2 }}|{{ ('x' ~ 1) | length }}|{{ 'é' < 'z' }}|{{ 'abc'[1] }}|{{ 'abc'[-1] }}|{{ 'a b'.split(' ') | join('-') }}", {}),
    ("x_tojson_nested_markup", "{{ {'a': '<b>' | safe} | tojson }} {{ ('<' | e) ~ '>' }} {{ '<' | e + '>' }}", {}),
    ("x_default_chain", "{{ m.content | default('') | trim }}|{{ (m.missing or 'fallback') | upper }}|{{ m.get('content', 'x') }}", {"m": {"content": "  hi  "}}),
    ("x_float_repr", "{{ 1.5 }} {{ 100.0 }} {{ 1e15 }} {{ 12345678901234567890.0 }} {{ 0.0001 }} {{ 0.00001234 }} {{ 2.0 ** 0.5 }} {{ 10 / 4 }} {{ -1.5 | abs }} {{ 3 - 2.5 }}", {}),
    ("x_is_chains", "{{ x is defined and x is string and x | length > 2 }} {{ x is not string or x is none }}", {"x": "abcd"}),
    ("x_loop_length_revindex_filtered", "{% for m in msgs if m.role != 'system' %}{{ loop.revindex }}{{ m.role[0] }}{% if not loop.last %},{% endif %}{% endfor %}", {"msgs": [{"role": "system"}, {"role": "user"}, {"role": "assistant"}]}),
    ("x_items_generator_twice", "{% set it = d | items %}{{ it | list | length }}", {"d": {"a": 1, "b": 2}}),
    ("x_replace_newlines", "{{ 'a\\nb' }}|{{ 'line1\nline2' | replace('\n', ' / ') }}", {}),
    ("x_whitespace_mix", "{%- for x in xs -%}\n  {{ x }}\n{%- endfor %}\n\n  {% if true -%}\n   tail  \n{%- endif %}\n", {"xs": [1, 2]}),
    # generation blocks (AssistantTracker)
    ("generation_spans", "{% for m in msgs %}{% if m.role == 'assistant' %}A: {% generation %}{{ m.content }}<end>{% endgeneration %}\n{% else %}U: {{ m.content }}\n{% endif %}{% endfor %}", {"msgs": [{"role": "user", "content": "hé"}, {"role": "assistant", "content": "yö ☕"}, {"role": "user", "content": "again"}, {"role": "assistant", "content": "ok"}]}),
]


def tokens_for(name):
    for prefix, bos, eos in TOKENS:
        if name.startswith(prefix):
            return bos, eos
    return DEFAULT_TOKENS


def render(source, messages, tools, agp, bos, eos, with_mask, extra=None):
    kwargs = dict(extra or {})
    if bos is not None:
        kwargs["bos_token"] = bos
    if eos is not None:
        kwargs["eos_token"] = eos
    # the same normalisation apply_chat_template does before rendering
    conv = ctu._normalize_chat_messages(messages)
    rendered, indices = ctu.render_jinja_template(
        conversations=[conv], tools=tools, chat_template=source, add_generation_prompt=agp,
        return_assistant_tokens_mask=with_mask, **kwargs)
    return rendered[0], (indices[0] if indices else [])


def find_sdist():
    env = os.environ.get("FINCH_LLAMA_SDIST")
    if env:
        return env
    found = sorted(glob.glob("/root/.cache/finch/sdist/llama_cpp_python-*.tar.gz")
                   + glob.glob(os.path.expanduser("~/.cache/finch/sdist/llama_cpp_python-*.tar.gz")))
    if not found:
        sys.exit("llama_cpp_python sdist not found: pip download --no-deps --no-binary :all: llama_cpp_python "
                 "-d ~/.cache/finch/sdist")
    return found[-1]


def main():
    templates = {}
    with tarfile.open(find_sdist()) as tar:
        for m in tar.getmembers():
            if "/vendor/llama.cpp/models/templates/" in m.name and m.name.endswith(".jinja") and m.isfile():
                name = os.path.basename(m.name)[: -len(".jinja")]
                templates[name] = tar.extractfile(m).read().decode("utf-8")
    for name, src in EXTRA_TEMPLATES.items():
        templates[name] = src

    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "templates"))
    cases = []
    for name in sorted(templates):
        src = templates[name]
        with open(os.path.join(OUT, "templates", name + ".jinja"), "w", encoding="utf-8", newline="") as f:
            f.write(src)
        bos, eos = tokens_for(name)
        uses_tools = "tools" in src
        with_mask = "generation" in src and "endgeneration" in src
        for conv_name, messages in CONVERSATIONS.items():
            variants = [(None, {})]
            if conv_name.startswith("tool_calls") and uses_tools:
                variants = [(TOOLS, {})]
            elif conv_name == "system_user" and uses_tools:
                variants = [(None, {}), (TOOLS, {})]
            elif conv_name == "reasoning" and "enable_thinking" in src:
                variants = [(None, {}), (None, {"enable_thinking": False})]
            for tools, extra in variants:
                for agp in (False, True):
                    suffix = ("+tools" if tools else "") + "".join(f"+{k}={v}" for k, v in extra.items())
                    case = {
                        "template": name, "case": conv_name + suffix + ("+gen" if agp else ""),
                        "bos_token": bos, "eos_token": eos, "add_generation_prompt": agp,
                        "messages": messages, "tools": tools, "extra": extra,
                    }
                    try:
                        text, spans = render(src, messages, tools, agp, bos, eos, with_mask, extra)
                        case["expected"] = text
                        if with_mask:
                            case["generation_spans"] = [list(s) for s in spans]
                    except jinja2.exceptions.TemplateSyntaxError as e:
                        case["error"] = str(e)
                        case["error_type"] = "TemplateSyntaxError"
                    except jinja2.exceptions.TemplateError as e:
                        case["error"] = str(e)
                        case["error_type"] = type(e).__name__
                    except Exception as e:  # noqa: BLE001 — any jinja/python error is an expected failure
                        case["error"] = str(e)
                        case["error_type"] = type(e).__name__
                    cases.append(case)
    snippets = []
    for sname, src, context in SNIPPETS:
        entry = {"name": sname, "source": src, "context": context}
        try:
            env = ctu._compile_jinja_template(src).environment
            template = env.from_string(src)
            blocks, indices = [], []
            with env.activate_tracker(blocks, indices):
                for b in template.generate(**context):
                    blocks.append(b)
            entry["expected"] = "".join(blocks)
            entry["generation_spans"] = [list(x) for x in indices]
        except Exception as e:  # noqa: BLE001
            entry["error"] = str(e)
            entry["error_type"] = type(e).__name__
        snippets.append(entry)
    with open(os.path.join(OUT, "snippets.json"), "w", encoding="utf-8") as f:
        json.dump(snippets, f, ensure_ascii=False, indent=1)
    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=1)
    ok = sum(1 for c in cases if "expected" in c)
    print(f"{len(templates)} templates, {len(cases)} cases ({ok} rendered, {len(cases) - ok} errors) → {OUT}")


if __name__ == "__main__":
    main()
