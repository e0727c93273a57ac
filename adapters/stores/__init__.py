"""stores adapters."""
