"""A model bundle, opened and verified once, and the loading of its torch networks.

:class:`Bundle` is what an engine holds of a bundle folder: the model card (read and validated
once), the input guard and the lexicon heads (each verified against the card's sha256 before it
is parsed), and, when asked, the torch networks (:meth:`Bundle.networks`, verified against the
same card). The backends read the ONNX graphs it names
(:mod:`~rcdnet_desktop.core.model.onnx_graphs`), each once.

:func:`load_model` treats the weights file as untrusted input: it checks the sha256 recorded in
the card *before* unpickling anything, loads with ``torch.load(weights_only=True)``, matches keys
and shapes strictly and runs a dummy forward pass of the declared input shape. Every failure
raises :class:`~rcdnet_desktop.core.errors.WeightsError`; there is no fallback to random weights.
:func:`load_localiser` loads the optional localiser with the same checks. The ONNX graphs are
verified by :mod:`~rcdnet_desktop.core.model.onnx_graphs`.

The application only reads bundles: they are written by the training package
(:mod:`training.bundle_write`).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING

from rcdnet_desktop.core.errors import WeightsError
from rcdnet_desktop.core.guard import Guard, load_guard
from rcdnet_desktop.core.lexicon import Lexicon, load_lexicon
from rcdnet_desktop.core.model.card import (
    CARD_FILE,
    ModelCard,
    _short,
    default_model_dir,
    sha256_file,
)

if TYPE_CHECKING:
    import torch

    from rcdnet_desktop.core.model.localiser import LesionLocaliser
    from rcdnet_desktop.core.model.network import RcdNet


class Bundle:
    """One bundle folder's card, guard and lexicon, read and verified once.

    Parameters
    ----------
    card : ModelCard
        The bundle's card.
    folder : Path, optional
        The bundle folder the card's files are read from; None for networks handed over
        without a folder (tests, training evaluation): no graphs, guard or lexicon then.

    Raises
    ------
    WeightsError
        The guard or the lexicon the card names is missing or does not verify.
    """

    def __init__(self, card: ModelCard, folder: str | Path | None = None) -> None:
        self.card = card
        self.folder = Path(folder) if folder is not None else None
        self.guard: Guard | None = (load_guard(self.folder, card.guard)
                                    if card.guard and self.folder is not None else None)
        self.lexicon: Lexicon | None = (load_lexicon(self.folder, card.lexicon)
                                        if card.lexicon and self.folder is not None else None)

    @classmethod
    def open(cls, model_dir: str | Path | None = None) -> Bundle:
        """Read and verify the bundle in ``model_dir`` (:func:`default_model_dir` when None):
        its card, guard and lexicon; the networks are loaded when asked for.

        Raises
        ------
        WeightsError
            A missing or invalid card, or a guard or lexicon file that does not verify.
        """
        folder = Path(model_dir) if model_dir is not None else default_model_dir()
        return cls(ModelCard.read(folder / CARD_FILE), folder)

    def has_graph(self, which: str) -> bool:
        """Whether the card names an ONNX graph ``which`` and there is a folder to read it."""
        return self.folder is not None and bool(self.card.onnx.get(which))

    def networks(self) -> tuple[RcdNet, LesionLocaliser | None]:
        """The torch classifier and localiser (None when the card has none), on the CPU in eval
        mode, verified against this bundle's card (imports torch).

        Raises
        ------
        WeightsError
            There is no bundle folder, or a weights file does not verify.
        """
        if self.folder is None:
            raise WeightsError("no bundle folder to load the torch weights from")
        return _classifier(self.folder, self.card), load_localiser(self.folder, self.card)


def _load_state_dict(path: Path, sha256: str, card_path: Path,
                     what: str) -> dict[str, torch.Tensor]:
    """Verify ``path`` against ``sha256`` BEFORE unpickling, then load it as a plain state_dict.

    Floating-point tensors come back as float32. ``what`` names the file in messages
    ("weights", "localiser weights"); every failure raises :class:`WeightsError` naming the file.
    """
    import torch  # loading torch weights: the ONNX path never comes here

    if not path.is_file():
        raise WeightsError(f"{path}: {what} file not found (named in {card_path}); "
                           f"the program will not classify without its {what}")
    try:
        digest = sha256_file(path)
    except OSError as exc:
        raise WeightsError(f"{path}: {what} file cannot be read: {exc}") from exc
    if digest != sha256:
        raise WeightsError(f"{path}: sha256 {digest} does not match the model card "
                           f"({sha256}): the file is corrupt or was replaced")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(f"{path}: refused to load: not a plain tensor state_dict "
                           f"(weights_only=True): {_short(exc, 300)}") from exc
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise WeightsError(f"{path}: {what} file cannot be loaded: {_short(exc)}") from exc
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise WeightsError(f"{path}: expected a state_dict mapping names to tensors, "
                           f"got {type(state).__name__}")
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _install(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path,
             input_shape: list[int], output_shape: list[int]) -> None:
    """Load ``state`` strictly, switch to eval mode and prove a forward pass of ``input_shape``
    gives finite outputs of ``output_shape``; raises :class:`WeightsError` naming ``path``."""
    import torch  # loading torch weights: the ONNX path never comes here

    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: weights do not match the architecture in the model card: "
                           f"{_short(exc)}") from exc
    module.eval()
    with torch.inference_mode():
        out = module(torch.zeros(input_shape))
    if list(out.shape) != list(output_shape):
        raise WeightsError(f"{path}: a forward pass of {list(input_shape)} gave "
                           f"{list(out.shape)}, the model card declares {list(output_shape)}")
    if not torch.isfinite(out).all():
        raise WeightsError(f"{path}: the model produces non-finite outputs (NaN or inf weights)")


def load_model(model_dir: str | Path | None = None) -> tuple[RcdNet, ModelCard]:
    """Load and verify a bundle; returns ``(model, card)`` with the model on the CPU in eval mode.

    The optional lesion localiser is loaded separately, by :func:`load_localiser`.

    Parameters
    ----------
    model_dir : str or Path, optional
        Bundle folder; :func:`default_model_dir` when omitted.

    Raises
    ------
    WeightsError
        Missing or unreadable card or weights, invalid card, sha256 mismatch, a weights file
        that is not a plain tensor state_dict (``weights_only=True`` refuses pickled code), keys
        or shapes that do not match the card's architecture, or a forward pass whose output
        shape or values are wrong. The message names the file and the reason.
    """
    model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
    card = ModelCard.read(model_dir / CARD_FILE)
    return _classifier(model_dir, card), card


def _classifier(model_dir: Path, card: ModelCard) -> RcdNet:
    """The bundle's classifier, verified against ``card`` (see :func:`load_model`)."""
    # The torch network is imported only here: opening a bundle must not import torch.
    from rcdnet_desktop.core.model.network import RcdNet

    wpath = model_dir / card.weights["file"]
    state = _load_state_dict(wpath, card.weights["sha256"], model_dir / CARD_FILE, "weights")
    model = RcdNet(pretrained=False, **card.model_kwargs())
    _install(model, state, wpath, card.input_shape, card.output_shape)
    return model


def load_localiser(model_dir: str | Path | None, card: ModelCard) -> LesionLocaliser | None:
    """Load and verify the bundle's lesion localiser, or None when the card has none.

    The checks are those of :func:`load_model`: the sha256 in ``card.localiser`` is checked
    before anything is unpickled, the file is loaded with ``torch.load(weights_only=True)``,
    keys and shapes must match the card's architecture exactly, float16 tensors are cast to
    float32, and a forward pass of ``(1, 3, s, s)`` must give finite ``(1, 1, s, s)`` logits.

    Parameters
    ----------
    model_dir : str or Path, optional
        Bundle folder; :func:`default_model_dir` when None.
    card : ModelCard
        The bundle's card (as returned by :func:`load_model`).

    Returns
    -------
    LesionLocaliser or None
        On the CPU, in eval mode.

    Raises
    ------
    WeightsError
        Missing or unreadable file, sha256 mismatch, not a plain state_dict, keys or shapes that
        do not match, or a bad forward pass. The message names the file and the reason.
    """
    if not card.localiser:
        return None
    # The torch network is imported only here: opening a bundle must not import torch.
    from rcdnet_desktop.core.model.localiser import LesionLocaliser

    model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
    loc = card.localiser
    path = model_dir / loc["file"]
    state = _load_state_dict(path, loc["sha256"], model_dir / CARD_FILE, "localiser weights")
    model = LesionLocaliser(pretrained=False, **loc["architecture"])
    s = int(loc["input_size"])
    _install(model, state, path, [1, 3, s, s], [1, 1, s, s])
    return model
