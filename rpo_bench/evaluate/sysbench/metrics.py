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


def score(
    labels: Sequence[Label],
    sessions: Sequence[Session],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    ndigits: int | None = 2,
) -> dict[str, Any]:
    """SysBench metrics in percent (JSON-ready), as the paper and reference code define them.

    - csr: constraints judged true / all constraints, micro over every constraint. A null
      verdict (judge said e.g. "not applicable") is NOT satisfied.
    - isr: share of turns with all_pass = no constraint judged false (null does NOT fail a
      turn); isr_align / isr_misalign split by the turn's alignment.
    - ssr: per session, consecutive passing turns from round 1 up to the first failure,
      divided by 5, averaged over sessions; ssr_dependent / ssr_parallel split by
      rounds_related. r1..r5: share of sessions whose first k turns all pass.
    - csr_by_type: CSR per constraint type, keyed by the Chinese type name
      (`type_aliases` gives the English names).
    - ci95: 95% bootstrap intervals (sessions resampled, `n_boot` times, seeded) of csr/isr/ssr.

    Turns whose label has `judge_error: true` are counted in `judge_errors` and left out of
    the CSR and ISR numerators and denominators (an unjudged turn is neither kept nor failed),
    so `n_turns` / `n_constraints` are the judged ones. For SSR and R1..R5 such a turn ends the
    session's streak: a streak must be confirmed turn by turn. `ndigits=None` keeps full
    precision.
    """
    keyed = check_coverage(labels, sessions)
    n = len(sessions)
    csr_num, csr_den = np.zeros(n), np.zeros(n)
    isr_num, isr_den = np.zeros(n), np.zeros(n)
    streaks = np.zeros(n)
    by_alignment = {a: [0, 0] for a in ALIGNMENTS}  # [passed, judged]
    by_type: dict[str, list[int]] = {}  # type -> [satisfied, total]
    judge_errors = 0
    for i, session in enumerate(sessions):
        streak_alive = True
        for turn in session.turns:
            label = keyed[(session.system_id, turn.round_index)]
            if label.judge_error:
                judge_errors += 1
                streak_alive = False
                continue
            passed = all(label.verdicts[str(c.id)] is not False for c in turn.criteria)
            for c in turn.criteria:
                counts = by_type.setdefault(c.type, [0, 0])
                counts[0] += label.verdicts[str(c.id)] is True
                counts[1] += 1
            csr_num[i] += sum(label.verdicts[str(c.id)] is True for c in turn.criteria)
            csr_den[i] += len(turn.criteria)
            isr_num[i] += passed
            isr_den[i] += 1
            by_alignment[turn.alignment][0] += passed
            by_alignment[turn.alignment][1] += 1
            streak_alive = streak_alive and passed
            streaks[i] += streak_alive
    ssr = streaks / N_ROUNDS
    related = np.array([s.rounds_related for s in sessions])
    ordered_types = [t for t in TYPE_ALIASES if t in by_type] + sorted(
        set(by_type) - set(TYPE_ALIASES)
    )
    ones = np.ones(n)
    result: dict[str, Any] = {
        "model": labels[0].model,
        "csr": _percent(csr_num.sum(), csr_den.sum(), ndigits),
        "isr": _percent(isr_num.sum(), isr_den.sum(), ndigits),
        "ssr": _percent(ssr.sum(), n, ndigits),
        "isr_align": _percent(*by_alignment["align"], ndigits),
        "isr_misalign": _percent(*by_alignment["misalign"], ndigits),
        "ssr_dependent": _percent(ssr[related].sum(), related.sum(), ndigits),
        "ssr_parallel": _percent(ssr[~related].sum(), (~related).sum(), ndigits),
        **{f"r{k}": _percent((streaks >= k).sum(), n, ndigits) for k in range(1, N_ROUNDS + 1)},
        "csr_by_type": {t: _percent(*by_type[t], ndigits) for t in ordered_types},
        "type_aliases": {t: TYPE_ALIASES.get(t, t) for t in ordered_types},
        "ci95": _bootstrap_ci(
            {"csr": (csr_num, csr_den), "isr": (isr_num, isr_den), "ssr": (ssr, ones)},
            n_boot,
            seed,
            ndigits,
        ),
        "n_sessions": n,
        "n_turns": int(isr_den.sum()),
        "n_constraints": int(csr_den.sum()),
        "judge_errors": judge_errors,
    }
    return result
