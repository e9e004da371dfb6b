"""WhatsApp Business Cloud API (webhook in, Graph API out); see channel.py."""
