"""Checkpoint state."""
