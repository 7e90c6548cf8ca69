"""Stage keys are built from exactly what each stage reads: change one config field and
exactly the stages that read it (and those downstream of them) get new keys.

The table below is the specification: every field of every config section has an entry,
so a new field must say which stages read it before this test passes."""

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from rpo_bench.ablate import config as config_mod
from rpo_bench.ablate.runner import Runner
from rpo_bench.ablate.store import key_of

from conftest import REPO

# The stages of one cell and of the base model's evaluation, and what each feeds.
# (`gold`: the gold set, sampled from the held-out conversations, read by training to measure
# learning; only where the config has one)
STAGES = ("conversations:train", "conversations:heldout", "samples", "judged", "pairs", "gold",
          "train", "eval:cell", "eval:base")  # fmt: skip
DOWNSTREAM = {
    "conversations:train": {"samples"},
    "conversations:heldout": {"gold", "eval:cell", "eval:base"},
    "gold": {"train"},
    "samples": {"judged"},
    "judged": {"pairs"},
    "pairs": {"train"},
    "train": {"eval:cell"},
}


def reach(*readers: str) -> set[str]:
    """The stages that read a field, and every stage downstream of them."""
    out, todo = set(), list(readers)
    while todo:
        stage = todo.pop()
        if stage not in out:
            out.add(stage)
            todo += DOWNSTREAM.get(stage, ())
    return out


CONVERSATIONS = reach("conversations:train", "conversations:heldout")
# the gold set is sampled and judged with the whole `sampling` and `judge` sections; `n` and
# `per_seed` reach its key although it samples `gold.n` once (a known over-reach, kept: a
# narrower key would orphan every stored gold set and the cells trained beside it)
SAMPLED = reach("samples", "gold")
SAMPLES, JUDGED, PAIRS, TRAIN = reach("samples"), reach("judged"), reach("pairs"), reach("train")
EVAL = reach("eval:cell", "eval:base")
NONE: set[str] = set()

FREETEXT_FILE = "ablations/data/freetext_smoke.jsonl"

# section.field -> (another value, the stages whose keys it changes) for the verifiable-data
# preset (ablations/cpu.yaml). The evaluation has its own engine: `sampling.engine` must not
# reach the base model's evaluation, and `eval.engine` must.
READERS: dict[str, tuple[Any, set[str]]] = {
    "data.n_conversations": (7, CONVERSATIONS),
    "data.heldout_conversations": (7, CONVERSATIONS),
    "data.turns": (3, CONVERSATIONS),
    "data.constraints_per_turn": (3, CONVERSATIONS),
    "data.constraint_slot": ("system", CONVERSATIONS),
    "data.seed": (5, CONVERSATIONS),
    "data.kind": ("freetext", CONVERSATIONS),
    "data.file": (FREETEXT_FILE, CONVERSATIONS),
    "data.generate": (config_mod.Generate(), CONVERSATIONS),
    "sampling.n": (2, SAMPLED),
    "sampling.temperature": (0.7, SAMPLED),
    "sampling.top_p": (0.9, SAMPLED),
    "sampling.max_new_tokens": (16, SAMPLED),
    "sampling.history": ("first", SAMPLED),
    "sampling.batch_size": (8, SAMPLED),
    "sampling.seed": (3, SAMPLED),
    "sampling.backend": ("vllm", SAMPLED),
    "sampling.engine": ("fast_float32", SAMPLED),
    "sampling.teacher": (config_mod.TeacherModel(), SAMPLED),
    "sampling.pool": ("critic", SAMPLED),
    "sampling.per_seed": (False, SAMPLED),
    "judge.kind": ("openai", SAMPLED),
    "judge.model": ("gpt-4o", SAMPLED),
    "judge.base_url": ("http://127.0.0.1:1/v1", SAMPLED),
    "judge.options": ({"timeout": 5}, SAMPLED),
    "judge.triggered": ("llm", JUDGED),
    "pairs.min_margin": (2, PAIRS),
    "pairs.max_pairs_per_turn": (3, PAIRS),
    "pairs.keep_unanimous": (False, PAIRS),
    "pairs.reverser": (config_mod.Reverser(), PAIRS),
    "train.lr": (1.0e-4, TRAIN),
    "train.epochs": (3, TRAIN),
    "train.processes": (2, TRAIN),
    "eval.tasks": (("heldout",), EVAL),
    "eval.limit": (4, EVAL),
    "eval.max_new_tokens": (8, EVAL),
    "eval.batch_size": (8, EVAL),
    "eval.bootstrap": (10, EVAL),
    "eval.metadata": ({"judge": "openai"}, EVAL),
    "eval.decoding": ("greedy", EVAL),
    "eval.backend": ("vllm", EVAL),
    "eval.engine": ("fast_float32", EVAL),
    # the report's settings and the grid's other strategies: no stage reads them
    "analysis.effect_of_interest": (2.0, NONE),
    "strategies": ({"other": config_mod.Variant(pairs="dpo_count")}, NONE),
    "description": ("another", NONE),
}

# Free-text data: the LLM judge also scores the held-out turns (but not through the
# triggered filter, which only restricts the training samples).
FREETEXT_READERS = {
    "judge.model": ("gpt-4o", SAMPLES | EVAL),
    "judge.options": ({"timeout": 5}, SAMPLES | EVAL),
    "judge.triggered": ("all", JUDGED),
    "pairs.reverser": (config_mod.Reverser(model="other"), PAIRS),
    "sampling.engine": ("fast_float32", SAMPLES),
    "eval.engine": ("fast_float32", EVAL),
}

SECTIONS = ("data", "sampling", "judge", "pairs", "eval")


def stage_keys(cfg: config_mod.AblationConfig, tmp_path: Path) -> dict[str, str]:
    """Every stage key of the config's first cell and of its base evaluation, computed
    without running a stage."""
    keys: dict[str, str] = {}
    done = tmp_path / "done"
    done.mkdir(exist_ok=True)
    (done / "eval.json").write_text("{}")
    runner = Runner(cfg, tmp_path)

    def stage(stage, label, inputs, work):
        name = stage.kind
        if name == "conversations":
            name += f":{inputs['split']}"
        elif name == "eval":
            name += ":base" if "base" in inputs["model"] else ":cell"
        keys[name] = key_of(stage.kind, inputs)
        return done

    runner._stage, runner.examples = stage, lambda folder: 1
    cell = cfg.cells()[0]
    runner.evaluate(runner.train(cell))
    runner.base(cell.model)
    assert set(keys) == set(STAGES) - ({"gold"} if cfg.gold is None else set())
    return keys


def changed(cfg: config_mod.AblationConfig, name: str, value: Any) -> config_mod.AblationConfig:
    if name == "train.lr" or name.startswith("train."):
        return dataclasses.replace(cfg, train={**cfg.train, name.split(".")[1]: value})
    if "." not in name:
        return dataclasses.replace(cfg, **{name: value})
    section, field = name.split(".")
    new = dataclasses.replace(getattr(cfg, section), **{field: value})
    return dataclasses.replace(cfg, **{section: new})


def test_every_section_field_says_which_stages_read_it():
    cfg = config_mod.AblationConfig(name="x")
    fields = {f"{s}.{f.name}" for s in SECTIONS for f in dataclasses.fields(getattr(cfg, s))}
    assert fields - set(READERS) == set(), "a config field without an entry in READERS"


PRESETS = [("cpu", READERS), ("smoke_freetext", FREETEXT_READERS)]


@pytest.mark.parametrize(("preset", "table"), PRESETS)
def test_a_field_changes_exactly_the_keys_of_the_stages_that_read_it(tmp_path, preset, table):
    cfg = config_mod.load(REPO / "ablations" / f"{preset}.yaml")
    before = stage_keys(cfg, tmp_path)
    wrong = {}
    for name, (value, readers) in table.items():
        after = stage_keys(changed(cfg, name, value), tmp_path)
        moved = {s for s in before if after[s] != before[s]}
        if moved != readers & set(before):
            wrong[name] = {"changed": sorted(moved), "expected": sorted(readers)}
    assert wrong == {}, json.dumps(wrong, indent=1)


def test_the_data_files_contents_are_in_the_conversations_key(tmp_path):
    cfg = config_mod.load(REPO / "ablations" / "smoke_freetext.yaml")
    copy = tmp_path / "prompts.jsonl"
    copy.write_text((REPO / FREETEXT_FILE).read_text())
    cfg = changed(cfg, "data.file", str(copy))
    before = stage_keys(cfg, tmp_path)
    copy.write_text(copy.read_text().replace("a", "b", 1))
    after = stage_keys(cfg, tmp_path)
    assert {s for s in before if after[s] != before[s]} == CONVERSATIONS & set(before)


def test_seeds_that_resample_sample_with_their_own_seed(tmp_path):
    """`sampling.per_seed`: each grid seed its own sampling pass (sampling seed + grid seed);
    without it, every seed shares one pass and its key, as stores made before it."""
    cfg = config_mod.load(REPO / "ablations" / "cpu_full.yaml")
    seeds = cfg.grid.seed
    assert len(seeds) > 1 and cfg.sampling.per_seed

    def samples(cfg: config_mod.AblationConfig) -> dict[int, tuple[str, int]]:
        runner, found = Runner(cfg, tmp_path), {}

        def stage(stage, label, inputs, work):
            if stage.kind == "samples":  # (its conversations come first)
                found[key_of(stage.kind, inputs)] = inputs["sampling"]["seed"]
            return tmp_path

        runner._stage = stage
        for seed in seeds:
            found.clear()
            runner.samples(cfg.grid.model[0], seed)
            ((key, sampling_seed),) = found.items()
            yield seed, (key, sampling_seed)

    shared = dict(samples(changed(cfg, "sampling.per_seed", False)))
    assert len({key for key, _ in shared.values()}) == 1
    assert {s for _, s in shared.values()} == {cfg.sampling.seed}
    own = dict(samples(cfg))
    assert len({key for key, _ in own.values()}) == len(seeds)
    assert {seed: s for seed, (_, s) in own.items()} == {
        seed: cfg.sampling.seed + seed for seed in seeds
    }
