"""The ablation runner: conversations, samples, judged, pairs, train, evaluate, report."""
