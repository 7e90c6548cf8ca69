"""A free-text judge's verdicts against a person's reading of the same (reply, constraint)
pairs: accuracy and Cohen's kappa, and how often the judge gave one reply the same verdict
on every constraint (a judge that does not read the constraints one by one).

    .venv/bin/python benchmarks/freetext_judge_reading.py
        [--reading benchmarks/data/freetext_judge_reading.jsonl] [--samples SAMPLES.jsonl]

The reading file holds 20 verdicts drawn with `random.seed(0); random.sample(range(108),
20)` from the 108 (reply, constraint) verdicts of `benchmarks/freetext_smoke.py --serve
qwen2.5-coder-1.5b` (its samples stage), each with the reader's verdict and the rule used
(docs/benchmarks.md, "Reading free-text verdicts"). `--samples`: that run's samples.jsonl,
to count the judge's uniform replies.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rpo_bench.evaluate.sysbench.calibrate import agreement  # noqa: E402
from rpo_bench.jsonl import read_jsonl  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reading", default=str(ROOT / "benchmarks" / "data" / "freetext_judge_reading.jsonl")
    )
    parser.add_argument("--samples", help="the run's samples.jsonl (judge's uniform replies)")
    args = parser.parse_args()
    rows = read_jsonl(args.reading)
    result = agreement((bool(r["judge"]), bool(r["reader"])) for r in rows)
    judge_yes = sum(bool(r["judge"]) for r in rows)
    reader_yes = sum(bool(r["reader"]) for r in rows)
    print(f"verdicts read: {len(rows)}; judge yes {judge_yes}, reader yes {reader_yes}")
    if args.samples:
        replies = [resp for turn in read_jsonl(args.samples) for resp in turn["responses"]]
        uniform = sum(len(set(resp["verdicts"])) == 1 for resp in replies)
        print(f"replies with one verdict for all their constraints: {uniform} of {len(replies)}")
    print(f"accuracy={result['accuracy']:.2f} kappa={result['kappa']}")


if __name__ == "__main__":
    main()
