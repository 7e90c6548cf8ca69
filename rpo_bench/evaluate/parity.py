"""Agreement of rpo_bench's IFEval verdicts with lm-eval's own `process_results`."""

from __future__ import annotations

from collections import Counter
from typing import Any

import rpo_bench.constraints  # noqa: F401  (offline Punkt before lm-eval's IFEval import)
from rpo_bench.evaluate.verifiable import constraints_for, score


def lm_eval_is_random(row: dict[str, Any]) -> bool:
    """lm-eval replaces a non-letter `letter` (IFEval asks for '#', '!') with a random letter."""
    return any(
        iid == "keywords:letter_frequency" and not kw["letter"].isalpha()
        for iid, kw in zip(row["instruction_id_list"], row["kwargs"], strict=True)
    )


def compare(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-instruction strict and loose verdicts, ours vs lm-eval's, on (prompt, response) rows."""
    from lm_eval.tasks.ifeval.utils import process_results

    counts: Counter = Counter()
    disagreements = []
    for row in rows:
        if lm_eval_is_random(row):
            counts["rows_skipped_random_in_lm_eval"] += 1
            continue
        counts["rows"] += 1
        doc = {k: row[k] for k in ("key", "instruction_id_list", "prompt", "kwargs")}
        reference = process_results(doc, [row["response"]])
        ours = score(constraints_for(row["instruction_id_list"], row["kwargs"]), row["response"])
        for level in ("strict", "loose"):
            if reference[f"prompt_level_{level}_acc"] != ours[f"prompt_level_{level}_acc"]:
                counts[f"prompt_{level}_disagreements"] += 1
        for i, iid in enumerate(row["instruction_id_list"]):
            counts["instructions"] += 1
            for level in ("strict", "loose"):
                theirs = reference[f"inst_level_{level}_acc"][i]
                mine = ours[f"inst_level_{level}_acc"][i]
                counts[f"{level}_passed"] += mine
                if theirs != mine:
                    disagreements.append((row["key"], row.get("source"), iid, level, theirs, mine))
    return {**counts, "disagreements": disagreements}
