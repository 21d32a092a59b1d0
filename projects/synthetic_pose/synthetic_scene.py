"""Synthetic scenes of articulated stick figures with the 17 COCO keypoints.

A scene is a textured or noisy background, clutter shapes under the figures, 1 to
``max_figures`` figures side by side (torso, head, limbs of varying thickness; random pose,
scale, rotation and aspect) and clutter shapes over them. Figures are drawn in order, so a later
figure or an over-clutter shape occludes an earlier figure; :func:`render_scene` records
which layer owns each pixel and :func:`annotate_scene` sets the COCO visibility flags
from it: 2 visible, 1 occluded (by another figure or by clutter), 0 outside the image.

All figures face the camera: the person's left side is on the image right of its upright
torso (as for COCO people seen from the front), which keeps left and right learnable and
is preserved by horizontal-flip augmentation with swapped labels.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import cv2
import numpy as np

# (start, end, part) of each limb segment, 0-based keypoint indices
LIMBS = ((5, 7, 'arm'), (7, 9, 'arm'), (6, 8, 'arm'), (8, 10, 'arm'), (11, 13, 'leg'),
         (13, 15, 'leg'), (12, 14, 'leg'), (14, 16, 'leg'))
PARTS = ('torso', 'arm', 'leg', 'head', 'face')
# BGR ends of the range skin colours are drawn from (the head and neck)
SKIN_DARK, SKIN_LIGHT = np.array([40, 60, 100]), np.array([180, 205, 240])
# Fraction of the body height kept inside the image above and below the figure's centre
# (a figure stands at most 0.5 - TRUNCATION_KEEP of its height out of the top or bottom).
TRUNCATION_KEEP = 0.35
# How far a figure's centre may stray into its neighbours' slots, in slot widths.
SLOT_OVERLAP = 0.25
# Owner-map values that are not a figure index.
BACKGROUND, CLUTTER = -1, -2
# cv2 draws with SHIFT fractional bits, so figures are placed with sub-pixel accuracy.
SHIFT = 4
# Pixels; they keep every keypoint inside its stroke or head after rounding to a pixel.
MIN_THICKNESS = 3
MIN_HEAD_RADIUS = 3.0
# nose, left eye, right eye, left ear, right ear around the head centre, in head radii
# (upright, y down, the person's left at +x)
FACE = np.array([[0, 0.3], [0.4, -0.15], [-0.4, -0.15], [0.75, 0.0], [-0.75, 0.0]])


def _fixed(points) -> np.ndarray:
    """Float pixel coordinates (..., 2) to cv2's fixed-point int32 with ``SHIFT`` bits."""
    return np.round(np.asarray(points) * (1 << SHIFT)).astype(np.int32)


def _point(point) -> Tuple[int, int]:
    """One float pixel point as the fixed-point tuple cv2's line and circle take."""
    x, y = _fixed(point)
    return int(x), int(y)


def _rotation(angle: float) -> np.ndarray:
    cos, sin = np.cos(angle), np.sin(angle)
    return np.array([[cos, -sin], [sin, cos]])


@dataclass
class Figure:
    """One figure in image pixels.

    Args:
        keypoints (np.ndarray): the 17 COCO keypoints, shape (17, 2).
        neck (np.ndarray): base of the neck (mid-shoulder), shape (2,).
        head_center (np.ndarray): shape (2,).
        head_radius (float): pixels.
        thickness (dict): stroke width in pixels of 'arm', 'leg' and 'neck'.
        colors (dict): BGR colour of each part in ``PARTS``: a shirt (torso, arms a
            shade darker), trousers (legs), skin (head and neck) and dark eyes and nose.
    """
    keypoints: np.ndarray
    neck: np.ndarray
    head_center: np.ndarray
    head_radius: float
    thickness: Dict[str, int]
    colors: Dict[str, Tuple[int, int, int]]

    def draw(self, canvas: np.ndarray, paint=None) -> None:
        """Draw the figure on ``canvas``: in its own colours, or all parts in ``paint``."""
        color = (lambda part: self.colors[part]) if paint is None else (lambda part: paint)
        kpts = self.keypoints
        for start, end, part in LIMBS[4:]:  # legs behind the torso
            cv2.line(canvas, _point(kpts[start]), _point(kpts[end]), color(part), self.thickness[part],
                     cv2.LINE_8, SHIFT)
        cv2.fillPoly(canvas, [_fixed(kpts[[5, 6, 12, 11]])], color('torso'), cv2.LINE_8, SHIFT)
        for start, end, part in LIMBS[:4]:
            cv2.line(canvas, _point(kpts[start]), _point(kpts[end]), color(part), self.thickness[part],
                     cv2.LINE_8, SHIFT)
        cv2.line(canvas, _point(self.neck), _point(self.head_center), color('head'),
                 self.thickness['neck'], cv2.LINE_8, SHIFT)
        cv2.circle(canvas, _point(self.head_center), int(round(self.head_radius * (1 << SHIFT))),
                   color('head'), -1, cv2.LINE_8, SHIFT)
        dot = int(round(max(1.0, 0.15 * self.head_radius) * (1 << SHIFT)))
        for eye_or_nose in kpts[:3]:
            cv2.circle(canvas, _point(eye_or_nose), dot, color('face'), -1, cv2.LINE_8, SHIFT)

    def mask(self, shape: Tuple[int, int]) -> np.ndarray:
        """Silhouette of the figure alone, bool (H, W)."""
        canvas = np.zeros(shape, np.uint8)
        self.draw(canvas, paint=1)
        return canvas.astype(bool)


@dataclass
class Shape:
    """A clutter shape: a filled polygon or a thick polyline, in image pixels."""
    points: np.ndarray  # (P, 2)
    closed: bool
    thickness: int
    color: Tuple[int, int, int]

    def draw(self, canvas: np.ndarray, paint=None) -> None:
        color = self.color if paint is None else paint
        if self.closed:
            cv2.fillPoly(canvas, [_fixed(self.points)], color, cv2.LINE_8, SHIFT)
        else:
            cv2.polylines(canvas, [_fixed(self.points)], False, color, self.thickness,
                          cv2.LINE_8, SHIFT)

    def mask(self, shape: Tuple[int, int]) -> np.ndarray:
        canvas = np.zeros(shape, np.uint8)
        self.draw(canvas, paint=1)
        return canvas.astype(bool)


@dataclass
class Scene:
    """Everything needed to render one image; figures are listed back to front."""
    background: np.ndarray  # (H, W, 3) uint8
    figures: List[Figure] = field(default_factory=list)
    clutter_under: List[Shape] = field(default_factory=list)
    clutter_over: List[Shape] = field(default_factory=list)


def _color(rng: np.random.Generator) -> Tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def sample_figure(rng: np.random.Generator, image_size: Tuple[int, int],
                  x_range: Tuple[float, float] = (0.1, 0.9)) -> Figure:
    """A random figure placed in an image of ``image_size`` (w, h).

    The pose is built upright in units of body height (y down, the person's left at +x),
    then stretched horizontally by the aspect, rotated, scaled and placed with its centre
    at a random x in ``x_range`` (fractions of the width) and a random height that keeps
    most of the body in the image.
    """
    width, height = image_size
    torso, head_r = rng.uniform(0.26, 0.34), rng.uniform(0.06, 0.085)
    shoulder_w, hip_w = rng.uniform(0.2, 0.3), rng.uniform(0.14, 0.22)
    neck_len = rng.uniform(0.02, 0.05)
    points = np.zeros((17, 2))
    points[[5, 6]] = [[shoulder_w / 2, 0], [-shoulder_w / 2, 0]]
    points[[11, 12]] = [[hip_w / 2, torso], [-hip_w / 2, torso]]
    # (root, mid, tip, first length, second length, swing range, bend range), degrees
    chains = ((5, 7, 9, (0.13, 0.18), (0.12, 0.16), (-40, 170), (-130, 130)),
              (11, 13, 15, (0.19, 0.25), (0.18, 0.24), (-20, 70), (-70, 70)))
    for root, mid, tip, len1, len2, swing, bend in chains:
        for side in (1, -1):  # the person's left (+x), then right (mirrored indices + 1)
            offset = 0 if side == 1 else 1
            angle = np.deg2rad(rng.uniform(*swing))
            down = np.array([side * np.sin(angle), np.cos(angle)])
            points[mid + offset] = points[root + offset] + rng.uniform(*len1) * down
            angle += side * np.deg2rad(rng.uniform(*bend))
            down = np.array([side * np.sin(angle), np.cos(angle)])
            points[tip + offset] = points[mid + offset] + rng.uniform(*len2) * down
    tilt = np.deg2rad(rng.uniform(-25, 25))
    head_center = _rotation(tilt) @ [0, -(neck_len + head_r)]

    aspect = rng.uniform(0.75, 1.3)
    scale = rng.uniform(0.35, 0.85) * height  # pixels per body height
    angle = np.deg2rad(rng.uniform(-45, 45))
    transform = scale * _rotation(angle) @ np.diag([aspect, 1.0])
    # vertically, at least TRUNCATION_KEEP of the body height stays above or below the centre
    margin = min(TRUNCATION_KEEP * scale, 0.5 * height)
    center = rng.uniform([x_range[0] * width, margin], [x_range[1] * width, height - margin])
    body_mid = np.array([0, 0.4 * torso + 0.1])  # about the middle of head top to ankles

    def place(p):
        return (np.asarray(p) - body_mid) @ transform.T + center

    keypoints = place(points)
    # the face sits on the drawn (round) head: placed in pixels, turned with body and tilt
    head_center = place(head_center)
    head_radius = max(MIN_HEAD_RADIUS, head_r * scale * np.sqrt(aspect))
    keypoints[:5] = head_center + head_radius * FACE @ _rotation(angle + tilt).T
    limb = rng.uniform(0.05, 0.09) * scale
    thickness = dict(arm=limb, leg=limb * rng.uniform(1.2, 1.6), neck=limb * 1.2)
    shirt, skin = _color(rng), SKIN_DARK + rng.random() * (SKIN_LIGHT - SKIN_DARK)
    colors = dict(torso=shirt, arm=tuple(int(c * rng.uniform(0.7, 1.0)) for c in shirt),
                  leg=_color(rng), head=tuple(int(c) for c in skin),
                  face=tuple(int(c) for c in rng.integers(0, 60, 3)))
    return Figure(keypoints=keypoints, neck=place([0, 0]), head_center=head_center,
                  head_radius=head_radius,
                  thickness={k: max(MIN_THICKNESS, int(round(v))) for k, v in thickness.items()},
                  colors=colors)


def sample_shape(rng: np.random.Generator, image_size: Tuple[int, int]) -> Shape:
    """A random clutter shape: a polygon (3-6 corners) or a thick polyline."""
    width, height = image_size
    center = rng.uniform([0, 0], [width, height])
    size = rng.uniform(0.05, 0.2) * min(width, height)
    corners = rng.integers(3, 7)
    angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
    radii = size * rng.uniform(0.4, 1.0, corners)
    points = center + np.stack((radii * np.cos(angles), radii * np.sin(angles)), axis=1)
    thickness = int(rng.integers(2, 8))
    return Shape(points=points, closed=bool(rng.random() < 0.6), thickness=thickness,
                 color=_color(rng))


def sample_background(rng: np.random.Generator, image_size: Tuple[int, int]) -> np.ndarray:
    """A smooth colour field, stripes or blocks at reduced contrast, with Gaussian pixel
    noise; (H, W, 3) uint8."""
    width, height = image_size
    kind = rng.integers(3)
    if kind == 0:  # smooth colour field
        coarse = rng.uniform(0, 255, (rng.integers(2, 6), rng.integers(2, 6), 3))
        image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    elif kind == 1:  # stripes at a random angle and period
        angle, period = rng.uniform(0, np.pi), rng.uniform(6, 40)
        ys, xs = np.mgrid[:height, :width]
        wave = (np.sin(2 * np.pi * (xs * np.cos(angle) + ys * np.sin(angle)) / period) + 1) / 2
        low, high = rng.uniform(0, 255, (2, 3))
        image = low + wave[..., None] * (high - low)
    else:  # blocks of random colours
        block = int(rng.integers(8, 32))
        coarse = rng.uniform(0, 255, (height // block + 1, width // block + 1, 3))
        image = np.repeat(np.repeat(coarse, block, axis=0), block, axis=1)[:height, :width]
    # lower contrast than the figures' solid colours, as a scene behind people often is
    image = image.mean() + rng.uniform(0.3, 0.8) * (image - image.mean())
    image = image + rng.normal(0, rng.uniform(3, 20), image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def sample_scene(rng: np.random.Generator, image_size: Tuple[int, int],
                 max_figures: int = 3, max_clutter: int = 2) -> Scene:
    """A random scene of ``image_size`` (w, h) with 1 to ``max_figures`` figures, and up to
    ``max_clutter`` clutter shapes under and up to ``max_clutter`` over the figures.

    Like people in a group, each figure stands in its own slot of the width, widened by
    ``SLOT_OVERLAP`` of a slot on each side so that neighbours overlap; the depth order
    is random.
    """
    scene = Scene(background=sample_background(rng, image_size))
    scene.clutter_under = [sample_shape(rng, image_size)
                           for _ in range(rng.integers(0, max_clutter + 1))]
    num_figures = int(rng.integers(1, max_figures + 1))
    for slot in rng.permutation(num_figures):
        low, high = (slot - SLOT_OVERLAP) / num_figures, (slot + 1 + SLOT_OVERLAP) / num_figures
        x_range = (max(low, 0.1), min(high, 0.9))
        scene.figures.append(sample_figure(rng, image_size, x_range))
    scene.clutter_over = [sample_shape(rng, image_size)
                          for _ in range(rng.integers(0, max_clutter + 1))]
    return scene


def render_scene(scene: Scene) -> Tuple[np.ndarray, np.ndarray]:
    """Draw the scene back to front.

    Returns:
        tuple[np.ndarray, np.ndarray]: the BGR image (H, W, 3) uint8 and the owner map
        (H, W) int16: the index of the figure seen at each pixel, ``CLUTTER`` or
        ``BACKGROUND``.
    """
    image = scene.background.copy()
    owner = np.full(image.shape[:2], BACKGROUND, np.int16)
    for shape in scene.clutter_under:
        shape.draw(image)
    for index, figure in enumerate(scene.figures):
        figure.draw(image)
        owner[figure.mask(owner.shape)] = index
    for shape in scene.clutter_over:
        shape.draw(image)
        owner[shape.mask(owner.shape)] = CLUTTER
    return image, owner


def annotate_scene(scene: Scene, owner: np.ndarray) -> List[dict]:
    """COCO keypoint annotations of every figure (without ids).

    Coordinates follow cv2: pixel (i, j) is centred on (i, j). The box [x, y, w, h] holds the
    pixels x..x+w-1, y..y+h-1 of the figure's whole silhouette inside the image (occluded
    parts included) and ``area`` is their count. Keypoints outside the pixel centres'
    range [0, w - 1] x [0, h - 1] are (0, 0, 0).

    Returns:
        list[dict]: per figure ``keypoints`` (17, 3) float (x, y, v), ``bbox`` [x, y, w, h],
        ``area`` and ``num_keypoints``.
    """
    height, width = owner.shape
    annotations = []
    for index, figure in enumerate(scene.figures):
        silhouette = figure.mask(owner.shape)
        ys, xs = np.nonzero(silhouette)
        if xs.size == 0:  # placed entirely outside the image
            continue
        keypoints = np.zeros((17, 3))
        for k, (x, y) in enumerate(figure.keypoints):
            if 0 <= x <= width - 1 and 0 <= y <= height - 1:
                keypoints[k] = (x, y, 2 if owner[int(round(y)), int(round(x))] == index else 1)
        x0, y0 = xs.min(), ys.min()
        annotations.append(dict(
            keypoints=keypoints,
            bbox=[float(x0), float(y0), float(xs.max() - x0 + 1), float(ys.max() - y0 + 1)],
            area=float(xs.size),
            num_keypoints=int(np.count_nonzero(keypoints[:, 2]))))
    return annotations
