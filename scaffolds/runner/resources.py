"""The runner's resources from the real product: model catalog, task suites, tool registry."""

from __future__ import annotations

from typing import Any

from shardscope.config.settings import Settings
from shardscope.scaffolds.runner.runner import Resources
from shardscope.tracer.spans import Tracing


def default_resources(settings: Settings, tracing: Tracing, *, logprobs: bool = False) -> Resources:
    from shardscope.scaffolds.backends.registry import load_catalog, open_model
    from shardscope.scaffolds.backends.traced import CallTimeout
    from shardscope.scaffolds.tasks import check, load_suites
    from shardscope.scaffolds.tools import default_registry

    catalog = load_catalog(settings.models_file)
    suites = load_suites(settings.suites_dir) if settings.suites_dir else load_suites()
    timeout = CallTimeout(settings.call_timeout, settings.call_timeout_per_token)

    def open_(model_id: str) -> Any:
        return open_model(catalog.get(model_id), tracing, logprobs=logprobs, call_timeout=timeout)

    def provider_of(model_id: str) -> str:
        return catalog.get(model_id).provider

    return Resources(
        suites=suites,
        registry=default_registry(),
        open_model=open_,
        provider_of=provider_of,
        check=check,
        known_models=lambda: sorted(catalog.ids()),
        request_model_of=lambda model_id: catalog.get(model_id).model,
    )
