"""Every numeric tolerance the test suite uses, each with the reason for its size.

Tests import these names; no test writes a tolerance literal of its own.
"""

from __future__ import annotations

__all__ = ["BATCH_INVARIANCE", "BF16_MIN_COSINE", "MAX_ABS_DIFF", "MIN_COSINE"]

# Our float32 numpy forward pass against sentence-transformers' float32 torch pass, per vector
# component. Both compute the same ops in float32 but with different summation orders (BLAS
# kernels, softmax, pooling sums), so they differ by a few float32 ulps of the values involved:
# about 2e-7 for all-MiniLM-L6-v2's unit vectors. float32 error is relative, so for vectors that
# are not normalised (components up to ~45 for mean_sqrt_len_tokens pooling on the generated
# models) the bound scales with the vector's largest component: |ours - ref| <= MAX_ABS_DIFF *
# max(1, max |ref|). Measured worst case on that scale: 1e-6. 1e-5 leaves room for other CPUs
# and BLAS builds while still catching real bugs: a wrong LayerNorm eps, mean-pooling denominator,
# weightedmean offset or a dropped attention mask each failed every case they touch when tried.
MAX_ABS_DIFF = 1e-5

# The same text embedded alone and inside a mixed-length batch, with our engine. Padding changes
# the matrix shapes and so the BLAS blocking, which moves results by a few float32 ulps
# (~1e-7); pads themselves must never leak into a row's vector.
BATCH_INVARIANCE = 1e-5

# The same comparison on the angle between the two vectors. Unlike the per-component bound it
# means as much for a short vector (the mean of a few word vectors) as for a long one; fp32
# paths measure 1 - cos below 1e-7.
MIN_COSINE = 0.99999

# OpenVINO's bf16 against its own fp32, by cosine per text: bf16 keeps 8 bits of mantissa, so a
# vector moves by ~1e-3 relative per component, but across hundreds of components the direction
# holds. Measured 0.99995 on all-MiniLM-L6-v2 on an AMX CPU (FACTS.md). A wrong precision
# anywhere (an op in fp16, a lost LayerNorm) lands far below. The same number is the load-time
# gate's (application/engine_choice.py BF16), which the issue fixes at 0.9999.
BF16_MIN_COSINE = 0.9999
