"""ifeval_local: IFEval from the copy vendored in rpo_bench, scored by rpo_bench.constraints."""

import datasets

from rpo_bench.evaluate.verifiable import constraints_for, read_jsonl, score
from rpo_bench.paths import resource


def load_docs(**_):
    rows = read_jsonl(resource("ifeval", "input_data.jsonl"))
    return {"test": datasets.Dataset.from_list(rows)}


def process_results(doc, results):
    constraints = constraints_for(doc["instruction_id_list"], doc["kwargs"])
    return score(constraints, results[0])


def agg_inst_level_acc(items):
    flat = [x for sub in items for x in sub]
    return sum(flat) / len(flat)
