"""multi_if: the lm-eval glue; the logic lives in rpo_bench.evaluate.multi_if_task."""

from rpo_bench.evaluate.multi_if_task import MultiIFTask, inst_level, load_docs, overall

__all__ = ["MultiIFTask", "inst_level", "load_docs", "overall"]
