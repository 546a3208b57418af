"""LocalStack Lambda runtime executor `process`: each execution environment is a local process, no Docker."""
