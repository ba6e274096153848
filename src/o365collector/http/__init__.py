"""HTTP to Microsoft: tokens, request budget, response classification and retries."""
