"""Print the lm-eval parity figures for the committed IFEval corpus.

.venv/bin/python benchmarks/ifeval_parity.py
"""

import json
from collections import Counter
from pathlib import Path

from rpo_bench.evaluate.parity import compare

CORPUS = (
    Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ifeval_parity_corpus.jsonl"
)

rows = [json.loads(line) for line in CORPUS.open()]
result = compare(rows)
sources = Counter(r["source"].split(":")[0] for r in rows)
print(f"corpus rows: {len(rows)} ({dict(sources)}), prompts: {len({r['key'] for r in rows})}")
print(
    f"rows compared: {result['rows']}, skipped (lm-eval random letter): "
    f"{result.get('rows_skipped_random_in_lm_eval', 0)}"
)
n = result["instructions"]
print(f"(prompt, instruction) pairs compared: {n}, each strict and loose")
print(f"strict passes: {result['strict_passed']}, loose passes: {result['loose_passed']}")
print(f"disagreements: {len(result['disagreements'])}")
