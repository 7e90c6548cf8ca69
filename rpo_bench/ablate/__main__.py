"""`python -m rpo_bench.ablate --config ablations/<name>.yaml [--out reports/<name>] [--resume]`."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from rpo_bench.ablate import config as config_mod
from rpo_bench.ablate import jobs as jobs_mod


def plan(cfg: config_mod.AblationConfig) -> str:
    from rpo_bench.pairs import kind_of

    cells = cfg.cells()
    g = cfg.grid
    axes = "".join(
        f" x {len(values)} {label}"
        for values, label in ((g.min_margin, "min margins"), (g.margin_mode, "margin modes"))
        if values
    )  # named only where the grid has them, so an old grid's plan reads as before
    lines = [
        f"ablation {cfg.name}: {len(cells)} cells = {len(g.model)} models x "
        f"{len(g.strategy)} strategies x {len(g.noise)} noise levels x {len(g.seed)} seeds" + axes,
        f"  sampling: {len(g.model) * (len(g.seed) if cfg.sampling.per_seed else 1)} pass(es) "
        f"of {cfg.data.n_conversations} conversations x "
        + (
            f"{cfg.data.turns} turns"
            if cfg.data.kind == "verifiable"
            else "the turns of each system prompt "
            + (f"in {cfg.data.file}" if cfg.data.file else f"written by {cfg.data.generate.model}")
            + " (free-text constraints)"
        )
        + f" x n={cfg.sampling.n}, history {cfg.sampling.history}"
        + (
            f" (teacher {cfg.sampling.teacher.model}, pool {cfg.sampling.pool})"
            if cfg.sampling.teacher
            else ""
        ),
        f"  judging: {len(g.model) * len(g.noise) * len(g.seed)} pass(es), judge {cfg.judge.kind}"
        + (
            f", triggered constraints selected by {cfg.judge.model}"
            if cfg.judge.triggered == "llm"
            else ""
        )
        + (f"; reverser {cfg.pairs.reverser.model}" if cfg.pairs.reverser else ""),
        f"  training: {len(cells)} runs; evaluation: {len(cells) + len(cfg.base_models())} "
        f"models on {', '.join(cfg.eval.tasks)}"
        + (f" ({', '.join(g.base_only)}: untrained only)" if g.base_only else ""),
    ]
    for s in g.strategy:  # what each grid strategy trains on, and with which loss
        pairs = cfg.pair_strategy(s)
        source = "" if pairs == s else f" of {pairs}"
        loss = cfg.train_settings(s)["loss"]
        lines.append(f"  strategy {s}: {kind_of(pairs)} examples{source}, loss {loss}")
    if g.min_margin:
        lines.append(f"  min_margin (pairs): {', '.join(map(str, g.min_margin))}")
    if g.margin_mode:
        lines.append(f"  margin_mode (rpo loss only): {', '.join(g.margin_mode)}")
    lines += [f"  cell {c.name}" for c in cells]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rpo_bench.ablate", description=__doc__)
    parser.add_argument("--config", required=True, help="ablations/<name>.yaml")
    parser.add_argument(
        "--out",
        help="report folder (default runs/reports/<name>; --out reports/<name> rewrites the "
        "committed report)",
    )
    parser.add_argument("--work", help="stage store (default runs/ablate/<name>)")
    parser.add_argument("--resume", action="store_true", help="continue interrupted stages")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="make every check a run makes before its first stage (report folder, models, "
        "endpoints), print the plan, the folders and a time estimate, and stop",
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="stop, instead of waiting, when another run is computing a stage this one needs",
    )
    parser.add_argument(
        "--reuse-stale",
        action="store_true",
        help="reuse stages computed by other code (listed in the report), instead of "
        "computing them again",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="compute the grid's cells in N parallel workers over the locked stage store, "
        "then write the report (same numbers as one process)",
    )
    parser.add_argument(
        "--executor",
        choices=jobs_mod.EXECUTORS,
        default="local",
        help="where --jobs workers run: local subprocesses, or submitit (the `cluster` extra): "
        "slurm, or submitit's local mode",
    )
    parser.add_argument(
        "--executor-params",
        default="{}",
        help='JSON of submitit parameters, e.g. \'{"slurm_partition": "gpu", '
        '"gpus_per_node": 1, "timeout_min": 600}\'',
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # "i/N": one of --jobs N workers
    raw = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(raw)
    try:
        cfg = config_mod.load(args.config)
    except (ValueError, FileNotFoundError) as err:
        print(f"rpo_bench.ablate: error: {err}", file=sys.stderr)
        sys.exit(2)
    try:
        params = json.loads(args.executor_params)
        if not isinstance(params, dict):
            raise ValueError("expected a JSON object")
    except ValueError as err:
        print(f"rpo_bench.ablate: error: --executor-params: {err}", file=sys.stderr)
        sys.exit(2)
    if args.jobs < 1:
        print(f"rpo_bench.ablate: error: --jobs: {args.jobs} is not >= 1", file=sys.stderr)
        sys.exit(2)
    if args.worker:
        return _worker(cfg, args)
    print(plan(cfg))
    out = Path(args.out or default_out(cfg.name))
    work = Path(args.work or f"runs/ablate/{cfg.name}")
    problems = preflight(cfg, args, out, work)
    if problems:  # before any stage runs, not hours later
        print("rpo_bench.ablate: error: this run cannot start:", file=sys.stderr)
        print("\n".join(f"  {p}" for p in problems), file=sys.stderr)
        sys.exit(2)
    if args.dry_run:
        print("dry run: every check a run makes before its first stage passed")
        return
    from rpo_bench.ablate.console import Progress, log, log_to_file
    from rpo_bench.ablate.runner import Runner, write_report
    from rpo_bench.ablate.store import StageBusy
    from rpo_bench.judge import NothingJudged

    log_path = log_to_file(work)
    log.info("python -m rpo_bench.ablate %s\n%s", " ".join(raw), plan(cfg))
    computed: list[str] = []
    if args.jobs > 1:
        print(f"{args.jobs} workers ({args.executor}); their output: {work / 'jobs'}/<i>.out")
        try:
            computed, stale = jobs_mod.run_workers(worker_args(raw), work, args.jobs,
                                                   args.executor, params)  # fmt: skip
        except RuntimeError as err:
            log.error("%s", err)
            print(f"rpo_bench.ablate: {err}", file=sys.stderr)
            sys.exit(1)
        log.info("workers done: %d stages computed", len(computed))
    try:
        with Progress(len(cfg.cells())) as progress:
            runner = Runner(cfg, work, args.resume, progress, wait=not args.no_wait,
                            reuse_stale=args.reuse_stale)  # fmt: skip
            runner.store.computed += computed  # the workers' stages, then any this run adds
            if args.jobs > 1:
                runner.store.stale += stale
            results = runner.run()
    except StageBusy as err:
        print(f"rpo_bench.ablate: {err}", file=sys.stderr)
        sys.exit(2)
    except (NothingJudged, ConnectionError) as err:  # an endpoint failed for good mid-run
        log.error("%s", err)
        print(f"rpo_bench.ablate: error: {err}\nlog: {log_path}", file=sys.stderr)
        sys.exit(1)
    report = write_report(results, out)
    log.info("report: %s", report)
    print(f"report: {report}\nlog: {log_path}")


def default_out(name: str) -> Path:
    """Where a run's report goes unless --out says otherwise: outside `reports/`, so a run
    never replaces a committed reference report without being told to."""
    return Path("runs/reports") / name


def preflight(cfg: config_mod.AblationConfig, args: argparse.Namespace, out: Path,
              work: Path) -> list[str]:  # fmt: skip
    """Check what the run would do before its first stage and print it: the folders, the
    stages still to compute, the time they should take; the problems that stop it."""
    from rpo_bench import hub
    from rpo_bench.ablate import preflight as checks
    from rpo_bench.ablate.report import check_folder
    from rpo_bench.ablate.runner import Runner

    problems = []
    try:
        check_folder(out)
    except ValueError as err:
        problems.append(f"--out {err}")
    runner = Runner(cfg, work, args.resume, reuse_stale=args.reuse_stale)
    stages = runner.plan()
    counts = Counter(folder.parent.name for folder in stages)
    print(f"work: {work}\nreport: {out}")
    todo = ", ".join(f"{kind} {n}" for kind, n in counts.items()) or "none"
    found = len(runner.store.seen) - len(stages)
    print(f"stages: {len(stages)} to compute ({todo}), {found} found in the store")
    if stages:
        seconds, unmeasured = checks.estimate(runner.store, stages)
        if len(unmeasured) < len(counts):
            print(f"estimate: {_duration(seconds)} at this store's median stage times"
                  + (f", plus {', '.join(unmeasured)} (not measured here yet)"
                     if unmeasured else ""))  # fmt: skip
        else:
            print("estimate: none yet (this store has no measured stage of these kinds)")
    return problems + checks.check(cfg, stages, hub.reachable)


def _duration(seconds: float) -> str:
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"about {hours} h {minutes} min" if hours else f"about {minutes} min"


def worker_args(raw: list[str]) -> list[str]:
    """This run's arguments for its workers: without the ones that concern the parent (the
    workers always wait for each other's stages)."""
    drop_value = {"--jobs", "--executor", "--executor-params", "--out"}
    out, skip = [], False
    for arg in raw:
        name = arg.split("=", 1)[0]
        if skip:
            skip = False
        elif name in drop_value:
            skip = "=" not in arg
        elif arg not in ("--no-wait", "--dry-run"):
            out.append(arg)
    return out


def _worker(cfg: config_mod.AblationConfig, args: argparse.Namespace) -> None:
    """One of --jobs N workers: compute its share of the grid, record what it computed."""
    from rpo_bench.ablate.console import JobLines, log_to_file
    from rpo_bench.ablate.runner import Runner

    index, jobs = (int(x) for x in args.worker.split("/"))
    work = Path(args.work or f"runs/ablate/{cfg.name}")
    log_to_file(work)
    runner = Runner(cfg, work, args.resume, JobLines(f"[job {index}/{jobs}]"),
                    reuse_stale=args.reuse_stale)  # fmt: skip
    runner.compute(jobs_mod.share(runner.tasks(), index, jobs))
    jobs_mod.write_done(work, index, runner.store.computed, runner.store.stale)


if __name__ == "__main__":
    main()
