"""Where notifications go: chats, webhooks, e-mail, MQTT and the log, each rate-limited."""
