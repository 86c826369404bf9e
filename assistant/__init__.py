"""Assistant: question -> normalized query -> passages -> verified, cited answer."""

import ingest as _ingest  # noqa: F401  (process defaults: offline hub, pinned threads)
