"""A tiny numpy rasteriser and frame writer shared by every environment's ``render``.

World coordinates are mapped onto a square canvas; shapes are anti-aliased by
coverage of the pixel centre (cheap and good enough for GIFs).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

Color = tuple[int, int, int]

# A palette readable on white, indexed by team.
TEAM_COLORS: tuple[Color, ...] = (
    (217, 72, 72),  # red
    (72, 170, 96),  # green
    (64, 110, 200),  # blue
    (230, 160, 40),  # orange
    (150, 90, 190),  # purple
)
LANDMARK_COLOR: Color = (64, 64, 64)
OBSTACLE_COLOR: Color = (40, 40, 40)


class Canvas:
    """An RGB canvas over the world square ``[-extent, extent]^2``."""

    def __init__(self, size: int = 400, extent: float = 1.0, background: Color = (255, 255, 255)):
        self.size = size
        self.extent = float(extent)
        self.pixels = np.empty((size, size, 3), np.float32)
        self.pixels[:] = background
        coords = np.arange(size, dtype=np.float32) + 0.5
        self._x = (coords / size * 2.0 - 1.0) * self.extent  # world x of each column
        self._y = (1.0 - coords / size * 2.0) * self.extent  # world y of each row (up is +y)
        self._px = 2.0 * self.extent / size  # world units per pixel

    def _blend(self, rows: slice, cols: slice, alpha: np.ndarray, color: Color) -> None:
        region = self.pixels[rows, cols]
        region += alpha[..., None] * (np.asarray(color, np.float32) - region)

    def _box(self, x0, y0, x1, y1):
        """Pixel slices covering the world box (clipped)."""
        c0 = int(np.clip((x0 / self.extent + 1) / 2 * self.size - 1, 0, self.size))
        c1 = int(np.clip((x1 / self.extent + 1) / 2 * self.size + 2, 0, self.size))
        r0 = int(np.clip((1 - y1 / self.extent) / 2 * self.size - 1, 0, self.size))
        r1 = int(np.clip((1 - y0 / self.extent) / 2 * self.size + 2, 0, self.size))
        return slice(r0, r1), slice(c0, c1)

    def circle(self, x: float, y: float, radius: float, color: Color, alpha: float = 1.0,
               outline: Color | None = None) -> None:
        rows, cols = self._box(x - radius, y - radius, x + radius, y + radius)
        if rows.start >= rows.stop or cols.start >= cols.stop:
            return
        dist = np.hypot(self._x[cols][None, :] - x, self._y[rows][:, None] - y)
        cover = np.clip((radius - dist) / self._px + 0.5, 0.0, 1.0)
        self._blend(rows, cols, alpha * cover, color)
        if outline is not None:
            ring = np.clip(1.0 - np.abs(dist - radius) / self._px, 0.0, 1.0)
            self._blend(rows, cols, ring, outline)

    def rect(self, x0: float, y0: float, x1: float, y1: float, color: Color,
             alpha: float = 1.0) -> None:
        rows, cols = self._box(x0, y0, x1, y1)
        if rows.start >= rows.stop or cols.start >= cols.stop:
            return
        cx = np.clip(np.minimum(self._x[cols] - x0, x1 - self._x[cols]) / self._px + 0.5, 0, 1)
        cy = np.clip(np.minimum(self._y[rows] - y0, y1 - self._y[rows]) / self._px + 0.5, 0, 1)
        self._blend(rows, cols, alpha * cy[:, None] * cx[None, :], color)

    def line(self, x0: float, y0: float, x1: float, y1: float, color: Color,
             width: float | None = None, alpha: float = 1.0) -> None:
        width = width if width is not None else 1.5 * self._px
        rows, cols = self._box(min(x0, x1) - width, min(y0, y1) - width,
                               max(x0, x1) + width, max(y0, y1) + width)
        if rows.start >= rows.stop or cols.start >= cols.stop:
            return
        px = self._x[cols][None, :] - x0
        py = self._y[rows][:, None] - y0
        dx, dy = x1 - x0, y1 - y0
        t = np.clip((px * dx + py * dy) / max(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
        dist = np.hypot(px - t * dx, py - t * dy)
        cover = np.clip((width / 2 - dist) / self._px + 0.5, 0.0, 1.0)
        self._blend(rows, cols, alpha * cover, color)

    def bar(self, x: float, y: float, width: float, height: float, fraction: float,
            color: Color, back: Color = (200, 200, 200)) -> None:
        """A horizontal bar centred at (x, y), filled to ``fraction`` (health bars)."""
        x0, y0 = x - width / 2, y - height / 2
        self.rect(x0, y0, x0 + width, y0 + height, back)
        self.rect(x0, y0, x0 + width * float(np.clip(fraction, 0, 1)), y0 + height, color)

    def to_array(self) -> np.ndarray:
        return np.clip(self.pixels + 0.5, 0, 255).astype(np.uint8)


def save_animation(frames: Sequence[np.ndarray], path: str, fps: int = 10) -> str:
    """Write RGB frames to ``path`` (.gif or .mp4), atomically; returns the path."""
    import imageio.v3 as iio

    if not frames:
        raise ValueError("no frames to write")
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".gif", ".mp4"):
        raise ValueError(f"unsupported animation format {ext!r}: use .gif or .mp4")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{ext}"
    stack = np.stack([np.asarray(f, np.uint8) for f in frames])
    if ext == ".gif":
        iio.imwrite(tmp, stack, duration=1000 / fps, loop=0)
    else:
        import warnings

        with warnings.catch_warnings():
            # imageio-ffmpeg starts its ffmpeg binary in a child process, which executes
            # it at once: JAX's warning about forking a multithreaded process does not apply
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called")
            iio.imwrite(tmp, stack, fps=fps, plugin="FFMPEG", macro_block_size=1)
    os.replace(tmp, path)
    return path
