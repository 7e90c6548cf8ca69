"""The multi_if lm-eval task plays every turn with the model's own earlier replies."""

import lm_eval
import pytest
import rescore
import torch
from lm_eval.tasks import TaskManager
from transformers import AutoTokenizer

from conftest import REPO

FIXTURE = REPO / "tests" / "fixtures" / "multi_if_fixture.csv"


@pytest.fixture
def one_thread():
    # On a loaded 2-core machine torch's default threading decodes far slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def evaluate(model_dir, **kw):
    return lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": str(model_dir), "dtype": "float32"},
        tasks=["multi_if_english"],
        task_manager=TaskManager(
            include_path=str(REPO / "tasks"), metadata={"data_file": str(FIXTURE)}
        ),
        limit=1,
        gen_kwargs={"max_gen_toks": 12},
        device="cpu",
        batch_size=1,
        log_samples=True,
        **kw,
    )


def test_turn_3_prompt_holds_the_models_own_replies(prepared_model_dir, one_thread):
    out = evaluate(prepared_model_dir, apply_chat_template=True)
    metrics = out["results"]["multi_if_english"]
    samples = out["samples"]["multi_if_english"]
    assert len(samples) == 1
    # Each turn's reported metrics are exactly those of the replies played, scored again by
    # rpo_bench.evaluate.multi_if (the prompt rebuilt from them through the chat template).
    tokenizer = AutoTokenizer.from_pretrained(prepared_model_dir)

    def render(messages):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    expected = rescore.rescore_multi_if(samples, render)
    rescore.assert_metrics_equal(metrics, expected)
    sample = samples[0]
    prompt = (
        sample["arguments"]["gen_args_0"]["arg_0"]
        if isinstance(sample["arguments"], dict)
        else sample["arguments"][0][0]
    )
    assert prompt.count("<|im_start|>assistant") == 3  # two earlier replies + the open turn
    earlier = prompt.split("<|im_start|>assistant\n")[1:3]
    assert all(reply.split("<|im_end|>")[0].strip() for reply in earlier)


def test_without_chat_template_it_fails_clearly(prepared_model_dir):
    with pytest.raises(ValueError, match="--apply_chat_template"):
        evaluate(prepared_model_dir, apply_chat_template=False)


def test_replies_are_stripped_as_multi_if_inference_strips_them():
    # Multi-IF's vLLM inference keeps `output.text.strip()`: that text joins the history
    # and is scored. SysBench keeps replies as generated.
    from rpo_bench.evaluate.sysbench.task import SysBenchTask

    manager = TaskManager(include_path=str(REPO / "tasks"), metadata={"data_file": str(FIXTURE)})
    task = manager.load_task_or_group(["multi_if_english"])["multi_if_english"]
    assert task.reply(" \n My answer is yes.\n\n") == "My answer is yes."
    doc = task.dataset["test"][0]
    task._history = {task.to_conversation(doc).id: ["first", "second"]}
    assert task.replies(doc, ["  third \n"]) == ["first", "second", "third"]
    assert not SysBenchTask.strip_replies
