"""The harvest machinery's plugin (``shanghai_harvest``): job report pages
and API, the consumer, scheduler and index commands. The portal extension
never imports this package; this package may use the extension."""
from __future__ import annotations

import ckan.plugins as plugins
import ckan.plugins.toolkit as tk

from ckanext.shanghai.harvesters import actions, auth, helpers, views


def _commands() -> list:
    """The portal's ``ckan shanghai`` group, with the harvest commands added."""
    from ckanext.shanghai.cli import shanghai
    from ckanext.shanghai.harvesters.cli import COMMANDS

    for command in COMMANDS:
        shanghai.add_command(command)
    return [shanghai]


@tk.blanket.actions(actions)
@tk.blanket.auth_functions(auth)
@tk.blanket.helpers(helpers)
@tk.blanket.blueprints(views)
@tk.blanket.cli(_commands)
class ShanghaiHarvestPlugin(plugins.SingletonPlugin):
    """Harvest job reports (page, CSV, API) and the ``ckan shanghai``
    commands that run the queues, the scheduler and the index tools."""
