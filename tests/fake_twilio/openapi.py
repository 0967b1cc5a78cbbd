"""Twilio's own OpenAPI description of Api v2010, used to keep the fake honest.

`twilio_api_v2010.json` beside this file is the unchanged document from twilio/twilio-oai (MIT,
see LICENSE.twilio-oai). The fake checks every request against it (path, method, parameters
and their types) and every response it shapes against the response schema, so that a test
that passes against the fake would pass against Twilio.

The document declares array fields (StatusCallbackEvent) without a form `encoding`, and some
fields whose allowed values are only written in their descriptions (MachineDetection). Both
are handled here on purpose: repeated form fields are the array, and `DOCUMENTED_VALUES`
holds the values the descriptions name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).with_name("twilio_api_v2010.json")

# Values Twilio's descriptions name for fields the document types only as "string"; a value
# outside them is refused by Twilio (checked against Twilio's Call resource documentation).
DOCUMENTED_VALUES: dict[str, frozenset[str]] = {
    "MachineDetection": frozenset({"Enable", "DetectMessageEnd"}),
    "StatusCallbackEvent": frozenset({"initiated", "ringing", "answered", "completed"}),
    "Trim": frozenset({"trim-silence", "do-not-trim"}),
    "RecordingChannels": frozenset({"mono", "dual"}),
    "RecordingTrack": frozenset({"inbound", "outbound", "both"}),
}
# AsyncAmd is a string holding a boolean; the SDK sends Python's True as "True".
BOOLEAN_STRINGS = frozenset({"true", "false"})
BOOLEAN_STRING_FIELDS = frozenset({"AsyncAmd"})
# What Twilio's date filters (StartTime, EndTime) take: a date, or a date and time in UTC.
DATE_OR_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?)?$"
)


@dataclass(frozen=True)
class Operation:
    """One method of one path of the document, with what its request may carry."""

    path: str  # the document's template, e.g. /2010-04-01/Accounts/{AccountSid}/Calls.json
    method: str  # lower case
    operation_id: str
    path_params: dict[str, dict[str, Any]]  # name -> schema
    query_params: dict[str, dict[str, Any]]  # name -> schema
    form_schema: dict[str, Any] | None  # the x-www-form-urlencoded body schema, if any
    response_schema: dict[str, Any] | None  # the schema of the documented success answer
    success_status: int


class Spec:
    """The loaded document: find the operation of a request, check parameters and bodies."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self._routes = [
            (_path_regex(template), template, methods)
            for template, methods in document["paths"].items()
        ]
        # Literal paths first, then fewer placeholders: /Accounts/{Sid}.json must not
        # swallow /Accounts/{AccountSid}/Calls.json (the regex of each is anchored anyway).
        self._routes.sort(key=lambda route: route[1].count("{"))

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Follow a local $ref (#/components/...) to the schema it names."""
        while "$ref" in schema:
            node: Any = self.document
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def schema(self, name: str) -> dict[str, Any]:
        """A component schema by name, e.g. 'api.v2010.account.call'."""
        return self.document["components"]["schemas"][name]

    def match(self, method: str, path: str) -> tuple[Operation | None, dict[str, str], bool]:
        """(operation, path parameters, path known) for a request.

        The operation is None when the path is unknown (path known False) or the method is not
        allowed on it (path known True).
        """
        for regex, template, methods in self._routes:
            found = regex.fullmatch(path)
            if found:
                operation = self._operation(template, method.lower(), methods)
                return operation, found.groupdict(), True
        return None, {}, False

    def _operation(self, template: str, method: str, methods: dict[str, Any]) -> Operation | None:
        raw = methods.get(method)
        if raw is None or method not in ("get", "post", "delete", "put"):
            return None
        params = raw.get("parameters", [])
        body = raw.get("requestBody", {}).get("content", {})
        form = body.get("application/x-www-form-urlencoded", {}).get("schema")
        status, response = _success_response(raw["responses"])
        return Operation(
            path=template,
            method=method,
            operation_id=raw.get("operationId", ""),
            path_params={p["name"]: p["schema"] for p in params if p["in"] == "path"},
            query_params={p["name"]: p["schema"] for p in params if p["in"] == "query"},
            form_schema=self.resolve(form) if form else None,
            response_schema=response,
            success_status=status,
        )

    def check_fields(
        self,
        fields: dict[str, list[str]],
        declared: dict[str, dict[str, Any]],
        required: frozenset[str] = frozenset(),
    ) -> list[str]:
        """Problems with form or query fields (name -> values in arrival order); [] if none."""
        problems = [f"missing required field {name}" for name in sorted(required - set(fields))]
        for name, values in fields.items():
            schema = declared.get(name)
            if schema is None:
                problems.append(f"unknown field {name}")
                continue
            problems.extend(self._check_field(name, values, self.resolve(schema)))
        return problems

    def _check_field(self, name: str, values: list[str], schema: dict[str, Any]) -> list[str]:
        if schema.get("type") == "array":
            item = self.resolve(schema.get("items", {}))
            return [p for value in values for p in self._check_scalar(name, value, item)]
        if len(values) > 1:
            return [f"field {name} given {len(values)} times but it is not a list"]
        return self._check_scalar(name, values[0], schema)

    def _check_scalar(self, name: str, value: str, schema: dict[str, Any]) -> list[str]:
        kind = schema.get("type", "string")
        if kind == "integer":
            if not re.fullmatch(r"-?\d+", value):
                return [f"field {name}={value!r} is not an integer"]
            number = int(value)
            if "minimum" in schema and number < schema["minimum"]:
                return [f"field {name}={value} is below {schema['minimum']}"]
            if "maximum" in schema and number > schema["maximum"]:
                return [f"field {name}={value} is above {schema['maximum']}"]
            return []
        if kind == "boolean" and value.lower() not in BOOLEAN_STRINGS:
            return [f"field {name}={value!r} is not true or false"]
        return _check_string(name, value, schema)


def _check_string(name: str, value: str, schema: dict[str, Any]) -> list[str]:
    problems = []
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"field {name}={value!r} is not one of {', '.join(schema['enum'])}")
    if name in DOCUMENTED_VALUES and value not in DOCUMENTED_VALUES[name]:
        allowed = ", ".join(sorted(DOCUMENTED_VALUES[name]))
        problems.append(f"field {name}={value!r} is not one of {allowed}")
    if name in BOOLEAN_STRING_FIELDS and value.lower() not in BOOLEAN_STRINGS:
        problems.append(f"field {name}={value!r} is not true or false")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        problems.append(f"field {name}={value!r} does not match {schema['pattern']}")
    if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1 << 30):
        problems.append(f"field {name}={value!r} has a length outside the allowed range")
    if schema.get("format") == "date-time" and not DATE_OR_DATETIME.match(value):
        problems.append(f"field {name}={value!r} is not a date (YYYY-MM-DD[THH:MM:SSZ])")
    if schema.get("format") == "uri" and not re.match(r"^https?://[^/\s_]+", value):
        problems.append(f"field {name}={value!r} is not an absolute http(s) URL")
    return problems


def schema_problems(spec: Spec, schema: dict[str, Any], value: Any, where: str = "$") -> list[str]:
    """Where `value` (decoded JSON) departs from an OpenAPI 3.0 `schema`; [] when it fits.

    Checks type, nullable, enum, pattern, RFC 2822 date formats, and that objects with declared
    properties carry no property the document does not declare.
    """
    schema = spec.resolve(schema)
    if value is None:
        return [] if schema.get("nullable") else [f"{where} is null but not nullable"]
    kind = schema.get("type")
    checker = _TYPE_CHECKS.get(kind)
    if checker is not None and not checker(value):
        return [f"{where} should be {kind}, got {type(value).__name__} {value!r}"]
    if kind == "object":
        return _object_problems(spec, schema, value, where)
    if kind == "array":
        item = schema.get("items", {})
        return [
            p for i, v in enumerate(value) for p in schema_problems(spec, item, v, f"{where}[{i}]")
        ]
    if kind == "string":
        return _string_value_problems(schema, value, where)
    return []


def _object_problems(spec: Spec, schema: dict[str, Any], value: Any, where: str) -> list[str]:
    declared = schema.get("properties")
    if not declared:
        return []
    problems = [f"{where}.{key} is not in the schema" for key in value if key not in declared]
    for key, sub in declared.items():
        if key in value:
            problems.extend(schema_problems(spec, sub, value[key], f"{where}.{key}"))
    return problems


def _string_value_problems(schema: dict[str, Any], value: str, where: str) -> list[str]:
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}={value!r} is not one of {schema['enum']}"]
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return [f"{where}={value!r} does not match {schema['pattern']}"]
    if schema.get("format") == "date-time-rfc-2822":
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            parsed = None
        if parsed is None or parsed.utcoffset() is None:
            return [f"{where}={value!r} is not an RFC 2822 date with a zone"]
    return []


_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def _path_regex(template: str) -> re.Pattern[str]:
    pattern = re.escape(template)
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+?)", pattern)
    return re.compile(pattern)


def _success_response(responses: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    for status in sorted(responses):
        if status.startswith("2"):
            content = responses[status].get("content", {}).get("application/json", {})
            return int(status), content.get("schema")
    return 200, None


@lru_cache(maxsize=1)
def load_spec() -> Spec:
    """The document, parsed once per process."""
    return Spec(json.loads(SPEC_PATH.read_text(encoding="utf-8")))
