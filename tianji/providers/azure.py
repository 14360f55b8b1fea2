"""Azure OpenAI: OpenAI's wire format behind deployment URLs and `api-version`.

`{api_base}/openai/deployments/{deployment}/{op}?api-version=V`; with
api_version `v1`, `latest` or `preview`, the v1 surface `{api_base}/openai/v1/{op}`
where the deployment travels as the body's `model`.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from tianji.providers.base import Call
from tianji.providers.openai_compat import OpenAICompatAdapter

__all__ = ["DEFAULT_API_VERSION", "AzureAdapter"]

DEFAULT_API_VERSION = "2024-10-21"
_V1_VERSIONS = frozenset({"v1", "latest", "preview"})


class AzureAdapter(OpenAICompatAdapter):
    name = "azure"

    def url(self, call: Call) -> str:
        deployment = call.deployment
        version = deployment.api_version or DEFAULT_API_VERSION
        base = deployment.api_base
        if base.endswith("/openai"):
            base = base[: -len("/openai")]
        path = (
            call.path if call.operation == "forward" else deployment.provider.paths[call.operation]
        )
        if version in _V1_VERSIONS:
            url = f"{base}/openai/v1{path}"
            query = [("api-version", version)] if version == "preview" else []
        elif call.operation == "forward":
            url = f"{base}/openai{path}"
            query = [("api-version", version)]
        else:
            url = f"{base}/openai/deployments/{quote(call.model, safe='')}{path}"
            query = [("api-version", version)]
        query += list(deployment.query)
        encoded = urlencode(query)
        if call.query:
            encoded = f"{encoded}&{call.query}" if encoded else call.query
        return f"{url}?{encoded}" if encoded else url
