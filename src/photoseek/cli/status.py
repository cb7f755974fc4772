"""`photoseek status`: what the catalog holds and which files failed; `photoseek calibrate`: fit search now."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape

from photoseek.cli.common import (
    DbOption,
    DeviceOption,
    JsonOption,
    TextModelOption,
    command_app,
    out,
    print_json,
    user_errors,
)

app = command_app()

if TYPE_CHECKING:
    from photoseek.api import Status


@app.command()
def status(db: DbOption = None, device: DeviceOption = "auto", as_json: JsonOption = False) -> None:
    """Show what is indexed: folders and single files, image count, model, where it runs, size, failed files,
    and which index answers searches and why (a faiss graph's search depth and measured recall@10)."""
    from photoseek.api import ImageIndex

    with user_errors(), ImageIndex(db, create=False, device=device) as idx:
        info = idx.status()
        if as_json:
            print_json(info.to_dict())
        else:
            _print_status(info)


@app.command()
def calibrate(
    db: DbOption = None, device: DeviceOption = "auto", text_model: TextModelOption = None, as_json: JsonOption = False
) -> None:
    """Fit each search signal (CLIP, the text model) on this library's photos that carry text, now.

    Searches do this by themselves once the library, its texts or a model changed enough; the fit says
    how well each signal tells a photo's own text from others' (AUC), and a signal that cannot gets
    weight 0. `photoseek status` shows the result later.
    """
    from photoseek.api import ImageIndex

    with user_errors(), ImageIndex(db, create=False, device=device, text_model=text_model) as idx:
        lines = idx.calibrate()
        if as_json:
            print_json({"calibration": lines})
        else:
            for line in lines:
                out.print(escape(line), highlight=False)


def _print_status(info: Status) -> None:
    from photoseek.store.catalog import escape_undecodable

    out.print(f"Catalog: {escape(info.db_path)} ({info.db_bytes / 1e6:.1f} MB)")
    source = f" from {escape(info.model_path)}" if info.model_path else ""
    out.print(f"Model:   {info.model_id or '(none yet)'}{source}")
    out.print(f"Runs on: {', '.join(info.providers)} (ONNX Runtime; choose with --device)")
    out.print(f"Text:    {escape(info.text_model or 'the default text model')}")
    out.print(f"Images:  {info.image_count}")
    out.print(f"Index:   {_index_line(info)}", highlight=False)
    for n, line in enumerate(info.calibration):
        out.print(("Search:  " if n == 0 else "         ") + escape(line), highlight=False)
    folders = escape(", ".join(map(escape_undecodable, info.folders)))
    out.print("Folders: " + (folders or ("(none)" if info.files else "(none yet: photoseek index FOLDER)")))
    if info.files:
        out.print("Files:   " + escape(", ".join(map(escape_undecodable, info.files))))
    out.print(f"Places:  {info.located} with a location, {info.placed} of them named")
    if info.places_hint:
        out.print(f"         ({escape(info.places_hint)})")
    if info.failures:
        out.print(f"Failed files ({len(info.failures)}):")
        for failure in info.failures:
            out.print(f"  {escape(escape_undecodable(failure.path))}: {escape(failure.reason)}", highlight=False)




def _index_line(info: Status) -> str:
    """The backend, what really searches when that differs (a faiss catalog may scan), and why."""
    search = info.vector_search
    if search is None:
        return info.vector_index
    kind = "" if search.kind == search.backend else f": {search.kind}"
    return f"{search.backend}{kind} ({escape(search.reason)})"
