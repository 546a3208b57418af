"""DynamoDB attribute values leave moto in their wire form without its generic walks over every value.

moto builds a DynamoDB response in two passes over every attribute of every item: `dynamo_to_dict`
(DynamoType objects to {type: value}) and its shape-driven serialiser, which for each AttributeValue
tries each of the ten members (S, N, B, SS, NS, BS, M, L, NULL, BOOL) through a chain of name aliases.
Those walks were most of the time a listing page took locally (about 1 ms per item of ~15
attributes), growing with the items on the page. Here both take a direct route for the values they
can write exactly as the generic walk would (strings, numbers, booleans, sets, lists and maps of
those, blobs base64), and hand anything else back to moto's own code.
"""

from __future__ import annotations

from typing import Any

ORIGINALS: dict[str, Any] = {}
_SHAPE = "AttributeValue"
_SCALAR = (str, bool)


def _wire(value: Any, base64: Any) -> Any:
    """The serialised form of one {type: value}, or None where the generic walk must decide."""
    if type(value) is not dict or len(value) != 1:
        return None
    (kind, inner), = value.items()
    if type(inner) is str and (kind == "S" or kind == "N") or type(inner) is bool and (kind == "BOOL" or kind == "NULL"):
        return value  # already as written (a fresh dict of dynamo_to_dict's: nothing else holds it)
    if inner is None:
        return None  # the generic walk leaves a None member out
    if kind == "S" or kind == "N":
        return {kind: _string(inner)}
    if kind == "M" and type(inner) is dict:
        members = {}
        for name, member in inner.items():
            wired = _wire(member, base64)
            if wired is None:
                return None
            members[name] = wired
        return {"M": members}
    if kind == "L" and type(inner) is list:
        items = []
        for member in inner:
            wired = _wire(member, base64)
            if wired is None:
                return None
            items.append(wired)
        return {"L": items}
    if (kind == "SS" or kind == "NS") and type(inner) is list:
        return {kind: [_string(v) for v in inner]}
    if kind == "B" and isinstance(inner, bytes | str):
        return {"B": base64(inner)}
    if kind == "BS" and type(inner) is list and all(isinstance(v, bytes | str) for v in inner):
        return {"BS": [base64(v) for v in inner]}
    return None


def _string(value: Any) -> Any:
    # The generic string serialiser: str() of anything but None, {} and [], which stay as they are.
    return value if value is None or value == {} or value == [] else str(value)


def _serialiser(base: Any) -> Any:
    class AttributeValueJSONSerializer(base):  # type: ignore[misc, valid-type]
        """moto's JSON serialiser, with AttributeValues (and maps of them: items, keys) written directly."""

        def _serialize_type_structure(self, serialized: Any, value: Any, shape: Any, key: str) -> None:
            if key and shape.name == _SHAPE:
                wired = _wire(value, self._base64)
                if wired is not None:
                    serialized[self.get_serialized_name(shape, key)] = wired
                    return
            super()._serialize_type_structure(serialized, value, shape, key)

        def _serialize_type_map(self, serialized: Any, value: Any, shape: Any, key: str) -> None:
            # An item (AttributeMap, Key): every value wired at once, or the generic walk for all of them.
            if shape.value.name == _SHAPE and type(value) is dict and "name" not in shape.value.serialization:
                wired = {}
                for name, member in value.items():
                    one = _wire(member, self._base64)
                    if one is None:
                        break
                    wired[name] = one
                else:
                    self._default_serialize(serialized, wired, shape, key)
                    return
            super()._serialize_type_map(serialized, value, shape, key)

    AttributeValueJSONSerializer.__stepflow_wire__ = True  # type: ignore[attr-defined]
    return AttributeValueJSONSerializer


def _to_dict(original: Any, dynamo_type: Any, limited: Any) -> Any:
    def dynamo_to_dict(obj: Any) -> Any:
        """moto's dynamo_to_dict, straight through dicts, lists and scalar values (which it returns as
        {type: value} and as they are); everything else goes to moto's own."""
        kind = type(obj)
        if kind is dynamo_type:
            value = obj.value
            if type(value) in _SCALAR and obj.type != "B":
                return {obj.type: value}
            return original(obj)
        if kind is dict or kind is limited:  # an item's attributes, mostly: their scalars inline
            return {k: {v.type: v.value} if type(v) is dynamo_type and type(v.value) in _SCALAR and v.type != "B"
                    else dynamo_to_dict(v) for k, v in obj.items()}
        if kind is list:
            return [dynamo_to_dict(v) for v in obj]
        if kind in _SCALAR or kind is int or obj is None:
            return obj
        return original(obj)

    dynamo_to_dict.__stepflow_wire__ = True  # type: ignore[attr-defined]
    return dynamo_to_dict


def patch() -> None:
    """DynamoDB's JSON responses use the serialiser and conversion above (other services keep moto's)."""
    from moto.core import serialize
    from moto.dynamodb import responses
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict

    if getattr(serialize.get_serializer_class("dynamodb", "json"), "__stepflow_wire__", False):
        return
    current = serialize.get_serializer_class("dynamodb", "json")
    # The direct routes assume moto's plain JSON serialiser, and a LimitedSizeDict (an item's attributes)
    # that moto's dynamo_to_dict walks as a dict (it would call a to_json first).
    if current is not serialize.SERIALIZERS.get("json") or not callable(getattr(responses, "dynamo_to_dict", None)) \
            or hasattr(LimitedSizeDict, "to_json"):
        raise RuntimeError("moto changed how DynamoDB responses are built; re-check stepflow_local/moto_attribute_values.py")
    ORIGINALS["serializer"], ORIGINALS["dynamo_to_dict"] = current, responses.dynamo_to_dict
    serialize.SERVICE_SPECIFIC_SERIALIZERS.setdefault("dynamodb", {})["json"] = _serialiser(current)
    responses.dynamo_to_dict = _to_dict(responses.dynamo_to_dict, DynamoType, LimitedSizeDict)


def patched() -> bool:
    from moto.core import serialize
    from moto.dynamodb import responses

    return bool(getattr(serialize.get_serializer_class("dynamodb", "json"), "__stepflow_wire__", False)
                and getattr(responses.dynamo_to_dict, "__stepflow_wire__", False))
