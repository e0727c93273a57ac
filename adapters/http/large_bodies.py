"""Large JSON bodies, decoded on a worker thread instead of the event loop.

7,500,000 OpenAI token ids make a 15 MB body; msgspec decodes it in one call that holds the
GIL for ~0.2 s, and Litestar then converts what it decoded into the route's type in a second
such pass. On the event loop, every other request waits for both. A body of `LARGE_BODY_BYTES`
or more is therefore decoded on a worker thread, straight into the route's body type where it
has one, so that Litestar's conversion passes the decoded Struct through untouched. A body
that typed decoding refuses is decoded plainly instead, so that Litestar refuses it with the
same message as any small body.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.serialization import decode_json

from adapters.heap import note_large_request

__all__ = ["LARGE_BODY_BYTES", "decode_large_body", "route_body_type"]

LARGE_BODY_BYTES = 1 << 20  # ~500,000 token ids: a few ms to decode, below this, on the loop


def route_body_type(request: Request[Any, Any, Any]) -> Any:
    """The type of the route's `data` parameter, or None where it takes no body."""
    field = request.route_handler.parsed_fn_signature.parameters.get("data")
    return None if field is None else field.annotation


def decode_large_body(body: bytes, target: Any, request: Request[Any, Any, Any]) -> Any:
    """The body as the route's type (`target`) where it is one, else as plain JSON values;
    run on a worker thread. Raises as Litestar's own decoding does for a body that is no JSON.
    What the body and its values take is given back to the system once the request is done
    (adapters/heap.py): a request refused before it reads much would otherwise leave it held."""
    note_large_request()
    if isinstance(target, type) and issubclass(target, msgspec.Struct):
        try:
            return msgspec.json.decode(body, type=target)
        except msgspec.ValidationError:
            pass  # Litestar converts the plain values, and says what is wrong as it always does
    type_decoders = request.route_handler.resolve_type_decoders()
    return decode_json(body, type_decoders=type_decoders)
