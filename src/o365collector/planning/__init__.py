"""Planning: which windows each lane of a stream reads, and when (pure functions)."""
