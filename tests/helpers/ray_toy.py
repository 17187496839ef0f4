"""Resources a Ray worker process rebuilds for the toy matrix (scripted models, toy suite):
module-level, so the executor's plan pickles them by reference."""

from __future__ import annotations

from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.scripted import ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.runner import Resources
from shardscope.tracer.spans import Tracing
from tests import fakes
from tests.helpers.toy_run import policy

MODELS = ("toy-a", "toy-b")


def toy_resources(settings: Settings, tracing: Tracing, *, delay: float = 0.0, tasks: int = 2,
                  provider: str = "scripted") -> Resources:
    models = {n: TracedModel(ScriptedBackend(model=n, policy=policy(delay)), tracing, model_id=n)
              for n in MODELS}
    resources = fakes.resources(models, tasks=tasks)
    resources.provider_of = lambda model_id: provider
    return resources
