"""A small PNG reader for checking the report's screenshots without an imaging library.

Reads what headless Chromium writes: 8-bit RGB or RGBA, not interlaced. Returns rows of
pixels as bytes (``channels`` bytes a pixel), enough to ask whether a region is blank.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Image:
    """Decoded pixels: ``rows[y][x * channels + c]``."""

    width: int
    height: int
    channels: int
    rows: list[bytes]

    def pixel(self, x: int, y: int) -> tuple[int, ...]:
        """The pixel's channels at (x, y)."""
        row = self.rows[y]
        return tuple(row[x * self.channels : (x + 1) * self.channels])

    def ink(self, left: int, top: int, right: int, bottom: int, *, threshold: int = 200) -> int:
        """Pixels of the box darker than ``threshold`` on some colour channel (not white)."""
        count = 0
        for y in range(top, min(bottom, self.height)):
            row = self.rows[y]
            for x in range(left, min(right, self.width)):
                base = x * self.channels
                if min(row[base : base + 3]) < threshold:
                    count += 1
        return count

    def last_inked_column(self, *, threshold: int = 200) -> int:
        """The rightmost column holding a non-white pixel (-1 when blank)."""
        for x in range(self.width - 1, -1, -1):
            base = x * self.channels
            for row in self.rows:
                if min(row[base : base + 3]) < threshold:
                    return x
        return -1


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def read_png(path: Path) -> Image:
    """Decode ``path`` (8-bit RGB/RGBA, non-interlaced)."""
    data = path.read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        msg = f"{path} is not a PNG"
        raise ValueError(msg)
    pos = 8
    idat = bytearray()
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                msg = f"unsupported PNG: depth {depth}, colour type {colour}"
                raise ValueError(msg)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat.extend(body)
        elif kind == b"IEND":
            break
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = prev[i]
            corner = prev[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                line[i] = (line[i] + _paeth(left, up, corner)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return Image(width, height, channels, rows)
