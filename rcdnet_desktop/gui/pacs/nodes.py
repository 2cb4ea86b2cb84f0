"""The PACS nodes the viewer knows, kept in QSettings (and the cache folder).

The first time, before any node was saved, the nodes of the PACS config file
(:func:`rcdnet_desktop.core.pacs.load_nodes`, the one ``rcdnet pacs --node`` reads) are offered.
"""

from __future__ import annotations

import json

from rcdnet_desktop.core.pacs import PacsError, PacsNode, load_nodes
from rcdnet_desktop.gui.settings import Settings

_KEY = "pacs/nodes"
_CACHE_KEY = "pacs/cache"
_LAST_KEY = "pacs/last_node"


def pacs_nodes(settings: Settings) -> list[PacsNode]:
    """The saved nodes (the config file's when none was ever saved); bad entries skipped."""
    raw = settings.q.value(_KEY, None)
    if raw is None:
        try:
            return load_nodes()
        except PacsError:
            return []
    try:
        items = json.loads(str(raw))
    except ValueError:
        return []
    nodes = []
    for item in items if isinstance(items, list) else []:
        try:
            nodes.append(PacsNode.from_dict(item).checked())
        except (ValueError, TypeError, PacsError):
            continue
    return nodes


def save_pacs_nodes(settings: Settings, nodes: list[PacsNode]) -> None:
    settings.q.setValue(_KEY, json.dumps([n.to_dict() for n in nodes]))
    settings.q.sync()


def pacs_cache_dir(settings: Settings) -> str:
    """The cache folder ("" = the default one)."""
    return str(settings.q.value(_CACHE_KEY, "") or "")


def last_node(settings: Settings) -> str:
    return str(settings.q.value(_LAST_KEY, "") or "")


def set_last_node(settings: Settings, name: str) -> None:
    settings.q.setValue(_LAST_KEY, name)
