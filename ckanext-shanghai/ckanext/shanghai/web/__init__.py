"""What wraps every request: error pages (bilingual 400/503), CSRF on every
form and the Server-Timing middleware."""
