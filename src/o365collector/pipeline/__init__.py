"""The pipeline: events, fan-out to sinks with acknowledgements, ordered commits."""
