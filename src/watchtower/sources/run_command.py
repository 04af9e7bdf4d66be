"""``watchtower run --config FILE``: the daemon in the foreground (systemd runs it so)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from watchtower import logs
from watchtower.errors import ConfigError, OutputError
from watchtower.preflight import load_checked


def add_run_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("run", help="run the daemon: ingest, score, alert, until SIGTERM")
    p.add_argument("--config", type=Path, help="config file (default: built-in defaults)")
    p.add_argument(
        "--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"), type=str.upper
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from watchtower.daemon import Daemon  # noqa: PLC0415 - the daemon's imports only for `run`

    config = load_checked(args.config)  # a ConfigError is reported by main() with exit code 2
    logs.configure(args.log_level)

    async def main() -> int:
        return await Daemon(config, args.config).run()

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    """``python -m watchtower.sources.run_command --config FILE``: ``watchtower run`` itself."""
    parser = argparse.ArgumentParser(prog="watchtower")
    add_run_command(parser.add_subparsers())
    args = parser.parse_args(["run", *(sys.argv[1:] if argv is None else argv)])
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"watchtower: config error: {exc}", file=sys.stderr)
        return 2
    except OutputError as exc:  # input.dead_letter cannot be opened
        print(f"watchtower: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
