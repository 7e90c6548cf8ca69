"""Evaluation: scoring responses and running lm-eval tasks."""
