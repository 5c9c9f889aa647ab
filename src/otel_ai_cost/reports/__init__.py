"""The reports people read: the daily report (`daily`), anomalies (`anomalies`), savings (`savings`), and the
renderers (console tables with `tables`, JSON, Markdown, a self-contained HTML page). `model` holds the shapes
they share."""
