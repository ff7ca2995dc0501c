"""The one home of settings: the profile table, the two settings parts, and their checks."""

from __future__ import annotations

from dataclasses import fields

import pytest

from serlib.config import (
    PROFILE_NAMES,
    PROFILES,
    RECIPE,
    InputConfig,
    TrainConfig,
    check_profile,
    profile_settings,
)
from serlib.errors import UserError


def test_profile_table_covers_every_profile_and_encoder_row():
    rows = ("crnn", "w2v2", "w2v2-frozen")
    recipe = {(RECIPE, "crnn")}  # the CRNN's training recipe has no Wav2Vec2 rows
    assert {(p, r) for p in PROFILE_NAMES for r in rows} | recipe == set(PROFILES)
    assert profile_settings("full", "crnn").inputs.crop_frames == 300
    assert profile_settings("workshop", "crnn", epochs=3, seed=None).train.epochs == 3
    w2v2 = profile_settings("full", "w2v2").train
    assert (w2v2.encoder_lr, w2v2.lr, w2v2.weight_decay) == (2e-5, 3e-4, 0.01)
    with pytest.raises(UserError, match="no profile 'huge'"):
        profile_settings("huge")


def test_overrides_go_to_the_part_that_has_the_setting():
    chosen = profile_settings("tiny", "crnn", batch_size=16, crop_frames=64, trim_db=30.0)
    assert chosen.train.batch_size == 16
    assert (chosen.inputs.crop_frames, chosen.inputs.trim_db) == (64, 30.0)
    # None keeps the profile's value: an option the command line was not given changes nothing
    assert profile_settings("tiny", "crnn", batch_size=None).train.batch_size == 8
    with pytest.raises(UserError, match="unknown setting crop_frame; training settings"):
        profile_settings("tiny", "crnn", crop_frame=64)


def test_the_two_parts_share_no_setting_and_round_trip():
    assert not {f.name for f in fields(TrainConfig)} & {f.name for f in fields(InputConfig)}
    config = profile_settings("tiny", "crnn", seed=3)
    assert TrainConfig.from_dict(config.train.to_dict() | {"unknown": 1}) == config.train
    # a format-1 run folder kept both parts in one "train" dictionary: each part reads its own
    flat = config.train.to_dict() | config.inputs.to_dict()
    assert InputConfig.from_dict(flat) == config.inputs
    assert TrainConfig.from_dict(flat) == config.train


def test_bad_values_name_the_setting():
    with pytest.raises(UserError, match="crop_frames must be > 0"):
        InputConfig(crop_frames=0)
    with pytest.raises(UserError, match="trim_db must be > 0"):
        InputConfig(trim_db=-40.0)
    with pytest.raises(UserError, match="normalisation must be one of global, utterance, none"):
        InputConfig(normalisation="minmax")
    with pytest.raises(UserError, match="epochs must be > 0"):
        TrainConfig(epochs=0)
    for factor in (0.0, 1.0):  # checked for every run, refit or not
        with pytest.raises(UserError, match="plateau_factor must be in \\(0, 1\\)"):
            TrainConfig(plateau_factor=factor)
    with pytest.raises(UserError, match="unknown profile 'laptop'"):
        check_profile("laptop")
