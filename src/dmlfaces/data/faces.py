"""Procedural face renderer of SynthFaces: latent factors in, a 112x112 RGB face and its 5 landmarks out.

A face is drawn from two sets of factors:

* :class:`PersonFactors` are fixed for one identity: head and jaw shape, eye spacing and size, brows,
  nose, mouth, ears, hair style and colour, skin tone, gender and age group. They are what an identity
  embedding has to learn.
* :class:`ImageFactors` vary from one image of a person to the next: beard, glasses, expression, head
  pose, illumination, background, framing (scale, shift, roll), occlusion, blur, noise, low resolution
  and JPEG compression. Each image has a ground-truth quality in [0, 1] derived from its degradations
  (:func:`quality_score`).

Geometry is drawn in "aligned" coordinates (the ArcFace 112x112 template puts the eyes near y = 51.6,
x = 38.3 / 73.5), with a little depth per feature so that yaw and pitch move the features against the
head outline as a turning head does. Shapes are drawn at 2x; the framing warp samples that drawing
bilinearly at each 1x pixel centre, which anti-aliases the edges.

Its length is the renderer's: the factors, the drawing of each face part and the degradations are one
image model, split only at the factor dataclasses it exports.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, fields

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy.special import ndtri

SIZE = 112
SUPERSAMPLE = 2
# Head centre in aligned coordinates; features are placed relative to it.
CENTRE_X, CENTRE_Y = 56.0, 62.0

HAIR_STYLES = ("short", "long", "bangs", "bald", "curly")
HAIR_COLOURS = ("black", "brown", "blond", "red")
_HAIR_RGB = {
    "black": (30, 26, 24),
    "brown": (96, 62, 38),
    "blond": (196, 160, 96),
    "red": (150, 64, 34),
}
_GREY_RGB = (170, 168, 165)
_PALE_SKIN = np.array([238.0, 206.0, 184.0])
_DARK_SKIN = np.array([92.0, 60.0, 42.0])
EXPRESSIONS = ("neutral", "smiling", "surprised")
BACKGROUNDS = ("plain", "gradient", "stripes", "blobs")
GLASSES_FRAMES = ("thin", "thick")


@dataclass(frozen=True)
class PersonFactors:
    """Identity-level factors, fixed for one person. Lengths are in aligned 112-pixel units."""

    person_id: int
    gender: str  # "male" | "female"
    age_group: str  # "young" | "older"
    skin_tone: float  # 0 = palest, 1 = darkest; labelled pale below 0.5
    skin_hue: float  # small red/yellow shift of the skin colour
    head_width: float  # half-width of the head at the cheekbones
    jaw_width: float  # half-width of the jaw at mouth level
    chin_length: float  # distance from mouth level to chin
    forehead_height: float  # distance from eye level to hairline
    eye_spacing: float  # half the distance between the eye centres
    eye_height: float  # vertical position of the eyes (offset from the template)
    eye_size: float
    eye_colour: tuple[int, int, int]
    brow_thickness: float
    brow_arch: float
    brow_gap: float  # vertical gap between eye and brow
    nose_length: float
    nose_width: float
    mouth_width: float
    lip_thickness: float
    lip_colour: tuple[int, int, int]
    ear_size: float
    hair_style: str
    hair_colour: str
    grey_fraction: float  # 0 young; up to 1 for grey-haired older people
    beard_style: str  # "full" | "goatee" | "stubble"; shown only on images with beard on
    glasses_frame: str  # the frame this person wears when glasses are on
    glasses_shape: str  # "round" | "rect"
    moles: tuple[tuple[float, float, float], ...]  # (x, y, radius) of small skin marks: fine identity detail

    @property
    def is_pale(self) -> bool:
        return self.skin_tone < 0.5


@dataclass(frozen=True)
class ImageFactors:
    """Image-level factors of one rendered image (pose angles in radians, lengths in pixels)."""

    beard: bool
    glasses: bool
    expression: str
    yaw: float
    pitch: float
    roll: float
    light_angle: float
    light_strength: float  # 0 = flat light, 1 = strong side light
    brightness: float  # 1 = normal exposure
    background: str
    background_colour: tuple[int, int, int]
    background_seed: int
    scale: float  # 1 = aligned size
    shift_x: float
    shift_y: float
    occlusion: float  # fraction of the face area covered, 0 = none
    occlusion_x: float  # centre of the occluder, in [-1, 1] across the face
    occlusion_y: float
    blur: float  # Gaussian radius in pixels
    noise: float  # standard deviation of additive noise, in 8-bit levels
    low_resolution: float  # 1 = full resolution; 0.25 = rendered at a quarter and upsampled
    jpeg_quality: int
    noise_seed: int
    shirt_colour: tuple[int, int, int]  # clothes change from photo to photo, so they are no identity cue


def _person_rng_colour(rng: np.random.Generator, base: tuple[int, int, int], spread: float) -> tuple[int, int, int]:
    colour = np.clip(np.array(base, dtype=float) + rng.normal(0.0, spread, 3), 0, 255)
    return tuple(int(c) for c in colour)


def sample_person(rng: np.random.Generator, person_id: int, look: np.random.Generator | None = None) -> PersonFactors:
    """Draw one identity.

    Args:
        rng: the person's own stream (fine detail: eyes, brows, nose, mouth, ears, moles); it must be
            the person's alone so that identities are stable.
        look: the stream of the person's lookalike family, shared by its members: the coarse appearance
            (gender, age group, skin, hair, head shape). Real people resemble each other at that level,
            so telling lookalikes apart takes the fine detail that blur and low resolution destroy.
            ``None`` makes a family of one.
    """
    look = rng if look is None else look
    male = bool(look.random() < 0.5)
    older = bool(look.random() < 0.4)
    # Skin tone is bimodal so that the pale / dark label is meaningful, but continuous within a mode.
    dark = look.random() < 0.45
    skin_tone = float(np.clip(look.beta(3, 9) if not dark else 1.0 - look.beta(3, 9), 0.0, 1.0))
    style_p = [0.55, 0.05, 0.1, 0.15, 0.15] if male else [0.1, 0.5, 0.25, 0.0, 0.15]
    hair_colour = str(look.choice(HAIR_COLOURS, p=[0.45, 0.3, 0.15, 0.1] if skin_tone < 0.5 else [0.8, 0.17, 0.02, 0.01]))
    coarse = {
        "skin_hue": float(look.normal(0.0, 1.0)),
        "head_width": float(look.uniform(36, 44) + (2.0 if male else 0.0)),
        "jaw_width": float(look.uniform(22, 32) + (4.0 if male else -1.0)),
        "chin_length": float(look.uniform(12, 20) + (2.0 if male else 0.0)),
        "forehead_height": float(look.uniform(28, 38)),
        "hair_style": str(look.choice(HAIR_STYLES, p=style_p)),
        "grey_fraction": float(look.uniform(0.4, 1.0)) if older else 0.0,
    }
    lip_base = (150, 70, 80) if not male else (160, 100, 95)
    return PersonFactors(
        person_id=person_id,
        gender="male" if male else "female",
        age_group="older" if older else "young",
        skin_tone=skin_tone,
        hair_colour=hair_colour,
        **coarse,
        eye_spacing=float(rng.uniform(15.0, 20.0)),
        eye_height=float(rng.uniform(-3.0, 3.0)),
        eye_size=float(rng.uniform(4.0, 6.5) + (0.0 if male else 0.4)),
        eye_colour=_person_rng_colour(rng, [(60, 40, 25), (70, 110, 150), (80, 110, 70)][int(rng.integers(3))], 12),
        brow_thickness=float(rng.uniform(1.5, 3.5) + (1.0 if male else 0.0)),
        brow_arch=float(rng.uniform(-1.0, 4.0)),
        brow_gap=float(rng.uniform(6.0, 10.0)),
        nose_length=float(rng.uniform(14, 24)),
        nose_width=float(rng.uniform(6, 12)),
        mouth_width=float(rng.uniform(11, 17)),
        lip_thickness=float(rng.uniform(1.5, 4.5) - (0.5 if male else 0.0)),
        lip_colour=_person_rng_colour(rng, lip_base, 12),
        ear_size=float(rng.uniform(6, 11)),
        beard_style=str(rng.choice(["full", "goatee", "stubble"], p=[0.5, 0.25, 0.25])),
        glasses_frame=str(rng.choice(GLASSES_FRAMES)),
        glasses_shape=str(rng.choice(["round", "rect"])),
        moles=tuple(
            (float(rng.uniform(-28, 28)), float(rng.uniform(-20, 30)), float(rng.uniform(0.8, 1.8)))
            for _ in range(int(rng.integers(0, 6)))
        ),
    )


def _clip(value: float, low: float, high: float) -> float:
    """``value`` limited to [low, high]; np.clip's value, at a twentieth of its cost on one number."""
    return float(min(max(value, low), high))


def sample_image(
    rng: np.random.Generator,
    person: PersonFactors,
    *,
    difficulty: float,
    loose: bool,
    beard_rate: float = 0.5,
    glasses_rate: float = 0.3,
) -> ImageFactors:
    """Draw image-level factors for one image of ``person``.

    Args:
        difficulty: 0 = studio still, 1 = worst surveillance frame; scales every degradation.
        loose: a loose detector crop (IJB layout: free scale, shift and roll) instead of a photo framed close
            around the face (small shifts, scale and roll; training and CelebA images).
    """
    d = _clip(float(difficulty), 0.0, 1.0)
    beard = person.gender == "male" and bool(rng.random() < beard_rate)
    glasses = bool(rng.random() < glasses_rate)
    expression = str(rng.choice(EXPRESSIONS, p=[0.45, 0.35, 0.2]))
    framing = 1.0 if loose else 0.15
    occluded = rng.random() < 0.25 * d + 0.03
    return ImageFactors(
        beard=beard,
        glasses=glasses,
        expression=expression,
        yaw=_clip(rng.normal(0.0, 0.25 + 0.35 * d), -1.0, 1.0),
        pitch=_clip(rng.normal(0.0, 0.12 + 0.15 * d), -0.5, 0.5),
        roll=_clip(rng.normal(0.0, 0.06 + 0.25 * d * framing), -0.6, 0.6),
        light_angle=float(rng.uniform(0, 2 * math.pi)),
        light_strength=float(rng.uniform(0.0, 0.3 + 0.6 * d)),
        brightness=_clip(rng.normal(1.0, 0.1 + 0.35 * d), 0.2, 1.4),
        background=str(rng.choice(BACKGROUNDS)),
        background_colour=tuple(int(c) for c in rng.integers(0, 256, 3)),
        background_seed=int(rng.integers(2**31)),
        scale=_clip(rng.normal(1.0 - 0.1 * framing, 0.03 + 0.1 * framing), 0.6, 1.2),
        shift_x=float(rng.normal(0.0, 1.0 + 6.0 * framing)),
        shift_y=float(rng.normal(0.0, 1.0 + 5.0 * framing)),
        occlusion=float(rng.uniform(0.08, 0.35)) if occluded else 0.0,
        occlusion_x=float(rng.uniform(-1, 1)),
        occlusion_y=float(rng.uniform(-1, 1)),
        blur=float(max(0.0, rng.normal(4.5 * d, 1.0)) if rng.random() < 0.3 + 0.6 * d else 0.0),
        noise=float(abs(rng.normal(0.0, 4.0 + 36.0 * d))),
        low_resolution=float(rng.uniform(0.06, 0.4)) if rng.random() < 0.5 * d else 1.0,
        jpeg_quality=int(rng.integers(max(15, int(95 - 75 * d)), 96)),
        noise_seed=int(rng.integers(2**31)),
        shirt_colour=tuple(int(c) for c in rng.integers(20, 230, 3)),
    )


# Weight of each degradation in the quality: how much of the identity it destroys. Blur, low resolution,
# noise, occlusion and pose remove detail; exposure, compression and size mostly do not.
QUALITY_WEIGHTS = {
    "pose": 0.8,
    "blur": 1.2,
    "noise": 0.8,
    "low_resolution": 1.2,
    "occlusion": 0.9,
    "exposure": 0.4,
    "compression": 0.2,
    "size": 0.2,
}


def degradation_severities(image: ImageFactors) -> dict[str, float]:
    """Severity of each degradation of an image (keys of ``QUALITY_WEIGHTS``): 0 = none, 1 = severe (pose
    reaches 1.5 at full yaw and pitch, exposure 1.3 in the darkest hard light; the others stop at 1)."""
    return {
        "pose": (abs(image.yaw) / 1.0) ** 1.5 + (abs(image.pitch) / 0.5) ** 1.5 * 0.5,
        "blur": min(image.blur / 6.0, 1.0),
        "noise": min(image.noise / 60.0, 1.0),
        "low_resolution": (1.0 - image.low_resolution) / 0.94,
        "occlusion": min(image.occlusion / 0.35, 1.0),
        "exposure": min(abs(math.log(image.brightness)) / 1.6, 1.0) + 0.3 * image.light_strength,
        "compression": (95 - image.jpeg_quality) / 80.0,
        "size": max(0.0, 1.0 - image.scale) / 0.4,
    }


def quality_score(image: ImageFactors) -> float:
    """Ground-truth quality in [0, 1] from the degradations of an image (1 = pristine).

    quality = exp(-sum of weighted severities), so independent degradations compound multiplicatively.
    """
    severities = degradation_severities(image)
    return float(math.exp(-sum(QUALITY_WEIGHTS[k] * v for k, v in severities.items())))


def skin_rgb(person: PersonFactors) -> np.ndarray:
    """(3,) float skin colour: interpolated between pale and dark, with a per-person hue shift."""
    colour = (1 - person.skin_tone) * _PALE_SKIN + person.skin_tone * _DARK_SKIN
    return np.clip(colour + person.skin_hue * np.array([4.0, 1.0, -4.0]), 0, 255)


def hair_rgb(person: PersonFactors) -> tuple[int, int, int]:
    """Hair colour, greyed by age."""
    base = np.array(_HAIR_RGB[person.hair_colour], dtype=float)
    grey = np.array(_GREY_RGB, dtype=float)
    mixed = (1 - person.grey_fraction) * base + person.grey_fraction * grey
    return tuple(int(c) for c in mixed)


class _Projector:
    """Maps face-frame points (x right, y down, z towards the camera) to 2x canvas pixels.

    Yaw and pitch rotate the point about the head centre and project orthographically, so features
    with depth (nose, eyes) slide across the head outline as the head turns.
    """

    def __init__(self, yaw: float, pitch: float) -> None:
        self.cy, self.sy = math.cos(yaw), math.sin(yaw)
        self.cp, self.sp = math.cos(pitch), math.sin(pitch)

    def __call__(self, x: float | np.ndarray, y: float | np.ndarray, z: float = 0.0) -> tuple:
        """Canvas (x, y) of one point, or of (N,) arrays of points (then two (N,) arrays)."""
        x1 = x * self.cy + z * self.sy
        z1 = -x * self.sy + z * self.cy
        y1 = y * self.cp - z1 * self.sp
        return ((CENTRE_X + x1) * SUPERSAMPLE, (CENTRE_Y + y1) * SUPERSAMPLE)

    def many(self, points: np.ndarray, z: float = 0.0) -> list[float]:
        """(N, 2) points at depth ``z`` -> flat [x0, y0, x1, y1, ...] canvas coordinates, as ImageDraw takes them."""
        return np.stack(self(points[:, 0], points[:, 1], z), axis=1).ravel().tolist()


def _head_outline(person: PersonFactors, n: int = 40) -> np.ndarray:
    """(n, 2) head outline from forehead to chin: an ellipse on top, the jaw tapering below."""
    eye_y = 51.6 - CENTRE_Y + person.eye_height
    top = eye_y - person.forehead_height
    mouth_y = 92.3 - CENTRE_Y
    chin = mouth_y + person.chin_length
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    s, c = np.sin(t), np.cos(t)
    upper = c <= 0  # upper half: an ellipse through the hairline; lower: narrowing from the cheekbones to the jaw
    width = np.where(
        upper, person.head_width, person.head_width + (person.jaw_width - person.head_width) * np.maximum(c, 0.0) ** 0.8
    )
    ys = eye_y + np.where(upper, eye_y - top, chin - eye_y) * c
    return np.stack([width * s, ys], axis=1)


def _background(image: ImageFactors, side: int) -> Image.Image:
    """The scene behind the head, ``side`` pixels a side, as a 2x drawing box-filtered down to 1x (the
    smooth patterns are computed as that filter's result directly)."""
    if image.background == "plain":
        return Image.new("RGB", (side, side), image.background_colour)
    size = side * SUPERSAMPLE
    rng = np.random.default_rng(image.background_seed)
    if image.background == "blobs":
        canvas = Image.new("RGB", (size, size), image.background_colour)
        draw = ImageDraw.Draw(canvas)
        for _ in range(6):
            x, y, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(10, 60)
            draw.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        return canvas.reduce(SUPERSAMPLE)
    base = np.array(image.background_colour, dtype=float)
    if image.background == "gradient":
        other = rng.integers(0, 256, 3).astype(float)
        ramp = np.linspace(0, 1, size)[:, None, None]
        rows = np.clip((1 - ramp) * base + ramp * other, 0, 255).astype(np.uint16)  # (size, 1, 3): each 2x row
        rows = ((rows[0::2] + rows[1::2] + 1) // 2).astype(np.uint8)  # their box filter, rounded as PIL's reduce
        return Image.fromarray(rows).resize((side, side), Image.Resampling.NEAREST)
    period = rng.uniform(10, 40)
    angle = rng.uniform(0, math.pi)
    other = rng.integers(0, 256, 3).astype(float)
    # sin(p x + q y) = sin(p x) cos(q y) + cos(p x) sin(q y): tables of `size` sines, not size^2 sines; and
    # each factor's mean over a pair of 2x pixels is the box filter of the product.
    steps = np.arange(size) * (2 * math.pi / period)
    px, qy = steps * math.cos(angle), steps * math.sin(angle)
    sin_x, cos_x, sin_y, cos_y = (
        table.reshape(side, 2).mean(axis=1).astype(np.float32) for table in (np.sin(px), np.cos(px), np.sin(qy), np.cos(qy))
    )
    wave = 0.5 + 0.5 * (np.multiply.outer(cos_y, sin_x) + np.multiply.outer(sin_y, cos_x))  # (side, side) in [0, 1]
    # One plane per channel: numpy broadcasts slowly over a last axis of 3.
    planes = [np.clip(float(b) + wave * float(o - b), 0, 255).astype(np.uint8) for b, o in zip(base, other)]
    return Image.merge("RGB", [Image.fromarray(plane) for plane in planes])


def _thick_line(draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], colour, width: float) -> None:
    draw.line(points, fill=colour, width=max(1, int(round(width * SUPERSAMPLE))), joint="curve")


def _draw_face(canvas: Image.Image, person: PersonFactors, image: ImageFactors) -> np.ndarray:
    """Draw the head on the 2x canvas; returns the (5, 2) landmarks in aligned 112-pixel units."""
    draw = ImageDraw.Draw(canvas)
    project = _Projector(image.yaw, image.pitch)
    skin = skin_rgb(person)
    skin_t = tuple(int(c) for c in skin)
    shade_t = tuple(int(c) for c in skin * 0.78)
    hair = hair_rgb(person)
    outline = _head_outline(person)
    eye_y = 51.6 - CENTRE_Y + person.eye_height
    mouth_y = 92.3 - CENTRE_Y
    top = eye_y - person.forehead_height
    chin = mouth_y + person.chin_length

    # Long hair falls behind the head and shoulders.
    if person.hair_style == "long":
        arc = np.linspace(math.pi, 2 * math.pi, 16)
        crown_y = (eye_y + top) / 2
        back = np.stack([(person.head_width + 7) * np.cos(arc), crown_y + (crown_y - top + 6) * np.sin(arc)], 1)
        back = np.concatenate([back, [(person.head_width + 11, chin + 22), (-person.head_width - 11, chin + 22)]])
        draw.polygon(project.many(back, z=-15), fill=hair)
    # Neck and shoulders.
    neck = [
        (-person.jaw_width * 0.6, mouth_y),
        (person.jaw_width * 0.6, mouth_y),
        (person.jaw_width * 0.7, chin + 30),
        (-person.jaw_width * 0.7, chin + 30),
    ]
    draw.polygon(project.many(np.array(neck), z=-10), fill=shade_t)
    shoulders = [(-70, chin + 18), (70, chin + 18), (80, 120), (-80, 120)]
    draw.polygon(project.many(np.array(shoulders), z=-20), fill=image.shirt_colour)
    # Ears sit behind the face plane, so they move against the turn.
    for side in (-1, 1):
        ex = side * (person.head_width - 1)
        ex0, ey0 = project(ex, eye_y + 6, -12)
        r = person.ear_size * SUPERSAMPLE
        draw.ellipse([ex0 - r * 0.55, ey0 - r, ex0 + r * 0.55, ey0 + r], fill=shade_t)
    # Head.
    draw.polygon(project.many(outline, z=0.0), fill=skin_t)
    mole_colour = tuple(int(c) for c in skin * 0.5)
    for mx, my, radius in person.moles:
        cx, cy = project(mx, my, 14)
        r = radius * SUPERSAMPLE
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=mole_colour)
    if person.age_group == "older":
        line_colour = tuple(int(c) for c in skin * 0.68)
        for k in range(3):
            y = top + 8 + 4 * k
            _thick_line(draw, [project(-12, y, 14), project(0, y - 1, 16), project(12, y, 14)], line_colour, 0.7)
        for side in (-1, 1):
            _thick_line(draw, [project(side * 9, mouth_y - 14, 20), project(side * 14, mouth_y + 2, 18)], line_colour, 0.9)
    # Beard: drawn over the jaw before the mouth so the lips stay visible.
    if image.beard:
        beard_colour = hair
        lower = outline[outline[:, 1] > mouth_y - 12]
        if person.beard_style == "goatee":
            pts = np.array([(-9, mouth_y + 3), (9, mouth_y + 3), (6, chin), (-6, chin)])
        else:
            pts = np.concatenate([lower, np.array([(0.0, mouth_y - 7.0)])])
        fill = beard_colour
        if person.beard_style == "stubble":
            fill = tuple(int(0.55 * s + 0.45 * b) for s, b in zip(skin_t, beard_colour))
        draw.polygon(project.many(pts, z=8), fill=fill)
    # Eyes.
    open_factor = {"neutral": 1.0, "smiling": 0.7, "surprised": 1.45}[image.expression]
    eye_centres = []
    for side in (-1, 1):
        cx, cy = side * person.eye_spacing, eye_y
        px, py = project(cx, cy, 18)
        eye_centres.append((px / SUPERSAMPLE, py / SUPERSAMPLE))
        w = person.eye_size * 1.5 * SUPERSAMPLE * abs(project.cy) ** 0.5
        h = person.eye_size * 0.75 * open_factor * SUPERSAMPLE
        draw.ellipse([px - w, py - h, px + w, py + h], fill=(245, 245, 240))
        r = min(h, person.eye_size * 0.7 * SUPERSAMPLE)
        draw.ellipse([px - r, py - r, px + r, py + r], fill=person.eye_colour)
        r2 = r * 0.45
        draw.ellipse([px - r2, py - r2, px + r2, py + r2], fill=(10, 10, 10))
        # Brows rise with surprise.
        lift = 3.0 if image.expression == "surprised" else 0.0
        by = cy - person.brow_gap - lift
        brow = [project(cx - side * 7, by + 1, 18), project(cx, by - person.brow_arch, 19), project(cx + side * 8, by + 2, 17)]
        brow_colour = hair if person.hair_style != "bald" else tuple(int(c) for c in np.array(hair) * 0.7)
        _thick_line(draw, brow, brow_colour, person.brow_thickness)
    # Nose: bridge line, tip and nostrils; the tip has the most depth.
    nose_tip_y = eye_y + person.nose_length
    tip = project(0, nose_tip_y, 30)
    _thick_line(draw, [project(-2, eye_y + 4, 22), project(-person.nose_width / 2.5, nose_tip_y - 1, 27)], shade_t, 1.0)
    draw.polygon(
        [project(-person.nose_width / 2, nose_tip_y + 1, 24), tip, project(person.nose_width / 2, nose_tip_y + 1, 24)],
        fill=shade_t,
    )
    for side in (-1, 1):
        nx, ny = project(side * person.nose_width / 4, nose_tip_y + 1.5, 26)
        draw.ellipse([nx - 2, ny - 1.5, nx + 2, ny + 1.5], fill=tuple(int(c) for c in skin * 0.45))
    # Mouth: the expression changes its shape; the corners are landmarks 4 and 5.
    half = person.mouth_width * (1.15 if image.expression == "smiling" else 1.0)
    corner_lift = {"neutral": 0.0, "smiling": -3.0, "surprised": 1.0}[image.expression]
    left = project(-half, mouth_y + corner_lift, 20)
    right = project(half, mouth_y + corner_lift, 20)
    if image.expression == "surprised":
        c = project(0, mouth_y + 1, 21)
        rx, ry = half * 0.6 * SUPERSAMPLE, 6 * SUPERSAMPLE
        draw.ellipse([c[0] - rx, c[1] - ry, c[0] + rx, c[1] + ry], fill=person.lip_colour)
        draw.ellipse([c[0] - rx * 0.7, c[1] - ry * 0.7, c[0] + rx * 0.7, c[1] + ry * 0.7], fill=(50, 15, 20))
    elif image.expression == "smiling":
        upper = [left, project(0, mouth_y, 21), right]
        lower = [right, project(0, mouth_y + 6 + person.lip_thickness, 21), left]
        draw.polygon(upper + lower, fill=person.lip_colour)
        teeth = [project(-half * 0.8, mouth_y - 1, 21), project(half * 0.8, mouth_y - 1, 21), project(0, mouth_y + 4, 21)]
        draw.polygon(teeth, fill=(235, 232, 225))
    else:
        upper = [left, project(0, mouth_y - person.lip_thickness, 21), right]
        lower = [right, project(0, mouth_y + person.lip_thickness * 1.2, 21), left]
        draw.polygon(upper + lower, fill=person.lip_colour)
        _thick_line(draw, [left, project(0, mouth_y, 21), right], tuple(int(c) for c in np.array(person.lip_colour) * 0.6), 0.8)
    # Hair on top of the head, by style.
    if person.hair_style != "bald":
        crown = outline[outline[:, 1] < eye_y - person.forehead_height * 0.55]
        if person.hair_style == "bangs":
            cap = np.concatenate(
                [
                    crown * [1.06, 1.0] + [0, -3],
                    np.array([(person.head_width * 0.9, top + 15), (-person.head_width * 0.9, top + 15)]),
                ]
            )
        elif person.hair_style == "curly":
            cap = crown * [1.15, 1.0] + [0, -7]
        else:
            cap = crown * [1.05, 1.0] + [0, -4]
        draw.polygon(project.many(cap, z=2), fill=hair)
        if person.hair_style == "curly":
            for x in np.linspace(-person.head_width, person.head_width, 7):
                cx, cy = project(float(x), top - 4, 4)
                r = 6 * SUPERSAMPLE
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=hair)
    # Glasses over the eyes.
    if image.glasses:
        width = 1.1 if person.glasses_frame == "thin" else 2.6
        frame_colour = (20, 20, 25) if person.glasses_frame == "thick" else (45, 40, 38)
        for ex, ey in eye_centres:
            px, py = ex * SUPERSAMPLE, ey * SUPERSAMPLE
            rx, ry = 9.5 * SUPERSAMPLE * abs(project.cy) ** 0.5, 7 * SUPERSAMPLE
            box = [px - rx, py - ry, px + rx, py + ry]
            w = max(1, int(width * SUPERSAMPLE))
            if person.glasses_shape == "round":
                draw.ellipse(box, outline=frame_colour, width=w)
            else:
                draw.rectangle(box, outline=frame_colour, width=w)
        _thick_line(
            draw,
            [project(-person.eye_spacing + 9, eye_y - 1, 20), project(person.eye_spacing - 9, eye_y - 1, 20)],
            frame_colour,
            width,
        )
    nose = (tip[0] / SUPERSAMPLE, tip[1] / SUPERSAMPLE)
    mouth_l = (left[0] / SUPERSAMPLE, left[1] / SUPERSAMPLE)
    mouth_r = (right[0] / SUPERSAMPLE, right[1] / SUPERSAMPLE)
    return np.array([eye_centres[0], eye_centres[1], nose, mouth_l, mouth_r], dtype=np.float64)


def _framing_matrix(image: ImageFactors, margin: int = 0) -> np.ndarray:
    """(2, 3) forward affine of the framing: roll and scale about the head centre, then shift (and the margin)."""
    c, s = math.cos(image.roll) * image.scale, math.sin(image.roll) * image.scale
    tx = margin + CENTRE_X + image.shift_x - (c * CENTRE_X - s * CENTRE_Y)
    ty = margin + CENTRE_Y + image.shift_y - (s * CENTRE_X + c * CENTRE_Y)
    return np.array([[c, -s, tx], [s, c, ty]])


def render_face(person: PersonFactors, image: ImageFactors, margin: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Render one face.

    Args:
        margin: scene pixels around the 112-pixel frame on each side. A detector's loose crop has such
            context, so aligning it to the template from its landmarks finds scene, not empty border.
    Returns:
        pixels: (S, S, 3) uint8 RGB, S = 112 + 2 margin, before JPEG compression.
        landmarks: (5, 2) float64 (x, y) of left eye, right eye, nose tip, left and right mouth corner.
    """
    side = SIZE + 2 * margin
    # The head is drawn on a transparent 2x layer so that framing moves the person, not the scene. Every fill
    # is opaque, so the layer is its own premultiplied-alpha form ("RGBa"), the form bilinear warping needs.
    face_layer = Image.new("RGBa", (side * SUPERSAMPLE, side * SUPERSAMPLE), (0, 0, 0, 0))
    landmarks = _draw_face(face_layer, person, image)
    forward = _framing_matrix(image, margin)
    inverse = np.linalg.inv(np.vstack([forward, [0, 0, 1]]))[:2]
    # Warp only the frame's box around the drawn part of the layer (a third of the frame is scene alone),
    # with a pixel to spare for the bilinear footprint.
    x0, y0, x1, y1 = face_layer.getbbox()
    corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]) / SUPERSAMPLE @ forward[:, :2].T + forward[:, 2]
    left, top = (int(v) for v in np.clip(np.floor(corners.min(axis=0)) - 1, 0, side))
    right, bottom = (int(v) for v in np.clip(np.ceil(corners.max(axis=0)) + 1, 0, side))
    # One warp both frames the head and takes the 2x layer down to 1x: PIL's AFFINE maps each output pixel
    # centre to a point of the layer, and sampling that 2x layer bilinearly there anti-aliases its edges.
    offset = inverse[:, :2] @ [left, top] + inverse[:, 2]
    coefficients = SUPERSAMPLE * np.hstack([inverse[:, :2], offset[:, None]])
    face = face_layer.transform(
        (right - left, bottom - top), Image.Transform.AFFINE, tuple(coefficients.ravel()), resample=Image.Resampling.BILINEAR
    ).convert("RGBA")
    pixels = _background(image, side)
    pixels.paste(face, (left, top), face)
    landmarks = landmarks @ forward[:, :2].T + forward[:, 2]
    return _degrade(pixels, image, margin), landmarks


def _degrade(pixels: Image.Image, image: ImageFactors, margin: int) -> np.ndarray:
    """Occlusion, illumination, low resolution, blur and noise, in the order a camera applies them."""
    rng = np.random.default_rng(image.noise_seed)
    side = pixels.size[0]
    array = np.asarray(pixels, dtype=np.float32)
    if image.occlusion > 0:
        centre = (
            margin + CENTRE_X + image.shift_x + image.occlusion_x * 25,
            margin + CENTRE_Y + image.shift_y + image.occlusion_y * 25,
        )
        array = _occlude(array, image.occlusion, centre, rng)
    # Side light: a linear ramp across the frame, a per-row plus a per-column term. The columns are repeated
    # per channel and the pixels seen as (side, 3 side) rows: numpy broadcasts slowly over a last axis of 3.
    ramp = np.arange(side, dtype=np.float32) / (side - 1) - 0.5
    strength = image.light_strength * 1.6
    across = 1.0 + (strength * math.cos(image.light_angle)) * np.repeat(ramp, 3)
    light = np.add.outer((strength * math.sin(image.light_angle)) * ramp, across) * image.brightness
    array = (array.reshape(side, 3 * side) * light).reshape(side, side, 3)
    pixels = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    if image.low_resolution < 1.0:
        small = max(8, int(round(side * image.low_resolution)))
        pixels = pixels.resize((small, small), Image.Resampling.BILINEAR).resize((side, side), Image.Resampling.BILINEAR)
    if image.blur > 0.05:
        pixels = pixels.filter(ImageFilter.GaussianBlur(image.blur))
    array = np.asarray(pixels, dtype=np.float32)
    if image.noise > 0:
        array = array + _gaussian_noise(rng, array.shape, image.noise)
    return np.clip(np.rint(array, out=array), 0, 255, out=array).astype(np.uint8)


# Occluders in front of a face: a hand (any skin tone), a lock of hair, or a muted object (scarf, cup, phone).
_OCCLUDER_KINDS = ("hand", "hair", "object")
# Face box the occluded fraction refers to (the first SynthFaces version covered a square of this side).
_FACE_EXTENT = 70.0


def _occlude(array: np.ndarray, fraction: float, centre: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) float pixels with a soft-edged, shaded, textured ellipse covering ``fraction`` of the face box.

    A flat rectangle of a random saturated colour is unlike anything in front of a real face: its hard
    edges and colour are strong, easy features, so an embedding gives such images *larger* norms. Real
    occluders are mostly skin, hair or muted cloth, with soft edges and shading.
    """
    kind = _OCCLUDER_KINDS[int(rng.integers(len(_OCCLUDER_KINDS)))]
    if kind == "hand":
        tone = float(rng.uniform(0, 1))
        colour = (1 - tone) * _PALE_SKIN + tone * _DARK_SKIN
    elif kind == "hair":
        colour = np.array(_HAIR_RGB[HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))]], dtype=float)
    else:
        colour = 0.5 * rng.uniform(0, 255, 3) + 0.5 * 128.0
    aspect = float(rng.uniform(0.6, 1.6))
    angle = float(rng.uniform(0, math.pi))
    # pi * a * b = fraction * extent^2, with a / b = aspect
    b = math.sqrt(fraction * _FACE_EXTENT**2 / (math.pi * aspect))
    a = aspect * b
    shade_sign = float(rng.choice([-1.0, 1.0]))
    softness = 3.0  # pixels of the edge ramp
    # alpha is 0 beyond radius 1 + softness / (2 min(a, b)): only the box around that ellipse changes.
    reach = 1.0 + softness / (2 * min(a, b))
    half_w = reach * math.hypot(a * math.cos(angle), b * math.sin(angle))
    half_h = reach * math.hypot(a * math.sin(angle), b * math.cos(angle))
    rows, cols = _span(centre[1], half_h, array.shape[0]), _span(centre[0], half_w, array.shape[1])
    yy, xx = np.mgrid[rows, cols].astype(np.float32)
    u = (xx - centre[0]) * math.cos(angle) + (yy - centre[1]) * math.sin(angle)
    v = -(xx - centre[0]) * math.sin(angle) + (yy - centre[1]) * math.cos(angle)
    radius = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    alpha = np.clip((1.0 - radius) * min(a, b) / softness + 0.5, 0.0, 1.0)[..., None]
    # Shading across the occluder and a fine texture, so it is not a flat patch.
    shade = (1.0 + 0.25 * (u / a) * shade_sign)[..., None]
    occluder = colour[None, None, :] * shade + _gaussian_noise(rng, shade.shape[:2] + (3,), 6.0)
    covered = array.copy()
    covered[rows, cols] = array[rows, cols] * (1.0 - alpha) + occluder * alpha
    return covered


def _span(centre: float, half: float, length: int) -> slice:
    """The pixel indices within ``half`` of ``centre`` that lie in 0 .. length - 1 (perhaps none)."""
    start = min(length, max(0, math.floor(centre - half)))
    return slice(start, max(start, min(length, math.ceil(centre + half) + 1)))


# Normal quantiles at 2^16 equally likely levels. Looking one up per pixel draws Gaussian noise at a quarter
# of the cost of numpy's normal(), the largest cost of a face otherwise; its tails stop at 4.3 sigma, which
# one sample in 66,000 would pass.
_NORMAL_QUANTILES = ndtri((np.arange(2**16) + 0.5) / 2**16).astype(np.float32)


def _gaussian_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """``shape`` float32 samples of N(0, sigma^2), quantised to 2^16 levels of probability."""
    return _NORMAL_QUANTILES[rng.integers(0, 2**16, shape, dtype=np.uint16)] * np.float32(sigma)


def encode_jpeg(pixels: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of (H, W, 3) uint8 pixels; fixed encoder settings keep the bytes deterministic."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(quality), subsampling=2, optimize=False)
    return buffer.getvalue()


def factor_record(person: PersonFactors, image: ImageFactors) -> dict[str, object]:
    """Flat dict of every latent factor, the quality and its degradation severities, for ground_truth.csv."""
    # Field by field: dataclasses.asdict deep-copies every value, 3x the time of this, in synthesize's serial set-up.
    record: dict[str, object] = {f"person_{f.name}": getattr(person, f.name) for f in fields(person) if f.name != "person_id"}
    record.update({f"image_{f.name}": getattr(image, f.name) for f in fields(image)})
    record["person_skin_label"] = "pale" if person.is_pale else "dark"
    record["quality"] = quality_score(image)
    record.update({f"severity_{k}": v for k, v in degradation_severities(image).items()})
    return record
