"""Local stack launcher: installs what is missing, then starts, checks and
stops PostgreSQL, Redis, Apache Solr and CKAN for `make serve`, `make test`
and `make bench`.

Standard library only, so it runs before the virtualenv exists. Every
service is private to the checkout (state under .local/, loopback ports) and
is skipped when DATABASE_URL, REDIS_URL or SOLR_URL (TEST_DATABASE_URL,
TEST_REDIS_URL, TEST_SOLR_URL for the tests) names an external one.

    python3 config/stack install        # packages, venv, Solr jars
    python3 config/stack serve          # the portal, until Ctrl-C
    python3 config/stack test [ARGS]    # test services + pytest ARGS
    python3 config/stack bench [NAMES] -- [ARGS]  # bench services + bench/*.py
    python3 config/stack stop [serve|test]  # stop leftovers of a killed run
    python3 config/stack clean          # stop leftovers, delete all local state

One module per concern: profiles (paths, ports, plugins), install,
processes, services (PostgreSQL, Redis, Solr), settings (secrets, ini, one
per web host), nginx (the Solr balancer, the proxy in front of WEB_HOSTS web
hosts), portal (CKAN's own processes, admin, demo) and commands (what make runs).
"""
from stack.portal import fetch_consumers
from stack.profiles import Profile, profile_for
from stack.settings import harvest_ini, load_secrets, render_ini

__all__ = ["Profile", "fetch_consumers", "harvest_ini", "load_secrets", "profile_for", "render_ini"]
