"""How often an LLM reverses a verifiable constraint exactly (the authors' LLM reversal).

Every reversible constraint id (threshold ids with both relations and a bound of 1; 31
constraints, `reversal_agreement.examples()`) is described, reversed by the embedded model
(SmolLM2-135M-Instruct, greedy, the authors' rules as the prompt) and the reversed text is
compared with the exact reversal `Constraint.reverse()` by `matches_exact_reversal`:
count constraints must state exactly the complement bound ("at least 300 words" ->
"at most 299 words" or "fewer than 300 words"); the others must flip polarity (open with
a prohibition exactly when the original does not) and keep every named word, phrase,
marker and language. The rule is checked first on the exact reversal's own text (must
give 31/31) and on the unchanged original (must give 0/31), so a low score is the
model's, not the rule's. A 135M model is expected to agree rarely; the figure is honest.

    .venv/bin/python benchmarks/llm_reversal.py [--max-new-tokens 32] [--cache FILE]

Last line: the agreement.
"""

from __future__ import annotations

import argparse
import time

import torch

from rpo_bench import models
from rpo_bench.constraints.llm_reversal import LLMReverser
from rpo_bench.constraints.reversal_agreement import examples, matches_exact_reversal
from rpo_bench.rollout.hf import HFBackend, HFCompleter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=models.DEFAULT_MODEL)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--cache", default=None, help="SQLite reversal cache (default: none)")
    args = parser.parse_args()

    constraints = examples()
    exact = sum(matches_exact_reversal(c, c.reverse().describe()) for c in constraints)
    unchanged = sum(matches_exact_reversal(c, c.describe()) for c in constraints)
    print(
        f"rule check: exact reversals pass {exact}/{len(constraints)}, originals pass {unchanged}"
    )
    assert exact == len(constraints) and unchanged == 0, "the agreement rule itself is unsound"

    torch.manual_seed(0)
    loaded = models.load(args.model)
    reverser = LLMReverser(
        HFCompleter(HFBackend(loaded.model, loaded.tokenizer, batch_size=16), args.max_new_tokens),
        cache=args.cache,
    )
    start = time.perf_counter()
    reversed_texts = reverser.reverse_many([c.describe() for c in constraints])
    seconds = time.perf_counter() - start
    agree = 0
    for c, text in zip(constraints, reversed_texts, strict=True):
        ok = matches_exact_reversal(c, text)
        agree += ok
        print(f"[{'agree' if ok else 'differ'}] {c.describe()!r}\n    llm:   {text!r}")
        print(f"    exact: {c.reverse().describe()!r}")
    print(f"model {args.model}, greedy, {args.max_new_tokens} new tokens, {seconds:.1f} s")
    print(f"agreement: {agree}/{len(constraints)} = {agree / len(constraints):.1%}")


if __name__ == "__main__":
    main()
