"""Where the CLI's settings come from: flags, then STEPFLOW_* variables, then the config file, then defaults."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"  # where `stepflow server` (and `make run`) listens
DEFAULT_API_PREFIX = "/workflows"  # the service's STEPFLOW_API_PREFIX default
OUTPUTS = ("table", "json", "yaml")
# Setting -> the variable it can come from. STEPFLOW_API_PREFIX is also what the service reads.
ENV = {"endpoint": "STEPFLOW_ENDPOINT", "token": "STEPFLOW_TOKEN", "output": "STEPFLOW_OUTPUT",
       "api_prefix": "STEPFLOW_API_PREFIX"}
CONFIG_ENV = "STEPFLOW_CONFIG"
PROFILE_ENV = "STEPFLOW_PROFILE"


class ConfigError(Exception):
    """A setting or the config file cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Settings:
    endpoint: str = DEFAULT_ENDPOINT
    api_prefix: str = DEFAULT_API_PREFIX
    token: str | None = None
    output: str = "table"
    sources: dict[str, str] = field(default_factory=dict)  # setting -> where its value came from

    @property
    def api_base(self) -> str:
        """The URL the API's paths hang from. An endpoint that already ends with the prefix is taken as is."""
        endpoint = self.endpoint.rstrip("/")
        prefix = "/" + self.api_prefix.strip("/") if self.api_prefix.strip("/") else ""
        if prefix and urlsplit(endpoint).path.rstrip("/").endswith(prefix):
            return endpoint
        return endpoint + prefix


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]).expanduser() if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "stepflow" / "config.toml"


def read_file(path: Path) -> dict[str, Any]:
    """The config file's table, or {} when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the config file {path} is not valid TOML: {exc}") from None
    return data


def _section(data: Mapping[str, Any], where: str) -> dict[str, str]:
    found = {}
    for key, value in data.items():
        if key == "profiles" and where == "":
            continue
        if key not in ENV:
            raise ConfigError(f"unknown setting '{key}' in the config file{where}; settings: {', '.join(ENV)}")
        if not isinstance(value, str):
            raise ConfigError(f"'{key}' in the config file{where} must be a string")
        found[key] = value
    return found


def resolve(flags: Mapping[str, str | None], env: Mapping[str, str] | None = None,
            profile: str | None = None, path: Path | None = None) -> Settings:
    """Each setting from the first source that has it: flag, environment, the profile's section, the file's top."""
    env = os.environ if env is None else env
    path = path or config_path(env)
    data = read_file(path)
    profile = profile or env.get(PROFILE_ENV) or None
    layers: list[tuple[str, dict[str, str]]] = [
        ("flag", {k: v for k, v in flags.items() if v}),
        ("environment", {k: env[var] for k, var in ENV.items() if env.get(var)}),
    ]
    if profile:
        profiles = data.get("profiles") or {}
        if not isinstance(profiles, dict) or profile not in profiles or not isinstance(profiles[profile], dict):
            known = ", ".join(sorted(profiles)) if isinstance(profiles, dict) and profiles else "none"
            raise ConfigError(f"no profile '{profile}' in {path} (profiles: {known})")
        layers.append((f"{path} [profiles.{profile}]", _section(profiles[profile], f" [profiles.{profile}]")))
    layers.append((str(path), _section(data, "")))
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    for source, layer in layers:
        for key, value in layer.items():
            if key not in values:
                values[key], sources[key] = value, source
    output = values.get("output", "table")
    if output not in OUTPUTS:
        raise ConfigError(f"output '{output}' (from {sources.get('output')}) must be one of {', '.join(OUTPUTS)}")
    endpoint = values.get("endpoint", DEFAULT_ENDPOINT)
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"endpoint '{endpoint}' (from {sources.get('endpoint')}) must be an http:// or https:// URL")
    return Settings(endpoint=endpoint, api_prefix=values.get("api_prefix", DEFAULT_API_PREFIX),
                    token=values.get("token"), output=output, sources=sources)
