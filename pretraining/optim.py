"""The optimiser and the weight average of a pretraining run.

`build_optimizer` makes the optimiser ``TrainConfig.optimizer`` names:

* ``"adamw"``: AdamW for every parameter, without weight decay on norms, biases and embeddings
  (`MitraModel.optimizer_groups`, shared with fine-tuning);
* ``"muon"``: Muon (``torch.optim.Muon``: momentum orthogonalised by a Newton-Schulz iteration)
  for the 2-D weight matrices inside the transformer layers (`muon_parameters`), AdamW as above
  for everything else, joined in `MuonWithAdamW`, which the loop, the learning-rate scheduler
  and the checkpoints use as one optimiser.

Both keep the standard ``state_dict`` layout (states by parameter index, then the groups: the
AdamW groups first), so checkpoints and campaign packs store either. `load_optimizer_state`
also reads the state the other optimiser saved, so a run can switch on resume.

`WeightAverage` keeps an exponential moving average of the weights (``TrainConfig.ema_decay``).
"""

from __future__ import annotations

import copy
from collections import ChainMap
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from mitra_sklearn.model import MitraModel

from .config import TrainConfig

__all__ = [
    "MuonWithAdamW",
    "WeightAverage",
    "apply_run_settings",
    "build_optimizer",
    "load_optimizer_state",
    "muon_parameters",
    "parameter_groups",
]


def muon_parameters(model: MitraModel) -> list[nn.Parameter]:
    """The parameters Muon updates: the 2-D weight matrices inside the transformer layers.

    These are the attention projections (q, k, v, o) and the MLP linears of every layer. The
    cell and label embeddings, norms, biases and the output head stay with AdamW, as Muon's
    authors advise: it is an optimiser for hidden matrices, not for a model's inputs and outputs.
    """
    return [p for p in model.layers.parameters() if p.ndim == 2 and p.requires_grad]


def parameter_groups(model: MitraModel, config: TrainConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The AdamW groups and the Muon groups (empty for ``"adamw"``), each with its peak settings.

    The AdamW groups are `MitraModel.optimizer_groups` (decay, no decay) less the Muon matrices.
    The optimiser's ``param_groups`` are the AdamW groups followed by the Muon groups.
    """
    adamw = model.optimizer_groups(config.weight_decay)
    for group in adamw:
        group.update(lr=config.lr, betas=(config.beta1, config.beta2))
    if config.head_lr_scale != 1.0:
        # The head's parameters in groups of their own (same decay), after the others.
        head = {id(p) for p in model.final_layer.parameters()}
        heads = [{**group, "params": [p for p in group["params"] if id(p) in head],
                  "lr": config.lr * config.head_lr_scale} for group in adamw]
        for group in adamw:
            group["params"] = [p for p in group["params"] if id(p) not in head]
        adamw += [group for group in heads if group["params"]]
    if config.optimizer != "muon":
        return adamw, []
    matrices = muon_parameters(model)
    taken = {id(p) for p in matrices}
    for group in adamw:
        group["params"] = [p for p in group["params"] if id(p) not in taken]
    # Muon's decay is decoupled like AdamW's (p *= 1 - lr * weight_decay); Keller Jordan's
    # reference recipe uses the same 0.01 for both groups.
    muon = [{"params": matrices, "lr": config.muon_lr, "weight_decay": config.weight_decay,
             "momentum": config.muon_momentum}]
    return adamw, muon


def build_optimizer(model: MitraModel, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """The run's optimiser: a plain ``torch.optim.AdamW`` for ``"adamw"``, a `MuonWithAdamW` for ``"muon"``."""
    adamw_groups, muon_groups = parameter_groups(model, config)
    adamw = torch.optim.AdamW(adamw_groups, lr=config.lr, betas=(config.beta1, config.beta2),
                              fused=device.type == "cuda")
    if not muon_groups:
        return adamw
    # nesterov and the "original" shape scaling (lr x sqrt(max(1, rows / cols))) are
    # torch's defaults and the reference implementation's.
    muon = torch.optim.Muon(muon_groups, lr=config.muon_lr, weight_decay=config.weight_decay,
                            momentum=config.muon_momentum)
    return MuonWithAdamW(adamw, muon)


class MuonWithAdamW(torch.optim.Optimizer):
    """AdamW and Muon over disjoint parameters, used as one optimiser.

    ``param_groups`` are the AdamW groups followed by the Muon groups, the very dicts the two
    optimisers read, so a learning-rate scheduler (one ``lr_lambda`` for every group) or a resume
    that sets a group's rate sets it for the optimiser that uses it. ``state_dict`` has the layout
    of a single optimiser's: states by parameter index over all groups in that order.

    Parameters
    ----------
    adamw : torch.optim.AdamW
        The optimiser of the embeddings, norms, biases and head.
    muon : torch.optim.Muon
        The optimiser of the layers' weight matrices.
    """

    def __init__(self, adamw: torch.optim.AdamW, muon: torch.optim.Muon) -> None:
        self.parts: tuple[torch.optim.Optimizer, ...] = (adamw, muon)
        super().__init__([group for part in self.parts for group in part.param_groups], {})
        self._share_state()

    @property
    def adamw(self) -> torch.optim.Optimizer:
        return self.parts[0]

    @property
    def muon(self) -> torch.optim.Optimizer:
        return self.parts[1]

    def _share_state(self) -> None:
        # Views of the parts' groups and states (load_state_dict replaces both in each part).
        self.param_groups = [group for part in self.parts for group in part.param_groups]
        self.state = ChainMap(*(part.state for part in self.parts))  # type: ignore[assignment]

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One step of both optimisers (``closure``, if given, is evaluated once)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for part in self.parts:
            part.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """The parts' states as one optimiser's: parameter indices run on across the parts."""
        state: dict[int, Any] = {}
        groups: list[dict[str, Any]] = []
        offset = 0
        for part in self.parts:
            saved = part.state_dict()
            state.update({offset + index: value for index, value in saved["state"].items()})
            groups += [{**group, "params": [offset + i for i in group["params"]]} for group in saved["param_groups"]]
            offset += sum(len(group["params"]) for group in part.param_groups)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Inverse of `state_dict`: each part gets its groups and states, renumbered from 0."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"the saved optimizer state has {len(groups)} parameter groups, this one {len(self.param_groups)}"
            )
        start = 0
        for part in self.parts:
            mine = groups[start : start + len(part.param_groups)]
            start += len(part.param_groups)
            local = {index: number for number, index in enumerate(i for group in mine for i in group["params"])}
            part.load_state_dict({
                "state": {local[int(i)]: value for i, value in state_dict["state"].items() if int(i) in local},
                "param_groups": [{**group, "params": [local[i] for i in group["params"]]} for group in mine],
            })
        self._share_state()


def _parts(optimizer: torch.optim.Optimizer) -> tuple[torch.optim.Optimizer, ...]:
    return optimizer.parts if isinstance(optimizer, MuonWithAdamW) else (optimizer,)


def load_optimizer_state(
    optimizer: torch.optim.Optimizer, saved: dict[str, Any], model: MitraModel, config: TrainConfig,
    saved_config: TrainConfig, device: torch.device,
) -> None:
    """Load a checkpoint's optimiser state, also one saved by the other optimiser or with other groups.

    After a switch (``resume --set optimizer=muon`` or back, or another ``head_lr_scale``), a
    parameter keeps its state where the same algorithm goes on updating it (the Adam moments of
    the embeddings, norms, biases and head); the others start afresh (Muon's momentum, or Adam
    moments for the former Muon matrices).
    """
    if (saved_config.optimizer, saved_config.head_lr_scale) == (config.optimizer, config.head_lr_scale):
        optimizer.load_state_dict(saved)
        return
    previous = build_optimizer(model, saved_config, device)
    previous.load_state_dict(saved)
    for part in _parts(optimizer):
        for old in _parts(previous):
            if type(old) is type(part):
                part.state.update({p: old.state[p] for group in part.param_groups for p in group["params"]
                                   if p in old.state})


def apply_run_settings(optimizer: torch.optim.Optimizer, model: MitraModel, config: TrainConfig, factor: float) -> None:
    """Give every group this run's peak rate (``initial_lr``), its rate at ``factor`` of the peak, and its
    weight decay, betas or momentum: on resume the run's config wins over the saved state."""
    adamw_groups, muon_groups = parameter_groups(model, config)
    for group, fresh in zip(optimizer.param_groups, adamw_groups + muon_groups, strict=True):
        settings = {key: value for key, value in fresh.items() if key != "params"}
        group.update(settings, initial_lr=fresh["lr"], lr=fresh["lr"] * factor)


class WeightAverage:
    """An exponential moving average of a model's weights, kept in float32 in a copy of the model.

    Parameters
    ----------
    model : MitraModel
        The trained model; the average starts from its current weights.
    decay : float
        The decay once warmed up: after ``n`` updates the next one uses
        ``min(decay, (1 + n) / (10 + n))``, so the average first covers about the last tenth
        of the steps it has seen, and the early weights fade fast.
    updates : int, default=0
        Updates already made (a resumed average).
    """

    def __init__(self, model: MitraModel, decay: float, updates: int = 0) -> None:
        self.decay, self.updates = decay, updates
        # A deep copy, not a new model: building one would draw from the RNG the run resumes on.
        self.model = copy.deepcopy(model).float().eval().requires_grad_(False)
        for parameter in self.model.parameters():
            parameter.grad = None

    def next_decay(self) -> float:
        """The decay the next `update` uses."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: MitraModel) -> None:
        """Move the average towards ``model``'s weights (after an optimizer step)."""
        weight = 1.0 - self.next_decay()
        for average, current in zip(self.model.parameters(), model.parameters(), strict=True):
            average.lerp_(current.detach().float(), weight)
        self.updates += 1
