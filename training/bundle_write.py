"""Writing the files of a model bundle: weights, localiser, ONNX graphs, guard, lexicon, card.

The application only reads and verifies a bundle (:mod:`rcdnet_desktop.core.model.bundle`);
everything that writes one lives here, in the training package.

:func:`save_bundle` ships new weights. It writes the files atomically
(:func:`~rcdnet_desktop.core.atomic.atomic_write`), fills in the card's architecture, shapes,
file name, dtype and sha256 from the model it is given, and loads the result back to prove the
bundle is valid. :func:`save_localiser` adds a localiser to a bundle the same way, and
:func:`save_onnx` exports both networks as ONNX graphs (:mod:`training.onnx_export`) beside the
weights. A graph describes the weights it was exported from: when :func:`save_bundle` or
:func:`save_localiser` writes different weights, the card's entry for the old graph is dropped
(the file is left in place, unreferenced) and :func:`save_onnx` must be run again;
:func:`load_onnx_session` refuses a graph whose recorded weights are
not the card's. :func:`save_guard`, :func:`save_lexicon` and :func:`save_card` write the other
files of the bundle and the card.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rcdnet_desktop.core.atomic import replace_file
from rcdnet_desktop.core.errors import WeightsError
from rcdnet_desktop.core.model.bundle import load_localiser, load_model
from rcdnet_desktop.core.model.card import (
    _WEIGHT_DTYPES,
    CARD_FILE,
    DEFAULT_MIN_CONFIDENCE,
    GRAPH_NAMES,
    LOCALISER_FILE,
    ONNX_FILES,
    WEIGHTS_FILE,
    ModelCard,
    sha256_file,
)
from rcdnet_desktop.core.model.onnx_graphs import load_onnx_session
from rcdnet_desktop.core.types import CLASS_NAMES
from training.onnx_export import OPSET, classifier_onnx_bytes, localiser_onnx_bytes

if TYPE_CHECKING:
    import onnxruntime
    import torch

    from rcdnet_desktop.core.model.localiser import LesionLocaliser
    from rcdnet_desktop.core.model.network import RcdNet


def _serialise(module: torch.nn.Module, dtype: str) -> tuple[bytes, dict[str, torch.Tensor]]:
    """``module``'s state_dict on the CPU with floating tensors cast to ``dtype``, as the bytes
    ``torch.save`` writes and as the tensors; raises :class:`WeightsError` on overflow."""
    import torch

    if dtype not in _WEIGHT_DTYPES:
        raise ValueError(f"dtype must be one of {_WEIGHT_DTYPES}")
    target = getattr(torch, dtype)
    state: dict[str, torch.Tensor] = {}
    for k, v in module.state_dict().items():
        v = v.detach().cpu()
        if v.is_floating_point():
            cast = v.to(target)
            if not torch.isfinite(cast).all() and torch.isfinite(v).all():
                raise WeightsError(f"{k}: values overflow {dtype}; save with dtype='float32'")
            v = cast
        state[k] = v.clone().contiguous()
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue(), state


def _check_round_trip(loaded: torch.nn.Module, state: dict[str, torch.Tensor],
                      where: Path) -> None:
    import torch

    for k, v in loaded.state_dict().items():
        if not torch.equal(v, state[k].to(v.dtype)):
            raise WeightsError(f"{where}: {k} does not load back as it was saved")


def save_bundle(model: RcdNet, card: ModelCard, model_dir: str | Path,
                dtype: str = "float16", verify: bool = True) -> ModelCard:
    """Write ``model``'s weights and ``card`` as a bundle that :func:`load_model` accepts.

    The card is completed from the model before it is written: ``architecture`` (from
    ``model.config``), ``input_shape`` and ``output_shape`` (from the preprocessing size) and
    ``weights`` (file name, dtype and the sha256 of the bytes written). Everything else
    (version, untrained flag, temperature, roi_margin, training, metrics, intended use and
    limits, localiser and operating point) is the caller's to fill in; a card with a
    ``localiser`` section needs that file in ``model_dir`` already (see :func:`save_localiser`).
    The card's ``onnx`` entries are kept only while they describe the weights written (their
    ``weights_sha256`` equals the new weights' sha256, or the localiser's): a graph exported
    from other weights is dropped from the card, never left to describe weights it does not
    hold; run :func:`save_onnx` afterwards to export the new weights. The ``guard``,
    ``lexicon`` and ``self_test`` sections are kept on the same rule (they were fitted or
    measured on the weights).

    The weights are written first and the card last, each atomically, so an interrupted save
    leaves either the old bundle or a card/weights sha mismatch that :func:`load_model` reports;
    never a half-written file that loads.

    Parameters
    ----------
    model : RcdNet
        The trained model (any device; it is not modified).
    card : ModelCard
        The card to ship; its ``weights`` and shape fields are replaced.
    model_dir : str or Path
        Destination folder, created if needed.
    dtype : {"float16", "float32"}
        Storage dtype of floating-point tensors. float16 halves the file size (about 8 MB);
        the inference-time change in probabilities is of the order of 1e-3. Integer buffers
        (batch-norm counters) are kept as they are.
    verify : bool
        Load the written bundle back with :func:`load_model` (which checks the sha256, the keys
        and shapes and runs a forward pass) and check every tensor loads back as written; load
        the card's localiser too when it names one.

    Returns
    -------
    ModelCard
        The card as written.

    Raises
    ------
    WeightsError
        The weights cannot be represented in ``dtype`` (overflow), the card is invalid, or the
        bundle fails verification.
    """
    data, state = _serialise(model, dtype)
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    name = card.weights.get("file") if isinstance(card.weights, dict) else None
    if not name or Path(name).name != name:
        name = WEIGHTS_FILE
    size = card.preprocessing.size
    arch = dict(model.config)
    card = replace(card, architecture=arch, input_shape=[1, 3, size, size],
                   output_shape=[1, arch.get("num_classes", len(CLASS_NAMES))],
                   weights={"file": name, "sha256": hashlib.sha256(data).hexdigest(),
                            "dtype": dtype})
    card = replace(card, onnx=_current_onnx(card), guard=_if_current(card, card.guard),
                   lexicon=_if_current(card, card.lexicon),
                   self_test=_if_current(card, card.self_test))
    card.validate("card to save")
    replace_file(model_dir / name, data)
    replace_file(model_dir / CARD_FILE, card.to_json().encode("utf-8"))
    if verify:
        loaded, written = load_model(model_dir)  # sha256, keys, shapes, forward pass
        _check_round_trip(loaded, state, model_dir)
        load_localiser(model_dir, written)
    return card


def save_localiser(model: LesionLocaliser, card: ModelCard, model_dir: str | Path,
                   dtype: str = "float16", verify: bool = True) -> ModelCard:
    """Add ``model`` (a trained lesion localiser) to the bundle in ``model_dir``.

    The localiser's weights are written beside the classifier's, atomically, then the card,
    atomically, with its ``localiser`` section completed from the model: ``file`` (the card's,
    else ``localiser_weights.pt``), ``sha256`` of the bytes written, ``dtype``,
    ``architecture`` (from ``model.config``) and ``input_size`` (the preprocessing size).
    ``min_confidence`` and ``metrics`` are kept from ``card.localiser`` (``min_confidence``
    defaults to :data:`DEFAULT_MIN_CONFIDENCE`); everything else in the card is written as
    given, so it must describe the classifier already in ``model_dir``. An ``onnx.localiser``
    entry exported from other localiser weights is dropped (see :func:`save_bundle`).

    Parameters
    ----------
    model : LesionLocaliser
        The trained localiser (any device; it is not modified).
    card : ModelCard
        The bundle's card (e.g. what :func:`save_bundle` returned).
    model_dir : str or Path
        The bundle folder; the classifier's weights named in ``card`` must be there.
    dtype : {"float16", "float32"}
        Storage dtype of floating-point tensors.
    verify : bool
        Load the written bundle back (:func:`load_model`, then :func:`load_localiser`) and
        check every localiser tensor loads back as written.

    Returns
    -------
    ModelCard
        The card as written.

    Raises
    ------
    WeightsError
        No classifier weights in ``model_dir``, overflow in ``dtype``, an invalid card, or a
        bundle that fails verification.
    """
    model_dir = Path(model_dir)
    classifier = model_dir / card.weights["file"]
    if not classifier.is_file():
        raise WeightsError(f"{classifier}: the classifier's weights are not in {model_dir}; "
                           "write the bundle with save_bundle before adding a localiser")
    data, state = _serialise(model, dtype)
    old = dict(card.localiser) if isinstance(card.localiser, dict) else {}
    name = old.get("file")
    if not isinstance(name, str) or not name or Path(name).name != name:
        name = LOCALISER_FILE
    section = {
        "file": name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "dtype": dtype,
        "architecture": dict(model.config),
        "input_size": card.preprocessing.size,
        "min_confidence": old.get("min_confidence", DEFAULT_MIN_CONFIDENCE),
        "metrics": old.get("metrics", {}),
    }
    card = replace(card, localiser=section)
    card = replace(card, onnx=_current_onnx(card), guard=_if_current(card, card.guard),
                   lexicon=_if_current(card, card.lexicon),
                   self_test=_if_current(card, card.self_test))
    card.validate("card to save")
    replace_file(model_dir / name, data)
    replace_file(model_dir / CARD_FILE, card.to_json().encode("utf-8"))
    if verify:
        _, written = load_model(model_dir)
        loaded = load_localiser(model_dir, written)
        assert loaded is not None
        _check_round_trip(loaded, state, model_dir / name)
    return card


def _if_current(card: ModelCard, section: dict[str, Any]) -> dict[str, Any]:
    """``section`` (the guard's, the lexicon's, the self-test's) when it was made with the
    weights the card names now (its ``weights_sha256``), else empty: it describes other
    weights."""
    if isinstance(section, dict) and section.get("weights_sha256") == card.weights.get("sha256"):
        return section
    return {}


def _current_onnx(card: ModelCard) -> dict[str, Any]:
    """The card's ``onnx`` entries that were exported from the weights the card names now."""
    section = card.onnx if isinstance(card.onnx, dict) else {}
    loc = card.localiser if isinstance(card.localiser, dict) else {}
    sources = {"classifier": card.weights.get("sha256"), "localiser": loc.get("sha256")}
    return {which: dict(entry) for which, entry in section.items()
            if isinstance(entry, dict) and sources.get(which) is not None
            and entry.get("weights_sha256") == sources[which]}


def _check_is_bundled(module: torch.nn.Module, section: dict[str, Any], what: str) -> None:
    """Raise unless ``module``'s weights, serialised as the card stores them, are the bytes the
    card's ``section`` (``weights`` or ``localiser``) records."""
    data, _ = _serialise(module, section["dtype"])
    if hashlib.sha256(data).hexdigest() != section["sha256"]:
        raise WeightsError(f"the {what} given is not the one whose weights the model card "
                           f"records ({section['file']}); save it into the bundle first")


def save_onnx(model: RcdNet, localiser: LesionLocaliser | None, card: ModelCard,
              model_dir: str | Path, verify: bool = True) -> ModelCard:
    """Export the bundle's networks as ONNX graphs beside their weights and rewrite the card.

    The classifier graph (and the localiser graph when ``localiser`` is given) is written
    atomically (:mod:`training.onnx_export`), then the card, atomically, with its
    ``onnx`` section filled in: ``file`` (the card's, else :data:`ONNX_FILES`), ``sha256`` of
    the graph's bytes, ``opset``, ``inputs``, ``outputs`` and ``weights_sha256``, the sha256 of
    the weights file the graph was exported from. Without ``localiser`` an existing localiser
    graph is kept while it still describes the card's localiser.

    Parameters
    ----------
    model : RcdNet
        The classifier whose weights the bundle holds (as :func:`load_model` returns it; any
        device, not modified).
    localiser : LesionLocaliser or None
        The bundle's localiser (as :func:`load_localiser` returns it), or None.
    card : ModelCard
        The bundle's card as written by :func:`save_bundle` / :func:`save_localiser`.
    model_dir : str or Path
        The bundle folder.
    verify : bool
        Open each graph written with :func:`load_onnx_session` (sha256, names) and check that
        its outputs match the torch model's on a seeded batch of two images (to 1e-4 of their
        scale).

    Returns
    -------
    ModelCard
        The card as written.

    Raises
    ------
    WeightsError
        The bundle's weights file is missing or differs from the card, a model given is not the
        one whose weights the card records, or a graph fails verification.
    """
    model_dir = Path(model_dir)
    wpath = model_dir / card.weights["file"]
    if not wpath.is_file() or sha256_file(wpath) != card.weights["sha256"]:
        raise WeightsError(f"{wpath}: the classifier's weights in {model_dir} are missing or "
                           "differ from the model card; write the bundle with save_bundle first")
    _check_is_bundled(model, card.weights, "classifier")
    jobs = {"classifier": (model, classifier_onnx_bytes, card.weights["sha256"])}
    if localiser is not None:
        if not card.localiser:
            raise WeightsError("the model card has no localiser section; add the localiser "
                               "with save_localiser before exporting it")
        _check_is_bundled(localiser, card.localiser, "localiser")
        jobs["localiser"] = (localiser, localiser_onnx_bytes, card.localiser["sha256"])
    old = card.onnx if isinstance(card.onnx, dict) else {}
    section = _current_onnx(card)
    size = card.preprocessing.size
    for which, (module, to_bytes, source) in jobs.items():
        data = to_bytes(module, size)
        name = old.get(which, {}).get("file") if isinstance(old.get(which), dict) else None
        if not isinstance(name, str) or not name or Path(name).name != name:
            name = ONNX_FILES[which]
        inputs, outputs = GRAPH_NAMES[which]
        section[which] = {"file": name, "sha256": hashlib.sha256(data).hexdigest(),
                          "opset": OPSET, "inputs": list(inputs), "outputs": list(outputs),
                          "weights_sha256": source}
        replace_file(model_dir / name, data)
    card = replace(card, onnx={k: section[k] for k in GRAPH_NAMES if k in section})
    card.validate("card to save")
    replace_file(model_dir / CARD_FILE, card.to_json().encode("utf-8"))
    if verify:
        written = ModelCard.read(model_dir / CARD_FILE)
        for which, (module, _, _) in jobs.items():
            _check_graph(load_onnx_session(model_dir, written, which), module, which, size,
                         model_dir / section[which]["file"])
    return card


def _check_graph(session: onnxruntime.InferenceSession, module: torch.nn.Module, which: str,
                 size: int, path: Path) -> None:
    """Compare a graph's outputs with the torch module's on a seeded batch of two images."""
    import copy

    import numpy as np
    import torch

    net = copy.deepcopy(module).cpu().float().eval()
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = list(net.forward_outputs(x)) if which == "classifier" else [net(x)]
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    for name, ref, out in zip(GRAPH_NAMES[which][1], expected, got, strict=True):
        ref = ref.numpy()
        if out.shape != ref.shape:
            raise WeightsError(f"{path}: output {name} has shape {list(out.shape)}, the torch "
                               f"model gives {list(ref.shape)}")
        err = float(np.max(np.abs(out - ref)))
        scale = max(1.0, float(np.max(np.abs(ref))))
        if not err <= 1e-4 * scale:
            raise WeightsError(f"{path}: output {name} differs from the torch model by {err:.3g}"
                               f" (allowed {1e-4 * scale:.3g})")


def save_guard(card: ModelCard, model_dir: str | Path, data: bytes,
               section: dict[str, Any]) -> ModelCard:
    """Write the input guard's file (:mod:`~rcdnet_desktop.core.guard`) and the card with its
    ``guard`` section (``file``, ``sha256`` filled in from ``data``), both atomically; the
    guard is loaded back to prove it verifies. Returns the new card."""
    from rcdnet_desktop.core.guard import GUARD_FILE, load_guard

    return _save_section_file(card, model_dir, data, section, "guard", GUARD_FILE, load_guard)


def save_lexicon(card: ModelCard, model_dir: str | Path, data: bytes,
                 section: dict[str, Any]) -> ModelCard:
    """Write the lexicon heads' file (:mod:`~rcdnet_desktop.core.lexicon`) and the card with
    its ``lexicon`` section, as :func:`save_guard` does. Returns the new card."""
    from rcdnet_desktop.core.lexicon import LEXICON_FILE, load_lexicon

    return _save_section_file(card, model_dir, data, section, "lexicon", LEXICON_FILE,
                              load_lexicon)


def _save_section_file(card: ModelCard, model_dir: str | Path, data: bytes,
                       section: dict[str, Any], key: str, default_file: str,
                       load) -> ModelCard:
    """Write a small file fitted on the classifier's weights (the guard's, the lexicon's) and
    the card's ``key`` section naming it (``file``, ``sha256`` of ``data``, ``weights_sha256``
    of the weights), both atomically; ``load`` reads it back to prove it verifies."""
    import hashlib

    model_dir = Path(model_dir)
    old = getattr(card, key)
    entry = {**section, "file": old.get("file", default_file),
             "sha256": hashlib.sha256(data).hexdigest(),
             "weights_sha256": card.weights["sha256"]}
    card = replace(card, **{key: entry})
    card.validate(model_dir / CARD_FILE)
    replace_file(model_dir / entry["file"], data)
    replace_file(model_dir / CARD_FILE, card.to_json().encode("utf-8"))
    load(model_dir, getattr(ModelCard.read(model_dir / CARD_FILE), key))
    return card


def save_card(card: ModelCard, model_dir: str | Path) -> ModelCard:
    """Validate ``card`` and write it into the bundle atomically (the files it names must
    already be there; nothing else is written)."""
    model_dir = Path(model_dir)
    card.validate(model_dir / CARD_FILE)
    replace_file(model_dir / CARD_FILE, card.to_json().encode("utf-8"))
    return card


__all__ = ("save_bundle", "save_card", "save_guard", "save_lexicon", "save_localiser", "save_onnx")
