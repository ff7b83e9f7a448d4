"""Human labels of prototypes: an append-only SQLite store, exports and imports.

Typical use::

    from explorer.labels import LabelStore
    store = LabelStore()  # $EXPLORER_LABELS_DB or ~/.local/share/prototype-explorer/labels.sqlite3
    store.add(bundle.content_hash, "elpv", 3, "misleading", "ada", reason="background")
    store.disabled(bundle.content_hash)  # {3}
"""

from __future__ import annotations

from explorer.labels.exchange import (
    export_current_csv,
    export_history_csv,
    export_json,
    export_protopdebug,
    import_csv,
    import_file,
    import_json,
)
from explorer.labels.store import (
    REASONS,
    VERDICTS,
    LabelError,
    LabelEvent,
    LabelImport,
    LabelStore,
    default_labels_path,
)

__all__ = [
    "REASONS",
    "VERDICTS",
    "LabelError",
    "LabelEvent",
    "LabelImport",
    "LabelStore",
    "default_labels_path",
    "export_current_csv",
    "export_history_csv",
    "export_json",
    "export_protopdebug",
    "import_csv",
    "import_file",
    "import_json",
]
