"""The driving side: HTTP, the queue worker, the CLI, and the composition root."""
