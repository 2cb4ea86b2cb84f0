"""The model's home: the bundle, the backends that run it, and the engine that uses them.

- :mod:`.card`: the model card (what a bundle holds), read and validated alone;
- :mod:`.bundle`: :class:`~.bundle.Bundle`, a bundle folder opened and verified once (card,
  guard, lexicon; the torch weights when asked), and :func:`~.bundle.load_model` and
  :func:`~.bundle.load_localiser` for the torch networks;
- :mod:`.onnx_graphs`: the ONNX graphs, each read once and verified before it is parsed;
- :mod:`.device`: the device list, ``$RCDNET_DEVICE`` and ``$RCDNET_BACKEND``, and the choice of
  backend and device together (:func:`~.device.place`);
- :mod:`.backends`: the one protocol a backend implements and the ONNX Runtime backend;
  :mod:`.torch_backend`: the torch backend (GPU with CPU fallback, gradient heat maps);
- :mod:`.prepared`, :mod:`.fuse`: one image ready for the model, and how the views of a
  batch are laid out and their logits fused;
- :mod:`.engine`: :class:`~.engine.InferenceEngine`: prepare, localise, fuse, predict and explain;
- :mod:`.network`, :mod:`.backbones`, :mod:`.localiser`: the torch networks (RcdNet, the
  EfficientNet-Lite backbones, the lesion localiser).

Import each name from its module (``from rcdnet_desktop.core.model.engine import
InferenceEngine``): this file imports nothing, so that asking for the device list alone (the CLI's
parser, the viewer's menu) does not load the engine. Torch is imported only by :mod:`.network`,
:mod:`.localiser` and :mod:`.torch_backend`, and nothing imports them until a torch network is
needed.
"""
