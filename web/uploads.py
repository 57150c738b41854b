"""Reading request bodies into memory only: multipart uploads and urlencoded forms, within size limits.

Starlette's ``request.form()`` hands multipart files to python-multipart's ``SpooledTemporaryFile``, which
moves to a file in the temporary folder past 1 MiB: an uploaded image would be plaintext on disk. Here the
low-level streaming parser of python-multipart feeds each part into a ``bytearray`` instead, and the body is
refused (413) as soon as it grows past the limit, before the rest of it is read.
"""

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header
from starlette.requests import Request

from imgvault.store.validate import MAX_FILE_BYTES

# One request carries at most one image at the store's limit, or many smaller ones, plus the multipart framing.
MAX_UPLOAD_BYTES = MAX_FILE_BYTES + 1024 * 1024
MAX_FILES = 1000
MAX_FIELDS = 16  # parts that are not files: the gallery's form has one or two
MAX_FORM_BYTES = 64 * 1024  # a urlencoded form (sign in, encode): a few short fields


class BodyError(Exception):
    """A request body that cannot be read: ``status`` is 413 (too large) or 400/415 (malformed)."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass
class Part:
    """One part of a multipart body: a form field (``filename`` None) or a file, its bytes in memory."""

    name: str = ""
    filename: str | None = None
    content_type: str = ""
    data: bytearray = field(default_factory=bytearray)


async def _body_chunks(request: Request, limit: int):
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyError(413, f"the request body is {int(declared):,} bytes, more than the limit of {limit:,}")
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise BodyError(413, f"the request body is more than the limit of {limit:,} bytes")
        yield chunk


async def read_multipart(request: Request, *, limit: int = MAX_UPLOAD_BYTES, max_files: int = MAX_FILES):
    """The fields (name -> text) and the files (:class:`Part`) of a ``multipart/form-data`` body."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise BodyError(415, "send the files as multipart/form-data")
    parts: list[Part] = []
    headers: dict[bytes, bytes] = {}
    header = [b"", b""]

    def on_part_begin():
        headers.clear()
        if len(parts) >= max_files + MAX_FIELDS:  # counted as they come: empty parts cost memory too
            raise BodyError(413, f"more than {max_files + MAX_FIELDS} parts in one request")
        parts.append(Part())

    def on_header_field(data, start, end):
        header[0] += data[start:end]

    def on_header_value(data, start, end):
        header[1] += data[start:end]

    def on_header_end():
        headers[header[0].strip().lower()] = header[1].strip()
        header[0] = header[1] = b""

    def on_headers_finished():
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        part = parts[-1]
        part.name = disposition.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in disposition:
            part.filename = disposition[b"filename"].decode("utf-8", "replace")
            part.content_type = headers.get(b"content-type", b"").decode("latin-1")
            if sum(p.filename is not None for p in parts) > max_files:
                raise BodyError(413, f"more than {max_files} files in one request")

    def on_part_data(data, start, end):
        parts[-1].data += data[start:end]

    parser = MultipartParser(boundary, {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                                        "on_header_value": on_header_value, "on_header_end": on_header_end,
                                        "on_headers_finished": on_headers_finished,
                                        "on_part_data": on_part_data})  # fmt: skip
    try:
        async for chunk in _body_chunks(request, limit):
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise BodyError(400, f"malformed multipart body: {exc}") from None
    fields = {p.name: p.data.decode("utf-8", "replace") for p in parts if p.filename is None}
    return fields, [p for p in parts if p.filename is not None]


async def read_form(request: Request, *, limit: int = MAX_FORM_BYTES) -> dict[str, str]:
    """The fields of an ``application/x-www-form-urlencoded`` body (the gallery's small forms)."""
    content_type, _ = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"application/x-www-form-urlencoded":
        raise BodyError(415, "send the form as application/x-www-form-urlencoded")
    body = b"".join([chunk async for chunk in _body_chunks(request, limit)])
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def upload_name(filename: str) -> str:
    """The name an uploaded file is stored under: its last path component, as ``put`` keeps a file's name."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:255] or "upload"
