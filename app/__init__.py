"""Broadcaster: a self-hosted WhatsApp broadcast and reply desk."""
