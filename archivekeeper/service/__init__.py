"""The daemon: the service door beside the CLI."""
