"""The model card's former import path, kept for callers written before
:mod:`rcdnet_desktop.core.model` existed: import from :mod:`rcdnet_desktop.core.model.card`
instead."""

from rcdnet_desktop.core.model.card import (
    CARD_FILE,
    CARD_SCHEMA,
    CLASSIFIER_OUTPUTS,
    DEFAULT_MIN_CONFIDENCE,
    GRAPH_NAMES,
    INPUT_NAME,
    LOCALISER_FILE,
    LOCALISER_OUTPUTS,
    MODEL_DIR_ENV,
    ONNX_FILES,
    WEIGHTS_FILE,
    ModelCard,
    default_model_dir,
    load_card,
    sha256_file,
)

__all__ = ["CARD_FILE", "CARD_SCHEMA", "CLASSIFIER_OUTPUTS", "DEFAULT_MIN_CONFIDENCE",
           "GRAPH_NAMES", "INPUT_NAME", "LOCALISER_FILE", "LOCALISER_OUTPUTS", "MODEL_DIR_ENV",
           "ONNX_FILES", "WEIGHTS_FILE", "ModelCard", "default_model_dir", "load_card",
           "sha256_file"]
