"""The versions an index records of the code that made it, at the floor of the package so that
every layer reads them from here: the package's own, and the sentence splitter's."""

from __future__ import annotations

__version__ = "0.1.0"

# The spans qa.ingest.sentences cuts. Bump when the spans change: indexes (qa.storage.manifest)
# and cached sentence vectors (qa.embedding.evidence) made with other spans are made again.
SPLITTER_VERSION = 3
SPLITTER = f"qa.ingest.sentences v{SPLITTER_VERSION}"  # as the manifest records it
