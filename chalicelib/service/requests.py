"""Request bodies the API accepts, as pydantic models; unknown fields are refused."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.errors import InvalidInput


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartInstance(_Body):
    """The plugin's StartWorkflowDTO plus the DAG API's start, webhook_url and origin_* fields."""

    definition_name: str = Field(min_length=1, max_length=80)
    # The definition's namespace within the caller's tenant (core/definition_keys.py); none by default.
    namespace: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,79}$")
    input_data: dict[str, Any] = Field(default_factory=dict)
    correlation_id: str | None = Field(None, min_length=1, max_length=255)
    user_id: str | None = Field(None, max_length=255)
    tenant_id: str | None = Field(None, min_length=1, max_length=100)
    start: bool = True
    webhook_url: str | None = Field(None, max_length=512, pattern=r"^https?://[^\s]+$")
    origin_instance: str | None = Field(None, max_length=100)
    origin_zone: str | None = Field(None, max_length=50)
    origin_tenant_id: str | None = Field(None, max_length=100)
    origin_reference: str | None = Field(None, max_length=512)
    # Pins (at most one): the revision to run (its number or content id), or an alias whose routes pick it.
    revision: int | str | None = Field(None, description="Run this revision (its number or content id)")
    alias: str | None = Field(None, min_length=1, max_length=80,
                              description="Run the revision this alias routes to (by its weights)")

    def origin(self) -> dict[str, str | None]:
        return {"origin_instance": self.origin_instance, "origin_zone": self.origin_zone,
                "origin_tenant_id": self.origin_tenant_id, "origin_reference": self.origin_reference}


class RunInstance(StartInstance):
    """A start that waits for the result (definition_name comes from the path)."""

    definition_name: str = Field("", max_length=80)
    wait_seconds: float = Field(25.0, ge=0, le=25)


def parse_body(model: type[_Body], data: Any) -> Any:
    """The model, or InvalidInput listing every field problem."""
    if not isinstance(data, dict):
        raise InvalidInput({"message": "the body must be a JSON object", "issues": []})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues = [
            {"code": e["type"], "location": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        raise InvalidInput({"message": "the request body is not valid", "issues": issues}) from None
