"""Small PNGs of the page for the README, from Chromium's own screenshots.

Chromium writes true-colour PNGs of a few hundred KB. Reduced to a palette of the 32 most frequent
colours they take a few tens: a page is mostly flat backgrounds, text and borders, and the few
antialiasing shades between them take the nearest palette colour, which keeps text sharp. The
browser decodes its PNG (a canvas), numpy makes the palette, zlib writes the file: no image library.
"""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

import numpy as np
from playwright.sync_api import Browser

_DECODE = """async (dataUrl) => {
  const image = new Image();
  image.src = dataUrl;
  await image.decode();
  const canvas = document.createElement('canvas');
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0);
  const data = context.getImageData(0, 0, image.width, image.height).data;
  let binary = '';
  for (let i = 0; i < data.length; i += 0x8000) binary += String.fromCharCode(...data.subarray(i, i + 0x8000));
  return [image.width, image.height, btoa(binary)];
}"""


def decode(browser: Browser, png: bytes) -> np.ndarray:
    """The RGB pixels of `png`, height x width x 3, decoded by a blank page of `browser`."""
    page = browser.new_page()
    try:
        url = "data:image/png;base64," + base64.b64encode(png).decode()
        width, height, raw = page.evaluate(_DECODE, url)
    finally:
        page.close()
    rgba = np.frombuffer(base64.b64decode(raw), dtype=np.uint8).reshape(height, width, 4)
    return rgba[:, :, :3].copy()


def palette_png(rgb: np.ndarray, colours: int = 32) -> bytes:
    """`rgb` as an 8-bit palette PNG of the `colours` most frequent colours (others: the nearest)."""
    height, width, _ = rgb.shape
    packed = (rgb[:, :, 0].astype(np.int64) << 16) | (rgb[:, :, 1].astype(np.int64) << 8) | rgb[:, :, 2]
    unique, inverse, counts = np.unique(packed.ravel(), return_inverse=True, return_counts=True)
    keep = unique[np.argsort(-counts, kind="stable")[:colours]]
    palette = np.stack([(keep >> 16) & 255, (keep >> 8) & 255, keep & 255], axis=1).astype(np.int64)
    ucols = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255], axis=1).astype(np.int64)
    nearest = np.empty(len(unique), dtype=np.uint8)
    for start in range(0, len(unique), 4096):  # distances in blocks: unique colours x palette stays small
        block = ucols[start : start + 4096]
        nearest[start : start + 4096] = ((block[:, None, :] - palette[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    indices = nearest[inverse].reshape(height, width)
    rows = np.concatenate([np.zeros((height, 1), dtype=np.uint8), indices], axis=1)  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)),
            chunk(b"PLTE", palette.astype(np.uint8).tobytes()),
            chunk(b"IDAT", zlib.compress(rows.tobytes(), 9)),
            chunk(b"IEND", b""),
        )
    )


def save(browser: Browser, png: bytes, path: Path) -> int:
    """Writes the reduced `png` to `path`; returns its size in bytes."""
    data = palette_png(decode(browser, png))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)
