"""GradCache: exact large-batch contrastive gradients in small memory (Gao et al., 2021).

The loss couples every query with every passage of the batch, so the batch cannot simply be
split. GradCache (1) embeds the batch chunk by chunk without autograd graphs, (2) computes the loss
on the detached embeddings and back-propagates to them only, caching ``dL/d(embedding)``, and
(3) re-embeds each chunk with gradients and back-propagates the cached embedding gradient. The
random state (dropout) of each chunk is saved in pass 1 and restored in pass 3, so both passes see
the same masks. The resulting loss and parameter gradients equal those of the plain step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


class RandState:
    """Snapshot of the CPU (and current CUDA device) RNG, restorable later."""

    def __init__(self):
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state() if torch.cuda.is_available() and torch.cuda.is_initialized() else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda)


def _chunks(seq: Sequence, size: int) -> list[Sequence]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]


def cached_backward(
    embed: Callable[[Sequence, str], torch.Tensor],
    queries: Sequence,
    passages: Sequence,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    chunk_size: int,
) -> torch.Tensor:
    """Run one GradCache step: accumulate parameter gradients, return the (detached) loss.

    ``embed(items, kind)`` embeds a chunk of pre-tokenised queries (``kind="query"``) or passages;
    ``loss_fn(q_emb, p_emb)`` maps the full embedding matrices to a scalar loss.
    """
    reps: dict[str, list[torch.Tensor]] = {"query": [], "passage": []}
    states: dict[str, list[RandState]] = {"query": [], "passage": []}
    parts = {"query": _chunks(queries, chunk_size), "passage": _chunks(passages, chunk_size)}
    with torch.no_grad():
        for kind, chunks in parts.items():
            for chunk in chunks:
                states[kind].append(RandState())
                reps[kind].append(embed(chunk, kind))
    q = torch.cat(reps["query"]).detach().requires_grad_()
    p = torch.cat(reps["passage"]).detach().requires_grad_()
    loss = loss_fn(q, p)
    loss.backward()
    assert q.grad is not None and p.grad is not None  # both require grad and feed the loss
    grads = {"query": q.grad.split([len(c) for c in parts["query"]]),
             "passage": p.grad.split([len(c) for c in parts["passage"]])}
    after = RandState()
    for kind, chunks in parts.items():
        for chunk, state, grad in zip(chunks, states[kind], grads[kind], strict=True):
            state.restore()
            emb = embed(chunk, kind)
            emb.backward(grad)
    after.restore()
    return loss.detach()
