"""o365collector: Exchange Online message trace and mail reports, delivered once to SIEMs."""

__version__ = "0.1.0"
