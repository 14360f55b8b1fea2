"""Provider adapters, registered by the name providers.yaml gives in `adapter:`."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tianji.providers.azure import AzureAdapter
from tianji.providers.base import Adapter, Call, FormPart, StreamTranslator
from tianji.providers.mock import MockAdapter
from tianji.providers.openai_compat import OpenAICompatAdapter

__all__ = ["ADAPTERS", "Adapter", "Call", "FormPart", "StreamTranslator"]

ADAPTERS: Mapping[str, Adapter] = MappingProxyType(
    {adapter.name: adapter for adapter in (OpenAICompatAdapter(), AzureAdapter(), MockAdapter())}
)
