"""The faces are written out from the repositories (tools/generate_faces.py): they must
be up to date, and offer every marked operation with its signature, sync and async."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from agentstore import async_faces, faces
from agentstore.executions.repository import ExecutionRepository
from agentstore.operations import ACCESS, Repository
from agentstore.orchestrator import (
    AgentRepository,
    ApprovalRepository,
    ArtifactRepository,
    AttemptRepository,
    CheckpointRepository,
    EventRepository,
    RunRepository,
    TaskRepository,
)
from tests.cli.conftest import REPO

REPOSITORIES: dict[str, type[Repository]] = {
    "Runs": RunRepository,
    "Agents": AgentRepository,
    "Tasks": TaskRepository,
    "Attempts": AttemptRepository,
    "Events": EventRepository,
    "Artifacts": ArtifactRepository,
    "Approvals": ApprovalRepository,
    "Checkpoints": CheckpointRepository,
    "Executions": ExecutionRepository,
}


def test_the_written_faces_are_up_to_date() -> None:
    checked = subprocess.run(
        [sys.executable, "tools/generate_faces.py", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("face", list(REPOSITORIES))
def test_every_operation_is_on_both_faces_with_its_signature(face: str) -> None:
    repository = REPOSITORIES[face]
    marked = {
        name: member
        for name, member in vars(repository).items()
        if getattr(member, ACCESS, None) is not None
    }
    assert marked
    for name, operation in marked.items():
        expected = inspect.signature(operation)
        expected = expected.replace(parameters=list(expected.parameters.values())[1:])
        sync = getattr(getattr(faces, face), name)
        asynchronous = getattr(getattr(async_faces, f"Async{face}"), name)
        for method in (sync, asynchronous):
            actual = inspect.signature(method)
            actual = actual.replace(parameters=list(actual.parameters.values())[1:])
            assert actual == expected, f"{face}.{name}"
            assert inspect.getdoc(method) == inspect.getdoc(operation)
        assert inspect.iscoroutinefunction(asynchronous)
        assert not inspect.iscoroutinefunction(sync)
