"""The Exchange reports o365collector knows: one declarative catalog entry per report."""
