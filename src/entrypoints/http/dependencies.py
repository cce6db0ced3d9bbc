"""Dependencies resolved one after another, not in an anyio task group per request.

Litestar resolves the dependencies of one level concurrently, spawning a task group with a task
each for every request that needs more than one (litestar-org/litestar#4563: two flat
dependencies cost an endpoint ~36 % of its throughput). Ours do no I/O: the caller's token, a
path id, the container's singletons. Measured with py-spy on V3 accepts, the task groups were the
largest single cost (~29 % of the process). Resolving them in order gives the same values.

Litestar offers no setting for this: `resolve_in_order` replaces the one method that decides, and
refuses to run on a Litestar whose method is not the one it was written against.
"""

from __future__ import annotations

import inspect
from typing import Any

from litestar._kwargs.cleanup import DependencyCleanupGroup
from litestar._kwargs.dependencies import resolve_dependency
from litestar._kwargs.kwargs_model import KwargsModel
from litestar.connection import ASGIConnection

# The start of Litestar's own method (2.x), as checked before it is replaced.
EXPECTED = "async def resolve_dependencies(self, connection: ASGIConnection, kwargs: dict[str, Any])"


async def _in_order(
    self: KwargsModel, connection: ASGIConnection[Any, Any, Any, Any], kwargs: dict[str, Any]
) -> DependencyCleanupGroup:
    cleanup_group = DependencyCleanupGroup()
    for batch in self.dependency_batches:
        for dependency in batch:
            await resolve_dependency(dependency, connection, kwargs, cleanup_group)
    return cleanup_group


def resolve_in_order() -> None:
    """Make every handler resolve its dependencies in order (idempotent)."""
    method = KwargsModel.resolve_dependencies
    if method is _in_order:
        return
    if EXPECTED not in inspect.getsource(method):
        raise RuntimeError(
            "Litestar's dependency resolution changed: review entrypoints/http/dependencies.py"
        )
    KwargsModel.resolve_dependencies = _in_order  # type: ignore[method-assign]
