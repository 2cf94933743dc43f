"""The load-test kit's server side: a mock vLLM (`prescaler mock-vllm`, `python -m scaler.loadtest.mock_vllm`).

It shares nothing with the scaler's service code: `engine` holds the slots, the timing and vLLM's
metrics; `httpd` is the small HTTP/1.1 server it answers on; `mock_vllm` is its command line. The Locust
side is `deploy/loadtest/locustfile.py`.
"""
