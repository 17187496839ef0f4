"""``shardscope models``: the catalog with each model's availability and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def catalog_rows(catalog_file: Path | None = None) -> list[dict[str, Any]]:
    """One dict per catalog entry: identity, prices, capabilities, availability and reason."""
    from shardscope.scaffolds.backends.registry import availability, load_catalog

    rows = []
    for entry in load_catalog(catalog_file):
        available, reason = availability(entry)
        rows.append(
            {
                "id": entry.id,
                "backend": entry.backend,
                "provider": entry.provider,
                "model": entry.model,
                "price_input_per_million": entry.price_input_per_million,
                "price_output_per_million": entry.price_output_per_million,
                "base_url": entry.base_url,
                "capabilities": dict(entry.capabilities),
                "description": entry.description,
                "available": available,
                "reason": reason,
                "source": entry.source,
            }
        )
    return rows


def models_command(json_output: bool = False, catalog_file: Path | None = None) -> int:
    """Print the model catalog (a table, or JSON) with availability; returns the exit code."""
    rows = catalog_rows(catalog_file)
    if json_output:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="shardscope models", title_justify="left", expand=True)
    table.add_column("id", no_wrap=True, style="bold")
    table.add_column("backend · model", overflow="fold", ratio=2)
    table.add_column("$/M in/out", no_wrap=True)
    table.add_column("ok", no_wrap=True)
    table.add_column("why", overflow="fold", ratio=3)
    for row in rows:
        table.add_row(
            row["id"],
            f"{row['backend']} · {row['provider']}:{row['model']}",
            f"{_price(row['price_input_per_million'])}/{_price(row['price_output_per_million'])}",
            "[green]yes[/green]" if row["available"] else "[red]no[/red]",
            row["reason"],
        )
    console = Console()
    console.print(table)
    ready = sum(r["available"] for r in rows)
    console.print(f"{ready} of {len(rows)} models can run here. Catalog: "
                  + ", ".join(sorted({r['source'] for r in rows})))
    return 0


def _price(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"
