"""Everything that is not Qt: readers, preprocessing, model, inference, explanation, export.

This package must never import PySide6 (a test enforces it), so it can run headless.
"""
