"""Command line of the pretraining package: ``python -m pretraining <command> --help``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from mitra_sklearn.config import Task

from ._command import command_main
from .config import PRESETS, PriorConfig, TrainConfig, parse_mixture, preset

if TYPE_CHECKING:
    from pathlib import Path

_DESCRIPTION_TEMPLATE = """Regenerate Mitra weights from the synthetic prior mixture.

commands:
  train             pretrain (or resume) a model; --dry-run prints the plan
  presets           list the named presets ({presets})
  evaluate          evaluate checkpoints on real datasets against baselines
  generalizability  the paper's generalizability matrix G and performance vector P
  resume            continue a campaign (a committed, packed run state) on this machine
  pack              write a run's newest checkpoint as small bf16 shards (to move it between machines)
  unpack            rebuild a packed checkpoint inside a run folder (training then resumes from it)

Single process:     python -m pretraining train --preset cpu-small --out runs/cpu-small
Several GPUs/nodes: torchrun --nproc_per_node=8 [--nnodes=N --rdzv-endpoint=HOST:PORT] \\
                        -m pretraining train --preset mitra-full --out runs/full
A killed run resumes from its newest checkpoint when started again with the same --out.
Campaign (state committed to the repository, continued on any fresh clone):
                    python -m pretraining resume campaign/<name>
"""
_DESCRIPTION = _DESCRIPTION_TEMPLATE.replace("{presets}", ", ".join(sorted(PRESETS)))


def _add_malloc_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--malloc-defaults", action="store_true",
                        help="leave glibc's malloc settings alone (by default a training process keeps freed "
                             "memory for its next step instead of mapping and zeroing it again: less kernel "
                             "time, up to twice the peak memory)")


def _train_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train", help="pretrain or resume a model",
        description="Pretrain a Mitra model on the synthetic prior mixture "
                    "(resumes from --out if it has a checkpoint).",
    )
    parser.add_argument("--preset", default="cpu-small", choices=sorted(PRESETS), help="named run (default: cpu-small)")
    parser.add_argument("--task", choices=[t.value for t in Task], type=Task.parse, help="task of the checkpoint")
    parser.add_argument("--out", help="run folder (default: runs/<preset>-<task>)")
    parser.add_argument("--prior", help="prior name or mixture, e.g. 'scm' or 'scm=0.5,et=0.5'")
    parser.add_argument("--steps", type=int, help="optimizer steps of the schedule")
    parser.add_argument("--batch-size", type=int, help="tables per optimizer step (all ranks)")
    parser.add_argument("--micro-batch-size", type=int, help="tables per forward pass per rank")
    parser.add_argument("--lr", type=float, help="peak learning rate")
    parser.add_argument("--dim", type=int, help="model width")
    parser.add_argument("--layers", type=int, dest="n_layers", help="number of layers")
    parser.add_argument("--heads", type=int, dest="n_heads", help="attention heads")
    parser.add_argument("--workers", type=int, dest="num_workers", help="data worker processes per rank")
    parser.add_argument("--time-limit", type=float, help="stop (after saving) after this many seconds")
    parser.add_argument("--seed", type=int, help="seed of the data stream and initialisation")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any TrainConfig field, or priors.<field> for a prior setting; value in JSON "
                             "(e.g. --set priors.n_support=[32,128])")
    parser.add_argument("--device", help="cpu, cuda, ... (default: CUDA when available)")
    parser.add_argument("--stop-after", type=int, help="stop at this step (the schedule still targets --steps)")
    parser.add_argument("--init-from", help="warm start a new run from this checkpoint folder, run folder or "
                        "shipped checkpoint name (same model shape, or more layers of the same width: repeated)")
    parser.add_argument("--campaign", help="folder that receives the newest state, packed small, after every save "
                        "(commit it; 'python -m pretraining resume FOLDER' continues the run on a fresh clone)")
    parser.add_argument("--no-resume", action="store_true", help="start from scratch even if --out has checkpoints")
    _add_malloc_flag(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--dry-run", action="store_true", help="print the run plan and exit")


def build_config(args: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """The preset (or ``base``) with the command-line overrides applied."""
    overrides: dict[str, Any] = {}
    for name in ("task", "steps", "batch_size", "micro_batch_size", "lr", "dim", "n_layers", "n_heads",
                 "num_workers", "time_limit", "seed", "init_from"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    if getattr(args, "prior", None) is not None:
        try:
            overrides["priors.mixture"] = parse_mixture(args.prior)
        except ValueError as err:
            raise SystemExit(f"--prior: {err}") from None
    known = {f.name for f in fields(TrainConfig)}
    known_priors = {f.name for f in fields(PriorConfig)}
    for item in args.set:
        key, sep, raw = item.partition("=")
        prior_key = key.removeprefix("priors.") if key.startswith("priors.") else None
        if not sep or (key not in known and prior_key not in known_priors) or key == "priors":
            raise SystemExit(
                f"--set expects KEY=VALUE with KEY a TrainConfig field or priors.<PriorConfig field>, got {item!r}"
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if prior_key is not None:
            try:
                overrides[key] = PriorConfig.field_value(prior_key, value)
            except (TypeError, ValueError) as err:
                raise SystemExit(f"--set {key}: {err}") from None
        else:
            overrides[key] = tuple(value) if isinstance(value, list) else value
    try:
        if base is not None:
            return base.replace(**overrides)
        return preset(args.preset, **overrides)
    except (TypeError, ValueError) as err:
        raise SystemExit(f"invalid run settings: {err}") from None


def _cooldown_note(config: TrainConfig) -> str:
    if not config.cooldown_steps:
        return ""
    return (f" over {config.cosine_horizon} steps, linear cooldown to it over steps "
            f"{config.cooldown_start}-{config.steps}")


def _muon_note(config: TrainConfig) -> str:
    if config.optimizer != "muon":
        return ""
    return (f"Muon lr {config.muon_lr:g} (momentum {config.muon_momentum:g}, the same schedule) for the layers' "
            "weight matrices, the rest with ")


def _ema_note(config: TrainConfig) -> str:
    if config.ema_decay is None:
        return "none (checkpoints export the training weights)"
    return f"EMA decay {config.ema_decay:g} (checkpoints and evaluations: the average; training: the raw weights)"


def describe(config: TrainConfig, name: str = "") -> str:
    """Human-readable plan of a run (what --dry-run prints)."""
    from .train import count_parameters

    n_params = count_parameters(config)
    priors = config.priors
    rows = priors.n_support[1] + priors.n_query[1]
    lines = [
        f"preset            {name}",
        f"task              {config.task}",
        f"model             dim {config.dim}, {config.n_layers} layers, {config.n_heads} heads, head {config.head_size}"
        f" -> {n_params:,} parameters",
        f"prior             {priors.mixture_spec}",
        f"tables            support {priors.n_support[0]}-{priors.n_support[1]} rows, query "
        f"{priors.n_query[0]}-{priors.n_query[1]} rows, {priors.n_features[0]}-{priors.n_features[1]} features "
        f"(at most {rows} rows)",
        f"classes           2-{priors.max_classes} (P(binary) {priors.binary_prob:g}), head ids {priors.class_ids}",
        f"loss              {_loss_note(config)}",
        f"warm start        {config.init_from or 'none'}",
        f"tables per step   {config.batch_size} (micro-batch {config.micro_batch_size or 'batch / ranks'})",
        f"expected steps    {config.steps:,} -> {config.steps * config.batch_size:,} tables",
        f"optimiser         {_muon_note(config)}AdamW lr {config.lr:g} (warm-up {config.warmup_steps} steps, "
        f"cosine to {config.min_lr_ratio:g}x{_cooldown_note(config)}), betas ({config.beta1}, {config.beta2}), "
        f"weight decay {config.weight_decay:g}, "
        f"clip {config.grad_clip:g}",
        f"weight average    {_ema_note(config)}",
        f"precision         {config.precision} (auto: bf16 autocast on CUDA and AMX CPUs, else float32)",
        f"data workers      {config.num_workers} per rank",
        f"saves / evals     every {config.save_every} steps (and {config.save_every_seconds:g} s) / "
        f"every {config.eval_every} steps",
        f"time limit        {config.time_limit or 'none'}",
    ]
    return "\n".join(lines)


def _loss_note(config: TrainConfig) -> str:
    if config.task is Task.CLASSIFICATION:
        return "cross-entropy over each table's classes"
    if config.head_size == 1:
        return "MSE on the scaled targets"
    mean = f" + {config.mean_loss_weight:g} x MSE of their mean" if config.mean_loss_weight else ""
    return f"cross-entropy over {config.head_size} bins{mean}"


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m pretraining`` (``evaluate`` and ``generalizability`` parse their own)."""
    parser = argparse.ArgumentParser(prog="python -m pretraining", description=_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="command")
    _train_parser(sub)
    _resume_parser(sub)
    sub.add_parser("presets", help="list the named presets",
                   description="List the named presets with --dry-run details.")
    _pack_parsers(sub)
    _held_out_parser(sub)
    for name, text in _TOOLS.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


#: Commands that own their argument parsing (and --help): name -> help line.
_TOOLS = {"evaluate": "real-data evaluation against baselines",
          "generalizability": "generalizability matrix G and performance vector P"}


def run(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m pretraining`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _TOOLS:
        if argv[0] == "evaluate":
            from .evaluate import run as tool
        else:
            from .generalizability import run as tool
        tool(argv[1:])
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"presets": _presets, "pack": _pack, "unpack": _unpack, "resume": _resume, "train": _train,
                "held-out": _held_out}
    if args.command not in handlers:
        parser.print_help()
        return 0
    from .runfolder import RunFolderInUseError

    try:
        return handlers[args.command](args)
    except RunFolderInUseError as err:  # a user's situation, not a bug: a message, no traceback
        raise SystemExit(f"error: {err}") from None


main = command_main(run, "python -m pretraining")


def _resume_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "resume", help="continue a campaign from its committed state",
        description="Continue the run whose newest state is packed in CAMPAIGN (see campaign/README.md): unpack "
                    "it into the run folder unless that holds a newer step, then train with the campaign's config "
                    "(plus any overrides), packing the newest state back into CAMPAIGN after every save.",
    )
    parser.add_argument("campaign", help="campaign folder (holds train_config.json and state/)")
    parser.add_argument("--out", help="run folder (default: runs/<campaign folder name>)")
    parser.add_argument("--steps", type=int, help="change the schedule's length")
    parser.add_argument("--lr", type=float, help="change the peak learning rate (takes effect at once)")
    parser.add_argument("--cooldown", type=int, metavar="K",
                        help="finish the run early: from the resumed step, fall linearly from the current "
                             "learning rate to the schedule's floor over K more steps, then stop (sets steps, "
                             "cooldown_steps and cosine_steps; a later resume continues the cooldown)")
    parser.add_argument("--workers", type=int, dest="num_workers", help="data worker processes")
    parser.add_argument("--time-limit", type=float, help="stop (after saving) after this many seconds")
    parser.add_argument("--stop-after", type=int, help="stop at this step")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a TrainConfig field (priors.<field> for a prior setting)")
    parser.add_argument("--device", help="cpu, cuda, ...")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_malloc_flag(parser)


def _pack_parsers(sub: argparse._SubParsersAction) -> None:
    pack_parser = sub.add_parser("pack", help="newest checkpoint of a run as small bf16 shards",
                                 description="Write the newest checkpoint of RUN as bf16 safetensors shards "
                                             "+ manifest.")
    pack_parser.add_argument("run", help="run folder")
    pack_parser.add_argument("out", help="folder for the shards")
    pack_parser.add_argument("--max-mib", type=float, default=15.0, help="largest shard in MiB (default 15)")
    pack_parser.add_argument("--weights-only", action="store_true", help="leave out the optimizer state")
    unpack_parser = sub.add_parser("unpack", help="rebuild a packed checkpoint in a run folder",
                                   description="Rebuild a packed checkpoint inside RUN; training resumes from it.")
    unpack_parser.add_argument("packed", help="folder holding the shards and manifest.json")
    unpack_parser.add_argument("run", help="run folder")


def _held_out_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "held-out", help="held-out prior scores of checkpoints, on a run's own held-out tables",
        description="Score saved checkpoints on the held-out prior tables of the run whose train_config.json "
                    "RUN holds (a run or campaign folder, or the file itself), as the run's evaluations do: a look "
                    "at a run between its evaluations, or at another checkpoint on the same tables.",
    )
    parser.add_argument("run", help="run or campaign folder (or its train_config.json)")
    parser.add_argument("checkpoints", nargs="+", help="checkpoint folders (model.safetensors + config.json)")
    parser.add_argument("--world-size", type=int, default=1, help="the run's process count (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ...")


def _saved_config(path: Path, error: str) -> TrainConfig:
    """The TrainConfig a run or campaign saved as ``path`` (its train_config.json); ``error`` when there is none."""
    if not path.is_file():
        raise SystemExit(error)
    return TrainConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))


def _held_out(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .runfolder import CONFIG_NAME
    from .train import held_out_scores

    path = Path(args.run)
    config = _saved_config(path / CONFIG_NAME if path.is_dir() else path,
                           f"{args.run} holds no {CONFIG_NAME}: give a run or campaign folder, or the file")
    for checkpoint, record in zip(args.checkpoints, held_out_scores(config, args.checkpoints, args.device,
                                                                    args.world_size)):
        print(f"{checkpoint}: " + ", ".join(f"{name} {value:.6f}" for name, value in record.items()))
    return 0


def _presets(args: argparse.Namespace) -> int:
    for name, config in PRESETS.items():
        print(describe(config, name) + "\n")
    return 0


def _pack(args: argparse.Namespace) -> int:
    from .runfolder import pack

    for path in pack(args.run, args.out, max_mib=args.max_mib, with_state=not args.weights_only):
        print(f"{path} ({path.stat().st_size / 2**20:.2f} MiB)")
    return 0


def _unpack(args: argparse.Namespace) -> int:
    from .runfolder import unpack

    print(f"unpacked into {unpack(args.packed, args.run)}")
    return 0


def _tune_allocator(args: argparse.Namespace) -> None:
    """Keep freed memory for the next step (see `pretraining.allocator`) unless --malloc-defaults."""
    if not args.malloc_defaults:
        from .allocator import retain_freed_memory

        retain_freed_memory()


def _train(args: argparse.Namespace) -> int:
    config = build_config(args)
    if args.dry_run:
        print(describe(config, args.preset))
        return 0
    from .train import train

    _tune_allocator(args)
    out = args.out or f"runs/{args.preset}-{config.task}"
    result = train(config, out, device=args.device, resume=not args.no_resume, progress=not args.no_progress,
                   stop_after=args.stop_after, campaign=args.campaign)
    print(f"stopped at step {result.step}; checkpoint: {result.checkpoint}; log: {result.log_path}")
    return 0


def _with_cooldown(config: TrainConfig, step: int, cooldown: int, steps: int | None) -> TrainConfig:
    """``config`` changed to cool down linearly over ``cooldown`` steps from ``step``."""
    if cooldown < 1:
        raise SystemExit(f"--cooldown must be >= 1, got {cooldown}")
    if steps is not None:
        raise SystemExit("--cooldown sets the schedule's length itself: leave out --steps")
    if config.cooldown_steps:
        raise SystemExit(
            f"this run is already cooling down (cooldown_steps={config.cooldown_steps}, ending at step "
            f"{config.steps}); resume it without --cooldown"
        )
    # The cosine keeps its old horizon, so the learning rate does not jump at the cooldown's start.
    return config.replace(steps=step + cooldown, cooldown_steps=cooldown, cosine_steps=config.cosine_horizon)


def _resume(args: argparse.Namespace) -> int:
    """``python -m pretraining resume CAMPAIGN``: continue a committed run on this machine."""
    from pathlib import Path

    from .runfolder import CAMPAIGN_CONFIG, checkpoint_step, unpack_campaign
    from .train import train

    campaign = Path(args.campaign)
    base = _saved_config(campaign / CAMPAIGN_CONFIG,
                         f"{campaign} is not a campaign folder: it has no {CAMPAIGN_CONFIG}")
    config = build_config(args, base=base)
    out = Path(args.out or Path("runs") / campaign.name)
    start = unpack_campaign(campaign, out)
    print(f"resuming {campaign} in {out} from {start.name if start else 'scratch'}")
    _tune_allocator(args)
    if args.cooldown is not None:
        config = _with_cooldown(config, checkpoint_step(start) if start else 0, args.cooldown, args.steps)
        print(f"cooldown: linear to the floor from step {config.cooldown_start} to {config.steps} "
              f"(cosine horizon kept at {config.cosine_steps})")
    result = train(config, out, device=args.device, progress=not args.no_progress, stop_after=args.stop_after,
                   campaign=campaign)
    print(f"stopped at step {result.step}; checkpoint: {result.checkpoint}; campaign state: {campaign}/state")
    return 0
