"""VK community messages (Bots Long Poll API); see channel.py."""
