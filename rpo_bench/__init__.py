"""rpo_bench: does Reverse Preference Optimization beat DPO, when, and by how much?

Pipeline: tasks -> rollout -> judge -> pairs -> train -> evaluate -> report.
"""

__version__ = "0.1.0"
