"""Helpers for the GUI tests: a controllable fake engine, synthetic files, waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from rcdnet_desktop.core.errors import InferenceError
from rcdnet_desktop.core.model.engine import NO_LESION_WARNING, pad_roi
from rcdnet_desktop.core.operating_point import OperatingPoint
from rcdnet_desktop.core.types import Box, HeatMaps, ImageRecord, LesionFinding, Prediction

NOTHING = "nothing"
"""``FakeEngine(lesion=NOTHING)``: the engine has a localiser, and it finds no lesion."""

FLAG_WORDS = "flagged by the test's intended-use check"
"""How the fake engine's warning for a flagged image begins (``FakeEngine(flag=...)``)."""

ROI_MARGIN = 0.2
"""The fake model card's roi_margin (the bundled card's value)."""


def fake_finding(box: Box, confidence: float = 0.93, points: int = 40) -> LesionFinding:
    """A localiser finding: ``box`` and the ellipse inscribed in it as the outline."""
    t = np.linspace(0.0, 2 * np.pi, points, endpoint=False)
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    outline = np.stack([cx + box.w / 2 * np.cos(t), cy + box.h / 2 * np.sin(t)], axis=1)
    return LesionFinding(box=box, outline=outline.astype(np.float32), confidence=confidence,
                         area_share=0.0)


class FakeEngine:
    """Stands in for InferenceEngine: same methods, a controllable delay, call records.

    The probability of malignancy is the mean grey level / 255 of the region classified, so a
    test knows which image (and region) a shown result belongs to. The maps are a blob at a
    place that depends on the image, zero outside the region classified.

    Lesion boxes behave as in the real engine: a box given by the caller wins (``box_source``
    "user"); otherwise, when the fake has a localiser (``lesion`` given), it "finds"
    ``lesion`` (``box_source`` "auto", with an elliptic outline) or, with ``lesion=NOTHING``
    or a callable returning None, nothing (the whole image, and the engine's no-lesion
    warning). ``flag`` (pixels -> a check code or "") flags images as the intended-use checks
    do: the code in ``checks`` and a warning. Either box is padded by the card's margin with
    the engine's own :func:`~rcdnet_desktop.core.preprocess.pad_roi`, and that padded region is
    what is classified and what ``Prediction.roi`` says.
    """

    def __init__(self, delay: float = 0.0, untrained: bool = False,
                 version: str = "9.9.9-test", predict_delay: float | None = None,
                 lesion: Box | str | Callable[[np.ndarray], Box | None] | None = None,
                 confidence: float = 0.93,
                 flag: Callable[[np.ndarray], str] | None = None,
                 threshold: float | None = None) -> None:
        self.delay = delay
        self.predict_delay = delay / 4 if predict_delay is None else predict_delay
        self.device = "cpu"
        self.device_name = ""
        self.device_note = ""
        self.model_version = version
        self.untrained = untrained
        self.lesion = lesion
        self.confidence = confidence
        self.flag = flag  # pixels -> an intended-use check code, or "" (none)
        self.threshold = threshold  # the suspicious cut-off (the Prediction default if None)
        # The real engine's ``localiser`` is the module, or None without one.
        self.localiser = None if lesion is None else object()
        self.has_localiser = lesion is not None
        self.card = SimpleNamespace(roi_margin=ROI_MARGIN, to_dict=lambda: {
            "version": version, "untrained": untrained,
            "intended_use": "Testing the viewer only.",
            "training": {"data": "none (fake engine)"},
            "metrics": {"external_test": {"auc": 0.81, "auc_ci95": [0.75, 0.86]}},
            "limitations": ["not a model"], "not_for": ["anything"],
        })
        self.methods = {"fast": "Grad-CAM, contrastive (closed form)", "gradcam": "Grad-CAM"}
        self.profile = None  # no site profile: the card's operating point
        # (kind, paths, frames, boxes given by the caller[, method]) per model call
        self.calls: list[tuple] = []
        self._lock = threading.Lock()
        self.active = 0
        self.max_active = 0

    @property
    def operating_point(self) -> OperatingPoint:
        return OperatingPoint.from_card(self.card)

    # --- helpers ---------------------------------------------------------------------------

    def count(self, kind: str) -> int:
        return sum(1 for c in self.calls if c[0] == kind)

    def _enter(self, kind: str, *info) -> None:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.calls.append((kind, *info))

    def _leave(self) -> None:
        with self._lock:
            self.active -= 1

    @staticmethod
    def _pixels(image, frame: int) -> np.ndarray:
        if isinstance(image, ImageRecord):
            try:
                return image.frame(frame)
            except IndexError as exc:
                raise InferenceError(str(exc)) from exc
        return np.asarray(image)

    def _find(self, px: np.ndarray) -> LesionFinding | None:
        lesion = self.lesion(px) if callable(self.lesion) else self.lesion
        if not isinstance(lesion, Box):
            return None
        return fake_finding(lesion, self.confidence)

    def prepare(self, image, roi=None, frame: int = 0, auto_box: bool = True):
        px = self._pixels(image, frame)
        if px.dtype != np.uint8:
            raise InferenceError("expected uint8")
        hw = px.shape[:2]
        given = Box(*roi) if isinstance(roi, tuple) else roi
        finding, warnings, box, source = None, (), given, "none"
        if given is not None:
            source = "user"
        elif auto_box and self.localiser is not None:
            finding = self._find(px)
            if finding is None:
                warnings = (NO_LESION_WARNING,)
            else:
                box, source = finding.box, "auto"
        padded = pad_roi(box, hw, self.card.roi_margin)
        crop = px if padded is None else px[padded.y:padded.y + padded.h,
                                            padded.x:padded.x + padded.w]
        path = str(getattr(image, "path", ""))
        code = self.flag(px) if self.flag is not None else ""
        if code:
            warnings = (f"{FLAG_WORDS}: {code}", *warnings)
        return SimpleNamespace(mean=float(crop.mean()), hw=hw, roi=padded, given=given,
                               box=box, source=source, finding=finding, warnings=warnings,
                               frame=frame, path=path, auto_box=auto_box,
                               checks=(code,) if code else ())

    def _prediction(self, prep) -> Prediction:
        p = min(max(prep.mean / 255.0, 0.0), 1.0)
        return Prediction(p_benign=1 - p, p_malignant=p, device="cpu",
                          model_version=self.model_version, untrained=self.untrained,
                          roi=prep.roi, frame=prep.frame, warnings=prep.warnings,
                          box=prep.box, box_source=prep.source, finding=prep.finding,
                          checks=prep.checks,
                          suspicious=None if self.threshold is None else p >= self.threshold)

    def _maps(self, prep, method: str) -> HeatMaps:
        h, w = prep.hw
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = w * (0.3 + 0.4 * prep.mean / 255.0), h / 2
        blob = np.exp(-(((xx - cx) / (0.1 * w)) ** 2 + ((yy - cy) / (0.1 * h)) ** 2))
        other = np.exp(-(((xx - w - cx) / (0.2 * w)) ** 2 + ((yy - cy) / (0.2 * h)) ** 2))
        maps = [blob.astype(np.float32), (other / max(other.max(), 1e-6)).astype(np.float32)]
        if prep.roi is not None:
            mask = np.zeros((h, w), np.float32)
            r = prep.roi
            mask[r.y:r.y + r.h, r.x:r.x + r.w] = 1
            maps = [m * mask for m in maps]
        return HeatMaps(benign=maps[0], malignant=maps[1], method=method,
                        prediction=self._prediction(prep))

    # --- the engine API ----------------------------------------------------------------------

    def predict_prepared(self, items):
        self._enter("predict", [i.path for i in items], [i.frame for i in items],
                    [i.given for i in items])
        try:
            time.sleep(self.predict_delay * len(items))
            return [self._prediction(i) for i in items]
        finally:
            self._leave()

    def explain_prepared(self, items, method: str = "fast"):
        self._enter("explain", [i.path for i in items], [i.frame for i in items],
                    [i.given for i in items], method)
        try:
            time.sleep(self.delay * len(items))
            return [self._maps(i, method) for i in items]
        finally:
            self._leave()

    def predict(self, image, roi=None, frame: int = 0, auto_box: bool = True) -> Prediction:
        return self.predict_prepared([self.prepare(image, roi, frame, auto_box)])[0]

    def explain(self, image, roi=None, frame: int = 0, method: str = "fast",
                auto_box: bool = True) -> HeatMaps:
        return self.explain_prepared([self.prepare(image, roi, frame, auto_box)], method)[0]


# --- image files -----------------------------------------------------------------------------


def write_png(path: Path, value: int, size=(120, 160), rgb: bool = False) -> Path:
    """A synthetic ultrasound-ish PNG whose mean grey level is about ``value``."""
    from PIL import Image

    rng = np.random.default_rng(value)
    h, w = size
    a = np.clip(rng.normal(value, 8, size=(h, w)), 0, 255).astype(np.uint8)
    a[h // 3: 2 * h // 3, w // 3: 2 * w // 3] = np.clip(value // 2, 0, 255)
    img = Image.fromarray(np.stack([a] * 3, -1) if rgb else a)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def write_corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"this is not really a png" * 4)
    return path


def wait_maps(qtbot, window, timeout: int = 10000):
    """Wait until the maps of the image on display are shown; return its key."""
    def shown():
        key = window.controller.current_key()
        assert key is not None
        assert window.controller.maps_cache.get(key) is not None
        assert window.heatmaps.maps() is window.controller.maps_cache.get(key)
        assert window.prediction.prediction() is not None
    qtbot.waitUntil(shown, timeout=timeout)
    return window.controller.current_key()


def wait_idle(qtbot, window, timeout: int = 10000):
    qtbot.waitUntil(lambda: not window.controller.is_busy(), timeout=timeout)


def maps_on_screen(panel) -> bool:
    """True when the evidence panel shows both maps (not the plain image, not a placeholder)."""
    return panel.maps() is not None and not panel.plain.isChecked()
