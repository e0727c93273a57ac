"""What turns token states into one sentence vector: pooling, then Dense and Normalize modules.

The head is sentence-transformers' modules.json pipeline after the Transformer module: one
Pooling module, then any Dense (a linear layer and its activation) and Normalize modules in the
order modules.json lists them.

Prompt tokens (sentence-transformers' `include_prompt: false`): the attention mask marks them
PROMPT_TOKEN instead of 1 (application/batching.py pads it so, for encoders that ask), so that
attention still reads them while pooling leaves them out, as sentence-transformers zeroes the
first prompt_length positions of the mask it pools with and of no other.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from domain.models import PoolingMode
from domain.ops import Linear, Ops, T

__all__ = [
    "NORMALIZE",
    "PROMPT_TOKEN",
    "Activation",
    "Dense",
    "HeadStep",
    "Normalize",
    "SentenceHead",
    "sentence_vector",
]

# the attention-mask value of a token that attention reads and pooling leaves out
PROMPT_TOKEN = 2


class Activation(enum.StrEnum):
    """A Dense module's activation_function, by its torch class name."""

    TANH = "Tanh"  # sentence-transformers' default
    IDENTITY = "Identity"


@dataclass(frozen=True, slots=True)
class Dense:
    linear: Linear  # [out, in]; saved with `bias: false`, it holds a zero bias
    activation: Activation


@dataclass(frozen=True, slots=True)
class Normalize:
    """Rows to unit length."""


NORMALIZE = Normalize()

HeadStep = Dense | Normalize


@dataclass(frozen=True, slots=True)
class SentenceHead:
    pooling: tuple[PoolingMode, ...]  # several modes concatenate, in this order
    after: tuple[HeadStep, ...] = ()  # Dense and Normalize modules after pooling, in order
    include_prompt: bool = True  # False: pooling leaves out the tokens marked PROMPT_TOKEN

    @property
    def normalize(self) -> bool:
        """Whether the head ends in unit vectors."""
        return bool(self.after) and isinstance(self.after[-1], Normalize)

    def width(self, hidden: int) -> int:
        """The sentence vector's width over token states `hidden` wide."""
        dense = [step for step in self.after if isinstance(step, Dense)]
        if dense:
            return int(dense[-1].linear.weight.shape[0])
        return hidden * len(self.pooling)  # pooling modes concatenate


def sentence_vector(ops: Ops[T], hidden: T, mask: T, head: SentenceHead) -> T:
    pooled = [_pool(ops, hidden, mask, mode, head) for mode in head.pooling]  # each [B,H]
    x = pooled[0] if len(pooled) == 1 else ops.concat(pooled)  # [B,D]
    for step in head.after:
        match step:
            case Dense(linear=linear, activation=activation):
                x = ops.linear(x, linear)  # [B,D] -> [B,out]
                x = ops.tanh(x) if activation is Activation.TANH else x
            case Normalize():
                x = ops.l2_normalize(x)
    return x


def _pool(ops: Ops[T], hidden: T, mask: T, mode: PoolingMode, head: SentenceHead) -> T:
    if head.include_prompt:
        return ops.pool(hidden, mask, mode)
    pooled = ops.drop_prompt(mask)  # [B,T]: 1 on the tokens pooled, 0 on prompt and padding
    match mode:
        case PoolingMode.CLS:
            # sentence-transformers takes the first position its pooling mask keeps
            return ops.token_of(hidden, pooled, 1)
        case PoolingMode.LAST_TOKEN | PoolingMode.EOS:
            return ops.pool(hidden, mask, mode)  # the last real token, which is not the prompt's
        case _:
            return ops.pool(hidden, pooled, mode)
