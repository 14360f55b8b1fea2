"""The shape of providers.yaml: provider kinds as data.

Each entry says where a provider lives, how it authenticates and which
operations it serves; `adapter` names the Python module that builds requests
(``openai_compat`` for every OpenAI-compatible provider, so those need no code).
Entries inherit from `defaults` (paths and parameter sets), resolved once at
startup.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["Auth", "ProviderDefaults", "ProviderSpec", "ProvidersSpec"]


class Auth(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How the key is sent: `bearer` (Authorization: Bearer), a named `header`
    (with an optional value `prefix`, e.g. "Token "), a `query` parameter, or `none`."""

    kind: Literal["bearer", "header", "query", "none"] = "bearer"
    name: str | None = None
    prefix: str = ""
    # False: send the key only when one is configured (local servers such as vLLM).
    required: bool = True


class ProviderSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    adapter: str = "openai_compat"
    title: str = ""
    # None: every deployment must set api_base.
    base_url: str | None = None
    base_url_env: list[str] = []
    key_env: list[str] = []
    # Where the API version comes from when the deployment sets none (Azure).
    api_version_env: list[str] = []
    auth: Auth = Auth()
    headers: dict[str, str] = {}
    # Header name -> litellm_params field whose value (if set) is sent in it.
    param_headers: dict[str, str] = {}
    operations: list[str] = msgspec.field(default_factory=lambda: ["chat"])
    # Operation -> upstream path, overriding defaults.paths.
    paths: dict[str, str] = {}
    # Operation -> name of a parameter set in `param_sets` (defaults.params otherwise).
    params: dict[str, str] = {}
    # Request fields renamed before sending (e.g. max_completion_tokens -> max_tokens).
    param_renames: dict[str, str] = {}
    aliases: list[str] = []


class ProviderDefaults(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    paths: dict[str, str] = {}
    params: dict[str, str] = {}


class ProvidersSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    version: Literal[1] = 1
    defaults: ProviderDefaults = ProviderDefaults()
    param_sets: dict[str, list[str]] = {}
    providers: dict[str, ProviderSpec]
