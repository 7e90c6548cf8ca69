"""An interrupted multi-turn run resumes at the turn it reached: multi_if_english on the
fixture is stopped during turn 3, run again, and turns 1 and 2 are not generated again."""

from __future__ import annotations

import lm_eval
import pytest
import torch
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "multi_if_fixture.csv"
DOCS = [0, 1]


class Interrupted(RuntimeError):
    pass


class CountingLM(HFLM):
    """lm-eval's HF model, counting its generate_until calls; `stop_at` makes one raise,
    as a run killed in the middle of that batch."""

    calls: list[int]
    stop_at: int | None = None

    def generate_until(self, requests, disable_tqdm: bool = False):
        self.calls.append(len(requests))
        if self.stop_at == len(self.calls):
            raise Interrupted(f"stopped at generation batch {len(self.calls)}")
        return super().generate_until(requests, disable_tqdm=True)


def evaluate(lm: CountingLM, cache) -> dict:
    metadata = {"data_file": str(FIXTURE), "decoding": "greedy", "generation_cache": str(cache)}
    return lm_eval.simple_evaluate(
        model=lm,
        tasks=["multi_if_english"],
        task_manager=TaskManager(include_path=str(REPO / "tasks"), metadata=metadata),
        samples={"multi_if_english": DOCS},
        gen_kwargs={"max_gen_toks": 8},
        apply_chat_template=True,
        log_samples=True,
    )


@pytest.fixture(scope="module")
def lm(prepared_model_dir):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield CountingLM(
        pretrained=str(prepared_model_dir), dtype="float32", device="cpu", batch_size=2
    )
    torch.set_num_threads(before)


def test_interrupted_run_resumes_at_the_turn_it_reached(lm, tmp_path):
    cache = tmp_path / "generations.sqlite"
    lm.calls, lm.stop_at = [], 3  # turns 1 and 2 are played by the task, turn 3 by lm-eval
    with pytest.raises(Interrupted):
        evaluate(lm, cache)
    assert lm.calls == [2, 2, 2]
    lm.calls, lm.stop_at = [], None
    resumed = evaluate(lm, cache)
    assert lm.calls == [2]  # only turn 3: turns 1 and 2 came from the cache
    # The same as a run with nothing cached.
    lm.calls = []
    fresh = evaluate(lm, tmp_path / "empty.sqlite")
    assert lm.calls == [2, 2, 2]
    for a, b in zip(
        resumed["samples"]["multi_if_english"], fresh["samples"]["multi_if_english"], strict=True
    ):
        assert a["arguments"] == b["arguments"] and a["resps"] == b["resps"]


def test_a_change_of_decoding_settings_misses_the_cache(lm, tmp_path):
    cache = tmp_path / "generations.sqlite"
    lm.calls, lm.stop_at = [], None
    evaluate(lm, cache)
    metadata = {"data_file": str(FIXTURE), "decoding": "greedy", "generation_cache": str(cache)}
    lm.calls = []
    lm_eval.simple_evaluate(
        model=lm,
        tasks=["multi_if_english"],
        task_manager=TaskManager(include_path=str(REPO / "tasks"), metadata=metadata),
        samples={"multi_if_english": DOCS},
        gen_kwargs={"max_gen_toks": 9},  # one more token: other settings, other replies
        apply_chat_template=True,
    )
    assert lm.calls == [2, 2, 2]
