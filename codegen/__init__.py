"""Artefacts derived from tianji's Structs and shipped specs: `python -m codegen`.

Types as data: the JSON Schemas of the three YAML files, the OpenAPI document of
the app and the typed names of routes, operations and providers are rendered from
the msgspec Structs and from routes.yaml / providers.yaml, never kept as a second
hand-written copy. The output lives in ``tianji/_generated/`` and is committed, so
editors and clients can use it without running anything; ``--check`` and
``tests/test_codegen.py`` catch a file that no longer matches its source.
"""

from __future__ import annotations

from codegen.render import OUTPUT_DIR, render_all, stale_files, unexpected_files

__all__ = ["OUTPUT_DIR", "render_all", "stale_files", "unexpected_files"]
