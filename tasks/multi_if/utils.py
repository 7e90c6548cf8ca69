"""multi_if: the lm-eval glue; the logic lives in rpo_bench.evaluate.multi_if.task and .metrics."""

from rpo_bench.evaluate.metrics import inst_level_acc, overall, prompt_level_acc
from rpo_bench.evaluate.multi_if.task import MultiIFTask, load_docs

__all__ = ["MultiIFTask", "inst_level_acc", "load_docs", "overall", "prompt_level_acc"]
