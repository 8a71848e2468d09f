"""The HTTP API: a FastAPI app factory over the same services the CLI uses."""
