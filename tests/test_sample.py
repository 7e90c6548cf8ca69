"""The sampling stage on the real embedded model at tiny sizes: rows follow the contract,
verdicts re-check, the history holds the best sample, a fixed seed repeats, noise keeps
the true verdicts, and the pairs stage's reader accepts the rows."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from rpo_bench.constraints import from_dict
from rpo_bench.data import verifiable
from rpo_bench.data.prompt import render
from rpo_bench.data.sample import add_parser, kept_index, sample
from rpo_bench.jsonl import read_jsonl, write_jsonl
from rpo_bench.judge.noise import add_noise
from rpo_bench.pairs.turn import parse_turn, read_samples
from rpo_bench.rollout.hf import HFBackend
from rpo_bench.rollout.settings import GenerationSettings

SETTINGS = GenerationSettings(temperature=1.0, max_new_tokens=24, seed=0, n=3)


@pytest.fixture(scope="module")
def backend(prepared_model_dir):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    from rpo_bench import models

    loaded = models.load(str(prepared_model_dir))
    yield HFBackend(loaded.model, loaded.tokenizer, batch_size=8)
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def convs():
    return verifiable.build(2, turns=2, k=2, seed=4)


@pytest.fixture(scope="module")
def rows(backend, convs):
    return sample(convs, backend, SETTINGS)


def test_rows_follow_the_contract(rows, convs, tmp_path):
    assert [r["id"] for r in rows] == [f"{c.id}/t{t}" for t in (1, 2) for c in convs]
    path = tmp_path / "samples.jsonl"
    write_jsonl(path, rows)
    assert read_jsonl(path) == rows
    turns = read_samples(path)  # the pairs stage reads and validates the contract
    assert [t.id for t in turns] == [r["id"] for r in rows]
    for row in rows:
        assert "system" not in row  # no system message was set
        assert row["noise"] == 0.0 and len(row["responses"]) == 3
        assert row["settings"]["n"] == 3 and row["settings"]["max_new_tokens"] == 24
        assert all(set(r) == {"text", "verdicts"} for r in row["responses"])


def test_verdicts_recheck_and_prompts_render_from_the_row(rows, convs):
    by_id = {c.id: c for c in convs}
    for row in rows:
        conv = by_id[row["id"].split("/")[0]]
        turn = conv.turns[row["turn"] - 1]
        assert row["task"] == turn.task
        assert row["constraints"] == [c.to_dict() for c in turn.constraints]
        constraints = [from_dict(c) for c in row["constraints"]]
        for response in row["responses"]:
            assert response["verdicts"] == [c.check(response["text"]) for c in constraints]


def test_history_holds_the_best_sample_as_shown_to_the_model(rows, convs):
    first = {r["id"].split("/")[0]: r for r in rows if r["turn"] == 1}
    for row in (r for r in rows if r["turn"] == 2):
        prev = first[row["id"].split("/")[0]]
        scores = [sum(r["verdicts"]) for r in prev["responses"]]
        best = scores.index(max(scores))
        assert prev["kept"] == best == kept_index([r["verdicts"] for r in prev["responses"]])
        shown = render(prev["task"], [from_dict(c) for c in prev["constraints"]], "user")
        assert row["history"] == [
            shown[-1],
            {"role": "assistant", "content": prev["responses"][best]["text"]},
        ]
        assert "Your answer must follow these instructions" in row["history"][0]["content"]


def test_kept_index_by_hand():
    assert kept_index([[True, False], [True, True], [False, True], [True, True]]) == 1
    assert kept_index([[False], [False]]) == 0
    assert kept_index([[False], [True]], "first") == 0
    with pytest.raises(ValueError, match="history choice"):
        kept_index([[True]], "last")


def test_same_seed_same_rows(backend, convs, rows):
    assert sample(convs, backend, SETTINGS) == rows


def test_noise_keeps_true_verdicts_and_system_slot(backend):
    convs = verifiable.build(1, turns=2, k=2, seed=4, constraint_slot="system", system="Be kind.")
    short = GenerationSettings(temperature=1.0, max_new_tokens=12, seed=0, n=3)
    noisy = sample(convs, backend, short, noise=0.5, noise_seed=9, history="first")
    assert len(noisy) == 2
    for row in noisy:
        assert parse_turn(row, "row").true_verdicts is not None
        assert row["system"] == "Be kind." and row["noise"] == 0.5
        constraints = [from_dict(c) for c in row["constraints"]]
        for i, r in enumerate(row["responses"]):
            assert r["true_verdicts"] == [c.check(r["text"]) for c in constraints]
            assert r["verdicts"] == add_noise(r["true_verdicts"], 0.5, 9, row["id"], i)
        if row["turn"] == 2:
            prev = next(p for p in noisy if p["id"] == row["id"].replace("/t2", "/t1"))
            # system slot: earlier user messages are the bare tasks; "first" keeps sample 0
            assert row["history"] == [
                {"role": "user", "content": prev["task"]},
                {"role": "assistant", "content": prev["responses"][0]["text"]},
            ]
    flipped = sum(
        a != b
        for row in noisy
        for r in row["responses"]
        for a, b in zip(r["verdicts"], r["true_verdicts"], strict=True)
    )
    assert flipped > 0


def test_cli(prepared_model_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    out = tmp_path / "samples.jsonl"
    args = parser.parse_args(
        [
            "samples",
            "--model",
            str(prepared_model_dir),
            "--n-conversations",
            "1",
            "--turns",
            "1",
            "--n",
            "2",
            "--max-new-tokens",
            "8",
            "--noise",
            "0.2",
            "--out",
            str(out),
        ]
    )
    args.func(args)
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 1 and summary["responses"] == 2
    read_samples(out)
    (row,) = read_jsonl(out)
    assert row["noise"] == 0.2 and all("true_verdicts" in r for r in row["responses"])
