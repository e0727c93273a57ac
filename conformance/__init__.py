"""Wire-compatibility and fidelity suites, runnable against ANY embeddings server URL.

    python -m conformance --base-url http://127.0.0.1:11434 --model all-minilm
    pytest conformance/suites --base-url http://127.0.0.1:11434 --model all-minilm

It is a client: it imports nothing of embedserve's own code (an import-linter contract says so).
"""
