"""In-process fakes for tests: a real HTTP server speaking the OpenAI chat API."""
