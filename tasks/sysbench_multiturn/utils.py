"""sysbench_multiturn: the lm-eval glue; the logic lives in rpo_bench.evaluate.sysbench.task.

Every metric in the YAML is an aggregation of the same name there (`task.METRICS`)."""

from rpo_bench.evaluate.sysbench.task import *  # noqa: F403
