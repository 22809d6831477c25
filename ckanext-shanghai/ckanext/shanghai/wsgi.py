"""WSGI entry point for gunicorn: ``gunicorn ckanext.shanghai.wsgi:application``
with ``CKAN_INI`` naming the configuration file (CKAN's wheel ships none).
CKAN's app is wrapped in the portal's delivery middleware: gzip, cache
headers and minified bundles (ckanext.shanghai.web.delivery)."""
import os

from ckan.cli import load_config
from ckan.config.middleware import make_app

from ckanext.shanghai.web.delivery import Delivery

if not os.environ.get("CKAN_INI"):
    raise RuntimeError("CKAN_INI must name the CKAN configuration file / 请用 CKAN_INI 指定配置文件")

application = Delivery(make_app(load_config(os.environ["CKAN_INI"])))
