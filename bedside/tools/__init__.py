"""Command-line tools: the CLI registry, demo, validate and verify."""
