"""What an uploaded file really is, from its content: PDF, JPEG or PNG, never by its name or the
type the browser declared. The magic bytes pick the parser; the parser (pypdf, Pillow) must then
read the file's structure, so a PNG renamed .pdf, random bytes or a truncated file are refused."""

from __future__ import annotations

import io
import warnings

from PIL import Image
from pypdf import PdfReader
from pypdf.errors import PyPdfError

TYPES = ("pdf", "jpeg", "png")
MEDIA_TYPES = {"pdf": "application/pdf", "jpeg": "image/jpeg", "png": "image/png"}
EXTENSIONS = {"pdf": ".pdf", "jpeg": ".jpg", "png": ".png"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class FileRejected(ValueError):
    """The content is not a PDF, JPEG or PNG that can be read."""


def sniff(content: bytes) -> str:
    """'pdf', 'jpeg' or 'png'; raises FileRejected with the reason otherwise."""
    if not content:
        raise FileRejected("the file is empty")
    if content.startswith(b"%PDF-"):
        _check_pdf(content)
        return "pdf"
    if content.startswith(PNG_SIGNATURE):
        _check_image(content, "PNG")
        return "png"
    if content.startswith(b"\xff\xd8\xff"):
        _check_image(content, "JPEG")
        return "jpeg"
    raise FileRejected("the content is not a PDF, JPEG or PNG file")


def _check_pdf(content: bytes) -> None:
    if b"%%EOF" not in content[-1024:]:
        raise FileRejected("the PDF is truncated (no end-of-file marker)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(content), strict=False)
            pages = len(reader.pages)
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as e:
        raise FileRejected(f"the PDF cannot be read: {type(e).__name__}") from e
    if pages < 1:
        raise FileRejected("the PDF has no pages")


def _check_image(content: bytes, fmt: str) -> None:
    if fmt == "JPEG" and not content.rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise FileRejected("the JPEG is truncated (no end-of-image marker)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as im:
                if im.format != fmt:
                    raise FileRejected(f"the content is not a {fmt} image")
                im.verify()  # checks the chunks' CRCs (PNG) and the markers (JPEG) without decoding
    except FileRejected:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise FileRejected(f"the {fmt} image cannot be read: {type(e).__name__}") from e
