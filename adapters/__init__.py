"""The outside world: HTTP dialects, engines, model stores, tokenizers, CLI, composition root."""
