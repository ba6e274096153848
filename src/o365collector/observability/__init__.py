"""Logs, metrics and secret redaction."""
