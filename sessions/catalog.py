"""The service catalog: departments and the services each offers.

The catalog is an operator-editable JSON file. On first start the bundled default is
copied into the data dir; an operator changes ``DATA_DIR/catalog.json`` with
``smartcounter catalog ...`` (or by hand), and running servers pick the change up.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from .accounts import check_id
from .files import write_atomic

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
        self._set(departments)

    def _set(self, departments: list[Department]) -> None:
        self.departments = departments
        self._departments = {d.id: d for d in departments}
        self._services = {s.id: s for d in departments for s in d.services}

    def update_from(self, other: Catalog) -> None:
        """Take ``other``'s content in place (everyone holding this object sees it)."""
        self._set(other.departments)

    # -- editing (the catalog commands) ----------------------------------------------

    def add_department(self, department_id: str, names: dict[str, str]) -> Catalog:
        check_id(department_id, "department id")
        _check_names(names, department_id)
        if department_id in self._departments or department_id in self._services:
            raise CatalogError(f"{department_id!r} is already in the catalog")
        return Catalog([*self.departments, Department(department_id, dict(names), ())])

    def remove_department(self, department_id: str) -> Catalog:
        if department_id not in self._departments:
            raise CatalogError(f"no department {department_id!r}")
        return Catalog([d for d in self.departments if d.id != department_id])

    def add_service(self, service_id: str, department_id: str, names: dict[str, str]) -> Catalog:
        check_id(service_id, "service id")
        _check_names(names, service_id)
        department = self._departments.get(department_id)
        if department is None:
            raise CatalogError(f"no department {department_id!r}")
        if service_id in self._services or service_id in self._departments:
            raise CatalogError(f"{service_id!r} is already in the catalog")
        service = Service(service_id, department_id, dict(names))
        return Catalog([
            replace(d, services=(*d.services, service)) if d.id == department_id else d
            for d in self.departments
        ])

    def remove_service(self, service_id: str) -> Catalog:
        if service_id not in self._services:
            raise CatalogError(f"no service {service_id!r}")
        return Catalog([
            replace(d, services=tuple(s for s in d.services if s.id != service_id))
            for d in self.departments
        ])

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=2).encode())

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
