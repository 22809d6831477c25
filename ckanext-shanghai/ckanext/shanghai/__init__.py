"""CKAN extension of the Shanghai data service network: plugins, validators,
command-line tools, views and templates."""
