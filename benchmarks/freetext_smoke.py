"""The free-text smoke preset's pair statistics, run against the deterministic fake of its
LLMs that CI uses (tests/fake_freetext.py on a local OpenAI-compatible server): pairs per
sampled response, reversals validated or dropped, unjudged (unparsed) judgements, the
triggered filter's unparsed answers, and on- and off-policy pairs (critic pool).

    .venv/bin/python benchmarks/freetext_smoke.py [--work DIR]
    .venv/bin/python benchmarks/freetext_smoke.py --serve qwen2.5-coder-1.5b [--work DIR]

`--serve MODEL`: every LLM role (judge, triggered filter, reverser, teacher) is that ladder
model on the pinned llama-server (`rpo-bench serve`), answers bounded as in CI's smoke
(tests/test_local_server.py); it also prints the wall time. With a hosted endpoint, run
the preset itself: `python -m rpo_bench.ablate --config ablations/smoke_freetext.yaml`
(OPENAI_API_KEY).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the fake server and the fake LLMs live with the tests

from fake_freetext import respond  # noqa: E402
from fake_judge_server import FakeJudgeServer  # noqa: E402
from test_freetext_ablation import KEY_ENV, SECRET, run_preset  # noqa: E402

FIELDS = ("pairs", "responses", "pairs_per_response", "turns", "turns_unjudged",
          "responses_unjudged", "pairs_on_policy", "pairs_off_policy", "reversals")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", help="folder for the run (default: a temporary one)")
    parser.add_argument("--serve", metavar="MODEL", help="every role on this served model")
    args = parser.parse_args()
    folder = Path(args.work or tempfile.mkdtemp(prefix="freetext-smoke-"))
    folder.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault(KEY_ENV, SECRET)
    started = time.perf_counter()
    if args.serve:
        from rpo_bench.local_server import LocalServer
        from rpo_bench.models import gguf_file

        log = folder / "server.log"
        with LocalServer(gguf_file(args.serve), slots=2, context=8192, log_file=log) as server:
            done = run_preset(folder, server.url, model=args.serve, timeout=7200)
    else:
        with FakeJudgeServer(respond=respond) as server:
            done = run_preset(folder, server.url)
    print(f"wall time: {time.perf_counter() - started:.0f} s")
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    results = json.loads((folder / "report" / "results.json").read_text())
    print("judging:", json.dumps(results["judging"]))
    for cell in results["cells"]:
        stats = {k: cell["pairs"].get(k) for k in FIELDS}
        print(f"{cell['strategy']}:", json.dumps(stats))
    print(f"run folder: {folder}")


if __name__ == "__main__":
    main()
