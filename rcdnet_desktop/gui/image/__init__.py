"""The central image view and what is drawn on it: lesion boxes, the caliper, the heat-map overlay.
"""
