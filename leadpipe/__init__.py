"""Leadpipe's CLI and local runtime. Never deployed: the Lambda code lives in `functions/`."""
