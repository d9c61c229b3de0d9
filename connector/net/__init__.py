"""Outbound HTTP: the base REST client, its errors and retries, and the SSRF guard."""
