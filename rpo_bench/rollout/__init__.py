"""Rollout: generate replies with a model, batched per turn."""
