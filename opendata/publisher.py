"""Publishing to CKAN with ckanapi: plan the difference, then apply it; idempotent and resumable.

The plan compares what CKAN holds with what the definitions and built files say: organization,
dataset metadata (only the fields cityos manages) and resources (by name; files by their SHA-256,
kept in the resource's ``cityos_sha256`` field). Applying the plan creates what is missing and
updates in place what changed (same resource id, new bytes); nothing else is touched. A re-run
with unchanged data plans nothing. A run that fails half-way is resumed by running again: the plan
of the next run is exactly the work that was left.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from ckanapi import NotFound, RemoteCKAN

from cityos.opendata.build import BuiltDataset, ResourceFile
from cityos.opendata.definitions import Dataset, Portal

USER_AGENT = "cityos-publisher/1 (+https://github.com/cityos)"
#: Resource formats as CKAN shows them.
FORMATS = {"csv": "CSV", "geojson": "GeoJSON", "url": "API"}


@dataclass(frozen=True)
class Change:
    """One step of a plan."""

    action: str  # create or update
    kind: str  # organization, dataset, resource
    dataset: str
    target: str
    fields: dict = field(default_factory=dict)  # field -> [old, new] (new only for creations)
    resource: ResourceFile | None = None

    def describe(self) -> str:
        what = f"{self.action} {self.kind} {self.target}"
        if self.action == "update" and self.kind != "resource":
            what += " (" + ", ".join(sorted(self.fields)) + ")"
        elif self.kind == "resource" and self.resource is not None and self.resource.data is not None:
            what += f" ({len(self.resource.data):,} bytes, sha256 {self.resource.sha256[:12]})"
        return what

    def as_json(self) -> dict:
        return {"action": self.action, "kind": self.kind, "target": self.target, "fields": sorted(self.fields)}


def connect(url: str, token: str) -> RemoteCKAN:
    """A ckanapi client for the portal at ``url`` acting with the API ``token``."""
    return RemoteCKAN(url.rstrip("/"), apikey=token or None, user_agent=USER_AGENT)


def desired_organization(portal: Portal) -> dict:
    org = portal.organization
    return {"name": org.name, "title": org.title, "description": org.description}


def desired_package(definition: Dataset, portal: Portal, spatial: dict | None) -> dict:
    """The CKAN fields cityos manages for ``definition`` (core CKAN fields and extras)."""
    extras = {
        "title_en": definition.title_en,
        "notes_en": definition.description_en,
        "frequency": definition.schedule,
        "temporal_coverage": definition.temporal,
        "standard": definition.standard,
        "anonymisation": definition.anonymisation.basis,
        "spatial": json.dumps(definition.spatial or spatial, ensure_ascii=False, sort_keys=True) if
        (definition.spatial or spatial) else "",
        "publisher": "cityos",
    }
    return {
        "name": definition.name,
        "title": definition.title_ja,
        "notes": f"{definition.description_ja}\n\n---\n\n{definition.description_en}",
        "owner_org": portal.organization.name,
        "license_id": definition.licence,
        "maintainer": portal.contact.name,
        "maintainer_email": portal.contact.email,
        "tags": sorted(definition.tags),
        "extras": {key: value for key, value in extras.items() if value},
    }


def _current_package(package: dict, organization_name: str) -> dict:
    org = package.get("organization") or {}
    return {
        "name": package["name"], "title": package.get("title") or "", "notes": package.get("notes") or "",
        "owner_org": org.get("name", organization_name if package.get("owner_org") else ""),
        "license_id": package.get("license_id") or "", "maintainer": package.get("maintainer") or "",
        "maintainer_email": package.get("maintainer_email") or "",
        "tags": sorted(t["name"] for t in package.get("tags", [])),
        "extras": {e["key"]: e["value"] for e in package.get("extras", [])},
    }


def _diff(current: dict, wanted: dict) -> dict:
    return {key: [current.get(key), value] for key, value in wanted.items() if current.get(key) != value}


def _resource_fields(resource: ResourceFile) -> dict:
    fields = {"name": resource.name, "format": FORMATS[resource.format], "description": resource.description,
              "cityos_sha256": resource.sha256}
    if resource.url is not None:
        fields["url"] = resource.url
    return fields


def _show(ckan: RemoteCKAN, action: str, **params) -> dict | None:
    try:
        return getattr(ckan.action, action)(**params)
    except NotFound:
        return None


def plan_organization(ckan: RemoteCKAN, portal: Portal) -> list[Change]:
    """Create the organization, or update its title and description."""
    wanted = desired_organization(portal)
    current = _show(ckan, "organization_show", id=wanted["name"])
    if current is None:
        return [Change("create", "organization", "", wanted["name"], {k: [None, v] for k, v in wanted.items()})]
    if diff := _diff({k: current.get(k) or "" for k in wanted}, wanted):
        return [Change("update", "organization", "", wanted["name"], diff)]
    return []


def plan_dataset(ckan: RemoteCKAN, built: BuiltDataset, portal: Portal, spatial: dict | None) -> list[Change]:
    """The changes that make CKAN hold ``built`` exactly as defined."""
    name = built.definition.name
    wanted = desired_package(built.definition, portal, spatial)
    package = _show(ckan, "package_show", id=name)
    changes: list[Change] = []
    existing: dict[str, dict] = {}
    if package is None or package.get("state") == "deleted":
        changes.append(Change("create", "dataset", name, name, {k: [None, v] for k, v in wanted.items()}))
    else:
        if diff := _diff(_current_package(package, portal.organization.name), wanted):
            changes.append(Change("update", "dataset", name, name, diff))
        existing = {r["name"]: r for r in package.get("resources", [])}
    for resource in built.resources:
        fields = _resource_fields(resource)
        current = existing.get(resource.name)
        if current is None:
            changes.append(Change("create", "resource", name, resource.name, {k: [None, v] for k, v in fields.items()},
                                  resource))
        elif diff := _diff({k: current.get(k) for k in fields}, fields):
            changes.append(Change("update", "resource", name, resource.name, diff, resource))
    return changes


def _package_payload(wanted: dict) -> dict:
    payload = dict(wanted)
    payload["tags"] = [{"name": t} for t in wanted["tags"]]
    payload["extras"] = [{"key": k, "value": v} for k, v in sorted(wanted["extras"].items())]
    return payload


def apply_change(ckan: RemoteCKAN, change: Change, wanted_package: dict | None = None) -> None:
    """Carry out one change (resources updated in place: same id, new content)."""
    if change.kind == "organization":
        values = {k: v[1] for k, v in change.fields.items()}
        if change.action == "create":
            ckan.action.organization_create(**values)
        else:
            ckan.action.organization_patch(id=change.target, **values)
        return
    if change.kind == "dataset":
        payload = _package_payload(wanted_package or {})
        if change.action == "create":
            if _show(ckan, "package_show", id=change.dataset) is not None:  # deleted earlier: bring it back
                ckan.action.package_patch(id=change.dataset, state="active", **payload)
            else:
                ckan.action.package_create(**payload)
        else:
            ckan.action.package_patch(id=change.dataset, **payload)
        return
    resource = change.resource
    assert resource is not None
    fields = _resource_fields(resource)
    upload = {}
    if resource.data is not None:
        buffer = io.BytesIO(resource.data)
        buffer.name = resource.filename
        upload = {"upload": buffer}
    if change.action == "create":
        ckan.action.resource_create(package_id=change.dataset, **fields, **upload)
    else:
        package = ckan.action.package_show(id=change.dataset)
        resource_id = next(r["id"] for r in package["resources"] if r["name"] == resource.name)
        if resource.data is None or "cityos_sha256" not in change.fields:
            upload = {}
        ckan.action.resource_patch(id=resource_id, **fields, **upload)


#: Why a dataset without rows is not uploaded (shown in the plan, the CLI and the publish log).
EMPTY = "no rows to publish: a file would hold only its header, so nothing is uploaded (CKAN keeps what it had)"


@dataclass
class DatasetResult:
    """What happened to one dataset in a run."""

    name: str
    status: str  # published, unchanged, skipped, failed, dry-run
    changes: list[Change]
    error: str = ""
    note: str = ""


def publish(ckan: RemoteCKAN, built: list[BuiltDataset], portal: Portal, *, spatial: dict | None = None,
            dry_run: bool = False, on_change: Callable[[Change], None] | None = None) -> list[DatasetResult]:
    """Make CKAN match ``built``; a failure in one dataset is recorded and the others go on."""
    results = []
    org_changes = plan_organization(ckan, portal)
    if not dry_run:
        for change in org_changes:
            apply_change(ckan, change)
    for item in built:
        name = item.definition.name
        note = f"file resource(s) {', '.join(item.skipped)} skipped: {EMPTY}" if item.skipped else ""
        if not item.resources:
            results.append(DatasetResult(name, "skipped", [], "", f"skipped: {EMPTY}"))
            continue
        try:
            changes = plan_dataset(ckan, item, portal, spatial)
            if dry_run:
                results.append(DatasetResult(name, "dry-run", org_changes + changes, "", note))
                continue
            wanted = desired_package(item.definition, portal, spatial)
            for change in changes:
                apply_change(ckan, change, wanted)
                if on_change:
                    on_change(change)
            results.append(DatasetResult(name, "published" if changes else "unchanged", changes, "", note))
        except Exception as exc:  # recorded per dataset; the run goes on and is resumable
            results.append(DatasetResult(name, "failed", [], f"{type(exc).__name__}: {exc}"))
    return results
