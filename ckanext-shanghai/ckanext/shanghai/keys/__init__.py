"""Developer keys and quotas: applications with API keys, rate limits on the
API and downloads (Redis), usage per product and key."""
