"""Use cases: the embedding pipeline, model lifecycle, batching, catalogue."""
