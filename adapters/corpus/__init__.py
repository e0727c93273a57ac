"""A corpus in, vectors out: `embedserve batch`'s files and the per-chunk work, shared by the
run in this process and the run on Ray Data (adapters/on_ray/corpus.py)."""
