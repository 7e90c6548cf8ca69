"""`python -m rpo_bench.ablate --config ablations/<name>.yaml [--out reports/<name>] [--resume]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rpo_bench.ablate import config as config_mod


def plan(cfg: config_mod.AblationConfig) -> str:
    from rpo_bench.pairs import KINDS

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
        f"  sampling: {len(g.model)} pass(es) of {cfg.data.n_conversations} conversations x "
        f"{cfg.data.turns} turns x n={cfg.sampling.n}",
        f"  judging: {len(g.model) * len(g.noise) * len(g.seed)} pass(es), judge {cfg.judge.kind}",
        f"  training: {len(cells)} runs; evaluation: {len(cells) + len(g.model)} models on "
        f"{', '.join(cfg.eval.tasks)}",
    ]
    for s in g.strategy:  # what each grid strategy trains on, and with which loss
        pairs = cfg.pair_strategy(s)
        source = "" if pairs == s else f" of {pairs}"
        loss = cfg.train_settings(s)["loss"]
        lines.append(f"  strategy {s}: {KINDS[pairs]} examples{source}, loss {loss}")
    if g.min_margin:
        lines.append(f"  min_margin (pairs): {', '.join(map(str, g.min_margin))}")
    if g.margin_mode:
        lines.append(f"  margin_mode (rpo loss only): {', '.join(g.margin_mode)}")
    lines += [f"  cell {c.name}" for c in cells]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m rpo_bench.ablate", description=__doc__)
    parser.add_argument("--config", required=True, help="ablations/<name>.yaml")
    parser.add_argument("--out", help="report folder (default reports/<name>)")
    parser.add_argument("--work", help="stage store (default runs/ablate/<name>)")
    parser.add_argument("--resume", action="store_true", help="continue interrupted stages")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the plan")
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
    args = parser.parse_args(argv)
    try:
        cfg = config_mod.load(args.config)
    except (ValueError, FileNotFoundError) as err:
        print(f"rpo_bench.ablate: error: {err}", file=sys.stderr)
        sys.exit(2)
    print(plan(cfg))
    if args.dry_run:
        return
    from rpo_bench.ablate.console import Progress, log, log_to_file
    from rpo_bench.ablate.runner import Runner, write_report
    from rpo_bench.ablate.store import StageBusy

    out = Path(args.out or f"reports/{cfg.name}")
    work = Path(args.work or f"runs/ablate/{cfg.name}")
    log_path = log_to_file(work)
    log.info("python -m rpo_bench.ablate %s\n%s", " ".join(argv or sys.argv[1:]), plan(cfg))
    try:
        with Progress(len(cfg.cells())) as progress:
            runner = Runner(cfg, work, args.resume, progress, wait=not args.no_wait,
                            reuse_stale=args.reuse_stale)  # fmt: skip
            results = runner.run()
    except StageBusy as err:
        print(f"rpo_bench.ablate: {err}", file=sys.stderr)
        sys.exit(2)
    report = write_report(results, out)
    log.info("report: %s", report)
    print(f"report: {report}\nlog: {log_path}")


if __name__ == "__main__":
    main()
