"""Statistics written with every pair set: yield, margins and, given true verdicts, noise."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from rpo_bench.pairs.pair import Pair, merged
from rpo_bench.pairs.turn import JudgedTurn
from rpo_bench.pairs.unpaired import Example


def true_failures(pair: Pair | Example, response: int, *, rejected: bool = False) -> int | None:
    """How many constraints of the pair's prompt `response` fails under the TRUE verdicts
    (a reversed constraint fails exactly when the original passes); None without them.
    `rejected`: the prompt of the rejected side (its own, for an input-side pair)."""
    truth = pair.turn.true_verdicts
    if truth is None:
        return None
    reversed_, dropped = pair.reversed, pair.dropped
    if rejected and isinstance(pair, Pair) and pair.rejected_prompt is not None:
        reversed_, dropped = (), pair.rejected_dropped
    return sum(
        1 for k, ok in enumerate(truth[response]) if k not in dropped and ok == (k in reversed_)
    )


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _common(
    turns: Sequence[JudgedTurn], examples: Sequence[Pair | Example], kind: str, judged: int, noise
) -> dict[str, Any]:
    """The fields every kind of example set reports, so strategies compare side by side."""
    responses = sum(len(t.responses) for t in turns)
    used = len({e.turn.id for e in examples})
    return {
        "kind": kind,
        "turns": len(turns),
        "responses": responses,
        "distinct_responses": sum(len(merged(t.verdicts)) for t in turns),
        "examples": len(examples),
        "examples_per_response": _share(len(examples), responses),
        "turns_used": used,
        "share_turns_used": _share(used, len(turns)),
        "examples_with_true_verdicts": judged,
        "example_noise": noise,
    }


def pair_stats(turns: Sequence[JudgedTurn], pairs: Sequence[Pair]) -> dict[str, Any]:
    """Yield and margin statistics of `pairs` built from `turns`.

    pair_noise: share of pairs (among those whose turn has true verdicts) in which the
    chosen response, under the TRUE verdicts, fails a constraint of its own prompt.
    pair_inversion: share in which it fails at least as many of them as the rejected one,
    so the pair teaches no true preference at all. Both null without true verdicts.
    """
    responses = sum(len(t.responses) for t in turns)
    margins = Counter(p.margin for p in pairs)
    judged = [
        (true_failures(p, p.chosen), true_failures(p, p.rejected, rejected=True))
        for p in pairs
        if p.turn.true_verdicts is not None
    ]
    with_pair = len({p.turn.id for p in pairs})
    noise = _share(sum(1 for c, _ in judged if c > 0), len(judged))
    # a critic pool's teacher replies: pairs with one on either side, apart (only then)
    off = sum(1 for p in pairs if {p.chosen, p.rejected} & set(p.turn.off_policy))
    pool = {"pairs_off_policy": off, "pairs_on_policy": len(pairs) - off} if any(
        t.off_policy for t in turns) else {}  # fmt: skip
    return {
        **_common(turns, pairs, "preference", len(judged), noise),
        "pairs": len(pairs),
        "pairs_per_response": _share(len(pairs), responses),
        "turns_with_pair": with_pair,
        "share_turns_with_pair": _share(with_pair, len(turns)),
        "margin_histogram": {str(m): margins[m] for m in sorted(margins)},
        "mean_margin": _share(sum(p.margin for p in pairs), len(pairs)),
        "reversed_per_pair": _share(sum(len(p.reversed) for p in pairs), len(pairs)),
        "dropped_per_pair": _share(sum(len(p.dropped) for p in pairs), len(pairs)),
        "pairs_with_true_verdicts": len(judged),
        "pair_noise": noise,
        "pair_inversion": _share(sum(1 for c, r in judged if c >= r), len(judged)),
        **pool,
    }


def example_stats(
    turns: Sequence[JudgedTurn], examples: Sequence[Example], kind: str
) -> dict[str, Any]:
    """Yield statistics of SFT or KTO examples built from `turns`.

    example_noise, under the TRUE verdicts: SFT, the share of examples whose response fails
    a constraint of its own prompt (as `pair_noise` counts a chosen response); KTO, the
    share whose label is wrong (desirable but failing one, undesirable but passing all).
    """
    judged = [
        (e, true_failures(e, e.response)) for e in examples if e.turn.true_verdicts is not None
    ]
    wrong = sum(1 for e, failed in judged if (failed > 0) != (e.desirable is False))
    stats = {
        **_common(turns, examples, kind, len(judged), _share(wrong, len(judged))),
        "reversed_per_example": _share(sum(len(e.reversed) for e in examples), len(examples)),
        "dropped_per_example": _share(sum(len(e.dropped) for e in examples), len(examples)),
    }
    if kind == "kto":
        desirable = sum(1 for e in examples if e.desirable)
        stats |= {"desirable": desirable, "share_desirable": _share(desirable, len(examples))}
    return stats
