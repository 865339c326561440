"""The commands behind the make targets: launch a run, follow it, show progress, one-line errors."""
