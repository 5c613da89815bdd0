"""Test helpers: a loopback fake LLM provider and a JSON Schema value generator."""
