"""The operator config: LiteLLM's config.yaml, loaded unchanged.

Fields tianji acts on are typed Struct fields. LiteLLM keys that tianji accepts
but does not act on yet are listed in ``RECOGNISED_ONLY``: `tianji check`
reports them as warnings (so nobody believes they work), never silently. Any
other key is an error with a did-you-mean, like a typo in routes.yaml.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "RECOGNISED_ONLY",
    "REQUEST_DEFAULT_FIELDS",
    "ConfigSpec",
    "GeneralSettings",
    "LitellmSettings",
    "ModelEntry",
    "ModelParams",
    "RouterSettings",
]


class ModelParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """`litellm_params` (or `tianji_params`) of one deployment."""

    model: str
    api_key: str | None = None
    api_base: str | None = None
    api_version: str | None = None
    organization: str | None = None
    custom_llm_provider: str | None = None
    timeout: float | None = None
    stream_timeout: float | None = None
    max_retries: int | None = None
    rpm: int | None = None
    tpm: int | None = None
    weight: float | None = None
    order: int | None = None
    drop_params: bool | None = None
    additional_drop_params: list[str] | None = None
    extra_headers: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    tags: list[str] | None = None
    litellm_credential_name: str | None = None
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    # The `mock` provider kind: a fixed reply and an artificial latency (seconds).
    mock_response: str | None = None
    mock_latency: float | None = None
    # Provider credentials read by translating adapters (Azure AD, AWS, Vertex, watsonx).
    azure_ad_token: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    aws_region_name: str | None = None
    aws_role_name: str | None = None
    aws_profile_name: str | None = None
    vertex_project: str | None = None
    vertex_location: str | None = None
    vertex_credentials: str | None = None
    project_id: str | None = None
    space_id: str | None = None
    region_name: str | None = None
    use_in_pass_through: bool | None = None
    merge_reasoning_content_in_choices: bool | None = None
    max_parallel_requests: int | None = None
    # Request defaults: sent upstream unless the client sets them.
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    n: int | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    thinking: dict[str, Any] | None = None
    safety_settings: list[dict[str, Any]] | None = None
    extra_body: dict[str, Any] | None = None


# Fields of ModelParams that are request defaults rather than deployment settings.
REQUEST_DEFAULT_FIELDS = (
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "n",
    "response_format",
    "reasoning_effort",
    "thinking",
    "safety_settings",
)


class ModelEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    model_name: str
    litellm_params: ModelParams | None = None
    tianji_params: ModelParams | None = None
    # Free-form in LiteLLM (id, mode, base_model, prices, capabilities, ...).
    model_info: dict[str, Any] = {}


class GeneralSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    master_key: str | None = None
    # postgres:// or postgresql:// -> Postgres; sqlite:///path or a path -> SQLite.
    # Unset: env DATABASE_URL, else ./tianji.db (used only when master_key is set).
    database_url: str | None = None
    # Postgres pool size per worker, and connect timeout in seconds.
    database_connection_pool_limit: int = 20
    database_connection_timeout: float = 60.0
    redis_url: str | None = None
    # Seconds a virtual key's identity stays cached in process (guards.md §1.3).
    user_api_key_cache_ttl: float = 60.0
    # Seconds between two reads of the database's models (POST /model/new on another
    # instance); with redis_url they are also announced at once. 0 or less: no polling.
    proxy_config_reload_interval_seconds: float = 10.0
    max_request_size_mb: float = 32.0
    max_multipart_size_mb: float = 100.0
    litellm_key_header_name: str | None = None
    completion_model: str | None = None
    embedding_model: str | None = None
    moderation_model: str | None = None
    image_generation_model: str | None = None
    # Teams any user may join themselves (GET /team/available lists them).
    available_teams: list[str] = []


class LitellmSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    drop_params: bool = False
    request_timeout: float | None = None
    num_retries: int | None = None
    set_verbose: bool = False
    json_logs: bool = False


class RouterSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    routing_strategy: Literal[
        "simple-shuffle",
        "least-busy",
        "usage-based-routing",
        "usage-based-routing-v2",
        "latency-based-routing",
        "cost-based-routing",
    ] = "simple-shuffle"
    # alias -> group, or alias -> {"model": group, "hidden": bool}
    model_group_alias: dict[str, str | dict[str, Any]] = {}
    timeout: float | None = None
    stream_timeout: float | None = None
    num_retries: int | None = None


class ConfigSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    model_list: list[ModelEntry] = []
    general_settings: GeneralSettings = GeneralSettings()
    litellm_settings: LitellmSettings = LitellmSettings()
    router_settings: RouterSettings = RouterSettings()
    environment_variables: dict[str, str] = {}


# LiteLLM keys accepted without effect yet, per section ("" = top level).
RECOGNISED_ONLY: dict[str, frozenset[str]] = {
    "": frozenset(
        {
            "credential_list",
            "callback_settings",
            "guardrails",
            "files_settings",
            "assistant_settings",
            "finetune_settings",
            "mcp_servers",
            "mcp_tools",
            "vector_store_registry",
            "search_tools",
            "prompts",
            "policies",
            "include",
        }
    ),
    "general_settings": frozenset(
        {
            "store_model_in_db",
            "store_prompts_in_spend_logs",
            "forward_client_headers_to_llm_api",
            "disable_spend_logs",
            "disable_spend_updates",
            "disable_master_key_return",
            "disable_retry_on_max_parallel_request_limit_error",
            "disable_reset_budget",
            "disable_adding_master_key_hash_to_db",
            "disable_responses_id_security",
            "enable_jwt_auth",
            "enforce_user_param",
            "reject_clientside_metadata_tags",
            "allowed_routes",
            "key_management_system",
            "maximum_spend_logs_retention_period",
            "maximum_spend_logs_retention_interval",
            "user_mcp_management_mode",
            "allow_requests_on_db_unavailable",
            "custom_auth",
            "max_parallel_requests",
            "global_max_parallel_requests",
            "infer_model_from_keys",
            "background_health_checks",
            "health_check_interval",
            "alerting",
            "alerting_threshold",
            "use_client_credentials_pass_through_routes",
            "health_check_details",
            "public_routes",
            "alert_types",
            "enforced_params",
            "enable_oauth2_auth",
            "use_x_forwarded_for",
            "service_account_settings",
            "supported_db_objects",
            "max_response_size_mb",
            "proxy_budget_rescheduler_min_time",
            "proxy_budget_rescheduler_max_time",
            "proxy_batch_write_at",
            "proxy_batch_polling_interval",
            "alerting_args",
            "custom_key_generate",
            "allowed_ips",
            "default_team_disabled",
            "alert_to_webhook_url",
            "key_management_settings",
            "allow_user_auth",
            "disable_prisma_schema_update",
            "custom_sso",
            "allow_client_side_credentials",
            "admin_only_routes",
            "use_azure_key_vault",
            "use_google_kms",
            "spend_report_frequency",
            "ui_access_mode",
            "litellm_jwtauth",
            "litellm_license",
            "oauth2_config_mappings",
            "pass_through_endpoints",
            "enable_oauth2_proxy_auth",
            "forward_openai_org_id",
            "passthrough_credentials",
            "providers_file",
            "redis_on_error",
        }
    ),
    "litellm_settings": frozenset(
        {
            "success_callback",
            "failure_callback",
            "callbacks",
            "service_callbacks",
            "turn_off_message_logging",
            "redact_user_api_key_info",
            "langfuse_default_tags",
            "modify_params",
            "enable_preview_features",
            "force_ipv4",
            "default_fallbacks",
            "content_policy_fallbacks",
            "context_window_fallbacks",
            "fallbacks",
            "mcp_aliases",
            "cache",
            "cache_params",
            "disable_end_user_cost_tracking",
            "disable_end_user_cost_tracking_prometheus_only",
            "key_generation_settings",
            "disable_add_transform_inline_image_block",
            "disable_hf_tokenizer_download",
            "enable_json_schema_validation",
            "enable_key_alias_format_validation",
            "disable_copilot_system_to_assistant",
            "use_chat_completions_url_for_anthropic_messages",
            "max_budget",
            "budget_duration",
            "max_internal_user_budget",
            "internal_user_budget_duration",
            "default_key_generate_params",
            "upperbound_key_generate_params",
            "default_team_settings",
            "default_internal_user_params",
            "max_end_user_budget",
            "ratelimit_alert_threshold",
            "allowed_fails",
            "cooldown_time",
            "telemetry",
            "log_raw_request_response",
            "public_model_groups",
            "model_group_settings",
            "callback_settings",
            "add_function_to_prompt",
            "default_max_internal_user_budget",
            "check_provider_endpoint",
            "model_alias_map",
        }
    ),
    "router_settings": frozenset(
        {
            "redis_host",
            "redis_password",
            "redis_port",
            "redis_db",
            "enable_pre_call_checks",
            "enable_pre_call_check",
            "allowed_fails",
            "cooldown_time",
            "disable_cooldowns",
            "enable_tag_filtering",
            "tag_filtering_match_any",
            "retry_policy",
            "allowed_fails_policy",
            "content_policy_fallbacks",
            "context_window_fallbacks",
            "fallbacks",
            "default_fallbacks",
            "default_max_parallel_requests",
            "default_priority",
            "polling_interval",
            "max_fallbacks",
            "default_litellm_params",
            "debug_level",
            "client_ttl",
            "cache_kwargs",
            "routing_strategy_args",
            "cache_responses",
            "provider_budget_config",
            "model_group_retry_policy",
            "optional_pre_call_checks",
            "router_general_settings",
            "retry_after",
        }
    ),
}
