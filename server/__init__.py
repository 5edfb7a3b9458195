"""The HTTP job API, the queue worker, the scheduler and the CLI."""
