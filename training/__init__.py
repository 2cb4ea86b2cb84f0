"""Rebuilds the bundled RcdNet weights: data, leakage-free splits, the paper's recipe, evaluation."""
