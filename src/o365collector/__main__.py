"""``python -m o365collector``."""

from o365collector.cli import main

main()
