"""Saved configs with old `_target_` paths and argument names are read in today's names."""

from difflab import legacy


def test_upgrade_moves_targets_and_renames_arguments_at_any_depth(monkeypatch):
    monkeypatch.setattr(legacy, "MOVED", {"old.Net": "new.Net"})
    monkeypatch.setattr(legacy, "RENAMED", {"new.Net": {"input_size": "image_size"}})
    saved = {"model": {"_target_": "old.Net", "input_size": 8, "depth": 2},
             "samplers": [{"_target_": "old.Net", "input_size": 4}], "seed": 0,
             "other": {"_target_": "kept.Thing", "input_size": 3}}
    assert legacy.upgrade(saved) == {
        "model": {"_target_": "new.Net", "image_size": 8, "depth": 2},
        "samplers": [{"_target_": "new.Net", "image_size": 4}], "seed": 0,
        "other": {"_target_": "kept.Thing", "input_size": 3}}
    assert saved["model"]["_target_"] == "old.Net"  # the saved config itself is left as it was


def test_every_moved_target_points_at_something_importable():
    from hydra.utils import get_object

    for new in legacy.MOVED.values():
        get_object(new)
    for target in legacy.RENAMED:
        get_object(target)
