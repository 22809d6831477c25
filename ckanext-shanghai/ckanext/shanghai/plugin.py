"""Plugin classes of the portal. Each is thin and delegates to a module."""
from __future__ import annotations

import ckan.plugins as plugins
import ckan.plugins.toolkit as tk

from ckanext.shanghai import csrf, errors, search, timing
from ckanext.shanghai.logic import uploads


@tk.blanket.config_declarations
@tk.blanket.validators
@tk.blanket.cli
@tk.blanket.actions
@tk.blanket.auth_functions
@tk.blanket.helpers
@tk.blanket.blueprints
class ShanghaiPlugin(plugins.SingletonPlugin):
    """The portal: theme, validators, commands and search shaping."""

    plugins.implements(plugins.IConfigurer)
    plugins.implements(plugins.IPackageController, inherit=True)
    plugins.implements(plugins.IFacets, inherit=True)
    plugins.implements(plugins.IMiddleware, inherit=True)
    plugins.implements(plugins.IUploader, inherit=True)

    # IConfigurer

    def update_config(self, config):
        tk.add_template_directory(config, "templates")
        tk.add_public_directory(config, "public")

    # IPackageController

    def before_dataset_search(self, search_params):
        return search.shape_query(search_params)

    def before_dataset_index(self, pkg_dict):
        return search.shape_index_document(pkg_dict)

    def after_dataset_search(self, search_results, search_params):
        return search.label_facet_items(search_results)

    # IMiddleware

    def make_middleware(self, app, config):
        errors.register(app)
        csrf.register(app)
        timing.register(app)
        return app

    # IUploader

    def get_resource_uploader(self, data_dict):
        # Only checks the file; CKAN's own uploader stores it.
        uploads.check_resource_upload(data_dict)
        return None

    # IFacets

    def dataset_facets(self, facets_dict, package_type):
        return search.facet_titles()

    def organization_facets(self, facets_dict, organization_type, package_type):
        return search.facet_titles()
