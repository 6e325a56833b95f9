"""Chaos and soak runs of the whole stack (`make chaos`, `make soak`); see run.py."""
