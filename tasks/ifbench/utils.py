"""ifbench: IFBench from the copy vendored in rpo_bench, scored by IFBench's own checkers."""

import math

import datasets

from rpo_bench.evaluate import ifbench
from rpo_bench.evaluate.verifiable import read_jsonl
from rpo_bench.paths import resource


def load_docs(**_):
    rows = read_jsonl(resource("ifbench", "IFBench_test.jsonl"))
    return {"test": datasets.Dataset.from_list(rows)}


def process_results(doc, results):
    return ifbench.score(doc["instruction_id_list"], doc["kwargs"], doc["prompt"], results[0])


def agg_prompt_level_acc(items):
    # None marks a prompt with an instruction that could not be checked here.
    judged = [x for x in items if x is not None]
    return sum(judged) / len(judged) if judged else math.nan


def agg_inst_level_acc(items):
    flat = [x for sub in items for x in sub]
    return sum(flat) / len(flat) if flat else math.nan


def agg_count(items):
    return sum(items)
