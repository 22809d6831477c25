"""Actions the portal changes: a search query Solr cannot parse is refused
as the asker's error."""
from __future__ import annotations

import ckan.plugins.toolkit as tk
from ckan.lib.search.common import SearchError

from ckanext.shanghai.search import spatial
from ckanext.shanghai.web import errors

__all__ = ["package_search"]


@tk.chained_action
@tk.side_effect_free
def package_search(up_func, context, data_dict):
    """CKAN's package_search, but a query Solr or CKAN refuses as written
    (``title:(``, an unknown sort field, a local parameter) raises
    :class:`ckanext.shanghai.web.errors.InvalidSearchQuery` with a bilingual
    message instead of a SearchError carrying Solr's own text, so the API
    and the search pages answer 400 rather than "search unavailable".

    :raises InvalidSearchQuery: the query is at fault
    """
    try:
        return up_func(context, data_dict)
    except spatial.SpatialFilterError:
        raise  # a bad box or district: its own message says what is wrong
    except SearchError as error:
        if not errors.query_at_fault(error):
            raise
        raise errors.refuse_query(error) from error
