"""How many of a pairs file's preference pairs have a mirror: another pair of the same two
replies with the preference reversed (`rpo` makes them under the reversed prompt). A model
that does not read its prompt scores exactly 0.5 on a mirrored couple, so the share bounds
what a prompt-blind model can reach on its own training pairs.

    .venv/bin/python benchmarks/mirrors.py <store>/pairs/*/pairs.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def mirrored(rows: list[dict]) -> tuple[int, int]:
    """(pairs with a mirror, preference pairs)."""
    pairs = [(r["chosen"], r["rejected"]) for r in rows if "chosen" in r and "rejected" in r]
    seen = set(pairs)
    return sum((b, a) in seen for a, b in pairs), len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", nargs="+", type=Path, help="pairs files (JSON lines)")
    for path in parser.parse_args().pairs:
        rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
        strategy = next((r.get("strategy") for r in rows), "-")
        m, n = mirrored(rows)
        # a prompt-blind model's best accuracy: 0.5 on mirrored pairs, 1 on the rest
        ceiling = (0.5 * m + (n - m)) / n if n else float("nan")
        print(f"{path}: strategy={strategy} pairs={n} mirrored={m} share={m / max(n, 1):.2f} "
              f"prompt_blind_ceiling={ceiling:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
