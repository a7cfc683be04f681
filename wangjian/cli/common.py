"""What every command shares: error reporting, exit codes, JSON output, the App."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError

from wangjian.campaign import ConfigError
from wangjian.domain.clock import AsOfError
from wangjian.ledger.db import DatabaseUnavailable

# Human output and progress go to stderr; stdout carries only the JSON object with --json.
err = Console(stderr=True)
out = Console()

EXIT_DONE, EXIT_FAILED, EXIT_PARTIAL = 0, 1, 2

F = TypeVar("F", bound=Callable[..., Any])


class InputError(Exception):
    """Input that cannot be used at all (unreadable file, wrong header): nothing was done."""


class Failure(Exception):
    """A command could not do its work; the message is the one-line reason."""


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def print_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, default=_default) + "\n")
    sys.stdout.flush()


def fail(reason: str) -> typer.Exit:
    err.print(f"[bold red]错误 error:[/] {reason}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_FAILED)


def handle_errors(fn: F) -> F:
    """Turn the known failures into a one-line reason on stderr and exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            raise fail(f"bad configuration: {exc}") from None
        except (DatabaseUnavailable, InputError, Failure, AsOfError, FileNotFoundError) as exc:
            raise fail(str(exc)) from None
        except OperationalError as exc:
            raise fail(f"database unreachable: {str(exc.orig).strip().splitlines()[0]}") from None

    return wrapper  # type: ignore[return-value]


def app_from_environment() -> Any:
    """Build the App for this command (or use the one a test or the demo installed)."""
    from wangjian import bootstrap

    return bootstrap.get_app()
