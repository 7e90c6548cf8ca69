"""ifbench: the lm-eval glue; the logic lives in rpo_bench.evaluate.ifbench.task and .metrics."""

from rpo_bench.evaluate.ifbench.task import load_docs, process_results
from rpo_bench.evaluate.metrics import count, inst_level_acc, prompt_level_acc

__all__ = ["count", "inst_level_acc", "load_docs", "process_results", "prompt_level_acc"]
