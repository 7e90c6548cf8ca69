"""Ablation configs: YAML that maps one-to-one onto these dataclasses, validated on load.

A config is a base setup (data, sampling, judge, pairs, train, eval, and optionally a gold
set) and a grid over the study's axes: reversal strategy, judge noise p, model, seed, and
optionally the margin settings `pairs.min_margin` and `train.margin_mode` and the training
budget `train.epochs`. An unknown key or value is an error
that names its file, line and key and lists the valid ones.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rpo_bench.llm import OPENAI
from rpo_bench.openai_client import CLIENT_OPTIONS
from rpo_bench.rollout.settings import ENGINES
from rpo_bench.typedconfig import ConfigError, build, one_of, read_yaml, unknown_key

BASE = "base"  # the untrained model, evaluated once per model as the reference row
DATA_KINDS = ("verifiable", "freetext")
HISTORY_CHOICES = ("best", "first", "teacher")
POOLS = ("policy", "critic")
BACKENDS = ("hf", "vllm")
JUDGES = ("rule", "openai", "hf")
PRIMARY_METRICS = ("overall",)  # the per-prompt score, the only one with paired intervals
# a rollout backend's own options, beside the client's (rollout.openai.OpenAIBackend)
ENDPOINT_EXTRA = ("concurrency", "use_n")
# a helper role's own option, beside the client's (llm.OpenAICompleter): its answers' bound
COMPLETER_EXTRA = ("max_tokens",)
ROBUST_LOSSES = ("robust_dpo", "cdpo")  # losses built for flipped preference labels
# Optional grid axes: left empty, a cell takes the base config's value and its name, stage
# keys and results are those of a grid without the axis (stored stages are reused).
# epochs: the training budget (dose-response)
OPTIONAL_AXES = ("min_margin", "margin_mode", "epochs")
# `train` keys that say how a training is launched, not what it computes; they stay in the
# stage key (processes set the global batch: batch_size is per process) but are no
# TrainConfig keys: `processes` N > 1 trains through `rpo-bench train --processes N`.
LAUNCH_KEYS = ("processes", "accelerate_config")


def trainer_keys(settings: dict[str, Any]) -> dict[str, Any]:
    """A cell's train settings without the launch keys: what TrainConfig takes."""
    return {k: v for k, v in settings.items() if k not in LAUNCH_KEYS}


@dataclass(frozen=True)
class Endpoint:
    """An LLM behind an OpenAI-compatible endpoint. `options` go to its client: those of
    `rpo_bench.openai_client.CLIENT_OPTIONS` (api_key_env, timeout, max_attempts, backoff,
    max_backoff), for a rollout backend its own (`ENDPOINT_EXTRA`), and for a reverser or
    system-prompt writer `max_tokens` (`COMPLETER_EXTRA`)."""

    model: str = "gpt-4o-mini"
    base_url: str = OPENAI
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Generate(Endpoint):
    """System prompts written by a teacher LLM (`data.freetext.generate_system_prompts`, as
    the authors made theirs): `per_domain` for each domain, `turns` user turns each. Answers
    are cached."""

    domains: tuple[str, ...] = ("travel", "cooking", "customer support", "education")
    per_domain: int = 8
    turns: int = 3


@dataclass(frozen=True)
class Data:
    """Training and held-out conversations (rpo_bench.data.verifiable builds them; the file
    contract is rpo_bench.data.conversations)."""

    n_conversations: int = 32
    heldout_conversations: int = 32
    turns: int = 2
    constraints_per_turn: int = 2
    constraint_slot: str = "user"
    seed: int = 0
    # verifiable: IFEval constraints on seed tasks (the rule judge can check them);
    # freetext: system prompts with free-text constraints from `file` (data/freetext.py),
    # (or written by the `generate` teacher), the first n_conversations for training and the
    # next heldout_conversations held out, judged by an LLM judge and reversed by
    # `pairs.reverser`
    kind: str = "verifiable"
    file: str | None = None
    generate: Generate | None = None  # freetext without a file: a teacher writes them


@dataclass(frozen=True)
class TeacherModel(Endpoint):
    """The teacher of `history: teacher` and `pool: critic` (data/teacher.py): best of `n`,
    refined by up to `critique_rounds` self-critiques towards `threshold` (share of the
    constraints). An endpoint, or with `base_url: null` a local model (name or folder) on
    the HF backend."""

    base_url: str | None = OPENAI
    n: int = 4
    threshold: float = 0.7
    critique_rounds: int = 2


@dataclass(frozen=True)
class Sampling:
    """One sampling pass per model serves every strategy, noise level and seed (or, with
    `per_seed`, one per model and grid seed)."""

    n: int = 4
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 96
    history: str = "best"
    batch_size: int = 32
    seed: int = 0
    backend: str = "hf"  # hf (CPU or GPU) | vllm (GPU, the `gpu` extra)
    # hf backend's engine for sampling (rollout.settings.ENGINES; evaluation has its own,
    # `eval.engine`): fast (in-place KV cache, bfloat16 where the CPU has it) |
    # fast_float32 | reference
    engine: str = "fast"
    teacher: TeacherModel | None = None  # for history: teacher (the authors' golden history)
    # policy: the policy's samples only | critic: the teacher's refined reply joins a turn
    # whose best sample is below the teacher's threshold (the authors' critic pool)
    pool: str = "policy"
    # false: one sampling pass per model serves every seed, so seeds differ by training and
    # noise flips only | true: each grid seed samples its own responses (sampling seed +
    # grid seed), so the bootstrap's seed level includes sampling too
    per_seed: bool = False


@dataclass(frozen=True)
class Judge:
    """`rule`: the exact constraint checkers; `openai`/`hf`: an LLM judge (free-text rules)."""

    kind: str = "rule"
    model: str | None = None
    base_url: str | None = None
    # the judge client's own options (rpo_bench.judge.make_judge), e.g. api_key_env,
    # timeout, max_attempts, backoff, concurrency; `cache` defaults to <work>/judge.sqlite
    options: dict[str, Any] = field(default_factory=dict)
    # all: every constraint of a turn counts | llm: the judge's model first selects the
    # constraints the turn's query triggers, and only those count and reach the pairs'
    # prompts (the authors' filter; judge/triggered.py)
    triggered: str = "all"


@dataclass(frozen=True)
class Reverser(Endpoint):
    """The LLM that reverses free-text constraints (`constraints.llm_reversal`)."""


@dataclass(frozen=True)
class Pairs:
    min_margin: int = 1
    max_pairs_per_turn: int | None = None
    keep_unanimous: bool = True
    reverser: Reverser | None = None  # needed for free-text constraints (data.kind freetext)


@dataclass(frozen=True)
class Eval:
    tasks: tuple[str, ...] = ("ifeval_local", "ifbench", "heldout")
    limit: int | None = 48
    max_new_tokens: int = 192
    batch_size: int = 32
    bootstrap: int = 1000
    metadata: dict[str, Any] = field(default_factory=dict)  # lm-eval task options (judge)
    # lm-eval tasks' decoding protocol (official | greedy); the single-turn tasks and heldout
    # are decoded greedily by the rollout engine with max_new_tokens.
    decoding: str = "official"
    # the rollout engine that decodes the single-turn tasks and heldout, with `batch_size`,
    # for the base and trained models alike (as `sampling.backend` / `sampling.engine`)
    backend: str = "hf"
    engine: str = "fast"


@dataclass(frozen=True)
class Gold:
    """The gold set, one yardstick for every model of the grid: pairs from held-out turns'
    sampled responses, ordered by their true verdicts under the original prompt (the chosen
    satisfies strictly more of the turn's constraints: `dpo_count`'s rule, no noise). Each
    trained cell's preference accuracy is measured on it (`train/learning.py`), and the
    report's learning gate reads it. Sampled once, by `model` (default: the grid's first),
    with `sampling`'s settings but `n` samples per turn, from the first `conversations`
    held-out conversations (default: all)."""

    conversations: int | None = None
    n: int = 4
    max_pairs_per_turn: int | None = 2
    model: str | None = None


@dataclass(frozen=True)
class Variant:
    """A named grid strategy: a pair strategy's pairs trained with its own settings, e.g.
    `dpo_count_robust: {pairs: dpo_count, train: {loss: robust_dpo, label_smoothing: 0.2}}`."""

    pairs: str  # a pair (or SFT/KTO example) strategy (rpo_bench.pairs.STRATEGIES)
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig keys over `train`


@dataclass(frozen=True)
class Primary:
    """The primary comparison: `strategy` minus `reference` on `task`'s per-prompt score
    (`overall`: a prompt's four IFEval metrics averaged; SysBench: a session's CSR)."""

    task: str = "heldout"
    metric: str = "overall"
    strategy: str = "rpo"
    reference: str = "dpo_count"


@dataclass(frozen=True)
class Analysis:
    """What the report's verdict tests: the primary comparison at each noise level, judged
    against the smallest effect worth detecting (points); `robust`: the noise-robust-loss
    variants `primary.strategy` is compared with (empty: every variant of the reference's
    pairs trained with a robust loss, ROBUST_LOSSES)."""

    primary: Primary = field(default_factory=Primary)
    effect_of_interest: float = 3.0
    robust: tuple[str, ...] = ()
    # the learning gate: a comparison between trained strategies gets a verdict only where
    # both sides' gold-set accuracy interval lies above this (else "inconclusive")
    learning_threshold: float = 0.5
    # the placebo control every strategy is also compared with, where the grid has it
    placebo: str = "dpo_shuffled"


@dataclass(frozen=True)
class Grid:
    strategy: tuple[str, ...] = ("dpo_count", "rpo")
    noise: tuple[float, ...] = (0.0,)
    model: tuple[str, ...] = ("smollm2-135m",)
    seed: tuple[int, ...] = (0,)
    min_margin: tuple[int, ...] = ()  # empty: pairs.min_margin
    margin_mode: tuple[str, ...] = ()  # empty: train.margin_mode (or the trainer's default)
    epochs: tuple[int, ...] = ()  # empty: train.epochs (the training budget's axis)
    # models evaluated untrained only, beside the grid's: a size this machine cannot train
    # in a session still has its base scores in the report
    base_only: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cell:
    """One grid point: a model trained on one strategy's pairs at one noise level and seed;
    `min_margin` / `margin_mode` / `epochs` are set only where the grid has that axis."""

    model: str
    strategy: str
    noise: float
    seed: int
    min_margin: int | None = None
    margin_mode: str | None = None
    epochs: int | None = None

    @property
    def name(self) -> str:
        name = f"{self.model}/{self.strategy}/p{self.noise:g}/s{self.seed}"
        if self.min_margin is not None:
            name += f"/g{self.min_margin}"
        name += f"/{self.margin_mode}" if self.margin_mode else ""
        return name + (f"/e{self.epochs}" if self.epochs is not None else "")

    def fields(self) -> dict[str, Any]:
        """The cell as results.json names it: the optional axes only where set."""
        values = dataclasses.asdict(self)
        return {k: v for k, v in values.items() if k not in OPTIONAL_AXES or v is not None}


def axis_values(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell's (results.json row's) values on the optional axes it sets, in axis order."""
    return {a: cell[a] for a in OPTIONAL_AXES if cell.get(a) is not None}


def axis_label(cell: dict[str, Any]) -> str:
    """'min_margin=3, margin_mode=inside_beta' for the optional axes a cell sets, else ''."""
    return ", ".join(f"{k}={v}" for k, v in axis_values(cell).items())


@dataclass(frozen=True)
class AblationConfig:
    name: str
    description: str = ""
    data: Data = field(default_factory=Data)
    sampling: Sampling = field(default_factory=Sampling)
    judge: Judge = field(default_factory=Judge)
    pairs: Pairs = field(default_factory=Pairs)
    train: dict[str, Any] = field(default_factory=dict)  # rpo_bench.train's TrainConfig keys
    eval: Eval = field(default_factory=Eval)
    grid: Grid = field(default_factory=Grid)
    strategies: dict[str, Variant] = field(default_factory=dict)  # named variants for the grid
    analysis: Analysis = field(default_factory=Analysis)  # the report's primary endpoint
    gold: Gold | None = None  # the gold set every trained cell's learning is measured on

    def pair_strategy(self, strategy: str) -> str:
        """The pair strategy a grid strategy builds its pairs with."""
        return self.strategies[strategy].pairs if strategy in self.strategies else strategy

    def train_settings(
        self, strategy: str, margin_mode: str | None = None, epochs: int | None = None
    ) -> dict[str, Any]:
        """TrainConfig keys for a grid strategy: its pair strategy's declared loss, then
        `train`, then the variant's own `train`, then a cell's `margin_mode` and `epochs`.
        Only the rpo loss reads the margin mode, so other losses leave it out: their cells
        on that axis share one training stage, as a cell at the mode (or epochs) `train`
        already gives shares the stage of a grid without the axis."""
        from rpo_bench.pairs import strategy as pair_strategy

        variant = self.strategies.get(strategy)
        own = variant.train if variant else {}
        settings = {"loss": pair_strategy(self.pair_strategy(strategy)).loss, **self.train, **own}
        if margin_mode is not None and settings["loss"] == "rpo":
            from rpo_bench.train.config import TrainConfig

            # the mode the settings already give keeps the key of a cell without the axis
            if margin_mode != settings.get("margin_mode", TrainConfig.margin_mode):
                settings["margin_mode"] = margin_mode
        if epochs is not None:
            from rpo_bench.train.config import TrainConfig

            if epochs != settings.get("epochs", TrainConfig.epochs):
                settings["epochs"] = epochs
        return settings

    def base_models(self) -> tuple[str, ...]:
        """Every model evaluated untrained: the grid's, then `grid.base_only`."""
        return (*self.grid.model, *self.grid.base_only)

    def cells(self) -> list[Cell]:
        g = self.grid
        axes = (g.model, g.strategy, g.noise, g.seed, g.min_margin or (None,),
                g.margin_mode or (None,), g.epochs or (None,))  # fmt: skip
        return [Cell(*c) for c in itertools.product(*axes)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def validate(config: AblationConfig) -> AblationConfig:
    """Values checked against the registries they name; errors are ConfigErrors with the
    key path of the value at fault."""
    from rpo_bench.data.prompt import SLOTS
    from rpo_bench.evaluate.tasks import TASKS
    from rpo_bench.pairs import STRATEGIES, kind_of
    from rpo_bench.train.config import MARGIN_MODES, TrainConfig, example_kind

    one_of(config.data.constraint_slot, SLOTS, ("data", "constraint_slot"))
    one_of(config.sampling.history, HISTORY_CHOICES, ("sampling", "history"))
    one_of(config.sampling.pool, POOLS, ("sampling", "pool"))
    if (config.sampling.history == "teacher") != (config.sampling.teacher is not None):
        raise ConfigError(("sampling", "teacher"), "must be set exactly when history is teacher")
    if config.sampling.pool == "critic" and config.sampling.history != "teacher":
        raise ConfigError(("sampling", "pool"), "critic takes the teacher's replies "
                          "(history: teacher)")  # fmt: skip
    one_of(config.sampling.backend, BACKENDS, ("sampling", "backend"))
    one_of(config.sampling.engine, ENGINES, ("sampling", "engine"))
    one_of(config.judge.kind, JUDGES, ("judge", "kind"))
    one_of(config.data.kind, DATA_KINDS, ("data", "kind"))
    one_of(config.judge.triggered, ("all", "llm"), ("judge", "triggered"))
    if config.judge.triggered == "llm" and config.judge.kind != "openai":
        raise ConfigError(("judge", "triggered"), "llm asks the judge's endpoint (kind openai)")
    if config.data.kind == "freetext":
        if (config.data.file is None) == (config.data.generate is None):
            raise ConfigError(
                ("data",),
                "free-text data needs a JSONL of system prompts (file) or a teacher that "
                "writes them (generate), one of the two",
            )
        if config.judge.kind == "rule":
            raise ConfigError(("judge", "kind"), "free-text constraints need an LLM judge")
        if config.pairs.reverser is None:
            raise ConfigError(("pairs", "reverser"), "free-text constraints need an LLM reverser")
    endpoints = {("data", "generate"): (config.data.generate, COMPLETER_EXTRA),
                 ("pairs", "reverser"): (config.pairs.reverser, COMPLETER_EXTRA),
                 ("sampling", "teacher"): (config.sampling.teacher, ENDPOINT_EXTRA)}  # fmt: skip
    for at, (endpoint, extra) in endpoints.items():
        valid = (*CLIENT_OPTIONS, *extra)
        for key in endpoint.options if endpoint else ():
            if key not in valid:
                raise unknown_key((*at, "options", key), valid)
    one_of(config.eval.backend, BACKENDS, ("eval", "backend"))
    one_of(config.eval.engine, ENGINES, ("eval", "engine"))
    for i, task in enumerate(config.eval.tasks):
        one_of(task, TASKS, ("eval", "tasks", i))
    try:
        TrainConfig.from_dict(trainer_keys(config.train))
    except ConfigError as err:
        raise err.under("train") from None
    processes = config.train.get("processes", 1)
    if not isinstance(processes, int) or isinstance(processes, bool) or processes < 1:
        raise ConfigError(("train", "processes"), f"is {processes!r}, not a number of processes")
    accelerate_config = config.train.get("accelerate_config")
    if accelerate_config is not None and not isinstance(accelerate_config, str):
        raise ConfigError(("train", "accelerate_config"), "expected a file path")
    for name, variant in config.strategies.items():
        if name in STRATEGIES or name == BASE:
            raise ConfigError(("strategies", name), "is a pair strategy's name: a variant "
                              "needs a name of its own")  # fmt: skip
        one_of(variant.pairs, STRATEGIES, ("strategies", name, "pairs"))
    for i, strategy in enumerate(config.grid.strategy):
        one_of(strategy, [*STRATEGIES, *config.strategies], ("grid", "strategy", i))
        try:
            settings = TrainConfig.from_dict(trainer_keys(config.train_settings(strategy)))
        except ConfigError as err:  # `train` passed alone: the variant's keys or its loss
            raise _in_variant(config, strategy, err) from None
        kind, reads = kind_of(config.pair_strategy(strategy)), example_kind(settings.loss)
        if kind != reads:
            raise ConfigError(
                ("grid", "strategy", i),
                f"({strategy}) builds {kind} examples, but loss {settings.loss!r} trains on "
                f"{reads} examples",
            )
    _validate_analysis(config)
    for i, p in enumerate(config.grid.noise):
        if not 0.0 <= p <= 0.5:
            raise ConfigError(("grid", "noise", i), f"is {p}, not a flip probability in [0, 0.5]")
    for i, g in enumerate(config.grid.min_margin):
        if g < 1:
            raise ConfigError(("grid", "min_margin", i), f"is {g}, not a margin >= 1")
    for i, mode in enumerate(config.grid.margin_mode):
        one_of(mode, MARGIN_MODES, ("grid", "margin_mode", i))
    for i, name in enumerate(config.grid.base_only):
        if name in config.grid.model:
            raise ConfigError(("grid", "base_only", i), f"{name} is trained in the grid already")
    for i, n in enumerate(config.grid.epochs):
        if n < 1:
            raise ConfigError(("grid", "epochs", i), f"is {n}, not a number of epochs >= 1")
    g = config.gold
    if g is not None:
        if g.n < 2:
            raise ConfigError(("gold", "n"), f"is {g.n}: a pair needs at least 2 samples a turn")
        if g.conversations is not None and g.conversations < 1:
            raise ConfigError(("gold", "conversations"), f"is {g.conversations}, not >= 1")
    for axis in ("strategy", "noise", "model", "seed"):
        if not getattr(config.grid, axis):
            raise ConfigError(("grid", axis), "needs at least one value")
    return config


def _in_variant(config: AblationConfig, strategy: str, err: ConfigError) -> ConfigError:
    """A grid strategy's training-settings error at the key that sets the value: the
    variant's own `train`, else `train` (where a default the strategy's loss rejects is
    left out, the section)."""
    variant = config.strategies.get(strategy)
    own = variant is not None and bool(err.path) and err.path[0] in variant.train
    at = ("strategies", strategy, "train") if own else ("train",)
    return ConfigError((*at, *err.path), f"{err.problem} (grid strategy {strategy})")


def _validate_analysis(config: AblationConfig) -> None:
    """Names checked against the registries; a primary cell missing from this grid is not
    an error (the report says so), so one analysis section serves every preset."""
    from rpo_bench.evaluate.tasks import TASKS
    from rpo_bench.pairs import STRATEGIES

    a = config.analysis
    one_of(a.primary.task, TASKS, ("analysis", "primary", "task"))
    one_of(a.primary.metric, PRIMARY_METRICS, ("analysis", "primary", "metric"))
    names = [*STRATEGIES, *config.strategies, BASE]  # pair strategies and the SFT/KTO baselines
    one_of(a.primary.strategy, names, ("analysis", "primary", "strategy"))
    one_of(a.primary.reference, names, ("analysis", "primary", "reference"))
    for i, name in enumerate(a.robust):
        one_of(name, config.strategies, ("analysis", "robust", i))
    if not 0 <= a.learning_threshold < 1:
        raise ConfigError(("analysis", "learning_threshold"),
                          f"is {a.learning_threshold}, not an accuracy in [0, 1)")  # fmt: skip
    if not a.effect_of_interest > 0:
        raise ConfigError(
            ("analysis", "effect_of_interest"), f"is {a.effect_of_interest}, not > 0 points"
        )


def load(path: str | Path) -> AblationConfig:
    """Read, build and validate a config file; errors name the file, the line and the key."""
    source = read_yaml(path)
    raw = source.data
    if isinstance(raw, dict):
        raw.setdefault("name", Path(path).stem)
    try:
        return validate(build(AblationConfig, raw))
    except ConfigError as err:
        raise source.locate(err) from None
