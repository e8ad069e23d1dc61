"""Evaluation: the paper's metrics and the simple baselines the model must beat."""
