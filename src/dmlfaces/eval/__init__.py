"""Evaluation: verification metrics and baselines."""
