"""Budgets as data: `config/budgets.yaml`, the Prometheus rules generated from it, and the `budgets check` gate."""
