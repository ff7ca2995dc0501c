"""The one training loop: supervised or domain-adversarial, on a CPU, a GPU or several GPUs.

``fit(model, train_loader, val_loader, config)`` trains any model from ``serlib.models`` and keeps
the one that scores the best unweighted accuracy (UA) on the *source validation* speakers, or, with
``config.keep == "last"``, the one after the last epoch; no target label is ever looked at to
choose it. Give it a ``target_loader`` and a DANN model and every source batch is paired with an
unlabelled target batch for the domain head.

Hardware is HF Accelerate's job (``serlib.hardware`` builds the ``Accelerator``): the same loop runs
on a laptop CPU, on one GPU in bf16/fp16, and on several GPUs or CPU processes under
``accelerate launch``. With N processes each one trains on its own shard of every epoch's batches
(batches k, k+N, k+2N... of the one order that ``serlib.epochs`` fixes), the gradients are averaged,
validation is gathered from every process (``serlib.predict``), the history reports the whole
epoch's losses, and only the main process writes files.

With a ``run_dir`` the loop also writes, after every epoch, ``history.csv``, the kept model so far
(``model.safetensors``: the best epoch's, or with ``keep="last"`` this epoch's) and a checkpoint
(``checkpoint/``: weights, optimizer, scheduler and loop state, see ``serlib.checkpoints``).
``resume=True`` continues from the last complete checkpoint and finishes with exactly the metrics
an uninterrupted run would have had, because every epoch is a pure function of (seed, epoch)
(``serlib.epochs``).

Its settings are a ``serlib.config.TrainConfig`` (the optimiser and the loop, nothing about inputs):
among them the learning-rate schedule (ReduceLROnPlateau on validation UA, or a warm-up then a
cosine decay), label smoothing, and mixup of supervised batches (``serlib.mixup``).
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import astuple, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn
from tqdm.auto import tqdm

from serlib.checkpoints import (
    load_checkpoint,
    load_weights,
    remove_temporaries,
    save_checkpoint,
    save_weights,
    write_text_atomic,
)
from serlib.config import TrainConfig
from serlib.epochs import global_seed, set_loader_epoch, target_batches
from serlib.errors import UserError
from serlib.hardware import make_accelerator, reusing_freed_memory
from serlib.mixup import Mixup
from serlib.models.adabn import split_domains
from serlib.models.dann import (
    DomainAdversarialLoss,
    LossParts,
    concat_inputs,
    grl_coefficient,
)
from serlib.models.heads import encoder_inputs
from serlib.predict import Predictions, predict


def parameter_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """Two learning rates: ``encoder_lr`` for pretrained weights, ``lr`` for everything else.

    A pretrained encoder (one with a ``backbone``, like Wav2Vec2) must move slowly or it forgets
    what it knows; the fresh heads must move fast. The CRNN has no backbone: all of it gets ``lr``.
    """
    encoder = getattr(model, "encoder", None)
    backbone = getattr(encoder, "backbone", None)
    slow_ids = {id(p) for p in backbone.parameters()} if backbone is not None else set()
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {
            "params": [p for p in trainable if id(p) not in slow_ids],
            "lr": config.lr,
            "name": "heads",
        }
    ]
    slow = [p for p in trainable if id(p) in slow_ids]
    if slow:
        encoder_lr = config.encoder_lr if config.encoder_lr is not None else config.lr
        groups.insert(0, {"params": slow, "lr": encoder_lr, "name": "backbone"})
    return groups


COSINE_FLOOR = 0.01
"""The cosine schedule's last epoch trains at this fraction of the full learning rate."""


def cosine_factor(epoch: int, epochs: int, warmup_epochs: int = 0) -> float:
    """The cosine schedule's learning rate in ``epoch`` (0-based), as a fraction of the full rate.

    Warm-up: epochs 0..warmup-1 climb linearly (1/(w+1), 2/(w+1), ...) so that the first updates of
    fresh weights are small; then a cosine from the full rate down to ``COSINE_FLOOR`` in the last
    epoch, a known path that needs no validation score (unlike ReduceLROnPlateau).
    """
    if epoch < warmup_epochs:
        return (epoch + 1) / (warmup_epochs + 1)
    progress = min((epoch - warmup_epochs) / max(epochs - 1 - warmup_epochs, 1), 1.0)
    return COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress))


Scheduler = torch.optim.lr_scheduler.LRScheduler
"""What ``build_optimizer`` returns beside the optimizer (a ReduceLROnPlateau is one, too)."""


def build_optimizer(
    model: nn.Module, config: TrainConfig
) -> tuple[torch.optim.Optimizer, Scheduler]:
    """AdamW and the learning-rate schedule: a ReduceLROnPlateau that watches the validation UA
    (higher is better), or ``cosine_factor`` per epoch (``config.schedule``)."""
    optimizer = torch.optim.AdamW(parameter_groups(model, config), weight_decay=config.weight_decay)
    if config.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda epoch: cosine_factor(epoch, config.epochs, config.warmup_epochs)
        )
    else:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", patience=config.plateau_patience, factor=config.plateau_factor
        )
    return optimizer, scheduler


def step_scheduler(scheduler: Scheduler, val_ua: float) -> None:
    """End of an epoch: the plateau schedule needs the validation UA, the cosine one only counts."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_ua)
    else:
        scheduler.step()


MIXUP_DANN = (
    "mixup applies to supervised models only, not DANN (its target rows have no labels to mix); "
    "set mixup to 0 (--mixup 0)"
)
"""Why a DANN run with mixup is refused (``fit``, and ``serlib.run_settings`` before any work)."""


@dataclass
class StepLosses:
    """Running sums over one epoch's training steps: the history's ``train_*`` columns."""

    loss: float = 0.0
    emotion: float = 0.0
    domain: float = 0.0
    domain_correct: float = 0.0
    domain_seen: int = 0
    steps: int = 0

    def add(self, loss: torch.Tensor, parts: LossParts | None = None) -> None:
        """One step's loss, and for a DANN step its parts (emotion and domain loss, domain guesses)."""
        self.loss += loss.item()
        self.emotion += (parts.emotion if parts is not None else loss).item()
        if parts is not None:
            self.domain += parts.domain.item()
            self.domain_correct += parts.domain_correct.item()
            self.domain_seen += parts.domain_seen
        self.steps += 1

    def over_processes(self, accelerator: Accelerator) -> StepLosses:
        """The sums of every process together: the whole epoch, not just this process's shard."""
        if accelerator.num_processes == 1:
            return self
        mine = torch.tensor(astuple(self), dtype=torch.float64, device=accelerator.device)
        *sums, seen, steps = accelerator.reduce(mine, reduction="sum").tolist()
        return StepLosses(*sums, domain_seen=int(seen), steps=int(steps))

    def summary(self, adversarial: bool) -> dict[str, float]:
        steps = max(self.steps, 1)
        row = {"train_loss": self.loss / steps, "train_emotion_loss": self.emotion / steps}
        if adversarial:
            row["train_domain_loss"] = self.domain / steps
            row["train_domain_acc"] = self.domain_correct / max(self.domain_seen, 1)
        return row


def train_one_epoch(
    model: nn.Module,
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    accelerator: Accelerator,
    config: TrainConfig,
    epoch: int,
    *,
    target_loader: Iterable | None = None,
    class_weights: torch.Tensor | None = None,
    augment: Callable[[dict], dict] | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """One pass over the source batches (each paired with a target batch for DANN).

    A DANN step sends source and target rows through the model as one batch and minimises
    ``DomainAdversarialLoss`` (``serlib.models.dann``); everything else here is the same for every
    model: autocast, gradient accumulation, clipping, the optimizer step.
    """
    core = accelerator.unwrap_model(model)
    input_keys = core.input_keys
    adversarial = getattr(core, "adversarial", False) and target_loader is not None
    targets = target_batches(target_loader, epoch) if adversarial else None
    dann_loss = DomainAdversarialLoss(
        config.adversary, config.domain_weight, label_smoothing=config.label_smoothing
    )
    steps_per_epoch = len(loader)
    sums = StepLosses()
    model.train()
    bar = tqdm(
        loader,
        desc=f"epoch {epoch + 1}/{config.epochs}",
        leave=False,
        disable=not (progress and accelerator.is_local_main_process),
    )
    coefficient = 0.0
    augment = augment or (lambda batch: batch)
    for step, batch in enumerate(bar):
        batch = augment(batch)
        inputs, labels = encoder_inputs(batch, input_keys), batch["label"]
        parts = None
        mix = None  # mixup: supervised steps only (a DANN's target rows have no labels)
        if config.mixup > 0 and not adversarial:
            mix = Mixup.draw(len(labels), config.mixup)
            inputs = mix.inputs(inputs)
        with accelerator.accumulate(model):
            with accelerator.autocast():
                if adversarial:
                    target_inputs = encoder_inputs(augment(next(targets)), input_keys)
                    progress_fraction = (epoch + step / steps_per_epoch) / config.epochs
                    coefficient = grl_coefficient(progress_fraction, cap=config.grl_cap)
                    # target_batchnorm: each domain's rows normalised with their own statistics
                    with split_domains(core, len(labels) if config.target_batchnorm else None):
                        outputs = model(
                            *concat_inputs(inputs, target_inputs),
                            grl_coefficient=dann_loss.reversal_coefficient(coefficient),
                        )
                    parts = dann_loss(
                        outputs,
                        labels,
                        coefficient,
                        domain_head=core.domain_head,
                        class_weights=class_weights,
                    )
                    loss = parts.total
                else:
                    logits = model(*inputs)["logits"].float()
                    smoothing = config.label_smoothing
                    if mix is not None:
                        loss = mix.loss(logits, labels, class_weights, smoothing)
                    else:
                        loss = F.cross_entropy(
                            logits, labels, weight=class_weights, label_smoothing=smoothing
                        )
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"the training loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}; "
                    "try a lower learning rate or mixed_precision='no'"
                )
            # Accelerate scales the loss and skips step/zero_grad until the N-th batch.
            accelerator.backward(loss)
            if config.grad_clip > 0 and accelerator.sync_gradients:
                accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        sums.add(loss, parts)
        bar.set_postfix(loss=f"{sums.loss / sums.steps:.3f}")
    row = sums.over_processes(accelerator).summary(adversarial)
    if adversarial:
        row["grl_coefficient"] = coefficient
    return row


@dataclass
class FitResult:
    """What ``fit`` hands back: the best model (weights loaded), its epoch, and the history."""

    model: nn.Module
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    best_val_ua: float = float("nan")
    stopped_early: bool = False
    accelerator: Accelerator | None = None
    # the best epoch's source-validation predictions, when that epoch ran in this call (a resumed
    # run that restored its best epoch from the checkpoint has none): scoring need not redo them
    best_val: Predictions | None = None


def history_csv(history: list[dict]) -> str:
    """The history as CSV text, columns in first-seen order (DANN rows have extra columns)."""
    columns: list[str] = []
    for row in history:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buffer.getvalue()


def loop_state(optimizer, scheduler, epoch: int, tracker: dict, history: list[dict]) -> dict:
    """Everything but the weights that a resumed run needs, as plain values and tensors."""
    return {
        "epoch": epoch,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "tracker": dict(tracker),
        "history": [dict(row) for row in history],
    }


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None,
    config: TrainConfig,
    *,
    labels: list[str] | None = None,
    target_loader: Iterable | None = None,
    class_weights: torch.Tensor | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    accelerator: Accelerator | None = None,
    augment: Callable[[dict], dict] | None = None,
    progress: bool = True,
) -> FitResult:
    """Train ``model``; keep the weights ``config.keep`` asks for (best-validation or last epoch).

    With ``keep="best"`` the run keeps the epoch with the best source-validation UA and stops
    after ``config.patience`` epochs without a better one; with ``keep="last"`` every epoch runs
    and the weights after the last one are kept (validation UA is logged and chooses nothing).
    ``val_loader=None`` (a refit run, ``config.refit``) trains without validation: keep="last" and
    the cosine schedule only.

    ``target_loader`` (unlabelled target batches) is used only by adversarial models. With
    ``run_dir``, each epoch is checkpointed there and ``resume=True`` picks up the last complete
    checkpoint (a run with none yet starts from the beginning). ``augment`` changes each training
    batch (source and target) on its device, e.g. SpecAugment. Returns the best model, on the
    accelerator's device, in eval mode.
    """
    adversarial = getattr(model, "adversarial", False)
    if adversarial and target_loader is None:
        raise ValueError("a DANN model needs a target_loader (unlabelled target batches)")
    if adversarial and config.mixup > 0:
        raise UserError(MIXUP_DANN)
    if resume and run_dir is None:
        raise ValueError("resume=True needs the run_dir that holds the checkpoint")
    if val_loader is None and (config.keep != "last" or config.schedule != "cosine"):
        raise ValueError("without a val_loader, fit needs keep='last' and schedule='cosine'")
    accelerator = accelerator or make_accelerator(config)
    run_dir = Path(run_dir) if run_dir is not None else None
    checkpoint_dir = run_dir / "checkpoint" if run_dir is not None else None
    labels = labels or [str(i) for i in range(model.num_classes)]

    set_seed(config.seed)  # only matters for layers built lazily; the weights already exist
    optimizer, scheduler = build_optimizer(model, config)
    tracker = {"best_val_ua": -1.0, "best_epoch": -1, "bad_epochs": 0, "finished": False}
    history: list[dict] = []
    start_epoch = 0
    if resume and checkpoint_dir is not None:
        if accelerator.is_main_process:
            remove_temporaries(checkpoint_dir)
            remove_temporaries(run_dir)
        saved = load_checkpoint(checkpoint_dir)
        if saved is not None:
            state = saved.state
            model.load_state_dict(saved.weights)
            if accelerator.is_main_process:  # the best model of this history, not of a lost epoch
                best = {"epoch": state["tracker"]["best_epoch"]}  # as fit wrote it the first time
                save_weights(run_dir / "model.safetensors", saved.best_weights, metadata=best)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            tracker.update(state["tracker"])
            history = list(state["history"])
            start_epoch = int(state["epoch"]) + 1
            where = f"{run_dir.name}/{checkpoint_dir.name}"  # no absolute path in saved outputs
            accelerator.print(f"resuming after epoch {start_epoch} from {where}")
    best_weights = None
    best_val = None
    if class_weights is not None:
        class_weights = class_weights.to(accelerator.device, dtype=torch.float32)

    named = {
        "train": train_loader,
        "val": val_loader,
        "target": target_loader if adversarial else None,
    }
    named = {name: loader for name, loader in named.items() if loader is not None}
    model, optimizer, *prepared = accelerator.prepare(model, optimizer, *named.values())
    prepared = dict(zip(named, prepared, strict=True))
    train_loader, val_loader, target_loader = (prepared.get(n) for n in ("train", "val", "target"))
    check_every_process_trains(train_loader, accelerator)

    for epoch in range(start_epoch, config.epochs):
        if tracker["finished"]:
            break
        started = time.perf_counter()
        # dropout and SpecAugment masks: each process its own (process k adds k; one process: +0)
        set_seed(global_seed(config.seed, epoch), device_specific=True)
        set_loader_epoch(train_loader, epoch)
        if val_loader is not None:
            set_loader_epoch(val_loader, epoch)
        row = {"epoch": epoch + 1}
        with reusing_freed_memory(accelerator.device):  # CPU: no page faults step after step
            row |= train_one_epoch(
                model,
                train_loader,
                optimizer,
                accelerator,
                config,
                epoch,
                target_loader=target_loader,
                class_weights=class_weights,
                augment=augment,
                progress=progress,
            )
        val, scores = None, {"ua": float("nan")}  # a refit run has no validation speakers
        if val_loader is not None:
            val = predict(model, val_loader, accelerator)
            scores = val.report(labels)
            row |= {
                "val_loss": val.loss,
                "val_ua": scores["ua"],
                "val_wa": scores["wa"],
                "val_macro_f1": scores["macro_f1"],
            }
        step_scheduler(scheduler, scores["ua"])
        for group in optimizer.param_groups:
            row[f"lr_{group.get('name', 'group')}"] = group["lr"]
        row["seconds"] = round(time.perf_counter() - started, 2)
        history.append(row)

        # keep="last": each epoch replaces the kept weights, so the run ends with the last epoch's
        kept = scores["ua"] > tracker["best_val_ua"] or config.keep == "last"
        if kept:
            tracker.update(best_val_ua=scores["ua"], best_epoch=epoch, bad_epochs=0)
            best_val = val
            weights = accelerator.unwrap_model(model).state_dict()
            if run_dir is not None and accelerator.is_main_process:
                save_weights(run_dir / "model.safetensors", weights, metadata={"epoch": epoch})
            elif run_dir is None:
                best_weights = {k: v.detach().clone() for k, v in weights.items()}
        else:
            tracker["bad_epochs"] += 1
        stop = config.keep == "best" and tracker["bad_epochs"] >= config.patience
        tracker["finished"] = stop or epoch + 1 == config.epochs
        accelerator.print(epoch_line(row, kept))
        if run_dir is not None and accelerator.is_main_process:
            write_text_atomic(run_dir / "history.csv", history_csv(history))
            save_checkpoint(
                checkpoint_dir,
                epoch,
                accelerator.unwrap_model(model).state_dict(),
                loop_state(optimizer, scheduler, epoch, tracker, history),
                best_epoch=tracker["best_epoch"],
            )
        accelerator.wait_for_everyone()
        if stop:
            accelerator.print(f"early stop: no better validation UA for {config.patience} epochs")
            break

    core = accelerator.unwrap_model(model)
    if run_dir is not None and (run_dir / "model.safetensors").is_file():
        core.load_state_dict(load_weights(run_dir / "model.safetensors", accelerator.device))
    elif best_weights is not None:
        core.load_state_dict(best_weights)
    core.eval()
    return FitResult(
        model=core,
        history=history,
        best_epoch=int(tracker["best_epoch"]),
        best_val_ua=float(tracker["best_val_ua"]),
        stopped_early=tracker["bad_epochs"] >= config.patience,
        accelerator=accelerator,
        best_val=best_val,
    )


def check_every_process_trains(train_loader: Iterable, accelerator: Accelerator) -> None:
    """Refuse a training set too small to give every process a batch (its shard would be empty)."""
    if len(train_loader) == 0:
        raise UserError(
            f"the training set is too small for {accelerator.num_processes} process(es): no "
            "process may get an empty shard; use fewer processes or a smaller batch_size"
        )


def epoch_line(row: Mapping, kept: bool) -> str:
    """One readable line per epoch: losses, validation scores, and a star for kept weights."""
    text = f"epoch {row['epoch']:>3}  loss {row['train_loss']:.3f}"
    if "train_domain_acc" in row:
        text += f"  domain acc {row['train_domain_acc']:.2f} (grl {row['grl_coefficient']:.2f})"
    if "val_ua" in row:  # a refit run has no validation speakers
        text += f"  val UA {row['val_ua']:.3f} WA {row['val_wa']:.3f}"
    text += f"  {row['seconds']:.1f}s"
    return text + ("  *" if kept else "")
