"""Validation of a harvest source's configuration (JSON), shared by the
portal's harvesters: which mapping to apply, whether the source is complete,
how much it may withdraw in one run, its schedule, and each kind's own keys.
Every error is a ``bad-config`` message naming what is wrong, in Chinese and
English (a mapping's own problems: ``mapping.MappingConfigError``)."""
from __future__ import annotations

import json
from typing import Any

import ckan.plugins.toolkit as tk
from ckanext.shanghai.messages import Message, MessageError

from ckanext.shanghai.harvesters import mapping

COMMON_KEYS = {"mapping", "complete", "max_withdraw_share", "schedule_minutes"}


class SourceConfigError(MessageError, ValueError):
    """A harvest source configuration that cannot be used (a ValueError, as
    ckanext-harvest's validate_config expects)."""

    def __init__(self, reason_zh: str, reason_en: str):
        super().__init__(Message("bad-config", reason_zh, reason_en))


def parse(config_text: str | None, *, kind_keys: set[str], default_mapping: str | None = None) -> dict[str, Any]:
    """The configuration as a dict with its mapping loaded.

    :raises SourceConfigError: or ``mapping.MappingConfigError`` (both
        ValueErrors carrying a message)."""
    try:
        config = json.loads(config_text or "{}")
    except json.JSONDecodeError as error:
        raise SourceConfigError(f"配置不是有效的 JSON：{error.msg}", f"Configuration is not valid JSON: {error.msg}")
    if not isinstance(config, dict):
        raise SourceConfigError("配置应为 JSON 对象", "Configuration must be a JSON object")
    unknown = set(config) - COMMON_KEYS - kind_keys
    if unknown:
        names = ", ".join(sorted(unknown))
        raise SourceConfigError(f"未知配置项：{names}", f"Unknown options: {names}")
    spec = config.get("mapping", default_mapping)
    if isinstance(spec, str):
        path = mapping.MAPPINGS_DIR / f"{spec}.yaml"
        if not spec.replace("_", "").replace("-", "").isalnum() or not path.exists():
            shipped = ", ".join(sorted(p.stem for p in mapping.MAPPINGS_DIR.glob("*.yaml")))
            raise SourceConfigError(f"没有名为 {spec} 的映射；可用：{shipped}",
                                    f"No mapping named {spec}; shipped mappings: {shipped}")
        spec = path
    elif not isinstance(spec, dict):
        raise SourceConfigError("需要 mapping：内置映射名或映射对象",
                                "'mapping' must name a shipped mapping or be a mapping object")
    config["mapping"] = mapping.load_mapping(spec)
    share = config.get("max_withdraw_share", tk.config.get("ckanext.shanghai.harvest.max_withdraw_share"))
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
        raise SourceConfigError("max_withdraw_share 应在 0 到 1 之间", "max_withdraw_share must be between 0 and 1")
    config["max_withdraw_share"] = float(share)
    config["complete"] = bool(config.get("complete", True))
    minutes = config.get("schedule_minutes")
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1):
        raise SourceConfigError("schedule_minutes 应为不小于 1 的整数",
                                "schedule_minutes must be a whole number of at least 1")
    return config
