"""Counting the library's calls through its public API: each counted method of one Explorer instance
is wrapped by a counter that calls the real one (nothing of the core is replaced)."""

from __future__ import annotations

from collections import Counter

from explorer import Explorer

COUNTED = ("explain", "with_attribution", "predict", "match_attributes")


def counting(explorer: Explorer) -> Counter:
    """Counts the calls of some public methods of this Explorer instance (each calls the real one)."""
    calls: Counter = Counter()
    for name in COUNTED:
        real = getattr(explorer, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        setattr(explorer, name, counted)
    return calls
