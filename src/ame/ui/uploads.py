"""Reading the UI's forms: bounded in size, files streamed to a temporary folder.

A browser can post any number of bytes. The body is counted as it arrives and
the request is refused, in one line, the moment it passes the cap, before it
is all read; parts are spooled to disk by Starlette's parser, never held
whole in memory. Uploaded files are then laid out under a fresh temporary
folder with their relative names checked (no absolute paths, no ``..``), so
the registry functions receive ordinary paths, and the folder is removed when
the request is done whatever happened: a refusal registers nothing.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Optional

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import FormParser, MultiPartParser
from starlette.requests import Request

from ame.errors import AmeError

DEFAULT_MAX_UPLOAD = 512 * 1024 * 1024
# Text fields (names, descriptions, tags) are small; a huge one is an attack.
MAX_FIELD_BYTES = 64 * 1024
MAX_FILES = 10_000
MAX_FIELDS = 1_000
COPY_CHUNK = 1 << 20


class UploadTooLargeError(AmeError):
    """A form's body passed the server's size cap."""


class BadFormError(AmeError):
    """A form could not be read (not a form, a bad file name...)."""


def _human(size: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size} {unit}"
        size //= 1024
    return f"{size} GiB"


async def _bounded(request: Request, cap: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > cap:
            raise UploadTooLargeError(
                f"the upload is larger than this server's limit of {_human(cap)} "
                "(ame ui --max-upload-mb); nothing was registered"
            )
        yield chunk


async def read_form(request: Request, cap: int) -> FormData:
    """The posted form, refused as soon as its body passes ``cap`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise UploadTooLargeError(
            f"the upload is larger than this server's limit of {_human(cap)} "
            "(ame ui --max-upload-mb); nothing was registered"
        )
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if kind == "multipart/form-data":
            parser = MultiPartParser(
                request.headers,
                _bounded(request, cap),
                max_files=MAX_FILES,
                max_fields=MAX_FIELDS,
                max_part_size=MAX_FIELD_BYTES,
            )
            return await parser.parse()
        if kind == "application/x-www-form-urlencoded":
            return await FormParser(request.headers, _bounded(request, cap)).parse()
    except UploadTooLargeError:
        raise
    except Exception as exc:  # the parser's own errors: a malformed body
        raise BadFormError(f"the form could not be read: {exc}") from None
    raise BadFormError(f"expected a form, got content type {kind or 'none'}")


def safe_relative(name: str) -> PurePosixPath:
    """An uploaded file's name as a relative path, refusing absolute ones and ``..``.

    Browsers send a bare file name, or ``folder/sub/file`` for a picked folder.
    """
    text = name.replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if text.startswith("/") or not parts or ".." in parts or ":" in parts[0]:
        raise BadFormError(f"refusing the uploaded file name {name!r}")
    return PurePosixPath(*parts)


def uploads(form: FormData, field: str) -> list[UploadFile]:
    """The files posted under ``field`` (an empty file input posts one nameless part)."""
    return [
        f
        for f in form.getlist(field)
        if isinstance(f, UploadFile) and f.filename  # browsers send '' for "no file"
    ]


async def save_uploads(files: list[UploadFile], target: Path) -> list[Path]:
    """Write ``files`` under ``target`` by their relative names; the top-level entries."""
    target.mkdir(parents=True, exist_ok=True)
    tops: list[Path] = []
    for upload in files:
        rel = safe_relative(upload.filename or "")
        dest = target.joinpath(*rel.parts)
        if dest.exists():
            raise BadFormError(f"the file {rel} was uploaded twice")
        dest.parent.mkdir(parents=True, exist_ok=True)
        await upload.seek(0)
        with dest.open("wb") as out:
            while chunk := await upload.read(COPY_CHUNK):
                out.write(chunk)
        top = target / rel.parts[0]
        if top not in tops:
            tops.append(top)
    return tops


@contextmanager
def scratch(prefix: str = "ame-ui-") -> Iterator[Path]:
    """A temporary folder for one request's files, removed afterwards in every case."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def close_form(form: Optional[FormData]) -> None:
    """Drop the spooled parts of a form (Starlette keeps them open until closed)."""
    if form is None:
        return
    for _key, value in form.multi_items():
        if isinstance(value, UploadFile):
            with contextlib.suppress(Exception):
                value.file.close()
