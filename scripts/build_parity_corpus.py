"""Build the lm-eval parity corpus: tests/fixtures/ifeval_parity_corpus.jsonl.

Responses are the embedded model's greedy answers to IFEval prompts, plus variants of them
that flip many checks (upper/lower case, quotes, postscript, JSON fences, ...) and
hand-made edge cases (empty, whitespace, fences, trailing spaces). Regenerate with:

    .venv/bin/python scripts/build_parity_corpus.py [--prompts 320]
"""

from __future__ import annotations

import argparse
import json

from rpo_bench import models
from rpo_bench.evaluate.verifiable import read_jsonl
from rpo_bench.files import write_atomic
from rpo_bench.paths import REPO_ROOT, resource
from rpo_bench.rollout.hf import generate

OUT = REPO_ROOT / "tests" / "fixtures" / "ifeval_parity_corpus.jsonl"

EDGE_CASES = {
    "empty": "",
    "whitespace": "   \n\t  \n",
    "markdown_fence": "```\nprint('hello, world')\n```",
    "json_fence": '```json\n{"answer": "yes", "items": [1, 2, 3]}\n```',
    "json_bare": '{"title": "<<Plan>>", "count": 3}',
    "trailing_spaces": "My answer is yes.   \n\n   ",
    "quoted": '"I LOVE THIS, AND I SAID SO."',
    "sections": "SECTION 1\n*first* part.\n\nSECTION 2\n[name] and [address].\n\nP.S. thanks",
    "paragraphs": "First paragraph here.\n\n***\n\nSecond one.\n\n***\n\nThird.",
    "bullets": "* one\n* two\n- three\n\nIs there anything else I can help with?",
    "two_responses": "Answer one.\n******\nAnswer two.",
    "hindi": "यह एक वाक्य है। यह दूसरा है!",
    "chinese": "这是第一句。这是第二句！",
}


def variants(prompt: str, response: str, k: int) -> dict[str, str]:
    """A few deterministic rewrites of a real answer that move it across many checks."""
    rewrites = [
        ("upper", response.upper()),
        ("lower", response.lower()),
        ("quoted", f'"{response.strip()}"'),
        ("postscript", response + "\n\nP.S. I hope this helps."),
        ("no_commas", response.replace(",", "")),
        ("repeat_prompt", prompt + "\n" + response),
        ("titled", "<<A Title>>\n" + response),
        ("json_fenced", "```json\n" + json.dumps({"answer": response}) + "\n```"),
        ("end_phrase", response + "\nIs there anything else I can help with?"),
        ("starred", "*" + response.replace("\n\n", "*\n\n*") + "*"),
    ]
    return dict(rewrites[k % len(rewrites) : k % len(rewrites) + 2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=320)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    args = parser.parse_args()

    docs = read_jsonl(resource("ifeval", "input_data.jsonl"))[: args.prompts]
    loaded = models.load(models.DEFAULT_MODEL)
    chats = [[{"role": "user", "content": d["prompt"]}] for d in docs]
    replies = generate(loaded.model, loaded.tokenizer, chats, max_new_tokens=args.max_new_tokens)

    rows = []
    for k, (doc, reply) in enumerate(zip(docs, replies, strict=True)):
        base = {
            "key": doc["key"],
            "instruction_id_list": doc["instruction_id_list"],
            "kwargs": doc["kwargs"],
            "prompt": doc["prompt"],
        }
        rows.append(base | {"source": "model", "response": reply})
        for name, text in variants(doc["prompt"], reply, k).items():
            rows.append(base | {"source": f"variant:{name}", "response": text})
        name = sorted(EDGE_CASES)[k % len(EDGE_CASES)]
        rows.append(base | {"source": f"edge:{name}", "response": EDGE_CASES[name]})
    write_atomic(OUT, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    print(f"{len(rows)} (prompt, response) pairs from {len(docs)} prompts -> {OUT}")


if __name__ == "__main__":
    main()
