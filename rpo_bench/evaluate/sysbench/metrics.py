"""SysBench's metrics from judged turns: CSR, ISR, SSR, their splits, R1..R5, CSR per
constraint type, bootstrap intervals, as the paper and reference code define them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rpo_bench.evaluate.sysbench.data import (
    ALIGNMENTS,
    N_ROUNDS,
    TYPE_ALIASES,
    Label,
    Session,
    check_coverage,
)


def _percent(num: float, den: float, ndigits: int | None) -> float | None:
    if den == 0:
        return None
    value = 100.0 * num / den
    return round(value, ndigits) if ndigits is not None else value


def _bootstrap_ci(
    per_session: dict[str, tuple[np.ndarray, np.ndarray]],
    n_boot: int,
    seed: int,
    ndigits: int | None,
) -> dict[str, list[float] | None]:
    """95% percentile intervals of num.sum()/den.sum(), resampling whole sessions.

    Sessions, not turns or constraints, are resampled because turns within a session share a
    system message and history and are not independent.
    """
    n = len(next(iter(per_session.values()))[0])
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    out: dict[str, list[float] | None] = {}
    for name, (num, den) in per_session.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            stats = 100.0 * num[idx].sum(axis=1) / den[idx].sum(axis=1)
        if np.isnan(stats).all():
            out[name] = None
            continue
        lo, hi = (float(x) for x in np.nanpercentile(stats, [2.5, 97.5]))
        out[name] = [round(lo, ndigits), round(hi, ndigits)] if ndigits is not None else [lo, hi]
    return out


UNJUDGED = ("session", "turn")  # what a turn the judge never parsed takes out of the scores
SPLITS = ("dependent", "parallel")  # rounds_related true / false


def score(
    labels: Sequence[Label],
    sessions: Sequence[Session],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    ndigits: int | None = 2,
    unjudged: str = "session",
) -> dict[str, Any]:
    """SysBench metrics in percent (JSON-ready), as the paper and reference code define them.

    - csr: constraints judged true / all constraints, micro over every constraint. A null
      verdict (judge said e.g. "not applicable") is NOT satisfied.
    - isr: share of turns with all_pass = no constraint judged false (null does NOT fail a
      turn); isr_align / isr_misalign by the turn's alignment, isr_dependent / isr_parallel
      by the session's rounds_related, and isr_<split>_<alignment> for the four cells.
    - ssr: per session, consecutive passing turns from round 1 up to the first failure,
      divided by 5, averaged over sessions; ssr_dependent / ssr_parallel split by
      rounds_related. r1..r5: share of sessions whose first k turns all pass, also as
      r<k>_dependent / r<k>_parallel. round_pass: the pass rate of each round's turns.
    - csr_by_type: CSR per constraint type, keyed by the Chinese type name
      (`type_aliases` gives the English names).
    - ci95: 95% bootstrap intervals (sessions resampled, `n_boot` times, seeded) of csr/isr/ssr.

    A turn whose label has `judge_error: true` was never judged. With `unjudged="session"`
    (SysBench's rule: such a session must be judged again) its whole session is left out of
    every metric; with `unjudged="turn"` only the turn is left out of CSR and ISR and it ends
    the session's streak for SSR and R1..R5 (a streak is confirmed turn by turn). Either
    way `unjudged_sessions` and `unjudged_turns` list them, and `n_sessions`, `n_turns`,
    `n_constraints` count what was scored. `ndigits=None` keeps full precision.
    """
    if unjudged not in UNJUDGED:
        raise ValueError(f"unjudged must be one of {UNJUDGED}, got {unjudged!r}")
    keyed = check_coverage(labels, sessions)
    unjudged_turns = [
        [s.system_id, t.round_index]
        for s in sessions
        for t in s.turns
        if keyed[(s.system_id, t.round_index)].judge_error
    ]
    dropped = {sid for sid, _ in unjudged_turns} if unjudged == "session" else set()
    scored = [s for s in sessions if s.system_id not in dropped]
    n = len(scored)
    csr_num, csr_den = np.zeros(n), np.zeros(n)
    isr_num, isr_den = np.zeros(n), np.zeros(n)
    streaks = np.zeros(n)
    cells = {(sp, a): [0, 0] for sp in SPLITS for a in ALIGNMENTS}  # [passed, judged]
    rounds = {k: [0, 0] for k in range(1, N_ROUNDS + 1)}
    by_type: dict[str, list[int]] = {}  # type -> [satisfied, total]
    for i, session in enumerate(scored):
        split = SPLITS[0] if session.rounds_related else SPLITS[1]
        streak_alive = True
        for turn in session.turns:
            label = keyed[(session.system_id, turn.round_index)]
            if label.judge_error:
                streak_alive = False
                continue
            verdicts = [label.verdicts[str(c.id)] for c in turn.criteria]
            passed = all(v is not False for v in verdicts)
            for c, v in zip(turn.criteria, verdicts, strict=True):
                counts = by_type.setdefault(c.type, [0, 0])
                counts[0] += v is True
                counts[1] += 1
            csr_num[i] += sum(v is True for v in verdicts)
            csr_den[i] += len(verdicts)
            isr_num[i] += passed
            isr_den[i] += 1
            for tally in (cells[(split, turn.alignment)], rounds[turn.round_index]):
                tally[0] += passed
                tally[1] += 1
            streak_alive = streak_alive and passed
            streaks[i] += streak_alive
    ssr = streaks / N_ROUNDS
    related = np.array([s.rounds_related for s in scored], dtype=bool)
    ordered_types = [t for t in TYPE_ALIASES if t in by_type] + sorted(
        set(by_type) - set(TYPE_ALIASES)
    )

    def pooled(keys: list[tuple[str, str]]) -> float | None:
        return _percent(sum(cells[k][0] for k in keys), sum(cells[k][1] for k in keys), ndigits)

    masks = {"dependent": related, "parallel": ~related}
    result: dict[str, Any] = {
        "model": labels[0].model,
        "csr": _percent(csr_num.sum(), csr_den.sum(), ndigits),
        "isr": _percent(isr_num.sum(), isr_den.sum(), ndigits),
        "ssr": _percent(ssr.sum(), n, ndigits),
        **{f"isr_{a}": pooled([(sp, a) for sp in SPLITS]) for a in ALIGNMENTS},
        **{f"isr_{sp}": pooled([(sp, a) for a in ALIGNMENTS]) for sp in SPLITS},
        **{f"isr_{sp}_{a}": pooled([(sp, a)]) for sp in SPLITS for a in ALIGNMENTS},
        **{f"ssr_{sp}": _percent(ssr[m].sum(), m.sum(), ndigits) for sp, m in masks.items()},
        **{f"r{k}": _percent((streaks >= k).sum(), n, ndigits) for k in range(1, N_ROUNDS + 1)},
        **{
            f"r{k}_{sp}": _percent((streaks[m] >= k).sum(), m.sum(), ndigits)
            for sp, m in masks.items()
            for k in range(1, N_ROUNDS + 1)
        },
        "round_pass": {str(k): _percent(*rounds[k], ndigits) for k in rounds},
        "csr_by_type": {t: _percent(*by_type[t], ndigits) for t in ordered_types},
        "type_aliases": {t: TYPE_ALIASES.get(t, t) for t in ordered_types},
        "ci95": _bootstrap_ci(
            {"csr": (csr_num, csr_den), "isr": (isr_num, isr_den), "ssr": (ssr, np.ones(n))},
            n_boot,
            seed,
            ndigits,
        )
        if n
        else {"csr": None, "isr": None, "ssr": None},
        "n_sessions": n,
        "n_turns": int(isr_den.sum()),
        "n_constraints": int(csr_den.sum()),
        "unjudged": unjudged,
        "judge_errors": len(unjudged_turns),
        "unjudged_sessions": sorted({sid for sid, _ in unjudged_turns}),
        "unjudged_turns": unjudged_turns,
    }
    return result
