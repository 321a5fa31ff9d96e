"""Tests across packages: the demo and proof of learning, the browser, packaging, shared protocols."""
