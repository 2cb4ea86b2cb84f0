"""The file dialog's filter for images (one place, so it can follow the readers' suffixes)."""

from __future__ import annotations

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom")
DICOM_SUFFIXES = (".dcm", ".dicom")


def image_file_filter() -> str:
    """``QFileDialog`` filter: images, DICOM only, or all files."""
    images = " ".join(f"*{s}" for s in IMAGE_SUFFIXES)
    dicom = " ".join(f"*{s}" for s in DICOM_SUFFIXES)
    return f"Images ({images});;DICOM ({dicom});;All files (*)"
