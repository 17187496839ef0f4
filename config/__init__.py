"""Configuration data shipped with shardscope (model catalog, task suites) and its loaders."""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent

__all__ = ["CONFIG_DIR"]
