"""The garbage collector's pace for processes that handle messages by the thousand.

CPython starts a collection every 700 net allocations of container objects; a batch of
messages allocates millions (segments, fields, entries, rows), so collections ran all the
time and each full one walked every object alive, the imported libraries' included: about
14 % of processing's CPU. Freezing what start-up created (``gc.freeze``) takes those objects
out of every collection, and a higher first threshold makes collections rarer; reference
counting still frees everything that is not in a cycle at once, so memory does not grow
(the 1 GB file bench, bench/README.md, reads the peak).
"""

from __future__ import annotations

import gc

THRESHOLDS = (50_000, 20, 100)


def tune_for_batches() -> None:
    """Call once start-up is done (modules imported), in a process that will process or
    receive messages."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
