"""Every process is declared once (contracts/processes.py) and every command uses that name."""

from __future__ import annotations

import importlib

from contracts import processes, topics
from contracts.settings import Settings
from msgmem.stages import PROJECTORS, STAGES, stage_named


def test_names_modules_and_groups_are_unique() -> None:
    names = [p.name for p in processes.ALL]
    assert len(names) == len(set(names))
    assert len({p.module for p in processes.ALL}) == len(names)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    groups = [p.group_in(settings) for p in processes.ALL if p.consumes]
    assert len(groups) == len(set(groups))
    assert processes.NORMALIZE.group_in(settings) == "msgmem-normalize"
    assert processes.EMBEDDINGS_PROJECTOR.group_in(settings) == processes.EMBEDDINGS_PROJECTOR.group
    assert processes.EMBEDDINGS_PROJECTOR.group == "msgmem-embeddings-projector" and processes.INGEST.group is None


def test_declared_topics_and_settings_exist() -> None:
    declared = {spec.name for spec in topics.ALL_TOPICS}
    for process in processes.ALL:
        assert set(process.inputs) | set(process.outputs) <= declared, process.name
        if process.metrics_port_setting:
            assert process.metrics_port_setting in Settings.model_fields, process.name


def test_every_stage_and_projector_runs_through_its_declared_definition() -> None:
    for process in STAGES:
        stage = importlib.import_module(f"{process.module}.main").STAGE
        assert stage.process is process
        assert importlib.import_module(process.module).__file__  # a package with a __main__ beside it
    for process in PROJECTORS:
        projector = importlib.import_module(f"{process.module}.main").PROJECTOR
        assert projector.process is process
        store = importlib.import_module(f"{process.module}.store")
        assert store.PROJECTION == process.projection


def test_a_name_one_command_prints_is_one_the_others_accept() -> None:
    for process in (*STAGES, *PROJECTORS):
        assert stage_named(process.name) is process  # dlq retry, replay
        assert processes.by_name(process.name) is process  # dev, status
    assert stage_named("embeddings-projector") is processes.EMBEDDINGS_PROJECTOR  # letters written before
