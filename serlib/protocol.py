"""The protocol of a run: which utterances it trains on, adapts on and is tested on, and why.

A run's score means something only if the test speakers were never heard in training. This module
turns corpora on disk into the labelled tables of one run, each with a one-line description that
goes into ``metrics.json``:

1. scan each corpus and keep the utterances whose label the scheme maps to one of the run's
   classes (``labelled_table``);
2. split the **source** by speaker (IEMOCAP: sessions 1-3 train, 4 validation, 5 test; any other
   corpus: ``serlib.splits.speaker_split``) and the **target** into *adaptation* speakers and *test*
   speakers, disjoint (half and half, gender-balanced, with ``serlib.splits.SPLIT_SEED``).

DANN adapts on the adaptation speakers' audio, never their labels. Two special protocols, both
labelled as such:

- **oracle**: source and target are the same corpus (``--source ravdess:DIR --target
  ravdess:DIR``): the model trains on the *labelled* target adaptation speakers and is tested on the
  same target test speakers as the other runs. An upper bound, not a method: it uses target labels.
- **transductive**: DANN adapts on *all* target speakers, test speakers included, as the study did;
  its target numbers are marked transductive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from serlib.corpora import check_corpus_name, load_corpus
from serlib.corpora.base import Skip
from serlib.errors import UserError
from serlib.labels import apply_scheme, require_classes
from serlib.splits import (
    SOURCE_TEST_FRACTION,
    SOURCE_VAL_FRACTION,
    SPLIT_SEED,
    TARGET_TEST_FRACTION,
    Fold,
    assert_speaker_disjoint,
    gender_balanced_order,
    seed_split,
    speaker_split,
)


@dataclass(frozen=True)
class CorpusRef:
    """A corpus on disk: its loader name and its root folder."""

    name: str
    root: str

    @classmethod
    def parse(cls, spec: str | Sequence[str] | CorpusRef) -> CorpusRef:
        """Read ``NAME:DIR`` (or a (name, root) pair); the folder must exist."""
        if isinstance(spec, CorpusRef):
            return spec
        if isinstance(spec, str):
            name, sep, root = spec.partition(":")
            if not sep or not name or not root:
                raise UserError(f"expected NAME:DIR (e.g. ravdess:/data/RAVDESS), got {spec!r}")
        else:
            name, root = spec
        root_path = Path(root).expanduser()
        if not root_path.is_dir():
            raise FileNotFoundError(f"corpus folder not found: {root_path}")
        return cls(check_corpus_name(name), str(root_path.resolve()))

    def to_dict(self) -> dict:
        return {"name": self.name, "root": self.root}

    @classmethod
    def from_dict(cls, values: dict | None) -> CorpusRef | None:
        return None if values is None else cls(values["name"], values["root"])


def labelled_table(
    ref: CorpusRef, scheme: str, labels: Sequence[str], *, every_class: bool = False
) -> tuple[pd.DataFrame, list]:
    """The corpus's utterances whose scheme label is one of ``labels``, and what was skipped.

    ``every_class``: a corpus a model trains on must hold every class (a class without clips cannot
    be learnt); a corpus it is only tested on may lack some (a target with fewer emotions).
    """
    scan = load_corpus(ref.name, ref.root)
    table = apply_scheme(scan.table, scheme)
    table = table[table["label"].isin(list(labels))].reset_index(drop=True)
    if every_class:
        require_classes(table, labels, f"{ref.name} at {ref.root} with scheme {scheme}")
    if table.empty:
        raise UserError(
            f"{ref.name} at {ref.root}: no utterance with a label in {list(labels)}; check the "
            f"folder with `serlib scan --corpus {ref.name} --root DIR --scheme {scheme}`"
        )
    return table, list(scan.skipped)


def split_source(table: pd.DataFrame, corpus: str) -> dict[str, pd.DataFrame]:
    """Speaker-independent train/val/test: the seed split for IEMOCAP, speaker shares otherwise."""
    if corpus == "iemocap":
        return seed_split(table)
    return speaker_split(table, SOURCE_TEST_FRACTION, SOURCE_VAL_FRACTION, seed=SPLIT_SEED)


def split_target(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Target speakers cut into adaptation and test speakers (disjoint, gender-balanced)."""
    speakers = gender_balanced_order(table, SPLIT_SEED)
    if len(speakers) < 2:
        raise UserError(
            "the target corpus needs at least 2 speakers (adaptation and test speakers differ); "
            "give a --target corpus with more speakers"
        )
    n_test = min(max(1, round(len(speakers) * TARGET_TEST_FRACTION)), len(speakers) - 1)
    test = set(speakers[:n_test])
    parts = {
        "adapt": table[~table["speaker"].isin(test)].reset_index(drop=True),
        "test": table[table["speaker"].isin(test)].reset_index(drop=True),
    }
    assert_speaker_disjoint(parts["adapt"], parts["test"])
    return parts


def speakers_of(table: pd.DataFrame) -> list[str]:
    """The table's speakers, sorted: what config.json records for every set."""
    return sorted(table["speaker"].unique().tolist())


@dataclass
class Protocol:
    """The labelled tables of one run and what each set means."""

    tables: dict[str, pd.DataFrame]  # source_train, source_val, source_test, target_*
    descriptions: dict[str, str]
    skipped: list[Skip] = field(default_factory=list)


def make_protocol(
    source: CorpusRef,
    target: CorpusRef | None,
    scheme: str,
    labels: list[str],
    *,
    adversarial: bool,
    transductive: bool,
    target_statistics: str | None = None,
) -> Protocol:
    """Every table the run trains, adapts or is tested on, each with a one-line protocol.

    ``target_statistics`` names what a non-adversarial run estimates from the unlabelled target
    adaptation speakers ("input statistics", "batch-norm statistics", ...), or None.
    """
    source_table, skipped = labelled_table(source, scheme, labels, every_class=True)
    if target is not None and target == source:
        return oracle_protocol(source_table, skipped)
    tables = {f"source_{k}": v for k, v in split_source(source_table, source.name).items()}
    descriptions = {
        "source_val": "source validation speakers (model selection)",
        "source_test": "source test speakers, never seen in training",
    }
    if target is not None:
        target_table, target_skipped = labelled_table(target, scheme, labels)
        skipped += target_skipped
        parts = split_target(target_table)
        tables["target_test"] = parts["test"]
        tables["target_all"] = target_table
        if transductive and adversarial:
            tables["target_adapt"] = target_table
        elif adversarial or target_statistics:
            tables["target_adapt"] = parts["adapt"]
        descriptions |= target_descriptions(adversarial, transductive, target_statistics)
    return Protocol(tables, descriptions, skipped)


def oracle_protocol(table: pd.DataFrame, skipped: list[Skip]) -> Protocol:
    """Source = target: train on the labelled target adaptation speakers, test on its test ones."""
    parts = split_target(table)
    inner = speaker_split(parts["adapt"], 0.0, 0.2, seed=SPLIT_SEED)
    tables = {
        "source_train": inner["train"],
        "source_val": inner["val"],
        "target_test": parts["test"],
    }
    descriptions = {
        "source_val": "validation speakers taken from the target adaptation speakers",
        "target_test": "target test speakers; ORACLE: trained on labelled target adaptation "
        "speakers, an upper bound that uses target labels",
    }
    return Protocol(tables, descriptions, skipped)


def target_descriptions(
    adversarial: bool, transductive: bool, target_statistics: str | None
) -> dict[str, str]:
    """What the target test and all-target scores mean, given what the run saw of the target."""
    if not adversarial and target_statistics:
        return {
            "target_test": "target test speakers, disjoint from the adaptation speakers whose "
            f"unlabelled audio gave the target {target_statistics}",
            "target_all": "all target speakers; PARTLY TRANSDUCTIVE: includes the adaptation "
            f"speakers whose audio gave the target {target_statistics}",
        }
    if not adversarial:
        return {
            "target_test": "target test speakers (no target data used in training)",
            "target_all": "all target speakers (no target data used in training; the study's "
            "protocol)",
        }
    if transductive:
        return {
            "target_test": "target test speakers; TRANSDUCTIVE: their unlabelled audio was used "
            "for adaptation",
            "target_all": "all target speakers; TRANSDUCTIVE: adapted on all of them (the study's "
            "protocol)",
        }
    return {
        "target_test": "target test speakers, disjoint from the unlabelled adaptation speakers",
        "target_all": "all target speakers; PARTLY TRANSDUCTIVE: includes the adaptation speakers "
        "whose unlabelled audio was used in training",
    }


def fold_protocol(fold: Fold, skipped: list[Skip]) -> Protocol:
    """One fold of speaker-independent cross-validation on a single corpus (no target)."""
    return Protocol(
        {f"source_{part}": rows for part, rows in fold.as_dict().items()},
        {
            "source_val": f"{fold.name}: validation speakers (model selection)",
            "source_test": f"{fold.name}: test speakers, never seen in training",
        },
        list(skipped),
    )


def refit_protocol(protocol: Protocol) -> Protocol:
    """The same protocol with its validation speakers moved into training (``TrainConfig.refit``).

    Once the number of epochs is fixed, the validation speakers choose nothing: training on them
    too gives the model more speakers. The run has no validation set and keeps its last epoch.
    """
    tables = dict(protocol.tables)
    if "source_val" not in tables:
        raise ValueError("this protocol has no source_val set to refit on")
    validation = tables.pop("source_val")
    tables["source_train"] = pd.concat([tables["source_train"], validation], ignore_index=True)
    descriptions = {k: v for k, v in protocol.descriptions.items() if k != "source_val"}
    descriptions["source_train"] = (
        f"training speakers and the validation speakers {', '.join(speakers_of(validation))} "
        "(refit: every epoch runs and the last is kept; no epoch is chosen)"
    )
    return Protocol(tables, descriptions, list(protocol.skipped))
