"""The bundle loaders' former import path, kept for callers written before
:mod:`rcdnet_desktop.core.model` existed: import from :mod:`rcdnet_desktop.core.model.bundle`
and :mod:`rcdnet_desktop.core.model.onnx_graphs` instead."""

from rcdnet_desktop.core.model.bundle import Bundle, load_localiser, load_model
from rcdnet_desktop.core.model.card import default_model_dir
from rcdnet_desktop.core.model.onnx_graphs import classifier_fc_weight, load_onnx_session

__all__ = ["Bundle", "classifier_fc_weight", "default_model_dir", "load_localiser", "load_model",
           "load_onnx_session"]
