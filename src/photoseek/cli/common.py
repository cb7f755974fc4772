"""What every command shares: the lazy command group, consoles, common options and error handling."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, NoReturn, Optional

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from photoseek.errors import BadInput, Conflict, NotFound, PhotoseekError, Unavailable

if TYPE_CHECKING:  # checked against the typer we pin up to (<0.29), which carries its own click
    from typer import _click as click
    from typer._click.globals import get_current_context
else:
    try:  # typer 0.26+ carries its own copy of click; earlier ones use click itself
        from typer import _click as click
        from typer._click.globals import get_current_context
    except ImportError:
        import click
        from click import get_current_context

EXIT_STATUSES: tuple[tuple[type[PhotoseekError], int], ...] = (
    (BadInput, 2), (NotFound, 3), (Unavailable, 4), (Conflict, 5),
)
"""The one place our error kinds become exit statuses; any other error of ours is 1. BadInput shares 2
with the usage errors Typer reports (a missing argument, an unknown option, a bad value)."""

EXIT_STATUS_HELP = (
    "Exit status: 0 done; 1 error; 2 bad input (usage, or a value that cannot work); 3 not found (image, "
    "file, folder, catalog); 4 unavailable (a model, extra or service that cannot load or answer); 5 conflict "
    "(catalog busy, built with another model, or empty); 130 interrupted. Under --json every error is one "
    "object on stdout: {\"error\": CODE, \"detail\": MESSAGE}."
)

_JSON_ASKED = "photoseek.json"
"""Context meta key: `--json` is among the command line's words (meta is shared by nested contexts)."""


class JsonErrorsGroup(TyperGroup):
    """A usage error (a missing argument, an unknown option, a bad value) is one line like every other
    error: on stderr, or under `--json` a JSON error object on stdout (see `fail`)."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        asked = "--json" in args or bool(parent and parent.meta.get(_JSON_ASKED))
        with _usage_errors_as_json(asked):
            ctx = super().make_context(info_name, args, parent, **extra)
        ctx.meta[_JSON_ASKED] = asked
        return ctx

    def invoke(self, ctx: click.Context) -> Any:
        with _usage_errors_as_json(bool(ctx.meta.get(_JSON_ASKED))):
            return super().invoke(ctx)


@contextmanager
def _usage_errors_as_json(asked: bool) -> Iterator[None]:
    try:
        yield
    except click.ClickException as exc:
        if exc.__class__.__name__ == "NoArgsIsHelpError":
            raise
        if asked:
            print_json({"error": "usage", "detail": _usage_detail(exc)}, indent=None)
        else:
            err.print(f"Error: {escape(_usage_detail(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


def _usage_detail(exc: click.ClickException) -> str:
    """Click's message with the command it is about: "photoseek search: No such option: --nope"."""
    ctx = getattr(exc, "ctx", None)
    message = " ".join(exc.format_message().split())
    return f"{ctx.command_path}: {message.rstrip('.')}. See {ctx.command_path} --help." if ctx else message


class LazyCommandsGroup(JsonErrorsGroup):
    """The `photoseek` group: knows each command's name, module and one-line help from a static table
    (`table`) and imports and builds only the command that runs, so a small command does not pay for
    importing and building all the others. `photoseek --help` lists the table's one-liners."""

    table: ClassVar[Mapping[str, tuple[str, str]]] = {}
    """Command name -> (module under photoseek.cli, first paragraph of its help)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listing = False
        for name, (_, summary) in self.table.items():  # stand-ins: enough to list and to suggest a name
            self.commands.setdefault(name, _Summary(name, help=summary))

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        if not args or "--help" in args:  # help is about to be shown: the rich renderer loads only then
            uncut_option_names()
        return super().make_context(info_name, args, parent, **extra)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = self.commands.get(cmd_name)
        if isinstance(command, _Summary) and not self._listing:
            command = self.commands[cmd_name] = command_of(self.table[cmd_name][0], cmd_name)
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True  # the command list needs names and one-liners only
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


_TYPE_COLUMN_WIDTH = 14
"""The widest an option's type column gets ('<float range>'); a range ('[x>=1]') folds under it."""


def uncut_option_names() -> None:
    """Make `--help` show every option name, env var and flag whole at any width down to 80 columns.

    Typer builds its option tables with Rich's default columns, which all shrink alike on a narrow
    terminal and cut words with '…' ('--max-upload-megapixe…', '$PHOTOSEEK_QDRANT_API_K…'), so they
    cannot be read or copied. Its tables take no column settings, so the `Table` its help renderer
    makes is swapped for one that lays out option rows (..., names, type, help) itself: the names (and
    the required mark) at full width, the type folded narrow, the help text given the rest (a word
    longer than that folds, never cut). Called only when help is shown: Rich's tables load only then."""
    from rich.table import Column, Table
    from typer import rich_utils

    class OptionsTable(Table):
        def add_row(self, *cells: Any, **options: Any) -> None:
            if not self.columns and len(cells) >= 2:  # an options table: Typer adds no columns of its own
                names = [Column(no_wrap=True) for _ in cells[:-2]]
                for column in (*names, Column(max_width=_TYPE_COLUMN_WIDTH, overflow="fold"),
                               Column(ratio=1, overflow="fold")):
                    column._index = len(self.columns)
                    self.columns.append(column)
            super().add_row(*cells, **options)

    if rich_utils.Table is Table:
        setattr(rich_utils, "Table", OptionsTable)  # noqa: B010 (a module's global, swapped once)


class _Summary(TyperCommand):
    """A command's name and one-line help, standing in for it in `photoseek --help` until it runs."""


def command_app() -> typer.Typer:
    """The Typer a command module registers its commands on (`photoseek.cli` builds them on demand)."""
    return typer.Typer(rich_markup_mode="markdown", pretty_exceptions_enable=False)


def command_of(module: str, name: str) -> click.Command:
    """Import `photoseek.cli.MODULE` and build its command (or command group) `name`."""
    from importlib import import_module

    from typer.main import get_group

    return get_group(import_module(f"photoseek.cli.{module}").app).commands[name]


out = Console()
err = Console(stderr=True, soft_wrap=True)


class _NoticeHandler(logging.Handler):
    """Prints the library's warnings (e.g. a missing extra) as one 'Note:' line on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"[yellow]Note:[/] {escape(record.getMessage())}", highlight=False)


_library_log = logging.getLogger("photoseek")
if not any(isinstance(h, _NoticeHandler) for h in _library_log.handlers):
    _library_log.addHandler(_NoticeHandler(logging.WARNING))


DbOption = Annotated[
    Optional[Path],
    typer.Option("--db", help="Catalog file. Default: $PHOTOSEEK_DB, else a per-user data folder."),
]
ModelOption = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="Named model, e.g. ViT-B-32__openai (`photoseek models list`)."),
]
ModelPathOption = Annotated[
    Optional[Path],
    typer.Option(
        "--model-path", help="Local model directory (see docs/models.md); the catalog remembers it.", file_okay=False
    ),
]
TextModelOption = Annotated[
    Optional[str],
    typer.Option(
        "--text-model",
        help="sentence-transformers folder or Hub id (default all-MiniLM-L6-v2); once it loads, the catalog "
        "remembers it.",
    ),
]
CaptionModelOption = Annotated[
    Optional[str],
    typer.Option(
        "--caption-model",
        help="Captioning model: Hub id or folder (Florence-2 or BLIP; default Florence-2-base), or openai:MODEL "
        "for any vision-language model behind an OpenAI-compatible API (Ollama, vLLM, llama.cpp, LM Studio, hosted).",
    ),
]
CaptionPromptOption = Annotated[
    Optional[str],
    typer.Option(
        "--caption-prompt",
        help="Florence-2: more-detailed, detailed (default) or brief. BLIP: text the caption starts with. "
        "openai:MODEL: brief, detailed (default), keywords, or your own prompt text.",
    ),
]
BatchSizeOption = Annotated[int, typer.Option(min=1, help="Images per model call.")]
IncludeHiddenOption = Annotated[
    bool, typer.Option("--include-hidden", help="Also index dot-folders and dot-files.")
]
OcrOption = Annotated[bool, typer.Option("--ocr", help="Read text inside the images (RapidOCR).")]
CaptionsOption = Annotated[
    bool, typer.Option("--captions", help="Describe images with a captioning model (implied by --caption-model).")
]
ObjectsOption = Annotated[bool, typer.Option("--objects", help="Count objects with a detector.")]
DetectorOption = Annotated[
    Optional[str], typer.Option("--detector", help="Object detector: Hub id or folder (default DETR ResNet-50).")
]
CaptionEndpointOption = Annotated[
    Optional[str],
    typer.Option(
        "--caption-endpoint",
        help="Base URL of the API for openai:MODEL, e.g. http://localhost:11434/v1 (Ollama). "
        "Default: $OPENAI_BASE_URL, else api.openai.com. Key from $OPENAI_API_KEY (local servers need none).",
    ),
]
CaptionWorkersOption = Annotated[
    int, typer.Option("--caption-workers", min=1, max=64, help="openai:MODEL: requests in flight at once.")
]
CaptionTimeoutOption = Annotated[
    float, typer.Option("--caption-timeout", min=1, help="openai:MODEL: seconds to wait for one caption.")
]
TopicsFileOption = Annotated[
    Optional[Path],
    typer.Option(
        "--topics-file", dir_okay=False,
        help="Your own topic list (TOML, or one `name: description` per line); becomes the catalog's; "
        "implies --topics.",
    ),
]
DeviceOption = Annotated[
    str,
    typer.Option(
        "--device",
        help="Where every model runs (CLIP, text model, OCR, captioner, detector): auto (a GPU when there is one, "
        "else the CPU), cpu, cuda (the first GPU), cuda:1 (the second), or coreml (Apple). CUDA needs "
        "`photoseek[gpu]` (README: GPU).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
InOption = Annotated[Optional[Path], typer.Option("--in", help="Only images in this folder (and below).")]


def json_option(shape: str) -> Any:
    """`--json` for a command whose JSON is worth describing in its help: `shape` says what it prints."""
    return typer.Option("--json", help=f"JSON on stdout: {shape}")
TopKOption = Annotated[int, typer.Option("--top", "-k", min=1, help="How many results.")]
MinScoreOption = Annotated[
    Optional[float],
    typer.Option("--min-score", help="Hide results below this: cosine in clip mode, else the fused score 0..1."),
]


@contextmanager
def user_errors() -> Iterator[None]:
    """Print our errors as one clear line (a JSON error object under --json) and exit non-zero,
    without a traceback: the one place where errors become exit statuses."""
    from photoseek.store.catalog import READ_ONLY_ADVICE, is_read_only_error

    try:
        yield
    except PhotoseekError as exc:
        fail(str(exc), status=exit_status(exc), kind=exc.code)
    except sqlite3.OperationalError as exc:  # a write to a catalog opened read-only (search needs none)
        if not is_read_only_error(exc):
            raise
        fail(READ_ONLY_ADVICE, kind="read_only")


def exit_status(exc: PhotoseekError) -> int:
    """The exit status for one of our errors (EXIT_STATUSES; 1 for a plain PhotoseekError)."""
    return next((status for kind, status in EXIT_STATUSES if isinstance(exc, kind)), 1)


@contextmanager
def said_on_interrupt(consequence: str) -> Iterator[None]:
    """Ctrl+C ends the command with one line saying what it leaves behind, and exit status 130."""
    try:
        yield
    except KeyboardInterrupt:
        stop_interrupted(f"Interrupted: {consequence}")


def stop_interrupted(message: str) -> NoReturn:
    """End an interrupted command with exit status 130 and one line saying what it leaves behind
    (`{"error": "interrupted", "detail": message}` on stdout under --json)."""
    if json_wanted():
        print_json({"error": "interrupted", "detail": message}, indent=None)
    else:
        err.print(f"[yellow]{escape(message)}[/]", highlight=False)
    raise typer.Exit(130) from None


def fail(message: str, status: int = 1, kind: str = "error") -> NoReturn:
    """End the command: `message` as one line on stderr, or under --json as
    `{"error": kind, "detail": message}` on stdout (one line), with exit status `status`."""
    print_error(message, kind)
    raise typer.Exit(status)


def print_error(message: str, kind: str = "error") -> None:
    """One error line: on stderr, or as a JSON error object on stdout under --json."""
    if json_wanted():
        print_json({"error": kind, "detail": message}, indent=None)
    else:
        err.print(f"[bold red]Error:[/] {escape(message)}", highlight=False)


def json_wanted() -> bool:
    """Whether the running command was given --json (its own option, or the word on its command line)."""
    ctx = get_current_context(silent=True)
    if ctx is None:
        return False
    if "as_json" in ctx.params:
        return bool(ctx.params["as_json"])
    return bool(ctx.meta.get(_JSON_ASKED))


def print_json(payload: object, indent: int | None = 2) -> None:
    """JSON on stdout, always valid UTF-8: a file name's undecodable bytes come out as \\udcNN escapes,
    which json.loads turns back into the str that os.fsencode maps to the exact bytes. `indent=None`:
    one line (JSON Lines)."""
    text = json.dumps(payload, indent=indent, ensure_ascii=False)
    print(text.encode("utf-8", "backslashreplace").decode("utf-8"), flush=True)


def parse_weights(pairs: list[str]) -> dict[str, float] | None:
    """['text=2', 'keyword=0.5'] -> {'text': 2.0, 'keyword': 0.5}."""
    weights: dict[str, float] = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise BadInput(f"Bad --weight {pair!r}: write SIGNAL=NUMBER, e.g. keyword=0.5.") from None
    return weights or None
