"""Replicas that share the tenants through the state database (PostgreSQL backend)."""
