"""tianji: an OpenAI-compatible LLM gateway declared in YAML."""

__version__ = "0.1.0"
__all__ = ["__version__"]
