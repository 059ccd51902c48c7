"""What every helper's command line shares: a --debug flag and errors printed as one line."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from nixos_images import __version__
from nixos_images.errors import HelperError

if TYPE_CHECKING:
    from collections.abc import Callable

DebugOption = Annotated[
    bool, typer.Option("--debug", help="Log every command run and show tracebacks.")
]


def _show_version(ctx: typer.Context, value: bool) -> None:
    if value:
        print(f"{ctx.find_root().info_name} {__version__}")  # noqa: T201 - what was asked for
        raise typer.Exit


VersionOption = Annotated[
    bool,
    typer.Option(
        "--version", is_eager=True, callback=_show_version, help="Print the version and exit."
    ),
]

_debug = False


def new_app(help_text: str) -> typer.Typer:
    """A Typer app configured alike for every helper: no completion install, and nothing that
    needs rich (help and usage errors in plain text, plain tracebacks), which the images lack."""
    return typer.Typer(
        help=help_text,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        no_args_is_help=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


def setup(*, debug: bool) -> None:
    """Call first in every command: with --debug, log to stderr and keep tracebacks."""
    global _debug  # noqa: PLW0603 - one process, one command line
    _debug = debug
    if debug:
        # logging costs ~3 ms of start-up; without --debug its default handler already
        # prints warnings to stderr, so it is only configured when asked for.
        import logging  # noqa: PLC0415

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s", stream=sys.stderr)


def run(entry: Callable[[], object], prog: str) -> None:
    """Run a Typer app; turn domain errors into one line on stderr and their exit code."""
    try:
        entry()
    except HelperError as e:
        if _debug:
            raise
        print(f"{prog}: {e}", file=sys.stderr)  # noqa: T201 - the one line the user reads
        sys.exit(e.exit_code)
    except OSError as e:
        if _debug:
            raise
        where = f": {e.filename}" if e.filename else ""
        print(f"{prog}: {e.strerror or e}{where}", file=sys.stderr)  # noqa: T201
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
