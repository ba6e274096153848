"""Microsoft Graph sources."""
