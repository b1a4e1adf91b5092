"""Evaluation: multi-label metrics and the threshold protocols that turn scores into predictions."""
