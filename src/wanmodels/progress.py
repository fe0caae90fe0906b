"""How the library reports live progress without knowing who draws it.

The library calls a `ProgressSink`; the CLI passes one that draws rich bars or prints a line
per model, scripts pass nothing (`NullProgress`). Calls may come from worker threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from wanmodels.planning.plan import ModelPlan, Plan, PlannedFile
    from wanmodels.results import FileOutcome


class ProgressSink(Protocol):
    """Receives progress events; every method must be cheap and thread-safe."""

    def message(self, text: str) -> None: ...
    def plan_ready(self, plan: Plan) -> None: ...
    def file_started(self, item: PlannedFile) -> None: ...
    def advance(self, item: PlannedFile, nbytes: int) -> None: ...
    def file_finished(self, item: PlannedFile, outcome: FileOutcome) -> None: ...
    def model_finished(self, model: ModelPlan, outcomes: tuple[FileOutcome, ...]) -> None: ...
    def close(self) -> None: ...


class NullProgress:
    """A sink that ignores everything: the default for library callers."""

    def message(self, text: str) -> None:
        pass

    def plan_ready(self, plan: Plan) -> None:
        pass

    def file_started(self, item: PlannedFile) -> None:
        pass

    def advance(self, item: PlannedFile, nbytes: int) -> None:
        pass

    def file_finished(self, item: PlannedFile, outcome: FileOutcome) -> None:
        pass

    def model_finished(self, model: ModelPlan, outcomes: tuple[FileOutcome, ...]) -> None:
        pass

    def close(self) -> None:
        pass
