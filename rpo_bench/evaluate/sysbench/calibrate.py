"""How well does a judge agree with SysBench's released GPT-4o verdicts?

`calibrate` re-judges the turns of a judge_labels file (its answers, with earlier
rounds' answers as history) and compares verdicts criterion by criterion; the CLI does so
for each judge prompt (SysBench's official one and the project's), since the prompt is
part of the metric.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from rpo_bench.evaluate.sysbench.judging import judgement_row, session_requests, write_rows
from rpo_bench.jsonl import read_jsonl
from rpo_bench.judge.base import Judge
from rpo_bench.judge.types import JudgeRequest, NothingJudged


def agreement(pairs: Iterable[tuple[bool, bool]]) -> dict[str, Any]:
    """Accuracy and Cohen's kappa of (judge, reference) verdict pairs.

    Kappa is None when chance agreement is 1 (both sides gave one and the same class):
    it is undefined there, and reporting 0 or 1 would mislead.
    """
    pairs = list(pairs)
    n = len(pairs)
    if n == 0:
        return {"accuracy": None, "kappa": None, "n": 0}
    observed = sum(a == b for a, b in pairs) / n
    judge_yes = sum(a for a, _ in pairs) / n
    ref_yes = sum(b for _, b in pairs) / n
    chance = judge_yes * ref_yes + (1 - judge_yes) * (1 - ref_yes)
    kappa = None if chance >= 1 else _digits((observed - chance) / (1 - chance))
    return {"accuracy": observed, "kappa": kappa, "n": n}


def _digits(value: float) -> float:
    """Four decimals, no more: float noise (-8.3e-17) is 0, and never -0.0."""
    return round(value, 4) + 0.0


def intervals(
    turns: list[list[tuple[bool, bool]]], n_boot: int = 1000, seed: int = 0
) -> dict[str, list[float] | None]:
    """95% percentile bootstrap intervals of accuracy and kappa, resampling judged turns
    with all their criteria (criteria of one turn are not independent)."""
    turns = [t for t in turns if t]
    if len(turns) < 2:
        return {"accuracy": None, "kappa": None}
    rng = np.random.default_rng(seed)
    acc, kap = [], []
    for _ in range(n_boot):
        picked = rng.integers(0, len(turns), len(turns))
        a = agreement(p for i in picked for p in turns[i])
        acc.append(a["accuracy"])
        if a["kappa"] is not None:
            kap.append(a["kappa"])

    def ci(values: list[float]) -> list[float] | None:
        if len(values) < n_boot // 2:  # kappa undefined in most resamples
            return None
        return [_digits(float(v)) for v in np.percentile(values, [2.5, 97.5])]

    return {"accuracy": ci(acc), "kappa": ci(kap)}


def seeded_sample(n_rows: int, size: int | None, seed: int) -> list[int]:
    """Row indices of a fixed, seeded sample (in file order); all rows when size is None."""
    if size is None or size >= n_rows:
        return list(range(n_rows))
    return sorted(int(i) for i in np.random.default_rng(seed).choice(n_rows, size, replace=False))


def calibrate(
    judge: Judge,
    labels_path: str | Path,
    sessions_path: str | Path,
    limit: int | None = None,
    rows_path: str | Path | None = None,
    sample: int | None = None,
    seed: int = 0,
    max_turns: int | None = None,
) -> dict[str, Any]:
    """Judge the first `limit` rows of a GPT-4o labels file, or a seeded `sample` of its
    rows, and compare with its verdicts. `max_turns`: only the first N of those, in file
    order (the order a run judges them in, so a stopped run's cache holds such a prefix).

    Criteria GPT-4o left undecided (null) are skipped. Turns the judge could not judge
    are counted in `judge_errors` (and by kind: cut off, unparseable, ...) and left out of
    the agreement figures. With `rows_path`, the judged rows are also written there
    (judge_labels schema).
    """
    if max_turns is not None and max_turns < 1:
        raise ValueError(f"max_turns must be at least 1, got {max_turns}")
    labels = read_jsonl(labels_path)
    answers = {(int(r["system_id"]), int(r["round_index"])): r["answer"] for r in labels}
    chosen = labels if limit is None else labels[:limit]
    chosen = [chosen[i] for i in seeded_sample(len(chosen), sample, seed)][:max_turns]
    sessions = {int(s["system_id"]): s for s in read_jsonl(sessions_path)}

    by_session: dict[int, dict[tuple[int, int], JudgeRequest]] = {}
    requests: list[JudgeRequest] = []
    for row in chosen:
        key = (int(row["system_id"]), int(row["round_index"]))
        if key[0] not in sessions:
            raise ValueError(f"labels row {key} has no session in {sessions_path}")
        if key[0] not in by_session:
            built = session_requests(sessions[key[0]], answers)
            by_session[key[0]] = {r.key: r for r in built if r.key is not None}
        requests.append(by_session[key[0]][key])

    start = time.perf_counter()
    judgements = judge.judge_many(requests)
    seconds = time.perf_counter() - start
    fresh = sum(not j.cached for j in judgements)

    pairs: list[tuple[bool, bool]] = []
    per_turn: list[list[tuple[bool, bool]]] = []
    typed: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    turn_pairs: list[tuple[bool, bool]] = []
    errors = null_gold = undecided = 0
    for row, request, judgement in zip(chosen, requests, judgements, strict=True):
        if judgement.error is not None:
            errors += 1
            continue
        types = {str(c["criteria_id"]): c["criteria_type"] for c in request.checklist}
        per_turn.append([])
        for cid, gold in row["verdicts"].items():
            if gold is None:
                null_gold += 1
                continue
            mine = judgement.verdicts.get(cid)
            if mine is None:  # only a replayed undecided label can be None
                undecided += 1
                continue
            pairs.append((mine, gold))
            per_turn[-1].append((mine, gold))
            typed[types[cid]].append((mine, gold))
        turn_pairs.append((bool(judgement.all_pass), bool(row["all_pass"])))

    if rows_path is not None:
        model = chosen[0]["model"] if chosen else ""
        write_rows(
            (
                judgement_row(j, r, model, judge.name)
                for j, r in zip(judgements, requests, strict=True)
            ),
            rows_path,
        )

    if chosen and errors == len(chosen):  # the rows above are kept: they hold the errors
        first = next(j.error for j in judgements if j.error)
        raise NothingJudged(
            f"{judge.identity} could judge none of the {errors} turns, so there is no "
            f"agreement to report; the first turn's error: {first}"
        )
    overall = agreement(pairs)
    return {
        "judge": judge.identity,
        "labels": str(labels_path),
        "turns": len(chosen),
        "sample": {"size": sample, "seed": seed} if sample is not None else None,
        **({"max_turns": max_turns} if max_turns is not None else {}),
        "judge_errors": errors,
        "judge_errors_by_kind": dict(Counter(j.failure for j in judgements if j.error)),
        "cached_turns": len(judgements) - fresh,
        "seconds_per_judgment": round(seconds / fresh, 2) if fresh else None,
        "criteria": overall["n"],
        "skipped_null_reference": null_gold,
        "skipped_undecided_judge": undecided,
        "accuracy": overall["accuracy"],
        "kappa": overall["kappa"],
        "ci95": intervals(per_turn),
        "confusion": {
            "both_yes": sum(a and b for a, b in pairs),
            "both_no": sum(not a and not b for a, b in pairs),
            "judge_yes_reference_no": sum(a and not b for a, b in pairs),
            "judge_no_reference_yes": sum(not a and b for a, b in pairs),
        },
        "turn_all_pass_agreement": agreement(turn_pairs)["accuracy"],
        "by_type": {t: agreement(p) for t, p in sorted(typed.items())},
    }


def _default_cache() -> Path:
    from rpo_bench.paths import cache_dir

    return cache_dir() / "judge" / "judgements.sqlite"


def _judge(args: argparse.Namespace, prompt: str) -> Judge:
    from rpo_bench.judge import make_judge

    if args.judge == "replay":
        return make_judge("replay", labels=args.replay_labels or args.labels)
    cache = None if args.cache == "none" else (args.cache or _default_cache())
    options: dict[str, Any] = {
        "cache": cache,
        "prompt": prompt,
        "rejudge_errors": args.rejudge_errors,
    }
    if args.model:
        options["model"] = args.model
    if args.judge == "openai":
        options |= {"base_url": args.base_url, "api_key_env": args.api_key_env}
        options |= {"json_schema": args.json_schema, "max_tokens": args.max_new_tokens}
        return make_judge("openai", concurrency=args.concurrency, **options)
    return make_judge("hf", max_new_tokens=args.max_new_tokens or 512, **options)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from rpo_bench.judge import PROMPTS
    from rpo_bench.paths import sysbench_file

    data = Path(args.data) if args.data else sysbench_file("sysbench_eval.jsonl")
    # A replayed label has no prompt; every other judge is calibrated once per prompt.
    prompts = ["replay"] if args.judge == "replay" else args.prompts.split(",")
    unknown = [p for p in prompts if p != "replay" and p not in PROMPTS]
    if unknown:
        raise ValueError(
            f"--prompts: unknown judge prompt {unknown[0]!r}; known: {', '.join(PROMPTS)}"
        )
    results = {}
    for prompt in prompts:  # every judge answers before the first turn is judged
        _judge(args, prompt).check()
    for prompt in prompts:
        rows = f"{args.rows}.{prompt}.jsonl" if args.rows and len(prompts) > 1 else args.rows
        try:
            results[prompt] = calibrate(
                _judge(args, prompt),
                args.labels,
                data,
                limit=args.limit,
                rows_path=rows,
                sample=args.sample,
                seed=args.seed,
                max_turns=args.max_turns,
            )
        except NothingJudged as err:  # it ran, and judged nothing: no figure to print
            print(f"rpo-bench: error: {err}", file=sys.stderr)
            sys.exit(1)
    result = results[prompts[0]] if len(prompts) == 1 else {"by_prompt": results}
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return result


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register `judge-calibrate` on an argparse subparsers object."""
    from rpo_bench.judge.openai import DEFAULT_BASE_URL

    p = subparsers.add_parser(
        "judge-calibrate",
        help="measure a SysBench judge's agreement with the released GPT-4o verdicts",
    )
    p.add_argument("--judge", choices=["openai", "hf", "replay"], default="openai")
    p.add_argument(
        "--labels", required=True, help="GPT-4o verdicts: a sysbench/judge_labels/<model>.jsonl"
    )
    p.add_argument(
        "--data",
        default=None,
        help="SysBench sessions (default: $RPO_BENCH_DATA/sysbench/sysbench_eval.jsonl)",
    )
    p.add_argument("--limit", type=int, default=None, help="first N rows of the labels file")
    p.add_argument(
        "--sample", type=int, default=None, help="a seeded sample of N rows (after --limit)"
    )
    p.add_argument("--seed", type=int, default=0, help="the --sample seed")
    p.add_argument(
        "--max-turns",
        type=int,
        default=None,
        help="judge only the first N of those rows (in file order, as a run judges them)",
    )
    p.add_argument(
        "--model", default=None, help="judge model (openai: gpt-4o-2024-05-13, hf: smollm2-135m)"
    )
    p.add_argument("--base-url", default=DEFAULT_BASE_URL, help="OpenAI-compatible endpoint")
    p.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        help="NAME of the environment variable holding the API key",
    )
    p.add_argument(
        "--cache",
        default=None,
        help="SQLite judgement cache (default: <rpo_bench cache>/judge/judgements.sqlite; "
        "'none' disables it)",
    )
    p.add_argument(
        "--rejudge-errors",
        action="store_true",
        help="ask the judge again about turns whose stored answers never parsed (by default "
        "they stay unjudged without a call; stored answers are always re-read first)",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="openai: parallel requests (default 8; a local server: its slot count)",
    )
    p.add_argument(
        "--json-schema",
        action="store_true",
        help="openai, prompt rpo_bench: constrain answers to the answer's JSON schema "
        "(llama.cpp, vLLM)",
    )
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="the answer's token budget (hf: default 512; openai: the server's, and a longer "
        "answer fails as cut off)",
    )
    p.add_argument(
        "--replay-labels", default=None, help="replay: verdicts to replay (default: --labels)"
    )
    p.add_argument(
        "--prompts",
        default="official,rpo_bench",
        help="judge prompts to calibrate, comma-separated (official: SysBench's own; "
        "rpo_bench: the project's); with several, the result has one entry per prompt",
    )
    p.add_argument(
        "--rows",
        default=None,
        help="also write the judged rows here (JSONL; with several prompts, <rows>.<prompt>.jsonl)",
    )
    p.set_defaults(func=_run)
    return p
