"""The portal's set-up commands as an operator runs them (`ckan shanghai
...` in a shell): what they print is what happened."""
import json

import pytest

import ckan.model as model
from ckan.tests import factories

pytestmark = pytest.mark.usefixtures("clean_db")


def bootstrap_admin(run_ckan, name: str) -> dict:
    result = run_ckan("shanghai", "bootstrap-admin", name, "--email", f"{name}@example.gov.cn",
                      env={"SHANGHAI_ADMIN_PASSWORD": "Str0ng-Passw0rd!"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_bootstrap_admin_says_created_only_when_it_created_the_user(run_ckan):
    first = bootstrap_admin(run_ckan, "ops-admin")
    assert first["created"] is True and first["token"]
    again = bootstrap_admin(run_ckan, "ops-admin")
    assert again["created"] is False and again["token"] and again["token"] != first["token"]
    model.Session.remove()
    assert model.Session.query(model.User).filter(model.User.name == "ops-admin").count() == 1
    assert model.User.get("ops-admin").sysadmin


def test_bootstrap_admin_promotes_an_existing_user_without_claiming_to_create_it(run_ckan):
    factories.User(name="city-editor", email="editor@example.gov.cn")
    promoted = bootstrap_admin(run_ckan, "city-editor")
    assert promoted["created"] is False
    model.Session.remove()
    user = model.User.get("city-editor")
    assert user.sysadmin and user.email == "editor@example.gov.cn"
