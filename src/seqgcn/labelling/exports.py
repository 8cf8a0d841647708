"""What a person labels from: the batch CSV, a contact sheet, Label Studio tasks and labelling config.

The picked images are re-opened from their files for display (the sheet and
embedded tasks show them at a size a person can judge, not at the learner's
``--image-size``); that is ``budget`` decodes, not a second pass over the pool.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from seqgcn.checks import InputError
from seqgcn.labelling.images import open_rgb
from seqgcn.labelling.labels import csv_text

THUMB = 128          # contact-sheet thumbnail side, pixels
SHEET_COLUMNS = 6    # thumbnails per row
EMBED_SIDE = 512     # longest side of an image embedded in a Label Studio task, pixels
IMAGE_KEY, PATH_KEY, CHOICE_NAME = "image", "path", "label"  # task data keys and the Choices tag name


def batch_csv(paths) -> str:
    """``path,label`` CSV of the batch with every label empty, in the sampler's order."""
    return csv_text((p, "") for p in paths)


def contact_sheet(root, paths, *, thumb: int = THUMB, columns: int = SHEET_COLUMNS):
    """A Pillow RGB image: the picked images as numbered thumbnails, the number and path under each.

    Numbers start at 1 and follow the batch CSV's row order.
    """
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=11)
    columns = max(1, min(columns, len(paths)))
    rows = -(-len(paths) // columns)
    text_h, pad = 30, 6
    cell_w, cell_h = thumb + 2 * pad + 60, thumb + text_h + 2 * pad
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    max_chars = cell_w // 6
    for k, rel in enumerate(paths):
        x0, y0 = (k % columns) * cell_w, (k // columns) * cell_h
        image = open_rgb(Path(root) / rel, thumb)
        sheet.paste(image, (x0 + (cell_w - image.width) // 2, y0 + pad + (thumb - image.height) // 2))
        name = rel if len(rel) <= max_chars else "…" + rel[-(max_chars - 1):]
        draw.text((x0 + pad, y0 + pad + thumb + 2), f"{k + 1}", fill="black", font=ImageFont.load_default(size=13))
        draw.text((x0 + pad, y0 + pad + thumb + 16), name, fill=(60, 60, 60), font=font)
    return sheet


def png_bytes(image) -> bytes:
    """A Pillow image as the bytes of a PNG file (written with the command's other outputs, `seqgcn.io.write_all`)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def label_config(classes) -> str:
    """Label Studio labelling config (XML) for single-choice image classification over `classes`."""
    if not classes:
        raise InputError("the Label Studio config needs at least one class name and none is labelled yet; "
                         "give the classes with --classes NAME,NAME,...")
    choices = "\n".join(f"    <Choice value={quoteattr(c)}/>" for c in classes)
    return (f'<View>\n  <Image name="{IMAGE_KEY}" value="${IMAGE_KEY}"/>\n  <Text name="{PATH_KEY}" value="${PATH_KEY}"/>\n'
            f'  <Choices name="{CHOICE_NAME}" toName="{IMAGE_KEY}" choice="single-radio" showInline="true">\n'
            f"{choices}\n  </Choices>\n</View>\n")


def label_studio_tasks(root, paths, *, image_url: str = "embed") -> list[dict]:
    """One Label Studio task per path: ``{"data": {"image": URL, "path": relative path}}``.

    image_url : ``"embed"`` (default) puts each image in the task as a PNG data URI
        (longest side at most `EMBED_SIDE`), so the tasks need no file server;
        any other value is a URL prefix the relative path is appended to, e.g.
        ``http://localhost:8000/`` for ``python -m http.server`` run in the images folder.
    """
    tasks = []
    for rel in paths:
        url = _data_uri(Path(root) / rel) if image_url == "embed" else image_url + quote(rel)
        tasks.append({"data": {IMAGE_KEY: url, PATH_KEY: rel}})
    return tasks


def tasks_json(tasks) -> str:
    return json.dumps(tasks, indent=1) + "\n"


def _data_uri(path: Path) -> str:
    buf = io.BytesIO()
    open_rgb(path, EMBED_SIDE).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
