"""``python -m o365emulator``."""

from o365emulator.cli import main

main()
