"""Model backends: one small interface (``base``), one module per provider, the traced wrapper.

Provider SDKs are imported only inside their own module, so importing this package never
needs ``openai``, ``anthropic``, ``litellm`` or ``llama_cpp``.
"""
