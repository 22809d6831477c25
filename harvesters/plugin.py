"""The harvest machinery's plugin (``shanghai_harvest``): job report pages
and API, the consumer, scheduler and index commands. The portal extension
never imports this package; this package may use the extension."""
from __future__ import annotations

import ckan.plugins as plugins


class ShanghaiHarvestPlugin(plugins.SingletonPlugin):
    """Harvest job reports (page, CSV, API) and the ``ckan shanghai``
    commands that run the queues, the scheduler and the index tools."""

    plugins.implements(plugins.IActions)
    plugins.implements(plugins.IAuthFunctions)
    plugins.implements(plugins.IBlueprint)
    plugins.implements(plugins.ITemplateHelpers)
    plugins.implements(plugins.IClick)

    # IActions

    def get_actions(self):
        from ckanext.shanghai.harvesters import actions

        return _public(actions)

    # IAuthFunctions

    def get_auth_functions(self):
        from ckanext.shanghai.harvesters import auth

        return _public(auth)

    # IBlueprint

    def get_blueprint(self):
        from ckanext.shanghai.harvesters import views

        return [views.shanghai_harvest]

    # ITemplateHelpers

    def get_helpers(self):
        from ckanext.shanghai.harvesters import helpers

        return _public(helpers)

    # IClick

    def get_commands(self):
        # The portal's ``ckan shanghai`` group, with the harvest commands added.
        from ckanext.shanghai.cli import shanghai
        from ckanext.shanghai.harvesters.cli import COMMANDS

        for command in COMMANDS:
            shanghai.add_command(command)
        return [shanghai]


def _public(module) -> dict:
    return {name: getattr(module, name) for name in module.__all__}
