"""What every command shares: the connection options, the resolved settings, the client, and how failures exit."""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

from stepflow_cli import config, output
from stepflow_cli.client import ApiError, Client, Unreachable

F = TypeVar("F", bound=Callable[..., Any])
OVERRIDES = "stepflow.overrides"
STATE = "stepflow.state"
DEBUG_ENV = "STEPFLOW_DEBUG"


@dataclass
class State:
    settings: config.Settings
    client: Client
    out: output.Output

    @property
    def has_token(self) -> bool:
        return bool(self.settings.token)


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    # Options may be given before or after the command name (`stepflow -o json ls`, `stepflow ls -o json`);
    # the later one wins.
    if value is not None and param.name:
        ctx.find_root().meta.setdefault(OVERRIDES, {})[param.name] = value
    return value


def _option(*names: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(*names, callback=_remember, expose_value=False, is_eager=True, **kwargs)


CONNECTION_OPTIONS = (
    _option("--endpoint", metavar="URL", help="The service's URL [STEPFLOW_ENDPOINT; default http://127.0.0.1:8000]."),
    _option("--token", metavar="JWT", help="Bearer token to send [STEPFLOW_TOKEN]."),
    _option("-o", "--output", type=click.Choice(config.OUTPUTS), help="table (default), json or yaml [STEPFLOW_OUTPUT]."),
)
ROOT_OPTIONS = (
    _option("--api-prefix", metavar="PATH", help="The API's path prefix [STEPFLOW_API_PREFIX; default /workflows]."),
    _option("--profile", metavar="NAME", help="A [profiles.NAME] section of the config file [STEPFLOW_PROFILE]."),
    _option("--config", "config_file", metavar="PATH", type=click.Path(dir_okay=False, path_type=Path),
            help="The config file [STEPFLOW_CONFIG; default ~/.config/stepflow/config.toml]."),
)


def connection(f: F) -> F:
    """The options every API command takes, also after the command name."""
    for option in reversed(CONNECTION_OPTIONS):
        f = option(f)
    return f


def output_option(f: F) -> F:
    """Only -o/--output: for commands that call no API."""
    return CONNECTION_OPTIONS[-1](f)


def state(ctx: click.Context | None = None) -> State:
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    if STATE not in root.meta:
        given = dict(root.meta.get(OVERRIDES, {}))
        path = given.pop("config_file", None)
        profile = given.pop("profile", None)
        settings = config.resolve({k: v for k, v in given.items() if isinstance(v, str)}, profile=profile, path=path)
        root.meta[STATE] = State(settings, Client(settings.api_base, settings.token), output.Output(settings.output))
    return root.meta[STATE]


def pass_state(f: F) -> F:
    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return f(state(), *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def hint_for(exc: ApiError) -> str | None:
    if exc.status == 401:
        return ("Send a token with --token, STEPFLOW_TOKEN or the config file; on a local service "
                "`stepflow token --role editor` makes one.")
    # What the API answers for a path no route serves (404 "no route matches ..."; a gateway without the
    # catch-all route: 403 "Missing Authentication Token"), or an answer that is not Stepflow's at all.
    unrouted = (exc.status == 404 and str(exc.message).startswith("no route matches")
                or exc.status == 403 and exc.message == "Missing Authentication Token")
    if unrouted or not isinstance(exc.body, dict):
        return "No Stepflow route answered: check --endpoint and --api-prefix."
    return None


class StepflowGroup(click.Group):
    """Turns every failure into a message and an exit code: never a traceback (STEPFLOW_DEBUG=1 shows one)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except ApiError as exc:
            output.error(exc.message, exc.issues, hint_for(exc))
            ctx.exit(output.FAILED)
        except Unreachable as exc:
            output.error(str(exc), hint="Is it running? `stepflow server` starts one on this machine; --endpoint "
                                        "or STEPFLOW_ENDPOINT points elsewhere.")
            ctx.exit(output.UNREACHABLE)
        except config.ConfigError as exc:
            output.error(str(exc))
            ctx.exit(output.USAGE)
        except KeyboardInterrupt:
            output.error("interrupted")
            ctx.exit(130)
        except Exception as exc:  # noqa: BLE001 - the edge of the program: a message, not a traceback
            if os.environ.get(DEBUG_ENV):
                traceback.print_exc()
            output.error(f"unexpected {type(exc).__name__} in the stepflow command: {exc} "
                         f"({DEBUG_ENV}=1 shows where)")
            ctx.exit(output.FAILED)


def read_data(value: str, what: str) -> Any:
    """A JSON value given inline, or @FILE (JSON, or YAML for .yaml/.yml), or @- for stdin."""
    if value.startswith("@"):
        name = value[1:]
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot read {name}: {exc.strerror}", param_hint=what) from None
        if name.endswith((".yaml", ".yml")):
            try:
                return yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise click.BadParameter(f"{name} is not valid YAML: {exc}", param_hint=what) from None
        source = name
    else:
        text, source = value, "the value"
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"{source} is not valid JSON ({exc}); give JSON or @file", param_hint=what) from None


def read_object(value: str | None, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    data = read_data(value, what)
    if not isinstance(data, dict):
        raise click.BadParameter("must be a JSON object ({...})", param_hint=what)
    return data
