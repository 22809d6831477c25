"""The import path: write harvested records into the catalog with CKAN's own
package_create / package_update / package_delete (same validation, same
database rows, same Solr documents), but commit the Solr index once per batch
instead of once per record, and build each activity from the package dict
the action already returned instead of dictizing the package again."""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

import ckan.model as model
import ckan.plugins.toolkit as tk
from ckan.lib import search
from ckan.lib.plugins import get_permission_labels
from ckan.logic.action import create as create_actions
from ckan.logic.action import delete as delete_actions
from ckan.logic.action import update as update_actions

log = logging.getLogger(__name__)


@contextlib.contextmanager
def batched_index_commits() -> Iterator[None]:
    """Within the block, index writes are sent without a Solr commit; one
    commit makes them all visible at the end (also when the block fails, so
    whatever reached the database is searchable)."""
    previous = tk.config.get("ckan.search.solr_commit")
    tk.config["ckan.search.solr_commit"] = False
    try:
        yield
    finally:
        tk.config["ckan.search.solr_commit"] = previous
        search.commit()


class CatalogWriter:
    """Writes packages as one user (the harvest's site user)."""

    def __init__(self, user_name: str):
        self.user_name = user_name
        self.user = model.User.get(user_name)

    def _context(self) -> dict[str, Any]:
        return {"user": self.user_name, "ignore_auth": True, "model": model,
                "session": model.Session, "auth_user_obj": self.user}

    def create(self, package: dict[str, Any]) -> dict[str, Any]:
        """Validate and store a new package; raises tk.ValidationError."""
        # The action function itself, not tk.get_action: the activity is
        # written below from the returned dict, without a second package_show.
        created = create_actions.package_create(self._context(), dict(package))
        self._activity("new", created)
        return created

    def update(self, package_id: str, package: dict[str, Any]) -> dict[str, Any]:
        updated = update_actions.package_update(self._context(), dict(package, id=package_id))
        self._activity("changed", updated)
        return updated

    def withdraw(self, package_id: str) -> None:
        delete_actions.package_delete(self._context(), {"id": package_id})
        pkg = model.Package.get(package_id)
        if pkg is not None:
            self._activity("deleted", {"id": pkg.id, "name": pkg.name, "title": pkg.title,
                                       "state": pkg.state, "type": pkg.type})

    def _activity(self, kind: str, package: dict[str, Any]) -> None:
        if "activity" not in tk.config.get("ckan.plugins", ""):
            return
        pkg = model.Package.get(package["id"])
        tk.get_action("activity_create")(
            {"ignore_auth": True, "user": self.user_name},
            {
                "user_id": self.user.id,
                "object_id": package["id"],
                "activity_type": f"{kind} package",
                "data": {"package": package, "actor": self.user_name},
                "permission_labels": get_permission_labels().get_dataset_labels(pkg),
            },
        )
