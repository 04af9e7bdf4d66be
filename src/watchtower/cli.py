"""The ``watchtower`` command: one subcommand per job, each a small function."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

from watchtower.alerting.alert import AlertTransition
from watchtower.alerting.notify_test import add_notify_test_command
from watchtower.backtest import add_backtest_command
from watchtower.config import load_config
from watchtower.convert import add_convert_command
from watchtower.deadletter import DeadLetter
from watchtower.errors import ConfigError, InputError, OutputError
from watchtower.feeder import add_feed_command
from watchtower.preflight import load_checked
from watchtower.replay import progress_stream, replay
from watchtower.silence_command import add_silence_command
from watchtower.sources.files import open_output
from watchtower.sources.run_command import add_run_command
from watchtower.synth import add_generate_command
from watchtower.wiring import build_engine


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"watchtower: config error: {exc}", file=sys.stderr)
        return 2
    except (OutputError, InputError) as exc:  # a file given that cannot be written, or read
        print(f"watchtower: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into head: not an error
        return 0
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="watchtower", description="Catch customer complaints going viral, early."
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    add_run_command(sub)
    _add_replay(sub)
    _add_check_config(sub)
    add_generate_command(sub)
    add_convert_command(sub)
    add_notify_test_command(sub)
    add_feed_command(sub)
    add_backtest_command(sub)
    add_silence_command(sub)
    return parser


def _add_replay(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("replay", help="run a file of mentions through the engine")
    p.add_argument("inputs", nargs="+", help=".jsonl or .jsonl.gz files, or - for stdin")
    p.add_argument("--config", type=Path, help="config file (default: built-in defaults)")
    p.add_argument("--alerts-out", type=Path, help="write alert transitions here as JSONL")
    p.add_argument("--dead-letter", help="write rejected records here (overrides the config)")
    p.add_argument("--quiet", action="store_true", help="no per-alert lines, summary only")
    p.set_defaults(func=_replay)


def _replay(args: argparse.Namespace) -> int:
    for path in args.inputs:  # before any work: a typo in the last of many files
        problem = _not_an_input(path)
        if problem is not None:
            print(f"watchtower: {problem}", file=sys.stderr)
            return 2
    config = load_config(args.config)
    engine = build_engine(config)
    with contextlib.ExitStack() as opened:  # an OutputError (cannot write there) is main()'s
        alerts = None
        if args.alerts_out:
            alerts = opened.enter_context(open_output(args.alerts_out, "--alerts-out"))
        setting = "--dead-letter" if args.dead_letter else "input.dead_letter"
        dead_letter = DeadLetter(args.dead_letter or config.input.dead_letter, setting)
        opened.callback(dead_letter.close)

        def sink(transition: AlertTransition) -> None:
            if not args.quiet:
                print(transition.summary_line(), flush=False)
            if alerts is not None:
                alerts.write(transition.to_json() + b"\n")

        summary = asyncio.run(replay(args.inputs, engine, sink, dead_letter, progress_stream()))
    print("--", *summary.lines(), sep="\n")
    for error in summary.unreadable:  # also on stderr, where a script or a person looks for it
        print(f"watchtower: {error}", file=sys.stderr)
    return 1 if summary.unreadable else 0


def _not_an_input(path: str) -> str | None:
    """Why ``path`` cannot be replayed at all, if it cannot (a pipe or a device can be)."""
    if path == "-":
        return None
    if not Path(path).exists():
        return f"no such file: {path}"
    if Path(path).is_dir():
        return f"{path} is a directory: give the files of mentions in it"
    return None


def _add_check_config(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check-config",
        help="validate a config file and what it names (route URLs, the dead-letter directory)",
    )
    p.add_argument("config", type=Path)
    p.set_defaults(func=_check_config)


def _check_config(args: argparse.Namespace) -> int:
    config = load_checked(args.config)  # a ConfigError is reported by main()
    levels = ", ".join(f"{lvl.name} >= {lvl.enter}" for lvl in config.levels)
    print(f"{args.config}: OK (levels: {levels}; state: {config.state.backend})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
