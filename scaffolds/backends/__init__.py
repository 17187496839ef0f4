"""Model backends: one small interface and one row per kind (``base``), one module per provider,
the registry that checks, builds and opens catalog entries (``registry``), what the hosted
providers share (``hosted``), the traced wrapper (``traced``).

Provider SDKs are imported only inside their own module, when a backend is built, so importing
this package or the registry never needs ``openai``, ``anthropic``, ``litellm`` or ``llama_cpp``.
"""
