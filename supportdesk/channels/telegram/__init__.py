"""The Telegram bot channel: ``bot`` talks to the Bot API, ``channel`` is its Channel."""
