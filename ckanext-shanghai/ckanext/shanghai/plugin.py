"""Plugin classes of the portal. Each is thin and delegates to a module."""
from __future__ import annotations

import ckan.plugins as plugins
import ckan.plugins.toolkit as tk
from ckan.lib.plugins import DefaultTranslation

from ckanext.shanghai import compat, search
from ckanext.shanghai.web import csrf
from ckanext.shanghai.web import errors
from ckanext.shanghai.web import hosts
from ckanext.shanghai.web import i18n
from ckanext.shanghai.web import timing
from ckanext.shanghai.logic import uploads
from ckanext.shanghai.keys import actions as keys_actions
from ckanext.shanghai.keys import auth as keys_auth
from ckanext.shanghai.keys import helpers as keys_helpers
from ckanext.shanghai.keys import views as keys_views
from ckanext.shanghai.realtime import actions as realtime_actions
from ckanext.shanghai.realtime import auth as realtime_auth
from ckanext.shanghai.realtime import cli as realtime_cli
from ckanext.shanghai.realtime import helpers as realtime_helpers
from ckanext.shanghai.realtime import views as realtime_views


@tk.blanket.config_declarations
@tk.blanket.validators
@tk.blanket.cli
@tk.blanket.actions
@tk.blanket.helpers
class ShanghaiPlugin(plugins.SingletonPlugin, DefaultTranslation):
    """The portal: theme, validators, set-up commands and search shaping."""

    plugins.implements(plugins.IConfigurer)
    plugins.implements(plugins.IPackageController, inherit=True)
    plugins.implements(plugins.IFacets, inherit=True)
    plugins.implements(plugins.IMiddleware, inherit=True)
    plugins.implements(plugins.IUploader, inherit=True)
    plugins.implements(plugins.ITranslation)

    # IConfigurer

    def update_config(self, config):
        # Refuse to start on packages whose internals differ from those the
        # portal relies on (web app, commands and consumers alike).
        compat.check()
        tk.add_template_directory(config, "templates")
        tk.add_public_directory(config, "public")

    # IPackageController

    # The portal's only search hooks: every shaping, in one fixed order.

    def before_dataset_search(self, search_params):
        return search.search_params(search_params)

    def before_dataset_index(self, pkg_dict):
        return search.index_document(pkg_dict)

    def after_dataset_search(self, search_results, search_params):
        return search.label_facet_items(search_results)

    # IMiddleware

    def make_middleware(self, app, config):
        hosts.register(app)
        errors.register(app)
        i18n.register(app)
        csrf.register(app)
        timing.register(app)
        return app

    # IUploader

    def get_resource_uploader(self, data_dict):
        # Only checks the file; CKAN's own uploader stores it.
        uploads.check_resource_upload(data_dict)
        return None

    # ITranslation (i18n/: CKAN's strings its own zh_Hans_CN catalog leaves English)

    def i18n_domain(self):
        return "ckanext-shanghai"

    # IFacets

    def dataset_facets(self, facets_dict, package_type):
        return search.facet_titles()

    def organization_facets(self, facets_dict, organization_type, package_type):
        return search.facet_titles()


class ShanghaiPortalPlugin(plugins.SingletonPlugin):
    """The public portal: theme helpers, statistics and API pages, DataStore
    loading of tabular resources, download counts, data applications."""

    plugins.implements(plugins.IConfigurer)
    plugins.implements(plugins.ITemplateHelpers)
    plugins.implements(plugins.IBlueprint)
    plugins.implements(plugins.IValidators)
    plugins.implements(plugins.IResourceController, inherit=True)
    plugins.implements(plugins.IMiddleware, inherit=True)
    plugins.implements(plugins.IActions)

    # IConfigurer

    def update_config(self, config):
        tk.add_resource("assets", "shanghai")

    # IActions

    def get_actions(self):
        from ckanext.shanghai.datastore import geo

        # datastore_search with crs=wgs84|gcj02|bd09
        return {"datastore_search": geo.datastore_search}

    # ITemplateHelpers

    def get_helpers(self):
        from ckanext.shanghai.portal import helpers as portal_helpers

        return {name: getattr(portal_helpers, name) for name in portal_helpers.__all__}

    # IBlueprint

    def get_blueprint(self):
        from ckanext.shanghai.datastore import views as table_views
        from ckanext.shanghai.portal import views

        return [views.shanghai_portal, table_views.shanghai_tables]

    # IValidators

    def get_validators(self):
        from ckanext.shanghai.portal import validators

        return _public(validators)

    # IResourceController

    def before_resource_update(self, context, current, resource):
        from ckanext.shanghai.datastore import triggers

        triggers.remember_changed_source(context, current, resource)

    def after_resource_create(self, context, resource):
        from ckanext.shanghai.datastore import triggers

        triggers.after_resource_change(context, resource, created=True)

    def after_resource_update(self, context, resource):
        from ckanext.shanghai.datastore import triggers

        triggers.after_resource_change(context, resource, created=False)

    # IMiddleware

    def make_middleware(self, app, config):
        from ckanext.shanghai.portal import downloads

        app.after_request(downloads.record_downloads)
        return app


class ShanghaiAccessPlugin(plugins.SingletonPlugin):
    """Conditional-open data products: applications, decisions, grants and
    their audit trail; the gate on files, addresses and DataStore rows."""

    plugins.implements(plugins.IActions)
    plugins.implements(plugins.IAuthFunctions)
    plugins.implements(plugins.IBlueprint)
    plugins.implements(plugins.ITemplateHelpers)
    plugins.implements(plugins.IPackageController, inherit=True)

    # IActions

    def get_actions(self):
        from ckanext.shanghai.access import actions, chained

        return _public(actions) | _public(chained) | chained.sql_search_actions()

    # IAuthFunctions

    def get_auth_functions(self):
        from ckanext.shanghai.access import auth

        return _public(auth)

    # IBlueprint

    def get_blueprint(self):
        from ckanext.shanghai.access import views

        return [views.shanghai_access]

    # ITemplateHelpers

    def get_helpers(self):
        from ckanext.shanghai.access import helpers

        return _public(helpers)

    # IPackageController

    def after_dataset_show(self, context, pkg_dict):
        from ckanext.shanghai.access import policy

        return policy.redact_package(context, pkg_dict)


class ShanghaiDeskPlugin(plugins.SingletonPlugin):
    """The public desk: data requests, error reports and comments, answered
    by departments on the working-day clock; the league table."""

    plugins.implements(plugins.IActions)
    plugins.implements(plugins.IAuthFunctions)
    plugins.implements(plugins.IBlueprint)
    plugins.implements(plugins.ITemplateHelpers)
    plugins.implements(plugins.IClick)

    # IActions

    def get_actions(self):
        from ckanext.shanghai.desk import actions

        return _public(actions)

    # IAuthFunctions

    def get_auth_functions(self):
        from ckanext.shanghai.desk import auth

        return _public(auth)

    # IBlueprint

    def get_blueprint(self):
        from ckanext.shanghai.desk import views

        return [views.shanghai_desk]

    # ITemplateHelpers

    def get_helpers(self):
        from ckanext.shanghai.desk import helpers

        return _public(helpers)

    # IClick

    def get_commands(self):
        from ckanext.shanghai.cli import shanghai
        from ckanext.shanghai.desk.cli import desk_remind

        shanghai.add_command(desk_remind)
        return [shanghai]


def _public(module) -> dict:
    return {name: getattr(module, name) for name in module.__all__}


@tk.blanket.actions(realtime_actions)
@tk.blanket.auth_functions(realtime_auth)
@tk.blanket.helpers(realtime_helpers)
@tk.blanket.blueprints(realtime_views)
@tk.blanket.cli(realtime_cli)
class ShanghaiRealtimePlugin(plugins.SingletonPlugin):
    """Real-time data products: keyed DataStore tables fed by push (API
    action and a key-authenticated JSON endpoint), with their history, time
    travel, liveness, uptime and a Server-Sent Events stream."""


@tk.blanket.actions(keys_actions)
@tk.blanket.auth_functions(keys_auth)
@tk.blanket.helpers(keys_helpers)
@tk.blanket.blueprints(keys_views)
class ShanghaiKeysPlugin(plugins.SingletonPlugin):
    """Developer keys and quotas: applications with keys (CKAN API tokens),
    rate limits on the API and downloads counted in Redis, usage per
    product and key for departments, public totals."""

    plugins.implements(plugins.IMiddleware, inherit=True)

    # IMiddleware

    def make_middleware(self, app, config):
        from ckanext.shanghai.keys import limiter, usage

        limiter.register(app)
        usage.register(app)
        return app
