"""Fixtures for loopback servers (llama.cpp OpenAI-compatible server, fake providers)."""
