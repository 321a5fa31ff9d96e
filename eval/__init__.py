"""Evaluation: inference backends, metrics, reports and scoring."""
