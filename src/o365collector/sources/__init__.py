"""Sources: one package per Microsoft API; each turns a window into pages of raw records."""
