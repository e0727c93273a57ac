"""Seconds and peak memory to read a word2vec text file: pyarrow's reader against numpy's.

Writes a deterministic file in a temp dir (400,000 words x 200 values by default, ~640 MB of
GloVe-like `-0.12345` text, a third of glove-twitter-200), then reads it in a fresh process per
reader: the line-splitting numpy reader adapters/word_vectors.py had (copied below as the
reference), today's read_words + read_word_vectors on a first load (parsing the text, then
keeping the table and words beside it), and on a later load (mapping the kept copies). All must
give the same words and the same table, bit for bit.

    .venv/bin/python bench/word_vectors_load.py [--words 400000] [--dim 200] [--repeat 1]
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from adapters.weights.word_vectors import read_word_vectors, read_words

_ROWS_PER_WRITE = 10_000


def write_word2vec(path: Path, count: int, dim: int, seed: int = 0) -> None:
    """`count dim`, then `w<i> v1 … vdim`: values N(0, 0.4) to 5 decimals, as GloVe's look."""
    rng = np.random.default_rng(seed)
    names = ["word", *(f"v{i}" for i in range(1, dim + 1))]
    schema = pa.schema([(n, pa.string() if n == "word" else pa.float64()) for n in names])
    options = pcsv.WriteOptions(include_header=False, delimiter=" ", quoting_style="none")
    with path.open("wb") as f:
        f.write(f"{count} {dim}\n".encode())
        with pcsv.CSVWriter(f, schema, write_options=options) as writer:
            for start in range(0, count, _ROWS_PER_WRITE):
                stop = min(start + _ROWS_PER_WRITE, count)
                values = np.round(rng.standard_normal((stop - start, dim)) * 0.4, 5)
                words = pa.array([f"w{i}" for i in range(start, stop)])
                columns = [words, *(pa.array(values[:, j]) for j in range(dim))]
                writer.write_batch(pa.record_batch(columns, schema=schema))


# -- the reference: the reader adapters/word_vectors.py had before pyarrow, as it was ----------


def _old_text_lines(path: Path) -> tuple[int, int, list[bytes]]:
    header, _, body = path.read_bytes().partition(b"\n")
    count, dim = (int(f) for f in header.split())
    lines = body.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) != count:
        msg = f"{path.name} announces {count} words and holds {len(lines)} lines"
        raise ValueError(msg)
    return count, dim, lines


def _old_read_text_vectors(path: Path) -> np.ndarray:
    count, dim, lines = _old_text_lines(path)
    values = b" ".join(line.partition(b" ")[2] for line in lines)
    flat = np.fromstring(values, dtype=np.float32, sep=" ")
    if flat.size != count * dim:
        msg = f"{path.name}: {flat.size} values where {count} x {dim} were announced"
        raise ValueError(msg)
    return flat.reshape(count, dim)


def _old_read_text_words(path: Path) -> list[str]:
    _, _, lines = _old_text_lines(path)
    return [line.partition(b" ")[0].decode("utf-8", errors="replace") for line in lines]


# -- one measurement per fresh process, so that its peak RSS is its own -----------------------


def _peak_rss_mb() -> float:
    """This process's own peak: ru_maxrss keeps the parent's peak across fork + exec on Linux."""
    status = Path("/proc/self/status")
    if status.exists():
        hwm = next(ln for ln in status.read_text().splitlines() if ln.startswith("VmHWM:"))
        return int(hwm.split()[1]) / 2**10  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def measure(reader: str, path: Path) -> tuple[float, float, float, float, str]:
    """Seconds for the words and for the table, CPU seconds, peak RSS in MB, a digest of both."""
    cpu = time.process_time()
    started = time.perf_counter()
    if reader == "numpy (before)":
        words = _old_read_text_words(path)
        words_done = time.perf_counter()
        table = _old_read_text_vectors(path)
    elif reader in {"pyarrow, first load", "kept copies, later loads"}:
        words = read_words(path.parent)
        words_done = time.perf_counter()
        table = read_word_vectors(path.parent)
    else:  # the imports alone: the floor under both peaks
        words, words_done, table = [], started, np.empty((0, 0), np.float32)
    done = time.perf_counter()
    cpu = time.process_time() - cpu
    digest = hashlib.sha256("\n".join(words).encode())
    digest.update(np.ascontiguousarray(table).data)  # hashed in place: a copy raises the peak
    return words_done - started, done - words_done, cpu, _peak_rss_mb(), digest.hexdigest()


def in_fresh_process(reader: str, path: Path) -> tuple[float, float, float, float, str]:
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(measure, reader, path).result()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--words", type=int, default=400_000)
    parser.add_argument("--dim", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs each")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "glove-twitter-bench.txt"
        started = time.perf_counter()
        write_word2vec(path, args.words, args.dim)
        written = time.perf_counter() - started
        size_mb = path.stat().st_size / 2**20
        table_mb = args.words * args.dim * 4 / 2**20
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        print(
            f"file: {args.words} words x {args.dim}, {size_mb:.0f} MB of text "
            f"(written in {written:.1f} s); float32 table {table_mb:.0f} MB"
        )
        *_, floor_mb, _ = in_fresh_process("imports only", path)
        rows = {}
        kept = path.parent / ".embedserve"  # adapters/weights/table_cache.py
        for reader in ("numpy (before)", "pyarrow, first load", "kept copies, later loads"):
            runs = []
            for _ in range(args.repeat):
                if reader == "pyarrow, first load":
                    shutil.rmtree(kept, ignore_errors=True)
                runs.append(in_fresh_process(reader, path))
            rows[reader] = min(runs, key=lambda r: r[0] + r[1])
        old, new = rows["numpy (before)"], rows["pyarrow, first load"]
        later = rows["kept copies, later loads"]
        assert old[4] == new[4] == later[4], "the readers disagree on the words or the table"

    print(f"best of {args.repeat}; same words and table: yes; imports alone {floor_mb:.0f} MB RSS")
    print("| reader | read_words s | read_word_vectors s | total s | CPU s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for reader, (words_s, table_s, cpu_s, peak_mb, _) in rows.items():
        total = words_s + table_s
        print(
            f"| {reader} | {words_s:.2f} | {table_s:.2f} | {total:.2f} | {cpu_s:.2f} "
            f"| {peak_mb:.0f} |"
        )
    print(f"speedup: {(old[0] + old[1]) / (new[0] + new[1]):.1f}x on a first load, ", end="")
    print(f"{(old[0] + old[1]) / (later[0] + later[1]):.0f}x on later ones")


if __name__ == "__main__":
    main()
