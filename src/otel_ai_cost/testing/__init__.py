"""Testing helpers: the pytest plugin that prices and attributes every AI call a test makes.

`otel_ai_cost.testing.pytest_plugin` is registered as the `pytest11` entry point `ai_cost`; turn it on with
``pytest --ai-cost`` (or ``ai_cost = true`` in the ini file). See its docstring, and docs/pytest.md.

Nothing is imported here: pytest loads the plugin in every session, and while it is off it must cost nothing.
"""
