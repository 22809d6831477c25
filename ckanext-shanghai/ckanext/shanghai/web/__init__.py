"""What wraps every request: error pages (bilingual 400/503), CSRF on every
form, the Server-Timing middleware, CKAN's JavaScript translations under
every spelling of a locale, and the delivery middleware (gzip, cache
headers, minified bundles) that ckanext.shanghai.wsgi puts around the app."""
