"""The central image view: zoom, pan, display window/level, lesion boxes and cine controls.

Lesion boxes: the user's box is drawn solid; a box found by the automatic lesion localiser is
drawn dashed with the tag "found automatically", and its outline, when asked for, as a thin
polygon. A user's box replaces the automatic one on screen.

Mouse
    wheel: zoom about the pointer; left drag: pan (or draw the lesion box in box mode, or
    measure in caliper mode); right drag: window/level (horizontal = width, vertical = level);
    double-click: fit.

Large images are shown from a copy no larger than :data:`DISPLAY_MAX_SIDE` on its long side,
stretched back over the image's own pixels: the scene, the boxes, the pointer position and
everything the view reports stay in full-image pixels. A heat map laid over the image
(:meth:`ImageView.set_overlay`) is stretched over it the same way.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPolygonF, QTransform
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QGraphicsPolygonItem,
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
from rcdnet_desktop.gui.image.caliper import CaliperLayer
from rcdnet_desktop.gui.image.marks import BOX_COLOUR, BoxTag, cosmetic_pen
from rcdnet_desktop.gui.qimage import (
    DEFAULT_LEVEL,
    DEFAULT_WINDOW,
    downscale,
    to_pixmap,
    window_level,
)
from rcdnet_desktop.gui.wording import AUTO_BOX_TAG

ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.02, 40.0
MIN_BOX = 8  # pixels: smaller drags are treated as clicks, not boxes
OUTLINE_COLOUR = QColor(0, 230, 255)  # cyan: apart from the yellow box on grey ultrasound
DISPLAY_MAX_SIDE = 4096
"""The longest side of the copy an image is shown from (larger images are shown downscaled)."""


def _stretch(item: QGraphicsPixmapItem, width: int, height: int) -> None:
    """Lay ``item``'s pixmap over ``width`` x ``height`` scene (image) pixels."""
    pm = item.pixmap()
    if pm.isNull() or pm.width() == 0 or pm.height() == 0:
        item.setTransform(QTransform())
        return
    item.setTransform(QTransform.fromScale(width / pm.width(), height / pm.height()))


class ImageView(QGraphicsView):
    """Shows one uint8 frame; emits :attr:`box_drawn` when a box is dragged in box mode.

    Signals
    -------
    box_drawn(object)
        A :class:`~rcdnet_desktop.core.types.Box` in image pixels.
    measurement_drawn(object)
        A caliper :class:`~rcdnet_desktop.core.measure.Measurement` in image coordinates.
    window_level_changed(float, float)
        Display window width and level (0-255 units).
    zoom_changed(float)
        Screen pixels per image pixel.
    hover(int, int)
        Image pixel under the pointer (-1, -1 when outside the image).
    """

    box_drawn = Signal(object)
    measurement_drawn = Signal(object)
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
        self._overlay_item = QGraphicsPixmapItem()  # a heat map over the image, when asked
        self._overlay_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._overlay_item.setZValue(1)
        self._overlay_item.hide()
        self.scene().addItem(self._overlay_item)
        # The user's box: solid. The automatic one: dashed, tagged. The outline: thin.
        self.box_item = QGraphicsRectItem()
        self.box_item.setPen(cosmetic_pen(BOX_COLOUR, 2, Qt.PenStyle.SolidLine))
        self.box_item.setZValue(3)
        self.box_item.hide()
        self.scene().addItem(self.box_item)
        self.auto_box_item = QGraphicsRectItem()
        self.auto_box_item.setPen(cosmetic_pen(BOX_COLOUR, 2, Qt.PenStyle.DashLine))
        self.auto_box_item.setZValue(2)
        self.auto_box_item.setToolTip("Lesion box found automatically: draw your own box (B) "
                                      "to classify another region")
        self.auto_box_item.hide()
        self.scene().addItem(self.auto_box_item)
        self.auto_tag_item = BoxTag(AUTO_BOX_TAG)
        self.auto_tag_item.setZValue(4)
        self.auto_tag_item.hide()
        self.scene().addItem(self.auto_tag_item)
        self.outline_item = QGraphicsPolygonItem()
        self.outline_item.setPen(cosmetic_pen(OUTLINE_COLOUR, 1.25, Qt.PenStyle.SolidLine))
        self.outline_item.setZValue(2)
        self.outline_item.hide()
        self.scene().addItem(self.outline_item)
        self._rubber = QGraphicsRectItem()
        self._rubber.setPen(cosmetic_pen(BOX_COLOUR, 1.5, Qt.PenStyle.DotLine))
        self._rubber.setZValue(5)
        self._rubber.hide()
        self.scene().addItem(self._rubber)
        self._user_box: Box | None = None
        self._auto_box: Box | None = None
        self._outline: np.ndarray | None = None
        self._outline_visible = False
        self._pixels: np.ndarray | None = None
        self._display: np.ndarray | None = None  # what is shown: _pixels, downscaled if large
        self._window = DEFAULT_WINDOW
        self._level = DEFAULT_LEVEL
        self._fit = True
        self._box_mode = False
        self._caliper_mode = False

        self.caliper = CaliperLayer(self.scene())
        self._drag_start: QPointF | None = None
        self._wl_start: tuple[QPointF, float, float] | None = None
        self._message = QLabel(self)
        self._message.setStyleSheet("color: #ddd; font-size: 14pt; background: transparent;")
        self._message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._message.hide()
        # Names the heat map laid over the image, top left, so it is never taken for the image.
        self._overlay_caption = QLabel(self)
        self._overlay_caption.setStyleSheet(
            "color: white; background: rgba(0, 0, 0, 160); padding: 3px 6px;"
            "border-radius: 3px;")
        self._overlay_caption.move(8, 8)
        self._overlay_caption.hide()

    # --- content -----------------------------------------------------------------------------

    def set_image(self, pixels: np.ndarray | None, keep_view: bool = False) -> None:
        """Show ``pixels`` (uint8 grey or RGB); ``keep_view`` keeps zoom and pan (cine frames).

        An image larger than :data:`DISPLAY_MAX_SIDE` is shown from a downscaled copy; the
        scene stays in the image's own pixels. A heat map laid over the previous image goes.
        """
        self._pixels = pixels
        self.set_overlay(None)
        if pixels is None:
            self._display = None
            self._pixmap_item.setPixmap(to_pixmap(np.zeros((1, 1), np.uint8)))
            self._pixmap_item.hide()
            self.set_auto_finding(None)
            return
        self._display = downscale(pixels, DISPLAY_MAX_SIDE)[0]
        self._message.hide()
        self._pixmap_item.show()
        self._refresh_pixmap()
        w, h = pixels.shape[1], pixels.shape[0]
        self.scene().setSceneRect(QRectF(0, 0, w, h))
        if not keep_view or self._fit:
            self.fit()

    def pixels(self) -> np.ndarray | None:
        """The image on display, at its own size."""
        return self._pixels

    def display_size(self) -> tuple[int, int]:
        """(width, height) of the pixmap the image is shown from (its own size when small)."""
        pm = self._pixmap_item.pixmap()
        return (pm.width(), pm.height()) if self._pixels is not None else (0, 0)

    def set_overlay(self, rgba: np.ndarray | None, caption: str = "") -> None:
        """Lay an RGBA picture (a coloured heat map, any size) over the whole image, named by
        ``caption`` in the view's corner; None takes it away."""
        if rgba is None or self._pixels is None:
            self._overlay_item.setPixmap(to_pixmap(np.zeros((1, 1), np.uint8)))
            self._overlay_item.hide()
            self._overlay_caption.hide()
            return
        self._overlay_item.setPixmap(to_pixmap(rgba))
        _stretch(self._overlay_item, self._pixels.shape[1], self._pixels.shape[0])
        self._overlay_item.show()
        self._overlay_caption.setText(caption)
        self._overlay_caption.adjustSize()
        self._overlay_caption.setVisible(bool(caption))

    def overlay_caption(self) -> str:
        """The words naming the heat map over the image ("" when none is shown)."""
        return self._overlay_caption.text() if self.overlay_shown() else ""

    def overlay_shown(self) -> bool:
        """Whether a heat map is laid over the image."""
        return self._overlay_item.isVisible()

    def overlay_picture(self):
        """The QPixmap laid over the image (for tests), or None."""
        return self._overlay_item.pixmap() if self.overlay_shown() else None

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
        if self._pixels is None or self._display is None:
            return
        shown = self._display
        if (self._window, self._level) != (DEFAULT_WINDOW, DEFAULT_LEVEL):
            shown = window_level(shown, self._window, self._level)
        self._pixmap_item.setPixmap(to_pixmap(shown))
        _stretch(self._pixmap_item, self._pixels.shape[1], self._pixels.shape[0])

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
        self._place_tag()
        self.zoom_changed.emit(self.zoom())

    def zoom_by(self, factor: float) -> None:
        current = self.zoom() or 1.0
        factor = float(np.clip(current * factor, MIN_ZOOM, MAX_ZOOM)) / current
        self._fit = False
        self.scale(factor, factor)
        self._place_tag()
        self.zoom_changed.emit(self.zoom())

    def zoom_in(self) -> None:
        self.zoom_by(ZOOM_STEP)

    def zoom_out(self) -> None:
        self.zoom_by(1.0 / ZOOM_STEP)

    def actual_size(self) -> None:
        self._fit = False
        self.resetTransform()
        self._place_tag()
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
        if not self._box_mode and not self._caliper_mode:
            self.fit()
        super().mouseDoubleClickEvent(event)

    # --- lesion box --------------------------------------------------------------------------

    def set_box_mode(self, on: bool) -> None:
        """In box mode a left drag draws the lesion box instead of panning."""
        self._box_mode = bool(on)
        if on:
            self._caliper_mode = False
        self._apply_tool()

    def box_mode(self) -> bool:
        return self._box_mode

    def set_caliper_mode(self, on: bool) -> None:
        """In caliper mode a left drag measures a distance (box mode ends)."""
        self._caliper_mode = bool(on)
        if on:
            self._box_mode = False
        else:
            self.caliper.cancel()
        self._apply_tool()

    def caliper_mode(self) -> bool:
        return self._caliper_mode

    def _apply_tool(self) -> None:
        drawing = self._box_mode or self._caliper_mode
        self.setDragMode(QGraphicsView.DragMode.NoDrag if drawing
                         else QGraphicsView.DragMode.ScrollHandDrag)
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if drawing
                                  else Qt.CursorShape.OpenHandCursor)

    def _inside(self, pos: QPointF) -> QPointF:
        """``pos`` moved onto the image (a caliper end cannot leave it)."""
        h, w = self._pixels.shape[:2] if self._pixels is not None else (0, 0)
        return QPointF(min(max(pos.x(), 0.0), w), min(max(pos.y(), 0.0), h))

    def set_box(self, box: Box | None) -> None:
        """The user's lesion box (solid), or None. A user's box hides the automatic one."""
        self._user_box = box
        if box is None:
            self.box_item.hide()
        else:
            self.box_item.setRect(QRectF(box.x, box.y, box.w, box.h))
            self.box_item.show()
        self._update_auto()

    def box_shown(self) -> Box | None:
        """The user's box on screen, or None."""
        return self._user_box if self.box_item.isVisible() else None

    def set_auto_finding(self, box: Box | None, outline: np.ndarray | None = None) -> None:
        """The lesion box found automatically (dashed, tagged) and its outline, or None.

        Shown only while the user has no box of their own; the outline only while
        :meth:`set_outline_visible` is on.
        """
        self._auto_box = box
        pts = None if outline is None else np.asarray(outline, dtype=np.float64).reshape(-1, 2)
        self._outline = pts if pts is not None and len(pts) >= 3 else None
        if self._outline is not None:
            self.outline_item.setPolygon(QPolygonF([QPointF(float(x), float(y))
                                                    for x, y in self._outline]))
        if box is not None:
            self.auto_box_item.setRect(QRectF(box.x, box.y, box.w, box.h))
        self._update_auto()

    def auto_box_shown(self) -> Box | None:
        """The automatic box on screen, or None."""
        return self._auto_box if self.auto_box_item.isVisible() else None

    def set_outline_visible(self, on: bool) -> None:
        """Draw the automatic finding's outline (when there is one) or not."""
        self._outline_visible = bool(on)
        self._update_auto()

    def outline_visible(self) -> bool:
        return self._outline_visible

    def outline_shown(self) -> bool:
        """True when an outline is on screen."""
        return self.outline_item.isVisible()

    def has_outline(self) -> bool:
        """True when there is an automatic outline to show (shown or not)."""
        return self._outline is not None and self._user_box is None

    def _update_auto(self) -> None:
        auto = self._auto_box is not None and self._user_box is None and \
            self._pixels is not None
        self.auto_box_item.setVisible(auto)
        self.auto_tag_item.setVisible(auto)
        self.outline_item.setVisible(auto and self._outline_visible
                                     and self._outline is not None)
        if auto:
            self._place_tag()

    def _place_tag(self) -> None:
        """Put the tag above the automatic box, or below it when there is no room above."""
        box = self._auto_box
        if box is None:
            return
        zoom = self.zoom() or 1.0
        tag_h = self.auto_tag_item.size()[1] / zoom  # scene units
        below = box.y - tag_h < 0 and self._pixels is not None and \
            box.y + box.h + tag_h <= self._pixels.shape[0]
        self.auto_tag_item.set_below(below)
        self.auto_tag_item.setPos(box.x, box.y + box.h if below else box.y)

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
        if event.button() == Qt.MouseButton.LeftButton and self._caliper_mode \
                and self._pixels is not None:
            self.caliper.start(self._inside(pos))
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
        if self.caliper.dragging():
            self.caliper.drag(self._inside(pos))
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
        if self.caliper.dragging() and event.button() == Qt.MouseButton.LeftButton:
            m = self.caliper.finish(self._inside(self.mapToScene(event.position().toPoint())))
            if m is not None:
                self.measurement_drawn.emit(m)
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
    frame_count_changed(int)
        Another image (or none) is on display: its frame count (1 for a single frame).
    """

    frame_changed = Signal(int)
    playing_changed = Signal(bool)
    frame_count_changed = Signal(int)

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
        self.frame_count_changed.emit(max(count, 1))

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
