"""RcdNet Desktop: breast ultrasound decision support with benign/malignant heat maps."""

__version__ = "0.1.0"
