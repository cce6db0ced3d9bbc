"""Store webhooks sent over HTTP (httpx), to public addresses only unless configured otherwise."""
