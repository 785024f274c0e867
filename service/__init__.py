"""The service: the Litestar app, the command line, settings, auth, logging, metrics."""
