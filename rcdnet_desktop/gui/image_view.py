"""The central image view: zoom, pan, display window/level, lesion-box drawing and cine controls.

Mouse
    wheel: zoom about the pointer; left drag: pan (or draw the lesion box in box mode);
    right drag: window/level (horizontal = width, vertical = level); double-click: fit.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from rcdnet_desktop.core.types import Box
from rcdnet_desktop.gui.qimage import DEFAULT_LEVEL, DEFAULT_WINDOW, to_pixmap, window_level

ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.02, 40.0
MIN_BOX = 8  # pixels: smaller drags are treated as clicks, not boxes
BOX_COLOUR = QColor(255, 210, 0)


class ImageView(QGraphicsView):
    """Shows one uint8 frame; emits :attr:`box_drawn` when a box is dragged in box mode.

    Signals
    -------
    box_drawn(object)
        A :class:`~rcdnet_desktop.core.types.Box` in image pixels.
    window_level_changed(float, float)
        Display window width and level (0-255 units).
    zoom_changed(float)
        Screen pixels per image pixel.
    hover(int, int)
        Image pixel under the pointer (-1, -1 when outside the image).
    """

    box_drawn = Signal(object)
    window_level_changed = Signal(float, float)
    zoom_changed = Signal(float)
    hover = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setBackgroundBrush(QColor(20, 20, 20))
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(200, 200)
        self._pixmap_item = QGraphicsPixmapItem()
        self._pixmap_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.scene().addItem(self._pixmap_item)
        pen = QPen(BOX_COLOUR, 2, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self._box_item = QGraphicsRectItem()
        self._box_item.setPen(pen)
        self._box_item.setZValue(2)
        self._box_item.hide()
        self.scene().addItem(self._box_item)
        self._rubber = QGraphicsRectItem()
        self._rubber.setPen(pen)
        self._rubber.setZValue(3)
        self._rubber.hide()
        self.scene().addItem(self._rubber)
        self._pixels: np.ndarray | None = None
        self._window = DEFAULT_WINDOW
        self._level = DEFAULT_LEVEL
        self._fit = True
        self._box_mode = False
        self._drag_start: QPointF | None = None
        self._wl_start: tuple[QPointF, float, float] | None = None
        self._message = QLabel(self)
        self._message.setStyleSheet("color: #ddd; font-size: 14pt; background: transparent;")
        self._message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._message.hide()

    # --- content -----------------------------------------------------------------------------

    def set_image(self, pixels: np.ndarray | None, keep_view: bool = False) -> None:
        """Show ``pixels`` (uint8 grey or RGB); ``keep_view`` keeps zoom and pan (cine frames)."""
        self._pixels = pixels
        if pixels is None:
            self._pixmap_item.setPixmap(to_pixmap(np.zeros((1, 1), np.uint8)))
            self._pixmap_item.hide()
            return
        self._message.hide()
        self._pixmap_item.show()
        self._refresh_pixmap()
        w, h = pixels.shape[1], pixels.shape[0]
        self.scene().setSceneRect(QRectF(0, 0, w, h))
        if not keep_view or self._fit:
            self.fit()

    def pixels(self) -> np.ndarray | None:
        return self._pixels

    def show_message(self, text: str) -> None:
        """Show a centred message instead of an image (e.g. why a file could not be read)."""
        self.set_image(None)
        self.set_box(None)
        self._message.setText(text)
        self._message.setWordWrap(True)
        self._message.setGeometry(self.viewport().rect().adjusted(20, 20, -20, -20))
        self._message.show()

    def message(self) -> str:
        return self._message.text() if self._message.isVisible() else ""

    def _refresh_pixmap(self) -> None:
        if self._pixels is None:
            return
        shown = self._pixels
        if (self._window, self._level) != (DEFAULT_WINDOW, DEFAULT_LEVEL):
            shown = window_level(self._pixels, self._window, self._level)
        self._pixmap_item.setPixmap(to_pixmap(shown))

    # --- window / level ----------------------------------------------------------------------

    def set_window_level(self, window: float, level: float) -> None:
        self._window = float(np.clip(window, 1.0, 512.0))
        self._level = float(np.clip(level, -128.0, 383.0))
        self._refresh_pixmap()
        self.window_level_changed.emit(self._window, self._level)

    def reset_window_level(self) -> None:
        self.set_window_level(DEFAULT_WINDOW, DEFAULT_LEVEL)

    def window_level(self) -> tuple[float, float]:
        return self._window, self._level

    # --- zoom --------------------------------------------------------------------------------

    def zoom(self) -> float:
        return float(self.transform().m11())

    def fit(self) -> None:
        """Fit the whole image in the view, keeping the aspect ratio."""
        self._fit = True
        if self._pixels is not None:
            self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self.zoom_changed.emit(self.zoom())

    def zoom_by(self, factor: float) -> None:
        current = self.zoom() or 1.0
        factor = float(np.clip(current * factor, MIN_ZOOM, MAX_ZOOM)) / current
        self._fit = False
        self.scale(factor, factor)
        self.zoom_changed.emit(self.zoom())

    def zoom_in(self) -> None:
        self.zoom_by(ZOOM_STEP)

    def zoom_out(self) -> None:
        self.zoom_by(1.0 / ZOOM_STEP)

    def actual_size(self) -> None:
        self._fit = False
        self.resetTransform()
        self.zoom_changed.emit(self.zoom())

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt override
        delta = event.angleDelta().y()
        if delta:
            self.zoom_by(ZOOM_STEP ** (delta / 120.0))
        event.accept()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self._fit:
            self.fit()
        if self._message.isVisible():
            self._message.setGeometry(self.viewport().rect().adjusted(20, 20, -20, -20))

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 - Qt override
        if not self._box_mode:
            self.fit()
        super().mouseDoubleClickEvent(event)

    # --- lesion box --------------------------------------------------------------------------

    def set_box_mode(self, on: bool) -> None:
        """In box mode a left drag draws the lesion box instead of panning."""
        self._box_mode = bool(on)
        self.setDragMode(QGraphicsView.DragMode.NoDrag if on
                         else QGraphicsView.DragMode.ScrollHandDrag)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if on
                                  else Qt.CursorShape.OpenHandCursor)

    def box_mode(self) -> bool:
        return self._box_mode

    def set_box(self, box: Box | None) -> None:
        if box is None:
            self._box_item.hide()
            return
        self._box_item.setRect(QRectF(box.x, box.y, box.w, box.h))
        self._box_item.show()

    def box_shown(self) -> Box | None:
        if not self._box_item.isVisible():
            return None
        r = self._box_item.rect()
        return Box(int(r.x()), int(r.y()), int(r.width()), int(r.height()))

    def _clip_box(self, a: QPointF, b: QPointF) -> Box | None:
        if self._pixels is None:
            return None
        h, w = self._pixels.shape[:2]
        x0, x1 = sorted((a.x(), b.x()))
        y0, y1 = sorted((a.y(), b.y()))
        x0, x1 = int(np.clip(round(x0), 0, w)), int(np.clip(round(x1), 0, w))
        y0, y1 = int(np.clip(round(y0), 0, h)), int(np.clip(round(y1), 0, h))
        if x1 - x0 < MIN_BOX or y1 - y0 < MIN_BOX:
            return None
        return Box(x0, y0, x1 - x0, y1 - y0)

    def draw_box(self, start: QPointF, end: QPointF) -> Box | None:
        """Finish a box drag between two scene points (what the mouse does); emit it."""
        box = self._clip_box(start, end)
        if box is not None:
            self.set_box(box)
            self.box_drawn.emit(box)
        return box

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt override
        pos = self.mapToScene(event.position().toPoint())
        if event.button() == Qt.MouseButton.LeftButton and self._box_mode:
            self._drag_start = pos
            self._rubber.setRect(QRectF(pos, pos))
            self._rubber.show()
            event.accept()
            return
        if event.button() == Qt.MouseButton.RightButton:
            self._wl_start = (event.position(), self._window, self._level)
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt override
        pos = self.mapToScene(event.position().toPoint())
        if self._pixels is not None:
            h, w = self._pixels.shape[:2]
            x, y = int(pos.x()), int(pos.y())
            inside = 0 <= x < w and 0 <= y < h
            self.hover.emit(x if inside else -1, y if inside else -1)
        if self._drag_start is not None:
            self._rubber.setRect(QRectF(self._drag_start, pos).normalized())
            event.accept()
            return
        if self._wl_start is not None:
            start, w0, l0 = self._wl_start
            d = event.position() - start
            self.set_window_level(w0 + d.x(), l0 - d.y())
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._drag_start is not None and event.button() == Qt.MouseButton.LeftButton:
            start, self._drag_start = self._drag_start, None
            self._rubber.hide()
            self.draw_box(start, self.mapToScene(event.position().toPoint()))
            event.accept()
            return
        if self._wl_start is not None and event.button() == Qt.MouseButton.RightButton:
            self._wl_start = None
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def contextMenuEvent(self, event) -> None:  # noqa: N802 - right drag is window/level
        event.accept()


class CineBar(QWidget):
    """Frame slider with play/pause for multi-frame images; hidden for single frames.

    Signals
    -------
    frame_changed(int)
        The frame to show (from the slider or from playback).
    playing_changed(bool)
    """

    frame_changed = Signal(int)
    playing_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.play_button = QToolButton(self)
        self.play_button.setText("Play")
        self.play_button.setToolTip("Play / pause the cine loop (Space)")
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self.set_playing)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setMinimum(0)
        self.slider.valueChanged.connect(self._on_slider)
        self.label = QLabel(self)
        self.label.setMinimumWidth(90)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.addWidget(self.play_button)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.label)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._advance)
        self._fps = 15.0
        self.set_frame_count(1)

    def set_frame_count(self, count: int, fps: float | None = None) -> None:
        self.set_playing(False)
        self.slider.blockSignals(True)
        self.slider.setMaximum(max(count - 1, 0))
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        if fps and fps > 0:
            self._fps = float(min(fps, 60.0))
        self.setVisible(count > 1)
        self._update_label()

    def frame(self) -> int:
        return self.slider.value()

    def set_frame(self, index: int, emit: bool = True) -> None:
        self.slider.blockSignals(not emit)
        self.slider.setValue(index)
        self.slider.blockSignals(False)
        self._update_label()

    def is_playing(self) -> bool:
        return self._timer.isActive()

    def set_playing(self, on: bool) -> None:
        on = bool(on) and self.slider.maximum() > 0
        if on == self._timer.isActive():
            self._sync_button(on)
            return
        if on:
            self._timer.start(int(1000 / self._fps))
        else:
            self._timer.stop()
        self._sync_button(on)
        self.playing_changed.emit(on)

    def toggle(self) -> None:
        self.set_playing(not self.is_playing())

    def _sync_button(self, on: bool) -> None:
        self.play_button.blockSignals(True)
        self.play_button.setChecked(on)
        self.play_button.setText("Pause" if on else "Play")
        self.play_button.blockSignals(False)

    def _advance(self) -> None:
        n = self.slider.maximum() + 1
        self.slider.setValue((self.slider.value() + 1) % n)

    def _on_slider(self, value: int) -> None:
        self._update_label()
        self.frame_changed.emit(value)

    def _update_label(self) -> None:
        self.label.setText(f"frame {self.slider.value() + 1} / {self.slider.maximum() + 1}")


class ImagePane(QWidget):
    """The image view with its cine bar underneath."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = ImageView(self)
        self.cine = CineBar(self)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.cine)
