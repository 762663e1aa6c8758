"""The HTTP API (FastAPI): thin routes over `facegate.operations`, built by `create_app(settings)`."""
