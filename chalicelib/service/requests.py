"""Request bodies the API accepts, as pydantic models; unknown fields are refused."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib.errors import InvalidInput


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartInstance(_Body):
    definition_name: str = Field(min_length=1, max_length=80)
    input_data: dict[str, Any] = Field(default_factory=dict)
    correlation_id: str | None = Field(None, max_length=255)
    user_id: str | None = Field(None, max_length=255)
    tenant_id: str | None = Field(None, max_length=100)


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
