"""Converters from public datasets to watchtower's mention format (JSON lines).

One module a dataset, each with ``convert(path, ...) -> Iterator[dict]`` yielding mentions
sorted by created_at: `airline`, `twitter15`, `twcs`, `pheme`. The data itself is not shipped;
`watchtower convert DATASET [PATH]` reads it from PATH, by default ../shared/data next to the
repository.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from watchtower.convert import airline, pheme, twcs, twitter15
from watchtower.convert._records import Record, default_data_dir, write_jsonl
from watchtower.errors import InputError

__all__ = ["add_convert_command", "airline", "pheme", "twcs", "twitter15", "write_output"]

_Converter = Callable[[Path, argparse.Namespace], Iterator[Record]]


def _airline(path: Path, _: argparse.Namespace) -> Iterator[Record]:
    records, repeated = airline.read(path)
    if repeated:  # 114 in the Kaggle file: the same tweet under another label
        print(
            f"watchtower convert: left out {repeated} row{'s' if repeated > 1 else ''} "
            "repeating an earlier row's tweet id (the first row of each id is kept)",
            file=sys.stderr,
        )
    return iter(records)


def _twitter15(path: Path, args: argparse.Namespace) -> Iterator[Record]:
    return twitter15.convert(path, horizon_minutes=args.horizon_minutes)


def _twcs(path: Path, _: argparse.Namespace) -> Iterator[Record]:
    return twcs.convert(path)


def _pheme(path: Path, _: argparse.Namespace) -> Iterator[Record]:
    return pheme.convert(path)


# name -> (folder under the shared data dir, one-line help, converter)
_DATASETS: dict[str, tuple[str, str, _Converter]] = {
    "airline": ("airline", "Twitter US Airline Sentiment (Tweets.csv)", _airline),
    "twitter15": ("twitter15", "Twitter15 propagation trees, one thread a cascade", _twitter15),
    "twcs": ("twcs", "Customer Support on Twitter reply threads (csv)", _twcs),
    "pheme": ("pheme_rumoureval2017", "PHEME/RumourEval 2017 reply threads", _pheme),
}


def add_convert_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``convert {airline,twitter15,twcs,pheme} [PATH] [-o OUT]``."""
    command = subparsers.add_parser(
        "convert",
        help="convert a public dataset to mentions (JSON lines, sorted by time)",
        description=__doc__,
    )
    datasets = command.add_subparsers(title="datasets", dest="dataset", metavar="DATASET")
    datasets.required = True
    for name, (folder, summary, _) in _DATASETS.items():
        parser = datasets.add_parser(name, help=summary, description=summary)
        parser.add_argument(
            "path",
            nargs="?",
            type=Path,
            help=f"the dataset file or folder (default: ../shared/data/{folder})",
        )
        parser.add_argument("-o", "--output", help="output file (default stdout; .gz => gzip)")
        if name == "twitter15":
            parser.add_argument(
                "--horizon-minutes",
                type=float,
                help="leave out mentions later than this after each cascade's root",
            )
        parser.set_defaults(func=_run_convert)


def _run_convert(args: argparse.Namespace) -> int:
    folder, summary, converter = _DATASETS[args.dataset]
    path: Path = args.path or default_data_dir() / folder
    if not path.exists():
        print(f"watchtower convert: no such file or folder: {path}", file=sys.stderr)
        return 2
    try:
        records = converter(path, args)
        first = next(records, None)  # before the output file is made
    except InputError as error:  # another dataset's file: a column or a time is not there
        print(f"watchtower convert: {error}", file=sys.stderr)
        return 2
    if first is None:  # another dataset's folder: none of the files this one reads
        empty = f"{path} does not look like {summary}: it gave no mentions"
        print(f"watchtower convert: {empty}", file=sys.stderr)
        return 2
    return write_output(itertools.chain([first], records), args.output)


def write_output(records: Iterable[Record], output: str | None) -> int:
    """Write records as JSON lines, report the count on stderr; return the exit code."""
    try:
        count = write_jsonl(records, output)
    except BrokenPipeError:
        # The reader stopped early (| head): not an error. Point stdout at devnull so that
        # the interpreter's final flush does not complain a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    print(f"wrote {count} mentions to {output or 'stdout'}", file=sys.stderr)
    return 0
