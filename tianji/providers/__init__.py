"""Provider adapters, by the name providers.yaml gives in `adapter:`.

The registry maps names to "module:Class" and imports an adapter the first time
it is asked for, so adding an adapter is one module plus one line here, and a
deployment only pays for the adapters it uses. `tianji check` imports every
adapter that providers.yaml names, so a broken one fails at startup.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType

from tianji.compile.model import Deployment
from tianji.providers.base import Adapter, Call, FormPart, Send, StreamTranslator

__all__ = [
    "ADAPTER_PATHS",
    "Adapter",
    "Call",
    "FormPart",
    "Send",
    "StreamTranslator",
    "adapter_for",
    "supported_params",
]

ADAPTER_PATHS: Mapping[str, str] = MappingProxyType(
    {
        "openai_compat": "tianji.providers.openai_compat:OpenAICompatAdapter",
        "azure": "tianji.providers.azure:AzureAdapter",
        "mock": "tianji.providers.mock:MockAdapter",
        "anthropic": "tianji.providers.anthropic:AnthropicAdapter",
        "gemini": "tianji.providers.gemini:GeminiAdapter",
        "vertex_ai": "tianji.providers.vertex:VertexAdapter",
        "bedrock": "tianji.providers.bedrock:BedrockAdapter",
        "sagemaker": "tianji.providers.sagemaker:SageMakerAdapter",
        "cohere": "tianji.providers.cohere:CohereAdapter",
        "watsonx": "tianji.providers.watsonx:WatsonxAdapter",
        "cloudflare": "tianji.providers.cloudflare:CloudflareAdapter",
        "ollama": "tianji.providers.ollama:OllamaAdapter",
        "huggingface": "tianji.providers.huggingface:HuggingFaceAdapter",
        "replicate": "tianji.providers.replicate:ReplicateAdapter",
        "voyage": "tianji.providers.voyage:VoyageAdapter",
        "deepgram": "tianji.providers.deepgram:DeepgramAdapter",
        "elevenlabs": "tianji.providers.elevenlabs:ElevenLabsAdapter",
        "stability": "tianji.providers.stability:StabilityAdapter",
        "oauth_openai": "tianji.providers.oauth_openai:OAuthOpenAIAdapter",
    }
)

_loaded: dict[str, Adapter] = {}


def supported_params(deployment: Deployment, operation: str) -> frozenset[str]:
    """The OpenAI params a deployment applies for an operation: the provider's set,
    unless the adapter reports its own per model (e.g. Claude on Vertex AI)."""
    report = getattr(adapter_for(deployment.provider.adapter), "supported_params", None)
    if report is not None:
        found: frozenset[str] = report(deployment, operation)
        return found
    return deployment.provider.params.get(operation, frozenset())


def adapter_for(name: str) -> Adapter:
    """The adapter instance for a registered name (imported once)."""
    adapter = _loaded.get(name)
    if adapter is None:
        module_name, _, class_name = ADAPTER_PATHS[name].partition(":")
        adapter = getattr(importlib.import_module(module_name), class_name)()
        _loaded[name] = adapter
    return adapter
