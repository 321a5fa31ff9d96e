"""Scoring: test sets and their items, the predictions file, metrics (ExpRate and token edit
distance), voting across tasks, paired comparison, the published numbers, and ``score``, which
scores any predictions file."""
