"""Video files: write ``[H, W, 3]`` uint8 frames to an mp4 (H.264) or a gif, atomically."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable, Optional, Union

import numpy as np

VIDEO_FORMATS = ("mp4", "gif")
MAX_GIF_FPS = 50.0


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_video(frames: Iterable[np.ndarray], path: Union[str, os.PathLike], fps: float = 30.0,
                format: Optional[str] = None, *, macro_block_size: int = 2) -> Path:
    """Write frames to an mp4 (H.264 via imageio-ffmpeg) or gif (imageio's pillow plugin), atomically.

    The file is written next to ``path`` under a temporary name and renamed into place, so readers never
    see a partial video and a failed write leaves an existing file untouched. Parent directories are
    created. The file gets mode ``0666 & ~umask`` (0644 typically), as ``open`` would give it.

    Args:
        frames: ``[H, W, 3]`` (or ``[H, W]`` grey) uint8 frames, all of one shape; at least one.
        path: Output file.
        fps: Frames per second (gif: at most 50, stored in 1/100 s steps).
        format: ``"mp4"`` or ``"gif"`` (default: the suffix of ``path``).
        macro_block_size: mp4 only: frames are padded (black, bottom/right) to a multiple of this in both
            sides; H.264 with yuv420p needs 2, some hardware decoders want 16.

    Returns:
        The written path. Identical consecutive gif frames are merged by pillow (the timing is kept).
    """
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt not in VIDEO_FORMATS:
        given = f"format {format!r}" if format else f"format {fmt!r} (from the suffix of {str(path)!r})"
        raise ValueError(f"video {given} is not supported; allowed: {', '.join(VIDEO_FORMATS)}")
    if not fps > 0 or (fmt == "gif" and fps > MAX_GIF_FPS):
        limit = f"(0, {MAX_GIF_FPS:g}] for gif" if fmt == "gif" else "> 0"
        raise ValueError(f"fps {fps} is out of range; allowed: {limit}")
    if macro_block_size < 1:
        raise ValueError(f"macro_block_size {macro_block_size} must be >= 1")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp.{fmt}", dir=path.parent)
    os.close(fd)
    try:
        count = _write_frames(frames, tmp, fps, fmt, macro_block_size)
        if count == 0:
            raise ValueError("write_video needs at least one frame, got none")
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp creates 0600; a video gets the usual mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _write_frames(frames: Iterable[np.ndarray], tmp: str, fps: float, fmt: str, block: int) -> int:
    """Stream ``frames`` into ``tmp``; returns the number written."""
    import imageio.v2 as imageio
    import imageio.v3 as iio

    if fmt == "mp4":
        writer = imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                    pixelformat="yuv420p", macro_block_size=1, ffmpeg_log_level="error")
        write = writer.append_data
    else:
        writer = iio.imopen(tmp, "w", extension=".gif", plugin="pillow")
        duration = 10 * max(2, int(round(100.0 / fps)))  # gif delays are whole 1/100 s; < 2 plays slowly
        write = lambda f: writer.write(f, duration=duration, loop=0, is_batch=False)  # noqa: E731
    count, shape = 0, None
    try:
        for frame in frames:
            frame = _check_frame(frame, count, shape)
            shape = frame.shape
            write(_pad(frame, block) if fmt == "mp4" else frame)
            count += 1
    finally:
        writer.close()
    return count


def _check_frame(frame: np.ndarray, index: int, shape: Optional[tuple]) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame {index} has shape {frame.shape} dtype {frame.dtype}; expected [H, W, 3] uint8")
    if shape is not None and frame.shape != shape:
        raise ValueError(f"frame {index} has shape {frame.shape} but frame 0 has {shape}; all must match")
    return frame


def _pad(frame: np.ndarray, block: int) -> np.ndarray:
    """Pad bottom/right with black to multiples of ``block``."""
    h, w = frame.shape[:2]
    ph, pw = -h % block, -w % block
    return np.pad(frame, ((0, ph), (0, pw), (0, 0))) if ph or pw else frame
