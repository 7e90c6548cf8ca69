"""sysbench_multiturn: the lm-eval glue; the logic lives in rpo_bench.evaluate.sysbench.task."""

from rpo_bench.evaluate.sysbench.task import SysBenchTask, csr, isr, judge_errors, load_docs, ssr

__all__ = ["SysBenchTask", "csr", "isr", "judge_errors", "load_docs", "ssr"]
