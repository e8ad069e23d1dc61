"""Command-line entry points (`amodal-ros ...`); each command has run(args) and a thin parser."""
