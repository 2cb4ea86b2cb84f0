"""Rebuilds the bundled RcdNet weights: data, leak-free splits, the paper's recipe, evaluation."""
