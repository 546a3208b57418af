"""Deployment tooling (never deployed): the template generator, packaging, deploy and LocalStack runners."""
