"""ifeval_local: the lm-eval glue; the logic lives in rpo_bench.evaluate.ifeval and .metrics."""

from rpo_bench.evaluate.ifeval import load_docs, process_results
from rpo_bench.evaluate.metrics import inst_level_acc, prompt_level_acc

__all__ = ["inst_level_acc", "load_docs", "process_results", "prompt_level_acc"]
