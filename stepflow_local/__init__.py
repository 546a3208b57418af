"""Stepflow's embedded local AWS runtime: moto in-process, our own Lambda handlers, the same ASL (never deployed)."""

from stepflow_local.runtime import LocalRuntime, ScheduledJob

__all__ = ["LocalRuntime", "ScheduledJob"]
