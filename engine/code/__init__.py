"""The code under test, read without running it: an ``ast`` index that locates failure modes, and read-only
code and git tools for the LLM engine.

Nothing here imports user code or writes into the repository.
"""
