"""How many IFBench prompts can be scored here: every instruction's checker and data available.

.venv/bin/python benchmarks/ifbench_coverage.py
"""

from __future__ import annotations

import json
import sys

from rpo_bench.evaluate import ifbench


def main() -> int:
    ifbench.registry()  # puts the pinned NLTK data on NLTK's path
    rows = ifbench.docs()
    whole, missing = ifbench.coverage(rows)
    print(f"IFBench prompts scored: {whole}/{len(rows)}")
    for instruction_id, resource in missing.items():
        n = sum(instruction_id in row["instruction_id_list"] for row in rows)
        print(f"  not checkable: {instruction_id} ({n} prompts) lacks NLTK data {resource!r}")
    print(json.dumps(ifbench.checker_version()))
    return 0 if whole == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
