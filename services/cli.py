"""`cpi`: one command for the whole pipeline. Each service adds its own subcommands in its cli.py."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from services.common.errors import CpiError

WORKERS = ("intake", "sanitiser", "router", "notifier")
# Modules that add subcommands with `register(subparsers)`. Listed, not discovered: explicit is plain.
COMMAND_MODULES = (
    "services.common.commands",
    "services.common.dlq",
    "services.intake.cli",
    "services.sanitiser.cli",
    "services.sanitiser.held_cli",
    "services.console.cli",
    "services.router.cli",
    "services.up",
    "services.keys_cli",
    "services.bench",
)


def read_lines(path: str) -> Iterator[tuple[int, str]]:
    """Numbered non-empty lines of a JSON Lines file, or of stdin when `path` is '-'."""
    handle: IO[str] = sys.stdin if path == "-" else open(path, encoding="utf-8")
    try:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line
    finally:
        if handle is not sys.stdin:
            handle.close()


def write_jsonl(records: Iterable[dict[str, Any] | str], out: IO[str] = sys.stdout) -> None:
    for record in records:
        out.write(record if isinstance(record, str) else json.dumps(record, ensure_ascii=False))
        out.write("\n")
    out.flush()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cpi", description="Community Partnership Information pipeline")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing dependency, not a service without commands yet
                raise
            continue
        register: Callable[[Any], None] = module.register
        register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from services.common.files import private_dir, private_process
    from services.common.logging import configure_logging
    from services.common.settings import PlatformSettings

    private_process()  # whatever this process writes under the data dir is its user's alone
    settings = PlatformSettings()
    if settings.data_dir.is_dir():
        private_dir(settings.data_dir)  # tighten a data dir an earlier version left open
    # Logs go to stderr from the first line on: stdout carries JSON Lines that other commands read.
    configure_logging(settings.log_level, settings.log_format)
    args = build_parser().parse_args(argv)
    try:
        result: int | None = args.run(args)
    except CpiError as exc:
        print(f"cpi: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result or 0


if __name__ == "__main__":
    sys.exit(main())
