"""The service catalog: departments and the services each offers.

The catalog is an operator-editable JSON file. On first start the bundled default is
copied into the data dir, so an operator edits ``DATA_DIR/catalog.json`` and restarts.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

LANGUAGES = ("en", "zh-Hant", "zh-Hans")
BUNDLED_CATALOG = Path(__file__).parent / "data" / "catalog.json"


@dataclass(frozen=True)
class Service:
    id: str
    department_id: str
    name: dict[str, str]
    mode: str = "video"


@dataclass(frozen=True)
class Department:
    id: str
    name: dict[str, str]
    services: tuple[Service, ...]


class CatalogError(ValueError):
    pass


class Catalog:
    def __init__(self, departments: list[Department]) -> None:
        self.departments = departments
        self._departments = {d.id: d for d in departments}
        self._services = {s.id: s for d in departments for s in d.services}

    def department(self, department_id: str) -> Department | None:
        return self._departments.get(department_id)

    def service(self, service_id: str) -> Service | None:
        return self._services.get(service_id)

    def to_dict(self) -> dict:
        return {
            "departments": [
                {
                    "id": d.id,
                    "name": d.name,
                    "services": [{"id": s.id, "name": s.name, "mode": s.mode} for s in d.services],
                }
                for d in self.departments
            ]
        }

    @classmethod
    def from_dict(cls, raw: dict) -> Catalog:
        try:
            departments = []
            for d in raw["departments"]:
                _check_names(d["name"], d["id"])
                services = []
                for s in d["services"]:
                    _check_names(s["name"], s["id"])
                    services.append(
                        Service(s["id"], d["id"], dict(s["name"]), s.get("mode", "video"))
                    )
                departments.append(Department(d["id"], dict(d["name"]), tuple(services)))
        except (KeyError, TypeError) as exc:
            raise CatalogError(f"catalog is malformed: missing or wrong field {exc}") from exc
        ids = [d.id for d in departments] + [s.id for d in departments for s in d.services]
        if len(ids) != len(set(ids)):
            raise CatalogError("catalog has duplicate department or service ids")
        return cls(departments)

    @classmethod
    def load(cls, path: Path) -> Catalog:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise CatalogError(f"cannot read catalog {path}: {exc}") from exc
        return cls.from_dict(raw)

    @classmethod
    def default(cls) -> Catalog:
        return cls.load(BUNDLED_CATALOG)


def ensure_catalog_file(path: Path) -> Path:
    """Seed ``path`` with the bundled catalog if it does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(BUNDLED_CATALOG, path)
    return path


def _check_names(names: dict, owner: str) -> None:
    missing = [lang for lang in LANGUAGES if not names.get(lang)]
    if missing:
        raise CatalogError(f"{owner}: name is missing languages {missing}")
