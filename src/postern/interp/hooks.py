"""Forward hooks on decoder blocks that work whether a block returns a tensor or a tuple.

transformers 5 decoder layers return a tensor; older ones and some families return a tuple whose
first item is the hidden state. Every hook is removed on exit, even after an exception.
"""

from contextlib import contextmanager
from typing import Callable, Iterator

from postern.interp.arch import decoder_layers

# fn(layer index, hidden state [batch, seq, d]) -> replacement hidden state, or None to leave it
BlockFn = Callable[[int, "torch.Tensor"], "torch.Tensor | None"]  # noqa: F821


@contextmanager
def on_block_outputs(model, layers: list[int] | None, fn: BlockFn) -> Iterator[None]:
    blocks = decoder_layers(model)
    chosen = range(len(blocks)) if layers is None else layers
    handles = []

    def make_hook(index: int):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            new = fn(index, hidden)
            if new is None:
                return None
            return (new, *output[1:]) if isinstance(output, tuple) else new

        return hook

    try:
        for i in chosen:
            handles.append(blocks[i].register_forward_hook(make_hook(i)))
        yield
    finally:
        for h in handles:
            h.remove()
