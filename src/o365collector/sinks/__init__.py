"""Sinks: each receives batches of events and answers delivered, retry or rejected."""
