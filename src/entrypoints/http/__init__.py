"""The Litestar application: thin controllers over the use cases."""
