"""tokenizers adapters."""
