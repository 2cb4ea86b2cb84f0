"""What the main window shows around the image: the patient banner, the measurements and the
DICOM tag panel (the parts of :class:`~rcdnet_desktop.gui.window.view.WindowView` for an
image's context)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rcdnet_desktop.core.context import ImageContext
from rcdnet_desktop.core.measure import Measured
from rcdnet_desktop.gui.image.image_view import ImageView
from rcdnet_desktop.gui.panels.measure_list import MeasurementList
from rcdnet_desktop.gui.panels.patient_banner import PatientBanner
from rcdnet_desktop.gui.panels.prediction_panel import PredictionPanel
from rcdnet_desktop.gui.panels.tag_panel import DicomTagsDialog


@dataclass
class ContextView:
    """The banner, the measurement list and the tag panel (once opened), shown as asked."""

    banner: PatientBanner
    measures: MeasurementList
    image: ImageView
    prediction: PredictionPanel
    tags: Callable[[], DicomTagsDialog | None]
    _measured: tuple[Measured, ...] = ()

    def show_image_context(self, context: ImageContext | None) -> None:
        self.banner.set_banner(context.banner if context is not None else None)
        calibration = context.calibration if context is not None else None
        self.prediction.set_calibration(calibration)
        self.image.caliper.set_calibration(calibration)
        dialog = self.tags()
        if dialog is not None:
            dialog.set_source(context.path if context else None,
                              context.is_dicom if context else False)

    def show_measurements(self, measured: Sequence[Measured]) -> None:
        self._measured = tuple(measured)
        self.measures.set_measurements(self._measured)
        self.image.caliper.show(self._measured, self._selected())

    def highlight(self, index: int) -> None:
        """The measurement chosen in the list stands out on the image."""
        self.image.caliper.show(self._measured, index if index >= 0 else None)

    def clear(self) -> None:
        """No image on display: no banner, no measurements."""
        self.show_image_context(None)
        self.show_measurements(())

    def _selected(self) -> int | None:
        row = self.measures.entries.currentRow()
        return row if row >= 0 else None
