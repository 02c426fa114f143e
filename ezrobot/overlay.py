"""Per-step annotations drawn next to rollout frames with OpenCV (no other drawing dependency).

A frame with overlays is ``[H, W_cams + W_panel, 3]`` uint8: the camera tiles on the left and an info panel
of width :func:`panel_width` (``H``) on the right with, top to bottom: step index, last reward, return so
far, predicted value beside the realised discounted return-to-go, one horizontal bar per reward term and a
bar chart of the search's visit distribution (plus the most visited sampled actions for continuous
control).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Sequence, Union

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
PANEL_BG = (24, 24, 24)
TEXT_COLOR = (235, 235, 235)
VALUE_COLOR = (90, 200, 255)
RETURN_TO_GO_COLOR = (255, 210, 80)
TERM_BAR_COLOR = (70, 200, 90)
NEGATIVE_BAR_COLOR = (230, 70, 60)
BAR_OUTLINE_COLOR = (110, 110, 110)
VISIT_BAR_COLOR = (120, 150, 255)
CHOSEN_BAR_COLOR = (255, 140, 40)
MIN_LINE_HEIGHT = 9
MAX_LINE_HEIGHT = 18
TOP_SAMPLED_ACTIONS = 2
MAX_ACTION_DIMS_SHOWN = 3


@dataclass
class RolloutFrameInfo:
    """What the panel of one frame shows. Frame ``t`` shows the state after ``t`` agent steps.

    Attributes:
        step: Agent steps taken so far (0 for the frame after reset).
        reward: Reward of the step that led to this frame (0 for the first frame).
        episode_return: Undiscounted sum of the rewards so far.
        reward_terms: ``{term: value}`` from ``info["reward/<term>"]`` of the step that led to this frame.
        return_to_go: Realised discounted return from this frame on, ``sum_k discount**k * r_{t+k}``
            (filled in after the episode; truncated at the episode's end).
        value: The agent's predicted value of this frame's observation, or None.
        visit_probs: ``[K]`` search visit distribution at this frame's decision, or None.
        sampled_actions: ``[K, D]`` the sampled actions ``visit_probs`` refers to (continuous), or None.
        action: The action taken from this frame (int, or ``[D]`` floats), or None for the last frame.
    """

    step: int
    reward: float = 0.0
    episode_return: float = 0.0
    reward_terms: Dict[str, float] = field(default_factory=dict)
    return_to_go: Optional[float] = None
    value: Optional[float] = None
    visit_probs: Optional[np.ndarray] = None
    sampled_actions: Optional[np.ndarray] = None
    action: Optional[Union[int, np.ndarray]] = None


def panel_width(height: int) -> int:
    """Info panel width for frames of ``height`` pixels: ``max(160, height)`` rounded up to 16."""
    if height <= 0:
        raise ValueError(f"frame height {height} must be a positive number of pixels")
    return -(-max(160, int(height)) // 16) * 16


def tile_frames(images: Sequence[np.ndarray]) -> np.ndarray:
    """Place camera images side by side.

    Args:
        images: One or more ``[H, W_i, 3]`` uint8 images of the same height.

    Returns:
        ``[H, sum W_i, 3]`` uint8.
    """
    if len(images) == 0:
        raise ValueError("tile_frames needs at least one image, got none")
    heights = {img.shape[0] for img in images}
    if len(heights) != 1:
        raise ValueError(f"camera images must share one height to be tiled, got heights {sorted(heights)}")
    return np.ascontiguousarray(np.concatenate(list(images), axis=1))


def draw_overlay(image: np.ndarray, info: RolloutFrameInfo, term_scales: Optional[Mapping[str, float]] = None,
                 term_names: Optional[Sequence[str]] = None) -> np.ndarray:
    """Append the info panel to a (tiled) frame.

    Args:
        image: ``[H, W, 3]`` uint8 camera tile(s).
        info: What to show.
        term_scales: ``{term: per-step max}``; a bar is filled to ``|value| / scale`` (clipped to [0, 1]),
            green for positive and red for negative values. Missing terms use a scale of 1.
        term_names: Terms to draw, in order (default: ``info.reward_terms``'s keys); a missing value is 0,
            so every frame of an episode keeps the same layout.

    Returns:
        ``[H, W + panel_width(H), 3]`` uint8.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"overlay needs an [H, W, 3] uint8 image, got shape {image.shape} dtype {image.dtype}")
    height = image.shape[0]
    panel = np.empty((height, panel_width(height), 3), np.uint8)
    panel[:] = PANEL_BG
    names = list(info.reward_terms) if term_names is None else list(term_names)
    scales = dict(term_scales or {})
    chart_lines = 0 if info.visit_probs is None else 4
    if info.sampled_actions is not None:
        chart_lines += min(TOP_SAMPLED_ACTIONS, len(info.sampled_actions))
    line_h = int(np.clip(height // max(1, 4 + len(names) + chart_lines), MIN_LINE_HEIGHT, MAX_LINE_HEIGHT))
    scale = max(0.28, (line_h - 4) / 26.0)
    y = _draw_header(panel, info, line_h, scale)
    y = _draw_terms(panel, info.reward_terms, names, scales, y, line_h, scale,
                    reserve=chart_lines * line_h)
    if info.visit_probs is not None:
        _draw_visits(panel, info, y, line_h, scale)
    return np.ascontiguousarray(np.concatenate([image, panel], axis=1))


def _put(panel: np.ndarray, text: str, x: int, y: int, line_h: int, scale: float,
         color=TEXT_COLOR, max_width: Optional[int] = None) -> None:
    """Write ``text`` in the line whose top is ``y``, trimmed to ``max_width`` pixels."""
    max_width = panel.shape[1] - x - 2 if max_width is None else max_width
    while text and cv2.getTextSize(text, FONT, scale, 1)[0][0] > max_width:
        text = text[:-1]
    if text:
        cv2.putText(panel, text, (x, y + line_h - 3), FONT, scale, color, 1, cv2.LINE_AA)


def _fit_label(name: str, suffix: str, max_width: int, scale: float) -> str:
    """``name + suffix`` with ``name`` shortened (ending in ``.``) until it fits ``max_width`` pixels."""
    text = name + suffix
    while len(name) > 1 and cv2.getTextSize(text, FONT, scale, 1)[0][0] > max_width:
        name = name[:-1]
        text = name[:-1] + "." + suffix
    return text


def _draw_header(panel: np.ndarray, info: RolloutFrameInfo, line_h: int, scale: float) -> int:
    """Step, reward, return and value vs return-to-go; returns the next free line top."""
    x, y = 4, 2
    lines = [(f"step {info.step}", TEXT_COLOR), (f"reward {info.reward:+.3f}", TEXT_COLOR),
             (f"return {info.episode_return:.2f}", TEXT_COLOR)]
    for text, color in lines:
        if y + line_h > panel.shape[0]:
            return y
        _put(panel, text, x, y, line_h, scale, color)
        y += line_h
    if y + line_h > panel.shape[0]:
        return y
    half = (panel.shape[1] - 2 * x) // 2
    value = "-" if info.value is None else f"{info.value:.2f}"
    _put(panel, f"V {value}", x, y, line_h, scale, VALUE_COLOR, max_width=half - 2)
    togo = "-" if info.return_to_go is None else f"{info.return_to_go:.2f}"
    _put(panel, f"G {togo}", x + half, y, line_h, scale, RETURN_TO_GO_COLOR, max_width=half - 2)
    return y + line_h


def _draw_terms(panel: np.ndarray, terms: Mapping[str, float], names: Sequence[str],
                scales: Mapping[str, float], y: int, line_h: int, scale: float, reserve: int) -> int:
    """One ``label | bar`` line per reward term, as many as fit above ``reserve`` pixels."""
    width = panel.shape[1]
    label_w = int(width * 0.5)
    bar_x0, bar_x1 = label_w, width - 4
    for i, name in enumerate(names):
        left = len(names) - i
        if y + line_h * (2 if left > 1 else 1) + reserve > panel.shape[0]:
            if y + line_h + reserve <= panel.shape[0]:
                _put(panel, f"+{left} more terms", 4, y, line_h, scale)
                y += line_h
            break
        value = float(terms.get(name, 0.0))
        _put(panel, _fit_label(name, f" {value:.2f}", label_w - 6, scale), 4, y, line_h, scale)
        term_scale = float(scales.get(name, 1.0))
        frac = float(np.clip(abs(value) / term_scale, 0.0, 1.0)) if term_scale > 0 else 0.0
        top, bottom = y + 3, y + line_h - 2
        fill = int(round(frac * (bar_x1 - bar_x0)))
        if fill > 0:
            color = TERM_BAR_COLOR if value >= 0 else NEGATIVE_BAR_COLOR
            cv2.rectangle(panel, (bar_x0, top), (bar_x0 + fill - 1, bottom), color, thickness=-1)
        cv2.rectangle(panel, (bar_x0, top), (bar_x1, bottom), BAR_OUTLINE_COLOR, thickness=1)
        y += line_h
    return y


def _draw_visits(panel: np.ndarray, info: RolloutFrameInfo, y: int, line_h: int, scale: float) -> None:
    """Bar chart of the visit distribution (sorted, for sampled actions) and the top sampled actions."""
    probs = np.asarray(info.visit_probs, dtype=np.float64)
    order = np.arange(len(probs))
    chosen = int(info.action) if np.ndim(info.action) == 0 and info.action is not None else int(np.argmax(probs))
    if info.sampled_actions is not None:
        order = np.argsort(-probs, kind="stable")
        chosen = int(order[0])
        if info.action is not None and np.ndim(info.action) == 1:
            gaps = np.abs(np.asarray(info.sampled_actions) - np.asarray(info.action)[None]).max(axis=1)
            chosen = int(np.argmin(gaps)) if gaps.min() < 1e-6 else chosen
    chart_h = min(3 * line_h, panel.shape[0] - y - line_h - 2)
    if chart_h < MIN_LINE_HEIGHT:
        return
    _put(panel, f"visits K={len(probs)} max {probs.max():.2f}", 4, y, line_h, scale)
    y += line_h
    x0, x1 = 4, panel.shape[1] - 4
    bottom = y + chart_h - 2
    bar_w = max(1, (x1 - x0) // len(probs))
    peak = max(float(probs.max()), 1e-12)
    for slot, k in enumerate(order):
        left = x0 + slot * bar_w
        if left + bar_w > x1 + 1:
            break
        h = int(round(probs[k] / peak * (chart_h - 4)))
        color = CHOSEN_BAR_COLOR if k == chosen else VISIT_BAR_COLOR
        if h > 0:
            cv2.rectangle(panel, (left, bottom - h + 1), (left + max(0, bar_w - 2), bottom), color, -1)
    cv2.line(panel, (x0, bottom + 1), (x1, bottom + 1), BAR_OUTLINE_COLOR, 1)
    y += chart_h
    if info.sampled_actions is None:
        return
    for k in order[:TOP_SAMPLED_ACTIONS]:
        if y + line_h > panel.shape[0]:
            return
        action = np.asarray(info.sampled_actions[k], dtype=np.float64).ravel()
        dims = " ".join(f"{a:+.2f}" for a in action[:MAX_ACTION_DIMS_SHOWN])
        more = " .." if action.size > MAX_ACTION_DIMS_SHOWN else ""
        _put(panel, f"{probs[k]:.2f} [{dims}{more}]", 4, y, line_h, scale)
        y += line_h
