"""The website channel: chat widget, websocket live chat and contact form (type ``web``)."""
