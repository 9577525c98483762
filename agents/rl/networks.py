"""Actor and critic networks of the PRB/power agents (torch).

* :class:`PerUEActor`: one MLP shared by every UE plus a pooled context (a deep set:
  permutation-equivariant over UEs, any number of UEs up to the padding), Gaussian mean per UE
  (and per head) with a state-independent ``log_std``. Used by the MAPPO learner and by SB3 PPO
  (:class:`~edgetwin.agents.rl.ppo.PerUEPolicy`, ``arch="per_ue"``).
* :class:`CentralCritic`: permutation-invariant value of the cell state (mean- and max-pooled
  per-UE embeddings).
* :class:`FlatActor`: the policy path of SB3's ``MlpPolicy`` (Tanh MLP + linear head) on the
  flattened features, so an SB3 PPO model is exported to a plain module.

All inputs are the normalized features of :mod:`edgetwin.agents.rl.features` (dimensionless).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

#: Actor kinds of :func:`build_actor` (the ``kind`` of a checkpoint's actor record).
ACTOR_KINDS: tuple[str, ...] = ("per_ue", "flat")


def _mlp(sizes: tuple[int, ...]) -> nn.Sequential:
    """Linear layers of ``sizes`` with a Tanh after each (orthogonal init, gain √2, bias 0)."""
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        lin = nn.Linear(a, b)
        nn.init.orthogonal_(lin.weight, gain=math.sqrt(2.0))
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.Tanh()]
    return nn.Sequential(*layers)


def _head(n_in: int, n_out: int, std: float) -> nn.Linear:
    """Output layer with orthogonal weights of gain ``std`` and zero bias."""
    lin = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(lin.weight, gain=std)
    nn.init.zeros_(lin.bias)
    return lin


def _per_row(net: nn.Module, x: Tensor) -> Tensor:
    """``net`` applied to the last axis of ``x`` [..., F] as one 2-D batch.

    A 3-D input to ``nn.Linear`` is ~100× slower on a multi-threaded CPU for these sizes.
    """
    y = net(x.reshape(-1, x.shape[-1]))
    return y.reshape(*x.shape[:-1], y.shape[-1])


def _masked_mean(h: Tensor, m: Tensor) -> Tensor:
    """Mean of ``h`` [B, M, H] over rows where ``m`` [B, M] (float 0/1) is 1 → [B, H]."""
    return (h * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp(min=1.0)


class PerUEActor(nn.Module):
    """Per-UE Gaussian actor: shared embedding, masked-mean context, per-UE mean(s).

    ``h_u = MLP(x_u)``, ``c = mean_{u real} h_u``, ``μ_u = MLP2([h_u, c])`` (``n_heads`` outputs
    per UE). Permuting the UEs permutes the means of every head; padded rows affect nothing and
    get mean 0.

    Args:
        n_features: Features per UE (``N_UE_FEATURES``).
        hidden: Width of the MLPs.
        n_heads: Actions per UE (1: PRB or power; 2: both, for ``control="joint"``). The output
            is heads-major: ``[head 0 of every UE, head 1 of every UE, ...]``.
    """

    def __init__(self, n_features: int, hidden: int = 64, n_heads: int = 1) -> None:
        super().__init__()
        self.n_features = int(n_features)
        self.hidden = int(hidden)
        self.n_heads = int(n_heads)
        if self.n_heads < 1:
            raise ValueError(f"n_heads must be >= 1, got {n_heads}")
        self.embed = _mlp((self.n_features, self.hidden, self.hidden))
        self.head = nn.Sequential(
            _mlp((2 * self.hidden, self.hidden)), _head(self.hidden, self.n_heads, 0.01)
        )
        self.log_std = nn.Parameter(torch.full((1,), math.log(0.5)))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Action means.

        Args:
            x: Normalized per-UE features, float [B, M, F].
            mask: Real UEs, bool [B, M].

        Returns:
            Unbounded action means, [B, M · n_heads] (heads-major; 0 at padded rows).
        """
        m = mask.to(x.dtype)
        h = _per_row(self.embed, x) * m.unsqueeze(-1)
        ctx = _masked_mean(h, m).unsqueeze(1).expand_as(h)
        out = _per_row(self.head, torch.cat((h, ctx), dim=-1))
        if self.n_heads == 1:
            return out.squeeze(-1) * m
        out = out * m.unsqueeze(-1)  # [B, M, n_heads]
        return out.transpose(1, 2).reshape(out.shape[0], -1)


class CentralCritic(nn.Module):
    """Deep-set value of the cell state: per-UE embedding, masked mean and max pooling, MLP.

    Args:
        n_features: Features per UE (``N_UE_FEATURES``).
        hidden: Width of the MLPs.
    """

    def __init__(self, n_features: int, hidden: int = 64) -> None:
        super().__init__()
        self.n_features = int(n_features)
        self.hidden = int(hidden)
        self.embed = _mlp((self.n_features, self.hidden, self.hidden))
        self.head = nn.Sequential(_mlp((2 * self.hidden, self.hidden)), _head(self.hidden, 1, 1.0))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """State values.

        Args:
            x: Normalized per-UE features, float [B, M, F].
            mask: Real UEs, bool [B, M].

        Returns:
            Values, [B] (in the critic's normalized return units).
        """
        m = mask.to(x.dtype)
        h = _per_row(self.embed, x)
        mean = _masked_mean(h, m)
        neg = torch.finfo(h.dtype).min
        mx = h.masked_fill(~mask.bool().unsqueeze(-1), neg).amax(dim=1)
        mx = torch.where(mask.any(dim=1, keepdim=True), mx, torch.zeros_like(mx))
        return self.head(torch.cat((mean, mx), dim=-1)).squeeze(-1)


class FlatActor(nn.Module):
    """Policy path of SB3's ``MlpPolicy``: Tanh MLP (``policy_net``) + linear ``action_net``.

    Args:
        in_dim: Flattened feature size (``max_ue · N_UE_FEATURES``).
        out_dim: Action size.
        hidden: Widths of the hidden layers (SB3 ``net_arch["pi"]``).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: tuple[int, ...] = (64, 64)) -> None:
        super().__init__()
        self.in_dim = int(in_dim)
        self.out_dim = int(out_dim)
        self.hidden = tuple(int(h) for h in hidden)
        self.policy_net = _mlp((self.in_dim, *self.hidden))
        last = self.hidden[-1] if self.hidden else self.in_dim
        self.action_net = _head(last, self.out_dim, 0.01)

    def forward(self, x: Tensor) -> Tensor:
        """Action means.

        Args:
            x: Normalized flat features, float [B, in_dim].

        Returns:
            Unbounded action means (the deterministic action before clipping), [B, out_dim].
        """
        return self.action_net(self.policy_net(x))

    @classmethod
    def from_sb3(cls, model: Any) -> FlatActor:
        """Copy the policy path of an SB3 PPO model (``MlpPolicy``, Tanh, separate pi/vf nets).

        Raises:
            ValueError: The model's policy is not an MLP of Linear + Tanh layers.
        """
        policy = model.policy
        pi_net = policy.mlp_extractor.policy_net
        linears = [m for m in pi_net if isinstance(m, nn.Linear)]
        if any(not isinstance(m, nn.Linear | nn.Tanh) for m in pi_net):
            raise ValueError(
                "FlatActor.from_sb3 needs an MlpPolicy with Tanh activations "
                "(policy_kwargs=dict(activation_fn=torch.nn.Tanh))"
            )
        action_net = policy.action_net
        actor = cls(
            in_dim=int(linears[0].in_features if linears else action_net.in_features),
            out_dim=int(action_net.out_features),
            hidden=tuple(int(m.out_features) for m in linears),
        )
        own = [m for m in actor.policy_net if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for dst, src in zip(own, linears, strict=True):
                dst.weight.copy_(src.weight.detach().cpu())
                dst.bias.copy_(src.bias.detach().cpu())
            actor.action_net.weight.copy_(action_net.weight.detach().cpu())
            actor.action_net.bias.copy_(action_net.bias.detach().cpu())
        return actor


def build_actor(kind: str, kwargs: Mapping[str, Any]) -> nn.Module:
    """A fresh actor of ``kind`` (``"per_ue"`` or ``"flat"``) built with ``kwargs``.

    Raises:
        ValueError: Unknown kind (the message names the allowed kinds).
    """
    if kind == "per_ue":
        return PerUEActor(**dict(kwargs))
    if kind == "flat":
        kw = dict(kwargs)
        if "hidden" in kw:
            kw["hidden"] = tuple(kw["hidden"])
        return FlatActor(**kw)
    raise ValueError(f"unknown actor kind {kind!r}; allowed: {', '.join(ACTOR_KINDS)}")
