"""Accuracy: datasets, pre- and post-processing, metrics and the evaluator."""
